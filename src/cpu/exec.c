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

uint64_t hart_run(hart_t *h, uint64_t budget)
{
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
	unsigned rd, rs1, rs2;
	uint64_t v, va, t;

#define PC ((uint64_t)((uintptr_t)cp - addend))
#define WR(r, val)                                                             \
	do {                                                                   \
		uint64_t val_ = (val);                                         \
		if (likely(r))                                                 \
			x[r] = val_;                                           \
	} while (0)
#define NEXT4                                                                  \
	do {                                                                   \
		cp += 4;                                                       \
		goto next;                                                     \
	} while (0)
#define NEXT2                                                                  \
	do {                                                                   \
		cp += 2;                                                       \
		goto next;                                                     \
	} while (0)
	/* A control transfer; stays on the code page when nothing is due. */
#define JUMP(target)                                                           \
	do {                                                                   \
		t = (target);                                                  \
		if (likely((t & ~PAGE_MASK) == pgva &&                         \
			   !transfer_pending(h, n, limit))) {                  \
			cp = (const uint8_t *)(uintptr_t)(t + addend);         \
			goto next;                                             \
		}                                                              \
		s->pc = t;                                                     \
		goto transfer;                                                 \
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

next:
	if (likely(cp < cend)) {
		memcpy(&insn, cp, 4);
	} else if (cp == cend) {
		/* The last parcel of the page; a 32-bit insn continues on
		 * the next page, which is translated separately. */
		uint16_t lo;

		memcpy(&lo, cp, 2);
		insn = lo;
		if ((insn & 3) == 3) {
			uint32_t hi;

			if (!mmu_fetch16(h, PC + 2, &hi)) {
				n++;	/* undone by the exception path */
				goto exception;
			}
			insn |= hi << 16;
		}
	} else {
		/* Left the page. */
		s->pc = PC;
		goto transfer;
	}
	n++;
	rd = (insn >> 7) & 31;

	if ((insn & 3) != 3) {
		insn &= 0xffff;
		switch (((insn & 3) << 3) | (insn >> 13)) {
		case 0x00: /* C.ADDI4SPN; also the all-zero illegal insn */
			v = cimm_addi4spn(insn);
			if (!v)
				goto illegal;
			x[8 + ((insn >> 2) & 7)] = x[2] + v;
			NEXT2;
		case 0x01: /* C.FLD */
			if (!FP_ENABLED())
				goto illegal;
			LOAD(x[8 + ((insn >> 7) & 7)] + cimm_ld(insn), 8, v);
			s->f[8 + ((insn >> 2) & 7)] = v;
			FP_DIRTY();
			NEXT2;
		case 0x02: /* C.LW */
			LOAD(x[8 + ((insn >> 7) & 7)] + cimm_lw(insn), 4, v);
			x[8 + ((insn >> 2) & 7)] = sext32(v);
			NEXT2;
		case 0x03: /* C.LD */
			LOAD(x[8 + ((insn >> 7) & 7)] + cimm_ld(insn), 8, v);
			x[8 + ((insn >> 2) & 7)] = v;
			NEXT2;
		case 0x05: /* C.FSD */
			if (!FP_ENABLED())
				goto illegal;
			STORE(x[8 + ((insn >> 7) & 7)] + cimm_ld(insn), 8,
			      s->f[8 + ((insn >> 2) & 7)]);
			NEXT2;
		case 0x06: /* C.SW */
			STORE(x[8 + ((insn >> 7) & 7)] + cimm_lw(insn), 4,
			      x[8 + ((insn >> 2) & 7)]);
			NEXT2;
		case 0x07: /* C.SD */
			STORE(x[8 + ((insn >> 7) & 7)] + cimm_ld(insn), 8,
			      x[8 + ((insn >> 2) & 7)]);
			NEXT2;
		case 0x08: /* C.ADDI, C.NOP (rd = 0: hint) */
			WR(rd, x[rd] + cimm6(insn));
			NEXT2;
		case 0x09: /* C.ADDIW (rd = 0 reserved) */
			if (!rd)
				goto illegal;
			x[rd] = sext32(x[rd] + cimm6(insn));
			NEXT2;
		case 0x0a: /* C.LI */
			WR(rd, cimm6(insn));
			NEXT2;
		case 0x0b:
			if (rd == 2) { /* C.ADDI16SP */
				v = cimm_addi16sp(insn);
				if (!v)
					goto illegal;
				x[2] += v;
			} else { /* C.LUI */
				v = cimm6(insn) << 12;
				if (!v)
					goto illegal;
				WR(rd, v);
			}
			NEXT2;
		case 0x0c: {
			unsigned r = 8 + ((insn >> 7) & 7);
			unsigned r2 = 8 + ((insn >> 2) & 7);

			switch ((insn >> 10) & 3) {
			case 0: /* C.SRLI */
				x[r] >>= cshamt(insn);
				break;
			case 1: /* C.SRAI */
				x[r] = (uint64_t)((int64_t)x[r] >> cshamt(insn));
				break;
			case 2: /* C.ANDI */
				x[r] &= cimm6(insn);
				break;
			default:
				switch (((insn >> 10) & 4) | ((insn >> 5) & 3)) {
				case 0: /* C.SUB */
					x[r] -= x[r2];
					break;
				case 1: /* C.XOR */
					x[r] ^= x[r2];
					break;
				case 2: /* C.OR */
					x[r] |= x[r2];
					break;
				case 3: /* C.AND */
					x[r] &= x[r2];
					break;
				case 4: /* C.SUBW */
					x[r] = sext32(x[r] - x[r2]);
					break;
				case 5: /* C.ADDW */
					x[r] = sext32(x[r] + x[r2]);
					break;
				default:
					goto illegal;
				}
			}
			NEXT2;
		}
		case 0x0d: /* C.J */
			JUMP(PC + cimm_j(insn));
		case 0x0e: /* C.BEQZ */
			if (x[8 + ((insn >> 7) & 7)] == 0)
				JUMP(PC + cimm_b(insn));
			NEXT2;
		case 0x0f: /* C.BNEZ */
			if (x[8 + ((insn >> 7) & 7)] != 0)
				JUMP(PC + cimm_b(insn));
			NEXT2;
		case 0x10: /* C.SLLI */
			WR(rd, x[rd] << cshamt(insn));
			NEXT2;
		case 0x11: /* C.FLDSP */
			if (!FP_ENABLED())
				goto illegal;
			LOAD(x[2] + cimm_ldsp(insn), 8, v);
			s->f[rd] = v;
			FP_DIRTY();
			NEXT2;
		case 0x12: /* C.LWSP (rd = 0 reserved) */
			if (!rd)
				goto illegal;
			LOAD(x[2] + cimm_lwsp(insn), 4, v);
			x[rd] = sext32(v);
			NEXT2;
		case 0x13: /* C.LDSP (rd = 0 reserved) */
			if (!rd)
				goto illegal;
			LOAD(x[2] + cimm_ldsp(insn), 8, v);
			x[rd] = v;
			NEXT2;
		case 0x14:
			rs2 = (insn >> 2) & 31;
			if (!(insn & 0x1000)) {
				if (rs2) { /* C.MV */
					WR(rd, x[rs2]);
					NEXT2;
				}
				if (!rd) /* C.JR x0 reserved */
					goto illegal;
				JUMP(x[rd] & ~1ull);
			}
			if (rs2) { /* C.ADD */
				WR(rd, x[rd] + x[rs2]);
				NEXT2;
			}
			if (!rd) /* C.EBREAK */
				FAULT(CAUSE_BREAKPOINT, PC);
			/* C.JALR */
			v = x[rd] & ~1ull;
			x[1] = PC + 2;
			JUMP(v);
		case 0x15: /* C.FSDSP */
			if (!FP_ENABLED())
				goto illegal;
			STORE(x[2] + cimm_sdsp(insn), 8, s->f[(insn >> 2) & 31]);
			NEXT2;
		case 0x16: /* C.SWSP */
			STORE(x[2] + cimm_swsp(insn), 4, x[(insn >> 2) & 31]);
			NEXT2;
		case 0x17: /* C.SDSP */
			STORE(x[2] + cimm_sdsp(insn), 8, x[(insn >> 2) & 31]);
			NEXT2;
		default:
			goto illegal;
		}
	}

	rs1 = (insn >> 15) & 31;
	rs2 = (insn >> 20) & 31;
	switch (insn & 0x7f) {
	case 0x37: /* LUI */
		WR(rd, imm_u(insn));
		NEXT4;
	case 0x17: /* AUIPC */
		WR(rd, PC + imm_u(insn));
		NEXT4;
	case 0x6f: /* JAL */
		v = PC;
		WR(rd, v + 4);
		JUMP(v + imm_j(insn));
	case 0x67: /* JALR */
		if ((insn >> 12) & 7)
			goto illegal;
		v = (x[rs1] + imm_i(insn)) & ~1ull;
		WR(rd, PC + 4);
		JUMP(v);
	case 0x63: { /* BRANCH */
		uint64_t a = x[rs1], b = x[rs2];
		bool taken;

		switch ((insn >> 12) & 7) {
		case 0:
			taken = a == b;
			break;
		case 1:
			taken = a != b;
			break;
		case 4:
			taken = (int64_t)a < (int64_t)b;
			break;
		case 5:
			taken = (int64_t)a >= (int64_t)b;
			break;
		case 6:
			taken = a < b;
			break;
		case 7:
			taken = a >= b;
			break;
		default:
			goto illegal;
		}
		if (taken)
			JUMP(PC + imm_b(insn));
		NEXT4;
	}
	case 0x03: /* LOAD */
		va = x[rs1] + imm_i(insn);
		switch ((insn >> 12) & 7) {
		case 0: /* LB */
			LOAD(va, 1, v);
			v = (uint64_t)(int64_t)(int8_t)v;
			break;
		case 1: /* LH */
			LOAD(va, 2, v);
			v = (uint64_t)(int64_t)(int16_t)v;
			break;
		case 2: /* LW */
			LOAD(va, 4, v);
			v = sext32(v);
			break;
		case 3: /* LD */
			LOAD(va, 8, v);
			break;
		case 4: /* LBU */
			LOAD(va, 1, v);
			break;
		case 5: /* LHU */
			LOAD(va, 2, v);
			break;
		case 6: /* LWU */
			LOAD(va, 4, v);
			break;
		default:
			goto illegal;
		}
		WR(rd, v);
		NEXT4;
	case 0x23: /* STORE */
		va = x[rs1] + imm_s(insn);
		switch ((insn >> 12) & 7) {
		case 0:
			STORE(va, 1, x[rs2]);
			break;
		case 1:
			STORE(va, 2, x[rs2]);
			break;
		case 2:
			STORE(va, 4, x[rs2]);
			break;
		case 3:
			STORE(va, 8, x[rs2]);
			break;
		default:
			goto illegal;
		}
		NEXT4;
	case 0x13: { /* OP-IMM */
		uint64_t a = x[rs1], imm = imm_i(insn);

		switch ((insn >> 12) & 7) {
		case 0: /* ADDI */
			v = a + imm;
			break;
		case 1: /* SLLI: imm[11:6] must be 0 */
			if (insn >> 26)
				goto illegal;
			v = a << (imm & 63);
			break;
		case 2: /* SLTI */
			v = (int64_t)a < (int64_t)imm;
			break;
		case 3: /* SLTIU */
			v = a < imm;
			break;
		case 4: /* XORI */
			v = a ^ imm;
			break;
		case 5:
			if ((insn >> 26) == 0) /* SRLI */
				v = a >> (imm & 63);
			else if ((insn >> 26) == 0x10) /* SRAI */
				v = (uint64_t)((int64_t)a >> (imm & 63));
			else
				goto illegal;
			break;
		case 6: /* ORI */
			v = a | imm;
			break;
		default: /* ANDI */
			v = a & imm;
			break;
		}
		WR(rd, v);
		NEXT4;
	}
	case 0x1b: { /* OP-IMM-32 */
		uint64_t a = x[rs1];
		unsigned f7 = insn >> 25;

		switch ((insn >> 12) & 7) {
		case 0: /* ADDIW */
			v = sext32(a + imm_i(insn));
			break;
		case 1: /* SLLIW */
			if (f7)
				goto illegal;
			v = sext32((uint32_t)a << rs2);
			break;
		case 5:
			if (f7 == 0) /* SRLIW */
				v = sext32((uint32_t)a >> rs2);
			else if (f7 == 0x20) /* SRAIW */
				v = (uint64_t)(int64_t)((int32_t)a >> rs2);
			else
				goto illegal;
			break;
		default:
			goto illegal;
		}
		WR(rd, v);
		NEXT4;
	}
	case 0x33: { /* OP */
		uint64_t a = x[rs1], b = x[rs2];

		switch ((insn >> 25) << 3 | ((insn >> 12) & 7)) {
		case 0x000: /* ADD */
			v = a + b;
			break;
		case 0x100: /* SUB */
			v = a - b;
			break;
		case 0x001: /* SLL */
			v = a << (b & 63);
			break;
		case 0x002: /* SLT */
			v = (int64_t)a < (int64_t)b;
			break;
		case 0x003: /* SLTU */
			v = a < b;
			break;
		case 0x004: /* XOR */
			v = a ^ b;
			break;
		case 0x005: /* SRL */
			v = a >> (b & 63);
			break;
		case 0x105: /* SRA */
			v = (uint64_t)((int64_t)a >> (b & 63));
			break;
		case 0x006: /* OR */
			v = a | b;
			break;
		case 0x007: /* AND */
			v = a & b;
			break;
		case 0x008: /* MUL */
			v = a * b;
			break;
		case 0x009: /* MULH */
			v = mulh(a, b);
			break;
		case 0x00a: /* MULHSU */
			v = mulhsu(a, b);
			break;
		case 0x00b: /* MULHU */
			v = mulhu(a, b);
			break;
		case 0x00c: /* DIV */
			v = div64(a, b);
			break;
		case 0x00d: /* DIVU */
			v = b ? a / b : UINT64_MAX;
			break;
		case 0x00e: /* REM */
			v = rem64(a, b);
			break;
		case 0x00f: /* REMU */
			v = b ? a % b : a;
			break;
		default:
			goto illegal;
		}
		WR(rd, v);
		NEXT4;
	}
	case 0x3b: { /* OP-32 */
		uint64_t a = x[rs1], b = x[rs2];

		switch ((insn >> 25) << 3 | ((insn >> 12) & 7)) {
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
		WR(rd, v);
		NEXT4;
	}
	case 0x0f: /* MISC-MEM */
		switch ((insn >> 12) & 7) {
		case 0: /* FENCE, PAUSE: one hart, accesses in order */
			NEXT4;
		case 1: /* FENCE.I: nothing decoded is cached */
			NEXT4;
		default:
			goto illegal;
		}
	case 0x2f: { /* AMO */
		unsigned f5 = insn >> 27, size;
		bool word;

		switch ((insn >> 12) & 7) {
		case 2:
			size = 4;
			break;
		case 3:
			size = 8;
			break;
		default:
			goto illegal;
		}
		word = size == 4;
		va = x[rs1];
		if (f5 == AMO_LR) {
			if (rs2)
				goto illegal;
			if (va & (size - 1))
				FAULT(CAUSE_LOAD_MISALIGNED, va);
			LOAD(va, size, v);
			s->reservation = va;
			WR(rd, word ? sext32(v) : v);
			NEXT4;
		}
		if (f5 != AMO_SC && !((AMO_VALID >> f5) & 1))
			goto illegal;
		if (va & (size - 1))
			FAULT(CAUSE_STORE_MISALIGNED, va);
		if (f5 == AMO_SC) {
			if (s->reservation != va) {
				s->reservation = UINT64_MAX;
				WR(rd, 1);
				NEXT4;
			}
			STORE(va, size, x[rs2]);
			s->reservation = UINT64_MAX;
			WR(rd, 0);
			NEXT4;
		} else {
			uint8_t *p = mmu_amo_ptr(h, va, size, dkey);
			uint64_t old = 0, nv;

			if (!p)
				goto exception;
			memcpy(&old, p, size);
			nv = amo_compute(f5, old, x[rs2], word);
			memcpy(p, &nv, size);
			WR(rd, word ? sext32(old) : old);
			NEXT4;
		}
	}
	case 0x07: /* LOAD-FP */
		if (!FP_ENABLED())
			goto illegal;
		va = x[rs1] + imm_i(insn);
		switch ((insn >> 12) & 7) {
		case 2: /* FLW: NaN-boxed */
			LOAD(va, 4, v);
			s->f[rd] = v | 0xffffffff00000000ull;
			break;
		case 3: /* FLD */
			LOAD(va, 8, v);
			s->f[rd] = v;
			break;
		default:
			goto illegal;
		}
		FP_DIRTY();
		NEXT4;
	case 0x27: /* STORE-FP */
		if (!FP_ENABLED())
			goto illegal;
		va = x[rs1] + imm_s(insn);
		switch ((insn >> 12) & 7) {
		case 2: /* FSW */
			STORE(va, 4, s->f[rs2]);
			break;
		case 3: /* FSD */
			STORE(va, 8, s->f[rs2]);
			break;
		default:
			goto illegal;
		}
		NEXT4;
	case 0x43: /* MADD */
	case 0x47: /* MSUB */
	case 0x4b: /* NMSUB */
	case 0x4f: /* NMADD */
	case 0x53: /* OP-FP */
		if (fpu_exec(h, insn))
			goto illegal;
		NEXT4;
	case 0x73: { /* SYSTEM */
		unsigned f3 = (insn >> 12) & 7;
		uint64_t old;

		if (f3 == 0) {
			s->pc = PC;
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
				FAULT(CAUSE_BREAKPOINT, PC);
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
				    (s->priv == PRV_S &&
				     (s->mstatus & MSTATUS_TW)))
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
				/* SFENCE.VMA (4.2.1): every translation. */
				if (s->priv == PRV_U ||
				    (s->priv == PRV_S &&
				     (s->mstatus & MSTATUS_TVM)))
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
		v = (f3 & 4) ? rs1 : x[rs1];
		s->pc = PC;
		h->insns = n - 1;
		if (!csr_op(h, insn >> 20, (enum csr_op)(f3 & 3), v,
			    (f3 & 3) == CSR_OP_RW || rs1 != 0, &old))
			goto illegal;
		WR(rd, old);
		/* The write may have unmasked an interrupt or changed
		 * translation: re-derive at the transfer point. */
		s->pc += 4;
		goto transfer;
	}
	default:
		goto illegal;
	}

illegal:
	/* tval = the instruction bits (3.1.16) */
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
#undef WR
#undef NEXT4
#undef NEXT2
#undef JUMP
#undef FAULT
#undef LOAD
#undef STORE
#undef FP_ENABLED
#undef FP_DIRTY
}
