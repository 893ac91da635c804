/* thin_metadata_pack: the used blocks of pool metadata into a pack file (1.x's v3 format). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/pack.h"
#include "util/cli.h"
#include "util/parse.h"

enum { OPT_SCAN = 256, OPT_THREADS };

static void usage(FILE *f)
{
	fprintf(f, "Usage: thin_metadata_pack [options] -i {device|file} -o {pack file}\n"
		   "Options:\n"
		   "  {-h|--help}\n"
		   "  {-i|--input} <metadata device or file>\n"
		   "  {-o|--output} <pack file>\n"
		   "  {-f|--force}   overwrite an output that holds thin metadata\n"
		   "  {--scan}       pack every block with a valid checksum (as 1.x does)\n"
		   "  {--threads} <n>\n"
		   "  {-q|--quiet}\n"
		   "  {-V|--version}\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },   { "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' }, { "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },  { "version", no_argument, NULL, 'V' },
		{ "scan", no_argument, NULL, OPT_SCAN },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_pack_opts o = { 0 };
	struct pack_stats st;
	const char *wait = getenv("THINMETA_FIFO_WAIT_MS");   /* tests */
	uint64_t n;
	char msg[512];
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
		case OPT_SCAN:
			o.scan = 1;
			break;
		case OPT_THREADS:
			if (parse_u64(optarg, &n) < 0 || !n || n > 64) {
				fprintf(stderr, "thin_metadata_pack: --threads: 1 to 64, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			o.threads = (unsigned)n;
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
		fprintf(stderr, "thin_metadata_pack: %s\n",
			optind != argc ? "unexpected argument" : "both -i and -o are required");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (wait && parse_u64(wait, &n) == 0 && n && n < 3600000)
		o.fifo_wait_ms = (int)n;
	if (thin_pack(&o, &st, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "thin_metadata_pack: %s\n", msg);
		return EXIT_FAIL;
	}
	if (st.note[0])
		fprintf(stderr, "thin_metadata_pack: warning: %s\n", st.note);
	if (!quiet)
		fprintf(stderr, "packed %llu of %llu blocks into %llu bytes\n",
			(unsigned long long)st.nr_records, (unsigned long long)st.nr_blocks,
			(unsigned long long)st.bytes_out);
	return EXIT_OK;
}
