#include "cmd/restore.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "btree/btree_builder.h"
#include "spacemap/sm_writer.h"
#include "thin/superblock.h"
#include "tm/tm.h"
#include "util/report.h"
#include "util/vec.h"

#define DEFAULT_DEDUP_ORDER 17u
#define DEF_CACHE_BLOCKS 16384u   /* <def> leaves kept in memory (64 MiB) */
#define MAX_TIME ((1u << 24) - 1)
#define MAX_DATA_BLOCK ((1ull << 40) - 1)
#define MAP_LEAF_MAX ((MD_BLOCK_SIZE - BT_HEADER_SIZE) / 16)   /* entries of a mapping leaf, at most */

struct rdev {
	uint64_t dev_id, root;
	struct thin_details d;
};

struct rdef {
	char *name;
	uint64_t *blocks;
	uint8_t *nodes;          /* their content (nr blocks), NULL: not kept */
	size_t nr;
	uint64_t first_key, last_key, nr_entries;
};

struct restorer {
	struct tm_mgr *tm;
	const struct thin_restore_opts *o;
	char msg[512];           /* reason of a failed callback (input error) */
	char fatal[512];         /* reason that is not about the input */
	int seen_sb, sb_done;
	struct thin_sb sb;
	uint64_t nr_data_blocks;
	struct rcmap *data;
	struct bt_dedup *dedup;
	struct bt_builder *mb, *defb;
	int in_dev, in_def;
	struct ir_device dev;
	int have_last;
	uint64_t last_key;
	struct rdev *devs;
	size_t nr_devs, cap_devs;
	struct rdef *defs;
	size_t nr_defs, cap_defs;
	size_t def_cached;       /* def leaves kept in memory */
	uint64_t nr_refs;        /* <ref> elements of defs not kept in memory */
};

__attribute__((format(printf, 2, 3))) static int fail(struct restorer *rs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rs->msg, sizeof(rs->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

__attribute__((format(printf, 3, 4))) static int fatal(struct restorer *rs, int r,
							const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rs->fatal, sizeof(rs->fatal), fmt, ap);
	va_end(ap);
	snprintf(rs->msg, sizeof(rs->msg), "%s", rs->fatal);
	return r;
}

static int internal(struct restorer *rs, int r, const char *what)
{
	if (r == -EINVAL)
		return fail(rs, "%s: entries out of order", what);
	return fatal(rs, r, "%s: %s", what, strerror(-r));
}

int thin_valid_data_block_size(uint64_t s)
{
	return s >= THIN_MIN_DATA_BLOCK_SIZE && s <= THIN_MAX_DATA_BLOCK_SIZE && s % 128 == 0;
}

/*----------------------------------------------------------------*/
/* visitor callbacks */

static int count_data(void *ctx, const struct bt_node *leaf)
{
	struct restorer *rs = ctx;
	const uint8_t *v = bt_value(leaf, 0);
	uint32_t n = leaf->nr_entries, nr = 0;
	uint64_t start[MAP_LEAF_MAX];
	uint32_t len[MAP_LEAF_MAX];

	if (n > MAP_LEAF_MAX || leaf->value_size != 8)
		return -EINVAL;
	/*
	 * Runs of consecutive data blocks (how pools allocate) are counted
	 * at once; their counts are fetched together first (they are spread
	 * over the whole pool).
	 */
	for (uint32_t i = 0; i < n;) {
		uint64_t b = thin_bt_block(get_le64(v + 8 * (size_t)i));
		uint32_t j = i + 1;

		while (j < n && thin_bt_block(get_le64(v + 8 * (size_t)j)) == b + (j - i))
			j++;
		rcmap_prefetch(rs->data, b);
		start[nr] = b;
		len[nr++] = j - i;
		i = j;
	}
	for (uint32_t k = 0; k < nr; k++) {
		int r = rcmap_inc_run(rs->data, start[k], len[k]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int v_begin_sb(void *ctx, const struct ir_superblock *in)
{
	struct restorer *rs = ctx;
	uint64_t md = tm_nr_blocks(rs->tm);
	struct bt_builder_opts mo = { .value_size = THIN_MAPPING_VSIZE,
				      .new_leaf = count_data, .ctx = rs };
	struct bt_builder_opts dfo = { .value_size = THIN_MAPPING_VSIZE };
	uint64_t need;
	int r;

	if (rs->seen_sb)
		return fail(rs, "more than one superblock");
	rs->seen_sb = 1;
	memset(&rs->sb, 0, sizeof(rs->sb));
	rs->sb.magic = THIN_MAGIC;
	rs->sb.version = THIN_VERSION;
	/* as 0.9.0: the first <= 16 bytes of a non-empty uuid attribute; else a kept tag */
	if (in->uuid && in->uuid[0])
		memcpy(rs->sb.uuid, in->uuid, strnlen(in->uuid, sizeof(rs->sb.uuid)));
	else if (rs->o->have_uuid)
		memcpy(rs->sb.uuid, rs->o->uuid, sizeof(rs->sb.uuid));
	rs->sb.flags = in->flags & THIN_NEEDS_CHECK;
	rs->sb.time = in->time;
	rs->sb.trans_id = rs->o->have_trans_id ? rs->o->trans_id : in->transaction;
	rs->sb.data_block_size = rs->o->have_data_block_size ? rs->o->data_block_size
							     : in->data_block_size;
	rs->sb.metadata_block_size = 8;
	rs->sb.metadata_nr_blocks = md;
	rs->nr_data_blocks = rs->o->have_nr_data_blocks ? rs->o->nr_data_blocks : in->nr_data_blocks;
	if (!thin_valid_data_block_size(rs->sb.data_block_size))
		return fail(rs, "invalid data block size %u (must be a multiple of 128 between 128 and 2097152 sectors)",
			    rs->sb.data_block_size);
	if (rs->nr_data_blocks > MAX_DATA_BLOCK + 1)
		return fail(rs, "nr_data_blocks %llu is too large (at most 2^40)",
			    (unsigned long long)rs->nr_data_blocks);
	need = sm_data_blocks_needed(rs->nr_data_blocks) + sm_metadata_blocks_needed(md) + 4;
	if (need > md)
		return fatal(rs, -ENOSPC,
			     "output too small: the space maps alone need %llu metadata blocks (%llu bytes), the output holds %llu",
			     (unsigned long long)need, (unsigned long long)need * MD_BLOCK_SIZE,
			     (unsigned long long)md);
	rs->data = rs->o->compact_data ? rcmap_create_compact(rs->nr_data_blocks)
				    : rcmap_create_dense(rs->nr_data_blocks);
	if (!rs->data)
		return fatal(rs, -ENOMEM, "out of memory for %llu data blocks",
			     (unsigned long long)rs->nr_data_blocks);
	mo.dedup = rs->dedup;
	r = bt_builder_create(rs->tm, &mo, &rs->mb);
	if (r >= 0)
		r = bt_builder_create(rs->tm, &dfo, &rs->defb);
	if (r < 0)
		return fatal(rs, r, "out of memory");
	return 0;
}

static int v_end_sb(void *ctx)
{
	struct restorer *rs = ctx;

	if (rs->in_dev || rs->in_def)
		return fail(rs, "superblock ends inside a device");
	rs->sb_done = 1;
	return 0;
}

static int v_begin_dev(void *ctx, const struct ir_device *d)
{
	struct restorer *rs = ctx;

	if (!rs->seen_sb || rs->sb_done || rs->in_dev || rs->in_def)
		return fail(rs, "device outside the superblock");
	if (d->dev_id > THIN_MAX_DEV_ID)
		return fail(rs, "device id %llu is too large (at most %llu)",
			    (unsigned long long)d->dev_id, (unsigned long long)THIN_MAX_DEV_ID);
	if (rs->nr_devs && d->dev_id <= rs->devs[rs->nr_devs - 1].dev_id) {
		for (size_t i = 0; i < rs->nr_devs; i++)
			if (rs->devs[i].dev_id == d->dev_id)
				return fail(rs, "duplicate device id %llu",
					    (unsigned long long)d->dev_id);
	}
	rs->dev = *d;
	rs->in_dev = 1;
	rs->have_last = 0;
	return 0;
}

static int push_dev(struct restorer *rs, uint64_t root, uint64_t mapped)
{
	struct rdev *n;

	if (rs->nr_devs == rs->cap_devs) {
		size_t cap = rs->cap_devs ? rs->cap_devs * 2 : 64;
		n = realloc(rs->devs, cap * sizeof(*n));
		if (!n)
			return fatal(rs, -ENOMEM, "out of memory");
		rs->devs = n;
		rs->cap_devs = cap;
	}
	n = &rs->devs[rs->nr_devs++];
	n->dev_id = rs->dev.dev_id;
	n->root = root;
	n->d.mapped_blocks = mapped;
	n->d.transaction_id = rs->dev.transaction;
	n->d.creation_time = rs->dev.creation_time;
	n->d.snapshotted_time = rs->dev.snap_time;
	return 0;
}

static int v_end_dev(void *ctx)
{
	struct restorer *rs = ctx;
	uint64_t mapped = bt_builder_nr_entries(rs->mb), root;
	int r;

	r = bt_builder_finish(rs->mb, &root);
	if (r < 0)
		return internal(rs, r, "device mapping tree");
	rs->in_dev = 0;
	return push_dev(rs, root, mapped);
}

static int v_range(void *ctx, uint64_t ob, uint64_t db, uint64_t len, uint32_t time)
{
	struct restorer *rs = ctx;
	struct bt_builder *b = rs->in_def ? rs->defb : rs->mb;
	int r;

	if (!rs->in_dev && !rs->in_def)
		return fail(rs, "mapping outside a device");
	if (!len)
		return fail(rs, "range mapping of length 0");
	if (ob + len - 1 < ob || db + len - 1 < db)
		return fail(rs, "mapping range wraps around");
	if (time > MAX_TIME)
		return fail(rs, "mapping time %u is too large (at most %u)", time, MAX_TIME);
	if (db + len - 1 > MAX_DATA_BLOCK)
		return fail(rs, "data block %llu is too large (at most 2^40 - 1)",
			    (unsigned long long)(db + len - 1));
	if (db + len > rs->nr_data_blocks)
		return fail(rs, "mapping beyond end of data device (%llu >= %llu)",
			    (unsigned long long)(db + len - 1), (unsigned long long)rs->nr_data_blocks);
	if (rs->have_last && ob <= rs->last_key)
		return fail(rs, "mappings out of order or overlapping at origin block %llu",
			    (unsigned long long)ob);
	r = bt_builder_add_run(b, ob, thin_bt_pack(db, time), thin_bt_pack(1, 0), len);
	if (r < 0)
		return internal(rs, r, "mapping tree");
	rs->have_last = 1;
	rs->last_key = ob + len - 1;
	return 0;
}

static int v_single(void *ctx, uint64_t ob, uint64_t db, uint32_t time)
{
	return v_range(ctx, ob, db, 1, time);
}

static struct rdef *find_def(struct restorer *rs, const char *name)
{
	for (size_t i = rs->nr_defs; i-- > 0;)
		if (!strcmp(rs->defs[i].name, name))
			return &rs->defs[i];
	return NULL;
}

static int v_begin_def(void *ctx, const char *name)
{
	struct restorer *rs = ctx;
	struct rdef *d;

	if (!rs->seen_sb || rs->sb_done || rs->in_dev || rs->in_def)
		return fail(rs, "def outside the superblock");
	if (find_def(rs, name))
		return fail(rs, "duplicate def '%s'", name);
	if (rs->nr_defs == rs->cap_defs) {
		size_t cap = rs->cap_defs ? rs->cap_defs * 2 : 16;
		d = realloc(rs->defs, cap * sizeof(*d));
		if (!d)
			return fatal(rs, -ENOMEM, "out of memory");
		rs->defs = d;
		rs->cap_defs = cap;
	}
	d = &rs->defs[rs->nr_defs];
	memset(d, 0, sizeof(*d));
	d->name = strdup(name);
	if (!d->name)
		return fatal(rs, -ENOMEM, "out of memory");
	rs->nr_defs++;
	rs->in_def = 1;
	rs->have_last = 0;
	return 0;
}

static int v_end_def(void *ctx)
{
	struct restorer *rs = ctx;
	struct rdef *d = &rs->defs[rs->nr_defs - 1];
	int r;

	d->nr_entries = bt_builder_nr_entries(rs->defb);
	d->last_key = rs->last_key;
	r = bt_builder_finish_leaves(rs->defb, &d->blocks, &d->nr);
	if (r < 0)
		return internal(rs, r, "def");
	rs->in_def = 0;
	/*
	 * Keep the leaves' content while memory allows: a dry run (which
	 * drops its writes) can then link them as they are and count the
	 * blocks the metadata needs exactly.
	 */
	if (d->nr && rs->def_cached + d->nr <= DEF_CACHE_BLOCKS && !rs->o->no_def_cache) {
		d->nodes = malloc(d->nr * MD_BLOCK_SIZE);
		for (size_t i = 0; d->nodes && i < d->nr; i++) {
			if (tm_read(rs->tm, d->blocks[i], d->nodes + i * MD_BLOCK_SIZE) < 0) {
				free(d->nodes);
				d->nodes = NULL;
			}
		}
		if (d->nodes)
			rs->def_cached += d->nr;
	}
	return 0;
}

static int v_ref(void *ctx, const char *name)
{
	struct restorer *rs = ctx;
	struct rdef *d;
	int r;

	if (!rs->in_dev)
		return fail(rs, "ref outside a device");
	d = find_def(rs, name);
	if (!d)
		return fail(rs, "Couldn't find sub tree '%s'.", name);
	if (!d->nr_entries)
		return 0;
	if (!d->nodes)
		rs->nr_refs++;
	for (size_t i = 0; i < d->nr; i++) {
		r = d->nodes ? bt_builder_add_leaf_node(rs->mb, d->blocks[i],
							d->nodes + i * MD_BLOCK_SIZE)
			     : bt_builder_add_leaf(rs->mb, d->blocks[i]);
		if (r == -EINVAL)
			return fail(rs, "shared sub tree '%s' overlaps the mappings before it", name);
		if (r < 0)
			return internal(rs, r, "ref");
	}
	rs->have_last = 1;
	rs->last_key = d->last_key;
	return 0;
}

/*----------------------------------------------------------------*/
/* finishing */

static int cmp_dev(const void *a, const void *b)
{
	const struct rdev *x = a, *y = b;

	return x->dev_id < y->dev_id ? -1 : x->dev_id > y->dev_id;
}

/* Def leaves: drop the def's own reference; count data of the reachable ones. */
static int settle_defs(struct restorer *rs)
{
	uint8_t *buf = ioe_alloc_blocks(1);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < rs->nr_defs && r >= 0; i++) {
		struct rdef *d = &rs->defs[i];
		for (size_t j = 0; j < d->nr && r >= 0; j++) {
			struct bt_node n;
			r = tm_dec(rs->tm, d->blocks[j]);
			if (r < 0 || !tm_ref(rs->tm, d->blocks[j]))
				continue;
			if (d->nodes) {
				bt_node_view(d->nodes + j * MD_BLOCK_SIZE, &n);
			} else {
				if (tm_overflowed(rs->tm))
					continue;
				r = tm_read(rs->tm, d->blocks[j], buf);
				if (r < 0)
					break;
				bt_node_view(buf, &n);
			}
			r = count_data(rs, &n);
		}
	}
	free(buf);
	return r;
}

static int build_dev_trees(struct restorer *rs)
{
	struct bt_builder_opts dto = { .value_size = THIN_DETAILS_VSIZE };
	struct bt_builder_opts tlo = { .value_size = THIN_MAPPING_VSIZE };
	struct bt_builder *dt = NULL, *tl = NULL;
	int r;

	if (rs->nr_devs)
		vec_sort(rs->devs, rs->nr_devs, sizeof(*rs->devs), cmp_dev);
	r = bt_builder_create(rs->tm, &dto, &dt);
	if (r >= 0)
		r = bt_builder_create(rs->tm, &tlo, &tl);
	for (size_t i = 0; i < rs->nr_devs && r >= 0; i++) {
		struct disk_device_details dd;
		le64 root = cpu_to_le64(rs->devs[i].root);
		thin_details_pack(&rs->devs[i].d, &dd);
		r = bt_builder_add(dt, rs->devs[i].dev_id, &dd);
		if (r >= 0)
			r = bt_builder_add(tl, rs->devs[i].dev_id, &root);
	}
	if (r >= 0)
		r = bt_builder_finish(dt, &rs->sb.device_details_root);
	if (r >= 0)
		r = bt_builder_finish(tl, &rs->sb.data_mapping_root);
	bt_builder_destroy(dt);
	bt_builder_destroy(tl);
	return r;
}

static int finish(struct restorer *rs)
{
	uint8_t *blk;
	int r;

	if (!rs->seen_sb || !rs->sb_done)
		return fail(rs, "no complete superblock in the input");
	r = settle_defs(rs);
	if (r >= 0)
		r = build_dev_trees(rs);
	if (r >= 0)
		r = sm_write_data(rs->tm, rs->data, rs->nr_data_blocks, &rs->sb.data_sm);
	if (r >= 0)
		r = sm_write_metadata(rs->tm, &rs->sb.metadata_sm);
	if (r < 0)
		return fatal(rs, r, "writing metadata: %s", strerror(-r));
	if (tm_overflowed(rs->tm))
		return -ENOSPC;
	blk = ioe_alloc_blocks(1);
	if (!blk)
		return -ENOMEM;
	memset(blk, 0, MD_BLOCK_SIZE);
	thin_sb_pack(&rs->sb, (struct disk_superblock *)blk);
	r = tm_commit(rs->tm, &thin_sb_validator, blk);
	free(blk);
	if (r < 0)
		return fatal(rs, r, "writing metadata: %s", strerror(-r));
	return 0;
}

static void restorer_release(struct restorer *rs)
{
	bt_builder_destroy(rs->mb);
	bt_builder_destroy(rs->defb);
	bt_dedup_destroy(rs->dedup);
	rcmap_destroy(rs->data);
	for (size_t i = 0; i < rs->nr_defs; i++) {
		free(rs->defs[i].name);
		free(rs->defs[i].blocks);
		free(rs->defs[i].nodes);
	}
	free(rs->defs);
	free(rs->devs);
}

/*----------------------------------------------------------------*/
/*
 * Write-behind: the output engine seen through a writer thread, so that
 * the (synchronous, O_DIRECT) writes of one batch overlap with building
 * the next.  Writes are copied (or their buffer taken) and done in order;
 * a read or a flush first waits for every queued write, so ordering and
 * the commit protocol are unchanged (the superblock is written after a
 * flush that saw every earlier write done).  After a failed write or
 * flush nothing more is written and every later call returns the error.
 *
 * On a block device a third thread also flushes after every
 * WB_EARLY_FLUSH blocks written (16 MiB), while the writes go on: a device that
 * caches writes (a loop device's backing file, a disk's write cache) then
 * writes them back during the restore instead of all in the final flush.
 */

#define WB_SLOTS 2u
#define WB_SLOT_BLOCKS 1024u
#define WB_EARLY_FLUSH 4096u   /* blocks (16 MiB) */

struct wb_slot {
	uint8_t *buf;
	uint64_t block;
	unsigned nr;
};

struct wb_engine {
	struct ioe e;
	struct ioe *inner;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct wb_slot slot[WB_SLOTS];
	unsigned head, nr;         /* queued: slot[head], ... (nr of them) */
	int err, stop, started, sync;
	pthread_t thread;
	/* early flushes (block devices) */
	int early, fstarted, fwant, fbusy;
	uint64_t unflushed;        /* blocks written since the last flush asked for */
	pthread_t fthread;
};

static struct wb_engine *to_wb(struct ioe *e)
{
	return (struct wb_engine *)e;
}

static void *wb_run(void *arg)
{
	struct wb_engine *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct wb_slot *s;
		int r = 0;

		while (!w->nr && !w->stop)
			pthread_cond_wait(&w->cv, &w->lock);
		if (!w->nr)
			break;
		s = &w->slot[w->head];
		pthread_mutex_unlock(&w->lock);
		if (!w->err)
			r = ioe_write(w->inner, s->block, s->nr, s->buf);
		pthread_mutex_lock(&w->lock);
		if (r < 0 && !w->err)
			w->err = r;
		w->unflushed += s->nr;
		if (w->fstarted && w->unflushed >= WB_EARLY_FLUSH && !w->fbusy) {
			w->unflushed = 0;
			w->fwant = 1;
		}
		w->head = (w->head + 1) % WB_SLOTS;
		w->nr--;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* The early flusher: a flush of what is written so far, when asked. */
static void *wb_flusher(void *arg)
{
	struct wb_engine *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		int r = 0;

		while (!w->fwant && !w->stop)
			pthread_cond_wait(&w->cv, &w->lock);
		if (!w->fwant)
			break;
		w->fwant = 0;
		w->fbusy = 1;
		pthread_mutex_unlock(&w->lock);
		if (!w->err)
			r = ioe_flush(w->inner);
		pthread_mutex_lock(&w->lock);
		if (r < 0 && !w->err)
			w->err = r;
		w->fbusy = 0;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Waits for every queued write (and early flush); returns the first error. */
static int wb_drain(struct wb_engine *w)
{
	int r;

	pthread_mutex_lock(&w->lock);
	while (w->nr || w->fbusy || w->fwant)
		pthread_cond_wait(&w->cv, &w->lock);
	r = w->err;
	pthread_mutex_unlock(&w->lock);
	return r;
}

static int wb_read(struct ioe *e, uint64_t b, unsigned nr, void *buf)
{
	struct wb_engine *w = to_wb(e);

	wb_drain(w);
	return ioe_read(w->inner, b, nr, buf);
}

static int wb_read_batch(struct ioe *e, const uint64_t *blocks, unsigned nr, void *const *bufs,
			 int *results)
{
	struct wb_engine *w = to_wb(e);

	wb_drain(w);
	return ioe_read_batch(w->inner, blocks, nr, bufs, results);
}

/* Queues a write of nr blocks: copied from buf, or swapped with *swap (cap blocks). */
static int wb_queue(struct wb_engine *w, uint64_t b, unsigned nr, const void *buf, void **swap,
		    unsigned cap)
{
	struct wb_slot *s;
	int r;

	if (!w->started && !w->sync) {
		/* the flusher first: the writer reads fstarted */
		if (w->early)
			w->fstarted = !pthread_create(&w->fthread, NULL, wb_flusher, w);
		w->started = !pthread_create(&w->thread, NULL, wb_run, w);
		w->sync = !w->started;
	}
	if (w->sync || nr > WB_SLOT_BLOCKS) {
		r = wb_drain(w);
		return r < 0 ? r : ioe_write(w->inner, b, nr, buf);
	}
	pthread_mutex_lock(&w->lock);
	while (w->nr == WB_SLOTS && !w->err)
		pthread_cond_wait(&w->cv, &w->lock);
	r = w->err;
	if (!r) {
		s = &w->slot[(w->head + w->nr) % WB_SLOTS];
		if (swap && cap == WB_SLOT_BLOCKS) {
			uint8_t *t = s->buf;
			s->buf = *swap;
			*swap = t;
		} else {
			memcpy(s->buf, buf, (size_t)nr * MD_BLOCK_SIZE);
		}
		s->block = b;
		s->nr = nr;
		w->nr++;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

static int wb_write(struct ioe *e, uint64_t b, unsigned nr, const void *buf)
{
	return wb_queue(to_wb(e), b, nr, buf, NULL, 0);
}

static int wb_write_swap(struct ioe *e, uint64_t b, unsigned nr, void **buf, unsigned cap)
{
	return wb_queue(to_wb(e), b, nr, *buf, buf, cap);
}

static int wb_flush(struct ioe *e)
{
	struct wb_engine *w = to_wb(e);
	int r = wb_drain(w);

	return r < 0 ? r : ioe_flush(w->inner);
}

/* Waits for the queued writes and stops the thread; the inner engine stays. */
static void wb_destroy(struct ioe *e)
{
	struct wb_engine *w = to_wb(e);

	if (w->started || w->fstarted) {
		pthread_mutex_lock(&w->lock);
		w->stop = 1;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->lock);
		if (w->started)
			pthread_join(w->thread, NULL);
		if (w->fstarted)
			pthread_join(w->fthread, NULL);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cv);
	for (unsigned i = 0; i < WB_SLOTS; i++)
		free(w->slot[i].buf);
	free(w);
}

static const struct ioe_ops wb_ops = {
	.read = wb_read,
	.write = wb_write,
	.flush = wb_flush,
	.destroy = wb_destroy,
	.read_batch = wb_read_batch,
	.write_swap = wb_write_swap,
};

/* inner seen through a writer thread; NULL when out of memory. */
static struct ioe *wb_create(struct ioe *inner)
{
	struct wb_engine *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->e = *inner;
	w->e.ops = &wb_ops;
	w->inner = inner;
	w->early = inner->is_bdev;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
	for (unsigned i = 0; i < WB_SLOTS; i++) {
		w->slot[i].buf = ioe_alloc_huge(WB_SLOT_BLOCKS);   /* O_DIRECT writes pin huge pages */
		if (!w->slot[i].buf) {
			wb_destroy(&w->e);
			return NULL;
		}
	}
	return &w->e;
}

/*----------------------------------------------------------------*/
/* passes */

struct pass {
	struct ioe *out;
	uint64_t md_blocks;
	struct rcmap *reserved;   /* consumed */
	int reserve_all;
	const struct thin_restore_opts *o;
	thin_ir_producer prod;
	void *prod_ctx;
	/* results */
	int overflowed;
	uint64_t needed;
	uint64_t slack;             /* how far a dry run's count may fall short */
	struct thin_restore_stats *st;
};

static int run_pass(struct pass *p, char *err, size_t errlen)
{
	struct ioe *wout;
	struct restorer rs;
	struct ir_visitor v = {
		.ctx = &rs,
		.begin_superblock = v_begin_sb,
		.end_superblock = v_end_sb,
		.begin_device = v_begin_dev,
		.end_device = v_end_dev,
		.begin_def = v_begin_def,
		.end_def = v_end_def,
		.ref = v_ref,
		.single_map = v_single,
		.range_map = v_range,
	};
	int r;

	memset(&rs, 0, sizeof(rs));
	rs.o = p->o;
	v.err = rs.msg;
	v.errlen = sizeof(rs.msg);
	wout = wb_create(p->out);
	r = wout ? tm_create(wout, p->md_blocks, &rs.tm) : -ENOMEM;
	if (r < 0) {
		ioe_destroy(wout);
		rcmap_destroy(p->reserved);
		snprintf(err, errlen, "out of memory");
		return r;
	}
	if (p->reserved)
		tm_set_reserved(rs.tm, p->reserved);
	p->reserved = NULL;
	if (p->reserve_all)
		tm_reserve_all(rs.tm);
	if (!p->o->no_dedup)
		rs.dedup = bt_dedup_create(p->o->dedup_order ? p->o->dedup_order
							     : DEFAULT_DEDUP_ORDER);
	r = tm_claim(rs.tm, THIN_SB_LOCATION);
	if (r >= 0)
		r = p->prod(p->prod_ctx, &v, err, errlen);
	if (r >= 0)
		r = finish(&rs);
	p->overflowed = tm_overflowed(rs.tm);
	p->needed = tm_nr_used(rs.tm);
	/*
	 * A dry run cannot read back the <def> leaves it dropped (those not
	 * kept in memory).  Where a <ref> links them it stands in leaves of
	 * minimum fill, which can change how the leaves around each of them
	 * are cut, merged or copied (a block per def leaf, two per <ref>);
	 * and it skips their data references, which can only add entries to
	 * the data overflow tree (at most one entry per mapping of a def
	 * leaf, i.e. under two overflow nodes per def leaf).
	 */
	p->slack = 0;
	for (size_t i = 0; i < rs.nr_defs; i++)
		if (!rs.defs[i].nodes)
			p->slack += 3 * rs.defs[i].nr;
	if (p->slack || rs.nr_refs)
		p->slack += 2 * rs.nr_refs + 8;
	if (r < 0 && rs.fatal[0])
		snprintf(err, errlen, "%s", rs.fatal);
	else if (r < 0 && !err[0])
		snprintf(err, errlen, "%s", rs.msg[0] ? rs.msg : strerror(-r));
	if (r >= 0 && p->st) {
		p->st->metadata_blocks = rs.sb.metadata_sm.nr_allocated;
		p->st->shared_leaves = bt_dedup_hits(rs.dedup);
	}
	restorer_release(&rs);
	tm_destroy(rs.tm);
	ioe_destroy(wout);
	return r;
}

/* Loads the used blocks of valid metadata already on the output; NULL if none. */
static int load_old(struct ioe *out, struct rcmap **old, int *damaged)
{
	struct bc *bc = bc_create(out, 64);
	struct thin_sb sb;
	struct report *rep;
	int r;

	*old = NULL;
	*damaged = 0;
	if (!bc)
		return -ENOMEM;
	thin_bc_set_block_types(bc);
	r = thin_sb_read(bc, THIN_SB_LOCATION, &sb);
	if (r < 0 || sb.magic != THIN_MAGIC) {
		bc_destroy(bc);
		return 0;   /* nothing valid to keep */
	}
	rep = rep_create(NULL, 1);
	*old = rcmap_create(sb.metadata_sm.nr_blocks > out->nr_blocks ? sb.metadata_sm.nr_blocks
									 : out->nr_blocks);
	if (!rep || !*old) {
		rep_destroy(rep);
		bc_destroy(bc);
		return -ENOMEM;
	}
	r = sm_disk_load(bc, &sb.metadata_sm, *old, rep, NULL);
	if (r < 0 || rep_outcome(rep) >= DMG_NON_FATAL || sb.metadata_sm.nr_blocks > SM_MAX_METADATA_BLOCKS)
		*damaged = 1;   /* cannot tell which blocks are in use */
	rcmap_set(*old, THIN_SB_LOCATION, 1);
	if (sb.held_root && sb.held_root < rcmap_nr_blocks(*old) && !rcmap_get(*old, sb.held_root))
		rcmap_set(*old, sb.held_root, 1);
	rep_destroy(rep);
	bc_destroy(bc);
	return 0;
}

static int too_small(char *err, size_t errlen, uint64_t needed, uint64_t have)
{
	snprintf(err, errlen,
		 "output too small: the metadata needs %llu blocks of 4096 bytes (%llu bytes), the output holds %llu blocks",
		 (unsigned long long)needed, (unsigned long long)needed * MD_BLOCK_SIZE,
		 (unsigned long long)have);
	return -ENOSPC;
}

int thin_restore_ioe(struct ioe *out, const struct thin_restore_opts *o, thin_ir_producer prod,
		     void *prod_ctx, struct thin_restore_stats *st, char *err, size_t errlen)
{
	struct pass p = { .out = out, .o = o, .prod = prod, .prod_ctx = prod_ctx, .st = st };
	int r, damaged, had_old;
	uint8_t *zero;

	err[0] = '\0';
	if (st)
		memset(st, 0, sizeof(*st));
	p.md_blocks = out->nr_blocks < SM_MAX_METADATA_BLOCKS ? out->nr_blocks
							       : SM_MAX_METADATA_BLOCKS;
	if (p.md_blocks < 8)
		return too_small(err, errlen, 8, p.md_blocks);
	r = load_old(out, &p.reserved, &damaged);
	if (r < 0) {
		snprintf(err, errlen, "reading the output: %s", strerror(-r));
		return r;
	}
	had_old = p.reserved != NULL;
	p.reserve_all = damaged;
	if (st)
		st->passes = 1;
	r = run_pass(&p, err, errlen);
	if (!p.overflowed || (r < 0 && r != -ENOSPC))
		return r;
	/*
	 * Does not fit next to the old metadata.  The old superblock is
	 * invalidated only when the new metadata surely fits on its own: the
	 * dry run's count plus its possible shortfall (p.slack, for <def>).
	 */
	if (!had_old || p.needed + p.slack > p.md_blocks)
		return too_small(err, errlen, p.needed + p.slack, p.md_blocks);
	zero = ioe_alloc_blocks(1);
	if (!zero)
		return -ENOMEM;
	memset(zero, 0, MD_BLOCK_SIZE);
	r = ioe_write(out, THIN_SB_LOCATION, 1, zero);
	free(zero);
	if (r >= 0)
		r = ioe_flush(out);
	if (r < 0) {
		snprintf(err, errlen, "invalidating the old superblock: %s", strerror(-r));
		return r;
	}
	if (st) {
		st->invalidated = 1;
		st->passes = 2;
	}
	err[0] = '\0';
	p.reserved = NULL;
	p.reserve_all = 0;
	r = run_pass(&p, err, errlen);
	if (p.overflowed)
		return too_small(err, errlen, p.needed, p.md_blocks);
	return r;
}

int thin_open_output(const char *path, struct ioe **out, char *err, size_t errlen)
{
	struct stat sb;
	int r;

	if (stat(path, &sb) < 0) {
		snprintf(err, errlen, "Output file does not exist.");
		return -ENOENT;
	}
	if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode)) {
		snprintf(err, errlen, "Not a block device or regular file '%s'.", path);
		return -EINVAL;
	}
	r = ioe_open(path, IOE_WRITE | IOE_DIRECT, out);
	if (r == -EBUSY)
		snprintf(err, errlen, "%s: device is busy (in use by a live pool?)", path);
	else if (r < 0)
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
	return r;
}

int thin_restore_path(const char *path, const struct thin_restore_opts *o, thin_ir_producer prod,
		      void *prod_ctx, struct thin_restore_stats *st, char *err, size_t errlen)
{
	struct ioe *out;
	int r = thin_open_output(path, &out, err, errlen);

	if (r < 0)
		return r;
	if (out->nr_blocks < 8) {
		ioe_destroy(out);
		snprintf(err, errlen, "Output file too small.");
		return -ENOSPC;
	}
	r = thin_restore_ioe(out, o, prod, prod_ctx, st, err, errlen);
	ioe_destroy(out);
	return r;
}
