#include "thin/usage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "thin/leaf_runs.h"
#include "util/hash.h"
#include "util/u64map.h"
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

/* Blocks [b, b + n) mapped by the device being walked. */
static inline void map_blocks(struct uctx *c, uint64_t b, uint64_t n)
{
	map_run(c, b, n, (uint32_t)c->cur);
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
 * first message only).  Returns the number of blocks beyond.
 */
static uint32_t map_leaf_runs(struct uctx *c, const struct bt_node *n, uint32_t nr, int report,
			      uint64_t dev_id)
{
	const uint8_t *vals = bt_value(n, 0);
	uint64_t start = 0, len = 0;
	uint32_t beyond = 0;

	if (nr == n->nr_entries) {
		/* the common leaf, every block on the data device: its runs at once */
		const struct thin_leaf_prep *pp = n->prep;
		struct thin_leaf_prep own;

		if (!pp) {
			thin_leaf_prep(n, c->nr_data_blocks, UINT32_MAX, &own);
			pp = &own;
		}
		if (pp->sound) {
			for (uint32_t k = 0; k < pp->lr.nr_runs; k++)
				map_blocks(c, thin_prep_block(pp, vals, k),
					   (uint64_t)pp->lr.first[k + 1] - pp->lr.first[k]);
			return 0;
		}
	}
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t b = thin_bt_block(get_le64(vals + 8 * (size_t)i));

		if (b >= c->nr_data_blocks) {
			beyond++;
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
	return beyond;
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

/*----------------------------------------------------------------*/
/*
 * The fast walk (plain usage of sound metadata).  The memoising walker
 * (btree/walk.h) reads every distinct node once, children in block order
 * in large reads (read ahead on a block device), and hands each distinct
 * leaf to its leaf thread, which applies the leaf's runs to the owners.
 * A node reached again (a subtree shared by snapshots) is not read again:
 * each leaf below it reached for the second time is listed with the
 * device reaching it, and those leaves are read in block order after the
 * walk and counted once more (a third visit changes no owner).  Mapped
 * and highest come from the roots' summaries, which count a leaf once per
 * path to it.  Owners after every mapping do not depend on the order of
 * the mappings, so the counts are the path walk's.  Any damage at all, a
 * device without a tree or a mapping beyond the data device gives up
 * (FAST_GIVE_UP), and the path walk below reports it in its own words.
 */
#define FAST_GIVE_UP 1
#define FAST_BEYOND (-ERANGE)   /* the leaf callback's: a mapping beyond the data device */

struct again_leaf {
	uint64_t block;
	uint32_t dev;
};

struct fast {
	struct uctx *c;
	struct bt_walker *w;
	uint64_t *twice;            /* bit per metadata block: reached a second time */
	uint64_t nr_md;
	struct u64map inner;        /* internal node -> first << 16 | nr, into kids */
	uint64_t *kids;
	size_t nr_kids, cap_kids;
	struct again_leaf *ag;      /* leaves reached a second time, with the device */
	size_t nr_ag, cap_ag;
	int give_up, nomem;
};

_Static_assert(sizeof(struct thin_leaf_prep) <= BT_LEAF_PREP_SIZE, "a leaf's runs fit the walker's room");

/* Walking thread (leaf_prep): the leaf's runs, for fast_leaf. */
static void fast_prep(void *ctx, const struct bt_node *n, void *out)
{
	const struct fast *f = ctx;

	thin_leaf_prep(n, f->c->nr_data_blocks, UINT32_MAX, out);
}

/* Leaf thread: the leaf's runs of consecutive data blocks, for the device walked. */
static int fast_leaf(void *ctx, const struct bt_node *n)
{
	struct fast *f = ctx;

	return map_leaf_runs(f->c, n, n->nr_entries, 0, 0) ? FAST_BEYOND : 0;
}

static void fast_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			uint64_t lo, uint64_t hi, const char *what)
{
	struct fast *f = ctx;

	(void)level, (void)code, (void)block, (void)lo, (void)hi, (void)what;
	f->give_up = 1;
}

static void fast_inner(void *ctx, uint64_t block, const uint64_t *kids, uint32_t nr)
{
	struct fast *f = ctx;

	while (f->nr_kids + nr > f->cap_kids) {
		uint64_t *k = vec_grow(f->kids, &f->cap_kids, sizeof(*k), 4096);

		if (!k) {
			f->nomem = 1;
			return;
		}
		f->kids = k;
	}
	memcpy(f->kids + f->nr_kids, kids, nr * sizeof(*kids));
	if (u64map_put(&f->inner, block, (uint64_t)f->nr_kids << 16 | nr) < 0)
		f->nomem = 1;
	f->nr_kids += nr;
}

/* Block b (a leaf or an internal node) reached by device c->cur once more. */
static void fast_again_block(struct fast *f, uint64_t b)
{
	uint64_t v;

	if (b >= f->nr_md || bm_test_set(f->twice, b))
		return;   /* every leaf below was listed already */
	if (!u64map_get(&f->inner, b, &v)) {
		if (f->nr_ag == f->cap_ag) {
			struct again_leaf *n = vec_grow(f->ag, &f->cap_ag, sizeof(*n), 256);

			if (!n) {
				f->nomem = 1;
				return;
			}
			f->ag = n;
		}
		f->ag[f->nr_ag++] = (struct again_leaf){ b, (uint32_t)f->c->cur };
		return;
	}
	for (uint64_t i = v >> 16, end = (v >> 16) + (v & 0xffff); i < end; i++)
		fast_again_block(f, f->kids[i]);
}

static void fast_again(void *ctx, const struct bt_summary *s)
{
	struct fast *f = ctx;

	if (s->flags & (BT_SUM_BAD | BT_SUM_DAMAGED))
		f->give_up = 1;
	else
		fast_again_block(f, s->block);
}

static int cmp_again(const void *a, const void *b)
{
	const struct again_leaf *x = a, *y = b;

	return x->block < y->block ? -1 : x->block > y->block;
}

/* The leaves reached a second time, read in block order, counted once more. */
static int fast_second_visits(struct fast *f, struct ioe *ioe)
{
	enum { RUN = 256 };
	uint8_t *buf;
	int r = 0;

	if (!f->nr_ag)
		return 0;
	if (!(buf = ioe_alloc_blocks(RUN)))
		return -ENOMEM;
	vec_sort(f->ag, f->nr_ag, sizeof(*f->ag), cmp_again);
	for (size_t i = 0; i < f->nr_ag && !r;) {
		size_t k = 1;

		while (i + k < f->nr_ag && k < RUN && f->ag[i + k].block == f->ag[i].block + k)
			k++;
		if (ioe_read(ioe, f->ag[i].block, (unsigned)k, buf) < 0)
			r = FAST_GIVE_UP;
		for (size_t j = 0; j < k && !r; j++) {
			const uint8_t *data = buf + j * MD_BLOCK_SIZE;
			struct bt_node n;

			bt_node_view(data, &n);
			f->c->cur = f->ag[i + j].dev;
			/* changed since the walk read it: the path walk reports it */
			if (bt_node_validator.check(data, f->ag[i + j].block, MD_BLOCK_SIZE) < 0 ||
			    !bt_is_leaf(&n) || bt_node_check(&n, THIN_MAPPING_VSIZE) != BT_NODE_OK ||
			    fast_leaf(f, &n) < 0)
				r = FAST_GIVE_UP;
		}
		i += k;
	}
	free(buf);
	return r;
}

/* 0: counted; FAST_GIVE_UP: the path walk must do it; < 0: an error. */
static int usage_fast(struct uctx *c)
{
	const struct thin_dev_list *devs = c->devs;
	struct ioe *ioe = bc_engine(c->bc);
	struct fast f = { .c = c };
	struct bt_walk_tree t = { .kind = 1, .leaf_vsize = THIN_MAPPING_VSIZE,
				  .flags = BT_TREE_LEAF_THREAD, .leaf = fast_leaf, .leaf_prep = fast_prep,
				  .damage = fast_damage, .again = fast_again,
				  .inner = fast_inner, .ctx = &f };
	const uint32_t *salts;
	size_t nr_salts;
	int r = 0;

	for (size_t k = 0; k < devs->nr; k++)
		if (!devs->devs[k].has_root)
			return FAST_GIVE_UP;
	f.nr_md = bc_nr_blocks(c->bc);
	f.twice = calloc(f.nr_md / 64 + 1, sizeof(uint64_t));
	u64map_init(&f.inner);
	if (!f.twice || bt_walker_create(ioe, &f.w) < 0) {
		r = -ENOMEM;
		goto out;
	}
	salts = thin_block_salts(&nr_salts);
	bt_walker_set_type_salts(f.w, salts, nr_salts);
	bt_walker_set_bound(f.w, f.nr_md);
	bt_walker_set_readahead(f.w, ioe->is_bdev);
	for (size_t k = 0; k < devs->nr && !f.give_up && !f.nomem; k++) {
		struct bt_summary s;

		c->cur = k;
		if (k + 1 < devs->nr)   /* the next tree's top, read while this one is walked */
			bt_walker_hint(f.w, devs->devs[k + 1].root, THIN_MAPPING_VSIZE);
		r = bt_walker_walk(f.w, &t, devs->devs[k].root, &s);
		if (r == FAST_BEYOND) {
			f.give_up = 1;
			r = 0;
		}
		if (r < 0)
			goto out;
		if (s.flags & (BT_SUM_BAD | BT_SUM_DAMAGED))
			f.give_up = 1;
		c->out[k].mapped = s.count;
		if (s.count && !(s.flags & BT_SUM_EMPTY))
			c->out[k].highest = s.max;
	}
	if (!f.give_up && !f.nomem)
		r = fast_second_visits(&f, ioe);
	if (r == 0 && f.nomem)
		r = -ENOMEM;
	if (r == 0 && (f.give_up || c->own.nomem))
		r = FAST_GIVE_UP;
out:
	bt_walker_destroy(f.w);
	u64map_release(&f.inner);
	free(f.twice);
	free(f.kids);
	free(f.ag);
	return r;
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
	r = c.split ? FAST_GIVE_UP : usage_fast(&c);
	if (r == FAST_GIVE_UP) {
		/* start again on the path walk, which reports the damage */
		memset(out, 0, devs->nr * sizeof(*out));
		owners_release(&c.own);
		if (owners_init(&c.own, nr_data_blocks, devs->nr) < 0) {
			snprintf(msg, msglen, "out of memory");
			return -ENOMEM;
		}
		r = walk_devices(&c);
	}
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

