/*
 * B-tree edits through the transaction manager: see btree_edit.h.  Nodes
 * being changed are shadows held by the tm until the commit, so their
 * buffers stay put and need no unlocking; only reads take (and drop) a
 * lock on the cache.
 */
#include "btree/btree_edit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree/walk.h"
#include "util/endian.h"

/*----------------------------------------------------------------*/
/* raw node access */

static uint32_t n_flags(const uint8_t *n) { return get_le32(n + 4); }
static uint32_t n_nr(const uint8_t *n) { return get_le32(n + 16); }
static uint32_t n_max(const uint8_t *n) { return get_le32(n + 20); }
static uint32_t n_vs(const uint8_t *n) { return get_le32(n + 24); }
static void set_nr(uint8_t *n, uint32_t v) { put_le32(n + 16, v); }
static int is_leaf(const uint8_t *n) { return n_flags(n) == BT_LEAF_NODE; }
static uint8_t *key_p(uint8_t *n, uint32_t i) { return n + BT_HEADER_SIZE + 8 * (size_t)i; }
static uint64_t key_at(const uint8_t *n, uint32_t i)
{
	return get_le64(n + BT_HEADER_SIZE + 8 * (size_t)i);
}
static void set_key(uint8_t *n, uint32_t i, uint64_t k) { put_le64(key_p(n, i), k); }
static uint8_t *val_p(uint8_t *n, uint32_t i)
{
	return n + BT_HEADER_SIZE + 8 * (size_t)n_max(n) + (size_t)n_vs(n) * i;
}
static const uint8_t *val_c(const uint8_t *n, uint32_t i)
{
	return n + BT_HEADER_SIZE + 8 * (size_t)n_max(n) + (size_t)n_vs(n) * i;
}
static uint64_t child_at(const uint8_t *n, uint32_t i) { return get_le64(val_c(n, i)); }
static void set_child(uint8_t *n, uint32_t i, uint64_t b) { put_le64(val_p(n, i), b); }

/* Largest i with key[i] <= key, or -1. */
static int lower_bound(const uint8_t *n, uint64_t key)
{
	int lo = -1, hi = (int)n_nr(n);

	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;
		uint64_t k = key_at(n, (uint32_t)mid);

		if (k == key)
			return mid;
		if (k < key)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int contains(const uint8_t *n, uint64_t key)
{
	int i = lower_bound(n, key);

	return i >= 0 && key_at(n, (uint32_t)i) == key;
}

static void insert_at(uint8_t *n, uint32_t i, uint64_t key, const void *value)
{
	uint32_t nr = n_nr(n), vs = n_vs(n);

	memmove(key_p(n, i + 1), key_p(n, i), 8 * (size_t)(nr - i));
	memmove(val_p(n, i + 1), val_p(n, i), (size_t)vs * (nr - i));
	set_key(n, i, key);
	memcpy(val_p(n, i), value, vs);
	set_nr(n, nr + 1);
}

static void delete_at(uint8_t *n, uint32_t i)
{
	uint32_t nr = n_nr(n), vs = n_vs(n);

	memmove(key_p(n, i), key_p(n, i + 1), 8 * (size_t)(nr - i - 1));
	memmove(val_p(n, i), val_p(n, i + 1), (size_t)vs * (nr - i - 1));
	set_nr(n, nr - 1);
}

static void init_like(uint8_t *n, const uint8_t *model)
{
	put_le32(n + 4, n_flags(model));
	set_nr(n, 0);
	put_le32(n + 20, n_max(model));
	put_le32(n + 24, n_vs(model));
}

/* Moves the last k entries of l to the front of r. */
static void shift_right(uint8_t *l, uint8_t *r, uint32_t k)
{
	uint32_t nl = n_nr(l), nr = n_nr(r), vs = n_vs(l);

	memmove(key_p(r, k), key_p(r, 0), 8 * (size_t)nr);
	memmove(val_p(r, k), val_p(r, 0), (size_t)vs * nr);
	memcpy(key_p(r, 0), key_p(l, nl - k), 8 * (size_t)k);
	memcpy(val_p(r, 0), val_p(l, nl - k), (size_t)vs * k);
	set_nr(l, nl - k);
	set_nr(r, nr + k);
}

/* Moves the first k entries of r to the end of l. */
static void shift_left(uint8_t *l, uint8_t *r, uint32_t k)
{
	uint32_t nl = n_nr(l), nr = n_nr(r), vs = n_vs(l);

	memcpy(key_p(l, nl), key_p(r, 0), 8 * (size_t)k);
	memcpy(val_p(l, nl), val_p(r, 0), (size_t)vs * k);
	memmove(key_p(r, 0), key_p(r, k), 8 * (size_t)(nr - k));
	memmove(val_p(r, 0), val_p(r, k), (size_t)vs * (nr - k));
	set_nr(l, nl + k);
	set_nr(r, nr - k);
}

/* Moves entries between neighbours a and b until a holds want (b gains or loses the rest). */
static void shift_to(uint8_t *a, uint8_t *b, uint32_t want)
{
	uint32_t na = n_nr(a);

	if (na > want)
		shift_right(a, b, na - want);
	else if (na < want)
		shift_left(a, b, want - na);
}

/*
 * Shares the entries of nodes[0..k) (k = 2 or 3, in key order, same
 * layout) out so that node j holds counts[j] of them, moving only what
 * has to move and never filling a node beyond max_entries on the way.
 */
#define MAX_GROUP 3
static void redistribute(uint8_t **nodes, unsigned k, const uint32_t *counts)
{
	uint8_t *l = nodes[0], *c = nodes[1], *r = nodes[k - 1];
	uint32_t max = n_max(l);

	if (k == 2) {
		shift_to(l, c, counts[0]);
		return;
	}
	/* three nodes: flows left <-> centre and centre <-> right */
	for (int guard = 0; guard < 8; guard++) {
		uint32_t nl = n_nr(l), nc = n_nr(c), nr = n_nr(r);

		if (nl == counts[0] && nr == counts[2])
			return;
		if (nl > counts[0]) {
			/* the left gives: as much as the centre can take now */
			uint32_t k2 = nl - counts[0];
			if (k2 > max - nc)
				k2 = max - nc;
			shift_right(l, c, k2);
		} else if (nl < counts[0]) {
			uint32_t k2 = counts[0] - nl;
			if (k2 > nc)
				k2 = nc;
			shift_left(l, c, k2);
		}
		nc = n_nr(c);
		if (nr < counts[2]) {
			uint32_t k2 = counts[2] - nr;
			if (k2 > nc)
				k2 = nc;
			shift_right(c, r, k2);
		} else if (nr > counts[2]) {
			uint32_t k2 = nr - counts[2];
			if (k2 > max - nc)
				k2 = max - nc;
			shift_left(c, r, k2);
		}
	}
}

static int same_layout(const uint8_t *a, const uint8_t *b)
{
	return n_max(a) == n_max(b) && n_vs(a) == n_vs(b) && n_flags(a) == n_flags(b);
}

/*----------------------------------------------------------------*/
/* reading and shadowing nodes */

/*
 * The header checks of the kernel's node validator, and the value size
 * this tree expects (the checksum and location were checked on read).
 * Key order is thin_check's business: it costs a pass over every key.
 */
static int check_node(const struct bt_tree *t, const uint8_t *data)
{
	uint32_t flags = n_flags(data), nr = n_nr(data), max = n_max(data), vs = n_vs(data);

	if (flags != BT_LEAF_NODE && flags != BT_INTERNAL_NODE)
		return -EILSEQ;
	if ((uint64_t)max * (8 + (uint64_t)vs) + BT_HEADER_SIZE > MD_BLOCK_SIZE || nr > max)
		return -EILSEQ;
	return vs == (flags == BT_LEAF_NODE ? t->vt.size : 8u) ? 0 : -EILSEQ;
}

static int read_node(const struct bt_tree *t, uint64_t b, struct tm_block *out)
{
	int r = tm_txn_read_lock(t->tm, b, &bt_node_validator, out);

	if (r < 0)
		return r;
	if (out->bcb && check_node(t, out->data) < 0) {
		tm_txn_unlock(t->tm, out);
		return -EILSEQ;
	}
	return 0;
}

/* One more reference for everything node n points at. */
static int inc_children(const struct bt_tree *t, const uint8_t *n)
{
	uint32_t nr = n_nr(n);

	if (!is_leaf(n)) {
		for (uint32_t i = 0; i < nr; i++) {
			int r = tm_txn_inc(t->tm, child_at(n, i));
			if (r < 0)
				return r;
		}
		return 0;
	}
	return t->vt.inc && nr ? t->vt.inc(t->vt.ctx, val_c(n, 0), nr) : 0;
}

/* A writable copy of node b (b itself when it is an unshared shadow). */
static int shadow_node(const struct bt_tree *t, uint64_t b, struct tm_block *out)
{
	int inc, r;

	if (!tm_txn_is_shadow(t->tm, b)) {
		struct tm_block rd;

		/* validate the committed node before anything depends on it */
		r = read_node(t, b, &rd);
		if (r < 0)
			return r;
		tm_txn_unlock(t->tm, &rd);
	}
	r = tm_txn_shadow(t->tm, b, &bt_node_validator, out, &inc);
	if (r < 0)
		return r;
	return inc ? inc_children(t, out->data) : 0;
}

/* Shadows child i of parent and points the parent at the copy. */
static int shadow_child(const struct bt_tree *t, uint8_t *parent, uint32_t i, struct tm_block *out)
{
	int r = shadow_node(t, child_at(parent, i), out);

	if (r < 0)
		return r;
	set_child(parent, i, out->loc);
	return 0;
}

/*----------------------------------------------------------------*/

int bt_tree_empty(const struct bt_tree *t, uint64_t *root)
{
	struct tm_block b;
	int r = tm_txn_new_block(t->tm, &bt_node_validator, &b);
	uint8_t *n = b.data;

	if (r < 0)
		return r;
	put_le32(n + 4, BT_LEAF_NODE);
	set_nr(n, 0);
	put_le32(n + 20, bt_calc_max_entries(t->vt.size));
	put_le32(n + 24, t->vt.size);
	*root = b.loc;
	return 0;
}

int bt_tree_lookup(const struct bt_tree *t, uint64_t root, uint64_t key, void *value_le)
{
	uint64_t b = root;

	for (int depth = 0; depth <= BT_MAX_DEPTH; depth++) {
		struct tm_block blk;
		const uint8_t *n;
		int i, r = read_node(t, b, &blk);

		if (r < 0)
			return r;
		n = blk.data;
		i = lower_bound(n, key);
		if (i < 0) {
			tm_txn_unlock(t->tm, &blk);
			return -ENODATA;
		}
		if (is_leaf(n)) {
			r = key_at(n, (uint32_t)i) == key ? 0 : -ENODATA;
			if (!r && value_le)
				memcpy(value_le, val_c(n, (uint32_t)i), t->vt.size);
			tm_txn_unlock(t->tm, &blk);
			return r;
		}
		b = child_at(n, (uint32_t)i);
		tm_txn_unlock(t->tm, &blk);
	}
	return -ELOOP;
}

/*----------------------------------------------------------------*/
/* insert */

/* The root is full: move its entries into two new children. */
static int split_beneath(const struct bt_tree *t, struct tm_block *root)
{
	uint8_t *pn = root->data, *nodes[2];
	struct tm_block l, r;
	uint32_t nr = n_nr(pn), counts[2] = { nr / 2, nr - nr / 2 };
	int e;

	e = tm_txn_new_block(t->tm, &bt_node_validator, &l);
	if (e < 0)
		return e;
	e = tm_txn_new_block(t->tm, &bt_node_validator, &r);
	if (e < 0)
		return e;
	init_like(l.data, pn);
	init_like(r.data, pn);
	/* the root's entries are the source: copy them into the left child first */
	memcpy(key_p(l.data, 0), key_p(pn, 0), 8 * (size_t)nr);
	memcpy(val_p(l.data, 0), val_p(pn, 0), (size_t)n_vs(pn) * nr);
	set_nr(l.data, nr);
	nodes[0] = l.data;
	nodes[1] = r.data;
	redistribute(nodes, 2, counts);
	put_le32(pn + 4, BT_INTERNAL_NODE);
	set_nr(pn, 2);
	put_le32(pn + 20, bt_calc_max_entries(8));
	put_le32(pn + 24, 8);
	set_key(pn, 0, key_at(l.data, 0));
	set_child(pn, 0, l.loc);
	set_key(pn, 1, key_at(r.data, 0));
	set_child(pn, 1, r.loc);
	return 0;
}

static void even2(uint8_t *a, uint8_t *b)
{
	uint8_t *nodes[2] = { a, b };
	uint32_t total = n_nr(a) + n_nr(b), counts[2] = { total / 2, total - total / 2 };

	redistribute(nodes, 2, counts);
}

static int free_space(const struct bt_tree *t, uint64_t b, uint32_t *space)
{
	struct tm_block blk;
	int r = read_node(t, b, &blk);

	if (r < 0)
		return r;
	*space = n_max(blk.data) - n_nr(blk.data);
	tm_txn_unlock(t->tm, &blk);
	return 0;
}

static int rebalance_left(const struct bt_tree *t, uint8_t *parent, uint32_t pidx,
			  struct tm_block *cur, uint64_t key)
{
	struct tm_block sib;
	int r = shadow_child(t, parent, pidx - 1, &sib);

	if (r < 0)
		return r;
	if (!same_layout(sib.data, cur->data))
		return -EILSEQ;
	even2(sib.data, cur->data);
	set_key(parent, pidx, key_at(cur->data, 0));
	if (key < key_at(cur->data, 0))
		*cur = sib;
	return 0;
}

static int rebalance_right(const struct bt_tree *t, uint8_t *parent, uint32_t pidx,
			   struct tm_block *cur, uint64_t key)
{
	struct tm_block sib;
	int r = shadow_child(t, parent, pidx + 1, &sib);

	if (r < 0)
		return r;
	if (!same_layout(sib.data, cur->data))
		return -EILSEQ;
	even2(cur->data, sib.data);
	set_key(parent, pidx + 1, key_at(sib.data, 0));
	if (key >= key_at(sib.data, 0))
		*cur = sib;
	return 0;
}

static int split_one_into_two(const struct bt_tree *t, uint8_t *parent, uint32_t pidx,
			      struct tm_block *cur, uint64_t key)
{
	struct tm_block right;
	le64 loc;
	int r = tm_txn_new_block(t->tm, &bt_node_validator, &right);

	if (r < 0)
		return r;
	init_like(right.data, cur->data);
	even2(cur->data, right.data);
	loc = cpu_to_le64(right.loc);
	insert_at(parent, pidx + 1, key_at(right.data, 0), &loc);
	if (key >= key_at(right.data, 0))
		*cur = right;
	return 0;
}

static int split_two_into_three(const struct bt_tree *t, uint8_t *parent, uint32_t pidx,
				struct tm_block *cur, uint64_t key)
{
	struct tm_block left, middle, right;
	uint32_t mid_index, total, counts[3];
	uint8_t *nodes[3];
	le64 loc;
	int r;

	if (pidx == 0) {
		mid_index = 1;
		left = *cur;
		r = shadow_child(t, parent, pidx + 1, &right);
	} else {
		mid_index = pidx;
		right = *cur;
		r = shadow_child(t, parent, pidx - 1, &left);
	}
	if (r < 0)
		return r;
	if (!same_layout(left.data, right.data))
		return -EILSEQ;
	r = tm_txn_new_block(t->tm, &bt_node_validator, &middle);
	if (r < 0)
		return r;
	init_like(middle.data, left.data);
	total = n_nr(left.data) + n_nr(right.data);
	counts[0] = total / 3;
	counts[1] = (total - counts[0]) / 2;
	counts[2] = total - counts[0] - counts[1];
	nodes[0] = left.data;
	nodes[1] = middle.data;
	nodes[2] = right.data;
	redistribute(nodes, 3, counts);
	set_key(parent, mid_index, key_at(right.data, 0));
	loc = cpu_to_le64(middle.loc);
	insert_at(parent, mid_index, key_at(middle.data, 0), &loc);
	if (key < key_at(middle.data, 0))
		*cur = left;
	else if (key < key_at(right.data, 0))
		*cur = middle;
	else
		*cur = right;
	return 0;
}

/* Whether the sibling at parent[idx] is shared (*shared) or, unshared, has room to take entries (*room). */
static int sibling_room(const struct bt_tree *t, const uint8_t *parent, uint32_t idx,
			int *shared, int *room)
{
	uint64_t b = child_at(parent, idx);
	uint32_t space;
	int r;

	*room = 0;
	r = tm_txn_is_shared(t->tm, b, shared);
	if (r < 0 || *shared)
		return r;
	r = free_space(t, b, &space);
	if (r < 0)
		return r;
	*room = space >= BT_SPACE_THRESHOLD;
	return 0;
}

static int rebalance_or_split(const struct bt_tree *t, uint8_t *parent, uint32_t pidx,
			      struct tm_block *cur, uint64_t key)
{
	uint32_t nr_parent = n_nr(parent);
	int left_shared = 0, right_shared = 0, room, r;

	if (pidx > 0) {
		r = sibling_room(t, parent, pidx - 1, &left_shared, &room);
		if (r < 0)
			return r;
		if (room)
			return rebalance_left(t, parent, pidx, cur, key);
	}
	if (pidx + 1 < nr_parent) {
		r = sibling_room(t, parent, pidx + 1, &right_shared, &room);
		if (r < 0)
			return r;
		if (room)
			return rebalance_right(t, parent, pidx, cur, key);
	}
	if (left_shared || right_shared || nr_parent <= 2 || pidx == 0 || pidx + 1 == nr_parent)
		return split_one_into_two(t, parent, pidx, cur, key);
	return split_two_into_three(t, parent, pidx, cur, key);
}

static int has_space_for(const uint8_t *n, uint64_t key)
{
	if (n_nr(n) < n_max(n))
		return 1;
	/* an overwrite in a leaf needs no room */
	return is_leaf(n) && contains(n, key);
}

int bt_tree_insert(const struct bt_tree *t, uint64_t root, uint64_t key, const void *value_le,
		   uint64_t *new_root, int *inserted)
{
	struct tm_block cur;
	uint8_t *parent = NULL, *n;
	uint32_t pidx = 0;
	int i, r, top = 1;

	if (inserted)
		*inserted = 0;
	r = shadow_node(t, root, &cur);
	if (r < 0)
		return r;
	*new_root = cur.loc;
	for (int depth = 0;; depth++) {
		if (depth > BT_MAX_DEPTH)
			return -ELOOP;
		if (parent)
			set_child(parent, pidx, cur.loc);
		if (!has_space_for(cur.data, key)) {
			r = top ? split_beneath(t, &cur)
				: rebalance_or_split(t, parent, pidx, &cur, key);
			if (r < 0)
				return r;
		}
		n = cur.data;
		i = lower_bound(n, key);
		if (is_leaf(n))
			break;
		if (i < 0) {
			set_key(n, 0, key);   /* the new lowest key */
			i = 0;
		}
		parent = n;
		pidx = (uint32_t)i;
		r = shadow_node(t, child_at(n, (uint32_t)i), &cur);
		if (r < 0)
			return r;
		top = 0;
	}
	if (n_vs(n) != t->vt.size)
		return -EILSEQ;
	if (i >= 0 && key_at(n, (uint32_t)i) == key) {
		uint8_t *v = val_p(n, (uint32_t)i);

		if (t->vt.dec && !(t->vt.equal && t->vt.equal(t->vt.ctx, v, value_le))) {
			r = t->vt.dec(t->vt.ctx, v, 1);
			if (r < 0)
				return r;
		}
		memcpy(v, value_le, t->vt.size);
		return 0;
	}
	insert_at(n, (uint32_t)(i + 1), key, value_le);
	if (inserted)
		*inserted = 1;
	return 0;
}

int bt_tree_get_overwrite_leaf(const struct bt_tree *t, uint64_t root, uint64_t key,
			       uint64_t *new_root, void **value_le)
{
	struct tm_block cur;
	uint8_t *parent = NULL;
	uint32_t pidx = 0;
	int i, r = bt_tree_lookup(t, root, key, NULL);

	if (r < 0)
		return r;
	r = shadow_node(t, root, &cur);
	if (r < 0)
		return r;
	*new_root = cur.loc;
	for (int depth = 0;; depth++) {
		if (depth > BT_MAX_DEPTH)
			return -ELOOP;
		if (parent)
			set_child(parent, pidx, cur.loc);
		i = lower_bound(cur.data, key);
		if (i < 0)
			return -ENODATA;
		if (is_leaf(cur.data))
			break;
		parent = cur.data;
		pidx = (uint32_t)i;
		r = shadow_node(t, child_at(cur.data, (uint32_t)i), &cur);
		if (r < 0)
			return r;
	}
	if (key_at(cur.data, (uint32_t)i) != key || n_vs(cur.data) != t->vt.size)
		return -ENODATA;
	*value_le = val_p(cur.data, (uint32_t)i);
	return 0;
}

/*----------------------------------------------------------------*/
/* remove */

static uint32_t merge_threshold(const uint8_t *n)
{
	return n_max(n) / 3;
}

/* Children li and li + 1 of parent (both shadowed): merge or even them out. */
static int rebalance2_nodes(const struct bt_tree *t, uint8_t *parent, uint32_t li,
			    struct tm_block *l, struct tm_block *r)
{
	uint32_t nl = n_nr(l->data), nr = n_nr(r->data);

	if (!same_layout(l->data, r->data))
		return -EILSEQ;
	if (nl + nr < 2 * (merge_threshold(l->data) + 1)) {
		uint8_t *nodes[2] = { l->data, r->data };
		uint32_t counts[2] = { nl + nr, 0 };

		redistribute(nodes, 2, counts);
		delete_at(parent, li + 1);
		/* the right node goes; its children now belong to the left one */
		return tm_txn_dec(t->tm, r->loc);
	}
	{
		uint8_t *nodes[2] = { l->data, r->data };
		uint32_t counts[2] = { (nl + nr) / 2, nl + nr - (nl + nr) / 2 };

		redistribute(nodes, 2, counts);
		set_key(parent, li + 1, key_at(r->data, 0));
	}
	return 0;
}

static int rebalance2(const struct bt_tree *t, uint8_t *parent, uint32_t li)
{
	struct tm_block l, r;
	int e = shadow_child(t, parent, li, &l);

	if (e < 0)
		return e;
	e = shadow_child(t, parent, li + 1, &r);
	if (e < 0)
		return e;
	return rebalance2_nodes(t, parent, li, &l, &r);
}

static int rebalance3(const struct bt_tree *t, uint8_t *parent, uint32_t li)
{
	struct tm_block l, c, r;
	uint32_t nl, nc, nr, total, max;
	int e = shadow_child(t, parent, li, &l);

	if (e < 0)
		return e;
	e = shadow_child(t, parent, li + 1, &c);
	if (e < 0)
		return e;
	e = shadow_child(t, parent, li + 2, &r);
	if (e < 0)
		return e;
	if (!same_layout(l.data, c.data) || !same_layout(c.data, r.data))
		return -EILSEQ;
	nl = n_nr(l.data);
	nc = n_nr(c.data);
	nr = n_nr(r.data);
	total = nl + nc + nr;
	max = n_max(l.data);
	if (total < 4 * merge_threshold(l.data) + 1) {
		/* the middle node goes: as much as fits to the left, the rest to the right */
		uint8_t *nodes[3] = { l.data, c.data, r.data };
		uint32_t to_left = max - nl < nc ? max - nl : nc;
		uint32_t counts[3] = { nl + to_left, 0, nr + nc - to_left };

		if (counts[2] > max)
			return -EILSEQ;
		redistribute(nodes, 3, counts);
		set_key(parent, li + 2, key_at(r.data, 0));
		delete_at(parent, li + 1);
		e = tm_txn_dec(t->tm, c.loc);
		if (e < 0)
			return e;
		return rebalance2_nodes(t, parent, li, &l, &r);
	}
	{
		uint8_t *nodes[3] = { l.data, c.data, r.data };
		uint32_t tr = total / 3, tl = tr + (tr * 3 != total);
		uint32_t counts[3] = { tl, total - tl - tr, tr };

		redistribute(nodes, 3, counts);
		set_key(parent, li + 1, key_at(c.data, 0));
		set_key(parent, li + 2, key_at(r.data, 0));
	}
	return 0;
}

/*
 * A single child takes the place of its parent.  (The kernel then goes
 * down without rebalancing the new children; we rebalance them, so that
 * a merge further down cannot leave one of them below a third full.)
 */
static int collapse(const struct bt_tree *t, struct tm_block *cur)
{
	struct tm_block child;
	uint8_t *n = cur->data;
	uint64_t b = child_at(n, 0);
	int shared, r;

	r = tm_txn_is_shared(t->tm, b, &shared);
	if (r < 0)
		return r;
	r = read_node(t, b, &child);
	if (r < 0)
		return r;
	memcpy(n, child.data, MD_BLOCK_SIZE);
	tm_txn_unlock(t->tm, &child);
	if (shared) {
		r = inc_children(t, n);
		if (r < 0)
			return r;
	}
	return tm_txn_dec(t->tm, b);
}

/* cur is internal with at least two children. */
static int rebalance_children(const struct bt_tree *t, struct tm_block *cur, uint64_t key)
{
	uint8_t *n = cur->data;
	uint32_t nr = n_nr(n);
	int i = lower_bound(n, key);

	if (i < 0)
		return -ENODATA;
	if (i == 0)
		return rebalance2(t, n, 0);
	if ((uint32_t)i == nr - 1)
		return rebalance2(t, n, (uint32_t)i - 1);
	return rebalance3(t, n, (uint32_t)i - 1);
}

int bt_tree_remove(const struct bt_tree *t, uint64_t root, uint64_t key, uint64_t *new_root)
{
	struct tm_block cur;
	uint8_t *parent = NULL;
	uint32_t pidx = 0;
	int i, r;

	r = shadow_node(t, root, &cur);
	if (r < 0)
		return r;
	*new_root = cur.loc;
	for (int depth = 0;; depth++) {
		if (depth > BT_MAX_DEPTH)
			return -ELOOP;
		if (parent)
			set_child(parent, pidx, cur.loc);
		for (int k = 0; !is_leaf(cur.data) && n_nr(cur.data) == 1; k++) {
			if (k > BT_MAX_DEPTH)
				return -ELOOP;
			r = collapse(t, &cur);
			if (r < 0)
				return r;
		}
		if (is_leaf(cur.data))
			break;
		r = rebalance_children(t, &cur, key);
		if (r < 0)
			return r;
		i = lower_bound(cur.data, key);
		if (i < 0)
			return -ENODATA;
		parent = cur.data;
		pidx = (uint32_t)i;
		r = shadow_node(t, child_at(cur.data, (uint32_t)i), &cur);
		if (r < 0)
			return r;
	}
	i = lower_bound(cur.data, key);
	if (i < 0 || key_at(cur.data, (uint32_t)i) != key)
		return -ENODATA;
	if (t->vt.dec) {
		r = t->vt.dec(t->vt.ctx, val_c(cur.data, (uint32_t)i), 1);
		if (r < 0)
			return r;
	}
	delete_at(cur.data, (uint32_t)i);
	return 0;
}

/*----------------------------------------------------------------*/
/* delete, walk */

static int del_node(const struct bt_tree *t, uint64_t b, int depth)
{
	uint8_t copy[MD_BLOCK_SIZE];
	struct tm_block blk;
	uint32_t count, nr;
	int r;

	if (depth > BT_MAX_DEPTH)
		return -ELOOP;
	r = tm_txn_ref(t->tm, b, &count);
	if (r < 0)
		return r;
	if (count > 1)
		return tm_txn_dec(t->tm, b);
	r = read_node(t, b, &blk);
	if (r < 0)
		return r;
	/* work on a copy: the value type's dec may read other blocks */
	memcpy(copy, blk.data, MD_BLOCK_SIZE);
	tm_txn_unlock(t->tm, &blk);
	nr = n_nr(copy);
	if (!is_leaf(copy)) {
		uint64_t kids[MD_BLOCK_SIZE / 8];

		for (uint32_t i = 0; i < nr && i < MD_BLOCK_SIZE / 8; i++)
			kids[i] = child_at(copy, i);
		tm_txn_prefetch(t->tm, kids, nr);
		for (uint32_t i = 0; i < nr; i++) {
			r = del_node(t, child_at(copy, i), depth + 1);
			if (r < 0)
				return r;
		}
	} else if (t->vt.dec && nr) {
		r = t->vt.dec(t->vt.ctx, val_c(copy, 0), nr);
		if (r < 0)
			return r;
	}
	return tm_txn_dec(t->tm, b);
}

int bt_tree_del(const struct bt_tree *t, uint64_t root)
{
	return del_node(t, root, 0);
}

/*
 * Walks go through the shared path walker (walk.h), reading through the
 * transaction: each node is copied out and its lock dropped at once, so a
 * callback sees a stable copy.
 */
struct tm_src {
	const struct bt_tree *t;
	uint8_t copy[MD_BLOCK_SIZE];
};

static int tm_src_get(void *ctx, uint64_t b, const void **data, void **hold)
{
	struct tm_src *s = ctx;
	struct tm_block blk;
	int r = read_node(s->t, b, &blk);

	if (r < 0)
		return r;
	memcpy(s->copy, blk.data, MD_BLOCK_SIZE);
	tm_txn_unlock(s->t->tm, &blk);
	*data = s->copy;
	*hold = NULL;
	return 0;
}

static void tm_src_put(void *ctx, void *hold)
{
	(void)ctx, (void)hold;
}

static void tm_src_prefetch(void *ctx, const uint64_t *blocks, size_t nr)
{
	struct tm_src *s = ctx;

	tm_txn_prefetch(s->t->tm, blocks, nr);
}

struct entry_walk {
	uint64_t lo, hi;
	int (*fn)(void *ctx, uint64_t key, const void *value_le);
	void *ctx;
};

static int entry_leaf(void *ctx, const struct bt_node *n)
{
	struct entry_walk *e = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t k = bt_key(n, i);
		int r;

		if (k >= e->hi)
			break;
		if (k < e->lo)
			continue;
		r = e->fn(e->ctx, k, bt_value(n, i));
		if (r < 0)
			return r;
	}
	return 0;
}

int bt_tree_walk_range(const struct bt_tree *t, uint64_t root, uint64_t lo, uint64_t hi,
		       int (*fn)(void *ctx, uint64_t key, const void *value_le), void *ctx)
{
	static const struct bt_walk_ops ops = { .leaf = entry_leaf, .flags = BT_WALK_STOP };
	struct tm_src s = { .t = t };
	struct bt_source src = { tm_src_get, tm_src_put, tm_src_prefetch, &s };
	struct entry_walk e = { lo, hi, fn, ctx };

	return bt_walk_keys(&src, root, lo, hi, 0, t->vt.size, &ops, &e);
}

int bt_tree_walk(const struct bt_tree *t, uint64_t root,
		 int (*fn)(void *ctx, uint64_t key, const void *value_le), void *ctx)
{
	return bt_tree_walk_range(t, root, 0, UINT64_MAX, fn, ctx);
}

static int count_one(void *ctx, uint64_t key, const void *value_le)
{
	(void)key;
	(void)value_le;
	(*(uint64_t *)ctx)++;
	return 0;
}

int bt_tree_count(const struct bt_tree *t, uint64_t root, uint64_t *nr)
{
	*nr = 0;
	return bt_tree_walk(t, root, count_one, nr);
}
