/* Exit statuses shared by every tool (REFERENCE.md "Decisions"). */
#ifndef THINMETA_UTIL_CLI_H
#define THINMETA_UTIL_CLI_H

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define THINMETA_VERSION "0.1.0"

#endif
