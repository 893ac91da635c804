#include "util/hash.h"

#include <xxhash.h>

uint64_t hash64(const void *p, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, len, seed);
}

struct hash128 hash128(const void *p, size_t len)
{
	XXH128_hash_t h = XXH3_128bits(p, len);
	struct hash128 r = { h.low64, h.high64 };

	return r;
}
