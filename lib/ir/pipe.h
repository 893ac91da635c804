/*
 * An IR pipe: a visitor that records the event stream in chunks and
 * replays it, in order, to another visitor on a thread of its own, so that
 * a producer (the metadata walker of thin_dump) and a consumer (the XML
 * writer) run on two cores.  The consumer sees exactly the events, in
 * exactly the order, that it would have seen called directly.
 *
 * The consumer's first non-zero return (IR_STOP or a negative errno) ends
 * the replay; the producer's callbacks return it from then on (it learns
 * of it a few events late), and ir_pipe_finish() returns it.
 */
#ifndef THINMETA_IR_PIPE_H
#define THINMETA_IR_PIPE_H

#include "ir/ir.h"

struct ir_pipe;

/*
 * Starts the consumer thread replaying to out (borrowed) and fills *in
 * with the producer's visitor.  Returns 0 or a negative errno (nothing
 * started: call out directly).
 */
int ir_pipe_create(const struct ir_visitor *out, struct ir_visitor *in, struct ir_pipe **p);

/*
 * Hands over what is recorded, waits for the consumer to replay it and
 * stops the thread.  Returns the consumer's first non-zero return, or 0.
 * Called once (ir_pipe_destroy() calls it if it was not).
 */
int ir_pipe_finish(struct ir_pipe *p);

void ir_pipe_destroy(struct ir_pipe *p);

/*
 * produce(ctx, v) with v feeding out through a pipe (directly when no
 * thread can be started).  Returns produce's result; *consumer gets the
 * consumer's first non-zero return (0: none).  A consumer stop came first
 * in the stream, so a caller reports it over produce's result, as a
 * direct call would have ended there.
 */
int ir_piped(const struct ir_visitor *out, int (*produce)(void *ctx, const struct ir_visitor *v),
	     void *ctx, int *consumer);

#endif
