#include "repair/repair.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/runs.h"
#include "ir/pipe.h"
#include "repair/repair-internal.h"
#include "util/vec.h"

/*----------------------------------------------------------------*/
/* Emission */

struct emit {
	struct thin_repair *rp;
	struct ir_runs runs;          /* runs.v NULL: count only; runs.vret: the visitor's stop */
	struct rdev *dev;
	size_t next_salv;
	int have_last;
	uint64_t last_key;
	uint64_t count, dropped;
	struct ranges lost;
};

#define EMIT_STOP (-ECANCELED)

static int emit_entries(struct emit *e, const struct bt_node *n)
{
	uint64_t nr_data = e->rp->sb.nr_data_blocks;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t key = bt_key(n, i);
		uint64_t bt = get_le64(bt_value(n, i));
		uint64_t data = thin_bt_block(bt);
		uint32_t time = thin_bt_time(bt);

		if (e->have_last && key <= e->last_key)
			continue;
		if (e->dev->nr_excl && vec_find(&key, e->dev->excl, e->dev->nr_excl,
					       sizeof(key), repair_u64_cmp))
			continue;
		if (data >= nr_data) {
			e->dropped++;
			continue;
		}
		e->have_last = 1;
		e->last_key = key;
		e->count++;
		if (ir_runs_add(&e->runs, key, data, time))
			return EMIT_STOP;
	}
	return 0;
}

static int emit_salvaged(struct emit *e, uint64_t below)
{
	struct bc *bc = e->rp->md->bc;

	while (e->next_salv < e->dev->nr_salv) {
		uint64_t b = e->dev->salv[e->next_salv];
		struct bc_block *blk;
		struct bt_node n;
		int r;

		if (e->rp->spans[e->dev->span0 + e->next_salv].first >= below)
			break;
		e->next_salv++;
		if (bc_get(bc, b, &bt_node_validator, &blk) < 0)
			continue;
		bt_node_view(bc_data(blk), &n);
		r = emit_entries(e, &n);
		bc_put(bc, blk);
		if (r)
			return r;
	}
	return 0;
}

static int emit_leaf(void *ctx, const struct bt_node *n)
{
	struct emit *e = ctx;
	int r;

	if (n->nr_entries) {
		r = emit_salvaged(e, bt_key(n, 0));
		if (r)
			return r;
	}
	r = emit_entries(e, n);
	bc_forget(e->rp->md->bc, n->blocknr);
	return r;
}

static void emit_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			uint64_t lo, uint64_t hi, const char *m)
{
	struct emit *e = ctx;

	(void)code, (void)block, (void)m;
	if (level >= DMG_FATAL)
		repair_ranges_add(&e->lost, lo, hi);
}

static int walk_device(struct emit *e)
{
	const struct bt_walk_ops ops = { .leaf = emit_leaf, .damage = emit_damage };
	int r;

	e->next_salv = 0;
	e->runs.have_run = 0;
	e->have_last = 0;
	e->count = e->dropped = 0;
	e->lost.nr = 0;
	if (e->dev->root >= bc_nr_blocks(e->rp->md->bc)) {
		repair_ranges_add(&e->lost, 0, UINT64_MAX);
		r = 0;
	} else {
		r = thin_walk_mappings(e->rp->md->bc, e->dev->root, &ops, e);
	}
	if (!r)
		r = emit_salvaged(e, UINT64_MAX);
	if (!r)
		r = ir_runs_flush(&e->runs) ? EMIT_STOP : 0;
	return r;
}

/* Lost ranges minus the salvaged leaves' spans. */
static void note_lost(struct emit *e)
{
	struct thin_repair *rp = e->rp;
	struct rdev *d = e->dev;

	for (size_t i = 0; i < e->lost.nr; i++) {
		uint64_t lo = e->lost.r[i].lo, hi = e->lost.r[i].hi;

		for (size_t k = 0; k < d->nr_salv; k++) {
			const struct salv_span *s = &rp->spans[d->span0 + k];
			if (s->last < lo || s->first >= hi)
				continue;
			if (s->first > lo) {
				repair_note(&rp->notes, "device %llu: mappings may be lost in virtual "
						     "blocks [%llu, %llu) (between salvaged leaves)",
					 (unsigned long long)d->id, (unsigned long long)lo,
					 (unsigned long long)s->first);
				rp->nr_lost++;
			}
			lo = s->last + 1;
		}
		if (lo < hi && lo != e->lost.r[i].lo) {
			char his[32];

			if (hi == UINT64_MAX)
				snprintf(his, sizeof(his), "end");
			else
				snprintf(his, sizeof(his), "%llu", (unsigned long long)hi);
			repair_note(&rp->notes, "device %llu: mappings may be lost in virtual blocks "
					     "[%llu, %s) (after salvaged leaves)",
				 (unsigned long long)d->id, (unsigned long long)lo, his);
			rp->nr_lost++;
		} else if (lo < hi) {
			if (hi == UINT64_MAX)
				repair_note(&rp->notes, "device %llu: mappings lost in virtual blocks "
						     "[%llu, end)",
					 (unsigned long long)d->id, (unsigned long long)lo);
			else
				repair_note(&rp->notes, "device %llu: mappings lost in virtual blocks "
						     "[%llu, %llu)",
					 (unsigned long long)d->id, (unsigned long long)lo,
					 (unsigned long long)hi);
			rp->nr_lost++;
		}
	}
	for (size_t i = 0; i < d->nr_excl;) {
		size_t j = i + 1;

		while (j < d->nr_excl && d->excl[j] == d->excl[j - 1] + 1)
			j++;
		repair_note(&rp->notes, "device %llu: mappings lost in virtual blocks [%llu, %llu) "
				     "(its candidate trees differ there)",
			 (unsigned long long)d->id, (unsigned long long)d->excl[i],
			 (unsigned long long)d->excl[j - 1] + 1);
		rp->nr_lost++;
		i = j;
	}
	if (e->dropped) {
		repair_note(&rp->notes, "device %llu: %llu mappings beyond nr_data_blocks (%llu) dropped",
			 (unsigned long long)d->id, (unsigned long long)e->dropped,
			 (unsigned long long)rp->sb.nr_data_blocks);
	}
}

struct emit_job {
	struct thin_repair *rp;
	char *err;
	size_t errlen;
};

static int visited(int r, char *err, size_t errlen)
{
	if (r > 0)
		return IR_STOP;
	if (r < 0)
		snprintf(err, errlen, "cannot write output: %s", strerror(-r));
	return r;
}

int thin_repair_emit(struct thin_repair *rp, const struct ir_visitor *v, int exact_counts,
		     char *err, size_t errlen)
{
	struct emit e = { .rp = rp };
	int r;

	err[0] = '\0';
	repair_notes_clear(&rp->notes, rp->plan_notes);
	rp->nr_mappings = rp->nr_lost = 0;
	r = v->begin_superblock ? visited(v->begin_superblock(v->ctx, &rp->sb), err, errlen) : 0;
	for (size_t i = 0; i < rp->nr_devs && !r; i++) {
		struct ir_device dev;

		e.dev = &rp->devs[i];
		dev.dev_id = e.dev->id;
		dev.mapped_blocks = e.dev->d.mapped_blocks;
		dev.transaction = e.dev->d.transaction_id;
		dev.creation_time = e.dev->d.creation_time;
		dev.snap_time = e.dev->d.snapshotted_time;
		if (exact_counts) {
			ir_runs_init(&e.runs, NULL);
			r = walk_device(&e);
			if (r < 0)
				break;
			dev.mapped_blocks = e.count;
		}
		ir_runs_init(&e.runs, v);
		r = v->begin_device ? visited(v->begin_device(v->ctx, &dev), err, errlen) : 0;
		if (r)
			break;
		r = walk_device(&e);
		if (r == EMIT_STOP && e.runs.vret) {
			r = visited(e.runs.vret, err, errlen);
			break;
		}
		if (r < 0)
			break;
		rp->nr_mappings += e.count;
		note_lost(&e);
		r = v->end_device ? visited(v->end_device(v->ctx), err, errlen) : 0;
	}
	if (!r)
		r = v->end_superblock ? visited(v->end_superblock(v->ctx), err, errlen) : 0;
	if (r < 0 && !err[0])
		snprintf(err, errlen, "cannot read the metadata: %s", strerror(-r));
	free(e.lost.r);
	return r == IR_STOP ? 0 : r;
}

static int emit_plain(void *ctx, const struct ir_visitor *v)
{
	struct emit_job *j = ctx;

	return thin_repair_emit(j->rp, v, 0, j->err, j->errlen);
}

/*
 * The restorer builds the new metadata on a second thread (an IR pipe),
 * while the emission reads the old: same events, same order.
 */
int thin_repair_produce(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	struct emit_job j = { ctx, err, errlen };
	int r, pr;

	r = ir_piped(v, emit_plain, &j, &pr);
	if (pr) {
		err[0] = '\0';
		r = visited(pr, err, errlen);
		r = r == IR_STOP ? 0 : r;
	}
	return r;
}

size_t thin_repair_nr_notes(const struct thin_repair *rp)
{
	return rp->notes.nr;
}

const char *thin_repair_note(const struct thin_repair *rp, size_t i)
{
	return i < rp->notes.nr ? rp->notes.s[i] : "";
}

void thin_repair_get_stats(const struct thin_repair *rp, struct thin_repair_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->scanned = rp->scanned;
	st->used_sb_roots = rp->used_sb_roots;
	st->synthesised_details = rp->synthesised;
	st->nr_devices = rp->nr_devs;
	st->nr_mappings = rp->nr_mappings;
	st->salvaged_leaves = rp->salvaged;
	st->lost_ranges = rp->nr_lost;
	st->mapping_root = rp->mapping_root;
	st->details_root = rp->details_root;
}
