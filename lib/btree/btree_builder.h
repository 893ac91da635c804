/*
 * Bottom-up B-tree builder for writers (restore, format, space maps).
 *
 * Keys are added in strictly increasing order.  Leaves are filled to
 * max_entries (FORMAT.md §5.3) and written as soon as they are complete;
 * only the last leaves of a tree, and a leaf cut short by a shared one
 * (below), hold fewer, never under max_entries / 3 unless the leaf is the
 * root; a tree whose entries fit in one leaf is one leaf.  Internal levels
 * are built when the tree is finished: as few nodes as 252 entries each
 * allow, children spread evenly.  Blocks are allocated
 * through lib/tm; every node gets one reference per parent that points at
 * it.  Generic over the value size.
 *
 * Sharing (with a dedup table): every leaf written is remembered by its
 * first entry.  When an added entry is the first entry of a remembered
 * leaf, the builder looks ahead; if the next entries are exactly that
 * leaf's, the leaf is referenced instead of written again (the leaf being
 * filled is closed before it, and the next new leaf starts right after
 * it), so a snapshot reuses its origin's leaves wherever it did not
 * change.  A finished leaf or internal node identical to one written
 * earlier is also referenced instead of written (one empty leaf for every
 * empty tree; one root for identical trees).
 */
#ifndef THINMETA_BTREE_BTREE_BUILDER_H
#define THINMETA_BTREE_BTREE_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "btree/btree.h"
#include "tm/tm.h"

/*
 * What has been written, for sharing: up to 2^(order + 4) leaves by their
 * first entry, and 2^order slots of nodes by content (lossy: a miss only
 * costs sharing).  One tree at a time is built with a table.
 */
struct bt_dedup;
struct bt_dedup *bt_dedup_create(unsigned order);
void bt_dedup_destroy(struct bt_dedup *d);
/* Statistics: leaves referenced again instead of written. */
uint64_t bt_dedup_hits(const struct bt_dedup *d);

struct bt_builder_opts {
	uint32_t value_size;
	struct bt_dedup *dedup;    /* share identical nodes; NULL: never */
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
 * The same as len calls of bt_builder_add() with keys key, key + 1, ...
 * and values value, value + step, ... (value_size 8 only, little endian).
 */
int bt_builder_add_run(struct bt_builder *b, uint64_t key, uint64_t value, uint64_t step,
		       uint64_t len);

/*
 * Links an existing leaf (written earlier through the same tm) into the
 * tree being built; its keys must be above the previous ones.  The leaf
 * gets one more reference, unless keeping every node at least a third
 * full requires copying its entries instead (then it is untouched).
 */
int bt_builder_add_leaf(struct bt_builder *b, uint64_t block);
/*
 * The same with the leaf's content given (node: its 4 KiB as written),
 * e.g. kept by the caller for a dry run, which cannot read blocks back.
 */
int bt_builder_add_leaf_node(struct bt_builder *b, uint64_t block, const void *node);

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
