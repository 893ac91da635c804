#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

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

/* --- the last commit (superblock lost, order.c) --- */

#define NB 64

struct fake {
	struct pstate st[4];
	uint64_t bms[4][1];
	uint8_t inuse[4][NB / 8], sig[NB / 8], ioerr[NB / 8], any[NB / 8];
	uint64_t smi[8];
	struct repair_last_ctx c;
};

static int fake_older(void *ctx, size_t z, size_t x)
{
	struct fake *f = ctx;
	return repair_older_why(&f->st[z], &f->st[x]) != WB_NONE;
}

/* state i: index block ib, one bitmap bm, in use: blocks (0-terminated list, 0 implied) */
static void fake_state(struct fake *f, size_t i, uint64_t ib, uint64_t bm, long data_bitmaps,
		       const uint64_t *blocks)
{
	struct pstate *st = &f->st[i];

	memset(st, 0, sizeof(*st));
	st->index_block = ib;
	f->bms[i][0] = bm;
	st->bitmaps = f->bms[i];
	st->nr_bitmaps = 1;
	st->inuse = f->inuse[i];
	st->map_exact = 1;
	st->nr_data_bitmaps = data_bitmaps;
	repair_bit_set(st->inuse, 0);
	for (; *blocks; blocks++) {
		repair_bit_set(st->inuse, *blocks);
		repair_bit_set(f->any, *blocks);
		repair_bit_set(f->sig, *blocks);
		if (*blocks > st->max_used)
			st->max_used = *blocks;
		if (*blocks > f->c.high_sig)
			f->c.high_sig = *blocks;
	}
	if (i + 1 > f->c.nr)
		f->c.nr = i + 1;
	f->smi[f->c.nr_smi++] = ib;
}

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->c.st = f->st;
	f->c.nr_blocks = NB;
	f->c.sig = f->sig;
	f->c.ioerr = f->ioerr;
	f->c.inuse_any = f->any;
	f->c.older = fake_older;
	f->c.ctx = f;
	f->c.smi = f->smi;
}

/* the kernel's freshly formatted pool (no data blocks yet), then two commits */
static void fake_pool(struct fake *f)
{
	static const uint64_t s0[] = { 1, 2, 3, 4, 5, 6, 7, 0 };
	static const uint64_t s1[] = { 2, 5, 6, 7, 8, 9, 10, 11, 0 };
	static const uint64_t s2[] = { 2, 5, 8, 12, 13, 14, 15, 16, 0 };

	fake_init(f);
	fake_state(f, 0, 1, 3, 0, s0);
	fake_state(f, 1, 11, 9, 1, s1);
	fake_state(f, 2, 16, 13, 1, s2);
}

Test(repair_last, the_newest_commit_is_proven_by_the_format_state_in_its_lowest_free_block)
{
	struct fake f;
	uint64_t why, skipped;
	size_t owner;

	fake_pool(&f);
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 1);
	cr_assert_eq(owner, 1, "block 1 holds state 0's index, older: no data bitmaps");
	/* the older ones are not: what the next commit wrote lies above their index */
	cr_assert_eq(repair_last_commit(&f.c, 1, &why, &owner, &skipped), 0);
	cr_assert_eq(why, 16, "state 2's index");
	cr_assert_eq(repair_last_commit(&f.c, 0, &why, &owner, &skipped), 0);
	cr_assert_eq(why, 8);
}

Test(repair_last, blocks_above_it_without_a_newer_index_are_no_commit)
{
	struct fake f;
	uint64_t why, skipped;
	size_t owner;

	fake_pool(&f);
	/* a node nothing accounts for above it: an aborted transaction or an orphan tree */
	repair_bit_set(f.sig, 40);
	f.c.high_sig = 40;
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 1);
	/* a space-map index there, whose state is not proven older: maybe a newer commit */
	f.smi[f.c.nr_smi++] = 40;
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 0);
	cr_assert_eq(why, 40);
	/* the device full of written blocks (the allocator may have wrapped): every
	 * block above must be accounted for */
	fake_pool(&f);
	memset(f.sig, 0xff, sizeof(f.sig));
	f.c.high_sig = NB - 1;
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 0);
	cr_assert_eq(why, 17);
	/* an unreadable block there: the same */
	fake_pool(&f);
	for (uint64_t b = 17; b < NB; b++)
		repair_bit_set(f.ioerr, b);
	f.c.high_sig = NB - 1;
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 0);
	cr_assert_eq(why, 17);
}

Test(repair_last, a_zeroed_block_some_map_marks_in_use_may_have_been_written)
{
	struct fake f;
	static const uint64_t s3[] = { 2, 5, 8, 20, 21, 22, 0 };
	uint64_t why, skipped;
	size_t owner;

	fake_pool(&f);
	/*
	 * the lowest block state 2 had free (1) zeroed: it was written (state 0
	 * marks it); so was the next one (3, state 0's bitmap, moved away here)
	 */
	f.sig[0] &= (uint8_t)~(1u << 1);
	f.st[0].index_block = 40;
	f.bms[0][0] = 41;
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 0);
	cr_assert_eq(why, 1);
	/* with state 0's bitmap still in block 3, the next free block proves it */
	f.bms[0][0] = 3;
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 1);
	cr_assert_eq(skipped, 1);
	cr_assert_eq(owner, 1, "state 0's bitmap");
	/* a newer state's index, damaged or not, is found above */
	fake_pool(&f);
	fake_state(&f, 3, 22, 21, 1, s3);
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 0);
	cr_assert_eq(why, 22);
	cr_assert_eq(repair_last_commit(&f.c, 3, &why, &owner, &skipped), 1);
}

Test(repair_last, a_single_free_block_that_may_have_been_written_proves_nothing)
{
	struct fake f;
	uint64_t why, skipped;
	size_t owner;

	fake_pool(&f);
	/* state 2 has every block in use but block 1, which is zeroed (state 0 marks it) */
	memset(f.inuse[2], 0xff, sizeof(f.inuse[2]));
	f.inuse[2][0] &= (uint8_t)~(1u << 1);
	f.st[2].max_used = NB - 1;
	f.sig[0] &= (uint8_t)~(1u << 1);
	f.st[0].index_block = 40;
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 0);
	cr_assert_eq(why, 1);
}

Test(repair_last, a_map_whose_index_disagrees_with_its_bitmaps_proves_nothing)
{
	struct fake f;
	uint64_t why, skipped;
	size_t owner;

	fake_pool(&f);
	f.st[2].map_exact = 0;
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 0);
	cr_assert_eq(why, 0);
	/* nor does an inexact older state own its blocks */
	fake_pool(&f);
	f.st[0].map_exact = 0;
	cr_assert_eq(repair_last_commit(&f.c, 2, &why, &owner, &skipped), 0);
	cr_assert_eq(why, 1);
}

Test(repair_older, space_maps_and_device_times_order_states)
{
	struct fake f;
	struct pdev zd[2] = { { .id = 1, .d = { .creation_time = 1, .snapshotted_time = 2 } },
			      { .id = 2, .d = { .creation_time = 2, .snapshotted_time = 2 } } };
	struct pdev xd[2] = { { .id = 1, .d = { .creation_time = 1, .snapshotted_time = 3 } },
			      { .id = 3, .d = { .creation_time = 3, .snapshotted_time = 3 } } };

	fake_pool(&f);
	cr_assert_eq(repair_older_why(&f.st[0], &f.st[1]), WB_DATA_SM);
	cr_assert_eq(repair_older_why(&f.st[1], &f.st[0]), WB_NONE);
	f.st[1].nr_bitmaps = 0;
	cr_assert_eq(repair_older_why(&f.st[1], &f.st[2]), WB_META_SM);
	f.st[1].nr_bitmaps = 1;
	/* state 1's map marks block 13, now state 2's bitmap, in use: rewritten since */
	repair_bit_set(f.st[1].inuse, 13);
	cr_assert_eq(repair_older_why(&f.st[1], &f.st[2]), WB_OVERWRITE);
	cr_assert_eq(repair_older_why(&f.st[2], &f.st[1]), WB_NONE);
	f.st[1].inuse[13 / 8] &= (uint8_t)~(1u << (13 % 8));
	/* devices: a snapshot time never goes back */
	f.st[1].devs = zd;
	f.st[1].nr_pdevs = 2;
	f.st[1].devs_ok = 1;
	f.st[1].clock = 2;
	f.st[2].devs = xd;
	f.st[2].nr_pdevs = 2;
	f.st[2].devs_ok = 1;
	f.st[2].clock = 3;
	cr_assert_eq(repair_older_why(&f.st[1], &f.st[2]), WB_TIME);
	/* device 2, created at 2 (before state 2's clock 3), missing in state 2 */
	xd[0].d.snapshotted_time = 2;
	cr_assert_eq(repair_older_why(&f.st[1], &f.st[2]), WB_MISSING);
	/* the other way round: device 3 was created at 3, not before state 1's clock */
	cr_assert_eq(repair_older_why(&f.st[2], &f.st[1]), WB_NONE);
}

/* --- LVM names (lvm.c) --- */

Test(repair_lvm, device_mapper_names_of_metadata_lvs_give_vg_and_lv)
{
	char vg[64], lv[64];

	cr_assert_eq(thin_lvm_tmeta_name("/dev/mapper/vg0-pool0_tmeta", vg, sizeof(vg), lv,
					 sizeof(lv)), 0);
	cr_assert_str_eq(vg, "vg0");
	cr_assert_str_eq(lv, "pool0_tmeta");
	/* hyphens inside names are doubled */
	cr_assert_eq(thin_lvm_tmeta_name("/dev/mapper/my--vg-thin--pool_tmeta", vg, sizeof(vg),
					 lv, sizeof(lv)), 0);
	cr_assert_str_eq(vg, "my-vg");
	cr_assert_str_eq(lv, "thin-pool_tmeta");
	/* /dev/VG/LV: the LV's own name, hyphens single */
	cr_assert_eq(thin_lvm_tmeta_name("/dev/vg0/thin-pool_tmeta", vg, sizeof(vg), lv,
					 sizeof(lv)), 0);
	cr_assert_str_eq(vg, "vg0");
	cr_assert_str_eq(lv, "thin-pool_tmeta");
	/* not a pool's metadata LV */
	cr_assert_lt(thin_lvm_tmeta_name("/dev/mapper/vg0-pool0_tdata", vg, sizeof(vg), lv,
					 sizeof(lv)), 0);
	cr_assert_lt(thin_lvm_tmeta_name("/dev/mapper/vg0-pool0_tmeta-real", vg, sizeof(vg), lv,
					 sizeof(lv)), 0, "a layer below an LV");
	cr_assert_lt(thin_lvm_tmeta_name("/srv/meta.bin", vg, sizeof(vg), lv, sizeof(lv)), 0);
	cr_assert_lt(thin_lvm_tmeta_name("/dev/mapper/pool0_tmeta", vg, sizeof(vg), lv,
					 sizeof(lv)), 0, "no VG");
}
