/* SPDX-License-Identifier: MIT */
/*
 * A client of the QMP-shaped control protocol (docs/control-protocol.md)
 * that tern-vmm and ternd speak: connect to a UNIX socket, negotiate, send
 * commands and read their answers; events are queued for the caller.
 * Every wait is bounded by the timeout given at connect.
 */
#ifndef TERN_QMP_CLIENT_H
#define TERN_QMP_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct qmp_client qmp_client_t;

/*
 * Connects to path, reads the greeting, sends qmp_capabilities.
 * timeout_ms bounds each later wait for an answer (0: 30 s).
 * NULL with err set ("cannot connect to PATH: reason", ...).
 */
qmp_client_t *qmp_connect(const char *path, unsigned timeout_ms, char *err,
			  size_t errlen);
void qmp_close(qmp_client_t *q);

/* The greeting's "QMP" object (borrowed). */
json_t *qmp_greeting(qmp_client_t *q);

/*
 * Runs cmd with args (stolen; may be NULL) and waits for its answer; events
 * that arrive meanwhile are queued. Returns the "return" value (a new
 * reference), or NULL with err set to the server's "desc" (for an error
 * answer) or the transport failure.
 */
json_t *qmp_call(qmp_client_t *q, const char *cmd, json_t *args, char *err,
		 size_t errlen);

/*
 * As qmp_call, also passing fd with SCM_RIGHTS alongside the request
 * (tern-vmm's getfd).
 */
json_t *qmp_call_fd(qmp_client_t *q, const char *cmd, json_t *args, int fd,
		    char *err, size_t errlen);

/* The socket, for poll(): readable when events (or EOF) may be read. */
int qmp_fd(const qmp_client_t *q);

/*
 * Reads what is available without blocking and queues events. Returns 0,
 * or -1 when the server has closed the connection or it failed.
 */
int qmp_pump(qmp_client_t *q);

/* Next queued event (a new reference; the whole event object), or NULL. */
json_t *qmp_next_event(qmp_client_t *q);

/*
 * Waits up to timeout_ms for an event (any, or named name when not NULL,
 * dropping others), returning it; NULL on timeout or EOF.
 */
json_t *qmp_wait_event(qmp_client_t *q, const char *name, unsigned timeout_ms);

/*
 * Additions used by the tern CLI and the unit test.
 *
 * qmp_unix_connect: a connected UNIX stream socket (close-on-exec) to path,
 * the connect bounded by timeout_ms (0: 30 s); -1 with err "cannot connect
 * to PATH: reason" and errno the cause (ENOENT, ECONNREFUSED, ...), so a
 * caller can phrase its own message.
 *
 * qmp_open_fd: as qmp_connect on an already connected stream socket, which
 * it takes over (closed on failure too); name stands for the server in
 * messages ("connection closed by NAME").
 *
 * qmp_set_timeout: changes the bound of later waits (0: 30 s), e.g. for a
 * command known to take long.
 */
int qmp_unix_connect(const char *path, unsigned timeout_ms, char *err,
		     size_t errlen);
qmp_client_t *qmp_open_fd(int fd, const char *name, unsigned timeout_ms,
			  char *err, size_t errlen);
void qmp_set_timeout(qmp_client_t *q, unsigned timeout_ms);

#endif
