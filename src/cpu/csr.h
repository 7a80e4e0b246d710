/* SPDX-License-Identifier: MIT */
/*
 * Control and status registers (Zicsr; privileged spec v1.12 chapter 2 for
 * the address map and access rules).
 */
#ifndef TERN_CSR_H
#define TERN_CSR_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/hart.h"

enum {
	CSR_FFLAGS = 0x001,
	CSR_FRM = 0x002,
	CSR_FCSR = 0x003,
	CSR_CYCLE = 0xc00,
	CSR_TIME = 0xc01,
	CSR_INSTRET = 0xc02,
	CSR_HPMCOUNTER3 = 0xc03,
	CSR_HPMCOUNTER31 = 0xc1f,

	CSR_SSTATUS = 0x100,
	CSR_SIE = 0x104,
	CSR_STVEC = 0x105,
	CSR_SCOUNTEREN = 0x106,
	CSR_SENVCFG = 0x10a,
	CSR_SSCRATCH = 0x140,
	CSR_SEPC = 0x141,
	CSR_SCAUSE = 0x142,
	CSR_STVAL = 0x143,
	CSR_SIP = 0x144,
	CSR_STIMECMP = 0x14d,
	CSR_SATP = 0x180,

	CSR_MVENDORID = 0xf11,
	CSR_MARCHID = 0xf12,
	CSR_MIMPID = 0xf13,
	CSR_MHARTID = 0xf14,
	CSR_MCONFIGPTR = 0xf15,
	CSR_MSTATUS = 0x300,
	CSR_MISA = 0x301,
	CSR_MEDELEG = 0x302,
	CSR_MIDELEG = 0x303,
	CSR_MIE = 0x304,
	CSR_MTVEC = 0x305,
	CSR_MCOUNTEREN = 0x306,
	CSR_MENVCFG = 0x30a,
	CSR_MCOUNTINHIBIT = 0x320,
	CSR_MHPMEVENT3 = 0x323,
	CSR_MHPMEVENT31 = 0x33f,
	CSR_MSCRATCH = 0x340,
	CSR_MEPC = 0x341,
	CSR_MCAUSE = 0x342,
	CSR_MTVAL = 0x343,
	CSR_MIP = 0x344,
	CSR_PMPCFG0 = 0x3a0,
	CSR_PMPCFG15 = 0x3af,
	CSR_PMPADDR0 = 0x3b0,
	CSR_PMPADDR63 = 0x3ef,
	CSR_MCYCLE = 0xb00,
	CSR_MINSTRET = 0xb02,
	CSR_MHPMCOUNTER3 = 0xb03,
	CSR_MHPMCOUNTER31 = 0xb1f,
};

/* Operations of the CSR instructions: funct3 & 3 */
enum csr_op {
	CSR_OP_RW = 1,		/* CSRRW, CSRRWI */
	CSR_OP_RS = 2,		/* CSRRS, CSRRSI */
	CSR_OP_RC = 3,		/* CSRRC, CSRRCI */
};

/*
 * One CSR instruction (Zicsr): checks privilege, read-only-ness and the
 * per-CSR gates (counter enables, TVM, Sstc, FS), returns the old value in
 * *old and, if write, stores the value op computes from it and src. Returns
 * false when the instruction is illegal; nothing has changed then.
 * h->insns must hold the instructions retired in this hart_run() before
 * this one, for the counters.
 */
bool csr_op(hart_t *h, unsigned csr, enum csr_op op, uint64_t src, bool write,
	    uint64_t *old);

/* Single accesses with the same checks (tests, debuggers). */
bool csr_read(hart_t *h, unsigned csr, uint64_t *val);
bool csr_write(hart_t *h, unsigned csr, uint64_t val);

#endif
