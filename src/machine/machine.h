/* SPDX-License-Identifier: MIT */
/*
 * The virtual machine: RAM, harts, the device registry and the virtual clock.
 * Memory map follows QEMU's riscv "virt" board, a layout Debian's kernel knows.
 */
#ifndef TERN_MACHINE_H
#define TERN_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/hart.h"
#include "machine/device.h"
#include "machine/ram.h"
#include "machine/vclock.h"

#define MEM_SYSCON_BASE 0x00100000ull
#define MEM_RTC_BASE 0x00101000ull
#define MEM_CLINT_BASE 0x02000000ull
#define MEM_PLIC_BASE 0x0c000000ull
#define MEM_UART_BASE 0x10000000ull
#define MEM_VIRTIO_BASE 0x10001000ull
#define MEM_VIRTIO_STRIDE 0x1000ull
#define MEM_RAM_BASE 0x80000000ull

#define IRQ_VIRTIO_FIRST 1	/* virtio-mmio slot n uses irq 1 + n */
#define IRQ_UART 10
#define IRQ_RTC 11

#define MACHINE_MAX_HARTS 1
#define MACHINE_MAX_VIRTIO 8

/* Device-tree phandles, fixed so devices can refer to each other. */
#define PHANDLE_CPU_INTC(hart) (1u + (hart))	/* per-hart interrupt controller */
#define PHANDLE_CPU(hart) (0x200u + (hart))	/* the cpu node itself */
#define PHANDLE_PLIC 0x100u
#define PHANDLE_SYSCON 0x101u

/* mtime frequency, as on QEMU's virt board */
#define TIMEBASE_HZ 10000000ull

enum power_request {
	POWER_RUN = 0,
	POWER_OFF,
	POWER_RESET,
	POWER_QUIT,		/* host asked (escape key, control socket) */
};

struct plic;
struct clint;
struct uart;
struct rtc;

typedef struct machine {
	ram_t ram;
	vclock_t clock;
	unsigned nharts;
	hart_t harts[MACHINE_MAX_HARTS];
	device_t devices[MACHINE_MAX_DEVICES];
	unsigned ndevices;
	unsigned nvirtio;	/* virtio-mmio slots used */
	struct plic *plic;
	struct clint *clint;
	struct uart *uart;
	struct rtc *rtc;
	enum power_request power;
	/*
	 * Exit status the guest asked for through the syscon: 0 after PASS
	 * or RESET; after FAIL the code from bits 31:16, or 1 when that is 0,
	 * so a failure is never reported as success.
	 */
	int exit_code;
	/* Host console output, for the UART and the SBI debug console. */
	void (*console_tx)(void *opaque, const uint8_t *buf, size_t len);
	void *console_opaque;
	char isa[64];		/* riscv,isa string advertised */
	/* Device tree blob built from the registry at boot. */
	void *fdt;
	uint32_t fdt_size;
} machine_t;

int machine_init(machine_t *m, uint64_t ram_bytes, unsigned nharts, char *err,
		 size_t errlen);
void machine_destroy(machine_t *m);

/*
 * Physical accesses outside RAM (MMIO). Return false when no device claims
 * the address: the CPU raises an access fault.
 */
bool machine_mmio_read(machine_t *m, uint64_t pa, unsigned size,
		       uint64_t *val);
bool machine_mmio_write(machine_t *m, uint64_t pa, unsigned size,
			uint64_t val);

/* Asks every hart to leave hart_run() (power change, host request). */
void machine_request_stop(machine_t *m, enum power_request why);

/* Guest time in TIMEBASE_HZ ticks. */
uint64_t machine_time(const machine_t *m);

/* Raises or lowers timer interrupts from the current guest time. */
void machine_update_timers(machine_t *m);

/* Earliest armed timer deadline in ticks (UINT64_MAX when none). */
uint64_t machine_next_deadline(const machine_t *m);

#endif
