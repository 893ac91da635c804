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

Test(cli, shell_quote_leaves_plain_words_and_quotes_the_rest)
{
	char b[64];

	cr_assert_eq(cli_shell_quote("/dev/mapper/vg-pool_tmeta", b, sizeof(b)), 25);
	cr_assert_str_eq(b, "/dev/mapper/vg-pool_tmeta");
	cli_shell_quote("my file", b, sizeof(b));
	cr_assert_str_eq(b, "'my file'");
	cli_shell_quote("it's", b, sizeof(b));
	cr_assert_str_eq(b, "'it'\\''s'");
	cli_shell_quote("", b, sizeof(b));
	cr_assert_str_eq(b, "''");
	cr_assert_eq(cli_shell_quote("a b", b, 3), 5, "full length when truncated");
	cr_assert_str_eq(b, "'a");
}
