/* Non-cryptographic hashing (xxHash); the only user of xxhash.h. */
#ifndef THINMETA_UTIL_HASH_H
#define THINMETA_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_xxh64(const void *p, size_t len, uint64_t seed);
uint64_t hash_xxh3(const void *p, size_t len);

#endif
