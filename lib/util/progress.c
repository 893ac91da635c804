#include "util/progress.h"

#include "util/parse.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


uint64_t progress_blocks_counter;

uint64_t progress_blocks_moved(void)
{
	return __atomic_load_n(&progress_blocks_counter, __ATOMIC_RELAXED);
}

struct progress {
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd, stop, drawn, redraw;
	const char *tool, *phase;
	uint64_t total, base;
	double t0;
	long delay_ms;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void draw(struct progress *p)
{
	char line[160];
	double t = now() - p->t0;
	uint64_t done = progress_blocks_moved() - p->base;
	double rate = t > 0 ? done / t : 0;
	int n;

	if (p->total) {
		uint64_t d = done < p->total ? done : p->total;
		double left = rate > 0 ? (p->total - d) / rate : 0;

		n = snprintf(line, sizeof(line), "\r%s: %s: %llu/%llu blocks, %.0f blocks/s, %.0f s left\033[K",
			     p->tool, p->phase, (unsigned long long)d, (unsigned long long)p->total,
			     rate, left);
	} else {
		n = snprintf(line, sizeof(line), "\r%s: %s: %llu blocks, %.0f blocks/s\033[K", p->tool,
			     p->phase, (unsigned long long)done, rate);
	}
	if (n > 0 && write(p->fd, line, strlen(line)) > 0)
		p->drawn = 1;
}

static void *run(void *arg)
{
	struct progress *p = arg;
	struct timespec ts;
	long wait_ms = p->delay_ms;

	pthread_mutex_lock(&p->lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (wait_ms % 1000) * 1000000L;
	while (!p->stop) {
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == 0) {
			if (p->stop)
				break;
			if (!p->redraw || !p->drawn)
				continue;
		} else {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 250 * 1000000L;
		}
		p->redraw = 0;
		draw(p);
	}
	if (!p->delay_ms && !p->drawn)
		draw(p);	/* delay 0: always shown, however short the run */
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int progress_wanted(int fd, int quiet)
{
	return !quiet && isatty(fd);
}

struct progress *progress_start(int fd, const char *tool, const char *phase)
{
	struct progress *p = calloc(1, sizeof(*p));
	const char *d = getenv("THINMETA_PROGRESS_DELAY_MS");	/* tests: shorter than 1 s */

	if (!p)
		return NULL;
	p->fd = fd;
	p->tool = tool;
	p->phase = phase;
	p->t0 = now();
	p->base = progress_blocks_moved();
	{
		uint64_t ms;

		p->delay_ms = d && parse_u64(d, &ms) == 0 && ms <= 3600000 ? (long)ms : 1000;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (pthread_create(&p->th, NULL, run, p)) {
		free(p);
		return NULL;
	}
	return p;
}

void progress_set(struct progress *p, const char *phase, uint64_t total)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	if (phase)
		p->phase = phase;
	p->total = total;
	p->redraw = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void progress_stop(struct progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->th, NULL);
	if (p->drawn && write(p->fd, "\r\033[K", 4) < 0)
		p->drawn = 0;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

uint64_t progress_path_blocks(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;

	if (fd < 0)
		return 0;
	end = lseek(fd, 0, SEEK_END);
	close(fd);
	return end > 0 ? (uint64_t)end / 4096 : 0;
}
