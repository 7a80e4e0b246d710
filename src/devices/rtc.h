/* SPDX-License-Identifier: MIT */
/*
 * Goldfish RTC (Android emulator's real-time clock, as on QEMU's virt
 * board): nanoseconds since the epoch plus a one-shot alarm interrupt.
 */
#ifndef TERN_RTC_H
#define TERN_RTC_H

#include <stdint.h>

#include "machine/machine.h"

#define RTC_SIZE 0x1000ull

/*
 * Guest-visible state. The guest's time is host CLOCK_REALTIME plus
 * offset_ns, so a clock the guest set keeps its distance from the host's
 * wall clock, across migration too.
 */
typedef struct rtc_state {
	uint64_t offset_ns;	/* two's complement, added to host time */
	uint64_t alarm_ns;	/* alarm time, in guest time */
	uint32_t time_high;	/* latched by reading TIME_LOW */
	uint32_t irq_enabled;	/* 0 or 1 */
	uint32_t alarm_running; /* 0 or 1 */
	uint32_t irq_pending;	/* 0 or 1 */
} rtc_state_t;

extern const state_desc_t rtc_state_desc;

struct rtc {
	rtc_state_t s;
	machine_t *m;
	uint64_t base;
	unsigned irq;
};

/* Creates the RTC on PLIC source irq, registers it, sets m->rtc. */
struct rtc *rtc_new(machine_t *m, uint64_t base, unsigned irq);

/* Fires the alarm once its time has come; called from the run loop. */
void rtc_update(struct rtc *r);

/* Guest time in ns since the epoch. */
uint64_t rtc_time_ns(const struct rtc *r);

#endif
