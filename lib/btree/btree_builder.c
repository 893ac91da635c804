#include "btree/btree_builder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

#define INTERNAL_MAX 252u
#define CDC_MASK 31ull      /* a boundary every ~32 entries past the minimum */

/*----------------------------------------------------------------*/
/* dedup table */

struct dd_slot {
	uint64_t lo, hi, block;   /* block 0 (the superblock) marks an empty slot */
};

struct bt_dedup {
	struct dd_slot *slots;
	uint64_t mask;
	uint64_t hits;
};

struct bt_dedup *bt_dedup_create(unsigned order)
{
	struct bt_dedup *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->slots = calloc((size_t)1 << order, sizeof(*d->slots));
	if (!d->slots) {
		free(d);
		return NULL;
	}
	d->mask = ((uint64_t)1 << order) - 1;
	return d;
}

void bt_dedup_destroy(struct bt_dedup *d)
{
	if (!d)
		return;
	free(d->slots);
	free(d);
}

uint64_t bt_dedup_hits(const struct bt_dedup *d)
{
	return d ? d->hits : 0;
}

/*----------------------------------------------------------------*/

struct leafbuf {
	uint8_t *node;     /* 4 KiB in node layout */
	uint32_t n;
	int shared;        /* an existing leaf, linked: block */
	uint64_t block;
};

struct lvl_entry {
	uint64_t key, block;
};

struct bt_builder {
	struct tm_mgr *tm;
	struct bt_builder_opts o;
	uint32_t max, minfill, cdc_min;
	struct leafbuf cur, pend, work;
	int have_pend;
	struct lvl_entry *lvl;
	size_t lvl_nr, lvl_cap;
	uint64_t nr_entries;
	int have_last;
	uint64_t last_key;
	uint8_t *tmp;      /* 4 KiB scratch */
	uint8_t *merge;    /* room for 2 * max entries */
	uint8_t *rbuf;     /* a linked leaf read back */
};

static void node_init(uint8_t *node, uint32_t flags, uint32_t max, uint32_t vsize)
{
	struct disk_node_header *h = (struct disk_node_header *)node;

	memset(node, 0, MD_BLOCK_SIZE);
	h->flags = cpu_to_le32(flags);
	h->max_entries = cpu_to_le32(max);
	h->value_size = cpu_to_le32(vsize);
}

static inline uint8_t *key_ptr(uint8_t *node, uint32_t i)
{
	return node + BT_HEADER_SIZE + 8 * (size_t)i;
}

static inline uint8_t *val_ptr(uint8_t *node, uint32_t max, uint32_t vsize, uint32_t i)
{
	return node + BT_HEADER_SIZE + 8 * (size_t)max + (size_t)vsize * i;
}

static void leaf_reset(struct bt_builder *b, struct leafbuf *l)
{
	node_init(l->node, BT_LEAF_NODE, b->max, b->o.value_size);
	l->n = 0;
	l->shared = 0;
	l->block = 0;
}

int bt_builder_create(struct tm_mgr *tm, const struct bt_builder_opts *o, struct bt_builder **out)
{
	struct bt_builder *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->tm = tm;
	b->o = *o;
	b->max = bt_calc_max_entries(o->value_size);
	b->minfill = b->max / 3;
	b->cdc_min = b->max / 2;
	b->cur.node = ioe_alloc_blocks(1);
	b->pend.node = ioe_alloc_blocks(1);
	b->work.node = ioe_alloc_blocks(1);
	b->tmp = ioe_alloc_blocks(1);
	b->merge = malloc(2 * (size_t)b->max * (8 + o->value_size));
	b->rbuf = ioe_alloc_blocks(1);
	if (!b->max || !b->rbuf || !b->cur.node || !b->pend.node || !b->work.node || !b->tmp || !b->merge) {
		bt_builder_destroy(b);
		return -ENOMEM;
	}
	leaf_reset(b, &b->cur);
	leaf_reset(b, &b->pend);
	*out = b;
	return 0;
}

void bt_builder_destroy(struct bt_builder *b)
{
	if (!b)
		return;
	free(b->cur.node);
	free(b->pend.node);
	free(b->work.node);
	free(b->tmp);
	free(b->merge);
	free(b->rbuf);
	free(b->lvl);
	free(b);
}

uint64_t bt_builder_nr_entries(const struct bt_builder *b)
{
	return b->nr_entries;
}

static int lvl_push(struct bt_builder *b, uint64_t key, uint64_t block)
{
	if (b->lvl_nr == b->lvl_cap) {
		size_t cap = b->lvl_cap ? b->lvl_cap * 2 : 64;
		struct lvl_entry *n = realloc(b->lvl, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		b->lvl = n;
		b->lvl_cap = cap;
	}
	b->lvl[b->lvl_nr].key = key;
	b->lvl[b->lvl_nr].block = block;
	b->lvl_nr++;
	return 0;
}

static struct hash128 leaf_hash(struct bt_builder *b, struct leafbuf *l)
{
	size_t klen = 8 * (size_t)l->n, vlen = (size_t)b->o.value_size * l->n;
	uint8_t *t = b->tmp;

	put_le32(t, l->n);
	put_le32(t + 4, b->o.value_size);
	memcpy(t + 8, key_ptr(l->node, 0), klen);
	memcpy(t + 8 + klen, val_ptr(l->node, b->max, b->o.value_size, 0), vlen);
	return hash128(t, 8 + klen + vlen);
}

/* Adds a finished leaf to the level above: shares, reuses or writes it. */
static int commit(struct bt_builder *b, struct leafbuf *l)
{
	struct disk_node_header *h = (struct disk_node_header *)l->node;
	uint64_t first = l->n ? get_le64(key_ptr(l->node, 0)) : 0;
	struct dd_slot *slot = NULL;
	struct hash128 hv = { 0, 0 };
	uint64_t loc;
	int r;

	if (l->shared) {
		r = tm_inc(b->tm, l->block);
		return r < 0 ? r : lvl_push(b, first, l->block);
	}
	h->nr_entries = cpu_to_le32(l->n);
	if (b->o.dedup) {
		hv = leaf_hash(b, l);
		slot = &b->o.dedup->slots[hv.lo & b->o.dedup->mask];
		if (slot->block && slot->lo == hv.lo && slot->hi == hv.hi) {
			b->o.dedup->hits++;
			r = tm_inc(b->tm, slot->block);
			return r < 0 ? r : lvl_push(b, first, slot->block);
		}
	}
	r = tm_alloc(b->tm, &loc);
	if (r < 0)
		return r;
	r = tm_write(b->tm, loc, &bt_node_validator, l->node);
	if (r < 0)
		return r;
	if (b->o.new_leaf) {
		struct bt_node view;
		bt_node_view(l->node, &view);
		r = b->o.new_leaf(b->o.ctx, &view);
		if (r < 0)
			return r;
	}
	if (slot) {
		slot->lo = hv.lo;
		slot->hi = hv.hi;
		slot->block = loc;
	}
	return lvl_push(b, first, loc);
}

/* cur is complete: the pending leaf is committed and cur becomes pending. */
static int close_cur(struct bt_builder *b)
{
	struct leafbuf t;
	int r;

	if (b->have_pend) {
		r = commit(b, &b->pend);
		if (r < 0)
			return r;
	}
	t = b->pend;
	b->pend = b->cur;
	b->cur = t;
	b->have_pend = 1;
	leaf_reset(b, &b->cur);
	return 0;
}

static void put_entry(struct bt_builder *b, struct leafbuf *l, uint64_t key, const void *v)
{
	put_le64(key_ptr(l->node, l->n), key);
	memcpy(val_ptr(l->node, b->max, b->o.value_size, l->n), v, b->o.value_size);
	l->n++;
}

/*
 * pend + an underfull cur: rewrite both as one leaf, or two halves, so
 * that no leaf is below max / 3.  A shared pend is copied, not linked.
 */
static int merge_pend_cur(struct bt_builder *b)
{
	uint32_t vs = b->o.value_size, t = b->pend.n + b->cur.n, i, k = 0;
	uint8_t *m = b->merge;
	uint32_t split = t <= b->max ? t : t / 2;
	int r;

	for (i = 0; i < b->pend.n; i++, k++) {
		memcpy(m + k * (8 + vs), key_ptr(b->pend.node, i), 8);
		memcpy(m + k * (8 + vs) + 8, val_ptr(b->pend.node, b->max, vs, i), vs);
	}
	for (i = 0; i < b->cur.n; i++, k++) {
		memcpy(m + k * (8 + vs), key_ptr(b->cur.node, i), 8);
		memcpy(m + k * (8 + vs) + 8, val_ptr(b->cur.node, b->max, vs, i), vs);
	}
	b->have_pend = 0;
	leaf_reset(b, &b->pend);
	leaf_reset(b, &b->cur);
	leaf_reset(b, &b->work);
	for (k = 0; k < t; k++) {
		put_entry(b, &b->work, get_le64(m + k * (8 + vs)), m + k * (8 + vs) + 8);
		if (k + 1 == split || k + 1 == t) {
			r = commit(b, &b->work);
			if (r < 0)
				return r;
			leaf_reset(b, &b->work);
		}
	}
	return 0;
}

static int add_entry(struct bt_builder *b, uint64_t key, const void *value_le)
{
	struct leafbuf *c = &b->cur;

	if (b->have_last && key <= b->last_key)
		return -EINVAL;
	b->have_last = 1;
	b->last_key = key;
	b->nr_entries++;
	put_entry(b, c, key, value_le);
	if (c->n == b->max)
		return close_cur(b);
	if (b->o.cdc && c->n >= b->cdc_min) {
		uint64_t v = 0;
		memcpy(&v, value_le, b->o.value_size < 8 ? b->o.value_size : 8);
		if (!(hash_mix64(key ^ hash_mix64(v)) & CDC_MASK))
			return close_cur(b);
	}
	return 0;
}

int bt_builder_add(struct bt_builder *b, uint64_t key, const void *value_le)
{
	return add_entry(b, key, value_le);
}

int bt_builder_add_leaf(struct bt_builder *b, uint64_t block)
{
	struct bt_node n;
	int r;
	uint32_t i;

	r = tm_read(b->tm, block, b->rbuf);
	if (r == -ENOSPC && tm_overflowed(b->tm)) {
		/*
		 * A dry run dropped the block: only the number of blocks
		 * matters now, so stand in a leaf of minimum fill.
		 */
		node_init(b->rbuf, BT_LEAF_NODE, b->max, b->o.value_size);
		((struct disk_node_header *)b->rbuf)->nr_entries = cpu_to_le32(b->minfill);
		for (i = 0; i < b->minfill; i++)
			put_le64(key_ptr(b->rbuf, i), b->last_key + 1 + i);
	} else if (r < 0) {
		return r;
	}
	bt_node_view(b->rbuf, &n);
	if (!bt_is_leaf(&n) || n.value_size != b->o.value_size || n.max_entries != b->max ||
	    n.nr_entries > n.max_entries)
		return -EINVAL;
	if (!n.nr_entries)
		return 0;
	if (b->have_last && bt_key(&n, 0) <= b->last_key)
		return -EINVAL;
	if (n.nr_entries < b->minfill || (b->cur.n && b->cur.n < b->minfill && !b->have_pend)) {
		/* too small to stand alone: copy the entries */
		for (i = 0; i < n.nr_entries; i++) {
			r = add_entry(b, bt_key(&n, i), bt_value(&n, i));
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (b->cur.n) {
		r = b->cur.n < b->minfill ? merge_pend_cur(b) : close_cur(b);
		if (r < 0)
			return r;
	}
	if (b->have_pend) {
		r = commit(b, &b->pend);
		if (r < 0)
			return r;
	}
	memcpy(b->pend.node, b->rbuf, MD_BLOCK_SIZE);
	b->pend.n = n.nr_entries;
	b->pend.shared = 1;
	b->pend.block = block;
	b->have_pend = 1;
	b->have_last = 1;
	b->last_key = bt_key(&n, n.nr_entries - 1);
	b->nr_entries += n.nr_entries;
	return 0;
}

static int finish_leaf_level(struct bt_builder *b)
{
	int r = 0;

	if (b->cur.n) {
		/* the last two leaves become one when they fit (or the last is underfull) */
		if (b->have_pend && (b->cur.n < b->minfill ||
				     (!b->pend.shared && b->pend.n + b->cur.n <= b->max)))
			r = merge_pend_cur(b);
		else
			r = close_cur(b);
		if (r < 0)
			return r;
	}
	if (b->have_pend) {
		r = commit(b, &b->pend);
		b->have_pend = 0;
		leaf_reset(b, &b->pend);
	}
	return r;
}

static void reset(struct bt_builder *b)
{
	leaf_reset(b, &b->cur);
	leaf_reset(b, &b->pend);
	b->have_pend = 0;
	b->lvl_nr = 0;
	b->nr_entries = 0;
	b->have_last = 0;
	b->last_key = 0;
}

/* Builds one internal level above lvl[0..lvl_nr), in place. */
static int build_level(struct bt_builder *b)
{
	size_t n = b->lvl_nr, k = (n + INTERNAL_MAX - 1) / INTERNAL_MAX, base = n / k,
	       extra = n % k, in = 0, out = 0;
	uint8_t *node = b->work.node;
	int r;

	for (size_t g = 0; g < k; g++) {
		uint32_t cnt = (uint32_t)(base + (g < extra ? 1 : 0));
		uint64_t first = b->lvl[in].key, loc;

		node_init(node, BT_INTERNAL_NODE, INTERNAL_MAX, 8);
		((struct disk_node_header *)node)->nr_entries = cpu_to_le32(cnt);
		for (uint32_t i = 0; i < cnt; i++, in++) {
			put_le64(key_ptr(node, i), b->lvl[in].key);
			put_le64(val_ptr(node, INTERNAL_MAX, 8, i), b->lvl[in].block);
		}
		r = tm_alloc(b->tm, &loc);
		if (r < 0)
			return r;
		r = tm_write(b->tm, loc, &bt_node_validator, node);
		if (r < 0)
			return r;
		b->lvl[out].key = first;
		b->lvl[out].block = loc;
		out++;
	}
	b->lvl_nr = out;
	return 0;
}

int bt_builder_finish(struct bt_builder *b, uint64_t *root)
{
	int r = finish_leaf_level(b);

	if (r < 0)
		return r;
	if (!b->lvl_nr) {
		leaf_reset(b, &b->cur);
		r = commit(b, &b->cur);
		if (r < 0)
			return r;
	}
	while (b->lvl_nr > 1) {
		r = build_level(b);
		if (r < 0)
			return r;
	}
	*root = b->lvl[0].block;
	reset(b);
	return 0;
}

int bt_builder_finish_leaves(struct bt_builder *b, uint64_t **blocks, size_t *nr)
{
	int r = finish_leaf_level(b);
	uint64_t *out;

	if (r < 0)
		return r;
	out = malloc((b->lvl_nr ? b->lvl_nr : 1) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < b->lvl_nr; i++)
		out[i] = b->lvl[i].block;
	*blocks = out;
	*nr = b->lvl_nr;
	reset(b);
	return 0;
}
