#include "util/vec.h"

#include <stdint.h>
#include <stdlib.h>

void *vec_grow(void *p, size_t *cap, size_t elem, size_t first)
{
	size_t n = *cap ? *cap : first / 2;
	void *np;

	if (!elem || !first || n > SIZE_MAX / 2 / elem)
		return NULL;
	n *= 2;
	np = realloc(p, n * elem);
	if (np)
		*cap = n;
	return np;
}
