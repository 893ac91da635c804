/*
 * Damage is data: a report collects findings with a severity, a finding
 * code, the block path from the tree root and the lost key range.  The
 * caller (a tool) decides where lines go; the library never prints to
 * stdout.  Modeled on e2fsck's problem reporting and tpt's report levels;
 * this is only the mechanism (levels, the collector, printing): the codes
 * and their names are findings/findings.h.
 */
#ifndef THINMETA_UTIL_REPORT_H
#define THINMETA_UTIL_REPORT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

enum dmg_level {
	DMG_NONE = 0,
	DMG_WARNING = 1,   /* printed, never fails a check */
	DMG_NON_FATAL = 2, /* fails unless --ignore-non-fatal-errors */
	DMG_FATAL = 3,
};

/*
 * Finding codes are small non-negative ints owned by the caller (the codes
 * of thin metadata: findings/findings.h).  The report counts findings per
 * code below REP_MAX_CODES and names a code only through the hook its
 * owner installs (rep_set_code_names()).
 */
#define REP_MAX_CODES 128

struct rep_finding {
	enum dmg_level level;
	int code;             /* a finding code, e.g. enum rep_code */
	char *msg;            /* owned by the report */
	uint64_t block;       /* block the finding is about, or UINT64_MAX */
	uint64_t key_begin;   /* lost key range [begin, end), end == 0: none */
	uint64_t key_end;
	uint64_t dev;         /* device id, or UINT64_MAX */
};

struct report;

/*
 * out: where lines are printed as findings arrive (NULL: nowhere).
 * Findings are printed indented two spaces under the current section.
 */
struct report *rep_create(FILE *out, int quiet);
void rep_destroy(struct report *rep);
/*
 * How the report names a code in the line that ends a flood of one code
 * ("further 'node_csum' findings not shown"); without a hook it prints
 * "code N".
 */
void rep_set_code_names(struct report *rep, const char *(*name)(int code));

/* Starts a phase ("examining superblock"); printed at column 0. */
void rep_section(struct report *rep, const char *title);
/* A detail line under the current finding (4 spaces). */
void rep_detail(struct report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A plain informational line at column 0, not a finding. */
void rep_info(struct report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct rep_ctx {
	uint64_t block;
	uint64_t key_begin, key_end;
	uint64_t dev;
};
#define REP_CTX_NONE ((struct rep_ctx){ UINT64_MAX, 0, 0, UINT64_MAX })
#define REP_CTX_BLOCK(b) ((struct rep_ctx){ (b), 0, 0, UINT64_MAX })

void rep_add(struct report *rep, enum dmg_level level, int code,
	     struct rep_ctx ctx, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void rep_vadd(struct report *rep, enum dmg_level level, int code,
	      struct rep_ctx ctx, const char *fmt, va_list ap);

/* The worst level seen. */
enum dmg_level rep_outcome(const struct report *rep);
/* Number of findings recorded (at most REP_MAX_STORED are kept in memory). */
size_t rep_nr_findings(const struct report *rep);
size_t rep_nr_stored(const struct report *rep);
const struct rep_finding *rep_finding(const struct report *rep, size_t i);
/* Number of findings with this code (all of them, stored or not). */
size_t rep_count_code(const struct report *rep, int code);

#define REP_MAX_STORED 10000
/* At most this many lines are printed per code; the rest are counted. */
#define REP_MAX_PRINTED_PER_CODE 100

#endif
