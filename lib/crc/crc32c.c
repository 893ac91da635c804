#include "crc/crc32c.h"

#include <string.h>

#include "crc/crc32c-internal.h"
#include "util/endian.h"

#define POLY 0x82F63B78u

/*----------------------------------------------------------------*/

uint32_t crc_crc32c_sw(uint32_t crc, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len >= 8) {
		uint32_t lo = get_le32(b) ^ crc;
		uint32_t hi = get_le32(b + 4);
		crc = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
		      crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
		      crc32c_table[3][hi & 0xff] ^ crc32c_table[2][(hi >> 8) & 0xff] ^
		      crc32c_table[1][(hi >> 16) & 0xff] ^ crc32c_table[0][hi >> 24];
		b += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *b++) & 0xff];
	return crc;
}

/*----------------------------------------------------------------*/

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t c = crc;

	while (len >= 8) {
		uint64_t v;
		memcpy(&v, b, 8);
		c = __builtin_ia32_crc32di(c, v);
		b += 8;
		len -= 8;
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *b++);
	return crc;
}

static uint32_t shift_reg(uint32_t x)
{
	return crc32c_shift_table[0][x & 0xff] ^ crc32c_shift_table[1][(x >> 8) & 0xff] ^
	       crc32c_shift_table[2][(x >> 16) & 0xff] ^ crc32c_shift_table[3][x >> 24];
}

/*
 * Three independent crc32 chains over consecutive CRC32C_SHIFT_BYTES
 * stretches hide the instruction's latency; the registers are combined
 * with the "advance over n zero bytes" operator (linear over GF(2)):
 * R(A.B.C, s) = M(M(R(A, s)) ^ R(B, 0)) ^ R(C, 0).
 */
__attribute__((target("sse4.2")))
static uint32_t crc_hw3(uint32_t crc, const uint8_t *b, size_t len)
{
	const size_t n = CRC32C_SHIFT_BYTES;

	while (len >= 3 * n) {
		uint64_t c0 = crc, c1 = 0, c2 = 0;
		for (size_t i = 0; i < n; i += 8) {
			uint64_t v0, v1, v2;
			memcpy(&v0, b + i, 8);
			memcpy(&v1, b + n + i, 8);
			memcpy(&v2, b + 2 * n + i, 8);
			c0 = __builtin_ia32_crc32di(c0, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		crc = shift_reg(shift_reg((uint32_t)c0) ^ (uint32_t)c1) ^ (uint32_t)c2;
		b += 3 * n;
		len -= 3 * n;
	}
	return crc_hw(crc, b, len);
}

int crc_crc32c_hw_available(void)
{
	return __builtin_cpu_supports("sse4.2");
}

uint32_t crc_crc32c(uint32_t crc, const void *p, size_t len)
{
	if (__builtin_cpu_supports("sse4.2"))
		return crc_hw3(crc, p, len);
	return crc_crc32c_sw(crc, p, len);
}
#else
int crc_crc32c_hw_available(void)
{
	return 0;
}

uint32_t crc_crc32c(uint32_t crc, const void *p, size_t len)
{
	return crc_crc32c_sw(crc, p, len);
}
#endif

/*----------------------------------------------------------------*/

uint32_t crc_block_csum(const void *block, size_t len, uint32_t salt)
{
	return crc_crc32c(0xffffffffu, (const uint8_t *)block + 4, len - 4) ^ salt;
}

uint32_t crc_block_salt(const void *block, size_t len)
{
	return get_le32(block) ^ crc_crc32c(0xffffffffu, (const uint8_t *)block + 4, len - 4);
}
