#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

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
