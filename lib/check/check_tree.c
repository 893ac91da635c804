/*
 * thin_check's trees through the shared walker (btree/walk.h): counts
 * metadata references, formats node faults as findings and hands distinct
 * leaves to the check's leaf callbacks.
 */
#include "check/check-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int ck_walker_init(struct ck *ck)
{
	const uint32_t *salts;
	size_t nr;
	int r = bt_walker_create(ck->ioe, &ck->walker);

	if (r < 0)
		return r;
	salts = thin_block_salts(&nr);
	bt_walker_set_type_salts(ck->walker, salts, nr);
	/* a block device is read O_DIRECT: each read waits on the device */
	bt_walker_set_readahead(ck->walker, ck->ioe->is_bdev);
	return 0;
}

void ck_walker_release(struct ck *ck)
{
	bt_walker_destroy(ck->walker);
	ck->walker = NULL;
}

void ck_free_buffers(struct ck *ck)
{
	free(ck->one);
	ck->one = NULL;
}

struct walk_ctx {
	struct ck *ck;
	const struct ck_tree *t;
};

static const char *range_str(char *buf, size_t len, uint64_t lo, uint64_t hi)
{
	if (hi == UINT64_MAX)
		snprintf(buf, len, "[%llu, -]", (unsigned long long)lo);
	else
		snprintf(buf, len, "[%llu, %llu)", (unsigned long long)lo, (unsigned long long)hi);
	return buf;
}

static void node_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			uint64_t lo, uint64_t hi, const char *what)
{
	struct walk_ctx *c = ctx;
	struct rep_ctx rc = { block, lo, hi == UINT64_MAX ? 0 : hi, c->t->dev };
	char rb[64];

	if (hi == UINT64_MAX)
		rc.key_end = UINT64_MAX;
	ck_add(c->ck, level, code, rc, "%s%s: %s in btree node (block %llu), affecting keys %s",
	       c->ck->snap_prefix ? "metadata snap: " : "", c->t->name, what,
	       (unsigned long long)block, range_str(rb, sizeof(rb), lo, hi));
}

static void count_ref(void *ctx, uint64_t block)
{
	struct walk_ctx *c = ctx;

	ck_meta_inc(c->ck, block);
}

static int leaf(void *ctx, const struct bt_node *n)
{
	struct walk_ctx *c = ctx;

	return c->t->leaf ? c->t->leaf(c->ck, c->t->ctx, n) : 0;
}

static void leaf_prep(void *ctx, const struct bt_node *n, void *out)
{
	struct walk_ctx *c = ctx;

	c->t->prep(c->ck, c->t->ctx, n, out);
}

static void leaf_ahead(void *ctx, const void *prep)
{
	struct walk_ctx *c = ctx;

	c->t->ahead(c->ck, prep);
}

int ck_walk_tree(struct ck *ck, const struct ck_tree *t, uint64_t root, struct bt_summary *out)
{
	struct walk_ctx c = { ck, t };
	const struct bt_walk_tree wt = { .kind = (uint8_t)t->kind, .leaf_vsize = t->leaf_vsize,
					 .flags = t->leaf_thread ? BT_TREE_LEAF_THREAD : 0u,
					 .leaf = leaf, .ref = count_ref, .damage = node_damage,
					 .leaf_prep = t->prep ? leaf_prep : NULL,
					 .leaf_ahead = t->prep && t->ahead ? leaf_ahead : NULL, .ctx = &c };

	bt_walker_set_bound(ck->walker, ck->md_nr_blocks);
	return bt_walker_walk(ck->walker, &wt, root, out);
}
