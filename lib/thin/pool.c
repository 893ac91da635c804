/*
 * Pool metadata changes in one transaction (pool.h): the trees of
 * dm-thin-metadata.c over btree_edit.h, the space maps of sm_txn.h.
 */
#include "thin/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree/btree_edit.h"
#include "spacemap/sm_txn.h"
#include "tm/txn.h"

struct thin_pool {
	struct thin_md *md;
	struct tm_txn *tm;
	struct sm_meta *msm;
	struct sm_data *dsm;
	struct thin_sb sb;
	struct bt_tree details, top, bottom;
	int committed_once;
};

/*----------------------------------------------------------------*/
/* value types */

static int data_inc(void *ctx, const void *values_le, uint32_t nr)
{
	struct thin_pool *p = ctx;
	const uint8_t *v = values_le;

	for (uint32_t i = 0; i < nr; i++) {
		int r = sm_data_inc(p->dsm, thin_bt_block(get_le64(v + 8 * (size_t)i)));
		if (r < 0)
			return r;
	}
	return 0;
}

static int data_dec(void *ctx, const void *values_le, uint32_t nr)
{
	struct thin_pool *p = ctx;
	const uint8_t *v = values_le;

	for (uint32_t i = 0; i < nr; i++) {
		int r = sm_data_dec(p->dsm, thin_bt_block(get_le64(v + 8 * (size_t)i)));
		if (r < 0)
			return r;
	}
	return 0;
}

/* Mappings to the same data block are equal whatever their times. */
static int data_equal(void *ctx, const void *a, const void *b)
{
	(void)ctx;
	return thin_bt_block(get_le64(a)) == thin_bt_block(get_le64(b));
}

static int subtree_inc(void *ctx, const void *values_le, uint32_t nr)
{
	struct thin_pool *p = ctx;
	const uint8_t *v = values_le;

	for (uint32_t i = 0; i < nr; i++) {
		int r = tm_txn_inc(p->tm, get_le64(v + 8 * (size_t)i));
		if (r < 0)
			return r;
	}
	return 0;
}

static int subtree_dec(void *ctx, const void *values_le, uint32_t nr)
{
	struct thin_pool *p = ctx;
	const uint8_t *v = values_le;

	for (uint32_t i = 0; i < nr; i++) {
		int r = bt_tree_del(&p->bottom, get_le64(v + 8 * (size_t)i));
		if (r < 0)
			return r;
	}
	return 0;
}

static int subtree_equal(void *ctx, const void *a, const void *b)
{
	(void)ctx;
	return get_le64(a) == get_le64(b);
}

/*----------------------------------------------------------------*/
/* open, close */

static int check_sb(const struct thin_md *md, char *msg, size_t msglen)
{
	const struct thin_sb *sb = &md->sb;

	if (md->sb_err) {
		snprintf(msg, msglen, "cannot read the superblock: %s", bc_strerror(md->sb_err));
		return -EILSEQ;
	}
	if (sb->magic != THIN_MAGIC) {
		snprintf(msg, msglen, "bad magic number in the superblock: not thin metadata");
		return -EILSEQ;
	}
	if (sb->incompat_flags || sb->compat_ro_flags) {
		snprintf(msg, msglen, "the superblock has feature flags this tool cannot write "
			 "(incompat 0x%x, compat_ro 0x%x)", sb->incompat_flags, sb->compat_ro_flags);
		return -EINVAL;
	}
	if (sb->metadata_block_size != 8 || sb->data_block_size < THIN_MIN_DATA_BLOCK_SIZE ||
	    sb->data_block_size > THIN_MAX_DATA_BLOCK_SIZE || sb->data_block_size % 128) {
		snprintf(msg, msglen, "bad block sizes in the superblock (metadata %u, data %u sectors)",
			 sb->metadata_block_size, sb->data_block_size);
		return -EILSEQ;
	}
	if (!sb->metadata_sm.nr_blocks || sb->metadata_sm.nr_blocks > md->ioe->nr_blocks ||
	    sb->metadata_sm.nr_blocks > SM_MAX_METADATA_BLOCKS) {
		snprintf(msg, msglen, "the metadata space map has %llu blocks, the device %llu",
			 (unsigned long long)sb->metadata_sm.nr_blocks,
			 (unsigned long long)md->ioe->nr_blocks);
		return -EILSEQ;
	}
	if (sb->data_sm.nr_blocks > (1ull << 40)) {
		snprintf(msg, msglen, "the data space map has %llu blocks, more than 2^40",
			 (unsigned long long)sb->data_sm.nr_blocks);
		return -EILSEQ;
	}
	return 0;
}

int thin_pool_open(struct thin_md *md, struct thin_pool **out, char *msg, size_t msglen)
{
	struct thin_pool *p;
	int r;

	msg[0] = '\0';
	r = check_sb(md, msg, msglen);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->md = md;
	p->sb = md->sb;
	r = tm_txn_create(md->bc, &p->tm);
	if (r < 0)
		goto bad;
	r = sm_meta_open(p->tm, &md->sb.metadata_sm, md->ioe->nr_blocks, &p->msm);
	if (r < 0) {
		snprintf(msg, msglen, "cannot read the metadata space map: %s", bc_strerror(r));
		goto bad;
	}
	r = sm_data_open(p->tm, &md->sb.data_sm, &p->dsm);
	if (r < 0) {
		snprintf(msg, msglen, "cannot read the data space map: %s", bc_strerror(r));
		goto bad;
	}
	p->details = (struct bt_tree){ p->tm, { .size = THIN_DETAILS_VSIZE } };
	p->top = (struct bt_tree){ p->tm, { THIN_MAPPING_VSIZE, p, subtree_inc, subtree_dec,
					    subtree_equal } };
	p->bottom = (struct bt_tree){ p->tm, { THIN_MAPPING_VSIZE, p, data_inc, data_dec,
					       data_equal } };
	*out = p;
	return 0;
bad:
	if (!msg[0])
		snprintf(msg, msglen, "out of memory");
	thin_pool_close(p);
	return r;
}

void thin_pool_close(struct thin_pool *p)
{
	if (!p)
		return;
	sm_data_destroy(p->dsm);
	sm_meta_destroy(p->msm);
	tm_txn_destroy(p->tm);
	free(p);
}

const struct thin_sb *thin_pool_sb(const struct thin_pool *p)
{
	return &p->sb;
}

uint64_t thin_pool_metadata_allocated(const struct thin_pool *p)
{
	return sm_meta_nr_allocated(p->msm);
}

uint64_t thin_pool_data_allocated(const struct thin_pool *p)
{
	return sm_data_nr_allocated(p->dsm);
}

uint64_t thin_pool_metadata_nr_blocks(const struct thin_pool *p)
{
	return sm_meta_nr_blocks(p->msm);
}

uint64_t thin_pool_data_nr_blocks(const struct thin_pool *p)
{
	return sm_data_nr_blocks(p->dsm);
}

uint64_t thin_pool_device_blocks(const struct thin_pool *p)
{
	uint64_t n = p->md->ioe->nr_blocks;

	return n > SM_MAX_METADATA_BLOCKS ? SM_MAX_METADATA_BLOCKS : n;
}

unsigned long thin_pool_nr_writes(const struct thin_pool *p)
{
	return tm_txn_nr_writes(p->tm);
}

/*----------------------------------------------------------------*/
/* devices */

static int get_details(struct thin_pool *p, uint64_t dev, struct thin_details *d)
{
	struct disk_device_details dd;
	int r = bt_tree_lookup(&p->details, p->sb.device_details_root, dev, &dd);

	if (r < 0)
		return r;
	thin_details_unpack(&dd, d);
	return 0;
}

static int put_details(struct thin_pool *p, uint64_t dev, const struct thin_details *d)
{
	struct disk_device_details dd;

	thin_details_pack(d, &dd);
	return bt_tree_insert(&p->details, p->sb.device_details_root, dev, &dd,
			      &p->sb.device_details_root, NULL);
}

int thin_pool_device(struct thin_pool *p, uint64_t dev, struct thin_details *d, uint64_t *root)
{
	le64 v;
	int r = get_details(p, dev, d);

	if (r < 0)
		return r;
	r = bt_tree_lookup(&p->top, p->sb.data_mapping_root, dev, &v);
	if (r < 0)
		return r == -ENODATA ? -EILSEQ : r;   /* details without a mapping tree */
	if (root)
		*root = le64_to_cpu(v);
	return 0;
}

struct each_dev {
	int (*fn)(void *ctx, uint64_t dev);
	void *ctx;
};

static int each_dev(void *ctx, uint64_t key, const void *value_le)
{
	struct each_dev *e = ctx;

	(void)value_le;
	return e->fn(e->ctx, key);
}

int thin_pool_for_each_device(struct thin_pool *p, int (*fn)(void *ctx, uint64_t dev), void *ctx)
{
	struct each_dev e = { fn, ctx };

	return bt_tree_walk(&p->details, p->sb.device_details_root, each_dev, &e);
}

int thin_pool_create_thin(struct thin_pool *p, uint64_t dev)
{
	struct thin_details d = { 0, p->sb.trans_id, p->sb.time, p->sb.time };
	uint64_t root;
	le64 v;
	int r = bt_tree_lookup(&p->details, p->sb.device_details_root, dev, NULL);

	if (r == 0)
		return -EEXIST;
	if (r != -ENODATA)
		return r;
	r = bt_tree_empty(&p->bottom, &root);
	if (r < 0)
		return r;
	v = cpu_to_le64(root);
	r = bt_tree_insert(&p->top, p->sb.data_mapping_root, dev, &v, &p->sb.data_mapping_root,
			   NULL);
	if (r < 0)
		return r;
	return put_details(p, dev, &d);
}

int thin_pool_create_snap(struct thin_pool *p, uint64_t dev, uint64_t origin)
{
	struct thin_details od, sd;
	uint64_t root;
	le64 v;
	int r = bt_tree_lookup(&p->details, p->sb.device_details_root, dev, NULL);

	if (r == 0)
		return -EEXIST;
	if (r != -ENODATA)
		return r;
	r = bt_tree_lookup(&p->top, p->sb.data_mapping_root, origin, &v);
	if (r < 0)
		return r;
	r = get_details(p, origin, &od);
	if (r < 0)
		return r;
	/* the snapshot shares the origin's tree: one more reference */
	root = le64_to_cpu(v);
	r = tm_txn_inc(p->tm, root);
	if (r < 0)
		return r;
	r = bt_tree_insert(&p->top, p->sb.data_mapping_root, dev, &v, &p->sb.data_mapping_root,
			   NULL);
	if (r < 0)
		return r;
	p->sb.time++;
	od.snapshotted_time = p->sb.time;
	sd = (struct thin_details){ od.mapped_blocks, p->sb.trans_id, p->sb.time, p->sb.time };
	r = put_details(p, origin, &od);
	if (r < 0)
		return r;
	return put_details(p, dev, &sd);
}

int thin_pool_delete(struct thin_pool *p, uint64_t dev)
{
	int r = bt_tree_remove(&p->details, p->sb.device_details_root, dev,
			       &p->sb.device_details_root);

	if (r < 0)
		return r;
	r = bt_tree_remove(&p->top, p->sb.data_mapping_root, dev, &p->sb.data_mapping_root);
	return r == -ENODATA ? -EILSEQ : r;   /* details without a mapping tree */
}

int thin_pool_set_transaction_id(struct thin_pool *p, uint64_t old_id, uint64_t new_id)
{
	if (p->sb.trans_id != old_id)
		return -EINVAL;
	p->sb.trans_id = new_id;
	return 0;
}

int thin_pool_reserve_metadata_snap(struct thin_pool *p)
{
	struct thin_sb copy = p->sb;
	struct tm_block blk;
	int r;

	if (p->sb.held_root)
		return -EBUSY;
	r = tm_txn_new_block(p->tm, &thin_sb_validator, &blk);
	if (r < 0)
		return r;
	/* the superblock as the kernel's commit just before would write it */
	copy.held_root = 0;
	memset(&copy.data_sm, 0, sizeof(copy.data_sm));
	memset(&copy.metadata_sm, 0, sizeof(copy.metadata_sm));
	thin_sb_pack(&copy, blk.data);
	r = tm_txn_inc(p->tm, p->sb.data_mapping_root);
	if (r >= 0)
		r = tm_txn_inc(p->tm, p->sb.device_details_root);
	if (r < 0)
		return r;
	p->sb.held_root = blk.loc;
	return 0;
}

int thin_pool_release_metadata_snap(struct thin_pool *p)
{
	struct tm_block blk;
	struct thin_sb copy;
	uint64_t held = p->sb.held_root;
	int r;

	if (!held)
		return -EINVAL;
	r = tm_txn_read_lock(p->tm, held, &thin_sb_validator, &blk);
	if (r < 0)
		return r;
	thin_sb_unpack(blk.data, &copy);
	tm_txn_unlock(p->tm, &blk);
	p->sb.held_root = 0;
	r = bt_tree_del(&p->top, copy.data_mapping_root);
	if (r >= 0)
		r = bt_tree_del(&p->details, copy.device_details_root);
	if (r >= 0)
		r = tm_txn_dec(p->tm, held);
	return r;
}

void thin_pool_set_needs_check(struct thin_pool *p, int set)
{
	if (set)
		p->sb.flags |= THIN_NEEDS_CHECK;
	else
		p->sb.flags &= ~THIN_NEEDS_CHECK;
}

int thin_pool_rename(struct thin_pool *p, uint64_t dev, uint64_t new_dev)
{
	struct thin_details d;
	uint64_t root;
	le64 v;
	int r = thin_pool_device(p, dev, &d, &root);

	if (r < 0)
		return r;
	if (new_dev == dev)
		return 0;
	r = bt_tree_lookup(&p->details, p->sb.device_details_root, new_dev, NULL);
	if (r == 0 || (r == -ENODATA &&
		       !bt_tree_lookup(&p->top, p->sb.data_mapping_root, new_dev, NULL)))
		return -EEXIST;
	if (r != -ENODATA)
		return r;
	/* keep the tree: one more reference before the entry goes */
	r = tm_txn_inc(p->tm, root);
	if (r >= 0)
		r = bt_tree_remove(&p->top, p->sb.data_mapping_root, dev, &p->sb.data_mapping_root);
	if (r < 0)
		return r;
	v = cpu_to_le64(root);
	r = bt_tree_insert(&p->top, p->sb.data_mapping_root, new_dev, &v,
			   &p->sb.data_mapping_root, NULL);
	if (r >= 0)
		r = bt_tree_remove(&p->details, p->sb.device_details_root, dev,
				   &p->sb.device_details_root);
	if (r >= 0)
		r = put_details(p, new_dev, &d);
	return r;
}

int thin_pool_grow_metadata(struct thin_pool *p, uint64_t nr_blocks)
{
	if (nr_blocks < sm_meta_nr_blocks(p->msm))
		return -EINVAL;
	if (nr_blocks > thin_pool_device_blocks(p))
		return -ENOSPC;
	return sm_meta_extend(p->msm, nr_blocks);
}

int thin_pool_grow_data(struct thin_pool *p, uint64_t nr_blocks)
{
	if (nr_blocks < sm_data_nr_blocks(p->dsm))
		return -EINVAL;
	if (nr_blocks > (1ull << 40))
		return -EFBIG;
	return sm_data_extend(p->dsm, nr_blocks);
}

/*----------------------------------------------------------------*/
/* provisioning */

int thin_pool_alloc_data_block(struct thin_pool *p, uint64_t *b)
{
	return sm_data_new_block(p->dsm, b);
}

int thin_pool_inc_data_block(struct thin_pool *p, uint64_t b)
{
	return sm_data_inc(p->dsm, b);
}

/* Shadows the top level down to dev's entry: *vp is its root, in place. */
static int dev_root_slot(struct thin_pool *p, uint64_t dev, void **vp)
{
	return bt_tree_get_overwrite_leaf(&p->top, p->sb.data_mapping_root, dev,
					  &p->sb.data_mapping_root, vp);
}

int thin_pool_insert_mapping(struct thin_pool *p, uint64_t dev, uint64_t vblock, uint64_t data)
{
	struct thin_details d;
	le64 v = cpu_to_le64(thin_bt_pack(data, p->sb.time));
	uint64_t root;
	void *vp;
	int inserted, r = get_details(p, dev, &d);

	if (r < 0)
		return r;
	if (data >= sm_data_nr_blocks(p->dsm))
		return -EINVAL;
	r = dev_root_slot(p, dev, &vp);
	if (r < 0)
		return r;
	r = bt_tree_insert(&p->bottom, get_le64(vp), vblock, &v, &root, &inserted);
	if (r < 0)
		return r;
	put_le64(vp, root);
	if (!inserted)
		return 0;
	d.mapped_blocks++;
	return put_details(p, dev, &d);
}

int thin_pool_remove_mapping(struct thin_pool *p, uint64_t dev, uint64_t vblock)
{
	struct thin_details d;
	uint64_t root;
	le64 v;
	void *vp;
	int r = get_details(p, dev, &d);

	if (r < 0)
		return r;
	r = bt_tree_lookup(&p->top, p->sb.data_mapping_root, dev, &v);
	if (r < 0)
		return r;
	r = bt_tree_lookup(&p->bottom, le64_to_cpu(v), vblock, NULL);
	if (r < 0)
		return r;
	r = dev_root_slot(p, dev, &vp);
	if (r < 0)
		return r;
	r = bt_tree_remove(&p->bottom, get_le64(vp), vblock, &root);
	if (r < 0)
		return r;
	put_le64(vp, root);
	d.mapped_blocks--;
	return put_details(p, dev, &d);
}

int thin_pool_data_count(struct thin_pool *p, uint64_t b, uint32_t *count)
{
	return sm_data_get_count(p->dsm, b, count);
}

uint32_t thin_pool_metadata_count(const struct thin_pool *p, uint64_t b)
{
	return sm_meta_count(p->msm, b);
}

void thin_pool_set_data_allocated(struct thin_pool *p, uint64_t nr)
{
	sm_data_set_nr_allocated(p->dsm, nr);
}

int thin_pool_clear_data_count(struct thin_pool *p, uint64_t b)
{
	return sm_data_set_count(p->dsm, b, 0);
}

int thin_pool_clear_metadata_count(struct thin_pool *p, uint64_t b)
{
	return sm_meta_set_count(p->msm, b, 0);
}

int thin_pool_rewrite_bitmap(struct thin_pool *p, int metadata, uint64_t i)
{
	return metadata ? sm_meta_touch_bitmap(p->msm, i) : sm_data_touch_bitmap(p->dsm, i);
}

/*----------------------------------------------------------------*/
/* commit */

int thin_pool_commit(struct thin_pool *p, int dry_run)
{
	uint8_t *buf;
	int r = tm_txn_error(p->tm);

	if (r < 0)
		return r;
	r = sm_data_commit(p->dsm, &p->sb.data_sm);
	if (r >= 0)
		r = sm_meta_commit(p->msm, &p->sb.metadata_sm);
	if (r < 0)
		return r;
	buf = ioe_alloc_blocks(1);
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, MD_BLOCK_SIZE);
	p->sb.blocknr = 0;
	thin_sb_pack(&p->sb, (struct disk_superblock *)buf);
	r = tm_txn_commit(p->tm, &thin_sb_validator, buf, dry_run);
	free(buf);
	if (r < 0 || dry_run)
		return r;
	sm_data_begin(p->dsm);
	sm_meta_begin(p->msm);
	p->md->sb = p->sb;
	return 0;
}
