/*
 * thin_check as a library function (FORMAT.md §10).
 *
 * thin_check() opens the metadata at path, runs every check of the
 * checklist and records each finding in rep (sections and findings are
 * printed by the report as they arrive).  With THIN_CHECK_AUTO_REPAIR or
 * THIN_CHECK_CLEAR_NEEDS_CHECK it then repairs leaked blocks and clears the
 * needs_check flag, but only when nothing fatal was found.  Leaks are
 * repaired in one transaction of the transaction manager (lib/thin/pool.h):
 * the bitmaps and the index are shadowed, not overwritten, then a flush,
 * the superblock, a flush.  The flag alone is cleared by rewriting the
 * superblock (one sector, as the kernel sets it).  Nothing is written
 * otherwise.
 */
#ifndef THINMETA_CHECK_CHECK_H
#define THINMETA_CHECK_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"
#include "util/report.h"

/* opts->flags */
#define THIN_CHECK_SUPER_BLOCK_ONLY 0x01u
#define THIN_CHECK_SKIP_MAPPINGS 0x02u
#define THIN_CHECK_IGNORE_NON_FATAL 0x04u
#define THIN_CHECK_AUTO_REPAIR 0x08u
#define THIN_CHECK_CLEAR_NEEDS_CHECK 0x10u
#define THIN_CHECK_METADATA_SNAP 0x20u
#define THIN_CHECK_OVERRIDE_MAPPING_ROOT 0x40u
#define THIN_CHECK_OVERRIDE_DETAILS_ROOT 0x80u

struct thin_check_result;

struct thin_check_opts {
	unsigned flags;
	uint64_t override_mapping_root;
	uint64_t override_details_root;
	/*
	 * Called once the superblock has been read (res->have_sb set), so
	 * that the caller can print the info lines between the sections.
	 * May be NULL.
	 */
	void (*on_superblock)(void *ctx, const struct thin_check_result *res);
	void *ctx;
};

struct thin_check_result {
	int have_sb;                   /* superblock readable: fields below valid */
	uint64_t transaction_id;
	uint64_t metadata_free_blocks; /* metadata sm nr_blocks - nr_allocated */
	int needs_check;               /* flag as found on disk */
	uint64_t nr_devices;
	uint64_t nr_mappings;          /* distinct leaf entries counted */
	uint64_t data_leaks, metadata_leaks;
	int repaired;                  /* something was written */
	int cleared_needs_check;
	enum dmg_level outcome;        /* worst finding left (after repair) */
};

/*
 * Checks the metadata at path.  Returns 0 when the check ran (the verdict
 * is res->outcome and the findings in rep), or a negative errno when it
 * could not run at all; then msg holds one line (no newline) for the user.
 */
int thin_check(const char *path, const struct thin_check_opts *opts, struct report *rep,
	       struct thin_check_result *res, char *msg, size_t msglen);

/* The same over an engine the caller opened (writable for the repairs); e stays open. */
int thin_check_ioe(struct ioe *e, const struct thin_check_opts *opts, struct report *rep,
		   struct thin_check_result *res, char *msg, size_t msglen);

/*
 * The verdict of a finished check: 1 when the metadata passes (no fatal
 * finding; non-fatal ones only with THIN_CHECK_IGNORE_NON_FATAL), else 0.
 * The tool maps it to the exit status.
 */
int thin_check_passed(const struct thin_check_opts *opts, const struct thin_check_result *res);

#endif
