/*
 * CRC-32C (Castagnoli).  crc_crc32c() is the kernel's crc32c(seed, p, len):
 * no final inversion.  Uses carry-less multiply folding (AVX-512 and
 * VPCLMULQDQ) for 256 bytes and more, else the SSE4.2 crc32 instruction,
 * where the CPU has them.
 */
#ifndef THINMETA_CRC_CRC32C_H
#define THINMETA_CRC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc_crc32c(uint32_t seed, const void *p, size_t len);
/* The portable table implementation; same results as crc_crc32c(). */
uint32_t crc_crc32c_sw(uint32_t seed, const void *p, size_t len);
/*
 * One implementation by name (tests), falling back to the next where the
 * CPU lacks it: FOLD (carry-less multiply on 512-bit registers, AVX-512
 * and VPCLMULQDQ), HW (three crc32-instruction chains, SSE4.2), SW.
 */
enum crc_impl { CRC_IMPL_SW, CRC_IMPL_HW, CRC_IMPL_FOLD };
uint32_t crc_crc32c_impl(uint32_t seed, const void *p, size_t len, enum crc_impl impl);
/* Non-zero when the hardware path is in use. */
int crc_crc32c_hw_available(void);

/*
 * Block-checksum helpers for 4 KiB metadata blocks (FORMAT.md §2).  Each
 * salt lives beside its validator: thin/superblock.h, btree/btree.h,
 * spacemap/spacemap.h.
 */

/* csum = crc32c(~0, bytes[4..len]) ^ salt: the value stored at offset 0. */
uint32_t crc_block_csum(const void *block, size_t len, uint32_t salt);
/* The salt that makes the stored checksum valid (stored ^ crc). */
uint32_t crc_block_salt(const void *block, size_t len);

#endif
