/*
 * B-tree node format (FORMAT.md §5), validation and lookup (the walkers
 * are in walk.h).
 * Knows nothing about thin: value types are just sizes.
 */
#ifndef THINMETA_BTREE_BTREE_H
#define THINMETA_BTREE_BTREE_H

#include <stddef.h>
#include <stdint.h>

#include "block-cache/block-cache.h"
#include "util/endian.h"
#include "findings/findings.h"
#include "util/report.h"

struct disk_node_header {
	le32 csum;
	le32 flags;
	le64 blocknr;
	le32 nr_entries;
	le32 max_entries;
	le32 value_size;
	le32 padding;
} __attribute__((packed));

_Static_assert(sizeof(struct disk_node_header) == 32, "node header is 32 bytes");

#define BT_INTERNAL_NODE 1u
#define BT_LEAF_NODE 2u
#define BT_HEADER_SIZE 32u
#define BT_MAX_DEPTH 64

/* Checksum salt of B-tree nodes (FORMAT.md §2), used by bt_node_validator. */
#define BTREE_CSUM_XOR 121107u

extern const struct bc_validator bt_node_validator;

/* Kernel calc_max_entries: ((4096-32)/(8+vs)) rounded down to a multiple of 3. */
uint32_t bt_calc_max_entries(uint32_t value_size);

/* A parsed view of a node held in a block (no copy). */
struct bt_node {
	const uint8_t *raw;
	uint64_t blocknr;
	uint32_t flags, nr_entries, max_entries, value_size;
	const void *prep;   /* a walker's leaf_prep() output for this leaf, or NULL (walk.h) */
};

static inline void bt_node_view(const void *data, struct bt_node *n)
{
	const struct disk_node_header *h = data;

	n->raw = data;
	n->blocknr = le64_to_cpu(h->blocknr);
	n->flags = le32_to_cpu(h->flags);
	n->nr_entries = le32_to_cpu(h->nr_entries);
	n->max_entries = le32_to_cpu(h->max_entries);
	n->value_size = le32_to_cpu(h->value_size);
	n->prep = NULL;
}

static inline int bt_is_leaf(const struct bt_node *n)
{
	return n->flags == BT_LEAF_NODE;
}

static inline uint64_t bt_key(const struct bt_node *n, uint32_t i)
{
	return get_le64(n->raw + BT_HEADER_SIZE + 8 * (size_t)i);
}

static inline const uint8_t *bt_value(const struct bt_node *n, uint32_t i)
{
	return n->raw + BT_HEADER_SIZE + 8 * (size_t)n->max_entries + (size_t)n->value_size * i;
}

/* Structural faults of one node, in the order they are checked. */
enum bt_node_err {
	BT_NODE_OK = 0,
	BT_NODE_BAD_FLAGS,
	BT_NODE_MAX_TOO_LARGE,
	BT_NODE_NR_ENTRIES,
	BT_NODE_VALUE_SIZE,
	BT_NODE_KEYS_ORDER,
	BT_NODE_MAX_NOT_DIV3,   /* non-fatal */
};

/*
 * Checks a checksum-valid node's header and key order.  leaf_vsize is the
 * value size expected of leaves in this tree (internal nodes must have 8).
 */
enum bt_node_err bt_node_check(const struct bt_node *n, uint32_t leaf_vsize);
/*
 * The same, the key order taken as checked when keys_rise is non-zero: the
 * caller has had bt_node_keys_rise() answer 1 for this node's data.
 */
enum bt_node_err bt_node_check_known(const struct bt_node *n, uint32_t leaf_vsize, int keys_rise);
/*
 * 1 when the node's keys can be read (its flags a node's, nr_entries <=
 * max_entries, which fit the block) and rise strictly: the part of
 * bt_node_check() that reads every key, for a thread that has the block
 * in its cache (the walker's readers).
 */
int bt_node_keys_rise(const struct bt_node *n);
/* 1 when the nr little-endian 64-bit keys at keys rise strictly (AVX2 where the CPU has it). */
int bt_keys_rise(const uint8_t *keys, uint32_t nr);
const char *bt_node_err_str(enum bt_node_err e);
enum rep_code bt_node_err_code(enum bt_node_err e);
/* How bad a node fault is: the one ruling for every walker (DMG_NONE for BT_NODE_OK). */
enum dmg_level bt_node_err_level(enum bt_node_err e);
/* The rep_code for a bc_get() validator error. */
enum rep_code bt_read_err_code(int err);

/*
 * Plausibility scan for repair: is this raw block a valid B-tree node at
 * loc (checksum, location and structure)?  Returns BT_NODE_OK or an error.
 */
int bt_node_check_raw(const void *data, uint64_t loc, uint32_t *value_size);

/* Lookup of one key (exact); -ENODATA when absent. value_out gets vsize bytes. */
int bt_lookup(struct bc *bc, uint64_t root, uint32_t leaf_vsize, uint64_t key, void *value_out);

#endif
