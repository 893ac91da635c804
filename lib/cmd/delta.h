/*
 * thin_delta as a function: the differences between the mappings of two
 * thin devices, printed in the XML dialect of thin_delta 0.9.0.
 */
#ifndef THINMETA_CMD_DELTA_H
#define THINMETA_CMD_DELTA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct thin_delta_opts {
	const char *path;
	int use_snap;           /* read the metadata snapshot */
	uint64_t snap_block;    /* 0: the superblock's held_root */
	/* each side is a device id (--thin1/--snap1) or a bottom-level root (--root1) */
	int have_dev[2], have_root[2];
	uint64_t dev[2], root[2];
	int verbose;
};

/*
 * Writes the diff to out.  Failure: negative errno and a one-line message
 * in msg ("Unable to find mapping tree for snap1 (9)", damage, open
 * errors).
 */
int thin_delta(const struct thin_delta_opts *o, FILE *out, char *msg, size_t msglen);

#endif
