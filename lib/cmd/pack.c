#include "cmd/pack.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "btree/btree.h"
#include "cmd/pack_v3.h"
#include "crc/crc32c.h"
#include "io/io.h"
#include "spacemap/spacemap.h"
#include "thin/metadata.h"
#include "thin/superblock.h"
#include "util/endian.h"
#include "util/hash.h"
#include "util/vec.h"

#define V1_MAGIC "THINPACK"
#define V1_HEADER_SIZE 48u
#define V1_CHUNK_HEADER_SIZE 24u
#define V1_RECORD_SIZE (8u + MD_BLOCK_SIZE)
#define V1_BLOCKS_PER_CHUNK 256u
#define V1_REC_UNVERIFIED 1u
#define V1_REC_NODE_DELTA 2u
#define V1_FLAG_SCANNED 1u

/* One decoded v3 chunk may hold at most this much (a zlib bomb stops here). */
#define V3_MAX_RAW (64u << 20)
/* Neither a pack nor the metadata it holds can sensibly be larger. */
#define MAX_PACK_BYTES (20ull << 30)
#define MAX_NR_BLOCKS (1ull << 40)
#define FIFO_WAIT_MS 30000

static int fail(char *msg, size_t len, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *msg, size_t len, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * Same file or device (through symlinks and hard links).  Minimal on
 * purpose: a shared helper for every tool with an input and an output
 * replaces it.
 */
static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return 0;
	if (S_ISBLK(sa.st_mode) && S_ISBLK(sb.st_mode))
		return sa.st_rdev == sb.st_rdev;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int known_salt(const uint8_t *block)
{
	uint32_t salt = crc_block_salt(block, MD_BLOCK_SIZE);

	return salt == SUPERBLOCK_CSUM_XOR || salt == BTREE_CSUM_XOR || salt == BITMAP_CSUM_XOR ||
	       salt == INDEX_CSUM_XOR;
}

static int is_zero(const uint8_t *b, size_t len)
{
	static const uint8_t zero[64];

	for (size_t i = 0; i < len; i += 64)
		if (memcmp(b + i, zero, len - i < 64 ? len - i : 64))
			return 0;
	return 1;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* First block of a file or block device: 1 if it is a valid thin superblock. */
static int holds_metadata(const char *path)
{
	struct stat st;
	uint8_t *b;
	int fd, r = 0;

	if (stat(path, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return 0;   /* never open a FIFO here: that would wait for a writer */
	b = ioe_alloc_blocks(1);
	fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && b && pread(fd, b, MD_BLOCK_SIZE, 0) == (ssize_t)MD_BLOCK_SIZE)
		r = crc_block_salt(b, MD_BLOCK_SIZE) == SUPERBLOCK_CSUM_XOR &&
		    get_le64(b + 32) == THIN_MAGIC;
	if (fd >= 0)
		close(fd);
	free(b);
	return r;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/*----------------------------------------------------------------*/
/* pack */

/* Block numbers to pack (sorted) and whether to filter them by checksum. */
struct cand {
	uint64_t *b;
	uint64_t nr, cap;
};

static int cand_add(struct cand *c, uint64_t b)
{
	if (c->nr == c->cap) {
		uint64_t cap = c->cap ? c->cap * 2 : 4096;
		uint64_t *n = realloc(c->b, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->b = n;
		c->cap = cap;
	}
	c->b[c->nr++] = b;
	return 0;
}

/* The blocks the metadata space map marks in use; -EILSEQ if it is unusable. */
static int used_blocks(struct thin_md *md, struct cand *c)
{
	struct report *rep;
	struct rcmap *sm;
	uint64_t nr;
	int r;

	nr = md->sb.metadata_sm.nr_blocks;
	if (!nr || nr > md->ioe->nr_blocks || nr > SM_MAX_METADATA_BLOCKS)
		return -EILSEQ;
	sm = rcmap_create(nr);
	rep = rep_create(NULL, 1);
	if (!sm || !rep) {
		rcmap_destroy(sm);
		rep_destroy(rep);
		return -ENOMEM;
	}
	r = sm_disk_load(md->bc, &md->sb.metadata_sm, sm, rep, NULL);
	if (!r && rep_outcome(rep) >= DMG_NON_FATAL)
		r = -EILSEQ;
	rep_destroy(rep);
	for (uint64_t b = 0; b < nr && !r; b++)
		if (b == THIN_SB_LOCATION || rcmap_get(sm, b))
			r = cand_add(c, b);
	rcmap_destroy(sm);
	return r;
}

/*
 * Every block position up to the largest metadata device the kernel
 * supports, holes of a sparse file skipped.
 */
static int scan_blocks(const char *path, struct thin_md *md, struct cand *c)
{
	uint64_t end = md->ioe->nr_blocks < SM_MAX_METADATA_BLOCKS ? md->ioe->nr_blocks
								   : SM_MAX_METADATA_BLOCKS;
	int fd = -1, r = 0;

	if (!md->ioe->is_bdev)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	for (uint64_t b = 0; b < end && !r;) {
		uint64_t stop = end;

		if (fd >= 0) {
			off_t d = lseek(fd, (off_t)(b * MD_BLOCK_SIZE), SEEK_DATA), h;
			if (d < 0)
				break;   /* ENXIO: only holes from here */
			b = (uint64_t)d / MD_BLOCK_SIZE;
			h = lseek(fd, d, SEEK_HOLE);
			if (h > 0 && (uint64_t)(h + MD_BLOCK_SIZE - 1) / MD_BLOCK_SIZE < stop)
				stop = ((uint64_t)h + MD_BLOCK_SIZE - 1) / MD_BLOCK_SIZE;
		}
		for (; b < stop && !r; b++)
			r = cand_add(c, b);
	}
	if (fd >= 0)
		close(fd);
	return r;
}

static unsigned nr_threads(unsigned want)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (want)
		return want > 64 ? 64 : want;
	return n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
}

/* Opens the pack output; *created says whether we made the file. */
static int open_pack_output(const char *path, int wait_ms, int *created, char *msg, size_t msglen)
{
	struct stat st;
	int fd;

	*created = 0;
	if (stat(path, &st) < 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail(msg, msglen, -errno, "'%s': cannot create: %s", path,
				    strerror(errno));
		*created = 1;
		return fd;
	}
	if (S_ISFIFO(st.st_mode)) {
		/* no reader: ENXIO; wait for one a bounded time */
		struct timespec t0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd >= 0 || errno != ENXIO)
				break;
			if (elapsed_ms(&t0) >= wait_ms)
				return fail(msg, msglen, -ETIMEDOUT,
					    "'%s': no reader on the FIFO after %d s", path,
					    wait_ms / 1000);
			usleep(20000);
		}
		if (fd >= 0)
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	} else {
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return fail(msg, msglen, -errno, "'%s': cannot open: %s", path, strerror(errno));
	if (S_ISREG(st.st_mode) && ftruncate(fd, 0) < 0) {
		int r = -errno;
		close(fd);
		return fail(msg, msglen, r, "'%s': cannot truncate: %s", path, strerror(-r));
	}
	return fd;
}

/*
 * Packing runs in two parallel passes.  A: the candidate blocks are read
 * in block order, those without a valid checksum dropped, the rest
 * encoded (programs kept in memory up to a budget).  Then the blocks are
 * sorted so that similar nodes sit side by side: B-tree nodes by value
 * size, kind and first key (an origin's leaves beside its snapshots'),
 * zlib then finds their common runs; other blocks by number.  C: chunks of
 * 1024 blocks in that order are compressed and written in order.
 */
#define PROGRAM_BUDGET (256ull << 20)

struct prec {
	uint64_t blocknr;
	uint64_t k_hi, k_lo;   /* sort key: class, value size, flags; first key */
	const uint8_t *prog;   /* NULL once over the budget: re-read in pass C */
	uint32_t len;
};

struct arena {
	uint8_t *p;
	size_t len;
};

struct pack_slot {
	uint8_t *z;
	size_t zlen;
	int r, done;
};

struct packer {
	struct ioe *ioe;
	const struct cand *cand;
	int scan, level;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int failed;
	/* pass A */
	uint64_t nr_ajobs, next_ajob;
	struct prec **recs;       /* per A job */
	uint64_t *nr_recs;
	struct arena *arenas;     /* per A job */
	uint64_t prog_bytes;
	int reread;
	uint64_t nr_bad, first_bad;
	/* pass C */
	struct prec *all;
	uint64_t nr_all, nr_cjobs, next_cjob, written;
	unsigned window;
	struct pack_slot *slots;
};

enum { READ_RUN = 64 };

static void sort_key(const uint8_t *blk, uint64_t blocknr, struct prec *pr)
{
	pr->blocknr = blocknr;
	pr->k_hi = 1ull << 63;
	pr->k_lo = 0;
	if (crc_block_salt(blk, MD_BLOCK_SIZE) == BTREE_CSUM_XOR) {
		struct bt_node n;

		bt_node_view(blk, &n);
		pr->k_hi = (uint64_t)n.value_size << 32 | n.flags;
		pr->k_lo = n.nr_entries ? bt_key(&n, 0) : 0;
	}
}

static int cmp_prec(const void *a, const void *b)
{
	const struct prec *x = a, *y = b;

	if (x->k_hi != y->k_hi)
		return x->k_hi < y->k_hi ? -1 : 1;
	if (x->k_lo != y->k_lo)
		return x->k_lo < y->k_lo ? -1 : 1;
	return x->blocknr < y->blocknr ? -1 : x->blocknr > y->blocknr;
}

static int ajob(struct packer *p, uint64_t j, uint8_t *buf, uint8_t *prog)
{
	uint64_t first = j * PACK_V3_BLOCKS_PER_CHUNK, end = first + PACK_V3_BLOCKS_PER_CHUNK;
	const uint64_t *b = p->cand->b;
	struct prec *recs;
	uint32_t *lens;
	uint8_t *arena = NULL;
	size_t alen = 0, acap = 0;
	uint64_t nr = 0, bad = 0, first_bad = 0;
	int r = 0, keep;

	if (end > p->cand->nr)
		end = p->cand->nr;
	recs = calloc(end - first, sizeof(*recs));
	lens = calloc(end - first, sizeof(*lens));
	if (!recs || !lens) {
		free(recs);
		free(lens);
		return -ENOMEM;
	}
	pthread_mutex_lock(&p->lock);
	keep = !p->reread;
	pthread_mutex_unlock(&p->lock);
	for (uint64_t i = first; i < end && !r;) {
		unsigned n = 1;

		while (i + n < end && n < READ_RUN && b[i + n] == b[i] + n)
			n++;
		r = ioe_read(p->ioe, b[i], n, buf);
		for (unsigned k = 0; k < n && !r; k++) {
			const uint8_t *blk = buf + (size_t)k * MD_BLOCK_SIZE;
			size_t len;

			if (!known_salt(blk)) {
				if (!p->scan && !bad++)
					first_bad = b[i + k];
				continue;
			}
			sort_key(blk, b[i + k], &recs[nr]);
			if (keep) {
				len = pack_v3_encode_block(blk, prog);
				if (alen + len > acap) {
					size_t cap = acap ? acap * 2 : 256 << 10;
					uint8_t *na;

					while (cap < alen + len)
						cap *= 2;
					na = realloc(arena, cap);
					if (!na) {
						r = -ENOMEM;
						break;
					}
					arena = na;
					acap = cap;
				}
				memcpy(arena + alen, prog, len);
				lens[nr] = (uint32_t)len;
				alen += len;
			}
			nr++;
		}
		i += n;
	}
	if (r < 0) {
		free(recs);
		free(lens);
		free(arena);
		return r;
	}
	/* offsets become pointers now that the arena no longer moves */
	for (uint64_t i = 0, off = 0; keep && i < nr; i++) {
		recs[i].prog = arena + off;
		recs[i].len = lens[i];
		off += lens[i];
	}
	free(lens);
	pthread_mutex_lock(&p->lock);
	p->recs[j] = recs;
	p->nr_recs[j] = nr;
	p->arenas[j] = (struct arena){ arena, alen };
	p->prog_bytes += alen;
	if (p->prog_bytes > PROGRAM_BUDGET)
		p->reread = 1;
	if (bad && !p->nr_bad)
		p->first_bad = first_bad;
	if (bad && first_bad < p->first_bad)
		p->first_bad = first_bad;
	p->nr_bad += bad;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void *pass_a(void *arg)
{
	struct packer *p = arg;
	uint8_t *buf = ioe_alloc_blocks(READ_RUN), *prog = malloc(PACK_V3_MAX_PROGRAM);

	for (;;) {
		uint64_t j;
		int r;

		pthread_mutex_lock(&p->lock);
		if (p->failed || p->next_ajob >= p->nr_ajobs) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		j = p->next_ajob++;
		pthread_mutex_unlock(&p->lock);
		r = buf && prog ? ajob(p, j, buf, prog) : -ENOMEM;
		if (r < 0) {
			pthread_mutex_lock(&p->lock);
			if (!p->failed)
				p->failed = r;
			pthread_mutex_unlock(&p->lock);
			break;
		}
	}
	free(buf);
	free(prog);
	return NULL;
}

static int cjob(struct packer *p, uint64_t j, uint8_t *raw, uint8_t *bufs, uint8_t *prog,
		struct pack_slot *s)
{
	uint64_t first = j * PACK_V3_BLOCKS_PER_CHUNK, end = first + PACK_V3_BLOCKS_PER_CHUNK;
	size_t rawlen = 0;
	uLongf zlen;

	if (end > p->nr_all)
		end = p->nr_all;
	if (p->reread) {
		uint64_t blocks[PACK_V3_BLOCKS_PER_CHUNK] = { 0 };
		void *ptrs[PACK_V3_BLOCKS_PER_CHUNK] = { 0 };
		int res[PACK_V3_BLOCKS_PER_CHUNK] = { 0 };
		unsigned n = (unsigned)(end - first);
		int r;

		for (unsigned i = 0; i < n; i++) {
			blocks[i] = p->all[first + i].blocknr;
			ptrs[i] = bufs + (size_t)i * MD_BLOCK_SIZE;
		}
		r = ioe_read_batch(p->ioe, blocks, n, ptrs, res);
		for (unsigned i = 0; i < n && !r; i++) {
			size_t len;

			if (res[i] < 0)
				return res[i];
			if (!known_salt(ptrs[i]))
				return -ESTALE;   /* changed since pass A */
			put_le64(raw + rawlen, blocks[i]);
			rawlen += 8;
			len = pack_v3_encode_block(ptrs[i], prog);
			memcpy(raw + rawlen, prog, len);
			rawlen += len;
		}
		if (r < 0)
			return r;
	} else {
		for (uint64_t i = first; i < end; i++) {
			put_le64(raw + rawlen, p->all[i].blocknr);
			rawlen += 8;
			memcpy(raw + rawlen, p->all[i].prog, p->all[i].len);
			rawlen += p->all[i].len;
		}
	}
	if (!rawlen)
		return 0;
	zlen = compressBound((uLong)rawlen);
	s->z = malloc(zlen);
	if (!s->z)
		return -ENOMEM;
	if (compress2(s->z, &zlen, raw, (uLong)rawlen, p->level) != Z_OK)
		return -ENOMEM;
	s->zlen = zlen;
	return 0;
}

static void *pass_c(void *arg)
{
	struct packer *p = arg;
	uint8_t *raw = malloc((size_t)PACK_V3_BLOCKS_PER_CHUNK * (8 + PACK_V3_MAX_PROGRAM));
	uint8_t *prog = malloc(PACK_V3_MAX_PROGRAM);
	uint8_t *bufs = p->reread ? ioe_alloc_blocks(PACK_V3_BLOCKS_PER_CHUNK) : NULL;

	for (;;) {
		struct pack_slot *s;
		uint64_t j;
		int r;

		pthread_mutex_lock(&p->lock);
		while (!p->failed && p->next_cjob < p->nr_cjobs &&
		       p->next_cjob >= p->written + p->window)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->failed || p->next_cjob >= p->nr_cjobs) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		j = p->next_cjob++;
		s = &p->slots[j % p->window];
		pthread_mutex_unlock(&p->lock);

		r = raw && prog && (bufs || !p->reread) ? cjob(p, j, raw, bufs, prog, s) : -ENOMEM;

		pthread_mutex_lock(&p->lock);
		s->r = r;
		s->done = 1;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
	free(raw);
	free(prog);
	free(bufs);
	return NULL;
}

/* Runs fn on threads threads (at least the calling one). */
static void run_threads(void *(*fn)(void *), struct packer *p, unsigned threads)
{
	pthread_t th[64];
	unsigned started = 0;

	for (unsigned i = 1; i < threads && i < 64; i++)
		if (pthread_create(&th[started], NULL, fn, p) == 0)
			started++;
	fn(p);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
}

static int pass_a_all(struct packer *p, unsigned threads)
{
	uint64_t total = 0;

	p->nr_ajobs = (p->cand->nr + PACK_V3_BLOCKS_PER_CHUNK - 1) / PACK_V3_BLOCKS_PER_CHUNK;
	p->recs = calloc(p->nr_ajobs + 1, sizeof(*p->recs));
	p->nr_recs = calloc(p->nr_ajobs + 1, sizeof(*p->nr_recs));
	p->arenas = calloc(p->nr_ajobs + 1, sizeof(*p->arenas));
	if (!p->recs || !p->nr_recs || !p->arenas)
		return -ENOMEM;
	run_threads(pass_a, p, threads);
	if (p->failed)
		return p->failed;
	for (uint64_t j = 0; j < p->nr_ajobs; j++)
		total += p->nr_recs[j];
	p->all = malloc((total ? total : 1) * sizeof(*p->all));
	if (!p->all)
		return -ENOMEM;
	for (uint64_t j = 0; j < p->nr_ajobs; j++) {
		if (p->nr_recs[j])
			memcpy(p->all + p->nr_all, p->recs[j], p->nr_recs[j] * sizeof(*p->all));
		p->nr_all += p->nr_recs[j];
		free(p->recs[j]);
		p->recs[j] = NULL;
	}
	if (p->reread)   /* over the budget: keep no program */
		for (uint64_t j = 0; j < p->nr_ajobs; j++) {
			free(p->arenas[j].p);
			p->arenas[j].p = NULL;
		}
	vec_sort(p->all, p->nr_all, sizeof(*p->all), cmp_prec);
	return 0;
}

/* Writes the header and the chunks in order; *werr = 1 if writing failed. */
static int write_pack(struct packer *p, int fd, uint64_t nr_blocks, unsigned threads,
		      struct pack_stats *st, int *werr)
{
	uint8_t hdr[PACK_V3_HEADER_SIZE];
	pthread_t th[64];
	unsigned started = 0;
	int r;

	*werr = 0;
	put_le64(hdr, PACK_V3_MAGIC);
	put_le64(hdr + 8, PACK_V3_VERSION);
	put_le64(hdr + 16, MD_BLOCK_SIZE);
	put_le64(hdr + 24, nr_blocks);
	r = write_all(fd, hdr, sizeof(hdr));
	*werr = r < 0;
	st->bytes_out = sizeof(hdr);
	p->nr_cjobs = (p->nr_all + PACK_V3_BLOCKS_PER_CHUNK - 1) / PACK_V3_BLOCKS_PER_CHUNK;
	p->window = 2 * threads;
	p->slots = calloc(p->window, sizeof(*p->slots));
	if (!p->slots)
		return -ENOMEM;
	for (unsigned i = 0; i < threads && i < 64 && !r; i++)
		if (pthread_create(&th[started], NULL, pass_c, p) == 0)
			started++;
	if (!started && !r)
		r = -EAGAIN;      /* no thread could be started */
	for (uint64_t j = 0; j < p->nr_cjobs && !r; j++) {
		struct pack_slot *s = &p->slots[j % p->window];
		uint8_t len[8];

		pthread_mutex_lock(&p->lock);
		while (!s->done)
			pthread_cond_wait(&p->cond, &p->lock);
		pthread_mutex_unlock(&p->lock);
		r = s->r;
		if (!r && s->zlen) {
			put_le64(len, s->zlen);
			r = write_all(fd, len, 8);
			if (!r)
				r = write_all(fd, s->z, s->zlen);
			*werr = r < 0;
			st->bytes_out += 8 + s->zlen;
		}
		free(s->z);
		s->z = NULL;
		s->zlen = 0;
		pthread_mutex_lock(&p->lock);
		s->done = 0;
		p->written++;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_lock(&p->lock);
	if (r < 0)
		p->failed = r;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i < p->window; i++)
		free(p->slots[i].z);
	st->nr_records = p->nr_all;
	return r;
}

static void packer_release(struct packer *p)
{
	for (uint64_t j = 0; p->arenas && j < p->nr_ajobs; j++)
		free(p->arenas[j].p);
	for (uint64_t j = 0; p->recs && j < p->nr_ajobs; j++)
		free(p->recs[j]);
	free(p->arenas);
	free(p->recs);
	free(p->nr_recs);
	free(p->all);
	free(p->slots);
}

int thin_pack(const struct thin_pack_opts *o, struct pack_stats *st, char *msg, size_t msglen)
{
	struct packer p = { 0 };
	struct cand c = { 0 };
	struct thin_md *md = NULL;
	struct stat ost;
	unsigned threads = nr_threads(o->threads);
	int r, fd = -1, created = 0, is_reg, werr;

	memset(st, 0, sizeof(*st));
	msg[0] = '\0';
	st->version = PACK_V3_VERSION;
	if (same_file(o->input, o->output))
		return fail(msg, msglen, -EINVAL, "input and output are the same file ('%s', '%s')",
			    o->input, o->output);
	r = thin_md_open(o->input, THIN_MD_SHARED, &md, msg, msglen);
	if (r < 0)
		return r;
	st->nr_blocks = md->ioe->nr_blocks;
	if (!o->force && holds_metadata(o->output)) {
		r = fail(msg, msglen, -EEXIST,
			 "'%s' appears to hold thin metadata; use -f to overwrite it", o->output);
		goto out;
	}
	if (o->scan) {
		st->scanned = 1;
	} else if (md->sb_err || md->sb.magic != THIN_MAGIC) {
		r = fail(msg, msglen, -EILSEQ,
			 "'%s' has no valid superblock: not thin metadata? (--scan packs every block with a valid checksum anyway)",
			 o->input);
		goto out;
	} else {
		r = used_blocks(md, &c);
		if (r == -ENOMEM)
			goto nomem;
		if (r < 0) {
			st->scanned = 1;
			c.nr = 0;
			snprintf(st->note, sizeof(st->note),
				 "the metadata space map is unusable: packing every block with a valid checksum");
		}
	}
	if (st->scanned) {
		r = scan_blocks(o->input, md, &c);
		if (r < 0)
			goto nomem;
	}

	p.ioe = md->ioe;
	p.cand = &c;
	p.scan = st->scanned;
	p.level = o->level ? o->level : Z_DEFAULT_COMPRESSION;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);

	/* everything read and encoded before the output is touched */
	r = pass_a_all(&p, threads);
	if (r < 0) {
		fail(msg, msglen, r, "'%s': %s", o->input,
		     r == -ENOMEM ? "out of memory" : strerror(-r));
		goto out_sync;
	}
	st->nr_bad = p.nr_bad;
	if (p.nr_bad)
		snprintf(st->note, sizeof(st->note),
			 "%llu block%s in use fail%s the checksum and %s not in the pack (the first: block %llu)",
			 (unsigned long long)p.nr_bad, p.nr_bad == 1 ? "" : "s",
			 p.nr_bad == 1 ? "s" : "", p.nr_bad == 1 ? "is" : "are",
			 (unsigned long long)p.first_bad);

	fd = open_pack_output(o->output, o->fifo_wait_ms > 0 ? o->fifo_wait_ms : FIFO_WAIT_MS,
			      &created, msg, msglen);
	if (fd < 0) {
		r = fd;
		goto out_sync;
	}
	is_reg = fstat(fd, &ost) == 0 && (S_ISREG(ost.st_mode) || S_ISBLK(ost.st_mode));
	r = write_pack(&p, fd, st->nr_blocks, threads, st, &werr);
	if (r < 0 && werr)
		fail(msg, msglen, r, "'%s': write failed: %s", o->output, strerror(-r));
	else if (r < 0)
		fail(msg, msglen, r, "'%s': %s", o->input,
		     r == -ENOMEM ? "out of memory" : r == -ESTALE ? "changed while being packed"
		     : strerror(-r));
	else if (is_reg && fsync(fd) < 0)
		r = fail(msg, msglen, -errno, "'%s': write failed: %s", o->output, strerror(errno));
	if (close(fd) < 0 && !r)
		r = fail(msg, msglen, -errno, "'%s': write failed: %s", o->output, strerror(errno));
	fd = -1;
	if (r < 0 && created)
		unlink(o->output);
out_sync:
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cond);
	goto out;
nomem:
	r = fail(msg, msglen, -ENOMEM, "out of memory");
out:
	packer_release(&p);
	free(c.b);
	thin_md_close(md);
	return r;
}

/*----------------------------------------------------------------*/
/* reading packs (v3 and our version 1) from memory */

struct pack_in {
	const uint8_t *p;
	size_t len;
	unsigned version;
	uint64_t nr_blocks, nr_records;   /* nr_records: v1 header only */
	uint32_t flags;
	size_t data;                      /* offset of the first chunk */
};

/*
 * Called for each block: verified is 0 only for v1 records packed without
 * a valid checksum; chunk is the offset of the block's chunk.
 */
typedef int (*pack_block_fn)(void *ctx, uint64_t blocknr, const uint8_t *blk, int verified,
			     size_t chunk, char *msg, size_t msglen);

static int parse_header(struct pack_in *in, char *msg, size_t msglen)
{
	if (in->len >= PACK_V3_HEADER_SIZE && get_le64(in->p) == PACK_V3_MAGIC) {
		in->version = (unsigned)get_le64(in->p + 8);
		if (get_le64(in->p + 8) != PACK_V3_VERSION)
			return fail(msg, msglen, -EINVAL, "unsupported pack file version %llu",
				    (unsigned long long)get_le64(in->p + 8));
		if (get_le64(in->p + 16) != MD_BLOCK_SIZE)
			return fail(msg, msglen, -EINVAL, "pack block size %llu is not 4096",
				    (unsigned long long)get_le64(in->p + 16));
		in->nr_blocks = get_le64(in->p + 24);
		in->data = PACK_V3_HEADER_SIZE;
	} else if (in->len >= V1_HEADER_SIZE && !memcmp(in->p, V1_MAGIC, 8)) {
		if (hash64(in->p, 40, 0) != get_le64(in->p + 40))
			return fail(msg, msglen, -EILSEQ, "pack file header checksum mismatch");
		in->version = get_le32(in->p + 8);
		if (in->version != 1)
			return fail(msg, msglen, -EINVAL, "unsupported pack file version %u",
				    in->version);
		if (get_le32(in->p + 12) != MD_BLOCK_SIZE)
			return fail(msg, msglen, -EINVAL, "pack block size is not 4096");
		in->nr_blocks = get_le64(in->p + 16);
		in->nr_records = get_le64(in->p + 24);
		in->flags = get_le32(in->p + 32);
		in->data = V1_HEADER_SIZE;
		if (in->nr_records > in->nr_blocks)
			return fail(msg, msglen, -EILSEQ, "implausible pack file header");
	} else {
		return fail(msg, msglen, -EINVAL, "Not a pack file");
	}
	if (!in->nr_blocks || in->nr_blocks > MAX_NR_BLOCKS)
		return fail(msg, msglen, -EILSEQ, "implausible pack file header (%llu blocks)",
			    (unsigned long long)in->nr_blocks);
	return 0;
}

static void v1_untransform(uint8_t *block)
{
	struct bt_node n;
	uint8_t tmp[MD_BLOCK_SIZE];

	bt_node_view(block, &n);
	if (n.value_size != 8 || BT_HEADER_SIZE + 16ull * n.max_entries > MD_BLOCK_SIZE)
		return;
	for (int arr = 0; arr < 2; arr++) {
		uint8_t *p = block + BT_HEADER_SIZE + (size_t)arr * 8 * n.max_entries;
		uint32_t nr = n.max_entries;

		for (uint32_t i = 0; i < nr; i++)     /* un-transpose */
			for (int b = 0; b < 8; b++)
				tmp[(size_t)i * 8 + b] = p[(size_t)b * nr + i];
		memcpy(p, tmp, (size_t)nr * 8);
		for (uint32_t i = 1; i < nr; i++)     /* un-delta */
			put_le64(p + 8 * i, get_le64(p + 8 * i) + get_le64(p + 8 * (i - 1)));
	}
}

static int v1_each(const struct pack_in *in, size_t only, pack_block_fn fn, void *ctx,
		   char *msg, size_t msglen)
{
	size_t pos = in->data;
	uint64_t done = 0, chain = 0;
	uint8_t *raw = malloc((size_t)V1_BLOCKS_PER_CHUNK * V1_RECORD_SIZE);
	int r = 0;

	if (!raw)
		return fail(msg, msglen, -ENOMEM, "out of memory");
	if (only != SIZE_MAX)
		pos = only;
	for (;;) {
		const uint8_t *h = in->p + pos;
		uint32_t nr, zlen, rawlen;
		uLongf got;
		size_t at = pos;

		if (in->len - pos < 4) {
			r = fail(msg, msglen, -EILSEQ, "truncated pack file (no trailer)");
			break;
		}
		if (!memcmp(h, "END!", 4)) {
			if (in->len - pos < 16 || get_le32(h + 4) != (uint32_t)done ||
			    get_le64(h + 8) != chain || done != in->nr_records)
				r = fail(msg, msglen, -EILSEQ,
					 "pack file trailer does not match its contents");
			else if (in->len - pos > 16)
				r = fail(msg, msglen, -EILSEQ, "data after the end of the pack file");
			break;
		}
		if (in->len - pos < V1_CHUNK_HEADER_SIZE || memcmp(h, "CHNK", 4)) {
			r = fail(msg, msglen, -EILSEQ, "corrupt pack file after %llu blocks",
				 (unsigned long long)done);
			break;
		}
		nr = get_le32(h + 4);
		zlen = get_le32(h + 8);
		rawlen = get_le32(h + 12);
		if (!nr || nr > V1_BLOCKS_PER_CHUNK || rawlen != nr * V1_RECORD_SIZE ||
		    zlen > in->len - pos - V1_CHUNK_HEADER_SIZE) {
			r = fail(msg, msglen, -EILSEQ, zlen > in->len - pos - V1_CHUNK_HEADER_SIZE
				 ? "truncated pack file" : "corrupt chunk header after %llu blocks",
				 (unsigned long long)done);
			break;
		}
		pos += V1_CHUNK_HEADER_SIZE;
		if (hash64(in->p + pos, zlen, 0) != get_le64(h + 16)) {
			r = fail(msg, msglen, -EILSEQ, "chunk checksum mismatch after %llu blocks",
				 (unsigned long long)done);
			break;
		}
		got = rawlen;
		if (uncompress(raw, &got, in->p + pos, zlen) != Z_OK || got != rawlen) {
			r = fail(msg, msglen, -EILSEQ, "corrupt compressed chunk after %llu blocks",
				 (unsigned long long)done);
			break;
		}
		pos += zlen;
		chain = hash64(h + 16, 8, chain);
		for (uint32_t i = 0; i < nr && !r; i++) {
			uint8_t *rec = raw + (size_t)i * V1_RECORD_SIZE;
			uint64_t v = get_le64(rec), blocknr = v & ((1ull << 56) - 1);
			unsigned flags = (unsigned)(v >> 56);

			if (flags & V1_REC_NODE_DELTA)
				v1_untransform(rec + 8);
			r = fn(ctx, blocknr, rec + 8, !(flags & V1_REC_UNVERIFIED), at, msg, msglen);
		}
		done += nr;
		if (r || only != SIZE_MAX)
			break;
	}
	free(raw);
	return r;
}

static int v3_inflate(const uint8_t *z, size_t zlen, uint8_t *raw, size_t *rawlen)
{
	z_stream s;
	int zr;

	memset(&s, 0, sizeof(s));
	if (inflateInit(&s) != Z_OK)
		return -ENOMEM;
	s.next_in = (Bytef *)z;
	s.avail_in = (uInt)zlen;
	s.next_out = raw;
	s.avail_out = V3_MAX_RAW;
	zr = inflate(&s, Z_FINISH);
	*rawlen = s.total_out;
	inflateEnd(&s);
	return zr == Z_STREAM_END && s.avail_in == 0 ? 0 : -EILSEQ;
}

/* Offsets of every v3 chunk (its u64 length), checked against the file. */
static int v3_offsets(const struct pack_in *in, size_t **offs, uint64_t *nr, char *msg,
		      size_t msglen)
{
	size_t pos = in->data, cap = 0;

	*offs = NULL;
	*nr = 0;
	while (pos < in->len) {
		uint64_t zlen;

		if (in->len - pos < 8 || (zlen = get_le64(in->p + pos)) > in->len - pos - 8) {
			free(*offs);
			*offs = NULL;
			return fail(msg, msglen, -EILSEQ, "truncated pack file (chunk %llu)",
				    (unsigned long long)*nr);
		}
		if (*nr == cap) {
			size_t *n;

			cap = cap ? cap * 2 : 256;
			n = realloc(*offs, cap * sizeof(*n));
			if (!n) {
				free(*offs);
				*offs = NULL;
				return fail(msg, msglen, -ENOMEM, "out of memory");
			}
			*offs = n;
		}
		(*offs)[(*nr)++] = pos;
		pos += 8 + zlen;
	}
	return 0;
}

/* Decodes the v3 chunk at offset at (number nchunk) and calls fn for each block. */
static int v3_chunk(const struct pack_in *in, size_t at, uint64_t nchunk, pack_block_fn fn,
		    void *ctx, uint8_t *raw, uint8_t *blk, char *msg, size_t msglen)
{
	uint64_t zlen = get_le64(in->p + at);
	size_t rawlen, rp = 0;
	int r = 0;

	if (v3_inflate(in->p + at + 8, (size_t)zlen, raw, &rawlen) < 0)
		return fail(msg, msglen, -EILSEQ, "corrupt compressed chunk %llu",
			    (unsigned long long)nchunk);
	while (rp < rawlen && !r) {
		uint64_t blocknr;

		if (rawlen - rp < 8)
			return fail(msg, msglen, -EILSEQ, "corrupt chunk %llu",
				    (unsigned long long)nchunk);
		blocknr = get_le64(raw + rp);
		rp += 8;
		if (pack_v3_decode_block(raw, rawlen, &rp, blk) < 0)
			return fail(msg, msglen, -EILSEQ,
				    "corrupt program for block %llu in chunk %llu",
				    (unsigned long long)blocknr, (unsigned long long)nchunk);
		r = fn(ctx, blocknr, blk, 1, at, msg, msglen);
	}
	return r;
}

struct par {
	const struct pack_in *in;
	const size_t *offs;
	uint64_t nr, next;
	pack_block_fn fn;
	int r;
	char *msg;
	size_t msglen;
	pthread_mutex_t lock;
};

struct par_arg {
	struct par *p;
	void *ctx;
};

static void *par_worker(void *arg)
{
	struct par_arg *a = arg;
	struct par *p = a->p;
	uint8_t *raw = malloc(V3_MAX_RAW), *blk = ioe_alloc_blocks(1);
	char msg[512];

	for (;;) {
		uint64_t c;
		int r;

		pthread_mutex_lock(&p->lock);
		if (p->r || p->next >= p->nr) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		c = p->next++;
		pthread_mutex_unlock(&p->lock);
		if (raw && blk)
			r = v3_chunk(p->in, p->offs[c], c, p->fn, a->ctx, raw, blk, msg, sizeof(msg));
		else
			r = fail(msg, sizeof(msg), -ENOMEM, "out of memory");
		if (r < 0) {
			pthread_mutex_lock(&p->lock);
			if (!p->r) {
				p->r = r;
				snprintf(p->msg, p->msglen, "%s", msg);
			}
			pthread_mutex_unlock(&p->lock);
			break;
		}
	}
	free(raw);
	free(blk);
	return NULL;
}

/*
 * Calls fn for every block of the pack: a v3 pack on up to nctx threads,
 * thread i with ctxs[i] (the blocks of one chunk go to one context, in
 * order); version 1 in order, with ctxs[0].
 */
static int pack_each_par(const struct pack_in *in, pack_block_fn fn, void **ctxs, unsigned nctx,
			 char *msg, size_t msglen)
{
	struct par p = { .in = in, .fn = fn, .msg = msg, .msglen = msglen };
	struct par_arg *args;
	pthread_t *th;
	size_t *offs;
	unsigned started = 0;
	int r;

	if (in->version == 1)
		return v1_each(in, SIZE_MAX, fn, ctxs[0], msg, msglen);
	r = v3_offsets(in, &offs, &p.nr, msg, msglen);
	if (r < 0)
		return r;
	p.offs = offs;
	args = calloc(nctx, sizeof(*args));
	th = calloc(nctx, sizeof(*th));
	if (!args || !th) {
		r = fail(msg, msglen, -ENOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&p.lock, NULL);
	for (unsigned i = 0; i < nctx; i++) {
		args[i].p = &p;
		args[i].ctx = ctxs[i];
		if (i && pthread_create(&th[i], NULL, par_worker, &args[i]) == 0)
			started = i;
		else if (i)
			break;
	}
	par_worker(&args[0]);
	for (unsigned i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&p.lock);
	r = p.r;
out:
	free(args);
	free(th);
	free(offs);
	return r;
}

/* Calls fn for every block of the one chunk at offset at. */
static int pack_each_chunk(const struct pack_in *in, size_t at, pack_block_fn fn, void *ctx,
			   char *msg, size_t msglen)
{
	uint8_t *raw, *blk;
	int r;

	if (in->version == 1)
		return v1_each(in, at, fn, ctx, msg, msglen);
	raw = malloc(V3_MAX_RAW);
	blk = ioe_alloc_blocks(1);
	if (raw && blk)
		r = v3_chunk(in, at, 0, fn, ctx, raw, blk, msg, msglen);
	else
		r = fail(msg, msglen, -ENOMEM, "out of memory");
	free(raw);
	free(blk);
	return r;
}

/*----------------------------------------------------------------*/
/* unpack */

struct rec {
	uint64_t blocknr;
	size_t chunk;
};

struct validate {
	const struct pack_in *in;
	struct rec *recs;
	uint64_t nr, cap;
	uint64_t sm_nr_blocks;   /* metadata blocks per the packed superblock (0: unknown) */
};

static int validate_block(void *vctx, uint64_t blocknr, const uint8_t *blk, int verified,
			  size_t chunk, char *msg, size_t msglen)
{
	struct validate *v = vctx;

	if (blocknr >= v->in->nr_blocks)
		return fail(msg, msglen, -EILSEQ,
			    "block %llu is beyond the packed device (%llu blocks)",
			    (unsigned long long)blocknr, (unsigned long long)v->in->nr_blocks);
	if (verified && !known_salt(blk))
		return fail(msg, msglen, -EILSEQ, "block %llu fails its checksum",
			    (unsigned long long)blocknr);
	if (v->nr == v->cap) {
		uint64_t cap = v->cap ? v->cap * 2 : 4096;
		struct rec *n = realloc(v->recs, cap * sizeof(*n));
		if (!n)
			return fail(msg, msglen, -ENOMEM, "out of memory");
		v->recs = n;
		v->cap = cap;
	}
	v->recs[v->nr].blocknr = blocknr;
	v->recs[v->nr].chunk = chunk;
	v->nr++;
	return 0;
}

static int cmp_rec(const void *a, const void *b)
{
	uint64_t x = ((const struct rec *)a)->blocknr, y = ((const struct rec *)b)->blocknr;

	return x < y ? -1 : x > y;
}

static const struct rec *find_rec(const struct validate *v, uint64_t b)
{
	struct rec key = { b, 0 };

	return vec_find(&key, v->recs, v->nr, sizeof(key), cmp_rec);
}

struct fetch {
	uint64_t want;
	uint8_t *out;
	int found;
};

static int fetch_block(void *vctx, uint64_t blocknr, const uint8_t *blk, int verified,
		       size_t chunk, char *msg, size_t msglen)
{
	struct fetch *f = vctx;

	(void)verified;
	(void)chunk;
	(void)msg;
	(void)msglen;
	if (blocknr == f->want) {
		memcpy(f->out, blk, MD_BLOCK_SIZE);
		f->found = 1;
	}
	return 0;
}

/* Copies block b out of the pack: 1 if it is there, 0 if not, or -errno. */
static int pack_fetch(const struct validate *v, uint64_t b, uint8_t *out)
{
	const struct rec *rc = find_rec(v, b);
	struct fetch f = { b, out, 0 };
	char msg[256];
	int r;

	if (!rc)
		return 0;
	r = pack_each_chunk(v->in, rc->chunk, fetch_block, &f, msg, sizeof(msg));
	return r < 0 ? r : f.found;
}

/* Missing blocks as ranges, for the message. */
struct missing {
	uint64_t nr, lo, hi;   /* current range [lo, hi) */
	int ranges;
	char text[200];
	size_t len;
};

static void missing_flush(struct missing *m)
{
	char one[48];

	if (m->lo == m->hi)
		return;
	if (m->ranges < 6) {
		if (m->hi - m->lo == 1)
			snprintf(one, sizeof(one), "%s%llu", m->ranges ? ", " : "",
				 (unsigned long long)m->lo);
		else
			snprintf(one, sizeof(one), "%s%llu-%llu", m->ranges ? ", " : "",
				 (unsigned long long)m->lo, (unsigned long long)m->hi - 1);
		if (m->len + strlen(one) < sizeof(m->text)) {
			memcpy(m->text + m->len, one, strlen(one) + 1);
			m->len += strlen(one);
		}
	} else if (m->ranges == 6 && m->len + 6 < sizeof(m->text)) {
		memcpy(m->text + m->len, ", ...", 6);
		m->len += 5;
	}
	m->ranges++;
	m->lo = m->hi;
}

static void missing_add(struct missing *m, uint64_t b)
{
	if (b != m->hi || m->lo == m->hi) {
		missing_flush(m);
		m->lo = b;
	}
	m->hi = b + 1;
	m->nr++;
}

/*
 * The blocks the packed metadata's own space map marks in use that the
 * pack does not hold.  *why says what could not be checked.
 */
static int find_missing(struct validate *v, struct missing *m, const char **why)
{
	uint8_t *blk = ioe_alloc_blocks(1);
	uint8_t *vals = malloc(SM_ENTRIES_PER_BITMAP);
	struct sm_index_entry ie[SM_MAX_METADATA_BITMAPS];
	struct thin_sb sb;
	uint64_t nr, nbm;
	int r;

	*why = NULL;
	if (!blk || !vals) {
		r = -ENOMEM;
		goto out;
	}
	r = pack_fetch(v, THIN_SB_LOCATION, blk);
	if (r <= 0) {
		if (!r)
			missing_add(m, THIN_SB_LOCATION);
		*why = "the superblock is not in the pack";
		goto out;
	}
	thin_sb_unpack((const struct disk_superblock *)blk, &sb);
	nr = sb.metadata_sm.nr_blocks;
	if (crc_block_salt(blk, MD_BLOCK_SIZE) != SUPERBLOCK_CSUM_XOR || sb.magic != THIN_MAGIC ||
	    !nr || nr > SM_MAX_METADATA_BLOCKS) {
		*why = "block 0 is not a usable thin superblock";
		r = 0;
		goto out;
	}
	v->sm_nr_blocks = nr;
	if (nr > v->in->nr_blocks)
		nr = v->in->nr_blocks;
	r = pack_fetch(v, sb.metadata_sm.bitmap_root, blk);
	if (r <= 0 || crc_block_salt(blk, MD_BLOCK_SIZE) != INDEX_CSUM_XOR) {
		if (!r)
			missing_add(m, sb.metadata_sm.bitmap_root);
		*why = "the metadata space map index is not in the pack";
		r = r < 0 ? r : 0;
		goto out;
	}
	nbm = sm_nr_bitmaps(nr);
	for (uint64_t i = 0; i < nbm; i++) {
		const struct disk_metadata_index *mi = (const void *)blk;
		ie[i].blocknr = le64_to_cpu(mi->index[i].blocknr);
	}
	for (uint64_t i = 0; i < nbm; i++) {
		uint64_t base = i * SM_ENTRIES_PER_BITMAP, n = nr - base;

		if (n > SM_ENTRIES_PER_BITMAP)
			n = SM_ENTRIES_PER_BITMAP;
		r = pack_fetch(v, ie[i].blocknr, blk);
		if (r < 0)
			goto out;
		if (!r || crc_block_salt(blk, MD_BLOCK_SIZE) != BITMAP_CSUM_XOR) {
			if (!r)
				missing_add(m, ie[i].blocknr);
			*why = "a metadata space map bitmap is not in the pack";
			continue;
		}
		sm_bitmap_decode(blk, (unsigned)n, vals);
		for (uint64_t j = 0; j < n; j++)
			if (vals[j] && !find_rec(v, base + j))
				missing_add(m, base + j);
	}
	r = 0;
out:
	missing_flush(m);
	free(blk);
	free(vals);
	return r;
}

/* Reads the whole pack into memory (mapped for a regular file). */
static int read_input(const char *path, int wait_ms, uint8_t **buf, size_t *len, int *mapped,
		      char *msg, size_t msglen)
{
	struct stat st;
	size_t cap = 0;
	int fd, r = 0;

	*buf = NULL;
	*len = 0;
	*mapped = 0;
	if (stat(path, &st) < 0)
		return fail(msg, msglen, -ENOENT, "Couldn't find input file '%s'", path);
	if (S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode))
		return fail(msg, msglen, -EINVAL, "'%s' is not a pack file (a %s)", path,
			    S_ISDIR(st.st_mode) ? "directory" : "block device");
	if (S_ISREG(st.st_mode)) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail(msg, msglen, -errno, "'%s': cannot open: %s", path,
				    strerror(errno));
		if ((uint64_t)st.st_size > MAX_PACK_BYTES) {
			close(fd);
			return fail(msg, msglen, -EFBIG, "'%s' is too large for a pack file", path);
		}
		if (st.st_size) {
			*buf = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (*buf == MAP_FAILED) {
				r = -errno;
				*buf = NULL;
				close(fd);
				return fail(msg, msglen, r, "'%s': cannot read: %s", path,
					    strerror(-r));
			}
			*mapped = 1;
			*len = (size_t)st.st_size;
		}
		close(fd);
		return 0;
	}
	/* a FIFO (or a pipe, a terminal): stream it in */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fail(msg, msglen, -errno, "'%s': cannot open: %s", path, strerror(errno));
	if (S_ISFIFO(st.st_mode)) {
		/* no writer ever: poll reports nothing; give up after wait_ms */
		struct pollfd pf = { fd, POLLIN, 0 };
		int n;

		do
			n = poll(&pf, 1, wait_ms);
		while (n < 0 && errno == EINTR);
		if (n == 0) {
			close(fd);
			return fail(msg, msglen, -ETIMEDOUT, "'%s': no writer on the FIFO after %d s",
				    path, wait_ms / 1000);
		}
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	for (;;) {
		ssize_t n;

		if (*len == cap) {
			uint8_t *nb;

			if (cap >= MAX_PACK_BYTES) {
				r = fail(msg, msglen, -EFBIG, "'%s' is too large for a pack file", path);
				break;
			}
			cap = cap ? cap * 2 : 1 << 20;
			nb = realloc(*buf, cap);
			if (!nb) {
				r = fail(msg, msglen, -ENOMEM, "out of memory reading '%s'", path);
				break;
			}
			*buf = nb;
		}
		n = read(fd, *buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = fail(msg, msglen, -errno, "'%s': read failed: %s", path, strerror(errno));
			break;
		}
		if (!n)
			break;
		*len += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		free(*buf);
		*buf = NULL;
	}
	return r;
}

/* Used blocks of valid metadata already on the output; NULL if none. */
static int old_used(struct ioe *out, struct rcmap **old, int *damaged)
{
	struct bc *bc = bc_create(out, 64);
	struct report *rep;
	struct thin_sb sb;
	int r;

	*old = NULL;
	*damaged = 0;
	if (!bc)
		return -ENOMEM;
	thin_bc_set_block_types(bc);
	r = thin_sb_read(bc, THIN_SB_LOCATION, &sb);
	if (r < 0 || sb.magic != THIN_MAGIC) {
		bc_destroy(bc);
		return 0;
	}
	if (!sb.metadata_sm.nr_blocks || sb.metadata_sm.nr_blocks > SM_MAX_METADATA_BLOCKS ||
	    sb.metadata_sm.nr_blocks > out->nr_blocks) {
		*damaged = 1;
		bc_destroy(bc);
		return 0;
	}
	rep = rep_create(NULL, 1);
	*old = rcmap_create(sb.metadata_sm.nr_blocks);
	if (!rep || !*old) {
		rep_destroy(rep);
		rcmap_destroy(*old);
		*old = NULL;
		bc_destroy(bc);
		return -ENOMEM;
	}
	r = sm_disk_load(bc, &sb.metadata_sm, *old, rep, NULL);
	if (r < 0 || rep_outcome(rep) >= DMG_NON_FATAL)
		*damaged = 1;
	rep_destroy(rep);
	bc_destroy(bc);
	return 0;
}

enum { WRITE_BATCH = 1024, WRITE_RUN = 64 };

/*
 * One thread's writes: blocks are gathered, sorted and written as runs of
 * contiguous blocks (a pack need not be in block order); the superblock
 * is kept aside to be written last.
 */
struct writer {
	struct ioe *out;
	const char *path;
	uint8_t *buf;        /* WRITE_BATCH blocks */
	uint64_t *nrs;       /* their block numbers */
	unsigned *order;
	unsigned n;
	uint8_t *run;        /* WRITE_RUN blocks */
	uint8_t *sb;         /* shared: the superblock, written last */
	int *have_sb;
	uint64_t written;
};

static int cmp_order(const void *a, const void *b, void *ctx)
{
	const uint64_t *nrs = ctx;
	uint64_t x = nrs[*(const unsigned *)a], y = nrs[*(const unsigned *)b];

	return x < y ? -1 : x > y;
}

static int writer_flush(struct writer *w, char *msg, size_t msglen)
{
	int r = 0;

	for (unsigned i = 0; i < w->n; i++)
		w->order[i] = i;
	qsort_r(w->order, w->n, sizeof(*w->order), cmp_order, w->nrs);
	for (unsigned i = 0; i < w->n && !r;) {
		uint64_t first = w->nrs[w->order[i]];
		unsigned k = 0;

		while (i + k < w->n && k < WRITE_RUN && w->nrs[w->order[i + k]] == first + k) {
			memcpy(w->run + (size_t)k * MD_BLOCK_SIZE,
			       w->buf + (size_t)w->order[i + k] * MD_BLOCK_SIZE, MD_BLOCK_SIZE);
			k++;
		}
		r = ioe_write(w->out, first, k, w->run);
		i += k;
	}
	w->n = 0;
	if (r < 0)
		return fail(msg, msglen, r, "'%s': write failed: %s", w->path, strerror(-r));
	return 0;
}

static int write_block(void *vctx, uint64_t blocknr, const uint8_t *blk, int verified,
		       size_t chunk, char *msg, size_t msglen)
{
	struct writer *w = vctx;

	(void)verified;
	(void)chunk;
	w->written++;
	if (blocknr == THIN_SB_LOCATION) {
		memcpy(w->sb, blk, MD_BLOCK_SIZE);
		*w->have_sb = 1;
		return 0;
	}
	memcpy(w->buf + (size_t)w->n * MD_BLOCK_SIZE, blk, MD_BLOCK_SIZE);
	w->nrs[w->n++] = blocknr;
	return w->n == WRITE_BATCH ? writer_flush(w, msg, msglen) : 0;
}

/*
 * Nothing but zeros: a regular file is read through (holes skipped), a
 * block device only in its first block.
 */
static int blank(const char *path, int is_bdev)
{
	enum { N = 64 };
	uint8_t *b = ioe_alloc_blocks(N);
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 1;
	off_t at = 0;

	if (fd < 0 || !b) {
		r = 0;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (!is_bdev) {
			at = lseek(fd, at, SEEK_DATA);
			if (at < 0)
				break;   /* only holes left */
		}
		n = pread(fd, b, is_bdev ? MD_BLOCK_SIZE : (size_t)N * MD_BLOCK_SIZE, at);
		if (n < 0) {
			r = 0;
			break;
		}
		if (!n)
			break;
		if (!is_zero(b, (size_t)n)) {
			r = 0;
			break;
		}
		if (is_bdev)
			break;
		at += n;
	}
out:
	if (fd >= 0)
		close(fd);
	free(b);
	return r;
}

/* What the output is and may become. */
struct target {
	int exists, is_bdev, had_content;
	uint64_t size;
};

static int check_target(const struct thin_unpack_opts *o, const struct validate *v,
			struct target *t, uint64_t need_min, char *msg, size_t msglen)
{
	struct stat st;
	uint64_t need = v->in->nr_blocks * MD_BLOCK_SIZE;
	int meta;

	memset(t, 0, sizeof(*t));
	if (stat(o->output, &st) < 0) {
		if (errno != ENOENT)
			return fail(msg, msglen, -errno, "'%s': %s", o->output, strerror(errno));
		return 0;
	}
	t->exists = 1;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return fail(msg, msglen, -EINVAL, "Not a block device or regular file '%s'.",
			    o->output);
	t->is_bdev = S_ISBLK(st.st_mode);
	if (t->is_bdev) {
		int fd = open(o->output, O_RDONLY | O_CLOEXEC);
		uint64_t sz = 0;

		if (fd < 0)
			return fail(msg, msglen, -errno, "'%s': cannot open: %s", o->output,
				    strerror(errno));
		sz = (uint64_t)lseek(fd, 0, SEEK_END);
		close(fd);
		t->size = sz;
	} else {
		t->size = (uint64_t)st.st_size;
	}
	meta = holds_metadata(o->output);
	if (meta && !o->force)
		return fail(msg, msglen, -EEXIST,
			    "'%s' already holds thin metadata; use -f to overwrite it", o->output);
	/* a file to resize, or data that is not metadata: only with -f */
	if (!meta && t->size && !o->force) {
		int resize = !t->is_bdev && t->size != need;

		if (resize || !blank(o->output, t->is_bdev))
			return fail(msg, msglen, -EEXIST,
				    "'%s' is not empty and holds no thin metadata%s; use -f to overwrite it",
				    o->output, resize ? " (unpacking would resize it)" : "");
	}
	t->had_content = t->size != 0;
	if (t->is_bdev && t->size < need_min * MD_BLOCK_SIZE)
		return fail(msg, msglen, -ENOSPC,
			    "'%s' is too small: %llu blocks, the packed metadata needs %llu",
			    o->output, (unsigned long long)(t->size / MD_BLOCK_SIZE),
			    (unsigned long long)need_min);
	return 0;
}

/* Regular files: drop what the pack does not hold, cut to the packed size. */
static int tidy_file(const char *path, const struct validate *v, uint64_t nr_blocks)
{
	int fd = open(path, O_RDWR | O_CLOEXEC), r = 0;
	uint64_t next = 0;

	if (fd < 0)
		return -errno;
	for (uint64_t i = 0; i <= v->nr; i++) {
		uint64_t b = i < v->nr ? v->recs[i].blocknr : nr_blocks;

		if (b > next)
			fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  (off_t)(next * MD_BLOCK_SIZE), (off_t)((b - next) * MD_BLOCK_SIZE));
		next = b + 1;
	}
	if (ftruncate(fd, (off_t)(nr_blocks * MD_BLOCK_SIZE)) < 0 || fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Pass 1: every block decoded and checked; v->recs sorted, no duplicates. */
static int validate_pack(const struct pack_in *in, unsigned nt, struct validate *v, char *msg,
			 size_t msglen)
{
	struct validate *vs = calloc(nt, sizeof(*vs));
	void **ctxs = calloc(nt, sizeof(*ctxs));
	uint64_t total = 0;
	int r;

	if (!vs || !ctxs) {
		r = fail(msg, msglen, -ENOMEM, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < nt; i++) {
		vs[i].in = in;
		ctxs[i] = &vs[i];
	}
	r = pack_each_par(in, validate_block, ctxs, nt, msg, msglen);
	if (r < 0)
		goto out;
	for (unsigned i = 0; i < nt; i++)
		total += vs[i].nr;
	v->in = in;
	v->recs = malloc((total ? total : 1) * sizeof(*v->recs));
	if (!v->recs) {
		r = fail(msg, msglen, -ENOMEM, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < nt; i++) {
		if (vs[i].nr)
			memcpy(v->recs + v->nr, vs[i].recs, vs[i].nr * sizeof(*v->recs));
		v->nr += vs[i].nr;
	}
	vec_sort(v->recs, v->nr, sizeof(*v->recs), cmp_rec);
	for (uint64_t i = 1; i < v->nr; i++)
		if (v->recs[i].blocknr == v->recs[i - 1].blocknr) {
			r = fail(msg, msglen, -EILSEQ, "block %llu is in the pack twice",
				 (unsigned long long)v->recs[i].blocknr);
			goto out;
		}
out:
	for (unsigned i = 0; vs && i < nt; i++)
		free(vs[i].recs);
	free(vs);
	free(ctxs);
	return r;
}

/* Pass 2: every block but the superblock (kept in sb), on nt threads. */
static int write_blocks(const struct pack_in *in, unsigned nt, struct ioe *out, const char *path,
			uint8_t *sb, int *have_sb, uint64_t *written, char *msg, size_t msglen)
{
	struct writer *ws = calloc(nt, sizeof(*ws));
	void **ctxs = calloc(nt, sizeof(*ctxs));
	int r = 0;

	if (!ws || !ctxs) {
		r = fail(msg, msglen, -ENOMEM, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < nt && !r; i++) {
		ws[i] = (struct writer){ .out = out, .path = path, .sb = sb, .have_sb = have_sb };
		ws[i].buf = ioe_alloc_blocks(WRITE_BATCH);
		ws[i].run = ioe_alloc_blocks(WRITE_RUN);
		ws[i].nrs = malloc(WRITE_BATCH * sizeof(*ws[i].nrs));
		ws[i].order = malloc(WRITE_BATCH * sizeof(*ws[i].order));
		ctxs[i] = &ws[i];
		if (!ws[i].buf || !ws[i].run || !ws[i].nrs || !ws[i].order)
			r = fail(msg, msglen, -ENOMEM, "out of memory");
	}
	if (!r)
		r = pack_each_par(in, write_block, ctxs, nt, msg, msglen);
	for (unsigned i = 0; i < nt && !r; i++)
		r = writer_flush(&ws[i], msg, msglen);
	for (unsigned i = 0; i < nt; i++)
		*written += ws[i].written;
out:
	for (unsigned i = 0; ws && i < nt; i++) {
		free(ws[i].buf);
		free(ws[i].run);
		free(ws[i].nrs);
		free(ws[i].order);
	}
	free(ws);
	free(ctxs);
	return r;
}

int thin_unpack(const struct thin_unpack_opts *o, struct pack_stats *st, char *msg, size_t msglen)
{
	struct pack_in in = { 0 };
	struct validate v = { 0 };
	struct missing m = { 0 };
	struct target t;
	struct ioe *out = NULL;
	struct rcmap *old = NULL;
	const char *why = NULL;
	unsigned nt = nr_threads(0);
	uint8_t *buf = NULL, *sb = NULL;
	uint64_t need_min;
	size_t len;
	int r, mapped, damaged = 0, overlap = 0, have_sb = 0;

	memset(st, 0, sizeof(*st));
	msg[0] = '\0';
	if (same_file(o->input, o->output))
		return fail(msg, msglen, -EINVAL, "input and output are the same file ('%s', '%s')",
			    o->input, o->output);
	r = read_input(o->input, o->fifo_wait_ms > 0 ? o->fifo_wait_ms : FIFO_WAIT_MS, &buf, &len,
		       &mapped, msg, msglen);
	if (r < 0)
		return r;
	in.p = buf;
	in.len = len;
	r = parse_header(&in, msg, msglen);
	if (r < 0)
		goto out;
	st->version = in.version;
	st->nr_blocks = in.nr_blocks;
	st->scanned = !!(in.flags & V1_FLAG_SCANNED);

	/* 1. the whole pack, before the target is touched */
	r = validate_pack(&in, nt, &v, msg, msglen);
	if (r < 0)
		goto out;
	r = find_missing(&v, &m, &why);
	if (r < 0) {
		fail(msg, msglen, r, "%s", strerror(-r));
		goto out;
	}
	st->nr_missing = m.nr;
	if (m.nr && !o->allow_missing) {
		if (!v.nr)
			r = fail(msg, msglen, -ENODATA,
				 "empty pack: it holds no block at all; nothing written (--allow-missing writes it anyway)");
		else if (!find_rec(&v, THIN_SB_LOCATION))
			r = fail(msg, msglen, -ENODATA,
				 "incomplete pack: the superblock (block 0) is not in it; nothing written (--allow-missing writes it anyway)");
		else
			r = fail(msg, msglen, -ENODATA,
				 "incomplete pack: %llu block%s the metadata uses %s not in it (%s%s%s%s); nothing written (--allow-missing writes it anyway)",
				 (unsigned long long)m.nr, m.nr == 1 ? "" : "s",
				 m.nr == 1 ? "is" : "are", m.text, why ? "; " : "", why ? why : "",
				 why ? ", so others may be missing too" : "");
		goto out;
	}
	if (m.nr)
		snprintf(st->note, sizeof(st->note),
			 "incomplete pack: %llu block%s the metadata uses (%s) read as zeros",
			 (unsigned long long)m.nr, m.nr == 1 ? "" : "s", m.text);
	else if (why)
		snprintf(st->note, sizeof(st->note), "could not check the pack is complete: %s",
			 why);

	/* 2. the target */
	need_min = v.nr ? v.recs[v.nr - 1].blocknr + 1 : 1;
	if (v.sm_nr_blocks > need_min)
		need_min = v.sm_nr_blocks;
	r = check_target(o, &v, &t, need_min, msg, msglen);
	if (r < 0)
		goto out;
	if (!t.is_bdev && t.size < in.nr_blocks * MD_BLOCK_SIZE) {
		int fd = open(o->output, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

		if (fd < 0) {
			r = fail(msg, msglen, -errno, "'%s': cannot create: %s", o->output,
				 strerror(errno));
			goto out;
		}
		if (ftruncate(fd, (off_t)(in.nr_blocks * MD_BLOCK_SIZE)) < 0) {
			r = fail(msg, msglen, -errno, "'%s': cannot size the output: %s",
				 o->output, strerror(errno));
			close(fd);
			goto out;
		}
		close(fd);
	}
	r = ioe_open(o->output, IOE_WRITE, &out);
	if (r < 0) {
		if (r == -EBUSY)
			fail(msg, msglen, r, "'%s': device is busy (in use by a live pool?)",
			     o->output);
		else
			fail(msg, msglen, r, "'%s': cannot open: %s", o->output, strerror(-r));
		goto out;
	}

	/* 3. old metadata stays whole until the new superblock, if it can */
	r = old_used(out, &old, &damaged);
	if (r < 0)
		goto nomem;
	if (damaged) {
		overlap = 1;
	} else if (old) {
		for (uint64_t i = 0; i < v.nr && !overlap; i++) {
			uint64_t b = v.recs[i].blocknr;
			overlap = b != THIN_SB_LOCATION && b < rcmap_nr_blocks(old) && rcmap_get(old, b);
		}
	}
	sb = ioe_alloc_blocks(1);
	if (!sb)
		goto nomem;
	if (overlap) {
		memset(sb, 0, MD_BLOCK_SIZE);
		r = ioe_write(out, THIN_SB_LOCATION, 1, sb);
		if (!r)
			r = ioe_flush(out);
		if (r < 0)
			goto write_failed;
		st->invalidated = 1;
	}

	/* 4. every block but the superblock, flush, the superblock, flush */
	r = write_blocks(&in, nt, out, o->output, sb, &have_sb, &st->nr_records, msg, msglen);
	if (r < 0)
		goto out;
	r = ioe_flush(out);
	if (!r && have_sb) {
		r = ioe_write(out, THIN_SB_LOCATION, 1, sb);
		if (!r)
			r = ioe_flush(out);
	}
	if (r < 0)
		goto write_failed;
	ioe_destroy(out);
	out = NULL;
	if (!t.is_bdev && (t.had_content || t.size > in.nr_blocks * MD_BLOCK_SIZE)) {
		r = tidy_file(o->output, &v, in.nr_blocks);
		if (r < 0)
			goto write_failed;
	}
	r = 0;
	goto out;

write_failed:
	fail(msg, msglen, r, "'%s': write failed: %s", o->output, strerror(-r));
	goto out;
nomem:
	r = fail(msg, msglen, -ENOMEM, "out of memory");
out:
	if (out)
		ioe_destroy(out);
	rcmap_destroy(old);
	free(sb);
	free(v.recs);
	if (mapped)
		munmap(buf, len);
	else
		free(buf);
	return r;
}
