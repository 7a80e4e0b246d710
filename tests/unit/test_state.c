// SPDX-License-Identifier: MIT
/*
 * Walks every state table of a fully built machine (the harts, the clock and
 * every registered device): each table is well formed, each section
 * round-trips, and damaged sections are refused without touching the state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/virtio_blk.h"
#include "machine/machine.h"
#include "machine/platform.h"
#include "machine/state.h"

typedef struct section {
	const state_desc_t *desc;
	void *obj;
} section_t;

static void discard(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	(void)len;
}

static machine_t *full_machine(char *disk_path)
{
	machine_t *m = calloc(1, sizeof(*m));
	char err[256];
	int fd = mkstemp(disk_path);

	assert_non_null(m);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	assert_int_equal(machine_init(m, 32 << 20, 1, err, sizeof(err)), 0);
	assert_int_equal(platform_create(m, discard, NULL, err, sizeof(err)), 0);
	assert_non_null(virtio_blk_new(m, disk_path, false, err, sizeof(err)));
	return m;
}

/* Every section of the machine, as a migration would send them. */
static size_t all_sections(machine_t *m, section_t *out, size_t max)
{
	size_t n = 0;

	for (unsigned i = 0; i < m->nharts && n < max; i++)
		out[n++] = (section_t){ &hart_state_desc, &m->harts[i].s };
	if (n < max)
		out[n++] = (section_t){ &vclock_state_desc, &m->clock.s };
	for (unsigned i = 0; i < m->ndevices && n < max; i++)
		if (m->devices[i].state)
			out[n++] = (section_t){ m->devices[i].state,
						m->devices[i].state_obj };
	return n;
}

static void test_tables_well_formed(void **unused)
{
	char path[] = "/tmp/tern-state-XXXXXX", err[256];
	machine_t *m = full_machine(path);
	section_t s[64];
	size_t n = all_sections(m, s, 64);

	(void)unused;
	/* hart, clock, plic, clint, syscon?, rtc, uart, virtio at least */
	assert_true(n >= 6);
	for (size_t i = 0; i < n; i++) {
		if (state_desc_validate(s[i].desc, err, sizeof(err)))
			fail_msg("%s", err);
		assert_int_equal(s[i].desc->size > 0, 1);
		for (size_t j = 0; j < i; j++)
			assert_ptr_not_equal(s[i].obj, s[j].obj);
	}
	machine_destroy(m);
	free(m);
	unlink(path);
}

/* Every field is covered: a struct filled with a pattern survives save/load. */
static void test_round_trip(void **unused)
{
	char path[] = "/tmp/tern-state-XXXXXX", err[256];
	machine_t *m = full_machine(path);
	section_t s[64];
	size_t n = all_sections(m, s, 64);

	(void)unused;
	for (size_t i = 0; i < n; i++) {
		const state_desc_t *d = s[i].desc;
		size_t len = state_size(d, d->version);
		uint8_t *buf = malloc(len + 1), *copy = malloc(d->size);

		assert_non_null(buf);
		assert_non_null(copy);
		assert_int_equal(state_save(d, s[i].obj, buf, len), len);
		assert_int_equal(state_save(d, s[i].obj, buf, len - 1), 0);
		memset(copy, 0, d->size);
		if (state_load(d, copy, d->version, buf, len, err, sizeof(err)))
			fail_msg("%s: %s", d->name, err);
		/* Field by field: the loaded copy equals the original. */
		for (uint32_t f = 0; f < d->nfields; f++) {
			const state_field_t *fl = &d->fields[f];

			assert_memory_equal((uint8_t *)s[i].obj + fl->offset,
					    copy + fl->offset,
					    (size_t)fl->elem_size * fl->count);
		}
		/* Wrong length and unknown versions are refused. */
		assert_int_equal(state_load(d, copy, d->version, buf, len - 1,
					    err, sizeof(err)), -1);
		assert_int_equal(state_load(d, copy, d->version + 1, buf, len,
					    err, sizeof(err)), -1);
		assert_int_equal(state_load(d, copy, 0, buf, len, err,
					    sizeof(err)), -1);
		free(buf);
		free(copy);
	}
	machine_destroy(m);
	free(m);
	unlink(path);
}

/*
 * Random damage: every load either succeeds (and then check() accepted the
 * values) or fails leaving the object exactly as it was.
 */
static void test_damaged_sections(void **unused)
{
	char path[] = "/tmp/tern-state-XXXXXX", err[256];
	machine_t *m = full_machine(path);
	section_t s[64];
	size_t n = all_sections(m, s, 64);
	unsigned seed = 12345;

	(void)unused;
	for (size_t i = 0; i < n; i++) {
		const state_desc_t *d = s[i].desc;
		size_t len = state_size(d, d->version);
		uint8_t *buf = malloc(len), *obj = malloc(d->size),
			*before = malloc(d->size);

		assert_int_equal(state_save(d, s[i].obj, buf, len), len);
		for (int round = 0; round < 200; round++) {
			uint8_t *dam = malloc(len);

			memcpy(dam, buf, len);
			for (int k = 0; k < 4; k++) {
				seed = seed * 1103515245u + 12345u;
				dam[(seed >> 8) % len] = (uint8_t)(seed >> 16);
			}
			memcpy(obj, s[i].obj, d->size);
			memcpy(before, obj, d->size);
			if (state_load(d, obj, d->version, dam, len, err,
				       sizeof(err)))
				assert_memory_equal(obj, before, d->size);
			free(dam);
		}
		free(buf);
		free(obj);
		free(before);
	}
	machine_destroy(m);
	free(m);
	unlink(path);
}

typedef struct demo {
	uint64_t a;
	uint32_t b[3];
	uint16_t c;
	uint8_t d;
	uint8_t newer;
} demo_t;

static int demo_check(const void *obj, char *err, size_t errlen)
{
	const demo_t *x = obj;

	(void)err;
	(void)errlen;
	return x->d > 100 ? -1 : 0;
}

static const state_field_t demo_fields[] = {
	STATE_U64(demo_t, a),
	STATE_U32_ARRAY(demo_t, b),
	STATE_U16(demo_t, c),
	STATE_U8(demo_t, d),
	STATE_FIELD_V(demo_t, newer, 1, 2),
};

static const state_desc_t demo_desc = {
	.name = "demo",
	.version = 2,
	.min_version = 1,
	.size = sizeof(demo_t),
	.fields = demo_fields,
	.nfields = STATE_NFIELDS(demo_fields),
	.check = demo_check,
};

/* The engine's rules on a table of its own: versions, endianness, check(). */
static void test_engine_rules(void **unused)
{
	demo_t x = { 0x1122334455667788ull, { 1, 2, 3 }, 0xbeef, 7, 9 }, y;
	uint8_t buf[64];
	char err[128];
	state_field_t bad[2] = { demo_fields[0], demo_fields[0] };
	state_desc_t badd = demo_desc;

	(void)unused;
	assert_int_equal(state_desc_validate(&demo_desc, err, sizeof(err)), 0);
	assert_int_equal(state_size(&demo_desc, 2), 8 + 12 + 2 + 1 + 1);
	assert_int_equal(state_size(&demo_desc, 1), 8 + 12 + 2 + 1);
	assert_int_equal(state_save(&demo_desc, &x, buf, sizeof(buf)), 24);
	assert_int_equal(buf[0], 0x88); /* little-endian on the wire */
	assert_int_equal(buf[7], 0x11);
	memset(&y, 0, sizeof(y));
	assert_int_equal(state_load(&demo_desc, &y, 2, buf, 24, err, sizeof(err)), 0);
	assert_memory_equal(&x, &y, sizeof(x));
	/* A version-1 section leaves the newer field as it was. */
	memset(&y, 0, sizeof(y));
	y.newer = 42;
	assert_int_equal(state_load(&demo_desc, &y, 1, buf, 23, err, sizeof(err)), 0);
	assert_int_equal(y.newer, 42);
	assert_int_equal(y.c, 0xbeef);
	/* check() refuses, and nothing is written. */
	buf[22] = 200;
	memset(&y, 0, sizeof(y));
	assert_int_equal(state_load(&demo_desc, &y, 2, buf, 24, err, sizeof(err)), -1);
	assert_int_equal(y.a, 0);
	/* Overlapping or duplicate fields make a table invalid. */
	badd.fields = bad;
	badd.nfields = 2;
	assert_int_equal(state_desc_validate(&badd, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_engine_rules),
		cmocka_unit_test(test_tables_well_formed),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damaged_sections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
