#include "names/names.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc/crc32c.h"
#include "thin/pool_tag.h"
#include "util/endian.h"
#include "util/hash.h"
#include "util/vec.h"

static const char magic_head[8] = { 'T', 'M', 'N', 'A', 'M', 'E', 'S', '1' };
static const char magic_tail[8] = { 'T', 'M', 'N', 'A', 'M', 'E', 'N', 'D' };

struct disk_tmn_header {
	uint8_t magic[8];
	le32 version;
	le32 header_size;
	uint8_t pool_tag[16];
	le64 generation;
	le64 bound_trans_id;
	le32 data_block_size;
	le16 blob_max;
	le16 flags;
	le32 nr_entries;
	le32 crc;
} __attribute__((packed));
_Static_assert(sizeof(struct disk_tmn_header) == TMN_HEADER_SIZE, "tmn header");
_Static_assert(__builtin_offsetof(struct disk_tmn_header, generation) == 32, "generation");
_Static_assert(__builtin_offsetof(struct disk_tmn_header, data_block_size) == 48, "dbs");
_Static_assert(__builtin_offsetof(struct disk_tmn_header, nr_entries) == 56, "nr");

struct disk_tmn_entry {
	le32 dev_id;
	le16 blob_len;
	le16 flags;
	le64 transaction;
	le32 creation_time;
	le32 reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct disk_tmn_entry) == TMN_ENTRY_HEAD, "tmn entry");

#define TMN_HASH_SEED 0

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

void thin_names_init(struct thin_names_table *t)
{
	memset(t, 0, sizeof(*t));
	t->blob_max = TMN_BLOB_MAX_DEFAULT;
}

void thin_names_release(struct thin_names_table *t)
{
	for (size_t i = 0; i < t->nr; i++)
		free(t->e[i].blob);
	free(t->e);
	thin_names_init(t);
}

/*----------------------------------------------------------------*/
/* Codec */

static int reject(char *msg, size_t msglen, const char *why)
{
	snprintf(msg, msglen, "%s", why);
	return -EILSEQ;
}

static int decode_header(const uint8_t *p, size_t len, struct thin_names_table *t, uint32_t *nr,
			 char *msg, size_t msglen)
{
	const struct disk_tmn_header *h = (const void *)p;

	if (len < TMN_HEADER_SIZE + TMN_TRAILER_SIZE)
		return reject(msg, msglen, "table too short");
	if (memcmp(h->magic, magic_head, 8))
		return reject(msg, msglen, "bad table magic");
	if (le32_to_cpu(h->version) != TMN_VERSION)
		return reject(msg, msglen, "unsupported table version");
	if (le32_to_cpu(h->header_size) != TMN_HEADER_SIZE)
		return reject(msg, msglen, "bad table header size");
	if (crc_crc32c(~0u, p, 60) != le32_to_cpu(h->crc))
		return reject(msg, msglen, "bad table header checksum");
	t->blob_max = le16_to_cpu(h->blob_max);
	t->flags = le16_to_cpu(h->flags);
	if (t->blob_max > TMN_BLOB_MAX_LIMIT || t->flags)
		return reject(msg, msglen, "bad table header fields");
	memcpy(t->tag, h->pool_tag, 16);
	t->generation = le64_to_cpu(h->generation);
	t->bound_trans_id = le64_to_cpu(h->bound_trans_id);
	t->data_block_size = le32_to_cpu(h->data_block_size);
	*nr = le32_to_cpu(h->nr_entries);
	if (get_le64(p + len - 8) != hash64(p, len - TMN_TRAILER_SIZE, TMN_HASH_SEED) ||
	    memcmp(p + len - TMN_TRAILER_SIZE, magic_tail, 8))
		return reject(msg, msglen, "bad table trailer (truncated or modified)");
	return 0;
}

static int zero_bytes(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static int decode_entry(const uint8_t *p, size_t avail, const struct thin_names_table *t,
			struct thin_names_entry *e, size_t *used, char *msg, size_t msglen)
{
	const struct disk_tmn_entry *d = (const void *)p;
	size_t blen;

	if (avail < TMN_ENTRY_HEAD)
		return reject(msg, msglen, "table length does not match its entries");
	e->dev_id = le32_to_cpu(d->dev_id);
	e->blob_len = le16_to_cpu(d->blob_len);
	e->flags = le16_to_cpu(d->flags);
	e->transaction = le64_to_cpu(d->transaction);
	e->creation_time = le32_to_cpu(d->creation_time);
	e->blob = NULL;
	if (e->dev_id > THIN_MAX_DEV_ID)
		return reject(msg, msglen, "entry dev_id out of range");
	if (e->flags & ~TMN_E_ALL || le32_to_cpu(d->reserved))
		return reject(msg, msglen, "entry has unknown flags or reserved bits");
	if ((e->flags & TMN_E_PENDING_CREATE) && (e->flags & TMN_E_PENDING_DELETE))
		return reject(msg, msglen, "entry is both pending-create and pending-delete");
	if (e->blob_len > t->blob_max)
		return reject(msg, msglen, "entry blob longer than blob_max");
	blen = pad8(e->blob_len);
	if (avail - TMN_ENTRY_HEAD < blen)
		return reject(msg, msglen, "table length does not match its entries");
	if (!zero_bytes(p + TMN_ENTRY_HEAD + e->blob_len, blen - e->blob_len))
		return reject(msg, msglen, "entry padding not zero");
	if (e->blob_len) {
		e->blob = malloc(e->blob_len);
		if (!e->blob)
			return -ENOMEM;
		memcpy(e->blob, p + TMN_ENTRY_HEAD, e->blob_len);
	}
	*used = TMN_ENTRY_HEAD + blen;
	return 0;
}

int thin_names_decode(const void *buf, size_t len, struct thin_names_table *t, char *msg,
		      size_t msglen)
{
	const uint8_t *p = buf;
	size_t off = TMN_HEADER_SIZE, end;
	uint32_t nr;
	int r;

	thin_names_init(t);
	r = decode_header(p, len, t, &nr, msg, msglen);
	if (r < 0)
		return r;
	end = len - TMN_TRAILER_SIZE;
	if (nr > (end - off) / TMN_ENTRY_HEAD)
		return reject(msg, msglen, "table length does not match its entries");
	t->e = calloc(nr ? nr : 1, sizeof(*t->e));
	if (!t->e)
		return -ENOMEM;
	t->cap = nr;
	for (uint32_t i = 0; i < nr; i++) {
		size_t used = 0;

		r = decode_entry(p + off, end - off, t, &t->e[i], &used, msg, msglen);
		if (r < 0)
			goto fail;
		t->nr++;
		if (i && t->e[i].dev_id <= t->e[i - 1].dev_id) {
			r = reject(msg, msglen, "entries not sorted or duplicate dev_id");
			goto fail;
		}
		off += used;
	}
	if (off != end) {
		r = reject(msg, msglen, "table length does not match its entries");
		goto fail;
	}
	return 0;
fail:
	thin_names_release(t);
	return r;
}

int thin_names_encode(const struct thin_names_table *t, void **bufp, size_t *lenp)
{
	struct disk_tmn_header *h;
	size_t len = TMN_HEADER_SIZE + TMN_TRAILER_SIZE, off = TMN_HEADER_SIZE;
	uint8_t *p;

	for (size_t i = 0; i < t->nr; i++) {
		if (t->e[i].blob_len > t->blob_max || t->e[i].dev_id > THIN_MAX_DEV_ID ||
		    (i && t->e[i].dev_id <= t->e[i - 1].dev_id) || t->e[i].flags & ~TMN_E_ALL)
			return -EINVAL;
		len += TMN_ENTRY_HEAD + pad8(t->e[i].blob_len);
	}
	if (t->nr > UINT32_MAX)
		return -EINVAL;
	p = calloc(1, len);
	if (!p)
		return -ENOMEM;
	h = (void *)p;
	memcpy(h->magic, magic_head, 8);
	h->version = cpu_to_le32(TMN_VERSION);
	h->header_size = cpu_to_le32(TMN_HEADER_SIZE);
	memcpy(h->pool_tag, t->tag, 16);
	h->generation = cpu_to_le64(t->generation);
	h->bound_trans_id = cpu_to_le64(t->bound_trans_id);
	h->data_block_size = cpu_to_le32(t->data_block_size);
	h->blob_max = cpu_to_le16(t->blob_max);
	h->flags = cpu_to_le16(t->flags);
	h->nr_entries = cpu_to_le32((uint32_t)t->nr);
	h->crc = cpu_to_le32(crc_crc32c(~0u, p, 60));
	for (size_t i = 0; i < t->nr; i++) {
		struct disk_tmn_entry *d = (void *)(p + off);
		const struct thin_names_entry *e = &t->e[i];

		d->dev_id = cpu_to_le32(e->dev_id);
		d->blob_len = cpu_to_le16(e->blob_len);
		d->flags = cpu_to_le16(e->flags);
		d->transaction = cpu_to_le64(e->transaction);
		d->creation_time = cpu_to_le32(e->creation_time);
		if (e->blob_len)
			memcpy(p + off + TMN_ENTRY_HEAD, e->blob, e->blob_len);
		off += TMN_ENTRY_HEAD + pad8(e->blob_len);
	}
	memcpy(p + off, magic_tail, 8);
	put_le64(p + off + 8, hash64(p, off, TMN_HASH_SEED));
	*bufp = p;
	*lenp = len;
	return 0;
}

static int read_whole(const char *path, uint8_t **bufp, size_t *lenp)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1ll << 34)) {
		r = -EINVAL;
		close(fd);
		return r;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*bufp = buf;
	*lenp = got;
	return 0;
}

int thin_names_load(const char *path, struct thin_names_table *t, char *msg, size_t msglen)
{
	int r = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		uint8_t *buf = NULL;
		size_t len = 0;

		r = read_whole(path, &buf, &len);
		if (r < 0) {
			snprintf(msg, msglen, "%s: %s", path, strerror(-r));
			return r;
		}
		r = thin_names_decode(buf, len, t, msg, msglen);
		free(buf);
		if (r != -EILSEQ)
			return r;
	}
	return r;
}

/*----------------------------------------------------------------*/
/* Entries */

static size_t lower_bound(const struct thin_names_table *t, uint64_t dev_id)
{
	size_t lo = 0, hi = t->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->e[mid].dev_id < dev_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct thin_names_entry *thin_names_find(const struct thin_names_table *t, uint64_t dev_id)
{
	size_t i = lower_bound(t, dev_id);

	return i < t->nr && t->e[i].dev_id == dev_id ? &t->e[i] : NULL;
}

int thin_names_put(struct thin_names_table *t, const struct thin_names_entry *e)
{
	size_t i = lower_bound(t, e->dev_id);
	uint8_t *blob = NULL;

	if (e->dev_id > THIN_MAX_DEV_ID || e->blob_len > t->blob_max || e->flags & ~TMN_E_ALL)
		return -EINVAL;
	if (e->blob_len) {
		blob = malloc(e->blob_len);
		if (!blob)
			return -ENOMEM;
		memcpy(blob, e->blob, e->blob_len);
	}
	if (i < t->nr && t->e[i].dev_id == e->dev_id) {
		free(t->e[i].blob);
	} else {
		if (t->nr == t->cap) {
			struct thin_names_entry *n = vec_grow(t->e, &t->cap, sizeof(*n), 16);

			if (!n) {
				free(blob);
				return -ENOMEM;
			}
			t->e = n;
		}
		memmove(&t->e[i + 1], &t->e[i], (t->nr - i) * sizeof(*t->e));
		t->nr++;
	}
	t->e[i] = *e;
	t->e[i].blob = blob;
	return 0;
}

int thin_names_remove(struct thin_names_table *t, uint64_t dev_id)
{
	size_t i = lower_bound(t, dev_id);

	if (i >= t->nr || t->e[i].dev_id != dev_id)
		return -ENOENT;
	free(t->e[i].blob);
	memmove(&t->e[i], &t->e[i + 1], (t->nr - i - 1) * sizeof(*t->e));
	t->nr--;
	return 0;
}

/*----------------------------------------------------------------*/
/* Binding */

const char *thin_names_binding_name(enum thin_names_binding b)
{
	switch (b) {
	case TMN_BOUND_TAG:
		return "bound-by-tag";
	case TMN_BOUND_FINGERPRINT:
		return "bound-by-fingerprint";
	default:
		return "unbound";
	}
}

static const struct thin_dev *find_dev(const struct thin_dev_list *devs, uint64_t id)
{
	size_t lo = 0, hi = devs->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (devs->devs[mid].dev_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < devs->nr && devs->devs[lo].dev_id == id ? &devs->devs[lo] : NULL;
}

enum thin_names_binding thin_names_bind(const struct thin_names_table *t, const uint8_t *uuid,
					uint32_t data_block_size, const struct thin_dev_list *devs)
{
	size_t settled = 0;

	if (!thin_tag_is_zero(t->tag) && !memcmp(t->tag, uuid, 16))
		return TMN_BOUND_TAG;
	if (t->data_block_size != data_block_size)
		return TMN_UNBOUND;
	for (size_t i = 0; i < t->nr; i++) {
		const struct thin_names_entry *e = &t->e[i];
		const struct thin_dev *d;

		if (e->flags & TMN_E_PENDING_CREATE)
			continue;
		d = find_dev(devs, e->dev_id);
		if (!d || !d->has_details || d->details.transaction_id != e->transaction ||
		    d->details.creation_time != e->creation_time)
			return TMN_UNBOUND;
		settled++;
	}
	return settled ? TMN_BOUND_FINGERPRINT : TMN_UNBOUND;
}

/*----------------------------------------------------------------*/
/* Write protocol */

int thin_names_lock(const char *path, unsigned wait_ms)
{
	char lp[4096];
	struct timespec start, now, nap = { 0, 10 * 1000 * 1000 };
	int fd;

	if ((size_t)snprintf(lp, sizeof(lp), "%s.lock", path) >= sizeof(lp))
		return -ENAMETOOLONG;
	fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int e = errno;
			close(fd);
			return -e;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((uint64_t)(now.tv_sec - start.tv_sec) * 1000 +
			    (uint64_t)((now.tv_nsec - start.tv_nsec) / 1000000) >= wait_ms) {
			close(fd);
			return -ETIMEDOUT;
		}
		nanosleep(&nap, NULL);
	}
}

void thin_names_unlock(int lock_fd)
{
	if (lock_fd >= 0) {
		flock(lock_fd, LOCK_UN);
		close(lock_fd);
	}
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const char *path)
{
	char dir[4096];
	char *slash;
	int fd, r = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

#define HOOK(pt) do { if (hook) hook(pt, hook_ctx); } while (0)

static int keep_prev(const char *path, const char *prev, const char *prevtmp)
{
	unlink(prevtmp);
	if (link(path, prevtmp) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (rename(prevtmp, prev) < 0)
		return -errno;
	return 0;
}

int thin_names_commit(const char *path, const struct thin_names_table *t, thin_names_hook hook,
		      void *hook_ctx, char *msg, size_t msglen)
{
	char tmp[4096], prev[4096], prevtmp[4096];
	void *buf = NULL;
	size_t len = 0;
	int fd = -1, r;
	const char *what = "encode";

	if ((size_t)snprintf(prevtmp, sizeof(prevtmp), "%s.prev.tmp", path) >= sizeof(prevtmp))
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(prev, sizeof(prev), "%s.prev", path);
	r = thin_names_encode(t, &buf, &len);
	if (r < 0)
		goto out;
	what = "write";
	unlink(tmp);   /* stale from a crashed writer */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	r = fd < 0 ? -errno : write_all(fd, buf, len);
	if (r < 0)
		goto out;
	HOOK("after-write");
	what = "fsync";
	if (fsync(fd) < 0) {
		r = -errno;
		goto out;
	}
	HOOK("after-fsync");
	what = "keep .prev";
	r = keep_prev(path, prev, prevtmp);
	if (r < 0)
		goto out;
	HOOK("after-prev");
	what = "rename";
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto out;
	}
	HOOK("after-rename");
	HOOK("before-dirsync");
	what = "fsync directory";
	r = fsync_dir(path);
out:
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		snprintf(msg, msglen, "%s: cannot %s the table: %s", path, what, strerror(-r));
		if (strcmp(what, "fsync directory"))
			unlink(tmp);
	}
	free(buf);
	return r;
}

int thin_names_make_dir(const char *path)
{
	char dir[4096];
	char *slash;

	if ((size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

void thin_names_default_path(const uint8_t *tag, char *buf, size_t len)
{
	snprintf(buf, len, "/var/lib/thinmeta/names/%.16s.tmn", (const char *)tag);
}
