/* Exit statuses shared by every tool (REFERENCE.md "Decisions"). */
#ifndef THINMETA_UTIL_CLI_H
#define THINMETA_UTIL_CLI_H

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define THINMETA_VERSION "0.1.0"

#include <stddef.h>
#include <stdint.h>

/*
 * The same-file guard of every tool that reads one path and writes
 * another.  Do a and b name the same data?  Both are followed through
 * symlinks, so hard links, symlinks and other spellings of one path
 * match by device and inode; two nodes of one block device match by
 * st_rdev; a loop device matches the file it is backed by (and two loop
 * devices over one file match each other).  Returns CLI_SAME (1) or 0
 * when they differ or one of them cannot be stat'ed (a path that does
 * not exist cannot be clobbered through the other).
 */
#define CLI_SAME 1
int cli_same_file(const char *a, const char *b);

/*
 * s as one shell word, for command lines printed for the user to run: as
 * it is when it holds only characters the shell leaves alone, else in
 * single quotes ('\'' for a quote).  Truncated to fit len (always
 * terminated); returns the full length, like snprintf.
 */
size_t cli_shell_quote(const char *s, char *buf, size_t len);

#endif
