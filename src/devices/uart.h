/* SPDX-License-Identifier: MIT */
/*
 * NS16550A UART: the console. Transmitted bytes go straight to the host
 * callback; received bytes are pushed in by the host as the FIFO has room.
 */
#ifndef TERN_UART_H
#define TERN_UART_H

#include <stddef.h>
#include <stdint.h>

#include "machine/machine.h"

#define UART_SIZE      0x100ull
#define UART_FIFO_SIZE 16
#define UART_CLOCK_HZ  3686400u /* as QEMU's virt board advertises */

/* Guest-visible state. */
typedef struct uart_state {
	uint8_t rx_fifo[UART_FIFO_SIZE];
	uint8_t rx_head;  /* index of the oldest byte */
	uint8_t rx_count; /* bytes held, <= 16 (<= 1 with FIFOs off) */
	uint8_t ier;
	uint8_t fcr; /* FE, DMA mode and RX trigger bits */
	uint8_t lcr;
	uint8_t mcr;
	uint8_t lsr; /* sticky error bits only; DR/THRE computed */
	uint8_t scr;
	uint8_t dll;
	uint8_t dlm;
	uint8_t thr_ipending; /* THR-empty interrupt armed */
	uint8_t pad[5];
} uart_state_t;

extern const state_desc_t uart_state_desc;

typedef void uart_tx_fn(void *opaque, const uint8_t *buf, size_t len);

struct uart {
	uart_state_t s;
	machine_t *m;
	uint64_t base;
	unsigned irq;
	uart_tx_fn *tx;
	void *opaque;
};

/*
 * Creates the UART on PLIC source irq, registers it and sets m->uart. tx
 * receives every byte the guest transmits. NULL on failure.
 */
struct uart *uart_new(machine_t *m, uint64_t base, unsigned irq,
		      void (*tx)(void *opaque, const uint8_t *buf, size_t len),
		      void *opaque);

/* Bytes the receiver can take now. */
size_t uart_rx_space(const struct uart *u);

/* Queues received bytes; returns how many were accepted (<= rx_space). */
size_t uart_rx_push(struct uart *u, const uint8_t *buf, size_t len);

#endif
