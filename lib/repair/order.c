#include "repair/repair.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spacemap/spacemap.h"
#include "repair/repair-internal.h"
#include "util/vec.h"

/*----------------------------------------------------------------*/
/*
 * Pool states and their order (superblock lost).
 *
 * Every checksum-valid metadata space-map index block whose bitmaps are
 * valid and mark themselves in use is one committed pool state (its map:
 * which blocks were in use when it was committed).  The roots of its
 * trees are the in-use nodes nothing else in use references.
 *
 * The live state is the last commit.  A state X is proven the last
 * commit when no block that X had free was written after X's commit
 * where the next commit would have written one (kernel
 * dm-space-map-metadata.c): every commit allocates at least one block
 * (the space-map index is shadowed on each commit); the allocator only
 * hands out blocks free in the last committed map; the next allocation
 * after X is the lowest free block at or above a cursor that is either
 * back at 0 (the pool was opened again; kernels before 5.13 reset it on
 * every commit) or past X's index block (it carries over within one
 * activation), or, when the metadata device grew, the first block of the
 * new area, which lies beyond every block X used.  So the candidates for
 * that block are: the lowest block X had free, and every block above X's
 * index block that X had free.  A block was not written after X when it
 * never held anything the kernel wrote (its own number is not at offset
 * 8) and no map marks it in use, or when what it holds is the space-map
 * index or bitmap of a state proven older than X.
 *
 * Older (sound, and documented in thin_repair(8)): the data and metadata
 * devices never shrink (the kernel refuses a smaller device), so a state
 * whose space map covers fewer bitmaps is older; a state whose map marks
 * in use a block that now holds another state's index or bitmap was
 * committed before that block was rewritten; a device's creation and
 * snapshot times never go back, and a device created before a state's
 * clock (its newest time) is in that state, unchanged in identity.
 */

/* memory for the states' in-use bitsets (at least 64 states are kept) */
#define PSTATE_BITSETS (256u << 20)

static int in_use(const struct pstate *st, uint64_t b)
{
	return repair_bit_get(st->inuse, b);
}

static int is_sm_block(const struct pstate *st, uint64_t b)
{
	if (b == st->index_block)
		return 1;
	for (unsigned i = 0; i < st->nr_bitmaps; i++)
		if (st->bitmaps[i] == b)
			return 1;
	return 0;
}

/*----------------------------------------------------------------*/
/* One state's map */

/*
 * Decodes the map of index block ib into counts[0..nr_blocks) and fills
 * st's bitmaps.  map_exact: every index entry's nr_free equals the free
 * entries of its bitmap, as the kernel keeps them (FORMAT.md §7.2; or, for
 * the last bitmap, as 0.9.0's restore counts them), so the bitmaps are the
 * ones written with this index.  Returns 0, or -1 when
 * the index or a bitmap is unreadable or the map does not mark them in use.
 */
static int pstate_map(struct thin_repair *rp, uint64_t ib, uint8_t *counts, uint8_t *tmp,
		      struct pstate *st)
{
	struct scan *s = &rp->scan;
	struct bc *bc = rp->md->bc;
	struct bc_block *blk;
	uint64_t bms[SM_MAX_METADATA_BITMAPS];
	uint32_t nr_free[SM_MAX_METADATA_BITMAPS];
	unsigned nr = 0;

	if (bc_get(bc, ib, &sm_index_validator, &blk) < 0)
		return -1;
	for (unsigned i = 0; i < SM_MAX_METADATA_BITMAPS; i++) {
		const struct disk_metadata_index *mi = bc_data(blk);
		uint64_t b = le64_to_cpu(mi->index[i].blocknr);

		if (!b)
			break;
		nr_free[nr] = le32_to_cpu(mi->index[i].nr_free);
		bms[nr++] = b;
	}
	bc_put(bc, blk);
	if (!nr)
		return -1;
	memset(counts, 0, s->nr_blocks);
	st->map_exact = 1;
	for (unsigned i = 0; i < nr; i++) {
		uint64_t base = (uint64_t)i * SM_ENTRIES_PER_BITMAP;
		unsigned used = 0;

		if (bms[i] >= s->nr_blocks || !repair_bit_get(s->bitmap_ok, bms[i]))
			return -1;
		if (bc_get(bc, bms[i], &sm_bitmap_validator, &blk) < 0)
			return -1;
		sm_bitmap_decode(bc_data(blk), SM_ENTRIES_PER_BITMAP, tmp);
		bc_put(bc, blk);
		bc_forget(bc, bms[i]);
		for (unsigned j = 0; j < SM_ENTRIES_PER_BITMAP; j++)
			used += tmp[j] != 0;
		/*
		 * The kernel counts all 16320 entries; 0.9.0's restore only those
		 * below the device's end, and the kernel keeps that offset
		 * (it adjusts nr_free by one per change).
		 */
		if (SM_ENTRIES_PER_BITMAP - used != nr_free[i] &&
		    (base >= s->nr_blocks || s->nr_blocks - base >= SM_ENTRIES_PER_BITMAP ||
		     s->nr_blocks - base - used != nr_free[i]))
			st->map_exact = 0;
		if (base < s->nr_blocks)
			memcpy(counts + base, tmp,
			       s->nr_blocks - base < SM_ENTRIES_PER_BITMAP ? s->nr_blocks - base
									 : SM_ENTRIES_PER_BITMAP);
	}
	if (!counts[ib])
		return -1;
	for (unsigned i = 0; i < nr; i++)
		if (!counts[bms[i]])
			return -1;
	st->bitmaps = malloc(nr * sizeof(*st->bitmaps));
	if (!st->bitmaps)
		return -ENOMEM;
	memcpy(st->bitmaps, bms, nr * sizeof(*bms));
	st->nr_bitmaps = nr;
	st->index_block = ib;
	return 0;
}

/*----------------------------------------------------------------*/
/* Roots of a state: in-use nodes nothing else in use references */

static struct snode *first_leaf(struct scan *s, struct snode *n)
{
	for (int d = 0; n && d <= BT_MAX_DEPTH; d++) {
		if (n->flags == BT_LEAF_NODE)
			return n;
		if (n->ent == UINT32_MAX || !n->nr)
			return NULL;
		n = repair_scan_node(s, s->pool[2 * (size_t)n->ent + 1]);
	}
	return NULL;
}

/* A leaf that may be a top-level one: values look like blocks, or empty. */
static int top_like(const struct snode *l)
{
	return l->vsize == THIN_MAPPING_VSIZE && (l->looks_top || l->nr == 0);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The values of the top-level leaves under n, appended to v. */
static int top_values(struct scan *s, struct snode *n, uint64_t **v, size_t *nr, size_t *cap,
		      int level)
{
	if (level > BT_MAX_DEPTH || n->ent == UINT32_MAX)
		return 0;
	for (uint32_t i = 0; i < n->nr; i++) {
		uint64_t x = s->pool[2 * ((size_t)n->ent + i) + 1];
		struct snode *ch;
		int r;

		if (n->flags == BT_LEAF_NODE) {
			if (repair_grow((void **)v, cap, *nr, sizeof(**v)))
				return -ENOMEM;
			(*v)[(*nr)++] = x;
			continue;
		}
		ch = repair_scan_node(s, x);
		if (ch && (r = top_values(s, ch, v, nr, cap, level + 1)) < 0)
			return r;
	}
	return 0;
}

struct rootset {
	uint64_t *v8, *named;      /* vs 8 roots; values of top-like trees (sorted) */
	size_t nr8, cap8, nr_named, cap_named;
};

/*
 * Finds st's roots.  refd: scratch bitset.  Sets top, details, dsm, ovf,
 * held; roots_ok when there is exactly one top-level tree and no root is
 * left unexplained.
 */
static int pstate_roots(struct thin_repair *rp, const uint8_t *counts, uint8_t *refd,
			struct pstate *st)
{
	struct scan *s = &rp->scan;
	struct rootset rs = { 0 };
	unsigned nr_ovf = 0, dup = 0, left = 0, nr_tops = 0;
	int r = 0;

	memset(refd, 0, s->nr_blocks / 8 + 1);
	for (size_t j = 0; j < s->nr_sbc; j++) {
		const struct sb_copy *c = &s->sbc[j];

		if (!counts[c->block])
			continue;
		if (st->held)
			dup++;
		st->held = c->block;
		if (c->mroot < s->nr_blocks)
			repair_bit_set(refd, c->mroot);
		if (c->droot < s->nr_blocks)
			repair_bit_set(refd, c->droot);
	}
	for (size_t i = 0; i < s->nr; i++) {
		const struct snode *n = &s->n[i];

		if (!counts[n->block] || n->flags == BT_LEAF_NODE || n->ent == UINT32_MAX)
			continue;
		for (uint32_t k = 0; k < n->nr; k++) {
			uint64_t c = s->pool[2 * ((size_t)n->ent + k) + 1];
			if (c < s->nr_blocks)
				repair_bit_set(refd, c);
		}
	}
	for (size_t i = 0; i < s->nr && !r; i++) {
		struct snode *n = &s->n[i], *l;

		if (!counts[n->block] || repair_bit_get(refd, n->block))
			continue;
		l = first_leaf(s, n);
		if (!l) {
			left++;
			continue;
		}
		switch (l->vsize) {
		case THIN_MAPPING_VSIZE:
			if (repair_grow((void **)&rs.v8, &rs.cap8, rs.nr8, sizeof(*rs.v8))) {
				r = -ENOMEM;
				break;
			}
			rs.v8[rs.nr8++] = n->block;
			if (top_like(l))
				r = top_values(s, n, &rs.named, &rs.nr_named, &rs.cap_named, 0);
			break;
		case THIN_DETAILS_VSIZE:
			dup += st->details != 0;
			st->details = n->block;
			break;
		case SM_INDEX_ENTRY_SIZE:
			dup += st->dsm != 0;
			st->dsm = n->block;
			break;
		case SM_OVERFLOW_VSIZE:
			if (nr_ovf < 2)
				st->ovf[nr_ovf] = n->block;
			nr_ovf++;
			break;
		default:
			left++;
		}
	}
	if (r < 0)
		goto out;
	if (rs.nr_named)
		vec_sort(rs.named, rs.nr_named, sizeof(*rs.named), u64_cmp);
	/* the top-level root is the top-like vs-8 root no top-like tree names */
	for (size_t i = 0; i < rs.nr8; i++) {
		struct snode *n = repair_scan_node(s, rs.v8[i]);

		if (rs.nr_named &&
		    vec_find(&rs.v8[i], rs.named, rs.nr_named, sizeof(*rs.named), u64_cmp))
			continue;
		if (top_like(first_leaf(s, n))) {
			st->top = rs.v8[i];
			nr_tops++;
		} else {
			left++;   /* a mapping tree no top-level tree names */
		}
	}
	if (nr_tops != 1)
		st->top = 0;
	st->nr_v8 = rs.nr8;
	st->roots_ok = nr_tops == 1 && !dup && !left && nr_ovf == 2 && st->details && st->dsm;
out:
	free(rs.v8);
	free(rs.named);
	return r;
}

/*----------------------------------------------------------------*/
/* Whether a state's structures account for its map exactly */

enum ikind { IK_TOP, IK_MAP, IK_DETAILS, IK_DSM, IK_OVF };

struct iwalk {
	struct scan *s;
	uint8_t *exp;      /* expected counts, saturated at 3 */
	uint8_t *vis;      /* bitset */
	int bad;
};

static void exp_add(struct iwalk *w, uint64_t b)
{
	if (b >= w->s->nr_blocks)
		w->bad = 1;
	else if (w->exp[b] < 3)
		w->exp[b]++;
}

static void iw_visit(struct iwalk *w, uint64_t b, enum ikind k, int depth)
{
	struct scan *s = w->s;
	struct snode *n = repair_scan_node(s, b);
	static const uint8_t vsize[] = { THIN_MAPPING_VSIZE, THIN_MAPPING_VSIZE, THIN_DETAILS_VSIZE,
					 SM_INDEX_ENTRY_SIZE, SM_OVERFLOW_VSIZE };

	if (!n || depth > 2 * BT_MAX_DEPTH) {
		w->bad = 1;
		return;
	}
	if (repair_bit_get(w->vis, b))
		return;
	repair_bit_set(w->vis, b);
	if (n->flags != BT_LEAF_NODE) {
		if (n->vsize != 8 || n->ent == UINT32_MAX) {
			w->bad = 1;
			return;
		}
		for (uint32_t i = 0; i < n->nr && !w->bad; i++) {
			uint64_t c = s->pool[2 * ((size_t)n->ent + i) + 1];
			exp_add(w, c);
			iw_visit(w, c, k, depth + 1);
		}
		return;
	}
	if (n->vsize != vsize[k] || ((k == IK_TOP || k == IK_DSM) && n->nr && n->ent == UINT32_MAX)) {
		w->bad = 1;
		return;
	}
	for (uint32_t i = 0; (k == IK_TOP || k == IK_DSM) && i < n->nr && !w->bad; i++) {
		uint64_t v = s->pool[2 * ((size_t)n->ent + i) + 1];

		exp_add(w, v);
		if (k == IK_TOP)
			iw_visit(w, v, IK_MAP, depth + 1);
		else if (v >= s->nr_blocks || !repair_bit_get(s->bitmap_ok, v))
			w->bad = 1;
	}
}

/* Number of data bitmaps the data-sm index at b lists. */
static long dsm_entries(struct scan *s, uint64_t b, int level)
{
	struct snode *n = repair_scan_node(s, b);
	long sum = 0;

	if (!n || level > BT_MAX_DEPTH)
		return -1;
	if (n->flags == BT_LEAF_NODE)
		return n->vsize == SM_INDEX_ENTRY_SIZE ? (long)n->nr : -1;
	if (n->ent == UINT32_MAX)
		return -1;
	for (uint32_t i = 0; i < n->nr; i++) {
		long c = dsm_entries(s, s->pool[2 * ((size_t)n->ent + i) + 1], level + 1);
		if (c < 0)
			return -1;
		sum += c;
	}
	return sum;
}

static void pstate_intact(struct thin_repair *rp, const uint8_t *counts, uint8_t *exp,
			  uint8_t *vis, struct pstate *st)
{
	struct scan *s = &rp->scan;
	struct iwalk w = { .s = s, .exp = exp, .vis = vis };
	const struct snode *t = st->top ? repair_scan_node(s, st->top) : NULL;
	const struct snode *d = st->details ? repair_scan_node(s, st->details) : NULL;

	st->nr_data_bitmaps = st->dsm ? dsm_entries(s, st->dsm, 0) : -1;
	if (t && d && t->flags == BT_LEAF_NODE && !t->nr && d->d.state == S_VALID && !d->d.devs) {
		st->whole = 1;   /* a pool without devices */
		st->dtime = d->d.time;
		st->max_tid = d->d.max_data;
	} else if (t && d && t->t.state == S_VALID && d->d.state == S_VALID &&
		   t->t.devs == d->d.devs && t->t.hash == d->d.hash) {
		st->whole = 1;
		st->nr_devs = t->t.devs;
		st->nr_mappings = t->t.count;
		st->time = t->t.time;
		st->dtime = d->d.time;
		st->max_tid = d->d.max_data;
	} else if (t && t->t.state == S_VALID) {
		st->nr_devs = t->t.devs;
		st->nr_mappings = t->t.count;
		st->time = t->t.time;
	} else if (t) {
		uint64_t *v = NULL;
		size_t nr = 0, cap = 0;

		/* some device trees unreadable: count the devices only */
		if (top_values(s, (struct snode *)t, &v, &nr, &cap, 0) == 0)
			st->nr_devs = nr;
		st->nr_mappings = UINT64_MAX;
		free(v);
	}
	if (!st->whole && d && d->d.state == S_VALID) {
		st->dtime = d->d.time;
		st->max_tid = d->d.max_data;
	}
	if (!st->roots_ok || st->nr_holes || !st->whole || st->nr_mappings != d->d.count)
		return;
	memset(exp, 0, s->nr_blocks);
	memset(vis, 0, s->nr_blocks / 8 + 1);
	exp_add(&w, 0);   /* the superblock */
	exp_add(&w, st->index_block);
	for (unsigned i = 0; i < st->nr_bitmaps; i++)
		exp_add(&w, st->bitmaps[i]);
	exp_add(&w, st->top);
	iw_visit(&w, st->top, IK_TOP, 0);
	exp_add(&w, st->details);
	iw_visit(&w, st->details, IK_DETAILS, 0);
	exp_add(&w, st->dsm);
	iw_visit(&w, st->dsm, IK_DSM, 0);
	for (int i = 0; i < 2; i++) {
		exp_add(&w, st->ovf[i]);
		iw_visit(&w, st->ovf[i], IK_OVF, 0);
	}
	if (st->held) {
		for (size_t j = 0; j < s->nr_sbc; j++) {
			if (s->sbc[j].block != st->held)
				continue;
			exp_add(&w, st->held);
			exp_add(&w, s->sbc[j].mroot);
			iw_visit(&w, s->sbc[j].mroot, IK_TOP, 0);
			exp_add(&w, s->sbc[j].droot);
			iw_visit(&w, s->sbc[j].droot, IK_DETAILS, 0);
		}
	}
	if (w.bad)
		return;
	for (uint64_t b = 0; b < s->nr_blocks; b++)
		if (exp[b] != counts[b])
			return;
	st->intact = 1;
}

/*----------------------------------------------------------------*/
/* Building the states */

void repair_pstates_release(struct thin_repair *rp)
{
	for (size_t i = 0; i < rp->nr_pst; i++) {
		free(rp->pst[i].bitmaps);
		free(rp->pst[i].inuse);
		free(rp->pst[i].devs);
	}
	free(rp->pst);
	free(rp->pst_rel);
	free(rp->inuse_any);
	free(rp->owned_any);
	free(rp->parents);
	rp->owned_any = rp->parents = NULL;
	rp->pst = NULL;
	rp->pst_rel = NULL;
	rp->inuse_any = NULL;
	rp->nr_pst = 0;
}

/* Blocks holding a space-map index or a superblock copy (bitset). */
static uint8_t *known_blocks(const struct scan *s)
{
	uint8_t *known = calloc(s->nr_blocks / 8 + 1, 1);

	if (!known)
		return NULL;
	for (size_t i = 0; i < s->nr_smi; i++)
		repair_bit_set(known, s->smi[i]);
	for (size_t i = 0; i < s->nr_sbc; i++)
		repair_bit_set(known, s->sbc[i].block);
	return known;
}

static void pstate_holes(const struct scan *s, const uint8_t *counts, const uint8_t *known,
			 struct pstate *st)
{
	for (uint64_t b = 1; b < s->nr_blocks; b++) {
		if (!counts[b])
			continue;
		if (b > st->max_used)
			st->max_used = b;
		if (s->idx[b] || repair_bit_get(s->bitmap_ok, b) || repair_bit_get(known, b))
			continue;
		if (!st->nr_holes++)
			st->first_hole = b;
	}
}

/*
 * Every pool state the scanned space maps describe; when their in-use
 * bitsets would take more than PSTATE_BITSETS, the ones with the lowest
 * index blocks (an eighth: the formatted pool's anchors a young pool's
 * proof) and the highest.
 */
int repair_pstates_build(struct thin_repair *rp)
{
	struct scan *s = &rp->scan;
	struct summ_ctx c = { .s = s, .msm = NULL };
	uint64_t n8 = s->nr_blocks / 8 + 1;
	uint8_t *counts = malloc(s->nr_blocks + 1), *exp = malloc(s->nr_blocks + 1);
	uint8_t *refd = malloc(n8), *vis = malloc(n8), *known = known_blocks(s);
	uint8_t *tmp = malloc(SM_ENTRIES_PER_BITMAP);
	size_t cap = PSTATE_BITSETS / n8 > 64 ? PSTATE_BITSETS / n8 : 64;
	size_t low = s->nr_smi > cap ? cap / 8 : s->nr_smi;
	size_t high = s->nr_smi > cap ? s->nr_smi - (cap - low) : s->nr_smi;
	int r = -ENOMEM;

	repair_pstates_release(rp);
	rp->pst = calloc((s->nr_smi < cap ? s->nr_smi : cap) + 1, sizeof(*rp->pst));
	rp->inuse_any = calloc(n8, 1);
	if (!counts || !exp || !refd || !vis || !known || !tmp || !rp->pst || !rp->inuse_any)
		goto out;
	for (size_t i = 0; i < s->nr; i++) {
		repair_summarise(&c, &s->n[i], K_TOP, 0);
		repair_summarise(&c, &s->n[i], K_DETAILS, 0);
	}
	for (size_t i = 0; i < s->nr_smi; i++) {
		struct pstate *st = &rp->pst[rp->nr_pst];

		if (i == low)
			i = high;
		if (i >= s->nr_smi)
			break;

		memset(st, 0, sizeof(*st));
		r = pstate_map(rp, s->smi[i], counts, tmp, st);
		if (r == -ENOMEM)
			goto out;
		if (r < 0) {
			free(st->bitmaps);
			continue;
		}
		st->inuse = calloc(n8, 1);
		if (!st->inuse)
			goto out_nomem;
		for (uint64_t b = 0; b < s->nr_blocks; b++)
			if (counts[b]) {
				repair_bit_set(st->inuse, b);
				repair_bit_set(rp->inuse_any, b);
			}
		pstate_holes(s, counts, known, st);
		r = pstate_roots(rp, counts, refd, st);
		if (r < 0)
			goto out;
		pstate_intact(rp, counts, exp, vis, st);
		st->last = -1;
		rp->nr_pst++;
	}
	rp->pst_rel = calloc(rp->nr_pst * rp->nr_pst + 1, 1);
	rp->owned_any = calloc(n8, 1);
	rp->parents = calloc(n8, 1);
	r = rp->pst_rel && rp->owned_any && rp->parents ? 0 : -ENOMEM;
	for (size_t i = 0; !r && i < s->nr; i++) {
		const struct snode *n = &s->n[i];

		if (n->ent != UINT32_MAX &&
		    (n->flags != BT_LEAF_NODE || n->vsize == SM_INDEX_ENTRY_SIZE))
			repair_bit_set(rp->parents, n->block);
	}
	for (size_t i = 0; !r && i < rp->nr_pst; i++) {
		const struct pstate *st = &rp->pst[i];

		repair_bit_set(rp->owned_any, st->index_block);
		for (unsigned k = 0; k < st->nr_bitmaps; k++)
			repair_bit_set(rp->owned_any, st->bitmaps[k]);
		for (uint64_t w = 0; st->intact && w < n8; w++)
			rp->owned_any[w] |= st->inuse[w] & rp->parents[w];
	}
	goto out;
out_nomem:
	r = -ENOMEM;
out:
	free(counts);
	free(exp);
	free(refd);
	free(vis);
	free(known);
	free(tmp);
	return r;
}

/*----------------------------------------------------------------*/
/* Which state is older: rules that need no order of commits */

static int pdev_cmp(const void *a, const void *b)
{
	const struct pdev *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The device table of a whole state (devs_ok: both tables undamaged, same ids). */
static int pstate_devs(struct thin_repair *rp, struct pstate *st)
{
	struct table_walk top, det;
	int r;

	if (st->devs_loaded)
		return 0;
	st->devs_loaded = 1;
	if (!st->whole)
		return 0;
	r = repair_read_table(rp, st->top, 0, &top);
	if (!r)
		r = repair_read_table(rp, st->details, 1, &det);
	else
		memset(&det, 0, sizeof(det));
	if (r < 0)
		goto out;
	if (top.damaged || det.damaged || top.nr != det.nr)
		goto out;
	st->devs = calloc(top.nr + 1, sizeof(*st->devs));
	if (!st->devs) {
		r = -ENOMEM;
		goto out;
	}
	vec_sort(top.devs, top.nr, sizeof(*top.devs), repair_rdev_cmp);
	vec_sort(det.devs, det.nr, sizeof(*det.devs), repair_rdev_cmp);
	for (size_t i = 0; i < top.nr; i++) {
		if (top.devs[i].id != det.devs[i].id)
			goto out;
		st->devs[i].id = top.devs[i].id;
		st->devs[i].root = top.devs[i].root;
		st->devs[i].d = det.devs[i].d;
		st->devs[i].has_details = 1;
	}
	st->nr_pdevs = top.nr;
	st->clock = st->time > st->dtime ? st->time : st->dtime;
	st->devs_ok = 1;
out:
	repair_table_release(&top);
	repair_table_release(&det);
	return r;
}

/*
 * Why z is older than x by the rules of the comment on top (WB_*), or
 * WB_NONE; the device rules need both device tables (devs_ok).
 */
int repair_older_why(const struct pstate *z, const struct pstate *x)
{
	if (z->nr_data_bitmaps >= 0 && x->nr_data_bitmaps >= 0 &&
	    z->nr_data_bitmaps < x->nr_data_bitmaps)
		return WB_DATA_SM;
	if (z->nr_bitmaps < x->nr_bitmaps)
		return WB_META_SM;
	if (in_use(z, x->index_block) && !is_sm_block(z, x->index_block))
		return WB_OVERWRITE;
	for (unsigned i = 0; i < x->nr_bitmaps; i++)
		if (in_use(z, x->bitmaps[i]) && !is_sm_block(z, x->bitmaps[i]))
			return WB_OVERWRITE;
	if (!z->devs_ok || !x->devs_ok)
		return WB_NONE;
	for (size_t i = 0; i < z->nr_pdevs; i++) {
		const struct pdev *zd = &z->devs[i];
		const struct pdev *xd = vec_find(zd, x->devs, x->nr_pdevs, sizeof(*x->devs), pdev_cmp);

		if (xd && (zd->d.creation_time < xd->d.creation_time ||
			   zd->d.snapshotted_time < xd->d.snapshotted_time))
			return WB_TIME;
		if (zd->d.creation_time < x->clock &&
		    (!xd || xd->d.creation_time != zd->d.creation_time ||
		     xd->d.transaction_id != zd->d.transaction_id))
			return WB_MISSING;
	}
	return WB_NONE;
}

/*
 * Whether node n (x's, in use in z) names a child z does not have in use:
 * then z's content at n's block was another (z's nodes name only blocks in
 * use in z), so the block was rewritten after z's commit.
 */
static int names_missing_child(const struct scan *s, const struct snode *n,
			       const struct pstate *z)
{
	if (n->ent == UINT32_MAX)
		return 0;
	for (uint32_t i = 0; i < n->nr; i++) {
		uint64_t c = s->pool[2 * ((size_t)n->ent + i) + 1];

		if (c >= s->nr_blocks || !in_use(z, c))
			return 1;
	}
	return 0;
}

/* The top-level tree of x at b: does one of its nodes that z has in use name a child z lacks? */
static int top_rewritten(const struct scan *s, uint64_t b, const struct pstate *z, int level)
{
	const struct snode *n = repair_scan_node((struct scan *)s, b);

	if (!n || level > BT_MAX_DEPTH)
		return 0;
	if (in_use(z, b) && names_missing_child(s, n, z))
		return 1;
	if (n->flags == BT_LEAF_NODE || n->ent == UINT32_MAX)
		return 0;
	for (uint32_t i = 0; i < n->nr; i++)
		if (top_rewritten(s, s->pool[2 * ((size_t)n->ent + i) + 1], z, level + 1))
			return 1;
	return 0;
}

/*
 * x intact (so every block it marks in use holds its content): a block in
 * use in both whose node in x names a child z lacks was rewritten after
 * z's commit and before x's.
 */
static int rewritten_since(struct thin_repair *rp, const struct pstate *z, const struct pstate *x)
{
	struct scan *s = &rp->scan;

	if (!x->intact)
		return 0;
	for (size_t i = 0; i < s->nr; i++) {
		const struct snode *n = &s->n[i];

		/* internal nodes and data-sm index leaves name blocks; top-level leaves below */
		if ((n->flags == BT_LEAF_NODE && n->vsize != SM_INDEX_ENTRY_SIZE) ||
		    !in_use(x, n->block) || !in_use(z, n->block))
			continue;
		if (names_missing_child(s, n, z))
			return 1;
	}
	return top_rewritten(s, x->top, z, 0);
}

static int direct_older(struct thin_repair *rp, struct pstate *z, struct pstate *x)
{
	int why = repair_older_why(z, x);

	if (why == WB_NONE && rewritten_since(rp, z, x))
		why = WB_REWRITTEN;
	if (why != WB_NONE || pstate_devs(rp, z) < 0 || pstate_devs(rp, x) < 0)
		return why;
	return repair_older_why(z, x);
}

/* Why state z is proven older than state x (WB_*), or WB_NONE. */
static int older(struct thin_repair *rp, size_t z, size_t x)
{
	uint8_t *rel = &rp->pst_rel[z * rp->nr_pst + x];

	if (!*rel) {
		struct pstate *zs = &rp->pst[z], *xs = &rp->pst[x];
		int why = zs->map_exact && xs->map_exact ? direct_older(rp, zs, xs) : WB_NONE;
		*rel = (uint8_t)(1 + why);
	}
	return *rel - 1;
}

/*----------------------------------------------------------------*/
/* The last commit */

/*
 * Whether block b surely holds nothing written after state x's commit:
 * never written by the kernel and in no map, or holding what a state
 * proven older than x wrote (*owner = its index + 1): its space-map index
 * or a bitmap, or any block in use in it when it is intact (its
 * structures account for its map exactly, so every block it marks in use
 * holds its content).
 */
static int not_written_after(const struct repair_last_ctx *c, size_t x, uint64_t b,
			     size_t *owner)
{
	*owner = 0;
	if (!repair_bit_get(c->sig, b) && !repair_bit_get(c->ioerr, b) &&
	    !repair_bit_get(c->inuse_any, b))
		return 1;
	if (c->owned_any && !repair_bit_get(c->owned_any, b))
		return 0;   /* no state holds it */
	for (size_t z = 0; z < c->nr; z++) {
		const struct pstate *zs = &c->st[z];

		if (z == x || !zs->map_exact ||
		    !(is_sm_block(zs, b) || (zs->intact && in_use(zs, b) && c->parents &&
					     repair_bit_get(c->parents, b))))
			continue;
		if (c->older(c->ctx, z, x)) {
			*owner = z + 1;
			return 1;
		}
	}
	return 0;
}

/* The state whose index block is b (states are in block order), or c->nr. */
static size_t state_at(const struct repair_last_ctx *c, uint64_t b)
{
	size_t lo = 0, hi = c->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->st[mid].index_block == b)
			return mid;
		if (c->st[mid].index_block < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return c->nr;
}

/* A block above st's space map that st had free and nothing ever wrote. */
static int never_written_above(const struct repair_last_ctx *c, const struct pstate *st)
{
	uint64_t hi = st->index_block;

	for (unsigned i = 0; i < st->nr_bitmaps; i++)
		if (st->bitmaps[i] > hi)
			hi = st->bitmaps[i];
	for (uint64_t b = hi + 1; b < c->nr_blocks; b++)
		if (!repair_bit_get(c->sig, b) && !repair_bit_get(c->ioerr, b) &&
		    !repair_bit_get(c->inuse_any, b))
			return 1;
	return 0;
}

/*
 * Whether state x is proven the last commit (comment on top): one of the
 * two lowest blocks it had free, and every block above its index that it
 * had free, hold nothing written after it.  Returns 1, or 0 with
 * *why_block set to the first block that may have been (0: its map is not
 * exact).  *f1_owner: the state (index + 1) whose space map is in the
 * block that proved it, 0 when that block was never written; *skipped:
 * the lowest free block when the next one proved it, else 0.
 */
int repair_last_commit(const struct repair_last_ctx *c, size_t x, uint64_t *why_block,
		       size_t *f1_owner, uint64_t *skipped)
{
	const struct pstate *st = &c->st[x];
	uint64_t top = c->high_sig > st->max_used ? c->high_sig : st->max_used;
	size_t owner;

	*why_block = 0;
	*f1_owner = 0;
	*skipped = 0;
	if (!st->map_exact)
		return 0;
	for (size_t z = 0; z < c->nr; z++)
		if (c->st[z].max_used > top)
			top = c->st[z].max_used;
	/*
	 * The next commit after the pool was opened again (or after an abort,
	 * or on kernels that reset the cursor on every commit) allocates from
	 * block 0 upwards: the lowest block x had free, and the next one, for
	 * such a commit allocates at least twice (the shadow of a space-map
	 * bitmap, and its new index).  One of the two holding nothing written
	 * after x proves that no such commit followed.
	 */
	for (uint64_t b = 1, first = 0; b <= c->nr_blocks; b++) {
		if (b == c->nr_blocks) {
			if (first) {
				*why_block = first;   /* its only free block: proves nothing */
				return 0;
			}
			break;                        /* none free */
		}
		if (in_use(st, b))
			continue;
		if (not_written_after(c, x, b, &owner)) {
			*f1_owner = owner;
			*skipped = first;
			break;
		}
		if (first) {
			*why_block = first;
			return 0;
		}
		first = b;
	}
	/*
	 * The next commit within the same activation: its blocks are a run of
	 * blocks x had free, upwards from x's last allocation (one of its
	 * space-map blocks), or from the new area when the metadata device
	 * grew, and its index is among them.  A never-written block above x's
	 * space map, which x had free, proves that the allocator has not
	 * passed it since, so it has not wrapped and that index is still
	 * there: every index above x's must be an older state's.  (Blocks
	 * such a commit would have written without committing, or an orphan
	 * tree, are no commit.)  Without such a block, every block above x's
	 * index that x had free must hold nothing newer.
	 */
	if (never_written_above(c, st)) {
		for (size_t i = 0; i < c->nr_smi; i++) {
			uint64_t b = c->smi[i];
			size_t z;

			if (b <= st->index_block)
				continue;
			z = state_at(c, b);
			if (z == c->nr || !c->st[z].map_exact || !c->older(c->ctx, z, x)) {
				*why_block = b;
				return 0;
			}
		}
		return 1;
	}
	/* beyond top: never written */
	for (uint64_t b = st->index_block + 1; b < c->nr_blocks && b <= top; b++) {
		if (in_use(st, b) || not_written_after(c, x, b, &owner))
			continue;
		*why_block = b;
		return 0;
	}
	return 1;
}

static int older_cb(void *ctx, size_t z, size_t x)
{
	return older(ctx, z, x) != WB_NONE;
}

static void prove_last(struct thin_repair *rp, size_t x)
{
	struct scan *s = &rp->scan;
	struct repair_last_ctx c = {
		.st = rp->pst, .nr = rp->nr_pst, .nr_blocks = s->nr_blocks,
		.sig = s->sig, .ioerr = s->ioerr, .inuse_any = rp->inuse_any,
		.high_sig = s->high_sig, .smi = s->smi, .nr_smi = s->nr_smi,
		.owned_any = rp->owned_any, .parents = rp->parents, .older = older_cb, .ctx = rp,
	};
	struct pstate *st = &rp->pst[x];
	size_t owner;

	st->last = (int8_t)repair_last_commit(&c, x, &st->why_block, &owner, &st->f1_skipped);
	st->f1_owner = owner;
}

/*----------------------------------------------------------------*/
/* Decision and candidates */

static const char *why_text(int why)
{
	switch (why) {
	case WB_DATA_SM:
		return "its data space map covers fewer bitmaps, and the data device never shrinks";
	case WB_META_SM:
		return "its metadata space map covers fewer bitmaps, and the metadata device never "
		       "shrinks";
	case WB_OVERWRITE:
		return "its map marks in use a block that now holds this state's space map";
	case WB_TIME:
		return "a device's creation or snapshot time is older in it";
	case WB_MISSING:
		return "a device created before this state's clock is missing or different in it";
	case WB_REWRITTEN:
		return "a block it had in use now holds a node of this state that names blocks it "
		       "did not have";
	}
	return "";
}

static void describe(const struct pstate *st, char *buf, size_t len)
{
	int n = snprintf(buf, len, "mapping root %llu details root %llu (space-map index %llu)",
			 (unsigned long long)st->top, (unsigned long long)st->details,
			 (unsigned long long)st->index_block);

	if (n < 0 || (size_t)n >= len)
		return;
	if (st->top && st->nr_mappings == UINT64_MAX)
		snprintf(buf + n, len - (size_t)n, ": %llu devices, some of their trees unreadable",
			 (unsigned long long)st->nr_devs);
	else if (st->top)
		snprintf(buf + n, len - (size_t)n,
			 ": %llu devices, %llu mappings, newest time %u, highest transaction %llu",
			 (unsigned long long)st->nr_devs, (unsigned long long)st->nr_mappings,
			 st->time > st->dtime ? st->time : st->dtime,
			 (unsigned long long)st->max_tid);
	else
		snprintf(buf + n, len - (size_t)n, ": no top-level mapping tree found");
}

/* What block b holds, for messages. */
static const char *block_text(const struct scan *s, uint64_t b)
{
	if (repair_bit_get(s->ioerr, b))
		return "cannot be read";
	if (s->idx[b])
		return "holds a B-tree node";
	if (repair_bit_get(s->bitmap_ok, b))
		return "holds a space-map bitmap";
	for (size_t i = 0; i < s->nr_smi; i++)
		if (s->smi[i] == b)
			return "holds a space-map index";
	if (repair_bit_get(s->sig, b))
		return "holds a damaged metadata block";
	return "is marked in use by another state";
}

static int add_cand(struct thin_repair *rp, const struct pstate *st, int last, const char *status)
{
	struct thin_repair_candidate *c;
	char d[256];

	if (repair_grow((void **)&rp->cand, &rp->cap_cand, rp->nr_cand, sizeof(*rp->cand)))
		return -ENOMEM;
	c = &rp->cand[rp->nr_cand++];
	memset(c, 0, sizeof(*c));
	c->mapping_root = st->top;
	c->details_root = st->details;
	c->index_block = st->index_block;
	c->last = last;
	describe(st, d, sizeof(d));
	snprintf(c->text, sizeof(c->text), "%s; %s", d, status);
	return 0;
}

static void damage_text(const struct pstate *st, char *buf, size_t len)
{
	if (st->nr_holes)
		snprintf(buf, len, "damaged: %llu block%s it marks in use hold%s nothing readable "
				   "(first %llu)",
			 (unsigned long long)st->nr_holes, st->nr_holes == 1 ? "" : "s",
			 st->nr_holes == 1 ? "s" : "", (unsigned long long)st->first_hole);
	else if (!st->top)
		snprintf(buf, len, "damaged: its top-level mapping tree is not whole");
	else
		snprintf(buf, len, "damaged: its trees are not whole");
}

static size_t *by_position(struct thin_repair *rp)
{
	size_t *o = malloc((rp->nr_pst + 1) * sizeof(*o));

	if (!o)
		return NULL;
	/* the states are in block order: newest first by position */
	for (size_t i = 0; i < rp->nr_pst; i++)
		o[i] = rp->nr_pst - 1 - i;
	return o;
}

/* The last commit is damaged: it first, then the newest whole older ones. */
static int refuse_damaged(struct thin_repair *rp, size_t x, char *msg, size_t msglen)
{
	struct pstate *st = &rp->pst[x];
	size_t *o = by_position(rp), shown = 0;
	char dmg[160];
	int r = 0;

	if (!o)
		return -ENOMEM;
	damage_text(st, dmg, sizeof(dmg));
	snprintf(msg, msglen, "superblock lost: the last commit (space-map index %llu) is %s; "
			      "an older pool state would bring back stale devices and mappings, so "
			      "nothing is chosen: pick one with --override-mapping-root and "
			      "--override-details-root",
		 (unsigned long long)st->index_block, dmg);
	r = add_cand(rp, st, 1, "the last commit, " /* then the damage */ "");
	if (!r)
		snprintf(rp->cand[0].text + strlen(rp->cand[0].text),
			 sizeof(rp->cand[0].text) - strlen(rp->cand[0].text), "%s", dmg);
	for (size_t i = 0; i < rp->nr_pst && !r && shown < 2; i++) {
		const struct pstate *o_st = &rp->pst[o[i]];

		if (o[i] == x || !o_st->whole)
			continue;
		r = add_cand(rp, o_st, 0, "older than the last commit (stale)");
		shown++;
	}
	free(o);
	return r < 0 ? r : -EAGAIN;
}

/*
 * Listing order of the candidates when nothing is proven: proven last
 * first, then damaged states (some of their fields unknown), then newest
 * time, highest transaction id, most mappings and highest space-map index
 * (hints, not evidence: discards and deletions make newer states smaller,
 * and block positions restart on every activation).
 */
static int hint_before(const struct pstate *a, const struct pstate *b)
{
	uint32_t ta = a->time > a->dtime ? a->time : a->dtime;
	uint32_t tb = b->time > b->dtime ? b->time : b->dtime;
	uint64_t ma = a->nr_mappings, mb = b->nr_mappings;

	if ((a->last == 1) != (b->last == 1))
		return a->last == 1;
	/* a damaged state: its own fields are partly unknown; damage hits new blocks */
	if (a->whole != b->whole)
		return !a->whole;
	if (ta != tb)
		return ta > tb;
	if (a->max_tid != b->max_tid)
		return a->max_tid > b->max_tid;
	if (ma != mb)
		return ma > mb;
	return a->index_block > b->index_block;
}

#define MAX_LISTED 12u

static void undecided_status(struct thin_repair *rp, const struct pstate *st, char *status,
			     size_t len)
{
	if (st->last == 1)
		snprintf(status, len, "looks like the last commit");
	else if (st->why_block)
		snprintf(status, len, "not proven the last commit: block %llu, which it had free, %s "
				      "and may have been written later",
			 (unsigned long long)st->why_block, block_text(&rp->scan, st->why_block));
	else
		snprintf(status, len, "not proven the last commit: its space map does not match its "
				      "index");
	if (!st->whole) {
		size_t l = strlen(status);
		char dmg[160];

		damage_text(st, dmg, sizeof(dmg));
		snprintf(status + l, len - l, "; %s", dmg);
	}
}

/* No state (or more than one) is proven the last commit. */
static int refuse_undecided(struct thin_repair *rp, const size_t *lasts, size_t nr_lasts,
			    char *msg, size_t msglen)
{
	size_t n = rp->nr_pst, nr = 0, *o = malloc((n + 1) * sizeof(*o));
	int r = 0;

	if (!o)
		return -ENOMEM;
	/* every state not proven older than another one, in hint order */
	for (size_t i = 0; i < n; i++) {
		int dominated = 0;
		size_t k;

		for (size_t y = 0; y < n && !dominated && n <= 64; y++)
			dominated = y != i && older(rp, i, y);
		if (dominated || (!rp->pst[i].top && rp->pst[i].last != 1))
			continue;
		/* a device created above the live transaction id: not the live state */
		if (rp->o.set_transaction_id && rp->pst[i].max_tid > rp->o.transaction_id)
			continue;
		for (k = nr; k > 0 && hint_before(&rp->pst[i], &rp->pst[o[k - 1]]); k--)
			o[k] = o[k - 1];
		o[k] = i;
		nr++;
	}
	if (nr_lasts > 1)
		snprintf(msg, msglen, "superblock lost: the evidence contradicts itself (the pool "
				      "states at space-map index %llu and %llu both look like the last "
				      "commit): choose one with --override-mapping-root and "
				      "--override-details-root",
			 (unsigned long long)rp->pst[lasts[0]].index_block,
			 (unsigned long long)rp->pst[lasts[1]].index_block);
	else
		snprintf(msg, msglen, "superblock lost: no pool state is proven to be the last "
				      "commit, so none is chosen: pick one with "
				      "--override-mapping-root and --override-details-root (%zu "
				      "candidates not proven older than another; listed newest time, "
				      "highest transaction, most mappings first: a hint, not evidence)",
			 nr);
	for (size_t i = 0; i < nr && i < MAX_LISTED && !r; i++) {
		char status[256];

		undecided_status(rp, &rp->pst[o[i]], status, sizeof(status));
		r = add_cand(rp, &rp->pst[o[i]], 0, status);
	}
	free(o);
	return r < 0 ? r : -EAGAIN;
}

/*
 * A state whose only damage is its top-level root, with a whole details
 * tree naming no device and no mapping tree in use, or its details root,
 * with an empty top-level tree: a pool without devices (the two trees
 * always name the same devices).
 */
static int no_devices(struct thin_repair *rp, const struct pstate *st)
{
	const struct snode *d = st->details ? repair_scan_node(&rp->scan, st->details) : NULL;

	const struct snode *t = st->top ? repair_scan_node(&rp->scan, st->top) : NULL;

	if (st->nr_holes != 1 || !st->dsm)
		return 0;
	if (!st->top && !st->nr_v8 && d && d->d.state == S_VALID && !d->d.devs)
		return 1;   /* the top-level root lost, the details name no device */
	return !st->details && t && t->flags == BT_LEAF_NODE && !t->nr && st->nr_v8 == 1;
}

/*
 * Superblock lost: the live pool state.  Returns 0 (roots set; rp->msm is
 * the state's map; a note says which evidence decided), -ENOENT (no pool
 * state found), -EAGAIN (refused: msg and rp->cand say why) or -errno.
 */
int repair_choose_state(struct thin_repair *rp, uint64_t *mroot, uint64_t *droot, char *msg,
			size_t msglen)
{
	size_t lasts[2], nr_lasts = 0;
	struct pstate *st;
	char d[256], f1[400], low[64];
	int r;

	r = repair_pstates_build(rp);
	if (r < 0)
		return r;
	if (!rp->nr_pst)
		return -ENOENT;
	for (size_t x = 0; x < rp->nr_pst; x++) {
		prove_last(rp, x);
		if (rp->pst[x].last == 1 && nr_lasts++ < 2)
			lasts[nr_lasts - 1] = x;
	}
	if (nr_lasts != 1)
		return refuse_undecided(rp, lasts, nr_lasts, msg, msglen);
	st = &rp->pst[lasts[0]];
	if (rp->o.set_transaction_id && st->max_tid > rp->o.transaction_id) {
		snprintf(msg, msglen, "superblock lost: the last commit (space-map index %llu) holds a "
				      "device created at transaction %llu, above --transaction-id %llu: "
				      "the id given is wrong, or the metadata is not this pool's",
			 (unsigned long long)st->index_block, (unsigned long long)st->max_tid,
			 (unsigned long long)rp->o.transaction_id);
		return -EINVAL;
	}
	if (!st->whole && no_devices(rp, st)) {
		/* its details name no device: the top-level tree was empty too */
		rp->chosen = lasts[0] + 1;
		rp->no_devices = 1;
		*mroot = 0;
		*droot = st->details;
		repair_note(&rp->notes, "superblock lost: pool state at space-map index %llu is the last "
					"commit; its %s tree is unreadable, but the other names no device, so "
					"the pool has none",
			    (unsigned long long)st->index_block, st->top ? "details" : "top-level");
		return 0;
	}
	if (!st->whole)
		return refuse_damaged(rp, lasts[0], msg, msglen);
	rp->chosen = lasts[0] + 1;
	/* the superblock's time and data size from the summaries: no walk */
	rp->max_time_seen = st->time > st->dtime ? st->time : st->dtime;
	rp->max_data_seen = repair_scan_node(&rp->scan, st->top)->t.max_data;
	rp->max_known = 1;
	*mroot = st->top;
	*droot = st->details;
	describe(st, d, sizeof(d));
	if (st->f1_skipped)
		snprintf(low, sizeof(low), "the next block it had free after block %llu",
			 (unsigned long long)st->f1_skipped);
	else
		snprintf(low, sizeof(low), "the lowest block it had free");
	if (st->f1_owner) {
		const struct pstate *z = &rp->pst[st->f1_owner - 1];
		snprintf(f1, sizeof(f1), "%s holds the space map of an older state (index %llu: %s)",
			 low, (unsigned long long)z->index_block,
			 why_text(older(rp, st->f1_owner - 1, lasts[0])));
	} else {
		snprintf(f1, sizeof(f1), "%s was never written", low);
	}
	repair_note(&rp->notes, "superblock lost: pool state %s is the last commit: no block it had "
				"free was written since (%s; none above its index was)",
		    d, f1);
	return 0;
}

/* The map of the state whose index block is ib, as rp->msm (liveness, salvage). */
int repair_state_msm(struct thin_repair *rp, uint64_t ib)
{
	struct scan *s = &rp->scan;
	struct pstate tmp_st;
	uint8_t *counts = malloc(s->nr_blocks + 1), *tmp = malloc(SM_ENTRIES_PER_BITMAP);
	int r = -ENOMEM;

	memset(&tmp_st, 0, sizeof(tmp_st));
	if (!counts || !tmp)
		goto out;
	r = pstate_map(rp, ib, counts, tmp, &tmp_st);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	rp->msm = rcmap_create(s->nr_blocks);
	if (!rp->msm)
		goto out;
	for (uint64_t b = 0; b < s->nr_blocks; b++)
		if (counts[b])
			rcmap_set(rp->msm, b, counts[b]);
	r = 0;
out:
	free(tmp_st.bitmaps);
	free(counts);
	free(tmp);
	return r;
}

/*
 * No pool state found at all (no committed space map survived): the
 * newest-looking trees, as the one candidate, for the admin to judge.
 */
int repair_refuse_no_state(struct thin_repair *rp, uint64_t mroot, uint64_t droot, char *msg,
			   size_t msglen)
{
	struct pstate st;
	struct snode *t = repair_scan_node(&rp->scan, mroot);
	struct snode *d = droot ? repair_scan_node(&rp->scan, droot) : NULL;
	int r;

	memset(&st, 0, sizeof(st));
	st.top = mroot;
	st.details = droot;
	if (t) {
		st.nr_devs = t->t.devs;
		st.nr_mappings = t->t.count;
		st.time = t->t.time;
	}
	if (d) {
		st.dtime = d->d.time;
		st.max_tid = d->d.max_data;
	}
	snprintf(msg, msglen, "superblock lost and no committed space map found: nothing on the disk "
			      "tells the live trees from stale ones, so none are chosen: pick them with "
			      "--override-mapping-root and --override-details-root");
	r = add_cand(rp, &st, 0, "the newest-looking trees (mapping times and counts are only a "
				 "hint)");
	if (!r)
		rp->cand[0].index_block = 0;
	return r < 0 ? r : -EAGAIN;
}

size_t thin_repair_nr_candidates(const struct thin_repair *rp)
{
	return rp ? rp->nr_cand : 0;
}

const struct thin_repair_candidate *thin_repair_candidate(const struct thin_repair *rp, size_t i)
{
	return rp && i < rp->nr_cand ? &rp->cand[i] : NULL;
}
