/* thin_metadata_pack: compress the used blocks of pool metadata into a pack file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/pack.h"
#include "util/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: thin_metadata_pack [options] -i {device|file} -o {pack file}\n"
		   "Options:\n"
		   "  {-h|--help}\n"
		   "  {-i|--input} <metadata device or file>\n"
		   "  {-o|--output} <pack file>\n"
		   "  {-f|--force}   (accepted for compatibility)\n"
		   "  {-q|--quiet}\n"
		   "  {-V|--version}\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },   { "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' }, { "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },  { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *in = NULL, *out = NULL;
	struct pack_stats st;
	char msg[512];
	int c, quiet = 0;

	while ((c = getopt_long(argc, argv, "hi:o:fqV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'i':
			in = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'f':
			break;
		case 'q':
			quiet = 1;
			break;
		case 'V':
			puts(THINMETA_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!in || !out || optind != argc) {
		fprintf(stderr, "thin_metadata_pack: %s\n",
			optind != argc ? "unexpected argument" : "both -i and -o are required");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (thin_pack(in, out, &st, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "thin_metadata_pack: %s\n", msg);
		return EXIT_FAIL;
	}
	if (st.scanned)
		fprintf(stderr, "thin_metadata_pack: warning: the metadata space map is unusable; "
				"packed every non-zero block\n");
	if (!quiet)
		fprintf(stderr, "packed %llu of %llu blocks into %llu bytes\n",
			(unsigned long long)st.nr_records, (unsigned long long)st.nr_blocks,
			(unsigned long long)st.bytes_out);
	return EXIT_OK;
}
