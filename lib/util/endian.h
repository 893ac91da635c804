/* Little-endian on-disk integer types, converted only through the helpers below. */
#ifndef THINMETA_UTIL_ENDIAN_H
#define THINMETA_UTIL_ENDIAN_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

typedef struct { uint16_t v; } __attribute__((packed)) le16;
typedef struct { uint32_t v; } __attribute__((packed)) le32;
typedef struct { uint64_t v; } __attribute__((packed)) le64;

static inline uint16_t le16_to_cpu(le16 x) { return le16toh(x.v); }
static inline uint32_t le32_to_cpu(le32 x) { return le32toh(x.v); }
static inline uint64_t le64_to_cpu(le64 x) { return le64toh(x.v); }
static inline le16 cpu_to_le16(uint16_t x) { le16 r = { htole16(x) }; return r; }
static inline le32 cpu_to_le32(uint32_t x) { le32 r = { htole32(x) }; return r; }
static inline le64 cpu_to_le64(uint64_t x) { le64 r = { htole64(x) }; return r; }

/* Unaligned loads/stores of little-endian values from raw bytes. */
static inline uint32_t get_le32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t get_le64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void put_le32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void put_le64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

#endif
