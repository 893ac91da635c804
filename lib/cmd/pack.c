#include "cmd/pack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/io.h"
#include "btree/btree.h"
#include "crc/crc32c.h"
#include "spacemap/spacemap.h"
#include "thin/metadata.h"
#include "thin/superblock.h"
#include "util/endian.h"
#include "util/hash.h"

#define PACK_MAGIC "THINPACK"
#define HEADER_SIZE 48u
#define CHUNK_HEADER_SIZE 24u
#define RECORD_SIZE (8u + MD_BLOCK_SIZE)
#define REC_UNVERIFIED 1u
#define REC_NODE_DELTA 2u
#define FLAG_SCANNED 1u

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

/*----------------------------------------------------------------*/
/* reversible B-tree node transform */

static void transpose(uint8_t *p, uint32_t nr, int forward)
{
	uint8_t *tmp = malloc((size_t)nr * 8);

	if (!tmp)
		return;
	for (uint32_t i = 0; i < nr; i++)
		for (int b = 0; b < 8; b++) {
			if (forward)
				tmp[(size_t)b * nr + i] = p[(size_t)i * 8 + b];
			else
				tmp[(size_t)i * 8 + b] = p[(size_t)b * nr + i];
		}
	memcpy(p, tmp, (size_t)nr * 8);
	free(tmp);
}

static void delta(uint8_t *p, uint32_t nr, int forward)
{
	if (forward) {
		for (uint32_t i = nr; i-- > 1;)
			put_le64(p + 8 * i, get_le64(p + 8 * i) - get_le64(p + 8 * (i - 1)));
	} else {
		for (uint32_t i = 1; i < nr; i++)
			put_le64(p + 8 * i, get_le64(p + 8 * i) + get_le64(p + 8 * (i - 1)));
	}
}

/* Applies only to nodes whose arrays fit the block with 8-byte values. */
static int node_shape(const uint8_t *block, uint32_t *max)
{
	struct bt_node n;

	if (crc_block_salt(block, MD_BLOCK_SIZE) != BTREE_CSUM_XOR)
		return 0;
	bt_node_view(block, &n);
	if (n.value_size != 8 || !n.max_entries ||
	    BT_HEADER_SIZE + 16ull * n.max_entries > MD_BLOCK_SIZE)
		return 0;
	*max = n.max_entries;
	return 1;
}

int pack_transform_node(uint8_t *block)
{
	uint32_t max;

	if (!node_shape(block, &max))
		return 0;
	for (int arr = 0; arr < 2; arr++) {
		uint8_t *p = block + BT_HEADER_SIZE + (size_t)arr * 8 * max;
		delta(p, max, 1);
		transpose(p, max, 1);
	}
	return 1;
}

void pack_untransform_node(uint8_t *block)
{
	/* the header is untouched, so the shape is readable without the csum */
	struct bt_node n;

	bt_node_view(block, &n);
	if (n.value_size != 8 || BT_HEADER_SIZE + 16ull * n.max_entries > MD_BLOCK_SIZE)
		return;
	for (int arr = 0; arr < 2; arr++) {
		uint8_t *p = block + BT_HEADER_SIZE + (size_t)arr * 8 * n.max_entries;
		transpose(p, n.max_entries, 0);
		delta(p, n.max_entries, 0);
	}
}

/*----------------------------------------------------------------*/

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

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!n)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct packer {
	int fd;
	uint8_t *raw;          /* records of the current chunk */
	uint32_t nr;           /* records in raw */
	uint8_t *z;
	uLongf zcap;
	uint64_t total, bytes;
	uint64_t chain;        /* running xxh64 over chunk checksums */
};

static int flush_chunk(struct packer *p)
{
	uLongf zlen = p->zcap;
	uint8_t hdr[CHUNK_HEADER_SIZE];
	uint64_t h;
	int r;

	if (!p->nr)
		return 0;
	if (compress2(p->z, &zlen, p->raw, (uLong)p->nr * RECORD_SIZE, 6) != Z_OK)
		return -EIO;
	h = hash64(p->z, zlen, 0);
	memcpy(hdr, "CHNK", 4);
	put_le32(hdr + 4, p->nr);
	put_le32(hdr + 8, (uint32_t)zlen);
	put_le32(hdr + 12, p->nr * RECORD_SIZE);
	put_le64(hdr + 16, h);
	r = write_all(p->fd, hdr, sizeof(hdr));
	if (!r)
		r = write_all(p->fd, p->z, zlen);
	p->chain = hash64(&h, 8, p->chain);
	p->bytes += sizeof(hdr) + zlen;
	p->nr = 0;
	return r;
}

static int add_record(struct packer *p, uint64_t blocknr, const uint8_t *block, int verified)
{
	uint8_t *rec = p->raw + (size_t)p->nr * RECORD_SIZE;
	uint64_t flags = verified ? 0 : REC_UNVERIFIED;

	memcpy(rec + 8, block, MD_BLOCK_SIZE);
	if (verified && pack_transform_node(rec + 8))
		flags |= REC_NODE_DELTA;
	put_le64(rec, blocknr | (flags << 56));
	p->nr++;
	p->total++;
	if (p->nr == PACK_BLOCKS_PER_CHUNK)
		return flush_chunk(p);
	return 0;
}

static int known_block(const uint8_t *block, uint64_t loc)
{
	uint32_t salt = crc_block_salt(block, MD_BLOCK_SIZE);

	return (salt == SUPERBLOCK_CSUM_XOR || salt == BTREE_CSUM_XOR || salt == BITMAP_CSUM_XOR ||
		salt == INDEX_CSUM_XOR) &&
	       get_le64(block + 8) == loc;
}

static int is_zero(const uint8_t *b)
{
	static const uint8_t zero[64];

	for (size_t i = 0; i < MD_BLOCK_SIZE; i += 64)
		if (memcmp(b + i, zero, 64))
			return 0;
	return 1;
}

/* Marks used blocks from the metadata space map; 0 if usable. */
static int used_blocks(struct thin_md *md, struct rcmap **out)
{
	struct report *rep;
	struct rcmap *sm;
	uint64_t nr;
	int r;

	if (md->sb_err || md->sb.magic != THIN_MAGIC)
		return -EINVAL;
	nr = md->sb.metadata_sm.nr_blocks;
	if (!nr || nr > md->ioe->nr_blocks || nr > SM_MAX_METADATA_BLOCKS)
		return -EINVAL;
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
	if (r) {
		rcmap_destroy(sm);
		return r;
	}
	*out = sm;
	return 0;
}

static int pack_blocks(struct thin_md *md, struct packer *p, struct rcmap *sm)
{
	enum { RUN = 64 };
	uint8_t *buf = ioe_alloc_blocks(RUN);
	uint64_t nr = md->ioe->nr_blocks;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	if (sm && rcmap_nr_blocks(sm) < nr)
		nr = rcmap_nr_blocks(sm);
	for (uint64_t b = 0; b < nr && !r;) {
		unsigned n = 0;

		if (sm && !rcmap_get(sm, b)) {
			b++;
			continue;
		}
		while (n < RUN && b + n < nr && (!sm || rcmap_get(sm, b + n)))
			n++;
		r = ioe_read(md->ioe, b, n, buf);
		for (unsigned i = 0; i < n && !r; i++) {
			const uint8_t *blk = buf + (size_t)i * MD_BLOCK_SIZE;
			if (!sm && is_zero(blk))
				continue;
			r = add_record(p, b + i, blk, known_block(blk, b + i));
		}
		b += n;
	}
	free(buf);
	return r;
}

int thin_pack(const char *in, const char *out, struct pack_stats *st, char *msg, size_t msglen)
{
	struct packer p = { .fd = -1 };
	struct thin_md *md = NULL;
	struct rcmap *sm = NULL;
	uint8_t hdr[HEADER_SIZE], trailer[16];
	int r;

	memset(st, 0, sizeof(*st));
	r = thin_md_open(in, THIN_MD_SHARED, &md, msg, msglen);
	if (r < 0)
		return r;
	st->nr_blocks = md->ioe->nr_blocks;
	st->scanned = used_blocks(md, &sm) < 0;
	p.raw = malloc((size_t)PACK_BLOCKS_PER_CHUNK * RECORD_SIZE);
	p.zcap = compressBound((uLong)PACK_BLOCKS_PER_CHUNK * RECORD_SIZE);
	p.z = malloc(p.zcap);
	if (!p.raw || !p.z) {
		r = fail(msg, msglen, -ENOMEM, "out of memory");
		goto out;
	}
	p.fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (p.fd < 0) {
		r = fail(msg, msglen, -errno, "%s: cannot create: %s", out, strerror(errno));
		goto out;
	}
	/* placeholder header, rewritten at the end with the record count */
	memset(hdr, 0, sizeof(hdr));
	r = write_all(p.fd, hdr, sizeof(hdr));
	if (!r)
		r = pack_blocks(md, &p, sm);
	if (!r)
		r = flush_chunk(&p);
	if (r) {
		fail(msg, msglen, r, "%s: %s", in, strerror(-r));
		goto out;
	}
	memcpy(trailer, "END!", 4);
	put_le32(trailer + 4, (uint32_t)p.total);
	put_le64(trailer + 8, p.chain);
	memcpy(hdr, PACK_MAGIC, 8);
	put_le32(hdr + 8, PACK_VERSION);
	put_le32(hdr + 12, MD_BLOCK_SIZE);
	put_le64(hdr + 16, st->nr_blocks);
	put_le64(hdr + 24, p.total);
	put_le32(hdr + 32, st->scanned ? FLAG_SCANNED : 0);
	put_le64(hdr + 40, hash64(hdr, 40, 0));
	r = write_all(p.fd, trailer, sizeof(trailer));
	if (!r && pwrite(p.fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		r = -EIO;
	if (!r && fsync(p.fd) < 0)
		r = -errno;
	if (r)
		fail(msg, msglen, r, "%s: write failed: %s", out, strerror(-r));
	st->nr_records = p.total;
	st->bytes_out = HEADER_SIZE + p.bytes + sizeof(trailer);
out:
	if (p.fd >= 0)
		close(p.fd);
	free(p.raw);
	free(p.z);
	rcmap_destroy(sm);
	thin_md_close(md);
	return r;
}

/*----------------------------------------------------------------*/

static int holds_metadata(int fd)
{
	uint8_t *b = ioe_alloc_blocks(1);
	int r = 0;

	if (!b)
		return 0;
	if (pread(fd, b, MD_BLOCK_SIZE, 0) == (ssize_t)MD_BLOCK_SIZE)
		r = crc_block_salt(b, MD_BLOCK_SIZE) == SUPERBLOCK_CSUM_XOR &&
		    get_le64(b + 32) == THIN_MAGIC;
	free(b);
	return r;
}

static int open_output(const char *out, uint64_t nr_blocks, int force, char *msg, size_t msglen)
{
	struct stat st;
	int fd = open(out, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return fail(msg, msglen, -errno, "%s: cannot open: %s", out, strerror(errno));
	if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		close(fd);
		return fail(msg, msglen, -EINVAL, "Not a block device or regular file '%s'.", out);
	}
	if (!force && holds_metadata(fd)) {
		close(fd);
		return fail(msg, msglen, -EEXIST,
			    "%s: the destination appears to already contain metadata; use -f to overwrite it",
			    out);
	}
	if (S_ISREG(st.st_mode)) {
		/* blocks absent from the pack must read as zeros */
		if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)(nr_blocks * MD_BLOCK_SIZE)) < 0) {
			int r = -errno;
			close(fd);
			return fail(msg, msglen, r, "%s: cannot size the output: %s", out, strerror(-r));
		}
	}
	return fd;
}

struct unpacker {
	int in, out;
	uint64_t nr_blocks, done, chain;
	uint8_t *z, *raw;
};

static int unpack_chunk(struct unpacker *u, const uint8_t *hdr, char *msg, size_t msglen)
{
	uint32_t nr = get_le32(hdr + 4), zlen = get_le32(hdr + 8), rawlen = get_le32(hdr + 12);
	uint64_t h = get_le64(hdr + 16);
	uLongf got = (uLongf)rawlen;

	if (!nr || nr > PACK_BLOCKS_PER_CHUNK || rawlen != nr * RECORD_SIZE ||
	    zlen > compressBound((uLong)PACK_BLOCKS_PER_CHUNK * RECORD_SIZE))
		return fail(msg, msglen, -EILSEQ, "corrupt chunk header after %llu blocks",
			    (unsigned long long)u->done);
	if (read_all(u->in, u->z, zlen) < 0)
		return fail(msg, msglen, -EILSEQ, "truncated pack file");
	if (hash64(u->z, zlen, 0) != h)
		return fail(msg, msglen, -EILSEQ, "chunk checksum mismatch after %llu blocks",
			    (unsigned long long)u->done);
	if (uncompress(u->raw, &got, u->z, zlen) != Z_OK || got != rawlen)
		return fail(msg, msglen, -EILSEQ, "corrupt compressed chunk after %llu blocks",
			    (unsigned long long)u->done);
	u->chain = hash64(&h, 8, u->chain);
	for (uint32_t i = 0; i < nr; i++) {
		uint8_t *rec = u->raw + (size_t)i * RECORD_SIZE;
		uint64_t v = get_le64(rec), blocknr = v & ((1ull << 56) - 1);
		unsigned flags = (unsigned)(v >> 56);
		uint8_t *blk = rec + 8;

		if (blocknr >= u->nr_blocks)
			return fail(msg, msglen, -EILSEQ, "block %llu beyond the packed device",
				    (unsigned long long)blocknr);
		if (flags & REC_NODE_DELTA)
			pack_untransform_node(blk);
		if (!(flags & REC_UNVERIFIED) && !known_block(blk, blocknr))
			return fail(msg, msglen, -EILSEQ, "block %llu fails its own checksum",
				    (unsigned long long)blocknr);
		if (pwrite(u->out, blk, MD_BLOCK_SIZE, (off_t)(blocknr * MD_BLOCK_SIZE)) !=
		    (ssize_t)MD_BLOCK_SIZE)
			return fail(msg, msglen, -EIO, "write of block %llu failed",
				    (unsigned long long)blocknr);
		u->done++;
	}
	return 0;
}

static int read_header(int fd, uint64_t *nr_blocks, uint64_t *nr_records, uint32_t *flags,
		       char *msg, size_t msglen)
{
	uint8_t hdr[HEADER_SIZE];

	if (read_all(fd, hdr, sizeof(hdr)) < 0 || memcmp(hdr, PACK_MAGIC, 8))
		return fail(msg, msglen, -EINVAL, "Not a pack file");
	if (hash64(hdr, 40, 0) != get_le64(hdr + 40))
		return fail(msg, msglen, -EILSEQ, "pack file header checksum mismatch");
	if (get_le32(hdr + 8) != PACK_VERSION)
		return fail(msg, msglen, -EINVAL, "unsupported pack file version %u",
			    get_le32(hdr + 8));
	if (get_le32(hdr + 12) != MD_BLOCK_SIZE)
		return fail(msg, msglen, -EINVAL, "block size is not 4096");
	*nr_blocks = get_le64(hdr + 16);
	*nr_records = get_le64(hdr + 24);
	*flags = get_le32(hdr + 32);
	if (*nr_blocks > (1ull << 40) || *nr_records > *nr_blocks)
		return fail(msg, msglen, -EILSEQ, "implausible pack file header");
	return 0;
}

int thin_unpack(const char *in, const char *out, int force, struct pack_stats *st, char *msg,
		size_t msglen)
{
	struct unpacker u = { .in = -1, .out = -1 };
	uint64_t nr_records = 0;
	uint32_t flags = 0;
	uint8_t hdr[CHUNK_HEADER_SIZE];
	int r;

	memset(st, 0, sizeof(*st));
	u.in = open(in, O_RDONLY | O_CLOEXEC);
	if (u.in < 0)
		return fail(msg, msglen, -errno, "Couldn't find input file '%s'", in);
	r = read_header(u.in, &u.nr_blocks, &nr_records, &flags, msg, msglen);
	if (r)
		goto out;
	u.z = malloc(compressBound((uLong)PACK_BLOCKS_PER_CHUNK * RECORD_SIZE));
	u.raw = malloc((size_t)PACK_BLOCKS_PER_CHUNK * RECORD_SIZE);
	if (!u.z || !u.raw) {
		r = fail(msg, msglen, -ENOMEM, "out of memory");
		goto out;
	}
	u.out = open_output(out, u.nr_blocks, force, msg, msglen);
	if (u.out < 0) {
		r = u.out;
		goto out;
	}
	for (;;) {
		if (read_all(u.in, hdr, 4) < 0) {
			r = fail(msg, msglen, -EILSEQ, "truncated pack file (no trailer)");
			goto out;
		}
		if (!memcmp(hdr, "END!", 4))
			break;
		if (memcmp(hdr, "CHNK", 4) || read_all(u.in, hdr + 4, CHUNK_HEADER_SIZE - 4) < 0) {
			r = fail(msg, msglen, -EILSEQ, "corrupt pack file after %llu blocks",
				 (unsigned long long)u.done);
			goto out;
		}
		r = unpack_chunk(&u, hdr, msg, msglen);
		if (r)
			goto out;
	}
	if (read_all(u.in, hdr, 12) < 0 || get_le32(hdr) != (uint32_t)u.done ||
	    get_le64(hdr + 4) != u.chain || u.done != nr_records) {
		r = fail(msg, msglen, -EILSEQ, "pack file trailer does not match its contents");
		goto out;
	}
	if (fsync(u.out) < 0) {
		r = fail(msg, msglen, -errno, "%s: fsync failed: %s", out, strerror(errno));
		goto out;
	}
	st->nr_blocks = u.nr_blocks;
	st->nr_records = u.done;
	st->scanned = !!(flags & FLAG_SCANNED);
out:
	if (u.in >= 0)
		close(u.in);
	if (u.out >= 0)
		close(u.out);
	free(u.z);
	free(u.raw);
	return r;
}
