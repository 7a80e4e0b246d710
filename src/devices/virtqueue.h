/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.2 section 2.7), device side.
 *
 * The guest-visible part of a queue (ring addresses, size, the device's ring
 * indices, notification bookkeeping) is plain data in vq_state_t, embedded in
 * the transport's state struct and saved with it. struct virtqueue adds the
 * host side: the RAM the rings live in, cached host pointers to the rings
 * (re-derived by vq_enable() after a load) and the negotiated ring features.
 *
 * Every descriptor is hostile input. vq_pop() validates a whole chain before
 * it hands out anything: descriptor indices, chain length (bounded by the
 * queue size, indirect tables by VQ_MAX_SEGS, no nested indirect tables),
 * every segment entirely inside RAM, device-readable segments before
 * device-writable ones (2.7.4.2), and the avail index never more than the
 * queue size ahead of the device. A chain that breaks any of these is not
 * consumed: the queue's error callback runs (the transport sets
 * DEVICE_NEEDS_RESET, section 2.1.2) and the queue stops until reset.
 *
 * Callers: everything here runs on the thread that runs the VM (devices are
 * driven from MMIO writes and from the VM's main loop), so no locking.
 */
#ifndef TERN_VIRTQUEUE_H
#define TERN_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "machine/ram.h"

/* Largest queue size a device may offer (the spec allows 32768). */
#define VQ_MAX_SIZE 1024
/* Most segments in one chain, direct and indirect together (= IOV_MAX). */
#define VQ_MAX_SEGS 1024

/* Descriptor flags (2.7.5) */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
/* avail->flags (2.7.6) and used->flags (2.7.8) */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	   1

/* Ring alignment required of the driver (2.7.2) */
#define VIRTQ_DESC_ALIGN  16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN  4

/* Guest-visible state of one queue: plain data, saved and migrated. */
typedef struct vq_state {
	uint64_t desc_addr;	 /* QueueDesc: descriptor table */
	uint64_t avail_addr;	 /* QueueDriver: available ring */
	uint64_t used_addr;	 /* QueueDevice: used ring */
	uint32_t num;		 /* QueueNum: power of two, <= QueueNumMax */
	uint32_t ready;		 /* QueueReady: 0 or 1 */
	uint16_t last_avail_idx; /* next avail ring slot to consume */
	uint16_t used_idx;	 /* device's copy of used->idx */
	uint16_t signalled_used; /* used_idx when last interrupt decided */
	uint8_t signalled_valid; /* signalled_used meaningful */
	uint8_t pad;
} vq_state_t;

/* One guest-physical segment of a chain, already checked to be in RAM. */
struct vq_seg {
	uint64_t gpa;
	uint32_t len;
};

/*
 * A popped chain. seg[0, nread) are device-readable, then
 * seg[nread, nread + nwrite) device-writable. Zero-length descriptors are
 * dropped. Large (~16 KiB): keep one in the device object, not on the stack.
 */
struct vq_elem {
	uint16_t head; /* goes back in the used ring */
	uint16_t nread;
	uint16_t nwrite;
	uint64_t read_len;  /* bytes in the readable segments */
	uint64_t write_len; /* bytes in the writable segments */
	struct vq_seg seg[VQ_MAX_SEGS];
};

typedef void vq_error_fn(void *opaque, const char *why);

struct virtqueue {
	vq_state_t *s; /* lives in the transport's state struct */
	ram_t *ram;
	unsigned index;
	bool indirect;	/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool broken;	/* malformed input seen; cleared by reset */
	/* Host views of the rings, valid while enabled (s->ready). */
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
	vq_error_fn *error;
	void *opaque;
};

void vq_init(struct virtqueue *vq, vq_state_t *s, ram_t *ram, unsigned index,
	     vq_error_fn *error, void *opaque);

/* Back to the reset state: not ready, no rings, size num_max. */
void vq_reset(struct virtqueue *vq, uint32_t num_max);

void vq_set_features(struct virtqueue *vq, bool indirect, bool event_idx);

/* Bytes of each ring for a queue of num entries (event fields included). */
uint64_t vq_desc_bytes(uint32_t num);
uint64_t vq_avail_bytes(uint32_t num);
uint64_t vq_used_bytes(uint32_t num);

/*
 * Checks the ring addresses and size in s (entirely in RAM, aligned, size a
 * power of two) and caches host pointers. Used when the driver sets
 * QueueReady and after a load. Returns 0, or -1 with *why set (the queue is
 * then left unusable).
 */
int vq_enable(struct virtqueue *vq, const char **why);
void vq_disable(struct virtqueue *vq);

static inline bool vq_usable(const struct virtqueue *vq)
{
	return vq->s->ready && vq->desc && !vq->broken;
}

/*
 * Takes the next available chain. Returns 1 with *e filled, 0 when the
 * queue is empty (or unusable), -1 when the chain or ring is malformed: the
 * error callback has run and the queue is stopped. When it returns 0 with
 * EVENT_IDX negotiated, avail_event is published so the driver notifies on
 * the next buffer.
 */
int vq_pop(struct virtqueue *vq, struct vq_elem *e);

/* Gives the last n popped chains back (e.g. a packet did not fit). */
void vq_unpop(struct virtqueue *vq, unsigned n);

/* Number of chains the driver has made available and we have not popped. */
unsigned vq_pending(const struct virtqueue *vq);

/*
 * Used ring: vq_fill() writes entry number used_idx + off, vq_flush() then
 * publishes n entries at once (several chains for one packet); vq_push() is
 * fill + flush of one entry. len is the number of bytes written into the
 * chain's writable segments (2.7.8).
 */
void vq_fill(struct virtqueue *vq, unsigned off, uint16_t head, uint32_t len);
void vq_flush(struct virtqueue *vq, unsigned n);
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);

/*
 * After entries were flushed: whether the driver wants a used buffer
 * notification now (avail->flags, or used_event with EVENT_IDX, 2.7.7.2).
 * Updates the bookkeeping, so call it once per flush batch.
 */
bool vq_should_interrupt(struct virtqueue *vq);

/*
 * Data access. Offsets count from the start of the readable (or writable)
 * part of the chain. Reads and writes are clipped to that part and return
 * the bytes moved; writes go through ram_dma_write() (dirty log).
 */
size_t vq_elem_read(const struct virtqueue *vq, const struct vq_elem *e,
		    uint64_t off, void *buf, size_t len);
size_t vq_elem_write(struct virtqueue *vq, const struct vq_elem *e,
		     uint64_t off, const void *buf, size_t len);

/*
 * Host iovecs for bytes [off, off + len) of the readable or writable part,
 * for preadv()/pwritev() straight into guest RAM. Returns the number of
 * iovecs, or -1 when the range is not entirely inside that part or needs
 * more than max. After the host wrote through them, call
 * vq_elem_mark_dirty() for the same range.
 */
int vq_elem_iov(const struct virtqueue *vq, const struct vq_elem *e,
		bool writable, uint64_t off, uint64_t len, struct iovec *iov,
		int max);
void vq_elem_mark_dirty(struct virtqueue *vq, const struct vq_elem *e,
			uint64_t off, uint64_t len);

#endif
