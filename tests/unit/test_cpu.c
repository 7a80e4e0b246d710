// SPDX-License-Identifier: MIT
/*
 * Instruction semantics of the interpreter: small programs assembled by the
 * encoders below (written from the unprivileged spec's instruction formats,
 * not from the decoder) run in guest RAM with hart_run(); registers, memory
 * and trap CSRs are checked afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/csr.h"
#include "cpu/dcache.h"
#include "cpu/hart.h"
#include "machine/machine.h"
#include "rv_encode.h"

#define CODE (MEM_RAM_BASE + 0x1000)
#define MTRAP (MEM_RAM_BASE + 0x100)
#define STRAP (MEM_RAM_BASE + 0x200)
#define DATA (MEM_RAM_BASE + 0x100000)

enum { ZERO, RA, SP, GP, TP, T0, T1, T2, S0, S1, A0, A1, A2, A3, A4, A5 };

#define MSTATUS_MIE (1ull << 3)
#define MSTATUS_SIE (1ull << 1)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_SPP (1ull << 8)
#define MSTATUS_MPP (3ull << 11)
#define MSTATUS_FS (3ull << 13)
#define MSTATUS_TW (1ull << 21)
#define MSTATUS_TSR (1ull << 22)
#define INTR (1ull << 63)

/* ---- compressed encoders (unprivileged spec 16.2); the 32-bit ones are in rv_encode.h ---- */

/*
 * Places bits of v into a compressed instruction: order[i] is the bit of v
 * that goes to instruction bit (top - i), as the spec's tables list them.
 */
static uint16_t scatter(uint32_t v, const int *order, int n, int top)
{
	uint16_t r = 0;

	for (int i = 0; i < n; i++)
		if (order[i] >= 0)
			r |= (uint16_t)(((v >> order[i]) & 1) << (top - i));
	return r;
}

#define SCATTER(v, top, ...)                                                   \
	scatter((v), (const int[]){ __VA_ARGS__ },                            \
		(int)(sizeof((const int[]){ __VA_ARGS__ }) / sizeof(int)), (top))

#define ADD(d, a, b) r_type(0, b, a, 0, d, 0x33)
#define SUB(d, a, b) r_type(0x20, b, a, 0, d, 0x33)
#define ADDI(d, a, i) i_type(i, a, 0, d, 0x13)
#define ADDIW(d, a, i) i_type(i, a, 0, d, 0x1b)
#define LUI(d, i) u_type(i, d, 0x37)
#define AUIPC(d, i) u_type(i, d, 0x17)
#define JAL(d, off) j_type(off, d)
#define JALR(d, a, i) i_type(i, a, 0, d, 0x67)
#define BEQ(a, b, off) b_type(off, b, a, 0)
#define BNE(a, b, off) b_type(off, b, a, 1)
#define LOAD(f3, d, a, i) i_type(i, a, f3, d, 0x03)
#define STORE(f3, s, a, i) s_type(i, s, a, f3, 0x23)
#define CSRRW(d, csr, a) i_type(csr, a, 1, d, 0x73)
#define CSRRS(d, csr, a) i_type(csr, a, 2, d, 0x73)
#define CSRRC(d, csr, a) i_type(csr, a, 3, d, 0x73)
#define CSRRWI(d, csr, u) i_type(csr, u, 5, d, 0x73)
#define CSRRSI(d, csr, u) i_type(csr, u, 6, d, 0x73)
#define CSRRCI(d, csr, u) i_type(csr, u, 7, d, 0x73)
#define ECALL 0x00000073u
#define EBREAK 0x00100073u
#define MRET 0x30200073u
#define SRET 0x10200073u
#define WFI 0x10500073u
#define AMO(f5, f3, d, a, b) r_type((f5) << 2, b, a, f3, d, 0x2f)

/* ---- harness ---- */

static machine_t *mach;
static hart_t *hart;
static uint64_t at;	/* where the next instruction goes */

static void *gpa(uint64_t pa)
{
	return mach->ram.host + (pa - MEM_RAM_BASE);
}

static void emit(uint32_t insn)
{
	memcpy(gpa(at), &insn, 4);
	ram_mark_dirty(&mach->ram, at, 4);
	at += 4;
}

static void emit16(uint16_t insn)
{
	memcpy(gpa(at), &insn, 2);
	ram_mark_dirty(&mach->ram, at, 2);
	at += 2;
}

static uint64_t rd64(uint64_t pa)
{
	uint64_t v;

	memcpy(&v, gpa(pa), 8);
	return v;
}

static void wr64(uint64_t pa, uint64_t v)
{
	memcpy(gpa(pa), &v, 8);
	ram_mark_dirty(&mach->ram, pa, 8);
}

/*
 * A trap handler that parks the hart: masks interrupts (so WFI really
 * waits), then WFI; the hart stops with pc = where + 8.
 */
static void put_parking(uint64_t where, unsigned ie_csr)
{
	uint64_t save = at;

	at = where;
	emit(CSRRW(0, ie_csr, 0));
	emit(WFI);
	emit(JAL(0, -4));
	at = save;
}

static int setup(void **state)
{
	char err[256];

	(void)state;
	mach = calloc(1, sizeof(*mach));
	if (!mach || machine_init(mach, 4 << 20, 1, err, sizeof(err)))
		return -1;
	hart = &mach->harts[0];
	put_parking(MTRAP, CSR_MIE);
	put_parking(STRAP, CSR_SIE);
	hart->s.mtvec = MTRAP;
	hart->s.stvec = STRAP;
	hart->s.pc = CODE;
	at = CODE;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	machine_destroy(mach);
	free(mach);
	return 0;
}

/* Runs until the hart waits (end of program or a parked trap). */
static uint64_t run(void)
{
	uint64_t total = 0;

	for (int i = 0; i < 100 && !hart->s.wfi; i++)
		total += hart_run(hart, 100000);
	assert_true(hart->s.wfi);
	return total;
}

static void set_priv(unsigned priv)
{
	hart->s.priv = (uint8_t)priv;
	hart_tlb_flush(hart);
}

/* Asserts that the program trapped to M with cause, tval at epc. */
static void assert_mtrap(uint64_t cause, uint64_t tval, uint64_t epc)
{
	assert_int_equal(hart->s.priv, PRV_M);
	assert_int_equal(hart->s.mcause, cause);
	assert_int_equal(hart->s.mtval, tval);
	assert_int_equal(hart->s.mepc, epc);
	assert_int_equal(hart->s.pc, MTRAP + 8);
}

/* ---- RV64I ---- */

static void test_alu(void **state)
{
	(void)state;
	hart->s.x[A0] = 0x8000000000000001ull;
	hart->s.x[A1] = 3;
	hart->s.x[A2] = 64 + 4;	/* shift amounts use the low 6 bits */
	emit(ADD(S0, A0, A1));
	emit(SUB(S1, A1, A0));
	emit(r_type(0, A2, A0, 1, T0, 0x33));	/* sll t0, a0, a2 */
	emit(r_type(0, A2, A0, 5, T1, 0x33));	/* srl t1, a0, a2 */
	emit(r_type(0x20, A2, A0, 5, T2, 0x33));	/* sra t2, a0, a2 */
	emit(r_type(0, A1, A0, 2, A3, 0x33));	/* slt a3, a0, a1 */
	emit(r_type(0, A1, A0, 3, A4, 0x33));	/* sltu a4, a0, a1 */
	emit(r_type(0, A1, A0, 4, A5, 0x33));	/* xor */
	emit(r_type(0, A1, A0, 6, 16, 0x33));	/* or */
	emit(r_type(0, A1, A0, 7, 17, 0x33));	/* and */
	emit(i_type(-1, A1, 2, 18, 0x13));	/* slti a1 < -1 -> 0 */
	emit(i_type(-1, A1, 3, 19, 0x13));	/* sltiu a1 < ~0 -> 1 */
	emit(i_type(0x7ff, A0, 4, 20, 0x13));	/* xori */
	emit(i_type(-16, A0, 6, 21, 0x13));	/* ori */
	emit(i_type(-16, A0, 7, 22, 0x13));	/* andi */
	emit(i_type(63, A0, 1, 23, 0x13));	/* slli 63 */
	emit(i_type(63, A0, 5, 24, 0x13));	/* srli 63 */
	emit(i_type(0x400 | 63, A0, 5, 25, 0x13));	/* srai 63 */
	emit(ADDI(0, A0, 5));			/* x0 stays zero */
	emit(ADD(26, 0, 0));
	emit(WFI);
	run();
	uint64_t *x = hart->s.x;
	assert_int_equal(x[S0], 0x8000000000000004ull);
	assert_int_equal(x[S1], 3 - 0x8000000000000001ull);
	assert_int_equal(x[T0], 0x10);
	assert_int_equal(x[T1], 0x0800000000000000ull);
	assert_int_equal(x[T2], 0xf800000000000000ull);
	assert_int_equal(x[A3], 1);
	assert_int_equal(x[A4], 0);
	assert_int_equal(x[A5], 0x8000000000000002ull);
	assert_int_equal(x[16], 0x8000000000000003ull);
	assert_int_equal(x[17], 1);
	assert_int_equal(x[18], 0);
	assert_int_equal(x[19], 1);
	assert_int_equal(x[20], 0x80000000000007feull);
	assert_int_equal(x[21], 0xfffffffffffffff1ull);
	assert_int_equal(x[22], 0x8000000000000000ull);
	assert_int_equal(x[23], 0x8000000000000000ull);
	assert_int_equal(x[24], 1);
	assert_int_equal(x[25], UINT64_MAX);
	assert_int_equal(x[0], 0);
	assert_int_equal(x[26], 0);
}

static void test_alu_word(void **state)
{
	(void)state;
	hart->s.x[A0] = 0x000000007fffffffull;
	hart->s.x[A1] = 0xffffffff80000000ull;
	hart->s.x[A2] = 32 + 1;	/* W shifts use the low 5 bits */
	emit(ADDIW(S0, A0, 1));			/* overflow -> negative */
	emit(r_type(0, A0, A0, 0, S1, 0x3b));	/* addw */
	emit(r_type(0x20, A0, A1, 0, T0, 0x3b));	/* subw */
	emit(r_type(0, A2, A0, 1, T1, 0x3b));	/* sllw by 1 */
	emit(r_type(0, A2, A1, 5, T2, 0x3b));	/* srlw by 1 */
	emit(r_type(0x20, A2, A1, 5, A3, 0x3b));	/* sraw by 1 */
	emit(i_type(31, A0, 1, A4, 0x1b));	/* slliw 31 */
	emit(i_type(31, A1, 5, A5, 0x1b));	/* srliw 31 */
	emit(i_type(0x400 | 31, A1, 5, 16, 0x1b));	/* sraiw 31 */
	emit(ADDIW(17, A1, 0));			/* sext.w */
	emit(WFI);
	run();
	uint64_t *x = hart->s.x;
	assert_int_equal(x[S0], 0xffffffff80000000ull);
	assert_int_equal(x[S1], 0xfffffffffffffffeull);
	assert_int_equal(x[T0], 1);
	assert_int_equal(x[T1], 0xfffffffffffffffeull);
	assert_int_equal(x[T2], 0x40000000);
	assert_int_equal(x[A3], 0xffffffffc0000000ull);
	assert_int_equal(x[A4], 0xffffffff80000000ull);
	assert_int_equal(x[A5], 1);
	assert_int_equal(x[16], UINT64_MAX);
	assert_int_equal(x[17], 0xffffffff80000000ull);
}

static void test_shift_reserved(void **state)
{
	(void)state;
	/* slli with imm[11:6] != 0 and slliw with imm[5] set are reserved */
	emit(i_type(0x040, A0, 1, A1, 0x13));
	emit(WFI);
	run();
	assert_mtrap(2, i_type(0x040, A0, 1, A1, 0x13), CODE);

	hart->s.wfi = 0;
	hart->s.pc = at;
	emit(i_type(32, A0, 1, A1, 0x1b));
	run();
	assert_mtrap(2, i_type(32, A0, 1, A1, 0x1b), at - 4);
}

static void test_lui_auipc(void **state)
{
	(void)state;
	emit(LUI(A0, 0x80000000u));
	emit(LUI(A1, 0x12345000u));
	emit(AUIPC(A2, 0xfffff000u));
	emit(AUIPC(A3, 0));
	emit(WFI);
	run();
	assert_int_equal(hart->s.x[A0], 0xffffffff80000000ull);
	assert_int_equal(hart->s.x[A1], 0x12345000);
	assert_int_equal(hart->s.x[A2], CODE + 8 - 0x1000);
	assert_int_equal(hart->s.x[A3], CODE + 12);
}

/* ---- M ---- */

static void test_muldiv(void **state)
{
	static const struct {
		unsigned f3;
		bool word;
		uint64_t a, b, r;
	} c[] = {
		{ 0, false, 7, (uint64_t)-3, (uint64_t)-21 },	/* mul */
		{ 1, false, (uint64_t)-1, (uint64_t)-1, 0 },	/* mulh */
		{ 1, false, INT64_MIN, INT64_MIN, 1ull << 62 },
		{ 2, false, (uint64_t)-1, UINT64_MAX, UINT64_MAX }, /* mulhsu */
		{ 3, false, UINT64_MAX, UINT64_MAX, UINT64_MAX - 1 }, /* mulhu */
		{ 4, false, (uint64_t)-7, 2, (uint64_t)-3 },	/* div */
		{ 4, false, 5, 0, UINT64_MAX },
		{ 4, false, INT64_MIN, (uint64_t)-1, INT64_MIN },
		{ 5, false, UINT64_MAX, 2, UINT64_MAX / 2 },	/* divu */
		{ 5, false, 5, 0, UINT64_MAX },
		{ 6, false, (uint64_t)-7, 2, (uint64_t)-1 },	/* rem */
		{ 6, false, 5, 0, 5 },
		{ 6, false, INT64_MIN, (uint64_t)-1, 0 },
		{ 7, false, 7, 4, 3 },				/* remu */
		{ 7, false, 7, 0, 7 },
		{ 0, true, 0x80000000, 2, 0 },			/* mulw */
		{ 0, true, 0x40000000, 2, 0xffffffff80000000ull },
		{ 4, true, 0xffffffff80000000ull, UINT64_MAX,
		  0xffffffff80000000ull },			/* divw */
		{ 4, true, 1, 0x100000000ull, UINT64_MAX },	/* /0 (low) */
		{ 5, true, 0xfffffffe, 1, 0xfffffffffffffffeull },	/* divuw */
		{ 5, true, 3, 0, UINT64_MAX },
		{ 6, true, 0xffffffff80000000ull, UINT64_MAX, 0 },	/* remw */
		{ 6, true, 0x1fffffff9ull, 0, (uint64_t)-7 },
		{ 7, true, 0x80000005ull, 0, 0xffffffff80000005ull }, /* remuw */
		{ 7, true, 0x80000005ull, 0x80000000ull, 5 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		hart->s.x[A0] = c[i].a;
		hart->s.x[A1] = c[i].b;
		emit(r_type(1, A1, A0, c[i].f3, (unsigned)(16 + i % 16),
			    c[i].word ? 0x3b : 0x33));
		emit(WFI);
		hart->s.wfi = 0;
		run();
		assert_int_equal(hart->s.x[16 + i % 16], c[i].r);
		hart->s.pc = at;
	}
}

/* ---- loads and stores ---- */

static void test_load_store(void **state)
{
	(void)state;
	wr64(DATA, 0x8899aabbccddeeffull);
	hart->s.x[S0] = DATA;
	emit(LOAD(0, A0, S0, 0));	/* lb */
	emit(LOAD(1, A1, S0, 0));	/* lh */
	emit(LOAD(2, A2, S0, 0));	/* lw */
	emit(LOAD(3, A3, S0, 0));	/* ld */
	emit(LOAD(4, A4, S0, 0));	/* lbu */
	emit(LOAD(5, A5, S0, 0));	/* lhu */
	emit(LOAD(6, 16, S0, 0));	/* lwu */
	emit(LOAD(0, 17, S0, 7));	/* lb of 0x88 */
	emit(STORE(3, A3, S0, 16));	/* sd */
	emit(STORE(2, A3, S0, 24));	/* sw */
	emit(STORE(1, A3, S0, 32));	/* sh */
	emit(STORE(0, A3, S0, 40));	/* sb */
	emit(STORE(3, A3, S0, -8));	/* negative offset */
	emit(WFI);
	run();
	uint64_t *x = hart->s.x;
	assert_int_equal(x[A0], 0xffffffffffffffffull);
	assert_int_equal(x[A1], 0xffffffffffffeeffull);
	assert_int_equal(x[A2], 0xffffffffccddeeffull);
	assert_int_equal(x[A3], 0x8899aabbccddeeffull);
	assert_int_equal(x[A4], 0xff);
	assert_int_equal(x[A5], 0xeeff);
	assert_int_equal(x[16], 0xccddeeff);
	assert_int_equal(x[17], 0xffffffffffffff88ull);
	assert_int_equal(rd64(DATA + 16), 0x8899aabbccddeeffull);
	assert_int_equal(rd64(DATA + 24), 0xccddeeff);
	assert_int_equal(rd64(DATA + 32), 0xeeff);
	assert_int_equal(rd64(DATA + 40), 0xff);
	assert_int_equal(rd64(DATA - 8), 0x8899aabbccddeeffull);
}

static void test_misaligned(void **state)
{
	uint64_t page_end = DATA + 0x1000;

	(void)state;
	wr64(DATA + 8, 0x0706050403020100ull);
	wr64(DATA + 16, 0x0f0e0d0c0b0a0908ull);
	hart->s.x[S0] = DATA;
	hart->s.x[S1] = page_end - 3;
	hart->s.x[T0] = 0x1122334455667788ull;
	emit(LOAD(3, A0, S0, 11));	/* ld, misaligned within a page */
	emit(LOAD(2, A1, S0, 13));	/* lw */
	emit(LOAD(1, A2, S0, 15));	/* lh */
	emit(STORE(3, T0, S1, 0));	/* sd across the page boundary */
	emit(LOAD(3, A3, S1, 0));	/* and back */
	emit(LOAD(6, A4, S1, 1));	/* lwu across */
	emit(WFI);
	run();
	assert_int_equal(hart->s.x[A0], 0x0a09080706050403ull);
	assert_int_equal(hart->s.x[A1], 0x08070605);
	assert_int_equal(hart->s.x[A2], 0x0807);
	assert_int_equal(hart->s.x[A3], 0x1122334455667788ull);
	assert_int_equal(hart->s.x[A4], 0x44556677);
	assert_int_equal(rd64(page_end - 3), 0x1122334455667788ull);
}

static void test_access_fault_phys(void **state)
{
	(void)state;
	/* M-mode, bare: nothing lives at 0x7000_0000 on this machine. */
	hart->s.x[S0] = 0x70000000;
	emit(LOAD(3, A0, S0, 8));
	emit(WFI);
	run();
	assert_mtrap(5, 0x70000008, CODE);

	hart->s.wfi = 0;
	hart->s.pc = at;
	emit(STORE(2, A0, S0, 4));
	run();
	assert_mtrap(7, 0x70000004, at - 4);

	hart->s.wfi = 0;
	hart->s.pc = at;
	emit(JALR(0, S0, 0));
	run();
	assert_mtrap(1, 0x70000000, 0x70000000);
}

/* ---- control transfer ---- */

static void test_branches(void **state)
{
	static const struct {
		unsigned f3;
		uint64_t a, b;
		bool taken;
	} c[] = {
		{ 0, 5, 5, true },   { 0, 5, 6, false },
		{ 1, 5, 6, true },   { 1, 5, 5, false },
		{ 4, (uint64_t)-1, 0, true }, { 4, 0, (uint64_t)-1, false },
		{ 5, 0, (uint64_t)-1, true }, { 5, (uint64_t)-1, 0, false },
		{ 5, 3, 3, true },
		{ 6, 0, (uint64_t)-1, true }, { 6, (uint64_t)-1, 0, false },
		{ 7, (uint64_t)-1, 0, true }, { 7, 0, (uint64_t)-1, false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		uint64_t start = at;

		hart->s.x[A0] = c[i].a;
		hart->s.x[A1] = c[i].b;
		hart->s.x[A2] = 0;
		emit(b_type(8, A1, A0, c[i].f3));
		emit(ADDI(A2, 0, 1));	/* skipped when taken */
		emit(WFI);
		hart->s.wfi = 0;
		hart->s.pc = start;
		run();
		assert_int_equal(hart->s.x[A2], c[i].taken ? 0 : 1);
	}

	/* A backward loop: sum 1..100 */
	hart->s.pc = at;
	hart->s.wfi = 0;
	emit(ADDI(A0, 0, 100));
	emit(ADDI(A1, 0, 0));
	emit(ADD(A1, A1, A0));
	emit(ADDI(A0, A0, -1));
	emit(BNE(A0, 0, -8));
	emit(WFI);
	run();
	assert_int_equal(hart->s.x[A1], 5050);
}

static void test_jal_jalr(void **state)
{
	(void)state;
	hart->s.x[T0] = CODE + 21;	/* odd: bit 0 is cleared */
	emit(JAL(RA, 12));		/* CODE+0 -> +12 */
	emit(ADDI(A0, 0, 1));		/* +4: skipped */
	emit(WFI);			/* +8 */
	emit(JALR(A1, T0, -1));		/* +12 -> CODE+20 */
	emit(ADDI(A2, 0, 2));		/* +16: skipped */
	emit(JALR(T0, T0, 3));		/* +20: rd == rs1, -> +24 */
	emit(JALR(0, RA, 4));		/* +24: back to +8 */
	run();
	assert_int_equal(hart->s.x[RA], CODE + 4);
	assert_int_equal(hart->s.x[A0], 0);
	assert_int_equal(hart->s.x[A1], CODE + 16);
	assert_int_equal(hart->s.x[A2], 0);
	assert_int_equal(hart->s.x[T0], CODE + 24);
	assert_int_equal(hart->s.pc, CODE + 12);
}

/* ---- compressed ---- */

static uint16_t c_ci(unsigned f3, unsigned q, unsigned rd, uint32_t imm6)
{
	return (uint16_t)(f3 << 13 | ((imm6 >> 5) & 1) << 12 | rd << 7 |
			  (imm6 & 0x1f) << 2 | q);
}

static uint16_t c_addi4spn(unsigned rdp, uint32_t uimm)
{
	return (uint16_t)(SCATTER(uimm, 12, 5, 4, 9, 8, 7, 6, 2, 3) |
			  (rdp - 8) << 2);
}

/* C.LW/C.SW (word) and C.LD/C.SD/C.FLD/C.FSD (double) */
static uint16_t c_mem(unsigned f3, unsigned rdp, unsigned rs1p, uint32_t uimm,
		      bool dbl)
{
	uint16_t imm = dbl ? SCATTER(uimm, 12, 5, 4, 3) |
				     SCATTER(uimm, 6, 7, 6)
			   : SCATTER(uimm, 12, 5, 4, 3) | SCATTER(uimm, 6, 2, 6);

	return (uint16_t)(f3 << 13 | imm | (rs1p - 8) << 7 | (rdp - 8) << 2);
}

static uint16_t c_lui(unsigned rd, uint32_t nzimm)
{
	return c_ci(3, 1, rd, nzimm >> 12);
}

static uint16_t c_addi16sp(uint32_t imm)
{
	return (uint16_t)(3 << 13 | SCATTER(imm, 12, 9) | 2 << 7 |
			  SCATTER(imm, 6, 4, 6, 8, 7, 5) | 1);
}

static uint16_t c_alu(unsigned f2, unsigned rdp, uint32_t imm6)
{
	return (uint16_t)(4 << 13 | ((imm6 >> 5) & 1) << 12 | f2 << 10 |
			  (rdp - 8) << 7 | (imm6 & 0x1f) << 2 | 1);
}

static uint16_t c_arith(unsigned w, unsigned op, unsigned rdp, unsigned rs2p)
{
	return (uint16_t)(4 << 13 | w << 12 | 3 << 10 | (rdp - 8) << 7 |
			  op << 5 | (rs2p - 8) << 2 | 1);
}

static uint16_t c_j(int32_t off)
{
	return (uint16_t)(5 << 13 |
			  SCATTER((uint32_t)off, 12, 11, 4, 9, 8, 10, 6, 7, 3,
				  2, 1, 5) |
			  1);
}

static uint16_t c_bz(unsigned f3, unsigned rs1p, int32_t off)
{
	return (uint16_t)(f3 << 13 | SCATTER((uint32_t)off, 12, 8, 4, 3) |
			  (rs1p - 8) << 7 |
			  SCATTER((uint32_t)off, 6, 7, 6, 2, 1, 5) | 1);
}

static uint16_t c_lwsp(unsigned rd, uint32_t uimm)
{
	return (uint16_t)(2 << 13 | SCATTER(uimm, 12, 5) | rd << 7 |
			  SCATTER(uimm, 6, 4, 3, 2, 7, 6) | 2);
}

static uint16_t c_ldsp(unsigned f3, unsigned rd, uint32_t uimm)
{
	return (uint16_t)(f3 << 13 | SCATTER(uimm, 12, 5) | rd << 7 |
			  SCATTER(uimm, 6, 4, 3, 8, 7, 6) | 2);
}

static uint16_t c_swsp(unsigned rs2, uint32_t uimm)
{
	return (uint16_t)(6 << 13 | SCATTER(uimm, 12, 5, 4, 3, 2, 7, 6) |
			  rs2 << 2 | 2);
}

static uint16_t c_sdsp(unsigned f3, unsigned rs2, uint32_t uimm)
{
	return (uint16_t)(f3 << 13 | SCATTER(uimm, 12, 5, 4, 3, 8, 7, 6) |
			  rs2 << 2 | 2);
}

static uint16_t c_cr(unsigned b12, unsigned rd, unsigned rs2)
{
	return (uint16_t)(4 << 13 | b12 << 12 | rd << 7 | rs2 << 2 | 2);
}

/* A control transfer of off bytes from `from` lands on a wfi there. */
static void check_jump(uint64_t from, int32_t off, uint32_t insn, bool rvc)
{
	uint64_t to = from + (uint64_t)(int64_t)off;

	at = from;
	if (rvc)
		emit16((uint16_t)insn);
	else
		emit(insn);
	at = to;
	emit(WFI);
	hart->s.pc = from;
	hart->s.wfi = 0;
	run();
	assert_int_equal(hart->s.pc, to + 4);
	memset(gpa(to), 0, 4);
	ram_mark_dirty(&mach->ram, to, 4);
}

static void test_jump_offsets(void **state)
{
	static const int32_t cj[] = { 2046, -2048, 0x2aa, 0x554, -4, -0x556 };
	static const int32_t cb[] = { 254, -256, 0xaa, 0x54, -4, -0xac };
	static const int32_t br[] = { 4094, -4096, 0xaaa, 0x554, -4, -0xaac };
	static const int32_t jal[] = { 0xffffe, -0x100000, 0xaaaaa, 0x55554,
				       -4, -0xaaaac };
	uint64_t mid = MEM_RAM_BASE + 0x200000;

	(void)state;
	hart->s.x[S0] = 0;
	hart->s.x[S1] = 1;
	for (int i = 0; i < 6; i++) {
		check_jump(mid, cj[i], c_j(cj[i]), true);
		check_jump(mid, cb[i], c_bz(6, S0, cb[i]), true);
		check_jump(mid, cb[i], c_bz(7, S1, cb[i]), true);
		check_jump(mid, br[i], BEQ(S0, 0, br[i]), false);
		check_jump(mid, br[i], BNE(S1, 0, br[i]), false);
		check_jump(mid, jal[i], JAL(RA, jal[i]), false);
		assert_int_equal(hart->s.x[RA], mid + 4);
	}
}

static void test_compressed_alu(void **state)
{
	(void)state;
	hart->s.x[SP] = DATA;
	hart->s.x[S0] = 0x8000000000000000ull;
	hart->s.x[S1] = 0x7fffffff;
	hart->s.x[A4] = 0xf0;
	hart->s.x[A5] = 0x3c;
	emit16(c_addi4spn(A0, 1020));		/* a0 = sp + 1020 */
	emit16(c_ci(0, 1, A1, (uint32_t)-32 & 0x3f));	/* c.addi a1, -32 */
	emit16(c_ci(1, 1, S1, 1));		/* c.addiw s1, 1: wraps */
	emit16(c_ci(2, 1, A2, 31));		/* c.li a2, 31 */
	emit16(c_lui(A3, 0xfffe0000u));		/* c.lui a3, -0x20000 */
	emit16(c_addi16sp((uint32_t)-512));	/* c.addi16sp -512 */
	emit16(c_addi16sp(496));		/* every other bit */
	emit16(c_alu(0, S0, 63));		/* c.srli s0, 63 */
	emit16(c_ci(0, 2, T0, 36));		/* c.slli t0 (=0), 36 */
	emit16(c_arith(0, 0, A4, A5));		/* c.sub a4, a5 */
	emit16(c_arith(0, 1, A5, A4));		/* c.xor a5, a4 */
	emit16(c_cr(0, T1, A5));		/* c.mv t1, a5 */
	emit16(c_cr(1, T1, A4));		/* c.add t1, a4 */
	emit16(c_ci(0, 1, 0, 0));		/* c.nop */
	emit(WFI);
	run();
	uint64_t *x = hart->s.x;
	assert_int_equal(x[A0], DATA + 1020);
	assert_int_equal(x[A1], (uint64_t)-32);
	assert_int_equal(x[S1], 0xffffffff80000000ull);
	assert_int_equal(x[A2], 31);
	assert_int_equal(x[A3], 0xfffffffffffe0000ull);
	assert_int_equal(x[SP], DATA - 16);
	assert_int_equal(x[S0], 1);
	assert_int_equal(x[T0], 0);
	assert_int_equal(x[A4], 0xf0 - 0x3c);
	assert_int_equal(x[A5], 0x3c ^ (0xf0 - 0x3c));
	assert_int_equal(x[T1], x[A5] + x[A4]);
}

static void test_compressed_alu2(void **state)
{
	(void)state;
	hart->s.x[S0] = 0x8000000000000000ull;
	hart->s.x[S1] = 0xff;
	hart->s.x[A0] = 0xf0f0;
	hart->s.x[A1] = 0x0ff0;
	hart->s.x[A2] = 0x7fffffff;
	hart->s.x[A3] = 1;
	hart->s.x[A4] = 0x80000000;
	hart->s.x[A5] = 1;
	hart->s.x[T0] = 1;
	emit16(c_alu(1, S0, 4));		/* c.srai s0, 4 */
	emit16(c_alu(2, S1, (uint32_t)-16 & 0x3f));	/* c.andi s1, -16 */
	emit16(c_arith(0, 2, A0, A1));		/* c.or */
	emit16(c_arith(0, 3, A1, A0));		/* c.and */
	emit16(c_arith(1, 1, A2, A3));		/* c.addw: overflow */
	emit16(c_arith(1, 0, A4, A5));		/* c.subw */
	emit16(c_ci(0, 2, T0, 63));		/* c.slli t0, 63 */
	emit(WFI);
	run();
	uint64_t *x = hart->s.x;
	assert_int_equal(x[S0], 0xf800000000000000ull);
	assert_int_equal(x[S1], 0xf0);
	assert_int_equal(x[A0], 0xfff0);
	assert_int_equal(x[A1], 0x0ff0);
	assert_int_equal(x[A2], 0xffffffff80000000ull);
	assert_int_equal(x[A4], 0x7fffffff);
	assert_int_equal(x[T0], 0x8000000000000000ull);
}

static void test_compressed_mem_jump(void **state)
{
	(void)state;
	hart->s.x[SP] = DATA;
	hart->s.x[S0] = DATA + 0x100;
	hart->s.x[A0] = 0x1122334455667788ull;
	hart->s.x[A1] = 0xfedcba98u;
	emit16(c_sdsp(7, A0, 504));		/* c.sdsp a0, 504(sp) */
	emit16(c_swsp(A1, 252));		/* c.swsp a1, 252(sp) */
	emit16(c_ldsp(3, A2, 504));		/* c.ldsp */
	emit16(c_lwsp(A3, 252));		/* c.lwsp: sign-extends */
	emit16(c_mem(7, A0, S0, 248, true));	/* c.sd a0, 248(s0) */
	emit16(c_mem(6, A1, S0, 124, false));	/* c.sw a1, 124(s0) */
	emit16(c_mem(3, A4, S0, 248, true));	/* c.ld */
	emit16(c_mem(2, A5, S0, 124, false));	/* c.lw */
	/* jumps: c.j over one insn, c.beqz taken, c.bnez not taken */
	emit16(c_j(4));
	emit16(c_ci(2, 1, T0, 1));		/* skipped */
	hart->s.x[S1] = 0;
	emit16(c_bz(6, S1, 4));			/* c.beqz s1: taken */
	emit16(c_ci(2, 1, T1, 1));		/* skipped */
	emit16(c_bz(7, S1, 4));			/* c.bnez s1: not taken */
	emit16(c_ci(2, 1, T2, 1));		/* executed */
	/* c.jalr to a c.jr that comes back */
	uint64_t base = at;
	emit(AUIPC(16, 0));			/* a6 = base */
	emit16(c_ci(0, 1, 16, 12));		/* c.addi a6, 12 */
	emit16(c_cr(1, 16, 0));			/* c.jalr a6: ra = base + 8 */
	emit(WFI);				/* base + 8 */
	emit16(c_cr(0, RA, 0));			/* base + 12: c.jr ra */
	run();
	uint64_t *x = hart->s.x;
	assert_int_equal(rd64(DATA + 504), 0x1122334455667788ull);
	assert_int_equal(x[A2], 0x1122334455667788ull);
	assert_int_equal(x[A3], 0xfffffffffedcba98ull);
	assert_int_equal(x[A4], 0x1122334455667788ull);
	assert_int_equal(x[A5], 0xfffffffffedcba98ull);
	assert_int_equal(x[T0], 0);
	assert_int_equal(x[T1], 0);
	assert_int_equal(x[T2], 1);
	assert_int_equal(x[RA], base + 8);
	assert_int_equal(hart->s.pc, base + 12);
}

static void test_compressed_reserved(void **state)
{
	static const uint16_t bad[] = {
		0x0000,			/* all zero */
		0,			/* c.addiw x0 (filled below) */
		0,			/* c.lui a0, 0 */
		0,			/* c.addi16sp 0 */
		0,			/* c.lwsp x0 */
		0,			/* c.ldsp x0 */
		0,			/* c.jr x0 */
		0,			/* c.subw space, op 2 */
	};
	uint16_t list[sizeof(bad) / sizeof(bad[0])];

	(void)state;
	memcpy(list, bad, sizeof(list));
	list[1] = c_ci(1, 1, 0, 1);
	list[2] = c_lui(A0, 0);
	list[3] = c_addi16sp(0);
	list[4] = c_lwsp(0, 8);
	list[5] = c_ldsp(3, 0, 8);
	list[6] = c_cr(0, 0, 0);
	list[7] = c_arith(1, 2, A0, A1);
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
		uint64_t where = at;

		emit16(list[i]);
		emit16(0x0001);	/* c.nop */
		hart->s.pc = where;
		hart->s.wfi = 0;
		run();
		assert_mtrap(2, list[i], where);
	}
}

static void test_illegal(void **state)
{
	static const uint32_t bad[] = {
		0xffffffff,
		0x0000007f,			/* unused major opcode */
		0x00002063 | 2 << 12,		/* branch funct3 2 */
		0x00007003,			/* load funct3 7 */
		0x00004023,			/* store funct3 4 */
		0x02000033 | 0x40000000,	/* OP funct7 0x21 */
		0x00001067,			/* jalr funct3 1 */
		0x0000402f,			/* AMO funct3 4 */
		0x1000202f | 1 << 20,		/* lr.w with rs2 != 0 */
		0x00004073,			/* SYSTEM funct3 4 */
		0x7b200073,			/* dret */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t where = at;

		emit(bad[i]);
		hart->s.pc = where;
		hart->s.wfi = 0;
		run();
		assert_mtrap(2, bad[i], where);
	}
}

/* ---- CSRs ---- */

static void test_csr_ops(void **state)
{
	(void)state;
	hart->s.x[A0] = 0xf0;
	hart->s.x[A1] = 0x30;
	emit(CSRRW(0, CSR_MSCRATCH, A0));	/* mscratch = 0xf0 */
	emit(CSRRS(S0, CSR_MSCRATCH, A1));	/* s0 = 0xf0, |= 0x30 */
	emit(CSRRC(S1, CSR_MSCRATCH, A0));	/* s1 = 0xf0, &= ~0xf0 */
	emit(CSRRWI(T0, CSR_MSCRATCH, 0x1f));	/* t0 = 0 */
	emit(CSRRSI(T1, CSR_MSCRATCH, 0x0));	/* read only */
	emit(CSRRCI(T2, CSR_MSCRATCH, 0x3));	/* t2 = 0x1f, -> 0x1c */
	emit(CSRRS(A2, CSR_MISA, 0));
	emit(CSRRS(A3, CSR_MHARTID, 0));	/* read-only: rs1 = x0 ok */
	emit(CSRRS(A4, CSR_PMPADDR0, 0));
	emit(CSRRW(0, CSR_PMPCFG0, A0));	/* ignored */
	emit(CSRRS(A5, CSR_PMPCFG0, 0));
	emit(WFI);
	run();
	uint64_t *x = hart->s.x;
	assert_int_equal(x[S0], 0xf0);
	assert_int_equal(x[S1], 0xf0);
	assert_int_equal(x[T0], 0);
	assert_int_equal(x[T1], 0x1f);
	assert_int_equal(x[T2], 0x1f);
	assert_int_equal(hart->s.mscratch, 0x1c);
	/* RV64 A C D F I M S U */
	assert_int_equal(x[A2], (2ull << 62) | 0x14112d);
	assert_int_equal(x[A3], 0);
	assert_int_equal(x[A4], 0);
	assert_int_equal(x[A5], 0);
}

static void test_csr_illegal(void **state)
{
	uint64_t where;

	(void)state;
	/* write to a read-only CSR */
	where = at;
	emit(CSRRW(A0, CSR_MHARTID, A1));
	run();
	assert_mtrap(2, CSRRW(A0, CSR_MHARTID, A1), where);
	/* csrrs with rs1 != x0 also writes */
	hart->s.wfi = 0;
	hart->s.pc = where = at;
	emit(CSRRS(A0, CSR_MVENDORID, A1));
	run();
	assert_int_equal(hart->s.mcause, 2);
	/* unknown CSR */
	hart->s.wfi = 0;
	hart->s.pc = where = at;
	emit(CSRRS(A0, 0x7c0, 0));
	run();
	assert_mtrap(2, CSRRS(A0, 0x7c0, 0), where);
	/* M CSR from S */
	hart->s.wfi = 0;
	hart->s.pc = where = at;
	set_priv(PRV_S);
	emit(CSRRS(A0, CSR_MSTATUS, 0));
	run();
	assert_mtrap(2, CSRRS(A0, CSR_MSTATUS, 0), where);
	assert_int_equal((hart->s.mstatus & MSTATUS_MPP) >> 11, PRV_S);
	/* S CSR from U */
	hart->s.wfi = 0;
	hart->s.pc = where = at;
	set_priv(PRV_U);
	emit(CSRRS(A0, CSR_SSTATUS, 0));
	run();
	assert_mtrap(2, CSRRS(A0, CSR_SSTATUS, 0), where);
	/* satp from S with TVM */
	hart->s.wfi = 0;
	hart->s.pc = where = at;
	hart->s.mstatus |= 1ull << 20;
	set_priv(PRV_S);
	emit(CSRRS(A0, CSR_SATP, 0));
	run();
	assert_mtrap(2, CSRRS(A0, CSR_SATP, 0), where);
	/* fcsr with FS off */
	hart->s.wfi = 0;
	hart->s.pc = where = at;
	emit(CSRRS(A0, CSR_FCSR, 0));
	run();
	assert_mtrap(2, CSRRS(A0, CSR_FCSR, 0), where);
}

static void test_sstatus_view(void **state)
{
	(void)state;
	hart->s.x[A0] = ~0ull;
	hart->s.x[A1] = 2ull << 11;	/* MPP = 2, reserved */
	emit(CSRRW(0, CSR_MSTATUS, A0));
	emit(CSRRS(S0, CSR_MSTATUS, 0));
	emit(CSRRS(S1, CSR_SSTATUS, 0));
	emit(CSRRW(0, CSR_MSTATUS, 0));
	emit(CSRRW(0, CSR_SSTATUS, A0));
	emit(CSRRS(T0, CSR_MSTATUS, 0));
	emit(CSRRW(0, CSR_MSTATUS, A1));	/* MPP keeps U */
	emit(CSRRS(T1, CSR_MSTATUS, 0));
	emit(WFI);
	run();
	/* every writable field, UXL = SXL = 64, SD for FS dirty */
	assert_int_equal(hart->s.x[S0], 0x8000000a007e79aaull);
	/* the sstatus view of it */
	assert_int_equal(hart->s.x[S1], 0x80000002000c6122ull);
	/* sstatus writes reach only its fields */
	assert_int_equal(hart->s.x[T0], 0x8000000a000c6122ull);
	assert_int_equal(hart->s.x[T1], 0x0000000a00000000ull);
}

static void test_counters(void **state)
{
	uint64_t where;

	(void)state;
	emit(CSRRS(A0, CSR_INSTRET, 0));
	emit(ADDI(T0, 0, 1));
	emit(ADDI(T0, 0, 2));
	emit(CSRRS(A1, CSR_INSTRET, 0));
	emit(CSRRS(A2, CSR_CYCLE, 0));
	emit(CSRRS(A3, CSR_TIME, 0));
	hart->s.x[T1] = 1000;
	emit(CSRRW(0, CSR_MINSTRET, T1));
	emit(CSRRS(A4, CSR_MINSTRET, 0));
	emit(WFI);
	run();
	assert_int_equal(hart->s.x[A1] - hart->s.x[A0], 3);
	assert_true(hart->s.x[A2] >= 4);
	assert_int_equal(hart->s.x[A4], 1000);
	assert_int_equal(hart->s.minstret, 1002);	/* + csrr, wfi */

	/* U-mode needs mcounteren and scounteren */
	hart->s.mcounteren = 0x7;
	hart->s.scounteren = 0x2;
	set_priv(PRV_U);
	hart->s.wfi = 0;
	hart->s.pc = where = at;
	emit(CSRRS(A0, CSR_TIME, 0));
	emit(CSRRS(A1, CSR_CYCLE, 0));
	run();
	assert_mtrap(2, CSRRS(A1, CSR_CYCLE, 0), where + 4);

	hart->s.mcounteren = 0;
	set_priv(PRV_S);
	hart->s.wfi = 0;
	hart->s.pc = where = at;
	emit(CSRRS(A0, CSR_INSTRET, 0));
	run();
	assert_mtrap(2, CSRRS(A0, CSR_INSTRET, 0), where);
}

/* ---- traps ---- */

static void test_ecall_ebreak(void **state)
{
	(void)state;
	emit(ECALL);
	run();
	assert_mtrap(11, 0, CODE);

	set_priv(PRV_S);
	hart->s.wfi = 0;
	hart->s.pc = CODE;
	run();
	assert_mtrap(9, 0, CODE);
	assert_int_equal((hart->s.mstatus & MSTATUS_MPP) >> 11, PRV_S);

	/* ecall from U delegated to S */
	hart->s.medeleg = 1 << 8;
	set_priv(PRV_U);
	hart->s.wfi = 0;
	hart->s.pc = CODE;
	run();
	assert_int_equal(hart->s.priv, PRV_S);
	assert_int_equal(hart->s.scause, 8);
	assert_int_equal(hart->s.sepc, CODE);
	assert_int_equal(hart->s.pc, STRAP + 8);
	assert_int_equal(hart->s.mstatus & MSTATUS_SPP, 0);

	/* ebreak: tval = pc; c.ebreak too */
	set_priv(PRV_M);
	hart->s.wfi = 0;
	hart->s.pc = at;
	emit(EBREAK);
	run();
	assert_mtrap(3, at - 4, at - 4);
	hart->s.wfi = 0;
	hart->s.pc = at;
	emit16(0x9002);
	run();
	assert_mtrap(3, at - 2, at - 2);
}

static void test_sbi_builtin(void **state)
{
	(void)state;
	hart->sbi_builtin = true;
	set_priv(PRV_S);
	hart->s.x[17] = 0x10;	/* base extension */
	hart->s.x[16] = 0;	/* get_spec_version */
	emit(ECALL);
	emit(ADDI(T0, 0, 7));
	emit(WFI);
	run();
	assert_int_equal(hart->s.priv, PRV_S);
	assert_int_equal(hart->s.x[A0], 0);
	assert_int_equal(hart->s.x[A1], 2u << 24);
	assert_int_equal(hart->s.x[T0], 7);
	assert_int_equal(hart->s.pc, CODE + 12);
}

static void test_mret_sret(void **state)
{
	(void)state;
	/* M -> S with MPIE=1: MIE restored, MPIE set, MPP = U */
	hart->s.mepc = CODE;
	hart->s.mstatus = (hart->s.mstatus & ~MSTATUS_MPP) | (1ull << 11) |
			  MSTATUS_MPIE;
	at = CODE + 0x100;
	hart->s.pc = at;
	emit(MRET);
	at = CODE;
	/* in S: sret to U at CODE+0x40 */
	hart->s.sepc = CODE + 0x40;
	hart->s.mstatus |= MSTATUS_SPIE;
	emit(SRET);
	at = CODE + 0x40;
	emit(CSRRS(A0, CSR_CYCLE, 0));	/* U, no counteren: illegal */
	run();
	assert_mtrap(2, CSRRS(A0, CSR_CYCLE, 0), CODE + 0x40);
	assert_int_equal((hart->s.mstatus & MSTATUS_MPP) >> 11, PRV_U);
	assert_true(hart->s.mstatus & MSTATUS_SIE);
	assert_true(hart->s.mstatus & MSTATUS_SPIE);
	assert_int_equal(hart->s.mstatus & MSTATUS_SPP, 0);

	/* MRET from S is illegal; SRET from S with TSR is illegal */
	set_priv(PRV_S);
	hart->s.wfi = 0;
	hart->s.pc = at;
	emit(MRET);
	run();
	assert_mtrap(2, MRET, at - 4);
	hart->s.mstatus |= MSTATUS_TSR;
	set_priv(PRV_S);
	hart->s.wfi = 0;
	hart->s.pc = at;
	emit(SRET);
	run();
	assert_mtrap(2, SRET, at - 4);
	/* SRET from U is illegal */
	hart->s.mstatus &= ~MSTATUS_TSR;
	set_priv(PRV_U);
	hart->s.wfi = 0;
	hart->s.pc = at;
	emit(SRET);
	run();
	assert_mtrap(2, SRET, at - 4);
}

/* Runs a nop loop at pc until the hart parks in a trap handler. */
static void run_spin(unsigned priv)
{
	set_priv(priv);
	hart->s.wfi = 0;
	hart->s.pc = CODE;
	hart_run(hart, 1000);
}

static void test_interrupt_priority(void **state)
{
	static const struct {
		uint64_t bit;
		unsigned cause;
	} order[] = {
		{ MIP_MEIP, 11 }, { MIP_MSIP, 3 }, { MIP_MTIP, 7 },
		{ MIP_SEIP, 9 },  { MIP_SSIP, 1 }, { MIP_STIP, 5 },
	};

	(void)state;
	emit(JAL(0, 0));	/* spin */
	hart->s.mie = MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP |
		      MIP_STIP;
	/* nothing delegated: all go to M, taken in S even with MIE = 0 */
	hart_set_mip(hart, hart->s.mie, true);
	for (size_t i = 0; i < 6; i++) {
		hart->s.mie = MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP |
			      MIP_SSIP | MIP_STIP;
		run_spin(PRV_S);
		assert_int_equal(hart->s.priv, PRV_M);
		assert_int_equal(hart->s.mcause, INTR | order[i].cause);
		assert_int_equal(hart->s.mepc, CODE);
		hart_set_mip(hart, order[i].bit, false);
	}
	/* M-mode with MIE = 0: not taken */
	hart_set_mip(hart, MIP_MTIP, true);
	hart->s.mie = MIP_MTIP;
	hart->s.mcause = 0;
	run_spin(PRV_M);
	assert_int_equal(hart->s.mcause, 0);
	assert_int_equal(hart->s.pc, CODE);
	/* ... with MIE = 1: taken */
	hart->s.mstatus |= MSTATUS_MIE;
	run_spin(PRV_M);
	assert_int_equal(hart->s.mcause, INTR | 7);
	assert_int_equal(hart->s.mstatus & MSTATUS_MIE, 0);
	assert_true(hart->s.mstatus & MSTATUS_MPIE);
	hart_set_mip(hart, MIP_MTIP, false);
}

static void test_interrupt_delegation(void **state)
{
	(void)state;
	emit(JAL(0, 0));
	hart->s.mideleg = MIP_SSIP | MIP_STIP | MIP_SEIP;
	hart->s.mie = MIP_STIP | MIP_SEIP | MIP_MTIP;
	hart_set_mip(hart, MIP_STIP, true);
	/* S with SIE = 0: masked */
	run_spin(PRV_S);
	assert_int_equal(hart->s.priv, PRV_S);
	assert_int_equal(hart->s.pc, CODE);
	/* never taken in M, even with MIE */
	hart->s.mstatus |= MSTATUS_MIE;
	run_spin(PRV_M);
	assert_int_equal(hart->s.pc, CODE);
	/* U: taken to S regardless of SIE */
	run_spin(PRV_U);
	assert_int_equal(hart->s.priv, PRV_S);
	assert_int_equal(hart->s.scause, INTR | 5);
	assert_int_equal(hart->s.sepc, CODE);
	assert_int_equal(hart->s.pc, STRAP + 8);
	/* S with SIE: taken; vectored stvec adds 4 * cause */
	put_parking(STRAP + 0x100 + 4 * 9, CSR_SIE);
	hart->s.mie = MIP_STIP | MIP_SEIP | MIP_MTIP;
	hart->s.stvec = (STRAP + 0x100) | 1;
	hart_set_mip(hart, MIP_SEIP, true);
	hart->s.mstatus |= MSTATUS_SIE;
	run_spin(PRV_S);
	assert_int_equal(hart->s.scause, INTR | 9);	/* SEI over STI */
	assert_int_equal(hart->s.pc, STRAP + 0x100 + 4 * 9 + 8);
	assert_true(hart->s.mstatus & MSTATUS_SPP);
	assert_true(hart->s.mstatus & MSTATUS_SPIE);
	assert_int_equal(hart->s.mstatus & MSTATUS_SIE, 0);
	/* an M interrupt preempts S-level ones */
	hart->s.mie = MIP_STIP | MIP_SEIP | MIP_MTIP;
	hart->s.mstatus |= MSTATUS_SIE;
	hart_set_mip(hart, MIP_MTIP, true);
	run_spin(PRV_S);
	assert_int_equal(hart->s.priv, PRV_M);
	assert_int_equal(hart->s.mcause, INTR | 7);
	hart->s.stvec = STRAP;
	hart_set_mip(hart, MIP_STIP | MIP_SEIP | MIP_MTIP, false);
}

static void test_interrupt_enable_by_csr(void **state)
{
	(void)state;
	/* a csrs that sets mstatus.MIE takes the pending interrupt next */
	hart->s.mie = MIP_MSIP;
	hart_set_mip(hart, MIP_MSIP, true);
	emit(CSRRSI(0, CSR_MSTATUS, 8));
	emit(ADDI(A0, 0, 1));
	emit(WFI);
	run();
	assert_int_equal(hart->s.mcause, INTR | 3);
	assert_int_equal(hart->s.mepc, CODE + 4);
	assert_int_equal(hart->s.x[A0], 0);
	hart_set_mip(hart, MIP_MSIP, false);
}

static void test_wfi(void **state)
{
	uint64_t n;

	(void)state;
	hart->s.mie = MIP_MTIP;
	emit(WFI);
	emit(ADDI(A0, 0, 42));
	emit(JAL(0, 0));
	n = hart_run(hart, 1000);
	assert_int_equal(n, 1);
	assert_true(hart->s.wfi);
	assert_int_equal(hart->s.pc, CODE + 4);
	/* still nothing pending: returns at once */
	assert_int_equal(hart_run(hart, 1000), 0);
	/* pending but globally disabled (MIE = 0): wakes, no trap */
	hart_set_mip(hart, MIP_MTIP, true);
	hart_run(hart, 1000);
	assert_false(hart->s.wfi);
	assert_int_equal(hart->s.x[A0], 42);
	assert_int_equal(hart->s.mcause, 0);
	/* wfi with an interrupt pending does not wait */
	hart->s.pc = CODE;
	hart->s.x[A0] = 0;
	hart_run(hart, 1000);
	assert_false(hart->s.wfi);
	assert_int_equal(hart->s.x[A0], 42);
	hart_set_mip(hart, MIP_MTIP, false);
	/* TW: illegal in S; always illegal in U */
	hart->s.mstatus |= MSTATUS_TW;
	set_priv(PRV_S);
	hart->s.pc = CODE;
	run();
	assert_mtrap(2, WFI, CODE);
	hart->s.mstatus &= ~MSTATUS_TW;
	set_priv(PRV_U);
	hart->s.wfi = 0;
	hart->s.pc = CODE;
	run();
	assert_mtrap(2, WFI, CODE);
}

static void test_sstc(void **state)
{
	(void)state;
	hart->s.menvcfg = 1ull << 63;
	hart->s.mcounteren = 2;
	hart->s.x[A0] = 0;
	hart->s.x[A1] = UINT64_MAX;
	set_priv(PRV_S);
	emit(CSRRW(0, CSR_STIMECMP, A0));	/* time >= 0: STIP */
	emit(CSRRS(S0, CSR_SIP, 0));
	emit(CSRRW(0, CSR_STIMECMP, A1));	/* never */
	emit(CSRRS(S1, CSR_SIP, 0));
	emit(WFI);
	hart->s.mideleg = MIP_STIP;
	run();
	assert_int_equal(hart->s.x[S0], MIP_STIP);
	assert_int_equal(hart->s.x[S1], 0);
	/* without mcounteren.TM: illegal from S */
	hart->s.mcounteren = 0;
	hart->s.wfi = 0;
	hart->s.pc = CODE;
	run();
	assert_mtrap(2, CSRRW(0, CSR_STIMECMP, A0), CODE);
}

/* ---- A extension ---- */

static void test_lr_sc_amo(void **state)
{
	(void)state;
	wr64(DATA, 5);
	wr64(DATA + 8, 0xffffffff80000000ull);
	hart->s.x[S0] = DATA;
	hart->s.x[S1] = DATA + 8;
	hart->s.x[A1] = 9;
	hart->s.x[A2] = (uint64_t)-3;
	emit(AMO(2, 3, A0, S0, 0));		/* lr.d a0, (s0) */
	emit(AMO(3, 3, A3, S1, A1));		/* sc.d other addr: fails */
	emit(AMO(3, 3, A4, S0, A1));		/* sc.d: reservation gone */
	emit(AMO(2, 3, A0, S0, 0));		/* lr.d */
	emit(AMO(3, 3, A5, S0, A1));		/* sc.d: succeeds, 9 */
	emit(AMO(0, 3, 16, S0, A2));		/* amoadd.d: 9 + -3 */
	emit(AMO(0x10, 3, 17, S0, A2));		/* amomin.d -> -3 */
	emit(AMO(0x1c, 3, 18, S0, A1));		/* amomaxu.d -> -3 stays */
	emit(AMO(0x18, 3, 19, S0, A1));		/* amominu.d -> 9 */
	emit(AMO(0x14, 3, 20, S0, A2));		/* amomax.d -> 9 */
	emit(AMO(1, 3, 21, S0, A2));		/* amoswap.d -> -3 */
	emit(AMO(0, 2, 22, S1, A1));		/* amoadd.w: sext old */
	emit(AMO(0x18, 2, 23, S1, A1));		/* amominu.w */
	emit(AMO(0xc, 3, 24, S0, A1));		/* amoand.d */
	emit(AMO(0x8, 3, 25, S0, A2));		/* amoor.d */
	emit(AMO(0x4, 3, 26, S0, A1));		/* amoxor.d */
	emit(WFI);
	run();
	uint64_t *x = hart->s.x;
	assert_int_equal(x[A3], 1);
	assert_int_equal(x[A4], 1);
	assert_int_equal(x[A5], 0);
	assert_int_equal(x[16], 9);
	assert_int_equal(x[17], 6);
	assert_int_equal(x[18], (uint64_t)-3);
	assert_int_equal(x[19], (uint64_t)-3);
	assert_int_equal(x[20], 9);
	assert_int_equal(x[21], 9);
	assert_int_equal(x[22], 0xffffffff80000000ull);
	assert_int_equal(x[23], 0xffffffff80000009ull);
	/* .W touches the low word only: minu(0x80000009, 9) */
	assert_int_equal(rd64(DATA + 8), 0xffffffff00000009ull);
	assert_int_equal(x[24], (uint64_t)-3);
	assert_int_equal(x[25], 9);
	assert_int_equal(x[26], (uint64_t)-3);
	assert_int_equal(rd64(DATA), (uint64_t)-3 ^ 9);
}

static void test_amo_misaligned(void **state)
{
	(void)state;
	hart->s.x[S0] = DATA + 4;
	emit(AMO(0, 3, A0, S0, A1));		/* amoadd.d at +4 */
	run();
	assert_mtrap(6, DATA + 4, CODE);
	hart->s.wfi = 0;
	hart->s.pc = at;
	emit(AMO(2, 3, A0, S0, 0));		/* lr.d at +4 */
	run();
	assert_mtrap(4, DATA + 4, at - 4);
	hart->s.wfi = 0;
	hart->s.pc = at;
	hart->s.x[S0] = DATA + 2;
	emit(AMO(3, 2, A0, S0, A1));		/* sc.w at +2 */
	run();
	assert_mtrap(6, DATA + 2, at - 4);
}

/* ---- F/D loads and stores ---- */

static void test_fp_mem(void **state)
{
	uint64_t where;

	(void)state;
	wr64(DATA, 0x3ff8000000000000ull);	/* 1.5 */
	wr64(DATA + 8, 0x4002000000000000ull);	/* 2.25 */
	wr64(DATA + 16, 0x3fc00000);		/* 1.5f */
	hart->s.x[S0] = DATA;
	hart->s.x[SP] = DATA;
	/* FS off: illegal */
	emit(i_type(0, S0, 3, 1, 0x07));	/* fld f1, 0(s0) */
	run();
	assert_mtrap(2, i_type(0, S0, 3, 1, 0x07), CODE);

	hart->s.mstatus |= 1ull << 13;		/* FS = initial */
	hart->s.wfi = 0;
	hart->s.pc = CODE;
	emit(i_type(8, S0, 3, 2, 0x07));	/* fld f2, 8(s0) */
	emit(r_type(0x01, 2, 1, 7, 3, 0x53));	/* fadd.d f3, f1, f2 */
	emit(s_type(24, 3, S0, 3, 0x27));	/* fsd f3, 24(s0) */
	emit(i_type(16, S0, 2, 4, 0x07));	/* flw f4, 16(s0) */
	emit(s_type(32, 4, S0, 2, 0x27));	/* fsw f4, 32(s0) */
	emit16(c_mem(1, 8 + 1, S0, 8, true));	/* c.fld f9, 8(s0) */
	emit16(c_mem(5, 8 + 1, S0, 40, true));	/* c.fsd f9, 40(s0) */
	emit16(c_ldsp(1, 10, 0));		/* c.fldsp f10, 0(sp) */
	emit16(c_sdsp(5, 10, 48));		/* c.fsdsp f10, 48(sp) */
	emit(WFI);
	run();
	assert_int_equal(hart->s.f[3], 0x400e000000000000ull);	/* 3.75 */
	assert_int_equal(rd64(DATA + 24), 0x400e000000000000ull);
	assert_int_equal(hart->s.f[4], 0xffffffff3fc00000ull);
	assert_int_equal(rd64(DATA + 32) & 0xffffffff, 0x3fc00000);
	assert_int_equal(rd64(DATA + 40), 0x4002000000000000ull);
	assert_int_equal(rd64(DATA + 48), 0x3ff8000000000000ull);
	assert_int_equal(hart->s.mstatus & MSTATUS_FS, MSTATUS_FS);

	/* FP arithmetic refused by fpu_exec (bad rm 5): illegal */
	hart->s.wfi = 0;
	hart->s.pc = where = at;
	emit(r_type(0x01, 2, 1, 5, 3, 0x53));
	run();
	assert_mtrap(2, r_type(0x01, 2, 1, 5, 3, 0x53), where);
}

/* ---- state table ---- */

static void test_state_check(void **state)
{
	char err[128];
	hart_state_t s;

	(void)state;
	assert_int_equal(state_desc_validate(&hart_state_desc, err,
					     sizeof(err)), 0);
	s = hart->s;
	assert_int_equal(hart_state_desc.check(&s, err, sizeof(err)), 0);
	s.priv = 2;
	assert_int_equal(hart_state_desc.check(&s, err, sizeof(err)), -1);
	s = hart->s;
	s.x[0] = 1;
	assert_int_equal(hart_state_desc.check(&s, err, sizeof(err)), -1);
	s = hart->s;
	s.satp = 5ull << 60;
	assert_int_equal(hart_state_desc.check(&s, err, sizeof(err)), -1);
	s = hart->s;
	s.mstatus |= 2ull << 11;
	s.mstatus |= 1ull << 11;	/* MPP = 3: fine */
	assert_int_equal(hart_state_desc.check(&s, err, sizeof(err)), 0);
	s.mstatus &= ~(1ull << 11);	/* MPP = 2: reserved */
	assert_int_equal(hart_state_desc.check(&s, err, sizeof(err)), -1);
	/* every byte of the struct is described */
	size_t total = 0;
	for (uint32_t i = 0; i < hart_state_desc.nfields; i++)
		total += hart_state_desc.fields[i].elem_size *
			 hart_state_desc.fields[i].count;
	assert_int_equal(total, sizeof(hart_state_t));
}

/* ---- decoded-instruction cache coherence (cpu/dcache.h) ---- */

#define FENCE_I 0x0000100fu

/* Runs the program at CODE again from the start. */
static void rerun(void)
{
	hart->s.pc = CODE;
	hart->s.wfi = 0;
	run();
}

/* A store over an instruction that already ran: the new one runs next. */
static void test_smc_store(void **state)
{
	(void)state;
	hart->s.x[T1] = ADDI(A0, A0, 100);
	hart->s.x[T2] = CODE;
	emit(ADDI(A0, A0, 1));		/* 0: overwritten by the store */
	emit(BNE(S0, 0, 16));		/* 4: second pass: done */
	emit(STORE(2, T1, T2, 0));	/* 8: sw t1, 0(t2) */
	emit(ADDI(S0, 0, 1));		/* 12 */
	emit(JAL(0, -16));		/* 16: back to 0 */
	emit(WFI);			/* 20 */
	run();
	assert_int_equal(hart->s.x[A0], 101);
}

/* A store over the very next instruction of the running straight line. */
static void smc_next(bool fence)
{
	hart->s.x[T1] = ADDI(A0, A0, 1);
	hart->s.x[T2] = CODE + (fence ? 8 : 4);
	emit(STORE(2, T1, T2, 0));	/* sw t1, 0(t2) */
	if (fence)
		emit(FENCE_I);
	emit(ADDI(A0, A0, 1));
	emit(WFI);
	run();
	assert_int_equal(hart->s.x[A0], 1);
	/* The instruction is decoded now; replace it while running. */
	hart->s.x[T1] = ADDI(A0, A0, 100);
	rerun();
	assert_int_equal(hart->s.x[A0], 101);
	/* ...and the new one is what stays cached. */
	hart->s.x[T1] = ADDI(A0, A0, 100);
	rerun();
	assert_int_equal(hart->s.x[A0], 201);
}

static void test_smc_next_insn(void **state)
{
	(void)state;
	smc_next(false);
}

static void test_fence_i(void **state)
{
	(void)state;
	smc_next(true);
}

/* Device DMA over executed code (virtio writes land the same way). */
static void test_dma_over_code(void **state)
{
	uint32_t repl = ADDI(A0, A0, 100);
	uint16_t crepl = c_ci(0, 1, A0, 7);	/* c.addi a0, 7 */

	(void)state;
	emit(ADDI(A0, A0, 1));
	emit16(c_ci(0, 1, A0, 2));		/* c.addi a0, 2 */
	emit16(c_ci(0, 1, A0, 2));
	emit(WFI);
	run();
	assert_int_equal(hart->s.x[A0], 5);
	assert_int_equal(ram_dma_write(&mach->ram, CODE, &repl, 4), 0);
	assert_int_equal(ram_dma_write(&mach->ram, CODE + 6, &crepl, 2), 0);
	rerun();
	assert_int_equal(hart->s.x[A0], 5 + 100 + 2 + 7);
	/* A write that only partly covers a 32-bit instruction. */
	repl = ADDI(A0, A0, 0x300);
	assert_int_equal(ram_dma_write(&mach->ram, CODE + 2,
				       (uint8_t *)&repl + 2, 2), 0);
	rerun();
	assert_int_equal(hart->s.x[A0], 114 + 0x300 + 2 + 7);
}

/*
 * A page first written through the CPU (so a write-TLB entry could exist),
 * then executed, then written again: the second store must still drop the
 * decoded instruction.
 */
static void test_store_after_decode(void **state)
{
	const uint64_t fn = CODE + 0x2000;

	(void)state;
	hart->s.x[T1] = ADDI(A0, A0, 100);
	hart->s.x[T2] = fn;
	at = fn;
	emit(ADDI(A0, A0, 1));
	emit(JALR(0, RA, 0));
	at = CODE;
	emit(STORE(2, 0, T2, 0x100));	/* sw zero, 0x100(t2): data store */
	emit(JALR(RA, T2, 0));		/* a0 += 1 */
	emit(STORE(2, T1, T2, 0));	/* replace the first instruction */
	emit(JALR(RA, T2, 0));		/* a0 += 100 */
	emit(STORE(2, T0, T2, 0));	/* and again, right after a store */
	emit(JALR(RA, T2, 0));		/* a0 += 1000 */
	emit(WFI);
	hart->s.x[T0] = ADDI(A0, A0, 1000);
	run();
	assert_int_equal(hart->s.x[A0], 1101);
}

/* Straight-line code running from one page into the next. */
static void test_code_across_pages(void **state)
{
	const uint64_t b = CODE + 0x3000;	/* a page boundary */
	uint32_t repl = ADDI(A0, A0, 100);

	(void)state;
	hart->s.pc = b - 8;
	at = b - 8;
	emit(ADDI(A0, A0, 1));
	emit16(c_ci(0, 1, A0, 1));		/* c.addi a0, 1 */
	emit16(c_ci(0, 1, A0, 1));		/* last parcel of the page */
	emit(ADDI(A0, A0, 1));			/* first of the next */
	emit(WFI);
	run();
	assert_int_equal(hart->s.x[A0], 4);
	assert_int_equal(ram_dma_write(&mach->ram, b, &repl, 4), 0);
	hart->s.pc = b - 8;
	hart->s.wfi = 0;
	run();
	assert_int_equal(hart->s.x[A0], 4 + 3 + 100);
}

/* A 32-bit instruction whose halves sit on two pages. */
static void test_insn_split_across_pages(void **state)
{
	const uint64_t b = CODE + 0x3000;
	uint32_t insn = ADDI(A0, A0, 0x10), repl = ADDI(A0, A0, 0x20);
	uint16_t hi = (uint16_t)(repl >> 16);

	(void)state;
	hart->s.pc = b - 6;
	at = b - 6;
	emit(ADDI(A0, A0, 1));
	emit(insn);				/* at b - 2 */
	emit(WFI);
	run();
	assert_int_equal(hart->s.x[A0], 0x11);
	/* Only the upper half (the immediate) changes, on the next page. */
	assert_int_equal(ram_dma_write(&mach->ram, b, &hi, 2), 0);
	hart->s.pc = b - 6;
	hart->s.wfi = 0;
	run();
	assert_int_equal(hart->s.x[A0], 0x11 + 0x21);
	/* A CPU store to the upper half behaves the same. */
	hart->s.x[T1] = ADDI(A0, A0, 0x40) >> 16;
	hart->s.x[T2] = b;
	at = b + 0x100;
	emit(STORE(1, T1, T2, 0));		/* sh t1, 0(t2) */
	emit(JAL(0, -0x106));			/* to b - 2 */
	hart->s.pc = b + 0x100;
	hart->s.wfi = 0;
	run();
	assert_int_equal(hart->s.x[A0], 0x11 + 0x21 + 0x40);
}

/* More code pages than the cache holds: it starts over, still coherent. */
static void test_dcache_capacity(void **state)
{
	const unsigned npages = DCACHE_MAX_PAGES + 300;	/* code pages */
	machine_t *saved = mach;
	hart_t *saved_hart = hart;
	uint32_t repl = ADDI(A0, A0, 100);
	char err[256];
	uint64_t p;

	(void)state;
	mach = calloc(1, sizeof(*mach));
	assert_non_null(mach);
	assert_int_equal(machine_init(mach, (uint64_t)(npages + 16) << 12, 1,
				      err, sizeof(err)),
			 0);
	hart = &mach->harts[0];
	for (unsigned i = 0; i < npages; i++) {
		at = CODE + ((uint64_t)i << 12);
		emit(ADDI(A0, A0, 1));
		emit(JAL(0, 4096 - 4));		/* to the next page */
	}
	at = CODE + ((uint64_t)npages << 12);
	emit(WFI);
	for (int pass = 1; pass <= 2; pass++) {
		rerun();
		assert_int_equal(hart->s.x[A0], (uint64_t)pass * npages);
	}
	/* A page still cached (the last ones ran after the cache started
	 * over), then one long dropped. */
	p = CODE + ((uint64_t)(npages - 1) << 12);
	assert_int_equal(ram_dma_write(&mach->ram, p, &repl, 4), 0);
	hart->s.pc = p;
	hart->s.wfi = 0;
	run();
	assert_int_equal(hart->s.x[A0], 2ull * npages + 100);
	assert_int_equal(ram_dma_write(&mach->ram, CODE + 0x1000, &repl, 4), 0);
	rerun();
	assert_int_equal(hart->s.x[A0], 3ull * npages + 100 + 2 * 99);
	machine_destroy(mach);
	free(mach);
	mach = saved;
	hart = saved_hart;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_alu),
		T(test_alu_word),
		T(test_shift_reserved),
		T(test_lui_auipc),
		T(test_muldiv),
		T(test_load_store),
		T(test_misaligned),
		T(test_access_fault_phys),
		T(test_branches),
		T(test_jal_jalr),
		T(test_jump_offsets),
		T(test_compressed_alu),
		T(test_compressed_alu2),
		T(test_compressed_mem_jump),
		T(test_compressed_reserved),
		T(test_illegal),
		T(test_csr_ops),
		T(test_csr_illegal),
		T(test_sstatus_view),
		T(test_counters),
		T(test_ecall_ebreak),
		T(test_sbi_builtin),
		T(test_mret_sret),
		T(test_interrupt_priority),
		T(test_interrupt_delegation),
		T(test_interrupt_enable_by_csr),
		T(test_wfi),
		T(test_sstc),
		T(test_lr_sc_amo),
		T(test_amo_misaligned),
		T(test_fp_mem),
		T(test_state_check),
		T(test_smc_store),
		T(test_smc_next_insn),
		T(test_fence_i),
		T(test_dma_over_code),
		T(test_store_after_decode),
		T(test_code_across_pages),
		T(test_insn_split_across_pages),
		T(test_dcache_capacity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
