/* thin_delta: print the differences between the mappings of two thin devices. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/delta.h"
#include "util/cli.h"
#include "util/parse.h"

enum { OPT_THIN1 = 256, OPT_THIN2, OPT_ROOT1, OPT_ROOT2, OPT_VERBOSE };

static void usage(FILE *f)
{
	fprintf(f, "Usage: thin_delta [options] <device or file>\n"
		   "Options:\n"
		   "  {--thin1, --snap1} <dev_id>\n"
		   "  {--thin2, --snap2} <dev_id>\n"
		   "  {--root1} <block#>\n"
		   "  {--root2} <block#>\n"
		   "  {-m, --metadata-snap} [block#]\n"
		   "  {--verbose}\n"
		   "  {-h|--help}\n"
		   "  {-V|--version}\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	if (fmt) {
		fprintf(stderr, fmt, arg);
		fputc('\n', stderr);
	}
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "metadata-snap", optional_argument, NULL, 'm' },
		{ "thin1", required_argument, NULL, OPT_THIN1 },
		{ "snap1", required_argument, NULL, OPT_THIN1 },
		{ "thin2", required_argument, NULL, OPT_THIN2 },
		{ "snap2", required_argument, NULL, OPT_THIN2 },
		{ "root1", required_argument, NULL, OPT_ROOT1 },
		{ "root2", required_argument, NULL, OPT_ROOT2 },
		{ "verbose", no_argument, NULL, OPT_VERBOSE },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_delta_opts o = { 0 };
	char msg[512];
	int c, i;

	while ((c = getopt_long(argc, argv, "hVm::", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("%s\n", THINMETA_VERSION);
			return EXIT_OK;
		case 'm':
			o.use_snap = 1;
			if (optarg && parse_u64(optarg + (*optarg == '='), &o.snap_block) < 0)
				return usage_error("Couldn't parse metadata snapshot block: '%s'",
						   optarg);
			break;
		case OPT_THIN1:
		case OPT_THIN2:
			i = c - OPT_THIN1;
			if (parse_u64(optarg, &o.dev[i]) < 0) {
				fprintf(stderr, "Couldn't parse thin id %d: '%s'\n", i + 1, optarg);
				return usage_error(NULL, NULL);
			}
			o.have_dev[i] = 1;
			break;
		case OPT_ROOT1:
		case OPT_ROOT2:
			i = c - OPT_ROOT1;
			if (parse_u64(optarg, &o.root[i]) < 0) {
				fprintf(stderr, "Couldn't parse root block %d: '%s'\n", i + 1, optarg);
				return usage_error(NULL, NULL);
			}
			o.have_root[i] = 1;
			break;
		case OPT_VERBOSE:
			o.verbose = 1;
			break;
		default:
			return usage_error(NULL, NULL);
		}
	}
	if (optind >= argc)
		return usage_error("No input device provided.", NULL);
	if (optind + 1 < argc)
		return usage_error("Too many arguments: '%s'", argv[optind + 1]);
	for (i = 0; i < 2; i++) {
		if (!o.have_dev[i] && !o.have_root[i])
			return usage_error(i ? "--snap2 not specified." : "--snap1 not specified.",
					   NULL);
		if (o.have_dev[i] && o.have_root[i])
			return usage_error(i ? "--snap2 and --root2 are exclusive."
					     : "--snap1 and --root1 are exclusive.", NULL);
	}
	o.path = argv[optind];
	if (thin_delta(&o, stdout, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "%s\n", msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
