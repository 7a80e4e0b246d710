/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a UNIX socket speaking a protocol shaped like QEMU's
 * QMP (docs/control-protocol.md). One JSON object per line; requests
 * {"execute": NAME, "arguments": {...}, "id": ...}, answers {"return": ...}
 * or {"error": {"class", "desc"}}, and asynchronous {"event": ...} lines.
 *
 * This file knows nothing about the machine: what a command does to the VM
 * goes through control_ops_t, so the protocol can be tested on its own.
 */
#ifndef TERN_CONTROL_H
#define TERN_CONTROL_H

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_LINE_MAX 65536		/* bytes of one request, without '\n' */
#define CONTROL_OUT_MAX (1u << 20)	/* unread output before a client is dropped */

/* Arguments of migrate, checked and with defaults filled in. */
typedef struct control_migrate_args {
	const char *uri;		/* tcp:HOST:PORT or file:PATH */
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
} control_ops_t;

typedef struct control_client {
	int fd;			/* -1: slot free */
	bool negotiated;	/* qmp_capabilities done */
	bool discarding;	/* skipping the rest of an overlong line */
	char *in;		/* CONTROL_LINE_MAX + 1 bytes */
	size_t in_len;
	char *out;
	size_t out_len, out_cap;
} control_client_t;

typedef struct control {
	int listen_fd;		/* -1 when not listening */
	char *path;		/* socket file, removed on close */
	const control_ops_t *ops;
	void *opaque;
	control_client_t clients[CONTROL_MAX_CLIENTS];
} control_t;

/* Sets up a server without a socket (clients come from control_add_client). */
void control_init(control_t *c, const control_ops_t *ops, void *opaque);

/*
 * Listens on the UNIX socket path. A stale socket file (nobody listening)
 * is replaced; a live one, or a file that is not a socket, is refused.
 * Returns 0 or -1 with a one-line reason in err.
 */
int control_listen(control_t *c, const char *path, char *err, size_t errlen);

/* Flushes pending answers (briefly), closes every client, removes the socket. */
void control_close(control_t *c);

/*
 * Before exiting on its own (after a migration): flushes, ends every
 * client's input direction with shutdown(SHUT_WR) and reads (discarding)
 * until the client closes or ms pass, so a request a client sends in the
 * meantime still reaches a live socket and the client reads every event
 * before end of file.
 */
void control_linger(control_t *c, int ms);

/* Adopts a connected stream socket as a client and greets it. 0 or -1. */
int control_add_client(control_t *c, int fd);

/* Number of connected clients. */
unsigned control_nclients(const control_t *c);

/* Fills pfds with what to wait for; returns how many. */
int control_pollfds(control_t *c, struct pollfd *pfds, int max);
/* Handles readiness reported for those fds (other fds are ignored). */
void control_handle(control_t *c, const struct pollfd *pfds, int n);

/*
 * Sends {"timestamp": ..., "event": name, "data": data} to every client that
 * finished capabilities negotiation. Steals the reference to data (may be
 * NULL: no "data" member, as QMP does for STOP and RESUME).
 */
void control_event(control_t *c, const char *name, json_t *data);

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
