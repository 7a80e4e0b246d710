// SPDX-License-Identifier: MIT
/*
 * Virtual memory: Sv39/Sv48 page-table walks built by hand in guest RAM
 * (privileged spec 4.3-4.5), every fault type with its cause and tval,
 * SUM/MXR/MPRV, hardware A/D updates, physical access faults, page-crossing
 * accesses, and the dirty log as seen through the CPU's store path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/csr.h"
#include "cpu/hart.h"
#include "machine/machine.h"

#define RAM_SIZE (16u << 20)
#define CODE (MEM_RAM_BASE + 0x1000)
#define UCODE (MEM_RAM_BASE + 0x8000)	/* a page for U-mode code */
#define MTRAP (MEM_RAM_BASE + 0x100)
#define DATA (MEM_RAM_BASE + 0x100000)	/* data pages, physical */
#define PT_POOL (MEM_RAM_BASE + 0x200000)
#define BIG (MEM_RAM_BASE + 0x600000)	/* 2 MiB aligned */

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define RW (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
#define RWX (RW | PTE_X)

#define SSTATUS_SUM (1ull << 18)
#define SSTATUS_MXR (1ull << 19)
#define MSTATUS_MPRV (1ull << 17)

enum { ZERO, RA, SP, GP, TP, T0, T1, T2, S0, S1, A0, A1, A2, A3, A4, A5 };

static uint32_t i_type(int32_t imm, unsigned rs1, unsigned f3, unsigned rd,
		       unsigned op)
{
	return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 |
	       op;
}

static uint32_t s_type(int32_t imm, unsigned rs2, unsigned rs1, unsigned f3)
{
	uint32_t u = (uint32_t)imm;

	return ((u >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
	       (u & 0x1f) << 7 | 0x23;
}

#define LD(d, a, i) i_type(i, a, 3, d, 0x03)
#define LW(d, a, i) i_type(i, a, 2, d, 0x03)
#define SD(s, a, i) s_type(i, s, a, 3)
#define SW(s, a, i) s_type(i, s, a, 2)
#define JALR(d, a, i) i_type(i, a, 0, d, 0x67)
#define ADDI(d, a, i) i_type(i, a, 0, d, 0x13)
#define CSRRW(d, csr, a) i_type(csr, a, 1, d, 0x73)
#define CSRRS(d, csr, a) i_type(csr, a, 2, d, 0x73)
#define CSRRC(d, csr, a) i_type(csr, a, 3, d, 0x73)
#define SFENCE_VMA 0x12000073u
#define WFI 0x10500073u

static machine_t *mach;
static hart_t *hart;
static uint64_t at;
static uint64_t pt_next, root;
static int levels;

static void *gpa(uint64_t pa)
{
	return mach->ram.host + (pa - MEM_RAM_BASE);
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

static void emit(uint32_t insn)
{
	memcpy(gpa(at), &insn, 4);
	ram_mark_dirty(&mach->ram, at, 4);
	at += 4;
}

static uint64_t pt_alloc(void)
{
	uint64_t p = pt_next;

	pt_next += 4096;
	memset(gpa(p), 0, 4096);
	ram_mark_dirty(&mach->ram, p, 4096);
	return p;
}

/* Physical address of the PTE for va at level, creating tables above. */
static uint64_t pte_addr(uint64_t va, int level)
{
	uint64_t table = root;

	for (int l = levels - 1; l > level; l--) {
		uint64_t a = table + ((va >> (12 + 9 * l)) & 511) * 8;
		uint64_t pte = rd64(a);

		if (!(pte & PTE_V)) {
			pte = (pt_alloc() >> 12) << 10 | PTE_V;
			wr64(a, pte);
		}
		table = (pte >> 10) << 12;
	}
	return table + ((va >> (12 + 9 * level)) & 511) * 8;
}

static void map(uint64_t va, uint64_t pa, int level, uint64_t flags)
{
	wr64(pte_addr(va, level), (pa >> 12) << 10 | flags);
}

/* Starts a fresh page table of the given mode with the RAM gigapage
 * identity-mapped (supervisor RWX) so S-mode code runs at CODE. */
static void new_table(unsigned mode)
{
	levels = mode == 9 ? 4 : 3;
	pt_next = PT_POOL;
	root = pt_alloc();
	map(MEM_RAM_BASE, MEM_RAM_BASE, 2, RWX);
	hart->s.satp = (uint64_t)mode << 60 | root >> 12;
	hart_tlb_flush(hart);
}

static int setup(void **state)
{
	char err[256];

	(void)state;
	mach = calloc(1, sizeof(*mach));
	if (!mach || machine_init(mach, RAM_SIZE, 1, err, sizeof(err)))
		return -1;
	hart = &mach->harts[0];
	/* M-mode trap handler: mask interrupts, park with pc = MTRAP + 8 */
	at = MTRAP;
	emit(CSRRW(0, CSR_MIE, 0));
	emit(WFI);
	emit(i_type(0, 0, 0, 0, 0x6f) | 0xffdff000);	/* j -4 */
	hart->s.mtvec = MTRAP;
	new_table(8);
	hart->s.priv = PRV_S;
	hart_tlb_flush(hart);
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

static void run(void)
{
	for (int i = 0; i < 100 && !hart->s.wfi; i++)
		hart_run(hart, 100000);
	assert_true(hart->s.wfi);
}

/* Runs the code emitted since pc in S-mode; wfi ends it. */
static void run_from(uint64_t pc, unsigned priv)
{
	hart->s.wfi = 0;
	hart->s.pc = pc;
	hart->s.priv = (uint8_t)priv;
	hart_tlb_flush(hart);
	run();
}

static void assert_fault(uint64_t cause, uint64_t tval, uint64_t epc)
{
	assert_int_equal(hart->s.priv, PRV_M);
	assert_int_equal(hart->s.mcause, cause);
	assert_int_equal(hart->s.mtval, tval);
	assert_int_equal(hart->s.mepc, epc);
	assert_int_equal(hart->s.pc, MTRAP + 8);
}

static void assert_no_fault(void)
{
	assert_int_not_equal(hart->s.pc, MTRAP + 8);
	assert_int_equal(hart->s.mcause, 0);
}

/* ---- translation ---- */

static void test_sv39_levels(void **state)
{
	(void)state;
	map(0x40000000, DATA, 0, RW);			/* 4 KiB */
	map(0x40200000, BIG, 1, RW);			/* 2 MiB */
	map(0x00000000, MEM_RAM_BASE, 2, RW);		/* 1 GiB */
	map(0xffffffc000000000ull, DATA + 0x1000, 0, RW);	/* top half */
	wr64(DATA + 0x10, 0x1111);
	wr64(BIG + 0x1238, 0x2222);
	wr64(MEM_RAM_BASE + 0x300008, 0x3333);
	wr64(DATA + 0x17f8, 0x4444);
	hart->s.x[S0] = 0x40000000;
	hart->s.x[S1] = 0x40200000;
	hart->s.x[T0] = 0x300000;
	hart->s.x[T1] = 0xffffffc000000000ull;
	emit(LD(A0, S0, 0x10));
	emit(LD(A1, S1, 0x238));
	emit(ADDI(S1, S1, 0x7ff));
	emit(ADDI(S1, S1, 0x7ff));
	emit(ADDI(S1, S1, 2));
	emit(LD(A1, S1, 0x238));			/* BIG + 0x1238 */
	emit(LD(A2, T0, 8));
	emit(LD(A3, T1, 0x7f8));
	emit(ADDI(A4, 0, 0x55));
	emit(SD(A4, T1, 0x7f0));
	emit(WFI);
	run_from(CODE, PRV_S);
	assert_no_fault();
	assert_int_equal(hart->s.x[A0], 0x1111);
	assert_int_equal(hart->s.x[A1], 0x2222);
	assert_int_equal(hart->s.x[A2], 0x3333);
	assert_int_equal(hart->s.x[A3], 0x4444);
	assert_int_equal(rd64(DATA + 0x1000 + 0x7f0), 0x55);
}

static void test_sv48_levels(void **state)
{
	(void)state;
	new_table(9);
	map(0x40000000, DATA, 0, RW);
	map(0x8000000000ull, 0, 3, RW);		/* 512 GiB at PA 0 */
	map(0xffff800000000000ull, DATA + 0x2000, 0, RW);
	wr64(DATA + 0x10, 0x1111);
	wr64(MEM_RAM_BASE + 0x300000, 0x2222);
	wr64(DATA + 0x2008, 0x3333);
	hart->s.x[S0] = 0x40000000;
	hart->s.x[S1] = 0x8000000000ull + MEM_RAM_BASE + 0x300000;
	hart->s.x[T0] = 0xffff800000000000ull;
	emit(LD(A0, S0, 0x10));
	emit(LD(A1, S1, 0));
	emit(LD(A2, T0, 8));
	emit(WFI);
	run_from(CODE, PRV_S);
	assert_no_fault();
	assert_int_equal(hart->s.x[A0], 0x1111);
	assert_int_equal(hart->s.x[A1], 0x2222);
	assert_int_equal(hart->s.x[A2], 0x3333);

	/* Sv39-canonical but not Sv48-canonical is not an issue here; a
	 * non-canonical Sv48 address faults. */
	hart->s.x[S0] = 0x0000800000000000ull;
	at = CODE;
	emit(LD(A0, S0, 0));
	run_from(CODE, PRV_S);
	assert_fault(13, 0x0000800000000000ull, CODE);
}

static void test_access_dirty_bits(void **state)
{
	uint64_t pte = pte_addr(0x40000000, 0);

	(void)state;
	map(0x40000000, DATA, 0, PTE_V | PTE_R | PTE_W);
	map(0x40001000, DATA + 0x1000, 0, PTE_V | PTE_R | PTE_W);
	hart->s.x[S0] = 0x40000000;
	hart->s.x[S1] = 0x40001000;
	emit(LD(A0, S0, 0));
	emit(WFI);
	run_from(CODE, PRV_S);
	assert_int_equal(rd64(pte) & (PTE_A | PTE_D), PTE_A);
	emit(SD(A0, S0, 8));
	emit(WFI);
	run_from(at - 8, PRV_S);
	assert_int_equal(rd64(pte) & (PTE_A | PTE_D), PTE_A | PTE_D);
	/* a store to a fresh page sets both at once */
	emit(SW(A0, S1, 0));
	emit(WFI);
	run_from(at - 8, PRV_S);
	assert_no_fault();
	assert_int_equal(rd64(pte + 8) & (PTE_A | PTE_D), PTE_A | PTE_D);
}

/*
 * Runs one S-mode insn at CODE and expects a fault; for fetch faults the
 * trap is taken at the jump target (tval), else at the insn.
 */
static void expect_fault(uint32_t insn, uint64_t cause, uint64_t tval)
{
	bool fetch = cause == 1 || cause == 12;

	at = CODE;
	emit(insn);
	emit(WFI);
	hart->s.mcause = 0;
	run_from(CODE, PRV_S);
	assert_fault(cause, tval, fetch ? tval : CODE);
}

static void expect_ok(uint32_t insn, unsigned priv)
{
	at = CODE;
	emit(insn);
	emit(WFI);
	hart->s.mcause = 0;
	run_from(CODE, priv);
	assert_no_fault();
}

static void test_page_faults(void **state)
{
	(void)state;
	hart->s.x[S0] = 0x40000000;
	/* not mapped */
	expect_fault(LD(A0, S0, 8), 13, 0x40000008);
	expect_fault(SD(A0, S0, 16), 15, 0x40000010);
	expect_fault(JALR(RA, S0, 4), 12, 0x40000004);
	/* W without R is reserved */
	map(0x40000000, DATA, 0, PTE_V | PTE_W | PTE_A | PTE_D);
	hart_tlb_flush(hart);
	expect_fault(LD(A0, S0, 0), 13, 0x40000000);
	expect_fault(SD(A0, S0, 0), 15, 0x40000000);
	/* read-only */
	map(0x40000000, DATA, 0, PTE_V | PTE_R | PTE_A | PTE_D);
	expect_ok(LD(A0, S0, 0), PRV_S);
	expect_fault(SD(A0, S0, 0), 15, 0x40000000);
	/* not executable */
	expect_fault(JALR(RA, S0, 0), 12, 0x40000000);
	/* reserved PTE bits 63:54 (PBMT without Svpbmt) */
	map(0x40000000, DATA, 0, RW | 1ull << 61);
	expect_fault(LD(A0, S0, 0), 13, 0x40000000);
	/* a non-leaf PTE at the last level */
	map(0x40000000, DATA, 0, PTE_V);
	expect_fault(LD(A0, S0, 0), 13, 0x40000000);
	/* misaligned superpage */
	map(0x40200000, BIG + 0x1000, 1, RW);
	hart->s.x[S1] = 0x40200000;
	expect_fault(LD(A0, S1, 0), 13, 0x40200000);
	/* non-canonical Sv39 address */
	hart->s.x[S1] = 0x0000004000000000ull;
	expect_fault(LD(A0, S1, 0), 13, 0x0000004000000000ull);
	hart->s.x[S1] = 0xff00000000000000ull;
	expect_fault(SD(A0, S1, 0), 15, 0xff00000000000000ull);
}

static void test_access_faults(void **state)
{
	(void)state;
	hart->s.x[S0] = 0x40000000;
	/* leaf pointing at nothing (no RAM, no device) */
	map(0x40000000, 0x40000000, 0, RWX);
	expect_fault(LD(A0, S0, 0), 5, 0x40000000);
	expect_fault(SD(A0, S0, 8), 7, 0x40000008);
	expect_fault(JALR(RA, S0, 0), 1, 0x40000000);
	/* a page-table pointer to nowhere: access fault of the access type */
	wr64(pte_addr(0x40000000, 1), (0x40000000ull >> 12) << 10 | PTE_V);
	expect_fault(LD(A0, S0, 0), 5, 0x40000000);
	expect_fault(SD(A0, S0, 0), 7, 0x40000000);
}

static void test_sum_mxr(void **state)
{
	(void)state;
	map(0x40000000, DATA, 0, RW | PTE_U);
	map(0x40001000, DATA + 0x1000, 0, PTE_V | PTE_X | PTE_A);
	map(0x40002000, UCODE, 0, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A);
	wr64(DATA, 0x77);
	wr64(DATA + 0x1000, 0x88);
	hart->s.x[S0] = 0x40000000;
	hart->s.x[S1] = 0x40001000;
	hart->s.x[T0] = SSTATUS_SUM;
	hart->s.x[T1] = SSTATUS_MXR;
	/* S touching a U page without SUM */
	expect_fault(LD(A0, S0, 0), 13, 0x40000000);
	/* with SUM, then SUM cleared again without any fence: the cached
	 * translation must not survive the change */
	at = CODE;
	emit(CSRRS(0, CSR_SSTATUS, T0));
	emit(LD(A0, S0, 0));
	emit(SD(A0, S0, 8));
	emit(CSRRC(0, CSR_SSTATUS, T0));
	emit(LD(A1, S0, 0));
	emit(WFI);
	hart->s.x[A1] = 0;
	run_from(CODE, PRV_S);
	assert_fault(13, 0x40000000, CODE + 16);
	assert_int_equal(hart->s.x[A0], 0x77);
	assert_int_equal(hart->s.x[A1], 0);
	assert_int_equal(rd64(DATA + 8), 0x77);
	/* S never executes U pages, SUM or not */
	hart->s.mstatus |= SSTATUS_SUM;
	hart->s.x[S0] = 0x40002000;
	expect_fault(JALR(RA, S0, 0), 12, 0x40002000);
	hart->s.mstatus &= ~SSTATUS_SUM;
	/* execute-only page: load faults unless MXR */
	expect_fault(LD(A0, S1, 0), 13, 0x40001000);
	at = CODE;
	emit(CSRRS(0, CSR_SSTATUS, T1));
	emit(LD(A0, S1, 0));
	emit(CSRRC(0, CSR_SSTATUS, T1));
	emit(LD(A1, S1, 0));
	emit(WFI);
	run_from(CODE, PRV_S);
	assert_fault(13, 0x40001000, CODE + 12);
	assert_int_equal(hart->s.x[A0], 0x88);
}

static void test_user_mode(void **state)
{
	uint64_t save;

	(void)state;
	map(0x40000000, DATA, 0, RW | PTE_U);
	map(0x40001000, DATA + 0x1000, 0, RW);		/* supervisor */
	map(0x40002000, UCODE, 0, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A);
	wr64(DATA, 0x99);
	hart->s.x[S0] = 0x40000000;
	hart->s.x[S1] = 0x40001000;
	save = at;
	at = UCODE;
	emit(LD(A0, S0, 0));		/* U page: fine */
	emit(LD(A1, S1, 0));		/* S page: fault */
	at = save;
	run_from(0x40002000, PRV_U);
	assert_int_equal(hart->s.x[A0], 0x99);
	assert_fault(13, 0x40001000, 0x40002004);
	assert_int_equal((hart->s.mstatus >> 11) & 3, PRV_U);
	/* U cannot execute supervisor pages */
	hart->s.mcause = 0;
	run_from(CODE, PRV_U);
	assert_fault(12, CODE, CODE);
}

static void test_mprv(void **state)
{
	(void)state;
	map(0x40000000, DATA, 0, RW);
	wr64(DATA, 0xabc);
	hart->s.x[S0] = 0x40000000;
	hart->s.x[S1] = DATA;
	/* M-mode with MPRV and MPP = S: loads and stores translate, fetches
	 * do not */
	hart->s.mstatus |= MSTATUS_MPRV | (1ull << 11);
	at = CODE;
	emit(LD(A0, S0, 0));
	emit(SD(A0, S0, 8));
	emit(WFI);
	run_from(CODE, PRV_M);
	assert_int_equal(hart->s.x[A0], 0xabc);
	assert_int_equal(rd64(DATA + 8), 0xabc);
	/* MPP = M: physical again (0x40000000 is nothing) */
	hart->s.mstatus |= 3ull << 11;
	hart->s.mcause = 0;
	run_from(CODE, PRV_M);
	assert_int_equal(hart->s.mcause, 5);
	assert_int_equal(hart->s.mtval, 0x40000000);
	/* The trap set MPP to M; clear MPRV */
	hart->s.mstatus &= ~MSTATUS_MPRV;
	hart->s.x[S0] = DATA;
	run_from(CODE, PRV_M);
	assert_int_equal(hart->s.x[A0], 0xabc);
}

static void test_sfence_and_satp(void **state)
{
	(void)state;
	map(0x40000000, DATA, 0, RW);
	wr64(DATA, 1);
	wr64(DATA + 0x1000, 2);
	hart->s.x[S0] = 0x40000000;
	at = CODE;
	emit(LD(A0, S0, 0));
	emit(WFI);
	emit(SFENCE_VMA);
	emit(LD(A1, S0, 0));
	emit(WFI);
	run_from(CODE, PRV_S);
	assert_int_equal(hart->s.x[A0], 1);
	/* remap behind the TLB's back, then sfence.vma */
	map(0x40000000, DATA + 0x1000, 0, RW);
	hart->s.wfi = 0;
	run();
	assert_int_equal(hart->s.x[A1], 2);

	/* an unsupported satp mode is ignored as a whole (4.1.11) */
	hart->s.x[T0] = 10ull << 60 | 0x1234;
	at = CODE;
	emit(CSRRW(0, CSR_SATP, T0));
	emit(CSRRS(A0, CSR_SATP, 0));
	emit(WFI);
	uint64_t old = hart->s.satp;
	run_from(CODE, PRV_S);
	assert_int_equal(hart->s.x[A0], old);
	/* satp = 0 (bare) from S: identity from then on */
	at = CODE;
	hart->s.x[S0] = DATA + 0x1000;
	emit(CSRRW(0, CSR_SATP, 0));
	emit(LD(A0, S0, 0));
	emit(WFI);
	run_from(CODE, PRV_S);
	assert_int_equal(hart->s.satp, 0);
	assert_int_equal(hart->s.x[A0], 2);
	/* sfence.vma from U is illegal */
	new_table(8);
	map(0x40002000, UCODE, 0, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A);
	at = UCODE;
	emit(SFENCE_VMA);
	run_from(0x40002000, PRV_U);
	assert_fault(2, SFENCE_VMA, 0x40002000);
}

static void test_page_crossing(void **state)
{
	(void)state;
	/* two virtual neighbours on physical pages in reverse order */
	map(0x40001000, DATA + 0x3000, 0, RW);
	map(0x40002000, DATA + 0x1000, 0, RW);
	wr64(DATA + 0x3ff8, 0x0706050403020100ull);
	wr64(DATA + 0x1000, 0x0f0e0d0c0b0a0908ull);
	hart->s.x[S0] = 0x40001ffc;
	hart->s.x[T0] = 0x1122334455667788ull;
	at = CODE;
	emit(LD(A0, S0, 0));		/* 04 05 06 07 | 08 09 0a 0b */
	emit(LW(A1, S0, 2));		/* 06 07 | 08 09 */
	emit(SD(T0, S0, -2));		/* 0x40001ffa .. 0x40002001 */
	emit(WFI);
	run_from(CODE, PRV_S);
	assert_no_fault();
	assert_int_equal(hart->s.x[A0], 0x0b0a090807060504ull);
	assert_int_equal(hart->s.x[A1], 0x09080706);
	assert_int_equal(rd64(DATA + 0x3ff8), 0x3344556677880100ull);
	assert_int_equal(rd64(DATA + 0x1000), 0x0f0e0d0c0b0a1122ull);

	/* second page unmapped: tval is the address in that page, and the
	 * first page is left alone */
	map(0x40002000, 0, 0, 0);
	expect_fault(SD(T0, S0, 0), 15, 0x40002000);
	assert_int_equal(rd64(DATA + 0x3ff8), 0x3344556677880100ull);
	expect_fault(LD(A0, S0, 0), 13, 0x40002000);
	/* second page read-only: store faults, load works */
	map(0x40002000, DATA + 0x1000, 0, PTE_V | PTE_R | PTE_A);
	expect_fault(SD(T0, S0, 0), 15, 0x40002000);
	expect_ok(LD(A0, S0, 0), PRV_S);
}

static void test_fetch_crossing(void **state)
{
	uint64_t insn_va = 0x40002ffe;
	uint32_t insn = ADDI(A0, 0, 123);
	uint16_t half[2];

	(void)state;
	/* a 32-bit instruction split over two pages */
	map(0x40002000, DATA + 0x5000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
	map(0x40003000, DATA + 0x2000, 0, PTE_V | PTE_R | PTE_X | PTE_A);
	memcpy(half, &insn, 4);
	memcpy(gpa(DATA + 0x5ffe), &half[0], 2);
	ram_mark_dirty(&mach->ram, DATA + 0x5ffe, 2);
	memcpy(gpa(DATA + 0x2000), &half[1], 2);
	ram_mark_dirty(&mach->ram, DATA + 0x2000, 2);
	wr64(DATA + 0x2002, 0);
	memcpy(gpa(DATA + 0x2002), &(uint32_t){ WFI }, 4);
	ram_mark_dirty(&mach->ram, DATA + 0x2002, 4);
	run_from(insn_va, PRV_S);
	assert_no_fault();
	assert_int_equal(hart->s.x[A0], 123);
	assert_int_equal(hart->s.pc, 0x40003006);
	/* the second page not executable: fault names its address */
	map(0x40003000, DATA + 0x2000, 0, PTE_V | PTE_R | PTE_A);
	run_from(insn_va, PRV_S);
	assert_fault(12, 0x40003000, insn_va);
}

/* ---- dirty logging ---- */

static bool page_bit(const uint64_t *map_, uint64_t pa)
{
	uint64_t pfn = (pa - MEM_RAM_BASE) >> 12;

	return (map_[pfn / 64] >> (pfn % 64)) & 1;
}

static void test_dirty_log(void **state)
{
	uint64_t *bits = calloc(mach->ram.npages / 64 + 1, 8);
	uint64_t pte = pte_addr(0x40000000, 0);

	(void)state;
	assert_non_null(bits);
	map(0x40000000, DATA, 0, PTE_V | PTE_R | PTE_W);	/* A, D clear */
	hart->s.x[S0] = 0x40000000;
	at = CODE;
	emit(SD(S0, S0, 0));
	emit(WFI);
	emit(SD(S0, S0, 8));
	emit(WFI);
	ram_log_start(&mach->ram);
	ram_log_harvest(&mach->ram, bits);	/* everything, clears */
	ram_log_harvest(&mach->ram, bits);
	assert_false(page_bit(bits, DATA));
	run_from(CODE, PRV_S);
	ram_log_harvest(&mach->ram, bits);
	assert_true(page_bit(bits, DATA));
	/* the walker's A/D update dirtied the page table page too */
	assert_true(page_bit(bits, pte));
	assert_false(page_bit(bits, DATA + 0x1000));
	/* after a harvest the same page must be marked again: the write TLB
	 * entry from the first store may not be used blindly */
	hart->s.wfi = 0;
	run();
	assert_int_equal(rd64(DATA + 8), 0x40000000);
	ram_log_harvest(&mach->ram, bits);
	assert_true(page_bit(bits, DATA));
	/* and M-mode (bare) stores, through the same path */
	at = CODE + 0x40;
	hart->s.x[S1] = DATA + 0x3008;
	emit(SD(S1, S1, 0));
	emit(WFI);
	run_from(CODE + 0x40, PRV_M);
	ram_log_harvest(&mach->ram, bits);
	assert_true(page_bit(bits, DATA + 0x3000));
	assert_false(page_bit(bits, DATA));
	ram_log_stop(&mach->ram);
	free(bits);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_sv39_levels),
		T(test_sv48_levels),
		T(test_access_dirty_bits),
		T(test_page_faults),
		T(test_access_faults),
		T(test_sum_mxr),
		T(test_user_mode),
		T(test_mprv),
		T(test_sfence_and_satp),
		T(test_page_crossing),
		T(test_fetch_crossing),
		T(test_dirty_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
