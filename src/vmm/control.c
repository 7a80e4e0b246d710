// SPDX-License-Identifier: MIT
/*
 * Control socket server. The wire protocol follows QEMU's QMP
 * (docs/interop/qmp-spec.rst in QEMU): a greeting on connect, capabilities
 * negotiation before any other command, "id" echoed in answers, the same
 * error classes and, where a script may match on them, the same messages.
 * Unlike QMP, requests are delimited by newlines (one object per line).
 */
#include "vmm/control.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CLASS_GENERIC "GenericError"
#define CLASS_NOT_FOUND "CommandNotFound"

enum arg_type { ARG_STRING, ARG_BOOL, ARG_INT, ARG_ARRAY };

typedef struct arg_spec {
	const char *name;
	enum arg_type type;
	bool required;
} arg_spec_t;

/* A failed command: error class and description. */
typedef struct cmd_error {
	const char *cls;
	char desc[512];
} cmd_error_t;

typedef json_t *(*cmd_fn_t)(control_t *c, control_client_t *cl, json_t *args,
			    cmd_error_t *e);

typedef struct command {
	const char *name;
	cmd_fn_t fn;
	const arg_spec_t *args;	/* NULL-name terminated; NULL = none */
} command_t;

static const char *const arg_type_names[] = {
	[ARG_STRING] = "string", [ARG_BOOL] = "boolean",
	[ARG_INT] = "integer", [ARG_ARRAY] = "array",
};

static void set_error(cmd_error_t *e, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_error(cmd_error_t *e, const char *cls, const char *fmt, ...)
{
	va_list ap;

	e->cls = cls;
	va_start(ap, fmt);
	vsnprintf(e->desc, sizeof(e->desc), fmt, ap);
	va_end(ap);
}

/* ---- output ---- */

static void client_drop(control_client_t *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->in);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

/* Writes what the socket takes now; drops the client when it is gone. */
static void client_flush(control_client_t *cl)
{
	size_t done = 0;

	while (done < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + done, cl->out_len - done,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			client_drop(cl);
			return;
		}
		done += (size_t)n;
	}
	memmove(cl->out, cl->out + done, cl->out_len - done);
	cl->out_len -= done;
}

/* Queues one JSON line (steals msg). A client that stops reading is dropped. */
static void client_send(control_client_t *cl, json_t *msg)
{
	char *s;
	size_t len;

	if (!msg)
		return;
	s = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(msg);
	if (!s || cl->fd < 0) {
		free(s);
		return;
	}
	len = strlen(s);
	if (cl->out_len + len + 1 > CONTROL_OUT_MAX) {
		free(s);
		client_drop(cl);
		return;
	}
	if (cl->out_len + len + 1 > cl->out_cap) {
		size_t cap = cl->out_cap ? cl->out_cap : 4096;
		char *p;

		while (cap < cl->out_len + len + 1)
			cap *= 2;
		p = realloc(cl->out, cap);
		if (!p) {
			free(s);
			client_drop(cl);
			return;
		}
		cl->out = p;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, s, len);
	cl->out[cl->out_len + len] = '\n';
	cl->out_len += len + 1;
	free(s);
	client_flush(cl);
}

static void reply_error(control_client_t *cl, json_t *id, const char *cls,
			const char *desc)
{
	json_t *msg = json_pack("{s:{s:s,s:s}}", "error", "class", cls, "desc", desc);

	if (msg && id)
		json_object_set(msg, "id", id);
	client_send(cl, msg);
}

static void reply_return(control_client_t *cl, json_t *id, json_t *ret)
{
	json_t *msg = json_object();

	if (!msg) {
		json_decref(ret);
		return;
	}
	json_object_set_new(msg, "return", ret);
	if (id)
		json_object_set(msg, "id", id);
	client_send(cl, msg);
}

static json_t *version_json(void)
{
	unsigned major = 0, minor = 0, micro = 0;

	sscanf(TERN_VERSION, "%u.%u.%u", &major, &minor, &micro);
	return json_pack("{s:{s:I,s:I,s:I},s:s}", "tern", "major",
			 (json_int_t)major, "minor", (json_int_t)minor, "micro",
			 (json_int_t)micro, "package", "tern-vmm " TERN_VERSION);
}

static json_t *timestamp_json(void)
{
	struct timespec ts;

	/* QMP stamps events with wall-clock time. */
	clock_gettime(CLOCK_REALTIME, &ts);
	return json_pack("{s:I,s:I}", "seconds", (json_int_t)ts.tv_sec,
			 "microseconds", (json_int_t)(ts.tv_nsec / 1000));
}

void control_event(control_t *c, const char *name, json_t *data)
{
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		control_client_t *cl = &c->clients[i];
		json_t *msg;

		if (cl->fd < 0 || !cl->negotiated)
			continue;
		msg = json_object();
		if (!msg)
			break;
		json_object_set_new(msg, "timestamp", timestamp_json());
		json_object_set_new(msg, "event", json_string(name));
		if (data)
			json_object_set(msg, "data", data);
		client_send(cl, msg);
	}
	json_decref(data);
}

/* ---- commands ---- */

static json_t *cmd_qmp_capabilities(control_t *c, control_client_t *cl,
				    json_t *args, cmd_error_t *e)
{
	json_t *enable = json_object_get(args, "enable"), *cap;
	size_t i;

	if (cl->negotiated) {
		set_error(e, CLASS_NOT_FOUND,
			  "Capabilities negotiation is already complete, command ignored");
		return NULL;
	}
	/* No optional capabilities (such as "oob") are offered. */
	json_array_foreach(enable, i, cap) {
		set_error(e, CLASS_GENERIC, "Capability '%s' not available",
			  json_is_string(cap) ? json_string_value(cap) : "?");
		return NULL;
	}
	cl->negotiated = true;
	return json_object();
}

static json_t *cmd_query_version(control_t *c, control_client_t *cl,
				 json_t *args, cmd_error_t *e)
{
	return version_json();
}

static json_t *cmd_query_status(control_t *c, control_client_t *cl,
				json_t *args, cmd_error_t *e)
{
	const char *st = c->ops->status(c->opaque);

	return json_pack("{s:s,s:b}", "status", st, "running",
			 !strcmp(st, "running"));
}

static json_t *cmd_stop(control_t *c, control_client_t *cl, json_t *args,
			cmd_error_t *e)
{
	if (c->ops->stop(c->opaque, e->desc, sizeof(e->desc))) {
		e->cls = CLASS_GENERIC;
		return NULL;
	}
	return json_object();
}

static json_t *cmd_cont(control_t *c, control_client_t *cl, json_t *args,
			cmd_error_t *e)
{
	if (c->ops->cont(c->opaque, e->desc, sizeof(e->desc))) {
		e->cls = CLASS_GENERIC;
		return NULL;
	}
	return json_object();
}

static json_t *cmd_quit(control_t *c, control_client_t *cl, json_t *args,
			cmd_error_t *e)
{
	c->ops->quit(c->opaque);
	return json_object();
}

static json_t *cmd_save(control_t *c, control_client_t *cl, json_t *args,
			cmd_error_t *e)
{
	const char *file = json_string_value(json_object_get(args, "file"));
	struct timespec t0, t1;
	uint64_t bytes = 0;
	int64_t ms;

	if (!*file) {
		set_error(e, CLASS_GENERIC, "Parameter 'file' must not be empty");
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (c->ops->save(c->opaque, file, &bytes, e->desc, sizeof(e->desc))) {
		e->cls = CLASS_GENERIC;
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	return json_pack("{s:I,s:I}", "bytes", (json_int_t)bytes, "time-ms",
			 (json_int_t)ms);
}

/* An integer argument in [min, max], or def when absent. */
static bool int_arg(json_t *args, const char *name, int64_t min, int64_t max,
		    uint64_t def, uint64_t *out, cmd_error_t *e)
{
	json_t *v = json_object_get(args, name);
	json_int_t i;

	*out = def;
	if (!v)
		return true;
	i = json_integer_value(v);
	if (i < min || i > max) {
		set_error(e, CLASS_GENERIC, "Parameter '%s' expects a value "
			  "from %lld to %lld", name, (long long)min,
			  (long long)max);
		return false;
	}
	*out = (uint64_t)i;
	return true;
}

static json_t *cmd_migrate(control_t *c, control_client_t *cl, json_t *args,
			   cmd_error_t *e)
{
	control_migrate_args_t a = { 0 };
	json_t *v;
	const char *gu;

	if (!c->ops->migrate) {
		set_error(e, CLASS_GENERIC, "migration is not available");
		return NULL;
	}
	a.uri = json_string_value(json_object_get(args, "uri"));
	if (strncmp(a.uri, "tcp:", 4) && strncmp(a.uri, "file:", 5)) {
		set_error(e, CLASS_GENERIC, "Parameter 'uri' expects tcp:HOST:PORT "
			  "or file:PATH");
		return NULL;
	}
	v = json_object_get(args, "live");
	a.live = v ? json_is_true(v) : true;
	if (!int_arg(args, "downtime-limit", 0, 2000000, 300,
		     &a.downtime_limit_ms, e) ||
	    !int_arg(args, "bandwidth", 0, 1 << 20, 0, &a.bandwidth_mbs, e) ||
	    !int_arg(args, "max-rounds", 1, 1000000, 30, &a.max_rounds, e))
		return NULL;
	gu = json_string_value(json_object_get(args, "give-up"));
	if (gu && strcmp(gu, "abort") && strcmp(gu, "stop-copy")) {
		set_error(e, CLASS_GENERIC, "Parameter 'give-up' expects "
			  "'abort' or 'stop-copy'");
		return NULL;
	}
	a.give_up_abort = gu && !strcmp(gu, "abort");
	if (c->ops->migrate(c->opaque, &a, e->desc, sizeof(e->desc))) {
		e->cls = CLASS_GENERIC;
		return NULL;
	}
	return json_object();
}

static json_t *cmd_migrate_cancel(control_t *c, control_client_t *cl,
				  json_t *args, cmd_error_t *e)
{
	if (c->ops->migrate_cancel &&
	    c->ops->migrate_cancel(c->opaque, e->desc, sizeof(e->desc))) {
		e->cls = CLASS_GENERIC;
		return NULL;
	}
	return json_object();
}

static json_t *cmd_query_migrate(control_t *c, control_client_t *cl,
				 json_t *args, cmd_error_t *e)
{
	json_t *r = c->ops->query_migrate ? c->ops->query_migrate(c->opaque) :
					    NULL;

	return r ? r : json_pack("{s:s}", "status", "none");
}

static json_t *cmd_query_commands(control_t *c, control_client_t *cl,
				  json_t *args, cmd_error_t *e);

static const arg_spec_t capabilities_args[] = {
	{ "enable", ARG_ARRAY, false },
	{ NULL },
};

static const arg_spec_t save_args[] = {
	{ "file", ARG_STRING, true },
	{ NULL },
};

static const arg_spec_t migrate_args[] = {
	{ "uri", ARG_STRING, true },
	{ "live", ARG_BOOL, false },
	{ "downtime-limit", ARG_INT, false },
	{ "bandwidth", ARG_INT, false },
	{ "max-rounds", ARG_INT, false },
	{ "give-up", ARG_STRING, false },
	{ NULL },
};

static const command_t commands[] = {
	{ "qmp_capabilities", cmd_qmp_capabilities, capabilities_args },
	{ "query-version", cmd_query_version, NULL },
	{ "query-status", cmd_query_status, NULL },
	{ "query-commands", cmd_query_commands, NULL },
	{ "stop", cmd_stop, NULL },
	{ "pause", cmd_stop, NULL },
	{ "cont", cmd_cont, NULL },
	{ "resume", cmd_cont, NULL },
	{ "quit", cmd_quit, NULL },
	{ "save", cmd_save, save_args },
	{ "migrate", cmd_migrate, migrate_args },
	{ "migrate-cancel", cmd_migrate_cancel, NULL },
	{ "query-migrate", cmd_query_migrate, NULL },
};

static json_t *cmd_query_commands(control_t *c, control_client_t *cl,
				  json_t *args, cmd_error_t *e)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < sizeof(commands) / sizeof(commands[0]); i++)
		json_array_append_new(list, json_pack("{s:s}", "name",
						      commands[i].name));
	return list;
}

static const command_t *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static bool arg_has_type(json_t *v, enum arg_type t)
{
	switch (t) {
	case ARG_STRING:
		return json_is_string(v);
	case ARG_BOOL:
		return json_is_boolean(v);
	case ARG_INT:
		return json_is_integer(v);
	case ARG_ARRAY:
		return json_is_array(v);
	}
	return false;
}

/* Checks arguments against the command's table, with QMP's messages. */
static bool args_check(const command_t *cmd, json_t *args, cmd_error_t *e)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) {
		const arg_spec_t *a = cmd->args;

		while (a && a->name && strcmp(a->name, key))
			a++;
		if (!a || !a->name) {
			set_error(e, CLASS_GENERIC, "Parameter '%s' is unexpected", key);
			return false;
		}
		if (!arg_has_type(v, a->type)) {
			set_error(e, CLASS_GENERIC,
				  "Invalid parameter type for '%s', expected: %s",
				  key, arg_type_names[a->type]);
			return false;
		}
	}
	for (const arg_spec_t *a = cmd->args; a && a->name; a++) {
		if (a->required && !json_object_get(args, a->name)) {
			set_error(e, CLASS_GENERIC, "Parameter '%s' is missing", a->name);
			return false;
		}
	}
	return true;
}

/* Parses one request line and answers it. */
static void handle_request(control_t *c, control_client_t *cl, const char *line,
			   size_t len)
{
	json_error_t jerr;
	json_t *req, *id, *args, *ret, *v;
	const char *name, *key;
	const command_t *cmd;
	cmd_error_t e = { NULL, "" };

	for (size_t i = 0;; i++) {
		if (i == len)
			return; /* blank line */
		if (!strchr(" \t\r", line[i]))
			break;
	}
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!req) {
		set_error(&e, CLASS_GENERIC, "JSON parse error, %s (column %d)",
			  jerr.text, jerr.column);
		reply_error(cl, NULL, e.cls, e.desc);
		return;
	}
	if (!json_is_object(req)) {
		reply_error(cl, NULL, CLASS_GENERIC, "QMP input must be a JSON object");
		json_decref(req);
		return;
	}
	id = json_object_get(req, "id");
	json_object_foreach(req, key, v) {
		if (strcmp(key, "execute") && strcmp(key, "arguments") &&
		    strcmp(key, "id")) {
			set_error(&e, CLASS_GENERIC, "QMP input member '%s' is unexpected",
				  key);
			goto out;
		}
	}
	v = json_object_get(req, "execute");
	if (!v) {
		set_error(&e, CLASS_GENERIC, "QMP input lacks member 'execute'");
		goto out;
	}
	name = json_string_value(v);
	if (!name) {
		set_error(&e, CLASS_GENERIC, "QMP input member 'execute' must be a string");
		goto out;
	}
	args = json_object_get(req, "arguments");
	if (args && !json_is_object(args)) {
		set_error(&e, CLASS_GENERIC,
			  "QMP input member 'arguments' must be an object");
		goto out;
	}
	cmd = command_find(name);
	if (!cmd) {
		set_error(&e, CLASS_NOT_FOUND, "The command %s has not been found", name);
		goto out;
	}
	if (!cl->negotiated && cmd->fn != cmd_qmp_capabilities) {
		set_error(&e, CLASS_NOT_FOUND,
			  "Expecting capabilities negotiation with 'qmp_capabilities'");
		goto out;
	}
	if (!args_check(cmd, args, &e))
		goto out;
	ret = cmd->fn(c, cl, args, &e);
	if (ret) {
		reply_return(cl, id, ret);
		json_decref(req);
		return;
	}
	if (!e.cls)
		set_error(&e, CLASS_GENERIC, "%s failed",  name);
out:
	reply_error(cl, id, e.cls, e.desc);
	json_decref(req);
}

/* ---- input ---- */

/* Splits what was read into lines; bounds a line to CONTROL_LINE_MAX. */
static void client_process(control_t *c, control_client_t *cl)
{
	size_t start = 0;

	while (cl->fd >= 0) {
		char *nl = memchr(cl->in + start, '\n', cl->in_len - start);

		if (!nl)
			break;
		if (cl->discarding)
			cl->discarding = false;
		else
			handle_request(c, cl, cl->in + start,
				       (size_t)(nl - (cl->in + start)));
		if (cl->fd < 0)
			return; /* dropped while answering */
		start = (size_t)(nl - cl->in) + 1;
	}
	if (cl->fd < 0)
		return;
	memmove(cl->in, cl->in + start, cl->in_len - start);
	cl->in_len -= start;
	if (cl->in_len > CONTROL_LINE_MAX) {
		/* No newline within the bound: refuse, skip to the next line. */
		if (!cl->discarding) {
			char desc[96];

			snprintf(desc, sizeof(desc),
				 "request line longer than %d bytes", CONTROL_LINE_MAX);
			reply_error(cl, NULL, CLASS_GENERIC, desc);
		}
		cl->discarding = true;
		cl->in_len = 0;
	}
}

static void client_read(control_t *c, control_client_t *cl)
{
	ssize_t r;

	r = recv(cl->fd, cl->in + cl->in_len, CONTROL_LINE_MAX + 1 - cl->in_len,
		 MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (r <= 0) {
		/* Gone, perhaps mid-line: the partial request is dropped. */
		client_drop(cl);
		return;
	}
	cl->in_len += (size_t)r;
	client_process(c, cl);
}

/* ---- server ---- */

void control_init(control_t *c, const control_ops_t *ops, void *opaque)
{
	memset(c, 0, sizeof(*c));
	c->listen_fd = -1;
	c->ops = ops;
	c->opaque = opaque;
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
}

int control_add_client(control_t *c, int fd)
{
	control_client_t *cl = NULL;
	json_t *greeting;

	for (int i = 0; i < CONTROL_MAX_CLIENTS && !cl; i++)
		if (c->clients[i].fd < 0)
			cl = &c->clients[i];
	if (!cl)
		return -1;
	cl->in = malloc(CONTROL_LINE_MAX + 1);
	if (!cl->in)
		return -1;
	cl->fd = fd;
	greeting = json_pack("{s:{s:o,s:[]}}", "QMP", "version", version_json(),
			     "capabilities");
	client_send(cl, greeting);
	return 0;
}

unsigned control_nclients(const control_t *c)
{
	unsigned n = 0;

	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		n += c->clients[i].fd >= 0;
	return n;
}

/* Is someone accepting connections on path? */
static bool socket_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ||
	       errno == EAGAIN;
	close(fd);
	return live;
}

int control_listen(control_t *c, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (!*path) {
		snprintf(err, errlen, "--control needs a socket path");
		return -1;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path too long (at most %zu bytes): %s",
			 sizeof(sa.sun_path) - 1, path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen,
				 "control socket %s: file exists and is not a socket",
				 path);
			return -1;
		}
		if (socket_live(&sa)) {
			snprintf(err, errlen,
				 "control socket %s is in use by another process",
				 path);
			return -1;
		}
		unlink(path); /* stale: its server is gone */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, CONTROL_MAX_CLIENTS)) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	c->path = strdup(path);
	if (!c->path) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		unlink(path);
		return -1;
	}
	c->listen_fd = fd;
	return 0;
}

void control_linger(control_t *c, int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		control_client_t *cl = &c->clients[i];

		for (int tries = 0; cl->fd >= 0 && cl->out_len && tries < 10; tries++) {
			struct pollfd p = { .fd = cl->fd, .events = POLLOUT };

			if (poll(&p, 1, 100) <= 0)
				break;
			client_flush(cl);
		}
		if (cl->fd >= 0 && !cl->out_len)
			shutdown(cl->fd, SHUT_WR);
	}
	for (;;) {
		struct pollfd pfds[CONTROL_MAX_CLIENTS];
		int n = 0, left;

		for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
			if (c->clients[i].fd >= 0)
				pfds[n++] = (struct pollfd){ .fd = c->clients[i].fd,
							     .events = POLLIN };
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 +
				  (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (!n || left <= 0 || poll(pfds, (nfds_t)n, left) <= 0)
			return;
		for (int k = 0; k < n; k++) {
			char buf[4096];
			ssize_t r;

			if (!pfds[k].revents)
				continue;
			r = recv(pfds[k].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR)))
				continue;
			for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
				if (c->clients[i].fd == pfds[k].fd)
					client_drop(&c->clients[i]);
		}
	}
}

void control_close(control_t *c)
{
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		control_client_t *cl = &c->clients[i];

		/* Give a reading client a moment for the last answers (quit). */
		for (int tries = 0; cl->fd >= 0 && cl->out_len && tries < 10; tries++) {
			struct pollfd p = { .fd = cl->fd, .events = POLLOUT };

			if (poll(&p, 1, 100) <= 0)
				break;
			client_flush(cl);
		}
		if (cl->fd >= 0 || cl->in)
			client_drop(cl);
	}
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	c->listen_fd = -1;
	if (c->path) {
		unlink(c->path);
		free(c->path);
		c->path = NULL;
	}
}

int control_pollfds(control_t *c, struct pollfd *pfds, int max)
{
	int n = 0;

	if (c->listen_fd >= 0 && n < max)
		pfds[n++] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
	for (int i = 0; i < CONTROL_MAX_CLIENTS && n < max; i++) {
		control_client_t *cl = &c->clients[i];

		if (cl->fd < 0)
			continue;
		pfds[n++] = (struct pollfd){
			.fd = cl->fd,
			.events = (short)(POLLIN | (cl->out_len ? POLLOUT : 0)),
		};
	}
	return n;
}

static void control_accept(control_t *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (control_add_client(c, fd)) {
		static const char full[] =
			"{\"error\":{\"class\":\"GenericError\",\"desc\":\"too many control clients\"}}\n";

		if (send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* nothing more to tell it */
		}
		close(fd);
	}
}

void control_handle(control_t *c, const struct pollfd *pfds, int n)
{
	for (int i = 0; i < n; i++) {
		if (!pfds[i].revents)
			continue;
		if (pfds[i].fd == c->listen_fd && c->listen_fd >= 0) {
			control_accept(c);
			continue;
		}
		for (int j = 0; j < CONTROL_MAX_CLIENTS; j++) {
			control_client_t *cl = &c->clients[j];

			if (cl->fd != pfds[i].fd || cl->fd < 0)
				continue;
			if (pfds[i].revents & POLLOUT)
				client_flush(cl);
			if (cl->fd >= 0 && (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				client_read(c, cl);
			break;
		}
	}
}

/* ---- atomic file output ---- */

int control_write_file(const char *path, control_writer_t writer, void *opaque,
		       uint64_t *bytes, char *err, size_t errlen)
{
	char dcopy[PATH_MAX], bcopy[PATH_MAX], tmp[PATH_MAX];
	const char *dir, *base;
	struct stat st;
	int fd, dfd, n;

	if (strlen(path) >= sizeof(dcopy)) {
		snprintf(err, errlen, "file name too long: %s", path);
		return -1;
	}
	strcpy(dcopy, path);
	strcpy(bcopy, path);
	dir = dirname(dcopy);
	base = basename(bcopy);
	if (path[strlen(path) - 1] == '/' || !strcmp(base, ".") || !strcmp(base, "..")) {
		snprintf(err, errlen, "%s: not a file name", path);
		return -1;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: is a directory", path);
		return -1;
	}
	n = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		snprintf(err, errlen, "file name too long: %s", path);
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a file in %s: %s", dir,
			 strerror(errno));
		return -1;
	}
	if (writer(opaque, fd, err, errlen))
		goto fail;
	if (fsync(fd) || fstat(fd, &st)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (close(fd)) {
		fd = -1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path)) {
		snprintf(err, errlen, "cannot rename to %s: %s", path, strerror(errno));
		goto fail;
	}
	/* Make the rename itself durable. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	*bytes = (uint64_t)st.st_size;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}
