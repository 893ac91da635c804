/*
 * The B-tree walkers: every read of a tree, by every tool, goes through
 * one of the two traversals here, which share the node ruling of btree.h
 * (bt_node_check, bt_node_err_level, the finding codes).
 *
 * The path walker (bt_walk, bt_walk_keys) follows every path in key order
 * and checks a node against its parent before handing out anything below
 * it: what a reader needs, since a subtree whose keys are out of place must
 * not reach the output.  Its source is a block cache or a transaction
 * (btree_edit.h); shared subtrees are the caller's choice through child().
 *
 * The memoising walker (bt_walker_walk, the role of tpt-Rust's
 * pdata/btree_walker.rs) reads and validates every distinct node once and
 * memoises its path-independent facts (key range, entry count, height,
 * damage) by block; a parent checks each child's summary against its own
 * separator keys.  That covers strict key ranges on every path, uniform
 * leaf depth, cycles, non-root occupancy and nodes shared between trees of
 * different kinds, while subtrees shared by snapshots are entered once:
 * what a checker needs.  Its children are read in block order, contiguous
 * runs in one read each, BT_WALK_BATCH blocks at a time, straight from the
 * I/O engine (each block checked by bt_node_validator).
 */
#ifndef THINMETA_BTREE_WALK_H
#define THINMETA_BTREE_WALK_H

#include <stddef.h>
#include <stdint.h>

#include "btree/btree.h"
#include "io/io.h"
#include "findings/findings.h"
#include "util/report.h"

/*----------------------------------------------------------------*/
/*
 * The path walker: every path of one tree, depth first, in key order, a
 * node's keys checked against its parent's before anything below it is
 * handed out (dump, ls, usage, delta, rmap, repair's structure walk, the
 * writable trees of the transaction manager).  Subtrees shared with trees
 * walked before are the caller's choice (child()): skipped, entered, or
 * entered again knowing that nothing below is new.
 */

/* Where a walk reads its nodes from. */
struct bt_source {
	/*
	 * Block b, checked by bt_node_validator (a negative errno as from
	 * bc_get() otherwise); *hold goes back to put().  At most one block
	 * is held at a time.
	 */
	int (*get)(void *ctx, uint64_t b, const void **data, void **hold);
	void (*put)(void *ctx, void *hold);
	/* Optional: these blocks will be wanted soon. */
	void (*prefetch)(void *ctx, const uint64_t *blocks, size_t nr);
	void *ctx;
};

/* A source reading through a block cache. */
struct bt_source bt_source_bc(struct bc *bc);

/* child() answers */
#define BT_CHILD_ENTER 0
#define BT_CHILD_SKIP 1
#define BT_CHILD_AGAIN 2   /* enter, and tell child() below that it was all seen before */

/* bt_walk_ops.flags */
#define BT_WALK_STRICT 0x1u   /* a non-fatal node fault drops the node like a fatal one */
#define BT_WALK_STOP 0x2u     /* the first fault ends the walk with a negative errno */

struct bt_walk_ops {
	/*
	 * A validated leaf whose keys are within [lo, hi).  Return 0 to go
	 * on, a negative errno to stop the walk (returned by bt_walk).
	 */
	int (*leaf)(void *ctx, const struct bt_node *leaf);
	/*
	 * Damage: a node (block) could not be used; keys [lo, hi) are lost
	 * (hi == UINT64_MAX: open-ended).  May be NULL.
	 */
	void (*damage)(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
		       uint64_t lo, uint64_t hi, const char *msg);
	/*
	 * Optional: called for each child pointer of an internal node before
	 * the child is read; returns BT_CHILD_*.  again: the pointer lies in
	 * a subtree entered with BT_CHILD_AGAIN (or a walk begun again).
	 */
	int (*child)(void *ctx, uint64_t block, int again);
	/* Optional: an internal node is done; damaged: a fault was found at or below it. */
	void (*leave)(void *ctx, uint64_t block, int damaged);
	/*
	 * Optional: leaves are not decoded here but handed over by block with
	 * their key range [lo, hi), for the caller to read later (e.g. on
	 * worker threads, which must validate them again).  The first leaf
	 * is read and checked to learn the leaf depth; children at that depth
	 * are then deferred without being read.  Replaces leaf.
	 */
	int (*defer_leaf)(void *ctx, uint64_t block, uint64_t lo, uint64_t hi);
	unsigned flags;       /* BT_WALK_* */
};

/*
 * Walks the tree at root with leaf value size leaf_vsize.  Checks node
 * structure, key ranges against the parent (strict), uniform leaf depth
 * and cycles on the path.  Every bad node is reported through ops->damage
 * and the walk goes on with its next sibling (BT_WALK_STOP: ends it).
 * Returns 0 or a negative errno (the callbacks', or the fault's with
 * BT_WALK_STOP).
 */
int bt_walk(struct bc *bc, uint64_t root, uint32_t leaf_vsize, const struct bt_walk_ops *ops,
	    void *ctx);

/*
 * The same from any source, for the keys [lo, hi) only: subtrees holding
 * none of them are not read (leaf() still sees whole leaves).  again: the
 * root was walked before (as BT_CHILD_AGAIN).
 */
int bt_walk_keys(const struct bt_source *src, uint64_t root, uint64_t lo, uint64_t hi,
		 int again, uint32_t leaf_vsize, const struct bt_walk_ops *ops, void *ctx);

/*----------------------------------------------------------------*/
/* The memoising walker (thin_check, thin_ls) */

#define BT_WALK_BATCH 256u

/* Summary flags */
#define BT_SUM_LEAF 0x01u
#define BT_SUM_BAD 0x02u       /* the node itself is unusable */
#define BT_SUM_DAMAGED 0x04u   /* something below is damaged */
#define BT_SUM_EMPTY 0x08u     /* no keys (min/max meaningless) */
#define BT_SUM_BUSY 0x10u      /* being visited: seeing it again is a cycle */
#define BT_SUM_NOHEIGHT 0x20u  /* height unknown (no usable child) */
#define BT_SUM_UNDERFULL 0x40u /* nr_entries < max_entries / 3 */

/* Path-independent facts of a subtree, memoised by its root block. */
struct bt_summary {
	uint64_t block;
	uint64_t min, max;   /* keys of the subtree */
	uint64_t count;      /* leaf entries below (usable nodes only) */
	uint32_t nr_entries;
	uint8_t height;      /* 0 = leaf */
	uint8_t flags;
	uint8_t kind;        /* bt_walk_tree.kind of the tree it was found in */
};

/*
 * bt_walk_tree.flags: leaf() may run on the walker's second thread, which
 * overlaps it with the reads and node checks of the walk.  It still sees
 * the leaves one at a time, in walk order, all before bt_walker_walk()
 * returns; it must touch nothing that the walk's other callbacks touch,
 * and an error from it stops the walk a little later than it would have.
 */
#define BT_TREE_LEAF_THREAD 1u
/* Room for one leaf's leaf_prep() output. */
#define BT_LEAF_PREP_SIZE 1040u

struct bt_walk_tree {
	uint8_t kind;          /* trees of different kinds may not share nodes (non-zero) */
	uint32_t leaf_vsize;   /* value size of the leaves */
	unsigned flags;        /* BT_TREE_* */
	/* once per distinct valid leaf; a negative return stops the walk */
	int (*leaf)(void *ctx, const struct bt_node *n);
	/* every child pointer of every distinct internal node (may be NULL) */
	void (*ref)(void *ctx, uint64_t block);
	/* a fault: level, finding code, node, lost key range [lo, hi) (may be NULL) */
	void (*damage)(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
		       uint64_t lo, uint64_t hi, const char *what);
	/*
	 * Optional, on the walking thread: a node reached again (walked
	 * before, in this tree or an earlier one), whose subtree is not walked
	 * again; s is its summary.
	 */
	void (*again)(void *ctx, const struct bt_summary *s);
	/*
	 * Optional, on the walking thread: once per distinct internal node, its
	 * children in order, before they are walked.
	 */
	void (*inner)(void *ctx, uint64_t block, const uint64_t *kids, uint32_t nr);
	/*
	 * Optional, with BT_TREE_LEAF_THREAD: on the walking thread, as a leaf
	 * is handed to the leaf thread, the part of leaf()'s work that reads
	 * only the node, into out (BT_LEAF_PREP_SIZE bytes); leaf() then finds
	 * it at n->prep.  Where leaf() runs on the walking thread n->prep is
	 * NULL and leaf() does that part itself.  It balances the two threads.
	 */
	void (*leaf_prep)(void *ctx, const struct bt_node *n, void *out);
	/*
	 * Optional, with leaf_prep: on the leaf thread, the prep of the leaf
	 * after the one leaf() is about to see (its first 128 bytes asked
	 * for a leaf before), to ask for the memory leaf() will touch then.
	 * Changes nothing but when memory arrives.
	 */
	void (*leaf_ahead)(void *ctx, const void *prep);
	void *ctx;
};

struct bt_walker;

/* ioe is borrowed.  Pointers at or beyond ioe->nr_blocks are out of bounds. */
int bt_walker_create(struct ioe *ioe, struct bt_walker **out);
void bt_walker_destroy(struct bt_walker *w);
/* Lowers the bound for block pointers (e.g. to the metadata space map's size). */
void bt_walker_set_bound(struct bt_walker *w, uint64_t nr_blocks);
/* As bc_set_type_salts(): a node valid under one of these is "not a btree node". */
void bt_walker_set_type_salts(struct bt_walker *w, const uint32_t *salts, size_t nr);

/*
 * Walks the tree at root (whose own reference the caller counts) and
 * returns its summary in *out.  Nodes walked before, in this or an earlier
 * tree, are not read again: their summary is reused.  Returns 0 or a
 * negative errno (out of memory, or the leaf callback's error).
 */
int bt_walker_walk(struct bt_walker *w, const struct bt_walk_tree *t, uint64_t root,
		   struct bt_summary *out);

/* The summary of a node already walked completely, or NULL. */
const struct bt_summary *bt_walker_seen(const struct bt_walker *w, uint64_t block);

/*
 * Read-ahead (off by default): while the walk is below one child of an
 * internal node, the next child's own children are read on a reader
 * thread, when that child is a sound internal node.  Results do not change
 * (the same reads, retried the same way); what changes is when the device
 * is read, so it is for devices where a read waits (O_DIRECT on a block
 * device), not for fault injection that counts reads.
 */
void bt_walker_set_readahead(struct bt_walker *w, int on);
/* Batches the walk took from read-ahead so far (tests, benches). */
uint64_t bt_walker_readahead_used(const struct bt_walker *w);
/*
 * With read-ahead on: the next bt_walker_walk() after the one that comes
 * (or is under way) will start at root, a tree of leaves of leaf_vsize
 * bytes: its root, and its children when it is a sound internal node, are
 * read ahead now.  Only when reads happen changes; a hint no walk takes is
 * dropped at the end of the walk after next.
 */
void bt_walker_hint(struct bt_walker *w, uint64_t root, uint32_t leaf_vsize);
/* Walks that started from a hinted root so far (tests, benches). */
uint64_t bt_walker_hints_used(const struct bt_walker *w);

#endif
