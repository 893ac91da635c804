/*
 * thin_damage: test-only damage injector for dm-thin metadata files.
 * Operations run in command-line order on the file, in place.  Semantic
 * damage re-checksums the block so that only the intended rule breaks;
 * --flip-byte and --zero-block do not.  Query operations print facts that
 * test scripts need to aim the damage (roots, leaves, free blocks).
 *
 *   --info                          superblock roots and sizes (NAME=VALUE lines)
 *   --dev-root DEV                  root block of DEV's mapping tree
 *   --leaf-of DEV[:N]               Nth leaf (default 0) of DEV's mapping tree
 *   --node-info BLOCK               header of a btree node
 *   --mapping DEV:VBLOCK            "data time" of a mapping
 *   --get-node-key BLOCK:INDEX      key INDEX of a node
 *   --get-node-value BLOCK:INDEX    value INDEX of a node (first 8 bytes; 4 for value_size 4)
 *   --find-nodes KIND               checksum-valid nodes not in the live trees' roots, one
 *                                   block a line; KIND: top (leaf, value_size 8, values
 *                                   look like block numbers) or details (leaf, value_size 24)
 *   --flip-byte BLOCK:OFFSET        xor the byte with 0xff (no re-checksum)
 *   --zero-block BLOCK
 *   --set-sb-field NAME=VALUE       (--sb-block B selects a snapshot copy)
 *   --set-node-key BLOCK:INDEX=V
 *   --set-node-value BLOCK:INDEX=V  (first 8 bytes; 4 for value_size 4)
 *   --set-node-field BLOCK:FIELD=V  nr_entries max_entries flags value_size blocknr
 *   --set-bitmap-entry SM:BLOCK=COUNT   raw bitmap entry (0..3), SM = data|metadata
 *   --set-count SM:BLOCK=COUNT      set a ref count, keeping nr_free / nr_allocated
 *                                   and the overflow tree (entry must exist) right
 *   --set-index-field SM:BITMAP:FIELD=V  nr_free none_free_before blocknr
 *   --set-details DEV:FIELD=V | BLOCK:INDEX:FIELD=V
 *                                   mapped_blocks transaction_id creation_time snapshotted_time
 *   --leak SM N                     mark N free blocks as used (hints kept right)
 *   --live-blocks                   "BLOCK TYPE" for every block in use (metadata space map
 *                                   count > 0) whose checksum is valid: superblock, node,
 *                                   bitmap or index
 *   --corrupt BLOCK:SEED            random damage to a block (SEED picks it: 1-3 random
 *                                   bytes, or a header field, key or value set to an
 *                                   edge value), re-checksummed with the salt the block
 *                                   validates under; prints what was changed
 *   --copy-block SRC:DST            copy block SRC to DST with DST's number in it,
 *                                   re-checksummed with SRC's salt
 *   --plant-newer-tree              write, into the never-written blocks right above the
 *                                   highest written one, an orphan copy of the live
 *                                   top-level leaf, details leaf and one device's first
 *                                   leaf with every time stamp one above the superblock's
 *                                   (a newer-looking tree no space map accounts for);
 *                                   prints the three blocks
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block-cache/block-cache.h"
#include "btree/btree.h"
#include "crc/crc32c.h"
#include "spacemap/spacemap.h"
#include "thin/superblock.h"

struct dm {
	int fd;
	uint64_t nr_blocks;
	uint64_t sb_block;   /* superblock that --set-sb-field edits */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("thin_damage: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void rd(struct dm *d, uint64_t b, uint8_t *buf)
{
	if (b >= d->nr_blocks || pread(d->fd, buf, MD_BLOCK_SIZE, (off_t)(b * MD_BLOCK_SIZE)) !=
					 (ssize_t)MD_BLOCK_SIZE)
		die("cannot read block %" PRIu64, b);
}

static void wr(struct dm *d, uint64_t b, const uint8_t *buf)
{
	if (pwrite(d->fd, buf, MD_BLOCK_SIZE, (off_t)(b * MD_BLOCK_SIZE)) != (ssize_t)MD_BLOCK_SIZE)
		die("cannot write block %" PRIu64, b);
}

/* Re-checksum with the salt the block currently carries (or the given one). */
static void wr_csum(struct dm *d, uint64_t b, uint8_t *buf, uint32_t salt)
{
	put_le32(buf, crc_block_csum(buf, MD_BLOCK_SIZE, salt));
	wr(d, b, buf);
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		die("bad number '%s'", s);
	return v;
}

/* Splits "A:B=C" style arguments: fills parts (up to max), returns count. */
static int split(char *s, char **parts, int max)
{
	int n = 0;

	while (n < max) {
		parts[n++] = s;
		s = strpbrk(s, ":=");
		if (!s)
			break;
		*s++ = '\0';
	}
	return n;
}

static void read_sb(struct dm *d, struct thin_sb *sb)
{
	uint8_t buf[MD_BLOCK_SIZE];

	rd(d, 0, buf);
	thin_sb_unpack((const struct disk_superblock *)buf, sb);
}

/*----------------------------------------------------------------*/
/* btree helpers (no validation beyond the header: the input may be damaged) */

static int lookup(struct dm *d, uint64_t root, uint64_t key, uint64_t *leaf, uint32_t *idx)
{
	uint8_t buf[MD_BLOCK_SIZE];
	uint64_t b = root;

	for (int depth = 0; depth < BT_MAX_DEPTH; depth++) {
		struct bt_node n;
		uint32_t i, found = UINT32_MAX;

		rd(d, b, buf);
		bt_node_view(buf, &n);
		if (n.nr_entries > n.max_entries || n.max_entries > 336)
			return -EILSEQ;
		for (i = 0; i < n.nr_entries; i++)
			if (bt_key(&n, i) <= key)
				found = i;
		if (found == UINT32_MAX)
			return -ENODATA;
		if (bt_is_leaf(&n)) {
			if (bt_key(&n, found) != key)
				return -ENODATA;
			*leaf = b;
			*idx = found;
			return 0;
		}
		b = get_le64(bt_value(&n, found));
	}
	return -ELOOP;
}

/* Nth leaf in key order (depth first). */
static int nth_leaf(struct dm *d, uint64_t b, uint64_t *want, uint64_t *out, int depth)
{
	uint8_t buf[MD_BLOCK_SIZE];
	struct bt_node n;

	if (depth > BT_MAX_DEPTH)
		return -ELOOP;
	rd(d, b, buf);
	bt_node_view(buf, &n);
	if (bt_is_leaf(&n)) {
		if (!*want) {
			*out = b;
			return 1;
		}
		(*want)--;
		return 0;
	}
	if (n.nr_entries > n.max_entries || n.max_entries > 336)
		return -EILSEQ;
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		int r = nth_leaf(d, get_le64(bt_value(&n, i)), want, out, depth + 1);
		if (r)
			return r;
	}
	return 0;
}

static uint64_t dev_root(struct dm *d, uint64_t dev)
{
	struct thin_sb sb;
	uint8_t buf[MD_BLOCK_SIZE];
	struct bt_node n;
	uint64_t leaf;
	uint32_t idx;

	read_sb(d, &sb);
	if (lookup(d, sb.data_mapping_root, dev, &leaf, &idx) < 0)
		die("device %" PRIu64 " not found in the top-level mapping tree", dev);
	rd(d, leaf, buf);
	bt_node_view(buf, &n);
	return get_le64(bt_value(&n, idx));
}

/*----------------------------------------------------------------*/
/* space maps */

struct sm_loc {
	uint64_t bitmap;        /* block of the bitmap */
	unsigned entry;         /* entry within it */
	uint64_t index_block;   /* leaf (data) or index block (metadata) */
	size_t index_off;       /* byte offset of the index entry there */
	uint32_t index_salt;
};

static struct sm_disk_info sm_info(struct dm *d, const char *sm)
{
	struct thin_sb sb;

	read_sb(d, &sb);
	if (!strcmp(sm, "data"))
		return sb.data_sm;
	if (!strcmp(sm, "metadata"))
		return sb.metadata_sm;
	die("space map must be 'data' or 'metadata', not '%s'", sm);
}

static void sm_locate(struct dm *d, const struct sm_disk_info *info, uint64_t block,
		      struct sm_loc *loc)
{
	uint64_t i = block / SM_ENTRIES_PER_BITMAP;
	uint8_t buf[MD_BLOCK_SIZE];

	if (block >= info->nr_blocks)
		die("block %" PRIu64 " beyond the space map (%" PRIu64 " blocks)", block,
		    info->nr_blocks);
	loc->entry = (unsigned)(block % SM_ENTRIES_PER_BITMAP);
	if (info->kind == SM_DATA) {
		struct bt_node n;
		uint32_t idx;

		if (lookup(d, info->bitmap_root, i, &loc->index_block, &idx) < 0)
			die("bitmap %" PRIu64 " not in the data space map index", i);
		rd(d, loc->index_block, buf);
		bt_node_view(buf, &n);
		loc->index_off = (size_t)(bt_value(&n, idx) - buf);
		loc->index_salt = BTREE_CSUM_XOR;
	} else {
		loc->index_block = info->bitmap_root;
		loc->index_off = 16 + SM_INDEX_ENTRY_SIZE * i;
		loc->index_salt = INDEX_CSUM_XOR;
		rd(d, loc->index_block, buf);
	}
	loc->bitmap = get_le64(buf + loc->index_off);
}

static void set_sb_u64(struct dm *d, size_t off, uint64_t v)
{
	uint8_t buf[MD_BLOCK_SIZE];

	rd(d, 0, buf);
	put_le64(buf + off, v);
	wr_csum(d, 0, buf, SUPERBLOCK_CSUM_XOR);
}

/* Sets a raw entry; with hints, nr_free / none_free_before / nr_allocated follow. */
static void sm_set_entry(struct dm *d, const char *sm, uint64_t block, unsigned v, int hints)
{
	struct sm_disk_info info = sm_info(d, sm);
	uint8_t buf[MD_BLOCK_SIZE];
	struct sm_loc loc;
	unsigned old;

	sm_locate(d, &info, block, &loc);
	rd(d, loc.bitmap, buf);
	old = sm_bitmap_get(buf, loc.entry);
	sm_bitmap_set(buf, loc.entry, v);
	wr_csum(d, loc.bitmap, buf, BITMAP_CSUM_XOR);
	if (!hints || !old == !v)
		return;
	rd(d, loc.index_block, buf);
	{
		uint8_t *ie = buf + loc.index_off;
		uint32_t nr_free = get_le32(ie + 8), nfb = get_le32(ie + 12);

		put_le32(ie + 8, v ? nr_free - 1 : nr_free + 1);
		if (!v && loc.entry < nfb)
			put_le32(ie + 12, loc.entry);
	}
	wr_csum(d, loc.index_block, buf, loc.index_salt);
	set_sb_u64(d, info.kind == SM_DATA ? 64 + 8 : 192 + 8,
		   v ? info.nr_allocated + 1 : info.nr_allocated - 1);
}

static void op_leak(struct dm *d, const char *sm, uint64_t n)
{
	struct sm_disk_info info = sm_info(d, sm);
	uint8_t buf[MD_BLOCK_SIZE];
	uint64_t done = 0;

	/* the highest free blocks first: far from anything a writer allocates next */
	for (uint64_t b = info.nr_blocks; b-- > 0 && done < n;) {
		struct sm_loc loc;

		sm_locate(d, &info, b, &loc);
		rd(d, loc.bitmap, buf);
		if (sm_bitmap_get(buf, loc.entry))
			continue;
		sm_set_entry(d, sm, b, 1, 1);
		printf("leaked %s block %" PRIu64 "\n", sm, b);
		done++;
	}
	if (done < n)
		die("only %" PRIu64 " free %s blocks", done, sm);
}

/*----------------------------------------------------------------*/
/* superblock fields */

struct field {
	const char *name;
	size_t off, size;
};

static const struct field sb_fields[] = {
	{ "csum", 0, 4 },
	{ "flags", 4, 4 },
	{ "blocknr", 8, 8 },
	{ "magic", 32, 8 },
	{ "version", 40, 4 },
	{ "time", 44, 4 },
	{ "trans_id", 48, 8 },
	{ "held_root", 56, 8 },
	{ "data_nr_blocks", 64, 8 },
	{ "data_nr_allocated", 72, 8 },
	{ "data_bitmap_root", 80, 8 },
	{ "data_ref_count_root", 88, 8 },
	{ "metadata_sm_nr_blocks", 192, 8 },
	{ "metadata_nr_allocated", 200, 8 },
	{ "metadata_bitmap_root", 208, 8 },
	{ "metadata_ref_count_root", 216, 8 },
	{ "data_mapping_root", 320, 8 },
	{ "device_details_root", 328, 8 },
	{ "data_block_size", 336, 4 },
	{ "metadata_block_size", 340, 4 },
	{ "metadata_nr_blocks", 344, 8 },
	{ "compat_flags", 352, 4 },
	{ "compat_ro_flags", 356, 4 },
	{ "incompat_flags", 360, 4 },
	{ NULL, 0, 0 },
};

static void op_set_sb_field(struct dm *d, char *arg)
{
	char *p[2];
	uint8_t buf[MD_BLOCK_SIZE];

	if (split(arg, p, 2) != 2)
		die("--set-sb-field NAME=VALUE");
	for (const struct field *f = sb_fields; f->name; f++) {
		if (strcmp(f->name, p[0]))
			continue;
		rd(d, d->sb_block, buf);
		if (f->size == 4)
			put_le32(buf + f->off, (uint32_t)num(p[1]));
		else
			put_le64(buf + f->off, num(p[1]));
		if (!strcmp(f->name, "csum"))
			wr(d, d->sb_block, buf);
		else
			wr_csum(d, d->sb_block, buf, SUPERBLOCK_CSUM_XOR);
		return;
	}
	die("unknown superblock field '%s'", p[0]);
}

static void op_info(struct dm *d)
{
	uint8_t buf[MD_BLOCK_SIZE];

	rd(d, d->sb_block, buf);
	for (const struct field *f = sb_fields; f->name; f++)
		printf("%s=%" PRIu64 "\n", f->name,
		       f->size == 4 ? (uint64_t)get_le32(buf + f->off) : get_le64(buf + f->off));
}

/*----------------------------------------------------------------*/
/* nodes */

static void op_node(struct dm *d, char *arg, int what)
{
	char *p[3];
	uint8_t buf[MD_BLOCK_SIZE];
	struct bt_node n;
	uint64_t b, v;

	if (split(arg, p, 3) != 3)
		die("expected BLOCK:X=VALUE");
	b = num(p[0]);
	v = num(p[2]);
	rd(d, b, buf);
	bt_node_view(buf, &n);
	if (what != 'f' && (n.max_entries > 336 || n.value_size > 24 || num(p[1]) >= n.max_entries ||
			    (uint64_t)n.max_entries * (8 + n.value_size) + BT_HEADER_SIZE >
				    MD_BLOCK_SIZE))
		die("block %" PRIu64 " is not a node with slot %s", b, p[1]);
	if (what == 'k') {
		put_le64(buf + BT_HEADER_SIZE + 8 * num(p[1]), v);
	} else if (what == 'v') {
		uint8_t *val = (uint8_t *)bt_value(&n, (uint32_t)num(p[1]));
		if (n.value_size == 4)
			put_le32(val, (uint32_t)v);
		else
			put_le64(val, v);
	} else {
		static const struct field nf[] = {
			{ "flags", 4, 4 },	 { "blocknr", 8, 8 },	  { "nr_entries", 16, 4 },
			{ "max_entries", 20, 4 }, { "value_size", 24, 4 }, { NULL, 0, 0 },
		};
		const struct field *f;
		for (f = nf; f->name && strcmp(f->name, p[1]); f++)
			;
		if (!f->name)
			die("unknown node field '%s'", p[1]);
		if (f->size == 4)
			put_le32(buf + f->off, (uint32_t)v);
		else
			put_le64(buf + f->off, v);
	}
	wr_csum(d, b, buf, BTREE_CSUM_XOR);
}

static void op_node_info(struct dm *d, uint64_t b)
{
	uint8_t buf[MD_BLOCK_SIZE];
	struct bt_node n;

	rd(d, b, buf);
	bt_node_view(buf, &n);
	printf("flags=%u\nblocknr=%" PRIu64 "\nnr_entries=%u\nmax_entries=%u\nvalue_size=%u\n",
	       n.flags, n.blocknr, n.nr_entries, n.max_entries, n.value_size);
	if (n.nr_entries && n.nr_entries <= n.max_entries && n.max_entries <= 336) {
		printf("first_key=%" PRIu64 "\nlast_key=%" PRIu64 "\n", bt_key(&n, 0),
		       bt_key(&n, n.nr_entries - 1));
		if (n.value_size == 8)
			printf("first_value=%" PRIu64 "\n", get_le64(bt_value(&n, 0)));
	}
}

static void op_details(struct dm *d, char *arg)
{
	static const struct field df[] = {
		{ "mapped_blocks", 0, 8 },  { "transaction_id", 8, 8 },
		{ "creation_time", 16, 4 }, { "snapshotted_time", 20, 4 },
		{ NULL, 0, 0 },
	};
	char *p[4];
	int n = split(arg, p, 4);
	uint8_t buf[MD_BLOCK_SIZE];
	struct bt_node nd;
	const struct field *f;
	uint64_t leaf;
	uint32_t idx;
	uint8_t *val;

	if (n == 3) {
		struct thin_sb sb;
		read_sb(d, &sb);
		if (lookup(d, sb.device_details_root, num(p[0]), &leaf, &idx) < 0)
			die("device %s not in the details tree", p[0]);
	} else if (n == 4) {
		leaf = num(p[0]);
		idx = (uint32_t)num(p[1]);
		p[1] = p[2];
		p[2] = p[3];
	} else {
		die("--set-details DEV:FIELD=V or BLOCK:INDEX:FIELD=V");
	}
	for (f = df; f->name && strcmp(f->name, p[1]); f++)
		;
	if (!f->name)
		die("unknown details field '%s'", p[1]);
	rd(d, leaf, buf);
	bt_node_view(buf, &nd);
	val = (uint8_t *)bt_value(&nd, idx);
	if (f->size == 4)
		put_le32(val + f->off, (uint32_t)num(p[2]));
	else
		put_le64(val + f->off, num(p[2]));
	wr_csum(d, leaf, buf, BTREE_CSUM_XOR);
}

static void op_index_field(struct dm *d, char *arg)
{
	char *p[4];
	struct sm_disk_info info;
	struct sm_loc loc;
	uint8_t buf[MD_BLOCK_SIZE];
	uint64_t v;

	if (split(arg, p, 4) != 4)
		die("--set-index-field SM:BITMAP:FIELD=V");
	info = sm_info(d, p[0]);
	sm_locate(d, &info, num(p[1]) * SM_ENTRIES_PER_BITMAP, &loc);
	v = num(p[3]);
	rd(d, loc.index_block, buf);
	if (!strcmp(p[2], "blocknr"))
		put_le64(buf + loc.index_off, v);
	else if (!strcmp(p[2], "nr_free"))
		put_le32(buf + loc.index_off + 8, (uint32_t)v);
	else if (!strcmp(p[2], "none_free_before"))
		put_le32(buf + loc.index_off + 12, (uint32_t)v);
	else
		die("unknown index field '%s'", p[2]);
	wr_csum(d, loc.index_block, buf, loc.index_salt);
}

static void op_mapping(struct dm *d, char *arg)
{
	char *p[2];
	uint8_t buf[MD_BLOCK_SIZE];
	struct bt_node n;
	uint64_t leaf, v;
	uint32_t idx;

	if (split(arg, p, 2) != 2)
		die("--mapping DEV:VBLOCK");
	if (lookup(d, dev_root(d, num(p[0])), num(p[1]), &leaf, &idx) < 0)
		die("no mapping %s:%s", p[0], p[1]);
	rd(d, leaf, buf);
	bt_node_view(buf, &n);
	v = get_le64(bt_value(&n, idx));
	printf("%" PRIu64 " %u\n", thin_bt_block(v), thin_bt_time(v));
}

/*----------------------------------------------------------------*/

enum {
	O_INFO = 256, O_DEV_ROOT, O_LEAF_OF, O_NODE_INFO, O_MAPPING, O_FLIP, O_ZERO, O_SB_FIELD,
	O_SB_BLOCK, O_KEY, O_VALUE, O_NFIELD, O_BITMAP, O_COUNT, O_INDEX, O_DETAILS, O_LEAK,
	O_PLANT, O_COPY,
	O_GET_KEY, O_GET_VALUE, O_FIND_NODES, O_LIVE, O_CORRUPT,
};

static void op_get(struct dm *d, char *arg, int key)
{
	char *p[2];
	uint8_t buf[MD_BLOCK_SIZE];
	struct bt_node n;
	uint64_t i;

	if (split(arg, p, 2) != 2)
		die("expected BLOCK:INDEX");
	rd(d, num(p[0]), buf);
	bt_node_view(buf, &n);
	i = num(p[1]);
	if (n.max_entries > 336 || i >= n.max_entries)
		die("index %s beyond max_entries", p[1]);
	if (key)
		printf("%" PRIu64 "\n", bt_key(&n, (uint32_t)i));
	else
		printf("%" PRIu64 "\n", n.value_size == 4 ? (uint64_t)get_le32(bt_value(&n, (uint32_t)i))
						   : get_le64(bt_value(&n, (uint32_t)i)));
}

/* Stale tree roots for "superblock points at an older root" damage. */
static void op_find_nodes(struct dm *d, const char *kind)
{
	uint8_t buf[MD_BLOCK_SIZE];
	struct thin_sb sb;
	int top = !strcmp(kind, "top");

	if (!top && strcmp(kind, "details"))
		die("--find-nodes top|details");
	read_sb(d, &sb);
	for (uint64_t b = 1; b < d->nr_blocks; b++) {
		struct bt_node n;
		uint32_t vs;
		int ok = 1;

		rd(d, b, buf);
		if (get_le64(buf + 8) != b || bt_node_check_raw(buf, b, &vs) != 0)
			continue;
		bt_node_view(buf, &n);
		if (!bt_is_leaf(&n) || !n.nr_entries || b == sb.data_mapping_root ||
		    b == sb.device_details_root || vs != (top ? 8u : 24u))
			continue;
		for (uint32_t i = 0; top && i < n.nr_entries; i++)
			if (get_le64(bt_value(&n, i)) >= d->nr_blocks)
				ok = 0;
		if (ok)
			printf("%" PRIu64 "\n", b);
	}
}

/*----------------------------------------------------------------*/
/* checksum-valid random corruption */

static const struct {
	const char *name;
	uint32_t salt;
} salts[] = {
	{ "superblock", SUPERBLOCK_CSUM_XOR },
	{ "node", BTREE_CSUM_XOR },
	{ "bitmap", BITMAP_CSUM_XOR },
	{ "index", INDEX_CSUM_XOR },
};

/* Index into salts[] of the salt the block's checksum is valid under, or -1. */
static int block_type(const uint8_t *buf)
{
	for (size_t i = 0; i < sizeof(salts) / sizeof(salts[0]); i++)
		if (get_le32(buf) == crc_block_csum(buf, MD_BLOCK_SIZE, salts[i].salt))
			return (int)i;
	return -1;
}

static int in_use(struct dm *d, uint64_t b)
{
	struct sm_disk_info info = sm_info(d, "metadata");
	uint8_t buf[MD_BLOCK_SIZE];
	struct sm_loc loc;

	if (b >= info.nr_blocks)
		return 0;
	sm_locate(d, &info, b, &loc);
	if (loc.bitmap >= d->nr_blocks)
		return 0;
	rd(d, loc.bitmap, buf);
	return sm_bitmap_get(buf, loc.entry) != 0;
}

static void op_live_blocks(struct dm *d)
{
	uint8_t buf[MD_BLOCK_SIZE];

	for (uint64_t b = 0; b < d->nr_blocks; b++) {
		int t;
		rd(d, b, buf);
		t = block_type(buf);
		if (t >= 0 && (b == 0 || in_use(d, b)))
			printf("%" PRIu64 " %s\n", b, salts[t].name);
	}
}

static uint64_t edge_value(struct dm *d, uint64_t old, unsigned *seed)
{
	switch (rand_r(seed) % 10) {
	case 0: return 0;
	case 1: return 1;
	case 2: return old + 1;
	case 3: return old - 1;
	case 4: return d->nr_blocks - 1;
	case 5: return d->nr_blocks;
	case 6: return UINT64_MAX;
	case 7: return (uint64_t)1 << (rand_r(seed) % 64);
	case 8: return old ^ ((uint64_t)1 << (rand_r(seed) % 64));
	default: return (uint64_t)rand_r(seed) % (2 * d->nr_blocks + 2);
	}
}

static void op_corrupt(struct dm *d, char *arg)
{
	uint8_t buf[MD_BLOCK_SIZE];
	char *p[2];
	uint64_t b, v;
	unsigned seed;
	size_t off;
	int t, mode;

	if (split(arg, p, 2) != 2)
		die("--corrupt BLOCK:SEED");
	b = num(p[0]);
	seed = (unsigned)num(p[1]);
	rd(d, b, buf);
	t = block_type(buf);
	if (t < 0)
		die("block %" PRIu64 " has no valid checksum of a known type", b);
	mode = rand_r(&seed) % 4;
	if (mode == 0) {
		int n = 1 + rand_r(&seed) % 3;
		printf("block %" PRIu64 " (%s):", b, salts[t].name);
		for (int i = 0; i < n; i++) {
			off = 4 + (size_t)rand_r(&seed) % (MD_BLOCK_SIZE - 4);
			buf[off] = (uint8_t)(buf[off] ^ (1 + rand_r(&seed) % 255));
			printf(" byte %zu", off);
		}
		printf("\n");
	} else {
		/* a header field (first 64 bytes), else a word of the keys and values */
		if (mode == 1)
			off = 4 + 4 * ((size_t)rand_r(&seed) % 15);
		else
			off = 32 + 8 * ((size_t)rand_r(&seed) % ((MD_BLOCK_SIZE - 32) / 8));
		if (off % 8 == 4 && mode == 1) {
			v = edge_value(d, get_le32(buf + off), &seed);
			put_le32(buf + off, (uint32_t)v);
		} else {
			off -= off % 8;
			if (off < 8)
				off = 8;
			v = edge_value(d, get_le64(buf + off), &seed);
			put_le64(buf + off, v);
		}
		printf("block %" PRIu64 " (%s): offset %zu = %" PRIu64 "\n", b, salts[t].name, off, v);
	}
	wr_csum(d, b, buf, salts[t].salt);
}

static void node_put(uint8_t *buf, uint32_t i, uint64_t key, const void *val, uint32_t vs)
{
	struct bt_node n;

	bt_node_view(buf, &n);
	put_le64(buf + 32 + 8 * (size_t)i, key);
	memcpy(buf + 32 + 8 * (size_t)n.max_entries + (size_t)vs * i, val, vs);
}

static void op_plant(struct dm *d)
{
	uint8_t top[MD_BLOCK_SIZE], det[MD_BLOCK_SIZE], leaf[MD_BLOCK_SIZE], v[24];
	struct thin_sb sb;
	struct bt_node t, n;
	uint64_t hi = 0, f, dev = 0;
	uint32_t slot = 0, time;
	int found = 0;

	read_sb(d, &sb);
	time = sb.time + 1;
	for (uint64_t b = 1; b < d->nr_blocks; b++) {
		rd(d, b, leaf);
		if (get_le64(leaf + 8) == b)
			hi = b;
	}
	f = hi + 1;
	if (f + 3 > d->nr_blocks)
		die("no room above block %" PRIu64, hi);
	rd(d, sb.data_mapping_root, top);
	rd(d, sb.device_details_root, det);
	bt_node_view(top, &t);
	if (!bt_is_leaf(&t))
		die("the top-level root is not a leaf");
	/* the first device whose root is a leaf with mappings */
	for (uint32_t i = 0; i < t.nr_entries && !found; i++) {
		rd(d, get_le64(bt_value(&t, i)), leaf);
		bt_node_view(leaf, &n);
		if (bt_is_leaf(&n) && n.nr_entries) {
			found = 1;
			slot = i;
			dev = bt_key(&t, i);
		}
	}
	if (!found) {
		/* no mapped device: a new one, 0, mapping block 0 */
		memcpy(leaf, top, sizeof(leaf));
		put_le32(leaf + 16, 0);
		bt_node_view(leaf, &n);
		dev = t.nr_entries ? bt_key(&t, t.nr_entries - 1) + 1 : 0;
		slot = t.nr_entries;
		put_le32(top + 16, t.nr_entries + 1);
		put_le64(v, 0);
		node_put(leaf, 0, 0, v, 8);
		put_le32(leaf + 16, 1);
		bt_node_view(top, &t);
	}
	bt_node_view(leaf, &n);
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t bt = get_le64(bt_value(&n, i));

		put_le64(v, (thin_bt_block(bt) << 24) | time);
		node_put(leaf, i, bt_key(&n, i), v, 8);
	}
	put_le64(leaf + 8, f);
	wr_csum(d, f, leaf, BTREE_CSUM_XOR);
	put_le64(v, f);
	node_put(top, slot, dev, v, 8);
	put_le64(top + 8, f + 1);
	wr_csum(d, f + 1, top, BTREE_CSUM_XOR);
	{
		struct bt_node dn;
		struct thin_details dd = { n.nr_entries, sb.trans_id, time, time };
		uint32_t k;

		bt_node_view(det, &dn);
		for (k = 0; k < dn.nr_entries && bt_key(&dn, k) != dev; k++)
			;
		if (k < dn.nr_entries) {
			thin_details_unpack(bt_value(&dn, k), &dd);
			dd.snapshotted_time = time;
		} else {
			put_le32(det + 16, dn.nr_entries + 1);
		}
		thin_details_pack(&dd, v);
		node_put(det, k, dev, v, 24);
	}
	put_le64(det + 8, f + 2);
	wr_csum(d, f + 2, det, BTREE_CSUM_XOR);
	printf("%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", f, f + 1, f + 2);
}

static void usage(FILE *f)
{
	fputs("Usage: thin_damage [operations] FILE\n"
	      "Operations run in order (see the comment at the top of thin_damage.c):\n"
	      "  --info  --dev-root DEV  --leaf-of DEV[:N]  --node-info BLOCK  --mapping DEV:VBLOCK\n"
	      "  --get-node-key BLOCK:INDEX  --get-node-value BLOCK:INDEX  --find-nodes top|details\n"
	      "  --flip-byte BLOCK:OFFSET  --zero-block BLOCK  --sb-block B\n"
	      "  --set-sb-field NAME=V  --set-node-key BLOCK:INDEX=V  --set-node-value BLOCK:INDEX=V\n"
	      "  --set-node-field BLOCK:FIELD=V  --set-bitmap-entry SM:BLOCK=C  --set-count SM:BLOCK=C\n"
	      "  --set-index-field SM:BITMAP:FIELD=V  --set-details DEV:FIELD=V|BLOCK:INDEX:FIELD=V\n"
	      "  --leak SM N  --live-blocks  --corrupt BLOCK:SEED  --plant-newer-tree\n"
	      "  --copy-block SRC:DST\n",
	      f);
}

static void run(struct dm *d, int op, char *arg, char *arg2)
{
	char *p[3];
	uint8_t buf[MD_BLOCK_SIZE];

	switch (op) {
	case O_INFO:
		op_info(d);
		break;
	case O_DEV_ROOT:
		printf("%" PRIu64 "\n", dev_root(d, num(arg)));
		break;
	case O_LEAF_OF: {
		int n = split(arg, p, 2);
		uint64_t want = n == 2 ? num(p[1]) : 0, out = 0;
		if (nth_leaf(d, dev_root(d, num(p[0])), &want, &out, 0) != 1)
			die("no such leaf");
		printf("%" PRIu64 "\n", out);
		break;
	}
	case O_NODE_INFO:
		op_node_info(d, num(arg));
		break;
	case O_MAPPING:
		op_mapping(d, arg);
		break;
	case O_FIND_NODES:
		op_find_nodes(d, arg);
		break;
	case O_GET_KEY:
	case O_GET_VALUE:
		op_get(d, arg, op == O_GET_KEY);
		break;
	case O_FLIP:
		if (split(arg, p, 2) != 2 || num(p[1]) >= MD_BLOCK_SIZE)
			die("--flip-byte BLOCK:OFFSET");
		rd(d, num(p[0]), buf);
		buf[num(p[1])] ^= 0xff;
		wr(d, num(p[0]), buf);
		break;
	case O_ZERO:
		memset(buf, 0, sizeof(buf));
		if (num(arg) >= d->nr_blocks)
			die("block %s beyond the end", arg);
		wr(d, num(arg), buf);
		break;
	case O_SB_BLOCK:
		d->sb_block = num(arg);
		break;
	case O_SB_FIELD:
		op_set_sb_field(d, arg);
		break;
	case O_KEY:
		op_node(d, arg, 'k');
		break;
	case O_VALUE:
		op_node(d, arg, 'v');
		break;
	case O_NFIELD:
		op_node(d, arg, 'f');
		break;
	case O_BITMAP:
	case O_COUNT:
		if (split(arg, p, 3) != 3 || num(p[2]) > 3)
			die("expected SM:BLOCK=COUNT with COUNT 0..3");
		sm_set_entry(d, p[0], num(p[1]), (unsigned)num(p[2]), op == O_COUNT);
		break;
	case O_INDEX:
		op_index_field(d, arg);
		break;
	case O_DETAILS:
		op_details(d, arg);
		break;
	case O_LEAK:
		op_leak(d, arg, num(arg2));
		break;
	case O_LIVE:
		op_live_blocks(d);
		break;
	case O_CORRUPT:
		op_corrupt(d, arg);
		break;
	case O_PLANT:
		op_plant(d);
		break;
	case O_COPY: {
		uint32_t salt;

		if (split(arg, p, 2) != 2 || num(p[1]) >= d->nr_blocks)
			die("--copy-block SRC:DST");
		rd(d, num(p[0]), buf);
		salt = crc_block_salt(buf, MD_BLOCK_SIZE);
		put_le64(buf + 8, num(p[1]));
		wr_csum(d, num(p[1]), buf, salt);
		break;
	}
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "info", no_argument, NULL, O_INFO },
		{ "dev-root", required_argument, NULL, O_DEV_ROOT },
		{ "leaf-of", required_argument, NULL, O_LEAF_OF },
		{ "node-info", required_argument, NULL, O_NODE_INFO },
		{ "mapping", required_argument, NULL, O_MAPPING },
		{ "get-node-key", required_argument, NULL, O_GET_KEY },
		{ "get-node-value", required_argument, NULL, O_GET_VALUE },
		{ "find-nodes", required_argument, NULL, O_FIND_NODES },
		{ "flip-byte", required_argument, NULL, O_FLIP },
		{ "zero-block", required_argument, NULL, O_ZERO },
		{ "sb-block", required_argument, NULL, O_SB_BLOCK },
		{ "set-sb-field", required_argument, NULL, O_SB_FIELD },
		{ "set-node-key", required_argument, NULL, O_KEY },
		{ "set-node-value", required_argument, NULL, O_VALUE },
		{ "set-node-field", required_argument, NULL, O_NFIELD },
		{ "set-bitmap-entry", required_argument, NULL, O_BITMAP },
		{ "set-count", required_argument, NULL, O_COUNT },
		{ "set-index-field", required_argument, NULL, O_INDEX },
		{ "set-details", required_argument, NULL, O_DETAILS },
		{ "leak", required_argument, NULL, O_LEAK },
		{ "live-blocks", no_argument, NULL, O_LIVE },
		{ "corrupt", required_argument, NULL, O_CORRUPT },
		{ "plant-newer-tree", no_argument, NULL, O_PLANT },
		{ "copy-block", required_argument, NULL, O_COPY },
		{ NULL, 0, NULL, 0 },
	};
	struct { int op; char *arg, *arg2; } ops[256];
	int nops = 0, c;
	struct dm d = { -1, 0, 0 };
	struct stat st;

	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == '?' || nops == 256) {
			usage(stderr);
			return 2;
		}
		ops[nops].op = c;
		ops[nops].arg = optarg;
		ops[nops].arg2 = NULL;
		if (c == O_LEAK) {
			if (optind >= argc)
				die("--leak SM N");
			ops[nops].arg2 = argv[optind++];
		}
		nops++;
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}
	d.fd = open(argv[optind], O_RDWR);
	if (d.fd < 0 || fstat(d.fd, &st) < 0)
		die("cannot open '%s': %s", argv[optind], strerror(errno));
	d.nr_blocks = (uint64_t)st.st_size / MD_BLOCK_SIZE;
	for (int i = 0; i < nops; i++)
		run(&d, ops[i].op, ops[i].arg, ops[i].arg2);
	if (fsync(d.fd) < 0 || close(d.fd) < 0)
		die("cannot sync '%s'", argv[optind]);
	return 0;
}
