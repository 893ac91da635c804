#include "cmd/pack_v3.h"

#include <errno.h>
#include <string.h>

#include "btree/btree.h"
#include "crc/crc32c.h"
#include "io/io.h"
#include "util/endian.h"

/*----------------------------------------------------------------*/
/* encoder */

struct pw {
	uint8_t *p;
	size_t len, cap;   /* len may pass cap: the program is then too long */
};

static void put(struct pw *w, uint8_t b)
{
	if (w->len < w->cap)
		w->p[w->len] = b;
	w->len++;
}

static unsigned width(uint64_t v)
{
	return v < 1ull << 8 ? 1 : v < 1ull << 16 ? 2 : v < 1ull << 32 ? 4 : 8;
}

static void put_le(struct pw *w, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		put(w, (uint8_t)(v >> (8 * i)));
}

static void put_lit(struct pw *w, const uint8_t *src, size_t n)
{
	if (!n)
		return;
	if (n <= 15) {
		put(w, PV3_LIT << 4 | (uint8_t)n);
	} else {
		unsigned wd = n < 256 ? 1 : 2;
		put(w, (uint8_t)(PV3_LITW << 4 | wd));
		put_le(w, n, wd);
	}
	for (size_t i = 0; i < n; i++)
		put(w, src[i]);
}

/* One value-producing instruction (never Const). */
struct op {
	uint8_t tag, nib;
	uint64_t arg;
};

/* The cheapest instruction taking base to x (x != base). */
static struct op choose(uint64_t base, uint64_t x)
{
	uint64_t up = x - base, down = base - x;
	unsigned wu = width(up), wd = width(down), ws = width(x);
	struct op o = { 0, 0, 0 };

	if (up <= 15) {
		o.tag = PV3_POS;
		o.nib = (uint8_t)up;
	} else if (down <= 15) {
		o.tag = PV3_NEG;
		o.nib = (uint8_t)down;
	} else if (wu <= wd && wu <= ws) {
		o = (struct op){ PV3_POSW, (uint8_t)wu, up };
	} else if (wd <= ws) {
		o = (struct op){ PV3_NEGW, (uint8_t)wd, down };
	} else {
		o = (struct op){ PV3_SET, (uint8_t)ws, x };
	}
	return o;
}

static void put_count(struct pw *w, uint8_t tag4, uint8_t tag8, size_t n)
{
	if (n <= 15) {
		put(w, (uint8_t)(tag4 << 4 | n));
	} else {
		put(w, (uint8_t)(tag8 << 4 | (n >> 8)));
		put(w, (uint8_t)(n & 0xff));
	}
}

static void put_op(struct pw *w, const struct op *o)
{
	put(w, (uint8_t)(o->tag << 4 | o->nib));
	if (o->tag == PV3_SET || o->tag == PV3_POSW || o->tag == PV3_NEGW)
		put_le(w, o->arg, o->nib);
}

static int same_op(const struct op *a, const struct op *b)
{
	return a->tag == b->tag && a->nib == b->nib && a->arg == b->arg;
}

static uint64_t apply(uint64_t base, const struct op *o)
{
	switch (o->tag) {
	case PV3_POS:
		return base + o->nib;
	case PV3_NEG:
		return base - o->nib;
	case PV3_POSW:
		return base + o->arg;
	case PV3_NEGW:
		return base - o->arg;
	default:
		return o->arg;
	}
}

/*
 * Emits v[0..n); repeats become Count/Const runs.  Starts with a Set, as
 * 1.x's encoder does, so the sequence never depends on the state before it.
 */
static void put_seq(struct pw *w, const uint64_t *v, size_t n, uint64_t *base)
{
	uint64_t b;

	if (!n)
		return;
	b = v[0];
	put_op(w, &(struct op){ PV3_SET, (uint8_t)width(b), b });
	for (size_t i = 1; i < n;) {
		size_t r = 1;

		if (v[i] == b) {
			while (i + r < n && r < 4095 && v[i + r] == b)
				r++;
			put_count(w, PV3_CONST, PV3_CONST8, r);
			i += r;
			continue;
		}
		struct op o = choose(b, v[i]);
		uint64_t nb = v[i];
		while (o.tag != PV3_SET && i + r < n && r < 4095 && v[i + r] != nb) {
			struct op o2 = choose(nb, v[i + r]);
			if (!same_op(&o, &o2))
				break;
			nb = apply(nb, &o2);
			r++;
		}
		if (r > 1)
			put_count(w, PV3_COUNT, PV3_COUNT8, r);
		put_op(w, &o);
		b = nb;
		i += r;
	}
	*base = b;
}

static size_t encode_node(const uint8_t *blk, struct pw *w)
{
	uint64_t keys[MD_BLOCK_SIZE / 8], vals[MD_BLOCK_SIZE / 8], base = 0;
	struct bt_node n;
	size_t at;

	bt_node_view(blk, &n);
	if (!n.max_entries || n.value_size > MD_BLOCK_SIZE ||
	    BT_HEADER_SIZE + (uint64_t)n.max_entries * (8 + n.value_size) > MD_BLOCK_SIZE)
		return 0;
	put_lit(w, blk, BT_HEADER_SIZE);
	for (uint32_t i = 0; i < n.max_entries; i++)
		keys[i] = get_le64(blk + BT_HEADER_SIZE + 8 * (size_t)i);
	put_seq(w, keys, n.max_entries, &base);
	at = BT_HEADER_SIZE + 8 * (size_t)n.max_entries;
	if (n.value_size == 8) {
		for (uint32_t i = 0; i < n.max_entries; i++)
			vals[i] = get_le64(blk + at + 8 * (size_t)i);
		if (bt_is_leaf(&n) && n.max_entries <= 4095) {
			/* block_time values: high 40 bits and low 24 bits apart */
			uint64_t hb = 0, lb = 0;
			put(w, (uint8_t)(PV3_SHIFTED_RUN << 4 | (n.max_entries >> 8)));
			put(w, (uint8_t)(n.max_entries & 0xff));
			for (uint32_t i = 0; i < n.max_entries; i++)
				keys[i] = vals[i] >> 24;
			put_seq(w, keys, n.max_entries, &hb);
			for (uint32_t i = 0; i < n.max_entries; i++)
				keys[i] = vals[i] & 0xffffff;
			put_seq(w, keys, n.max_entries, &lb);
		} else {
			put_seq(w, vals, n.max_entries, &base);
		}
		at += 8 * (size_t)n.max_entries;
	}
	put_lit(w, blk + at, MD_BLOCK_SIZE - at);
	return w->len;
}

size_t pack_v3_encode_block(const uint8_t *block, uint8_t *out)
{
	uint8_t tmp[2 * MD_BLOCK_SIZE];
	struct pw w = { tmp, 0, sizeof(tmp) };
	struct pw lit = { out, 0, PACK_V3_MAX_PROGRAM };

	if (crc_block_salt(block, MD_BLOCK_SIZE) == BTREE_CSUM_XOR && encode_node(block, &w) &&
	    w.len < PACK_V3_MAX_PROGRAM) {
		memcpy(out, tmp, w.len);
		return w.len;
	}
	put_lit(&lit, block, MD_BLOCK_SIZE);
	return lit.len;
}

/*----------------------------------------------------------------*/
/* decoder */

struct vm {
	const uint8_t *p;
	size_t len, pos;
};

/* Where a program's output goes: the block's bytes or a list of values. */
struct sink {
	uint8_t *bytes;
	uint64_t *vals;
	size_t n, cap;   /* bytes or values so far, capacity */
};

struct insn {
	unsigned tag, nib;
	uint64_t arg;
	const uint8_t *lit;
};

static int rd_byte(struct vm *m, unsigned *b)
{
	if (m->pos >= m->len)
		return -EILSEQ;
	*b = m->p[m->pos++];
	return 0;
}

static int rd_width(struct vm *m, unsigned w, uint64_t *v)
{
	if (w != 1 && w != 2 && w != 4 && w != 8)
		return -EILSEQ;
	if (m->len - m->pos < w)
		return -EILSEQ;
	*v = 0;
	for (unsigned i = 0; i < w; i++)
		*v |= (uint64_t)m->p[m->pos + i] << (8 * i);
	m->pos += w;
	return 0;
}

static int fetch(struct vm *m, struct insn *in)
{
	unsigned b;
	int r = rd_byte(m, &b);

	if (r < 0)
		return r;
	in->tag = b >> 4;
	in->nib = b & 15;
	in->arg = 0;
	switch (in->tag) {
	case PV3_SET:
	case PV3_POSW:
	case PV3_NEGW:
		return rd_width(m, in->nib, &in->arg);
	case PV3_CONST8:
	case PV3_COUNT8:
	case PV3_SHIFTED_RUN:
		r = rd_byte(m, &b);
		in->arg = (uint64_t)in->nib << 8 | b;
		return r;
	case PV3_LIT:
		in->arg = in->nib;
		break;
	case PV3_LITW:
		r = rd_width(m, in->nib, &in->arg);
		if (r < 0)
			return r;
		break;
	case PV3_POS:
	case PV3_NEG:
	case PV3_CONST:
	case PV3_COUNT:
		return 0;
	default:
		return -EILSEQ;
	}
	if (in->arg > m->len - m->pos)
		return -EILSEQ;
	in->lit = m->p + m->pos;
	m->pos += in->arg;
	return 0;
}

static inline __attribute__((always_inline)) int emit(struct sink *s, uint64_t v)
{
	if (s->vals) {
		if (s->n >= s->cap)
			return -EILSEQ;
		s->vals[s->n++] = v;
		return 0;
	}
	if (s->cap - s->n < 8)
		return -EILSEQ;
	put_le64(s->bytes + s->n, v);
	s->n += 8;
	return 0;
}

static int run(struct vm *m, struct sink *s);

static int exec(struct vm *m, struct sink *s, const struct insn *in, uint64_t *base)
{
	uint64_t k;
	int r = 0;

	switch (in->tag) {
	case PV3_SET:
		*base = in->arg;
		return emit(s, *base);
	case PV3_POS:
		*base += in->nib;
		return emit(s, *base);
	case PV3_POSW:
		*base += in->arg;
		return emit(s, *base);
	case PV3_NEG:
		*base -= in->nib;
		return emit(s, *base);
	case PV3_NEGW:
		*base -= in->arg;
		return emit(s, *base);
	case PV3_CONST:
	case PV3_CONST8:
		k = in->tag == PV3_CONST ? in->nib : in->arg;
		for (uint64_t i = 0; i < k && !r; i++)
			r = emit(s, *base);
		return r;
	case PV3_LIT:
	case PV3_LITW:
		if (s->vals || in->arg > s->cap - s->n)
			return -EILSEQ;
		memcpy(s->bytes + s->n, in->lit, in->arg);
		s->n += in->arg;
		return 0;
	case PV3_SHIFTED_RUN: {
		uint64_t hi[MD_BLOCK_SIZE / 8], lo[MD_BLOCK_SIZE / 8];
		struct sink sh = { NULL, hi, 0, in->arg }, sl = { NULL, lo, 0, in->arg };

		if (s->vals || in->arg * 8 > s->cap - s->n)
			return -EILSEQ;
		r = run(m, &sh);
		if (!r)
			r = run(m, &sl);
		for (uint64_t i = 0; i < in->arg && !r; i++)
			r = emit(s, hi[i] << 24 | (lo[i] & 0xffffff));
		return r;
	}
	default:
		return -EILSEQ;
	}
}

/* Runs instructions (fresh base) until the sink is full. */
static int run(struct vm *m, struct sink *s)
{
	uint64_t base = 0;

	while (s->n < s->cap) {
		struct insn in, rep;
		uint64_t k;
		int r = fetch(m, &in);

		if (r < 0)
			return r;
		if (in.tag != PV3_COUNT && in.tag != PV3_COUNT8) {
			r = exec(m, s, &in, &base);
			if (r < 0)
				return r;
			continue;
		}
		k = in.tag == PV3_COUNT ? in.nib : in.arg;
		r = fetch(m, &rep);
		if (r < 0)
			return r;
		if (rep.tag == PV3_COUNT || rep.tag == PV3_COUNT8 || rep.tag == PV3_SHIFTED_RUN)
			return -EILSEQ;
		for (uint64_t i = 0; i < k; i++) {
			r = exec(m, s, &rep, &base);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int pack_v3_decode_block(const uint8_t *p, size_t len, size_t *pos, uint8_t *block)
{
	struct vm m = { p, len, *pos };
	struct sink s = { block, NULL, 0, MD_BLOCK_SIZE };
	int r;

	if (m.pos > len)
		return -EILSEQ;
	r = run(&m, &s);
	if (r < 0)
		return r;
	*pos = m.pos;
	return 0;
}
