/*
 * Human-readable dump writer: an IR visitor printing thin_dump 0.9.0's
 * --format human_readable text (REFERENCE.md §2.4).  Not restorable.
 */
#ifndef THINMETA_XML_HUMAN_READABLE_H
#define THINMETA_XML_HUMAN_READABLE_H

#include <stdio.h>

#include "ir/ir.h"

struct thin_hr_writer;

/* out is borrowed.  NULL on -ENOMEM. */
struct thin_hr_writer *thin_hr_writer_create(FILE *out);
void thin_hr_writer_destroy(struct thin_hr_writer *w);

/* Fills v so that its events are written by w (v->ctx = w). */
void thin_hr_writer_visitor(struct thin_hr_writer *w, struct ir_visitor *v);

/* fflush()es the FILE; 0 or the first write error (negative errno). */
int thin_hr_writer_flush(struct thin_hr_writer *w);

#endif
