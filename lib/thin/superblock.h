/* Thin superblock (FORMAT.md §3) and device details (§6.3). */
#ifndef THINMETA_THIN_SUPERBLOCK_H
#define THINMETA_THIN_SUPERBLOCK_H

#include <stdint.h>

#include "block-cache/block-cache.h"
#include "spacemap/spacemap.h"
#include "util/endian.h"

#define THIN_MAGIC 27022010ull
#define THIN_VERSION 2u
#define THIN_NEEDS_CHECK 1u
#define THIN_SB_LOCATION 0
#define THIN_MAX_DEV_ID ((1ull << 24) - 1)
#define THIN_MIN_DATA_BLOCK_SIZE 128u
#define THIN_MAX_DATA_BLOCK_SIZE 2097152u
#define THIN_DETAILS_VSIZE 24u
#define THIN_MAPPING_VSIZE 8u

struct disk_superblock {
	le32 csum;
	le32 flags;
	le64 blocknr;
	uint8_t uuid[16];
	le64 magic;
	le32 version;
	le32 time;
	le64 trans_id;
	le64 held_root;
	uint8_t data_space_map_root[128];
	uint8_t metadata_space_map_root[128];
	le64 data_mapping_root;
	le64 device_details_root;
	le32 data_block_size;
	le32 metadata_block_size;
	le64 metadata_nr_blocks;
	le32 compat_flags;
	le32 compat_ro_flags;
	le32 incompat_flags;
} __attribute__((packed));

_Static_assert(sizeof(struct disk_superblock) == 364, "superblock is 364 bytes");
_Static_assert(__builtin_offsetof(struct disk_superblock, magic) == 32, "magic");
_Static_assert(__builtin_offsetof(struct disk_superblock, held_root) == 56, "held_root");
_Static_assert(__builtin_offsetof(struct disk_superblock, data_space_map_root) == 64, "dsm");
_Static_assert(__builtin_offsetof(struct disk_superblock, metadata_space_map_root) == 192, "msm");
_Static_assert(__builtin_offsetof(struct disk_superblock, data_mapping_root) == 320, "mroot");
_Static_assert(__builtin_offsetof(struct disk_superblock, device_details_root) == 328, "droot");
_Static_assert(__builtin_offsetof(struct disk_superblock, data_block_size) == 336, "dbs");
_Static_assert(__builtin_offsetof(struct disk_superblock, metadata_nr_blocks) == 344, "mnb");
_Static_assert(__builtin_offsetof(struct disk_superblock, incompat_flags) == 360, "incompat");

struct disk_device_details {
	le64 mapped_blocks;
	le64 transaction_id;
	le32 creation_time;
	le32 snapshotted_time;
} __attribute__((packed));
_Static_assert(sizeof(struct disk_device_details) == 24, "device details");

/* Checksum salt of the superblock (FORMAT.md §2), used by thin_sb_validator. */
#define SUPERBLOCK_CSUM_XOR 160774u

extern const struct bc_validator thin_sb_validator;

/*
 * The block types of thin metadata, each salt taken from the module that
 * owns its validator (superblock here, B-tree nodes from lib/btree, space
 * map bitmaps and index from lib/spacemap), plus the other persistent-data
 * formats' (dm-cache and dm-era superblocks, dm-array blocks) so that such
 * a device given by mistake reads as "wrong block type".
 * thin_block_salts() returns them, thin_bc_set_block_types() gives them to
 * a cache (bc_set_type_salts()), thin_block_check() checks a raw block with
 * validator v and classifies a failure with them, as a cache would.
 */
const uint32_t *thin_block_salts(size_t *nr);
void thin_bc_set_block_types(struct bc *bc);
int thin_block_check(const void *data, uint64_t loc, const struct bc_validator *v);

/* CPU-order superblock. */
struct thin_sb {
	uint32_t flags;
	uint64_t blocknr;
	uint8_t uuid[16];
	uint64_t magic;
	uint32_t version, time;
	uint64_t trans_id, held_root;
	struct sm_disk_info data_sm, metadata_sm;
	uint64_t data_mapping_root, device_details_root;
	uint32_t data_block_size, metadata_block_size;
	uint64_t metadata_nr_blocks;
	uint32_t compat_flags, compat_ro_flags, incompat_flags;
};

void thin_sb_unpack(const struct disk_superblock *d, struct thin_sb *sb);
/* Writes sb into a zeroed 4 KiB block (checksum is set by the validator). */
void thin_sb_pack(const struct thin_sb *sb, struct disk_superblock *d);

/*
 * Reads and validates the superblock at loc (0 for the live one, held_root
 * for the metadata snapshot).  Returns 0 or the validator error (-EILSEQ,
 * -ENOTBLK, BC_WRONG_TYPE, -EIO).  Semantic checks are separate.
 */
int thin_sb_read(struct bc *bc, uint64_t loc, struct thin_sb *sb);

struct thin_details {
	uint64_t mapped_blocks, transaction_id;
	uint32_t creation_time, snapshotted_time;
};

void thin_details_unpack(const void *value_le, struct thin_details *d);
void thin_details_pack(const struct thin_details *d, void *value_le);

/* block_time packing (§6.2) */
static inline uint64_t thin_bt_pack(uint64_t data_block, uint32_t time)
{
	return (data_block << 24) | (time & 0xffffff);
}
static inline uint64_t thin_bt_block(uint64_t v)
{
	return v >> 24;
}
static inline uint32_t thin_bt_time(uint64_t v)
{
	return (uint32_t)(v & 0xffffff);
}

#endif
