/* SPDX-License-Identifier: MIT */
/*
 * Definitions shared by the pieces of the CPU core (interpreter, MMU, CSRs,
 * trap machinery). Not part of the hart's public interface.
 */
#ifndef TERN_CPU_INTERNAL_H
#define TERN_CPU_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/hart.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* mstatus fields (privileged spec 3.1.6) */
#define MSTATUS_SIE (1ull << 1)
#define MSTATUS_MIE (1ull << 3)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_UBE (1ull << 6)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPP (1ull << 8)
#define MSTATUS_VS (3ull << 9)
#define MSTATUS_MPP_SHIFT 11
#define MSTATUS_MPP (3ull << MSTATUS_MPP_SHIFT)
#define MSTATUS_FS_SHIFT 13
#define MSTATUS_FS (3ull << MSTATUS_FS_SHIFT)
#define MSTATUS_XS (3ull << 15)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM (1ull << 18)
#define MSTATUS_MXR (1ull << 19)
#define MSTATUS_TVM (1ull << 20)
#define MSTATUS_TW (1ull << 21)
#define MSTATUS_TSR (1ull << 22)
#define MSTATUS_UXL (3ull << 32)
#define MSTATUS_SXL (3ull << 34)
#define MSTATUS_SD (1ull << 63)

/* UXL = SXL = 2: XLEN is fixed at 64 in every mode. */
#define MSTATUS_XL64 ((2ull << 32) | (2ull << 34))

/* Fields software can change in mstatus and through sstatus. */
#define MSTATUS_WMASK                                                          \
	(MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE |             \
	 MSTATUS_SPP | MSTATUS_MPP | MSTATUS_FS | MSTATUS_MPRV | MSTATUS_SUM | \
	 MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR)
#define SSTATUS_RMASK                                                          \
	(MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_UBE | MSTATUS_SPP | MSTATUS_VS | \
	 MSTATUS_FS | MSTATUS_XS | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_UXL |   \
	 MSTATUS_SD)
#define SSTATUS_WMASK                                                          \
	(MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM |  \
	 MSTATUS_MXR)

/* misa: MXL = 2 (RV64), extensions A C D F I M S U */
#define MISA_VALUE                                                             \
	((2ull << 62) | (1u << ('A' - 'A')) | (1u << ('C' - 'A')) |            \
	 (1u << ('D' - 'A')) | (1u << ('F' - 'A')) | (1u << ('I' - 'A')) |     \
	 (1u << ('M' - 'A')) | (1u << ('S' - 'A')) | (1u << ('U' - 'A')))

/* Interrupt bits that exist; those S-mode may be delegated. */
#define MIP_ALL (MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP)
#define MIP_S_MASK (MIP_SSIP | MIP_STIP | MIP_SEIP)

/* medeleg: causes 0-9, 12, 13, 15 (ecall from M, 11, cannot be delegated) */
#define MEDELEG_MASK 0xb3ffull

/* menvcfg (privileged spec 3.1.18): FIOM and the Sstc enable */
#define MENVCFG_FIOM (1ull << 0)
#define MENVCFG_STCE (1ull << 63)
#define MENVCFG_MASK (MENVCFG_FIOM | MENVCFG_STCE)
#define SENVCFG_MASK MENVCFG_FIOM

/* satp (privileged spec 4.1.11) */
#define SATP_MODE_SHIFT 60
#define SATP_MODE_BARE 0
#define SATP_MODE_SV39 8
#define SATP_MODE_SV48 9
#define SATP_PPN_MASK ((1ull << 44) - 1)

/* Exception causes (privileged spec table 3.6) */
enum {
	CAUSE_FETCH_MISALIGNED = 0,
	CAUSE_FETCH_ACCESS = 1,
	CAUSE_ILLEGAL_INSN = 2,
	CAUSE_BREAKPOINT = 3,
	CAUSE_LOAD_MISALIGNED = 4,
	CAUSE_LOAD_ACCESS = 5,
	CAUSE_STORE_MISALIGNED = 6,
	CAUSE_STORE_ACCESS = 7,
	CAUSE_ECALL_U = 8,
	CAUSE_ECALL_S = 9,
	CAUSE_ECALL_M = 11,
	CAUSE_FETCH_PAGE_FAULT = 12,
	CAUSE_LOAD_PAGE_FAULT = 13,
	CAUSE_STORE_PAGE_FAULT = 15,
};

#define CAUSE_INTERRUPT (1ull << 63)

/* Interrupt causes */
enum {
	IRQ_S_SOFT = 1,
	IRQ_M_SOFT = 3,
	IRQ_S_TIMER = 5,
	IRQ_M_TIMER = 7,
	IRQ_S_EXT = 9,
	IRQ_M_EXT = 11,
};

/* Records an exception for the interpreter to deliver; returns false. */
static inline bool hart_fault(hart_t *h, uint64_t cause, uint64_t tval)
{
	h->exc_cause = cause;
	h->exc_tval = tval;
	return false;
}

/* mip is also changed by devices: read it once per check. */
static inline uint64_t hart_mip(const hart_t *h)
{
	return __atomic_load_n(&h->s.mip, __ATOMIC_RELAXED);
}

/*
 * Takes a trap (privileged spec 3.1.6.1, 3.1.7, 4.1.1): epc = s.pc, picks M
 * or S by delegation, updates the status stack and jumps to the vector.
 */
void hart_trap(hart_t *h, uint64_t cause, uint64_t tval);

/* Takes the highest-priority deliverable interrupt, if any. */
bool hart_take_interrupt(hart_t *h);

/* Mask of mie bits that would trap now (privilege, MIE/SIE, mideleg). */
uint64_t hart_irq_enabled(const hart_state_t *s);

/*
 * Recomputes everything derived from s: TLB keys, the interrupt mask, and
 * drops the TLBs if satp changed behind the core's back.
 */
void hart_update_derived(hart_t *h);

/* Changes privilege (trap, xRET) and recomputes what depends on it. */
void hart_set_priv(hart_t *h, unsigned priv);

/* Evaluates the Sstc timer: STIP = time >= stimecmp when enabled. */
void hart_update_stip(hart_t *h);

/* MRET / SRET (privileged spec 3.3.2). Return false if illegal. */
bool hart_mret(hart_t *h);
bool hart_sret(hart_t *h);

#endif
