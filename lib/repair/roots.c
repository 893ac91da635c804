#include "repair/repair.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repair/repair-internal.h"
#include "util/vec.h"

/*----------------------------------------------------------------*/
/* Device tables: the details and top-level trees read whole */

static void table_leaf(void *ctx, uint64_t block)
{
	struct table_walk *t = ctx;

	if (t->rp->msm && rcmap_get(t->rp->msm, block) == 0)
		t->nr_free++;
}

static int table_entry(void *ctx, uint64_t id, const struct thin_details *details, uint64_t root)
{
	struct table_walk *t = ctx;
	struct rdev *d;

	if (repair_grow((void **)&t->devs, &t->cap, t->nr, sizeof(*t->devs)))
		return -ENOMEM;
	d = &t->devs[t->nr++];
	memset(d, 0, sizeof(*d));
	d->id = id;
	if (details) {
		d->has_details = 1;
		d->d = *details;
	} else {
		d->root = root;
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
	repair_ranges_add(&t->lost, lo, hi);
}

int repair_read_table(struct thin_repair *rp, uint64_t root, int details, struct table_walk *t)
{
	static const struct thin_table_ops ops = {
		.entry = table_entry, .leaf = table_leaf, .damage = table_damage,
	};
	int r;

	memset(t, 0, sizeof(*t));
	t->rp = rp;
	t->details = details;
	if (root >= bc_nr_blocks(rp->md->bc)) {
		t->damaged = 1;
		return repair_ranges_add(&t->lost, 0, UINT64_MAX);
	}
	r = thin_read_table(rp->md->bc, root, details, &ops, t);
	return r < 0 ? r : 0;
}

void repair_table_release(struct table_walk *t)
{
	free(t->devs);
	free(t->lost.r);
}

/*
 * Structure walk of one device's tree: internal nodes only (leaves are
 * recognised by depth and not read).  Counts the references it sees into
 * rp->expected, records lost key ranges, counts referenced blocks that
 * the space map says are free.  A fault of any level loses the node's keys.
 *
 * A shared internal node is walked (and its children counted) once; when
 * damage lies beneath it, every later device referencing it walks it
 * again, without counting, so that each records the lost range.
 */
struct swalk {
	struct thin_repair *rp;
	struct ranges *lost;    /* NULL: just count */
	uint64_t nr_free;
};

static int swalk_child(void *ctx, uint64_t b, int again)
{
	struct swalk *w = ctx;
	struct thin_repair *rp = w->rp;

	if (!again && rp->expected && b < rcmap_nr_blocks(rp->expected))
		rcmap_inc(rp->expected, b);
	if (!again && rp->msm && b < rcmap_nr_blocks(rp->msm) && rcmap_get(rp->msm, b) == 0)
		w->nr_free++;
	if (b >= bc_nr_blocks(rp->md->bc) || !repair_bit_get(rp->visited, b))
		return BT_CHILD_ENTER;
	if (!repair_bit_get(rp->dmg_below, b) || !w->lost)
		return BT_CHILD_SKIP;
	return BT_CHILD_AGAIN;  /* counted by the first walk: only the lost ranges */
}

static void swalk_leave(void *ctx, uint64_t b, int damaged)
{
	struct swalk *w = ctx;

	repair_bit_set(w->rp->visited, b);
	if (damaged)
		repair_bit_set(w->rp->dmg_below, b);
}

static int swalk_leaf(void *ctx, uint64_t b, uint64_t lo, uint64_t hi)
{
	(void)ctx, (void)b, (void)lo, (void)hi;
	return 0;
}

static void swalk_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t b,
			 uint64_t lo, uint64_t hi, const char *msg)
{
	struct swalk *w = ctx;

	(void)level, (void)code, (void)b, (void)msg;
	if (w->lost)
		repair_ranges_add(w->lost, lo, hi);
}

uint64_t repair_swalk_device(struct thin_repair *rp, uint64_t root, struct ranges *lost)
{
	static const struct bt_walk_ops ops = {
		.damage = swalk_damage, .child = swalk_child, .leave = swalk_leave,
		.defer_leaf = swalk_leaf, .flags = BT_WALK_STRICT,
	};
	struct swalk w = { .rp = rp, .lost = lost };
	struct bt_source src = bt_source_bc(rp->md->bc);
	int c = swalk_child(&w, root, 0);

	if (c != BT_CHILD_SKIP)
		bt_walk_keys(&src, root, 0, UINT64_MAX, c == BT_CHILD_AGAIN, THIN_MAPPING_VSIZE,
			     &ops, &w);
	return w.nr_free;
}

int repair_rdev_cmp(const void *a, const void *b)
{
	const struct rdev *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

void repair_devs_release(struct thin_repair *rp)
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
int64_t repair_load_roots(struct thin_repair *rp, uint64_t mroot, uint64_t droot, int *damaged,
			  int record)
{
	struct table_walk top, det;
	int64_t nr_free = 0;
	int r;
	size_t j = 0;

	repair_devs_release(rp);
	*damaged = 0;
	r = repair_read_table(rp, mroot, 0, &top);
	if (!r)
		r = repair_read_table(rp, droot, 1, &det);
	else
		memset(&det, 0, sizeof(det));
	if (r < 0)
		goto out;
	*damaged = top.damaged || det.damaged;
	nr_free = (int64_t)(top.nr_free + det.nr_free);
	if (record && top.damaged)
		for (size_t i = 0; i < top.lost.nr; i++)
			repair_note(&rp->notes, "top-level mapping tree damaged: devices with ids in "
					     "[%llu, %llu) are lost",
				 (unsigned long long)top.lost.r[i].lo,
				 (unsigned long long)top.lost.r[i].hi);
	rp->devs = top.devs;
	rp->nr_devs = rp->cap_devs = top.nr;
	rp->cap_devs = top.cap;
	top.devs = NULL;
	if (det.nr)
		vec_sort(det.devs, det.nr, sizeof(*det.devs), repair_rdev_cmp);
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
	repair_table_release(&top);
	repair_table_release(&det);
	return r < 0 ? r : nr_free;
}

int repair_sb_usable(const struct thin_md *md)
{
	return md->sb_err == 0 && md->sb.magic == THIN_MAGIC;
}

void repair_load_msm(struct thin_repair *rp)
{
	struct thin_md *md = rp->md;
	struct rcmap *sm;

	if (!repair_sb_usable(md) || md->sb.metadata_sm.nr_blocks == 0 ||
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
		repair_note(&rp->notes, "metadata space map unusable: orphan leaves cannot be "
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

int repair_do_scan(struct thin_repair *rp)
{
	int r;

	if (rp->scanned)
		return 0;
	r = repair_scan_run(rp->md->ioe, bc_nr_blocks(rp->md->bc), &rp->scan);
	if (r < 0)
		return r;
	rp->scanned = 1;
	return 0;
}

/* Root finding over the scan.  Returns 0 (roots set; droot may be 0: none) or -ENOENT. */
int repair_find_roots(struct thin_repair *rp, uint64_t *mroot, uint64_t *droot)
{
	struct summ_ctx c = { .s = &rp->scan, .msm = rp->msm };
	struct snode **tops = NULL, **dets = NULL;
	size_t nt = 0, nd = 0;
	int r = -ENOENT;

	for (size_t i = 0; i < rp->scan.nr; i++) {
		repair_summarise(&c, &rp->scan.n[i], K_TOP, 0);
		repair_summarise(&c, &rp->scan.n[i], K_DETAILS, 0);
	}
	/* a metadata snapshot's trees are older than the live ones */
	for (size_t i = 0; i < rp->scan.nr_sbc; i++) {
		struct snode *n;

		if ((n = repair_scan_node(&rp->scan, rp->scan.sbc[i].mroot)))
			n->held = 1;
		if ((n = repair_scan_node(&rp->scan, rp->scan.sbc[i].droot)))
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
		vec_sort(tops, nt, sizeof(*tops), cand_top_cmp);
	if (nd)
		vec_sort(dets, nd, sizeof(*dets), cand_det_cmp);
	repair_note(&rp->notes, "scanned %llu metadata blocks: %zu valid nodes, %zu mapping tree "
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
		repair_note(&rp->notes, "found %zu mapping trees without device details", nt);
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
		struct snode *t = repair_scan_node(&rp->scan, *mroot);
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
/* Whole mapping trees in memory (tree matching) */


static int kvs_leaf(void *ctx, const struct bt_node *n)
{
	struct kvs *k = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		if (repair_grow((void **)&k->kv, &k->cap, k->n, sizeof(*k->kv)))
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
int repair_kvs_load(struct thin_repair *rp, uint64_t root, struct kvs *k)
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

void repair_kvs_release(struct kvs *k)
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
int repair_kvs_older_in(const struct kvs *l, const struct kvs *x, uint32_t tau)
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
