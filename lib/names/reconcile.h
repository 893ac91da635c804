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
#include "names/records.h"

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
