// SPDX-License-Identifier: MIT
/*
 * virtio-input (virtio 1.2 section 5.8): the board's power button.
 *
 * Configuration space (5.8.4): the driver writes select and subsel, then
 * reads size and the union u. Answered: ID_NAME, ID_SERIAL, ID_DEVIDS,
 * EV_BITS for EV_KEY (KEY_POWER only) and EV_SYN (SYN_REPORT); everything
 * else, PROP_BITS and ABS_INFO included, has size 0 (5.8.4.1).
 *
 * eventq: device-writable 8-byte buffers the driver keeps available; each
 * takes one struct virtio_input_event. Events with no buffer wait in a
 * bounded queue in the state struct (so they migrate) and go out as soon as
 * the driver adds buffers. A press is queued whole or not at all (5.8.6.2).
 * statusq: the driver reports LED and similar state; nothing here has any,
 * so those buffers are consumed and returned unread.
 *
 * A buffer shorter than an event breaks a driver MUST (5.8.6.1): like any
 * malformed chain it puts the device into DEVICE_NEEDS_RESET (2.1.2).
 *
 * State: the transport's registry entry carries the transport's section;
 * the device's own state (config selection, pending events) is a section of
 * its own, registered as a state-only entry "virtio<n>-input" right after
 * the transport (machine/device.h). Neither section refers to the other, so
 * each loads and checks on its own; nothing here needs a post_load.
 */
#include "devices/virtio_input.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtqueue.h"

#define INPUT_NAME    "tern power button"
#define INPUT_SERIAL  "tern-power-0"
#define INPUT_VENDOR  0x7465 /* "te" */
#define INPUT_PRODUCT 0x0001
#define INPUT_VERSION 0x0001

struct virtio_input {
	virtio_input_state_t st; /* the state-only entry's object */
	struct virtio_mmio *t;
	struct vq_elem elem;
	char name[24];		 /* "virtio<n>-input", the section name */
};

/* --- state table ---------------------------------------------------------- */

#define T virtio_input_state_t
static const state_field_t input_fields[] = {
	STATE_U8(T, select),
	STATE_U8(T, subsel),
	STATE_U16(T, pending_head),
	STATE_U16(T, pending_count),
	STATE_U16_ARRAY(T, pending_type),
	STATE_U16_ARRAY(T, pending_code),
	STATE_U32_ARRAY(T, pending_value),
};
#undef T

/* Whether this device could have queued the event (see virtio_input_press). */
static bool input_event_ok(uint16_t type, uint16_t code, uint32_t value)
{
	if (type == INPUT_EV_KEY)
		return code == INPUT_KEY_POWER && value <= 1;
	return type == INPUT_EV_SYN && code == INPUT_SYN_REPORT && !value;
}

/*
 * Validates a loaded section: the ring indices are in range, and the
 * waiting events are ones this device sends, so a hostile stream cannot
 * make it hand the guest keys it does not have. select and subsel take any
 * value the driver could have written.
 */
static int input_state_check(const void *obj, char *err, size_t errlen)
{
	const virtio_input_state_t *s = obj;
	unsigned i;

	if (s->pending_head >= VIRTIO_INPUT_MAX_PENDING ||
	    s->pending_count > VIRTIO_INPUT_MAX_PENDING) {
		snprintf(err, errlen,
			 "virtio-input: pending queue head %u count %u out of "
			 "range",
			 s->pending_head, s->pending_count);
		return -1;
	}
	for (i = 0; i < s->pending_count; i++) {
		unsigned k = (s->pending_head + i) % VIRTIO_INPUT_MAX_PENDING;

		if (!input_event_ok(s->pending_type[k], s->pending_code[k],
				    s->pending_value[k])) {
			snprintf(err, errlen,
				 "virtio-input: pending event %u (%u %u %u) is "
				 "not one this device sends",
				 i, s->pending_type[k], s->pending_code[k],
				 s->pending_value[k]);
			return -1;
		}
	}
	return 0;
}

static const state_desc_t input_state_desc = {
	.name = "virtio-input",
	.version = 1,
	.min_version = 1,
	.size = sizeof(virtio_input_state_t),
	.fields = input_fields,
	.nfields = STATE_NFIELDS(input_fields),
	.check = input_state_check,
};

const state_desc_t *virtio_input_state_desc(void)
{
	return &input_state_desc;
}

/* --- configuration space -------------------------------------------------- */

static uint64_t input_features(void *dev)
{
	(void)dev;
	return 0;
}

/* The config structure as the current select/subsel show it. */
static void input_config(const struct virtio_input *in, uint8_t *cfg)
{
	uint8_t *u = cfg + VIRTIO_INPUT_CONFIG_U;
	size_t size = 0;

	memset(cfg, 0, VIRTIO_INPUT_CONFIG_SIZE);
	cfg[0] = in->st.select;
	cfg[1] = in->st.subsel;
	switch (in->st.select) {
	case VIRTIO_INPUT_CFG_ID_NAME:
		if (in->st.subsel)
			break;
		size = strlen(INPUT_NAME);
		memcpy(u, INPUT_NAME, size);
		break;
	case VIRTIO_INPUT_CFG_ID_SERIAL:
		if (in->st.subsel)
			break;
		size = strlen(INPUT_SERIAL);
		memcpy(u, INPUT_SERIAL, size);
		break;
	case VIRTIO_INPUT_CFG_ID_DEVIDS: {
		uint16_t ids[4] = {
			htole16(INPUT_BUS_VIRTUAL), htole16(INPUT_VENDOR),
			htole16(INPUT_PRODUCT), htole16(INPUT_VERSION)};

		if (in->st.subsel)
			break;
		size = sizeof(ids);
		memcpy(u, ids, size);
		break;
	}
	case VIRTIO_INPUT_CFG_EV_BITS:
		/* Bitmaps are little-endian bit order: bit n in byte n / 8. */
		if (in->st.subsel == INPUT_EV_KEY) {
			u[INPUT_KEY_POWER / 8] = 1u << (INPUT_KEY_POWER % 8);
			size = INPUT_KEY_POWER / 8 + 1;
		} else if (in->st.subsel == INPUT_EV_SYN) {
			u[0] = 1u << INPUT_SYN_REPORT;
			size = 1;
		}
		break;
	default:
		/* UNSET, PROP_BITS (no properties), ABS_INFO, unknown. */
		break;
	}
	cfg[2] = (uint8_t)size;
}

static void input_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	uint8_t cfg[VIRTIO_INPUT_CONFIG_SIZE];

	input_config(dev, cfg);
	/* The transport guarantees off + len <= VIRTIO_INPUT_CONFIG_SIZE. */
	memcpy(buf, cfg + off, len);
}

/* Only select and subsel are driver-writable; the rest is read-only. */
static void input_config_write(void *dev, uint32_t off, const void *buf,
			       uint32_t len)
{
	struct virtio_input *in = dev;
	const uint8_t *b = buf;
	uint32_t i;

	for (i = 0; i < len; i++) {
		if (off + i == 0)
			in->st.select = b[i];
		else if (off + i == 1)
			in->st.subsel = b[i];
	}
}

/* --- queues --------------------------------------------------------------- */

/* Moves pending events into eventq buffers while both last. */
static void input_deliver(struct virtio_input *in)
{
	struct virtio_mmio *t = in->t;
	struct virtqueue *vq = virtio_mmio_queue(t, VIRTIO_INPUT_EVENTQ);
	virtio_input_state_t *s = &in->st;
	unsigned done = 0;

	if (!s->pending_count || !virtio_mmio_running(t))
		return;
	while (s->pending_count) {
		unsigned i = s->pending_head;
		uint8_t ev[VIRTIO_INPUT_EVENT_SIZE];
		uint16_t type = htole16(s->pending_type[i]);
		uint16_t code = htole16(s->pending_code[i]);
		uint32_t value = htole32(s->pending_value[i]);

		/* 0: no buffer (the event waits); -1: the device broke. */
		if (vq_pop(vq, &in->elem) <= 0)
			break;
		if (in->elem.write_len < VIRTIO_INPUT_EVENT_SIZE) {
			virtio_mmio_device_error(t,
						 "virtio-input eventq buffer "
						 "shorter than an event");
			break;
		}
		memcpy(ev, &type, 2);
		memcpy(ev + 2, &code, 2);
		memcpy(ev + 4, &value, 4);
		vq_elem_write(vq, &in->elem, 0, ev, sizeof(ev));
		vq_push(vq, in->elem.head, VIRTIO_INPUT_EVENT_SIZE);
		s->pending_head = (i + 1) % VIRTIO_INPUT_MAX_PENDING;
		s->pending_count--;
		done++;
	}
	if (done)
		virtio_mmio_notify_used(t, vq);
}

/* Status reports (LEDs, sounds): nothing to act on; hand them back. */
static void input_drain_status(struct virtio_input *in)
{
	struct virtqueue *vq = virtio_mmio_queue(in->t, VIRTIO_INPUT_STATUSQ);
	unsigned done = 0;

	/* Terminates: vq_pop never hands out more than the queue size. */
	while (vq_pop(vq, &in->elem) > 0) {
		vq_push(vq, in->elem.head, 0);
		done++;
	}
	if (done)
		virtio_mmio_notify_used(in->t, vq);
}

static void input_queue_notify(void *dev, unsigned q)
{
	struct virtio_input *in = dev;

	if (q == VIRTIO_INPUT_EVENTQ)
		input_deliver(in);
	else
		input_drain_status(in);
}

/*
 * Device reset: back to power-on. Pending events go too: they were meant
 * for the driver instance that is going away (a new one resets the device
 * when it probes, before it could read them).
 */
static void input_reset(void *dev)
{
	struct virtio_input *in = dev;

	in->st.select = 0;
	in->st.subsel = 0;
	in->st.pending_head = 0;
	in->st.pending_count = 0;
}

static void input_destroy(void *dev)
{
	free(dev);
}

static int input_describe(void *dev, char *buf, size_t len)
{
	int n;

	(void)dev;
	n = snprintf(buf, len, "virtio-input keys=power");
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static const struct virtio_device_ops input_ops = {
	.device_id = VIRTIO_ID_INPUT,
	.nqueues = 2,
	.queue_max = VIRTIO_INPUT_QUEUE_SIZE,
	.config_size = VIRTIO_INPUT_CONFIG_SIZE,
	.features = input_features,
	.config_read = input_config_read,
	.config_write = input_config_write,
	.queue_notify = input_queue_notify,
	.reset = input_reset,
	.destroy = input_destroy,
	.describe = input_describe,
};

/* --- registry entry ------------------------------------------------------- */

/*
 * The state-only entry's ops: none. The transport's entry serves MMIO, the
 * device tree node and the identity, and its teardown frees this device.
 * The table's address also marks the entry as a power button.
 */
static const device_ops_t input_entry_ops;

/* --- public --------------------------------------------------------------- */

struct virtio_input *virtio_input_new(machine_t *m, unsigned slot, char *err,
				      size_t errlen)
{
	struct virtio_input *in;
	unsigned next = m->nvirtio;

	if (slot >= MACHINE_MAX_VIRTIO || slot < next) {
		snprintf(err, errlen, "virtio-input: virtio slot %u is %s",
			 slot, slot < next ? "taken" : "out of range");
		return NULL;
	}
	/* Two entries: refuse up front rather than leave the first alone. */
	if (m->ndevices + 2 > MACHINE_MAX_DEVICES) {
		snprintf(err, errlen, "virtio-input: too many devices");
		return NULL;
	}
	in = calloc(1, sizeof(*in));
	if (!in) {
		snprintf(err, errlen, "virtio-input: out of memory");
		return NULL;
	}
	/*
	 * The transport takes the machine's next sequential slot: point that
	 * at the fixed one for this call only, so devices created afterwards
	 * (the disks) still count from where they would have.
	 */
	m->nvirtio = slot;
	in->t = virtio_mmio_new(m, &input_ops, in, err, errlen);
	m->nvirtio = next;
	if (!in->t) {
		free(in);
		return NULL;
	}
	/*
	 * From here the transport owns in (machine teardown frees both).
	 * Registered after the transport, so the entry's name can follow the
	 * transport's and teardown reaches it first.
	 */
	snprintf(in->name, sizeof(in->name), "%s-input", in->t->name);
	if (machine_add_device(m, &(device_t){
					  .name = in->name,
					  .ops = &input_entry_ops,
					  .dev = in,
					  .state = &input_state_desc,
					  .state_obj = &in->st,
				  })) {
		snprintf(err, errlen, "virtio-input: cannot register %s",
			 in->name);
		return NULL;
	}
	return in;
}

struct virtio_input *virtio_input_find(machine_t *m)
{
	unsigned i;

	for (i = 0; i < m->ndevices; i++)
		if (m->devices[i].ops == &input_entry_ops)
			return m->devices[i].dev;
	return NULL;
}

int virtio_input_press(struct virtio_input *in, uint16_t code, char *err,
		       size_t errlen)
{
	static const struct {
		uint16_t type, code_is_key;
		uint32_t value;
	} seq[] = {
		{INPUT_EV_KEY, 1, 1},
		{INPUT_EV_SYN, 0, 0},
		{INPUT_EV_KEY, 1, 0},
		{INPUT_EV_SYN, 0, 0},
	};
	virtio_input_state_t *s = &in->st;
	unsigned i;

	if (code != INPUT_KEY_POWER) {
		snprintf(err, errlen, "virtio-input: no key %u on this device",
			 code);
		return -1;
	}
	if (VIRTIO_INPUT_MAX_PENDING - s->pending_count < 4) {
		snprintf(err, errlen,
			 "the guest is not taking power button events (%u "
			 "waiting)",
			 s->pending_count);
		return -1;
	}
	for (i = 0; i < 4; i++) {
		unsigned k = (s->pending_head + s->pending_count) %
			     VIRTIO_INPUT_MAX_PENDING;

		s->pending_type[k] = seq[i].type;
		s->pending_code[k] =
			seq[i].code_is_key ? code : INPUT_SYN_REPORT;
		s->pending_value[k] = seq[i].value;
		s->pending_count++;
	}
	input_deliver(in);
	return 0;
}

unsigned virtio_input_pending(const struct virtio_input *in)
{
	return in->st.pending_count;
}

struct virtio_mmio *virtio_input_transport(struct virtio_input *in)
{
	return in->t;
}
