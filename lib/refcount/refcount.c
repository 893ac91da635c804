#include "refcount/refcount.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------*/
/*
 * In-core counting map, compact and sparse.  The blocks are cut into
 * regions of RC_REGION blocks, allocated on the first non-zero count:
 * memory follows the blocks in use, not the size of the pool (a pool of
 * 2^40 data blocks costs a 16 MiB directory until it is used).
 * A region starts packed, 2 bits per block (counts 0..2, 3 = "more"); the
 * first count above 2 in it turns it into a byte per block (0..254, 255 =
 * look in the side table), which holds the rare counts above 254.
 */

#define RC_REGION_SHIFT 20
#define RC_REGION (1ull << RC_REGION_SHIFT)
#define RC_MASK (RC_REGION - 1)

struct ov_entry {
	uint64_t block;
	uint32_t count;
};

struct region {
	uint8_t *packed;      /* RC_REGION / 4 bytes, or NULL */
	uint8_t *bytes;       /* RC_REGION bytes, or NULL */
};

struct rcmap {
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint64_t nr_regions;
	struct region *regions;
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
	sm->nr_regions = (nr_blocks + RC_MASK) >> RC_REGION_SHIFT;
	sm->regions = calloc(sm->nr_regions ? sm->nr_regions : 1, sizeof(*sm->regions));
	if (!sm->regions) {
		free(sm);
		return NULL;
	}
	return sm;
}

void rcmap_destroy(struct rcmap *sm)
{
	if (!sm)
		return;
	for (uint64_t i = 0; i < sm->nr_regions; i++) {
		free(sm->regions[i].packed);
		free(sm->regions[i].bytes);
	}
	free(sm->regions);
	free(sm->ov);
	free(sm);
}

uint64_t rcmap_nr_blocks(const struct rcmap *sm)
{
	return sm->nr_blocks;
}

uint64_t rcmap_mem_bytes(const struct rcmap *sm)
{
	uint64_t m = sizeof(*sm) + sm->nr_regions * sizeof(*sm->regions) +
		     sm->ov_cap * sizeof(*sm->ov);

	for (uint64_t i = 0; i < sm->nr_regions; i++)
		m += (sm->regions[i].packed ? RC_REGION / 4 : 0) +
		     (sm->regions[i].bytes ? RC_REGION : 0);
	return m;
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

/* The in-region value: 0..254 (bytes) or 0..3 (packed); 255 = side table. */
static inline unsigned small_get(const struct region *r, uint64_t i)
{
	if (r->bytes)
		return r->bytes[i];
	if (r->packed)
		return (r->packed[i >> 2] >> (2 * (i & 3))) & 3;
	return 0;
}

uint32_t rcmap_get(const struct rcmap *sm, uint64_t b)
{
	const struct region *r;
	unsigned v;

	if (b >= sm->nr_blocks)
		return 0;
	r = &sm->regions[b >> RC_REGION_SHIFT];
	v = small_get(r, b & RC_MASK);
	if (v < 255)
		return v;
	return sm->ov[ov_slot(sm, b)].count;
}

void rcmap_get_counts8(const struct rcmap *sm, uint64_t base, uint64_t n, uint8_t *out)
{
	while (n) {
		uint64_t b = base, i = b & RC_MASK, k = RC_REGION - i;
		const struct region *r;

		if (b >= sm->nr_blocks) {
			memset(out, 0, n);
			return;
		}
		r = &sm->regions[b >> RC_REGION_SHIFT];
		if (k > n)
			k = n;
		if (r->bytes)
			memcpy(out, r->bytes + i, k);
		else if (!r->packed)
			memset(out, 0, k);
		else
			for (uint64_t j = 0; j < k; j++)
				out[j] = (r->packed[(i + j) >> 2] >> (2 * ((i + j) & 3))) & 3;
		out += k;
		base += k;
		n -= k;
	}
}

/* Makes region r able to hold v (<= 255) in place. */
static int region_reserve(struct region *r, unsigned v)
{
	if (r->bytes || (v <= 2 && r->packed))
		return 0;
	if (v <= 2) {
		r->packed = calloc(RC_REGION / 4, 1);
		return r->packed ? 0 : -ENOMEM;
	}
	r->bytes = calloc(RC_REGION, 1);
	if (!r->bytes)
		return -ENOMEM;
	if (r->packed) {
		for (uint64_t i = 0; i < RC_REGION; i++)
			r->bytes[i] = (r->packed[i >> 2] >> (2 * (i & 3))) & 3;
		free(r->packed);
		r->packed = NULL;
	}
	return 0;
}

static inline void small_put(struct region *r, uint64_t i, unsigned v)
{
	if (r->bytes) {
		r->bytes[i] = (uint8_t)v;
	} else {
		uint8_t *p = &r->packed[i >> 2];
		unsigned s = 2 * (i & 3);

		*p = (uint8_t)((*p & ~(3u << s)) | (v << s));
	}
}

static void ov_remove(struct rcmap *sm, uint64_t b)
{
	size_t i = ov_slot(sm, b);

	sm->ov[i].count = 0;
	sm->ov_nr--;
	/* re-insert the following entries of the cluster (no tombstones) */
	for (size_t j = (i + 1) & (sm->ov_cap - 1); sm->ov[j].count;
	     j = (j + 1) & (sm->ov_cap - 1)) {
		struct ov_entry e = sm->ov[j];
		sm->ov[j].count = 0;
		sm->ov[ov_slot(sm, e.block)] = e;
	}
}

int rcmap_set(struct rcmap *sm, uint64_t b, uint32_t count)
{
	struct region *r;
	uint64_t i;
	unsigned cur, want = count < 255 ? count : 255;
	uint32_t old;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	r = &sm->regions[b >> RC_REGION_SHIFT];
	i = b & RC_MASK;
	cur = small_get(r, i);
	if (!count && !r->bytes && !r->packed)
		return 0;
	if (region_reserve(r, want) < 0)
		return -ENOMEM;
	old = cur < 255 ? cur : sm->ov[ov_slot(sm, b)].count;
	if (want == 255 && cur != 255) {
		if ((sm->ov_nr + 1) * 2 > sm->ov_cap && ov_grow(sm) < 0)
			return -ENOMEM;
		sm->ov_nr++;
	} else if (want != 255 && cur == 255) {
		ov_remove(sm, b);
	}
	if (want == 255) {
		size_t s = ov_slot(sm, b);

		sm->ov[s].block = b;
		sm->ov[s].count = count;
	}
	small_put(r, i, want);
	if (old && !count)
		sm->nr_allocated--;
	else if (!old && count)
		sm->nr_allocated++;
	return 0;
}

int rcmap_inc(struct rcmap *sm, uint64_t b)
{
	struct region *r;
	uint64_t i;
	unsigned v;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	r = &sm->regions[b >> RC_REGION_SHIFT];
	i = b & RC_MASK;
	if (r->packed) {
		uint8_t *p = &r->packed[i >> 2];
		unsigned s = 2 * (i & 3);

		v = (*p >> s) & 3;
		if (v < 2) {
			if (!v)
				sm->nr_allocated++;
			*p = (uint8_t)(*p + (1u << s));
			return 0;
		}
	} else if (r->bytes) {
		v = r->bytes[i];
		if (v < 254) {
			if (!v)
				sm->nr_allocated++;
			r->bytes[i]++;
			return 0;
		}
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
	while (from < sm->nr_blocks) {
		const struct region *r = &sm->regions[from >> RC_REGION_SHIFT];
		uint64_t i = from & RC_MASK, end = RC_REGION;

		if (sm->nr_blocks - (from - i) < end)
			end = sm->nr_blocks - (from - i);
		if (!r->bytes && !r->packed)
			return from;
		if (r->bytes) {
			const uint8_t *p = memchr(r->bytes + i, 0, end - i);
			if (p)
				return from - i + (uint64_t)(p - r->bytes);
		} else {
			for (; i < end; i++) {
				uint8_t byte = r->packed[i >> 2];

				if (!(i & 3) && i + 4 <= end && (byte & 0x03) && (byte & 0x0c) &&
				    (byte & 0x30) && (byte & 0xc0)) {
					i += 3;
					continue;
				}
				if (!((byte >> (2 * (i & 3))) & 3))
					return from - (from & RC_MASK) + i;
			}
		}
		from = from - (from & RC_MASK) + RC_REGION;
	}
	return UINT64_MAX;
}
