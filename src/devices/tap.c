// SPDX-License-Identifier: MIT
/*
 * TAP interfaces as virtio-net backends (see tap.h).
 *
 * Interface setup uses the classic ioctls on an AF_LOCAL socket, as
 * brctl does: SIOCSIFHWADDR, SIOCBRADDIF (which the kernel answers with
 * EOPNOTSUPP when the master is not a bridge) and SIOCGIFFLAGS /
 * SIOCSIFFLAGS. They act in the caller's network namespace, whatever
 * /sys shows, which matters when tern-vmm runs in a namespace.
 */
#include "devices/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

_Static_assert(TAP_OFFLOAD_CSUM == TUN_F_CSUM &&
		       TAP_OFFLOAD_TSO4 == TUN_F_TSO4 &&
		       TAP_OFFLOAD_TSO6 == TUN_F_TSO6 &&
		       TAP_OFFLOAD_ECN == TUN_F_TSO_ECN,
	       "TAP_OFFLOAD_* mirror TUN_F_*");

static void tap_reset(struct tap *t)
{
	memset(t, 0, sizeof(*t));
	t->fd = -1;
}

bool tap_name_ok(const char *name)
{
	size_t len = strlen(name), i;

	if (!len || len >= IFNAMSIZ || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= ' ' || c >= 0x7f || c == '/' || c == ':')
			return false;
	}
	return true;
}

static void copy_name(char dst[IFNAMSIZ], const char *src)
{
	size_t n = strnlen(src, IFNAMSIZ - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * The 12-byte header in both directions, little-endian as virtio 1.x
 * wants it (the kernel's default on a little-endian host), and the
 * offloads this kernel accepts: tried from the full set down, then all
 * switched off until a guest negotiates them.
 */
static int tap_setup_vnet(struct tap *t, char *err, size_t errlen)
{
	static const unsigned tries[] = {
		TAP_OFFLOAD_ALL,
		TAP_OFFLOAD_CSUM | TAP_OFFLOAD_TSO4 | TAP_OFFLOAD_TSO6,
		TAP_OFFLOAD_CSUM,
	};
	int sz = TAP_VNET_HDR_LEN;
	unsigned i;

	if (ioctl(t->fd, TUNSETVNETHDRSZ, &sz)) {
		snprintf(err, errlen,
			 "cannot set the virtio-net header size of TAP %s: %s",
			 t->ifname, strerror(errno));
		return -1;
	}
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	{
		int le = 1;

		if (ioctl(t->fd, TUNSETVNETLE, &le)) {
			snprintf(err, errlen,
				 "TAP %s cannot use little-endian virtio-net "
				 "headers: %s",
				 t->ifname, strerror(errno));
			return -1;
		}
	}
#endif
	t->caps = 0;
	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		if (!ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)tries[i])) {
			t->caps = tries[i];
			break;
		}
	}
	if (ioctl(t->fd, TUNSETOFFLOAD, 0ul)) {
		snprintf(err, errlen, "cannot clear the offloads of TAP %s: %s",
			 t->ifname, strerror(errno));
		return -1;
	}
	t->offload = 0;
	return 0;
}

/*
 * TUNSETIFF on a fresh /dev/net/tun descriptor. Returns 0, -1 when the
 * device file cannot be opened (err set), or TUNSETIFF's errno.
 */
static int tap_attach(struct tap *t, const char *name, bool exclusive,
		      char *err, size_t errlen)
{
	struct ifreq ifr;
	int e;

	t->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (t->fd < 0) {
		e = errno;
		snprintf(err, errlen, "cannot open /dev/net/tun: %s",
			 strerror(e));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (exclusive)
		ifr.ifr_flags |= IFF_TUN_EXCL;
	if (name)
		copy_name(ifr.ifr_name, name);
	if (ioctl(t->fd, TUNSETIFF, &ifr)) {
		e = errno;
		close(t->fd);
		t->fd = -1;
		return e ? e : EIO;
	}
	copy_name(t->ifname, ifr.ifr_name);
	t->is_tap = true;
	return 0;
}

static int if_up(int sk, const char *name, char *err, size_t errlen)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	copy_name(ifr.ifr_name, name);
	if (ioctl(sk, SIOCGIFFLAGS, &ifr))
		goto fail;
	if (ifr.ifr_flags & IFF_UP)
		return 0;
	ifr.ifr_flags |= IFF_UP;
	if (!ioctl(sk, SIOCSIFFLAGS, &ifr))
		return 0;
fail:
	snprintf(err, errlen, "cannot bring TAP %s up: %s", name,
		 strerror(errno));
	return -1;
}

/*
 * The TAP's own address, not the guest's: fe:xx:xx:xx:xx:xx derived from
 * it. A bridge without an explicitly set address takes the lowest of its
 * ports'; fe: keeps a TAP from ever being that port, so adding a VM never
 * changes the bridge's address under the host (libvirt does the same).
 */
static int set_hwaddr(int sk, const char *name, const uint8_t mac[6], char *err,
		      size_t errlen)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	copy_name(ifr.ifr_name, name);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	ifr.ifr_hwaddr.sa_data[0] = (char)0xfe;
	if (!ioctl(sk, SIOCSIFHWADDR, &ifr))
		return 0;
	snprintf(err, errlen, "cannot set the address of TAP %s: %s", name,
		 strerror(errno));
	return -1;
}

static int bridge_add(int sk, const char *bridge, const char *name, char *err,
		      size_t errlen)
{
	struct ifreq ifr;
	unsigned idx = if_nametoindex(name);

	memset(&ifr, 0, sizeof(ifr));
	copy_name(ifr.ifr_name, bridge);
	ifr.ifr_ifindex = (int)idx;
	if (idx && !ioctl(sk, SIOCBRADDIF, &ifr))
		return 0;
	switch (idx ? errno : ENODEV) {
	case ENODEV:
		if (!if_nametoindex(bridge)) {
			snprintf(err, errlen, "bridge %s does not exist",
				 bridge);
			break;
		}
		snprintf(err, errlen, "TAP %s vanished", name);
		break;
	case EOPNOTSUPP:
	case EINVAL:
	case ENOTTY:
		snprintf(err, errlen, "%s is not a bridge", bridge);
		break;
	default:
		snprintf(err, errlen, "cannot add TAP %s to bridge %s: %s",
			 name, bridge, strerror(errno));
		break;
	}
	return -1;
}

/*
 * A TAP just attached: the virtio-net header and offloads, then, through
 * a control socket, the TAP's own address (when guest_mac is given), its
 * bridge (when bridge is), and the interface up. Closes the TAP on
 * failure.
 */
static int tap_configure(struct tap *t, const uint8_t guest_mac[6],
			 const char *bridge, char *err, size_t errlen)
{
	int sk, rc = -1;

	if (tap_setup_vnet(t, err, errlen))
		goto out;
	sk = socket(AF_LOCAL, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0) {
		snprintf(err, errlen, "cannot open a control socket: %s",
			 strerror(errno));
		goto out;
	}
	if ((!guest_mac ||
	     !set_hwaddr(sk, t->ifname, guest_mac, err, errlen)) &&
	    (!bridge || !bridge_add(sk, bridge, t->ifname, err, errlen)) &&
	    !if_up(sk, t->ifname, err, errlen))
		rc = 0;
	close(sk);
	if (!rc && bridge)
		copy_name(t->bridge, bridge);
out:
	if (rc)
		tap_close(t);
	return rc;
}

int tap_create(struct tap *t, const char *ifname, const char *bridge,
	       const uint8_t guest_mac[6], char *err, size_t errlen)
{
	bool named = ifname && *ifname;
	int e;

	tap_reset(t);
	if (named && !tap_name_ok(ifname)) {
		snprintf(err, errlen, "invalid interface name '%s'", ifname);
		return -1;
	}
	if (bridge) {
		if (!tap_name_ok(bridge)) {
			snprintf(err, errlen, "invalid bridge name '%s'",
				 bridge);
			return -1;
		}
		/* Checked first so that nothing is created in vain. */
		if (!if_nametoindex(bridge)) {
			snprintf(err, errlen, "bridge %s does not exist",
				 bridge);
			return -1;
		}
	}
	e = tap_attach(t, named ? ifname : NULL, named, err, errlen);
	if (e < 0)
		return -1;
	if (e) {
		if (e == EBUSY && named)
			snprintf(err, errlen, "interface %s already exists",
				 ifname);
		else
			snprintf(err, errlen, "cannot create a TAP%s%s: %s",
				 named ? " named " : "", named ? ifname : "",
				 strerror(e));
		return -1;
	}
	return tap_configure(t, guest_mac, bridge, err, errlen);
}

int tap_open(struct tap *t, const char *ifname, char *err, size_t errlen)
{
	int e;

	tap_reset(t);
	if (!tap_name_ok(ifname)) {
		snprintf(err, errlen, "invalid interface name '%s'", ifname);
		return -1;
	}
	if (!if_nametoindex(ifname)) {
		snprintf(err, errlen, "TAP interface %s does not exist",
			 ifname);
		return -1;
	}
	e = tap_attach(t, ifname, false, err, errlen);
	if (e < 0)
		return -1;
	if (e) {
		if (e == EINVAL)
			snprintf(err, errlen,
				 "%s is not a single-queue TAP interface",
				 ifname);
		else if (e == EBUSY)
			snprintf(err, errlen,
				 "TAP %s is in use by another process", ifname);
		else
			snprintf(err, errlen, "cannot attach to TAP %s: %s",
				 ifname, strerror(e));
		return -1;
	}
	return tap_configure(t, NULL, NULL, err, errlen);
}

void tap_from_fd(struct tap *t, int fd, const char *name)
{
	int fl = fcntl(fd, F_GETFL);

	tap_reset(t);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	t->fd = fd;
	t->caps = TAP_OFFLOAD_ALL;
	copy_name(t->ifname, name ? name : "socket");
}

int tap_set_offload(struct tap *t, unsigned flags)
{
	if (flags & ~t->caps) {
		errno = EINVAL;
		return -1;
	}
	if (t->is_tap && ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)flags))
		return -1;
	t->offload = flags;
	return 0;
}

ssize_t tap_read(struct tap *t, void *buf, size_t len)
{
	ssize_t n;

	if (t->dead || t->fd < 0)
		return -1;
	for (;;) {
		n = read(t->fd, buf, len);
		if (n > 0)
			return n;
		if (n == 0) {
			/* A TAP never reads 0 bytes; a socket does at EOF. */
			if (t->is_tap)
				return 0;
			t->dead = true;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		/* EBADFD: the interface was deleted under us. */
		t->dead = true;
		return -1;
	}
}

int tap_writev(struct tap *t, const struct iovec *iov, int iovcnt)
{
	struct msghdr mh;
	ssize_t n;

	if (t->dead || t->fd < 0)
		return -1;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = (struct iovec *)iov;
	mh.msg_iovlen = (size_t)iovcnt;
	for (;;) {
		if (t->is_tap)
			n = writev(t->fd, iov, iovcnt);
		else
			n = sendmsg(t->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		/*
		 * EINVAL: the kernel refused the frame (a bad header from the
		 * guest); EIO: the interface is down; EAGAIN/ENOBUFS: no
		 * room. Each drops this frame only.
		 */
		if (errno == EBADFD || errno == EPIPE || errno == ECONNRESET ||
		    errno == ENOTCONN)
			t->dead = true;
		return -1;
	}
}

void tap_rarp_frame(uint8_t buf[TAP_RARP_FRAME_LEN], const uint8_t mac[6])
{
	/* RFC 903 over Ethernet, as QEMU's announce_self_create() builds it. */
	static const uint8_t rarp[10] = {
		0x80, 0x35, /* ethertype: RARP */
		0x00, 0x01, /* hardware type: Ethernet */
		0x08, 0x00, /* protocol type: IPv4 */
		6,    4,    /* hardware and protocol address lengths */
		0x00, 0x03, /* operation 3: reverse request */
	};
	uint8_t *f = buf + TAP_VNET_HDR_LEN;

	/* The virtio_net_hdr all zero: a complete frame, no offload. */
	memset(buf, 0, TAP_RARP_FRAME_LEN);
	memset(f, 0xff, 6);    /* destination: broadcast */
	memcpy(f + 6, mac, 6); /* source */
	memcpy(f + 12, rarp, sizeof(rarp));
	memcpy(f + 22, mac, 6); /* sender hardware address; IP 0 */
	memcpy(f + 32, mac, 6); /* target hardware address; IP 0 */
	/* Zero padding up to the 60-byte minimum frame. */
}

int tap_send_rarp(struct tap *t, const uint8_t mac[6])
{
	uint8_t buf[TAP_RARP_FRAME_LEN];
	struct iovec iov = {buf, sizeof(buf)};

	tap_rarp_frame(buf, mac);
	return tap_writev(t, &iov, 1);
}

void tap_close(struct tap *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}
