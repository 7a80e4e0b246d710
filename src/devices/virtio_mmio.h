/* SPDX-License-Identifier: MIT */
/*
 * The virtio-mmio transport (virtio 1.2 section 4.2), non-legacy register
 * layout (Version 2) only, generic over the device behind it.
 *
 * A device (blk, net, ...) fills a struct virtio_device_ops and calls
 * virtio_mmio_new(). The transport takes the next slot (base
 * MEM_VIRTIO_BASE + n * MEM_VIRTIO_STRIDE, irq IRQ_VIRTIO_FIRST + n),
 * registers "virtio<n>" with the machine, and handles feature negotiation,
 * status, queue setup, interrupts and the device tree node. The device sees
 * queue notifications and pulls chains with vq_pop() from
 * virtio_mmio_queue(); after pushing used entries it calls
 * virtio_mmio_notify_used(). A device with asynchronous input (a TAP fd
 * polled by the VM's main loop) does the same from that loop, on the VM
 * thread.
 *
 * Malformed input (a bad descriptor chain, bad ring addresses, a QueueNum
 * that is not a power of two) puts the device into DEVICE_NEEDS_RESET
 * (section 2.1.2): the status bit is set, a configuration change interrupt
 * is raised when DRIVER_OK was set, and no queue is processed until the
 * driver resets the device by writing 0 to Status. Devices that can report
 * an error in-band for a well-formed chain (virtio-blk's status byte) do so
 * instead.
 */
#ifndef TERN_VIRTIO_MMIO_H
#define TERN_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtqueue.h"
#include "machine/machine.h"
#include "machine/state.h"

#define VIRTIO_MMIO_MAGIC   0x74726976u /* "virt" */
#define VIRTIO_MMIO_VERSION 2u
#define VIRTIO_MMIO_VENDOR  0x6e726574u /* "tern" */

/* Register offsets (4.2.2, table 4.1) */
#define VIRTIO_MMIO_MAGIC_VALUE		0x000
#define VIRTIO_MMIO_VERSION_REG		0x004
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW	0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW	0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH	0x0a4
#define VIRTIO_MMIO_SHM_SEL		0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW		0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH	0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW	0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH	0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc
#define VIRTIO_MMIO_CONFIG		0x100

/* InterruptStatus bits (4.2.2) */
#define VIRTIO_MMIO_INT_VRING  1u
#define VIRTIO_MMIO_INT_CONFIG 2u

/* Device status bits (2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE	 1u
#define VIRTIO_STATUS_DRIVER		 2u
#define VIRTIO_STATUS_DRIVER_OK		 4u
#define VIRTIO_STATUS_FEATURES_OK	 8u
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40u
#define VIRTIO_STATUS_FAILED		 0x80u

/* Transport feature bits (6) */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX	    29
#define VIRTIO_F_VERSION_1	    32

/* Device IDs (5) */
#define VIRTIO_ID_NET	1
#define VIRTIO_ID_BLOCK 2

#define VIRTIO_MMIO_MAX_QUEUES 8
#define VIRTIO_MMIO_CONFIG_MAX (MEM_VIRTIO_STRIDE - VIRTIO_MMIO_CONFIG)

struct virtio_mmio;

struct virtio_device_ops {
	uint32_t device_id;
	uint32_t nqueues;     /* 1 .. VIRTIO_MMIO_MAX_QUEUES */
	uint32_t queue_max;   /* QueueNumMax: power of two <= VQ_MAX_SIZE */
	uint32_t config_size; /* bytes of device configuration space */
	/* Device feature bits; the transport adds its own (VERSION_1...). */
	uint64_t (*features)(void *dev);
	/* Config space access, off + len <= config_size (little-endian). */
	void (*config_read)(void *dev, uint32_t off, void *buf, uint32_t len);
	void (*config_write)(void *dev, uint32_t off, const void *buf,
			     uint32_t len); /* optional */
	/* The driver notified queue q, which is ready and usable. */
	void (*queue_notify)(void *dev, unsigned q);
	/* Device reset (Status written 0): drop device-side request state. */
	void (*reset)(void *dev); /* optional */
	/* Status changed (e.g. DRIVER_OK set). Optional. */
	void (*status_changed)(void *dev, uint32_t status);
	/* After the transport's state was loaded. Optional. */
	int (*post_load)(void *dev);
	/* Releases the device (fds, memory). Optional. */
	void (*destroy)(void *dev);
	/* Identity of the backend for migration checks (device_ops_t). */
	int (*describe)(void *dev, char *buf, size_t len); /* optional */
};

/* Guest-visible transport state: plain data, saved and migrated. */
typedef struct virtio_mmio_state {
	uint32_t device_id; /* checked on load against the device */
	uint32_t nqueues;   /* idem */
	uint32_t status;
	uint32_t isr; /* InterruptStatus */
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint64_t driver_features; /* accepted once FEATURES_OK is set */
	uint32_t queue_sel;
	uint32_t config_generation;
	vq_state_t q[VIRTIO_MMIO_MAX_QUEUES];
} virtio_mmio_state_t;

extern const state_desc_t virtio_mmio_state_desc;

struct virtio_mmio {
	virtio_mmio_state_t s;
	machine_t *m;
	const struct virtio_device_ops *ops;
	void *dev;
	unsigned slot;
	unsigned irq;
	uint64_t base;
	char name[16];		/* "virtio<n>", the registry and state name */
	const char *last_error; /* why DEVICE_NEEDS_RESET was set */
	struct virtqueue vq[VIRTIO_MMIO_MAX_QUEUES];
};

/*
 * Creates the transport for dev in the next free slot and registers it.
 * On success the transport owns dev: the machine's device teardown calls
 * ops->destroy(dev). On failure dev is untouched and NULL is returned with
 * a message in err.
 */
struct virtio_mmio *virtio_mmio_new(machine_t *m,
				    const struct virtio_device_ops *ops,
				    void *dev, char *err, size_t errlen);

static inline struct virtqueue *virtio_mmio_queue(struct virtio_mmio *t,
						  unsigned q)
{
	return q < t->ops->nqueues ? &t->vq[q] : NULL;
}

/* Whether the driver accepted feature bit (valid from FEATURES_OK on). */
static inline bool virtio_mmio_has_feature(const struct virtio_mmio *t,
					   unsigned bit)
{
	return bit < 64 && ((t->s.driver_features >> bit) & 1);
}

/* DRIVER_OK set and no DEVICE_NEEDS_RESET: queues may be processed. */
static inline bool virtio_mmio_running(const struct virtio_mmio *t)
{
	return (t->s.status &
		(VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ==
	       VIRTIO_STATUS_DRIVER_OK;
}

/*
 * After used entries were flushed on vq: raises the used buffer interrupt
 * unless the driver suppressed it.
 */
void virtio_mmio_notify_used(struct virtio_mmio *t, struct virtqueue *vq);

/* Device configuration changed: bumps ConfigGeneration, interrupts. */
void virtio_mmio_config_changed(struct virtio_mmio *t);

/* The driver broke the protocol: DEVICE_NEEDS_RESET (2.1.2). */
void virtio_mmio_device_error(struct virtio_mmio *t, const char *why);

/* MMIO accessors, also reachable through the machine's registry. */
uint64_t virtio_mmio_read(void *opaque, uint64_t off, unsigned size);
void virtio_mmio_write(void *opaque, uint64_t off, uint64_t val, unsigned size);

#endif
