#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/pipe.h"

/* A consumer that writes every event as a line of text, and may fail at event fail_at. */
struct log {
	char *text;
	size_t len, cap;
	unsigned events, fail_at;
	int fail_with;
};

static int add(struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add(struct log *l, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (l->fail_at && ++l->events == l->fail_at)
		return l->fail_with;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (l->len + (size_t)n + 1 > l->cap) {
		l->cap = (l->cap + (size_t)n + 1) * 2;
		l->text = realloc(l->text, l->cap);
	}
	memcpy(l->text + l->len, line, (size_t)n + 1);
	l->len += (size_t)n;
	return 0;
}

static int l_bsb(void *c, const struct ir_superblock *sb)
{
	return add(c, "sb %s %u %llu %u\n", sb->uuid, sb->time, (unsigned long long)sb->transaction,
		   sb->data_block_size);
}
static int l_esb(void *c) { return add(c, "/sb\n"); }
static int l_bdev(void *c, const struct ir_device *d)
{
	return add(c, "dev %llu %llu\n", (unsigned long long)d->dev_id,
		   (unsigned long long)d->mapped_blocks);
}
static int l_edev(void *c) { return add(c, "/dev\n"); }
static int l_bdef(void *c, const char *n) { return add(c, "def %.100s %zu\n", n, strlen(n)); }
static int l_edef(void *c) { return add(c, "/def\n"); }
static int l_ref(void *c, const char *n) { return add(c, "ref %s\n", n); }
static int l_single(void *c, uint64_t o, uint64_t d, uint32_t t)
{
	return add(c, "s %llu %llu %u\n", (unsigned long long)o, (unsigned long long)d, t);
}
static int l_range(void *c, uint64_t o, uint64_t d, uint64_t n, uint32_t t)
{
	return add(c, "r %llu %llu %llu %u\n", (unsigned long long)o, (unsigned long long)d,
		   (unsigned long long)n, t);
}
static int l_comment(void *c, const char *s) { return add(c, "c %s\n", s); }

static struct ir_visitor log_visitor(struct log *l)
{
	return (struct ir_visitor){ l, l_bsb, l_esb, l_bdev, l_edev, l_bdef, l_edef, l_ref,
				    l_single, l_range, l_comment, NULL, 0 };
}

/* A stream of many events (several chunks), with a name larger than a chunk. */
static int produce(const struct ir_visitor *v, size_t big_name)
{
	struct ir_superblock sb = { .uuid = "uu", .time = 7, .transaction = 9, .data_block_size = 128 };
	char *name = malloc(big_name + 1);
	int r;

	memset(name, 'n', big_name);
	name[big_name] = '\0';
	if ((r = v->begin_superblock(v->ctx, &sb)))
		goto out;
	if ((r = v->begin_def(v->ctx, name)) || (r = v->end_def(v->ctx)))
		goto out;
	for (uint64_t d = 0; d < 40; d++) {
		struct ir_device dev = { .dev_id = d, .mapped_blocks = d * 1000 };

		if ((r = v->begin_device(v->ctx, &dev)))
			goto out;
		if (v->comment && (r = v->comment(v->ctx, "a comment")))
			goto out;
		for (uint64_t i = 0; i < 20000; i++) {
			r = i % 3 ? v->single_map(v->ctx, i, d * 100000 + i, (uint32_t)(i % 5))
				  : v->range_map(v->ctx, i, i * 2, i % 7 + 1, (uint32_t)d);
			if (r)
				goto out;
		}
		if ((r = v->ref(v->ctx, "x")) || (r = v->end_device(v->ctx)))
			goto out;
	}
	r = v->end_superblock(v->ctx);
out:
	free(name);
	return r;
}

Test(ir_pipe, the_consumer_sees_the_same_events_in_the_same_order)
{
	struct log direct = { 0 }, piped = { 0 };
	struct ir_visitor dv = log_visitor(&direct), pv = log_visitor(&piped), in;
	struct ir_pipe *p;

	cr_assert_eq(produce(&dv, 300000), 0);
	cr_assert_eq(ir_pipe_create(&pv, &in, &p), 0);
	cr_assert_eq(produce(&in, 300000), 0);
	cr_assert_eq(ir_pipe_finish(p), 0);
	ir_pipe_destroy(p);
	cr_assert_gt(direct.len, 10u << 20, "the stream spans many chunks");
	cr_assert_eq(piped.len, direct.len);
	cr_assert(!memcmp(piped.text, direct.text, direct.len));
	free(direct.text);
	free(piped.text);
}

Test(ir_pipe, a_consumer_error_reaches_the_producer_and_finish)
{
	struct log l = { .fail_at = 100000, .fail_with = -ENOSPC };
	struct ir_visitor v = log_visitor(&l), in;
	struct ir_pipe *p;

	cr_assert_eq(ir_pipe_create(&v, &in, &p), 0);
	cr_assert_eq(produce(&in, 10), -ENOSPC, "the producer stops with the consumer's error");
	cr_assert_eq(ir_pipe_finish(p), -ENOSPC);
	ir_pipe_destroy(p);
	cr_assert_eq(l.events, 100000, "nothing was replayed after the failed event");
	free(l.text);
}

Test(ir_pipe, a_stop_ends_quietly_and_destroy_alone_joins_the_thread)
{
	struct log l = { .fail_at = 5, .fail_with = IR_STOP };
	struct ir_visitor v = log_visitor(&l), in;
	struct ir_pipe *p;
	int r;

	cr_assert_eq(ir_pipe_create(&v, &in, &p), 0);
	r = produce(&in, 10);
	cr_assert(r == 0 || r == IR_STOP, "the producer may finish before it hears (%d)", r);
	ir_pipe_destroy(p);   /* without finish */
	cr_assert_eq(l.events, 5);
	free(l.text);
}

Test(ir_pipe, comments_pass_only_to_a_consumer_that_takes_them)
{
	struct log l = { 0 };
	struct ir_visitor v = log_visitor(&l), in;
	struct ir_pipe *p;

	v.comment = NULL;
	cr_assert_eq(ir_pipe_create(&v, &in, &p), 0);
	cr_assert_null(in.comment);
	ir_pipe_destroy(p);
	free(l.text);
}
