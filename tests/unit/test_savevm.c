// SPDX-License-Identifier: MIT
/*
 * Whole-machine snapshots: a machine saved and loaded into a second one
 * built the same way has the same RAM and the same bytes in every state
 * section, and runs on identically; a destination that differs (RAM, disks,
 * devices) or a damaged stream is refused with a reason, never a crash.
 * The domain config travels in an optional DOMAIN record and can be read
 * back from a snapshot file without loading it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/virtio_blk.h"
#include "machine/machine.h"
#include "machine/platform.h"
#include "migration/savevm.h"
#include "migration/stream.h"
#include "rv_encode.h"

#define RAM_BYTES (8u << 20)
#define CODE (MEM_RAM_BASE + 0x1000)
#define DATA (MEM_RAM_BASE + 0x200000)

static char disk1[] = "/tmp/tern-savevm-a-XXXXXX";
static char disk2[] = "/tmp/tern-savevm-b-XXXXXX";
static char disk3[] = "/tmp/tern-savevm-c-XXXXXX";

static void discard(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	(void)len;
}

static void make_disk(char *path, off_t size)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

static int setup(void **state)
{
	(void)state;
	make_disk(disk1, 1 << 20);
	make_disk(disk2, 1 << 20);
	make_disk(disk3, 2 << 20);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(disk1);
	unlink(disk2);
	unlink(disk3);
	return 0;
}

struct cfg {
	uint64_t ram;
	const char *disk;	/* NULL: no disk */
	bool ro;
	const char *disk2;	/* a second disk, or NULL */
};

static const struct cfg base_cfg = { RAM_BYTES, disk1, false, NULL };

static machine_t *build(const struct cfg *c)
{
	machine_t *m = calloc(1, sizeof(*m));
	char err[256];

	assert_non_null(m);
	if (machine_init(m, c->ram, 1, err, sizeof(err)) ||
	    platform_create(m, discard, NULL, err, sizeof(err)) ||
	    (c->disk && !virtio_blk_new(m, c->disk, c->ro, err, sizeof(err))) ||
	    (c->disk2 && !virtio_blk_new(m, c->disk2, false, err, sizeof(err))))
		fail_msg("building the machine: %s", err);
	return m;
}

static void destroy(machine_t *m)
{
	machine_destroy(m);
	free(m);
}

static void *gpa(machine_t *m, uint64_t pa)
{
	return m->ram.host + (pa - MEM_RAM_BASE);
}

/* ---- a small program (unprivileged spec 2.4, 2.5, 2.6) ---- */


enum { T0 = 5, T1 = 6, A0 = 10, A1 = 11, A2 = 12 };

/*
 * loop: a0 += 1; t0 = (a0 << 3) & 0x7f8; a2 = a2 * 31 ^ a0 (as shifts);
 *       *(a1 + t0) = a2; jump loop
 */
static void put_program(machine_t *m)
{
	uint32_t code[9];

	code[0] = i_type(1, A0, 0, A0, 0x13);
	code[1] = i_type(3, A0, 1, T0, 0x13);
	code[2] = i_type(0x7f8, T0, 7, T0, 0x13);
	code[3] = r_type(0, A1, T0, 0, T0, 0x33);
	code[4] = i_type(5, A2, 1, T1, 0x13);
	code[5] = r_type(0x20, A2, T1, 0, A2, 0x33);
	code[6] = r_type(0, A0, A2, 4, A2, 0x33);
	code[7] = s_type(0, A2, T0, 3, 0x23);
	code[8] = j_type(-32, 0);
	memcpy(gpa(m, CODE), code, sizeof(code));
	ram_mark_dirty(&m->ram, CODE, sizeof(code));
	m->harts[0].s.pc = CODE;
	m->harts[0].s.x[A1] = DATA;
	m->harts[0].s.x[A2] = 7;
}

/* Recognisable RAM: zero pages, full pages, pages with one byte set. */
static void fill_ram(machine_t *m)
{
	for (uint64_t p = 0; p < m->ram.npages; p += 13) {
		uint8_t *pg = m->ram.host + p * RAM_PAGE_SIZE;

		if (p % 2)
			pg[(p * 37) % RAM_PAGE_SIZE] = (uint8_t)(p | 1);
		else
			for (unsigned i = 0; i < RAM_PAGE_SIZE; i++)
				pg[i] = (uint8_t)(p * 7 + i);
	}
	/* The very last page and byte of RAM too. */
	m->ram.host[m->ram.size - 1] = 0xee;
}

/* Guest-visible device state changed through MMIO, as a driver would. */
static void poke_devices(machine_t *m)
{
	assert_true(machine_mmio_write(m, MEM_UART_BASE + 7, 1, 0x42));	/* SCR */
	assert_true(machine_mmio_write(m, MEM_UART_BASE + 3, 1, 0x03));	/* LCR */
	assert_true(machine_mmio_write(m, MEM_PLIC_BASE + 4 * 1, 4, 5));
	assert_true(machine_mmio_write(m, MEM_PLIC_BASE + 4 * 10, 4, 3));
	assert_true(machine_mmio_write(m, MEM_CLINT_BASE + 0x4000, 8,
				       0x123456789ull));
	assert_true(machine_mmio_write(m, MEM_VIRTIO_BASE + 0x70, 4, 1));
	assert_true(machine_mmio_write(m, MEM_VIRTIO_BASE + 0x70, 4, 3));
	m->harts[0].s.x[7] = 0xdeadbeefcafef00dull;
	m->harts[0].s.f[3] = 0x3ff0000000000000ull;
	m->harts[0].s.mscratch = 0x5555;
	m->harts[0].s.stimecmp = 987654321;
}

/* Saves m into a memfd; returns it positioned at 0. */
static int save(machine_t *m)
{
	char err[256];
	int fd = memfd_create("savevm", MFD_CLOEXEC);

	assert_true(fd >= 0);
	vclock_pause(&m->clock);
	if (savevm_save(m, NULL, fd, err, sizeof(err)))
		fail_msg("savevm_save: %s", err);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static uint8_t *save_bytes(machine_t *m, size_t *len)
{
	int fd = save(m);
	off_t end = lseek(fd, 0, SEEK_END);
	uint8_t *buf = malloc((size_t)end);

	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)end, 0), end);
	close(fd);
	*len = (size_t)end;
	return buf;
}

static int load_bytes(machine_t *m, const uint8_t *buf, size_t len, char *err,
		      size_t errlen)
{
	int fd = memfd_create("load", MFD_CLOEXEC), rc;

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	rc = savevm_load(m, fd, NULL, err, errlen);
	close(fd);
	return rc;
}

static void assert_section_equal(const state_desc_t *d, const void *a,
				 const void *b)
{
	uint8_t sa[8192], sb[8192];
	size_t na = state_save(d, a, sa, sizeof(sa));
	size_t nb = state_save(d, b, sb, sizeof(sb));

	assert_true(na > 0);
	assert_int_equal(na, nb);
	if (memcmp(sa, sb, na))
		fail_msg("state section %s differs after load", d->name);
}

static void assert_same_machine(machine_t *a, machine_t *b)
{
	assert_int_equal(a->ram.size, b->ram.size);
	assert_memory_equal(a->ram.host, b->ram.host, a->ram.size);
	assert_section_equal(&vclock_state_desc, &a->clock.s, &b->clock.s);
	for (unsigned i = 0; i < a->nharts; i++)
		assert_section_equal(&hart_state_desc, &a->harts[i].s,
				     &b->harts[i].s);
	assert_int_equal(a->ndevices, b->ndevices);
	for (unsigned i = 0; i < a->ndevices; i++) {
		assert_string_equal(a->devices[i].name, b->devices[i].name);
		if (a->devices[i].state)
			assert_section_equal(a->devices[i].state,
					     a->devices[i].state_obj,
					     b->devices[i].state_obj);
	}
}

static void test_round_trip(void **state)
{
	machine_t *a = build(&base_cfg), *b = build(&base_cfg);
	char err[256];
	int fd;

	(void)state;
	fill_ram(a);
	poke_devices(a);
	/* b's RAM holds other data where a's pages are zero. */
	memset(b->ram.host, 0xcc, 64 * RAM_PAGE_SIZE);
	fd = save(a);
	if (savevm_load(b, fd, NULL, err, sizeof(err)))
		fail_msg("savevm_load: %s", err);
	close(fd);
	assert_same_machine(a, b);
	assert_true(b->clock.paused);
	assert_int_equal(vclock_ns(&b->clock), a->clock.s.guest_ns);
	destroy(a);
	destroy(b);
}

static void refuse(const struct cfg *dst, const char *want)
{
	machine_t *a = build(&base_cfg), *b = build(dst);
	char err[256];
	size_t len;
	uint8_t *buf;

	poke_devices(a);
	buf = save_bytes(a, &len);
	assert_int_equal(load_bytes(b, buf, len, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("expected \"%s\" in \"%s\"", want, err);
	assert_null(strchr(err, '\n'));
	free(buf);
	destroy(a);
	destroy(b);
}

static void test_refuse_other_machine(void **state)
{
	(void)state;
	refuse(&(struct cfg){ 16u << 20, disk1, false, NULL },
	       "RAM size differs: stream 8 MiB, this machine 16 MiB");
	refuse(&(struct cfg){ RAM_BYTES, disk2, false, NULL }, "path=");
	refuse(&(struct cfg){ RAM_BYTES, disk3, false, NULL }, "size=");
	refuse(&(struct cfg){ RAM_BYTES, disk1, true, NULL }, "ro=1");
	refuse(&(struct cfg){ RAM_BYTES, NULL, false, NULL },
	       "device virtio0 (virtio-blk path=");
	refuse(&(struct cfg){ RAM_BYTES, disk1, false, disk2 },
	       "device virtio1 of this machine is not in the stream");
}

static void test_refuse_other_isa(void **state)
{
	machine_t *a = build(&base_cfg), *b = build(&base_cfg);
	char err[256];
	size_t len;
	uint8_t *buf = save_bytes(a, &len);

	(void)state;
	snprintf(b->isa, sizeof(b->isa), "rv64imac");
	assert_int_equal(load_bytes(b, buf, len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ISA differs"));
	free(buf);
	destroy(a);
	destroy(b);
}

/* A hand-written stream with the sections given by the callback. */
typedef void (*sections_fn)(stream_t *s, machine_t *m);

static uint8_t *custom_stream(machine_t *m, sections_fn fn, bool machine_rec,
			      size_t *len)
{
	int fd = memfd_create("custom", MFD_CLOEXEC);
	off_t end;
	uint8_t *buf;
	stream_t s;

	stream_init(&s, fd);
	assert_int_equal(stream_write_header(&s), 0);
	if (machine_rec)
		assert_int_equal(stream_write_machine(&s, m), 0);
	fn(&s, m);
	assert_int_equal(stream_write_end(&s), 0);
	stream_free(&s);
	end = lseek(fd, 0, SEEK_END);
	buf = malloc((size_t)end);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)end, 0), end);
	close(fd);
	*len = (size_t)end;
	return buf;
}

static void put_clock(stream_t *s, machine_t *m)
{
	assert_int_equal(stream_write_state(s, STREAM_STATE_CLOCK, 0, "clock",
					    &vclock_state_desc, &m->clock.s),
			 0);
}

static void put_hart(stream_t *s, machine_t *m)
{
	assert_int_equal(stream_write_state(s, STREAM_STATE_HART, 0, "hart",
					    &hart_state_desc, &m->harts[0].s),
			 0);
}

static void put_devices(stream_t *s, machine_t *m, const char *skip)
{
	for (unsigned i = 0; i < m->ndevices; i++) {
		const device_t *d = &m->devices[i];

		if (d->state && (!skip || strcmp(skip, d->name)))
			assert_int_equal(stream_write_state(s,
							    STREAM_STATE_DEVICE,
							    0, d->name, d->state,
							    d->state_obj),
					 0);
	}
}

static void all_sections(stream_t *s, machine_t *m)
{
	assert_int_equal(stream_write_pages(s, &m->ram, NULL), 0);
	put_clock(s, m);
	put_hart(s, m);
	put_devices(s, m, NULL);
}

static void no_uart(stream_t *s, machine_t *m)
{
	put_clock(s, m);
	put_hart(s, m);
	put_devices(s, m, "uart");
}

static void no_clock(stream_t *s, machine_t *m)
{
	put_hart(s, m);
	put_devices(s, m, NULL);
}

static void no_hart(stream_t *s, machine_t *m)
{
	put_clock(s, m);
	put_devices(s, m, NULL);
}

static void hart_twice(stream_t *s, machine_t *m)
{
	all_sections(s, m);
	put_hart(s, m);
}

static void uart_twice(stream_t *s, machine_t *m)
{
	all_sections(s, m);
	put_devices(s, m, "virtio0");
}

static void hart_one(stream_t *s, machine_t *m)
{
	all_sections(s, m);
	assert_int_equal(stream_write_state(s, STREAM_STATE_HART, 1, "hart",
					    &hart_state_desc, &m->harts[0].s),
			 0);
}

static void unknown_device(stream_t *s, machine_t *m)
{
	all_sections(s, m);
	assert_int_equal(stream_write_state(s, STREAM_STATE_DEVICE, 0, "bogus",
					    &vclock_state_desc, &m->clock.s),
			 0);
}

static void syscon_state(stream_t *s, machine_t *m)
{
	all_sections(s, m);
	assert_int_equal(stream_write_state(s, STREAM_STATE_DEVICE, 0,
					    "syscon", &vclock_state_desc,
					    &m->clock.s),
			 0);
}

static void bad_hart(stream_t *s, machine_t *m)
{
	hart_state_t h = m->harts[0].s;

	h.priv = 2;	/* reserved privilege level */
	put_clock(s, m);
	put_devices(s, m, NULL);
	assert_int_equal(stream_write_state(s, STREAM_STATE_HART, 0, "hart",
					    &hart_state_desc, &h),
			 0);
}

static void wrong_table(stream_t *s, machine_t *m)
{
	put_clock(s, m);
	put_hart(s, m);
	/* The uart section carrying the clock's 8 bytes. */
	for (unsigned i = 0; i < m->ndevices; i++) {
		const device_t *d = &m->devices[i];

		if (!d->state)
			continue;
		if (!strcmp(d->name, "uart"))
			assert_int_equal(stream_write_state(s,
					 STREAM_STATE_DEVICE, 0, "uart",
					 &vclock_state_desc, &m->clock.s), 0);
		else
			assert_int_equal(stream_write_state(s,
					 STREAM_STATE_DEVICE, 0, d->name,
					 d->state, d->state_obj), 0);
	}
}

static void second_machine(stream_t *s, machine_t *m)
{
	all_sections(s, m);
	assert_int_equal(stream_write_machine(s, m), 0);
}

static void test_refuse_sections(void **state)
{
	static const struct {
		sections_fn fn;
		bool machine_rec;
		const char *want;
	} cases[] = {
		{ all_sections, true, NULL },
		{ all_sections, false, "does not start with a machine" },
		{ no_uart, true, "no state for device uart" },
		{ no_clock, true, "no clock state" },
		{ no_hart, true, "no state for hart 0" },
		{ hart_twice, true, "state of hart 0 appears twice" },
		{ uart_twice, true, "appears twice" },
		{ hart_one, true, "state for hart 1" },
		{ unknown_device, true, "device bogus, which this machine" },
		{ syscon_state, true, "syscon, which has none" },
		{ bad_hart, true, "invalid privilege" },
		{ wrong_table, true, "uart" },
		{ second_machine, true, "second machine description" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		machine_t *a = build(&base_cfg), *b = build(&base_cfg);
		char err[256];
		size_t len;
		uint8_t *buf;
		int rc;

		poke_devices(a);
		buf = custom_stream(a, cases[i].fn, cases[i].machine_rec, &len);
		rc = load_bytes(b, buf, len, err, sizeof(err));
		if (!cases[i].want) {
			if (rc)
				fail_msg("case %zu: %s", i, err);
			assert_same_machine(a, b);
		} else {
			assert_int_equal(rc, -1);
			if (!strstr(err, cases[i].want))
				fail_msg("case %zu: expected \"%s\" in \"%s\"",
					 i, cases[i].want, err);
		}
		free(buf);
		destroy(a);
		destroy(b);
	}
}

/*
 * Random single-byte corruptions and truncations: every one refused (all
 * bytes are covered by a checksum), none crashes. FUZZ_ROUNDS overrides
 * the count (a shorter run under valgrind).
 */
static void test_fuzz(void **state)
{
	machine_t *a = build(&base_cfg);
	const char *env = getenv("FUZZ_ROUNDS");
	unsigned rounds = env ? (unsigned)atoi(env) : 2000;
	size_t len, tail;
	uint8_t *buf, *copy;
	uint64_t seed = 0x2545f4914f6cdd1dull;

	(void)state;
	fill_ram(a);
	poke_devices(a);
	buf = save_bytes(a, &len);
	copy = malloc(len);
	assert_non_null(copy);
	/* The state records sit at the end: aim half of the hits there. */
	tail = len > 4096 ? 4096 : len;
	for (unsigned i = 0; i < rounds; i++) {
		machine_t *b = build(&base_cfg);
		char err[256];
		size_t off, cut = len;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		off = (i & 1) ? len - tail + (size_t)(seed % tail)
			      : (size_t)(seed % len);
		memcpy(copy, buf, len);
		if (i % 4 == 3)
			cut = off;	/* truncation */
		else
			copy[off] ^= (uint8_t)((seed >> 32) % 255 + 1);
		err[0] = '\0';
		if (load_bytes(b, copy, cut, err, sizeof(err)) == 0)
			fail_msg("round %u: damage at %zu (cut %zu of %zu) "
				 "accepted", i, off, cut, len);
		assert_true(err[0] != '\0');
		assert_null(strchr(err, '\n'));
		destroy(b);
	}
	free(copy);
	free(buf);
	destroy(a);
}

/*
 * Corruptions behind a valid checksum: a byte of a record body changed and
 * the record resealed, so the parsers (machine description, pages, state)
 * see hostile content. Loads may succeed (a register value is just a value)
 * but must never crash or write outside RAM (run under valgrind or ASan).
 */
static void test_fuzz_resealed(void **state)
{
	machine_t *a = build(&base_cfg);
	const char *env = getenv("FUZZ_ROUNDS");
	unsigned rounds = env ? (unsigned)atoi(env) : 1000, refused = 0;
	size_t len, nrec = 0, recs[64];
	uint8_t *buf, *copy;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	(void)state;
	fill_ram(a);
	poke_devices(a);
	buf = save_bytes(a, &len);
	copy = malloc(len);
	assert_non_null(copy);
	/* Record offsets, skipping the big page records' data. */
	for (size_t pos = STREAM_HEADER_SIZE; pos < len && nrec < 64;) {
		uint32_t rlen = (uint32_t)buf[pos + 4] | buf[pos + 5] << 8 |
				(uint32_t)buf[pos + 6] << 16 |
				(uint32_t)buf[pos + 7] << 24;

		if (rlen)
			recs[nrec++] = pos;
		pos += 16 + rlen + (8 - rlen % 8) % 8;
	}
	assert_true(nrec >= 4);
	for (unsigned i = 0; i < rounds; i++) {
		machine_t *b = build(&base_cfg);
		char err[256];
		size_t at, off, body;
		uint32_t rlen, pad;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		at = recs[seed % nrec];
		rlen = (uint32_t)buf[at + 4] | buf[at + 5] << 8 |
		       (uint32_t)buf[at + 6] << 16 | (uint32_t)buf[at + 7] << 24;
		/* Mostly the first 64 bytes: counts, entries, names. */
		body = (seed >> 20) % 4 ? (rlen < 64 ? rlen : 64) : rlen;
		off = at + 8 + (size_t)((seed >> 8) % body);
		memcpy(copy, buf, len);
		copy[off] ^= (uint8_t)((seed >> 40) % 255 + 1);
		pad = (8 - rlen % 8) % 8;
		/* Reseal: the checksum's seed is the record's number. */
		{
			uint64_t seq = 0, sum;
			size_t pos = STREAM_HEADER_SIZE;

			while (pos <= at) {
				uint32_t l = (uint32_t)copy[pos + 4] |
					     copy[pos + 5] << 8 |
					     (uint32_t)copy[pos + 6] << 16 |
					     (uint32_t)copy[pos + 7] << 24;

				seq++;
				pos += 16 + l + (8 - l % 8) % 8;
			}
			sum = stream_checksum(copy + at, 8 + rlen + pad, seq);
			for (int k = 0; k < 8; k++)
				copy[at + 8 + rlen + pad + k] =
					(uint8_t)(sum >> (8 * k));
		}
		err[0] = '\0';
		if (load_bytes(b, copy, len, err, sizeof(err))) {
			refused++;
			assert_true(err[0] != '\0');
			assert_null(strchr(err, '\n'));
		}
		destroy(b);
	}
	/* Most damage to counts, indices and names is caught. */
	assert_true(refused > rounds / 4);
	free(copy);
	free(buf);
	destroy(a);
}

/* Save mid-run, load, run both on: same hart state and RAM. */
static void test_determinism(void **state)
{
	machine_t *a = build(&base_cfg), *b = build(&base_cfg);
	char err[256];
	uint64_t n;
	int fd;

	(void)state;
	put_program(a);
	vclock_pause(&a->clock);
	n = hart_run(&a->harts[0], 5000);
	assert_true(n > 0);
	assert_int_not_equal(a->harts[0].s.x[A0], 0);
	fd = save(a);
	if (savevm_load(b, fd, NULL, err, sizeof(err)))
		fail_msg("savevm_load: %s", err);
	close(fd);
	assert_same_machine(a, b);
	hart_run(&a->harts[0], 7777);
	hart_run(&b->harts[0], 7777);
	assert_int_equal(a->harts[0].s.x[A0], b->harts[0].s.x[A0]);
	assert_true(a->harts[0].s.x[A0] > n / 9);
	assert_same_machine(a, b);
	destroy(a);
	destroy(b);
}

/* Zero pages travel as flags: a fresh machine's stream is small. */
static void test_zero_pages_cheap(void **state)
{
	machine_t *a = build(&base_cfg);
	size_t len;
	uint8_t *buf = save_bytes(a, &len);

	(void)state;
	/* 2048 pages of 8 bytes each plus headers and state: no page data. */
	assert_true(len < 2048 * 8 + 16 * 1024);
	free(buf);
	destroy(a);
}

/* Pages that compress travel as LZ4 blocks: the snapshot is a fraction
 * of the RAM it holds, and loads back exactly. */
static void test_compressed_snapshot(void **state)
{
	machine_t *a = build(&base_cfg), *b = build(&base_cfg);
	uint64_t used = 0;
	char err[256];
	size_t len;
	uint8_t *buf;

	(void)state;
	fill_ram(a);
	poke_devices(a);
	for (uint64_t p = 0; p < a->ram.npages; p++)
		if (!stream_page_is_zero(a->ram.host + p * RAM_PAGE_SIZE))
			used++;
	assert_true(used > 100);
	buf = save_bytes(a, &len);
	assert_true(len < used * RAM_PAGE_SIZE / 4);
	if (load_bytes(b, buf, len, err, sizeof(err)))
		fail_msg("load: %s", err);
	assert_same_machine(a, b);
	free(buf);
	destroy(a);
	destroy(b);
}

/* ---- the domain config (DOMAIN record) ---- */

static const char domain_text[] =
	"name = \"vm1\"\nmemory = 256\n"
	"disk = [ 'file:/srv/vm1.img,vda,w' ]\n\t# tabs, quotes \"'\n";

/* m saved with a domain config into a memfd, positioned at 0. */
static int save_domain(machine_t *m, const char *domain)
{
	char err[256];
	int fd = memfd_create("savevm-domain", MFD_CLOEXEC);

	assert_true(fd >= 0);
	vclock_pause(&m->clock);
	if (savevm_save(m, domain, fd, err, sizeof(err)))
		fail_msg("savevm_save: %s", err);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static uint8_t *fd_bytes(int fd, size_t *len)
{
	off_t end = lseek(fd, 0, SEEK_END);
	uint8_t *buf = malloc((size_t)end);

	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)end, 0), end);
	*len = (size_t)end;
	return buf;
}

/* Writes bytes into a fresh file; returns its path (static buffer). */
static const char *file_with(const uint8_t *buf, size_t len)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/tern-savevm-dom-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Saved, loaded: the same machine, and the text comes back intact. */
static void test_domain_round_trip(void **state)
{
	machine_t *a = build(&base_cfg), *b = build(&base_cfg);
	char err[256], *domain = (char *)"junk";
	int fd;

	(void)state;
	fill_ram(a);
	poke_devices(a);
	fd = save_domain(a, domain_text);
	if (savevm_load(b, fd, &domain, err, sizeof(err)))
		fail_msg("savevm_load: %s", err);
	close(fd);
	assert_same_machine(a, b);
	assert_non_null(domain);
	assert_string_equal(domain, domain_text);
	free(domain);
	destroy(b);
	/* Without one: NULL, and NULL asked for is fine too. */
	b = build(&base_cfg);
	fd = save(a);
	domain = (char *)"junk";
	if (savevm_load(b, fd, &domain, err, sizeof(err)))
		fail_msg("savevm_load: %s", err);
	assert_null(domain);
	close(fd);
	destroy(b);
	b = build(&base_cfg);
	fd = save_domain(a, domain_text);
	if (savevm_load(b, fd, NULL, err, sizeof(err)))
		fail_msg("savevm_load: %s", err);
	close(fd);
	destroy(a);
	destroy(b);
}

/* The record right after MACHINE is DOMAIN, optional, body = the text. */
static void test_domain_record_layout(void **state)
{
	machine_t *a = build(&base_cfg);
	size_t len;
	int fd = save_domain(a, "x = 1\n");
	uint8_t *buf = fd_bytes(fd, &len);
	size_t off = STREAM_HEADER_SIZE;
	uint32_t mlen;

	(void)state;
	close(fd);
	/* MACHINE */
	assert_int_equal(buf[off] | buf[off + 1] << 8, STREAM_REC_MACHINE);
	memcpy(&mlen, buf + off + 4, 4);
	off += STREAM_REC_HEADER_SIZE + mlen + ((8 - mlen % 8) % 8) +
	       STREAM_REC_TRAILER_SIZE;
	/* DOMAIN, with the optional bit: older readers skip it. */
	assert_int_equal(buf[off] | buf[off + 1] << 8, STREAM_REC_DOMAIN);
	assert_int_equal(buf[off + 2] | buf[off + 3] << 8, STREAM_REC_OPTIONAL);
	assert_int_equal(buf[off + 4], 6);
	assert_memory_equal(buf + off + 8, "x = 1\n", 6);
	free(buf);
	destroy(a);
}

static void domain_twice(stream_t *s, machine_t *m)
{
	assert_int_equal(stream_write_domain(s, "a"), 0);
	assert_int_equal(stream_write_domain(s, "b"), 0);
	all_sections(s, m);
}

static void domain_late(stream_t *s, machine_t *m)
{
	all_sections(s, m);
	assert_int_equal(stream_write_domain(s, "late"), 0);
}

static void domain_nul(stream_t *s, machine_t *m)
{
	/* A NUL byte inside the text: not a C string. */
	assert_int_equal(stream_write_record(s, STREAM_REC_DOMAIN,
					     STREAM_REC_OPTIONAL, "ab\0cd", 5),
			 0);
	all_sections(s, m);
}

static void domain_huge(stream_t *s, machine_t *m)
{
	static char big[STREAM_MAX_DOMAIN + 2];

	memset(big, 'x', STREAM_MAX_DOMAIN + 1);
	assert_int_equal(stream_write_domain(s, big), -1);
	assert_non_null(strstr(s->err, "over the limit"));
	/* Written anyway, by hand: the reader refuses it from its header. */
	assert_int_equal(stream_write_record(s, STREAM_REC_DOMAIN,
					     STREAM_REC_OPTIONAL, big,
					     STREAM_MAX_DOMAIN + 1), 0);
	all_sections(s, m);
}

static void test_domain_refused(void **state)
{
	static const struct {
		sections_fn fn;
		const char *want;
	} cases[] = {
		{ domain_twice, "a second domain config" },
		{ domain_late, "domain config after guest memory" },
		{ domain_nul, "NUL byte" },
		{ domain_huge, "DOMAIN length 65537 over the limit 65536" },
	};
	machine_t *a = build(&base_cfg);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		machine_t *b = build(&base_cfg);
		char err[256], *domain = (char *)"junk";
		size_t len;
		uint8_t *buf = custom_stream(a, cases[i].fn, true, &len);
		int fd = memfd_create("dom", MFD_CLOEXEC);

		assert_int_equal(write(fd, buf, len), (ssize_t)len);
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		assert_int_equal(savevm_load(b, fd, &domain, err, sizeof(err)),
				 -1);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, err,
				 cases[i].want);
		assert_null(domain);
		close(fd);
		free(buf);
		destroy(b);
	}
	destroy(a);
}

/* savevm_read_domain_config: good, absent, truncated, corrupt, not one. */
static void test_read_domain_config(void **state)
{
	machine_t *a = build(&base_cfg);
	char err[256], *text;
	size_t len;
	int fd = save_domain(a, domain_text);
	uint8_t *buf = fd_bytes(fd, &len);
	const char *path;
	uint32_t mlen;
	size_t dom_at, dom_end;

	(void)state;
	close(fd);
	memcpy(&mlen, buf + STREAM_HEADER_SIZE + 4, 4);
	dom_at = STREAM_HEADER_SIZE + STREAM_REC_HEADER_SIZE + mlen +
		 (8 - mlen % 8) % 8 + STREAM_REC_TRAILER_SIZE;
	dom_end = dom_at + STREAM_REC_HEADER_SIZE + sizeof(domain_text) - 1 +
		  (8 - (sizeof(domain_text) - 1) % 8) % 8 +
		  STREAM_REC_TRAILER_SIZE;

	/* Good. */
	path = file_with(buf, len);
	assert_int_equal(savevm_read_domain_config(path, &text, err,
						   sizeof(err)), 0);
	assert_non_null(text);
	assert_string_equal(text, domain_text);
	free(text);
	unlink(path);

	/* Cut right after DOMAIN: what ternd needs is all there. */
	path = file_with(buf, dom_end);
	assert_int_equal(savevm_read_domain_config(path, &text, err,
						   sizeof(err)), 0);
	assert_string_equal(text, domain_text);
	free(text);
	unlink(path);

	/* Cut inside DOMAIN, inside MACHINE, inside the header; empty. */
	{
		const size_t cuts[] = { dom_end - 1, dom_at + 3,
					STREAM_HEADER_SIZE + 20, 10, 0 };

		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			path = file_with(buf, cuts[i]);
			text = (char *)"junk";
			assert_int_equal(savevm_read_domain_config(path, &text,
						err, sizeof(err)), -1);
			assert_null(text);
			assert_non_null(strstr(err, path));
			unlink(path);
		}
	}

	/* One bit flipped in the text: its checksum says so. */
	buf[dom_at + STREAM_REC_HEADER_SIZE + 3] ^= 0x04;
	path = file_with(buf, len);
	assert_int_equal(savevm_read_domain_config(path, &text, err,
						   sizeof(err)), -1);
	assert_non_null(strstr(err, "checksum mismatch"));
	unlink(path);
	buf[dom_at + STREAM_REC_HEADER_SIZE + 3] ^= 0x04;

	/* Not a snapshot at all. */
	path = file_with((const uint8_t *)"name = \"vm1\"\nmemory = 256\n"
			 "and some more text to fill a header", 60);
	assert_int_equal(savevm_read_domain_config(path, &text, err,
						   sizeof(err)), -1);
	assert_non_null(strstr(err, "not a tern migration stream"));
	unlink(path);
	free(buf);

	/* A snapshot without a domain config: 0 and NULL. */
	fd = save(a);
	buf = fd_bytes(fd, &len);
	close(fd);
	path = file_with(buf, len);
	text = (char *)"junk";
	assert_int_equal(savevm_read_domain_config(path, &text, err,
						   sizeof(err)), 0);
	assert_null(text);
	unlink(path);
	free(buf);

	/* No such file; a directory. */
	assert_int_equal(savevm_read_domain_config("/nonexistent/snap", &text,
						   err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open /nonexistent/snap"));
	assert_int_equal(savevm_read_domain_config("/tmp", &text, err,
						   sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	destroy(a);
}

/* Save, restore, save again: the text survives each generation. */
static void test_domain_generations(void **state)
{
	machine_t *a = build(&base_cfg), *b = build(&base_cfg);
	char err[256], *domain = NULL, *again = NULL;
	int fd;

	(void)state;
	fill_ram(a);
	fd = save_domain(a, domain_text);
	if (savevm_load(b, fd, &domain, err, sizeof(err)))
		fail_msg("savevm_load: %s", err);
	close(fd);
	fd = save_domain(b, domain);
	destroy(a);
	a = build(&base_cfg);
	if (savevm_load(a, fd, &again, err, sizeof(err)))
		fail_msg("savevm_load: %s", err);
	close(fd);
	assert_string_equal(again, domain_text);
	free(domain);
	free(again);
	destroy(a);
	destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refuse_other_machine),
		cmocka_unit_test(test_refuse_other_isa),
		cmocka_unit_test(test_refuse_sections),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_fuzz_resealed),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_zero_pages_cheap),
		cmocka_unit_test(test_compressed_snapshot),
		cmocka_unit_test(test_domain_round_trip),
		cmocka_unit_test(test_domain_record_layout),
		cmocka_unit_test(test_domain_refused),
		cmocka_unit_test(test_read_domain_config),
		cmocka_unit_test(test_domain_generations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
