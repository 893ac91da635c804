#include "cmd/format.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/restore.h"
#include "thin/superblock.h"

/* The IR stream of an empty pool. */
static int produce_empty(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	const struct thin_format_opts *o = ctx;
	struct ir_superblock sb = {
		.uuid = "",
		.transaction = o->trans_id,
		.version = THIN_VERSION,
		.data_block_size = o->data_block_size,
		.nr_data_blocks = o->nr_data_blocks,
	};
	int r = v->begin_superblock(v->ctx, &sb);

	if (r >= 0)
		r = v->end_superblock(v->ctx);
	if (r < 0)
		snprintf(err, errlen, "%s", v->err && v->err[0] ? v->err : strerror(-r));
	return r;
}

static int holds_metadata(struct ioe *out)
{
	uint8_t *b = ioe_alloc_blocks(1);
	int found = 0;

	if (!b)
		return 0;
	if (ioe_read(out, 0, 1, b) == 0 && thin_sb_validator.check(b, 0, MD_BLOCK_SIZE) == 0 &&
	    get_le64(b + 32) == THIN_MAGIC)
		found = 1;
	free(b);
	return found;
}

int thin_format_ioe(struct ioe *out, const struct thin_format_opts *o, char *err, size_t errlen)
{
	struct thin_restore_opts ro;

	err[0] = '\0';
	if (!thin_valid_data_block_size(o->data_block_size)) {
		snprintf(err, errlen,
			 "invalid data block size %u (must be a multiple of 128 between 128 and 2097152 sectors)",
			 o->data_block_size);
		return -EINVAL;
	}
	if (!o->force && holds_metadata(out)) {
		snprintf(err, errlen,
			 "the output already holds thin metadata; use --force to overwrite it");
		return -EEXIST;
	}
	memset(&ro, 0, sizeof(ro));
	ro.have_uuid = o->have_tag;
	memcpy(ro.uuid, o->tag, sizeof(ro.uuid));
	return thin_restore_ioe(out, &ro, produce_empty, (void *)o, NULL, err, errlen);
}

int thin_format_path(const char *path, const struct thin_format_opts *o, char *err,
		     size_t errlen)
{
	struct ioe *out;
	int r = thin_open_output(path, &out, err, errlen);

	if (r < 0)
		return r;
	r = thin_format_ioe(out, o, err, errlen);
	ioe_destroy(out);
	return r;
}
