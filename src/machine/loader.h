/* SPDX-License-Identifier: MIT */
#ifndef TERN_LOADER_H
#define TERN_LOADER_H

#include <stddef.h>

#include "machine/machine.h"

typedef struct boot_config {
	const char *kernel;	/* RISC-V Linux Image */
	const char *initrd;	/* NULL = none */
	const char *cmdline;
} boot_config_t;

/*
 * Loads the kernel and initrd into RAM, builds the device tree and puts the
 * harts into the state the Linux RISC-V boot protocol expects (S-mode,
 * a0 = hartid, a1 = device tree, firmware services from tern's SBI).
 * Returns 0 or -1 with a one-line reason in err.
 */
int loader_boot(machine_t *m, const boot_config_t *bc, char *err, size_t errlen);

#endif
