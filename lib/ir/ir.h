/*
 * The IR visitor: the one event interface where dump and restore meet
 * (tpt emitter.h / ir.rs).  Grammar of the event stream:
 *
 *   stream  := begin_superblock def* device* end_superblock
 *   def     := begin_def mapping* end_def
 *   device  := begin_device (mapping | ref)* end_device
 *   mapping := single_map | range_map
 *
 * Producers: the metadata walker (lib/thin/dump.c), the XML reader.
 * Consumers: the XML writer, the human-readable writer, the restorer.
 * Every callback returns 0 to go on, IR_STOP to stop quietly, or a
 * negative errno.  Any callback may be NULL (ignored).
 */
#ifndef THINMETA_IR_IR_H
#define THINMETA_IR_IR_H

#include <stddef.h>
#include <stdint.h>

#define IR_STOP 1

struct ir_superblock {
	const char *uuid;          /* as text; "" in every dump */
	uint32_t time;
	uint64_t transaction;
	int has_flags;             /* XML carried a flags attribute */
	uint32_t flags;
	uint32_t version;
	uint32_t data_block_size;  /* sectors */
	uint64_t nr_data_blocks;
	int has_metadata_snap;
	uint64_t metadata_snap;
};

struct ir_device {
	uint64_t dev_id;
	uint64_t mapped_blocks;
	uint64_t transaction;
	uint32_t creation_time;
	uint32_t snap_time;
};

struct ir_visitor {
	void *ctx;
	int (*begin_superblock)(void *ctx, const struct ir_superblock *sb);
	int (*end_superblock)(void *ctx);
	int (*begin_device)(void *ctx, const struct ir_device *dev);
	int (*end_device)(void *ctx);
	int (*begin_def)(void *ctx, const char *name);
	int (*end_def)(void *ctx);
	int (*ref)(void *ctx, const char *name);
	int (*single_map)(void *ctx, uint64_t origin_block, uint64_t data_block, uint32_t time);
	int (*range_map)(void *ctx, uint64_t origin_begin, uint64_t data_begin, uint64_t len,
			 uint32_t time);
	/*
	 * Optional: the text of an XML comment, in document order (only the
	 * XML reader produces it; thinmeta's per-thin names travel this way,
	 * NAMES.md §5.4).  Comments before the superblock are reported too.
	 */
	int (*comment)(void *ctx, const char *text);
	/*
	 * Optional: a consumer whose callback fails may write a one-line
	 * reason here (no newline); a producer reports it with its position.
	 */
	char *err;
	size_t errlen;
};

#endif
