/*
 * The findings table: every kind of damage or inconsistency a check can
 * report, one row each (code, stable name), in the style of e2fsck's
 * problem.c.  The enum and the names are generated from the one list
 * below, so they cannot drift apart.
 *
 * The vocabulary is thin_check's, but it is raised well below lib/check:
 * lib/btree (node validation and both walkers' damage callbacks),
 * lib/spacemap (index and bitmap readers) and lib/thin (device-table
 * reader) produce these codes, and lib/repair and lib/cmd receive them
 * through the walkers' damage callbacks.  The table therefore has to sit
 * below lib/btree: it is a leaf (rank 0 in tests/check-layers.sh) that
 * depends on nothing.  The collecting and printing of findings is
 * util/report.h's business; lib/check installs finding_name() there.
 *
 * The message of a finding is written where it is raised: one code
 * covers several situations (RC_SB_BAD_ROOT has four messages at two
 * levels), and printf-checked call sites keep the output byte-identical.
 */
#ifndef THINMETA_FINDINGS_FINDINGS_H
#define THINMETA_FINDINGS_FINDINGS_H

#define THIN_FINDINGS(X) \
	X(RC_NONE, "none") \
	/* superblock */ \
	X(RC_SB_IO, "sb_io") \
	X(RC_SB_CSUM, "sb_csum") \
	X(RC_SB_WRONG_TYPE, "sb_wrong_type") \
	X(RC_SB_BLOCKNR, "sb_blocknr") \
	X(RC_SB_MAGIC, "sb_magic") \
	X(RC_SB_VERSION, "sb_version") \
	X(RC_SB_INCOMPAT, "sb_incompat") \
	X(RC_SB_COMPAT_RO, "sb_compat_ro") \
	X(RC_SB_METADATA_BLOCK_SIZE, "sb_metadata_block_size") \
	X(RC_SB_DATA_BLOCK_SIZE, "sb_data_block_size") \
	X(RC_SB_BAD_ROOT, "sb_bad_root") \
	X(RC_SB_NR_BLOCKS, "sb_nr_blocks") \
	X(RC_SB_NEEDS_CHECK, "sb_needs_check") \
	X(RC_SB_HELD_ROOT, "sb_held_root") \
	/* B-tree nodes */ \
	X(RC_NODE_IO, "node_io") \
	X(RC_NODE_CSUM, "node_csum") \
	X(RC_NODE_NOT_NODE, "node_not_node") \
	X(RC_NODE_BLOCKNR, "node_blocknr") \
	X(RC_NODE_FLAGS, "node_flags") \
	X(RC_NODE_VALUE_SIZE, "node_value_size") \
	X(RC_NODE_MAX_ENTRIES_TOO_LARGE, "node_max_entries_too_large") \
	X(RC_NODE_MAX_ENTRIES_NOT_DIV3, "node_max_entries_not_div3") \
	X(RC_NODE_NR_ENTRIES, "node_nr_entries") \
	X(RC_NODE_UNDERFULL, "node_underfull") \
	X(RC_NODE_KEYS_ORDER, "node_keys_order") \
	X(RC_NODE_KEY_RANGE, "node_key_range") \
	X(RC_NODE_DEPTH, "node_depth") \
	X(RC_NODE_CYCLE, "node_cycle") \
	X(RC_NODE_OUT_OF_BOUNDS, "node_out_of_bounds") \
	X(RC_NODE_TYPE_CHANGED, "node_type_changed") \
	/* thin semantics */ \
	X(RC_DEV_MISSING_DETAILS, "dev_missing_details") \
	X(RC_DEV_MISSING_MAPPING, "dev_missing_mapping") \
	X(RC_DEV_MAPPED_BLOCKS, "dev_mapped_blocks") \
	X(RC_DEV_LOST_MAPPINGS, "dev_lost_mappings") \
	X(RC_MAP_DATA_OUT_OF_RANGE, "map_data_out_of_range") \
	X(RC_MAP_TIME, "map_time") \
	X(RC_DEV_TIME, "dev_time") \
	X(RC_DEV_ID_RANGE, "dev_id_range") \
	/* space maps */ \
	X(RC_SM_INDEX_IO, "sm_index_io") \
	X(RC_SM_INDEX_CSUM, "sm_index_csum") \
	X(RC_SM_INDEX_WRONG_TYPE, "sm_index_wrong_type") \
	X(RC_SM_INDEX_BLOCKNR, "sm_index_blocknr") \
	X(RC_SM_INDEX_KEYS, "sm_index_keys") \
	X(RC_SM_BITMAP_IO, "sm_bitmap_io") \
	X(RC_SM_BITMAP_CSUM, "sm_bitmap_csum") \
	X(RC_SM_BITMAP_WRONG_TYPE, "sm_bitmap_wrong_type") \
	X(RC_SM_BITMAP_BLOCKNR, "sm_bitmap_blocknr") \
	X(RC_SM_OVERFLOW_MISSING, "sm_overflow_missing") \
	X(RC_SM_OVERFLOW_LOW, "sm_overflow_low") \
	X(RC_SM_BEYOND_END, "sm_beyond_end") \
	X(RC_SM_LEAK, "sm_leak") \
	X(RC_SM_BAD_COUNT, "sm_bad_count") \
	X(RC_SM_NR_ALLOCATED, "sm_nr_allocated") \
	X(RC_SM_NR_FREE, "sm_nr_free") \
	X(RC_SM_NONE_FREE_BEFORE, "sm_none_free_before") \
	X(RC_SM_TOO_LARGE, "sm_too_large") \
	X(RC_NOT_CHECKED, "not_checked")

/* Closed list of finding codes; finding_name() gives a stable identifier. */
enum rep_code {
#define THIN_FINDING_ENUM(code, name) code,
	THIN_FINDINGS(THIN_FINDING_ENUM)
#undef THIN_FINDING_ENUM
	RC_MAX
};

/* The stable identifier of a code ("sm_leak"), "unknown" outside the table. */
const char *finding_name(int code);

#endif
