// SPDX-License-Identifier: MIT
#include "machine/platform.h"

#include <stdio.h>

#include "devices/clint.h"
#include "devices/plic.h"
#include "devices/rtc.h"
#include "devices/syscon.h"
#include "devices/uart.h"

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
	return 0;
}
