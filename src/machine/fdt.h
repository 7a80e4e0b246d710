/* SPDX-License-Identifier: MIT */
#ifndef TERN_FDT_H
#define TERN_FDT_H

#include <stddef.h>
#include <stdint.h>

#include "machine/machine.h"

typedef struct boot_params {
	const char *cmdline;
	uint64_t initrd_start;	/* guest-physical, 0 = none */
	uint64_t initrd_end;
} boot_params_t;

/*
 * Builds the device tree from the machine's harts, RAM and registered
 * devices into m->fdt / m->fdt_size. Returns 0 or -1 with err set.
 */
int fdt_build(machine_t *m, const boot_params_t *bp, char *err, size_t errlen);

#endif
