// SPDX-License-Identifier: MIT
/*
 * The power button: virtio-input on the board built by platform_create().
 * The test plays Linux's virtio_input driver through MMIO accesses
 * dispatched by the machine: it reads the configuration space, fills the
 * event queue with 8-byte buffers in guest RAM and checks what the driver
 * would see after platform_powerdown(): events in its buffers, the used
 * ring, InterruptStatus and the PLIC line. Hostile drivers (short or
 * read-only buffers, bad descriptors) must never get memory written outside
 * their buffers, and must end in DEVICE_NEEDS_RESET, not a crash. The
 * device's own state is a state-only registry entry next to its transport's;
 * it round-trips on its own and through a whole-machine snapshot.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libfdt.h>

#include "devices/plic.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_input.h"
#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"
#include "machine/fdt.h"
#include "machine/machine.h"
#include "machine/platform.h"
#include "machine/state.h"
#include "migration/savevm.h"

#define RAM_BYTES (16u << 20)
#define QSIZE	  8

#define G(off)	(MEM_RAM_BASE + (off))
#define RAM_END (MEM_RAM_BASE + RAM_BYTES)
/* eventq and statusq rings */
#define EV_DESC	 G(0x10000)
#define EV_AVAIL G(0x11000)
#define EV_USED	 G(0x12000)
#define ST_DESC	 G(0x14000)
#define ST_AVAIL G(0x15000)
#define ST_USED	 G(0x16000)
/* event buffers: 16 bytes apart, canary-filled between */
#define BUFS	 G(0x20000)
#define BUF(i)	 (BUFS + 16ull * (i))
#define BUFS_LEN 0x1000

typedef struct fixture {
	machine_t m;
	struct virtio_input *in;
	struct virtio_mmio *t;
	uint64_t base;
	uint16_t ev_avail; /* driver's avail idx of each queue */
	uint16_t st_avail;
	uint16_t ev_seen; /* used entries already checked */
	char disk[64];
} fixture_t;

#include "virtio_harness.h"

/* --- the registry -------------------------------------------------------- */

/* The button's own section: the state-only entry next to the transport. */
static const device_t *input_entry(fixture_t *f)
{
	return entry(&f->m, "virtio7-input");
}

/* --- the test driver ------------------------------------------------------ */

/* virtinput_cfg_select(): returns the size the device reports. */
static uint8_t cfg_select(fixture_t *f, uint8_t select, uint8_t subsel)
{
	wr8(f, VIRTIO_MMIO_CONFIG + 0, select);
	wr8(f, VIRTIO_MMIO_CONFIG + 1, subsel);
	return (uint8_t)rdn(f, VIRTIO_MMIO_CONFIG + 2, 1);
}

static void cfg_bytes(fixture_t *f, void *buf, unsigned len)
{
	uint8_t *b = buf;
	unsigned i;

	for (i = 0; i < len; i++)
		b[i] = (uint8_t)rdn(
			f, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CONFIG_U + i, 1);
}

/* Queues set up, DRIVER_OK, no buffers yet. */
static void driver_start(fixture_t *f)
{
	assert_true(negotiate(f, 1ull << VIRTIO_F_VERSION_1));
	memset(gp(f, EV_DESC, 0x3000), 0, 0x3000);
	queue_setup(f, VIRTIO_INPUT_EVENTQ, VIRTIO_INPUT_QUEUE_SIZE, EV_DESC,
		    EV_AVAIL, EV_USED);
	memset(gp(f, ST_DESC, 0x3000), 0, 0x3000);
	queue_setup(f, VIRTIO_INPUT_STATUSQ, VIRTIO_INPUT_QUEUE_SIZE, ST_DESC,
		    ST_AVAIL, ST_USED);
	f->ev_avail = f->st_avail = f->ev_seen = 0;
	wr(f, VIRTIO_MMIO_STATUS, 0xf);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0xf);
	memset(gp(f, BUFS, BUFS_LEN), 0xc5, BUFS_LEN);
}

/* Makes descriptor `head` (already written) available on queue q. */
static void post(fixture_t *f, unsigned q, uint16_t head, bool kick)
{
	uint64_t avail = q == VIRTIO_INPUT_EVENTQ ? EV_AVAIL : ST_AVAIL;
	uint16_t *idx = q == VIRTIO_INPUT_EVENTQ ? &f->ev_avail : &f->st_avail;

	ring_post(f, q, avail, idx, head, kick);
}

/* n event buffers, as virtinput_fill_evt() adds them: one 8-byte inbuf. */
static void add_event_buffers(fixture_t *f, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		uint16_t d = f->ev_avail % QSIZE;

		memset(gp(f, BUF(d), 8), 0xc5, 8);
		set_desc_at(f, EV_DESC, d, BUF(d), 8, VIRTQ_DESC_F_WRITE, 0);
		post(f, VIRTIO_INPUT_EVENTQ, d, i == n - 1);
	}
}

static uint16_t ev_used_idx(fixture_t *f)
{
	return gr16(f, EV_USED + 2);
}

/* The next event the driver takes from the used ring. */
static void expect_event(fixture_t *f, uint16_t type, uint16_t code,
			 uint32_t value)
{
	unsigned slot = f->ev_seen % QSIZE;
	uint32_t head = gr32(f, EV_USED + 4 + 8 * slot);
	uint32_t len = gr32(f, EV_USED + 8 + 8 * slot);
	uint64_t buf;

	assert_true((uint16_t)(ev_used_idx(f) - f->ev_seen) > 0);
	assert_true(head < QSIZE);
	assert_int_equal(len, VIRTIO_INPUT_EVENT_SIZE);
	buf = BUF(head);
	assert_int_equal(gr16(f, buf), type);
	assert_int_equal(gr16(f, buf + 2), code);
	assert_int_equal(gr32(f, buf + 4), value);
	/* Nothing beyond the 8-byte buffer was touched. */
	assert_int_equal(*gp(f, buf + 8, 1), 0xc5);
	f->ev_seen++;
}

static void expect_press(fixture_t *f)
{
	expect_event(f, INPUT_EV_KEY, INPUT_KEY_POWER, 1);
	expect_event(f, INPUT_EV_SYN, INPUT_SYN_REPORT, 0);
	expect_event(f, INPUT_EV_KEY, INPUT_KEY_POWER, 0);
	expect_event(f, INPUT_EV_SYN, INPUT_SYN_REPORT, 0);
}

static void powerdown(fixture_t *f)
{
	char err[256];

	if (platform_powerdown(&f->m, err, sizeof(err)))
		fail_msg("platform_powerdown: %s", err);
}

static void ack(fixture_t *f)
{
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, rd(f, VIRTIO_MMIO_INTERRUPT_STATUS));
}

/*
 * The device the state tests save: a running driver, two presses, two
 * event buffers (so two events out, six waiting for buffers), and a
 * config-space selection.
 */
static void two_presses_pending(fixture_t *f)
{
	driver_start(f);
	add_event_buffers(f, 2);
	powerdown(f);
	powerdown(f);
	assert_int_equal(virtio_input_pending(f->in), 6);
	cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, INPUT_EV_KEY);
}

/*
 * That device brought back (restored, or its snapshot loaded): the driver
 * finds the first press begun in its two buffers, and the six events still
 * pending arrive once it adds buffers.
 */
static void expect_rest_of_presses(fixture_t *f)
{
	expect_event(f, INPUT_EV_KEY, INPUT_KEY_POWER, 1);
	expect_event(f, INPUT_EV_SYN, INPUT_SYN_REPORT, 0);
	add_event_buffers(f, 6);
	expect_event(f, INPUT_EV_KEY, INPUT_KEY_POWER, 0);
	expect_event(f, INPUT_EV_SYN, INPUT_SYN_REPORT, 0);
	expect_press(f);
	assert_int_equal(virtio_input_pending(f->in), 0);
}

/* --- fixture -------------------------------------------------------------- */

/* The board plus one disk (slot 0), as tern-vmm builds it. */
static fixture_t *fixture_new(const char *disk)
{
	fixture_t *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	board_init(f);
	snprintf(f->disk, sizeof(f->disk), "%s", disk);
	if (!virtio_blk_new(&f->m, f->disk, false, err, sizeof(err)))
		fail_msg("virtio_blk_new: %s", err);
	f->in = virtio_input_find(&f->m);
	assert_non_null(f->in);
	f->t = virtio_input_transport(f->in);
	f->base = f->t->base;
	return f;
}

static int setup(void **state)
{
	char disk[64];
	int fd;

	snprintf(disk, sizeof(disk), "/tmp/tern-input-%d.img", (int)getpid());
	fd = open(disk, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	*state = fixture_new(disk);
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;

	machine_destroy(&f->m);
	unlink(f->disk);
	free(f);
	return 0;
}

/* --- tests ---------------------------------------------------------------- */

/* The button sits in the last slot; the disk created after it in slot 0. */
static void test_slot_and_identity(void **state)
{
	fixture_t *f = *state;
	boot_params_t bp = {"console=ttyS0", 0, 0};
	const device_t *disk = machine_find_device(&f->m, MEM_VIRTIO_BASE, 4);
	char err[256], id[128];
	const fdt32_t *p;
	int node, len;

	assert_int_equal(f->base, MEM_VIRTIO_BASE + (MACHINE_MAX_VIRTIO - 1) *
							    MEM_VIRTIO_STRIDE);
	assert_int_equal(f->t->irq, IRQ_VIRTIO_FIRST + MACHINE_MAX_VIRTIO - 1);
	assert_int_equal(f->t->slot, VIRTIO_INPUT_POWER_SLOT);
	assert_non_null(disk);
	assert_string_equal(disk->name, "virtio0");
	assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	assert_int_equal(rd(f, VIRTIO_MMIO_VERSION_REG), 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_INPUT);
	assert_string_equal(machine_find_device(&f->m, f->base, 4)->name,
			    "virtio7");
	/* Two queues, no third. */
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX),
			 VIRTIO_INPUT_QUEUE_SIZE);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	/* Identity for migration checks. */
	{
		const device_t *d = machine_find_device(&f->m, f->base, 4);

		assert_int_equal(d->ops->describe(d->dev, id, sizeof(id)), 0);
		assert_string_equal(id, "virtio-input keys=power");
		assert_int_not_equal(d->ops->describe(d->dev, id, 4), 0);
	}

	/* The device tree node the guest finds it by. */
	if (fdt_build(&f->m, &bp, err, sizeof(err)))
		fail_msg("fdt_build: %s", err);
	node = fdt_path_offset(f->m.fdt, "/soc/virtio_mmio@10008000");
	assert_true(node >= 0);
	p = fdt_getprop(f->m.fdt, node, "interrupts", &len);
	assert_non_null(p);
	assert_int_equal(fdt32_to_cpu(p[0]), IRQ_VIRTIO_FIRST + 7);
	assert_true(fdt_path_offset(f->m.fdt, "/soc/virtio_mmio@10001000") >=
		    0);
}

static void test_config_space(void **state)
{
	fixture_t *f = *state;
	uint8_t bits[128];
	char s[129];
	unsigned i;
	uint8_t n;

	/* Nothing selected after reset. */
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 2, 1), 0);

	n = cfg_select(f, VIRTIO_INPUT_CFG_ID_NAME, 0);
	assert_int_equal(n, strlen("tern power button"));
	memset(s, 0, sizeof(s));
	cfg_bytes(f, s, n);
	assert_string_equal(s, "tern power button");
	/* Wider reads see the same bytes (little-endian). */
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CONFIG_U),
			 't' | 'e' << 8 | 'r' << 16 | 'n' << 24);
	/* select and subsel read back. */
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG, 1),
			 VIRTIO_INPUT_CFG_ID_NAME);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 1, 1), 0);

	n = cfg_select(f, VIRTIO_INPUT_CFG_ID_SERIAL, 0);
	assert_true(n > 0);
	memset(s, 0, sizeof(s));
	cfg_bytes(f, s, n);
	assert_string_equal(s, "tern-power-0");

	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ID_DEVIDS, 0), 8);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 8, 2), INPUT_BUS_VIRTUAL);
	assert_int_not_equal(rdn(f, VIRTIO_MMIO_CONFIG + 10, 2), 0);

	/* Only KEY_POWER among the keys. */
	n = cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, INPUT_EV_KEY);
	assert_int_equal(n, INPUT_KEY_POWER / 8 + 1);
	memset(bits, 0, sizeof(bits));
	cfg_bytes(f, bits, 128);
	for (i = 0; i < 128 * 8; i++)
		assert_int_equal((bits[i / 8] >> (i % 8)) & 1,
				 i == INPUT_KEY_POWER);
	n = cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, INPUT_EV_SYN);
	assert_int_equal(n, 1);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 8, 1), 1);

	/* Everything else: size 0 (5.8.4.1), and an empty union. */
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, 2),
			 0); /* REL */
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, 3),
			 0); /* ABS */
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, 0x14),
			 0); /* REP */
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, 0xff), 0);
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_PROP_BITS, 0), 0);
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ABS_INFO, 0), 0);
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_UNSET, 0), 0);
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ID_NAME, 1), 0);
	assert_int_equal(cfg_select(f, 0x7f, 0x7f), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG + 8), 0);

	/* size and the union are read-only; past the struct reads 0. */
	cfg_select(f, VIRTIO_INPUT_CFG_ID_NAME, 0);
	wr8(f, VIRTIO_MMIO_CONFIG + 2, 99);
	wr8(f, VIRTIO_MMIO_CONFIG + 8, 'X');
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 2, 1), 17);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 8, 1), 't');
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CONFIG_SIZE),
			 0);
	assert_int_equal(
		rdn(f, VIRTIO_MMIO_CONFIG + VIRTIO_INPUT_CONFIG_SIZE - 2, 8),
		0);
	/* A 2-byte write sets select and subsel at once. */
	assert_true(machine_mmio_write(&f->m, f->base + VIRTIO_MMIO_CONFIG, 2,
				       VIRTIO_INPUT_CFG_EV_BITS |
					       INPUT_EV_KEY << 8));
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 2, 1), 15);
	/* Reset forgets the selection. */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG, 1), 0);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 2, 1), 0);
	/* No device features beyond the transport's. */
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES) & 0x0fffffffu, 0);
}

static void test_press_delivers(void **state)
{
	fixture_t *f = *state;

	driver_start(f);
	add_event_buffers(f, QSIZE);
	assert_int_equal(ev_used_idx(f), 0);
	assert_false(line(f));
	powerdown(f);
	assert_int_equal(ev_used_idx(f), 4);
	expect_press(f);
	assert_int_equal(virtio_input_pending(f->in), 0);
	assert_true(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) &
		    VIRTIO_MMIO_INT_VRING);
	assert_true(line(f));
	ack(f);
	assert_false(line(f));
	/* A second press uses the remaining buffers, then one refilled. */
	powerdown(f);
	assert_int_equal(ev_used_idx(f), 8);
	expect_press(f);
	assert_true(line(f));
}

static void test_pending_until_buffers(void **state)
{
	fixture_t *f = *state;
	char err[256];
	int i;

	/* Before the driver is there at all: the press waits. */
	powerdown(f);
	assert_int_equal(virtio_input_pending(f->in), 4);
	/* The driver's probe resets the device: the press goes with it. */
	driver_start(f);
	assert_int_equal(virtio_input_pending(f->in), 0);

	/* Running, but no buffers: events wait, nothing is written. */
	powerdown(f);
	powerdown(f);
	assert_int_equal(virtio_input_pending(f->in), 8);
	assert_int_equal(ev_used_idx(f), 0);
	assert_false(line(f));
	/* Three buffers: the three oldest events, in order. */
	add_event_buffers(f, 3);
	assert_int_equal(ev_used_idx(f), 3);
	assert_int_equal(virtio_input_pending(f->in), 5);
	expect_event(f, INPUT_EV_KEY, INPUT_KEY_POWER, 1);
	expect_event(f, INPUT_EV_SYN, INPUT_SYN_REPORT, 0);
	expect_event(f, INPUT_EV_KEY, INPUT_KEY_POWER, 0);
	assert_true(line(f));
	ack(f);
	/* Five more: the rest, still in order. */
	add_event_buffers(f, 5);
	assert_int_equal(virtio_input_pending(f->in), 0);
	expect_event(f, INPUT_EV_SYN, INPUT_SYN_REPORT, 0);
	expect_press(f);

	/* The queue is bounded: 16 presses wait, the 17th is refused whole. */
	for (i = 0; i < VIRTIO_INPUT_MAX_PENDING / 4; i++)
		powerdown(f);
	assert_int_equal(virtio_input_pending(f->in), VIRTIO_INPUT_MAX_PENDING);
	assert_int_equal(platform_powerdown(&f->m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not taking"));
	assert_int_equal(virtio_input_pending(f->in), VIRTIO_INPUT_MAX_PENDING);
	/* They drain in order as buffers come (the ring wraps around). */
	for (i = 0; i < VIRTIO_INPUT_MAX_PENDING / 4; i++) {
		add_event_buffers(f, 4);
		expect_press(f);
	}
	assert_int_equal(virtio_input_pending(f->in), 0);
	assert_int_equal(
		virtio_input_press(f->in, 30 /* KEY_A */, err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, "no key"));
}

static void test_status_queue(void **state)
{
	fixture_t *f = *state;

	driver_start(f);
	/* An LED report, as virtinput_send_status() sends it. */
	gw16(f, BUF(0), 0x11);
	gw16(f, BUF(0) + 2, 0);
	gw32(f, BUF(0) + 4, 1);
	set_desc_at(f, ST_DESC, 0, BUF(0), 8, 0, 0);
	post(f, VIRTIO_INPUT_STATUSQ, 0, true);
	assert_int_equal(gr16(f, ST_USED + 2), 1);
	assert_int_equal(gr32(f, ST_USED + 4), 0);
	assert_int_equal(gr32(f, ST_USED + 8), 0); /* nothing written */
	assert_int_equal(gr16(f, BUF(0)), 0x11);
	assert_true(line(f));
	/* Odd but well-formed chains are returned the same way. */
	set_desc_at(f, ST_DESC, 1, BUF(1), 1, VIRTQ_DESC_F_WRITE, 0);
	set_desc_at(f, ST_DESC, 2, BUF(2), 0, 0, 0);
	post(f, VIRTIO_INPUT_STATUSQ, 1, false);
	post(f, VIRTIO_INPUT_STATUSQ, 2, true);
	assert_int_equal(gr16(f, ST_USED + 2), 3);
	assert_int_equal(*gp(f, BUF(1), 1), 0xc5);
	assert_false(rd(f, VIRTIO_MMIO_STATUS) &
		     VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* The event queue is unaffected. */
	add_event_buffers(f, 4);
	powerdown(f);
	expect_press(f);
}

static void expect_needs_reset(fixture_t *f, const char *why)
{
	assert_true(rd(f, VIRTIO_MMIO_STATUS) &
		    VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_non_null(f->t->last_error);
	if (why && !strstr(f->t->last_error, why))
		fail_msg("refused for \"%s\", expected \"%s\"",
			 f->t->last_error, why);
	assert_true(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) &
		    VIRTIO_MMIO_INT_CONFIG);
}

static void check_canaries(fixture_t *f)
{
	const uint8_t *p = gp(f, BUFS, BUFS_LEN);
	unsigned i;

	for (i = 0; i < BUFS_LEN; i++)
		if (p[i] != 0xc5)
			fail_msg("byte %u of the buffer area written", i);
}

static void test_hostile_buffers(void **state)
{
	fixture_t *f = *state;
	uint16_t used;

	/* A 4-byte buffer: refused, nothing written, the press kept. */
	driver_start(f);
	set_desc_at(f, EV_DESC, 0, BUF(0), 4, VIRTQ_DESC_F_WRITE, 0);
	post(f, VIRTIO_INPUT_EVENTQ, 0, true);
	powerdown(f);
	expect_needs_reset(f, "shorter than an event");
	assert_int_equal(ev_used_idx(f), 0);
	check_canaries(f);
	/* Further presses queue up; a kick does nothing until reset. */
	powerdown(f);
	assert_int_equal(virtio_input_pending(f->in), 8);
	add_event_buffers(f, 4);
	assert_int_equal(ev_used_idx(f), 0);

	/* A device-readable buffer where a writable one belongs. */
	driver_start(f);
	set_desc_at(f, EV_DESC, 0, BUF(0), 8, 0, 0);
	post(f, VIRTIO_INPUT_EVENTQ, 0, true);
	powerdown(f);
	expect_needs_reset(f, "shorter than an event");
	check_canaries(f);

	/* 8 bytes split over two writable descriptors: fine (2.6.4). */
	driver_start(f);
	set_desc_at(f, EV_DESC, 0, BUF(0), 2,
		    VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc_at(f, EV_DESC, 1, BUF(0) + 2, 6, VIRTQ_DESC_F_WRITE, 0);
	post(f, VIRTIO_INPUT_EVENTQ, 0, true);
	powerdown(f);
	assert_int_equal(ev_used_idx(f), 1);
	assert_int_equal(gr16(f, BUF(0)), INPUT_EV_KEY);
	assert_int_equal(gr16(f, BUF(0) + 2), INPUT_KEY_POWER);
	assert_int_equal(gr32(f, BUF(0) + 4), 1);

	/* Descriptor index out of range, buffer outside RAM, a loop. */
	driver_start(f);
	post(f, VIRTIO_INPUT_EVENTQ, QSIZE + 3, true);
	powerdown(f);
	expect_needs_reset(f, NULL);
	check_canaries(f);

	driver_start(f);
	set_desc_at(f, EV_DESC, 0, RAM_END - 4, 8, VIRTQ_DESC_F_WRITE, 0);
	post(f, VIRTIO_INPUT_EVENTQ, 0, true);
	powerdown(f);
	expect_needs_reset(f, NULL);

	driver_start(f);
	set_desc_at(f, EV_DESC, 0, BUF(0), 8,
		    VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	post(f, VIRTIO_INPUT_EVENTQ, 0, true);
	powerdown(f);
	expect_needs_reset(f, NULL);
	check_canaries(f);

	/* A broken status queue stops the device too. */
	driver_start(f);
	set_desc_at(f, ST_DESC, 0, 0x1000, 8, 0, 0); /* below RAM */
	post(f, VIRTIO_INPUT_STATUSQ, 0, true);
	expect_needs_reset(f, NULL);
	/* The avail index running ahead of the queue size. */
	driver_start(f);
	gw16(f, EV_AVAIL + 2, QSIZE + 5);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_INPUT_EVENTQ);
	powerdown(f);
	expect_needs_reset(f, NULL);

	/* Stray notifications and odd accesses change nothing. */
	driver_start(f);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 7);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffffu);
	assert_true(machine_mmio_write(&f->m, f->base + 0x7ff, 8, ~0ull));
	assert_true(machine_mmio_write(&f->m, f->base + VIRTIO_MMIO_CONFIG + 3,
				       8, ~0ull));
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0xf);

	/* After all that, a reset brings a working device back. */
	add_event_buffers(f, 4);
	used = ev_used_idx(f);
	powerdown(f);
	assert_int_equal(ev_used_idx(f), (uint16_t)(used + 4));
	expect_press(f);
}

static void test_state(void **state)
{
	fixture_t *f = *state;
	const state_desc_t *d = virtio_input_state_desc();
	const device_t *dev = input_entry(f), *tr = entry(&f->m, "virtio7");
	virtio_input_state_t *live, saved, bad;
	static uint8_t buf[8192], tbuf[8192];
	char err[256];
	size_t n, tn;
	unsigned k;

	assert_non_null(d);
	if (state_desc_validate(d, err, sizeof(err)))
		fail_msg("%s", err);
	/*
	 * Two sections: the transport's on its MMIO entry, the device's on a
	 * state-only entry registered right after it (so loaded state is
	 * complete when the transport's post_load runs, and the device needs
	 * none of its own).
	 */
	assert_ptr_equal(tr->state, &virtio_mmio_state_desc);
	assert_ptr_equal(tr->state_obj, &f->t->s);
	assert_ptr_equal(dev->state, d);
	assert_ptr_equal(dev->dev, f->in);
	assert_int_equal(dev->size, 0);
	assert_int_equal(dev->base, 0);
	assert_null(dev->ops->read);
	assert_null(dev->ops->write);
	assert_null(dev->ops->fdt);
	assert_null(dev->ops->post_load);
	assert_ptr_equal(dev, tr + 1);
	live = dev->state_obj;
	assert_non_null(live);
	assert_int_equal(d->check(live, err, sizeof(err)), 0);

	/* Running driver, two events out, six waiting for buffers. */
	two_presses_pending(f);
	/* The section's object is the live state, no copy. */
	assert_int_equal(live->pending_count, 6);
	assert_int_equal(live->select, VIRTIO_INPUT_CFG_EV_BITS);
	assert_int_equal(live->subsel, INPUT_EV_KEY);
	n = state_save(d, live, buf, sizeof(buf));
	assert_int_equal(n, state_size(d, d->version));
	tn = state_save(tr->state, tr->state_obj, tbuf, sizeof(tbuf));
	assert_true(tn > 0);
	saved = *live;

	/*
	 * Scramble the live device (a reset), then load both sections and run
	 * post_load as a snapshot load does.
	 */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(virtio_input_pending(f->in), 0);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG, 1), 0);
	assert_int_equal(
		state_load(d, live, d->version, buf, n, err, sizeof(err)), 0);
	assert_int_equal(state_load(tr->state, tr->state_obj,
				    tr->state->version, tbuf, tn, err,
				    sizeof(err)),
			 0);
	assert_int_equal(tr->ops->post_load(tr->dev), 0);
	assert_memory_equal(live, &saved, sizeof(saved));
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0xf);
	assert_int_equal(virtio_input_pending(f->in), 6);
	assert_int_equal(rdn(f, VIRTIO_MMIO_CONFIG + 2, 1), 15);
	/* The restored device continues where it was. */
	expect_rest_of_presses(f);

	/* check() refuses impossible ring indices and counts. */
	bad = saved;
	bad.pending_head = VIRTIO_INPUT_MAX_PENDING;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "out of range"));
	bad = saved;
	bad.pending_head = 0xffff;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad = saved;
	bad.pending_count = VIRTIO_INPUT_MAX_PENDING + 1;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	/* A full ring that wraps is fine. */
	bad = saved;
	bad.pending_head = VIRTIO_INPUT_MAX_PENDING - 1;
	bad.pending_count = VIRTIO_INPUT_MAX_PENDING;
	for (k = 0; k < VIRTIO_INPUT_MAX_PENDING; k++) {
		bad.pending_type[k] = INPUT_EV_SYN;
		bad.pending_code[k] = INPUT_SYN_REPORT;
		bad.pending_value[k] = 0;
	}
	assert_int_equal(d->check(&bad, err, sizeof(err)), 0);
	/* ... unless a waiting event is one this device never sends. */
	bad.pending_type[3] = INPUT_EV_KEY;
	bad.pending_code[3] = 30; /* KEY_A */
	bad.pending_value[3] = 1;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "not one this device sends"));
	bad.pending_code[3] = INPUT_KEY_POWER;
	bad.pending_value[3] = 2;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	bad.pending_type[3] = 0x02; /* EV_REL */
	bad.pending_value[3] = 0;
	assert_int_not_equal(d->check(&bad, err, sizeof(err)), 0);
	/* Slots outside the live part of the ring are not looked at. */
	bad.pending_count = 4; /* slots 63, 0, 1, 2 */
	assert_int_equal(d->check(&bad, err, sizeof(err)), 0);
	assert_int_equal(d->check(&saved, err, sizeof(err)), 0);

	/* A section that fails check() is not loaded at all. */
	powerdown(f);
	assert_int_equal(virtio_input_pending(f->in), 4);
	bad = saved;
	bad.pending_count = 200;
	n = state_save(d, &bad, buf, sizeof(buf));
	assert_int_not_equal(
		state_load(d, live, d->version, buf, n, err, sizeof(err)), 0);
	assert_int_equal(virtio_input_pending(f->in), 4);
}

/*
 * A whole-machine snapshot into a second machine built the same way: the
 * device's section travels under its own name and the button carries on.
 */
static void test_snapshot(void **state)
{
	fixture_t *f = *state, *g;
	virtio_input_state_t *live = input_entry(f)->state_obj;
	char err[256];
	FILE *tmp = tmpfile();
	int fd;

	assert_non_null(tmp);
	fd = fileno(tmp);
	two_presses_pending(f);
	if (savevm_save(&f->m, NULL, fd, err, sizeof(err)))
		fail_msg("savevm_save: %s", err);

	g = fixture_new(f->disk);
	assert_int_equal(virtio_input_pending(g->in), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	if (savevm_load(&g->m, fd, NULL, err, sizeof(err)))
		fail_msg("savevm_load: %s", err);
	assert_memory_equal(input_entry(g)->state_obj, live, sizeof(*live));
	assert_int_equal(virtio_input_pending(g->in), 6);
	assert_int_equal(rd(g, VIRTIO_MMIO_STATUS), 0xf);
	assert_int_equal(rdn(g, VIRTIO_MMIO_CONFIG + 2, 1), 15);
	/* The driver's bookkeeping lives in guest RAM, which came along. */
	g->ev_avail = f->ev_avail;
	g->st_avail = f->st_avail;
	g->ev_seen = f->ev_seen;
	expect_rest_of_presses(g);
	/* The source is untouched by all that. */
	assert_int_equal(virtio_input_pending(f->in), 6);

	/* A snapshot whose input section fails check() is refused. */
	live->pending_head = VIRTIO_INPUT_MAX_PENDING + 5;
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	if (savevm_save(&f->m, NULL, fd, err, sizeof(err)))
		fail_msg("savevm_save: %s", err);
	live->pending_head = 0;
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_not_equal(savevm_load(&g->m, fd, NULL, err, sizeof(err)),
			     0);
	assert_non_null(strstr(err, "virtio-input"));

	fclose(tmp);
	machine_destroy(&g->m);
	free(g);
}

static void test_errors(void **state)
{
	fixture_t *f = *state;
	machine_t *m2 = calloc(1, sizeof(*m2));
	char err[256];

	/* The slot is taken, or beyond the board. */
	assert_null(virtio_input_new(&f->m, VIRTIO_INPUT_POWER_SLOT, err,
				     sizeof(err)));
	assert_null(virtio_input_new(&f->m, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "taken"));
	assert_null(
		virtio_input_new(&f->m, MACHINE_MAX_VIRTIO, err, sizeof(err)));
	assert_non_null(strstr(err, "out of range"));
	/* Disks fill slots 1..6; the 8th virtio device finds no room. */
	for (unsigned i = 1; i < MACHINE_MAX_VIRTIO - 1; i++)
		if (!virtio_blk_new(&f->m, f->disk, true, err, sizeof(err)))
			fail_msg("disk %u: %s", i, err);
	assert_null(virtio_blk_new(&f->m, f->disk, true, err, sizeof(err)));
	assert_ptr_equal(virtio_input_find(&f->m), f->in);

	/* A machine without the board has no button to press. */
	assert_non_null(m2);
	assert_int_equal(machine_init(m2, RAM_BYTES, 1, err, sizeof(err)), 0);
	assert_null(virtio_input_find(m2));
	assert_int_equal(platform_powerdown(m2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no power button"));
	machine_destroy(m2);
	free(m2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_slot_and_identity, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config_space, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_press_delivers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pending_until_buffers,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_queue, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_buffers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
