/*
 * libFuzzer entry for the XML reader and the restorer: arbitrary bytes as
 * thin_dump XML, restored into an in-memory device (make fuzz CC=clang).
 */
#include <stdint.h>
#include <string.h>

#include "io/io.h"
#include "cmd/restore.h"
#include "xml/xml_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct src {
	const uint8_t *d;
	size_t n;
};

static int produce(void *ctx, const struct ir_visitor *v, char *err, size_t errlen)
{
	const struct src *s = ctx;

	return xml_read_mem("fuzz.xml", s->d, s->n, v, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* small device and leaf-sharing table: zeroing them dominated the run time */
	struct ioe *e = ioe_mem_create(256);
	struct thin_restore_opts o;
	struct thin_restore_stats st;
	struct src s = { data, size };
	char err[512];

	if (!e)
		return 0;
	memset(&o, 0, sizeof(o));
	o.dedup_order = 8;
	thin_restore_ioe(e, &o, produce, &s, &st, err, sizeof(err));
	ioe_destroy(e);
	return 0;
}
