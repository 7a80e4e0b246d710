/* SPDX-License-Identifier: MIT */
/*
 * The device registry. Each device registers once; the registry then drives
 * MMIO dispatch, the device tree and the list of state sections, so nothing is
 * listed twice (ARCHITECTURE.md rule 2).
 */
#ifndef TERN_DEVICE_H
#define TERN_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/state.h"

struct machine;

typedef struct device_ops {
	/*
	 * MMIO accessors: off is relative to the device base, size is 1, 2, 4
	 * or 8. Accesses the device does not implement read 0 / are ignored,
	 * as on real hardware.
	 */
	uint64_t (*read)(void *dev, uint64_t off, unsigned size);
	void (*write)(void *dev, uint64_t off, uint64_t val, unsigned size);
	/* Adds the device's node(s) under /soc of the device tree. */
	int (*fdt)(void *dev, void *fdt, int soc_node, struct machine *m);
	/* Rebuilds host-side derived state after the state section loaded. */
	int (*post_load)(void *dev);
	/* Releases host resources (fds, buffers). */
	void (*destroy)(void *dev);
	/*
	 * Optional: a short identity of the host resource behind the device,
	 * e.g. "virtio-blk path=/x.img size=N ro=0 serial=s", written
	 * NUL-terminated into buf. A migration destination refuses a stream
	 * whose device identities differ from its own. Returns 0, or -1 when
	 * len is too small.
	 */
	int (*describe)(void *dev, char *buf, size_t len);
} device_ops_t;

typedef struct device {
	const char *name;	/* unique instance name, also the state section */
	uint64_t base;
	uint64_t size;
	const device_ops_t *ops;
	void *dev;		/* device object passed to the ops */
	const state_desc_t *state;	/* NULL when the device has no state */
	void *state_obj;	/* the plain struct the table describes */
} device_t;

#define MACHINE_MAX_DEVICES 32

/* Registers a device. Fails on overlap with RAM or another device. */
int machine_add_device(struct machine *m, const device_t *d);

/* Device covering [pa, pa+size), or NULL. */
const device_t *machine_find_device(const struct machine *m, uint64_t pa,
				    unsigned size);

/* Raises or lowers an interrupt line of the PLIC (source 1..). */
void machine_set_irq(struct machine *m, unsigned irq, bool level);

#endif
