// SPDX-License-Identifier: MIT
/*
 * The device tree, generated from what the machine really has: the harts
 * (with the ISA string the interpreter implements), RAM, and every device in
 * the registry, each of which adds its own node.
 */
#include "machine/fdt.h"

#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define FDT_MAX_SIZE (64 * 1024)

/* Each step returns a libfdt error code; the first failure ends the build. */
#define CHECK(expr)                                                            \
	do {                                                                   \
		rc = (expr);                                                   \
		if (rc < 0)                                                    \
			goto fail;                                             \
	} while (0)

static int prop_reg(void *fdt, int node, uint64_t base, uint64_t size)
{
	fdt64_t reg[2] = { cpu_to_fdt64(base), cpu_to_fdt64(size) };

	return fdt_setprop(fdt, node, "reg", reg, sizeof(reg));
}

/* riscv,isa-extensions: the ISA string's letters and named extensions. */
static int prop_isa_extensions(void *fdt, int node, const char *isa)
{
	char list[256];
	size_t n = 0;
	const char *p = isa + 4; /* skip "rv64" */

	while (*p && *p != '_' && n + 2 < sizeof(list)) {
		list[n++] = *p++;
		list[n++] = '\0';
	}
	while (*p == '_') {
		const char *q = ++p;

		while (*q && *q != '_')
			q++;
		if (n + (size_t)(q - p) + 1 > sizeof(list))
			return -FDT_ERR_NOSPACE;
		memcpy(list + n, p, (size_t)(q - p));
		n += (size_t)(q - p);
		list[n++] = '\0';
		p = q;
	}
	return fdt_setprop(fdt, node, "riscv,isa-extensions", list, (int)n);
}

static int add_cpus(machine_t *m, void *fdt)
{
	int rc, cpus, cpu, intc, map, cluster;
	char name[32];

	CHECK(cpus = fdt_add_subnode(fdt, 0, "cpus"));
	CHECK(fdt_setprop_u32(fdt, cpus, "#address-cells", 1));
	CHECK(fdt_setprop_u32(fdt, cpus, "#size-cells", 0));
	CHECK(fdt_setprop_u32(fdt, cpus, "timebase-frequency", TIMEBASE_HZ));
	/* Added in reverse so that cpu@0 comes first. */
	for (unsigned i = m->nharts; i-- > 0;) {
		snprintf(name, sizeof(name), "cpu@%u", i);
		CHECK(cpu = fdt_add_subnode(fdt, cpus, name));
		CHECK(fdt_setprop_string(fdt, cpu, "device_type", "cpu"));
		CHECK(fdt_setprop_u32(fdt, cpu, "reg", i));
		CHECK(fdt_setprop_string(fdt, cpu, "status", "okay"));
		CHECK(fdt_setprop_string(fdt, cpu, "compatible", "riscv"));
		CHECK(fdt_setprop_string(fdt, cpu, "riscv,isa", m->isa));
		CHECK(fdt_setprop_string(fdt, cpu, "riscv,isa-base", "rv64i"));
		CHECK(prop_isa_extensions(fdt, cpu, m->isa));
		CHECK(fdt_setprop_string(fdt, cpu, "mmu-type", "riscv,sv48"));
		CHECK(fdt_setprop_u32(fdt, cpu, "phandle", PHANDLE_CPU(i)));
		CHECK(intc = fdt_add_subnode(fdt, cpu, "interrupt-controller"));
		CHECK(fdt_setprop_u32(fdt, intc, "#interrupt-cells", 1));
		CHECK(fdt_setprop(fdt, intc, "interrupt-controller", NULL, 0));
		CHECK(fdt_setprop_string(fdt, intc, "compatible", "riscv,cpu-intc"));
		CHECK(fdt_setprop_u32(fdt, intc, "phandle", PHANDLE_CPU_INTC(i)));
	}
	CHECK(map = fdt_add_subnode(fdt, cpus, "cpu-map"));
	CHECK(cluster = fdt_add_subnode(fdt, map, "cluster0"));
	for (unsigned i = m->nharts; i-- > 0;) {
		int core;

		snprintf(name, sizeof(name), "core%u", i);
		CHECK(core = fdt_add_subnode(fdt, cluster, name));
		CHECK(fdt_setprop_u32(fdt, core, "cpu", PHANDLE_CPU(i)));
	}
	return 0;
fail:
	return rc;
}

int fdt_build(machine_t *m, const boot_params_t *bp, char *err, size_t errlen)
{
	void *fdt = calloc(1, FDT_MAX_SIZE);
	int rc, node, soc;
	char name[48];
	uint8_t seed[32];

	if (!fdt) {
		snprintf(err, errlen, "out of memory for the device tree");
		return -1;
	}
	CHECK(fdt_create_empty_tree(fdt, FDT_MAX_SIZE));
	CHECK(fdt_setprop_u32(fdt, 0, "#address-cells", 2));
	CHECK(fdt_setprop_u32(fdt, 0, "#size-cells", 2));
	CHECK(fdt_setprop_string(fdt, 0, "compatible", "tern,virt"));
	CHECK(fdt_setprop_string(fdt, 0, "model", "tern virtual machine"));

	CHECK(node = fdt_add_subnode(fdt, 0, "chosen"));
	if (bp && bp->cmdline)
		CHECK(fdt_setprop_string(fdt, node, "bootargs", bp->cmdline));
	snprintf(name, sizeof(name), "/soc/serial@%llx",
		 (unsigned long long)MEM_UART_BASE);
	CHECK(fdt_setprop_string(fdt, node, "stdout-path", name));
	if (bp && bp->initrd_start) {
		CHECK(fdt_setprop_u64(fdt, node, "linux,initrd-start", bp->initrd_start));
		CHECK(fdt_setprop_u64(fdt, node, "linux,initrd-end", bp->initrd_end));
	}
	/* Entropy for the guest's early randomness (KASLR, stack canaries). */
	if (getrandom(seed, sizeof(seed), 0) == (ssize_t)sizeof(seed))
		CHECK(fdt_setprop(fdt, node, "rng-seed", seed, sizeof(seed)));

	snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)m->ram.base);
	CHECK(node = fdt_add_subnode(fdt, 0, name));
	CHECK(fdt_setprop_string(fdt, node, "device_type", "memory"));
	CHECK(prop_reg(fdt, node, m->ram.base, m->ram.size));

	CHECK(add_cpus(m, fdt));

	CHECK(soc = fdt_add_subnode(fdt, 0, "soc"));
	CHECK(fdt_setprop_u32(fdt, soc, "#address-cells", 2));
	CHECK(fdt_setprop_u32(fdt, soc, "#size-cells", 2));
	CHECK(fdt_setprop_string(fdt, soc, "compatible", "simple-bus"));
	CHECK(fdt_setprop(fdt, soc, "ranges", NULL, 0));
	/* Reverse registration order, so nodes end up in address order. */
	for (unsigned i = m->ndevices; i-- > 0;) {
		const device_t *d = &m->devices[i];

		if (d->ops->fdt) {
			/* Offsets move as nodes are added: look /soc up again. */
			soc = fdt_path_offset(fdt, "/soc");
			if (soc < 0) {
				rc = soc;
				goto fail;
			}
			rc = d->ops->fdt(d->dev, fdt, soc, m);
			if (rc < 0) {
				snprintf(err, errlen, "device tree: %s: %s", d->name,
					 fdt_strerror(rc));
				free(fdt);
				return -1;
			}
		}
	}
	CHECK(fdt_pack(fdt));
	free(m->fdt);
	m->fdt = fdt;
	m->fdt_size = fdt_totalsize(fdt);
	return 0;
fail:
	snprintf(err, errlen, "device tree: %s", fdt_strerror(rc));
	free(fdt);
	return -1;
}
