#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "btree/btree.h"
#include "spacemap/spacemap.h"
#include "thin/superblock.h"
#include "util/endian.h"

Test(endian, values_are_stored_little_endian_whatever_the_host)
{
	uint8_t b[8];

	put_le64(b, 0x0102030405060708ull);
	cr_assert_eq(b[0], 0x08);
	cr_assert_eq(b[7], 0x01);
	cr_assert_eq(get_le64(b), 0x0102030405060708ull);
	put_le32(b, 0xa1b2c3d4u);
	cr_assert_eq(b[0], 0xd4);
	cr_assert_eq(get_le32(b), 0xa1b2c3d4u);
	cr_assert_eq(le64_to_cpu(cpu_to_le64(77)), 77);
	cr_assert_eq(le32_to_cpu(cpu_to_le32(0xdeadbeefu)), 0xdeadbeefu);
	cr_assert_eq(le16_to_cpu(cpu_to_le16(0xbeef)), 0xbeef);
}

Test(endian, unaligned_access_is_safe)
{
	uint8_t b[16] = { 0 };

	put_le64(b + 3, 0x1122334455667788ull);
	cr_assert_eq(get_le64(b + 3), 0x1122334455667788ull);
	cr_assert_eq(b[3], 0x88);
}

/* FORMAT.md §6.2 example: origin 0 -> data 100, time 1 is 0x0000000064000001. */
Test(endian, block_time_packing_matches_the_format_example)
{
	uint64_t v = thin_bt_pack(100, 1);

	cr_assert_eq(v, 0x64000001ull);
	cr_assert_eq(thin_bt_block(v), 100);
	cr_assert_eq(thin_bt_time(v), 1);
	v = thin_bt_pack((1ull << 40) - 1, 0xffffff);
	cr_assert_eq(thin_bt_block(v), (1ull << 40) - 1);
	cr_assert_eq(thin_bt_time(v), 0xffffff);
}

/* FORMAT.md §12.1: the superblock bytes of the worked example decode to its fields. */
Test(endian, superblock_unpack_decodes_the_worked_example)
{
	uint8_t blk[4096];
	struct thin_sb sb;

	memset(blk, 0, sizeof(blk));
	const uint8_t head[] = {
		0x29, 0xa3, 0x43, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	};
	memcpy(blk, head, sizeof(head));
	put_le64(blk + 32, 27022010);
	put_le32(blk + 40, 2);
	put_le32(blk + 44, 5);
	put_le64(blk + 48, 7);
	put_le64(blk + 64, 1000);
	put_le64(blk + 72, 13);
	put_le64(blk + 80, 4);
	put_le64(blk + 88, 5);
	put_le64(blk + 192, 2048);
	put_le64(blk + 200, 12);
	put_le64(blk + 208, 1);
	put_le64(blk + 216, 2);
	put_le64(blk + 320, 7);
	put_le64(blk + 328, 6);
	put_le32(blk + 336, 128);
	put_le32(blk + 340, 8);
	put_le64(blk + 344, 2048);
	thin_sb_unpack((const struct disk_superblock *)blk, &sb);
	cr_assert_eq(sb.magic, THIN_MAGIC);
	cr_assert_eq(sb.time, 5);
	cr_assert_eq(sb.trans_id, 7);
	cr_assert_eq(sb.data_sm.nr_blocks, 1000);
	cr_assert_eq(sb.data_sm.nr_allocated, 13);
	cr_assert_eq(sb.data_sm.bitmap_root, 4);
	cr_assert_eq(sb.metadata_sm.ref_count_root, 2);
	cr_assert_eq(sb.data_mapping_root, 7);
	cr_assert_eq(sb.device_details_root, 6);
	cr_assert_eq(sb.data_block_size, 128);
	cr_assert_eq(sb.metadata_nr_blocks, 2048);
	{
		uint8_t again[4096];
		memset(again, 0, sizeof(again));
		thin_sb_pack(&sb, (struct disk_superblock *)again);
		cr_assert_eq(memcmp(again + 4, blk + 4, 4092), 0, "pack(unpack(x)) == x");
	}
}
