/*
 * Recovery of damaged pool metadata (thin_repair, thin_dump --repair).
 *
 * thin_repair_plan() analyses the input (read-only):
 *
 *   1. The superblock's roots are used as they are when they are sound:
 *      superblock valid, details and top-level trees undamaged and naming
 *      the same devices, and every node they and the devices' internal
 *      nodes reference in use in the metadata space map (a superblock
 *      pointing at stale, freed trees fails this).
 *   2. Otherwise every metadata block is scanned (large sequential reads),
 *      valid B-tree nodes are summarised (mapping trees, top-level trees,
 *      details trees) and the most recent consistent (mapping root,
 *      details root) pair is chosen: top-level trees by newest mapping
 *      time then most mappings, details by highest transaction; a pair
 *      must name the same devices (and preferably count the same number
 *      of mappings).  Without details, details are synthesised (mappings
 *      treated as shared).
 *   3. Devices whose trees have a bad internal node are salvaged: leaves
 *      that the metadata space map counts more often than the intact trees
 *      reference them were referenced by the lost nodes; those lying in
 *      exactly the lost key ranges of a device are given back to it.
 *
 * thin_repair_emit() then produces the IR stream (thin/ir.h): mapped_blocks
 * recounted, mappings beyond nr_data_blocks dropped, lost virtual ranges
 * recorded as notes.  It can be called more than once (the restorer may
 * produce twice); notes are rebuilt on each call.
 */
#ifndef THINMETA_REPAIR_REPAIR_H
#define THINMETA_REPAIR_REPAIR_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"
#include "thin/metadata.h"

struct thin_repair_opts {
	int set_transaction_id;
	uint64_t transaction_id;
	int set_data_block_size;
	uint32_t data_block_size;
	int set_nr_data_blocks;
	uint64_t nr_data_blocks;
	int set_mapping_root;   /* use these roots (superblock lost or ambiguous) */
	uint64_t mapping_root;
	int set_details_root;
	uint64_t details_root;
	int force_scan;   /* testing: scan even when the superblock is sound */
};

struct thin_repair;

#define THIN_REPAIR_MSG_LEN 512

/*
 * Analyses md.  Returns 0 or a negative errno with a one-line message in
 * msg: -ENOENT "no compatible roots found" when nothing is recoverable,
 * -EINVAL "The following field needs to be provided on the command line
 * due to corruption in the superblock: data block size", -EAGAIN when
 * the superblock is lost and several pool states are equally recent (the
 * message lists them and names --override-mapping-root).
 */
int thin_repair_plan(struct thin_md *md, const struct thin_repair_opts *o,
		     struct thin_repair **out, char *msg, size_t msglen);
void thin_repair_destroy(struct thin_repair *rp);

/*
 * Emits the repaired pool into v.  exact_counts: begin_device carries the
 * recounted mapped_blocks (one extra counting walk per device; the XML
 * writer needs it, the restorer recounts by itself).
 */
int thin_repair_emit(struct thin_repair *rp, const struct ir_visitor *v, int exact_counts,
		     char *err, size_t errlen);

/* thin_ir_producer (thin/restore.h) adapter: ctx is the struct thin_repair. */
int thin_repair_produce(void *ctx, const struct ir_visitor *v, char *err, size_t errlen);

/*
 * What was found and done, one line each, no newline ("found stale
 * roots...", "device 3: mappings lost in virtual blocks [100, 200)").
 * Valid until the next emit or destroy.
 */
size_t thin_repair_nr_notes(const struct thin_repair *rp);
const char *thin_repair_note(const struct thin_repair *rp, size_t i);

/*
 * Superblock lost and the live pool state not proven: thin_repair_plan()
 * returns -EAGAIN and still sets *out to the refused plan, which holds
 * only the candidates (newest first as far as the evidence goes); destroy
 * it, never emit it.  text: the evidence, one line without newline.
 */
struct thin_repair_candidate {
	uint64_t mapping_root, details_root;   /* details_root 0: details lost */
	uint64_t index_block;                  /* its space-map index */
	int last;                              /* proven the last commit (then damaged) */
	char text[384];
};
size_t thin_repair_nr_candidates(const struct thin_repair *rp);
const struct thin_repair_candidate *thin_repair_candidate(const struct thin_repair *rp, size_t i);

/* The superblock cannot be used: the fields only it holds must come from elsewhere. */
int thin_repair_superblock_lost(const struct thin_md *md);

/*
 * LVM's record of a thin pool, read from its text backup of the volume
 * group (lvm_dir/backup/VG, else the newest lvm_dir/archive/VG_*.vg):
 * the thin-pool segment whose metadata LV is meta_lv, its
 * transaction_id and chunk_size, and the size of its data LV.
 * thin_lvm_pool_read returns 0 or -errno with a one-line msg.
 */
struct thin_lvm_pool {
	char vg[128], pool[128];
	char source[4096];          /* the file read */
	uint64_t transaction_id;
	uint64_t chunk_size;        /* sectors */
	uint64_t data_sectors, nr_data_blocks;
	int pending_messages;       /* messages to the pool not yet confirmed */
};
int thin_lvm_pool_read(const char *lvm_dir, const char *vg, const char *meta_lv,
		       struct thin_lvm_pool *out, char *msg, size_t msglen);
/*
 * Whether path is an LVM thin pool's metadata LV: a block device whose
 * device-mapper name is VG-POOL_tmeta (a '-' inside a name is doubled),
 * else a path /dev/VG/POOL_tmeta or one whose last component is such a
 * device-mapper name.  Returns 0 (vg and lv set) or -ENOENT.
 */
int thin_lvm_tmeta_name(const char *path, char *vg, size_t vglen, char *lv, size_t lvlen);
/* The LVM configuration directory: $THINMETA_LVM_DIR, else /etc/lvm. */
const char *thin_lvm_dir(void);
/*
 * Superblock lost and no value given (neither the three fields nor an
 * override root): when input is an LVM thin pool's metadata LV, sets o's
 * transaction id, data block size and nr_data_blocks from LVM's record.
 * Returns 1 (set; note says from where), 0 (nothing to do) or -errno
 * (note says why LVM's record is unusable).
 */
int thin_repair_lvm_values(const char *input, struct thin_repair_opts *o, char *note, size_t len);

struct thin_repair_stats {
	int scanned;              /* the block scan ran */
	int used_sb_roots;        /* the superblock's roots were used */
	int synthesised_details;  /* devices without details got synthesised ones */
	uint64_t nr_devices;
	uint64_t nr_mappings;     /* emitted by the last emit */
	uint64_t salvaged_leaves;
	uint64_t lost_ranges;     /* in the last emit */
	uint64_t mapping_root, details_root;
};
void thin_repair_get_stats(const struct thin_repair *rp, struct thin_repair_stats *st);

#endif
