#include "names/session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "names/names.h"
#include "names/reconcile.h"
#include "thin/pool_tag.h"
#include "thin/view.h"
#include "util/cli.h"
#include "util/parse.h"

struct ctx {
	const struct thin_names_opts *o;
	FILE *out;
	char *msg;
	size_t msglen;
	struct thin_view v;
	int have_view;
	struct thin_names_table t;
	int have_table;
	char path[4096];
	int lock;
};

static int fail(struct ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct ctx *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, c->msglen, fmt, ap);
	va_end(ap);
	return code;
}

static int usage_error(struct ctx *c, const char *msg)
{
	snprintf(c->msg, c->msglen, "%s", msg ? msg : "");
	return TN_USAGE;
}

static void fputc_out(struct ctx *c, int ch)
{
	fputc(ch, c->out);
}

int thin_names_valid_utf8(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned ch = p[i];
		size_t need = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3
			    : (ch >> 3) == 30 ? 4 : 0;

		if (!need || i + need > n || (need > 1 && ch < 0xc2))
			return 0;
		for (size_t k = 1; k < need; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		i += need;
	}
	return 1;
}


/*----------------------------------------------------------------*/
/* Pool and table */

static int open_pool(struct ctx *c)
{
	char msg[512];

	if (thin_view_open(c->o->md, c->o->use_snap, 0, &c->v, msg, sizeof(msg)) < 0)
		return fail(c, TN_METADATA, "%s", msg);
	c->have_view = 1;
	return 0;
}

static const uint8_t *pool_uuid(const struct ctx *c)
{
	return c->v.md->sb.uuid;
}

static int table_path(struct ctx *c)
{
	if (c->o->table) {
		snprintf(c->path, sizeof(c->path), "%s", c->o->table);
		return 0;
	}
	if (!thin_tag_is_valid(pool_uuid(c)))
		return fail(c, TN_BINDING, "the pool has no tag (run 'thin_names %s tag' while it is "
			    "inactive, or give --table)", c->o->md);
	thin_names_default_path(pool_uuid(c), c->path, sizeof(c->path));
	return 0;
}

/* Loads the table; a missing one is empty when may_create. */
static int load_table(struct ctx *c, int may_create)
{
	char msg[300];
	int r = thin_names_load(c->path, &c->t, msg, sizeof(msg));

	if (r == -ENOENT && may_create) {
		thin_names_init(&c->t);
		memcpy(c->t.tag, pool_uuid(c), THIN_TAG_LEN);
		c->t.data_block_size = c->v.sb.data_block_size;
		c->have_table = 1;
		return 0;
	}
	if (r == -ENOENT)
		return fail(c, TN_NOT_FOUND, "%s: no such table", c->path);
	if (r == -EILSEQ)
		return fail(c, TN_CORRUPT, "%s: table corrupt (%s); its previous generation is %s.prev",
			    c->path, msg, c->path);
	if (r < 0)
		return fail(c, TN_CORRUPT, "%s", msg);
	c->have_table = 1;
	return 0;
}

static int require_bound(struct ctx *c)
{
	enum thin_names_binding b;

	if (!thin_tag_is_valid(pool_uuid(c)))
		return fail(c, TN_BINDING, "unbound: the pool has no tag%s", thin_names_bind(&c->t,
			    pool_uuid(c), c->v.sb.data_block_size, &c->v.devs) == TMN_BOUND_FINGERPRINT
			    ? " (the table's fingerprint matches: run 'thin_names rebind')" : "");
	if (!memcmp(c->t.tag, pool_uuid(c), THIN_TAG_LEN))
		return 0;
	b = thin_names_bind(&c->t, pool_uuid(c), c->v.sb.data_block_size, &c->v.devs);
	return fail(c, TN_BINDING, "unbound: the table belongs to another pool tag%s",
		    b == TMN_BOUND_FINGERPRINT ? " (its fingerprint matches: run 'thin_names rebind')"
					       : "");
}

/* Pool, table path, lock, table (created when absent), binding, generation. */
static int begin_write(struct ctx *c, int may_create)
{
	int r = open_pool(c);

	if (r)
		return r;
	r = table_path(c);
	if (r)
		return r;
	if (!thin_tag_is_valid(pool_uuid(c)))
		return fail(c, TN_BINDING, "the pool has no tag (run 'thin_names %s tag' while it is "
			    "inactive)", c->o->md);
	if (may_create) {
		r = thin_names_make_dir(c->path);
		if (r < 0)
			return fail(c, TN_PRECOND, "%s: cannot create its directory: %s", c->path,
				    strerror(-r));
	}
	c->lock = thin_names_lock(c->path, c->o->wait_ms);
	if (c->lock == -ETIMEDOUT)
		return fail(c, TN_PRECOND, "%s.lock: timed out waiting for the table lock", c->path);
	if (c->lock < 0)
		return fail(c, TN_PRECOND, "%s.lock: %s", c->path, strerror(-c->lock));
	r = load_table(c, may_create);
	if (r)
		return r;
	r = require_bound(c);
	if (r)
		return r;
	if (c->o->have_gen && c->o->if_gen != c->t.generation)
		return fail(c, TN_PRECOND, "generation is %" PRIu64 ", not %" PRIu64, c->t.generation,
			    c->o->if_gen);
	return 0;
}

static int commit(struct ctx *c)
{
	char msg[512];

	c->t.generation++;
	c->t.bound_trans_id = c->v.sb.trans_id;
	if (thin_names_commit(c->path, &c->t, c->o->crash_hook, c->o->tmn_hook_ctx, msg,
			      sizeof(msg)) < 0)
		return fail(c, TN_PRECOND, "%s", msg);
	if (c->o->json)
		fprintf(c->out, "{\"generation\":%" PRIu64 "}\n", c->t.generation);
	return 0;
}

static int arg_id(struct ctx *c, uint64_t *id)
{
	if (c->o->nargs != 1 || parse_u64(c->o->args[0], id) < 0 || *id > THIN_MAX_DEV_ID)
		return usage_error(c, "expected one DEV_ID (0 to 16777215)");
	return 0;
}

static void stamp_from_pool(const struct ctx *c, struct thin_names_entry *e)
{
	const struct thin_dev *d = thin_view_find(&c->v, e->dev_id);

	e->transaction = d ? d->details.transaction_id : TMN_TRANS_UNKNOWN;
	e->creation_time = d ? d->details.creation_time : 0;
}

/*----------------------------------------------------------------*/
/* Commands that write */

static int cmd_set(struct ctx *c)
{
	struct thin_names_entry e = { 0 };
	uint64_t id;
	int r = arg_id(c, &id);

	if (r)
		return r;
	if (!c->o->blob)
		return usage_error(c, "set needs --name, --blob-hex or --blob-file");
	r = begin_write(c, 1);
	if (r)
		return r;
	if (!thin_view_find(&c->v, id) && !c->o->pending && !c->o->allow_absent)
		return fail(c, TN_PRECOND, "thin id %" PRIu64 " is not in the pool (use --pending for "
			    "a device about to be created)", id);
	if (c->o->blob_len > c->t.blob_max)
		return fail(c, TN_PRECOND, "the name is %zu bytes, more than the table's %u",
			    c->o->blob_len, c->t.blob_max);
	e.dev_id = (uint32_t)id;
	e.blob_len = (uint16_t)c->o->blob_len;
	e.blob = (uint8_t *)c->o->blob;
	e.flags = (c->o->blob_utf8 ? TMN_E_UTF8 : 0) | (c->o->pending ? TMN_E_PENDING_CREATE : 0);
	stamp_from_pool(c, &e);
	if (thin_names_put(&c->t, &e) < 0)
		return fail(c, TN_PRECOND, "out of memory");
	return commit(c);
}

static int cmd_flag(struct ctx *c, const char *cmd)
{
	struct thin_names_entry *e;
	uint64_t id;
	int r = arg_id(c, &id);

	if (r)
		return r;
	r = begin_write(c, 0);
	if (r)
		return r;
	e = thin_names_find(&c->t, id);
	if (!e)
		return fail(c, TN_NOT_FOUND, "no entry for thin id %" PRIu64, id);
	if (!strcmp(cmd, "confirm")) {
		if (!thin_view_find(&c->v, id))
			return fail(c, TN_PRECOND, "thin id %" PRIu64 " is not in the pool yet", id);
		e->flags &= (uint16_t)~TMN_E_PENDING_CREATE;
		stamp_from_pool(c, e);
	} else if (!strcmp(cmd, "mark-delete")) {
		e->flags = (uint16_t)((e->flags & ~TMN_E_PENDING_CREATE) | TMN_E_PENDING_DELETE);
	} else {
		thin_names_remove(&c->t, id);
	}
	return commit(c);
}

static int cmd_gc(struct ctx *c)
{
	size_t kept = 0, dropped = 0;
	int r = begin_write(c, 0);

	if (r)
		return r;
	for (size_t i = 0; i < c->t.nr; i++) {
		struct thin_names_entry *e = &c->t.e[i];

		if (thin_view_find(&c->v, e->dev_id) || (e->flags & TMN_E_PENDING_CREATE)) {
			c->t.e[kept++] = *e;
			continue;
		}
		fprintf(c->out, "%s %" PRIu32 "\n", c->o->dry_run ? "would drop" : "dropped", e->dev_id);
		if (c->o->dry_run) {
			c->t.e[kept++] = *e;
			continue;
		}
		free(e->blob);
		dropped++;
	}
	c->t.nr = kept;
	if (c->o->dry_run || !dropped)
		return 0;
	return commit(c);
}

static int cmd_import(struct ctx *c)
{
	struct thin_records recs;
	char msg[512];
	int r;

	if (c->o->nargs != 1)
		return usage_error(c, "import needs one FILE");
	if (thin_records_load(c->o->args[0], &recs, msg, sizeof(msg)) < 0)
		return fail(c, TN_PRECOND, "%s", msg);
	r = begin_write(c, 1);
	if (r)
		goto out;
	if (c->o->replace)
		while (c->t.nr)
			thin_names_remove(&c->t, c->t.e[c->t.nr - 1].dev_id);
	for (size_t i = 0; i < recs.nr && !r; i++) {
		const struct thin_record *rec = &recs.r[i];
		struct thin_names_entry e = { .dev_id = (uint32_t)rec->dev_id,
					      .blob_len = (uint16_t)rec->name_len,
					      .blob = (uint8_t *)rec->name };

		if (rec->name_len > c->t.blob_max) {
			r = fail(c, TN_PRECOND, "line %u: name longer than %u bytes", rec->line,
				 c->t.blob_max);
			break;
		}
		e.flags = (thin_names_valid_utf8(e.blob, e.blob_len) ? TMN_E_UTF8 : 0) |
			  (rec->pending ? TMN_E_PENDING_CREATE : 0);
		stamp_from_pool(c, &e);
		if (rec->has_stamp) {
			e.transaction = rec->transaction;
			e.creation_time = rec->creation_time;
		}
		if (thin_names_put(&c->t, &e) < 0)
			r = fail(c, TN_PRECOND, "out of memory");
	}
	if (!r)
		r = commit(c);
out:
	thin_records_release(&recs);
	return r;
}

/*----------------------------------------------------------------*/
/* Tag */

static int write_tag(struct ctx *c, const uint8_t *tag)
{
	char msg[512], s[THIN_TAG_STR];
	int r = thin_tag_write(c->o->md, tag, c->o->crash_hook, c->o->tag_hook_ctx, msg, sizeof(msg));

	if (r == -EBUSY)
		return fail(c, TN_PRECOND, "%s", msg);
	if (r < 0)
		return fail(c, TN_METADATA, "%s", msg);
	thin_tag_format(tag, s, sizeof(s));
	fprintf(c->out, "%s\n", s);
	return 0;
}

static int cmd_tag(struct ctx *c)
{
	uint8_t tag[THIN_TAG_LEN];
	char s[THIN_TAG_STR];
	int r;

	if (c->o->from_table)
		return -1;   /* = rebind */
	r = open_pool(c);
	if (r)
		return r;
	if (thin_tag_is_valid(pool_uuid(c)) && !c->o->newtag) {
		thin_tag_format(pool_uuid(c), s, sizeof(s));
		fprintf(c->out, "%s\n", s);
		return 0;
	}
	if (c->o->use_snap)
		return fail(c, TN_PRECOND, "the tag is written only while the pool is inactive");
	if (thin_tag_generate(tag) < 0)
		return fail(c, TN_PRECOND, "getrandom failed");
	thin_view_close(&c->v);
	c->have_view = 0;
	return write_tag(c, tag);
}

static int cmd_rebind(struct ctx *c)
{
	uint8_t tag[THIN_TAG_LEN];
	int r;

	if (!c->o->table)
		return usage_error(c, "rebind needs --table (the pool's tag is gone)");
	r = open_pool(c);
	if (r)
		return r;
	snprintf(c->path, sizeof(c->path), "%s", c->o->table);
	c->lock = thin_names_lock(c->path, c->o->wait_ms);
	if (c->lock < 0)
		return fail(c, TN_PRECOND, "%s.lock: %s", c->path, strerror(-c->lock));
	r = load_table(c, 0);
	if (r)
		return r;
	switch (thin_names_bind(&c->t, pool_uuid(c), c->v.sb.data_block_size, &c->v.devs)) {
	case TMN_BOUND_TAG:
		fprintf(c->out, "already bound\n");
		return 0;
	case TMN_BOUND_FINGERPRINT:
		break;
	default:
		return fail(c, TN_BINDING, "the table does not match this pool (tag and fingerprint "
			    "differ); not rebinding");
	}
	memcpy(tag, c->t.tag, THIN_TAG_LEN);
	if (!thin_tag_is_valid(tag)) {
		char msg[512];
		if (thin_tag_generate(tag) < 0)
			return fail(c, TN_PRECOND, "getrandom failed");
		memcpy(c->t.tag, tag, THIN_TAG_LEN);
		c->t.generation++;
		if (thin_names_commit(c->path, &c->t, NULL, NULL, msg, sizeof(msg)) < 0)
			return fail(c, TN_PRECOND, "%s", msg);
	}
	thin_view_close(&c->v);
	c->have_view = 0;
	return write_tag(c, tag);
}

/*----------------------------------------------------------------*/
/* Readers */

static void put_blob(struct ctx *c, const struct thin_names_entry *e, int json, int hex)
{
	if (hex || (!(e->flags & TMN_E_UTF8) && json)) {
		if (json)
			fputc_out(c, '"');
		for (size_t i = 0; i < e->blob_len; i++)
			fprintf(c->out, "%02x", e->blob[i]);
		if (json)
			fputc_out(c, '"');
		return;
	}
	if (json)
		fputc_out(c, '"');
	for (size_t i = 0; i < e->blob_len; i++) {
		unsigned ch = e->blob[i];
		if (json && (ch == '"' || ch == '\\'))
			fprintf(c->out, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f || (!(e->flags & TMN_E_UTF8) && ch >= 0x80))
			fprintf(c->out, json ? "\\u%04x" : "\\x%02x", ch);
		else if (!json && ch == '\\')
			fprintf(c->out, "\\\\");
		else
			fputc_out(c, (int)ch);
	}
	if (json)
		fputc_out(c, '"');
}

static const char *entry_state(const struct thin_names_entry *e)
{
	return e->flags & TMN_E_PENDING_CREATE ? "pending-create"
	       : e->flags & TMN_E_PENDING_DELETE ? "pending-delete" : "settled";
}

static const char *incarnation(const struct ctx *c, const struct thin_names_entry *e)
{
	const struct thin_dev *d = thin_view_find(&c->v, e->dev_id);

	if (!d || e->transaction == TMN_TRANS_UNKNOWN)
		return "-";
	return d->details.transaction_id == e->transaction &&
	       d->details.creation_time == e->creation_time ? "ok" : "mismatch";
}

static int begin_read(struct ctx *c)
{
	int r = open_pool(c);

	if (!r)
		r = table_path(c);
	if (!r)
		r = load_table(c, 0);
	if (!r)
		r = require_bound(c);
	return r;
}

static int cmd_list(struct ctx *c)
{
	int r = begin_read(c);

	if (r)
		return r;
	if (c->o->json)
		fprintf(c->out, "{\"generation\":%" PRIu64 ",\"entries\":[", c->t.generation);
	for (size_t i = 0; i < c->t.nr; i++) {
		const struct thin_names_entry *e = &c->t.e[i];
		int present = thin_view_find(&c->v, e->dev_id) != NULL;

		if (c->o->json) {
			fprintf(c->out, "%s\n {\"dev_id\":%" PRIu32 ",\"present\":%s,\"state\":\"%s\","
			       "\"incarnation\":\"%s\",\"%s\":", i ? "," : "", e->dev_id,
			       present ? "true" : "false", entry_state(e), incarnation(c, e),
			       e->flags & TMN_E_UTF8 ? "name" : "blob_hex");
			put_blob(c, e, 1, 0);
			fprintf(c->out, "}");
			continue;
		}
		fprintf(c->out, "%" PRIu32 "\t%s\t%s\t%s\t", e->dev_id, present ? "present" : "absent",
		       entry_state(e), incarnation(c, e));
		put_blob(c, e, 0, !(e->flags & TMN_E_UTF8));
		fprintf(c->out, "\n");
	}
	if (c->o->json)
		fprintf(c->out, "%s]}\n", c->t.nr ? "\n" : "");
	return 0;
}

static int cmd_get(struct ctx *c)
{
	const struct thin_names_entry *e;
	uint64_t id;
	int r = arg_id(c, &id);

	if (!r)
		r = begin_read(c);
	if (r)
		return r;
	e = thin_names_find(&c->t, id);
	if (!e)
		return fail(c, TN_NOT_FOUND, "no entry for thin id %" PRIu64, id);
	if (c->o->raw) {
		fwrite(e->blob, 1, e->blob_len, c->out);
		return 0;
	}
	put_blob(c, e, 0, c->o->hex || !(e->flags & TMN_E_UTF8));
	fprintf(c->out, "\n");
	return 0;
}

static int cmd_export(struct ctx *c)
{
	int r;

	if (c->o->json)
		return cmd_list(c);
	r = begin_read(c);
	if (r)
		return r;
	/* records format: thin_reconcile --records and import read it back */
	for (size_t i = 0; i < c->t.nr; i++) {
		const struct thin_names_entry *e = &c->t.e[i];

		fprintf(c->out, "%" PRIu32 "\t", e->dev_id);
		for (size_t k = 0; k < e->blob_len; k++) {
			unsigned ch = e->blob[k];
			if (ch == '\t')
				fprintf(c->out, "\\t");
			else if (ch == '\n')
				fprintf(c->out, "\\n");
			else if (ch == '\\')
				fprintf(c->out, "\\\\");
			else if (ch < 0x20 || ch == 0x7f || !(e->flags & TMN_E_UTF8))
				fprintf(c->out, "\\x%02x", ch);
			else
				fputc_out(c, (int)ch);
		}
		if (e->transaction == TMN_TRANS_UNKNOWN)
			fprintf(c->out, "\t-\t-");
		else
			fprintf(c->out, "\t%" PRIu64 "\t%" PRIu32, e->transaction, e->creation_time);
		fprintf(c->out, "%s\n", e->flags & TMN_E_PENDING_CREATE ? "\tpending" : "");
	}
	return 0;
}

/*----------------------------------------------------------------*/

int thin_names_session(const struct thin_names_opts *o, const char *cmd, FILE *out, char *msg,
		       size_t msglen)
{
	struct ctx c = { .o = o, .out = out, .msg = msg, .msglen = msglen, .lock = -1 };
	int r;

	if (!strcmp(cmd, "list"))
		r = o->nargs ? usage_error(&c, "list takes no arguments") : cmd_list(&c);
	else if (!strcmp(cmd, "get"))
		r = cmd_get(&c);
	else if (!strcmp(cmd, "set"))
		r = cmd_set(&c);
	else if (!strcmp(cmd, "confirm") || !strcmp(cmd, "mark-delete") || !strcmp(cmd, "delete"))
		r = cmd_flag(&c, cmd);
	else if (!strcmp(cmd, "tag"))
		r = cmd_tag(&c);
	else if (!strcmp(cmd, "rebind"))
		r = cmd_rebind(&c);
	else if (!strcmp(cmd, "gc"))
		r = cmd_gc(&c);
	else if (!strcmp(cmd, "export"))
		r = cmd_export(&c);
	else if (!strcmp(cmd, "import"))
		r = cmd_import(&c);
	else
		r = usage_error(&c, "unknown command");
	if (r == -1)
		r = cmd_rebind(&c);
	if (fflush(out) != 0 && !r)
		r = fail(&c, TN_PRECOND, "write error: %s", strerror(errno));
	thin_names_unlock(c.lock);
	if (c.have_table)
		thin_names_release(&c.t);
	if (c.have_view)
		thin_view_close(&c.v);
	return r;
}

