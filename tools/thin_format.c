/* thin_format: write fresh, empty pool metadata (see man/thin_format.8). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/format.h"
#include "cmd/metadata_size.h"
#include "thin/pool_tag.h"
#include "util/cli.h"

enum {
	OPT_DATA_BLOCK_SIZE = 256,
	OPT_NR_DATA_BLOCKS,
	OPT_DATA_SIZE,
	OPT_TRANSACTION_ID,
	OPT_TAG,
};

static void usage(FILE *f)
{
	fputs("Usage: thin_format [options] {device|file}\n"
	      "Options:\n"
	      "  {-o|--output} <output device or file>\n"
	      "  {--data-block-size} <sectors>[bskmg]\n"
	      "  {--nr-data-blocks} <natural>\n"
	      "  {--data-size} <size>[bskmgtp]\n"
	      "  {--transaction-id} <natural>\n"
	      "  {--tag}[=TM...]      write a pool tag (an existing one is always kept)\n"
	      "  {-f|--force}\n"
	      "  {-q|--quiet}\n"
	      "  {-h|--help}\n"
	      "  {-V|--version}\n",
	      f);
}

static int usage_error(const char *msg)
{
	fprintf(stderr, "thin_format: %s\n", msg);
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "data-block-size", required_argument, NULL, OPT_DATA_BLOCK_SIZE },
		{ "nr-data-blocks", required_argument, NULL, OPT_NR_DATA_BLOCKS },
		{ "data-size", required_argument, NULL, OPT_DATA_SIZE },
		{ "transaction-id", required_argument, NULL, OPT_TRANSACTION_ID },
		{ "tag", optional_argument, NULL, OPT_TAG },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_format_opts o = { .data_block_size = 128 };
	const char *output = NULL;
	int have_nr = 0, have_size = 0, want_tag = 0, c, r;
	uint64_t v, data_bytes = 0;
	char err[512];

	while ((c = getopt_long(argc, argv, "o:fqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case OPT_DATA_BLOCK_SIZE:
			if (thin_parse_size(optarg, "bskmg", 512, &v) < 0 || v % 512 ||
			    v / 512 > UINT32_MAX)
				return usage_error("bad --data-block-size");
			o.data_block_size = (uint32_t)(v / 512);
			break;
		case OPT_NR_DATA_BLOCKS:
			if (thin_parse_size(optarg, "", 1, &o.nr_data_blocks) < 0)
				return usage_error("bad --nr-data-blocks");
			have_nr = 1;
			break;
		case OPT_DATA_SIZE:
			if (thin_parse_size(optarg, "bskmgtp", 512, &data_bytes) < 0)
				return usage_error("bad --data-size");
			have_size = 1;
			break;
		case OPT_TRANSACTION_ID:
			if (thin_parse_size(optarg, "", 1, &o.trans_id) < 0)
				return usage_error("bad --transaction-id");
			break;
		case OPT_TAG:
			want_tag = 1;
			if (optarg && thin_tag_parse(optarg, o.tag) < 0)
				return usage_error("bad --tag (TM and 14 of 0-9A-HJKMNP-TV-Z)");
			o.have_tag = !!optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'q':
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
	if (!output && optind < argc)
		output = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument");
	if (!output)
		return usage_error("No output file provided.");
	if (have_nr == have_size)
		return usage_error("give exactly one of --nr-data-blocks and --data-size");
	if (have_size)
		o.nr_data_blocks = data_bytes / ((uint64_t)o.data_block_size * 512);
	/* keep the tag of the pool being reformatted (NAMES.md §7.4) */
	if (!o.have_tag && thin_tag_existing(output, o.tag))
		o.have_tag = 1;
	if (want_tag && !o.have_tag) {
		if (thin_tag_generate(o.tag) < 0)
			return fprintf(stderr, "getrandom failed\n"), EXIT_FAIL;
		o.have_tag = 1;
	}
	r = thin_format_path(output, &o, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
