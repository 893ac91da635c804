#include "util/report.h"
#include "util/vec.h"

#include <stdlib.h>
#include <string.h>

struct report {
	FILE *out;
	int quiet;
	enum dmg_level worst;
	size_t nr, nr_stored, cap;
	struct rep_finding *f;
	size_t per_code[REP_MAX_CODES];
	const char *(*code_name)(int code);
};

static int counted(int code)
{
	return code >= 0 && code < REP_MAX_CODES;
}

struct report *rep_create(FILE *out, int quiet)
{
	struct report *rep = calloc(1, sizeof(*rep));

	if (!rep)
		return NULL;
	rep->out = out;
	rep->quiet = quiet;
	return rep;
}

void rep_destroy(struct report *rep)
{
	if (!rep)
		return;
	for (size_t i = 0; i < rep->nr_stored; i++)
		free(rep->f[i].msg);
	free(rep->f);
	free(rep);
}

void rep_set_code_names(struct report *rep, const char *(*name)(int code))
{
	rep->code_name = name;
}

static int printing(const struct report *rep)
{
	return rep->out && !rep->quiet;
}

void rep_section(struct report *rep, const char *title)
{
	if (printing(rep))
		fprintf(rep->out, "%s\n", title);
}

void rep_info(struct report *rep, const char *fmt, ...)
{
	va_list ap;

	if (!printing(rep))
		return;
	va_start(ap, fmt);
	vfprintf(rep->out, fmt, ap);
	va_end(ap);
	fputc('\n', rep->out);
}

void rep_detail(struct report *rep, const char *fmt, ...)
{
	va_list ap;

	if (!printing(rep))
		return;
	fputs("    ", rep->out);
	va_start(ap, fmt);
	vfprintf(rep->out, fmt, ap);
	va_end(ap);
	fputc('\n', rep->out);
}

static void store(struct report *rep, enum dmg_level level, int code,
		  struct rep_ctx ctx, char *msg)
{
	struct rep_finding *f;

	if (rep->nr_stored >= REP_MAX_STORED) {
		free(msg);
		return;
	}
	if (rep->nr_stored == rep->cap) {
		struct rep_finding *n = vec_grow(rep->f, &rep->cap, sizeof(*n), 16);

		if (!n) {
			free(msg);
			return;
		}
		rep->f = n;
	}
	f = &rep->f[rep->nr_stored++];
	f->level = level;
	f->code = code;
	f->msg = msg;
	f->block = ctx.block;
	f->key_begin = ctx.key_begin;
	f->key_end = ctx.key_end;
	f->dev = ctx.dev;
}

void rep_vadd(struct report *rep, enum dmg_level level, int code,
	      struct rep_ctx ctx, const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (level > rep->worst)
		rep->worst = level;
	rep->nr++;
	if (counted(code))
		rep->per_code[code]++;
	if (printing(rep) && msg) {
		if (!counted(code) || rep->per_code[code] <= REP_MAX_PRINTED_PER_CODE)
			fprintf(rep->out, "  %s\n", msg);
		else if (rep->per_code[code] == REP_MAX_PRINTED_PER_CODE + 1 && rep->code_name)
			fprintf(rep->out, "  (further '%s' findings not shown)\n",
				rep->code_name(code));
		else if (rep->per_code[code] == REP_MAX_PRINTED_PER_CODE + 1)
			fprintf(rep->out, "  (further 'code %d' findings not shown)\n", code);
	}
	if (msg)
		store(rep, level, code, ctx, msg);
}

void rep_add(struct report *rep, enum dmg_level level, int code,
	     struct rep_ctx ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rep_vadd(rep, level, code, ctx, fmt, ap);
	va_end(ap);
}

enum dmg_level rep_outcome(const struct report *rep)
{
	return rep->worst;
}

size_t rep_nr_findings(const struct report *rep)
{
	return rep->nr;
}

size_t rep_nr_stored(const struct report *rep)
{
	return rep->nr_stored;
}

const struct rep_finding *rep_finding(const struct report *rep, size_t i)
{
	return i < rep->nr_stored ? &rep->f[i] : NULL;
}

size_t rep_count_code(const struct report *rep, int code)
{
	return counted(code) ? rep->per_code[code] : 0;
}
