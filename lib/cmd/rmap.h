/*
 * thin_rmap as a function: which (thin device, virtual block) ranges map
 * given ranges of data blocks, printed as thin_rmap 0.9.0 does.
 */
#ifndef THINMETA_CMD_RMAP_H
#define THINMETA_CMD_RMAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Half-open range of data blocks [begin, end). */
struct thin_region {
	uint64_t begin, end;
};

/*
 * Parses "BEGIN..END" (decimal, nothing else).  Errors return -EINVAL with
 * *why set to "no dots", "couldn't parse numbers" or "end <= begin" (the
 * reference's wording, used as "badly formed region (<why>)").
 */
int thin_rmap_parse_region(const char *s, struct thin_region *r, const char **why);

struct thin_rmap_opts {
	const char *path;
	const struct thin_region *regions;
	size_t nr_regions;
	int use_snap;
	uint64_t snap_block;   /* 0: the superblock's held_root */
	/*
	 * 0: as 0.9.0, a node shared by several devices (snapshots) is
	 * entered once, so its mappings are reported for the first device
	 * only.  1: every device is reported (thinmeta extension).
	 */
	int all_devices;
};

/*
 * Prints "data B..E -> thin(D) V..W" lines for every run of mappings
 * (contiguous in data and virtual blocks, one device) whose data blocks
 * fall in a region, ordered by data block as 0.9.0 orders them.
 * Failure: negative errno and a message in msg.
 */
int thin_rmap(const struct thin_rmap_opts *o, FILE *out, char *msg, size_t msglen);

#endif
