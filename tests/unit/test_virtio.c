// SPDX-License-Identifier: MIT
/*
 * virtio-mmio, split virtqueues and virtio-blk. The test plays the guest
 * driver: it negotiates through MMIO accesses dispatched by the machine,
 * builds rings and requests in guest RAM, and checks what a driver would
 * see (used ring, status bytes, InterruptStatus, the PLIC input line) plus
 * the image file on the host. Malformed chains must be refused without
 * touching memory outside the buffers they legitimately name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libfdt.h>

#include "devices/plic.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"
#include "machine/machine.h"
#include "machine/state.h"

#define RAM_BYTES    (16u << 20)
#define QSIZE	     16
#define DISK_SECTORS 64

/* Guest-physical layout used by the test driver */
#define G(off)	(MEM_RAM_BASE + (off))
#define DESC	G(0x10000)
#define AVAIL	G(0x11000)
#define USED	G(0x12000)
#define ITABLE	G(0x13000) /* indirect descriptor tables */
#define HDR	G(0x20000)
#define STATUS	G(0x20100)
#define DATA	G(0x30000)
#define DATA2	G(0x40000)
#define RAM_END (MEM_RAM_BASE + RAM_BYTES)

typedef struct fixture {
	machine_t m;
	struct plic *plic;
	struct virtio_blk *blk;
	struct virtio_mmio *t;
	uint64_t base;
	char path[64];
	uint16_t avail_idx;
} fixture_t;

#include "virtio_harness.h"

/* --- host helpers ------------------------------------------------------ */

static void make_image(const char *path, size_t bytes)
{
	FILE *f = fopen(path, "wb");
	size_t i;

	assert_non_null(f);
	for (i = 0; i < bytes; i++)
		fputc((int)(i * 7 + i / 512) & 0xff, f);
	fclose(f);
}

static uint8_t image_byte(size_t i)
{
	return (uint8_t)((i * 7 + i / 512) & 0xff);
}

static void read_image(const char *path, size_t off, void *buf, size_t len)
{
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
	assert_int_equal(fread(buf, 1, len, f), len);
	fclose(f);
}

/* --- the ring ---------------------------------------------------------- */

static void set_desc(fixture_t *f, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	set_desc_at(f, DESC, i, addr, len, flags, next);
}

/* --- the test driver ---------------------------------------------------- */

static void setup_queue(fixture_t *f)
{
	memset(gp(f, DESC, 0x4000), 0, 0x4000);
	queue_setup(f, 0, VIRTIO_BLK_QUEUE_SIZE, DESC, AVAIL, USED);
	f->avail_idx = 0;
}

#define BASE_FEATURES                                                          \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_SEG_MAX) |       \
	 (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |      \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC))

static void driver_start(fixture_t *f, uint64_t feat)
{
	assert_true(negotiate(f, feat));
	setup_queue(f);
	wr(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0xf);
}

static uint16_t used_idx(fixture_t *f)
{
	return gr16(f, USED + 2);
}

/* Makes head available and kicks the queue. */
static void submit(fixture_t *f, uint16_t head)
{
	ring_post(f, 0, AVAIL, &f->avail_idx, head, true);
}

static void write_hdr(fixture_t *f, uint32_t type, uint64_t sector)
{
	gw32(f, HDR, type);
	gw32(f, HDR + 4, 0);
	gw64(f, HDR + 8, sector);
}

/*
 * A request as Linux builds it: header, optional data, status. Returns
 * the status byte and checks the request completed in the used ring.
 */
static uint8_t request(fixture_t *f, uint32_t type, uint64_t sector,
		       uint64_t data, uint32_t len, bool dev_writes)
{
	uint16_t before = used_idx(f);
	unsigned n = 0;

	write_hdr(f, type, sector);
	*gp(f, STATUS, 1) = 0xee;
	set_desc(f, n, HDR, 16, VIRTQ_DESC_F_NEXT, n + 1);
	n++;
	if (len) {
		set_desc(f, n, data, len,
			 VIRTQ_DESC_F_NEXT |
				 (dev_writes ? VIRTQ_DESC_F_WRITE : 0),
			 n + 1);
		n++;
	}
	set_desc(f, n, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	submit(f, 0);
	assert_int_equal(used_idx(f), (uint16_t)(before + 1));
	assert_int_equal(gr32(f, USED + 4 + 8 * (before % QSIZE)), 0);
	return *gp(f, STATUS, 1);
}

static uint32_t last_used_len(fixture_t *f)
{
	return gr32(f, USED + 8 + 8 * ((used_idx(f) - 1) % QSIZE));
}

/* --- fixture ------------------------------------------------------------ */

static int setup_common(void **state, bool readonly)
{
	fixture_t *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	assert_int_equal(machine_init(&f->m, RAM_BYTES, 1, err, sizeof(err)),
			 0);
	f->plic = plic_new(&f->m, MEM_PLIC_BASE);
	assert_non_null(f->plic);
	snprintf(f->path, sizeof(f->path), "/tmp/tern-virtio-%d.img",
		 (int)getpid());
	make_image(f->path, DISK_SECTORS * 512);
	f->blk = virtio_blk_new(&f->m, f->path, readonly, err, sizeof(err));
	if (!f->blk)
		fail_msg("virtio_blk_new: %s", err);
	f->t = virtio_blk_transport(f->blk);
	f->base = f->t->base;
	*state = f;
	return 0;
}

static int setup_rw(void **state)
{
	return setup_common(state, false);
}

static int setup_ro(void **state)
{
	return setup_common(state, true);
}

static int teardown(void **state)
{
	fixture_t *f = *state;

	machine_destroy(&f->m);
	unlink(f->path);
	free(f);
	return 0;
}

/* --- tests: transport --------------------------------------------------- */

static void test_identity(void **state)
{
	fixture_t *f = *state;
	const device_t *d = machine_find_device(&f->m, MEM_VIRTIO_BASE, 4);
	uint64_t feat = device_features(f);
	uint64_t v;

	assert_non_null(d);
	assert_string_equal(d->name, "virtio0");
	assert_int_equal(f->base, MEM_VIRTIO_BASE);
	assert_int_equal(f->t->irq, IRQ_VIRTIO_FIRST);
	assert_int_equal(f->m.nvirtio, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(f, VIRTIO_MMIO_VERSION_REG), 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	assert_int_equal(rd(f, VIRTIO_MMIO_VENDOR_ID), 0x6e726574);
	assert_true(feat & (1ull << VIRTIO_F_VERSION_1));
	assert_true(feat & (1ull << VIRTIO_RING_F_INDIRECT_DESC));
	assert_true(feat & (1ull << VIRTIO_RING_F_EVENT_IDX));
	assert_true(feat & (1ull << VIRTIO_BLK_F_FLUSH));
	assert_true(feat & (1ull << VIRTIO_BLK_F_SEG_MAX));
	assert_true(feat & (1ull << VIRTIO_BLK_F_BLK_SIZE));
	assert_false(feat & (1ull << VIRTIO_BLK_F_RO));
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 0);

	/* Config space: capacity (two 32-bit halves), seg_max, blk_size. */
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG + 0), DISK_SECTORS);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG + 4), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG + 12),
			 VIRTIO_BLK_QUEUE_SIZE - 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG + 20), 512);
	assert_true(
		machine_mmio_read(&f->m, f->base + VIRTIO_MMIO_CONFIG, 1, &v));
	assert_int_equal(v, DISK_SECTORS);
	assert_true(
		machine_mmio_read(&f->m, f->base + VIRTIO_MMIO_CONFIG, 8, &v));
	assert_int_equal(v, DISK_SECTORS);
	/* Beyond the config space, and writes to it: nothing. */
	assert_int_equal(rd(f, 0x800), 0);
	wr(f, VIRTIO_MMIO_CONFIG, 0x1234);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG), DISK_SECTORS);
	/* Registers want aligned 32-bit accesses; others read 0. */
	assert_true(machine_mmio_read(&f->m, f->base, 1, &v));
	assert_int_equal(v, 0);
	assert_true(machine_mmio_read(&f->m, f->base + 2, 4, &v));
	assert_int_equal(v, 0);
	assert_true(
		machine_mmio_write(&f->m, f->base + VIRTIO_MMIO_STATUS, 1, 1));
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	/* No shared memory regions. */
	assert_int_equal(rd(f, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffffu);
	assert_int_equal(rd(f, VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffffu);
	/* Queues beyond the first do not exist. */
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
}

static void test_slots_and_fdt(void **state)
{
	fixture_t *f = *state;
	char err[256];
	struct virtio_blk *b[MACHINE_MAX_VIRTIO];
	unsigned i;
	void *fdt = malloc(65536);
	int soc, node;
	const fdt32_t *p;
	int len;

	for (i = 1; i < MACHINE_MAX_VIRTIO; i++) {
		b[i] = virtio_blk_new(&f->m, f->path, true, err, sizeof(err));
		assert_non_null(b[i]);
		assert_int_equal(virtio_blk_transport(b[i])->base,
				 MEM_VIRTIO_BASE + i * MEM_VIRTIO_STRIDE);
		assert_int_equal(virtio_blk_transport(b[i])->irq,
				 IRQ_VIRTIO_FIRST + i);
	}
	assert_null(virtio_blk_new(&f->m, f->path, true, err, sizeof(err)));
	assert_non_null(strstr(err, "too many"));

	/* The device tree node of slot 0. */
	assert_non_null(fdt);
	assert_int_equal(fdt_create_empty_tree(fdt, 65536), 0);
	soc = fdt_add_subnode(fdt, 0, "soc");
	assert_true(soc >= 0);
	for (i = 0; i < f->m.ndevices; i++)
		if (f->m.devices[i].base == MEM_VIRTIO_BASE)
			assert_int_equal(
				f->m.devices[i].ops->fdt(f->m.devices[i].dev,
							 fdt, soc, &f->m),
				0);
	node = fdt_path_offset(fdt, "/soc/virtio_mmio@10001000");
	assert_true(node >= 0);
	assert_string_equal(fdt_getprop(fdt, node, "compatible", NULL),
			    "virtio,mmio");
	p = fdt_getprop(fdt, node, "reg", &len);
	assert_int_equal(len, 16);
	assert_int_equal(fdt32_to_cpu(p[1]), MEM_VIRTIO_BASE);
	assert_int_equal(fdt32_to_cpu(p[3]), MEM_VIRTIO_STRIDE);
	p = fdt_getprop(fdt, node, "interrupts", &len);
	assert_int_equal(len, 4);
	assert_int_equal(fdt32_to_cpu(p[0]), IRQ_VIRTIO_FIRST);
	p = fdt_getprop(fdt, node, "interrupt-parent", &len);
	assert_int_equal(fdt32_to_cpu(p[0]), PHANDLE_PLIC);
	free(fdt);
}

static void test_features(void **state)
{
	fixture_t *f = *state;

	/* VIRTIO_F_VERSION_1 is mandatory for this non-legacy device. */
	assert_false(negotiate(f, 1ull << VIRTIO_BLK_F_FLUSH));
	/* Features the device did not offer are refused. */
	assert_false(negotiate(f, (1ull << VIRTIO_F_VERSION_1) |
					  (1ull << VIRTIO_BLK_F_RO)));
	assert_false(negotiate(f, (1ull << VIRTIO_F_VERSION_1) | (1ull << 40)));
	assert_true(negotiate(f, BASE_FEATURES));
	assert_true(virtio_mmio_has_feature(f->t, VIRTIO_BLK_F_FLUSH));
	/* Frozen once FEATURES_OK is set. */
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_true(virtio_mmio_has_feature(f->t, VIRTIO_BLK_F_FLUSH));
	/* Reset clears status and negotiated features. */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	assert_false(virtio_mmio_has_feature(f->t, VIRTIO_F_VERSION_1));
}

/* --- tests: block requests ---------------------------------------------- */

static void test_read_write(void **state)
{
	fixture_t *f = *state;
	uint8_t buf[1024], disk[1024];
	unsigned i;

	driver_start(f, BASE_FEATURES);
	assert_false(line(f));

	/* Read sectors 3-4. */
	memset(gp(f, DATA, 1024), 0, 1024);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 3, DATA, 1024, true),
			 VIRTIO_BLK_S_OK);
	for (i = 0; i < 1024; i++)
		assert_int_equal(*gp(f, DATA + i, 1), image_byte(3 * 512 + i));
	assert_int_equal(last_used_len(f), 1025);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_VRING);
	assert_true(line(f));
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_false(line(f));

	/* Write sectors 10-11, check the image, read them back. */
	for (i = 0; i < 1024; i++)
		buf[i] = (uint8_t)(i ^ 0x5a);
	memcpy(gp(f, DATA, 1024), buf, 1024);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, 10, DATA, 1024, false),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(last_used_len(f), 1);
	read_image(f->path, 10 * 512, disk, 1024);
	assert_memory_equal(disk, buf, 1024);
	read_image(f->path, 9 * 512, disk, 512);
	for (i = 0; i < 512; i++)
		assert_int_equal(disk[i], image_byte(9 * 512 + i));
	memset(gp(f, DATA2, 1024), 0, 1024);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 10, DATA2, 1024, true),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(gp(f, DATA2, 1024), buf, 1024);

	/* The last sector is in range, one more is not. */
	assert_int_equal(
		request(f, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, DATA, 512, true),
		VIRTIO_BLK_S_OK);
	memset(gp(f, DATA, 1024), 0x77, 1024);
	assert_int_equal(
		request(f, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, DATA, 1024, true),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(*gp(f, DATA, 1), 0x77); /* untouched */
	assert_int_equal(
		request(f, VIRTIO_BLK_T_IN, DISK_SECTORS, DATA, 512, true),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, UINT64_MAX / 256, DATA,
				 512, false),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(
		request(f, VIRTIO_BLK_T_IN, UINT64_MAX, DATA, 512, true),
		VIRTIO_BLK_S_IOERR);
	/* Data not a multiple of 512 bytes. */
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 0, DATA, 100, true),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS) &
				 VIRTIO_STATUS_DEVICE_NEEDS_RESET,
			 0);
}

static void test_scatter_gather(void **state)
{
	fixture_t *f = *state;
	unsigned i;

	driver_start(f, BASE_FEATURES);
	/*
	 * Header and data split across descriptors at odd places (framing is
	 * by bytes, 2.6.4): header in two pieces, 1024 bytes of data in
	 * three, the status byte sharing a descriptor with the data tail.
	 */
	write_hdr(f, VIRTIO_BLK_T_IN, 20);
	memset(gp(f, DATA, 2048), 0, 2048);
	set_desc(f, 0, HDR, 10, VIRTQ_DESC_F_NEXT, 5);
	set_desc(f, 5, HDR + 10, 6, VIRTQ_DESC_F_NEXT, 2);
	set_desc(f, 2, DATA, 100, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 7);
	set_desc(f, 7, DATA + 1000, 700, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE,
		 3);
	set_desc(f, 3, DATA2, 225, VIRTQ_DESC_F_WRITE, 0); /* 224 + status */
	submit(f, 0);
	assert_int_equal(used_idx(f), 1);
	for (i = 0; i < 100; i++)
		assert_int_equal(*gp(f, DATA + i, 1), image_byte(20 * 512 + i));
	for (i = 0; i < 700; i++)
		assert_int_equal(*gp(f, DATA + 1000 + i, 1),
				 image_byte(20 * 512 + 100 + i));
	for (i = 0; i < 224; i++)
		assert_int_equal(*gp(f, DATA2 + i, 1),
				 image_byte(20 * 512 + 800 + i));
	assert_int_equal(*gp(f, DATA2 + 224, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(last_used_len(f), 1025);
}

static void test_indirect(void **state)
{
	fixture_t *f = *state;
	unsigned i;

	driver_start(f, BASE_FEATURES);
	/* One direct descriptor then an indirect table (2.7.5.3.2). */
	write_hdr(f, VIRTIO_BLK_T_IN, 5);
	*gp(f, STATUS, 1) = 0xee;
	set_desc_at(f, ITABLE, 0, DATA, 512,
		    VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	set_desc_at(f, ITABLE, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	set_desc(f, 4, HDR, 16, VIRTQ_DESC_F_NEXT, 9);
	set_desc(f, 9, ITABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	submit(f, 4);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(gr32(f, USED + 4), 4);
	assert_int_equal(*gp(f, STATUS, 1), VIRTIO_BLK_S_OK);
	for (i = 0; i < 512; i++)
		assert_int_equal(*gp(f, DATA + i, 1), image_byte(5 * 512 + i));
}

static void test_flush_get_id_unsupp(void **state)
{
	fixture_t *f = *state;
	char id[VIRTIO_BLK_ID_BYTES] = "tern-0";

	driver_start(f, BASE_FEATURES);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(last_used_len(f), 1);
	memset(gp(f, DATA, 64), 0xff, 64);
	assert_int_equal(request(f, VIRTIO_BLK_T_GET_ID, 0, DATA, 20, true),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(gp(f, DATA, 20), id, 20);
	assert_int_equal(*gp(f, DATA + 20, 1), 0xff);
	assert_int_equal(last_used_len(f), 21);
	/* DISCARD (11) and anything unknown: unsupported. */
	assert_int_equal(request(f, 11, 0, DATA, 16, false),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(request(f, 0x7fff, 0, 0, 0, false),
			 VIRTIO_BLK_S_UNSUPP);
	/* Header shorter than 16 bytes: the status byte says IOERR. */
	*gp(f, STATUS, 1) = 0xee;
	set_desc(f, 0, HDR, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	submit(f, 0);
	assert_int_equal(*gp(f, STATUS, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0xf);
}

static void test_readonly(void **state)
{
	fixture_t *f = *state;
	uint8_t disk[512];
	unsigned i;

	assert_true(device_features(f) & (1ull << VIRTIO_BLK_F_RO));
	driver_start(f, BASE_FEATURES | (1ull << VIRTIO_BLK_F_RO));
	memset(gp(f, DATA, 512), 0xab, 512);
	assert_int_equal(request(f, VIRTIO_BLK_T_OUT, 1, DATA, 512, false),
			 VIRTIO_BLK_S_IOERR);
	read_image(f->path, 512, disk, 512);
	for (i = 0; i < 512; i++)
		assert_int_equal(disk[i], image_byte(512 + i));
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 1, DATA, 512, true),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(*gp(f, DATA, 1), image_byte(512));
}

static void test_dirty_log(void **state)
{
	fixture_t *f = *state;
	uint64_t *bits = calloc((f->m.ram.npages + 63) / 64, 8);
	uint64_t data_pfn = (DATA - MEM_RAM_BASE) >> RAM_PAGE_SHIFT;
	uint64_t used_pfn = (USED - MEM_RAM_BASE) >> RAM_PAGE_SHIFT;

	assert_non_null(bits);
	driver_start(f, BASE_FEATURES);
	ram_log_start(&f->m.ram);
	ram_log_harvest(&f->m.ram, bits);
	assert_false(ram_page_dirty(&f->m.ram, data_pfn + 1));
	assert_false(ram_page_dirty(&f->m.ram, used_pfn));
	/* preadv() lands in guest RAM directly: both pages must be logged. */
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 0, DATA + 4000, 512, true),
			 VIRTIO_BLK_S_OK);
	assert_true(ram_page_dirty(&f->m.ram, data_pfn));
	assert_true(ram_page_dirty(&f->m.ram, data_pfn + 1));
	assert_true(ram_page_dirty(&f->m.ram, used_pfn));
	assert_false(ram_page_dirty(&f->m.ram, data_pfn + 2));
	ram_log_stop(&f->m.ram);
	free(bits);
}

/* --- tests: notification suppression ------------------------------------ */

static void test_no_interrupt_flag(void **state)
{
	fixture_t *f = *state;

	driver_start(f, BASE_FEATURES);
	gw16(f, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	gw16(f, AVAIL, 0);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 1);
}

static void test_event_idx(void **state)
{
	fixture_t *f = *state;
	uint64_t used_event = AVAIL + 4 + 2 * QSIZE;
	uint64_t avail_event = USED + 4 + 8 * QSIZE;

	driver_start(f, BASE_FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX));
	/* The first completion always interrupts. */
	gw16(f, used_event, 0);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 1);
	/* The device asks to be kicked for the next buffer (2.7.10). */
	assert_int_equal(gr16(f, avail_event), 1);
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, 1);
	/* Driver wants an interrupt only after used idx passes 3. */
	gw16(f, used_event, 3);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 0);
	assert_int_equal(used_idx(f), 4);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 1);
	assert_int_equal(gr16(f, avail_event), 4);
}

/* --- tests: hostile input ----------------------------------------------- */

static void expect_needs_reset(fixture_t *f, uint16_t used_before,
			       const char *why)
{
	assert_int_equal(used_idx(f), used_before);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) &
		    VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_non_null(f->t->last_error);
	if (!strstr(f->t->last_error, why))
		fail_msg("refused for \"%s\", expected \"%s\"",
			 f->t->last_error, why);
	/* 2.1.2: announced as a configuration change. */
	assert_true(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) &
		    VIRTIO_MMIO_INT_CONFIG);
	assert_true(line(f));
	/* Further kicks are ignored until the driver resets the device. */
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(used_idx(f), used_before);
	/* Reset; then the device works again. */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_false(line(f));
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	driver_start(f, BASE_FEATURES);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 0, DATA, 512, true),
			 VIRTIO_BLK_S_OK);
}

/* Guard bytes around the data buffers and at the end of RAM. */
static void canaries_set(fixture_t *f)
{
	memset(gp(f, DATA, 0x20000), 0xc5, 0x20000);
	memset(gp(f, RAM_END - 4096, 4096), 0xc5, 4096);
}

static void canaries_check(fixture_t *f)
{
	const uint8_t *p = gp(f, DATA, 0x20000);
	unsigned i;

	for (i = 0; i < 0x20000; i++)
		assert_int_equal(p[i], 0xc5);
	p = gp(f, RAM_END - 4096, 4096);
	for (i = 0; i < 4096; i++)
		assert_int_equal(p[i], 0xc5);
}

enum bad_chain {
	BAD_HEAD_INDEX,
	BAD_NEXT_INDEX,
	BAD_LOOP,
	BAD_SELF_LOOP,
	BAD_NESTED_INDIRECT,
	BAD_INDIRECT_NEXT,
	BAD_INDIRECT_LEN,
	BAD_INDIRECT_OUTSIDE,
	BAD_INDIRECT_LOOP,
	BAD_INDIRECT_INDEX,
	BAD_ADDR_BELOW_RAM,
	BAD_ADDR_CROSSES_END,
	BAD_LEN_OVERFLOW,
	BAD_ADDR_WRAP,
	BAD_STATUS_READONLY,
	BAD_READ_AFTER_WRITE,
	BAD_AVAIL_AHEAD,
	BAD_COUNT
};

/* Why each chain must be refused (a substring of the device's reason). */
static const char *const bad_reason[BAD_COUNT] = {
	[BAD_HEAD_INDEX] = "index out of range",
	[BAD_NEXT_INDEX] = "index out of range",
	[BAD_LOOP] = "loops",
	[BAD_SELF_LOOP] = "loops",
	[BAD_NESTED_INDIRECT] = "nested indirect",
	[BAD_INDIRECT_NEXT] = "indirect descriptor with NEXT",
	[BAD_INDIRECT_LEN] = "multiple of 16",
	[BAD_INDIRECT_OUTSIDE] = "indirect table outside RAM",
	[BAD_INDIRECT_LOOP] = "indirect descriptor chain loops",
	[BAD_INDIRECT_INDEX] = "indirect descriptor index out of range",
	[BAD_ADDR_BELOW_RAM] = "outside RAM",
	[BAD_ADDR_CROSSES_END] = "outside RAM",
	[BAD_LEN_OVERFLOW] = "outside RAM",
	[BAD_ADDR_WRAP] = "outside RAM",
	[BAD_STATUS_READONLY] = "writable status",
	[BAD_READ_AFTER_WRITE] = "readable descriptor after",
	[BAD_AVAIL_AHEAD] = "ahead",
};

static void build_bad(fixture_t *f, enum bad_chain k)
{
	const uint16_t W = VIRTQ_DESC_F_WRITE, N = VIRTQ_DESC_F_NEXT;
	const uint16_t I = VIRTQ_DESC_F_INDIRECT;
	uint16_t head = 0;

	write_hdr(f, VIRTIO_BLK_T_IN, 0);
	set_desc(f, 0, HDR, 16, N, 1);
	set_desc(f, 1, DATA, 512, N | W, 2);
	set_desc(f, 2, DATA + 512, 1, W, 0);
	switch (k) {
	case BAD_HEAD_INDEX:
		head = QSIZE;
		break;
	case BAD_NEXT_INDEX:
		set_desc(f, 1, DATA, 512, N | W, 0xffff);
		break;
	case BAD_LOOP:
		set_desc(f, 2, DATA + 512, 1, N | W, 1);
		break;
	case BAD_SELF_LOOP:
		set_desc(f, 1, DATA, 512, N | W, 1);
		break;
	case BAD_NESTED_INDIRECT:
		set_desc_at(f, ITABLE, 0, DATA, 512, N | W, 1);
		set_desc_at(f, ITABLE, 1, ITABLE, 32, I, 0);
		set_desc(f, 1, ITABLE, 32, I, 0);
		break;
	case BAD_INDIRECT_NEXT:
		set_desc_at(f, ITABLE, 0, DATA, 513, W, 0);
		set_desc(f, 1, ITABLE, 16, I | N, 2);
		break;
	case BAD_INDIRECT_LEN:
		set_desc_at(f, ITABLE, 0, DATA, 513, W, 0);
		set_desc(f, 1, ITABLE, 17, I, 0);
		break;
	case BAD_INDIRECT_OUTSIDE:
		set_desc(f, 1, RAM_END - 16, 32, I, 0);
		break;
	case BAD_INDIRECT_LOOP:
		set_desc_at(f, ITABLE, 0, DATA, 512, N | W, 1);
		set_desc_at(f, ITABLE, 1, DATA + 512, 1, N | W, 0);
		set_desc(f, 1, ITABLE, 32, I, 0);
		break;
	case BAD_INDIRECT_INDEX:
		set_desc_at(f, ITABLE, 0, DATA, 512, N | W, 2);
		set_desc_at(f, ITABLE, 1, DATA + 512, 1, W, 0);
		set_desc(f, 1, ITABLE, 32, I, 0);
		break;
	case BAD_ADDR_BELOW_RAM:
		set_desc(f, 1, 0x1000, 512, N | W, 2);
		break;
	case BAD_ADDR_CROSSES_END:
		set_desc(f, 1, RAM_END - 256, 512, N | W, 2);
		break;
	case BAD_LEN_OVERFLOW:
		set_desc(f, 1, RAM_END - 4096, 0xffffffffu, N | W, 2);
		break;
	case BAD_ADDR_WRAP:
		set_desc(f, 1, UINT64_MAX - 255, 512, N | W, 2);
		break;
	case BAD_STATUS_READONLY:
		set_desc(f, 1, DATA, 512, N, 2);
		set_desc(f, 2, DATA + 512, 1, 0, 0);
		break;
	case BAD_READ_AFTER_WRITE:
		set_desc(f, 0, DATA + 1024, 1, N | W, 3);
		set_desc(f, 3, HDR, 16, N, 1);
		break;
	case BAD_AVAIL_AHEAD:
		f->avail_idx += QSIZE; /* with submit's +1: QSIZE + 1 ahead */
		break;
	case BAD_COUNT:
		break;
	}
	submit(f, head);
}

static void test_malformed_chains(void **state)
{
	fixture_t *f = *state;
	int k;

	for (k = 0; k < BAD_COUNT; k++) {
		uint16_t before;

		driver_start(f, BASE_FEATURES);
		before = used_idx(f);
		canaries_set(f);
		build_bad(f, k);
		if (k == BAD_ADDR_CROSSES_END || k == BAD_LEN_OVERFLOW) {
			/* the part that is inside RAM was not written either */
			assert_int_equal(*gp(f, RAM_END - 1, 1), 0xc5);
		}
		canaries_check(f);
		expect_needs_reset(f, before, bad_reason[k]);
	}
}

static void test_malformed_without_status(void **state)
{
	fixture_t *f = *state;

	/* Only readable descriptors: nowhere to put a status. */
	driver_start(f, BASE_FEATURES);
	write_hdr(f, VIRTIO_BLK_T_OUT, 0);
	set_desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, DATA, 512, 0, 0);
	submit(f, 0);
	expect_needs_reset(f, 0, "writable status");

	/* Indirect descriptor when the driver did not negotiate it. */
	driver_start(f, BASE_FEATURES & ~(1ull << VIRTIO_RING_F_INDIRECT_DESC));
	set_desc_at(f, ITABLE, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc_at(f, ITABLE, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	set_desc(f, 0, ITABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	submit(f, 0);
	expect_needs_reset(f, 0, "INDIRECT_DESC");
}

static void test_bad_queue_setup(void **state)
{
	fixture_t *f = *state;

	/* Not a power of two. */
	assert_true(negotiate(f, BASE_FEATURES));
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 12);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) &
		    VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_true(negotiate(f, BASE_FEATURES));
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 2 * VIRTIO_BLK_QUEUE_SIZE);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) &
		    VIRTIO_STATUS_DEVICE_NEEDS_RESET);

	/* Rings outside RAM or misaligned: QueueReady does not stick. */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_true(negotiate(f, BASE_FEATURES));
	wr(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(RAM_END - 64));
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL);
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)USED);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) &
		    VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_true(negotiate(f, BASE_FEATURES));
	wr(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC + 8);
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL);
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)USED);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	/* A kick to a queue that is not ready, or does not exist: nothing. */
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 7);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffffu);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	driver_start(f, BASE_FEATURES);
}

static void test_reset_clears_queues(void **state)
{
	fixture_t *f = *state;

	driver_start(f, BASE_FEATURES);
	assert_int_equal(request(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 1);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_false(line(f));
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(f->t->s.q[0].desc_addr, 0);
	assert_int_equal(f->t->s.q[0].last_avail_idx, 0);
	assert_int_equal(f->t->s.q[0].used_idx, 0);
	/* The old ring is no longer looked at. */
	gw16(f, AVAIL + 2, 5);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(used_idx(f), 1);
	/* Kicks before DRIVER_OK are held until DRIVER_OK (3.1.1). */
	assert_true(negotiate(f, BASE_FEATURES));
	setup_queue(f);
	write_hdr(f, VIRTIO_BLK_T_FLUSH, 0);
	set_desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	submit(f, 0);
	assert_int_equal(used_idx(f), 0);
	wr(f, VIRTIO_MMIO_STATUS, 0xf);
	assert_int_equal(used_idx(f), 1);
}

/* --- tests: state ------------------------------------------------------- */

static void test_state_round_trip(void **state)
{
	fixture_t *f = *state;
	const state_desc_t *d = &virtio_mmio_state_desc;
	const device_t *dev = machine_find_device(&f->m, f->base, 4);
	virtio_mmio_state_t saved, bad;
	uint8_t buf[4096];
	char err[256];
	size_t n;

	assert_int_equal(state_desc_validate(d, err, sizeof(err)), 0);
	assert_ptr_equal(dev->state, d);
	assert_ptr_equal(dev->state_obj, &f->t->s);
	driver_start(f, BASE_FEATURES | (1ull << VIRTIO_RING_F_EVENT_IDX));
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 1, DATA, 512, true), 0);
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 2, DATA, 512, true), 0);
	n = state_save(d, &f->t->s, buf, sizeof(buf));
	assert_int_equal(n, state_size(d, d->version));
	saved = f->t->s;

	/* Scramble the live device, then load and post_load. */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(
		state_load(d, &f->t->s, d->version, buf, n, err, sizeof(err)),
		0);
	assert_int_equal(dev->ops->post_load(dev->dev), 0);
	assert_memory_equal(&f->t->s.q[0], &saved.q[0], sizeof(vq_state_t));
	assert_int_equal(f->t->s.status, saved.status);
	assert_int_equal(f->t->s.driver_features, saved.driver_features);
	assert_int_equal(f->t->s.isr, saved.isr);
	assert_true(line(f));
	/* The restored queue continues where it was. */
	assert_int_equal(request(f, VIRTIO_BLK_T_IN, 3, DATA, 512, true), 0);
	assert_int_equal(used_idx(f), 3);
	assert_int_equal(*gp(f, DATA, 1), image_byte(3 * 512));

	/* check() refuses impossible values. */
	bad = saved;
	bad.q[0].num = 12;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.q[0].num = 2 * VQ_MAX_SIZE;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.q[0].ready = 2;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.q[0].last_avail_idx = bad.q[0].used_idx + QSIZE + 1;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.q[0].desc_addr += 4;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.q[3].ready = 1;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.nqueues = 0;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.isr = 4;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.driver_features = 0;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	assert_int_equal(d->check(&saved, err, sizeof(err)), 0);

	/* post_load refuses what check() cannot know. */
	f->t->s = saved;
	f->t->s.device_id = VIRTIO_ID_NET;
	assert_int_not_equal(dev->ops->post_load(dev->dev), 0);
	f->t->s = saved;
	f->t->s.q[0].used_addr = RAM_END - 8;
	assert_int_not_equal(dev->ops->post_load(dev->dev), 0);
	f->t->s = saved;
	f->t->s.q[0].num = 512; /* > QueueNumMax of this device */
	assert_int_not_equal(dev->ops->post_load(dev->dev), 0);
	f->t->s = saved;
	assert_int_equal(dev->ops->post_load(dev->dev), 0);
}

/* --- tests: constructor -------------------------------------------------- */

static void test_open_errors(void **state)
{
	machine_t m;
	char err[256], path[64];
	struct virtio_blk_opts o = {0};
	struct virtio_blk *a;

	(void)state;
	assert_int_equal(machine_init(&m, RAM_BYTES, 1, err, sizeof(err)), 0);
	assert_null(virtio_blk_new(&m, "/nonexistent/disk.img", false, err,
				   sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/disk.img"));
	assert_null(virtio_blk_new(&m, "/tmp", true, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file"));
	assert_null(virtio_blk_new(&m, "/dev/null", true, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file"));

	snprintf(path, sizeof(path), "/tmp/tern-virtio-odd-%d.img",
		 (int)getpid());
	make_image(path, 1000);
	assert_null(virtio_blk_new(&m, path, false, err, sizeof(err)));
	assert_non_null(strstr(err, "multiple of 512"));
	make_image(path, 0);
	assert_null(virtio_blk_new(&m, path, false, err, sizeof(err)));
	make_image(path, 4096);
	assert_int_equal(m.nvirtio, 0);

	/* Optional image lock: a second writer is refused. */
	o.path = path;
	o.lock = true;
	o.serial = "disk-a";
	a = virtio_blk_new_opts(&m, &o, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(virtio_blk_capacity(a), 8);
	assert_null(virtio_blk_new_opts(&m, &o, err, sizeof(err)));
	assert_non_null(strstr(err, "in use"));
	o.readonly = true;
	assert_null(virtio_blk_new_opts(&m, &o, err, sizeof(err)));
	/* Without the lock (the default), opening twice is allowed. */
	assert_non_null(virtio_blk_new(&m, path, true, err, sizeof(err)));
	o.serial = "012345678901234567890";
	o.lock = false;
	assert_null(virtio_blk_new_opts(&m, &o, err, sizeof(err)));
	assert_int_equal(m.nvirtio, 2);
	machine_destroy(&m);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_slots_and_fdt, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_features, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_write, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_scatter_gather, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_flush_get_id_unsupp,
						setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup_ro,
						teardown),
		cmocka_unit_test_setup_teardown(test_dirty_log, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_interrupt_flag,
						setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed_chains, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed_without_status,
						setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_bad_queue_setup, setup_rw,
						teardown),
		cmocka_unit_test_setup_teardown(test_reset_clears_queues,
						setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_state_round_trip, setup_rw,
						teardown),
		cmocka_unit_test(test_open_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
