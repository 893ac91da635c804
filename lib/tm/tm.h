/*
 * Transaction manager for writers (the seam for a future shadowing tm):
 * allocates metadata blocks from an in-core ref-count map, queues written
 * blocks and writes them in large sequential runs, and commits by flushing
 * every block before the superblock, which is written last and flushed.
 *
 * Crash safety: blocks marked reserved (the space map of the metadata that
 * is already on the device) are never handed out, so until the superblock
 * is rewritten the old metadata stays intact.  When the device runs out of
 * unreserved blocks the tm goes on allocating "virtual" blocks beyond the
 * end and drops all further writes (tm_overflowed()), so that a caller can
 * learn how many blocks the new metadata needs and decide what to do.
 */
#ifndef THINMETA_TM_TM_H
#define THINMETA_TM_TM_H

#include <stddef.h>
#include <stdint.h>

#include "block-cache/block-cache.h"
#include "refcount/refcount.h"

struct tm_mgr;

/*
 * nr_blocks: metadata blocks managed (ref counts are kept for these).
 * The engine is borrowed (not destroyed by tm_destroy).
 */
int tm_create(struct ioe *ioe, uint64_t nr_blocks, struct tm_mgr **out);
void tm_destroy(struct tm_mgr *tm);

/* Blocks with a non-zero count in old are never allocated (takes ownership). */
void tm_set_reserved(struct tm_mgr *tm, struct rcmap *old);
/* No block may be allocated on the device: a dry run that only counts. */
void tm_reserve_all(struct tm_mgr *tm);

/* Gives loc (e.g. the superblock) a ref count of 1, whatever the reservations. */
int tm_claim(struct tm_mgr *tm, uint64_t loc);
/* A new block with ref count 1.  -ENOSPC only when even virtual space is exhausted. */
int tm_alloc(struct tm_mgr *tm, uint64_t *loc);
int tm_inc(struct tm_mgr *tm, uint64_t loc);
int tm_dec(struct tm_mgr *tm, uint64_t loc);
uint32_t tm_ref(const struct tm_mgr *tm, uint64_t loc);

/*
 * Queues an allocated block for writing: v->prepare() sets its location
 * and checksum in data (modified in place), then the 4 KiB are copied.
 */
int tm_write(struct tm_mgr *tm, uint64_t loc, const struct bc_validator *v, void *data);
/* Reads back a block written earlier (from the queue or the device). */
int tm_read(struct tm_mgr *tm, uint64_t loc, void *buf);

/* Writes every queued block, then flushes the device. */
int tm_flush(struct tm_mgr *tm);
/* tm_flush(), then writes block 0 (prepared by v) and flushes again. */
int tm_commit(struct tm_mgr *tm, const struct bc_validator *v, void *sb_block);

uint64_t tm_nr_blocks(const struct tm_mgr *tm);
/* The in-core ref counts of the new metadata (blocks < tm_nr_blocks). */
const struct rcmap *tm_refs(const struct tm_mgr *tm);
/* Non-zero once allocation went beyond the device (writes are then dropped). */
int tm_overflowed(const struct tm_mgr *tm);
/* Blocks allocated so far (virtual ones included): the size needed on its own. */
uint64_t tm_nr_used(const struct tm_mgr *tm);

#endif
