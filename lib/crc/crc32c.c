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

#include <immintrin.h>

/*
 * Carry-less multiply folding (constants and their derivation: gen_table.py).
 * The seed goes into the message's first 32 bits (a reflected CRC with no
 * final inversion: crc(seed, M) = crc(0, M ^ seed)).  Four 512-bit
 * accumulators fold 256 bytes at a time, 2048 bits on; then into one, 64
 * bytes at a time, its four 128-bit lanes into one, 16 bytes at a time,
 * and the last 128 bits and the tail through the crc32 instruction, which
 * is x^32 * M mod P for what it reads.
 */
#define FOLD_TARGET __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))

FOLD_TARGET static inline __m128i k128(uint64_t lo, uint64_t hi)
{
	return _mm_set_epi64x((long long)hi, (long long)lo);
}

FOLD_TARGET static inline __m128i fold128(__m128i x, __m128i k, __m128i next)
{
	return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
					   _mm_clmulepi64_si128(x, k, 0x11)), next);
}

FOLD_TARGET static inline __m512i fold512(__m512i x, __m512i k, __m512i next)
{
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
					 _mm512_clmulepi64_epi128(x, k, 0x11), next, 0x96);
}

#define LOAD512(p) _mm512_loadu_si512((const void *)(p))

/* len >= 256 */
FOLD_TARGET static uint32_t crc_fold(uint32_t crc, const uint8_t *b, size_t len)
{
	const __m512i k2048 = _mm512_broadcast_i32x4(k128(CRC32C_FOLD(2048)));
	const __m512i k512 = _mm512_broadcast_i32x4(k128(CRC32C_FOLD(512)));
	const __m128i zero = _mm_setzero_si128();
	__m512i a0 = _mm512_xor_si512(LOAD512(b), _mm512_inserti32x4(_mm512_setzero_si512(),
								   _mm_cvtsi32_si128((int)crc), 0));
	__m512i a1 = LOAD512(b + 64), a2 = LOAD512(b + 128), a3 = LOAD512(b + 192);
	__m128i x;

	for (b += 256, len -= 256; len >= 256; b += 256, len -= 256) {
		a0 = fold512(a0, k2048, LOAD512(b));
		a1 = fold512(a1, k2048, LOAD512(b + 64));
		a2 = fold512(a2, k2048, LOAD512(b + 128));
		a3 = fold512(a3, k2048, LOAD512(b + 192));
	}
	a1 = fold512(a0, k512, a1);
	a2 = fold512(a1, k512, a2);
	a3 = fold512(a2, k512, a3);
	for (; len >= 64; b += 64, len -= 64)
		a3 = fold512(a3, k512, LOAD512(b));
	x = _mm_xor_si128(_mm_xor_si128(fold128(_mm512_extracti32x4_epi32(a3, 0), k128(CRC32C_FOLD(384)), zero),
					fold128(_mm512_extracti32x4_epi32(a3, 1), k128(CRC32C_FOLD(256)), zero)),
			  fold128(_mm512_extracti32x4_epi32(a3, 2), k128(CRC32C_FOLD(128)),
				  _mm512_extracti32x4_epi32(a3, 3)));
	for (; len >= 16; b += 16, len -= 16)
		x = fold128(x, k128(CRC32C_FOLD(128)), _mm_loadu_si128((const __m128i *)(const void *)b));
	crc = (uint32_t)_mm_crc32_u64(_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x)),
				       (uint64_t)_mm_extract_epi64(x, 1));
	return crc_hw(crc, b, len);
}

static int fold_available(void)
{
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq") &&
	       __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.2");
}

int crc_crc32c_hw_available(void)
{
	return __builtin_cpu_supports("sse4.2");
}

uint32_t crc_crc32c_impl(uint32_t crc, const void *p, size_t len, enum crc_impl impl)
{
	switch (impl) {
	case CRC_IMPL_FOLD:
		if (fold_available())
			return len >= 256 ? crc_fold(crc, p, len) : crc_hw3(crc, p, len);
		return crc_crc32c_impl(crc, p, len, CRC_IMPL_HW);
	case CRC_IMPL_HW:
		if (__builtin_cpu_supports("sse4.2"))
			return crc_hw3(crc, p, len);
		/* fall through */
	default:
		return crc_crc32c_sw(crc, p, len);
	}
}

uint32_t crc_crc32c(uint32_t crc, const void *p, size_t len)
{
	return crc_crc32c_impl(crc, p, len, CRC_IMPL_FOLD);   /* the best the CPU has */
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

uint32_t crc_crc32c_impl(uint32_t crc, const void *p, size_t len, enum crc_impl impl)
{
	(void)impl;
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
