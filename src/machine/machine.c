// SPDX-License-Identifier: MIT
#include "machine/machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/clint.h"
#include "devices/plic.h"
#include "devices/rtc.h"

int machine_init(machine_t *m, uint64_t ram_bytes, unsigned nharts, char *err,
		 size_t errlen)
{
	memset(m, 0, sizeof(*m));
	if (nharts < 1 || nharts > MACHINE_MAX_HARTS) {
		snprintf(err, errlen, "this build supports 1 to %d harts",
			 MACHINE_MAX_HARTS);
		return -1;
	}
	if (ram_init(&m->ram, MEM_RAM_BASE, ram_bytes, err, errlen))
		return -1;
	vclock_init(&m->clock);
	m->nharts = nharts;
	for (unsigned i = 0; i < nharts; i++)
		hart_init(&m->harts[i], m, &m->ram, i);
	snprintf(m->isa, sizeof(m->isa), "rv64imafdc_zicntr_zicsr_zifencei_zihintpause_sstc");
	return 0;
}

void machine_destroy(machine_t *m)
{
	for (unsigned i = m->ndevices; i-- > 0;) {
		device_t *d = &m->devices[i];

		if (d->ops && d->ops->destroy)
			d->ops->destroy(d->dev);
	}
	m->ndevices = 0;
	free(m->fdt);
	m->fdt = NULL;
	ram_free(&m->ram);
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* A state-only entry: a section of its own, no address range (device.h). */
static bool state_only_ok(const device_t *d)
{
	return d->base == 0 && !d->ops->read && !d->ops->write && d->state &&
	       d->state_obj;
}

int machine_add_device(machine_t *m, const device_t *d)
{
	if (m->ndevices >= MACHINE_MAX_DEVICES || !d->name || !d->name[0] ||
	    !d->ops)
		return -1;
	if (d->size == 0) {
		if (!state_only_ok(d))
			return -1;
	} else if (d->base + d->size < d->base ||
		   ranges_overlap(d->base, d->size, m->ram.base, m->ram.size)) {
		return -1;
	}
	for (unsigned i = 0; i < m->ndevices; i++) {
		const device_t *o = &m->devices[i];

		if (!strcmp(d->name, o->name))
			return -1;
		/* State-only entries have no range to conflict over. */
		if (d->size && o->size &&
		    ranges_overlap(d->base, d->size, o->base, o->size))
			return -1;
	}
	m->devices[m->ndevices++] = *d;
	return 0;
}

/*
 * Linear, in registration order. A state-only entry (size 0) never
 * matches: no offset is below its size.
 */
const device_t *machine_find_device(const machine_t *m, uint64_t pa,
				    unsigned size)
{
	for (unsigned i = 0; i < m->ndevices; i++) {
		const device_t *d = &m->devices[i];

		if (pa >= d->base && pa - d->base < d->size &&
		    size <= d->size - (pa - d->base))
			return d;
	}
	return NULL;
}

bool machine_mmio_read(machine_t *m, uint64_t pa, unsigned size, uint64_t *val)
{
	const device_t *d = machine_find_device(m, pa, size);

	if (!d)
		return false;
	*val = d->ops->read ? d->ops->read(d->dev, pa - d->base, size) : 0;
	return true;
}

bool machine_mmio_write(machine_t *m, uint64_t pa, unsigned size, uint64_t val)
{
	const device_t *d = machine_find_device(m, pa, size);

	if (!d)
		return false;
	if (d->ops->write)
		d->ops->write(d->dev, pa - d->base, val, size);
	return true;
}

void machine_set_irq(machine_t *m, unsigned irq, bool level)
{
	if (m->plic)
		plic_set_irq(m->plic, irq, level);
}

void machine_request_stop(machine_t *m, enum power_request why)
{
	if (why != POWER_RUN && m->power == POWER_RUN)
		m->power = why;
	for (unsigned i = 0; i < m->nharts; i++)
		m->harts[i].stop = true;
}

uint64_t machine_time(const machine_t *m)
{
	return vclock_ns(&m->clock) / (1000000000ull / TIMEBASE_HZ);
}

void machine_update_timers(machine_t *m)
{
	uint64_t now = machine_time(m);

	for (unsigned i = 0; i < m->nharts; i++) {
		hart_t *h = &m->harts[i];

		/* Sstc (and the SBI timer, which tern maps onto it). */
		if (h->sbi_builtin || (h->s.menvcfg >> 63))
			hart_set_mip(h, MIP_STIP, now >= h->s.stimecmp);
	}
	if (m->clint)
		clint_update(m->clint);
	if (m->rtc)
		rtc_update(m->rtc);
}

uint64_t machine_next_deadline(const machine_t *m)
{
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; i < m->nharts; i++) {
		const hart_t *h = &m->harts[i];

		if ((h->sbi_builtin || (h->s.menvcfg >> 63)) &&
		    h->s.stimecmp < next)
			next = h->s.stimecmp;
	}
	if (m->clint) {
		uint64_t c = clint_next_deadline(m->clint);

		if (c < next)
			next = c;
	}
	return next;
}
