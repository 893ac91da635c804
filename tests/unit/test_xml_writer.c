/*
 * The XML and human-readable writers, and the dump walker that feeds them
 * (run merging, filters, overrides, damage), on in-memory metadata.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btree/btree.h"
#include "cmd/dump.h"
#include "xml/human_readable.h"
#include "thin/metadata.h"
#include "thin/superblock.h"
#include "xml/xml_writer.h"

/*----------------------------------------------------------------*/
/* Writers fed by hand */

struct sink {
	char *buf;
	size_t len;
	FILE *f;
};

static void sink_open(struct sink *s)
{
	s->buf = NULL;
	s->len = 0;
	s->f = open_memstream(&s->buf, &s->len);
	cr_assert(s->f);
}

static void sink_close(struct sink *s)
{
	fclose(s->f);
	free(s->buf);
}

/* The REFERENCE.md §2.3 pool, as events. */
static void emit_example(const struct ir_visitor *v)
{
	struct ir_superblock sb = { .uuid = "", .time = 2, .transaction = 5, .flags = 0,
				    .version = 2, .data_block_size = 128, .nr_data_blocks = 1024 };
	struct ir_device d1 = { 1, 12, 0, 0, 1 }, d2 = { 2, 9, 3, 1, 2 };

	cr_assert_eq(v->begin_superblock(v->ctx, &sb), 0);
	cr_assert_eq(v->begin_device(v->ctx, &d1), 0);
	cr_assert_eq(v->range_map(v->ctx, 0, 0, 8, 0), 0);
	cr_assert_eq(v->single_map(v->ctx, 10, 20, 0), 0);
	cr_assert_eq(v->range_map(v->ctx, 100, 200, 3, 1), 0);
	cr_assert_eq(v->end_device(v->ctx), 0);
	cr_assert_eq(v->begin_device(v->ctx, &d2), 0);
	cr_assert_eq(v->end_device(v->ctx), 0);
	cr_assert_eq(v->end_superblock(v->ctx), 0);
}

Test(xml_writer, writes_the_0_9_0_dialect_byte_for_byte)
{
	struct sink s;
	struct ir_visitor v;
	struct xml_writer *w;

	sink_open(&s);
	w = xml_writer_create(s.f);
	cr_assert(w);
	xml_writer_visitor(w, &v);
	emit_example(&v);
	cr_assert_eq(xml_writer_flush(w), 0);
	xml_writer_destroy(w);
	cr_assert_str_eq(s.buf,
		"<superblock uuid=\"\" time=\"2\" transaction=\"5\" flags=\"0\" version=\"2\" "
		"data_block_size=\"128\" nr_data_blocks=\"1024\">\n"
		"  <device dev_id=\"1\" mapped_blocks=\"12\" transaction=\"0\" creation_time=\"0\" "
		"snap_time=\"1\">\n"
		"    <range_mapping origin_begin=\"0\" data_begin=\"0\" length=\"8\" time=\"0\"/>\n"
		"    <single_mapping origin_block=\"10\" data_block=\"20\" time=\"0\"/>\n"
		"    <range_mapping origin_begin=\"100\" data_begin=\"200\" length=\"3\" time=\"1\"/>\n"
		"  </device>\n"
		"  <device dev_id=\"2\" mapped_blocks=\"9\" transaction=\"3\" creation_time=\"1\" "
		"snap_time=\"2\">\n"
		"  </device>\n"
		"</superblock>\n");
	sink_close(&s);
}

Test(xml_writer, numbers_use_the_full_range_and_flags_are_always_written)
{
	struct sink s;
	struct ir_visitor v;
	struct xml_writer *w;
	struct ir_superblock sb = { .uuid = "a\"<&>", .time = UINT32_MAX,
				    .transaction = UINT64_MAX, .has_flags = 0, .flags = 1,
				    .version = 1, .data_block_size = 2097152,
				    .nr_data_blocks = 10000000000ull, .has_metadata_snap = 1,
				    .metadata_snap = 99 };

	sink_open(&s);
	w = xml_writer_create(s.f);
	xml_writer_visitor(w, &v);
	cr_assert_eq(v.begin_superblock(v.ctx, &sb), 0);
	cr_assert_eq(v.single_map(v.ctx, 0, UINT64_MAX >> 24, 0xffffff), 0);
	cr_assert_eq(v.range_map(v.ctx, 9999999999999ull, 1, 100, 7), 0);
	cr_assert_eq(xml_writer_flush(w), 0);
	xml_writer_destroy(w);
	cr_assert_str_eq(s.buf,
		"<superblock uuid=\"a&quot;&lt;&amp;&gt;\" time=\"4294967295\" "
		"transaction=\"18446744073709551615\" flags=\"1\" version=\"1\" "
		"data_block_size=\"2097152\" nr_data_blocks=\"10000000000\" metadata_snap=\"99\">\n"
		"    <single_mapping origin_block=\"0\" data_block=\"1099511627775\" "
		"time=\"16777215\"/>\n"
		"    <range_mapping origin_begin=\"9999999999999\" data_begin=\"1\" length=\"100\" "
		"time=\"7\"/>\n");
	sink_close(&s);
}

/* Every number of digits, at both edges, as printf writes it (digits go straight into the buffer). */
Test(xml_writer, numbers_at_every_power_of_ten_match_printf)
{
	struct sink s;
	struct ir_visitor v;
	struct xml_writer *w;
	char *want = malloc(1 << 16);
	size_t len = 0;
	uint64_t p = 1;

	cr_assert(want);
	sink_open(&s);
	w = xml_writer_create(s.f);
	xml_writer_visitor(w, &v);
	for (unsigned k = 0; k < 20; k++, p *= 10) {
		uint64_t vals[3] = { p - 1, p, p + 1 };

		for (unsigned j = 0; j < 3; j++) {
			cr_assert_eq(v.range_map(v.ctx, vals[j], vals[j] / 3, vals[j] ? vals[j] : 1,
						 (uint32_t)(vals[j] & 0xffffff)), 0);
			len += (size_t)sprintf(want + len,
					       "    <range_mapping origin_begin=\"%llu\" data_begin=\"%llu\" "
					       "length=\"%llu\" time=\"%u\"/>\n",
					       (unsigned long long)vals[j], (unsigned long long)(vals[j] / 3),
					       (unsigned long long)(vals[j] ? vals[j] : 1),
					       (unsigned)(vals[j] & 0xffffff));
		}
	}
	cr_assert_eq(v.single_map(v.ctx, UINT64_MAX, UINT64_MAX - 1, 0), 0);
	len += (size_t)sprintf(want + len,
			       "    <single_mapping origin_block=\"%llu\" data_block=\"%llu\" time=\"0\"/>\n",
			       (unsigned long long)UINT64_MAX, (unsigned long long)(UINT64_MAX - 1));
	cr_assert_eq(xml_writer_flush(w), 0);
	xml_writer_destroy(w);
	cr_assert_eq(s.len, len);
	cr_assert_str_eq(s.buf, want);
	sink_close(&s);
	free(want);
}

Test(xml_writer, rust_defs_and_refs)
{
	struct sink s;
	struct ir_visitor v;
	struct xml_writer *w;
	struct ir_device d = { 3, 4, 5, 6, 7 };

	sink_open(&s);
	w = xml_writer_create(s.f);
	xml_writer_visitor(w, &v);
	cr_assert_eq(v.begin_def(v.ctx, "42"), 0);
	cr_assert_eq(v.single_map(v.ctx, 1, 2, 3), 0);
	cr_assert_eq(v.end_def(v.ctx), 0);
	cr_assert_eq(v.begin_device(v.ctx, &d), 0);
	cr_assert_eq(v.ref(v.ctx, "42"), 0);
	cr_assert_eq(v.end_device(v.ctx), 0);
	cr_assert_eq(xml_writer_flush(w), 0);
	xml_writer_destroy(w);
	cr_assert_str_eq(s.buf,
		"  <def name=\"42\">\n"
		"    <single_mapping origin_block=\"1\" data_block=\"2\" time=\"3\"/>\n"
		"  </def>\n"
		"  <device dev_id=\"3\" mapped_blocks=\"4\" transaction=\"5\" creation_time=\"6\" "
		"snap_time=\"7\">\n"
		"    <ref name=\"42\"/>\n"
		"  </device>\n");
	sink_close(&s);
}

Test(xml_writer, large_output_crosses_the_buffer_intact)
{
	struct sink s;
	struct ir_visitor v;
	struct xml_writer *w;
	char line[128];
	size_t off = 0;

	sink_open(&s);
	w = xml_writer_create(s.f);
	xml_writer_visitor(w, &v);
	for (uint64_t i = 0; i < 100000; i++)
		cr_assert_eq(v.single_map(v.ctx, i, i * 3, (uint32_t)(i & 7)), 0);
	cr_assert_eq(xml_writer_flush(w), 0);
	xml_writer_destroy(w);
	for (uint64_t i = 0; i < 100000; i++) {
		int n = snprintf(line, sizeof(line),
				 "    <single_mapping origin_block=\"%llu\" data_block=\"%llu\" "
				 "time=\"%u\"/>\n",
				 (unsigned long long)i, (unsigned long long)(i * 3),
				 (unsigned)(i & 7));
		cr_assert(off + (size_t)n <= s.len);
		cr_assert(!memcmp(s.buf + off, line, (size_t)n), "line %llu", (unsigned long long)i);
		off += (size_t)n;
	}
	cr_assert_eq(off, s.len);
	sink_close(&s);
}

Test(xml_writer, write_errors_are_returned)
{
	FILE *f = fopen("/dev/full", "w");
	struct ir_visitor v;
	struct xml_writer *w;
	int r = 0;

	if (!f)
		cr_skip_test("no /dev/full");
	w = xml_writer_create(f);
	xml_writer_visitor(w, &v);
	/* enough to overflow the buffer: the error surfaces from a callback */
	for (uint64_t i = 0; i < 100000 && !r; i++)
		r = v.range_map(v.ctx, i, i, 2, 0);
	cr_assert_eq(r, -ENOSPC);
	cr_assert_eq(xml_writer_flush(w), -ENOSPC);
	xml_writer_destroy(w);
	fclose(f);
}

Test(human_readable, matches_0_9_0)
{
	struct sink s;
	struct ir_visitor v;
	struct thin_hr_writer *w;

	sink_open(&s);
	w = thin_hr_writer_create(s.f);
	thin_hr_writer_visitor(w, &v);
	emit_example(&v);
	cr_assert_eq(thin_hr_writer_flush(w), 0);
	thin_hr_writer_destroy(w);
	cr_assert_str_eq(s.buf,
		"begin superblock: \"\", 2, 5, 0, 2, 128, 1024\n"
		"device: 1\nmapped_blocks: 12\ntransaction: 0\ncreation time: 0\nsnap time: 1\n"
		"    (0..7) -> (0..7), 0\n"
		"    10 -> 20, 0\n"
		"    (100..102) -> (200..202), 1\n"
		"\n"
		"device: 2\nmapped_blocks: 9\ntransaction: 3\ncreation time: 1\nsnap time: 2\n"
		"\n"
		"end superblock\n");
	sink_close(&s);
}

/*----------------------------------------------------------------*/
/* The walker, on metadata built in memory */

#define NR_MD_BLOCKS 64

struct pool {
	struct thin_md md;   /* filled by hand: no file behind it */
};

static void put_node(struct bc *bc, uint64_t loc, uint32_t flags, uint32_t vsize,
		     const uint64_t *keys, const void *vals, uint32_t nr)
{
	struct bc_block *b;
	struct disk_node_header *h;
	uint8_t *d;
	uint32_t max = bt_calc_max_entries(vsize);

	cr_assert_eq(bc_new(bc, loc, &bt_node_validator, &b), 0);
	d = bc_data_mut(b);
	h = (struct disk_node_header *)d;
	h->flags = cpu_to_le32(flags);
	h->blocknr = cpu_to_le64(loc);
	h->nr_entries = cpu_to_le32(nr);
	h->max_entries = cpu_to_le32(max);
	h->value_size = cpu_to_le32(vsize);
	for (uint32_t i = 0; i < nr; i++)
		put_le64(d + BT_HEADER_SIZE + 8 * i, keys[i]);
	memcpy(d + BT_HEADER_SIZE + 8 * (size_t)max, vals, (size_t)vsize * nr);
	bc_put(bc, b);
}

struct map { uint64_t origin, data; uint32_t time; };

/*
 * Device 1: mappings exercising every run-merging rule; device 7: one
 * mapping; a snapshot copy at block 10 with device 1 only.
 */
static void pool_build(struct pool *p)
{
	static const struct map m1[] = {
		{ 0, 10, 0 }, { 1, 11, 0 },             /* run of 2 */
		{ 2, 12, 1 }, { 3, 13, 1 }, { 4, 14, 1 }, /* time changes: new run */
		{ 6, 15, 1 },                           /* origin gap */
		{ 7, 17, 1 },                           /* data gap */
		{ 8, 16, 1 },                           /* data goes back */
		{ 9, 17, 2 },
	};
	uint64_t keys[16];
	uint8_t vals[16 * 24];
	struct thin_sb sb = { 0 };
	struct bc_block *b;
	struct thin_details d1 = { 9, 1, 0, 2 }, d7 = { 1, 4, 3, 3 };

	memset(p, 0, sizeof(*p));
	p->md.ioe = ioe_mem_create(NR_MD_BLOCKS);
	cr_assert(p->md.ioe);
	p->md.bc = bc_create(p->md.ioe, 32);
	cr_assert(p->md.bc);
	/* details (block 1), top level (2), device trees (3, 4) */
	keys[0] = 1, keys[1] = 7;
	thin_details_pack(&d1, vals);
	thin_details_pack(&d7, vals + 24);
	put_node(p->md.bc, 1, BT_LEAF_NODE, 24, keys, vals, 2);
	put_le64(vals, 3), put_le64(vals + 8, 4);
	put_node(p->md.bc, 2, BT_LEAF_NODE, 8, keys, vals, 2);
	for (size_t i = 0; i < sizeof(m1) / sizeof(m1[0]); i++) {
		keys[i] = m1[i].origin;
		put_le64(vals + 8 * i, thin_bt_pack(m1[i].data, m1[i].time));
	}
	put_node(p->md.bc, 3, BT_LEAF_NODE, 8, keys, vals, sizeof(m1) / sizeof(m1[0]));
	keys[0] = 100;
	put_le64(vals, thin_bt_pack(500, 3));
	put_node(p->md.bc, 4, BT_LEAF_NODE, 8, keys, vals, 1);
	/* snapshot copy: top level (5) with device 1 only, details shared */
	keys[0] = 1;
	put_le64(vals, 3);
	put_node(p->md.bc, 5, BT_LEAF_NODE, 8, keys, vals, 1);

	sb.magic = THIN_MAGIC;
	sb.version = 2;
	sb.time = 3;
	sb.trans_id = 6;
	sb.data_block_size = 128;
	sb.metadata_block_size = 8;
	sb.metadata_nr_blocks = NR_MD_BLOCKS;
	sb.data_sm.nr_blocks = 1000;
	sb.metadata_sm.nr_blocks = NR_MD_BLOCKS;
	sb.device_details_root = 1;
	sb.data_mapping_root = 2;
	sb.held_root = 10;
	cr_assert_eq(bc_new(p->md.bc, 0, &thin_sb_validator, &b), 0);
	thin_sb_pack(&sb, bc_data_mut(b));
	bc_put(p->md.bc, b);
	/* the snapshot copy: no space maps, older transaction */
	sb.blocknr = 10;
	sb.held_root = 0;
	sb.trans_id = 5;
	sb.data_sm.nr_blocks = 0;
	sb.metadata_sm.nr_blocks = 0;
	sb.data_mapping_root = 5;
	cr_assert_eq(bc_new(p->md.bc, 10, &thin_sb_validator, &b), 0);
	thin_sb_pack(&sb, bc_data_mut(b));
	bc_put(p->md.bc, b);
	cr_assert_eq(bc_flush(p->md.bc), 0);
	p->md.sb_err = thin_sb_read(p->md.bc, 0, &p->md.sb);
	cr_assert_eq(p->md.sb_err, 0);
}

static void pool_destroy(struct pool *p)
{
	bc_destroy(p->md.bc);
	ioe_destroy(p->md.ioe);
}

/* Re-reads everything from the "disk" (after a corruption). */
static void pool_reopen_cache(struct pool *p)
{
	bc_destroy(p->md.bc);
	p->md.bc = bc_create(p->md.ioe, 32);
	cr_assert(p->md.bc);
	p->md.sb_err = thin_sb_read(p->md.bc, 0, &p->md.sb);
}

static int dump_to_string(struct pool *p, const struct thin_dump_opts *o, struct sink *s,
			   char *msg)
{
	struct ir_visitor v;
	struct xml_writer *w;
	int r;

	sink_open(s);
	w = xml_writer_create(s->f);
	xml_writer_visitor(w, &v);
	r = thin_dump(&p->md, o, &v, msg, THIN_DUMP_MSG_LEN);
	cr_assert_eq(xml_writer_flush(w), 0);
	xml_writer_destroy(w);
	return r;
}

#define SB_LINE(tr, nr)                                                                 \
	"<superblock uuid=\"\" time=\"3\" transaction=\"" tr "\" flags=\"0\" version=\"2\" " \
	"data_block_size=\"128\" nr_data_blocks=\"" nr "\">\n"
#define DEV1 "  <device dev_id=\"1\" mapped_blocks=\"9\" transaction=\"1\" creation_time=\"0\" snap_time=\"2\">\n"
#define DEV1_BODY                                                                       \
	"    <range_mapping origin_begin=\"0\" data_begin=\"10\" length=\"2\" time=\"0\"/>\n" \
	"    <range_mapping origin_begin=\"2\" data_begin=\"12\" length=\"3\" time=\"1\"/>\n" \
	"    <single_mapping origin_block=\"6\" data_block=\"15\" time=\"1\"/>\n"            \
	"    <single_mapping origin_block=\"7\" data_block=\"17\" time=\"1\"/>\n"            \
	"    <single_mapping origin_block=\"8\" data_block=\"16\" time=\"1\"/>\n"            \
	"    <single_mapping origin_block=\"9\" data_block=\"17\" time=\"2\"/>\n"
#define DEV7 "  <device dev_id=\"7\" mapped_blocks=\"1\" transaction=\"4\" creation_time=\"3\" snap_time=\"3\">\n"
#define DEV7_BODY "    <single_mapping origin_block=\"100\" data_block=\"500\" time=\"3\"/>\n"
#define END_DEV "  </device>\n"

Test(dump, merges_runs_like_0_9_0)
{
	struct pool p;
	struct sink s;
	struct thin_dump_opts o = { 0 };
	char msg[THIN_DUMP_MSG_LEN];

	pool_build(&p);
	cr_assert_eq(dump_to_string(&p, &o, &s, msg), 0);
	cr_assert_str_eq(s.buf, SB_LINE("6", "1000") DEV1 DEV1_BODY END_DEV DEV7 DEV7_BODY END_DEV
				"</superblock>\n");
	sink_close(&s);
	pool_destroy(&p);
}

Test(dump, filters_skip_mappings_and_overrides)
{
	struct pool p;
	struct sink s;
	uint64_t ids[] = { 7, 12345 };
	struct thin_dump_opts o = { .dev_ids = ids, .nr_dev_ids = 2, .set_transaction_id = 1,
				    .transaction_id = 42, .set_nr_data_blocks = 1,
				    .nr_data_blocks = 7 };
	char msg[THIN_DUMP_MSG_LEN];

	pool_build(&p);
	cr_assert_eq(dump_to_string(&p, &o, &s, msg), 0);
	cr_assert_str_eq(s.buf, SB_LINE("42", "7") DEV7 DEV7_BODY END_DEV "</superblock>\n");
	sink_close(&s);
	o = (struct thin_dump_opts){ .skip_mappings = 1 };
	cr_assert_eq(dump_to_string(&p, &o, &s, msg), 0);
	cr_assert_str_eq(s.buf, SB_LINE("6", "1000") DEV1 END_DEV DEV7 END_DEV "</superblock>\n");
	sink_close(&s);
	pool_destroy(&p);
}

Test(dump, metadata_snapshot)
{
	struct pool p;
	struct sink s;
	struct thin_dump_opts o = { .metadata_snap = 1 };
	char msg[THIN_DUMP_MSG_LEN];

	pool_build(&p);
	cr_assert_eq(dump_to_string(&p, &o, &s, msg), 0);
	cr_assert_str_eq(s.buf, SB_LINE("5", "0") DEV1 DEV1_BODY END_DEV "</superblock>\n");
	sink_close(&s);
	o.snap_block_given = 1;
	o.snap_block = 11;
	cr_assert_eq(dump_to_string(&p, &o, &s, msg), -EINVAL);
	cr_assert_str_eq(msg, "metadata snapshot does not match that in superblock");
	cr_assert_eq(s.len, 0);
	sink_close(&s);
	pool_destroy(&p);
}

Test(dump, damaged_leaf_cuts_the_device_and_fails)
{
	struct pool p;
	struct sink s;
	struct thin_dump_opts o = { 0 };
	char msg[THIN_DUMP_MSG_LEN];

	pool_build(&p);
	ioe_mem_data(p.md.ioe)[4 * MD_BLOCK_SIZE + 100] ^= 0xff;   /* device 7's leaf */
	pool_reopen_cache(&p);
	cr_assert_eq(dump_to_string(&p, &o, &s, msg), THIN_DUMP_DAMAGED);
	cr_assert_str_eq(s.buf, SB_LINE("6", "1000") DEV1 DEV1_BODY END_DEV DEV7 END_DEV);
	cr_assert_str_eq(msg, "metadata contains errors (run thin_check for details).\n"
			      "perhaps you wanted to run with --repair");
	sink_close(&s);
	pool_destroy(&p);
}

Test(dump, damaged_details_tree_writes_nothing)
{
	struct pool p;
	struct sink s;
	struct thin_dump_opts o = { 0 };
	char msg[THIN_DUMP_MSG_LEN];

	pool_build(&p);
	ioe_mem_data(p.md.ioe)[1 * MD_BLOCK_SIZE + 100] ^= 0xff;
	pool_reopen_cache(&p);
	cr_assert_eq(dump_to_string(&p, &o, &s, msg), THIN_DUMP_DAMAGED);
	cr_assert_eq(s.len, 0);
	sink_close(&s);
	pool_destroy(&p);
}

Test(dump, superblock_errors_and_missing_snapshot)
{
	struct pool p;
	struct sink s;
	struct thin_dump_opts o = { 0 };
	char msg[THIN_DUMP_MSG_LEN];

	pool_build(&p);
	/* no snapshot recorded */
	p.md.sb.held_root = 0;
	o.metadata_snap = 1;
	cr_assert_eq(dump_to_string(&p, &o, &s, msg), -ENOENT);
	cr_assert_str_eq(msg, "no current metadata snap");
	sink_close(&s);
	/* bad checksum */
	ioe_mem_data(p.md.ioe)[200] ^= 1;
	pool_reopen_cache(&p);
	o.metadata_snap = 0;
	cr_assert_lt(dump_to_string(&p, &o, &s, msg), 0);
	cr_assert(!strncmp(msg, "bad checksum in superblock, wanted ", 35), "%s", msg);
	cr_assert_eq(s.len, 0);
	sink_close(&s);
	pool_destroy(&p);
}

static int stop_at_device(void *ctx, const struct ir_device *d)
{
	(void)ctx, (void)d;
	return IR_STOP;
}

static int fail_map(void *ctx, uint64_t o, uint64_t d, uint64_t l, uint32_t t)
{
	(void)ctx, (void)o, (void)d, (void)l, (void)t;
	return -EPIPE;
}

Test(dump, visitor_stop_and_errors)
{
	struct pool p;
	struct ir_visitor v = { .begin_device = stop_at_device };
	struct thin_dump_opts o = { 0 };
	char msg[THIN_DUMP_MSG_LEN];

	pool_build(&p);
	cr_assert_eq(thin_dump(&p.md, &o, &v, msg, sizeof(msg)), 0);
	v = (struct ir_visitor){ .range_map = fail_map };
	cr_assert_eq(thin_dump(&p.md, &o, &v, msg, sizeof(msg)), -EPIPE);
	cr_assert(strstr(msg, "cannot write output"), "%s", msg);
	pool_destroy(&p);
}
