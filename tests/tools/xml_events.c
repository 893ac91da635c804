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
 * The two-thread reader (xml_read_file_async) must give the fast path's
 * events and result too; so must both when the consumer fails or stops:
 *
 *   xml_events --fail-at N FILE   the N-th callback fails (-EINVAL, with a
 *                                 reason); the results' messages compared whole
 *   xml_events --stop-at N FILE   the N-th callback returns IR_STOP
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
	unsigned long fail_at, stop_at;   /* the callback that fails or stops (1-based), or 0 */
	char reason[128];
};

static int add(struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add(struct log *l, const char *fmt, ...)
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
	if (l->n == l->fail_at) {
		snprintf(l->reason, sizeof(l->reason), "callback %lu fails", l->n);
		return -EINVAL;
	}
	return l->n == l->stop_at ? IR_STOP : 0;
}

static int b_sb(void *c, const struct ir_superblock *sb)
{
	return add(c, "superblock uuid=%s time=%u transaction=%" PRIu64 " flags=%d:%u version=%u "
	       "bs=%u nr=%" PRIu64 " snap=%d:%" PRIu64 "\n",
	    sb->uuid, sb->time, sb->transaction, sb->has_flags, sb->flags, sb->version,
	    sb->data_block_size, sb->nr_data_blocks, sb->has_metadata_snap, sb->metadata_snap);
}

static int e_sb(void *c)
{
	return add(c, "end superblock\n");
}

static int b_dev(void *c, const struct ir_device *d)
{
	return add(c, "device %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %u\n", d->dev_id, d->mapped_blocks,
	    d->transaction, d->creation_time, d->snap_time);
}

static int e_dev(void *c)
{
	return add(c, "end device\n");
}

static int b_def(void *c, const char *name)
{
	return add(c, "def %s\n", name);
}

static int e_def(void *c)
{
	return add(c, "end def\n");
}

static int ref(void *c, const char *name)
{
	return add(c, "ref %s\n", name);
}

static int single(void *c, uint64_t o, uint64_t d, uint32_t t)
{
	return add(c, "single %" PRIu64 " %" PRIu64 " %u\n", o, d, t);
}

static int range(void *c, uint64_t o, uint64_t d, uint64_t n, uint32_t t)
{
	return add(c, "range %" PRIu64 " %" PRIu64 " %" PRIu64 " %u\n", o, d, n, t);
}

static int comment(void *c, const char *text)
{
	return add(c, "comment %zu\n", strlen(text));
}

enum mode { M_FILE, M_MEM, M_ASYNC };

static unsigned long run(enum mode m, const char *path, const char *mem, size_t len,
			 struct log *l, int whole)
{
	unsigned long fast = 0;
	struct ir_visitor v = { l,     b_sb,   e_sb,  b_dev,     e_dev, b_def, e_def,
				ref,   single, range, comment, l->reason, sizeof(l->reason) };
	char err[1024];
	int r = m == M_MEM	? xml_read_mem(path, mem, len, &v, err, sizeof(err))
		: m == M_ASYNC	? xml_read_file_async(path, &v, err, sizeof(err))
				: xml_read_file_counted(path, &v, &fast, err, sizeof(err));

	/*
	 * Of an error message only "name:line:" is compared (unless whole):
	 * expat's wording can depend on how the input was split into
	 * XML_Parse calls.
	 */
	if (r < 0 && !whole) {
		const char *c = strchr(err, ':');
		c = c ? strchr(c + 1, ':') : NULL;
		add(l, "result: %d %.*s\n", r, c ? (int)(c - err + 1) : (int)strlen(err), err);
	} else if (r < 0) {
		add(l, "result: %d %s\n", r, err);
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
static void first_difference(const struct log *a, const struct log *b, const char *what)
{
	size_t i = 0, line = 1, start = 0;

	while (i < a->len && i < b->len && a->buf[i] == b->buf[i]) {
		if (a->buf[i] == '\n') {
			line++;
			start = i + 1;
		}
		i++;
	}
	fprintf(stderr, "xml_events: event %zu differs\n  fast path: %.*s\n  %-10s %.*s\n", line,
		(int)strcspn(a->buf + start, "\n"), a->buf + start, what,
		(int)strcspn(b->buf + start, "\n"), b->buf + start);
}

static int differ(const struct log *a, const struct log *b)
{
	return a->len != b->len || memcmp(a->buf, b->buf, a->len);
}

int main(int argc, char **argv)
{
	struct log fast = { 0 }, slow = { 0 }, two = { 0 };
	int print = argc == 3 && !strcmp(argv[1], "--print");
	int fail = argc == 4 && !strcmp(argv[1], "--fail-at");
	int stop = argc == 4 && !strcmp(argv[1], "--stop-at");
	const char *path = argv[argc - 1];
	unsigned long nfast;
	size_t len;
	char *buf;

	if (argc != 2 && !print && !fail && !stop) {
		fputs("usage: xml_events [--print | --fail-at N | --stop-at N] FILE\n", stderr);
		return 2;
	}
	if (fail || stop) {
		unsigned long at = strtoul(argv[2], NULL, 10);
		fast.fail_at = two.fail_at = fail ? at : 0;
		fast.stop_at = two.stop_at = stop ? at : 0;
	}
	nfast = run(M_FILE, path, NULL, 0, &fast, fail || stop);
	if (print) {
		fwrite(fast.buf, 1, fast.len, stdout);
		printf("fast: %lu\n", nfast);
		free(fast.buf);
		return 0;
	}
	run(M_ASYNC, path, NULL, 0, &two, fail || stop);
	if (differ(&fast, &two)) {
		first_difference(&fast, &two, "2 threads:");
		return 1;
	}
	if (fail || stop) {
		printf("same: %lu events\n%s", fast.n, strstr(fast.buf, "result:"));
		free(fast.buf);
		free(two.buf);
		return 0;
	}
	buf = slurp(path, &len);
	if (!buf) {
		fprintf(stderr, "xml_events: cannot read '%s': %s\n", path, strerror(errno));
		return 2;
	}
	run(M_MEM, path, buf, len, &slow, 0);
	free(buf);
	if (differ(&fast, &slow)) {
		first_difference(&fast, &slow, "expat:");
		return 1;
	}
	printf("same: %lu events\nfast: %lu\n", fast.n, nfast);
	free(fast.buf);
	free(slow.buf);
	free(two.buf);
	return 0;
}
