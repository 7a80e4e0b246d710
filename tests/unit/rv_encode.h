/* SPDX-License-Identifier: MIT */
/*
 * RV64 instruction encoders for unit tests that put small programs in guest
 * RAM (unprivileged spec 2.2, 2.3: the R/I/S/B/U/J formats).
 */
#ifndef TERN_TEST_RV_ENCODE_H
#define TERN_TEST_RV_ENCODE_H

#include <stdint.h>

static inline uint32_t r_type(unsigned f7, unsigned rs2, unsigned rs1,
			      unsigned f3, unsigned rd, unsigned op)
{
	return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}

static inline uint32_t i_type(int32_t imm, unsigned rs1, unsigned f3,
			      unsigned rd, unsigned op)
{
	return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 |
	       op;
}

static inline uint32_t s_type(int32_t imm, unsigned rs2, unsigned rs1,
			      unsigned f3, unsigned op)
{
	uint32_t u = (uint32_t)imm;

	return ((u >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
	       (u & 0x1f) << 7 | op;
}

static inline uint32_t b_type(int32_t imm, unsigned rs2, unsigned rs1,
			      unsigned f3)
{
	uint32_t u = (uint32_t)imm;

	return ((u >> 12) & 1) << 31 | ((u >> 5) & 0x3f) << 25 | rs2 << 20 |
	       rs1 << 15 | f3 << 12 | ((u >> 1) & 0xf) << 8 |
	       ((u >> 11) & 1) << 7 | 0x63;
}

static inline uint32_t u_type(uint32_t imm, unsigned rd, unsigned op)
{
	return (imm & 0xfffff000u) | rd << 7 | op;
}

static inline uint32_t j_type(int32_t imm, unsigned rd)
{
	uint32_t u = (uint32_t)imm;

	return ((u >> 20) & 1) << 31 | ((u >> 1) & 0x3ff) << 21 |
	       ((u >> 11) & 1) << 20 | ((u >> 12) & 0xff) << 12 | rd << 7 |
	       0x6f;
}

#endif
