/* Growing arrays: the one doubling step every module used to write out. */
#ifndef THINMETA_UTIL_VEC_H
#define THINMETA_UTIL_VEC_H

#include <stddef.h>

/*
 * Grows the array p of *cap elements of elem bytes: to first elements when
 * *cap is 0, else to twice as many.  Returns the new array (and sets *cap),
 * or NULL on overflow or out of memory, leaving p and *cap as they were.
 * Use: if (nr == cap) { T *n = vec_grow(a, &cap, sizeof(*n), 64); if (!n) ...; a = n; }
 */
void *vec_grow(void *p, size_t *cap, size_t elem, size_t first);

#endif
