#include "thin/view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------*/
/* Opening a view */

#define THIN_VIEW_CACHE_BLOCKS 1024

int thin_view_open(const char *path, int use_snap, uint64_t snap_block, struct thin_view *v,
		   char *msg, size_t msglen)
{
	struct thin_md *md;
	int r;

	memset(v, 0, sizeof(*v));
	r = thin_md_open(path, use_snap ? THIN_MD_SHARED : 0, &md, msg, msglen);
	if (r < 0)
		return r;
	/* tree walks read each block about once: a small cache is enough */
	bc_set_max_blocks(md->bc, THIN_VIEW_CACHE_BLOCKS);
	r = thin_view_attach(md, use_snap, snap_block, v, msg, msglen);
	if (r < 0) {
		thin_md_close(md);
		return r;
	}
	v->owns_md = 1;
	return 0;
}

int thin_view_attach(struct thin_md *md, int use_snap, uint64_t snap_block, struct thin_view *v,
		     char *msg, size_t msglen)
{
	struct report *rep;
	const struct rep_finding *f;
	uint64_t details_root, mapping_root;
	int r;

	memset(v, 0, sizeof(*v));
	v->md = md;
	if (v->md->sb_err < 0) {
		snprintf(msg, msglen, "%s in superblock", bc_strerror(v->md->sb_err));
		r = v->md->sb_err;
		goto fail;
	}
	if (v->md->sb.magic != THIN_MAGIC) {
		snprintf(msg, msglen, "bad magic in superblock");
		r = -EILSEQ;
		goto fail;
	}
	v->sb = v->md->sb;
	v->nr_data_blocks = v->md->sb.data_sm.nr_blocks;
	if (use_snap) {
		uint64_t h = snap_block ? snap_block : v->md->sb.held_root;

		if (!h) {
			snprintf(msg, msglen, "no current metadata snap");
			r = -ENOENT;
			goto fail;
		}
		r = thin_sb_read(v->md->bc, h, &v->sb);
		if (r == 0 && v->sb.magic != THIN_MAGIC)
			r = -EILSEQ;
		if (r < 0) {
			snprintf(msg, msglen, "cannot read metadata snapshot at block %" PRIu64 ": %s",
				 h, bc_strerror(r));
			goto fail;
		}
	}
	details_root = v->sb.device_details_root;
	mapping_root = v->sb.data_mapping_root;
	rep = rep_create(NULL, 1);
	if (!rep) {
		r = -ENOMEM;
		goto fail;
	}
	r = thin_read_devices(v->md->bc, details_root, mapping_root, &v->devs, rep, NULL);
	if (r == 0 && rep_nr_stored(rep) > 0 && rep_outcome(rep) >= DMG_NON_FATAL) {
		f = rep_finding(rep, 0);
		snprintf(msg, msglen, "%s", f->msg);
		r = -EILSEQ;
	} else if (r < 0) {
		snprintf(msg, msglen, "cannot read the device trees: %s", strerror(-r));
	}
	rep_destroy(rep);
	if (r < 0)
		goto fail;
	return 0;
fail:
	thin_view_close(v);
	return r;
}

void thin_view_close(struct thin_view *v)
{
	thin_dev_list_release(&v->devs);
	if (v->owns_md)
		thin_md_close(v->md);
	v->md = NULL;
	v->owns_md = 0;
}

const struct thin_dev *thin_view_find(const struct thin_view *v, uint64_t dev_id)
{
	size_t lo = 0, hi = v->devs.nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->devs.devs[mid].dev_id < dev_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < v->devs.nr && v->devs.devs[lo].dev_id == dev_id)
		return &v->devs.devs[lo];
	return NULL;
}

