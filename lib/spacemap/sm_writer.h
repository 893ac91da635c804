/*
 * Writing space maps from in-core ref counts (FORMAT.md §7): bitmaps with
 * the kernel's index hints (nr_free = 16320 - non-zero entries, also in the
 * last bitmap; none_free_before = first zero entry), an overflow ref-count
 * tree for counts >= 3, and the index (a B-tree for the data space map,
 * one index block for the metadata space map).  Blocks come from lib/tm.
 */
#ifndef THINMETA_SPACEMAP_SM_WRITER_H
#define THINMETA_SPACEMAP_SM_WRITER_H

#include <stdint.h>

#include "spacemap/spacemap.h"
#include "tm/tm.h"

/* Metadata blocks the data space map of nr_blocks will need at least. */
uint64_t sm_data_blocks_needed(uint64_t nr_blocks);
/* Metadata blocks the metadata space map of nr_blocks will need at least. */
uint64_t sm_metadata_blocks_needed(uint64_t nr_blocks);

/* Writes the data space map for counts[0, nr_blocks); fills *root. */
int sm_write_data(struct tm_mgr *tm, const struct rcmap *counts, uint64_t nr_blocks,
		  struct sm_disk_info *root);

/*
 * Writes the metadata space map of the tm's own ref counts.  Must be the
 * last allocation: the blocks it takes for itself are counted in it.
 */
int sm_write_metadata(struct tm_mgr *tm, struct sm_disk_info *root);

#endif
