/*
 * corruptshim.so: test-only LD_PRELOAD shim that changes what one read
 * returns, as if the metadata changed under a running tool (a live pool
 * committing): the Nth read that covers a chosen 4 KiB block gets one byte
 * of that block flipped in the caller's buffer.  For the tests of the
 * paths that read a block again and must notice it changed
 * (tests/scripts/ls_reread.sh).  Counted calls: pread, pread64, preadv,
 * preadv64 on descriptors above 2.
 *
 *   THINMETA_CORRUPT_BLOCK=B   the block (4 KiB units of the file offset)
 *   THINMETA_CORRUPT_NTH=N     flip in the Nth (1-based) read covering B;
 *                              0 or unset: only count
 *   THINMETA_CORRUPT_BYTE=O    the byte of the block to flip (default 100)
 *   THINMETA_CORRUPT_COUNT=F   at exit, write the number of reads covering B to F
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define BLK 4096u

static long covering;

static long env_long(const char *name, long dflt)
{
	const char *s = getenv(name);

	return s && *s ? atol(s) : dflt;
}

static void report(void)
{
	const char *f = getenv("THINMETA_CORRUPT_COUNT");
	FILE *o;

	if (f && (o = fopen(f, "w"))) {
		fprintf(o, "%ld\n", covering);
		fclose(o);
	}
}

/* After a read of got bytes at off into iov[0, n): counts, maybe flips. */
static void after_read(int fd, const struct iovec *iov, int n, off_t off, ssize_t got)
{
	static int registered;
	long b = env_long("THINMETA_CORRUPT_BLOCK", -1), nth = env_long("THINMETA_CORRUPT_NTH", 0);
	long byte = env_long("THINMETA_CORRUPT_BYTE", 100);
	uint64_t at;

	if (fd <= 2 || b < 0 || got <= 0)
		return;
	if (!registered) {
		registered = 1;
		atexit(report);
	}
	at = (uint64_t)b * BLK + (uint64_t)byte;
	if (at < (uint64_t)off || at >= (uint64_t)off + (uint64_t)got)
		return;
	if (++covering != nth)
		return;
	at -= (uint64_t)off;
	for (int i = 0; i < n; i++) {
		if (at < iov[i].iov_len) {
			((unsigned char *)iov[i].iov_base)[at] ^= 0x5a;
			return;
		}
		at -= iov[i].iov_len;
	}
}

typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*preadv_fn)(int, const struct iovec *, int, off_t);

static ssize_t one(const char *name, pread_fn *real, int fd, void *buf, size_t len, off_t off)
{
	struct iovec v = { buf, len };
	ssize_t got;

	if (!*real)
		*real = (pread_fn)dlsym(RTLD_NEXT, name);
	got = (*real)(fd, buf, len, off);
	after_read(fd, &v, 1, off, got);
	return got;
}

static ssize_t vec(const char *name, preadv_fn *real, int fd, const struct iovec *iov, int n,
		   off_t off)
{
	ssize_t got;

	if (!*real)
		*real = (preadv_fn)dlsym(RTLD_NEXT, name);
	got = (*real)(fd, iov, n, off);
	after_read(fd, iov, n, off, got);
	return got;
}

static pread_fn real_pread, real_pread64;
static preadv_fn real_preadv, real_preadv64;

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	return one("pread", &real_pread, fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
	return one("pread64", &real_pread64, fd, buf, len, off);
}

ssize_t preadv(int fd, const struct iovec *iov, int n, off_t off)
{
	return vec("preadv", &real_preadv, fd, iov, n, off);
}

ssize_t preadv64(int fd, const struct iovec *iov, int n, off_t off)
{
	return vec("preadv64", &real_preadv64, fd, iov, n, off);
}
