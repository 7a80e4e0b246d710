/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2 section 5.2) on a raw image file or block device,
 * behind the virtio-mmio transport.
 */
#ifndef TERN_VIRTIO_BLK_H
#define TERN_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/machine.h"

/* Feature bits (5.2.3) */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO	      5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

/* Request types and status values (5.2.6) */
#define VIRTIO_BLK_T_IN	    0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES    20
#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_QUEUE_SIZE  256

struct virtio_blk;

struct virtio_blk_opts {
	const char *path; /* raw image: regular file or block device */
	bool readonly;
	/*
	 * Take an advisory flock() on the image (exclusive, shared when
	 * read-only) so that two VMs on one host cannot write one image at
	 * once. Off by default: a migration between two tern-vmm processes
	 * on the same host has both holding the image for a while.
	 */
	bool lock;
	const char
		*serial; /* GET_ID string (<= 20 bytes); NULL: "tern-<slot>" */
};

/*
 * Opens the image and adds a virtio-blk device in the next virtio-mmio
 * slot. Returns NULL with a message in err when the image is missing, not
 * readable/writable as asked, not a regular file or block device, not a
 * multiple of 512 bytes, locked by another process (with opts->lock), or
 * no slot is left. The machine owns the device afterwards.
 */
struct virtio_blk *virtio_blk_new_opts(machine_t *m,
				       const struct virtio_blk_opts *opts,
				       char *err, size_t errlen);

/* virtio_blk_new_opts() without locking and with the default serial. */
struct virtio_blk *virtio_blk_new(machine_t *m, const char *path, bool readonly,
				  char *err, size_t errlen);

/* Capacity in 512-byte sectors. */
uint64_t virtio_blk_capacity(const struct virtio_blk *b);

struct virtio_mmio *virtio_blk_transport(struct virtio_blk *b);

#endif
