#include "xml/xml_writer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/fmt.h"

/*----------------------------------------------------------------*/

#define BUF_SIZE (1u << 20)
#define MAX_ELEMENT 256u   /* longest fixed-size element we append unchecked */

struct xml_writer {
	FILE *out;
	char *buf;
	size_t len;
	int err;           /* first write error, negative errno */
	int depth;         /* 0 outside <superblock>, 1 inside, 2 inside <device>/<def> */
};

static int drain(struct xml_writer *w)
{
	if (w->err)
		return w->err;
	errno = 0;
	if (w->len && fwrite(w->buf, 1, w->len, w->out) != w->len)
		w->err = errno ? -errno : -EIO;
	w->len = 0;
	return w->err;
}

/* Makes room for n more bytes. */
static int reserve(struct xml_writer *w, size_t n)
{
	if (w->len + n > BUF_SIZE)
		return drain(w);
	return w->err;
}

static void put_mem(struct xml_writer *w, const char *s, size_t n)
{
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

#define PUT_LIT(w, s) put_mem((w), (s), sizeof(s) - 1)

/* Straight into the buffer (util/fmt.h). */
static inline void put_u64(struct xml_writer *w, uint64_t v)
{
	w->len = (size_t)(fmt_u64(w->buf + w->len, v) - w->buf);
}

/* Attribute text of unbounded length, escaped. */
static int put_text(struct xml_writer *w, const char *s)
{
	for (; *s; s++) {
		int r = reserve(w, 8);
		if (r < 0)
			return r;
		switch (*s) {
		case '&':
			PUT_LIT(w, "&amp;");
			break;
		case '<':
			PUT_LIT(w, "&lt;");
			break;
		case '>':
			PUT_LIT(w, "&gt;");
			break;
		case '"':
			PUT_LIT(w, "&quot;");
			break;
		default:
			w->buf[w->len++] = *s;
		}
	}
	return 0;
}

/*----------------------------------------------------------------*/
/* Visitor callbacks */

static int begin_superblock(void *ctx, const struct ir_superblock *sb)
{
	struct xml_writer *w = ctx;
	int r = reserve(w, MAX_ELEMENT);

	if (r < 0)
		return r;
	PUT_LIT(w, "<superblock uuid=\"");
	r = put_text(w, sb->uuid ? sb->uuid : "");
	if (r < 0)
		return r;
	r = reserve(w, MAX_ELEMENT);
	if (r < 0)
		return r;
	PUT_LIT(w, "\" time=\"");
	put_u64(w, sb->time);
	PUT_LIT(w, "\" transaction=\"");
	put_u64(w, sb->transaction);
	/* 0.9.0 dialect: flags always written */
	PUT_LIT(w, "\" flags=\"");
	put_u64(w, sb->flags);
	PUT_LIT(w, "\" version=\"");
	put_u64(w, sb->version);
	PUT_LIT(w, "\" data_block_size=\"");
	put_u64(w, sb->data_block_size);
	PUT_LIT(w, "\" nr_data_blocks=\"");
	put_u64(w, sb->nr_data_blocks);
	if (sb->has_metadata_snap) {
		PUT_LIT(w, "\" metadata_snap=\"");
		put_u64(w, sb->metadata_snap);
	}
	PUT_LIT(w, "\">\n");
	w->depth = 1;
	return 0;
}

static int end_superblock(void *ctx)
{
	struct xml_writer *w = ctx;
	int r = reserve(w, MAX_ELEMENT);

	if (r < 0)
		return r;
	w->depth = 0;
	PUT_LIT(w, "</superblock>\n");
	return 0;
}

static int begin_device(void *ctx, const struct ir_device *d)
{
	struct xml_writer *w = ctx;
	int r = reserve(w, MAX_ELEMENT);

	if (r < 0)
		return r;
	PUT_LIT(w, "  <device dev_id=\"");
	put_u64(w, d->dev_id);
	PUT_LIT(w, "\" mapped_blocks=\"");
	put_u64(w, d->mapped_blocks);
	PUT_LIT(w, "\" transaction=\"");
	put_u64(w, d->transaction);
	PUT_LIT(w, "\" creation_time=\"");
	put_u64(w, d->creation_time);
	PUT_LIT(w, "\" snap_time=\"");
	put_u64(w, d->snap_time);
	PUT_LIT(w, "\">\n");
	w->depth = 2;
	return 0;
}

static int end_device(void *ctx)
{
	struct xml_writer *w = ctx;
	int r = reserve(w, MAX_ELEMENT);

	if (r < 0)
		return r;
	w->depth = 1;
	PUT_LIT(w, "  </device>\n");
	return 0;
}

static int begin_def(void *ctx, const char *name)
{
	struct xml_writer *w = ctx;
	int r = reserve(w, MAX_ELEMENT);

	if (r < 0)
		return r;
	PUT_LIT(w, "  <def name=\"");
	r = put_text(w, name);
	if (r < 0)
		return r;
	r = reserve(w, MAX_ELEMENT);
	if (r < 0)
		return r;
	PUT_LIT(w, "\">\n");
	w->depth = 2;
	return 0;
}

static int end_def(void *ctx)
{
	struct xml_writer *w = ctx;
	int r = reserve(w, MAX_ELEMENT);

	if (r < 0)
		return r;
	w->depth = 1;
	PUT_LIT(w, "  </def>\n");
	return 0;
}

static int ref(void *ctx, const char *name)
{
	struct xml_writer *w = ctx;
	int r = reserve(w, MAX_ELEMENT);

	if (r < 0)
		return r;
	PUT_LIT(w, "    <ref name=\"");
	r = put_text(w, name);
	if (r < 0)
		return r;
	r = reserve(w, MAX_ELEMENT);
	if (r < 0)
		return r;
	PUT_LIT(w, "\"/>\n");
	return 0;
}

static int single_map(void *ctx, uint64_t origin, uint64_t data, uint32_t time)
{
	struct xml_writer *w = ctx;
	int r = reserve(w, MAX_ELEMENT);

	if (r < 0)
		return r;
	PUT_LIT(w, "    <single_mapping origin_block=\"");
	put_u64(w, origin);
	PUT_LIT(w, "\" data_block=\"");
	put_u64(w, data);
	PUT_LIT(w, "\" time=\"");
	put_u64(w, time);
	PUT_LIT(w, "\"/>\n");
	return 0;
}

static int range_map(void *ctx, uint64_t origin, uint64_t data, uint64_t len, uint32_t time)
{
	struct xml_writer *w = ctx;
	int r = reserve(w, MAX_ELEMENT);

	if (r < 0)
		return r;
	PUT_LIT(w, "    <range_mapping origin_begin=\"");
	put_u64(w, origin);
	PUT_LIT(w, "\" data_begin=\"");
	put_u64(w, data);
	PUT_LIT(w, "\" length=\"");
	put_u64(w, len);
	PUT_LIT(w, "\" time=\"");
	put_u64(w, time);
	PUT_LIT(w, "\"/>\n");
	return 0;
}

/*
 * <!--text--> on its own line, indented to the current level.  Text that
 * would make the comment invalid ("--" inside, '-' at the end) or break
 * the one-comment-per-line layout (a newline) is refused with -EINVAL.
 */
static int comment(void *ctx, const char *text)
{
	struct xml_writer *w = ctx;
	size_t n = strlen(text);
	int r;

	if (strstr(text, "--") || (n && text[n - 1] == '-') || strchr(text, '\n'))
		return -EINVAL;
	r = reserve(w, MAX_ELEMENT);
	if (r < 0)
		return r;
	put_mem(w, "    ", (size_t)(2 * w->depth));
	PUT_LIT(w, "<!--");
	for (size_t off = 0; off < n;) {
		size_t k = n - off < MAX_ELEMENT ? n - off : MAX_ELEMENT;
		r = reserve(w, k);
		if (r < 0)
			return r;
		put_mem(w, text + off, k);
		off += k;
	}
	r = reserve(w, MAX_ELEMENT);
	if (r < 0)
		return r;
	PUT_LIT(w, "-->\n");
	return 0;
}

/*----------------------------------------------------------------*/

struct xml_writer *xml_writer_create(FILE *out)
{
	struct xml_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->buf = malloc(BUF_SIZE);
	if (!w->buf) {
		free(w);
		return NULL;
	}
	w->out = out;
	return w;
}

void xml_writer_destroy(struct xml_writer *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w);
}

void xml_writer_visitor(struct xml_writer *w, struct ir_visitor *v)
{
	memset(v, 0, sizeof(*v));
	v->ctx = w;
	v->begin_superblock = begin_superblock;
	v->end_superblock = end_superblock;
	v->begin_device = begin_device;
	v->end_device = end_device;
	v->begin_def = begin_def;
	v->end_def = end_def;
	v->ref = ref;
	v->single_map = single_map;
	v->range_map = range_map;
	v->comment = comment;
}

int xml_writer_flush(struct xml_writer *w)
{
	int r = drain(w);

	if (r < 0)
		return r;
	errno = 0;
	if (fflush(w->out) != 0)
		w->err = errno ? -errno : -EIO;
	return w->err;
}
