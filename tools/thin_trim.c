/* thin_trim: discard unprovisioned data blocks of an inactive pool. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/trim.h"
#include "util/cli.h"

enum { OPT_METADATA_DEV = 256, OPT_DATA_DEV };

static void usage(FILE *f)
{
	fprintf(f, "Usage: thin_trim [options] --metadata-dev {device|file} --data-dev {device|file}\n"
		   "Options:\n"
		   "  {--metadata-dev} {device|file}  the pool's metadata\n"
		   "  {--data-dev} {device|file}      the pool's data device\n"
		   "  {-q|--quiet}\n"
		   "  {-h|--help}\n"
		   "  {-V|--version}\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "metadata-dev", required_argument, NULL, OPT_METADATA_DEV },
		{ "data-dev", required_argument, NULL, OPT_DATA_DEV },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *meta = NULL, *data = NULL;
	struct trim_stats st;
	char msg[512];
	int c, quiet = 0;

	while ((c = getopt_long(argc, argv, "qhV", opts, NULL)) != -1) {
		switch (c) {
		case OPT_METADATA_DEV:
			meta = optarg;
			break;
		case OPT_DATA_DEV:
			data = optarg;
			break;
		case 'q':
			quiet = 1;
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
	if (!meta || !data || optind != argc) {
		fprintf(stderr, "thin_trim: %s\n",
			optind != argc ? "unexpected argument"
				       : "both --metadata-dev and --data-dev are required");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (cli_same_file(meta, data)) {
		fprintf(stderr, "thin_trim: the data device '%s' is the metadata device '%s' (the same "
				"file or device): refusing to discard it\n",
			data, meta);
		return EXIT_FAIL;
	}
	if (thin_trim(meta, data, &st, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "thin_trim: %s\n", msg);
		return EXIT_FAIL;
	}
	if (!quiet)
		fprintf(stderr, "%s %llu free data blocks in %llu runs (pool of %llu blocks)\n",
			st.punched ? "punched holes for" : "discarded",
			(unsigned long long)st.free_blocks, (unsigned long long)st.runs,
			(unsigned long long)st.nr_data_blocks);
	return EXIT_OK;
}
