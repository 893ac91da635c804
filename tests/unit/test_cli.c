#include <criterion/criterion.h>
#include <stdint.h>

#include "util/cli.h"

/* cli_same_file: one inode through any spelling; different files differ */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[64];

static const char *in_dir(const char *name)
{
	static char paths[4][PATH_MAX];
	static int next;
	char *p = paths[next++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", dir, name);
	return p;
}

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/thinmeta-cli.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	FILE *f = fopen(in_dir("a"), "w");
	cr_assert_not_null(f);
	fputs("a", f);
	fclose(f);
	f = fopen(in_dir("b"), "w");
	cr_assert_not_null(f);
	fputs("a", f);
	fclose(f);
	cr_assert_eq(symlink(in_dir("a"), in_dir("sym")), 0);
	cr_assert_eq(symlink(in_dir("sym"), in_dir("sym2")), 0);
	cr_assert_eq(link(in_dir("a"), in_dir("hard")), 0);
}

static void remove_dir(void)
{
	const char *names[] = { "a", "b", "sym", "sym2", "hard" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(in_dir(names[i]));
	rmdir(dir);
}

Test(cli, same_file_follows_links_and_spellings, .init = make_dir, .fini = remove_dir)
{
	char dotted[PATH_MAX];

	snprintf(dotted, sizeof(dotted), "%s/./a", dir);
	cr_assert_eq(cli_same_file(in_dir("a"), in_dir("a")), CLI_SAME);
	cr_assert_eq(cli_same_file(in_dir("a"), dotted), CLI_SAME);
	cr_assert_eq(cli_same_file(in_dir("a"), in_dir("sym")), CLI_SAME);
	cr_assert_eq(cli_same_file(in_dir("sym2"), in_dir("a")), CLI_SAME, "a chain of symlinks");
	cr_assert_eq(cli_same_file(in_dir("hard"), in_dir("sym")), CLI_SAME, "hard and soft link");
}

Test(cli, same_file_tells_different_and_missing_files_apart, .init = make_dir, .fini = remove_dir)
{
	cr_assert_eq(cli_same_file(in_dir("a"), in_dir("b")), 0, "same content, other file");
	cr_assert_eq(cli_same_file(in_dir("a"), in_dir("missing")), 0);
	cr_assert_eq(cli_same_file(in_dir("missing"), in_dir("missing")), 0,
		     "nothing to clobber: the tool reports the missing input itself");
	cr_assert_eq(cli_same_file("/dev/null", "/dev/zero"), 0, "two devices");
	cr_assert_eq(cli_same_file("/dev/null", "/dev/null"), CLI_SAME);
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
