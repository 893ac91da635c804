#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "names/names_xml.h"
#include "xml/xml_reader.h"
#include "xml/xml_writer.h"

/*----------------------------------------------------------------*/
/* An inner visitor that records what reaches it. */

struct rec {
	char log[4096];
	int fail_device;   /* begin_device returns -EIO with a reason */
	char err[128];
};

static void logf_(struct rec *r, const char *s)
{
	strncat(r->log, s, sizeof(r->log) - strlen(r->log) - 1);
}

static int r_sb(void *ctx, const struct ir_superblock *sb)
{
	(void)sb;
	logf_(ctx, "S");
	return 0;
}

static int r_dev(void *ctx, const struct ir_device *d)
{
	struct rec *r = ctx;
	char b[32];

	if (r->fail_device) {
		snprintf(r->err, sizeof(r->err), "inner says no");
		return -EIO;
	}
	snprintf(b, sizeof(b), "D%llu", (unsigned long long)d->dev_id);
	logf_(r, b);
	return 0;
}

static int r_map(void *ctx, uint64_t ob, uint64_t db, uint64_t len, uint32_t t)
{
	char b[64];

	(void)t;
	snprintf(b, sizeof(b), "R%llu:%llu:%llu", (unsigned long long)ob, (unsigned long long)db,
		 (unsigned long long)len);
	logf_(ctx, b);
	return 0;
}

static int r_single(void *ctx, uint64_t ob, uint64_t db, uint32_t t)
{
	return r_map(ctx, ob, db, 1, t);
}

static int r_comment(void *ctx, const char *text)
{
	logf_(ctx, "C[");
	logf_(ctx, text);
	logf_(ctx, "]");
	return 0;
}

static void rec_visitor(struct rec *r, struct ir_visitor *v)
{
	memset(v, 0, sizeof(*v));
	v->ctx = r;
	v->begin_superblock = r_sb;
	v->begin_device = r_dev;
	v->range_map = r_map;
	v->single_map = r_single;
	v->comment = r_comment;
	v->err = r->err;
	v->errlen = sizeof(r->err);
}

#define SB "<superblock uuid=\"\" time=\"0\" transaction=\"3\" flags=\"0\" version=\"2\" " \
	   "data_block_size=\"128\" nr_data_blocks=\"100\">\n"
#define DEV(id, tr, ct) "  <device dev_id=\"" #id "\" mapped_blocks=\"1\" transaction=\"" #tr \
			"\" creation_time=\"" #ct "\" snap_time=\"0\">\n"
#define MAP(o) "    <single_mapping origin_block=\"" #o "\" data_block=\"" #o "\" time=\"0\"/>\n"

static int collect(const char *xml, struct thin_names_collect *c, struct rec *r, char *err,
		   size_t errlen)
{
	struct ir_visitor inner, v;

	rec_visitor(r, &inner);
	thin_names_collect_visitor(c, &inner, &v);
	return xml_read_mem("t.xml", xml, strlen(xml), &v, err, errlen);
}

Test(names_xml, collect_round)
{
	static const char xml[] =
		SB "  <!-- thinmeta:names v1 tag=\"TM0123456789ABCD\" blob_max=\"16\" -->\n"
		DEV(1, 5, 2) "    <!-- thinmeta:blob dev_id=\"1\" flags=\"1\" hex=\"6869\" -->\n"
		MAP(0) "  </device>\n"
		DEV(2, 6, 3) "  <!-- an ordinary comment -->\n" MAP(1) "  </device>\n"
		DEV(3, 7, 4) "<!--thinmeta:blob dev_id=\"3\" flags=\"0\" hex=\"\"-->" MAP(2)
		"  </device>\n</superblock>\n";
	struct thin_names_collect c;
	struct rec r = { 0 };
	char err[256];
	const struct thin_names_entry *e;

	cr_assert_eq(collect(xml, &c, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert(c.seen_header && c.have_tag);
	cr_assert_eq(memcmp(c.tag, "TM0123456789ABCD", 16), 0);
	cr_assert_eq(c.t.blob_max, 16);
	cr_assert_eq(c.t.nr, 2);
	e = thin_names_find(&c.t, 1);
	cr_assert(e && e->blob_len == 2 && !memcmp(e->blob, "hi", 2) && e->flags == 1);
	cr_assert(e->transaction == 5 && e->creation_time == 2);
	e = thin_names_find(&c.t, 3);
	cr_assert(e && e->blob_len == 0 && e->transaction == 7 && e->creation_time == 4);
	/* thinmeta comments are consumed; other events and comments pass through */
	cr_assert_str_eq(r.log, "SD1R0:0:1D2C[ an ordinary comment ]R1:1:1D3R2:2:1");
	thin_names_collect_release(&c);
}

Test(names_xml, collect_rejects)
{
	static const char *const bad[] = {
		SB DEV(1, 0, 0) "<!-- thinmeta:blob dev_id=\"2\" flags=\"1\" hex=\"61\" -->",
		SB DEV(1, 0, 0) "<!-- thinmeta:blob dev_id=\"1\" flags=\"8\" hex=\"61\" -->",
		SB DEV(1, 0, 0) "<!-- thinmeta:blob dev_id=\"1\" flags=\"1\" hex=\"6\" -->",
		SB DEV(1, 0, 0) "<!-- thinmeta:blob dev_id=\"1\" flags=\"1\" hex=\"6G\" -->",
		SB DEV(1, 0, 0) "<!-- thinmeta:blob dev_id=\"1\" flags=\"1\" hex=\"61\" x=\"1\" -->",
		SB DEV(1, 0, 0) "<!-- thinmeta:blob dev_id=\"01\" flags=\"1\" hex=\"61\" -->",
		SB DEV(1, 0, 0) "<!-- thinmeta:blob dev_id=\"1\" flags=\"1\" hex=\"61\" -->"
				"<!-- thinmeta:blob dev_id=\"1\" flags=\"1\" hex=\"62\" -->",
		SB "<!-- thinmeta:blob dev_id=\"1\" flags=\"1\" hex=\"61\" -->",
		SB "<!-- thinmeta:names v2 tag=\"\" blob_max=\"16\" -->",
		SB "<!-- thinmeta:names v1 tag=\"TMnot-a-tag\" blob_max=\"16\" -->",
		SB "<!-- thinmeta:names v1 tag=\"\" blob_max=\"0\" -->",
		SB "<!-- thinmeta:names v1 tag=\"\" blob_max=\"4097\" -->",
		SB "<!-- thinmeta:names v1 tag=\"\" blob_max=\"1\" -->" DEV(1, 0, 0)
		   "<!-- thinmeta:blob dev_id=\"1\" flags=\"1\" hex=\"6162\" -->",
		SB "<!-- thinmeta:names v1 tag=\"\" blob_max=\"1\" -->"
		   "<!-- thinmeta:names v1 tag=\"\" blob_max=\"1\" -->",
		SB "<!-- thinmeta:whatever -->",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct thin_names_collect c;
		struct rec r = { 0 };
		char err[256], doc[1024];

		snprintf(doc, sizeof(doc), "%s</device></superblock>", bad[i]);
		cr_assert_lt(collect(doc, &c, &r, err, sizeof(err)), 0, "case %zu accepted", i);
		cr_assert(strstr(err, "t.xml:") && strlen(err) > 8, "case %zu: '%s'", i, err);
		thin_names_collect_release(&c);
	}
}

Test(names_xml, collect_forwards_inner_reason)
{
	struct thin_names_collect c;
	struct rec r = { .fail_device = 1 };
	char err[256];

	cr_assert_lt(collect(SB DEV(1, 0, 0) "</device></superblock>", &c, &r, err, sizeof(err)),
		     0);
	cr_assert(strstr(err, "inner says no"), "%s", err);
	thin_names_collect_release(&c);
}

/* The file reader's fast path must not take mapping lines inside a comment. */
Test(names_xml, multiline_comment_hides_mappings)
{
	static const char xml[] = SB DEV(1, 0, 0) MAP(0) "    <!-- old:\n" MAP(7)
		"    <range_mapping origin_begin=\"8\" data_begin=\"8\" length=\"2\" time=\"0\"/>\n"
		"    -->\n" MAP(1) "  </device>\n</superblock>\n";
	char path[] = "/tmp/test_names_xml.XXXXXX", err[256];
	struct ir_visitor v;
	struct rec r = { 0 };
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, xml, sizeof(xml) - 1), (ssize_t)(sizeof(xml) - 1));
	close(fd);
	rec_visitor(&r, &v);
	cr_assert_eq(xml_read_file(path, &v, err, sizeof(err)), 0, "%s", err);
	unlink(path);
	cr_assert(strstr(r.log, "R0:0:1") && strstr(r.log, "R1:1:1"), "%s", r.log);
	cr_assert_null(strstr(r.log, "R7:"), "%s", r.log);
	cr_assert_null(strstr(r.log, "R8:"), "%s", r.log);
	cr_assert(strstr(r.log, "C[ old:"), "%s", r.log);
}

/*----------------------------------------------------------------*/
/* Dump side */

static char *dump_with_names(const struct thin_names_table *t, const struct thin_dev_list *devs,
			     const uint8_t *tag, int *rc)
{
	struct ir_superblock sb = { .uuid = "", .version = 2, .data_block_size = 128 };
	struct ir_device d1 = { .dev_id = 1, .transaction = 5, .creation_time = 2 };
	struct ir_device d2 = { .dev_id = 2, .transaction = 6, .creation_time = 3 };
	struct thin_names_dump nd;
	struct ir_visitor wv, v;
	struct xml_writer *w;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	w = xml_writer_create(f);
	xml_writer_visitor(w, &wv);
	cr_assert_eq(thin_names_dump_visitor(&nd, t, devs, tag, &wv, &v), 0);
	*rc = v.begin_superblock(v.ctx, &sb);
	if (!*rc)
		*rc = v.begin_device(v.ctx, &d1);
	if (!*rc)
		*rc = v.single_map(v.ctx, 0, 0, 0);
	if (!*rc)
		*rc = v.end_device(v.ctx);
	if (!*rc)
		*rc = v.begin_device(v.ctx, &d2);
	if (!*rc)
		*rc = v.end_device(v.ctx);
	if (!*rc)
		*rc = v.end_superblock(v.ctx);
	thin_names_dump_release(&nd);
	xml_writer_flush(w);
	xml_writer_destroy(w);
	fclose(f);
	return buf;
}

Test(names_xml, dump_comments)
{
	struct thin_dev devs[2] = {
		{ .dev_id = 1, .has_details = 1, .details = { .transaction_id = 5, .creation_time = 2 } },
		{ .dev_id = 2, .has_details = 1, .details = { .transaction_id = 6, .creation_time = 3 } },
	};
	struct thin_dev_list l = { .devs = devs, .nr = 2 };
	struct thin_names_table t;
	struct thin_names_entry e1 = { .dev_id = 1, .blob_len = 2, .flags = TMN_E_UTF8,
				       .transaction = 5, .creation_time = 2, .blob = (uint8_t *)"hi" };
	/* an earlier incarnation of id 2: not written */
	struct thin_names_entry e2 = { .dev_id = 2, .blob_len = 1, .flags = TMN_E_UTF8,
				       .transaction = 1, .creation_time = 0, .blob = (uint8_t *)"x" };
	int rc;
	char *out;

	thin_names_init(&t);
	cr_assert_eq(thin_names_put(&t, &e1), 0);
	cr_assert_eq(thin_names_put(&t, &e2), 0);
	out = dump_with_names(&t, &l, (const uint8_t *)"TM0123456789ABCD", &rc);
	cr_assert_eq(rc, 0);
	cr_assert(strstr(out, "\">\n  <!-- thinmeta:names v1 tag=\"TM0123456789ABCD\" "
			      "blob_max=\"256\" -->\n  <device dev_id=\"1\""), "%s", out);
	cr_assert(strstr(out, "snap_time=\"0\">\n    <!-- thinmeta:blob dev_id=\"1\" flags=\"1\" "
			      "hex=\"6869\" -->\n    <single_mapping"), "%s", out);
	cr_assert_null(strstr(out, "dev_id=\"2\" flags"), "%s", out);
	free(out);
	/* an untagged pool: tag="" */
	out = dump_with_names(&t, &l, (const uint8_t *)"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", &rc);
	cr_assert(strstr(out, "tag=\"\""), "%s", out);
	free(out);
	thin_names_release(&t);
}

Test(names_xml, writer_refuses_bad_comments)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct xml_writer *w = xml_writer_create(f);
	struct ir_visitor v;

	xml_writer_visitor(w, &v);
	cr_assert_eq(v.comment(v.ctx, "a--b"), -EINVAL);
	cr_assert_eq(v.comment(v.ctx, "ends-"), -EINVAL);
	cr_assert_eq(v.comment(v.ctx, "two\nlines"), -EINVAL);
	cr_assert_eq(v.comment(v.ctx, " fine "), 0);
	xml_writer_flush(w);
	xml_writer_destroy(w);
	fclose(f);
	cr_assert_str_eq(buf, "<!-- fine -->\n");
	free(buf);
}

Test(names_xml, format_escapes)
{
	struct thin_names_entry e = { .dev_id = 1, .flags = TMN_E_UTF8 };
	char buf[THIN_NAMES_FORMAT_MAX];

	e.blob = (uint8_t *)"a b\\\"\t\xc3\xa9";
	e.blob_len = 8;
	thin_names_format(&e, TMN_STYLE_TABLE, buf, sizeof(buf));
	cr_assert_str_eq(buf, "a\\x20b\\x5c\"\\x09\xc3\xa9");
	thin_names_format(&e, TMN_STYLE_JSON, buf, sizeof(buf));
	cr_assert_str_eq(buf, "a b\\\\\\\"\\u0009\xc3\xa9");
	e.flags = 0;
	e.blob = (uint8_t *)"\x00\xff";
	e.blob_len = 2;
	thin_names_format(&e, TMN_STYLE_TABLE, buf, sizeof(buf));
	cr_assert_str_eq(buf, "hex:00ff");
	/* truncation keeps the NUL */
	thin_names_format(&e, TMN_STYLE_TABLE, buf, 4);
	cr_assert_str_eq(buf, "hex");
}
