/* SPDX-License-Identifier: MIT */
/*
 * SiFive-compatible platform-level interrupt controller (RISC-V PLIC
 * specification 1.0.0), as on QEMU's virt board: level-triggered sources
 * 1..PLIC_NDEV, two contexts per hart (2h = M-mode, 2h+1 = S-mode).
 */
#ifndef TERN_PLIC_H
#define TERN_PLIC_H

#include <stdbool.h>
#include <stdint.h>

#include "machine/machine.h"

#define PLIC_NSRC      64		/* source ids 0..63, 0 means "none" */
#define PLIC_NDEV      (PLIC_NSRC - 1)	/* riscv,ndev */
#define PLIC_WORDS     (PLIC_NSRC / 32) /* 32-bit words of a source bitmap */
#define PLIC_MAX_CTX   (2 * MACHINE_MAX_HARTS)
#define PLIC_PRIO_MASK 7u /* 7 priority levels, as QEMU's virt */
#define PLIC_SIZE      0x600000ull

/* Guest-visible state; a bitmap word w holds sources 32w..32w+31. */
typedef struct plic_state {
	uint32_t priority[PLIC_NSRC];
	uint32_t pending[PLIC_WORDS];
	uint32_t claimed[PLIC_WORDS]; /* in service: gateway closed */
	uint32_t level[PLIC_WORDS];   /* input line levels */
	uint32_t enable[PLIC_MAX_CTX * PLIC_WORDS];
	uint32_t threshold[PLIC_MAX_CTX];
} plic_state_t;

extern const state_desc_t plic_state_desc;

struct plic {
	plic_state_t s;
	machine_t *m;
	uint64_t base;
	unsigned nctx; /* 2 * m->nharts */
};

/* Creates the PLIC, registers it and sets m->plic. NULL on failure. */
struct plic *plic_new(machine_t *m, uint64_t base);

/* Drives input line irq (1..PLIC_NDEV); other numbers are ignored. */
void plic_set_irq(struct plic *p, unsigned irq, bool level);

#endif
