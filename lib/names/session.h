/*
 * A thin_names session: one command against the side table of per-thin
 * names bound to a pool by its tag (NAMES.md): open the pool, find the
 * table, lock, load, check the binding and generation, change, commit
 * crash-safely (lock, temp file, fsync, rename, directory fsync).
 */
#ifndef THINMETA_NAMES_SESSION_H
#define THINMETA_NAMES_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* exit statuses (NAMES.md §7.6) */
enum { TN_OK = 0, TN_NOT_FOUND = 1, TN_PRECOND = 2, TN_BINDING = 3, TN_CORRUPT = 4,
       TN_METADATA = 5, TN_USAGE = 64 };


struct thin_names_opts {
	const char *table, *md;
	int use_snap, json, tsv, hex, raw, pending, allow_absent, newtag, from_table, dry_run;
	int replace, have_gen;
	uint64_t if_gen;
	unsigned wait_ms;
	const uint8_t *blob;
	size_t blob_len;
	int blob_utf8;
	/*
	 * Test crash points: called at each step of a commit (names table) and
	 * of a tag write; NULL in production.
	 */
	void (*crash_hook)(const char *point, void *ctx);
	void *tmn_hook_ctx, *tag_hook_ctx;
	char **args;
	int nargs;
};


/*
 * Runs cmd ("list", "get", "set", "confirm", "mark-delete", "delete", "tag",
 * "rebind", "gc", "export", "import") with o->args.  Output goes to out.
 * Returns a TN_* status; on anything but TN_OK, msg holds one line (for
 * TN_USAGE it may be empty: show the usage).
 */
int thin_names_session(const struct thin_names_opts *o, const char *cmd, FILE *out, char *msg,
		       size_t msglen);

/* Non-zero when p[0..n) is valid UTF-8 (names are UTF-8 or shown as hex). */
int thin_names_valid_utf8(const uint8_t *p, size_t n);

#endif
