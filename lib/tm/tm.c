#include "tm/tm.h"

/* Virtual blocks a dry run may count beyond the device: the format's largest
 * metadata device (255 bitmaps of 16320 entries, FORMAT.md §7). */
#define TM_MAX_VIRTUAL_BLOCKS (255u * 16320u)

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TM_QUEUE_BLOCKS 1024u   /* 4 MiB of sequential writes per pwrite */

struct tm_mgr {
	struct ioe *ioe;
	uint64_t nr_blocks;      /* real blocks */
	uint64_t cap;            /* ref counts kept for [0, cap): real + virtual */
	struct rcmap *refs;
	struct rcmap *reserved;
	int all_reserved;
	uint64_t next;           /* allocation cursor (blocks are never freed for reuse) */
	uint64_t nr_used;
	int overflowed;
	uint8_t *q;              /* queued run [q_start, q_start + q_nr) */
	uint64_t q_start;
	unsigned q_nr;
	uint8_t *bounce;
};

int tm_create(struct ioe *ioe, uint64_t nr_blocks, struct tm_mgr **out)
{
	struct tm_mgr *tm = calloc(1, sizeof(*tm));

	if (!tm)
		return -ENOMEM;
	tm->ioe = ioe;
	tm->nr_blocks = nr_blocks;
	tm->cap = nr_blocks + TM_MAX_VIRTUAL_BLOCKS;
	tm->refs = rcmap_create(tm->cap);
	tm->q = ioe_alloc_blocks(TM_QUEUE_BLOCKS);
	tm->bounce = ioe_alloc_blocks(1);
	if (!tm->refs || !tm->q || !tm->bounce) {
		tm_destroy(tm);
		return -ENOMEM;
	}
	*out = tm;
	return 0;
}

void tm_destroy(struct tm_mgr *tm)
{
	if (!tm)
		return;
	rcmap_destroy(tm->refs);
	rcmap_destroy(tm->reserved);
	free(tm->q);
	free(tm->bounce);
	free(tm);
}

void tm_set_reserved(struct tm_mgr *tm, struct rcmap *old)
{
	rcmap_destroy(tm->reserved);
	tm->reserved = old;
}

void tm_reserve_all(struct tm_mgr *tm)
{
	tm->all_reserved = 1;
}

static int is_reserved(const struct tm_mgr *tm, uint64_t b)
{
	if (tm->all_reserved)
		return 1;
	return tm->reserved && b < rcmap_nr_blocks(tm->reserved) && rcmap_get(tm->reserved, b);
}

int tm_claim(struct tm_mgr *tm, uint64_t loc)
{
	if (loc >= tm->nr_blocks)
		return -ENOSPC;
	if (!rcmap_get(tm->refs, loc))
		tm->nr_used++;
	return rcmap_set(tm->refs, loc, 1);
}

int tm_alloc(struct tm_mgr *tm, uint64_t *loc)
{
	uint64_t b = tm->next;

	while (b < tm->nr_blocks && (rcmap_get(tm->refs, b) || is_reserved(tm, b)))
		b++;
	if (b >= tm->nr_blocks && !tm->overflowed) {
		/* out of room: from now on only count (virtual blocks) */
		tm->overflowed = 1;
		tm->q_nr = 0;
	}
	while (b < tm->cap && rcmap_get(tm->refs, b))
		b++;
	if (b >= tm->cap)
		return -ENOSPC;
	tm->next = b + 1;
	tm->nr_used++;
	*loc = b;
	return rcmap_set(tm->refs, b, 1);
}

int tm_inc(struct tm_mgr *tm, uint64_t loc)
{
	return rcmap_inc(tm->refs, loc);
}

int tm_dec(struct tm_mgr *tm, uint64_t loc)
{
	return rcmap_dec(tm->refs, loc);
}

uint32_t tm_ref(const struct tm_mgr *tm, uint64_t loc)
{
	return rcmap_get(tm->refs, loc);
}

static int queue_write(struct tm_mgr *tm)
{
	int r = 0;

	if (tm->q_nr && !tm->overflowed) {
		void *q = tm->q;
		r = ioe_write_swap(tm->ioe, tm->q_start, tm->q_nr, &q, TM_QUEUE_BLOCKS);
		tm->q = q;
	}
	tm->q_nr = 0;
	return r;
}

int tm_write(struct tm_mgr *tm, uint64_t loc, const struct bc_validator *v, void *data)
{
	int r;

	if (v)
		v->prepare(data, loc, MD_BLOCK_SIZE);
	if (tm->overflowed || loc >= tm->nr_blocks)
		return 0;   /* dry run: the caller will learn from tm_overflowed() */
	if (tm->q_nr && (loc != tm->q_start + tm->q_nr || tm->q_nr == TM_QUEUE_BLOCKS)) {
		r = queue_write(tm);
		if (r < 0)
			return r;
	}
	if (!tm->q_nr)
		tm->q_start = loc;
	memcpy(tm->q + (size_t)tm->q_nr * MD_BLOCK_SIZE, data, MD_BLOCK_SIZE);
	tm->q_nr++;
	return 0;
}

int tm_read(struct tm_mgr *tm, uint64_t loc, void *buf)
{
	int r;

	if (tm->q_nr && loc >= tm->q_start && loc < tm->q_start + tm->q_nr) {
		memcpy(buf, tm->q + (size_t)(loc - tm->q_start) * MD_BLOCK_SIZE, MD_BLOCK_SIZE);
		return 0;
	}
	if (tm->overflowed || loc >= tm->nr_blocks)
		return -ENOSPC;   /* the block was never written (dry run) */
	r = ioe_read(tm->ioe, loc, 1, tm->bounce);
	if (r < 0)
		return r;
	memcpy(buf, tm->bounce, MD_BLOCK_SIZE);
	return 0;
}

int tm_flush(struct tm_mgr *tm)
{
	int r = queue_write(tm);

	if (r < 0)
		return r;
	if (tm->overflowed)
		return 0;
	return ioe_flush(tm->ioe);
}

int tm_commit(struct tm_mgr *tm, const struct bc_validator *v, void *sb_block)
{
	int r;

	if (tm->overflowed)
		return -ENOSPC;
	r = tm_flush(tm);
	if (r < 0)
		return r;
	v->prepare(sb_block, 0, MD_BLOCK_SIZE);
	memcpy(tm->bounce, sb_block, MD_BLOCK_SIZE);
	r = ioe_write(tm->ioe, 0, 1, tm->bounce);
	if (r < 0)
		return r;
	return ioe_flush(tm->ioe);
}

uint64_t tm_nr_blocks(const struct tm_mgr *tm)
{
	return tm->nr_blocks;
}

const struct rcmap *tm_refs(const struct tm_mgr *tm)
{
	return tm->refs;
}

int tm_overflowed(const struct tm_mgr *tm)
{
	return tm->overflowed;
}

uint64_t tm_nr_used(const struct tm_mgr *tm)
{
	return tm->nr_used;
}
