/*
 * Both space maps of existing metadata, changed in a transaction of the
 * tm (lib/tm/txn.h), as the kernel's dm-space-map-metadata.c and
 * dm-space-map-disk.c change them (FORMAT.md §7).
 *
 * Metadata space map: all of it is loaded (at most 255 bitmaps); it is the
 * tm's space map (sm_meta_open plugs it in): new blocks are free both in
 * the committed state and now, searched from a cursor that starts at
 * block 0, as the kernel's does when the pool is opened.
 *
 * Data space map: bitmaps are loaded when a count in them is first used;
 * counts of 3 and more are looked up in the overflow tree then.
 *
 * Commit (data first, then metadata, then tm_txn_commit): every bitmap
 * whose counts changed is shadowed and written again, with the kernel's
 * hints (nr_free = 16320 - non-zero entries; none_free_before = the first
 * free entry); the data index tree gets the new entries; the overflow
 * trees gain, change or lose the entries of blocks whose count is or was
 * 3 or more (B-tree edits through the tm); the metadata index block is
 * shadowed.  The metadata space map's own changes during its commit are
 * counted in it: it shadows until nothing more changes.  nr_allocated is
 * kept exact.  After tm_txn_commit, sm_*_begin() starts the next
 * transaction.
 */
#ifndef THINMETA_SPACEMAP_SM_TXN_H
#define THINMETA_SPACEMAP_SM_TXN_H

#include <stdint.h>

#include "spacemap/spacemap.h"
#include "tm/txn.h"

/*
 * Encodes vals[0..n) (0..3) into a bitmap block (entries from n on are
 * zero) and returns the kernel's hints in ie (blocknr untouched).
 */
void sm_bitmap_encode(void *block, const uint8_t *vals, unsigned n, struct sm_index_entry *ie);

/*----------------------------------------------------------------*/
/* metadata space map */

struct sm_meta;

/*
 * Loads the metadata space map described by info through tm and becomes
 * tm's space map.  max_blocks (>= info->nr_blocks) bounds sm_meta_extend.
 * -EILSEQ when the on-disk space map is inconsistent (an entry of 3 with
 * no overflow count, a bitmap that cannot be read).
 */
int sm_meta_open(struct tm_txn *tm, const struct sm_disk_info *info, uint64_t max_blocks,
		 struct sm_meta **out);
void sm_meta_destroy(struct sm_meta *sm);

uint64_t sm_meta_nr_blocks(const struct sm_meta *sm);
uint64_t sm_meta_nr_allocated(const struct sm_meta *sm);
/* Free now and in the committed state: what new blocks can come from. */
uint64_t sm_meta_nr_allocatable(const struct sm_meta *sm);
uint32_t sm_meta_count(const struct sm_meta *sm, uint64_t b);
int sm_meta_set_count(struct sm_meta *sm, uint64_t b, uint32_t count);
/* Forces bitmap i to be written again (e.g. to clear entries beyond the end). */
int sm_meta_touch_bitmap(struct sm_meta *sm, uint64_t i);
/* Grows the space map to nr_blocks (new bitmaps in the new area). */
int sm_meta_extend(struct sm_meta *sm, uint64_t nr_blocks);
int sm_meta_commit(struct sm_meta *sm, struct sm_disk_info *root);
void sm_meta_begin(struct sm_meta *sm);

/*----------------------------------------------------------------*/
/* data space map */

struct sm_data;

int sm_data_open(struct tm_txn *tm, const struct sm_disk_info *info, struct sm_data **out);
void sm_data_destroy(struct sm_data *sm);

uint64_t sm_data_nr_blocks(const struct sm_data *sm);
uint64_t sm_data_nr_allocated(const struct sm_data *sm);
/* nr_allocated is carried over from the root; a caller that counted can set it. */
void sm_data_set_nr_allocated(struct sm_data *sm, uint64_t nr);
int sm_data_get_count(struct sm_data *sm, uint64_t b, uint32_t *count);
int sm_data_inc(struct sm_data *sm, uint64_t b);
int sm_data_dec(struct sm_data *sm, uint64_t b);
int sm_data_set_count(struct sm_data *sm, uint64_t b, uint32_t count);
/* A block free in the committed state and now, given count 1; -ENOSPC. */
int sm_data_new_block(struct sm_data *sm, uint64_t *b);
int sm_data_touch_bitmap(struct sm_data *sm, uint64_t i);
int sm_data_extend(struct sm_data *sm, uint64_t nr_blocks);
int sm_data_commit(struct sm_data *sm, struct sm_disk_info *root);
void sm_data_begin(struct sm_data *sm);

#endif
