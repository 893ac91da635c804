/*
 * thin_check: space maps (FORMAT.md §7, §10 items 12-17).  The on-disk
 * maps are compared with the computed counts bitmap by bitmap, so no
 * second in-core map is built.  Leaks (on disk 1, computed 0) and
 * non-zero entries beyond nr_blocks are remembered per bitmap so that
 * ck_repair() can zero them, through the transaction manager.
 */
#include "check/check-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thin/pool.h"
#include "util/vec.h"

struct ovf {
	uint64_t block;
	uint32_t count;
};

struct ck_sm_fix {
	enum sm_kind kind;
	const char *name;            /* "data" / "metadata" */
	struct sm_disk_info info;
	uint64_t nr_bitmaps;
	struct sm_index_entry *entries;
	struct sm_index_decoder dindex;  /* data: the index, decoded by lib/spacemap */
	/*
	 * Overflow tree: a bit per block that has an entry, and the entries
	 * that disagree with the computed count (or are below 3), sorted.
	 * Agreeing entries, the vast majority, are not stored.
	 */
	const struct rcmap *refs;
	uint64_t *has_ovf;
	struct ovf *ovf;
	size_t nr_ovf, cap_ovf;
	uint64_t *todo;              /* bitmaps to repair */
	size_t nr_todo;
	uint64_t nonzero_in;         /* non-zero entries below nr_blocks */
	uint64_t leaks, beyond;
};

/* What one comparison pass found (for the summary findings). */
struct sm_tally {
	uint64_t bad, ovf_missing, ovf_low;
	uint64_t bad_blk[CK_MAX_DETAILS];
	uint32_t bad_disk[CK_MAX_DETAILS], bad_want[CK_MAX_DETAILS];
	uint64_t leak_blk[CK_MAX_DETAILS];
	uint64_t ovf_blk[CK_MAX_DETAILS];
};

static void fix_free(struct ck_sm_fix *fx)
{
	if (!fx)
		return;
	free(fx->entries);
	free(fx->ovf);
	free(fx->has_ovf);
	free(fx->todo);
	free(fx);
}

void ck_sm_fix_free(struct ck *ck)
{
	for (int i = 0; i < 2; i++) {
		fix_free(ck->fix[i]);
		ck->fix[i] = NULL;
	}
}

/*----------------------------------------------------------------*/
/* reading the index and the overflow tree */

static void index_bad_key(const struct sm_index_decoder *d, const struct bt_node *n, uint64_t k)
{
	ck_add(d->ctx, DMG_FATAL, RC_SM_INDEX_KEYS, REP_CTX_BLOCK(n->blocknr),
	       "data space map index: unexpected key %llu in node %llu "
	       "(expected %llu of %llu bitmaps)",
	       (unsigned long long)k, (unsigned long long)n->blocknr,
	       (unsigned long long)d->next_key, (unsigned long long)d->nr_bitmaps);
}

static int index_leaf(struct ck *ck, void *ctx, const struct bt_node *n)
{
	struct ck_sm_fix *fx = ctx;

	(void)ck;
	sm_index_decode_leaf(&fx->dindex, n);
	return 0;
}

/* Entry (b, v) of the overflow tree: kept when v is not the count walked. */
static int ovf_entry(struct ck_sm_fix *fx, uint64_t b, uint32_t v)
{
	if (v >= 3 && v == rcmap_get(fx->refs, b))
		return 0;
	if (fx->nr_ovf == fx->cap_ovf) {
		struct ovf *o = vec_grow(fx->ovf, &fx->cap_ovf, sizeof(*o), 64);
		if (!o)
			return -ENOMEM;
		fx->ovf = o;
	}
	fx->ovf[fx->nr_ovf].block = b;
	fx->ovf[fx->nr_ovf].count = v;
	fx->nr_ovf++;
	return 0;
}

#define OVF_SPAN 2048u

static int ovf_leaf(struct ck *ck, void *ctx, const struct bt_node *n)
{
	struct ck_sm_fix *fx = ctx;
	const uint8_t *keys = n->raw + BT_HEADER_SIZE, *vals = bt_value(n, 0);
	uint64_t *has_ovf = fx->has_ovf, nr_blocks = fx->info.nr_blocks;
	uint32_t nr = n->nr_entries;
	int r;

	(void)ck;
	if (!nr)
		return 0;
	/*
	 * The common leaf: its keys (which rise: the node check) span at most
	 * OVF_SPAN blocks, all on the device (a pool with many snapshots has
	 * about every other block here).  The walked counts of the span are
	 * read at once, and an entry whose value is a count of 3..254 equal to
	 * the walked one costs a compare.
	 */
	uint64_t first = get_le64(keys), last = get_le64(keys + 8 * (size_t)(nr - 1));

	if (last < nr_blocks && last - first < OVF_SPAN) {
		uint8_t cnt[OVF_SPAN];

		/* has_ovf's bits gathered a word at a time, in a register */
		uint64_t word = first / 64, bits = 0;

		rcmap_get_counts8(fx->refs, first, last - first + 1, cnt);
		for (uint32_t i = 0; i < nr; i++) {
			uint64_t b = get_le64(keys + 8 * (size_t)i);
			uint32_t v = get_le32(vals + 4 * (size_t)i);

			if (b / 64 != word) {
				has_ovf[word] |= bits;
				word = b / 64;
				bits = 0;
			}
			bits |= 1ull << (b % 64);
			if (v == cnt[b - first] && v - 3u < 252u)
				continue;
			if ((r = ovf_entry(fx, b, v)) < 0) {
				has_ovf[word] |= bits;
				return r;
			}
		}
		has_ovf[word] |= bits;
		return 0;
	}
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t b = get_le64(keys + 8 * (size_t)i);

		if (b >= nr_blocks)
			continue; /* garbage the kernel ignores */
		has_ovf[b / 64] |= 1ull << (b % 64);
		if ((r = ovf_entry(fx, b, get_le32(vals + 4 * (size_t)i))) < 0)
			return r;
	}
	return 0;
}

static int cmp_ovf(const void *a, const void *b)
{
	const struct ovf *x = a, *y = b;

	return x->block < y->block ? -1 : x->block > y->block;
}

static int read_data_index(struct ck *ck, struct ck_sm_fix *fx)
{
	struct ck_tree t = { "data space map index", CK_DINDEX, SM_INDEX_ENTRY_SIZE, UINT64_MAX,
			     index_leaf, fx, 0, NULL, NULL };
	struct sm_index_decoder *d = &fx->dindex;
	struct bt_summary s;
	int r;

	*d = (struct sm_index_decoder){ .entries = fx->entries, .nr_bitmaps = fx->nr_bitmaps,
					.bad_key = index_bad_key, .ctx = ck };
	ck_meta_inc(ck, fx->info.bitmap_root);
	r = ck_walk_tree(ck, &t, fx->info.bitmap_root, &s);
	if (r < 0)
		return r;
	if (sm_index_short(d))
		ck_add(ck, DMG_FATAL, RC_SM_INDEX_KEYS, REP_CTX_BLOCK(fx->info.bitmap_root),
		       "data space map index: %llu of %llu bitmaps indexed",
		       (unsigned long long)d->next_key, (unsigned long long)d->nr_bitmaps);
	return 0;
}

static int read_metadata_index(struct ck *ck, struct ck_sm_fix *fx)
{
	uint64_t loc = fx->info.bitmap_root;
	const struct disk_metadata_index *mi;
	int r;

	ck_meta_inc(ck, loc);
	if (!ck->one && !(ck->one = ioe_alloc_blocks(1)))
		return -ENOMEM;
	r = loc < ck->md_nr_blocks ? ck_read_block(ck, loc, ck->one) : -EINVAL;
	if (!r)
		r = thin_block_check(ck->one, loc, &sm_index_validator);
	if (r) {
		enum rep_code code = r == -EILSEQ	 ? RC_SM_INDEX_CSUM
				     : r == -ENOTBLK	 ? RC_SM_INDEX_BLOCKNR
				     : r == BC_WRONG_TYPE ? RC_SM_INDEX_WRONG_TYPE
							  : RC_SM_INDEX_IO;
		ck_add(ck, DMG_FATAL, code, REP_CTX_BLOCK(loc),
		       "metadata space map: %s in index block (block %llu)", bc_strerror(r),
		       (unsigned long long)loc);
		return 0;
	}
	mi = (const void *)ck->one;
	for (uint64_t i = 0; i < fx->nr_bitmaps; i++) {
		sm_index_entry_unpack(&mi->index[i], &fx->entries[i]);
		if (!fx->entries[i].blocknr)
			ck_add(ck, DMG_FATAL, RC_SM_INDEX_KEYS, REP_CTX_BLOCK(loc),
			       "metadata space map: index entry %llu has no bitmap",
			       (unsigned long long)i);
	}
	return 0;
}

static int read_overflow(struct ck *ck, struct ck_sm_fix *fx)
{
	char name[48];
	/*
	 * The data space map's entries may be decoded on the walker's leaf
	 * thread: the data counts are final by now.  Not the metadata's: this
	 * walk still counts its own nodes into the counts ovf_leaf reads.
	 */
	struct ck_tree t = { name, CK_OVERFLOW, SM_OVERFLOW_VSIZE, UINT64_MAX, ovf_leaf, fx,
			     fx->kind == SM_DATA, NULL, NULL };
	struct bt_summary s;

	int r;

	snprintf(name, sizeof(name), "%s space map ref count tree", fx->name);
	fx->has_ovf = calloc(fx->info.nr_blocks / 64 + 1, sizeof(uint64_t));
	if (!fx->has_ovf)
		return -ENOMEM;
	ck_meta_inc(ck, fx->info.ref_count_root);
	r = ck_walk_tree(ck, &t, fx->info.ref_count_root, &s);
	if (fx->nr_ovf > 1)
		vec_sort(fx->ovf, fx->nr_ovf, sizeof(*fx->ovf), cmp_ovf);
	return r;
}

static const struct ovf *ovf_find(const struct ck_sm_fix *fx, uint64_t b)
{
	size_t lo = 0, hi = fx->nr_ovf;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (fx->ovf[mid].block < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < fx->nr_ovf && fx->ovf[lo].block == b ? &fx->ovf[lo] : NULL;
}

/*----------------------------------------------------------------*/
/* comparison */

static int todo_add(struct ck_sm_fix *fx, uint64_t i)
{
	uint64_t *t = realloc(fx->todo, (fx->nr_todo + 1) * sizeof(*t));

	if (!t)
		return -ENOMEM;
	fx->todo = t;
	fx->todo[fx->nr_todo++] = i;
	return 0;
}

/*
 * Compares entries [0, n) of bitmap i with the computed counts; with
 * counts NULL (a tree was not walked) only the overflow tree's own
 * agreement with the bitmap is checked.
 */
/* cb: the computed counts of [base, base + n) from rcmap_get_counts8(), NULL without refs. */
static void compare_entries(struct ck_sm_fix *fx, const struct rcmap *refs, uint64_t base,
			    const uint8_t *dec, const uint8_t *cb, unsigned n, struct sm_tally *t,
			    uint64_t *leaks)
{
	for (unsigned j = 0; j < n; j++) {
		uint32_t d = dec[j], c = cb ? cb[j] : d;
		uint64_t b = base + j;

		if (!cb) {
			if (d == 3 && !(fx->has_ovf[b / 64] & (1ull << (b % 64)))) {
				if (t->ovf_missing < CK_MAX_DETAILS)
					t->ovf_blk[t->ovf_missing] = b;
				t->ovf_missing++;
			}
			continue;
		}

		if (d == c && d < 3)
			continue;
		if (c == 255)
			c = rcmap_get(refs, b);
		if (d == 3) {
			const struct ovf *o;
			if (!(fx->has_ovf[b / 64] & (1ull << (b % 64)))) {
				if (t->ovf_missing < CK_MAX_DETAILS)
					t->ovf_blk[t->ovf_missing] = b;
				t->ovf_missing++;
				continue;
			}
			o = ovf_find(fx, b);
			if (!o)
				continue; /* the entry agrees with the computed count */
			if (o->count < 3)
				t->ovf_low++;
			d = o->count;
		}
		if (d == c)
			continue;
		if (d == 1 && c == 0) {
			if (fx->leaks < CK_MAX_DETAILS)
				t->leak_blk[fx->leaks] = b;
			fx->leaks++;
			(*leaks)++;
			continue;
		}
		if (t->bad < CK_MAX_DETAILS) {
			t->bad_blk[t->bad] = b;
			t->bad_disk[t->bad] = d;
			t->bad_want[t->bad] = c;
		}
		t->bad++;
	}
}

/* The index entry of bitmap i against its entries: nonzero in use, the first free at first_free. */
static void judge_hints(struct ck *ck, struct ck_sm_fix *fx, uint64_t i, unsigned nonzero,
			unsigned first_free)
{
	const struct sm_index_entry *e = &fx->entries[i];

	if (e->nr_free != SM_ENTRIES_PER_BITMAP - nonzero)
		ck_add(ck, DMG_WARNING, RC_SM_NR_FREE, REP_CTX_BLOCK(e->blocknr),
		       "%s space map: bitmap %llu (block %llu) has nr_free %u, expected %u",
		       fx->name, (unsigned long long)i, (unsigned long long)e->blocknr, e->nr_free,
		       SM_ENTRIES_PER_BITMAP - nonzero);
	if (e->none_free_before > first_free)
		ck_add(ck, DMG_WARNING, RC_SM_NONE_FREE_BEFORE, REP_CTX_BLOCK(e->blocknr),
		       "%s space map: bitmap %llu (block %llu) has none_free_before %u beyond "
		       "its first free entry %u",
		       fx->name, (unsigned long long)i, (unsigned long long)e->blocknr,
		       e->none_free_before, first_free);
}

static void check_hints(struct ck *ck, struct ck_sm_fix *fx, uint64_t i, const uint8_t *dec)
{
	unsigned nonzero = 0, first_free = SM_ENTRIES_PER_BITMAP;

	for (unsigned j = 0; j < SM_ENTRIES_PER_BITMAP; j++) {
		if (dec[j])
			nonzero++;
		else if (first_free == SM_ENTRIES_PER_BITMAP)
			first_free = j;
	}
	judge_hints(ck, fx, i, nonzero, first_free);
}

/*
 * Bitmaps are read in runs: when the next entries' bitmaps follow block
 * by block (as writers lay them out), up to BM_RUN of them in one request.
 * A run that fails to read is read again block by block, so that a bad
 * block costs only itself and is reported as it would be alone.
 */
#define BM_RUN 64u

struct bm_reader {
	uint8_t *buf;          /* BM_RUN blocks */
	uint64_t first;        /* the window holds the bitmaps of entries [first, first + nr) */
	unsigned nr;
};

static int bm_fetch(struct ck *ck, struct ck_sm_fix *fx, struct bm_reader *rd, uint64_t i,
		    const uint8_t **data)
{
	uint64_t b = fx->entries[i].blocknr;
	unsigned n = 1;
	int r;

	if (rd->nr && i >= rd->first && i < rd->first + rd->nr) {
		*data = rd->buf + (size_t)(i - rd->first) * MD_BLOCK_SIZE;
		return 0;
	}
	rd->nr = 0;
	if (!b || b >= ck->md_nr_blocks)
		return -EINVAL;
	while (n < BM_RUN && i + n < fx->nr_bitmaps && fx->entries[i + n].blocknr == b + n &&
	       b + n < ck->md_nr_blocks && b + n < ck->ioe->nr_blocks)
		n++;
	if (n > 1 && ioe_read(ck->ioe, b, n, rd->buf) == 0) {
		rd->first = i;
		rd->nr = n;
		*data = rd->buf;
		return 0;
	}
	r = ck_read_block(ck, b, rd->buf);
	*data = rd->buf;
	return r;
}

/* Reads and validates bitmap i; 0 (*data: its block) or the error (reported). */
static int read_bitmap(struct ck *ck, struct ck_sm_fix *fx, struct bm_reader *rd, uint64_t i,
		       const uint8_t **data)
{
	uint64_t b = fx->entries[i].blocknr;
	int r = bm_fetch(ck, fx, rd, i, data);

	if (!r)
		r = thin_block_check(*data, b, &sm_bitmap_validator);
	if (r && b) {
		enum rep_code code = r == -EILSEQ	 ? RC_SM_BITMAP_CSUM
				     : r == -ENOTBLK	 ? RC_SM_BITMAP_BLOCKNR
				     : r == BC_WRONG_TYPE ? RC_SM_BITMAP_WRONG_TYPE
							  : RC_SM_BITMAP_IO;
		ck_add(ck, DMG_FATAL, code, REP_CTX_BLOCK(b),
		       "%s space map: %s in bitmap %llu (block %llu)", fx->name,
		       r == -EINVAL ? "block out of range" : bc_strerror(r), (unsigned long long)i,
		       (unsigned long long)b);
	}
	return r;
}

static unsigned in_range(const struct ck_sm_fix *fx, uint64_t i)
{
	uint64_t base = i * SM_ENTRIES_PER_BITMAP;

	return fx->info.nr_blocks - base < SM_ENTRIES_PER_BITMAP
		       ? (unsigned)(fx->info.nr_blocks - base) : SM_ENTRIES_PER_BITMAP;
}

static int compare_bitmaps(struct ck *ck, struct ck_sm_fix *fx, const struct rcmap *refs,
			   struct sm_tally *t)
{
	struct bm_reader rd = { .buf = ioe_alloc_blocks(BM_RUN) };
	uint8_t *dec = malloc(SM_ENTRIES_PER_BITMAP);
	uint8_t *cb = refs ? malloc(SM_ENTRIES_PER_BITMAP) : NULL;
	uint64_t *want = refs ? malloc(SM_ENTRIES_PER_BITMAP / 4) : NULL;
	const uint8_t *buf;
	size_t ko = 0;   /* fx->ovf[ko]: the first disagreeing overflow entry not below bitmap i */
	int r = 0;

	if (!rd.buf || !dec || (refs && (!cb || !want))) {
		r = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < fx->nr_bitmaps && r >= 0; i++) {
		unsigned n = in_range(fx, i), beyond = 0;
		uint64_t leaks = 0;

		if (!fx->entries[i].blocknr || read_bitmap(ck, fx, &rd, i, &buf))
			continue;
		if (refs && rcmap_range_untouched(refs, i * SM_ENTRIES_PER_BITMAP, n) &&
		    sm_bitmap_all_free(buf)) {
			/* nothing in use on either side (a sparse pool): only the hints */
			judge_hints(ck, fx, i, 0, 0);
			continue;
		}
		if (refs) {
			uint64_t base = i * SM_ENTRIES_PER_BITMAP;
			const uint64_t *threes_ok = NULL;
			unsigned nonzero, first_free;

			/*
			 * An entry of 3 agrees where the overflow tree holds the block
			 * and its count is the computed one: has_ovf, unless an entry
			 * that disagreed (fx->ovf) lies in this bitmap.
			 */
			while (ko < fx->nr_ovf && fx->ovf[ko].block < base)
				ko++;
			if (fx->has_ovf && (ko == fx->nr_ovf || fx->ovf[ko].block >= base + n))
				threes_ok = fx->has_ovf + base / 64;
			rcmap_get_fields2(refs, base, (n + 31) / 32, want);
			if (sm_bitmap_agrees(buf, want, n, threes_ok, &nonzero, &first_free)) {
				/* every entry as counted, none beyond: what the loop below finds */
				fx->nonzero_in += nonzero;
				judge_hints(ck, fx, i, nonzero, first_free);
				continue;
			}
			rcmap_get_counts8(refs, base, n, cb);
		}
		sm_bitmap_decode(buf, SM_ENTRIES_PER_BITMAP, dec);
		compare_entries(fx, refs, i * SM_ENTRIES_PER_BITMAP, dec, cb, n, t, &leaks);
		for (unsigned j = 0; j < n; j++)
			fx->nonzero_in += dec[j] != 0;
		for (unsigned j = n; j < SM_ENTRIES_PER_BITMAP; j++)
			beyond += dec[j] != 0;
		fx->beyond += beyond;
		check_hints(ck, fx, i, dec);
		if (leaks || beyond)
			r = todo_add(fx, i);
	}
out:
	free(rd.buf);
	free(dec);
	free(cb);
	free(want);
	return r;
}

static void report_tally(struct ck *ck, struct ck_sm_fix *fx, const struct sm_tally *t)
{
	unsigned f = ck->opts->flags;

	if (t->ovf_missing) {
		ck_add(ck, DMG_FATAL, RC_SM_OVERFLOW_MISSING, REP_CTX_BLOCK(t->ovf_blk[0]),
		       "%s space map: %llu blocks have a bitmap count of 3 but no entry in the "
		       "ref count tree",
		       fx->name, (unsigned long long)t->ovf_missing);
		for (uint64_t k = 0; k < t->ovf_missing && k < CK_MAX_DETAILS; k++)
			rep_detail(ck->rep, "ref count not in tree for block %llu",
				   (unsigned long long)t->ovf_blk[k]);
	}
	if (t->ovf_low)
		ck_add(ck, DMG_FATAL, RC_SM_OVERFLOW_LOW, REP_CTX_NONE,
		       "%s space map: %llu ref count tree entries are below 3", fx->name,
		       (unsigned long long)t->ovf_low);
	if (t->bad) {
		ck_add(ck, DMG_FATAL, RC_SM_BAD_COUNT, REP_CTX_BLOCK(t->bad_blk[0]),
		       "%s space map: %llu %s blocks have bad reference counts", fx->name,
		       (unsigned long long)t->bad, fx->name);
		for (uint64_t k = 0; k < t->bad && k < CK_MAX_DETAILS; k++)
			rep_detail(ck->rep, "%s block %llu: reference count on disk %u, expected %u",
				   fx->name, (unsigned long long)t->bad_blk[k], t->bad_disk[k],
				   t->bad_want[k]);
		if (t->bad > CK_MAX_DETAILS)
			rep_detail(ck->rep, "...");
	}
	if (fx->leaks) {
		rep_add(ck->rep, DMG_NON_FATAL, RC_SM_LEAK, REP_CTX_BLOCK(t->leak_blk[0]),
			"%llu %s blocks have leaked", (unsigned long long)fx->leaks, fx->name);
		for (uint64_t k = 0; k < fx->leaks && k < CK_MAX_DETAILS; k++)
			rep_detail(ck->rep, "%s block %llu: reference count on disk 1, expected 0",
				   fx->name, (unsigned long long)t->leak_blk[k]);
		if (fx->leaks > CK_MAX_DETAILS)
			rep_detail(ck->rep, "...");
		if (!(f & (THIN_CHECK_AUTO_REPAIR | THIN_CHECK_CLEAR_NEEDS_CHECK |
			   THIN_CHECK_IGNORE_NON_FATAL | THIN_CHECK_OVERRIDE_MAPPING_ROOT |
			   THIN_CHECK_OVERRIDE_DETAILS_ROOT)))
			rep_detail(ck->rep, "perhaps you wanted to run with --auto-repair");
	}
	if (fx->beyond)
		rep_add(ck->rep, DMG_NON_FATAL, RC_SM_BEYOND_END, REP_CTX_NONE,
			"%s space map: %llu entries beyond the end (%llu blocks) are not zero",
			fx->name, (unsigned long long)fx->beyond,
			(unsigned long long)fx->info.nr_blocks);
	if (fx->nonzero_in != fx->info.nr_allocated && !t->bad && !fx->leaks)
		ck_add(ck, DMG_WARNING, RC_SM_NR_ALLOCATED, REP_CTX_NONE,
		       "%s space map: nr_allocated is %llu, but %llu blocks are in use", fx->name,
		       (unsigned long long)fx->info.nr_allocated,
		       (unsigned long long)fx->nonzero_in);
}

static int check_sm(struct ck *ck, enum sm_kind kind, const struct sm_disk_info *info)
{
	struct ck_sm_fix *fx = calloc(1, sizeof(*fx));
	struct sm_tally t;
	int r;

	if (!fx)
		return -ENOMEM;
	ck->fix[kind == SM_DATA ? 0 : 1] = fx;
	memset(&t, 0, sizeof(t));
	fx->kind = kind;
	fx->name = kind == SM_DATA ? "data" : "metadata";
	fx->info = *info;
	fx->nr_bitmaps = sm_nr_bitmaps(info->nr_blocks);
	fx->entries = calloc(fx->nr_bitmaps ? fx->nr_bitmaps : 1, sizeof(*fx->entries));
	if (!fx->entries)
		return -ENOMEM;
	fx->refs = kind == SM_DATA ? ck->data_refs : ck->meta_refs;
	r = kind == SM_DATA ? read_data_index(ck, fx) : read_metadata_index(ck, fx);
	if (r < 0)
		return r;
	/* every bitmap is one metadata reference; count them all before comparing */
	for (uint64_t i = 0; i < fx->nr_bitmaps; i++)
		if (fx->entries[i].blocknr)
			ck_meta_inc(ck, fx->entries[i].blocknr);
	return 0;
}

int ck_check_space_maps(struct ck *ck)
{
	const struct thin_sb *sb = &ck->md->sb;
	struct sm_tally t;
	int r;

	if (ck->unwalked)
		ck_add(ck, DMG_FATAL, RC_NOT_CHECKED, REP_CTX_NONE,
		       "reference counts not compared with the space maps: the %s could not be "
		       "walked",
		       ck->unwalked);
	r = check_sm(ck, SM_DATA, &sb->data_sm);
	if (r >= 0)
		r = check_sm(ck, SM_METADATA, &sb->metadata_sm);
	for (int k = 0; k < 2 && r >= 0; k++)
		r = read_overflow(ck, ck->fix[k]);
	for (int k = 0; k < 2 && r >= 0; k++) {
		struct ck_sm_fix *fx = ck->fix[k];

		memset(&t, 0, sizeof(t));
		r = compare_bitmaps(ck, fx,
				    ck->unwalked ? NULL : k == 0 ? ck->data_refs : ck->meta_refs, &t);
		if (r >= 0)
			report_tally(ck, fx, &t);
	}
	if (ck->fix[0])
		ck->res->data_leaks = ck->fix[0]->leaks;
	if (ck->fix[1])
		ck->res->metadata_leaks = ck->fix[1]->leaks;
	return r;
}

/*----------------------------------------------------------------*/
/* repair, through the transaction manager (lib/thin/pool.h) */

/*
 * Leaked entries (on disk 1, computed 0) go to 0 and the bitmaps holding
 * them or entries beyond the end are written again, all as one
 * transaction: the bitmaps and the index are shadowed, never overwritten,
 * so a torn write cannot leave a bad checksum behind.
 */
static int repair_sm(struct ck *ck, struct thin_pool *p, struct ck_sm_fix *fx,
		     const struct rcmap *refs)
{
	int meta = fx->kind == SM_METADATA;
	uint64_t cleared = 0;
	int r = 0;

	rep_info(ck->rep, "repairing %s leaks", fx->name);
	for (size_t k = 0; k < fx->nr_todo && r >= 0; k++) {
		uint64_t i = fx->todo[k], base = i * SM_ENTRIES_PER_BITMAP;
		unsigned n = in_range(fx, i);

		r = thin_pool_rewrite_bitmap(p, meta, i);
		for (unsigned j = 0; j < n && r >= 0; j++) {
			uint64_t b = base + j;
			uint32_t c;

			if (rcmap_get(refs, b))
				continue;
			if (meta) {
				c = thin_pool_metadata_count(p, b);
			} else {
				r = thin_pool_data_count(p, b, &c);
				if (r < 0)
					break;
			}
			if (c != 1)
				continue;
			r = meta ? thin_pool_clear_metadata_count(p, b) : thin_pool_clear_data_count(p, b);
			cleared++;
		}
	}
	if (r >= 0 && !meta)
		thin_pool_set_data_allocated(p, fx->nonzero_in - cleared);
	return r;
}

/* The needs_check flag alone: rewritten in place, as the kernel sets it (one sector). */
static int clear_flag_only(struct ck *ck)
{
	uint8_t *buf = ioe_alloc_blocks(1);
	int r;

	if (!buf)
		return -ENOMEM;
	r = ck_read_block(ck, 0, buf);
	if (r >= 0) {
		struct disk_superblock *d = (void *)buf;

		d->flags = cpu_to_le32(le32_to_cpu(d->flags) & ~THIN_NEEDS_CHECK);
		thin_sb_validator.prepare(buf, 0, MD_BLOCK_SIZE);
		r = ioe_write(ck->ioe, 0, 1, buf);
	}
	if (r >= 0)
		r = ioe_flush(ck->ioe);
	free(buf);
	return r;
}

int ck_repair(struct ck *ck, int clear_needs_check)
{
	int leaks = 0, flag = clear_needs_check && (ck->md->sb.flags & THIN_NEEDS_CHECK);
	struct thin_pool *p;
	char msg[256];
	int r = 0;

	for (int k = 0; k < 2; k++)
		leaks |= ck->fix[k] && ck->fix[k]->nr_todo;
	if (!leaks && !flag)
		return 0;
	if (!leaks) {
		r = clear_flag_only(ck);
		goto out;
	}
	r = thin_pool_open(ck->md, &p, msg, sizeof(msg));
	if (r < 0)
		return r;
	for (int k = 0; k < 2 && r >= 0; k++) {
		struct ck_sm_fix *fx = ck->fix[k];
		if (fx && fx->nr_todo)
			r = repair_sm(ck, p, fx, k == 0 ? ck->data_refs : ck->meta_refs);
	}
	if (r >= 0 && flag)
		thin_pool_set_needs_check(p, 0);
	if (r >= 0)
		r = thin_pool_commit(p, 0);
	thin_pool_close(p);
	if (r >= 0)
		ck->res->repaired = 1;
out:
	if (r >= 0 && flag) {
		ck->res->cleared_needs_check = 1;
		rep_info(ck->rep, "cleared needs_check flag");
	}
	return r;
}
