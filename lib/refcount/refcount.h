/*
 * In-core reference-count maps: what checkers count and what writers
 * allocate from (below the transaction manager, so the tm needs no space
 * map).
 */
#ifndef THINMETA_REFCOUNT_REFCOUNT_H
#define THINMETA_REFCOUNT_REFCOUNT_H

#include <stdint.h>

/*
 * In-core ref-count map: regions allocated on first use, 2 bits per block
 * (a byte per block in regions holding counts above 2), counts above 254
 * in a side table.
 */

struct rcmap;

struct rcmap *rcmap_create(uint64_t nr_blocks);
void rcmap_destroy(struct rcmap *sm);
uint64_t rcmap_nr_blocks(const struct rcmap *sm);
uint32_t rcmap_get(const struct rcmap *sm, uint64_t b);
int rcmap_set(struct rcmap *sm, uint64_t b, uint32_t count);
int rcmap_inc(struct rcmap *sm, uint64_t b);
int rcmap_dec(struct rcmap *sm, uint64_t b);
/* Blocks with count > 0. */
uint64_t rcmap_nr_allocated(const struct rcmap *sm);
/* First block >= from with count 0, or UINT64_MAX. */
uint64_t rcmap_find_free(const struct rcmap *sm, uint64_t from);
/* Counts of blocks [base, base + n), saturated at 255, into out[0, n). */
void rcmap_get_counts8(const struct rcmap *sm, uint64_t base, uint64_t n, uint8_t *out);
/* Bytes of memory the map uses now. */
uint64_t rcmap_mem_bytes(const struct rcmap *sm);

#endif
