/*
 * The pool tag (NAMES.md §5.1, §7.4): 16 printable ASCII bytes
 * "TM" + 14 Crockford base-32 characters in the superblock uuid field
 * (bytes 16..31).  The kernel carries the field over on every commit; the
 * reference tools ignore it (check, dump) or drop it (repair, restore).
 * It binds a side table of names (thin/names.h) to its pool.
 */
#ifndef THINMETA_THIN_POOL_TAG_H
#define THINMETA_THIN_POOL_TAG_H

#include <stddef.h>
#include <stdint.h>

#define THIN_TAG_LEN 16
/* "TM" + 14 characters + NUL; also large enough for "hex:" + 32 digits */
#define THIN_TAG_STR 40

/* Non-zero if all 16 bytes are zero (no tag). */
int thin_tag_is_zero(const uint8_t *tag);
/* Non-zero if tag has the TM[0-9A-HJKMNP-TV-Z]{14} form. */
int thin_tag_is_valid(const uint8_t *tag);
/* A fresh tag from getrandom(2) (70 random bits).  0 or -errno. */
int thin_tag_generate(uint8_t *tag);
/*
 * Text form of a uuid field: "" when zero, the 16 characters of a valid
 * tag, otherwise "hex:" and 32 lowercase hex digits.
 */
void thin_tag_format(const uint8_t *uuid, char *buf, size_t len);
/* Parses a TM tag (16 characters); -EINVAL if not a valid tag. */
int thin_tag_parse(const char *s, uint8_t *tag);

/*
 * Reads the live superblock of path (without O_EXCL) and copies its uuid
 * field.  -EILSEQ (bad checksum or magic; message in msg) or -errno.
 */
int thin_tag_read(const char *path, uint8_t *uuid, char *msg, size_t msglen);

/*
 * Test hook: called at named points of a write ("after-pwrite" before
 * the fsync).  May be NULL.
 */
typedef void (*thin_tag_hook)(const char *point, void *ctx);

/*
 * Writes tag into the superblock uuid of path: reads the 4 KiB block,
 * checks that it is a valid thin superblock, recomputes the checksum with
 * the new uuid and rewrites only the first 512-byte sector, then fsyncs.
 * The pool must be inactive: a block device is opened with O_EXCL and
 * must have no holders (-EBUSY otherwise).  Message in msg on failure.
 */
int thin_tag_write(const char *path, const uint8_t *tag, thin_tag_hook hook, void *hook_ctx,
		   char *msg, size_t msglen);

/*
 * For writers that replace a pool's metadata (our format, restore,
 * repair): the valid tag the device at path carries now, so the new
 * superblock can keep it.  Returns 1 and fills tag when there is one,
 * 0 when there is none (no thin superblock, bad checksum, zero or
 * non-tag uuid, unreadable), never an error.
 */
int thin_tag_existing(const char *path, uint8_t *tag);

#endif
