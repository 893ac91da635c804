#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block-cache/block-cache.h"
#include "crc/crc32c.h"
#include "util/endian.h"

/* The cache knows no salts: these tests bring their own two block types. */
#define BITMAP_CSUM_XOR 1111u
#define INDEX_CSUM_XOR 2222u
static const uint32_t test_types[] = { BITMAP_CSUM_XOR, INDEX_CSUM_XOR };

static int v_check(const void *data, uint64_t loc, size_t len)
{
	return bc_csum_check(data, loc, len, BITMAP_CSUM_XOR);
}

static void v_prepare(void *data, uint64_t loc, size_t len)
{
	bc_csum_prepare(data, loc, len, BITMAP_CSUM_XOR);
}

static const struct bc_validator v_bitmap = { "test_bitmap", v_check, v_prepare };

static int v2_check(const void *data, uint64_t loc, size_t len)
{
	return bc_csum_check(data, loc, len, INDEX_CSUM_XOR);
}

static const struct bc_validator v_index = { "test_index", v2_check, NULL };

Test(block_cache, new_block_is_prepared_on_flush_and_validates_on_read)
{
	struct ioe *e = ioe_mem_create(8);
	struct bc *bc = bc_create(e, 16);
	struct bc_block *b;

	cr_assert_eq(bc_new(bc, 3, &v_bitmap, &b), 0);
	((uint8_t *)bc_data_mut(b))[100] = 42;
	bc_put(bc, b);
	cr_assert_eq(bc_flush(bc), 0);
	cr_assert_eq(ioe_mem_nr_flushes(e), 1);
	cr_assert_eq(get_le64(ioe_mem_data(e) + 3 * 4096 + 8), 3, "blocknr set by prepare");
	bc_destroy(bc);

	bc = bc_create(e, 16);
	cr_assert_eq(bc_get(bc, 3, &v_bitmap, &b), 0);
	cr_assert_eq(((const uint8_t *)bc_data(b))[100], 42);
	bc_put(bc, b);
	bc_destroy(bc);
	ioe_destroy(e);
}

Test(block_cache, bad_checksum_wrong_location_and_wrong_type_are_distinct)
{
	struct ioe *e = ioe_mem_create(8);
	uint8_t *d = ioe_mem_data(e);
	struct bc *bc;
	struct bc_block *b;

	/* block 1: valid bitmap at 1; block 2: copy of it (says it lives at 1) */
	bc_csum_prepare(d + 4096, 1, 4096, BITMAP_CSUM_XOR);
	memcpy(d + 2 * 4096, d + 4096, 4096);
	/* block 4: garbage */
	memset(d + 4 * 4096, 0x77, 4096);
	bc = bc_create(e, 16);
	cr_assert_eq(bc_get(bc, 1, &v_bitmap, &b), 0);
	bc_put(bc, b);
	cr_assert_eq(bc_get(bc, 2, &v_bitmap, &b), -ENOTBLK);
	cr_assert_eq(bc_get(bc, 1, &v_index, &b), -EINVAL, "validator mismatch refused");
	cr_assert_eq(bc_get(bc, 4, &v_bitmap, &b), -EILSEQ);
	bc_csum_prepare(d + 5 * 4096, 5, 4096, INDEX_CSUM_XOR);
	cr_assert_eq(bc_get(bc, 5, &v_bitmap, &b), -EILSEQ, "no block types given: a bad checksum");
	cr_assert_eq(bc_get(bc, 8, &v_bitmap, &b), -EINVAL, "beyond the device");
	bc_destroy(bc);

	bc = bc_create(e, 16);
	bc_set_type_salts(bc, test_types, 2);
	cr_assert_eq(bc_get(bc, 5, &v_bitmap, &b), BC_WRONG_TYPE);
	cr_assert_eq(bc_get(bc, 4, &v_bitmap, &b), -EILSEQ);
	cr_assert_eq(bc_classify(-EILSEQ, d + 5 * 4096, 4096, test_types, 2), BC_WRONG_TYPE);
	cr_assert_eq(bc_classify(-ENOTBLK, d + 5 * 4096, 4096, test_types, 2), -ENOTBLK);
	cr_assert_eq(bc_classify(-EILSEQ, d + 5 * 4096, 4096, test_types, 1), -EILSEQ);
	bc_destroy(bc);
	ioe_destroy(e);
}

Test(block_cache, memory_is_bounded_and_dirty_blocks_survive_eviction)
{
	struct ioe *e = ioe_mem_create(256);
	struct bc *bc = bc_create(e, 16);
	struct bc_block *b;
	struct bc_stats st;

	for (uint64_t i = 0; i < 200; i++) {
		cr_assert_eq(bc_new(bc, i, &v_bitmap, &b), 0);
		put_le64((uint8_t *)bc_data_mut(b) + 64, i * 3);
		bc_put(bc, b);
	}
	bc_get_stats(bc, &st);
	cr_assert_gt(st.evictions, 150);
	cr_assert_eq(bc_flush(bc), 0);
	bc_destroy(bc);
	bc = bc_create(e, 16);
	for (uint64_t i = 0; i < 200; i++) {
		cr_assert_eq(bc_get(bc, i, &v_bitmap, &b), 0, "block %lu", (unsigned long)i);
		cr_assert_eq(get_le64((const uint8_t *)bc_data(b) + 64), i * 3);
		bc_put(bc, b);
	}
	bc_destroy(bc);
	ioe_destroy(e);
}

Test(block_cache, read_and_write_errors_are_returned)
{
	struct ioe *e = ioe_mem_create(8);
	struct bc *bc = bc_create(e, 16);
	struct bc_block *b;

	ioe_mem_fail_read(e, 0);
	cr_assert_eq(bc_get(bc, 1, NULL, &b), -EIO);
	ioe_mem_fail_read(e, -1);
	cr_assert_eq(bc_new(bc, 2, &v_bitmap, &b), 0);
	bc_put(bc, b);
	ioe_mem_fail_write(e, 0);
	cr_assert_eq(bc_flush(bc), -EIO);
	bc_destroy(bc);
	ioe_destroy(e);
}

Test(block_cache, sync_engine_reads_a_file_and_refuses_writes_read_only)
{
	char path[] = "/tmp/thinmeta-bc-XXXXXX";
	int fd = mkstemp(path);
	uint8_t blk[4096];
	struct ioe *e;

	cr_assert_geq(fd, 0);
	memset(blk, 0, sizeof(blk));
	bc_csum_prepare(blk, 1, 4096, BITMAP_CSUM_XOR);
	cr_assert_eq(pwrite(fd, blk, 4096, 4096), 4096);
	cr_assert_eq(ftruncate(fd, 3 * 4096 + 100), 0);
	close(fd);
	cr_assert_eq(ioe_open(path, 0, &e), 0);
	cr_assert_eq(e->nr_blocks, 3, "partial trailing block ignored");
	{
		struct bc *bc = bc_create(e, 16);
		struct bc_block *b;
		cr_assert_eq(bc_get(bc, 1, &v_bitmap, &b), 0);
		bc_put(bc, b);
		bc_destroy(bc);
	}
	cr_assert_eq(ioe_write(e, 0, 1, blk), -EROFS);
	ioe_destroy(e);
	cr_assert_eq(ioe_open_aio(path, 0, &e), 0);
	{
		uint64_t blocks[2] = { 1, 2 };
		void *bufs[2] = { ioe_alloc_blocks(1), ioe_alloc_blocks(1) };
		int res[2];
		cr_assert_eq(ioe_read_batch(e, blocks, 2, bufs, res), 0);
		cr_assert_eq(res[0], 0);
		cr_assert_eq(res[1], 0);
		cr_assert_eq(memcmp(bufs[0], blk, 4096), 0);
		free(bufs[0]);
		free(bufs[1]);
	}
	ioe_destroy(e);
	cr_assert_eq(ioe_open("/nonexistent/x", 0, &e), -ENOENT);
	unlink(path);
}
