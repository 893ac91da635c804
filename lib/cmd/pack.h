/*
 * thin_metadata_pack / thin_metadata_unpack: our own container for
 * shipping metadata (the tpt-Rust v3 encoder is undocumented).
 *
 * File layout (all integers little-endian):
 *   header (48 bytes): magic "THINPACK" (8), version u32 = 1, block size
 *     u32 = 4096, nr_blocks u64 (of the packed device), nr_records u64,
 *     flags u32 (bit 0: the metadata space map was unusable and every
 *     non-zero block was packed), reserved u32, xxh64 of bytes 0..39 (8).
 *   chunks: "CHNK" (4), nr_records u32, compressed_len u32, raw_len u32,
 *     xxh64 of the compressed bytes (8), then compressed_len bytes of a zlib
 *     stream of nr_records records: u64 (blocknr | flags << 56) + 4096
 *     bytes.  Record flags: bit 0 = block had no valid checksum when
 *     packed; bit 1 = B-tree node stored with keys and values
 *     delta-encoded and byte-transposed (reversible, compresses well).
 *   trailer: "END!" (4), nr_records u32 (low 32 bits), xxh64 of every
 *     chunk checksum in order (8).
 */
#ifndef THINMETA_CMD_PACK_H
#define THINMETA_CMD_PACK_H

#include <stddef.h>
#include <stdint.h>

#define PACK_VERSION 1u
#define PACK_BLOCKS_PER_CHUNK 256u

struct pack_stats {
	uint64_t nr_blocks;      /* device size in blocks */
	uint64_t nr_records;     /* blocks packed */
	uint64_t bytes_out;      /* pack file size */
	int scanned;             /* space map unusable: all non-zero blocks packed */
};

/* Returns 0 or a negative errno with a one-line message in msg. */
int thin_pack(const char *in, const char *out, struct pack_stats *st, char *msg, size_t msglen);

/*
 * Unpacks into out (created if missing, sized to nr_blocks, sparse).
 * Refuses an output holding a valid thin superblock unless force.
 */
int thin_unpack(const char *in, const char *out, int force, struct pack_stats *st, char *msg,
		size_t msglen);

/* Reversible node transform used by the packer (exposed for unit tests). */
int pack_transform_node(uint8_t *block);
void pack_untransform_node(uint8_t *block);

#endif
