#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "util/cli.h"
#include "util/parse.h"

Test(parse, parse_u64_accepts_plain_decimal_only)
{
	uint64_t v = 7;

	cr_assert_eq(parse_u64("0", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(parse_u64("18446744073709551615", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	v = 7;
	cr_assert_lt(parse_u64("18446744073709551616", &v), 0, "overflow");
	cr_assert_lt(parse_u64("", &v), 0);
	cr_assert_lt(parse_u64("-1", &v), 0);
	cr_assert_lt(parse_u64("+1", &v), 0);
	cr_assert_lt(parse_u64(" 1", &v), 0);
	cr_assert_lt(parse_u64("1k", &v), 0);
	cr_assert_lt(parse_u64("0x10", &v), 0);
	cr_assert_eq(v, 7, "failures leave the output alone");
}

Test(parse, counted_and_digit_runs)
{
	uint64_t v = 7;
	const char s[] = "123\"x";

	cr_assert_eq(parse_u64_n("4096", 4, &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(parse_u64_n("40x6", 4, &v), -EINVAL);
	cr_assert_eq(parse_u64_n("", 0, &v), -EINVAL);
	cr_assert_eq(parse_u64_n("12", 1, &v), 0, "only len bytes are read");
	cr_assert_eq(v, 1);
	cr_assert_eq(parse_digits(s, s + sizeof(s) - 1, &v), s + 3);
	cr_assert_eq(v, 123);
	cr_assert_null(parse_digits(s + 3, s + sizeof(s) - 1, &v), "no digit");
	cr_assert_null(parse_digits("99999999999999999999", "99999999999999999999" + 20, &v));
	cr_assert_eq(parse_xdigit('f'), 15);
	cr_assert_eq(parse_xdigit('A'), 10);
	cr_assert_eq(parse_xdigit('g'), -1);
}

/* parse_digits() decodes up to 8 digits at once where 8 bytes can be read */
Test(parse, digit_runs_in_long_buffers)
{
	static const struct {
		const char *s;
		long long len;   /* of the run, or -1: NULL */
		uint64_t v;
	} c[] = {
		{ "1\"/>     ", 1, 1 },
		{ "1234567\" ", 7, 1234567 },
		{ "12345678\"", 8, 12345678 },
		{ "123456789\"/>", 9, 123456789 },
		{ "9999999:99", 7, 9999999 },
		{ "0000000/00", 7, 0 },
		{ "99999999", 8, 99999999 },
		{ "x1234567", -1, 0 },
		{ "\xff" "1234567", -1, 0 },
		{ "12\xfa" "45678", 2, 12 },
		{ "0000000000000000000000000000001\"", 31, 1 },
		{ "18446744073709551615\"/>", 20, UINT64_MAX },
		{ "18446744073709551616\"/>", -1, 0 },
		{ "0018446744073709551615\"", 22, UINT64_MAX },
		{ "184467440737095516150\"", -1, 0 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		const char *s = c[i].s, *end = s + strlen(s);
		uint64_t v = 7;
		const char *e = parse_digits(s, end, &v);

		if (c[i].len < 0) {
			cr_assert_null(e, "'%s'", s);
			cr_assert_eq(v, 7, "'%s': output left alone", s);
		} else {
			cr_assert_eq(e, s + c[i].len, "'%s'", s);
			cr_assert_eq(v, c[i].v, "'%s'", s);
		}
	}
}
