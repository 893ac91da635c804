/*
 * libFuzzer entry for the binary readers (make fuzz CC=clang).  The input
 * is a list of 5-byte patches (block, offset, value) applied to a real
 * kernel-written image ($THINMETA_FUZZ_IMAGE, uncompressed), so the fuzzer
 * explores semantic damage to real trees; the build defines
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION so that checksums do not stop
 * it.  The patched image goes to a memfd and through thin_check, thin_dump,
 * thin_ls's usage walk and thin_repair (into a second memfd), exactly as
 * the tools call them (e2fsprogs tests/fuzz style).  The memfds are made
 * once: the readers never write their input, so each run rewrites only
 * the 64 blocks the patches may touch (copying and writing 8 MiB per run
 * made the harness several times slower).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io/io.h"
#include "check/check.h"
#include "cmd/dump.h"
#include "thin/metadata.h"
#include "repair/repair.h"
#include "cmd/restore.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PATCH_BLOCKS 64

static uint8_t *base;
static size_t base_len, head_len;
static int in_fd = -1, out_fd = -1;
static char in_path[64], out_path[64];

static int make_memfd(const uint8_t *buf, size_t len, char *path, size_t plen);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *path = getenv("THINMETA_FUZZ_IMAGE");
	FILE *f;

	(void)argc;
	(void)argv;
	if (!path || !(f = fopen(path, "rb"))) {
		fprintf(stderr, "set THINMETA_FUZZ_IMAGE to an uncompressed metadata image\n");
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	base_len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	base = malloc(base_len);
	if (!base || fread(base, 1, base_len, f) != base_len)
		exit(1);
	fclose(f);
	head_len = base_len < PATCH_BLOCKS * 4096u ? base_len : PATCH_BLOCKS * 4096u;
	in_fd = make_memfd(base, base_len, in_path, sizeof(in_path));
	out_fd = make_memfd(NULL, 4u << 20, out_path, sizeof(out_path));
	if (in_fd < 0 || out_fd < 0)
		exit(1);
	return 0;
}

static int make_memfd(const uint8_t *buf, size_t len, char *path, size_t plen)
{
	int fd = memfd_create("thinmeta-fuzz", 0);

	if (fd < 0)
		return -1;
	if (buf ? write(fd, buf, len) != (ssize_t)len : ftruncate(fd, (off_t)len) < 0) {
		close(fd);
		return -1;
	}
	snprintf(path, plen, "/proc/self/fd/%d", fd);
	return fd;
}

static int null_single(void *ctx, uint64_t o, uint64_t d, uint32_t t)
{
	(void)ctx;
	(void)o;
	(void)d;
	(void)t;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *img = malloc(head_len);
	const char *path = in_path, *opath = out_path;
	char msg[512];

	if (!img)
		return 0;
	memcpy(img, base, head_len);
	/* patches land in the first 64 blocks, where the fixtures keep their trees */
	for (size_t i = 0; i + 5 <= size; i += 5) {
		size_t blk = data[i] % PATCH_BLOCKS, off = (size_t)(data[i + 1] | data[i + 2] << 8) % 4096;
		size_t pos = blk * 4096 + off;
		if (pos < head_len)
			img[pos] = data[i + 3] ^ data[i + 4];
	}
	if (pwrite(in_fd, img, head_len, 0) != (ssize_t)head_len) {
		free(img);
		return 0;
	}
	free(img);
	{
		struct thin_check_opts o = { 0 };
		struct thin_check_result res;
		struct report *rep = rep_create(NULL, 1);
		thin_check(path, &o, rep, &res, msg, sizeof(msg));
		rep_destroy(rep);
	}
	{
		struct thin_md *md;
		if (thin_md_open(path, 0, &md, msg, sizeof(msg)) == 0) {
			struct thin_dump_opts o = { 0 };
			struct ir_visitor v = { .single_map = null_single };
			thin_dump(md, &o, &v, msg, sizeof(msg));
			thin_md_close(md);
		}
	}
	/* a fresh, all-zero output each run */
	if (ftruncate(out_fd, 0) == 0 && ftruncate(out_fd, 4u << 20) == 0) {
		struct thin_md *md;
		if (thin_md_open(path, 0, &md, msg, sizeof(msg)) == 0) {
			struct thin_repair_opts ro = { 0 };
			struct thin_repair *rp;
			ro.set_data_block_size = 1;
			ro.data_block_size = 128;
			ro.set_transaction_id = 1;
			ro.transaction_id = 1;
			ro.set_nr_data_blocks = 1;
			ro.nr_data_blocks = 4096;
			if (thin_repair_plan(md, &ro, &rp, msg, sizeof(msg)) == 0) {
				struct thin_restore_opts wo = { .dedup_order = 8 };
				struct thin_restore_stats st;
				thin_restore_path(opath, &wo, thin_repair_produce, rp, &st, msg,
						  sizeof(msg));
				thin_repair_destroy(rp);
			} else {
				thin_repair_destroy(rp);   /* a refusal keeps its candidates */
			}
			thin_md_close(md);
		}
	}
	return 0;
}
