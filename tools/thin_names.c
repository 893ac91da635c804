/* thin_names: the side table of per-thin names bound to a pool by its tag. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names/names.h"
#include "names/session.h"
#include "util/cli.h"
#include "util/parse.h"

enum {
	OPT_TABLE = 256, OPT_JSON, OPT_WAIT, OPT_NAME, OPT_BLOB_HEX, OPT_BLOB_FILE, OPT_PENDING,
	OPT_IF_GEN, OPT_ALLOW_ABSENT, OPT_HEX, OPT_RAW, OPT_NEW, OPT_FROM_TABLE, OPT_DRY_RUN,
	OPT_TSV, OPT_REPLACE,
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: thin_names [options] {metadata device} COMMAND [args]\n"
		   "Commands:\n"
		   "  list                           entries joined with the pool's devices\n"
		   "  get DEV_ID [--hex|--raw]\n"
		   "  set DEV_ID (--name STR | --blob-hex HEX | --blob-file F)\n"
		   "             [--pending] [--if-generation G] [--allow-absent]\n"
		   "  confirm DEV_ID                 clear pending-create (the id must exist)\n"
		   "  mark-delete DEV_ID             set pending-delete before sending 'delete'\n"
		   "  delete DEV_ID [--if-generation G]\n"
		   "  tag [--new | --from-table]     write the pool tag (pool inactive)\n"
		   "  rebind                         re-tag after a foreign repair/restore\n"
		   "  gc [--dry-run]                 drop entries whose id is gone\n"
		   "  export [--tsv|--json]\n"
		   "  import FILE [--replace]\n"
		   "Options:\n"
		   "  {-h|--help}\n"
		   "  {-V|--version}\n"
		   "  {--table FILE}                 default /var/lib/thinmeta/names/<tag>.tmn\n"
		   "  {-m|--metadata-snap}           read the held metadata snapshot\n"
		   "  {--json}\n"
		   "  {--wait SECS}                  lock wait (default 10)\n"
		   "Exit status: 0 ok, 1 not found, 2 precondition failed, 3 binding mismatch,\n"
		   "4 table corrupt, 5 metadata unreadable, 64 usage error.\n");
}

static int usage_error(const char *msg)
{
	if (msg && *msg)
		fprintf(stderr, "thin_names: %s\n", msg);
	usage(stderr);
	return TN_USAGE;
}

/* Test-only crash points: THINMETA_TMN_CRASH / THINMETA_TAG_CRASH = point */
static void crash_hook(const char *point, void *ctx)
{
	const char *want = getenv(ctx);

	if (want && !strcmp(want, point))
		raise(SIGKILL);
}

static int parse_hex(const char *s, struct thin_names_opts *o, uint8_t **buf)
{
	size_t n = strlen(s);

	if (n % 2 || n / 2 > TMN_BLOB_MAX_LIMIT)
		return -EINVAL;
	*buf = malloc(n / 2 + 1);
	if (!*buf)
		return -ENOMEM;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = parse_xdigit(s[2 * i]), lo = parse_xdigit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		(*buf)[i] = (uint8_t)(hi << 4 | lo);
	}
	o->blob = *buf;
	o->blob_len = n / 2;
	return 0;
}

static int read_blob_file(const char *path, struct thin_names_opts *o, uint8_t **buf)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return -errno;
	*buf = malloc(TMN_BLOB_MAX_LIMIT + 2);
	if (!*buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(*buf, 1, TMN_BLOB_MAX_LIMIT + 1, f);
	fclose(f);
	if (n > TMN_BLOB_MAX_LIMIT)
		return -EFBIG;
	o->blob = *buf;
	o->blob_len = n;
	return 0;
}

static int parse_opt(int ch, struct thin_names_opts *o, uint8_t **blobbuf)
{
	uint64_t v;

	switch (ch) {
	case 'm': o->use_snap = 1; return 0;
	case OPT_TABLE: o->table = optarg; return 0;
	case OPT_JSON: o->json = 1; return 0;
	case OPT_TSV: o->tsv = 1; return 0;
	case OPT_HEX: o->hex = 1; return 0;
	case OPT_RAW: o->raw = 1; return 0;
	case OPT_PENDING: o->pending = 1; return 0;
	case OPT_ALLOW_ABSENT: o->allow_absent = 1; return 0;
	case OPT_NEW: o->newtag = 1; return 0;
	case OPT_FROM_TABLE: o->from_table = 1; return 0;
	case OPT_DRY_RUN: o->dry_run = 1; return 0;
	case OPT_REPLACE: o->replace = 1; return 0;
	case OPT_WAIT:
		if (parse_u64(optarg, &v) < 0 || v > 86400)
			return usage_error("bad --wait (seconds)");
		o->wait_ms = (unsigned)v * 1000;
		return 0;
	case OPT_IF_GEN:
		if (parse_u64(optarg, &o->if_gen) < 0)
			return usage_error("bad --if-generation");
		o->have_gen = 1;
		return 0;
	case OPT_NAME:
		if (o->blob)
			return usage_error("give one of --name, --blob-hex, --blob-file");
		o->blob = (const uint8_t *)optarg;
		o->blob_len = strlen(optarg);
		o->blob_utf8 = thin_names_valid_utf8(o->blob, o->blob_len);
		if (!o->blob_utf8)
			return usage_error("--name is not valid UTF-8 (use --blob-hex)");
		return 0;
	case OPT_BLOB_HEX:
		if (o->blob || parse_hex(optarg, o, blobbuf) < 0)
			return usage_error("bad --blob-hex (or more than one blob given)");
		return 0;
	case OPT_BLOB_FILE:
		if (o->blob || read_blob_file(optarg, o, blobbuf) < 0)
			return usage_error("cannot read --blob-file (at most 4096 bytes)");
		return 0;
	default:
		return usage_error(NULL);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "metadata-snap", no_argument, NULL, 'm' },
		{ "table", required_argument, NULL, OPT_TABLE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "tsv", no_argument, NULL, OPT_TSV },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "blob-hex", required_argument, NULL, OPT_BLOB_HEX },
		{ "blob-file", required_argument, NULL, OPT_BLOB_FILE },
		{ "pending", no_argument, NULL, OPT_PENDING },
		{ "if-generation", required_argument, NULL, OPT_IF_GEN },
		{ "allow-absent", no_argument, NULL, OPT_ALLOW_ABSENT },
		{ "hex", no_argument, NULL, OPT_HEX },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "new", no_argument, NULL, OPT_NEW },
		{ "from-table", no_argument, NULL, OPT_FROM_TABLE },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "replace", no_argument, NULL, OPT_REPLACE },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_names_opts o = { .wait_ms = 10000, .crash_hook = crash_hook,
				      .tmn_hook_ctx = "THINMETA_TMN_CRASH",
				      .tag_hook_ctx = "THINMETA_TAG_CRASH" };
	uint8_t *blobbuf = NULL;
	char msg[1024];
	int ch, r;

	while ((ch = getopt_long(argc, argv, "hVm", longopts, NULL)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			return EXIT_OK;
		}
		if (ch == 'V') {
			printf("%s\n", THINMETA_VERSION);
			return EXIT_OK;
		}
		r = parse_opt(ch, &o, &blobbuf);
		if (r) {
			free(blobbuf);
			return r;
		}
	}
	if (argc - optind < 2) {
		free(blobbuf);
		return usage_error(optind >= argc ? "No input file provided." : "no command given");
	}
	o.md = argv[optind];
	if (o.json && o.tsv) {
		free(blobbuf);
		return usage_error("--json and --tsv cannot be combined");
	}
	if (o.table && cli_same_file(o.table, o.md)) {
		free(blobbuf);
		fprintf(stderr, "thin_names: the table '%s' is the metadata '%s' (the same file or "
				"device): refusing to use it\n",
			o.table, o.md);
		return TN_PRECOND;
	}
	o.args = argv + optind + 2;
	o.nargs = argc - optind - 2;
	r = thin_names_session(&o, argv[optind + 1], stdout, msg, sizeof(msg));
	free(blobbuf);
	if (r == TN_USAGE)
		return usage_error(msg);
	if (r)
		fprintf(stderr, "thin_names: %s\n", msg);
	return r;
}
