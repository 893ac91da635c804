#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "findings/findings.h"
#include "util/report.h"

Test(report, outcome_is_the_worst_level)
{
	struct report *rep = rep_create(NULL, 0);

	cr_assert_eq(rep_outcome(rep), DMG_NONE);
	rep_add(rep, DMG_WARNING, RC_SM_NR_FREE, REP_CTX_NONE, "w");
	cr_assert_eq(rep_outcome(rep), DMG_WARNING);
	rep_add(rep, DMG_FATAL, RC_NODE_CSUM, REP_CTX_BLOCK(7), "f %d", 1);
	rep_add(rep, DMG_NON_FATAL, RC_SM_LEAK, REP_CTX_NONE, "nf");
	cr_assert_eq(rep_outcome(rep), DMG_FATAL);
	cr_assert_eq(rep_nr_findings(rep), 3);
	cr_assert_str_eq(rep_finding(rep, 1)->msg, "f 1");
	cr_assert_eq(rep_finding(rep, 1)->block, 7);
	cr_assert_eq(rep_count_code(rep, RC_SM_LEAK), 1);
	cr_assert_str_eq(finding_name(RC_SM_LEAK), "sm_leak");
	rep_destroy(rep);
}

Test(report, output_is_indented_quiet_prints_nothing_and_floods_are_capped)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct report *rep = rep_create(f, 0);

	rep_set_code_names(rep, finding_name);
	rep_section(rep, "examining superblock");
	rep_add(rep, DMG_FATAL, RC_SB_CSUM, REP_CTX_NONE, "superblock is corrupt");
	rep_detail(rep, "bad checksum");
	for (int i = 0; i < REP_MAX_PRINTED_PER_CODE + 50; i++)
		rep_add(rep, DMG_FATAL, RC_NODE_CSUM, REP_CTX_NONE, "node %d", i);
	fflush(f);
	cr_assert(strstr(buf, "examining superblock\n  superblock is corrupt\n    bad checksum\n"));
	cr_assert(strstr(buf, "further 'node_csum' findings not shown"));
	cr_assert_null(strstr(buf, "node 120\n"));
	cr_assert_eq(rep_count_code(rep, RC_NODE_CSUM), REP_MAX_PRINTED_PER_CODE + 50);
	rep_destroy(rep);
	fclose(f);
	free(buf);

	buf = NULL;
	f = open_memstream(&buf, &len);
	rep = rep_create(f, 1);
	rep_section(rep, "x");
	rep_add(rep, DMG_FATAL, RC_SB_CSUM, REP_CTX_NONE, "y");
	fflush(f);
	cr_assert_eq(len, 0);
	cr_assert_eq(rep_outcome(rep), DMG_FATAL);
	rep_destroy(rep);
	fclose(f);
	free(buf);
}

Test(report, findings_table_names_every_code_once)
{
	for (int i = 0; i < RC_MAX; i++) {
		const char *n = finding_name(i);

		cr_assert(n && n[0] && strcmp(n, "unknown"), "code %d has a name", i);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(finding_name(j), n, "codes %d and %d share '%s'", j, i, n);
	}
	cr_assert_str_eq(finding_name(RC_NONE), "none");
	cr_assert_str_eq(finding_name(RC_MAX), "unknown");
	cr_assert_str_eq(finding_name(-1), "unknown");
	cr_assert_leq(RC_MAX, REP_MAX_CODES);
}

Test(report, without_a_namer_the_flood_line_gives_the_number)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct report *rep = rep_create(f, 0);
	char want[64];

	for (int i = 0; i < REP_MAX_PRINTED_PER_CODE + 2; i++)
		rep_add(rep, DMG_FATAL, RC_NODE_CSUM, REP_CTX_NONE, "node %d", i);
	fflush(f);
	snprintf(want, sizeof(want), "further 'code %d' findings not shown", RC_NODE_CSUM);
	cr_assert(strstr(buf, want), "%s", buf);
	cr_assert_null(strstr(buf, "node_csum"));
	rep_destroy(rep);
	fclose(f);
	free(buf);
}
