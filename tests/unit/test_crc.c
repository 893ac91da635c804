#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "crc/crc32c.h"
#include "btree/btree.h"
#include "spacemap/spacemap.h"
#include "thin/superblock.h"

/* Standard CRC-32C check value of "123456789" is 0xE3069283 (init ~0, final ~0). */
Test(crc, standard_check_value)
{
	const char *s = "123456789";

	cr_assert_eq(crc_crc32c(0xffffffffu, s, 9) ^ 0xffffffffu, 0xE3069283u);
	cr_assert_eq(crc_crc32c_sw(0xffffffffu, s, 9) ^ 0xffffffffu, 0xE3069283u);
}

/* RFC 3720 B.4 vectors: 32 bytes of zeros -> 0x8A9136AA, of 0xff -> 0x62A8AB43. */
Test(crc, rfc3720_vectors)
{
	uint8_t buf[32];

	memset(buf, 0, sizeof(buf));
	cr_assert_eq(crc_crc32c(~0u, buf, 32) ^ ~0u, 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(crc_crc32c(~0u, buf, 32) ^ ~0u, 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	cr_assert_eq(crc_crc32c(~0u, buf, 32) ^ ~0u, 0x46DD794Eu);
}

Test(crc, hardware_and_table_agree_on_all_lengths_and_alignments)
{
	uint8_t buf[4200];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len < 300; len += 7)
			cr_assert_eq(crc_crc32c(0x12345678u, buf + off, len),
				     crc_crc32c_sw(0x12345678u, buf + off, len), "off %zu len %zu", off,
				     len);
	cr_assert_eq(crc_crc32c(~0u, buf, 4096), crc_crc32c_sw(~0u, buf, 4096));
}

/* The three-stream path (>= 3 * 1360 bytes) combines registers: check
 * lengths around its boundaries and several rounds. */
Test(crc, three_stream_path_agrees_with_table)
{
	static uint8_t buf[3 * 4096 + 64];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7919 + (i >> 5));
	for (size_t len = 4070; len < 4100; len++)
		cr_assert_eq(crc_crc32c(0xffffffffu, buf + 3, len),
			     crc_crc32c_sw(0xffffffffu, buf + 3, len), "len %zu", len);
	for (size_t len = 8150; len < 8170; len++)
		cr_assert_eq(crc_crc32c(0x1u, buf, len), crc_crc32c_sw(0x1u, buf, len), "len %zu", len);
	cr_assert_eq(crc_crc32c(0u, buf, sizeof(buf)), crc_crc32c_sw(0u, buf, sizeof(buf)));
}

/*
 * Every implementation against the table one: all lengths 0..1200 (the
 * folding path's 256-, 64- and 16-byte steps and its tail), lengths around
 * a block, at every alignment mod 64, with seeds 0, ~0 and one more, on
 * random data and on data of one byte value (zeros: where a lost seed or a
 * dropped lane would not show in a plain sum).
 */
Test(crc, every_implementation_agrees_with_the_table)
{
	static uint8_t buf[2 * 4096 + 128];
	const uint32_t seeds[] = { 0u, ~0u, 0x9e3779b9u };
	unsigned x = 1;

	for (int fill = 0; fill < 2; fill++) {
		for (size_t i = 0; i < sizeof(buf); i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = fill ? 0 : (uint8_t)(x >> 16);
		}
		for (int impl = CRC_IMPL_SW; impl <= CRC_IMPL_FOLD; impl++)
			for (unsigned s = 0; s < 3; s++) {
				for (size_t len = 0; len <= 1200; len++) {
					size_t off = (len * 13) % 64;

					cr_assert_eq(crc_crc32c_impl(seeds[s], buf + off, len, impl),
						     crc_crc32c_sw(seeds[s], buf + off, len),
						     "impl %d fill %d len %zu off %zu", impl, fill, len, off);
				}
				for (size_t off = 0; off < 64; off++)
					for (size_t len = 4090; len <= 4096; len += 2)
						cr_assert_eq(crc_crc32c_impl(seeds[s], buf + off, len, impl),
							     crc_crc32c_sw(seeds[s], buf + off, len),
							     "impl %d len %zu off %zu", impl, len, off);
				cr_assert_eq(crc_crc32c_impl(seeds[s], buf, sizeof(buf), impl),
					     crc_crc32c_sw(seeds[s], buf, sizeof(buf)), "impl %d", impl);
			}
	}
	/* one flipped bit anywhere in a block changes every implementation's answer */
	for (size_t bit = 0; bit < 4092 * 8; bit += 997) {
		uint32_t before = crc_crc32c_impl(~0u, buf + 4, 4092, CRC_IMPL_FOLD);

		buf[4 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert_neq(crc_crc32c_impl(~0u, buf + 4, 4092, CRC_IMPL_FOLD), before, "bit %zu", bit);
		cr_assert_eq(crc_crc32c_impl(~0u, buf + 4, 4092, CRC_IMPL_FOLD),
			     crc_crc32c_sw(~0u, buf + 4, 4092), "bit %zu", bit);
		buf[4 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

/* FORMAT.md §12.1: superblock checksum example relation. */
Test(crc, block_salt_roundtrip)
{
	uint8_t blk[4096];

	memset(blk, 0, sizeof(blk));
	blk[100] = 0x5a;
	uint32_t c = crc_block_csum(blk, sizeof(blk), SUPERBLOCK_CSUM_XOR);
	memcpy(blk, &c, 4);
	cr_assert_eq(crc_block_salt(blk, sizeof(blk)), SUPERBLOCK_CSUM_XOR);
	blk[200] ^= 1;
	cr_assert_neq(crc_block_salt(blk, sizeof(blk)), SUPERBLOCK_CSUM_XOR);
}

/* Each salt lives with its validator; lib/thin knows them all for BC_WRONG_TYPE. */
Test(crc, thin_block_types_tell_a_wrong_type_from_a_bad_checksum)
{
	static const uint32_t salts[] = { SUPERBLOCK_CSUM_XOR, BTREE_CSUM_XOR, BITMAP_CSUM_XOR,
					  INDEX_CSUM_XOR, 9031977u };
	const struct bc_validator *v[] = { &thin_sb_validator, &bt_node_validator,
					   &sm_bitmap_validator, &sm_index_validator };
	uint8_t blk[4096];

	for (size_t i = 0; i < sizeof(salts) / sizeof(salts[0]); i++) {
		memset(blk, 0, sizeof(blk));
		blk[300] = 0xa5;
		bc_csum_prepare(blk, 5, sizeof(blk), salts[i]);
		if (i < 4) {
			cr_assert_eq(thin_block_check(blk, 5, v[i]), 0);
			cr_assert_eq(thin_block_check(blk, 6, v[i]), -ENOTBLK);
		}
		cr_assert_eq(thin_block_check(blk, 5, v[(i + 1) % 4]), BC_WRONG_TYPE,
			     "salt %u read by the %s validator", salts[i], v[(i + 1) % 4]->name);
		blk[301] ^= 1;
		cr_assert_eq(thin_block_check(blk, 5, v[(i + 1) % 4]), -EILSEQ);
	}
}
