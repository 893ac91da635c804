#include "block-cache/block-cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc/crc32c.h"
#include "util/endian.h"
#include "util/vec.h"

struct bc_block {
	uint64_t loc;
	uint8_t *data;
	const struct bc_validator *v;
	unsigned refs;
	int dirty;
	int valid;               /* data loaded */
	struct bc_block *hnext;  /* hash chain */
	struct bc_block *prev, *next;  /* LRU of unheld blocks (head = oldest) */
	int on_lru;
};

struct bc {
	struct ioe *e;
	size_t max_blocks, nr_blocks;
	size_t nr_buckets;
	struct bc_block **buckets;
	struct bc_block lru;     /* sentinel */
	struct bc_stats st;
	int write_error;
	struct bc_block *spare;  /* recycled blocks (data buffers kept) */
	size_t nr_spare;
	const uint32_t *type_salts;  /* bc_set_type_salts() */
	size_t nr_type_salts;
};

/*----------------------------------------------------------------*/

int bc_csum_check(const void *data, uint64_t loc, size_t len, uint32_t salt)
{
	if (crc_block_salt(data, len) != salt) {
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
		return -EILSEQ;
#endif
		/* fuzzing: a bad checksum is let through so the fuzzer gets past it */
	}
	if (get_le64((const uint8_t *)data + 8) != loc)
		return -ENOTBLK;
	return 0;
}

int bc_classify(int err, const void *data, size_t len, const uint32_t *salts, size_t nr)
{
	uint32_t got;

	if (err != -EILSEQ || !nr)
		return err;
	got = crc_block_salt(data, len);
	for (size_t i = 0; i < nr; i++)
		if (got == salts[i])
			return BC_WRONG_TYPE;
	return err;
}

void bc_csum_prepare(void *data, uint64_t loc, size_t len, uint32_t salt)
{
	put_le64((uint8_t *)data + 8, loc);
	put_le32(data, crc_block_csum(data, len, salt));
}

const char *bc_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case -EILSEQ:
		return "bad checksum";
	case -ENOTBLK:
		return "blocknr mismatch";
	case BC_WRONG_TYPE:
		return "wrong block type";
	case -EIO:
		return "io error";
	case -EINVAL:
		return "block out of range";
	default:
		return "error";
	}
}

/*----------------------------------------------------------------*/

struct bc *bc_create(struct ioe *e, size_t max_blocks)
{
	struct bc *bc = calloc(1, sizeof(*bc));

	if (!bc)
		return NULL;
	if (max_blocks < 16)
		max_blocks = 16;
	bc->e = e;
	bc->max_blocks = max_blocks;
	bc->nr_buckets = 1;
	while (bc->nr_buckets < max_blocks * 2)
		bc->nr_buckets <<= 1;
	bc->buckets = calloc(bc->nr_buckets, sizeof(*bc->buckets));
	if (!bc->buckets) {
		free(bc);
		return NULL;
	}
	bc->lru.prev = bc->lru.next = &bc->lru;
	return bc;
}

void bc_set_type_salts(struct bc *bc, const uint32_t *salts, size_t nr)
{
	bc->type_salts = salts;
	bc->nr_type_salts = nr;
}

static size_t bucket(const struct bc *bc, uint64_t loc)
{
	return (size_t)((loc * 0x9E3779B97F4A7C15ull) >> 20) & (bc->nr_buckets - 1);
}

static void lru_del(struct bc_block *b)
{
	if (!b->on_lru)
		return;
	b->prev->next = b->next;
	b->next->prev = b->prev;
	b->on_lru = 0;
}

static void lru_add_tail(struct bc *bc, struct bc_block *b)
{
	b->prev = bc->lru.prev;
	b->next = &bc->lru;
	bc->lru.prev->next = b;
	bc->lru.prev = b;
	b->on_lru = 1;
}

static struct bc_block *lookup(struct bc *bc, uint64_t loc)
{
	for (struct bc_block *b = bc->buckets[bucket(bc, loc)]; b; b = b->hnext)
		if (b->loc == loc)
			return b;
	return NULL;
}

static void unhash(struct bc *bc, struct bc_block *b)
{
	struct bc_block **pp = &bc->buckets[bucket(bc, b->loc)];

	while (*pp && *pp != b)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = b->hnext;
}

static int write_block(struct bc *bc, struct bc_block *b)
{
	int r;

	if (b->v && b->v->prepare)
		b->v->prepare(b->data, b->loc, MD_BLOCK_SIZE);
	r = ioe_write(bc->e, b->loc, 1, b->data);
	if (r < 0) {
		bc->write_error = r;
		return r;
	}
	bc->st.writes++;
	b->dirty = 0;
	return 0;
}

static void free_block(struct bc *bc, struct bc_block *b)
{
	unhash(bc, b);
	lru_del(b);
	bc->nr_blocks--;
	/* keep a few buffers: allocating and zeroing fresh pages for every
	 * read is measurable when a walk streams through many blocks */
	if (bc->nr_spare < 64) {
		b->hnext = bc->spare;
		bc->spare = b;
		bc->nr_spare++;
		return;
	}
	free(b->data);
	free(b);
}

/* Evict unheld blocks until under the bound. */
static void shrink(struct bc *bc)
{
	while (bc->nr_blocks >= bc->max_blocks && bc->lru.next != &bc->lru) {
		struct bc_block *b = bc->lru.next;
		if (b->dirty && write_block(bc, b) < 0)
			return;
		free_block(bc, b);
		bc->st.evictions++;
	}
}

void bc_set_max_blocks(struct bc *bc, size_t max_blocks)
{
	bc->max_blocks = max_blocks < 16 ? 16 : max_blocks;
}

static struct bc_block *alloc_block(struct bc *bc, uint64_t loc)
{
	struct bc_block *b;
	size_t h;

	shrink(bc);
	if (bc->spare) {
		uint8_t *data;

		b = bc->spare;
		bc->spare = b->hnext;
		bc->nr_spare--;
		data = b->data;
		memset(b, 0, sizeof(*b));
		b->data = data;
	} else {
		b = calloc(1, sizeof(*b));
		if (!b)
			return NULL;
		b->data = ioe_alloc_blocks(1);
		if (!b->data) {
			free(b);
			return NULL;
		}
	}
	b->loc = loc;
	h = bucket(bc, loc);
	b->hnext = bc->buckets[h];
	bc->buckets[h] = b;
	bc->nr_blocks++;
	return b;
}

static int validate(struct bc *bc, struct bc_block *b, const struct bc_validator *v)
{
	if (!v)
		return 0;
	if (b->v && b->v != v)
		return -EINVAL;
	if (!b->v) {
		int r = v->check ? v->check(b->data, b->loc, MD_BLOCK_SIZE) : 0;

		r = bc_classify(r, b->data, MD_BLOCK_SIZE, bc->type_salts, bc->nr_type_salts);
		if (r < 0)
			return r;
		b->v = v;
	}
	return 0;
}

static void hold(struct bc_block *b)
{
	lru_del(b);
	b->refs++;
}

int bc_get(struct bc *bc, uint64_t loc, const struct bc_validator *v, struct bc_block **out)
{
	struct bc_block *b;
	int r;

	if (loc >= bc->e->nr_blocks)
		return -EINVAL;
	b = lookup(bc, loc);
	if (b) {
		bc->st.hits++;
	} else {
		b = alloc_block(bc, loc);
		if (!b)
			return -ENOMEM;
		r = ioe_read(bc->e, loc, 1, b->data);
		if (r < 0) {
			free_block(bc, b);
			return r;
		}
		bc->st.reads++;
		b->valid = 1;
	}
	r = validate(bc, b, v);
	if (r < 0) {
		if (!b->refs && !b->dirty) {
			if (!b->on_lru)
				lru_add_tail(bc, b);
		}
		return r;
	}
	hold(b);
	*out = b;
	return 0;
}

int bc_new(struct bc *bc, uint64_t loc, const struct bc_validator *v, struct bc_block **out)
{
	struct bc_block *b;

	if (loc >= bc->e->nr_blocks)
		return -EINVAL;
	b = lookup(bc, loc);
	if (b && b->refs)
		return -EBUSY;
	if (!b) {
		b = alloc_block(bc, loc);
		if (!b)
			return -ENOMEM;
	}
	memset(b->data, 0, MD_BLOCK_SIZE);
	b->valid = 1;
	b->v = v;
	b->dirty = 1;
	hold(b);
	*out = b;
	return 0;
}

void bc_put(struct bc *bc, struct bc_block *b)
{
	if (!b->refs) {
		fprintf(stderr, "bc_put: bad put of block %llu\n", (unsigned long long)b->loc);
		abort();
	}
	if (--b->refs == 0)
		lru_add_tail(bc, b);
}

const void *bc_data(const struct bc_block *b)
{
	return b->data;
}

void *bc_data_mut(struct bc_block *b)
{
	b->dirty = 1;
	return b->data;
}

uint64_t bc_loc(const struct bc_block *b)
{
	return b->loc;
}

void bc_forget(struct bc *bc, uint64_t loc)
{
	struct bc_block *b = lookup(bc, loc);

	if (b && !b->refs && !b->dirty)
		free_block(bc, b);
}

static int cmp_loc(const void *a, const void *b)
{
	uint64_t x = (*(struct bc_block *const *)a)->loc, y = (*(struct bc_block *const *)b)->loc;
	return x < y ? -1 : x > y;
}

int bc_flush(struct bc *bc)
{
	struct bc_block **dirty;
	size_t n = 0;
	int r = 0;

	dirty = malloc((bc->nr_blocks + 1) * sizeof(*dirty));
	if (!dirty)
		return -ENOMEM;
	for (size_t i = 0; i < bc->nr_buckets; i++)
		for (struct bc_block *b = bc->buckets[i]; b; b = b->hnext)
			if (b->dirty)
				dirty[n++] = b;
	vec_sort(dirty, n, sizeof(*dirty), cmp_loc);
	for (size_t i = 0; i < n && !r; i++)
		r = write_block(bc, dirty[i]);
	free(dirty);
	if (!r)
		r = bc->write_error;
	if (!r)
		r = ioe_flush(bc->e);
	return r;
}

void bc_prefetch(struct bc *bc, const uint64_t *blocks, size_t nr)
{
	enum { BATCH = 256 };
	struct bc_block *bl[BATCH];
	uint64_t locs[BATCH];
	void *bufs[BATCH];
	int res[BATCH];

	if (!bc->e->ops->read_batch)
		return;
	for (size_t i = 0; i < nr;) {
		unsigned n = 0;
		for (; i < nr && n < BATCH && n + 16 < bc->max_blocks; i++) {
			struct bc_block *b;
			if (blocks[i] >= bc->e->nr_blocks || lookup(bc, blocks[i]))
				continue;
			b = alloc_block(bc, blocks[i]);
			if (!b)
				return;
			b->refs = 1; /* pin while in flight */
			bl[n] = b;
			locs[n] = blocks[i];
			bufs[n] = b->data;
			n++;
		}
		if (!n)
			continue;
		if (ioe_read_batch(bc->e, locs, n, bufs, res) < 0)
			for (unsigned k = 0; k < n; k++)
				res[k] = -EIO;
		for (unsigned k = 0; k < n; k++) {
			bl[k]->refs = 0;
			if (res[k] < 0) {
				free_block(bc, bl[k]);
			} else {
				bl[k]->valid = 1;
				bc->st.reads++;
				lru_add_tail(bc, bl[k]);
			}
		}
	}
}

void bc_destroy(struct bc *bc)
{
	if (!bc)
		return;
	for (size_t i = 0; i < bc->nr_buckets; i++) {
		struct bc_block *b = bc->buckets[i];
		while (b) {
			struct bc_block *n = b->hnext;
			if (b->refs) {
				fprintf(stderr, "bc_destroy: block %llu still held\n",
					(unsigned long long)b->loc);
				abort();
			}
			free(b->data);
			free(b);
			b = n;
		}
	}
	while (bc->spare) {
		struct bc_block *n = bc->spare->hnext;
		free(bc->spare->data);
		free(bc->spare);
		bc->spare = n;
	}
	free(bc->buckets);
	free(bc);
}

struct ioe *bc_engine(struct bc *bc)
{
	return bc->e;
}

uint64_t bc_nr_blocks(const struct bc *bc)
{
	return bc->e->nr_blocks;
}

void bc_get_stats(const struct bc *bc, struct bc_stats *st)
{
	*st = bc->st;
}
