#include "names/reconcile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "names/reconcile-internal.h"
#include "util/bits.h"
#include "thin/pool_tag.h"
#include "thin/usage.h"
#include "thin/view.h"
#include "util/vec.h"

/*----------------------------------------------------------------*/
/* Reconciliation */

enum fence_state { FENCE_NOT_CHECKED, FENCE_IN_SYNC, FENCE_PENDING_ONE, FENCE_MISMATCH };

static const char *const fence_names[] = { "not_checked", "in_sync", "pending_one", "mismatch" };

struct incarn {
	const struct thin_record *rec;        /* NULL: from the table */
	const struct thin_names_entry *ent;
	const struct thin_dev *dev;
};

struct rctx {
	const struct thin_reconcile_opts *o;
	struct thin_view v;
	const struct thin_record **by_id;     /* records sorted by (dev_id, line) */
	size_t *orphans;                      /* indices into v.devs */
	size_t nr_orphans, matched;
	struct thin_usage *usage;             /* per device (space) */
	uint64_t *with_live;
	uint64_t reclaimable;
	const struct thin_record **dangling, **pending;
	size_t nr_dangling, nr_pending;
	struct incarn *incarn;
	size_t nr_incarn;
	const struct thin_names_entry **intents;
	size_t nr_intents;
	size_t nr_dup_ids, nr_dup_names;
	const struct thin_record **by_name;   /* unique_names: sorted by (name, dev_id) */
	int table_state;                      /* -2 none, -1 corrupt, else enum */
	enum fence_state fence;
	uint64_t *free;
	size_t nr_free;
};

static int cmp_rec_id(const void *a, const void *b)
{
	const struct thin_record *x = *(const struct thin_record *const *)a;
	const struct thin_record *y = *(const struct thin_record *const *)b;

	if (x->dev_id != y->dev_id)
		return x->dev_id < y->dev_id ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int cmp_rec_name(const void *a, const void *b)
{
	const struct thin_record *x = *(const struct thin_record *const *)a;
	const struct thin_record *y = *(const struct thin_record *const *)b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);

	if (c)
		return c;
	if (x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	return cmp_rec_id(a, b);
}

static int table_usable(const struct rctx *c)
{
	return c->table_state == TMN_BOUND_TAG || c->table_state == TMN_BOUND_FINGERPRINT;
}

static void check_incarnation(struct rctx *c, const struct thin_record *rec,
			      const struct thin_names_entry *ent, const struct thin_dev *d)
{
	uint64_t t = rec ? rec->transaction : ent->transaction;
	uint32_t ct = rec ? rec->creation_time : ent->creation_time;

	if (d->details.transaction_id == t && d->details.creation_time == ct)
		return;
	c->incarn[c->nr_incarn++] = (struct incarn){ .rec = rec, .ent = ent, .dev = d };
}

/* Walks devices and records (both sorted by id) side by side. */
static void classify(struct rctx *c)
{
	const struct thin_records *recs = c->o->records;
	const struct thin_dev_list *devs = &c->v.devs;
	size_t i = 0, k = 0;

	while (i < devs->nr || k < recs->nr) {
		uint64_t di = i < devs->nr ? devs->devs[i].dev_id : UINT64_MAX;
		uint64_t rk = k < recs->nr ? c->by_id[k]->dev_id : UINT64_MAX;

		if (di < rk) {
			c->orphans[c->nr_orphans++] = i++;
			continue;
		}
		size_t start = k;
		while (k < recs->nr && c->by_id[k]->dev_id == rk) {
			const struct thin_record *rec = c->by_id[k++];

			if (rec->pending)
				c->pending[c->nr_pending++] = rec;
			else if (di != rk)
				c->dangling[c->nr_dangling++] = rec;
			if (di == rk && rec->has_stamp)
				check_incarnation(c, rec, NULL, &devs->devs[i]);
		}
		if (k - start > 1)
			c->nr_dup_ids++;
		if (di == rk) {
			c->matched++;
			i++;
		}
	}
}

static void find_dup_names(struct rctx *c)
{
	const struct thin_records *recs = c->o->records;

	for (size_t k = 0; k < recs->nr; k++)
		c->by_name[k] = &recs->r[k];
	if (recs->nr)
		vec_sort(c->by_name, recs->nr, sizeof(*c->by_name), cmp_rec_name);
	for (size_t k = 0; k < recs->nr;) {
		size_t j = k + 1;
		int ids = 1;

		while (j < recs->nr && c->by_name[j]->name_len == c->by_name[k]->name_len &&
		       !memcmp(c->by_name[j]->name, c->by_name[k]->name, c->by_name[k]->name_len)) {
			if (c->by_name[j]->dev_id != c->by_name[j - 1]->dev_id)
				ids++;
			j++;
		}
		if (ids > 1 && c->by_name[k]->name_len)
			c->nr_dup_names++;
		k = j;
	}
}

static void check_table(struct rctx *c)
{
	const struct thin_names_table *t = c->o->table;

	if (c->o->table_error) {
		c->table_state = -1;
		return;
	}
	if (!t) {
		c->table_state = -2;
		return;
	}
	c->table_state = thin_names_bind(t, c->v.sb.uuid, c->v.sb.data_block_size, &c->v.devs);
	if (!table_usable(c))
		return;
	for (size_t i = 0; i < t->nr; i++) {
		const struct thin_names_entry *e = &t->e[i];
		const struct thin_dev *d = thin_view_find(&c->v, e->dev_id);

		if (e->flags & (TMN_E_PENDING_CREATE | TMN_E_PENDING_DELETE))
			c->intents[c->nr_intents++] = e;
		else if (d)
			check_incarnation(c, NULL, e, d);
	}
}

static void check_fence(struct rctx *c)
{
	uint64_t pool = c->v.sb.trans_id, want = c->o->expect_trans;

	if (!c->o->have_expect)
		c->fence = FENCE_NOT_CHECKED;
	else if (pool == want)
		c->fence = FENCE_IN_SYNC;
	else if (want > 0 && pool == want - 1)
		c->fence = FENCE_PENDING_ONE;
	else
		c->fence = FENCE_MISMATCH;
}

static int compute_space(struct rctx *c, char *msg, size_t msglen)
{
	size_t n = c->v.devs.nr;
	uint8_t *orphan = calloc(n + 1, 1);
	struct thin_usage_split split = { 0 };
	int r;

	c->usage = calloc(n + 1, sizeof(*c->usage));
	c->with_live = calloc(n + 1, sizeof(uint64_t));
	if (!orphan || !c->usage || !c->with_live) {
		free(orphan);
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->nr_orphans; i++)
		orphan[c->orphans[i]] = 1;
	split.orphan = orphan;
	split.with_live = c->with_live;
	r = thin_usage_compute_split(c->v.md->bc, &c->v.devs, c->v.nr_data_blocks, c->usage, &split,
				     msg, msglen);
	c->reclaimable = split.reclaimable;
	free(orphan);
	return r;
}

/*----------------------------------------------------------------*/
/* Free ids */

static inline void bm_set(uint64_t *bm, uint64_t b)
{
	bm[b >> 6] |= 1ull << (b & 63);
}

static inline int bm_test(const uint64_t *bm, uint64_t b)
{
	return !!(bm[b >> 6] & (1ull << (b & 63)));
}

#define ID_SPACE (THIN_MAX_DEV_ID + 1)

static uint64_t *occupied_map(const struct rctx *c, uint64_t *max_used, int *any)
{
	const struct thin_reconcile_opts *o = c->o;
	uint64_t *bm = calloc(ID_SPACE / 64, sizeof(uint64_t));

	if (!bm)
		return NULL;
	*any = 0;
	*max_used = 0;
#define OCC(id) do { bm_set(bm, id); if (!*any || (id) > *max_used) *max_used = (id); *any = 1; } while (0)
	for (size_t i = 0; i < c->v.devs.nr; i++)
		OCC(c->v.devs.devs[i].dev_id);
	for (size_t i = 0; i < o->records->nr; i++)
		OCC(o->records->r[i].dev_id);
	if (o->table && table_usable(c))
		for (size_t i = 0; i < o->table->nr; i++)
			OCC(o->table->e[i].dev_id);
#undef OCC
	for (size_t q = 0; q < o->nr_quarantine; q++)
		for (uint64_t id = o->quarantine[2 * q]; id <= o->quarantine[2 * q + 1]; id++)
			bm_set(bm, id);
	for (uint64_t id = 0; id < o->min_id && id < ID_SPACE; id++)
		bm_set(bm, id);
	return bm;
}

static int rand_u32(uint32_t *v)
{
	for (;;) {
		ssize_t n = getrandom(v, sizeof(*v), 0);
		if (n == (ssize_t)sizeof(*v))
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* The rank-th (0-based) clear bit. */
static uint64_t nth_free(const uint64_t *bm, uint64_t rank)
{
	for (uint64_t w = 0; w < ID_SPACE / 64; w++) {
		uint64_t nfree = 64 - (uint64_t)tm_popcount64(bm[w]);
		if (rank >= nfree) {
			rank -= nfree;
			continue;
		}
		for (uint64_t b = 0; b < 64; b++)
			if (!(bm[w] & (1ull << b)) && rank-- == 0)
				return w * 64 + b;
	}
	return UINT64_MAX;
}

static int pick_free(struct rctx *c, uint64_t *bm, uint64_t max_used, int any, uint64_t nfree)
{
	const struct thin_reconcile_opts *o = c->o;
	uint64_t start = o->strategy == TFS_AFTER_MAX && any ? max_used + 1 : 0;

	for (size_t k = 0; k < o->free_ids; k++, nfree--) {
		uint64_t id = UINT64_MAX;

		if (o->strategy == TFS_RANDOM) {
			for (int tries = 0; tries < 64 && id == UINT64_MAX; tries++) {
				uint32_t x;
				int r = rand_u32(&x);
				if (r < 0)
					return r;
				x &= THIN_MAX_DEV_ID;
				if (!bm_test(bm, x))
					id = x;
			}
			if (id == UINT64_MAX) {   /* dense id space: pick by rank */
				uint32_t x;
				int r = rand_u32(&x);
				if (r < 0)
					return r;
				id = nth_free(bm, x % nfree);
			}
		} else {
			/* lowest, or after the highest used id, wrapping to the lowest */
			for (uint64_t n = 0; n < ID_SPACE && id == UINT64_MAX; n++) {
				uint64_t cand = (start + n) & THIN_MAX_DEV_ID;
				if (!bm_test(bm, cand))
					id = cand;
			}
		}
		if (id == UINT64_MAX)
			return -ENOSPC;
		bm_set(bm, id);
		c->free[c->nr_free++] = id;
	}
	return 0;
}

static int find_free_ids(struct rctx *c, char *msg, size_t msglen)
{
	uint64_t max_used, nfree = 0, *bm;
	int any, r;

	if (!c->o->free_ids)
		return 0;
	bm = occupied_map(c, &max_used, &any);
	c->free = calloc(c->o->free_ids, sizeof(uint64_t));
	if (!bm || !c->free) {
		free(bm);
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	for (uint64_t w = 0; w < ID_SPACE / 64; w++)
		nfree += 64 - (uint64_t)tm_popcount64(bm[w]);
	if (nfree < c->o->free_ids) {
		snprintf(msg, msglen, "only %" PRIu64 " free thin id%s left, %zu requested", nfree,
			 nfree == 1 ? "" : "s", c->o->free_ids);
		free(bm);
		return -ENOSPC;
	}
	r = pick_free(c, bm, max_used, any, nfree);
	if (r < 0)
		snprintf(msg, msglen, "cannot draw free ids: %s", strerror(-r));
	free(bm);
	return r;
}

/*----------------------------------------------------------------*/
/* Report */

static void table_name_fld(const struct thin_names_entry *e, struct fld *f)
{
	if (!e)
		*f = FN("table_name");
	else if (e->flags & TMN_E_UTF8)
		*f = FS("table_name", (const char *)e->blob, e->blob_len);
	else
		*f = FH("table_blob", (const char *)e->blob, e->blob_len);
}

static const struct thin_names_entry *table_entry(const struct rctx *c, uint64_t id)
{
	return c->o->table && table_usable(c) ? thin_names_find(c->o->table, id) : NULL;
}

static void emit_pool(struct rctx *c, struct emitter *e)
{
	char tag[THIN_TAG_STR];
	struct fld f[7];

	thin_tag_format(c->v.md->sb.uuid, tag, sizeof(tag));
	f[0] = FU("transaction_id", c->v.sb.trans_id);
	f[1] = FU("time", c->v.sb.time);
	f[2] = FU("data_block_size", c->v.sb.data_block_size);
	f[3] = FU("nr_data_blocks", c->v.nr_data_blocks);
	f[4] = FU("held_root", c->v.md->sb.held_root);
	f[5] = FZ("source", c->o->use_snap ? "metadata-snap" : "live");
	f[6] = tag[0] ? FZ("tag", tag) : FN("tag");
	rc_emit_obj(e, "pool", f, NF(f));
}

static void emit_binding(struct rctx *c, struct emitter *e)
{
	const struct thin_names_table *t = c->o->table;
	char tag[THIN_TAG_STR] = "";
	struct fld f[4];
	const char *st = c->table_state == -2 ? "none" : c->table_state == -1 ? "corrupt"
			 : thin_names_binding_name((enum thin_names_binding)c->table_state);

	f[0] = FZ("table", st);
	if (t && c->table_state >= 0) {
		thin_tag_format(t->tag, tag, sizeof(tag));
		f[1] = tag[0] ? FZ("table_tag", tag) : FN("table_tag");
		f[2] = FU("generation", t->generation);
		f[3] = FU("bound_trans_id", t->bound_trans_id);
	} else {
		f[1] = FN("table_tag");
		f[2] = FN("generation");
		f[3] = c->o->table_error ? FZ("error", c->o->table_error) : FN("bound_trans_id");
	}
	rc_emit_obj(e, "binding", f, NF(f));
}

static void emit_fence(struct rctx *c, struct emitter *e)
{
	struct fld f[4];

	f[0] = c->o->have_expect ? FU("expected", c->o->expect_trans) : FN("expected");
	f[1] = FU("pool", c->v.sb.trans_id);
	f[2] = FZ("state", fence_names[c->fence]);
	f[3] = c->o->table && table_usable(c) ? FU("table_bound_trans_id", c->o->table->bound_trans_id)
					      : FN("table_bound_trans_id");
	rc_emit_obj(e, "fence", f, NF(f));
}

static void emit_summary(struct rctx *c, struct emitter *e)
{
	struct fld f[11];
	int sp = !c->o->no_space;

	f[0] = FU("devices", c->v.devs.nr);
	f[1] = FU("records", c->o->records->nr);
	f[2] = FU("matched", c->matched);
	f[3] = FU("orphans", c->nr_orphans);
	f[4] = FU("dangling", c->nr_dangling);
	f[5] = FU("pending", c->nr_pending);
	f[6] = FU("intents", c->nr_intents);
	f[7] = FU("duplicates", c->nr_dup_ids + c->nr_dup_names);
	f[8] = FU("incarnation_mismatch", c->nr_incarn);
	f[9] = sp ? FU("reclaimable_blocks", c->reclaimable) : FN("reclaimable_blocks");
	f[10] = sp ? FU("reclaimable_bytes", c->reclaimable * c->v.sb.data_block_size * 512)
		   : FN("reclaimable_bytes");
	rc_emit_obj(e, "summary", f, NF(f));
}

static void emit_orphans(struct rctx *c, struct emitter *e)
{
	rc_list_begin(e, "orphans");
	for (size_t k = 0; k < c->nr_orphans; k++) {
		size_t i = c->orphans[k];
		const struct thin_dev *d = &c->v.devs.devs[i];
		int sp = !c->o->no_space;
		struct fld f[9];

		f[0] = FU("dev_id", d->dev_id);
		f[1] = FU("mapped_blocks", d->details.mapped_blocks);
		f[2] = FU("transaction", d->details.transaction_id);
		f[3] = FU("creation_time", d->details.creation_time);
		f[4] = FU("snap_time", d->details.snapshotted_time);
		f[5] = sp ? FU("exclusive_blocks", c->usage[i].exclusive) : FN("exclusive_blocks");
		f[6] = sp ? FU("shared_blocks", c->usage[i].shared) : FN("shared_blocks");
		f[7] = sp ? FU("shared_with_live_blocks", c->with_live[i])
			  : FN("shared_with_live_blocks");
		table_name_fld(table_entry(c, d->dev_id), &f[8]);
		rc_emit_item(e, "orphan", f, NF(f));
	}
	rc_list_end(e);
}

static void emit_dangling(struct rctx *c, struct emitter *e)
{
	rc_list_begin(e, "dangling");
	for (size_t k = 0; k < c->nr_dangling; k++) {
		const struct thin_record *r = c->dangling[k];
		struct fld f[3] = { FU("dev_id", r->dev_id), FS("name", r->name, r->name_len),
				    FU("line", r->line) };
		rc_emit_item(e, "dangling", f, NF(f));
	}
	rc_list_end(e);
}

static void emit_pending(struct rctx *c, struct emitter *e)
{
	rc_list_begin(e, "pending");
	for (size_t k = 0; k < c->nr_pending; k++) {
		const struct thin_record *r = c->pending[k];
		int present = thin_view_find(&c->v, r->dev_id) != NULL;
		struct fld f[5] = { FU("dev_id", r->dev_id), FS("name", r->name, r->name_len),
				    FU("line", r->line), FB("present", present),
				    FZ("action", present ? "roll-forward" : "roll-back") };
		rc_emit_item(e, "pending", f, NF(f));
	}
	rc_list_end(e);
}

static void emit_intents(struct rctx *c, struct emitter *e)
{
	rc_list_begin(e, "intents");
	for (size_t k = 0; k < c->nr_intents; k++) {
		const struct thin_names_entry *t = c->intents[k];
		int present = thin_view_find(&c->v, t->dev_id) != NULL;
		int create = !!(t->flags & TMN_E_PENDING_CREATE);
		const char *action = create ? (present ? "confirm" : "drop-entry")
					    : (present ? "send-delete" : "drop-entry");
		struct fld f[5];

		f[0] = FU("dev_id", t->dev_id);
		f[1] = FZ("state", create ? "pending-create" : "pending-delete");
		f[2] = FB("present", present);
		f[3] = FZ("action", action);
		table_name_fld(t, &f[4]);
		rc_emit_item(e, "intent", f, NF(f));
	}
	rc_list_end(e);
}

static void emit_dup_ids(struct rctx *c, struct emitter *e, uint64_t *lines)
{
	const struct thin_records *recs = c->o->records;

	for (size_t k = 0; k < recs->nr;) {
		size_t j = k, n = 0;

		while (j < recs->nr && c->by_id[j]->dev_id == c->by_id[k]->dev_id)
			lines[n++] = c->by_id[j++]->line;
		if (n > 1) {
			struct fld f[5] = { FZ("kind", "id"), FU("dev_id", c->by_id[k]->dev_id),
					    FS("name", c->by_id[k]->name, c->by_id[k]->name_len),
					    FI("dev_ids", &c->by_id[k]->dev_id, 1),
					    FI("lines", lines, n) };
			rc_emit_item(e, "duplicate", f, NF(f));
		}
		k = j;
	}
}

static void emit_dup_names(struct rctx *c, struct emitter *e, uint64_t *lines, uint64_t *ids)
{
	const struct thin_records *recs = c->o->records;

	for (size_t k = 0; k < recs->nr;) {
		const struct thin_record *a = c->by_name[k];
		size_t j = k, n = 0, ni = 0;

		while (j < recs->nr && c->by_name[j]->name_len == a->name_len &&
		       !memcmp(c->by_name[j]->name, a->name, a->name_len)) {
			if (!ni || ids[ni - 1] != c->by_name[j]->dev_id)
				ids[ni++] = c->by_name[j]->dev_id;
			lines[n++] = c->by_name[j++]->line;
		}
		if (ni > 1 && a->name_len) {
			struct fld f[5] = { FZ("kind", "name"), FN("dev_id"),
					    FS("name", a->name, a->name_len), FI("dev_ids", ids, ni),
					    FI("lines", lines, n) };
			rc_emit_item(e, "duplicate", f, NF(f));
		}
		k = j;
	}
}

static int emit_duplicates(struct rctx *c, struct emitter *e)
{
	size_t n = c->o->records->nr + 1;
	uint64_t *lines = calloc(n, sizeof(uint64_t)), *ids = calloc(n, sizeof(uint64_t));

	if (!lines || !ids) {
		free(lines);
		free(ids);
		return -ENOMEM;
	}
	rc_list_begin(e, "duplicates");
	emit_dup_ids(c, e, lines);
	if (c->o->unique_names)
		emit_dup_names(c, e, lines, ids);
	rc_list_end(e);
	free(lines);
	free(ids);
	return 0;
}

static void emit_incarn(struct rctx *c, struct emitter *e)
{
	rc_list_begin(e, "incarnation_mismatch");
	for (size_t k = 0; k < c->nr_incarn; k++) {
		const struct incarn *m = &c->incarn[k];
		struct fld f[8];

		f[0] = FZ("source", m->rec ? "records" : "table");
		f[1] = FU("dev_id", m->dev->dev_id);
		if (m->rec) {
			f[2] = FS("name", m->rec->name, m->rec->name_len);
			f[3] = FU("line", m->rec->line);
			f[4] = FU("record_transaction", m->rec->transaction);
			f[5] = FU("record_creation_time", m->rec->creation_time);
		} else {
			table_name_fld(m->ent, &f[2]);
			f[2].key = "name";
			f[3] = FN("line");
			f[4] = FU("record_transaction", m->ent->transaction);
			f[5] = FU("record_creation_time", m->ent->creation_time);
		}
		f[6] = FU("pool_transaction", m->dev->details.transaction_id);
		f[7] = FU("pool_creation_time", m->dev->details.creation_time);
		rc_emit_item(e, "incarnation", f, NF(f));
	}
	rc_list_end(e);
}

static void emit_free(struct rctx *c, struct emitter *e)
{
	if (e->fmt == TRF_JSON) {
		struct fld f = FI("free_ids", c->free, c->nr_free);
		fprintf(e->out, ",\n\"free_ids\":");
		rc_put_value(e, &f);
		return;
	}
	for (size_t k = 0; k < c->nr_free; k++) {
		struct fld f = FU("dev_id", c->free[k]);
		if (e->fmt == TRF_TSV && e->headers && !k)
			rc_tsv_header(e, "#class", &f, 1);
		fputs("free", e->out);
		rc_emit_fields(e, &f, 1);
	}
}

/* A word for a POSIX shell: as it is when safe, else in single quotes. */
static void put_shell_word(FILE *out, const char *s)
{
	const char *safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./+-:=@%,";

	if (*s && strspn(s, safe) == strlen(s)) {
		fputs(s, out);
		return;
	}
	fputc('\'', out);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", out);
		else
			fputc(*s, out);
	}
	fputc('\'', out);
}

static void emit_thin_edit_line(struct rctx *c, FILE *out)
{
	if (!c->nr_orphans)
		return;
	fputs("thin_edit ", out);
	put_shell_word(out, c->o->path);
	for (size_t k = 0; k < c->nr_orphans; k++)
		fprintf(out, " delete %" PRIu64, c->v.devs.devs[c->orphans[k]].dev_id);
	fputc('\n', out);
}

static int emit_report(struct rctx *c, FILE *out)
{
	struct emitter e = { .out = out, .fmt = c->o->format, .headers = c->o->headers };
	int r;

	if (c->o->thin_edit_line) {
		emit_thin_edit_line(c, out);
		return 0;
	}
	if (e.fmt == TRF_JSON)
		fprintf(out, "{\"schema\":\"thinmeta.reconcile/1\"");
	emit_pool(c, &e);
	emit_binding(c, &e);
	emit_fence(c, &e);
	if (e.fmt == TRF_JSON)
		emit_summary(c, &e);
	emit_orphans(c, &e);
	emit_dangling(c, &e);
	emit_pending(c, &e);
	emit_intents(c, &e);
	r = emit_duplicates(c, &e);
	if (r < 0)
		return r;
	emit_incarn(c, &e);
	emit_free(c, &e);
	if (e.fmt == TRF_JSON)
		fprintf(out, "}\n");
	else
		emit_summary(c, &e);
	return 0;
}

/*----------------------------------------------------------------*/

static int exit_bits(const struct rctx *c)
{
	int bits = 0;

	if (c->nr_orphans)
		bits |= TRC_ORPHANS;
	if (c->nr_dangling)
		bits |= TRC_DANGLING;
	if (c->nr_dup_ids || c->nr_dup_names || c->nr_incarn)
		bits |= TRC_DUPLICATES;
	if (c->fence == FENCE_MISMATCH || (c->fence == FENCE_PENDING_ONE && c->o->strict_fence))
		bits |= TRC_FENCE;
	if (c->table_state == -1 || c->table_state == TMN_UNBOUND)
		bits |= TRC_TABLE;
	return bits;
}

static int rctx_alloc(struct rctx *c, char *msg, size_t msglen)
{
	size_t nr = c->o->records->nr + 1, nd = c->v.devs.nr + 1;
	size_t nt = (c->o->table ? c->o->table->nr : 0) + 1;

	c->by_id = calloc(nr, sizeof(*c->by_id));
	c->by_name = calloc(nr, sizeof(*c->by_name));
	c->dangling = calloc(nr, sizeof(*c->dangling));
	c->pending = calloc(nr, sizeof(*c->pending));
	c->orphans = calloc(nd, sizeof(*c->orphans));
	c->incarn = calloc(nr + nt, sizeof(*c->incarn));
	c->intents = calloc(nt, sizeof(*c->intents));
	if (!c->by_id || !c->by_name || !c->dangling || !c->pending || !c->orphans || !c->incarn ||
	    !c->intents) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void rctx_release(struct rctx *c)
{
	free(c->by_id);
	free(c->by_name);
	free(c->dangling);
	free(c->pending);
	free(c->orphans);
	free(c->incarn);
	free(c->intents);
	free(c->usage);
	free(c->with_live);
	free(c->free);
	thin_view_close(&c->v);
}

static int open_view(struct rctx *c, char *msg, size_t msglen)
{
	int r = thin_view_open(c->o->path, c->o->use_snap, c->o->snap_block, &c->v, msg, msglen);

	if (r == -EBUSY && !c->o->use_snap)
		snprintf(msg + strlen(msg), msglen - strlen(msg),
			 "; reserve a metadata snapshot and use -m to reconcile a live pool");
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->v.devs.nr; i++)
		if (!c->v.devs.devs[i].has_details || !c->v.devs.devs[i].has_root) {
			snprintf(msg, msglen, "thin device %" PRIu64 " is in only one of the device "
				 "trees (run thin_check)", c->v.devs.devs[i].dev_id);
			return -EILSEQ;
		}
	return 0;
}

int thin_reconcile(const struct thin_reconcile_opts *o, FILE *out, char *msg, size_t msglen)
{
	struct rctx c = { .o = o };
	int r;

	msg[0] = '\0';
	r = open_view(&c, msg, msglen);
	if (r < 0)
		goto out;
	r = rctx_alloc(&c, msg, msglen);
	if (r < 0)
		goto out;
	for (size_t k = 0; k < o->records->nr; k++)
		c.by_id[k] = &o->records->r[k];
	if (o->records->nr)
		vec_sort(c.by_id, o->records->nr, sizeof(*c.by_id), cmp_rec_id);
	classify(&c);
	if (o->unique_names)
		find_dup_names(&c);
	check_table(&c);
	check_fence(&c);
	if (!o->no_space) {
		r = compute_space(&c, msg, msglen);
		if (r < 0)
			goto out;
	}
	r = find_free_ids(&c, msg, msglen);
	if (r < 0)
		goto out;
	r = emit_report(&c, out);
	if (r == 0 && (fflush(out) != 0 || ferror(out))) {
		snprintf(msg, msglen, "write error: %s", strerror(errno));
		r = -EIO;
	} else if (r < 0) {
		snprintf(msg, msglen, "out of memory");
	}
	if (r == 0)
		r = exit_bits(&c);
out:
	rctx_release(&c);
	return r;
}
