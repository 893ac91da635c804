#include "xml/xml_reader.h"

#include "util/parse.h"

#include <errno.h>
#include <expat.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (1u << 20)
#define MAX_DEPTH 8

enum state { ST_TOP, ST_SB, ST_DEV, ST_DEF, ST_LEAF, ST_DONE };

struct reader {
	XML_Parser p;
	const struct ir_visitor *v;
	const char *name;
	char *err;
	size_t errlen;
	int r;                    /* first error, or 0 */
	int stopped;              /* IR_STOP */
	enum state st[MAX_DEPTH];
	int depth;
	unsigned long skipped;    /* lines handled by the fast path, never seen by expat */
	unsigned long fast_line;  /* line of the fast-path element being handled, or 0 */
	int in_comment;           /* the lines seen so far leave an unclosed "<!--" */
	/*
	 * What the fast path needs to prove that expat stands between two
	 * markup tokens in element content: bytes given to expat, the end of
	 * the last event it reported, and whether that was inside CDATA.
	 */
	uint64_t fed;
	uint64_t reported;
	int in_cdata;
};

/* Every handler notes how far expat has reported (see the fast path). */
static void seen(struct reader *rd)
{
	XML_Index i = XML_GetCurrentByteIndex(rd->p);
	int n = XML_GetCurrentByteCount(rd->p);

	if (i >= 0 && (uint64_t)i + (uint64_t)(n > 0 ? n : 0) > rd->reported)
		rd->reported = (uint64_t)i + (uint64_t)(n > 0 ? n : 0);
}

struct async;

static int read_file(const char *path, const struct ir_visitor *v, struct async *as,
		     unsigned long *fast_lines, char *err, size_t errlen);

static void as_attach(struct async *as, struct reader *rd);

static unsigned long cur_line(const struct reader *rd)
{
	if (rd->fast_line)
		return rd->fast_line;
	return (unsigned long)XML_GetCurrentLineNumber(rd->p) + rd->skipped;
}

__attribute__((format(printf, 3, 4))) static void fail(struct reader *rd, int r, const char *fmt,
							 ...)
{
	va_list ap;
	int n;

	if (rd->r)
		return;
	rd->r = r;
	n = snprintf(rd->err, rd->errlen, "%s:%lu: ", rd->name, cur_line(rd));
	if (n < 0 || (size_t)n >= rd->errlen)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(rd->err + n, rd->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	XML_StopParser(rd->p, XML_FALSE);
}

/* A visitor callback's result: stop on IR_STOP or an error. */
static void cb_result(struct reader *rd, int r)
{
	if (r == IR_STOP) {
		rd->stopped = 1;
		XML_StopParser(rd->p, XML_FALSE);
	} else if (r < 0) {
		if (rd->v->err && rd->v->err[0])
			fail(rd, r, "%s", rd->v->err);
		else
			fail(rd, r, "%s", strerror(-r));
	}
}

static void clear_cb_err(const struct reader *rd)
{
	if (rd->v->err && rd->v->errlen)
		rd->v->err[0] = '\0';
}

/*----------------------------------------------------------------*/
/* attributes */

enum atype { A_U64, A_U32, A_STR };

struct attr_spec {
	const char *name;
	enum atype type;
	int required;
};

struct attr_val {
	int present;
	uint64_t u;
	const char *s;
};

static int get_attrs(struct reader *rd, const char *elt, const XML_Char **atts,
		     const struct attr_spec *spec, unsigned n, struct attr_val *vals)
{
	memset(vals, 0, n * sizeof(*vals));
	for (; atts[0]; atts += 2) {
		unsigned i;
		for (i = 0; i < n && strcmp(spec[i].name, atts[0]); i++)
			;
		if (i == n) {
			fail(rd, -EINVAL, "unknown attribute '%s' in <%s>", atts[0], elt);
			return -1;
		}
		vals[i].present = 1;
		if (spec[i].type == A_STR) {
			vals[i].s = atts[1];
			continue;
		}
		if (parse_u64(atts[1], &vals[i].u) < 0 ||
		    (spec[i].type == A_U32 && vals[i].u > UINT32_MAX)) {
			fail(rd, -EINVAL, "bad value '%s' for attribute '%s' in <%s>", atts[1],
			     atts[0], elt);
			return -1;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (spec[i].required && !vals[i].present) {
			fail(rd, -EINVAL, "missing attribute '%s' in <%s>", spec[i].name, elt);
			return -1;
		}
	}
	return 0;
}

/*----------------------------------------------------------------*/
/* elements */

static const struct attr_spec sb_spec[] = {
	{ "uuid", A_STR, 0 },          { "time", A_U32, 1 },
	{ "transaction", A_U64, 1 },   { "flags", A_U32, 0 },
	{ "version", A_U32, 0 },       { "data_block_size", A_U32, 1 },
	{ "nr_data_blocks", A_U64, 1 }, { "metadata_snap", A_STR, 0 },
};

static const struct attr_spec dev_spec[] = {
	{ "dev_id", A_U64, 1 },        { "mapped_blocks", A_U64, 1 },
	{ "transaction", A_U64, 1 },   { "creation_time", A_U32, 1 },
	{ "snap_time", A_U32, 1 },
};

static const struct attr_spec single_spec[] = {
	{ "origin_block", A_U64, 1 }, { "data_block", A_U64, 1 }, { "time", A_U32, 1 },
};

static const struct attr_spec range_spec[] = {
	{ "origin_begin", A_U64, 1 }, { "data_begin", A_U64, 1 },
	{ "length", A_U64, 1 },       { "time", A_U32, 1 },
};

static const struct attr_spec name_spec[] = {
	{ "name", A_STR, 1 },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void start_sb(struct reader *rd, const XML_Char **atts)
{
	struct attr_val a[NELEM(sb_spec)];
	struct ir_superblock sb;
	uint64_t snap;

	if (get_attrs(rd, "superblock", atts, sb_spec, NELEM(sb_spec), a) < 0)
		return;
	memset(&sb, 0, sizeof(sb));
	sb.uuid = a[0].present ? a[0].s : "";
	sb.time = (uint32_t)a[1].u;
	sb.transaction = a[2].u;
	sb.has_flags = a[3].present;
	sb.flags = (uint32_t)a[3].u;
	sb.version = a[4].present ? (uint32_t)a[4].u : 2;
	sb.data_block_size = (uint32_t)a[5].u;
	sb.nr_data_blocks = a[6].u;
	if (a[7].present && strcmp(a[7].s, "none") && strcmp(a[7].s, "")) {
		if (parse_u64(a[7].s, &snap) < 0) {
			fail(rd, -EINVAL, "bad value '%s' for attribute 'metadata_snap' in <superblock>",
			     a[7].s);
			return;
		}
		sb.has_metadata_snap = 1;
		sb.metadata_snap = snap;
	}
	if (rd->v->begin_superblock) {
		clear_cb_err(rd);
		cb_result(rd, rd->v->begin_superblock(rd->v->ctx, &sb));
	}
}

static void start_dev(struct reader *rd, const XML_Char **atts)
{
	struct attr_val a[NELEM(dev_spec)];
	struct ir_device d;

	if (get_attrs(rd, "device", atts, dev_spec, NELEM(dev_spec), a) < 0)
		return;
	d.dev_id = a[0].u;
	d.mapped_blocks = a[1].u;
	d.transaction = a[2].u;
	d.creation_time = (uint32_t)a[3].u;
	d.snap_time = (uint32_t)a[4].u;
	if (rd->v->begin_device) {
		clear_cb_err(rd);
		cb_result(rd, rd->v->begin_device(rd->v->ctx, &d));
	}
}

static void start_single(struct reader *rd, const XML_Char **atts)
{
	struct attr_val a[NELEM(single_spec)];

	if (get_attrs(rd, "single_mapping", atts, single_spec, NELEM(single_spec), a) < 0)
		return;
	if (rd->v->single_map) {
		clear_cb_err(rd);
		cb_result(rd, rd->v->single_map(rd->v->ctx, a[0].u, a[1].u, (uint32_t)a[2].u));
	}
}

static void start_range(struct reader *rd, const XML_Char **atts)
{
	struct attr_val a[NELEM(range_spec)];

	if (get_attrs(rd, "range_mapping", atts, range_spec, NELEM(range_spec), a) < 0)
		return;
	if (rd->v->range_map) {
		clear_cb_err(rd);
		cb_result(rd, rd->v->range_map(rd->v->ctx, a[0].u, a[1].u, a[2].u,
					       (uint32_t)a[3].u));
	}
}

static void start_named(struct reader *rd, const char *elt, const XML_Char **atts,
			int (*cb)(void *, const char *))
{
	struct attr_val a[1];

	if (get_attrs(rd, elt, atts, name_spec, 1, a) < 0)
		return;
	if (cb) {
		clear_cb_err(rd);
		cb_result(rd, cb(rd->v->ctx, a[0].s));
	}
}

static void XMLCALL on_start(void *ctx, const XML_Char *name, const XML_Char **atts)
{
	struct reader *rd = ctx;
	enum state cur = rd->st[rd->depth], next;

	seen(rd);
	if (rd->r || rd->stopped)
		return;
	if (rd->depth + 1 >= MAX_DEPTH) {
		fail(rd, -EINVAL, "elements nested too deeply");
		return;
	}
	if (!strcmp(name, "superblock") && cur == ST_TOP) {
		next = ST_SB;
		start_sb(rd, atts);
	} else if (!strcmp(name, "device") && cur == ST_SB) {
		next = ST_DEV;
		start_dev(rd, atts);
	} else if (!strcmp(name, "def") && cur == ST_SB) {
		next = ST_DEF;
		start_named(rd, "def", atts, rd->v->begin_def);
	} else if (!strcmp(name, "range_mapping") && (cur == ST_DEV || cur == ST_DEF)) {
		next = ST_LEAF;
		start_range(rd, atts);
	} else if (!strcmp(name, "single_mapping") && (cur == ST_DEV || cur == ST_DEF)) {
		next = ST_LEAF;
		start_single(rd, atts);
	} else if (!strcmp(name, "ref") && cur == ST_DEV) {
		next = ST_LEAF;
		start_named(rd, "ref", atts, rd->v->ref);
	} else {
		static const char *const known[] = { "superblock", "device", "def", "range_mapping",
						     "single_mapping", "ref" };
		for (size_t i = 0; i < NELEM(known); i++)
			if (!strcmp(name, known[i])) {
				fail(rd, -EINVAL, "unexpected <%s> %s", name,
				     cur == ST_DONE ? "after </superblock>"
				     : cur == ST_TOP ? "outside <superblock>"
						     : "here");
				return;
			}
		fail(rd, -EINVAL, "unknown tag '%s'", name);
		return;
	}
	rd->st[++rd->depth] = next;
}

static void XMLCALL on_end(void *ctx, const XML_Char *name)
{
	struct reader *rd = ctx;
	enum state cur = rd->st[rd->depth];
	int (*cb)(void *) = NULL;

	(void)name;
	seen(rd);
	if (rd->r || rd->stopped)
		return;
	if (cur == ST_SB)
		cb = rd->v->end_superblock;
	else if (cur == ST_DEV)
		cb = rd->v->end_device;
	else if (cur == ST_DEF)
		cb = rd->v->end_def;
	rd->depth--;
	if (cur == ST_SB)
		rd->st[rd->depth] = ST_DONE;
	if (cb) {
		clear_cb_err(rd);
		cb_result(rd, cb(rd->v->ctx));
	}
}

static void XMLCALL on_text(void *ctx, const XML_Char *s, int len)
{
	struct reader *rd = ctx;

	seen(rd);
	if (rd->r || rd->stopped)
		return;
	for (int i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
			fail(rd, -EINVAL, "unexpected text");
			return;
		}
}

static void XMLCALL on_comment(void *ud, const XML_Char *text)
{
	struct reader *rd = ud;

	seen(rd);
	if (rd->r || rd->stopped || !rd->v->comment)
		return;
	clear_cb_err(rd);
	cb_result(rd, rd->v->comment(rd->v->ctx, text));
}

static void XMLCALL on_cdata_start(void *ud)
{
	struct reader *rd = ud;

	seen(rd);
	rd->in_cdata = 1;
}

static void XMLCALL on_cdata_end(void *ud)
{
	struct reader *rd = ud;

	seen(rd);
	rd->in_cdata = 0;
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
	(void)target;
	(void)data;
	seen(ud);
}

/*----------------------------------------------------------------*/

static int reader_init(struct reader *rd, const char *name, const struct ir_visitor *v, char *err,
		       size_t errlen)
{
	memset(rd, 0, sizeof(*rd));
	rd->name = name;
	rd->v = v;
	rd->err = err;
	rd->errlen = errlen;
	err[0] = '\0';
	rd->p = XML_ParserCreate(NULL);
	if (!rd->p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	XML_SetUserData(rd->p, rd);
	XML_SetElementHandler(rd->p, on_start, on_end);
	XML_SetCharacterDataHandler(rd->p, on_text);
	XML_SetCommentHandler(rd->p, on_comment);
	XML_SetCdataSectionHandler(rd->p, on_cdata_start, on_cdata_end);
	XML_SetProcessingInstructionHandler(rd->p, on_pi);
	return 0;
}

/* After XML_Parse*: records expat's own errors; returns non-zero to stop. */
static int check_status(struct reader *rd, enum XML_Status s)
{
	if (rd->r || rd->stopped)
		return 1;
	if (s == XML_STATUS_ERROR) {
		rd->r = -EINVAL;
		snprintf(rd->err, rd->errlen, "%s:%lu: %s", rd->name, cur_line(rd),
			 XML_ErrorString(XML_GetErrorCode(rd->p)));
		return 1;
	}
	return 0;
}

static int reader_finish(struct reader *rd)
{
	int r = rd->r;

	if (!r && !rd->stopped && rd->st[0] != ST_DONE) {
		r = -EINVAL;
		snprintf(rd->err, rd->errlen, "%s: incomplete source metadata", rd->name);
	}
	XML_ParserFree(rd->p);
	return r;
}

int xml_read_mem(const char *name, const void *buf, size_t len, const struct ir_visitor *v,
		 char *err, size_t errlen)
{
	struct reader rd;
	const char *p = buf;
	int r = reader_init(&rd, name, v, err, errlen);

	if (r < 0)
		return r;
	while (len > 0) {
		int n = len > READ_CHUNK ? (int)READ_CHUNK : (int)len;
		if (check_status(&rd, XML_Parse(rd.p, p, n, XML_FALSE)))
			return reader_finish(&rd);
		p += n;
		len -= (size_t)n;
	}
	check_status(&rd, XML_Parse(rd.p, "", 0, XML_TRUE));
	return reader_finish(&rd);
}

/*----------------------------------------------------------------*/
/*
 * Fast path.  The bulk of a dump is one mapping element per line in the
 * exact form thin_dump writes.  Such a line is decoded here and never
 * given to expat only when the parser state proves that it is element
 * content of a <device> or <def>: everything before it has been given to
 * expat, every byte of that has been reported in some event (no markup
 * token - a start tag, comment, processing instruction, CDATA marker,
 * DOCTYPE - is left open), the last event is not inside a CDATA section,
 * and the innermost open element is <device> or <def>.  Every other line
 * goes through expat, so expat still judges the document's
 * well-formedness (a skipped line is an empty element that cannot change
 * it).  Line numbers in messages count the skipped lines.
 */

static const char *num(const char *p, const char *end, uint64_t *out)
{
	p = parse_digits(p, end, out);
	if (!p || p >= end || *p != '"')
		return NULL;
	return p + 1;
}

static const char *lit(const char *p, const char *end, const char *s, size_t n)
{
	if ((size_t)(end - p) < n || memcmp(p, s, n))
		return NULL;
	return p + n;
}

#define LIT(p, end, s) lit(p, end, s, sizeof(s) - 1)

/* Parses one line [p, end) (end at the newline); 1 = mapping, 0 = not. */
static int fast_line(const char *p, const char *end, int *range, uint64_t v[4])
{
	const char *q;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	if ((q = LIT(p, end, "<single_mapping origin_block=\""))) {
		*range = 0;
		if (!(q = num(q, end, &v[0])) || !(q = LIT(q, end, " data_block=\"")) ||
		    !(q = num(q, end, &v[1])) || !(q = LIT(q, end, " time=\"")) ||
		    !(q = num(q, end, &v[2])))
			return 0;
	} else if ((q = LIT(p, end, "<range_mapping origin_begin=\""))) {
		*range = 1;
		if (!(q = num(q, end, &v[0])) || !(q = LIT(q, end, " data_begin=\"")) ||
		    !(q = num(q, end, &v[1])) || !(q = LIT(q, end, " length=\"")) ||
		    !(q = num(q, end, &v[2])) || !(q = LIT(q, end, " time=\"")) ||
		    !(q = num(q, end, &v[3])))
			return 0;
	} else {
		return 0;
	}
	return end - q == 2 && q[0] == '/' && q[1] == '>' && v[*range ? 3 : 2] <= UINT32_MAX;
}

static void fast_emit(struct reader *rd, int range, const uint64_t v[4])
{
	clear_cb_err(rd);
	if (range) {
		if (rd->v->range_map)
			cb_result(rd, rd->v->range_map(rd->v->ctx, v[0], v[1], v[2], (uint32_t)v[3]));
	} else if (rd->v->single_map) {
		cb_result(rd, rd->v->single_map(rd->v->ctx, v[0], v[1], (uint32_t)v[2]));
	}
}

struct feeder {
	struct reader *rd;
	unsigned long line;       /* current line number (1-based) */
};


static int feed(struct reader *rd, const char *p, size_t n, int final)
{
	while (n > 0 || final) {
		int k = n > READ_CHUNK ? (int)READ_CHUNK : (int)n;
		int last = final && (size_t)k == n;
		rd->fed += (uint64_t)k;
		if (check_status(rd, XML_Parse(rd->p, p, k, last ? XML_TRUE : XML_FALSE)))
			return 1;
		p += k;
		n -= (size_t)k;
		if (last)
			break;
	}
	return 0;
}

/*
 * Follows "<!--" ... "-->" over a line that did not take the fast path, so
 * that a mapping line inside a multi-line comment goes to expat (which
 * skips it) instead of being taken as a mapping.  '<' cannot occur
 * unescaped in attribute values or character data, so the scan is exact
 * for the documents the reader accepts.
 */
static void track_comments(struct reader *rd, const char *p, const char *end)
{
	for (;;) {
		const char *q = memmem(p, (size_t)(end - p), rd->in_comment ? "-->" : "<!--",
				       rd->in_comment ? 3 : 4);
		if (!q)
			return;
		p = q + (rd->in_comment ? 3 : 4);
		rd->in_comment = !rd->in_comment;
	}
}

/* Does the parser state prove that the next byte is element content of <device>/<def>? */
static int in_mapping_content(const struct reader *rd)
{
	return rd->reported == rd->fed && !rd->in_cdata &&
	       (rd->st[rd->depth] == ST_DEV || rd->st[rd->depth] == ST_DEF);
}

/* Processes the complete lines of buf[0, len); returns bytes consumed or -1 to stop. */
static ssize_t process_lines(struct feeder *f, const char *buf, size_t len)
{
	struct reader *rd = f->rd;
	const char *pending = buf, *p = buf, *end = buf + len;
	int probe = 1;   /* cleared for the rest of the buffer once a probe fails */

	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		uint64_t v[4];
		int range;

		if (!nl)
			break;
		if (!probe || rd->in_comment || !fast_line(p, nl, &range, v)) {
			track_comments(rd, p, nl);
		} else {
			if (pending < p && feed(rd, pending, (size_t)(p - pending), 0))
				return -1;
			pending = p;
			/*
			 * Not provably content (inside a tag, a PI, CDATA...): the
			 * line goes to expat, and so does the rest of this buffer,
			 * so that an open token is not re-scanned line by line.
			 */
			if (!in_mapping_content(rd)) {
				probe = 0;
				track_comments(rd, p, nl);
			} else {
				rd->fast_line = f->line;
				fast_emit(rd, range, v);
				rd->fast_line = 0;
				if (rd->r || rd->stopped)
					return -1;
				rd->skipped++;
				pending = nl + 1;
			}
		}
		f->line++;
		p = nl + 1;
	}
	if (pending < p && feed(rd, pending, (size_t)(p - pending), 0))
		return -1;
	return p - buf;
}


static int read_file(const char *path, const struct ir_visitor *v, struct async *as,
		     unsigned long *fast_lines, char *err, size_t errlen)
{
	struct reader rd;
	struct feeder f = { &rd, 1 };
	struct stat st;
	char *buf;
	size_t have = 0, cap = 2 * READ_CHUNK;
	int fd, r;

	err[0] = '\0';
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "Couldn't find input file '%s'", path);
		return -ENOENT;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
		snprintf(err, errlen, "Not a regular file '%s'.", path);
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	buf = malloc(cap);
	r = buf ? reader_init(&rd, path, v, err, errlen) : -ENOMEM;
	if (r < 0) {
		if (!buf)
			snprintf(err, errlen, "out of memory");
		free(buf);
		close(fd);
		return r;
	}
	if (as)
		as_attach(as, &rd);
	for (;;) {
		ssize_t n = read(fd, buf + have, cap - have);
		ssize_t used;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rd.r = -errno;
			snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
			break;
		}
		if (n == 0) {
			/* the last (unterminated) line goes to expat as is */
			feed(&rd, buf, have, 1);
			break;
		}
		have += (size_t)n;
		used = process_lines(&f, buf, have);
		if (used < 0)
			break;
		memmove(buf, buf + used, have - (size_t)used);
		have -= (size_t)used;
		if (have > READ_CHUNK) {
			/* a very long line: hand it to expat without the fast path */
			track_comments(&rd, buf, buf + have);
			if (feed(&rd, buf, have, 0))
				break;
			for (size_t i = 0; i < have; i++)
				f.line += buf[i] == '\n';
			have = 0;
		}
	}
	free(buf);
	close(fd);
	if (fast_lines)
		*fast_lines = rd.skipped;
	return reader_finish(&rd);
}

int xml_read_file(const char *path, const struct ir_visitor *v, char *err, size_t errlen)
{
	return read_file(path, v, NULL, NULL, err, errlen);
}

int xml_read_file_counted(const char *path, const struct ir_visitor *v, unsigned long *fast_lines,
			  char *err, size_t errlen)
{
	return read_file(path, v, NULL, fast_lines, err, errlen);
}

/*----------------------------------------------------------------*/
/*
 * Two threads: a parser thread runs the reader above with a visitor that
 * records each event (with its line) into batches; the calling thread
 * replays them, in order, into the caller's visitor.  The caller sees the
 * same events, results and messages as from xml_read_file(): a failing
 * callback stops the replay (the parser, which may have read ahead, is
 * told to stop and its own later findings are dropped); otherwise the
 * parser's result is the result.
 */

#define AS_BATCH 2048u     /* events per batch */
#define AS_NR_BATCHES 4u

enum ev_type {
	EV_BEGIN_SB, EV_END_SB, EV_BEGIN_DEV, EV_END_DEV, EV_BEGIN_DEF, EV_END_DEF, EV_REF,
	EV_SINGLE, EV_RANGE, EV_COMMENT,
};

struct aev {
	uint64_t a, b, c;      /* mapping values, or an offset in the batch's strings */
	unsigned long line;
	uint32_t time;
	uint32_t type;
};

struct abatch {
	struct aev ev[AS_BATCH];
	unsigned n;
	char *str;             /* superblock, device, names and comments */
	size_t str_len, str_cap;
};

struct async {
	struct reader *rd;     /* the parser's reader, while it runs */
	const char *path;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct abatch *batch[AS_NR_BATCHES];
	struct abatch *cur;    /* being filled by the parser */
	unsigned head, nr;     /* full batches: batch[head], ... (nr of them) */
	struct abatch *free_[AS_NR_BATCHES];
	unsigned nr_free;
	int stop;              /* the consumer wants no more events */
	int done;              /* the parser has finished */
	int result;            /* the parser's result */
	char *err;             /* the parser's message */
	size_t errlen;
};

static void as_attach(struct async *as, struct reader *rd)
{
	as->rd = rd;
}

/* The next free batch for the parser; NULL when told to stop. */
static struct abatch *as_get_free(struct async *as)
{
	struct abatch *b = NULL;

	pthread_mutex_lock(&as->lock);
	while (!as->nr_free && !as->stop)
		pthread_cond_wait(&as->cv, &as->lock);
	if (!as->stop) {
		b = as->free_[--as->nr_free];
		b->n = 0;
		b->str_len = 0;
	}
	pthread_mutex_unlock(&as->lock);
	return b;
}

static void as_push(struct async *as)
{
	pthread_mutex_lock(&as->lock);
	as->batch[(as->head + as->nr) % AS_NR_BATCHES] = as->cur;
	as->nr++;
	pthread_cond_broadcast(&as->cv);
	pthread_mutex_unlock(&as->lock);
	as->cur = NULL;
}

/* Room for one more event: 0, IR_STOP (the consumer stopped) or -ENOMEM. */
static int as_room(struct async *as)
{
	if (__atomic_load_n(&as->stop, __ATOMIC_RELAXED))
		return IR_STOP;
	if (as->cur && as->cur->n == AS_BATCH)
		as_push(as);
	if (!as->cur)
		as->cur = as_get_free(as);
	return as->cur ? 0 : IR_STOP;
}

static struct aev *as_ev(struct async *as, uint32_t type)
{
	struct aev *e = &as->cur->ev[as->cur->n++];

	e->type = type;
	e->line = cur_line(as->rd);
	return e;
}

/* Copies len bytes into the current batch's strings; the offset or -1. */
static int64_t as_str(struct async *as, const void *p, size_t len)
{
	struct abatch *b = as->cur;
	size_t off = (b->str_len + 7) & ~(size_t)7;

	if (off + len > b->str_cap) {
		size_t cap = b->str_cap ? b->str_cap : 4096;
		char *n;
		while (cap < off + len)
			cap *= 2;
		n = realloc(b->str, cap);
		if (!n)
			return -1;
		b->str = n;
		b->str_cap = cap;
	}
	memcpy(b->str + off, p, len);
	b->str_len = off + len;
	return (int64_t)off;
}

static int rec_simple(void *ctx, uint32_t type)
{
	int r = as_room(ctx);

	if (r)
		return r;
	as_ev(ctx, type);
	return 0;
}

static int rec_named(void *ctx, uint32_t type, const char *name)
{
	struct async *as = ctx;
	int64_t off;
	int r = as_room(as);

	if (r)
		return r;
	off = as_str(as, name, strlen(name) + 1);
	if (off < 0)
		return -ENOMEM;
	as_ev(as, type)->a = (uint64_t)off;
	return 0;
}

static int rec_begin_sb(void *ctx, const struct ir_superblock *sb)
{
	struct async *as = ctx;
	struct aev *e;
	int64_t off, uo;
	int r = as_room(as);

	if (r)
		return r;
	off = as_str(as, sb, sizeof(*sb));
	uo = off < 0 ? -1 : as_str(as, sb->uuid, strlen(sb->uuid) + 1);
	if (uo < 0)
		return -ENOMEM;
	e = as_ev(as, EV_BEGIN_SB);
	e->a = (uint64_t)off;
	e->b = (uint64_t)uo;
	return 0;
}

static int rec_begin_dev(void *ctx, const struct ir_device *d)
{
	struct async *as = ctx;
	int64_t off;
	int r = as_room(as);

	if (r)
		return r;
	off = as_str(as, d, sizeof(*d));
	if (off < 0)
		return -ENOMEM;
	as_ev(as, EV_BEGIN_DEV)->a = (uint64_t)off;
	return 0;
}

static int rec_end_sb(void *ctx)
{
	return rec_simple(ctx, EV_END_SB);
}

static int rec_end_dev(void *ctx)
{
	return rec_simple(ctx, EV_END_DEV);
}

static int rec_end_def(void *ctx)
{
	return rec_simple(ctx, EV_END_DEF);
}

static int rec_begin_def(void *ctx, const char *name)
{
	return rec_named(ctx, EV_BEGIN_DEF, name);
}

static int rec_ref(void *ctx, const char *name)
{
	return rec_named(ctx, EV_REF, name);
}

static int rec_comment(void *ctx, const char *text)
{
	return rec_named(ctx, EV_COMMENT, text);
}

/* A mapping event (len: ranges only). */
static int rec_mapping(struct async *as, uint32_t type, uint64_t ob, uint64_t db, uint64_t len,
		       uint32_t time)
{
	struct aev *e;
	int r = as_room(as);

	if (r)
		return r;
	e = as_ev(as, type);
	e->a = ob;
	e->b = db;
	e->c = len;
	e->time = time;
	return 0;
}

static int rec_single(void *ctx, uint64_t ob, uint64_t db, uint32_t time)
{
	return rec_mapping(ctx, EV_SINGLE, ob, db, 0, time);
}

static int rec_range(void *ctx, uint64_t ob, uint64_t db, uint64_t len, uint32_t time)
{
	return rec_mapping(ctx, EV_RANGE, ob, db, len, time);
}

struct as_run {
	struct async *as;
	struct ir_visitor rv;
};

static void *as_parser(void *arg)
{
	struct as_run *ar = arg;
	struct async *as = ar->as;
	int r = read_file(as->path, &ar->rv, as, NULL, as->err, as->errlen);

	pthread_mutex_lock(&as->lock);
	if (as->cur) {
		as->batch[(as->head + as->nr) % AS_NR_BATCHES] = as->cur;
		as->nr++;
		as->cur = NULL;
	}
	as->result = r;
	as->done = 1;
	pthread_cond_broadcast(&as->cv);
	pthread_mutex_unlock(&as->lock);
	return NULL;
}

/* One event into the caller's visitor: its result. */
static int replay(const struct ir_visitor *v, const struct abatch *b, const struct aev *e)
{
	switch (e->type) {
	case EV_SINGLE:
		return v->single_map(v->ctx, e->a, e->b, e->time);
	case EV_RANGE:
		return v->range_map(v->ctx, e->a, e->b, e->c, e->time);
	case EV_BEGIN_SB: {
		struct ir_superblock sb;
		memcpy(&sb, b->str + e->a, sizeof(sb));
		sb.uuid = b->str + e->b;
		return v->begin_superblock(v->ctx, &sb);
	}
	case EV_END_SB:
		return v->end_superblock(v->ctx);
	case EV_BEGIN_DEV: {
		struct ir_device d;
		memcpy(&d, b->str + e->a, sizeof(d));
		return v->begin_device(v->ctx, &d);
	}
	case EV_END_DEV:
		return v->end_device(v->ctx);
	case EV_BEGIN_DEF:
		return v->begin_def(v->ctx, b->str + e->a);
	case EV_END_DEF:
		return v->end_def(v->ctx);
	case EV_REF:
		return v->ref(v->ctx, b->str + e->a);
	case EV_COMMENT:
		return v->comment(v->ctx, b->str + e->a);
	}
	return -EINVAL;
}

int xml_read_file_async(const char *path, const struct ir_visitor *v, char *err, size_t errlen)
{
	struct async as;
	struct as_run ar;
	pthread_t t;
	char *perr = malloc(errlen ? errlen : 1);
	int r = 0, failed = 0, threaded = 0;
	unsigned nb = 0;

	memset(&as, 0, sizeof(as));
	for (; perr && nb < AS_NR_BATCHES; nb++) {
		as.free_[nb] = calloc(1, sizeof(struct abatch));
		if (!as.free_[nb])
			break;
	}
	as.nr_free = nb;
	if (!perr || nb < AS_NR_BATCHES) {
		for (unsigned i = 0; i < nb; i++)
			free(as.free_[i]);
		free(perr);
		return read_file(path, v, NULL, NULL, err, errlen);
	}
	perr[0] = '\0';
	as.path = path;
	as.err = perr;
	as.errlen = errlen ? errlen : 1;
	pthread_mutex_init(&as.lock, NULL);
	pthread_cond_init(&as.cv, NULL);
	memset(&ar, 0, sizeof(ar));
	ar.as = &as;
	ar.rv.ctx = &as;
	ar.rv.begin_superblock = v->begin_superblock ? rec_begin_sb : NULL;
	ar.rv.end_superblock = v->end_superblock ? rec_end_sb : NULL;
	ar.rv.begin_device = v->begin_device ? rec_begin_dev : NULL;
	ar.rv.end_device = v->end_device ? rec_end_dev : NULL;
	ar.rv.begin_def = v->begin_def ? rec_begin_def : NULL;
	ar.rv.end_def = v->end_def ? rec_end_def : NULL;
	ar.rv.ref = v->ref ? rec_ref : NULL;
	ar.rv.single_map = v->single_map ? rec_single : NULL;
	ar.rv.range_map = v->range_map ? rec_range : NULL;
	ar.rv.comment = v->comment ? rec_comment : NULL;
	threaded = !pthread_create(&t, NULL, as_parser, &ar);
	if (threaded) {
		for (;;) {
			struct abatch *b;

			pthread_mutex_lock(&as.lock);
			while (!as.nr && !as.done)
				pthread_cond_wait(&as.cv, &as.lock);
			if (!as.nr) {
				pthread_mutex_unlock(&as.lock);
				break;
			}
			b = as.batch[as.head];
			as.head = (as.head + 1) % AS_NR_BATCHES;
			as.nr--;
			pthread_mutex_unlock(&as.lock);
			for (unsigned i = 0; i < b->n && !failed; i++) {
				const struct aev *e = &b->ev[i];

				if (v->err && v->errlen)
					v->err[0] = '\0';
				r = replay(v, b, e);
				if (r == IR_STOP) {
					failed = 1;
					r = 0;
				} else if (r < 0) {
					int n = snprintf(err, errlen, "%s:%lu: ", path, e->line);
					failed = 1;
					if (n < 0 || (size_t)n >= errlen)
						n = 0;
					snprintf(err + n, errlen - (size_t)n, "%s",
						 v->err && v->err[0] ? v->err : strerror(-r));
				}
			}
			pthread_mutex_lock(&as.lock);
			as.free_[as.nr_free++] = b;
			if (failed)
				__atomic_store_n(&as.stop, 1, __ATOMIC_RELAXED);
			pthread_cond_broadcast(&as.cv);
			pthread_mutex_unlock(&as.lock);
		}
		pthread_join(t, NULL);
		if (!failed) {
			r = as.result;
			snprintf(err, errlen, "%s", perr);
		}
	}
	pthread_mutex_destroy(&as.lock);
	pthread_cond_destroy(&as.cv);
	for (unsigned i = 0; i < as.nr_free; i++) {
		free(as.free_[i]->str);
		free(as.free_[i]);
	}
	free(perr);
	if (!threaded)   /* no thread: in this one */
		return read_file(path, v, NULL, NULL, err, errlen);
	return r;
}
