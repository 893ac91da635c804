#include "repair/repair.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repair/repair-internal.h"

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
 * mapping older than tau that X lacks (repair_kvs_older_in).  A state that names
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
	r = repair_collect_states(rp, counts, &st, &nst);
	if (r < 0)
		goto out;
	if (nst)
		qsort(st, nst, sizeof(*st), repair_state_newest_first);
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
		if (repair_read_table(rp, st[si].mroot, 0, &top) < 0) {
			repair_table_release(&top);
			continue;
		}
		if (repair_read_table(rp, st[si].droot, 1, &sdet) < 0 || top.damaged || sdet.damaged) {
			repair_table_release(&top);
			repair_table_release(&sdet);
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
			r = repair_kvs_load(rp, x->root, xk);
			if (r < 0) {
				repair_kvs_release(&tmp);
				goto out_tables;
			}
			for (size_t t = 0; t < nt && !xk->damaged; t++) {
				if (!cand[i * nt + t] || trees[t].root == x->root)
					continue;
				r = repair_kvs_load(rp, trees[t].root, &cache[t]);
				if (r < 0) {
					repair_kvs_release(&tmp);
					goto out_tables;
				}
				if (!repair_kvs_older_in(&cache[t], xk, tau)) {
					cand[i * nt + t] = 0;
					struck++;
				}
			}
			repair_kvs_release(&tmp);
			if (!row_count(cand, nt, i))
				bad = 1;
		}
		if (bad) {
			memcpy(cand, save, nd * nt);
			repair_note(&rp->notes, "older pool state (mapping root %llu) does not fit the "
					     "live devices: not used",
				 (unsigned long long)st[si].mroot);
		} else if (struck) {
			repair_note(&rp->notes, "older pool state (mapping root %llu, time %u) rules out "
					     "%zu candidate trees",
				 (unsigned long long)st[si].mroot, tau, struck);
		}
		r = 0;
out_tables:
		repair_table_release(&top);
		repair_table_release(&sdet);
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
		if (repair_grow((void **)excl, cap, *nr, sizeof(**excl)))
			return -ENOMEM;
		(*excl)[(*nr)++] = key;
	}
	return 0;
}

int repair_u64_cmp(const void *a, const void *b)
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
		r = repair_kvs_load(rp, trees[t].root, &cache[t]);
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
		qsort(d->excl, d->nr_excl, sizeof(*d->excl), repair_u64_cmp);
	for (size_t i = 0; i < d->nr_excl; i++)
		if (!k || d->excl[k - 1] != d->excl[i])
			d->excl[k++] = d->excl[i];
	d->nr_excl = k;
	for (size_t i = 0; i < cache[first].n; i++)
		kept += !bsearch(&cache[first].kv[i].key, d->excl, d->nr_excl, sizeof(*d->excl),
				 repair_u64_cmp);
	if (!kept)
		return -ENODATA;   /* nothing in common: lost */
	len = snprintf(roots, sizeof(roots), "%llu", (unsigned long long)d->root);
	for (size_t i = 0; i < d->nr_alt && len > 0 && (size_t)len < sizeof(roots); i++)
		len += snprintf(roots + len, sizeof(roots) - (size_t)len, "%s%llu",
				i + 1 == d->nr_alt ? " and " : ", ", (unsigned long long)d->alt[i]);
	repair_note(&rp->notes, "device %llu: %zu mapping trees fit (roots %s): the %zu mappings they "
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
int repair_rebuild_top(struct thin_repair *rp)
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

	if (!rp->msm || !repair_sb_usable(rp->md))
		return -ENOENT;
	r = repair_read_table(rp, rp->md->sb.device_details_root, 1, &det);
	if (r < 0 || det.damaged || !det.nr) {
		repair_table_release(&det);
		return -ENOENT;
	}
	for (size_t i = 0; i < rp->scan.nr; i++)
		repair_summarise(&c, &rp->scan.n[i], K_MAP, 0);
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
			struct snode *h = repair_scan_node(&rp->scan, rp->scan.sbc[k].mroot);
			if (h && refs && repair_top_names_root(&rp->scan, h, n->block, 0))
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
			repair_note(&rp->notes, "device %llu: no unique mapping tree with %llu mappings: "
					     "lost",
				 (unsigned long long)det.devs[j].id,
				 (unsigned long long)det.devs[j].d.mapped_blocks);
		}
	}
	if (!found && !shared) {
		r = -ENOENT;
		goto out;
	}
	repair_devs_release(rp);
	rp->devs = devs;
	devs = NULL;
	rp->nr_devs = rp->cap_devs = det.nr;
	repair_note(&rp->notes, "top-level mapping tree lost: rebuilt from %zu of %zu orphan device "
			     "trees matched by mapped_blocks",
		 found, det.nr);
	if (shared)
		repair_note(&rp->notes, "%zu devices keep the mappings their candidate trees share",
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
			repair_kvs_release(&cache[t]);
	free(cache);
	free(cand);
	free(devs);
	free(mdevs);
	free(assign);
	free(trees);
	repair_table_release(&det);
	return r;
}
