#include "io/io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct mem_engine {
	struct ioe e;
	uint8_t *data;
	long fail_write, fail_read, fail_flush;
	uint64_t bad_block;     /* reads covering it fail (UINT64_MAX: none) */
	int err;
	unsigned long nr_writes, nr_reads, nr_flushes;
};

static struct mem_engine *to_mem(struct ioe *e)
{
	return (struct mem_engine *)e;
}

static int mem_read(struct ioe *e, uint64_t b, unsigned nr, void *buf)
{
	struct mem_engine *m = to_mem(e);

	if (b + nr > e->nr_blocks || b + nr < b)
		return -EIO;
	if ((long)m->nr_reads++ >= m->fail_read && m->fail_read >= 0)
		return m->err;
	if (m->bad_block >= b && m->bad_block < b + nr)
		return -EIO;
	memcpy(buf, m->data + (b << MD_BLOCK_SHIFT), (size_t)nr << MD_BLOCK_SHIFT);
	return 0;
}

static int mem_write(struct ioe *e, uint64_t b, unsigned nr, const void *buf)
{
	struct mem_engine *m = to_mem(e);

	if (b + nr > e->nr_blocks || b + nr < b)
		return -EIO;
	if (m->fail_write >= 0 && (long)m->nr_writes >= m->fail_write)
		return m->err;
	m->nr_writes++;
	memcpy(m->data + (b << MD_BLOCK_SHIFT), buf, (size_t)nr << MD_BLOCK_SHIFT);
	return 0;
}

static int mem_flush(struct ioe *e)
{
	struct mem_engine *m = to_mem(e);

	if (m->fail_flush >= 0 && (long)m->nr_flushes >= m->fail_flush)
		return m->err;
	m->nr_flushes++;
	return 0;
}

static void mem_destroy(struct ioe *e)
{
	free(to_mem(e)->data);
	free(e);
}

static const struct ioe_ops mem_ops = {
	.read = mem_read,
	.write = mem_write,
	.flush = mem_flush,
	.destroy = mem_destroy,
};

struct ioe *ioe_mem_create(uint64_t nr_blocks)
{
	struct mem_engine *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->data = calloc(nr_blocks ? nr_blocks : 1, MD_BLOCK_SIZE);
	if (!m->data) {
		free(m);
		return NULL;
	}
	m->e.ops = &mem_ops;
	m->e.nr_blocks = nr_blocks;
	m->e.writable = 1;
	m->fail_write = -1;
	m->fail_read = -1;
	m->bad_block = UINT64_MAX;
	m->fail_flush = -1;
	m->err = -EIO;
	return &m->e;
}

uint8_t *ioe_mem_data(struct ioe *e)
{
	return to_mem(e)->data;
}

void ioe_mem_fail_write(struct ioe *e, long nth)
{
	struct mem_engine *m = to_mem(e);

	m->fail_write = nth < 0 ? -1 : (long)m->nr_writes + nth;
}

void ioe_mem_bad_block(struct ioe *e, uint64_t block)
{
	to_mem(e)->bad_block = block;
}

void ioe_mem_fail_read(struct ioe *e, long nth)
{
	struct mem_engine *m = to_mem(e);

	m->nr_reads = 0;
	m->fail_read = nth;
}

void ioe_mem_fail_flush(struct ioe *e, long nth)
{
	struct mem_engine *m = to_mem(e);

	m->fail_flush = nth < 0 ? -1 : (long)m->nr_flushes + nth;
}

void ioe_mem_fail_errno(struct ioe *e, int err)
{
	to_mem(e)->err = err < 0 ? err : -EIO;
}

unsigned long ioe_mem_nr_reads(struct ioe *e)
{
	return to_mem(e)->nr_reads;
}

unsigned long ioe_mem_nr_writes(struct ioe *e)
{
	return to_mem(e)->nr_writes;
}

unsigned long ioe_mem_nr_flushes(struct ioe *e)
{
	return to_mem(e)->nr_flushes;
}
