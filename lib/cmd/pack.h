/*
 * thin_metadata_pack / thin_metadata_unpack.
 *
 * Pack writes the pack format of thin-provisioning-tools 1.x, version 3
 * (UPSTREAM-1x.md §4, cmd/pack_v3.h): a 32-byte header (magic, version 3,
 * block size 4096, nr_blocks of the input), then chunks, each a u64
 * compressed length and one zlib stream of at most 1024 (u64 block number,
 * block program) records.  Our chunks are in block order and hold only the
 * blocks the metadata space map marks in use (1.x packs every block with a
 * valid checksum; --scan does that too).
 *
 * Unpack reads v3 (from 1.x or from us) and our former format, version 1
 * (magic "THINPACK"; still read, no longer written):
 *   header (48 bytes): magic (8), version u32 = 1, block size u32 = 4096,
 *     nr_blocks u64, nr_records u64, flags u32 (bit 0: packed by scanning),
 *     reserved u32, xxh64 of bytes 0..39 (8).
 *   chunks: "CHNK", nr_records u32, compressed_len u32, raw_len u32, xxh64
 *     of the compressed bytes (8), then a zlib stream of records: u64
 *     (blocknr | flags << 56) + 4096 bytes; record flags: bit 0 = block
 *     had no valid checksum, bit 1 = node with delta-coded, byte-transposed
 *     keys and values.
 *   trailer: "END!", nr_records u32, xxh64 chained over the chunk sums (8).
 */
#ifndef THINMETA_CMD_PACK_H
#define THINMETA_CMD_PACK_H

#include <stddef.h>
#include <stdint.h>

struct thin_pack_opts {
	const char *input, *output;
	int force;          /* overwrite an output that holds thin metadata */
	int scan;           /* every block with a valid checksum, space map or not */
	unsigned threads;   /* encoding threads; 0 = one per online CPU (at most 8) */
	int level;          /* zlib level 1..9; 0 = 6 */
	int fifo_wait_ms;   /* how long to wait for a reader on a FIFO output; 0 = 30 s */
};

struct thin_unpack_opts {
	const char *input, *output;
	int force;          /* overwrite metadata, or a non-empty file of another size */
	int allow_missing;  /* write a pack that lacks blocks its metadata uses */
	int fifo_wait_ms;   /* how long to wait for a writer on a FIFO input; 0 = 30 s */
};

struct pack_stats {
	unsigned version;        /* pack format read or written (3, or 1 for ours) */
	uint64_t nr_blocks;      /* device size in blocks */
	uint64_t nr_records;     /* blocks packed / unpacked */
	uint64_t bytes_out;      /* pack: size of the pack file */
	int scanned;             /* pack: blocks chosen by checksum, not by the space map */
	uint64_t nr_bad;         /* pack: blocks in use that fail their checksum (left out) */
	uint64_t nr_missing;     /* unpack: blocks the metadata uses that the pack lacks */
	int invalidated;         /* unpack: the old superblock was invalidated first */
	char note[512];          /* a warning for the user (empty if none) */
};

/* Returns 0 or a negative errno with a one-line message in msg. */
int thin_pack(const struct thin_pack_opts *o, struct pack_stats *st, char *msg, size_t msglen);
int thin_unpack(const struct thin_unpack_opts *o, struct pack_stats *st, char *msg, size_t msglen);

#endif
