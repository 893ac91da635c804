#include "repair/repair.h"

#include <errno.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "thin/superblock.h"
#include "util/parse.h"

/*----------------------------------------------------------------*/
/*
 * LVM's record of a thin pool (lvm2's text metadata format, as
 * lib/format_text/export.c writes it into /etc/lvm/backup/VG and
 * /etc/lvm/archive/VG_NNNNN-RAND.vg): sections `name { ... }`, values
 * `key = 12`, `key = "text"`, `key = [ ... ]`, comments from '#'.  The VG
 * section holds `extent_size` (sectors) and `logical_volumes`; the pool
 * LV's segment of `type = "thin-pool"` names its `metadata` and `pool`
 * (data) LVs and holds `transaction_id` and `chunk_size` (sectors); an
 * LV's size is the sum of its segments' `extent_count`.
 */

enum { LV_SECTION, LV_NUMBER, LV_STRING, LV_LIST };

struct lnode {
	char *key;
	int kind;
	long long num;
	char *str;
	struct lnode *kids;        /* section members */
	size_t nr, cap;
};

struct lparse {
	const char *p, *end;
	int depth;
	int err;
};

static void skip_space(struct lparse *ps)
{
	while (ps->p < ps->end) {
		if (*ps->p == '#') {
			while (ps->p < ps->end && *ps->p != '\n')
				ps->p++;
		} else if (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') {
			ps->p++;
		} else {
			break;
		}
	}
}

static int word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '+' || c == '-';
}

static char *parse_word(struct lparse *ps)
{
	const char *s = ps->p;
	char *w;

	while (ps->p < ps->end && word_char(*ps->p))
		ps->p++;
	if (ps->p == s)
		return NULL;
	w = strndup(s, (size_t)(ps->p - s));
	if (!w)
		ps->err = -ENOMEM;
	return w;
}

static char *parse_string(struct lparse *ps)
{
	char *out = malloc((size_t)(ps->end - ps->p) + 1);
	size_t n = 0;

	if (!out) {
		ps->err = -ENOMEM;
		return NULL;
	}
	ps->p++;   /* the opening quote */
	while (ps->p < ps->end && *ps->p != '"') {
		if (*ps->p == '\\' && ps->p + 1 < ps->end)
			ps->p++;
		out[n++] = *ps->p++;
	}
	if (ps->p >= ps->end) {
		free(out);
		ps->err = -EINVAL;
		return NULL;
	}
	ps->p++;
	out[n] = '\0';
	return out;
}

static void lnode_release(struct lnode *n)
{
	for (size_t i = 0; i < n->nr; i++)
		lnode_release(&n->kids[i]);
	free(n->kids);
	free(n->key);
	free(n->str);
}

/* A list value: skipped, except that its strings and numbers must parse. */
static void skip_list(struct lparse *ps)
{
	ps->p++;
	for (;;) {
		skip_space(ps);
		if (ps->p >= ps->end) {
			ps->err = -EINVAL;
			return;
		}
		if (*ps->p == ']') {
			ps->p++;
			return;
		}
		if (*ps->p == ',') {
			ps->p++;
		} else if (*ps->p == '"') {
			free(parse_string(ps));
		} else {
			char *w = parse_word(ps);
			if (!w) {
				if (!ps->err)
					ps->err = -EINVAL;
				return;
			}
			free(w);
		}
		if (ps->err)
			return;
	}
}

static void parse_members(struct lparse *ps, struct lnode *sec);

static void parse_member(struct lparse *ps, struct lnode *sec)
{
	struct lnode *m;
	char *key = parse_word(ps);

	if (!key) {
		if (!ps->err)
			ps->err = -EINVAL;
		return;
	}
	if (sec->nr == sec->cap) {
		size_t c = sec->cap ? 2 * sec->cap : 8;
		struct lnode *k = realloc(sec->kids, c * sizeof(*k));

		if (!k) {
			free(key);
			ps->err = -ENOMEM;
			return;
		}
		sec->kids = k;
		sec->cap = c;
	}
	m = &sec->kids[sec->nr++];
	memset(m, 0, sizeof(*m));
	m->key = key;
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == '{') {
		ps->p++;
		m->kind = LV_SECTION;
		if (++ps->depth > 32) {
			ps->err = -EINVAL;
			return;
		}
		parse_members(ps, m);
		ps->depth--;
		if (!ps->err && (ps->p >= ps->end || *ps->p != '}'))
			ps->err = -EINVAL;
		ps->p++;
		return;
	}
	if (ps->p >= ps->end || *ps->p != '=') {
		ps->err = -EINVAL;
		return;
	}
	ps->p++;
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == '"') {
		m->kind = LV_STRING;
		m->str = parse_string(ps);
	} else if (ps->p < ps->end && *ps->p == '[') {
		m->kind = LV_LIST;
		skip_list(ps);
	} else {
		char *w = parse_word(ps), *e;

		m->kind = LV_NUMBER;
		if (!w) {
			if (!ps->err)
				ps->err = -EINVAL;
			return;
		}
		errno = 0;
		m->num = strtoll(w, &e, 10);
		if (errno || *e)
			m->kind = LV_STRING;   /* a float or a word: not used here */
		m->str = w;
	}
}

static void parse_members(struct lparse *ps, struct lnode *sec)
{
	for (;;) {
		skip_space(ps);
		if (ps->err || ps->p >= ps->end || *ps->p == '}')
			return;
		parse_member(ps, sec);
	}
}

static const struct lnode *child(const struct lnode *sec, const char *key)
{
	for (size_t i = 0; sec && i < sec->nr; i++)
		if (!strcmp(sec->kids[i].key, key))
			return &sec->kids[i];
	return NULL;
}

static int number(const struct lnode *sec, const char *key, long long *v)
{
	const struct lnode *n = child(sec, key);

	if (!n || n->kind != LV_NUMBER || n->num < 0)
		return -1;
	*v = n->num;
	return 0;
}

static const char *string(const struct lnode *sec, const char *key)
{
	const struct lnode *n = child(sec, key);

	return n && n->kind == LV_STRING ? n->str : NULL;
}

/* Size of an LV in extents: the sum of its segments' extent_count. */
static int lv_extents(const struct lnode *lv, long long *extents)
{
	long long total = 0, c;
	int segs = 0;

	for (size_t i = 0; i < lv->nr; i++) {
		const struct lnode *s = &lv->kids[i];

		if (s->kind != LV_SECTION || strncmp(s->key, "segment", 7))
			continue;
		if (number(s, "extent_count", &c) < 0)
			return -1;
		total += c;
		segs++;
	}
	*extents = total;
	return segs ? 0 : -1;
}

/* The thin-pool segment whose metadata LV is meta_lv, and its LV. */
static const struct lnode *find_pool_seg(const struct lnode *lvs, const char *meta_lv,
					 const struct lnode **pool_lv)
{
	for (size_t i = 0; i < lvs->nr; i++) {
		const struct lnode *lv = &lvs->kids[i];

		if (lv->kind != LV_SECTION)
			continue;
		for (size_t j = 0; j < lv->nr; j++) {
			const struct lnode *s = &lv->kids[j];
			const char *t = s->kind == LV_SECTION ? string(s, "type") : NULL;
			const char *m = s->kind == LV_SECTION ? string(s, "metadata") : NULL;

			if (t && !strcmp(t, "thin-pool") && m && !strcmp(m, meta_lv)) {
				*pool_lv = lv;
				return s;
			}
		}
	}
	return NULL;
}

static int has_messages(const struct lnode *seg)
{
	for (size_t i = 0; i < seg->nr; i++)
		if (seg->kids[i].kind == LV_SECTION && !strncmp(seg->kids[i].key, "message", 7))
			return 1;
	return 0;
}

static int pool_from_text(const char *text, size_t len, const char *vg, const char *meta_lv,
			  struct thin_lvm_pool *out, char *msg, size_t msglen)
{
	struct lparse ps = { .p = text, .end = text + len };
	struct lnode root = { .kind = LV_SECTION };
	const struct lnode *vgs, *lvs, *seg, *pool_lv = NULL, *data_lv;
	long long extent_size, tid, chunk, extents;
	const char *data_name;
	int r = -EINVAL;

	parse_members(&ps, &root);
	if (ps.err || ps.p < ps.end) {
		snprintf(msg, msglen, "cannot parse it%s", ps.err == -ENOMEM ? ": out of memory" : "");
		r = ps.err ? ps.err : -EINVAL;
		goto out;
	}
	vgs = child(&root, vg);
	lvs = vgs && vgs->kind == LV_SECTION ? child(vgs, "logical_volumes") : NULL;
	if (!lvs || number(vgs, "extent_size", &extent_size) < 0 || !extent_size) {
		snprintf(msg, msglen, "no volume group '%s' with an extent_size and logical volumes",
			 vg);
		goto out;
	}
	seg = find_pool_seg(lvs, meta_lv, &pool_lv);
	if (!seg) {
		snprintf(msg, msglen, "no thin-pool segment with metadata = \"%s\"", meta_lv);
		goto out;
	}
	data_name = string(seg, "pool");
	data_lv = data_name ? child(lvs, data_name) : NULL;
	if (number(seg, "transaction_id", &tid) < 0 || number(seg, "chunk_size", &chunk) < 0 ||
	    !chunk || !data_lv || lv_extents(data_lv, &extents) < 0) {
		snprintf(msg, msglen, "the thin-pool segment of '%s' lacks transaction_id, chunk_size "
				      "or a data LV with segments",
			 pool_lv->key);
		goto out;
	}
	snprintf(out->pool, sizeof(out->pool), "%s", pool_lv->key);
	out->transaction_id = (uint64_t)tid;
	out->chunk_size = (uint64_t)chunk;
	out->data_sectors = (uint64_t)extents * (uint64_t)extent_size;
	out->nr_data_blocks = out->data_sectors / out->chunk_size;
	out->pending_messages = has_messages(seg);
	r = 0;
out:
	lnode_release(&root);
	return r;
}

#define LVM_FILE_MAX (64u << 20)

static int read_file(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t got;

		if (n == cap) {
			char *nb;

			cap = cap ? 2 * cap : 65536;
			if (cap > LVM_FILE_MAX) {
				r = -EFBIG;
				break;
			}
			nb = realloc(buf, cap);
			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f))
				r = -EIO;
			break;
		}
	}
	fclose(f);
	if (r < 0) {
		free(buf);
		return r;
	}
	*text = buf;
	*len = n;
	return 0;
}

/* The newest archive of vg: VG_NNNNN-RAND.vg with the highest NNNNN. */
static int newest_archive(const char *dir, const char *vg, char *path, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t vl = strlen(vg);
	uint64_t best = 0;
	int found = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		size_t nl = strlen(n);
		uint64_t ix;
		const char *end;

		if (nl < vl + 5 || strncmp(n, vg, vl) || n[vl] != '_' || strcmp(n + nl - 3, ".vg"))
			continue;
		if (n[vl + 1] < '0' || n[vl + 1] > '9')
			continue;
		end = parse_digits(n + vl + 1, n + nl, &ix);
		if (!end || (*end != '-' && *end != '.'))
			continue;
		if ((!found || ix > best) && strlen(dir) + nl + 2 <= len) {
			best = ix;
			found = 1;
			memcpy(path, dir, strlen(dir));
			path[strlen(dir)] = '/';
			memcpy(path + strlen(dir) + 1, n, nl + 1);
		}
	}
	closedir(d);
	return found ? 0 : -ENOENT;
}

int thin_lvm_pool_read(const char *lvm_dir, const char *vg, const char *meta_lv,
		       struct thin_lvm_pool *out, char *msg, size_t msglen)
{
	char path[PATH_MAX], dir[PATH_MAX], why[256];
	char *text = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	snprintf(out->vg, sizeof(out->vg), "%s", vg);
	snprintf(path, sizeof(path), "%s/backup/%s", lvm_dir, vg);
	r = read_file(path, &text, &len);
	if (r == -ENOENT) {
		snprintf(dir, sizeof(dir), "%s/archive", lvm_dir);
		r = newest_archive(dir, vg, path, sizeof(path));
		if (r < 0) {
			snprintf(msg, msglen, "no LVM backup %s/backup/%s nor archive %s/%s_*.vg",
				 lvm_dir, vg, dir, vg);
			return -ENOENT;
		}
		r = read_file(path, &text, &len);
	}
	if (r < 0) {
		snprintf(msg, msglen, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	why[0] = '\0';
	r = pool_from_text(text, len, vg, meta_lv, out, why, sizeof(why));
	free(text);
	if (r < 0) {
		snprintf(msg, msglen, "%s: %s", path, why);
		return r;
	}
	snprintf(out->source, sizeof(out->source), "%s", path);
	return 0;
}

/*----------------------------------------------------------------*/
/* Device-mapper names: VG-LV with each '-' inside a name doubled */

static int split_dm_name(const char *name, char *vg, size_t vglen, char *lv, size_t lvlen)
{
	size_t v = 0, l = 0;
	const char *p = name;
	int in_lv = 0;

	for (; *p; p++) {
		char c = *p;

		if (c == '-' && p[1] == '-') {
			p++;
		} else if (c == '-') {
			if (in_lv)
				return -EINVAL;   /* a layer suffix: not an LV itself */
			in_lv = 1;
			continue;
		}
		if (!in_lv && v + 1 < vglen)
			vg[v++] = c;
		else if (in_lv && l + 1 < lvlen)
			lv[l++] = c;
		else
			return -EINVAL;
	}
	vg[v] = lv[l] = '\0';
	return in_lv && v && l ? 0 : -EINVAL;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && !strcmp(s + n - k, suffix);
}

int thin_lvm_tmeta_name(const char *path, char *vg, size_t vglen, char *lv, size_t lvlen)
{
	char name[256], buf[PATH_MAX];
	const char *base;
	struct stat st;
	FILE *f;

	/* a block device: its device-mapper name */
	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
		snprintf(buf, sizeof(buf), "/sys/dev/block/%u:%u/dm/name", major(st.st_rdev),
			 minor(st.st_rdev));
		f = fopen(buf, "r");
		if (f) {
			int ok = fgets(name, sizeof(name), f) != NULL;

			fclose(f);
			name[strcspn(name, "\n")] = '\0';
			if (ok && split_dm_name(name, vg, vglen, lv, lvlen) == 0 &&
			    ends_with(lv, "_tmeta"))
				return 0;
		}
	}
	/* the name it was given: /dev/VG/LV, or a device-mapper name (/dev/mapper/VG-LV) */
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!strncmp(path, "/dev/", 5) && base > path + 5 && !strchr(base, '/') &&
	    strncmp(path + 5, "mapper/", 7)) {
		const char *vgs = path + 5;
		size_t vl = (size_t)(base - 1 - vgs);

		if (vl && vl < vglen && !memchr(vgs, '/', vl) && ends_with(base, "_tmeta") &&
		    strlen(base) < lvlen) {
			memcpy(vg, vgs, vl);
			vg[vl] = '\0';
			snprintf(lv, lvlen, "%s", base);
			return 0;
		}
	}
	if (split_dm_name(base, vg, vglen, lv, lvlen) == 0 && ends_with(lv, "_tmeta"))
		return 0;
	return -ENOENT;
}

const char *thin_lvm_dir(void)
{
	const char *d = getenv("THINMETA_LVM_DIR");

	return d && *d ? d : "/etc/lvm";
}

int thin_repair_lvm_values(const char *input, struct thin_repair_opts *o, char *note, size_t len)
{
	struct thin_lvm_pool p;
	char vg[128], lv[128], msg[512];
	int r;

	note[0] = '\0';
	if (o->set_transaction_id || o->set_data_block_size || o->set_nr_data_blocks ||
	    o->set_mapping_root || thin_lvm_tmeta_name(input, vg, sizeof(vg), lv, sizeof(lv)) < 0)
		return 0;
	r = thin_lvm_pool_read(thin_lvm_dir(), vg, lv, &p, msg, sizeof(msg));
	if (r < 0) {
		snprintf(note, len, "superblock lost and LVM's record of %s/%s unusable: %s", vg, lv,
			 msg);
		return r;
	}
	if (p.chunk_size < THIN_MIN_DATA_BLOCK_SIZE || p.chunk_size > THIN_MAX_DATA_BLOCK_SIZE ||
	    p.chunk_size % THIN_MIN_DATA_BLOCK_SIZE) {
		snprintf(note, len, "superblock lost and LVM's record of %s/%s unusable: chunk_size "
				    "%llu in %s is not a data block size",
			 vg, p.pool, (unsigned long long)p.chunk_size, p.source);
		return -EINVAL;
	}
	o->set_transaction_id = o->set_data_block_size = o->set_nr_data_blocks = 1;
	o->transaction_id = p.transaction_id;
	o->data_block_size = (uint32_t)p.chunk_size;
	o->nr_data_blocks = p.nr_data_blocks;
	snprintf(note, len, "superblock lost: using LVM's record of pool %s/%s (%s): "
			    "--transaction-id %llu --data-block-size %u --nr-data-blocks %llu",
		 vg, p.pool, p.source, (unsigned long long)o->transaction_id, o->data_block_size,
		 (unsigned long long)o->nr_data_blocks);
	return 1;
}
