/* thin_repair: damaged pool metadata -> repaired metadata on another device. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/progress.h"
#include <sys/stat.h>

#include "thin/metadata.h"
#include "thin/pool_tag.h"
#include "repair/repair.h"
#include "cmd/restore.h"
#include "util/cli.h"
#include "util/parse.h"

enum {
	OPT_TRANSACTION_ID = 256,
	OPT_DATA_BLOCK_SIZE,
	OPT_NR_DATA_BLOCKS,
	OPT_FORCE_SCAN,
	OPT_OVERRIDE_MAPPING_ROOT,
	OPT_OVERRIDE_DETAILS_ROOT,
};

static void usage(FILE *f)
{
	fputs("Usage: thin_repair [options] {device|file}\n"
	      "Options:\n"
	      "  {-h|--help}\n"
	      "  {-i|--input} <input metadata (binary format)>\n"
	      "  {-o|--output} <output metadata (binary format)>\n"
	      "  {--transaction-id} <natural>\n"
	      "  {--data-block-size} <natural>\n"
	      "  {--nr-data-blocks} <natural>\n"
	      "  {--override-mapping-root} <block>\n"
	      "  {--override-details-root} <block>\n"
	      "  {-q|--quiet}\n"
	      "  {-V|--version}\n",
	      f);
}

static int usage_error(const char *fmt, const char *arg)
{
	fputs("thin_repair: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	return EXIT_USAGE;
}

/* The refused plan's candidates, each with the command line that picks it. */
static void print_candidates(const struct thin_repair *rp, const char *input, const char *output,
			     const struct thin_repair_opts *o)
{
	char in[1024], out[1024];

	cli_shell_quote(input, in, sizeof(in));
	cli_shell_quote(output, out, sizeof(out));
	for (size_t i = 0; i < thin_repair_nr_candidates(rp); i++) {
		const struct thin_repair_candidate *c = thin_repair_candidate(rp, i);

		fprintf(stderr, "candidate %zu: %s\n", i + 1, c->text);
		if (!c->mapping_root)
			continue;
		fprintf(stderr, "  thin_repair -i %s -o %s", in, out);
		if (o->set_transaction_id)
			fprintf(stderr, " --transaction-id %llu", (unsigned long long)o->transaction_id);
		if (o->set_data_block_size)
			fprintf(stderr, " --data-block-size %u", o->data_block_size);
		if (o->set_nr_data_blocks)
			fprintf(stderr, " --nr-data-blocks %llu", (unsigned long long)o->nr_data_blocks);
		fprintf(stderr, " --override-mapping-root %llu", (unsigned long long)c->mapping_root);
		if (c->details_root)
			fprintf(stderr, " --override-details-root %llu",
				(unsigned long long)c->details_root);
		fputc('\n', stderr);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "transaction-id", required_argument, NULL, OPT_TRANSACTION_ID },
		{ "data-block-size", required_argument, NULL, OPT_DATA_BLOCK_SIZE },
		{ "nr-data-blocks", required_argument, NULL, OPT_NR_DATA_BLOCKS },
		{ "override-mapping-root", required_argument, NULL, OPT_OVERRIDE_MAPPING_ROOT },
		{ "override-details-root", required_argument, NULL, OPT_OVERRIDE_DETAILS_ROOT },
		{ "force-scan", no_argument, NULL, OPT_FORCE_SCAN },   /* testing, undocumented */
		{ NULL, 0, NULL, 0 },
	};
	struct thin_repair_opts o;
	struct thin_restore_opts ro;
	struct thin_md *md = NULL;
	struct thin_repair *rp = NULL;
	const char *input = NULL, *output = NULL;
	char msg[THIN_REPAIR_MSG_LEN];
	struct progress *pg = NULL;
	int c, r, quiet = 0;
	uint64_t v;

	memset(&o, 0, sizeof(o));
	memset(&ro, 0, sizeof(ro));
	while ((c = getopt_long(argc, argv, "hVi:o:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			puts(THINMETA_VERSION);
			return EXIT_OK;
		case 'i':
			input = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case OPT_TRANSACTION_ID:
			if (parse_u64(optarg, &o.transaction_id) < 0)
				return usage_error("couldn't parse <transaction-id> '%s'", optarg);
			o.set_transaction_id = 1;
			break;
		case OPT_DATA_BLOCK_SIZE:
			if (parse_u64(optarg, &v) < 0 || v > UINT32_MAX)
				return usage_error("couldn't parse <data-block-size> '%s'", optarg);
			o.set_data_block_size = 1;
			o.data_block_size = (uint32_t)v;
			break;
		case OPT_NR_DATA_BLOCKS:
			if (parse_u64(optarg, &o.nr_data_blocks) < 0)
				return usage_error("couldn't parse <nr-data-blocks> '%s'", optarg);
			o.set_nr_data_blocks = 1;
			break;
		case OPT_OVERRIDE_MAPPING_ROOT:
			if (parse_u64(optarg, &o.mapping_root) < 0)
				return usage_error("couldn't parse <override-mapping-root> '%s'", optarg);
			o.set_mapping_root = 1;
			break;
		case OPT_OVERRIDE_DETAILS_ROOT:
			if (parse_u64(optarg, &o.details_root) < 0)
				return usage_error("couldn't parse <override-details-root> '%s'", optarg);
			o.set_details_root = 1;
			break;
		case OPT_FORCE_SCAN:
			o.force_scan = 1;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	/* lvconvert --repair passes one stray positional argument: ignored */
	if (argc - optind > 1)
		return usage_error("unexpected argument '%s'", argv[optind + 1]);
	if (!input)
		return usage_error("%s", "No input file provided.");
	if (!output)
		return usage_error("%s", "No output file provided.");
	if (o.set_data_block_size && !thin_valid_data_block_size(o.data_block_size)) {
		fprintf(stderr, "invalid data block size %u (must be a multiple of 128 between "
				"128 and 2097152 sectors)\n",
			o.data_block_size);
		return EXIT_FAIL;
	}
	if (o.set_details_root && !o.set_mapping_root)
		return usage_error("%s", "--override-details-root needs --override-mapping-root");
	if (cli_same_file(input, output)) {
		fprintf(stderr, "thin_repair: the output '%s' is the input '%s' (the same file or "
				"device): refusing to overwrite it\n",
			output, input);
		return EXIT_FAIL;
	}
	if (progress_wanted(2, quiet))
		pg = progress_start(2, "thin_repair", "repairing");
	r = thin_md_open(input, 0, &md, msg, sizeof(msg));
	if (r < 0) {
		progress_stop(pg);
		fprintf(stderr, "%s\n", msg);
		return EXIT_FAIL;
	}
	if (thin_repair_superblock_lost(md)) {
		char note[THIN_REPAIR_MSG_LEN + 256];

		r = thin_repair_lvm_values(input, &o, note, sizeof(note));
		if (r < 0 || (r > 0 && !quiet))
			fprintf(stderr, "thin_repair: %s\n", note);
	}
	r = thin_repair_plan(md, &o, &rp, msg, sizeof(msg));
	if (r < 0) {
		progress_stop(pg);
		fprintf(stderr, "%s\n", msg);
		if (r == -EAGAIN)
			print_candidates(rp, input, output, &o);
		thin_repair_destroy(rp);
		thin_md_close(md);
		return EXIT_FAIL;
	}
	/* the repaired pool keeps the input's pool tag (NAMES.md §7.4) */
	if (thin_tag_existing(input, ro.uuid))
		ro.have_uuid = 1;
	r = thin_restore_path(output, &ro, thin_repair_produce, rp, NULL, msg, sizeof(msg));
	progress_stop(pg);
	pg = NULL;
	if (!quiet)
		for (size_t i = 0; i < thin_repair_nr_notes(rp); i++)
			fprintf(stderr, "%s\n", thin_repair_note(rp, i));
	if (r < 0)
		fprintf(stderr, "%s\n", msg);
	thin_repair_destroy(rp);
	thin_md_close(md);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}
