/* SPDX-License-Identifier: MIT */
/*
 * A test's virtio driver: guest memory as the driver sees it, the device's
 * MMIO registers, the features handshake and split virtqueue rings built in
 * guest RAM (virtio 1.1, 2.6 and 4.2.2).
 *
 * The including test includes cmocka.h and defines, first, RAM_BYTES (the
 * guest's RAM), QSIZE (the size of the rings its driver builds) and
 * fixture_t with the machine (machine_t m), the device's transport
 * (struct virtio_mmio *t) and its MMIO base (uint64_t base).
 */
#ifndef TERN_TEST_VIRTIO_HARNESS_H
#define TERN_TEST_VIRTIO_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/plic.h"
#include "devices/virtio_mmio.h"
#include "machine/machine.h"
#include "machine/platform.h"

/* --- the board ---------------------------------------------------------- */

static inline void console_discard(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	(void)len;
}

/* f->m as tern-vmm builds it (platform_create), the console dropped. */
static inline void board_init(fixture_t *f)
{
	char err[256];

	if (machine_init(&f->m, RAM_BYTES, 1, err, sizeof(err)))
		fail_msg("machine_init: %s", err);
	if (platform_create(&f->m, console_discard, NULL, err, sizeof(err)))
		fail_msg("platform_create: %s", err);
}

/* The machine's registry entry called name (devices and their state). */
static inline const device_t *entry(machine_t *m, const char *name)
{
	for (unsigned i = 0; i < m->ndevices; i++)
		if (!strcmp(m->devices[i].name, name))
			return &m->devices[i];
	fail_msg("no registry entry %s", name);
	return NULL;
}

/* The level of the device's interrupt line at the PLIC. */
static inline bool line(fixture_t *f)
{
	unsigned irq = f->t->irq;

	return (f->m.plic->s.level[irq / 32] >> (irq % 32)) & 1;
}

/* --- guest memory ------------------------------------------------------- */

static inline uint8_t *gp(fixture_t *f, uint64_t gpa, uint64_t len)
{
	uint8_t *p = ram_ptr(&f->m.ram, gpa, len);

	if (!p) {
		fail_msg("0x%llx + %llu is not in RAM", (unsigned long long)gpa,
			 (unsigned long long)len);
		abort(); /* not reached; tells the compiler p is set */
	}
	return p;
}

static inline void gw16(fixture_t *f, uint64_t gpa, uint16_t v)
{
	memcpy(gp(f, gpa, 2), &v, 2);
}

static inline void gw32(fixture_t *f, uint64_t gpa, uint32_t v)
{
	memcpy(gp(f, gpa, 4), &v, 4);
}

static inline void gw64(fixture_t *f, uint64_t gpa, uint64_t v)
{
	memcpy(gp(f, gpa, 8), &v, 8);
}

static inline uint16_t gr16(fixture_t *f, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, gp(f, gpa, 2), 2);
	return v;
}

static inline uint32_t gr32(fixture_t *f, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, gp(f, gpa, 4), 4);
	return v;
}

/* Descriptor i of the table at guest address table. */
static inline void set_desc_at(fixture_t *f, uint64_t table, unsigned i,
			       uint64_t addr, uint32_t len, uint16_t flags,
			       uint16_t next)
{
	uint64_t d = table + 16ull * i;

	gw64(f, d, addr);
	gw32(f, d + 8, len);
	gw16(f, d + 12, flags);
	gw16(f, d + 14, next);
}

/* --- MMIO --------------------------------------------------------------- */

static inline uint64_t rdn(fixture_t *f, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	assert_true(machine_mmio_read(&f->m, f->base + off, size, &v));
	return v;
}

static inline uint32_t rd(fixture_t *f, uint64_t off)
{
	return (uint32_t)rdn(f, off, 4);
}

static inline void wr(fixture_t *f, uint64_t off, uint32_t v)
{
	assert_true(machine_mmio_write(&f->m, f->base + off, 4, v));
}

static inline void wr8(fixture_t *f, uint64_t off, uint8_t v)
{
	assert_true(machine_mmio_write(&f->m, f->base + off, 1, v));
}

/* --- the driver --------------------------------------------------------- */

static inline uint64_t device_features(fixture_t *f)
{
	uint64_t lo, hi;

	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = rd(f, VIRTIO_MMIO_DEVICE_FEATURES);
	return hi << 32 | lo;
}

/* Features handshake (3.1.1). Returns whether FEATURES_OK stuck. */
static inline bool negotiate(fixture_t *f, uint64_t feat)
{
	wr(f, VIRTIO_MMIO_STATUS, 0);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)feat);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(feat >> 32));
	wr(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		   VIRTIO_STATUS_FEATURES_OK);
	return rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK;
}

/*
 * Sets queue q up with QSIZE entries at desc, avail and used (zeroed by the
 * caller), after checking that it is not ready yet and that the device
 * offers num_max entries.
 */
static inline void queue_setup(fixture_t *f, unsigned q, unsigned num_max,
			       uint64_t desc, uint64_t avail, uint64_t used)
{
	wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), num_max);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 1);
}

/*
 * Makes descriptor head (already written) available in the ring at avail,
 * whose index the driver keeps in *idx, and notifies queue q if kick.
 */
static inline void ring_post(fixture_t *f, unsigned q, uint64_t avail,
			     uint16_t *idx, uint16_t head, bool kick)
{
	gw16(f, avail + 4 + 2 * (*idx % QSIZE), head);
	(*idx)++;
	gw16(f, avail + 2, *idx);
	if (kick)
		wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

#endif
