#include "refcount/refcount.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*----------------------------------------------------------------*/
/*
 * In-core counting map, compact and sparse.  The blocks are cut into
 * regions of RC_REGION blocks, allocated on the first non-zero count:
 * memory follows the blocks in use, not the size of the pool (a pool of
 * 2^40 data blocks costs an 8 MiB directory until it is used).
 * A region holds a byte per block (0..254, 255 = look in the side table,
 * which holds the rare counts above 254).
 *
 * A compact map holds 2 bits per block in one reserved mapping (pages of
 * 16384 blocks take memory when first written), 3 = look in the side
 * table.  Pools with snapshots hold many counts of 3 and more: a region
 * reaching RCMAP_PROMOTE side entries becomes a byte region (its 2-bit
 * pages are given back), and from then on takes the byte path, inline
 * increments included.  (A map all in 2 bits doubled the cost of an
 * increment in thin_check and saved nothing on such pools.)
 */

#define RC_REGION_SHIFT RCMAP_REGION_SHIFT
#define RC_REGION (1ull << RC_REGION_SHIFT)
#define RC_MASK (RC_REGION - 1)

struct ov_entry {
	uint64_t block;
	uint32_t count;
};

struct rcmap *rcmap_create(uint64_t nr_blocks)
{
	struct rcmap *sm = calloc(1, sizeof(*sm));

	if (!sm)
		return NULL;
	sm->nr_blocks = nr_blocks;
	sm->nr_regions = (nr_blocks + RC_MASK) >> RC_REGION_SHIFT;
	sm->regions = calloc(sm->nr_regions ? sm->nr_regions : 1, sizeof(*sm->regions));
	if (!sm->regions) {
		free(sm);
		return NULL;
	}
	return sm;
}

/*
 * A dense map's regions come in pairs from one 2 MiB-aligned mapping of
 * 2 MiB that the kernel may back with a huge page: random increments
 * over a large pool then miss the TLB far less.  Zero-filled on demand.
 */
#define HUGE_CHUNK (2 * RC_REGION)

struct rcmap *rcmap_create_dense(uint64_t nr_blocks)
{
	struct rcmap *sm = rcmap_create(nr_blocks);

	if (sm)
		sm->dense = 1;
	return sm;
}

static uint8_t *huge_chunk(void)
{
	uint8_t *p = mmap(NULL, 2 * HUGE_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + HUGE_CHUNK - 1) & ~(uintptr_t)(HUGE_CHUNK - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((uint8_t *)a + HUGE_CHUNK, (uintptr_t)p + 2 * HUGE_CHUNK - a - HUGE_CHUNK);
	madvise((void *)a, HUGE_CHUNK, MADV_HUGEPAGE);   /* a hint: may fail */
	return (uint8_t *)a;
}

void rcmap_destroy(struct rcmap *sm)
{
	if (!sm)
		return;
	/* promoted regions of a compact map live in its bytes_area, unmapped below */
	for (uint64_t i = 0; i < sm->nr_regions && !sm->bytes_area; i++) {
		if (!sm->dense)
			free(sm->regions[i].bytes);
		else if (!(i & 1) && sm->regions[i].bytes)
			munmap(sm->regions[i].bytes, HUGE_CHUNK);
	}
	free(sm->regions);
	free(sm->ov);
	if (sm->packed)
		munmap(sm->packed, sm->packed_len);
	free(sm->packed_written);
	if (sm->bytes_area)
		munmap(sm->bytes_area, sm->bytes_area_len);
	free(sm->cinfo);
	free(sm);
}

uint64_t rcmap_nr_blocks(const struct rcmap *sm)
{
	return sm->nr_blocks;
}

/* Bytes of a region's 2-bit part in memory: only its written pages are. */
static uint64_t packed_resident(const struct rcmap *sm, uint64_t ri)
{
	size_t off = (size_t)((ri << RC_REGION_SHIFT) / 4), len = RC_REGION / 4;
	long psz = sysconf(_SC_PAGESIZE);
	unsigned char vec[RC_REGION / 4 / 4096 + 1];
	uint64_t m = 0;

	if (off + len > sm->packed_len)
		len = sm->packed_len - off;
	if (psz != 4096 || mincore(sm->packed + off, len, vec) < 0)
		return len;   /* at most */
	for (size_t i = 0; i < (len + 4095) / 4096; i++)
		m += (vec[i] & 1) ? 4096 : 0;
	return m;
}

uint64_t rcmap_mem_bytes(const struct rcmap *sm)
{
	uint64_t m = sizeof(*sm) + sm->nr_regions * sizeof(*sm->regions) +
		     sm->ov_cap * sizeof(*sm->ov);

	for (uint64_t i = 0; i < sm->nr_regions; i++) {
		m += sm->regions[i].bytes ? RC_REGION : 0;
		if (sm->packed && !sm->regions[i].bytes && (sm->cinfo[i] & RCMAP_TOUCHED))
			m += packed_resident(sm, i);
	}
	if (sm->cinfo)
		m += sm->nr_regions * sizeof(*sm->cinfo);
	return m;
}

static size_t ov_slot(const struct rcmap *sm, uint64_t b)
{
	size_t i = (size_t)((b * 0x9E3779B97F4A7C15ull) >> 17) & (sm->ov_cap - 1);

	while (sm->ov[i].count && sm->ov[i].block != b)
		i = (i + 1) & (sm->ov_cap - 1);
	return i;
}

static int ov_grow(struct rcmap *sm)
{
	size_t cap = sm->ov_cap ? sm->ov_cap * 2 : 64;
	struct ov_entry *old = sm->ov, *n = malloc(cap * sizeof(*n));
	size_t old_cap = sm->ov_cap;

	if (!n)
		return -ENOMEM;
	/* written before it is read: no zero page to replace (see first_write) */
	memset(n, 0, cap * sizeof(*n));
	sm->ov = n;
	sm->ov_cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].count)
			sm->ov[ov_slot(sm, old[i].block)] = old[i];
	free(old);
	return 0;
}

/* The in-region value: 0..254; 255 = side table. */
static inline unsigned small_get(const struct rcmap_region *r, uint64_t i)
{
	return r->bytes ? r->bytes[i] : 0;
}

/* Compact maps: a region without bytes keeps 2 bits per block (3 = side table). */
#define PK_ESC 3u

static inline int packed_region(const struct rcmap *sm, const struct rcmap_region *r)
{
	return sm->packed && !r->bytes;
}

/*
 * The 2-bit map's pages come on demand, and a count is read before it is
 * raised: on a page not yet written that read maps the shared zero page,
 * and the write after it replaces the page, a TLB flush that interrupts
 * every other thread of the process (5 % of thin_check's time on a dense
 * pool).  The first write to each 4 KiB of the map is therefore a locked
 * OR of zero, a write fault that allocates the page at once and leaves
 * its bytes as they are.
 */
static inline void first_write(struct rcmap *sm, uint8_t *p)
{
	size_t pg = (size_t)(p - sm->packed) >> 12;
	uint64_t bit = 1ull << (pg & 63);

	if (sm->packed_written[pg >> 6] & bit)
		return;
	sm->packed_written[pg >> 6] |= bit;
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("lock orb $0, %0" : "+m"(*p) : : "memory");
#else
	__atomic_fetch_or(p, 0, __ATOMIC_RELAXED);
#endif
}

static inline unsigned packed_get(const struct rcmap *sm, uint64_t b)
{
	return (sm->packed[b >> 2] >> ((b & 3) * 2)) & 3u;
}

static inline void packed_put(struct rcmap *sm, uint64_t b, unsigned v)
{
	uint8_t *p = &sm->packed[b >> 2];
	unsigned sh = (unsigned)(b & 3) * 2;

	*p = (uint8_t)((*p & ~(3u << sh)) | (v << sh));
}

/* A packed byte's four counts as four bytes. */
#define X1(x) { (x) & 3, ((x) >> 2) & 3, ((x) >> 4) & 3, ((x) >> 6) & 3 }
#define X4(x) X1(x), X1((x) + 1), X1((x) + 2), X1((x) + 3)
#define X16(x) X4(x), X4((x) + 4), X4((x) + 8), X4((x) + 12)
#define X64(x) X16(x), X16((x) + 16), X16((x) + 32), X16((x) + 48)
static const uint8_t expand4[256][4] = { X64(0), X64(64), X64(128), X64(192) };

/* 1 when a packed byte holds a 3 (a count in the side table) */
static inline int has_esc(unsigned x)
{
	return (x & (x >> 1) & 0x55u) != 0;
}

/*
 * The address space for a compact map's promoted regions, region i at
 * i MiB, zero-filled on demand and advised for huge pages: a promotion then
 * faults in one 2 MiB page (its region and the one beside it, which a pool
 * that promotes one region mostly promotes too) where 256 small ones cost
 * five times as long.  Never more memory than a byte map of the same
 * blocks.  Without the reservation (strict overcommit), calloc per region.
 */
static void bytes_area_reserve(struct rcmap *sm)
{
	size_t len = (size_t)sm->nr_regions * RC_REGION + HUGE_CHUNK;
	uint8_t *p, *a;

	if (!sm->nr_regions)
		return;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return;
	a = (uint8_t *)(((uintptr_t)p + HUGE_CHUNK - 1) & ~(uintptr_t)(HUGE_CHUNK - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	len -= (size_t)(a - p);
	if (len > (size_t)sm->nr_regions * RC_REGION) {
		munmap(a + (size_t)sm->nr_regions * RC_REGION, len - (size_t)sm->nr_regions * RC_REGION);
		len = (size_t)sm->nr_regions * RC_REGION;
	}
	madvise(a, len, MADV_HUGEPAGE);   /* a hint: may fail */
	sm->bytes_area = a;
	sm->bytes_area_len = len;
}

struct rcmap *rcmap_create_compact(uint64_t nr_blocks)
{
	struct rcmap *sm = rcmap_create(nr_blocks);
	size_t len = (size_t)((nr_blocks + 3) / 4);
	void *p;

	if (!sm)
		return NULL;
	sm->cinfo = calloc(sm->nr_regions ? sm->nr_regions : 1, sizeof(*sm->cinfo));
	if (!sm->cinfo) {
		rcmap_destroy(sm);
		return NULL;
	}
	sm->packed_len = len ? len : 1;
	p = mmap(NULL, sm->packed_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	sm->packed_written = calloc((sm->packed_len >> 18) + 1, sizeof(uint64_t));
	if (p == MAP_FAILED || !sm->packed_written) {
		if (p != MAP_FAILED)
			munmap(p, sm->packed_len);
		free(sm->packed_written);
		sm->packed_written = NULL;
		/* no address space for it: a byte map holds the same counts */
		free(sm->cinfo);
		sm->cinfo = NULL;
		return sm;
	}
	sm->packed = p;
	bytes_area_reserve(sm);
	return sm;
}

int rcmap_is_compact(const struct rcmap *sm)
{
	return sm->packed != NULL;
}

uint32_t rcmap_get_slow(const struct rcmap *sm, uint64_t b)
{
	const struct rcmap_region *r;
	unsigned v;

	if (b >= sm->nr_blocks)
		return 0;
	r = &sm->regions[b >> RC_REGION_SHIFT];
	if (packed_region(sm, r)) {
		v = packed_get(sm, b);
		return v < PK_ESC ? v : sm->ov[ov_slot(sm, b)].count;
	}
	v = small_get(r, b & RC_MASK);
	if (v < 255)
		return v;
	return sm->ov[ov_slot(sm, b)].count;
}

/* Counts of [b, b + n) from 2-bit pages: 32 or 4 blocks at a time where it can. */
static void packed_counts8(const struct rcmap *sm, uint64_t b, uint64_t n, uint8_t *out)
{
	uint64_t j = 0;

	while (j < n) {
		uint64_t x = b + j;

		if (!(x & 31) && n - j >= 32) {
			uint64_t w;

			memcpy(&w, sm->packed + (x >> 2), sizeof(w));
			if (!w) {
				/* 32 blocks at count 0: sparse pools are mostly this */
				memset(out + j, 0, 32);
				j += 32;
				continue;
			}
		}
		if (!(x & 3) && n - j >= 4) {
			unsigned v = sm->packed[x >> 2];

			if (!has_esc(v)) {
				memcpy(out + j, expand4[v], 4);
				j += 4;
				continue;
			}
		}
		{
			unsigned v = packed_get(sm, x);
			uint32_t c = v < PK_ESC ? v : sm->ov[ov_slot(sm, x)].count;

			out[j++] = (uint8_t)(c < 255 ? c : 255);
		}
	}
}

void rcmap_get_counts8(const struct rcmap *sm, uint64_t base, uint64_t n, uint8_t *out)
{
	while (n) {
		uint64_t b = base, i = b & RC_MASK, k = RC_REGION - i;
		const struct rcmap_region *r;

		if (b >= sm->nr_blocks) {
			memset(out, 0, n);
			return;
		}
		r = &sm->regions[b >> RC_REGION_SHIFT];
		if (k > n)
			k = n;
		if (r->bytes) {
			memcpy(out, r->bytes + i, k);
		} else if (sm->packed && (sm->cinfo[b >> RC_REGION_SHIFT] & RCMAP_TOUCHED)) {
			packed_counts8(sm, b, k, out);
		} else {
			memset(out, 0, k);
		}
		out += k;
		base += k;
		n -= k;
	}
}

/* Eight count bytes as eight 2-bit fields (16 bits, field k: min(count, 3), high bit at 2k). */
static inline uint64_t fields8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull;
	uint64_t big = ((((x & 0xfcfcfcfcfcfcfcfcull) >> 2) + 0x3f3f3f3f3f3f3f3full) &
			0x4040404040404040ull) >> 6;           /* 1 in each byte >= 4 */
	uint64_t c = (x & 0x0303030303030303ull) | (big * 3);   /* min(count, 3) */
	uint64_t v = ((c & ones) << 1) | ((c >> 1) & ones);    /* the high bit first */

	v = (v | (v >> 6)) & 0x000f000f000f000full;
	v = (v | (v >> 12)) & 0x000000ff000000ffull;
	return (v | (v >> 24)) & 0xffffull;
}

static void fields_scalar(const uint8_t *c, uint64_t nwords, uint64_t *out)
{
	for (uint64_t w = 0; w < nwords; w++, c += 32) {
		uint64_t x[4];

		memcpy(x, c, sizeof(x));
		out[w] = fields8(le64toh(x[0])) | fields8(le64toh(x[1])) << 16 |
			 fields8(le64toh(x[2])) << 32 | fields8(le64toh(x[3])) << 48;
	}
}

#if defined(__x86_64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <immintrin.h>

/*
 * 32 counts a step: min(count, 3), then each count's high bit and low bit
 * moved to the top of a byte (shifts within 16-bit lanes: a count is at
 * most 3, so what crosses into the next byte is below its bit 7), the two
 * interleaved a byte each, and the tops gathered by movemask.  unpacklo
 * gives counts 0-7 and 16-23, unpackhi 8-15 and 24-31.
 */
__attribute__((target("avx2"))) static void fields_avx2(const uint8_t *c, uint64_t nwords,
							uint64_t *out)
{
	const __m256i three = _mm256_set1_epi8(3);

	for (uint64_t w = 0; w < nwords; w++, c += 32) {
		__m256i x = _mm256_min_epu8(_mm256_loadu_si256((const __m256i *)(const void *)c), three);
		__m256i hi = _mm256_slli_epi16(x, 6), lo = _mm256_slli_epi16(x, 7);
		uint64_t a = (uint32_t)_mm256_movemask_epi8(_mm256_unpacklo_epi8(hi, lo));
		uint64_t b = (uint32_t)_mm256_movemask_epi8(_mm256_unpackhi_epi8(hi, lo));

		out[w] = (a & 0xffff) | (b & 0xffff) << 16 | (a >> 16) << 32 | (b >> 16) << 48;
	}
}

void rcmap_fields_of_counts(const uint8_t *counts, uint64_t nwords, uint64_t *out, int plain)
{
	if (!plain && __builtin_cpu_supports("avx2"))
		fields_avx2(counts, nwords, out);
	else
		fields_scalar(counts, nwords, out);
}
#else
void rcmap_fields_of_counts(const uint8_t *counts, uint64_t nwords, uint64_t *out, int plain)
{
	(void)plain;
	fields_scalar(counts, nwords, out);
}
#endif

void rcmap_get_fields2(const struct rcmap *sm, uint64_t base, uint64_t nwords, uint64_t *out)
{
	const uint64_t lows = 0x5555555555555555ull;

	while (nwords) {
		uint64_t b = base, i = b & RC_MASK, ri = b >> RC_REGION_SHIFT, k = (RC_REGION - i) / 32;
		const struct rcmap_region *r;

		if (b >= sm->nr_blocks) {
			memset(out, 0, nwords * sizeof(*out));
			return;
		}
		r = &sm->regions[ri];
		if (k > nwords)
			k = nwords;
		if (r->bytes) {
			/* a byte region has all 2^20 bytes, 0 beyond the map's end */
			rcmap_fields_of_counts(r->bytes + i, k, out, 0);
		} else if (sm->packed && (sm->cinfo[ri] & RCMAP_TOUCHED)) {
			/* ours: low bit first; the whole words inside the map, then the rest */
			uint64_t whole = (sm->nr_blocks - b) / 32, w = 0;

			for (; w < k && w < whole; w++) {
				uint64_t x;

				memcpy(&x, sm->packed + (b >> 2) + 8 * w, sizeof(x));
				x = le64toh(x);
				out[w] = (x & lows) << 1 | ((x >> 1) & lows);
			}
			for (; w < k; w++) {
				uint64_t f = 0;

				for (unsigned j = 0; j < 32 && b + 32 * w + j < sm->nr_blocks; j++) {
					uint64_t v = packed_get(sm, b + 32 * w + j);

					f |= ((v >> 1) | (v & 1) << 1) << (2 * j);
				}
				out[w] = f;
			}
		} else {
			memset(out, 0, k * sizeof(*out));
		}
		out += k;
		base += 32 * k;
		nwords -= k;
	}
}

static int region_reserve(struct rcmap *sm, struct rcmap_region *r)
{
	if (r->bytes)
		return 0;
	if (sm->dense) {
		/* both regions of the pair at once */
		uint64_t i = (uint64_t)(r - sm->regions) & ~1ull;
		uint8_t *p = huge_chunk();

		if (!p)
			return -ENOMEM;
		sm->regions[i].bytes = p;
		if (i + 1 < sm->nr_regions)
			sm->regions[i + 1].bytes = p + RC_REGION;
		return 0;
	}
	r->bytes = calloc(RC_REGION, 1);
	return r->bytes ? 0 : -ENOMEM;
}

static void ov_remove(struct rcmap *sm, uint64_t b)
{
	size_t i = ov_slot(sm, b);

	sm->ov[i].count = 0;
	sm->ov_nr--;
	/* re-insert the following entries of the cluster (no tombstones) */
	for (size_t j = (i + 1) & (sm->ov_cap - 1); sm->ov[j].count;
	     j = (j + 1) & (sm->ov_cap - 1)) {
		struct ov_entry e = sm->ov[j];
		sm->ov[j].count = 0;
		sm->ov[ov_slot(sm, e.block)] = e;
	}
}

/*
 * 64 counts from 16 packed bytes into 64 bytes, when none of them is 3 (in
 * the side table); 0 (nothing written) otherwise.  Each 2-bit field's
 * shift masked out of 16-bit lanes, then interleaved: byte p's fields
 * 0..3 are blocks 4p..4p+3.
 */
#if defined(__SSE2__)
#include <emmintrin.h>

static int expand64(const uint8_t *packed, uint8_t *out)
{
	const __m128i m3 = _mm_set1_epi8(3), m55 = _mm_set1_epi8(0x55);
	__m128i x = _mm_loadu_si128((const __m128i *)(const void *)packed);
	__m128i esc = _mm_and_si128(_mm_and_si128(x, _mm_srli_epi16(x, 1)), m55);
	__m128i v0, v1, v2, v3, a, b, c, d;

	if (_mm_movemask_epi8(_mm_cmpeq_epi8(esc, _mm_setzero_si128())) != 0xffff)
		return 0;
	v0 = _mm_and_si128(x, m3);
	v1 = _mm_and_si128(_mm_srli_epi16(x, 2), m3);
	v2 = _mm_and_si128(_mm_srli_epi16(x, 4), m3);
	v3 = _mm_and_si128(_mm_srli_epi16(x, 6), m3);
	a = _mm_unpacklo_epi8(v0, v1);
	b = _mm_unpackhi_epi8(v0, v1);
	c = _mm_unpacklo_epi8(v2, v3);
	d = _mm_unpackhi_epi8(v2, v3);
	_mm_storeu_si128((__m128i *)(void *)out, _mm_unpacklo_epi16(a, c));
	_mm_storeu_si128((__m128i *)(void *)(out + 16), _mm_unpackhi_epi16(a, c));
	_mm_storeu_si128((__m128i *)(void *)(out + 32), _mm_unpacklo_epi16(b, d));
	_mm_storeu_si128((__m128i *)(void *)(out + 48), _mm_unpackhi_epi16(b, d));
	return 1;
}
#else
static int expand64(const uint8_t *packed, uint8_t *out)
{
	for (unsigned p = 0; p < 16; p++)
		if (has_esc(packed[p]))
			return 0;
	for (unsigned p = 0; p < 16; p++)
		memcpy(out + 4 * p, expand4[packed[p]], 4);
	return 1;
}
#endif

/*
 * A compact region with many counts of 3 and more becomes a byte region:
 * its side entries below 255 move into the bytes, its 2-bit pages go back.
 */
static int promote(struct rcmap *sm, uint64_t ri)
{
	struct rcmap_region *r = &sm->regions[ri];
	uint64_t base = ri << RC_REGION_SHIFT, n = sm->nr_blocks - base;
	uint8_t *bytes = sm->bytes_area ? sm->bytes_area + (size_t)ri * RC_REGION : calloc(RC_REGION, 1);
	size_t pg = (size_t)(base / 4);

	if (!bytes)
		return -ENOMEM;
	if (n > RC_REGION)
		n = RC_REGION;
	for (uint64_t i = 0; i < n; i++) {
		unsigned v;

		if (!(i & 63) && n - i >= 64 && expand64(sm->packed + ((base + i) >> 2), bytes + i)) {
			i += 63;
			continue;
		}
		if (!(i & 3) && n - i >= 4 && !has_esc(sm->packed[(base + i) >> 2])) {
			memcpy(bytes + i, expand4[sm->packed[(base + i) >> 2]], 4);
			i += 3;
			continue;
		}
		v = packed_get(sm, base + i);
		if (v == PK_ESC) {
			uint32_t c = sm->ov[ov_slot(sm, base + i)].count;

			if (c < 255)
				ov_remove(sm, base + i);
			v = c < 255 ? c : 255;
		}
		bytes[i] = (uint8_t)v;
	}
	r->bytes = bytes;
	sm->cinfo[ri] = 0;
	/* base / 4 is a multiple of 2^18: page aligned */
	madvise(sm->packed + pg, (size_t)((n + 3) / 4), MADV_DONTNEED);
	for (size_t q = pg >> 12; q < (pg + (size_t)((n + 3) / 4) + 4095) >> 12; q++)
		sm->packed_written[q >> 6] &= ~(1ull << (q & 63));
	return 0;
}

static int packed_set(struct rcmap *sm, uint64_t b, uint32_t count)
{
	uint64_t ri = b >> RC_REGION_SHIFT;
	unsigned cur, want = count < PK_ESC ? count : PK_ESC;
	uint32_t old;

	if (count)
		first_write(sm, &sm->packed[b >> 2]);
	cur = packed_get(sm, b);
	old = cur < PK_ESC ? cur : sm->ov[ov_slot(sm, b)].count;

	if (want == PK_ESC && cur != PK_ESC) {
		if ((sm->ov_nr + 1) * 2 > sm->ov_cap && ov_grow(sm) < 0)
			return -ENOMEM;
		sm->ov_nr++;
		sm->cinfo[ri]++;
	} else if (want != PK_ESC && cur == PK_ESC) {
		ov_remove(sm, b);
		sm->cinfo[ri]--;
	}
	if (want == PK_ESC) {
		size_t s = ov_slot(sm, b);

		sm->ov[s].block = b;
		sm->ov[s].count = count;
	}
	if (want != cur)
		packed_put(sm, b, want);
	if (count)
		sm->cinfo[ri] |= RCMAP_TOUCHED;
	if (old && !count)
		sm->nr_allocated--;
	else if (!old && count)
		sm->nr_allocated++;
	if ((sm->cinfo[ri] & ~RCMAP_TOUCHED) >= RCMAP_PROMOTE)
		return promote(sm, ri);
	return 0;
}

int rcmap_set(struct rcmap *sm, uint64_t b, uint32_t count)
{
	struct rcmap_region *r;
	uint64_t i;
	unsigned cur, want = count < 255 ? count : 255;
	uint32_t old;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	r = &sm->regions[b >> RC_REGION_SHIFT];
	if (packed_region(sm, r))
		return packed_set(sm, b, count);
	i = b & RC_MASK;
	cur = small_get(r, i);
	if (!count && !r->bytes)
		return 0;
	if (region_reserve(sm, r) < 0)
		return -ENOMEM;
	old = cur < 255 ? cur : sm->ov[ov_slot(sm, b)].count;
	if (want == 255 && cur != 255) {
		if ((sm->ov_nr + 1) * 2 > sm->ov_cap && ov_grow(sm) < 0)
			return -ENOMEM;
		sm->ov_nr++;
	} else if (want != 255 && cur == 255) {
		ov_remove(sm, b);
	}
	if (want == 255) {
		size_t s = ov_slot(sm, b);

		sm->ov[s].block = b;
		sm->ov[s].count = count;
	}
	r->bytes[i] = (uint8_t)want;
	if (old && !count)
		sm->nr_allocated--;
	else if (!old && count)
		sm->nr_allocated++;
	return 0;
}

int rcmap_inc_slow(struct rcmap *sm, uint64_t b)
{
	uint32_t c;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	if (packed_region(sm, &sm->regions[b >> RC_REGION_SHIFT])) {
		unsigned v;

		first_write(sm, &sm->packed[b >> 2]);
		v = packed_get(sm, b);

		if (v < PK_ESC - 1) {
			/* 0 -> 1, 1 -> 2: the common case, in place */
			packed_put(sm, b, v + 1);
			sm->nr_allocated += !v;
			sm->cinfo[b >> RC_REGION_SHIFT] |= RCMAP_TOUCHED;
			return 0;
		}
	}
	c = rcmap_get(sm, b);
	if (c == UINT32_MAX)
		return -EOVERFLOW;
	return rcmap_set(sm, b, c + 1);
}

/*
 * Increments [b, b + n) of one 2-bit region while every count there is 0
 * or 1: a 64-bit word (32 counts) a step, the run's first and last words
 * under a mask.  Returns how many it did (it stops before the first count
 * of 2 or more).
 */
static uint64_t packed_inc_run(struct rcmap *sm, uint64_t b, uint64_t n)
{
	const uint64_t lows = 0x5555555555555555ull, highs = 0xAAAAAAAAAAAAAAAAull;
	uint64_t j = 0, zeros = 0;
	const uint8_t *page = NULL;

	while (j < n) {
		uint64_t x = b + j, w, field, hi;
		unsigned off = (unsigned)(x & 31), cnt = 32 - off;
		uint8_t *p = &sm->packed[(x >> 5) << 3];

		if (((uintptr_t)p & ~(uintptr_t)4095) != (uintptr_t)page) {
			page = (const uint8_t *)((uintptr_t)p & ~(uintptr_t)4095);
			first_write(sm, p);
		}
		if (cnt > n - j)
			cnt = (unsigned)(n - j);
		/* the fields of counts [off, off + cnt) of this word */
		field = (cnt == 32 ? ~0ull : ((1ull << (2 * cnt)) - 1)) << (2 * off);
		memcpy(&w, p, 8);
		hi = w & field & highs;
		if (hi) {
			/* a count of 2 or 3: do the ones before it, then stop */
			unsigned f = (unsigned)__builtin_ctzll(hi) / 2;

			cnt = f - off;
			field = cnt ? ((1ull << (2 * cnt)) - 1) << (2 * off) : 0;
		}
		zeros += tm_popcount64(~w & field & lows);
		w += field & lows;
		memcpy(p, &w, 8);
		j += cnt;
		if (hi)
			break;
	}
	sm->nr_allocated += zeros;
	if (j)
		sm->cinfo[b >> RC_REGION_SHIFT] |= RCMAP_TOUCHED;
	return j;
}

int rcmap_inc_run_slow(struct rcmap *sm, uint64_t b, uint64_t n)
{
	while (n) {
		int r;

		if (b < sm->nr_blocks && packed_region(sm, &sm->regions[b >> RC_REGION_SHIFT])) {
			uint64_t end = (b | RC_MASK) + 1, done;

			if (end > sm->nr_blocks)
				end = sm->nr_blocks;
			done = packed_inc_run(sm, b, n < end - b ? n : end - b);
			b += done;
			n -= done;
			if (!n)
				break;
			if (done)
				continue;
		}
		r = rcmap_inc(sm, b);
		if (r < 0)
			return r;
		b++;
		n--;
	}
	return 0;
}

int rcmap_dec(struct rcmap *sm, uint64_t b)
{
	uint32_t c;

	if (b >= sm->nr_blocks)
		return -EINVAL;
	c = rcmap_get(sm, b);
	if (!c)
		return -EINVAL;
	return rcmap_set(sm, b, c - 1);
}

uint64_t rcmap_nr_allocated(const struct rcmap *sm)
{
	return sm->nr_allocated;
}

uint64_t rcmap_find_free(const struct rcmap *sm, uint64_t from)
{
	while (from < sm->nr_blocks) {
		const struct rcmap_region *r = &sm->regions[from >> RC_REGION_SHIFT];
		uint64_t base = from & ~RC_MASK, end = sm->nr_blocks - base;
		const uint8_t *p;

		if (end > RC_REGION)
			end = RC_REGION;
		if (packed_region(sm, r)) {
			if (!(sm->cinfo[from >> RC_REGION_SHIFT] & RCMAP_TOUCHED))
				return from;
			for (uint64_t b = from; b < base + end;) {
				/* four blocks a byte: skip bytes with no zero pair */
				if (!(b & 3)) {
					unsigned x = sm->packed[b >> 2];

					if (((x | (x >> 1)) & 0x55u) == 0x55u) {
						b += 4;
						continue;
					}
				}
				if (!packed_get(sm, b))
					return b;
				b++;
			}
			from = base + RC_REGION;
			continue;
		}
		if (!r->bytes)
			return from;
		p = memchr(r->bytes + (from - base), 0, end - (from - base));
		if (p)
			return base + (uint64_t)(p - r->bytes);
		from = base + RC_REGION;
	}
	return UINT64_MAX;
}

int rcmap_range_untouched(const struct rcmap *sm, uint64_t base, uint64_t n)
{
	uint64_t end = base + n > sm->nr_blocks ? sm->nr_blocks : base + n;

	for (uint64_t b = base & ~RC_MASK; b < end; b += RC_REGION)
		if (sm->regions[b >> RC_REGION_SHIFT].bytes ||
		    (sm->packed && (sm->cinfo[b >> RC_REGION_SHIFT] & RCMAP_TOUCHED)))
			return 0;
	return 1;
}
