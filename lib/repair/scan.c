#include "repair/repair.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "io/stream.h"
#include "crc/crc32c.h"
#include "spacemap/spacemap.h"
#include "repair/repair-internal.h"

/*----------------------------------------------------------------*/
/* Scan table: every checksum-valid B-tree node */


static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

struct snode *repair_scan_node(struct scan *s, uint64_t b)
{
	if (b >= s->nr_blocks || !s->idx[b])
		return NULL;
	return &s->n[s->idx[b] - 1];
}

static int scan_add(struct scan *s, const uint8_t *data, uint64_t b)
{
	struct bt_node n;
	struct snode *sn;
	int keep_entries;

	bt_node_view(data, &n);
	if (repair_grow((void **)&s->n, &s->cap, s->nr, sizeof(*s->n)))
		return -ENOMEM;
	sn = &s->n[s->nr];
	memset(sn, 0, sizeof(*sn));
	sn->block = b;
	sn->nr = n.nr_entries;
	sn->flags = (uint8_t)n.flags;
	sn->vsize = (uint8_t)n.value_size;
	sn->ent = UINT32_MAX;
	if (n.nr_entries) {
		sn->first = bt_key(&n, 0);
		sn->last = bt_key(&n, n.nr_entries - 1);
	}
	for (uint32_t i = 0; i < n.nr_entries; i++)
		sn->hash += mix64(bt_key(&n, i));
	keep_entries = !bt_is_leaf(&n);
	if (bt_is_leaf(&n) && n.value_size == THIN_MAPPING_VSIZE) {
		int top = n.nr_entries > 0 && sn->last <= THIN_MAX_DEV_ID;

		for (uint32_t i = 0; i < n.nr_entries; i++) {
			uint64_t v = get_le64(bt_value(&n, i));
			uint32_t t = thin_bt_time(v);

			if (v >= s->nr_blocks)
				top = 0;
			if (t > sn->max_time)
				sn->max_time = t;
			if (thin_bt_block(v) > sn->max_data)
				sn->max_data = thin_bt_block(v);
		}
		sn->looks_top = (uint8_t)top;
		keep_entries = top;
	} else if (bt_is_leaf(&n) && n.value_size == SM_INDEX_ENTRY_SIZE) {
		keep_entries = 1;   /* data-sm index leaf: the values name bitmap blocks */
	} else if (bt_is_leaf(&n) && n.value_size == THIN_DETAILS_VSIZE) {
		for (uint32_t i = 0; i < n.nr_entries; i++) {
			struct thin_details d;

			thin_details_unpack(bt_value(&n, i), &d);
			sn->sum += d.mapped_blocks;
			if (d.transaction_id > sn->max_data)
				sn->max_data = d.transaction_id;
			if (d.creation_time > sn->max_time)
				sn->max_time = d.creation_time;
			if (d.snapshotted_time > sn->max_time)
				sn->max_time = d.snapshotted_time;
		}
	}
	if (keep_entries) {
		while (s->pool_nr + 2 * (size_t)n.nr_entries > s->pool_cap) {
			size_t c = s->pool_cap ? s->pool_cap * 2 : 4096;
			uint64_t *np = realloc(s->pool, c * sizeof(*np));
			if (!np)
				return -ENOMEM;
			s->pool = np;
			s->pool_cap = c;
		}
		sn->ent = (uint32_t)(s->pool_nr / 2);
		for (uint32_t i = 0; i < n.nr_entries; i++) {
			s->pool[s->pool_nr++] = bt_key(&n, i);
			s->pool[s->pool_nr++] = get_le64(bt_value(&n, i));
		}
	}
	s->nr++;
	s->idx[b] = (uint32_t)s->nr;
	return 0;
}

/* Space-map index and bitmap blocks, superblock copies. */
static int scan_other(struct scan *s, const uint8_t *d, uint64_t b)
{
	uint32_t salt = crc_block_salt(d, MD_BLOCK_SIZE);

	if (salt == BITMAP_CSUM_XOR) {
		s->bitmap_ok[b / 8] |= (uint8_t)(1u << (b % 8));
	} else if (salt == INDEX_CSUM_XOR) {
		if (repair_grow((void **)&s->smi, &s->cap_smi, s->nr_smi, sizeof(*s->smi)))
			return -ENOMEM;
		s->smi[s->nr_smi++] = b;
	} else if (salt == SUPERBLOCK_CSUM_XOR) {
		struct thin_sb sb;

		thin_sb_unpack((const struct disk_superblock *)d, &sb);
		if (sb.magic != THIN_MAGIC)
			return 0;
		if (repair_grow((void **)&s->sbc, &s->cap_sbc, s->nr_sbc, sizeof(*s->sbc)))
			return -ENOMEM;
		s->sbc[s->nr_sbc].block = b;
		s->sbc[s->nr_sbc].mroot = sb.data_mapping_root;
		s->sbc[s->nr_sbc].droot = sb.device_details_root;
		s->nr_sbc++;
	}
	return 0;
}

#define SCAN_CHUNK 256u   /* blocks per read (1 MiB) */
#define SCAN_DEPTH 4u     /* reads ahead of the decoding */

static int scan_block(struct scan *s, const uint8_t *d, uint64_t b)
{
	uint32_t flags = get_le32(d + 4);

	/* cheap header tests before the checksum */
	if (get_le64(d + 8) != b || !b)
		return 0;
	/* the kernel writes every block with its own number at offset 8 */
	repair_bit_set(s->sig, b);
	s->high_sig = b;
	if (flags == BT_LEAF_NODE || flags == BT_INTERNAL_NODE)
		return bt_node_check_raw(d, b, NULL) == 0 ? scan_add(s, d, b) : 0;
	return scan_other(s, d, b);
}

int repair_scan_run(struct ioe *e, uint64_t nr_blocks, struct scan *s)
{
	struct ioe_stream *st = NULL;
	struct ioe_chunk c;
	int r;

	memset(s, 0, sizeof(*s));
	s->nr_blocks = nr_blocks;
	s->idx = calloc(nr_blocks ? nr_blocks : 1, sizeof(*s->idx));
	s->bitmap_ok = calloc(nr_blocks / 8 + 1, 1);
	s->sig = calloc(nr_blocks / 8 + 1, 1);
	s->ioerr = calloc(nr_blocks / 8 + 1, 1);
	if (!s->idx || !s->bitmap_ok || !s->sig || !s->ioerr)
		return -ENOMEM;
	r = ioe_stream_open(e, 0, nr_blocks, SCAN_CHUNK, SCAN_DEPTH, &st);
	while (!r && (r = ioe_stream_next(st, &c)) == 0) {
		for (unsigned i = 0; i < c.nr && !r; i++) {
			uint64_t b = c.block + i;

			if (c.bad && (c.bad[i / 8] & (1u << (i % 8)))) {
				/* a bad sector */
				repair_bit_set(s->ioerr, b);
				s->high_sig = b;
				continue;
			}
			r = scan_block(s, c.data + (size_t)i * MD_BLOCK_SIZE, b);
		}
	}
	ioe_stream_close(st);
	return r < 0 ? r : 0;
}

void repair_scan_release(struct scan *s)
{
	free(s->n);
	free(s->pool);
	free(s->idx);
	free(s->smi);
	free(s->bitmap_ok);
	free(s->sig);
	free(s->ioerr);
	free(s->sbc);
	memset(s, 0, sizeof(*s));
}

/*----------------------------------------------------------------*/
/* Tree summaries over the scan table (memoised) */


/*
 * The highest key of a tree whose summary is valid: the last key of its
 * rightmost leaf (every child of a valid internal node is in the scan).
 */
static uint64_t summ_hi(struct scan *s, const struct snode *n)
{
	for (int level = 0; n->flags != BT_LEAF_NODE && level <= BT_MAX_DEPTH; level++) {
		const struct snode *ch = repair_scan_node(s, s->pool[2 * ((size_t)n->ent + n->nr - 1) + 1]);

		if (!ch)
			break;
		n = ch;
	}
	return n->last;
}

static int is_free(const struct summ_ctx *c, uint64_t b)
{
	return c->msm && b < rcmap_nr_blocks(c->msm) && rcmap_get(c->msm, b) == 0;
}

static int summ_leaf(struct summ_ctx *c, struct snode *n, enum tkind k, struct summ *sm, int level)
{
	switch (k) {
	case K_MAP:
		if (n->vsize != THIN_MAPPING_VSIZE)
			return -1;
		sm->count = n->nr;
		sm->max_data = n->max_data;
		sm->time = n->max_time;
		return 0;
	case K_DETAILS:
		if (n->vsize != THIN_DETAILS_VSIZE)
			return -1;
		sm->count = n->sum;
		sm->devs = n->nr;
		sm->hash = n->hash;
		sm->max_data = n->max_data;
		sm->time = n->max_time;
		return 0;
	case K_TOP:
		if (n->vsize != THIN_MAPPING_VSIZE || !n->looks_top)
			return -1;
		sm->devs = n->nr;
		sm->hash = n->hash;
		for (uint32_t i = 0; i < n->nr; i++) {
			struct snode *ch = repair_scan_node(c->s, c->s->pool[2 * ((size_t)n->ent + i) + 1]);
			const struct summ *cs;

			if (!ch)
				return -1;
			cs = repair_summarise(c, ch, K_MAP, level + 1);
			if (cs->state != S_VALID)
				return -1;
			sm->count += cs->count;
			sm->any_free |= cs->any_free;
			if (cs->max_data > sm->max_data)
				sm->max_data = cs->max_data;
			if (cs->time > sm->time)
				sm->time = cs->time;
		}
		return 0;
	}
	return -1;
}

static int summ_internal(struct summ_ctx *c, struct snode *n, enum tkind k, struct summ *sm,
			 int level)
{
	int depth = -1;

	if (n->vsize != 8 || !n->nr || n->ent == UINT32_MAX)
		return -1;
	for (uint32_t i = 0; i < n->nr; i++) {
		uint64_t key = c->s->pool[2 * ((size_t)n->ent + i)];
		struct snode *ch = repair_scan_node(c->s, c->s->pool[2 * ((size_t)n->ent + i) + 1]);
		const struct summ *cs;

		if (!ch || ch == n || !ch->nr)
			return -1;
		cs = repair_summarise(c, ch, k, level + 1);
		if (cs->state != S_VALID)
			return -1;
		if (depth >= 0 && cs->depth != depth)
			return -1;
		depth = cs->depth;
		if (ch->first < key)
			return -1;
		if (i + 1 < n->nr && summ_hi(c->s, ch) >= c->s->pool[2 * ((size_t)n->ent + i + 1)])
			return -1;
		sm->count += cs->count;
		sm->devs += cs->devs;
		sm->hash += cs->hash;
		sm->any_free |= cs->any_free;
		if (cs->max_data > sm->max_data)
			sm->max_data = cs->max_data;
		if (cs->time > sm->time)
			sm->time = cs->time;
	}
	sm->depth = (uint8_t)(depth + 1);
	/* children belong to this tree: they are not roots */
	for (uint32_t i = 0; i < n->nr; i++) {
		struct snode *ch = repair_scan_node(c->s, c->s->pool[2 * ((size_t)n->ent + i) + 1]);
		if (k == K_MAP)
			ch->m_ref = 1;
		else if (k == K_TOP)
			ch->t_ref = 1;
		else if (k == K_DETAILS)
			ch->d_ref = 1;
	}
	return 0;
}

static void msumm_load(struct summ *sm, const struct msumm *m)
{
	memset(sm, 0, sizeof(*sm));
	sm->count = m->count;
	sm->max_data = m->max_data;
	sm->time = m->time;
	sm->state = m->state;
	sm->depth = m->depth;
	sm->any_free = m->any_free;
}

static void msumm_store(struct msumm *m, const struct summ *sm)
{
	m->count = sm->count;
	m->max_data = sm->max_data;
	m->time = sm->time;
	m->state = sm->state;
	m->depth = sm->depth;
	m->any_free = sm->any_free;
}

/*
 * Memoised: each node is summarised once per kind.  A mapping tree's
 * summary is kept narrower (struct msumm) and returned through c->mapping,
 * valid until the next call.
 */
static void summ_compute(struct summ_ctx *c, struct snode *n, enum tkind k, struct summ *sm,
			 int level)
{
	int r;

	sm->any_free = (uint8_t)is_free(c, n->block);
	r = n->flags == BT_LEAF_NODE ? summ_leaf(c, n, k, sm, level)
				     : summ_internal(c, n, k, sm, level);
	sm->state = r ? S_INVALID : S_VALID;
}

const struct summ *repair_summarise(struct summ_ctx *c, struct snode *n, enum tkind k, int level)
{
	static const struct summ invalid = { .state = S_INVALID };
	struct summ *sm;

	if (k == K_MAP) {
		struct summ local;

		if (n->m.state == S_VALID || n->m.state == S_INVALID) {
			msumm_load(&c->mapping, &n->m);
			return &c->mapping;
		}
		if (n->m.state == S_BUSY || level > BT_MAX_DEPTH)
			return &invalid;   /* a cycle */
		n->m.state = S_BUSY;
		memset(&local, 0, sizeof(local));
		summ_compute(c, n, k, &local, level);
		msumm_store(&n->m, &local);
		c->mapping = local;
		return &c->mapping;
	}
	sm = k == K_TOP ? &n->t : &n->d;
	if (sm->state == S_VALID || sm->state == S_INVALID)
		return sm;
	if (sm->state == S_BUSY || level > BT_MAX_DEPTH)
		return &invalid;   /* a cycle */
	sm->state = S_BUSY;
	summ_compute(c, n, k, sm, level);
	return sm;
}
