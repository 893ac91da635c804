#include "util/report.h"
#include "util/vec.h"

#include <stdlib.h>
#include <string.h>

struct report {
	FILE *out;
	int quiet;
	enum dmg_level worst;
	size_t nr, nr_stored, cap;
	struct rep_finding *f;
	size_t per_code[RC_MAX];
};

static const char *const code_names[RC_MAX] = {
	[RC_NONE] = "none",
	[RC_SB_IO] = "sb_io",
	[RC_SB_CSUM] = "sb_csum",
	[RC_SB_WRONG_TYPE] = "sb_wrong_type",
	[RC_SB_BLOCKNR] = "sb_blocknr",
	[RC_SB_MAGIC] = "sb_magic",
	[RC_SB_VERSION] = "sb_version",
	[RC_SB_INCOMPAT] = "sb_incompat",
	[RC_SB_COMPAT_RO] = "sb_compat_ro",
	[RC_SB_METADATA_BLOCK_SIZE] = "sb_metadata_block_size",
	[RC_SB_DATA_BLOCK_SIZE] = "sb_data_block_size",
	[RC_SB_BAD_ROOT] = "sb_bad_root",
	[RC_SB_NR_BLOCKS] = "sb_nr_blocks",
	[RC_SB_NEEDS_CHECK] = "sb_needs_check",
	[RC_SB_HELD_ROOT] = "sb_held_root",
	[RC_NODE_IO] = "node_io",
	[RC_NODE_CSUM] = "node_csum",
	[RC_NODE_NOT_NODE] = "node_not_node",
	[RC_NODE_BLOCKNR] = "node_blocknr",
	[RC_NODE_FLAGS] = "node_flags",
	[RC_NODE_VALUE_SIZE] = "node_value_size",
	[RC_NODE_MAX_ENTRIES_TOO_LARGE] = "node_max_entries_too_large",
	[RC_NODE_MAX_ENTRIES_NOT_DIV3] = "node_max_entries_not_div3",
	[RC_NODE_NR_ENTRIES] = "node_nr_entries",
	[RC_NODE_UNDERFULL] = "node_underfull",
	[RC_NODE_KEYS_ORDER] = "node_keys_order",
	[RC_NODE_KEY_RANGE] = "node_key_range",
	[RC_NODE_DEPTH] = "node_depth",
	[RC_NODE_CYCLE] = "node_cycle",
	[RC_NODE_OUT_OF_BOUNDS] = "node_out_of_bounds",
	[RC_NODE_TYPE_CHANGED] = "node_type_changed",
	[RC_DEV_MISSING_DETAILS] = "dev_missing_details",
	[RC_DEV_MISSING_MAPPING] = "dev_missing_mapping",
	[RC_DEV_MAPPED_BLOCKS] = "dev_mapped_blocks",
	[RC_DEV_LOST_MAPPINGS] = "dev_lost_mappings",
	[RC_MAP_DATA_OUT_OF_RANGE] = "map_data_out_of_range",
	[RC_MAP_TIME] = "map_time",
	[RC_DEV_TIME] = "dev_time",
	[RC_DEV_ID_RANGE] = "dev_id_range",
	[RC_SM_INDEX_IO] = "sm_index_io",
	[RC_SM_INDEX_CSUM] = "sm_index_csum",
	[RC_SM_INDEX_WRONG_TYPE] = "sm_index_wrong_type",
	[RC_SM_INDEX_BLOCKNR] = "sm_index_blocknr",
	[RC_SM_INDEX_KEYS] = "sm_index_keys",
	[RC_SM_BITMAP_IO] = "sm_bitmap_io",
	[RC_SM_BITMAP_CSUM] = "sm_bitmap_csum",
	[RC_SM_BITMAP_WRONG_TYPE] = "sm_bitmap_wrong_type",
	[RC_SM_BITMAP_BLOCKNR] = "sm_bitmap_blocknr",
	[RC_SM_OVERFLOW_MISSING] = "sm_overflow_missing",
	[RC_SM_OVERFLOW_LOW] = "sm_overflow_low",
	[RC_SM_BEYOND_END] = "sm_beyond_end",
	[RC_SM_LEAK] = "sm_leak",
	[RC_SM_BAD_COUNT] = "sm_bad_count",
	[RC_SM_NR_ALLOCATED] = "sm_nr_allocated",
	[RC_SM_NR_FREE] = "sm_nr_free",
	[RC_SM_NONE_FREE_BEFORE] = "sm_none_free_before",
	[RC_SM_TOO_LARGE] = "sm_too_large",
	[RC_NOT_CHECKED] = "not_checked",
};

const char *rep_code_name(enum rep_code code)
{
	if (code >= RC_MAX || !code_names[code])
		return "unknown";
	return code_names[code];
}

struct report *rep_create(FILE *out, int quiet)
{
	struct report *rep = calloc(1, sizeof(*rep));

	if (!rep)
		return NULL;
	rep->out = out;
	rep->quiet = quiet;
	return rep;
}

void rep_destroy(struct report *rep)
{
	if (!rep)
		return;
	for (size_t i = 0; i < rep->nr_stored; i++)
		free(rep->f[i].msg);
	free(rep->f);
	free(rep);
}

static int printing(const struct report *rep)
{
	return rep->out && !rep->quiet;
}

void rep_section(struct report *rep, const char *title)
{
	if (printing(rep))
		fprintf(rep->out, "%s\n", title);
}

void rep_info(struct report *rep, const char *fmt, ...)
{
	va_list ap;

	if (!printing(rep))
		return;
	va_start(ap, fmt);
	vfprintf(rep->out, fmt, ap);
	va_end(ap);
	fputc('\n', rep->out);
}

void rep_detail(struct report *rep, const char *fmt, ...)
{
	va_list ap;

	if (!printing(rep))
		return;
	fputs("    ", rep->out);
	va_start(ap, fmt);
	vfprintf(rep->out, fmt, ap);
	va_end(ap);
	fputc('\n', rep->out);
}

static void store(struct report *rep, enum dmg_level level, enum rep_code code,
		  struct rep_ctx ctx, char *msg)
{
	struct rep_finding *f;

	if (rep->nr_stored >= REP_MAX_STORED) {
		free(msg);
		return;
	}
	if (rep->nr_stored == rep->cap) {
		struct rep_finding *n = vec_grow(rep->f, &rep->cap, sizeof(*n), 16);

		if (!n) {
			free(msg);
			return;
		}
		rep->f = n;
	}
	f = &rep->f[rep->nr_stored++];
	f->level = level;
	f->code = code;
	f->msg = msg;
	f->block = ctx.block;
	f->key_begin = ctx.key_begin;
	f->key_end = ctx.key_end;
	f->dev = ctx.dev;
}

void rep_vadd(struct report *rep, enum dmg_level level, enum rep_code code,
	      struct rep_ctx ctx, const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (level > rep->worst)
		rep->worst = level;
	rep->nr++;
	if (code < RC_MAX)
		rep->per_code[code]++;
	if (printing(rep) && msg) {
		if (code >= RC_MAX || rep->per_code[code] <= REP_MAX_PRINTED_PER_CODE)
			fprintf(rep->out, "  %s\n", msg);
		else if (rep->per_code[code] == REP_MAX_PRINTED_PER_CODE + 1)
			fprintf(rep->out, "  (further '%s' findings not shown)\n",
				rep_code_name(code));
	}
	if (msg)
		store(rep, level, code, ctx, msg);
}

void rep_add(struct report *rep, enum dmg_level level, enum rep_code code,
	     struct rep_ctx ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rep_vadd(rep, level, code, ctx, fmt, ap);
	va_end(ap);
}

enum dmg_level rep_outcome(const struct report *rep)
{
	return rep->worst;
}

size_t rep_nr_findings(const struct report *rep)
{
	return rep->nr;
}

size_t rep_nr_stored(const struct report *rep)
{
	return rep->nr_stored;
}

const struct rep_finding *rep_finding(const struct report *rep, size_t i)
{
	return i < rep->nr_stored ? &rep->f[i] : NULL;
}

size_t rep_count_code(const struct report *rep, enum rep_code code)
{
	return code < RC_MAX ? rep->per_code[code] : 0;
}
