#include "spacemap/spacemap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree/btree.h"
#include "btree/walk.h"
#include "crc/crc32c.h"
#include "util/bits.h"

/*----------------------------------------------------------------*/
/* validators */

static int bitmap_check(const void *data, uint64_t loc, size_t len)
{
	return bc_csum_check(data, loc, len, BITMAP_CSUM_XOR);
}

static void bitmap_prepare(void *data, uint64_t loc, size_t len)
{
	bc_csum_prepare(data, loc, len, BITMAP_CSUM_XOR);
}

static int index_check(const void *data, uint64_t loc, size_t len)
{
	return bc_csum_check(data, loc, len, INDEX_CSUM_XOR);
}

static void index_prepare(void *data, uint64_t loc, size_t len)
{
	bc_csum_prepare(data, loc, len, INDEX_CSUM_XOR);
}

const struct bc_validator sm_bitmap_validator = {
	.name = "sm_bitmap",
	.check = bitmap_check,
	.prepare = bitmap_prepare,
};

const struct bc_validator sm_index_validator = {
	.name = "sm_index",
	.check = index_check,
	.prepare = index_prepare,
};

void sm_bitmap_decode(const void *block, unsigned n, uint8_t *out)
{
	const uint8_t *p = (const uint8_t *)block + 16;

	for (unsigned w = 0; w * 32 < n; w++) {
		uint64_t word = get_le64(p + 8 * w);
		unsigned lim = n - w * 32 < 32 ? n - w * 32 : 32;
		for (unsigned k = 0; k < lim; k++) {
			unsigned s = 2 * k;
			out[w * 32 + k] =
				(uint8_t)((((word >> s) & 1) << 1) | ((word >> (s + 1)) & 1));
		}
	}
}

int sm_bitmap_all_free(const void *block)
{
	const uint8_t *p = (const uint8_t *)block + 16;

	/* 4080 bytes of entries: 510 words */
	for (unsigned w = 0; w < SM_ENTRIES_PER_BITMAP / 32; w++)
		if (get_le64(p + 8 * w))
			return 0;
	return 1;
}

/* Bits [0, 32) of x at the even bits of the result (bit k -> bit 2k). */
static uint64_t spread32(uint64_t x)
{
	x &= 0xffffffffull;
	x = (x | (x << 16)) & 0x0000ffff0000ffffull;
	x = (x | (x << 8)) & 0x00ff00ff00ff00ffull;
	x = (x | (x << 4)) & 0x0f0f0f0f0f0f0f0full;
	x = (x | (x << 2)) & 0x3333333333333333ull;
	return (x | (x << 1)) & 0x5555555555555555ull;
}

int sm_bitmap_agrees(const void *block, const uint64_t *want, unsigned n, const uint64_t *threes_ok,
		     unsigned *nonzero, unsigned *first_free)
{
	const uint64_t evens = 0x5555555555555555ull;
	const uint8_t *p = (const uint8_t *)block + 16;
	unsigned nz = 0, ff = SM_ENTRIES_PER_BITMAP, nw = (n + 31) / 32;

	for (unsigned w = 0; w < SM_ENTRIES_PER_BITMAP / 32; w++) {
		uint64_t word = get_le64(p + 8 * w), used, threes;

		if (word != (w < nw ? want[w] : 0))
			return 0;
		if (!word) {
			/* 32 free entries (most of a sparse pool) */
			if (ff == SM_ENTRIES_PER_BITMAP)
				ff = w * 32;
			continue;
		}
		threes = word & (word >> 1) & evens;   /* entries of 3 (counts >= 3: word == want) */
		if (threes && (!threes_ok ||
			       (threes & ~spread32(threes_ok[w / 2] >> (32 * (w & 1))))))
			return 0;
		used = (word | (word >> 1)) & evens;
		nz += (unsigned)tm_popcount64(used);
		if (ff == SM_ENTRIES_PER_BITMAP && used != evens)
			ff = w * 32 + (unsigned)__builtin_ctzll(~used & evens) / 2;
	}
	*nonzero = nz;
	*first_free = ff;
	return 1;
}

void sm_root_unpack(const struct disk_sm_root *r, enum sm_kind kind, struct sm_disk_info *out)
{
	out->kind = kind;
	out->nr_blocks = le64_to_cpu(r->nr_blocks);
	out->nr_allocated = le64_to_cpu(r->nr_allocated);
	out->bitmap_root = le64_to_cpu(r->bitmap_root);
	out->ref_count_root = le64_to_cpu(r->ref_count_root);
}

/*----------------------------------------------------------------*/
/* reading on-disk space maps */

void sm_index_entry_unpack(const struct disk_index_entry *le, struct sm_index_entry *out)
{
	out->blocknr = le64_to_cpu(le->blocknr);
	out->nr_free = le32_to_cpu(le->nr_free);
	out->none_free_before = le32_to_cpu(le->none_free_before);
}

void sm_index_decode_leaf(struct sm_index_decoder *d, const struct bt_node *n)
{
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t k = bt_key(n, i);

		if (k != d->next_key || k >= d->nr_bitmaps) {
			if (!d->bad_keys && d->bad_key)
				d->bad_key(d, n, k);
			d->bad_keys = 1;
		}
		if (k < d->nr_bitmaps)
			sm_index_entry_unpack((const void *)bt_value(n, i), &d->entries[k]);
		d->next_key = k + 1;
	}
}

static void sm_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
		      uint64_t lo, uint64_t hi, const char *msg)
{
	struct report *rep = ctx;
	struct rep_ctx c = { block, lo, hi, UINT64_MAX };

	(void)lo;
	(void)hi;
	if (rep)
		rep_add(rep, level, code, c, "space map tree node %llu: %s",
			(unsigned long long)block, msg);
}

static void index_damage(void *vctx, enum dmg_level level, enum rep_code code, uint64_t block,
			 uint64_t lo, uint64_t hi, const char *msg)
{
	struct sm_index_decoder *d = vctx;

	sm_damage(d->ctx, level, code, block, lo, hi, msg);
}

static void index_bad_key(const struct sm_index_decoder *d, const struct bt_node *n, uint64_t k)
{
	rep_add(d->ctx, DMG_FATAL, RC_SM_INDEX_KEYS, REP_CTX_BLOCK(n->blocknr),
		"data space map index: unexpected key %llu (expected %llu of %llu bitmaps)",
		(unsigned long long)k, (unsigned long long)d->next_key,
		(unsigned long long)d->nr_bitmaps);
}

static int index_leaf(void *vctx, const struct bt_node *n)
{
	sm_index_decode_leaf(vctx, n);
	return 0;
}

struct count_nodes_ctx {
	struct rcmap *meta_refs;
	void *inner;
	void (*inner_damage)(void *, enum dmg_level, enum rep_code, uint64_t, uint64_t, uint64_t,
			     const char *);
	int (*inner_leaf)(void *, const struct bt_node *);
};

/*
 * Node counting for space-map trees: the walker gives us leaves only, so
 * count nodes through the skip() hook, which sees every child before it is
 * read, plus the root.
 */
static int count_skip(void *vctx, uint64_t block, int again)
{
	struct count_nodes_ctx *c = vctx;

	(void)again;
	if (c->meta_refs)
		rcmap_inc(c->meta_refs, block);
	return 0;
}

static int count_leaf(void *vctx, const struct bt_node *n)
{
	struct count_nodes_ctx *c = vctx;

	return c->inner_leaf ? c->inner_leaf(c->inner, n) : 0;
}

static void count_damage(void *vctx, enum dmg_level level, enum rep_code code, uint64_t block,
			 uint64_t lo, uint64_t hi, const char *msg)
{
	struct count_nodes_ctx *c = vctx;

	c->inner_damage(c->inner, level, code, block, lo, hi, msg);
}

static int walk_counted(struct bc *bc, uint64_t root, uint32_t vsize, struct rcmap *meta_refs,
			int (*leaf)(void *, const struct bt_node *),
			void (*dmg)(void *, enum dmg_level, enum rep_code, uint64_t, uint64_t,
				    uint64_t, const char *),
			void *inner)
{
	struct count_nodes_ctx c = { meta_refs, inner, dmg, leaf };
	struct bt_walk_ops ops = { .leaf = count_leaf, .damage = count_damage, .child = count_skip };

	if (meta_refs)
		rcmap_inc(meta_refs, root);
	return bt_walk(bc, root, vsize, &ops, &c);
}

int sm_read_index(struct bc *bc, const struct sm_disk_info *info, struct sm_index_entry *entries,
		  struct report *rep, struct rcmap *meta_refs)
{
	uint64_t nr_bitmaps = sm_nr_bitmaps(info->nr_blocks);
	struct bc_block *b;
	int r;

	memset(entries, 0, nr_bitmaps * sizeof(*entries));
	if (info->kind == SM_DATA) {
		struct sm_index_decoder d = { .entries = entries, .nr_bitmaps = nr_bitmaps,
					      .bad_key = rep ? index_bad_key : NULL, .ctx = rep };

		r = walk_counted(bc, info->bitmap_root, SM_INDEX_ENTRY_SIZE, meta_refs, index_leaf,
				 index_damage, &d);
		if (!r && sm_index_short(&d) && rep)
			rep_add(rep, DMG_FATAL, RC_SM_INDEX_KEYS, REP_CTX_BLOCK(info->bitmap_root),
				"data space map index: %llu of %llu bitmaps indexed",
				(unsigned long long)d.next_key, (unsigned long long)nr_bitmaps);
		return r;
	}
	if (nr_bitmaps > SM_MAX_METADATA_BITMAPS)
		nr_bitmaps = SM_MAX_METADATA_BITMAPS;
	if (meta_refs)
		rcmap_inc(meta_refs, info->bitmap_root);
	r = bc_get(bc, info->bitmap_root, &sm_index_validator, &b);
	if (r < 0) {
		enum rep_code code = r == -EILSEQ ? RC_SM_INDEX_CSUM
				   : r == -ENOTBLK ? RC_SM_INDEX_BLOCKNR
				   : r == BC_WRONG_TYPE ? RC_SM_INDEX_WRONG_TYPE : RC_SM_INDEX_IO;
		if (rep)
			rep_add(rep, DMG_FATAL, code, REP_CTX_BLOCK(info->bitmap_root),
				"metadata space map index block %llu: %s",
				(unsigned long long)info->bitmap_root, bc_strerror(r));
		return r;
	}
	{
		const struct disk_metadata_index *mi = bc_data(b);

		for (uint64_t i = 0; i < nr_bitmaps; i++)
			sm_index_entry_unpack(&mi->index[i], &entries[i]);
	}
	bc_put(bc, b);
	return 0;
}

struct ov_ctx {
	int (*cb)(void *, uint64_t, uint32_t);
	void *ctx;
	struct report *rep;
};

static int ov_leaf(void *vctx, const struct bt_node *n)
{
	struct ov_ctx *oc = vctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		int r = oc->cb(oc->ctx, bt_key(n, i), get_le32(bt_value(n, i)));
		if (r < 0)
			return r;
	}
	return 0;
}

static void ov_damage(void *vctx, enum dmg_level level, enum rep_code code, uint64_t block,
		      uint64_t lo, uint64_t hi, const char *msg)
{
	struct ov_ctx *oc = vctx;

	sm_damage(oc->rep, level, code, block, lo, hi, msg);
}

int sm_read_overflow(struct bc *bc, const struct sm_disk_info *info, struct report *rep,
		     struct rcmap *meta_refs,
		     int (*cb)(void *ctx, uint64_t block, uint32_t count), void *ctx)
{
	struct ov_ctx oc = { cb, ctx, rep };

	return walk_counted(bc, info->ref_count_root, SM_OVERFLOW_VSIZE, meta_refs, ov_leaf,
			    ov_damage, &oc);
}

struct load_ctx {
	struct rcmap *out;
};

static int load_ov(void *vctx, uint64_t block, uint32_t count)
{
	struct load_ctx *lc = vctx;

	/* only entries whose bitmap value is 3 are meaningful */
	if (block < rcmap_nr_blocks(lc->out) && rcmap_get(lc->out, block) == 3 && count >= 3)
		return rcmap_set(lc->out, block, count);
	return 0;
}

int sm_disk_load(struct bc *bc, const struct sm_disk_info *info, struct rcmap *out,
		 struct report *rep, struct rcmap *meta_refs)
{
	uint64_t nr_bitmaps = sm_nr_bitmaps(info->nr_blocks);
	struct sm_index_entry *entries;
	uint8_t *dec;
	struct load_ctx lc = { out };
	int r;

	if (info->kind == SM_METADATA && nr_bitmaps > SM_MAX_METADATA_BITMAPS)
		return -EINVAL;
	entries = calloc(nr_bitmaps ? nr_bitmaps : 1, sizeof(*entries));
	dec = malloc(SM_ENTRIES_PER_BITMAP);
	if (!entries || !dec) {
		free(entries);
		free(dec);
		return -ENOMEM;
	}
	r = sm_read_index(bc, info, entries, rep, meta_refs);
	for (uint64_t i = 0; i < nr_bitmaps && r >= 0; i++) {
		uint64_t base = i * SM_ENTRIES_PER_BITMAP;
		unsigned n = info->nr_blocks - base < SM_ENTRIES_PER_BITMAP
				     ? (unsigned)(info->nr_blocks - base) : SM_ENTRIES_PER_BITMAP;
		struct bc_block *b;
		int e;

		if (!entries[i].blocknr)
			continue;
		if (meta_refs)
			rcmap_inc(meta_refs, entries[i].blocknr);
		e = bc_get(bc, entries[i].blocknr, &sm_bitmap_validator, &b);
		if (e < 0) {
			enum rep_code code = e == -EILSEQ ? RC_SM_BITMAP_CSUM
					   : e == -ENOTBLK ? RC_SM_BITMAP_BLOCKNR
					   : e == BC_WRONG_TYPE ? RC_SM_BITMAP_WRONG_TYPE
								: RC_SM_BITMAP_IO;
			if (rep)
				rep_add(rep, DMG_FATAL, code, REP_CTX_BLOCK(entries[i].blocknr),
					"%s space map bitmap %llu (block %llu): %s",
					info->kind == SM_DATA ? "data" : "metadata",
					(unsigned long long)i, (unsigned long long)entries[i].blocknr,
					bc_strerror(e));
			continue;
		}
		sm_bitmap_decode(bc_data(b), n, dec);
		for (unsigned j = 0; j < n; j++)
			if (dec[j] && base + j < rcmap_nr_blocks(out))
				rcmap_set(out, base + j, dec[j]);
		bc_put(bc, b);
		bc_forget(bc, entries[i].blocknr);
	}
	if (r >= 0)
		r = sm_read_overflow(bc, info, rep, meta_refs, load_ov, &lc);
	free(entries);
	free(dec);
	return r < 0 ? r : 0;
}
