#include "refcount/refcount.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/*----------------------------------------------------------------*/
/*
 * In-core counting map, compact and sparse.  The blocks are cut into
 * regions of RC_REGION blocks, allocated on the first non-zero count:
 * memory follows the blocks in use, not the size of the pool (a pool of
 * 2^40 data blocks costs an 8 MiB directory until it is used).
 * A region holds a byte per block (0..254, 255 = look in the side table,
 * which holds the rare counts above 254).  (A 2-bit packed stage was
 * measured: it doubled the cost of an increment in thin_check and saved
 * nothing on pools with snapshots, where most regions hold counts above 2.)
 */

#define RC_REGION_SHIFT RCMAP_REGION_SHIFT
#define RC_REGION (1ull << RC_REGION_SHIFT)
#define RC_MASK (RC_REGION - 1)

struct ov_entry {
	uint64_t block;
	uint32_t count;
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

/*
 * A dense map's regions come in pairs from one 2 MiB-aligned mapping of
 * 2 MiB that the kernel may back with a huge page: random increments
 * over a large pool then miss the TLB far less.  Zero-filled on demand.
 */
#define HUGE_CHUNK (2 * RC_REGION)

struct rcmap *rcmap_create_dense(uint64_t nr_blocks)
{
	struct rcmap *sm = rcmap_create(nr_blocks);

	if (sm)
		sm->dense = 1;
	return sm;
}

static uint8_t *huge_chunk(void)
{
	uint8_t *p = mmap(NULL, 2 * HUGE_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + HUGE_CHUNK - 1) & ~(uintptr_t)(HUGE_CHUNK - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((uint8_t *)a + HUGE_CHUNK, (uintptr_t)p + 2 * HUGE_CHUNK - a - HUGE_CHUNK);
	madvise((void *)a, HUGE_CHUNK, MADV_HUGEPAGE);   /* a hint: may fail */
	return (uint8_t *)a;
}

void rcmap_destroy(struct rcmap *sm)
{
	if (!sm)
		return;
	for (uint64_t i = 0; i < sm->nr_regions; i++) {
		if (!sm->dense)
			free(sm->regions[i].bytes);
		else if (!(i & 1) && sm->regions[i].bytes)
			munmap(sm->regions[i].bytes, HUGE_CHUNK);
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
		m += sm->regions[i].bytes ? RC_REGION : 0;
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

/* The in-region value: 0..254; 255 = side table. */
static inline unsigned small_get(const struct rcmap_region *r, uint64_t i)
{
	return r->bytes ? r->bytes[i] : 0;
}

uint32_t rcmap_get(const struct rcmap *sm, uint64_t b)
{
	const struct rcmap_region *r;
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
		const struct rcmap_region *r;

		if (b >= sm->nr_blocks) {
			memset(out, 0, n);
			return;
		}
		r = &sm->regions[b >> RC_REGION_SHIFT];
		if (k > n)
			k = n;
		if (r->bytes)
			memcpy(out, r->bytes + i, k);
		else
			memset(out, 0, k);
		out += k;
		base += k;
		n -= k;
	}
}

static int region_reserve(struct rcmap *sm, struct rcmap_region *r)
{
	if (r->bytes)
		return 0;
	if (sm->dense) {
		/* both regions of the pair at once */
		uint64_t i = (uint64_t)(r - sm->regions) & ~1ull;
		uint8_t *p = huge_chunk();

		if (!p)
			return -ENOMEM;
		sm->regions[i].bytes = p;
		if (i + 1 < sm->nr_regions)
			sm->regions[i + 1].bytes = p + RC_REGION;
		return 0;
	}
	r->bytes = calloc(RC_REGION, 1);
	return r->bytes ? 0 : -ENOMEM;
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
	struct rcmap_region *r;
	uint64_t i;
	unsigned cur, want = count < 255 ? count : 255;
	uint32_t old;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	r = &sm->regions[b >> RC_REGION_SHIFT];
	i = b & RC_MASK;
	cur = small_get(r, i);
	if (!count && !r->bytes)
		return 0;
	if (region_reserve(sm, r) < 0)
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
	r->bytes[i] = (uint8_t)want;
	if (old && !count)
		sm->nr_allocated--;
	else if (!old && count)
		sm->nr_allocated++;
	return 0;
}

int rcmap_inc_slow(struct rcmap *sm, uint64_t b)
{
	uint32_t c;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	c = rcmap_get(sm, b);
	if (c == UINT32_MAX)
		return -EOVERFLOW;
	return rcmap_set(sm, b, c + 1);
}

int rcmap_inc_run_slow(struct rcmap *sm, uint64_t b, uint64_t n)
{
	for (; n; n--, b++) {
		int r = rcmap_inc(sm, b);
		if (r < 0)
			return r;
	}
	return 0;
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
		const struct rcmap_region *r = &sm->regions[from >> RC_REGION_SHIFT];
		uint64_t base = from & ~RC_MASK, end = sm->nr_blocks - base;
		const uint8_t *p;

		if (!r->bytes)
			return from;
		if (end > RC_REGION)
			end = RC_REGION;
		p = memchr(r->bytes + (from - base), 0, end - (from - base));
		if (p)
			return base + (uint64_t)(p - r->bytes);
		from = base + RC_REGION;
	}
	return UINT64_MAX;
}

int rcmap_range_untouched(const struct rcmap *sm, uint64_t base, uint64_t n)
{
	uint64_t end = base + n > sm->nr_blocks ? sm->nr_blocks : base + n;

	for (uint64_t b = base & ~RC_MASK; b < end; b += RC_REGION)
		if (sm->regions[b >> RC_REGION_SHIFT].bytes)
			return 0;
	return 1;
}
