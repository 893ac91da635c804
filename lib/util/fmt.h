/*
 * The one fast decimal formatter, for output that prints numbers by the
 * million (thin_dump's XML, thin_rmap's lines): digits written straight
 * into the caller's buffer, two a step from the end.
 */
#ifndef THINMETA_UTIL_FMT_H
#define THINMETA_UTIL_FMT_H

#include <stdint.h>

/* Longest output of fmt_u64: UINT64_MAX has 20 digits. */
#define FMT_U64_MAX 20

extern const char fmt_digit_pairs[201];
extern const uint64_t fmt_pow10[20];

/* Decimal digits of v (1 for 0). */
static inline unsigned fmt_nr_digits(uint64_t v)
{
	unsigned t = ((64u - (unsigned)__builtin_clzll(v | 1)) * 1233u) >> 12;   /* ~log10 */
	unsigned d = t + (v >= fmt_pow10[t]);

	return d ? d : 1;
}

/* Writes v in decimal at p (no terminator); the end of the digits. */
static inline char *fmt_u64(char *p, uint64_t v)
{
	char *end = p + fmt_nr_digits(v);

	p = end;
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;

		v /= 100;
		*--p = fmt_digit_pairs[d + 1];
		*--p = fmt_digit_pairs[d];
	}
	if (v >= 10) {
		unsigned d = (unsigned)v * 2;

		*--p = fmt_digit_pairs[d + 1];
		*--p = fmt_digit_pairs[d];
	} else {
		*--p = (char)('0' + v);
	}
	return end;
}

#endif
