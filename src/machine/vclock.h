/* SPDX-License-Identifier: MIT */
/*
 * The guest's virtual clock (ARCHITECTURE.md rule 4): guest time is host
 * monotonic time plus an offset, frozen while the VM is paused. Saving the
 * guest time and choosing the offset on load makes time continue without a
 * jump backwards; the pause shows as a short stall.
 */
#ifndef TERN_VCLOCK_H
#define TERN_VCLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "machine/state.h"

typedef struct vclock_state {
	uint64_t guest_ns;	/* guest time when saved/paused */
} vclock_state_t;

typedef struct vclock {
	vclock_state_t s;
	int64_t offset_ns;	/* guest_ns = host_ns + offset_ns */
	bool paused;
} vclock_t;

extern const state_desc_t vclock_state_desc;

uint64_t vclock_host_ns(void);
/* Starts at guest time 0, running. */
void vclock_init(vclock_t *c);
uint64_t vclock_ns(const vclock_t *c);
void vclock_pause(vclock_t *c);
void vclock_resume(vclock_t *c);
/* Before save: records the current guest time in c->s. */
void vclock_sync_state(vclock_t *c);
/* After load: continues from c->s.guest_ns (paused until resumed). */
void vclock_post_load(vclock_t *c);

#endif
