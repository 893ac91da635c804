/*
 * thin_repair decision logic, separated from the disk scan so that it can
 * be unit tested (tests/unit/test_repair.c).  Internal to lib/repair.
 */
#ifndef THINMETA_REPAIR_REPAIR_INTERNAL_H
#define THINMETA_REPAIR_REPAIR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * A pool state found by the scan: a metadata space-map index block whose
 * bitmaps mark every node of exactly one (mapping root, details root) pair
 * in use.  The content key orders states: newest mapping time, then the
 * highest device transaction id, then the newest creation/snapshot time.
 * Nothing else on the disk orders two intact committed states (stale
 * states stay intact until their blocks are reused; the allocator restarts
 * at the lowest free block on every activation, so block positions do not
 * order them either).
 */
struct repair_state {
	uint64_t index_block;
	uint64_t mroot, droot;     /* droot 0: no details tree */
	uint32_t time;             /* newest mapping time */
	uint64_t tid;              /* highest details transaction id */
	uint32_t dtime;            /* newest details creation/snapshot time */
};

/*
 * Picks the newest state.  Returns 0 (*pick set), -ENOENT (n == 0) or
 * -EAGAIN: the newest content key is shared by states with different
 * roots (ambiguous: the caller must not guess).  *nr_tied receives the
 * number of distinct (mroot, droot) pairs with the newest key.
 */
int repair_pick_state(const struct repair_state *s, size_t n, size_t *pick, size_t *nr_tied);

/*
 * Matching of orphan mapping trees to devices (the top-level tree is lost,
 * the details survive).  A tree is given to a device only when it is the
 * device's one candidate and the tree is not claimed by more devices than
 * it has references (refs: the space map's count of its root).  Devices
 * with no candidate or several get -1 (lost).
 */
struct repair_mdev {
	uint64_t id;
	uint64_t mapped_blocks;
};

struct repair_mtree {
	uint64_t root;
	uint64_t count;            /* mappings */
	uint32_t refs;             /* space-map count of the root (>= 1) */
	uint32_t max_time;         /* newest mapping time */
};

/* assign[i] = index of the tree for dev i, or -1.  Returns the number matched. */
size_t repair_match_trees(const struct repair_mdev *devs, size_t nd,
			  const struct repair_mtree *trees, size_t nt, uint32_t sb_time,
			  long *assign);

/*
 * The same in steps, so that the caller can strike candidates with more
 * evidence (older pool states) between them.  cand is an nd x nt matrix
 * (row per device): 1 = the tree may be the device's.
 */
#define REPAIR_LOST (-1L)
#define REPAIR_AMBIGUOUS (-2L)   /* the device's tree is one of its remaining candidates */

void repair_match_candidates(const struct repair_mdev *devs, size_t nd,
			     const struct repair_mtree *trees, size_t nt, uint32_t sb_time,
			     uint8_t *cand);
/*
 * Per connected group of devices and candidate trees, the trees'
 * references must add up to the number of devices (each device's live
 * root is one reference; a missing one means a damaged tree or a wrong
 * count): otherwise every device of the group is REPAIR_LOST.  A device
 * left with one candidate takes it, a tree whose references are all taken
 * is struck from the others (cand is updated), the rest are
 * REPAIR_AMBIGUOUS.  Returns the number of devices given a tree.
 */
size_t repair_match_resolve(const struct repair_mdev *devs, size_t nd,
			    const struct repair_mtree *trees, size_t nt, uint8_t *cand,
			    long *assign);


/*----------------------------------------------------------------*/
/*
 * Shared by the files of lib/repair: scan.c (block scan and tree
 * summaries), roots.c (root finding, table and structure walks, whole
 * trees in memory), states.c (pool states), salvage.c, rebuild_top.c,
 * emit.c, repair.c (the plan), util.c (notes, growable arrays, ranges).
 */

#include "io/io.h"
#include "ir/ir.h"
#include "refcount/refcount.h"
#include "thin/metadata.h"
#include "repair/repair.h"

struct notes {
	char **s;
	size_t nr, cap;
};

struct range {
	uint64_t lo, hi;   /* [lo, hi) */
};

struct ranges {
	struct range *r;
	size_t nr, cap;
};

enum { S_UNKNOWN = 0, S_VALID = 1, S_INVALID = -1, S_BUSY = 2 };

/*
 * A tree's summary, as a top-level (t) or details (d) tree.  The highest
 * key is not kept: it is the last key of the rightmost leaf
 * (repair_summ_hi).  Fields ordered widest first: no padding but the tail.
 */
struct summ {
	uint64_t count;      /* mappings (top), devices (details) */
	uint64_t devs;       /* number of devices */
	uint64_t hash;       /* hash of the device id set */
	uint64_t max_data;   /* top: highest data block; details: highest tid */
	uint32_t time;       /* newest mapping time (top); newest details time */
	int8_t state;
	uint8_t depth;
	uint8_t any_free;    /* some node of the tree is free in the space map */
};

/* The same as a mapping tree (m): no devices, no hash. */
struct msumm {
	uint64_t count;      /* mappings */
	uint64_t max_data;   /* highest data block */
	uint32_t time;       /* newest mapping time */
	int8_t state;
	uint8_t depth;
	uint8_t any_free;
};

static inline int repair_bit_get(const uint8_t *set, uint64_t b)
{
	return (set[b / 8] >> (b % 8)) & 1;
}

static inline void repair_bit_set(uint8_t *set, uint64_t b)
{
	set[b / 8] |= (uint8_t)(1u << (b % 8));
}

/* A checksum-valid B-tree node found by the scan (one per node: keep it small). */
struct snode {
	uint64_t block, first, last, hash;
	uint64_t sum;        /* details leaf: sum of mapped_blocks */
	uint64_t max_data;   /* mapping leaf: highest data block; details leaf: highest tid */
	struct summ t, d;
	struct msumm m;
	uint32_t nr, max_time;
	uint32_t ent;        /* first entry in the pool (internal, top-looking and data-sm index leaves) */
	uint8_t flags, vsize;
	uint8_t looks_top : 1, m_ref : 1, t_ref : 1, d_ref : 1;
	uint8_t held : 1;    /* a root named by a superblock copy (metadata snapshot) */
};

struct scan {
	struct snode *n;
	size_t nr, cap;
	uint64_t *pool;      /* key, value pairs */
	size_t pool_nr, pool_cap;
	uint32_t *idx;       /* block -> node index + 1 (0: none) */
	uint64_t nr_blocks;
	/* space-map blocks and superblock copies (metadata snapshots) */
	uint64_t *smi;       /* metadata space-map index blocks */
	size_t nr_smi, cap_smi;
	uint8_t *bitmap_ok;  /* bitset: checksum-valid bitmap blocks */
	uint8_t *sig;        /* bitset: blocks holding their own number at offset 8 */
	uint8_t *ioerr;      /* bitset: unreadable blocks */
	uint64_t high_sig;   /* highest block of sig or ioerr (0: none) */
	struct sb_copy {
		uint64_t block, mroot, droot;
	} *sbc;
	size_t nr_sbc, cap_sbc;
};

enum tkind { K_MAP, K_TOP, K_DETAILS };

struct summ_ctx {
	struct scan *s;
	const struct rcmap *msm;   /* NULL: unknown */
	struct summ mapping;       /* a mapping tree's summary, as last returned */
};

struct rdev {
	uint64_t id, root;
	int has_details;
	struct thin_details d;
	struct ranges lost;     /* internal damage found by the structure walk */
	uint64_t *salv;         /* salvaged leaf blocks, by first key */
	size_t nr_salv, cap_salv;
	/*
	 * Top-level tree rebuilt, the tree is one of several candidates:
	 * root is the first, alt the others, excl the sorted virtual blocks
	 * where they differ (not emitted, reported lost).
	 */
	uint64_t *alt, *excl;
	size_t nr_alt, nr_excl;
	size_t span0;           /* its salvaged leaves' spans: rp->spans[span0..+nr_salv) */
};

/* A salvaged leaf's keys, kept for the emit when the scan is released. */
struct salv_span {
	uint64_t first, last;
};

/*
 * A pool state found by the scan (order.c): one committed metadata space
 * map and the roots it marks in use.
 */
struct pdev {
	uint64_t id, root;
	struct thin_details d;
	uint8_t has_details;
};

struct pstate {
	uint64_t index_block;
	uint64_t *bitmaps;          /* its metadata bitmaps */
	unsigned nr_bitmaps;
	uint8_t *inuse;             /* bitset over the device: in use in its map */
	uint64_t max_used;
	uint64_t nr_holes, first_hole;   /* in use, and nothing readable there */
	/* roots found from the map (0: none) */
	uint64_t top, details, dsm, ovf[2], held;
	long nr_data_bitmaps;       /* entries of its data-sm index, -1: unknown */
	size_t nr_v8;               /* roots of value size 8 (top-level and mapping trees) */
	uint8_t map_exact;          /* index nr_free agree with the bitmaps */
	uint8_t roots_ok;           /* one top-level tree, every root explained */
	uint8_t whole;              /* top-level and details trees whole, same devices */
	uint8_t intact;             /* its structures account for its map exactly */
	int8_t last;                /* proven the last commit: 1, not proven: 0, -1 unknown */
	uint64_t why_block;         /* not proven last: a block that may be written after it */
	size_t f1_owner;            /* proven last: the state owning its lowest free block + 1 */
	uint64_t f1_skipped;        /* proven last by the next free block: the lowest one, or 0 */
	/* from the tree summaries */
	uint64_t nr_devs, nr_mappings, max_tid;
	uint32_t time, dtime;       /* newest mapping time, newest creation/snapshot time */
	/* the device table, loaded when a rule needs it */
	struct pdev *devs;
	size_t nr_pdevs;
	uint8_t devs_loaded, devs_ok;
	uint32_t clock;             /* newest time of any kind in it */
};

struct thin_repair {
	struct thin_md *md;
	struct thin_repair_opts o;
	struct ir_superblock sb;
	uint64_t mapping_root, details_root;
	struct rdev *devs;
	size_t nr_devs, cap_devs;
	struct notes notes;
	size_t plan_notes;      /* notes from the plan (kept across emits) */
	struct rcmap *msm;    /* the input's metadata space map, or NULL */
	struct rcmap *expected;
	uint8_t *visited;       /* internal nodes walked (bitset) */
	uint8_t *dmg_below;     /* internal nodes with damage beneath (bitset) */
	struct scan scan;
	int scanned, used_sb_roots, synthesised;
	int no_devices;         /* the chosen state has no devices (its top-level root lost) */
	int max_known;          /* max_data_seen and max_time_seen are the chosen state's */
	uint64_t salvaged, max_data_seen;
	uint32_t max_time_seen;
	uint64_t nr_mappings, nr_lost;
	/* pool states (superblock lost) */
	struct pstate *pst;
	size_t nr_pst, chosen;   /* chosen: index into pst + 1 */
	uint8_t *pst_rel;       /* nr_pst x nr_pst: [z * n + x] = why z is older than x + 1, 1: not */
	uint8_t *inuse_any;     /* bitset: in use in some state's map */
	uint8_t *owned_any;     /* bitset: some state's sm block, or a parent in an intact one */
	uint8_t *parents;       /* bitset: internal nodes and data-sm index leaves */
	struct thin_repair_candidate *cand;
	size_t nr_cand, cap_cand;
	struct salv_span *spans;   /* set when the plan is done (the scan is released then) */
};

/* Reads a whole (details or top-level) tree into dev entries. */
struct table_walk {
	struct thin_repair *rp;
	int details;
	int damaged;
	struct ranges lost;
	struct rdev *devs;      /* details: collected separately */
	size_t nr, cap;
	uint64_t nr_free;       /* leaves free in the space map */
};

struct kv {
	uint64_t key, val;
};

struct kvs {
	struct kv *kv;
	size_t n, cap;
	int loaded, damaged;
};

void repair_note(struct notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void repair_notes_clear(struct notes *n, size_t keep);

int repair_grow(void **p, size_t *cap, size_t nr, size_t size);

int repair_ranges_add(struct ranges *rs, uint64_t lo, uint64_t hi);

struct snode *repair_scan_node(struct scan *s, uint64_t b);

int repair_scan_run(struct ioe *e, uint64_t nr_blocks, struct scan *s);

void repair_scan_release(struct scan *s);

const struct summ *repair_summarise(struct summ_ctx *c, struct snode *n, enum tkind k, int level);

int repair_read_table(struct thin_repair *rp, uint64_t root, int details, struct table_walk *t);

void repair_table_release(struct table_walk *t);

uint64_t repair_swalk_device(struct thin_repair *rp, uint64_t root, struct ranges *lost);

void repair_devs_release(struct thin_repair *rp);
int repair_rdev_cmp(const void *a, const void *b);

int64_t repair_load_roots(struct thin_repair *rp, uint64_t mroot, uint64_t droot, int *damaged,
			  int record);

int repair_sb_usable(const struct thin_md *md);

void repair_load_msm(struct thin_repair *rp);

int repair_do_scan(struct thin_repair *rp);

int repair_find_roots(struct thin_repair *rp, uint64_t *mroot, uint64_t *droot);

int repair_kvs_load(struct thin_repair *rp, uint64_t root, struct kvs *k);

void repair_kvs_release(struct kvs *k);

int repair_kvs_older_in(const struct kvs *l, const struct kvs *x, uint32_t tau);

int repair_top_names_root(struct scan *s, struct snode *n, uint64_t b, int level);

int repair_collect_states(struct thin_repair *rp, uint8_t *counts, struct repair_state **out,
			  size_t *nr);

int repair_state_newest_first(const void *a, const void *b);

int repair_find_state(struct thin_repair *rp, uint64_t *mroot, uint64_t *droot, char *msg,
		      size_t msglen);

int64_t repair_structure_walk(struct thin_repair *rp);

int repair_plan_salvage(struct thin_repair *rp);

int repair_u64_cmp(const void *a, const void *b);

int repair_rebuild_top(struct thin_repair *rp);

int repair_need_field(char *msg, size_t msglen, const char *field);

/* order.c: pool states and their order */
int repair_pstates_build(struct thin_repair *rp);
void repair_pstates_release(struct thin_repair *rp);
int repair_choose_state(struct thin_repair *rp, uint64_t *mroot, uint64_t *droot, char *msg,
			size_t msglen);
int repair_state_msm(struct thin_repair *rp, uint64_t ib);

/* Why one state is older than another (order.c, unit tested). */
enum {
	WB_NONE = 0,
	WB_DATA_SM,       /* its data space map covers fewer bitmaps */
	WB_META_SM,       /* its metadata space map covers fewer bitmaps */
	WB_OVERWRITE,     /* its map marks in use a block now holding the other's space map */
	WB_TIME,          /* a device's creation or snapshot time is older in it */
	WB_MISSING,       /* a device created before the other's clock is missing or different */
	WB_REWRITTEN,     /* a block in use in it now holds the other's node naming blocks it lacks */
};
int repair_older_why(const struct pstate *z, const struct pstate *x);

/* The last-commit proof over states st[0..nr) (order.c, unit tested). */
struct repair_last_ctx {
	const struct pstate *st;
	size_t nr;
	uint64_t nr_blocks;
	const uint8_t *sig, *ioerr, *inuse_any;   /* bitsets over the device */
	uint64_t high_sig;                        /* highest block of sig or ioerr */
	const uint64_t *smi;                      /* every checksum-valid space-map index */
	size_t nr_smi;
	const uint8_t *owned_any;                 /* NULL, or bitset: some state's sm block,
						     or a parent in use in an intact state */
	const uint8_t *parents;                   /* NULL, or bitset: nodes naming blocks */
	int (*older)(void *ctx, size_t z, size_t x);   /* z proven older than x */
	void *ctx;
};
int repair_last_commit(const struct repair_last_ctx *c, size_t x, uint64_t *why_block,
		       size_t *f1_owner, uint64_t *skipped);
int repair_refuse_no_state(struct thin_repair *rp, uint64_t mroot, uint64_t droot, char *msg,
			   size_t msglen);

#endif
