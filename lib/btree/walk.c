#include "btree/walk.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/*----------------------------------------------------------------*/
/* The path walker */

static int bc_src_get(void *ctx, uint64_t b, const void **data, void **hold)
{
	struct bc_block *blk;
	int r = bc_get(ctx, b, &bt_node_validator, &blk);

	if (r < 0)
		return r;
	*data = bc_data(blk);
	*hold = blk;
	return 0;
}

static void bc_src_put(void *ctx, void *hold)
{
	bc_put(ctx, hold);
}

static void bc_src_prefetch(void *ctx, const uint64_t *blocks, size_t nr)
{
	bc_prefetch(ctx, blocks, nr);
}

struct bt_source bt_source_bc(struct bc *bc)
{
	return (struct bt_source){ bc_src_get, bc_src_put, bc_src_prefetch, bc };
}

struct walk {
	const struct bt_source *src;
	uint32_t leaf_vsize;
	const struct bt_walk_ops *ops;
	void *ctx;
	uint64_t want_lo, want_hi;  /* keys asked for */
	int leaf_depth;             /* -1 until the first leaf */
	uint64_t path[BT_MAX_DEPTH + 1];
};

/*
 * A fault at a node: reported, then 0 when the walk may use the node
 * anyway (a non-fatal fault), 1 when it is dropped, a negative errno
 * (err) when the walk ends here (BT_WALK_STOP).
 */
static int fault(struct walk *w, enum dmg_level level, enum rep_code code, int err,
		 uint64_t block, uint64_t lo, uint64_t hi, const char *msg)
{
	if (w->ops->damage)
		w->ops->damage(w->ctx, level, code, block, lo, hi, msg);
	if (level < DMG_FATAL && !(w->ops->flags & BT_WALK_STRICT))
		return 0;
	return w->ops->flags & BT_WALK_STOP ? err : 1;
}

static int walk_node(struct walk *w, uint64_t block, uint64_t lo, uint64_t hi, int depth,
		     int again);

/* Children of an internal node at depth; returns < 0, or 1 if damage was found. */
static int walk_children(struct walk *w, const uint64_t *keys, const uint64_t *kids,
			 uint32_t nr, uint64_t hi, int depth, int again)
{
	int defer = w->ops->defer_leaf != NULL;
	int prefetched = 0, dmg = 0;

	for (uint32_t i = 0; i < nr; i++) {
		uint64_t chi = i + 1 < nr ? keys[i + 1] : hi;
		int c = BT_CHILD_ENTER, r;

		if (keys[i] >= w->want_hi)
			break;
		if (chi <= w->want_lo)
			continue;
		/* read ahead unless the children are leaves to defer (or may be: the first tells) */
		if (!prefetched && w->src->prefetch &&
		    (!defer || (w->leaf_depth >= 0 && w->leaf_depth != depth + 1))) {
			w->src->prefetch(w->src->ctx, kids + i, nr - i);
			prefetched = 1;
		}
		if (w->ops->child)
			c = w->ops->child(w->ctx, kids[i], again);
		if (c == BT_CHILD_SKIP)
			continue;
		if (defer && w->leaf_depth == depth + 1)
			r = w->ops->defer_leaf(w->ctx, kids[i], keys[i], chi);
		else
			r = walk_node(w, kids[i], keys[i], chi, depth + 1,
				      again || c == BT_CHILD_AGAIN);
		if (r < 0)
			return r;
		dmg |= r;
	}
	return dmg;
}

static int walk_node(struct walk *w, uint64_t block, uint64_t lo, uint64_t hi, int depth,
		     int again)
{
	const void *data;
	void *hold;
	struct bt_node n;
	enum bt_node_err e;
	uint64_t *keys, *kids;
	int r;

	if (depth > BT_MAX_DEPTH)
		return fault(w, DMG_FATAL, RC_NODE_DEPTH, -ELOOP, block, lo, hi, "tree too deep");
	for (int i = 0; i < depth; i++)
		if (w->path[i] == block)
			return fault(w, DMG_FATAL, RC_NODE_CYCLE, -ELOOP, block, lo, hi,
				     "cycle in tree");
	w->path[depth] = block;
	r = w->src->get(w->src->ctx, block, &data, &hold);
	if (r < 0)
		return fault(w, DMG_FATAL, bt_read_err_code(r), r, block, lo, hi, bc_strerror(r));
	bt_node_view(data, &n);
	e = bt_node_check(&n, w->leaf_vsize);
	if (e != BT_NODE_OK) {
		r = fault(w, bt_node_err_level(e), bt_node_err_code(e), -EILSEQ, block, lo, hi,
			  bt_node_err_str(e));
		if (r)
			goto put;
	}
	if (n.nr_entries &&
	    (bt_key(&n, 0) < lo || (hi != UINT64_MAX && bt_key(&n, n.nr_entries - 1) >= hi))) {
		r = fault(w, DMG_FATAL, RC_NODE_KEY_RANGE, -EILSEQ, block, lo, hi,
			  "keys outside the range given by the parent");
		goto put;
	}
	if (bt_is_leaf(&n)) {
		if (w->leaf_depth < 0)
			w->leaf_depth = depth;
		if (w->leaf_depth != depth)
			r = fault(w, DMG_FATAL, RC_NODE_DEPTH, -EILSEQ, block, lo, hi,
				  "leaves at different depths");
		else if (w->ops->defer_leaf)
			r = w->ops->defer_leaf(w->ctx, block, lo, hi);
		else
			r = w->ops->leaf ? w->ops->leaf(w->ctx, &n) : 0;
		goto put;
	}
	/* copy the children out so that at most one block is held */
	keys = malloc(sizeof(uint64_t) * 2 * (n.nr_entries + 1));
	if (!keys) {
		r = -ENOMEM;
		goto put;
	}
	kids = keys + n.nr_entries + 1;
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		keys[i] = bt_key(&n, i);
		kids[i] = get_le64(bt_value(&n, i));
	}
	w->src->put(w->src->ctx, hold);
	r = walk_children(w, keys, kids, n.nr_entries, hi, depth, again);
	free(keys);
	if (r >= 0 && w->ops->leave)
		w->ops->leave(w->ctx, block, r);
	return r;
put:
	w->src->put(w->src->ctx, hold);
	return r;
}

int bt_walk_keys(const struct bt_source *src, uint64_t root, uint64_t lo, uint64_t hi,
		 int again, uint32_t leaf_vsize, const struct bt_walk_ops *ops, void *ctx)
{
	struct walk w = {
		.src = src,
		.leaf_vsize = leaf_vsize,
		.ops = ops,
		.ctx = ctx,
		.want_lo = lo,
		.want_hi = hi,
		.leaf_depth = -1,
	};
	int r = lo < hi ? walk_node(&w, root, 0, UINT64_MAX, 0, again) : 0;

	return r < 0 ? r : 0;
}

int bt_walk(struct bc *bc, uint64_t root, uint32_t leaf_vsize, const struct bt_walk_ops *ops,
	    void *ctx)
{
	struct bt_source src = bt_source_bc(bc);

	return bt_walk_keys(&src, root, 0, UINT64_MAX, 0, leaf_vsize, ops, ctx);
}

/*----------------------------------------------------------------*/
/*
 * memo: the summaries indexed by block, in regions of 2^MEMO_SHIFT blocks
 * allocated on first use.  Metadata is allocated in clusters, so memory
 * follows the blocks in use (48 bytes each) and a lookup is one index, no
 * probing: at the format's limit this is less than a hash table's slack.
 */

#define MEMO_EMPTY UINT64_MAX
#define MEMO_SHIFT 12u

struct bt_memo {
	struct bt_summary **regions;   /* entry block == MEMO_EMPTY: none */
	uint64_t nr_regions;
};

static int memo_init(struct bt_memo *m, uint64_t nr_blocks)
{
	m->nr_regions = (nr_blocks >> MEMO_SHIFT) + 1;
	m->regions = calloc(m->nr_regions, sizeof(*m->regions));
	return m->regions ? 0 : -ENOMEM;
}

static void memo_release(struct bt_memo *m)
{
	for (uint64_t i = 0; m->regions && i < m->nr_regions; i++)
		free(m->regions[i]);
	free(m->regions);
	m->regions = NULL;
	m->nr_regions = 0;
}

/* Blocks are below the walker's bound, which is below nr_blocks. */
static const struct bt_summary *memo_find(const struct bt_memo *m, uint64_t block)
{
	const struct bt_summary *r = m->regions[block >> MEMO_SHIFT];
	const struct bt_summary *s;

	if (!r)
		return NULL;
	s = &r[block & ((1u << MEMO_SHIFT) - 1)];
	return s->block == block ? s : NULL;
}

static int memo_put(struct bt_memo *m, const struct bt_summary *s)
{
	struct bt_summary **r = &m->regions[s->block >> MEMO_SHIFT];

	if (!*r) {
		*r = malloc(sizeof(**r) << MEMO_SHIFT);
		if (!*r)
			return -ENOMEM;
		for (size_t i = 0; i < (1u << MEMO_SHIFT); i++)
			(*r)[i].block = MEMO_EMPTY;
	}
	(*r)[s->block & ((1u << MEMO_SHIFT) - 1)] = *s;
	return 0;
}

/*----------------------------------------------------------------*/
/* The walk */

/*
 * Batch buffers come from a pool: a batch of leaves handed to the leaf
 * thread keeps its buffer until the thread is done with it.  The walk holds
 * one per level it is in (at most BT_MAX_DEPTH + 2), the queued jobs one
 * each: with the pool that large the walk never waits on a buffer that no
 * job will give back.
 */
#define LEAF_JOBS 4u
#define RA_SLOTS 8u       /* a hint and its follow-up hold two through a walk; RA_AHEAD siblings and theirs */
#define RA_READERS 2u   /* reads in flight at once */
#define RA_AHEAD 3u     /* siblings asked for ahead of the one entered */
#define MAX_BUFS (BT_MAX_DEPTH + 2 + LEAF_JOBS + RA_SLOTS)
_Static_assert(2 * BT_WALK_BATCH == IOE_HUGE_BLOCKS, "two batch buffers fill a huge page");

struct wbuf {
	uint8_t *data;          /* BT_WALK_BATCH blocks */
	unsigned refs;          /* the batch being walked, and queued jobs */
	struct wbuf *next;      /* free list */
};

/* Leaves of one buffer for the leaf thread, in walk order. */
struct leaf_job {
	const struct bt_walk_tree *t;
	struct wbuf *buf;
	unsigned nr;
	uint16_t idx[BT_WALK_BATCH];
	/* leaf_prep() outputs, one a leaf, or NULL; each job keeps its own (swapped on queueing) */
	uint8_t (*prep)[BT_LEAF_PREP_SIZE];
};

/*
 * Read-ahead (bt_walker_set_readahead): before the walk enters an internal
 * node's child, the children of the next RA_AHEAD siblings, each that is a
 * sound internal node, are read on RA_READERS reader threads (two reads in
 * flight: on a loop device one 1 MiB read at a time waits on the device
 * more than the walk does) into batch buffers, oldest request first; the
 * sibling's batch then takes them from there instead of reading.  Reads
 * are the same runs, retried block by block the same way, so data and
 * errors are what the walk would read itself; a slot whose node the walk
 * never batches (it was damaged, or seen) is dropped at the walk's end.
 * A reader that has read a slot reads the children of its first child
 * next (ra_follow), when that is a sound internal node: the walk enters
 * that child at once, too soon for a read-ahead asked from inside it, and
 * would read its children itself (a hinted tree's first leaves: on
 * thin_check's 20 M pool a fifth of all it read, before ra_follow).
 */
enum { RA_FREE, RA_FILLING, RA_QUEUED, RA_READING, RA_DONE };

struct ra_slot {
	int state;
	uint64_t parent;                 /* the node whose children these are (hint: none) */
	/*
	 * bt_walker_hint(): the root of a tree walked next, read into the
	 * buffer's last block, then its children (when it is a sound internal
	 * node) as any slot's; the walk of that tree takes the root and turns
	 * the slot into the root's read-ahead.
	 */
	int hint;
	uint64_t root, walk;             /* walk: walk_no when asked */
	uint64_t bound;                  /* the walker's, when asked (the reader's copy) */
	uint32_t leaf_vsize;
	/*
	 * The child the walk enters first (parent's, or root's, first), when
	 * known: its children are read next by the reader that read it (see
	 * ra_follow), for the walk reaches them before any read-ahead asked
	 * from inside it could be done.  pre: such a read for a hint's tree,
	 * kept for the walk after the one it was asked in, as the hint is.
	 */
	uint64_t first;
	int pre;
	int root_err, root_check;
	uint64_t seq;                    /* reads in the order asked */
	unsigned n;
	uint64_t blocks[BT_WALK_BATCH];  /* sorted, unique */
	int errs[BT_WALK_BATCH];
	int checks[BT_WALK_BATCH];       /* the node validator's answer for each block read, or CHECK_KEYS_RISE */
	struct wbuf *buf;
};

/* No answer from the validator yet: visit() asks it. */
#define CHECK_NONE INT32_MIN
/* With a validator's answer of 0: bt_node_keys_rise() said 1 (a reader's, while the block was warm). */
#define CHECK_KEYS_RISE (1 << 29)

struct bt_walker {
	struct ioe *ioe;
	uint64_t bound;                         /* pointers at or beyond: out of bounds */
	struct bt_memo memo;
	uint8_t *one;                           /* single-block buffer */
	const uint32_t *type_salts;             /* bt_walker_set_type_salts() */
	size_t nr_type_salts;

	/* batch buffers and the leaf thread (BT_TREE_LEAF_THREAD); lock guards all but pending */
	pthread_mutex_t lock;
	pthread_cond_t work, room;
	struct wbuf bufs[MAX_BUFS];
	unsigned nr_bufs;
	struct wbuf *free_bufs;
	struct leaf_job pending;                /* being gathered by the walk */
	struct leaf_job jobs[LEAF_JOBS];        /* ring: queued, the first one running */
	unsigned head, nr_jobs;
	pthread_t thread;
	int started, quit;
	int queued;                             /* jobs queued since the last drain (walk's own) */
	int leaf_err;                           /* the first leaf() error on the thread */

	/* read-ahead; ra_lock guards the slots' states and ra_quit */
	int ra_on, ra_tried, ra_quit;
	unsigned ra_started;                    /* reader threads running */
	pthread_t ra_thread[RA_READERS];
	pthread_mutex_t ra_lock;
	pthread_cond_t ra_work, ra_done;
	struct ra_slot ra[RA_SLOTS];
	uint64_t ra_seq;
	uint64_t walk_no;                       /* bt_walker_walk() calls so far */
	uint64_t hints_used;                    /* roots served by bt_walker_hint() (tests) */
	uint64_t ra_used;                       /* batches served from read-ahead (tests) */
};

/*----------------------------------------------------------------*/
/* Batch buffers and the leaf thread */

/*
 * A batch buffer: a free one, or a new one while the pool has room; wait:
 * else wait for one to come back (NULL only when memory runs out), or
 * return NULL at once.
 */
static struct wbuf *buf_take(struct bt_walker *w, int wait)
{
	struct wbuf *b = NULL;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		if (w->free_bufs) {
			b = w->free_bufs;
			w->free_bufs = b->next;
			break;
		}
		if (w->nr_bufs < MAX_BUFS) {
			/* two batch buffers to a huge page: the even one owns it */
			uint8_t *d = w->nr_bufs % 2
					     ? w->bufs[w->nr_bufs - 1].data + BT_WALK_BATCH * MD_BLOCK_SIZE
					     : ioe_alloc_huge(2 * BT_WALK_BATCH);

			if (d) {
				b = &w->bufs[w->nr_bufs++];
				b->data = d;
			}
			break;
		}
		if (!wait)
			break;
		pthread_cond_wait(&w->room, &w->lock);
	}
	if (b)
		b->refs = 1;
	pthread_mutex_unlock(&w->lock);
	return b;
}

static struct wbuf *buf_get(struct bt_walker *w)
{
	return buf_take(w, 1);
}

/* A free batch buffer, or NULL rather than wait for one (read-ahead). */
static struct wbuf *buf_try_get(struct bt_walker *w)
{
	return buf_take(w, 0);
}

/* Under the lock. */
static void buf_unref_locked(struct bt_walker *w, struct wbuf *b)
{
	if (!--b->refs) {
		b->next = w->free_bufs;
		w->free_bufs = b;
		pthread_cond_broadcast(&w->room);
	}
}

static void buf_put(struct bt_walker *w, struct wbuf *b)
{
	pthread_mutex_lock(&w->lock);
	buf_unref_locked(w, b);
	pthread_mutex_unlock(&w->lock);
}

/* Leaf i of job j, in its batch buffer. */
static const uint8_t *job_leaf(const struct leaf_job *j, unsigned i)
{
	return j->buf->data + ((size_t)j->idx[i] << MD_BLOCK_SHIFT);
}

/* Asks for the first 128 bytes of leaf i's prep (leaf_ahead()'s part), if there is a leaf i. */
static void prefetch_prep(const struct leaf_job *j, unsigned i)
{
	if (i < j->nr) {
		__builtin_prefetch(j->prep[i]);
		__builtin_prefetch(j->prep[i] + 64);
	}
}

static int run_job(const struct leaf_job *j)
{
	if (j->t->leaf_prep) {
		prefetch_prep(j, 0);
		prefetch_prep(j, 1);
	}
	for (unsigned i = 0; i < j->nr; i++) {
		struct bt_node n;
		int r;

		/*
		 * Asked for ahead, as it was written on other threads: the next
		 * leaf's header, and all of it when leaf() reads it all (no prep);
		 * with a prep, the prep after the next one, and leaf_ahead() with
		 * the next one's.
		 */
		if (i + 1 < j->nr) {
			const uint8_t *next = job_leaf(j, i + 1);
			unsigned len = j->t->leaf_prep ? 64 : MD_BLOCK_SIZE;

			for (unsigned o = 0; o < len; o += 64)
				__builtin_prefetch(next + o);
		}
		if (j->t->leaf_prep) {
			prefetch_prep(j, i + 2);
			if (i + 1 < j->nr && j->t->leaf_ahead)
				j->t->leaf_ahead(j->t->ctx, j->prep[i + 1]);
		}
		bt_node_view(job_leaf(j, i), &n);
		if (j->t->leaf_prep)
			n.prep = j->prep[i];
		r = j->t->leaf(j->t->ctx, &n);
		if (r < 0)
			return r;
	}
	return 0;
}

static void *leaf_thread(void *arg)
{
	struct bt_walker *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct leaf_job *j;
		int r = 0;

		while (!w->nr_jobs && !w->quit)
			pthread_cond_wait(&w->work, &w->lock);
		if (!w->nr_jobs)
			break;
		j = &w->jobs[w->head];
		if (!w->leaf_err) {
			pthread_mutex_unlock(&w->lock);
			r = run_job(j);
			pthread_mutex_lock(&w->lock);
		}
		if (r < 0 && !w->leaf_err)
			w->leaf_err = r;
		buf_unref_locked(w, j->buf);
		w->head = (w->head + 1) % LEAF_JOBS;
		w->nr_jobs--;
		pthread_cond_broadcast(&w->room);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Queues the pending leaves (runs them here if no thread can start). */
static int flush_leaves(struct bt_walker *w)
{
	struct leaf_job *p = &w->pending;
	int r;

	if (!p->nr)
		return 0;
	pthread_mutex_lock(&w->lock);
	if (!w->started && pthread_create(&w->thread, NULL, leaf_thread, w) == 0)
		w->started = 1;
	if (!w->started) {
		pthread_mutex_unlock(&w->lock);
		r = run_job(p);
		p->nr = 0;
		return r;
	}
	while (w->nr_jobs == LEAF_JOBS)
		pthread_cond_wait(&w->room, &w->lock);
	{
		/* the ring slot takes the outputs; the walk gathers into the slot's old room */
		struct leaf_job *q = &w->jobs[(w->head + w->nr_jobs) % LEAF_JOBS];
		uint8_t (*room)[BT_LEAF_PREP_SIZE] = q->prep;

		*q = *p;
		p->prep = room;
	}
	w->nr_jobs++;
	w->queued = 1;
	p->buf->refs++;
	r = w->leaf_err;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	p->nr = 0;
	return r;
}

/* Every leaf handed out so far is done; the first leaf() error, or 0. */
static int drain_leaves(struct bt_walker *w)
{
	int r = flush_leaves(w);

	if (!w->queued)
		return r;   /* nothing handed out since the last drain: no lock to take */
	w->queued = 0;
	pthread_mutex_lock(&w->lock);
	while (w->nr_jobs)
		pthread_cond_wait(&w->room, &w->lock);
	if (!r)
		r = w->leaf_err;
	w->leaf_err = 0;
	pthread_mutex_unlock(&w->lock);
	return r;
}

/*
 * leaf() for n, whose block is data: now, or on the leaf thread when the
 * tree allows it and data lies in batch buffer in.  Either way leaf() sees
 * the tree's leaves in walk order.
 */
static int leaf_call(struct bt_walker *w, const struct bt_walk_tree *t, const struct bt_node *n,
		     const uint8_t *data, struct wbuf *in)
{
	struct leaf_job *p = &w->pending;
	int r;

	if (!(t->flags & BT_TREE_LEAF_THREAD) || !in) {
		r = drain_leaves(w);
		return r < 0 ? r : t->leaf(t->ctx, n);
	}
	if (p->nr && (p->buf != in || p->t != t)) {
		r = flush_leaves(w);
		if (r < 0)
			return r;
	}
	if (t->leaf_prep) {
		if (!p->prep && !(p->prep = malloc(sizeof(*p->prep) * BT_WALK_BATCH)))
			return -ENOMEM;
		t->leaf_prep(t->ctx, n, p->prep[p->nr]);
	}
	p->t = t;
	p->buf = in;
	p->idx[p->nr++] = (uint16_t)((size_t)(data - in->data) >> MD_BLOCK_SHIFT);
	return 0;
}

/* Sorts want[0, n) (insertion: at most BT_WALK_BATCH) and drops repeats; the new n. */
static unsigned sort_unique(uint64_t *want, unsigned n)
{
	unsigned u = 0;

	for (unsigned i = 1; i < n; i++) {
		uint64_t x = want[i];
		unsigned j = i;
		while (j && want[j - 1] > x) {
			want[j] = want[j - 1];
			j--;
		}
		want[j] = x;
	}
	for (unsigned i = 0; i < n; i++)
		if (!u || want[u - 1] != want[i])
			want[u++] = want[i];
	return u;
}

/* Blocks want[0, n) (sorted) into buf: contiguous runs in one read each, a failed run block by block. */
static void read_runs(struct ioe *ioe, const uint64_t *want, unsigned n, uint8_t *buf, int *errs)
{
	for (unsigned i = 0; i < n;) {
		unsigned j = i + 1;
		while (j < n && want[j] == want[j - 1] + 1)
			j++;
		if (ioe_read(ioe, want[i], j - i, buf + (size_t)i * MD_BLOCK_SIZE) < 0) {
			for (unsigned k = i; k < j; k++)
				errs[k] = ioe_read(ioe, want[k], 1, buf + (size_t)k * MD_BLOCK_SIZE);
		} else {
			for (unsigned k = i; k < j; k++)
				errs[k] = 0;
		}
		i = j;
	}
}

/* Index of block b in sorted have[0, n), or n. */
static unsigned find_block(const uint64_t *have, unsigned n, uint64_t b)
{
	unsigned lo = 0, h = n;

	while (lo < h) {
		unsigned mid = (lo + h) / 2;
		if (have[mid] < b)
			lo = mid + 1;
		else
			h = mid;
	}
	return lo < n && have[lo] == b ? lo : n;
}

/* Hint slot sl: its root, and the children to read (none unless it is a sound internal node). */
static void hint_root(struct bt_walker *w, struct ra_slot *sl)
{
	uint8_t *data = sl->buf->data + (size_t)(BT_WALK_BATCH - 1) * MD_BLOCK_SIZE;
	struct bt_node n;
	unsigned k = 0;

	sl->n = 0;
	sl->root_err = ioe_read(w->ioe, sl->root, 1, data);
	sl->root_check = sl->root_err ? CHECK_NONE
				      : bt_node_validator.check(data, sl->root, MD_BLOCK_SIZE);
	if (sl->root_err || sl->root_check)
		return;
	bt_node_view(data, &n);
	if (n.flags != BT_INTERNAL_NODE || bt_node_check(&n, sl->leaf_vsize) != BT_NODE_OK ||
	    n.nr_entries >= BT_WALK_BATCH)
		return;
	/* seen or not (the memo is the walk's): the walk takes a slot holding more than it wants */
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t b = get_le64(bt_value(&n, i));

		if (b < sl->bound)
			sl->blocks[k++] = b;
	}
	sl->first = get_le64(bt_value(&n, 0));
	sl->n = sort_unique(sl->blocks, k);
}

/* Slot sl's blocks read, and checked while the data is warm. */
static void ra_read(struct bt_walker *w, struct ra_slot *sl)
{
	read_runs(w->ioe, sl->blocks, sl->n, sl->buf->data, sl->errs);
	for (unsigned k = 0; k < sl->n; k++) {
		const uint8_t *d = sl->buf->data + (size_t)k * MD_BLOCK_SIZE;
		struct bt_node n;

		sl->checks[k] = sl->errs[k] ? CHECK_NONE
				: bt_node_validator.check(d, sl->blocks[k], MD_BLOCK_SIZE);
		if (!sl->checks[k]) {
			bt_node_view(d, &n);
			if (bt_node_keys_rise(&n))
				sl->checks[k] = CHECK_KEYS_RISE;
		}
	}
}

static unsigned find_block(const uint64_t *have, unsigned n, uint64_t b);

/*
 * Under ra_lock: a free slot for a request, a hint for root key or the
 * children of parent key; NULL when none is free or it was asked already
 * (a hint asked again is then kept for the walk after this one).  A slot
 * being filled is nobody's request yet.
 */
static struct ra_slot *ra_free_slot_locked(struct bt_walker *w, int hint, uint64_t key)
{
	struct ra_slot *sl = NULL;

	for (unsigned i = 0; i < RA_SLOTS; i++) {
		struct ra_slot *s = &w->ra[i];

		if (s->state == RA_FREE) {
			if (!sl)
				sl = s;
		} else if (s->state != RA_FILLING && s->hint == hint &&
			   (hint ? s->root : s->parent) == key) {
			if (hint)
				s->walk = w->walk_no;
			return NULL;
		}
	}
	return sl;
}

/*
 * Under ra_lock, on a reader, slot sl just read: a slot for the children of
 * sl's first child, in state RA_READING, when that child is a sound
 * internal node among sl's blocks and a slot and a buffer are free; else
 * NULL.  Its blocks are then read as any slot's; the walk finds it as the
 * read-ahead of that child (ra_take).  Seen or not (the memo is the walk's):
 * the walk takes a slot holding more than it wants.
 */
static struct ra_slot *ra_follow(struct bt_walker *w, const struct ra_slot *sl)
{
	unsigned x = sl->first == UINT64_MAX ? sl->n : find_block(sl->blocks, sl->n, sl->first);
	struct ra_slot *f;
	struct bt_node n;
	unsigned k = 0;

	if (x >= sl->n || (sl->checks[x] != 0 && sl->checks[x] != CHECK_KEYS_RISE))
		return NULL;
	bt_node_view(sl->buf->data + (size_t)x * MD_BLOCK_SIZE, &n);
	if (n.flags != BT_INTERNAL_NODE || !n.nr_entries || n.nr_entries > BT_WALK_BATCH ||
	    bt_node_check_known(&n, sl->leaf_vsize, sl->checks[x] == CHECK_KEYS_RISE) != BT_NODE_OK)
		return NULL;
	if (!(f = ra_free_slot_locked(w, 0, sl->first)))
		return NULL;
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t b = get_le64(bt_value(&n, i));

		if (b < sl->bound)
			f->blocks[k++] = b;
	}
	if (!k || !(f->buf = buf_try_get(w)))   /* w->lock inside ra_lock: the order ra_drop_all takes */
		return NULL;
	f->n = sort_unique(f->blocks, k);
	f->hint = 0;
	f->pre = sl->hint || sl->pre;
	f->walk = sl->walk;
	f->parent = sl->first;
	f->first = get_le64(bt_value(&n, 0));
	f->leaf_vsize = sl->leaf_vsize;
	f->bound = sl->bound;
	f->state = RA_READING;
	return f;
}

static void *ra_thread(void *arg)
{
	struct bt_walker *w = arg;

	pthread_mutex_lock(&w->ra_lock);
	for (;;) {
		struct ra_slot *sl = NULL;

		/* oldest first, a hint (for the next tree) after what this walk asked for */
		for (unsigned i = 0; i < RA_SLOTS; i++)
			if (w->ra[i].state == RA_QUEUED &&
			    (!sl || w->ra[i].hint < sl->hint ||
			     (w->ra[i].hint == sl->hint && w->ra[i].seq < sl->seq)))
				sl = &w->ra[i];
		if (!sl) {
			if (w->ra_quit)
				break;
			pthread_cond_wait(&w->ra_work, &w->ra_lock);
			continue;
		}
		sl->state = RA_READING;
		pthread_mutex_unlock(&w->ra_lock);
		if (sl->hint)
			hint_root(w, sl);
		ra_read(w, sl);
		pthread_mutex_lock(&w->ra_lock);
		/* then, down the first children, what the walk enters next */
		for (;;) {
			struct ra_slot *f = ra_follow(w, sl);

			sl->state = RA_DONE;
			pthread_cond_broadcast(&w->ra_done);
			if (!f)
				break;
			pthread_mutex_unlock(&w->ra_lock);
			ra_read(w, f);
			pthread_mutex_lock(&w->ra_lock);
			sl = f;
		}
	}
	pthread_mutex_unlock(&w->ra_lock);
	return NULL;
}

/* Under ra_lock: waits until slot sl's read is done. */
static void ra_wait_locked(struct bt_walker *w, struct ra_slot *sl)
{
	while (sl->state != RA_DONE)
		pthread_cond_wait(&w->ra_done, &w->ra_lock);
}

/* The read-ahead of parent's children, read, or NULL; the caller frees the slot. */
static struct ra_slot *ra_take(struct bt_walker *w, uint64_t parent)
{
	struct ra_slot *sl = NULL;

	if (!w->ra_started)
		return NULL;
	pthread_mutex_lock(&w->ra_lock);
	for (unsigned i = 0; i < RA_SLOTS; i++)
		if (w->ra[i].state > RA_FILLING && !w->ra[i].hint && w->ra[i].parent == parent)
			sl = &w->ra[i];
	if (sl)
		ra_wait_locked(w, sl);
	pthread_mutex_unlock(&w->ra_lock);
	return sl;
}

/*
 * Every slot back to free (a walk's end), unless all but for hints asked
 * during this walk or just before it (for the next one).
 */
static void ra_drop_all(struct bt_walker *w, int all)
{
	if (!w->ra_started)
		return;
	pthread_mutex_lock(&w->ra_lock);
	for (unsigned i = 0; i < RA_SLOTS; i++) {
		struct ra_slot *sl = &w->ra[i];

		if (sl->state == RA_FREE ||
		    (!all && (sl->hint || sl->pre) && sl->walk + 1 >= w->walk_no))
			continue;
		ra_wait_locked(w, sl);
		sl->state = RA_FREE;
		buf_put(w, sl->buf);   /* w->lock, never taken with ra_lock the other way round */
	}
	pthread_mutex_unlock(&w->ra_lock);
}

/* The readers, started once (as many as start); 0 when none runs. */
static int ra_start(struct bt_walker *w)
{
	if (!w->ra_tried) {
		w->ra_tried = 1;
		while (w->ra_started < RA_READERS &&
		       pthread_create(&w->ra_thread[w->ra_started], NULL, ra_thread, w) == 0)
			w->ra_started++;
	}
	if (!w->ra_started)
		w->ra_on = 0;   /* no thread: the walk reads for itself */
	return w->ra_started != 0;
}

/*
 * ra_free_slot_locked() for the walk: the slot is the caller's
 * (RA_FILLING) until ra_queue() or ra_unfill().
 */
static struct ra_slot *ra_slot_for(struct bt_walker *w, int hint, uint64_t key)
{
	struct ra_slot *sl;

	pthread_mutex_lock(&w->ra_lock);
	sl = ra_free_slot_locked(w, hint, key);
	if (sl) {
		sl->state = RA_FILLING;
		sl->first = UINT64_MAX;
		sl->pre = 0;
	}
	pthread_mutex_unlock(&w->ra_lock);
	return sl;
}

/* A slot from ra_slot_for() given back unqueued. */
static void ra_unfill(struct bt_walker *w, struct ra_slot *sl)
{
	pthread_mutex_lock(&w->ra_lock);
	sl->state = RA_FREE;
	pthread_mutex_unlock(&w->ra_lock);
}

/* Slot sl, filled, to the readers. */
static void ra_queue(struct bt_walker *w, struct ra_slot *sl)
{
	pthread_mutex_lock(&w->ra_lock);
	sl->seq = w->ra_seq++;
	sl->state = RA_QUEUED;
	pthread_cond_signal(&w->ra_work);
	pthread_mutex_unlock(&w->ra_lock);
}

/*
 * Asks for the children of block (whose data, read without error, is at
 * data) to be read ahead, when it is a sound internal node of the tree and
 * a slot and a buffer are free.
 */
static void ra_ask(struct bt_walker *w, const struct bt_walk_tree *t, uint64_t block,
		   const uint8_t *data)
{
	struct ra_slot *sl = NULL;
	struct bt_node n;
	unsigned k = 0;

	bt_node_view(data, &n);   /* the header only, before the checksum: leaves cost nothing */
	if (n.flags != BT_INTERNAL_NODE || !n.nr_entries || memo_find(&w->memo, block) ||
	    bt_node_validator.check(data, block, MD_BLOCK_SIZE) != 0 ||
	    bt_node_check(&n, t->leaf_vsize) != BT_NODE_OK)
		return;
	if (!ra_start(w) || !(sl = ra_slot_for(w, 0, block)))
		return;
	for (uint32_t i = 0; i < n.nr_entries && k < BT_WALK_BATCH; i++) {
		uint64_t b = get_le64(bt_value(&n, i));

		if (b < w->bound && !memo_find(&w->memo, b))
			sl->blocks[k++] = b;
	}
	if (!k || !(sl->buf = buf_try_get(w))) {
		ra_unfill(w, sl);
		return;
	}
	sl->n = sort_unique(sl->blocks, k);
	sl->hint = 0;   /* the slot may have held a hint no walk took */
	sl->parent = block;
	sl->first = get_le64(bt_value(&n, 0));
	sl->leaf_vsize = t->leaf_vsize;
	sl->bound = w->bound;
	sl->walk = w->walk_no;
	ra_queue(w, sl);
}

/*
 * The hinted read of root, into data (one block) with its read error and
 * the validator's answer: 1, or 0 when there is none.  The slot then holds
 * the root's children for its first batch, or is freed.
 */
static int hint_take(struct bt_walker *w, uint64_t root, uint8_t *data, int *err, int *checked)
{
	struct ra_slot *sl = NULL;

	if (!w->ra_started)
		return 0;
	pthread_mutex_lock(&w->ra_lock);
	for (unsigned i = 0; i < RA_SLOTS; i++)
		if (w->ra[i].state > RA_FILLING && w->ra[i].hint && w->ra[i].root == root)
			sl = &w->ra[i];
	if (!sl) {
		pthread_mutex_unlock(&w->ra_lock);
		return 0;
	}
	ra_wait_locked(w, sl);
	memcpy(data, sl->buf->data + (size_t)(BT_WALK_BATCH - 1) * MD_BLOCK_SIZE, MD_BLOCK_SIZE);
	*err = sl->root_err;
	*checked = sl->root_check;
	sl->hint = 0;
	if (sl->n) {
		sl->parent = root;   /* now the read-ahead of the root's children */
		sl = NULL;
	} else {
		sl->state = RA_FREE;
	}
	pthread_mutex_unlock(&w->ra_lock);
	if (sl)
		buf_put(w, sl->buf);
	return 1;
}

struct visit {
	struct bt_walker *w;
	const struct bt_walk_tree *t;
};

static void node_damage(struct visit *v, enum dmg_level level, enum rep_code code,
			uint64_t block, uint64_t lo, uint64_t hi, const char *what)
{
	if (v->t->damage)
		v->t->damage(v->t->ctx, level, code, block, lo, hi, what);
}

static int visit(struct visit *v, uint64_t block, uint64_t lo, uint64_t hi, int depth,
		 const uint8_t *data, struct wbuf *in, int read_err, int checked,
		 struct bt_summary *out);

/* One batch of children [from, to) of internal node parent. */
static int visit_batch(struct visit *v, uint64_t parent, const uint64_t *keys, const uint64_t *kids,
		       uint32_t from, uint32_t to, uint32_t nr, uint64_t hi, int depth,
		       struct bt_summary *sums)
{
	struct bt_walker *w = v->w;
	uint64_t want[BT_WALK_BATCH];
	int errs[BT_WALK_BATCH], checks[BT_WALK_BATCH];
	int have_checks = 0;
	unsigned n = 0;
	struct wbuf *wb = NULL;
	struct ra_slot *sl;
	uint8_t *buf;
	int r = 0;

	/* blocks to read: not yet seen, inside the device */
	for (uint32_t i = from; i < to; i++) {
		uint64_t b = kids[i];
		if (b >= w->bound || memo_find(&w->memo, b))
			continue;
		want[n++] = b;
	}
	n = sort_unique(want, n);
	sl = from == 0 ? ra_take(w, parent) : NULL;
	if (sl) {
		/* read ahead: used when it holds every block wanted (it may hold more) */
		unsigned a = 0, ok = 1;

		for (unsigned i = 0; i < n && ok; i++) {
			while (a < sl->n && sl->blocks[a] < want[i])
				a++;
			ok = a < sl->n && sl->blocks[a] == want[i];
		}
		if (ok) {
			wb = sl->buf;
			n = sl->n;
			memcpy(want, sl->blocks, n * sizeof(*want));
			memcpy(errs, sl->errs, n * sizeof(*errs));
			memcpy(checks, sl->checks, n * sizeof(*checks));
			have_checks = 1;
			w->ra_used++;
		} else {
			buf_put(w, sl->buf);
		}
		pthread_mutex_lock(&w->ra_lock);
		sl->state = RA_FREE;
		pthread_mutex_unlock(&w->ra_lock);
	}
	if (!wb) {
		if (!(wb = buf_get(w)))
			return -ENOMEM;
		read_runs(w->ioe, want, n, wb->data, errs);
	}
	buf = wb->data;
	for (uint32_t i = from, at = find_block(want, n, kids[from]); i < to; i++) {
		uint64_t chi = i + 1 < nr ? keys[i + 1] : hi;
		const uint8_t *data = NULL;
		unsigned next = i + 1 < to ? find_block(want, n, kids[i + 1]) : n;
		int err = 0, checked = CHECK_NONE;

		if (at < n) {
			data = buf + (size_t)at * MD_BLOCK_SIZE;
			err = errs[at];
			if (have_checks)
				checked = checks[at];
		}
		/* the children of the next RA_AHEAD siblings, each asked for once */
		for (uint32_t k = i == from ? i + 1 : i + RA_AHEAD;
		     w->ra_on && k <= i + RA_AHEAD && k < to; k++) {
			unsigned x = k == i + 1 ? next : find_block(want, n, kids[k]);

			if (x < n && !errs[x])
				ra_ask(w, v->t, kids[k], buf + (size_t)x * MD_BLOCK_SIZE);
		}
		at = next;
		r = visit(v, kids[i], keys[i], chi, depth + 1, data, data ? wb : NULL, err, checked,
			  &sums[i]);
		if (r < 0)
			break;
	}
	if (w->pending.nr && w->pending.buf == wb) {
		int f = flush_leaves(w);

		if (!r)
			r = f;
	}
	buf_put(w, wb);
	return r;
}

/* Checks the children's summaries against the separators; fills s. */
static void judge_children(struct visit *v, uint64_t block, const uint64_t *keys,
			   const struct bt_summary *sums, uint32_t nr, struct bt_summary *s)
{
	int height = -1, last_good = -1;

	for (uint32_t i = 0; i < nr; i++) {
		const struct bt_summary *c = &sums[i];
		uint64_t chi = i + 1 < nr ? keys[i + 1] : UINT64_MAX;

		if (c->flags & BT_SUM_BAD) {
			s->flags |= BT_SUM_DAMAGED;
			continue;
		}
		if (c->flags & BT_SUM_DAMAGED)
			s->flags |= BT_SUM_DAMAGED;
		if (!(c->flags & BT_SUM_NOHEIGHT)) {
			if (height < 0) {
				height = c->height;
			} else if (c->height != height) {
				node_damage(v, DMG_FATAL, RC_NODE_DEPTH, c->block, keys[i], chi,
					    "leaves at different depths");
				s->flags |= BT_SUM_DAMAGED;
			}
		}
		if (!(c->flags & BT_SUM_EMPTY) &&
		    (c->min < keys[i] || (i + 1 < nr && c->max >= keys[i + 1]))) {
			char what[128];
			snprintf(what, sizeof(what),
				 "keys %llu..%llu outside the range given by parent %llu",
				 (unsigned long long)c->min, (unsigned long long)c->max,
				 (unsigned long long)block);
			node_damage(v, DMG_FATAL, RC_NODE_KEY_RANGE, c->block, keys[i], chi,
				    what);
			s->flags |= BT_SUM_DAMAGED;
		}
		if (c->flags & BT_SUM_UNDERFULL) {
			char what[96];
			snprintf(what, sizeof(what), "underfull node (%u entries)", c->nr_entries);
			node_damage(v, DMG_NON_FATAL, RC_NODE_UNDERFULL, c->block, keys[i], chi,
				    what);
		}
		s->count += c->count;
		last_good = (int)i;
	}
	if (height < 0) {
		s->flags |= BT_SUM_NOHEIGHT;
		s->height = 1;
	} else {
		s->height = (uint8_t)(height + 1);
	}
	s->min = keys[0];
	if (last_good == (int)nr - 1 && !(sums[nr - 1].flags & BT_SUM_EMPTY))
		s->max = sums[nr - 1].max;
	else
		s->max = keys[nr - 1];
}

static int visit_internal(struct visit *v, const struct bt_node *n, uint64_t block, uint64_t hi,
			  int depth, struct bt_summary *s)
{
	const struct bt_walk_tree *t = v->t;
	uint32_t nr = n->nr_entries;
	uint64_t *keys = malloc(sizeof(uint64_t) * 2 * nr);
	uint64_t *kids = keys + nr;
	struct bt_summary *sums = malloc(sizeof(*sums) * nr);
	int r = 0;

	if (!keys || !sums) {
		free(keys);
		free(sums);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nr; i++) {
		keys[i] = bt_key(n, i);
		kids[i] = get_le64(bt_value(n, i));
		if (t->ref)
			t->ref(t->ctx, kids[i]);
	}
	if (t->inner)
		t->inner(t->ctx, block, kids, nr);
	/* n may point into a buffer that the batches below reuse: not used after this */
	for (uint32_t from = 0; from < nr && r >= 0; from += BT_WALK_BATCH) {
		uint32_t to = from + BT_WALK_BATCH < nr ? from + BT_WALK_BATCH : nr;
		r = visit_batch(v, block, keys, kids, from, to, nr, hi, depth, sums);
	}
	if (r >= 0)
		judge_children(v, block, keys, sums, nr, s);
	free(keys);
	free(sums);
	return r;
}

/*
 * Node block at depth; data (from batch buffer in, NULL: read it here) was
 * read with read_err; checked is the node validator's answer for it,
 * CHECK_KEYS_RISE (0, and the keys rise) or CHECK_NONE.
 */
static int visit(struct visit *v, uint64_t block, uint64_t lo, uint64_t hi, int depth,
		 const uint8_t *data, struct wbuf *in, int read_err, int checked,
		 struct bt_summary *out)
{
	struct bt_walker *w = v->w;
	const struct bt_walk_tree *t = v->t;
	const struct bt_summary *found;
	struct bt_summary s = { .block = block, .kind = (uint8_t)t->kind };
	struct bt_node n;
	enum bt_node_err e;
	int r, keys_rise;

	if (block >= w->bound) {
		node_damage(v, DMG_FATAL, RC_NODE_OUT_OF_BOUNDS, block, lo, hi,
			    "block beyond the end of the metadata");
		s.flags = BT_SUM_BAD | BT_SUM_NOHEIGHT;
		*out = s;
		return 0;
	}
	found = memo_find(&w->memo, block);
	if (found) {
		if (found->flags & BT_SUM_BUSY) {
			node_damage(v, DMG_FATAL, RC_NODE_CYCLE, block, lo, hi,
				    "cycle in tree");
			s.flags = BT_SUM_BAD | BT_SUM_NOHEIGHT;
			*out = s;
			return 0;
		}
		if (found->kind != t->kind) {
			node_damage(v, DMG_FATAL, RC_NODE_TYPE_CHANGED, block, lo, hi,
				    "node shared with another tree");
			s.flags = BT_SUM_BAD | BT_SUM_NOHEIGHT;
			*out = s;
			return 0;
		}
		*out = *found;
		if (t->again)
			t->again(t->ctx, found);
		return 0;
	}
	if (depth > BT_MAX_DEPTH) {
		node_damage(v, DMG_FATAL, RC_NODE_DEPTH, block, lo, hi, "tree too deep");
		s.flags = BT_SUM_BAD | BT_SUM_NOHEIGHT;
		*out = s;
		return 0;
	}
	s.flags = BT_SUM_BUSY;
	r = memo_put(&w->memo, &s);
	if (r < 0)
		return r;
	s.flags = 0;
	if (!data) {
		if (!w->one && !(w->one = ioe_alloc_blocks(1)))
			return -ENOMEM;
		if (!depth && hint_take(w, block, w->one, &read_err, &checked)) {
			w->hints_used++;
		} else {
			read_err = ioe_read(w->ioe, block, 1, w->one);
			checked = CHECK_NONE;
		}
		data = w->one;
		in = NULL;
	}
	keys_rise = checked == CHECK_KEYS_RISE;
	if (keys_rise)
		checked = 0;
	if (!read_err)
		read_err = bc_classify(checked != CHECK_NONE
					       ? checked
					       : bt_node_validator.check(data, block, MD_BLOCK_SIZE),
				       data, MD_BLOCK_SIZE, w->type_salts, w->nr_type_salts);
	if (read_err) {
		const char *what = read_err == -EILSEQ	       ? "bad checksum"
				   : read_err == -ENOTBLK      ? "blocknr mismatch"
				   : read_err == BC_WRONG_TYPE ? "not a btree node"
							       : "io error";
		node_damage(v, DMG_FATAL, bt_read_err_code(read_err), block, lo, hi, what);
		s.flags = BT_SUM_BAD | BT_SUM_NOHEIGHT;
		goto out;
	}
	bt_node_view(data, &n);
	e = bt_node_check_known(&n, t->leaf_vsize, keys_rise);
	if (e != BT_NODE_OK) {
		node_damage(v, bt_node_err_level(e), bt_node_err_code(e), block, lo, hi,
			    bt_node_err_str(e));
		if (bt_node_err_level(e) >= DMG_FATAL) {
			s.flags = BT_SUM_BAD | BT_SUM_NOHEIGHT;
			goto out;
		}
	}
	s.nr_entries = n.nr_entries;
	if (n.nr_entries < n.max_entries / 3)
		s.flags |= BT_SUM_UNDERFULL;
	if (bt_is_leaf(&n)) {
		s.flags |= BT_SUM_LEAF;
		s.count = n.nr_entries;
		if (n.nr_entries) {
			s.min = bt_key(&n, 0);
			s.max = bt_key(&n, n.nr_entries - 1);
		} else {
			s.flags |= BT_SUM_EMPTY;
		}
		r = t->leaf ? leaf_call(w, t, &n, data, in) : 0;
	} else if (!n.nr_entries) {
		node_damage(v, DMG_FATAL, RC_NODE_NR_ENTRIES, block, lo, hi,
			    "internal node without entries");
		s.flags = BT_SUM_BAD | BT_SUM_NOHEIGHT;
	} else {
		r = visit_internal(v, &n, block, hi, depth, &s);
	}
	if (r < 0)
		return r;
out:
	r = memo_put(&w->memo, &s);
	*out = s;
	return r;
}

/*----------------------------------------------------------------*/

int bt_walker_create(struct ioe *ioe, struct bt_walker **out)
{
	struct bt_walker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->ioe = ioe;
	w->bound = ioe->nr_blocks;
	r = memo_init(&w->memo, ioe->nr_blocks);
	if (r < 0) {
		free(w);
		return r;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->room, NULL);
	pthread_mutex_init(&w->ra_lock, NULL);
	pthread_cond_init(&w->ra_work, NULL);
	pthread_cond_init(&w->ra_done, NULL);
	*out = w;
	return 0;
}

void bt_walker_destroy(struct bt_walker *w)
{
	if (!w)
		return;
	drain_leaves(w);
	ra_drop_all(w, 1);
	if (w->ra_started) {
		pthread_mutex_lock(&w->ra_lock);
		w->ra_quit = 1;
		pthread_cond_broadcast(&w->ra_work);
		pthread_mutex_unlock(&w->ra_lock);
		for (unsigned i = 0; i < w->ra_started; i++)
			pthread_join(w->ra_thread[i], NULL);
	}
	pthread_mutex_destroy(&w->ra_lock);
	pthread_cond_destroy(&w->ra_work);
	pthread_cond_destroy(&w->ra_done);
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->quit = 1;
		pthread_cond_signal(&w->work);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->room);
	for (unsigned i = 0; i < w->nr_bufs; i += 2)
		free(w->bufs[i].data);
	free(w->pending.prep);
	for (unsigned i = 0; i < LEAF_JOBS; i++)
		free(w->jobs[i].prep);
	free(w->one);
	memo_release(&w->memo);
	free(w);
}

void bt_walker_set_bound(struct bt_walker *w, uint64_t nr_blocks)
{
	w->bound = nr_blocks < w->ioe->nr_blocks ? nr_blocks : w->ioe->nr_blocks;
}

void bt_walker_set_type_salts(struct bt_walker *w, const uint32_t *salts, size_t nr)
{
	w->type_salts = salts;
	w->nr_type_salts = nr;
}

const struct bt_summary *bt_walker_seen(const struct bt_walker *w, uint64_t block)
{
	const struct bt_summary *s = block < w->bound ? memo_find(&w->memo, block) : NULL;

	return s && !(s->flags & BT_SUM_BUSY) ? s : NULL;
}

int bt_walker_walk(struct bt_walker *w, const struct bt_walk_tree *t, uint64_t root,
		   struct bt_summary *out)
{
	struct visit v = { w, t };
	int r, d;

	w->walk_no++;
	r = visit(&v, root, 0, UINT64_MAX, 0, NULL, NULL, 0, CHECK_NONE, out);
	d = drain_leaves(w);
	ra_drop_all(w, 0);
	return r < 0 ? r : d;
}

void bt_walker_set_readahead(struct bt_walker *w, int on)
{
	w->ra_on = on;
}

uint64_t bt_walker_readahead_used(const struct bt_walker *w)
{
	return w->ra_used;
}

void bt_walker_hint(struct bt_walker *w, uint64_t root, uint32_t leaf_vsize)
{
	struct ra_slot *sl = NULL;

	if (!w->ra_on || root >= w->bound || memo_find(&w->memo, root) || !ra_start(w) ||
	    !(sl = ra_slot_for(w, 1, root)))
		return;
	if (!(sl->buf = buf_try_get(w))) {
		ra_unfill(w, sl);
		return;
	}
	sl->hint = 1;
	sl->root = root;
	sl->parent = UINT64_MAX;
	sl->leaf_vsize = leaf_vsize;
	sl->walk = w->walk_no;
	sl->bound = w->bound;
	sl->n = 0;
	ra_queue(w, sl);
}

uint64_t bt_walker_hints_used(const struct bt_walker *w)
{
	return w->hints_used;
}
