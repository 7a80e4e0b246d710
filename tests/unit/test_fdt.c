// SPDX-License-Identifier: MIT
/* The generated device tree describes exactly the machine that was built. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libfdt.h>

#include "devices/virtio_blk.h"
#include "machine/fdt.h"
#include "machine/machine.h"
#include "machine/platform.h"

static void discard(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	(void)len;
}

static machine_t *m;
static char disk[] = "/tmp/tern-fdt-XXXXXX";

static int setup(void **unused)
{
	char err[256];
	int fd = mkstemp(disk);
	boot_params_t bp = { "console=ttyS0 quiet", 0x88000000, 0x88100000 };

	(void)unused;
	if (fd < 0 || ftruncate(fd, 4 << 20))
		return -1;
	close(fd);
	m = calloc(1, sizeof(*m));
	if (machine_init(m, 64 << 20, 1, err, sizeof(err)) ||
	    platform_create(m, discard, NULL, err, sizeof(err)) ||
	    !virtio_blk_new(m, disk, false, err, sizeof(err)) ||
	    !virtio_blk_new(m, disk, true, err, sizeof(err)) ||
	    fdt_build(m, &bp, err, sizeof(err)))
		return -1;
	return 0;
}

static int teardown(void **unused)
{
	(void)unused;
	machine_destroy(m);
	free(m);
	unlink(disk);
	return 0;
}

static const void *prop(const char *path, const char *name, int *len)
{
	int node = fdt_path_offset(m->fdt, path);
	const void *p;

	if (node < 0)
		fail_msg("node %s missing", path);
	p = fdt_getprop(m->fdt, node, name, len);
	if (!p)
		fail_msg("%s:%s missing", path, name);
	return p;
}

static uint64_t be64_at(const void *p, int idx)
{
	return fdt64_to_cpu(((const fdt64_t *)p)[idx]);
}

static void test_valid_blob(void **unused)
{
	(void)unused;
	assert_int_equal(fdt_check_full(m->fdt, m->fdt_size), 0);
	assert_int_equal(fdt_totalsize(m->fdt), m->fdt_size);
}

static void test_cpu_and_memory(void **unused)
{
	int len, extlen;
	const char *isa = prop("/cpus/cpu@0", "riscv,isa", &len);
	const void *reg = prop("/memory@80000000", "reg", &len);
	const fdt32_t *tb = prop("/cpus", "timebase-frequency", &len);
	const char *ext = prop("/cpus/cpu@0", "riscv,isa-extensions", &extlen);

	(void)unused;
	assert_string_equal(isa, m->isa);
	assert_int_equal(strncmp(isa, "rv64imafdc", 10), 0);
	/* The extension list starts with the single letters, in order. */
	assert_string_equal(ext, "i");
	assert_int_equal(fdt_stringlist_contains(ext, extlen, "sstc"), 1);
	assert_int_equal(fdt_stringlist_contains(ext, extlen, "zicsr"), 1);
	assert_int_equal(fdt_stringlist_contains(ext, extlen, "v"), 0);
	assert_int_equal(fdt32_to_cpu(*tb), TIMEBASE_HZ);
	assert_int_equal(be64_at(reg, 0), MEM_RAM_BASE);
	assert_int_equal(be64_at(reg, 1), 64ull << 20);
	assert_string_equal(prop("/cpus/cpu@0/interrupt-controller", "compatible", &len),
			    "riscv,cpu-intc");
}

static void test_chosen(void **unused)
{
	int len;

	(void)unused;
	assert_string_equal(prop("/chosen", "bootargs", &len), "console=ttyS0 quiet");
	assert_string_equal(prop("/chosen", "stdout-path", &len),
			    "/soc/serial@10000000");
	assert_int_equal(fdt64_to_cpu(*(const fdt64_t *)prop("/chosen",
					"linux,initrd-start", &len)), 0x88000000);
	assert_int_equal(fdt64_to_cpu(*(const fdt64_t *)prop("/chosen",
					"linux,initrd-end", &len)), 0x88100000);
}

/* Every MMIO device has exactly one node, at its own address. */
static void test_devices_from_registry(void **unused)
{
	int soc = fdt_path_offset(m->fdt, "/soc"), node, count = 0, want = 0;

	(void)unused;
	assert_true(soc >= 0);
	fdt_for_each_subnode(node, m->fdt, soc) {
		int len;
		const fdt64_t *reg = fdt_getprop(m->fdt, node, "reg", &len);
		unsigned i;

		assert_non_null(reg);
		for (i = 0; i < m->ndevices; i++)
			if (m->devices[i].base == fdt64_to_cpu(reg[0]))
				break;
		if (i == m->ndevices)
			fail_msg("node %s matches no device",
				 fdt_get_name(m->fdt, node, NULL));
		count++;
	}
	/* State-only entries (size 0) have no node. */
	for (unsigned i = 0; i < m->ndevices; i++)
		want += m->devices[i].size != 0;
	assert_int_equal(count, want);
}

static void test_interrupt_wiring(void **unused)
{
	int len;
	const fdt32_t *irq = prop("/soc/serial@10000000", "interrupts", &len);
	const fdt32_t *parent = prop("/soc/serial@10000000", "interrupt-parent", &len);
	const fdt32_t *virq = prop("/soc/virtio_mmio@10002000", "interrupts", &len);
	int plic = fdt_node_offset_by_phandle(m->fdt, fdt32_to_cpu(*parent));

	(void)unused;
	assert_int_equal(fdt32_to_cpu(*irq), IRQ_UART);
	assert_int_equal(fdt32_to_cpu(*virq), IRQ_VIRTIO_FIRST + 1);
	assert_true(plic >= 0);
	assert_non_null(fdt_getprop(m->fdt, plic, "interrupt-controller", &len));
	assert_int_equal(fdt_node_check_compatible(m->fdt,
			 fdt_path_offset(m->fdt, "/soc/virtio_mmio@10001000"),
			 "virtio,mmio"), 0);
	/* poweroff via the syscon, as Linux's syscon-poweroff binding wants */
	assert_true(fdt_node_offset_by_compatible(m->fdt, -1, "syscon-poweroff") >= 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_blob),
		cmocka_unit_test(test_cpu_and_memory),
		cmocka_unit_test(test_chosen),
		cmocka_unit_test(test_devices_from_registry),
		cmocka_unit_test(test_interrupt_wiring),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
