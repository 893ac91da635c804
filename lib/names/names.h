/*
 * The side table of per-thin names (".tmn", NAMES.md §7.3): codec, strict
 * reader, binding to a pool and the crash-safe write protocol (lock, temp
 * file, fsync, one ".prev" generation, rename, directory fsync).
 *
 * File layout, little-endian: a 64-byte header (magic "TMNAMES1", version
 * 1, header_size 64, pool_tag[16], generation, bound_trans_id,
 * data_block_size, blob_max, flags, nr_entries, CRC32C of bytes 0..59),
 * entries sorted by dev_id (24-byte head + blob padded to 8), then a
 * 16-byte trailer ("TMNAMEND" + XXH64 of everything before it).
 */
#ifndef THINMETA_NAMES_NAMES_H
#define THINMETA_NAMES_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "thin/metadata.h"

#define TMN_HEADER_SIZE 64
#define TMN_ENTRY_HEAD 24
#define TMN_TRAILER_SIZE 16
#define TMN_VERSION 1
#define TMN_BLOB_MAX_DEFAULT 256
#define TMN_BLOB_MAX_LIMIT 4096

/* entry flags */
#define TMN_E_UTF8 1u
#define TMN_E_PENDING_CREATE 2u
#define TMN_E_PENDING_DELETE 4u
#define TMN_E_ALL 7u

/* entry transaction when the stamp is unknown (pending create) */
#define TMN_TRANS_UNKNOWN UINT64_MAX

struct thin_names_entry {
	uint32_t dev_id;
	uint16_t blob_len;
	uint16_t flags;
	uint64_t transaction;
	uint32_t creation_time;
	uint8_t *blob;          /* blob_len bytes, owned (NULL when 0) */
};

struct thin_names_table {
	uint8_t tag[16];
	uint64_t generation;
	uint64_t bound_trans_id;
	uint32_t data_block_size;
	uint16_t blob_max;
	uint16_t flags;
	struct thin_names_entry *e;   /* sorted by dev_id, owned */
	size_t nr, cap;
};

/* An empty table (blob_max default). */
void thin_names_init(struct thin_names_table *t);
void thin_names_release(struct thin_names_table *t);

/*
 * Decodes a whole file image.  Anything not perfectly valid (magic,
 * version, header size or CRC, exact length, sorted unique ids < 2^24,
 * unknown flags, blob_len > blob_max, non-zero reserved or padding bytes,
 * trailer magic or hash) gives -EILSEQ and a reason in msg; -ENOMEM.
 */
int thin_names_decode(const void *buf, size_t len, struct thin_names_table *t, char *msg,
		      size_t msglen);
/* Encodes t (entries must be sorted and unique).  *buf is malloc'ed. */
int thin_names_encode(const struct thin_names_table *t, void **buf, size_t *len);

/*
 * Reads and decodes path, retrying once on a decode failure (a reader
 * that raced a non-atomic copy).  -ENOENT if absent, -EILSEQ if corrupt.
 */
int thin_names_load(const char *path, struct thin_names_table *t, char *msg, size_t msglen);

/* The entry for dev_id, or NULL. */
struct thin_names_entry *thin_names_find(const struct thin_names_table *t, uint64_t dev_id);
/* Inserts or replaces the entry for e->dev_id (blob is copied). */
int thin_names_put(struct thin_names_table *t, const struct thin_names_entry *e);
/* Removes the entry for dev_id; -ENOENT if absent. */
int thin_names_remove(struct thin_names_table *t, uint64_t dev_id);

/*----------------------------------------------------------------*/
/* Binding (NAMES.md §5.1) */

enum thin_names_binding {
	TMN_BOUND_TAG,           /* table tag == pool uuid */
	TMN_BOUND_FINGERPRINT,   /* tag differs or is missing, content matches */
	TMN_UNBOUND,
};

const char *thin_names_binding_name(enum thin_names_binding b);

/*
 * Tag match, else fingerprint: the same data_block_size and at least one
 * settled entry, every settled (not pending-create) entry matching a
 * device's (dev_id, transaction, creation_time) exactly.
 */
enum thin_names_binding thin_names_bind(const struct thin_names_table *t, const uint8_t *uuid,
					uint32_t data_block_size, const struct thin_dev_list *devs);

/*----------------------------------------------------------------*/
/* Write protocol */

/* Test hook called at the crash points of a commit (may be NULL). */
typedef void (*thin_names_hook)(const char *point, void *ctx);

/*
 * Takes flock(LOCK_EX) on "<path>.lock", waiting up to wait_ms.
 * Returns the lock fd, -ETIMEDOUT, or -errno.
 */
int thin_names_lock(const char *path, unsigned wait_ms);
void thin_names_unlock(int lock_fd);

/*
 * Under the lock: removes a stale "<path>.tmp", writes the encoded t to
 * it (mode 0600) and fsyncs it, links the current file to
 * "<path>.prev.tmp" and renames that to "<path>.prev", renames the new
 * file over path and fsyncs the directory.  Hook points, in order:
 * "after-write", "after-fsync", "after-prev", "after-rename",
 * "before-dirsync".  At every instant path holds a complete old or new
 * generation.  msg gets a reason on failure.
 */
int thin_names_commit(const char *path, const struct thin_names_table *t, thin_names_hook hook,
		      void *hook_ctx, char *msg, size_t msglen);

/* Default table location for a tag: /var/lib/thinmeta/names/<tag>.tmn */
/* Creates the directories leading to path (mode 0700) when missing. */
int thin_names_make_dir(const char *path);
void thin_names_default_path(const uint8_t *tag, char *buf, size_t len);

#endif
