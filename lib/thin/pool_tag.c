#include "thin/pool_tag.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <dirent.h>
#include <unistd.h>

#include "thin/superblock.h"
#include "util/endian.h"

#define SB_BYTES 4096
#define SECTOR 512

/* Crockford base 32: no I, L, O, U */
static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int thin_tag_is_zero(const uint8_t *tag)
{
	for (int i = 0; i < THIN_TAG_LEN; i++)
		if (tag[i])
			return 0;
	return 1;
}

int thin_tag_is_valid(const uint8_t *tag)
{
	if (tag[0] != 'T' || tag[1] != 'M')
		return 0;
	for (int i = 2; i < THIN_TAG_LEN; i++)
		if (!tag[i] || !strchr(crockford, tag[i]))
			return 0;
	return 1;
}

int thin_tag_generate(uint8_t *tag)
{
	uint8_t rnd[THIN_TAG_LEN];
	size_t got = 0;

	while (got < sizeof(rnd)) {
		ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	tag[0] = 'T';
	tag[1] = 'M';
	for (int i = 2; i < THIN_TAG_LEN; i++)
		tag[i] = (uint8_t)crockford[rnd[i] & 31];
	return 0;
}

void thin_tag_format(const uint8_t *uuid, char *buf, size_t len)
{
	if (!len)
		return;
	buf[0] = '\0';
	if (thin_tag_is_zero(uuid))
		return;
	if (thin_tag_is_valid(uuid)) {
		snprintf(buf, len, "%.16s", (const char *)uuid);
		return;
	}
	snprintf(buf, len, "hex:");
	for (int i = 0; i < THIN_TAG_LEN && strlen(buf) + 3 <= len; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%02x", uuid[i]);
}

int thin_tag_parse(const char *s, uint8_t *tag)
{
	if (strlen(s) != THIN_TAG_LEN)
		return -EINVAL;
	memcpy(tag, s, THIN_TAG_LEN);
	return thin_tag_is_valid(tag) ? 0 : -EINVAL;
}

/*----------------------------------------------------------------*/

static int read_sb(int fd, uint8_t *blk, char *msg, size_t msglen)
{
	const struct disk_superblock *d = (const void *)blk;
	ssize_t n = pread(fd, blk, SB_BYTES, 0);

	if (n < 0) {
		snprintf(msg, msglen, "cannot read the superblock: %s", strerror(errno));
		return -errno;
	}
	if (n != SB_BYTES) {
		snprintf(msg, msglen, "Metadata device/file too small.  Is this binary metadata?");
		return -EINVAL;
	}
	if (le64_to_cpu(d->magic) != THIN_MAGIC || le64_to_cpu(d->blocknr) != 0) {
		snprintf(msg, msglen, "bad magic in superblock");
		return -EILSEQ;
	}
	if (thin_sb_validator.check(blk, 0, SB_BYTES) < 0) {
		snprintf(msg, msglen, "bad checksum in superblock");
		return -EILSEQ;
	}
	return 0;
}

int thin_tag_read(const char *path, uint8_t *uuid, char *msg, size_t msglen)
{
	uint8_t blk[SB_BYTES];
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0) {
		r = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return r;
	}
	r = read_sb(fd, blk, msg, msglen);
	close(fd);
	if (r == 0)
		memcpy(uuid, ((const struct disk_superblock *)blk)->uuid, THIN_TAG_LEN);
	return r;
}

int thin_tag_existing(const char *path, uint8_t *tag)
{
	uint8_t uuid[THIN_TAG_LEN];
	char msg[160];
	struct stat st;

	if (stat(path, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)))
		return 0;
	if (thin_tag_read(path, uuid, msg, sizeof(msg)) < 0 || !thin_tag_is_valid(uuid))
		return 0;
	memcpy(tag, uuid, THIN_TAG_LEN);
	return 1;
}

/* A block device with entries in /sys/dev/block/M:N/holders is in use. */
static int has_holders(const struct stat *st)
{
	char p[96];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/holders", major(st->st_rdev),
		 minor(st->st_rdev));
	d = opendir(p);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0;
}

static int open_inactive(const char *path, char *msg, size_t msglen)
{
	struct stat st;
	int fd;

	if (stat(path, &st) < 0) {
		snprintf(msg, msglen, "Couldn't find input file '%s'", path);
		return -errno;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(msg, msglen, "Not a block device or regular file '%s'.", path);
		return -EINVAL;
	}
	if (S_ISBLK(st.st_mode) && has_holders(&st)) {
		snprintf(msg, msglen, "%s: device is busy (in use by a live pool?)", path);
		return -EBUSY;
	}
	fd = open(path, O_RDWR | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_EXCL : 0));
	if (fd < 0) {
		int e = errno;
		if (e == EBUSY)
			snprintf(msg, msglen, "%s: device is busy (in use by a live pool?)", path);
		else
			snprintf(msg, msglen, "%s: %s", path, strerror(e));
		return -e;
	}
	return fd;
}

int thin_tag_write(const char *path, const uint8_t *tag, thin_tag_hook hook, void *hook_ctx,
		   char *msg, size_t msglen)
{
	uint8_t blk[SB_BYTES];
	struct disk_superblock *d = (void *)blk;
	int fd, r;

	fd = open_inactive(path, msg, msglen);
	if (fd < 0)
		return fd;
	r = read_sb(fd, blk, msg, msglen);
	if (r < 0)
		goto out;
	memcpy(d->uuid, tag, THIN_TAG_LEN);
	thin_sb_validator.prepare(blk, 0, SB_BYTES);
	/* csum, flags, blocknr and uuid all sit in the first sector */
	if (pwrite(fd, blk, SECTOR, 0) != SECTOR) {
		r = errno ? -errno : -EIO;
		snprintf(msg, msglen, "%s: cannot write the superblock: %s", path, strerror(-r));
		goto out;
	}
	if (hook)
		hook("after-pwrite", hook_ctx);
	if (fsync(fd) < 0) {
		r = -errno;
		snprintf(msg, msglen, "%s: fsync: %s", path, strerror(errno));
	}
out:
	close(fd);
	return r;
}
