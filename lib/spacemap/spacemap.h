/*
 * Space maps (FORMAT.md §7): on-disk structures, bitmap entry coding, a
 * reader for the data (index B-tree) and metadata (index block) space
 * maps, and an in-core counting map used by the checker and the writers.
 */
#ifndef THINMETA_SPACEMAP_SPACEMAP_H
#define THINMETA_SPACEMAP_SPACEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "block-cache/block-cache.h"
#include "btree/btree.h"
#include "util/endian.h"
#include "refcount/refcount.h"
#include "findings/findings.h"
#include "util/report.h"

#define SM_ENTRIES_PER_BITMAP 16320u
#define SM_MAX_METADATA_BITMAPS 255u
#define SM_MAX_METADATA_BLOCKS (SM_MAX_METADATA_BITMAPS * SM_ENTRIES_PER_BITMAP)
#define SM_INDEX_ENTRY_SIZE 16u
#define SM_OVERFLOW_VSIZE 4u

struct disk_sm_root {
	le64 nr_blocks;
	le64 nr_allocated;
	le64 bitmap_root;
	le64 ref_count_root;
} __attribute__((packed));
_Static_assert(sizeof(struct disk_sm_root) == 32, "sm root");

struct disk_index_entry {
	le64 blocknr;
	le32 nr_free;
	le32 none_free_before;
} __attribute__((packed));
_Static_assert(sizeof(struct disk_index_entry) == 16, "index entry");

struct disk_metadata_index {
	le32 csum;
	le32 padding;
	le64 blocknr;
	struct disk_index_entry index[SM_MAX_METADATA_BITMAPS];
} __attribute__((packed));
_Static_assert(sizeof(struct disk_metadata_index) == 4096, "metadata index");

struct disk_bitmap_header {
	le32 csum;
	le32 not_used;
	le64 blocknr;
} __attribute__((packed));
_Static_assert(sizeof(struct disk_bitmap_header) == 16, "bitmap header");

/* Checksum salts (FORMAT.md §2) of sm_bitmap_validator and sm_index_validator. */
#define BITMAP_CSUM_XOR 240779u
#define INDEX_CSUM_XOR 160478u

extern const struct bc_validator sm_bitmap_validator;
extern const struct bc_validator sm_index_validator;

/* Entry j (0..16319) of a bitmap block: 0, 1, 2 or 3 (= see overflow tree). */
static inline unsigned sm_bitmap_get(const void *block, unsigned j)
{
	const uint8_t *w = (const uint8_t *)block + 16 + (j / 32) * 8;
	uint64_t word = get_le64(w);
	unsigned s = 2 * (j % 32);

	return (unsigned)((((word >> s) & 1) << 1) | ((word >> (s + 1)) & 1));
}

static inline void sm_bitmap_set(void *block, unsigned j, unsigned v)
{
	uint8_t *w = (uint8_t *)block + 16 + (j / 32) * 8;
	uint64_t word = get_le64(w);
	unsigned s = 2 * (j % 32);

	word &= ~(3ull << s);
	word |= (uint64_t)((v >> 1) & 1) << s;
	word |= (uint64_t)(v & 1) << (s + 1);
	put_le64(w, word);
}

/* Fast decode of a whole bitmap: out[j] = entry j for j < n. */
void sm_bitmap_decode(const void *block, unsigned n, uint8_t *out);
/* Every entry of the bitmap block is 0 (free). */
int sm_bitmap_all_free(const void *block);
/*
 * The fast path of a checker: 1 when entries [0, n) of the bitmap block
 * equal want (the computed counts, each min(count, 3), in the bitmap's own
 * encoding: (n + 31) / 32 words from rcmap_get_fields2(), fields from n on
 * 0), every entry of 3 has its bit set in threes_ok (entry j: bit j % 64 of
 * threes_ok[j / 64]; the checker sets it where the overflow tree holds the
 * block's count and that count agrees; NULL: no entry of 3 agrees) and
 * every entry from n on is 0; then *nonzero is the number of entries in
 * use and *first_free the first free one (SM_ENTRIES_PER_BITMAP: none).
 * 0 otherwise (decode and compare one by one).  A word of 32 entries a
 * step; threes_ok is read only for the 64-entry words that hold a 3.
 */
int sm_bitmap_agrees(const void *block, const uint64_t *want, unsigned n, const uint64_t *threes_ok,
		     unsigned *nonzero, unsigned *first_free);

static inline uint64_t sm_nr_bitmaps(uint64_t nr_blocks)
{
	return (nr_blocks + SM_ENTRIES_PER_BITMAP - 1) / SM_ENTRIES_PER_BITMAP;
}

/*----------------------------------------------------------------*/
/* Reading an on-disk space map. */

enum sm_kind { SM_DATA, SM_METADATA };

struct sm_disk_info {
	enum sm_kind kind;
	uint64_t nr_blocks, nr_allocated, bitmap_root, ref_count_root;
};

void sm_root_unpack(const struct disk_sm_root *root_le, enum sm_kind kind,
		    struct sm_disk_info *out);

/* One index entry as read from disk. */
struct sm_index_entry {
	uint64_t blocknr;
	uint32_t nr_free, none_free_before;
};

void sm_index_entry_unpack(const struct disk_index_entry *le, struct sm_index_entry *out);

/*
 * The data space map's index, decoded leaf by leaf for whichever walker
 * visits the tree: sm_read_index()'s own, or thin_check's memoising one
 * (which walks every tree of the pool to find nodes shared between them).
 * Keys must run 0, 1, ..., nr_bitmaps - 1; an entry whose key is below
 * nr_bitmaps is stored even when out of sequence.
 */
struct sm_index_decoder {
	struct sm_index_entry *entries;  /* [nr_bitmaps], zeroed by the caller */
	uint64_t nr_bitmaps;
	uint64_t next_key;               /* the key expected next */
	int bad_keys;                    /* a key was out of sequence */
	/* the first key out of sequence, before bad_keys is set (may be NULL) */
	void (*bad_key)(const struct sm_index_decoder *d, const struct bt_node *n, uint64_t key);
	void *ctx;
};

void sm_index_decode_leaf(struct sm_index_decoder *d, const struct bt_node *n);

/* The keys were in sequence but fewer than nr_bitmaps. */
static inline int sm_index_short(const struct sm_index_decoder *d)
{
	return !d->bad_keys && d->next_key != d->nr_bitmaps;
}

/*
 * Reads the index (B-tree for data, index block for metadata) into
 * entries[0..nr_bitmaps).  Damage goes to rep (may be NULL); a missing or
 * unreadable entry gets blocknr 0.  meta_refs (may be NULL) is incremented
 * for every metadata block the index occupies (index tree nodes or the
 * index block).  Returns 0, or negative errno when nothing could be read.
 */
int sm_read_index(struct bc *bc, const struct sm_disk_info *info, struct sm_index_entry *entries,
		  struct report *rep, struct rcmap *meta_refs);

/*
 * Reads the overflow tree into counts: calls cb for each (block, count).
 * meta_refs (may be NULL) counts its nodes.
 */
int sm_read_overflow(struct bc *bc, const struct sm_disk_info *info, struct report *rep,
		     struct rcmap *meta_refs,
		     int (*cb)(void *ctx, uint64_t block, uint32_t count), void *ctx);

/*
 * Loads the whole on-disk space map into an in-core map (for comparison,
 * leak repair and thin_trim).  Records all damage in rep.
 */
int sm_disk_load(struct bc *bc, const struct sm_disk_info *info, struct rcmap *out,
		 struct report *rep, struct rcmap *meta_refs);

#endif
