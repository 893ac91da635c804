/* The in-memory engine's fault injection (what tests/tools/thin_faults relies on). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

Test(io, mem_failures_are_sticky_and_carry_the_chosen_error)
{
	struct ioe *e = ioe_mem_create(8);
	uint8_t *buf = ioe_alloc_blocks(1);

	cr_assert_not_null(e);
	cr_assert_not_null(buf);
	memset(buf, 0xab, MD_BLOCK_SIZE);
	ioe_mem_fail_errno(e, -ENOSPC);
	ioe_mem_fail_write(e, 1);
	cr_assert_eq(ioe_write(e, 0, 1, buf), 0);
	cr_assert_eq(ioe_write(e, 1, 1, buf), -ENOSPC);
	cr_assert_eq(ioe_write(e, 2, 1, buf), -ENOSPC, "a dead device stays dead");
	cr_assert_eq(ioe_mem_data(e)[MD_BLOCK_SIZE], 0, "a failed write writes nothing");
	cr_assert_eq(ioe_mem_nr_writes(e), 1);
	ioe_mem_fail_write(e, -1);
	cr_assert_eq(ioe_write(e, 1, 1, buf), 0);

	ioe_mem_fail_errno(e, -EIO);
	ioe_mem_fail_read(e, 2);
	cr_assert_eq(ioe_read(e, 0, 1, buf), 0);
	cr_assert_eq(ioe_read(e, 1, 1, buf), 0);
	cr_assert_eq(ioe_read(e, 0, 1, buf), -EIO);
	cr_assert_eq(ioe_read(e, 0, 1, buf), -EIO);
	cr_assert_eq(ioe_mem_nr_reads(e), 4, "reads are counted since the last arming");

	ioe_mem_fail_flush(e, 1);
	cr_assert_eq(ioe_flush(e), 0);
	cr_assert_eq(ioe_flush(e), -EIO);
	cr_assert_eq(ioe_mem_nr_flushes(e), 1);
	ioe_mem_fail_flush(e, -1);
	cr_assert_eq(ioe_flush(e), 0);
	free(buf);
	ioe_destroy(e);
}

Test(io, mem_counts_reads_when_not_armed)
{
	struct ioe *e = ioe_mem_create(2);
	uint8_t *buf = ioe_alloc_blocks(1);

	ioe_mem_fail_read(e, -1);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(ioe_read(e, 1, 1, buf), 0);
	cr_assert_eq(ioe_mem_nr_reads(e), 5);
	cr_assert_eq(ioe_read(e, 2, 1, buf), -EIO, "beyond the end");
	free(buf);
	ioe_destroy(e);
}

Test(io, huge_buffers_are_aligned_whole_huge_pages)
{
	const size_t huge = (size_t)IOE_HUGE_BLOCKS * MD_BLOCK_SIZE;
	size_t sizes[] = { 1, IOE_HUGE_BLOCKS - 1, IOE_HUGE_BLOCKS, IOE_HUGE_BLOCKS + 1 };

	for (unsigned k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t len = (sizes[k] + IOE_HUGE_BLOCKS - 1) / IOE_HUGE_BLOCKS * huge;
		uint8_t *p = ioe_alloc_huge(sizes[k]);

		cr_assert_not_null(p);
		cr_assert_eq((uintptr_t)p % huge, 0, "%zu blocks: aligned to a huge page", sizes[k]);
		/* every byte of the rounded length is ours to use */
		memset(p, 0x5a, len);
		cr_assert_eq(p[len - 1], 0x5a);
		free(p);
	}
}

#include "io/stream.h"

static struct ioe *numbered(uint64_t nr)
{
	struct ioe *e = ioe_mem_create(nr);

	for (uint64_t b = 0; e && b < nr; b++)
		memcpy(ioe_mem_data(e) + b * MD_BLOCK_SIZE, &b, sizeof(b));
	return e;
}

Test(io_stream, chunks_come_in_block_order_with_their_data)
{
	struct ioe *e = numbered(20);
	struct ioe_stream *s;
	struct ioe_chunk c;
	uint64_t want = 2;

	cr_assert_eq(ioe_stream_open(e, 2, 20, 3, 2, &s), 0);
	while (ioe_stream_next(s, &c) == 0) {
		cr_assert_eq(c.block, want);
		cr_assert_eq(c.nr, want + 3 <= 20 ? 3u : 20 - want);
		cr_assert_null(c.bad);
		for (unsigned i = 0; i < c.nr; i++) {
			uint64_t v;
			memcpy(&v, c.data + (size_t)i * MD_BLOCK_SIZE, sizeof(v));
			cr_assert_eq(v, c.block + i);
		}
		want += c.nr;
	}
	cr_assert_eq(want, 20, "every block once");
	cr_assert_eq(ioe_stream_next(s, &c), 1, "the end stays the end");
	ioe_stream_close(s);
	cr_assert_eq(ioe_mem_nr_reads(e), 6, "one read per chunk");
	ioe_destroy(e);
}

Test(io_stream, an_unreadable_chunk_is_read_block_by_block_and_marked)
{
	struct ioe *e = numbered(12);
	struct ioe_stream *s;
	struct ioe_chunk c;
	unsigned bad = 0, good = 0;

	ioe_mem_fail_read(e, 2);   /* the third chunk [8, 12) fails, and every later read */
	cr_assert_eq(ioe_stream_open(e, 0, 12, 4, 3, &s), 0);
	while (ioe_stream_next(s, &c) == 0) {
		for (unsigned i = 0; i < c.nr; i++) {
			uint64_t v;
			int isbad = c.bad && (c.bad[i / 8] & (1u << (i % 8)));
			memcpy(&v, c.data + (size_t)i * MD_BLOCK_SIZE, sizeof(v));
			cr_assert_eq(isbad, c.block + i >= 8, "block %llu", (unsigned long long)(c.block + i));
			cr_assert_eq(v, isbad ? 0 : c.block + i, "an unreadable block reads as zeros");
			isbad ? bad++ : good++;
		}
	}
	cr_assert_eq(bad, 4);
	cr_assert_eq(good, 8);
	ioe_stream_close(s);
	ioe_destroy(e);
}

Test(io_stream, empty_ranges_and_early_closes)
{
	struct ioe *e = numbered(64);
	struct ioe_stream *s;
	struct ioe_chunk c;

	cr_assert_eq(ioe_stream_open(e, 5, 5, 4, 2, &s), 0);
	cr_assert_eq(ioe_stream_next(s, &c), 1);
	ioe_stream_close(s);
	/* closed after one chunk, the reader blocked on a full ring: no hang */
	cr_assert_eq(ioe_stream_open(e, 0, 64, 1, 2, &s), 0);
	cr_assert_eq(ioe_stream_next(s, &c), 0);
	cr_assert_eq(c.block, 0);
	ioe_stream_close(s);
	ioe_destroy(e);
}
