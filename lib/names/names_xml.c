#include "names/names_xml.h"

#include "util/parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thin/pool_tag.h"

/*----------------------------------------------------------------*/
/* Opening and naming */

int thin_names_open_bound(const char *path, const uint8_t *uuid, uint32_t data_block_size,
			  const struct thin_dev_list *devs, struct thin_names_table *t,
			  enum thin_names_binding *b, char *msg, size_t msglen)
{
	char def[4096], why[300];
	int r;

	if (!path) {
		if (!thin_tag_is_valid(uuid)) {
			snprintf(msg, msglen, "the pool has no tag, so it has no default names table "
					      "(give the table's path)");
			return -ENOENT;
		}
		thin_names_default_path(uuid, def, sizeof(def));
		path = def;
	}
	r = thin_names_load(path, t, why, sizeof(why));
	if (r == -ENOENT) {
		snprintf(msg, msglen, "%s: no such names table", path);
		return r;
	}
	if (r == -EILSEQ) {
		snprintf(msg, msglen, "%s: names table corrupt (%s)", path, why);
		return r;
	}
	if (r < 0) {
		snprintf(msg, msglen, "%s", why);
		return r;
	}
	*b = thin_names_bind(t, uuid, data_block_size, devs);
	if (*b == TMN_UNBOUND) {
		snprintf(msg, msglen, "%s: the names table belongs to another pool (unbound)", path);
		thin_names_release(t);
		return -EPERM;
	}
	return 0;
}

const struct thin_names_entry *thin_names_of_dev(const struct thin_names_table *t,
						 const struct thin_dev *d)
{
	const struct thin_names_entry *e = thin_names_find(t, d->dev_id);

	if (!e || (e->flags & TMN_E_PENDING_DELETE))
		return NULL;
	if (e->transaction != TMN_TRANS_UNKNOWN &&
	    (!d->has_details || d->details.transaction_id != e->transaction ||
	     d->details.creation_time != e->creation_time))
		return NULL;
	return e;
}

void thin_names_format(const struct thin_names_entry *e, enum thin_names_style style, char *buf,
		       size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!len)
		return;
#define PUT(c)                            \
	do {                              \
		if (o + 1 < len)          \
			buf[o++] = (char)(c); \
	} while (0)
	if (!(e->flags & TMN_E_UTF8)) {
		PUT('h'); PUT('e'); PUT('x'); PUT(':');
		for (size_t i = 0; i < e->blob_len; i++) {
			PUT(hex[e->blob[i] >> 4]);
			PUT(hex[e->blob[i] & 15]);
		}
	} else {
		for (size_t i = 0; i < e->blob_len; i++) {
			unsigned ch = e->blob[i];

			if (style == TMN_STYLE_JSON && (ch == '"' || ch == '\\')) {
				PUT('\\');
				PUT(ch);
			} else if (style == TMN_STYLE_JSON && (ch < 0x20 || ch == 0x7f)) {
				PUT('\\'); PUT('u'); PUT('0'); PUT('0');
				PUT(hex[ch >> 4]);
				PUT(hex[ch & 15]);
			} else if (style == TMN_STYLE_TABLE &&
				   (ch <= 0x20 || ch == 0x7f || ch == '\\')) {
				PUT('\\'); PUT('x');
				PUT(hex[ch >> 4]);
				PUT(hex[ch & 15]);
			} else {
				PUT(ch);
			}
		}
	}
#undef PUT
	buf[o] = '\0';
}

/*----------------------------------------------------------------*/
/* Dump proxy */

/* hex of the longest blob, the fixed text and three numbers */
#define COMMENT_MAX (2 * TMN_BLOB_MAX_LIMIT + 128)

static int d_begin_sb(void *ctx, const struct ir_superblock *sb)
{
	struct thin_names_dump *d = ctx;
	const struct ir_visitor *in = d->inner;
	int r = in->begin_superblock ? in->begin_superblock(in->ctx, sb) : 0;

	if (r || !in->comment)
		return r;
	snprintf(d->buf, COMMENT_MAX, " thinmeta:names v1 tag=\"%s\" blob_max=\"%u\" ", d->tag,
		 (unsigned)d->t->blob_max);
	return in->comment(in->ctx, d->buf);
}

static int d_end_sb(void *ctx)
{
	struct thin_names_dump *d = ctx;

	return d->inner->end_superblock ? d->inner->end_superblock(d->inner->ctx) : 0;
}

static const struct thin_dev *find_dev(const struct thin_dev_list *l, uint64_t id)
{
	size_t lo = 0, hi = l->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->devs[mid].dev_id == id)
			return &l->devs[mid];
		if (l->devs[mid].dev_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int d_begin_dev(void *ctx, const struct ir_device *dev)
{
	static const char hex[] = "0123456789abcdef";
	struct thin_names_dump *d = ctx;
	const struct ir_visitor *in = d->inner;
	const struct thin_names_entry *e;
	const struct thin_dev *td;
	int r = in->begin_device ? in->begin_device(in->ctx, dev) : 0;
	int n;

	if (r || !in->comment)
		return r;
	td = find_dev(d->devs, dev->dev_id);
	e = td ? thin_names_of_dev(d->t, td) : NULL;
	if (!e)
		return 0;
	n = snprintf(d->buf, COMMENT_MAX, " thinmeta:blob dev_id=\"%" PRIu32 "\" flags=\"%u\" hex=\"",
		     e->dev_id, (unsigned)e->flags);
	for (size_t i = 0; i < e->blob_len; i++) {
		d->buf[n++] = hex[e->blob[i] >> 4];
		d->buf[n++] = hex[e->blob[i] & 15];
	}
	memcpy(d->buf + n, "\" ", 3);
	return in->comment(in->ctx, d->buf);
}

static int d_end_dev(void *ctx)
{
	struct thin_names_dump *d = ctx;

	return d->inner->end_device ? d->inner->end_device(d->inner->ctx) : 0;
}

static int d_begin_def(void *ctx, const char *name)
{
	struct thin_names_dump *d = ctx;

	return d->inner->begin_def ? d->inner->begin_def(d->inner->ctx, name) : 0;
}

static int d_end_def(void *ctx)
{
	struct thin_names_dump *d = ctx;

	return d->inner->end_def ? d->inner->end_def(d->inner->ctx) : 0;
}

static int d_ref(void *ctx, const char *name)
{
	struct thin_names_dump *d = ctx;

	return d->inner->ref ? d->inner->ref(d->inner->ctx, name) : 0;
}

static int d_single(void *ctx, uint64_t ob, uint64_t db, uint32_t time)
{
	struct thin_names_dump *d = ctx;

	return d->inner->single_map ? d->inner->single_map(d->inner->ctx, ob, db, time) : 0;
}

static int d_range(void *ctx, uint64_t ob, uint64_t db, uint64_t len, uint32_t time)
{
	struct thin_names_dump *d = ctx;

	return d->inner->range_map ? d->inner->range_map(d->inner->ctx, ob, db, len, time) : 0;
}

static int d_comment(void *ctx, const char *text)
{
	struct thin_names_dump *d = ctx;

	return d->inner->comment ? d->inner->comment(d->inner->ctx, text) : 0;
}

int thin_names_dump_visitor(struct thin_names_dump *d, const struct thin_names_table *t,
			    const struct thin_dev_list *devs, const uint8_t *tag,
			    const struct ir_visitor *inner, struct ir_visitor *out)
{
	memset(d, 0, sizeof(*d));
	d->t = t;
	d->devs = devs;
	d->inner = inner;
	if (thin_tag_is_valid(tag))
		thin_tag_format(tag, d->tag, sizeof(d->tag));
	d->buf = malloc(COMMENT_MAX);
	if (!d->buf)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	out->ctx = d;
	out->begin_superblock = d_begin_sb;
	out->end_superblock = d_end_sb;
	out->begin_device = d_begin_dev;
	out->end_device = d_end_dev;
	out->begin_def = d_begin_def;
	out->end_def = d_end_def;
	out->ref = d_ref;
	out->single_map = d_single;
	out->range_map = d_range;
	out->comment = d_comment;
	out->err = inner->err;
	out->errlen = inner->errlen;
	return 0;
}

void thin_names_dump_release(struct thin_names_dump *d)
{
	free(d->buf);
	d->buf = NULL;
}

/*----------------------------------------------------------------*/
/* Restore proxy */

static int c_fail(struct thin_names_collect *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int c_fail(struct thin_names_collect *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* An inner callback's result; its reason is copied to our err buffer. */
static int c_fwd(struct thin_names_collect *c, int r)
{
	if (r < 0 && c->inner->err && c->inner->err[0])
		snprintf(c->msg, sizeof(c->msg), "%s", c->inner->err);
	return r;
}

static int c_begin_sb(void *ctx, const struct ir_superblock *sb)
{
	struct thin_names_collect *c = ctx;
	const struct ir_visitor *in = c->inner;

	thin_names_release(&c->t);
	thin_names_init(&c->t);
	c->seen_header = c->have_tag = c->in_device = 0;
	memset(c->tag, 0, sizeof(c->tag));
	c->data_block_size = sb->data_block_size;
	c->transaction = sb->transaction;
	c->t.data_block_size = sb->data_block_size;
	return c_fwd(c, in->begin_superblock ? in->begin_superblock(in->ctx, sb) : 0);
}

static int c_end_sb(void *ctx)
{
	struct thin_names_collect *c = ctx;

	return c_fwd(c, c->inner->end_superblock ? c->inner->end_superblock(c->inner->ctx) : 0);
}

static int c_begin_dev(void *ctx, const struct ir_device *dev)
{
	struct thin_names_collect *c = ctx;

	c->in_device = 1;
	c->dev = *dev;
	return c_fwd(c, c->inner->begin_device ? c->inner->begin_device(c->inner->ctx, dev) : 0);
}

static int c_end_dev(void *ctx)
{
	struct thin_names_collect *c = ctx;

	c->in_device = 0;
	return c_fwd(c, c->inner->end_device ? c->inner->end_device(c->inner->ctx) : 0);
}

static int c_begin_def(void *ctx, const char *name)
{
	struct thin_names_collect *c = ctx;

	return c_fwd(c, c->inner->begin_def ? c->inner->begin_def(c->inner->ctx, name) : 0);
}

static int c_end_def(void *ctx)
{
	struct thin_names_collect *c = ctx;

	return c_fwd(c, c->inner->end_def ? c->inner->end_def(c->inner->ctx) : 0);
}

static int c_ref(void *ctx, const char *name)
{
	struct thin_names_collect *c = ctx;

	return c_fwd(c, c->inner->ref ? c->inner->ref(c->inner->ctx, name) : 0);
}

static int c_single(void *ctx, uint64_t ob, uint64_t db, uint32_t time)
{
	struct thin_names_collect *c = ctx;

	return c_fwd(c, c->inner->single_map ? c->inner->single_map(c->inner->ctx, ob, db, time)
					     : 0);
}

static int c_range(void *ctx, uint64_t ob, uint64_t db, uint64_t len, uint32_t time)
{
	struct thin_names_collect *c = ctx;

	return c_fwd(c, c->inner->range_map ? c->inner->range_map(c->inner->ctx, ob, db, len, time)
					    : 0);
}

/*
 * Attribute name="value" at *p (after spaces); the value (no escapes: our
 * values are digits, hex or a tag) goes to val.  Returns 0 or -1.
 */
static int attr(const char **p, const char *name, char *val, size_t vlen)
{
	const char *s = *p, *q;
	size_t n = strlen(name);

	while (*s == ' ' || *s == '\t')
		s++;
	if (strncmp(s, name, n) || s[n] != '=' || s[n + 1] != '"')
		return -1;
	s += n + 2;
	q = strchr(s, '"');
	if (!q || (size_t)(q - s) >= vlen)
		return -1;
	memcpy(val, s, (size_t)(q - s));
	val[q - s] = '\0';
	*p = q + 1;
	return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;

	/* the comment's numbers are canonical: no leading zeros */
	if ((s[0] == '0' && s[1]) || parse_u64(s, &v) < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

static int only_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return !*p;
}

/* the comment's hex is canonical: lower case only */
static int hexval(char ch)
{
	return ch >= 'A' && ch <= 'F' ? -1 : parse_xdigit(ch);
}

static int c_header(struct thin_names_collect *c, const char *p)
{
	char tag[THIN_TAG_STR], bm[16];
	uint64_t blob_max;

	if (c->seen_header)
		return c_fail(c, "more than one thinmeta:names comment");
	if (c->in_device || c->t.nr)
		return c_fail(c, "thinmeta:names comment after a device");
	if (strncmp(p, "v1", 2) || (p[2] != ' ' && p[2] != '\t'))
		return c_fail(c, "unsupported thinmeta:names version (expected v1)");
	p += 2;
	if (attr(&p, "tag", tag, sizeof(tag)) || attr(&p, "blob_max", bm, sizeof(bm)) ||
	    !only_spaces(p) || parse_uint(bm, TMN_BLOB_MAX_LIMIT, &blob_max) || !blob_max)
		return c_fail(c, "malformed thinmeta:names comment");
	if (tag[0]) {
		if (thin_tag_parse(tag, c->tag) < 0)
			return c_fail(c, "thinmeta:names: bad tag '%s'", tag);
		c->have_tag = 1;
	}
	c->t.blob_max = (uint16_t)blob_max;
	c->seen_header = 1;
	return 0;
}

static int c_blob(struct thin_names_collect *c, const char *p)
{
	char id[16], fl[8], *hx;
	uint64_t dev_id, flags;
	struct thin_names_entry e;
	size_t n;
	int r;

	if (!c->in_device)
		return c_fail(c, "thinmeta:blob comment outside a <device>");
	hx = malloc(2 * TMN_BLOB_MAX_LIMIT + 2);
	if (!hx)
		return -ENOMEM;
	if (attr(&p, "dev_id", id, sizeof(id)) || attr(&p, "flags", fl, sizeof(fl)) ||
	    attr(&p, "hex", hx, 2 * TMN_BLOB_MAX_LIMIT + 2) || !only_spaces(p) ||
	    parse_uint(id, THIN_MAX_DEV_ID, &dev_id) || parse_uint(fl, TMN_E_ALL, &flags)) {
		free(hx);
		return c_fail(c, "malformed thinmeta:blob comment");
	}
	n = strlen(hx);
	if (dev_id != c->dev.dev_id) {
		free(hx);
		return c_fail(c, "thinmeta:blob for dev_id %" PRIu64 " inside device %" PRIu64,
			      dev_id, c->dev.dev_id);
	}
	if (n % 2 || n / 2 > c->t.blob_max) {
		free(hx);
		return c_fail(c, "thinmeta:blob of dev_id %" PRIu64 ": %s", dev_id,
			      n % 2 ? "odd number of hex digits" : "longer than blob_max");
	}
	if (thin_names_find(&c->t, dev_id)) {
		free(hx);
		return c_fail(c, "second thinmeta:blob for dev_id %" PRIu64, dev_id);
	}
	memset(&e, 0, sizeof(e));
	e.dev_id = (uint32_t)dev_id;
	e.flags = (uint16_t)flags;
	e.blob_len = (uint16_t)(n / 2);
	e.transaction = c->dev.transaction;
	e.creation_time = c->dev.creation_time;
	e.blob = (uint8_t *)hx;   /* decoded in place: byte i is written after digits 2i, 2i+1 */
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hx[2 * i]), lo = hexval(hx[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(hx);
			return c_fail(c, "thinmeta:blob of dev_id %" PRIu64 ": bad hex digit",
				      dev_id);
		}
		hx[i] = (char)(hi << 4 | lo);
	}
	if (!e.blob_len)
		e.blob = NULL;
	r = thin_names_put(&c->t, &e);
	free(hx);
	return r < 0 ? c_fail(c, "thinmeta:blob of dev_id %" PRIu64 ": %s", dev_id, strerror(-r))
		     : 0;
}

static int c_comment(void *ctx, const char *text)
{
	struct thin_names_collect *c = ctx;
	const char *p = text;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!strncmp(p, "thinmeta:names", 14) && (p[14] == ' ' || p[14] == '\t'))
		return c_header(c, p + 15);
	if (!strncmp(p, "thinmeta:blob", 13) && (p[13] == ' ' || p[13] == '\t'))
		return c_blob(c, p + 14);
	if (!strncmp(p, "thinmeta:", 9))
		return c_fail(c, "unknown thinmeta comment '%.40s'", p);
	return c_fwd(c, c->inner->comment ? c->inner->comment(c->inner->ctx, text) : 0);
}

void thin_names_collect_visitor(struct thin_names_collect *c, const struct ir_visitor *inner,
				struct ir_visitor *out)
{
	memset(c, 0, sizeof(*c));
	c->inner = inner;
	thin_names_init(&c->t);
	memset(out, 0, sizeof(*out));
	out->ctx = c;
	out->begin_superblock = c_begin_sb;
	out->end_superblock = c_end_sb;
	out->begin_device = c_begin_dev;
	out->end_device = c_end_dev;
	out->begin_def = c_begin_def;
	out->end_def = c_end_def;
	out->ref = c_ref;
	out->single_map = c_single;
	out->range_map = c_range;
	out->comment = c_comment;
	out->err = c->msg;
	out->errlen = sizeof(c->msg);
}

void thin_names_collect_release(struct thin_names_collect *c)
{
	thin_names_release(&c->t);
}
