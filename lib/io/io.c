#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io-internal.h"

void *ioe_alloc_blocks(size_t nr)
{
	void *p = NULL;

	if (posix_memalign(&p, MD_BLOCK_SIZE, (nr ? nr : 1) * MD_BLOCK_SIZE))
		return NULL;
	return p;
}

void *ioe_alloc_huge(size_t nr)
{
	size_t len = ((nr ? nr : 1) + IOE_HUGE_BLOCKS - 1) / IOE_HUGE_BLOCKS * IOE_HUGE_BLOCKS *
		     MD_BLOCK_SIZE;
	void *p = NULL;

	if (posix_memalign(&p, (size_t)IOE_HUGE_BLOCKS * MD_BLOCK_SIZE, len))
		return NULL;
	madvise(p, len, MADV_HUGEPAGE);   /* a hint: small pages where it fails */
	return p;
}

int ioe_open_fd(const char *path, unsigned flags, uint64_t *size, int *is_bdev)
{
	struct stat st;
	int oflags = (flags & IOE_WRITE) ? O_RDWR : O_RDONLY;
	int fd;

	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		*is_bdev = 1;
		oflags |= O_DIRECT;
		if (!(flags & IOE_SHARED))
			oflags |= O_EXCL;
	} else if (S_ISREG(st.st_mode)) {
		*is_bdev = 0;
	} else {
		return -EINVAL;
	}
	if (!*is_bdev && (flags & IOE_DIRECT)) {
		fd = open(path, oflags | O_DIRECT | O_CLOEXEC);
		if (fd >= 0 || errno != EINVAL)
			goto opened;
	}
	fd = open(path, oflags | O_CLOEXEC);
opened:
	if (fd < 0)
		return -errno;
	if (*is_bdev) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0) {
			int r = -errno;
			close(fd);
			return r;
		}
	} else {
		*size = (uint64_t)st.st_size;
	}
	return fd;
}

int ioe_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* short read: beyond the end */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int ioe_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int ioe_open(const char *path, unsigned flags, struct ioe **out)
{
	if (flags & IOE_AIO)
		return ioe_open_aio(path, flags, out);
	return ioe_open_sync(path, flags, out);
}

int ioe_read_batch(struct ioe *e, const uint64_t *blocks, unsigned nr, void *const *bufs,
		   int *results)
{
	progress_count(nr);
	if (e->ops->read_batch)
		return e->ops->read_batch(e, blocks, nr, bufs, results);
	for (unsigned i = 0; i < nr; i++)
		results[i] = blocks[i] < e->nr_blocks ? e->ops->read(e, blocks[i], 1, bufs[i])
						      : -EINVAL;
	return 0;
}

void ioe_destroy(struct ioe *e)
{
	if (e)
		e->ops->destroy(e);
}
