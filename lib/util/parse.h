/*
 * The one decimal integer parser: digits only (no sign, space, base prefix
 * or suffix), overflow checked.  Options, XML attributes, TSV fields and the
 * XML fast path all go through it.
 */
#ifndef THINMETA_UTIL_PARSE_H
#define THINMETA_UTIL_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Of 8 bytes (the first one lowest): how many leading ones are decimal digits. */
static inline unsigned parse_digit_run8(uint64_t x)
{
	/*
	 * A digit is 0x3X with X + 6 still 0x3Y.  Per byte, so that adding 6
	 * carries only out of a non-digit, into the bytes after it.
	 */
	uint64_t bad = ((x & 0xF0F0F0F0F0F0F0F0ull) ^ 0x3030303030303030ull) |
		       (((x + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) ^ 0x3030303030303030ull);

	return bad ? (unsigned)__builtin_ctzll(bad) / 8 : 8;
}

/* The value of n (1..8) digits in the low bytes of x, the first one lowest. */
static inline uint64_t parse_digits8_value(uint64_t x, unsigned n)
{
	x -= 0x3030303030303030ull;
	x <<= 8 * (8 - n);   /* as leading zeros */
	x = x * 10 + (x >> 8);
	return (((x & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
		(((x >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >> 32;
}

/*
 * Reads the run of decimal digits starting at p (stopping at end or at the
 * first non-digit).  Returns the first byte after the run, or NULL when the
 * run is empty or its value exceeds UINT64_MAX.  Inline: the XML fast path
 * calls it for every number of every mapping line.  Where 8 bytes can be
 * read, the first up to 8 digits are decoded at once.
 */
static inline const char *parse_digits(const char *p, const char *end, uint64_t *out)
{
	const char *s = p, *lim;
	uint64_t v = 0;

	if (end - p >= 8) {
		uint64_t x;
		unsigned n;

		__builtin_memcpy(&x, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		x = __builtin_bswap64(x);
#endif
		n = parse_digit_run8(x);
		if (!n)
			return NULL;
		v = parse_digits8_value(x, n);
		p += n;
		if (n < 8) {
			*out = v;
			return p;
		}
	}
	/* up to 19 digits cannot overflow */
	lim = end - s > 19 ? s + 19 : end;
	while (p < lim && (unsigned char)(*p - '0') < 10) {
		v = v * 10 + (unsigned)(*p - '0');
		p++;
	}
	while (p < end && (unsigned char)(*p - '0') < 10) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
		p++;
	}
	if (p == s)
		return NULL;
	*out = v;
	return p;
}

/* The value of a hexadecimal digit (either case), or -1. */
static inline int parse_xdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* s[0..len) is exactly a decimal number: 0 with *out set, or -EINVAL. */
int parse_u64_n(const char *s, size_t len, uint64_t *out);

/* The NUL-terminated string s is exactly a decimal number: 0 or -EINVAL. */
int parse_u64(const char *s, uint64_t *out);

#endif
