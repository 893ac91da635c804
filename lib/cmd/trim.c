#include "cmd/trim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spacemap/spacemap.h"
#include "check/check.h"
#include "thin/metadata.h"

static int fail(char *msg, size_t len, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *msg, size_t len, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return r;
}

static int check_clean(const char *metadata, char *msg, size_t msglen)
{
	struct thin_check_opts opts = { 0 };
	struct thin_check_result res;
	struct report *rep = rep_create(NULL, 1);
	int r;

	if (!rep)
		return -ENOMEM;
	memset(&res, 0, sizeof(res));
	r = thin_check(metadata, &opts, rep, &res, msg, msglen);
	if (!r && (!res.have_sb || res.outcome >= DMG_NON_FATAL))
		r = fail(msg, msglen, -EUCLEAN,
			 "metadata does not check clean (run thin_check %s for details); nothing discarded",
			 metadata);
	rep_destroy(rep);
	return r;
}

struct data_dev {
	int fd, is_bdev;
	uint64_t size;
};

static int open_data(const char *path, struct data_dev *d, char *msg, size_t msglen)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return fail(msg, msglen, -errno, "Couldn't find data device '%s'", path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return fail(msg, msglen, -EINVAL, "Not a block device or regular file '%s'.", path);
	d->is_bdev = S_ISBLK(st.st_mode);
	d->fd = open(path, O_RDWR | O_CLOEXEC | (d->is_bdev ? O_EXCL : 0));
	if (d->fd < 0)
		return fail(msg, msglen, -errno, "%s: cannot open: %s%s", path, strerror(errno),
			    errno == EBUSY ? " (in use by a live pool?)" : "");
	if (d->is_bdev) {
		if (ioctl(d->fd, BLKGETSIZE64, &d->size) < 0) {
			int r = -errno;
			close(d->fd);
			return fail(msg, msglen, r, "%s: cannot get size: %s", path, strerror(-r));
		}
	} else {
		d->size = (uint64_t)st.st_size;
	}
	return 0;
}

static int discard(struct data_dev *d, uint64_t off, uint64_t len)
{
	if (d->is_bdev) {
		uint64_t range[2] = { off, len };
		return ioctl(d->fd, BLKDISCARD, range) < 0 ? -errno : 0;
	}
	return fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			 (off_t)len) < 0 ? -errno : 0;
}

static int trim_runs(struct rcmap *sm, struct data_dev *d, uint64_t block_bytes,
		     struct trim_stats *st)
{
	uint64_t nr = rcmap_nr_blocks(sm), b = 0;

	while (b < nr) {
		uint64_t e;
		int r;

		b = rcmap_find_free(sm, b);
		if (b == UINT64_MAX)
			break;
		for (e = b; e < nr && !rcmap_get(sm, e); e++)
			;
		r = discard(d, b * block_bytes, (e - b) * block_bytes);
		if (r < 0)
			return r;
		st->free_blocks += e - b;
		st->runs++;
		b = e;
	}
	return 0;
}

int thin_trim(const char *metadata, const char *data_path, struct trim_stats *st, char *msg,
	      size_t msglen)
{
	struct data_dev d = { .fd = -1 };
	struct thin_md *md = NULL;
	struct rcmap *sm = NULL;
	struct report *rep = NULL;
	uint64_t block_bytes;
	int r;

	memset(st, 0, sizeof(*st));
	r = check_clean(metadata, msg, msglen);
	if (r < 0)
		return r;
	r = thin_md_open(metadata, 0, &md, msg, msglen);
	if (r < 0)
		return r;
	if (md->sb_err) {
		r = fail(msg, msglen, -EILSEQ, "%s: bad superblock", metadata);
		goto out;
	}
	block_bytes = (uint64_t)md->sb.data_block_size * 512;
	st->nr_data_blocks = md->sb.data_sm.nr_blocks;
	r = open_data(data_path, &d, msg, msglen);
	if (r < 0)
		goto out;
	if (d.size < st->nr_data_blocks * block_bytes) {
		r = fail(msg, msglen, -ENOSPC,
			 "data device '%s' is smaller than the pool (%llu bytes, pool needs %llu)",
			 data_path, (unsigned long long)d.size,
			 (unsigned long long)(st->nr_data_blocks * block_bytes));
		goto out;
	}
	sm = rcmap_create_compact(st->nr_data_blocks);
	rep = rep_create(NULL, 1);
	if (!sm || !rep) {
		r = fail(msg, msglen, -ENOMEM, "out of memory");
		goto out;
	}
	r = sm_disk_load(md->bc, &md->sb.data_sm, sm, rep, NULL);
	if (r < 0 || rep_outcome(rep) >= DMG_NON_FATAL) {
		r = fail(msg, msglen, r < 0 ? r : -EILSEQ, "cannot read the data space map");
		goto out;
	}
	st->punched = !d.is_bdev;
	r = trim_runs(sm, &d, block_bytes, st);
	if (r < 0) {
		fail(msg, msglen, r, "%s: discard failed: %s", data_path, strerror(-r));
		goto out;
	}
	if (fsync(d.fd) < 0)
		r = fail(msg, msglen, -errno, "%s: fsync failed: %s", data_path, strerror(errno));
out:
	if (d.fd >= 0)
		close(d.fd);
	rep_destroy(rep);
	rcmap_destroy(sm);
	thin_md_close(md);
	return r;
}
