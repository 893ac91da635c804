/* thin_restore: XML -> binary pool metadata (see man/thin_restore.8). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/progress.h"

#include "names/names_xml.h"
#include "cmd/restore.h"
#include "thin/pool_tag.h"
#include "util/cli.h"
#include "util/parse.h"
#include "xml/xml_reader.h"

enum {
	OPT_TRANSACTION_ID = 256,
	OPT_DATA_BLOCK_SIZE,
	OPT_NR_DATA_BLOCKS,
	OPT_NAMES_TABLE,
};

static void usage(FILE *f)
{
	fputs("Usage: thin_restore [options]\n"
	      "Options:\n"
	      "  {-h|--help}\n"
	      "  {-i|--input} <input xml file>\n"
	      "  {-o|--output} <output device or file>\n"
	      "  {--transaction-id} <natural>\n"
	      "  {--data-block-size} <natural>\n"
	      "  {--nr-data-blocks} <natural>\n"
	      "  {--names-table} <names table file>\n"
	      "  {-q|--quiet}\n"
	      "  {-V|--version}\n",
	      f);
}

static int usage_error(const char *msg)
{
	fprintf(stderr, "thin_restore: %s\n", msg);
	usage(stderr);
	return EXIT_USAGE;
}

static int produce_xml(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	return xml_read_file_async(ctx, v, err, errlen);
}

/* --names-table: the XML reader's events pass through the names collector */
struct names_producer {
	const char *input;
	struct thin_names_collect c;
};

static int produce_xml_names(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	struct names_producer *np = ctx;
	struct ir_visitor cv;

	thin_names_collect_release(&np->c);   /* an earlier pass's names */
	thin_names_collect_visitor(&np->c, v, &cv);
	return xml_read_file_async(np->input, &cv, err, errlen);
}

/*
 * After a restore with --names-table: the restored pool gets a tag when it
 * has none (the dump's, else a fresh one: it is inactive, we just wrote
 * it), and the names go to the table (a new generation, under its lock).
 */
static int write_names(const char *output, const char *table, struct thin_names_collect *c,
		       const struct thin_restore_opts *o, unsigned wait_ms)
{
	struct thin_names_table old;
	uint8_t uuid[16];
	char msg[512];
	int lock, r;

	if (!c->seen_header)
		fprintf(stderr, "thin_restore: warning: the input carries no thinmeta names; "
				"'%s' gets an empty table\n", table);
	r = thin_tag_read(output, uuid, msg, sizeof(msg));
	if (r < 0) {
		fprintf(stderr, "thin_restore: %s\n", msg);
		return -1;
	}
	if (!thin_tag_is_valid(uuid)) {
		if (c->have_tag)
			memcpy(uuid, c->tag, sizeof(uuid));
		else if ((r = thin_tag_generate(uuid)) < 0) {
			fprintf(stderr, "thin_restore: cannot make a pool tag: %s\n", strerror(-r));
			return -1;
		}
		if (thin_tag_write(output, uuid, NULL, NULL, msg, sizeof(msg)) < 0) {
			fprintf(stderr, "thin_restore: cannot tag the pool: %s\n", msg);
			return -1;
		}
	}
	memcpy(c->t.tag, uuid, sizeof(uuid));
	c->t.bound_trans_id = o->have_trans_id ? o->trans_id : c->transaction;
	if (o->have_data_block_size)
		c->t.data_block_size = o->data_block_size;
	lock = thin_names_lock(table, wait_ms);
	if (lock < 0) {
		fprintf(stderr, "thin_restore: %s.lock: %s\n", table,
			lock == -ETIMEDOUT ? "timed out waiting for the table lock" : strerror(-lock));
		return -1;
	}
	/* generations only grow: continue the numbering of a table replaced */
	if (thin_names_load(table, &old, msg, sizeof(msg)) == 0) {
		c->t.generation = old.generation;
		thin_names_release(&old);
	}
	c->t.generation++;
	r = thin_names_commit(table, &c->t, NULL, NULL, msg, sizeof(msg));
	thin_names_unlock(lock);
	if (r < 0) {
		fprintf(stderr, "thin_restore: %s\n", msg);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "transaction-id", required_argument, NULL, OPT_TRANSACTION_ID },
		{ "data-block-size", required_argument, NULL, OPT_DATA_BLOCK_SIZE },
		{ "nr-data-blocks", required_argument, NULL, OPT_NR_DATA_BLOCKS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "names-table", required_argument, NULL, OPT_NAMES_TABLE },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_restore_opts o;
	const char *input = NULL, *output = NULL, *names_table = NULL;
	struct names_producer np;
	char err[1024];
	uint64_t v;
	struct progress *pg = NULL;
	int c, r, quiet = 0;

	memset(&o, 0, sizeof(o));
	while ((c = getopt_long(argc, argv, "hi:o:qV", longopts, NULL)) != -1) {
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
			if (parse_u64(optarg, &v) < 0)
				return usage_error("bad --transaction-id");
			o.have_trans_id = 1;
			o.trans_id = v;
			break;
		case OPT_DATA_BLOCK_SIZE:
			if (parse_u64(optarg, &v) < 0 || v > UINT32_MAX)
				return usage_error("bad --data-block-size");
			o.have_data_block_size = 1;
			o.data_block_size = (uint32_t)v;
			break;
		case OPT_NR_DATA_BLOCKS:
			if (parse_u64(optarg, &v) < 0)
				return usage_error("bad --nr-data-blocks");
			o.have_nr_data_blocks = 1;
			o.nr_data_blocks = v;
			break;
		case OPT_NAMES_TABLE:
			names_table = optarg;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument");
	if (!input)
		return usage_error("No input file provided.");
	if (!output)
		return usage_error("No output file provided.");
	if (o.have_data_block_size && !thin_valid_data_block_size(o.data_block_size)) {
		fprintf(stderr, "invalid data block size %u (must be a multiple of 128 between 128 and 2097152 sectors)\n",
			o.data_block_size);
		return EXIT_FAIL;
	}
	if (cli_same_file(input, output)) {
		fprintf(stderr, "thin_restore: the output '%s' is the input '%s' (the same file or "
				"device): refusing to overwrite it\n",
			output, input);
		return EXIT_FAIL;
	}
	if (names_table && (cli_same_file(names_table, output) || cli_same_file(names_table, input))) {
		fprintf(stderr, "thin_restore: the names table '%s' is the %s (the same file or "
				"device)\n",
			names_table, cli_same_file(names_table, output) ? "output" : "input");
		return EXIT_FAIL;
	}
	/* keep the pool tag the output carries now (NAMES.md §7.4) */
	if (thin_tag_existing(output, o.uuid))
		o.have_uuid = 1;
	memset(&np, 0, sizeof(np));
	np.input = input;
	thin_names_init(&np.c.t);
	if (progress_wanted(2, quiet))
		pg = progress_start(2, "thin_restore", "restoring");
	if (names_table)
		r = thin_restore_path(output, &o, produce_xml_names, &np, NULL, err, sizeof(err));
	else
		r = thin_restore_path(output, &o, produce_xml, (void *)input, NULL, err, sizeof(err));
	if (r >= 0 && names_table && write_names(output, names_table, &np.c, &o, 10000) < 0) {
		thin_names_collect_release(&np.c);
		return EXIT_FAIL;
	}
	progress_stop(pg);
	thin_names_collect_release(&np.c);
	if (r < 0) {
		/* errors are printed even with -q: the exit status alone hides the cause */
		(void)quiet;
		fprintf(stderr, "%s\n", err);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
