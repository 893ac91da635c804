#include "util/parse.h"

#include <errno.h>
#include <string.h>

int parse_u64_n(const char *s, size_t len, uint64_t *out)
{
	uint64_t v;
	const char *e = parse_digits(s, s + len, &v);

	if (!e || e != s + len)
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_u64(const char *s, uint64_t *out)
{
	return parse_u64_n(s, strlen(s), out);
}
