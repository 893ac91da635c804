#include "btree/btree_builder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

#define INTERNAL_MAX 252u
#define MAX_CANDS 4u        /* remembered leaves tried at one position */
#define MAX_RUNS 64u
#define SEG 32u             /* entries per segment fingerprint */
#define NR_SEGS 7u          /* fingerprinted segments (the whole leaf has its hash) */

/*----------------------------------------------------------------*/
/* dedup table */

/* A written leaf, found by its first entry. */
struct dd_start {
	uint64_t key, val, last_key;   /* first key, first value (8 bytes), last key */
	struct hash128 h;              /* of its entries */
	uint64_t block;
	uint32_t n;
	uint32_t seg[NR_SEGS];         /* of its full segments of SEG entries: early mismatch */
};

struct dd_kv {
	uint64_t key, val;
};

/* A run of remembered leaves sorted by first key (newest first among equal keys). */
struct dd_run {
	struct dd_kv *kv;  /* e[i].key, e[i].val: what the cursor walks */
	struct dd_start *e;
	size_t n, pos;     /* pos: the cursor of the tree being built */
};

/* A written node, found by its content. */
struct dd_node {
	uint64_t lo, hi, block;
};

/*
 * The leaves of finished trees are kept in a few sorted runs (merged like
 * a binary counter, so each leaf is moved O(log n) times): a tree being
 * built walks them with cursors in step with its own increasing keys, so
 * the per-entry cost is one comparison with the next remembered key.
 */
struct bt_dedup {
	struct dd_run runs[MAX_RUNS];
	unsigned nr_runs;
	struct dd_start *fresh;    /* the current tree's new leaves, in key order */
	size_t nr_fresh, cap_fresh;
	size_t nr_starts, limit;
	uint64_t next_key;         /* no remembered leaf starts in [cursor, next_key) */
	struct dd_node *nodes;
	uint64_t node_mask;
	uint64_t hits;
};

struct bt_dedup *bt_dedup_create(unsigned order)
{
	struct bt_dedup *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->nodes = calloc((size_t)1 << order, sizeof(*d->nodes));
	if (!d->nodes) {
		bt_dedup_destroy(d);
		return NULL;
	}
	d->node_mask = ((uint64_t)1 << order) - 1;
	d->limit = (size_t)1 << (order + 4);
	d->next_key = UINT64_MAX;
	return d;
}

void bt_dedup_destroy(struct bt_dedup *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < d->nr_runs; i++) {
		free(d->runs[i].kv);
		free(d->runs[i].e);
	}
	free(d->fresh);
	free(d->nodes);
	free(d);
}

uint64_t bt_dedup_hits(const struct bt_dedup *d)
{
	return d ? d->hits : 0;
}

static void fresh_add(struct bt_dedup *d, const struct dd_start *s)
{
	if (d->nr_starts + d->nr_fresh >= d->limit ||
	    (d->nr_fresh && s->key <= d->fresh[d->nr_fresh - 1].key))
		return;   /* full (a miss only costs sharing) */
	if (d->nr_fresh == d->cap_fresh) {
		size_t cap = d->cap_fresh ? 2 * d->cap_fresh : 256;
		struct dd_start *n = realloc(d->fresh, cap * sizeof(*n));
		if (!n)
			return;
		d->fresh = n;
		d->cap_fresh = cap;
	}
	d->fresh[d->nr_fresh++] = *s;
}

/* Merges run i + 1 (newer) into run i. */
static int merge_runs(struct bt_dedup *d, unsigned i)
{
	struct dd_run *a = &d->runs[i], *b = &d->runs[i + 1];
	struct dd_start *m = malloc((a->n + b->n) * sizeof(*m));
	struct dd_kv *kv = malloc((a->n + b->n) * sizeof(*kv));
	size_t x = 0, y = 0, k = 0;

	if (!m || !kv) {
		free(m);
		free(kv);
		return -ENOMEM;
	}
	while (x < a->n || y < b->n) {
		m[k] = y < b->n && (x == a->n || b->e[y].key <= a->e[x].key) ? b->e[y++] : a->e[x++];
		kv[k].key = m[k].key;
		kv[k].val = m[k].val;
		k++;
	}
	free(a->e);
	free(a->kv);
	free(b->e);
	free(b->kv);
	a->e = m;
	a->kv = kv;
	a->n = k;
	d->nr_runs--;
	return 0;
}

/* A tree is finished: its new leaves become a run; the cursors go back to the start. */
static void dd_end_tree(struct bt_dedup *d)
{
	struct dd_kv *kv = d->nr_fresh ? malloc(d->nr_fresh * sizeof(*kv)) : NULL;

	if (kv && d->nr_runs < MAX_RUNS) {
		struct dd_run *r = &d->runs[d->nr_runs++];
		for (size_t i = 0; i < d->nr_fresh; i++) {
			kv[i].key = d->fresh[i].key;
			kv[i].val = d->fresh[i].val;
		}
		r->kv = kv;
		r->e = d->fresh;
		r->n = d->nr_fresh;
		d->nr_starts += d->nr_fresh;
		d->fresh = NULL;
		d->cap_fresh = 0;
		while (d->nr_runs >= 2 &&
		       d->runs[d->nr_runs - 2].n <= 2 * d->runs[d->nr_runs - 1].n)
			if (merge_runs(d, d->nr_runs - 2) < 0)
				break;
	} else {
		free(kv);   /* out of memory or runs: these leaves are not remembered */
	}
	d->nr_fresh = 0;
	d->next_key = UINT64_MAX;
	for (unsigned i = 0; i < d->nr_runs; i++) {
		d->runs[i].pos = 0;
		if (d->runs[i].kv[0].key < d->next_key)
			d->next_key = d->runs[i].kv[0].key;
	}
}

/* First index >= pos whose key is >= key (galloping from pos). */
static size_t gallop(const struct dd_kv *kv, size_t n, size_t pos, uint64_t key)
{
	size_t lo = pos, hi, step = 1;

	if (pos >= n || kv[pos].key >= key)
		return pos;
	while (lo + step < n && kv[lo + step].key < key) {
		lo += step;
		step *= 2;
	}
	hi = lo + step < n ? lo + step : n;
	lo++;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (kv[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Node-table key: the content hash, told apart by node kind and value size. */
static struct hash128 node_key(struct hash128 h, uint32_t flags, uint32_t vsize)
{
	h.lo ^= hash_mix64(((uint64_t)flags << 32) | vsize);
	return h;
}

static struct dd_node *node_slot(struct bt_dedup *d, struct hash128 k)
{
	return &d->nodes[k.lo & d->node_mask];
}

/*
 * Content hash of n entries given as a key array (le64) and a value array
 * (vsize bytes each): the leaf layout and the look-ahead's, no copying.
 */
static struct hash128 entries_hash(const uint8_t *keys, const uint8_t *vals, uint32_t n,
				   uint32_t vsize)
{
	struct hash128 h;

	/* lo (which picks a table slot) depends on keys and values */
	h.hi = hash64(keys, 8 * (size_t)n, n);
	h.lo = hash64(vals, (size_t)vsize * n, h.hi);
	return h;
}

/*
 * Fingerprint of segment j (entries [j * SEG, (j + 1) * SEG)): equal
 * segments have equal fingerprints, and a match is always confirmed by
 * the whole leaf's hash, so it only has to be cheap and rarely collide.
 * For 8-byte values: a sum of independent products (no dependency chain).
 */
static inline uint32_t seg_hash(const uint8_t *keys, const uint8_t *vals, uint32_t vsize,
				uint32_t j)
{
	if (vsize == 8) {
		const uint8_t *k = keys + (size_t)j * SEG * 8, *v = vals + (size_t)j * SEG * 8;
		uint64_t a = 0, b = 0;

		for (uint32_t i = 0; i < SEG; i += 2) {
			uint64_t v0 = get_le64(v + 8 * i), v1 = get_le64(v + 8 * i + 8);
			a += (get_le64(k + 8 * i) ^ ((v0 << 31) | (v0 >> 33))) * 0x9E3779B97F4A7C15ull;
			b += (get_le64(k + 8 * i + 8) ^ ((v1 << 29) | (v1 >> 35))) * 0xC2B2AE3D27D4EB4Full;
		}
		return (uint32_t)hash_mix64(a ^ ((b << 23) | (b >> 41)) ^ j);
	}
	return (uint32_t)hash64(vals + (size_t)j * SEG * vsize, (size_t)SEG * vsize,
				hash64(keys + (size_t)j * SEG * 8, 8 * (size_t)SEG, j));
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

struct cand {
	uint64_t block, last_key;
	struct hash128 h;
	uint32_t n, segs_ok;
	const uint32_t *seg;
};

struct bt_builder {
	struct tm_mgr *tm;
	struct bt_builder_opts o;
	uint32_t max, minfill, esz;
	/*
	 * cur: being filled; pend: the leaf before it, not yet committed
	 * (merged with an underfull cur); pp: a partial new leaf before a
	 * shared pend, kept back so that an underfull cur after the shared
	 * leaf can be repacked with both.
	 */
	struct leafbuf cur, pend, pp;
	int have_pend, have_pp;
	/*
	 * Look-ahead: entries [la_head, la_tail) of la_keys (le64) and
	 * la_vals that may turn out to be a remembered leaf (the candidates).
	 */
	uint8_t *la_keys, *la_vals;
	uint32_t la_head, la_tail, la_cap;
	struct cand cand[MAX_CANDS];
	unsigned nr_cand;
	struct lvl_entry *lvl;
	size_t lvl_nr, lvl_cap;
	uint64_t nr_entries;
	int have_last;
	uint64_t last_key;
	uint8_t *work;     /* 4 KiB node scratch */
	uint8_t *merge;    /* room for 3 * max entries */
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

static inline uint64_t val64(const void *v, uint32_t vsize)
{
	uint64_t x = 0;

	memcpy(&x, v, vsize < 8 ? vsize : 8);
	return x;
}

/* An empty leaf: only the header is reset (commit zeroes the unused slots). */
static void leaf_reset(struct bt_builder *b, struct leafbuf *l)
{
	struct disk_node_header *h = (struct disk_node_header *)l->node;

	memset(h, 0, sizeof(*h));
	h->flags = cpu_to_le32(BT_LEAF_NODE);
	h->max_entries = cpu_to_le32(b->max);
	h->value_size = cpu_to_le32(b->o.value_size);
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
	b->esz = 8 + o->value_size;
	b->la_cap = 2 * b->max + 2;
	b->cur.node = ioe_alloc_blocks(1);
	b->pend.node = ioe_alloc_blocks(1);
	b->pp.node = ioe_alloc_blocks(1);
	b->work = ioe_alloc_blocks(1);
	b->rbuf = ioe_alloc_blocks(1);
	b->merge = malloc(3 * (size_t)b->max * b->esz + 1);
	b->la_keys = malloc((size_t)b->la_cap * 8);
	b->la_vals = malloc((size_t)b->la_cap * o->value_size + 1);
	if (!b->max || !b->rbuf || !b->cur.node || !b->pend.node || !b->pp.node || !b->work ||
	    !b->merge || !b->la_keys || !b->la_vals) {
		bt_builder_destroy(b);
		return -ENOMEM;
	}
	node_init(b->cur.node, BT_LEAF_NODE, b->max, o->value_size);
	node_init(b->pend.node, BT_LEAF_NODE, b->max, o->value_size);
	node_init(b->pp.node, BT_LEAF_NODE, b->max, o->value_size);
	leaf_reset(b, &b->cur);
	leaf_reset(b, &b->pend);
	leaf_reset(b, &b->pp);
	*out = b;
	return 0;
}

void bt_builder_destroy(struct bt_builder *b)
{
	if (!b)
		return;
	free(b->cur.node);
	free(b->pend.node);
	free(b->pp.node);
	free(b->work);
	free(b->merge);
	free(b->rbuf);
	free(b->la_keys);
	free(b->la_vals);
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

/* The entries of a node-layout leaf, interleaved (key, value) into out. */
static void interleave(const struct bt_builder *b, uint8_t *node, uint32_t n, uint8_t *out)
{
	uint32_t vs = b->o.value_size;

	for (uint32_t i = 0; i < n; i++) {
		memcpy(out + (size_t)i * b->esz, key_ptr(node, i), 8);
		memcpy(out + (size_t)i * b->esz + 8, val_ptr(node, b->max, vs, i), vs);
	}
}

/* Adds a finished leaf to the level above: links, reuses or writes it. */
static int commit(struct bt_builder *b, struct leafbuf *l)
{
	struct disk_node_header *h = (struct disk_node_header *)l->node;
	uint64_t first = l->n ? get_le64(key_ptr(l->node, 0)) : 0;
	struct dd_node *slot = NULL;
	struct hash128 hv = { 0, 0 }, nk = { 0, 0 };
	uint64_t loc;
	int r;

	if (l->shared) {
		r = tm_inc(b->tm, l->block);
		return r < 0 ? r : lvl_push(b, first, l->block);
	}
	h->nr_entries = cpu_to_le32(l->n);
	if (b->o.dedup) {
		hv = entries_hash(key_ptr(l->node, 0), val_ptr(l->node, b->max, b->o.value_size, 0),
				  l->n, b->o.value_size);
		nk = node_key(hv, BT_LEAF_NODE, b->o.value_size);
		slot = node_slot(b->o.dedup, nk);
		if (slot->block && slot->lo == nk.lo && slot->hi == nk.hi) {
			b->o.dedup->hits++;
			r = tm_inc(b->tm, slot->block);
			return r < 0 ? r : lvl_push(b, first, slot->block);
		}
	}
	r = tm_alloc(b->tm, &loc);
	if (r < 0)
		return r;
	/* the slots past the entries (stale from an earlier leaf) and the tail are zero */
	if (l->n < b->max) {
		memset(key_ptr(l->node, l->n), 0, 8 * (size_t)(b->max - l->n));
		memset(val_ptr(l->node, b->max, b->o.value_size, l->n), 0,
		       (size_t)b->o.value_size * (b->max - l->n));
	}
	memset(val_ptr(l->node, b->max, b->o.value_size, b->max), 0,
	       MD_BLOCK_SIZE - (size_t)(val_ptr(l->node, b->max, b->o.value_size, b->max) - l->node));
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
		slot->lo = nk.lo;
		slot->hi = nk.hi;
		slot->block = loc;
		if (l->n) {
			struct dd_start s = {
				.key = first,
				.val = val64(val_ptr(l->node, b->max, b->o.value_size, 0),
						   b->o.value_size),
				.last_key = get_le64(key_ptr(l->node, l->n - 1)),
				.h = hv, .block = loc, .n = l->n,
			};
			for (uint32_t j = 0; j < NR_SEGS && (j + 1) * SEG <= l->n; j++)
				s.seg[j] = seg_hash(key_ptr(l->node, 0),
						    val_ptr(l->node, b->max, b->o.value_size, 0),
						    b->o.value_size, j);
			fresh_add(b->o.dedup, &s);
		}
	}
	return lvl_push(b, first, loc);
}

/* Commits the pending leaves (pp, then pend). */
static int commit_pend(struct bt_builder *b)
{
	int r;

	if (b->have_pp) {
		r = commit(b, &b->pp);
		b->have_pp = 0;
		leaf_reset(b, &b->pp);
		if (r < 0)
			return r;
	}
	if (!b->have_pend)
		return 0;
	b->have_pend = 0;
	return commit(b, &b->pend);
}

/* cur is complete: the pending leaves are committed and cur becomes pending. */
static int close_cur(struct bt_builder *b)
{
	struct leafbuf t;
	int r;

	r = commit_pend(b);
	if (r < 0)
		return r;
	t = b->pend;
	b->pend = b->cur;
	b->cur = t;
	b->have_pend = 1;
	leaf_reset(b, &b->cur);
	return 0;
}

static inline void put_entry(struct bt_builder *b, struct leafbuf *l, uint64_t key, const void *v)
{
	put_le64(key_ptr(l->node, l->n), key);
	memcpy(val_ptr(l->node, b->max, b->o.value_size, l->n), v, b->o.value_size);
	l->n++;
}

/*
 * A pending leaf below max / 3 only exists at the start of a tree (a
 * small remembered leaf linked as a possible root): something follows it
 * after all, so its entries move into cur, which is empty.
 */
static void absorb_small_pend(struct bt_builder *b)
{
	struct leafbuf t = b->cur;

	b->cur = b->pend;
	b->pend = t;
	b->cur.shared = 0;
	b->cur.block = 0;
	b->have_pend = 0;
	leaf_reset(b, &b->pend);
}

/* One new entry at the end of cur (closed when full). */
static inline int to_cur(struct bt_builder *b, uint64_t key, const void *v)
{
	if (!b->cur.n && b->have_pend && b->pend.n < b->minfill)
		absorb_small_pend(b);
	put_entry(b, &b->cur, key, v);
	return b->cur.n == b->max ? close_cur(b) : 0;
}

/*
 * (pp +) pend + an underfull cur: repacked into as few leaves as hold
 * them, evenly, so that none is below max / 3; the last one stays
 * pending.  A shared pend is copied, not linked.
 */
static int merge_pend_cur(struct bt_builder *b)
{
	uint32_t t = 0, nl, done = 0;
	uint8_t *m = b->merge;
	int r;

	if (b->have_pp) {
		interleave(b, b->pp.node, b->pp.n, m);
		t = b->pp.n;
	}
	interleave(b, b->pend.node, b->pend.n, m + (size_t)t * b->esz);
	t += b->pend.n;
	interleave(b, b->cur.node, b->cur.n, m + (size_t)t * b->esz);
	t += b->cur.n;
	b->have_pp = 0;
	b->have_pend = 0;
	leaf_reset(b, &b->pp);
	leaf_reset(b, &b->pend);
	leaf_reset(b, &b->cur);
	nl = (t + b->max - 1) / b->max;
	for (uint32_t i = 0; i < nl; i++) {
		uint32_t cnt = t / nl + (i < t % nl);
		for (uint32_t j = 0; j < cnt; j++, done++) {
			const uint8_t *e = m + (size_t)done * b->esz;
			put_entry(b, &b->cur, get_le64(e), e + 8);
		}
		r = close_cur(b);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Links an existing leaf (node layout in node, n entries, at block) after
 * the entries so far (upto: the tree's entries up to its end), or copies
 * its entries where linking would leave a node below max / 3, or where
 * the tree so far fits in one leaf (a split would cost a root).
 */
static int link_leaf(struct bt_builder *b, uint64_t block, uint8_t *node, uint32_t n,
		     uint64_t upto)
{
	int before;
	int r;

	if (!n)
		return 0;
	if (b->have_pend && b->pend.n < b->minfill && !b->cur.n)
		absorb_small_pend(b);
	before = b->cur.n || b->have_pend || b->lvl_nr;
	if ((before && (n < b->minfill || upto <= b->max)) ||
	    (b->cur.n && b->cur.n < b->minfill && !b->have_pend)) {
		for (uint32_t i = 0; i < n; i++) {
			r = to_cur(b, get_le64(key_ptr(node, i)),
				   val_ptr(node, b->max, b->o.value_size, i));
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
	if (b->have_pend && !b->pend.shared && b->pend.n < b->max && !b->have_pp) {
		struct leafbuf t = b->pp;   /* kept back: see pp */
		b->pp = b->pend;
		b->pend = t;
		b->have_pp = 1;
		b->have_pend = 0;
	} else {
		r = commit_pend(b);
		if (r < 0)
			return r;
	}
	if (node != b->pend.node)
		memcpy(b->pend.node, node, MD_BLOCK_SIZE);
	b->pend.n = n;
	b->pend.shared = 1;
	b->pend.block = block;
	b->have_pend = 1;
	return 0;
}

/*----------------------------------------------------------------*/
/* look-ahead */

static inline uint32_t la_n(const struct bt_builder *b)
{
	return b->la_tail - b->la_head;
}

static inline uint8_t *la_key(struct bt_builder *b, uint32_t i)
{
	return b->la_keys + (size_t)(b->la_head + i) * 8;
}

static inline uint8_t *la_val(struct bt_builder *b, uint32_t i)
{
	return b->la_vals + (size_t)(b->la_head + i) * b->o.value_size;
}

static void la_push(struct bt_builder *b, uint64_t key, const void *v)
{
	if (b->la_tail == b->la_cap) {
		uint32_t n = la_n(b);
		memmove(b->la_keys, la_key(b, 0), (size_t)n * 8);
		memmove(b->la_vals, la_val(b, 0), (size_t)n * b->o.value_size);
		b->la_head = 0;
		b->la_tail = n;
	}
	put_le64(b->la_keys + (size_t)b->la_tail * 8, key);
	memcpy(b->la_vals + (size_t)b->la_tail * b->o.value_size, v, b->o.value_size);
	b->la_tail++;
}

static void la_pop(struct bt_builder *b, uint32_t n)
{
	b->la_head += n;
	if (b->la_head == b->la_tail)
		b->la_head = b->la_tail = 0;
}

/*
 * The remembered leaves that start with (key, v): into b->cand.  Keys
 * looked up in one tree must not decrease (the cursors only go forward).
 */
static unsigned lookup(struct bt_builder *b, uint64_t key, const void *v)
{
	struct bt_dedup *d = b->o.dedup;
	uint64_t fv, next = UINT64_MAX;

	b->nr_cand = 0;
	if (key < d->next_key)
		return 0;
	fv = val64(v, b->o.value_size);
	for (unsigned i = d->nr_runs; i-- > 0;) {   /* newest first */
		struct dd_run *r = &d->runs[i];
		size_t j;

		if (r->pos < r->n && r->kv[r->pos].key > key) {
			if (r->kv[r->pos].key < next)
				next = r->kv[r->pos].key;
			continue;
		}
		j = r->pos = gallop(r->kv, r->n, r->pos, key);
		for (; j < r->n && r->kv[j].key == key; j++) {
			const struct dd_start *e = &r->e[j];
			if (r->kv[j].val != fv || e->n > b->max || b->nr_cand == MAX_CANDS)
				continue;
			b->cand[b->nr_cand].block = e->block;
			b->cand[b->nr_cand].last_key = e->last_key;
			b->cand[b->nr_cand].h = e->h;
			b->cand[b->nr_cand].n = e->n;
			b->cand[b->nr_cand].seg = e->seg;
			b->cand[b->nr_cand].segs_ok = 0;
			b->nr_cand++;
		}
		/* entries at key itself stay reachable: a later key moves past them */
		if (r->pos < r->n && r->kv[r->pos].key < next)
			next = r->kv[r->pos].key;
	}
	d->next_key = next == key ? key + 1 : next;
	return b->nr_cand;
}

/* The look-ahead starts with candidate c's entries: link its leaf. */
static int la_link(struct bt_builder *b, const struct cand *c)
{
	uint8_t *node = b->work;
	int r;

	node_init(node, BT_LEAF_NODE, b->max, b->o.value_size);
	((struct disk_node_header *)node)->nr_entries = cpu_to_le32(c->n);
	memcpy(key_ptr(node, 0), la_key(b, 0), 8 * (size_t)c->n);
	memcpy(val_ptr(node, b->max, b->o.value_size, 0), la_val(b, 0),
	       (size_t)b->o.value_size * c->n);
	b->o.dedup->hits++;
	r = link_leaf(b, c->block, node, c->n, b->nr_entries - (la_n(b) - c->n));
	la_pop(b, c->n);
	return r;
}

/*
 * Resolves the look-ahead as far as the entries in it allow: each
 * candidate is taken when the entries equal its leaf, or dropped as soon
 * as they cannot; an entry that starts no (more) candidate goes to cur.
 * final: no entry will follow (every open candidate fails).
 */
static int la_run(struct bt_builder *b, int final)
{
	int r;

	while (la_n(b)) {
		uint32_t n = la_n(b);
		uint64_t last = get_le64(la_key(b, n - 1));
		unsigned i, k = 0;

		if (!b->nr_cand) {
			uint64_t key = get_le64(la_key(b, 0));
			if (key < b->o.dedup->next_key && b->cur.n) {
				/* no remembered leaf starts below next_key: move those in bulk */
				uint32_t m = 1, room = b->max - b->cur.n;
				while (m < n && m < room && get_le64(la_key(b, m)) < b->o.dedup->next_key)
					m++;
				memcpy(key_ptr(b->cur.node, b->cur.n), la_key(b, 0), 8 * (size_t)m);
				memcpy(val_ptr(b->cur.node, b->max, b->o.value_size, b->cur.n), la_val(b, 0),
				       (size_t)b->o.value_size * m);
				b->cur.n += m;
				la_pop(b, m);
				if (b->cur.n == b->max) {
					r = close_cur(b);
					if (r < 0)
						return r;
				}
				continue;
			}
			if (!lookup(b, key, la_val(b, 0))) {
				r = to_cur(b, key, la_val(b, 0));
				if (r < 0)
					return r;
				la_pop(b, 1);
				continue;
			}
		}
		for (i = 0; i < b->nr_cand; i++) {
			struct cand *c = &b->cand[i];
			uint32_t upto = n < c->n ? n : c->n;

			while (c->segs_ok < NR_SEGS && (c->segs_ok + 1) * SEG <= upto &&
			       seg_hash(la_key(b, 0), la_val(b, 0), b->o.value_size, c->segs_ok) ==
				       c->seg[c->segs_ok])
				c->segs_ok++;
			if (c->segs_ok < NR_SEGS && (c->segs_ok + 1) * SEG <= upto)
				continue;   /* a segment differs */
			if (n >= c->n) {
				if (get_le64(la_key(b, c->n - 1)) == c->last_key) {
					struct hash128 h = entries_hash(la_key(b, 0), la_val(b, 0), c->n,
									b->o.value_size);
					if (h.lo == c->h.lo && h.hi == c->h.hi) {
						struct cand t = *c;
						b->nr_cand = 0;
						r = la_link(b, &t);
						if (r < 0)
							return r;
						goto next;
					}
				}
				continue;   /* not this leaf */
			}
			if (final || last >= c->last_key)
				continue;   /* ends too early */
			b->cand[k++] = *c;
		}
		b->nr_cand = k;
		if (k)
			return 0;   /* needs more entries */
		/* no remembered leaf starts here */
		r = to_cur(b, get_le64(la_key(b, 0)), la_val(b, 0));
		if (r < 0)
			return r;
		la_pop(b, 1);
next:;
	}
	return 0;
}

static int add_entry(struct bt_builder *b, uint64_t key, const void *value_le)
{
	if (b->have_last && key <= b->last_key)
		return -EINVAL;
	b->have_last = 1;
	b->last_key = key;
	b->nr_entries++;
	if (!b->o.dedup)
		return to_cur(b, key, value_le);
	if (!la_n(b) && (key < b->o.dedup->next_key || !lookup(b, key, value_le)))
		return to_cur(b, key, value_le);
	la_push(b, key, value_le);
	return la_run(b, 0);
}

int bt_builder_add(struct bt_builder *b, uint64_t key, const void *value_le)
{
	return add_entry(b, key, value_le);
}

/*
 * How many entries from key on (consecutive keys) can join the look-ahead
 * before one of its candidates has to be decided: a segment to compare,
 * the candidate's size reached, or its last key reached.  la_run() on any
 * of them would change nothing, so they need not go through it.
 */
static uint64_t la_quiet(const struct bt_builder *b, uint64_t key)
{
	uint64_t n = la_n(b), d = UINT64_MAX;

	for (unsigned i = 0; i < b->nr_cand; i++) {
		const struct cand *c = &b->cand[i];
		uint64_t dc = c->n;   /* la size at which c is decided */

		if (c->segs_ok < NR_SEGS && (uint64_t)(c->segs_ok + 1) * SEG < dc)
			dc = (uint64_t)(c->segs_ok + 1) * SEG;
		if (c->last_key < key)
			dc = n + 1;
		else if (c->last_key - key < dc - n - 1)
			dc = n + 1 + (c->last_key - key);
		if (dc < d)
			d = dc;
	}
	return d > n + 1 ? d - n - 1 : 0;
}

int bt_builder_add_run(struct bt_builder *b, uint64_t key, uint64_t value, uint64_t step,
		       uint64_t len)
{
	struct bt_dedup *d = b->o.dedup;
	int r;

	if (b->o.value_size != 8 || (len && key + len - 1 < key))
		return -EINVAL;
	while (len) {
		uint64_t room = b->max - b->cur.n, chunk = len < room ? len : room;
		uint8_t *kp, *vp;

		if (d && b->nr_cand && la_n(b) && !(b->have_last && key <= b->last_key)) {
			uint64_t q = la_quiet(b, key);

			if (q > len)
				q = len;
			if (q) {
				for (uint64_t i = 0; i < q; i++) {
					le64 v = cpu_to_le64(value + i * step);
					la_push(b, key + i, &v);
				}
				b->have_last = 1;
				b->last_key = key + q - 1;
				b->nr_entries += q;
				key += q;
				value += q * step;
				len -= q;
				continue;
			}
		}

		if (d && (la_n(b) || key >= d->next_key))
			chunk = 0;
		else if (d && d->next_key - key < chunk)
			chunk = d->next_key - key;   /* up to the next remembered leaf */
		if ((b->have_last && key <= b->last_key) || !b->cur.n || !chunk) {
			/* one at a time: order check, a remembered leaf here, cur empty */
			le64 v = cpu_to_le64(value);
			r = add_entry(b, key, &v);
			if (r < 0)
				return r;
			key++;
			value += step;
			len--;
			continue;
		}
		kp = key_ptr(b->cur.node, b->cur.n);
		vp = val_ptr(b->cur.node, b->max, 8, b->cur.n);
		for (uint64_t i = 0; i < chunk; i++) {
			put_le64(kp + 8 * i, key + i);
			put_le64(vp + 8 * i, value + i * step);
		}
		b->cur.n += (uint32_t)chunk;
		b->nr_entries += chunk;
		b->last_key = key + chunk - 1;
		key += chunk;
		value += chunk * step;
		len -= chunk;
		if (b->cur.n == b->max) {
			r = close_cur(b);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Links the leaf at block whose content is in b->rbuf. */
static int add_leaf_rbuf(struct bt_builder *b, uint64_t block)
{
	struct bt_node n;
	int r;

	bt_node_view(b->rbuf, &n);
	if (!bt_is_leaf(&n) || n.value_size != b->o.value_size || n.max_entries != b->max ||
	    n.nr_entries > n.max_entries)
		return -EINVAL;
	if (!n.nr_entries)
		return 0;
	if (b->have_last && bt_key(&n, 0) <= b->last_key)
		return -EINVAL;
	r = la_run(b, 1);
	if (r < 0)
		return r;
	b->nr_cand = 0;
	b->have_last = 1;
	b->last_key = bt_key(&n, n.nr_entries - 1);
	b->nr_entries += n.nr_entries;
	return link_leaf(b, block, b->rbuf, n.nr_entries, b->nr_entries);
}

int bt_builder_add_leaf(struct bt_builder *b, uint64_t block)
{
	int r = tm_read(b->tm, block, b->rbuf);

	if (r == -ENOSPC && tm_overflowed(b->tm)) {
		/*
		 * A dry run dropped the block: only the number of blocks
		 * matters now, so stand in a leaf of minimum fill.
		 */
		node_init(b->rbuf, BT_LEAF_NODE, b->max, b->o.value_size);
		((struct disk_node_header *)b->rbuf)->nr_entries = cpu_to_le32(b->minfill);
		for (uint32_t i = 0; i < b->minfill; i++)
			put_le64(key_ptr(b->rbuf, i), b->last_key + 1 + i);
	} else if (r < 0) {
		return r;
	}
	return add_leaf_rbuf(b, block);
}

int bt_builder_add_leaf_node(struct bt_builder *b, uint64_t block, const void *node)
{
	memcpy(b->rbuf, node, MD_BLOCK_SIZE);
	return add_leaf_rbuf(b, block);
}

static int finish_leaf_level(struct bt_builder *b)
{
	int r = b->o.dedup ? la_run(b, 1) : 0;

	if (r < 0)
		return r;
	b->nr_cand = 0;
	if (b->cur.n) {
		/*
		 * The last two leaves become one when they fit (a shared one
		 * too when that makes the tree one leaf), or the last is underfull.
		 */
		if (b->have_pend && (b->cur.n < b->minfill ||
				     ((!b->pend.shared || (!b->lvl_nr && !b->have_pp)) &&
				      b->pend.n + b->cur.n <= b->max)))
			r = merge_pend_cur(b);
		else
			r = close_cur(b);
		if (r < 0)
			return r;
	}
	r = commit_pend(b);
	leaf_reset(b, &b->pend);
	return r;
}

static void reset(struct bt_builder *b)
{
	leaf_reset(b, &b->cur);
	leaf_reset(b, &b->pend);
	leaf_reset(b, &b->pp);
	b->have_pend = 0;
	b->have_pp = 0;
	b->lvl_nr = 0;
	b->nr_entries = 0;
	b->have_last = 0;
	b->last_key = 0;
	b->la_head = b->la_tail = 0;
	b->nr_cand = 0;
	if (b->o.dedup)
		dd_end_tree(b->o.dedup);
}

/*
 * One internal node over lvl[in, in + cnt): reuses an identical node
 * written earlier (dropping the references its children got for this
 * parent), else writes it.
 */
static int internal_node(struct bt_builder *b, size_t in, uint32_t cnt, uint64_t *loc)
{
	uint8_t *node = b->work;
	struct dd_node *slot = NULL;
	struct hash128 nk;
	int r;

	node_init(node, BT_INTERNAL_NODE, INTERNAL_MAX, 8);
	((struct disk_node_header *)node)->nr_entries = cpu_to_le32(cnt);
	for (uint32_t i = 0; i < cnt; i++) {
		put_le64(key_ptr(node, i), b->lvl[in + i].key);
		put_le64(val_ptr(node, INTERNAL_MAX, 8, i), b->lvl[in + i].block);
	}
	if (b->o.dedup) {
		nk = node_key(hash128(node + BT_HEADER_SIZE, 16 * (size_t)INTERNAL_MAX),
			      BT_INTERNAL_NODE, cnt);
		slot = node_slot(b->o.dedup, nk);
		if (slot->block && slot->lo == nk.lo && slot->hi == nk.hi) {
			for (uint32_t i = 0; i < cnt; i++) {
				r = tm_dec(b->tm, b->lvl[in + i].block);
				if (r < 0)
					return r;
			}
			*loc = slot->block;
			return tm_inc(b->tm, slot->block);
		}
	}
	r = tm_alloc(b->tm, loc);
	if (r < 0)
		return r;
	r = tm_write(b->tm, *loc, &bt_node_validator, node);
	if (r < 0)
		return r;
	if (slot) {
		slot->lo = nk.lo;
		slot->hi = nk.hi;
		slot->block = *loc;
	}
	return 0;
}

/* Builds one internal level above lvl[0..lvl_nr), in place. */
static int build_level(struct bt_builder *b)
{
	size_t n = b->lvl_nr, k = (n + INTERNAL_MAX - 1) / INTERNAL_MAX, base = n / k,
	       extra = n % k, in = 0, out = 0;
	int r;

	for (size_t g = 0; g < k; g++) {
		uint32_t cnt = (uint32_t)(base + (g < extra ? 1 : 0));
		uint64_t first = b->lvl[in].key, loc;

		r = internal_node(b, in, cnt, &loc);
		if (r < 0)
			return r;
		in += cnt;
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
