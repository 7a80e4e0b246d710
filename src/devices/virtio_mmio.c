// SPDX-License-Identifier: MIT
/*
 * virtio-mmio transport, Version 2 register layout (virtio 1.2 section 4.2).
 *
 * Control registers are 32 bits wide and the driver must access them with
 * aligned 32-bit accesses (4.2.2.2); other accesses to them read 0 and are
 * ignored. The device configuration space at 0x100 takes any access size.
 */
#include "devices/virtio_mmio.h"

#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T virtio_mmio_state_t
#define VQ_FIELDS(i)                                                           \
	STATE_U64(T, q[i].desc_addr), STATE_U64(T, q[i].avail_addr),           \
		STATE_U64(T, q[i].used_addr), STATE_U32(T, q[i].num),          \
		STATE_U32(T, q[i].ready), STATE_U16(T, q[i].last_avail_idx),   \
		STATE_U16(T, q[i].used_idx),                                   \
		STATE_U16(T, q[i].signalled_used),                             \
		STATE_U8(T, q[i].signalled_valid)

_Static_assert(VIRTIO_MMIO_MAX_QUEUES == 8, "state table lists 8 queues");

static const state_field_t virtio_mmio_fields[] = {
	STATE_U32(T, device_id),
	STATE_U32(T, nqueues),
	STATE_U32(T, status),
	STATE_U32(T, isr),
	STATE_U32(T, device_features_sel),
	STATE_U32(T, driver_features_sel),
	STATE_U64(T, driver_features),
	STATE_U32(T, queue_sel),
	STATE_U32(T, config_generation),
	VQ_FIELDS(0),
	VQ_FIELDS(1),
	VQ_FIELDS(2),
	VQ_FIELDS(3),
	VQ_FIELDS(4),
	VQ_FIELDS(5),
	VQ_FIELDS(6),
	VQ_FIELDS(7),
};

#undef VQ_FIELDS
#undef T

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/*
 * Validates a loaded state struct. Whatever depends on the device behind
 * the transport or on RAM (device id, queue maximum, rings inside RAM) is
 * checked by post_load, which knows both.
 */
static int virtio_mmio_state_check(const void *obj, char *err, size_t errlen)
{
	const virtio_mmio_state_t *s = obj;
	unsigned i;

	if (!s->nqueues || s->nqueues > VIRTIO_MMIO_MAX_QUEUES) {
		snprintf(err, errlen, "virtio-mmio: bad queue count %u",
			 s->nqueues);
		return -1;
	}
	if (s->status > 0xff || (s->isr & ~3u)) {
		snprintf(err, errlen,
			 "virtio-mmio: bad status 0x%x or isr 0x%x", s->status,
			 s->isr);
		return -1;
	}
	if ((s->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !((s->driver_features >> VIRTIO_F_VERSION_1) & 1)) {
		snprintf(err, errlen,
			 "virtio-mmio: FEATURES_OK without VIRTIO_F_VERSION_1");
		return -1;
	}
	for (i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		const vq_state_t *q = &s->q[i];
		uint16_t inflight = q->last_avail_idx - q->used_idx;

		if (i >= s->nqueues) {
			if (q->ready || q->num) {
				snprintf(err, errlen,
					 "virtio-mmio: queue %u does not exist",
					 i);
				return -1;
			}
			continue;
		}
		if (!is_pow2(q->num) || q->num > VQ_MAX_SIZE) {
			snprintf(err, errlen,
				 "virtio-mmio: queue %u size %u invalid", i,
				 q->num);
			return -1;
		}
		if (q->ready > 1 || q->signalled_valid > 1) {
			snprintf(err, errlen, "virtio-mmio: queue %u flags", i);
			return -1;
		}
		if (inflight > q->num) {
			snprintf(err, errlen,
				 "virtio-mmio: queue %u indices %u/%u "
				 "inconsistent",
				 i, q->last_avail_idx, q->used_idx);
			return -1;
		}
		if (q->ready && (q->desc_addr % VIRTQ_DESC_ALIGN ||
				 q->avail_addr % VIRTQ_AVAIL_ALIGN ||
				 q->used_addr % VIRTQ_USED_ALIGN)) {
			snprintf(err, errlen,
				 "virtio-mmio: queue %u rings misaligned", i);
			return -1;
		}
	}
	return 0;
}

const state_desc_t virtio_mmio_state_desc = {
	.name = "virtio-mmio",
	.version = 1,
	.min_version = 1,
	.size = sizeof(virtio_mmio_state_t),
	.fields = virtio_mmio_fields,
	.nfields = STATE_NFIELDS(virtio_mmio_fields),
	.check = virtio_mmio_state_check,
};

static uint64_t offered_features(const struct virtio_mmio *t)
{
	return t->ops->features(t->dev) | (1ull << VIRTIO_F_VERSION_1) |
	       (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
	       (1ull << VIRTIO_RING_F_EVENT_IDX);
}

static void update_irq(struct virtio_mmio *t)
{
	machine_set_irq(t->m, t->irq, t->s.isr != 0);
}

static void raise_isr(struct virtio_mmio *t, uint32_t bits)
{
	t->s.isr |= bits;
	update_irq(t);
}

void virtio_mmio_notify_used(struct virtio_mmio *t, struct virtqueue *vq)
{
	if (vq_should_interrupt(vq))
		raise_isr(t, VIRTIO_MMIO_INT_VRING);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	t->s.config_generation++;
	/* No notifications before DRIVER_OK (3.1.1). */
	if (t->s.status & VIRTIO_STATUS_DRIVER_OK)
		raise_isr(t, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio_device_error(struct virtio_mmio *t, const char *why)
{
	unsigned i;

	if (t->s.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	t->last_error = why;
	t->s.status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	for (i = 0; i < t->ops->nqueues; i++)
		t->vq[i].broken = true;
	/* 2.1.2: with DRIVER_OK set, announce it as a config change. */
	if (t->s.status & VIRTIO_STATUS_DRIVER_OK)
		raise_isr(t, VIRTIO_MMIO_INT_CONFIG);
}

static void vq_error(void *opaque, const char *why)
{
	virtio_mmio_device_error(opaque, why);
}

/* Device reset (2.4): back to the state after power-on. */
static void transport_reset(struct virtio_mmio *t)
{
	unsigned i;

	for (i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		vq_reset(&t->vq[i],
			 i < t->ops->nqueues ? t->ops->queue_max : 0);
	t->s.status = 0;
	t->s.isr = 0;
	t->s.device_features_sel = 0;
	t->s.driver_features_sel = 0;
	t->s.driver_features = 0;
	t->s.queue_sel = 0;
	t->last_error = NULL;
}

static void apply_features(struct virtio_mmio *t)
{
	bool ind = virtio_mmio_has_feature(t, VIRTIO_RING_F_INDIRECT_DESC);
	bool evt = virtio_mmio_has_feature(t, VIRTIO_RING_F_EVENT_IDX);
	unsigned i;

	for (i = 0; i < t->ops->nqueues; i++)
		vq_set_features(&t->vq[i], ind, evt);
}

static void kick(struct virtio_mmio *t, unsigned q)
{
	if (q < t->ops->nqueues && virtio_mmio_running(t) &&
	    vq_usable(&t->vq[q]))
		t->ops->queue_notify(t->dev, q);
}

static void status_write(struct virtio_mmio *t, uint32_t v)
{
	uint32_t old = t->s.status;
	unsigned i;

	v &= 0xff;
	if (!v) {
		transport_reset(t);
		update_irq(t);
		if (t->ops->reset)
			t->ops->reset(t->dev);
		if (t->ops->status_changed)
			t->ops->status_changed(t->dev, 0);
		return;
	}
	/* DEVICE_NEEDS_RESET belongs to the device; only a reset clears it. */
	v = (v & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET) |
	    (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	if ((v & VIRTIO_STATUS_FEATURES_OK) &&
	    !(old & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t f = t->s.driver_features;

		/*
		 * 2.2.2 / 6.1: refuse FEATURES_OK for features we did not
		 * offer, and for a driver without VIRTIO_F_VERSION_1 (this is
		 * not a legacy device). The driver sees the bit stay clear.
		 */
		if ((f & ~offered_features(t)) ||
		    !((f >> VIRTIO_F_VERSION_1) & 1))
			v &= ~VIRTIO_STATUS_FEATURES_OK;
		else
			apply_features(t);
	}
	t->s.status = v;
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		/* Buffers may have been queued before DRIVER_OK (3.1.1). */
		for (i = 0; i < t->ops->nqueues; i++)
			kick(t, i);
	}
	if (t->ops->status_changed && v != old)
		t->ops->status_changed(t->dev, v);
}

static struct virtqueue *selected(struct virtio_mmio *t)
{
	return t->s.queue_sel < t->ops->nqueues ? &t->vq[t->s.queue_sel] : NULL;
}

static void queue_ready_write(struct virtio_mmio *t, struct virtqueue *vq,
			      uint32_t v)
{
	const char *why;

	if (!(v & 1)) {
		vq->s->ready = 0;
		vq_disable(vq);
		return;
	}
	if (vq->s->ready)
		return;
	if (vq_enable(vq, &why)) {
		virtio_mmio_device_error(t, why);
		return;
	}
	vq->s->ready = 1;
	vq->s->signalled_valid = 0;
}

static void set_half(uint64_t *r, bool high, uint32_t v)
{
	if (high)
		*r = (*r & 0xffffffffull) | (uint64_t)v << 32;
	else
		*r = (*r & ~0xffffffffull) | v;
}

static uint64_t config_read(struct virtio_mmio *t, uint64_t off, unsigned size)
{
	uint8_t buf[8] = {0};
	uint64_t v = 0;
	unsigned i;

	if (size > 8)
		return 0;
	if (off < t->ops->config_size) {
		uint32_t n = t->ops->config_size - off;

		t->ops->config_read(t->dev, (uint32_t)off, buf,
				    n < size ? n : size);
	}
	for (i = 0; i < size; i++)
		v |= (uint64_t)buf[i] << (8 * i);
	return v;
}

static void config_write(struct virtio_mmio *t, uint64_t off, uint64_t val,
			 unsigned size)
{
	uint8_t buf[8];
	unsigned i;

	if (size > 8 || !t->ops->config_write || off >= t->ops->config_size ||
	    size > t->ops->config_size - off)
		return;
	for (i = 0; i < size; i++)
		buf[i] = val >> (8 * i);
	t->ops->config_write(t->dev, (uint32_t)off, buf, size);
}

uint64_t virtio_mmio_read(void *opaque, uint64_t off, unsigned size)
{
	struct virtio_mmio *t = opaque;
	struct virtqueue *vq = selected(t);
	uint64_t f;

	if (off >= VIRTIO_MMIO_CONFIG)
		return config_read(t, off - VIRTIO_MMIO_CONFIG, size);
	if (size != 4 || (off & 3))
		return 0;
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION_REG:
		return VIRTIO_MMIO_VERSION;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		f = offered_features(t);
		if (t->s.device_features_sel > 1)
			return 0;
		return (uint32_t)(f >> (32 * t->s.device_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vq ? t->ops->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return vq ? vq->s->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return t->s.isr;
	case VIRTIO_MMIO_STATUS:
		return t->s.status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		/* No shared memory regions: length ~0 (4.2.2). */
		return 0xffffffffu;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->s.config_generation;
	default:
		return 0;
	}
}

void virtio_mmio_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
	struct virtio_mmio *t = opaque;
	struct virtqueue *vq = selected(t);
	uint32_t v = (uint32_t)val;

	if (off >= VIRTIO_MMIO_CONFIG) {
		config_write(t, off - VIRTIO_MMIO_CONFIG, val, size);
		return;
	}
	if (size != 4 || (off & 3))
		return;
	/* Queue layout is fixed while the queue is ready (4.2.3.2). */
	if (vq && vq->s->ready &&
	    (off == VIRTIO_MMIO_QUEUE_NUM ||
	     (off >= VIRTIO_MMIO_QUEUE_DESC_LOW &&
	      off <= VIRTIO_MMIO_QUEUE_DEVICE_HIGH)))
		return;
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->s.device_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (t->s.status & VIRTIO_STATUS_FEATURES_OK)
			break;
		if (t->s.driver_features_sel <= 1)
			set_half(&t->s.driver_features,
				 t->s.driver_features_sel == 1, v);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->s.driver_features_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->s.queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (!vq)
			break;
		if (!is_pow2(v) || v > t->ops->queue_max)
			virtio_mmio_device_error(t, "QueueNum not a power of "
						    "two within QueueNumMax");
		else
			vq->s->num = v;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (vq)
			queue_ready_write(t, vq, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		kick(t, v);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		t->s.isr &= ~v;
		update_irq(t);
		break;
	case VIRTIO_MMIO_STATUS:
		status_write(t, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		if (vq)
			set_half(&vq->s->desc_addr,
				 off == VIRTIO_MMIO_QUEUE_DESC_HIGH, v);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		if (vq)
			set_half(&vq->s->avail_addr,
				 off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, v);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		if (vq)
			set_half(&vq->s->used_addr,
				 off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, v);
		break;
	default:
		break;
	}
}

static int virtio_mmio_fdt(void *opaque, void *fdt, int soc, machine_t *m)
{
	struct virtio_mmio *t = opaque;
	fdt64_t reg[2] = {cpu_to_fdt64(t->base),
			  cpu_to_fdt64(MEM_VIRTIO_STRIDE)};
	char name[32];
	int node, rc;

	snprintf(name, sizeof(name), "virtio_mmio@%llx",
		 (unsigned long long)t->base);
	node = fdt_add_subnode(fdt, soc, name);
	if (node < 0)
		return node;
	rc = fdt_setprop_string(fdt, node, "compatible", "virtio,mmio");
	if (!rc)
		rc = fdt_setprop(fdt, node, "reg", reg, sizeof(reg));
	if (!rc)
		rc = fdt_setprop_u32(fdt, node, "interrupts", t->irq);
	if (!rc)
		rc = fdt_setprop_u32(fdt, node, "interrupt-parent",
				     PHANDLE_PLIC);
	return rc;
}

/*
 * Rebuilds host-side state after a load and checks what the state table's
 * check could not: that the section belongs to this kind of device, and
 * that ready rings lie in this machine's RAM.
 */
static int virtio_mmio_post_load(void *opaque)
{
	struct virtio_mmio *t = opaque;
	virtio_mmio_state_t *s = &t->s;
	bool broken = s->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	const char *why;
	unsigned i;

	if (s->device_id != t->ops->device_id ||
	    s->nqueues != t->ops->nqueues) {
		t->last_error = "state is for another kind of virtio device";
		return -1;
	}
	if ((s->status & VIRTIO_STATUS_FEATURES_OK) &&
	    (s->driver_features & ~offered_features(t))) {
		t->last_error = "driver features not offered by this device";
		return -1;
	}
	for (i = 0; i < t->ops->nqueues; i++) {
		struct virtqueue *vq = &t->vq[i];

		if (s->q[i].num > t->ops->queue_max) {
			t->last_error = "queue larger than this device allows";
			return -1;
		}
		vq_disable(vq);
		vq->broken = broken;
		if (s->q[i].ready && vq_enable(vq, &why)) {
			t->last_error = why;
			return -1;
		}
	}
	if (s->status & VIRTIO_STATUS_FEATURES_OK)
		apply_features(t);
	else
		for (i = 0; i < t->ops->nqueues; i++)
			vq_set_features(&t->vq[i], false, false);
	t->last_error = broken ? "DEVICE_NEEDS_RESET (restored)" : NULL;
	update_irq(t);
	if (t->ops->post_load)
		return t->ops->post_load(t->dev);
	return 0;
}

static void virtio_mmio_destroy(void *opaque)
{
	struct virtio_mmio *t = opaque;

	if (t->ops->destroy)
		t->ops->destroy(t->dev);
	free(t);
}

/* The device's identity is the backend's (a disk image, a TAP device). */
static int virtio_mmio_describe(void *opaque, char *buf, size_t len)
{
	struct virtio_mmio *t = opaque;

	if (!t->ops->describe) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	return t->ops->describe(t->dev, buf, len);
}

static const device_ops_t virtio_mmio_device_ops = {
	.read = virtio_mmio_read,
	.write = virtio_mmio_write,
	.fdt = virtio_mmio_fdt,
	.post_load = virtio_mmio_post_load,
	.destroy = virtio_mmio_destroy,
	.describe = virtio_mmio_describe,
};

struct virtio_mmio *virtio_mmio_new(machine_t *m,
				    const struct virtio_device_ops *ops,
				    void *dev, char *err, size_t errlen)
{
	struct virtio_mmio *t;
	unsigned i;

	if (!ops->nqueues || ops->nqueues > VIRTIO_MMIO_MAX_QUEUES ||
	    !is_pow2(ops->queue_max) || ops->queue_max > VQ_MAX_SIZE ||
	    ops->config_size > VIRTIO_MMIO_CONFIG_MAX || !ops->features ||
	    !ops->queue_notify || (ops->config_size && !ops->config_read)) {
		snprintf(err, errlen,
			 "virtio-mmio: invalid device description");
		return NULL;
	}
	if (m->nvirtio >= MACHINE_MAX_VIRTIO) {
		snprintf(err, errlen, "too many virtio devices (at most %u)",
			 MACHINE_MAX_VIRTIO);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "virtio-mmio: out of memory");
		return NULL;
	}
	t->m = m;
	t->ops = ops;
	t->dev = dev;
	t->slot = m->nvirtio;
	t->irq = IRQ_VIRTIO_FIRST + t->slot;
	t->base = MEM_VIRTIO_BASE + t->slot * MEM_VIRTIO_STRIDE;
	snprintf(t->name, sizeof(t->name), "virtio%u", t->slot);
	for (i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		vq_init(&t->vq[i], &t->s.q[i], &m->ram, i, vq_error, t);
	transport_reset(t);
	t->s.device_id = ops->device_id;
	t->s.nqueues = ops->nqueues;
	if (machine_add_device(m, &(device_t){
					  .name = t->name,
					  .base = t->base,
					  .size = MEM_VIRTIO_STRIDE,
					  .ops = &virtio_mmio_device_ops,
					  .dev = t,
					  .state = &virtio_mmio_state_desc,
					  .state_obj = &t->s,
				  })) {
		snprintf(err, errlen,
			 "virtio-mmio: cannot register %s at 0x%llx", t->name,
			 (unsigned long long)t->base);
		free(t);
		return NULL;
	}
	m->nvirtio++;
	return t;
}
