#include "util/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/major.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/*----------------------------------------------------------------*/
/* same-file guard */

struct file_id {
	dev_t dev;       /* of the inode (regular files, device nodes) */
	ino_t ino;
	int is_blk;
	dev_t rdev;      /* block devices */
	int backed;      /* a loop device: the file it reads */
	dev_t bdev;
	ino_t bino;
};

static void loop_backing(const char *path, struct file_id *f)
{
	struct loop_info64 li;
	int fd;

	if (major(f->rdev) != LOOP_MAJOR)
		return;
	/* O_NONBLOCK: never wait; reading the status changes nothing */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return;
	if (ioctl(fd, LOOP_GET_STATUS64, &li) == 0) {
		f->backed = 1;
		f->bdev = (dev_t)li.lo_device;
		f->bino = (ino_t)li.lo_inode;
	}
	close(fd);
}

static int file_id(const char *path, struct file_id *f)
{
	struct stat st;

	memset(f, 0, sizeof(*f));
	if (stat(path, &st) < 0)
		return -errno;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	if (S_ISBLK(st.st_mode)) {
		f->is_blk = 1;
		f->rdev = st.st_rdev;
		loop_backing(path, f);
	}
	return 0;
}

int cli_same_file(const char *a, const char *b)
{
	struct file_id x, y;

	if (file_id(a, &x) < 0 || file_id(b, &y) < 0)
		return 0;
	if (x.dev == y.dev && x.ino == y.ino)
		return CLI_SAME;
	if (x.is_blk && y.is_blk && x.rdev == y.rdev)
		return CLI_SAME;
	if (x.backed && x.bdev == y.dev && x.bino == y.ino)
		return CLI_SAME;
	if (y.backed && y.bdev == x.dev && y.bino == x.ino)
		return CLI_SAME;
	if (x.backed && y.backed && x.bdev == y.bdev && x.bino == y.bino)
		return CLI_SAME;
	return 0;
}

static void put(char *buf, size_t len, size_t *n, char c)
{
	if (*n + 1 < len)
		buf[*n] = c;
	(*n)++;
}

size_t cli_shell_quote(const char *s, char *buf, size_t len)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789_/.,:=+-@%";
	size_t n = 0;

	if (*s && strspn(s, plain) == strlen(s)) {
		for (; *s; s++)
			put(buf, len, &n, *s);
	} else {
		put(buf, len, &n, '\'');
		for (; *s; s++) {
			if (*s == '\'') {
				put(buf, len, &n, '\'');
				put(buf, len, &n, '\\');
				put(buf, len, &n, '\'');
			}
			put(buf, len, &n, *s);
		}
		put(buf, len, &n, '\'');
	}
	if (len)
		buf[n < len ? n : len - 1] = '\0';
	return n;
}
