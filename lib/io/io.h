/*
 * I/O engines: 4 KiB block I/O behind one interface.
 *   sync  - pread/pwrite (O_DIRECT on block devices)
 *   aio   - libaio, for batched scattered reads (read-ahead)
 *   mem   - an in-memory device for unit tests, with fault injection
 * Block devices are opened O_DIRECT and, unless IOE_SHARED, O_EXCL so that
 * a live pool's metadata device is refused.
 */
#ifndef THINMETA_IO_IO_H
#define THINMETA_IO_IO_H

#include <stddef.h>
#include <stdint.h>

#include "util/progress.h"

#define MD_BLOCK_SIZE 4096u
#define MD_BLOCK_SHIFT 12

struct ioe;

struct ioe_ops {
	/* nr contiguous blocks starting at block; buf is 4 KiB aligned */
	int (*read)(struct ioe *e, uint64_t block, unsigned nr, void *buf);
	int (*write)(struct ioe *e, uint64_t block, unsigned nr, const void *buf);
	int (*flush)(struct ioe *e);
	void (*destroy)(struct ioe *e);
	/*
	 * Optional: read nr scattered single blocks; results[i] is 0 or a
	 * negative errno.  NULL means "loop over read()".
	 */
	int (*read_batch)(struct ioe *e, const uint64_t *blocks, unsigned nr,
			  void *const *bufs, int *results);
	/*
	 * Optional: write() that may keep the buffer.  *buf holds nr blocks
	 * in a buffer of cap blocks from ioe_alloc_blocks(); the engine may
	 * take it and leave in *buf another one of cap blocks (content
	 * undefined), saving a copy.  NULL means write().
	 */
	int (*write_swap)(struct ioe *e, uint64_t block, unsigned nr, void **buf, unsigned cap);
};

struct ioe {
	const struct ioe_ops *ops;
	uint64_t nr_blocks;   /* whole 4 KiB blocks on the device */
	int writable;
	int is_bdev;
};

/* open flags */
#define IOE_WRITE 1u    /* open read-write */
#define IOE_SHARED 2u   /* do not take O_EXCL on a block device (metadata snapshot reads) */
#define IOE_AIO 4u      /* use the libaio engine */
/*
 * O_DIRECT on a regular file too (writers of whole metadata: no copy into
 * the page cache); buffered where the file system refuses it.
 */
#define IOE_DIRECT 8u

/*
 * Opens path.  Returns 0 or a negative errno; -EBUSY means the block
 * device is in use (e.g. by a live pool).  *out is owned by the caller
 * (ioe_destroy).
 */
int ioe_open(const char *path, unsigned flags, struct ioe **out);
int ioe_open_sync(const char *path, unsigned flags, struct ioe **out);
int ioe_open_aio(const char *path, unsigned flags, struct ioe **out);

struct ioe *ioe_mem_create(uint64_t nr_blocks);
/* Direct access to the memory engine's bytes (nr_blocks * 4096). */
uint8_t *ioe_mem_data(struct ioe *e);
/*
 * Fail the Nth (0-based) write/read/flush from now on, and every later
 * one (a device that died), with -EIO or the error set by
 * ioe_mem_fail_errno (e.g. -ENOSPC); -1 disables.  A failed write
 * writes nothing.
 */
void ioe_mem_fail_write(struct ioe *e, long nth);
void ioe_mem_fail_read(struct ioe *e, long nth);
void ioe_mem_fail_flush(struct ioe *e, long nth);
void ioe_mem_fail_errno(struct ioe *e, int err);
/* A bad sector: every read covering block fails with -EIO (UINT64_MAX: none). */
void ioe_mem_bad_block(struct ioe *e, uint64_t block);
/* Counters of the memory engine (reads: since the last ioe_mem_fail_read). */
unsigned long ioe_mem_nr_writes(struct ioe *e);
unsigned long ioe_mem_nr_reads(struct ioe *e);
unsigned long ioe_mem_nr_flushes(struct ioe *e);

static inline int ioe_read(struct ioe *e, uint64_t b, unsigned nr, void *buf)
{
	progress_count(nr);
	return e->ops->read(e, b, nr, buf);
}

static inline int ioe_write(struct ioe *e, uint64_t b, unsigned nr, const void *buf)
{
	progress_count(nr);
	return e->ops->write(e, b, nr, buf);
}

/* ioe_write() of *buf (nr of its cap blocks) that may swap the buffer: see write_swap. */
static inline int ioe_write_swap(struct ioe *e, uint64_t b, unsigned nr, void **buf, unsigned cap)
{
	if (!e->ops->write_swap)
		return ioe_write(e, b, nr, *buf);
	progress_count(nr);
	return e->ops->write_swap(e, b, nr, buf, cap);
}

static inline int ioe_flush(struct ioe *e)
{
	return e->ops->flush(e);
}

int ioe_read_batch(struct ioe *e, const uint64_t *blocks, unsigned nr, void *const *bufs,
		   int *results);
void ioe_destroy(struct ioe *e);

/* A 4 KiB-aligned buffer of nr blocks (free()). */
void *ioe_alloc_blocks(size_t nr);
/*
 * The same in whole 2 MiB pages, aligned to 2 MiB and advised for
 * transparent huge pages (free()): an O_DIRECT read into it pins one huge
 * page where it would pin 512 small ones (thin_check's system time on the
 * 20 M pool: 50 -> 30 ms).  nr is rounded up to a multiple of
 * IOE_HUGE_BLOCKS: a smaller buffer costs the whole page once touched
 * (thin_rmap's two 1 MiB worker buffers: 2 MiB more of peak memory).
 */
#define IOE_HUGE_BLOCKS 512u
void *ioe_alloc_huge(size_t nr);

#endif
