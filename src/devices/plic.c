// SPDX-License-Identifier: MIT
/*
 * Platform-level interrupt controller, following the RISC-V PLIC
 * specification 1.0.0 and the register layout of SiFive's PLIC that QEMU's
 * virt board and Linux's irq-sifive-plic driver use.
 *
 * Every source is level-triggered behind a gateway (PLIC spec, "Interrupt
 * Gateways"): while a source is claimed the gateway forwards no new request;
 * completion reopens it, and a line that is still high becomes pending
 * again. Before a claim the pending bit follows the line, as in QEMU, so an
 * interrupt the driver already serviced by polling does not linger.
 */
#include "devices/plic.h"

#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLIC_PENDING_BASE   0x1000u
#define PLIC_ENABLE_BASE    0x2000u
#define PLIC_ENABLE_STRIDE  0x80u
#define PLIC_CONTEXT_BASE   0x200000u
#define PLIC_CONTEXT_STRIDE 0x1000u

/* Interrupt lines of the harts' local interrupt controllers (mip bits). */
#define IRQ_M_EXT 11
#define IRQ_S_EXT 9

/* Bits of a bitmap word that name real sources: source 0 does not exist. */
static uint32_t plic_word_mask(unsigned w)
{
	return w == 0 ? ~1u : ~0u;
}

static int plic_check(const void *obj, char *err, size_t errlen)
{
	const plic_state_t *s = obj;

	for (unsigned i = 0; i < PLIC_NSRC; i++) {
		if (s->priority[i] & ~PLIC_PRIO_MASK ||
		    (i == 0 && s->priority[i])) {
			snprintf(err, errlen,
				 "plic: bad priority %u for source %u",
				 s->priority[i], i);
			return -1;
		}
	}
	for (unsigned c = 0; c < PLIC_MAX_CTX; c++) {
		if (s->threshold[c] & ~PLIC_PRIO_MASK) {
			snprintf(err, errlen,
				 "plic: bad threshold %u for context %u",
				 s->threshold[c], c);
			return -1;
		}
	}
	for (unsigned w = 0; w < PLIC_WORDS; w++) {
		uint32_t bad = ~plic_word_mask(w);

		if ((s->pending[w] | s->claimed[w] | s->level[w]) & bad ||
		    s->pending[w] & s->claimed[w]) {
			snprintf(err, errlen,
				 "plic: inconsistent source bitmap %u", w);
			return -1;
		}
		for (unsigned c = 0; c < PLIC_MAX_CTX; c++) {
			if (s->enable[c * PLIC_WORDS + w] & bad) {
				snprintf(err, errlen, "plic: source 0 enabled");
				return -1;
			}
		}
	}
	return 0;
}

static const state_field_t plic_fields[] = {
	STATE_U32_ARRAY(plic_state_t, priority),
	STATE_U32_ARRAY(plic_state_t, pending),
	STATE_U32_ARRAY(plic_state_t, claimed),
	STATE_U32_ARRAY(plic_state_t, level),
	STATE_U32_ARRAY(plic_state_t, enable),
	STATE_U32_ARRAY(plic_state_t, threshold),
};

const state_desc_t plic_state_desc = {
	.name = "plic",
	.version = 1,
	.min_version = 1,
	.size = sizeof(plic_state_t),
	.fields = plic_fields,
	.nfields = STATE_NFIELDS(plic_fields),
	.check = plic_check,
};

/*
 * Highest-priority source that is pending, not in service, enabled for the
 * context and above its threshold; ties go to the lowest id (PLIC spec,
 * "Interrupt Priorities"). 0 when there is none.
 */
static unsigned plic_best(const struct plic *p, unsigned ctx)
{
	const plic_state_t *s = &p->s;
	uint32_t best_prio = s->threshold[ctx];
	unsigned best = 0;

	for (unsigned w = 0; w < PLIC_WORDS; w++) {
		uint32_t bits = s->pending[w] & ~s->claimed[w] &
				s->enable[ctx * PLIC_WORDS + w] &
				plic_word_mask(w);

		while (bits) {
			unsigned src = 32 * w + (unsigned)__builtin_ctz(bits);

			bits &= bits - 1;
			if (s->priority[src] > best_prio) {
				best_prio = s->priority[src];
				best = src;
			}
		}
	}
	return best;
}

/* Drives each context's external interrupt line: MEIP or SEIP of its hart. */
static void plic_update(struct plic *p)
{
	for (unsigned ctx = 0; ctx < p->nctx; ctx++) {
		hart_t *h = &p->m->harts[ctx / 2];

		hart_set_mip(h, ctx & 1 ? MIP_SEIP : MIP_MEIP,
			     plic_best(p, ctx) != 0);
	}
}

void plic_set_irq(struct plic *p, unsigned irq, bool level)
{
	plic_state_t *s = &p->s;
	unsigned w = irq / 32;
	uint32_t bit = 1u << (irq % 32);

	if (irq == 0 || irq >= PLIC_NSRC)
		return;
	if (!!(s->level[w] & bit) == level)
		return;
	if (level)
		s->level[w] |= bit;
	else
		s->level[w] &= ~bit;
	if (!(s->claimed[w] & bit)) {
		if (level)
			s->pending[w] |= bit;
		else
			s->pending[w] &= ~bit;
	}
	plic_update(p);
}

static uint32_t plic_claim(struct plic *p, unsigned ctx)
{
	unsigned src = plic_best(p, ctx);

	if (src) {
		p->s.pending[src / 32] &= ~(1u << (src % 32));
		p->s.claimed[src / 32] |= 1u << (src % 32);
		plic_update(p);
	}
	return src;
}

static void plic_complete(struct plic *p, unsigned ctx, uint32_t src)
{
	plic_state_t *s = &p->s;
	unsigned w = src / 32;
	uint32_t bit = 1u << (src % 32);

	/* Completion of a source not enabled for the context is ignored. */
	if (src == 0 || src >= PLIC_NSRC ||
	    !(s->enable[ctx * PLIC_WORDS + w] & bit))
		return;
	s->claimed[w] &= ~bit;
	if (s->level[w] & bit)
		s->pending[w] |= bit;
	plic_update(p);
}

static uint64_t plic_read(void *dev, uint64_t off, unsigned size)
{
	struct plic *p = dev;
	const plic_state_t *s = &p->s;

	if (size != 4 || off & 3)
		return 0;
	if (off < PLIC_PENDING_BASE) {
		unsigned src = (unsigned)(off / 4);

		return src < PLIC_NSRC ? s->priority[src] : 0;
	}
	if (off < PLIC_ENABLE_BASE) {
		unsigned w = (unsigned)((off - PLIC_PENDING_BASE) / 4);

		return w < PLIC_WORDS ? s->pending[w] : 0;
	}
	if (off < PLIC_CONTEXT_BASE) {
		uint64_t rel = off - PLIC_ENABLE_BASE;
		uint64_t ctx = rel / PLIC_ENABLE_STRIDE;
		unsigned w = (unsigned)(rel % PLIC_ENABLE_STRIDE / 4);

		if (ctx >= p->nctx || w >= PLIC_WORDS)
			return 0;
		return s->enable[ctx * PLIC_WORDS + w];
	} else {
		uint64_t rel = off - PLIC_CONTEXT_BASE;
		uint64_t ctx = rel / PLIC_CONTEXT_STRIDE;

		if (ctx >= p->nctx)
			return 0;
		switch (rel % PLIC_CONTEXT_STRIDE) {
		case 0:
			return s->threshold[ctx];
		case 4:
			return plic_claim(p, (unsigned)ctx);
		default:
			return 0;
		}
	}
}

static void plic_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
	struct plic *p = dev;
	plic_state_t *s = &p->s;
	uint32_t v = (uint32_t)val;

	if (size != 4 || off & 3)
		return;
	if (off < PLIC_PENDING_BASE) {
		unsigned src = (unsigned)(off / 4);

		if (src == 0 || src >= PLIC_NSRC)
			return;
		s->priority[src] = v & PLIC_PRIO_MASK;
		plic_update(p);
	} else if (off < PLIC_ENABLE_BASE) {
		/* Pending bits are read-only here: they follow the gateways. */
	} else if (off < PLIC_CONTEXT_BASE) {
		uint64_t rel = off - PLIC_ENABLE_BASE;
		uint64_t ctx = rel / PLIC_ENABLE_STRIDE;
		unsigned w = (unsigned)(rel % PLIC_ENABLE_STRIDE / 4);

		if (ctx >= p->nctx || w >= PLIC_WORDS)
			return;
		s->enable[ctx * PLIC_WORDS + w] = v & plic_word_mask(w);
		plic_update(p);
	} else {
		uint64_t rel = off - PLIC_CONTEXT_BASE;
		uint64_t ctx = rel / PLIC_CONTEXT_STRIDE;

		if (ctx >= p->nctx)
			return;
		switch (rel % PLIC_CONTEXT_STRIDE) {
		case 0:
			s->threshold[ctx] = v & PLIC_PRIO_MASK;
			plic_update(p);
			break;
		case 4:
			plic_complete(p, (unsigned)ctx, v);
			break;
		default:
			break;
		}
	}
}

static int plic_fdt(void *dev, void *fdt, int soc, machine_t *m)
{
	struct plic *p = dev;
	static const char compat[] = "sifive,plic-1.0.0\0riscv,plic0";
	fdt32_t irqs[4 * MACHINE_MAX_HARTS];
	fdt64_t reg[2] = {cpu_to_fdt64(p->base), cpu_to_fdt64(PLIC_SIZE)};
	char name[32];
	int node, rc;

	for (unsigned h = 0; h < m->nharts; h++) {
		irqs[4 * h + 0] = cpu_to_fdt32(PHANDLE_CPU_INTC(h));
		irqs[4 * h + 1] = cpu_to_fdt32(IRQ_M_EXT);
		irqs[4 * h + 2] = cpu_to_fdt32(PHANDLE_CPU_INTC(h));
		irqs[4 * h + 3] = cpu_to_fdt32(IRQ_S_EXT);
	}
	snprintf(name, sizeof(name), "plic@%llx", (unsigned long long)p->base);
	node = fdt_add_subnode(fdt, soc, name);
	if (node < 0)
		return node;
	if ((rc = fdt_setprop(fdt, node, "compatible", compat,
			      sizeof(compat))) ||
	    (rc = fdt_setprop(fdt, node, "reg", reg, sizeof(reg))) ||
	    (rc = fdt_setprop_u32(fdt, node, "#address-cells", 0)) ||
	    (rc = fdt_setprop_u32(fdt, node, "#interrupt-cells", 1)) ||
	    (rc = fdt_setprop(fdt, node, "interrupt-controller", NULL, 0)) ||
	    (rc = fdt_setprop(fdt, node, "interrupts-extended", irqs,
			      (int)(4 * m->nharts * sizeof(irqs[0])))) ||
	    (rc = fdt_setprop_u32(fdt, node, "riscv,ndev", PLIC_NDEV)) ||
	    (rc = fdt_setprop_u32(fdt, node, "phandle", PHANDLE_PLIC)))
		return rc;
	return 0;
}

static int plic_post_load(void *dev)
{
	plic_update(dev);
	return 0;
}

static void plic_destroy(void *dev)
{
	struct plic *p = dev;

	if (p->m->plic == p)
		p->m->plic = NULL;
	free(p);
}

static const device_ops_t plic_ops = {
	.read = plic_read,
	.write = plic_write,
	.fdt = plic_fdt,
	.post_load = plic_post_load,
	.destroy = plic_destroy,
};

struct plic *plic_new(machine_t *m, uint64_t base)
{
	struct plic *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->m = m;
	p->base = base;
	p->nctx = 2 * m->nharts;
	const device_t d = {
		.name = "plic",
		.base = base,
		.size = PLIC_SIZE,
		.ops = &plic_ops,
		.dev = p,
		.state = &plic_state_desc,
		.state_obj = &p->s,
	};

	if (machine_add_device(m, &d)) {
		free(p);
		return NULL;
	}
	m->plic = p;
	return p;
}
