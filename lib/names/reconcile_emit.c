#include "names/reconcile-internal.h"

#include <inttypes.h>

/* Length of the valid UTF-8 sequence at s (0 if invalid). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t need;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4, cp = c & 0x07;
	else
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need;
}

static void json_str(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(p + i, n - i);

		if (l > 1) {
			fwrite(p + i, 1, l, f);
			i += l;
			continue;
		}
		if (p[i] == '"' || p[i] == '\\')
			fprintf(f, "\\%c", p[i]);
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			fprintf(f, "\\u%04x", p[i]);
		else
			fputc(p[i], f);
		i++;
	}
	fputc('"', f);
}

/* TSV and text: \t \n \\ escapes, other control bytes as \xNN */
static void plain_str(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\t')
			fputs("\\t", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\\')
			fputs("\\\\", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

void rc_put_value(struct emitter *e, const struct fld *f)
{
	int json = e->fmt == TRF_JSON;

	switch (f->k) {
	case FK_U64:
		fprintf(e->out, "%" PRIu64, f->u);
		break;
	case FK_STR:
		if (json)
			json_str(e->out, f->s, f->slen);
		else if (e->fmt == TRF_TEXT && !strcmp(f->key, "name")) {
			fputc('"', e->out);
			plain_str(e->out, f->s, f->slen);
			fputc('"', e->out);
		} else
			plain_str(e->out, f->s, f->slen);
		break;
	case FK_NULL:
		fputs(json ? "null" : "-", e->out);
		break;
	case FK_BOOL:
		fputs(json ? (f->u ? "true" : "false") : (f->u ? "yes" : "no"), e->out);
		break;
	case FK_HEX:
		if (json)
			fputc('"', e->out);
		for (size_t i = 0; i < f->slen; i++)
			fprintf(e->out, "%02x", (unsigned char)f->s[i]);
		if (json)
			fputc('"', e->out);
		break;
	case FK_IDS:
		if (json)
			fputc('[', e->out);
		for (size_t i = 0; i < f->nids; i++)
			fprintf(e->out, "%s%" PRIu64, i ? "," : "", f->ids[i]);
		if (!json && !f->nids)
			fputc('-', e->out);
		if (json)
			fputc(']', e->out);
		break;
	}
}

void rc_emit_fields(struct emitter *e, const struct fld *f, size_t n)
{
	switch (e->fmt) {
	case TRF_JSON:
		fputc('{', e->out);
		for (size_t i = 0; i < n; i++) {
			fprintf(e->out, "%s\"%s\":", i ? "," : "", f[i].key);
			rc_put_value(e, &f[i]);
		}
		fputc('}', e->out);
		break;
	case TRF_TSV:
		for (size_t i = 0; i < n; i++) {
			fputc('\t', e->out);
			rc_put_value(e, &f[i]);
		}
		fputc('\n', e->out);
		break;
	case TRF_TEXT:
		for (size_t i = 0; i < n; i++) {
			fprintf(e->out, "%s%s ", i ? ", " : " ", f[i].key);
			rc_put_value(e, &f[i]);
		}
		fputc('\n', e->out);
		break;
	}
}

void rc_tsv_header(struct emitter *e, const char *cls, const struct fld *f, size_t n)
{
	fprintf(e->out, "%s", cls);
	for (size_t i = 0; i < n; i++)
		fprintf(e->out, "\t%s", f[i].key);
	fputc('\n', e->out);
}

/* A singleton object ("pool", "fence", ...) */
void rc_emit_obj(struct emitter *e, const char *name, const struct fld *f, size_t n)
{
	if (e->fmt == TRF_JSON) {
		fprintf(e->out, ",\n\"%s\":", name);
	} else if (e->fmt == TRF_TSV) {
		if (e->headers)
			rc_tsv_header(e, "#class", f, n);
		fputs(name, e->out);
	} else {
		fprintf(e->out, "%s:", name);
	}
	rc_emit_fields(e, f, n);
}

void rc_list_begin(struct emitter *e, const char *name)
{
	e->cls = name;
	e->first_in_list = 1;
	if (e->fmt == TRF_JSON)
		fprintf(e->out, ",\n\"%s\":[", name);
}

/* An item of the current list; cls is the TSV/text class name */
void rc_emit_item(struct emitter *e, const char *cls, const struct fld *f, size_t n)
{
	if (e->fmt == TRF_JSON) {
		fprintf(e->out, "%s\n ", e->first_in_list ? "" : ",");
	} else if (e->fmt == TRF_TSV) {
		if (e->headers && e->first_in_list)
			rc_tsv_header(e, "#class", f, n);
		fputs(cls, e->out);
	} else {
		fputs(cls, e->out);
	}
	e->first_in_list = 0;
	rc_emit_fields(e, f, n);
}

void rc_list_end(struct emitter *e)
{
	if (e->fmt == TRF_JSON)
		fputs(e->first_in_list ? "]" : "\n]", e->out);
}


