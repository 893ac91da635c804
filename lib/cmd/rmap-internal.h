/* Internals of thin_rmap: a run of data blocks and the order 0.9.0 prints runs in. */
#ifndef THINMETA_CMD_RMAP_INTERNAL_H
#define THINMETA_CMD_RMAP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* 24 bytes: a run stops growing at UINT32_MAX blocks (256 TiB of 64 KiB blocks) */
struct rrun {
	uint64_t data_begin, thin_begin;
	uint32_t len, dev;
};
#define RRUN_MAX_LEN UINT32_MAX

/*
 * Sorts runs by data_begin exactly as 0.9.0's std::sort leaves them (runs
 * with equal data_begin in the same, unstable, order), rmap_order.c.
 */
void thin_rmap_sort_runs(struct rrun *runs, size_t n);

#endif
