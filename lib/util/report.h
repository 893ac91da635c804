/*
 * Damage is data: a report collects findings with a severity, a finding
 * code, the block path from the tree root and the lost key range.  The
 * caller (a tool) decides where lines go; the library never prints to
 * stdout.  Modeled on e2fsck's problem table and tpt's report levels.
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

/* Closed list of finding codes; rep_code_name() gives a stable identifier. */
enum rep_code {
	RC_NONE = 0,
	/* superblock */
	RC_SB_IO,
	RC_SB_CSUM,
	RC_SB_WRONG_TYPE,
	RC_SB_BLOCKNR,
	RC_SB_MAGIC,
	RC_SB_VERSION,
	RC_SB_INCOMPAT,
	RC_SB_COMPAT_RO,
	RC_SB_METADATA_BLOCK_SIZE,
	RC_SB_DATA_BLOCK_SIZE,
	RC_SB_BAD_ROOT,
	RC_SB_NR_BLOCKS,
	RC_SB_NEEDS_CHECK,
	RC_SB_HELD_ROOT,
	/* B-tree nodes */
	RC_NODE_IO,
	RC_NODE_CSUM,
	RC_NODE_NOT_NODE,
	RC_NODE_BLOCKNR,
	RC_NODE_FLAGS,
	RC_NODE_VALUE_SIZE,
	RC_NODE_MAX_ENTRIES_TOO_LARGE,
	RC_NODE_MAX_ENTRIES_NOT_DIV3,
	RC_NODE_NR_ENTRIES,
	RC_NODE_UNDERFULL,
	RC_NODE_KEYS_ORDER,
	RC_NODE_KEY_RANGE,
	RC_NODE_DEPTH,
	RC_NODE_CYCLE,
	RC_NODE_OUT_OF_BOUNDS,
	RC_NODE_TYPE_CHANGED,
	/* thin semantics */
	RC_DEV_MISSING_DETAILS,
	RC_DEV_MISSING_MAPPING,
	RC_DEV_MAPPED_BLOCKS,
	RC_DEV_LOST_MAPPINGS,
	RC_MAP_DATA_OUT_OF_RANGE,
	RC_MAP_TIME,
	RC_DEV_TIME,
	RC_DEV_ID_RANGE,
	/* space maps */
	RC_SM_INDEX_IO,
	RC_SM_INDEX_CSUM,
	RC_SM_INDEX_WRONG_TYPE,
	RC_SM_INDEX_BLOCKNR,
	RC_SM_INDEX_KEYS,
	RC_SM_BITMAP_IO,
	RC_SM_BITMAP_CSUM,
	RC_SM_BITMAP_WRONG_TYPE,
	RC_SM_BITMAP_BLOCKNR,
	RC_SM_OVERFLOW_MISSING,
	RC_SM_OVERFLOW_LOW,
	RC_SM_BEYOND_END,
	RC_SM_LEAK,
	RC_SM_BAD_COUNT,
	RC_SM_NR_ALLOCATED,
	RC_SM_NR_FREE,
	RC_SM_NONE_FREE_BEFORE,
	RC_SM_TOO_LARGE,
	RC_NOT_CHECKED,
	RC_MAX
};

const char *rep_code_name(enum rep_code code);

struct rep_finding {
	enum dmg_level level;
	enum rep_code code;
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

void rep_add(struct report *rep, enum dmg_level level, enum rep_code code,
	     struct rep_ctx ctx, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void rep_vadd(struct report *rep, enum dmg_level level, enum rep_code code,
	      struct rep_ctx ctx, const char *fmt, va_list ap);

/* The worst level seen. */
enum dmg_level rep_outcome(const struct report *rep);
/* Number of findings recorded (at most REP_MAX_STORED are kept in memory). */
size_t rep_nr_findings(const struct report *rep);
size_t rep_nr_stored(const struct report *rep);
const struct rep_finding *rep_finding(const struct report *rep, size_t i);
/* Number of findings with this code (all of them, stored or not). */
size_t rep_count_code(const struct report *rep, enum rep_code code);

#define REP_MAX_STORED 10000
/* At most this many lines are printed per code; the rest are counted. */
#define REP_MAX_PRINTED_PER_CODE 100

#endif
