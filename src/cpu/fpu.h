/* SPDX-License-Identifier: MIT */
/*
 * F and D arithmetic (RISC-V unprivileged spec chapters 20-21): every OP-FP
 * and fused multiply-add instruction. Loads and stores (FLW/FLD/FSW/FSD and
 * their compressed forms) stay in the interpreter, which owns the MMU.
 */
#ifndef TERN_FPU_H
#define TERN_FPU_H

#include <stdint.h>

#include "cpu/hart.h"

/*
 * Executes one 32-bit instruction whose major opcode is OP-FP (0x53),
 * MADD (0x43), MSUB (0x47), NMSUB (0x4b) or NMADD (0x4f). Updates f[], x[],
 * fflags and mstatus.FS (dirty). Returns 0, or -1 when the instruction is
 * illegal (bad rounding mode, reserved encoding, FP disabled): the caller
 * raises an illegal-instruction exception and nothing was changed.
 */
int fpu_exec(hart_t *h, uint32_t insn);

#endif
