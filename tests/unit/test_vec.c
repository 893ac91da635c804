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
