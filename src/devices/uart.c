// SPDX-License-Identifier: MIT
/*
 * NS16550A UART (National Semiconductor PC16550D data sheet), with the
 * behaviour QEMU's serial model has where the data sheet leaves room:
 *
 * - Transmission is instantaneous: a THR write hands the byte to the host at
 *   once, so THRE and TEMT always read 1 and the THR-empty interrupt is
 *   re-armed after every write. As in QEMU (and Bochs), setting IER.ETBEI
 *   re-arms it too, which Linux's 8250 driver checks at startup; reading IIR
 *   while it reports THR empty clears it (data sheet, table IV).
 * - The receive FIFO holds 16 bytes (1 with FIFOs disabled); the host only
 *   pushes what fits, so overruns do not happen. The character timeout is
 *   simplified: data below the trigger level reports "character timeout"
 *   immediately, data at or above it "received data available".
 * - The interrupt line goes straight to the PLIC (MCR.OUT2 does not gate it,
 *   as on QEMU's virt board).
 */
#include "devices/uart.h"

#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	UART_RBR_THR = 0, /* DLL when LCR.DLAB */
	UART_IER = 1,	  /* DLM when LCR.DLAB */
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define IER_RDI	 0x01 /* received data available */
#define IER_THRI 0x02 /* THR empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MASK 0x0f

#define IIR_NO_INT  0x01
#define IIR_THRI    0x02
#define IIR_RDI	    0x04
#define IIR_RLSI    0x06
#define IIR_CTI	    0x0c
#define IIR_FIFO_ON 0xc0

#define FCR_FE	 0x01
#define FCR_RFR	 0x02 /* clear receive FIFO */
#define FCR_XFR	 0x04 /* clear transmit FIFO */
#define FCR_KEEP 0xc9 /* FE, DMA mode, RX trigger level */

#define LCR_DLAB 0x80

#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR	   0x01
#define LSR_OE	   0x02
#define LSR_ERRORS 0x1e /* OE, PE, FE, BI: cleared by reading LSR */
#define LSR_THRE   0x20
#define LSR_TEMT   0x40

#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI	0x40
#define MSR_DCD 0x80

static unsigned uart_capacity(const uart_state_t *s)
{
	return s->fcr & FCR_FE ? UART_FIFO_SIZE : 1;
}

static int uart_check(const void *obj, char *err, size_t errlen)
{
	const uart_state_t *s = obj;

	if (s->rx_head >= UART_FIFO_SIZE || s->rx_count > uart_capacity(s)) {
		snprintf(err, errlen, "uart: bad rx fifo head %u count %u",
			 s->rx_head, s->rx_count);
		return -1;
	}
	if (s->ier & ~IER_MASK || s->mcr & ~MCR_MASK || s->fcr & ~FCR_KEEP ||
	    s->lsr & ~LSR_ERRORS || s->thr_ipending > 1) {
		snprintf(err, errlen, "uart: bad register value");
		return -1;
	}
	return 0;
}

static const state_field_t uart_fields[] = {
	STATE_U8_ARRAY(uart_state_t, rx_fifo),
	STATE_U8(uart_state_t, rx_head),
	STATE_U8(uart_state_t, rx_count),
	STATE_U8(uart_state_t, ier),
	STATE_U8(uart_state_t, fcr),
	STATE_U8(uart_state_t, lcr),
	STATE_U8(uart_state_t, mcr),
	STATE_U8(uart_state_t, lsr),
	STATE_U8(uart_state_t, scr),
	STATE_U8(uart_state_t, dll),
	STATE_U8(uart_state_t, dlm),
	STATE_U8(uart_state_t, thr_ipending),
};

const state_desc_t uart_state_desc = {
	.name = "uart",
	.version = 1,
	.min_version = 1,
	.size = sizeof(uart_state_t),
	.fields = uart_fields,
	.nfields = STATE_NFIELDS(uart_fields),
	.check = uart_check,
};

/* Highest-priority pending interrupt, as IIR bits 3:0 (data sheet table IV). */
static uint8_t uart_iir_id(const uart_state_t *s)
{
	static const uint8_t trigger[4] = {1, 4, 8, 14};

	if (s->ier & IER_RLSI && s->lsr & LSR_ERRORS)
		return IIR_RLSI;
	if (s->ier & IER_RDI && s->rx_count) {
		if (s->fcr & FCR_FE && s->rx_count < trigger[s->fcr >> 6])
			return IIR_CTI;
		return IIR_RDI;
	}
	if (s->ier & IER_THRI && s->thr_ipending)
		return IIR_THRI;
	/* Modem status never changes: no delta bits, no MSI. */
	return IIR_NO_INT;
}

static void uart_update_irq(struct uart *u)
{
	machine_set_irq(u->m, u->irq, uart_iir_id(&u->s) != IIR_NO_INT);
}

static void uart_rx_put(uart_state_t *s, uint8_t b)
{
	s->rx_fifo[(s->rx_head + s->rx_count) % UART_FIFO_SIZE] = b;
	s->rx_count++;
}

size_t uart_rx_space(const struct uart *u)
{
	unsigned cap = uart_capacity(&u->s);

	return u->s.rx_count < cap ? cap - u->s.rx_count : 0;
}

size_t uart_rx_push(struct uart *u, const uint8_t *buf, size_t len)
{
	size_t n = uart_rx_space(u);

	if (n > len)
		n = len;
	for (size_t i = 0; i < n; i++)
		uart_rx_put(&u->s, buf[i]);
	if (n)
		uart_update_irq(u);
	return n;
}

static uint8_t uart_msr(const uart_state_t *s)
{
	uint8_t mcr = s->mcr;

	/* Loopback wires DTR, RTS, OUT1, OUT2 to DSR, CTS, RI, DCD. */
	if (mcr & MCR_LOOP)
		return (uint8_t)((mcr & 0x01 ? MSR_DSR : 0) |
				 (mcr & 0x02 ? MSR_CTS : 0) |
				 (mcr & 0x04 ? MSR_RI : 0) |
				 (mcr & 0x08 ? MSR_DCD : 0));
	/* The host side is always "connected and ready". */
	return MSR_DCD | MSR_DSR | MSR_CTS;
}

static uint64_t uart_read(void *dev, uint64_t off, unsigned size)
{
	struct uart *u = dev;
	uart_state_t *s = &u->s;
	uint8_t v = 0;

	if (size != 1)
		return 0;
	switch (off) {
	case UART_RBR_THR:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (s->rx_count) {
			v = s->rx_fifo[s->rx_head];
			s->rx_head = (s->rx_head + 1) % UART_FIFO_SIZE;
			s->rx_count--;
			uart_update_irq(u);
		}
		return v;
	case UART_IER:
		return s->lcr & LCR_DLAB ? s->dlm : s->ier;
	case UART_IIR_FCR:
		v = uart_iir_id(s);
		if (v == IIR_THRI) {
			s->thr_ipending = 0;
			uart_update_irq(u);
		}
		return v | (s->fcr & FCR_FE ? IIR_FIFO_ON : 0);
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		v = s->lsr | LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
		if (s->lsr) {
			s->lsr = 0;
			uart_update_irq(u);
		}
		return v;
	case UART_MSR:
		return uart_msr(s);
	case UART_SCR:
		return s->scr;
	default:
		return 0;
	}
}

static void uart_write_thr(struct uart *u, uint8_t b)
{
	uart_state_t *s = &u->s;

	if (s->mcr & MCR_LOOP) {
		if (s->rx_count < uart_capacity(s))
			uart_rx_put(s, b);
		else
			s->lsr |= LSR_OE;
	} else if (u->tx) {
		u->tx(u->opaque, &b, 1);
	}
	/* Sent at once: the holding register is empty again. */
	s->thr_ipending = 1;
	uart_update_irq(u);
}

static void uart_write_fcr(struct uart *u, uint8_t v)
{
	uart_state_t *s = &u->s;

	/* Switching FIFO mode on or off clears both FIFOs. */
	if ((v ^ s->fcr) & FCR_FE)
		v |= FCR_RFR | FCR_XFR;
	if (v & FCR_RFR) {
		s->rx_head = 0;
		s->rx_count = 0;
	}
	if (v & FCR_XFR)
		s->thr_ipending = 1;
	s->fcr = v & FCR_KEEP;
	uart_update_irq(u);
}

static void uart_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
	struct uart *u = dev;
	uart_state_t *s = &u->s;
	uint8_t v = (uint8_t)val;

	if (size != 1)
		return;
	switch (off) {
	case UART_RBR_THR:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			uart_write_thr(u, v);
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
		} else {
			uint8_t changed = (s->ier ^ v) & IER_MASK;

			s->ier = v & IER_MASK;
			/* Enabling ETBEI while THR is empty raises it anew. */
			if (changed & IER_THRI)
				s->thr_ipending = !!(s->ier & IER_THRI);
			uart_update_irq(u);
		}
		break;
	case UART_IIR_FCR:
		uart_write_fcr(u, v);
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & MCR_MASK;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		/* LSR and MSR writes (factory test) are ignored. */
		break;
	}
}

static int uart_fdt(void *dev, void *fdt, int soc, machine_t *m)
{
	struct uart *u = dev;
	fdt64_t reg[2] = {cpu_to_fdt64(u->base), cpu_to_fdt64(UART_SIZE)};
	char name[32];
	int node, rc;

	snprintf(name, sizeof(name), "serial@%llx",
		 (unsigned long long)u->base);
	node = fdt_add_subnode(fdt, soc, name);
	if (node < 0)
		return node;
	if ((rc = fdt_setprop_string(fdt, node, "compatible", "ns16550a")) ||
	    (rc = fdt_setprop(fdt, node, "reg", reg, sizeof(reg))) ||
	    (rc = fdt_setprop_u32(fdt, node, "clock-frequency",
				  UART_CLOCK_HZ)) ||
	    (rc = fdt_setprop_u32(fdt, node, "interrupts", u->irq)) ||
	    (rc = fdt_setprop_u32(fdt, node, "interrupt-parent", PHANDLE_PLIC)))
		return rc;
	return 0;
}

static int uart_post_load(void *dev)
{
	uart_update_irq(dev);
	return 0;
}

static void uart_destroy(void *dev)
{
	struct uart *u = dev;

	if (u->m->uart == u)
		u->m->uart = NULL;
	free(u);
}

static const device_ops_t uart_ops = {
	.read = uart_read,
	.write = uart_write,
	.fdt = uart_fdt,
	.post_load = uart_post_load,
	.destroy = uart_destroy,
};

struct uart *uart_new(machine_t *m, uint64_t base, unsigned irq,
		      void (*tx)(void *opaque, const uint8_t *buf, size_t len),
		      void *opaque)
{
	struct uart *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->m = m;
	u->base = base;
	u->irq = irq;
	u->tx = tx;
	u->opaque = opaque;
	const device_t d = {
		.name = "uart",
		.base = base,
		.size = UART_SIZE,
		.ops = &uart_ops,
		.dev = u,
		.state = &uart_state_desc,
		.state_obj = &u->s,
	};

	if (machine_add_device(m, &d)) {
		free(u);
		return NULL;
	}
	m->uart = u;
	return u;
}
