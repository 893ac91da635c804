/*
 * thin_metadata_size (REFERENCE.md §5.1): the Rust 1.x estimate
 *   blocks = min(1 + ceil((pool / block) / 126) + max_thins, 4161600)
 * in 4 KiB metadata blocks, and unit parsing/printing.
 */
#ifndef THINMETA_CMD_METADATA_SIZE_H
#define THINMETA_CMD_METADATA_SIZE_H

#include <stddef.h>
#include <stdint.h>

struct thin_unit {
	const char *letter;    /* "s" */
	const char *name;      /* "sector" (plural adds "s") */
	uint64_t bytes;
};

/* Finds a unit by letter ("k", "K"), long name ("kibibyte[s]") or "KiB"/"kB". */
const struct thin_unit *thin_unit_find(const char *s);

/*
 * Parses "NUMBER[unit]"; without a unit the number counts default_unit
 * bytes.  allowed: the unit letters accepted (e.g. "bskmg"), NULL for all.
 * Returns 0 or -EINVAL (bad syntax, unit not allowed, overflow).
 */
int thin_parse_size(const char *s, const char *allowed, uint64_t default_unit, uint64_t *bytes);

/* 0, or -EINVAL with the reference's message in err. */
int thin_metadata_size_check(uint64_t block_bytes, uint64_t pool_bytes, char *err, size_t errlen);
/* Metadata blocks (4 KiB) needed. */
uint64_t thin_metadata_size_blocks(uint64_t block_bytes, uint64_t pool_bytes, uint64_t max_thins);

enum thin_size_format { THIN_SIZE_FULL, THIN_SIZE_NUMERIC, THIN_SIZE_SHORT, THIN_SIZE_LONG };
/* "1064 sectors", "1064", "1064s", "1064sectors"; 2 decimals unless whole. */
void thin_size_print(char *buf, size_t len, uint64_t bytes, const struct thin_unit *u,
		     enum thin_size_format f);

#endif
