#include "xml/human_readable.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------*/

struct thin_hr_writer {
	FILE *out;
	int err;
};

/* Every callback ends here: the first failed write sticks. */
static int status(struct thin_hr_writer *w, int printed)
{
	if (!w->err && printed < 0)
		w->err = errno ? -errno : -EIO;
	return w->err;
}

static int begin_superblock(void *ctx, const struct ir_superblock *sb)
{
	struct thin_hr_writer *w = ctx;
	int n;

	errno = 0;
	n = fprintf(w->out, "begin superblock: \"%s\", %" PRIu32 ", %" PRIu64 ", %" PRIu32
		    ", %" PRIu32 ", %" PRIu32 ", %" PRIu64,
		    sb->uuid ? sb->uuid : "", sb->time, sb->transaction, sb->flags, sb->version,
		    sb->data_block_size, sb->nr_data_blocks);
	if (n >= 0 && sb->has_metadata_snap)
		n = fprintf(w->out, ", %" PRIu64, sb->metadata_snap);
	if (n >= 0)
		n = fputc('\n', w->out) == EOF ? -1 : 0;
	return status(w, n);
}

static int end_superblock(void *ctx)
{
	struct thin_hr_writer *w = ctx;

	errno = 0;
	return status(w, fputs("end superblock\n", w->out));
}

static int begin_device(void *ctx, const struct ir_device *d)
{
	struct thin_hr_writer *w = ctx;

	errno = 0;
	return status(w, fprintf(w->out,
				 "device: %" PRIu64 "\nmapped_blocks: %" PRIu64
				 "\ntransaction: %" PRIu64 "\ncreation time: %" PRIu32
				 "\nsnap time: %" PRIu32 "\n",
				 d->dev_id, d->mapped_blocks, d->transaction, d->creation_time,
				 d->snap_time));
}

static int end_device(void *ctx)
{
	struct thin_hr_writer *w = ctx;

	errno = 0;
	return status(w, fputc('\n', w->out) == EOF ? -1 : 0);
}

static int begin_def(void *ctx, const char *name)
{
	struct thin_hr_writer *w = ctx;

	errno = 0;
	return status(w, fprintf(w->out, "def: %s\n", name));
}

static int ref(void *ctx, const char *name)
{
	struct thin_hr_writer *w = ctx;

	errno = 0;
	return status(w, fprintf(w->out, "    ref: %s\n", name));
}

static int single_map(void *ctx, uint64_t origin, uint64_t data, uint32_t time)
{
	struct thin_hr_writer *w = ctx;

	errno = 0;
	return status(w, fprintf(w->out, "    %" PRIu64 " -> %" PRIu64 ", %" PRIu32 "\n", origin,
				 data, time));
}

static int range_map(void *ctx, uint64_t origin, uint64_t data, uint64_t len, uint32_t time)
{
	struct thin_hr_writer *w = ctx;

	errno = 0;
	/* ranges are printed inclusive */
	return status(w, fprintf(w->out,
				 "    (%" PRIu64 "..%" PRIu64 ") -> (%" PRIu64 "..%" PRIu64
				 "), %" PRIu32 "\n",
				 origin, origin + len - 1, data, data + len - 1, time));
}

/*----------------------------------------------------------------*/

struct thin_hr_writer *thin_hr_writer_create(FILE *out)
{
	struct thin_hr_writer *w = calloc(1, sizeof(*w));

	if (w)
		w->out = out;
	return w;
}

void thin_hr_writer_destroy(struct thin_hr_writer *w)
{
	free(w);
}

void thin_hr_writer_visitor(struct thin_hr_writer *w, struct ir_visitor *v)
{
	memset(v, 0, sizeof(*v));
	v->ctx = w;
	v->begin_superblock = begin_superblock;
	v->end_superblock = end_superblock;
	v->begin_device = begin_device;
	v->end_device = end_device;
	v->begin_def = begin_def;
	v->end_def = end_device;   /* a blank line closes a def too */
	v->ref = ref;
	v->single_map = single_map;
	v->range_map = range_map;
}

int thin_hr_writer_flush(struct thin_hr_writer *w)
{
	errno = 0;
	if (fflush(w->out) != 0 && !w->err)
		w->err = errno ? -errno : -EIO;
	return w->err;
}
