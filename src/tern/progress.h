/* SPDX-License-Identifier: MIT */
/*
 * tern migrate's progress: follows ternd's query-migrate until the
 * migration ends, showing it on a terminal (one line redrawn in place) or
 * as plain lines.
 */
#ifndef TERN_CLI_PROGRESS_H
#define TERN_CLI_PROGRESS_H

#include "tern/tern.h"

#define PROGRESS_POLL_MS 100
#ifndef PROGRESS_STALL_S
#define PROGRESS_STALL_S 120	/* no change in this long: stop following */
#endif

/*
 * Follows the migration of domain dom (as sent to query-migrate; name and
 * host for messages) until it completes or fails. Returns the exit status
 * (errors printed; on failure "migration of NAME to HOST failed: ERROR").
 */
int progress_follow(tern_t *t, const char *dom, const char *name,
		    const char *host);

#endif
