#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "block-cache/block-cache.h"
#include "btree/btree.h"
#include "crc/crc32c.h"
#include "spacemap/spacemap.h"
#include "util/endian.h"

Test(spacemap, bitmap_entries_round_trip_at_every_position_of_a_word)
{
	uint8_t b[MD_BLOCK_SIZE] = { 0 };

	for (unsigned j = 0; j < 96; j++)
		sm_bitmap_set(b, j, j % 4);
	for (unsigned j = 0; j < 96; j++)
		cr_assert_eq(sm_bitmap_get(b, j), j % 4, "entry %u", j);
	sm_bitmap_set(b, 16319, 3);
	cr_assert_eq(sm_bitmap_get(b, 16319), 3);
	sm_bitmap_set(b, 5, 0);
	cr_assert_eq(sm_bitmap_get(b, 5), 0);
	cr_assert_eq(sm_bitmap_get(b, 4), 0);
	cr_assert_eq(sm_bitmap_get(b, 6), 2);
}

Test(spacemap, bitmap_encoding_matches_the_format)
{
	uint8_t b[MD_BLOCK_SIZE] = { 0 };

	for (unsigned j = 0; j < 4; j++)
		sm_bitmap_set(b, j, 1);
	cr_assert_eq(b[16], 0xAA, "four counts of 1");
	sm_bitmap_set(b, 0, 3);
	cr_assert_eq(b[16], 0xAB, "an overflow entry at position 0");
	memset(b, 0, sizeof(b));
	sm_bitmap_set(b, 5, 2);
	cr_assert_eq(b[17], 0x04, "count 2 on entry 1 of a byte");
}

Test(spacemap, decode_agrees_with_get)
{
	uint8_t b[MD_BLOCK_SIZE], out[SM_ENTRIES_PER_BITMAP];

	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(i * 37 + 11);
	sm_bitmap_decode(b, SM_ENTRIES_PER_BITMAP, out);
	for (unsigned j = 0; j < SM_ENTRIES_PER_BITMAP; j++)
		cr_assert_eq(out[j], sm_bitmap_get(b, j), "entry %u", j);
}

Test(spacemap, all_free_sees_any_entry_and_ignores_the_header)
{
	uint8_t blk[4096];

	memset(blk, 0, sizeof(blk));
	memset(blk, 0xff, 16);   /* checksum, padding, blocknr */
	cr_assert(sm_bitmap_all_free(blk));
	sm_bitmap_set(blk, 0, 1);
	cr_assert(!sm_bitmap_all_free(blk), "the first entry");
	sm_bitmap_set(blk, 0, 0);
	sm_bitmap_set(blk, SM_ENTRIES_PER_BITMAP - 1, 3);
	cr_assert(!sm_bitmap_all_free(blk), "the last entry");
	sm_bitmap_set(blk, SM_ENTRIES_PER_BITMAP - 1, 0);
	cr_assert(sm_bitmap_all_free(blk));
}

Test(spacemap, nr_bitmaps_rounds_up)
{
	cr_assert_eq(sm_nr_bitmaps(0), 0);
	cr_assert_eq(sm_nr_bitmaps(1), 1);
	cr_assert_eq(sm_nr_bitmaps(16320), 1);
	cr_assert_eq(sm_nr_bitmaps(16321), 2);
	cr_assert_eq(sm_nr_bitmaps(40000), 3);
}

Test(spacemap, core_counts_and_allocation)
{
	struct rcmap *sm = rcmap_create(100);

	cr_assert_eq(rcmap_get(sm, 7), 0);
	cr_assert_eq(rcmap_inc(sm, 7), 0);
	cr_assert_eq(rcmap_inc(sm, 7), 0);
	cr_assert_eq(rcmap_inc(sm, 9), 0);
	cr_assert_eq(rcmap_get(sm, 7), 2);
	cr_assert_eq(rcmap_nr_allocated(sm), 2);
	cr_assert_eq(rcmap_find_free(sm, 7), 8);
	cr_assert_eq(rcmap_dec(sm, 9), 0);
	cr_assert_eq(rcmap_nr_allocated(sm), 1);
	cr_assert_eq(rcmap_dec(sm, 9), -EINVAL, "no count to drop");
	cr_assert_eq(rcmap_inc(sm, 100), -EINVAL, "beyond the end");
	cr_assert_eq(rcmap_get(sm, 1000), 0);
	rcmap_destroy(sm);
}

Test(spacemap, core_counts_beyond_254_use_the_side_table)
{
	struct rcmap *sm = rcmap_create(4096);

	for (int i = 0; i < 300; i++)
		cr_assert_eq(rcmap_inc(sm, 5), 0);
	cr_assert_eq(rcmap_get(sm, 5), 300);
	{
		uint8_t c8[8];
		rcmap_get_counts8(sm, 0, 8, c8);
		cr_assert_eq(c8[5], 255);
		cr_assert_eq(c8[4], 0);
	}
	/* many saturated blocks, then drop some back below 255 */
	for (uint64_t b = 100; b < 1100; b++)
		cr_assert_eq(rcmap_set(sm, b, 1000 + (uint32_t)b), 0);
	for (uint64_t b = 100; b < 1100; b += 3)
		cr_assert_eq(rcmap_set(sm, b, 2), 0);
	for (uint64_t b = 100; b < 1100; b++)
		cr_assert_eq(rcmap_get(sm, b), (b - 100) % 3 ? 1000 + b : 2, "block %lu",
			     (unsigned long)b);
	for (int i = 0; i < 46; i++)
		cr_assert_eq(rcmap_dec(sm, 5), 0);
	cr_assert_eq(rcmap_get(sm, 5), 254);
	cr_assert_eq(rcmap_nr_allocated(sm), 1001);
	rcmap_destroy(sm);
}

/* A metadata space map of 64 blocks: index block 1, bitmap 2, overflow leaf 3. */
static struct ioe *small_metadata_sm(struct sm_disk_info *info)
{
	struct ioe *e = ioe_mem_create(64);
	uint8_t *d = ioe_mem_data(e);
	uint8_t *idx = d + 1 * MD_BLOCK_SIZE, *bm = d + 2 * MD_BLOCK_SIZE, *ov = d + 3 * MD_BLOCK_SIZE;

	for (unsigned j = 0; j < 4; j++)
		sm_bitmap_set(bm, j, 1);
	sm_bitmap_set(bm, 10, 2);
	sm_bitmap_set(bm, 11, 3);
	bc_csum_prepare(bm, 2, MD_BLOCK_SIZE, BITMAP_CSUM_XOR);
	put_le64(idx + 16, 2);
	put_le32(idx + 24, SM_ENTRIES_PER_BITMAP - 6);
	put_le32(idx + 28, 4);
	bc_csum_prepare(idx, 1, MD_BLOCK_SIZE, INDEX_CSUM_XOR);
	put_le32(ov + 4, BT_LEAF_NODE);
	put_le32(ov + 16, 1);
	put_le32(ov + 20, bt_calc_max_entries(4));
	put_le32(ov + 24, 4);
	put_le64(ov + 32, 11);
	put_le32(ov + 32 + 8 * bt_calc_max_entries(4), 7);
	bc_csum_prepare(ov, 3, MD_BLOCK_SIZE, BTREE_CSUM_XOR);
	*info = (struct sm_disk_info){ SM_METADATA, 64, 6, 1, 3 };
	return e;
}

Test(spacemap, disk_load_reads_bitmaps_and_overflow_counts)
{
	struct sm_disk_info info;
	struct ioe *e = small_metadata_sm(&info);
	struct bc *bc = bc_create(e, 16);
	struct rcmap *out = rcmap_create(64), *refs = rcmap_create(64);
	struct report *rep = rep_create(NULL, 1);

	cr_assert_eq(sm_disk_load(bc, &info, out, rep, refs), 0);
	cr_assert_eq(rep_nr_findings(rep), 0);
	cr_assert_eq(rcmap_get(out, 0), 1);
	cr_assert_eq(rcmap_get(out, 10), 2);
	cr_assert_eq(rcmap_get(out, 11), 7);
	cr_assert_eq(rcmap_get(out, 12), 0);
	cr_assert_eq(rcmap_nr_allocated(out), 6);
	cr_assert_eq(rcmap_get(refs, 1), 1, "index block counted");
	cr_assert_eq(rcmap_get(refs, 2), 1, "bitmap counted");
	cr_assert_eq(rcmap_get(refs, 3), 1, "overflow leaf counted");
	rep_destroy(rep);
	rcmap_destroy(out);
	rcmap_destroy(refs);
	bc_destroy(bc);
	ioe_destroy(e);
}

Test(spacemap, disk_load_reports_a_bad_bitmap_checksum)
{
	struct sm_disk_info info;
	struct ioe *e = small_metadata_sm(&info);
	struct bc *bc = bc_create(e, 16);
	struct rcmap *out = rcmap_create(64);
	struct report *rep = rep_create(NULL, 1);

	ioe_mem_data(e)[2 * MD_BLOCK_SIZE + 300] ^= 0xff;
	cr_assert_eq(sm_disk_load(bc, &info, out, rep, NULL), 0);
	cr_assert_eq(rep_count_code(rep, RC_SM_BITMAP_CSUM), 1);
	cr_assert_eq(rep_outcome(rep), DMG_FATAL);
	rep_destroy(rep);
	rcmap_destroy(out);
	bc_destroy(bc);
	ioe_destroy(e);
}

Test(spacemap, core_counts_across_regions_stay_exact)
{
	/* crosses region boundaries (2^20 blocks) */
	uint64_t nr = (1ull << 21) + 77;
	struct rcmap *sm = rcmap_create(nr);
	uint64_t probe[] = { 0, 1, (1ull << 20) - 1, 1ull << 20, (1ull << 20) + 1, nr - 1 };
	uint8_t c8[16];

	cr_assert(sm);
	for (unsigned k = 0; k < 6; k++)
		for (unsigned j = 0; j <= k; j++)
			cr_assert_eq(rcmap_inc(sm, probe[k]), 0);
	for (unsigned k = 0; k < 6; k++)
		cr_assert_eq(rcmap_get(sm, probe[k]), k + 1, "block %lu", (unsigned long)probe[k]);
	cr_assert_eq(rcmap_nr_allocated(sm), 6);
	rcmap_get_counts8(sm, (1ull << 20) - 2, 4, c8);
	cr_assert(c8[0] == 0 && c8[1] == 3 && c8[2] == 4 && c8[3] == 5);
	cr_assert_eq(rcmap_find_free(sm, 0), 2);
	cr_assert_eq(rcmap_find_free(sm, (1ull << 20) - 1), (1ull << 20) + 2);
	cr_assert_eq(rcmap_find_free(sm, nr - 1), UINT64_MAX);
	for (unsigned k = 0; k < 6; k++)
		for (unsigned j = 0; j <= k; j++)
			cr_assert_eq(rcmap_dec(sm, probe[k]), 0);
	cr_assert_eq(rcmap_nr_allocated(sm), 0);
	cr_assert_eq(rcmap_find_free(sm, 0), 0);
	rcmap_destroy(sm);
}

Test(spacemap, core_counts_untouched_ranges)
{
	uint64_t nr = 3ull << 20;
	struct rcmap *sm = rcmap_create(nr);

	cr_assert(sm);
	cr_assert(rcmap_range_untouched(sm, 0, nr));
	cr_assert_eq(rcmap_inc(sm, (1ull << 20) + 5), 0);
	cr_assert(rcmap_range_untouched(sm, 0, 1ull << 20), "the region before");
	cr_assert(!rcmap_range_untouched(sm, (1ull << 20) - 10, 20), "a range reaching into it");
	cr_assert(!rcmap_range_untouched(sm, (1ull << 20) + 100, 10), "its region, not the block");
	cr_assert(rcmap_range_untouched(sm, 2ull << 20, 1ull << 21), "after it, clipped at the end");
	/* a count set back to 0 leaves its region touched: the full comparison then */
	cr_assert_eq(rcmap_dec(sm, (1ull << 20) + 5), 0);
	cr_assert(!rcmap_range_untouched(sm, 1ull << 20, 16320));
	rcmap_destroy(sm);
}

Test(spacemap, core_counts_find_free)
{
	struct rcmap *sm = rcmap_create(1000);

	for (uint64_t b = 0; b < 999; b++)
		cr_assert_eq(rcmap_inc(sm, b), 0);
	cr_assert_eq(rcmap_find_free(sm, 0), 999);
	cr_assert_eq(rcmap_set(sm, 500, 0), 0);
	cr_assert_eq(rcmap_find_free(sm, 3), 500);
	cr_assert_eq(rcmap_nr_allocated(sm), 998);
	rcmap_destroy(sm);
}

Test(spacemap, core_counts_of_the_largest_pool_cost_memory_in_use_only)
{
	/* 2^40 data blocks: the most a mapping can address */
	struct rcmap *sm = rcmap_create(1ull << 40);

	cr_assert(sm);
	cr_assert_leq(rcmap_mem_bytes(sm), (8ull << 20) + 4096, "empty map: %lu bytes",
		     (unsigned long)rcmap_mem_bytes(sm));
	for (uint64_t b = 0; b < 1000000; b++)
		cr_assert_eq(rcmap_inc(sm, (1ull << 40) - 1 - b), 0);
	cr_assert_eq(rcmap_get(sm, (1ull << 40) - 1), 1);
	/* a million blocks in use, a byte each, plus the directory */
	cr_assert_lt(rcmap_mem_bytes(sm), (8ull << 20) + (2ull << 20));
	rcmap_destroy(sm);
}

/* A data-index leaf at block 9 with these keys; entry k says bitmap 100 + k. */
static void index_leaf_block(uint8_t *blk, const uint64_t *keys, uint32_t nr)
{
	uint32_t max = bt_calc_max_entries(SM_INDEX_ENTRY_SIZE);

	memset(blk, 0, MD_BLOCK_SIZE);
	put_le32(blk + 4, BT_LEAF_NODE);
	put_le64(blk + 8, 9);
	put_le32(blk + 16, nr);
	put_le32(blk + 20, max);
	put_le32(blk + 24, SM_INDEX_ENTRY_SIZE);
	for (uint32_t i = 0; i < nr; i++) {
		uint8_t *v = blk + 32 + 8 * max + SM_INDEX_ENTRY_SIZE * i;

		put_le64(blk + 32 + 8 * i, keys[i]);
		put_le64(v, 100 + keys[i]);
		put_le32(v + 8, 7);
		put_le32(v + 12, 3);
	}
}

static int bad_key_calls;
static uint64_t bad_key_seen, bad_key_expected;

static void note_bad_key(const struct sm_index_decoder *d, const struct bt_node *n, uint64_t k)
{
	cr_assert_eq(n->blocknr, 9);
	bad_key_calls++;
	bad_key_seen = k;
	bad_key_expected = d->next_key;
}

Test(spacemap, index_decoder_stores_entries_and_reports_the_first_bad_key)
{
	static const uint64_t gap[] = { 0, 1, 2, 4, 6 }, part[] = { 0, 1 };
	uint8_t blk[MD_BLOCK_SIZE];
	struct sm_index_entry ent[6];
	struct sm_index_decoder d = { .entries = ent, .nr_bitmaps = 6, .bad_key = note_bad_key };
	struct bt_node n;

	memset(ent, 0, sizeof(ent));
	index_leaf_block(blk, gap, 5);
	bt_node_view(blk, &n);
	sm_index_decode_leaf(&d, &n);
	cr_assert_eq(bad_key_calls, 1, "only the first bad key is reported");
	cr_assert_eq(bad_key_seen, 4);
	cr_assert_eq(bad_key_expected, 3);
	cr_assert(d.bad_keys);
	cr_assert_eq(d.next_key, 7);
	cr_assert_eq(ent[4].blocknr, 104, "out of sequence but in range: stored");
	cr_assert_eq(ent[2].nr_free, 7);
	cr_assert_eq(ent[2].none_free_before, 3);
	cr_assert_eq(ent[3].blocknr, 0, "missing entry stays 0");
	cr_assert_eq(sm_index_short(&d), 0, "bad keys are not a short index");

	memset(ent, 0, sizeof(ent));
	d = (struct sm_index_decoder){ .entries = ent, .nr_bitmaps = 3 };
	index_leaf_block(blk, part, 2);
	bt_node_view(blk, &n);
	sm_index_decode_leaf(&d, &n);
	cr_assert(!d.bad_keys);
	cr_assert(sm_index_short(&d), "2 of 3 bitmaps indexed");
	cr_assert_eq(ent[1].blocknr, 101);
}

/* rcmap_inc_run takes eight counts at a time: every count and the number in use stay exact. */
static void run_case(unsigned from, unsigned len, unsigned big_at)
{
	static const uint32_t low[] = { 0, 1, 2, 100, 252, 253, 0 };
	struct rcmap *sm = rcmap_create(128);
	uint32_t want[128];
	uint64_t used = 0;

	cr_assert_not_null(sm);
	for (unsigned b = 0; b < 128; b++) {
		want[b] = b == big_at ? 254 + b % 3 : low[(b * 3) % 7];
		if (want[b])
			cr_assert_eq(rcmap_set(sm, b, want[b]), 0);
	}
	cr_assert_eq(rcmap_inc_run(sm, from, len), 0);
	for (unsigned b = from; b < from + len; b++)
		want[b]++;
	for (unsigned b = 0; b < 128; b++) {
		cr_assert_eq(rcmap_get(sm, b), want[b], "block %u (run %u+%u, big at %u)", b, from,
			     len, big_at);
		used += want[b] != 0;
	}
	cr_assert_eq(rcmap_nr_allocated(sm), used, "run %u+%u, big at %u", from, len, big_at);
	rcmap_destroy(sm);
}

Test(spacemap, core_counts_run_increments_are_exact_at_every_offset_and_near_254)
{
	for (unsigned from = 0; from < 12; from++)
		for (unsigned len = 1; len <= 70; len += 3) {
			run_case(from, len, 200);                  /* no count near the limit */
			run_case(from, len, from + len / 2);       /* one of 254..256 inside */
			run_case(from, len, from + len - 1);       /* ... at the end */
		}
}

/* sm_bitmap_agrees against the entry-by-entry reading it replaces. */
static int agrees_slowly(const uint8_t *blk, const uint8_t *counts, unsigned n,
			 const uint64_t *threes_ok, unsigned *nonzero, unsigned *first_free)
{
	uint8_t dec[SM_ENTRIES_PER_BITMAP];

	sm_bitmap_decode(blk, SM_ENTRIES_PER_BITMAP, dec);
	*nonzero = 0;
	*first_free = SM_ENTRIES_PER_BITMAP;
	for (unsigned j = 0; j < SM_ENTRIES_PER_BITMAP; j++) {
		unsigned want = j < n ? (counts[j] > 3 ? 3 : counts[j]) : 0;

		if (dec[j] != want)
			return 0;
		if (dec[j] == 3 && !(threes_ok && (threes_ok[j / 64] >> (j % 64) & 1)))
			return 0;
		if (dec[j])
			(*nonzero)++;
		else if (*first_free == SM_ENTRIES_PER_BITMAP)
			*first_free = j;
	}
	return 1;
}

/* counts[0, n) as sm_bitmap_agrees() wants them: the fields a bitmap of those counts holds */
static const uint64_t *as_fields(const uint8_t *counts, unsigned n)
{
	static uint8_t blk[MD_BLOCK_SIZE];
	static uint64_t w[SM_ENTRIES_PER_BITMAP / 32];

	memset(blk, 0, sizeof(blk));
	for (unsigned j = 0; j < n; j++)
		sm_bitmap_set(blk, j, counts[j] > 3 ? 3 : counts[j]);
	for (unsigned k = 0; k < SM_ENTRIES_PER_BITMAP / 32; k++)
		w[k] = get_le64(blk + 16 + 8 * k);
	return w;
}

/* sm_bitmap_agrees() and agrees_slowly() on one bitmap: the same answer and, when it agrees, the same figures. */
static int agree_both_ways(const uint8_t *blk, const uint8_t *counts, unsigned n,
			   const uint64_t *threes_ok, unsigned round)
{
	unsigned nz1, ff1, nz2 = 0, ff2 = 0;
	int a = sm_bitmap_agrees(blk, as_fields(counts, n), n, threes_ok, &nz1, &ff1);
	int b = agrees_slowly(blk, counts, n, threes_ok, &nz2, &ff2);

	cr_assert_eq(a, b, "round %u (n %u)", round, n);
	if (a) {
		cr_assert_eq(nz1, nz2, "round %u", round);
		cr_assert_eq(ff1, ff2, "round %u", round);
	}
	return a;
}

Test(spacemap, bitmap_agrees_like_decoding_entry_by_entry)
{
	static uint8_t blk[MD_BLOCK_SIZE], counts[SM_ENTRIES_PER_BITMAP];
	unsigned seed = 12345, agreed = 0;

	for (unsigned round = 0; round < 400; round++) {
		unsigned n = round % 3 ? SM_ENTRIES_PER_BITMAP : 1 + (seed % SM_ENTRIES_PER_BITMAP);

		memset(blk, 0, sizeof(blk));
		for (unsigned j = 0; j < SM_ENTRIES_PER_BITMAP; j++) {
			seed = seed * 1103515245u + 12345u;
			/* counts 0..2 mostly, some large (read as 3) in odd rounds */
			counts[j] = (uint8_t)(round % 2 && (seed >> 20) % 97 == 0 ? 3 + (seed >> 8) % 250
										 : (seed >> 16) % 3);
			if (round % 5 == 0 && j < 2000)
				counts[j] = 1;   /* a run in use: first free further on */
			if (j < n)
				sm_bitmap_set(blk, j, counts[j] > 3 ? 3 : counts[j]);
		}
		if (round % 4 == 3) {   /* one entry off, somewhere */
			unsigned j = seed % SM_ENTRIES_PER_BITMAP;
			sm_bitmap_set(blk, j, (sm_bitmap_get(blk, j) + 1) % 3);
		}
		if (agree_both_ways(blk, counts, n, NULL, round))
			agreed++;
	}
	cr_assert_gt(agreed, 50, "the fast path was taken");
}

/*
 * Entries of 3 agree exactly where threes_ok has their bit: every 3 with
 * its bit, one 3 without (in either half of a 64-entry word), a bit set
 * for an entry that is not 3 (no effect).
 */
Test(spacemap, bitmap_entries_of_three_agree_only_where_the_overflow_bit_is_set)
{
	static uint8_t blk[MD_BLOCK_SIZE], counts[SM_ENTRIES_PER_BITMAP];
	static uint64_t ok[SM_ENTRIES_PER_BITMAP / 64 + 1];
	unsigned seed = 777, agreed = 0, refused = 0;

	for (unsigned round = 0; round < 300; round++) {
		unsigned n = round % 4 ? SM_ENTRIES_PER_BITMAP : 1 + (seed % SM_ENTRIES_PER_BITMAP);
		unsigned nz1, ff1;

		memset(blk, 0, sizeof(blk));
		memset(ok, 0, sizeof(ok));
		for (unsigned j = 0; j < SM_ENTRIES_PER_BITMAP; j++) {
			seed = seed * 1103515245u + 12345u;
			counts[j] = (uint8_t)((seed >> 16) % 6);   /* 3, 4 and 5 read as 3 */
			if (j < n) {
				sm_bitmap_set(blk, j, counts[j] > 3 ? 3 : counts[j]);
				if (counts[j] >= 3 || (seed >> 8) % 7 == 0)
					ok[j / 64] |= 1ull << (j % 64);
			}
		}
		if (round % 3 == 1) {   /* one entry of 3 without its bit */
			unsigned j = (seed >> 4) % n;

			while (j < n && counts[j] < 3)
				j++;
			if (j < n)
				ok[j / 64] &= ~(1ull << (j % 64));
		}
		if (agree_both_ways(blk, counts, n, ok, round))
			agreed++;
		else
			refused++;
		/* without the bits no bitmap holding a 3 agrees */
		cr_assert_eq(sm_bitmap_agrees(blk, as_fields(counts, n), n, NULL, &nz1, &ff1), 0, "round %u", round);
	}
	cr_assert_gt(agreed, 100, "the fast path was taken");
	cr_assert_gt(refused, 50, "a 3 without its bit was refused");
}

/*
 * Sparse bitmaps (the free words take a shortcut): a few entries in use,
 * and in some rounds a counted block whose entry (and whole 32-entry word)
 * is free, which must not agree.
 */
Test(spacemap, sparse_bitmaps_agree_like_decoding_entry_by_entry)
{
	static uint8_t blk[MD_BLOCK_SIZE], counts[SM_ENTRIES_PER_BITMAP];
	unsigned seed = 4242, agreed = 0, refused = 0;

	for (unsigned round = 0; round < 300; round++) {
		unsigned n = round % 3 ? SM_ENTRIES_PER_BITMAP : 1 + (seed % SM_ENTRIES_PER_BITMAP);

		memset(blk, 0, sizeof(blk));
		memset(counts, 0, sizeof(counts));
		for (unsigned k = 0; k < round % 7; k++) {
			unsigned j;

			seed = seed * 1103515245u + 12345u;
			j = (seed >> 8) % n;
			counts[j] = (uint8_t)(1 + (seed >> 4) % 2);
			sm_bitmap_set(blk, j, counts[j]);
		}
		if (round % 2) {   /* a count where the bitmap says free */
			unsigned j;

			seed = seed * 1103515245u + 12345u;
			j = (seed >> 8) % n;
			if (!counts[j])
				counts[j] = 1;
		}
		if (agree_both_ways(blk, counts, n, NULL, round))
			agreed++;
		else
			refused++;
	}
	cr_assert_gt(agreed, 100);
	cr_assert_gt(refused, 100);
}
