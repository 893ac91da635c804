/*
 * The restorer: an IR visitor that writes fresh metadata (thin_restore,
 * thin_format, and later thin_repair's output side).
 *
 * Crash safety (FORMAT.md §9): new blocks go only where the metadata
 * already on the output does not reach (its metadata space map is loaded
 * and its used blocks reserved), they are flushed, and the superblock is
 * written last and flushed.  When both do not fit, the first pass only
 * counts; if the new metadata fits on its own, the old superblock is
 * zeroed (and flushed) before anything else is overwritten and the input
 * is produced a second time.  If it does not fit at all, nothing that the
 * old superblock reaches is touched and the error says how big the output
 * must be.
 */
#ifndef THINMETA_CMD_RESTORE_H
#define THINMETA_CMD_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"
#include "ir/ir.h"

struct thin_restore_opts {
	int have_trans_id;
	uint64_t trans_id;
	int have_data_block_size;
	uint32_t data_block_size;
	int have_nr_data_blocks;
	uint64_t nr_data_blocks;
	unsigned dedup_order;   /* log2 of leaf-sharing table slots; 0: default */
	int no_dedup;           /* never share identical leaves (testing) */
	int no_def_cache;       /* never keep <def> leaves in memory (testing) */
	int compact_data;       /* data counts in a compact map (gen_pool's huge sparse pools) */
	int have_uuid;          /* keep this superblock uuid (the pool tag, thin/pool_tag.h) */
	uint8_t uuid[16];       /* unless the XML's uuid attribute is non-empty */
};

struct thin_restore_stats {
	uint64_t metadata_blocks;   /* blocks in use in the new metadata */
	uint64_t shared_leaves;     /* leaves reused instead of written */
	int passes;
	int invalidated;            /* the old superblock had to be zeroed first */
};

/*
 * Produces the IR stream into v (e.g. the XML reader).  Called once, or
 * twice (see above).  Returns 0 or a negative errno, with a one-line
 * message in err.
 */
typedef int (*thin_ir_producer)(void *ctx, const struct ir_visitor *v, char *err, size_t errlen);

/* Restores into an open, writable engine. */
int thin_restore_ioe(struct ioe *out, const struct thin_restore_opts *o, thin_ir_producer prod,
		     void *prod_ctx, struct thin_restore_stats *st, char *err, size_t errlen);

/*
 * Opens path (an existing regular file or a block device, O_EXCL) and
 * restores into it.  Messages as the reference: "Output file does not
 * exist.", "Output file too small.", "<path>: device is busy ...".
 */
int thin_restore_path(const char *path, const struct thin_restore_opts *o, thin_ir_producer prod,
		      void *prod_ctx, struct thin_restore_stats *st, char *err, size_t errlen);

/*
 * Opens an existing regular file or block device (O_EXCL) for writing
 * metadata, with the reference's messages in err ("Output file does not
 * exist.", "Not a block device or regular file '<p>'.", "<p>: device is
 * busy (in use by a live pool?)").  *out is owned by the caller.
 */
int thin_open_output(const char *path, struct ioe **out, char *err, size_t errlen);

/* Validation shared with thin_format: 128..2097152 sectors, multiple of 128. */
int thin_valid_data_block_size(uint64_t sectors);

#endif
