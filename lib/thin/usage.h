/*
 * Per-device data usage: the walk that reads every distinct mapping leaf at
 * most twice (snapshots share whole subtrees) and counts mapped, exclusive
 * and shared blocks.
 */
#ifndef THINMETA_THIN_USAGE_H
#define THINMETA_THIN_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "thin/metadata.h"

/* Per-device data usage. */

struct thin_usage {
	uint64_t mapped;      /* mappings counted in the device's tree */
	uint64_t exclusive;   /* mappings of data blocks referenced by no other mapping */
	uint64_t shared;      /* mapped - exclusive */
	uint64_t highest;     /* highest mapped virtual block (valid when mapped > 0) */
};

/*
 * Counts, for every device of devs (out[i] for devs->devs[i]), its mappings
 * and how many of them map a data block that is mapped exactly once in the
 * whole list of devices ("exclusive"; the rest are "shared").  A leaf
 * reached from k devices counts k times, as in thin_ls 0.9.0 and 1.x.
 * Each distinct leaf is decoded once (every data block remembers the only
 * device mapping it until a second mapping makes it shared) and a leaf
 * reached again is re-read once, for its second visit.  Sound metadata
 * takes the memoising walker (btree/walk.h: every distinct node read once,
 * large reads, read-ahead on a block device, leaves counted on its leaf
 * thread); anything it finds wrong sends the count to the path walk,
 * which reports the damage.  Memory: one byte per data block (two beyond
 * 253 devices, four beyond 65533), the walker's 40 bytes per metadata
 * block in use and 8 per child pointer of an internal node.
 * Damage (bad node, mapping beyond nr_data_blocks, device without a tree)
 * returns -EILSEQ with a message in msg.
 */
int thin_usage_compute(struct bc *bc, const struct thin_dev_list *devs, uint64_t nr_data_blocks,
		       struct thin_usage *out, char *msg, size_t msglen);

/*
 * The same walk with the devices split into "live" and "orphan" classes
 * (thin_reconcile, NAMES.md §3).  Live devices are walked first, so when
 * an orphan is walked every live reference is already known.  Besides
 * out[], fills with_live[i] for every orphan i (its mappings of data blocks
 * also mapped by a live device; 0 for live devices) and *reclaimable (data
 * blocks mapped only by orphans: what deleting every orphan frees).
 * Memory: two more bits per data block.
 */
struct thin_usage_split {
	const uint8_t *orphan;     /* in: per device of devs, non-zero = orphan */
	uint64_t *with_live;       /* out: per device (caller allocates devs->nr) */
	uint64_t reclaimable;      /* out */
};

int thin_usage_compute_split(struct bc *bc, const struct thin_dev_list *devs,
			     uint64_t nr_data_blocks, struct thin_usage *out,
			     struct thin_usage_split *split, char *msg, size_t msglen);

#endif
