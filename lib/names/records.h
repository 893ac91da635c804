/*
 * A manager's records of which thin id is which volume (TSV), and id lists
 * (quarantine): read by thin_reconcile and thin_names import.
 */
#ifndef THINMETA_NAMES_RECORDS_H
#define THINMETA_NAMES_RECORDS_H

#include <stddef.h>
#include <stdint.h>

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

#endif
