/* thin_ls as a function: fields, formatting, the table and JSON writers. */
#ifndef THINMETA_CMD_LS_H
#define THINMETA_CMD_LS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "thin/view.h"

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
