// SPDX-License-Identifier: MIT
/*
 * The platform devices (UART, CLINT, PLIC, syscon, RTC), driven through the
 * machine's MMIO dispatch exactly as the CPU drives them; interrupt lines are
 * observed where the guest sees them, in the PLIC and the hart's mip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libfdt.h>

#include "devices/clint.h"
#include "devices/plic.h"
#include "devices/rtc.h"
#include "devices/syscon.h"
#include "devices/uart.h"
#include "machine/fdt.h"
#include "machine/machine.h"
#include "machine/state.h"
#include "migration/savevm.h"

/* PLIC register addresses */
#define PLIC_PRIO(src)	    (MEM_PLIC_BASE + 4ull * (src))
#define PLIC_PENDING	    (MEM_PLIC_BASE + 0x1000)
#define PLIC_ENABLE(ctx)    (MEM_PLIC_BASE + 0x2000 + 0x80ull * (ctx))
#define PLIC_THRESHOLD(ctx) (MEM_PLIC_BASE + 0x200000 + 0x1000ull * (ctx))
#define PLIC_CLAIM(ctx)	    (PLIC_THRESHOLD(ctx) + 4)
#define CTX_M		    0
#define CTX_S		    1

/* UART registers */
#define UART(r) (MEM_UART_BASE + (r))
#define RBR	0
#define IER	1
#define IIR	2
#define FCR	2
#define LCR	3
#define MCR	4
#define LSR	5
#define MSR	6
#define SCR	7

/* Goldfish RTC registers */
#define RTC(r) (MEM_RTC_BASE + (r))

typedef struct fixture {
	machine_t m;
	struct uart *uart;
	struct plic *plic;
	struct clint *clint;
	struct syscon *syscon;
	struct rtc *rtc;
	uint8_t tx[256];
	size_t ntx;
} fixture_t;

static void capture(void *opaque, const uint8_t *buf, size_t len)
{
	fixture_t *f = opaque;

	assert_true(f->ntx + len <= sizeof(f->tx));
	memcpy(f->tx + f->ntx, buf, len);
	f->ntx += len;
}

static fixture_t *fixture_new(void)
{
	fixture_t *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	assert_int_equal(machine_init(&f->m, 16 << 20, 1, err, sizeof(err)), 0);
	f->plic = plic_new(&f->m, MEM_PLIC_BASE);
	f->clint = clint_new(&f->m, MEM_CLINT_BASE);
	f->syscon = syscon_new(&f->m, MEM_SYSCON_BASE);
	f->rtc = rtc_new(&f->m, MEM_RTC_BASE, IRQ_RTC);
	f->uart = uart_new(&f->m, MEM_UART_BASE, IRQ_UART, capture, f);
	assert_non_null(f->plic);
	assert_non_null(f->clint);
	assert_non_null(f->syscon);
	assert_non_null(f->rtc);
	assert_non_null(f->uart);
	assert_ptr_equal(f->m.plic, f->plic);
	assert_ptr_equal(f->m.clint, f->clint);
	assert_ptr_equal(f->m.uart, f->uart);
	assert_ptr_equal(f->m.rtc, f->rtc);
	/* Guest time stands still unless a test moves it. */
	vclock_pause(&f->m.clock);
	f->m.clock.s.guest_ns = 1000000;
	return f;
}

static int setup(void **state)
{
	*state = fixture_new();
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;

	machine_destroy(&f->m);
	free(f);
	return 0;
}

static uint64_t rd(fixture_t *f, uint64_t pa, unsigned size)
{
	uint64_t v = 0xdeadbeef;

	assert_true(machine_mmio_read(&f->m, pa, size, &v));
	return v;
}

static void wr(fixture_t *f, uint64_t pa, unsigned size, uint64_t v)
{
	assert_true(machine_mmio_write(&f->m, pa, size, v));
}

static uint64_t mip(fixture_t *f)
{
	return f->m.harts[0].s.mip;
}

static bool plic_pending(fixture_t *f, unsigned src)
{
	return (rd(f, PLIC_PENDING + 4 * (src / 32), 4) >> (src % 32)) & 1;
}

/* Routes source src to the S-mode context with priority 1, threshold 0. */
static void route_to_s(fixture_t *f, unsigned src)
{
	wr(f, PLIC_PRIO(src), 4, 1);
	wr(f, PLIC_ENABLE(CTX_S) + 4 * (src / 32), 4,
	   rd(f, PLIC_ENABLE(CTX_S) + 4 * (src / 32), 4) | 1u << (src % 32));
	wr(f, PLIC_THRESHOLD(CTX_S), 4, 0);
}

static void set_time_ticks(fixture_t *f, uint64_t ticks)
{
	f->m.clock.s.guest_ns = ticks * (1000000000ull / TIMEBASE_HZ);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {0, (long)ms * 1000000};

	nanosleep(&ts, NULL);
}

/* ---- UART ---- */

static void test_uart_tx(void **state)
{
	fixture_t *f = *state;

	wr(f, UART(RBR), 1, 'h');
	wr(f, UART(RBR), 1, 'i');
	assert_int_equal(f->ntx, 2);
	assert_memory_equal(f->tx, "hi", 2);
	/* Transmission is immediate: THR and the shifter are always empty. */
	assert_int_equal(rd(f, UART(LSR), 1) & 0x60, 0x60);
	/* Nothing received. */
	assert_int_equal(rd(f, UART(LSR), 1) & 0x01, 0);
}

static void test_uart_rx(void **state)
{
	fixture_t *f = *state;
	const uint8_t msg[] = "abcdefghijklmnopqrstuvwxyz";

	route_to_s(f, IRQ_UART);
	/* FIFOs off after reset: a single holding register. */
	assert_int_equal(uart_rx_space(f->uart), 1);
	assert_int_equal(uart_rx_push(f->uart, msg, 3), 1);
	assert_int_equal(rd(f, UART(LSR), 1) & 0x01, 0x01);
	/* No interrupt until IER.ERBFI. */
	assert_int_equal(rd(f, UART(IIR), 1), 0x01);
	assert_false(plic_pending(f, IRQ_UART));
	wr(f, UART(IER), 1, 0x01);
	assert_int_equal(rd(f, UART(IIR), 1), 0x04);
	assert_true(plic_pending(f, IRQ_UART));
	assert_true(mip(f) & MIP_SEIP);
	assert_int_equal(rd(f, UART(RBR), 1), 'a');
	assert_int_equal(rd(f, UART(LSR), 1) & 0x01, 0);
	assert_int_equal(rd(f, UART(IIR), 1), 0x01);
	assert_false(plic_pending(f, IRQ_UART));
	assert_false(mip(f) & MIP_SEIP);

	/* FIFOs on, trigger level 14. */
	wr(f, UART(FCR), 1, 0xc7);
	assert_int_equal(uart_rx_space(f->uart), UART_FIFO_SIZE);
	assert_int_equal(uart_rx_push(f->uart, msg, 3), 3);
	/* Below the trigger level: character timeout, FIFO-enabled bits. */
	assert_int_equal(rd(f, UART(IIR), 1), 0xcc);
	assert_true(plic_pending(f, IRQ_UART));
	assert_int_equal(uart_rx_push(f->uart, msg + 3, sizeof(msg) - 4), 13);
	assert_int_equal(uart_rx_space(f->uart), 0);
	assert_int_equal(uart_rx_push(f->uart, msg, 1), 0);
	assert_int_equal(rd(f, UART(IIR), 1), 0xc4);
	for (unsigned i = 0; i < UART_FIFO_SIZE; i++) {
		assert_int_equal(rd(f, UART(LSR), 1) & 0x01, 0x01);
		assert_int_equal(rd(f, UART(RBR), 1), msg[i]);
	}
	assert_int_equal(rd(f, UART(LSR), 1) & 0x01, 0);
	assert_int_equal(rd(f, UART(IIR), 1), 0xc1);
	assert_false(plic_pending(f, IRQ_UART));

	/* Wrap around the ring, then clear the FIFO through FCR. */
	assert_int_equal(uart_rx_push(f->uart, msg, 5), 5);
	assert_int_equal(rd(f, UART(RBR), 1), 'a');
	assert_int_equal(uart_rx_push(f->uart, msg + 10, 12), 12);
	assert_int_equal(rd(f, UART(RBR), 1), 'b');
	wr(f, UART(FCR), 1, 0xc3);
	assert_int_equal(rd(f, UART(LSR), 1) & 0x01, 0);
	assert_false(plic_pending(f, IRQ_UART));
	/* Turning FIFOs off empties them too. */
	assert_int_equal(uart_rx_push(f->uart, msg, 4), 4);
	wr(f, UART(FCR), 1, 0x00);
	assert_int_equal(rd(f, UART(LSR), 1) & 0x01, 0);
	assert_int_equal(uart_rx_space(f->uart), 1);
}

static void test_uart_thre(void **state)
{
	fixture_t *f = *state;

	route_to_s(f, IRQ_UART);
	/* Enabling ETBEI with THR empty raises THRE at once. */
	wr(f, UART(IER), 1, 0x02);
	assert_true(plic_pending(f, IRQ_UART));
	assert_int_equal(rd(f, UART(IIR), 1), 0x02);
	/* Reading IIR reporting THRE clears it. */
	assert_false(plic_pending(f, IRQ_UART));
	assert_int_equal(rd(f, UART(IIR), 1), 0x01);
	/* Toggling IER re-arms it (Linux's 8250 THRE test relies on this). */
	wr(f, UART(IER), 1, 0x00);
	wr(f, UART(IER), 1, 0x02);
	assert_int_equal(rd(f, UART(IIR), 1), 0x02);
	assert_int_equal(rd(f, UART(IIR), 1), 0x01);
	/* So does every transmitted byte. */
	wr(f, UART(RBR), 1, 'x');
	assert_true(plic_pending(f, IRQ_UART));
	/* Received data outranks THRE. */
	wr(f, UART(IER), 1, 0x03);
	assert_int_equal(uart_rx_push(f->uart, (const uint8_t *)"k", 1), 1);
	assert_int_equal(rd(f, UART(IIR), 1), 0x04);
	assert_int_equal(rd(f, UART(RBR), 1), 'k');
	assert_int_equal(rd(f, UART(IIR), 1), 0x02);
	assert_int_equal(rd(f, UART(IIR), 1), 0x01);
	assert_false(plic_pending(f, IRQ_UART));
	assert_false(mip(f) & MIP_SEIP);
}

static void test_uart_dlab_and_misc(void **state)
{
	fixture_t *f = *state;

	wr(f, UART(IER), 1, 0x05);
	wr(f, UART(LCR), 1, 0x83);
	wr(f, UART(RBR), 1, 0x12); /* DLL */
	wr(f, UART(IER), 1, 0x34); /* DLM */
	assert_int_equal(rd(f, UART(RBR), 1), 0x12);
	assert_int_equal(rd(f, UART(IER), 1), 0x34);
	assert_int_equal(f->ntx, 0); /* a divisor write is not data */
	wr(f, UART(LCR), 1, 0x03);
	assert_int_equal(rd(f, UART(LCR), 1), 0x03);
	assert_int_equal(rd(f, UART(IER), 1), 0x05);
	wr(f, UART(LCR), 1, 0x83);
	assert_int_equal(rd(f, UART(RBR), 1), 0x12);
	assert_int_equal(rd(f, UART(IER), 1), 0x34);
	wr(f, UART(LCR), 1, 0x03);
	/* IER keeps only its four defined bits. */
	wr(f, UART(IER), 1, 0xff);
	assert_int_equal(rd(f, UART(IER), 1), 0x0f);
	wr(f, UART(IER), 1, 0);

	wr(f, UART(SCR), 1, 0x5a);
	assert_int_equal(rd(f, UART(SCR), 1), 0x5a);
	wr(f, UART(MCR), 1, 0xff);
	assert_int_equal(rd(f, UART(MCR), 1), 0x1f);
	/* Loopback: MSR mirrors MCR, transmitted bytes come back. */
	wr(f, UART(MCR), 1, 0x10 | 0x03);
	assert_int_equal(rd(f, UART(MSR), 1), 0x30);
	wr(f, UART(RBR), 1, 'L');
	assert_int_equal(f->ntx, 0);
	assert_int_equal(rd(f, UART(RBR), 1), 'L');
	wr(f, UART(MCR), 1, 0x0b);
	/* Carrier, data set ready and clear to send. */
	assert_int_equal(rd(f, UART(MSR), 1), 0xb0);
}

/* ---- CLINT ---- */

static void test_clint(void **state)
{
	fixture_t *f = *state;
	const uint64_t cmp = MEM_CLINT_BASE + 0x4000,
		       mtime = MEM_CLINT_BASE + 0xbff8;

	set_time_ticks(f, 0x123456789ull);
	assert_int_equal(rd(f, mtime, 8), 0x123456789ull);
	assert_int_equal(rd(f, mtime, 4), 0x23456789);
	assert_int_equal(rd(f, mtime + 4, 4), 0x1);
	/* Timer never armed: no MTIP, no deadline. */
	assert_false(mip(f) & MIP_MTIP);
	assert_int_equal(rd(f, cmp, 8), UINT64_MAX);
	assert_int_equal(clint_next_deadline(f->clint), UINT64_MAX);

	wr(f, cmp, 8, 0x123456800ull);
	assert_int_equal(rd(f, cmp, 8), 0x123456800ull);
	assert_false(mip(f) & MIP_MTIP);
	assert_int_equal(clint_next_deadline(f->clint), 0x123456800ull);
	set_time_ticks(f, 0x1234567ffull);
	clint_update(f->clint);
	assert_false(mip(f) & MIP_MTIP);
	set_time_ticks(f, 0x123456800ull);
	clint_update(f->clint);
	assert_true(mip(f) & MIP_MTIP);
	/* Reached deadlines are not reported again. */
	assert_int_equal(clint_next_deadline(f->clint), UINT64_MAX);

	/* The 32-bit sequence of the privileged spec: high = -1, low, high. */
	wr(f, cmp + 4, 4, 0xffffffff);
	assert_false(mip(f) & MIP_MTIP);
	wr(f, cmp, 4, 0x00000010);
	wr(f, cmp + 4, 4, 0x2);
	assert_int_equal(rd(f, cmp, 8), 0x200000010ull);
	assert_int_equal(rd(f, cmp, 4), 0x10);
	assert_int_equal(rd(f, cmp + 4, 4), 0x2);
	assert_false(mip(f) & MIP_MTIP);
	/* Lowering mtimecmp below mtime raises MTIP without waiting. */
	wr(f, cmp, 8, 5);
	assert_true(mip(f) & MIP_MTIP);

	/* Software interrupts: only bit 0 of msip exists. */
	wr(f, MEM_CLINT_BASE, 4, 0xffffffff);
	assert_int_equal(rd(f, MEM_CLINT_BASE, 4), 1);
	assert_true(mip(f) & MIP_MSIP);
	wr(f, MEM_CLINT_BASE, 4, 0);
	assert_false(mip(f) & MIP_MSIP);

	/* mtime is the machine clock: writes do not move it. */
	wr(f, mtime, 8, 0);
	assert_int_equal(rd(f, mtime, 8), 0x123456800ull);
	/* Registers of harts that do not exist read 0 and ignore writes. */
	wr(f, MEM_CLINT_BASE + 4, 4, 1);
	assert_int_equal(rd(f, MEM_CLINT_BASE + 4, 4), 0);
	wr(f, cmp + 8, 8, 1);
	assert_int_equal(rd(f, cmp + 8, 8), 0);
}

/* ---- PLIC ---- */

static void test_plic_claim_complete(void **state)
{
	fixture_t *f = *state;

	wr(f, PLIC_PRIO(3), 4, 1);
	wr(f, PLIC_PRIO(5), 4, 2);
	wr(f, PLIC_PRIO(40), 4, 0xff);
	assert_int_equal(rd(f, PLIC_PRIO(3), 4), 1);
	assert_int_equal(rd(f, PLIC_PRIO(40), 4), 7);
	/* Source 0 does not exist. */
	wr(f, PLIC_PRIO(0), 4, 3);
	assert_int_equal(rd(f, PLIC_PRIO(0), 4), 0);
	wr(f, PLIC_ENABLE(CTX_S), 4, 0xffffffff);
	assert_int_equal(rd(f, PLIC_ENABLE(CTX_S), 4), 0xfffffffe);
	wr(f, PLIC_ENABLE(CTX_S) + 4, 4, 1u << (40 - 32));
	assert_int_equal(rd(f, PLIC_ENABLE(CTX_S) + 4, 4), 1u << 8);

	machine_set_irq(&f->m, 3, true);
	assert_true(plic_pending(f, 3));
	assert_true(mip(f) & MIP_SEIP);
	assert_false(mip(f) & MIP_MEIP); /* M context enables nothing */
	machine_set_irq(&f->m, 5, true);
	machine_set_irq(&f->m, 40, true);
	assert_true(plic_pending(f, 40));

	/* Highest priority first; claiming clears the pending bit. */
	assert_int_equal(rd(f, PLIC_CLAIM(CTX_S), 4), 40);
	assert_false(plic_pending(f, 40));
	assert_int_equal(rd(f, PLIC_CLAIM(CTX_S), 4), 5);
	assert_int_equal(rd(f, PLIC_CLAIM(CTX_S), 4), 3);
	assert_false(mip(f) & MIP_SEIP);
	assert_int_equal(rd(f, PLIC_CLAIM(CTX_S), 4), 0);

	/* Gateway closed while in service, even if the line toggles. */
	machine_set_irq(&f->m, 5, false);
	machine_set_irq(&f->m, 5, true);
	assert_false(plic_pending(f, 5));
	assert_false(mip(f) & MIP_SEIP);
	/* Completion while the line is still high: pending again. */
	wr(f, PLIC_CLAIM(CTX_S), 4, 5);
	assert_true(plic_pending(f, 5));
	assert_true(mip(f) & MIP_SEIP);
	assert_int_equal(rd(f, PLIC_CLAIM(CTX_S), 4), 5);
	/* Completion after the line fell: stays idle. */
	machine_set_irq(&f->m, 3, false);
	wr(f, PLIC_CLAIM(CTX_S), 4, 3);
	assert_false(plic_pending(f, 3));
	/* Completing a source not enabled for the context is ignored. */
	wr(f, PLIC_ENABLE(CTX_S), 4, 0);
	wr(f, PLIC_CLAIM(CTX_S), 4, 5);
	assert_false(plic_pending(f, 5));
	wr(f, PLIC_ENABLE(CTX_S), 4, 1u << 5);
	wr(f, PLIC_CLAIM(CTX_S), 4, 5);
	assert_true(plic_pending(f, 5));
	/* Completing garbage ids is harmless. */
	wr(f, PLIC_CLAIM(CTX_S), 4, 0);
	wr(f, PLIC_CLAIM(CTX_S), 4, 1000);
	wr(f, PLIC_CLAIM(CTX_S), 4, 0xffffffff);
	assert_true(plic_pending(f, 5));
}

static void test_plic_priority_threshold(void **state)
{
	fixture_t *f = *state;

	wr(f, PLIC_ENABLE(CTX_S), 4, (1u << 6) | (1u << 9));
	wr(f, PLIC_PRIO(6), 4, 2);
	wr(f, PLIC_PRIO(9), 4, 2);
	machine_set_irq(&f->m, 9, true);
	machine_set_irq(&f->m, 6, true);
	/* Ties go to the lower id. */
	wr(f, PLIC_THRESHOLD(CTX_S), 4, 1);
	assert_true(mip(f) & MIP_SEIP);
	/* Priority must exceed the threshold. */
	wr(f, PLIC_THRESHOLD(CTX_S), 4, 2);
	assert_int_equal(rd(f, PLIC_THRESHOLD(CTX_S), 4), 2);
	assert_false(mip(f) & MIP_SEIP);
	assert_int_equal(rd(f, PLIC_CLAIM(CTX_S), 4), 0);
	assert_true(plic_pending(f, 6));
	wr(f, PLIC_THRESHOLD(CTX_S), 4, 0);
	assert_true(mip(f) & MIP_SEIP);
	assert_int_equal(rd(f, PLIC_CLAIM(CTX_S), 4), 6);
	assert_int_equal(rd(f, PLIC_CLAIM(CTX_S), 4), 9);
	/* Priority 0 never interrupts. */
	wr(f, PLIC_CLAIM(CTX_S), 4, 6);
	wr(f, PLIC_PRIO(6), 4, 0);
	assert_true(plic_pending(f, 6));
	assert_false(mip(f) & MIP_SEIP);

	/* The M-mode context drives MEIP, independently. */
	wr(f, PLIC_PRIO(6), 4, 1);
	assert_true(mip(f) & MIP_SEIP);
	wr(f, PLIC_ENABLE(CTX_M), 4, 1u << 6);
	assert_true(mip(f) & MIP_MEIP);
	assert_int_equal(rd(f, PLIC_CLAIM(CTX_M), 4), 6);
	assert_false(mip(f) & MIP_MEIP);
	assert_false(mip(f) & MIP_SEIP); /* in service for everyone */
	wr(f, PLIC_CLAIM(CTX_M), 4, 6);
	assert_true(mip(f) & MIP_MEIP);
	assert_true(mip(f) & MIP_SEIP);
	/* A line that falls before the claim withdraws the request. */
	machine_set_irq(&f->m, 6, false);
	assert_false(mip(f) & MIP_MEIP);
	assert_false(mip(f) & MIP_SEIP);
	/* Out-of-range sources are ignored. */
	plic_set_irq(f->plic, 0, true);
	plic_set_irq(f->plic, PLIC_NSRC, true);
	plic_set_irq(f->plic, 100000, true);
	assert_int_equal(rd(f, PLIC_PENDING, 4), 0);
}

/* ---- syscon ---- */

static void test_syscon(void **state)
{
	fixture_t *f = *state;

	assert_int_equal(rd(f, MEM_SYSCON_BASE, 4), 0);
	wr(f, MEM_SYSCON_BASE, 4, 0x1234);
	wr(f, MEM_SYSCON_BASE + 4, 4, 0x5555);
	wr(f, MEM_SYSCON_BASE, 1, 0x55);
	assert_int_equal(f->m.power, POWER_RUN);

	wr(f, MEM_SYSCON_BASE, 4, 0x7777);
	assert_int_equal(f->m.power, POWER_RESET);
	assert_true(f->m.harts[0].stop);
	assert_int_equal(f->m.exit_code, 0);

	f->m.power = POWER_RUN;
	wr(f, MEM_SYSCON_BASE, 4, 0x5555);
	assert_int_equal(f->m.power, POWER_OFF);
	assert_int_equal(f->m.exit_code, 0);

	f->m.power = POWER_RUN;
	wr(f, MEM_SYSCON_BASE, 4, (42u << 16) | 0x3333);
	assert_int_equal(f->m.power, POWER_OFF);
	assert_int_equal(f->m.exit_code, 42);

	f->m.power = POWER_RUN;
	wr(f, MEM_SYSCON_BASE, 4, 0x3333);
	assert_int_equal(f->m.power, POWER_OFF);
	assert_int_not_equal(f->m.exit_code, 0);
}

/* ---- RTC ---- */

static uint64_t rtc_read_time(fixture_t *f)
{
	uint64_t lo = rd(f, RTC(0x00), 4);

	return rd(f, RTC(0x04), 4) << 32 | lo;
}

static void test_rtc_time(void **state)
{
	fixture_t *f = *state;
	const uint64_t sec = 1000000000ull;
	uint64_t t, host = realtime_ns();
	uint64_t set = 978307200ull * sec; /* 2001-01-01 */

	t = rtc_read_time(f);
	assert_true(t >= host && t - host < 5 * sec);
	/* Linux's rtc-goldfish writes the high word, then the low one. */
	wr(f, RTC(0x04), 4, set >> 32);
	wr(f, RTC(0x00), 4, (uint32_t)set);
	t = rtc_read_time(f);
	assert_true(t >= set && t - set < 5 * sec);
	/* The setting lives in the state, relative to the host clock. */
	assert_true(f->rtc->s.offset_ns + realtime_ns() - set < 5 * sec);
	/* Unused registers and sizes. */
	assert_int_equal(rd(f, RTC(0x20), 4), 0);
	assert_int_equal(rd(f, RTC(0x00), 8), 0);
	wr(f, RTC(0x00), 2, 0);
	t = rtc_read_time(f);
	assert_true(t >= set && t - set < 5 * sec);
}

static void test_rtc_alarm(void **state)
{
	fixture_t *f = *state;
	uint64_t alarm;

	route_to_s(f, IRQ_RTC);
	wr(f, RTC(0x10), 4, 1);
	assert_int_equal(rd(f, RTC(0x10), 4), 1);
	alarm = rtc_read_time(f) + 20 * 1000000ull;
	wr(f, RTC(0x0c), 4, alarm >> 32);
	wr(f, RTC(0x08), 4, (uint32_t)alarm);
	assert_int_equal(rd(f, RTC(0x08), 4), (uint32_t)alarm);
	assert_int_equal(rd(f, RTC(0x0c), 4), alarm >> 32);
	assert_int_equal(rd(f, RTC(0x18), 4), 1);
	rtc_update(f->rtc);
	assert_false(plic_pending(f, IRQ_RTC));
	sleep_ms(40);
	rtc_update(f->rtc);
	assert_true(plic_pending(f, IRQ_RTC));
	assert_true(mip(f) & MIP_SEIP);
	assert_int_equal(rd(f, RTC(0x18), 4), 0);
	wr(f, RTC(0x1c), 4, 1);
	assert_false(plic_pending(f, IRQ_RTC));

	/* An alarm in the past fires at once; masked, it does not show. */
	wr(f, RTC(0x10), 4, 0);
	wr(f, RTC(0x08), 4, 0);
	wr(f, RTC(0x0c), 4, 0);
	wr(f, RTC(0x08), 4, 1);
	assert_int_equal(rd(f, RTC(0x18), 4), 0);
	assert_false(plic_pending(f, IRQ_RTC));
	wr(f, RTC(0x10), 4, 1);
	assert_true(plic_pending(f, IRQ_RTC));
	wr(f, RTC(0x1c), 4, 1);
	assert_false(plic_pending(f, IRQ_RTC));

	/* A cleared alarm never fires. */
	alarm = rtc_read_time(f) + 1000000ull;
	wr(f, RTC(0x0c), 4, alarm >> 32);
	wr(f, RTC(0x08), 4, (uint32_t)alarm);
	wr(f, RTC(0x14), 4, 1);
	assert_int_equal(rd(f, RTC(0x18), 4), 0);
	sleep_ms(5);
	rtc_update(f->rtc);
	assert_false(plic_pending(f, IRQ_RTC));
}

/* ---- hostile accesses ---- */

static void test_stray_accesses(void **state)
{
	fixture_t *f = *state;
	static const uint64_t bases[] = {MEM_UART_BASE, MEM_CLINT_BASE,
					 MEM_PLIC_BASE, MEM_RTC_BASE,
					 MEM_SYSCON_BASE};
	static const uint64_t offs[] = {0,
					1,
					2,
					3,
					5,
					6,
					7,
					8,
					0xc,
					0x1f,
					0x20,
					0xff,
					0x400,
					0xffc,
					0x1004,
					0x1ffc,
					0x2000 + 0x80 * 2,
					0x2000 + 0x80 * 1000,
					0x3ffc,
					0x4008,
					0x7ff8,
					0xbff4,
					0xbffc,
					0xfff8,
					0x1ffffc,
					0x200000 + 0x1000 * 2,
					0x200000 + 0x1000 * 2 + 4,
					0x200008,
					0x5ffffc};
	static const unsigned sizes[] = {1, 2, 4, 8};

	for (unsigned b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
		for (unsigned o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
			for (unsigned s = 0; s < 4; s++) {
				uint64_t pa = bases[b] + offs[o], v;
				const device_t *d = machine_find_device(
					&f->m, pa, sizes[s]);

				if (!d)
					continue;
				(void)machine_mmio_read(&f->m, pa, sizes[s],
							&v);
				/* Keep the guest alive: no valid finisher
				 * codes. */
				(void)machine_mmio_write(&f->m, pa, sizes[s],
							 0xa5a5a5a5a5a5a5a5ull);
			}
		}
	}
	assert_int_equal(f->m.power, POWER_RUN);
	/* The sweep set LCR.DLAB; clear it to reach SCR and THR again. */
	wr(f, UART(LCR), 1, 0x03);
	/* Odd sizes on real registers are ignored and read 0. */
	wr(f, UART(SCR), 1, 0x11);
	wr(f, UART(SCR), 2, 0x2222);
	wr(f, UART(SCR) - 3, 4, 0x33333333);
	assert_int_equal(rd(f, UART(SCR), 1), 0x11);
	assert_int_equal(rd(f, UART(SCR) - 1, 2), 0);
	wr(f, PLIC_PRIO(1), 4, 1);
	wr(f, PLIC_PRIO(1), 2, 5);
	wr(f, PLIC_PRIO(1) + 1, 1, 5);
	wr(f, PLIC_PRIO(1), 8, 5);
	assert_int_equal(rd(f, PLIC_PRIO(1), 4), 1);
	assert_int_equal(rd(f, PLIC_PRIO(1), 8), 0);
	wr(f, MEM_CLINT_BASE + 0x4002, 4, 7);
	assert_int_equal(rd(f, MEM_CLINT_BASE + 0x4001, 1), 0);
	/* Every device survived: a byte still reaches the console. */
	wr(f, UART(RBR), 1, '!');
	assert_int_equal(f->tx[f->ntx - 1], '!');
}

/* ---- state ---- */

static const device_t *find(machine_t *m, const char *name)
{
	for (unsigned i = 0; i < m->ndevices; i++)
		if (!strcmp(m->devices[i].name, name))
			return &m->devices[i];
	fail_msg("device %s not registered", name);
	return NULL;
}

static void test_state_roundtrip(void **state)
{
	fixture_t *f = *state, *g = fixture_new();
	static const char *const names[] = {"uart", "clint", "plic", "rtc"};
	uint8_t buf[4096];
	char err[256];

	/* Some state worth carrying over. */
	wr(f, UART(FCR), 1, 0x41);
	wr(f, UART(IER), 1, 0x01);
	wr(f, UART(SCR), 1, 0x77);
	assert_int_equal(
		uart_rx_push(f->uart, (const uint8_t *)"0123456789", 10), 10);
	assert_int_equal(rd(f, UART(RBR), 1), '0');
	route_to_s(f, IRQ_UART);
	wr(f, PLIC_PRIO(7), 4, 4);
	wr(f, MEM_CLINT_BASE + 0x4000, 8, 0x999999);
	wr(f, MEM_CLINT_BASE, 4, 1);
	wr(f, RTC(0x10), 4, 1);
	wr(f, RTC(0x0c), 4, 0x7fffffff);
	wr(f, RTC(0x08), 4, 0x1234);
	assert_true(mip(f) & MIP_SEIP);
	assert_false(mip(g) & MIP_SEIP);

	assert_null(find(&f->m, "syscon")->state);
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const device_t *d = find(&f->m, names[i]),
			       *e = find(&g->m, names[i]);
		size_t n;

		assert_non_null(d->state);
		assert_int_equal(
			state_desc_validate(d->state, err, sizeof(err)), 0);
		n = state_save(d->state, d->state_obj, buf, sizeof(buf));
		assert_int_equal(n, state_size(d->state, d->state->version));
		assert_int_equal(state_load(e->state, e->state_obj,
					    d->state->version, buf, n, err,
					    sizeof(err)),
				 0);
		assert_memory_equal(d->state_obj, e->state_obj, d->state->size);
	}
	/* post_load re-drives the outputs from the loaded state. */
	for (unsigned i = 0; i < g->m.ndevices; i++) {
		const device_t *e = &g->m.devices[i];

		if (e->ops->post_load)
			assert_int_equal(e->ops->post_load(e->dev), 0);
	}
	assert_true(mip(g) & MIP_SEIP);
	assert_true(mip(g) & MIP_MSIP);
	assert_int_equal(rd(g, UART(RBR), 1), '1');
	assert_int_equal(rd(g, UART(SCR), 1), 0x77);
	assert_int_equal(rd(g, PLIC_CLAIM(CTX_S), 4), IRQ_UART);
	assert_int_equal(rd(g, MEM_CLINT_BASE + 0x4000, 8), 0x999999);
	assert_int_equal(rd(g, RTC(0x18), 4), 1);
	assert_int_equal(rd(g, RTC(0x0c), 4), 0x7fffffff);

	machine_destroy(&g->m);
	free(g);
}

/* Saves a damaged copy of a device's state; loading it must fail cleanly. */
static void expect_rejected(fixture_t *f, const char *name,
			    void (*damage)(void *obj))
{
	const device_t *d = find(&f->m, name);
	uint8_t buf[4096], *copy = malloc(d->state->size), *before;
	char err[256] = "";
	size_t n;

	assert_non_null(copy);
	before = malloc(d->state->size);
	assert_non_null(before);
	memcpy(copy, d->state_obj, d->state->size);
	memcpy(before, d->state_obj, d->state->size);
	damage(copy);
	n = state_save(d->state, copy, buf, sizeof(buf));
	assert_int_not_equal(n, 0);
	assert_int_equal(state_load(d->state, d->state_obj, d->state->version,
				    buf, n, err, sizeof(err)),
			 -1);
	assert_true(err[0] != '\0');
	assert_memory_equal(d->state_obj, before, d->state->size);
	free(copy);
	free(before);
}

static void bad_uart_head(void *o)
{
	((uart_state_t *)o)->rx_head = UART_FIFO_SIZE;
}
static void bad_uart_count(void *o)
{
	((uart_state_t *)o)->rx_count = 2;
}
static void bad_uart_count_fifo(void *o)
{
	((uart_state_t *)o)->fcr = 0x01;
	((uart_state_t *)o)->rx_count = UART_FIFO_SIZE + 1;
}
static void bad_uart_ier(void *o)
{
	((uart_state_t *)o)->ier = 0x80;
}
static void bad_plic_prio(void *o)
{
	((plic_state_t *)o)->priority[3] = 8;
}
static void bad_plic_src0(void *o)
{
	((plic_state_t *)o)->pending[0] = 1;
}
static void bad_plic_threshold(void *o)
{
	((plic_state_t *)o)->threshold[1] = 100;
}
static void bad_plic_claimed(void *o)
{
	((plic_state_t *)o)->pending[0] = 4;
	((plic_state_t *)o)->claimed[0] = 4;
}
static void bad_clint_msip(void *o)
{
	((clint_state_t *)o)->msip[0] = 2;
}
static void bad_rtc_flag(void *o)
{
	((rtc_state_t *)o)->irq_enabled = 2;
}

static void test_state_check(void **state)
{
	fixture_t *f = *state;

	expect_rejected(f, "uart", bad_uart_head);
	expect_rejected(f, "uart", bad_uart_count);
	expect_rejected(f, "uart", bad_uart_count_fifo);
	expect_rejected(f, "uart", bad_uart_ier);
	expect_rejected(f, "plic", bad_plic_prio);
	expect_rejected(f, "plic", bad_plic_src0);
	expect_rejected(f, "plic", bad_plic_threshold);
	expect_rejected(f, "plic", bad_plic_claimed);
	expect_rejected(f, "clint", bad_clint_msip);
	expect_rejected(f, "rtc", bad_rtc_flag);
}

/* ---- device tree ---- */

static const void *getprop(void *fdt, const char *path, const char *name,
			   int *len)
{
	int node = fdt_path_offset(fdt, path);
	const void *p;

	if (node < 0)
		fail_msg("node %s missing", path);
	p = fdt_getprop(fdt, node, name, len);
	if (!p)
		fail_msg("%s: %s missing", path, name);
	return p;
}

static uint32_t cell(const void *p, int i)
{
	return fdt32_to_cpu(((const fdt32_t *)p)[i]);
}

static void expect_reg(void *fdt, const char *path, uint64_t base,
		       uint64_t size)
{
	int len;
	const fdt64_t *reg = getprop(fdt, path, "reg", &len);

	assert_int_equal(len, 16);
	assert_int_equal(fdt64_to_cpu(reg[0]), base);
	assert_int_equal(fdt64_to_cpu(reg[1]), size);
}

static void test_fdt_nodes(void **state)
{
	fixture_t *f = *state;
	static const char plic_compat[] = "sifive,plic-1.0.0\0riscv,plic0";
	static const char clint_compat[] = "sifive,clint0\0riscv,clint0";
	static const char test_compat[] = "sifive,test1\0sifive,test0\0syscon";
	size_t size = 64 * 1024;
	void *fdt = calloc(1, size);
	const void *p;
	int len, soc;

	assert_non_null(fdt);
	assert_int_equal(fdt_create_empty_tree(fdt, (int)size), 0);
	assert_int_equal(fdt_setprop_u32(fdt, 0, "#address-cells", 2), 0);
	assert_int_equal(fdt_setprop_u32(fdt, 0, "#size-cells", 2), 0);
	soc = fdt_add_subnode(fdt, 0, "soc");
	assert_true(soc >= 0);
	assert_int_equal(fdt_setprop_u32(fdt, soc, "#address-cells", 2), 0);
	assert_int_equal(fdt_setprop_u32(fdt, soc, "#size-cells", 2), 0);
	for (unsigned i = f->m.ndevices; i-- > 0;) {
		const device_t *d = &f->m.devices[i];

		/* Nodes added at the root move /soc: look it up each time. */
		soc = fdt_path_offset(fdt, "/soc");
		assert_true(soc >= 0);
		assert_int_equal(d->ops->fdt(d->dev, fdt, soc, &f->m), 0);
	}
	assert_int_equal(fdt_pack(fdt), 0);
	assert_int_equal(fdt_check_full(fdt, fdt_totalsize(fdt)), 0);

	p = getprop(fdt, "/soc/serial@10000000", "compatible", &len);
	assert_string_equal(p, "ns16550a");
	expect_reg(fdt, "/soc/serial@10000000", MEM_UART_BASE, 0x100);
	p = getprop(fdt, "/soc/serial@10000000", "clock-frequency", &len);
	assert_int_equal(cell(p, 0), 3686400);
	p = getprop(fdt, "/soc/serial@10000000", "interrupts", &len);
	assert_int_equal(len, 4);
	assert_int_equal(cell(p, 0), IRQ_UART);
	p = getprop(fdt, "/soc/serial@10000000", "interrupt-parent", &len);
	assert_int_equal(cell(p, 0), PHANDLE_PLIC);

	p = getprop(fdt, "/soc/plic@c000000", "compatible", &len);
	assert_int_equal(len, sizeof(plic_compat));
	assert_memory_equal(p, plic_compat, sizeof(plic_compat));
	p = getprop(fdt, "/soc/plic@c000000", "phandle", &len);
	assert_int_equal(cell(p, 0), PHANDLE_PLIC);
	assert_int_equal(fdt_node_offset_by_phandle(fdt, PHANDLE_PLIC),
			 fdt_path_offset(fdt, "/soc/plic@c000000"));
	p = getprop(fdt, "/soc/plic@c000000", "interrupts-extended", &len);
	assert_int_equal(len, 16);
	assert_int_equal(cell(p, 0), PHANDLE_CPU_INTC(0));
	assert_int_equal(cell(p, 1), 11);
	assert_int_equal(cell(p, 2), PHANDLE_CPU_INTC(0));
	assert_int_equal(cell(p, 3), 9);
	p = getprop(fdt, "/soc/plic@c000000", "#interrupt-cells", &len);
	assert_int_equal(cell(p, 0), 1);
	p = getprop(fdt, "/soc/plic@c000000", "riscv,ndev", &len);
	assert_int_equal(cell(p, 0), PLIC_NDEV);
	assert_true(cell(p, 0) >= IRQ_RTC);
	getprop(fdt, "/soc/plic@c000000", "interrupt-controller", &len);
	assert_int_equal(len, 0);

	p = getprop(fdt, "/soc/clint@2000000", "compatible", &len);
	assert_int_equal(len, sizeof(clint_compat));
	assert_memory_equal(p, clint_compat, sizeof(clint_compat));
	expect_reg(fdt, "/soc/clint@2000000", MEM_CLINT_BASE, 0x10000);
	p = getprop(fdt, "/soc/clint@2000000", "interrupts-extended", &len);
	assert_int_equal(len, 16);
	assert_int_equal(cell(p, 0), PHANDLE_CPU_INTC(0));
	assert_int_equal(cell(p, 1), 3);
	assert_int_equal(cell(p, 2), PHANDLE_CPU_INTC(0));
	assert_int_equal(cell(p, 3), 7);

	p = getprop(fdt, "/soc/test@100000", "compatible", &len);
	assert_int_equal(len, sizeof(test_compat));
	assert_memory_equal(p, test_compat, sizeof(test_compat));
	p = getprop(fdt, "/soc/test@100000", "phandle", &len);
	assert_int_equal(cell(p, 0), PHANDLE_SYSCON);
	p = getprop(fdt, "/poweroff", "compatible", &len);
	assert_string_equal(p, "syscon-poweroff");
	p = getprop(fdt, "/poweroff", "regmap", &len);
	assert_int_equal(cell(p, 0), PHANDLE_SYSCON);
	p = getprop(fdt, "/poweroff", "value", &len);
	assert_int_equal(cell(p, 0), 0x5555);
	p = getprop(fdt, "/poweroff", "offset", &len);
	assert_int_equal(cell(p, 0), 0);
	p = getprop(fdt, "/reboot", "compatible", &len);
	assert_string_equal(p, "syscon-reboot");
	p = getprop(fdt, "/reboot", "value", &len);
	assert_int_equal(cell(p, 0), 0x7777);

	p = getprop(fdt, "/soc/rtc@101000", "compatible", &len);
	assert_string_equal(p, "google,goldfish-rtc");
	expect_reg(fdt, "/soc/rtc@101000", MEM_RTC_BASE, 0x1000);
	p = getprop(fdt, "/soc/rtc@101000", "interrupts", &len);
	assert_int_equal(cell(p, 0), IRQ_RTC);
	p = getprop(fdt, "/soc/rtc@101000", "interrupt-parent", &len);
	assert_int_equal(cell(p, 0), PHANDLE_PLIC);
	free(fdt);
}

static void test_registration(void **state)
{
	fixture_t *f = *state;

	/* A second device on the same range is refused. */
	assert_null(uart_new(&f->m, MEM_UART_BASE, IRQ_UART, capture, f));
	assert_null(clint_new(&f->m, MEM_CLINT_BASE));
	assert_ptr_equal(f->m.uart, f->uart);
	assert_ptr_equal(f->m.clint, f->clint);
	/* Addresses without a device are not claimed. */
	assert_null(machine_find_device(&f->m, MEM_UART_BASE + 0x100, 1));
}

/* ---- state-only registry entries ---- */

typedef struct extra_state {
	uint32_t a;
	uint32_t pad;
	uint64_t b;
} extra_state_t;

static const state_field_t extra_fields[] = {
	STATE_U32(extra_state_t, a),
	STATE_U64(extra_state_t, b),
};

static int extra_check(const void *obj, char *err, size_t errlen)
{
	const extra_state_t *s = obj;

	if (s->a > 100) {
		snprintf(err, errlen, "extra: a = %u", s->a);
		return -1;
	}
	return 0;
}

static const state_desc_t extra_desc = {
	.name = "extra",
	.version = 1,
	.min_version = 1,
	.size = sizeof(extra_state_t),
	.fields = extra_fields,
	.nfields = STATE_NFIELDS(extra_fields),
	.check = extra_check,
};

/* The objects whose post_load ran, in order. */
static void *post_log[8];
static unsigned npost;

static int extra_post_load(void *dev)
{
	if (npost < 8)
		post_log[npost++] = dev;
	return 0;
}

static int extra_fdt(void *dev, void *fdt, int soc, struct machine *m)
{
	int node = fdt_add_subnode(fdt, soc, "extra");

	(void)dev;
	(void)m;
	return node < 0 ? node : 0;
}

static uint64_t extra_read(void *dev, uint64_t off, unsigned size)
{
	(void)dev;
	(void)off;
	(void)size;
	return 0x5a;
}

static void extra_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
	(void)dev;
	(void)off;
	(void)val;
	(void)size;
}

static const device_ops_t extra_ops = {.post_load = extra_post_load};
static const device_ops_t extra_fdt_ops = {.post_load = extra_post_load,
					   .fdt = extra_fdt};
static const device_ops_t extra_read_ops = {.read = extra_read};
static const device_ops_t extra_write_ops = {.write = extra_write};

static int add_state_only(machine_t *m, const char *name,
			  const device_ops_t *ops, extra_state_t *obj)
{
	return machine_add_device(m, &(device_t){
					     .name = name,
					     .ops = ops,
					     .dev = obj,
					     .state = obj ? &extra_desc : NULL,
					     .state_obj = obj,
				     });
}

/* The entries the test adds: two state-only ones and an MMIO one at 0. */
static void add_extras(machine_t *m, extra_state_t *e1, extra_state_t *e2)
{
	assert_int_equal(add_state_only(m, "extra1", &extra_ops, e1), 0);
	/* Two state-only entries, both "at" 0: no conflict. */
	assert_int_equal(add_state_only(m, "extra2", &extra_fdt_ops, e2), 0);
	/* An MMIO range over base 0 does not conflict with them either. */
	assert_int_equal(machine_add_device(m, &(device_t){
						       .name = "low",
						       .base = 0,
						       .size = 0x1000,
						       .ops = &extra_read_ops,
					       }),
			 0);
}

static void test_state_only_entry(void **state)
{
	fixture_t *f = *state, *g;
	static extra_state_t e1, e2, g1, g2;
	boot_params_t bp = {"console=ttyS0", 0, 0};
	char err[256], *domain = NULL;
	unsigned n0 = f->m.ndevices, i, nfdt = 0;
	int soc, node, nodes = 0, fd;
	uint64_t v = 0;
	FILE *tmp;

	assert_int_equal(add_state_only(&f->m, "extra1", &extra_ops, &e1), 0);
	assert_int_equal(f->m.ndevices, n0 + 1);
	/* MMIO dispatch never reaches it, not even at its base, 0. */
	assert_null(machine_find_device(&f->m, 0, 1));
	assert_false(machine_mmio_read(&f->m, 0, 4, &v));
	assert_false(machine_mmio_write(&f->m, 0, 4, 1));
	/* The other devices still dispatch. */
	wr(f, UART(SCR), 1, 0x42);
	assert_int_equal(rd(f, UART(SCR), 1), 0x42);

	/* Names are unique among all entries, whichever kind. */
	assert_int_equal(add_state_only(&f->m, "extra1", &extra_ops, &e2), -1);
	assert_int_equal(add_state_only(&f->m, "uart", &extra_ops, &e2), -1);
	assert_int_equal(machine_add_device(&f->m, &(device_t){
							   .name = "extra1",
							   .base = 0x3000,
							   .size = 0x1000,
							   .ops = &extra_ops,
						   }),
			 -1);
	/* Malformed state-only entries. */
	assert_int_equal(machine_add_device(&f->m, &(device_t){
							   .name = "x",
							   .base = 0x3000,
							   .ops = &extra_ops,
							   .state = &extra_desc,
							   .state_obj = &e2,
						   }),
			 -1);
	assert_int_equal(add_state_only(&f->m, "x", &extra_read_ops, &e2), -1);
	assert_int_equal(add_state_only(&f->m, "x", &extra_write_ops, &e2),
			 -1);
	assert_int_equal(add_state_only(&f->m, "x", &extra_ops, NULL), -1);
	assert_int_equal(add_state_only(&f->m, "x", NULL, &e2), -1);
	assert_int_equal(add_state_only(&f->m, "", &extra_ops, &e2), -1);
	assert_int_equal(f->m.ndevices, n0 + 1);

	assert_int_equal(add_state_only(&f->m, "extra2", &extra_fdt_ops, &e2),
			 0);
	assert_int_equal(machine_add_device(&f->m, &(device_t){
							   .name = "low",
							   .base = 0,
							   .size = 0x1000,
							   .ops = &extra_read_ops,
						   }),
			 0);
	/* Address 0 now belongs to the MMIO entry alone. */
	assert_string_equal(machine_find_device(&f->m, 0, 4)->name, "low");
	assert_true(machine_mmio_read(&f->m, 0, 4, &v));
	assert_int_equal(v, 0x5a);

	/*
	 * Device tree: a node only for entries with an fdt op, extra2's
	 * among them; extra1 has none.
	 */
	if (fdt_build(&f->m, &bp, err, sizeof(err)))
		fail_msg("fdt_build: %s", err);
	soc = fdt_path_offset(f->m.fdt, "/soc");
	assert_true(soc >= 0);
	fdt_for_each_subnode(node, f->m.fdt, soc)
		nodes++;
	for (i = 0; i < f->m.ndevices; i++)
		nfdt += f->m.devices[i].ops->fdt != NULL;
	assert_int_equal(nodes, nfdt);
	assert_true(fdt_path_offset(f->m.fdt, "/soc/extra") >= 0);

	/*
	 * A snapshot carries the sections by name into a machine built the
	 * same way; post_load runs in registration order.
	 */
	e1 = (extra_state_t){.a = 7, .b = 0x1122334455667788ull};
	e2 = (extra_state_t){.a = 9, .b = 1};
	g = fixture_new();
	memset(&g1, 0, sizeof(g1));
	memset(&g2, 0, sizeof(g2));
	add_extras(&g->m, &g1, &g2);
	tmp = tmpfile();
	assert_non_null(tmp);
	fd = fileno(tmp);
	if (savevm_save(&f->m, NULL, fd, err, sizeof(err)))
		fail_msg("savevm_save: %s", err);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	npost = 0;
	if (savevm_load(&g->m, fd, &domain, err, sizeof(err)))
		fail_msg("savevm_load: %s", err);
	free(domain);
	assert_memory_equal(&g1, &e1, sizeof(e1));
	assert_memory_equal(&g2, &e2, sizeof(e2));
	assert_int_equal(npost, 2);
	assert_ptr_equal(post_log[0], &g1);
	assert_ptr_equal(post_log[1], &g2);

	/* A section its check hook refuses stops the load. */
	e2.a = 200;
	g2.a = 3;
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	if (savevm_save(&f->m, NULL, fd, err, sizeof(err)))
		fail_msg("savevm_save: %s", err);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_not_equal(savevm_load(&g->m, fd, NULL, err, sizeof(err)),
			     0);
	assert_non_null(strstr(err, "a = 200"));
	assert_int_equal(g2.a, 3);
	fclose(tmp);
	machine_destroy(&g->m);
	free(g);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_uart_tx),
		T(test_uart_rx),
		T(test_uart_thre),
		T(test_uart_dlab_and_misc),
		T(test_clint),
		T(test_plic_claim_complete),
		T(test_plic_priority_threshold),
		T(test_syscon),
		T(test_rtc_time),
		T(test_rtc_alarm),
		T(test_stray_accesses),
		T(test_state_roundtrip),
		T(test_state_check),
		T(test_fdt_nodes),
		T(test_registration),
		T(test_state_only_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
