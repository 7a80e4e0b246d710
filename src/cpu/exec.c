// SPDX-License-Identifier: MIT
/*
 * The interpreter: RV64IMAC, Zicsr, Zifencei, Zihintpause, F/D loads and
 * stores (arithmetic goes to fpu_exec()).
 *
 * Design (hot path first):
 * - Each instruction is decoded once (cpu/dcache.h): the interpreter walks
 *   the decoded slots of the current physical code page and jumps straight
 *   to each slot's handler, operands already extracted. The code TLB is
 *   consulted again only when execution leaves the page (sequentially, via
 *   a sentinel slot, or by a jump).
 * - Loads and stores hit a direct-mapped TLB with a single compare
 *   (cpu/mmu.h); everything else takes a slow path.
 * - Interrupts, the instruction budget, stop requests and the RAM dirty-log
 *   generation are only looked at on control transfers (taken branches,
 *   jumps, traps, xRET) and after CSR writes, never per instruction.
 * - A trap or any change of privileged state ends the straight-line run and
 *   goes through `transfer`, which re-derives everything.
 */
#include "cpu/hart.h"

#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_internal.h"
#include "cpu/csr.h"
#include "cpu/dcache.h"
#include "cpu/fpu.h"
#include "cpu/mmu.h"
#include "cpu/sbi.h"
#include "machine/machine.h"
#include "util/log.h"

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
 * Handlers, each in a variant for a 4-byte and a 2-byte instruction (the
 * variant only decides where the next instruction is). A compressed
 * instruction is decoded to the 2-byte variant of its 32-bit equivalent
 * (unprivileged spec 16.1: every RVC instruction expands to one).
 */
#define DUAL_OPS(X)                                                            \
	X(nop) X(lui) X(auipc) X(jal) X(jalr)                                  \
	X(beq) X(bne) X(blt) X(bge) X(bltu) X(bgeu)                            \
	X(lb) X(lh) X(lw) X(ld) X(lbu) X(lhu) X(lwu)                           \
	X(sb) X(sh) X(sw) X(sd)                                                \
	X(addi) X(slti) X(sltiu) X(xori) X(ori) X(andi)                        \
	X(slli) X(srli) X(srai) X(addiw) X(slliw) X(srliw) X(sraiw)            \
	X(add) X(sub) X(sll) X(slt) X(sltu) X(xor) X(srl) X(sra) X(or) X(and)  \
	X(mul) X(mulh) X(mulhsu) X(mulhu) X(div) X(divu) X(rem) X(remu)        \
	X(addw) X(subw) X(sllw) X(srlw) X(sraw)                                \
	X(mulw) X(divw) X(divuw) X(remw) X(remuw)                              \
	X(flw) X(fld) X(fsw) X(fsd)

enum {
#define X(name) H_##name, H_##name##_c,
	DUAL_OPS(X)
#undef X
	H_amo,
	H_fp,
	H_system,
	H_ebreak,
	H_illegal,
	H_undecoded,
	H_page_end,
	H_COUNT
};

/* Handler addresses, filled by hart_run() on its first call. */
static const void *handler[H_COUNT];

static void slot_set(dslot_t *d, unsigned hi, unsigned rd, unsigned rs1,
		     unsigned rs2, uint64_t imm)
{
	d->h = handler[hi];
	d->rd = (uint8_t)rd;
	d->rs1 = (uint8_t)rs1;
	d->rs2 = (uint8_t)rs2;
	d->imm = (int32_t)imm;
}

/* An instruction with no effect but on rd: a write to x0 makes it a no-op
 * (these never trap, so skipping them is exact). */
static void slot_alu(dslot_t *d, unsigned hi, unsigned rd, unsigned rs1,
		     unsigned rs2, uint64_t imm)
{
	if (rd == 0)
		hi = (hi & 1) ? H_nop_c : H_nop;
	slot_set(d, hi, rd, rs1, rs2, imm);
}

static void slot_illegal(dslot_t *d)
{
	slot_set(d, H_illegal, 0, 0, 0, 0);
}

static void decode32(dslot_t *d, uint32_t insn)
{
	static const uint8_t loads[8] = { H_lb, H_lh, H_lw, H_ld,
					  H_lbu, H_lhu, H_lwu, H_illegal };
	static const uint8_t imm_ops[8] = { H_addi, H_slli, H_slti, H_sltiu,
					    H_xori, H_srli, H_ori, H_andi };
	static const uint8_t branches[8] = { H_beq, H_bne, H_illegal,
					     H_illegal, H_blt, H_bge,
					     H_bltu, H_bgeu };
	static const uint8_t ops[2][8] = {
		{ H_add, H_sll, H_slt, H_sltu, H_xor, H_srl, H_or, H_and },
		{ H_mul, H_mulh, H_mulhsu, H_mulhu, H_div, H_divu, H_rem,
		  H_remu },
	};
	unsigned rd = (insn >> 7) & 31, rs1 = (insn >> 15) & 31;
	unsigned rs2 = (insn >> 20) & 31, f3 = (insn >> 12) & 7;
	unsigned f7 = insn >> 25;
	unsigned hi;

	switch (insn & 0x7f) {
	case 0x03:
		if (loads[f3] == H_illegal)
			break;
		slot_set(d, loads[f3], rd, rs1, 0, imm_i(insn));
		return;
	case 0x07:
		if (f3 != 2 && f3 != 3)
			break;
		slot_set(d, f3 == 2 ? H_flw : H_fld, rd, rs1, 0, imm_i(insn));
		return;
	case 0x0f: /* FENCE, PAUSE; FENCE.I: stores to code already dropped
		    * what they overwrote (dcache.h) */
		if (f3 > 1)
			break;
		slot_set(d, H_nop, 0, 0, 0, 0);
		return;
	case 0x13:
		hi = imm_ops[f3];
		if (f3 == 1) { /* RV64: shamt[5:0]; imm[11:6] must be 0 */
			if (insn >> 26)
				break;
		} else if (f3 == 5) { /* SRLI: imm[11:6] = 0, SRAI: 0x10 */
			if ((insn >> 26) == 0x10)
				hi = H_srai;
			else if (insn >> 26)
				break;
		}
		slot_alu(d, hi, rd, rs1, 0,
			 (f3 == 1 || f3 == 5) ? (insn >> 20) & 63
					      : imm_i(insn));
		return;
	case 0x17:
		slot_alu(d, H_auipc, rd, 0, 0, imm_u(insn));
		return;
	case 0x1b:
		if (f3 == 0)
			hi = H_addiw;
		else if (f3 == 1 && f7 == 0)
			hi = H_slliw;
		else if (f3 == 5 && f7 == 0)
			hi = H_srliw;
		else if (f3 == 5 && f7 == 0x20)
			hi = H_sraiw;
		else
			break;
		slot_alu(d, hi, rd, rs1, 0, f3 ? rs2 : imm_i(insn));
		return;
	case 0x23:
		if (f3 > 3)
			break;
		slot_set(d, H_sb + 2 * f3, 0, rs1, rs2, imm_s(insn));
		return;
	case 0x27:
		if (f3 != 2 && f3 != 3)
			break;
		slot_set(d, f3 == 2 ? H_fsw : H_fsd, 0, rs1, rs2, imm_s(insn));
		return;
	case 0x2f:
		if (f3 != 2 && f3 != 3)
			break;
		slot_set(d, H_amo, rd, rs1, rs2, insn);
		return;
	case 0x33:
		if (f7 == 0 || f7 == 1)
			hi = ops[f7][f3];
		else if (f7 == 0x20 && f3 == 0)
			hi = H_sub;
		else if (f7 == 0x20 && f3 == 5)
			hi = H_sra;
		else
			break;
		slot_alu(d, hi, rd, rs1, rs2, 0);
		return;
	case 0x37:
		slot_alu(d, H_lui, rd, 0, 0, imm_u(insn));
		return;
	case 0x3b:
		switch (f7 << 3 | f3) {
		case 0x000: hi = H_addw; break;
		case 0x100: hi = H_subw; break;
		case 0x001: hi = H_sllw; break;
		case 0x005: hi = H_srlw; break;
		case 0x105: hi = H_sraw; break;
		case 0x008: hi = H_mulw; break;
		case 0x00c: hi = H_divw; break;
		case 0x00d: hi = H_divuw; break;
		case 0x00e: hi = H_remw; break;
		case 0x00f: hi = H_remuw; break;
		default: slot_illegal(d); return;
		}
		slot_alu(d, hi, rd, rs1, rs2, 0);
		return;
	case 0x43:
	case 0x47:
	case 0x4b:
	case 0x4f:
	case 0x53:
		slot_set(d, H_fp, 0, 0, 0, insn);
		return;
	case 0x63:
		if (branches[f3] == H_illegal)
			break;
		slot_set(d, branches[f3], 0, rs1, rs2, imm_b(insn));
		return;
	case 0x67:
		if (f3)
			break;
		slot_set(d, H_jalr, rd, rs1, 0, imm_i(insn));
		return;
	case 0x6f:
		slot_set(d, H_jal, rd, 0, 0, imm_j(insn));
		return;
	case 0x73:
		slot_set(d, H_system, 0, 0, 0, insn);
		return;
	}
	slot_illegal(d);
}

/* Compressed (unprivileged spec chapter 16): reserved encodings illegal,
 * HINTs (rd = x0 and the like) no-ops. */
static void decode16(dslot_t *d, uint32_t insn)
{
	unsigned rd = (insn >> 7) & 31, rs2 = (insn >> 2) & 31;
	unsigned rs1p = 8 + ((insn >> 7) & 7), rs2p = 8 + ((insn >> 2) & 7);
	uint64_t v;

	switch ((insn & 3) << 3 | insn >> 13) {
	case 0x00: /* C.ADDI4SPN; also the all-zero illegal instruction */
		v = cimm_addi4spn(insn);
		if (!v)
			break;
		slot_set(d, H_addi_c, rs2p, 2, 0, v);
		return;
	case 0x01: /* C.FLD */
		slot_set(d, H_fld_c, rs2p, rs1p, 0, cimm_ld(insn));
		return;
	case 0x02: /* C.LW */
		slot_set(d, H_lw_c, rs2p, rs1p, 0, cimm_lw(insn));
		return;
	case 0x03: /* C.LD */
		slot_set(d, H_ld_c, rs2p, rs1p, 0, cimm_ld(insn));
		return;
	case 0x05: /* C.FSD */
		slot_set(d, H_fsd_c, 0, rs1p, rs2p, cimm_ld(insn));
		return;
	case 0x06: /* C.SW */
		slot_set(d, H_sw_c, 0, rs1p, rs2p, cimm_lw(insn));
		return;
	case 0x07: /* C.SD */
		slot_set(d, H_sd_c, 0, rs1p, rs2p, cimm_ld(insn));
		return;
	case 0x08: /* C.ADDI; C.NOP and rd = 0 are hints */
		slot_alu(d, H_addi_c, rd, rd, 0, cimm6(insn));
		return;
	case 0x09: /* C.ADDIW; rd = 0 reserved */
		if (!rd)
			break;
		slot_alu(d, H_addiw_c, rd, rd, 0, cimm6(insn));
		return;
	case 0x0a: /* C.LI */
		slot_alu(d, H_addi_c, rd, 0, 0, cimm6(insn));
		return;
	case 0x0b: /* C.LUI; rd = 2: C.ADDI16SP; zero immediates reserved */
		if (rd == 2) {
			v = cimm_addi16sp(insn);
			if (!v)
				break;
			slot_alu(d, H_addi_c, 2, 2, 0, v);
		} else {
			v = cimm6(insn) << 12;
			if (!v)
				break;
			slot_alu(d, H_lui_c, rd, 0, 0, v);
		}
		return;
	case 0x0c: /* C.SRLI, C.SRAI, C.ANDI, C.SUB ... C.ADDW */
		switch ((insn >> 10) & 3) {
		case 0:
			slot_alu(d, H_srli_c, rs1p, rs1p, 0, cshamt(insn));
			return;
		case 1:
			slot_alu(d, H_srai_c, rs1p, rs1p, 0, cshamt(insn));
			return;
		case 2:
			slot_alu(d, H_andi_c, rs1p, rs1p, 0, cimm6(insn));
			return;
		}
		switch (((insn >> 10) & 4) | ((insn >> 5) & 3)) {
		case 0:
			slot_alu(d, H_sub_c, rs1p, rs1p, rs2p, 0);
			return;
		case 1:
			slot_alu(d, H_xor_c, rs1p, rs1p, rs2p, 0);
			return;
		case 2:
			slot_alu(d, H_or_c, rs1p, rs1p, rs2p, 0);
			return;
		case 3:
			slot_alu(d, H_and_c, rs1p, rs1p, rs2p, 0);
			return;
		case 4:
			slot_alu(d, H_subw_c, rs1p, rs1p, rs2p, 0);
			return;
		case 5:
			slot_alu(d, H_addw_c, rs1p, rs1p, rs2p, 0);
			return;
		}
		break;
	case 0x0d: /* C.J */
		slot_set(d, H_jal_c, 0, 0, 0, cimm_j(insn));
		return;
	case 0x0e: /* C.BEQZ */
		slot_set(d, H_beq_c, 0, rs1p, 0, cimm_b(insn));
		return;
	case 0x0f: /* C.BNEZ */
		slot_set(d, H_bne_c, 0, rs1p, 0, cimm_b(insn));
		return;
	case 0x10: /* C.SLLI; rd = 0 and shamt = 0 are hints */
		slot_alu(d, H_slli_c, rd, rd, 0, cshamt(insn));
		return;
	case 0x11: /* C.FLDSP */
		slot_set(d, H_fld_c, rd, 2, 0, cimm_ldsp(insn));
		return;
	case 0x12: /* C.LWSP; rd = 0 reserved */
		if (!rd)
			break;
		slot_set(d, H_lw_c, rd, 2, 0, cimm_lwsp(insn));
		return;
	case 0x13: /* C.LDSP; rd = 0 reserved */
		if (!rd)
			break;
		slot_set(d, H_ld_c, rd, 2, 0, cimm_ldsp(insn));
		return;
	case 0x14:
		if (!(insn & 0x1000)) {
			if (rs2) { /* C.MV */
				slot_alu(d, H_add_c, rd, 0, rs2, 0);
				return;
			}
			if (!rd) /* C.JR with rs1 = x0 is reserved */
				break;
			slot_set(d, H_jalr_c, 0, rd, 0, 0);
			return;
		}
		if (rs2) { /* C.ADD */
			slot_alu(d, H_add_c, rd, rd, rs2, 0);
			return;
		}
		if (!rd) { /* C.EBREAK */
			slot_set(d, H_ebreak, 0, 0, 0, 0);
			return;
		}
		slot_set(d, H_jalr_c, 1, rd, 0, 0); /* C.JALR */
		return;
	case 0x15: /* C.FSDSP */
		slot_set(d, H_fsd_c, 0, 2, rs2, cimm_sdsp(insn));
		return;
	case 0x16: /* C.SWSP */
		slot_set(d, H_sw_c, 0, 2, rs2, cimm_swsp(insn));
		return;
	case 0x17: /* C.SDSP */
		slot_set(d, H_sd_c, 0, 2, rs2, cimm_sdsp(insn));
		return;
	}
	slot_illegal(d);
}

static void decode(dslot_t *d, uint32_t insn)
{
	if ((insn & 3) == 3)
		decode32(d, insn);
	else
		decode16(d, insn & 0xffff);
}

/* The raw bits of the instruction at pc (for tval); page-local host map. */
static uint32_t fetch_raw(hart_t *h, uint64_t pc, uintptr_t addend)
{
	uint16_t lo;
	uint32_t insn, hi;

	memcpy(&lo, (const void *)(uintptr_t)(pc + addend), 2);
	if ((lo & 3) != 3)
		return lo;
	if ((pc & PAGE_MASK) == PAGE_SIZE - 2)
		return mmu_fetch16(h, pc + 2, &hi) ? lo | hi << 16 : lo;
	memcpy(&insn, (const void *)(uintptr_t)(pc + addend), 4);
	return insn;
}

uint64_t hart_run(hart_t *h, uint64_t budget)
{
	static bool handlers_ready;
	hart_state_t *const s = &h->s;
	uint64_t *const x = s->x;
	uint64_t n = 0;			/* instructions executed */
	uint64_t limit = budget;
	const dslot_t *sp;		/* slot of the current instruction */
	uint64_t pcoff;			/* pc = (sp >> 3) + pcoff */
	uint64_t pgva;			/* guest address of the code page */
	uintptr_t addend;		/* host = guest pc + addend */
	uint64_t dkey;			/* TLB key for loads and stores */
	dslot_t xs[3];			/* an instruction crossing pages */
	dcache_t *dc;
	uint32_t insn;
	uint64_t v, va, t;

#define PC ((uint64_t)((uintptr_t)sp >> 3) + pcoff)
#define SLOT_AT(pc) ((const dslot_t *)(uintptr_t)(((pc) - pcoff) << 3))
#define RD (sp->rd)
#define RS1 (sp->rs1)
#define RS2 (sp->rs2)
#define IMM ((uint64_t)(int64_t)sp->imm)
	/* Fields of a raw instruction (handlers that keep one) */
#define IRD ((insn >> 7) & 31)
#define IRS1 ((insn >> 15) & 31)
#define IRS2 ((insn >> 20) & 31)
#define IF3 ((insn >> 12) & 7)
#define WR(r, val)                                                             \
	do {                                                                   \
		uint64_t val_ = (val);                                         \
		unsigned r_ = (r);                                             \
		if (likely(r_))                                                \
			x[r_] = val_;                                          \
	} while (0)
	/* Threaded dispatch: every handler has its own indirect jump. */
#define DISPATCH()                                                             \
	do {                                                                   \
		n++;                                                           \
		goto *sp->h;                                                   \
	} while (0)
#define NEXT(len)                                                              \
	do {                                                                   \
		sp += (len) / 2;                                               \
		DISPATCH();                                                    \
	} while (0)
	/* A control transfer; stays on the code page when nothing is due. */
#define JUMP(target)                                                           \
	do {                                                                   \
		t = (target);                                                  \
		if (likely((t & ~PAGE_MASK) == pgva &&                         \
			   !transfer_pending(h, n, limit))) {                  \
			sp = SLOT_AT(t);                                       \
			DISPATCH();                                            \
		}                                                              \
		s->pc = t;                                                     \
		goto transfer;                                                 \
	} while (0)
#define BRANCH(cond)                                                           \
	do {                                                                   \
		if (cond)                                                      \
			JUMP(PC + IMM);                                        \
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
	/* A handler in both lengths; the body sees its length as LEN. */
#define HANDLER(name, ...)                                                     \
	h_##name : {                                                           \
		enum { LEN = 4 };                                              \
		__VA_ARGS__;                                                   \
		NEXT(LEN);                                                     \
	}                                                                      \
	h_##name##_c : {                                                       \
		enum { LEN = 2 };                                              \
		__VA_ARGS__;                                                   \
		NEXT(LEN);                                                     \
	}

	if (unlikely(!handlers_ready)) {
#define X(name)                                                                \
	handler[H_##name] = &&h_##name;                                        \
	handler[H_##name##_c] = &&h_##name##_c;
		DUAL_OPS(X)
#undef X
		handler[H_amo] = &&h_amo;
		handler[H_fp] = &&h_fp;
		handler[H_system] = &&h_system;
		handler[H_ebreak] = &&h_ebreak;
		handler[H_illegal] = &&illegal;
		handler[H_undecoded] = &&undecoded;
		handler[H_page_end] = &&page_end;
		__atomic_store_n(&handlers_ready, true, __ATOMIC_RELEASE);
	}
	dc = dcache_get(h->ram, handler[H_undecoded], handler[H_page_end]);
	if (unlikely(!dc)) {
		log_error("out of memory for decoded instructions");
		abort();
	}
	xs[1].h = xs[2].h = handler[H_page_end];

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
	if (unlikely(hart_mip(h) & h->irq_mask))
		hart_take_interrupt(h);
	dkey = h->tlb_key_data;
	{
		const tlb_entry_t *e = tlb_slot(h->tlb_code, s->pc);
		const dpage_t *dp;

		pgva = s->pc & ~PAGE_MASK;
		if (likely(e->tag == (pgva | h->tlb_key_code))) {
			addend = e->addend;
		} else if (!mmu_fetch_slow(h, s->pc, &addend)) {
			/* Counts as work, so a fault loop still ends. */
			n++;
			hart_trap(h, h->exc_cause, h->exc_tval);
			goto transfer;
		}
		dp = dcache_page(dc, (pgva + addend -
				      (uintptr_t)h->ram->host) >> PAGE_SHIFT);
		if (unlikely(!dp)) {
			log_error("out of memory for decoded instructions");
			abort();
		}
		/* After dcache_page(): a new code page leaves the write TLB. */
		if (unlikely(h->ram_generation != h->ram->generation))
			mmu_tlb_flush_write(h);
		pcoff = pgva - ((uintptr_t)dp->s >> 3);
		sp = &dp->s[(s->pc & PAGE_MASK) >> 1];
	}
	DISPATCH();

undecoded: {
	/* First execution of this slot: decode the bits now in memory. */
	uint64_t pc = PC;
	uint16_t lo;

	memcpy(&lo, (const void *)(uintptr_t)(pc + addend), 2);
	if ((lo & 3) == 3 && (pc & PAGE_MASK) == PAGE_SIZE - 2) {
		/*
		 * A 32-bit instruction continuing on the next page, which
		 * is translated (and may change) separately: decoded each
		 * time into xs, followed by a sentinel. No jump stays on
		 * "this page" from there (pgva matches no page).
		 */
		uint32_t hi;

		if (!mmu_fetch16(h, pc + 2, &hi))
			goto exception;
		decode(&xs[0], lo | hi << 16);
		pcoff = pc - ((uintptr_t)&xs[0] >> 3);
		pgva = 1;
		sp = &xs[0];
		goto *sp->h;
	}
	insn = lo;
	if ((lo & 3) == 3)
		memcpy(&insn, (const void *)(uintptr_t)(pc + addend), 4);
	decode((dslot_t *)sp, insn);
	goto *sp->h;
}

page_end:
	/* A sentinel, not an instruction: execution left the page. */
	n--;
	s->pc = PC;
	goto transfer;

	/* ---- RV64I ---- */
	HANDLER(nop, )
	HANDLER(lui, x[RD] = IMM)
	HANDLER(auipc, x[RD] = PC + IMM)
	HANDLER(jal, v = PC; WR(RD, v + LEN); JUMP(v + IMM))
	/* target before rd: rd may be rs1 */
	HANDLER(jalr, v = (x[RS1] + IMM) & ~1ull; WR(RD, PC + LEN); JUMP(v))
	HANDLER(beq, BRANCH(x[RS1] == x[RS2]))
	HANDLER(bne, BRANCH(x[RS1] != x[RS2]))
	HANDLER(blt, BRANCH((int64_t)x[RS1] < (int64_t)x[RS2]))
	HANDLER(bge, BRANCH((int64_t)x[RS1] >= (int64_t)x[RS2]))
	HANDLER(bltu, BRANCH(x[RS1] < x[RS2]))
	HANDLER(bgeu, BRANCH(x[RS1] >= x[RS2]))

	HANDLER(lb, LOAD(x[RS1] + IMM, 1, v);
		WR(RD, (uint64_t)(int64_t)(int8_t)v))
	HANDLER(lh, LOAD(x[RS1] + IMM, 2, v);
		WR(RD, (uint64_t)(int64_t)(int16_t)v))
	HANDLER(lw, LOAD(x[RS1] + IMM, 4, v); WR(RD, sext32(v)))
	HANDLER(ld, LOAD(x[RS1] + IMM, 8, v); WR(RD, v))
	HANDLER(lbu, LOAD(x[RS1] + IMM, 1, v); WR(RD, v))
	HANDLER(lhu, LOAD(x[RS1] + IMM, 2, v); WR(RD, v))
	HANDLER(lwu, LOAD(x[RS1] + IMM, 4, v); WR(RD, v))
	HANDLER(sb, STORE(x[RS1] + IMM, 1, x[RS2]))
	HANDLER(sh, STORE(x[RS1] + IMM, 2, x[RS2]))
	HANDLER(sw, STORE(x[RS1] + IMM, 4, x[RS2]))
	HANDLER(sd, STORE(x[RS1] + IMM, 8, x[RS2]))

	/* rd is never x0 below: such instructions are decoded as nop. */
	HANDLER(addi, x[RD] = x[RS1] + IMM)
	HANDLER(slti, x[RD] = (int64_t)x[RS1] < (int64_t)IMM)
	HANDLER(sltiu, x[RD] = x[RS1] < IMM)
	HANDLER(xori, x[RD] = x[RS1] ^ IMM)
	HANDLER(ori, x[RD] = x[RS1] | IMM)
	HANDLER(andi, x[RD] = x[RS1] & IMM)
	HANDLER(slli, x[RD] = x[RS1] << IMM)
	HANDLER(srli, x[RD] = x[RS1] >> IMM)
	HANDLER(srai, x[RD] = (uint64_t)((int64_t)x[RS1] >> IMM))
	HANDLER(addiw, x[RD] = sext32(x[RS1] + IMM))
	HANDLER(slliw, x[RD] = sext32((uint32_t)x[RS1] << IMM))
	HANDLER(srliw, x[RD] = sext32((uint32_t)x[RS1] >> IMM))
	HANDLER(sraiw, x[RD] = (uint64_t)(int64_t)((int32_t)x[RS1] >> IMM))

	HANDLER(add, x[RD] = x[RS1] + x[RS2])
	HANDLER(sub, x[RD] = x[RS1] - x[RS2])
	HANDLER(sll, x[RD] = x[RS1] << (x[RS2] & 63))
	HANDLER(slt, x[RD] = (int64_t)x[RS1] < (int64_t)x[RS2])
	HANDLER(sltu, x[RD] = x[RS1] < x[RS2])
	HANDLER(xor, x[RD] = x[RS1] ^ x[RS2])
	HANDLER(srl, x[RD] = x[RS1] >> (x[RS2] & 63))
	HANDLER(sra, x[RD] = (uint64_t)((int64_t)x[RS1] >> (x[RS2] & 63)))
	HANDLER(or, x[RD] = x[RS1] | x[RS2])
	HANDLER(and, x[RD] = x[RS1] & x[RS2])
	HANDLER(mul, x[RD] = x[RS1] * x[RS2])
	HANDLER(mulh, x[RD] = mulh(x[RS1], x[RS2]))
	HANDLER(mulhsu, x[RD] = mulhsu(x[RS1], x[RS2]))
	HANDLER(mulhu, x[RD] = mulhu(x[RS1], x[RS2]))
	HANDLER(div, x[RD] = div64(x[RS1], x[RS2]))
	HANDLER(divu, x[RD] = x[RS2] ? x[RS1] / x[RS2] : UINT64_MAX)
	HANDLER(rem, x[RD] = rem64(x[RS1], x[RS2]))
	HANDLER(remu, x[RD] = x[RS2] ? x[RS1] % x[RS2] : x[RS1])
	HANDLER(addw, x[RD] = sext32(x[RS1] + x[RS2]))
	HANDLER(subw, x[RD] = sext32(x[RS1] - x[RS2]))
	HANDLER(sllw, x[RD] = sext32((uint32_t)x[RS1] << (x[RS2] & 31)))
	HANDLER(srlw, x[RD] = sext32((uint32_t)x[RS1] >> (x[RS2] & 31)))
	HANDLER(sraw, x[RD] = (uint64_t)(int64_t)((int32_t)x[RS1] >>
						  (x[RS2] & 31)))
	HANDLER(mulw, x[RD] = sext32(x[RS1] * x[RS2]))
	HANDLER(divw, x[RD] = div32(x[RS1], x[RS2]))
	HANDLER(divuw, x[RD] = divu32(x[RS1], x[RS2]))
	HANDLER(remw, x[RD] = rem32(x[RS1], x[RS2]))
	HANDLER(remuw, x[RD] = remu32(x[RS1], x[RS2]))

	/* ---- F/D loads and stores; arithmetic in fpu.c ---- */
	HANDLER(flw, if (!FP_ENABLED()) goto illegal;
		LOAD(x[RS1] + IMM, 4, v);
		s->f[RD] = v | 0xffffffff00000000ull;	/* NaN-boxed */
		FP_DIRTY())
	HANDLER(fld, if (!FP_ENABLED()) goto illegal;
		LOAD(x[RS1] + IMM, 8, v);
		s->f[RD] = v;
		FP_DIRTY())
	HANDLER(fsw, if (!FP_ENABLED()) goto illegal;
		STORE(x[RS1] + IMM, 4, s->f[RS2]))
	HANDLER(fsd, if (!FP_ENABLED()) goto illegal;
		STORE(x[RS1] + IMM, 8, s->f[RS2]))

h_fp:
	if (fpu_exec(h, (uint32_t)sp->imm))
		goto illegal;
	NEXT(4);

h_amo: {
	unsigned f5, size;
	bool word;

	insn = (uint32_t)sp->imm;
	f5 = insn >> 27;
	size = IF3 == 2 ? 4 : 8;
	word = size == 4;
	va = x[IRS1];
	if (f5 == AMO_LR) {
		if (IRS2)
			goto illegal;
		if (va & (size - 1))
			FAULT(CAUSE_LOAD_MISALIGNED, va);
		LOAD(va, size, v);
		s->reservation = va;
		WR(IRD, word ? sext32(v) : v);
		NEXT(4);
	}
	if (f5 != AMO_SC && !((AMO_VALID >> f5) & 1))
		goto illegal;
	if (va & (size - 1))
		FAULT(CAUSE_STORE_MISALIGNED, va);
	if (f5 == AMO_SC) {
		/* Fails unless this hart's reservation covers va. */
		if (s->reservation != va) {
			s->reservation = UINT64_MAX;
			WR(IRD, 1);
			NEXT(4);
		}
		STORE(va, size, x[IRS2]);
		s->reservation = UINT64_MAX;
		WR(IRD, 0);
		NEXT(4);
	} else {
		uint8_t *p = mmu_amo_ptr(h, va, size, dkey);
		uint64_t old = 0, nv;

		if (!p)
			goto exception;
		memcpy(&old, p, size);
		nv = amo_compute(f5, old, x[IRS2], word);
		memcpy(p, &nv, size);
		WR(IRD, word ? sext32(old) : old);
		NEXT(4);
	}
}

h_ebreak: /* C.EBREAK */
	FAULT(CAUSE_BREAKPOINT, PC);

h_system: {
	unsigned f3;
	uint64_t old;

	insn = (uint32_t)sp->imm;
	f3 = IF3;
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
	v = (f3 & 4) ? IRS1 : x[IRS1];
	h->insns = n - 1;
	if (!csr_op(h, insn >> 20, (enum csr_op)(f3 & 3), v,
		    (f3 & 3) == CSR_OP_RW || IRS1 != 0, &old))
		goto illegal;
	WR(IRD, old);
	/* The write may have unmasked an interrupt or changed translation:
	 * re-derive at the transfer point. */
	s->pc += 4;
	goto transfer;
}

illegal:
	/* tval = the instruction bits (3.1.16); 16 of them if compressed */
	hart_fault(h, CAUSE_ILLEGAL_INSN, fetch_raw(h, PC, addend));
exception:
	/* The instruction at sp traps and does not retire. */
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
#undef SLOT_AT
#undef RD
#undef RS1
#undef RS2
#undef IMM
#undef IRD
#undef IRS1
#undef IRS2
#undef IF3
#undef WR
#undef DISPATCH
#undef NEXT
#undef JUMP
#undef BRANCH
#undef FAULT
#undef LOAD
#undef STORE
#undef FP_ENABLED
#undef FP_DIRTY
#undef HANDLER
}
