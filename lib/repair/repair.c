#include "repair/repair.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "crc/crc32c.h"
#include "spacemap/spacemap.h"
#include "repair/repair-internal.h"

/*----------------------------------------------------------------*/
/* Notes */

struct notes {
	char **s;
	size_t nr, cap;
};

static void note_add(struct notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_add(struct notes *n, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (n->nr == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 16;
		char **ns = realloc(n->s, cap * sizeof(*ns));
		if (!ns)
			return;
		n->s = ns;
		n->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) >= 0)
		n->s[n->nr++] = s;
	va_end(ap);
}

static void notes_clear(struct notes *n, size_t keep)
{
	while (n->nr > keep)
		free(n->s[--n->nr]);
}

/*----------------------------------------------------------------*/
/* Growable arrays */

static int grow(void **p, size_t *cap, size_t nr, size_t size)
{
	void *np;
	size_t c;

	if (nr < *cap)
		return 0;
	c = *cap ? *cap * 2 : 16;
	np = realloc(*p, c * size);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = c;
	return 0;
}

struct range {
	uint64_t lo, hi;   /* [lo, hi) */
};

struct ranges {
	struct range *r;
	size_t nr, cap;
};

static int ranges_add(struct ranges *rs, uint64_t lo, uint64_t hi)
{
	if (rs->nr && rs->r[rs->nr - 1].hi >= lo && rs->r[rs->nr - 1].lo <= lo) {
		if (hi > rs->r[rs->nr - 1].hi)
			rs->r[rs->nr - 1].hi = hi;
		return 0;
	}
	if (grow((void **)&rs->r, &rs->cap, rs->nr, sizeof(*rs->r)))
		return -ENOMEM;
	rs->r[rs->nr].lo = lo;
	rs->r[rs->nr].hi = hi;
	rs->nr++;
	return 0;
}

/*----------------------------------------------------------------*/
/* Scan table: every checksum-valid B-tree node */

enum { S_UNKNOWN = 0, S_VALID = 1, S_INVALID = -1, S_BUSY = 2 };

struct summ {
	int8_t state;
	uint8_t depth;
	uint8_t any_free;    /* some node of the tree is free in the space map */
	uint64_t count;      /* mappings (mapping/top), devices (details) */
	uint64_t devs;       /* top/details: number of devices */
	uint64_t hash;       /* top/details: hash of the device id set */
	uint64_t hi;         /* highest key */
	uint64_t max_data;   /* mapping/top: highest data block; details: highest tid */
	uint32_t time;       /* newest mapping time (mapping/top); newest details time */
};

struct snode {
	uint64_t block, first, last, hash;
	uint64_t sum;        /* details leaf: sum of mapped_blocks */
	uint64_t max_data;   /* mapping leaf: highest data block; details leaf: highest tid */
	uint32_t nr, max_time;
	uint32_t ent;        /* first entry in the pool (internal and top-looking leaves) */
	uint8_t flags, vsize, looks_top, m_ref, t_ref, d_ref;
	uint8_t held;        /* a root named by a superblock copy (metadata snapshot) */
	struct summ m, t, d;
};

struct scan {
	struct snode *n;
	size_t nr, cap;
	uint64_t *pool;      /* key, value pairs */
	size_t pool_nr, pool_cap;
	uint32_t *idx;       /* block -> node index + 1 (0: none) */
	uint64_t nr_blocks;
	/* space-map blocks and superblock copies (metadata snapshots) */
	uint64_t *smi;       /* metadata space-map index blocks */
	size_t nr_smi, cap_smi;
	uint8_t *bitmap_ok;  /* bitset: checksum-valid bitmap blocks */
	struct sb_copy {
		uint64_t block, mroot, droot;
	} *sbc;
	size_t nr_sbc, cap_sbc;
};

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static struct snode *scan_node(struct scan *s, uint64_t b)
{
	if (b >= s->nr_blocks || !s->idx[b])
		return NULL;
	return &s->n[s->idx[b] - 1];
}

static int scan_add(struct scan *s, const uint8_t *data, uint64_t b)
{
	struct bt_node n;
	struct snode *sn;
	int keep_entries;

	bt_node_view(data, &n);
	if (grow((void **)&s->n, &s->cap, s->nr, sizeof(*s->n)))
		return -ENOMEM;
	sn = &s->n[s->nr];
	memset(sn, 0, sizeof(*sn));
	sn->block = b;
	sn->nr = n.nr_entries;
	sn->flags = (uint8_t)n.flags;
	sn->vsize = (uint8_t)n.value_size;
	sn->ent = UINT32_MAX;
	if (n.nr_entries) {
		sn->first = bt_key(&n, 0);
		sn->last = bt_key(&n, n.nr_entries - 1);
	}
	for (uint32_t i = 0; i < n.nr_entries; i++)
		sn->hash += mix64(bt_key(&n, i));
	keep_entries = !bt_is_leaf(&n);
	if (bt_is_leaf(&n) && n.value_size == THIN_MAPPING_VSIZE) {
		int top = n.nr_entries > 0 && sn->last <= THIN_MAX_DEV_ID;

		for (uint32_t i = 0; i < n.nr_entries; i++) {
			uint64_t v = get_le64(bt_value(&n, i));
			uint32_t t = thin_bt_time(v);

			if (v >= s->nr_blocks)
				top = 0;
			if (t > sn->max_time)
				sn->max_time = t;
			if (thin_bt_block(v) > sn->max_data)
				sn->max_data = thin_bt_block(v);
		}
		sn->looks_top = (uint8_t)top;
		keep_entries = top;
	} else if (bt_is_leaf(&n) && n.value_size == THIN_DETAILS_VSIZE) {
		for (uint32_t i = 0; i < n.nr_entries; i++) {
			struct thin_details d;

			thin_details_unpack(bt_value(&n, i), &d);
			sn->sum += d.mapped_blocks;
			if (d.transaction_id > sn->max_data)
				sn->max_data = d.transaction_id;
			if (d.creation_time > sn->max_time)
				sn->max_time = d.creation_time;
			if (d.snapshotted_time > sn->max_time)
				sn->max_time = d.snapshotted_time;
		}
	}
	if (keep_entries) {
		while (s->pool_nr + 2 * (size_t)n.nr_entries > s->pool_cap) {
			size_t c = s->pool_cap ? s->pool_cap * 2 : 4096;
			uint64_t *np = realloc(s->pool, c * sizeof(*np));
			if (!np)
				return -ENOMEM;
			s->pool = np;
			s->pool_cap = c;
		}
		sn->ent = (uint32_t)(s->pool_nr / 2);
		for (uint32_t i = 0; i < n.nr_entries; i++) {
			s->pool[s->pool_nr++] = bt_key(&n, i);
			s->pool[s->pool_nr++] = get_le64(bt_value(&n, i));
		}
	}
	s->nr++;
	s->idx[b] = (uint32_t)s->nr;
	return 0;
}

/* Space-map index and bitmap blocks, superblock copies. */
static int scan_other(struct scan *s, const uint8_t *d, uint64_t b)
{
	uint32_t salt = crc_block_salt(d, MD_BLOCK_SIZE);

	if (salt == BITMAP_CSUM_XOR) {
		s->bitmap_ok[b / 8] |= (uint8_t)(1u << (b % 8));
	} else if (salt == INDEX_CSUM_XOR) {
		if (grow((void **)&s->smi, &s->cap_smi, s->nr_smi, sizeof(*s->smi)))
			return -ENOMEM;
		s->smi[s->nr_smi++] = b;
	} else if (salt == SUPERBLOCK_CSUM_XOR) {
		struct thin_sb sb;

		thin_sb_unpack((const struct disk_superblock *)d, &sb);
		if (sb.magic != THIN_MAGIC)
			return 0;
		if (grow((void **)&s->sbc, &s->cap_sbc, s->nr_sbc, sizeof(*s->sbc)))
			return -ENOMEM;
		s->sbc[s->nr_sbc].block = b;
		s->sbc[s->nr_sbc].mroot = sb.data_mapping_root;
		s->sbc[s->nr_sbc].droot = sb.device_details_root;
		s->nr_sbc++;
	}
	return 0;
}

#define SCAN_CHUNK 256u   /* blocks per read (1 MiB) */

static int scan_run(struct ioe *e, uint64_t nr_blocks, struct scan *s)
{
	uint8_t *buf = ioe_alloc_blocks(SCAN_CHUNK);
	int r = 0;

	memset(s, 0, sizeof(*s));
	s->nr_blocks = nr_blocks;
	s->idx = calloc(nr_blocks ? nr_blocks : 1, sizeof(*s->idx));
	s->bitmap_ok = calloc(nr_blocks / 8 + 1, 1);
	if (!buf || !s->idx || !s->bitmap_ok) {
		free(buf);
		return -ENOMEM;
	}
	for (uint64_t b = 0; b < nr_blocks && !r; b += SCAN_CHUNK) {
		unsigned n = nr_blocks - b < SCAN_CHUNK ? (unsigned)(nr_blocks - b) : SCAN_CHUNK;

		if (ioe_read(e, b, n, buf) < 0) {
			/* a bad sector: go block by block */
			for (unsigned i = 0; i < n && !r; i++) {
				uint8_t *d = buf + (size_t)i * MD_BLOCK_SIZE;
				if (ioe_read(e, b + i, 1, d) < 0)
					continue;
				if (get_le64(d + 8) != b + i || !(b + i))
					continue;
				if (bt_node_check_raw(d, b + i, NULL) == 0)
					r = scan_add(s, d, b + i);
				else
					r = scan_other(s, d, b + i);
			}
			continue;
		}
		for (unsigned i = 0; i < n && !r; i++) {
			const uint8_t *d = buf + (size_t)i * MD_BLOCK_SIZE;
			uint32_t flags = get_le32(d + 4);

			/* cheap header tests before the checksum */
			if (get_le64(d + 8) != b + i || !(b + i))
				continue;
			if (flags == BT_LEAF_NODE || flags == BT_INTERNAL_NODE) {
				if (bt_node_check_raw(d, b + i, NULL) == 0)
					r = scan_add(s, d, b + i);
			} else {
				r = scan_other(s, d, b + i);
			}
		}
	}
	free(buf);
	return r;
}

static void scan_release(struct scan *s)
{
	free(s->n);
	free(s->pool);
	free(s->idx);
	free(s->smi);
	free(s->bitmap_ok);
	free(s->sbc);
	memset(s, 0, sizeof(*s));
}

/*----------------------------------------------------------------*/
/* Tree summaries over the scan table (memoised) */

enum tkind { K_MAP, K_TOP, K_DETAILS };

struct summ_ctx {
	struct scan *s;
	const struct rcmap *msm;   /* NULL: unknown */
};

static struct summ *summ_of(struct snode *n, enum tkind k)
{
	return k == K_MAP ? &n->m : k == K_TOP ? &n->t : &n->d;
}

static int is_free(const struct summ_ctx *c, uint64_t b)
{
	return c->msm && b < rcmap_nr_blocks(c->msm) && rcmap_get(c->msm, b) == 0;
}

static const struct summ *summarise(struct summ_ctx *c, struct snode *n, enum tkind k, int level);

static int summ_leaf(struct summ_ctx *c, struct snode *n, enum tkind k, struct summ *sm, int level)
{
	switch (k) {
	case K_MAP:
		if (n->vsize != THIN_MAPPING_VSIZE)
			return -1;
		sm->count = n->nr;
		sm->max_data = n->max_data;
		sm->time = n->max_time;
		return 0;
	case K_DETAILS:
		if (n->vsize != THIN_DETAILS_VSIZE)
			return -1;
		sm->count = n->sum;
		sm->devs = n->nr;
		sm->hash = n->hash;
		sm->max_data = n->max_data;
		sm->time = n->max_time;
		return 0;
	case K_TOP:
		if (n->vsize != THIN_MAPPING_VSIZE || !n->looks_top)
			return -1;
		sm->devs = n->nr;
		sm->hash = n->hash;
		for (uint32_t i = 0; i < n->nr; i++) {
			struct snode *ch = scan_node(c->s, c->s->pool[2 * ((size_t)n->ent + i) + 1]);
			const struct summ *cs;

			if (!ch)
				return -1;
			cs = summarise(c, ch, K_MAP, level + 1);
			if (cs->state != S_VALID)
				return -1;
			sm->count += cs->count;
			sm->any_free |= cs->any_free;
			if (cs->max_data > sm->max_data)
				sm->max_data = cs->max_data;
			if (cs->time > sm->time)
				sm->time = cs->time;
		}
		return 0;
	}
	return -1;
}

static int summ_internal(struct summ_ctx *c, struct snode *n, enum tkind k, struct summ *sm,
			 int level)
{
	int depth = -1;

	if (n->vsize != 8 || !n->nr || n->ent == UINT32_MAX)
		return -1;
	for (uint32_t i = 0; i < n->nr; i++) {
		uint64_t key = c->s->pool[2 * ((size_t)n->ent + i)];
		struct snode *ch = scan_node(c->s, c->s->pool[2 * ((size_t)n->ent + i) + 1]);
		const struct summ *cs;

		if (!ch || ch == n || !ch->nr)
			return -1;
		cs = summarise(c, ch, k, level + 1);
		if (cs->state != S_VALID)
			return -1;
		if (depth >= 0 && cs->depth != depth)
			return -1;
		depth = cs->depth;
		if (ch->first < key)
			return -1;
		if (i + 1 < n->nr && cs->hi >= c->s->pool[2 * ((size_t)n->ent + i + 1)])
			return -1;
		sm->count += cs->count;
		sm->devs += cs->devs;
		sm->hash += cs->hash;
		sm->any_free |= cs->any_free;
		if (cs->max_data > sm->max_data)
			sm->max_data = cs->max_data;
		if (cs->time > sm->time)
			sm->time = cs->time;
		sm->hi = cs->hi;
	}
	sm->depth = (uint8_t)(depth + 1);
	/* children belong to this tree: they are not roots */
	for (uint32_t i = 0; i < n->nr; i++) {
		struct snode *ch = scan_node(c->s, c->s->pool[2 * ((size_t)n->ent + i) + 1]);
		if (k == K_MAP)
			ch->m_ref = 1;
		else if (k == K_TOP)
			ch->t_ref = 1;
		else if (k == K_DETAILS)
			ch->d_ref = 1;
	}
	return 0;
}

static const struct summ *summarise(struct summ_ctx *c, struct snode *n, enum tkind k, int level)
{
	struct summ *sm = summ_of(n, k);
	int r;

	if (sm->state == S_VALID || sm->state == S_INVALID)
		return sm;
	if (sm->state == S_BUSY || level > BT_MAX_DEPTH) {
		/* a cycle */
		static const struct summ invalid = { .state = S_INVALID };
		return &invalid;
	}
	sm->state = S_BUSY;
	sm->hi = n->last;
	sm->any_free = (uint8_t)is_free(c, n->block);
	r = n->flags == BT_LEAF_NODE ? summ_leaf(c, n, k, sm, level)
				     : summ_internal(c, n, k, sm, level);
	sm->state = r ? S_INVALID : S_VALID;
	return sm;
}

/*----------------------------------------------------------------*/
/* The plan */

struct rdev {
	uint64_t id, root;
	int has_details;
	struct thin_details d;
	struct ranges lost;     /* internal damage found by the structure walk */
	uint64_t *salv;         /* salvaged leaf blocks, by first key */
	size_t nr_salv, cap_salv;
	/*
	 * Top-level tree rebuilt, the tree is one of several candidates:
	 * root is the first, alt the others, excl the sorted virtual blocks
	 * where they differ (not emitted, reported lost).
	 */
	uint64_t *alt, *excl;
	size_t nr_alt, nr_excl;
};

struct thin_repair {
	struct thin_md *md;
	struct thin_repair_opts o;
	struct ir_superblock sb;
	uint64_t mapping_root, details_root;
	struct rdev *devs;
	size_t nr_devs, cap_devs;
	struct notes notes;
	size_t plan_notes;      /* notes from the plan (kept across emits) */
	struct rcmap *msm;    /* the input's metadata space map, or NULL */
	struct rcmap *expected;
	uint8_t *visited;       /* internal nodes walked (bitset) */
	uint8_t *dmg_below;     /* internal nodes with damage beneath (bitset) */
	struct scan scan;
	int scanned, used_sb_roots, synthesised;
	uint64_t salvaged, max_data_seen;
	uint32_t max_time_seen;
	uint64_t nr_mappings, nr_lost;
};

/* Reads a whole (details or top-level) tree into dev entries. */
struct table_walk {
	struct thin_repair *rp;
	int details;
	int damaged;
	struct ranges lost;
	struct rdev *devs;      /* details: collected separately */
	size_t nr, cap;
	uint64_t nr_free;       /* leaves free in the space map */
};

static int table_leaf(void *ctx, const struct bt_node *n)
{
	struct table_walk *t = ctx;

	if (t->rp->msm && rcmap_get(t->rp->msm, n->blocknr) == 0)
		t->nr_free++;
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		struct rdev *d;

		if (grow((void **)&t->devs, &t->cap, t->nr, sizeof(*t->devs)))
			return -ENOMEM;
		d = &t->devs[t->nr++];
		memset(d, 0, sizeof(*d));
		d->id = bt_key(n, i);
		if (t->details) {
			d->has_details = 1;
			thin_details_unpack(bt_value(n, i), &d->d);
		} else {
			d->root = get_le64(bt_value(n, i));
		}
	}
	return 0;
}

static void table_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			 uint64_t lo, uint64_t hi, const char *m)
{
	struct table_walk *t = ctx;

	(void)code, (void)block, (void)m;
	if (level < DMG_FATAL)
		return;
	t->damaged = 1;
	ranges_add(&t->lost, lo, hi);
}

static int read_table(struct thin_repair *rp, uint64_t root, int details, struct table_walk *t)
{
	const struct bt_walk_ops ops = { .leaf = table_leaf, .damage = table_damage };
	int r;

	memset(t, 0, sizeof(*t));
	t->rp = rp;
	t->details = details;
	if (root >= bc_nr_blocks(rp->md->bc)) {
		t->damaged = 1;
		return ranges_add(&t->lost, 0, UINT64_MAX);
	}
	r = bt_walk(rp->md->bc, root, details ? THIN_DETAILS_VSIZE : THIN_MAPPING_VSIZE, &ops, t);
	return r < 0 ? r : 0;
}

static void table_release(struct table_walk *t)
{
	free(t->devs);
	free(t->lost.r);
}

/*
 * Structure walk of one device's tree: internal nodes only (leaves are
 * recognised by depth and not read).  Counts the references it sees into
 * rp->expected, records lost key ranges, counts referenced blocks that
 * the space map says are free.
 */
struct swalk {
	struct thin_repair *rp;
	struct ranges *lost;    /* NULL: just count */
	int leaf_depth;
	uint64_t nr_free;
};

/*
 * Returns 1 when damage was found beneath b.  A shared internal node is
 * walked (and its children counted) once; when damage lies beneath it,
 * every later device referencing it walks it again, without counting, so
 * that each records the lost range.
 */
static int swalk_node(struct swalk *w, uint64_t b, uint64_t lo, uint64_t hi, int depth,
		      int counting)
{
	struct bc *bc = w->rp->md->bc;
	struct bc_block *blk;
	struct bt_node n;
	uint64_t *kids;
	uint32_t nr;
	int dmg = 0;

	if (counting && w->rp->expected && b < rcmap_nr_blocks(w->rp->expected))
		rcmap_inc(w->rp->expected, b);
	if (counting && w->rp->msm && b < rcmap_nr_blocks(w->rp->msm) &&
	    rcmap_get(w->rp->msm, b) == 0)
		w->nr_free++;
	if (w->leaf_depth >= 0 && depth == w->leaf_depth)
		return 0;
	if (b < bc_nr_blocks(bc) && (w->rp->visited[b / 8] & (1u << (b % 8)))) {
		if (!(w->rp->dmg_below[b / 8] & (1u << (b % 8))) || !w->lost)
			return 0;
		counting = 0;   /* counted by the first walk: only the lost ranges */
	}
	if (depth > BT_MAX_DEPTH || b >= bc_nr_blocks(bc) ||
	    bc_get(bc, b, &bt_node_validator, &blk) < 0)
		goto lost;
	bt_node_view(bc_data(blk), &n);
	if (bt_node_check(&n, THIN_MAPPING_VSIZE) != BT_NODE_OK ||
	    (n.nr_entries && (bt_key(&n, 0) < lo || bt_key(&n, n.nr_entries - 1) >= hi))) {
		bc_put(bc, blk);
		goto lost;
	}
	if (bt_is_leaf(&n)) {
		bc_put(bc, blk);
		bc_forget(bc, b);
		if (w->leaf_depth < 0)
			w->leaf_depth = depth;
		else if (w->leaf_depth != depth)
			goto lost;
		return 0;
	}
	if (w->leaf_depth >= 0 && depth >= w->leaf_depth) {
		bc_put(bc, blk);
		goto lost;
	}
	w->rp->visited[b / 8] |= (uint8_t)(1u << (b % 8));
	nr = n.nr_entries;
	kids = malloc(2 * (size_t)nr * sizeof(*kids) + 1);
	if (!kids) {
		bc_put(bc, blk);
		goto lost;
	}
	for (uint32_t i = 0; i < nr; i++) {
		kids[2 * i] = bt_key(&n, i);
		kids[2 * i + 1] = get_le64(bt_value(&n, i));
	}
	bc_put(bc, blk);
	for (uint32_t i = 0; i < nr; i++)
		dmg |= swalk_node(w, kids[2 * i + 1], kids[2 * i],
				  i + 1 < nr ? kids[2 * i + 2] : hi, depth + 1, counting);
	free(kids);
	if (dmg)
		w->rp->dmg_below[b / 8] |= (uint8_t)(1u << (b % 8));
	return dmg;
lost:
	if (w->lost)
		ranges_add(w->lost, lo, hi);
	return 1;
}

static uint64_t swalk_device(struct thin_repair *rp, uint64_t root, struct ranges *lost)
{
	struct swalk w = { .rp = rp, .lost = lost, .leaf_depth = -1 };

	swalk_node(&w, root, 0, UINT64_MAX, 0, 1);
	return w.nr_free;
}

static int rdev_cmp(const void *a, const void *b)
{
	const struct rdev *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static void devs_release(struct thin_repair *rp)
{
	for (size_t i = 0; i < rp->nr_devs; i++) {
		free(rp->devs[i].lost.r);
		free(rp->devs[i].salv);
		free(rp->devs[i].alt);
		free(rp->devs[i].excl);
	}
	free(rp->devs);
	rp->devs = NULL;
	rp->nr_devs = rp->cap_devs = 0;
}

/*
 * Builds rp->devs from (mapping_root, details_root): devices of the
 * top-level tree, with details where found.  Returns the number of
 * referenced blocks that are free in the space map (staleness), or -errno.
 * *damaged: the details or top-level tree had damage.
 */
static int64_t load_roots(struct thin_repair *rp, uint64_t mroot, uint64_t droot, int *damaged,
			  int record)
{
	struct table_walk top, det;
	int64_t nr_free = 0;
	int r;
	size_t j = 0;

	devs_release(rp);
	*damaged = 0;
	r = read_table(rp, mroot, 0, &top);
	if (!r)
		r = read_table(rp, droot, 1, &det);
	else
		memset(&det, 0, sizeof(det));
	if (r < 0)
		goto out;
	*damaged = top.damaged || det.damaged;
	nr_free = (int64_t)(top.nr_free + det.nr_free);
	if (record && top.damaged)
		for (size_t i = 0; i < top.lost.nr; i++)
			note_add(&rp->notes, "top-level mapping tree damaged: devices with ids in "
					     "[%llu, %llu) are lost",
				 (unsigned long long)top.lost.r[i].lo,
				 (unsigned long long)top.lost.r[i].hi);
	rp->devs = top.devs;
	rp->nr_devs = rp->cap_devs = top.nr;
	rp->cap_devs = top.cap;
	top.devs = NULL;
	if (det.nr)
		qsort(det.devs, det.nr, sizeof(*det.devs), rdev_cmp);
	for (size_t i = 0; i < rp->nr_devs; i++) {
		struct rdev *d = &rp->devs[i];

		while (j < det.nr && det.devs[j].id < d->id)
			j++;
		if (j < det.nr && det.devs[j].id == d->id) {
			d->has_details = 1;
			d->d = det.devs[j].d;
		}
	}
	/* details naming devices that the top-level tree lacks also mean damage */
	if (det.nr != rp->nr_devs)
		*damaged = 1;
	for (size_t i = 0; i < rp->nr_devs; i++)
		if (!rp->devs[i].has_details)
			*damaged = 1;
out:
	table_release(&top);
	table_release(&det);
	return r < 0 ? r : nr_free;
}

static int need_field(char *msg, size_t msglen, const char *field);

static int sb_usable(const struct thin_md *md)
{
	return md->sb_err == 0 && md->sb.magic == THIN_MAGIC;
}

static void load_msm(struct thin_repair *rp)
{
	struct thin_md *md = rp->md;
	struct rcmap *sm;

	if (!sb_usable(md) || md->sb.metadata_sm.nr_blocks == 0 ||
	    md->sb.metadata_sm.nr_blocks > bc_nr_blocks(md->bc))
		return;
	sm = rcmap_create(md->sb.metadata_sm.nr_blocks);
	if (!sm)
		return;
	struct report *rep = rep_create(NULL, 1);
	int r = sm_disk_load(md->bc, &md->sb.metadata_sm, sm, rep, NULL);
	int bad = 0;

	/* any damage: the counts are not trustworthy (salvage needs them) */
	if (rep) {
		bad = rep_outcome(rep) >= DMG_NON_FATAL;
		rep_destroy(rep);
	}
	if (r < 0 || bad) {
		rcmap_destroy(sm);
		note_add(&rp->notes, "metadata space map unusable: orphan leaves cannot be "
				     "attributed");
		return;
	}
	rp->msm = sm;
}

static int cand_top_cmp(const void *a, const void *b)
{
	const struct snode *x = *(struct snode *const *)a, *y = *(struct snode *const *)b;

	if (x->t.any_free != y->t.any_free)
		return x->t.any_free - y->t.any_free;
	if (x->held != y->held)
		return x->held - y->held;
	if (x->t.time != y->t.time)
		return x->t.time > y->t.time ? -1 : 1;
	if (x->t.count != y->t.count)
		return x->t.count > y->t.count ? -1 : 1;
	return x->block > y->block ? -1 : x->block < y->block;
}

static int cand_det_cmp(const void *a, const void *b)
{
	const struct snode *x = *(struct snode *const *)a, *y = *(struct snode *const *)b;

	if (x->d.any_free != y->d.any_free)
		return x->d.any_free - y->d.any_free;
	if (x->held != y->held)
		return x->held - y->held;
	if (x->d.max_data != y->d.max_data)
		return x->d.max_data > y->d.max_data ? -1 : 1;
	if (x->d.time != y->d.time)
		return x->d.time > y->d.time ? -1 : 1;
	if (x->d.count != y->d.count)
		return x->d.count > y->d.count ? -1 : 1;
	return x->block > y->block ? -1 : x->block < y->block;
}

static int do_scan(struct thin_repair *rp)
{
	int r;

	if (rp->scanned)
		return 0;
	r = scan_run(rp->md->ioe, bc_nr_blocks(rp->md->bc), &rp->scan);
	if (r < 0)
		return r;
	rp->scanned = 1;
	return 0;
}

/* Root finding over the scan.  Returns 0 (roots set; droot may be 0: none) or -ENOENT. */
static int find_roots(struct thin_repair *rp, uint64_t *mroot, uint64_t *droot)
{
	struct summ_ctx c = { .s = &rp->scan, .msm = rp->msm };
	struct snode **tops = NULL, **dets = NULL;
	size_t nt = 0, nd = 0;
	int r = -ENOENT;

	for (size_t i = 0; i < rp->scan.nr; i++) {
		summarise(&c, &rp->scan.n[i], K_TOP, 0);
		summarise(&c, &rp->scan.n[i], K_DETAILS, 0);
	}
	/* a metadata snapshot's trees are older than the live ones */
	for (size_t i = 0; i < rp->scan.nr_sbc; i++) {
		struct snode *n;

		if ((n = scan_node(&rp->scan, rp->scan.sbc[i].mroot)))
			n->held = 1;
		if ((n = scan_node(&rp->scan, rp->scan.sbc[i].droot)))
			n->held = 1;
	}
	tops = calloc(rp->scan.nr + 1, sizeof(*tops));
	dets = calloc(rp->scan.nr + 1, sizeof(*dets));
	if (!tops || !dets) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < rp->scan.nr; i++) {
		struct snode *n = &rp->scan.n[i];

		if (n->t.state == S_VALID && !n->t_ref)
			tops[nt++] = n;
		if (n->d.state == S_VALID && !n->d_ref)
			dets[nd++] = n;
	}
	if (nt)
		qsort(tops, nt, sizeof(*tops), cand_top_cmp);
	if (nd)
		qsort(dets, nd, sizeof(*dets), cand_det_cmp);
	note_add(&rp->notes, "scanned %llu metadata blocks: %zu valid nodes, %zu mapping tree "
			     "candidates, %zu device details candidates",
		 (unsigned long long)rp->scan.nr_blocks, rp->scan.nr, nt, nd);
	/*
	 * Trees whose nodes are all in use in the space map are the live
	 * ones: never fall back to freed (older) trees when one exists, nor
	 * pair a live mapping tree with freed details (stale times).
	 */
	if (nt && !tops[0]->t.any_free)
		while (nt && tops[nt - 1]->t.any_free)
			nt--;
	/*
	 * Only the best mapping tree is paired: an older tree with surviving
	 * details is no substitute for the newest one whose details are lost
	 * (those are synthesised below).
	 */
	if (nt > 1)
		nt = 1;
	for (size_t i = 0; i < nt && r; i++)
		for (int pass = 0; pass < 2 && r; pass++)
			for (size_t j = 0; j < nd && r; j++) {
				const struct summ *t = &tops[i]->t, *d = &dets[j]->d;
				if (t->devs != d->devs || t->hash != d->hash)
					continue;
				if (!t->any_free && d->any_free)
					continue;
				if (pass == 0 && t->count != d->count)
					continue;
				*mroot = tops[i]->block;
				*droot = dets[j]->block;
				r = 0;
			}
	if (r && nt) {
		*mroot = tops[0]->block;
		*droot = 0;
		note_add(&rp->notes, "found %zu mapping trees without device details", nt);
		r = 0;
	}
	for (size_t i = 0; i < rp->scan.nr; i++) {
		const struct summ *t = &rp->scan.n[i].t;
		if (t->state == S_VALID) {
			if (t->time > rp->max_time_seen)
				rp->max_time_seen = t->time;
		}
	}
	if (!r) {
		struct snode *t = scan_node(&rp->scan, *mroot);
		if (t->t.max_data > rp->max_data_seen)
			rp->max_data_seen = t->t.max_data;
		if (t->t.time > rp->max_time_seen)
			rp->max_time_seen = t->t.time;
	}
out:
	free(tops);
	free(dets);
	return r;
}

/*----------------------------------------------------------------*/
/*
 * Pool states (superblock lost): every checksum-valid metadata space-map
 * index block whose bitmaps are valid describes one committed state.  A
 * state is usable when its map marks itself, its bitmaps and every node
 * of exactly one top-level tree (with its device trees) and at most one
 * details tree naming the same devices as in use; trees held by a
 * metadata snapshot (a superblock copy in use) are set aside.
 */

/* Every node of the tree at n (kind k) is in use in counts[]. */
static int tree_in_use(struct scan *s, struct snode *n, enum tkind k, const uint8_t *counts,
		       int level)
{
	if (level > BT_MAX_DEPTH || !counts[n->block])
		return 0;
	if (n->flags == BT_LEAF_NODE && k != K_TOP)
		return 1;
	if (n->ent == UINT32_MAX)
		return 0;
	for (uint32_t i = 0; i < n->nr; i++) {
		struct snode *ch = scan_node(s, s->pool[2 * ((size_t)n->ent + i) + 1]);
		enum tkind ck = n->flags == BT_LEAF_NODE ? K_MAP : k;

		if (!ch || !tree_in_use(s, ch, ck, counts, level + 1))
			return 0;
	}
	return 1;
}

/* Whether b is a device root named by the top-level tree at n. */
static int top_names_root(struct scan *s, struct snode *n, uint64_t b, int level)
{
	if (level > BT_MAX_DEPTH || n->ent == UINT32_MAX)
		return 0;
	for (uint32_t i = 0; i < n->nr; i++) {
		uint64_t v = s->pool[2 * ((size_t)n->ent + i) + 1];
		struct snode *ch;

		if (n->flags == BT_LEAF_NODE) {
			if (v == b)
				return 1;
			continue;
		}
		ch = scan_node(s, v);
		if (ch && top_names_root(s, ch, b, level + 1))
			return 1;
	}
	return 0;
}

/*
 * Decodes the map of index block ib into counts[0..nr_blocks).  Returns 0
 * when the index and all its bitmaps are valid and mark themselves in use.
 */
static int state_map(struct thin_repair *rp, uint64_t ib, uint8_t *counts)
{
	struct scan *s = &rp->scan;
	struct bc *bc = rp->md->bc;
	struct bc_block *blk;
	uint64_t bms[SM_MAX_METADATA_BITMAPS];
	unsigned nr = 0;

	if (bc_get(bc, ib, &sm_index_validator, &blk) < 0)
		return -1;
	for (unsigned i = 0; i < SM_MAX_METADATA_BITMAPS; i++) {
		const struct disk_metadata_index *mi = bc_data(blk);
		uint64_t b = le64_to_cpu(mi->index[i].blocknr);

		if (!b)
			break;
		bms[nr++] = b;
	}
	bc_put(bc, blk);
	if (!nr)
		return -1;
	memset(counts, 0, s->nr_blocks);
	for (unsigned i = 0; i < nr; i++) {
		uint64_t base = (uint64_t)i * SM_ENTRIES_PER_BITMAP;
		unsigned n;

		if (bms[i] >= s->nr_blocks || !(s->bitmap_ok[bms[i] / 8] & (1u << (bms[i] % 8))))
			return -1;
		if (base >= s->nr_blocks)
			break;
		n = s->nr_blocks - base < SM_ENTRIES_PER_BITMAP ? (unsigned)(s->nr_blocks - base)
								 : SM_ENTRIES_PER_BITMAP;
		if (bc_get(bc, bms[i], &sm_bitmap_validator, &blk) < 0)
			return -1;
		sm_bitmap_decode(bc_data(blk), n, counts + base);
		bc_put(bc, blk);
		bc_forget(bc, bms[i]);
	}
	if (!counts[ib])
		return -1;
	for (unsigned i = 0; i < nr; i++)
		if (!counts[bms[i]])
			return -1;
	return 0;
}

/* The state of one index block.  Returns 0 (st filled) or -1 (unusable). */
static int state_eval(struct thin_repair *rp, uint64_t ib, const uint8_t *counts,
		      struct repair_state *st)
{
	struct scan *s = &rp->scan;
	struct snode *top = NULL, *det = NULL;

	struct snode *tops[8];
	size_t nt = 0;

	for (size_t i = 0; i < s->nr; i++) {
		struct snode *n = &s->n[i];
		int held = 0;

		if (!counts[n->block])
			continue;
		for (size_t j = 0; j < s->nr_sbc && !held; j++)
			held = counts[s->sbc[j].block] &&
			       (s->sbc[j].mroot == n->block || s->sbc[j].droot == n->block);
		if (held)
			continue;
		if (n->t.state == S_VALID && !n->t_ref && tree_in_use(s, n, K_TOP, counts, 0)) {
			if (nt == sizeof(tops) / sizeof(tops[0]))
				return -1;
			tops[nt++] = n;
		}
		if (n->d.state == S_VALID && !n->d_ref && tree_in_use(s, n, K_DETAILS, counts, 0)) {
			if (det)
				return -1;
			det = n;
		}
	}
	/* device trees that look like top-level ones are named by the real one */
	for (size_t i = 0; i < nt; i++) {
		int named = 0;

		for (size_t j = 0; j < nt && !named; j++)
			named = j != i && top_names_root(s, tops[j], tops[i]->block, 0);
		if (named)
			continue;
		if (top)
			return -1;   /* two top-level trees: not one committed state */
		top = tops[i];
	}
	if (!top)
		return -1;
	if (det && (det->d.devs != top->t.devs || det->d.hash != top->t.hash))
		return -1;
	memset(st, 0, sizeof(*st));
	st->index_block = ib;
	st->mroot = top->block;
	st->time = top->t.time;
	if (det) {
		st->droot = det->block;
		st->tid = det->d.max_data;
		st->dtime = det->d.time;
	}
	return 0;
}

/*
 * Every whole pool state the scanned space maps describe.  counts: a
 * scratch map of nr_blocks bytes.
 */
static int collect_states(struct thin_repair *rp, uint8_t *counts, struct repair_state **out,
			  size_t *nr)
{
	struct scan *s = &rp->scan;
	struct summ_ctx c = { .s = s, .msm = NULL };
	struct repair_state *st;

	*out = NULL;
	*nr = 0;
	for (size_t i = 0; i < s->nr; i++) {
		summarise(&c, &s->n[i], K_TOP, 0);
		summarise(&c, &s->n[i], K_DETAILS, 0);
	}
	st = calloc(s->nr_smi + 1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	for (size_t i = 0; i < s->nr_smi; i++)
		if (state_map(rp, s->smi[i], counts) == 0 &&
		    state_eval(rp, s->smi[i], counts, &st[*nr]) == 0)
			(*nr)++;
	*out = st;
	return 0;
}

/*----------------------------------------------------------------*/
/* Whole mapping trees in memory (tree matching) */

struct kv {
	uint64_t key, val;
};

struct kvs {
	struct kv *kv;
	size_t n, cap;
	int loaded, damaged;
};

static int kvs_leaf(void *ctx, const struct bt_node *n)
{
	struct kvs *k = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		if (grow((void **)&k->kv, &k->cap, k->n, sizeof(*k->kv)))
			return -ENOMEM;
		k->kv[k->n].key = bt_key(n, i);
		k->kv[k->n].val = get_le64(bt_value(n, i));
		k->n++;
	}
	return 0;
}

static void kvs_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
		       uint64_t lo, uint64_t hi, const char *m)
{
	struct kvs *k = ctx;

	(void)code, (void)block, (void)lo, (void)hi, (void)m;
	if (level >= DMG_FATAL)
		k->damaged = 1;
}

/* Loads the tree at root once; damaged trees are loaded but marked. */
static int kvs_load(struct thin_repair *rp, uint64_t root, struct kvs *k)
{
	const struct bt_walk_ops ops = { .leaf = kvs_leaf, .damage = kvs_damage };

	if (k->loaded)
		return 0;
	k->loaded = 1;
	if (root >= bc_nr_blocks(rp->md->bc)) {
		k->damaged = 1;
		return 0;
	}
	return thin_walk_mappings(rp->md->bc, root, &ops, k);
}

static void kvs_release(struct kvs *k)
{
	free(k->kv);
	memset(k, 0, sizeof(*k));
}

static const struct kv *kvs_find(const struct kvs *k, uint64_t key)
{
	size_t lo = 0, hi = k->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->kv[mid].key == key)
			return &k->kv[mid];
		if (k->kv[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Whether every mapping of l older than tau is in x, the same.  When x
 * was the device's tree in a committed state whose pool clock was at
 * least tau, this holds for the device's live tree: a mapping gets the
 * pool's time when it is inserted, the clock never goes back, and after
 * that commit the device's tree changes only by removals and by
 * insertions stamped tau or later.
 */
static int kvs_older_in(const struct kvs *l, const struct kvs *x, uint32_t tau)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct kv *o;

		if (thin_bt_time(l->kv[i].val) >= tau)
			continue;
		o = kvs_find(x, l->kv[i].key);
		if (!o || o->val != l->kv[i].val)
			return 0;
	}
	return 1;
}

static int state_newest_first(const void *a, const void *b)
{
	const struct repair_state *x = a, *y = b;

	if (x->time != y->time)
		return x->time > y->time ? -1 : 1;
	if (x->tid != y->tid)
		return x->tid > y->tid ? -1 : 1;
	if (x->dtime != y->dtime)
		return x->dtime > y->dtime ? -1 : 1;
	return 0;
}

/*
 * A space map that is whole and consistent with itself but whose in-use
 * blocks include some that hold nothing readable (no valid node, bitmap,
 * index or superblock copy): the kernel writes only such blocks, so this
 * map's state lost blocks to damage, and nothing says it is older than the
 * whole states (it may be the live one).  Returns the index block of the
 * first such map (not one of the nst whole states), or 0.
 */
static uint64_t broken_state(struct thin_repair *rp, const struct repair_state *st, size_t nst,
			     uint8_t *counts, uint64_t *nr_holes, uint64_t *first_hole)
{
	struct scan *s = &rp->scan;
	uint8_t *known = calloc(s->nr_blocks / 8 + 1, 1);
	uint64_t found = 0;

	if (!known)
		return 0;
	for (size_t i = 0; i < s->nr_smi; i++)
		known[s->smi[i] / 8] |= (uint8_t)(1u << (s->smi[i] % 8));
	for (size_t i = 0; i < s->nr_sbc; i++)
		known[s->sbc[i].block / 8] |= (uint8_t)(1u << (s->sbc[i].block % 8));
	for (size_t i = 0; i < s->nr_smi && !found; i++) {
		uint64_t holes = 0, first = 0;
		int whole = 0;

		for (size_t j = 0; j < nst && !whole; j++)
			whole = st[j].index_block == s->smi[i];
		if (whole || state_map(rp, s->smi[i], counts))
			continue;
		for (uint64_t b = 1; b < s->nr_blocks; b++) {
			if (!counts[b] || s->idx[b] || (s->bitmap_ok[b / 8] & (1u << (b % 8))) ||
			    (known[b / 8] & (1u << (b % 8))))
				continue;
			if (!holes++)
				first = b;
		}
		if (holes) {
			found = s->smi[i];
			*nr_holes = holes;
			*first_hole = first;
		}
	}
	free(known);
	return found;
}

/*
 * Whether two states hold the same devices, details and mappings (their
 * trees may sit in different blocks: a commit may rewrite a node with the
 * same content).  Then it does not matter which of them is the live one.
 */
static int same_content(struct thin_repair *rp, const struct repair_state *a,
			const struct repair_state *b)
{
	struct snode *ta = scan_node(&rp->scan, a->mroot), *tb = scan_node(&rp->scan, b->mroot);
	struct table_walk t[4];
	int same = 0;

	if (!ta || !tb || ta->t.count != tb->t.count || ta->t.devs != tb->t.devs ||
	    ta->t.hash != tb->t.hash || !a->droot || !b->droot)
		return 0;
	memset(t, 0, sizeof(t));
	if (read_table(rp, a->mroot, 0, &t[0]) < 0 || read_table(rp, b->mroot, 0, &t[1]) < 0 ||
	    read_table(rp, a->droot, 1, &t[2]) < 0 || read_table(rp, b->droot, 1, &t[3]) < 0)
		goto out;
	if (t[0].damaged || t[1].damaged || t[2].damaged || t[3].damaged || t[0].nr != t[1].nr ||
	    t[2].nr != t[3].nr || t[0].nr != t[2].nr)
		goto out;
	for (size_t i = 0; i < t[2].nr; i++) {
		const struct thin_details *x = &t[2].devs[i].d, *y = &t[3].devs[i].d;

		if (t[2].devs[i].id != t[3].devs[i].id || x->mapped_blocks != y->mapped_blocks ||
		    x->transaction_id != y->transaction_id || x->creation_time != y->creation_time ||
		    x->snapshotted_time != y->snapshotted_time)
			goto out;
	}
	for (size_t i = 0; i < t[0].nr; i++) {
		struct kvs x = { 0 }, y = { 0 };
		int eq;

		if (t[0].devs[i].id != t[1].devs[i].id)
			goto out;
		if (t[0].devs[i].root == t[1].devs[i].root)
			continue;
		eq = kvs_load(rp, t[0].devs[i].root, &x) == 0 &&
		     kvs_load(rp, t[1].devs[i].root, &y) == 0 && !x.damaged && !y.damaged &&
		     x.n == y.n && (!x.n || !memcmp(x.kv, y.kv, x.n * sizeof(*x.kv)));
		kvs_release(&x);
		kvs_release(&y);
		if (!eq)
			goto out;
	}
	same = 1;
out:
	for (int i = 0; i < 4; i++)
		table_release(&t[i]);
	return same;
}

/*
 * Superblock lost: picks the newest pool state.  Returns 0 (roots set,
 * rp->msm set to the state's map), -ENOENT (no state: fall back to the
 * tree candidates) or -EAGAIN with msg naming the candidates.
 */
static int find_state(struct thin_repair *rp, uint64_t *mroot, uint64_t *droot, char *msg,
		      size_t msglen)
{
	struct scan *s = &rp->scan;
	struct repair_state *st = NULL;
	uint8_t *counts = NULL;
	size_t nst = 0, pick = 0, tied = 0;
	int r = -ENOENT;

	if (!s->nr_smi)
		return -ENOENT;
	counts = malloc(s->nr_blocks ? s->nr_blocks : 1);
	if (!counts) {
		r = -ENOMEM;
		goto out;
	}
	r = collect_states(rp, counts, &st, &nst);
	if (r < 0)
		goto out;
	r = repair_pick_state(st, nst, &pick, &tied);
	if (r == -EAGAIN) {
		int all = 1;

		for (size_t i = 0; i < nst && all; i++)
			if (!state_newest_first(&st[i], &st[pick]))
				all = same_content(rp, &st[i], &st[pick]);
		if (all) {
			note_add(&rp->notes, "%zu equally recent pool states hold the same devices and "
					     "mappings: either is the pool",
				 tied);
			r = 0;
		}
	}
	note_add(&rp->notes, "found %zu metadata space maps, %zu describing a whole pool state",
		 s->nr_smi, nst);
	if (rp->o.set_mapping_root) {
		/* the user chose the mapping root: its state's details and map, if any */
		r = -ENOENT;
		for (size_t i = 0; i < nst && r; i++)
			if (st[i].mroot == rp->o.mapping_root &&
			    (!rp->o.set_details_root || st[i].droot == rp->o.details_root)) {
				pick = i;
				r = 0;
			}
		if (r)
			goto out;
	}
	if (!rp->o.set_mapping_root) {
		uint64_t holes = 0, first = 0;
		uint64_t ib = broken_state(rp, st, nst, counts, &holes, &first);

		if (ib) {
			size_t len;

			/* newest first */
			qsort(st, nst, sizeof(*st), state_newest_first);
			len = (size_t)snprintf(msg, msglen,
					       "the space map at block %llu marks %llu unreadable "
					       "blocks in use (first %llu): its pool state is damaged and "
					       "may be newer than every whole one; choose with "
					       "--override-mapping-root and --override-details-root%s",
					       (unsigned long long)ib, (unsigned long long)holes,
					       (unsigned long long)first, nst ? ":" : "");
			for (size_t k = 0, shown = 0; k < nst && shown < 6 && len < msglen; k++) {
				struct snode *t = scan_node(s, st[k].mroot);
				int dup = 0;

				for (size_t q = 0; q < k && !dup; q++)
					dup = st[q].mroot == st[k].mroot && st[q].droot == st[k].droot;
				if (dup)
					continue;
				len += (size_t)snprintf(msg + len, msglen - len,
							"%s mapping root %llu details root %llu "
							"(time %u, %llu devices, %llu mappings)",
							shown ? ";" : "",
							(unsigned long long)st[k].mroot,
							(unsigned long long)st[k].droot, st[k].time,
							(unsigned long long)t->t.devs,
							(unsigned long long)t->t.count);
				shown++;
			}
			r = -EAGAIN;
			goto out;
		}
	}
	if (r == -EAGAIN) {
		size_t len;

		/* newest first by position: only a hint (the allocator wraps and restarts) */
		len = (size_t)snprintf(msg, msglen,
				       "%zu pool states are equally recent and nothing on the disk "
				       "says which is the live one; choose with "
				       "--override-mapping-root and --override-details-root:",
				       tied);
		for (size_t k = 0, shown = 0; k < nst && shown < 6 && len < msglen; k++) {
			size_t j = nst - 1 - k;
			int dup = 0;

			if (st[j].time != st[pick].time || st[j].tid != st[pick].tid ||
			    st[j].dtime != st[pick].dtime)
				continue;
			for (size_t q = j + 1; q < nst && !dup; q++)
				dup = st[q].mroot == st[j].mroot && st[q].droot == st[j].droot;
			if (dup)
				continue;
			struct snode *t = scan_node(s, st[j].mroot);
			len += (size_t)snprintf(msg + len, msglen - len,
						"%s mapping root %llu details root %llu (%llu devices, "
						"%llu mappings)",
						shown ? ";" : "", (unsigned long long)st[j].mroot,
						(unsigned long long)st[j].droot,
						(unsigned long long)t->t.devs,
						(unsigned long long)t->t.count);
			shown++;
		}
		goto out;
	}
	if (r < 0)
		goto out;
	*mroot = st[pick].mroot;
	*droot = st[pick].droot;
	for (size_t i = 0; i < s->nr; i++)
		if (s->n[i].t.state == S_VALID && s->n[i].t.time > rp->max_time_seen)
			rp->max_time_seen = s->n[i].t.time;
	if (scan_node(s, *mroot)->t.max_data > rp->max_data_seen)
		rp->max_data_seen = scan_node(s, *mroot)->t.max_data;
	/* the state's map: liveness for the walks, counts for salvage */
	if (state_map(rp, st[pick].index_block, counts) == 0) {
		rp->msm = rcmap_create(s->nr_blocks);
		if (!rp->msm) {
			r = -ENOMEM;
			goto out;
		}
		for (uint64_t b = 0; b < s->nr_blocks; b++)
			if (counts[b])
				rcmap_set(rp->msm, b, counts[b]);
	}
	note_add(&rp->notes, "%s pool state: space-map index %llu, mapping root %llu, details "
			     "root %llu",
		 rp->o.set_mapping_root ? "chosen" : "newest",
		 (unsigned long long)st[pick].index_block, (unsigned long long)*mroot,
		 (unsigned long long)*droot);
out:
	free(counts);
	free(st);
	return r;
}

static int salv_cmp_ctx_first(struct scan *s, uint64_t a, uint64_t b)
{
	uint64_t fa = scan_node(s, a)->first, fb = scan_node(s, b)->first;
	return fa < fb ? -1 : fa > fb;
}

static void sort_salv(struct scan *s, uint64_t *v, size_t n)
{
	/* insertion sort: few salvaged leaves per device */
	for (size_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		size_t j = i;
		while (j > 0 && salv_cmp_ctx_first(s, v[j - 1], x) > 0) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

static int range_covers(const struct ranges *rs, uint64_t lo, uint64_t hi_incl)
{
	for (size_t i = 0; i < rs->nr; i++)
		if (rs->r[i].lo <= lo && hi_incl < rs->r[i].hi)
			return 1;
	return 0;
}

/*
 * Structure walks of all devices (lost ranges, reference counts) and, if
 * some device lost part of its tree, salvage from the scan.
 */
static int64_t structure_walk(struct thin_repair *rp)
{
	uint64_t nr_blocks = bc_nr_blocks(rp->md->bc);
	int64_t nr_free = 0;

	free(rp->visited);
	free(rp->dmg_below);
	rcmap_destroy(rp->expected);
	rp->expected = NULL;
	rp->visited = calloc(nr_blocks / 8 + 1, 1);
	rp->dmg_below = calloc(nr_blocks / 8 + 1, 1);
	if (!rp->visited || !rp->dmg_below)
		return -ENOMEM;
	if (rp->msm) {
		rp->expected = rcmap_create(nr_blocks);
		if (!rp->expected)
			return -ENOMEM;
	}
	for (size_t i = 0; i < rp->nr_devs; i++) {
		nr_free += (int64_t)swalk_device(rp, rp->devs[i].root, &rp->devs[i].lost);
		/* the other candidates are live roots too: their nodes are not orphans */
		for (size_t k = 0; k < rp->devs[i].nr_alt; k++)
			swalk_device(rp, rp->devs[i].alt[k], NULL);
	}
	return nr_free;
}

static int plan_salvage(struct thin_repair *rp)
{
	uint64_t nr_blocks = bc_nr_blocks(rp->md->bc);
	size_t damaged = 0;
	int r;

	for (size_t i = 0; i < rp->nr_devs; i++)
		if (rp->devs[i].lost.nr)
			damaged++;
	if (!damaged)
		return 0;
	if (!rp->msm)
		return 0;
	/* the metadata snapshot's trees reference nodes too */
	if (rp->md->sb.held_root && sb_usable(rp->md) &&
	    rp->md->sb.held_root < nr_blocks) {
		struct thin_sb snap;
		if (thin_sb_read(rp->md->bc, rp->md->sb.held_root, &snap) == 0) {
			struct table_walk t;
			if (read_table(rp, snap.data_mapping_root, 0, &t) == 0)
				for (size_t i = 0; i < t.nr; i++)
					swalk_device(rp, t.devs[i].root, NULL);
			table_release(&t);
		}
	}
	r = do_scan(rp);
	if (r < 0)
		return r;
	for (size_t i = 0; i < rp->scan.nr; i++) {
		struct snode *n = &rp->scan.n[i];
		uint32_t have, want;
		size_t cover = 0;

		if (n->flags != BT_LEAF_NODE || n->vsize != THIN_MAPPING_VSIZE || n->looks_top ||
		    !n->nr || n->block >= rcmap_nr_blocks(rp->msm))
			continue;
		have = rcmap_get(rp->msm, n->block);
		want = rcmap_get(rp->expected, n->block);
		if (have <= want)
			continue;
		for (size_t j = 0; j < rp->nr_devs; j++)
			if (range_covers(&rp->devs[j].lost, n->first, n->last))
				cover++;
		if (!cover)
			continue;
		if (cover > have - want) {
			note_add(&rp->notes, "orphan leaf %llu (virtual blocks %llu..%llu) fits %zu "
					     "damaged devices: not attributed",
				 (unsigned long long)n->block, (unsigned long long)n->first,
				 (unsigned long long)n->last, cover);
			continue;
		}
		for (size_t j = 0; j < rp->nr_devs; j++) {
			struct rdev *d = &rp->devs[j];
			if (!range_covers(&d->lost, n->first, n->last))
				continue;
			if (grow((void **)&d->salv, &d->cap_salv, d->nr_salv, sizeof(*d->salv)))
				return -ENOMEM;
			d->salv[d->nr_salv++] = n->block;
		}
	}
	for (size_t j = 0; j < rp->nr_devs; j++) {
		struct rdev *d = &rp->devs[j];
		size_t k = 0;

		sort_salv(&rp->scan, d->salv, d->nr_salv);
		/* overlapping orphans: keep the first */
		for (size_t i = 0; i < d->nr_salv; i++) {
			if (k && scan_node(&rp->scan, d->salv[i])->first <=
					 scan_node(&rp->scan, d->salv[k - 1])->last) {
				note_add(&rp->notes, "device %llu: orphan leaf %llu overlaps leaf "
						     "%llu: dropped",
					 (unsigned long long)d->id, (unsigned long long)d->salv[i],
					 (unsigned long long)d->salv[k - 1]);
				continue;
			}
			d->salv[k++] = d->salv[i];
		}
		d->nr_salv = k;
		if (k) {
			rp->salvaged += k;
			note_add(&rp->notes, "device %llu: %zu orphan leaves salvaged",
				 (unsigned long long)d->id, k);
		}
	}
	return 0;
}

static int need_field(char *msg, size_t msglen, const char *field)
{
	snprintf(msg, msglen,
		 "The following field needs to be provided on the command line due to corruption "
		 "in the superblock: %s",
		 field);
	return -EINVAL;
}

/* Highest data block and newest time of the mappings that will be emitted. */
struct maxw {
	uint64_t max_data;
	uint32_t max_time;
};

static int maxw_leaf(void *ctx, const struct bt_node *n)
{
	struct maxw *w = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t v = get_le64(bt_value(n, i));

		if (thin_bt_block(v) > w->max_data)
			w->max_data = thin_bt_block(v);
		if (thin_bt_time(v) > w->max_time)
			w->max_time = thin_bt_time(v);
	}
	return 0;
}

static int max_walk(struct thin_repair *rp)
{
	const struct bt_walk_ops ops = { .leaf = maxw_leaf };
	struct maxw w = { rp->max_data_seen, rp->max_time_seen };
	int r = 0;

	for (size_t i = 0; i < rp->nr_devs && !r; i++) {
		const struct rdev *d = &rp->devs[i];

		if (d->root < bc_nr_blocks(rp->md->bc))
			r = thin_walk_mappings(rp->md->bc, d->root, &ops, &w);
		for (size_t k = 0; k < d->nr_salv; k++) {
			const struct snode *sn = scan_node(&rp->scan, d->salv[k]);

			if (sn->max_data > w.max_data)
				w.max_data = sn->max_data;
			if (sn->max_time > w.max_time)
				w.max_time = sn->max_time;
		}
	}
	rp->max_data_seen = w.max_data;
	rp->max_time_seen = w.max_time;
	return r;
}

static int plan_superblock(struct thin_repair *rp, char *msg, size_t msglen)
{
	struct thin_md *md = rp->md;
	const struct thin_repair_opts *o = &rp->o;
	struct ir_superblock *sb = &rp->sb;
	uint64_t max_tid = 0;
	uint32_t max_time;
	int r;

	/* superblock lost: the clock and data size from what will be emitted */
	if (!sb_usable(md) && (r = max_walk(rp)) < 0) {
		snprintf(msg, msglen, "cannot read the metadata: %s", strerror(-r));
		return r;
	}
	max_time = rp->max_time_seen;
	memset(sb, 0, sizeof(*sb));
	sb->uuid = "";
	sb->has_flags = 1;
	sb->flags = 0;
	sb->version = THIN_VERSION;
	for (size_t i = 0; i < rp->nr_devs; i++) {
		const struct rdev *d = &rp->devs[i];
		if (!d->has_details)
			continue;
		if (d->d.transaction_id > max_tid)
			max_tid = d->d.transaction_id;
		if (d->d.creation_time > max_time)
			max_time = d->d.creation_time;
		if (d->d.snapshotted_time > max_time)
			max_time = d->d.snapshotted_time;
	}
	if (sb_usable(md)) {
		sb->time = md->sb.time > max_time ? md->sb.time : max_time;
		sb->transaction = md->sb.trans_id;
		sb->data_block_size = md->sb.data_block_size;
		sb->nr_data_blocks = md->sb.data_sm.nr_blocks;
	} else {
		sb->time = max_time;
		if (!o->set_data_block_size)
			return need_field(msg, msglen, "data block size");
		sb->transaction = max_tid + 1;
		if (!o->set_transaction_id)
			note_add(&rp->notes, "superblock lost: transaction id %llu inferred from the "
					     "devices (set it with --transaction-id)",
				 (unsigned long long)sb->transaction);
		sb->nr_data_blocks = rp->max_data_seen + 1;
		if (!o->set_nr_data_blocks)
			note_add(&rp->notes, "superblock lost: nr_data_blocks %llu inferred from the "
					     "highest mapped block (set it with --nr-data-blocks)",
				 (unsigned long long)sb->nr_data_blocks);
	}
	if (o->set_transaction_id)
		sb->transaction = o->transaction_id;
	if (o->set_data_block_size)
		sb->data_block_size = o->data_block_size;
	if (o->set_nr_data_blocks)
		sb->nr_data_blocks = o->nr_data_blocks;
	if (sb->data_block_size < THIN_MIN_DATA_BLOCK_SIZE ||
	    sb->data_block_size > THIN_MAX_DATA_BLOCK_SIZE ||
	    sb->data_block_size % THIN_MIN_DATA_BLOCK_SIZE) {
		if (!o->set_data_block_size)
			return need_field(msg, msglen, "data block size");
		snprintf(msg, msglen, "invalid data block size %u (must be a multiple of 128 "
				      "between 128 and 2097152 sectors)",
			 sb->data_block_size);
		return -EINVAL;
	}
	/* devices without details: data-safe synthesised ones (all mappings shared) */
	for (size_t i = 0; i < rp->nr_devs; i++) {
		struct rdev *d = &rp->devs[i];
		if (d->has_details)
			continue;
		if (!rp->synthesised) {
			if (sb->time < max_time + 1)
				sb->time = max_time + 1;
		}
		rp->synthesised = 1;
		d->d.transaction_id = sb->transaction ? sb->transaction - 1 : 0;
		d->d.creation_time = sb->time;
		d->d.snapshotted_time = sb->time;
		note_add(&rp->notes, "device %llu: details lost, synthesised (mappings treated as "
				     "shared)",
			 (unsigned long long)d->id);
	}
	return 0;
}

static size_t row_count(const uint8_t *cand, size_t nt, size_t i)
{
	size_t c = 0;

	for (size_t t = 0; t < nt; t++)
		c += cand[i * nt + t];
	return c;
}

/*
 * Older committed pool states (scanned space maps, FORMAT.md §9) tell
 * apart the candidate trees of devices with equal mapped_blocks: a device
 * created before such a state's clock (tau: its newest mapping, creation
 * or snapshot time) had a tree X there, and its live tree holds no
 * mapping older than tau that X lacks (kvs_older_in).  A state that names
 * no such device, disagrees on its creation time, or leaves some device
 * without a candidate is not this pool's past: its evidence is dropped.
 */
static int prune_by_history(struct thin_repair *rp, const struct table_walk *det,
			    const struct repair_mtree *trees, size_t nt, uint8_t *cand,
			    struct kvs *cache)
{
	size_t nd = det->nr, nst = 0;
	struct repair_state *st = NULL;
	uint8_t *counts = malloc(rp->scan.nr_blocks ? rp->scan.nr_blocks : 1);
	uint8_t *save = malloc(nd * nt + 1);
	int r = -ENOMEM;

	if (!counts || !save)
		goto out;
	r = collect_states(rp, counts, &st, &nst);
	if (r < 0)
		goto out;
	if (nst)
		qsort(st, nst, sizeof(*st), state_newest_first);
	for (size_t si = 0; si < nst; si++) {
		struct table_walk top, sdet;
		uint32_t tau = st[si].time > st[si].dtime ? st[si].time : st[si].dtime;
		size_t open = 0, struck = 0;
		int bad = 0;

		for (size_t i = 0; i < nd; i++)
			open += row_count(cand, nt, i) > 1;
		if (!open)
			break;
		if (!st[si].droot)
			continue;
		if (read_table(rp, st[si].mroot, 0, &top) < 0) {
			table_release(&top);
			continue;
		}
		if (read_table(rp, st[si].droot, 1, &sdet) < 0 || top.damaged || sdet.damaged) {
			table_release(&top);
			table_release(&sdet);
			continue;
		}
		memcpy(save, cand, nd * nt);
		for (size_t i = 0; i < nd && !bad; i++) {
			const struct rdev *d = &det->devs[i];
			const struct rdev *x = NULL, *xd = NULL;
			struct kvs tmp = { 0 }, *xk = &tmp;

			if (d->d.creation_time >= tau)
				continue;
			for (size_t k = 0; k < top.nr && !x; k++)
				if (top.devs[k].id == d->id)
					x = &top.devs[k];
			for (size_t k = 0; k < sdet.nr && !xd; k++)
				if (sdet.devs[k].id == d->id)
					xd = &sdet.devs[k];
			/* created before that commit: it must be there, born at the same time */
			if (!x || !xd || xd->d.creation_time != d->d.creation_time) {
				bad = 1;
				break;
			}
			if (row_count(cand, nt, i) < 2)
				continue;
			for (size_t t = 0; t < nt; t++)
				if (trees[t].root == x->root)
					xk = &cache[t];
			r = kvs_load(rp, x->root, xk);
			if (r < 0) {
				kvs_release(&tmp);
				goto out_tables;
			}
			for (size_t t = 0; t < nt && !xk->damaged; t++) {
				if (!cand[i * nt + t] || trees[t].root == x->root)
					continue;
				r = kvs_load(rp, trees[t].root, &cache[t]);
				if (r < 0) {
					kvs_release(&tmp);
					goto out_tables;
				}
				if (!kvs_older_in(&cache[t], xk, tau)) {
					cand[i * nt + t] = 0;
					struck++;
				}
			}
			kvs_release(&tmp);
			if (!row_count(cand, nt, i))
				bad = 1;
		}
		if (bad) {
			memcpy(cand, save, nd * nt);
			note_add(&rp->notes, "older pool state (mapping root %llu) does not fit the "
					     "live devices: not used",
				 (unsigned long long)st[si].mroot);
		} else if (struck) {
			note_add(&rp->notes, "older pool state (mapping root %llu, time %u) rules out "
					     "%zu candidate trees",
				 (unsigned long long)st[si].mroot, tau, struck);
		}
		r = 0;
out_tables:
		table_release(&top);
		table_release(&sdet);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	free(st);
	free(counts);
	free(save);
	return r;
}

/* excl: the sorted keys where the trees differ. */
static int diff_keys(const struct kvs *a, const struct kvs *b, uint64_t **excl, size_t *nr,
		     size_t *cap)
{
	size_t i = 0, j = 0;

	while (i < a->n || j < b->n) {
		uint64_t key;

		if (j == b->n || (i < a->n && a->kv[i].key < b->kv[j].key)) {
			key = a->kv[i++].key;
		} else if (i == a->n || b->kv[j].key < a->kv[i].key) {
			key = b->kv[j++].key;
		} else {
			key = a->kv[i].key;
			if (a->kv[i++].val == b->kv[j++].val)
				continue;
		}
		if (grow((void **)excl, cap, *nr, sizeof(**excl)))
			return -ENOMEM;
		(*excl)[(*nr)++] = key;
	}
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * A device whose tree is one of several (all whole, references adding
 * up): it keeps the mappings they all share; the rest are reported lost.
 */
static int share_candidates(struct thin_repair *rp, struct rdev *d, const uint8_t *row,
			    const struct repair_mtree *trees, size_t nt, struct kvs *cache)
{
	long first = -1;
	size_t cap = 0, k = 0, kept = 0;
	char roots[96];
	int r, len;

	for (size_t t = 0; t < nt; t++) {
		if (!row[t])
			continue;
		r = kvs_load(rp, trees[t].root, &cache[t]);
		if (r < 0)
			return r;
		if (cache[t].damaged)
			return -EINVAL;
		if (first < 0) {
			first = (long)t;
			d->root = trees[t].root;
			continue;
		}
		d->alt = realloc(d->alt, (d->nr_alt + 1) * sizeof(*d->alt));
		if (!d->alt)
			return -ENOMEM;
		d->alt[d->nr_alt++] = trees[t].root;
		r = diff_keys(&cache[first], &cache[t], &d->excl, &d->nr_excl, &cap);
		if (r < 0)
			return r;
	}
	if (d->nr_excl)
		qsort(d->excl, d->nr_excl, sizeof(*d->excl), u64_cmp);
	for (size_t i = 0; i < d->nr_excl; i++)
		if (!k || d->excl[k - 1] != d->excl[i])
			d->excl[k++] = d->excl[i];
	d->nr_excl = k;
	for (size_t i = 0; i < cache[first].n; i++)
		kept += !bsearch(&cache[first].kv[i].key, d->excl, d->nr_excl, sizeof(*d->excl),
				 u64_cmp);
	if (!kept)
		return -ENODATA;   /* nothing in common: lost */
	len = snprintf(roots, sizeof(roots), "%llu", (unsigned long long)d->root);
	for (size_t i = 0; i < d->nr_alt && len > 0 && (size_t)len < sizeof(roots); i++)
		len += snprintf(roots + len, sizeof(roots) - (size_t)len, "%s%llu",
				i + 1 == d->nr_alt ? " and " : ", ", (unsigned long long)d->alt[i]);
	note_add(&rp->notes, "device %llu: %zu mapping trees fit (roots %s): the %zu mappings they "
			     "share are kept",
		 (unsigned long long)d->id, d->nr_alt + 1, roots, kept);
	return 0;
}

/*
 * The live top-level tree is lost but the superblock's details tree is
 * whole: give each device the unreferenced, in-use mapping tree holding
 * exactly its mapped_blocks (a tree may serve as many devices as the
 * space map counts references to its root).  Returns 0 when every device
 * got a tree.
 */
static int rebuild_top(struct thin_repair *rp)
{
	struct summ_ctx c = { .s = &rp->scan, .msm = rp->msm };
	struct table_walk det;
	struct rdev *devs = NULL;
	struct repair_mdev *mdevs = NULL;
	struct repair_mtree *trees = NULL;
	long *assign = NULL;
	uint8_t *cand = NULL;
	struct kvs *cache = NULL;
	size_t found = 0, shared = 0, nt = 0;
	int r;

	if (!rp->msm || !sb_usable(rp->md))
		return -ENOENT;
	r = read_table(rp, rp->md->sb.device_details_root, 1, &det);
	if (r < 0 || det.damaged || !det.nr) {
		table_release(&det);
		return -ENOENT;
	}
	for (size_t i = 0; i < rp->scan.nr; i++)
		summarise(&c, &rp->scan.n[i], K_MAP, 0);
	devs = calloc(det.nr, sizeof(*devs));
	mdevs = calloc(det.nr, sizeof(*mdevs));
	assign = calloc(det.nr, sizeof(*assign));
	trees = calloc(rp->scan.nr + 1, sizeof(*trees));
	if (!devs || !mdevs || !assign || !trees) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < rp->scan.nr; i++) {
		struct snode *n = &rp->scan.n[i];
		uint32_t refs;

		if (n->m.state != S_VALID || n->m_ref || n->m.any_free || n->t.state == S_VALID)
			continue;
		refs = rcmap_get(rp->msm, n->block);
		/* references from metadata snapshots' top-level trees are not devices */
		for (size_t k = 0; k < rp->scan.nr_sbc; k++) {
			struct snode *h = scan_node(&rp->scan, rp->scan.sbc[k].mroot);
			if (h && refs && top_names_root(&rp->scan, h, n->block, 0))
				refs--;
		}
		if (!refs)
			continue;
		trees[nt].root = n->block;
		trees[nt].count = n->m.count;
		trees[nt].refs = refs;
		trees[nt].max_time = n->m.time;
		nt++;
	}
	for (size_t j = 0; j < det.nr; j++) {
		mdevs[j].id = det.devs[j].id;
		mdevs[j].mapped_blocks = det.devs[j].d.mapped_blocks;
	}
	cand = calloc(det.nr * nt + 1, 1);
	cache = calloc(nt + 1, sizeof(*cache));
	if (!cand || !cache) {
		r = -ENOMEM;
		goto out;
	}
	repair_match_candidates(mdevs, det.nr, trees, nt, rp->md->sb.time, cand);
	r = prune_by_history(rp, &det, trees, nt, cand, cache);
	if (r < 0)
		goto out;
	found = repair_match_resolve(mdevs, det.nr, trees, nt, cand, assign);
	for (size_t j = 0; j < det.nr; j++) {
		devs[j] = det.devs[j];
		if (assign[j] == REPAIR_AMBIGUOUS) {
			r = share_candidates(rp, &devs[j], cand + j * nt, trees, nt, cache);
			if (r == -ENOMEM)
				goto out;
			if (r == 0) {
				shared++;
				continue;
			}
			free(devs[j].alt);
			free(devs[j].excl);
			devs[j].alt = devs[j].excl = NULL;
			devs[j].nr_alt = devs[j].nr_excl = 0;
			assign[j] = REPAIR_LOST;
		}
		if (assign[j] >= 0) {
			devs[j].root = trees[assign[j]].root;
		} else {
			/* no unique tree: the device is reported lost, never guessed */
			devs[j].root = UINT64_MAX;
			note_add(&rp->notes, "device %llu: no unique mapping tree with %llu mappings: "
					     "lost",
				 (unsigned long long)det.devs[j].id,
				 (unsigned long long)det.devs[j].d.mapped_blocks);
		}
	}
	if (!found && !shared) {
		r = -ENOENT;
		goto out;
	}
	devs_release(rp);
	rp->devs = devs;
	devs = NULL;
	rp->nr_devs = rp->cap_devs = det.nr;
	note_add(&rp->notes, "top-level mapping tree lost: rebuilt from %zu of %zu orphan device "
			     "trees matched by mapped_blocks",
		 found, det.nr);
	if (shared)
		note_add(&rp->notes, "%zu devices keep the mappings their candidate trees share",
			 shared);
	r = 0;
out:
	if (devs)
		for (size_t j = 0; j < det.nr; j++) {
			free(devs[j].alt);
			free(devs[j].excl);
		}
	if (cache)
		for (size_t t = 0; t < nt; t++)
			kvs_release(&cache[t]);
	free(cache);
	free(cand);
	free(devs);
	free(mdevs);
	free(assign);
	free(trees);
	table_release(&det);
	return r;
}

int thin_repair_plan(struct thin_md *md, const struct thin_repair_opts *o,
		     struct thin_repair **out, char *msg, size_t msglen)
{
	struct thin_repair *rp = calloc(1, sizeof(*rp));
	uint64_t mroot = 0, droot = 0;
	int damaged = 1, r;
	int64_t nr_free = 0;

	msg[0] = '\0';
	*out = NULL;
	if (!rp) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	rp->md = md;
	rp->o = *o;
	/* nothing to look for before the fields only the user can give */
	if (!sb_usable(md) && !o->set_data_block_size) {
		r = need_field(msg, msglen, "data block size");
		goto fail_msg;
	}
	bc_set_max_blocks(md->bc, 1024);
	load_msm(rp);
	if (sb_usable(md)) {
		nr_free = load_roots(rp, md->sb.data_mapping_root, md->sb.device_details_root,
				     &damaged, 0);
		/* device trees pointing at freed blocks: stale roots */
		if (nr_free >= 0 && !damaged)
			nr_free = structure_walk(rp);
		if (nr_free < 0) {
			r = (int)nr_free;
			goto fail;
		}
	} else {
		note_add(&rp->notes, "superblock %s: searching for roots",
			 md->sb_err ? "unreadable" : "has a bad magic number");
	}
	if (o->set_mapping_root) {
		r = do_scan(rp);
		if (r < 0)
			goto fail;
		r = rp->msm ? -ENOENT : find_state(rp, &mroot, &droot, msg, msglen);
		if (r == -ENOENT) {
			mroot = o->mapping_root;
			droot = o->set_details_root ? o->details_root
			      : sb_usable(md) ? md->sb.device_details_root : 0;
		} else if (r < 0) {
			goto fail;
		}
		note_add(&rp->notes, "using the given mapping root %llu and details root %llu",
			 (unsigned long long)mroot, (unsigned long long)droot);
		nr_free = load_roots(rp, mroot, droot, &damaged, 1);
		if (nr_free >= 0)
			nr_free = structure_walk(rp);
		if (nr_free < 0) {
			r = (int)nr_free;
			goto fail;
		}
		rp->mapping_root = mroot;
		rp->details_root = droot;
		goto planned;
	}
	if (!sb_usable(md) || damaged || nr_free || o->force_scan) {
		if (sb_usable(md))
			note_add(&rp->notes, "superblock roots (mapping %llu, details %llu) are %s: "
					     "searching for roots",
				 (unsigned long long)md->sb.data_mapping_root,
				 (unsigned long long)md->sb.device_details_root,
				 damaged ? "damaged" : nr_free ? "stale" : "ignored");
		r = do_scan(rp);
		if (r < 0)
			goto fail;
		r = -ENOENT;
		if (!sb_usable(md)) {
			/* the space maps found by the scan tell the live trees from stale ones */
			r = find_state(rp, &mroot, &droot, msg, msglen);
			if (r == -EAGAIN)
				goto fail_msg;
			if (r < 0 && r != -ENOENT)
				goto fail;
		}
		if (r == -ENOENT)
			r = find_roots(rp, &mroot, &droot);
		if (r == -ENOENT && sb_usable(md)) {
			/* nothing better on the disk: what is left of the superblock's trees */
			mroot = md->sb.data_mapping_root;
			droot = md->sb.device_details_root;
			note_add(&rp->notes, "no other roots found: using what remains of the "
					     "superblock's trees");
		} else if (r == -ENOENT) {
			snprintf(msg, msglen, "no compatible roots found");
			goto fail;
		} else if (r < 0) {
			goto fail;
		}
		if (sb_usable(md) &&
		    (r == -ENOENT || scan_node(&rp->scan, mroot)->t.any_free ||
		     scan_node(&rp->scan, mroot)->held) &&
		    rebuild_top(rp) == 0) {
			rp->mapping_root = 0;
			rp->details_root = md->sb.device_details_root;
			nr_free = structure_walk(rp);
			if (nr_free < 0) {
				r = (int)nr_free;
				goto fail;
			}
			goto planned;
		}
		/*
		 * Only freed (older) mapping trees left: their mappings may point
		 * at reused data blocks.  What remains of the superblock's trees
		 * is the data-safe choice.
		 */
		if (r == 0 && sb_usable(md) &&
		    (scan_node(&rp->scan, mroot)->t.any_free || scan_node(&rp->scan, mroot)->held)) {
			mroot = md->sb.data_mapping_root;
			droot = md->sb.device_details_root;
			note_add(&rp->notes, "only freed (older) mapping trees found: using what "
					     "remains of the superblock's trees");
		}
		/* no details tree found: what the superblock's one still holds */
		if (!droot && sb_usable(md))
			droot = md->sb.device_details_root;
		rp->used_sb_roots = sb_usable(md) && mroot == md->sb.data_mapping_root &&
				    droot == md->sb.device_details_root;
		note_add(&rp->notes, "using mapping root %llu and details root %llu",
			 (unsigned long long)mroot, (unsigned long long)droot);
		nr_free = load_roots(rp, mroot, droot, &damaged, 1);
		if (nr_free >= 0)
			nr_free = structure_walk(rp);
		if (nr_free < 0) {
			r = (int)nr_free;
			goto fail;
		}
	} else {
		mroot = md->sb.data_mapping_root;
		droot = md->sb.device_details_root;
		rp->used_sb_roots = 1;
	}
	rp->mapping_root = mroot;
	rp->details_root = droot;
planned:
	r = plan_salvage(rp);
	if (r < 0)
		goto fail;
	r = plan_superblock(rp, msg, msglen);
	if (r < 0)
		goto fail_msg;
	rp->plan_notes = rp->notes.nr;
	*out = rp;
	return 0;
fail:
	if (!msg[0])
		snprintf(msg, msglen, "cannot repair: %s", strerror(-r));
fail_msg:
	thin_repair_destroy(rp);
	return r;
}

void thin_repair_destroy(struct thin_repair *rp)
{
	if (!rp)
		return;
	devs_release(rp);
	notes_clear(&rp->notes, 0);
	free(rp->notes.s);
	rcmap_destroy(rp->msm);
	rcmap_destroy(rp->expected);
	free(rp->visited);
	free(rp->dmg_below);
	scan_release(&rp->scan);
	free(rp);
}

/*----------------------------------------------------------------*/
/* Emission */

struct emit {
	struct thin_repair *rp;
	const struct ir_visitor *v;   /* NULL: count only */
	struct rdev *dev;
	size_t next_salv;
	int have_run, have_last;
	uint64_t origin, data, len, last_key;
	uint32_t time;
	uint64_t count, dropped;
	struct ranges lost;
	int vret;
};

static int emit_flush(struct emit *e)
{
	const struct ir_visitor *v = e->v;
	int r = 0;

	if (!e->have_run)
		return 0;
	e->have_run = 0;
	if (!v)
		return 0;
	if (e->len == 1) {
		if (v->single_map)
			r = v->single_map(v->ctx, e->origin, e->data, e->time);
	} else if (v->range_map) {
		r = v->range_map(v->ctx, e->origin, e->data, e->len, e->time);
	}
	if (r)
		e->vret = r;
	return r;
}

#define EMIT_STOP (-ECANCELED)

static int emit_entries(struct emit *e, const struct bt_node *n)
{
	uint64_t nr_data = e->rp->sb.nr_data_blocks;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t key = bt_key(n, i);
		uint64_t bt = get_le64(bt_value(n, i));
		uint64_t data = thin_bt_block(bt);
		uint32_t time = thin_bt_time(bt);

		if (e->have_last && key <= e->last_key)
			continue;
		if (e->dev->nr_excl && bsearch(&key, e->dev->excl, e->dev->nr_excl,
					       sizeof(key), u64_cmp))
			continue;
		if (data >= nr_data) {
			e->dropped++;
			continue;
		}
		e->have_last = 1;
		e->last_key = key;
		e->count++;
		if (e->have_run && key == e->origin + e->len && data == e->data + e->len &&
		    time == e->time) {
			e->len++;
			continue;
		}
		if (emit_flush(e))
			return EMIT_STOP;
		e->have_run = 1;
		e->origin = key;
		e->data = data;
		e->len = 1;
		e->time = time;
	}
	return 0;
}

static int emit_salvaged(struct emit *e, uint64_t below)
{
	struct bc *bc = e->rp->md->bc;

	while (e->next_salv < e->dev->nr_salv) {
		uint64_t b = e->dev->salv[e->next_salv];
		struct bc_block *blk;
		struct bt_node n;
		int r;

		if (scan_node(&e->rp->scan, b)->first >= below)
			break;
		e->next_salv++;
		if (bc_get(bc, b, &bt_node_validator, &blk) < 0)
			continue;
		bt_node_view(bc_data(blk), &n);
		r = emit_entries(e, &n);
		bc_put(bc, blk);
		if (r)
			return r;
	}
	return 0;
}

static int emit_leaf(void *ctx, const struct bt_node *n)
{
	struct emit *e = ctx;
	int r;

	if (n->nr_entries) {
		r = emit_salvaged(e, bt_key(n, 0));
		if (r)
			return r;
	}
	r = emit_entries(e, n);
	bc_forget(e->rp->md->bc, n->blocknr);
	return r;
}

static void emit_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			uint64_t lo, uint64_t hi, const char *m)
{
	struct emit *e = ctx;

	(void)code, (void)block, (void)m;
	if (level >= DMG_FATAL)
		ranges_add(&e->lost, lo, hi);
}

static int walk_device(struct emit *e)
{
	const struct bt_walk_ops ops = { .leaf = emit_leaf, .damage = emit_damage };
	int r;

	e->next_salv = 0;
	e->have_run = e->have_last = 0;
	e->count = e->dropped = 0;
	e->lost.nr = 0;
	if (e->dev->root >= bc_nr_blocks(e->rp->md->bc)) {
		ranges_add(&e->lost, 0, UINT64_MAX);
		r = 0;
	} else {
		r = thin_walk_mappings(e->rp->md->bc, e->dev->root, &ops, e);
	}
	if (!r)
		r = emit_salvaged(e, UINT64_MAX);
	if (!r)
		r = emit_flush(e) ? EMIT_STOP : 0;
	return r;
}

/* Lost ranges minus the salvaged leaves' spans. */
static void note_lost(struct emit *e)
{
	struct thin_repair *rp = e->rp;
	struct rdev *d = e->dev;

	for (size_t i = 0; i < e->lost.nr; i++) {
		uint64_t lo = e->lost.r[i].lo, hi = e->lost.r[i].hi;

		for (size_t k = 0; k < d->nr_salv; k++) {
			const struct snode *s = scan_node(&rp->scan, d->salv[k]);
			if (s->last < lo || s->first >= hi)
				continue;
			if (s->first > lo) {
				note_add(&rp->notes, "device %llu: mappings may be lost in virtual "
						     "blocks [%llu, %llu) (between salvaged leaves)",
					 (unsigned long long)d->id, (unsigned long long)lo,
					 (unsigned long long)s->first);
				rp->nr_lost++;
			}
			lo = s->last + 1;
		}
		if (lo < hi && lo != e->lost.r[i].lo) {
			char his[32];

			if (hi == UINT64_MAX)
				snprintf(his, sizeof(his), "end");
			else
				snprintf(his, sizeof(his), "%llu", (unsigned long long)hi);
			note_add(&rp->notes, "device %llu: mappings may be lost in virtual blocks "
					     "[%llu, %s) (after salvaged leaves)",
				 (unsigned long long)d->id, (unsigned long long)lo, his);
			rp->nr_lost++;
		} else if (lo < hi) {
			if (hi == UINT64_MAX)
				note_add(&rp->notes, "device %llu: mappings lost in virtual blocks "
						     "[%llu, end)",
					 (unsigned long long)d->id, (unsigned long long)lo);
			else
				note_add(&rp->notes, "device %llu: mappings lost in virtual blocks "
						     "[%llu, %llu)",
					 (unsigned long long)d->id, (unsigned long long)lo,
					 (unsigned long long)hi);
			rp->nr_lost++;
		}
	}
	for (size_t i = 0; i < d->nr_excl;) {
		size_t j = i + 1;

		while (j < d->nr_excl && d->excl[j] == d->excl[j - 1] + 1)
			j++;
		note_add(&rp->notes, "device %llu: mappings lost in virtual blocks [%llu, %llu) "
				     "(its candidate trees differ there)",
			 (unsigned long long)d->id, (unsigned long long)d->excl[i],
			 (unsigned long long)d->excl[j - 1] + 1);
		rp->nr_lost++;
		i = j;
	}
	if (e->dropped) {
		note_add(&rp->notes, "device %llu: %llu mappings beyond nr_data_blocks (%llu) dropped",
			 (unsigned long long)d->id, (unsigned long long)e->dropped,
			 (unsigned long long)rp->sb.nr_data_blocks);
	}
}

static int visited(int r, char *err, size_t errlen)
{
	if (r > 0)
		return IR_STOP;
	if (r < 0)
		snprintf(err, errlen, "cannot write output: %s", strerror(-r));
	return r;
}

int thin_repair_emit(struct thin_repair *rp, const struct ir_visitor *v, int exact_counts,
		     char *err, size_t errlen)
{
	struct emit e = { .rp = rp };
	int r;

	err[0] = '\0';
	notes_clear(&rp->notes, rp->plan_notes);
	rp->nr_mappings = rp->nr_lost = 0;
	r = v->begin_superblock ? visited(v->begin_superblock(v->ctx, &rp->sb), err, errlen) : 0;
	for (size_t i = 0; i < rp->nr_devs && !r; i++) {
		struct ir_device dev;

		e.dev = &rp->devs[i];
		dev.dev_id = e.dev->id;
		dev.mapped_blocks = e.dev->d.mapped_blocks;
		dev.transaction = e.dev->d.transaction_id;
		dev.creation_time = e.dev->d.creation_time;
		dev.snap_time = e.dev->d.snapshotted_time;
		if (exact_counts) {
			e.v = NULL;
			r = walk_device(&e);
			if (r < 0)
				break;
			dev.mapped_blocks = e.count;
		}
		e.v = v;
		e.vret = 0;
		r = v->begin_device ? visited(v->begin_device(v->ctx, &dev), err, errlen) : 0;
		if (r)
			break;
		r = walk_device(&e);
		if (r == EMIT_STOP && e.vret) {
			r = visited(e.vret, err, errlen);
			break;
		}
		if (r < 0)
			break;
		rp->nr_mappings += e.count;
		note_lost(&e);
		r = v->end_device ? visited(v->end_device(v->ctx), err, errlen) : 0;
	}
	if (!r)
		r = v->end_superblock ? visited(v->end_superblock(v->ctx), err, errlen) : 0;
	if (r < 0 && !err[0])
		snprintf(err, errlen, "cannot read the metadata: %s", strerror(-r));
	free(e.lost.r);
	return r == IR_STOP ? 0 : r;
}

int thin_repair_produce(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	return thin_repair_emit(ctx, v, 0, err, errlen);
}

size_t thin_repair_nr_notes(const struct thin_repair *rp)
{
	return rp->notes.nr;
}

const char *thin_repair_note(const struct thin_repair *rp, size_t i)
{
	return i < rp->notes.nr ? rp->notes.s[i] : "";
}

void thin_repair_get_stats(const struct thin_repair *rp, struct thin_repair_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->scanned = rp->scanned;
	st->used_sb_roots = rp->used_sb_roots;
	st->synthesised_details = rp->synthesised;
	st->nr_devices = rp->nr_devs;
	st->nr_mappings = rp->nr_mappings;
	st->salvaged_leaves = rp->salvaged;
	st->lost_ranges = rp->nr_lost;
	st->mapping_root = rp->mapping_root;
	st->details_root = rp->details_root;
}
