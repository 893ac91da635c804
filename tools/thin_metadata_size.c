/* thin_metadata_size: estimate the metadata device size (see man/thin_metadata_size.8). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/metadata_size.h"
#include "util/cli.h"

static void usage(FILE *f)
{
	fputs("Usage: thin_metadata_size [options]\n"
	      "Options:\n"
	      "  {-b|--block-size} <block size>[bskmg]\n"
	      "  {-s|--pool-size} <pool size>[bskmgtp]\n"
	      "  {-m|--max-thins} <count>\n"
	      "  {-u|--unit} {bskKmMgGtTpPeE}\n"
	      "  {-n|--numeric-only[=short|long]}\n"
	      "  {-h|--help}\n"
	      "  {-V|--version}\n",
	      f);
}

static int usage_error(const char *msg, const char *arg)
{
	fputs("thin_metadata_size: ", stderr);
	fprintf(stderr, msg, arg);
	fputc('\n', stderr);
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "block-size", required_argument, NULL, 'b' },
		{ "pool-size", required_argument, NULL, 's' },
		{ "max-thins", required_argument, NULL, 'm' },
		{ "unit", required_argument, NULL, 'u' },
		{ "numeric-only", optional_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct thin_unit *unit = thin_unit_find("s");
	enum thin_size_format fmt = THIN_SIZE_FULL;
	const char *bs = NULL, *ps = NULL, *mt = NULL;
	uint64_t block, pool, thins, blocks;
	char err[256], out[128];
	int c;

	while ((c = getopt_long(argc, argv, "b:s:m:u:n::hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			bs = optarg;
			break;
		case 's':
			ps = optarg;
			break;
		case 'm':
			mt = optarg;
			break;
		case 'u':
			unit = thin_unit_find(optarg);
			if (!unit)
				return usage_error("unknown unit '%s'", optarg);
			break;
		case 'n':
			if (!optarg) {
				fmt = THIN_SIZE_NUMERIC;
				break;
			}
			if (*optarg == '=')
				optarg++;
			if (!strcmp(optarg, "short"))
				fmt = THIN_SIZE_SHORT;
			else if (!strcmp(optarg, "long"))
				fmt = THIN_SIZE_LONG;
			else
				return usage_error("invalid numeric-only option '%s' (short or long)",
						   optarg);
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			puts(THINMETA_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!bs)
		return usage_error("%sblock size required", "");
	if (!ps)
		return usage_error("%spool size required", "");
	if (!mt)
		return usage_error("%smax thins required", "");
	if (thin_parse_size(bs, "bskmg", 512, &block) < 0) {
		fprintf(stderr, "thin_metadata_size: invalid block size '%s'\n", bs);
		return EXIT_FAIL;
	}
	if (thin_parse_size(ps, "bskmgtp", 512, &pool) < 0) {
		fprintf(stderr, "thin_metadata_size: invalid pool size '%s'\n", ps);
		return EXIT_FAIL;
	}
	if (thin_parse_size(mt, "", 1, &thins) < 0) {
		fprintf(stderr, "thin_metadata_size: invalid max thins '%s'\n", mt);
		return EXIT_FAIL;
	}
	if (thin_metadata_size_check(block, pool, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_FAIL;
	}
	blocks = thin_metadata_size_blocks(block, pool, thins);
	thin_size_print(out, sizeof(out), blocks * 4096, unit, fmt);
	puts(out);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "thin_metadata_size: writing the result: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
