#include "cmd/rmap-internal.h"

#include <string.h>

/*
 * 0.9.0 orders its runs with std::sort on data_begin alone, which is not
 * stable: runs with the same data_begin (a block shared by several devices)
 * come out in the order that introsort leaves them.  To print them in the
 * same order we sort with the same algorithm (GNU libstdc++'s introsort:
 * median-of-three to first, unguarded partition, heapsort past 2*lg(n)
 * levels, final insertion sort over blocks of 16), reimplemented here.
 */

typedef struct rrun elem;

static inline int less(const elem *a, const elem *b)
{
	return a->data_begin < b->data_begin;
}

static inline void swap_elem(elem *a, elem *b)
{
	elem t = *a;

	*a = *b;
	*b = t;
}

static void median_to_first(elem *result, elem *a, elem *b, elem *c)
{
	if (less(a, b)) {
		if (less(b, c))
			swap_elem(result, b);
		else if (less(a, c))
			swap_elem(result, c);
		else
			swap_elem(result, a);
	} else if (less(a, c)) {
		swap_elem(result, a);
	} else if (less(b, c)) {
		swap_elem(result, c);
	} else {
		swap_elem(result, b);
	}
}

static elem *unguarded_partition(elem *first, elem *last, const elem *pivot)
{
	for (;;) {
		while (less(first, pivot))
			first++;
		last--;
		while (less(pivot, last))
			last--;
		if (!(first < last))
			return first;
		swap_elem(first, last);
		first++;
	}
}

static void push_heap(elem *first, ptrdiff_t hole, ptrdiff_t top, elem value)
{
	ptrdiff_t parent = (hole - 1) / 2;

	while (hole > top && less(&first[parent], &value)) {
		first[hole] = first[parent];
		hole = parent;
		parent = (hole - 1) / 2;
	}
	first[hole] = value;
}

static void adjust_heap(elem *first, ptrdiff_t hole, ptrdiff_t len, elem value)
{
	ptrdiff_t top = hole, child = hole;

	while (child < (len - 1) / 2) {
		child = 2 * (child + 1);
		if (less(&first[child], &first[child - 1]))
			child--;
		first[hole] = first[child];
		hole = child;
	}
	if ((len & 1) == 0 && child == (len - 2) / 2) {
		child = 2 * (child + 1);
		first[hole] = first[child - 1];
		hole = child - 1;
	}
	push_heap(first, hole, top, value);
}

static void heap_sort(elem *first, elem *last)
{
	ptrdiff_t len = last - first;

	if (len >= 2)
		for (ptrdiff_t parent = (len - 2) / 2;; parent--) {
			adjust_heap(first, parent, len, first[parent]);
			if (parent == 0)
				break;
		}
	while (last - first > 1) {
		elem value;

		last--;
		value = *last;
		*last = *first;
		adjust_heap(first, 0, last - first, value);
	}
}

static void introsort_loop(elem *first, elem *last, int depth)
{
	while (last - first > 16) {
		elem *cut;

		if (depth == 0) {
			heap_sort(first, last);
			return;
		}
		depth--;
		median_to_first(first, first + 1, first + (last - first) / 2, last - 1);
		cut = unguarded_partition(first + 1, last, first);
		introsort_loop(cut, last, depth);
		last = cut;
	}
}

static void linear_insert(elem *last)
{
	elem val = *last, *next = last - 1;

	while (less(&val, next)) {
		*last = *next;
		last = next;
		next--;
	}
	*last = val;
}

static void insertion_sort(elem *first, elem *last)
{
	if (first == last)
		return;
	for (elem *i = first + 1; i != last; i++) {
		if (less(i, first)) {
			elem val = *i;
			memmove(first + 1, first, (size_t)(i - first) * sizeof(elem));
			*first = val;
		} else {
			linear_insert(i);
		}
	}
}

void thin_rmap_sort_runs(struct rrun *first, size_t n)
{
	elem *last = first + n;

	if (n < 2)
		return;
	introsort_loop(first, last, 2 * (63 - __builtin_clzll(n)));
	if (n > 16) {
		insertion_sort(first, first + 16);
		for (elem *i = first + 16; i != last; i++)
			linear_insert(i);
	} else {
		insertion_sort(first, last);
	}
}
