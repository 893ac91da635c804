/*
 * The block programs of thin-provisioning-tools 1.x pack files, version 3
 * (UPSTREAM-1x.md §4): each 4096-byte metadata block is stored as a small
 * program for a machine that appends little-endian u64 values and literal
 * bytes to the block.  Our own encoder; the format is 1.x's.
 *
 * Instruction byte = tag << 4 | nibble; "width" nibbles are 1, 2, 4 or 8
 * bytes of little-endian operand.  A fresh state (base = 0) per block and
 * per ShiftedRun sub-program.
 */
#ifndef THINMETA_CMD_PACK_V3_H
#define THINMETA_CMD_PACK_V3_H

#include <stddef.h>
#include <stdint.h>

#define PACK_V3_MAGIC 0xa537a0aa6309ef77ull
#define PACK_V3_VERSION 3u
#define PACK_V3_HEADER_SIZE 32u
#define PACK_V3_BLOCKS_PER_CHUNK 1024u

/* The longest program the encoder writes: one literal of the whole block. */
#define PACK_V3_MAX_PROGRAM 4099u

enum pack_v3_tag {
	PV3_SET = 0, PV3_POS, PV3_POSW, PV3_NEG, PV3_NEGW, PV3_CONST, PV3_CONST8,
	PV3_COUNT, PV3_COUNT8, PV3_LIT, PV3_LITW, PV3_SHIFTED_RUN,
};

/*
 * Writes the program for block (4096 bytes) into out (at least
 * PACK_V3_MAX_PROGRAM bytes).  B-tree nodes get delta-coded keys and
 * values; anything else is one literal.  Returns the program's length.
 */
size_t pack_v3_encode_block(const uint8_t *block, uint8_t *out);

/*
 * Runs the program at p[*pos..len) until it has produced exactly one block
 * into block (4096 bytes) and advances *pos past it.  Returns 0, or
 * -EILSEQ for a malformed program (unknown or misplaced instruction, bad
 * width, output beyond the block, input ending early).
 */
int pack_v3_decode_block(const uint8_t *p, size_t len, size_t *pos, uint8_t *block);

#endif
