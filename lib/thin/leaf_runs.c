#include "thin/leaf_runs.h"

#include "thin/superblock.h"
#include "util/endian.h"

/*
 * Entries [from, nr) (entry from - 1, when from > 0, ends a run or not):
 * without a branch on the data, each entry's index is stored in the next
 * run's slot, which only a run's first entry keeps.  Returns 1 when the
 * entries are within the bounds.
 */
static int runs_scalar(const uint8_t *vals, uint32_t from, uint32_t nr, uint64_t nr_blocks,
		       uint32_t max_time, struct thin_leaf_runs *o)
{
	/* no block is UINT64_MAX (40 bits): entry 0 always starts a run */
	uint64_t next = from ? thin_bt_block(get_le64(vals + 8 * (size_t)(from - 1))) + 1 : UINT64_MAX;
	uint32_t nr_runs = o->nr_runs;
	int out = 0;

	for (uint32_t i = from; i < nr; i++) {
		uint64_t v = get_le64(vals + 8 * (size_t)i), b = thin_bt_block(v);

		o->first[nr_runs] = (uint16_t)i;
		nr_runs += b != next;
		next = b + 1;
		out |= (b >= nr_blocks) | (thin_bt_time(v) > max_time);
	}
	o->first[nr_runs] = (uint16_t)nr;
	o->nr_runs = nr_runs;
	return !out;
}

#if defined(__x86_64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <immintrin.h>

/*
 * Four entries a step, each against the one before it (a second load, one
 * entry back: for entry 0 that is the last key's slot, in the node, and
 * its answer is overruled), the entries that start a run as bits of a
 * 64-entry mask in a register, the bounds as one compare each (blocks are
 * 40 bits and times 24: the signed compares are right).  Then the runs from
 * the masks, and the last nr % 4 entries the plain way.
 */
__attribute__((target("avx2"))) static int runs_avx2(const uint8_t *vals, uint32_t nr,
						     uint64_t nr_blocks, uint32_t max_time,
						     struct thin_leaf_runs *o)
{
	const __m256i one = _mm256_set1_epi64x(1), tmask = _mm256_set1_epi64x(0xffffff);
	const __m256i last_b = _mm256_set1_epi64x((int64_t)(nr_blocks > (1ull << 40) ? (1ull << 40)
										      : nr_blocks) - 1);
	const __m256i last_t = _mm256_set1_epi64x(max_time);
	__m256i out = _mm256_setzero_si256();
	uint64_t starts[(THIN_LEAF_MAX_ENTRIES + 63) / 64];
	uint32_t i = 0, nr4 = nr & ~3u, nr_runs = 0, nr_words = 0;

	while (i < nr4) {
		uint64_t m = 0;

		for (unsigned sh = 0; sh < 64 && i < nr4; sh += 4, i += 4) {
			__m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(vals + 8 * (size_t)i));
			__m256i p = _mm256_loadu_si256(
				(const __m256i *)(const void *)(vals + 8 * (size_t)i - 8));
			__m256i b = _mm256_srli_epi64(x, 24);
			__m256i follows =
				_mm256_cmpeq_epi64(b, _mm256_add_epi64(_mm256_srli_epi64(p, 24), one));

			m |= (uint64_t)(_mm256_movemask_pd(_mm256_castsi256_pd(follows)) ^ 0xf) << sh;
			out = _mm256_or_si256(out, _mm256_cmpgt_epi64(b, last_b));
			out = _mm256_or_si256(out, _mm256_cmpgt_epi64(_mm256_and_si256(x, tmask), last_t));
		}
		starts[nr_words++] = m;
	}
	if (nr_words)
		starts[0] |= 1;   /* entry 0 starts a run, whatever is before it */
	for (uint32_t w = 0; w < nr_words; w++)
		for (uint64_t m = starts[w]; m; m &= m - 1)
			o->first[nr_runs++] = (uint16_t)(w * 64 + (uint32_t)__builtin_ctzll(m));
	o->nr_runs = nr_runs;
	return runs_scalar(vals, i, nr, nr_blocks, max_time, o) & _mm256_testz_si256(out, out);
}
#endif

int thin_leaf_runs(const struct bt_node *n, uint64_t nr_blocks, uint32_t max_time,
		   struct thin_leaf_runs *out)
{
	const uint8_t *vals = bt_value(n, 0);

	out->nr_runs = 0;
#if defined(__x86_64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* the load one entry back reads the node's last key slot: values follow the keys */
	if (n->nr_entries >= 8 && n->max_entries && __builtin_cpu_supports("avx2"))
		return runs_avx2(vals, n->nr_entries, nr_blocks, max_time, out);
#endif
	return runs_scalar(vals, 0, n->nr_entries, nr_blocks, max_time, out);
}

void thin_leaf_prep(const struct bt_node *n, uint64_t nr_blocks, uint32_t max_time,
		    struct thin_leaf_prep *out)
{
	out->sound = n->nr_entries && n->nr_entries <= THIN_LEAF_MAX_ENTRIES &&
		     thin_leaf_runs(n, nr_blocks, max_time, &out->lr);
	out->nr_blocks = 0;
	if (out->sound) {
		const uint8_t *vals = bt_value(n, 0);
		uint32_t nr = out->lr.nr_runs < THIN_PREP_BLOCKS ? out->lr.nr_runs : THIN_PREP_BLOCKS;

		out->nr_blocks = nr;
		for (uint32_t k = 0; k < nr; k++)
			out->block[k] = thin_bt_block(get_le64(vals + 8 * (size_t)out->lr.first[k]));
	}
}
