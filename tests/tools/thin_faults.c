/*
 * thin_faults: test-only injection of read, write and flush errors (EIO,
 * ENOSPC) into the library's readers and writers through the in-memory
 * engine (lib/io/io_mem.c).  The image is loaded into memory; an unfaulted
 * run counts the engine's reads / writes / flushes, then one run per
 * fault point fails that operation and every later one (a device that
 * died) and the outcome is judged:
 *
 *   check IMAGE          read faults: the check must not pass
 *   dump IMAGE           read faults: the dump must fail
 *   clear IMAGE          write/flush faults in thin_check --clear-needs-check-flag
 *                        (leak repair included): the call fails, the image then has
 *                        no fatal finding, a rerun succeeds and leaves it clean
 *   restore XML IMAGE    write/flush faults while restoring XML over IMAGE: the
 *                        call fails and the image holds the old or the new metadata
 *   repair IN IMAGE      read faults on IN: a repair that succeeds checks clean;
 *                        write/flush faults on IMAGE (the output): old or new
 *
 * "Old or new" compares a fingerprint of the dump (every IR event) and the
 * check verdict with those before and after an unfaulted run.
 * Options: --errno EIO|ENOSPC (default: both), --step K (every Kth fault
 * point).  Prints "OP ERRNO: N faults tried, F failures"; exit 1 on any
 * failure, 2 on a setup error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check/check.h"
#include "cmd/dump.h"
#include "cmd/restore.h"
#include "io/io.h"
#include "repair/repair.h"
#include "thin/metadata.h"
#include "util/report.h"
#include "xml/xml_reader.h"

struct image {
	uint8_t *data;
	uint64_t nr_blocks;
};

static int nr_failures;

static void failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failure(const char *fmt, ...)
{
	va_list ap;

	fputs("FAILURE: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	nr_failures++;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("thin_faults: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void load(const char *path, struct image *img)
{
	FILE *f = fopen(path, "rb");
	struct stat st;

	if (!f || fstat(fileno(f), &st) < 0 || st.st_size < 4096)
		die("cannot read '%s'", path);
	img->nr_blocks = (uint64_t)st.st_size / MD_BLOCK_SIZE;
	img->data = malloc(img->nr_blocks * MD_BLOCK_SIZE);
	if (!img->data || fread(img->data, MD_BLOCK_SIZE, img->nr_blocks, f) != img->nr_blocks)
		die("cannot read '%s'", path);
	fclose(f);
}

static struct ioe *engine(const struct image *img)
{
	struct ioe *e = ioe_mem_create(img->nr_blocks);

	if (!e)
		die("out of memory");
	memcpy(ioe_mem_data(e), img->data, img->nr_blocks * MD_BLOCK_SIZE);
	return e;
}

/*----------------------------------------------------------------*/
/* fingerprints: FNV-1a over the dump's events, and the check verdict */

static void mix(uint64_t *h, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		*h ^= (v >> (8 * i)) & 0xff;
		*h *= 1099511628211ull;
	}
}

static int f_sb(void *c, const struct ir_superblock *sb)
{
	mix(c, 1);
	mix(c, sb->transaction);
	mix(c, sb->time);
	mix(c, sb->flags);
	mix(c, sb->data_block_size);
	mix(c, sb->nr_data_blocks);
	mix(c, sb->has_metadata_snap ? sb->metadata_snap + 1 : 0);
	return 0;
}

static int f_dev(void *c, const struct ir_device *d)
{
	mix(c, 2);
	mix(c, d->dev_id);
	mix(c, d->mapped_blocks);
	mix(c, d->transaction);
	mix(c, d->creation_time);
	mix(c, d->snap_time);
	return 0;
}

static int f_end(void *c)
{
	mix(c, 3);
	return 0;
}

static int f_single(void *c, uint64_t o, uint64_t d, uint32_t t)
{
	mix(c, 4);
	mix(c, o);
	mix(c, d);
	mix(c, t);
	return 0;
}

static int f_range(void *c, uint64_t o, uint64_t d, uint64_t n, uint32_t t)
{
	for (uint64_t i = 0; i < n; i++)
		f_single(c, o + i, d + i, t);
	return 0;
}

struct state {
	uint64_t dump;            /* 0: the dump failed */
	int check_exit;           /* thin_check's exit status */
	enum dmg_level outcome;
};

static int check_engine(struct ioe *e, unsigned flags, struct thin_check_result *res)
{
	struct thin_check_opts o = { .flags = flags };
	struct report *rep = rep_create(NULL, 1);
	char msg[512];
	int r;

	if (!rep)
		die("out of memory");
	r = thin_check_ioe(e, &o, rep, res, msg, sizeof(msg));
	rep_destroy(rep);
	return r;
}

static uint64_t dump_engine(struct ioe *e)
{
	struct thin_dump_opts o = { 0 };
	uint64_t h = 14695981039346656037ull;
	struct ir_visitor v = { .ctx = &h, .begin_superblock = f_sb, .end_superblock = f_end,
				.begin_device = f_dev, .end_device = f_end,
				.single_map = f_single, .range_map = f_range };
	struct thin_md *md;
	char msg[512];
	int r;

	if (thin_md_open_ioe(e, &md) < 0)
		die("out of memory");
	r = md->sb_err ? md->sb_err : thin_dump(md, &o, &v, msg, sizeof(msg));
	thin_md_close(md);
	return r < 0 ? 0 : (h ? h : 1);
}

static void state_of(struct ioe *e, struct state *s)
{
	struct thin_check_opts o = { 0 };
	struct thin_check_result res;

	ioe_mem_fail_read(e, -1);
	ioe_mem_fail_write(e, -1);
	ioe_mem_fail_flush(e, -1);
	s->dump = dump_engine(e);
	if (check_engine(e, 0, &res) < 0) {
		s->check_exit = 1;
		s->outcome = DMG_FATAL;
	} else {
		s->check_exit = thin_check_passed(&o, &res) ? 0 : 1;
		s->outcome = res.outcome;
	}
}

static int same_state(const struct state *a, const struct state *b)
{
	return a->dump == b->dump && a->check_exit == b->check_exit;
}

/*----------------------------------------------------------------*/

enum fault { F_READ, F_WRITE, F_FLUSH };
static const char *const fault_name[] = { "read", "write", "flush" };

static void arm(struct ioe *e, enum fault f, long n, int err)
{
	ioe_mem_fail_errno(e, err);
	if (f == F_READ)
		ioe_mem_fail_read(e, n);
	else if (f == F_WRITE)
		ioe_mem_fail_write(e, n);
	else
		ioe_mem_fail_flush(e, n);
}

struct tally {
	unsigned long tried;
	int failures_before;
};

static long step = 1;

/*----------------------------------------------------------------*/
/* readers */

static void op_check(const struct image *img, int err, struct tally *t)
{
	struct thin_check_opts o = { 0 };
	struct thin_check_result res;
	struct ioe *e = engine(img);
	unsigned long reads;

	ioe_mem_fail_read(e, -1);
	if (check_engine(e, 0, &res) < 0 || !thin_check_passed(&o, &res))
		die("check: the image does not check clean without faults");
	reads = ioe_mem_nr_reads(e);
	ioe_destroy(e);
	for (unsigned long n = 0; n < reads; n += (unsigned long)step) {
		e = engine(img);
		arm(e, F_READ, (long)n, err);
		t->tried++;
		if (check_engine(e, 0, &res) == 0 && thin_check_passed(&o, &res))
			failure("check: read %lu of %lu fails (%s), the check passes", n, reads,
				strerror(-err));
		ioe_destroy(e);
	}
}

static void op_dump(const struct image *img, int err, struct tally *t)
{
	struct ioe *e = engine(img);
	unsigned long reads;

	ioe_mem_fail_read(e, -1);
	if (!dump_engine(e))
		die("dump: the image does not dump without faults");
	reads = ioe_mem_nr_reads(e);
	ioe_destroy(e);
	for (unsigned long n = 0; n < reads; n += (unsigned long)step) {
		e = engine(img);
		arm(e, F_READ, (long)n, err);
		t->tried++;
		if (dump_engine(e))
			failure("dump: read %lu of %lu fails (%s), the dump succeeds", n, reads,
				strerror(-err));
		ioe_destroy(e);
	}
}

/*----------------------------------------------------------------*/
/* writers */

static void op_clear(const struct image *img, int err, struct tally *t)
{
	const unsigned flags = THIN_CHECK_CLEAR_NEEDS_CHECK;
	struct thin_check_result res;
	struct ioe *e = engine(img);
	unsigned long nw, nf;

	if (check_engine(e, flags, &res) < 0 || res.outcome >= DMG_NON_FATAL)
		die("clear: --clear-needs-check-flag does not succeed without faults");
	nw = ioe_mem_nr_writes(e);
	if (!nw)
		die("clear: nothing to write (give an image with leaks or the needs_check flag)");
	nf = ioe_mem_nr_flushes(e);
	ioe_destroy(e);
	for (enum fault f = F_WRITE; f <= F_FLUSH; f++) {
		unsigned long total = f == F_WRITE ? nw : nf;
		for (unsigned long n = 0; n < total; n += (unsigned long)step) {
			struct state s;
			e = engine(img);
			arm(e, f, (long)n, err);
			t->tried++;
			if (check_engine(e, flags, &res) == 0 && res.outcome < DMG_NON_FATAL)
				failure("clear: %s %lu of %lu fails (%s), the check passes anyway",
					fault_name[f], n, total, strerror(-err));
			state_of(e, &s);
			if (s.outcome >= DMG_FATAL)
				failure("clear: %s %lu of %lu fails (%s): fatal damage left", fault_name[f],
					n, total, strerror(-err));
			if (check_engine(e, flags, &res) < 0 || res.outcome >= DMG_NON_FATAL) {
				failure("clear: %s %lu of %lu fails (%s): a rerun does not succeed",
					fault_name[f], n, total, strerror(-err));
			} else {
				state_of(e, &s);
				if (s.check_exit)
					failure("clear: %s %lu of %lu fails (%s): not clean after a rerun",
						fault_name[f], n, total, strerror(-err));
			}
			ioe_destroy(e);
		}
	}
}

static int produce_xml(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	return xml_read_file(ctx, v, err, errlen);
}

static int produce_repair(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	return thin_repair_produce(ctx, v, err, errlen);
}

/* A writer into out (fills st); 0 or a negative errno. */
typedef int (*writer_fn)(struct ioe *out, void *ctx, struct thin_restore_stats *st);

static void writer_faults(const char *what, const struct image *out_img, writer_fn fn, void *ctx,
			  int err, struct tally *t)
{
	struct thin_restore_stats st;
	struct state olds, news, s;
	struct ioe *e = engine(out_img);
	unsigned long nw, nf;

	state_of(e, &olds);
	ioe_mem_fail_read(e, -1);
	ioe_mem_fail_write(e, -1);
	ioe_mem_fail_flush(e, -1);
	if (fn(e, ctx, &st) < 0)
		die("%s: does not succeed without faults", what);
	if (st.invalidated)
		die("%s: the new metadata does not fit beside the old (make the output bigger)", what);
	nw = ioe_mem_nr_writes(e);
	nf = ioe_mem_nr_flushes(e);
	state_of(e, &news);
	if (news.check_exit)
		failure("%s: the output does not check clean", what);
	ioe_destroy(e);
	for (enum fault f = F_WRITE; f <= F_FLUSH; f++) {
		unsigned long total = f == F_WRITE ? nw : nf;
		for (unsigned long n = 0; n < total; n += (unsigned long)step) {
			e = engine(out_img);
			arm(e, f, (long)n, err);
			t->tried++;
			if (fn(e, ctx, &st) == 0)
				failure("%s: %s %lu of %lu fails (%s), the writer succeeds", what,
					fault_name[f], n, total, strerror(-err));
			state_of(e, &s);
			if (!same_state(&s, &olds) && !same_state(&s, &news))
				failure("%s: %s %lu of %lu fails (%s): neither old nor new (dump %016" PRIx64
					", check exit %d)",
					what, fault_name[f], n, total, strerror(-err), s.dump,
					s.check_exit);
			ioe_destroy(e);
		}
	}
}

static int restore_fn(struct ioe *out, void *ctx, struct thin_restore_stats *st)
{
	struct thin_restore_opts o = { 0 };
	char msg[1024];

	memset(st, 0, sizeof(*st));
	return thin_restore_ioe(out, &o, produce_xml, ctx, st, msg, sizeof(msg));
}

struct repair_ctx {
	const struct image *in;
	int err;
	long read_fault;
};

static int repair_fn(struct ioe *out, void *ctx, struct thin_restore_stats *st)
{
	struct repair_ctx *c = ctx;
	struct thin_repair_opts ro = { 0 };
	struct thin_restore_opts o = { 0 };
	struct ioe *in = engine(c->in);
	struct thin_repair *rp;
	struct thin_md *md;
	char msg[1024];
	int r;

	memset(st, 0, sizeof(*st));
	if (c->read_fault >= 0)
		arm(in, F_READ, c->read_fault, c->err);
	if (thin_md_open_ioe(in, &md) < 0)
		die("out of memory");
	r = thin_repair_plan(md, &ro, &rp, msg, sizeof(msg));
	if (r == 0) {
		r = thin_restore_ioe(out, &o, produce_repair, rp, st, msg, sizeof(msg));
		thin_repair_destroy(rp);
	}
	thin_md_close(md);
	ioe_destroy(in);
	return r;
}

static void op_repair_reads(const struct image *in, const struct image *out_img, int err,
			    struct tally *t)
{
	struct repair_ctx c = { in, err, -1 };
	struct thin_restore_stats st;
	struct thin_repair_opts ro = { 0 };
	struct thin_repair *rp;
	struct thin_md *md;
	struct ioe *e = engine(in);
	unsigned long reads;
	char msg[1024];

	ioe_mem_fail_read(e, -1);
	if (thin_md_open_ioe(e, &md) < 0 || thin_repair_plan(md, &ro, &rp, msg, sizeof(msg)) < 0)
		die("repair: cannot plan without faults: %s", msg);
	thin_repair_destroy(rp);
	thin_md_close(md);
	reads = ioe_mem_nr_reads(e);
	ioe_destroy(e);
	for (unsigned long n = 0; n < reads; n += (unsigned long)step) {
		struct state s;
		e = engine(out_img);
		c.read_fault = (long)n;
		t->tried++;
		if (repair_fn(e, &c, &st) == 0) {
			state_of(e, &s);
			if (s.check_exit)
				failure("repair: input read %lu of %lu fails (%s): the repair succeeds "
					"but its output does not check clean",
					n, reads, strerror(-err));
		}
		ioe_destroy(e);
	}
}

/*----------------------------------------------------------------*/

static void usage(void)
{
	fputs("usage: thin_faults [--errno EIO|ENOSPC] [--step K] check|dump|clear IMAGE\n"
	      "       thin_faults [...] restore XML IMAGE | repair IN IMAGE\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "errno", required_argument, NULL, 'e' },
		{ "step", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int errs[2] = { -EIO, -ENOSPC }, nerr = 2, c;
	struct image a = { 0 }, b = { 0 };
	const char *op;

	setvbuf(stdout, NULL, _IOLBF, 0);   /* the lines survive an abort */
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'e') {
			nerr = 1;
			if (!strcmp(optarg, "EIO"))
				errs[0] = -EIO;
			else if (!strcmp(optarg, "ENOSPC"))
				errs[0] = -ENOSPC;
			else
				usage();
		} else if (c == 's') {
			step = atol(optarg);
			if (step < 1)
				usage();
		} else {
			usage();
		}
	}
	if (argc - optind < 2)
		usage();
	op = argv[optind];
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (int i = 0; i < nerr; i++) {
		struct tally t = { 0, nr_failures };
		const char *en = errs[i] == -EIO ? "EIO" : "ENOSPC";

		if (!strcmp(op, "check") || !strcmp(op, "dump") || !strcmp(op, "clear")) {
			load(argv[optind + 1], &a);
			if (!strcmp(op, "check"))
				op_check(&a, errs[i], &t);
			else if (!strcmp(op, "dump"))
				op_dump(&a, errs[i], &t);
			else
				op_clear(&a, errs[i], &t);
		} else if (!strcmp(op, "restore") && argc - optind == 3) {
			load(argv[optind + 2], &b);
			writer_faults("restore", &b, restore_fn, argv[optind + 1], errs[i], &t);
		} else if (!strcmp(op, "repair") && argc - optind == 3) {
			struct repair_ctx rc = { &a, errs[i], -1 };
			load(argv[optind + 1], &a);
			load(argv[optind + 2], &b);
			op_repair_reads(&a, &b, errs[i], &t);
			writer_faults("repair", &b, repair_fn, &rc, errs[i], &t);
		} else {
			usage();
		}
		printf("%s %s: %lu faults tried, %d failures\n", op, en, t.tried,
		       nr_failures - t.failures_before);
		free(a.data);
		free(b.data);
		a.data = b.data = NULL;
	}
	return nr_failures ? 1 : 0;
}
