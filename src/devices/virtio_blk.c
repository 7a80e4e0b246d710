// SPDX-License-Identifier: MIT
/*
 * virtio-blk (virtio 1.2 section 5.2) on a raw image.
 *
 * One request queue. Requests are served synchronously inside the driver's
 * QueueNotify write, with preadv()/pwritev() straight between the image and
 * guest RAM. So no request is ever in flight between two guest instructions:
 * a snapshot or migration taken while the VM is paused needs no request
 * bookkeeping beyond the rings' indices in the transport state.
 *
 * Request layout (5.2.6): a 16-byte device-readable header
 * { le32 type; le32 reserved; le64 sector; }, the data (readable for OUT,
 * writable for IN), and one device-writable status byte, last. Framing is
 * by bytes, not by descriptors (2.6.4).
 *
 * Errors: a well-formed chain whose last writable byte can take a status
 * gets VIRTIO_BLK_S_IOERR (short header, bad length, sector out of range,
 * I/O error, write to a read-only disk) or VIRTIO_BLK_S_UNSUPP (unknown
 * type). A chain with no writable byte cannot be answered at all: the device
 * goes to DEVICE_NEEDS_RESET, like any malformed chain (virtqueue.h).
 */
#include "devices/virtio_blk.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"

#define BLK_HDR_SIZE 16
/* virtio_blk_config up to and including write_zeroes_may_unmap (5.2.4) */
#define BLK_CONFIG_SIZE 60

struct virtio_blk {
	struct virtio_mmio *t;
	int fd;
	bool readonly;
	char *path;		      /* canonical image path, for describe */
	uint64_t capacity;	      /* 512-byte sectors */
	char id[VIRTIO_BLK_ID_BYTES]; /* GET_ID answer, NUL-padded */
	uint8_t config[BLK_CONFIG_SIZE];
	struct iovec iov[VQ_MAX_SEGS];
	struct vq_elem elem;
};

static uint64_t blk_features(void *dev)
{
	struct virtio_blk *b = dev;
	uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << VIRTIO_BLK_F_FLUSH);

	if (b->readonly)
		f |= 1ull << VIRTIO_BLK_F_RO;
	return f;
}

static void blk_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_blk *b = dev;

	memcpy(buf, b->config + off, len);
}

static void blk_build_config(struct virtio_blk *b)
{
	uint64_t cap = htole64(b->capacity);
	/* Two descriptors go to the header and the status byte. */
	uint32_t seg_max = htole32(VIRTIO_BLK_QUEUE_SIZE - 2);
	uint32_t blk_size = htole32(VIRTIO_BLK_SECTOR_SIZE);

	memset(b->config, 0, sizeof(b->config));
	memcpy(b->config + 0, &cap, 8);
	memcpy(b->config + 12, &seg_max, 4);
	memcpy(b->config + 20, &blk_size, 4);
}

/* Moves the whole iovec list, resuming after short transfers. */
static int blk_io(int fd, struct iovec *iov, int n, off_t off, bool write)
{
	while (n > 0) {
		ssize_t r = write ? pwritev(fd, iov, n, off)
				  : preadv(fd, iov, n, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1; /* error, or the image shrank under us */
		off += r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= r;
		}
	}
	return 0;
}

static uint8_t blk_rw(struct virtio_blk *b, struct virtqueue *vq,
		      const struct vq_elem *e, uint64_t sector, bool write,
		      uint64_t *written)
{
	uint64_t len = write ? e->read_len - BLK_HDR_SIZE : e->write_len - 1;
	int n, rc;

	if (write && b->readonly)
		return VIRTIO_BLK_S_IOERR; /* 5.2.6.2 with VIRTIO_BLK_F_RO */
	if (len % VIRTIO_BLK_SECTOR_SIZE || sector > b->capacity ||
	    len / VIRTIO_BLK_SECTOR_SIZE > b->capacity - sector)
		return VIRTIO_BLK_S_IOERR;
	if (!len)
		return VIRTIO_BLK_S_OK;
	n = vq_elem_iov(vq, e, !write, write ? BLK_HDR_SIZE : 0, len, b->iov,
			VQ_MAX_SEGS);
	if (n < 0)
		return VIRTIO_BLK_S_IOERR;
	rc = blk_io(b->fd, b->iov, n, (off_t)(sector * VIRTIO_BLK_SECTOR_SIZE),
		    write);
	if (!write) {
		/* The host wrote guest RAM behind the dirty log's back. */
		vq_elem_mark_dirty(vq, e, 0, len);
		if (!rc)
			*written = len;
	}
	return rc ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/*
 * Serves one chain. Returns the used length (bytes written from the start
 * of the writable part, 2.7.8), or -1 when there is no status byte.
 */
static int64_t blk_request(struct virtio_blk *b, struct virtqueue *vq,
			   const struct vq_elem *e)
{
	uint8_t hdr[BLK_HDR_SIZE], status;
	uint64_t status_off, sector, written = 0;
	uint32_t type, n;

	if (!e->write_len)
		return -1;
	status_off = e->write_len - 1;
	if (e->read_len < BLK_HDR_SIZE) {
		status = VIRTIO_BLK_S_IOERR;
		goto done;
	}
	vq_elem_read(vq, e, 0, hdr, sizeof(hdr));
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	type = le32toh(type);
	sector = le64toh(sector);
	switch (type) {
	case VIRTIO_BLK_T_IN:
		status = blk_rw(b, vq, e, sector, false, &written);
		break;
	case VIRTIO_BLK_T_OUT:
		status = blk_rw(b, vq, e, sector, true, &written);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status =
			fdatasync(b->fd) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID:
		n = status_off < VIRTIO_BLK_ID_BYTES ? (uint32_t)status_off
						     : VIRTIO_BLK_ID_BYTES;
		written = vq_elem_write(vq, e, 0, b->id, n);
		status = VIRTIO_BLK_S_OK;
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
done:
	vq_elem_write(vq, e, status_off, &status, 1);
	return written == status_off ? (int64_t)e->write_len : (int64_t)written;
}

static void blk_queue_notify(void *dev, unsigned q)
{
	struct virtio_blk *b = dev;
	struct virtqueue *vq = virtio_mmio_queue(b->t, q);
	unsigned done = 0;
	int64_t used;

	/* Terminates: the driver cannot add buffers while we run, and
	 * vq_pop() never hands out more than the queue size. */
	while (vq_pop(vq, &b->elem) > 0) {
		used = blk_request(b, vq, &b->elem);
		if (used < 0) {
			virtio_mmio_device_error(b->t,
						 "virtio-blk request without a "
						 "writable status byte");
			break;
		}
		vq_push(vq, b->elem.head, (uint32_t)used);
		done++;
	}
	if (done)
		virtio_mmio_notify_used(b->t, vq);
}

static void blk_destroy(void *dev)
{
	struct virtio_blk *b = dev;

	close(b->fd); /* also drops the flock, if any */
	free(b->path);
	free(b);
}

/*
 * The identity a migration destination compares (docs/migration-stream.md,
 * MACHINE record): with shared storage both ends open the same image at the
 * same path, of the same size, with the same access and guest-visible serial.
 */
static int blk_describe(void *dev, char *buf, size_t len)
{
	const struct virtio_blk *b = dev;
	char serial[VIRTIO_BLK_ID_BYTES + 1];
	int n;

	memcpy(serial, b->id, VIRTIO_BLK_ID_BYTES);
	serial[VIRTIO_BLK_ID_BYTES] = '\0';
	n = snprintf(buf, len, "virtio-blk path=%s size=%llu ro=%d serial=%s",
		     b->path,
		     (unsigned long long)b->capacity * VIRTIO_BLK_SECTOR_SIZE,
		     b->readonly ? 1 : 0, serial);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static const struct virtio_device_ops blk_ops = {
	.device_id = VIRTIO_ID_BLOCK,
	.nqueues = 1,
	.queue_max = VIRTIO_BLK_QUEUE_SIZE,
	.config_size = BLK_CONFIG_SIZE,
	.features = blk_features,
	.config_read = blk_config_read,
	.queue_notify = blk_queue_notify,
	.destroy = blk_destroy,
	.describe = blk_describe,
};

static int blk_open(struct virtio_blk *b, const struct virtio_blk_opts *o,
		    char *err, size_t errlen)
{
	struct stat st;
	off_t size;

	b->fd = open(o->path, (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		snprintf(err, errlen, "cannot open disk image %s%s: %s",
			 o->path, o->readonly ? "" : " read-write",
			 strerror(errno));
		return -1;
	}
	if (fstat(b->fd, &st)) {
		snprintf(err, errlen, "cannot stat disk image %s: %s", o->path,
			 strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen,
			 "disk image %s is not a regular file or block device",
			 o->path);
		return -1;
	}
	/* lseek also sizes block devices, whose st_size is 0. */
	size = lseek(b->fd, 0, SEEK_END);
	if (size < 0) {
		snprintf(err, errlen, "cannot size disk image %s: %s", o->path,
			 strerror(errno));
		return -1;
	}
	if (!size || size % VIRTIO_BLK_SECTOR_SIZE) {
		snprintf(err, errlen,
			 "disk image %s is %lld bytes, not a non-zero multiple "
			 "of %u",
			 o->path, (long long)size, VIRTIO_BLK_SECTOR_SIZE);
		return -1;
	}
	b->capacity = (uint64_t)size / VIRTIO_BLK_SECTOR_SIZE;
	/* Canonical, so "disk.img" and "./disk.img" name the same image. */
	b->path = realpath(o->path, NULL);
	if (!b->path)
		b->path = strdup(o->path);
	if (!b->path) {
		snprintf(err, errlen, "virtio-blk: out of memory");
		return -1;
	}
	if (o->lock &&
	    flock(b->fd, (o->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB)) {
		snprintf(err, errlen, "disk image %s is in use%s: %s", o->path,
			 errno == EWOULDBLOCK ? " by another process" : "",
			 strerror(errno));
		return -1;
	}
	return 0;
}

struct virtio_blk *virtio_blk_new_opts(machine_t *m,
				       const struct virtio_blk_opts *o,
				       char *err, size_t errlen)
{
	struct virtio_blk *b;

	if (o->serial && strlen(o->serial) > VIRTIO_BLK_ID_BYTES) {
		snprintf(err, errlen, "disk serial \"%s\" longer than %u bytes",
			 o->serial, VIRTIO_BLK_ID_BYTES);
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "virtio-blk: out of memory");
		return NULL;
	}
	b->readonly = o->readonly;
	if (blk_open(b, o, err, errlen))
		goto fail;
	blk_build_config(b);
	b->t = virtio_mmio_new(m, &blk_ops, b, err, errlen);
	if (!b->t)
		goto fail;
	if (o->serial)
		memcpy(b->id, o->serial, strlen(o->serial));
	else
		snprintf(b->id, sizeof(b->id), "tern-%u", b->t->slot);
	return b;
fail:
	if (b->fd >= 0)
		close(b->fd);
	free(b->path);
	free(b);
	return NULL;
}

struct virtio_blk *virtio_blk_new(machine_t *m, const char *path, bool readonly,
				  char *err, size_t errlen)
{
	struct virtio_blk_opts o = {
		.path = path,
		.readonly = readonly,
	};

	return virtio_blk_new_opts(m, &o, err, errlen);
}

uint64_t virtio_blk_capacity(const struct virtio_blk *b)
{
	return b->capacity;
}

struct virtio_mmio *virtio_blk_transport(struct virtio_blk *b)
{
	return b->t;
}
