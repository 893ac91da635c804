/*
 * Bounded cache of 4 KiB metadata blocks over an I/O engine.
 *
 * Every bc_get()/bc_new() returns a held block that must be released with
 * exactly one bc_put().  A block is read through a validator; the cache
 * remembers which one and refuses another ("validator mismatch", -EINVAL).
 * Dirty blocks are written (after validator->prepare) on eviction and on
 * bc_flush(); bc_flush() then issues a device flush.  The cache knows
 * nothing about B-trees: validators are opaque callbacks.
 */
#ifndef THINMETA_BLOCK_CACHE_BLOCK_CACHE_H
#define THINMETA_BLOCK_CACHE_BLOCK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"

/* Validator errors: -EILSEQ bad checksum, -ENOTBLK wrong self-location,
 * BC_WRONG_TYPE checksum valid for another metadata block type. */
#define BC_WRONG_TYPE (-EMEDIUMTYPE)

struct bc_validator {
	const char *name;
	/* 0, -EILSEQ, -ENOTBLK, BC_WRONG_TYPE or another negative errno */
	int (*check)(const void *data, uint64_t loc, size_t len);
	/* fills checksum and self-location before a write */
	void (*prepare)(void *data, uint64_t loc, size_t len);
};

/*
 * Generic salted-checksum validation: blocknr at offset 8 must equal loc,
 * crc32c over bytes 4.. XOR salt at offset 0.  Returns 0, -EILSEQ or
 * -ENOTBLK.  The salts themselves live beside their validators (the cache
 * knows none of them).
 */
int bc_csum_check(const void *data, uint64_t loc, size_t len, uint32_t salt);
void bc_csum_prepare(void *data, uint64_t loc, size_t len, uint32_t salt);
/*
 * err, or BC_WRONG_TYPE when err is -EILSEQ and the block's checksum is
 * valid under one of salts (the block is of another known type).
 */
int bc_classify(int err, const void *data, size_t len, const uint32_t *salts, size_t nr);

/* Human-readable form of a validator/IO error ("bad checksum", ...). */
const char *bc_strerror(int err);

struct bc;
struct bc_block;

/* max_blocks bounds the memory (held blocks may exceed it temporarily). */
struct bc *bc_create(struct ioe *engine, size_t max_blocks);
/* Asserts nothing is still held; does NOT flush (call bc_flush first). */
void bc_destroy(struct bc *bc);

/*
 * The salts of the block types that may be found on this cache's device,
 * supplied by whoever opens it (lib/thin for thin metadata; the array must
 * outlive the cache).  A block failing its validator's checksum but valid
 * under one of them reads as BC_WRONG_TYPE instead of -EILSEQ.  Without
 * them (the default) there is no BC_WRONG_TYPE.
 */
void bc_set_type_salts(struct bc *bc, const uint32_t *salts, size_t nr);

struct ioe *bc_engine(struct bc *bc);
uint64_t bc_nr_blocks(const struct bc *bc);

/*
 * Changes the bound (at least 16); clean blocks beyond it are dropped on
 * the next allocation.  Readers that visit each block about once (tree
 * walks) use a small cache to keep their memory down.
 */
void bc_set_max_blocks(struct bc *bc, size_t max_blocks);

/* Read (or find) block loc, validated by v (NULL: no validation). */
int bc_get(struct bc *bc, uint64_t loc, const struct bc_validator *v, struct bc_block **out);
/* A zero-filled block for writing; its old contents are not read. */
int bc_new(struct bc *bc, uint64_t loc, const struct bc_validator *v, struct bc_block **out);
void bc_put(struct bc *bc, struct bc_block *b);

const void *bc_data(const struct bc_block *b);
void *bc_data_mut(struct bc_block *b);   /* marks the block dirty */
uint64_t bc_loc(const struct bc_block *b);

/* Drop a cached clean block (e.g. after reading it unvalidated). */
void bc_forget(struct bc *bc, uint64_t loc);

/* Write every dirty block, then flush the device. */
int bc_flush(struct bc *bc);

/*
 * Read-ahead: load these blocks into the cache in one batch (libaio when
 * the engine supports it).  Errors are ignored here; bc_get reports them.
 */
void bc_prefetch(struct bc *bc, const uint64_t *blocks, size_t nr);

/* Statistics */
struct bc_stats {
	unsigned long reads, writes, hits, evictions;
};
void bc_get_stats(const struct bc *bc, struct bc_stats *st);

#endif
