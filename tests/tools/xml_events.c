/*
 * xml_events: test-only differential check of the XML reader's fast path.
 * Reads FILE twice, with xml_read_file() (fast path for canonical mapping
 * lines) and xml_read_mem() (every byte through expat), and compares the
 * IR event streams and the results (status and message).
 *
 *   xml_events FILE          exit 0 when both agree, 1 when they differ
 *                            (both streams' first difference on stderr)
 *   xml_events --print FILE  the fast path's events, one a line, then
 *                            "result: STATUS NAME:LINE:"
 * Both print "fast: N" last: the mapping lines the fast path decoded.
 *
 * A reader that reports an event the document does not contain (a
 * mapping inside CDATA, a processing instruction or another tag) shows up
 * as a difference.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xml/xml_reader.h"

struct log {
	char *buf;
	size_t len, cap;
	unsigned long n;
};

static void add(struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct log *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(l->buf + l->len, l->cap - l->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < l->cap - l->len)
			break;
		l->cap = l->cap * 2 + 4096;
		l->buf = realloc(l->buf, l->cap);
		if (!l->buf) {
			fputs("xml_events: out of memory\n", stderr);
			exit(2);
		}
	}
	l->len += (size_t)n;
	l->n++;
}

static int b_sb(void *c, const struct ir_superblock *sb)
{
	add(c, "superblock uuid=%s time=%u transaction=%" PRIu64 " flags=%d:%u version=%u "
	       "bs=%u nr=%" PRIu64 " snap=%d:%" PRIu64 "\n",
	    sb->uuid, sb->time, sb->transaction, sb->has_flags, sb->flags, sb->version,
	    sb->data_block_size, sb->nr_data_blocks, sb->has_metadata_snap, sb->metadata_snap);
	return 0;
}

static int e_sb(void *c)
{
	add(c, "end superblock\n");
	return 0;
}

static int b_dev(void *c, const struct ir_device *d)
{
	add(c, "device %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %u\n", d->dev_id, d->mapped_blocks,
	    d->transaction, d->creation_time, d->snap_time);
	return 0;
}

static int e_dev(void *c)
{
	add(c, "end device\n");
	return 0;
}

static int b_def(void *c, const char *name)
{
	add(c, "def %s\n", name);
	return 0;
}

static int e_def(void *c)
{
	add(c, "end def\n");
	return 0;
}

static int ref(void *c, const char *name)
{
	add(c, "ref %s\n", name);
	return 0;
}

static int single(void *c, uint64_t o, uint64_t d, uint32_t t)
{
	add(c, "single %" PRIu64 " %" PRIu64 " %u\n", o, d, t);
	return 0;
}

static int range(void *c, uint64_t o, uint64_t d, uint64_t n, uint32_t t)
{
	add(c, "range %" PRIu64 " %" PRIu64 " %" PRIu64 " %u\n", o, d, n, t);
	return 0;
}

static int comment(void *c, const char *text)
{
	add(c, "comment %zu\n", strlen(text));
	return 0;
}

static unsigned long run(const char *path, const char *mem, size_t len, struct log *l)
{
	unsigned long fast = 0;
	struct ir_visitor v = { l,     b_sb,   e_sb,  b_dev,   e_dev, b_def, e_def,
				ref,   single, range, comment, NULL,  0 };
	char err[1024];
	int r = mem ? xml_read_mem(path, mem, len, &v, err, sizeof(err))
		    : xml_read_file_counted(path, &v, &fast, err, sizeof(err));

	/*
	 * Of an error message only "name:line:" is compared: expat's wording
	 * can depend on how the input was split into XML_Parse calls.
	 */
	if (r < 0) {
		const char *c = strchr(err, ':');
		c = c ? strchr(c + 1, ':') : NULL;
		add(l, "result: %d %.*s\n", r, c ? (int)(c - err + 1) : (int)strlen(err), err);
	} else {
		add(l, "result: %d\n", r);
	}
	return fast;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0;

	*len = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (*len == cap && !(buf = realloc(buf, cap = cap * 2 + 65536)))
			break;
		size_t n = fread(buf + *len, 1, cap - *len, f);
		if (!n)
			break;
		*len += n;
	}
	fclose(f);
	return buf;
}

/* Line number (1-based) of the first difference, with both lines. */
static void first_difference(const struct log *a, const struct log *b)
{
	size_t i = 0, line = 1, start = 0;

	while (i < a->len && i < b->len && a->buf[i] == b->buf[i]) {
		if (a->buf[i] == '\n') {
			line++;
			start = i + 1;
		}
		i++;
	}
	fprintf(stderr, "xml_events: event %zu differs\n  fast path: %.*s\n  expat:     %.*s\n", line,
		(int)strcspn(a->buf + start, "\n"), a->buf + start,
		(int)strcspn(b->buf + start, "\n"), b->buf + start);
}

int main(int argc, char **argv)
{
	struct log fast = { 0 }, slow = { 0 };
	int print = argc == 3 && !strcmp(argv[1], "--print");
	const char *path = argv[argc - 1];
	unsigned long nfast;
	size_t len;
	char *buf;

	if (argc != 2 && !print) {
		fputs("usage: xml_events [--print] FILE\n", stderr);
		return 2;
	}
	nfast = run(path, NULL, 0, &fast);
	if (print) {
		fwrite(fast.buf, 1, fast.len, stdout);
		printf("fast: %lu\n", nfast);
		return 0;
	}
	buf = slurp(path, &len);
	if (!buf) {
		fprintf(stderr, "xml_events: cannot read '%s': %s\n", path, strerror(errno));
		return 2;
	}
	run(path, buf, len, &slow);
	free(buf);
	if (fast.len != slow.len || memcmp(fast.buf, slow.buf, fast.len)) {
		first_difference(&fast, &slow);
		return 1;
	}
	printf("same: %lu events\nfast: %lu\n", fast.n, nfast);
	free(fast.buf);
	free(slow.buf);
	return 0;
}
