/*
 * thin_edit as a function: the kernel's pool messages (the grammar of
 * `dmsetup message POOL 0 "..."`) applied offline to pool metadata, all
 * of one call in one transaction (lib/thin/pool.h):
 *
 *   create_thin ID | create_snap ID ORIGIN_ID | delete ID |
 *   set_transaction_id OLD NEW | reserve_metadata_snap |
 *   release_metadata_snap |
 *   set_needs_check | clear_needs_check | rename ID NEW_ID |
 *   grow_metadata [NR_BLOCKS] | grow_data NR_BLOCKS
 *
 * Message names are case-insensitive, as the kernel's.  Device ids are
 * decimal, 0..2^24-1.  A message may be one word list ("delete 5") or its
 * words may be separate arguments (delete 5 delete 6): a word that is not
 * a number starts the next message.
 *
 * A pool whose needs_check flag is set is not changed (the kernel refuses
 * to write such a pool) unless clear_needs_check comes first.
 */
#ifndef THINMETA_CMD_EDIT_H
#define THINMETA_CMD_EDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "thin/metadata.h"

struct thin_edit_opts {
	const char *path;
	const char *const *words;   /* the message arguments, as given */
	size_t nr_words;
	int dry_run;                /* compute and report, write nothing */
	int verbose;                /* report what changed after a real run too */
};

/*
 * Parses the messages (all of them, before the metadata is opened),
 * applies them and commits.  Reports (dry run, verbose) go to out.
 * Returns 0, or a negative errno with one line in msg: nothing has been
 * written then.
 */
int thin_edit(const struct thin_edit_opts *o, FILE *out, char *msg, size_t msglen);
/* The same on metadata opened by the caller (o->path is only used in messages). */
int thin_edit_md(struct thin_md *md, const struct thin_edit_opts *o, FILE *out, char *msg,
		 size_t msglen);

#endif
