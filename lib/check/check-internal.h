/*
 * Internals of thin_check (check.c, check_tree.c, check_sm.c).  Not
 * installed, not included from outside lib/thin/check*.c.
 */
#ifndef THINMETA_CHECK_CHECK_INTERNAL_H
#define THINMETA_CHECK_CHECK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "btree/btree.h"
#include "btree/walk.h"
#include "spacemap/spacemap.h"
#include "check/check.h"
#include "thin/metadata.h"
#include "findings/findings.h"
#include "util/report.h"

/* Per-block lines printed under a space-map summary finding. */
#define CK_MAX_DETAILS 16u

/* Kinds of tree; a block may belong to one kind only. */
enum ck_kind {
	CK_DETAILS = 1,
	CK_TOP,
	CK_BOTTOM,
	CK_DINDEX,
	CK_OVERFLOW,
};

struct ck;

struct ck_tree {
	const char *name;       /* message prefix: "thin device 3", ... */
	enum ck_kind kind;
	uint32_t leaf_vsize;
	uint64_t dev;           /* for findings, UINT64_MAX: none */
	/* called once per distinct valid leaf */
	int (*leaf)(struct ck *ck, void *ctx, const struct bt_node *n);
	void *ctx;
	/* leaf() touches only ctx and the data counts: it may run on the walker's thread */
	int leaf_thread;
	/* optional: bt_walk_tree.leaf_prep (reads only ctx's constants and n) */
	void (*prep)(struct ck *ck, void *ctx, const struct bt_node *n, void *out);
	/* optional, with prep: bt_walk_tree.leaf_ahead */
	void (*ahead)(struct ck *ck, const void *prep);
};

struct ck {
	struct thin_md *md;
	struct ioe *ioe;
	struct report *rep;
	const struct thin_check_opts *opts;
	struct thin_check_result *res;

	uint64_t md_nr_blocks;     /* bound for metadata pointers */
	uint64_t data_nr_blocks;   /* bound for mapped data blocks */
	uint32_t sb_time;
	int snap_prefix;           /* findings are about the metadata snapshot */

	struct rcmap *meta_refs; /* computed metadata ref counts (NULL: not counted) */
	struct rcmap *data_refs; /* computed data ref counts (NULL: not counted) */
	struct bt_walker *walker;        /* the shared memoising walker (btree/walk.h) */
	/*
	 * A tree the space maps count could not be walked (its root is
	 * unusable): the counts are not compared, the maps' own structure
	 * still is.  NULL, or what was not walked.
	 */
	const char *unwalked;

	uint8_t *one;                    /* single-block buffer */

	/* worst level of findings that a leak repair does not fix */
	enum dmg_level worst_other;
	/* per-space-map repair work found by the comparison */
	struct ck_sm_fix *fix[2];

	/* mapping errors of the device being walked (bottom-level leaves) */
	uint64_t bad_data_blocks, late_times;
	uint64_t first_bad_data, first_late;
};

/* Records a finding (and tracks the worst non-repairable level). */
void ck_add(struct ck *ck, enum dmg_level level, enum rep_code code, struct rep_ctx ctx,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Metadata reference from a pointer (no-op when not counting or out of range). */
void ck_meta_inc(struct ck *ck, uint64_t block);

/* Reads one metadata block into buf; 0 or negative errno (-EINVAL: beyond the device). */
int ck_read_block(struct ck *ck, uint64_t block, void *buf);

/* check_tree.c */
int ck_walker_init(struct ck *ck);
void ck_walker_release(struct ck *ck);
/*
 * Validates the tree at root (whose reference the caller has counted),
 * counts metadata refs of every distinct node below, calls t->leaf once
 * per distinct leaf and returns the root's summary in *out.  Returns 0 or
 * a negative errno (out of memory, or the leaf callback's error).
 */
int ck_walk_tree(struct ck *ck, const struct ck_tree *t, uint64_t root, struct bt_summary *out);
void ck_free_buffers(struct ck *ck);

/* check_sm.c */
int ck_check_space_maps(struct ck *ck);
int ck_repair(struct ck *ck, int clear_needs_check);
void ck_sm_fix_free(struct ck *ck);

#endif
