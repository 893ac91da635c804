#include "repair/repair.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repair/repair-internal.h"

/*----------------------------------------------------------------*/
/*
 * Pool states (superblock lost): every checksum-valid metadata space-map
 * index block whose bitmaps are valid describes one committed state.  A
 * state is usable when its map marks itself, its bitmaps and every node
 * of exactly one top-level tree (with its device trees) and at most one
 * details tree naming the same devices as in use; trees held by a
 * metadata snapshot (a superblock copy in use) are set aside.
 */

/* Every node of the tree at n (kind k) is in use in counts[]. */
static int tree_in_use(struct scan *s, struct snode *n, enum tkind k, const uint8_t *counts,
		       int level)
{
	if (level > BT_MAX_DEPTH || !counts[n->block])
		return 0;
	if (n->flags == BT_LEAF_NODE && k != K_TOP)
		return 1;
	if (n->ent == UINT32_MAX)
		return 0;
	for (uint32_t i = 0; i < n->nr; i++) {
		struct snode *ch = repair_scan_node(s, s->pool[2 * ((size_t)n->ent + i) + 1]);
		enum tkind ck = n->flags == BT_LEAF_NODE ? K_MAP : k;

		if (!ch || !tree_in_use(s, ch, ck, counts, level + 1))
			return 0;
	}
	return 1;
}

/* Whether b is a device root named by the top-level tree at n. */
int repair_top_names_root(struct scan *s, struct snode *n, uint64_t b, int level)
{
	if (level > BT_MAX_DEPTH || n->ent == UINT32_MAX)
		return 0;
	for (uint32_t i = 0; i < n->nr; i++) {
		uint64_t v = s->pool[2 * ((size_t)n->ent + i) + 1];
		struct snode *ch;

		if (n->flags == BT_LEAF_NODE) {
			if (v == b)
				return 1;
			continue;
		}
		ch = repair_scan_node(s, v);
		if (ch && repair_top_names_root(s, ch, b, level + 1))
			return 1;
	}
	return 0;
}

/*
 * Decodes the map of index block ib into counts[0..nr_blocks).  Returns 0
 * when the index and all its bitmaps are valid and mark themselves in use.
 */
static int state_map(struct thin_repair *rp, uint64_t ib, uint8_t *counts)
{
	struct scan *s = &rp->scan;
	struct bc *bc = rp->md->bc;
	struct bc_block *blk;
	uint64_t bms[SM_MAX_METADATA_BITMAPS];
	unsigned nr = 0;

	if (bc_get(bc, ib, &sm_index_validator, &blk) < 0)
		return -1;
	for (unsigned i = 0; i < SM_MAX_METADATA_BITMAPS; i++) {
		const struct disk_metadata_index *mi = bc_data(blk);
		uint64_t b = le64_to_cpu(mi->index[i].blocknr);

		if (!b)
			break;
		bms[nr++] = b;
	}
	bc_put(bc, blk);
	if (!nr)
		return -1;
	memset(counts, 0, s->nr_blocks);
	for (unsigned i = 0; i < nr; i++) {
		uint64_t base = (uint64_t)i * SM_ENTRIES_PER_BITMAP;
		unsigned n;

		if (bms[i] >= s->nr_blocks || !(s->bitmap_ok[bms[i] / 8] & (1u << (bms[i] % 8))))
			return -1;
		if (base >= s->nr_blocks)
			break;
		n = s->nr_blocks - base < SM_ENTRIES_PER_BITMAP ? (unsigned)(s->nr_blocks - base)
								 : SM_ENTRIES_PER_BITMAP;
		if (bc_get(bc, bms[i], &sm_bitmap_validator, &blk) < 0)
			return -1;
		sm_bitmap_decode(bc_data(blk), n, counts + base);
		bc_put(bc, blk);
		bc_forget(bc, bms[i]);
	}
	if (!counts[ib])
		return -1;
	for (unsigned i = 0; i < nr; i++)
		if (!counts[bms[i]])
			return -1;
	return 0;
}

/* The state of one index block.  Returns 0 (st filled) or -1 (unusable). */
static int state_eval(struct thin_repair *rp, uint64_t ib, const uint8_t *counts,
		      struct repair_state *st)
{
	struct scan *s = &rp->scan;
	struct snode *top = NULL, *det = NULL;

	struct snode *tops[8];
	size_t nt = 0;

	for (size_t i = 0; i < s->nr; i++) {
		struct snode *n = &s->n[i];
		int held = 0;

		if (!counts[n->block])
			continue;
		for (size_t j = 0; j < s->nr_sbc && !held; j++)
			held = counts[s->sbc[j].block] &&
			       (s->sbc[j].mroot == n->block || s->sbc[j].droot == n->block);
		if (held)
			continue;
		if (n->t.state == S_VALID && !n->t_ref && tree_in_use(s, n, K_TOP, counts, 0)) {
			if (nt == sizeof(tops) / sizeof(tops[0]))
				return -1;
			tops[nt++] = n;
		}
		if (n->d.state == S_VALID && !n->d_ref && tree_in_use(s, n, K_DETAILS, counts, 0)) {
			if (det)
				return -1;
			det = n;
		}
	}
	/* device trees that look like top-level ones are named by the real one */
	for (size_t i = 0; i < nt; i++) {
		int named = 0;

		for (size_t j = 0; j < nt && !named; j++)
			named = j != i && repair_top_names_root(s, tops[j], tops[i]->block, 0);
		if (named)
			continue;
		if (top)
			return -1;   /* two top-level trees: not one committed state */
		top = tops[i];
	}
	if (!top)
		return -1;
	if (det && (det->d.devs != top->t.devs || det->d.hash != top->t.hash))
		return -1;
	memset(st, 0, sizeof(*st));
	st->index_block = ib;
	st->mroot = top->block;
	st->time = top->t.time;
	if (det) {
		st->droot = det->block;
		st->tid = det->d.max_data;
		st->dtime = det->d.time;
	}
	return 0;
}

/*
 * Every whole pool state the scanned space maps describe.  counts: a
 * scratch map of nr_blocks bytes.
 */
int repair_collect_states(struct thin_repair *rp, uint8_t *counts, struct repair_state **out,
			  size_t *nr)
{
	struct scan *s = &rp->scan;
	struct summ_ctx c = { .s = s, .msm = NULL };
	struct repair_state *st;

	*out = NULL;
	*nr = 0;
	for (size_t i = 0; i < s->nr; i++) {
		repair_summarise(&c, &s->n[i], K_TOP, 0);
		repair_summarise(&c, &s->n[i], K_DETAILS, 0);
	}
	st = calloc(s->nr_smi + 1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	for (size_t i = 0; i < s->nr_smi; i++)
		if (state_map(rp, s->smi[i], counts) == 0 &&
		    state_eval(rp, s->smi[i], counts, &st[*nr]) == 0)
			(*nr)++;
	*out = st;
	return 0;
}

int repair_state_newest_first(const void *a, const void *b)
{
	const struct repair_state *x = a, *y = b;

	if (x->time != y->time)
		return x->time > y->time ? -1 : 1;
	if (x->tid != y->tid)
		return x->tid > y->tid ? -1 : 1;
	if (x->dtime != y->dtime)
		return x->dtime > y->dtime ? -1 : 1;
	return 0;
}

/*
 * A space map that is whole and consistent with itself but whose in-use
 * blocks include some that hold nothing readable (no valid node, bitmap,
 * index or superblock copy): the kernel writes only such blocks, so this
 * map's state lost blocks to damage, and nothing says it is older than the
 * whole states (it may be the live one).  Returns the index block of the
 * first such map (not one of the nst whole states), or 0.
 */
static uint64_t broken_state(struct thin_repair *rp, const struct repair_state *st, size_t nst,
			     uint8_t *counts, uint64_t *nr_holes, uint64_t *first_hole)
{
	struct scan *s = &rp->scan;
	uint8_t *known = calloc(s->nr_blocks / 8 + 1, 1);
	uint64_t found = 0;

	if (!known)
		return 0;
	for (size_t i = 0; i < s->nr_smi; i++)
		known[s->smi[i] / 8] |= (uint8_t)(1u << (s->smi[i] % 8));
	for (size_t i = 0; i < s->nr_sbc; i++)
		known[s->sbc[i].block / 8] |= (uint8_t)(1u << (s->sbc[i].block % 8));
	for (size_t i = 0; i < s->nr_smi && !found; i++) {
		uint64_t holes = 0, first = 0;
		int whole = 0;

		for (size_t j = 0; j < nst && !whole; j++)
			whole = st[j].index_block == s->smi[i];
		if (whole || state_map(rp, s->smi[i], counts))
			continue;
		for (uint64_t b = 1; b < s->nr_blocks; b++) {
			if (!counts[b] || s->idx[b] || (s->bitmap_ok[b / 8] & (1u << (b % 8))) ||
			    (known[b / 8] & (1u << (b % 8))))
				continue;
			if (!holes++)
				first = b;
		}
		if (holes) {
			found = s->smi[i];
			*nr_holes = holes;
			*first_hole = first;
		}
	}
	free(known);
	return found;
}

/*
 * Whether two states hold the same devices, details and mappings (their
 * trees may sit in different blocks: a commit may rewrite a node with the
 * same content).  Then it does not matter which of them is the live one.
 */
static int same_content(struct thin_repair *rp, const struct repair_state *a,
			const struct repair_state *b)
{
	struct snode *ta = repair_scan_node(&rp->scan, a->mroot), *tb = repair_scan_node(&rp->scan, b->mroot);
	struct table_walk t[4];
	int same = 0;

	if (!ta || !tb || ta->t.count != tb->t.count || ta->t.devs != tb->t.devs ||
	    ta->t.hash != tb->t.hash || !a->droot || !b->droot)
		return 0;
	memset(t, 0, sizeof(t));
	if (repair_read_table(rp, a->mroot, 0, &t[0]) < 0 || repair_read_table(rp, b->mroot, 0, &t[1]) < 0 ||
	    repair_read_table(rp, a->droot, 1, &t[2]) < 0 || repair_read_table(rp, b->droot, 1, &t[3]) < 0)
		goto out;
	if (t[0].damaged || t[1].damaged || t[2].damaged || t[3].damaged || t[0].nr != t[1].nr ||
	    t[2].nr != t[3].nr || t[0].nr != t[2].nr)
		goto out;
	for (size_t i = 0; i < t[2].nr; i++) {
		const struct thin_details *x = &t[2].devs[i].d, *y = &t[3].devs[i].d;

		if (t[2].devs[i].id != t[3].devs[i].id || x->mapped_blocks != y->mapped_blocks ||
		    x->transaction_id != y->transaction_id || x->creation_time != y->creation_time ||
		    x->snapshotted_time != y->snapshotted_time)
			goto out;
	}
	for (size_t i = 0; i < t[0].nr; i++) {
		struct kvs x = { 0 }, y = { 0 };
		int eq;

		if (t[0].devs[i].id != t[1].devs[i].id)
			goto out;
		if (t[0].devs[i].root == t[1].devs[i].root)
			continue;
		eq = repair_kvs_load(rp, t[0].devs[i].root, &x) == 0 &&
		     repair_kvs_load(rp, t[1].devs[i].root, &y) == 0 && !x.damaged && !y.damaged &&
		     x.n == y.n && (!x.n || !memcmp(x.kv, y.kv, x.n * sizeof(*x.kv)));
		repair_kvs_release(&x);
		repair_kvs_release(&y);
		if (!eq)
			goto out;
	}
	same = 1;
out:
	for (int i = 0; i < 4; i++)
		repair_table_release(&t[i]);
	return same;
}

/*
 * Superblock lost: picks the newest pool state.  Returns 0 (roots set,
 * rp->msm set to the state's map), -ENOENT (no state: fall back to the
 * tree candidates) or -EAGAIN with msg naming the candidates.
 */
int repair_find_state(struct thin_repair *rp, uint64_t *mroot, uint64_t *droot, char *msg,
		      size_t msglen)
{
	struct scan *s = &rp->scan;
	struct repair_state *st = NULL;
	uint8_t *counts = NULL;
	size_t nst = 0, pick = 0, tied = 0;
	int r = -ENOENT;

	if (!s->nr_smi)
		return -ENOENT;
	counts = malloc(s->nr_blocks ? s->nr_blocks : 1);
	if (!counts) {
		r = -ENOMEM;
		goto out;
	}
	r = repair_collect_states(rp, counts, &st, &nst);
	if (r < 0)
		goto out;
	r = repair_pick_state(st, nst, &pick, &tied);
	if (r == -EAGAIN) {
		int all = 1;

		for (size_t i = 0; i < nst && all; i++)
			if (!repair_state_newest_first(&st[i], &st[pick]))
				all = same_content(rp, &st[i], &st[pick]);
		if (all) {
			repair_note(&rp->notes, "%zu equally recent pool states hold the same devices and "
					     "mappings: either is the pool",
				 tied);
			r = 0;
		}
	}
	repair_note(&rp->notes, "found %zu metadata space maps, %zu describing a whole pool state",
		 s->nr_smi, nst);
	if (rp->o.set_mapping_root) {
		/* the user chose the mapping root: its state's details and map, if any */
		r = -ENOENT;
		for (size_t i = 0; i < nst && r; i++)
			if (st[i].mroot == rp->o.mapping_root &&
			    (!rp->o.set_details_root || st[i].droot == rp->o.details_root)) {
				pick = i;
				r = 0;
			}
		if (r)
			goto out;
	}
	if (!rp->o.set_mapping_root) {
		uint64_t holes = 0, first = 0;
		uint64_t ib = broken_state(rp, st, nst, counts, &holes, &first);

		if (ib) {
			size_t len;

			/* newest first */
			qsort(st, nst, sizeof(*st), repair_state_newest_first);
			len = (size_t)snprintf(msg, msglen,
					       "the space map at block %llu marks %llu unreadable "
					       "blocks in use (first %llu): its pool state is damaged and "
					       "may be newer than every whole one; choose with "
					       "--override-mapping-root and --override-details-root%s",
					       (unsigned long long)ib, (unsigned long long)holes,
					       (unsigned long long)first, nst ? ":" : "");
			for (size_t k = 0, shown = 0; k < nst && shown < 6 && len < msglen; k++) {
				struct snode *t = repair_scan_node(s, st[k].mroot);
				int dup = 0;

				for (size_t q = 0; q < k && !dup; q++)
					dup = st[q].mroot == st[k].mroot && st[q].droot == st[k].droot;
				if (dup)
					continue;
				len += (size_t)snprintf(msg + len, msglen - len,
							"%s mapping root %llu details root %llu "
							"(time %u, %llu devices, %llu mappings)",
							shown ? ";" : "",
							(unsigned long long)st[k].mroot,
							(unsigned long long)st[k].droot, st[k].time,
							(unsigned long long)t->t.devs,
							(unsigned long long)t->t.count);
				shown++;
			}
			r = -EAGAIN;
			goto out;
		}
	}
	if (r == -EAGAIN) {
		size_t len;

		/* newest first by position: only a hint (the allocator wraps and restarts) */
		len = (size_t)snprintf(msg, msglen,
				       "%zu pool states are equally recent and nothing on the disk "
				       "says which is the live one; choose with "
				       "--override-mapping-root and --override-details-root:",
				       tied);
		for (size_t k = 0, shown = 0; k < nst && shown < 6 && len < msglen; k++) {
			size_t j = nst - 1 - k;
			int dup = 0;

			if (st[j].time != st[pick].time || st[j].tid != st[pick].tid ||
			    st[j].dtime != st[pick].dtime)
				continue;
			for (size_t q = j + 1; q < nst && !dup; q++)
				dup = st[q].mroot == st[j].mroot && st[q].droot == st[j].droot;
			if (dup)
				continue;
			struct snode *t = repair_scan_node(s, st[j].mroot);
			len += (size_t)snprintf(msg + len, msglen - len,
						"%s mapping root %llu details root %llu (%llu devices, "
						"%llu mappings)",
						shown ? ";" : "", (unsigned long long)st[j].mroot,
						(unsigned long long)st[j].droot,
						(unsigned long long)t->t.devs,
						(unsigned long long)t->t.count);
			shown++;
		}
		goto out;
	}
	if (r < 0)
		goto out;
	*mroot = st[pick].mroot;
	*droot = st[pick].droot;
	for (size_t i = 0; i < s->nr; i++)
		if (s->n[i].t.state == S_VALID && s->n[i].t.time > rp->max_time_seen)
			rp->max_time_seen = s->n[i].t.time;
	if (repair_scan_node(s, *mroot)->t.max_data > rp->max_data_seen)
		rp->max_data_seen = repair_scan_node(s, *mroot)->t.max_data;
	/* the state's map: liveness for the walks, counts for salvage */
	if (state_map(rp, st[pick].index_block, counts) == 0) {
		rp->msm = rcmap_create(s->nr_blocks);
		if (!rp->msm) {
			r = -ENOMEM;
			goto out;
		}
		for (uint64_t b = 0; b < s->nr_blocks; b++)
			if (counts[b])
				rcmap_set(rp->msm, b, counts[b]);
	}
	repair_note(&rp->notes, "%s pool state: space-map index %llu, mapping root %llu, details "
			     "root %llu",
		 rp->o.set_mapping_root ? "chosen" : "newest",
		 (unsigned long long)st[pick].index_block, (unsigned long long)*mroot,
		 (unsigned long long)*droot);
out:
	free(counts);
	free(st);
	return r;
}
