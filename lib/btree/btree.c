#include "btree/btree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc/crc32c.h"

/*----------------------------------------------------------------*/

static int node_check(const void *data, uint64_t loc, size_t len)
{
	return bc_csum_check(data, loc, len, BTREE_CSUM_XOR);
}

static void node_prepare(void *data, uint64_t loc, size_t len)
{
	bc_csum_prepare(data, loc, len, BTREE_CSUM_XOR);
}

const struct bc_validator bt_node_validator = {
	.name = "btree_node",
	.check = node_check,
	.prepare = node_prepare,
};

uint32_t bt_calc_max_entries(uint32_t value_size)
{
	uint32_t total = (MD_BLOCK_SIZE - BT_HEADER_SIZE) / (8 + value_size);

	return (total / 3) * 3;
}

static int keys_rise_scalar(const uint8_t *keys, uint32_t nr, uint32_t from)
{
	for (uint32_t i = from; i < nr; i++)
		if (get_le64(keys + 8 * (size_t)(i - 1)) >= get_le64(keys + 8 * (size_t)i))
			return 0;
	return 1;
}

#if defined(__x86_64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <immintrin.h>

/*
 * Four neighbouring pairs a step, no early exit (a node whose keys do not
 * rise is rare): the unsigned comparison is the signed one with the top
 * bits flipped.
 */
__attribute__((target("avx2"))) static int keys_rise_avx2(const uint8_t *keys, uint32_t nr)
{
	const __m256i flip = _mm256_set1_epi64x(INT64_MIN);
	__m256i ok = _mm256_set1_epi64x(-1);
	uint32_t i = 1;

	for (; i + 4 <= nr; i += 4) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(keys + 8 * (size_t)(i - 1)));
		__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(keys + 8 * (size_t)i));

		ok = _mm256_and_si256(ok, _mm256_cmpgt_epi64(_mm256_xor_si256(b, flip),
							     _mm256_xor_si256(a, flip)));
	}
	if (_mm256_movemask_epi8(ok) != -1)
		return 0;
	return keys_rise_scalar(keys, nr, i);
}

int bt_keys_rise(const uint8_t *keys, uint32_t nr)
{
	if (nr >= 8 && __builtin_cpu_supports("avx2"))
		return keys_rise_avx2(keys, nr);
	return keys_rise_scalar(keys, nr, 1);
}
#else
int bt_keys_rise(const uint8_t *keys, uint32_t nr)
{
	return keys_rise_scalar(keys, nr, 1);
}
#endif

enum bt_node_err bt_node_check(const struct bt_node *n, uint32_t leaf_vsize)
{
	return bt_node_check_known(n, leaf_vsize, 0);
}

enum bt_node_err bt_node_check_known(const struct bt_node *n, uint32_t leaf_vsize, int keys_rise)
{
	if (n->flags != BT_INTERNAL_NODE && n->flags != BT_LEAF_NODE)
		return BT_NODE_BAD_FLAGS;
	if ((uint64_t)n->max_entries * (8 + (uint64_t)n->value_size) + BT_HEADER_SIZE >
	    MD_BLOCK_SIZE)
		return BT_NODE_MAX_TOO_LARGE;
	if (n->nr_entries > n->max_entries)
		return BT_NODE_NR_ENTRIES;
	if (n->value_size != (bt_is_leaf(n) ? leaf_vsize : 8u))
		return BT_NODE_VALUE_SIZE;
	if (!keys_rise && !bt_keys_rise(n->raw + BT_HEADER_SIZE, n->nr_entries))
		return BT_NODE_KEYS_ORDER;
	if (n->max_entries % 3)
		return BT_NODE_MAX_NOT_DIV3;
	return BT_NODE_OK;
}

const char *bt_node_err_str(enum bt_node_err e)
{
	switch (e) {
	case BT_NODE_OK:
		return "ok";
	case BT_NODE_BAD_FLAGS:
		return "bad node flags";
	case BT_NODE_MAX_TOO_LARGE:
		return "max_entries is too large";
	case BT_NODE_NR_ENTRIES:
		return "nr_entries > max_entries";
	case BT_NODE_VALUE_SIZE:
		return "value_size mismatch";
	case BT_NODE_KEYS_ORDER:
		return "keys out of order";
	case BT_NODE_MAX_NOT_DIV3:
		return "max_entries is not divisible by 3";
	}
	return "unknown node error";
}

enum rep_code bt_node_err_code(enum bt_node_err e)
{
	switch (e) {
	case BT_NODE_OK:
		return RC_NONE;
	case BT_NODE_BAD_FLAGS:
		return RC_NODE_FLAGS;
	case BT_NODE_MAX_TOO_LARGE:
		return RC_NODE_MAX_ENTRIES_TOO_LARGE;
	case BT_NODE_NR_ENTRIES:
		return RC_NODE_NR_ENTRIES;
	case BT_NODE_VALUE_SIZE:
		return RC_NODE_VALUE_SIZE;
	case BT_NODE_KEYS_ORDER:
		return RC_NODE_KEYS_ORDER;
	case BT_NODE_MAX_NOT_DIV3:
		return RC_NODE_MAX_ENTRIES_NOT_DIV3;
	}
	return RC_NONE;
}

enum dmg_level bt_node_err_level(enum bt_node_err e)
{
	if (e == BT_NODE_OK)
		return DMG_NONE;
	return e == BT_NODE_MAX_NOT_DIV3 ? DMG_NON_FATAL : DMG_FATAL;
}

enum rep_code bt_read_err_code(int err)
{
	switch (err) {
	case -EILSEQ:
		return RC_NODE_CSUM;
	case -ENOTBLK:
		return RC_NODE_BLOCKNR;
	case BC_WRONG_TYPE:
		return RC_NODE_NOT_NODE;
	case -EINVAL:
		return RC_NODE_OUT_OF_BOUNDS;
	default:
		return RC_NODE_IO;
	}
}

int bt_node_keys_rise(const struct bt_node *n)
{
	return (n->flags == BT_INTERNAL_NODE || n->flags == BT_LEAF_NODE) &&
	       n->nr_entries <= n->max_entries &&
	       (uint64_t)n->max_entries * (8 + (uint64_t)n->value_size) + BT_HEADER_SIZE <= MD_BLOCK_SIZE &&
	       bt_keys_rise(n->raw + BT_HEADER_SIZE, n->nr_entries);
}

int bt_node_check_raw(const void *data, uint64_t loc, uint32_t *value_size)
{
	struct bt_node n;
	enum bt_node_err e;
	int r = node_check(data, loc, MD_BLOCK_SIZE);

	if (r < 0)
		return r;
	bt_node_view(data, &n);
	if (n.flags == BT_INTERNAL_NODE && n.value_size != 8)
		return -EINVAL;
	e = bt_node_check(&n, n.value_size);
	if (bt_node_err_level(e) >= DMG_FATAL)
		return -EINVAL;
	if (value_size)
		*value_size = n.value_size;
	return 0;
}

/*----------------------------------------------------------------*/

int bt_lookup(struct bc *bc, uint64_t root, uint32_t leaf_vsize, uint64_t key, void *value_out)
{
	uint64_t block = root;

	for (int depth = 0; depth <= BT_MAX_DEPTH; depth++) {
		struct bc_block *b;
		struct bt_node n;
		uint32_t lo = 0, hi;
		int r = bc_get(bc, block, &bt_node_validator, &b);

		if (r < 0)
			return r;
		bt_node_view(bc_data(b), &n);
		if (bt_node_check(&n, leaf_vsize) != BT_NODE_OK) {
			bc_put(bc, b);
			return -EILSEQ;
		}
		/* largest i with key[i] <= key */
		hi = n.nr_entries;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (bt_key(&n, mid) <= key)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == 0) {
			bc_put(bc, b);
			return -ENODATA;
		}
		if (bt_is_leaf(&n)) {
			r = bt_key(&n, lo - 1) == key ? 0 : -ENODATA;
			if (!r)
				memcpy(value_out, bt_value(&n, lo - 1), leaf_vsize);
			bc_put(bc, b);
			return r;
		}
		block = get_le64(bt_value(&n, lo - 1));
		bc_put(bc, b);
	}
	return -ELOOP;
}
