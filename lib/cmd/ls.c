#include "cmd/ls.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "thin/usage.h"

/*----------------------------------------------------------------*/
/* Fields and formatting */

static const char *const field_names[TLF_NR] = {
	[TLF_DEV] = "DEV",
	[TLF_MAPPED_BLOCKS] = "MAPPED_BLOCKS",
	[TLF_EXCLUSIVE_BLOCKS] = "EXCLUSIVE_BLOCKS",
	[TLF_SHARED_BLOCKS] = "SHARED_BLOCKS",
	[TLF_HIGHEST_BLOCK] = "HIGHEST_BLOCK",
	[TLF_MAPPED_SECTORS] = "MAPPED_SECTORS",
	[TLF_EXCLUSIVE_SECTORS] = "EXCLUSIVE_SECTORS",
	[TLF_SHARED_SECTORS] = "SHARED_SECTORS",
	[TLF_HIGHEST_SECTOR] = "HIGHEST_SECTOR",
	[TLF_MAPPED_BYTES] = "MAPPED_BYTES",
	[TLF_EXCLUSIVE_BYTES] = "EXCLUSIVE_BYTES",
	[TLF_SHARED_BYTES] = "SHARED_BYTES",
	[TLF_HIGHEST_BYTE] = "HIGHEST_BYTE",
	[TLF_MAPPED] = "MAPPED",
	[TLF_EXCLUSIVE] = "EXCLUSIVE",
	[TLF_SHARED] = "SHARED",
	[TLF_HIGHEST_MAPPED] = "HIGHEST_MAPPED",
	[TLF_TRANSACTION] = "TRANSACTION",
	[TLF_CREATE_TIME] = "CREATE_TIME",
	[TLF_SNAP_TIME] = "SNAP_TIME",
	[TLF_NAME] = "NAME",
};

const char *thin_ls_field_name(enum thin_ls_field f)
{
	return (unsigned)f < TLF_NR ? field_names[f] : "?";
}

int thin_ls_parse_fields(const char *spec, enum thin_ls_field *fields, size_t max, size_t *nr,
			 char *msg, size_t msglen)
{
	const char *p = spec;

	*nr = 0;
	for (;;) {
		size_t len = strcspn(p, ",");
		int found = -1;

		for (int f = 0; f < TLF_NR; f++)
			if (strlen(field_names[f]) == len && !strncmp(p, field_names[f], len))
				found = f;
		if (found < 0) {
			snprintf(msg, msglen, "unknown field '%.*s'", (int)len, p);
			return -EINVAL;
		}
		if (*nr == max) {
			snprintf(msg, msglen, "too many fields");
			return -EINVAL;
		}
		fields[(*nr)++] = (enum thin_ls_field)found;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

void thin_ls_pretty(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned i = 0;
	uint64_t u = 1, v;

	/* the largest unit u with bytes > 8 * u, rounded half up (0.9.0, by experiment) */
	while (i + 1 < sizeof(units) / sizeof(units[0])) {
		uint64_t next = u << 10;

		if (!(bytes / 8 > next || (bytes / 8 == next && bytes % 8)))
			break;
		u = next;
		i++;
	}
	v = bytes / u;
	/* half up below 1024 of the unit; at 1024 and above the fraction is cut (0.9.0 and 1.x) */
	if (u > 1 && v < 1024 && bytes % u >= u / 2)
		v++;
	snprintf(buf, len, "%" PRIu64 "%s", v, units[i]);
}

static int field_needs_walk(enum thin_ls_field f)
{
	switch (f) {
	case TLF_DEV:
	case TLF_MAPPED_BLOCKS:
	case TLF_MAPPED_SECTORS:
	case TLF_MAPPED_BYTES:
	case TLF_MAPPED:
	case TLF_TRANSACTION:
	case TLF_CREATE_TIME:
	case TLF_SNAP_TIME:
	case TLF_NAME:
		return 0;
	default:
		return 1;
	}
}

enum cell_kind { CELL_NUM, CELL_PRETTY, CELL_NONE };

/* The numeric value of field f for device d (CELL_NONE: no value). */
static enum cell_kind field_value(enum thin_ls_field f, const struct thin_dev *d,
				  const struct thin_usage *u, uint64_t bs, uint64_t *v)
{
	/* fields 1..16 come in groups of four: MAPPED, EXCLUSIVE, SHARED, HIGHEST */
	unsigned unit = (unsigned)(f - TLF_MAPPED_BLOCKS) / 4;   /* blocks sectors bytes pretty */
	uint64_t blocks;

	switch (f) {
	case TLF_DEV:
		*v = d->dev_id;
		return CELL_NUM;
	case TLF_TRANSACTION:
		*v = d->details.transaction_id;
		return CELL_NUM;
	case TLF_CREATE_TIME:
		*v = d->details.creation_time;
		return CELL_NUM;
	case TLF_SNAP_TIME:
		*v = d->details.snapshotted_time;
		return CELL_NUM;
	case TLF_HIGHEST_BLOCK:
	case TLF_HIGHEST_SECTOR:
	case TLF_HIGHEST_BYTE:
	case TLF_HIGHEST_MAPPED:
		if (!u->mapped)
			return CELL_NONE;
		if (unit == 0) {
			*v = u->highest;
			return CELL_NUM;
		}
		/* the last sector/byte of the highest block; the extent size when pretty */
		*v = (u->highest + 1) * bs * (unit == 1 ? 1 : 512) - (unit == 3 ? 0 : 1);
		return unit == 3 ? CELL_PRETTY : CELL_NUM;
	case TLF_MAPPED_BLOCKS:
	case TLF_MAPPED_SECTORS:
	case TLF_MAPPED_BYTES:
	case TLF_MAPPED:
		blocks = d->details.mapped_blocks;
		break;
	case TLF_EXCLUSIVE_BLOCKS:
	case TLF_EXCLUSIVE_SECTORS:
	case TLF_EXCLUSIVE_BYTES:
	case TLF_EXCLUSIVE:
		blocks = u->exclusive;
		break;
	case TLF_SHARED_BLOCKS:
	case TLF_SHARED_SECTORS:
	case TLF_SHARED_BYTES:
	case TLF_SHARED:
		blocks = u->shared;
		break;
	default:
		return CELL_NONE;
	}
	*v = blocks * (unit >= 1 ? bs : 1) * (unit >= 2 ? 512 : 1);
	return unit == 3 ? CELL_PRETTY : CELL_NUM;
}

static void print_json(const struct thin_ls_opts *o, const struct thin_view *v,
		       const struct thin_usage *usage, FILE *out)
{
	fprintf(out, "[");
	for (size_t i = 0; i < v->devs.nr; i++) {
		fprintf(out, "%s\n  {", i ? "," : "");
		for (size_t k = 0; k < o->nr_fields; k++) {
			uint64_t x = 0;
			enum cell_kind ck = field_value(o->fields[k], &v->devs.devs[i],
							&usage[i], v->sb.data_block_size, &x);
			fprintf(out, "%s\"%s\": ", k ? ", " : "", field_names[o->fields[k]]);
			if (o->fields[k] == TLF_NAME) {
				const char *name = o->name_of(o->names_ctx, &v->devs.devs[i], 1);
				if (name)
					fprintf(out, "\"%s\"", name);
				else
					fprintf(out, "null");
			} else if (ck == CELL_NONE)
				fprintf(out, "null");
			else
				fprintf(out, "%" PRIu64, x);
		}
		fprintf(out, "}");
	}
	fprintf(out, "%s]\n", v->devs.nr ? "\n" : "");
}

#define CELL_LEN 32

/* The text of cell (i, k): a name (left-aligned, any length) or a number. */
static const char *cell_text(const struct thin_ls_opts *o, const struct thin_view *v,
			     char (*cells)[CELL_LEN], size_t i, size_t k)
{
	const char *name;

	if (o->fields[k] != TLF_NAME)
		return cells[i * o->nr_fields + k];
	name = o->name_of(o->names_ctx, &v->devs.devs[i], 0);
	return name ? name : "-";
}

static int print_table(const struct thin_ls_opts *o, const struct thin_view *v,
			const struct thin_usage *usage, char (*cells)[CELL_LEN], FILE *out)
{
	size_t nf = o->nr_fields;
	size_t *width = calloc(nf + 1, sizeof(*width));

	if (!width)
		return -ENOMEM;
	for (size_t k = 0; k < nf; k++)
		width[k] = o->no_headers ? 0 : strlen(field_names[o->fields[k]]);
	for (size_t i = 0; i < v->devs.nr; i++)
		for (size_t k = 0; k < nf; k++) {
			char *c = cells[i * nf + k];
			uint64_t x = 0;
			enum cell_kind ck = field_value(o->fields[k], &v->devs.devs[i], &usage[i],
							v->sb.data_block_size, &x);
			if (o->fields[k] == TLF_NAME) {
				size_t n = strlen(cell_text(o, v, cells, i, k));
				if (n > width[k])
					width[k] = n;
				continue;
			}
			if (ck == CELL_NONE)
				snprintf(c, CELL_LEN, "-");
			else if (ck == CELL_PRETTY)
				thin_ls_pretty(x, c, CELL_LEN);
			else
				snprintf(c, CELL_LEN, "%" PRIu64, x);
			if (strlen(c) > width[k])
				width[k] = strlen(c);
		}
	if (!o->no_headers) {
		for (size_t k = 0; k < nf; k++)
			fprintf(out, o->fields[k] == TLF_NAME ? "%-*s " : "%*s ", (int)width[k],
				field_names[o->fields[k]]);
		fprintf(out, "\n");
	}
	for (size_t i = 0; i < v->devs.nr; i++) {
		for (size_t k = 0; k < nf; k++)
			fprintf(out, o->fields[k] == TLF_NAME ? "%-*s " : "%*s ", (int)width[k],
				cell_text(o, v, cells, i, k));
		fprintf(out, "\n");
	}
	free(width);
	return 0;
}

int thin_ls(const struct thin_ls_opts *o, FILE *out, char *msg, size_t msglen)
{
	struct thin_view v;
	struct thin_usage *usage;
	char (*cells)[CELL_LEN] = NULL;
	int walk = 0, r;

	for (size_t k = 0; k < o->nr_fields; k++) {
		walk |= field_needs_walk(o->fields[k]);
		if (o->fields[k] == TLF_NAME && !o->name_of) {
			snprintf(msg, msglen, "the NAME field needs a names table");
			return -EINVAL;
		}
	}
	r = thin_view_open(o->path, o->use_snap, o->snap_block, &v, msg, msglen);
	if (r < 0)
		return r;
	if (o->names_open) {
		r = o->names_open(o->names_ctx, &v, msg, msglen);
		if (r < 0) {
			thin_view_close(&v);
			return r;
		}
	}
	usage = calloc(v.devs.nr + 1, sizeof(*usage));
	if (!o->json)
		cells = calloc(v.devs.nr * o->nr_fields + 1, CELL_LEN);
	if (!usage || (!o->json && !cells)) {
		r = -ENOMEM;
		snprintf(msg, msglen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < v.devs.nr; i++)
		if (!v.devs.devs[i].has_details) {
			snprintf(msg, msglen, "thin device %" PRIu64 " has no details",
				 v.devs.devs[i].dev_id);
			r = -EILSEQ;
			goto out;
		}
	if (walk) {
		r = thin_usage_compute(v.md->bc, &v.devs, v.nr_data_blocks, usage, msg, msglen);
		if (r < 0)
			goto out;
	}
	if (o->json)
		print_json(o, &v, usage, out);
	else if (print_table(o, &v, usage, cells, out) < 0) {
		r = -ENOMEM;
		snprintf(msg, msglen, "out of memory");
		goto out;
	}
	if (fflush(out) != 0 || ferror(out)) {
		snprintf(msg, msglen, "write error: %s", strerror(errno));
		r = -EIO;
	}
out:
	free(cells);
	free(usage);
	thin_view_close(&v);
	return r;
}

