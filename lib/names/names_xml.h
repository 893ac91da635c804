/*
 * Per-thin names for the read tools and the XML dump (NAMES.md §5.4):
 * opening the side table that belongs to a pool, the name of a device
 * (with the incarnation check), and two IR proxies: one that adds the
 * names to a dump as comments, one that collects them from a restore's
 * event stream.
 *
 * The comments (text between "<!--" and "-->"; both reference generations
 * ignore comments, so such a dump stays restorable everywhere):
 *   after <superblock ...>:  " thinmeta:names v1 tag="TM..." blob_max="256" "
 *   inside a named device:   " thinmeta:blob dev_id="1" flags="1" hex="766d31" "
 * (tag="" when the pool has no valid tag; flags are the table's entry
 * flags; hex is the blob, two lowercase digits a byte).
 */
#ifndef THINMETA_NAMES_NAMES_XML_H
#define THINMETA_NAMES_NAMES_XML_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"
#include "thin/metadata.h"
#include "names/names.h"

/*
 * Loads the table at path (NULL: the default path of the pool's tag) and
 * binds it to the pool (uuid, data_block_size, devs).  Returns 0 and sets
 * *b to TMN_BOUND_TAG or TMN_BOUND_FINGERPRINT, or a negative errno with
 * a one-line message: -ENOENT (no table; also no tag and no path),
 * -EILSEQ (corrupt), -EPERM (unbound: the table belongs to another pool).
 */
int thin_names_open_bound(const char *path, const uint8_t *uuid, uint32_t data_block_size,
			  const struct thin_dev_list *devs, struct thin_names_table *t,
			  enum thin_names_binding *b, char *msg, size_t msglen);

/*
 * The entry naming device d: present, not pending-delete, and stamped
 * with d's (transaction, creation_time) unless its stamp is unknown.  An
 * entry of an earlier incarnation of the id gives NULL.
 */
const struct thin_names_entry *thin_names_of_dev(const struct thin_names_table *t,
						 const struct thin_dev *d);

/* Text of the NAME cell: escapes for a whitespace-separated table, or JSON. */
enum thin_names_style { TMN_STYLE_TABLE, TMN_STYLE_JSON };

/*
 * Writes the entry's name into buf (NUL-terminated; truncated to len):
 * UTF-8 names as text, with '\\', control bytes, DEL and (in a table)
 * the space written as \xNN (table) or JSON escapes; other blobs as
 * "hex:" and the hex digits.  The caller quotes JSON strings.
 * 6 * TMN_BLOB_MAX_LIMIT + 8 bytes always suffice.
 */
void thin_names_format(const struct thin_names_entry *e, enum thin_names_style style, char *buf,
		       size_t len);
#define THIN_NAMES_FORMAT_MAX (6 * TMN_BLOB_MAX_LIMIT + 8)

/*----------------------------------------------------------------*/
/* Dump: names as comments */

#define THIN_NAMES_TAG_TEXT 40

struct thin_names_dump {
	const struct thin_names_table *t;   /* borrowed */
	const struct thin_dev_list *devs;   /* borrowed: for the incarnation check */
	const struct ir_visitor *inner;     /* borrowed */
	char tag[THIN_NAMES_TAG_TEXT];
	char *buf;                          /* comment text, owned */
};

/*
 * Fills out so that every event goes to inner, with the names comments
 * added (see the top of this file).  tag: the pool's uuid field.  0 or
 * -ENOMEM.  Release with thin_names_dump_release().
 */
int thin_names_dump_visitor(struct thin_names_dump *d, const struct thin_names_table *t,
			    const struct thin_dev_list *devs, const uint8_t *tag,
			    const struct ir_visitor *inner, struct ir_visitor *out);
void thin_names_dump_release(struct thin_names_dump *d);

/*----------------------------------------------------------------*/
/* Restore: names from comments */

struct thin_names_collect {
	const struct ir_visitor *inner;     /* borrowed */
	struct thin_names_table t;          /* the names read; stamps from the devices */
	int seen_header;                    /* a "thinmeta:names v1" comment was read */
	int have_tag;                       /* the header carried a valid tag */
	uint8_t tag[16];
	uint32_t data_block_size;           /* of the <superblock> */
	uint64_t transaction;               /* of the <superblock> */
	int in_device;
	struct ir_device dev;               /* the device being read */
	char msg[256];
};

/*
 * Fills out so that every event goes to inner while the thinmeta comments
 * are collected into d->t (reset at each <superblock>, since a restore may
 * read its input twice).  A malformed thinmeta comment, a blob outside its
 * device or too long, or a second blob for one device fails the event
 * with a reason in out->err.  Other comments are ignored.  Release with
 * thin_names_collect_release().
 */
void thin_names_collect_visitor(struct thin_names_collect *d, const struct ir_visitor *inner,
				struct ir_visitor *out);
void thin_names_collect_release(struct thin_names_collect *d);

#endif
