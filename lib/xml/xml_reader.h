/*
 * Streaming XML reader (expat): thin_dump XML -> IR events.  Accepts the
 * 0.9.0 dialect, the Rust dialect (flags optional, <def>/<ref> shared
 * subtrees), LVM's generated XML, comments and any whitespace.  Memory is
 * constant in the size of the input.  Every error is one line
 * "<name>:<line>: <what is wrong>" in err; a consumer's own reason (its
 * visitor's err buffer) is reported the same way.
 */
#ifndef THINMETA_XML_XML_READER_H
#define THINMETA_XML_XML_READER_H

#include <stddef.h>

#include "ir/ir.h"

/* Returns 0, or a negative errno with a message in err. */
int xml_read_file(const char *path, const struct ir_visitor *v, char *err, size_t errlen);
/* The same; *fast_lines (may be NULL) = mapping lines decoded without expat. */
int xml_read_file_counted(const char *path, const struct ir_visitor *v, unsigned long *fast_lines,
			  char *err, size_t errlen);
/*
 * xml_read_file() with the parsing in a second thread: the visitor's
 * callbacks run in the calling thread, with the same events, result and
 * message.
 */
int xml_read_file_async(const char *path, const struct ir_visitor *v, char *err, size_t errlen);
int xml_read_mem(const char *name, const void *buf, size_t len, const struct ir_visitor *v,
		 char *err, size_t errlen);

#endif
