/*
 * B-tree edits through the transaction manager (lib/tm/txn.h), the way
 * the kernel's dm-btree.c and dm-btree-remove.c make them, generic over
 * the value size: the details tree, the mapping trees, the data space
 * map index and both space maps' overflow trees use it.
 *
 * Every node on the path is shadowed; a shared node is copied and its
 * children get one more reference (internal nodes: the child blocks;
 * leaves: the value type's inc).
 *
 * Insert makes room on the way down: a full root is split beneath itself;
 * another full node first gives entries to a sibling that is not shared
 * and has at least 8 free slots (left sibling first), otherwise it is
 * split, one node into two at the ends of its parent or when a sibling is
 * shared, two into three elsewhere.  Inserting below the lowest key lowers
 * the parent's first key.
 *
 * Remove rebalances the children of every internal node on the way down:
 * the child and one sibling (at the ends) or both siblings; two nodes
 * holding fewer than 2 * (max / 3 + 1) entries are merged, three holding
 * fewer than 4 * (max / 3) + 1 lose the middle one, and otherwise the
 * entries are shared out evenly; a root with one child takes the child's
 * place.  So no node but the root holds fewer than max / 3 entries.
 *
 * Delete drops a whole tree: a shared node only loses one reference;
 * a node that was referenced once is freed after its children (leaves:
 * the value type's dec).
 *
 * Nodes read from the device are validated (checksum, location, header,
 * value size); damage is -EILSEQ and nothing is committed.
 */
#ifndef THINMETA_BTREE_BTREE_EDIT_H
#define THINMETA_BTREE_BTREE_EDIT_H

#include <stddef.h>
#include <stdint.h>

#include "btree/btree.h"
#include "tm/txn.h"

/* What leaf values refer to (kernel struct dm_btree_value_type). */
struct bt_value_type {
	uint32_t size;
	void *ctx;
	/* One more / one less reference for each of nr values (NULL: none). */
	int (*inc)(void *ctx, const void *values_le, uint32_t nr);
	int (*dec)(void *ctx, const void *values_le, uint32_t nr);
	/* On overwrite, the old value is decremented unless equal (NULL: never equal). */
	int (*equal)(void *ctx, const void *a_le, const void *b_le);
};

/* One level of a tree (kernel dm_btree_info with levels = 1). */
struct bt_tree {
	struct tm_txn *tm;
	struct bt_value_type vt;
};

/* Space a sibling must have to take entries instead of a split. */
#define BT_SPACE_THRESHOLD 8u

/* A new empty tree: one leaf. */
int bt_tree_empty(const struct bt_tree *t, uint64_t *root);

/* Exact lookup; -ENODATA when absent.  value_le gets vt.size bytes (may be NULL). */
int bt_tree_lookup(const struct bt_tree *t, uint64_t root, uint64_t key, void *value_le);

/*
 * Inserts or overwrites key.  *new_root is the root afterwards; *inserted
 * (may be NULL) says whether the key is new.
 */
int bt_tree_insert(const struct bt_tree *t, uint64_t root, uint64_t key, const void *value_le,
		   uint64_t *new_root, int *inserted);

/*
 * Removes key (its value is decremented).  -ENODATA when absent: the tree
 * is then still valid but may have been rebalanced on the way down (as
 * the kernel's); a caller that must not change anything looks first.
 */
int bt_tree_remove(const struct bt_tree *t, uint64_t root, uint64_t key, uint64_t *new_root);

/*
 * Shadows the path to key's leaf (which must hold key: -ENODATA, with
 * nothing changed, otherwise) and returns a writable pointer to its value
 * in *value_le.  The value is not decremented: the caller changes it in
 * place (e.g. a mapping tree's top level, whose value is a subtree root
 * that the caller has just shadowed).  The pointer stays valid until the
 * next change to this tree.
 */
int bt_tree_get_overwrite_leaf(const struct bt_tree *t, uint64_t root, uint64_t key,
			       uint64_t *new_root, void **value_le);

/* Drops one reference to the tree at root (see above). */
int bt_tree_del(const struct bt_tree *t, uint64_t root);

/* Calls fn for every entry in key order (through the tm: sees this transaction's changes). */
int bt_tree_walk(const struct bt_tree *t, uint64_t root,
		 int (*fn)(void *ctx, uint64_t key, const void *value_le), void *ctx);

/* The same for the keys in [lo, hi) only (subtrees outside are not read). */
int bt_tree_walk_range(const struct bt_tree *t, uint64_t root, uint64_t lo, uint64_t hi,
		       int (*fn)(void *ctx, uint64_t key, const void *value_le), void *ctx);

/* Number of entries (walks the tree). */
int bt_tree_count(const struct bt_tree *t, uint64_t root, uint64_t *nr);

#endif
