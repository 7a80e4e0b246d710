/* SPDX-License-Identifier: MIT */
#ifndef TERN_PLATFORM_H
#define TERN_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "machine/machine.h"

/*
 * Adds the board's fixed devices: PLIC, CLINT, syscon (poweroff/reboot),
 * goldfish RTC and the 16550A UART whose output goes to tx(opaque, ...).
 * Returns 0 or -1 with err set.
 */
int platform_create(machine_t *m,
		    void (*tx)(void *opaque, const uint8_t *buf, size_t len),
		    void *opaque, char *err, size_t errlen);

#endif
