/* thin_ls: list the thin devices of a pool with their data usage. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/progress.h"

#include "cmd/ls.h"

#include "util/parse.h"
#include "names/names_xml.h"
#include "util/cli.h"

enum { OPT_NO_HEADERS = 256, OPT_JSON, OPT_NAMES, OPT_NAMES_TABLE };

static void usage(FILE *f)
{
	fprintf(f, "Usage: thin_ls [options] {metadata device}\n"
		   "Options:\n"
		   "  {-h|--help}\n"
		   "  {-m|--metadata-snap}[=block#]\n"
		   "  {--no-headers}\n"
		   "  {--json}\n"
		   "  {-o|--format <fields>}\n"
		   "  {--names}\n"
		   "  {--names-table <names table file>}\n"
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

/*----------------------------------------------------------------*/
/* --names: the side table's names (NAMES.md §7.1) */

struct names {
	const char *table;      /* NULL: the default table of the pool's tag */
	struct thin_names_table t;
	char **text[2];         /* per device of the view: table / JSON cell, or NULL */
	const struct thin_dev *devs;   /* the view's device array */
	size_t nr;
};

static int names_open(void *ctx, const struct thin_view *v, char *msg, size_t msglen)
{
	struct names *n = ctx;
	enum thin_names_binding b;
	char *buf, buf_msg[400];
	int r;

	r = thin_names_open_bound(n->table, v->md->sb.uuid, v->sb.data_block_size, &v->devs, &n->t,
				  &b, buf_msg, sizeof(buf_msg));
	if (r < 0) {
		snprintf(msg, msglen, "thin_ls: %s", buf_msg);
		return r;
	}
	if (b == TMN_BOUND_FINGERPRINT)
		fprintf(stderr, "thin_ls: warning: the names table is bound by fingerprint only "
				"(the pool tag differs; run 'thin_names rebind')\n");
	n->devs = v->devs.devs;
	n->nr = v->devs.nr;
	n->text[0] = calloc(n->nr + 1, sizeof(char *));
	n->text[1] = calloc(n->nr + 1, sizeof(char *));
	buf = malloc(THIN_NAMES_FORMAT_MAX);
	if (!n->text[0] || !n->text[1] || !buf) {
		free(buf);
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n->nr; i++) {
		const struct thin_names_entry *e = thin_names_of_dev(&n->t, &v->devs.devs[i]);

		for (int json = 0; e && json < 2; json++) {
			thin_names_format(e, json ? TMN_STYLE_JSON : TMN_STYLE_TABLE, buf,
					  THIN_NAMES_FORMAT_MAX);
			n->text[json][i] = strdup(buf);
			if (!n->text[json][i]) {
				free(buf);
				snprintf(msg, msglen, "out of memory");
				return -ENOMEM;
			}
		}
	}
	free(buf);
	return 0;
}

static const char *name_of(void *ctx, const struct thin_dev *d, int json)
{
	struct names *n = ctx;
	size_t i = (size_t)(d - n->devs);   /* d is one of the view's devices */

	return i < n->nr ? n->text[json != 0][i] : NULL;
}

static void names_release(struct names *n)
{
	for (int j = 0; j < 2; j++) {
		for (size_t i = 0; n->text[j] && i < n->nr; i++)
			free(n->text[j][i]);
		free(n->text[j]);
	}
	thin_names_release(&n->t);
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
		{ "names", no_argument, NULL, OPT_NAMES },
		{ "names-table", required_argument, NULL, OPT_NAMES_TABLE },
		{ NULL, 0, NULL, 0 },
	};
	enum thin_ls_field fields[4 * TLF_NR];
	struct thin_ls_opts o = { 0 };
	struct names names = { 0 };
	struct progress *pg = NULL;
	char msg[512];
	int c, want_names = 0, has_name = 0, r;

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
			if (optarg && parse_u64(optarg[0] == '=' ? optarg + 1 : optarg,
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
		case OPT_NAMES_TABLE:
			names.table = optarg;
			/* fall through */
		case OPT_NAMES:
			want_names = 1;
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
	/* --names adds a NAME column unless -o placed one; -o NAME implies --names */
	for (size_t k = 0; k < o.nr_fields; k++)
		has_name |= fields[k] == TLF_NAME;
	if (want_names && !has_name) {
		if (o.nr_fields == sizeof(fields) / sizeof(fields[0]))
			return usage_error("too many fields");
		fields[o.nr_fields++] = TLF_NAME;
	}
	if (want_names || has_name) {
		thin_names_init(&names.t);
		o.names_open = names_open;
		o.name_of = name_of;
		o.names_ctx = &names;
	}
	if (progress_wanted(2, 0))
		pg = progress_start(2, "thin_ls", "reading metadata");
	r = thin_ls(&o, stdout, msg, sizeof(msg));
	progress_stop(pg);
	names_release(&names);
	if (r < 0) {
		fprintf(stderr, "%s\n", msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
