/*
 * thin_reconcile as a function (NAMES.md §3, §7): compares a pool's
 * devices with a manager's records of which thin id is which volume and
 * reports orphans (with exclusive / shared / shared-with-live space and
 * what deleting all of them would free), dangling and pending records,
 * duplicates, reused ids (incarnation mismatch), the transaction fence,
 * free ids and the binding of an optional side table of names.
 */
#ifndef THINMETA_NAMES_RECONCILE_H
#define THINMETA_NAMES_RECONCILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "names/names.h"

/*----------------------------------------------------------------*/
/* The manager's records: TSV */

struct thin_record {
	uint64_t dev_id;
	char *name;           /* unescaped, NUL terminated, owned */
	size_t name_len;
	int has_stamp;
	uint64_t transaction;
	uint32_t creation_time;
	int pending;
	unsigned line;        /* 1-based line in the input */
};

struct thin_records {
	struct thin_record *r;   /* in input order, owned */
	size_t nr, cap;
};

/*
 * Parses records, one per line:
 *   dev_id TAB name [TAB transaction TAB creation_time] [TAB pending]
 * '#' starts a comment line, blank lines are skipped, "\t", "\n", "\\"
 * and "\xNN" are the escapes in names; transaction and creation_time may be "-"
 * (unknown).  dev_id must be < 2^24.  A bad line: -EINVAL with
 * "line N: reason" in msg.
 */
int thin_records_parse(const char *buf, size_t len, struct thin_records *out, char *msg,
		       size_t msglen);
/* Reads path ("-" = stdin) and parses it. */
int thin_records_load(const char *path, struct thin_records *out, char *msg, size_t msglen);
void thin_records_release(struct thin_records *recs);

/*
 * Id lists (quarantine): one id or range "A-B" per line, '#' comments.
 * Appends to *ids (pairs lo, hi inclusive: ids[2k], ids[2k+1]).
 */
int thin_id_ranges_load(const char *path, uint64_t **ids, size_t *nr_ranges, char *msg,
			size_t msglen);

/*----------------------------------------------------------------*/

enum thin_free_strategy { TFS_LOWEST, TFS_AFTER_MAX, TFS_RANDOM };
enum thin_rc_format { TRF_TEXT, TRF_JSON, TRF_TSV };

/* Exit bits (NAMES.md §7.6) */
#define TRC_ORPHANS 1
#define TRC_DANGLING 2
#define TRC_DUPLICATES 4
#define TRC_FENCE 8
#define TRC_TABLE 16
#define TRC_ERROR 32
#define TRC_USAGE 64

struct thin_reconcile_opts {
	const char *path;
	int use_snap;
	uint64_t snap_block;                 /* 0: the superblock's held_root */
	const struct thin_records *records;
	const struct thin_names_table *table;   /* NULL: none given */
	const char *table_error;             /* non-NULL: the table given is unreadable */
	int have_expect;
	uint64_t expect_trans;
	int strict_fence;
	int no_space;
	int unique_names;
	size_t free_ids;                     /* how many to propose */
	enum thin_free_strategy strategy;
	uint64_t min_id;
	const uint64_t *quarantine;          /* ranges, see thin_id_ranges_load */
	size_t nr_quarantine;
	enum thin_rc_format format;
	int headers;                         /* --tsv --headers */
	/*
	 * Instead of the report: the thin_edit(8) command line that deletes
	 * every orphan ("thin_edit PATH delete A delete B ..."), nothing when
	 * there is none.  The exit bits are the same.
	 */
	int thin_edit_line;
};

/*
 * Runs the reconciliation and writes the report to out.  Returns the
 * exit-bit mask (>= 0), or a negative errno with a one-line message in
 * msg when the metadata cannot be read or free ids cannot be found (the
 * caller exits with TRC_ERROR).
 */
int thin_reconcile(const struct thin_reconcile_opts *o, FILE *out, char *msg, size_t msglen);

#endif
