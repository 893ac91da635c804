/* thin_check: validate dm-thin pool metadata (see man/thin_check.8). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/check.h"
#include "util/progress.h"

#include "util/parse.h"
#include "util/cli.h"
#include "util/report.h"

enum {
	OPT_SUPER_BLOCK_ONLY = 256,
	OPT_SKIP_MAPPINGS,
	OPT_IGNORE_NON_FATAL,
	OPT_AUTO_REPAIR,
	OPT_CLEAR_NEEDS_CHECK,
	OPT_OVERRIDE_MAPPING_ROOT,
	OPT_OVERRIDE_DETAILS_ROOT,
};

static void usage(FILE *f)
{
	fputs("Usage: thin_check [options] {device|file}\n"
	      "Options:\n"
	      "  {-q|--quiet}\n"
	      "  {-h|--help}\n"
	      "  {-V|--version}\n"
	      "  {-m|--metadata-snap}\n"
	      "  {--auto-repair}\n"
	      "  {--override-mapping-root <block>}\n"
	      "  {--override-details-root <block>}\n"
	      "  {--clear-needs-check-flag}\n"
	      "  {--ignore-non-fatal-errors}\n"
	      "  {--skip-mappings}\n"
	      "  {--super-block-only}\n",
	      f);
}

static int usage_error(const char *fmt, const char *arg)
{
	fputs("thin_check: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	return EXIT_USAGE;
}

/*
 * getopt's '?': an unknown option, or a value given to a long option that
 * takes none ("--metadata-snap=5").  A long option's error leaves optind
 * just past it, so arg (argv[optind - 1]) is that option when it starts
 * with "--" and optopt is not a valid short option met in a later bundle.
 */
static int bad_option(const char *arg, const struct option *longopts)
{
	char o[3] = { '-', (char)optopt, 0 };
	const char *eq = strchr(arg, '=');
	size_t n;

	if (strncmp(arg, "--", 2))
		return usage_error("unrecognised option '%s'", o);
	if (!optopt)
		return usage_error("unrecognised option '%s'", arg); /* unknown or ambiguous */
	n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
	for (const struct option *l = longopts; l->name && eq; l++)
		if (l->val == optopt && l->has_arg == no_argument && !strncmp(l->name, arg + 2, n)) {
			fprintf(stderr, "thin_check: option '--%s' takes no value ('%s')\n", l->name,
				arg);
			usage(stderr);
			return EXIT_USAGE;
		}
	if (optopt >= 256)
		return usage_error("unrecognised option '%s'", arg);
	return usage_error("unrecognised option '%s'", o); /* a short option after arg */
}


struct info_ctx {
	int quiet;
	struct progress *pg;
	uint64_t dev_blocks;
};

static void print_info(void *ctx, const struct thin_check_result *res)
{
	struct info_ctx *ic = ctx;

	if (ic->pg && ic->dev_blocks > res->metadata_free_blocks)
		progress_set(ic->pg, NULL, ic->dev_blocks - res->metadata_free_blocks);
	if (ic->quiet)
		return;
	/* stderr first, so that the lines interleave as the reference prints them */
	fflush(stderr);
	printf("TRANSACTION_ID=%" PRIu64 "\n", res->transaction_id);
	printf("METADATA_FREE_BLOCKS=%" PRIu64 "\n", res->metadata_free_blocks);
	fflush(stdout);
}

/* Option combinations refused with a usage error (REFERENCE.md §1.4). */
static const char *conflict(unsigned f)
{
	unsigned fix = f & (THIN_CHECK_AUTO_REPAIR | THIN_CHECK_CLEAR_NEEDS_CHECK);
	unsigned over = THIN_CHECK_OVERRIDE_MAPPING_ROOT | THIN_CHECK_OVERRIDE_DETAILS_ROOT;

	if ((f & THIN_CHECK_SUPER_BLOCK_ONLY) && (f & THIN_CHECK_SKIP_MAPPINGS))
		return "--super-block-only and --skip-mappings cannot be combined";
	if (fix && (f & THIN_CHECK_METADATA_SNAP))
		return "cannot perform repair on a metadata snapshot (-m)";
	if (fix && (f & over))
		return "cannot perform repair with an overridden root";
	if ((f & THIN_CHECK_AUTO_REPAIR) &&
	    (f & (THIN_CHECK_IGNORE_NON_FATAL | THIN_CHECK_SUPER_BLOCK_ONLY |
		  THIN_CHECK_SKIP_MAPPINGS)))
		return "--auto-repair cannot be combined with --ignore-non-fatal-errors, "
		       "--super-block-only or --skip-mappings";
	if ((f & THIN_CHECK_METADATA_SNAP) && (f & over))
		return "-m cannot be combined with an overridden root";
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "metadata-snap", no_argument, NULL, 'm' },
		{ "super-block-only", no_argument, NULL, OPT_SUPER_BLOCK_ONLY },
		{ "skip-mappings", no_argument, NULL, OPT_SKIP_MAPPINGS },
		{ "ignore-non-fatal-errors", no_argument, NULL, OPT_IGNORE_NON_FATAL },
		{ "auto-repair", no_argument, NULL, OPT_AUTO_REPAIR },
		{ "clear-needs-check-flag", no_argument, NULL, OPT_CLEAR_NEEDS_CHECK },
		{ "override-mapping-root", required_argument, NULL, OPT_OVERRIDE_MAPPING_ROOT },
		{ "override-details-root", required_argument, NULL, OPT_OVERRIDE_DETAILS_ROOT },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_check_opts opts = { 0 };
	struct thin_check_result res;
	struct report *rep;
	const char *why, *input = NULL;
	char msg[512];
	struct info_ctx ic = { 0 };
	int quiet = 0, c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qhVm", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			puts(THINMETA_VERSION);
			return EXIT_OK;
		case 'm':
			opts.flags |= THIN_CHECK_METADATA_SNAP;
			break;
		case OPT_SUPER_BLOCK_ONLY:
			opts.flags |= THIN_CHECK_SUPER_BLOCK_ONLY;
			break;
		case OPT_SKIP_MAPPINGS:
			opts.flags |= THIN_CHECK_SKIP_MAPPINGS;
			break;
		case OPT_IGNORE_NON_FATAL:
			opts.flags |= THIN_CHECK_IGNORE_NON_FATAL;
			break;
		case OPT_AUTO_REPAIR:
			opts.flags |= THIN_CHECK_AUTO_REPAIR;
			break;
		case OPT_CLEAR_NEEDS_CHECK:
			opts.flags |= THIN_CHECK_CLEAR_NEEDS_CHECK;
			break;
		case OPT_OVERRIDE_MAPPING_ROOT:
			if (parse_u64(optarg, &opts.override_mapping_root) < 0)
				return usage_error("bad block number '%s'", optarg);
			opts.flags |= THIN_CHECK_OVERRIDE_MAPPING_ROOT;
			break;
		case OPT_OVERRIDE_DETAILS_ROOT:
			if (parse_u64(optarg, &opts.override_details_root) < 0)
				return usage_error("bad block number '%s'", optarg);
			opts.flags |= THIN_CHECK_OVERRIDE_DETAILS_ROOT;
			break;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			return bad_option(argv[optind - 1], longopts);
		}
	}
	/*
	 * lvm2 2.03.16 passes an empty thin_check_options entry as an empty
	 * argument: skip those, or lvm would read the usage error's exit 2 as
	 * "binary missing" and activate the pool unchecked.
	 */
	for (int i = optind; i < argc; i++)
		if (argv[i][0]) {
			if (!input)
				input = argv[i];
			else
				return usage_error("too many arguments ('%s')", argv[i]);
		}
	if (!input)
		return usage_error("%s", "No input file provided.");
	why = conflict(opts.flags);
	if (why)
		return usage_error("%s", why);

	rep = rep_create(stderr, quiet);
	if (!rep) {
		fputs("thin_check: out of memory\n", stderr);
		return EXIT_FAIL;
	}
	ic.quiet = quiet;
	if (progress_wanted(2, quiet)) {
		ic.dev_blocks = progress_path_blocks(input);
		ic.pg = progress_start(2, "thin_check", "checking metadata");
	}
	opts.on_superblock = print_info;
	opts.ctx = &ic;
	r = thin_check(input, &opts, rep, &res, msg, sizeof(msg));
	progress_stop(ic.pg);
	if (r < 0) {
		if (!quiet)
			fprintf(stderr, "%s\n", msg);
		rep_destroy(rep);
		return EXIT_FAIL;
	}
	r = thin_check_passed(&opts, &res) ? EXIT_OK : EXIT_FAIL;
	rep_destroy(rep);
	return r;
}
