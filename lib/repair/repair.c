#include "repair/repair.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repair/repair-internal.h"

int repair_need_field(char *msg, size_t msglen, const char *field)
{
	snprintf(msg, msglen,
		 "The following field needs to be provided on the command line due to corruption "
		 "in the superblock: %s",
		 field);
	return -EINVAL;
}

/* Highest data block and newest time of the mappings that will be emitted. */
struct maxw {
	uint64_t max_data;
	uint32_t max_time;
};

static int maxw_leaf(void *ctx, const struct bt_node *n)
{
	struct maxw *w = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t v = get_le64(bt_value(n, i));

		if (thin_bt_block(v) > w->max_data)
			w->max_data = thin_bt_block(v);
		if (thin_bt_time(v) > w->max_time)
			w->max_time = thin_bt_time(v);
	}
	return 0;
}

static int max_walk(struct thin_repair *rp)
{
	const struct bt_walk_ops ops = { .leaf = maxw_leaf };
	struct maxw w = { rp->max_data_seen, rp->max_time_seen };
	int r = 0;

	for (size_t i = 0; i < rp->nr_devs && !r; i++) {
		const struct rdev *d = &rp->devs[i];

		if (d->root < bc_nr_blocks(rp->md->bc))
			r = thin_walk_mappings(rp->md->bc, d->root, &ops, &w);
		for (size_t k = 0; k < d->nr_salv; k++) {
			const struct snode *sn = repair_scan_node(&rp->scan, d->salv[k]);

			if (sn->max_data > w.max_data)
				w.max_data = sn->max_data;
			if (sn->max_time > w.max_time)
				w.max_time = sn->max_time;
		}
	}
	rp->max_data_seen = w.max_data;
	rp->max_time_seen = w.max_time;
	return r;
}

/*
 * The plan is made: the emit needs nothing of the scan, the pool states or
 * the structure walk's maps but the salvaged leaves' key spans.  Their
 * memory (most of a scanning repair's) goes before the output is built.
 */
static int release_plan_tables(struct thin_repair *rp)
{
	size_t n = 0;

	for (size_t i = 0; i < rp->nr_devs; i++)
		n += rp->devs[i].nr_salv;
	if (n) {
		rp->spans = malloc(n * sizeof(*rp->spans));
		if (!rp->spans)
			return -ENOMEM;
	}
	n = 0;
	for (size_t i = 0; i < rp->nr_devs; i++) {
		struct rdev *d = &rp->devs[i];

		d->span0 = n;
		for (size_t k = 0; k < d->nr_salv; k++, n++) {
			const struct snode *sn = repair_scan_node(&rp->scan, d->salv[k]);

			rp->spans[n].first = sn->first;
			rp->spans[n].last = sn->last;
		}
	}
	repair_scan_release(&rp->scan);
	repair_pstates_release(rp);
	rcmap_destroy(rp->msm);
	rcmap_destroy(rp->expected);
	free(rp->visited);
	free(rp->dmg_below);
	rp->msm = rp->expected = NULL;
	rp->visited = rp->dmg_below = NULL;
	return 0;
}

static int plan_superblock(struct thin_repair *rp, char *msg, size_t msglen)
{
	struct thin_md *md = rp->md;
	const struct thin_repair_opts *o = &rp->o;
	struct ir_superblock *sb = &rp->sb;
	uint64_t max_tid = 0;
	uint32_t max_time;
	int r;

	/* superblock lost: the clock and data size from what will be emitted */
	if (!repair_sb_usable(md) && !rp->max_known && (r = max_walk(rp)) < 0) {
		snprintf(msg, msglen, "cannot read the metadata: %s", strerror(-r));
		return r;
	}
	max_time = rp->max_time_seen;
	memset(sb, 0, sizeof(*sb));
	sb->uuid = "";
	sb->has_flags = 1;
	sb->flags = 0;
	sb->version = THIN_VERSION;
	for (size_t i = 0; i < rp->nr_devs; i++) {
		const struct rdev *d = &rp->devs[i];
		if (!d->has_details)
			continue;
		if (d->d.transaction_id > max_tid)
			max_tid = d->d.transaction_id;
		if (d->d.creation_time > max_time)
			max_time = d->d.creation_time;
		if (d->d.snapshotted_time > max_time)
			max_time = d->d.snapshotted_time;
	}
	if (repair_sb_usable(md)) {
		sb->time = md->sb.time > max_time ? md->sb.time : max_time;
		sb->transaction = md->sb.trans_id;
		sb->data_block_size = md->sb.data_block_size;
		sb->nr_data_blocks = md->sb.data_sm.nr_blocks;
	} else {
		sb->time = max_time;
		if (!o->set_data_block_size)
			return repair_need_field(msg, msglen, "data block size");
		sb->transaction = max_tid + 1;
		if (!o->set_transaction_id)
			repair_note(&rp->notes, "superblock lost: transaction id %llu inferred from the "
					     "devices (set it with --transaction-id)",
				 (unsigned long long)sb->transaction);
		sb->nr_data_blocks = rp->max_data_seen + 1;
		if (!o->set_nr_data_blocks)
			repair_note(&rp->notes, "superblock lost: nr_data_blocks %llu inferred from the "
					     "highest mapped block (set it with --nr-data-blocks)",
				 (unsigned long long)sb->nr_data_blocks);
	}
	if (o->set_transaction_id)
		sb->transaction = o->transaction_id;
	if (o->set_data_block_size)
		sb->data_block_size = o->data_block_size;
	if (o->set_nr_data_blocks)
		sb->nr_data_blocks = o->nr_data_blocks;
	if (sb->data_block_size < THIN_MIN_DATA_BLOCK_SIZE ||
	    sb->data_block_size > THIN_MAX_DATA_BLOCK_SIZE ||
	    sb->data_block_size % THIN_MIN_DATA_BLOCK_SIZE) {
		if (!o->set_data_block_size)
			return repair_need_field(msg, msglen, "data block size");
		snprintf(msg, msglen, "invalid data block size %u (must be a multiple of 128 "
				      "between 128 and 2097152 sectors)",
			 sb->data_block_size);
		return -EINVAL;
	}
	/* devices without details: data-safe synthesised ones (all mappings shared) */
	for (size_t i = 0; i < rp->nr_devs; i++) {
		struct rdev *d = &rp->devs[i];
		if (d->has_details)
			continue;
		if (!rp->synthesised) {
			if (sb->time < max_time + 1)
				sb->time = max_time + 1;
		}
		rp->synthesised = 1;
		d->d.transaction_id = sb->transaction ? sb->transaction - 1 : 0;
		d->d.creation_time = sb->time;
		d->d.snapshotted_time = sb->time;
		repair_note(&rp->notes, "device %llu: details lost, synthesised (mappings treated as "
				     "shared)",
			 (unsigned long long)d->id);
	}
	return 0;
}

int thin_repair_plan(struct thin_md *md, const struct thin_repair_opts *o,
		     struct thin_repair **out, char *msg, size_t msglen)
{
	struct thin_repair *rp = calloc(1, sizeof(*rp));
	uint64_t mroot = 0, droot = 0;
	int damaged = 1, r;
	int64_t nr_free = 0;

	msg[0] = '\0';
	*out = NULL;
	if (!rp) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	rp->md = md;
	rp->o = *o;
	/* nothing to look for before the fields only the user can give */
	if (!repair_sb_usable(md) && !o->set_data_block_size) {
		r = repair_need_field(msg, msglen, "data block size");
		goto fail_msg;
	}
	bc_set_max_blocks(md->bc, 1024);
	repair_load_msm(rp);
	if (repair_sb_usable(md)) {
		nr_free = repair_load_roots(rp, md->sb.data_mapping_root, md->sb.device_details_root,
				     &damaged, 0);
		/* device trees pointing at freed blocks: stale roots */
		if (nr_free >= 0 && !damaged)
			nr_free = repair_structure_walk(rp);
		if (nr_free < 0) {
			r = (int)nr_free;
			goto fail;
		}
	} else {
		repair_note(&rp->notes, "superblock %s: searching for roots",
			 md->sb_err ? "unreadable" : "has a bad magic number");
	}
	if (o->set_mapping_root) {
		r = repair_do_scan(rp);
		if (r < 0)
			goto fail;
		r = rp->msm ? -ENOENT : repair_find_state(rp, &mroot, &droot, msg, msglen);
		if (r == -ENOENT) {
			mroot = o->mapping_root;
			droot = o->set_details_root ? o->details_root
			      : repair_sb_usable(md) ? md->sb.device_details_root : 0;
		} else if (r < 0) {
			goto fail;
		}
		repair_note(&rp->notes, "using the given mapping root %llu and details root %llu",
			 (unsigned long long)mroot, (unsigned long long)droot);
		nr_free = repair_load_roots(rp, mroot, droot, &damaged, 1);
		if (nr_free >= 0)
			nr_free = repair_structure_walk(rp);
		if (nr_free < 0) {
			r = (int)nr_free;
			goto fail;
		}
		rp->mapping_root = mroot;
		rp->details_root = droot;
		goto planned;
	}
	if (!repair_sb_usable(md) || damaged || nr_free || o->force_scan) {
		if (repair_sb_usable(md))
			repair_note(&rp->notes, "superblock roots (mapping %llu, details %llu) are %s: "
					     "searching for roots",
				 (unsigned long long)md->sb.data_mapping_root,
				 (unsigned long long)md->sb.device_details_root,
				 damaged ? "damaged" : nr_free ? "stale" : "ignored");
		r = repair_do_scan(rp);
		if (r < 0)
			goto fail;
		r = -ENOENT;
		if (!repair_sb_usable(md)) {
			/* the space maps found by the scan tell the live trees from stale ones */
			r = repair_choose_state(rp, &mroot, &droot, msg, msglen);
			if (r == 0)
				r = repair_state_msm(rp, rp->pst[rp->chosen - 1].index_block);
			if (r == -ENOENT && repair_find_roots(rp, &mroot, &droot) == 0)
				r = repair_refuse_no_state(rp, mroot, droot, msg, msglen);
			if (r == -EAGAIN)
				goto refused;
			if (r < 0 && r != -ENOENT)
				goto fail;
		}
		if (r == -ENOENT)
			r = repair_find_roots(rp, &mroot, &droot);
		if (r == -ENOENT && repair_sb_usable(md)) {
			/* nothing better on the disk: what is left of the superblock's trees */
			mroot = md->sb.data_mapping_root;
			droot = md->sb.device_details_root;
			repair_note(&rp->notes, "no other roots found: using what remains of the "
					     "superblock's trees");
		} else if (r == -ENOENT) {
			snprintf(msg, msglen, "no compatible roots found");
			goto fail;
		} else if (r < 0) {
			goto fail;
		}
		if (repair_sb_usable(md) &&
		    (r == -ENOENT || repair_scan_node(&rp->scan, mroot)->t.any_free ||
		     repair_scan_node(&rp->scan, mroot)->held) &&
		    repair_rebuild_top(rp) == 0) {
			rp->mapping_root = 0;
			rp->details_root = md->sb.device_details_root;
			nr_free = repair_structure_walk(rp);
			if (nr_free < 0) {
				r = (int)nr_free;
				goto fail;
			}
			goto planned;
		}
		/*
		 * Only freed (older) mapping trees left: their mappings may point
		 * at reused data blocks.  What remains of the superblock's trees
		 * is the data-safe choice.
		 */
		if (r == 0 && repair_sb_usable(md) &&
		    (repair_scan_node(&rp->scan, mroot)->t.any_free || repair_scan_node(&rp->scan, mroot)->held)) {
			mroot = md->sb.data_mapping_root;
			droot = md->sb.device_details_root;
			repair_note(&rp->notes, "only freed (older) mapping trees found: using what "
					     "remains of the superblock's trees");
		}
		/* no details tree found: what the superblock's one still holds */
		if (!droot && repair_sb_usable(md))
			droot = md->sb.device_details_root;
		rp->used_sb_roots = repair_sb_usable(md) && mroot == md->sb.data_mapping_root &&
				    droot == md->sb.device_details_root;
		if (rp->no_devices) {
			rp->mapping_root = 0;
			rp->details_root = droot;
			goto planned;
		}
		repair_note(&rp->notes, "using mapping root %llu and details root %llu",
			 (unsigned long long)mroot, (unsigned long long)droot);
		nr_free = repair_load_roots(rp, mroot, droot, &damaged, 1);
		if (nr_free >= 0)
			nr_free = repair_structure_walk(rp);
		if (nr_free < 0) {
			r = (int)nr_free;
			goto fail;
		}
	} else {
		mroot = md->sb.data_mapping_root;
		droot = md->sb.device_details_root;
		rp->used_sb_roots = 1;
	}
	rp->mapping_root = mroot;
	rp->details_root = droot;
planned:
	r = repair_plan_salvage(rp);
	if (r < 0)
		goto fail;
	r = plan_superblock(rp, msg, msglen);
	if (r < 0)
		goto fail_msg;
	r = release_plan_tables(rp);
	if (r < 0)
		goto fail;
	rp->plan_notes = rp->notes.nr;
	*out = rp;
	return 0;
refused:
	/* the candidates stay readable through *out */
	*out = rp;
	return r;
fail:
	if (!msg[0])
		snprintf(msg, msglen, "cannot repair: %s", strerror(-r));
fail_msg:
	thin_repair_destroy(rp);
	return r;
}

int thin_repair_superblock_lost(const struct thin_md *md)
{
	return !repair_sb_usable(md);
}

void thin_repair_destroy(struct thin_repair *rp)
{
	if (!rp)
		return;
	repair_devs_release(rp);
	repair_notes_clear(&rp->notes, 0);
	free(rp->notes.s);
	rcmap_destroy(rp->msm);
	rcmap_destroy(rp->expected);
	free(rp->visited);
	free(rp->dmg_below);
	repair_scan_release(&rp->scan);
	repair_pstates_release(rp);
	free(rp->cand);
	free(rp->spans);
	free(rp);
}
