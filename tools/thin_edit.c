/* thin_edit: the kernel's pool messages applied offline (see man/thin_edit.8). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/edit.h"
#include "util/cli.h"

enum { OPT_DRY_RUN = 256 };

static void usage(FILE *f)
{
	fputs("Usage: thin_edit [options] {device|file} MESSAGE [MESSAGE...]\n"
	      "Options:\n"
	      "  {-h|--help}\n"
	      "  {-V|--version}\n"
	      "  {-q|--quiet}\n"
	      "  {-v|--verbose}\n"
	      "  {-n|--dry-run}\n"
	      "Messages (one transaction, in order):\n"
	      "  create_thin ID, create_snap ID ORIGIN_ID, delete ID,\n"
	      "  set_transaction_id OLD NEW, reserve_metadata_snap, release_metadata_snap,\n"
	      "  set_needs_check, clear_needs_check, rename ID NEW_ID,\n"
	      "  grow_metadata [NR_BLOCKS], grow_data NR_BLOCKS\n",
	      f);
}

static int usage_error(const char *what)
{
	fprintf(stderr, "thin_edit: %s\n", what);
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_edit_opts o = { 0 };
	char msg[512];
	int c, quiet = 0;

	/* "+": options end at the metadata path; messages are never options */
	while ((c = getopt_long(argc, argv, "+hVqvn", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			puts(THINMETA_VERSION);
			return EXIT_OK;
		case 'q':
			quiet = 1;
			break;
		case 'v':
			o.verbose = 1;
			break;
		case 'n':
			o.dry_run = 1;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("No input file provided.");
	o.path = argv[optind++];
	if (optind >= argc)
		return usage_error("no message given");
	o.words = (const char *const *)argv + optind;
	o.nr_words = (size_t)(argc - optind);
	if (quiet)
		o.verbose = 0;
	if (thin_edit(&o, quiet ? NULL : stdout, msg, sizeof(msg)) < 0) {
		if (!quiet)
			fprintf(stderr, "thin_edit: %s\n", msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
