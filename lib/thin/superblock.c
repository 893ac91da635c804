#include "thin/superblock.h"

#include <errno.h>
#include <string.h>

#include "btree/btree.h"
#include "crc/crc32c.h"

/* Other persistent-data formats (the kernel's dm-cache, dm-era, dm-array). */
#define CACHE_SUPERBLOCK_CSUM_XOR 9031977u
#define ERA_SUPERBLOCK_CSUM_XOR 146538381u
#define ARRAY_CSUM_XOR 595846735u

static const uint32_t block_salts[] = {
	SUPERBLOCK_CSUM_XOR, BTREE_CSUM_XOR, BITMAP_CSUM_XOR, INDEX_CSUM_XOR,
	CACHE_SUPERBLOCK_CSUM_XOR, ERA_SUPERBLOCK_CSUM_XOR, ARRAY_CSUM_XOR,
};
#define NR_BLOCK_SALTS (sizeof(block_salts) / sizeof(block_salts[0]))

const uint32_t *thin_block_salts(size_t *nr)
{
	*nr = NR_BLOCK_SALTS;
	return block_salts;
}

void thin_bc_set_block_types(struct bc *bc)
{
	bc_set_type_salts(bc, block_salts, NR_BLOCK_SALTS);
}

int thin_block_check(const void *data, uint64_t loc, const struct bc_validator *v)
{
	return bc_classify(v->check(data, loc, MD_BLOCK_SIZE), data, MD_BLOCK_SIZE, block_salts,
			   NR_BLOCK_SALTS);
}

static int sb_check(const void *data, uint64_t loc, size_t len)
{
	return bc_csum_check(data, loc, len, SUPERBLOCK_CSUM_XOR);
}

static void sb_prepare(void *data, uint64_t loc, size_t len)
{
	bc_csum_prepare(data, loc, len, SUPERBLOCK_CSUM_XOR);
}

const struct bc_validator thin_sb_validator = {
	.name = "superblock",
	.check = sb_check,
	.prepare = sb_prepare,
};

void thin_sb_unpack(const struct disk_superblock *d, struct thin_sb *sb)
{
	memset(sb, 0, sizeof(*sb));
	sb->flags = le32_to_cpu(d->flags);
	sb->blocknr = le64_to_cpu(d->blocknr);
	memcpy(sb->uuid, d->uuid, sizeof(sb->uuid));
	sb->magic = le64_to_cpu(d->magic);
	sb->version = le32_to_cpu(d->version);
	sb->time = le32_to_cpu(d->time);
	sb->trans_id = le64_to_cpu(d->trans_id);
	sb->held_root = le64_to_cpu(d->held_root);
	sm_root_unpack((const struct disk_sm_root *)d->data_space_map_root, SM_DATA, &sb->data_sm);
	sm_root_unpack((const struct disk_sm_root *)d->metadata_space_map_root, SM_METADATA,
		       &sb->metadata_sm);
	sb->data_mapping_root = le64_to_cpu(d->data_mapping_root);
	sb->device_details_root = le64_to_cpu(d->device_details_root);
	sb->data_block_size = le32_to_cpu(d->data_block_size);
	sb->metadata_block_size = le32_to_cpu(d->metadata_block_size);
	sb->metadata_nr_blocks = le64_to_cpu(d->metadata_nr_blocks);
	sb->compat_flags = le32_to_cpu(d->compat_flags);
	sb->compat_ro_flags = le32_to_cpu(d->compat_ro_flags);
	sb->incompat_flags = le32_to_cpu(d->incompat_flags);
}

static void pack_sm_root(const struct sm_disk_info *i, uint8_t *out)
{
	struct disk_sm_root *r = (struct disk_sm_root *)out;

	memset(out, 0, 128);
	r->nr_blocks = cpu_to_le64(i->nr_blocks);
	r->nr_allocated = cpu_to_le64(i->nr_allocated);
	r->bitmap_root = cpu_to_le64(i->bitmap_root);
	r->ref_count_root = cpu_to_le64(i->ref_count_root);
}

void thin_sb_pack(const struct thin_sb *sb, struct disk_superblock *d)
{
	memset(d, 0, sizeof(*d));
	d->flags = cpu_to_le32(sb->flags);
	d->blocknr = cpu_to_le64(sb->blocknr);
	memcpy(d->uuid, sb->uuid, sizeof(d->uuid));
	d->magic = cpu_to_le64(sb->magic);
	d->version = cpu_to_le32(sb->version);
	d->time = cpu_to_le32(sb->time);
	d->trans_id = cpu_to_le64(sb->trans_id);
	d->held_root = cpu_to_le64(sb->held_root);
	pack_sm_root(&sb->data_sm, d->data_space_map_root);
	pack_sm_root(&sb->metadata_sm, d->metadata_space_map_root);
	d->data_mapping_root = cpu_to_le64(sb->data_mapping_root);
	d->device_details_root = cpu_to_le64(sb->device_details_root);
	d->data_block_size = cpu_to_le32(sb->data_block_size);
	d->metadata_block_size = cpu_to_le32(sb->metadata_block_size);
	d->metadata_nr_blocks = cpu_to_le64(sb->metadata_nr_blocks);
	d->compat_flags = cpu_to_le32(sb->compat_flags);
	d->compat_ro_flags = cpu_to_le32(sb->compat_ro_flags);
	d->incompat_flags = cpu_to_le32(sb->incompat_flags);
}

int thin_sb_read(struct bc *bc, uint64_t loc, struct thin_sb *sb)
{
	struct bc_block *b;
	int r = bc_get(bc, loc, &thin_sb_validator, &b);

	if (r < 0)
		return r;
	thin_sb_unpack(bc_data(b), sb);
	bc_put(bc, b);
	return 0;
}

void thin_details_unpack(const void *value_le, struct thin_details *d)
{
	const struct disk_device_details *dd = value_le;

	d->mapped_blocks = le64_to_cpu(dd->mapped_blocks);
	d->transaction_id = le64_to_cpu(dd->transaction_id);
	d->creation_time = le32_to_cpu(dd->creation_time);
	d->snapshotted_time = le32_to_cpu(dd->snapshotted_time);
}

void thin_details_pack(const struct thin_details *d, void *value_le)
{
	struct disk_device_details *dd = value_le;

	dd->mapped_blocks = cpu_to_le64(d->mapped_blocks);
	dd->transaction_id = cpu_to_le64(d->transaction_id);
	dd->creation_time = cpu_to_le32(d->creation_time);
	dd->snapshotted_time = cpu_to_le32(d->snapshotted_time);
}
