#include "util/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static void put(char *buf, size_t len, size_t *n, char c)
{
	if (*n + 1 < len)
		buf[*n] = c;
	(*n)++;
}

size_t cli_shell_quote(const char *s, char *buf, size_t len)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789_/.,:=+-@%";
	size_t n = 0;

	if (*s && strspn(s, plain) == strlen(s)) {
		for (; *s; s++)
			put(buf, len, &n, *s);
	} else {
		put(buf, len, &n, '\'');
		for (; *s; s++) {
			if (*s == '\'') {
				put(buf, len, &n, '\'');
				put(buf, len, &n, '\\');
				put(buf, len, &n, '\'');
			}
			put(buf, len, &n, *s);
		}
		put(buf, len, &n, '\'');
	}
	if (len)
		buf[n < len ? n : len - 1] = '\0';
	return n;
}
