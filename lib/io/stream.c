#include "io/stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/*
 * A reader thread fills a ring of chunk buffers in block order; the
 * consumer takes them in the same order.  The thread alone touches the
 * engine, so the consumer may decode while the next chunks are read.
 * Without a thread (pthread_create failed), next() reads inline.
 */

struct slot {
	uint8_t *buf;
	uint8_t *bad;        /* bitset over the chunk's blocks: unreadable */
	uint64_t block;
	unsigned nr;
	int status;          /* 0, or -EIO: some block unreadable (see bad) */
	int full;
};

struct ioe_stream {
	struct ioe *e;
	uint64_t next_read, end;
	unsigned chunk, depth;
	struct slot *slots;
	uint8_t *bufs;       /* the slots' buffers, in huge pages */
	size_t head, tail;   /* slots read by the thread / taken by the consumer */
	int taken;           /* the consumer holds slots[tail % depth] */
	int stop, done, threaded;   /* done: the reader read its last chunk */
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* Reads blocks [b, b + n) into sl; an unreadable chunk block by block. */
static void fill(struct ioe_stream *s, struct slot *sl, uint64_t b, unsigned n)
{
	sl->block = b;
	sl->nr = n;
	sl->status = 0;
	memset(sl->bad, 0, s->chunk / 8 + 1);
	if (ioe_read(s->e, b, n, sl->buf) < 0) {
		for (unsigned i = 0; i < n; i++) {
			if (ioe_read(s->e, b + i, 1, sl->buf + (size_t)i * MD_BLOCK_SIZE) < 0) {
				sl->bad[i / 8] |= (uint8_t)(1u << (i % 8));
				memset(sl->buf + (size_t)i * MD_BLOCK_SIZE, 0, MD_BLOCK_SIZE);
				sl->status = -EIO;
			}
		}
	}
}

/* Under the lock: the next chunk to read, in slot s->head (0: none left). */
static int claim(struct ioe_stream *s, uint64_t *b, unsigned *n)
{
	if (s->next_read >= s->end)
		return 0;
	*b = s->next_read;
	*n = s->end - *b < s->chunk ? (unsigned)(s->end - *b) : s->chunk;
	s->next_read += *n;
	return 1;
}

static void *reader(void *arg)
{
	struct ioe_stream *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct slot *sl;
		uint64_t b;
		unsigned n;

		while (!s->stop && s->next_read < s->end && s->head - s->tail >= s->depth)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stop || !claim(s, &b, &n))
			break;
		sl = &s->slots[s->head % s->depth];
		pthread_mutex_unlock(&s->lock);
		fill(s, sl, b, n);
		pthread_mutex_lock(&s->lock);
		sl->full = 1;
		s->head++;
		pthread_cond_broadcast(&s->cond);
	}
	s->done = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int ioe_stream_open(struct ioe *e, uint64_t first, uint64_t end, unsigned chunk, unsigned depth,
		    struct ioe_stream **out)
{
	struct ioe_stream *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->e = e;
	s->next_read = first;
	s->end = end > first ? end : first;
	s->chunk = chunk ? chunk : 1;
	s->depth = depth < 2 ? 2 : depth;
	s->slots = calloc(s->depth, sizeof(*s->slots));
	if (!s->slots)
		goto nomem;
	s->bufs = ioe_alloc_huge((size_t)s->chunk * s->depth);
	if (!s->bufs)
		goto nomem;
	for (unsigned i = 0; i < s->depth; i++) {
		s->slots[i].buf = s->bufs + (size_t)i * s->chunk * MD_BLOCK_SIZE;
		s->slots[i].bad = calloc(s->chunk / 8 + 1, 1);
		if (!s->slots[i].bad)
			goto nomem;
	}
	s->threaded = pthread_create(&s->th, NULL, reader, s) == 0;
	*out = s;
	return 0;
nomem:
	ioe_stream_close(s);
	return -ENOMEM;
}

int ioe_stream_next(struct ioe_stream *s, struct ioe_chunk *c)
{
	struct slot *sl;

	pthread_mutex_lock(&s->lock);
	if (s->taken) {
		s->slots[s->tail % s->depth].full = 0;
		s->tail++;
		s->taken = 0;
		pthread_cond_broadcast(&s->cond);
	}
	sl = &s->slots[s->tail % s->depth];
	if (!s->threaded) {
		uint64_t b;
		unsigned n;

		if (!claim(s, &b, &n)) {
			pthread_mutex_unlock(&s->lock);
			return 1;
		}
		fill(s, sl, b, n);
		sl->full = 1;
		s->head++;
	}
	while (!sl->full && !(s->done && s->head == s->tail))
		pthread_cond_wait(&s->cond, &s->lock);
	if (!sl->full) {
		pthread_mutex_unlock(&s->lock);
		return 1;
	}
	s->taken = 1;
	pthread_mutex_unlock(&s->lock);
	c->block = sl->block;
	c->nr = sl->nr;
	c->data = sl->buf;
	c->bad = sl->status ? sl->bad : NULL;
	return 0;
}

void ioe_stream_close(struct ioe_stream *s)
{
	if (!s)
		return;
	if (s->threaded) {
		pthread_mutex_lock(&s->lock);
		s->stop = 1;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->th, NULL);
	}
	for (unsigned i = 0; s->slots && i < s->depth; i++)
		free(s->slots[i].bad);
	free(s->bufs);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->slots);
	free(s);
}
