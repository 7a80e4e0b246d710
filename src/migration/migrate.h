/* SPDX-License-Identifier: MIT */
/*
 * Live migration (docs/migration-stream.md, "Live migration"): a sender
 * thread streams guest RAM in pre-copy rounds while the guest keeps running
 * on the main thread, then stops the VM for the last pages and the state,
 * and waits for the destination to confirm; a receiver thread on the
 * destination loads the stream and confirms.
 *
 * Threads. The machine belongs to the main thread, which runs the harts.
 * The migration thread owns the socket (or file) and asks the main thread,
 * between two hart_run() slices, for what only it may do: start the dirty
 * log and harvest the bitmap, pause the VM, resume it after a failure, hand
 * it over after success. migrate_pending() is a cheap check for the run
 * loop; migrate_service() does the work; migrate_wake_fd() becomes readable
 * when the thread wants something, so a sleeping main loop wakes up.
 *
 * The sender reads guest RAM while the hart writes it. A page written after
 * the harvest that covers it is marked dirty again and sent again in a later
 * round, or in the stop-and-copy phase with the VM stopped; so the copy that
 * counts is always one taken after the page's last write.
 */
#ifndef TERN_MIGRATE_H
#define TERN_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/machine.h"

/* Status, as query-migrate and the MIGRATION event name it (QMP words). */
enum migrate_status {
	MIGRATE_NONE,
	MIGRATE_SETUP,
	MIGRATE_ACTIVE,
	MIGRATE_DEVICE,		/* VM stopped: last pages and state */
	MIGRATE_COMPLETED,
	MIGRATE_FAILED,
	MIGRATE_CANCELLED,
};

const char *migrate_status_name(enum migrate_status st);

enum migrate_give_up {
	MIGRATE_GIVE_UP_STOP_COPY,	/* stop and copy anyway */
	MIGRATE_GIVE_UP_ABORT,		/* fail: "did not converge" */
};

#define MIGRATE_DEFAULT_DOWNTIME_MS 300
#define MIGRATE_DEFAULT_MAX_ROUNDS 30
#define MIGRATE_DEFAULT_MAX_TIME_MS 60000
#define MIGRATE_DEFAULT_IO_TIMEOUT_MS 30000

typedef struct migrate_params {
	bool live;		/* false: pause first, then send */
	uint64_t downtime_ms;	/* stop-and-copy when the rest fits this */
	uint64_t bandwidth;	/* bytes per second, 0 = unlimited */
	unsigned max_rounds;	/* pre-copy rounds before giving up */
	uint64_t max_time_ms;	/* pre-copy time before giving up */
	enum migrate_give_up give_up;
	unsigned io_timeout_ms;	/* every socket read and write */
	const char *domain;	/* domain config sent as the DOMAIN record;
				 * NULL: none. Copied by migrate_start. */
} migrate_params_t;

void migrate_params_default(migrate_params_t *p);

enum migrate_decision {
	MIGRATE_CONTINUE,	/* another pre-copy round */
	MIGRATE_STOP_COPY,	/* pause, send the rest */
	MIGRATE_ABORT,		/* give up: the migration fails */
};

/*
 * The policy after pre-copy round `rounds` (1-based): `remaining` dirty
 * bytes, the measured bandwidth in bytes per second (0: unknown), time
 * since the migration started.
 */
enum migrate_decision migrate_policy(const migrate_params_t *p,
				     uint64_t remaining, double bytes_per_s,
				     unsigned rounds, uint64_t elapsed_ms);

/* Progress, for query-migrate. Times in ms, sizes in bytes. */
typedef struct migrate_info {
	enum migrate_status status;
	bool incoming;
	uint64_t total_time, setup_time, downtime, expected_downtime;
	uint64_t transferred, remaining, total;
	uint64_t duplicate;	/* zero pages (flags, or left out) */
	uint64_t normal;	/* pages sent with data */
	uint64_t normal_bytes;
	uint64_t dirty_pages_rate;	/* pages per second, last round */
	double mbps;		/* megabits per second, whole migration */
	uint64_t dirty_sync_count;	/* pre-copy rounds done */
	char error[256];
} migrate_info_t;

enum migrate_event_kind {
	MIGRATE_EV_STATUS,	/* value: enum migrate_status */
	MIGRATE_EV_PASS,	/* value: pre-copy round just finished */
};

typedef struct migrate_event {
	enum migrate_event_kind kind;
	unsigned value;
} migrate_event_t;

/* What the main thread does on the migration thread's behalf. */
typedef struct migrate_hooks {
	/* Stop the harts and the clock; they stay stopped until resume. */
	void (*pause)(void *opaque);
	/* Undo pause (the migration failed or was cancelled). */
	void (*resume)(void *opaque);
	/* Source: the destination runs the VM now; this one must not. */
	void (*handed_over)(void *opaque);
	/* Destination: the VM is loaded and confirmed (ok), or failed. */
	void (*incoming_done)(void *opaque, bool ok, const char *err);
	/*
	 * Destination, optional: everything is loaded and COMMITTED is about
	 * to be sent. -1 (err set) fails the migration instead: the source
	 * is told (REFUSE) and keeps its VM.
	 */
	int (*incoming_commit)(void *opaque, char *err, size_t errlen);
} migrate_hooks_t;

typedef struct migrate migrate_t;

/*
 * Starts migrating m to uri ("tcp:HOST:PORT" or "file:PATH"; a file
 * migration is always offline). Returns at once; the work happens in a
 * thread. 0, or -1 with a reason (bad uri, out of resources).
 */
int migrate_start(migrate_t **out, machine_t *m, const char *uri,
		  const migrate_params_t *p, const migrate_hooks_t *hooks,
		  void *opaque, char *err, size_t errlen);

/*
 * Migrates m over fd, an open file descriptor given by the caller (QMP's
 * fd:NAME; what names it in messages). A connected stream socket is used
 * as tcp: is (live or offline, with the back channel); a regular file or a
 * pipe as file: is (always offline, no back channel; written from its
 * current position, nothing renamed). 0 when started: fd belongs to the
 * migration from then on; -1 with a reason, and fd still the caller's.
 */
int migrate_start_fd(migrate_t **out, machine_t *m, int fd, const char *what,
		     const migrate_params_t *p, const migrate_hooks_t *hooks,
		     void *opaque, char *err, size_t errlen);

/*
 * Destination: the socket of an incoming uri, or -1 with a reason.
 * "tcp:ADDR:PORT" listens there. "fd:N" checks that the inherited file
 * descriptor N is an open stream socket, marks it close-on-exec and
 * returns N (call this before opening anything else).
 */
int migrate_incoming_listen(const char *uri, char *err, size_t errlen);

/*
 * Destination: fd is either a listening socket, on which one connection
 * is accepted (then it is closed), or an already connected stream socket
 * (--incoming fd:N), used as it is. The migration takes fd over; it loads
 * the stream into m (built from the same options, never run), confirms.
 */
int migrate_incoming_start(migrate_t **out, machine_t *m, int fd,
			   unsigned io_timeout_ms, const migrate_hooks_t *hooks,
			   void *opaque, char *err, size_t errlen);

/*
 * Destination, once the incoming migration completed: the domain config
 * the stream carried (malloc'd, the caller frees it), or NULL when it had
 * none. Later calls return NULL.
 */
char *migrate_incoming_domain(migrate_t *mg);

/* Readable when the migration thread wants the main thread. */
int migrate_wake_fd(const migrate_t *mg);
/* True when a request waits for migrate_service() (cheap). */
bool migrate_pending(migrate_t *mg);
/* Main thread, no hart inside hart_run(): performs a waiting request. */
void migrate_service(migrate_t *mg);
/* Next status change or pass for the control socket; false when none. */
bool migrate_next_event(migrate_t *mg, migrate_event_t *ev);
void migrate_get_info(migrate_t *mg, migrate_info_t *info);
/* True until the thread has reached a final status. */
bool migrate_running(migrate_t *mg);

/*
 * Cancels: the thread notices within a page batch (a blocked socket call
 * is broken with shutdown()); the VM keeps running. Too late once the
 * stream's END is out (the destination may already be committing).
 */
void migrate_cancel(migrate_t *mg);

/*
 * Main thread, leaving (quit, reset, poweroff): stops the thread without
 * serving further requests and joins it. Events stay readable.
 */
void migrate_stop(migrate_t *mg);
/* Stops if needed, then frees. */
void migrate_free(migrate_t *mg);

#endif
