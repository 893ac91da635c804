#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/vec.h"

Test(vec, grows_from_first_then_doubles_and_keeps_contents)
{
	size_t cap = 0;
	int *a = NULL;

	a = vec_grow(a, &cap, sizeof(*a), 16);
	cr_assert_not_null(a);
	cr_assert_eq(cap, 16);
	for (int i = 0; i < 16; i++)
		a[i] = i;
	a = vec_grow(a, &cap, sizeof(*a), 16);
	cr_assert_not_null(a);
	cr_assert_eq(cap, 32);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(a[i], i);
	free(a);
}

Test(vec, overflow_fails_and_leaves_the_array)
{
	size_t cap = SIZE_MAX / 8;
	char dummy[1];

	cr_assert_null(vec_grow(dummy, &cap, 8, 16));
	cr_assert_eq(cap, SIZE_MAX / 8, "cap unchanged on failure");
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* An empty array is often NULL: qsort/bsearch on it are undefined (UBSan). */
Test(vec, sort_and_find_take_an_empty_null_array)
{
	int key = 3;

	vec_sort(NULL, 0, sizeof(int), cmp_int);
	cr_assert_null(vec_find(&key, NULL, 0, sizeof(int), cmp_int));
}

Test(vec, sort_then_find)
{
	int a[] = { 9, 3, 7, 1, 5 }, key = 7, missing = 4;
	const int *hit;

	vec_sort(a, 5, sizeof(*a), cmp_int);
	for (int i = 1; i < 5; i++)
		cr_assert_lt(a[i - 1], a[i]);
	hit = vec_find(&key, a, 5, sizeof(*a), cmp_int);
	cr_assert_not_null(hit);
	cr_assert_eq(*hit, 7);
	cr_assert_null(vec_find(&missing, a, 5, sizeof(*a), cmp_int));
}
