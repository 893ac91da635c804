#include "refcount/refcount.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------*/
/* in-core counting map */

struct ov_entry {
	uint64_t block;
	uint32_t count;
};

struct rcmap {
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint8_t *counts;
	/* open-addressing table for counts >= 255 */
	struct ov_entry *ov;
	size_t ov_cap, ov_nr;
};

struct rcmap *rcmap_create(uint64_t nr_blocks)
{
	struct rcmap *sm = calloc(1, sizeof(*sm));

	if (!sm)
		return NULL;
	sm->nr_blocks = nr_blocks;
	sm->counts = calloc(nr_blocks ? nr_blocks : 1, 1);
	if (!sm->counts) {
		free(sm);
		return NULL;
	}
	return sm;
}

void rcmap_destroy(struct rcmap *sm)
{
	if (!sm)
		return;
	free(sm->counts);
	free(sm->ov);
	free(sm);
}

uint64_t rcmap_nr_blocks(const struct rcmap *sm)
{
	return sm->nr_blocks;
}

const uint8_t *rcmap_bytes(const struct rcmap *sm)
{
	return sm->counts;
}

static size_t ov_slot(const struct rcmap *sm, uint64_t b)
{
	size_t i = (size_t)((b * 0x9E3779B97F4A7C15ull) >> 17) & (sm->ov_cap - 1);

	while (sm->ov[i].count && sm->ov[i].block != b)
		i = (i + 1) & (sm->ov_cap - 1);
	return i;
}

static int ov_grow(struct rcmap *sm)
{
	size_t cap = sm->ov_cap ? sm->ov_cap * 2 : 64;
	struct ov_entry *old = sm->ov, *n = calloc(cap, sizeof(*n));
	size_t old_cap = sm->ov_cap;

	if (!n)
		return -ENOMEM;
	sm->ov = n;
	sm->ov_cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].count)
			sm->ov[ov_slot(sm, old[i].block)] = old[i];
	free(old);
	return 0;
}

uint32_t rcmap_get(const struct rcmap *sm, uint64_t b)
{
	if (b >= sm->nr_blocks)
		return 0;
	if (sm->counts[b] < 255)
		return sm->counts[b];
	return sm->ov[ov_slot(sm, b)].count;
}

int rcmap_set(struct rcmap *sm, uint64_t b, uint32_t count)
{
	uint32_t old;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	old = rcmap_get(sm, b);
	if (old && !count)
		sm->nr_allocated--;
	else if (!old && count)
		sm->nr_allocated++;
	if (count < 255) {
		if (sm->counts[b] == 255) {
			/* keep the tombstone-free table: store 255 sentinel as count 0
			 * is impossible, so rebuild the slot chain by reinserting */
			size_t i = ov_slot(sm, b);
			sm->ov[i].count = 0;
			sm->ov_nr--;
			/* re-insert following entries of the cluster */
			for (size_t j = (i + 1) & (sm->ov_cap - 1); sm->ov[j].count;
			     j = (j + 1) & (sm->ov_cap - 1)) {
				struct ov_entry e = sm->ov[j];
				sm->ov[j].count = 0;
				sm->ov[ov_slot(sm, e.block)] = e;
			}
		}
		sm->counts[b] = (uint8_t)count;
		return 0;
	}
	if (sm->counts[b] != 255) {
		if ((sm->ov_nr + 1) * 2 > sm->ov_cap && ov_grow(sm) < 0)
			return -ENOMEM;
		sm->ov_nr++;
		sm->counts[b] = 255;
	}
	{
		size_t i = ov_slot(sm, b);
		sm->ov[i].block = b;
		sm->ov[i].count = count;
	}
	return 0;
}

int rcmap_inc(struct rcmap *sm, uint64_t b)
{
	if (b >= sm->nr_blocks)
		return -EINVAL;
	if (sm->counts[b] < 254) {
		if (!sm->counts[b])
			sm->nr_allocated++;
		sm->counts[b]++;
		return 0;
	}
	{
		uint32_t c = rcmap_get(sm, b);
		if (c == UINT32_MAX)
			return -EOVERFLOW;
		return rcmap_set(sm, b, c + 1);
	}
}

int rcmap_dec(struct rcmap *sm, uint64_t b)
{
	uint32_t c;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	c = rcmap_get(sm, b);
	if (!c)
		return -EINVAL;
	return rcmap_set(sm, b, c - 1);
}

uint64_t rcmap_nr_allocated(const struct rcmap *sm)
{
	return sm->nr_allocated;
}

uint64_t rcmap_find_free(const struct rcmap *sm, uint64_t from)
{
	const uint8_t *p;

	if (from >= sm->nr_blocks)
		return UINT64_MAX;
	p = memchr(sm->counts + from, 0, sm->nr_blocks - from);
	return p ? (uint64_t)(p - sm->counts) : UINT64_MAX;
}

