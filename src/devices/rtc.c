// SPDX-License-Identifier: MIT
/*
 * Goldfish RTC, register layout and semantics from the Android emulator's
 * GOLDFISH-VIRTUAL-HARDWARE.TXT and QEMU's goldfish_rtc model, which Linux's
 * rtc-goldfish driver programs:
 *
 *   0x00 TIME_LOW        R: low 32 bits of the time in ns, latches the high
 *                        32 bits; W: sets the low 32 bits of the time
 *   0x04 TIME_HIGH       R: the latched high bits; W: sets the high bits
 *   0x08 ALARM_LOW       W: sets the low bits of the alarm and arms it
 *   0x0c ALARM_HIGH      W: sets the high bits of the alarm (write first)
 *   0x10 IRQ_ENABLED     R/W: 1 lets a fired alarm raise the line
 *   0x14 CLEAR_ALARM     W: disarms the alarm
 *   0x18 ALARM_STATUS    R: 1 while an alarm is armed
 *   0x1c CLEAR_INTERRUPT W: lowers the interrupt
 */
#include "devices/rtc.h"

#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum {
	RTC_TIME_LOW = 0x00,
	RTC_TIME_HIGH = 0x04,
	RTC_ALARM_LOW = 0x08,
	RTC_ALARM_HIGH = 0x0c,
	RTC_IRQ_ENABLED = 0x10,
	RTC_CLEAR_ALARM = 0x14,
	RTC_ALARM_STATUS = 0x18,
	RTC_CLEAR_INTERRUPT = 0x1c,
};

static int rtc_check(const void *obj, char *err, size_t errlen)
{
	const rtc_state_t *s = obj;

	if (s->irq_enabled > 1 || s->alarm_running > 1 || s->irq_pending > 1) {
		snprintf(err, errlen, "rtc: bad flag value");
		return -1;
	}
	return 0;
}

static const state_field_t rtc_fields[] = {
	STATE_U64(rtc_state_t, offset_ns),
	STATE_U64(rtc_state_t, alarm_ns),
	STATE_U32(rtc_state_t, time_high),
	STATE_U32(rtc_state_t, irq_enabled),
	STATE_U32(rtc_state_t, alarm_running),
	STATE_U32(rtc_state_t, irq_pending),
};

const state_desc_t rtc_state_desc = {
	.name = "rtc",
	.version = 1,
	.min_version = 1,
	.size = sizeof(rtc_state_t),
	.fields = rtc_fields,
	.nfields = STATE_NFIELDS(rtc_fields),
	.check = rtc_check,
};

static uint64_t rtc_host_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rtc_time_ns(const struct rtc *r)
{
	return rtc_host_ns() + r->s.offset_ns; /* wraps like the counter */
}

/* Moves the guest clock so that it reads `now` at this instant. */
static void rtc_set_time(struct rtc *r, uint64_t now)
{
	r->s.offset_ns = now - rtc_host_ns();
}

static void rtc_update_irq(struct rtc *r)
{
	machine_set_irq(r->m, r->irq, r->s.irq_pending && r->s.irq_enabled);
}

static void rtc_fire(struct rtc *r)
{
	r->s.alarm_running = 0;
	r->s.irq_pending = 1;
	rtc_update_irq(r);
}

void rtc_update(struct rtc *r)
{
	if (r->s.alarm_running && rtc_time_ns(r) >= r->s.alarm_ns)
		rtc_fire(r);
}

static uint64_t rtc_read(void *dev, uint64_t off, unsigned size)
{
	struct rtc *r = dev;
	uint64_t now;

	if (size != 4)
		return 0;
	switch (off) {
	case RTC_TIME_LOW:
		now = rtc_time_ns(r);
		r->s.time_high = (uint32_t)(now >> 32);
		return (uint32_t)now;
	case RTC_TIME_HIGH:
		return r->s.time_high;
	case RTC_ALARM_LOW:
		return (uint32_t)r->s.alarm_ns;
	case RTC_ALARM_HIGH:
		return r->s.alarm_ns >> 32;
	case RTC_IRQ_ENABLED:
		return r->s.irq_enabled;
	case RTC_ALARM_STATUS:
		return r->s.alarm_running;
	default:
		return 0;
	}
}

static void rtc_write(void *dev, uint64_t off, uint64_t val, unsigned size)
{
	struct rtc *r = dev;
	uint32_t v = (uint32_t)val;
	uint64_t now;

	if (size != 4)
		return;
	switch (off) {
	case RTC_TIME_LOW:
		now = rtc_time_ns(r);
		rtc_set_time(r, (now & ~0xffffffffull) | v);
		break;
	case RTC_TIME_HIGH:
		now = rtc_time_ns(r);
		rtc_set_time(r, (now & 0xffffffffull) | (uint64_t)v << 32);
		break;
	case RTC_ALARM_LOW:
		r->s.alarm_ns = (r->s.alarm_ns & ~0xffffffffull) | v;
		/* An alarm already in the past fires at once. */
		if (r->s.alarm_ns <= rtc_time_ns(r)) {
			rtc_fire(r);
		} else {
			r->s.alarm_running = 1;
		}
		break;
	case RTC_ALARM_HIGH:
		r->s.alarm_ns = (r->s.alarm_ns & 0xffffffffull) | (uint64_t)v
									  << 32;
		break;
	case RTC_IRQ_ENABLED:
		r->s.irq_enabled = v & 1;
		rtc_update_irq(r);
		break;
	case RTC_CLEAR_ALARM:
		r->s.alarm_running = 0;
		break;
	case RTC_CLEAR_INTERRUPT:
		r->s.irq_pending = 0;
		rtc_update_irq(r);
		break;
	default:
		break;
	}
}

static int rtc_fdt(void *dev, void *fdt, int soc, machine_t *m)
{
	struct rtc *r = dev;
	fdt64_t reg[2] = {cpu_to_fdt64(r->base), cpu_to_fdt64(RTC_SIZE)};
	char name[32];
	int node, rc;

	snprintf(name, sizeof(name), "rtc@%llx", (unsigned long long)r->base);
	node = fdt_add_subnode(fdt, soc, name);
	if (node < 0)
		return node;
	if ((rc = fdt_setprop_string(fdt, node, "compatible",
				     "google,goldfish-rtc")) ||
	    (rc = fdt_setprop(fdt, node, "reg", reg, sizeof(reg))) ||
	    (rc = fdt_setprop_u32(fdt, node, "interrupts", r->irq)) ||
	    (rc = fdt_setprop_u32(fdt, node, "interrupt-parent", PHANDLE_PLIC)))
		return rc;
	return 0;
}

static int rtc_post_load(void *dev)
{
	rtc_update_irq(dev);
	return 0;
}

static void rtc_destroy(void *dev)
{
	struct rtc *r = dev;

	if (r->m->rtc == r)
		r->m->rtc = NULL;
	free(r);
}

static const device_ops_t rtc_ops = {
	.read = rtc_read,
	.write = rtc_write,
	.fdt = rtc_fdt,
	.post_load = rtc_post_load,
	.destroy = rtc_destroy,
};

struct rtc *rtc_new(machine_t *m, uint64_t base, unsigned irq)
{
	struct rtc *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->m = m;
	r->base = base;
	r->irq = irq;
	const device_t d = {
		.name = "rtc",
		.base = base,
		.size = RTC_SIZE,
		.ops = &rtc_ops,
		.dev = r,
		.state = &rtc_state_desc,
		.state_obj = &r->s,
	};

	if (machine_add_device(m, &d)) {
		free(r);
		return NULL;
	}
	m->rtc = r;
	return r;
}
