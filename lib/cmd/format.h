/* thin_format: fresh, empty, valid metadata (no devices). */
#ifndef THINMETA_CMD_FORMAT_H
#define THINMETA_CMD_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"

struct thin_format_opts {
	uint32_t data_block_size;   /* sectors */
	uint64_t nr_data_blocks;
	uint64_t trans_id;
	int force;                  /* overwrite a valid thin superblock */
	int have_tag;               /* write this pool tag into the superblock uuid */
	uint8_t tag[16];
};

/*
 * Formats an open engine / a path (existing file or block device, O_EXCL).
 * Refuses (-EEXIST) when the output already holds a valid superblock,
 * unless force.  0 or negative errno with a message in err.
 */
int thin_format_ioe(struct ioe *out, const struct thin_format_opts *o, char *err, size_t errlen);
int thin_format_path(const char *path, const struct thin_format_opts *o, char *err,
		     size_t errlen);

#endif
