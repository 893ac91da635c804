/*
 * A mapping leaf's values as runs of consecutive data blocks: one pass,
 * vectorised where the CPU allows.  thin_check and thin_ls count a leaf's
 * data references run by run when every block of the leaf is on the data
 * device (and, for thin_check, no time is later than the superblock's).
 */
#ifndef THINMETA_THIN_LEAF_RUNS_H
#define THINMETA_THIN_LEAF_RUNS_H

#include <stdint.h>

#include "btree/btree.h"
#include "io/io.h"

/* Most entries a leaf of 8-byte values can hold (a bound for first[]). */
#define THIN_LEAF_MAX_ENTRIES ((MD_BLOCK_SIZE - BT_HEADER_SIZE) / (8 + 8))

struct thin_leaf_runs {
	uint32_t nr_runs;
	uint16_t first[THIN_LEAF_MAX_ENTRIES + 1];   /* run k: entries [first[k], first[k + 1]) */
};

/*
 * The runs of the values of leaf n (block_time; n->nr_entries <=
 * THIN_LEAF_MAX_ENTRIES): a run is a longest stretch of entries whose data
 * blocks rise by one; first[nr_runs] is nr_entries.  Returns 1 when every
 * data block is below nr_blocks and every time at most max_time, else 0
 * (the runs are filled either way).
 */
int thin_leaf_runs(const struct bt_node *n, uint64_t nr_blocks, uint32_t max_time,
		   struct thin_leaf_runs *out);

/*
 * A leaf's runs found ahead (a walker's leaf_prep, walk.h, so that the
 * thread that counts them need not): sound is 1 when the leaf has entries,
 * at most THIN_LEAF_MAX_ENTRIES of them, and thin_leaf_runs() answered 1;
 * the runs are then in lr.
 */
struct thin_leaf_prep {
	int sound;
	struct thin_leaf_runs lr;
};
void thin_leaf_prep(const struct bt_node *n, uint64_t nr_blocks, uint32_t max_time,
		    struct thin_leaf_prep *out);

#endif
