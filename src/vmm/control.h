/* SPDX-License-Identifier: MIT */
/*
 * tern-vmm's control socket: the VM's commands on the QMP-shaped protocol
 * of util/qmp_server (docs/control-protocol.md). The protocol (socket,
 * clients, framing, negotiation, events, linger) is c->srv, driven with
 * qmp_server_*(); this file adds the commands, the named file descriptors
 * of getfd / closefd and the atomic file output of save.
 *
 * What a command does to the VM goes through control_ops_t, so the
 * commands can be tested without a machine.
 */
#ifndef TERN_CONTROL_H
#define TERN_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/qmp_server.h"

#define CONTROL_MAX_FDS 8		/* named file descriptors (getfd) */
#define CONTROL_FDNAME_MAX 64		/* bytes of an fd's name */

/* Arguments of migrate, checked and with defaults filled in. */
typedef struct control_migrate_args {
	const char *uri;		/* tcp:HOST:PORT, file:PATH or fd:NAME */
	int fd;				/* fd:NAME: the named fd, else -1; the
					 * migrate op owns it once it returns
					 * 0 (it stays named on failure) */
	bool live;			/* default true */
	uint64_t downtime_limit_ms;	/* default 300 */
	uint64_t bandwidth_mbs;		/* MiB/s, 0 (default) = unlimited */
	uint64_t max_rounds;		/* default 30, at least 1 */
	bool give_up_abort;		/* "abort"; default "stop-copy" */
} control_migrate_args_t;

/* What the commands do to the VM; set by the monitor. */
typedef struct control_ops {
	/* QMP run state: "running", "paused", "prelaunch", "shutdown", ... */
	const char *(*status)(void *opaque);
	/* Pause / resume the VM; 0 or -1 with err set. */
	int (*stop)(void *opaque, char *err, size_t errlen);
	int (*cont)(void *opaque, char *err, size_t errlen);
	/* Ask the monitor to exit once the answer is out. */
	void (*quit)(void *opaque);
	/* Snapshot into file; sets *bytes. 0 or -1 with err set. */
	int (*save)(void *opaque, const char *file, uint64_t *bytes, char *err,
		    size_t errlen);
	/* Starts a migration in the background. 0 or -1 with err set. */
	int (*migrate)(void *opaque, const control_migrate_args_t *a, char *err,
		       size_t errlen);
	/* Cancels a running migration (nothing to do is success). */
	int (*migrate_cancel)(void *opaque, char *err, size_t errlen);
	/* The query-migrate answer (a new reference). */
	json_t *(*query_migrate)(void *opaque);
	/* The power button (system_powerdown); 0 or -1 with err set. */
	int (*system_powerdown)(void *opaque, char *err, size_t errlen);
	/* Reset the machine (system_reset); 0 or -1 with err set. */
	int (*system_reset)(void *opaque, char *err, size_t errlen);
} control_ops_t;

/* A file descriptor named by getfd (fd -1: slot free). */
typedef struct control_named_fd {
	char name[CONTROL_FDNAME_MAX + 1];
	int fd;
} control_named_fd_t;

typedef struct control {
	qmp_server_t srv;	/* the protocol: qmp_server_*(&c->srv, ...) */
	const control_ops_t *ops;
	void *opaque;
	const char *name;	/* query-name; NULL: none */
	control_named_fd_t fds[CONTROL_MAX_FDS];
} control_t;

/*
 * Sets up the server with the VM's commands, greeting as "tern-vmm X.Y.Z",
 * without a socket (qmp_server_listen / qmp_server_add_client add one).
 */
void control_init(control_t *c, const control_ops_t *ops, void *opaque);

/* The name query-name answers (kept as a pointer; NULL: none). */
void control_set_name(control_t *c, const char *name);

/* Number of file descriptors named by getfd and not yet used or closed. */
unsigned control_nfds(const control_t *c);

/* Closes the server (qmp_server_close) and every named file descriptor. */
void control_close(control_t *c);

/* Writes data to fd; 0 or -1 with err set. */
typedef int (*control_writer_t)(void *opaque, int fd, char *err, size_t errlen);

/*
 * Creates path atomically: writes into a temporary file in the same
 * directory, syncs it and renames it over path, so path is either the old
 * file or the complete new one. The file is mode 0600 (it holds guest
 * memory). Sets *bytes to its size. Returns 0 or -1 with err set.
 */
int control_write_file(const char *path, control_writer_t writer, void *opaque,
		       uint64_t *bytes, char *err, size_t errlen);

#endif
