/*
 * Content hashing (xxHash wrapper; xxhash.h is included only by hash.c).
 * Used to recognise identical B-tree leaves when sharing them on restore.
 */
#ifndef THINMETA_UTIL_HASH_H
#define THINMETA_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

struct hash128 {
	uint64_t lo, hi;
};

/* 64-bit hash of len bytes with a seed. */
uint64_t hash64(const void *p, size_t len, uint64_t seed);
/* 128-bit hash of len bytes (collisions are negligible for dedup). */
struct hash128 hash128(const void *p, size_t len);

/* A cheap mixer for one 64-bit word (no xxhash; per-entry use). */
static inline uint64_t hash_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

#endif
