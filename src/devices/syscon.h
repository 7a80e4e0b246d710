/* SPDX-License-Identifier: MIT */
/*
 * Power control through SiFive's "test" finisher (QEMU's sifive_test), the
 * syscon that Linux's syscon-poweroff and syscon-reboot drivers write.
 */
#ifndef TERN_SYSCON_H
#define TERN_SYSCON_H

#include <stdint.h>

#include "machine/machine.h"

#define SYSCON_SIZE 0x1000ull

#define SYSCON_FAIL  0x3333u /* exit code in bits 31:16 */
#define SYSCON_PASS  0x5555u /* power off */
#define SYSCON_RESET 0x7777u

/* No guest-visible state: the register is write-only. */
struct syscon {
	machine_t *m;
	uint64_t base;
};

/* Creates the syscon and registers it. NULL on failure. */
struct syscon *syscon_new(machine_t *m, uint64_t base);

#endif
