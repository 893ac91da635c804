#include "cmd/edit.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "thin/metadata.h"
#include "thin/pool.h"
#include "util/parse.h"

enum msg_kind {
	M_CREATE_THIN,
	M_CREATE_SNAP,
	M_DELETE,
	M_SET_TRANSACTION_ID,
	M_RESERVE_SNAP,
	M_RELEASE_SNAP,
	M_SET_NEEDS_CHECK,
	M_CLEAR_NEEDS_CHECK,
	M_RENAME,
	M_GROW_METADATA,
	M_GROW_DATA,
};

struct msg_def {
	const char *name;
	enum msg_kind kind;
	unsigned min_args, max_args;
	unsigned dev_args;          /* how many leading arguments are device ids */
	const char *syntax;
};

static const struct msg_def defs[] = {
	{ "create_thin", M_CREATE_THIN, 1, 1, 1, "create_thin ID" },
	{ "create_snap", M_CREATE_SNAP, 2, 2, 2, "create_snap ID ORIGIN_ID" },
	{ "delete", M_DELETE, 1, 1, 1, "delete ID" },
	{ "set_transaction_id", M_SET_TRANSACTION_ID, 2, 2, 0, "set_transaction_id OLD NEW" },
	{ "reserve_metadata_snap", M_RESERVE_SNAP, 0, 0, 0, "reserve_metadata_snap" },
	{ "release_metadata_snap", M_RELEASE_SNAP, 0, 0, 0, "release_metadata_snap" },
	{ "set_needs_check", M_SET_NEEDS_CHECK, 0, 0, 0, "set_needs_check" },
	{ "clear_needs_check", M_CLEAR_NEEDS_CHECK, 0, 0, 0, "clear_needs_check" },
	{ "rename", M_RENAME, 2, 2, 2, "rename ID NEW_ID" },
	{ "grow_metadata", M_GROW_METADATA, 0, 1, 0, "grow_metadata [NR_BLOCKS]" },
	{ "grow_data", M_GROW_DATA, 1, 1, 0, "grow_data NR_BLOCKS" },
};

#define MAX_ARGS 2

struct msg {
	const struct msg_def *def;
	uint64_t a[MAX_ARGS];
	unsigned nr;
	char text[160];
};

/*----------------------------------------------------------------*/
/* parsing */

static int is_number(const char *s, size_t len)
{
	if (!len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static const struct msg_def *find_def(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		if (strlen(defs[i].name) == len && !strncasecmp(defs[i].name, s, len))
			return &defs[i];
	return NULL;
}

struct parser {
	struct msg *msgs;
	size_t nr, cap;
	char *msg;
	size_t msglen;
};

static void append_text(struct msg *m, const char *s, size_t len)
{
	size_t used = strlen(m->text);

	if (used + len + 2 >= sizeof(m->text))
		return;
	if (used)
		m->text[used++] = ' ';
	memcpy(m->text + used, s, len);
	m->text[used + len] = '\0';
}

static int add_word(struct parser *ps, const char *s, size_t len)
{
	struct msg *m;
	uint64_t v;

	if (!is_number(s, len)) {
		const struct msg_def *d = find_def(s, len);

		if (!d) {
			snprintf(ps->msg, ps->msglen, "unknown message '%.*s'", (int)len, s);
			return -EINVAL;
		}
		if (ps->nr == ps->cap) {
			size_t cap = ps->cap ? ps->cap * 2 : 8;
			struct msg *n = realloc(ps->msgs, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			ps->msgs = n;
			ps->cap = cap;
		}
		m = &ps->msgs[ps->nr++];
		memset(m, 0, sizeof(*m));
		m->def = d;
		append_text(m, d->name, strlen(d->name));
		return 0;
	}
	if (!ps->nr) {
		snprintf(ps->msg, ps->msglen, "a message must come before '%.*s'", (int)len, s);
		return -EINVAL;
	}
	m = &ps->msgs[ps->nr - 1];
	append_text(m, s, len);
	if (m->nr == m->def->max_args) {
		snprintf(ps->msg, ps->msglen, "'%s': too many arguments (%s)", m->text,
			 m->def->syntax);
		return -EINVAL;
	}
	if (parse_u64_n(s, len, &v) < 0) {
		snprintf(ps->msg, ps->msglen, "'%s': number out of range: %.*s", m->text, (int)len, s);
		return -EINVAL;
	}
	if (m->nr < m->def->dev_args && v > THIN_MAX_DEV_ID) {
		snprintf(ps->msg, ps->msglen, "'%s': invalid device id %.*s (0 to %llu)", m->text,
			 (int)len, s, THIN_MAX_DEV_ID);
		return -EINVAL;
	}
	m->a[m->nr++] = v;
	return 0;
}

static int parse(const struct thin_edit_opts *o, struct parser *ps)
{
	for (size_t w = 0; w < o->nr_words; w++) {
		const char *s = o->words[w];

		while (*s) {
			size_t len;
			int r;

			while (*s && isspace((unsigned char)*s))
				s++;
			len = 0;
			while (s[len] && !isspace((unsigned char)s[len]))
				len++;
			if (!len)
				break;
			r = add_word(ps, s, len);
			if (r < 0)
				return r;
			s += len;
		}
	}
	if (!ps->nr) {
		snprintf(ps->msg, ps->msglen, "no message given");
		return -EINVAL;
	}
	for (size_t i = 0; i < ps->nr; i++) {
		const struct msg *m = &ps->msgs[i];

		if (m->nr < m->def->min_args) {
			snprintf(ps->msg, ps->msglen, "'%s': missing argument (%s)", m->text,
				 m->def->syntax);
			return -EINVAL;
		}
	}
	return 0;
}

/*----------------------------------------------------------------*/
/* running */

struct run {
	struct thin_pool *p;
	FILE *out;
	int report;
	char *msg;
	size_t msglen;
};

static int fail(struct run *x, const struct msg *m, const char *fmt, unsigned long long a,
		unsigned long long b)
{
	char why[200];

	snprintf(why, sizeof(why), fmt, a, b);
	snprintf(x->msg, x->msglen, "'%s': %s", m->text, why);
	return -EINVAL;
}

/* A library error as a message (those a message cannot explain itself). */
static int fail_errno(struct run *x, const struct msg *m, int r)
{
	const char *why;

	switch (r) {
	case -ENOSPC:
		why = "out of metadata space";
		break;
	case -EILSEQ:
	case -ENOTBLK:
	case BC_WRONG_TYPE:
		why = "damaged metadata (run thin_check)";
		break;
	case -ENOMEM:
		why = "out of memory";
		break;
	case -EIO:
		why = "i/o error";
		break;
	default:
		why = strerror(-r);
		break;
	}
	snprintf(x->msg, x->msglen, "'%s': %s", m->text, why);
	return r;
}

static void say(struct run *x, const struct msg *m, const char *fmt, unsigned long long a,
		unsigned long long b, unsigned long long c)
{
	if (!x->report)
		return;
	fprintf(x->out, "%s: ", m->text);
	fprintf(x->out, fmt, a, b, c);
	fputc('\n', x->out);
}

static int do_create(struct run *x, const struct msg *m)
{
	const struct thin_sb *sb = thin_pool_sb(x->p);
	struct thin_details d;
	int r;

	if (m->def->kind == M_CREATE_THIN) {
		r = thin_pool_create_thin(x->p, m->a[0]);
		if (r == -EEXIST)
			return fail(x, m, "device %llu already exists", m->a[0], 0);
		if (r < 0)
			return fail_errno(x, m, r);
		say(x, m, "new thin device %llu (transaction %llu, time %llu)", m->a[0], sb->trans_id,
		    sb->time);
		return 0;
	}
	r = thin_pool_create_snap(x->p, m->a[0], m->a[1]);
	if (r == -EEXIST)
		return fail(x, m, "device %llu already exists", m->a[0], 0);
	if (r == -ENODATA)
		return fail(x, m, "origin device %llu does not exist", m->a[1], 0);
	if (r < 0)
		return fail_errno(x, m, r);
	if (thin_pool_device(x->p, m->a[0], &d, NULL) == 0)
		say(x, m, "new snapshot %llu of device %llu (%llu mapped blocks)", m->a[0], m->a[1],
		    d.mapped_blocks);
	say(x, m, "time %llu -> %llu", sb->time - 1, sb->time, 0);
	return 0;
}

static int do_delete(struct run *x, const struct msg *m)
{
	uint64_t before = thin_pool_data_allocated(x->p);
	struct thin_details d;
	int r = thin_pool_device(x->p, m->a[0], &d, NULL);

	if (r == -ENODATA)
		return fail(x, m, "device %llu does not exist", m->a[0], 0);
	if (r < 0)
		return fail_errno(x, m, r);
	r = thin_pool_delete(x->p, m->a[0]);
	if (r < 0)
		return fail_errno(x, m, r);
	say(x, m, "device %llu deleted (%llu mapped blocks, %llu data blocks freed)", m->a[0],
	    d.mapped_blocks, before - thin_pool_data_allocated(x->p));
	return 0;
}

static int do_set_transaction_id(struct run *x, const struct msg *m)
{
	uint64_t cur = thin_pool_sb(x->p)->trans_id;

	if (thin_pool_set_transaction_id(x->p, m->a[0], m->a[1]) < 0)
		return fail(x, m, "the transaction id is %llu, not %llu", cur, m->a[0]);
	say(x, m, "transaction id %llu -> %llu", m->a[0], m->a[1], 0);
	return 0;
}

static int do_snap(struct run *x, const struct msg *m)
{
	uint64_t held = thin_pool_sb(x->p)->held_root;
	int r;

	if (m->def->kind == M_RESERVE_SNAP) {
		r = thin_pool_reserve_metadata_snap(x->p);
		if (r == -EBUSY)
			return fail(x, m, "a metadata snapshot is already held (block %llu): "
				    "release it first", held, 0);
		if (r < 0)
			return fail_errno(x, m, r);
		say(x, m, "metadata snapshot at block %llu", thin_pool_sb(x->p)->held_root, 0, 0);
		return 0;
	}
	r = thin_pool_release_metadata_snap(x->p);
	if (r == -EINVAL)
		return fail(x, m, "no metadata snapshot is held", 0, 0);
	if (r < 0)
		return fail_errno(x, m, r);
	say(x, m, "metadata snapshot at block %llu released", held, 0, 0);
	return 0;
}

static int do_rename(struct run *x, const struct msg *m)
{
	int r = thin_pool_rename(x->p, m->a[0], m->a[1]);

	if (r == -ENODATA)
		return fail(x, m, "device %llu does not exist", m->a[0], 0);
	if (r == -EEXIST)
		return fail(x, m, "device %llu already exists", m->a[1], 0);
	if (r < 0)
		return fail_errno(x, m, r);
	say(x, m, "device %llu is now device %llu", m->a[0], m->a[1], 0);
	return 0;
}

static int do_grow(struct run *x, const struct msg *m)
{
	int meta = m->def->kind == M_GROW_METADATA;
	uint64_t cur = meta ? thin_pool_metadata_nr_blocks(x->p) : thin_pool_data_nr_blocks(x->p);
	uint64_t dev = thin_pool_device_blocks(x->p);
	uint64_t want = m->nr ? m->a[0] : dev;
	int r;

	if (want < cur)
		return fail(x, m, "cannot shrink the space map (%llu blocks now, %llu asked)", cur,
			    want);
	if (meta && want > dev)
		return fail(x, m, "the metadata device has room for %llu blocks, not %llu", dev,
			    want);
	r = meta ? thin_pool_grow_metadata(x->p, want) : thin_pool_grow_data(x->p, want);
	if (r == -EFBIG)
		return fail(x, m, "%llu data blocks is more than 2^40", want, 0);
	if (r < 0)
		return fail_errno(x, m, r);
	say(x, m, meta ? "metadata space map %llu -> %llu blocks" : "data space map %llu -> %llu blocks",
	    cur, want, 0);
	return 0;
}

static int run_one(struct run *x, const struct msg *m)
{
	switch (m->def->kind) {
	case M_CREATE_THIN:
	case M_CREATE_SNAP:
		return do_create(x, m);
	case M_DELETE:
		return do_delete(x, m);
	case M_SET_TRANSACTION_ID:
		return do_set_transaction_id(x, m);
	case M_RESERVE_SNAP:
	case M_RELEASE_SNAP:
		return do_snap(x, m);
	case M_SET_NEEDS_CHECK:
	case M_CLEAR_NEEDS_CHECK:
		thin_pool_set_needs_check(x->p, m->def->kind == M_SET_NEEDS_CHECK);
		say(x, m, m->def->kind == M_SET_NEEDS_CHECK ? "needs_check flag set"
							    : "needs_check flag cleared", 0, 0, 0);
		return 0;
	case M_RENAME:
		return do_rename(x, m);
	case M_GROW_METADATA:
	case M_GROW_DATA:
		return do_grow(x, m);
	}
	return -EINVAL;
}

static void summary(struct run *x, uint64_t meta0, uint64_t data0, uint64_t mnb0, uint64_t dnb0,
		    int dry)
{
	if (!x->report)
		return;
	fprintf(x->out, "metadata blocks in use: %llu -> %llu (of %llu",
		(unsigned long long)meta0, (unsigned long long)thin_pool_metadata_allocated(x->p),
		(unsigned long long)mnb0);
	if (mnb0 != thin_pool_metadata_nr_blocks(x->p))
		fprintf(x->out, " -> %llu", (unsigned long long)thin_pool_metadata_nr_blocks(x->p));
	fprintf(x->out, ")\ndata blocks in use: %llu -> %llu (of %llu",
		(unsigned long long)data0, (unsigned long long)thin_pool_data_allocated(x->p),
		(unsigned long long)dnb0);
	if (dnb0 != thin_pool_data_nr_blocks(x->p))
		fprintf(x->out, " -> %llu", (unsigned long long)thin_pool_data_nr_blocks(x->p));
	fprintf(x->out, ")\n%s\n", dry ? "dry run: nothing written" : "committed");
}

static int run_all(struct run *x, const struct msg *msgs, size_t nr, int dry)
{
	uint64_t meta0 = thin_pool_metadata_allocated(x->p), data0 = thin_pool_data_allocated(x->p);
	uint64_t mnb0 = thin_pool_metadata_nr_blocks(x->p), dnb0 = thin_pool_data_nr_blocks(x->p);
	int r;

	for (size_t i = 0; i < nr; i++) {
		const struct msg *m = &msgs[i];
		enum msg_kind k = m->def->kind;

		if ((thin_pool_sb(x->p)->flags & THIN_NEEDS_CHECK) && k != M_SET_NEEDS_CHECK &&
		    k != M_CLEAR_NEEDS_CHECK) {
			snprintf(x->msg, x->msglen,
				 "'%s': the needs_check flag is set: check the metadata "
				 "(thin_check), then give clear_needs_check first", m->text);
			return -EPERM;
		}
		r = run_one(x, m);
		if (r < 0)
			return r;
	}
	r = thin_pool_commit(x->p, dry);
	if (r == -ENOSPC) {
		snprintf(x->msg, x->msglen, "not enough free metadata space to commit the changes");
		return r;
	}
	if (r < 0) {
		snprintf(x->msg, x->msglen, "cannot commit: %s",
			 r == -EILSEQ ? "damaged metadata (run thin_check)" : strerror(-r));
		return r;
	}
	summary(x, meta0, data0, mnb0, dnb0, dry);
	return 0;
}

static int edit_md(struct thin_md *md, const struct parser *ps, const struct thin_edit_opts *o,
		   FILE *out, char *msg, size_t msglen)
{
	struct run x = { NULL, out, out && (o->dry_run || o->verbose), msg, msglen };
	int r = thin_pool_open(md, &x.p, msg, msglen);

	if (r >= 0)
		r = run_all(&x, ps->msgs, ps->nr, o->dry_run);
	thin_pool_close(x.p);
	return r;
}

int thin_edit_md(struct thin_md *md, const struct thin_edit_opts *o, FILE *out, char *msg,
		 size_t msglen)
{
	struct parser ps = { NULL, 0, 0, msg, msglen };
	int r;

	msg[0] = '\0';
	r = parse(o, &ps);
	if (r >= 0)
		r = edit_md(md, &ps, o, out, msg, msglen);
	free(ps.msgs);
	return r;
}

int thin_edit(const struct thin_edit_opts *o, FILE *out, char *msg, size_t msglen)
{
	struct parser ps = { NULL, 0, 0, msg, msglen };
	struct thin_md *md = NULL;
	int r;

	msg[0] = '\0';
	r = parse(o, &ps);
	if (r >= 0)
		r = thin_md_open(o->path, o->dry_run ? 0 : THIN_MD_WRITE, &md, msg, msglen);
	if (r >= 0)
		r = edit_md(md, &ps, o, out, msg, msglen);
	thin_md_close(md);
	free(ps.msgs);
	return r;
}
