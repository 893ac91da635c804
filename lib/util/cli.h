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
 * Strict decimal option value: digits only (no sign, space or suffix),
 * no overflow.  Returns 0 or -EINVAL.
 */
int cli_parse_u64(const char *s, uint64_t *out);

/*
 * s as one shell word, for command lines printed for the user to run: as
 * it is when it holds only characters the shell leaves alone, else in
 * single quotes ('\'' for a quote).  Truncated to fit len (always
 * terminated); returns the full length, like snprintf.
 */
size_t cli_shell_quote(const char *s, char *buf, size_t len);

#endif
