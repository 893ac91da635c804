/* Helpers shared by the file-backed engines. */
#ifndef THINMETA_IO_IO_INTERNAL_H
#define THINMETA_IO_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Opens path per IOE_* flags; returns fd or -errno; size in bytes. */
int ioe_open_fd(const char *path, unsigned flags, uint64_t *size, int *is_bdev);
int ioe_pread_full(int fd, void *buf, size_t len, uint64_t off);
int ioe_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

#endif
