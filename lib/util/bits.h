/*
 * Bit counting that stays inline on the baseline x86-64 (no POPCNT
 * instruction assumed): __builtin_popcountll there is a libgcc call.
 */
#ifndef THINMETA_UTIL_BITS_H
#define THINMETA_UTIL_BITS_H

#include <stdint.h>

static inline unsigned tm_popcount64(uint64_t x)
{
#if defined(__POPCNT__) || !defined(__x86_64__)
	return (unsigned)__builtin_popcountll(x);
#else
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
#endif
}

#endif
