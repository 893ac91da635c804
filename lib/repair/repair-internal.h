/*
 * thin_repair decision logic, separated from the disk scan so that it can
 * be unit tested (tests/unit/test_repair.c).  Internal to lib/thin.
 */
#ifndef THINMETA_REPAIR_REPAIR_INTERNAL_H
#define THINMETA_REPAIR_REPAIR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * A pool state found by the scan: a metadata space-map index block whose
 * bitmaps mark every node of exactly one (mapping root, details root) pair
 * in use.  The content key orders states: newest mapping time, then the
 * highest device transaction id, then the newest creation/snapshot time.
 * Nothing else on the disk orders two intact committed states (stale
 * states stay intact until their blocks are reused; the allocator restarts
 * at the lowest free block on every activation, so block positions do not
 * order them either).
 */
struct repair_state {
	uint64_t index_block;
	uint64_t mroot, droot;     /* droot 0: no details tree */
	uint32_t time;             /* newest mapping time */
	uint64_t tid;              /* highest details transaction id */
	uint32_t dtime;            /* newest details creation/snapshot time */
};

/*
 * Picks the newest state.  Returns 0 (*pick set), -ENOENT (n == 0) or
 * -EAGAIN: the newest content key is shared by states with different
 * roots (ambiguous: the caller must not guess).  *nr_tied receives the
 * number of distinct (mroot, droot) pairs with the newest key.
 */
int repair_pick_state(const struct repair_state *s, size_t n, size_t *pick, size_t *nr_tied);

/*
 * Matching of orphan mapping trees to devices (the top-level tree is lost,
 * the details survive).  A tree is given to a device only when it is the
 * device's one candidate and the tree is not claimed by more devices than
 * it has references (refs: the space map's count of its root).  Devices
 * with no candidate or several get -1 (lost).
 */
struct repair_mdev {
	uint64_t id;
	uint64_t mapped_blocks;
};

struct repair_mtree {
	uint64_t root;
	uint64_t count;            /* mappings */
	uint32_t refs;             /* space-map count of the root (>= 1) */
	uint32_t max_time;         /* newest mapping time */
};

/* assign[i] = index of the tree for dev i, or -1.  Returns the number matched. */
size_t repair_match_trees(const struct repair_mdev *devs, size_t nd,
			  const struct repair_mtree *trees, size_t nt, uint32_t sb_time,
			  long *assign);

/*
 * The same in steps, so that the caller can strike candidates with more
 * evidence (older pool states) between them.  cand is an nd x nt matrix
 * (row per device): 1 = the tree may be the device's.
 */
#define REPAIR_LOST (-1L)
#define REPAIR_AMBIGUOUS (-2L)   /* the device's tree is one of its remaining candidates */

void repair_match_candidates(const struct repair_mdev *devs, size_t nd,
			     const struct repair_mtree *trees, size_t nt, uint32_t sb_time,
			     uint8_t *cand);
/*
 * Per connected group of devices and candidate trees, the trees'
 * references must add up to the number of devices (each device's live
 * root is one reference; a missing one means a damaged tree or a wrong
 * count): otherwise every device of the group is REPAIR_LOST.  A device
 * left with one candidate takes it, a tree whose references are all taken
 * is struck from the others (cand is updated), the rest are
 * REPAIR_AMBIGUOUS.  Returns the number of devices given a tree.
 */
size_t repair_match_resolve(const struct repair_mdev *devs, size_t nd,
			    const struct repair_mtree *trees, size_t nt, uint8_t *cand,
			    long *assign);

#endif
