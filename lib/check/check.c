/*
 * thin_check (FORMAT.md §10): superblock, device details and mapping
 * trees, metadata snapshot, space maps; leak repair.  The tree walker is
 * in check_tree.c, the space-map comparison and repair in check_sm.c.
 */
#include "check/check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "crc/crc32c.h"
#include "check/check-internal.h"
#include "thin/leaf_runs.h"

/*----------------------------------------------------------------*/

_Static_assert(RC_MAX <= REP_MAX_CODES, "the report counts every finding code");

void ck_add(struct ck *ck, enum dmg_level level, enum rep_code code, struct rep_ctx ctx,
	    const char *fmt, ...)
{
	va_list ap;

	if (level > ck->worst_other)
		ck->worst_other = level;
	va_start(ap, fmt);
	rep_vadd(ck->rep, level, code, ctx, fmt, ap);
	va_end(ap);
}

void ck_meta_inc(struct ck *ck, uint64_t block)
{
	if (ck->meta_refs && block < rcmap_nr_blocks(ck->meta_refs))
		rcmap_inc(ck->meta_refs, block);
}

int ck_read_block(struct ck *ck, uint64_t block, void *buf)
{
	if (block >= ck->ioe->nr_blocks)
		return -EINVAL;
	return ioe_read(ck->ioe, block, 1, buf);
}

/*----------------------------------------------------------------*/
/* superblock */

static const char *sb_err_str(int err)
{
	switch (err) {
	case -EILSEQ:
		return "bad checksum";
	case -ENOTBLK:
		return "wrong location (blocknr mismatch)";
	case BC_WRONG_TYPE:
		return "not a superblock (checksum of another block type)";
	default:
		return "io error";
	}
}

static enum rep_code sb_err_code(int err)
{
	switch (err) {
	case -EILSEQ:
		return RC_SB_CSUM;
	case -ENOTBLK:
		return RC_SB_BLOCKNR;
	case BC_WRONG_TYPE:
		return RC_SB_WRONG_TYPE;
	default:
		return RC_SB_IO;
	}
}

/* Unreadable live superblock: one line saying why. */
static void report_bad_sb(struct ck *ck, int err)
{
	uint8_t *buf = ioe_alloc_blocks(1);
	int zero = 1, magic = 0;

	if (buf && ck_read_block(ck, 0, buf) == 0) {
		for (size_t i = 0; i < MD_BLOCK_SIZE && zero; i++)
			zero = !buf[i];
		magic = get_le64(buf + 32) == THIN_MAGIC;
	}
	free(buf);
	if (zero && err == -EILSEQ)
		ck_add(ck, DMG_FATAL, RC_SB_CSUM, REP_CTX_BLOCK(0),
		       "superblock (block 0) is all zeroes: not thin metadata");
	else if (!magic && err == -EILSEQ)
		ck_add(ck, DMG_FATAL, RC_SB_CSUM, REP_CTX_BLOCK(0),
		       "bad checksum in superblock (block 0), and no thin magic number: "
		       "not thin metadata?");
	else
		ck_add(ck, DMG_FATAL, sb_err_code(err), REP_CTX_BLOCK(0),
		       "%s in superblock (block 0)", sb_err_str(err));
}

static int valid_root(uint64_t v, uint64_t nr_blocks)
{
	return v != 0 && v < nr_blocks;
}

static void check_root_ptr(struct ck *ck, const char *pfx, const char *name, uint64_t v,
			   uint64_t nr_blocks)
{
	if (!valid_root(v, nr_blocks))
		ck_add(ck, DMG_FATAL, RC_SB_BAD_ROOT, REP_CTX_BLOCK(v),
		       "%s%s %llu is not a valid metadata block (metadata has %llu blocks)", pfx,
		       name, (unsigned long long)v, (unsigned long long)nr_blocks);
}

/*
 * A live tree root, or the override given for it.  The superblock's own
 * root is not used then: a bad one is only a warning.  A bad override is
 * fatal, and says that the tree (and what hangs below it) goes unchecked.
 */
static void check_live_root(struct ck *ck, const char *name, uint64_t sb_root, unsigned flag,
			    uint64_t override, const char *opt, const char *tree)
{
	uint64_t nr = ck->md_nr_blocks;

	if (!(ck->opts->flags & flag)) {
		check_root_ptr(ck, "", name, sb_root, nr);
		return;
	}
	if (!valid_root(sb_root, nr))
		ck_add(ck, DMG_WARNING, RC_SB_BAD_ROOT, REP_CTX_BLOCK(sb_root),
		       "%s %llu in the superblock is not a valid metadata block (overridden by "
		       "%s)",
		       name, (unsigned long long)sb_root, opt);
	if (override == 0)
		ck_add(ck, DMG_FATAL, RC_SB_BAD_ROOT, REP_CTX_BLOCK(0),
		       "%s 0 is the superblock, not a btree node: the %s cannot be checked", opt,
		       tree);
	else if (override >= nr)
		ck_add(ck, DMG_FATAL, RC_SB_BAD_ROOT, REP_CTX_BLOCK(override),
		       "%s %llu is beyond the end of the metadata (%llu blocks): the %s cannot be "
		       "checked",
		       opt, (unsigned long long)override, (unsigned long long)nr, tree);
}

/* Field checks shared by the live superblock and the snapshot copy. */
static void check_sb_fields(struct ck *ck, const struct thin_sb *sb, const char *pfx,
			    uint64_t nr_blocks, int live)
{
	if (sb->magic != THIN_MAGIC)
		ck_add(ck, DMG_FATAL, RC_SB_MAGIC, REP_CTX_BLOCK(sb->blocknr),
		       "%sbad magic number in superblock (%llu, expected %llu)", pfx,
		       (unsigned long long)sb->magic, THIN_MAGIC);
	if (sb->version != 1 && sb->version != 2)
		ck_add(ck, DMG_WARNING, RC_SB_VERSION, REP_CTX_BLOCK(sb->blocknr),
		       "%sunknown superblock version %u", pfx, sb->version);
	if (sb->incompat_flags)
		ck_add(ck, DMG_FATAL, RC_SB_INCOMPAT, REP_CTX_BLOCK(sb->blocknr),
		       "%sunsupported incompatible features in superblock (0x%x)", pfx,
		       sb->incompat_flags);
	if (sb->compat_ro_flags)
		ck_add(ck, DMG_WARNING, RC_SB_COMPAT_RO, REP_CTX_BLOCK(sb->blocknr),
		       "%sread-only compatible features set in superblock (0x%x)", pfx,
		       sb->compat_ro_flags);
	if (sb->metadata_block_size != 8)
		ck_add(ck, DMG_FATAL, RC_SB_METADATA_BLOCK_SIZE, REP_CTX_BLOCK(sb->blocknr),
		       "%sbad metadata block size %u in superblock (expected 8 sectors)", pfx,
		       sb->metadata_block_size);
	if (sb->data_block_size < THIN_MIN_DATA_BLOCK_SIZE ||
	    sb->data_block_size > THIN_MAX_DATA_BLOCK_SIZE || sb->data_block_size % 128)
		ck_add(ck, DMG_FATAL, RC_SB_DATA_BLOCK_SIZE, REP_CTX_BLOCK(sb->blocknr),
		       "%sbad data block size %u in superblock (128..2097152 sectors, a multiple "
		       "of 128)",
		       pfx, sb->data_block_size);
	if (!live) {
		check_root_ptr(ck, pfx, "data mapping root", sb->data_mapping_root, nr_blocks);
		check_root_ptr(ck, pfx, "device details root", sb->device_details_root, nr_blocks);
		return;
	}
	check_live_root(ck, "data mapping root", sb->data_mapping_root,
			THIN_CHECK_OVERRIDE_MAPPING_ROOT, ck->opts->override_mapping_root,
			"--override-mapping-root", "mapping tree");
	check_live_root(ck, "device details root", sb->device_details_root,
			THIN_CHECK_OVERRIDE_DETAILS_ROOT, ck->opts->override_details_root,
			"--override-details-root", "device details tree");
	check_root_ptr(ck, pfx, "data space map index root", sb->data_sm.bitmap_root, nr_blocks);
	check_root_ptr(ck, pfx, "data space map ref count root", sb->data_sm.ref_count_root,
		       nr_blocks);
	check_root_ptr(ck, pfx, "metadata space map index block", sb->metadata_sm.bitmap_root,
		       nr_blocks);
	check_root_ptr(ck, pfx, "metadata space map ref count root",
		       sb->metadata_sm.ref_count_root, nr_blocks);
	if (sb->held_root)
		check_root_ptr(ck, pfx, "metadata snapshot (held root)", sb->held_root, nr_blocks);
}

/*
 * Returns 0 to go on, 1 when the superblock cannot be used at all.
 * Sets ck->md_nr_blocks and ck->data_nr_blocks.
 */
static int check_superblock(struct ck *ck)
{
	const struct thin_sb *sb = &ck->md->sb;
	uint64_t dev_blocks = ck->ioe->nr_blocks;
	uint64_t nr = sb->metadata_sm.nr_blocks;
	int sm_ok = 1;

	if (ck->md->sb_err) {
		report_bad_sb(ck, ck->md->sb_err);
		return 1;
	}
	if (nr > SM_MAX_METADATA_BLOCKS) {
		ck_add(ck, DMG_FATAL, RC_SM_TOO_LARGE, REP_CTX_BLOCK(0),
		       "metadata space map has %llu blocks, more than the maximum %u",
		       (unsigned long long)nr, SM_MAX_METADATA_BLOCKS);
		sm_ok = 0;
	} else if (nr > dev_blocks) {
		ck_add(ck, DMG_FATAL, RC_SB_NR_BLOCKS, REP_CTX_BLOCK(0),
		       "metadata space map has %llu blocks, but the device only %llu",
		       (unsigned long long)nr, (unsigned long long)dev_blocks);
		sm_ok = 0;
	} else if (nr == 0) {
		ck_add(ck, DMG_FATAL, RC_SB_NR_BLOCKS, REP_CTX_BLOCK(0),
		       "metadata space map has no blocks");
		sm_ok = 0;
	}
	ck->md_nr_blocks = sm_ok ? nr : dev_blocks;
	check_sb_fields(ck, sb, "", ck->md_nr_blocks, 1);
	if (sb->data_sm.nr_blocks > (1ull << 40))
		ck_add(ck, DMG_FATAL, RC_SM_TOO_LARGE, REP_CTX_BLOCK(0),
		       "data space map has %llu blocks, more than 2^40",
		       (unsigned long long)sb->data_sm.nr_blocks);
	else if (sb->data_sm.nr_blocks > ck->md_nr_blocks * SM_ENTRIES_PER_BITMAP)
		/* every 16320 data blocks need a bitmap block in the metadata */
		ck_add(ck, DMG_FATAL, RC_SM_TOO_LARGE, REP_CTX_BLOCK(0),
		       "data space map has %llu blocks, more than %llu metadata blocks can index",
		       (unsigned long long)sb->data_sm.nr_blocks,
		       (unsigned long long)ck->md_nr_blocks);
	ck->data_nr_blocks = sb->data_sm.nr_blocks;
	if (sb->flags & THIN_NEEDS_CHECK)
		ck_add(ck, DMG_WARNING, RC_SB_NEEDS_CHECK, REP_CTX_BLOCK(0),
		       "needs_check flag is set in the superblock");
	return 0;
}

/* Reads and checks the metadata snapshot copy; 0 when usable. */
static int check_snap_sb(struct ck *ck, uint64_t held, struct thin_sb *snap)
{
	int r;

	if (held >= ck->md_nr_blocks || held >= ck->ioe->nr_blocks)
		return -EINVAL; /* already reported with the roots */
	r = thin_sb_read(ck->md->bc, held, snap);
	if (r < 0) {
		ck_add(ck, DMG_FATAL, RC_SB_HELD_ROOT, REP_CTX_BLOCK(held),
		       "metadata snap: %s in superblock copy (block %llu)", sb_err_str(r),
		       (unsigned long long)held);
		return r;
	}
	check_sb_fields(ck, snap, "metadata snap: ", ck->md_nr_blocks, 0);
	if (snap->held_root)
		ck_add(ck, DMG_WARNING, RC_SB_HELD_ROOT, REP_CTX_BLOCK(held),
		       "metadata snap: superblock copy (block %llu) has a held root itself",
		       (unsigned long long)held);
	if (snap->magic != THIN_MAGIC || snap->metadata_block_size != 8 || snap->incompat_flags ||
	    !snap->data_mapping_root || snap->data_mapping_root >= ck->md_nr_blocks ||
	    !snap->device_details_root || snap->device_details_root >= ck->md_nr_blocks)
		return -EINVAL;
	return 0;
}

/*----------------------------------------------------------------*/
/* device trees */

struct tree_set {
	const char *what;          /* "" or "metadata snap: " */
	int is_snap;
	uint64_t details_root, mapping_root;
	uint32_t time;
	struct thin_dev_list devs;
	int details_ok, mapping_ok;   /* the root can be walked */
};

static int top_leaf(struct ck *ck, void *ctx, const struct bt_node *n)
{
	(void)ctx;
	for (uint32_t i = 0; i < n->nr_entries; i++)
		ck_meta_inc(ck, get_le64(bt_value(n, i)));
	return 0;
}

static int details_leaf(struct ck *ck, void *ctx, const struct bt_node *n)
{
	const struct tree_set *ts = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		struct thin_details d;
		uint64_t id = bt_key(n, i);

		thin_details_unpack(bt_value(n, i), &d);
		if (id > THIN_MAX_DEV_ID)
			ck_add(ck, DMG_WARNING, RC_DEV_ID_RANGE, REP_CTX_BLOCK(n->blocknr),
			       "%sdevice id %llu is above the kernel's limit %llu", ts->what,
			       (unsigned long long)id, THIN_MAX_DEV_ID);
		if (d.creation_time > ts->time || d.snapshotted_time > ts->time)
			ck_add(ck, DMG_WARNING, RC_DEV_TIME, REP_CTX_BLOCK(n->blocknr),
			       "%sdevice %llu: creation time %u or snapshot time %u is later "
			       "than the superblock time %u",
			       ts->what, (unsigned long long)id, d.creation_time,
			       d.snapshotted_time, ts->time);
	}
	return 0;
}

static int walk_details(struct ck *ck, struct tree_set *ts)
{
	struct ck_tree t = { "device details tree", CK_DETAILS, THIN_DETAILS_VSIZE, UINT64_MAX,
			     details_leaf, ts, 0, NULL, NULL };
	struct bt_summary s;

	ck->snap_prefix = ts->is_snap;
	ck_meta_inc(ck, ts->details_root);
	return ck_walk_tree(ck, &t, ts->details_root, &s);
}

static int walk_top(struct ck *ck, struct tree_set *ts)
{
	struct ck_tree t = { "mapping top-level", CK_TOP, THIN_MAPPING_VSIZE, UINT64_MAX,
			     top_leaf, NULL, 0, NULL, NULL };
	struct bt_summary s;
	int r;

	ck->snap_prefix = ts->is_snap;
	ck_meta_inc(ck, ts->mapping_root);
	r = ck_walk_tree(ck, &t, ts->mapping_root, &s);
	if (r < 0)
		return r;
	/* the device list (validated above; damaged parts are simply missing) */
	return thin_read_devices(ck->md->bc, ts->details_root, ts->mapping_root, &ts->devs, NULL,
				 NULL);
}

static void compare_key_sets(struct ck *ck, struct tree_set *ts)
{
	unsigned shown = 0;
	size_t bad = 0;

	for (size_t i = 0; i < ts->devs.nr; i++)
		if (!ts->devs.devs[i].has_details || !ts->devs.devs[i].has_root)
			bad++;
	if (!bad)
		return;
	ck_add(ck, DMG_FATAL, RC_DEV_MISSING_DETAILS, REP_CTX_NONE,
	       "%sInconsistency between the details tree and the mapping tree (%zu devices)",
	       ts->what, bad);
	for (size_t i = 0; i < ts->devs.nr && shown < CK_MAX_DETAILS; i++) {
		const struct thin_dev *d = &ts->devs.devs[i];
		if (d->has_details && d->has_root)
			continue;
		rep_detail(ck->rep, "device %llu %s", (unsigned long long)d->dev_id,
			   d->has_details ? "has details but no mapping tree"
					  : "has a mapping tree but no details");
		shown++;
	}
}

/*----------------------------------------------------------------*/
/* bottom-level trees */

struct map_ctx {
	uint32_t time;
	uint64_t nr, bad, late, first_bad_key, first_bad_block, first_late_key;
	uint32_t first_late_time;
};

static inline void late_mapping(struct map_ctx *m, const struct bt_node *n, uint32_t i,
				uint32_t t)
{
	if (t > m->time && !m->late++) {
		m->first_late_key = bt_key(n, i);
		m->first_late_time = t;
	}
}

/*
 * Data references are counted by run: mappings whose data blocks follow
 * each other (most of a pool) are one rcmap_inc_run().
 */
/*
 * A mapping leaf's runs, found on the walk's thread (bt_walk_tree.leaf_prep)
 * to spare the leaf thread, the busier one; not sound when some block is
 * beyond the data device or some time is late (the loop in mapping_leaf).
 */
_Static_assert(sizeof(struct thin_leaf_prep) <= BT_LEAF_PREP_SIZE, "a leaf's runs fit the walker's room");

static void mapping_prep(struct ck *ck, void *vctx, const struct bt_node *n, void *out)
{
	const struct map_ctx *m = vctx;
	struct thin_leaf_prep *p = out;

	thin_leaf_prep(n, ck->data_nr_blocks, m->time, p);
	p->sound &= ck->data_refs != NULL;
}

/* The next leaf's counts' words, asked for while this leaf is counted. */
static void mapping_ahead(struct ck *ck, const void *prep)
{
	const struct thin_leaf_prep *p = prep;

	if (p->sound)
		for (uint32_t k = 0; k < p->nr_blocks; k++)
			rcmap_prefetch(ck->data_refs, p->block[k]);
}

static int mapping_leaf(struct ck *ck, void *vctx, const struct bt_node *n)
{
	struct map_ctx *m = vctx;
	struct rcmap *refs = ck->data_refs;
	uint64_t nr_data = ck->data_nr_blocks;
	uint32_t nr = n->nr_entries;
	const uint8_t *vals = bt_value(n, 0);
	const struct thin_leaf_prep *pp = n->prep;
	struct thin_leaf_prep own;

	m->nr += nr;
	if (!pp) {
		mapping_prep(ck, m, n, &own);
		pp = &own;
	}
	if (pp->sound) {
		/*
		 * The common leaf: every block is on the data device and no time
		 * is late; the runs are counted and that is all.  Otherwise the
		 * loop below.  The counts' words are asked for first, all of
		 * them at once (they miss the cache), and the leaf itself is not
		 * read: its runs' blocks are in the prep.
		 */
		for (uint32_t k = 0; k < pp->lr.nr_runs; k++)
			rcmap_prefetch(refs, thin_prep_block(pp, vals, k));
		for (uint32_t k = 0; k < pp->lr.nr_runs; k++) {
			uint64_t b = thin_prep_block(pp, vals, k);
			uint32_t len = (uint32_t)pp->lr.first[k + 1] - pp->lr.first[k];

			if (len == 1)
				rcmap_inc(refs, b);
			else
				rcmap_inc_run(refs, b, len);
		}
		return 0;
	}
	for (uint32_t i = 0; i < nr;) {
		uint64_t v = get_le64(bt_value(n, i));
		uint64_t b = thin_bt_block(v);
		uint32_t j = i + 1;

		late_mapping(m, n, i, thin_bt_time(v));
		if (b >= nr_data) {
			if (!m->bad++) {
				m->first_bad_key = bt_key(n, i);
				m->first_bad_block = b;
			}
			i++;
			continue;
		}
		for (; j < nr; j++) {
			uint64_t w = get_le64(bt_value(n, j));

			if (thin_bt_block(w) != b + (j - i) || b + (j - i) >= nr_data)
				break;
			late_mapping(m, n, j, thin_bt_time(w));
		}
		if (refs) {
			if (j - i == 1)
				rcmap_inc(refs, b);
			else
				rcmap_inc_run(refs, b, j - i);
		}
		i = j;
	}
	return 0;
}

/* Is (id, root) also in the live top level? (snapshot devices) */
static int in_live(const struct tree_set *live, const struct thin_dev *d)
{
	size_t lo = 0, hi = live ? live->devs.nr : 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (live->devs.devs[mid].dev_id < d->dev_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return live && lo < live->devs.nr && live->devs.devs[lo].dev_id == d->dev_id &&
	       live->devs.devs[lo].has_root && live->devs.devs[lo].root == d->root;
}

static int walk_device(struct ck *ck, struct tree_set *ts, const struct thin_dev *d,
		       int check_count)
{
	char name[64];
	struct map_ctx m = { .time = ts->time };
	struct ck_tree t = { name, CK_BOTTOM, THIN_MAPPING_VSIZE, d->dev_id, mapping_leaf, &m, 1,
			     mapping_prep, mapping_ahead };
	struct rep_ctx rc = { d->root, 0, 0, d->dev_id };
	struct bt_summary s;
	int r;

	snprintf(name, sizeof(name), "thin device %llu", (unsigned long long)d->dev_id);
	r = ck_walk_tree(ck, &t, d->root, &s);
	if (r < 0)
		return r;
	ck->res->nr_mappings += m.nr;
	if (m.bad)
		ck_add(ck, DMG_FATAL, RC_MAP_DATA_OUT_OF_RANGE, rc,
		       "%sthin device %llu: %llu mappings to data blocks beyond the data device "
		       "(%llu blocks), first: virtual block %llu -> data block %llu",
		       ts->what, (unsigned long long)d->dev_id, (unsigned long long)m.bad,
		       (unsigned long long)ck->data_nr_blocks,
		       (unsigned long long)m.first_bad_key, (unsigned long long)m.first_bad_block);
	if (m.late)
		ck_add(ck, DMG_WARNING, RC_MAP_TIME, rc,
		       "%sthin device %llu: %llu mappings have a time later than the superblock "
		       "time %u, first: virtual block %llu (time %u)",
		       ts->what, (unsigned long long)d->dev_id, (unsigned long long)m.late,
		       ts->time, (unsigned long long)m.first_late_key, m.first_late_time);
	if (!check_count || !d->has_details)
		return 0;
	if (s.flags & (BT_SUM_BAD | BT_SUM_DAMAGED))
		ck_add(ck, DMG_FATAL, RC_DEV_LOST_MAPPINGS, rc,
		       "%sThin device %llu has errors and is missing mappings, while expected "
		       "%llu (%llu readable)",
		       ts->what, (unsigned long long)d->dev_id,
		       (unsigned long long)d->details.mapped_blocks, (unsigned long long)s.count);
	else if (s.count != d->details.mapped_blocks)
		ck_add(ck, DMG_FATAL, RC_DEV_MAPPED_BLOCKS, rc,
		       "%sThin device %llu has unexpected number of mappings, expected %llu, "
		       "actual %llu",
		       ts->what, (unsigned long long)d->dev_id,
		       (unsigned long long)d->details.mapped_blocks, (unsigned long long)s.count);
	return 0;
}

static int walk_devices(struct ck *ck, struct tree_set *ts, const struct tree_set *live)
{
	ck->snap_prefix = ts->is_snap;
	bt_walker_set_bound(ck->walker, ck->md_nr_blocks);   /* for the hints (ck_walk_tree's too) */
	for (size_t i = 0; i < ts->devs.nr; i++) {
		const struct thin_dev *d = &ts->devs.devs[i];
		int check_count = !ts->is_snap || !in_live(live, d);
		int r;

		if (!d->has_root)
			continue;
		/* the next device's root and children, read while this one is walked */
		for (size_t j = i + 1; j < ts->devs.nr; j++)
			if (ts->devs.devs[j].has_root) {
				bt_walker_hint(ck->walker, ts->devs.devs[j].root, THIN_MAPPING_VSIZE);
				break;
			}
		r = walk_device(ck, ts, d, check_count);
		if (r < 0)
			return r;
	}
	return 0;
}

/*----------------------------------------------------------------*/

static int setup_counters(struct ck *ck)
{
	const struct thin_sb *sb = &ck->md->sb;

	ck->meta_refs = rcmap_create(sb->metadata_sm.nr_blocks);
	/* 2 bits a data block where counts stay below 3 (refcount.h) */
	ck->data_refs = rcmap_create_compact(sb->data_sm.nr_blocks);
	if (!ck->meta_refs || !ck->data_refs)
		return -ENOMEM;
	/* the superblock, the snapshot copy */
	ck_meta_inc(ck, 0);
	if (sb->held_root)
		ck_meta_inc(ck, sb->held_root);
	return 0;
}

static int counting_possible(const struct ck *ck)
{
	const struct thin_sb *sb = &ck->md->sb;
	unsigned f = ck->opts->flags;

	return !(f & (THIN_CHECK_SKIP_MAPPINGS | THIN_CHECK_METADATA_SNAP)) &&
	       ck->md_nr_blocks == sb->metadata_sm.nr_blocks &&
	       sb->data_sm.nr_blocks <= (1ull << 40) &&
	       sb->data_sm.nr_blocks <= ck->md_nr_blocks * SM_ENTRIES_PER_BITMAP;
}

static int check_trees(struct ck *ck)
{
	const struct thin_sb *sb = &ck->md->sb;
	unsigned f = ck->opts->flags;
	struct tree_set live = { "", 0, sb->device_details_root, sb->data_mapping_root, sb->time,
				 { 0 }, 1, 1 };
	struct tree_set snap = { "metadata snap: ", 1, 0, 0, 0, { 0 }, 0, 0 };
	struct thin_sb ssb;
	int r = 0;

	if (f & THIN_CHECK_OVERRIDE_MAPPING_ROOT)
		live.mapping_root = ck->opts->override_mapping_root;
	if (f & THIN_CHECK_OVERRIDE_DETAILS_ROOT)
		live.details_root = ck->opts->override_details_root;
	live.details_ok = valid_root(live.details_root, ck->md_nr_blocks);
	live.mapping_ok = valid_root(live.mapping_root, ck->md_nr_blocks);
	if (sb->held_root && check_snap_sb(ck, sb->held_root, &ssb) == 0) {
		snap.details_root = ssb.device_details_root;
		snap.mapping_root = ssb.data_mapping_root;
		snap.time = ssb.time;
		snap.details_ok = snap.mapping_ok = 1;
	}
	if (f & THIN_CHECK_METADATA_SNAP) {
		/* only the snapshot is checked, as if it were the live metadata */
		live = snap;
		live.is_snap = 0;
		live.what = "";
		snap.details_ok = snap.mapping_ok = 0;
		if (!live.details_ok)
			return 0;
	}
	/* the space maps count every tree: all of them must be walked */
	if (!live.details_ok || !live.mapping_ok || (sb->held_root && !snap.details_ok))
		ck->unwalked = !live.mapping_ok  ? "mapping tree"
			       : !live.details_ok ? "device details tree"
						  : "metadata snapshot";

	rep_section(ck->rep, "examining devices tree");
	if (live.details_ok && (r = walk_details(ck, &live)) < 0)
		goto out;
	if (snap.details_ok && (r = walk_details(ck, &snap)) < 0)
		goto out;

	rep_section(ck->rep, (f & THIN_CHECK_SKIP_MAPPINGS) ? "examining top level of mapping tree"
							     : "examining mapping tree");
	if (live.mapping_ok && (r = walk_top(ck, &live)) < 0)
		goto out;
	if (snap.mapping_ok && (r = walk_top(ck, &snap)) < 0)
		goto out;
	ck->snap_prefix = 0;
	if (live.details_ok && live.mapping_ok)
		compare_key_sets(ck, &live);
	if (snap.details_ok)
		compare_key_sets(ck, &snap);
	ck->res->nr_devices = live.devs.nr;
	if (!(f & THIN_CHECK_SKIP_MAPPINGS)) {
		if (live.mapping_ok && (r = walk_devices(ck, &live, NULL)) < 0)
			goto out;
		if (snap.mapping_ok && (r = walk_devices(ck, &snap, &live)) < 0)
			goto out;
	}
out:
	ck->snap_prefix = 0;
	thin_dev_list_release(&live.devs);
	thin_dev_list_release(&snap.devs);
	return r;
}

/*----------------------------------------------------------------*/

static void ck_release(struct ck *ck)
{
	ck_sm_fix_free(ck);
	ck_free_buffers(ck);
	ck_walker_release(ck);
	rcmap_destroy(ck->meta_refs);
	rcmap_destroy(ck->data_refs);
	thin_md_close(ck->md);
}

static int run_checks(struct ck *ck)
{
	const struct thin_sb *sb = &ck->md->sb;
	struct thin_check_result *res = ck->res;
	unsigned f = ck->opts->flags;
	int r;

	rep_section(ck->rep, "examining superblock");
	if (check_superblock(ck))
		return 0;
	res->have_sb = 1;
	res->transaction_id = sb->trans_id;
	res->needs_check = !!(sb->flags & THIN_NEEDS_CHECK);
	res->metadata_free_blocks = sb->metadata_sm.nr_blocks >= sb->metadata_sm.nr_allocated
					    ? sb->metadata_sm.nr_blocks - sb->metadata_sm.nr_allocated
					    : 0;
	if (ck->opts->on_superblock)
		ck->opts->on_superblock(ck->opts->ctx, res);
	if (f & THIN_CHECK_SUPER_BLOCK_ONLY)
		return 0;
	if ((f & THIN_CHECK_METADATA_SNAP) && !sb->held_root)
		return -ENODATA;
	if (counting_possible(ck) && (r = setup_counters(ck)) < 0)
		return r;
	r = check_trees(ck);
	if (r < 0)
		return r;
	if (!ck->meta_refs)
		return 0;
	rep_section(ck->rep, "checking space map counts");
	return ck_check_space_maps(ck);
}

static int may_repair(const struct ck *ck)
{
	unsigned f = ck->opts->flags;

	if (!(f & (THIN_CHECK_AUTO_REPAIR | THIN_CHECK_CLEAR_NEEDS_CHECK)))
		return 0;
	if (!ck->res->have_sb || ck->worst_other >= DMG_FATAL)
		return 0;
	if (ck->worst_other == DMG_NON_FATAL && !(f & THIN_CHECK_IGNORE_NON_FATAL))
		return 0;
	return 1;
}

static int run(struct ck *ck, const char *path, char *msg, size_t msglen);

int thin_check(const char *path, const struct thin_check_opts *opts, struct report *rep,
	       struct thin_check_result *res, char *msg, size_t msglen)
{
	struct ck ck;
	unsigned f = opts->flags;
	unsigned mdflags = 0;
	int r;

	memset(res, 0, sizeof(*res));
	memset(&ck, 0, sizeof(ck));
	msg[0] = '\0';
	if (f & (THIN_CHECK_AUTO_REPAIR | THIN_CHECK_CLEAR_NEEDS_CHECK))
		mdflags |= THIN_MD_WRITE;
	if (f & THIN_CHECK_METADATA_SNAP)
		mdflags |= THIN_MD_SHARED;
	r = thin_md_open(path, mdflags, &ck.md, msg, msglen);
	if (r < 0)
		return r;
	ck.rep = rep;
	ck.opts = opts;
	ck.res = res;
	return run(&ck, path, msg, msglen);
}

int thin_check_ioe(struct ioe *e, const struct thin_check_opts *opts, struct report *rep,
		   struct thin_check_result *res, char *msg, size_t msglen)
{
	struct ck ck;
	int r;

	memset(res, 0, sizeof(*res));
	memset(&ck, 0, sizeof(ck));
	msg[0] = '\0';
	r = thin_md_open_ioe(e, &ck.md);
	if (r < 0) {
		snprintf(msg, msglen, "%s", strerror(-r));
		return r;
	}
	ck.rep = rep;
	ck.opts = opts;
	ck.res = res;
	return run(&ck, "metadata", msg, msglen);
}

/* Runs the checks (and the repair) on a ck whose md is open; releases it. */
static int run(struct ck *ck, const char *path, char *msg, size_t msglen)
{
	struct thin_check_result *res = ck->res;
	int r;

	/* The findings table names the codes in the report's flood lines. */
	rep_set_code_names(ck->rep, finding_name);
	ck->ioe = ck->md->ioe;
	r = ck_walker_init(ck);
	if (r >= 0)
		r = run_checks(ck);
	if (r >= 0 && may_repair(ck))
		r = ck_repair(ck, 1);
	if (r == -ENODATA)
		snprintf(msg, msglen, "no current metadata snap");
	else if (r == -ENOMEM)
		snprintf(msg, msglen, "out of memory");
	else if (r < 0)
		snprintf(msg, msglen, "%s: %s", path, strerror(-r));
	res->outcome = res->repaired || res->cleared_needs_check ? ck->worst_other
								  : rep_outcome(ck->rep);
	if (!res->have_sb)
		res->outcome = DMG_FATAL;
	ck_release(ck);
	return r < 0 ? r : 0;
}

int thin_check_passed(const struct thin_check_opts *opts, const struct thin_check_result *res)
{
	if (res->outcome >= DMG_FATAL)
		return 0;
	if (res->outcome == DMG_NON_FATAL && !(opts->flags & THIN_CHECK_IGNORE_NON_FATAL))
		return 0;
	return 1;
}
