/*
 * Test harness for the transaction manager, the B-tree edits and the pool
 * operations (tests/unit/test_edit*.c): pools on the in-memory engine, the
 * strict checker (lib/check: every ref count, nr_allocated, nr_free and
 * the index hints; any finding, warnings included, fails), an independent
 * reader of the result (lib/thin/metadata.c, as thin_dump reads) and a
 * model of what the kernel's semantics give.
 */
#ifndef THINMETA_TESTS_EDIT_HARNESS_H
#define THINMETA_TESTS_EDIT_HARNESS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block-cache/block-cache.h"
#include "check/check.h"
#include "cmd/format.h"
#include "io/io.h"
#include "thin/metadata.h"
#include "thin/pool.h"
#include "findings/findings.h"
#include "util/report.h"
#include "util/u64map.h"

/*----------------------------------------------------------------*/
/* pools on the memory engine */

struct mpool {
	struct ioe *e;
	struct thin_md md;
	struct thin_pool *p;
};

static inline void mp_attach(struct mpool *m)
{
	char msg[256];

	m->md.ioe = m->e;
	m->md.bc = bc_create(m->e, 1024);
	cr_assert(m->md.bc);
	m->md.sb_err = thin_sb_read(m->md.bc, 0, &m->md.sb);
	cr_assert_eq(thin_pool_open(&m->md, &m->p, msg, sizeof(msg)), 0, "%s", msg);
}

static inline void mp_detach(struct mpool *m)
{
	thin_pool_close(m->p);
	m->p = NULL;
	bc_destroy(m->md.bc);
	m->md.bc = NULL;
}

static inline void mp_format(struct mpool *m, uint64_t meta_blocks, uint64_t data_blocks)
{
	struct thin_format_opts o = { .data_block_size = 128, .nr_data_blocks = data_blocks };
	char err[256];

	memset(m, 0, sizeof(*m));
	m->e = ioe_mem_create(meta_blocks);
	cr_assert(m->e);
	cr_assert_eq(thin_format_ioe(m->e, &o, err, sizeof(err)), 0, "%s", err);
	mp_attach(m);
}

/* A kernel fixture (fixtures/kernel/NAME) in memory, grown to min_blocks. */
static inline void mp_fixture(struct mpool *m, const char *name, uint64_t min_blocks)
{
	const char *dir = getenv("FIXTURES") ? getenv("FIXTURES") : "fixtures/kernel";
	char cmd[512];
	size_t cap = 64u << 20, n = 0, got;
	uint8_t *buf = malloc(cap);
	FILE *f;

	memset(m, 0, sizeof(*m));
	snprintf(cmd, sizeof(cmd), "gzip -dc '%s/%s/metadata.bin.gz'", dir, name);
	f = popen(cmd, "r");
	cr_assert(f && buf, "cannot read fixture %s", name);
	while ((got = fread(buf + n, 1, cap - n, f)) > 0)
		n += got;
	cr_assert_eq(pclose(f), 0, "gzip -dc of fixture %s failed", name);
	m->e = ioe_mem_create(n / MD_BLOCK_SIZE < min_blocks ? min_blocks : n / MD_BLOCK_SIZE);
	cr_assert(m->e);
	memcpy(ioe_mem_data(m->e), buf, n);
	free(buf);
	mp_attach(m);
}

static inline void mp_destroy(struct mpool *m)
{
	if (m->p)
		mp_detach(m);
	ioe_destroy(m->e);
}

static inline void mp_commit(struct mpool *m)
{
	int r = thin_pool_commit(m->p, 0);

	cr_assert_eq(r, 0, "commit: %s", strerror(-r));
}

/* A snapshot of the device bytes. */
static inline uint8_t *mp_save(const struct mpool *m)
{
	size_t len = m->e->nr_blocks * MD_BLOCK_SIZE;
	uint8_t *b = malloc(len);

	cr_assert(b);
	memcpy(b, ioe_mem_data(m->e), len);
	return b;
}

/*----------------------------------------------------------------*/
/* the strict checker */

/*
 * Runs thin_check on the device bytes; every finding is printed and fails,
 * but for the one about a needs_check flag (the flag is meant there).
 */
static inline void mp_check(const struct mpool *m, const char *when)
{
	size_t len = m->e->nr_blocks * MD_BLOCK_SIZE;
	struct thin_check_opts o = { 0 };
	struct thin_check_result res;
	struct report *rep = rep_create(NULL, 1);
	char path[64], msg[256];
	int fd = memfd_create("edit-check", 0), r;

	cr_assert(fd >= 0 && rep);
	cr_assert_eq(write(fd, ioe_mem_data(m->e), len), (ssize_t)len);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = thin_check(path, &o, rep, &res, msg, sizeof(msg));
	cr_assert_eq(r, 0, "%s: thin_check could not run: %s", when, msg);
	for (size_t i = 0; i < rep_nr_stored(rep); i++)
		if (rep_finding(rep, i)->code != RC_SB_NEEDS_CHECK)
			fprintf(stderr, "%s: finding: %s\n", when, rep_finding(rep, i)->msg);
	cr_assert_eq(rep_nr_findings(rep) - rep_count_code(rep, RC_SB_NEEDS_CHECK), 0,
		     "%s: %zu findings", when, rep_nr_findings(rep));
	rep_destroy(rep);
	close(fd);
}

/*----------------------------------------------------------------*/
/* the model: devices, details, mappings */

struct mdev {
	uint64_t id;
	struct thin_details d;
	struct u64map map;        /* vblock -> block_time */
};

struct model {
	struct mdev *devs;
	size_t nr, cap;
	uint32_t time;
	uint64_t trans_id;
	uint32_t flags;
	uint64_t nr_data_blocks;
};

static inline void model_init(struct model *mo, const struct thin_sb *sb)
{
	memset(mo, 0, sizeof(*mo));
	mo->time = sb->time;
	mo->trans_id = sb->trans_id;
	mo->flags = sb->flags;
	mo->nr_data_blocks = sb->data_sm.nr_blocks;
}

static inline void model_release(struct model *mo)
{
	for (size_t i = 0; i < mo->nr; i++)
		u64map_release(&mo->devs[i].map);
	free(mo->devs);
	memset(mo, 0, sizeof(*mo));
}

static inline struct mdev *model_find(struct model *mo, uint64_t id)
{
	for (size_t i = 0; i < mo->nr; i++)
		if (mo->devs[i].id == id)
			return &mo->devs[i];
	return NULL;
}

static inline struct mdev *model_add(struct model *mo, uint64_t id)
{
	struct mdev *d;

	if (mo->nr == mo->cap) {
		mo->cap = mo->cap ? mo->cap * 2 : 16;
		mo->devs = realloc(mo->devs, mo->cap * sizeof(*mo->devs));
		cr_assert(mo->devs);
	}
	d = &mo->devs[mo->nr++];
	memset(d, 0, sizeof(*d));
	d->id = id;
	u64map_init(&d->map);
	return d;
}

static inline void model_del(struct model *mo, uint64_t id)
{
	struct mdev *d = model_find(mo, id);

	cr_assert(d);
	u64map_release(&d->map);
	*d = mo->devs[--mo->nr];
}

static inline void model_copy_map(struct u64map *dst, const struct u64map *src)
{
	for (size_t i = u64map_next(src, 0); i < src->cap; i = u64map_next(src, i + 1))
		cr_assert_eq(u64map_put(dst, src->keys[i], src->vals[i]), 0);
}

static inline void model_clone(struct model *dst, const struct model *src)
{
	*dst = *src;
	dst->devs = calloc(src->cap ? src->cap : 1, sizeof(*dst->devs));
	cr_assert(dst->devs);
	for (size_t i = 0; i < src->nr; i++) {
		dst->devs[i] = src->devs[i];
		u64map_init(&dst->devs[i].map);
		model_copy_map(&dst->devs[i].map, &src->devs[i].map);
	}
}

/*----------------------------------------------------------------*/
/* comparing what is on the device with the model (read-side code only) */

struct cmp_walk {
	const struct u64map *want;
	uint64_t seen, bad, first_bad;
};

static inline int cmp_leaf(void *ctx, const struct bt_node *n)
{
	struct cmp_walk *c = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t v;

		c->seen++;
		if (!u64map_get(c->want, bt_key(n, i), &v) || v != get_le64(bt_value(n, i))) {
			if (!c->bad++)
				c->first_bad = bt_key(n, i);
		}
	}
	return 0;
}

static inline void compare_trees(struct bc *bc, uint64_t details_root, uint64_t mapping_root,
				 const struct model *mo, const char *when)
{
	struct thin_dev_list l;

	cr_assert_eq(thin_read_devices(bc, details_root, mapping_root, &l, NULL, NULL), 0);
	cr_assert_eq(l.nr, mo->nr, "%s: %zu devices, the model has %zu", when, l.nr, mo->nr);
	for (size_t i = 0; i < l.nr; i++) {
		const struct thin_dev *d = &l.devs[i];
		struct model *mm = (struct model *)mo;
		const struct mdev *w = model_find(mm, d->dev_id);
		struct bt_walk_ops ops = { .leaf = cmp_leaf };
		struct cmp_walk c;

		cr_assert(w, "%s: device %llu is not in the model", when,
			  (unsigned long long)d->dev_id);
		cr_assert(d->has_details && d->has_root);
		cr_assert_eq(d->details.mapped_blocks, w->d.mapped_blocks, "%s: dev %llu mapped",
			     when, (unsigned long long)d->dev_id);
		cr_assert_eq(d->details.transaction_id, w->d.transaction_id, "%s: dev %llu trans",
			     when, (unsigned long long)d->dev_id);
		cr_assert_eq(d->details.creation_time, w->d.creation_time, "%s: dev %llu ctime",
			     when, (unsigned long long)d->dev_id);
		cr_assert_eq(d->details.snapshotted_time, w->d.snapshotted_time,
			     "%s: dev %llu stime %u want %u", when, (unsigned long long)d->dev_id,
			     d->details.snapshotted_time, w->d.snapshotted_time);
		c = (struct cmp_walk){ &w->map, 0, 0, 0 };
		cr_assert_eq(thin_walk_mappings(bc, d->root, &ops, &c), 0);
		cr_assert_eq(c.bad, 0, "%s: dev %llu: %llu wrong mappings, first at %llu", when,
			     (unsigned long long)d->dev_id, (unsigned long long)c.bad,
			     (unsigned long long)c.first_bad);
		cr_assert_eq(c.seen, w->map.nr, "%s: dev %llu: %llu mappings, model %zu", when,
			     (unsigned long long)d->dev_id, (unsigned long long)c.seen, w->map.nr);
	}
	thin_dev_list_release(&l);
}

/* The committed pool against the model (and the held snapshot against snap, if any). */
static inline void mp_compare(const struct mpool *m, const struct model *mo,
			      const struct model *snap, const char *when)
{
	struct bc *bc = bc_create(m->e, 256);
	struct thin_sb sb;

	cr_assert_eq(thin_sb_read(bc, 0, &sb), 0);
	cr_assert_eq(sb.time, mo->time, "%s: time %u, model %u", when, sb.time, mo->time);
	cr_assert_eq(sb.trans_id, mo->trans_id, "%s: transaction", when);
	cr_assert_eq(sb.flags, mo->flags, "%s: flags", when);
	cr_assert_eq(sb.data_sm.nr_blocks, mo->nr_data_blocks, "%s: nr_data_blocks", when);
	compare_trees(bc, sb.device_details_root, sb.data_mapping_root, mo, when);
	cr_assert_eq(!!sb.held_root, !!snap, "%s: held root %llu", when,
		     (unsigned long long)sb.held_root);
	if (snap) {
		struct thin_sb ssb;

		cr_assert_eq(thin_sb_read(bc, sb.held_root, &ssb), 0);
		cr_assert_eq(ssb.time, snap->time);
		cr_assert_eq(ssb.trans_id, snap->trans_id);
		compare_trees(bc, ssb.device_details_root, ssb.data_mapping_root, snap, when);
	}
	bc_destroy(bc);
}

/* The model of what is on the device now (read-side code only). */
struct load_walk {
	struct u64map *map;
};

static inline int load_leaf(void *ctx, const struct bt_node *n)
{
	struct load_walk *l = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++)
		cr_assert_eq(u64map_put(l->map, bt_key(n, i), get_le64(bt_value(n, i))), 0);
	return 0;
}

static inline void model_load(struct model *mo, const struct mpool *m, int snap)
{
	struct bc *bc = bc_create(m->e, 256);
	struct thin_sb sb;
	struct thin_dev_list l;

	cr_assert_eq(thin_sb_read(bc, 0, &sb), 0);
	model_init(mo, &sb);
	if (snap) {
		struct thin_sb ssb;

		cr_assert_eq(thin_sb_read(bc, sb.held_root, &ssb), 0);
		mo->time = ssb.time;
		mo->trans_id = ssb.trans_id;
		sb.device_details_root = ssb.device_details_root;
		sb.data_mapping_root = ssb.data_mapping_root;
	}
	cr_assert_eq(thin_read_devices(bc, sb.device_details_root, sb.data_mapping_root, &l, NULL,
				       NULL), 0);
	for (size_t i = 0; i < l.nr; i++) {
		struct mdev *d = model_add(mo, l.devs[i].dev_id);
		struct bt_walk_ops ops = { .leaf = load_leaf };
		struct load_walk lw = { &d->map };

		d->d = l.devs[i].details;
		cr_assert_eq(thin_walk_mappings(bc, l.devs[i].root, &ops, &lw), 0);
	}
	thin_dev_list_release(&l);
	bc_destroy(bc);
}

/*----------------------------------------------------------------*/
/* the kernel's semantics on the model */

static inline void model_create_thin(struct model *mo, uint64_t id)
{
	struct mdev *d = model_add(mo, id);

	d->d = (struct thin_details){ 0, mo->trans_id, mo->time, mo->time };
}

static inline void model_create_snap(struct model *mo, uint64_t id, uint64_t origin)
{
	struct mdev *o, *s;

	mo->time++;
	s = model_add(mo, id);
	o = model_find(mo, origin);
	cr_assert(o);
	o->d.snapshotted_time = mo->time;
	s->d = (struct thin_details){ o->d.mapped_blocks, mo->trans_id, mo->time, mo->time };
	model_copy_map(&s->map, &o->map);
}

static inline void model_rename(struct model *mo, uint64_t id, uint64_t new_id)
{
	model_find(mo, id)->id = new_id;
}

#endif
