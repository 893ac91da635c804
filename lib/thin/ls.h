/*
 * thin_ls as a function, and the shared pieces of the read-side analysis
 * tools (ls, rmap, delta): opening the live metadata or its snapshot, and
 * the per-device usage walk that reads every distinct mapping leaf at most
 * twice (snapshots share whole subtrees).
 */
#ifndef THINMETA_THIN_LS_H
#define THINMETA_THIN_LS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "thin/metadata.h"

/*----------------------------------------------------------------*/
/* Opening a view: the live trees or those of the metadata snapshot. */

struct thin_view {
	struct thin_md *md;        /* owned */
	struct thin_sb sb;         /* the superblock used: live, or the snapshot copy */
	uint64_t nr_data_blocks;   /* from the live data space map (the copy's is zeroed) */
	struct thin_dev_list devs; /* owned */
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
void thin_view_close(struct thin_view *v);
/* The device with this id in v->devs, or NULL. */
const struct thin_dev *thin_view_find(const struct thin_view *v, uint64_t dev_id);

/*----------------------------------------------------------------*/
/* Per-device data usage. */

struct thin_usage {
	uint64_t mapped;      /* mappings counted in the device's tree */
	uint64_t exclusive;   /* mappings of data blocks referenced by no other mapping */
	uint64_t shared;      /* mapped - exclusive */
	uint64_t highest;     /* highest mapped virtual block (valid when mapped > 0) */
};

/*
 * Counts, for every device of devs (out[i] for devs->devs[i]), its mappings
 * and how many of them map a data block that is mapped exactly once in the
 * whole list of devices ("exclusive"; the rest are "shared").  A leaf
 * reached from k devices counts k times, as in thin_ls 0.9.0 and 1.x.
 * Each distinct leaf is decoded once (one pass: every data block remembers
 * the only device mapping it until a second mapping makes it shared); a
 * leaf reached again is re-read once, on its second visit; internal nodes
 * are re-read per device.  Memory: one byte per data block (two beyond
 * 253 devices, four beyond 65533) plus 24 bytes per distinct leaf.
 * Damage (bad node, mapping beyond nr_data_blocks, device without a tree)
 * returns -EILSEQ with a message in msg.
 */
int thin_usage_compute(struct bc *bc, const struct thin_dev_list *devs, uint64_t nr_data_blocks,
		       struct thin_usage *out, char *msg, size_t msglen);

/*
 * The same walk with the devices split into "live" and "orphan" classes
 * (thin_reconcile, NAMES.md §3).  Live devices are walked first, so when
 * an orphan is walked every live reference is already known.  Besides
 * out[], fills with_live[i] for every orphan i (its mappings of data blocks
 * also mapped by a live device; 0 for live devices) and *reclaimable (data
 * blocks mapped only by orphans: what deleting every orphan frees).
 * Memory: two more bits per data block.
 */
struct thin_usage_split {
	const uint8_t *orphan;     /* in: per device of devs, non-zero = orphan */
	uint64_t *with_live;       /* out: per device (caller allocates devs->nr) */
	uint64_t reclaimable;      /* out */
};

int thin_usage_compute_split(struct bc *bc, const struct thin_dev_list *devs,
			     uint64_t nr_data_blocks, struct thin_usage *out,
			     struct thin_usage_split *split, char *msg, size_t msglen);

/*----------------------------------------------------------------*/
/* thin_ls */

enum thin_ls_field {
	TLF_DEV,
	TLF_MAPPED_BLOCKS,
	TLF_EXCLUSIVE_BLOCKS,
	TLF_SHARED_BLOCKS,
	TLF_HIGHEST_BLOCK,
	TLF_MAPPED_SECTORS,
	TLF_EXCLUSIVE_SECTORS,
	TLF_SHARED_SECTORS,
	TLF_HIGHEST_SECTOR,
	TLF_MAPPED_BYTES,
	TLF_EXCLUSIVE_BYTES,
	TLF_SHARED_BYTES,
	TLF_HIGHEST_BYTE,
	TLF_MAPPED,
	TLF_EXCLUSIVE,
	TLF_SHARED,
	TLF_HIGHEST_MAPPED,
	TLF_TRANSACTION,
	TLF_CREATE_TIME,
	TLF_SNAP_TIME,
	TLF_NAME,            /* the per-thin name (thin_ls --names; needs opts.name_of) */
	TLF_NR
};

const char *thin_ls_field_name(enum thin_ls_field f);

/*
 * Parses a comma separated list of field names (exact, upper case) into
 * fields[0..*nr) (at most max).  Unknown or empty name: -EINVAL with
 * "unknown field '<name>'" in msg.
 */
int thin_ls_parse_fields(const char *spec, enum thin_ls_field *fields, size_t max, size_t *nr,
			 char *msg, size_t msglen);

/* "768KiB": the unit is the largest power of 1024 below bytes / 8, rounded half up. */
void thin_ls_pretty(uint64_t bytes, char *buf, size_t len);

struct thin_ls_opts {
	const char *path;
	const enum thin_ls_field *fields;
	size_t nr_fields;
	int no_headers;
	int json;
	int use_snap;
	uint64_t snap_block;   /* 0: the superblock's held_root */
	/*
	 * The NAME field: names_open (may be NULL) is called once the view is
	 * open, before any output (negative errno + msg fails thin_ls);
	 * name_of gives the cell text of device d, already escaped for a
	 * table (json 0) or for the inside of a JSON string (json 1), valid
	 * until thin_ls returns, or NULL when d has no name ("-" / null).
	 * A NAME field without name_of fails with -EINVAL.
	 */
	int (*names_open)(void *ctx, const struct thin_view *v, char *msg, size_t msglen);
	const char *(*name_of)(void *ctx, const struct thin_dev *d, int json);
	void *names_ctx;
};

/* Writes the table (or JSON) to out.  Failure: negative errno + msg. */
int thin_ls(const struct thin_ls_opts *o, FILE *out, char *msg, size_t msglen);

#endif
