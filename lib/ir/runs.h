/*
 * The run coalescer: mappings fed in key order come out as IR events, a
 * run of mappings contiguous in both virtual and data space with one time
 * stamp merged into one range_map (a run of one is a single_map), as
 * thin_dump prints them.  Used by the metadata walker (dump) and by repair.
 */
#ifndef THINMETA_IR_RUNS_H
#define THINMETA_IR_RUNS_H

#include <stdint.h>

#include "ir/ir.h"

struct ir_runs {
	const struct ir_visitor *v;   /* NULL: coalesce without emitting */
	int have_run;
	uint64_t origin, data, len;
	uint32_t time;
	int vret;                     /* the first non-zero visitor return */
};

static inline void ir_runs_init(struct ir_runs *r, const struct ir_visitor *v)
{
	*r = (struct ir_runs){ .v = v };
}

/* Emits the pending run, if any.  Returns 0 or the visitor's non-zero return. */
int ir_runs_flush(struct ir_runs *r);

/*
 * Adds one mapping (keys strictly increasing).  Returns 0, or the visitor's
 * non-zero return (IR_STOP or -errno) once emission stopped.
 */
static inline int ir_runs_add(struct ir_runs *r, uint64_t key, uint64_t data, uint32_t time)
{
	int ret;

	if (r->have_run && key == r->origin + r->len && data == r->data + r->len &&
	    time == r->time) {
		r->len++;
		return 0;
	}
	ret = ir_runs_flush(r);
	if (ret)
		return ret;
	r->have_run = 1;
	r->origin = key;
	r->data = data;
	r->len = 1;
	r->time = time;
	return 0;
}

#endif
