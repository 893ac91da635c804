#include "cmd/delta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "thin/usage.h"
#include "thin/view.h"
#include "util/vec.h"

/*----------------------------------------------------------------*/
/* One side: its mappings as runs contiguous in both virtual and data blocks. */

struct run {
	uint64_t vbegin, dbegin, len;
};

struct side {
	struct run *runs;
	size_t nr, cap;
	int damaged;
	char damage[256];
};

static int side_add(struct side *s, uint64_t v, uint64_t d)
{
	struct run *last = s->nr ? &s->runs[s->nr - 1] : NULL;

	if (last && last->vbegin + last->len == v && last->dbegin + last->len == d) {
		last->len++;
		return 0;
	}
	if (s->nr == s->cap) {
		struct run *n = vec_grow(s->runs, &s->cap, sizeof(*n), 1024);

		if (!n)
			return -ENOMEM;
		s->runs = n;
	}
	s->runs[s->nr++] = (struct run){ v, d, 1 };
	return 0;
}

static int side_leaf(void *ctx, const struct bt_node *n)
{
	struct side *s = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		int r = side_add(s, bt_key(n, i), thin_bt_block(get_le64(bt_value(n, i))));
		if (r < 0)
			return r;
	}
	return 0;
}

static void side_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			uint64_t lo, uint64_t hi, const char *m)
{
	struct side *s = ctx;

	(void)code;
	(void)hi;
	if (level < DMG_NON_FATAL || s->damaged)
		return;
	s->damaged = 1;
	snprintf(s->damage, sizeof(s->damage), "node %" PRIu64 ": %s, affecting keys from %" PRIu64,
		 block, m, lo);
}

/*----------------------------------------------------------------*/
/* Emitters */

enum kind { K_NONE, K_LEFT_ONLY, K_RIGHT_ONLY, K_DIFFERENT, K_SAME };

static const char *const kind_names[] = { "", "left_only", "right_only", "different", "same" };

struct emitter {
	FILE *out;
	int verbose;
	enum kind cur;          /* open block (verbose) or pending range (simple) */
	uint64_t vbegin, len;   /* pending range (simple) */
};

static void simple_flush(struct emitter *e)
{
	if (e->cur != K_NONE)
		fprintf(e->out, "    <%s begin=\"%" PRIu64 "\" length=\"%" PRIu64 "\"/>\n",
			kind_names[e->cur], e->vbegin, e->len);
	e->cur = K_NONE;
}

static void emit(struct emitter *e, enum kind k, uint64_t v, uint64_t ld, uint64_t rd,
		 uint64_t len)
{
	if (!e->verbose) {
		if (e->cur == k && e->vbegin + e->len == v) {
			e->len += len;
			return;
		}
		simple_flush(e);
		e->cur = k;
		e->vbegin = v;
		e->len = len;
		return;
	}
	if (e->cur != k) {
		if (e->cur != K_NONE)
			fprintf(e->out, "    </%s>\n", kind_names[e->cur]);
		fprintf(e->out, "    <%s>\n", kind_names[k]);
		e->cur = k;
	}
	if (k == K_DIFFERENT)
		fprintf(e->out, "      <range begin=\"%" PRIu64 "\" left_data_begin=\"%" PRIu64
			"\" right_data_begin=\"%" PRIu64 "\" length=\"%" PRIu64 "\"/>\n",
			v, ld, rd, len);
	else
		fprintf(e->out, "      <range begin=\"%" PRIu64 "\" data_begin=\"%" PRIu64
			"\" length=\"%" PRIu64 "\"/>\n", v, k == K_RIGHT_ONLY ? rd : ld, len);
}

static void emit_complete(struct emitter *e)
{
	if (!e->verbose)
		simple_flush(e);
	else if (e->cur != K_NONE)
		fprintf(e->out, "    </%s>\n", kind_names[e->cur]);
	e->cur = K_NONE;
}

/*----------------------------------------------------------------*/
/* The diff: both run lists in parallel, consuming the shorter piece. */

struct cursor {
	const struct side *s;
	size_t i;
	struct run m;   /* what is left of runs[i] */
};

static void cur_init(struct cursor *c, const struct side *s)
{
	c->s = s;
	c->i = 0;
	if (s->nr)
		c->m = s->runs[0];
}

static int cur_more(const struct cursor *c)
{
	return c->i < c->s->nr;
}

static void cur_consume(struct cursor *c, uint64_t n)
{
	c->m.vbegin += n;
	c->m.dbegin += n;
	c->m.len -= n;
	if (!c->m.len && ++c->i < c->s->nr)
		c->m = c->s->runs[c->i];
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void diff_runs(const struct side *left, const struct side *right, struct emitter *e)
{
	struct cursor l, r;

	cur_init(&l, left);
	cur_init(&r, right);
	while (cur_more(&l) && cur_more(&r)) {
		uint64_t n;

		if (l.m.vbegin < r.m.vbegin) {
			n = min64(l.m.len, r.m.vbegin - l.m.vbegin);
			emit(e, K_LEFT_ONLY, l.m.vbegin, l.m.dbegin, 0, n);
			cur_consume(&l, n);
		} else if (l.m.vbegin > r.m.vbegin) {
			n = min64(r.m.len, l.m.vbegin - r.m.vbegin);
			emit(e, K_RIGHT_ONLY, r.m.vbegin, 0, r.m.dbegin, n);
			cur_consume(&r, n);
		} else {
			n = min64(l.m.len, r.m.len);
			emit(e, l.m.dbegin == r.m.dbegin ? K_SAME : K_DIFFERENT, l.m.vbegin,
			     l.m.dbegin, r.m.dbegin, n);
			cur_consume(&l, n);
			cur_consume(&r, n);
		}
	}
	while (cur_more(&l)) {
		emit(e, K_LEFT_ONLY, l.m.vbegin, l.m.dbegin, 0, l.m.len);
		cur_consume(&l, l.m.len);
	}
	while (cur_more(&r)) {
		emit(e, K_RIGHT_ONLY, r.m.vbegin, 0, r.m.dbegin, r.m.len);
		cur_consume(&r, r.m.len);
	}
	emit_complete(e);
}

/*----------------------------------------------------------------*/

static const char *const side_name[2] = { "snap1", "snap2" };

static int read_side(const struct thin_delta_opts *o, const struct thin_view *v, int i,
		     struct side *s, uint64_t *id, char *msg, size_t msglen)
{
	struct bt_walk_ops ops = { .leaf = side_leaf, .damage = side_damage };
	uint64_t root;
	int r;

	if (o->have_root[i]) {
		root = o->root[i];
		*id = root;
	} else {
		const struct thin_dev *d = thin_view_find(v, o->dev[i]);

		if (!d || !d->has_root) {
			snprintf(msg, msglen, "Unable to find mapping tree for %s (%" PRIu64 ")",
				 side_name[i], o->dev[i]);
			return -ENOENT;
		}
		root = d->root;
		*id = o->dev[i];
	}
	r = thin_walk_mappings(v->md->bc, root, &ops, s);
	if (r < 0) {
		snprintf(msg, msglen, "cannot read the mappings of %s: %s", side_name[i],
			 strerror(-r));
		return r;
	}
	if (s->damaged) {
		snprintf(msg, msglen, "mapping tree of %s is damaged: %s", side_name[i],
			 s->damage);
		return -EILSEQ;
	}
	return 0;
}

int thin_delta(const struct thin_delta_opts *o, FILE *out, char *msg, size_t msglen)
{
	struct thin_view v;
	struct side sides[2];
	uint64_t ids[2] = { 0, 0 };
	struct emitter e = { .out = out, .verbose = o->verbose, .cur = K_NONE };
	int r;

	memset(sides, 0, sizeof(sides));
	r = thin_view_open(o->path, o->use_snap, o->snap_block, &v, msg, msglen);
	if (r < 0)
		return r;
	for (int i = 0; i < 2 && r == 0; i++)
		r = read_side(o, &v, i, &sides[i], &ids[i], msg, msglen);
	if (r < 0)
		goto out;
	/* as 0.9.0: the values of the superblock used (a snapshot copy's data
	 * space map root is zeroed, so it says 0 blocks) */
	fprintf(out, "<superblock uuid=\"\" time=\"%" PRIu32 "\" transaction=\"%" PRIu64
		"\" data_block_size=\"%" PRIu32 "\" nr_data_blocks=\"%" PRIu64 "\"",
		v.sb.time, v.sb.trans_id, v.sb.data_block_size, v.sb.data_sm.nr_blocks);
	if (v.sb.held_root)
		fprintf(out, " metadata_snap=\"%" PRIu64 "\"", v.sb.held_root);
	fprintf(out, ">\n");
	fprintf(out, "  <diff left=\"%" PRIu64 "\" right=\"%" PRIu64 "\">\n", ids[0], ids[1]);
	diff_runs(&sides[0], &sides[1], &e);
	fprintf(out, "  </diff>\n</superblock>\n");
	if (fflush(out) != 0 || ferror(out)) {
		snprintf(msg, msglen, "write error: %s", strerror(errno));
		r = -EIO;
	}
out:
	free(sides[0].runs);
	free(sides[1].runs);
	thin_view_close(&v);
	return r;
}
