#include <criterion/criterion.h>
#include <errno.h>

#include "repair/repair-internal.h"

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

/* --- candidate sets, reference accounting, propagation --- */

Test(repair_resolve, a_tree_taken_by_a_forced_device_is_struck_from_the_others)
{
	/* kernel/snapshots: history left device 0 with tree A only */
	const struct repair_mdev d[] = { { 0, 64 }, { 2, 64 } };
	const struct repair_mtree t[] = {
		{ .root = 64, .count = 64, .refs = 1 },
		{ .root = 56, .count = 64, .refs = 1 },
	};
	uint8_t cand[] = { 1, 0, 1, 1 };
	long a[2];

	cr_assert_eq(repair_match_resolve(d, 2, t, 2, cand, a), 2);
	cr_assert_eq(a[0], 0);
	cr_assert_eq(a[1], 1);
	cr_assert_eq(cand[2], 0, "tree 64 still a candidate of device 2");
}

Test(repair_resolve, look_alike_devices_stay_ambiguous_with_their_candidates)
{
	const struct repair_mdev d[] = { { 1, 74 }, { 3, 74 }, { 5, 9 } };
	const struct repair_mtree t[] = {
		{ .root = 49, .count = 74, .refs = 1 },
		{ .root = 76, .count = 74, .refs = 1 },
		{ .root = 90, .count = 9, .refs = 1 },
	};
	uint8_t cand[9];
	long a[3];

	repair_match_candidates(d, 3, t, 3, 3, cand);
	cr_assert_eq(repair_match_resolve(d, 3, t, 3, cand, a), 1);
	cr_assert_eq(a[0], REPAIR_AMBIGUOUS);
	cr_assert_eq(a[1], REPAIR_AMBIGUOUS);
	cr_assert_eq(a[2], 2);
	cr_assert(cand[0] && cand[1] && cand[3] && cand[4]);
}

Test(repair_resolve, references_that_do_not_add_up_lose_the_whole_group)
{
	/* three devices, two roots: one device's tree is missing, nobody knows whose */
	const struct repair_mdev d[] = { { 1, 10 }, { 2, 10 }, { 3, 10 }, { 4, 5 } };
	const struct repair_mtree t[] = {
		{ .root = 100, .count = 10, .refs = 1 },
		{ .root = 200, .count = 10, .refs = 1 },
		{ .root = 300, .count = 5, .refs = 1 },
	};
	uint8_t cand[12];
	long a[4];

	repair_match_candidates(d, 4, t, 3, 5, cand);
	cr_assert_eq(repair_match_resolve(d, 4, t, 3, cand, a), 1);
	cr_assert_eq(a[0], REPAIR_LOST);
	cr_assert_eq(a[1], REPAIR_LOST);
	cr_assert_eq(a[2], REPAIR_LOST);
	cr_assert_eq(a[3], 2);
}

Test(repair_resolve, an_extra_reference_is_not_a_device)
{
	/* a count of 2 (leak or a lost device) on one of two roots for two devices */
	const struct repair_mdev d[] = { { 1, 10 }, { 2, 10 } };
	const struct repair_mtree t[] = {
		{ .root = 100, .count = 10, .refs = 2 },
		{ .root = 200, .count = 10, .refs = 1 },
	};
	uint8_t cand[4];
	long a[2];

	repair_match_candidates(d, 2, t, 2, 5, cand);
	cr_assert_eq(repair_match_resolve(d, 2, t, 2, cand, a), 0);
	cr_assert_eq(a[0], REPAIR_LOST);
	cr_assert_eq(a[1], REPAIR_LOST);
}

Test(repair_resolve, a_device_struck_of_every_candidate_loses_its_group)
{
	/* devices 1 and 2 both forced onto a one-reference tree */
	const struct repair_mdev d[] = { { 1, 10 }, { 2, 10 } };
	const struct repair_mtree t[] = {
		{ .root = 100, .count = 10, .refs = 1 },
		{ .root = 200, .count = 10, .refs = 1 },
	};
	uint8_t cand[] = { 1, 0, 1, 0 };
	long a[2];

	cr_assert_eq(repair_match_resolve(d, 2, t, 2, cand, a), 0);
	cr_assert_eq(a[0], REPAIR_LOST);
	cr_assert_eq(a[1], REPAIR_LOST);
}
