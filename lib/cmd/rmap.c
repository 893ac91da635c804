#include "cmd/rmap.h"
#include "cmd/rmap-internal.h"

#include "util/fmt.h"
#include "util/parse.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "thin/usage.h"
#include "thin/view.h"
#include "util/vec.h"

/*----------------------------------------------------------------*/

int thin_rmap_parse_region(const char *s, struct thin_region *r, const char **why)
{
	const char *dots = strstr(s, "..");

	if (!dots) {
		*why = "no dots";
		return -EINVAL;
	}
	if (parse_u64_n(s, (size_t)(dots - s), &r->begin) < 0 ||
	    parse_u64_n(dots + 2, strlen(dots + 2), &r->end) < 0) {
		*why = "couldn't parse numbers";
		return -EINVAL;
	}
	if (r->end <= r->begin) {
		*why = "end <= begin";
		return -EINVAL;
	}
	return 0;
}

/*----------------------------------------------------------------*/
/* Runs */


struct rctx {
	struct thin_region *regions;   /* sorted, disjoint, not adjacent */
	size_t nr_regions;
	uint64_t lo_all, hi_all;       /* [first begin, last end): no block outside is in one */
	struct rrun *runs;
	size_t nr, cap;
	uint64_t dev;
	uint8_t *visited;      /* one bit per metadata block; NULL: --all-devices */
	uint64_t nr_meta_blocks;
	int damaged;
	char damage[256];
};

/*
 * 0.9.0 walks the whole mapping tree once and never enters a node it has
 * already visited, so a subtree shared by several devices is reported for
 * the first of them only.  Default behaviour, for identical output.
 */
static int seen_before(struct rctx *c, uint64_t block)
{
	if (!c->visited || block >= c->nr_meta_blocks)
		return 0;
	if (c->visited[block >> 3] & (1u << (block & 7)))
		return 1;
	c->visited[block >> 3] |= (uint8_t)(1u << (block & 7));
	return 0;
}

static int rmap_skip(void *ctx, uint64_t block, int again)
{
	(void)again;
	return seen_before(ctx, block);
}

static inline int in_regions(const struct rctx *c, uint64_t b)
{
	size_t lo = 0, hi = c->nr_regions;

	if (b < c->lo_all || b >= c->hi_all)
		return 0;   /* most blocks, for a region of a few percent */
	if (hi == 1)
		return 1;

	/* first region with end > b */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->regions[mid].end <= b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->nr_regions && c->regions[lo].begin <= b;
}

static int add_mapping(struct rctx *c, uint64_t v, uint64_t d)
{
	struct rrun *last = c->nr ? &c->runs[c->nr - 1] : NULL;

	if (last && last->dev == c->dev && last->data_begin + last->len == d &&
	    last->thin_begin + last->len == v && last->len < RRUN_MAX_LEN) {
		last->len++;
		return 0;
	}
	if (c->nr == c->cap) {
		struct rrun *n = vec_grow(c->runs, &c->cap, sizeof(*n), 1024);

		if (!n)
			return -ENOMEM;
		c->runs = n;
	}
	c->runs[c->nr++] = (struct rrun){ .data_begin = d, .thin_begin = v, .len = 1,
					  .dev = (uint32_t)c->dev };
	return 0;
}

static int rmap_leaf(void *ctx, const struct bt_node *n)
{
	struct rctx *c = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t d = thin_bt_block(get_le64(bt_value(n, i)));

		if (in_regions(c, d)) {
			int r = add_mapping(c, bt_key(n, i), d);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static void rmap_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			uint64_t lo, uint64_t hi, const char *m)
{
	struct rctx *c = ctx;

	(void)code;
	(void)hi;
	if (level < DMG_NON_FATAL || c->damaged)
		return;
	c->damaged = 1;
	snprintf(c->damage, sizeof(c->damage),
		 "thin device %" PRIu64 ": node %" PRIu64 ": %s, affecting keys from %" PRIu64,
		 c->dev, block, m, lo);
}

static int cmp_region(const void *a, const void *b)
{
	const struct thin_region *x = a, *y = b;

	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Sorts and merges overlapping or adjacent regions. */
static void merge_regions(struct rctx *c)
{
	size_t k = 0;

	if (c->nr_regions)
		vec_sort(c->regions, c->nr_regions, sizeof(*c->regions), cmp_region);
	for (size_t i = 0; i < c->nr_regions; i++) {
		if (k && c->regions[i].begin <= c->regions[k - 1].end) {
			if (c->regions[i].end > c->regions[k - 1].end)
				c->regions[k - 1].end = c->regions[i].end;
		} else {
			c->regions[k++] = c->regions[i];
		}
	}
	c->nr_regions = k;
	c->lo_all = k ? c->regions[0].begin : 0;
	c->hi_all = k ? c->regions[k - 1].end : 0;
}


/*----------------------------------------------------------------*/

/*----------------------------------------------------------------*/
/*
 * Fast path (healthy metadata): plan the walk from the internal nodes,
 * then decode the leaves on two threads, then merge their runs in walk
 * order, which gives exactly the runs of the sequential walk below.  Any
 * anomaly at all makes it give up (FAST_FALLBACK) so that damaged metadata
 * is reported by the sequential walk, unchanged.
 */

#define FAST_FALLBACK 1
#define FAST_CHUNK 128u     /* leaves per work item (read in contiguous runs); 512 KiB: four workers' buffers in one huge page */
/*
 * Workers, each reading a chunk then decoding it: more than the cores, so
 * that reads are in flight while chunks are decoded.
 */
#ifndef RMAP_WORKERS
#define RMAP_WORKERS 4u
#endif

struct leaf_job {
	uint64_t block, dev, lo, hi;
};

/*
 * The jobs planned so far, for the workers: where every leaf is planned at
 * most once (no --all-devices: a block is entered once), the jobs go into
 * an array sized for one a metadata block, published a chunk at a time,
 * and the workers decode leaves while the plan still reads inner nodes.
 */
struct feed {
	pthread_mutex_t lock;
	pthread_cond_t more;
	size_t planned;       /* jobs the workers may take */
	int done, abort;      /* the plan is complete; it failed: take nothing more */
};

struct plan {
	struct rctx *c;
	struct bc *bc;
	struct leaf_job *jobs;
	size_t nr, cap;
	int fixed;            /* jobs is the feed's array of cap jobs: never grown */
	struct feed *feed;
	int fallback;
};

static void feed_publish(struct feed *f, size_t planned, int done, int abort)
{
	pthread_mutex_lock(&f->lock);
	f->planned = planned;
	f->done |= done;
	f->abort |= abort;
	pthread_cond_broadcast(&f->more);
	pthread_mutex_unlock(&f->lock);
}

/* Jobs planned once at least want are, or the plan is done; 0 after a failed plan. */
static size_t feed_wait(struct feed *f, size_t want)
{
	size_t n;

	pthread_mutex_lock(&f->lock);
	while (!f->done && f->planned < want)
		pthread_cond_wait(&f->more, &f->lock);
	n = f->abort ? 0 : f->planned;
	pthread_mutex_unlock(&f->lock);
	return n;
}

static int plan_add(struct plan *pl, uint64_t block, uint64_t lo, uint64_t hi)
{
	if (block >= pl->c->nr_meta_blocks || (pl->fixed && pl->nr == pl->cap)) {
		pl->fallback = 1;   /* beyond the device: the sequential walk reports it */
		return -ECANCELED;
	}
	if (pl->nr == pl->cap) {
		struct leaf_job *n = vec_grow(pl->jobs, &pl->cap, sizeof(*n), 1024);

		if (!n)
			return -ENOMEM;
		pl->jobs = n;
	}
	pl->jobs[pl->nr++] = (struct leaf_job){ block, pl->c->dev, lo, hi };
	if (pl->fixed && pl->nr % FAST_CHUNK == 0)
		feed_publish(pl->feed, pl->nr, 0, 0);
	return 0;
}

static int keys_in_range(const struct bt_node *n, uint64_t lo, uint64_t hi)
{
	return !n->nr_entries ||
	       (bt_key(n, 0) >= lo && (hi == UINT64_MAX || bt_key(n, n->nr_entries - 1) < hi));
}

/* The shared descent plans: leaves become jobs, any damage means fall back. */
static int plan_leaf(void *ctx, uint64_t block, uint64_t lo, uint64_t hi)
{
	struct plan *pl = ctx;

	return pl->fallback ? -ECANCELED : plan_add(pl, block, lo, hi);
}

static void plan_damage(void *ctx, enum dmg_level level, enum rep_code code, uint64_t block,
			uint64_t lo, uint64_t hi, const char *msg)
{
	struct plan *pl = ctx;

	(void)level, (void)code, (void)block, (void)lo, (void)hi, (void)msg;
	pl->fallback = 1;
}

static int plan_skip(void *ctx, uint64_t block, int again)
{
	struct plan *pl = ctx;

	(void)again;
	return seen_before(pl->c, block);
}

static int plan_tree(struct plan *pl, uint64_t root)
{
	static const struct bt_walk_ops ops = {
		.defer_leaf = plan_leaf, .damage = plan_damage, .child = plan_skip,
	};
	int r = thin_walk_mappings(pl->bc, root, &ops, pl);

	if (pl->fallback)
		return FAST_FALLBACK;
	return r;
}

struct leaf_out {
	size_t first, nr;     /* runs of this leaf in its worker's store */
	int worker;
};

/*
 * A worker's runs, in segments of SEG_RUNS mapped one by one: the merge
 * unmaps each segment once it has copied it, so that the workers' runs and
 * the merged array are never all in memory at once.
 */
#define SEG_RUNS (1u << 16)   /* 1.5 MiB */

struct segs {
	struct rrun **seg;
	size_t nr_seg, cap_seg;
	size_t nr;            /* runs */
};

static struct rrun *seg_at(const struct segs *s, size_t i)
{
	return &s->seg[i / SEG_RUNS][i % SEG_RUNS];
}

static int seg_push(struct segs *s, struct rrun r)
{
	if (s->nr == s->nr_seg * SEG_RUNS) {
		void *p;

		if (s->nr_seg == s->cap_seg) {
			struct rrun **n = vec_grow(s->seg, &s->cap_seg, sizeof(*n), 16);

			if (!n)
				return -ENOMEM;
			s->seg = n;
		}
		p = mmap(NULL, SEG_RUNS * sizeof(struct rrun), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -ENOMEM;
		s->seg[s->nr_seg++] = p;
	}
	*seg_at(s, s->nr++) = r;
	return 0;
}

static void seg_drop(struct segs *s, size_t k)
{
	if (k < s->nr_seg && s->seg[k]) {
		munmap(s->seg[k], SEG_RUNS * sizeof(struct rrun));
		s->seg[k] = NULL;
	}
}

static void segs_release(struct segs *s)
{
	for (size_t k = 0; k < s->nr_seg; k++)
		seg_drop(s, k);
	free(s->seg);
	memset(s, 0, sizeof(*s));
}

struct worker {
	const struct rctx *c;
	struct ioe *ioe;
	const struct leaf_job *jobs;
	struct leaf_out *outs;
	struct feed *feed;
	unsigned id;
	uint8_t *buf;         /* FAST_CHUNK blocks, its part of one huge-page area */
	size_t *next_chunk;   /* shared: the next FAST_CHUNK of jobs to take (atomic) */
	struct segs runs;
	int result;           /* 0, FAST_FALLBACK or -errno */
};

static int worker_add(struct worker *w, uint64_t dev, uint64_t v, uint64_t d, size_t leaf_first)
{
	struct rrun *last = w->runs.nr > leaf_first ? seg_at(&w->runs, w->runs.nr - 1) : NULL;

	if (last && last->data_begin + last->len == d && last->thin_begin + last->len == v &&
	    last->len < RRUN_MAX_LEN) {
		last->len++;
		return 0;
	}
	return seg_push(&w->runs, (struct rrun){ .data_begin = d, .thin_begin = v, .len = 1,
						 .dev = (uint32_t)dev });
}

static int worker_leaf(struct worker *w, size_t j, const uint8_t *data)
{
	const struct leaf_job *job = &w->jobs[j];
	struct bt_node n;
	size_t first = w->runs.nr;

	if (bt_node_validator.check(data, job->block, MD_BLOCK_SIZE) < 0)
		return FAST_FALLBACK;
	bt_node_view(data, &n);
	if (!bt_is_leaf(&n) || bt_node_check(&n, THIN_MAPPING_VSIZE) != BT_NODE_OK ||
	    !keys_in_range(&n, job->lo, job->hi))
		return FAST_FALLBACK;
	const uint8_t *vals = bt_value(&n, 0);

	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t d = thin_bt_block(get_le64(vals + 8 * (size_t)i));

		if (in_regions(w->c, d)) {
			int r = worker_add(w, job->dev, bt_key(&n, i), d, first);
			if (r < 0)
				return r;
		}
	}
	w->outs[j] = (struct leaf_out){ first, w->runs.nr - first, (int)w->id };
	return 0;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = w->buf;

	for (;;) {
		size_t c0 = __atomic_fetch_add(w->next_chunk, 1, __ATOMIC_RELAXED) * FAST_CHUNK, end;
		size_t nr_jobs = feed_wait(w->feed, c0 + FAST_CHUNK);

		if (c0 >= nr_jobs || w->result)
			break;
		end = c0 + FAST_CHUNK < nr_jobs ? c0 + FAST_CHUNK : nr_jobs;

		for (size_t j = c0; j < end && !w->result;) {
			/* a run of consecutive block numbers: one read */
			size_t k = 1;
			while (j + k < end && w->jobs[j + k].block == w->jobs[j].block + k)
				k++;
			if (w->jobs[j].block + k > w->ioe->nr_blocks ||
			    ioe_read(w->ioe, w->jobs[j].block, (unsigned)k, buf) < 0) {
				w->result = FAST_FALLBACK;
				break;
			}
			for (size_t i = 0; i < k && !w->result; i++)
				w->result = worker_leaf(w, j + i, buf + i * MD_BLOCK_SIZE);
			j += k;
		}
	}
	return NULL;
}

/*
 * The workers' runs in leaf order into c->runs (sized for all of them:
 * pages it never reaches are never touched), joining a leaf's first run to
 * the previous leaf's last; each worker segment is unmapped once copied.
 */
static int merge_outputs(struct rctx *c, struct worker *ws, const struct leaf_out *outs,
			 size_t nr_jobs)
{
	size_t total = 0;

	for (unsigned i = 0; i < RMAP_WORKERS; i++)
		total += ws[i].runs.nr;

	c->runs = malloc((total + 1) * sizeof(*c->runs));
	if (!c->runs)
		return -ENOMEM;
	c->cap = total + 1;
	c->nr = 0;
	for (size_t j = 0; j < nr_jobs; j++) {
		struct worker *w = &ws[outs[j].worker];

		for (size_t i = 0; i < outs[j].nr; i++) {
			size_t k = outs[j].first + i;
			const struct rrun *x = seg_at(&w->runs, k);
			struct rrun *last = c->nr ? &c->runs[c->nr - 1] : NULL;

			if (i == 0 && last && last->dev == x->dev &&
			    last->data_begin + last->len == x->data_begin &&
			    last->thin_begin + last->len == x->thin_begin &&
			    (uint64_t)last->len + x->len <= RRUN_MAX_LEN)
				last->len += x->len;
			else
				c->runs[c->nr++] = *x;
			if ((k + 1) % SEG_RUNS == 0)
				seg_drop(&w->runs, k / SEG_RUNS);
		}
	}
	return 0;
}

/* An array of n elements of size bytes, its pages taken as written; NULL when it cannot be had. */
static void *lazy_array(size_t n, size_t size)
{
	void *p;

	if (n > SIZE_MAX / size)
		return NULL;
	p = mmap(NULL, n * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void release_jobs(struct plan *pl)
{
	if (pl->fixed && pl->jobs)
		munmap(pl->jobs, pl->cap * sizeof(*pl->jobs));
	else
		free(pl->jobs);
	pl->jobs = NULL;
}

/* Every device's tree planned, each shared subtree for the first device only; as plan_tree(). */
static int plan_devices(struct rctx *c, const struct thin_view *v, struct plan *pl)
{
	int r = 0;

	for (size_t i = 0; i < v->devs.nr && !r; i++)
		if (v->devs.devs[i].has_root && !seen_before(c, v->devs.devs[i].root)) {
			c->dev = v->devs.devs[i].dev_id;
			r = plan_tree(pl, v->devs.devs[i].root);
		}
	return r;
}

static int collect_fast(struct rctx *c, const struct thin_view *v)
{
	struct feed feed = { .lock = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER };
	struct plan pl = { .c = c, .bc = v->md->bc, .feed = &feed };
	struct worker ws[RMAP_WORKERS];
	struct leaf_out *outs = NULL;
	size_t next_chunk = 0, cap = c->visited ? (size_t)c->nr_meta_blocks : 0;
	uint8_t *bufs = NULL;
	unsigned nr_workers = RMAP_WORKERS, started = 1;
	pthread_t th[RMAP_WORKERS];
	int r = 0;

	memset(ws, 0, sizeof(ws));
	/* every leaf once (see feed): workers start now and decode as the plan goes */
	if (cap && (pl.jobs = lazy_array(cap, sizeof(*pl.jobs))) &&
	    (outs = lazy_array(cap, sizeof(*outs)))) {
		pl.cap = cap;
		pl.fixed = 1;
	} else if (pl.jobs) {
		munmap(pl.jobs, cap * sizeof(*pl.jobs));
		pl.jobs = NULL;
	}
	if (!pl.fixed) {
		r = plan_devices(c, v, &pl);
		feed_publish(&feed, pl.nr, 1, r != 0);
		if (r)
			goto out;
		if (!(outs = calloc(pl.nr ? pl.nr : 1, sizeof(*outs)))) {
			r = -ENOMEM;
			goto out;
		}
		nr_workers = pl.nr >= 4 * FAST_CHUNK ? RMAP_WORKERS : 1;
	}
	/* the workers' buffers in one area: O_DIRECT reads pin huge pages */
	bufs = ioe_alloc_huge((size_t)nr_workers * FAST_CHUNK);
	if (!bufs) {
		r = -ENOMEM;
		feed_publish(&feed, pl.nr, 1, 1);
		goto out;
	}
	for (unsigned i = 0; i < RMAP_WORKERS; i++)
		ws[i] = (struct worker){ .c = c, .ioe = v->md->ioe, .jobs = pl.jobs, .outs = outs,
					 .feed = &feed, .id = i, .next_chunk = &next_chunk,
					 .buf = bufs + (size_t)(i < nr_workers ? i : 0) * FAST_CHUNK * MD_BLOCK_SIZE };
	/* chunks are taken as workers come free: a thread that cannot start takes none */
	while (started < nr_workers && pthread_create(&th[started], NULL, worker_run, &ws[started]) == 0)
		started++;
	if (pl.fixed) {
		r = plan_devices(c, v, &pl);
		feed_publish(&feed, pl.nr, 1, r != 0);
	}
	if (!r)
		worker_run(&ws[0]);
	for (unsigned i = 1; i < started; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i < started && !r; i++)
		r = ws[i].result;
	release_jobs(&pl);   /* before the merge's array: not both at the peak */
	if (!r)
		r = merge_outputs(c, ws, outs, pl.nr);
out:
	for (unsigned i = 0; i < RMAP_WORKERS; i++)
		segs_release(&ws[i].runs);
	free(bufs);
	release_jobs(&pl);
	if (pl.fixed)
		munmap(outs, pl.cap * sizeof(*outs));
	else
		free(outs);
	return r;
}

static int collect(struct rctx *c, const struct thin_view *v, char *msg, size_t msglen)
{
	struct bt_walk_ops ops = { .leaf = rmap_leaf, .damage = rmap_damage, .child = rmap_skip };

	for (size_t i = 0; i < v->devs.nr; i++) {
		const struct thin_dev *d = &v->devs.devs[i];
		int r;

		if (!d->has_root || seen_before(c, d->root))
			continue;
		c->dev = d->dev_id;
		r = thin_walk_mappings(v->md->bc, d->root, &ops, c);
		if (r < 0) {
			snprintf(msg, msglen, "cannot read the mapping trees: %s", strerror(-r));
			return r;
		}
		if (c->damaged) {
			snprintf(msg, msglen, "%s", c->damage);
			return -EILSEQ;
		}
	}
	return 0;
}

static char *put_str(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* "data A..B -> thin(D) X..Y" lines, formatted by hand into one buffer (hot at scale). */
#define PRINT_BUF (64u << 10)
#define PRINT_LINE (5 * FMT_U64_MAX + 32)

static void print_runs(FILE *out, const struct rrun *runs, size_t nr)
{
	char buf[PRINT_BUF], *p = buf;

	for (size_t i = 0; i < nr; i++) {
		const struct rrun *x = &runs[i];

		if (p + PRINT_LINE > buf + sizeof(buf)) {
			fwrite(buf, 1, (size_t)(p - buf), out);
			p = buf;
		}
		p = put_str(p, "data ", 5);
		p = fmt_u64(p, x->data_begin);
		p = put_str(p, "..", 2);
		p = fmt_u64(p, x->data_begin + x->len);
		p = put_str(p, " -> thin(", 9);
		p = fmt_u64(p, x->dev);
		p = put_str(p, ") ", 2);
		p = fmt_u64(p, x->thin_begin);
		p = put_str(p, "..", 2);
		p = fmt_u64(p, x->thin_begin + x->len);
		*p++ = '\n';
	}
	fwrite(buf, 1, (size_t)(p - buf), out);
}

int thin_rmap(const struct thin_rmap_opts *o, FILE *out, char *msg, size_t msglen)
{
	struct rctx c = { 0 };
	struct thin_view v;
	int r;

	c.regions = malloc((o->nr_regions + 1) * sizeof(*c.regions));
	if (!c.regions) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	memcpy(c.regions, o->regions, o->nr_regions * sizeof(*c.regions));
	c.nr_regions = o->nr_regions;
	merge_regions(&c);
	r = thin_view_open(o->path, o->use_snap, o->snap_block, &v, msg, msglen);
	if (r < 0)
		goto out_regions;
	c.nr_meta_blocks = bc_nr_blocks(v.md->bc);   /* the plan's bound too */
	if (!o->all_devices) {
		c.visited = calloc(c.nr_meta_blocks / 8 + 1, 1);
		if (!c.visited) {
			snprintf(msg, msglen, "out of memory");
			r = -ENOMEM;
			goto out;
		}
	}
	r = collect_fast(&c, &v);
	if (r == FAST_FALLBACK) {
		/* something is wrong somewhere: the sequential walk reports it */
		if (c.visited)
			memset(c.visited, 0, c.nr_meta_blocks / 8 + 1);
		c.nr = 0;
		r = collect(&c, &v, msg, msglen);
	} else if (r < 0) {
		snprintf(msg, msglen, "cannot read the mapping trees: %s", strerror(-r));
	}
	if (r < 0)
		goto out;
	thin_rmap_sort_runs(c.runs, c.nr);
	print_runs(out, c.runs, c.nr);
	if (fflush(out) != 0 || ferror(out)) {
		snprintf(msg, msglen, "write error: %s", strerror(errno));
		r = -EIO;
	}
out:
	thin_view_close(&v);
out_regions:
	free(c.visited);
	free(c.runs);
	free(c.regions);
	return r;
}
