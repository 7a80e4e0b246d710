/* SPDX-License-Identifier: MIT */
/*
 * SiFive core-local interruptor: per-hart software interrupt (msip) and
 * machine timer compare (mtimecmp) registers, and mtime, which reads the
 * machine's virtual clock.
 */
#ifndef TERN_CLINT_H
#define TERN_CLINT_H

#include <stdint.h>

#include "machine/machine.h"

#define CLINT_SIZE 0x10000ull

typedef struct clint_state {
	uint64_t mtimecmp[MACHINE_MAX_HARTS];
	uint32_t msip[MACHINE_MAX_HARTS]; /* bit 0 only */
} clint_state_t;

extern const state_desc_t clint_state_desc;

struct clint {
	clint_state_t s;
	machine_t *m;
	uint64_t base;
};

/* Creates the CLINT, registers it and sets m->clint. NULL on failure. */
struct clint *clint_new(machine_t *m, uint64_t base);

/* Sets MTIP (mtime >= mtimecmp) and MSIP (msip) on every hart. */
void clint_update(struct clint *c);

/*
 * Earliest mtimecmp that has not been reached yet, in ticks, or UINT64_MAX:
 * the next time clint_update() would change a hart's MTIP.
 */
uint64_t clint_next_deadline(const struct clint *c);

#endif
