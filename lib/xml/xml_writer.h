/*
 * XML writer: an IR visitor (thin/ir.h) that prints the thin_dump 0.9.0
 * XML dialect byte for byte (REFERENCE.md §2.1): two-space indentation,
 * fixed attribute order, flags always written, empty devices with their
 * open and close tags on separate lines, a newline after </superblock>.
 * Rust's <def>/<ref> shared subtrees are written too when the event
 * stream carries them.
 *
 * Output is assembled in a large private buffer with hand-rolled number
 * formatting and handed to the FILE in big chunks.
 */
#ifndef THINMETA_XML_XML_WRITER_H
#define THINMETA_XML_XML_WRITER_H

#include <stdio.h>

#include "ir/ir.h"

struct xml_writer;

/* out is borrowed (not closed by xml_writer_destroy).  NULL on -ENOMEM. */
struct xml_writer *xml_writer_create(FILE *out);
/* Does not flush: call xml_writer_flush() first to keep the output. */
void xml_writer_destroy(struct xml_writer *w);

/* Fills v so that its events are written by w (v->ctx = w). */
void xml_writer_visitor(struct xml_writer *w, struct ir_visitor *v);

/*
 * Writes whatever is buffered to the FILE and fflush()es it.  Returns 0 or
 * the first write error seen (negative errno), also for earlier events.
 */
int xml_writer_flush(struct xml_writer *w);

#endif
