// SPDX-License-Identifier: MIT
/*
 * virtio-net (virtio 1.2 section 5.1) on a TAP.
 *
 * Frames carry the 12-byte struct virtio_net_hdr both in the guest's
 * buffers and on the TAP (TUNSETVNETHDRSZ 12), so the header passes
 * through: the kernel completes checksums and segments what the guest
 * hands over with offloads (and validates the header; a frame it refuses
 * is dropped), and gives us partially checksummed or coalesced frames
 * only once the guest negotiated the matching GUEST_* feature
 * (TUNSETOFFLOAD follows the negotiated features).
 *
 * Transmit (5.1.6.2): each chain's readable part is header + frame; it
 * goes to the TAP with one writev() straight from guest RAM. A chain
 * shorter than the header breaks a driver MUST and puts the device into
 * DEVICE_NEEDS_RESET (2.1.2), like any malformed chain; an oversized or
 * refused frame is dropped and its buffer returned, as a NIC would.
 *
 * Receive (5.1.6.3, 5.1.6.4): one frame is read into a host buffer, its
 * header adjusted to what the driver negotiated (flags cleared without
 * GUEST_CSUM; a frame with an offload the driver cannot take is dropped),
 * and copied into the driver's buffers with ram_dma_write(). With
 * MRG_RXBUF it spreads over as many buffers as it needs, filling all but
 * the last, num_buffers telling how many; without, it must fit one buffer
 * (num_buffers 1) or is dropped. When the driver has too few buffers the
 * frame waits (host side) and the TAP is not read until the driver adds
 * some and notifies.
 *
 * Control queue (5.1.6.5): class, command, data readable; the ack byte
 * first in the writable part. RX PROMISC/ALLMULTI and MAC TABLE_SET are
 * accepted (a TAP on a bridge needs no filter: the guest's stack drops
 * what is not for it), ANNOUNCE ACK clears the announce bit; everything
 * else, and a malformed command of a known class, answers VIRTIO_NET_ERR.
 */
#include "devices/virtio_net.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtqueue.h"
#include "util/mac.h"

/* A frame plus header as read from the TAP, with room to spot an
 * oversized one. */
#define RXBUF_SIZE (VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME + 1024)

/* Offsets in struct virtio_net_hdr */
#define HDR_FLAGS	0
#define HDR_GSO_TYPE	1
#define HDR_NUM_BUFFERS 10

enum rx_result {
	RX_DONE,       /* delivered: take the next frame */
	RX_DROPPED,    /* dropped: take the next frame */
	RX_NO_BUFFERS, /* the frame waits for buffers */
	RX_BROKEN,     /* DEVICE_NEEDS_RESET */
};

struct virtio_net {
	virtio_net_state_t st; /* the state-only entry's object */
	struct virtio_mmio *t;
	struct tap *tap;
	uint8_t mac[6]; /* configured; the loaded state must agree */
	uint64_t host_features;
	char name[24]; /* "virtio<n>-net", the section name */
	const char *load_error;
	struct virtio_net_stats stats;
	/* A frame read from the TAP and not delivered yet (0: none). */
	size_t rx_len;
	uint8_t *rxbuf;
	/* Popped chains: the first buffer of a frame, and the others. */
	struct vq_elem first;
	struct vq_elem elem;
	struct iovec iov[VQ_MAX_SEGS];
};

/* --- MAC addresses -------------------------------------------------------- */

/* tern-vmm's --net syntax is the toolstack's: one parser (util/mac.c). */
int virtio_net_parse_mac(const char *s, uint8_t mac[6])
{
	return mac_parse(s, mac);
}

void virtio_net_format_mac(const uint8_t mac[6], char *buf)
{
	mac_format(mac, buf);
}

bool virtio_net_mac_ok(const uint8_t mac[6])
{
	return mac_is_valid_unicast(mac);
}

/* --- state table ---------------------------------------------------------- */

/* Everything this device can ever offer; a loaded state must stay inside. */
#define NET_FEATURES_ALL                                                       \
	((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |     \
	 (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_GUEST_TSO4) |      \
	 (1ull << VIRTIO_NET_F_GUEST_TSO6) |                                   \
	 (1ull << VIRTIO_NET_F_GUEST_ECN) | (1ull << VIRTIO_NET_F_HOST_TSO4) | \
	 (1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_HOST_ECN) |  \
	 (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_STATUS) |    \
	 (1ull << VIRTIO_NET_F_CTRL_VQ) | (1ull << VIRTIO_NET_F_CTRL_RX) |     \
	 (1ull << VIRTIO_NET_F_GUEST_ANNOUNCE) |                               \
	 (1ull << VIRTIO_F_VERSION_1) |                                        \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC) |                               \
	 (1ull << VIRTIO_RING_F_EVENT_IDX))

#define T virtio_net_state_t
static const state_field_t net_fields[] = {
	STATE_U64(T, features), STATE_U8_ARRAY(T, mac), STATE_U16(T, status),
	STATE_U8(T, promisc),	STATE_U8(T, allmulti),
};
#undef T

/*
 * Validates a loaded section on its own. What needs the device (the MAC
 * it was configured with, the transport's negotiated features) is checked
 * by post_load.
 */
static int net_state_check(const void *obj, char *err, size_t errlen)
{
	const virtio_net_state_t *s = obj;

	if (s->features & ~NET_FEATURES_ALL) {
		snprintf(err, errlen,
			 "virtio-net: features 0x%llx include unknown bits",
			 (unsigned long long)s->features);
		return -1;
	}
	if (s->features && !((s->features >> VIRTIO_F_VERSION_1) & 1)) {
		snprintf(err, errlen,
			 "virtio-net: features without VIRTIO_F_VERSION_1");
		return -1;
	}
	if (!virtio_net_mac_ok(s->mac)) {
		snprintf(err, errlen,
			 "virtio-net: MAC is not a unicast address");
		return -1;
	}
	if (s->status & ~(VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE)) {
		snprintf(err, errlen, "virtio-net: bad status 0x%x", s->status);
		return -1;
	}
	if ((s->status & VIRTIO_NET_S_ANNOUNCE) &&
	    !((s->features >> VIRTIO_NET_F_GUEST_ANNOUNCE) & 1)) {
		snprintf(err, errlen,
			 "virtio-net: announce pending without "
			 "VIRTIO_NET_F_GUEST_ANNOUNCE");
		return -1;
	}
	if (s->promisc > 1 || s->allmulti > 1) {
		snprintf(err, errlen, "virtio-net: bad receive mode");
		return -1;
	}
	return 0;
}

static const state_desc_t net_state_desc = {
	.name = "virtio-net",
	.version = 1,
	.min_version = 1,
	.size = sizeof(virtio_net_state_t),
	.fields = net_fields,
	.nfields = STATE_NFIELDS(net_fields),
	.check = net_state_check,
};

const state_desc_t *virtio_net_state_desc(void)
{
	return &net_state_desc;
}

/* --- features, offloads, configuration space ------------------------------ */

static bool has(const struct virtio_net *n, unsigned bit)
{
	return (n->st.features >> bit) & 1;
}

/*
 * Offered features: the control queue features, mergeable buffers, and
 * every offload the TAP makes free. Host (transmit) offloads need nothing
 * of the kernel beyond the vnet header; guest (receive) ones need it to
 * accept the matching TUNSETOFFLOAD, which tap.c probed. UFO is left out:
 * Linux neither sends nor builds UFO frames any more.
 */
static uint64_t net_host_features(const struct tap *tap)
{
	uint64_t f =
		(1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) |
		(1ull << VIRTIO_NET_F_CTRL_VQ) |
		(1ull << VIRTIO_NET_F_CTRL_RX) |
		(1ull << VIRTIO_NET_F_GUEST_ANNOUNCE) |
		(1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_CSUM) |
		(1ull << VIRTIO_NET_F_HOST_TSO4) |
		(1ull << VIRTIO_NET_F_HOST_TSO6) |
		(1ull << VIRTIO_NET_F_HOST_ECN);

	if (tap->caps & TAP_OFFLOAD_CSUM) {
		f |= 1ull << VIRTIO_NET_F_GUEST_CSUM;
		if (tap->caps & TAP_OFFLOAD_TSO4)
			f |= 1ull << VIRTIO_NET_F_GUEST_TSO4;
		if (tap->caps & TAP_OFFLOAD_TSO6)
			f |= 1ull << VIRTIO_NET_F_GUEST_TSO6;
		if ((tap->caps & TAP_OFFLOAD_ECN) &&
		    (tap->caps & (TAP_OFFLOAD_TSO4 | TAP_OFFLOAD_TSO6)))
			f |= 1ull << VIRTIO_NET_F_GUEST_ECN;
	}
	return f;
}

static uint64_t net_features(void *dev)
{
	return ((struct virtio_net *)dev)->host_features;
}

/*
 * What the TAP may hand us, from what the driver takes. The kernel only
 * honours TSO with CSUM, and 5.1.3.1 makes the same dependency a driver
 * MUST; a driver that broke it gets no segmentation offload.
 */
static unsigned net_offloads(const struct virtio_net *n)
{
	unsigned o = 0;

	if (!has(n, VIRTIO_NET_F_GUEST_CSUM))
		return 0;
	o |= TAP_OFFLOAD_CSUM;
	if (has(n, VIRTIO_NET_F_GUEST_TSO4))
		o |= TAP_OFFLOAD_TSO4;
	if (has(n, VIRTIO_NET_F_GUEST_TSO6))
		o |= TAP_OFFLOAD_TSO6;
	if (has(n, VIRTIO_NET_F_GUEST_ECN) &&
	    (o & (TAP_OFFLOAD_TSO4 | TAP_OFFLOAD_TSO6)))
		o |= TAP_OFFLOAD_ECN;
	return o & n->tap->caps;
}

static int net_apply_offloads(struct virtio_net *n)
{
	return tap_set_offload(n->tap, net_offloads(n));
}

static void net_config(const struct virtio_net *n, uint8_t *cfg)
{
	uint16_t status = htole16(n->st.status);

	memcpy(cfg, n->st.mac, 6);
	memcpy(cfg + 6, &status, 2);
}

static void net_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	uint8_t cfg[VIRTIO_NET_CONFIG_SIZE];

	net_config(dev, cfg);
	/* The transport guarantees off + len <= VIRTIO_NET_CONFIG_SIZE. */
	memcpy(buf, cfg + off, len);
}

/* --- queues -------------------------------------------------------------- */

/* Makes the count used entries filled since the last flush visible to the
 * driver, and interrupts it if it wants to hear. */
static void net_publish(struct virtio_net *n, struct virtqueue *vq,
			unsigned count)
{
	if (count) {
		vq_flush(vq, count);
		virtio_mmio_notify_used(n->t, vq);
	}
}

/*
 * Serves every chain available on transmit or control queue q with
 * serve(), which returns how many bytes it wrote into the chain, or -1
 * once it put the device into DEVICE_NEEDS_RESET (nothing is published
 * then: the driver must reset). Terminates: the driver cannot add chains
 * while we run, and vq_pop() hands out at most the queue size.
 */
static void net_serve(struct virtio_net *n, unsigned q,
		      int (*serve)(struct virtio_net *n, struct virtqueue *vq,
				   const struct vq_elem *e))
{
	struct virtqueue *vq = &n->t->vq[q];
	struct vq_elem *e = &n->elem;
	unsigned done = 0;
	int r, len;

	while ((r = vq_pop(vq, e)) > 0) {
		len = serve(n, vq, e);
		if (len < 0)
			return;
		vq_fill(vq, done, e->head, (uint32_t)len);
		done++;
	}
	if (r == 0)
		net_publish(n, vq, done);
}

/* --- receive -------------------------------------------------------------- */

static bool rx_running(const struct virtio_net *n)
{
	return virtio_mmio_running(n->t) &&
	       vq_usable(&n->t->vq[VIRTIO_NET_RXQ]) && !n->tap->dead;
}

int virtio_net_rx_fd(const struct virtio_net *n)
{
	if (n->rx_len || !rx_running(n))
		return -1;
	return n->tap->fd;
}

/*
 * Makes the header of the waiting frame one the driver may see (5.1.6.4).
 * Returns false when the frame must be dropped: it needs an offload the
 * driver did not negotiate (possible for frames the TAP queued before the
 * driver's features changed).
 */
static bool rx_fix_header(struct virtio_net *n)
{
	uint8_t *h = n->rxbuf;
	uint8_t gso = h[HDR_GSO_TYPE];
	bool ok;

	if (!has(n, VIRTIO_NET_F_GUEST_CSUM)) {
		/* "the device MUST set flags to zero" */
		if (h[HDR_FLAGS] & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return false;
		h[HDR_FLAGS] = 0;
	} else {
		h[HDR_FLAGS] &= VIRTIO_NET_HDR_F_NEEDS_CSUM |
				VIRTIO_NET_HDR_F_DATA_VALID;
	}
	switch (gso & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_NONE:
		ok = !(gso & VIRTIO_NET_HDR_GSO_ECN);
		break;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		ok = has(n, VIRTIO_NET_F_GUEST_TSO4);
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		ok = has(n, VIRTIO_NET_F_GUEST_TSO6);
		break;
	default:
		ok = false;
		break;
	}
	if (ok && (gso & VIRTIO_NET_HDR_GSO_ECN))
		ok = has(n, VIRTIO_NET_F_GUEST_ECN);
	/* A segmented frame always has a partial checksum (5.1.6.4). */
	if (ok && gso != VIRTIO_NET_HDR_GSO_NONE)
		ok = h[HDR_FLAGS] & VIRTIO_NET_HDR_F_NEEDS_CSUM;
	return ok;
}

/*
 * Mergeable buffers: the frame fills buffers in ring order, each one
 * completely but the last; the used entries are filled now (at *used and
 * on) and published by the caller.
 */
static enum rx_result rx_merge(struct virtio_net *n, struct virtqueue *vq,
			       unsigned *used)
{
	size_t total = n->rx_len, off = 0;
	unsigned k = 0;
	uint16_t nb;

	while (off < total) {
		struct vq_elem *e = k ? &n->elem : &n->first;
		size_t chunk;
		int r = vq_pop(vq, e);

		if (r < 0)
			return RX_BROKEN;
		if (r == 0) {
			vq_unpop(vq, k);
			/*
			 * Every buffer the queue can hold is not enough: the
			 * frame can never be delivered; drop it rather than
			 * stall reception.
			 */
			if (k >= vq->s->num)
				return RX_DROPPED;
			return RX_NO_BUFFERS;
		}
		/* 5.1.6.3.1: "each buffer MUST be at least the size of
		 * struct virtio_net_hdr". */
		if (e->write_len < VIRTIO_NET_HDR_LEN) {
			virtio_mmio_device_error(n->t,
						 "virtio-net receive buffer "
						 "shorter than the header");
			return RX_BROKEN;
		}
		chunk = total - off;
		if (chunk > e->write_len)
			chunk = (size_t)e->write_len;
		vq_elem_write(vq, e, 0, n->rxbuf + off, chunk);
		vq_fill(vq, *used + k, e->head, (uint32_t)chunk);
		off += chunk;
		k++;
	}
	nb = htole16((uint16_t)k);
	vq_elem_write(vq, &n->first, HDR_NUM_BUFFERS, &nb, sizeof(nb));
	*used += k;
	return RX_DONE;
}

/* Without MRG_RXBUF: one buffer holds the whole frame (5.1.6.3.2). */
static enum rx_result rx_single(struct virtio_net *n, struct virtqueue *vq,
				unsigned *used)
{
	struct vq_elem *e = &n->first;
	int r = vq_pop(vq, e);
	uint16_t nb = htole16(1);

	if (r < 0)
		return RX_BROKEN;
	if (r == 0)
		return RX_NO_BUFFERS;
	if (e->write_len < n->rx_len) {
		/* Too long for the buffers this driver posts: dropped, as a
		 * NIC drops an oversized frame; the buffer stays. */
		vq_unpop(vq, 1);
		return RX_DROPPED;
	}
	memcpy(n->rxbuf + HDR_NUM_BUFFERS, &nb, sizeof(nb));
	vq_elem_write(vq, e, 0, n->rxbuf, n->rx_len);
	vq_fill(vq, *used, e->head, (uint32_t)n->rx_len);
	(*used)++;
	return RX_DONE;
}

static enum rx_result rx_deliver(struct virtio_net *n, struct virtqueue *vq,
				 unsigned *used)
{
	enum rx_result r;

	if (!rx_fix_header(n))
		r = RX_DROPPED;
	else if (has(n, VIRTIO_NET_F_MRG_RXBUF))
		r = rx_merge(n, vq, used);
	else
		r = rx_single(n, vq, used);
	if (r == RX_DONE)
		n->stats.rx_frames++;
	else if (r == RX_DROPPED)
		n->stats.rx_dropped++;
	return r;
}

void virtio_net_rx(struct virtio_net *n)
{
	struct virtqueue *vq = &n->t->vq[VIRTIO_NET_RXQ];
	unsigned used = 0, frames = 0;
	enum rx_result r = RX_DONE;

	if (!rx_running(n))
		return;
	while (frames < VIRTIO_NET_RX_BATCH) {
		if (!n->rx_len) {
			ssize_t len = tap_read(n->tap, n->rxbuf, RXBUF_SIZE);

			if (len <= 0)
				break;
			if ((size_t)len <
				    VIRTIO_NET_HDR_LEN + VIRTIO_NET_MIN_FRAME ||
			    (size_t)len >
				    VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME) {
				n->stats.rx_dropped++;
				frames++;
				continue;
			}
			n->rx_len = (size_t)len;
		}
		r = rx_deliver(n, vq, &used);
		if (r != RX_DONE && r != RX_DROPPED)
			break;
		n->rx_len = 0;
		frames++;
	}
	if (r == RX_BROKEN) {
		n->rx_len = 0;
		return;
	}
	net_publish(n, vq, used);
}

/* --- transmit ------------------------------------------------------------- */

/* One transmit chain: its readable part is header + frame. */
static int tx_serve(struct virtio_net *n, struct virtqueue *vq,
		    const struct vq_elem *e)
{
	int cnt = -1;

	if (e->read_len < VIRTIO_NET_HDR_LEN) {
		virtio_mmio_device_error(n->t, "virtio-net transmit buffer "
					       "shorter than the header");
		return -1;
	}
	if (e->read_len >= VIRTIO_NET_HDR_LEN + VIRTIO_NET_MIN_FRAME &&
	    e->read_len <= VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME)
		cnt = vq_elem_iov(vq, e, false, 0, e->read_len, n->iov,
				  VQ_MAX_SEGS);
	if (cnt > 0 && !tap_writev(n->tap, n->iov, cnt))
		n->stats.tx_frames++;
	else
		n->stats.tx_dropped++;
	/* Nothing is written into a transmit buffer (5.1.6.2). */
	return 0;
}

/* --- control queue -------------------------------------------------------- */

/* VIRTIO_NET_CTRL_MAC_TABLE_SET: two struct virtio_net_ctrl_mac, exactly. */
static uint8_t ctrl_mac_table(struct virtio_net *n, struct virtqueue *vq,
			      const struct vq_elem *e)
{
	uint64_t off = 2, len = e->read_len;
	unsigned table;

	for (table = 0; table < 2; table++) {
		uint32_t entries;

		if (len - off < 4 || vq_elem_read(vq, e, off, &entries, 4) != 4)
			return VIRTIO_NET_ERR;
		off += 4;
		entries = le32toh(entries);
		if ((uint64_t)entries * 6 > len - off)
			return VIRTIO_NET_ERR;
		off += (uint64_t)entries * 6;
	}
	return off == len ? VIRTIO_NET_OK : VIRTIO_NET_ERR;
}

static uint8_t ctrl_command(struct virtio_net *n, struct virtqueue *vq,
			    const struct vq_elem *e)
{
	uint8_t hdr[2], on;
	uint64_t dlen = e->read_len - 2;

	vq_elem_read(vq, e, 0, hdr, 2);
	switch (hdr[0]) {
	case VIRTIO_NET_CTRL_RX:
		if (!has(n, VIRTIO_NET_F_CTRL_RX) || dlen != 1 ||
		    hdr[1] > VIRTIO_NET_CTRL_RX_ALLMULTI)
			return VIRTIO_NET_ERR;
		vq_elem_read(vq, e, 2, &on, 1);
		if (on > 1)
			return VIRTIO_NET_ERR;
		if (hdr[1] == VIRTIO_NET_CTRL_RX_PROMISC)
			n->st.promisc = on;
		else
			n->st.allmulti = on;
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MAC:
		if (!has(n, VIRTIO_NET_F_CTRL_RX) ||
		    hdr[1] != VIRTIO_NET_CTRL_MAC_TABLE_SET)
			return VIRTIO_NET_ERR;
		return ctrl_mac_table(n, vq, e);
	case VIRTIO_NET_CTRL_ANNOUNCE:
		if (!has(n, VIRTIO_NET_F_GUEST_ANNOUNCE) ||
		    hdr[1] != VIRTIO_NET_CTRL_ANNOUNCE_ACK || dlen)
			return VIRTIO_NET_ERR;
		/* 5.1.6.5.4: cleared before the buffer is used. */
		if (n->st.status & VIRTIO_NET_S_ANNOUNCE) {
			n->st.status &= ~VIRTIO_NET_S_ANNOUNCE;
			n->t->s.config_generation++;
		}
		return VIRTIO_NET_OK;
	default:
		return VIRTIO_NET_ERR;
	}
}

/* One control command; the ack byte is all that is written. */
static int ctrl_serve(struct virtio_net *n, struct virtqueue *vq,
		      const struct vq_elem *e)
{
	uint8_t ack;

	if (e->read_len < 2 || e->write_len < 1) {
		virtio_mmio_device_error(n->t, "virtio-net control command "
					       "without class/command or ack");
		return -1;
	}
	ack = ctrl_command(n, vq, e);
	if (ack == VIRTIO_NET_OK)
		n->stats.ctrl_ok++;
	else
		n->stats.ctrl_err++;
	vq_elem_write(vq, e, 0, &ack, 1);
	return 1;
}

/* --- transport callbacks -------------------------------------------------- */

static void net_queue_notify(void *dev, unsigned q)
{
	struct virtio_net *n = dev;

	switch (q) {
	case VIRTIO_NET_RXQ:
		/* New buffers: a waiting frame, then whatever the TAP has. */
		virtio_net_rx(n);
		break;
	case VIRTIO_NET_TXQ:
		net_serve(n, VIRTIO_NET_TXQ, tx_serve);
		break;
	case VIRTIO_NET_CTRLQ:
		if (has(n, VIRTIO_NET_F_CTRL_VQ))
			net_serve(n, VIRTIO_NET_CTRLQ, ctrl_serve);
		break;
	default:
		break;
	}
}

/* Device reset (2.4): power-on state; the TAP stops offloading. */
static void net_reset(void *dev)
{
	struct virtio_net *n = dev;

	n->st.features = 0;
	n->st.status = VIRTIO_NET_S_LINK_UP;
	/* No filtering happens: the modes say so. */
	n->st.promisc = 1;
	n->st.allmulti = 0;
	n->rx_len = 0;
	net_apply_offloads(n);
}

static void net_status_changed(void *dev, uint32_t status)
{
	struct virtio_net *n = dev;

	/* FEATURES_OK just stuck: the driver's features are final (3.1.1). */
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !n->st.features) {
		n->st.features = n->t->s.driver_features;
		if (net_apply_offloads(n))
			virtio_mmio_device_error(
				n->t, "the TAP refused the offloads");
	}
}

/*
 * After a load (all sections are in): the state must be this device's
 * (its MAC) and agree with the transport's negotiation; then the TAP gets
 * the offloads the guest's driver expects.
 */
static int net_post_load(void *dev)
{
	struct virtio_net *n = dev;
	const virtio_mmio_state_t *ts = &n->t->s;

	n->rx_len = 0;
	n->load_error = NULL;
	if (memcmp(n->st.mac, n->mac, 6)) {
		n->load_error = "the state is for another MAC address";
		return -1;
	}
	if ((ts->status & VIRTIO_STATUS_FEATURES_OK)
		    ? n->st.features != ts->driver_features
		    : n->st.features != 0) {
		n->load_error = "features disagree with the transport's";
		return -1;
	}
	if (n->st.features & ~(n->host_features | (1ull << VIRTIO_F_VERSION_1) |
			       (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
			       (1ull << VIRTIO_RING_F_EVENT_IDX))) {
		n->load_error = "features this device does not offer";
		return -1;
	}
	if (net_apply_offloads(n)) {
		n->load_error = "the TAP refused the offloads";
		return -1;
	}
	return 0;
}

static void net_destroy(void *dev)
{
	struct virtio_net *n = dev;

	/* The TAP is the monitor's: it outlives this machine. */
	free(n->rxbuf);
	free(n);
}

/*
 * Identity for the destination's check (docs/migration-stream.md): the
 * MAC the guest sees and the features offered. Which bridge or TAP the
 * frames go to is the host's business and may differ.
 */
static int net_describe(void *dev, char *buf, size_t len)
{
	const struct virtio_net *n = dev;
	char mac[18];
	int w;

	virtio_net_format_mac(n->mac, mac);
	w = snprintf(buf, len, "virtio-net mac=%s features=0x%llx", mac,
		     (unsigned long long)n->host_features);
	return w < 0 || (size_t)w >= len ? -1 : 0;
}

static const struct virtio_device_ops net_ops = {
	.device_id = VIRTIO_ID_NET,
	.nqueues = VIRTIO_NET_NQUEUES,
	.queue_max = VIRTIO_NET_QUEUE_SIZE,
	.config_size = VIRTIO_NET_CONFIG_SIZE,
	.features = net_features,
	.config_read = net_config_read,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
	.status_changed = net_status_changed,
	.post_load = net_post_load,
	.destroy = net_destroy,
	.describe = net_describe,
};

/* The state-only entry: no ops; the transport's entry does the rest. */
static const device_ops_t net_entry_ops;

/* --- public --------------------------------------------------------------- */

struct virtio_net *virtio_net_new(machine_t *m, struct tap *tap,
				  const uint8_t mac[6], char *err,
				  size_t errlen)
{
	struct virtio_net *n;

	if (!virtio_net_mac_ok(mac)) {
		snprintf(err, errlen,
			 "virtio-net: MAC is not a unicast address");
		return NULL;
	}
	if (m->ndevices + 2 > MACHINE_MAX_DEVICES) {
		snprintf(err, errlen, "virtio-net: too many devices");
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n || !(n->rxbuf = malloc(RXBUF_SIZE))) {
		free(n);
		snprintf(err, errlen, "virtio-net: out of memory");
		return NULL;
	}
	n->tap = tap;
	memcpy(n->mac, mac, 6);
	memcpy(n->st.mac, mac, 6);
	n->host_features = net_host_features(tap);
	n->t = virtio_mmio_new(m, &net_ops, n, err, errlen);
	if (!n->t) {
		free(n->rxbuf);
		free(n);
		return NULL;
	}
	/* From here the transport owns n (machine teardown frees it). */
	net_reset(n);
	snprintf(n->name, sizeof(n->name), "%s-net", n->t->name);
	if (machine_add_device(m, &(device_t){
					  .name = n->name,
					  .ops = &net_entry_ops,
					  .dev = n,
					  .state = &net_state_desc,
					  .state_obj = &n->st,
				  })) {
		snprintf(err, errlen, "virtio-net: cannot register %s",
			 n->name);
		return NULL;
	}
	return n;
}

bool virtio_net_announce(struct virtio_net *n)
{
	if (!virtio_mmio_running(n->t) || !has(n, VIRTIO_NET_F_GUEST_ANNOUNCE))
		return false;
	n->st.status |= VIRTIO_NET_S_ANNOUNCE;
	virtio_mmio_config_changed(n->t);
	return true;
}

const uint8_t *virtio_net_mac(const struct virtio_net *n)
{
	return n->mac;
}

struct tap *virtio_net_tap(struct virtio_net *n)
{
	return n->tap;
}

struct virtio_mmio *virtio_net_transport(struct virtio_net *n)
{
	return n->t;
}

const struct virtio_net_stats *virtio_net_stats(const struct virtio_net *n)
{
	return &n->stats;
}

const char *virtio_net_load_error(const struct virtio_net *n)
{
	return n->load_error;
}
