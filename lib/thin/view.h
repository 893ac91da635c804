/*
 * A read-only view of a pool: the live metadata or its metadata snapshot,
 * with the device list, for the read-side analysis tools (ls, rmap, delta,
 * reconcile, names, dump).
 */
#ifndef THINMETA_THIN_VIEW_H
#define THINMETA_THIN_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "thin/metadata.h"


struct thin_view {
	struct thin_md *md;        /* owned */
	struct thin_sb sb;         /* the superblock used: live, or the snapshot copy */
	uint64_t nr_data_blocks;   /* from the live data space map (the copy's is zeroed) */
	struct thin_dev_list devs; /* owned */
	int owns_md;               /* md is closed by thin_view_close (thin_view_open) */
};

/*
 * Opens path read-only (without O_EXCL when use_snap is set) and reads the
 * device list of the live superblock, or of the metadata snapshot when
 * use_snap is set (at snap_block, or at the superblock's held_root when
 * snap_block is 0).  On failure returns a negative errno and a one-line
 * message in msg ("no current metadata snap", "bad checksum in superblock",
 * damage found in the device trees, or thin_md_open's messages).
 */
int thin_view_open(const char *path, int use_snap, uint64_t snap_block, struct thin_view *v,
		   char *msg, size_t msglen);
/*
 * The same view over metadata the caller has open already (md stays the
 * caller's: thin_view_close leaves it open).  Same messages as above.
 */
int thin_view_attach(struct thin_md *md, int use_snap, uint64_t snap_block, struct thin_view *v,
		     char *msg, size_t msglen);
void thin_view_close(struct thin_view *v);
/* The device with this id in v->devs, or NULL. */
const struct thin_dev *thin_view_find(const struct thin_view *v, uint64_t dev_id);

#endif
