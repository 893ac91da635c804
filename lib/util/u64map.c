#include "util/u64map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/vec.h"

void u64map_init(struct u64map *m)
{
	memset(m, 0, sizeof(*m));
}

void u64map_release(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	u64map_init(m);
}

void u64map_clear(struct u64map *m)
{
	if (m->used)
		memset(m->used, 0, m->cap);
	m->nr = 0;
}

static size_t slot_of(const struct u64map *m, uint64_t key)
{
	return (size_t)hash_mix64(key) & (m->cap - 1);
}

static int grow(struct u64map *m)
{
	struct u64map n;
	size_t cap = m->cap ? m->cap * 2 : 64;

	n.keys = malloc(cap * sizeof(uint64_t));
	n.vals = malloc(cap * sizeof(uint64_t));
	n.used = calloc(cap, 1);
	n.cap = cap;
	n.nr = 0;
	if (!n.keys || !n.vals || !n.used) {
		free(n.keys);
		free(n.vals);
		free(n.used);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t s;

		if (!m->used[i])
			continue;
		s = slot_of(&n, m->keys[i]);
		while (n.used[s])
			s = (s + 1) & (cap - 1);
		n.used[s] = 1;
		n.keys[s] = m->keys[i];
		n.vals[s] = m->vals[i];
		n.nr++;
	}
	u64map_release(m);
	*m = n;
	return 0;
}

int u64map_put(struct u64map *m, uint64_t key, uint64_t val)
{
	size_t s;

	if ((m->nr + 1) * 4 > m->cap * 3) {
		int r = grow(m);
		if (r < 0)
			return r;
	}
	s = slot_of(m, key);
	while (m->used[s]) {
		if (m->keys[s] == key) {
			m->vals[s] = val;
			return 0;
		}
		s = (s + 1) & (m->cap - 1);
	}
	m->used[s] = 1;
	m->keys[s] = key;
	m->vals[s] = val;
	m->nr++;
	return 0;
}

static int find(const struct u64map *m, uint64_t key, size_t *slot)
{
	size_t s;

	if (!m->nr)
		return 0;
	s = slot_of(m, key);
	while (m->used[s]) {
		if (m->keys[s] == key) {
			*slot = s;
			return 1;
		}
		s = (s + 1) & (m->cap - 1);
	}
	return 0;
}

int u64map_get(const struct u64map *m, uint64_t key, uint64_t *val)
{
	size_t s;

	if (!find(m, key, &s))
		return 0;
	if (val)
		*val = m->vals[s];
	return 1;
}

int u64map_del(struct u64map *m, uint64_t key)
{
	size_t hole, s, mask = m->cap - 1;

	if (!find(m, key, &hole))
		return 0;
	m->used[hole] = 0;
	m->nr--;
	/* backward shift: move later members of the cluster into the hole */
	for (s = (hole + 1) & mask; m->used[s]; s = (s + 1) & mask) {
		size_t home = slot_of(m, m->keys[s]);

		/* s may move to the hole only if its home is not in (hole, s] */
		if (((s - home) & mask) < ((s - hole) & mask))
			continue;
		m->used[hole] = 1;
		m->keys[hole] = m->keys[s];
		m->vals[hole] = m->vals[s];
		m->used[s] = 0;
		hole = s;
	}
	return 1;
}

size_t u64map_next(const struct u64map *m, size_t from)
{
	while (from < m->cap && !m->used[from])
		from++;
	return from < m->cap ? from : m->cap;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int u64map_sorted_keys(const struct u64map *m, uint64_t **keys, size_t *nr)
{
	uint64_t *k;
	size_t n = 0;

	*keys = NULL;
	*nr = 0;
	if (!m->nr)
		return 0;
	k = malloc(m->nr * sizeof(*k));
	if (!k)
		return -ENOMEM;
	for (size_t i = u64map_next(m, 0); i < m->cap; i = u64map_next(m, i + 1))
		k[n++] = m->keys[i];
	vec_sort(k, n, sizeof(*k), cmp_u64);
	*keys = k;
	*nr = n;
	return 0;
}
