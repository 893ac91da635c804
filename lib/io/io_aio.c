/* libaio engine: scattered reads submitted as one batch (read-ahead). */
#include "io/io.h"

#include <errno.h>
#include <libaio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io-internal.h"

#define AIO_DEPTH 256

struct aio_engine {
	struct ioe e;
	int fd;
	io_context_t ctx;
};

static struct aio_engine *to_aio(struct ioe *e)
{
	return (struct aio_engine *)e;
}

static int aio_read_one(struct ioe *e, uint64_t b, unsigned nr, void *buf)
{
	return ioe_pread_full(to_aio(e)->fd, buf, (size_t)nr << MD_BLOCK_SHIFT,
			      b << MD_BLOCK_SHIFT);
}

static int aio_write(struct ioe *e, uint64_t b, unsigned nr, const void *buf)
{
	if (!e->writable)
		return -EROFS;
	return ioe_pwrite_full(to_aio(e)->fd, buf, (size_t)nr << MD_BLOCK_SHIFT,
			       b << MD_BLOCK_SHIFT);
}

static int aio_flush(struct ioe *e)
{
	if (!e->writable)
		return 0;
	return fsync(to_aio(e)->fd) < 0 ? -errno : 0;
}

static void aio_destroy(struct ioe *e)
{
	struct aio_engine *a = to_aio(e);

	io_destroy(a->ctx);
	close(a->fd);
	free(a);
}

static int submit_chunk(struct aio_engine *a, const uint64_t *blocks, unsigned nr,
			void *const *bufs, int *results)
{
	struct iocb cbs[AIO_DEPTH], *ptrs[AIO_DEPTH];
	struct io_event events[AIO_DEPTH];
	unsigned done = 0, submitted = 0;

	for (unsigned i = 0; i < nr; i++) {
		io_prep_pread(&cbs[i], a->fd, bufs[i], MD_BLOCK_SIZE,
			      (long long)(blocks[i] << MD_BLOCK_SHIFT));
		cbs[i].data = (void *)(uintptr_t)i;
		ptrs[i] = &cbs[i];
		results[i] = -EIO;
	}
	while (submitted < nr) {
		int r = io_submit(a->ctx, (long)(nr - submitted), ptrs + submitted);
		if (r < 0) {
			if (r == -EAGAIN || r == -EINTR)
				continue;
			return r;
		}
		submitted += (unsigned)r;
	}
	while (done < nr) {
		int r = io_getevents(a->ctx, 1, (long)(nr - done), events, NULL);
		if (r < 0) {
			if (r == -EINTR)
				continue;
			return r;
		}
		for (int i = 0; i < r; i++) {
			unsigned idx = (unsigned)(uintptr_t)events[i].data;
			long res = (long)events[i].res;
			results[idx] = res == (long)MD_BLOCK_SIZE ? 0 : (res < 0 ? (int)res : -EIO);
		}
		done += (unsigned)r;
	}
	return 0;
}

static int aio_read_batch(struct ioe *e, const uint64_t *blocks, unsigned nr,
			  void *const *bufs, int *results)
{
	struct aio_engine *a = to_aio(e);

	for (unsigned off = 0; off < nr; off += AIO_DEPTH) {
		unsigned n = nr - off < AIO_DEPTH ? nr - off : AIO_DEPTH;
		int r = submit_chunk(a, blocks + off, n, bufs + off, results + off);
		if (r < 0)
			return r;
	}
	return 0;
}

static const struct ioe_ops aio_ops = {
	.read = aio_read_one,
	.write = aio_write,
	.flush = aio_flush,
	.destroy = aio_destroy,
	.read_batch = aio_read_batch,
};

int ioe_open_aio(const char *path, unsigned flags, struct ioe **out)
{
	struct aio_engine *a;
	uint64_t size;
	int is_bdev, fd, r;

	fd = ioe_open_fd(path, flags, &size, &is_bdev);
	if (fd < 0)
		return fd;
	a = calloc(1, sizeof(*a));
	if (!a) {
		close(fd);
		return -ENOMEM;
	}
	r = io_setup(AIO_DEPTH, &a->ctx);
	if (r < 0) {
		close(fd);
		free(a);
		return r;
	}
	a->e.ops = &aio_ops;
	a->e.nr_blocks = size >> MD_BLOCK_SHIFT;
	a->e.writable = !!(flags & IOE_WRITE);
	a->e.is_bdev = is_bdev;
	a->fd = fd;
	*out = &a->e;
	return 0;
}
