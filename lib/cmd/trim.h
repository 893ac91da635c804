/* thin_trim: discard the data blocks that the pool's data space map says are free. */
#ifndef THINMETA_CMD_TRIM_H
#define THINMETA_CMD_TRIM_H

#include <stddef.h>
#include <stdint.h>

struct trim_stats {
	uint64_t nr_data_blocks;
	uint64_t free_blocks;    /* blocks discarded */
	uint64_t runs;           /* discard requests issued */
	int punched;             /* regular file: holes punched instead of BLKDISCARD */
};

/*
 * Checks the metadata (it must check clean: no fatal or non-fatal finding),
 * then discards every run of free data blocks on data_dev: BLKDISCARD on a
 * block device, FALLOC_FL_PUNCH_HOLE on a regular file.  Refuses a data
 * device smaller than the pool.  Allocated blocks are never touched.
 * Returns 0 or a negative errno with one line in msg.
 */
int thin_trim(const char *metadata, const char *data_dev, struct trim_stats *st, char *msg,
	      size_t msglen);

#endif
