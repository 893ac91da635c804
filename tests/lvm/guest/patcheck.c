/*
 * patcheck - guest-side verifier for the LVM suite (tests/lvm).
 *
 * Checks what fixtures-kit/guest/patwrite wrote (64-byte records
 * "TAG chunk=N rec=M", space padded, '\n' last) against a manifest of the
 * writes, in the order they were made, one per line:
 *
 *     FIRST COUNT STEP BYTES TAG
 *
 * (patwrite's linear mode: COUNT writes of BYTES at chunks FIRST,
 * FIRST+STEP, ...).  The last write covering a chunk decides what its first
 * BYTES must hold; a chunk never written must read as zeros (its first
 * 4096 bytes).
 *
 *   patcheck DEV CHUNK_BYTES MANIFEST
 *       Reads every chunk of DEV (O_DIRECT).  Prints
 *       "ok: C chunks, W written" or "differ: N chunks in [a, b) [c, d) ..."
 *       (virtual-block ranges, as thin_repair reports lost ones) and
 *       "written: ..." ranges of the written chunks (-w).  Exit 0 when all
 *       match, 1 when some differ or on error.
 *   patcheck -w DEV CHUNK_BYTES MANIFEST
 *       As above, also prints the written chunks as ranges.
 *   patcheck -s DEV
 *       fsync DEV (dm-thin commits its metadata on a flush); exit 1 if the
 *       flush fails.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <unistd.h>

#define ZERO_CHECK 4096

struct op {
	uint64_t first, count, step, bytes;
	char tag[64];
};

static void fill(char *buf, size_t len, const char *tag, uint64_t chunk)
{
	size_t off;

	for (off = 0; off + 64 <= len; off += 64) {
		char rec[65];
		int n = snprintf(rec, sizeof(rec), "%s chunk=%llu rec=%llu", tag,
				 (unsigned long long)chunk, (unsigned long long)(off / 64));
		memset(rec + n, ' ', 64 - n);
		rec[63] = '\n';
		memcpy(buf + off, rec, 64);
	}
}

/* print the chunks whose flag is set as [a, b) ranges */
static uint64_t ranges(const char *what, const unsigned char *flag, uint64_t n)
{
	uint64_t i, a, total = 0;

	for (i = 0; i < n; i++)
		total += flag[i];
	printf("%s: %" PRIu64 " chunks", what, total);
	for (i = 0; i < n; i++) {
		if (!flag[i])
			continue;
		a = i;
		while (i < n && flag[i])
			i++;
		printf(" [%" PRIu64 ", %" PRIu64 ")", a, i);
	}
	printf("\n");
	return total;
}

int main(int argc, char **argv)
{
	int list_written = 0;

	if (argc == 3 && !strcmp(argv[1], "-s")) {
		int fd = open(argv[2], O_WRONLY);

		if (fd < 0 || fsync(fd)) {
			perror(argv[2]);
			return 1;
		}
		return close(fd) ? 1 : 0;
	}
	if (argc > 1 && !strcmp(argv[1], "-w")) {
		list_written = 1;
		argv++;
		argc--;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: patcheck [-w] DEV CHUNK_BYTES MANIFEST | patcheck -s DEV\n");
		return 2;
	}
	const char *dev = argv[1];
	uint64_t cb = strtoull(argv[2], NULL, 0);
	FILE *mf = fopen(argv[3], "r");

	if (!mf) {
		perror(argv[3]);
		return 1;
	}
	int fd = open(dev, O_RDONLY | O_DIRECT);

	if (fd < 0) {
		perror(dev);
		return 1;
	}
	uint64_t size;

	if (ioctl(fd, BLKGETSIZE64, &size)) {
		perror("BLKGETSIZE64");
		return 1;
	}
	if (cb < ZERO_CHECK || cb % 4096) {
		fprintf(stderr, "patcheck: bad chunk size\n");
		return 1;
	}
	uint64_t n = size / cb, i, j;
	struct op *ops = NULL;
	size_t nops = 0;
	uint32_t *last = calloc(n, sizeof(*last)); /* 1 + op index, 0 = never written */
	unsigned char *bad = calloc(n, 1), *written = calloc(n, 1);
	char line[256];

	if (!last || !bad || !written)
		return 1;
	while (fgets(line, sizeof(line), mf)) {
		struct op o;

		if (sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %63s",
			   &o.first, &o.count, &o.step, &o.bytes, o.tag) != 5) {
			fprintf(stderr, "patcheck: bad manifest line: %s", line);
			return 1;
		}
		if (o.bytes > cb || o.bytes % 4096 || !o.bytes) {
			fprintf(stderr, "patcheck: bad write size in manifest\n");
			return 1;
		}
		ops = realloc(ops, (nops + 1) * sizeof(*ops));
		if (!ops)
			return 1;
		ops[nops++] = o;
		for (j = 0; j < o.count; j++) {
			uint64_t c = o.first + j * o.step;

			if (c >= n) {
				fprintf(stderr, "patcheck: manifest chunk %" PRIu64 " beyond the device\n", c);
				return 1;
			}
			last[c] = nops;
		}
	}
	fclose(mf);
	char *buf, *want;

	if (posix_memalign((void **)&buf, 4096, cb) || posix_memalign((void **)&want, 4096, cb))
		return 1;
	for (i = 0; i < n; i++) {
		size_t len = last[i] ? ops[last[i] - 1].bytes : ZERO_CHECK;

		if (pread(fd, buf, len, (off_t)(i * cb)) != (ssize_t)len) {
			fprintf(stderr, "patcheck: read of chunk %" PRIu64 " failed\n", i);
			bad[i] = 1;
			continue;
		}
		if (last[i]) {
			written[i] = 1;
			fill(want, len, ops[last[i] - 1].tag, i);
		} else {
			memset(want, 0, len);
		}
		bad[i] = memcmp(buf, want, len) != 0;
	}
	close(fd);
	uint64_t nbad = 0, nw = 0;

	for (i = 0; i < n; i++) {
		nbad += bad[i];
		nw += written[i];
	}
	if (list_written)
		ranges("written", written, n);
	if (nbad) {
		ranges("differ", bad, n);
		return 1;
	}
	printf("ok: %" PRIu64 " chunks, %" PRIu64 " written\n", n, nw);
	return 0;
}
