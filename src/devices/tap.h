/* SPDX-License-Identifier: MIT */
/*
 * The host side of a virtio-net device: a Linux TAP interface, opened with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, so that every read() returns one
 * Ethernet frame and every write() sends one, each preceded by the 12-byte
 * struct virtio_net_hdr_v1 (TUNSETVNETHDRSZ 12). That header is exactly the
 * one a virtio 1.x driver puts in front of its packets (virtio 1.2 section
 * 5.1.6), so checksum and segmentation offloads pass through unchanged and
 * the kernel does the work (and validates what the guest sends).
 *
 * Two ways to get one:
 * - tap_create(): a new TAP (named, or named tapN by the kernel), brought
 *   up and made a port of an existing Linux bridge. It is not persistent,
 *   so it disappears when the process exits, however it exits.
 * - tap_open(): attach to an existing (persistent) TAP someone else made
 *   and manages; no bridge handling.
 * tap_from_fd() wraps any connected datagram socket that carries frames in
 * the same format (a socketpair(AF_UNIX, SOCK_SEQPACKET) in the tests).
 *
 * The struct lives in the VM monitor, not in the machine: the interface
 * outlives guest reboots, which rebuild the machine and its devices.
 */
#ifndef TERN_TAP_H
#define TERN_TAP_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* struct virtio_net_hdr_v1 (virtio 1.2 section 5.1.6) */
#define TAP_VNET_HDR_LEN 12

/* TUNSETOFFLOAD flags (linux/if_tun.h), repeated to keep that header local. */
#define TAP_OFFLOAD_CSUM 0x01
#define TAP_OFFLOAD_TSO4 0x02
#define TAP_OFFLOAD_TSO6 0x04
#define TAP_OFFLOAD_ECN	 0x08
#define TAP_OFFLOAD_ALL                                                        \
	(TAP_OFFLOAD_CSUM | TAP_OFFLOAD_TSO4 | TAP_OFFLOAD_TSO6 |              \
	 TAP_OFFLOAD_ECN)

struct tap {
	int fd;		  /* -1 when closed */
	bool is_tap;	  /* false: a socket standing in for a TAP */
	bool dead;	  /* the interface went away: no more I/O */
	unsigned caps;	  /* TAP_OFFLOAD_* the kernel accepts */
	unsigned offload; /* TAP_OFFLOAD_* currently set */
	char ifname[IFNAMSIZ];
	char bridge[IFNAMSIZ]; /* "" unless tap_create() enslaved it */
};

/* Interface names as the kernel takes them: 1-15 bytes, no '/', ':' or
 * white space, not "." or "..". */
bool tap_name_ok(const char *name);

/*
 * Creates a TAP named ifname (NULL or "": the kernel picks tapN; an
 * interface of that name must not exist yet), sets its own MAC address
 * from guest_mac (NULL: keep the random one), brings it up and makes it a
 * port of bridge (NULL: no bridge). The bridge must exist and be one:
 * "bridge BR does not exist", "BR is not a bridge". Returns 0, or -1 with
 * a one-line reason in err (nothing is left behind).
 */
int tap_create(struct tap *t, const char *ifname, const char *bridge,
	       const uint8_t guest_mac[6], char *err, size_t errlen);

/* Attaches to the existing TAP ifname and brings it up. 0, or -1 + err. */
int tap_open(struct tap *t, const char *ifname, char *err, size_t errlen);

/*
 * Wraps fd, a connected datagram or seqpacket socket carrying frames with
 * the 12-byte header, as a backend (takes fd over). Offload settings are
 * recorded, not applied; every offload counts as supported.
 */
void tap_from_fd(struct tap *t, int fd, const char *name);

/*
 * Tells the kernel which offloads the reader (the guest) handles:
 * TAP_OFFLOAD_* subset of t->caps. 0, or -1 (errno set).
 */
int tap_set_offload(struct tap *t, unsigned flags);

/*
 * One frame (header included) into buf. Returns its length, 0 when none
 * is waiting, or -1 when the backend failed (t->dead is then set).
 */
ssize_t tap_read(struct tap *t, void *buf, size_t len);

/*
 * Sends one frame (header included). Returns 0, or -1 when it was dropped
 * (the kernel refused it or had no room; t->dead when the interface is
 * gone).
 */
int tap_writev(struct tap *t, const struct iovec *iov, int iovcnt);

/*
 * Sends one RARP broadcast (ethertype 0x8035, "reverse request", sender
 * and target hardware address mac, protocol addresses 0) from mac, as
 * QEMU's qemu_announce_self() does after a migration: switches learn the
 * port behind which mac now lives. 0, or -1 when it was dropped.
 */
int tap_send_rarp(struct tap *t, const uint8_t mac[6]);

/* Length of that frame, header included, and the frame itself. */
#define TAP_RARP_FRAME_LEN (TAP_VNET_HDR_LEN + 60)
void tap_rarp_frame(uint8_t buf[TAP_RARP_FRAME_LEN], const uint8_t mac[6]);

/* Closes; a TAP made by tap_create() disappears with it. */
void tap_close(struct tap *t);

#endif
