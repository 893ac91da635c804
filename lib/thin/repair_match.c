#include "thin/repair_internal.h"

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

size_t repair_match_trees(const struct repair_mdev *devs, size_t nd,
			  const struct repair_mtree *trees, size_t nt, uint32_t sb_time,
			  long *assign)
{
	size_t matched = 0;

	for (size_t i = 0; i < nd; i++) {
		long pick = -1;
		size_t hits = 0;

		for (size_t t = 0; t < nt; t++) {
			if (!fits(&devs[i], &trees[t], sb_time))
				continue;
			hits++;
			pick = (long)t;
		}
		assign[i] = hits == 1 ? pick : -1;
	}
	/*
	 * A tree claimed by more devices than it has references belongs to
	 * some of them only, and nothing says which: none gets it.  (Devices
	 * with equal counts see the same candidates: two candidate trees fail
	 * the uniqueness test above, one tree is shared only if counted so.)
	 */
	for (size_t t = 0; t < nt; t++) {
		size_t claims = 0;

		for (size_t i = 0; i < nd; i++)
			claims += assign[i] == (long)t;
		if (claims > (trees[t].refs ? trees[t].refs : 1))
			for (size_t i = 0; i < nd; i++)
				if (assign[i] == (long)t)
					assign[i] = -1;
	}
	for (size_t i = 0; i < nd; i++)
		matched += assign[i] >= 0;
	return matched;
}
