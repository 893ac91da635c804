/* Growing arrays: the one doubling step every module used to write out. */
#ifndef THINMETA_UTIL_VEC_H
#define THINMETA_UTIL_VEC_H

#include <stddef.h>
#include <stdlib.h>

/*
 * Grows the array p of *cap elements of elem bytes: to first elements when
 * *cap is 0, else to twice as many.  Returns the new array (and sets *cap),
 * or NULL on overflow or out of memory, leaving p and *cap as they were.
 * Use: if (nr == cap) { T *n = vec_grow(a, &cap, sizeof(*n), 64); if (!n) ...; a = n; }
 */
void *vec_grow(void *p, size_t *cap, size_t elem, size_t first);

/*
 * qsort and bsearch for arrays that may be empty: C leaves qsort(NULL, 0)
 * and bsearch(k, NULL, 0) undefined, and an empty array is often NULL here.
 */
static inline void vec_sort(void *base, size_t n, size_t elem,
			    int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(base, n, elem, cmp);
}

static inline void *vec_find(const void *key, const void *base, size_t n, size_t elem,
			     int (*cmp)(const void *, const void *))
{
	return n ? bsearch(key, base, n, elem, cmp) : NULL;
}

#endif
