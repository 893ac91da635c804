#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc/crc32c.h"
#include "names/names.h"
#include "thin/pool_tag.h"
#include "names/reconcile.h"
#include "util/endian.h"
#include "util/hash.h"

static void fill(struct thin_names_table *t, size_t n, unsigned blob_mod)
{
	thin_names_init(t);
	memcpy(t->tag, "TM0123456789ABCD", 16);
	t->generation = 42;
	t->bound_trans_id = 7;
	t->data_block_size = 128;
	for (size_t i = 0; i < n; i++) {
		uint8_t blob[TMN_BLOB_MAX_DEFAULT];
		struct thin_names_entry e = { 0 };

		e.dev_id = (uint32_t)(i * 3 + 1);
		e.blob_len = (uint16_t)(blob_mod ? i % blob_mod : 0);
		for (unsigned k = 0; k < e.blob_len; k++)
			blob[k] = (uint8_t)(i + k);
		e.blob = blob;
		e.flags = (uint16_t)(i % 3 == 0 ? TMN_E_UTF8 : i % 3 == 1 ? TMN_E_PENDING_CREATE
								      : TMN_E_PENDING_DELETE);
		e.transaction = i == 5 ? TMN_TRANS_UNKNOWN : i * 11;
		e.creation_time = (uint32_t)i;
		cr_assert_eq(thin_names_put(t, &e), 0);
	}
}

static void assert_same_table(const struct thin_names_table *a, const struct thin_names_table *b)
{
	cr_assert_eq(memcmp(a->tag, b->tag, 16), 0);
	cr_assert_eq(a->generation, b->generation);
	cr_assert_eq(a->bound_trans_id, b->bound_trans_id);
	cr_assert_eq(a->data_block_size, b->data_block_size);
	cr_assert_eq(a->blob_max, b->blob_max);
	cr_assert_eq(a->nr, b->nr);
	for (size_t i = 0; i < a->nr; i++) {
		cr_assert_eq(a->e[i].dev_id, b->e[i].dev_id);
		cr_assert_eq(a->e[i].flags, b->e[i].flags);
		cr_assert_eq(a->e[i].transaction, b->e[i].transaction);
		cr_assert_eq(a->e[i].creation_time, b->e[i].creation_time);
		cr_assert_eq(a->e[i].blob_len, b->e[i].blob_len);
		if (a->e[i].blob_len)
			cr_assert_eq(memcmp(a->e[i].blob, b->e[i].blob, a->e[i].blob_len), 0);
	}
}

static void roundtrip(size_t n, unsigned blob_mod)
{
	struct thin_names_table t, u;
	void *buf;
	size_t len;
	char msg[128];

	fill(&t, n, blob_mod);
	cr_assert_eq(thin_names_encode(&t, &buf, &len), 0);
	cr_assert_eq(len % 8, 0);
	cr_assert_eq(thin_names_decode(buf, len, &u, msg, sizeof(msg)), 0, "%s", msg);
	assert_same_table(&t, &u);
	free(buf);
	thin_names_release(&t);
	thin_names_release(&u);
}

Test(names, round_trip_0_1_10k_64k_entries)
{
	roundtrip(0, 0);
	roundtrip(1, 9);
	roundtrip(10000, 17);
	roundtrip(65536, 3);
}

Test(names, round_trip_blob_lengths_0_1_7_8_max)
{
	static const uint16_t lens[] = { 0, 1, 7, 8, TMN_BLOB_MAX_DEFAULT };
	struct thin_names_table t, u;
	uint8_t blob[TMN_BLOB_MAX_DEFAULT];
	void *buf;
	size_t len;
	char msg[128];

	memset(blob, 0xa5, sizeof(blob));
	thin_names_init(&t);
	for (size_t i = 0; i < 5; i++) {
		struct thin_names_entry e = { .dev_id = (uint32_t)i, .blob_len = lens[i],
					      .blob = blob };
		cr_assert_eq(thin_names_put(&t, &e), 0);
	}
	cr_assert_eq(thin_names_encode(&t, &buf, &len), 0);
	cr_assert_eq(len, 64 + 16 + 5 * 24 + 0 + 8 + 8 + 8 + 256);
	cr_assert_eq(thin_names_decode(buf, len, &u, msg, sizeof(msg)), 0);
	assert_same_table(&t, &u);
	free(buf);
	thin_names_release(&u);
	/* one byte over blob_max is refused */
	struct thin_names_entry big = { .dev_id = 9, .blob_len = TMN_BLOB_MAX_DEFAULT + 1,
					 .blob = blob };
	cr_assert_eq(thin_names_put(&t, &big), -EINVAL);
	thin_names_release(&t);
}

static void encode_small(void **buf, size_t *len)
{
	struct thin_names_table t;

	fill(&t, 4, 11);
	cr_assert_eq(thin_names_encode(&t, buf, len), 0);
	thin_names_release(&t);
}

Test(names, every_truncation_is_rejected)
{
	void *buf;
	size_t len;
	char msg[128];

	encode_small(&buf, &len);
	for (size_t n = 0; n < len; n++) {
		struct thin_names_table u;
		void *copy = malloc(n + 1);

		memcpy(copy, buf, n);
		cr_assert_eq(thin_names_decode(copy, n, &u, msg, sizeof(msg)), -EILSEQ, "len %zu", n);
		free(copy);
	}
	free(buf);
}

Test(names, every_bit_flip_is_rejected)
{
	uint8_t *buf;
	size_t len;
	char msg[128];

	encode_small((void **)&buf, &len);
	for (size_t i = 0; i < len; i++)
		for (int b = 0; b < 8; b++) {
			struct thin_names_table u;

			buf[i] ^= (uint8_t)(1u << b);
			cr_assert_eq(thin_names_decode(buf, len, &u, msg, sizeof(msg)), -EILSEQ,
				     "byte %zu bit %d", i, b);
			buf[i] ^= (uint8_t)(1u << b);
		}
	free(buf);
}

/* Recomputes the header CRC and the trailer hash after a deliberate edit. */
static void reseal(uint8_t *p, size_t len)
{
	put_le32(p + 60, crc_crc32c(~0u, p, 60));
	put_le64(p + len - 8, hash64(p, len - 16, 0));
}

static int decode_resealed(uint8_t *p, size_t len, char *msg)
{
	struct thin_names_table u;
	int r;

	reseal(p, len);
	r = thin_names_decode(p, len, &u, msg, 128);
	if (r == 0)
		thin_names_release(&u);
	return r;
}

Test(names, structural_errors_are_rejected_even_with_valid_checksums)
{
	uint8_t *buf, *p;
	size_t len;
	char msg[128];
	struct thin_names_table t;

	/* two entries without blobs: 64 + 2 * 24 + 16 */
	thin_names_init(&t);
	struct thin_names_entry a = { .dev_id = 1 }, b = { .dev_id = 2 };
	thin_names_put(&t, &a);
	thin_names_put(&t, &b);
	cr_assert_eq(thin_names_encode(&t, (void **)&buf, &len), 0);
	thin_names_release(&t);
	p = malloc(len + 8);
	cr_assert_eq(decode_resealed(memcpy(p, buf, len), len, msg), 0);

	memcpy(p, buf, len);
	put_le32(p + 64 + 24, 1);   /* duplicate id */
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	memcpy(p, buf, len);
	put_le32(p + 64, 3);        /* unsorted */
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	memcpy(p, buf, len);
	put_le32(p + 64 + 24, 1u << 24);   /* id >= 2^24 */
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	memcpy(p, buf, len);
	p[64 + 20] = 1;             /* reserved */
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	memcpy(p, buf, len);
	p[64 + 6] = 8;              /* unknown flag */
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	memcpy(p, buf, len);
	p[64 + 6] = TMN_E_PENDING_CREATE | TMN_E_PENDING_DELETE;
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	memcpy(p, buf, len);
	put_le32(p + 56, 3);        /* nr_entries one too many */
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	memcpy(p, buf, len);
	put_le32(p + 56, 1);        /* one too few: length off */
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	/* length off by 8 (an extra zero word before the trailer) */
	memcpy(p, buf, len - 16);
	memset(p + len - 16, 0, 8);
	memcpy(p + len - 8, buf + len - 16, 16);
	cr_assert_eq(decode_resealed(p, len + 8, msg), -EILSEQ);
	memcpy(p, buf, len);
	p[64 + 4] = 1;    /* blob_len 1 but no room */
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	memcpy(p, buf, len);
	put_le32(p + 8, 2);         /* version */
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	memcpy(p, buf, len);
	p[52] = 0x88; p[53] = 0x13;     /* blob_max > 4096 */
	cr_assert_eq(decode_resealed(p, len, msg), -EILSEQ);
	free(p);
	free(buf);
}

Test(names, nonzero_padding_is_rejected)
{
	struct thin_names_table t;
	struct thin_names_entry e = { .dev_id = 4, .blob_len = 3, .blob = (uint8_t *)"abc" };
	uint8_t *buf;
	size_t len;
	char msg[128];

	thin_names_init(&t);
	thin_names_put(&t, &e);
	cr_assert_eq(thin_names_encode(&t, (void **)&buf, &len), 0);
	buf[64 + 24 + 5] = 1;
	cr_assert_eq(decode_resealed(buf, len, msg), -EILSEQ);
	free(buf);
	thin_names_release(&t);
}

Test(names, put_find_remove_keep_order)
{
	struct thin_names_table t;

	thin_names_init(&t);
	for (int id = 100; id > 0; id -= 7) {
		struct thin_names_entry e = { .dev_id = (uint32_t)id };
		cr_assert_eq(thin_names_put(&t, &e), 0);
	}
	for (size_t i = 1; i < t.nr; i++)
		cr_assert_lt(t.e[i - 1].dev_id, t.e[i].dev_id);
	cr_assert_not_null(thin_names_find(&t, 16));
	cr_assert_null(thin_names_find(&t, 17));
	cr_assert_eq(thin_names_remove(&t, 16), 0);
	cr_assert_eq(thin_names_remove(&t, 16), -ENOENT);
	cr_assert_null(thin_names_find(&t, 16));
	struct thin_names_entry bad = { .dev_id = 1u << 24 };
	cr_assert_eq(thin_names_put(&t, &bad), -EINVAL);
	thin_names_release(&t);
}

Test(names, binding_by_tag_fingerprint_or_none)
{
	struct thin_names_table t;
	struct thin_dev devs[2] = { { .dev_id = 1, .has_details = 1 }, { .dev_id = 2, .has_details = 1 } };
	struct thin_dev_list l = { .devs = devs, .nr = 2 };
	uint8_t uuid[16] = { 0 };

	devs[0].details.transaction_id = 7;
	devs[0].details.creation_time = 1;
	thin_names_init(&t);
	memcpy(t.tag, "TM0123456789ABCD", 16);
	t.data_block_size = 128;
	struct thin_names_entry e = { .dev_id = 1, .transaction = 7, .creation_time = 1 };
	struct thin_names_entry p = { .dev_id = 9, .flags = TMN_E_PENDING_CREATE,
				      .transaction = TMN_TRANS_UNKNOWN };
	thin_names_put(&t, &e);
	thin_names_put(&t, &p);
	cr_assert_eq(thin_names_bind(&t, (const uint8_t *)"TM0123456789ABCD", 128, &l), TMN_BOUND_TAG);
	cr_assert_eq(thin_names_bind(&t, uuid, 128, &l), TMN_BOUND_FINGERPRINT);
	cr_assert_eq(thin_names_bind(&t, uuid, 256, &l), TMN_UNBOUND);
	devs[0].details.creation_time = 2;   /* id reused */
	cr_assert_eq(thin_names_bind(&t, uuid, 128, &l), TMN_UNBOUND);
	thin_names_release(&t);
}

Test(pool_tag, generate_format_parse)
{
	uint8_t tag[16], back[16], zero[16] = { 0 };
	char s[THIN_TAG_STR];

	for (int i = 0; i < 100; i++) {
		cr_assert_eq(thin_tag_generate(tag), 0);
		cr_assert(thin_tag_is_valid(tag));
		thin_tag_format(tag, s, sizeof(s));
		cr_assert_eq(strlen(s), 16);
		cr_assert_eq(thin_tag_parse(s, back), 0);
		cr_assert_eq(memcmp(tag, back, 16), 0);
		cr_assert_null(strpbrk(s + 2, "ILOU"));
	}
	thin_tag_format(zero, s, sizeof(s));
	cr_assert_str_eq(s, "");
	cr_assert(thin_tag_is_zero(zero));
	memcpy(tag, "0123456789abcdef", 16);
	cr_assert(!thin_tag_is_valid(tag));
	thin_tag_format(tag, s, sizeof(s));
	cr_assert_str_eq(s, "hex:30313233343536373839616263646566");
	cr_assert_eq(thin_tag_parse("TMshort", back), -EINVAL);
	cr_assert_eq(thin_tag_parse("TM0123456789ABCU", back), -EINVAL);
}

Test(records, parse_fields_escapes_and_errors)
{
	static const char in[] = "# comment\n\n1\tvm-a\n2\tb\\tc\\\\d\\x41\t7\t1\n3\tc\tpending\n"
				 "4\td\t-\t-\tpending\r\n";
	struct thin_records r;
	char msg[128];

	cr_assert_eq(thin_records_parse(in, sizeof(in) - 1, &r, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(r.nr, 4);
	cr_assert_eq(r.r[0].line, 3);
	cr_assert_str_eq(r.r[1].name, "b\tc\\dA");
	cr_assert(r.r[1].has_stamp && r.r[1].transaction == 7 && r.r[1].creation_time == 1);
	cr_assert(r.r[2].pending && !r.r[2].has_stamp);
	cr_assert(r.r[3].pending && !r.r[3].has_stamp);
	thin_records_release(&r);

	static const char *const bad[] = {
		"1\n", "x\ta\n", "16777216\ta\n", "1\ta\tnope\n", "1\ta\t1\n", "1\ta\t1\t-\n",
		"1\ta\\\n", "1\ta\\q\n", "1\ta\\x4\n", "1\ta\t1\t4294967296\n",
		"1\ta\t1\t2\tpending\textra\n", "-1\ta\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(thin_records_parse(bad[i], strlen(bad[i]), &r, msg, sizeof(msg)), -EINVAL,
			     "accepted '%s'", bad[i]);
		cr_assert(strncmp(msg, "line 1: ", 8) == 0, "%s", msg);
	}
}
