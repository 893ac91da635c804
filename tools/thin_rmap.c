/* thin_rmap: map ranges of data blocks back to thin devices and their blocks. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/rmap.h"

#include "util/parse.h"
#include "util/cli.h"

enum { OPT_REGION = 256, OPT_ALL_DEVICES };

static void usage(FILE *f)
{
	fprintf(f, "Usage: thin_rmap [options] {device|file}\n"
		   "Options:\n"
		   "  {-h|--help}\n"
		   "  {-V|--version}\n"
		   "  {-m|--metadata-snap}[=block#]\n"
		   "  {--region <block range>}*\n"
		   "  {--all-devices}\n"
		   "Where:\n"
		   "  <block range> is of the form <begin>..<one-past-the-end>\n"
		   "  for example 5..45 denotes blocks 5 to 44 inclusive, but not block 45\n");
}

static int usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, "%s\n", msg);
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "metadata-snap", optional_argument, NULL, 'm' },
		{ "region", required_argument, NULL, OPT_REGION },
		{ "all-devices", no_argument, NULL, OPT_ALL_DEVICES },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_rmap_opts o = { 0 };
	struct thin_region *regions = NULL;
	size_t nr = 0;
	char msg[512];
	const char *why;
	int c, rc = EXIT_OK;

	while ((c = getopt_long(argc, argv, "hVm::", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			goto out;
		case 'V':
			printf("%s\n", THINMETA_VERSION);
			goto out;
		case 'm': {
			const char *s = optarg && optarg[0] == '=' ? optarg + 1 : optarg;

			o.use_snap = 1;
			if (s) {
				if (parse_u64(s, &o.snap_block) < 0) {
					rc = usage_error("bad metadata snapshot block number");
					goto out;
				}
			}
			break;
		}
		case OPT_REGION: {
			struct thin_region *n = realloc(regions, (nr + 1) * sizeof(*n));

			if (!n) {
				fprintf(stderr, "out of memory\n");
				rc = EXIT_FAIL;
				goto out;
			}
			regions = n;
			if (thin_rmap_parse_region(optarg, &regions[nr], &why) < 0) {
				fprintf(stderr, "badly formed region (%s): '%s'\n", why, optarg);
				rc = EXIT_USAGE;
				goto out;
			}
			nr++;
			break;
		}
		case OPT_ALL_DEVICES:
			o.all_devices = 1;
			break;
		default:
			rc = usage_error(NULL);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = usage_error("No input file provided.");
		goto out;
	}
	if (optind + 1 < argc) {
		rc = usage_error("Too many arguments.");
		goto out;
	}
	if (!nr) {
		rc = usage_error("No regions provided.");
		goto out;
	}
	o.path = argv[optind];
	o.regions = regions;
	o.nr_regions = nr;
	if (thin_rmap(&o, stdout, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "%s\n", msg);
		rc = EXIT_FAIL;
	}
out:
	free(regions);
	return rc;
}
