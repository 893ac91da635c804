#include <criterion/criterion.h>
#include <string.h>

#include "thin/leaf_runs.h"
#include "thin/superblock.h"
#include "util/endian.h"

/*
 * A leaf of nr entries in a whole block; its key slots hold what would
 * make entry 0 look like the continuation of a run, were they taken for a
 * value.
 */
static uint8_t block[MD_BLOCK_SIZE];

static struct bt_node leaf(uint32_t nr)
{
	struct bt_node n = { .raw = block, .flags = BT_LEAF_NODE, .nr_entries = nr,
			     .max_entries = THIN_LEAF_MAX_ENTRIES, .value_size = 8 };

	return n;
}

static void set(uint32_t i, uint64_t b, uint32_t t)
{
	struct bt_node n = leaf(0);

	put_le64((uint8_t *)bt_value(&n, i), thin_bt_pack(b, t));
	if (!i)
		for (uint32_t k = 0; k < THIN_LEAF_MAX_ENTRIES; k++)
			put_le64(block + BT_HEADER_SIZE + 8 * k, thin_bt_pack(b - 1, t));
}

/* The plain definition: a run ends where the next block is not one more. */
static int reference(const struct bt_node *n, uint64_t nr_blocks, uint32_t max_time,
		     struct thin_leaf_runs *o)
{
	int ok = 1;

	memset(o, 0, sizeof(*o));
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t v = get_le64(bt_value(n, i));

		if (!i || thin_bt_block(v) != thin_bt_block(get_le64(bt_value(n, i - 1))) + 1)
			o->first[o->nr_runs++] = (uint16_t)i;
		if (thin_bt_block(v) >= nr_blocks || thin_bt_time(v) > max_time)
			ok = 0;
	}
	o->first[o->nr_runs] = (uint16_t)n->nr_entries;
	return ok;
}

static void same(uint32_t nr, uint64_t nr_blocks, uint32_t max_time, const char *what)
{
	struct bt_node n = leaf(nr);
	struct thin_leaf_runs got, want;
	int ok_want = reference(&n, nr_blocks, max_time, &want), ok_got;

	memset(&got, 0xa5, sizeof(got));
	ok_got = thin_leaf_runs(&n, nr_blocks, max_time, &got);
	cr_assert_eq(ok_got, ok_want, "%s, %u entries: within bounds %d, want %d", what, nr, ok_got,
		     ok_want);
	cr_assert_eq(got.nr_runs, want.nr_runs, "%s, %u entries: %u runs, want %u", what, nr,
		     got.nr_runs, want.nr_runs);
	cr_assert_arr_eq(got.first, want.first, sizeof(uint16_t) * (want.nr_runs + 1),
			 "%s, %u entries: run starts", what, nr);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Every length, with runs of every short length, block 0 first, a block
 * and a time just inside and just outside the bounds at every position
 * (the vector lanes, entry 0, the tail), 40-bit blocks and 24-bit times at
 * their limits, bounds of 0 and above 2^40.
 */
Test(leaf_runs, match_the_plain_definition_at_every_length_and_position)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	for (uint32_t nr = 0; nr <= THIN_LEAF_MAX_ENTRIES; nr++) {
		for (int pattern = 0; pattern < 6; pattern++) {
			uint64_t b = pattern == 0 ? 0 : rnd(&seed) % (1ull << 39);

			for (uint32_t i = 0; i < nr; i++) {
				if (pattern == 1 || (pattern >= 2 && rnd(&seed) % (uint64_t)pattern == 0))
					b = rnd(&seed) % (1ull << 39);   /* a new run */
				else if (pattern == 5 && i)
					b -= 2;                          /* falling: runs of one */
				set(i, b, (uint32_t)(rnd(&seed) % 1000));
				b++;
			}
			same(nr, 1ull << 40, 999, "pattern");
			same(nr, (1ull << 40) + 5, 0xffffff, "pattern, bounds above every value");
			same(nr, 0, 999, "pattern, no data blocks");
			same(nr, 1ull << 39, 500, "pattern, some out of bounds");
		}
		for (uint32_t at = 0; at < nr; at++) {
			for (uint32_t i = 0; i < nr; i++)
				set(i, 100 + i, 7);
			set(at, 999, 7);
			same(nr, 1000, 7, "largest block at the bound");
			same(nr, 999, 7, "largest block one past the bound");
			set(at, 100 + at, 8);
			same(nr, 1000, 8, "latest time at the bound");
			same(nr, 1000, 7, "latest time one past the bound");
			set(at, (1ull << 40) - 1, 0xffffff);
			same(nr, 1ull << 40, 0xffffff, "the largest value");
			same(nr, (1ull << 40) - 1, 0xffffff, "the largest block, out of bounds");
		}
	}
}

/* A leaf of one run: one run, whatever its length. */
Test(leaf_runs, one_run_is_one_run)
{
	struct bt_node n = leaf(THIN_LEAF_MAX_ENTRIES);
	struct thin_leaf_runs o;

	for (uint32_t i = 0; i < THIN_LEAF_MAX_ENTRIES; i++)
		set(i, 5000 + i, i);
	cr_assert_eq(thin_leaf_runs(&n, 5000 + THIN_LEAF_MAX_ENTRIES, THIN_LEAF_MAX_ENTRIES - 1, &o),
		     1);
	cr_assert_eq(o.nr_runs, 1);
	cr_assert_eq(o.first[0], 0);
	cr_assert_eq(o.first[1], THIN_LEAF_MAX_ENTRIES);
}

/* thin_leaf_prep: sound exactly when there are entries and thin_leaf_runs() says 1, with its runs. */
Test(leaf_runs, prep_is_sound_only_for_a_leaf_the_run_path_takes)
{
	struct thin_leaf_prep p;
	struct thin_leaf_runs r;
	struct bt_node n;

	for (uint32_t i = 0; i < 40; i++)
		set(i, 1000 + i + (i / 7) * 3, 5);   /* runs of 7 */
	n = leaf(40);
	thin_leaf_prep(&n, 2000, 5, &p);
	cr_assert(p.sound);
	cr_assert_eq(thin_leaf_runs(&n, 2000, 5, &r), 1);
	cr_assert_eq(p.lr.nr_runs, r.nr_runs);
	cr_assert_eq(p.lr.nr_runs, 6);
	cr_assert_eq(memcmp(p.lr.first, r.first, (r.nr_runs + 1) * sizeof(r.first[0])), 0);
	thin_leaf_prep(&n, 1040, 5, &p);   /* the last blocks beyond the data device */
	cr_assert(!p.sound);
	thin_leaf_prep(&n, 2000, 4, &p);   /* times later than the superblock's */
	cr_assert(!p.sound);
	n = leaf(0);
	thin_leaf_prep(&n, 2000, 5, &p);
	cr_assert(!p.sound, "no entries: nothing for the run path");
}

/*
 * thin_prep_block(): each run's first data block, carried in the prep for
 * the first THIN_PREP_BLOCKS runs and read from the leaf after them; every
 * leaf length and run count up to a run per entry (254 runs).
 */
Test(leaf_runs, prep_blocks_are_each_runs_first_data_block)
{
	struct thin_leaf_prep p;
	struct bt_node n;
	uint64_t s = 0x9e3779b97f4a7c15ull;

	for (uint32_t nr = 1; nr <= THIN_LEAF_MAX_ENTRIES; nr++) {
		uint32_t step = 1 + (uint32_t)(rnd(&s) % 5);   /* runs of 1..5 entries */
		uint64_t b = 100 + rnd(&s) % 1000;

		for (uint32_t i = 0; i < nr; i++) {
			/* a new run every step entries, with a gap after the last block */
			if (i && !(i % step))
				b += 2 + rnd(&s) % 7;
			set(i, b++, 1);
		}
		n = leaf(nr);
		memset(&p, 0xa5, sizeof(p));
		thin_leaf_prep(&n, 1ull << 40, 1, &p);
		cr_assert(p.sound, "%u entries", nr);
		cr_assert_eq(p.lr.nr_runs, (nr + step - 1) / step, "%u entries, runs of %u", nr, step);
		cr_assert_eq(p.nr_blocks,
			     p.lr.nr_runs < THIN_PREP_BLOCKS ? p.lr.nr_runs : THIN_PREP_BLOCKS);
		for (uint32_t k = 0; k < p.lr.nr_runs; k++) {
			uint64_t want = thin_bt_block(get_le64(bt_value(&n, p.lr.first[k])));

			cr_assert_eq(thin_prep_block(&p, bt_value(&n, 0), k), want,
				     "%u entries: run %u of %u starts at block %llu", nr, k,
				     p.lr.nr_runs, (unsigned long long)want);
			if (k < THIN_PREP_BLOCKS)
				cr_assert_eq(p.block[k], want);
		}
	}
}
