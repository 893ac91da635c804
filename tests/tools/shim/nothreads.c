/*
 * nothreads.so: test-only LD_PRELOAD shim that makes pthread_create fail
 * (EAGAIN, as when a process is out of threads), for the tests that every
 * tool gives the same output when its helper threads cannot start
 * (tests/scripts/threads_fallback.sh).
 *
 *   THINMETA_NOTHREAD_AT=N   fail only the Nth (0-based) call; unset or -1:
 *                            fail every call
 *   THINMETA_NOTHREAD_COUNT=F  at exit, write the number of calls to F
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static long calls;

static void report(void)
{
	const char *f = getenv("THINMETA_NOTHREAD_COUNT");
	FILE *o;

	if (f && (o = fopen(f, "w"))) {
		fprintf(o, "%ld\n", calls);
		fclose(o);
	}
}

int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	const char *at = getenv("THINMETA_NOTHREAD_AT");
	long n = __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);

	if (n == 0)
		atexit(report);
	if (!at || atol(at) < 0 || atol(at) == n)
		return EAGAIN;
	if (!real)
		real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
				void *))dlsym(RTLD_NEXT, "pthread_create");
	return real ? real(th, attr, fn, arg) : EAGAIN;
}
