/*
 * The transaction manager for editing existing metadata (the kernel's
 * dm-transaction-manager model), beside the allocate-and-queue writer of
 * tm.h that the bottom-up builders use.
 *
 * A transaction reads committed blocks through a block cache and never
 * writes them.  To change a block, a client shadows it: when the block was
 * allocated in this transaction and is not shared (ref count 1), the
 * client gets the block itself; otherwise a new block is allocated, the
 * old contents are copied into it, the old block's count is decremented,
 * and *inc_children tells the client that the old block was shared, so
 * that the copy's children need one more reference each (the copy is a
 * new parent).  Every shadow and every new block is held in memory until
 * the commit; nothing reaches the device before it.
 *
 * Reference counts and allocation belong to a space map that the client
 * plugs in (struct tm_sm_ops, implemented above this layer in
 * lib/spacemap): new blocks must be free both in the last committed state
 * and now, so no block that the committed superblock can reach is ever
 * overwritten.
 *
 * Commit: every dirty block that is still referenced is written, in
 * ascending runs, then the device is flushed; then the superblock (block
 * 0) is written and the device flushed again.  A writer killed at any
 * point leaves the old metadata or the new.  The transaction then goes on
 * as a new one (the shadow table is wiped).
 *
 * Errors from inc/dec are sticky (as in the kernel): the transaction can
 * no longer commit.
 */
#ifndef THINMETA_TM_TXN_H
#define THINMETA_TM_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "block-cache/block-cache.h"

/* The metadata space map as the tm sees it (kernel struct dm_space_map). */
struct tm_sm_ops {
	int (*get_count)(void *ctx, uint64_t b, uint32_t *count);
	int (*inc)(void *ctx, uint64_t b);
	int (*dec)(void *ctx, uint64_t b);
	/* A block free in the committed state and now, with count 1; -ENOSPC. */
	int (*new_block)(void *ctx, uint64_t *b);
};

/* A locked block.  data is writable for write locks only. */
struct tm_block {
	uint64_t loc;
	void *data;
	struct bc_block *bcb;   /* read lock held on the cache, or NULL */
};

struct tm_txn;

/* bc is borrowed; its engine receives the writes of tm_txn_commit. */
int tm_txn_create(struct bc *bc, struct tm_txn **out);
void tm_txn_destroy(struct tm_txn *t);
void tm_txn_set_sm(struct tm_txn *t, const struct tm_sm_ops *ops, void *ctx);
struct bc *tm_txn_bc(struct tm_txn *t);

/*
 * Read lock: a committed block through the cache (validated by v), or a
 * block dirtied in this transaction (not validated: not written yet).
 */
int tm_txn_read_lock(struct tm_txn *t, uint64_t b, const struct bc_validator *v,
		     struct tm_block *out);
/* A new zeroed block (count 1), write locked. */
int tm_txn_new_block(struct tm_txn *t, const struct bc_validator *v, struct tm_block *out);
/* See the top of this file. */
int tm_txn_shadow(struct tm_txn *t, uint64_t orig, const struct bc_validator *v,
		  struct tm_block *out, int *inc_children);
void tm_txn_unlock(struct tm_txn *t, struct tm_block *b);

/* Read-ahead of committed blocks (dirty ones are skipped), as the kernel's btree prefetches. */
void tm_txn_prefetch(struct tm_txn *t, const uint64_t *blocks, size_t nr);

/* Was b allocated (new block or shadow) in this transaction? */
int tm_txn_is_shadow(const struct tm_txn *t, uint64_t b);

int tm_txn_inc(struct tm_txn *t, uint64_t b);
int tm_txn_dec(struct tm_txn *t, uint64_t b);
int tm_txn_ref(struct tm_txn *t, uint64_t b, uint32_t *count);
/* count > 1 */
int tm_txn_is_shared(struct tm_txn *t, uint64_t b, int *shared);

/* The first error of an inc/dec in this transaction, or 0. */
int tm_txn_error(const struct tm_txn *t);
/* Blocks allocated in this transaction (dirty, referenced or not). */
size_t tm_txn_nr_dirty(const struct tm_txn *t);

/*
 * Commits (see above).  sb_block is a 4 KiB buffer that v prepares for
 * block 0.  With dry_run, nothing is written and the transaction is left
 * as it is.  Returns 0 or a negative errno (the device then holds the old
 * metadata or, if the error came from the final flush, possibly the new).
 */
int tm_txn_commit(struct tm_txn *t, const struct bc_validator *v, void *sb_block, int dry_run);
/* Writes the last commit made (0 before the first). */
unsigned long tm_txn_nr_writes(const struct tm_txn *t);

#endif
