/*
 * gen_pool: deterministic generator of synthetic dm-thin pools, for tests
 * and benchmarks.  Writes either thin_dump 0.9.0 XML or, with --binary,
 * the metadata itself (the same event stream fed straight into the
 * library's restorer, no XML in between).
 *
 * XML output is canonical: devices sorted by dev_id, mapped_blocks exact,
 * uuid="", and every run of blocks contiguous in both origin and data
 * space with one time stamp merged into one <range_mapping> (a run of one
 * block is a <single_mapping>).  So thin_dump(thin_restore(x)) == x byte
 * for byte, and `gen_pool --binary` dumps to the XML `gen_pool` prints for
 * the same options.
 *
 * Usage:
 *   gen_pool --scale tiny|small|medium|large [-o out.xml] [--stats out.json]
 *   gen_pool --origins 8 --snapshots 16 --mappings 2000000 --seed 7 -o m.xml
 *   gen_pool --scale large --binary -o meta.bin [--metadata-blocks N]
 * Any explicit option overrides the preset's value.
 *
 * Presets (origins, snapshots, mappings = total mapped blocks wanted over
 * all devices): tiny 2/3/2000, small 4/6/100000, medium 8/16/2000000,
 * large 16/32/20000000.  Without --scale: 4/6/100000.
 *
 * Options (defaults in brackets):
 *   -o, --output PATH       XML output, "-" = stdout [-]; with --binary the
 *                           metadata file (created or truncated; a block
 *                           device is used as it is)
 *   --stats PATH            JSON summary: devices (dev_id, mapped_blocks,
 *                           lines, origin, virt_blocks), lines, mappings,
 *                           nr_data_blocks, data_blocks_top, time,
 *                           transaction, delta_pair (an origin/snapshot
 *                           pair for thin_delta), config
 *   --origins N [4]  --snapshots N [6]  --mappings N [100000]  --seed N [1]
 *   --data-block-size N     sectors [128]
 *   --nr-data-blocks N      0 = data_blocks_top * (1 + free-frac) + 1 [0]
 *   --fill F                mapped / virtual size of an origin [0.6]
 *   --run-frac F            share of an origin's blocks written in runs [0.8]
 *   --run-mean F            mean run length, blocks [32]
 *   --rewrite-run-frac F    share of post-snapshot writes that are runs [0.5]
 *   --rewrite-run-mean F    their mean length [8]
 *   --snap-diverge F        share of a snapshot rewritten after it is taken [0.05]
 *   --origin-diverge F      share of the source rewritten after a snapshot [0.02]
 *   --discard-prob F        a write that hits mapped blocks discards them [0.1]
 *   --grow-prob F           a write that hits unmapped blocks maps them [0.3]
 *   --snap-of-snap-prob F   a snapshot is taken of an earlier snapshot [0.2]
 *   --hole-prob F           an allocation skips a gap in data space [0.002]
 *   --hole-mean F           mean gap length, blocks [64]
 *   --hole-fixed            every gap is exactly --hole-mean blocks (evenly spread
 *                           data: bench/scale.sh's maxdata) [exponential]
 *   --free-frac F           free data space beyond the top [0.2]
 *   --alloc-chunk N         data allocation granule, blocks; 0 = none
 *                           [auto: mappings per device / 8, 16..512]
 *   --binary                write metadata instead of XML (needs -o)
 *   --metadata-blocks N     size of a created metadata file, 4 KiB blocks
 *                           [an estimate from the mappings, at most the
 *                           format's limit of 4161600 (~15.9 GiB); sparse]
 *   --compact-counts        the restorer's data counts in a compact map (2 bits a
 *                           block, pages on demand) instead of its byte map: for
 *                           huge sparse data devices (bench/scale.sh's maxdata)
 *   --dedup-order N         log2 of the restorer's leaf-sharing table slots
 *                           (24 bytes each) [auto: two per leaf, 17..24]
 *
 * Model.  Each origin (dev_id 0..origins-1, created at time 0) gets
 * mappings / (origins + snapshots) mapped blocks spread over a virtual size
 * of that / --fill blocks: extents separated by exponential gaps, each a
 * run (2 + geometric(run-mean - 2) blocks) or a single block, --run-frac
 * of the blocks being in runs.  Then --snapshots events; event e bumps the
 * pool time to e, picks a source (the origins round robin, or with
 * --snap-of-snap-prob one of that origin's earlier snapshots), creates a
 * snapshot of it (the next dev_id) and applies post-snapshot writes to
 * both: over the virtual space, hits (1 block, or with --rewrite-run-frac
 * a run of mean --rewrite-run-mean) at a rate of --snap-diverge on the
 * snapshot and --origin-diverge on the source.  A hit on mapped blocks
 * rewrites them (new data blocks, time e) or, with --discard-prob, unmaps
 * them; a hit on unmapped blocks maps them with --grow-prob.  Untouched
 * blocks stay shared between the snapshot, its source and their relatives,
 * so data blocks are shared by up to 1 + snapshots devices and whole
 * mapping leaves are identical between devices.
 *
 * Each origin's initial writes and each post-snapshot write set is a
 * "layer": a stream of extents in origin order drawn from its own PRNG
 * (xoshiro256**, seeded from --seed and the layer's number by splitmix64).
 * A device is the stack of the layers of its ancestry up to the moment it
 * was snapshotted from, plus its own; it is produced by sweeping its
 * layers' streams together in origin order, so no device's mappings are
 * ever held in memory: memory is O(devices + layers) whatever the number
 * of mappings.  Each layer owns a range of "local" data offsets, in origin
 * order, with a gap of 1 + geometric(--hole-mean) before an allocation
 * with --hole-prob (a hit reserves data for all its blocks, so discards
 * and hits that do not grow leave free blocks too).  The layers written
 * together (all the origins' initial writes; the snapshot's and the
 * source's writes of one event) share data space: their local offsets are
 * cut into chunks of --alloc-chunk blocks, and the chunks are placed in a
 * pseudo-random order (a keyed Feistel permutation) so that devices
 * interleave in data space; partial last chunks are packed at the end.  A
 * run that crosses a chunk boundary is split in data space, as in a pool
 * with concurrent writers.  Batches follow each other in data space.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir/ir.h"
#include "cmd/restore.h"
#include "util/cli.h"
#include "util/parse.h"
#include "xml/xml_writer.h"

#define PROG "gen_pool"
#define MD_BLOCK 4096u
#define MAX_MD_BLOCKS (255ull * 16320)     /* the metadata space map's limit */
#define MAX_DEVICES (1ull << 24)           /* dev ids and times are 24 bits */

/*----------------------------------------------------------------*/
/* configuration */

struct config {
	uint64_t origins, snapshots, mappings, seed;
	uint64_t data_block_size, nr_data_blocks, alloc_chunk;
	double fill, run_frac, run_mean, rewrite_run_frac, rewrite_run_mean;
	double snap_diverge, origin_diverge, discard_prob, grow_prob;
	double snap_of_snap_prob, hole_prob, hole_mean, free_frac;
	int auto_chunk;
};

struct preset {
	const char *name;
	uint64_t origins, snapshots, mappings;
};

static const struct preset presets[] = {
	{ "tiny", 2, 3, 2000 },
	{ "small", 4, 6, 100000 },
	{ "medium", 8, 16, 2000000 },
	{ "large", 16, 32, 20000000 },
};

/*----------------------------------------------------------------*/
/* randomness: splitmix64 seeding, xoshiro256**, no libm */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t mix64(uint64_t z)
{
	return splitmix(&z);
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ mix64(stream + 0x1234567ull);

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Probability p as a threshold on a 64-bit draw. */
static uint64_t threshold(double p)
{
	if (p <= 0)
		return 0;
	if (p >= 1)
		return UINT64_MAX;
	return (uint64_t)(p * 18446744073709551616.0);
}

static inline int chance(struct rng *r, uint64_t thr)
{
	return thr && (thr == UINT64_MAX || rng_next(r) < thr);
}

/* Uniform in [0, n). */
static uint64_t below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Natural log of x in (0, 1]: exponent plus an atanh series. */
static double ln01(double x)
{
	uint64_t bits;
	double f, s, s2, p;
	int e;

	memcpy(&bits, &x, sizeof(bits));
	e = (int)((bits >> 52) & 0x7ff) - 1023;
	bits = (bits & ((1ull << 52) - 1)) | (1023ull << 52);
	memcpy(&f, &bits, sizeof(f));          /* x = f * 2^e, f in [1, 2) */
	if (f > 1.4142135623730951) {
		f *= 0.5;
		e++;
	}
	s = (f - 1) / (f + 1);
	s2 = s * s;
	p = 1 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 +
	    s2 * (1.0 / 11 + s2 * (1.0 / 13))))));
	return e * 0.6931471805599453 + 2 * s * p;
}

/* floor() of an exponential variate of mean m (a geometric length). */
static int hole_fixed;   /* --hole-fixed */

static uint64_t geom(struct rng *r, double m)
{
	double u, v;

	if (m <= 0)
		return 0;
	u = (double)((rng_next(r) >> 11) + 1) * (1.0 / 9007199254740992.0);   /* (0, 1] */
	v = -m * ln01(u);
	return v >= 1e18 ? (uint64_t)1e18 : (uint64_t)v;
}

/*----------------------------------------------------------------*/
/* the pool: devices, layers, batches */

enum { L_BASE, L_HITS };

struct layer {
	int kind;
	uint32_t event;          /* 0 for an origin's writes; the mappings' time */
	uint64_t stream;         /* PRNG stream number */
	uint64_t hit_thr;        /* hits: rate as the share of blocks hit */
	double gap_mean;         /* hits: mean gap between hits */
	uint32_t batch;
	uint64_t size;           /* local data offsets used */
	uint64_t full;           /* full chunks */
	uint64_t first_chunk;    /* among its batch's full chunks */
	uint64_t tail_at;        /* data block of its partial chunk */
};

struct batch {
	uint64_t base;           /* first data block */
	uint64_t nr_full;        /* full chunks, permuted */
	uint64_t key;
};

struct device {
	uint64_t dev_id, transaction;
	uint32_t creation_time, snap_time;
	int64_t parent;          /* source device index, -1 for an origin */
	uint32_t cut;            /* event at which it was snapshotted from parent */
	uint32_t *own;           /* its own layers, in event order */
	size_t nr_own, cap_own;
	uint64_t count;          /* mapped blocks (count_all) */
	/* stats of the last production */
	uint64_t mapped, lines;
};

struct cursor {
	const struct layer *l;
	size_t idx;              /* place in the device's stack */
	struct rng r;
	uint64_t pos, done, off; /* generator state */
	uint64_t s, e, xoff;     /* current extent [s, e), local data offset */
	int have, active, discard, grow;
};

struct sweep {
	struct cursor *cur;
	struct cursor **heap;    /* by next boundary */
	struct cursor **act;     /* active extents, by stack order */
	size_t n, nheap, nact;
};

struct pool {
	struct config c;
	uint64_t per_dev, virt, chunk;
	/* origin layout */
	uint64_t run_thr, hole_thr, discard_thr, grow_thr, rrun_thr;
	double gap_mean, run_len_mean, rrun_len_mean;
	struct layer *layers;
	size_t nr_layers;
	struct batch *batches;
	size_t nr_batches;
	struct device *devs;
	size_t nr_devs;
	uint32_t time;
	uint64_t transaction;
	uint64_t top, nr_data_blocks;
	uint64_t total_count, total_mapped, total_lines;
	/* sweep workspace, sized for the deepest stack */
	struct sweep w;
	uint32_t *stack;
	size_t *chain;
};

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(EXIT_FAIL);
	}
	return p;
}

static void own_push(struct device *d, uint32_t layer)
{
	if (d->nr_own == d->cap_own) {
		d->cap_own = d->cap_own ? 2 * d->cap_own : 4;
		d->own = realloc(d->own, d->cap_own * sizeof(*d->own));
		if (!d->own) {
			fprintf(stderr, PROG ": out of memory\n");
			exit(EXIT_FAIL);
		}
	}
	d->own[d->nr_own++] = layer;
}

/*----------------------------------------------------------------*/
/* layer streams */

static void cursor_init(const struct pool *p, struct cursor *c, const struct layer *l, size_t idx)
{
	memset(c, 0, sizeof(*c));
	c->l = l;
	c->idx = idx;
	rng_seed(&c->r, p->c.seed, l->stream);
	if (l->kind == L_HITS)
		c->pos = geom(&c->r, l->gap_mean);
}

/* The layer's next extent into c->s, c->e, c->xoff; c->have = 0 at the end. */
static void cursor_next(const struct pool *p, struct cursor *c)
{
	uint64_t len;

	c->have = 0;
	if (c->l->kind == L_BASE) {
		if (c->done >= p->per_dev)
			return;
		if (p->gap_mean > 0)
			c->pos += geom(&c->r, p->gap_mean);
		len = chance(&c->r, p->run_thr) ? 2 + geom(&c->r, p->run_len_mean) : 1;
		if (len > p->per_dev - c->done)
			len = p->per_dev - c->done;
	} else {
		len = chance(&c->r, p->rrun_thr) ? 2 + geom(&c->r, p->rrun_len_mean) : 1;
		c->discard = chance(&c->r, p->discard_thr);
		c->grow = chance(&c->r, p->grow_thr);
	}
	if (c->pos >= p->virt)
		return;
	if (len > p->virt - c->pos)
		len = p->virt - c->pos;
	if (chance(&c->r, p->hole_thr))
		c->off += 1 + (hole_fixed ? (uint64_t)p->c.hole_mean : geom(&c->r, p->c.hole_mean));
	c->s = c->pos;
	c->e = c->pos + len;
	c->xoff = c->off;
	c->have = 1;
	c->pos += len;
	c->done += len;
	c->off += len;
	if (c->l->kind == L_HITS)
		c->pos += geom(&c->r, c->l->gap_mean);
}

/*----------------------------------------------------------------*/
/* data placement */

/* A keyed permutation of [0, n): a Feistel network, cycle-walked. */
static uint64_t permute(uint64_t x, uint64_t n, uint64_t key)
{
	unsigned bits, half;
	uint64_t mask;

	if (n <= 1)
		return x;
	bits = 64 - (unsigned)__builtin_clzll(n - 1);
	half = (bits + 1) / 2;
	mask = (1ull << half) - 1;
	do {
		uint64_t l = x >> half, r = x & mask;
		for (uint64_t i = 0; i < 4; i++) {
			uint64_t t = l ^ (mix64(r ^ key ^ (i << 56)) & mask);
			l = r;
			r = t;
		}
		x = (l << half) | r;
	} while (x >= n);
	return x;
}

/* Data block of local offset off of layer l, and how many follow it contiguously. */
static uint64_t place(const struct pool *p, const struct layer *l, uint64_t off, uint64_t *run)
{
	const struct batch *b = &p->batches[l->batch];

	if (p->chunk && off / p->chunk < l->full) {
		uint64_t j = off / p->chunk, in = off % p->chunk;
		*run = p->chunk - in;
		return b->base + permute(l->first_chunk + j, b->nr_full, b->key) * p->chunk + in;
	}
	*run = UINT64_MAX;
	return l->tail_at + (off - l->full * p->chunk);
}

/*----------------------------------------------------------------*/
/* the sweep: one device's mappings in origin order */

struct sink {
	const struct ir_visitor *v;  /* NULL: count only */
	int have;
	uint64_t ob, db, len;
	uint32_t t;
	uint64_t mapped, lines;
};

static int sink_flush(struct sink *k)
{
	int r = 0;

	if (!k->have)
		return 0;
	k->have = 0;
	k->lines++;
	if (k->len == 1) {
		if (k->v->single_map)
			r = k->v->single_map(k->v->ctx, k->ob, k->db, k->t);
	} else if (k->v->range_map) {
		r = k->v->range_map(k->v->ctx, k->ob, k->db, k->len, k->t);
	}
	return r;
}

static int sink_put(struct sink *k, uint64_t ob, uint64_t db, uint64_t len, uint32_t t)
{
	int r;

	if (k->have && ob == k->ob + k->len && db == k->db + k->len && t == k->t) {
		k->len += len;
		return 0;
	}
	r = sink_flush(k);
	if (r)
		return r;
	k->have = 1;
	k->ob = ob;
	k->db = db;
	k->len = len;
	k->t = t;
	return 0;
}

/* blocks [ob, ob + len) mapped by cursor c's current extent */
static int emit(const struct pool *p, struct sink *k, const struct cursor *c, uint64_t ob,
		uint64_t len)
{
	uint64_t off = c->xoff + (ob - c->s);

	k->mapped += len;
	if (!k->v)
		return 0;
	while (len) {
		uint64_t run, db = place(p, c->l, off, &run), n = len < run ? len : run;
		int r = sink_put(k, ob, db, n, c->l->event);
		if (r)
			return r;
		ob += n;
		off += n;
		len -= n;
	}
	return 0;
}


static inline uint64_t boundary(const struct cursor *c)
{
	return c->active ? c->e : c->s;
}

static void heap_push(struct sweep *w, struct cursor *c)
{
	size_t i = w->nheap++;

	while (i) {
		size_t up = (i - 1) / 2;
		if (boundary(w->heap[up]) <= boundary(c))
			break;
		w->heap[i] = w->heap[up];
		i = up;
	}
	w->heap[i] = c;
}

static struct cursor *heap_pop(struct sweep *w)
{
	struct cursor *top = w->heap[0], *last = w->heap[--w->nheap];
	size_t i = 0;

	for (;;) {
		size_t ch = 2 * i + 1;
		if (ch >= w->nheap)
			break;
		if (ch + 1 < w->nheap && boundary(w->heap[ch + 1]) < boundary(w->heap[ch]))
			ch++;
		if (boundary(last) <= boundary(w->heap[ch]))
			break;
		w->heap[i] = w->heap[ch];
		i = ch;
	}
	if (w->nheap)
		w->heap[i] = last;
	return top;
}

static void act_add(struct sweep *w, struct cursor *c)
{
	size_t i = w->nact++;

	while (i && w->act[i - 1]->idx > c->idx) {
		w->act[i] = w->act[i - 1];
		i--;
	}
	w->act[i] = c;
	c->active = 1;
}

static void act_del(struct sweep *w, struct cursor *c)
{
	size_t i = 0;

	while (w->act[i] != c)
		i++;
	memmove(&w->act[i], &w->act[i + 1], (w->nact - i - 1) * sizeof(*w->act));
	w->nact--;
	c->active = 0;
}

/* What [from, to) holds: evaluate the active extents bottom-up. */
static int segment(const struct pool *p, const struct sweep *w, struct sink *k, uint64_t from,
		   uint64_t to)
{
	const struct cursor *src = NULL;

	for (size_t i = 0; i < w->nact; i++) {
		const struct cursor *c = w->act[i];
		if (c->l->kind == L_BASE)
			src = c;
		else if (src)
			src = c->discard ? NULL : c;
		else if (c->grow)
			src = c;
	}
	return src ? emit(p, k, src, from, to - from) : 0;
}

/* The device's layer stack, bottom first, into out (room for every layer). */
static size_t stack_of(const struct pool *p, size_t dev, uint32_t *out, size_t *chain)
{
	size_t depth = 0, n = 0;
	uint32_t cut = UINT32_MAX;

	for (int64_t d = (int64_t)dev; d >= 0; d = p->devs[d].parent)
		chain[depth++] = (size_t)d;
	while (depth--) {
		const struct device *d = &p->devs[chain[depth]];
		/* layers of an ancestor count up to the event its child was taken at */
		cut = depth ? p->devs[chain[depth - 1]].cut : UINT32_MAX;
		for (size_t i = 0; i < d->nr_own; i++)
			if (p->layers[d->own[i]].event < cut)
				out[n++] = d->own[i];
	}
	return n;
}

static int sweep_device(const struct pool *p, struct sweep *w, const uint32_t *stack, size_t n,
			struct sink *k)
{
	uint64_t at = 0;
	int r;

	w->n = n;
	w->nheap = w->nact = 0;
	for (size_t i = 0; i < n; i++) {
		struct cursor *c = &w->cur[i];
		cursor_init(p, c, &p->layers[stack[i]], i);
		cursor_next(p, c);
		if (c->have)
			heap_push(w, c);
	}
	while (w->nheap) {
		uint64_t q = boundary(w->heap[0]);
		if (q > at && w->nact) {
			r = segment(p, w, k, at, q);
			if (r)
				return r;
		}
		at = q;
		while (w->nheap && boundary(w->heap[0]) == q) {
			struct cursor *c = heap_pop(w);
			if (c->active) {
				act_del(w, c);
				cursor_next(p, c);
				if (c->have)
					heap_push(w, c);
			} else {
				act_add(w, c);
				heap_push(w, c);
			}
		}
	}
	return k->v ? sink_flush(k) : 0;
}

/*----------------------------------------------------------------*/
/* building the pool */

static uint64_t pow2_floor(uint64_t x)
{
	return x ? 1ull << (63 - __builtin_clzll(x)) : 0;
}

static uint32_t add_layer(struct pool *p, int kind, uint32_t event, double rate, uint32_t batch)
{
	struct layer *l = &p->layers[p->nr_layers];
	double hit_mean = 1 + p->c.rewrite_run_frac * (p->c.rewrite_run_mean - 1);

	memset(l, 0, sizeof(*l));
	l->kind = kind;
	l->event = event;
	l->stream = p->nr_layers + 1;
	l->batch = batch;
	if (kind == L_HITS)
		l->gap_mean = rate >= 1 ? 0 : hit_mean * (1 / rate - 1);
	return (uint32_t)p->nr_layers++;
}

static void build(struct pool *p)
{
	const struct config *c = &p->c;
	uint64_t ndev = c->origins + c->snapshots, next_id = c->origins;
	double run_blocks, n_runs, n_ext;
	size_t **family, *fam_n;
	struct rng r;

	p->per_dev = c->mappings / (ndev ? ndev : 1);
	if (!p->per_dev)
		p->per_dev = 1;
	p->virt = (uint64_t)((double)p->per_dev / c->fill);
	if (p->virt < p->per_dev)
		p->virt = p->per_dev;
	run_blocks = (double)p->per_dev * c->run_frac;
	n_runs = run_blocks / (c->run_mean > 1 ? c->run_mean : 1);
	n_ext = n_runs + ((double)p->per_dev - run_blocks);
	if (n_ext < 1)
		n_ext = 1;
	p->run_thr = threshold(n_runs / n_ext);
	p->gap_mean = (double)(p->virt - p->per_dev) / n_ext;
	p->run_len_mean = c->run_mean - 2 > 0.5 ? c->run_mean - 2 : 0.5;
	p->rrun_thr = threshold(c->rewrite_run_frac);
	p->rrun_len_mean = c->rewrite_run_mean - 2 > 0.5 ? c->rewrite_run_mean - 2 : 0.5;
	p->hole_thr = threshold(c->hole_prob);
	p->discard_thr = threshold(c->discard_prob);
	p->grow_thr = threshold(c->grow_prob);
	if (c->auto_chunk) {
		uint64_t ch = p->per_dev / 8;
		p->chunk = pow2_floor(ch < 16 ? 16 : ch > 512 ? 512 : ch);
	} else {
		p->chunk = c->alloc_chunk;
	}

	p->devs = xcalloc(ndev, sizeof(*p->devs));
	p->layers = xcalloc(c->origins + 2 * c->snapshots, sizeof(*p->layers));
	p->batches = xcalloc(1 + c->snapshots, sizeof(*p->batches));
	p->nr_batches = 1;
	family = xcalloc(c->origins, sizeof(*family));
	fam_n = xcalloc(c->origins, sizeof(*fam_n));
	for (uint64_t i = 0; i < c->origins; i++) {
		struct device *d = &p->devs[p->nr_devs++];
		d->dev_id = i;
		d->transaction = ++p->transaction;
		d->parent = -1;
		own_push(d, add_layer(p, L_BASE, 0, 0, 0));
		family[i] = xcalloc(1 + c->snapshots / c->origins + 1, sizeof(**family));
		family[i][fam_n[i]++] = i;
	}
	rng_seed(&r, c->seed, 0);
	for (uint64_t e = 1; e <= c->snapshots && c->origins; e++) {
		uint64_t root = (e - 1) % c->origins;
		size_t src = family[root][0];
		struct device *s, *d;
		if (fam_n[root] > 1 && chance(&r, threshold(c->snap_of_snap_prob)))
			src = family[root][1 + below(&r, fam_n[root] - 1)];
		p->time = (uint32_t)e;
		d = &p->devs[p->nr_devs];
		s = &p->devs[src];
		d->dev_id = next_id++;
		d->transaction = ++p->transaction;
		d->creation_time = d->snap_time = (uint32_t)e;
		d->parent = (int64_t)src;
		d->cut = (uint32_t)e;
		s->snap_time = (uint32_t)e;
		family[root][fam_n[root]++] = p->nr_devs++;
		if (c->snap_diverge > 0 || c->origin_diverge > 0)
			p->nr_batches++;
		if (c->snap_diverge > 0)
			own_push(d, add_layer(p, L_HITS, (uint32_t)e, c->snap_diverge,
					      (uint32_t)p->nr_batches - 1));
		if (c->origin_diverge > 0)
			own_push(s, add_layer(p, L_HITS, (uint32_t)e, c->origin_diverge,
					      (uint32_t)p->nr_batches - 1));
	}
	for (uint64_t i = 0; i < c->origins; i++)
		free(family[i]);
	free(family);
	free(fam_n);

	/* the layers' data sizes (a pass over each stream), then placement */
	for (size_t i = 0; i < p->nr_layers; i++) {
		struct cursor cu;
		cursor_init(p, &cu, &p->layers[i], 0);
		do
			cursor_next(p, &cu);
		while (cu.have);
		p->layers[i].size = cu.off;
	}
	for (size_t b = 0; b < p->nr_batches; b++) {
		struct batch *bt = &p->batches[b];
		uint64_t tail;
		bt->base = p->top;
		bt->key = mix64(c->seed ^ mix64(b + 0xba7c4ull));
		for (size_t i = 0; i < p->nr_layers; i++) {
			struct layer *l = &p->layers[i];
			if (l->batch != b)
				continue;
			l->full = p->chunk ? l->size / p->chunk : 0;
			l->first_chunk = bt->nr_full;
			bt->nr_full += l->full;
		}
		tail = bt->base + bt->nr_full * p->chunk;
		for (size_t i = 0; i < p->nr_layers; i++) {
			struct layer *l = &p->layers[i];
			if (l->batch != b)
				continue;
			l->tail_at = tail;
			tail += l->size - l->full * p->chunk;
		}
		p->top = tail;
	}
	p->w.cur = xcalloc(p->nr_layers, sizeof(*p->w.cur));
	p->w.heap = xcalloc(p->nr_layers, sizeof(*p->w.heap));
	p->w.act = xcalloc(p->nr_layers, sizeof(*p->w.act));
	p->stack = xcalloc(p->nr_layers, sizeof(*p->stack));
	p->chain = xcalloc(p->nr_devs, sizeof(*p->chain));
}

static void pool_release(struct pool *p)
{
	for (size_t i = 0; i < p->nr_devs; i++)
		free(p->devs[i].own);
	free(p->devs);
	free(p->layers);
	free(p->batches);
	free(p->w.cur);
	free(p->w.heap);
	free(p->w.act);
	free(p->stack);
	free(p->chain);
}

/*----------------------------------------------------------------*/
/* producing the event stream */

/* Every device's mapped_blocks: a sweep that only counts. */
static void count_all(struct pool *p)
{
	p->total_count = 0;
	for (size_t i = 0; i < p->nr_devs; i++) {
		struct sink count = { 0 };
		size_t n = stack_of(p, i, p->stack, p->chain);
		sweep_device(p, &p->w, p->stack, n, &count);
		p->devs[i].count = count.mapped;
		p->total_count += count.mapped;
	}
}

static int produce(struct pool *p, const struct ir_visitor *v)
{
	struct ir_superblock sb = {
		.uuid = "",
		.time = p->time,
		.transaction = p->transaction,
		.has_flags = 1,
		.version = 2,
		.data_block_size = (uint32_t)p->c.data_block_size,
		.nr_data_blocks = p->nr_data_blocks,
	};
	int r = 0;

	p->total_mapped = p->total_lines = 0;
	if (v->begin_superblock)
		r = v->begin_superblock(v->ctx, &sb);
	for (size_t i = 0; i < p->nr_devs && !r; i++) {
		struct device *d = &p->devs[i];
		size_t n = stack_of(p, i, p->stack, p->chain);
		struct sink out = { .v = v };
		struct ir_device dev = {
			.dev_id = d->dev_id,
			.mapped_blocks = d->count,
			.transaction = d->transaction,
			.creation_time = d->creation_time,
			.snap_time = d->snap_time,
		};
		if (v->begin_device)
			r = v->begin_device(v->ctx, &dev);
		if (!r)
			r = sweep_device(p, &p->w, p->stack, n, &out);
		if (!r && out.mapped != d->count) {
			fprintf(stderr, PROG ": internal error: device %" PRIu64 " counted %" PRIu64
				" blocks, produced %" PRIu64 "\n", d->dev_id, d->count, out.mapped);
			r = -EPROTO;
		}
		if (!r && v->end_device)
			r = v->end_device(v->ctx);
		d->mapped = out.mapped;
		d->lines = out.lines;
		p->total_mapped += out.mapped;
		p->total_lines += out.lines;
	}
	if (!r && v->end_superblock)
		r = v->end_superblock(v->ctx);
	return r == IR_STOP ? 0 : r;
}

/* thin_ir_producer: the restorer reports a failed callback's reason itself */
static int produce_restore(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return produce(ctx, v);
}

/*----------------------------------------------------------------*/
/* output */

static int write_stats(const struct pool *p, const char *path)
{
	const struct config *c = &p->c;
	FILE *f = fopen(path, "w");
	int pair = 0;

	if (!f)
		return -errno;
	fprintf(f, "{\n \"devices\": [");
	for (size_t i = 0; i < p->nr_devs; i++) {
		const struct device *d = &p->devs[i];
		fprintf(f, "%s\n  {\"dev_id\": %" PRIu64 ", \"mapped_blocks\": %" PRIu64
			", \"lines\": %" PRIu64 ", \"origin\": ", i ? "," : "", d->dev_id, d->mapped,
			d->lines);
		if (d->parent < 0)
			fprintf(f, "null");
		else
			fprintf(f, "%" PRIu64, p->devs[d->parent].dev_id);
		fprintf(f, ", \"virt_blocks\": %" PRIu64 "}", p->virt);
	}
	fprintf(f, "\n ],\n \"lines\": %" PRIu64 ",\n \"mappings\": %" PRIu64
		",\n \"nr_data_blocks\": %" PRIu64 ",\n \"data_blocks_top\": %" PRIu64
		",\n \"time\": %u,\n \"transaction\": %" PRIu64 ",\n",
		p->total_lines, p->total_mapped, p->nr_data_blocks, p->top, p->time, p->transaction);
	for (size_t i = 0; i < p->nr_devs && !pair; i++)
		if (p->devs[i].parent >= 0) {
			fprintf(f, " \"delta_pair\": [%" PRIu64 ", %" PRIu64 "],\n",
				p->devs[p->devs[i].parent].dev_id, p->devs[i].dev_id);
			pair = 1;
		}
	fprintf(f, " \"config\": {\"origins\": %" PRIu64 ", \"snapshots\": %" PRIu64
		", \"mappings\": %" PRIu64 ", \"seed\": %" PRIu64 ", \"data_block_size\": %" PRIu64
		", \"nr_data_blocks\": %" PRIu64 ", \"alloc_chunk\": %" PRIu64
		", \"fill\": %.17g, \"run_frac\": %.17g, \"run_mean\": %.17g"
		", \"rewrite_run_frac\": %.17g, \"rewrite_run_mean\": %.17g"
		", \"snap_diverge\": %.17g, \"origin_diverge\": %.17g, \"discard_prob\": %.17g"
		", \"grow_prob\": %.17g, \"snap_of_snap_prob\": %.17g, \"hole_prob\": %.17g"
		", \"hole_mean\": %.17g, \"free_frac\": %.17g}\n}\n",
		c->origins, c->snapshots, c->mappings, c->seed, c->data_block_size,
		c->nr_data_blocks, p->chunk, c->fill, c->run_frac, c->run_mean,
		c->rewrite_run_frac, c->rewrite_run_mean, c->snap_diverge, c->origin_diverge,
		c->discard_prob, c->grow_prob, c->snap_of_snap_prob, c->hole_prob, c->hole_mean,
		c->free_frac);
	if (ferror(f) | (fclose(f) != 0))
		return -EIO;
	return 0;
}

static int write_xml(struct pool *p, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
	struct xml_writer *xw;
	struct ir_visitor v;
	int r, r2;

	if (!f) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		return -1;
	}
	xw = xml_writer_create(f);
	if (!xw) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	memset(&v, 0, sizeof(v));
	xml_writer_visitor(xw, &v);
	r = produce(p, &v);
	r2 = xml_writer_flush(xw);
	xml_writer_destroy(xw);
	if (!r)
		r = r2;
	if (f != stdout && fclose(f) != 0 && !r)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, PROG ": writing %s: %s\n", path, strerror(-r));
		return -1;
	}
	return 0;
}

static uint64_t estimate_md_blocks(const struct pool *p)
{
	/*
	 * Mapping leaves (the restorer fills them 2/3 or more: 96 is slack)
	 * with nothing shared, internal nodes, the space maps, details.
	 */
	uint64_t n = p->total_count / 96 + p->nr_data_blocks / 16000 + 2 * p->nr_devs + 1024;

	return n > MAX_MD_BLOCKS ? MAX_MD_BLOCKS : n;
}

/*
 * Leaf-sharing table (24 bytes a slot): twice as many slots as leaves
 * without sharing, so that an origin's leaves are still there when its
 * snapshots come (a 10^9-mapping pool: 2^24 slots, 384 MiB).
 */
static unsigned auto_dedup_order(const struct pool *p)
{
	uint64_t leaves = p->total_count / 128;
	unsigned order = 17;

	while (order < 24 && (1ull << order) < 2 * leaves)
		order++;
	return order;
}

static int compact_counts;   /* --compact-counts */

static int write_binary(struct pool *p, const char *path, uint64_t md_blocks, unsigned dedup_order)
{
	struct thin_restore_opts o;
	struct thin_restore_stats st;
	struct stat sb;
	char err[1024];
	int r;

	if (stat(path, &sb) < 0 || !S_ISBLK(sb.st_mode)) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (!md_blocks)
			md_blocks = estimate_md_blocks(p);
		if (fd < 0 || ftruncate(fd, (off_t)(md_blocks * MD_BLOCK)) < 0) {
			fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	memset(&o, 0, sizeof(o));
	o.dedup_order = dedup_order ? dedup_order : auto_dedup_order(p);
	o.compact_data = compact_counts;
	r = thin_restore_path(path, &o, produce_restore, p, &st, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, PROG ": %s\n", err[0] ? err : strerror(-r));
		return -1;
	}
	fprintf(stderr, PROG ": %s: %" PRIu64 " metadata blocks used, %" PRIu64
		" leaves shared\n", path, st.metadata_blocks, st.shared_leaves);
	return 0;
}

/*----------------------------------------------------------------*/
/* command line */

enum {
	O_SCALE = 256, O_STATS, O_ORIGINS, O_SNAPSHOTS, O_MAPPINGS, O_SEED, O_DBS, O_NRDB,
	O_FILL, O_RUN_FRAC, O_RUN_MEAN, O_RRUN_FRAC, O_RRUN_MEAN, O_SNAP_DIV, O_ORIGIN_DIV,
	O_DISCARD, O_GROW, O_SOS, O_HOLE_PROB, O_HOLE_MEAN, O_FREE, O_CHUNK, O_BINARY,
	O_MDBLOCKS, O_DEDUP, O_COMPACT, O_HOLE_FIXED,
};

static void usage(FILE *f)
{
	fputs("Usage: gen_pool [--scale tiny|small|medium|large] [-o out.xml|-] [--stats out.json]\n"
	      "                [--origins N] [--snapshots N] [--mappings N] [--seed N]\n"
	      "                [--data-block-size N] [--nr-data-blocks N] [--fill F]\n"
	      "                [--run-frac F] [--run-mean F] [--rewrite-run-frac F]\n"
	      "                [--rewrite-run-mean F] [--snap-diverge F] [--origin-diverge F]\n"
	      "                [--discard-prob F] [--grow-prob F] [--snap-of-snap-prob F]\n"
	      "                [--hole-prob F] [--hole-mean F] [--hole-fixed] [--free-frac F]\n"
	      "                [--alloc-chunk N]\n"
	      "                [--binary -o meta.bin [--metadata-blocks N] [--dedup-order N]\n"
	      "                 [--compact-counts]]\n"
	      "Writes a synthetic pool as thin_dump XML, or with --binary as metadata\n"
	      "(see the comment at the top of tests/tools/gen_pool.c for the model).\n",
	      f);
}

static int bad(const char *what, const char *val)
{
	fprintf(stderr, PROG ": bad --%s: '%s'\n", what, val);
	usage(stderr);
	return EXIT_USAGE;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, 'o' },
		{ "scale", required_argument, NULL, O_SCALE },
		{ "stats", required_argument, NULL, O_STATS },
		{ "origins", required_argument, NULL, O_ORIGINS },
		{ "snapshots", required_argument, NULL, O_SNAPSHOTS },
		{ "mappings", required_argument, NULL, O_MAPPINGS },
		{ "seed", required_argument, NULL, O_SEED },
		{ "data-block-size", required_argument, NULL, O_DBS },
		{ "nr-data-blocks", required_argument, NULL, O_NRDB },
		{ "fill", required_argument, NULL, O_FILL },
		{ "run-frac", required_argument, NULL, O_RUN_FRAC },
		{ "run-mean", required_argument, NULL, O_RUN_MEAN },
		{ "rewrite-run-frac", required_argument, NULL, O_RRUN_FRAC },
		{ "rewrite-run-mean", required_argument, NULL, O_RRUN_MEAN },
		{ "snap-diverge", required_argument, NULL, O_SNAP_DIV },
		{ "origin-diverge", required_argument, NULL, O_ORIGIN_DIV },
		{ "discard-prob", required_argument, NULL, O_DISCARD },
		{ "grow-prob", required_argument, NULL, O_GROW },
		{ "snap-of-snap-prob", required_argument, NULL, O_SOS },
		{ "hole-prob", required_argument, NULL, O_HOLE_PROB },
		{ "hole-mean", required_argument, NULL, O_HOLE_MEAN },
		{ "free-frac", required_argument, NULL, O_FREE },
		{ "alloc-chunk", required_argument, NULL, O_CHUNK },
		{ "binary", no_argument, NULL, O_BINARY },
		{ "metadata-blocks", required_argument, NULL, O_MDBLOCKS },
		{ "dedup-order", required_argument, NULL, O_DEDUP },
		{ "compact-counts", no_argument, NULL, O_COMPACT },
		{ "hole-fixed", no_argument, NULL, O_HOLE_FIXED },
		{ NULL, 0, NULL, 0 },
	};
	struct config c = {
		.origins = 4, .snapshots = 6, .mappings = 100000, .seed = 1,
		.data_block_size = 128, .fill = 0.6, .run_frac = 0.8, .run_mean = 32,
		.rewrite_run_frac = 0.5, .rewrite_run_mean = 8, .snap_diverge = 0.05,
		.origin_diverge = 0.02, .discard_prob = 0.1, .grow_prob = 0.3,
		.snap_of_snap_prob = 0.2, .hole_prob = 0.002, .hole_mean = 64, .free_frac = 0.2,
		.auto_chunk = 1,
	};
	/* explicit counts override the preset whatever the order */
	uint64_t set_o = UINT64_MAX, set_s = UINT64_MAX, set_m = UINT64_MAX, md_blocks = 0;
	uint64_t dedup_order = 0;
	const char *output = "-", *stats = NULL;
	const struct preset *pre = NULL;
	struct pool p;
	int opt, li = 0, binary = 0, r;
	uint64_t u;

	while ((opt = getopt_long(argc, argv, "ho:", longopts, &li)) != -1) {
		double *dp = NULL, lo = 0, hi = 1;
		uint64_t *up = NULL;
		switch (opt) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'o':
			output = optarg;
			continue;
		case O_SCALE:
			pre = NULL;
			for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
				if (!strcmp(optarg, presets[i].name))
					pre = &presets[i];
			if (!pre)
				return bad("scale", optarg);
			continue;
		case O_STATS:
			stats = optarg;
			continue;
		case O_BINARY:
			binary = 1;
			continue;
		case O_COMPACT:
			compact_counts = 1;
			continue;
		case O_HOLE_FIXED:
			hole_fixed = 1;
			continue;
		case O_ORIGINS: up = &set_o; break;
		case O_SNAPSHOTS: up = &set_s; break;
		case O_MAPPINGS: up = &set_m; break;
		case O_SEED: up = &c.seed; break;
		case O_DBS: up = &c.data_block_size; break;
		case O_NRDB: up = &c.nr_data_blocks; break;
		case O_MDBLOCKS: up = &md_blocks; break;
		case O_DEDUP: up = &dedup_order; break;
		case O_CHUNK: up = &c.alloc_chunk; c.auto_chunk = 0; break;
		case O_FILL: dp = &c.fill; lo = 1e-6; break;
		case O_RUN_FRAC: dp = &c.run_frac; break;
		case O_RUN_MEAN: dp = &c.run_mean; lo = 1; hi = 1e12; break;
		case O_RRUN_FRAC: dp = &c.rewrite_run_frac; break;
		case O_RRUN_MEAN: dp = &c.rewrite_run_mean; lo = 1; hi = 1e12; break;
		case O_SNAP_DIV: dp = &c.snap_diverge; break;
		case O_ORIGIN_DIV: dp = &c.origin_diverge; break;
		case O_DISCARD: dp = &c.discard_prob; break;
		case O_GROW: dp = &c.grow_prob; break;
		case O_SOS: dp = &c.snap_of_snap_prob; break;
		case O_HOLE_PROB: dp = &c.hole_prob; break;
		case O_HOLE_MEAN: dp = &c.hole_mean; hi = 1e12; break;
		case O_FREE: dp = &c.free_frac; hi = 1e6; break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
		if (up && parse_u64(optarg, &u) < 0)
			return bad(longopts[li].name, optarg);
		if (up)
			*up = u;
		if (dp && parse_double(optarg, lo, hi, dp) < 0)
			return bad(longopts[li].name, optarg);
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (pre) {
		c.origins = pre->origins;
		c.snapshots = pre->snapshots;
		c.mappings = pre->mappings;
	}
	if (set_o != UINT64_MAX)
		c.origins = set_o;
	if (set_s != UINT64_MAX)
		c.snapshots = set_s;
	if (set_m != UINT64_MAX)
		c.mappings = set_m;
	if (c.origins + c.snapshots >= MAX_DEVICES || c.origins >= MAX_DEVICES ||
	    c.snapshots >= MAX_DEVICES) {
		fprintf(stderr, PROG ": at most %llu devices\n", MAX_DEVICES - 1);
		return EXIT_USAGE;
	}
	if (!c.data_block_size || c.data_block_size > UINT32_MAX)
		return bad("data-block-size", "0");
	if (binary && !strcmp(output, "-")) {
		fprintf(stderr, PROG ": --binary needs -o FILE\n");
		return EXIT_USAGE;
	}
	if (dedup_order > 30)
		return bad("dedup-order", "> 30");
	if (md_blocks && md_blocks > MAX_MD_BLOCKS)
		fprintf(stderr, PROG ": warning: only the first %llu metadata blocks can be used\n",
			MAX_MD_BLOCKS);

	memset(&p, 0, sizeof(p));
	p.c = c;
	build(&p);
	p.nr_data_blocks = c.nr_data_blocks ? c.nr_data_blocks
					    : (uint64_t)((double)p.top * (1 + c.free_frac)) + 1;
	if (p.nr_data_blocks < p.top) {
		fprintf(stderr, PROG ": --nr-data-blocks %" PRIu64 " < %" PRIu64 " blocks used\n",
			p.nr_data_blocks, p.top);
		return EXIT_FAIL;
	}
	count_all(&p);
	if (binary ? write_binary(&p, output, md_blocks, (unsigned)dedup_order) : write_xml(&p, output)) {
		pool_release(&p);
		return EXIT_FAIL;
	}
	if (stats && (r = write_stats(&p, stats)) < 0) {
		fprintf(stderr, PROG ": %s: %s\n", stats, strerror(-r));
		pool_release(&p);
		return EXIT_FAIL;
	}
	fprintf(stderr, PROG ": %zu devices, %" PRIu64 " mappings, %" PRIu64
		" xml mapping lines, nr_data_blocks %" PRIu64 "\n",
		p.nr_devs, p.total_mapped, p.total_lines, p.nr_data_blocks);
	pool_release(&p);
	return EXIT_OK;
}
