#include <criterion/criterion.h>
#include <errno.h>

#include "thin/repair_internal.h"

/* --- pool states (superblock lost) --- */

Test(repair_state, the_newest_time_wins_whatever_the_block_position)
{
	const struct repair_state s[] = {
		{ .index_block = 148, .mroot = 144, .droot = 146, .time = 1 },
		{ .index_block = 9, .mroot = 5, .droot = 6, .time = 2 },
		{ .index_block = 80, .mroot = 75, .droot = 78, .time = 0 },
	};
	size_t pick = 99, tied = 0;

	cr_assert_eq(repair_pick_state(s, 3, &pick, &tied), 0);
	cr_assert_eq(pick, 1);
	cr_assert_eq(tied, 1);
}

Test(repair_state, transaction_id_then_details_time_break_time_ties)
{
	const struct repair_state s[] = {
		{ .mroot = 10, .droot = 11, .time = 3, .tid = 4, .dtime = 3 },
		{ .mroot = 20, .droot = 21, .time = 3, .tid = 5, .dtime = 1 },
		{ .mroot = 30, .droot = 31, .time = 3, .tid = 5, .dtime = 2 },
	};
	size_t pick, tied;

	cr_assert_eq(repair_pick_state(s, 3, &pick, &tied), 0);
	cr_assert_eq(s[pick].mroot, 30);
}

Test(repair_state, equally_recent_different_states_are_ambiguous)
{
	/* the `deleted` fixture: before and after devices were deleted, same time and tid */
	const struct repair_state s[] = {
		{ .index_block = 94, .mroot = 90, .droot = 92, .time = 1 },
		{ .index_block = 148, .mroot = 144, .droot = 146, .time = 1 },
		{ .index_block = 12, .mroot = 8, .droot = 9, .time = 0 },
	};
	size_t pick, tied;

	cr_assert_eq(repair_pick_state(s, 3, &pick, &tied), -EAGAIN);
	cr_assert_eq(tied, 2);
}

Test(repair_state, the_same_roots_seen_through_two_maps_are_one_state)
{
	/* a commit that changed only the data space map keeps the trees */
	const struct repair_state s[] = {
		{ .index_block = 50, .mroot = 40, .droot = 41, .time = 2, .tid = 7 },
		{ .index_block = 60, .mroot = 40, .droot = 41, .time = 2, .tid = 7 },
	};
	size_t pick, tied;

	cr_assert_eq(repair_pick_state(s, 2, &pick, &tied), 0);
	cr_assert_eq(tied, 1);
	cr_assert_eq(s[pick].mroot, 40);
}

Test(repair_state, no_state_is_enoent)
{
	size_t pick, tied;

	cr_assert_eq(repair_pick_state(NULL, 0, &pick, &tied), -ENOENT);
}

/* --- orphan trees matched to devices (top-level tree lost) --- */

Test(repair_match, unique_counts_are_matched)
{
	const struct repair_mdev d[] = { { 1, 10 }, { 2, 20 } };
	const struct repair_mtree t[] = {
		{ .root = 100, .count = 20, .refs = 1 },
		{ .root = 200, .count = 10, .refs = 1 },
	};
	long a[2];

	cr_assert_eq(repair_match_trees(d, 2, t, 2, 5, a), 2);
	cr_assert_eq(a[0], 1);
	cr_assert_eq(a[1], 0);
}

Test(repair_match, two_devices_with_the_same_count_and_two_trees_get_nothing)
{
	const struct repair_mdev d[] = { { 1, 10 }, { 2, 10 }, { 3, 7 } };
	const struct repair_mtree t[] = {
		{ .root = 100, .count = 10, .refs = 1 },
		{ .root = 200, .count = 10, .refs = 1 },
		{ .root = 300, .count = 7, .refs = 1 },
	};
	long a[3];

	cr_assert_eq(repair_match_trees(d, 3, t, 3, 5, a), 1);
	cr_assert_eq(a[0], -1);
	cr_assert_eq(a[1], -1);
	cr_assert_eq(a[2], 2);
}

Test(repair_match, one_tree_claimed_by_two_devices_needs_two_references)
{
	const struct repair_mdev d[] = { { 1, 10 }, { 2, 10 } };
	struct repair_mtree t[] = { { .root = 100, .count = 10, .refs = 1 } };
	long a[2];

	/* one reference: it is one device's tree, nothing says whose */
	cr_assert_eq(repair_match_trees(d, 2, t, 1, 5, a), 0);
	cr_assert_eq(a[0], -1);
	cr_assert_eq(a[1], -1);
	/* two references: a snapshot sharing its origin's root */
	t[0].refs = 2;
	cr_assert_eq(repair_match_trees(d, 2, t, 1, 5, a), 2);
	cr_assert_eq(a[0], 0);
	cr_assert_eq(a[1], 0);
}

Test(repair_match, trees_newer_than_the_pool_clock_are_not_candidates)
{
	const struct repair_mdev d[] = { { 1, 10 } };
	const struct repair_mtree t[] = {
		{ .root = 100, .count = 10, .refs = 1, .max_time = 9 },
		{ .root = 200, .count = 10, .refs = 1, .max_time = 3 },
	};
	long a[1];

	cr_assert_eq(repair_match_trees(d, 1, t, 2, 5, a), 1);
	cr_assert_eq(a[0], 1);
}

Test(repair_match, a_device_without_candidates_is_lost)
{
	const struct repair_mdev d[] = { { 4, 33 } };
	const struct repair_mtree t[] = { { .root = 100, .count = 32, .refs = 1 } };
	long a[1];

	cr_assert_eq(repair_match_trees(d, 1, t, 1, 5, a), 0);
	cr_assert_eq(a[0], -1);
}
