/* The bottom-up builder: full leaves, and sharing decided per leaf. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block-cache/block-cache.h"
#include "btree/btree_builder.h"
#include "btree/walk.h"
#include "util/endian.h"

#define NR_BLOCKS 4096

struct fx {
	struct ioe *e;
	struct tm_mgr *tm;
	struct bt_dedup *d;
	struct bt_builder *b;
};

static void fx_init(struct fx *f)
{
	struct bt_builder_opts o = { .value_size = 8 };

	f->e = ioe_mem_create(NR_BLOCKS);
	cr_assert_eq(tm_create(f->e, NR_BLOCKS, &f->tm), 0);
	cr_assert_eq(tm_claim(f->tm, 0), 0);
	f->d = bt_dedup_create(10);
	cr_assert(f->d);
	o.dedup = f->d;
	cr_assert_eq(bt_builder_create(f->tm, &o, &f->b), 0);
}

static void fx_fini(struct fx *f)
{
	bt_builder_destroy(f->b);
	bt_dedup_destroy(f->d);
	tm_destroy(f->tm);
	ioe_destroy(f->e);
}

struct tree {
	uint64_t key[2000], val[2000];
	unsigned n;
};

/* n entries from key base: gaps of 10 or 11, values consecutive */
static void tree_make_at(struct tree *t, unsigned n, uint64_t seed, uint64_t base)
{
	t->n = n;
	for (unsigned i = 0; i < n; i++) {
		t->key[i] = base + 10 * (uint64_t)i + (i / 7);
		t->val[i] = seed * 100000 + i;
	}
}

static void tree_make(struct tree *t, unsigned n, uint64_t seed)
{
	tree_make_at(t, n, seed, 0);
}

static void tree_insert(struct tree *t, unsigned at, uint64_t key, uint64_t val)
{
	memmove(&t->key[at + 1], &t->key[at], (t->n - at) * sizeof(t->key[0]));
	memmove(&t->val[at + 1], &t->val[at], (t->n - at) * sizeof(t->val[0]));
	t->key[at] = key;
	t->val[at] = val;
	t->n++;
}

static void tree_remove(struct tree *t, unsigned at)
{
	memmove(&t->key[at], &t->key[at + 1], (t->n - at - 1) * sizeof(t->key[0]));
	memmove(&t->val[at], &t->val[at + 1], (t->n - at - 1) * sizeof(t->val[0]));
	t->n--;
}

/* Builds t; returns the root and sets *new_blocks to the blocks it allocated. */
static uint64_t build(struct fx *f, const struct tree *t, uint64_t *new_blocks)
{
	uint64_t used = tm_nr_used(f->tm), root;

	for (unsigned i = 0; i < t->n; i++) {
		le64 v = cpu_to_le64(t->val[i]);
		cr_assert_eq(bt_builder_add(f->b, t->key[i], &v), 0);
	}
	cr_assert_eq(bt_builder_nr_entries(f->b), t->n);
	cr_assert_eq(bt_builder_finish(f->b, &root), 0);
	*new_blocks = tm_nr_used(f->tm) - used;
	return root;
}

struct check {
	const struct tree *t;
	unsigned at, leaves, small;
	int bad;
};

static int check_leaf(void *ctx, const struct bt_node *n)
{
	struct check *c = ctx;

	c->leaves++;
	if (n->nr_entries < n->max_entries / 3)
		c->small++;
	for (uint32_t i = 0; i < n->nr_entries; i++, c->at++)
		if (c->at >= c->t->n || bt_key(n, i) != c->t->key[c->at] ||
		    get_le64(bt_value(n, i)) != c->t->val[c->at])
			c->bad = 1;
	return 0;
}

static void damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
		   uint64_t lo, uint64_t hi, const char *msg)
{
	(void)level;
	(void)code;
	(void)block;
	(void)lo;
	(void)hi;
	cr_assert_fail("damage: %s", msg);
	((struct check *)ctx)->bad = 1;
}

/* The tree at root holds exactly t, and no leaf but a root one is underfull; returns leaves. */
static unsigned verify(struct fx *f, uint64_t root, const struct tree *t)
{
	struct bt_walk_ops ops = { .leaf = check_leaf, .damage = damage };
	struct check c = { .t = t };
	struct bc *bc;

	cr_assert_eq(tm_flush(f->tm), 0);
	bc = bc_create(f->e, 64);
	cr_assert_eq(bt_walk(bc, root, 8, &ops, &c), 0);
	bc_destroy(bc);
	cr_assert(!c.bad, "the tree does not hold the entries added");
	cr_assert_eq(c.at, t->n);
	if (c.leaves > 1)
		cr_assert_eq(c.small, 0, "%u underfull leaves", c.small);
	return c.leaves;
}

static struct tree a, b;

Test(builder, leaves_are_full)
{
	struct fx f;
	uint64_t nb, root;

	fx_init(&f);
	tree_make(&a, 1000, 1);
	root = build(&f, &a, &nb);
	cr_assert_eq(verify(&f, root, &a), 4);   /* 252 252 252 244 */
	cr_assert_eq(nb, 5);                     /* and the root */
	tree_make(&a, 253, 2);
	root = build(&f, &a, &nb);
	cr_assert_eq(verify(&f, root, &a), 2);   /* 253: two leaves, none underfull */
	tree_make(&a, 252, 3);
	root = build(&f, &a, &nb);
	cr_assert_eq(verify(&f, root, &a), 1);
	cr_assert_eq(nb, 1);
	fx_fini(&f);
}

Test(builder, an_identical_tree_shares_its_root)
{
	struct fx f;
	uint64_t nb, r1, r2;

	fx_init(&f);
	tree_make(&a, 1000, 1);
	r1 = build(&f, &a, &nb);
	r2 = build(&f, &a, &nb);
	cr_assert_eq(r1, r2);
	cr_assert_eq(nb, 0);
	cr_assert_eq(tm_ref(f.tm, r1), 2);
	/* as does a small one (a root leaf) and an empty one */
	tree_make(&a, 50, 2);
	r1 = build(&f, &a, &nb);
	r2 = build(&f, &a, &nb);
	cr_assert_eq(r1, r2);
	cr_assert_eq(nb, 0);
	a.n = 0;
	r1 = build(&f, &a, &nb);
	r2 = build(&f, &a, &nb);
	cr_assert_eq(r1, r2);
	cr_assert_eq(nb, 0);
	fx_fini(&f);
}

Test(builder, a_changed_value_costs_one_leaf_and_the_root)
{
	struct fx f;
	uint64_t nb, root;

	fx_init(&f);
	tree_make(&a, 1000, 1);
	build(&f, &a, &nb);
	b = a;
	b.val[500] += 7777;
	root = build(&f, &b, &nb);
	cr_assert_eq(verify(&f, root, &b), 4);
	cr_assert_eq(nb, 2);
	b.val[0] += 7777;   /* the first entry of the first leaf */
	root = build(&f, &b, &nb);
	cr_assert_eq(verify(&f, root, &b), 4);
	cr_assert_eq(nb, 2);   /* the new first leaf; the second one is the previous tree's */
	fx_fini(&f);
}

Test(builder, an_inserted_or_removed_entry_keeps_the_later_leaves_shared)
{
	struct fx f;
	uint64_t nb, root;

	fx_init(&f);
	tree_make(&a, 1500, 1);   /* 6 leaves */
	build(&f, &a, &nb);
	b = a;
	tree_remove(&b, 300);     /* in the second leaf */
	root = build(&f, &b, &nb);
	verify(&f, root, &b);
	cr_assert_eq(nb, 2, "%llu new blocks", (unsigned long long)nb);
	b = a;
	tree_insert(&b, 300, b.key[300] - 1, 99999999);   /* the second leaf overflows */
	root = build(&f, &b, &nb);
	verify(&f, root, &b);
	cr_assert_leq(nb, 3, "%llu new blocks", (unsigned long long)nb);
	b = a;
	for (unsigned i = 0; i < 5; i++)   /* a few entries between two leaves */
		tree_insert(&b, 504 + i, b.key[503] + 1 + i, 88888888 + i);
	cr_assert_lt(b.key[503 + 5], b.key[504 + 5]);
	root = build(&f, &b, &nb);
	verify(&f, root, &b);
	cr_assert_leq(nb, 3, "%llu new blocks", (unsigned long long)nb);
	fx_fini(&f);
}

Test(builder, an_underfull_tail_after_a_shared_leaf_is_repacked)
{
	struct fx f;
	uint64_t nb, root;
	unsigned leaves;

	fx_init(&f);
	tree_make(&a, 1000, 1);
	build(&f, &a, &nb);
	b = a;
	for (unsigned i = 0; i < 10; i++)
		b.key[b.n + i] = b.key[b.n - 1] + 1 + i, b.val[b.n + i] = 5555555 + i;
	b.n += 10;
	root = build(&f, &b, &nb);
	leaves = verify(&f, root, &b);
	cr_assert_eq(leaves, 5);
	cr_assert_leq(nb, 3, "%llu new blocks", (unsigned long long)nb);
	fx_fini(&f);
}

Test(builder, a_tree_that_fits_in_one_leaf_is_one_leaf)
{
	struct fx f;
	uint64_t nb, root;

	fx_init(&f);
	tree_make_at(&a, 150, 1, 1000);
	build(&f, &a, &nb);
	b = a;   /* the same 150, then 100 more */
	for (unsigned i = 0; i < 100; i++)
		b.key[b.n + i] = b.key[b.n - 1] + 1 + i, b.val[b.n + i] = 4444444 + i;
	b.n += 100;
	root = build(&f, &b, &nb);
	cr_assert_eq(verify(&f, root, &b), 1);
	cr_assert_eq(nb, 1);
	b = a;   /* 100, then the same 150 */
	for (unsigned i = 0; i < 100; i++)
		tree_insert(&b, i, i, 3333333 + i);
	root = build(&f, &b, &nb);
	cr_assert_eq(verify(&f, root, &b), 1);
	cr_assert_eq(nb, 1);
	fx_fini(&f);
}

Test(builder, runs_build_the_same_tree_as_single_entries)
{
	struct fx f;
	uint64_t nb, r1, r2, used;

	fx_init(&f);
	tree_make(&a, 1000, 1);
	for (unsigned i = 0; i < a.n; i++) {
		a.key[i] = 10 + i;
		a.val[i] = 7 + 5 * (uint64_t)i;
	}
	r1 = build(&f, &a, &nb);
	/* with a different step: written anew, entry by entry the same as runs */
	for (unsigned i = 0; i < a.n; i++)
		a.val[i] = 9 + 3 * (uint64_t)i;
	used = tm_nr_used(f.tm);
	cr_assert_eq(bt_builder_add_run(f.b, 10, 9, 3, 600), 0);
	cr_assert_eq(bt_builder_add_run(f.b, 610, 9 + 3 * 600, 3, 400), 0);
	cr_assert_eq(bt_builder_add_run(f.b, 1009, 1, 1, 1), -EINVAL);   /* out of order */
	cr_assert_eq(bt_builder_finish(f.b, &r2), 0);
	cr_assert_neq(r1, r2);
	cr_assert_eq(verify(&f, r2, &a), 4);
	cr_assert_eq(tm_nr_used(f.tm) - used, 5);
	/* and a run matching remembered leaves shares them */
	used = tm_nr_used(f.tm);
	cr_assert_eq(bt_builder_add_run(f.b, 10, 9, 3, 1000), 0);
	cr_assert_eq(bt_builder_finish(f.b, &r1), 0);
	cr_assert_eq(r1, r2);
	cr_assert_eq(tm_nr_used(f.tm), used);
	fx_fini(&f);
}

Test(builder, without_a_dedup_table_nothing_is_shared)
{
	struct bt_builder_opts o = { .value_size = 8 };
	struct fx f;
	uint64_t nb, r1, r2;

	fx_init(&f);
	bt_builder_destroy(f.b);
	cr_assert_eq(bt_builder_create(f.tm, &o, &f.b), 0);
	tree_make(&a, 600, 1);
	r1 = build(&f, &a, &nb);
	r2 = build(&f, &a, &nb);
	cr_assert_neq(r1, r2);
	cr_assert_eq(nb, 4);   /* 252 252 96, and the root */
	cr_assert_eq(verify(&f, r2, &a), 3);
	fx_fini(&f);
}
