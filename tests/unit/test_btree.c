#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "block-cache/block-cache.h"
#include "btree/btree.h"
#include "btree/walk.h"
#include "crc/crc32c.h"
#include "util/endian.h"

/* Writes a node into block loc of the memory engine (checksummed). */
static void put_node(struct ioe *e, uint64_t loc, uint32_t flags, uint32_t vsize,
		     const uint64_t *keys, const uint64_t *vals, uint32_t nr)
{
	uint8_t *b = ioe_mem_data(e) + loc * MD_BLOCK_SIZE;
	uint32_t max = bt_calc_max_entries(vsize);

	memset(b, 0, MD_BLOCK_SIZE);
	put_le32(b + 4, flags);
	put_le32(b + 16, nr);
	put_le32(b + 20, max);
	put_le32(b + 24, vsize);
	for (uint32_t i = 0; i < nr; i++) {
		put_le64(b + 32 + 8 * i, keys[i]);
		put_le64(b + 32 + 8 * max + vsize * i, vals[i]);
	}
	bc_csum_prepare(b, loc, MD_BLOCK_SIZE, BTREE_CSUM_XOR);
}

/* root 1 (internal) -> leaves 2, 3, 4 with keys 0..9, 10..19, 20..29 */
static struct ioe *three_leaves(void)
{
	struct ioe *e = ioe_mem_create(16);
	uint64_t k[10], v[10], rk[3] = { 0, 10, 20 }, rv[3] = { 2, 3, 4 };

	for (int l = 0; l < 3; l++) {
		for (int i = 0; i < 10; i++) {
			k[i] = (uint64_t)(l * 10 + i);
			v[i] = 1000 + k[i];
		}
		put_node(e, 2 + l, BT_LEAF_NODE, 8, k, v, 10);
	}
	put_node(e, 1, BT_INTERNAL_NODE, 8, rk, rv, 3);
	return e;
}

struct walk_log {
	unsigned leaves, entries, damages;
	uint64_t dblock, dlo, dhi;
	enum rep_code dcode;
};

static int log_leaf(void *ctx, const struct bt_node *n)
{
	struct walk_log *w = ctx;

	w->leaves++;
	w->entries += n->nr_entries;
	return 0;
}

static void log_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
		       uint64_t lo, uint64_t hi, const char *msg)
{
	struct walk_log *w = ctx;

	(void)level;
	(void)msg;
	if (!w->damages++) {
		w->dblock = block;
		w->dlo = lo;
		w->dhi = hi;
		w->dcode = code;
	}
}

static const struct bt_walk_ops log_ops = { .leaf = log_leaf, .damage = log_damage };

static void walk(struct ioe *e, struct walk_log *w)
{
	struct bc *bc = bc_create(e, 64);

	memset(w, 0, sizeof(*w));
	cr_assert_eq(bt_walk(bc, 1, 8, &log_ops, w), 0);
	bc_destroy(bc);
}

Test(btree, max_entries_follow_the_kernel_formula)
{
	cr_assert_eq(bt_calc_max_entries(4), 336);
	cr_assert_eq(bt_calc_max_entries(8), 252);
	cr_assert_eq(bt_calc_max_entries(16), 168);
	cr_assert_eq(bt_calc_max_entries(24), 126);
}

Test(btree, node_check_reports_each_structural_fault)
{
	uint8_t b[MD_BLOCK_SIZE] = { 0 };
	struct bt_node n;

	put_le32(b + 4, BT_LEAF_NODE);
	put_le32(b + 16, 2);
	put_le32(b + 20, 252);
	put_le32(b + 24, 8);
	put_le64(b + 32, 1);
	put_le64(b + 40, 2);
	bt_node_view(b, &n);
	cr_assert_eq(bt_node_check(&n, 8), BT_NODE_OK);
	cr_assert_eq(bt_node_check(&n, 24), BT_NODE_VALUE_SIZE);
	put_le64(b + 40, 1);
	bt_node_view(b, &n);
	cr_assert_eq(bt_node_check(&n, 8), BT_NODE_KEYS_ORDER);
	put_le64(b + 40, 2);
	put_le32(b + 4, 3);
	bt_node_view(b, &n);
	cr_assert_eq(bt_node_check(&n, 8), BT_NODE_BAD_FLAGS);
	put_le32(b + 4, BT_INTERNAL_NODE);
	put_le32(b + 24, 16);
	put_le32(b + 20, 168);
	bt_node_view(b, &n);
	cr_assert_eq(bt_node_check(&n, 16), BT_NODE_VALUE_SIZE, "internal nodes need value_size 8");
	put_le32(b + 24, 8);
	put_le32(b + 20, 300);
	bt_node_view(b, &n);
	cr_assert_eq(bt_node_check(&n, 8), BT_NODE_MAX_TOO_LARGE);
	put_le32(b + 20, 250);
	bt_node_view(b, &n);
	cr_assert_eq(bt_node_check(&n, 8), BT_NODE_MAX_NOT_DIV3);
	put_le32(b + 20, 1);
	bt_node_view(b, &n);
	cr_assert_eq(bt_node_check(&n, 8), BT_NODE_NR_ENTRIES);
	cr_assert_eq(bt_node_err_code(BT_NODE_NR_ENTRIES), RC_NODE_NR_ENTRIES);
	cr_assert_str_eq(bt_node_err_str(BT_NODE_KEYS_ORDER), "keys out of order");
}

Test(btree, walk_visits_every_leaf_of_a_sound_tree)
{
	struct ioe *e = three_leaves();
	struct walk_log w;

	walk(e, &w);
	cr_assert_eq(w.leaves, 3);
	cr_assert_eq(w.entries, 30);
	cr_assert_eq(w.damages, 0);
	ioe_destroy(e);
}

Test(btree, walk_reports_a_bad_leaf_with_its_key_range_and_goes_on)
{
	struct ioe *e = three_leaves();
	struct walk_log w;

	ioe_mem_data(e)[3 * MD_BLOCK_SIZE + 100] ^= 0xff;
	walk(e, &w);
	cr_assert_eq(w.damages, 1);
	cr_assert_eq(w.dblock, 3);
	cr_assert_eq(w.dcode, RC_NODE_CSUM);
	cr_assert_eq(w.dlo, 10);
	cr_assert_eq(w.dhi, 20);
	cr_assert_eq(w.leaves, 2, "the siblings are still walked");
	ioe_destroy(e);
}

Test(btree, walk_reports_keys_outside_the_parent_range)
{
	struct ioe *e = three_leaves();
	uint64_t k[2] = { 5, 25 }, v[2] = { 1, 2 };
	struct walk_log w;

	put_node(e, 3, BT_LEAF_NODE, 8, k, v, 2);
	walk(e, &w);
	cr_assert_eq(w.damages, 1);
	cr_assert_eq(w.dcode, RC_NODE_KEY_RANGE);
	cr_assert_eq(w.dblock, 3);
	ioe_destroy(e);
}

Test(btree, walk_reports_a_cycle)
{
	struct ioe *e = three_leaves();
	uint64_t rk[3] = { 0, 10, 20 }, rv[3] = { 2, 1, 4 };
	struct walk_log w;

	put_node(e, 1, BT_INTERNAL_NODE, 8, rk, rv, 3);
	walk(e, &w);
	cr_assert_eq(w.damages, 1);
	cr_assert_eq(w.dcode, RC_NODE_CYCLE);
	cr_assert_eq(w.leaves, 2);
	ioe_destroy(e);
}

Test(btree, walk_reports_leaves_at_different_depths)
{
	struct ioe *e = three_leaves();
	uint64_t ik[1] = { 20 }, iv[1] = { 4 }, rk[3] = { 0, 10, 20 }, rv[3] = { 2, 3, 5 };
	struct walk_log w;

	put_node(e, 5, BT_INTERNAL_NODE, 8, ik, iv, 1);
	put_node(e, 1, BT_INTERNAL_NODE, 8, rk, rv, 3);
	walk(e, &w);
	cr_assert_eq(w.damages, 1);
	cr_assert_eq(w.dcode, RC_NODE_DEPTH);
	ioe_destroy(e);
}

Test(btree, walk_reports_read_errors)
{
	struct ioe *e = three_leaves();
	struct walk_log w;

	ioe_mem_fail_read(e, 1); /* the root reads fine, the first leaf fails */
	walk(e, &w);
	cr_assert_geq(w.damages, 1);
	cr_assert_eq(w.dcode, RC_NODE_IO);
	ioe_destroy(e);
}

Test(btree, lookup_finds_present_keys_and_returns_enodata_otherwise)
{
	struct ioe *e = three_leaves();
	struct bc *bc = bc_create(e, 64);
	uint8_t v[8];

	cr_assert_eq(bt_lookup(bc, 1, 8, 17, v), 0);
	cr_assert_eq(get_le64(v), 1017);
	cr_assert_eq(bt_lookup(bc, 1, 8, 0, v), 0);
	cr_assert_eq(get_le64(v), 1000);
	cr_assert_eq(bt_lookup(bc, 1, 8, 30, v), -ENODATA);
	bc_destroy(bc);
	ioe_destroy(e);
}

Test(btree, lookup_of_a_key_below_the_first_separator_returns_enodata)
{
	struct ioe *e = three_leaves();
	uint64_t rk[3] = { 5, 10, 20 }, rv[3] = { 2, 3, 4 };
	struct bc *bc;
	uint8_t v[8];

	put_node(e, 1, BT_INTERNAL_NODE, 8, rk, rv, 3);
	bc = bc_create(e, 64);
	cr_assert_eq(bt_lookup(bc, 1, 8, 2, v), -ENODATA);
	bc_destroy(bc);
	ioe_destroy(e);
}

Test(btree, lookup_through_a_bad_checksum_fails)
{
	struct ioe *e = three_leaves();
	struct bc *bc = bc_create(e, 64);
	uint8_t v[8];

	ioe_mem_data(e)[4 * MD_BLOCK_SIZE + 200] ^= 1;
	cr_assert_eq(bt_lookup(bc, 1, 8, 25, v), -EILSEQ);
	cr_assert_eq(bt_lookup(bc, 1, 8, 5, v), 0);
	bc_destroy(bc);
	ioe_destroy(e);
}
