/*
 * Sequential read-ahead: blocks [first, end) of a device in chunks, read by
 * a thread into a ring of buffers while the caller decodes the previous
 * ones (whole-device scans: thin_repair's search for roots).  An
 * unreadable chunk is read block by block; its unreadable blocks are
 * zeroed and marked.
 */
#ifndef THINMETA_IO_STREAM_H
#define THINMETA_IO_STREAM_H

#include <stdint.h>

#include "io/io.h"

struct ioe_stream;

struct ioe_chunk {
	uint64_t block;        /* first block */
	unsigned nr;           /* blocks */
	const uint8_t *data;   /* nr * 4 KiB, valid until the next ioe_stream_next */
	const uint8_t *bad;    /* NULL, or bitset over the nr blocks: unreadable (zeroed) */
};

/*
 * chunk blocks per read, depth buffers (at least 2).  While the stream is
 * open, only its thread may use e.  Returns 0 or -ENOMEM.
 */
int ioe_stream_open(struct ioe *e, uint64_t first, uint64_t end, unsigned chunk, unsigned depth,
		    struct ioe_stream **out);
/* The next chunk in block order: 0, or 1 at the end. */
int ioe_stream_next(struct ioe_stream *s, struct ioe_chunk *c);
void ioe_stream_close(struct ioe_stream *s);

#endif
