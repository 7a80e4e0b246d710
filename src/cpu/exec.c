// SPDX-License-Identifier: MIT
/*
 * The interpreter: RV64IMAC, Zicsr, Zifencei, Zihintpause, F/D loads and
 * stores (arithmetic goes to fpu_exec()).
 *
 * Design (hot path first):
 * - Instructions are fetched straight from guest RAM through a host pointer
 *   into the current code page; the code TLB is consulted again only when
 *   execution leaves the page (sequentially or by a jump).
 * - Loads and stores hit a direct-mapped TLB with a single compare
 *   (cpu/mmu.h); everything else takes a slow path.
 * - Interrupts, the instruction budget, stop requests and the RAM dirty-log
 *   generation are only looked at on control transfers (taken branches,
 *   jumps, traps, xRET) and after CSR writes, never per instruction.
 * - A trap or any change of privileged state ends the straight-line run and
 *   goes through `transfer`, which re-derives everything.
 */
#include "cpu/hart.h"

#include <string.h>

#include "cpu/cpu_internal.h"
#include "cpu/csr.h"
#include "cpu/fpu.h"
#include "cpu/mmu.h"
#include "cpu/sbi.h"
#include "machine/machine.h"

/* Immediates (unprivileged spec 2.3) */
static inline uint64_t imm_i(uint32_t insn)
{
	return (uint64_t)(int64_t)((int32_t)insn >> 20);
}

static inline uint64_t imm_s(uint32_t insn)
{
	return (uint64_t)(int64_t)(((int32_t)(insn & 0xfe000000) >> 20) |
				   (int32_t)((insn >> 7) & 0x1f));
}

static inline uint64_t imm_b(uint32_t insn)
{
	return (uint64_t)(int64_t)(((int32_t)(insn & 0x80000000) >> 19) |
				   (int32_t)((insn & 0x80) << 4) |
				   (int32_t)((insn >> 20) & 0x7e0) |
				   (int32_t)((insn >> 7) & 0x1e));
}

static inline uint64_t imm_u(uint32_t insn)
{
	return (uint64_t)(int64_t)(int32_t)(insn & 0xfffff000);
}

static inline uint64_t imm_j(uint32_t insn)
{
	return (uint64_t)(int64_t)(((int32_t)(insn & 0x80000000) >> 11) |
				   (int32_t)(insn & 0xff000) |
				   (int32_t)((insn >> 9) & 0x800) |
				   (int32_t)((insn >> 20) & 0x7fe));
}

static inline uint64_t sext32(uint64_t v)
{
	return (uint64_t)(int64_t)(int32_t)v;
}

static inline uint64_t sext_bits(uint64_t v, unsigned bits)
{
	return (uint64_t)((int64_t)(v << (64 - bits)) >> (64 - bits));
}

/* Compressed immediates (unprivileged spec 16.3-16.5) */
static inline uint64_t cimm6(uint32_t insn)
{
	return sext_bits(((insn >> 7) & 0x20) | ((insn >> 2) & 0x1f), 6);
}

static inline unsigned cshamt(uint32_t insn)
{
	return ((insn >> 7) & 0x20) | ((insn >> 2) & 0x1f);
}

static inline uint64_t cimm_addi4spn(uint32_t insn)
{
	return ((insn >> 7) & 0x30) | ((insn >> 1) & 0x3c0) |
	       ((insn >> 4) & 4) | ((insn >> 2) & 8);
}

static inline uint64_t cimm_addi16sp(uint32_t insn)
{
	return sext_bits(((insn >> 3) & 0x200) | ((insn >> 2) & 0x10) |
				 ((insn << 1) & 0x40) | ((insn << 4) & 0x180) |
				 ((insn << 3) & 0x20),
			 10);
}

static inline uint64_t cimm_lw(uint32_t insn)
{
	return ((insn >> 7) & 0x38) | ((insn >> 4) & 4) | ((insn << 1) & 0x40);
}

static inline uint64_t cimm_ld(uint32_t insn)
{
	return ((insn >> 7) & 0x38) | ((insn << 1) & 0xc0);
}

static inline uint64_t cimm_lwsp(uint32_t insn)
{
	return ((insn >> 7) & 0x20) | ((insn >> 2) & 0x1c) | ((insn << 4) & 0xc0);
}

static inline uint64_t cimm_ldsp(uint32_t insn)
{
	return ((insn >> 7) & 0x20) | ((insn >> 2) & 0x18) |
	       ((insn << 4) & 0x1c0);
}

static inline uint64_t cimm_swsp(uint32_t insn)
{
	return ((insn >> 7) & 0x3c) | ((insn >> 1) & 0xc0);
}

static inline uint64_t cimm_sdsp(uint32_t insn)
{
	return ((insn >> 7) & 0x38) | ((insn >> 1) & 0x1c0);
}

static inline uint64_t cimm_j(uint32_t insn)
{
	return sext_bits(((insn >> 1) & 0x800) | ((insn >> 7) & 0x10) |
				 ((insn >> 1) & 0x300) | ((insn << 2) & 0x400) |
				 ((insn >> 1) & 0x40) | ((insn << 1) & 0x80) |
				 ((insn >> 2) & 0xe) | ((insn << 3) & 0x20),
			 12);
}

static inline uint64_t cimm_b(uint32_t insn)
{
	return sext_bits(((insn >> 4) & 0x100) | ((insn >> 7) & 0x18) |
				 ((insn << 1) & 0xc0) | ((insn >> 2) & 6) |
				 ((insn << 3) & 0x20),
			 9);
}

/* M extension (unprivileged spec chapter 7), including the corner cases. */
static inline uint64_t mulh(uint64_t a, uint64_t b)
{
	return (uint64_t)(((__int128)(int64_t)a * (__int128)(int64_t)b) >> 64);
}

static inline uint64_t mulhsu(uint64_t a, uint64_t b)
{
	return (uint64_t)(((__int128)(int64_t)a * (__int128)b) >> 64);
}

static inline uint64_t mulhu(uint64_t a, uint64_t b)
{
	return (uint64_t)(((unsigned __int128)a * b) >> 64);
}

static inline uint64_t div64(uint64_t a, uint64_t b)
{
	if (b == 0)
		return UINT64_MAX;
	if ((int64_t)a == INT64_MIN && (int64_t)b == -1)
		return a;
	return (uint64_t)((int64_t)a / (int64_t)b);
}

static inline uint64_t rem64(uint64_t a, uint64_t b)
{
	if (b == 0)
		return a;
	if ((int64_t)a == INT64_MIN && (int64_t)b == -1)
		return 0;
	return (uint64_t)((int64_t)a % (int64_t)b);
}

static inline uint64_t div32(uint64_t a, uint64_t b)
{
	int32_t x = (int32_t)a, y = (int32_t)b;

	if (y == 0)
		return UINT64_MAX;
	if (x == INT32_MIN && y == -1)
		return sext32((uint32_t)x);
	return sext32((uint32_t)(x / y));
}

static inline uint64_t rem32(uint64_t a, uint64_t b)
{
	int32_t x = (int32_t)a, y = (int32_t)b;

	if (y == 0)
		return sext32((uint32_t)x);
	if (x == INT32_MIN && y == -1)
		return 0;
	return sext32((uint32_t)(x % y));
}

static inline uint64_t divu32(uint64_t a, uint64_t b)
{
	uint32_t x = (uint32_t)a, y = (uint32_t)b;

	return y == 0 ? UINT64_MAX : sext32(x / y);
}

static inline uint64_t remu32(uint64_t a, uint64_t b)
{
	uint32_t x = (uint32_t)a, y = (uint32_t)b;

	return y == 0 ? sext32(x) : sext32(x % y);
}

/* AMO funct5 values (unprivileged spec 8.4) */
enum {
	AMO_ADD = 0x00,
	AMO_SWAP = 0x01,
	AMO_LR = 0x02,
	AMO_SC = 0x03,
	AMO_XOR = 0x04,
	AMO_OR = 0x08,
	AMO_AND = 0x0c,
	AMO_MIN = 0x10,
	AMO_MAX = 0x14,
	AMO_MINU = 0x18,
	AMO_MAXU = 0x1c,
};

#define AMO_VALID                                                              \
	((1u << AMO_ADD) | (1u << AMO_SWAP) | (1u << AMO_XOR) |                \
	 (1u << AMO_OR) | (1u << AMO_AND) | (1u << AMO_MIN) |                  \
	 (1u << AMO_MAX) | (1u << AMO_MINU) | (1u << AMO_MAXU))

/* a: memory (sign-extended for .W), b: rs2, same width. */
static uint64_t amo_compute(unsigned f5, uint64_t a, uint64_t b, bool word)
{
	if (word) {
		a = sext32(a);
		b = sext32(b);
	}
	switch (f5) {
	case AMO_ADD:
		return a + b;
	case AMO_SWAP:
		return b;
	case AMO_XOR:
		return a ^ b;
	case AMO_OR:
		return a | b;
	case AMO_AND:
		return a & b;
	case AMO_MIN:
		return (int64_t)a < (int64_t)b ? a : b;
	case AMO_MAX:
		return (int64_t)a > (int64_t)b ? a : b;
	case AMO_MINU:
		if (word)
			return (uint32_t)a < (uint32_t)b ? a : b;
		return a < b ? a : b;
	default: /* AMO_MAXU */
		if (word)
			return (uint32_t)a > (uint32_t)b ? a : b;
		return a > b ? a : b;
	}
}

/* Anything that must end a straight-line run at the next control transfer. */
static inline bool transfer_pending(hart_t *h, uint64_t n, uint64_t limit)
{
	return (n >= limit) | *(volatile bool *)&h->stop |
	       ((hart_mip(h) & h->irq_mask) != 0) |
	       (h->ram_generation != h->ram->generation);
}

/*
 * Dispatch key: the major opcode plus instruction bits 12..15. For a 32-bit
 * instruction that is funct3 (and one don't-care bit); for a compressed one
 * its quadrant, funct3 (bits 13..15) and bit 12.
 */
#define KEY_BITS 11
static inline unsigned insn_key(uint32_t insn)
{
	return (insn & 0x7f) | ((insn >> 5) & 0x780);
}

static const void *dispatch[1u << KEY_BITS];

/* 32-bit instruction op/funct3 (either value of the don't-care bit). */
static void dispatch_set32(unsigned op, unsigned f3, const void *target)
{
	for (unsigned b = 0; b < 2; b++)
		dispatch[op | f3 << 7 | b << 10] = target;
}

static void dispatch_set32_all(unsigned op, const void *target)
{
	for (unsigned f3 = 0; f3 < 8; f3++)
		dispatch_set32(op, f3, target);
}

/* Compressed quadrant/funct3, for bit 12 = b12 (or both when b12 < 0). */
static void dispatch_set16(unsigned q, unsigned f3, int b12,
			   const void *target)
{
	for (unsigned b = 0; b < 2; b++) {
		if (b12 >= 0 && (unsigned)b12 != b)
			continue;
		for (unsigned mid = 0; mid < 32; mid++)
			dispatch[q | mid << 2 | b << 7 | f3 << 8] = target;
	}
}

uint64_t hart_run(hart_t *h, uint64_t budget)
{
	static bool dispatch_ready;
	hart_state_t *const s = &h->s;
	uint64_t *const x = s->x;
	uint64_t n = 0;			/* instructions executed */
	uint64_t limit = budget;
	const uint8_t *cp;		/* host address of the instruction */
	const uint8_t *cend;		/* its page's end, minus 2 */
	uintptr_t addend;		/* host = guest pc + addend */
	uint64_t pgva;			/* guest address of the code page */
	uint64_t dkey;			/* TLB key for loads and stores */
	uint32_t insn;
	unsigned rd;
	uint64_t v, va, t;

#define PC ((uint64_t)((uintptr_t)cp - addend))
#define RD ((insn >> 7) & 31)
#define RS1 ((insn >> 15) & 31)
#define RS2 ((insn >> 20) & 31)
#define F3 ((insn >> 12) & 7)
	/* Compressed register fields: rd'/rs2' (bits 4:2), rs1'/rd' (9:7) */
#define CRS2P (8 + ((insn >> 2) & 7))
#define CRS1P (8 + ((insn >> 7) & 7))
#define CRS2 ((insn >> 2) & 31)
#define WR(r, val)                                                             \
	do {                                                                   \
		uint64_t val_ = (val);                                         \
		unsigned r_ = (r);                                             \
		if (likely(r_))                                                \
			x[r_] = val_;                                          \
	} while (0)
	/* Fetch and dispatch the instruction at cp (threaded: every handler
	 * has its own indirect jump, which predicts much better). */
#define DISPATCH()                                                             \
	do {                                                                   \
		if (unlikely(cp >= cend))                                      \
			goto fetch_edge;                                       \
		memcpy(&insn, cp, 4);                                          \
		n++;                                                           \
		goto *dispatch[insn_key(insn)];                                \
	} while (0)
#define NEXT4                                                                  \
	do {                                                                   \
		cp += 4;                                                       \
		DISPATCH();                                                    \
	} while (0)
#define NEXT2                                                                  \
	do {                                                                   \
		cp += 2;                                                       \
		DISPATCH();                                                    \
	} while (0)
	/* A control transfer; stays on the code page when nothing is due. */
#define JUMP(target)                                                           \
	do {                                                                   \
		t = (target);                                                  \
		if (likely((t & ~PAGE_MASK) == pgva &&                         \
			   !transfer_pending(h, n, limit))) {                  \
			cp = (const uint8_t *)(uintptr_t)(t + addend);         \
			DISPATCH();                                            \
		}                                                              \
		s->pc = t;                                                     \
		goto transfer;                                                 \
	} while (0)
#define BRANCH(cond, imm, len)                                                 \
	do {                                                                   \
		if (cond)                                                      \
			JUMP(PC + (imm));                                      \
		cp += (len);                                                   \
		DISPATCH();                                                    \
	} while (0)
#define FAULT(cause, tval)                                                     \
	do {                                                                   \
		hart_fault(h, (cause), (tval));                                \
		goto exception;                                                \
	} while (0)
#define LOAD(addr, size, out)                                                  \
	do {                                                                   \
		if (unlikely(!mmu_load(h, (addr), (size), dkey, &(out))))      \
			goto exception;                                        \
	} while (0)
#define STORE(addr, size, val)                                                 \
	do {                                                                   \
		if (unlikely(!mmu_store(h, (addr), (size), dkey, (val))))      \
			goto exception;                                        \
	} while (0)
#define FP_ENABLED() ((s->mstatus & MSTATUS_FS) != 0)
#define FP_DIRTY() (s->mstatus |= MSTATUS_FS)

	if (unlikely(!dispatch_ready)) {
		for (unsigned k = 0; k < (1u << KEY_BITS); k++)
			dispatch[k] = &&illegal;
		dispatch_set32(0x03, 0, &&i_lb);
		dispatch_set32(0x03, 1, &&i_lh);
		dispatch_set32(0x03, 2, &&i_lw);
		dispatch_set32(0x03, 3, &&i_ld);
		dispatch_set32(0x03, 4, &&i_lbu);
		dispatch_set32(0x03, 5, &&i_lhu);
		dispatch_set32(0x03, 6, &&i_lwu);
		dispatch_set32(0x07, 2, &&i_flw);
		dispatch_set32(0x07, 3, &&i_fld);
		dispatch_set32(0x0f, 0, &&i_fence);
		dispatch_set32(0x0f, 1, &&i_fence);
		dispatch_set32(0x13, 0, &&i_addi);
		dispatch_set32(0x13, 1, &&i_slli);
		dispatch_set32(0x13, 2, &&i_slti);
		dispatch_set32(0x13, 3, &&i_sltiu);
		dispatch_set32(0x13, 4, &&i_xori);
		dispatch_set32(0x13, 5, &&i_srli);
		dispatch_set32(0x13, 6, &&i_ori);
		dispatch_set32(0x13, 7, &&i_andi);
		dispatch_set32_all(0x17, &&i_auipc);
		dispatch_set32(0x1b, 0, &&i_addiw);
		dispatch_set32(0x1b, 1, &&i_slliw);
		dispatch_set32(0x1b, 5, &&i_srliw);
		dispatch_set32(0x23, 0, &&i_sb);
		dispatch_set32(0x23, 1, &&i_sh);
		dispatch_set32(0x23, 2, &&i_sw);
		dispatch_set32(0x23, 3, &&i_sd);
		dispatch_set32(0x27, 2, &&i_fsw);
		dispatch_set32(0x27, 3, &&i_fsd);
		dispatch_set32(0x2f, 2, &&i_amo);
		dispatch_set32(0x2f, 3, &&i_amo);
		dispatch_set32(0x33, 0, &&i_op0);
		dispatch_set32(0x33, 1, &&i_op1);
		dispatch_set32(0x33, 2, &&i_op2);
		dispatch_set32(0x33, 3, &&i_op3);
		dispatch_set32(0x33, 4, &&i_op4);
		dispatch_set32(0x33, 5, &&i_op5);
		dispatch_set32(0x33, 6, &&i_op6);
		dispatch_set32(0x33, 7, &&i_op7);
		dispatch_set32_all(0x37, &&i_lui);
		dispatch_set32_all(0x3b, &&i_op32);
		dispatch_set32_all(0x43, &&i_fp);
		dispatch_set32_all(0x47, &&i_fp);
		dispatch_set32_all(0x4b, &&i_fp);
		dispatch_set32_all(0x4f, &&i_fp);
		dispatch_set32_all(0x53, &&i_fp);
		dispatch_set32(0x63, 0, &&i_beq);
		dispatch_set32(0x63, 1, &&i_bne);
		dispatch_set32(0x63, 4, &&i_blt);
		dispatch_set32(0x63, 5, &&i_bge);
		dispatch_set32(0x63, 6, &&i_bltu);
		dispatch_set32(0x63, 7, &&i_bgeu);
		dispatch_set32(0x67, 0, &&i_jalr);
		dispatch_set32_all(0x6f, &&i_jal);
		dispatch_set32_all(0x73, &&i_system);

		dispatch_set16(0, 0, -1, &&c_addi4spn);
		dispatch_set16(0, 1, -1, &&c_fld);
		dispatch_set16(0, 2, -1, &&c_lw);
		dispatch_set16(0, 3, -1, &&c_ld);
		dispatch_set16(0, 5, -1, &&c_fsd);
		dispatch_set16(0, 6, -1, &&c_sw);
		dispatch_set16(0, 7, -1, &&c_sd);
		dispatch_set16(1, 0, -1, &&c_addi);
		dispatch_set16(1, 1, -1, &&c_addiw);
		dispatch_set16(1, 2, -1, &&c_li);
		dispatch_set16(1, 3, -1, &&c_lui);
		dispatch_set16(1, 4, -1, &&c_alu);
		dispatch_set16(1, 5, -1, &&c_j);
		dispatch_set16(1, 6, -1, &&c_beqz);
		dispatch_set16(1, 7, -1, &&c_bnez);
		dispatch_set16(2, 0, -1, &&c_slli);
		dispatch_set16(2, 1, -1, &&c_fldsp);
		dispatch_set16(2, 2, -1, &&c_lwsp);
		dispatch_set16(2, 3, -1, &&c_ldsp);
		dispatch_set16(2, 4, 0, &&c_jr_mv);
		dispatch_set16(2, 4, 1, &&c_jalr_add);
		dispatch_set16(2, 5, -1, &&c_fsdsp);
		dispatch_set16(2, 6, -1, &&c_swsp);
		dispatch_set16(2, 7, -1, &&c_sdsp);
		__atomic_store_n(&dispatch_ready, true, __ATOMIC_RELEASE);
	}

	h->insns = 0;
	hart_update_derived(h);
	if (s->wfi) {
		/* Any pending interrupt wakes WFI, even if masked (3.3.3). */
		if (!(hart_mip(h) & s->mie))
			return 0;
		s->wfi = 0;
	}
	hart_update_stip(h);

transfer:
	/* s->pc is the next instruction. */
	if (unlikely(n >= limit || *(volatile bool *)&h->stop))
		goto out;
	if (unlikely(h->ram_generation != h->ram->generation))
		mmu_tlb_flush_write(h);
	if (unlikely(hart_mip(h) & h->irq_mask))
		hart_take_interrupt(h);
	dkey = h->tlb_key_data;
	{
		const tlb_entry_t *e = tlb_slot(h->tlb_code, s->pc);

		pgva = s->pc & ~PAGE_MASK;
		if (likely(e->tag == (pgva | h->tlb_key_code))) {
			addend = e->addend;
		} else if (!mmu_fetch_slow(h, s->pc, &addend)) {
			/* Counts as work, so a fault loop still ends. */
			n++;
			hart_trap(h, h->exc_cause, h->exc_tval);
			goto transfer;
		}
	}
	cp = (const uint8_t *)(uintptr_t)(s->pc + addend);
	cend = (const uint8_t *)(uintptr_t)(pgva + PAGE_SIZE - 2 + addend);
	DISPATCH();

fetch_edge:
	if (cp > cend) {
		/* Left the page. */
		s->pc = PC;
		goto transfer;
	} else {
		/* The last parcel of the page; a 32-bit insn continues on
		 * the next page, which is translated separately. */
		uint16_t lo;

		memcpy(&lo, cp, 2);
		insn = lo;
		n++;
		if ((insn & 3) == 3) {
			uint32_t hi;

			if (!mmu_fetch16(h, PC + 2, &hi))
				goto exception;
			insn |= hi << 16;
		}
		goto *dispatch[insn_key(insn)];
	}

	/* ---- RV64I ---- */
i_lui:
	WR(RD, imm_u(insn));
	NEXT4;
i_auipc:
	WR(RD, PC + imm_u(insn));
	NEXT4;
i_jal:
	v = PC;
	WR(RD, v + 4);
	JUMP(v + imm_j(insn));
i_jalr:
	v = (x[RS1] + imm_i(insn)) & ~1ull;	/* before rd: rd may be rs1 */
	WR(RD, PC + 4);
	JUMP(v);
i_beq:
	BRANCH(x[RS1] == x[RS2], imm_b(insn), 4);
i_bne:
	BRANCH(x[RS1] != x[RS2], imm_b(insn), 4);
i_blt:
	BRANCH((int64_t)x[RS1] < (int64_t)x[RS2], imm_b(insn), 4);
i_bge:
	BRANCH((int64_t)x[RS1] >= (int64_t)x[RS2], imm_b(insn), 4);
i_bltu:
	BRANCH(x[RS1] < x[RS2], imm_b(insn), 4);
i_bgeu:
	BRANCH(x[RS1] >= x[RS2], imm_b(insn), 4);

i_lb:
	LOAD(x[RS1] + imm_i(insn), 1, v);
	WR(RD, (uint64_t)(int64_t)(int8_t)v);
	NEXT4;
i_lh:
	LOAD(x[RS1] + imm_i(insn), 2, v);
	WR(RD, (uint64_t)(int64_t)(int16_t)v);
	NEXT4;
i_lw:
	LOAD(x[RS1] + imm_i(insn), 4, v);
	WR(RD, sext32(v));
	NEXT4;
i_ld:
	LOAD(x[RS1] + imm_i(insn), 8, v);
	WR(RD, v);
	NEXT4;
i_lbu:
	LOAD(x[RS1] + imm_i(insn), 1, v);
	WR(RD, v);
	NEXT4;
i_lhu:
	LOAD(x[RS1] + imm_i(insn), 2, v);
	WR(RD, v);
	NEXT4;
i_lwu:
	LOAD(x[RS1] + imm_i(insn), 4, v);
	WR(RD, v);
	NEXT4;
i_sb:
	STORE(x[RS1] + imm_s(insn), 1, x[RS2]);
	NEXT4;
i_sh:
	STORE(x[RS1] + imm_s(insn), 2, x[RS2]);
	NEXT4;
i_sw:
	STORE(x[RS1] + imm_s(insn), 4, x[RS2]);
	NEXT4;
i_sd:
	STORE(x[RS1] + imm_s(insn), 8, x[RS2]);
	NEXT4;

i_addi:
	WR(RD, x[RS1] + imm_i(insn));
	NEXT4;
i_slli: /* RV64: shamt[5:0]; imm[11:6] must be 0 */
	if (insn >> 26)
		goto illegal;
	WR(RD, x[RS1] << ((insn >> 20) & 63));
	NEXT4;
i_slti:
	WR(RD, (int64_t)x[RS1] < (int64_t)imm_i(insn));
	NEXT4;
i_sltiu:
	WR(RD, x[RS1] < imm_i(insn));
	NEXT4;
i_xori:
	WR(RD, x[RS1] ^ imm_i(insn));
	NEXT4;
i_srli: /* SRLI: imm[11:6] = 0, SRAI: 0x10 */
	if ((insn >> 26) == 0)
		WR(RD, x[RS1] >> ((insn >> 20) & 63));
	else if ((insn >> 26) == 0x10)
		WR(RD, (uint64_t)((int64_t)x[RS1] >> ((insn >> 20) & 63)));
	else
		goto illegal;
	NEXT4;
i_ori:
	WR(RD, x[RS1] | imm_i(insn));
	NEXT4;
i_andi:
	WR(RD, x[RS1] & imm_i(insn));
	NEXT4;

i_addiw:
	WR(RD, sext32(x[RS1] + imm_i(insn)));
	NEXT4;
i_slliw:
	if (insn >> 25)
		goto illegal;
	WR(RD, sext32((uint32_t)x[RS1] << RS2));
	NEXT4;
i_srliw:
	if ((insn >> 25) == 0)
		WR(RD, sext32((uint32_t)x[RS1] >> RS2));
	else if ((insn >> 25) == 0x20)
		WR(RD, (uint64_t)(int64_t)((int32_t)x[RS1] >> RS2));
	else
		goto illegal;
	NEXT4;

	/* OP, by funct3; funct7 0x00 base, 0x20 SUB/SRA, 0x01 M extension */
i_op0:
	switch (insn >> 25) {
	case 0x00:
		WR(RD, x[RS1] + x[RS2]);
		NEXT4;
	case 0x20:
		WR(RD, x[RS1] - x[RS2]);
		NEXT4;
	case 0x01:
		WR(RD, x[RS1] * x[RS2]);
		NEXT4;
	}
	goto illegal;
i_op1:
	switch (insn >> 25) {
	case 0x00: /* SLL */
		WR(RD, x[RS1] << (x[RS2] & 63));
		NEXT4;
	case 0x01: /* MULH */
		WR(RD, mulh(x[RS1], x[RS2]));
		NEXT4;
	}
	goto illegal;
i_op2:
	switch (insn >> 25) {
	case 0x00: /* SLT */
		WR(RD, (int64_t)x[RS1] < (int64_t)x[RS2]);
		NEXT4;
	case 0x01: /* MULHSU */
		WR(RD, mulhsu(x[RS1], x[RS2]));
		NEXT4;
	}
	goto illegal;
i_op3:
	switch (insn >> 25) {
	case 0x00: /* SLTU */
		WR(RD, x[RS1] < x[RS2]);
		NEXT4;
	case 0x01: /* MULHU */
		WR(RD, mulhu(x[RS1], x[RS2]));
		NEXT4;
	}
	goto illegal;
i_op4:
	switch (insn >> 25) {
	case 0x00: /* XOR */
		WR(RD, x[RS1] ^ x[RS2]);
		NEXT4;
	case 0x01: /* DIV */
		WR(RD, div64(x[RS1], x[RS2]));
		NEXT4;
	}
	goto illegal;
i_op5:
	switch (insn >> 25) {
	case 0x00: /* SRL */
		WR(RD, x[RS1] >> (x[RS2] & 63));
		NEXT4;
	case 0x20: /* SRA */
		WR(RD, (uint64_t)((int64_t)x[RS1] >> (x[RS2] & 63)));
		NEXT4;
	case 0x01: /* DIVU */
		WR(RD, x[RS2] ? x[RS1] / x[RS2] : UINT64_MAX);
		NEXT4;
	}
	goto illegal;
i_op6:
	switch (insn >> 25) {
	case 0x00: /* OR */
		WR(RD, x[RS1] | x[RS2]);
		NEXT4;
	case 0x01: /* REM */
		WR(RD, rem64(x[RS1], x[RS2]));
		NEXT4;
	}
	goto illegal;
i_op7:
	switch (insn >> 25) {
	case 0x00: /* AND */
		WR(RD, x[RS1] & x[RS2]);
		NEXT4;
	case 0x01: /* REMU */
		WR(RD, x[RS2] ? x[RS1] % x[RS2] : x[RS1]);
		NEXT4;
	}
	goto illegal;

i_op32: {
	uint64_t a = x[RS1], b = x[RS2];

	switch ((insn >> 25) << 3 | F3) {
	case 0x000: /* ADDW */
		v = sext32(a + b);
		break;
	case 0x100: /* SUBW */
		v = sext32(a - b);
		break;
	case 0x001: /* SLLW */
		v = sext32((uint32_t)a << (b & 31));
		break;
	case 0x005: /* SRLW */
		v = sext32((uint32_t)a >> (b & 31));
		break;
	case 0x105: /* SRAW */
		v = (uint64_t)(int64_t)((int32_t)a >> (b & 31));
		break;
	case 0x008: /* MULW */
		v = sext32(a * b);
		break;
	case 0x00c: /* DIVW */
		v = div32(a, b);
		break;
	case 0x00d: /* DIVUW */
		v = divu32(a, b);
		break;
	case 0x00e: /* REMW */
		v = rem32(a, b);
		break;
	case 0x00f: /* REMUW */
		v = remu32(a, b);
		break;
	default:
		goto illegal;
	}
	WR(RD, v);
	NEXT4;
}

i_fence:
	/* FENCE, PAUSE: one hart, accesses already in order. FENCE.I:
	 * nothing decoded is cached. */
	NEXT4;

i_amo: {
	unsigned f5 = insn >> 27, size = F3 == 2 ? 4 : 8;
	bool word = size == 4;

	va = x[RS1];
	if (f5 == AMO_LR) {
		if (RS2)
			goto illegal;
		if (va & (size - 1))
			FAULT(CAUSE_LOAD_MISALIGNED, va);
		LOAD(va, size, v);
		s->reservation = va;
		WR(RD, word ? sext32(v) : v);
		NEXT4;
	}
	if (f5 != AMO_SC && !((AMO_VALID >> f5) & 1))
		goto illegal;
	if (va & (size - 1))
		FAULT(CAUSE_STORE_MISALIGNED, va);
	if (f5 == AMO_SC) {
		/* Fails unless this hart's reservation covers va. */
		if (s->reservation != va) {
			s->reservation = UINT64_MAX;
			WR(RD, 1);
			NEXT4;
		}
		STORE(va, size, x[RS2]);
		s->reservation = UINT64_MAX;
		WR(RD, 0);
		NEXT4;
	} else {
		uint8_t *p = mmu_amo_ptr(h, va, size, dkey);
		uint64_t old = 0, nv;

		if (!p)
			goto exception;
		memcpy(&old, p, size);
		nv = amo_compute(f5, old, x[RS2], word);
		memcpy(p, &nv, size);
		WR(RD, word ? sext32(old) : old);
		NEXT4;
	}
}

	/* ---- F/D loads and stores; arithmetic in fpu.c ---- */
i_flw:
	if (!FP_ENABLED())
		goto illegal;
	LOAD(x[RS1] + imm_i(insn), 4, v);
	s->f[RD] = v | 0xffffffff00000000ull;	/* NaN-boxed */
	FP_DIRTY();
	NEXT4;
i_fld:
	if (!FP_ENABLED())
		goto illegal;
	LOAD(x[RS1] + imm_i(insn), 8, v);
	s->f[RD] = v;
	FP_DIRTY();
	NEXT4;
i_fsw:
	if (!FP_ENABLED())
		goto illegal;
	STORE(x[RS1] + imm_s(insn), 4, s->f[RS2]);
	NEXT4;
i_fsd:
	if (!FP_ENABLED())
		goto illegal;
	STORE(x[RS1] + imm_s(insn), 8, s->f[RS2]);
	NEXT4;
i_fp:
	if (fpu_exec(h, insn))
		goto illegal;
	NEXT4;

i_system: {
	unsigned f3 = F3;
	uint64_t old;

	s->pc = PC;
	if (f3 == 0) {
		switch (insn) {
		case 0x00000073: /* ECALL */
			if (s->priv == PRV_S && h->sbi_builtin) {
				/* Firmware answers in place (sbi.h). */
				h->insns = n - 1;
				sbi_ecall(h);
				s->pc += 4;
				goto transfer;
			}
			FAULT(s->priv == PRV_U	 ? CAUSE_ECALL_U
			      : s->priv == PRV_S ? CAUSE_ECALL_S
						 : CAUSE_ECALL_M,
			      0);
		case 0x00100073: /* EBREAK */
			FAULT(CAUSE_BREAKPOINT, s->pc);
		case 0x10200073: /* SRET */
			if (!hart_sret(h))
				goto illegal;
			goto transfer;
		case 0x30200073: /* MRET */
			if (!hart_mret(h))
				goto illegal;
			goto transfer;
		case 0x10500073: /* WFI (3.3.3) */
			if (s->priv == PRV_U ||
			    (s->priv == PRV_S && (s->mstatus & MSTATUS_TW)))
				goto illegal;
			s->pc += 4;
			if (hart_mip(h) & s->mie)
				goto transfer;
			s->wfi = 1;
			goto out;
		default:
			break;
		}
		if ((insn & 0xfe007fff) == 0x12000073) {
			/* SFENCE.VMA (4.2.1): drop every translation. */
			if (s->priv == PRV_U ||
			    (s->priv == PRV_S && (s->mstatus & MSTATUS_TVM)))
				goto illegal;
			mmu_tlb_flush_all(h);
			s->pc += 4;
			goto transfer;
		}
		goto illegal;
	}
	if (f3 == 4)
		goto illegal;
	/* Zicsr; rs1 = x0 / uimm = 0 means no write for RS and RC. */
	v = (f3 & 4) ? RS1 : x[RS1];
	h->insns = n - 1;
	if (!csr_op(h, insn >> 20, (enum csr_op)(f3 & 3), v,
		    (f3 & 3) == CSR_OP_RW || RS1 != 0, &old))
		goto illegal;
	WR(RD, old);
	/* The write may have unmasked an interrupt or changed translation:
	 * re-derive at the transfer point. */
	s->pc += 4;
	goto transfer;
}

	/* ---- Compressed (unprivileged spec chapter 16) ---- */
c_addi4spn: /* also catches the all-zero illegal instruction */
	insn &= 0xffff;
	v = cimm_addi4spn(insn);
	if (!v)
		goto illegal;
	x[CRS2P] = x[2] + v;
	NEXT2;
c_fld:
	insn &= 0xffff;
	if (!FP_ENABLED())
		goto illegal;
	LOAD(x[CRS1P] + cimm_ld(insn), 8, v);
	s->f[CRS2P] = v;
	FP_DIRTY();
	NEXT2;
c_lw:
	LOAD(x[CRS1P] + cimm_lw(insn), 4, v);
	x[CRS2P] = sext32(v);
	NEXT2;
c_ld:
	LOAD(x[CRS1P] + cimm_ld(insn), 8, v);
	x[CRS2P] = v;
	NEXT2;
c_fsd:
	insn &= 0xffff;
	if (!FP_ENABLED())
		goto illegal;
	STORE(x[CRS1P] + cimm_ld(insn), 8, s->f[CRS2P]);
	NEXT2;
c_sw:
	STORE(x[CRS1P] + cimm_lw(insn), 4, x[CRS2P]);
	NEXT2;
c_sd:
	STORE(x[CRS1P] + cimm_ld(insn), 8, x[CRS2P]);
	NEXT2;
c_addi: /* C.NOP and rd = 0 are hints */
	rd = RD;
	WR(rd, x[rd] + cimm6(insn));
	NEXT2;
c_addiw: /* rd = 0 reserved */
	insn &= 0xffff;
	rd = RD;
	if (!rd)
		goto illegal;
	x[rd] = sext32(x[rd] + cimm6(insn));
	NEXT2;
c_li:
	WR(RD, cimm6(insn));
	NEXT2;
c_lui: /* rd = 2: C.ADDI16SP; zero immediates reserved */
	insn &= 0xffff;
	rd = RD;
	if (rd == 2) {
		v = cimm_addi16sp(insn);
		if (!v)
			goto illegal;
		x[2] += v;
	} else {
		v = cimm6(insn) << 12;
		if (!v)
			goto illegal;
		WR(rd, v);
	}
	NEXT2;
c_alu: {
	unsigned r = CRS1P, r2 = CRS2P;

	insn &= 0xffff;
	switch ((insn >> 10) & 3) {
	case 0: /* C.SRLI */
		x[r] >>= cshamt(insn);
		NEXT2;
	case 1: /* C.SRAI */
		x[r] = (uint64_t)((int64_t)x[r] >> cshamt(insn));
		NEXT2;
	case 2: /* C.ANDI */
		x[r] &= cimm6(insn);
		NEXT2;
	}
	switch (((insn >> 10) & 4) | ((insn >> 5) & 3)) {
	case 0: /* C.SUB */
		x[r] -= x[r2];
		NEXT2;
	case 1: /* C.XOR */
		x[r] ^= x[r2];
		NEXT2;
	case 2: /* C.OR */
		x[r] |= x[r2];
		NEXT2;
	case 3: /* C.AND */
		x[r] &= x[r2];
		NEXT2;
	case 4: /* C.SUBW */
		x[r] = sext32(x[r] - x[r2]);
		NEXT2;
	case 5: /* C.ADDW */
		x[r] = sext32(x[r] + x[r2]);
		NEXT2;
	}
	goto illegal;
}
c_j:
	JUMP(PC + cimm_j(insn));
c_beqz:
	BRANCH(x[CRS1P] == 0, cimm_b(insn), 2);
c_bnez:
	BRANCH(x[CRS1P] != 0, cimm_b(insn), 2);
c_slli: /* rd = 0 and shamt = 0 are hints */
	rd = RD;
	WR(rd, x[rd] << cshamt(insn));
	NEXT2;
c_fldsp:
	insn &= 0xffff;
	if (!FP_ENABLED())
		goto illegal;
	LOAD(x[2] + cimm_ldsp(insn), 8, v);
	s->f[RD] = v;
	FP_DIRTY();
	NEXT2;
c_lwsp: /* rd = 0 reserved */
	insn &= 0xffff;
	if (!RD)
		goto illegal;
	LOAD(x[2] + cimm_lwsp(insn), 4, v);
	x[RD] = sext32(v);
	NEXT2;
c_ldsp: /* rd = 0 reserved */
	insn &= 0xffff;
	if (!RD)
		goto illegal;
	LOAD(x[2] + cimm_ldsp(insn), 8, v);
	x[RD] = v;
	NEXT2;
c_jr_mv:
	if (CRS2) { /* C.MV */
		WR(RD, x[CRS2]);
		NEXT2;
	}
	insn &= 0xffff;
	if (!RD) /* C.JR with rs1 = x0 is reserved */
		goto illegal;
	JUMP(x[RD] & ~1ull);
c_jalr_add:
	if (CRS2) { /* C.ADD */
		rd = RD;
		WR(rd, x[rd] + x[CRS2]);
		NEXT2;
	}
	insn &= 0xffff;
	if (!RD) /* C.EBREAK */
		FAULT(CAUSE_BREAKPOINT, PC);
	/* C.JALR; target read before the link (rs1 may be ra) */
	v = x[RD] & ~1ull;
	x[1] = PC + 2;
	JUMP(v);
c_fsdsp:
	insn &= 0xffff;
	if (!FP_ENABLED())
		goto illegal;
	STORE(x[2] + cimm_sdsp(insn), 8, s->f[CRS2]);
	NEXT2;
c_swsp:
	STORE(x[2] + cimm_swsp(insn), 4, x[CRS2]);
	NEXT2;
c_sdsp:
	STORE(x[2] + cimm_sdsp(insn), 8, x[CRS2]);
	NEXT2;

illegal:
	/* tval = the instruction bits (3.1.16); 16 of them if compressed */
	if ((insn & 3) != 3)
		insn &= 0xffff;
	hart_fault(h, CAUSE_ILLEGAL_INSN, insn);
exception:
	/* The instruction at cp traps and does not retire. */
	s->pc = PC;
	n--;
	if (limit)
		limit--;	/* yet traps use up the budget */
	hart_trap(h, h->exc_cause, h->exc_tval);
	goto transfer;

out:
	h->insns = 0;
	s->mcycle += n;
	s->minstret += n;
	return n;

#undef PC
#undef RD
#undef RS1
#undef RS2
#undef F3
#undef CRS2P
#undef CRS1P
#undef CRS2
#undef WR
#undef DISPATCH
#undef NEXT4
#undef NEXT2
#undef JUMP
#undef BRANCH
#undef FAULT
#undef LOAD
#undef STORE
#undef FP_ENABLED
#undef FP_DIRTY
}
