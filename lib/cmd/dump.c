#include "cmd/dump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc/crc32c.h"
#include "ir/pipe.h"
#include "ir/runs.h"

/*----------------------------------------------------------------*/

#define DAMAGED_MSG                                             \
	"metadata contains errors (run thin_check for details).\n" \
	"perhaps you wanted to run with --repair"

/* Private walk-stop code: the reason is in the context. */
#define WALK_STOP (-ECANCELED)

/*----------------------------------------------------------------*/
/* Superblock */

static void sb_error_msg(struct bc *bc, uint64_t loc, int err, const char *what, char *msg,
			 size_t msglen)
{
	struct bc_block *b;

	switch (err) {
	case -EILSEQ:
	case BC_WRONG_TYPE:
		/* 0.9.0's wording: "wanted" is the checksum the block should carry */
		if (bc_get(bc, loc, NULL, &b) == 0) {
			snprintf(msg, msglen, "bad checksum in %s, wanted %u", what,
				 crc_block_csum(bc_data(b), MD_BLOCK_SIZE, SUPERBLOCK_CSUM_XOR));
			bc_put(bc, b);
		} else {
			snprintf(msg, msglen, "bad checksum in %s", what);
		}
		break;
	case -ENOTBLK:
		snprintf(msg, msglen, "bad block number in %s (block %llu)", what,
			 (unsigned long long)loc);
		break;
	case -EINVAL:
		snprintf(msg, msglen, "%s block %llu is beyond the end of the metadata device",
			 what, (unsigned long long)loc);
		break;
	default:
		snprintf(msg, msglen, "cannot read %s: %s", what, strerror(-err));
	}
}

/* Picks and validates the superblock to dump. */
static int pick_superblock(struct thin_md *md, const struct thin_dump_opts *o,
			   struct thin_sb *sb, char *msg, size_t msglen)
{
	int r;

	if (md->sb_err) {
		sb_error_msg(md->bc, THIN_SB_LOCATION, md->sb_err, "superblock", msg, msglen);
		return md->sb_err < 0 ? md->sb_err : -EIO;
	}
	if (md->sb.magic != THIN_MAGIC) {
		snprintf(msg, msglen, "bad magic in superblock (%llu, expected %llu)",
			 (unsigned long long)md->sb.magic, THIN_MAGIC);
		return -EINVAL;
	}
	*sb = md->sb;
	if (!o->metadata_snap)
		return 0;
	if (!md->sb.held_root) {
		snprintf(msg, msglen, "no current metadata snap");
		return -ENOENT;
	}
	if (o->snap_block_given && o->snap_block != md->sb.held_root) {
		snprintf(msg, msglen, "metadata snapshot does not match that in superblock");
		return -EINVAL;
	}
	r = thin_sb_read(md->bc, md->sb.held_root, sb);
	if (r) {
		sb_error_msg(md->bc, md->sb.held_root, r, "metadata snapshot superblock", msg,
			     msglen);
		return r < 0 ? r : -EIO;
	}
	return 0;
}

/*----------------------------------------------------------------*/
/* Mappings, merged into runs */

struct map_walk {
	struct bc *bc;
	uint64_t prev_leaf;   /* read once: dropped from the cache (bounded RSS) */
	int have_prev_leaf;
	struct ir_runs runs;   /* runs.vret: non-zero visitor return (IR_STOP or -errno) */
	int damaged;
};

static int map_leaf(void *ctx, const struct bt_node *n)
{
	struct map_walk *m = ctx;
	const uint8_t *keys = n->raw + BT_HEADER_SIZE;
	const uint8_t *vals = keys + 8 * (size_t)n->max_entries;

	if (m->damaged)
		return WALK_STOP;
	/* the previous leaf is no longer held by the walker */
	if (m->have_prev_leaf)
		bc_forget(m->bc, m->prev_leaf);
	m->prev_leaf = n->blocknr;
	m->have_prev_leaf = 1;
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t key = get_le64(keys + 8 * (size_t)i);
		uint64_t bt = get_le64(vals + 8 * (size_t)i);
		uint64_t data = thin_bt_block(bt);
		uint32_t time = thin_bt_time(bt);

		if (ir_runs_add(&m->runs, key, data, time))
			return WALK_STOP;
	}
	return 0;
}

static void map_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
		       uint64_t lo, uint64_t hi, const char *msg)
{
	struct map_walk *m = ctx;

	(void)code, (void)block, (void)lo, (void)hi, (void)msg;
	if (level >= DMG_FATAL)
		m->damaged = 1;
}

/* Emits one device's mappings; returns 0, WALK_STOP (see m) or -errno. */
static int emit_mappings(struct bc *bc, uint64_t root, struct map_walk *m)
{
	const struct bt_walk_ops ops = { .leaf = map_leaf, .damage = map_damage };
	int r = thin_walk_mappings(bc, root, &ops, m);

	if (m->have_prev_leaf)
		bc_forget(bc, m->prev_leaf);
	m->have_prev_leaf = 0;
	if (r < 0 && r != WALK_STOP)
		return r;
	if (!m->runs.vret)
		ir_runs_flush(&m->runs);   /* 0.9.0 flushes the pending run on damage too */
	return m->runs.vret || m->damaged ? WALK_STOP : 0;
}

/*----------------------------------------------------------------*/

static int selected(const struct thin_dump_opts *o, uint64_t id)
{
	if (!o->nr_dev_ids)
		return 1;
	for (size_t i = 0; i < o->nr_dev_ids; i++)
		if (o->dev_ids[i] == id)
			return 1;
	return 0;
}

static void fill_superblock(const struct thin_sb *sb, const struct thin_dump_opts *o,
			    struct ir_superblock *ir)
{
	memset(ir, 0, sizeof(*ir));
	ir->uuid = "";
	ir->time = sb->time;
	ir->transaction = o->set_transaction_id ? o->transaction_id : sb->trans_id;
	ir->has_flags = 1;
	ir->flags = sb->flags;
	ir->version = sb->version;
	ir->data_block_size = o->set_data_block_size ? o->data_block_size : sb->data_block_size;
	ir->nr_data_blocks = o->set_nr_data_blocks ? o->nr_data_blocks : sb->data_sm.nr_blocks;
}

/* Turns a visitor's return into ours: IR_STOP ends quietly. */
static int visited(int r, char *msg, size_t msglen)
{
	if (r > 0)
		return IR_STOP;
	if (r < 0)
		snprintf(msg, msglen, "cannot write output: %s", strerror(-r));
	return r;
}

static int dump_device(struct thin_md *md, const struct thin_dump_opts *o,
		       const struct ir_visitor *v, const struct thin_dev *top, char *msg,
		       size_t msglen)
{
	const struct thin_details *d = top->has_details ? &top->details : NULL;
	struct ir_device dev;
	struct map_walk m = { .bc = md->bc };
	int r;

	ir_runs_init(&m.runs, v);
	if (!d) {
		snprintf(msg, msglen, DAMAGED_MSG);
		return THIN_DUMP_DAMAGED;
	}
	dev.dev_id = top->dev_id;
	dev.mapped_blocks = d->mapped_blocks;
	dev.transaction = d->transaction_id;
	dev.creation_time = d->creation_time;
	dev.snap_time = d->snapshotted_time;
	r = v->begin_device ? visited(v->begin_device(v->ctx, &dev), msg, msglen) : 0;
	if (r)
		return r;
	if (!o->skip_mappings) {
		r = emit_mappings(md->bc, top->root, &m);
		if (r == WALK_STOP && m.runs.vret)
			return visited(m.runs.vret, msg, msglen);
		if (r < 0 && r != WALK_STOP) {
			snprintf(msg, msglen, "cannot read mappings of device %llu: %s",
				 (unsigned long long)top->dev_id, strerror(-r));
			return r;
		}
	}
	r = v->end_device ? visited(v->end_device(v->ctx), msg, msglen) : 0;
	if (r)
		return r;
	if (m.damaged) {
		snprintf(msg, msglen, DAMAGED_MSG);
		return THIN_DUMP_DAMAGED;
	}
	return 0;
}

static int dump_devices(struct thin_md *md, const struct thin_dump_opts *o,
			const struct ir_visitor *v, const struct thin_dev_list *devs, char *msg,
			size_t msglen)
{
	for (size_t i = 0; i < devs->nr; i++) {
		const struct thin_dev *d = &devs->devs[i];
		int r;

		if (devs->top_damaged && d->dev_id >= devs->top_lost_from)
			break;
		if (!d->has_root || !selected(o, d->dev_id))
			continue;
		r = dump_device(md, o, v, d, msg, msglen);
		if (r)
			return r;
	}
	if (devs->top_damaged) {
		snprintf(msg, msglen, DAMAGED_MSG);
		return THIN_DUMP_DAMAGED;
	}
	return 0;
}

struct dump_job {
	struct thin_md *md;
	const struct thin_dump_opts *o;
	const struct thin_dev_list *devs;
	const struct ir_superblock *irsb;
	char *msg;
	size_t msglen;
};

static int dump_events(void *ctx, const struct ir_visitor *v)
{
	const struct dump_job *j = ctx;
	int r = v->begin_superblock ? visited(v->begin_superblock(v->ctx, j->irsb), j->msg,
					      j->msglen)
				    : 0;

	if (r)
		return r;
	r = dump_devices(j->md, j->o, v, j->devs, j->msg, j->msglen);
	if (r)
		return r;
	return v->end_superblock ? visited(v->end_superblock(v->ctx), j->msg, j->msglen) : 0;
}

int thin_dump(struct thin_md *md, const struct thin_dump_opts *o, const struct ir_visitor *v,
	      char *msg, size_t msglen)
{
	struct thin_sb sb;
	struct ir_superblock irsb;
	struct thin_dev_list devs;
	int r;

	msg[0] = '\0';
	r = pick_superblock(md, o, &sb, msg, msglen);
	if (r)
		return r;
	r = thin_read_devices(md->bc, sb.device_details_root, sb.data_mapping_root, &devs, NULL,
			      NULL);
	if (r < 0) {
		snprintf(msg, msglen, "cannot read the device trees: %s", strerror(-r));
		goto out;
	}
	if (devs.details_damaged) {
		snprintf(msg, msglen, DAMAGED_MSG);
		r = THIN_DUMP_DAMAGED;
		goto out;
	}
	fill_superblock(&sb, o, &irsb);
	{
		/* the walk here, the writing on a second thread (same events, same order) */
		struct dump_job j = { md, o, &devs, &irsb, msg, msglen };
		int pr;

		r = ir_piped(v, dump_events, &j, &pr);
		if (pr)
			r = visited(pr, msg, msglen);
	}
out:
	thin_dev_list_release(&devs);
	return r == IR_STOP ? 0 : r;
}
