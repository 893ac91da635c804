/*
 * Internals of thin_reconcile: the emitter (one routine per output format
 * over typed fields) shared by the report writers.  Not installed.
 */
#ifndef THINMETA_NAMES_RECONCILE_INTERNAL_H
#define THINMETA_NAMES_RECONCILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "names/reconcile.h"

/* Emitter: one routine per format over typed fields */

enum fkind { FK_U64, FK_STR, FK_NULL, FK_BOOL, FK_IDS, FK_HEX };

struct fld {
	const char *key;
	enum fkind k;
	uint64_t u;
	const char *s;
	size_t slen;
	const uint64_t *ids;
	size_t nids;
};

#define FU(key_, v_) ((struct fld){ .key = key_, .k = FK_U64, .u = (v_) })
#define FS(key_, s_, n_) ((struct fld){ .key = key_, .k = FK_STR, .s = (s_), .slen = (n_) })
#define FZ(key_, s_) FS(key_, s_, strlen(s_))
#define FN(key_) ((struct fld){ .key = key_, .k = FK_NULL })
#define FB(key_, v_) ((struct fld){ .key = key_, .k = FK_BOOL, .u = !!(v_) })
#define FI(key_, p_, n_) ((struct fld){ .key = key_, .k = FK_IDS, .ids = (p_), .nids = (n_) })
#define FH(key_, s_, n_) ((struct fld){ .key = key_, .k = FK_HEX, .s = (s_), .slen = (n_) })
#define NF(a) (sizeof(a) / sizeof((a)[0]))

struct emitter {
	FILE *out;
	enum thin_rc_format fmt;
	int headers;
	int first_in_list;    /* JSON */
	int first_top;        /* JSON */
	const char *cls;      /* current list */
};


void rc_emit_obj(struct emitter *e, const char *name, const struct fld *f, size_t n);
void rc_list_begin(struct emitter *e, const char *name);
void rc_emit_item(struct emitter *e, const char *cls, const struct fld *f, size_t n);
void rc_list_end(struct emitter *e);
void rc_tsv_header(struct emitter *e, const char *cls, const struct fld *f, size_t n);
void rc_emit_fields(struct emitter *e, const struct fld *f, size_t n);
void rc_put_value(struct emitter *e, const struct fld *f);

#endif
