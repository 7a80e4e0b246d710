/* SPDX-License-Identifier: MIT */
/*
 * virtio-input (virtio 1.2 section 5.8) as the board's power button: one key,
 * KEY_POWER. A press goes to the guest as the evdev sequence
 * EV_KEY KEY_POWER 1, EV_SYN SYN_REPORT 0, EV_KEY KEY_POWER 0,
 * EV_SYN SYN_REPORT 0, which Linux's virtio_input driver hands to evdev and
 * a daemon such as acpid turns into a clean poweroff (the RISC-V virt board
 * has no ACPI power button).
 *
 * The device sits in a fixed virtio-mmio slot chosen by the caller (the
 * board uses the last one), so it never moves the disks, which take the
 * slots from 0 up in the order they are created.
 */
#ifndef TERN_VIRTIO_INPUT_H
#define TERN_VIRTIO_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "devices/virtio_mmio.h"
#include "machine/machine.h"
#include "machine/state.h"

#define VIRTIO_ID_INPUT 18

/* Queues (5.8.2) */
#define VIRTIO_INPUT_EVENTQ	0
#define VIRTIO_INPUT_STATUSQ	1
#define VIRTIO_INPUT_QUEUE_SIZE 64

/* Configuration select values (5.8.4) */
#define VIRTIO_INPUT_CFG_UNSET	   0x00
#define VIRTIO_INPUT_CFG_ID_NAME   0x01
#define VIRTIO_INPUT_CFG_ID_SERIAL 0x02
#define VIRTIO_INPUT_CFG_ID_DEVIDS 0x03
#define VIRTIO_INPUT_CFG_PROP_BITS 0x10
#define VIRTIO_INPUT_CFG_EV_BITS   0x11
#define VIRTIO_INPUT_CFG_ABS_INFO  0x12

/* struct virtio_input_config: select, subsel, size, reserved[5], u[128] */
#define VIRTIO_INPUT_CONFIG_SIZE 136
#define VIRTIO_INPUT_CONFIG_U	 8

/* Linux input event codes used here (include/uapi/linux/input-event-codes.h) */
#define INPUT_EV_SYN	  0x00
#define INPUT_EV_KEY	  0x01
#define INPUT_SYN_REPORT  0
#define INPUT_KEY_POWER	  116
#define INPUT_BUS_VIRTUAL 0x06

/* struct virtio_input_event: le16 type, le16 code, le32 value (5.8.6) */
#define VIRTIO_INPUT_EVENT_SIZE 8

/* The slot the board gives its power button: the last one. */
#define VIRTIO_INPUT_POWER_SLOT (MACHINE_MAX_VIRTIO - 1)

/* Events waiting for eventq buffers: 16 presses. */
#define VIRTIO_INPUT_MAX_PENDING 64

/*
 * Guest-visible state of the input device itself, saved and migrated as a
 * section of its own: a state-only registry entry named "virtio<n>-input"
 * (machine/device.h) next to the transport's "virtio<n>", which carries
 * the transport's state.
 */
typedef struct virtio_input_state {
	uint8_t select;	       /* config select, written by the driver */
	uint8_t subsel;	       /* config subsel */
	uint16_t pending_head; /* oldest pending event */
	uint16_t pending_count;
	uint16_t pad;	       /* not saved; keeps the arrays aligned */
	/* Events that found no eventq buffer yet, a ring of MAX_PENDING. */
	uint16_t pending_type[VIRTIO_INPUT_MAX_PENDING];
	uint16_t pending_code[VIRTIO_INPUT_MAX_PENDING];
	uint32_t pending_value[VIRTIO_INPUT_MAX_PENDING];
} virtio_input_state_t;

struct virtio_input;

/*
 * Creates the power button in virtio-mmio slot `slot` and registers it: the
 * transport as "virtio<slot>", the device's state as "virtio<slot>-input".
 * The slot must still be free (slots below the machine's next sequential
 * slot are taken). Returns NULL with err set on failure.
 */
struct virtio_input *virtio_input_new(machine_t *m, unsigned slot, char *err,
				      size_t errlen);

/* The machine's power button, or NULL when it has none. */
struct virtio_input *virtio_input_find(machine_t *m);

/*
 * Presses and releases key `code` (only KEY_POWER exists). The events go
 * into the guest's eventq buffers now, or wait until the guest adds some.
 * Returns 0, or -1 with err set when the pending queue has no room for the
 * whole press (5.8.6.2: a sequence is buffered whole or dropped whole).
 */
int virtio_input_press(struct virtio_input *in, uint16_t code, char *err,
		       size_t errlen);

/* Events waiting for eventq buffers. */
unsigned virtio_input_pending(const struct virtio_input *in);

struct virtio_mmio *virtio_input_transport(struct virtio_input *in);

/* The state table of the device's own section ("virtio<n>-input"). */
const state_desc_t *virtio_input_state_desc(void);

#endif
