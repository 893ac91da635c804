#include "block-cache/io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block-cache/io-internal.h"

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

static const struct ioe_ops sync_ops = {
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
