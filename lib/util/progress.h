/*
 * Progress on a terminal: a thread that, once a run passes about a second,
 * redraws one line on a stream (phase, blocks done of total, rate, time
 * left) from the process-wide count of blocks the I/O engines moved
 * (lib/io counts them here).  The
 * caller decides whether to show it (stream a TTY, no -q); the line is
 * erased when progress stops, so nothing of it remains in the output.
 */
#ifndef THINMETA_UTIL_PROGRESS_H
#define THINMETA_UTIL_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

/* Blocks read or written by every I/O engine since the process started. */
extern uint64_t progress_blocks_counter;

static inline void progress_count(unsigned nr)
{
	__atomic_fetch_add(&progress_blocks_counter, nr, __ATOMIC_RELAXED);
}

uint64_t progress_blocks_moved(void);

struct progress;

/* fd: where to draw (e.g. 2).  Returns NULL when it cannot start (no thread). */
struct progress *progress_start(int fd, const char *tool, const char *phase);
/* total: blocks expected (0 = unknown: no "of total", no time left). */
void progress_set(struct progress *p, const char *phase, uint64_t total);
/* Stops the thread and erases the line (NULL is fine). */
void progress_stop(struct progress *p);
/* Size of the file or device at path in 4 KiB blocks (0 if unknown). */
uint64_t progress_path_blocks(const char *path);
/* Should a tool show progress: fd is a terminal and not quiet. */
int progress_wanted(int fd, int quiet);

#endif
