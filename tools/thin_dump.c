/* thin_dump: binary pool metadata -> XML or human-readable text. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/progress.h"

#include "cmd/dump.h"
#include "xml/human_readable.h"
#include "thin/usage.h"
#include "thin/view.h"
#include "thin/metadata.h"
#include "names/names_xml.h"
#include "repair/repair.h"
#include "util/cli.h"
#include "util/parse.h"
#include "xml/xml_writer.h"

enum {
	OPT_DEV_ID = 256,
	OPT_SKIP_MAPPINGS,
	OPT_TRANSACTION_ID,
	OPT_DATA_BLOCK_SIZE,
	OPT_NR_DATA_BLOCKS,
	OPT_NAMES,
	OPT_NAMES_TABLE,
	OPT_OVERRIDE_MAPPING_ROOT,
	OPT_OVERRIDE_DETAILS_ROOT,
};

enum format { FMT_XML, FMT_HUMAN };

struct options {
	struct thin_dump_opts dump;
	enum format format;
	const char *input, *output;
	int quiet;
	int repair;
	int set_mapping_root, set_details_root;   /* --repair: the roots to use */
	uint64_t mapping_root, details_root;
	uint64_t *dev_ids;
	size_t nr_dev_ids;
	int names;                    /* --names: names as XML comments (NAMES.md §5.4) */
	const char *names_table;      /* NULL: the default table of the pool's tag */
	struct thin_names_table table;
	struct thin_dev_list devs;    /* for the names' incarnation check */
	uint8_t uuid[16];
};

static void usage(FILE *f)
{
	fputs("Usage: thin_dump [options] {device|file}\n"
	      "Options:\n"
	      "  {-h|--help}\n"
	      "  {-f|--format} {xml|human_readable}\n"
	      "  {-r|--repair}\n"
	      "  {-m|--metadata-snap}[=block#]\n"
	      "  {-o|--output} <xml file>\n"
	      "  {--dev-id} <dev-id>\n"
	      "  {--skip-mappings}\n"
	      "  {--transaction-id} <natural>\n"
	      "  {--data-block-size} <natural>\n"
	      "  {--nr-data-blocks} <natural>\n"
	      "  {--override-mapping-root} <block>\n"
	      "  {--override-details-root} <block>\n"
	      "  {--names}\n"
	      "  {--names-table} <names table file>\n"
	      "  {-q|--quiet}\n"
	      "  {-V|--version}\n",
	      f);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "thin_dump: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	return EXIT_USAGE;
}

static int add_dev_id(struct options *o, uint64_t id)
{
	uint64_t *n = realloc(o->dev_ids, (o->nr_dev_ids + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	n[o->nr_dev_ids++] = id;
	o->dev_ids = n;
	return 0;
}

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "format", required_argument, NULL, 'f' },
		{ "repair", no_argument, NULL, 'r' },
		{ "metadata-snap", optional_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "dev-id", required_argument, NULL, OPT_DEV_ID },
		{ "skip-mappings", no_argument, NULL, OPT_SKIP_MAPPINGS },
		{ "transaction-id", required_argument, NULL, OPT_TRANSACTION_ID },
		{ "data-block-size", required_argument, NULL, OPT_DATA_BLOCK_SIZE },
		{ "nr-data-blocks", required_argument, NULL, OPT_NR_DATA_BLOCKS },
		{ "names", no_argument, NULL, OPT_NAMES },
		{ "names-table", required_argument, NULL, OPT_NAMES_TABLE },
		{ "override-mapping-root", required_argument, NULL, OPT_OVERRIDE_MAPPING_ROOT },
		{ "override-details-root", required_argument, NULL, OPT_OVERRIDE_DETAILS_ROOT },
		{ NULL, 0, NULL, 0 },
	};
	int c, repair = 0;
	uint64_t n;

	while ((c = getopt_long(argc, argv, "hVf:rm::o:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			puts(THINMETA_VERSION);
			return EXIT_OK;
		case 'f':
			if (!strcmp(optarg, "xml")) {
				o->format = FMT_XML;
			} else if (!strcmp(optarg, "human_readable")) {
				o->format = FMT_HUMAN;
			} else if (!strncmp(optarg, "custom", 6)) {
				fprintf(stderr, "thin_dump: custom emitters ('%s') are not supported "
						"by this version; use xml or human_readable\n",
					optarg);
				return EXIT_FAIL;
			} else {
				return usage_error("unknown format '%s'", optarg);
			}
			break;
		case 'r':
			repair = 1;
			break;
		case 'm':
			o->dump.metadata_snap = 1;
			if (optarg) {
				/* -m5, -m=5 (Rust's spelling) and --metadata-snap=5 */
				if (parse_u64(optarg + (*optarg == '='), &o->dump.snap_block) < 0)
					return usage_error("couldn't parse <block#> '%s'", optarg);
				o->dump.snap_block_given = 1;
			}
			break;
		case 'o':
			o->output = optarg;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case OPT_DEV_ID:
			if (parse_u64(optarg, &n) < 0)
				return usage_error("couldn't parse <dev-id> '%s'", optarg);
			if (add_dev_id(o, n) < 0) {
				fprintf(stderr, "thin_dump: out of memory\n");
				return EXIT_FAIL;
			}
			break;
		case OPT_SKIP_MAPPINGS:
			o->dump.skip_mappings = 1;
			break;
		case OPT_TRANSACTION_ID:
			if (parse_u64(optarg, &o->dump.transaction_id) < 0)
				return usage_error("couldn't parse <transaction-id> '%s'", optarg);
			o->dump.set_transaction_id = 1;
			break;
		case OPT_DATA_BLOCK_SIZE:
			if (parse_u64(optarg, &n) < 0 || n == 0 || n > UINT32_MAX)
				return usage_error("couldn't parse <data-block-size> '%s'", optarg);
			o->dump.data_block_size = (uint32_t)n;
			o->dump.set_data_block_size = 1;
			break;
		case OPT_NR_DATA_BLOCKS:
			if (parse_u64(optarg, &o->dump.nr_data_blocks) < 0)
				return usage_error("couldn't parse <nr-data-blocks> '%s'", optarg);
			o->dump.set_nr_data_blocks = 1;
			break;
		case OPT_OVERRIDE_MAPPING_ROOT:
			if (parse_u64(optarg, &o->mapping_root) < 0)
				return usage_error("couldn't parse <override-mapping-root> '%s'", optarg);
			o->set_mapping_root = 1;
			break;
		case OPT_OVERRIDE_DETAILS_ROOT:
			if (parse_u64(optarg, &o->details_root) < 0)
				return usage_error("couldn't parse <override-details-root> '%s'", optarg);
			o->set_details_root = 1;
			break;
		case OPT_NAMES_TABLE:
			o->names_table = optarg;
			/* fall through */
		case OPT_NAMES:
			o->names = 1;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "No input file provided.\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (optind + 1 < argc)
		return usage_error("unexpected argument '%s'", argv[optind + 1]);
	if (repair && o->dump.metadata_snap)
		return usage_error("%s", "--repair cannot be used with --metadata-snap");
	if (!repair && (o->set_mapping_root || o->set_details_root))
		return usage_error("%s", "--override-mapping-root and --override-details-root need --repair");
	if (o->set_details_root && !o->set_mapping_root)
		return usage_error("%s", "--override-details-root needs --override-mapping-root");
	if (repair && (o->nr_dev_ids || o->dump.skip_mappings))
		return usage_error("%s", "--repair cannot be used with --dev-id or --skip-mappings");
	if (o->names && (repair || o->format != FMT_XML))
		return usage_error("%s", "--names needs the xml format and cannot be used with --repair");
	o->repair = repair;
	o->input = argv[optind];
	o->dump.dev_ids = o->dev_ids;
	o->dump.nr_dev_ids = o->nr_dev_ids;
	return -1;
}

/*----------------------------------------------------------------*/

struct writer {
	struct xml_writer *xml;
	struct thin_hr_writer *hr;
	struct ir_visitor v;
};

static int writer_init(struct writer *w, enum format fmt, FILE *out)
{
	memset(w, 0, sizeof(*w));
	if (fmt == FMT_XML) {
		w->xml = xml_writer_create(out);
		if (!w->xml)
			return -ENOMEM;
		xml_writer_visitor(w->xml, &w->v);
	} else {
		w->hr = thin_hr_writer_create(out);
		if (!w->hr)
			return -ENOMEM;
		thin_hr_writer_visitor(w->hr, &w->v);
	}
	return 0;
}

static int writer_finish(struct writer *w)
{
	int r = w->xml ? xml_writer_flush(w->xml) : thin_hr_writer_flush(w->hr);

	xml_writer_destroy(w->xml);
	thin_hr_writer_destroy(w->hr);
	return r;
}

/* The refused plan's candidates, each with the command line that picks it. */
static void print_candidates(const struct thin_repair *rp, const struct options *o,
			     const struct thin_repair_opts *ro)
{
	char in[1024], out[1024];

	cli_shell_quote(o->input, in, sizeof(in));
	if (o->output)
		cli_shell_quote(o->output, out, sizeof(out));
	for (size_t i = 0; i < thin_repair_nr_candidates(rp); i++) {
		const struct thin_repair_candidate *c = thin_repair_candidate(rp, i);

		fprintf(stderr, "candidate %zu: %s\n", i + 1, c->text);
		if (!c->mapping_root)
			continue;
		fprintf(stderr, "  thin_dump --repair");
		if (o->format == FMT_HUMAN)
			fprintf(stderr, " -f human_readable");
		if (ro->set_transaction_id)
			fprintf(stderr, " --transaction-id %llu", (unsigned long long)ro->transaction_id);
		if (ro->set_data_block_size)
			fprintf(stderr, " --data-block-size %u", ro->data_block_size);
		if (ro->set_nr_data_blocks)
			fprintf(stderr, " --nr-data-blocks %llu", (unsigned long long)ro->nr_data_blocks);
		fprintf(stderr, " --override-mapping-root %llu", (unsigned long long)c->mapping_root);
		if (c->details_root)
			fprintf(stderr, " --override-details-root %llu",
				(unsigned long long)c->details_root);
		if (o->output)
			fprintf(stderr, " -o %s", out);
		fprintf(stderr, " %s\n", in);
	}
}

/* --repair: the content thin_repair would write, as XML or text. */
static int dump_repair(struct options *o, struct thin_md *md, FILE *out)
{
	struct thin_repair_opts ro = { 0 };
	struct thin_repair *rp;
	char msg[THIN_REPAIR_MSG_LEN];
	struct writer w;
	int r, wr;

	ro.set_transaction_id = o->dump.set_transaction_id;
	ro.transaction_id = o->dump.transaction_id;
	ro.set_data_block_size = o->dump.set_data_block_size;
	ro.data_block_size = o->dump.data_block_size;
	ro.set_nr_data_blocks = o->dump.set_nr_data_blocks;
	ro.nr_data_blocks = o->dump.nr_data_blocks;
	ro.set_mapping_root = o->set_mapping_root;
	ro.mapping_root = o->mapping_root;
	ro.set_details_root = o->set_details_root;
	ro.details_root = o->details_root;
	if (thin_repair_superblock_lost(md)) {
		char note[THIN_REPAIR_MSG_LEN + 256];

		r = thin_repair_lvm_values(o->input, &ro, note, sizeof(note));
		if (r < 0 || (r > 0 && !o->quiet))
			fprintf(stderr, "thin_dump: %s\n", note);
	}
	r = thin_repair_plan(md, &ro, &rp, msg, sizeof(msg));
	if (r < 0) {
		fprintf(stderr, "%s\n", msg);
		if (r == -EAGAIN)
			print_candidates(rp, o, &ro);
		thin_repair_destroy(rp);
		return EXIT_FAIL;
	}
	if (writer_init(&w, o->format, out) < 0) {
		thin_repair_destroy(rp);
		fprintf(stderr, "thin_dump: out of memory\n");
		return EXIT_FAIL;
	}
	r = thin_repair_emit(rp, &w.v, 1, msg, sizeof(msg));
	wr = writer_finish(&w);
	if (!o->quiet)
		for (size_t i = 0; i < thin_repair_nr_notes(rp); i++)
			fprintf(stderr, "%s\n", thin_repair_note(rp, i));
	thin_repair_destroy(rp);
	if (r < 0) {
		if (r != -EPIPE)
			fprintf(stderr, "%s\n", msg);
		return EXIT_FAIL;
	}
	if (wr < 0) {
		if (wr != -EPIPE)
			fprintf(stderr, "thin_dump: cannot write output: %s\n", strerror(-wr));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/*
 * --names: the names table bound to the pool (or its metadata snapshot),
 * and the device list for the incarnation check.  0 or EXIT_FAIL.
 */
static int load_names(struct options *o, struct thin_md *md)
{
	struct thin_view v;
	enum thin_names_binding b;
	char msg[512];
	int r;

	r = thin_view_attach(md, o->dump.metadata_snap,
			     o->dump.snap_block_given ? o->dump.snap_block : 0, &v, msg, sizeof(msg));
	if (r < 0) {
		if (!o->quiet)
			fprintf(stderr, "%s\n", msg);
		return EXIT_FAIL;
	}
	memcpy(o->uuid, v.md->sb.uuid, sizeof(o->uuid));
	r = thin_names_open_bound(o->names_table, o->uuid, v.sb.data_block_size, &v.devs,
				  &o->table, &b, msg, sizeof(msg));
	if (r < 0) {
		thin_view_close(&v);
		if (!o->quiet)
			fprintf(stderr, "thin_dump: %s\n", msg);
		return EXIT_FAIL;
	}
	if (b == TMN_BOUND_FINGERPRINT && !o->quiet)
		fprintf(stderr, "thin_dump: warning: the names table is bound by fingerprint only "
				"(the pool tag differs; run 'thin_names rebind')\n");
	o->devs = v.devs;   /* kept beyond the view */
	v.devs.devs = NULL;
	v.devs.nr = 0;
	thin_view_close(&v);
	return 0;
}

static int dump(struct options *o, struct thin_md *md, FILE *out)
{
	char msg[THIN_DUMP_MSG_LEN];
	struct thin_names_dump nd = { 0 };
	struct ir_visitor nv;
	struct writer w;
	int r, wr;

	if (writer_init(&w, o->format, out) < 0 ||
	    (o->names && thin_names_dump_visitor(&nd, &o->table, &o->devs, o->uuid, &w.v, &nv) < 0)) {
		fprintf(stderr, "thin_dump: out of memory\n");
		return EXIT_FAIL;
	}
	r = thin_dump(md, &o->dump, o->names ? &nv : &w.v, msg, sizeof(msg));
	thin_names_dump_release(&nd);
	wr = writer_finish(&w);   /* keep what was dumped, even on damage */
	if (r < 0) {
		if (!o->quiet && r != -EPIPE)
			fprintf(stderr, "%s\n", msg);
		return EXIT_FAIL;
	}
	if (wr < 0) {
		if (!o->quiet && wr != -EPIPE)
			fprintf(stderr, "thin_dump: cannot write output: %s\n", strerror(-wr));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct thin_md *md = NULL;
	char msg[512];
	FILE *out = stdout;
	struct progress *pg = NULL;
	int r;

	thin_names_init(&o.table);
	r = parse_args(argc, argv, &o);
	if (r >= 0)
		goto out;
	if (o.output && cli_same_file(o.input, o.output)) {
		fprintf(stderr, "thin_dump: the output '%s' is the input '%s' (the same file or "
				"device): refusing to overwrite it\n",
			o.output, o.input);
		r = EXIT_FAIL;
		goto out;
	}
	if (o.output && o.names_table && cli_same_file(o.names_table, o.output)) {
		fprintf(stderr, "thin_dump: the output '%s' is the names table (the same file or "
				"device): refusing to overwrite it\n",
			o.output);
		r = EXIT_FAIL;
		goto out;
	}
	/* a metadata snapshot is read while the pool is live: no O_EXCL */
	r = thin_md_open(o.input, o.dump.metadata_snap ? THIN_MD_SHARED : 0, &md, msg,
			 sizeof(msg));
	if (r < 0) {
		if (!o.quiet)
			fprintf(stderr, "%s\n", msg);
		r = EXIT_FAIL;
		goto out;
	}
	if (o.names && (r = load_names(&o, md)) != 0)
		goto out;
	if (o.output) {
		out = fopen(o.output, "w");
		if (!out) {
			if (!o.quiet)
				fprintf(stderr, "thin_dump: cannot open output file '%s': %s\n",
					o.output, strerror(errno));
			r = EXIT_FAIL;
			goto out;
		}
	}
	if (o.output && progress_wanted(2, o.quiet)) {
		pg = progress_start(2, "thin_dump", "dumping");
		progress_set(pg, NULL, md->sb_err ? 0 : md->sb.metadata_sm.nr_allocated);
	}
	r = o.repair ? dump_repair(&o, md, out) : dump(&o, md, out);
	progress_stop(pg);
	if (out != stdout && fclose(out) != 0 && r == EXIT_OK) {
		if (!o.quiet)
			fprintf(stderr, "thin_dump: cannot write '%s': %s\n", o.output,
				strerror(errno));
		r = EXIT_FAIL;
	}
out:
	thin_md_close(md);
	thin_names_release(&o.table);
	thin_dev_list_release(&o.devs);
	free(o.dev_ids);
	return r;
}
