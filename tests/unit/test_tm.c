/* tm allocator/queue, and crash safety of the restorer through write faults. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "spacemap/spacemap.h"
#include "cmd/restore.h"
#include "thin/superblock.h"
#include "tm/tm.h"
#include "xml/xml_reader.h"

Test(tm, alloc_skips_reserved_and_counts)
{
	struct ioe *e = ioe_mem_create(16);
	struct rcmap *old = rcmap_create(16);
	struct tm_mgr *tm;
	uint64_t b;

	rcmap_set(old, 1, 1);
	rcmap_set(old, 2, 5);
	cr_assert_eq(tm_create(e, 16, &tm), 0);
	tm_set_reserved(tm, old);
	cr_assert_eq(tm_claim(tm, 0), 0);
	cr_assert_eq(tm_alloc(tm, &b), 0);
	cr_assert_eq(b, 3);
	cr_assert_eq(tm_alloc(tm, &b), 0);
	cr_assert_eq(b, 4);
	cr_assert_eq(tm_ref(tm, 4), 1);
	cr_assert_eq(tm_inc(tm, 4), 0);
	cr_assert_eq(tm_ref(tm, 4), 2);
	cr_assert_eq(tm_nr_used(tm), 3);
	cr_assert(!tm_overflowed(tm));
	tm_destroy(tm);
	ioe_destroy(e);
}

Test(tm, overflow_goes_virtual_and_drops_writes)
{
	struct ioe *e = ioe_mem_create(4);
	struct tm_mgr *tm;
	uint8_t *buf = ioe_alloc_blocks(1);
	uint64_t b;

	cr_assert_eq(tm_create(e, 4, &tm), 0);
	tm_reserve_all(tm);
	cr_assert_eq(tm_alloc(tm, &b), 0);
	cr_assert_geq(b, 4);
	cr_assert(tm_overflowed(tm));
	memset(buf, 0xab, 4096);
	cr_assert_eq(tm_write(tm, b, NULL, buf), 0);
	cr_assert_eq(tm_flush(tm), 0);
	cr_assert_eq(ioe_mem_nr_writes(e), 0);
	cr_assert_eq(tm_read(tm, b, buf), -ENOSPC);
	tm_destroy(tm);
	ioe_destroy(e);
	free(buf);
}

Test(tm, queued_runs_are_written_in_one_write_and_read_back)
{
	struct ioe *e = ioe_mem_create(64);
	struct tm_mgr *tm;
	uint8_t *buf = ioe_alloc_blocks(1);
	uint64_t b;

	cr_assert_eq(tm_create(e, 64, &tm), 0);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(tm_alloc(tm, &b), 0);
		memset(buf, i + 1, 4096);
		cr_assert_eq(tm_write(tm, b, NULL, buf), 0);
	}
	cr_assert_eq(ioe_mem_nr_writes(e), 0);
	cr_assert_eq(tm_read(tm, 3, buf), 0);
	cr_assert_eq(buf[100], 4);
	cr_assert_eq(tm_flush(tm), 0);
	cr_assert_eq(ioe_mem_nr_writes(e), 1);
	cr_assert_eq(ioe_mem_data(e)[9 * 4096 + 7], 10);
	tm_destroy(tm);
	ioe_destroy(e);
	free(buf);
}

/*----------------------------------------------------------------*/

struct xml_src {
	const char *text;
};

static int produce(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	struct xml_src *s = ctx;

	return xml_read_mem("mem.xml", s->text, strlen(s->text), v, err, errlen);
}

/* A pool: n devices of len mappings; dev i maps j -> base + (i*len + j) */
static char *make_xml(int ndev, int len, int base, int tid)
{
	size_t cap = 1 << 20, n = 0;
	char *s = malloc(cap);

	n += (size_t)snprintf(s + n, cap - n,
			      "<superblock uuid=\"\" time=\"1\" transaction=\"%d\" data_block_size=\"128\" nr_data_blocks=\"100000\">\n",
			      tid);
	for (int i = 0; i < ndev; i++) {
		n += (size_t)snprintf(s + n, cap - n,
				      "<device dev_id=\"%d\" mapped_blocks=\"%d\" transaction=\"0\" creation_time=\"0\" snap_time=\"1\">\n",
				      i, len);
		for (int j = 0; j < len; j += 2)
			n += (size_t)snprintf(s + n, cap - n,
					      "<single_mapping origin_block=\"%d\" data_block=\"%d\" time=\"1\"/>\n",
					      j, base + (i * len + j) % 50000);
		n += (size_t)snprintf(s + n, cap - n, "</device>\n");
	}
	snprintf(s + n, cap - n, "</superblock>\n");
	return s;
}

/* Snapshots: n devices of len mappings; dev i differs from dev 0 in a few */
static char *make_snap_xml(int ndev, int len, int base, int tid)
{
	size_t cap = 4 << 20, n = 0;
	char *s = malloc(cap);

	n += (size_t)snprintf(s + n, cap - n,
			      "<superblock uuid=\"\" time=\"1\" transaction=\"%d\" data_block_size=\"128\" nr_data_blocks=\"100000\">\n",
			      tid);
	for (int i = 0; i < ndev; i++) {
		n += (size_t)snprintf(s + n, cap - n,
				      "<device dev_id=\"%d\" mapped_blocks=\"%d\" transaction=\"0\" creation_time=\"0\" snap_time=\"1\">\n",
				      i, len);
		for (int j = 0; j < len; j++) {
			int changed = i && (j % 400 == (i * 37) % 400);
			n += (size_t)snprintf(s + n, cap - n,
					      "<single_mapping origin_block=\"%d\" data_block=\"%d\" time=\"%d\"/>\n",
					      j, changed ? 60000 + i * len + j : base + j, changed);
		}
		n += (size_t)snprintf(s + n, cap - n, "</device>\n");
	}
	snprintf(s + n, cap - n, "</superblock>\n");
	return s;
}

static int restore_xml(struct ioe *e, const char *xml, char *err)
{
	struct thin_restore_opts o;
	struct xml_src src = { xml };

	memset(&o, 0, sizeof(o));
	return thin_restore_ioe(e, &o, produce, &src, NULL, err, 512);
}

static uint64_t sb_trans(const uint8_t *blk0, int *valid)
{
	struct thin_sb sb;

	*valid = thin_sb_validator.check(blk0, 0, 4096) == 0;
	thin_sb_unpack((const struct disk_superblock *)blk0, &sb);
	return sb.trans_id;
}

/*
 * Restores B over a device holding A, failing the k-th write for every k:
 * afterwards the superblock is A's with every block A uses unchanged, or
 * the restore succeeded and it is B's.
 */
static void kill_test(uint64_t nr_blocks, int ndev_b, int len_b, int snaps)
{
	char *a = make_xml(3, 300, 0, 1);
	char *b = snaps ? make_snap_xml(ndev_b, len_b, 7, 2) : make_xml(ndev_b, len_b, 7, 2);
	struct ioe *e = ioe_mem_create(nr_blocks);
	uint8_t *orig = malloc(nr_blocks * 4096);
	struct rcmap *used;
	struct bc *bc;
	struct thin_sb sb;
	char err[512];
	unsigned long writes;
	int valid, r, saw_old = 0, saw_invalid = 0;

	cr_assert_eq(restore_xml(e, a, err), 0, "%s", err);
	memcpy(orig, ioe_mem_data(e), nr_blocks * 4096);
	used = rcmap_create(nr_blocks);
	bc = bc_create(e, 64);
	cr_assert_eq(thin_sb_read(bc, 0, &sb), 0);
	cr_assert_eq(sm_disk_load(bc, &sb.metadata_sm, used, NULL, NULL), 0);
	bc_destroy(bc);
	/* how many writes does a full restore take? */
	{
		unsigned long w0 = ioe_mem_nr_writes(e);
		cr_assert_eq(restore_xml(e, b, err), 0, "%s", err);
		writes = ioe_mem_nr_writes(e) - w0;
		cr_assert_eq(sb_trans(ioe_mem_data(e), &valid), 2);
		cr_assert(valid);
	}
	for (unsigned long k = 0; k < writes; k++) {
		memcpy(ioe_mem_data(e), orig, nr_blocks * 4096);
		ioe_mem_fail_write(e, (long)k);
		r = restore_xml(e, b, err);
		ioe_mem_fail_write(e, -1);
		cr_assert_lt(r, 0, "write %lu of %lu failed but the restore succeeded", k, writes);
		if (sb_trans(ioe_mem_data(e), &valid) == 1 && valid) {
			saw_old++;
			for (uint64_t blk = 0; blk < nr_blocks; blk++)
				if (rcmap_get(used, blk))
					cr_assert(!memcmp(ioe_mem_data(e) + blk * 4096, orig + blk * 4096,
							  4096),
						  "write fault %lu: old block %llu changed", k,
						  (unsigned long long)blk);
		} else {
			/* only allowed once the old superblock was deliberately zeroed */
			cr_assert(!valid, "write fault %lu: a valid superblock that is not the old one", k);
			for (int i = 0; i < 4096; i++)
				cr_assert_eq(ioe_mem_data(e)[i], 0);
			saw_invalid++;
		}
	}
	cr_assert_gt(saw_old, 0);
	if (nr_blocks > 200)
		cr_assert_eq(saw_invalid, 0);
	else
		cr_assert_gt(saw_invalid, 0, "the second pass was not exercised");
	rcmap_destroy(used);
	ioe_destroy(e);
	free(orig);
	free(a);
	free(b);
}

Test(restore, write_fault_at_every_write_leaves_old_metadata)
{
	kill_test(2048, 20, 400, 0);
}

Test(restore, write_fault_at_every_write_with_shared_leaves)
{
	char *b = make_snap_xml(12, 2000, 7, 2), err[512];
	struct ioe *e = ioe_mem_create(2048);
	struct thin_restore_opts o;
	struct thin_restore_stats st;
	struct xml_src src = { b };

	/* snapshots that share most leaves (and need the overflow ref-count trees) */
	memset(&o, 0, sizeof(o));
	cr_assert_eq(thin_restore_ioe(e, &o, produce, &src, &st, err, 512), 0, "%s", err);
	cr_assert_geq(st.shared_leaves, 11 * 3, "%llu", (unsigned long long)st.shared_leaves);
	ioe_destroy(e);
	free(b);
	kill_test(2048, 12, 2000, 1);
}

Test(restore, no_room_for_both_invalidates_first)
{
	/* A uses ~15 blocks; B needs most of the device: second pass over A */
	kill_test(64, 7, 1800, 0);
}

Test(restore, bad_xml_leaves_device_untouched)
{
	char *a = make_xml(2, 100, 0, 1);
	struct ioe *e = ioe_mem_create(256);
	uint8_t *orig = malloc(256 * 4096);
	char err[512];

	cr_assert_eq(restore_xml(e, a, err), 0);
	memcpy(orig, ioe_mem_data(e), 256 * 4096);
	cr_assert_lt(restore_xml(e, "<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"128\" nr_data_blocks=\"10\">\n<device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n<single_mapping origin_block=\"1\" data_block=\"10\" time=\"0\"/>\n</device></superblock>", err), 0);
	cr_assert(strstr(err, "mem.xml:3: mapping beyond end of data device"), "%s", err);
	cr_assert(!memcmp(orig, ioe_mem_data(e), 256 * 4096));
	ioe_destroy(e);
	free(orig);
	free(a);
}

/* 1.x XML: a <def> of 4000 mappings that n devices <ref>, plus own mappings */
static char *make_def_xml(int ndev)
{
	size_t cap = 4 << 20, n = 0;
	char *s = malloc(cap);

	n += (size_t)snprintf(s + n, cap - n,
			      "<superblock uuid=\"\" time=\"3\" transaction=\"2\" data_block_size=\"128\" nr_data_blocks=\"200000\">\n<def name=\"s\">\n");
	for (int j = 0; j < 4000; j++)
		n += (size_t)snprintf(s + n, cap - n,
				      "<single_mapping origin_block=\"%d\" data_block=\"%d\" time=\"1\"/>\n",
				      j, 1000 + 3 * j);
	n += (size_t)snprintf(s + n, cap - n, "</def>\n");
	for (int i = 0; i < ndev; i++) {
		n += (size_t)snprintf(s + n, cap - n,
				      "<device dev_id=\"%d\" mapped_blocks=\"4300\" transaction=\"0\" creation_time=\"1\" snap_time=\"2\">\n<ref name=\"s\"/>\n",
				      i);
		for (int j = 0; j < 300; j++)
			n += (size_t)snprintf(s + n, cap - n,
					      "<single_mapping origin_block=\"%d\" data_block=\"%d\" time=\"1\"/>\n",
					      100000 + j, 50000 + i * 3000 + 2 * j);
		n += (size_t)snprintf(s + n, cap - n, "</device>\n");
	}
	snprintf(s + n, cap - n, "</superblock>\n");
	return s;
}

/*
 * Without the <def> cache a dry run stands in leaves it cannot read and
 * adds a slack: at every size the restore over old metadata succeeds or
 * leaves the old metadata valid; it never invalidates it and then fails.
 */
Test(restore, defs_over_old_metadata_without_the_def_cache)
{
	char *a = make_xml(3, 300, 0, 1), *b = make_def_xml(6), err[512];
	int ok = 0, refused = 0, cached_ok = 0;

	for (uint64_t nr = 40; nr <= 200; nr += 8) {
		for (int cache = 0; cache < 2; cache++) {
			struct ioe *e = ioe_mem_create(nr);
			struct thin_restore_opts o;
			struct xml_src src = { b };
			uint8_t *orig = malloc(nr * 4096);
			int valid, r;

			if (restore_xml(e, a, err) < 0) {
				ioe_destroy(e);
				free(orig);
				continue;
			}
			memcpy(orig, ioe_mem_data(e), nr * 4096);
			memset(&o, 0, sizeof(o));
			o.no_def_cache = !cache;
			r = thin_restore_ioe(e, &o, produce, &src, NULL, err, 512);
			if (r == 0) {
				cr_assert_eq(sb_trans(ioe_mem_data(e), &valid), 2);
				cr_assert(valid);
				if (cache)
					cached_ok++;
				else
					ok++;
			} else {
				cr_assert(strstr(err, "too small"), "%s", err);
				cr_assert_eq(sb_trans(ioe_mem_data(e), &valid), 1, "%llu blocks: %s",
					     (unsigned long long)nr, err);
				cr_assert(valid, "%llu blocks: the old superblock was lost", (unsigned long long)nr);
				cr_assert(!memcmp(orig, ioe_mem_data(e), 4096));
				if (!cache)
					refused++;
			}
			ioe_destroy(e);
			free(orig);
		}
	}
	cr_assert_gt(ok, 0);
	cr_assert_gt(refused, 0);
	/* the exact count of the cached dry run fits where the slack does not */
	cr_assert_gt(cached_ok, ok);
	free(a);
	free(b);
}
