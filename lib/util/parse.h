/*
 * The one decimal integer parser: digits only (no sign, space, base prefix
 * or suffix), overflow checked.  Options, XML attributes, TSV fields and the
 * XML fast path all go through it.
 */
#ifndef THINMETA_UTIL_PARSE_H
#define THINMETA_UTIL_PARSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads the run of decimal digits starting at p (stopping at end or at the
 * first non-digit).  Returns the first byte after the run, or NULL when the
 * run is empty or its value exceeds UINT64_MAX.  Inline: the XML fast path
 * calls it for every number of every mapping line.
 */
static inline const char *parse_digits(const char *p, const char *end, uint64_t *out)
{
	const char *s = p;
	uint64_t v = 0;

	while (p < end && *p >= '0' && *p <= '9') {
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
