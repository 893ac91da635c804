/*
 * Opening pool metadata read-only and enumerating its devices: the shared
 * entry point of the read-side tools (check, dump, ls, delta, rmap, trim).
 */
#ifndef THINMETA_THIN_METADATA_H
#define THINMETA_THIN_METADATA_H

#include <stdint.h>
#include <stdio.h>

#include "block-cache/block-cache.h"
#include "btree/btree.h"
#include "btree/walk.h"
#include "thin/superblock.h"
#include "findings/findings.h"
#include "util/report.h"

struct thin_md {
	struct ioe *ioe;
	struct bc *bc;
	struct thin_sb sb;   /* live superblock (valid if sb_err == 0) */
	int sb_err;          /* thin_sb_read() result for block 0 */
	int borrowed_ioe;    /* thin_md_open_ioe: the engine stays the caller's */
};

#define THIN_MD_WRITE 1u      /* open read-write (repairs in place) */
#define THIN_MD_SHARED 2u     /* no O_EXCL (reading a metadata snapshot of a live pool) */
#define THIN_MD_AIO 4u

/* Default cache size in blocks (bounded memory). */
#define THIN_MD_CACHE_BLOCKS 4096

/*
 * Validates the input path the way the reference does and opens it.
 * On failure returns a negative errno and writes a one-line message
 * (no trailing newline) into msg: "Couldn't find input file '<p>'",
 * "Not a block device or regular file '<p>'.", "Metadata device/file too
 * small.  Is this binary metadata?", "This looks like XML.  This tool only
 * supports the binary metadata format.", or "<path>: device is busy (in
 * use by a live pool?)".  The superblock is read but not judged: see
 * md->sb_err.
 */
int thin_md_open(const char *path, unsigned flags, struct thin_md **out, char *msg, size_t msglen);
void thin_md_close(struct thin_md *md);

/*
 * The same over an engine the caller opened (the in-memory engine of the
 * fault-injection tests): no path checks; thin_md_close leaves e open.
 * Returns 0 or -ENOMEM / -EINVAL (an empty engine).
 */
int thin_md_open_ioe(struct ioe *e, struct thin_md **out);

/* A device as found in the details and top-level mapping trees. */
struct thin_dev {
	uint64_t dev_id;
	int has_details, has_root;
	struct thin_details details;
	uint64_t root;       /* bottom-level tree root */
};

struct thin_dev_list {
	struct thin_dev *devs;   /* sorted by dev_id, owned (free with thin_dev_list_release) */
	size_t nr;
	/*
	 * Fatal damage per tree (details, top-level): set with the first lost
	 * key; the walk goes on, so devices beyond the damage may be listed.
	 */
	int details_damaged, top_damaged;
	uint64_t details_lost_from, top_lost_from;
};

/*
 * The one reader of a device table: the details tree (details set) or the
 * mapping top level, walked in key order by the path walker.  entry() gets
 * each device id with its details (details tree) or its bottom-level root
 * (top level); leaf() (may be NULL) each leaf block before its entries;
 * damage() and child() as in bt_walk_ops (may be NULL).
 */
struct thin_table_ops {
	int (*entry)(void *ctx, uint64_t id, const struct thin_details *d, uint64_t root);
	void (*leaf)(void *ctx, uint64_t block);
	void (*damage)(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
		       uint64_t lo, uint64_t hi, const char *msg);
	int (*child)(void *ctx, uint64_t block, int again);
};

int thin_read_table(struct bc *bc, uint64_t root, int details, const struct thin_table_ops *ops,
		    void *ctx);

/*
 * Reads the details tree and the top-level mapping tree of (details_root,
 * mapping_root) and merges them by dev id.  Damage goes to rep (may be
 * NULL) with the given prefix ("device details tree", "mapping top-level").
 * meta_refs (may be NULL) counts the nodes of both trees (§7.5).
 */
int thin_read_devices(struct bc *bc, uint64_t details_root, uint64_t mapping_root,
		      struct thin_dev_list *out, struct report *rep, struct rcmap *meta_refs);
void thin_dev_list_release(struct thin_dev_list *l);

/*
 * Walks one device's bottom-level tree in key order, calling leaf() for
 * each valid leaf (entries: key = virtual block, value = block_time).
 * Damaged subtrees go to damage() with the lost key range.
 */
int thin_walk_mappings(struct bc *bc, uint64_t root, const struct bt_walk_ops *ops, void *ctx);

#endif
