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
#include "thin/superblock.h"
#include "util/endian.h"

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

/* Runs whose first data block a prep carries (a leaf has 9 runs or so). */
#define THIN_PREP_BLOCKS 64u

/*
 * A leaf's runs found ahead (a walker's leaf_prep, walk.h, so that the
 * thread that counts them need not): sound is 1 when the leaf has entries,
 * at most THIN_LEAF_MAX_ENTRIES of them, and thin_leaf_runs() answered 1;
 * the runs are then in lr.
 */
struct thin_leaf_prep {
	int sound;
	uint32_t nr_blocks;   /* block[] entries filled: nr_runs, at most THIN_PREP_BLOCKS */
	/*
	 * When sound: the first data block of run k, for k below nr_blocks,
	 * read while the leaf was in the preparing thread's cache, so that the
	 * thread counting the runs need not touch the leaf (thin_prep_block()).
	 * Kept ahead of lr: a leaf's usual nine runs are in its first 128 bytes.
	 */
	uint64_t block[THIN_PREP_BLOCKS];
	struct thin_leaf_runs lr;
};
void thin_leaf_prep(const struct bt_node *n, uint64_t nr_blocks, uint32_t max_time,
		    struct thin_leaf_prep *out);

/* The first data block of run k of a sound prep p of the leaf whose values are vals. */
static inline uint64_t thin_prep_block(const struct thin_leaf_prep *p, const uint8_t *vals,
				       uint32_t k)
{
	return k < THIN_PREP_BLOCKS ? p->block[k]
				    : thin_bt_block(get_le64(vals + 8 * (size_t)p->lr.first[k]));
}

#endif
