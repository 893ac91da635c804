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
