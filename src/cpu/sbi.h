/* SPDX-License-Identifier: MIT */
/*
 * The SBI firmware, implemented by tern itself: an ECALL from S-mode is
 * answered here as M-mode firmware would (SBI spec v2.0: base, TIME, IPI,
 * RFENCE, HSM, SRST and the legacy console putchar/getchar).
 */
#ifndef TERN_SBI_H
#define TERN_SBI_H

#include "cpu/hart.h"

/*
 * Handles the ECALL in a7/a6/a0..a5, writes a0/a1. The caller advances pc
 * past the ecall afterwards.
 */
void sbi_ecall(hart_t *h);

#endif
