/*
 * libFuzzer entry for the XML reader's fast path (make fuzz CC=clang): a
 * differential harness.  The bytes are read once by xml_read_file()
 * (through a memfd: canonical mapping lines are decoded without expat
 * when the parser state allows) and once by xml_read_mem() (every byte
 * through expat); the two IR event streams and results must be equal,
 * else the harness aborts.  A mapping taken from a CDATA section, a
 * processing instruction or another element's tag is such a difference.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xml/xml_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct log {
	char buf[1 << 16];
	size_t len;
	int full;
};

static void add(struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct log *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(l->buf) - l->len)
		l->full = 1;   /* long streams: compare the prefix */
	else
		l->len += (size_t)n;
}

static int b_sb(void *c, const struct ir_superblock *sb)
{
	add(c, "S%s,%u,%llu,%d,%u,%u,%u,%llu,%d,%llu\n", sb->uuid, sb->time,
	    (unsigned long long)sb->transaction, sb->has_flags, sb->flags, sb->version,
	    sb->data_block_size, (unsigned long long)sb->nr_data_blocks, sb->has_metadata_snap,
	    (unsigned long long)sb->metadata_snap);
	return 0;
}

static int e_sb(void *c)
{
	add(c, "s\n");
	return 0;
}

static int b_dev(void *c, const struct ir_device *d)
{
	add(c, "D%llu,%llu,%llu,%u,%u\n", (unsigned long long)d->dev_id,
	    (unsigned long long)d->mapped_blocks, (unsigned long long)d->transaction,
	    d->creation_time, d->snap_time);
	return 0;
}

static int e_dev(void *c)
{
	add(c, "d\n");
	return 0;
}

static int b_def(void *c, const char *name)
{
	add(c, "F%s\n", name);
	return 0;
}

static int e_def(void *c)
{
	add(c, "f\n");
	return 0;
}

static int ref(void *c, const char *name)
{
	add(c, "R%s\n", name);
	return 0;
}

static int single(void *c, uint64_t o, uint64_t d, uint32_t t)
{
	add(c, "M%llu,%llu,%u\n", (unsigned long long)o, (unsigned long long)d, t);
	return 0;
}

static int range(void *c, uint64_t o, uint64_t d, uint64_t n, uint32_t t)
{
	add(c, "G%llu,%llu,%llu,%u\n", (unsigned long long)o, (unsigned long long)d,
	    (unsigned long long)n, t);
	return 0;
}

static int comment(void *c, const char *text)
{
	add(c, "C%zu\n", strlen(text));
	return 0;
}

static struct log fast, slow;

/*
 * How much of an error message is compared: "name:line:" only.  Expat's
 * wording can depend on how the input was split into XML_Parse calls
 * ("\n\0": "not well-formed" or "no element found"), never its line.
 */
static int where(int r, const char *err)
{
	const char *c = strchr(err, ':');

	if (r >= 0)
		return 0;
	c = c ? strchr(c + 1, ':') : NULL;
	return c ? (int)(c - err + 1) : (int)strlen(err);
}

static void visitor(struct ir_visitor *v, struct log *l)
{
	memset(v, 0, sizeof(*v));
	l->len = 0;
	l->full = 0;
	v->ctx = l;
	v->begin_superblock = b_sb;
	v->end_superblock = e_sb;
	v->begin_device = b_dev;
	v->end_device = e_dev;
	v->begin_def = b_def;
	v->end_def = e_def;
	v->ref = ref;
	v->single_map = single;
	v->range_map = range;
	v->comment = comment;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ir_visitor v;
	char path[64], err[512];
	int fd = memfd_create("thinmeta-fuzz-xml", 0), r;

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	visitor(&v, &fast);
	r = xml_read_file(path, &v, err, sizeof(err));
	add(&fast, "=%d %.*s\n", r, where(r, err), err);
	close(fd);
	visitor(&v, &slow);
	r = xml_read_mem(path, data, size, &v, err, sizeof(err));
	add(&slow, "=%d %.*s\n", r, where(r, err), err);
	if (fast.len != slow.len || memcmp(fast.buf, slow.buf, fast.len)) {
		fprintf(stderr, "fast path:\n%.*s\nexpat:\n%.*s\n", (int)fast.len, fast.buf,
			(int)slow.len, slow.buf);
		abort();
	}
	return 0;
}
