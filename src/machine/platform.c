// SPDX-License-Identifier: MIT
#include "machine/platform.h"

#include <stdio.h>

#include "devices/clint.h"
#include "devices/plic.h"
#include "devices/rtc.h"
#include "devices/syscon.h"
#include "devices/uart.h"
#include "devices/virtio_input.h"

int platform_create(machine_t *m,
		    void (*tx)(void *opaque, const uint8_t *buf, size_t len),
		    void *opaque, char *err, size_t errlen)
{
	m->console_tx = tx;
	m->console_opaque = opaque;
	if (!plic_new(m, MEM_PLIC_BASE) || !clint_new(m, MEM_CLINT_BASE) ||
	    !syscon_new(m, MEM_SYSCON_BASE) || !rtc_new(m, MEM_RTC_BASE, IRQ_RTC) ||
	    !uart_new(m, MEM_UART_BASE, IRQ_UART, tx, opaque)) {
		snprintf(err, errlen, "cannot create the platform devices");
		return -1;
	}
	/*
	 * The power button (virtio-input) takes the last virtio-mmio slot, so
	 * the disks created after the board keep slots 0, 1, ... and the
	 * guest still names them vda, vdb, ...
	 */
	if (!virtio_input_new(m, VIRTIO_INPUT_POWER_SLOT, err, errlen))
		return -1;
	return 0;
}

int platform_powerdown(machine_t *m, char *err, size_t errlen)
{
	struct virtio_input *in = virtio_input_find(m);

	if (!in) {
		snprintf(err, errlen, "this machine has no power button");
		return -1;
	}
	return virtio_input_press(in, INPUT_KEY_POWER, err, errlen);
}
