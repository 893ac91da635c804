/* thin_ls: list the thin devices of a pool with their data usage. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thin/ls.h"
#include "util/cli.h"

enum { OPT_NO_HEADERS = 256, OPT_JSON };

static void usage(FILE *f)
{
	fprintf(f, "Usage: thin_ls [options] {metadata device}\n"
		   "Options:\n"
		   "  {-h|--help}\n"
		   "  {-m|--metadata-snap}[=block#]\n"
		   "  {--no-headers}\n"
		   "  {--json}\n"
		   "  {-o|--format <fields>}\n"
		   "  {-V|--version}\n"
		   "\n"
		   "where <fields> is a comma separated list from:\n");
	for (int i = 0; i < TLF_NR; i++)
		fprintf(f, "  %s\n", thin_ls_field_name((enum thin_ls_field)i));
}

static int usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, "thin_ls: %s\n", msg);
	usage(stderr);
	return EXIT_USAGE;
}

static int parse_block(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno || *end) ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "metadata-snap", optional_argument, NULL, 'm' },
		{ "format", required_argument, NULL, 'o' },
		{ "no-headers", no_argument, NULL, OPT_NO_HEADERS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ NULL, 0, NULL, 0 },
	};
	enum thin_ls_field fields[4 * TLF_NR];
	struct thin_ls_opts o = { 0 };
	char msg[512];
	int c;

	fields[0] = TLF_DEV;
	fields[1] = TLF_MAPPED;
	fields[2] = TLF_CREATE_TIME;
	fields[3] = TLF_SNAP_TIME;
	o.fields = fields;
	o.nr_fields = 4;
	while ((c = getopt_long(argc, argv, "hVm::o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("%s\n", THINMETA_VERSION);
			return EXIT_OK;
		case 'm':
			o.use_snap = 1;
			if (optarg && parse_block(optarg[0] == '=' ? optarg + 1 : optarg,
						  &o.snap_block) < 0)
				return usage_error("bad metadata snapshot block number");
			break;
		case 'o':
			if (thin_ls_parse_fields(optarg, fields, sizeof(fields) / sizeof(fields[0]),
						 &o.nr_fields, msg, sizeof(msg)) < 0) {
				fprintf(stderr, "thin_ls: %s (see --help for the fields)\n", msg);
				return EXIT_USAGE;
			}
			break;
		case OPT_NO_HEADERS:
			o.no_headers = 1;
			break;
		case OPT_JSON:
			o.json = 1;
			break;
		default:
			return usage_error(NULL);
		}
	}
	if (optind >= argc)
		return usage_error("No input file provided.");
	if (optind + 1 < argc)
		return usage_error("too many arguments");
	o.path = argv[optind];
	if (thin_ls(&o, stdout, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "%s\n", msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
