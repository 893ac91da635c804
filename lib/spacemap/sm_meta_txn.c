/*
 * The metadata space map in a transaction (sm_txn.h).  Counts live in an
 * in-core map for the whole device; the committed counts are kept beside
 * them, because a block may only be handed out when it is free in both.
 */
#include "spacemap/sm_txn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree/btree_edit.h"
#include "util/u64map.h"

struct sm_meta {
	struct tm_txn *tm;
	uint64_t nr_blocks, cap;
	uint64_t nr_allocated;
	struct rcmap *cur, *old;
	uint64_t cursor;                 /* allocation search start */
	struct sm_index_entry entries[SM_MAX_METADATA_BITMAPS];
	uint8_t dirty[SM_MAX_METADATA_BITMAPS];
	uint8_t is_new[SM_MAX_METADATA_BITMAPS];   /* bitmap block allocated in this transaction */
	uint64_t index_loc;
	int index_new;
	uint64_t ovf_root;
	struct u64map ovf_pending;       /* blocks whose count is or was >= 3 */
	uint8_t *vals;                   /* encode buffer */
};

void sm_bitmap_encode(void *block, const uint8_t *vals, unsigned n, struct sm_index_entry *ie)
{
	uint8_t *words = (uint8_t *)block + sizeof(struct disk_bitmap_header);
	uint32_t nonzero = 0, first_free = SM_ENTRIES_PER_BITMAP;

	memset(words, 0, MD_BLOCK_SIZE - sizeof(struct disk_bitmap_header));
	for (unsigned w = 0; w * 32 < n; w++) {
		unsigned lim = n - w * 32 < 32 ? n - w * 32 : 32;
		uint64_t word = 0;

		for (unsigned k = 0; k < lim; k++) {
			unsigned v = vals[w * 32 + k];

			if (!v) {
				if (first_free == SM_ENTRIES_PER_BITMAP)
					first_free = w * 32 + k;
				continue;
			}
			nonzero++;
			word |= (uint64_t)(v >> 1) << (2 * k);
			word |= (uint64_t)(v & 1) << (2 * k + 1);
		}
		put_le64(words + 8 * w, word);
	}
	if (first_free == SM_ENTRIES_PER_BITMAP && n < SM_ENTRIES_PER_BITMAP)
		first_free = n;
	ie->nr_free = SM_ENTRIES_PER_BITMAP - nonzero;
	ie->none_free_before = first_free;
}

static unsigned in_range(uint64_t nr_blocks, uint64_t i)
{
	uint64_t base = i * SM_ENTRIES_PER_BITMAP;

	return nr_blocks - base < SM_ENTRIES_PER_BITMAP ? (unsigned)(nr_blocks - base)
							: SM_ENTRIES_PER_BITMAP;
}

/*----------------------------------------------------------------*/
/* the tm's view */

static void mark(struct sm_meta *sm, uint64_t b, uint32_t before, uint32_t after)
{
	sm->dirty[b / SM_ENTRIES_PER_BITMAP] = 1;
	if (!before && after)
		sm->nr_allocated++;
	else if (before && !after)
		sm->nr_allocated--;
}

static int set_count(struct sm_meta *sm, uint64_t b, uint32_t after)
{
	uint32_t before;
	int r;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	before = rcmap_get(sm->cur, b);
	if (before == after)
		return 0;
	if (before >= 3 || after >= 3) {
		r = u64map_put(&sm->ovf_pending, b, 0);
		if (r < 0)
			return r;
	}
	r = rcmap_set(sm->cur, b, after);
	if (r < 0)
		return r;
	mark(sm, b, before, after);
	return 0;
}

static int op_get_count(void *ctx, uint64_t b, uint32_t *count)
{
	struct sm_meta *sm = ctx;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	*count = rcmap_get(sm->cur, b);
	return 0;
}

static int op_inc(void *ctx, uint64_t b)
{
	struct sm_meta *sm = ctx;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	return set_count(sm, b, rcmap_get(sm->cur, b) + 1);
}

static int op_dec(void *ctx, uint64_t b)
{
	struct sm_meta *sm = ctx;
	uint32_t c;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	c = rcmap_get(sm->cur, b);
	if (!c)
		return -EILSEQ;   /* below zero: the references do not add up */
	return set_count(sm, b, c - 1);
}

static int find_free(struct sm_meta *sm, uint64_t from, uint64_t to, uint64_t *out)
{
	for (uint64_t b = from; b < to; b++)
		if (!rcmap_get(sm->cur, b) && !rcmap_get(sm->old, b)) {
			*out = b;
			return 1;
		}
	return 0;
}

static int op_new_block(void *ctx, uint64_t *out)
{
	struct sm_meta *sm = ctx;
	uint64_t b;
	int r;

	if (sm->cursor >= sm->nr_blocks)
		sm->cursor = 0;
	if (!find_free(sm, sm->cursor, sm->nr_blocks, &b) && !find_free(sm, 0, sm->cursor, &b))
		return -ENOSPC;
	r = set_count(sm, b, 1);
	if (r < 0)
		return r;
	sm->cursor = b + 1;
	*out = b;
	return 0;
}

static int new_block(struct sm_meta *sm, const struct bc_validator *v, uint64_t *b);

static const struct tm_sm_ops meta_ops = {
	.get_count = op_get_count,
	.inc = op_inc,
	.dec = op_dec,
	.new_block = op_new_block,
};

/*----------------------------------------------------------------*/
/* loading */

static const struct bt_value_type ovf_vt = { .size = SM_OVERFLOW_VSIZE };

/* A bitmap entry of 3 whose count the overflow tree has not given yet. */
#define UNRESOLVED UINT32_MAX

struct ovf_load {
	struct sm_meta *sm;
	int bad;
};

static int ovf_entry(void *ctx, uint64_t b, const void *value_le)
{
	struct ovf_load *l = ctx;
	uint32_t c = get_le32(value_le);

	/* only entries whose bitmap value is 3 count (the kernel ignores the rest) */
	if (b < l->sm->nr_blocks && rcmap_get(l->sm->cur, b) == UNRESOLVED) {
		if (c < 3) {
			l->bad = 1;
			return 0;
		}
		rcmap_set(l->sm->cur, b, c);
		rcmap_set(l->sm->old, b, c);
	}
	return 0;
}

static int load_bitmaps(struct sm_meta *sm, uint64_t nb, uint8_t *dec)
{
	for (uint64_t i = 0; i < nb; i++) {
		unsigned n = in_range(sm->nr_blocks, i);
		uint64_t base = i * SM_ENTRIES_PER_BITMAP;
		struct tm_block blk;
		int r;

		if (!sm->entries[i].blocknr)
			return -EILSEQ;
		r = tm_txn_read_lock(sm->tm, sm->entries[i].blocknr, &sm_bitmap_validator, &blk);
		if (r < 0)
			return r;
		sm_bitmap_decode(blk.data, n, dec);
		tm_txn_unlock(sm->tm, &blk);
		for (unsigned j = 0; j < n; j++) {
			uint32_t v = dec[j] == 3 ? UNRESOLVED : dec[j];

			if (!v)
				continue;
			r = rcmap_set(sm->cur, base + j, v);
			if (r >= 0)
				r = rcmap_set(sm->old, base + j, v);
			if (r < 0)
				return r;
			sm->nr_allocated++;
		}
	}
	return 0;
}

static int load_index(struct sm_meta *sm, uint64_t nb)
{
	const struct disk_metadata_index *mi;
	struct tm_block blk;
	int r = tm_txn_read_lock(sm->tm, sm->index_loc, &sm_index_validator, &blk);

	if (r < 0)
		return r;
	mi = blk.data;
	for (uint64_t i = 0; i < nb; i++) {
		sm->entries[i].blocknr = le64_to_cpu(mi->index[i].blocknr);
		sm->entries[i].nr_free = le32_to_cpu(mi->index[i].nr_free);
		sm->entries[i].none_free_before = le32_to_cpu(mi->index[i].none_free_before);
	}
	tm_txn_unlock(sm->tm, &blk);
	return 0;
}

static int check_overflow(struct sm_meta *sm)
{
	for (uint64_t b = 0; b < sm->nr_blocks; b++)
		if (rcmap_get(sm->cur, b) == UNRESOLVED)
			return -EILSEQ;   /* a 3 in the bitmap and no count in the tree */
	return 0;
}

int sm_meta_open(struct tm_txn *tm, const struct sm_disk_info *info, uint64_t max_blocks,
		 struct sm_meta **out)
{
	struct sm_meta *sm;
	uint64_t nb = sm_nr_bitmaps(info->nr_blocks);
	uint8_t *dec = NULL;
	int r = -ENOMEM;

	if (!info->nr_blocks || info->nr_blocks > SM_MAX_METADATA_BLOCKS)
		return -EINVAL;
	if (max_blocks < info->nr_blocks)
		max_blocks = info->nr_blocks;
	if (max_blocks > SM_MAX_METADATA_BLOCKS)
		max_blocks = SM_MAX_METADATA_BLOCKS;
	sm = calloc(1, sizeof(*sm));
	if (!sm)
		return -ENOMEM;
	sm->tm = tm;
	sm->nr_blocks = info->nr_blocks;
	sm->cap = max_blocks;
	sm->index_loc = info->bitmap_root;
	sm->ovf_root = info->ref_count_root;
	u64map_init(&sm->ovf_pending);
	sm->cur = rcmap_create(max_blocks);
	sm->old = rcmap_create(max_blocks);
	sm->vals = malloc(SM_ENTRIES_PER_BITMAP);
	dec = malloc(SM_ENTRIES_PER_BITMAP);
	if (!sm->cur || !sm->old || !sm->vals || !dec)
		goto bad;
	tm_txn_set_sm(tm, &meta_ops, sm);
	r = load_index(sm, nb);
	if (r >= 0)
		r = load_bitmaps(sm, nb, dec);
	if (r >= 0) {
		struct bt_tree t = { tm, ovf_vt };
		struct ovf_load l = { sm, 0 };

		r = bt_tree_walk(&t, sm->ovf_root, ovf_entry, &l);
		if (r >= 0 && l.bad)
			r = -EILSEQ;
	}
	if (r >= 0)
		r = check_overflow(sm);
	if (r < 0)
		goto bad;
	free(dec);
	*out = sm;
	return 0;
bad:
	free(dec);
	sm_meta_destroy(sm);
	return r;
}

void sm_meta_destroy(struct sm_meta *sm)
{
	if (!sm)
		return;
	rcmap_destroy(sm->cur);
	rcmap_destroy(sm->old);
	u64map_release(&sm->ovf_pending);
	free(sm->vals);
	free(sm);
}

/*----------------------------------------------------------------*/

uint64_t sm_meta_nr_blocks(const struct sm_meta *sm)
{
	return sm->nr_blocks;
}

uint64_t sm_meta_nr_allocated(const struct sm_meta *sm)
{
	return sm->nr_allocated;
}

uint64_t sm_meta_nr_allocatable(const struct sm_meta *sm)
{
	uint64_t n = 0;

	for (uint64_t b = 0; b < sm->nr_blocks; b++)
		n += !rcmap_get(sm->cur, b) && !rcmap_get(sm->old, b);
	return n;
}

uint32_t sm_meta_count(const struct sm_meta *sm, uint64_t b)
{
	return b < sm->nr_blocks ? rcmap_get(sm->cur, b) : 0;
}

int sm_meta_set_count(struct sm_meta *sm, uint64_t b, uint32_t count)
{
	return set_count(sm, b, count);
}

int sm_meta_touch_bitmap(struct sm_meta *sm, uint64_t i)
{
	if (i >= sm_nr_bitmaps(sm->nr_blocks))
		return -EINVAL;
	sm->dirty[i] = 1;
	return 0;
}

int sm_meta_extend(struct sm_meta *sm, uint64_t nr_blocks)
{
	uint64_t old_nb = sm_nr_bitmaps(sm->nr_blocks), nb = sm_nr_bitmaps(nr_blocks);

	if (nr_blocks < sm->nr_blocks)
		return -EINVAL;
	if (nr_blocks > sm->cap)
		return -ENOSPC;
	/* the new bitmaps come from the new area, as the kernel's bootstrap allocator does */
	sm->cursor = sm->nr_blocks;
	sm->nr_blocks = nr_blocks;
	for (uint64_t i = old_nb; i < nb; i++) {
		uint64_t b;
		int r = new_block(sm, &sm_bitmap_validator, &b);

		if (r < 0)
			return r;
		sm->entries[i].blocknr = b;
		sm->entries[i].nr_free = SM_ENTRIES_PER_BITMAP;
		sm->entries[i].none_free_before = 0;
		sm->is_new[i] = 1;
		sm->dirty[i] = 1;
	}
	return 0;
}

/*----------------------------------------------------------------*/
/* commit */

/* Brings the overflow tree in line with the counts of the pending blocks. */
static int update_overflow(struct sm_meta *sm, int *progress)
{
	struct bt_tree t = { sm->tm, ovf_vt };
	uint64_t *keys;
	size_t nr;
	int r = u64map_sorted_keys(&sm->ovf_pending, &keys, &nr);

	if (r < 0)
		return r;
	u64map_clear(&sm->ovf_pending);
	for (size_t k = 0; k < nr && r >= 0; k++) {
		uint32_t c = rcmap_get(sm->cur, keys[k]);

		*progress = 1;
		if (c >= 3) {
			le32 v = cpu_to_le32(c);
			r = bt_tree_insert(&t, sm->ovf_root, keys[k], &v, &sm->ovf_root, NULL);
		} else {
			r = bt_tree_remove(&t, sm->ovf_root, keys[k], &sm->ovf_root);
			if (r == -ENODATA)
				r = 0;
		}
	}
	free(keys);
	return r;
}

/* A block for the space map itself, through the tm (which calls back into op_new_block). */
static int new_block(struct sm_meta *sm, const struct bc_validator *v, uint64_t *b)
{
	struct tm_block blk;
	int r = tm_txn_new_block(sm->tm, v, &blk);

	if (r < 0)
		return r;
	*b = blk.loc;
	return 0;
}

/* Shadows the changed bitmaps and the index block (once each). */
static int shadow_changed(struct sm_meta *sm, int *progress)
{
	uint64_t nb = sm_nr_bitmaps(sm->nr_blocks), b;
	int r;

	for (uint64_t i = 0; i < nb; i++) {
		if (!sm->dirty[i] || sm->is_new[i])
			continue;
		r = new_block(sm, &sm_bitmap_validator, &b);
		if (r < 0)
			return r;
		r = op_dec(sm, sm->entries[i].blocknr);
		if (r < 0)
			return r;
		sm->entries[i].blocknr = b;
		sm->is_new[i] = 1;
		*progress = 1;
	}
	if (!sm->index_new) {
		r = new_block(sm, &sm_index_validator, &b);
		if (r < 0)
			return r;
		r = op_dec(sm, sm->index_loc);
		if (r < 0)
			return r;
		sm->index_loc = b;
		sm->index_new = 1;
		*progress = 1;
	}
	return 0;
}

/* Gives a block allocated by this space map its tm buffer (zeroed, write locked). */
static int own_block(struct sm_meta *sm, uint64_t b, const struct bc_validator *v,
		     struct tm_block *out)
{
	int inc, r = tm_txn_shadow(sm->tm, b, v, out, &inc);

	if (r < 0)
		return r;
	if (out->loc != b)
		return -EINVAL;
	memset(out->data, 0, MD_BLOCK_SIZE);
	return 0;
}

static int write_bitmaps(struct sm_meta *sm)
{
	uint64_t nb = sm_nr_bitmaps(sm->nr_blocks);

	for (uint64_t i = 0; i < nb; i++) {
		uint64_t base = i * SM_ENTRIES_PER_BITMAP;
		unsigned n = in_range(sm->nr_blocks, i);
		uint8_t c[SM_ENTRIES_PER_BITMAP];
		struct tm_block blk;
		int r;

		if (!sm->dirty[i])
			continue;
		rcmap_get_counts8(sm->cur, base, n, c);
		for (unsigned j = 0; j < n; j++)
			sm->vals[j] = c[j] > 3 ? 3 : c[j];
		r = own_block(sm, sm->entries[i].blocknr, &sm_bitmap_validator, &blk);
		if (r < 0)
			return r;
		sm_bitmap_encode(blk.data, sm->vals, n, &sm->entries[i]);
	}
	return 0;
}

static int write_index(struct sm_meta *sm)
{
	uint64_t nb = sm_nr_bitmaps(sm->nr_blocks);
	struct disk_metadata_index *mi;
	struct tm_block blk;
	int r = own_block(sm, sm->index_loc, &sm_index_validator, &blk);

	if (r < 0)
		return r;
	mi = blk.data;
	for (uint64_t i = 0; i < nb; i++) {
		mi->index[i].blocknr = cpu_to_le64(sm->entries[i].blocknr);
		mi->index[i].nr_free = cpu_to_le32(sm->entries[i].nr_free);
		mi->index[i].none_free_before = cpu_to_le32(sm->entries[i].none_free_before);
	}
	return 0;
}

int sm_meta_commit(struct sm_meta *sm, struct sm_disk_info *root)
{
	int progress, r;

	/* every change made here is counted here: go on until nothing changes */
	for (int pass = 0;; pass++) {
		if (pass > 64)
			return -ELOOP;
		progress = 0;
		r = update_overflow(sm, &progress);
		if (r >= 0)
			r = shadow_changed(sm, &progress);
		if (r < 0)
			return r;
		if (!progress)
			break;
	}
	r = write_bitmaps(sm);
	if (r >= 0)
		r = write_index(sm);
	if (r < 0)
		return r;
	memset(root, 0, sizeof(*root));
	root->kind = SM_METADATA;
	root->nr_blocks = sm->nr_blocks;
	root->nr_allocated = sm->nr_allocated;
	root->bitmap_root = sm->index_loc;
	root->ref_count_root = sm->ovf_root;
	return 0;
}

void sm_meta_begin(struct sm_meta *sm)
{
	uint64_t nb = sm_nr_bitmaps(sm->nr_blocks);

	for (uint64_t i = 0; i < nb; i++) {
		uint64_t base = i * SM_ENTRIES_PER_BITMAP;
		unsigned n = in_range(sm->nr_blocks, i);

		if (!sm->dirty[i])
			continue;
		for (unsigned j = 0; j < n; j++)
			rcmap_set(sm->old, base + j, rcmap_get(sm->cur, base + j));
		sm->dirty[i] = 0;
		sm->is_new[i] = 0;
	}
	sm->index_new = 0;
	u64map_clear(&sm->ovf_pending);
}
