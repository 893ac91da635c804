#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "refcount/refcount.h"

/*
 * The compact map (2 bits per block, 3 = side table, regions turning into
 * bytes past RCMAP_PROMOTE side entries) against the byte map: every call
 * must answer the same.
 */

#define REGION (1ull << RCMAP_REGION_SHIFT)

/* Field j of a word from rcmap_get_fields2(): high bit at 2j. */
static unsigned field(const uint64_t *w, uint64_t j)
{
	unsigned f = (unsigned)(w[j / 32] >> (2 * (j % 32))) & 3;

	return (f & 1) << 1 | f >> 1;
}

/* rcmap_get_fields2() over [lo, hi) (from lo rounded down to 32) against rcmap_get(). */
static void fields_as_counted(const struct rcmap *m, uint64_t lo, uint64_t hi)
{
	uint64_t w[16];

	for (uint64_t x = lo & ~31ull; x < hi; x += 32 * 16) {
		rcmap_get_fields2(m, x, 16, w);
		for (uint64_t j = 0; j < 32 * 16; j++) {
			uint32_t c = rcmap_get(m, x + j);

			cr_assert_eq(field(w, j), c > 3 ? 3 : c, "fields2: block %llu, count %u",
				     (unsigned long long)(x + j), c);
		}
	}
}

static void same_maps(const struct rcmap *c, const struct rcmap *b, uint64_t lo, uint64_t hi)
{
	uint8_t c8[512], b8[512];

	cr_assert_eq(rcmap_nr_allocated(c), rcmap_nr_allocated(b), "nr_allocated %llu vs %llu",
		     (unsigned long long)rcmap_nr_allocated(c),
		     (unsigned long long)rcmap_nr_allocated(b));
	for (uint64_t x = lo; x < hi; x++)
		cr_assert_eq(rcmap_get(c, x), rcmap_get(b, x), "block %llu: %u vs %u",
			     (unsigned long long)x, rcmap_get(c, x), rcmap_get(b, x));
	for (uint64_t x = lo; x < hi; x += 512) {
		uint64_t n = hi - x < 512 ? hi - x : 512;

		rcmap_get_counts8(c, x, n, c8);
		rcmap_get_counts8(b, x, n, b8);
		cr_assert(!memcmp(c8, b8, n), "counts8 at %llu", (unsigned long long)x);
	}
	fields_as_counted(c, lo, hi);
	fields_as_counted(b, lo, hi);
}

/*
 * Fields from count bytes, with SIMD and without, against the definition:
 * every count 0..255 at every position of a word.
 */
Test(refcount, fields_of_counts_are_min_count_3_high_bit_first)
{
	static uint8_t c[32 * 64];
	uint64_t simd[64], plain[64];
	unsigned seed = 99;

	for (unsigned round = 0; round < 40; round++) {
		for (unsigned j = 0; j < sizeof(c); j++) {
			seed = seed * 1103515245u + 12345u;
			c[j] = round < 8 ? (uint8_t)(j * 7 + round * 31) : (uint8_t)((seed >> 16) % (round % 2 ? 6 : 256));
		}
		rcmap_fields_of_counts(c, 64, simd, 0);
		rcmap_fields_of_counts(c, 64, plain, 1);
		for (unsigned j = 0; j < sizeof(c); j++) {
			unsigned want = c[j] > 3 ? 3 : c[j];

			cr_assert_eq(field(simd, j), want, "round %u entry %u count %u", round, j, c[j]);
			cr_assert_eq(field(plain, j), want, "round %u entry %u count %u (plain)", round, j, c[j]);
		}
	}
}

/*
 * Byte, dense and compact maps whose size is no multiple of 32, with counts
 * in the side table, promoted and 2-bit regions, read across region edges
 * and past the end.
 */
Test(refcount, fields2_of_every_kind_of_map)
{
	uint64_t nr = 2 * REGION + 77;
	struct rcmap *m[3] = { rcmap_create(nr), rcmap_create_dense(nr), rcmap_create_compact(nr) };
	unsigned seed = 5;

	for (int k = 0; k < 3; k++) {
		cr_assert(m[k]);
		for (unsigned i = 0; i < 20000; i++) {
			uint64_t b;
			uint32_t v;

			seed = seed * 1103515245u + 12345u;
			b = (i % 3 == 0 ? REGION - 600 : i % 3 == 1 ? 2 * REGION - 300 : 0) + (seed >> 8) % 700;
			if (b >= nr)
				b = nr - 1 - (seed % 50);
			v = (seed >> 4) % 5 == 0 ? 300 + (seed % 7) : (seed >> 12) % 5;
			cr_assert_eq(rcmap_set(m[k], b, v), 0);
		}
		/* the compact map's first region past RCMAP_PROMOTE side entries: bytes */
		if (k == 2)
			for (uint64_t b = 0; b < RCMAP_PROMOTE + 10; b++)
				cr_assert_eq(rcmap_set(m[k], 5000 + b, 3 + (uint32_t)(b % 3)), 0);
		fields_as_counted(m[k], 0, 800);
		fields_as_counted(m[k], 5000, 5000 + RCMAP_PROMOTE + 64);
		fields_as_counted(m[k], REGION - 640, REGION + 640);
		fields_as_counted(m[k], 2 * REGION - 320, nr + 1000);
		rcmap_destroy(m[k]);
	}
}

Test(refcount, compact_counts_0_to_3_and_beyond)
{
	struct rcmap *c = rcmap_create_compact(1000), *b = rcmap_create(1000);

	cr_assert(c && b);
	cr_assert(rcmap_is_compact(c));
	cr_assert(!rcmap_is_compact(b));
	/* block k counted k times: 0, 1, 2 in place, 3.. in the side table */
	for (uint32_t k = 0; k < 600; k++)
		for (uint32_t i = 0; i < k; i++) {
			cr_assert_eq(rcmap_inc(c, k), 0);
			cr_assert_eq(rcmap_inc(b, k), 0);
		}
	for (uint32_t k = 0; k < 600; k++)
		cr_assert_eq(rcmap_get(c, k), k, "block %u: %u", k, rcmap_get(c, k));
	cr_assert_eq(rcmap_nr_allocated(c), 599);
	same_maps(c, b, 0, 1000);
	/* down through 3 -> 2 -> 1 -> 0 */
	for (uint32_t k = 1; k < 8; k++)
		while (rcmap_get(c, k)) {
			cr_assert_eq(rcmap_dec(c, k), 0);
			cr_assert_eq(rcmap_dec(b, k), 0);
			same_maps(c, b, 0, 16);
		}
	cr_assert_eq(rcmap_dec(c, 1), -EINVAL, "below 0");
	cr_assert_eq(rcmap_nr_allocated(c), 599 - 7);
	/* set jumps across the escape both ways */
	cr_assert_eq(rcmap_set(c, 900, 70000), 0);
	cr_assert_eq(rcmap_get(c, 900), 70000);
	cr_assert_eq(rcmap_set(c, 900, 2), 0);
	cr_assert_eq(rcmap_get(c, 900), 2);
	cr_assert_eq(rcmap_set(c, 900, 0), 0);
	cr_assert_eq(rcmap_get(c, 900), 0);
	cr_assert_eq(rcmap_set(c, 1000, 1), -EINVAL, "beyond the map");
	cr_assert_eq(rcmap_get(c, 5000), 0);
	rcmap_destroy(c);
	rcmap_destroy(b);
}

Test(refcount, compact_side_table_grows_and_regions_turn_into_bytes)
{
	uint64_t nr = 3 * REGION + 12345;
	struct rcmap *c = rcmap_create_compact(nr), *b = rcmap_create(nr);
	uint64_t mem0;

	cr_assert(c && b);
	mem0 = rcmap_mem_bytes(c);
	/* region 0: a few counts of 3 and more, stays 2-bit */
	for (uint64_t x = 0; x < 1000; x++)
		for (int i = 0; i < 3 + (int)(x % 5); i++) {
			rcmap_inc(c, x * 7);
			rcmap_inc(b, x * 7);
		}
	same_maps(c, b, 0, 8000);
	cr_assert_lt(rcmap_mem_bytes(c) - mem0, REGION / 4 + (64u << 10),
		     "2-bit region: %llu bytes", (unsigned long long)(rcmap_mem_bytes(c) - mem0));
	/* region 1: past RCMAP_PROMOTE counts of 3 -> bytes; 300 keeps a side entry */
	for (uint64_t x = 0; x < RCMAP_PROMOTE + 100; x++) {
		uint64_t blk = REGION + x * 3;

		for (int i = 0; i < (x == 5 ? 300 : 3); i++) {
			cr_assert_eq(rcmap_inc(c, blk), 0);
			rcmap_inc(b, blk);
		}
	}
	cr_assert(c->regions[1].bytes, "region 1 promoted");
	cr_assert(!c->regions[0].bytes, "region 0 still 2-bit");
	cr_assert_eq(rcmap_get(c, REGION + 15), 300);
	same_maps(c, b, REGION, REGION + 3 * (RCMAP_PROMOTE + 200));
	/* the promoted region takes the byte path, decrements included */
	for (int i = 0; i < 3; i++) {
		rcmap_dec(c, REGION);
		rcmap_dec(b, REGION);
	}
	cr_assert_eq(rcmap_get(c, REGION), 0);
	same_maps(c, b, 0, nr);
	rcmap_destroy(c);
	rcmap_destroy(b);
}

Test(refcount, compact_runs_across_region_edges)
{
	uint64_t nr = 4 * REGION + 100;
	struct rcmap *c = rcmap_create_compact(nr), *b = rcmap_create(nr);

	cr_assert(c && b);
	/* runs straddling each region edge, some twice or three times */
	for (uint64_t r = 1; r <= 4; r++)
		for (int k = 0; k < (int)r; k++) {
			uint64_t s = r * REGION - 50 - (uint64_t)k, n = r == 4 ? 150 : 100 + (uint64_t)k;

			cr_assert_eq(rcmap_inc_run(c, s, n), 0);
			cr_assert_eq(rcmap_inc_run(b, s, n), 0);
		}
	cr_assert_eq(rcmap_get(c, 2 * REGION - 51), 1);
	cr_assert_eq(rcmap_get(c, 2 * REGION), 2);
	cr_assert_eq(rcmap_get(c, 3 * REGION + 1), 3);
	cr_assert_eq(rcmap_get(c, 4 * REGION + 96), 4);
	cr_assert_eq(rcmap_get(c, 4 * REGION + 99), 1);
	for (uint64_t r = 0; r <= 4; r++)
		same_maps(c, b, r * REGION - (r ? 200 : 0), r * REGION + (r == 4 ? 100 : 200));
	/* a run beyond the end fails, as n increments would */
	cr_assert_neq(rcmap_inc_run(c, nr - 2, 5), 0);
	/* free-block search and untouched ranges see the 2-bit regions */
	cr_assert_eq(rcmap_find_free(c, REGION - 50), REGION + 50);
	cr_assert_eq(rcmap_find_free(b, REGION - 50), REGION + 50);
	cr_assert_eq(rcmap_find_free(c, 0), 0);
	cr_assert(!rcmap_range_untouched(c, REGION + 1000, 10));
	cr_assert(rcmap_range_untouched(rcmap_create_compact(10), 0, 10));
	rcmap_destroy(c);
	rcmap_destroy(b);
}

Test(refcount, compact_random_operations_match_the_byte_map)
{
	uint64_t nr = 2 * REGION + 777;
	struct rcmap *c = rcmap_create_compact(nr), *b = rcmap_create(nr);
	unsigned seed = 15;

	cr_assert(c && b);
	for (int i = 0; i < 400000; i++) {
		/* hot blocks (counts climb past 3 and 255) and a wide spread */
		uint64_t x = (rand_r(&seed) & 1) ? (uint64_t)rand_r(&seed) % 64
						 : (uint64_t)rand_r(&seed) * 4099 % nr;
		int op = rand_r(&seed) % 8;

		if (op < 5) {
			cr_assert_eq(rcmap_inc(c, x), rcmap_inc(b, x));
		} else if (op < 7) {
			cr_assert_eq(rcmap_dec(c, x), rcmap_dec(b, x));
		} else {
			uint32_t v = (uint32_t)rand_r(&seed) % 6;

			cr_assert_eq(rcmap_set(c, x, v), rcmap_set(b, x, v));
		}
	}
	same_maps(c, b, 0, nr);
	for (uint64_t x = 0; x < nr; x += 1 + x / 3)
		cr_assert_eq(rcmap_find_free(c, x), rcmap_find_free(b, x), "from %llu",
			     (unsigned long long)x);
	rcmap_destroy(c);
	rcmap_destroy(b);
}

Test(refcount, compact_counts_of_the_largest_data_device_take_memory_where_used)
{
	/*
	 * About 2^36 data blocks: what 16 GiB of metadata can describe.  One
	 * mapping in every 2^20-block region costs a 4 KiB page each, not the
	 * megabyte a byte region would take.
	 */
	uint64_t nr = 1ull << 36, nreg = nr >> RCMAP_REGION_SHIFT;
	struct rcmap *c = rcmap_create_compact(nr);

	cr_assert(c);
	cr_assert(rcmap_is_compact(c));
	for (uint64_t r = 0; r < nreg; r++)
		cr_assert_eq(rcmap_inc(c, r * REGION + r % 1000), 0);
	cr_assert_eq(rcmap_nr_allocated(c), nreg);
	/* 65536 pages of 4 KiB, the directory and region info: under 300 MiB (bytes: 64 GiB) */
	cr_assert_lt(rcmap_mem_bytes(c), 300ull << 20, "%llu bytes",
		     (unsigned long long)rcmap_mem_bytes(c));
	cr_assert_geq(rcmap_mem_bytes(c), nreg * 4096);
	for (uint64_t r = 0; r < nreg; r += 997)
		cr_assert_eq(rcmap_get(c, r * REGION + r % 1000), 1);
	cr_assert_eq(rcmap_find_free(c, 0), 1);
	rcmap_destroy(c);
}

/* Random runs (word-aligned or not, over counts 0..5): the 2-bit run path agrees with a byte map. */
Test(refcount, compact_random_runs_match_bytes)
{
	uint64_t nr = 2 * REGION + 777;
	struct rcmap *c = rcmap_create_compact(nr), *b = rcmap_create(nr);
	uint64_t seed = 12345;

	cr_assert(c && b);
	for (int k = 0; k < 3000; k++) {
		uint64_t s, n;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		/* clustered near a few spots so that counts climb past 3 */
		s = (seed >> 33) % 4 * (REGION / 2) + (seed >> 20) % 300;
		n = 1 + (seed >> 8) % 200;
		if (s + n > nr)
			n = nr - s;
		cr_assert_eq(rcmap_inc_run(c, s, n), 0);
		cr_assert_eq(rcmap_inc_run(b, s, n), 0);
	}
	cr_assert_eq(rcmap_nr_allocated(c), rcmap_nr_allocated(b));
	for (uint64_t i = 0; i < 4; i++)
		same_maps(c, b, i * (REGION / 2), i * (REGION / 2) + 600);
	same_maps(c, b, 0, nr);
	rcmap_destroy(c);
	rcmap_destroy(b);
}

/*
 * Runs over counts of 0, 1 and 2 (the 2-bit part, below the side table's
 * promotion): unaligned starts and ends, runs that meet a count of 2 partway
 * through a word, against the byte map.
 */
Test(refcount, compact_runs_over_low_counts_match_bytes)
{
	uint64_t nr = REGION + 333;
	struct rcmap *c = rcmap_create_compact(nr), *b = rcmap_create(nr);
	uint64_t seed = 99;

	cr_assert(c && b);
	for (int k = 0; k < 6000; k++) {
		uint64_t s, n;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		s = (seed >> 30) % nr;
		n = 1 + (seed >> 12) % 90;
		if (s + n > nr)
			n = nr - s;
		cr_assert_eq(rcmap_inc_run(c, s, n), 0);
		cr_assert_eq(rcmap_inc_run(b, s, n), 0);
	}
	cr_assert(rcmap_is_compact(c), "still 2-bit: the side table stayed small");
	cr_assert_eq(rcmap_nr_allocated(c), rcmap_nr_allocated(b));
	same_maps(c, b, 0, nr);
	rcmap_destroy(c);
	rcmap_destroy(b);
}
