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

/*
 * A registry entry. Two kinds:
 *
 * MMIO devices (size > 0) own [base, base + size): the registry dispatches
 * guest accesses there to ops->read/write, refuses ranges that overlap RAM
 * or another device, and adds ops->fdt's node to the device tree.
 *
 * State-only entries (size == 0, base 0) own no address range. They exist
 * so that a device living behind another entry's registers (virtio-input
 * behind its virtio-mmio transport, whose entry already carries the
 * transport's section) can register a state section of its own under its
 * own name, e.g. "virtio7-input" next to "virtio7". Such an entry must have
 * a state table and object, and no read or write op. MMIO dispatch never
 * reaches it, it never conflicts with an address range, and it appears in
 * the device tree only if it sets ops->fdt. post_load, destroy and describe
 * work as for any entry.
 *
 * Every entry has ops (possibly all NULL) and a name unique among all
 * entries, state-only ones included: the name is also the state section's
 * name, by which a snapshot's sections are matched to entries.
 *
 * Loading a snapshot loads and checks every section first, then runs the
 * entries' post_load in registration order; machine teardown runs destroy
 * in reverse order. So a state-only entry registered after its transport
 * has all sections loaded when its post_load runs, runs it after the
 * transport's, and is destroyed before the transport.
 */
typedef struct device {
	const char *name;	/* unique instance name, also the state section */
	uint64_t base;		/* 0 for a state-only entry */
	uint64_t size;		/* 0: state-only entry */
	const device_ops_t *ops; /* required */
	void *dev;		/* device object passed to the ops */
	const state_desc_t *state;	/* NULL when the device has no state */
	void *state_obj;	/* the plain struct the table describes */
} device_t;

#define MACHINE_MAX_DEVICES 32

/*
 * Registers a device (a copy of *d; name and objects must outlive the
 * machine). Fails when the registry is full, the name is taken, an MMIO
 * range overlaps RAM or another device, or a state-only entry is malformed
 * (nonzero base, read/write ops, no state).
 */
int machine_add_device(struct machine *m, const device_t *d);

/* MMIO device covering [pa, pa+size), or NULL (never a state-only entry). */
const device_t *machine_find_device(const struct machine *m, uint64_t pa,
				    unsigned size);

/* Raises or lowers an interrupt line of the PLIC (source 1..). */
void machine_set_irq(struct machine *m, unsigned irq, bool level);

#endif
