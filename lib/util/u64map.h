/*
 * A small hash map from 64-bit keys to 64-bit values (open addressing,
 * linear probing, deletion by backward shift).  Used by the transaction
 * manager and the space maps for their per-transaction sets.
 */
#ifndef THINMETA_UTIL_U64MAP_H
#define THINMETA_UTIL_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map {
	uint64_t *keys;
	uint64_t *vals;
	uint8_t *used;
	size_t cap;      /* a power of two, or 0 */
	size_t nr;
};

void u64map_init(struct u64map *m);
void u64map_release(struct u64map *m);
/* Removes every entry (keeps the memory). */
void u64map_clear(struct u64map *m);

/* Inserts or replaces; 0 or -ENOMEM. */
int u64map_put(struct u64map *m, uint64_t key, uint64_t val);
/* 1 and *val when present, 0 when absent (val may be NULL). */
int u64map_get(const struct u64map *m, uint64_t key, uint64_t *val);
/* 1 when an entry was removed, 0 when there was none. */
int u64map_del(struct u64map *m, uint64_t key);

/*
 * Iteration: for (size_t i = u64map_next(m, 0); i < m->cap; i = u64map_next(m, i + 1)).
 * The map must not change during the iteration.
 */
size_t u64map_next(const struct u64map *m, size_t from);

/* The keys in ascending order (malloc'd, caller frees; NULL with *nr 0 when empty). */
int u64map_sorted_keys(const struct u64map *m, uint64_t **keys, size_t *nr);

#endif
