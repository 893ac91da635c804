/* thin_reconcile: compare a pool's thin ids with a manager's records. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names/reconcile.h"

#include "util/parse.h"
#include "util/cli.h"

enum {
	OPT_RECORDS = 256, OPT_RECORDS_FORMAT, OPT_TABLE, OPT_EXPECT, OPT_STRICT_FENCE,
	OPT_FREE_IDS, OPT_STRATEGY, OPT_QUARANTINE, OPT_MIN_ID, OPT_JSON, OPT_TSV, OPT_HEADERS,
	OPT_NO_SPACE, OPT_UNIQUE_NAMES, OPT_THIN_EDIT,
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: thin_reconcile [options] --records FILE {metadata device}\n"
		   "Options:\n"
		   "  {-h|--help}\n"
		   "  {-V|--version}\n"
		   "  {--records FILE}              manager records (TSV: dev_id, name, ...; - = stdin)\n"
		   "  {--records-format tsv}\n"
		   "  {-m|--metadata-snap}[=block#] read the held metadata snapshot\n"
		   "  {--table FILE}                side table of names (.tmn)\n"
		   "  {--expect-transaction N}      the manager's pool transaction id\n"
		   "  {--strict-fence}              pool = expected - 1 counts as a mismatch\n"
		   "  {--unique-names}              a name on two ids is a duplicate\n"
		   "  {--free-ids K}                propose K free ids\n"
		   "  {--strategy lowest|after-max|random}\n"
		   "  {--min-id N}                  never propose an id below N\n"
		   "  {--quarantine FILE}           ids (or A-B ranges) never to propose\n"
		   "  {--no-space}                  skip the mapping walk (no space figures)\n"
		   "  {--json | --tsv [--headers]}\n"
		   "  {--thin-edit}                 print only the thin_edit line that deletes the orphans\n"
		   "Exit status: a bit mask; 1 orphans, 2 dangling records, 4 duplicates or\n"
		   "incarnation mismatch, 8 transaction fence mismatch, 16 side table unbound\n"
		   "or corrupt, 32 operational error, 64 usage error.\n");
}

static int usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, "thin_reconcile: %s\n", msg);
	usage(stderr);
	return TRC_USAGE;
}

static int parse_num(const char *s, uint64_t max, uint64_t *out)
{
	return parse_u64(s, out) < 0 || *out > max ? -EINVAL : 0;
}

struct args {
	struct thin_reconcile_opts o;
	const char *records, *table, *quarantine;
};

static int parse_opt(int c, struct args *a)
{
	struct thin_reconcile_opts *o = &a->o;
	uint64_t v;

	switch (c) {
	case 'm':
		o->use_snap = 1;
		if (optarg && parse_num(optarg[0] == '=' ? optarg + 1 : optarg, UINT64_MAX,
					&o->snap_block) < 0)
			return usage_error("bad metadata snapshot block number");
		return 0;
	case OPT_RECORDS:
		a->records = optarg;
		return 0;
	case OPT_RECORDS_FORMAT:
		return strcmp(optarg, "tsv") ? usage_error("only --records-format tsv is supported")
					     : 0;
	case OPT_TABLE:
		a->table = optarg;
		return 0;
	case OPT_EXPECT:
		if (parse_num(optarg, UINT64_MAX, &o->expect_trans) < 0)
			return usage_error("bad --expect-transaction");
		o->have_expect = 1;
		return 0;
	case OPT_STRICT_FENCE:
		o->strict_fence = 1;
		return 0;
	case OPT_UNIQUE_NAMES:
		o->unique_names = 1;
		return 0;
	case OPT_FREE_IDS:
		if (parse_num(optarg, 1u << 24, &v) < 0)
			return usage_error("bad --free-ids (0 to 16777216)");
		o->free_ids = (size_t)v;
		return 0;
	case OPT_STRATEGY:
		if (!strcmp(optarg, "lowest"))
			o->strategy = TFS_LOWEST;
		else if (!strcmp(optarg, "after-max"))
			o->strategy = TFS_AFTER_MAX;
		else if (!strcmp(optarg, "random"))
			o->strategy = TFS_RANDOM;
		else
			return usage_error("bad --strategy (lowest, after-max or random)");
		return 0;
	case OPT_MIN_ID:
		if (parse_num(optarg, 1u << 24, &o->min_id) < 0)
			return usage_error("bad --min-id");
		return 0;
	case OPT_QUARANTINE:
		a->quarantine = optarg;
		return 0;
	case OPT_NO_SPACE:
		o->no_space = 1;
		return 0;
	case OPT_JSON:
	case OPT_TSV:
		if (o->format != TRF_TEXT && o->format != (c == OPT_JSON ? TRF_JSON : TRF_TSV))
			return usage_error("--json and --tsv cannot be combined");
		o->format = c == OPT_JSON ? TRF_JSON : TRF_TSV;
		return 0;
	case OPT_HEADERS:
		o->headers = 1;
		return 0;
	case OPT_THIN_EDIT:
		o->thin_edit_line = 1;
		return 0;
	default:
		return usage_error(NULL);
	}
}

static int run(struct args *a)
{
	struct thin_records recs;
	struct thin_names_table table;
	uint64_t *q = NULL;
	char msg[512], tmsg[256];
	int have_table = 0, r;

	if (thin_records_load(a->records, &recs, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "thin_reconcile: %s\n", msg);
		return TRC_ERROR;
	}
	a->o.records = &recs;
	if (a->quarantine &&
	    thin_id_ranges_load(a->quarantine, &q, &a->o.nr_quarantine, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "thin_reconcile: %s\n", msg);
		r = TRC_ERROR;
		goto out;
	}
	a->o.quarantine = q;
	if (a->table) {
		r = thin_names_load(a->table, &table, tmsg, sizeof(tmsg));
		if (r < 0) {
			fprintf(stderr, "thin_reconcile: side table %s\n",
				r == -EILSEQ ? "corrupt; try its .prev copy" : "unreadable");
			a->o.table_error = tmsg;
		} else {
			have_table = 1;
			a->o.table = &table;
		}
	}
	r = thin_reconcile(&a->o, stdout, msg, sizeof(msg));
	if (r < 0) {
		fprintf(stderr, "thin_reconcile: %s\n", msg);
		r = TRC_ERROR;
	}
out:
	if (have_table)
		thin_names_release(&table);
	free(q);
	thin_records_release(&recs);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "metadata-snap", optional_argument, NULL, 'm' },
		{ "records", required_argument, NULL, OPT_RECORDS },
		{ "records-format", required_argument, NULL, OPT_RECORDS_FORMAT },
		{ "table", required_argument, NULL, OPT_TABLE },
		{ "expect-transaction", required_argument, NULL, OPT_EXPECT },
		{ "strict-fence", no_argument, NULL, OPT_STRICT_FENCE },
		{ "unique-names", no_argument, NULL, OPT_UNIQUE_NAMES },
		{ "free-ids", required_argument, NULL, OPT_FREE_IDS },
		{ "strategy", required_argument, NULL, OPT_STRATEGY },
		{ "min-id", required_argument, NULL, OPT_MIN_ID },
		{ "quarantine", required_argument, NULL, OPT_QUARANTINE },
		{ "no-space", no_argument, NULL, OPT_NO_SPACE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "tsv", no_argument, NULL, OPT_TSV },
		{ "headers", no_argument, NULL, OPT_HEADERS },
		{ "thin-edit", no_argument, NULL, OPT_THIN_EDIT },
		{ NULL, 0, NULL, 0 },
	};
	struct args a = { 0 };
	int c, r;

	while ((c = getopt_long(argc, argv, "hVm::", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return EXIT_OK;
		}
		if (c == 'V') {
			printf("%s\n", THINMETA_VERSION);
			return EXIT_OK;
		}
		r = parse_opt(c, &a);
		if (r)
			return r;
	}
	if (optind >= argc)
		return usage_error("No input file provided.");
	if (optind + 1 < argc)
		return usage_error("too many arguments");
	if (!a.records)
		return usage_error("--records FILE is required");
	if (a.o.headers && a.o.format != TRF_TSV)
		return usage_error("--headers goes with --tsv");
	a.o.path = argv[optind];
	return run(&a);
}
