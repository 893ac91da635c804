/*
 * The transaction manager, the B-tree edits and the pool operations on the
 * in-memory engine: random sequences against a model, checked after every
 * commit by the strict checker (edit_harness.h).
 */
#include "edit_harness.h"

#include "btree/btree.h"

/* A small deterministic generator (xorshift64*). */
static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545F4914F6CDD1Dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static uint64_t pick_key(const struct u64map *m)
{
	size_t i = (size_t)rnd_below(m->cap);

	i = u64map_next(m, i);
	if (i >= m->cap)
		i = u64map_next(m, 0);
	return m->keys[i];
}

static uint64_t free_id(struct model *mo)
{
	for (;;) {
		uint64_t id = rnd_below(3000);
		if (!model_find(mo, id))
			return id;
	}
}

/*----------------------------------------------------------------*/

struct rstate {
	struct mpool m;
	struct model mo, snap;
	int have_snap;
	unsigned ops;
};

static void op_insert(struct rstate *s, int share)
{
	struct mdev *d;
	uint64_t vb, b, old;
	int had;

	if (!s->mo.nr)
		return;
	d = &s->mo.devs[rnd_below(s->mo.nr)];
	vb = rnd() % 2 ? rnd_below(4000) : rnd_below(200000);
	if (share) {
		struct mdev *o = &s->mo.devs[rnd_below(s->mo.nr)];
		uint64_t v;

		if (!o->map.nr)
			return;
		cr_assert(u64map_get(&o->map, pick_key(&o->map), &v));
		b = thin_bt_block(v);
		cr_assert_eq(thin_pool_inc_data_block(s->m.p, b), 0);
	} else if (thin_pool_alloc_data_block(s->m.p, &b) < 0) {
		return;   /* data space full */
	}
	had = u64map_get(&d->map, vb, &old);
	cr_assert_eq(thin_pool_insert_mapping(s->m.p, d->id, vb, b), 0);
	cr_assert_eq(u64map_put(&d->map, vb, thin_bt_pack(b, s->mo.time)), 0);
	if (!had)
		d->d.mapped_blocks++;
}

static void op_remove(struct rstate *s)
{
	struct mdev *d;
	uint64_t vb;

	if (!s->mo.nr)
		return;
	d = &s->mo.devs[rnd_below(s->mo.nr)];
	if (!d->map.nr)
		return;
	vb = pick_key(&d->map);
	cr_assert_eq(thin_pool_remove_mapping(s->m.p, d->id, vb), 0);
	u64map_del(&d->map, vb);
	d->d.mapped_blocks--;
}

static void op_device(struct rstate *s)
{
	unsigned what = (unsigned)rnd_below(100);
	uint64_t id;

	if (what < 30 || !s->mo.nr) {
		id = free_id(&s->mo);
		cr_assert_eq(thin_pool_create_thin(s->m.p, id), 0);
		model_create_thin(&s->mo, id);
	} else if (what < 65) {
		uint64_t origin = s->mo.devs[rnd_below(s->mo.nr)].id;

		id = free_id(&s->mo);
		cr_assert_eq(thin_pool_create_snap(s->m.p, id, origin), 0);
		model_create_snap(&s->mo, id, origin);
	} else if (what < 85) {
		id = s->mo.devs[rnd_below(s->mo.nr)].id;
		cr_assert_eq(thin_pool_delete(s->m.p, id), 0);
		model_del(&s->mo, id);
	} else if (what < 92) {
		uint64_t to = free_id(&s->mo);

		id = s->mo.devs[rnd_below(s->mo.nr)].id;
		cr_assert_eq(thin_pool_rename(s->m.p, id, to), 0);
		model_rename(&s->mo, id, to);
	} else if (what < 96) {
		cr_assert_eq(thin_pool_set_transaction_id(s->m.p, s->mo.trans_id,
							  s->mo.trans_id + 1), 0);
		s->mo.trans_id++;
	} else if (!s->have_snap) {
		cr_assert_eq(thin_pool_reserve_metadata_snap(s->m.p), 0);
		model_clone(&s->snap, &s->mo);
		s->have_snap = 1;
	} else {
		cr_assert_eq(thin_pool_release_metadata_snap(s->m.p), 0);
		model_release(&s->snap);
		s->have_snap = 0;
	}
}

static void random_run(uint64_t seed, unsigned nr_commits, unsigned ops_per_commit)
{
	struct rstate s;
	char when[64];

	memset(&s, 0, sizeof(s));
	rnd_state = seed;
	mp_format(&s.m, 4096, 60000);
	model_init(&s.mo, thin_pool_sb(s.m.p));
	for (unsigned c = 0; c < nr_commits; c++) {
		unsigned n = 1 + (unsigned)rnd_below(ops_per_commit);

		for (unsigned k = 0; k < n; k++) {
			unsigned what = (unsigned)rnd_below(100);

			if (what < 50)
				op_insert(&s, 0);
			else if (what < 62)
				op_insert(&s, 1);
			else if (what < 88)
				op_remove(&s);
			else if (what < 90 || rnd_below(8) == 0)
				op_device(&s);
		}
		if (rnd_below(10) == 0) {
			uint64_t nb = s.mo.nr_data_blocks + rnd_below(40000);

			cr_assert_eq(thin_pool_grow_data(s.m.p, nb), 0);
			s.mo.nr_data_blocks = nb;
		}
		mp_commit(&s.m);
		snprintf(when, sizeof(when), "seed %llu commit %u", (unsigned long long)seed, c);
		mp_check(&s.m, when);
		mp_compare(&s.m, &s.mo, s.have_snap ? &s.snap : NULL, when);
		/* reopen now and then: the next transaction starts from the device */
		if (rnd_below(4) == 0) {
			mp_detach(&s.m);
			mp_attach(&s.m);
		}
	}
	{
		size_t maps = 0;

		for (size_t i = 0; i < s.mo.nr; i++)
			maps += s.mo.devs[i].map.nr;
		fprintf(stderr, "seed %llu: %zu devices, %zu mappings, %llu metadata blocks, %llu data blocks\n",
			(unsigned long long)seed, s.mo.nr, maps,
			(unsigned long long)thin_pool_metadata_allocated(s.m.p),
			(unsigned long long)thin_pool_data_allocated(s.m.p));
	}
	model_release(&s.mo);
	if (s.have_snap)
		model_release(&s.snap);
	mp_destroy(&s.m);
}

Test(pool_edit, random_operations_match_the_model_after_every_commit_seed_1)
{
	random_run(1, 60, 400);
}

Test(pool_edit, random_operations_match_the_model_after_every_commit_seed_2)
{
	random_run(0x9e3779b97f4a7c15ull, 60, 400);
}

Test(pool_edit, random_operations_many_small_commits)
{
	random_run(12345, 200, 20);
}

/*----------------------------------------------------------------*/
/* deep trees: splits, shared nodes, merges */

static void insert_new(struct mpool *m, struct mdev *d, uint64_t vb, uint32_t time)
{
	uint64_t b, old;
	int had = u64map_get(&d->map, vb, &old);

	cr_assert_eq(thin_pool_alloc_data_block(m->p, &b), 0);
	cr_assert_eq(thin_pool_insert_mapping(m->p, d->id, vb, b), 0);
	cr_assert_eq(u64map_put(&d->map, vb, thin_bt_pack(b, time)), 0);
	if (!had)
		d->d.mapped_blocks++;
}

/* Levels of the tree at root (following first children). */
static int tree_depth(struct mpool *m, uint64_t root)
{
	struct bc *bc = bc_create(m->e, 16);
	int depth = 1;

	for (;;) {
		struct bc_block *b;
		struct bt_node n;

		cr_assert_eq(bc_get(bc, root, &bt_node_validator, &b), 0);
		bt_node_view(bc_data(b), &n);
		if (bt_is_leaf(&n)) {
			bc_put(bc, b);
			break;
		}
		root = get_le64(bt_value(&n, 0));
		bc_put(bc, b);
		depth++;
	}
	bc_destroy(bc);
	return depth;
}

static uint64_t dev_root(struct mpool *m, uint64_t dev)
{
	struct thin_details d;
	uint64_t root;

	cr_assert_eq(thin_pool_device(m->p, dev, &d, &root), 0);
	return root;
}

static void commit_check(struct mpool *m, struct model *mo, const char *when)
{
	mp_commit(m);
	mp_check(m, when);
	mp_compare(m, mo, NULL, when);
}

Test(pool_edit, a_three_level_tree_grows_is_shared_and_shrinks)
{
	struct mpool m;
	struct model mo;
	struct mdev *d;
	uint64_t *keys;
	size_t nr;
	char when[64];

	rnd_state = 77;
	mp_format(&m, 8192, 200000);
	model_init(&mo, thin_pool_sb(m.p));
	cr_assert_eq(thin_pool_create_thin(m.p, 1), 0);
	model_create_thin(&mo, 1);
	d = model_find(&mo, 1);
	/* 70000 mappings: more than 252 * 252, so three levels */
	for (int batch = 0; batch < 14; batch++) {
		for (int k = 0; k < 5000; k++)
			insert_new(&m, d, rnd_below(1u << 20), mo.time);
		snprintf(when, sizeof(when), "grow batch %d", batch);
		commit_check(&m, &mo, when);
	}
	cr_assert_gt(d->map.nr, 252u * 252u);
	cr_assert_eq(tree_depth(&m, dev_root(&m, 1)), 3);
	/* a snapshot shares the whole tree; removals from the origin copy the path */
	cr_assert_eq(thin_pool_create_snap(m.p, 2, 1), 0);
	model_create_snap(&mo, 2, 1);
	commit_check(&m, &mo, "snapshot");
	d = model_find(&mo, 1);
	cr_assert_eq(u64map_sorted_keys(&d->map, &keys, &nr), 0);
	for (size_t i = nr - 1; i > 0; i--) {
		size_t j = (size_t)rnd_below(i + 1);
		uint64_t t = keys[i];
		keys[i] = keys[j];
		keys[j] = t;
	}
	for (size_t i = 0; i < nr - nr / 20; i++) {
		cr_assert_eq(thin_pool_remove_mapping(m.p, 1, keys[i]), 0);
		u64map_del(&d->map, keys[i]);
		d->d.mapped_blocks--;
		if (i % 7000 == 6999) {
			snprintf(when, sizeof(when), "shrink %zu", i);
			commit_check(&m, &mo, when);
			d = model_find(&mo, 1);
		}
	}
	commit_check(&m, &mo, "shrunk");
	cr_assert_eq(tree_depth(&m, dev_root(&m, 1)), 2, "merges took a level away");
	/* and the snapshot shrinks too, then goes */
	d = model_find(&mo, 2);
	for (size_t i = 0; i < nr / 2; i++) {
		cr_assert_eq(thin_pool_remove_mapping(m.p, 2, keys[i]), 0);
		u64map_del(&d->map, keys[i]);
		d->d.mapped_blocks--;
	}
	commit_check(&m, &mo, "snapshot shrunk");
	cr_assert_eq(thin_pool_delete(m.p, 2), 0);
	model_del(&mo, 2);
	commit_check(&m, &mo, "snapshot deleted");
	cr_assert_eq(thin_pool_delete(m.p, 1), 0);
	model_del(&mo, 1);
	commit_check(&m, &mo, "all deleted");
	/* everything freed: the two empty trees of a formatted pool's size */
	cr_assert_eq(thin_pool_data_allocated(m.p), 0);
	free(keys);
	model_release(&mo);
	mp_destroy(&m);
}

Test(pool_edit, thousands_of_devices_in_multi_level_details_and_top_trees)
{
	struct mpool m;
	struct model mo;
	uint64_t meta0;
	char when[64];

	rnd_state = 4242;
	mp_format(&m, 8192, 100000);
	meta0 = thin_pool_metadata_allocated(m.p);
	model_init(&mo, thin_pool_sb(m.p));
	for (int i = 0; i < 2500; i++) {
		uint64_t id = free_id(&mo);

		if (i % 5 == 4) {
			uint64_t origin = mo.devs[rnd_below(mo.nr)].id;
			cr_assert_eq(thin_pool_create_snap(m.p, id, origin), 0);
			model_create_snap(&mo, id, origin);
		} else {
			cr_assert_eq(thin_pool_create_thin(m.p, id), 0);
			model_create_thin(&mo, id);
			insert_new(&m, model_find(&mo, id), rnd_below(100), mo.time);
		}
		if (i % 500 == 499) {
			snprintf(when, sizeof(when), "created %d", i + 1);
			commit_check(&m, &mo, when);
		}
	}
	cr_assert_geq(tree_depth(&m, thin_pool_sb(m.p)->device_details_root), 2);
	while (mo.nr) {
		uint64_t id = mo.devs[rnd_below(mo.nr)].id;

		cr_assert_eq(thin_pool_delete(m.p, id), 0);
		model_del(&mo, id);
		if (mo.nr % 400 == 0) {
			snprintf(when, sizeof(when), "%zu left", mo.nr);
			commit_check(&m, &mo, when);
		}
	}
	commit_check(&m, &mo, "none left");
	cr_assert_eq(thin_pool_data_allocated(m.p), 0);
	cr_assert_eq(thin_pool_metadata_allocated(m.p), meta0);
	model_release(&mo);
	mp_destroy(&m);
}

Test(pool_edit, counts_of_three_and_more_go_to_both_overflow_trees)
{
	struct mpool m;
	struct model mo;
	uint64_t blocks[600];

	mp_format(&m, 8192, 100000);
	model_init(&mo, thin_pool_sb(m.p));
	for (uint64_t id = 0; id < 4; id++) {
		cr_assert_eq(thin_pool_create_thin(m.p, id), 0);
		model_create_thin(&mo, id);
	}
	/* 600 data blocks mapped by four devices: a two-level data overflow tree */
	for (int i = 0; i < 600; i++) {
		cr_assert_eq(thin_pool_alloc_data_block(m.p, &blocks[i]), 0);
		for (uint64_t id = 0; id < 4; id++) {
			struct mdev *d = model_find(&mo, id);

			if (id)
				cr_assert_eq(thin_pool_inc_data_block(m.p, blocks[i]), 0);
			cr_assert_eq(thin_pool_insert_mapping(m.p, id, (uint64_t)i * 3, blocks[i]), 0);
			cr_assert_eq(u64map_put(&d->map, (uint64_t)i * 3,
						thin_bt_pack(blocks[i], mo.time)), 0);
			d->d.mapped_blocks++;
		}
	}
	commit_check(&m, &mo, "shared by four");
	/* seven snapshots of device 0: its root and leaves are shared eight ways */
	for (uint64_t id = 10; id < 17; id++) {
		cr_assert_eq(thin_pool_create_snap(m.p, id, 0), 0);
		model_create_snap(&mo, id, 0);
	}
	commit_check(&m, &mo, "seven snapshots");
	/* writes to the origin copy shared nodes: counts go down through 3 */
	for (int i = 0; i < 600; i += 3)
		insert_new(&m, model_find(&mo, 0), (uint64_t)i * 3, mo.time);
	commit_check(&m, &mo, "origin rewritten");
	for (uint64_t id = 1; id < 4; id++) {
		cr_assert_eq(thin_pool_delete(m.p, id), 0);
		model_del(&mo, id);
	}
	commit_check(&m, &mo, "three deleted");
	for (uint64_t id = 10; id < 16; id++) {
		cr_assert_eq(thin_pool_delete(m.p, id), 0);
		model_del(&mo, id);
	}
	commit_check(&m, &mo, "snapshots deleted");
	model_release(&mo);
	mp_destroy(&m);
}

Test(pool_edit, growing_the_data_space_map_past_one_index_leaf)
{
	struct mpool m;
	struct model mo;
	uint64_t nb = 200ull * SM_ENTRIES_PER_BITMAP + 17;

	mp_format(&m, 4096, 1000);
	model_init(&mo, thin_pool_sb(m.p));
	cr_assert_eq(thin_pool_grow_data(m.p, 50000), 0);
	mo.nr_data_blocks = 50000;
	commit_check(&m, &mo, "grown once");
	/* 201 bitmaps: the index tree needs two leaves (168 entries each) */
	cr_assert_eq(thin_pool_grow_data(m.p, nb), 0);
	mo.nr_data_blocks = nb;
	cr_assert_eq(thin_pool_create_thin(m.p, 1), 0);
	model_create_thin(&mo, 1);
	commit_check(&m, &mo, "grown to 201 bitmaps");
	/* data blocks from every bitmap */
	{
		struct mdev *d = model_find(&mo, 1);

		for (uint64_t i = 0; i < 3000; i++) {
			uint64_t b = (i * 1096993ull) % nb;

			/* a free block taken by reference, as dm_pool_inc_data_range can */
			cr_assert_eq(thin_pool_inc_data_block(m.p, b), 0);
			cr_assert_eq(thin_pool_insert_mapping(m.p, 1, i, b), 0);
			cr_assert_eq(u64map_put(&d->map, i, thin_bt_pack(b, mo.time)), 0);
			d->d.mapped_blocks++;
		}
	}
	commit_check(&m, &mo, "mapped everywhere");
	cr_assert_eq(thin_pool_grow_data(m.p, nb - 1), -EINVAL);
	model_release(&mo);
	mp_destroy(&m);
}

Test(pool_edit, growing_the_metadata_space_map_puts_bitmaps_in_the_new_area)
{
	struct mpool m;
	struct model mo;

	mp_format(&m, 40000, 10000);
	/* pretend the device was 4000 blocks when formatted: shrink the sm root */
	mp_destroy(&m);
	{
		struct thin_format_opts o = { .data_block_size = 128, .nr_data_blocks = 10000 };
		struct ioe *small = ioe_mem_create(4000);
		char err[256];

		memset(&m, 0, sizeof(m));
		cr_assert_eq(thin_format_ioe(small, &o, err, sizeof(err)), 0, "%s", err);
		m.e = ioe_mem_create(40000);
		memcpy(ioe_mem_data(m.e), ioe_mem_data(small), 4000 * MD_BLOCK_SIZE);
		ioe_destroy(small);
		mp_attach(&m);
	}
	model_init(&mo, thin_pool_sb(m.p));
	cr_assert_eq(thin_pool_metadata_nr_blocks(m.p), 4000);
	cr_assert_eq(thin_pool_grow_metadata(m.p, 40001), -ENOSPC);
	cr_assert_eq(thin_pool_grow_metadata(m.p, 3999), -EINVAL);
	cr_assert_eq(thin_pool_grow_metadata(m.p, 40000), 0);
	commit_check(&m, &mo, "metadata grown");
	cr_assert_eq(thin_pool_metadata_nr_blocks(m.p), 40000);
	/* the two new bitmaps live beyond the old end */
	{
		struct thin_sb sb;
		struct bc *bc = bc_create(m.e, 64);
		struct sm_index_entry e[3];

		cr_assert_eq(thin_sb_read(bc, 0, &sb), 0);
		cr_assert_eq(sm_read_index(bc, &sb.metadata_sm, e, NULL, NULL), 0);
		cr_assert_geq(e[1].blocknr, 4000);
		cr_assert_geq(e[2].blocknr, 4000);
		bc_destroy(bc);
	}
	/* and the space is usable */
	for (uint64_t id = 0; id < 3000; id++) {
		cr_assert_eq(thin_pool_create_thin(m.p, id), 0);
		model_create_thin(&mo, id);
	}
	commit_check(&m, &mo, "filled");
	model_release(&mo);
	mp_destroy(&m);
}

/*----------------------------------------------------------------*/
/* the kernel's removal thresholds, exactly */

struct shape {
	int depth;
	uint32_t nr;              /* children of the root (entries when depth 1) */
	uint32_t counts[3];
	uint64_t first_key[3];
};

static void read_shape(struct mpool *m, uint64_t dev, struct shape *s)
{
	struct bc *bc = bc_create(m->e, 16);
	struct bc_block *b;
	struct bt_node n;

	memset(s, 0, sizeof(*s));
	cr_assert_eq(bc_get(bc, dev_root(m, dev), &bt_node_validator, &b), 0);
	bt_node_view(bc_data(b), &n);
	s->nr = n.nr_entries;
	if (bt_is_leaf(&n)) {
		s->depth = 1;
	} else {
		s->depth = 2;
		cr_assert_leq(n.nr_entries, 3);
		for (uint32_t i = 0; i < n.nr_entries; i++) {
			struct bc_block *c;
			struct bt_node cn;

			cr_assert_eq(bc_get(bc, get_le64(bt_value(&n, i)), &bt_node_validator, &c), 0);
			bt_node_view(bc_data(c), &cn);
			cr_assert(bt_is_leaf(&cn));
			s->counts[i] = cn.nr_entries;
			s->first_key[i] = bt_key(&cn, 0);
			bc_put(bc, c);
		}
	}
	bc_put(bc, b);
	bc_destroy(bc);
}

/* Kernel rebalance2 of children a, a + 1 in the expected shape. */
static void expect2(struct shape *e, unsigned a)
{
	uint32_t t = e->counts[a] + e->counts[a + 1];

	if (t < 2 * (252 / 3 + 1)) {
		e->counts[a] = t;
		for (unsigned j = a + 1; j + 1 < e->nr; j++)
			e->counts[j] = e->counts[j + 1];
		e->nr--;
	} else {
		e->counts[a] = t / 2;
		e->counts[a + 1] = t - t / 2;
	}
}

/* What removing the entry at position x (in key order) does to the shape. */
static void expect_remove(const struct shape *before, uint32_t x, struct shape *e)
{
	unsigned i = 0;
	uint32_t pos = 0;

	*e = *before;
	if (e->depth == 1 || e->nr == 1) {
		/* a lone child takes the root's place first */
		uint32_t t = e->depth == 1 ? e->nr : e->counts[0];
		e->depth = 1;
		e->nr = t - 1;
		return;
	}
	while (pos + e->counts[i] <= x)
		pos += e->counts[i++];
	if (e->nr == 2) {
		expect2(e, 0);
	} else if (i == 0 || i == 2) {
		expect2(e, i == 0 ? 0 : 1);
	} else {
		uint32_t t = e->counts[0] + e->counts[1] + e->counts[2];

		if (t < 4 * (252 / 3) + 1) {
			uint32_t to_left = 252 - e->counts[0] < e->counts[1] ? 252 - e->counts[0]
									    : e->counts[1];
			e->counts[2] += e->counts[1] - to_left;
			e->counts[0] += to_left;
			e->counts[1] = e->counts[2];
			e->nr = 2;
			expect2(e, 0);
		} else {
			uint32_t tr = t / 3, tl = tr + (tr * 3 != t);
			e->counts[0] = tl;
			e->counts[1] = t - tl - tr;
			e->counts[2] = tr;
		}
	}
	pos = 0;
	for (i = 0; pos + e->counts[i] <= x; i++)
		pos += e->counts[i];
	if (e->nr == 1 && e->depth == 2) {
		e->counts[0]--;
		return;
	}
	e->counts[i]--;
}

Test(pool_edit, removal_merges_and_redistributes_at_the_kernel_thresholds)
{
	struct mpool m;
	struct model mo;
	struct mdev *d;
	struct shape s, want;
	uint64_t *keys;
	size_t nr;
	int saw3 = 0, saw_merge = 0, saw_delete_center = 0, saw_collapse = 0;

	rnd_state = 99;
	mp_format(&m, 1024, 4000);
	model_init(&mo, thin_pool_sb(m.p));
	cr_assert_eq(thin_pool_create_thin(m.p, 1), 0);
	model_create_thin(&mo, 1);
	d = model_find(&mo, 1);
	for (uint64_t k = 0; k < 640; k++)
		insert_new(&m, d, k, mo.time);
	commit_check(&m, &mo, "built");
	read_shape(&m, 1, &s);
	cr_assert_eq(s.depth, 2);
	cr_assert_eq(s.nr, 3, "640 sequential inserts give three leaves");
	for (int step = 0; d->map.nr; step++) {
		uint32_t x = (uint32_t)rnd_below(d->map.nr);

		cr_assert_eq(u64map_sorted_keys(&d->map, &keys, &nr), 0);
		expect_remove(&s, x, &want);
		cr_assert_eq(thin_pool_remove_mapping(m.p, 1, keys[x]), 0);
		u64map_del(&d->map, keys[x]);
		d->d.mapped_blocks--;
		free(keys);
		mp_commit(&m);
		if (s.nr == 3)
			saw3++;
		read_shape(&m, 1, &s);
		cr_assert_eq(s.depth, want.depth, "step %d: depth %d, expected %d", step, s.depth,
			     want.depth);
		cr_assert_eq(s.nr, want.nr, "step %d: %u children, expected %u", step, s.nr, want.nr);
		for (unsigned j = 0; s.depth == 2 && j < s.nr; j++)
			cr_assert_eq(s.counts[j], want.counts[j], "step %d: child %u has %u, expected %u",
				     step, j, s.counts[j], want.counts[j]);
		saw_delete_center += want.nr == 2 && s.nr == 2 && saw3 && !saw_delete_center;
		saw_merge += s.depth == 2 && s.nr == 1;
		saw_collapse += s.depth == 1 && !saw_collapse;
		if (step % 25 == 0)
			mp_check(&m, "removing");
	}
	cr_assert(saw3 && saw_delete_center && saw_merge && saw_collapse);
	commit_check(&m, &mo, "emptied");
	model_release(&mo);
	mp_destroy(&m);
}

/*----------------------------------------------------------------*/
/* the kernel's insertion rules, exactly (a two-level tree) */

#define SIM_LEAVES 64
struct sim {
	int depth;                       /* 1: leaves[0] is the root */
	unsigned nr;                     /* leaves */
	uint64_t keys[SIM_LEAVES][252];
	uint32_t n[SIM_LEAVES];
	unsigned nr_left, nr_right, nr_two, nr_three;   /* how each full leaf was dealt with */
};

static void sim_even(struct sim *s, unsigned a, unsigned b)
{
	uint64_t all[504];
	uint32_t t = 0, na = s->n[a] + s->n[b];

	memcpy(all, s->keys[a], 8 * s->n[a]);
	memcpy(all + s->n[a], s->keys[b], 8 * s->n[b]);
	t = na / 2;
	memcpy(s->keys[a], all, 8 * t);
	memcpy(s->keys[b], all + t, 8 * (na - t));
	s->n[a] = t;
	s->n[b] = na - t;
}

static void sim_insert_leaf(struct sim *s, unsigned i, uint64_t key)
{
	uint32_t j = 0;

	while (j < s->n[i] && s->keys[i][j] < key)
		j++;
	if (j < s->n[i] && s->keys[i][j] == key)
		return;
	memmove(&s->keys[i][j + 1], &s->keys[i][j], 8 * (s->n[i] - j));
	s->keys[i][j] = key;
	s->n[i]++;
}

static void sim_open_slot(struct sim *s, unsigned at)
{
	memmove(&s->keys[at + 1], &s->keys[at], sizeof(s->keys[0]) * (s->nr - at));
	memmove(&s->n[at + 1], &s->n[at], sizeof(s->n[0]) * (s->nr - at));
	s->n[at] = 0;
	s->nr++;
}

static unsigned sim_child(const struct sim *s, uint64_t key)
{
	unsigned i = 0;

	while (i + 1 < s->nr && s->keys[i + 1][0] <= key)
		i++;
	return i;
}

static void sim_insert(struct sim *s, uint64_t key)
{
	unsigned i, c;

	if (s->depth == 1) {
		if (s->n[0] < 252) {
			sim_insert_leaf(s, 0, key);
			return;
		}
		/* split beneath: two children of 126 */
		s->depth = 2;
		s->nr = 2;
		memcpy(s->keys[1], s->keys[0] + 126, 8 * 126);
		s->n[0] = s->n[1] = 126;
	}
	i = sim_child(s, key);
	if (s->n[i] == 252) {
		uint32_t j;
		int present = 0;

		for (j = 0; j < 252; j++)
			present |= s->keys[i][j] == key;
		if (present)
			return;
		if (i > 0 && 252 - s->n[i - 1] >= 8) {
			sim_even(s, i - 1, i);
			c = key < s->keys[i][0] ? i - 1 : i;
			s->nr_left++;
		} else if (i + 1 < s->nr && 252 - s->n[i + 1] >= 8) {
			sim_even(s, i, i + 1);
			c = key < s->keys[i + 1][0] ? i : i + 1;
			s->nr_right++;
		} else if (s->nr <= 2 || i == 0 || i + 1 == s->nr) {
			sim_open_slot(s, i + 1);
			sim_even(s, i, i + 1);
			c = key < s->keys[i + 1][0] ? i : i + 1;
			s->nr_two++;
		} else {
			/* two into three: child i - 1, a new middle, child i */
			uint64_t all[504];
			uint32_t t = s->n[i - 1] + s->n[i], c0 = t / 3, c1 = (t - c0) / 2;

			memcpy(all, s->keys[i - 1], 8 * s->n[i - 1]);
			memcpy(all + s->n[i - 1], s->keys[i], 8 * s->n[i]);
			sim_open_slot(s, i);
			memcpy(s->keys[i - 1], all, 8 * c0);
			memcpy(s->keys[i], all + c0, 8 * c1);
			memcpy(s->keys[i + 1], all + c0 + c1, 8 * (t - c0 - c1));
			s->n[i - 1] = c0;
			s->n[i] = c1;
			s->n[i + 1] = t - c0 - c1;
			c = key < s->keys[i][0] ? i - 1 : key < s->keys[i + 1][0] ? i : i + 1;
			s->nr_three++;
		}
		i = c;
	}
	sim_insert_leaf(s, i, key);
}

static void sim_compare(struct mpool *m, const struct sim *s, int step)
{
	struct bc *bc = bc_create(m->e, 16);
	struct bc_block *b;
	struct bt_node n;

	cr_assert_eq(bc_get(bc, dev_root(m, 1), &bt_node_validator, &b), 0);
	bt_node_view(bc_data(b), &n);
	cr_assert_eq(!bt_is_leaf(&n) + 1, s->depth, "step %d: depth", step);
	if (s->depth == 1) {
		cr_assert_eq(n.nr_entries, s->n[0]);
	} else {
		cr_assert_eq(n.nr_entries, s->nr, "step %d: %u leaves, expected %u", step,
			     n.nr_entries, s->nr);
		for (unsigned i = 0; i < s->nr; i++) {
			struct bc_block *c;
			struct bt_node cn;

			cr_assert_eq(bc_get(bc, get_le64(bt_value(&n, i)), &bt_node_validator, &c), 0);
			bt_node_view(bc_data(c), &cn);
			cr_assert_eq(cn.nr_entries, s->n[i], "step %d: leaf %u has %u, expected %u",
				     step, i, cn.nr_entries, s->n[i]);
			for (uint32_t j = 0; j < cn.nr_entries; j++)
				cr_assert_eq(bt_key(&cn, j), s->keys[i][j]);
			bc_put(bc, c);
		}
	}
	bc_put(bc, b);
	bc_destroy(bc);
}

static void insertion_run(uint64_t seed, int sequential)
{
	static struct sim s;
	struct mpool m;
	struct model mo;
	struct mdev *d;
	unsigned nr0 = 1;

	rnd_state = seed;
	memset(&s, 0, sizeof(s));
	s.depth = 1;
	mp_format(&m, 2048, 20000);
	model_init(&mo, thin_pool_sb(m.p));
	cr_assert_eq(thin_pool_create_thin(m.p, 1), 0);
	model_create_thin(&mo, 1);
	d = model_find(&mo, 1);
	for (int step = 0; step < 6000 && s.nr < SIM_LEAVES - 2; step++) {
		uint64_t key = sequential ? (uint64_t)step : rnd_below(1u << 30);
		sim_insert(&s, key);
		insert_new(&m, d, key, mo.time);
		if (step % 97 == 0 || s.nr != nr0) {
			mp_commit(&m);
			sim_compare(&m, &s, step);
			nr0 = s.nr;
		}
	}
	commit_check(&m, &mo, "inserted");
	sim_compare(&m, &s, -1);
	cr_assert_gt(s.nr, 10);
	cr_assert(s.nr_left && s.nr_two, "both a rebalance to the left and a split");
	if (!sequential)
		cr_assert(s.nr_right && s.nr_three, "a rebalance to the right and a 2-into-3 split");
	model_release(&mo);
	mp_destroy(&m);
}

Test(pool_edit, random_inserts_split_and_rebalance_as_the_kernel_does)
{
	insertion_run(5, 0);
	insertion_run(6, 0);
}

Test(pool_edit, sequential_inserts_split_one_into_two_at_the_end)
{
	insertion_run(7, 1);
}

Test(pool_edit, overflow_counts_of_a_bitmap_stay_known_after_another_block_reaches_three)
{
	struct mpool m;
	uint64_t a, b;
	uint32_t c;

	mp_format(&m, 1024, 1000);
	cr_assert_eq(thin_pool_alloc_data_block(m.p, &a), 0);
	cr_assert_eq(thin_pool_alloc_data_block(m.p, &b), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(thin_pool_inc_data_block(m.p, a), 0);   /* a: 5 */
	cr_assert_eq(thin_pool_inc_data_block(m.p, b), 0);        /* b: 2 */
	/* counts only: leaked as far as the trees go, so no strict check here */
	mp_commit(&m);
	mp_detach(&m);
	mp_attach(&m);
	/* b reaches 3 before anything has asked for a's count */
	cr_assert_eq(thin_pool_inc_data_block(m.p, b), 0);
	cr_assert_eq(thin_pool_data_count(m.p, a, &c), 0);
	cr_assert_eq(c, 5);
	cr_assert_eq(thin_pool_data_count(m.p, b, &c), 0);
	cr_assert_eq(c, 3);
	mp_commit(&m);
	mp_detach(&m);
	mp_attach(&m);
	cr_assert_eq(thin_pool_data_count(m.p, a, &c), 0);
	cr_assert_eq(c, 5);
	cr_assert_eq(thin_pool_data_count(m.p, b, &c), 0);
	cr_assert_eq(c, 3);
	mp_destroy(&m);
}
