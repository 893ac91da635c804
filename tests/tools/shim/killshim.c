/*
 * killshim.so: test-only LD_PRELOAD shim that SIGKILLs a writer at a
 * chosen write point, for the "old or new after a kill" tests
 * (tests/adversarial).  Counted calls: pwrite, pwrite64, pwritev, write
 * (on descriptors above 2), fsync, fdatasync.
 *
 *   THINMETA_KILL_AT=N     kill at the Nth (0-based) counted call, before it
 *   THINMETA_KILL_TORN=S   ... a write call first writes a prefix of its
 *                          buffer, chosen by seed S, then the kill: whole
 *                          4 KiB pages (what SIGKILL can do to a multi-block
 *                          write: the kernel checks for it between pages)
 *   THINMETA_KILL_SECTORS=1  ... the prefix is whole 512-byte sectors instead,
 *                          so a single block can tear (a power cut, not a kill)
 *   THINMETA_KILL_COUNT=F  at exit, write the number of counted calls to F
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long calls;

static long env_long(const char *name)
{
	const char *s = getenv(name);

	return s && *s ? atol(s) : -1;
}

static void __attribute__((destructor)) report(void)
{
	const char *path = getenv("THINMETA_KILL_COUNT");
	FILE *f;

	if (!path || !*path || !(f = fopen(path, "w")))
		return;
	fprintf(f, "%ld\n", calls);
	fclose(f);
}

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

/* Called before each counted call; may write a torn prefix, then kills. */
static void point(int fd, const void *buf, size_t n, off_t off, int is_write)
{
	long at = env_long("THINMETA_KILL_AT");
	long torn = env_long("THINMETA_KILL_TORN");
	size_t unit;

	if (calls++ != at || at < 0)
		return;
	unit = env_long("THINMETA_KILL_SECTORS") == 1 ? 512 : 4096;

	if (is_write && torn >= 0 && n >= 2 * unit) {
		unsigned seed = (unsigned)torn;
		size_t units = n / unit;
		size_t keep = unit * (1 + (size_t)rand_r(&seed) % (units - 1));
		pwrite_fn real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
		if (real && off >= 0)
			real(fd, buf, keep, off);
	}
	raise(SIGKILL);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	pwrite_fn real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");

	if (fd > 2)
		point(fd, buf, n, off, 1);
	return real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	pwrite_fn real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");

	if (fd > 2)
		point(fd, buf, n, off, 1);
	return real(fd, buf, n, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off);
ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	ssize_t (*real)(int, const struct iovec *, int, off_t) =
		(ssize_t(*)(int, const struct iovec *, int, off_t))dlsym(RTLD_NEXT, "pwritev");

	if (fd > 2)
		point(fd, NULL, 0, off, 0);
	return real(fd, iov, cnt, off);
}

ssize_t write(int fd, const void *buf, size_t n);
ssize_t write(int fd, const void *buf, size_t n)
{
	ssize_t (*real)(int, const void *, size_t) =
		(ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");

	if (fd > 2)
		point(fd, buf, n, lseek(fd, 0, SEEK_CUR), 1);
	return real(fd, buf, n);
}

int fsync(int fd);
int fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");

	point(fd, NULL, 0, -1, 0);
	return real(fd);
}

int fdatasync(int fd);
int fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

	point(fd, NULL, 0, -1, 0);
	return real(fd);
}
