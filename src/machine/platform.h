/* SPDX-License-Identifier: MIT */
#ifndef TERN_PLATFORM_H
#define TERN_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "machine/machine.h"

/*
 * Adds the board's fixed devices: PLIC, CLINT, syscon (poweroff/reboot),
 * goldfish RTC, the 16550A UART whose output goes to tx(opaque, ...) and a
 * power button (virtio-input in the last virtio-mmio slot; disks created
 * afterwards still take the slots from 0 up).
 * Returns 0 or -1 with err set.
 */
int platform_create(machine_t *m,
		    void (*tx)(void *opaque, const uint8_t *buf, size_t len),
		    void *opaque, char *err, size_t errlen);

/*
 * Presses the board's power button: the guest is asked to power off (as
 * QEMU's system_powerdown); the guest decides what to do (the default
 * guest's acpid syncs, unmounts and powers off). The press waits in the
 * device when the guest has no input buffers yet. Returns 0, or -1 with
 * err set (no button, or many presses the guest never took).
 */
int platform_powerdown(machine_t *m, char *err, size_t errlen);

#endif
