/*
 * Pool metadata opened for changes: the kernel's dm_pool_metadata
 * operations (drivers/md/dm-thin-metadata.c), offline, in one transaction
 * of the tm (lib/tm/txn.h) with both space maps (lib/spacemap/sm_txn.h).
 *
 * Semantics, as the kernel's:
 *   create_thin   an empty mapping tree; details {mapped 0, the pool's
 *                 transaction id, creation and snapshot time = pool time}
 *   create_snap   the origin's mapping root gets one more reference and is
 *                 the snapshot's root; the pool time goes up by one; the
 *                 origin's snapshot time and the snapshot's creation and
 *                 snapshot times are the new time; the snapshot's
 *                 mapped_blocks is the origin's
 *   delete        the details entry and the top-level entry go; the
 *                 mapping tree loses a reference (what drops to zero is
 *                 freed, data blocks included)
 *   set_transaction_id OLD NEW   only when the pool's id is OLD
 *   reserve_metadata_snap   a copy of the superblock (space map roots
 *                 zeroed) in a new block; its two roots get a reference
 *   release_metadata_snap   the copy's trees lose a reference, the copy
 *                 is freed
 * and offline only: set/clear needs_check, rename (the top-level and
 * details entries move to a free id), grow the metadata or data space map.
 * Within a message the changed details are written at once, as the
 * kernel's commit after every message does.
 *
 * Errors: -EEXIST (id in use), -ENODATA (no such device), -EINVAL (wrong
 * transaction id, no metadata snapshot, shrinking), -EBUSY (a metadata
 * snapshot is held), -ENOSPC (no free metadata block), -EILSEQ (damaged
 * metadata met on the way).  After an error the pool must be closed
 * without a commit: nothing has been written.
 */
#ifndef THINMETA_THIN_POOL_H
#define THINMETA_THIN_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "thin/metadata.h"
#include "thin/superblock.h"

struct thin_pool;

/*
 * Prepares md (opened by the caller; THIN_MD_WRITE unless only dry runs
 * will be made) for changes.  Refuses metadata a writer must not touch
 * (bad or unreadable superblock, feature flags, sizes beyond the device)
 * and unreadable space maps, with one line in msg.
 */
int thin_pool_open(struct thin_md *md, struct thin_pool **out, char *msg, size_t msglen);
void thin_pool_close(struct thin_pool *p);

/* The superblock as this transaction has it (not committed yet). */
const struct thin_sb *thin_pool_sb(const struct thin_pool *p);
uint64_t thin_pool_metadata_allocated(const struct thin_pool *p);
uint64_t thin_pool_data_allocated(const struct thin_pool *p);
uint64_t thin_pool_metadata_nr_blocks(const struct thin_pool *p);
uint64_t thin_pool_data_nr_blocks(const struct thin_pool *p);
/* Blocks of the metadata device (the bound of grow_metadata). */
uint64_t thin_pool_device_blocks(const struct thin_pool *p);

/* Details and mapping root of dev; -ENODATA when there is no such device. */
int thin_pool_device(struct thin_pool *p, uint64_t dev, struct thin_details *d, uint64_t *root);
/* Calls fn for each device id in the details tree, in order. */
int thin_pool_for_each_device(struct thin_pool *p, int (*fn)(void *ctx, uint64_t dev), void *ctx);

int thin_pool_create_thin(struct thin_pool *p, uint64_t dev);
int thin_pool_create_snap(struct thin_pool *p, uint64_t dev, uint64_t origin);
int thin_pool_delete(struct thin_pool *p, uint64_t dev);
int thin_pool_set_transaction_id(struct thin_pool *p, uint64_t old_id, uint64_t new_id);
int thin_pool_reserve_metadata_snap(struct thin_pool *p);
int thin_pool_release_metadata_snap(struct thin_pool *p);
void thin_pool_set_needs_check(struct thin_pool *p, int set);
int thin_pool_rename(struct thin_pool *p, uint64_t dev, uint64_t new_dev);
int thin_pool_grow_metadata(struct thin_pool *p, uint64_t nr_blocks);
int thin_pool_grow_data(struct thin_pool *p, uint64_t nr_blocks);

/*
 * Provisioning, as the kernel's (dm_pool_alloc_data_block,
 * dm_thin_insert_block, dm_thin_remove_block): a new data block with
 * count 1; a mapping stamped with the pool time (an overwrite drops the
 * old block's reference); removal drops the block's reference.
 */
int thin_pool_alloc_data_block(struct thin_pool *p, uint64_t *b);
int thin_pool_inc_data_block(struct thin_pool *p, uint64_t b);
int thin_pool_insert_mapping(struct thin_pool *p, uint64_t dev, uint64_t vblock, uint64_t data);
int thin_pool_remove_mapping(struct thin_pool *p, uint64_t dev, uint64_t vblock);
/* Reference counts as this transaction has them. */
int thin_pool_data_count(struct thin_pool *p, uint64_t b, uint32_t *count);
uint32_t thin_pool_metadata_count(const struct thin_pool *p, uint64_t b);
/* The data space map's nr_allocated, when the caller knows it exactly (repair). */
void thin_pool_set_data_allocated(struct thin_pool *p, uint64_t nr);
/* Drops a data block's reference count to 0 / a metadata block's (leak repair). */
int thin_pool_clear_data_count(struct thin_pool *p, uint64_t b);
int thin_pool_clear_metadata_count(struct thin_pool *p, uint64_t b);
/* Writes the bitmaps again (clearing entries beyond the end). */
int thin_pool_rewrite_bitmap(struct thin_pool *p, int metadata, uint64_t i);

/*
 * Commits: changed details, the data space map, the metadata space map,
 * every new block, a flush, the superblock, a flush.  With dry_run,
 * everything is computed (the figures above are those the commit would
 * write) and nothing is written; the pool must then be closed.
 */
int thin_pool_commit(struct thin_pool *p, int dry_run);
/* Writes made by the last commit (tests). */
unsigned long thin_pool_nr_writes(const struct thin_pool *p);

#endif
