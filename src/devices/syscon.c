// SPDX-License-Identifier: MIT
/*
 * SiFive test finisher: writing 0x5555 to offset 0 powers off, 0x7777
 * resets, 0x3333 | code << 16 powers off reporting failure. The device tree
 * describes it as a syscon with syscon-poweroff and syscon-reboot children
 * of the root, as QEMU's virt board does (Linux bindings
 * power/reset/syscon-poweroff.yaml and syscon-reboot.yaml).
 */
#include "devices/syscon.h"

#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>

static void syscon_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
	struct syscon *sc = dev;
	uint32_t status = val & 0xffff, code = (val >> 16) & 0xffff;

	/* QEMU accepts 16- and 32-bit writes; 64-bit ones use the low word. */
	if (off != 0 || size < 2)
		return;
	if (size == 2)
		code = 0;
	switch (status) {
	case SYSCON_PASS:
		sc->m->exit_code = 0;
		machine_request_stop(sc->m, POWER_OFF);
		break;
	case SYSCON_RESET:
		sc->m->exit_code = 0;
		machine_request_stop(sc->m, POWER_RESET);
		break;
	case SYSCON_FAIL:
		sc->m->exit_code = code ? (int)code : 1;
		machine_request_stop(sc->m, POWER_OFF);
		break;
	default:
		break;
	}
}

static int syscon_add_action(void *fdt, const char *name, const char *compat,
			     uint32_t value)
{
	int root = fdt_path_offset(fdt, "/");
	int node, rc;

	if (root < 0)
		return root;
	node = fdt_add_subnode(fdt, root, name);
	if (node < 0)
		return node;
	if ((rc = fdt_setprop_string(fdt, node, "compatible", compat)) ||
	    (rc = fdt_setprop_u32(fdt, node, "regmap", PHANDLE_SYSCON)) ||
	    (rc = fdt_setprop_u32(fdt, node, "offset", 0)) ||
	    (rc = fdt_setprop_u32(fdt, node, "value", value)))
		return rc;
	return 0;
}

static int syscon_fdt(void *dev, void *fdt, int soc, machine_t *m)
{
	struct syscon *sc = dev;
	static const char compat[] = "sifive,test1\0sifive,test0\0syscon";
	fdt64_t reg[2] = {cpu_to_fdt64(sc->base), cpu_to_fdt64(SYSCON_SIZE)};
	char name[32];
	int node, rc;

	snprintf(name, sizeof(name), "test@%llx", (unsigned long long)sc->base);
	node = fdt_add_subnode(fdt, soc, name);
	if (node < 0)
		return node;
	if ((rc = fdt_setprop(fdt, node, "compatible", compat,
			      sizeof(compat))) ||
	    (rc = fdt_setprop(fdt, node, "reg", reg, sizeof(reg))) ||
	    (rc = fdt_setprop_u32(fdt, node, "phandle", PHANDLE_SYSCON)))
		return rc;
	/* Adding nodes moves offsets: soc and node are stale from here on. */
	if ((rc = syscon_add_action(fdt, "poweroff", "syscon-poweroff",
				    SYSCON_PASS)) ||
	    (rc = syscon_add_action(fdt, "reboot", "syscon-reboot",
				    SYSCON_RESET)))
		return rc;
	return 0;
}

static void syscon_destroy(void *dev)
{
	free(dev);
}

static const device_ops_t syscon_ops = {
	.write = syscon_write,
	.fdt = syscon_fdt,
	.destroy = syscon_destroy,
};

struct syscon *syscon_new(machine_t *m, uint64_t base)
{
	struct syscon *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->m = m;
	sc->base = base;
	const device_t d = {
		.name = "syscon",
		.base = base,
		.size = SYSCON_SIZE,
		.ops = &syscon_ops,
		.dev = sc,
	};

	if (machine_add_device(m, &d)) {
		free(sc);
		return NULL;
	}
	return sc;
}
