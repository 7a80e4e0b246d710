/* SPDX-License-Identifier: MIT */
/*
 * A server of the QMP-shaped control protocol (docs/control-protocol.md)
 * that tern-vmm and ternd both speak: a UNIX socket, one JSON object per
 * line, greeting, capabilities negotiation, {"execute", "arguments", "id"}
 * requests checked against a command table, {"return"} / {"error"} answers
 * and {"event"} lines. What the commands do is the owner's business: it
 * passes the table.
 *
 * A file descriptor sent with a request (SCM_RIGHTS) is handed to that
 * request's command, which may take it; otherwise it is closed. An fd
 * belongs to the request line holding the last byte of the sendmsg() that
 * carried it (the kernel ends a read after such a message); of several, the
 * first counts and the others are closed.
 */
#ifndef TERN_QMP_SERVER_H
#define TERN_QMP_SERVER_H

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QMP_MAX_CLIENTS 8
#define QMP_LINE_MAX 65536		/* bytes of one request, without '\n' */
#define QMP_OUT_MAX (1u << 20)		/* unread output before a client is dropped */
#define QMP_MSG_FDS 4			/* fds taken from one message */
#define QMP_PENDING_FDS 4		/* lines with an fd, not yet complete */

#define QMP_CLASS_GENERIC "GenericError"
#define QMP_CLASS_NOT_FOUND "CommandNotFound"

enum qmp_arg_type { QMP_ARG_STRING, QMP_ARG_BOOL, QMP_ARG_INT, QMP_ARG_ARRAY,
		    QMP_ARG_OBJECT };

typedef struct qmp_arg {
	const char *name;
	enum qmp_arg_type type;
	bool required;
} qmp_arg_t;

typedef struct qmp_server qmp_server_t;

/* One request being answered. */
typedef struct qmp_req {
	qmp_server_t *srv;
	json_t *args;		/* borrowed; NULL when none were given */
	int fd;			/* received with the request, or -1; set -1 to keep it */
	const char *err_class;	/* set by qmp_req_error */
	char err[512];		/* a command may also write a reason here and
				 * return NULL: the error is GenericError */
	int slot;		/* which client (for qmp_defer) */
} qmp_req_t;

/* Returns the answer (a new reference), or NULL after qmp_req_error(). */
typedef json_t *(*qmp_cmd_fn_t)(void *opaque, qmp_req_t *r);

typedef struct qmp_cmd {
	const char *name;
	qmp_cmd_fn_t fn;
	const qmp_arg_t *args;	/* NULL-name terminated; NULL = none */
} qmp_cmd_t;

/*
 * The server's own commands, for the owner's table: query-commands lists
 * the table in its order. Every table needs QMP_CMD_CAPABILITIES (only it
 * runs before negotiation).
 */
json_t *qmp_cmd_capabilities(void *opaque, qmp_req_t *r);
json_t *qmp_cmd_query_commands(void *opaque, qmp_req_t *r);
extern const qmp_arg_t qmp_capabilities_args[];
#define QMP_CMD_CAPABILITIES \
	{ "qmp_capabilities", qmp_cmd_capabilities, qmp_capabilities_args }
#define QMP_CMD_QUERY_COMMANDS { "query-commands", qmp_cmd_query_commands, NULL }

/*
 * A command that answers later returns QMP_DEFERRED after qmp_defer() gave
 * it a ticket, and answers through qmp_answer() (once).
 */
#define QMP_DEFERRED ((json_t *)(uintptr_t)1)

typedef struct qmp_ticket {
	int slot;
	uint64_t gen;
	json_t *id;		/* the request's id (owned), or NULL */
} qmp_ticket_t;

/* A received fd waiting for the request line it came with. */
typedef struct qmp_pending_fd {
	int fd;
	uint64_t line;		/* number of that line */
} qmp_pending_fd_t;

typedef struct qmp_client_slot {
	int fd;			/* -1: slot free */
	uint64_t gen;		/* tells a reused slot from the one a ticket names */
	bool negotiated;
	bool discarding;	/* skipping the rest of an overlong line */
	char *in;		/* QMP_LINE_MAX + 1 bytes */
	size_t in_len;
	uint64_t lines;		/* request lines consumed so far */
	qmp_pending_fd_t pend[QMP_PENDING_FDS];	/* one per line at most */
	unsigned npend;
	char *out;
	size_t out_len, out_cap;
} qmp_client_slot_t;

struct qmp_server {
	int listen_fd;		/* -1 when not listening */
	char *path;		/* socket file, removed on close */
	const qmp_cmd_t *cmds;
	size_t ncmds;
	json_t *greeting_version;	/* the greeting's "version" (owned) */
	void *opaque;
	uint64_t next_gen;
	const json_t *current_id;	/* while a command runs */
	qmp_client_slot_t clients[QMP_MAX_CLIENTS];
};

/*
 * Sets up a server with the owner's commands (cmds stays the owner's; it
 * must hold QMP_CMD_CAPABILITIES). version is the greeting's "version"
 * object (stolen). Commands get opaque.
 */
void qmp_server_init(qmp_server_t *s, const qmp_cmd_t *cmds, size_t ncmds,
		     json_t *version, void *opaque);

/*
 * Listens on the UNIX socket path. A stale socket file (nobody listening)
 * is replaced; a live one, or a file that is not a socket, is refused.
 * Returns 0 or -1 with a one-line reason in err.
 */
int qmp_server_listen(qmp_server_t *s, const char *path, char *err,
		      size_t errlen);

/* Flushes pending answers (briefly), closes every client, removes the socket. */
void qmp_server_close(qmp_server_t *s);

/*
 * Flushes, ends every client's input direction with shutdown(SHUT_WR) and
 * reads (discarding) until the client closes or ms pass, so a client reads
 * every event before end of file.
 */
void qmp_server_linger(qmp_server_t *s, int ms);

/* Adopts a connected stream socket as a client and greets it. 0 or -1. */
int qmp_server_add_client(qmp_server_t *s, int fd);

unsigned qmp_server_nclients(const qmp_server_t *s);

/* Fills pfds with what to wait for; returns how many. */
int qmp_server_pollfds(qmp_server_t *s, struct pollfd *pfds, int max);
/* Handles readiness reported for those fds (other fds are ignored). */
void qmp_server_handle(qmp_server_t *s, const struct pollfd *pfds, int n);

/*
 * Sends {"timestamp", "event": name, "data": data} to every negotiated
 * client. Steals data (may be NULL: no "data" member).
 */
void qmp_server_event(qmp_server_t *s, const char *name, json_t *data);

/* Sets r's error (class GenericError unless cls is given). */
void qmp_req_error(qmp_req_t *r, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A command's arguments, already checked against its table (so of the
 * declared type when present): a string (NULL when absent), a bool (def
 * when absent), an integer in [lo, hi] (def when absent). qmp_arg_int sets
 * r's error and returns false when the value is out of range.
 */
const char *qmp_arg_str(const qmp_req_t *r, const char *key);
bool qmp_arg_bool(const qmp_req_t *r, const char *key, bool def);
bool qmp_arg_int(qmp_req_t *r, const char *key, json_int_t lo, json_int_t hi,
		 json_int_t def, json_int_t *out);

/* Inside a command: a ticket to answer r later. */
void qmp_defer(qmp_req_t *r, qmp_ticket_t *t);

/*
 * Answers a deferred request: ret (stolen) or, when ret is NULL, the error
 * desc. A client that went away meanwhile is skipped. Frees t's id.
 */
void qmp_answer(qmp_server_t *s, qmp_ticket_t *t, json_t *ret,
		const char *desc);

/* The "version" object tern programs greet with: {"tern": {major, ...}, "package"}. */
json_t *qmp_version_json(const char *program);

#endif
