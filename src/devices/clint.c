// SPDX-License-Identifier: MIT
/*
 * Core-local interruptor with SiFive's register layout (also the layout of
 * the RISC-V ACLINT MSWI + MTIMER devices): msip words at 0x0, 64-bit
 * mtimecmp per hart at 0x4000, mtime at 0xbff8. MTIP is level: it stays set
 * while mtime >= mtimecmp (privileged spec 3.2.1, "Machine Timer Registers").
 *
 * mtime is the machine's virtual clock, which is also the time CSR; writes
 * to it are ignored so the two can never disagree.
 */
#include "devices/clint.h"

#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>

#define CLINT_MSIP     0x0000u
#define CLINT_MTIMECMP 0x4000u
#define CLINT_MTIME    0xbff8u

/* Local interrupt numbers on the harts' interrupt controllers. */
#define IRQ_M_SOFT  3
#define IRQ_M_TIMER 7

static int clint_check(const void *obj, char *err, size_t errlen)
{
	const clint_state_t *s = obj;

	for (unsigned h = 0; h < MACHINE_MAX_HARTS; h++) {
		if (s->msip[h] > 1) {
			snprintf(err, errlen, "clint: bad msip %u for hart %u",
				 s->msip[h], h);
			return -1;
		}
	}
	return 0;
}

static const state_field_t clint_fields[] = {
	STATE_U64_ARRAY(clint_state_t, mtimecmp),
	STATE_U32_ARRAY(clint_state_t, msip),
};

const state_desc_t clint_state_desc = {
	.name = "clint",
	.version = 1,
	.min_version = 1,
	.size = sizeof(clint_state_t),
	.fields = clint_fields,
	.nfields = STATE_NFIELDS(clint_fields),
	.check = clint_check,
};

static void clint_update_hart(struct clint *c, unsigned h, uint64_t now)
{
	hart_t *hart = &c->m->harts[h];

	hart_set_mip(hart, MIP_MTIP, now >= c->s.mtimecmp[h]);
	hart_set_mip(hart, MIP_MSIP, c->s.msip[h] & 1);
}

void clint_update(struct clint *c)
{
	uint64_t now = machine_time(c->m);

	for (unsigned h = 0; h < c->m->nharts; h++)
		clint_update_hart(c, h, now);
}

uint64_t clint_next_deadline(const struct clint *c)
{
	uint64_t now = machine_time(c->m), next = UINT64_MAX;

	for (unsigned h = 0; h < c->m->nharts; h++) {
		uint64_t t = c->s.mtimecmp[h];

		if (t > now && t < next)
			next = t;
	}
	return next;
}

/* 32-bit halves and whole 64-bit registers, naturally aligned. */
static bool clint_access_ok(uint64_t off, unsigned size)
{
	return (size == 4 || size == 8) && !(off & (size - 1));
}

static uint64_t clint_read(void *dev, uint64_t off, unsigned size)
{
	struct clint *c = dev;
	uint64_t v;

	if (!clint_access_ok(off, size))
		return 0;
	if (off < CLINT_MTIMECMP) {
		uint64_t h = off / 4;

		return size == 4 && h < c->m->nharts ? c->s.msip[h] : 0;
	}
	if (off >= CLINT_MTIMECMP && off < CLINT_MTIMECMP + 8 * c->m->nharts)
		v = c->s.mtimecmp[(off - CLINT_MTIMECMP) / 8];
	else if (off >= CLINT_MTIME && off < CLINT_MTIME + 8)
		v = machine_time(c->m);
	else
		return 0;
	if (size == 8)
		return v;
	return off & 4 ? v >> 32 : (uint32_t)v;
}

static void clint_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
	struct clint *c = dev;

	if (!clint_access_ok(off, size))
		return;
	if (off < CLINT_MTIMECMP) {
		uint64_t h = off / 4;

		if (size == 4 && h < c->m->nharts) {
			c->s.msip[h] = val & 1;
			clint_update_hart(c, (unsigned)h, machine_time(c->m));
		}
	} else if (off < CLINT_MTIMECMP + 8 * c->m->nharts) {
		unsigned h = (unsigned)((off - CLINT_MTIMECMP) / 8);
		uint64_t *cmp = &c->s.mtimecmp[h];

		if (size == 8)
			*cmp = val;
		else if (off & 4)
			*cmp = (*cmp & 0xffffffffull) | val << 32;
		else
			*cmp = (*cmp & ~0xffffffffull) | (uint32_t)val;
		clint_update_hart(c, h, machine_time(c->m));
	}
}

static int clint_fdt(void *dev, void *fdt, int soc, machine_t *m)
{
	struct clint *c = dev;
	static const char compat[] = "sifive,clint0\0riscv,clint0";
	fdt32_t irqs[4 * MACHINE_MAX_HARTS];
	fdt64_t reg[2] = {cpu_to_fdt64(c->base), cpu_to_fdt64(CLINT_SIZE)};
	char name[32];
	int node, rc;

	for (unsigned h = 0; h < m->nharts; h++) {
		irqs[4 * h + 0] = cpu_to_fdt32(PHANDLE_CPU_INTC(h));
		irqs[4 * h + 1] = cpu_to_fdt32(IRQ_M_SOFT);
		irqs[4 * h + 2] = cpu_to_fdt32(PHANDLE_CPU_INTC(h));
		irqs[4 * h + 3] = cpu_to_fdt32(IRQ_M_TIMER);
	}
	snprintf(name, sizeof(name), "clint@%llx", (unsigned long long)c->base);
	node = fdt_add_subnode(fdt, soc, name);
	if (node < 0)
		return node;
	if ((rc = fdt_setprop(fdt, node, "compatible", compat,
			      sizeof(compat))) ||
	    (rc = fdt_setprop(fdt, node, "reg", reg, sizeof(reg))) ||
	    (rc = fdt_setprop(fdt, node, "interrupts-extended", irqs,
			      (int)(4 * m->nharts * sizeof(irqs[0])))))
		return rc;
	return 0;
}

static int clint_post_load(void *dev)
{
	clint_update(dev);
	return 0;
}

static void clint_destroy(void *dev)
{
	struct clint *c = dev;

	if (c->m->clint == c)
		c->m->clint = NULL;
	free(c);
}

static const device_ops_t clint_ops = {
	.read = clint_read,
	.write = clint_write,
	.fdt = clint_fdt,
	.post_load = clint_post_load,
	.destroy = clint_destroy,
};

struct clint *clint_new(machine_t *m, uint64_t base)
{
	struct clint *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->m = m;
	c->base = base;
	/* Reset value is unspecified; "never" keeps MTIP clear until set. */
	for (unsigned h = 0; h < MACHINE_MAX_HARTS; h++)
		c->s.mtimecmp[h] = UINT64_MAX;
	const device_t d = {
		.name = "clint",
		.base = base,
		.size = CLINT_SIZE,
		.ops = &clint_ops,
		.dev = c,
		.state = &clint_state_desc,
		.state_obj = &c->s,
	};

	if (machine_add_device(m, &d)) {
		free(c);
		return NULL;
	}
	m->clint = c;
	return c;
}
