/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2 section 5.1) behind the virtio-mmio transport, on
 * a TAP backend (devices/tap.h): one receive/transmit queue pair and the
 * control queue.
 *
 * Transmit happens synchronously in the driver's queue notification, like
 * virtio-blk's requests. Receive is driven by the VM's main loop: it polls
 * virtio_net_rx_fd() with its other descriptors and calls virtio_net_rx()
 * when the TAP is readable; a driver that adds receive buffers after the
 * device ran out resumes reception through its notification. Everything
 * runs on the VM's thread, and every write to guest RAM goes through
 * ram_dma_write() (the dirty log).
 *
 * State: the transport's registry entry "virtio<n>" carries the queues;
 * the device's own guest-visible state (negotiated features, MAC, config
 * status with the announce bit, receive modes) is a state-only entry
 * "virtio<n>-net" next to it (machine/device.h). Host-side things (the
 * TAP, a frame waiting for buffers) are not saved: a frame lost in a
 * migration is a frame lost on the wire.
 */
#ifndef TERN_VIRTIO_NET_H
#define TERN_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/tap.h"
#include "devices/virtio_mmio.h"
#include "machine/machine.h"
#include "machine/state.h"

/* Feature bits (5.1.3) */
#define VIRTIO_NET_F_CSUM	    0
#define VIRTIO_NET_F_GUEST_CSUM	    1
#define VIRTIO_NET_F_MAC	    5
#define VIRTIO_NET_F_GUEST_TSO4	    7
#define VIRTIO_NET_F_GUEST_TSO6	    8
#define VIRTIO_NET_F_GUEST_ECN	    9
#define VIRTIO_NET_F_GUEST_UFO	    10
#define VIRTIO_NET_F_HOST_TSO4	    11
#define VIRTIO_NET_F_HOST_TSO6	    12
#define VIRTIO_NET_F_HOST_ECN	    13
#define VIRTIO_NET_F_HOST_UFO	    14
#define VIRTIO_NET_F_MRG_RXBUF	    15
#define VIRTIO_NET_F_STATUS	    16
#define VIRTIO_NET_F_CTRL_VQ	    17
#define VIRTIO_NET_F_CTRL_RX	    18
#define VIRTIO_NET_F_CTRL_VLAN	    19
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_MQ		    22
#define VIRTIO_NET_F_CTRL_MAC_ADDR  23

/* Config status bits (5.1.4) */
#define VIRTIO_NET_S_LINK_UP  1
#define VIRTIO_NET_S_ANNOUNCE 2

/* struct virtio_net_hdr (5.1.6): 12 bytes without HASH_REPORT */
#define VIRTIO_NET_HDR_LEN	    12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE	    0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_UDP	    3
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_UDP_L4   5
#define VIRTIO_NET_HDR_GSO_ECN	    0x80

/* Control queue (5.1.6.5) */
#define VIRTIO_NET_OK		      0
#define VIRTIO_NET_ERR		      1
#define VIRTIO_NET_CTRL_RX	      0
#define VIRTIO_NET_CTRL_RX_PROMISC    0
#define VIRTIO_NET_CTRL_RX_ALLMULTI   1
#define VIRTIO_NET_CTRL_MAC	      1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET  1
#define VIRTIO_NET_CTRL_VLAN	      2
#define VIRTIO_NET_CTRL_ANNOUNCE      3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK  0

/* Queues (5.1.2): receiveq1, transmitq1, controlq */
#define VIRTIO_NET_RXQ	      0
#define VIRTIO_NET_TXQ	      1
#define VIRTIO_NET_CTRLQ      2
#define VIRTIO_NET_NQUEUES    3
#define VIRTIO_NET_QUEUE_SIZE 256

/* mac[6] and status: the fields that exist with the features offered. */
#define VIRTIO_NET_CONFIG_SIZE 8

/*
 * Largest Ethernet frame either way, header not included: a 64 KiB IP
 * packet (the most a GSO frame carries), an Ethernet header and a VLAN
 * tag. Longer frames are dropped.
 */
#define VIRTIO_NET_MAX_FRAME (65535 + 14 + 4)
#define VIRTIO_NET_MIN_FRAME 14

/* Frames delivered per virtio_net_rx() call, before the loop polls again. */
#define VIRTIO_NET_RX_BATCH 64

/* Guest-visible state of the device itself; plain data, saved. */
typedef struct virtio_net_state {
	uint64_t features; /* accepted at FEATURES_OK; 0 before and after reset
			    */
	uint8_t mac[6];
	uint16_t status; /* config status: LINK_UP, ANNOUNCE */
	uint8_t promisc; /* VIRTIO_NET_CTRL_RX modes (no effect on a TAP) */
	uint8_t allmulti;
	uint8_t pad[6]; /* not saved */
} virtio_net_state_t;

/* Host-side counters, for tests and diagnostics. */
struct virtio_net_stats {
	uint64_t rx_frames, rx_dropped;
	uint64_t tx_frames, tx_dropped;
	uint64_t ctrl_ok, ctrl_err;
};

struct virtio_net;

/*
 * Parses "aa:bb:cc:dd:ee:ff" (hex, ':' separated, 1-2 digits each).
 * Returns 0, or -1 when malformed.
 */
int virtio_net_parse_mac(const char *s, uint8_t mac[6]);

/* "aa:bb:cc:dd:ee:ff" into buf (at least 18 bytes). */
void virtio_net_format_mac(const uint8_t mac[6], char *buf);

/* Unicast (I/G bit clear) and not all zero: usable as a NIC address. */
bool virtio_net_mac_ok(const uint8_t mac[6]);

/*
 * Adds a virtio-net device in the next virtio-mmio slot, with address mac
 * (must be virtio_net_mac_ok), on backend tap (which the caller keeps: it
 * must outlive the machine; the device does not close it). Registers the
 * transport "virtio<n>" and the device's state "virtio<n>-net". Returns
 * NULL with err set on failure.
 */
struct virtio_net *virtio_net_new(machine_t *m, struct tap *tap,
				  const uint8_t mac[6], char *err,
				  size_t errlen);

/*
 * The descriptor the main loop should poll for POLLIN, or -1 when the
 * device takes no frames now (driver not running, a frame already waits
 * for receive buffers, backend gone). Only while the VM runs: a paused or
 * migrating VM's RAM must not change.
 */
int virtio_net_rx_fd(const struct virtio_net *n);

/*
 * Moves waiting frames from the TAP into receive buffers, up to
 * VIRTIO_NET_RX_BATCH, and interrupts once for all of them (as the
 * driver's event index allows).
 */
void virtio_net_rx(struct virtio_net *n);

/*
 * Asks the guest to announce itself (VIRTIO_NET_F_GUEST_ANNOUNCE, 5.1.6.5.4):
 * sets VIRTIO_NET_S_ANNOUNCE and raises a configuration change
 * interrupt. Returns false (nothing done) unless the driver runs and
 * negotiated the feature. The driver's ANNOUNCE_ACK clears the bit.
 */
bool virtio_net_announce(struct virtio_net *n);

const uint8_t *virtio_net_mac(const struct virtio_net *n);
struct tap *virtio_net_tap(struct virtio_net *n);
struct virtio_mmio *virtio_net_transport(struct virtio_net *n);
const struct virtio_net_stats *virtio_net_stats(const struct virtio_net *n);
/* Why the last loaded state was refused by post_load, or NULL. */
const char *virtio_net_load_error(const struct virtio_net *n);

/* The state table of the device's own section ("virtio<n>-net"). */
const state_desc_t *virtio_net_state_desc(void);

#endif
