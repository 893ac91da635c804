#include "names/records.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thin/superblock.h"
#include "util/parse.h"
#include "util/vec.h"

/*----------------------------------------------------------------*/
/* Records (TSV) */

static int unescape(const char *s, size_t n, char **out, size_t *outlen)
{
	char *d = malloc(n + 1);
	size_t k = 0;

	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			d[k++] = s[i];
			continue;
		}
		if (++i == n) {
			free(d);
			return -EINVAL;
		}
		switch (s[i]) {
		case 't': d[k++] = '\t'; break;
		case 'n': d[k++] = '\n'; break;
		case '\\': d[k++] = '\\'; break;
		case 'x':
			if (i + 2 >= n) {
				free(d);
				return -EINVAL;
			}
			if (parse_xdigit(s[i + 1]) < 0 || parse_xdigit(s[i + 2]) < 0) {
				free(d);
				return -EINVAL;
			}
			d[k++] = (char)(parse_xdigit(s[i + 1]) * 16 + parse_xdigit(s[i + 2]));
			i += 2;
			break;
		default:
			free(d);
			return -EINVAL;
		}
	}
	d[k] = '\0';
	*out = d;
	*outlen = k;
	return 0;
}

static int parse_field(const char *s, size_t n, uint64_t max, uint64_t *v)
{
	uint64_t x;

	if (parse_u64_n(s, n, &x) < 0 || x > max)
		return -EINVAL;
	*v = x;
	return 0;
}

#define MAX_COLS 5

/* Splits one line (without its newline) into at most MAX_COLS fields. */
static int split_cols(const char *s, size_t n, const char **col, size_t *clen)
{
	int nc = 0;
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '\t')
			continue;
		if (nc == MAX_COLS)
			return -1;
		col[nc] = s + start;
		clen[nc++] = i - start;
		start = i + 1;
	}
	return nc;
}

static int is_dash(const char *s, size_t n)
{
	return n == 1 && s[0] == '-';
}

static int parse_line(const char *s, size_t n, struct thin_record *rec, const char **why)
{
	const char *col[MAX_COLS];
	size_t clen[MAX_COLS];
	int nc = split_cols(s, n, col, clen);
	uint64_t t = 0, c = 0;

	memset(rec, 0, sizeof(*rec));
	if (nc < 2 || nc > 5) {
		*why = "expected 2 to 5 tab-separated fields";
		return -EINVAL;
	}
	if (parse_field(col[0], clen[0], THIN_MAX_DEV_ID, &rec->dev_id) < 0) {
		*why = "bad dev_id (a decimal number below 2^24)";
		return -EINVAL;
	}
	if (nc == 3 || nc == 5) {
		if (clen[nc - 1] != 7 || memcmp(col[nc - 1], "pending", 7)) {
			*why = "the last field must be 'pending'";
			return -EINVAL;
		}
		rec->pending = 1;
	}
	if (nc >= 4) {
		int dt = is_dash(col[2], clen[2]), dc = is_dash(col[3], clen[3]);

		if (dt != dc || (!dt && (parse_field(col[2], clen[2], UINT64_MAX, &t) < 0 ||
					 parse_field(col[3], clen[3], UINT32_MAX, &c) < 0))) {
			*why = "bad transaction or creation_time";
			return -EINVAL;
		}
		rec->has_stamp = !dt;
		rec->transaction = t;
		rec->creation_time = (uint32_t)c;
	}
	if (unescape(col[1], clen[1], &rec->name, &rec->name_len) < 0) {
		*why = "bad escape in name (only \\t, \\n, \\\\ and \\xNN)";
		return -EINVAL;
	}
	return 0;
}

static int records_push(struct thin_records *out, const struct thin_record *rec)
{
	if (out->nr == out->cap) {
		struct thin_record *n = vec_grow(out->r, &out->cap, sizeof(*n), 64);

		if (!n)
			return -ENOMEM;
		out->r = n;
	}
	out->r[out->nr++] = *rec;
	return 0;
}

int thin_records_parse(const char *buf, size_t len, struct thin_records *out, char *msg,
		       size_t msglen)
{
	size_t pos = 0;
	unsigned line = 0;

	memset(out, 0, sizeof(*out));
	while (pos < len) {
		const char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		struct thin_record rec;
		const char *why = "";
		int r;

		pos += n + (nl ? 1 : 0);
		line++;
		if (n && s[n - 1] == '\r')
			n--;
		if (!n || s[0] == '#')
			continue;
		if (memchr(s, '\0', n)) {
			why = "NUL byte";
			r = -EINVAL;
		} else {
			r = parse_line(s, n, &rec, &why);
		}
		if (r < 0) {
			snprintf(msg, msglen, "line %u: %s", line, why);
			thin_records_release(out);
			return r;
		}
		rec.line = line;
		if (records_push(out, &rec) < 0) {
			free(rec.name);
			thin_records_release(out);
			snprintf(msg, msglen, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

static int slurp(const char *path, char **bufp, size_t *lenp)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int r = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t n;
		if (cap - len < 65536) {
			char *nb = realloc(buf, cap * 2 + 65536);
			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
			cap = cap * 2 + 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f))
				r = -EIO;
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (r < 0) {
		free(buf);
		return r;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

int thin_records_load(const char *path, struct thin_records *out, char *msg, size_t msglen)
{
	char *buf = NULL, sub[200];
	size_t len = 0;
	int r = slurp(path, &buf, &len);

	if (r < 0) {
		memset(out, 0, sizeof(*out));
		snprintf(msg, msglen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = thin_records_parse(buf, len, out, sub, sizeof(sub));
	if (r < 0)
		snprintf(msg, msglen, "%s: %s", path, sub);
	free(buf);
	return r;
}

void thin_records_release(struct thin_records *recs)
{
	for (size_t i = 0; i < recs->nr; i++)
		free(recs->r[i].name);
	free(recs->r);
	memset(recs, 0, sizeof(*recs));
}

int thin_id_ranges_load(const char *path, uint64_t **ids, size_t *nr_ranges, char *msg,
			size_t msglen)
{
	char *buf = NULL;
	size_t len = 0, pos = 0, cap = *nr_ranges;
	unsigned line = 0;
	int r = slurp(path, &buf, &len);

	if (r < 0) {
		snprintf(msg, msglen, "%s: %s", path, strerror(-r));
		return r;
	}
	while (pos < len) {
		const char *s = buf + pos, *nl = memchr(s, '\n', len - pos), *dash;
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		uint64_t lo, hi;

		pos += n + (nl ? 1 : 0);
		line++;
		while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (!n || s[0] == '#')
			continue;
		dash = memchr(s, '-', n);
		if (dash ? (parse_field(s, (size_t)(dash - s), THIN_MAX_DEV_ID, &lo) < 0 ||
			    parse_field(dash + 1, n - (size_t)(dash - s) - 1, THIN_MAX_DEV_ID, &hi) < 0 ||
			    hi < lo)
			 : parse_field(s, n, THIN_MAX_DEV_ID, &lo) < 0) {
			snprintf(msg, msglen, "%s: line %u: expected an id or a range A-B below 2^24",
				 path, line);
			free(buf);
			return -EINVAL;
		}
		if (!dash)
			hi = lo;
		if (*nr_ranges == cap) {
			uint64_t *nv;
			cap = cap ? cap * 2 : 64;
			nv = realloc(*ids, cap * 2 * sizeof(uint64_t));
			if (!nv) {
				free(buf);
				snprintf(msg, msglen, "out of memory");
				return -ENOMEM;
			}
			*ids = nv;
		}
		(*ids)[2 * *nr_ranges] = lo;
		(*ids)[2 * *nr_ranges + 1] = hi;
		(*nr_ranges)++;
	}
	free(buf);
	return 0;
}

