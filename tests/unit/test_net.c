// SPDX-License-Identifier: MIT
/*
 * virtio-net on the board built by platform_create(), with one end of a
 * socketpair(AF_UNIX, SOCK_SEQPACKET) as its backend (tap_from_fd): the
 * test plays Linux's virtio_net driver through MMIO accesses dispatched by
 * the machine (configuration space, feature negotiation, the three queues
 * in guest RAM) and the network through the other end of the pair, one
 * message per frame with its 12-byte header, as a TAP carries them.
 *
 * Covered: config space and features, the TAP offloads that follow the
 * negotiated features, transmit (batches, any descriptor layout, oversized
 * frames dropped), receive with and without mergeable buffers (num_buffers,
 * frames waiting for buffers, headers the driver may not see), the control
 * queue, the announce bit and its configuration interrupt, malformed chains
 * (DEVICE_NEEDS_RESET, never a write outside the buffers), the dirty log,
 * the device's state section (round trip, check hook, whole-machine
 * snapshots refused for another MAC), the RARP frame, and, where the test
 * may make a network namespace, real TAPs on a real bridge.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/plic.h"
#include "devices/tap.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_net.h"
#include "devices/virtqueue.h"
#include "machine/machine.h"
#include "machine/platform.h"
#include "machine/state.h"
#include "migration/savevm.h"

#define RAM_BYTES (16u << 20)
#define QSIZE	  16

#define G(off)	(MEM_RAM_BASE + (off))
#define RAM_END (MEM_RAM_BASE + RAM_BYTES)

/* Rings of queue q */
#define DESC(q)	 G(0x10000 + 0x4000ull * (q))
#define AVAIL(q) G(0x11000 + 0x4000ull * (q))
#define USED(q)	 G(0x12000 + 0x4000ull * (q))
/* Receive buffers (64 KiB apart), transmit data, control commands */
#define RXBUF(i) G(0x100000 + 0x10000ull * (i))
#define TXDATA	 G(0x300000)
#define CTRLBUF	 G(0x380000)
#define CANARY	 0xc5

#define RXQ VIRTIO_NET_RXQ
#define TXQ VIRTIO_NET_TXQ
#define CQ  VIRTIO_NET_CTRLQ

static const uint8_t MAC[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0x01};

#define F(b) (1ull << (b))
/* What Linux's virtio_net takes from this device. */
#define ALL_FEATURES                                                           \
	(F(VIRTIO_F_VERSION_1) | F(VIRTIO_RING_F_EVENT_IDX) |                  \
	 F(VIRTIO_RING_F_INDIRECT_DESC) | F(VIRTIO_NET_F_MAC) |                \
	 F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_CTRL_VQ) |                    \
	 F(VIRTIO_NET_F_CTRL_RX) | F(VIRTIO_NET_F_GUEST_ANNOUNCE) |            \
	 F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_CSUM) |                    \
	 F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) |              \
	 F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_HOST_ECN) |                \
	 F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |             \
	 F(VIRTIO_NET_F_GUEST_ECN))
/* A minimal driver: one buffer per frame, no offloads, no event index. */
#define MIN_FEATURES                                                           \
	(F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_CTRL_VQ))

typedef struct fixture {
	machine_t m;
	struct tap tap;
	int peer; /* the network's end of the socketpair */
	struct virtio_net *n;
	struct virtio_mmio *t;
	uint64_t base;
	uint16_t avail[3]; /* driver's avail idx per queue */
	uint16_t seen[3];  /* used entries already looked at */
} fixture_t;

#include "virtio_harness.h"

/* --- the test driver ------------------------------------------------------ */

static void set_desc(fixture_t *f, unsigned q, unsigned i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	set_desc_at(f, DESC(q), i, addr, len, flags, next);
}

static void ack_irq(fixture_t *f)
{
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, rd(f, VIRTIO_MMIO_INTERRUPT_STATUS));
}

static bool needs_reset(fixture_t *f)
{
	return rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

static void setup_queue(fixture_t *f, unsigned q)
{
	memset(gp(f, DESC(q), 0x3000), 0, 0x3000);
	queue_setup(f, q, VIRTIO_NET_QUEUE_SIZE, DESC(q), AVAIL(q), USED(q));
	f->avail[q] = f->seen[q] = 0;
}

static void driver_start(fixture_t *f, uint64_t feat)
{
	unsigned q;

	assert_true(negotiate(f, feat));
	for (q = 0; q < 3; q++)
		setup_queue(f, q);
	wr(f, VIRTIO_MMIO_STATUS, 0xf);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0xf);
	memset(gp(f, RXBUF(0), 0x200000), CANARY, 0x200000);
}

/* Makes descriptor head available on queue q. */
static void post(fixture_t *f, unsigned q, uint16_t head, bool kick)
{
	ring_post(f, q, AVAIL(q), &f->avail[q], head, kick);
}

static uint16_t used_idx(fixture_t *f, unsigned q)
{
	return gr16(f, USED(q) + 2);
}

/* The next used entry of queue q: its id and length. */
static void next_used(fixture_t *f, unsigned q, uint32_t *id, uint32_t *len)
{
	unsigned slot = f->seen[q] % QSIZE;

	assert_true((uint16_t)(used_idx(f, q) - f->seen[q]) > 0);
	*id = gr32(f, USED(q) + 4 + 8 * slot);
	*len = gr32(f, USED(q) + 8 + 8 * slot);
	f->seen[q]++;
}

/* The next used entry of queue q is descriptor id, len bytes written. */
static void expect_used(fixture_t *f, unsigned q, uint32_t id, uint32_t len)
{
	uint32_t got_id, got_len;

	next_used(f, q, &got_id, &got_len);
	assert_int_equal(got_id, id);
	assert_int_equal(got_len, len);
}

/* One receive buffer of len bytes at RXBUF(i), descriptor i. */
static void add_rx(fixture_t *f, unsigned i, uint32_t len, bool kick)
{
	set_desc(f, RXQ, i, RXBUF(i), len, VIRTQ_DESC_F_WRITE, 0);
	post(f, RXQ, (uint16_t)i, kick);
}

/* --- the network side ----------------------------------------------------- */

static void fill_payload(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

/* A frame from the network: header (flags, gso) + len bytes. */
static void net_send(fixture_t *f, uint8_t flags, uint8_t gso, size_t len,
		     unsigned seed)
{
	uint8_t *buf = calloc(1, VIRTIO_NET_HDR_LEN + len);

	assert_non_null(buf);
	buf[0] = flags;
	buf[1] = gso;
	/* Bytes 10-11 (num_buffers): garbage, as a TAP leaves them. */
	buf[10] = 0x77;
	buf[11] = 0x66;
	fill_payload(buf + VIRTIO_NET_HDR_LEN, len, seed);
	assert_int_equal(send(f->peer, buf, VIRTIO_NET_HDR_LEN + len, 0),
			 (ssize_t)(VIRTIO_NET_HDR_LEN + len));
	free(buf);
}

/* The next frame the device sent, or -1 when none. */
static ssize_t net_recv(fixture_t *f, uint8_t *buf, size_t len)
{
	return recv(f->peer, buf, len, MSG_DONTWAIT);
}

/* --- fixture -------------------------------------------------------------- */

static fixture_t *fixture_new(const uint8_t mac[6])
{
	fixture_t *f = calloc(1, sizeof(*f));
	char err[256];
	int sv[2];

	assert_non_null(f);
	board_init(f);
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	tap_from_fd(&f->tap, sv[0], "test0");
	f->peer = sv[1];
	f->n = virtio_net_new(&f->m, &f->tap, mac, err, sizeof(err));
	if (!f->n)
		fail_msg("virtio_net_new: %s", err);
	f->t = virtio_net_transport(f->n);
	f->base = f->t->base;
	return f;
}

static void fixture_free(fixture_t *f)
{
	machine_destroy(&f->m);
	tap_close(&f->tap);
	close(f->peer);
	free(f);
}

static int setup(void **state)
{
	*state = fixture_new(MAC);
	return 0;
}

static int teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

/* --- tests: identity, config, features ------------------------------------ */

static void test_config_space(void **state)
{
	fixture_t *f = *state;
	const device_t *d;
	char desc[256];
	unsigned i;

	/* Slot 0 (the board's power button keeps slot 7), network id 1. */
	assert_int_equal(f->base, MEM_VIRTIO_BASE);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	for (i = 0; i < 6; i++)
		assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + i, 1), MAC[i]);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 6, 2),
			 VIRTIO_NET_S_LINK_UP);
	/* Nothing past the fields that exist; read-only for the driver. */
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 8, 2), 0);
	assert_true(machine_mmio_write(&f->m, f->base + VIRTIO_MMIO_CONFIG, 1,
				       0xff));
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG, 1), MAC[0]);
	/* Three queues. */
	for (i = 0; i < 4; i++) {
		wr(f, VIRTIO_MMIO_QUEUE_SEL, i);
		assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX),
				 i < 3 ? VIRTIO_NET_QUEUE_SIZE : 0);
	}
	/* The state-only entry next to the transport's; the identity. */
	d = entry(&f->m, "virtio0-net");
	assert_int_equal(d->size, 0);
	assert_ptr_equal(d->state, virtio_net_state_desc());
	d = entry(&f->m, "virtio0");
	assert_int_equal(d->ops->describe(d->dev, desc, sizeof(desc)), 0);
	assert_non_null(strstr(desc, "virtio-net mac=52:54:00:ab:cd:01 "));
	assert_int_not_equal(d->ops->describe(d->dev, desc, 10), 0);
}

static void test_features(void **state)
{
	fixture_t *f = *state;
	uint64_t feat = device_features(f);

	/* Offered: all that Linux uses here, no UFO, multiqueue or VLAN. */
	assert_int_equal(feat & ALL_FEATURES, ALL_FEATURES);
	assert_false(feat & F(VIRTIO_NET_F_GUEST_UFO));
	assert_false(feat & F(VIRTIO_NET_F_HOST_UFO));
	assert_false(feat & F(VIRTIO_NET_F_MQ));
	assert_false(feat & F(VIRTIO_NET_F_CTRL_VLAN));
	assert_false(feat & F(VIRTIO_NET_F_CTRL_MAC_ADDR));
	/* A feature not offered is refused (FEATURES_OK does not stick). */
	assert_false(negotiate(f, MIN_FEATURES | F(VIRTIO_NET_F_GUEST_UFO)));
	assert_int_equal(f->tap.offload, 0);
	/* Receive offloads follow what the driver took. */
	assert_true(negotiate(f, ALL_FEATURES));
	assert_int_equal(f->tap.offload, TAP_OFFLOAD_ALL);
	assert_true(negotiate(f, MIN_FEATURES | F(VIRTIO_NET_F_GUEST_CSUM) |
					 F(VIRTIO_NET_F_GUEST_TSO6)));
	assert_int_equal(f->tap.offload, TAP_OFFLOAD_CSUM | TAP_OFFLOAD_TSO6);
	/* TSO without GUEST_CSUM breaks 5.1.3.1: no offload at all. */
	assert_true(negotiate(f, MIN_FEATURES | F(VIRTIO_NET_F_GUEST_TSO4)));
	assert_int_equal(f->tap.offload, 0);
	/* Host offloads need nothing of the TAP. */
	assert_true(negotiate(f, MIN_FEATURES | F(VIRTIO_NET_F_CSUM) |
					 F(VIRTIO_NET_F_HOST_TSO4)));
	assert_int_equal(f->tap.offload, 0);
	/* Reset: back to nothing. */
	assert_true(negotiate(f, ALL_FEATURES));
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->tap.offload, 0);
	/* A TAP that offloads nothing makes the device offer no GUEST_*. */
	{
		fixture_t *g = calloc(1, sizeof(*g));
		char err[256];
		struct tap tap;
		struct virtio_net *n;
		uint64_t gf;

		assert_non_null(g);
		assert_int_equal(
			machine_init(&g->m, RAM_BYTES, 1, err, sizeof(err)), 0);
		assert_non_null(plic_new(&g->m, MEM_PLIC_BASE));
		tap_from_fd(&tap, dup(f->peer), "t");
		tap.caps = 0;
		n = virtio_net_new(&g->m, &tap, MAC, err, sizeof(err));
		assert_non_null(n);
		g->t = virtio_net_transport(n);
		g->base = g->t->base;
		gf = device_features(g);
		assert_false(gf & F(VIRTIO_NET_F_GUEST_CSUM));
		assert_false(gf & F(VIRTIO_NET_F_GUEST_TSO4));
		assert_true(gf & F(VIRTIO_NET_F_HOST_TSO4));
		machine_destroy(&g->m);
		tap_close(&tap);
		free(g);
	}
}

/* --- tests: transmit ------------------------------------------------------ */

/* A transmit chain as Linux builds it: header, then the frame in parts. */
static uint16_t tx_chain(fixture_t *f, uint16_t d, uint64_t at, size_t len,
			 unsigned parts, unsigned seed)
{
	uint8_t *p = gp(f, at, VIRTIO_NET_HDR_LEN + len);
	size_t off = 0, part = (len + parts - 1) / parts;
	uint16_t head = d;

	memset(p, 0, VIRTIO_NET_HDR_LEN);
	p[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM; /* passed through as is */
	fill_payload(p + VIRTIO_NET_HDR_LEN, len, seed);
	set_desc(f, TXQ, d, at, VIRTIO_NET_HDR_LEN, VIRTQ_DESC_F_NEXT,
		 (uint16_t)(d + 1));
	d++;
	while (off < len) {
		size_t n = len - off < part ? len - off : part;
		bool last = off + n == len;

		set_desc(f, TXQ, d, at + VIRTIO_NET_HDR_LEN + off, (uint32_t)n,
			 last ? 0 : VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
		d++;
		off += n;
	}
	return head;
}

static void expect_tx_frame(fixture_t *f, size_t len, unsigned seed)
{
	uint8_t *buf = malloc(VIRTIO_NET_MAX_FRAME + 64), *want;
	ssize_t n = net_recv(f, buf, VIRTIO_NET_MAX_FRAME + 64);

	assert_non_null(buf);
	assert_int_equal(n, (ssize_t)(VIRTIO_NET_HDR_LEN + len));
	assert_int_equal(buf[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
	want = malloc(len);
	fill_payload(want, len, seed);
	assert_memory_equal(buf + VIRTIO_NET_HDR_LEN, want, len);
	free(want);
	free(buf);
}

static void test_tx(void **state)
{
	fixture_t *f = *state;
	uint8_t junk[16];
	uint16_t h;

	driver_start(f, ALL_FEATURES);
	/* One frame in three parts: one message, used length 0. */
	h = tx_chain(f, 0, TXDATA, 1000, 3, 1);
	post(f, TXQ, h, true);
	expect_tx_frame(f, 1000, 1);
	assert_int_equal(used_idx(f, TXQ), 1);
	expect_used(f, TXQ, h, 0);
	assert_true(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) &
		    VIRTIO_MMIO_INT_VRING);
	assert_true(line(f));
	ack_irq(f);
	/* Three chains, one notification: three frames in ring order; the
	 * header sharing a descriptor with the frame works too. */
	h = tx_chain(f, 0, TXDATA, 60, 1, 2);
	post(f, TXQ, h, false);
	h = tx_chain(f, 4, TXDATA + 0x1000, 1514, 2, 3);
	post(f, TXQ, h, false);
	fill_payload(gp(f, TXDATA + 0x2000 + VIRTIO_NET_HDR_LEN, 100), 100, 4);
	memset(gp(f, TXDATA + 0x2000, VIRTIO_NET_HDR_LEN), 0,
	       VIRTIO_NET_HDR_LEN);
	*gp(f, TXDATA + 0x2000, 1) = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	set_desc(f, TXQ, 9, TXDATA + 0x2000, VIRTIO_NET_HDR_LEN + 100, 0, 0);
	post(f, TXQ, 9, true);
	expect_tx_frame(f, 60, 2);
	expect_tx_frame(f, 1514, 3);
	expect_tx_frame(f, 100, 4);
	assert_int_equal(used_idx(f, TXQ), 4);
	assert_int_equal(virtio_net_stats(f->n)->tx_frames, 4);
	/* Too long for any Ethernet frame, or shorter than an Ethernet
	 * header: dropped, the buffer still comes back. */
	set_desc(f, TXQ, 0, TXDATA,
		 VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME + 1, 0, 0);
	post(f, TXQ, 0, false);
	set_desc(f, TXQ, 1, TXDATA, VIRTIO_NET_HDR_LEN + 5, 0, 0);
	post(f, TXQ, 1, true);
	assert_int_equal(net_recv(f, junk, sizeof(junk)), -1);
	assert_int_equal(used_idx(f, TXQ), 6);
	assert_int_equal(virtio_net_stats(f->n)->tx_dropped, 2);
	assert_false(needs_reset(f));
}

/* --- tests: receive ------------------------------------------------------- */

static void expect_rx_bytes(fixture_t *f, uint64_t gpa, size_t off, size_t len,
			    unsigned seed)
{
	uint8_t *want = malloc(off + len);

	assert_non_null(want);
	fill_payload(want, off + len, seed);
	assert_memory_equal(gp(f, gpa, len), want + off, len);
	free(want);
}

static void test_rx_mergeable(void **state)
{
	fixture_t *f = *state;
	uint64_t *bitmap = calloc(f->m.ram.npages / 64 + 1, 8);
	uint16_t nb;

	assert_non_null(bitmap);
	driver_start(f, ALL_FEATURES);
	assert_int_equal(virtio_net_rx_fd(f->n), f->tap.fd);
	/* Four 100-byte buffers; a 262-byte frame (with header) takes the
	 * first three, all but the last full (5.1.6.4). */
	ram_log_start(&f->m.ram);
	ram_log_harvest(&f->m.ram, bitmap);
	for (unsigned i = 0; i < 4; i++)
		add_rx(f, i, 100, i == 3);
	net_send(f, 0, 0, 250, 9);
	virtio_net_rx(f->n);
	assert_int_equal(used_idx(f, RXQ), 3);
	expect_used(f, RXQ, 0, 100);
	expect_used(f, RXQ, 1, 100);
	expect_used(f, RXQ, 2, 62);
	nb = gr16(f, RXBUF(0) + 10);
	assert_int_equal(nb, 3);
	assert_int_equal(*gp(f, RXBUF(0), 1), 0); /* flags */
	expect_rx_bytes(f, RXBUF(0) + VIRTIO_NET_HDR_LEN, 0, 88, 9);
	expect_rx_bytes(f, RXBUF(1), 88, 100, 9);
	expect_rx_bytes(f, RXBUF(2), 188, 62, 9);
	assert_int_equal(*gp(f, RXBUF(2) + 62, 1), CANARY);
	assert_true(line(f));
	/* The dirty log saw the device's writes (one path: ram_dma_write). */
	ram_log_harvest(&f->m.ram, bitmap);
	for (unsigned i = 0; i < 3; i++) {
		uint64_t pfn = (RXBUF(i) - MEM_RAM_BASE) >> RAM_PAGE_SHIFT;

		assert_true((bitmap[pfn / 64] >> (pfn % 64)) & 1);
	}
	ram_log_stop(&f->m.ram);
	ack_irq(f);
	/* A small frame fits the fourth buffer alone: num_buffers 1. */
	net_send(f, 0, 0, 40, 10);
	virtio_net_rx(f->n);
	expect_used(f, RXQ, 3, 52);
	assert_int_equal(gr16(f, RXBUF(3) + 10), 1);
	/* No buffers left: the next frame waits and the TAP is not read
	 * (not polled) until the driver adds buffers and notifies. */
	net_send(f, 0, 0, 150, 11);
	net_send(f, 0, 0, 20, 12);
	virtio_net_rx(f->n);
	assert_int_equal(used_idx(f, RXQ), 4);
	assert_int_equal(virtio_net_rx_fd(f->n), -1);
	/* With the event index the device asked to hear of the next one. */
	assert_int_equal(gr16(f, USED(RXQ) + 4 + 8 * QSIZE), 4);
	/* One buffer is not enough for 162 bytes: still waiting. */
	add_rx(f, 4, 100, true);
	assert_int_equal(used_idx(f, RXQ), 4);
	assert_int_equal(virtio_net_rx_fd(f->n), -1);
	assert_int_equal(gr16(f, USED(RXQ) + 4 + 8 * QSIZE), 5);
	/* A second one: the waiting frame goes, then the next frame. */
	add_rx(f, 5, 100, false);
	add_rx(f, 6, 100, true);
	assert_int_equal(used_idx(f, RXQ), 7);
	expect_used(f, RXQ, 4, 100);
	expect_used(f, RXQ, 5, 62);
	assert_int_equal(gr16(f, RXBUF(4) + 10), 2);
	expect_rx_bytes(f, RXBUF(5), 88, 62, 11);
	expect_used(f, RXQ, 6, 32);
	expect_rx_bytes(f, RXBUF(6) + VIRTIO_NET_HDR_LEN, 0, 20, 12);
	assert_int_equal(virtio_net_rx_fd(f->n), f->tap.fd);
	assert_int_equal(virtio_net_stats(f->n)->rx_frames, 4);
	assert_false(needs_reset(f));
	free(bitmap);
}

static void test_rx_single(void **state)
{
	fixture_t *f = *state;

	driver_start(f, MIN_FEATURES);
	/* 1526-byte buffers, as Linux posts them without offloads. */
	add_rx(f, 0, 1526, false);
	add_rx(f, 1, 1526, true);
	net_send(f, 0, 0, 1514, 20);
	/* Longer than a buffer: dropped; the buffer serves the next. */
	net_send(f, 0, 0, 1515, 21);
	net_send(f, 0, 0, 60, 22);
	virtio_net_rx(f->n);
	assert_int_equal(used_idx(f, RXQ), 2);
	expect_used(f, RXQ, 0, VIRTIO_NET_HDR_LEN + 1514);
	assert_int_equal(gr16(f, RXBUF(0) + 10), 1); /* 5.1.6.4 */
	expect_rx_bytes(f, RXBUF(0) + VIRTIO_NET_HDR_LEN, 0, 1514, 20);
	expect_used(f, RXQ, 1, VIRTIO_NET_HDR_LEN + 60);
	expect_rx_bytes(f, RXBUF(1) + VIRTIO_NET_HDR_LEN, 0, 60, 22);
	assert_int_equal(*gp(f, RXBUF(1) + VIRTIO_NET_HDR_LEN + 60, 1), CANARY);
	assert_int_equal(virtio_net_stats(f->n)->rx_dropped, 1);
	assert_int_equal(virtio_net_stats(f->n)->rx_frames, 2);
	/* Without the event index, used buffers always interrupt. */
	assert_true(line(f));
}

/* Headers the driver may see (5.1.6.4), per negotiated features. */
static void test_rx_headers(void **state)
{
	fixture_t *f = *state;
	uint32_t id, len;

	driver_start(f, MIN_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	for (unsigned i = 0; i < 4; i++)
		add_rx(f, i, 2048, i == 3);
	/* No GUEST_CSUM: a partial checksum cannot be handed over. */
	net_send(f, VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 100, 1);
	/* DATA_VALID: delivered, flags cleared ("MUST set flags to zero"). */
	net_send(f, VIRTIO_NET_HDR_F_DATA_VALID, 0, 100, 2);
	/* Segmentation the driver cannot take: dropped. */
	net_send(f, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 3000,
		 3);
	/* Garbage shorter than header + Ethernet header: dropped. */
	assert_int_equal(send(f->peer, "tiny", 4, 0), 4);
	virtio_net_rx(f->n);
	assert_int_equal(used_idx(f, RXQ), 1);
	next_used(f, RXQ, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(*gp(f, RXBUF(0), 1), 0);
	assert_int_equal(virtio_net_stats(f->n)->rx_dropped, 3);

	/* With GUEST_CSUM and GUEST_TSO4, a coalesced TCPv4 frame goes
	 * through with its header; TCPv6 without GUEST_TSO6 does not. */
	driver_start(f, MIN_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF) |
				F(VIRTIO_NET_F_GUEST_CSUM) |
				F(VIRTIO_NET_F_GUEST_TSO4));
	for (unsigned i = 0; i < 4; i++)
		add_rx(f, i, 4096, i == 3);
	net_send(f, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, 5000,
		 4);
	net_send(f, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 5000,
		 5);
	virtio_net_rx(f->n);
	assert_int_equal(used_idx(f, RXQ), 2);
	assert_int_equal(*gp(f, RXBUF(0), 1), VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_int_equal(*gp(f, RXBUF(0) + 1, 1), VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(gr16(f, RXBUF(0) + 10), 2);
	expect_rx_bytes(f, RXBUF(1), 4084, 5000 - 4084, 5);
}

/* --- tests: control queue ------------------------------------------------- */

/* Sends one command: header, data (may be empty), one ack byte. */
static uint8_t ctrl(fixture_t *f, uint8_t cls, uint8_t cmd, const void *data,
		    uint32_t dlen)
{
	uint16_t before = used_idx(f, CQ);
	uint8_t *p = gp(f, CTRLBUF, 2 + dlen);
	uint64_t ackp = CTRLBUF + 0x1000;

	p[0] = cls;
	p[1] = cmd;
	if (dlen)
		memcpy(p + 2, data, dlen);
	*gp(f, ackp, 2) = 0xee;
	*gp(f, ackp + 1, 1) = CANARY;
	set_desc(f, CQ, 0, CTRLBUF, 2, VIRTQ_DESC_F_NEXT, 1);
	if (dlen) {
		set_desc(f, CQ, 1, CTRLBUF + 2, dlen, VIRTQ_DESC_F_NEXT, 2);
		set_desc(f, CQ, 2, ackp, 1, VIRTQ_DESC_F_WRITE, 0);
	} else {
		set_desc(f, CQ, 1, ackp, 1, VIRTQ_DESC_F_WRITE, 0);
	}
	post(f, CQ, 0, true);
	assert_int_equal(used_idx(f, CQ), (uint16_t)(before + 1));
	expect_used(f, CQ, 0, 1);
	assert_int_equal(*gp(f, ackp + 1, 1), CANARY);
	return *gp(f, ackp, 1);
}

static void test_ctrl(void **state)
{
	fixture_t *f = *state;
	const virtio_net_state_t *st = entry(&f->m, "virtio0-net")->state_obj;
	uint8_t on = 1, two = 2, table[4 + 12 + 4 + 6];
	uint32_t n;

	driver_start(f, ALL_FEATURES);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX,
			      VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
			 VIRTIO_NET_OK);
	assert_int_equal(st->allmulti, 1);
	on = 0;
	assert_int_equal(
		ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
		VIRTIO_NET_OK);
	assert_int_equal(st->promisc, 0);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC,
			      &two, 1),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC,
			      NULL, 0),
			 VIRTIO_NET_ERR);
	/* RX_EXTRA commands were not offered. */
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_RX, 2, &on, 1),
			 VIRTIO_NET_ERR);
	/* MAC table: 2 unicast, 1 multicast, exactly framed. */
	n = htole32(2);
	memcpy(table, &n, 4);
	memset(table + 4, 0x02, 12);
	n = htole32(1);
	memcpy(table + 16, &n, 4);
	memset(table + 20, 0x01, 6);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC,
			      VIRTIO_NET_CTRL_MAC_TABLE_SET, table,
			      sizeof(table)),
			 VIRTIO_NET_OK);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC,
			      VIRTIO_NET_CTRL_MAC_TABLE_SET, table,
			      sizeof(table) - 1),
			 VIRTIO_NET_ERR);
	n = htole32(0x7fffffff);
	memcpy(table, &n, 4);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC,
			      VIRTIO_NET_CTRL_MAC_TABLE_SET, table,
			      sizeof(table)),
			 VIRTIO_NET_ERR);
	/* Not offered: setting the MAC, VLANs; unknown classes. */
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_MAC,
			      VIRTIO_NET_CTRL_MAC_ADDR_SET, MAC, 6),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_VLAN, 0, &n, 2),
			 VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, 99, 0, NULL, 0), VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_ANNOUNCE,
			      VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
			 VIRTIO_NET_OK);
	assert_false(needs_reset(f));
	assert_int_equal(virtio_net_stats(f->n)->ctrl_ok, 4);

	/* Without CTRL_RX negotiated, its commands fail. */
	driver_start(f, MIN_FEATURES);
	assert_int_equal(
		ctrl(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
		VIRTIO_NET_ERR);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_ANNOUNCE,
			      VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
			 VIRTIO_NET_ERR);
}

/* --- tests: announce ------------------------------------------------------ */

static void test_announce(void **state)
{
	fixture_t *f = *state;
	uint32_t gen;

	/* Not before the driver runs. */
	assert_false(virtio_net_announce(f->n));
	assert_false(line(f));
	/* Not for a driver without GUEST_ANNOUNCE. */
	driver_start(f, MIN_FEATURES);
	assert_false(virtio_net_announce(f->n));
	assert_false(line(f));
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 6, 2),
			 VIRTIO_NET_S_LINK_UP);

	driver_start(f, ALL_FEATURES);
	gen = rd(f, VIRTIO_MMIO_CONFIG_GENERATION);
	assert_true(virtio_net_announce(f->n));
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 6, 2),
			 VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_CONFIG);
	assert_true(line(f));
	assert_int_not_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	ack_irq(f);
	assert_false(line(f));
	/* The driver announced and acknowledges: the bit clears. */
	gen = rd(f, VIRTIO_MMIO_CONFIG_GENERATION);
	assert_int_equal(ctrl(f, VIRTIO_NET_CTRL_ANNOUNCE,
			      VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
			 VIRTIO_NET_OK);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 6, 2),
			 VIRTIO_NET_S_LINK_UP);
	assert_int_not_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	/* A reset clears a pending announce too. */
	assert_true(virtio_net_announce(f->n));
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 6, 2),
			 VIRTIO_NET_S_LINK_UP);
}

/* --- tests: hostile drivers ----------------------------------------------- */

static void expect_needs_reset(fixture_t *f, const char *why)
{
	assert_true(needs_reset(f));
	assert_non_null(f->t->last_error);
	if (!strstr(f->t->last_error, why))
		fail_msg("refused for \"%s\", expected \"%s\"",
			 f->t->last_error, why);
	assert_true(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) &
		    VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(virtio_net_rx_fd(f->n), -1);
}

static void drain_peer(fixture_t *f)
{
	uint8_t buf[256];

	while (net_recv(f, buf, sizeof(buf)) >= 0)
		;
}

static void test_malformed(void **state)
{
	fixture_t *f = *state;
	uint8_t junk[64];
	uint32_t id, len;

	/* A mergeable receive buffer shorter than the header. */
	driver_start(f, ALL_FEATURES);
	add_rx(f, 0, 8, true);
	net_send(f, 0, 0, 60, 1);
	virtio_net_rx(f->n);
	expect_needs_reset(f, "receive buffer shorter than the header");
	assert_int_equal(used_idx(f, RXQ), 0);
	assert_int_equal(*gp(f, RXBUF(0), 1), CANARY);

	/* A receive buffer the device may only read (no writable part). */
	driver_start(f, ALL_FEATURES);
	set_desc(f, RXQ, 0, RXBUF(0), 4096, 0, 0);
	post(f, RXQ, 0, true);
	net_send(f, 0, 0, 60, 1);
	virtio_net_rx(f->n);
	expect_needs_reset(f, "shorter than the header");
	assert_int_equal(*gp(f, RXBUF(0), 1), CANARY);

	/* A descriptor index outside the table. */
	driver_start(f, ALL_FEATURES);
	gw16(f, AVAIL(RXQ) + 4, QSIZE + 3);
	gw16(f, AVAIL(RXQ) + 2, 1);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
	net_send(f, 0, 0, 60, 1);
	virtio_net_rx(f->n);
	expect_needs_reset(f, "descriptor index out of range");

	/* A buffer reaching past the end of RAM. */
	driver_start(f, ALL_FEATURES);
	set_desc(f, RXQ, 0, RAM_END - 16, 64, VIRTQ_DESC_F_WRITE, 0);
	post(f, RXQ, 0, true);
	net_send(f, 0, 0, 60, 1);
	virtio_net_rx(f->n);
	expect_needs_reset(f, "outside RAM");

	/* A transmit chain shorter than the header. */
	driver_start(f, ALL_FEATURES);
	set_desc(f, TXQ, 0, TXDATA, 8, 0, 0);
	post(f, TXQ, 0, true);
	expect_needs_reset(f, "transmit buffer shorter than the header");
	assert_int_equal(net_recv(f, junk, sizeof(junk)), -1);

	/* A transmit descriptor chain that loops. */
	driver_start(f, ALL_FEATURES);
	set_desc(f, TXQ, 0, TXDATA, 64, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, TXQ, 1, TXDATA, 64, VIRTQ_DESC_F_NEXT, 0);
	post(f, TXQ, 0, true);
	expect_needs_reset(f, "loops");
	assert_int_equal(net_recv(f, junk, sizeof(junk)), -1);

	/* A control command without an ack byte, or without a header. */
	driver_start(f, ALL_FEATURES);
	*gp(f, CTRLBUF, 1) = VIRTIO_NET_CTRL_ANNOUNCE;
	set_desc(f, CQ, 0, CTRLBUF, 2, 0, 0);
	post(f, CQ, 0, true);
	expect_needs_reset(f, "control command");
	driver_start(f, ALL_FEATURES);
	set_desc(f, CQ, 0, CTRLBUF, 1, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, CQ, 1, CTRLBUF + 0x100, 1, VIRTQ_DESC_F_WRITE, 0);
	post(f, CQ, 0, true);
	expect_needs_reset(f, "control command");

	/* After a reset the device works again; frames queued meanwhile
	 * are delivered. */
	driver_start(f, ALL_FEATURES);
	drain_peer(f);
	add_rx(f, 0, 2048, true);
	virtio_net_rx(f->n);
	while (used_idx(f, RXQ) != f->seen[RXQ])
		next_used(f, RXQ, &id, &len);
	net_send(f, 0, 0, 60, 7);
	add_rx(f, 1, 2048, true);
	virtio_net_rx(f->n);
	next_used(f, RXQ, &id, &len);
	assert_int_equal(len, VIRTIO_NET_HDR_LEN + 60);
	assert_false(needs_reset(f));
	/* Frames are never written outside guest buffers. */
	assert_int_equal(*gp(f, RXBUF(0) + 2048, 1), CANARY);
	assert_int_equal(*gp(f, RXBUF(1) + 2048, 1), CANARY);
}

/* The backend went away: no crash, no more polling. */
static void test_backend_gone(void **state)
{
	fixture_t *f = *state;

	driver_start(f, ALL_FEATURES);
	add_rx(f, 0, 2048, true);
	close(f->peer);
	f->peer = open("/dev/null", O_RDONLY | O_CLOEXEC);
	virtio_net_rx(f->n);
	assert_true(f->tap.dead);
	assert_int_equal(virtio_net_rx_fd(f->n), -1);
	/* Transmits are completed (dropped), not left hanging. */
	tx_chain(f, 0, TXDATA, 60, 1, 1);
	post(f, TXQ, 0, true);
	expect_used(f, TXQ, 0, 0);
	assert_int_equal(virtio_net_stats(f->n)->tx_dropped, 1);
	assert_false(needs_reset(f));
}

/* --- tests: state --------------------------------------------------------- */

static void test_state_table(void **state)
{
	fixture_t *f = *state;
	const state_desc_t *d = virtio_net_state_desc();
	const device_t *e = entry(&f->m, "virtio0-net");
	virtio_net_state_t *live = e->state_obj, saved, bad;
	uint8_t buf[256];
	char err[256];
	size_t n;

	assert_int_equal(state_desc_validate(d, err, sizeof(err)), 0);
	driver_start(f, ALL_FEATURES);
	assert_true(virtio_net_announce(f->n));
	assert_int_equal(live->features, ALL_FEATURES);
	assert_int_equal(d->check(live, err, sizeof(err)), 0);
	n = state_save(d, live, buf, sizeof(buf));
	assert_int_equal(n, state_size(d, d->version));
	assert_int_equal(n, 8 + 6 + 2 + 1 + 1);
	saved = *live;
	memset(live, 0, sizeof(*live));
	assert_int_equal(
		state_load(d, live, d->version, buf, n, err, sizeof(err)), 0);
	assert_memory_equal(live->mac, saved.mac, 6);
	assert_int_equal(live->status, saved.status);
	assert_int_equal(live->features, saved.features);

	/* The check hook refuses what no device could have had. */
	bad = saved;
	bad.mac[0] |= 1;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	memset(bad.mac, 0, 6);
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.status |= 4;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.features &= ~F(VIRTIO_NET_F_GUEST_ANNOUNCE);
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.features |= F(VIRTIO_NET_F_MQ);
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.features &= ~F(VIRTIO_F_VERSION_1);
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.promisc = 2;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	/* A section that fails check() is not loaded at all. */
	bad = saved;
	bad.status = 0xff;
	n = state_save(d, &bad, buf, sizeof(buf));
	assert_int_not_equal(
		state_load(d, live, d->version, buf, n, err, sizeof(err)), 0);
	assert_int_equal(live->status, saved.status);

	/* post_load: the state must be this device's and agree with the
	 * transport's negotiation. */
	e = entry(&f->m, "virtio0");
	live->mac[5] ^= 1;
	assert_int_not_equal(e->ops->post_load(e->dev), 0);
	assert_non_null(strstr(virtio_net_load_error(f->n), "MAC"));
	live->mac[5] ^= 1;
	live->features &= ~F(VIRTIO_NET_F_CSUM);
	assert_int_not_equal(e->ops->post_load(e->dev), 0);
	live->features = saved.features;
	assert_int_equal(e->ops->post_load(e->dev), 0);
	assert_null(virtio_net_load_error(f->n));
}

static char *snapshot(fixture_t *f)
{
	static char path[64];
	char err[256];
	int fd;

	snprintf(path, sizeof(path), "/tmp/tern-net-%d.snap", (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	if (savevm_save(&f->m, NULL, fd, err, sizeof(err)))
		fail_msg("savevm_save: %s", err);
	close(fd);
	return path;
}

static int load(fixture_t *g, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	assert_true(fd >= 0);
	rc = savevm_load(&g->m, fd, NULL, err, errlen);
	close(fd);
	return rc;
}

static void test_snapshot(void **state)
{
	fixture_t *f = *state, *g;
	uint8_t other[6];
	char err[256], *path;

	driver_start(f, ALL_FEATURES);
	for (unsigned i = 0; i < 4; i++)
		add_rx(f, i, 2048, i == 3);
	assert_true(virtio_net_announce(f->n));
	path = snapshot(f);

	/* Same options: the device continues, offloads set on its TAP. */
	g = fixture_new(MAC);
	if (load(g, path, err, sizeof(err)))
		fail_msg("savevm_load: %s", err);
	assert_int_equal(rd(g, VIRTIO_MMIO_STATUS), 0xf);
	assert_int_equal(rdn(g, VIRTIO_MMIO_CONFIG + 6, 2),
			 VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	assert_int_equal(g->tap.offload, TAP_OFFLOAD_ALL);
	assert_int_equal(virtio_net_rx_fd(g->n), g->tap.fd);
	/* ... and takes frames into the buffers the driver had posted. */
	net_send(g, 0, 0, 100, 3);
	virtio_net_rx(g->n);
	assert_int_equal(used_idx(g, RXQ), 1);
	g->seen[RXQ] = 0;
	expect_used(g, RXQ, 0, VIRTIO_NET_HDR_LEN + 100);
	expect_rx_bytes(g, RXBUF(0) + VIRTIO_NET_HDR_LEN, 0, 100, 3);
	fixture_free(g);

	/* Another MAC: refused, naming the device. */
	memcpy(other, MAC, 6);
	other[5]++;
	g = fixture_new(other);
	assert_int_not_equal(load(g, path, err, sizeof(err)), 0);
	if (!strstr(err, "virtio0"))
		fail_msg("unexpected refusal: %s", err);
	fixture_free(g);
	unlink(path);
}

/* --- tests: helpers ------------------------------------------------------- */

static void test_mac_and_rarp(void **state)
{
	fixture_t *f = *state;
	uint8_t mac[6], frame[128];
	char s[18];
	const uint8_t *e;

	assert_int_equal(virtio_net_parse_mac("52:54:00:12:34:56", mac), 0);
	assert_memory_equal(mac, "\x52\x54\x00\x12\x34\x56", 6);
	assert_int_equal(virtio_net_parse_mac("2:0:a:B:c:FF", mac), 0);
	assert_memory_equal(mac, "\x02\x00\x0a\x0b\x0c\xff", 6);
	virtio_net_format_mac(mac, s);
	assert_string_equal(s, "02:00:0a:0b:0c:ff");
	assert_true(virtio_net_mac_ok(mac));
	assert_int_not_equal(virtio_net_parse_mac("52:54:00:12:34", mac), 0);
	assert_int_not_equal(virtio_net_parse_mac("52:54:00:12:34:56:", mac),
			     0);
	assert_int_not_equal(virtio_net_parse_mac("52:54:00:12:34:567", mac),
			     0);
	assert_int_not_equal(virtio_net_parse_mac("52-54-00-12-34-56", mac), 0);
	assert_int_not_equal(virtio_net_parse_mac("", mac), 0);
	assert_int_equal(virtio_net_parse_mac("01:00:5e:00:00:01", mac), 0);
	assert_false(virtio_net_mac_ok(mac)); /* multicast */
	assert_int_equal(virtio_net_parse_mac("00:00:00:00:00:00", mac), 0);
	assert_false(virtio_net_mac_ok(mac));
	assert_true(tap_name_ok("tap0"));
	assert_true(tap_name_ok("abcdefghijklmno"));
	assert_false(tap_name_ok("abcdefghijklmnop"));
	assert_false(tap_name_ok(""));
	assert_false(tap_name_ok("a/b"));
	assert_false(tap_name_ok("a b"));
	assert_false(tap_name_ok(".."));

	/* The RARP announcement, as QEMU sends it: one 60-byte frame. */
	assert_int_equal(tap_send_rarp(&f->tap, MAC), 0);
	assert_int_equal(net_recv(f, frame, sizeof(frame)), TAP_RARP_FRAME_LEN);
	for (unsigned i = 0; i < VIRTIO_NET_HDR_LEN; i++)
		assert_int_equal(frame[i], 0);
	e = frame + VIRTIO_NET_HDR_LEN;
	assert_memory_equal(e, "\xff\xff\xff\xff\xff\xff", 6);
	assert_memory_equal(e + 6, MAC, 6);
	assert_memory_equal(e + 12, "\x80\x35", 2);
	assert_memory_equal(e + 14, "\x00\x01\x08\x00\x06\x04\x00\x03", 8);
	assert_memory_equal(e + 22, MAC, 6);
	assert_memory_equal(e + 28, "\0\0\0\0", 4);
	assert_memory_equal(e + 32, MAC, 6);
	for (unsigned i = 38; i < 60; i++)
		assert_int_equal(e[i], 0);
}

/* --- tests: a real TAP on a real bridge ----------------------------------- */

static int ctl_sock(void)
{
	int sk = socket(AF_LOCAL, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(sk >= 0);
	return sk;
}

/*
 * In a network namespace of its own (so nothing on the host changes and
 * everything vanishes with the process); skipped where one cannot be made.
 */
static void test_real_tap(void **state)
{
	struct tap t, u;
	struct ifreq ifr;
	char err[256];
	uint8_t frame[128];
	struct sockaddr_ll sll;
	unsigned idx;
	int sk, ps;
	ssize_t n;

	(void)state;
	if (unshare(CLONE_NEWNET) || access("/dev/net/tun", R_OK | W_OK)) {
		print_message("skipped: cannot make a network namespace or "
			      "use /dev/net/tun (%s)\n",
			      strerror(errno));
		skip();
	}
	/* The bridge must exist and be one. */
	assert_int_not_equal(
		tap_create(&t, NULL, "nosuchbr", MAC, err, sizeof(err)), 0);
	assert_string_equal(err, "bridge nosuchbr does not exist");
	assert_int_not_equal(tap_create(&t, NULL, "lo", MAC, err, sizeof(err)),
			     0);
	assert_string_equal(err, "lo is not a bridge");
	sk = ctl_sock();
	assert_int_equal(ioctl(sk, SIOCBRADDBR, "tbr0"), 0);

	assert_int_equal(tap_create(&t, "ttap0", "tbr0", MAC, err, sizeof(err)),
			 0);
	assert_string_equal(t.ifname, "ttap0");
	assert_string_equal(t.bridge, "tbr0");
	assert_true(t.caps & TAP_OFFLOAD_CSUM);
	assert_int_equal(t.offload, 0);
	assert_int_equal(tap_set_offload(&t, t.caps), 0);
	idx = if_nametoindex("ttap0");
	assert_int_not_equal(idx, 0);
	/* Up, with its own address fe:..., and a port of the bridge. */
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "ttap0");
	assert_int_equal(ioctl(sk, SIOCGIFFLAGS, &ifr), 0);
	assert_true(ifr.ifr_flags & IFF_UP);
	assert_int_equal(ioctl(sk, SIOCGIFHWADDR, &ifr), 0);
	assert_memory_equal(ifr.ifr_hwaddr.sa_data, "\xfe\x54\x00\xab\xcd\x01",
			    6);
	/* The name is taken now. */
	assert_int_not_equal(
		tap_create(&u, "ttap0", "tbr0", MAC, err, sizeof(err)), 0);
	assert_string_equal(err, "interface ttap0 already exists");
	/* A kernel-named one. */
	assert_int_equal(tap_create(&u, NULL, "tbr0", NULL, err, sizeof(err)),
			 0);
	assert_int_equal(strncmp(u.ifname, "tap", 3), 0);
	tap_close(&u);

	/*
	 * What the device writes comes in through the interface (a packet
	 * socket for every protocol sees it before the bridge takes it).
	 */
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	assert_true(ps >= 0);
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)idx;
	assert_int_equal(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);
	assert_int_equal(tap_send_rarp(&t, MAC), 0);
	for (;;) {
		struct pollfd pfd = {ps, POLLIN, 0};

		assert_int_equal(poll(&pfd, 1, 2000), 1);
		n = recv(ps, frame, sizeof(frame), 0);
		assert_true(n > 14);
		if (frame[12] == 0x80 && frame[13] == 0x35)
			break;
	}
	assert_int_equal(n, 60);
	assert_memory_equal(frame + 6, MAC, 6);
	assert_memory_equal(frame + 22, MAC, 6);
	close(ps);
	/* Reading: whole frames with their header (the host may have sent
	 * some, e.g. IPv6 multicast listener reports), then 0: nothing
	 * waiting is not an error. */
	for (int i = 0;; i++) {
		uint8_t big[RAM_PAGE_SIZE * 17];

		assert_true(i < 1000);
		n = tap_read(&t, big, sizeof(big));
		if (!n)
			break;
		assert_true(n >= VIRTIO_NET_HDR_LEN + VIRTIO_NET_MIN_FRAME);
	}
	assert_false(t.dead);

	/* It was a port of the bridge (removing it succeeds). */
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "tbr0");
	ifr.ifr_ifindex = (int)idx;
	assert_int_equal(ioctl(sk, SIOCBRDELIF, &ifr), 0);
	/* Attaching to an existing TAP: busy while we hold it. */
	assert_int_not_equal(tap_open(&u, "ttap0", err, sizeof(err)), 0);
	assert_string_equal(err, "TAP ttap0 is in use by another process");
	/* Closing removes it. */
	tap_close(&t);
	assert_int_equal(if_nametoindex("ttap0"), 0);
	assert_int_not_equal(tap_open(&u, "ttap0", err, sizeof(err)), 0);
	assert_string_equal(err, "TAP interface ttap0 does not exist");
	assert_int_not_equal(tap_open(&u, "lo", err, sizeof(err)), 0);
	assert_string_equal(err, "lo is not a single-queue TAP interface");
	close(sk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_space, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_mergeable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rx_single, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rx_headers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ctrl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_announce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_backend_gone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_state_table, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mac_and_rarp, setup,
						teardown),
		cmocka_unit_test(test_real_tap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
