#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block-cache/block-cache.h"
#include "btree/btree.h"
#include "cmd/pack_v3.h"
#include "crc/crc32c.h"
#include "util/endian.h"

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* A checksummed node: nr entries, keys from k0 by steps, values by vfn. */
static void make_node(uint8_t *b, uint32_t flags, uint32_t vsize, uint32_t nr, uint64_t k0,
		      int leaf_block_time)
{
	uint32_t max = bt_calc_max_entries(vsize);
	uint64_t k = k0, db = rnd() % 1000000;

	memset(b, 0, MD_BLOCK_SIZE);
	put_le32(b + 4, flags);
	put_le64(b + 8, 77);
	put_le32(b + 16, nr);
	put_le32(b + 20, max);
	put_le32(b + 24, vsize);
	for (uint32_t i = 0; i < nr; i++) {
		k += 1 + (rnd() % 4 == 0 ? rnd() % 100000 : rnd() % 3);
		put_le64(b + 32 + 8 * (size_t)i, k);
		if (vsize == 8) {
			db += rnd() % 5 == 0 ? rnd() % (1u << 30) : 1;
			put_le64(b + 32 + 8 * (size_t)max + 8 * (size_t)i,
				 leaf_block_time ? db << 24 | (rnd() % 3) : db);
		} else {
			for (uint32_t j = 0; j < vsize; j++)
				b[32 + 8 * (size_t)max + (size_t)vsize * i + j] = (uint8_t)rnd();
		}
	}
	/* stale entries beyond nr, as the kernel leaves them */
	if (nr < max)
		put_le64(b + 32 + 8 * (size_t)nr, rnd());
	bc_csum_prepare(b, 77, MD_BLOCK_SIZE, BTREE_CSUM_XOR);
}

static void roundtrip(const uint8_t *b, size_t max_len)
{
	uint8_t prog[PACK_V3_MAX_PROGRAM], out[MD_BLOCK_SIZE];
	size_t len = pack_v3_encode_block(b, prog), pos = 0;

	cr_assert_leq(len, PACK_V3_MAX_PROGRAM);
	cr_assert_leq(len, max_len, "program of %zu bytes, expected at most %zu", len, max_len);
	cr_assert_eq(pack_v3_decode_block(prog, len, &pos, out), 0);
	cr_assert_eq(pos, len, "the program is consumed exactly");
	cr_assert_eq(memcmp(out, b, MD_BLOCK_SIZE), 0, "the block is rebuilt");
}

Test(pack_v3, nodes_round_trip_and_shrink)
{
	uint8_t b[MD_BLOCK_SIZE];

	for (int i = 0; i < 300; i++) {
		uint32_t nr = (uint32_t)(rnd() % 253);

		make_node(b, BT_LEAF_NODE, 8, nr, rnd() % 100000, 1);
		roundtrip(b, nr ? MD_BLOCK_SIZE : 200);
		make_node(b, BT_INTERNAL_NODE, 8, nr % 200, rnd() % 100, 0);
		roundtrip(b, MD_BLOCK_SIZE);
		make_node(b, BT_LEAF_NODE, 24, nr % 100, 0, 0);
		roundtrip(b, PACK_V3_MAX_PROGRAM);
		make_node(b, BT_LEAF_NODE, 4, nr, 0, 0);
		roundtrip(b, PACK_V3_MAX_PROGRAM);
	}
	/* a sequential full leaf: a few dozen bytes */
	make_node(b, BT_LEAF_NODE, 8, 0, 0, 1);
	put_le32(b + 16, 252);
	for (uint32_t i = 0; i < 252; i++) {
		put_le64(b + 32 + 8 * i, 1000 + i);
		put_le64(b + 32 + 8 * 252 + 8 * i, (5000ull + i) << 24 | 3);
	}
	bc_csum_prepare(b, 77, MD_BLOCK_SIZE, BTREE_CSUM_XOR);
	roundtrip(b, 100);
}

Test(pack_v3, other_blocks_are_one_literal)
{
	uint8_t b[MD_BLOCK_SIZE], prog[PACK_V3_MAX_PROGRAM];

	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)rnd();
	cr_assert_eq(pack_v3_encode_block(b, prog), 4099);
	cr_assert_eq(prog[0], PV3_LITW << 4 | 2);
	cr_assert_eq(prog[1] | prog[2] << 8, 4096);
	roundtrip(b, 4099);
	/* a node whose header does not fit the block: literal too */
	make_node(b, BT_LEAF_NODE, 8, 10, 0, 1);
	put_le32(b + 20, 5000);
	bc_csum_prepare(b, 77, MD_BLOCK_SIZE, BTREE_CSUM_XOR);
	cr_assert_eq(pack_v3_encode_block(b, prog), 4099);
	roundtrip(b, 4099);
}

/* 4096 bytes from a hand-written program: values then a literal tail */
Test(pack_v3, instructions_mean_what_the_format_says)
{
	uint8_t p[64], out[MD_BLOCK_SIZE];
	size_t n = 0, pos = 0;

	p[n++] = PV3_SET << 4 | 2;      /* base = 0x1234, emit */
	p[n++] = 0x34;
	p[n++] = 0x12;
	p[n++] = PV3_POS << 4 | 5;      /* 0x1239 */
	p[n++] = PV3_COUNT << 4 | 3;    /* 3 x Neg 1: 0x1238 0x1237 0x1236 */
	p[n++] = PV3_NEG << 4 | 1;
	p[n++] = PV3_CONST << 4 | 2;    /* 0x1236 twice */
	p[n++] = PV3_POSW << 4 | 1;     /* + 0x10 = 0x1246 */
	p[n++] = 0x10;
	p[n++] = PV3_CONST8 << 4 | 1;   /* 256 + 240 = 496 more: values 8..503 */
	p[n++] = 240;
	p[n++] = PV3_SHIFTED_RUN << 4;  /* values 504..507: hi 7,8,9,10  lo 1,1,1,1 */
	p[n++] = 4;
	p[n++] = PV3_SET << 4 | 1;
	p[n++] = 7;
	p[n++] = PV3_COUNT << 4 | 3;
	p[n++] = PV3_POS << 4 | 1;
	p[n++] = PV3_SET << 4 | 1;
	p[n++] = 1;
	p[n++] = PV3_CONST << 4 | 3;
	p[n++] = PV3_COUNT << 4 | 2;    /* 2 x Lit of 16 bytes: the last 32 bytes */
	p[n++] = PV3_LITW << 4 | 1;
	p[n++] = 16;
	memset(p + n, 0xab, 16);
	n += 16;
	cr_assert_eq(pack_v3_decode_block(p, n, &pos, out), 0);
	cr_assert_eq(pos, n);
	cr_assert_eq(get_le64(out), 0x1234);
	cr_assert_eq(get_le64(out + 8), 0x1239);
	cr_assert_eq(get_le64(out + 16), 0x1238);
	cr_assert_eq(get_le64(out + 32), 0x1236);
	cr_assert_eq(get_le64(out + 40), 0x1236);
	cr_assert_eq(get_le64(out + 56), 0x1246);
	cr_assert_eq(get_le64(out + 8 * 503), 0x1246);
	cr_assert_eq(get_le64(out + 8 * 504), 7ull << 24 | 1);
	cr_assert_eq(get_le64(out + 8 * 507), 10ull << 24 | 1);
	cr_assert_eq(out[4064], 0xab);
	cr_assert_eq(out[4095], 0xab);
}

Test(pack_v3, malformed_programs_are_refused)
{
	uint8_t b[MD_BLOCK_SIZE], prog[PACK_V3_MAX_PROGRAM + 8], out[MD_BLOCK_SIZE];
	size_t len, pos;

	make_node(b, BT_LEAF_NODE, 8, 100, 5, 1);
	len = pack_v3_encode_block(b, prog);
	for (size_t cut = 0; cut < len; cut += 7) {   /* truncated anywhere */
		pos = 0;
		cr_assert_eq(pack_v3_decode_block(prog, cut, &pos, out), -EILSEQ, "cut at %zu", cut);
	}
	{
		static const uint8_t bad[][4] = {
			{ 0xc0 },                         /* tag 12 */
			{ 0xf3 },                         /* tag 15 */
			{ PV3_SET << 4 | 3, 1, 2, 3 },    /* width 3 */
			{ PV3_SET << 4 | 0, 0, 0, 0 },    /* width 0 */
			{ PV3_COUNT << 4 | 2, PV3_COUNT << 4 | 2, PV3_POS << 4 | 1 },
			{ PV3_COUNT << 4 | 2, PV3_SHIFTED_RUN << 4, 1 },
			{ PV3_SHIFTED_RUN << 4 | 2, 1 },  /* 513 values > 512 */
			{ PV3_CONST8 << 4 | 15, 255 },    /* 4095 values > 512 */
			{ PV3_LITW << 4 | 2, 0x01, 0x10 },/* 4097 bytes */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			uint8_t p[8192];

			memset(p, PV3_CONST << 4 | 1, sizeof(p));
			memcpy(p, bad[i], 4);
			pos = 0;
			cr_assert_eq(pack_v3_decode_block(p, sizeof(p), &pos, out), -EILSEQ, "case %zu", i);
		}
	}
	{	/* a literal inside a ShiftedRun half */
		uint8_t p[16] = { PV3_SHIFTED_RUN << 4, 1, PV3_LIT << 4 | 8 };
		pos = 0;
		cr_assert_eq(pack_v3_decode_block(p, sizeof(p), &pos, out), -EILSEQ);
	}
}
