#include "ir/runs.h"

int ir_runs_flush(struct ir_runs *r)
{
	const struct ir_visitor *v = r->v;
	int ret = 0;

	if (!r->have_run)
		return 0;
	r->have_run = 0;
	if (!v)
		return 0;
	if (r->len == 1) {
		if (v->single_map)
			ret = v->single_map(v->ctx, r->origin, r->data, r->time);
	} else if (v->range_map) {
		ret = v->range_map(v->ctx, r->origin, r->data, r->len, r->time);
	}
	if (ret && !r->vret)
		r->vret = ret;
	return ret;
}
