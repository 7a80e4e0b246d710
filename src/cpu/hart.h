/* SPDX-License-Identifier: MIT */
/*
 * One RV64GC hart: guest-visible state (hart_state_t, plain data described by
 * a state table) plus host-side caches (TLBs) that are rebuilt, never saved.
 */
#ifndef TERN_HART_H
#define TERN_HART_H

#include <stdbool.h>
#include <stdint.h>

#include "machine/state.h"

struct machine;
struct ram;

enum {
	PRV_U = 0,
	PRV_S = 1,
	PRV_M = 3,
};

/* mip / mie bits (privileged spec 3.1.9) */
#define MIP_SSIP (1ull << 1)
#define MIP_MSIP (1ull << 3)
#define MIP_STIP (1ull << 5)
#define MIP_MTIP (1ull << 7)
#define MIP_SEIP (1ull << 9)
#define MIP_MEIP (1ull << 11)

/* Guest-visible state of one hart. Plain data only: saved and migrated. */
typedef struct hart_state {
	uint64_t x[32];
	uint64_t f[32];		/* NaN-boxed single values live here too */
	uint64_t pc;
	uint64_t mstatus;
	uint64_t misa;
	uint64_t medeleg;
	uint64_t mideleg;
	uint64_t mie;
	uint64_t mip;
	uint64_t mtvec;
	uint64_t mscratch;
	uint64_t mepc;
	uint64_t mcause;
	uint64_t mtval;
	uint64_t mcounteren;
	uint64_t menvcfg;
	uint64_t stvec;
	uint64_t sscratch;
	uint64_t sepc;
	uint64_t scause;
	uint64_t stval;
	uint64_t satp;
	uint64_t scounteren;
	uint64_t senvcfg;
	uint64_t stimecmp;	/* Sstc; also the SBI set_timer target */
	uint64_t mcycle;
	uint64_t minstret;
	uint64_t mhartid;
	uint64_t reservation;	/* LR/SC reserved address, ~0 = none */
	uint32_t fcsr;		/* frm << 5 | fflags */
	uint8_t priv;		/* PRV_U, PRV_S or PRV_M */
	uint8_t wfi;		/* waiting for an interrupt */
	uint8_t pad[2];
} hart_state_t;

extern const state_desc_t hart_state_desc;

/*
 * Software TLB: direct-mapped, indexed by virtual page number. The tag is the
 * page's virtual address with a key in its low bits (privilege, SUM, MXR; see
 * cpu/mmu.h), so a hit is one compare and changing privilege needs no flush.
 */
#define TLB_SIZE 256

typedef struct tlb_entry {
	uint64_t tag;		/* page vaddr | key, ~0 = invalid */
	uintptr_t addend;	/* host address = guest vaddr + addend */
} tlb_entry_t;

typedef struct hart {
	hart_state_t s;

	/* Host-side, rebuilt after load; never saved. */
	struct machine *m;
	struct ram *ram;
	tlb_entry_t tlb_read[TLB_SIZE];
	tlb_entry_t tlb_write[TLB_SIZE];
	tlb_entry_t tlb_code[TLB_SIZE];
	uint64_t ram_generation;	/* last ram->generation seen */
	bool sbi_builtin;		/* ECALL from S-mode goes to sbi_ecall() */
	bool stop;			/* leave hart_run() at the next boundary */
	uint64_t insns;			/* executed in the current hart_run() */

	/* Derived from s by the CPU core; recomputed, never saved. */
	uint64_t irq_mask;	/* mie bits deliverable at the current priv */
	uint64_t tlb_key_data;	/* TLB tag key for loads and stores */
	uint64_t tlb_key_code;	/* TLB tag key for instruction fetch */
	uint64_t tlb_satp;	/* satp the TLBs were filled under */
	/* Exception raised by a slow path, delivered by the interpreter. */
	uint64_t exc_cause;
	uint64_t exc_tval;
} hart_t;

/* Sets up the hart at reset: M-mode, pc = reset_pc, misa = RV64IMAFDC+SU. */
void hart_init(hart_t *h, struct machine *m, struct ram *ram, uint64_t hartid);

/*
 * Runs until about `budget` instructions have executed, the hart enters WFI
 * with nothing pending, or h->stop is set. Returns instructions executed.
 */
uint64_t hart_run(hart_t *h, uint64_t budget);

/* Sets or clears bits of mip (device lines: MTIP, MSIP, SEIP, MEIP, STIP). */
void hart_set_mip(hart_t *h, uint64_t mask, bool level);

/* True when an interrupt is pending and enabled at the current privilege. */
bool hart_irq_pending(const hart_t *h);

/* Drops all cached translations (satp write, sfence.vma, state load). */
void hart_tlb_flush(hart_t *h);

/* Value of the time CSR (from the machine's virtual clock). */
uint64_t hart_time(const hart_t *h);

#endif
