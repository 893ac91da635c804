#include "repair/repair.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "repair/repair-internal.h"

/*----------------------------------------------------------------*/
/* Notes */

void repair_note(struct notes *n, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (n->nr == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 16;
		char **ns = realloc(n->s, cap * sizeof(*ns));
		if (!ns)
			return;
		n->s = ns;
		n->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) >= 0)
		n->s[n->nr++] = s;
	va_end(ap);
}

void repair_notes_clear(struct notes *n, size_t keep)
{
	while (n->nr > keep)
		free(n->s[--n->nr]);
}

/*----------------------------------------------------------------*/
/* Growable arrays */

int repair_grow(void **p, size_t *cap, size_t nr, size_t size)
{
	void *np;
	size_t c;

	if (nr < *cap)
		return 0;
	c = *cap ? *cap * 2 : 16;
	np = realloc(*p, c * size);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = c;
	return 0;
}


int repair_ranges_add(struct ranges *rs, uint64_t lo, uint64_t hi)
{
	if (rs->nr && rs->r[rs->nr - 1].hi >= lo && rs->r[rs->nr - 1].lo <= lo) {
		if (hi > rs->r[rs->nr - 1].hi)
			rs->r[rs->nr - 1].hi = hi;
		return 0;
	}
	if (repair_grow((void **)&rs->r, &rs->cap, rs->nr, sizeof(*rs->r)))
		return -ENOMEM;
	rs->r[rs->nr].lo = lo;
	rs->r[rs->nr].hi = hi;
	rs->nr++;
	return 0;
}
