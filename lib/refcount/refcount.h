/*
 * In-core reference-count maps: what checkers count and what writers
 * allocate from (below the transaction manager, so the tm needs no space
 * map).
 */
#ifndef THINMETA_REFCOUNT_REFCOUNT_H
#define THINMETA_REFCOUNT_REFCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "util/bits.h"

/*
 * In-core ref-count map: a byte per block in regions of 2^20 blocks
 * allocated on first use (memory follows the blocks in use, not the pool's
 * size), counts above 254 in a side table.
 *
 * A compact map (rcmap_create_compact) keeps 2 bits per block instead
 * (0..2, 3 = the count is in the side table), in pages of 16384 blocks
 * that take memory when first written.  A region whose side-table entries
 * pass RCMAP_PROMOTE (pools with many snapshots) turns into a byte region,
 * so a compact map never costs much more than a byte map; on pools where
 * most counts are 0..2 it costs a quarter.  The same calls serve both.
 */

struct rcmap;

/* Internals, for the inline increment only. */
#define RCMAP_REGION_SHIFT 20
#define RCMAP_PROMOTE (1u << 11)   /* compact region -> byte region at this many side entries */
struct rcmap_region {
	uint8_t *bytes;       /* 1 byte per block (255 = side table), or NULL */
};
struct rcmap {
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint64_t nr_regions;
	struct rcmap_region *regions;
	struct ov_entry *ov;  /* open-addressing table for counts >= 255 (>= 3 in 2-bit regions) */
	size_t ov_cap, ov_nr;
	int dense;            /* regions in 2 MiB (huge page) pairs */
	uint8_t *packed;      /* compact: 2 bits per block, on-demand pages; NULL: byte map */
	size_t packed_len;
	uint64_t *packed_written; /* compact: a bit per 4 KiB of packed, set once written (see first_write) */
	uint32_t *cinfo;      /* compact, per region without bytes: side entries, RCMAP_TOUCHED */
	uint8_t *bytes_area;  /* compact: where promoted regions' bytes go (region i at i MiB), or NULL */
	size_t bytes_area_len;
};
#define RCMAP_TOUCHED (1u << 31)   /* some count was set in the region's 2-bit part */

struct rcmap *rcmap_create(uint64_t nr_blocks);
/*
 * The same for a map whose counts will cover most of its blocks, in random
 * order (data blocks on restore): its memory comes in 2 MiB huge pages
 * where the kernel allows, for fewer TLB misses.
 */
struct rcmap *rcmap_create_dense(uint64_t nr_blocks);
/*
 * A compact map (above): for counts over a pool's data blocks where memory
 * matters more than the last nanosecond per increment (thin_check, thin_trim).
 * Falls back to a byte map where the address space cannot be reserved.
 */
struct rcmap *rcmap_create_compact(uint64_t nr_blocks);
/* 1 for a compact map (test and bench hook). */
int rcmap_is_compact(const struct rcmap *sm);
void rcmap_destroy(struct rcmap *sm);
uint64_t rcmap_nr_blocks(const struct rcmap *sm);
/* rcmap_get() for every block (counts in the side table too). */
uint32_t rcmap_get_slow(const struct rcmap *sm, uint64_t b);

static inline uint32_t rcmap_get(const struct rcmap *sm, uint64_t b)
{
	if (b >= sm->nr_blocks)
		return 0;
	{
		const uint8_t *p = sm->regions[b >> RCMAP_REGION_SHIFT].bytes;

		if (p) {
			uint8_t v = p[b & ((1ull << RCMAP_REGION_SHIFT) - 1)];

			if (v < 255)
				return v;
		} else if (sm->packed) {
			unsigned v = (sm->packed[b >> 2] >> ((b & 3) * 2)) & 3u;

			if (v < 3)
				return v;
		} else {
			return 0;
		}
	}
	return rcmap_get_slow(sm, b);
}
int rcmap_set(struct rcmap *sm, uint64_t b, uint32_t count);
int rcmap_inc_slow(struct rcmap *sm, uint64_t b);

static inline int rcmap_inc(struct rcmap *sm, uint64_t b)
{
	if (b < sm->nr_blocks) {
		struct rcmap_region *r = &sm->regions[b >> RCMAP_REGION_SHIFT];
		uint64_t i = b & ((1ull << RCMAP_REGION_SHIFT) - 1);

		if (r->bytes) {
			uint8_t v = r->bytes[i];

			if (v < 254) {
				sm->nr_allocated += !v;
				r->bytes[i] = (uint8_t)(v + 1);
				return 0;
			}
		} else if (sm->packed) {
			/* compact region: 0 -> 1 and 1 -> 2 in place */
			uint8_t *p = &sm->packed[b >> 2];
			unsigned sh = (unsigned)(b & 3) * 2, v = (*p >> sh) & 3u;

			if (v < 2) {
				*p = (uint8_t)(*p + (1u << sh));
				if (!v) {
					sm->nr_allocated++;
					sm->cinfo[b >> RCMAP_REGION_SHIFT] |= RCMAP_TOUCHED;
				}
				return 0;
			}
		}
	}
	return rcmap_inc_slow(sm, b);
}

/*
 * A hint: the count of block b will be wanted soon.  An asm statement, not
 * __builtin_prefetch(): GCC 12 drops a builtin prefetch whose address comes
 * from loads under a condition, as here, and emits nothing at all.
 */
static inline void rcmap_prefetch_line(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p);
#endif
}

static inline void rcmap_prefetch(const struct rcmap *sm, uint64_t b)
{
	if (b < sm->nr_blocks) {
		const uint8_t *p = sm->regions[b >> RCMAP_REGION_SHIFT].bytes;

		if (p)
			rcmap_prefetch_line(p + (b & ((1ull << RCMAP_REGION_SHIFT) - 1)));
		else if (sm->packed)
			rcmap_prefetch_line(sm->packed + (b >> 2));
	}
}

int rcmap_inc_run_slow(struct rcmap *sm, uint64_t b, uint64_t n);

/* Increments the counts of blocks [b, b + n): what n rcmap_inc() calls do. */
static inline int rcmap_inc_run(struct rcmap *sm, uint64_t b, uint64_t n)
{
	if (b < sm->nr_blocks && n <= sm->nr_blocks - b) {
		uint64_t i = b & ((1ull << RCMAP_REGION_SHIFT) - 1);
		uint8_t *p = sm->regions[b >> RCMAP_REGION_SHIFT].bytes;

		if (p && n <= (1ull << RCMAP_REGION_SHIFT) - i) {
			const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
			uint64_t zeros = 0, j = 0;

			p += i;
			/* eight counts at a time while none is 254 or more */
			for (; j + 8 <= n; j += 8) {
				uint64_t x, low7;

				__builtin_memcpy(&x, p + j, 8);
				low7 = x & ~highs;
				if (x & (low7 + 2 * ones) & highs)
					break;   /* a byte >= 254 */
				zeros += (uint64_t)tm_popcount64(~((low7 + ~highs) | x) & highs);
				x += ones;
				__builtin_memcpy(p + j, &x, 8);
			}
			for (; j < n; j++) {
				uint8_t v = p[j];

				if (v >= 254) {
					sm->nr_allocated += zeros;
					return rcmap_inc_run_slow(sm, b + j, n - j);
				}
				zeros += !v;
				p[j] = (uint8_t)(v + 1);
			}
			sm->nr_allocated += zeros;
			return 0;
		}
	}
	return rcmap_inc_run_slow(sm, b, n);
}
int rcmap_dec(struct rcmap *sm, uint64_t b);
/* Blocks with count > 0. */
uint64_t rcmap_nr_allocated(const struct rcmap *sm);
/* First block >= from with count 0, or UINT64_MAX. */
uint64_t rcmap_find_free(const struct rcmap *sm, uint64_t from);
/* Counts of blocks [base, base + n), saturated at 255, into out[0, n). */
void rcmap_get_counts8(const struct rcmap *sm, uint64_t base, uint64_t n, uint8_t *out);
/*
 * min(count, 3) of blocks [base, base + 32 * nwords) as 2-bit fields, 32 to
 * a word: block base + 32 w + k in bits 2k (the high bit) and 2k + 1 (the
 * low bit) of out[w], the dm space map's bitmap encoding; blocks beyond the
 * map read 0.  base must be a multiple of 32.  A word per 32 bytes on byte
 * regions (AVX2 where the CPU has it), a bit swap on 2-bit ones.
 */
void rcmap_get_fields2(const struct rcmap *sm, uint64_t base, uint64_t nwords, uint64_t *out);
/* The same from count bytes counts[0, 32 * nwords); plain: without SIMD (tests). */
void rcmap_fields_of_counts(const uint8_t *counts, uint64_t nwords, uint64_t *out, int plain);
/* Bytes of memory the map uses now. */
uint64_t rcmap_mem_bytes(const struct rcmap *sm);
/* 1 when no count was ever set in [base, base + n): every count there is 0. */
int rcmap_range_untouched(const struct rcmap *sm, uint64_t base, uint64_t n);

#endif
