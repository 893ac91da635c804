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

/*----------------------------------------------------------------*/
/* The path walker's source, key window and shared-subtree callbacks */

/* A source over a block cache that logs which blocks were read. */
struct logged_src {
	struct bc *bc;
	uint64_t got[64];
	unsigned nr_got, held, max_held;
};

static int lsrc_get(void *ctx, uint64_t b, const void **data, void **hold)
{
	struct logged_src *s = ctx;
	struct bc_block *blk;
	int r = bc_get(s->bc, b, &bt_node_validator, &blk);

	if (s->nr_got < 64)
		s->got[s->nr_got++] = b;
	if (r < 0)
		return r;
	if (++s->held > s->max_held)
		s->max_held = s->held;
	*data = bc_data(blk);
	*hold = blk;
	return 0;
}

static void lsrc_put(void *ctx, void *hold)
{
	struct logged_src *s = ctx;

	s->held--;
	bc_put(s->bc, hold);
}

static int read_block(const struct logged_src *s, uint64_t b)
{
	for (unsigned i = 0; i < s->nr_got; i++)
		if (s->got[i] == b)
			return 1;
	return 0;
}

Test(walk, a_key_window_reads_only_the_subtrees_holding_its_keys)
{
	struct ioe *e = three_leaves();
	struct logged_src s = { .bc = bc_create(e, 64) };
	struct bt_source src = { lsrc_get, lsrc_put, NULL, &s };
	struct walk_log w = { 0 };

	cr_assert_eq(bt_walk_keys(&src, 1, 12, 15, 0, 8, &log_ops, &w), 0);
	cr_assert_eq(w.leaves, 1, "only the leaf of keys 10..19 is handed out");
	cr_assert(read_block(&s, 1) && read_block(&s, 3));
	cr_assert(!read_block(&s, 2) && !read_block(&s, 4), "leaves outside [12, 15) are not read");
	cr_assert_eq(s.max_held, 1, "at most one block is held");
	cr_assert_eq(s.held, 0, "every block is put back");
	memset(&s.got, 0, sizeof(s.got));
	s.nr_got = 0;
	memset(&w, 0, sizeof(w));
	cr_assert_eq(bt_walk_keys(&src, 1, 20, 20, 0, 8, &log_ops, &w), 0);
	cr_assert_eq(s.nr_got, 0, "an empty window reads nothing");
	bc_destroy(s.bc);
	ioe_destroy(e);
}

/* root 1 -> internal 5 and 6, both -> leaves 2, 3 (a shared subtree below 5 and 6?) */
struct share_log {
	uint64_t child[32], again[32], left[8];
	int left_dmg[8];
	unsigned nr_child, nr_left;
	uint64_t skip, reenter;
};

static int share_child(void *ctx, uint64_t b, int again)
{
	struct share_log *l = ctx;

	l->child[l->nr_child] = b;
	l->again[l->nr_child++] = (uint64_t)again;
	if (b == l->skip)
		return BT_CHILD_SKIP;
	return b == l->reenter ? BT_CHILD_AGAIN : BT_CHILD_ENTER;
}

static void share_leave(void *ctx, uint64_t b, int damaged)
{
	struct share_log *l = ctx;

	l->left[l->nr_left] = b;
	l->left_dmg[l->nr_left++] = damaged;
}

/* root 1 -> internal 5 (keys 0, 10 -> leaves 2, 3) and internal 6 (key 20 -> leaf 4) */
static struct ioe *two_levels(void)
{
	struct ioe *e = three_leaves();
	uint64_t k5[2] = { 0, 10 }, v5[2] = { 2, 3 }, k6[1] = { 20 }, v6[1] = { 4 };
	uint64_t rk[2] = { 0, 20 }, rv[2] = { 5, 6 };

	put_node(e, 5, BT_INTERNAL_NODE, 8, k5, v5, 2);
	put_node(e, 6, BT_INTERNAL_NODE, 8, k6, v6, 1);
	put_node(e, 1, BT_INTERNAL_NODE, 8, rk, rv, 2);
	return e;
}

Test(walk, child_can_skip_a_subtree_or_reenter_it_and_below_is_told_so)
{
	struct ioe *e = two_levels();
	struct bc *bc = bc_create(e, 64);
	struct share_log l = { .skip = 6, .reenter = 5 };
	struct bt_walk_ops ops = { .child = share_child, .leave = share_leave };

	cr_assert_eq(bt_walk(bc, 1, 8, &ops, &l), 0);
	cr_assert_eq(l.nr_child, 4, "5, 2, 3 and 6 are offered: 6's child is not");
	cr_assert(l.child[0] == 5 && !l.again[0]);
	cr_assert(l.child[1] == 2 && l.again[1], "below a re-entered node, again is set");
	cr_assert(l.child[2] == 3 && l.again[2]);
	cr_assert(l.child[3] == 6 && !l.again[3], "a sibling of the re-entered node is not");
	cr_assert_eq(l.nr_left, 2);
	cr_assert(l.left[0] == 5 && l.left[1] == 1, "leave() comes after the children, root last");
	cr_assert(!l.left_dmg[0] && !l.left_dmg[1]);
	bc_destroy(bc);
	ioe_destroy(e);
}

Test(walk, leave_says_which_internal_nodes_have_damage_below)
{
	struct ioe *e = two_levels();
	struct bc *bc;
	struct share_log l = { 0 };
	struct walk_log w = { 0 };
	struct bt_walk_ops ops = { .child = share_child, .leave = share_leave };

	ioe_mem_data(e)[3 * MD_BLOCK_SIZE + 100] ^= 1;   /* leaf 3: bad checksum */
	bc = bc_create(e, 64);
	cr_assert_eq(bt_walk(bc, 1, 8, &ops, &l), 0);
	cr_assert_eq(l.nr_left, 3);
	cr_assert(l.left[0] == 5 && l.left_dmg[0], "5 holds the bad leaf");
	cr_assert(l.left[1] == 6 && !l.left_dmg[1], "6 is sound");
	cr_assert(l.left[2] == 1 && l.left_dmg[2], "and so, above it, does the root");
	ops = (struct bt_walk_ops){ .leaf = log_leaf, .damage = log_damage, .flags = BT_WALK_STOP };
	cr_assert_eq(bt_walk(bc, 1, 8, &ops, &w), -EILSEQ, "BT_WALK_STOP returns the fault");
	cr_assert_eq(w.leaves, 1, "the walk ended at the bad leaf");
	cr_assert_eq(w.dblock, 3);
	bc_destroy(bc);
	ioe_destroy(e);
}

Test(walk, strict_drops_a_node_whose_fault_is_not_fatal)
{
	struct ioe *e = three_leaves();
	uint8_t *b = ioe_mem_data(e) + 3 * MD_BLOCK_SIZE;
	struct bc *bc;
	struct walk_log w = { 0 };
	struct bt_walk_ops ops = { .leaf = log_leaf, .damage = log_damage };

	put_le32(b + 20, 250);   /* max_entries not a multiple of 3: non-fatal */
	bc_csum_prepare(b, 3, MD_BLOCK_SIZE, BTREE_CSUM_XOR);
	bc = bc_create(e, 64);
	cr_assert_eq(bt_walk(bc, 1, 8, &ops, &w), 0);
	cr_assert_eq(w.leaves, 3, "by default the leaf is still used");
	cr_assert_eq(w.damages, 1);
	cr_assert_eq(w.dcode, RC_NODE_MAX_ENTRIES_NOT_DIV3);
	memset(&w, 0, sizeof(w));
	ops.flags = BT_WALK_STRICT;
	cr_assert_eq(bt_walk(bc, 1, 8, &ops, &w), 0);
	cr_assert_eq(w.leaves, 2, "strict: it is dropped");
	cr_assert(w.dlo == 10 && w.dhi == 20);
	bc_destroy(bc);
	ioe_destroy(e);
}

struct defer_log {
	uint64_t block[8], lo[8], hi[8];
	unsigned nr;
};

static int log_defer(void *ctx, uint64_t b, uint64_t lo, uint64_t hi)
{
	struct defer_log *d = ctx;

	d->block[d->nr] = b;
	d->lo[d->nr] = lo;
	d->hi[d->nr++] = hi;
	return 0;
}

static void ignore_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			  uint64_t lo, uint64_t hi, const char *msg)
{
	(void)ctx, (void)level, (void)code, (void)block, (void)lo, (void)hi, (void)msg;
}

Test(walk, deferred_leaves_are_read_only_to_learn_the_depth)
{
	struct ioe *e = three_leaves();
	struct logged_src s = { .bc = bc_create(e, 64) };
	struct bt_source src = { lsrc_get, lsrc_put, NULL, &s };
	struct defer_log d = { 0 };
	struct bt_walk_ops ops = { .defer_leaf = log_defer, .damage = ignore_damage };
	uint64_t k[2] = { 15, 12 }, v[2] = { 0, 0 };

	cr_assert_eq(bt_walk_keys(&src, 1, 0, UINT64_MAX, 0, 8, &ops, &d), 0);
	cr_assert_eq(d.nr, 3);
	cr_assert(d.block[0] == 2 && d.block[1] == 3 && d.block[2] == 4);
	cr_assert(d.lo[1] == 10 && d.hi[1] == 20 && d.hi[2] == UINT64_MAX);
	cr_assert(read_block(&s, 2), "the first leaf is read");
	cr_assert(!read_block(&s, 3) && !read_block(&s, 4), "the others are not");
	/* a first leaf with keys out of order is checked, not handed out */
	put_node(e, 2, BT_LEAF_NODE, 8, k, v, 2);
	bc_destroy(s.bc);
	s = (struct logged_src){ .bc = bc_create(e, 64) };
	memset(&d, 0, sizeof(d));
	cr_assert_eq(bt_walk_keys(&src, 1, 0, UINT64_MAX, 0, 8, &ops, &d), 0);
	cr_assert_eq(d.nr, 2, "leaf 2 is damaged: only 3 and 4 are deferred");
	cr_assert(d.block[0] == 3 && d.block[1] == 4);
	bc_destroy(s.bc);
	ioe_destroy(e);
}

/*----------------------------------------------------------------*/
/* The memoising walker's leaf thread (BT_TREE_LEAF_THREAD) */

#include <pthread.h>

#define LT_INNER 4u
#define LT_LEAVES 200u   /* per inner node */

/* root 1 -> inner nodes 2..5 -> LT_LEAVES leaves each, keys 4 apart, 4 entries a leaf */
static struct ioe *wide_tree(void)
{
	struct ioe *e = ioe_mem_create(16 + LT_INNER * LT_LEAVES);
	uint64_t rk[LT_INNER], rv[LT_INNER], ik[LT_LEAVES], iv[LT_LEAVES];

	for (uint32_t a = 0; a < LT_INNER; a++) {
		for (uint32_t l = 0; l < LT_LEAVES; l++) {
			uint64_t leaf = 16 + a * LT_LEAVES + l, first = (a * LT_LEAVES + l) * 4ull;
			uint64_t k[4] = { first, first + 1, first + 2, first + 3 }, v[4] = { 7, 7, 7, 7 };

			put_node(e, leaf, BT_LEAF_NODE, 8, k, v, 4);
			ik[l] = first;
			iv[l] = leaf;
		}
		put_node(e, 2 + a, BT_INTERNAL_NODE, 8, ik, iv, LT_LEAVES);
		rk[a] = a * LT_LEAVES * 4ull;
		rv[a] = 2 + a;
	}
	put_node(e, 1, BT_INTERNAL_NODE, 8, rk, rv, LT_INNER);
	return e;
}

struct order_log {
	uint64_t first[LT_INNER * LT_LEAVES + 8];
	unsigned nr, other_thread, fail_at;
	pthread_t walker;
};

static int order_leaf(void *ctx, const struct bt_node *n)
{
	struct order_log *o = ctx;

	if (!pthread_equal(pthread_self(), o->walker))
		o->other_thread++;
	if (o->fail_at && o->nr + 1 == o->fail_at)
		return -EIO;
	cr_assert_lt(o->nr, sizeof(o->first) / sizeof(o->first[0]));
	o->first[o->nr++] = bt_key(n, 0);
	return 0;
}

static int order_walk(struct ioe *e, unsigned flags, struct order_log *o, uint64_t *count)
{
	struct bt_walker *w;
	struct bt_walk_tree t = { .kind = 1, .leaf_vsize = 8, .flags = flags, .leaf = order_leaf,
				  .ctx = o };
	struct bt_summary s;
	int r;

	o->walker = pthread_self();
	cr_assert_eq(bt_walker_create(e, &w), 0);
	r = bt_walker_walk(w, &t, 1, &s);
	/* roots walked before (a leaf, the subtree at 3): their summaries, no leaf() again */
	if (!r)
		r = bt_walker_walk(w, &t, 16, &s);
	if (!r)
		r = bt_walker_walk(w, &t, 3, &s);
	*count = s.count;
	bt_walker_destroy(w);
	return r;
}

Test(walk, leaf_thread_sees_the_leaves_in_walk_order_off_the_walking_thread)
{
	struct ioe *e = wide_tree();
	static struct order_log plain, threaded;
	uint64_t c1, c2;

	cr_assert_eq(order_walk(e, 0, &plain, &c1), 0);
	cr_assert_eq(order_walk(e, BT_TREE_LEAF_THREAD, &threaded, &c2), 0);
	cr_assert_eq(plain.nr, LT_INNER * LT_LEAVES, "%u leaves", plain.nr);
	cr_assert_eq(threaded.nr, plain.nr);
	cr_assert_eq(memcmp(threaded.first, plain.first, plain.nr * sizeof(plain.first[0])), 0);
	for (unsigned i = 1; i < plain.nr; i++)
		cr_assert_lt(plain.first[i - 1], plain.first[i]);
	cr_assert_eq(c1, c2);
	cr_assert_eq(c1, LT_LEAVES * 4ull, "the shared subtree's summary");
	cr_assert_eq(plain.other_thread, 0);
	cr_assert_gt(threaded.other_thread, 0, "leaves ran on the leaf thread");
	ioe_destroy(e);
}

/* leaf_prep(): the node's block, first key and entry count, and the thread it ran on */
struct prep_out {
	uint64_t blocknr, key0;
	uint32_t nr;
	int on_walker;
};

struct prep_log {
	struct order_log o;
	pthread_t walker;
	unsigned preps, checked, without;
};

static void prep_leaf_prep(void *ctx, const struct bt_node *n, void *out)
{
	struct prep_log *p = ctx;
	struct prep_out po = { n->blocknr, bt_key(n, 0), n->nr_entries,
			       pthread_equal(pthread_self(), p->walker) };

	cr_assert_null(n->prep);
	memcpy(out, &po, sizeof(po));
	p->preps++;
}

static int prep_leaf(void *ctx, const struct bt_node *n)
{
	struct prep_log *p = ctx;

	if (n->prep) {
		const struct prep_out *po = n->prep;

		/* this leaf's own output, made on the walking thread */
		cr_assert_eq(po->blocknr, n->blocknr, "leaf %llu got %llu's",
			     (unsigned long long)n->blocknr, (unsigned long long)po->blocknr);
		cr_assert_eq(po->key0, bt_key(n, 0));
		cr_assert_eq(po->nr, n->nr_entries);
		cr_assert(po->on_walker);
		p->checked++;
	} else {
		p->without++;
	}
	return order_leaf(&p->o, n);
}

/*
 * leaf_prep() runs on the walking thread for each leaf handed to the leaf
 * thread, and each leaf() there gets its own leaf's output (every job's
 * room stays its own while more jobs are queued than the ring holds);
 * without the leaf thread, leaf() gets none and the walk is the same.
 */
Test(walk, leaf_prep_output_reaches_the_leaf_it_was_made_for)
{
	struct ioe *e = wide_tree();
	static struct prep_log with, plain;

	for (int threaded = 0; threaded <= 1; threaded++) {
		struct prep_log *p = threaded ? &with : &plain;
		struct bt_walker *w;
		struct bt_walk_tree t = { .kind = 1, .leaf_vsize = 8,
					  .flags = threaded ? BT_TREE_LEAF_THREAD : 0u,
					  .leaf = prep_leaf, .leaf_prep = prep_leaf_prep, .ctx = p };
		struct bt_summary s;

		memset(p, 0, sizeof(*p));
		p->walker = p->o.walker = pthread_self();
		cr_assert_eq(bt_walker_create(e, &w), 0);
		cr_assert_eq(bt_walker_walk(w, &t, 1, &s), 0);
		bt_walker_destroy(w);
	}
	cr_assert_eq(with.o.nr, LT_INNER * LT_LEAVES);
	cr_assert_eq(with.preps, with.o.nr, "one prep a leaf: %u", with.preps);
	cr_assert_eq(with.checked, with.o.nr);
	cr_assert_gt(with.o.other_thread, 0, "leaves ran on the leaf thread");
	cr_assert_eq(plain.preps, 0);
	cr_assert_eq(plain.without, plain.o.nr);
	cr_assert_eq(memcmp(with.o.first, plain.o.first, plain.o.nr * sizeof(plain.o.first[0])), 0);
	ioe_destroy(e);
}

Test(walk, an_error_from_the_leaf_thread_ends_the_walk)
{
	struct ioe *e = wide_tree();
	static struct order_log o = { .fail_at = 333 };
	uint64_t c;

	cr_assert_eq(order_walk(e, BT_TREE_LEAF_THREAD, &o, &c), -EIO);
	cr_assert_eq(o.nr, 332, "no leaf after the failing one: %u", o.nr);
	ioe_destroy(e);
}

struct dmg_log {
	unsigned nr;
	uint64_t block, lo, hi;
	enum rep_code code;
	char what[64];
};

static void dmg_note(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
		     uint64_t lo, uint64_t hi, const char *what)
{
	struct dmg_log *d = ctx;

	if (level < DMG_FATAL)
		return;   /* the small test leaves are underfull */
	if (!d->nr++) {
		d->block = block;
		d->lo = lo;
		d->hi = hi;
		d->code = code;
		snprintf(d->what, sizeof(d->what), "%s", what);
	}
}

struct both_log {
	struct order_log o;
	struct dmg_log d;
};

static int both_leaf(void *ctx, const struct bt_node *n)
{
	return order_leaf(&((struct both_log *)ctx)->o, n);
}

static void both_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			uint64_t lo, uint64_t hi, const char *what)
{
	dmg_note(&((struct both_log *)ctx)->d, level, code, block, lo, hi, what);
}

/*
 * A bad sector under one leaf in the middle of a batch read as one run:
 * the run is read again block by block, so only that leaf is lost, with
 * its key range, and every other leaf is walked (one thread or two).
 */
Test(walk, a_bad_block_inside_a_batch_costs_only_its_own_leaf)
{
	for (unsigned flags = 0; flags <= BT_TREE_LEAF_THREAD; flags += BT_TREE_LEAF_THREAD) {
		struct ioe *e = wide_tree();
		static struct both_log b;
		uint64_t bad = 16 + LT_LEAVES + 57;   /* inner node 3's 58th leaf */
		struct bt_walker *w;
		struct bt_walk_tree t = { .kind = 1, .leaf_vsize = 8, .flags = flags,
					  .leaf = both_leaf, .damage = both_damage, .ctx = &b };
		struct bt_summary s;

		memset(&b, 0, sizeof(b));
		b.o.walker = pthread_self();
		ioe_mem_bad_block(e, bad);
		cr_assert_eq(bt_walker_create(e, &w), 0);
		cr_assert_eq(bt_walker_walk(w, &t, 1, &s), 0);
		cr_assert_eq(b.d.nr, 1, "one fault, not %u", b.d.nr);
		cr_assert_eq(b.d.block, bad);
		cr_assert_eq(b.d.lo, (LT_LEAVES + 57) * 4ull);
		cr_assert_eq(b.d.hi, (LT_LEAVES + 58) * 4ull);
		cr_assert_str_eq(b.d.what, "io error");
		cr_assert_eq(b.o.nr, LT_INNER * LT_LEAVES - 1, "%u leaves", b.o.nr);
		cr_assert(s.flags & BT_SUM_DAMAGED);
		for (unsigned i = 1; i < b.o.nr; i++)
			cr_assert_lt(b.o.first[i - 1], b.o.first[i]);
		bt_walker_destroy(w);
		ioe_destroy(e);
	}
}

/* Every fault and leaf of a walk, for comparing walks. */
struct full_log {
	struct order_log o;
	unsigned nr_dmg;
	uint64_t dmg[16][3];
	enum rep_code code[16];
};

static int full_leaf(void *ctx, const struct bt_node *n)
{
	return order_leaf(&((struct full_log *)ctx)->o, n);
}

static void full_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			uint64_t lo, uint64_t hi, const char *what)
{
	struct full_log *f = ctx;

	(void)what;
	if (level < DMG_FATAL || f->nr_dmg == 16)
		return;
	f->dmg[f->nr_dmg][0] = block;
	f->dmg[f->nr_dmg][1] = lo;
	f->dmg[f->nr_dmg][2] = hi;
	f->code[f->nr_dmg++] = code;
}

/*
 * Read-ahead changes when blocks are read, nothing else: a leaf with a bad
 * checksum, a leaf whose keys do not rise and a bad sector under inner
 * nodes that are read ahead (their checksums and key order are then
 * verified on the reader thread), and an inner node
 * with a bad checksum (not read ahead), give the same faults and leaves, in the same
 * order, with and without it and with either thread setting; the children
 * of the sound inner nodes after the first come from read-ahead.
 */
Test(walk, read_ahead_gives_the_walk_it_would_read_itself)
{
	static struct full_log base, ra;

	for (unsigned flags = 0; flags <= BT_TREE_LEAF_THREAD; flags += BT_TREE_LEAF_THREAD) {
		for (int on = 0; on <= 1; on++) {
			struct ioe *e = wide_tree();
			struct full_log *f = on ? &ra : &base;
			struct bt_walker *w;
			struct bt_walk_tree t = { .kind = 1, .leaf_vsize = 8, .flags = flags,
						  .leaf = full_leaf, .damage = full_damage, .ctx = f };
			struct bt_summary s;

			memset(f, 0, sizeof(*f));
			f->o.walker = pthread_self();
			ioe_mem_data(e)[(16 + LT_LEAVES + 4) * MD_BLOCK_SIZE + 100] ^= 0x40;  /* 3's 5th leaf */
			ioe_mem_bad_block(e, 16 + 2 * LT_LEAVES + 9);   /* inner node 4's 10th leaf */
			ioe_mem_data(e)[5 * MD_BLOCK_SIZE + 100] ^= 0x40;  /* inner node 5: bad checksum */
			{
				/* inner node 4's 3rd leaf: keys 1 and 2 swapped, checksum sound */
				uint64_t lb = 16 + 2 * LT_LEAVES + 2;
				uint8_t *d = ioe_mem_data(e) + lb * MD_BLOCK_SIZE, k[8];

				memcpy(k, d + BT_HEADER_SIZE + 8, 8);
				memcpy(d + BT_HEADER_SIZE + 8, d + BT_HEADER_SIZE + 16, 8);
				memcpy(d + BT_HEADER_SIZE + 16, k, 8);
				bc_csum_prepare(d, lb, MD_BLOCK_SIZE, BTREE_CSUM_XOR);
			}
			cr_assert_eq(bt_walker_create(e, &w), 0);
			bt_walker_set_readahead(w, on);
			cr_assert_eq(bt_walker_walk(w, &t, 1, &s), 0);
			if (on)
				cr_assert_eq(bt_walker_readahead_used(w), 2, "inner nodes 3 and 4: %llu",
					     (unsigned long long)bt_walker_readahead_used(w));
			else
				cr_assert_eq(bt_walker_readahead_used(w), 0);
			cr_assert(s.flags & BT_SUM_DAMAGED);
			bt_walker_destroy(w);
			ioe_destroy(e);
		}
		cr_assert_eq(base.nr_dmg, 4,
			     "the bad leaf, the unordered leaf, the bad sector and the bad inner node: %u",
			     base.nr_dmg);
		cr_assert_eq(base.dmg[0][0], 16 + LT_LEAVES + 4);
		cr_assert_eq(base.code[0], RC_NODE_CSUM);
		cr_assert_eq(base.dmg[1][0], 16 + 2 * LT_LEAVES + 2);
		cr_assert_eq(base.code[1], RC_NODE_KEYS_ORDER);
		cr_assert_eq(base.dmg[2][0], 16 + 2 * LT_LEAVES + 9);
		cr_assert_eq(base.dmg[3][0], 5);
		cr_assert_eq(base.o.nr, 3 * LT_LEAVES - 3, "%u leaves", base.o.nr);
		cr_assert_eq(ra.nr_dmg, base.nr_dmg);
		cr_assert_eq(memcmp(ra.dmg, base.dmg, sizeof(base.dmg)), 0);
		cr_assert_eq(memcmp(ra.code, base.code, sizeof(base.code)), 0);
		cr_assert_eq(ra.o.nr, base.o.nr);
		cr_assert_eq(memcmp(ra.o.first, base.o.first, base.o.nr * sizeof(base.o.first[0])), 0);
	}
}

/*
 * bt_walker_hint() changes when the next tree's top is read, nothing
 * else: the inner nodes walked as trees one after another, each hinted
 * while the one before is walked, give the same leaves and faults as
 * without hints (a bad sector under one, a bad checksum on another's root,
 * a hint no walk takes); with read-ahead on, the three roots walked after
 * a hint come from it.
 */
Test(walk, hinted_roots_give_the_walks_they_would_read_themselves)
{
	static struct full_log base, hinted;

	for (int on = 0; on <= 1; on++) {
		struct ioe *e = wide_tree();
		struct full_log *f = on ? &hinted : &base;
		struct bt_walker *w;
		struct bt_walk_tree t = { .kind = 1, .leaf_vsize = 8, .flags = BT_TREE_LEAF_THREAD,
					  .leaf = full_leaf, .damage = full_damage, .ctx = f };
		struct bt_summary s;

		memset(f, 0, sizeof(*f));
		f->o.walker = pthread_self();
		ioe_mem_bad_block(e, 16 + 2 * LT_LEAVES + 9);      /* inner node 4's 10th leaf */
		ioe_mem_data(e)[5 * MD_BLOCK_SIZE + 100] ^= 0x40;  /* inner node 5: bad checksum */
		cr_assert_eq(bt_walker_create(e, &w), 0);
		bt_walker_set_bound(w, 16 + LT_INNER * LT_LEAVES);
		bt_walker_set_readahead(w, on);
		for (uint64_t root = 2; root <= 5; root++) {
			if (root < 5)
				bt_walker_hint(w, root + 1, 8);
			else
				bt_walker_hint(w, 1, 8);   /* taken by no walk */
			cr_assert_eq(bt_walker_walk(w, &t, root, &s), 0);
		}
		cr_assert_eq(bt_walker_hints_used(w), on ? 3 : 0, "%llu roots from hints",
			     (unsigned long long)bt_walker_hints_used(w));
		bt_walker_destroy(w);
		ioe_destroy(e);
	}
	cr_assert_eq(base.nr_dmg, 2, "the bad sector and the bad root: %u", base.nr_dmg);
	cr_assert_eq(base.dmg[0][0], 16 + 2 * LT_LEAVES + 9);
	cr_assert_eq(base.dmg[1][0], 5);
	cr_assert_eq(base.code[1], RC_NODE_CSUM);
	cr_assert_eq(base.o.nr, 3 * LT_LEAVES - 1, "%u leaves", base.o.nr);
	cr_assert_eq(hinted.nr_dmg, base.nr_dmg);
	cr_assert_eq(memcmp(hinted.dmg, base.dmg, sizeof(base.dmg)), 0);
	cr_assert_eq(memcmp(hinted.code, base.code, sizeof(base.code)), 0);
	cr_assert_eq(hinted.o.nr, base.o.nr);
	cr_assert_eq(memcmp(hinted.o.first, base.o.first, base.o.nr * sizeof(base.o.first[0])), 0);
}

/* A hinted root that cannot be read is the fault it is without the hint. */
Test(walk, a_hinted_root_that_cannot_be_read_is_an_io_fault)
{
	for (int on = 0; on <= 1; on++) {
		struct ioe *e = wide_tree();
		struct full_log f = { 0 };
		struct bt_walker *w;
		struct bt_walk_tree t = { .kind = 1, .leaf_vsize = 8, .leaf = full_leaf,
					  .damage = full_damage, .ctx = &f };
		struct bt_summary s;

		f.o.walker = pthread_self();
		ioe_mem_bad_block(e, 3);
		cr_assert_eq(bt_walker_create(e, &w), 0);
		bt_walker_set_bound(w, 16 + LT_INNER * LT_LEAVES);
		bt_walker_set_readahead(w, on);
		bt_walker_hint(w, 3, 8);
		cr_assert_eq(bt_walker_walk(w, &t, 2, &s), 0);
		cr_assert_eq(bt_walker_walk(w, &t, 3, &s), 0);
		cr_assert(s.flags & BT_SUM_BAD);
		cr_assert_eq(bt_walker_hints_used(w), (uint64_t)on);
		cr_assert_eq(f.nr_dmg, 1, "read-ahead %d: %u faults", on, f.nr_dmg);
		cr_assert_eq(f.dmg[0][0], 3);
		cr_assert_eq(f.code[0], RC_NODE_IO);
		cr_assert_eq(f.o.nr, LT_LEAVES, "%u leaves", f.o.nr);
		bt_walker_destroy(w);
		ioe_destroy(e);
	}
}

/*
 * A hint no walk takes is dropped, and its slot serves read-ahead like any
 * other afterwards: the whole tree walked after it has its two sound inner
 * nodes after the first read ahead, as without the hint.
 */
Test(walk, an_untaken_hint_leaves_read_ahead_as_it_was)
{
	for (int hinted = 0; hinted <= 1; hinted++) {
		struct ioe *e = wide_tree();
		struct full_log f = { 0 };
		struct bt_walker *w;
		struct bt_walk_tree t = { .kind = 1, .leaf_vsize = 8, .leaf = full_leaf,
					  .damage = full_damage, .ctx = &f };
		struct bt_summary s;

		f.o.walker = pthread_self();
		ioe_mem_data(e)[5 * MD_BLOCK_SIZE + 100] ^= 0x40;  /* inner node 5: bad checksum */
		cr_assert_eq(bt_walker_create(e, &w), 0);
		bt_walker_set_bound(w, 16 + LT_INNER * LT_LEAVES);
		bt_walker_set_readahead(w, 1);
		if (hinted)
			bt_walker_hint(w, 2, 8);   /* no walk starts at 2 */
		for (int i = 0; i < 2; i++)
			cr_assert_eq(bt_walker_walk(w, &t, 5, &s), 0);
		cr_assert_eq(bt_walker_walk(w, &t, 1, &s), 0);
		cr_assert_eq(bt_walker_hints_used(w), 0);
		cr_assert_eq(bt_walker_readahead_used(w), 2, "hinted %d: inner nodes 3 and 4: %llu",
			     hinted, (unsigned long long)bt_walker_readahead_used(w));
		cr_assert_eq(f.o.nr, 3 * LT_LEAVES, "%u leaves", f.o.nr);
		bt_walker_destroy(w);
		ioe_destroy(e);
	}
}

/*
 * A hinted tree's first inner node has its children read ahead too (the
 * reader that read the root's children reads them next), and that read is
 * kept for the hinted tree's walk when another tree is walked first: tree
 * 1 hinted, tree 6 (an inner node copied from 2, its leaves shared) walked,
 * then tree 1.  Leaves and faults (a bad checksum and a bad sector among
 * inner node 2's leaves, a bad checksum on a leaf of 3) are those of the
 * walks without read-ahead; with it the root's children, 2's (the
 * follow-up), 3's and 4's children come from read-ahead: 4 batches.
 */
Test(walk, a_hinted_trees_first_inner_node_has_its_children_read_ahead_too)
{
	static struct full_log base, ra;

	for (int on = 0; on <= 1; on++) {
		struct ioe *e = wide_tree();
		struct full_log *f = on ? &ra : &base;
		struct bt_walker *w;
		struct bt_walk_tree t = { .kind = 1, .leaf_vsize = 8, .flags = BT_TREE_LEAF_THREAD,
					  .leaf = full_leaf, .damage = full_damage, .ctx = f };
		struct bt_summary s;
		uint8_t *d = ioe_mem_data(e);

		memset(f, 0, sizeof(*f));
		f->o.walker = pthread_self();
		/* tree 6: inner node 5's copy at block 6 (a free block below the leaves) */
		memcpy(d + 6 * MD_BLOCK_SIZE, d + 5 * MD_BLOCK_SIZE, MD_BLOCK_SIZE);
		bc_csum_prepare(d + 6 * MD_BLOCK_SIZE, 6, MD_BLOCK_SIZE, BTREE_CSUM_XOR);
		d[(16 + 2) * MD_BLOCK_SIZE + 100] ^= 0x40;              /* 2's 3rd leaf */
		ioe_mem_bad_block(e, 16 + 9);                           /* 2's 10th leaf */
		d[(16 + LT_LEAVES + 7) * MD_BLOCK_SIZE + 100] ^= 0x40;  /* 3's 8th leaf */
		cr_assert_eq(bt_walker_create(e, &w), 0);
		bt_walker_set_bound(w, 16 + LT_INNER * LT_LEAVES);
		bt_walker_set_readahead(w, on);
		bt_walker_hint(w, 1, 8);
		cr_assert_eq(bt_walker_walk(w, &t, 6, &s), 0);
		cr_assert_eq(bt_walker_walk(w, &t, 1, &s), 0);
		cr_assert(s.flags & BT_SUM_DAMAGED);
		cr_assert_eq(bt_walker_hints_used(w), (uint64_t)on);
		/* tree 6's children: read by the walk (no hint), none of them inner nodes */
		cr_assert_eq(bt_walker_readahead_used(w), on ? 4u : 0u,
			     "read-ahead %d: %llu batches", on,
			     (unsigned long long)bt_walker_readahead_used(w));
		bt_walker_destroy(w);
		ioe_destroy(e);
	}
	cr_assert_eq(base.nr_dmg, 3, "two bad leaves and the bad sector: %u", base.nr_dmg);
	cr_assert_eq(base.dmg[0][0], 16 + 2);
	cr_assert_eq(base.code[0], RC_NODE_CSUM);
	cr_assert_eq(base.dmg[1][0], 16 + 9);
	cr_assert_eq(base.code[1], RC_NODE_IO);
	cr_assert_eq(base.dmg[2][0], 16 + LT_LEAVES + 7);
	/* tree 6's leaves, then tree 1's but for the three bad ones and 5's (seen) */
	cr_assert_eq(base.o.nr, LT_LEAVES + 3 * LT_LEAVES - 3, "%u leaves", base.o.nr);
	cr_assert_eq(ra.nr_dmg, base.nr_dmg);
	cr_assert_eq(memcmp(ra.dmg, base.dmg, sizeof(base.dmg)), 0);
	cr_assert_eq(memcmp(ra.code, base.code, sizeof(base.code)), 0);
	cr_assert_eq(ra.o.nr, base.o.nr);
	cr_assert_eq(memcmp(ra.o.first, base.o.first, base.o.nr * sizeof(base.o.first[0])), 0);
}

/* bt_keys_rise (vectorised where the CPU allows) against the plain loop. */
Test(btree, keys_rise_matches_a_pairwise_loop_at_every_length_and_position)
{
	uint64_t keys[260];
	uint64_t seed = 12345;

	for (uint32_t nr = 0; nr <= 260; nr++) {
		/* rising keys, some above 2^63 (the comparison is unsigned) */
		for (uint32_t i = 0; i < nr; i++)
			keys[i] = (i < nr / 2 ? 0 : 0x8000000000000000ull) + 3ull * i;
		cr_assert(bt_keys_rise((const uint8_t *)keys, nr), "rising, %u keys", nr);
		for (uint32_t at = 1; at < nr; at++) {
			uint64_t keep = keys[at];

			keys[at] = keys[at - 1];   /* equal neighbours */
			cr_assert(!bt_keys_rise((const uint8_t *)keys, nr), "equal at %u of %u", at, nr);
			keys[at] = keep;
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			keep = keys[at - 1];
			keys[at - 1] = keys[at] + 1 + (seed >> 40);   /* a fall */
			cr_assert(!bt_keys_rise((const uint8_t *)keys, nr), "fall at %u of %u", at, nr);
			keys[at - 1] = keep;
		}
	}
}
