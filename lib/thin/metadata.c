#include "thin/metadata.h"
#include "util/vec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*----------------------------------------------------------------*/

static int looks_like_xml(const char *path)
{
	char buf[16];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return 0;
	return memmem(buf, (size_t)n, "<superblock", 11) || memmem(buf, (size_t)n, "?xml", 4) ||
	       memmem(buf, (size_t)n, "<!DOCTYPE", 9);
}

int thin_md_open(const char *path, unsigned flags, struct thin_md **out, char *msg, size_t msglen)
{
	struct thin_md *md;
	struct stat st;
	unsigned ioflags = 0;
	int r;

	msg[0] = '\0';
	if (stat(path, &st) < 0) {
		snprintf(msg, msglen, "Couldn't find input file '%s'", path);
		return -ENOENT;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(msg, msglen, "Not a block device or regular file '%s'.", path);
		return -EINVAL;
	}
	if (S_ISREG(st.st_mode) && st.st_size < (off_t)MD_BLOCK_SIZE) {
		snprintf(msg, msglen, "Metadata device/file too small.  Is this binary metadata?");
		return -EINVAL;
	}
	if (S_ISREG(st.st_mode) && looks_like_xml(path)) {
		snprintf(msg, msglen,
			 "This looks like XML.  This tool only supports the binary metadata format.");
		return -EINVAL;
	}
	if (flags & THIN_MD_WRITE)
		ioflags |= IOE_WRITE;
	if (flags & THIN_MD_SHARED)
		ioflags |= IOE_SHARED;
	if (flags & THIN_MD_AIO)
		ioflags |= IOE_AIO;
	md = calloc(1, sizeof(*md));
	if (!md)
		return -ENOMEM;
	r = ioe_open(path, ioflags, &md->ioe);
	if (r < 0) {
		if (r == -EBUSY)
			snprintf(msg, msglen, "%s: device is busy (in use by a live pool?)", path);
		else
			snprintf(msg, msglen, "%s: cannot open: %s", path, strerror(-r));
		free(md);
		return r;
	}
	if (md->ioe->nr_blocks == 0) {
		snprintf(msg, msglen, "Metadata device/file too small.  Is this binary metadata?");
		ioe_destroy(md->ioe);
		free(md);
		return -EINVAL;
	}
	md->bc = bc_create(md->ioe, THIN_MD_CACHE_BLOCKS);
	if (!md->bc) {
		ioe_destroy(md->ioe);
		free(md);
		return -ENOMEM;
	}
	thin_bc_set_block_types(md->bc);
	md->sb_err = thin_sb_read(md->bc, THIN_SB_LOCATION, &md->sb);
	*out = md;
	return 0;
}

int thin_md_open_ioe(struct ioe *e, struct thin_md **out)
{
	struct thin_md *md;

	if (!e->nr_blocks)
		return -EINVAL;
	md = calloc(1, sizeof(*md));
	if (!md)
		return -ENOMEM;
	md->ioe = e;
	md->borrowed_ioe = 1;
	md->bc = bc_create(e, THIN_MD_CACHE_BLOCKS);
	if (!md->bc) {
		free(md);
		return -ENOMEM;
	}
	thin_bc_set_block_types(md->bc);
	md->sb_err = thin_sb_read(md->bc, THIN_SB_LOCATION, &md->sb);
	*out = md;
	return 0;
}

void thin_md_close(struct thin_md *md)
{
	if (!md)
		return;
	bc_destroy(md->bc);
	if (!md->borrowed_ioe)
		ioe_destroy(md->ioe);
	free(md);
}

/*----------------------------------------------------------------*/

struct devs_ctx {
	struct thin_dev_list *l;
	size_t cap;
	int details;             /* which tree is being read */
	struct report *rep;
	const char *prefix;
	struct rcmap *meta_refs;
};

static struct thin_dev *find_or_add(struct devs_ctx *c, uint64_t id)
{
	struct thin_dev_list *l = c->l;
	size_t lo = 0, hi = l->nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (l->devs[mid].dev_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < l->nr && l->devs[lo].dev_id == id)
		return &l->devs[lo];
	if (l->nr == c->cap) {
		struct thin_dev *n = vec_grow(l->devs, &c->cap, sizeof(*n), 64);

		if (!n)
			return NULL;
		l->devs = n;
	}
	memmove(&l->devs[lo + 1], &l->devs[lo], (l->nr - lo) * sizeof(*l->devs));
	memset(&l->devs[lo], 0, sizeof(*l->devs));
	l->devs[lo].dev_id = id;
	l->nr++;
	return &l->devs[lo];
}

static int devs_entry(void *vctx, uint64_t id, const struct thin_details *details, uint64_t root)
{
	struct devs_ctx *c = vctx;
	struct thin_dev *d = find_or_add(c, id);

	if (!d)
		return -ENOMEM;
	if (details) {
		d->details = *details;
		d->has_details = 1;
	} else {
		d->root = root;
		d->has_root = 1;
	}
	return 0;
}

static void devs_damage(void *vctx, enum dmg_level level, enum rep_code code, uint64_t block,
			uint64_t lo, uint64_t hi, const char *msg)
{
	struct devs_ctx *c = vctx;
	struct rep_ctx rc = { block, lo, hi, UINT64_MAX };
	int *damaged = c->details ? &c->l->details_damaged : &c->l->top_damaged;

	if (level >= DMG_FATAL && !*damaged) {
		*damaged = 1;
		*(c->details ? &c->l->details_lost_from : &c->l->top_lost_from) = lo;
	}
	if (!c->rep)
		return;
	if (hi == UINT64_MAX)
		rep_add(c->rep, level, code, rc, "%s: node %llu: %s, affecting keys [%llu, -]",
			c->prefix, (unsigned long long)block, msg, (unsigned long long)lo);
	else
		rep_add(c->rep, level, code, rc, "%s: node %llu: %s, affecting keys [%llu, %llu)",
			c->prefix, (unsigned long long)block, msg, (unsigned long long)lo,
			(unsigned long long)hi);
}

static int count_skip(void *vctx, uint64_t block, int again)
{
	struct devs_ctx *c = vctx;

	(void)again;
	if (c->meta_refs)
		rcmap_inc(c->meta_refs, block);
	return 0;
}

struct table_ctx {
	const struct thin_table_ops *ops;
	void *ctx;
	int details;
};

static int table_leaf(void *vctx, const struct bt_node *n)
{
	struct table_ctx *t = vctx;

	if (t->ops->leaf)
		t->ops->leaf(t->ctx, n->blocknr);
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		struct thin_details d;
		int r;

		if (t->details) {
			thin_details_unpack(bt_value(n, i), &d);
			r = t->ops->entry(t->ctx, bt_key(n, i), &d, 0);
		} else {
			r = t->ops->entry(t->ctx, bt_key(n, i), NULL, get_le64(bt_value(n, i)));
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static void table_damage(void *vctx, enum dmg_level level, enum rep_code code, uint64_t block,
			 uint64_t lo, uint64_t hi, const char *msg)
{
	struct table_ctx *t = vctx;

	if (t->ops->damage)
		t->ops->damage(t->ctx, level, code, block, lo, hi, msg);
}

static int table_child(void *vctx, uint64_t block, int again)
{
	struct table_ctx *t = vctx;

	return t->ops->child ? t->ops->child(t->ctx, block, again) : BT_CHILD_ENTER;
}

int thin_read_table(struct bc *bc, uint64_t root, int details, const struct thin_table_ops *ops,
		    void *ctx)
{
	static const struct bt_walk_ops walk = {
		.leaf = table_leaf, .damage = table_damage, .child = table_child,
	};
	struct table_ctx t = { ops, ctx, details };

	return bt_walk(bc, root, details ? THIN_DETAILS_VSIZE : THIN_MAPPING_VSIZE, &walk, &t);
}

int thin_read_devices(struct bc *bc, uint64_t details_root, uint64_t mapping_root,
		      struct thin_dev_list *out, struct report *rep, struct rcmap *meta_refs)
{
	struct devs_ctx c = { out, 0, 1, rep, "device details tree", meta_refs };
	static const struct thin_table_ops ops = {
		.entry = devs_entry, .damage = devs_damage, .child = count_skip,
	};
	int r;

	memset(out, 0, sizeof(*out));
	if (meta_refs)
		rcmap_inc(meta_refs, details_root);
	r = thin_read_table(bc, details_root, 1, &ops, &c);
	if (r < 0)
		return r;
	c.details = 0;
	c.prefix = "mapping top-level";
	if (meta_refs)
		rcmap_inc(meta_refs, mapping_root);
	return thin_read_table(bc, mapping_root, 0, &ops, &c);
}

void thin_dev_list_release(struct thin_dev_list *l)
{
	free(l->devs);
	memset(l, 0, sizeof(*l));
}

int thin_walk_mappings(struct bc *bc, uint64_t root, const struct bt_walk_ops *ops, void *ctx)
{
	return bt_walk(bc, root, THIN_MAPPING_VSIZE, ops, ctx);
}
