#include "spacemap/sm_writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree/btree_builder.h"
#include "util/bits.h"

uint64_t sm_data_blocks_needed(uint64_t nr_blocks)
{
	uint64_t nb = sm_nr_bitmaps(nr_blocks);

	/* bitmaps, index leaves (168 a leaf), overflow root */
	return nb + (nb + 167) / 168 + 1;
}

uint64_t sm_metadata_blocks_needed(uint64_t nr_blocks)
{
	return sm_nr_bitmaps(nr_blocks) + 2;
}

/* Encodes counts of blocks [base, base + n) into a bitmap; returns the hints. */
static void encode_bitmap(const struct rcmap *counts, uint64_t base, uint64_t n, void *block,
			  struct sm_index_entry *ie)
{
	const uint64_t evens = 0x5555555555555555ull;
	uint64_t w[SM_ENTRIES_PER_BITMAP / 32];
	uint8_t *words = (uint8_t *)block + sizeof(struct disk_bitmap_header);
	uint32_t nonzero = 0, first_free = SM_ENTRIES_PER_BITMAP;
	unsigned nw = (unsigned)((n + 31) / 32);

	rcmap_get_fields2(counts, base, nw, w);
	if (n % 32)
		w[nw - 1] &= (1ull << (2 * (n % 32))) - 1;   /* only the blocks [base, base + n) */
	memset(block, 0, MD_BLOCK_SIZE);
	for (unsigned k = 0; k < nw; k++) {
		uint64_t used = (w[k] | (w[k] >> 1)) & evens;

		put_le64(words + 8 * k, w[k]);
		nonzero += tm_popcount64(used);
		if (first_free == SM_ENTRIES_PER_BITMAP && used != evens)
			first_free = k * 32 + (unsigned)__builtin_ctzll(~used & evens) / 2;
	}
	if (first_free > n)
		first_free = (uint32_t)n;
	ie->nr_free = SM_ENTRIES_PER_BITMAP - nonzero;
	ie->none_free_before = first_free;
}

static int write_overflow(struct tm_mgr *tm, const struct rcmap *counts, uint64_t nr_blocks,
			  uint64_t *root)
{
	struct bt_builder_opts o = { .value_size = SM_OVERFLOW_VSIZE };
	uint8_t c[SM_ENTRIES_PER_BITMAP];
	struct bt_builder *b;
	int r;

	r = bt_builder_create(tm, &o, &b);
	if (r < 0)
		return r;
	for (uint64_t base = 0; base < nr_blocks && r >= 0; base += SM_ENTRIES_PER_BITMAP) {
		uint64_t n = nr_blocks - base < SM_ENTRIES_PER_BITMAP ? nr_blocks - base
								      : SM_ENTRIES_PER_BITMAP;
		rcmap_get_counts8(counts, base, n, c);
		for (uint64_t k = 0; k < n && r >= 0; k++) {
			if (c[k] >= 3) {
				le32 v = cpu_to_le32(rcmap_get(counts, base + k));
				r = bt_builder_add(b, base + k, &v);
			}
		}
	}
	if (r >= 0)
		r = bt_builder_finish(b, root);
	bt_builder_destroy(b);
	return r;
}

static uint64_t count_nonzero(const struct rcmap *counts, uint64_t nr_blocks)
{
	uint8_t c[SM_ENTRIES_PER_BITMAP];
	uint64_t nz = 0;

	for (uint64_t base = 0; base < nr_blocks; base += SM_ENTRIES_PER_BITMAP) {
		uint64_t n = nr_blocks - base < SM_ENTRIES_PER_BITMAP ? nr_blocks - base
								      : SM_ENTRIES_PER_BITMAP;
		uint32_t k = 0;

		rcmap_get_counts8(counts, base, n, c);
		for (uint64_t i = 0; i < n; i++)
			k += c[i] != 0;
		nz += k;
	}
	return nz;
}

/* Allocates and writes the bitmaps of counts[0, nr_blocks); entries get their index. */
static int write_bitmaps(struct tm_mgr *tm, const struct rcmap *counts, uint64_t nr_blocks,
			 struct sm_index_entry *entries, uint64_t nb, uint8_t *buf)
{
	int r;

	for (uint64_t i = 0; i < nb; i++) {
		r = tm_alloc(tm, &entries[i].blocknr);
		if (r < 0)
			return r;
	}
	for (uint64_t i = 0; i < nb; i++) {
		uint64_t base = i * SM_ENTRIES_PER_BITMAP;
		uint64_t n = nr_blocks - base < SM_ENTRIES_PER_BITMAP ? nr_blocks - base
								      : SM_ENTRIES_PER_BITMAP;
		encode_bitmap(counts, base, n, buf, &entries[i]);
		r = tm_write(tm, entries[i].blocknr, &sm_bitmap_validator, buf);
		if (r < 0)
			return r;
	}
	return 0;
}

int sm_write_data(struct tm_mgr *tm, const struct rcmap *counts, uint64_t nr_blocks,
		  struct sm_disk_info *root)
{
	uint64_t nb = sm_nr_bitmaps(nr_blocks);
	struct sm_index_entry *entries = calloc(nb ? nb : 1, sizeof(*entries));
	uint8_t *buf = ioe_alloc_blocks(1);
	struct bt_builder_opts o = { .value_size = SM_INDEX_ENTRY_SIZE };
	struct bt_builder *b = NULL;
	int r = -ENOMEM;

	if (!entries || !buf)
		goto out;
	memset(root, 0, sizeof(*root));
	root->kind = SM_DATA;
	root->nr_blocks = nr_blocks;
	root->nr_allocated = count_nonzero(counts, nr_blocks);
	r = write_overflow(tm, counts, nr_blocks, &root->ref_count_root);
	if (r < 0)
		goto out;
	r = write_bitmaps(tm, counts, nr_blocks, entries, nb, buf);
	if (r < 0)
		goto out;
	r = bt_builder_create(tm, &o, &b);
	if (r < 0)
		goto out;
	for (uint64_t i = 0; i < nb && r >= 0; i++) {
		struct disk_index_entry ie = {
			cpu_to_le64(entries[i].blocknr), cpu_to_le32(entries[i].nr_free),
			cpu_to_le32(entries[i].none_free_before)
		};
		r = bt_builder_add(b, i, &ie);
	}
	if (r >= 0)
		r = bt_builder_finish(b, &root->bitmap_root);
out:
	bt_builder_destroy(b);
	free(entries);
	free(buf);
	return r;
}

int sm_write_metadata(struct tm_mgr *tm, struct sm_disk_info *root)
{
	uint64_t nr_blocks = tm_nr_blocks(tm), nb = sm_nr_bitmaps(nr_blocks), index_loc;
	const struct rcmap *counts = tm_refs(tm);
	struct sm_index_entry *entries = calloc(nb ? nb : 1, sizeof(*entries));
	uint8_t *buf = ioe_alloc_blocks(1);
	int r = -ENOMEM;

	if (nb > SM_MAX_METADATA_BITMAPS)
		r = -EINVAL;
	if (!entries || !buf || nb > SM_MAX_METADATA_BITMAPS)
		goto out;
	memset(root, 0, sizeof(*root));
	root->kind = SM_METADATA;
	root->nr_blocks = nr_blocks;
	/* the overflow tree's own nodes have count 1: they never enter it */
	r = write_overflow(tm, counts, nr_blocks, &root->ref_count_root);
	if (r < 0)
		goto out;
	/* bitmaps and the index block are allocated before any count is encoded */
	for (uint64_t i = 0; i < nb; i++) {
		r = tm_alloc(tm, &entries[i].blocknr);
		if (r < 0)
			goto out;
	}
	r = tm_alloc(tm, &index_loc);
	if (r < 0)
		goto out;
	for (uint64_t i = 0; i < nb; i++) {
		uint64_t base = i * SM_ENTRIES_PER_BITMAP;
		uint64_t n = nr_blocks - base < SM_ENTRIES_PER_BITMAP ? nr_blocks - base
								      : SM_ENTRIES_PER_BITMAP;
		encode_bitmap(counts, base, n, buf, &entries[i]);
		r = tm_write(tm, entries[i].blocknr, &sm_bitmap_validator, buf);
		if (r < 0)
			goto out;
	}
	{
		struct disk_metadata_index *mi = (struct disk_metadata_index *)buf;
		memset(buf, 0, MD_BLOCK_SIZE);
		for (uint64_t i = 0; i < nb; i++) {
			mi->index[i].blocknr = cpu_to_le64(entries[i].blocknr);
			mi->index[i].nr_free = cpu_to_le32(entries[i].nr_free);
			mi->index[i].none_free_before = cpu_to_le32(entries[i].none_free_before);
		}
		r = tm_write(tm, index_loc, &sm_index_validator, buf);
		if (r < 0)
			goto out;
	}
	root->bitmap_root = index_loc;
	root->nr_allocated = count_nonzero(counts, nr_blocks);
out:
	free(entries);
	free(buf);
	return r;
}
