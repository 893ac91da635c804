#include "ir/pipe.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/*
 * Records: a tag byte, then the fields in host order (memcpy: no
 * alignment), strings as a 32-bit length and the bytes with their NUL.
 * A chunk holds whole records; the ring has NR_CHUNKS of them.
 */
#define CHUNK_SIZE (256u << 10)
#define NR_CHUNKS 8u

enum tag {
	T_BEGIN_SB = 1, T_END_SB, T_BEGIN_DEV, T_END_DEV, T_BEGIN_DEF, T_END_DEF, T_REF,
	T_SINGLE, T_RANGE, T_COMMENT,
};

struct chunk {
	char *data;
	size_t len;
};

struct ir_pipe {
	struct ir_visitor out;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct chunk chunks[NR_CHUNKS];
	unsigned head, tail;   /* full chunks: [tail, head) mod NR_CHUNKS, counting up */
	int done;              /* no more chunks will come */
	int result;            /* the consumer's first non-zero return */
	struct chunk *cur;     /* the producer's chunk (index head % NR_CHUNKS) */
	int started;           /* lock, cond and thread exist */
	int finished;          /* the thread is joined */
};

/*----------------------------------------------------------------*/
/* Consumer */

static void get(const char **p, void *dst, size_t n)
{
	memcpy(dst, *p, n);
	*p += n;
}

static const char *get_str(const char **p)
{
	uint32_t n;
	const char *s;

	get(p, &n, sizeof(n));
	s = *p;
	*p += n + 1;
	return s;
}

static int replay_one(const struct ir_visitor *v, const char **p)
{
	uint8_t tag = (uint8_t)*(*p)++;

	switch (tag) {
	case T_BEGIN_SB: {
		struct ir_superblock sb;
		get(p, &sb, sizeof(sb));
		sb.uuid = get_str(p);
		return v->begin_superblock ? v->begin_superblock(v->ctx, &sb) : 0;
	}
	case T_END_SB:
		return v->end_superblock ? v->end_superblock(v->ctx) : 0;
	case T_BEGIN_DEV: {
		struct ir_device d;
		get(p, &d, sizeof(d));
		return v->begin_device ? v->begin_device(v->ctx, &d) : 0;
	}
	case T_END_DEV:
		return v->end_device ? v->end_device(v->ctx) : 0;
	case T_BEGIN_DEF: {
		const char *s = get_str(p);
		return v->begin_def ? v->begin_def(v->ctx, s) : 0;
	}
	case T_END_DEF:
		return v->end_def ? v->end_def(v->ctx) : 0;
	case T_REF: {
		const char *s = get_str(p);
		return v->ref ? v->ref(v->ctx, s) : 0;
	}
	case T_SINGLE: {
		uint64_t o, d;
		uint32_t t;
		get(p, &o, 8);
		get(p, &d, 8);
		get(p, &t, 4);
		return v->single_map ? v->single_map(v->ctx, o, d, t) : 0;
	}
	case T_RANGE: {
		uint64_t o, d, n;
		uint32_t t;
		get(p, &o, 8);
		get(p, &d, 8);
		get(p, &n, 8);
		get(p, &t, 4);
		return v->range_map ? v->range_map(v->ctx, o, d, n, t) : 0;
	}
	case T_COMMENT: {
		const char *s = get_str(p);
		return v->comment ? v->comment(v->ctx, s) : 0;
	}
	}
	return -EINVAL;
}

static void *consumer(void *arg)
{
	struct ir_pipe *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct chunk *c;
		int r = 0;

		while (p->tail == p->head && !p->done)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->tail == p->head)
			break;
		c = &p->chunks[p->tail % NR_CHUNKS];
		if (!p->result) {
			const char *q = c->data, *end = c->data + c->len;

			pthread_mutex_unlock(&p->lock);
			while (q < end && !r)
				r = replay_one(&p->out, &q);
			pthread_mutex_lock(&p->lock);
			if (r && !p->result)
				__atomic_store_n(&p->result, r, __ATOMIC_RELEASE);
		}
		c->len = 0;
		p->tail++;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/*----------------------------------------------------------------*/
/* Producer */

/* Hands the current chunk over and takes the next free one (waits for one). */
static void submit(struct ir_pipe *p)
{
	pthread_mutex_lock(&p->lock);
	p->head++;
	pthread_cond_broadcast(&p->cond);
	while (p->head - p->tail >= NR_CHUNKS)
		pthread_cond_wait(&p->cond, &p->lock);
	p->cur = &p->chunks[p->head % NR_CHUNKS];
	pthread_mutex_unlock(&p->lock);
}

/* Waits until the consumer has replayed everything handed over. */
static void drain(struct ir_pipe *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->tail != p->head)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

static inline int failed(struct ir_pipe *p)
{
	return __atomic_load_n(&p->result, __ATOMIC_ACQUIRE);
}

/* Room for n (<= CHUNK_SIZE) bytes in the current chunk. */
static char *room(struct ir_pipe *p, size_t n)
{
	char *r;

	if (p->cur->len + n > CHUNK_SIZE)
		submit(p);
	r = p->cur->data + p->cur->len;
	p->cur->len += n;
	return r;
}

static char *put(char *q, const void *src, size_t n)
{
	memcpy(q, src, n);
	return q + n;
}

/*
 * Room for a record: its tag written, a pointer to n bytes for its fields;
 * NULL with *r set once the consumer has stopped.
 */
static char *begin_record(struct ir_pipe *p, uint8_t tag, size_t n, int *r)
{
	char *q;

	*r = failed(p);
	if (*r)
		return NULL;
	q = room(p, 1 + n);
	*q = (char)tag;
	return q + 1;
}

static char *put_rec(char *q, uint8_t tag, const void *fixed, size_t nf, const char *s,
		     uint32_t n)
{
	*q++ = (char)tag;
	if (nf)
		q = put(q, fixed, nf);
	q = put(q, &n, sizeof(n));
	return put(q, s, (size_t)n + 1);
}

/* A record of fixed fields (nf bytes after the tag) and one string s. */
static int put_with_str(struct ir_pipe *p, uint8_t tag, const void *fixed, size_t nf,
			const char *s)
{
	uint32_t n = (uint32_t)strlen(s);
	size_t total = 1 + nf + sizeof(n) + n + 1;
	int r = failed(p);

	if (r)
		return r;
	if (total > CHUNK_SIZE) {
		/*
		 * Larger than a chunk (a name of 256 KiB): once the consumer
		 * has replayed everything before it and is idle, it is
		 * replayed here, in order.
		 */
		char *b = malloc(total);
		const char *cb = b;

		if (!b)
			return -ENOMEM;
		put_rec(b, tag, fixed, nf, s, n);
		if (p->cur->len)
			submit(p);
		drain(p);
		r = failed(p);
		if (!r) {
			r = replay_one(&p->out, &cb);
			if (r)
				__atomic_store_n(&p->result, r, __ATOMIC_RELEASE);
		}
		free(b);
		return r;
	}
	put_rec(room(p, total), tag, fixed, nf, s, n);
	return 0;
}

static int simple(void *ctx, uint8_t tag)
{
	int r;

	begin_record(ctx, tag, 0, &r);
	return r;
}

static int p_begin_superblock(void *ctx, const struct ir_superblock *sb)
{
	return put_with_str(ctx, T_BEGIN_SB, sb, sizeof(*sb), sb->uuid ? sb->uuid : "");
}

static int p_end_superblock(void *ctx)
{
	return simple(ctx, T_END_SB);
}

static int p_begin_device(void *ctx, const struct ir_device *d)
{
	int r;
	char *q = begin_record(ctx, T_BEGIN_DEV, sizeof(*d), &r);

	if (q)
		put(q, d, sizeof(*d));
	return r;
}

static int p_end_device(void *ctx)
{
	return simple(ctx, T_END_DEV);
}

static int p_begin_def(void *ctx, const char *name)
{
	return put_with_str(ctx, T_BEGIN_DEF, NULL, 0, name);
}

static int p_end_def(void *ctx)
{
	return simple(ctx, T_END_DEF);
}

static int p_ref(void *ctx, const char *name)
{
	return put_with_str(ctx, T_REF, NULL, 0, name);
}

static int p_comment(void *ctx, const char *text)
{
	return put_with_str(ctx, T_COMMENT, NULL, 0, text);
}

static int p_single(void *ctx, uint64_t o, uint64_t d, uint32_t t)
{
	int r;
	char *q = begin_record(ctx, T_SINGLE, 20, &r);

	if (q)
		put(put(put(q, &o, 8), &d, 8), &t, 4);
	return r;
}

static int p_range(void *ctx, uint64_t o, uint64_t d, uint64_t n, uint32_t t)
{
	int r;
	char *q = begin_record(ctx, T_RANGE, 28, &r);

	if (q)
		put(put(put(put(q, &o, 8), &d, 8), &n, 8), &t, 4);
	return r;
}

/*----------------------------------------------------------------*/

int ir_pipe_create(const struct ir_visitor *out, struct ir_visitor *in, struct ir_pipe **pp)
{
	struct ir_pipe *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->out = *out;
	for (unsigned i = 0; i < NR_CHUNKS; i++) {
		p->chunks[i].data = malloc(CHUNK_SIZE);
		if (!p->chunks[i].data) {
			ir_pipe_destroy(p);
			return -ENOMEM;
		}
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->cur = &p->chunks[0];
	if (pthread_create(&p->thread, NULL, consumer, p)) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		ir_pipe_destroy(p);
		return -EAGAIN;
	}
	p->started = 1;
	memset(in, 0, sizeof(*in));
	in->ctx = p;
	in->begin_superblock = p_begin_superblock;
	in->end_superblock = p_end_superblock;
	in->begin_device = p_begin_device;
	in->end_device = p_end_device;
	in->begin_def = p_begin_def;
	in->end_def = p_end_def;
	in->ref = p_ref;
	in->single_map = p_single;
	in->range_map = p_range;
	in->comment = out->comment ? p_comment : NULL;
	in->err = out->err;
	in->errlen = out->errlen;
	*pp = p;
	return 0;
}

int ir_pipe_finish(struct ir_pipe *p)
{
	pthread_mutex_lock(&p->lock);
	if (p->cur->len)
		p->head++;
	p->done = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	p->finished = 1;
	return p->result;
}

int ir_piped(const struct ir_visitor *out, int (*produce)(void *ctx, const struct ir_visitor *v),
	     void *ctx, int *consumer)
{
	struct ir_visitor in;
	struct ir_pipe *p;
	int r;

	*consumer = 0;
	if (ir_pipe_create(out, &in, &p) < 0)
		return produce(ctx, out);
	r = produce(ctx, &in);
	*consumer = ir_pipe_finish(p);
	ir_pipe_destroy(p);
	return r;
}

void ir_pipe_destroy(struct ir_pipe *p)
{
	if (!p)
		return;
	if (p->started && !p->finished)
		ir_pipe_finish(p);
	if (p->started) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
	}
	for (unsigned i = 0; i < NR_CHUNKS; i++)
		free(p->chunks[i].data);
	free(p);
}
