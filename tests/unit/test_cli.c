#include <criterion/criterion.h>
#include <stdint.h>

#include "util/cli.h"

Test(cli, parse_u64_accepts_plain_decimal_only)
{
	uint64_t v = 7;

	cr_assert_eq(cli_parse_u64("0", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(cli_parse_u64("18446744073709551615", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	v = 7;
	cr_assert_lt(cli_parse_u64("18446744073709551616", &v), 0, "overflow");
	cr_assert_lt(cli_parse_u64("", &v), 0);
	cr_assert_lt(cli_parse_u64("-1", &v), 0);
	cr_assert_lt(cli_parse_u64("+1", &v), 0);
	cr_assert_lt(cli_parse_u64(" 1", &v), 0);
	cr_assert_lt(cli_parse_u64("1k", &v), 0);
	cr_assert_lt(cli_parse_u64("0x10", &v), 0);
	cr_assert_eq(v, 7, "failures leave the output alone");
}
