#include "util/hash.h"

#include <xxhash.h>

uint64_t hash_xxh64(const void *p, size_t len, uint64_t seed)
{
	return XXH64(p, len, seed);
}

uint64_t hash_xxh3(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}
