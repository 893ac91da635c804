#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io/io-internal.h"

struct sync_engine {
	struct ioe e;
	int fd;
};

static struct sync_engine *to_sync(struct ioe *e)
{
	return (struct sync_engine *)e;
}

static int sync_read(struct ioe *e, uint64_t b, unsigned nr, void *buf)
{
	return ioe_pread_full(to_sync(e)->fd, buf, (size_t)nr << MD_BLOCK_SHIFT,
			      b << MD_BLOCK_SHIFT);
}

static int sync_write(struct ioe *e, uint64_t b, unsigned nr, const void *buf)
{
	if (!e->writable)
		return -EROFS;
	return ioe_pwrite_full(to_sync(e)->fd, buf, (size_t)nr << MD_BLOCK_SHIFT,
			       b << MD_BLOCK_SHIFT);
}

static int sync_flush(struct ioe *e)
{
	if (!e->writable)
		return 0;
	return fsync(to_sync(e)->fd) < 0 ? -errno : 0;
}

static void sync_destroy(struct ioe *e)
{
	close(to_sync(e)->fd);
	free(e);
}

static int cmp_idx(const void *a, const void *b, void *ctx)
{
	const uint64_t *blocks = ctx;
	uint64_t x = blocks[*(const unsigned *)a], y = blocks[*(const unsigned *)b];

	return x < y ? -1 : x > y;
}

/*
 * Scattered reads in block order, each run of contiguous blocks as one
 * preadv() straight into the callers' buffers: far fewer system calls
 * than one pread per block when a node's children lie side by side.
 */
static int sync_read_batch(struct ioe *e, const uint64_t *blocks, unsigned nr, void *const *bufs,
			   int *results)
{
	enum { MAX_RUN = 256 };
	struct iovec iov[MAX_RUN];
	unsigned *order = malloc(nr * sizeof(*order));

	if (!order)
		return -ENOMEM;
	for (unsigned i = 0; i < nr; i++)
		order[i] = i;
	qsort_r(order, nr, sizeof(*order), cmp_idx, (void *)blocks);
	for (unsigned i = 0; i < nr;) {
		unsigned n = 1;
		ssize_t got;

		while (i + n < nr && n < MAX_RUN && blocks[order[i + n]] == blocks[order[i]] + n)
			n++;
		for (unsigned k = 0; k < n; k++) {
			iov[k].iov_base = bufs[order[i + k]];
			iov[k].iov_len = MD_BLOCK_SIZE;
		}
		if (blocks[order[i]] + n > e->nr_blocks)
			got = -1;
		else
			got = preadv(to_sync(e)->fd, iov, (int)n,
				     (off_t)(blocks[order[i]] << MD_BLOCK_SHIFT));
		for (unsigned k = 0; k < n; k++) {
			unsigned idx = order[i + k];
			if (got >= (ssize_t)((k + 1) * MD_BLOCK_SIZE))
				results[idx] = 0;
			else /* short or failed: fall back to a plain read of this block */
				results[idx] = blocks[idx] < e->nr_blocks
						       ? sync_read(e, blocks[idx], 1, bufs[idx]) : -EINVAL;
		}
		i += n;
	}
	free(order);
	return 0;
}

static const struct ioe_ops sync_ops = {
	.read_batch = sync_read_batch,
	.read = sync_read,
	.write = sync_write,
	.flush = sync_flush,
	.destroy = sync_destroy,
};

int ioe_open_sync(const char *path, unsigned flags, struct ioe **out)
{
	struct sync_engine *s;
	uint64_t size;
	int is_bdev, fd;

	fd = ioe_open_fd(path, flags, &size, &is_bdev);
	if (fd < 0)
		return fd;
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->e.ops = &sync_ops;
	s->e.nr_blocks = size >> MD_BLOCK_SHIFT;
	s->e.writable = !!(flags & IOE_WRITE);
	s->e.is_bdev = is_bdev;
	s->fd = fd;
	*out = &s->e;
	return 0;
}
