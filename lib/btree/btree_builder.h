/*
 * Bottom-up B-tree builder for writers (restore, format, space maps).
 *
 * Keys are added in strictly increasing order.  Leaves are filled (up to
 * max_entries, FORMAT.md §5.3) and written as soon as they are complete;
 * internal levels are built when the tree is finished, with children spread
 * evenly so that every non-root node holds at least max_entries / 3.
 * Blocks are allocated through lib/tm; every node gets one reference per
 * parent that points at it.  Generic over the value size.
 *
 * Sharing: with a dedup table, a finished leaf identical to one written
 * earlier (same keys and values) is not written again: the earlier block
 * gets one more reference.  With cdc, leaf boundaries are content-defined
 * (a leaf ends after an entry whose hash hits a mask, subject to a minimum
 * and maximum fill), so identical runs of entries in two trees produce
 * identical leaves even when the runs start at different offsets.
 */
#ifndef THINMETA_BTREE_BTREE_BUILDER_H
#define THINMETA_BTREE_BTREE_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "btree/btree.h"
#include "tm/tm.h"

/* Bounded table of written leaves (2^order slots, direct mapped, lossy). */
struct bt_dedup;
struct bt_dedup *bt_dedup_create(unsigned order);
void bt_dedup_destroy(struct bt_dedup *d);
/* Statistics: leaves found identical to an earlier one. */
uint64_t bt_dedup_hits(const struct bt_dedup *d);

struct bt_builder_opts {
	uint32_t value_size;
	int cdc;                   /* content-defined leaf boundaries */
	struct bt_dedup *dedup;    /* share identical leaves; NULL: never */
	/*
	 * Called once for every leaf that is newly written (not when an
	 * existing leaf is shared), e.g. to count data-block references.
	 */
	int (*new_leaf)(void *ctx, const struct bt_node *leaf);
	void *ctx;
};

struct bt_builder;

int bt_builder_create(struct tm_mgr *tm, const struct bt_builder_opts *o, struct bt_builder **out);
void bt_builder_destroy(struct bt_builder *b);

/* -EINVAL when key is not above the previous one. */
int bt_builder_add(struct bt_builder *b, uint64_t key, const void *value_le);

/*
 * Links an existing leaf (written earlier through the same tm) into the
 * tree being built; its keys must be above the previous ones.  The leaf
 * gets one more reference, unless keeping every node at least a third
 * full requires copying its entries instead (then it is untouched).
 */
int bt_builder_add_leaf(struct bt_builder *b, uint64_t block);

/* Entries added to the current tree so far (linked leaves included). */
uint64_t bt_builder_nr_entries(const struct bt_builder *b);

/*
 * Finishes the tree: commits the last leaves, builds the internal levels
 * and returns the root (an empty leaf for an empty tree).  The builder is
 * then ready for a new tree.
 */
int bt_builder_finish(struct bt_builder *b, uint64_t *root);

/*
 * Finishes a run of leaves without internal levels (a shared subtree
 * definition).  *blocks (malloc'd, caller frees) lists the leaves in key
 * order, each holding one reference for the caller.
 */
int bt_builder_finish_leaves(struct bt_builder *b, uint64_t **blocks, size_t *nr);

#endif
