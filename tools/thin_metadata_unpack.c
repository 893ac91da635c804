/* thin_metadata_unpack: expand a pack file (1.x's v3 format, or ours of version 1). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/pack.h"
#include "util/cli.h"
#include "util/parse.h"

enum { OPT_ALLOW_MISSING = 256 };

static void usage(FILE *f)
{
	fprintf(f, "Usage: thin_metadata_unpack [options] -i {pack file} -o {device|file}\n"
		   "Options:\n"
		   "  {-h|--help}\n"
		   "  {-i|--input} <pack file>\n"
		   "  {-o|--output} <metadata device or file>\n"
		   "  {-f|--force}   overwrite an output that holds metadata or other data\n"
		   "  {--allow-missing}  write a pack that lacks blocks its metadata uses\n"
		   "  {-q|--quiet}\n"
		   "  {-V|--version}\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },   { "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' }, { "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },  { "version", no_argument, NULL, 'V' },
		{ "allow-missing", no_argument, NULL, OPT_ALLOW_MISSING },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_unpack_opts o = { 0 };
	struct pack_stats st;
	const char *wait = getenv("THINMETA_FIFO_WAIT_MS");   /* tests */
	uint64_t n;
	char msg[768];
	int c, quiet = 0;

	while ((c = getopt_long(argc, argv, "hi:o:fqV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'i':
			o.input = optarg;
			break;
		case 'o':
			o.output = optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case OPT_ALLOW_MISSING:
			o.allow_missing = 1;
			break;
		case 'V':
			puts(THINMETA_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!o.input || !o.output || optind != argc) {
		fprintf(stderr, "thin_metadata_unpack: %s\n",
			optind != argc ? "unexpected argument" : "both -i and -o are required");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (wait && parse_u64(wait, &n) == 0 && n && n < 3600000)
		o.fifo_wait_ms = (int)n;
	if (thin_unpack(&o, &st, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "thin_metadata_unpack: %s\n", msg);
		return EXIT_FAIL;
	}
	if (st.note[0])
		fprintf(stderr, "thin_metadata_unpack: warning: %s\n", st.note);
	if (!quiet)
		fprintf(stderr, "unpacked %llu blocks (pack version %u) into a %llu-block device%s\n",
			(unsigned long long)st.nr_records, st.version,
			(unsigned long long)st.nr_blocks,
			st.invalidated ? "; the old superblock was invalidated first" : "");
	return EXIT_OK;
}
