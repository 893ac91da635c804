/*
 * The data space map in a transaction (sm_txn.h).  A data pool can have
 * billions of blocks, so bitmaps are read when first used: each keeps its
 * current counts (0..2, 3 = see big[]) and the committed bitmap block (to
 * tell which blocks are free in the committed state, and which have an
 * overflow entry).  The overflow counts of a bitmap are read with one walk
 * of the overflow tree over its range, when the first of them is needed.
 */
#include "spacemap/sm_txn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree/btree_edit.h"
#include "util/u64map.h"

#define PENDING_WORDS ((SM_ENTRIES_PER_BITMAP + 63) / 64)

struct dbm {
	uint64_t index;
	uint8_t cnt[SM_ENTRIES_PER_BITMAP];
	uint8_t *old;                /* the bitmap as committed (or as extend made it) */
	uint32_t *big;               /* exact counts of entries of 3 (NULL: not read yet) */
	uint64_t pending[PENDING_WORDS];   /* entries whose count is or was >= 3 */
	int dirty, any_pending;
};

struct sm_data {
	struct tm_txn *tm;
	uint64_t nr_blocks, nr_allocated;
	uint64_t index_root, ovf_root;
	struct sm_index_entry *entries;
	uint64_t nr_entries, cap_entries;
	struct u64map loaded;        /* bitmap index -> struct dbm * */
	struct dbm *last;            /* the last one used */
	uint64_t cursor;
};

static const struct bt_value_type index_vt = { .size = SM_INDEX_ENTRY_SIZE };
static const struct bt_value_type ovf_vt = { .size = SM_OVERFLOW_VSIZE };

static unsigned in_range(uint64_t nr_blocks, uint64_t i)
{
	uint64_t base = i * SM_ENTRIES_PER_BITMAP;

	return nr_blocks - base < SM_ENTRIES_PER_BITMAP ? (unsigned)(nr_blocks - base)
							: SM_ENTRIES_PER_BITMAP;
}

static int grow_entries(struct sm_data *sm, uint64_t nr)
{
	struct sm_index_entry *e;
	uint64_t cap = sm->cap_entries ? sm->cap_entries : 16;

	if (nr <= sm->cap_entries)
		return 0;
	while (cap < nr)
		cap *= 2;
	e = realloc(sm->entries, cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	memset(e + sm->cap_entries, 0, (cap - sm->cap_entries) * sizeof(*e));
	sm->entries = e;
	sm->cap_entries = cap;
	return 0;
}

struct index_load {
	struct sm_data *sm;
	uint64_t next;
};

static int index_entry(void *ctx, uint64_t key, const void *value_le)
{
	struct index_load *l = ctx;
	const struct disk_index_entry *ie = value_le;

	if (key != l->next || key >= l->sm->nr_entries)
		return -EILSEQ;
	l->sm->entries[key].blocknr = le64_to_cpu(ie->blocknr);
	l->sm->entries[key].nr_free = le32_to_cpu(ie->nr_free);
	l->sm->entries[key].none_free_before = le32_to_cpu(ie->none_free_before);
	l->next++;
	return 0;
}

int sm_data_open(struct tm_txn *tm, const struct sm_disk_info *info, struct sm_data **out)
{
	struct sm_data *sm = calloc(1, sizeof(*sm));
	struct bt_tree t = { tm, index_vt };
	struct index_load l = { sm, 0 };
	int r;

	if (!sm)
		return -ENOMEM;
	sm->tm = tm;
	sm->nr_blocks = info->nr_blocks;
	sm->nr_allocated = info->nr_allocated;
	sm->index_root = info->bitmap_root;
	sm->ovf_root = info->ref_count_root;
	sm->nr_entries = sm_nr_bitmaps(info->nr_blocks);
	u64map_init(&sm->loaded);
	r = grow_entries(sm, sm->nr_entries + 1);
	if (r >= 0)
		r = bt_tree_walk(&t, sm->index_root, index_entry, &l);
	if (r >= 0 && l.next != sm->nr_entries)
		r = -EILSEQ;
	if (r < 0) {
		sm_data_destroy(sm);
		return r;
	}
	*out = sm;
	return 0;
}

static void drop_loaded(struct sm_data *sm)
{
	for (size_t i = u64map_next(&sm->loaded, 0); i < sm->loaded.cap;
	     i = u64map_next(&sm->loaded, i + 1)) {
		struct dbm *d = (struct dbm *)(uintptr_t)sm->loaded.vals[i];
		free(d->old);
		free(d->big);
		free(d);
	}
	u64map_clear(&sm->loaded);
	sm->last = NULL;
}

void sm_data_destroy(struct sm_data *sm)
{
	if (!sm)
		return;
	drop_loaded(sm);
	u64map_release(&sm->loaded);
	free(sm->entries);
	free(sm);
}

uint64_t sm_data_nr_blocks(const struct sm_data *sm)
{
	return sm->nr_blocks;
}

uint64_t sm_data_nr_allocated(const struct sm_data *sm)
{
	return sm->nr_allocated;
}

void sm_data_set_nr_allocated(struct sm_data *sm, uint64_t nr)
{
	sm->nr_allocated = nr;
}

/*----------------------------------------------------------------*/
/* counts */

static int load(struct sm_data *sm, uint64_t i, struct dbm **out)
{
	struct tm_block blk;
	struct dbm *d;
	uint64_t v;
	int r;

	if (sm->last && sm->last->index == i) {
		*out = sm->last;
		return 0;
	}
	if (u64map_get(&sm->loaded, i, &v)) {
		*out = sm->last = (struct dbm *)(uintptr_t)v;
		return 0;
	}
	if (i >= sm->nr_entries || !sm->entries[i].blocknr)
		return -EILSEQ;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->index = i;
	d->old = malloc(MD_BLOCK_SIZE);
	r = d->old ? tm_txn_read_lock(sm->tm, sm->entries[i].blocknr, &sm_bitmap_validator, &blk)
		   : -ENOMEM;
	if (r < 0)
		goto bad;
	memcpy(d->old, blk.data, MD_BLOCK_SIZE);
	tm_txn_unlock(sm->tm, &blk);
	/* entries beyond the end are garbage the kernel ignores */
	sm_bitmap_decode(d->old, in_range(sm->nr_blocks, i), d->cnt);
	r = u64map_put(&sm->loaded, i, (uint64_t)(uintptr_t)d);
	if (r < 0)
		goto bad;
	*out = sm->last = d;
	return 0;
bad:
	free(d->old);
	free(d);
	return r;
}

static int old_free(const struct dbm *d, unsigned j)
{
	return !sm_bitmap_get(d->old, j);
}

struct big_load {
	struct dbm *d;
	uint64_t base;
	unsigned n;
};

static int big_entry(void *ctx, uint64_t b, const void *value_le)
{
	struct big_load *l = ctx;
	unsigned j = (unsigned)(b - l->base);

	if (j < l->n && l->d->cnt[j] == 3)
		l->d->big[j] = get_le32(value_le);
	return 0;
}

/* The exact counts of d's entries of 3: one walk over its range of the overflow tree. */
static int load_big(struct sm_data *sm, struct dbm *d)
{
	struct bt_tree t = { sm->tm, ovf_vt };
	uint64_t base = d->index * SM_ENTRIES_PER_BITMAP;
	struct big_load l = { d, base, in_range(sm->nr_blocks, d->index) };
	int r;

	d->big = calloc(SM_ENTRIES_PER_BITMAP, sizeof(uint32_t));
	if (!d->big)
		return -ENOMEM;
	r = bt_tree_walk_range(&t, sm->ovf_root, base, base + l.n, big_entry, &l);
	if (r < 0)
		return r;
	for (unsigned j = 0; j < l.n; j++)
		if (d->cnt[j] == 3 && d->big[j] < 3)
			return -EILSEQ;   /* a 3 in the bitmap and no count in the overflow tree */
	return 0;
}

static int count_of(struct sm_data *sm, struct dbm *d, unsigned j, uint32_t *count)
{
	int r;

	if (d->cnt[j] < 3) {
		*count = d->cnt[j];
		return 0;
	}
	if (!d->big) {
		r = load_big(sm, d);
		if (r < 0)
			return r;
	}
	*count = d->big[j];
	return 0;
}

int sm_data_get_count(struct sm_data *sm, uint64_t b, uint32_t *count)
{
	struct dbm *d;
	int r;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	r = load(sm, b / SM_ENTRIES_PER_BITMAP, &d);
	if (r < 0)
		return r;
	return count_of(sm, d, (unsigned)(b % SM_ENTRIES_PER_BITMAP), count);
}

int sm_data_set_count(struct sm_data *sm, uint64_t b, uint32_t count)
{
	unsigned j = b % SM_ENTRIES_PER_BITMAP;
	uint32_t before;
	struct dbm *d;
	int r;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	r = load(sm, b / SM_ENTRIES_PER_BITMAP, &d);
	if (r >= 0)
		r = count_of(sm, d, j, &before);
	if (r < 0)
		return r;
	if (before == count)
		return 0;
	if (before >= 3 || count >= 3) {
		if (!d->big) {
			r = load_big(sm, d);
			if (r < 0)
				return r;
		}
		d->pending[j / 64] |= 1ull << (j % 64);
		d->any_pending = 1;
		d->big[j] = count;
	}
	d->cnt[j] = count >= 3 ? 3 : (uint8_t)count;
	d->dirty = 1;
	if (!before)
		sm->nr_allocated++;
	else if (!count)
		sm->nr_allocated--;
	return 0;
}

int sm_data_inc(struct sm_data *sm, uint64_t b)
{
	uint32_t c;
	int r = sm_data_get_count(sm, b, &c);

	if (r < 0)
		return r;
	if (c == UINT32_MAX)
		return -EOVERFLOW;
	return sm_data_set_count(sm, b, c + 1);
}

int sm_data_dec(struct sm_data *sm, uint64_t b)
{
	uint32_t c;
	int r = sm_data_get_count(sm, b, &c);

	if (r < 0)
		return r;
	if (!c)
		return -EILSEQ;   /* below zero: the references do not add up */
	return sm_data_set_count(sm, b, c - 1);
}

int sm_data_new_block(struct sm_data *sm, uint64_t *out)
{
	uint64_t nb = sm->nr_entries;

	for (uint64_t k = 0; k <= nb; k++) {
		uint64_t i = (sm->cursor / SM_ENTRIES_PER_BITMAP + k) % (nb ? nb : 1);
		unsigned n = in_range(sm->nr_blocks, i), j0 = 0;
		struct dbm *d;
		int r;

		if (!nb)
			break;
		if (!u64map_get(&sm->loaded, i, NULL) && !sm->entries[i].nr_free)
			continue;
		r = load(sm, i, &d);
		if (r < 0)
			return r;
		if (k == 0)
			j0 = sm->cursor % SM_ENTRIES_PER_BITMAP;
		for (unsigned j = j0; j < n; j++) {
			if (d->cnt[j] || !old_free(d, j))
				continue;
			*out = i * SM_ENTRIES_PER_BITMAP + j;
			sm->cursor = *out + 1 < sm->nr_blocks ? *out + 1 : 0;
			return sm_data_set_count(sm, *out, 1);
		}
	}
	return -ENOSPC;
}

int sm_data_touch_bitmap(struct sm_data *sm, uint64_t i)
{
	struct dbm *d;
	int r = load(sm, i, &d);

	if (r < 0)
		return r;
	d->dirty = 1;
	return 0;
}

int sm_data_extend(struct sm_data *sm, uint64_t nr_blocks)
{
	struct bt_tree t = { sm->tm, index_vt };
	uint64_t nb = sm_nr_bitmaps(nr_blocks);
	int r;

	if (nr_blocks < sm->nr_blocks)
		return -EINVAL;
	r = grow_entries(sm, nb + 1);
	if (r < 0)
		return r;
	/*
	 * As the kernel's sm_ll_extend: each new bitmap is a new (zeroed, so
	 * empty) block, indexed at once with every entry free.
	 */
	for (uint64_t i = sm->nr_entries; i < nb; i++) {
		struct disk_index_entry ie;
		struct tm_block blk;

		r = tm_txn_new_block(sm->tm, &sm_bitmap_validator, &blk);
		if (r < 0)
			return r;
		sm->entries[i].blocknr = blk.loc;
		sm->entries[i].nr_free = SM_ENTRIES_PER_BITMAP;
		sm->entries[i].none_free_before = 0;
		ie.blocknr = cpu_to_le64(blk.loc);
		ie.nr_free = cpu_to_le32(SM_ENTRIES_PER_BITMAP);
		ie.none_free_before = cpu_to_le32(0);
		r = bt_tree_insert(&t, sm->index_root, i, &ie, &sm->index_root, NULL);
		if (r < 0)
			return r;
		sm->nr_entries = i + 1;
	}
	sm->nr_blocks = nr_blocks;
	return 0;
}

/*----------------------------------------------------------------*/
/* commit */

static int write_bitmap(struct sm_data *sm, uint64_t i, struct dbm *d)
{
	struct bt_tree t = { sm->tm, index_vt };
	struct disk_index_entry ie;
	struct tm_block blk;
	int inc, r;

	r = tm_txn_shadow(sm->tm, sm->entries[i].blocknr, &sm_bitmap_validator, &blk, &inc);
	if (r < 0)
		return r;
	sm_bitmap_encode(blk.data, d->cnt, in_range(sm->nr_blocks, i), &sm->entries[i]);
	sm->entries[i].blocknr = blk.loc;
	ie.blocknr = cpu_to_le64(blk.loc);
	ie.nr_free = cpu_to_le32(sm->entries[i].nr_free);
	ie.none_free_before = cpu_to_le32(sm->entries[i].none_free_before);
	return bt_tree_insert(&t, sm->index_root, i, &ie, &sm->index_root, NULL);
}

/* The overflow entries of d's pending blocks: insert, change or remove. */
static int write_overflow(struct sm_data *sm, struct dbm *d)
{
	struct bt_tree t = { sm->tm, ovf_vt };
	uint64_t base = d->index * SM_ENTRIES_PER_BITMAP;
	int r;

	for (unsigned w = 0; w < PENDING_WORDS; w++) {
		for (uint64_t bits = d->pending[w]; bits; bits &= bits - 1) {
			unsigned j = w * 64 + (unsigned)__builtin_ctzll(bits);
			uint32_t c = d->cnt[j] == 3 ? d->big[j] : d->cnt[j];

			if (c >= 3) {
				le32 v = cpu_to_le32(c);
				r = bt_tree_insert(&t, sm->ovf_root, base + j, &v, &sm->ovf_root, NULL);
			} else if (sm_bitmap_get(d->old, j) == 3) {
				/* committed with an entry: it goes */
				r = bt_tree_remove(&t, sm->ovf_root, base + j, &sm->ovf_root);
			} else {
				r = 0;
			}
			if (r < 0)
				return r;
		}
	}
	memset(d->pending, 0, sizeof(d->pending));
	d->any_pending = 0;
	return 0;
}

int sm_data_commit(struct sm_data *sm, struct sm_disk_info *root)
{
	uint64_t *keys;
	size_t nr;
	int r = u64map_sorted_keys(&sm->loaded, &keys, &nr);

	for (size_t k = 0; k < nr && r >= 0; k++) {
		uint64_t v;
		struct dbm *d;

		u64map_get(&sm->loaded, keys[k], &v);
		d = (struct dbm *)(uintptr_t)v;
		if (d->dirty)
			r = write_bitmap(sm, keys[k], d);
		if (r >= 0 && d->any_pending)
			r = write_overflow(sm, d);
	}
	free(keys);
	if (r < 0)
		return r;
	memset(root, 0, sizeof(*root));
	root->kind = SM_DATA;
	root->nr_blocks = sm->nr_blocks;
	root->nr_allocated = sm->nr_allocated;
	root->bitmap_root = sm->index_root;
	root->ref_count_root = sm->ovf_root;
	return 0;
}

void sm_data_begin(struct sm_data *sm)
{
	/* the committed bitmaps are read again when needed */
	drop_loaded(sm);
}
