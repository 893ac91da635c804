#include "repair/repair-internal.h"

#include <errno.h>
#include <stdlib.h>

static int key_cmp(const struct repair_state *a, const struct repair_state *b)
{
	if (a->time != b->time)
		return a->time > b->time ? 1 : -1;
	if (a->tid != b->tid)
		return a->tid > b->tid ? 1 : -1;
	if (a->dtime != b->dtime)
		return a->dtime > b->dtime ? 1 : -1;
	return 0;
}

int repair_pick_state(const struct repair_state *s, size_t n, size_t *pick, size_t *nr_tied)
{
	size_t best = 0, tied = 0;

	*nr_tied = 0;
	if (!n)
		return -ENOENT;
	for (size_t i = 1; i < n; i++)
		if (key_cmp(&s[i], &s[best]) > 0)
			best = i;
	/* distinct root pairs with the best key */
	for (size_t i = 0; i < n; i++) {
		int seen = 0;

		if (key_cmp(&s[i], &s[best]))
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = !key_cmp(&s[j], &s[best]) && s[j].mroot == s[i].mroot &&
			       s[j].droot == s[i].droot;
		if (!seen)
			tied++;
	}
	*nr_tied = tied;
	*pick = best;
	return tied > 1 ? -EAGAIN : 0;
}

static int fits(const struct repair_mdev *d, const struct repair_mtree *t, uint32_t sb_time)
{
	if (t->count != d->mapped_blocks)
		return 0;
	/* no mapping can be newer than the pool's clock */
	if (t->max_time > sb_time)
		return 0;
	return 1;
}

void repair_match_candidates(const struct repair_mdev *devs, size_t nd,
			     const struct repair_mtree *trees, size_t nt, uint32_t sb_time,
			     uint8_t *cand)
{
	for (size_t i = 0; i < nd; i++)
		for (size_t t = 0; t < nt; t++)
			cand[i * nt + t] = (uint8_t)fits(&devs[i], &trees[t], sb_time);
}

static size_t uf_find(size_t *p, size_t x)
{
	while (p[x] != x) {
		p[x] = p[p[x]];
		x = p[x];
	}
	return x;
}

/*
 * Per component of the device/tree candidate graph: every device's tree
 * fits it (its count is the device's mapped_blocks), and every reference
 * to a live root comes from one device, so the roots' references must add
 * up to the number of devices; otherwise some device's tree is missing
 * (damaged) or a count is wrong, and nothing in the component is trusted.
 * Then a device with one candidate takes it; a tree whose references are
 * all taken that way is nobody else's (repeated until nothing changes).
 */
size_t repair_match_resolve(const struct repair_mdev *devs, size_t nd,
			    const struct repair_mtree *trees, size_t nt, uint8_t *cand,
			    long *assign)
{
	size_t *p = malloc((nd + nt + 1) * sizeof(*p));
	uint64_t *refs = calloc(nd + nt + 1, sizeof(*refs));
	uint64_t *ndev = calloc(nd + nt + 1, sizeof(*ndev));
	uint64_t *cap = calloc(nt + 1, sizeof(*cap));
	uint8_t *bad = calloc(nd + nt + 1, 1);
	size_t matched = 0;
	int changed;

	(void)devs;
	for (size_t i = 0; i < nd; i++)
		assign[i] = REPAIR_LOST;
	if (!p || !refs || !ndev || !cap || !bad)
		goto out;
	for (size_t x = 0; x < nd + nt; x++)
		p[x] = x;
	for (size_t i = 0; i < nd; i++)
		for (size_t t = 0; t < nt; t++)
			if (cand[i * nt + t]) {
				size_t a = uf_find(p, i), b = uf_find(p, nd + t);
				if (a != b)
					p[a] = b;
			}
	for (size_t i = 0; i < nd; i++)
		ndev[uf_find(p, i)]++;
	for (size_t t = 0; t < nt; t++) {
		refs[uf_find(p, nd + t)] += trees[t].refs ? trees[t].refs : 1;
		cap[t] = trees[t].refs ? trees[t].refs : 1;
	}
	for (size_t i = 0; i < nd; i++) {
		size_t c = uf_find(p, i);
		int any = 0;

		for (size_t t = 0; t < nt && !any; t++)
			any = cand[i * nt + t];
		if (!any || refs[c] != ndev[c])
			bad[c] = 1;
	}
	for (size_t i = 0; i < nd; i++)
		if (!bad[uf_find(p, i)])
			assign[i] = REPAIR_AMBIGUOUS;
	do {
		changed = 0;
		for (size_t i = 0; i < nd; i++) {
			long one = -1;
			size_t hits = 0;

			if (assign[i] != REPAIR_AMBIGUOUS)
				continue;
			for (size_t t = 0; t < nt; t++)
				if (cand[i * nt + t]) {
					hits++;
					one = (long)t;
				}
			if (hits == 0 || (hits == 1 && cap[one] == 0)) {
				bad[uf_find(p, i)] = 1;
				continue;
			}
			if (hits != 1)
				continue;
			assign[i] = one;
			cap[one]--;
			changed = 1;
			if (cap[one])
				continue;
			for (size_t j = 0; j < nd; j++)
				if (assign[j] == REPAIR_AMBIGUOUS)
					cand[j * nt + (size_t)one] = 0;
		}
	} while (changed);
	/* a reference nobody left can take: the counts do not add up */
	for (size_t t = 0; t < nt; t++) {
		size_t takers = 0;

		if (!cap[t])
			continue;
		for (size_t i = 0; i < nd; i++)
			takers += assign[i] == REPAIR_AMBIGUOUS && cand[i * nt + t];
		if (takers < cap[t])
			bad[uf_find(p, nd + t)] = 1;
	}
	for (size_t i = 0; i < nd; i++) {
		if (bad[uf_find(p, i)])
			assign[i] = REPAIR_LOST;
		else if (assign[i] >= 0)
			matched++;
	}
out:
	free(p);
	free(refs);
	free(ndev);
	free(cap);
	free(bad);
	return matched;
}

size_t repair_match_trees(const struct repair_mdev *devs, size_t nd,
			  const struct repair_mtree *trees, size_t nt, uint32_t sb_time,
			  long *assign)
{
	uint8_t *cand = calloc(nd * nt + 1, 1);
	size_t matched;

	if (!cand) {
		for (size_t i = 0; i < nd; i++)
			assign[i] = REPAIR_LOST;
		return 0;
	}
	repair_match_candidates(devs, nd, trees, nt, sb_time, cand);
	matched = repair_match_resolve(devs, nd, trees, nt, cand, assign);
	for (size_t i = 0; i < nd; i++)
		if (assign[i] < 0)
			assign[i] = REPAIR_LOST;
	free(cand);
	return matched;
}
