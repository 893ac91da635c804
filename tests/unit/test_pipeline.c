/*
 * Module boundaries end to end, in memory and in temporary files: the XML
 * reader feeds the restorer, the restored metadata passes the checker, the
 * dump walker feeds the XML writer, and thin_ls / thin_rmap / usage read the
 * same metadata.  Each test asserts a fact that a broken module would change.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check/check.h"
#include "cmd/dump.h"
#include "cmd/ls.h"
#include "cmd/restore.h"
#include "cmd/rmap.h"
#include "io/io.h"
#include "spacemap/spacemap.h"
#include "thin/metadata.h"
#include "thin/superblock.h"
#include "thin/usage.h"
#include "thin/view.h"
#include "findings/findings.h"
#include "util/report.h"
#include "xml/xml_reader.h"
#include "xml/xml_writer.h"

/* dev 0: 6 blocks (a run of 4 and 2 singles); dev 1: its snapshot sharing 0..3, own 4 */
static const char POOL_XML[] =
	"<superblock uuid=\"\" time=\"1\" transaction=\"3\" flags=\"0\" version=\"2\" "
	"data_block_size=\"128\" nr_data_blocks=\"100\">\n"
	"  <device dev_id=\"0\" mapped_blocks=\"6\" transaction=\"0\" creation_time=\"0\" "
	"snap_time=\"1\">\n"
	"    <range_mapping origin_begin=\"0\" data_begin=\"10\" length=\"4\" time=\"0\"/>\n"
	"    <single_mapping origin_block=\"7\" data_block=\"20\" time=\"0\"/>\n"
	"    <single_mapping origin_block=\"9\" data_block=\"30\" time=\"1\"/>\n"
	"  </device>\n"
	"  <device dev_id=\"1\" mapped_blocks=\"5\" transaction=\"2\" creation_time=\"1\" "
	"snap_time=\"1\">\n"
	"    <range_mapping origin_begin=\"0\" data_begin=\"10\" length=\"4\" time=\"0\"/>\n"
	"    <single_mapping origin_block=\"4\" data_block=\"40\" time=\"1\"/>\n"
	"  </device>\n"
	"</superblock>\n";

struct xml_src {
	const char *buf;
	size_t len;
};

static int produce(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	const struct xml_src *s = ctx;

	return xml_read_mem("pool.xml", s->buf, s->len, v, err, errlen);
}

/* Restores xml into a fresh file of nr_blocks metadata blocks; returns its path. */
static char *restore_to_file(const char *xml, uint64_t nr_blocks)
{
	struct xml_src src = { xml, strlen(xml) };
	struct thin_restore_opts o = { 0 };
	struct thin_restore_stats st;
	struct ioe *e = ioe_mem_create(nr_blocks);
	char err[256] = "";
	char *path = strdup("/tmp/thinmeta-unit-XXXXXX");
	int fd;

	cr_assert_not_null(e);
	cr_assert_eq(thin_restore_ioe(e, &o, produce, &src, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_gt(st.metadata_blocks, 0);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, ioe_mem_data(e), nr_blocks * 4096), (ssize_t)(nr_blocks * 4096));
	close(fd);
	ioe_destroy(e);
	return path;
}

static char *dump_to_string(const char *path)
{
	struct thin_dump_opts o = { 0 };
	struct thin_md *md;
	struct xml_writer *w;
	struct ir_visitor v;
	char msg[THIN_DUMP_MSG_LEN], *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_eq(thin_md_open(path, 0, &md, msg, sizeof(msg)), 0, "%s", msg);
	w = xml_writer_create(f);
	xml_writer_visitor(w, &v);
	cr_assert_eq(thin_dump(md, &o, &v, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(xml_writer_flush(w), 0);
	xml_writer_destroy(w);
	thin_md_close(md);
	fclose(f);
	return buf;
}

Test(pipeline, xml_restore_dump_round_trip_is_byte_identical)
{
	char *path = restore_to_file(POOL_XML, 256);
	char *out = dump_to_string(path);

	cr_assert_str_eq(out, POOL_XML);
	free(out);
	unlink(path);
	free(path);
}

Test(pipeline, restored_metadata_checks_clean_and_counts_mappings)
{
	char *path = restore_to_file(POOL_XML, 256);
	struct thin_check_opts o = { 0 };
	struct thin_check_result res;
	struct report *rep = rep_create(NULL, 1);
	char msg[256];

	cr_assert_eq(thin_check(path, &o, rep, &res, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert(thin_check_passed(&o, &res), "findings: %zu", rep_nr_findings(rep));
	cr_assert_eq(res.transaction_id, 3);
	cr_assert_eq(res.nr_devices, 2);
	cr_assert_eq(res.data_leaks, 0);
	rep_destroy(rep);
	unlink(path);
	free(path);
}

Test(pipeline, checker_finds_a_corrupted_leaf)
{
	char *path = restore_to_file(POOL_XML, 256);
	struct thin_check_opts o = { 0 };
	struct thin_check_result res;
	struct report *rep = rep_create(NULL, 1);
	struct thin_view v;
	char msg[256];
	FILE *f;

	/* dev 0's bottom-level root is a leaf: flip one byte of its keys */
	cr_assert_eq(thin_view_open(path, 0, 0, &v, msg, sizeof(msg)), 0, "%s", msg);
	uint64_t leaf = v.devs.devs[0].root;
	thin_view_close(&v);
	f = fopen(path, "r+");
	cr_assert_not_null(f);
	fseek(f, (long)(leaf * 4096 + 40), SEEK_SET);
	fputc(0x55, f);
	fclose(f);
	cr_assert_eq(thin_check(path, &o, rep, &res, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_not(thin_check_passed(&o, &res));
	cr_assert_geq(res.outcome, DMG_FATAL);
	cr_assert_geq(rep_count_code(rep, RC_NODE_CSUM), 1, "a checksum finding");
	rep_destroy(rep);
	unlink(path);
	free(path);
}

Test(pipeline, usage_counts_exclusive_and_shared_blocks)
{
	char *path = restore_to_file(POOL_XML, 256);
	struct thin_view v;
	struct thin_usage u[2];
	char msg[256];

	cr_assert_eq(thin_view_open(path, 0, 0, &v, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(v.devs.nr, 2);
	cr_assert_eq(thin_usage_compute(v.md->bc, &v.devs, v.nr_data_blocks, u, msg, sizeof(msg)),
		     0, "%s", msg);
	cr_assert_eq(u[0].mapped, 6);
	cr_assert_eq(u[0].exclusive, 2, "blocks 20 and 30");
	cr_assert_eq(u[0].shared, 4);
	cr_assert_eq(u[1].mapped, 5);
	cr_assert_eq(u[1].exclusive, 1, "block 40");
	cr_assert_eq(u[1].highest, 4);
	thin_view_close(&v);
	unlink(path);
	free(path);
}

/*
 * Opens the pool at path (nr devices) and counts its usage both ways: a[]
 * by the plain walk (the memoising walk on sound metadata), b[] by the
 * split walk (the path walk); every field of the two must agree.
 */
static void usage_both_walks(const char *path, size_t nr, struct thin_usage *a,
			     struct thin_usage *b, struct thin_view *v)
{
	uint8_t orphan[8] = { 0 };
	uint64_t with_live[8];
	struct thin_usage_split split = { orphan, with_live, 0 };
	char msg[256];

	cr_assert_leq(nr, 8);
	cr_assert_eq(thin_view_open(path, 0, 0, v, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(v->devs.nr, nr);
	cr_assert_eq(thin_usage_compute(v->md->bc, &v->devs, v->nr_data_blocks, a, msg, sizeof(msg)),
		     0, "%s", msg);
	cr_assert_eq(thin_usage_compute_split(v->md->bc, &v->devs, v->nr_data_blocks, b, &split,
					      msg, sizeof(msg)),
		     0, "%s", msg);
	for (size_t d = 0; d < nr; d++) {
		cr_assert_eq(a[d].mapped, b[d].mapped, "dev %zu", d);
		cr_assert_eq(a[d].exclusive, b[d].exclusive, "dev %zu", d);
		cr_assert_eq(a[d].shared, b[d].shared, "dev %zu", d);
		cr_assert_eq(a[d].highest, b[d].highest, "dev %zu", d);
	}
}

/*
 * The plain walk of sound metadata goes through the memoising walker
 * (leaves counted on its leaf thread, leaves reached again read after the
 * walk); the split walk (thin_reconcile's) is the path walk, one block at
 * a time.  A pool with many leaves, leaves shared between devices (read
 * again), a run across an owner region (2^20 blocks) and a block mapped
 * twice: both walks give the counts the construction implies.
 */
Test(pipeline, usage_of_the_memoising_walk_matches_the_split_walk_and_the_construction)
{
	const unsigned N = 40000;
	const uint64_t edge = 1ull << 20;
	size_t cap = 16u << 20, len = 0;
	char *xml = malloc(cap);
	struct thin_view v;
	struct thin_usage a[3], b[3];

	cr_assert_not_null(xml);
#define ADD(...) (len += (size_t)snprintf(xml + len, cap - len, __VA_ARGS__))
	ADD("<superblock uuid=\"\" time=\"0\" transaction=\"1\" flags=\"0\" version=\"2\" "
	    "data_block_size=\"128\" nr_data_blocks=\"%llu\">\n", (unsigned long long)(edge + 1000));
	/* dev 0: v -> 2v, every mapping its own run */
	ADD("  <device dev_id=\"0\" mapped_blocks=\"%u\" transaction=\"0\" creation_time=\"0\" "
	    "snap_time=\"0\">\n", N);
	for (unsigned i = 0; i < N; i++)
		ADD("    <single_mapping origin_block=\"%u\" data_block=\"%u\" time=\"0\"/>\n", i, 2 * i);
	ADD("  </device>\n");
	/* dev 1: shares the first half (whole leaves), then v -> 2v + 1 */
	ADD("  <device dev_id=\"1\" mapped_blocks=\"%u\" transaction=\"0\" creation_time=\"0\" "
	    "snap_time=\"0\">\n", N);
	for (unsigned i = 0; i < N; i++)
		ADD("    <single_mapping origin_block=\"%u\" data_block=\"%u\" time=\"0\"/>\n", i,
		    i < N / 2 ? 2 * i : 2 * i + 1);
	ADD("  </device>\n");
	/* dev 2: a run of 200 across the owner region edge, and data block edge + 500 twice */
	ADD("  <device dev_id=\"2\" mapped_blocks=\"202\" transaction=\"0\" creation_time=\"0\" "
	    "snap_time=\"0\">\n"
	    "    <range_mapping origin_begin=\"0\" data_begin=\"%llu\" length=\"200\" time=\"0\"/>\n"
	    "    <single_mapping origin_block=\"300\" data_block=\"%llu\" time=\"0\"/>\n"
	    "    <single_mapping origin_block=\"301\" data_block=\"%llu\" time=\"0\"/>\n"
	    "  </device>\n</superblock>\n",
	    (unsigned long long)(edge - 100), (unsigned long long)(edge + 500),
	    (unsigned long long)(edge + 500));
#undef ADD
	cr_assert_lt(len, cap);

	char *path = restore_to_file(xml, 4096);

	free(xml);
	usage_both_walks(path, 3, a, b, &v);
	cr_assert_eq(a[0].mapped, N);
	cr_assert_eq(a[0].exclusive, N / 2);
	cr_assert_eq(a[0].shared, N / 2);
	cr_assert_eq(a[1].exclusive, N / 2);
	cr_assert_eq(a[1].shared, N / 2);
	cr_assert_eq(a[2].mapped, 202);
	cr_assert_eq(a[2].exclusive, 200, "the run across the edge; the block mapped twice is shared");
	cr_assert_eq(a[2].shared, 2);
	thin_view_close(&v);
	unlink(path);
	free(path);
}

/*
 * Whole trees shared: thin_restore gives identical devices one tree, so
 * the second device reaches the root again (an internal node: every leaf
 * below is read again once) and the third reaches it a third time (no
 * owner changes).  A fourth device has its own tree of other blocks.  The
 * first three share everything, only because of the visits again; the
 * fourth shares nothing; the memoising walk agrees with the path walk.
 */
Test(pipeline, usage_counts_trees_shared_whole_once_per_device)
{
	const unsigned N = 30000;
	size_t cap = 16u << 20, len = 0;
	char *xml = malloc(cap);
	struct thin_view v;
	struct thin_usage a[4], b[4];

	cr_assert_not_null(xml);
#define ADD(...) (len += (size_t)snprintf(xml + len, cap - len, __VA_ARGS__))
	ADD("<superblock uuid=\"\" time=\"0\" transaction=\"1\" flags=\"0\" version=\"2\" "
	    "data_block_size=\"128\" nr_data_blocks=\"%u\">\n", 2 * N + 10);
	for (unsigned d = 0; d < 4; d++) {
		ADD("  <device dev_id=\"%u\" mapped_blocks=\"%u\" transaction=\"0\" "
		    "creation_time=\"0\" snap_time=\"0\">\n", d, N);
		/* dev 3: other blocks at other virtual blocks */
		for (unsigned i = 0; i < N; i++)
			ADD("    <single_mapping origin_block=\"%u\" data_block=\"%u\" time=\"0\"/>\n",
			    d == 3 ? i + 7 : i, d == 3 ? 2 * i + 1 : 2 * i);
		ADD("  </device>\n");
	}
	ADD("</superblock>\n");
#undef ADD
	cr_assert_lt(len, cap);

	char *path = restore_to_file(xml, 4096);

	free(xml);
	usage_both_walks(path, 4, a, b, &v);
	cr_assert_eq(v.devs.devs[1].root, v.devs.devs[0].root, "restore shares the whole tree");
	cr_assert_eq(v.devs.devs[2].root, v.devs.devs[0].root);
	cr_assert_neq(v.devs.devs[3].root, v.devs.devs[0].root);
	for (unsigned d = 0; d < 4; d++) {
		cr_assert_eq(a[d].mapped, N, "dev %u", d);
		cr_assert_eq(a[d].exclusive, d == 3 ? N : 0, "dev %u", d);
		cr_assert_eq(a[d].shared, d == 3 ? 0 : N, "dev %u", d);
		cr_assert_eq(a[d].highest, d == 3 ? N + 6 : N - 1, "dev %u", d);
	}
	thin_view_close(&v);
	unlink(path);
	free(path);
}

static char *run_ls(const char *path, const char *fields, int json)
{
	enum thin_ls_field f[8];
	size_t nr;
	struct thin_ls_opts o = { .path = path, .fields = f, .json = json };
	char msg[256], *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	cr_assert_eq(thin_ls_parse_fields(fields, f, 8, &nr, msg, sizeof(msg)), 0, "%s", msg);
	o.nr_fields = nr;
	cr_assert_eq(thin_ls(&o, out, msg, sizeof(msg)), 0, "%s", msg);
	fclose(out);
	return buf;
}

Test(pipeline, thin_ls_table_and_field_errors)
{
	char *path = restore_to_file(POOL_XML, 256);
	char *t = run_ls(path, "DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS", 0);
	enum thin_ls_field f[4];
	size_t nr;
	char msg[128];

	cr_assert_str_eq(t, "DEV MAPPED_BLOCKS EXCLUSIVE_BLOCKS SHARED_BLOCKS \n"
			    "  0             6                2             4 \n"
			    "  1             5                1             4 \n");
	free(t);
	cr_assert_eq(thin_ls_parse_fields("DEV,NOPE", f, 4, &nr, msg, sizeof(msg)), -EINVAL);
	cr_assert_not_null(strstr(msg, "NOPE"), "%s", msg);
	unlink(path);
	free(path);
}

Test(pipeline, rmap_reports_who_maps_a_shared_range)
{
	char *path = restore_to_file(POOL_XML, 256);
	struct thin_region reg;
	const char *why = NULL;
	struct thin_rmap_opts o = { .path = path, .regions = &reg, .nr_regions = 1,
				    .all_devices = 1 };
	char msg[256], *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	cr_assert_eq(thin_rmap_parse_region("10..12", &reg, &why), 0);
	cr_assert_eq(reg.begin, 10);
	cr_assert_eq(reg.end, 12);
	cr_assert_lt(thin_rmap_parse_region("12..10", &reg, &why), 0, "an empty region");
	cr_assert_eq(thin_rmap_parse_region("10..12", &reg, &why), 0);
	cr_assert_eq(thin_rmap(&o, out, msg, sizeof(msg)), 0, "%s", msg);
	fclose(out);
	/* data 10..12 is mapped by both devices at virtual 0..2 */
	cr_assert_not_null(strstr(buf, "data 10..12 -> thin(0) 0..2"), "%s", buf);
	cr_assert_not_null(strstr(buf, "data 10..12 -> thin(1) 0..2"), "%s", buf);
	free(buf);
	unlink(path);
	free(path);
}

Test(pipeline, xml_reader_reports_position_of_bad_input)
{
	static const char bad[] = "<superblock uuid=\"\" time=\"1\" transaction=\"1\" version=\"2\" "
				  "data_block_size=\"128\" nr_data_blocks=\"100\">\n"
				  "  <device dev_id=\"x\" mapped_blocks=\"0\" transaction=\"0\" "
				  "creation_time=\"0\" snap_time=\"0\">\n";
	struct ir_visitor v = { 0 };
	char err[256] = "";

	cr_assert_lt(xml_read_mem("bad.xml", bad, sizeof(bad) - 1, &v, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, "bad.xml:2"), "position in: %s", err);
}

Test(pipeline, restore_into_too_small_a_device_says_how_big)
{
	struct xml_src src = { POOL_XML, strlen(POOL_XML) };
	struct thin_restore_opts o = { 0 };
	struct thin_restore_stats st;
	struct ioe *e = ioe_mem_create(4);
	char err[256] = "";

	cr_assert_lt(thin_restore_ioe(e, &o, produce, &src, &st, err, sizeof(err)), 0);
	cr_assert_neq(err[0], '\0', "a message");
	ioe_destroy(e);
}

/*
 * thin_check reads space-map bitmaps in runs of consecutive blocks.  A bad
 * sector under one bitmap must cost only that bitmap: the run is read again
 * block by block, so exactly one bitmap is reported unreadable and every
 * other one is still compared (no count is reported wrong).
 */
Test(pipeline, a_bad_bitmap_block_costs_only_its_own_bitmap)
{
	/* 6 data bitmaps (16320 entries each), a mapping in every one */
	static char xml[4096];
	size_t len = 0;
	uint64_t nr_data = 6 * 16320ull, nr_md = 512;
	unsigned tried = 0;

	len += (size_t)snprintf(xml + len, sizeof(xml) - len,
				"<superblock uuid=\"\" time=\"0\" transaction=\"1\" flags=\"0\" "
				"version=\"2\" data_block_size=\"128\" nr_data_blocks=\"%llu\">\n"
				"  <device dev_id=\"0\" mapped_blocks=\"6\" transaction=\"0\" "
				"creation_time=\"0\" snap_time=\"0\">\n",
				(unsigned long long)nr_data);
	for (unsigned i = 0; i < 6; i++)
		len += (size_t)snprintf(xml + len, sizeof(xml) - len,
					"    <single_mapping origin_block=\"%u\" data_block=\"%u\" "
					"time=\"0\"/>\n", i, i * 16320 + 5);
	snprintf(xml + len, sizeof(xml) - len, "  </device>\n</superblock>\n");

	char *path = restore_to_file(xml, nr_md);
	FILE *f = fopen(path, "rb");
	uint8_t *img = malloc(nr_md * 4096);

	cr_assert(f && img);
	cr_assert_eq(fread(img, 4096, nr_md, f), nr_md);
	fclose(f);
	for (uint64_t b = 1; b < nr_md; b++) {
		struct thin_check_opts o = { 0 };
		struct thin_check_result res;
		struct report *rep;
		struct ioe *e;
		char msg[256];

		if (thin_block_check(img + b * 4096, b, &sm_bitmap_validator))
			continue;   /* not a bitmap */
		tried++;
		e = ioe_mem_create(nr_md);
		rep = rep_create(NULL, 1);
		cr_assert(e && rep);
		memcpy(ioe_mem_data(e), img, nr_md * 4096);
		ioe_mem_bad_block(e, b);
		cr_assert_eq(thin_check_ioe(e, &o, rep, &res, msg, sizeof(msg)), 0, "%s", msg);
		cr_assert_not(thin_check_passed(&o, &res), "bitmap block %llu unreadable",
			      (unsigned long long)b);
		cr_assert_eq(rep_count_code(rep, RC_SM_BITMAP_IO), 1, "block %llu: %zu io findings",
			     (unsigned long long)b, rep_count_code(rep, RC_SM_BITMAP_IO));
		cr_assert_eq(rep_count_code(rep, RC_SM_BAD_COUNT), 0, "block %llu",
			     (unsigned long long)b);
		rep_destroy(rep);
		ioe_destroy(e);
	}
	cr_assert_geq(tried, 7, "6 data bitmaps and a metadata one, found %u", tried);
	free(img);
	unlink(path);
	free(path);
}
