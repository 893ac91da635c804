#include "cmd/metadata_size.h"

#include "util/parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "spacemap/spacemap.h"

static const struct thin_unit units[] = {
	{ "b", "byte", 1ull },
	{ "s", "sector", 512ull },
	{ "k", "kibibyte", 1ull << 10 },
	{ "m", "mebibyte", 1ull << 20 },
	{ "g", "gibibyte", 1ull << 30 },
	{ "t", "tebibyte", 1ull << 40 },
	{ "p", "pebibyte", 1ull << 50 },
	{ "e", "exbibyte", 1ull << 60 },
	{ "K", "kilobyte", 1000ull },
	{ "M", "megabyte", 1000000ull },
	{ "G", "gigabyte", 1000000000ull },
	{ "T", "terabyte", 1000000000000ull },
	{ "P", "petabyte", 1000000000000000ull },
	{ "E", "exabyte", 1000000000000000000ull },
};

#define NR_UNITS (sizeof(units) / sizeof(units[0]))

const struct thin_unit *thin_unit_find(const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < NR_UNITS; i++) {
		const struct thin_unit *u = &units[i];
		size_t ln = strlen(u->name);
		char c = u->letter[0];

		if (!strcmp(s, u->letter))
			return u;
		if (!strcasecmp(s, u->name) ||
		    (n == ln + 1 && !strncasecmp(s, u->name, ln) && (s[ln] == 's' || s[ln] == 'S')))
			return u;
		/* KiB, MiB ... binary; kB, MB ... decimal */
		if (c >= 'k' && c <= 'p' && n == 3 && s[0] == (char)(c - 32) && !strcmp(s + 1, "iB"))
			return u;
		if (c == 'e' && !strcmp(s, "EiB"))
			return u;
		if (c >= 'A' && c <= 'Z' && n == 2 && s[1] == 'B' &&
		    (s[0] == c || (c == 'K' && s[0] == 'k')))
			return u;
	}
	return NULL;
}

int thin_parse_size(const char *s, const char *allowed, uint64_t default_unit, uint64_t *bytes)
{
	uint64_t v = 0, f = default_unit;
	const char *p = s;

	p = parse_digits(p, p + strlen(p), &v);
	if (!p)
		return -EINVAL;
	if (*p) {
		const struct thin_unit *u = thin_unit_find(p);
		if (!u || (allowed && !strchr(allowed, u->letter[0])))
			return -EINVAL;
		f = u->bytes;
	}
	if (f && v > UINT64_MAX / f)
		return -EINVAL;
	*bytes = v * f;
	return 0;
}

int thin_metadata_size_check(uint64_t block_bytes, uint64_t pool_bytes, char *err, size_t errlen)
{
	if (!block_bytes || block_bytes % (64 * 1024)) {
		snprintf(err, errlen, "block size must be a multiple of 64 KiB");
		return -EINVAL;
	}
	if (block_bytes > (1ull << 30)) {
		snprintf(err, errlen, "maximum block size is 1 GiB");
		return -EINVAL;
	}
	if (pool_bytes <= block_bytes) {
		snprintf(err, errlen, "pool size must be larger than block size");
		return -EINVAL;
	}
	return 0;
}

uint64_t thin_metadata_size_blocks(uint64_t block_bytes, uint64_t pool_bytes, uint64_t max_thins)
{
	uint64_t nr_data = pool_bytes / block_bytes;
	uint64_t leaves = nr_data / 126 + (nr_data % 126 != 0);
	uint64_t blocks = 1 + leaves;

	if (max_thins > SM_MAX_METADATA_BLOCKS || blocks + max_thins > SM_MAX_METADATA_BLOCKS)
		return SM_MAX_METADATA_BLOCKS;
	return blocks + max_thins;
}

void thin_size_print(char *buf, size_t len, uint64_t bytes, const struct thin_unit *u,
		     enum thin_size_format f)
{
	char num[64];

	if (bytes % u->bytes == 0)
		snprintf(num, sizeof(num), "%llu", (unsigned long long)(bytes / u->bytes));
	else
		snprintf(num, sizeof(num), "%.2f", (double)bytes / (double)u->bytes);
	switch (f) {
	case THIN_SIZE_NUMERIC:
		snprintf(buf, len, "%s", num);
		break;
	case THIN_SIZE_SHORT:
		snprintf(buf, len, "%s%s", num, u->letter);
		break;
	case THIN_SIZE_LONG:
		snprintf(buf, len, "%s%ss", num, u->name);
		break;
	default:
		snprintf(buf, len, "%s %ss", num, u->name);
		break;
	}
}
