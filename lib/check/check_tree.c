/*
 * thin_check's B-tree walker.  Every distinct node is read and validated
 * once; its path-independent facts (key range, entry count, height,
 * damage) are memoised by block, and a parent checks each child's summary
 * against its own separator keys.  That covers strict key ranges on every
 * path, uniform leaf depth and non-root occupancy, while shared subtrees
 * (snapshots) are counted once for metadata and data references.
 *
 * The children of an internal node are read in block order, contiguous
 * runs in one read each, CK_BATCH blocks at a time.
 */
#include "check/check-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc/crc32c.h"

/*----------------------------------------------------------------*/
/* memo: open addressing, keyed by block */

#define MEMO_EMPTY UINT64_MAX

int ck_memo_init(struct ck_memo *m)
{
	m->cap = 1024;
	m->nr = 0;
	m->slots = malloc(m->cap * sizeof(*m->slots));
	if (!m->slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		m->slots[i].block = MEMO_EMPTY;
	return 0;
}

void ck_memo_release(struct ck_memo *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->nr = 0;
}

static size_t memo_slot(const struct ck_memo *m, uint64_t block)
{
	size_t i = (size_t)((block * 0x9E3779B97F4A7C15ull) >> 20) & (m->cap - 1);

	while (m->slots[i].block != MEMO_EMPTY && m->slots[i].block != block)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int memo_grow(struct ck_memo *m)
{
	struct ck_sum *old = m->slots;
	size_t old_cap = m->cap;

	m->cap *= 2;
	m->slots = malloc(m->cap * sizeof(*m->slots));
	if (!m->slots) {
		m->slots = old;
		m->cap = old_cap;
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++)
		m->slots[i].block = MEMO_EMPTY;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].block != MEMO_EMPTY)
			m->slots[memo_slot(m, old[i].block)] = old[i];
	free(old);
	return 0;
}

static const struct ck_sum *memo_find(const struct ck_memo *m, uint64_t block)
{
	size_t i = memo_slot(m, block);

	return m->slots[i].block == block ? &m->slots[i] : NULL;
}

static int memo_put(struct ck_memo *m, const struct ck_sum *s)
{
	size_t i;

	if ((m->nr + 1) * 4 > m->cap * 3) {
		int r = memo_grow(m);
		if (r < 0)
			return r;
	}
	i = memo_slot(m, s->block);
	if (m->slots[i].block == MEMO_EMPTY)
		m->nr++;
	m->slots[i] = *s;
	return 0;
}

/*----------------------------------------------------------------*/

void ck_free_buffers(struct ck *ck)
{
	for (size_t i = 0; i < sizeof(ck->bufs) / sizeof(ck->bufs[0]); i++) {
		free(ck->bufs[i]);
		ck->bufs[i] = NULL;
	}
	free(ck->one);
	ck->one = NULL;
}

static const char *range_str(char *buf, size_t len, uint64_t lo, uint64_t hi)
{
	if (hi == UINT64_MAX)
		snprintf(buf, len, "[%llu, -]", (unsigned long long)lo);
	else
		snprintf(buf, len, "[%llu, %llu)", (unsigned long long)lo, (unsigned long long)hi);
	return buf;
}

static void node_damage(struct ck *ck, const struct ck_tree *t, enum dmg_level level,
			enum rep_code code, uint64_t block, uint64_t lo, uint64_t hi,
			const char *what)
{
	struct rep_ctx c = { block, lo, hi == UINT64_MAX ? 0 : hi, t->dev };
	char rb[64];

	if (hi == UINT64_MAX)
		c.key_end = UINT64_MAX;
	ck_add(ck, level, code, c, "%s%s: %s in btree node (block %llu), affecting keys %s",
	       ck->snap_prefix ? "metadata snap: " : "", t->name, what, (unsigned long long)block,
	       range_str(rb, sizeof(rb), lo, hi));
}

struct visit {
	struct ck *ck;
	const struct ck_tree *t;
};

static int visit(struct visit *v, uint64_t block, uint64_t lo, uint64_t hi, int depth,
		 const uint8_t *data, int read_err, struct ck_sum *out);

/* One batch of children [from, to) of an internal node. */
static int visit_batch(struct visit *v, const uint64_t *keys, const uint64_t *kids, uint32_t from,
		       uint32_t to, uint32_t nr, uint64_t hi, int depth, struct ck_sum *sums)
{
	struct ck *ck = v->ck;
	uint64_t want[CK_BATCH];
	int errs[CK_BATCH];
	unsigned n = 0;
	uint8_t *buf;

	if (!ck->bufs[depth]) {
		ck->bufs[depth] = ioe_alloc_blocks(CK_BATCH);
		if (!ck->bufs[depth])
			return -ENOMEM;
	}
	buf = ck->bufs[depth];
	/* blocks to read: not yet seen, inside the device */
	for (uint32_t i = from; i < to; i++) {
		uint64_t b = kids[i];
		if (b >= ck->md_nr_blocks || b >= ck->ioe->nr_blocks || memo_find(&ck->memo, b))
			continue;
		want[n++] = b;
	}
	/* sort (insertion: at most CK_BATCH), unique */
	for (unsigned i = 1; i < n; i++) {
		uint64_t x = want[i];
		unsigned j = i;
		while (j && want[j - 1] > x) {
			want[j] = want[j - 1];
			j--;
		}
		want[j] = x;
	}
	{
		unsigned u = 0;
		for (unsigned i = 0; i < n; i++)
			if (!u || want[u - 1] != want[i])
				want[u++] = want[i];
		n = u;
	}
	/* contiguous runs in one read each; a failed run is retried block by block */
	for (unsigned i = 0; i < n;) {
		unsigned j = i + 1;
		while (j < n && want[j] == want[j - 1] + 1)
			j++;
		if (ioe_read(ck->ioe, want[i], j - i, buf + (size_t)i * MD_BLOCK_SIZE) < 0) {
			for (unsigned k = i; k < j; k++)
				errs[k] = ioe_read(ck->ioe, want[k], 1,
						   buf + (size_t)k * MD_BLOCK_SIZE);
		} else {
			for (unsigned k = i; k < j; k++)
				errs[k] = 0;
		}
		i = j;
	}
	for (uint32_t i = from; i < to; i++) {
		uint64_t chi = i + 1 < nr ? keys[i + 1] : hi;
		const uint8_t *data = NULL;
		int err = 0;
		unsigned lo = 0, h = n;
		int r;

		while (lo < h) {
			unsigned mid = (lo + h) / 2;
			if (want[mid] < kids[i])
				lo = mid + 1;
			else
				h = mid;
		}
		if (lo < n && want[lo] == kids[i]) {
			data = buf + (size_t)lo * MD_BLOCK_SIZE;
			err = errs[lo];
		}
		r = visit(v, kids[i], keys[i], chi, depth + 1, data, err, &sums[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Checks the children's summaries against the separators; fills s. */
static void judge_children(struct visit *v, uint64_t block, const uint64_t *keys,
			   const struct ck_sum *sums, uint32_t nr, struct ck_sum *s)
{
	struct ck *ck = v->ck;
	const struct ck_tree *t = v->t;
	int height = -1, last_good = -1;

	for (uint32_t i = 0; i < nr; i++) {
		const struct ck_sum *c = &sums[i];
		uint64_t chi = i + 1 < nr ? keys[i + 1] : UINT64_MAX;

		if (c->flags & NS_BAD) {
			s->flags |= NS_DAMAGED;
			continue;
		}
		if (c->flags & NS_DAMAGED)
			s->flags |= NS_DAMAGED;
		if (!(c->flags & NS_NOHEIGHT)) {
			if (height < 0) {
				height = c->height;
			} else if (c->height != height) {
				node_damage(ck, t, DMG_FATAL, RC_NODE_DEPTH, c->block, keys[i], chi,
					    "leaves at different depths");
				s->flags |= NS_DAMAGED;
			}
		}
		if (!(c->flags & NS_EMPTY) &&
		    (c->min < keys[i] || (i + 1 < nr && c->max >= keys[i + 1]))) {
			char what[128];
			snprintf(what, sizeof(what),
				 "keys %llu..%llu outside the range given by parent %llu",
				 (unsigned long long)c->min, (unsigned long long)c->max,
				 (unsigned long long)block);
			node_damage(ck, t, DMG_FATAL, RC_NODE_KEY_RANGE, c->block, keys[i], chi,
				    what);
			s->flags |= NS_DAMAGED;
		}
		if (c->flags & NS_UNDERFULL) {
			char what[96];
			snprintf(what, sizeof(what), "underfull node (%u entries)", c->nr_entries);
			node_damage(ck, t, DMG_NON_FATAL, RC_NODE_UNDERFULL, c->block, keys[i], chi,
				    what);
		}
		s->count += c->count;
		last_good = (int)i;
	}
	if (height < 0) {
		s->flags |= NS_NOHEIGHT;
		s->height = 1;
	} else {
		s->height = (uint8_t)(height + 1);
	}
	s->min = keys[0];
	if (last_good == (int)nr - 1 && !(sums[nr - 1].flags & NS_EMPTY))
		s->max = sums[nr - 1].max;
	else
		s->max = keys[nr - 1];
}

static int visit_internal(struct visit *v, const struct bt_node *n, uint64_t block, uint64_t hi,
			  int depth, struct ck_sum *s)
{
	struct ck *ck = v->ck;
	uint32_t nr = n->nr_entries;
	uint64_t *keys = malloc(sizeof(uint64_t) * 2 * nr);
	uint64_t *kids = keys + nr;
	struct ck_sum *sums = malloc(sizeof(*sums) * nr);
	int r = 0;

	if (!keys || !sums) {
		free(keys);
		free(sums);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nr; i++) {
		keys[i] = bt_key(n, i);
		kids[i] = get_le64(bt_value(n, i));
		ck_meta_inc(ck, kids[i]);
	}
	/* n may point into a buffer that the batches below reuse: not used after this */
	for (uint32_t from = 0; from < nr && r >= 0; from += CK_BATCH) {
		uint32_t to = from + CK_BATCH < nr ? from + CK_BATCH : nr;
		r = visit_batch(v, keys, kids, from, to, nr, hi, depth, sums);
	}
	if (r >= 0)
		judge_children(v, block, keys, sums, nr, s);
	free(keys);
	free(sums);
	return r;
}

static int visit(struct visit *v, uint64_t block, uint64_t lo, uint64_t hi, int depth,
		 const uint8_t *data, int read_err, struct ck_sum *out)
{
	struct ck *ck = v->ck;
	const struct ck_tree *t = v->t;
	const struct ck_sum *found;
	struct ck_sum s = { .block = block, .kind = (uint8_t)t->kind };
	struct bt_node n;
	enum bt_node_err e;
	int r;

	if (block >= ck->md_nr_blocks || block >= ck->ioe->nr_blocks) {
		node_damage(ck, t, DMG_FATAL, RC_NODE_OUT_OF_BOUNDS, block, lo, hi,
			    "block beyond the end of the metadata");
		s.flags = NS_BAD | NS_NOHEIGHT;
		*out = s;
		return 0;
	}
	found = memo_find(&ck->memo, block);
	if (found) {
		if (found->flags & NS_BUSY) {
			node_damage(ck, t, DMG_FATAL, RC_NODE_CYCLE, block, lo, hi,
				    "cycle in tree");
			s.flags = NS_BAD | NS_NOHEIGHT;
			*out = s;
			return 0;
		}
		if (found->kind != t->kind) {
			node_damage(ck, t, DMG_FATAL, RC_NODE_TYPE_CHANGED, block, lo, hi,
				    "node shared with another tree");
			s.flags = NS_BAD | NS_NOHEIGHT;
			*out = s;
			return 0;
		}
		*out = *found;
		return 0;
	}
	if (depth > BT_MAX_DEPTH) {
		node_damage(ck, t, DMG_FATAL, RC_NODE_DEPTH, block, lo, hi, "tree too deep");
		s.flags = NS_BAD | NS_NOHEIGHT;
		*out = s;
		return 0;
	}
	s.flags = NS_BUSY;
	r = memo_put(&ck->memo, &s);
	if (r < 0)
		return r;
	s.flags = 0;
	if (!data) {
		if (!ck->one && !(ck->one = ioe_alloc_blocks(1)))
			return -ENOMEM;
		read_err = ioe_read(ck->ioe, block, 1, ck->one);
		data = ck->one;
	}
	if (!read_err)
		read_err = bc_csum_check(data, block, MD_BLOCK_SIZE, BTREE_CSUM_XOR);
	if (read_err) {
		const char *what = read_err == -EILSEQ	       ? "bad checksum"
				   : read_err == -ENOTBLK      ? "blocknr mismatch"
				   : read_err == BC_WRONG_TYPE ? "not a btree node"
							       : "io error";
		node_damage(ck, t, DMG_FATAL, bt_read_err_code(read_err), block, lo, hi, what);
		s.flags = NS_BAD | NS_NOHEIGHT;
		goto out;
	}
	bt_node_view(data, &n);
	e = bt_node_check(&n, t->leaf_vsize);
	if (e == BT_NODE_MAX_NOT_DIV3) {
		node_damage(ck, t, DMG_NON_FATAL, bt_node_err_code(e), block, lo, hi,
			    bt_node_err_str(e));
	} else if (e != BT_NODE_OK) {
		node_damage(ck, t, DMG_FATAL, bt_node_err_code(e), block, lo, hi,
			    bt_node_err_str(e));
		s.flags = NS_BAD | NS_NOHEIGHT;
		goto out;
	}
	s.nr_entries = n.nr_entries;
	if (n.nr_entries < n.max_entries / 3)
		s.flags |= NS_UNDERFULL;
	if (bt_is_leaf(&n)) {
		s.flags |= NS_LEAF;
		s.count = n.nr_entries;
		if (n.nr_entries) {
			s.min = bt_key(&n, 0);
			s.max = bt_key(&n, n.nr_entries - 1);
		} else {
			s.flags |= NS_EMPTY;
		}
		r = t->leaf ? t->leaf(ck, t->ctx, &n) : 0;
	} else if (!n.nr_entries) {
		node_damage(ck, t, DMG_FATAL, RC_NODE_NR_ENTRIES, block, lo, hi,
			    "internal node without entries");
		s.flags = NS_BAD | NS_NOHEIGHT;
	} else {
		r = visit_internal(v, &n, block, hi, depth, &s);
	}
	if (r < 0)
		return r;
out:
	r = memo_put(&ck->memo, &s);
	*out = s;
	return r;
}

int ck_walk_tree(struct ck *ck, const struct ck_tree *t, uint64_t root, struct ck_sum *out)
{
	struct visit v = { ck, t };

	return visit(&v, root, 0, UINT64_MAX, 0, NULL, 0, out);
}
