#include "thin/usage.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/vec.h"

/*----------------------------------------------------------------*/
/* Usage walk */

struct leaf_rec {
	uint64_t block;
	uint64_t last_key;
	uint16_t nr;
	uint16_t nr_live;  /* split walk: entries whose block a live device maps */
	uint8_t mult;      /* 1, or 2 = reached more than once */
	uint8_t live;      /* split walk: first reached by a live device */
};

/*
 * Per data block: the index of the only device mapping it so far, or
 * OWN_FREE / OWN_SHARED.  One, two or four bytes a block depending on the
 * number of devices, in regions of 2^20 blocks allocated on first use, so
 * that memory follows the data blocks in use, not the pool's size.
 */
#define OWN_REGION_SHIFT 20
#define OWN_REGION (1u << OWN_REGION_SHIFT)

struct owners {
	void **reg;
	uint64_t nr_reg;
	unsigned width;
	uint32_t free_mark, shared_mark;
	int nomem;
};

/*
 * The plain walk counts owners on a second thread: the walk (reads,
 * checksums, node checks, leaf records) hands each leaf's runs of
 * consecutive data blocks, in walk order, to the owner thread, which
 * applies them in that order, so every count is what one thread gives.
 * Runs go in buffers of RUNQ_RUNS; RUNQ_BUFS of them circulate.
 */
#define RUNQ_RUNS 4096u
#define RUNQ_BUFS 4u

struct own_run {
	uint64_t start;
	uint32_t len;
	uint32_t dev;
};

struct runq {
	pthread_mutex_t lock;
	pthread_cond_t work, room;
	struct own_run *buf[RUNQ_BUFS];
	unsigned nr[RUNQ_BUFS];
	unsigned head, queued;     /* ring of queued buffers; the rest are free */
	struct own_run *fill;      /* the buffer being filled (buf[(head + queued) % RUNQ_BUFS]) */
	unsigned nr_fill;
	pthread_t thread;
	int quit;
};

struct uctx {
	struct bc *bc;
	const struct thin_dev_list *devs;
	struct thin_usage *out;
	struct owners own;
	uint64_t nr_data_blocks;
	struct leaf_rec *leaves;
	size_t nr_leaves, cap_leaves;
	uint32_t *hash;    /* leaf index + 1, 0 = empty */
	size_t hash_size;  /* power of two */
	uint64_t *seen;    /* bit per metadata block: a leaf recorded (most lookups miss) */
	uint64_t nr_seen;  /* blocks the bits cover */
	size_t cur;        /* device being walked */
	struct thin_usage_split *split;   /* NULL: plain walk */
	uint64_t *live_bm, *orph_bm;      /* split walk: per data block */
	size_t *order;                    /* split walk: live devices first */
	struct runq *q;                   /* plain walk: the owner thread, or NULL (inline) */
	int err;
	char *msg;
	size_t msglen;
};

static int owners_init(struct owners *o, uint64_t nr_blocks, size_t nr_devs)
{
	o->width = nr_devs < 0xfe ? 1 : nr_devs < 0xfffe ? 2 : 4;
	o->free_mark = o->width == 1 ? 0xff : o->width == 2 ? 0xffff : UINT32_MAX;
	o->shared_mark = o->free_mark - 1;
	o->nomem = 0;
	o->nr_reg = (nr_blocks >> OWN_REGION_SHIFT) + 1;
	o->reg = calloc(o->nr_reg, sizeof(*o->reg));
	return o->reg ? 0 : -ENOMEM;
}

static void owners_release(struct owners *o)
{
	for (uint64_t i = 0; o->reg && i < o->nr_reg; i++)
		free(o->reg[i]);
	free(o->reg);
	o->reg = NULL;
}

static inline uint32_t own_get(const struct owners *o, uint64_t b)
{
	const void *r = o->reg[b >> OWN_REGION_SHIFT];
	uint64_t i = b & (OWN_REGION - 1);

	if (!r)
		return o->free_mark;
	switch (o->width) {
	case 1:
		return ((const uint8_t *)r)[i];
	case 2:
		return ((const uint16_t *)r)[i];
	default:
		return ((const uint32_t *)r)[i];
	}
}

static inline void own_set(struct owners *o, uint64_t b, uint32_t x)
{
	void **rp = &o->reg[b >> OWN_REGION_SHIFT];
	uint64_t i = b & (OWN_REGION - 1);

	if (!*rp) {
		*rp = malloc((size_t)OWN_REGION * o->width);
		if (!*rp) {
			o->nomem = 1;
			return;
		}
		memset(*rp, 0xff, (size_t)OWN_REGION * o->width);
	}
	switch (o->width) {
	case 1:
		((uint8_t *)*rp)[i] = (uint8_t)x;
		break;
	case 2:
		((uint16_t *)*rp)[i] = (uint16_t)x;
		break;
	default:
		((uint32_t *)*rp)[i] = x;
	}
}

/* One more mapping of data block b, by device (index) dev. */
static inline void map_block(struct uctx *c, uint64_t b, uint32_t dev)
{
	uint32_t o = own_get(&c->own, b);

	if (o == c->own.free_mark) {
		own_set(&c->own, b, dev);
		c->out[dev].exclusive++;
	} else if (o != c->own.shared_mark) {
		own_set(&c->own, b, c->own.shared_mark);
		c->out[o].exclusive--;
	}
}

/* map_block() for blocks [b, b + n), mapped by device dev. */
static void map_run(struct uctx *c, uint64_t b, uint64_t n, uint32_t dev)
{
	struct owners *o = &c->own;

	if (o->width != 1) {
		for (uint64_t j = 0; j < n; j++)
			map_block(c, b + j, dev);
		return;
	}
	/* one byte per block: the region's bytes in place, the device's count once a region */
	while (n) {
		uint64_t i = b & (OWN_REGION - 1), k = OWN_REGION - i, excl = 0;
		uint8_t *r = o->reg[b >> OWN_REGION_SHIFT];

		if (k > n)
			k = n;
		if (!r) {
			/* every block of a new region is free: map_block() sets each */
			r = malloc(OWN_REGION);
			if (!r) {
				o->nomem = 1;
				return;
			}
			memset(r, 0xff, OWN_REGION);
			o->reg[b >> OWN_REGION_SHIFT] = r;
		}
		for (uint64_t j = i; j < i + k; j++) {
			uint8_t x = r[j];

			if (x == 0xff) {
				r[j] = (uint8_t)dev;
				excl++;
			} else if (x != 0xfe) {
				r[j] = 0xfe;
				c->out[x].exclusive--;
			}
		}
		c->out[dev].exclusive += excl;
		b += k;
		n -= k;
	}
}

static void *owner_thread(void *arg)
{
	struct uctx *c = arg;
	struct runq *q = c->q;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		unsigned h, nr;

		while (!q->queued && !q->quit)
			pthread_cond_wait(&q->work, &q->lock);
		if (!q->queued)
			break;
		h = q->head;
		nr = q->nr[h];
		pthread_mutex_unlock(&q->lock);
		for (unsigned k = 0; k < nr; k++)
			map_run(c, q->buf[h][k].start, q->buf[h][k].len, q->buf[h][k].dev);
		pthread_mutex_lock(&q->lock);
		q->head = (q->head + 1) % RUNQ_BUFS;
		q->queued--;
		pthread_cond_broadcast(&q->room);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* Hands the filled buffer to the owner thread; waits for a free one. */
static void runq_flush(struct runq *q)
{
	if (!q->nr_fill)
		return;
	pthread_mutex_lock(&q->lock);
	q->nr[(q->head + q->queued) % RUNQ_BUFS] = q->nr_fill;
	q->queued++;
	pthread_cond_signal(&q->work);
	while (q->queued == RUNQ_BUFS)
		pthread_cond_wait(&q->room, &q->lock);
	q->fill = q->buf[(q->head + q->queued) % RUNQ_BUFS];
	q->nr_fill = 0;
	pthread_mutex_unlock(&q->lock);
}

/* Every run handed over so far is applied. */
static void runq_drain(struct runq *q)
{
	runq_flush(q);
	pthread_mutex_lock(&q->lock);
	while (q->queued)
		pthread_cond_wait(&q->room, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

/* The owner thread for the plain walk, in c->q; none (counts applied inline) when it cannot start. */
static void runq_start(struct uctx *c)
{
	struct runq *q = calloc(1, sizeof(*q));

	if (!q)
		return;
	for (unsigned i = 0; i < RUNQ_BUFS; i++)
		if (!(q->buf[i] = malloc(RUNQ_RUNS * sizeof(struct own_run))))
			goto fail;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->room, NULL);
	q->fill = q->buf[0];
	c->q = q;
	if (pthread_create(&q->thread, NULL, owner_thread, c) == 0)
		return;
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->room);
	pthread_mutex_destroy(&q->lock);
	c->q = NULL;
fail:
	for (unsigned i = 0; i < RUNQ_BUFS; i++)
		free(q->buf[i]);
	free(q);
}

static void runq_stop(struct uctx *c)
{
	struct runq *q = c->q;

	if (!q)
		return;
	runq_drain(q);
	pthread_mutex_lock(&q->lock);
	q->quit = 1;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->room);
	pthread_mutex_destroy(&q->lock);
	for (unsigned i = 0; i < RUNQ_BUFS; i++)
		free(q->buf[i]);
	free(q);
	c->q = NULL;
}

/* Blocks [b, b + n) mapped by the device being walked: to the owner thread, or now. */
static inline void map_blocks(struct uctx *c, uint64_t b, uint64_t n)
{
	struct runq *q = c->q;

	if (!q) {
		map_run(c, b, n, (uint32_t)c->cur);
		return;
	}
	q->fill[q->nr_fill].start = b;
	q->fill[q->nr_fill].len = (uint32_t)n;
	q->fill[q->nr_fill].dev = (uint32_t)c->cur;
	if (++q->nr_fill == RUNQ_RUNS)
		runq_flush(q);
}

static inline size_t hash_slot(uint64_t block, size_t size)
{
	return (size_t)hash_mix64(block) & (size - 1);
}

static struct leaf_rec *leaf_find(struct uctx *c, uint64_t block)
{
	size_t i;

	if (!c->hash)
		return NULL;
	if (block < c->nr_seen && !(c->seen[block / 64] & (1ull << (block % 64))))
		return NULL;
	i = hash_slot(block, c->hash_size);
	while (c->hash[i]) {
		struct leaf_rec *l = &c->leaves[c->hash[i] - 1];
		if (l->block == block)
			return l;
		i = (i + 1) & (c->hash_size - 1);
	}
	return NULL;
}

static void hash_put(uint32_t *hash, size_t size, uint64_t block, uint32_t v)
{
	size_t i = hash_slot(block, size);

	while (hash[i])
		i = (i + 1) & (size - 1);
	hash[i] = v;
}

static struct leaf_rec *leaf_add(struct uctx *c, uint64_t block)
{
	if (c->nr_leaves == c->cap_leaves) {
		struct leaf_rec *n = vec_grow(c->leaves, &c->cap_leaves, sizeof(*n), 1024);

		if (!n)
			return NULL;
		c->leaves = n;
	}
	if ((c->nr_leaves + 1) * 2 > c->hash_size) {
		size_t size = c->hash_size ? c->hash_size * 2 : 4096;
		uint32_t *h = calloc(size, sizeof(*h));
		if (!h)
			return NULL;
		for (size_t i = 0; i < c->nr_leaves; i++)
			hash_put(h, size, c->leaves[i].block, (uint32_t)i + 1);
		free(c->hash);
		c->hash = h;
		c->hash_size = size;
	}
	if (!c->seen) {
		c->nr_seen = bc_nr_blocks(c->bc);
		c->seen = calloc(c->nr_seen / 64 + 1, sizeof(uint64_t));
		if (!c->seen)
			return NULL;
	}
	if (block < c->nr_seen)
		c->seen[block / 64] |= 1ull << (block % 64);
	hash_put(c->hash, c->hash_size, block, (uint32_t)c->nr_leaves + 1);
	memset(&c->leaves[c->nr_leaves], 0, sizeof(struct leaf_rec));
	c->leaves[c->nr_leaves].block = block;
	return &c->leaves[c->nr_leaves++];
}

static void fail(struct uctx *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct uctx *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->err)
		return;
	c->err = err;
	va_start(ap, fmt);
	vsnprintf(c->msg, c->msglen, fmt, ap);
	va_end(ap);
}

static void note_leaf(struct thin_usage *u, uint64_t nr, uint64_t last_key)
{
	if (nr && (!u->mapped || last_key > u->highest))
		u->highest = last_key;
	u->mapped += nr;
}

static inline int bm_test_set(uint64_t *bm, uint64_t b)
{
	uint64_t m = 1ull << (b & 63);
	int was = !!(bm[b >> 6] & m);

	bm[b >> 6] |= m;
	return was;
}

/* Split walk, first decode of a leaf: live marks, orphan-only blocks. */
static inline void split_block(struct uctx *c, struct leaf_rec *l, uint64_t b)
{
	if (!c->split->orphan[c->cur]) {
		l->live = 1;
		bm_test_set(c->live_bm, b);
		return;
	}
	if (c->live_bm[b >> 6] & (1ull << (b & 63)))
		l->nr_live++;
	else if (!bm_test_set(c->orph_bm, b))
		c->split->reclaimable++;
}

/*
 * Entries [0, nr) of leaf n as runs of consecutive data blocks; a block
 * beyond the data device is skipped, as map_block() one by one would, and
 * reported when report is set (first read of the leaf; fail() keeps the
 * first message only).
 */
static void map_leaf_runs(struct uctx *c, const struct bt_node *n, uint32_t nr, int report,
			  uint64_t dev_id)
{
	const uint8_t *vals = bt_value(n, 0);
	uint64_t start = 0, len = 0;

	for (uint32_t i = 0; i < nr; i++) {
		uint64_t b = thin_bt_block(get_le64(vals + 8 * (size_t)i));

		if (b >= c->nr_data_blocks) {
			if (report)
				fail(c, -EILSEQ,
				     "thin device %" PRIu64 ": block %" PRIu64
				     " maps to data block %" PRIu64 " beyond the data device (%" PRIu64
				     " blocks)",
				     dev_id, bt_key(n, i), b, c->nr_data_blocks);
			continue;
		}
		if (len && b == start + len) {
			len++;
			continue;
		}
		if (len)
			map_blocks(c, start, len);
		start = b;
		len = 1;
	}
	if (len)
		map_blocks(c, start, len);
}

static int u_leaf(void *vctx, const struct bt_node *n)
{
	struct uctx *c = vctx;
	struct leaf_rec *l = leaf_add(c, n->blocknr);
	uint64_t dev_id = c->devs->devs[c->cur].dev_id;

	if (!l)
		return -ENOMEM;
	l->nr = (uint16_t)n->nr_entries;
	l->mult = 1;
	l->last_key = n->nr_entries ? bt_key(n, n->nr_entries - 1) : 0;
	if (!c->split) {
		map_leaf_runs(c, n, n->nr_entries, 1, dev_id);
		note_leaf(&c->out[c->cur], l->nr, l->last_key);
		return 0;
	}
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t b = thin_bt_block(get_le64(bt_value(n, i)));

		if (b >= c->nr_data_blocks) {
			fail(c, -EILSEQ,
			     "thin device %" PRIu64 ": block %" PRIu64 " maps to data block %" PRIu64
			     " beyond the data device (%" PRIu64 " blocks)",
			     dev_id, bt_key(n, i), b, c->nr_data_blocks);
			continue;
		}
		map_block(c, b, (uint32_t)c->cur);
		if (c->split)
			split_block(c, l, b);
	}
	if (c->split && c->split->orphan[c->cur])
		c->split->with_live[c->cur] += l->nr_live;
	note_leaf(&c->out[c->cur], l->nr, l->last_key);
	return 0;
}

/*
 * A leaf reached again: its mappings count once more.  Only the second
 * visit changes anything (every block it maps is then shared), so the
 * leaf is re-read at most once.
 */
static int leaf_again(struct uctx *c, struct leaf_rec *l)
{
	struct bc_block *b;
	struct bt_node n;
	int r;

	note_leaf(&c->out[c->cur], l->nr, l->last_key);
	if (c->split && c->split->orphan[c->cur])
		c->split->with_live[c->cur] += l->live ? l->nr : l->nr_live;
	if (l->mult > 1)
		return 0;
	l->mult = 2;
	r = bc_get(c->bc, l->block, &bt_node_validator, &b);
	if (r < 0)
		return r;
	bt_node_view(bc_data(b), &n);
	map_leaf_runs(c, &n, n.nr_entries < l->nr ? n.nr_entries : l->nr, 0, 0);
	bc_put(c->bc, b);
	return 0;
}

static int u_skip(void *vctx, uint64_t block, int again)
{
	struct uctx *c = vctx;
	struct leaf_rec *l = leaf_find(c, block);

	(void)again;
	if (!l)
		return 0;
	if (leaf_again(c, l) < 0)
		fail(c, -EIO, "cannot re-read mapping leaf %" PRIu64, block);
	return 1;
}

static void u_damage(void *vctx, enum dmg_level level, enum rep_code code, uint64_t block,
		     uint64_t lo, uint64_t hi, const char *m)
{
	struct uctx *c = vctx;

	(void)code;
	if (level < DMG_NON_FATAL)
		return;
	if (hi == UINT64_MAX)
		fail(c, -EILSEQ, "thin device %" PRIu64 ": node %" PRIu64 ": %s, affecting keys [%" PRIu64 ", -]",
		     c->devs->devs[c->cur].dev_id, block, m, lo);
	else
		fail(c, -EILSEQ, "thin device %" PRIu64 ": node %" PRIu64 ": %s, affecting keys [%" PRIu64
		     ", %" PRIu64 ")", c->devs->devs[c->cur].dev_id, block, m, lo, hi);
}

static int walk_devices(struct uctx *c)
{
	struct bt_walk_ops ops = { .leaf = u_leaf, .damage = u_damage, .child = u_skip };

	for (size_t k = 0; k < c->devs->nr; k++) {
		const struct thin_dev *d;
		struct leaf_rec *l;
		int r;

		c->cur = c->order ? c->order[k] : k;
		d = &c->devs->devs[c->cur];

		if (!d->has_root) {
			fail(c, -EILSEQ, "thin device %" PRIu64 " has no mapping tree", d->dev_id);
			continue;
		}
		l = leaf_find(c, d->root);
		if (l) {
			r = leaf_again(c, l);
			if (r < 0)
				return r;
			continue;
		}
		r = thin_walk_mappings(c->bc, d->root, &ops, c);
		if (r < 0)
			return r;
	}
	return 0;
}

static int split_init(struct uctx *c)
{
	const struct thin_dev_list *devs = c->devs;
	size_t words = (size_t)(c->nr_data_blocks / 64 + 1), k = 0;

	c->split->reclaimable = 0;
	memset(c->split->with_live, 0, devs->nr * sizeof(uint64_t));
	c->live_bm = calloc(words, sizeof(uint64_t));
	c->orph_bm = calloc(words, sizeof(uint64_t));
	c->order = malloc((devs->nr + 1) * sizeof(size_t));
	if (!c->live_bm || !c->orph_bm || !c->order)
		return -ENOMEM;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < devs->nr; i++)
			if (!!c->split->orphan[i] == pass)
				c->order[k++] = i;
	return 0;
}

static int usage_walk(struct uctx *c, const struct thin_dev_list *devs, uint64_t nr_data_blocks,
		      struct thin_usage *out, char *msg, size_t msglen);

int thin_usage_compute(struct bc *bc, const struct thin_dev_list *devs, uint64_t nr_data_blocks,
		       struct thin_usage *out, char *msg, size_t msglen)
{
	struct uctx c = { .bc = bc, .devs = devs };

	return usage_walk(&c, devs, nr_data_blocks, out, msg, msglen);
}

int thin_usage_compute_split(struct bc *bc, const struct thin_dev_list *devs,
			     uint64_t nr_data_blocks, struct thin_usage *out,
			     struct thin_usage_split *split, char *msg, size_t msglen)
{
	struct uctx c = { .bc = bc, .devs = devs, .split = split };
	int r;

	c.nr_data_blocks = nr_data_blocks;
	r = split_init(&c);
	if (r == 0)
		r = usage_walk(&c, devs, nr_data_blocks, out, msg, msglen);
	else
		snprintf(msg, msglen, "out of memory");
	free(c.live_bm);
	free(c.orph_bm);
	free(c.order);
	return r;
}

static int usage_walk(struct uctx *c_, const struct thin_dev_list *devs, uint64_t nr_data_blocks,
		      struct thin_usage *out, char *msg, size_t msglen)
{
	struct uctx c = *c_;
	int r;

	c.out = out;
	c.nr_data_blocks = nr_data_blocks;
	c.msg = msg;
	c.msglen = msglen;
	msg[0] = '\0';
	memset(out, 0, devs->nr * sizeof(*out));
	if (owners_init(&c.own, nr_data_blocks, devs->nr) < 0) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	if (!c.split)
		runq_start(&c);   /* none: the counts are applied inline */
	r = walk_devices(&c);
	runq_stop(&c);
	if (r == 0 && c.own.nomem)
		fail(&c, -ENOMEM, "out of memory");
	if (r == 0 && c.err)
		r = c.err;
	else if (r < 0 && !msg[0])
		snprintf(msg, msglen, "cannot read the mapping trees: %s", strerror(-r));
	for (size_t i = 0; i < devs->nr; i++) {
		if (out[i].exclusive > out[i].mapped)
			out[i].exclusive = out[i].mapped;
		out[i].shared = out[i].mapped - out[i].exclusive;
	}
	owners_release(&c.own);
	free(c.leaves);
	free(c.hash);
	free(c.seen);
	return r;
}

