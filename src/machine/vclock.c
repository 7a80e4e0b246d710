// SPDX-License-Identifier: MIT
#include "machine/vclock.h"

#include <string.h>
#include <time.h>

static const state_field_t vclock_fields[] = {
	STATE_U64(vclock_state_t, guest_ns),
};

const state_desc_t vclock_state_desc = {
	.name = "clock",
	.version = 1,
	.min_version = 1,
	.size = sizeof(vclock_state_t),
	.fields = vclock_fields,
	.nfields = STATE_NFIELDS(vclock_fields),
};

uint64_t vclock_host_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vclock_init(vclock_t *c)
{
	memset(c, 0, sizeof(*c));
	c->offset_ns = -(int64_t)vclock_host_ns();
}

uint64_t vclock_ns(const vclock_t *c)
{
	if (c->paused)
		return c->s.guest_ns;
	return (uint64_t)((int64_t)vclock_host_ns() + c->offset_ns);
}

void vclock_pause(vclock_t *c)
{
	if (c->paused)
		return;
	c->s.guest_ns = vclock_ns(c);
	c->paused = true;
}

void vclock_resume(vclock_t *c)
{
	if (!c->paused)
		return;
	c->offset_ns = (int64_t)c->s.guest_ns - (int64_t)vclock_host_ns();
	c->paused = false;
}

void vclock_sync_state(vclock_t *c)
{
	c->s.guest_ns = vclock_ns(c);
}

void vclock_post_load(vclock_t *c)
{
	c->paused = true;
}
