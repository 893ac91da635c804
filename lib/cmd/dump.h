/*
 * thin_dump as a function: walks pool metadata (the live superblock or the
 * metadata snapshot) and emits IR events (thin/ir.h) to a visitor, the way
 * thin_dump 0.9.0 does:
 *
 *   begin_superblock                      uuid "", nr_data_blocks from the
 *                                         data space map root of the dumped
 *                                         superblock (0 for a snapshot copy)
 *   begin_device / mapping* / end_device  devices of the top-level mapping
 *                                         tree in dev_id order; consecutive
 *                                         mappings (origin and data +1, same
 *                                         time) merged into range_map, runs
 *                                         of one as single_map
 *   end_superblock
 *
 * Damage (no repair): everything before the first lost key is emitted, the
 * device being dumped is closed, end_superblock is not sent, and
 * THIN_DUMP_DAMAGED is returned.  Damage in the details tree fails before
 * begin_superblock.
 */
#ifndef THINMETA_CMD_DUMP_H
#define THINMETA_CMD_DUMP_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"
#include "thin/metadata.h"

/* Return value for damaged metadata (msg holds the reference's two lines). */
#define THIN_DUMP_DAMAGED (-EUCLEAN)

struct thin_dump_opts {
	int metadata_snap;          /* dump the metadata snapshot (held_root) */
	int snap_block_given;       /* ... which must then be at snap_block */
	uint64_t snap_block;
	const uint64_t *dev_ids;    /* only these devices; NULL/0: all (borrowed) */
	size_t nr_dev_ids;
	int skip_mappings;          /* devices with empty bodies */
	int set_transaction_id;     /* overrides of superblock fields */
	uint64_t transaction_id;
	int set_data_block_size;
	uint32_t data_block_size;
	int set_nr_data_blocks;
	uint64_t nr_data_blocks;
};

#define THIN_DUMP_MSG_LEN 256

/*
 * Dumps md through v.  Returns 0 (also when a visitor callback returned
 * IR_STOP), THIN_DUMP_DAMAGED, or another negative errno; on failure msg
 * (msglen bytes) holds the message for the user, possibly two lines, no
 * trailing newline.  A visitor's own negative return is passed through
 * with msg "cannot write output: <strerror>".
 */
int thin_dump(struct thin_md *md, const struct thin_dump_opts *opts, const struct ir_visitor *v,
	      char *msg, size_t msglen);

#endif
