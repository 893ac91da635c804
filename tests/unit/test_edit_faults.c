/*
 * Crash safety of thin_edit's messages: for every message (and some
 * sequences) on kernel-written fixtures, the run is repeated with the
 * k-th write failing, for every k.  Afterwards the device must hold the
 * old metadata, every block the old state used byte for byte unchanged;
 * the run that succeeds must give what the kernel's semantics give
 * (edit_harness.h's model).  Both are checked strictly.
 */
#include "edit_harness.h"

#include "cmd/edit.h"

struct fcase {
	const char *fixture;
	uint64_t min_blocks;        /* grow the device (grow_metadata) */
	const char *words[8];
	int fails;                  /* the messages are refused: nothing may be written */
};

static int run_words(struct ioe *e, const struct fcase *c, char *msg, size_t msglen)
{
	struct thin_edit_opts o = { .path = "mem" };
	struct thin_md md = { 0 };
	size_t n = 0;
	int r;

	while (c->words[n])
		n++;
	o.words = c->words;
	o.nr_words = n;
	md.ioe = e;
	md.bc = bc_create(e, 512);
	cr_assert(md.bc);
	md.sb_err = thin_sb_read(md.bc, 0, &md.sb);
	r = thin_edit_md(&md, &o, NULL, msg, msglen);
	bc_destroy(md.bc);
	return r;
}

/* The kernel's semantics of the words on the model. */
static void apply_model(struct model *mo, struct model *snap, int *have_snap, const char *const *w,
			uint64_t dev_blocks)
{
	for (; *w; w++) {
		unsigned long long a = 0, b = 0;
		char name[64];
		int n = sscanf(*w, "%63s %llu %llu", name, &a, &b);

		cr_assert_geq(n, 1);
		if (!strcmp(name, "create_thin")) {
			model_create_thin(mo, a);
		} else if (!strcmp(name, "create_snap")) {
			model_create_snap(mo, a, b);
		} else if (!strcmp(name, "delete")) {
			model_del(mo, a);
		} else if (!strcmp(name, "set_transaction_id")) {
			mo->trans_id = b;
		} else if (!strcmp(name, "reserve_metadata_snap")) {
			model_clone(snap, mo);
			*have_snap = 1;
		} else if (!strcmp(name, "release_metadata_snap")) {
			model_release(snap);
			*have_snap = 0;
		} else if (!strcmp(name, "set_needs_check")) {
			mo->flags |= THIN_NEEDS_CHECK;
		} else if (!strcmp(name, "clear_needs_check")) {
			mo->flags &= ~THIN_NEEDS_CHECK;
		} else if (!strcmp(name, "rename")) {
			model_rename(mo, a, b);
		} else if (!strcmp(name, "grow_data")) {
			mo->nr_data_blocks = a;
		} else if (!strcmp(name, "grow_metadata")) {
			(void)dev_blocks;
		} else {
			cr_assert_fail("unknown word %s", *w);
		}
	}
}

static void fault_case(const struct fcase *c)
{
	struct mpool m;
	struct model old, old_snap, want, want_snap;
	int have_old_snap, have_snap;
	uint8_t *orig, *done;
	struct rcmap *used;
	struct thin_sb sb;
	unsigned long writes, w0;
	char msg[512], when[160];
	size_t len;
	int r;

	if (getenv("EDIT_FAULTS_TRACE"))
		fprintf(stderr, "case %s %s\n", c->fixture, c->words[0]);
	mp_fixture(&m, c->fixture, c->min_blocks);
	mp_detach(&m);
	len = m.e->nr_blocks * MD_BLOCK_SIZE;
	orig = mp_save(&m);
	model_load(&old, &m, 0);
	{
		struct bc *bc = bc_create(m.e, 64);

		cr_assert_eq(thin_sb_read(bc, 0, &sb), 0);
		used = rcmap_create(sb.metadata_sm.nr_blocks);
		cr_assert_eq(sm_disk_load(bc, &sb.metadata_sm, used, NULL, NULL), 0);
		bc_destroy(bc);
	}
	have_old_snap = !!sb.held_root;
	if (have_old_snap)
		model_load(&old_snap, &m, 1);
	snprintf(when, sizeof(when), "%s: %s%s%s", c->fixture, c->words[0],
		 c->words[1] ? " ..." : "", c->fails ? " (refused)" : "");

	/* the run that works */
	w0 = ioe_mem_nr_writes(m.e);
	r = run_words(m.e, c, msg, sizeof(msg));
	writes = ioe_mem_nr_writes(m.e) - w0;
	if (c->fails) {
		cr_assert_lt(r, 0, "%s: accepted", when);
		cr_assert(msg[0] && !strchr(msg, '\n'), "%s: one line: '%s'", when, msg);
		cr_assert_eq(writes, 0, "%s: %lu writes", when, writes);
		cr_assert(!memcmp(ioe_mem_data(m.e), orig, len), "%s: the device changed", when);
		goto out;
	}
	cr_assert_eq(r, 0, "%s: %s", when, msg);
	cr_assert_geq(writes, 2, "%s: at least the new blocks and the superblock", when);
	mp_check(&m, when);
	model_clone(&want, &old);
	have_snap = have_old_snap;
	if (have_snap)
		model_clone(&want_snap, &old_snap);
	apply_model(&want, &want_snap, &have_snap, c->words, m.e->nr_blocks);
	mp_compare(&m, &want, have_snap ? &want_snap : NULL, when);
	done = mp_save(&m);

	/* and every way it can be cut short */
	for (unsigned long k = 0; k < writes; k++) {
		char w2[256];

		memcpy(ioe_mem_data(m.e), orig, len);
		ioe_mem_fail_write(m.e, (long)k);
		r = run_words(m.e, c, msg, sizeof(msg));
		ioe_mem_fail_write(m.e, -1);
		snprintf(w2, sizeof(w2), "%s: write %lu of %lu failed", when, k, writes);
		cr_assert_lt(r, 0, "%s, but the edit succeeded", w2);
		for (uint64_t b = 0; b < sb.metadata_sm.nr_blocks; b++)
			if (rcmap_get(used, b))
				cr_assert(!memcmp(ioe_mem_data(m.e) + b * MD_BLOCK_SIZE,
						  orig + b * MD_BLOCK_SIZE, MD_BLOCK_SIZE),
					  "%s: block %llu of the old state changed", w2,
					  (unsigned long long)b);
		mp_check(&m, w2);
		mp_compare(&m, &old, have_old_snap ? &old_snap : NULL, w2);
	}
	/* the last write is the superblock: with it, the new state, byte for byte */
	memcpy(ioe_mem_data(m.e), orig, len);
	cr_assert_eq(run_words(m.e, c, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert(!memcmp(ioe_mem_data(m.e), done, len), "%s: not deterministic", when);
	free(done);
	model_release(&want);
	if (have_snap)
		model_release(&want_snap);
out:
	rcmap_destroy(used);
	model_release(&old);
	if (have_old_snap)
		model_release(&old_snap);
	free(orig);
	mp_destroy(&m);
}

#define CASE(fx, ...) { fx, 0, { __VA_ARGS__, NULL }, 0 }
#define GROWN(fx, blocks, ...) { fx, blocks, { __VA_ARGS__, NULL }, 0 }
#define REFUSED(fx, ...) { fx, 0, { __VA_ARGS__, NULL }, 1 }

static const struct fcase cases[] = {
	CASE("snapshots", "create_thin 9"),
	CASE("snapshots", "create_snap 9 0"),
	CASE("snapshots", "create_snap 9 3"),
	CASE("snapshots", "delete 1"),
	CASE("snapshots", "delete 0"),
	CASE("snapshots", "set_transaction_id 7 8"),
	CASE("snapshots", "reserve_metadata_snap"),
	CASE("snapshots", "rename 3 30"),
	CASE("snapshots", "grow_data 20000"),
	GROWN("snapshots", 4096, "grow_metadata"),
	GROWN("snapshots", 40000, "grow_metadata 40000"),
	CASE("snapshots", "set_needs_check"),
	CASE("held_root", "release_metadata_snap"),
	CASE("held_root", "delete 1", "create_snap 5 2"),
	CASE("needs_check", "clear_needs_check"),
	CASE("needs_check", "clear_needs_check", "create_thin 7"),
	CASE("deleted", "delete 4", "delete 6", "create_thin 4"),
	CASE("basic", "create_snap 2 0", "create_snap 3 2", "delete 0", "reserve_metadata_snap",
	     "create_thin 4", "rename 2 0", "set_transaction_id 1 2"),
	CASE("basic", "reserve_metadata_snap", "delete 0", "delete 1", "release_metadata_snap"),
	CASE("empty", "create_thin 0", "create_snap 1 0", "grow_data 70000"),
	CASE("resized", "create_snap 1 0", "delete 0"),
	CASE("blocksize_1m", "delete 0"),
	REFUSED("snapshots", "delete 99"),
	REFUSED("snapshots", "create_thin 9", "create_thin 9"),
	REFUSED("snapshots", "create_snap 9 42"),
	REFUSED("snapshots", "set_transaction_id 6 8"),
	REFUSED("snapshots", "release_metadata_snap"),
	REFUSED("held_root", "reserve_metadata_snap"),
	REFUSED("snapshots", "rename 1 2"),
	REFUSED("snapshots", "grow_data 10"),
	REFUSED("snapshots", "grow_metadata 4096"),
	REFUSED("needs_check", "create_thin 7"),
	REFUSED("snapshots", "delete 16777216"),
	REFUSED("snapshots", "frobnicate 1"),
	REFUSED("snapshots", "create_snap 9"),
	REFUSED("snapshots", "create_thin 9", "delete 1", "delete 1"),
};

Test(edit_faults, every_write_of_every_message_can_fail_and_leave_the_old_metadata)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		fault_case(&cases[i]);
}

/* Metadata with no room left: edits fail with one line and write nothing, until it grows. */
Test(edit_faults, a_full_metadata_device_refuses_then_grows_and_frees)
{
	struct mpool m;
	struct fcase del = { "-", 0, { "delete 3", NULL }, 0 };
	struct fcase grow_del = { "-", 0, { "grow_metadata", "delete 3", "delete 7", NULL }, 0 };
	char msg[512];
	uint64_t id = 0;
	uint8_t *full;
	struct ioe *big;
	int r;

	mp_format(&m, 300, 1000);
	/* one thin per transaction until the commit no longer fits */
	for (;;) {
		cr_assert_eq(thin_pool_create_thin(m.p, id), 0);
		r = thin_pool_commit(m.p, 0);
		if (r == -ENOSPC)
			break;
		cr_assert_eq(r, 0);
		id++;
	}
	mp_detach(&m);
	cr_assert_gt(id, 20);
	mp_check(&m, "full");
	full = mp_save(&m);
	r = run_words(m.e, &del, msg, sizeof(msg));
	cr_assert_eq(r, -ENOSPC, "a delete fitted: %d %s", r, msg);
	cr_assert(strstr(msg, "out of metadata space") || strstr(msg, "not enough free metadata"),
		  "%s", msg);
	cr_assert(!strchr(msg, '\n'));
	cr_assert(!memcmp(ioe_mem_data(m.e), full, m.e->nr_blocks * MD_BLOCK_SIZE),
		  "a refused edit wrote");
	/* a bigger device: grow first, then the deletes fit */
	big = ioe_mem_create(m.e->nr_blocks * 2);
	memcpy(ioe_mem_data(big), full, m.e->nr_blocks * MD_BLOCK_SIZE);
	ioe_destroy(m.e);
	m.e = big;
	cr_assert_eq(run_words(m.e, &grow_del, msg, sizeof(msg)), 0, "%s", msg);
	mp_check(&m, "grown, two deleted");
	free(full);
	mp_destroy(&m);
}
