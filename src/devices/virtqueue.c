// SPDX-License-Identifier: MIT
/*
 * Split virtqueues, device side (virtio 1.2 section 2.7).
 *
 * Ring layout in guest memory, all little-endian (2.7.5 - 2.7.8):
 *   descriptor table  num x { le64 addr; le32 len; le16 flags; le16 next; }
 *   available ring    le16 flags; le16 idx; le16 ring[num]; le16 used_event;
 *   used ring         le16 flags; le16 idx; { le32 id; le32 len; }[num];
 *                     le16 avail_event;
 *
 * The driver may change any of it at any time, so every value is read once
 * into a local and checked there; nothing read from guest memory is used as
 * an index or length before it was checked.
 */
#include "devices/virtqueue.h"

#include <endian.h>
#include <string.h>

#define VQ_DESC_SIZE 16

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

void vq_init(struct virtqueue *vq, vq_state_t *s, ram_t *ram, unsigned index,
	     vq_error_fn *error, void *opaque)
{
	memset(vq, 0, sizeof(*vq));
	vq->s = s;
	vq->ram = ram;
	vq->index = index;
	vq->error = error;
	vq->opaque = opaque;
}

void vq_reset(struct virtqueue *vq, uint32_t num_max)
{
	memset(vq->s, 0, sizeof(*vq->s));
	vq->s->num = num_max;
	vq->indirect = false;
	vq->event_idx = false;
	vq->broken = false;
	vq_disable(vq);
}

void vq_set_features(struct virtqueue *vq, bool indirect, bool event_idx)
{
	vq->indirect = indirect;
	vq->event_idx = event_idx;
}

uint64_t vq_desc_bytes(uint32_t num)
{
	return (uint64_t)num * VQ_DESC_SIZE;
}

uint64_t vq_avail_bytes(uint32_t num)
{
	return 6 + 2 * (uint64_t)num;
}

uint64_t vq_used_bytes(uint32_t num)
{
	return 6 + 8 * (uint64_t)num;
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

int vq_enable(struct virtqueue *vq, const char **why)
{
	const vq_state_t *s = vq->s;
	uint8_t *d, *a, *u;

	vq_disable(vq);
	if (!is_pow2(s->num) || s->num > VQ_MAX_SIZE) {
		*why = "queue size is not a power of two within the maximum";
		return -1;
	}
	/* Alignment the driver must honour (2.7.2); it keeps our accesses
	 * to ring fields naturally aligned. */
	if (s->desc_addr % VIRTQ_DESC_ALIGN ||
	    s->avail_addr % VIRTQ_AVAIL_ALIGN ||
	    s->used_addr % VIRTQ_USED_ALIGN) {
		*why = "virtqueue ring misaligned";
		return -1;
	}
	d = ram_ptr(vq->ram, s->desc_addr, vq_desc_bytes(s->num));
	a = ram_ptr(vq->ram, s->avail_addr, vq_avail_bytes(s->num));
	u = ram_ptr(vq->ram, s->used_addr, vq_used_bytes(s->num));
	if (!d || !a || !u) {
		*why = "virtqueue ring outside RAM";
		return -1;
	}
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	return 0;
}

void vq_disable(struct virtqueue *vq)
{
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
}

/* Ring field accessors. Fields are naturally aligned (checked in enable). */
static inline uint16_t ring_load16(const uint8_t *p, int order)
{
	return le16toh(
		__atomic_load_n((const uint16_t *)(const void *)p, order));
}

static inline void ring_store16(uint8_t *p, uint16_t v, int order)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), order);
}

static int vq_fail(struct virtqueue *vq, const char *why)
{
	vq->broken = true;
	if (vq->error)
		vq->error(vq->opaque, why);
	return -1;
}

static void desc_decode(struct vq_desc *d, const uint8_t *p)
{
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;

	/* One copy out of guest memory, then only the copy is used. */
	memcpy(&addr, p, 8);
	memcpy(&len, p + 8, 4);
	memcpy(&flags, p + 12, 2);
	memcpy(&next, p + 14, 2);
	d->addr = le64toh(addr);
	d->len = le32toh(len);
	d->flags = le16toh(flags);
	d->next = le16toh(next);
}

static const char *elem_add(const struct virtqueue *vq, struct vq_elem *e,
			    const struct vq_desc *d)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	unsigned n = e->nread + e->nwrite;

	if (!ram_contains(vq->ram, d->addr, d->len))
		return "descriptor buffer outside RAM";
	/* 2.7.4.2: readable elements come first; devices rely on it. */
	if (!writable && e->nwrite)
		return "device-readable descriptor after a device-writable one";
	if (!d->len)
		return NULL;
	if (n >= VQ_MAX_SEGS)
		return "descriptor chain too long";
	e->seg[n].gpa = d->addr;
	e->seg[n].len = d->len;
	if (writable) {
		e->nwrite++;
		e->write_len += d->len;
	} else {
		e->nread++;
		e->read_len += d->len;
	}
	return NULL;
}

/* 2.7.5.3: an indirect table is walked from entry 0, and may not nest. */
static const char *elem_add_indirect(const struct virtqueue *vq,
				     struct vq_elem *e,
				     const struct vq_desc *ind)
{
	const uint8_t *table;
	uint32_t count, seen = 0, j = 0;
	struct vq_desc d;
	const char *why;

	if (!vq->indirect)
		return "indirect descriptor without "
		       "VIRTIO_RING_F_INDIRECT_DESC";
	if (ind->flags & VIRTQ_DESC_F_NEXT)
		return "indirect descriptor with NEXT set";
	if (!ind->len || ind->len % VQ_DESC_SIZE)
		return "indirect table length not a multiple of 16";
	count = ind->len / VQ_DESC_SIZE;
	if (count > VQ_MAX_SEGS)
		return "indirect table too large";
	table = ram_ptr(vq->ram, ind->addr, ind->len);
	if (!table)
		return "indirect table outside RAM";
	for (;;) {
		if (++seen > count)
			return "indirect descriptor chain loops";
		desc_decode(&d, table + (uint64_t)j * VQ_DESC_SIZE);
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return "nested indirect descriptor";
		why = elem_add(vq, e, &d);
		if (why)
			return why;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return NULL;
		j = d.next;
		if (j >= count)
			return "indirect descriptor index out of range";
	}
}

static const char *elem_walk(const struct virtqueue *vq, struct vq_elem *e,
			     uint16_t head)
{
	uint32_t num = vq->s->num, seen = 0, i = head;
	struct vq_desc d;
	const char *why;

	e->head = head;
	e->nread = e->nwrite = 0;
	e->read_len = e->write_len = 0;
	for (;;) {
		if (i >= num)
			return "descriptor index out of range";
		/* A chain is at most num long (2.7.5.2): longer means a loop.
		 */
		if (++seen > num)
			return "descriptor chain loops";
		desc_decode(&d, vq->desc + (uint64_t)i * VQ_DESC_SIZE);
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return elem_add_indirect(vq, e, &d);
		why = elem_add(vq, e, &d);
		if (why)
			return why;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return NULL;
		i = d.next;
	}
}

static uint8_t *avail_event_ptr(const struct virtqueue *vq)
{
	return vq->used + 4 + 8 * (uint64_t)vq->s->num;
}

static uint8_t *used_event_ptr(const struct virtqueue *vq)
{
	return vq->avail + 4 + 2 * (uint64_t)vq->s->num;
}

int vq_pop(struct virtqueue *vq, struct vq_elem *e)
{
	vq_state_t *s = vq->s;
	uint16_t avail_idx, head, pending;
	const char *why;

	if (!vq_usable(vq))
		return 0;
	avail_idx = ring_load16(vq->avail + 2, __ATOMIC_ACQUIRE);
	if (avail_idx == s->last_avail_idx && vq->event_idx) {
		/*
		 * Empty: ask to be notified of the next buffer (2.7.10), then
		 * look again in case the driver added one meanwhile and read
		 * the old avail_event.
		 */
		ring_store16(avail_event_ptr(vq), s->last_avail_idx,
			     __ATOMIC_RELAXED);
		ram_mark_dirty(vq->ram, s->used_addr + 4 + 8 * (uint64_t)s->num,
			       2);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = ring_load16(vq->avail + 2, __ATOMIC_ACQUIRE);
	}
	pending = (uint16_t)(avail_idx - s->last_avail_idx);
	if (!pending)
		return 0;
	if (pending > s->num)
		return vq_fail(
			vq,
			"available index ahead by more than the queue size");
	head = ring_load16(vq->avail + 4 +
				   2 * (s->last_avail_idx & (s->num - 1)),
			   __ATOMIC_RELAXED);
	why = elem_walk(vq, e, head);
	if (why)
		return vq_fail(vq, why);
	s->last_avail_idx++;
	return 1;
}

void vq_unpop(struct virtqueue *vq, unsigned n)
{
	vq->s->last_avail_idx -= (uint16_t)n;
}

unsigned vq_pending(const struct virtqueue *vq)
{
	uint16_t n;

	if (!vq_usable(vq))
		return 0;
	n = ring_load16(vq->avail + 2, __ATOMIC_ACQUIRE) -
	    vq->s->last_avail_idx;
	return n <= vq->s->num ? n : 0;
}

void vq_fill(struct virtqueue *vq, unsigned off, uint16_t head, uint32_t len)
{
	vq_state_t *s = vq->s;
	uint32_t slot, v[2];

	if (!vq->used)
		return;
	slot = (uint16_t)(s->used_idx + off) & (s->num - 1);
	v[0] = htole32(head);
	v[1] = htole32(len);
	memcpy(vq->used + 4 + 8 * (uint64_t)slot, v, sizeof(v));
	ram_mark_dirty(vq->ram, s->used_addr + 4 + 8 * (uint64_t)slot, 8);
}

void vq_flush(struct virtqueue *vq, unsigned n)
{
	vq_state_t *s = vq->s;

	if (!vq->used)
		return;
	s->used_idx += (uint16_t)n;
	/* Entries must be visible before the index that publishes them. */
	ring_store16(vq->used + 2, s->used_idx, __ATOMIC_RELEASE);
	ram_mark_dirty(vq->ram, s->used_addr + 2, 2);
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	vq_fill(vq, 0, head, len);
	vq_flush(vq, 1);
}

bool vq_should_interrupt(struct virtqueue *vq)
{
	vq_state_t *s = vq->s;
	uint16_t old, event;
	bool valid;

	if (!vq->avail)
		return false;
	/* Our used->idx store must be ordered before reading the driver's
	 * suppression state, or a wakeup can be lost. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(ring_load16(vq->avail, __ATOMIC_RELAXED) &
			 VIRTQ_AVAIL_F_NO_INTERRUPT);
	old = s->signalled_used;
	valid = s->signalled_valid;
	s->signalled_used = s->used_idx;
	s->signalled_valid = 1;
	if (!valid)
		return true;
	event = ring_load16(used_event_ptr(vq), __ATOMIC_RELAXED);
	/* vring_need_event(), 2.7.10: did used idx pass used_event? */
	return (uint16_t)(s->used_idx - event - 1) <
	       (uint16_t)(s->used_idx - old);
}

static void part(const struct vq_elem *e, bool writable, unsigned *first,
		 unsigned *count, uint64_t *bytes)
{
	*first = writable ? e->nread : 0;
	*count = writable ? e->nwrite : e->nread;
	*bytes = writable ? e->write_len : e->read_len;
}

size_t vq_elem_read(const struct virtqueue *vq, const struct vq_elem *e,
		    uint64_t off, void *buf, size_t len)
{
	unsigned first, count, i;
	uint64_t bytes;
	size_t done = 0;

	part(e, false, &first, &count, &bytes);
	for (i = first; i < first + count && done < len; i++) {
		const struct vq_seg *sg = &e->seg[i];
		uint64_t n;

		if (off >= sg->len) {
			off -= sg->len;
			continue;
		}
		n = sg->len - off;
		if (n > len - done)
			n = len - done;
		if (ram_dma_read(vq->ram, sg->gpa + off, (uint8_t *)buf + done,
				 n))
			break;
		done += n;
		off = 0;
	}
	return done;
}

size_t vq_elem_write(struct virtqueue *vq, const struct vq_elem *e,
		     uint64_t off, const void *buf, size_t len)
{
	unsigned first, count, i;
	uint64_t bytes;
	size_t done = 0;

	part(e, true, &first, &count, &bytes);
	for (i = first; i < first + count && done < len; i++) {
		const struct vq_seg *sg = &e->seg[i];
		uint64_t n;

		if (off >= sg->len) {
			off -= sg->len;
			continue;
		}
		n = sg->len - off;
		if (n > len - done)
			n = len - done;
		if (ram_dma_write(vq->ram, sg->gpa + off,
				  (const uint8_t *)buf + done, n))
			break;
		done += n;
		off = 0;
	}
	return done;
}

int vq_elem_iov(const struct virtqueue *vq, const struct vq_elem *e,
		bool writable, uint64_t off, uint64_t len, struct iovec *iov,
		int max)
{
	unsigned first, count, i;
	uint64_t bytes;
	int n = 0;

	part(e, writable, &first, &count, &bytes);
	if (off > bytes || len > bytes - off)
		return -1;
	for (i = first; i < first + count && len; i++) {
		const struct vq_seg *sg = &e->seg[i];
		uint64_t take;
		uint8_t *p;

		if (off >= sg->len) {
			off -= sg->len;
			continue;
		}
		take = sg->len - off;
		if (take > len)
			take = len;
		p = ram_ptr(vq->ram, sg->gpa + off, take);
		if (!p || n >= max)
			return -1;
		iov[n].iov_base = p;
		iov[n].iov_len = take;
		n++;
		len -= take;
		off = 0;
	}
	return n;
}

void vq_elem_mark_dirty(struct virtqueue *vq, const struct vq_elem *e,
			uint64_t off, uint64_t len)
{
	unsigned first, count, i;
	uint64_t bytes;

	part(e, true, &first, &count, &bytes);
	for (i = first; i < first + count && len; i++) {
		const struct vq_seg *sg = &e->seg[i];
		uint64_t take;

		if (off >= sg->len) {
			off -= sg->len;
			continue;
		}
		take = sg->len - off;
		if (take > len)
			take = len;
		ram_mark_dirty(vq->ram, sg->gpa + off, take);
		len -= take;
		off = 0;
	}
}
