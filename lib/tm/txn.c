#include "tm/txn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/u64map.h"

#define RUN_BLOCKS 256u   /* 1 MiB per write at commit */

struct dblk {
	const struct bc_validator *v;
	uint8_t *data;
};

#define RECENT 64u   /* direct-mapped cache in front of the dirty map */

struct tm_txn {
	struct bc *bc;
	const struct tm_sm_ops *sm;
	void *sm_ctx;
	struct u64map dirty;     /* loc -> struct dblk * */
	struct {
		uint64_t loc;
		struct dblk *d;
	} recent[RECENT];
	int error;
	unsigned long nr_writes;
};

int tm_txn_create(struct bc *bc, struct tm_txn **out)
{
	struct tm_txn *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->bc = bc;
	u64map_init(&t->dirty);
	*out = t;
	return 0;
}

static struct dblk *dirty_get(const struct tm_txn *t, uint64_t b)
{
	unsigned slot = (unsigned)(b * 0x9E3779B97F4A7C15ull >> 58) % RECENT;
	struct tm_txn *tw = (struct tm_txn *)t;   /* the cache is not state */
	uint64_t v;

	if (t->recent[slot].d && t->recent[slot].loc == b)
		return t->recent[slot].d;
	if (!u64map_get(&t->dirty, b, &v))
		return NULL;
	tw->recent[slot].loc = b;
	tw->recent[slot].d = (struct dblk *)(uintptr_t)v;
	return tw->recent[slot].d;
}

static void wipe(struct tm_txn *t)
{
	for (size_t i = u64map_next(&t->dirty, 0); i < t->dirty.cap;
	     i = u64map_next(&t->dirty, i + 1)) {
		struct dblk *d = (struct dblk *)(uintptr_t)t->dirty.vals[i];
		free(d->data);
		free(d);
	}
	u64map_clear(&t->dirty);
	memset(t->recent, 0, sizeof(t->recent));
}

void tm_txn_destroy(struct tm_txn *t)
{
	if (!t)
		return;
	wipe(t);
	u64map_release(&t->dirty);
	free(t);
}

void tm_txn_set_sm(struct tm_txn *t, const struct tm_sm_ops *ops, void *ctx)
{
	t->sm = ops;
	t->sm_ctx = ctx;
}

struct bc *tm_txn_bc(struct tm_txn *t)
{
	return t->bc;
}

void tm_txn_prefetch(struct tm_txn *t, const uint64_t *blocks, size_t nr)
{
	uint64_t *todo = malloc(nr * sizeof(*todo) + 1);
	size_t n = 0;

	if (!todo)
		return;   /* read-ahead is only a hint */
	for (size_t i = 0; i < nr; i++)
		if (!dirty_get(t, blocks[i]))
			todo[n++] = blocks[i];
	bc_prefetch(t->bc, todo, n);
	free(todo);
}

int tm_txn_is_shadow(const struct tm_txn *t, uint64_t b)
{
	return dirty_get(t, b) != NULL;
}

int tm_txn_read_lock(struct tm_txn *t, uint64_t b, const struct bc_validator *v,
		     struct tm_block *out)
{
	struct dblk *d = dirty_get(t, b);
	int r;

	out->loc = b;
	out->bcb = NULL;
	if (d) {
		out->data = d->data;
		return 0;
	}
	r = bc_get(t->bc, b, v, &out->bcb);
	if (r < 0)
		return r;
	out->data = (void *)bc_data(out->bcb);
	return 0;
}

void tm_txn_unlock(struct tm_txn *t, struct tm_block *b)
{
	if (b->bcb)
		bc_put(t->bc, b->bcb);
	b->bcb = NULL;
	b->data = NULL;
}

/* A dirty buffer for b (reused when b was allocated and freed in this transaction). */
static int dirty_add(struct tm_txn *t, uint64_t b, const struct bc_validator *v, struct dblk **out)
{
	struct dblk *d = dirty_get(t, b);
	int r;

	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d)
			return -ENOMEM;
		d->data = ioe_alloc_blocks(1);
		if (!d->data) {
			free(d);
			return -ENOMEM;
		}
		r = u64map_put(&t->dirty, b, (uint64_t)(uintptr_t)d);
		if (r < 0) {
			free(d->data);
			free(d);
			return r;
		}
	}
	d->v = v;
	*out = d;
	return 0;
}

static int set_error(struct tm_txn *t, int r)
{
	if (r < 0 && !t->error)
		t->error = r;
	return r;
}

int tm_txn_new_block(struct tm_txn *t, const struct bc_validator *v, struct tm_block *out)
{
	struct dblk *d;
	uint64_t b;
	int r;

	if (t->error)
		return t->error;
	r = t->sm->new_block(t->sm_ctx, &b);
	if (r < 0)
		return r;
	r = dirty_add(t, b, v, &d);
	if (r < 0) {
		t->sm->dec(t->sm_ctx, b);
		return r;
	}
	memset(d->data, 0, MD_BLOCK_SIZE);
	out->loc = b;
	out->data = d->data;
	out->bcb = NULL;
	return 0;
}

int tm_txn_shadow(struct tm_txn *t, uint64_t orig, const struct bc_validator *v,
		  struct tm_block *out, int *inc_children)
{
	struct tm_block old;
	struct dblk *d;
	uint32_t count;
	uint64_t b;
	int r;

	if (t->error)
		return t->error;
	r = t->sm->get_count(t->sm_ctx, orig, &count);
	if (r < 0)
		return r;
	if (!count)
		return -EILSEQ;   /* a reference to a free block: the metadata is inconsistent */
	*inc_children = count > 1;
	d = dirty_get(t, orig);
	if (d && count == 1) {
		d->v = v;
		out->loc = orig;
		out->data = d->data;
		out->bcb = NULL;
		return 0;
	}
	r = tm_txn_read_lock(t, orig, v, &old);
	if (r < 0)
		return r;
	r = t->sm->new_block(t->sm_ctx, &b);
	if (r < 0)
		goto out;
	r = set_error(t, t->sm->dec(t->sm_ctx, orig));
	if (r < 0)
		goto out;
	r = dirty_add(t, b, v, &d);
	if (r < 0)
		goto out;
	memcpy(d->data, old.data, MD_BLOCK_SIZE);
	out->loc = b;
	out->data = d->data;
	out->bcb = NULL;
out:
	tm_txn_unlock(t, &old);
	return r;
}

int tm_txn_inc(struct tm_txn *t, uint64_t b)
{
	return set_error(t, t->sm->inc(t->sm_ctx, b));
}

int tm_txn_dec(struct tm_txn *t, uint64_t b)
{
	return set_error(t, t->sm->dec(t->sm_ctx, b));
}

int tm_txn_ref(struct tm_txn *t, uint64_t b, uint32_t *count)
{
	return t->sm->get_count(t->sm_ctx, b, count);
}

int tm_txn_is_shared(struct tm_txn *t, uint64_t b, int *shared)
{
	uint32_t c;
	int r = t->sm->get_count(t->sm_ctx, b, &c);

	if (r < 0)
		return r;
	*shared = c > 1;
	return 0;
}

int tm_txn_error(const struct tm_txn *t)
{
	return t->error;
}

size_t tm_txn_nr_dirty(const struct tm_txn *t)
{
	return t->dirty.nr;
}

unsigned long tm_txn_nr_writes(const struct tm_txn *t)
{
	return t->nr_writes;
}

/*----------------------------------------------------------------*/
/* commit */

struct run {
	uint8_t *buf;
	uint64_t start;
	unsigned nr;
};

static int run_flush(struct tm_txn *t, struct run *run)
{
	int r = 0;

	if (run->nr) {
		r = ioe_write(bc_engine(t->bc), run->start, run->nr, run->buf);
		t->nr_writes++;
	}
	run->nr = 0;
	return r;
}

static int run_add(struct tm_txn *t, struct run *run, uint64_t b, const struct dblk *d)
{
	int r;

	if (run->nr && (b != run->start + run->nr || run->nr == RUN_BLOCKS)) {
		r = run_flush(t, run);
		if (r < 0)
			return r;
	}
	if (!run->nr)
		run->start = b;
	memcpy(run->buf + (size_t)run->nr * MD_BLOCK_SIZE, d->data, MD_BLOCK_SIZE);
	if (d->v && d->v->prepare)
		d->v->prepare(run->buf + (size_t)run->nr * MD_BLOCK_SIZE, b, MD_BLOCK_SIZE);
	run->nr++;
	return 0;
}

/* Writes every referenced dirty block; the locations written go to *locs. */
static int write_dirty(struct tm_txn *t, uint64_t *keys, size_t nr, size_t *nr_written)
{
	struct run run = { ioe_alloc_blocks(RUN_BLOCKS), 0, 0 };
	size_t w = 0;
	int r = 0;

	if (!run.buf)
		return -ENOMEM;
	for (size_t i = 0; i < nr && r >= 0; i++) {
		uint32_t count;

		r = t->sm->get_count(t->sm_ctx, keys[i], &count);
		if (r < 0 || !count)
			continue;   /* allocated and freed again in this transaction */
		r = run_add(t, &run, keys[i], dirty_get(t, keys[i]));
		keys[w++] = keys[i];
	}
	if (r >= 0)
		r = run_flush(t, &run);
	free(run.buf);
	*nr_written = w;
	return r;
}

int tm_txn_commit(struct tm_txn *t, const struct bc_validator *v, void *sb_block, int dry_run)
{
	struct ioe *e = bc_engine(t->bc);
	uint64_t *keys;
	size_t nr, written = 0;
	int r;

	if (t->error)
		return t->error;
	if (dry_run)
		return 0;
	r = u64map_sorted_keys(&t->dirty, &keys, &nr);
	if (r < 0)
		return r;
	t->nr_writes = 0;
	r = write_dirty(t, keys, nr, &written);
	if (r >= 0)
		r = ioe_flush(e);
	if (r >= 0) {
		uint8_t *sb = ioe_alloc_blocks(1);

		if (!sb) {
			r = -ENOMEM;
		} else {
			memcpy(sb, sb_block, MD_BLOCK_SIZE);
			v->prepare(sb, 0, MD_BLOCK_SIZE);
			r = ioe_write(e, 0, 1, sb);
			t->nr_writes++;
			free(sb);
		}
	}
	if (r >= 0)
		r = ioe_flush(e);
	/* what the cache holds at these locations is stale now */
	for (size_t i = 0; i < written; i++)
		bc_forget(t->bc, keys[i]);
	bc_forget(t->bc, 0);
	free(keys);
	if (r >= 0)
		wipe(t);
	return r;
}
