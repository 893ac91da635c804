#include "repair/repair.h"

#include <errno.h>
#include <stdlib.h>

#include "repair/repair-internal.h"

static int salv_cmp_ctx_first(struct scan *s, uint64_t a, uint64_t b)
{
	uint64_t fa = repair_scan_node(s, a)->first, fb = repair_scan_node(s, b)->first;
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
int64_t repair_structure_walk(struct thin_repair *rp)
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
		nr_free += (int64_t)repair_swalk_device(rp, rp->devs[i].root, &rp->devs[i].lost);
		/* the other candidates are live roots too: their nodes are not orphans */
		for (size_t k = 0; k < rp->devs[i].nr_alt; k++)
			repair_swalk_device(rp, rp->devs[i].alt[k], NULL);
	}
	return nr_free;
}

int repair_plan_salvage(struct thin_repair *rp)
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
	if (rp->md->sb.held_root && repair_sb_usable(rp->md) &&
	    rp->md->sb.held_root < nr_blocks) {
		struct thin_sb snap;
		if (thin_sb_read(rp->md->bc, rp->md->sb.held_root, &snap) == 0) {
			struct table_walk t;
			if (repair_read_table(rp, snap.data_mapping_root, 0, &t) == 0)
				for (size_t i = 0; i < t.nr; i++)
					repair_swalk_device(rp, t.devs[i].root, NULL);
			repair_table_release(&t);
		}
	}
	r = repair_do_scan(rp);
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
			repair_note(&rp->notes, "orphan leaf %llu (virtual blocks %llu..%llu) fits %zu "
					     "damaged devices: not attributed",
				 (unsigned long long)n->block, (unsigned long long)n->first,
				 (unsigned long long)n->last, cover);
			continue;
		}
		for (size_t j = 0; j < rp->nr_devs; j++) {
			struct rdev *d = &rp->devs[j];
			if (!range_covers(&d->lost, n->first, n->last))
				continue;
			if (repair_grow((void **)&d->salv, &d->cap_salv, d->nr_salv, sizeof(*d->salv)))
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
			if (k && repair_scan_node(&rp->scan, d->salv[i])->first <=
					 repair_scan_node(&rp->scan, d->salv[k - 1])->last) {
				repair_note(&rp->notes, "device %llu: orphan leaf %llu overlaps leaf "
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
			repair_note(&rp->notes, "device %llu: %zu orphan leaves salvaged",
				 (unsigned long long)d->id, k);
		}
	}
	return 0;
}
