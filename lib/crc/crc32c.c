#include "crc/crc32c.h"

#include <string.h>

#include "crc/crc32c_table.h"
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

int crc_crc32c_hw_available(void)
{
	return __builtin_cpu_supports("sse4.2");
}

uint32_t crc_crc32c(uint32_t crc, const void *p, size_t len)
{
	if (__builtin_cpu_supports("sse4.2"))
		return crc_hw(crc, p, len);
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
