// SPDX-License-Identifier: MIT
/*
 * QMP-shaped control server. The wire protocol follows QEMU's QMP
 * (docs/interop/qmp-spec.rst in QEMU): a greeting on connect, capabilities
 * negotiation before any other command, "id" echoed in answers, the same
 * error classes and, where a script may match on them, the same messages.
 * Unlike QMP, requests are delimited by newlines (one object per line).
 */
#include "util/qmp_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *const arg_type_names[] = {
	[QMP_ARG_STRING] = "string", [QMP_ARG_BOOL] = "boolean",
	[QMP_ARG_INT] = "integer", [QMP_ARG_ARRAY] = "array",
	[QMP_ARG_OBJECT] = "object",
};

void qmp_req_error(qmp_req_t *r, const char *cls, const char *fmt, ...)
{
	va_list ap;

	r->err_class = cls ? cls : QMP_CLASS_GENERIC;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
}

const char *qmp_arg_str(const qmp_req_t *r, const char *key)
{
	return json_string_value(json_object_get(r->args, key));
}

bool qmp_arg_bool(const qmp_req_t *r, const char *key, bool def)
{
	json_t *v = json_object_get(r->args, key);

	return v ? json_is_true(v) : def;
}

bool qmp_arg_int(qmp_req_t *r, const char *key, json_int_t lo, json_int_t hi,
		 json_int_t def, json_int_t *out)
{
	json_t *v = json_object_get(r->args, key);

	*out = v ? json_integer_value(v) : def;
	if (*out < lo || *out > hi) {
		qmp_req_error(r, NULL, "Parameter '%s' expects a value "
			      "from %lld to %lld", key, (long long)lo,
			      (long long)hi);
		return false;
	}
	return true;
}

json_t *qmp_version_json(const char *program)
{
	unsigned major = 0, minor = 0, micro = 0;
	char package[64];

	sscanf(TERN_VERSION, "%u.%u.%u", &major, &minor, &micro);
	snprintf(package, sizeof(package), "%s %s", program, TERN_VERSION);
	return json_pack("{s:{s:I,s:I,s:I},s:s}", "tern", "major",
			 (json_int_t)major, "minor", (json_int_t)minor, "micro",
			 (json_int_t)micro, "package", package);
}

/* ---- output ---- */

static void client_drop(qmp_client_slot_t *cl)
{
	for (unsigned i = 0; i < cl->npend; i++)
		close(cl->pend[i].fd);
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->in);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

/* Writes what the socket takes now; drops the client when it is gone. */
static void client_flush(qmp_client_slot_t *cl)
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
static void client_send(qmp_client_slot_t *cl, json_t *msg)
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
	if (cl->out_len + len + 1 > QMP_OUT_MAX) {
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

static void reply_error(qmp_client_slot_t *cl, const json_t *id, const char *cls,
			const char *desc)
{
	json_t *msg = json_pack("{s:{s:s,s:s}}", "error", "class", cls, "desc", desc);

	if (msg && id)
		json_object_set(msg, "id", (json_t *)id);
	client_send(cl, msg);
}

static void reply_return(qmp_client_slot_t *cl, const json_t *id, json_t *ret)
{
	json_t *msg = json_object();

	if (!msg) {
		json_decref(ret);
		return;
	}
	json_object_set_new(msg, "return", ret);
	if (id)
		json_object_set(msg, "id", (json_t *)id);
	client_send(cl, msg);
}

static json_t *timestamp_json(void)
{
	struct timespec ts;

	/* QMP stamps events with wall-clock time. */
	clock_gettime(CLOCK_REALTIME, &ts);
	return json_pack("{s:I,s:I}", "seconds", (json_int_t)ts.tv_sec,
			 "microseconds", (json_int_t)(ts.tv_nsec / 1000));
}

void qmp_server_event(qmp_server_t *s, const char *name, json_t *data)
{
	for (int i = 0; i < QMP_MAX_CLIENTS; i++) {
		qmp_client_slot_t *cl = &s->clients[i];
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

/* ---- deferred answers ---- */

void qmp_defer(qmp_req_t *r, qmp_ticket_t *t)
{
	const json_t *id = r->srv->current_id;

	t->slot = r->slot;
	t->gen = r->srv->clients[r->slot].gen;
	t->id = id ? json_deep_copy(id) : NULL;
}

void qmp_answer(qmp_server_t *s, qmp_ticket_t *t, json_t *ret, const char *desc)
{
	qmp_client_slot_t *cl = NULL;

	if (t->slot >= 0 && t->slot < QMP_MAX_CLIENTS &&
	    s->clients[t->slot].fd >= 0 && s->clients[t->slot].gen == t->gen)
		cl = &s->clients[t->slot];
	if (cl && ret)
		reply_return(cl, t->id, ret);
	else if (cl)
		reply_error(cl, t->id, QMP_CLASS_GENERIC, desc ? desc : "failed");
	else
		json_decref(ret);
	json_decref(t->id);
	t->id = NULL;
	t->slot = -1;
}

/* ---- requests ---- */

const qmp_arg_t qmp_capabilities_args[] = {
	{ "enable", QMP_ARG_ARRAY, false },
	{ NULL, 0, false },
};

json_t *qmp_cmd_capabilities(void *opaque, qmp_req_t *r)
{
	qmp_client_slot_t *cl = &r->srv->clients[r->slot];
	json_t *en = r->args ? json_object_get(r->args, "enable") : NULL;

	if (cl->negotiated) {
		qmp_req_error(r, QMP_CLASS_NOT_FOUND, "Capabilities negotiation "
			      "is already complete, command ignored");
		return NULL;
	}
	/* No optional capabilities (such as "oob") are offered. */
	if (en && json_array_size(en)) {
		json_t *v = json_array_get(en, 0);

		qmp_req_error(r, NULL, "Capability '%s' not available",
			      json_is_string(v) ? json_string_value(v) : "?");
		return NULL;
	}
	cl->negotiated = true;
	return json_object();
}

json_t *qmp_cmd_query_commands(void *opaque, qmp_req_t *r)
{
	const qmp_server_t *s = r->srv;
	json_t *list = json_array();

	for (size_t i = 0; list && i < s->ncmds; i++)
		json_array_append_new(list, json_pack("{s:s}", "name",
						      s->cmds[i].name));
	return list;
}

static const qmp_cmd_t *command_find(const qmp_server_t *s, const char *name)
{
	for (size_t i = 0; i < s->ncmds; i++)
		if (!strcmp(s->cmds[i].name, name))
			return &s->cmds[i];
	return NULL;
}

static bool arg_has_type(json_t *v, enum qmp_arg_type t)
{
	switch (t) {
	case QMP_ARG_STRING:
		return json_is_string(v);
	case QMP_ARG_BOOL:
		return json_is_boolean(v);
	case QMP_ARG_INT:
		return json_is_integer(v);
	case QMP_ARG_ARRAY:
		return json_is_array(v);
	case QMP_ARG_OBJECT:
		return json_is_object(v);
	}
	return false;
}

/* Checks arguments against the command's table, with QMP's messages. */
static bool args_check(const qmp_cmd_t *cmd, qmp_req_t *r)
{
	const char *key;
	json_t *v;

	json_object_foreach(r->args, key, v) {
		const qmp_arg_t *a = cmd->args;

		while (a && a->name && strcmp(a->name, key))
			a++;
		if (!a || !a->name) {
			qmp_req_error(r, NULL, "Parameter '%s' is unexpected", key);
			return false;
		}
		if (!arg_has_type(v, a->type)) {
			qmp_req_error(r, NULL,
				      "Invalid parameter type for '%s', expected: %s",
				      key, arg_type_names[a->type]);
			return false;
		}
	}
	for (const qmp_arg_t *a = cmd->args; a && a->name; a++) {
		if (a->required && !json_object_get(r->args, a->name)) {
			qmp_req_error(r, NULL, "Parameter '%s' is missing", a->name);
			return false;
		}
	}
	return true;
}

/* Parses one request line and answers it; fd came with it (or -1). */
static void handle_request(qmp_server_t *s, int slot, const char *line,
			   size_t len, int fd)
{
	qmp_client_slot_t *cl = &s->clients[slot];
	qmp_req_t r = { .srv = s, .fd = fd, .slot = slot };
	json_error_t jerr;
	json_t *req, *id, *ret, *v;
	const char *name, *key;
	const qmp_cmd_t *cmd;

	for (size_t i = 0;; i++) {
		if (i == len)
			goto close_fd; /* blank line */
		if (!strchr(" \t\r", line[i]))
			break;
	}
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!req) {
		qmp_req_error(&r, NULL, "JSON parse error, %s (column %d)",
			      jerr.text, jerr.column);
		reply_error(cl, NULL, r.err_class, r.err);
		goto close_fd;
	}
	if (!json_is_object(req)) {
		reply_error(cl, NULL, QMP_CLASS_GENERIC,
			    "QMP input must be a JSON object");
		json_decref(req);
		goto close_fd;
	}
	id = json_object_get(req, "id");
	json_object_foreach(req, key, v) {
		if (strcmp(key, "execute") && strcmp(key, "arguments") &&
		    strcmp(key, "id")) {
			qmp_req_error(&r, NULL, "QMP input member '%s' is unexpected",
				      key);
			goto out;
		}
	}
	v = json_object_get(req, "execute");
	if (!v) {
		qmp_req_error(&r, NULL, "QMP input lacks member 'execute'");
		goto out;
	}
	name = json_string_value(v);
	if (!name) {
		qmp_req_error(&r, NULL, "QMP input member 'execute' must be a string");
		goto out;
	}
	r.args = json_object_get(req, "arguments");
	if (r.args && !json_is_object(r.args)) {
		qmp_req_error(&r, NULL,
			      "QMP input member 'arguments' must be an object");
		goto out;
	}
	cmd = command_find(s, name);
	if (!cmd) {
		qmp_req_error(&r, QMP_CLASS_NOT_FOUND,
			      "The command %s has not been found", name);
		goto out;
	}
	if (!cl->negotiated && cmd->fn != qmp_cmd_capabilities) {
		qmp_req_error(&r, QMP_CLASS_NOT_FOUND,
			      "Expecting capabilities negotiation with 'qmp_capabilities'");
		goto out;
	}
	if (!args_check(cmd, &r))
		goto out;
	s->current_id = id;
	ret = cmd->fn(s->opaque, &r);
	s->current_id = NULL;
	if (ret == QMP_DEFERRED)
		goto done;
	if (ret) {
		reply_return(cl, id, ret);
		goto done;
	}
	if (r.err[0] && !r.err_class)
		r.err_class = QMP_CLASS_GENERIC;	/* the command wrote r.err */
	if (!r.err_class)
		qmp_req_error(&r, NULL, "%s failed", name);
out:
	reply_error(cl, id, r.err_class, r.err);
done:
	json_decref(req);
close_fd:
	if (r.fd >= 0)
		close(r.fd);
}

/* ---- input ---- */

/* The fd sent with the current line, or -1; closes any left from earlier
 * lines (they came with no complete request). */
static int take_line_fd(qmp_client_slot_t *cl)
{
	unsigned keep = 0;
	int fd = -1;

	for (unsigned i = 0; i < cl->npend; i++) {
		qmp_pending_fd_t p = cl->pend[i];

		if (p.line == cl->lines)
			fd = p.fd;
		else if (p.line < cl->lines)
			close(p.fd);
		else
			cl->pend[keep++] = p;
	}
	cl->npend = keep;
	return fd;
}

/* Splits what was read into lines; bounds a line to QMP_LINE_MAX. */
static void client_process(qmp_server_t *s, int slot)
{
	qmp_client_slot_t *cl = &s->clients[slot];
	size_t start = 0;

	while (cl->fd >= 0) {
		char *nl = memchr(cl->in + start, '\n', cl->in_len - start);
		int fd;

		if (!nl)
			break;
		fd = take_line_fd(cl);
		if (cl->discarding) {
			cl->discarding = false;
			if (fd >= 0)
				close(fd);
		} else {
			handle_request(s, slot, cl->in + start,
				       (size_t)(nl - (cl->in + start)), fd);
		}
		cl->lines++;
		if (cl->fd < 0)
			return; /* dropped while answering */
		start = (size_t)(nl - cl->in) + 1;
	}
	if (cl->fd < 0)
		return;
	memmove(cl->in, cl->in + start, cl->in_len - start);
	cl->in_len -= start;
	if (cl->in_len > QMP_LINE_MAX) {
		/* No newline within the bound: refuse, skip to the next line. */
		if (!cl->discarding) {
			char desc[96];

			snprintf(desc, sizeof(desc),
				 "request line longer than %d bytes", QMP_LINE_MAX);
			reply_error(cl, NULL, QMP_CLASS_GENERIC, desc);
		}
		cl->discarding = true;
		cl->in_len = 0;
	}
}

/* Keeps fd for request line `line`; only the first fd of a line counts,
 * so any other, and one that does not fit, is closed. */
static void pend_fd(qmp_client_slot_t *cl, int fd, uint64_t line)
{
	for (unsigned i = 0; i < cl->npend; i++) {
		if (cl->pend[i].line == line) {
			close(fd);
			return;
		}
	}
	if (cl->npend == QMP_PENDING_FDS) {
		close(fd);
		return;
	}
	cl->pend[cl->npend++] = (qmp_pending_fd_t){ fd, line };
}

/* Keeps the fds of SCM_RIGHTS messages for request line `line`. */
static void take_fds(qmp_client_slot_t *cl, struct msghdr *mh, uint64_t line)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			pend_fd(cl, fd, line);
		}
	}
}

static void client_read(qmp_server_t *s, int slot)
{
	qmp_client_slot_t *cl = &s->clients[slot];
	union {
		char buf[CMSG_SPACE(QMP_MSG_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = cl->in + cl->in_len,
			     .iov_len = QMP_LINE_MAX + 1 - cl->in_len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	uint64_t line = cl->lines;
	ssize_t r;

	/* Received fds are close-on-exec from the start. */
	r = recvmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	/*
	 * The kernel ends a read after the message that carried fds, so they
	 * belong to the line holding the last byte read. What was buffered
	 * before holds no newline (complete lines are handled at once).
	 */
	for (ssize_t i = 0; i + 1 < r; i++)
		line += cl->in[cl->in_len + (size_t)i] == '\n';
	if (r >= 0)
		take_fds(cl, &mh, line);
	if (r <= 0) {
		/* Gone, perhaps mid-line: the partial request is dropped. */
		client_drop(cl);
		return;
	}
	cl->in_len += (size_t)r;
	client_process(s, slot);
}

/* ---- server ---- */

void qmp_server_init(qmp_server_t *s, const qmp_cmd_t *cmds, size_t ncmds,
		     json_t *version, void *opaque)
{
	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
	s->cmds = cmds;
	s->ncmds = ncmds;
	s->greeting_version = version;
	s->opaque = opaque;
	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
}

int qmp_server_add_client(qmp_server_t *s, int fd)
{
	qmp_client_slot_t *cl = NULL;
	json_t *greeting;

	for (int i = 0; i < QMP_MAX_CLIENTS && !cl; i++)
		if (s->clients[i].fd < 0)
			cl = &s->clients[i];
	if (!cl)
		return -1;
	cl->in = malloc(QMP_LINE_MAX + 1);
	if (!cl->in)
		return -1;
	cl->fd = fd;
	cl->gen = ++s->next_gen;
	greeting = json_pack("{s:{s:O,s:[]}}", "QMP", "version",
			     s->greeting_version, "capabilities");
	client_send(cl, greeting);
	return 0;
}

unsigned qmp_server_nclients(const qmp_server_t *s)
{
	unsigned n = 0;

	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		n += s->clients[i].fd >= 0;
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

int qmp_server_listen(qmp_server_t *s, const char *path, char *err,
		      size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (!*path) {
		snprintf(err, errlen, "empty control socket path");
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
	    listen(fd, QMP_MAX_CLIENTS)) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	s->path = strdup(path);
	if (!s->path) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		unlink(path);
		return -1;
	}
	s->listen_fd = fd;
	return 0;
}

static void flush_briefly(qmp_client_slot_t *cl)
{
	for (int tries = 0; cl->fd >= 0 && cl->out_len && tries < 10; tries++) {
		struct pollfd p = { .fd = cl->fd, .events = POLLOUT };

		if (poll(&p, 1, 100) <= 0)
			break;
		client_flush(cl);
	}
}

void qmp_server_linger(qmp_server_t *s, int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < QMP_MAX_CLIENTS; i++) {
		qmp_client_slot_t *cl = &s->clients[i];

		flush_briefly(cl);
		if (cl->fd >= 0 && !cl->out_len)
			shutdown(cl->fd, SHUT_WR);
	}
	for (;;) {
		struct pollfd pfds[QMP_MAX_CLIENTS];
		int n = 0, left;

		for (int i = 0; i < QMP_MAX_CLIENTS; i++)
			if (s->clients[i].fd >= 0)
				pfds[n++] = (struct pollfd){ .fd = s->clients[i].fd,
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
			for (int i = 0; i < QMP_MAX_CLIENTS; i++)
				if (s->clients[i].fd == pfds[k].fd)
					client_drop(&s->clients[i]);
		}
	}
}

void qmp_server_close(qmp_server_t *s)
{
	for (int i = 0; i < QMP_MAX_CLIENTS; i++) {
		qmp_client_slot_t *cl = &s->clients[i];

		/* Give a reading client a moment for the last answers (quit). */
		flush_briefly(cl);
		if (cl->fd >= 0 || cl->in)
			client_drop(cl);
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	if (s->path) {
		unlink(s->path);
		free(s->path);
		s->path = NULL;
	}
	json_decref(s->greeting_version);
	s->greeting_version = NULL;
}

int qmp_server_pollfds(qmp_server_t *s, struct pollfd *pfds, int max)
{
	int n = 0;

	if (s->listen_fd >= 0 && n < max)
		pfds[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
	for (int i = 0; i < QMP_MAX_CLIENTS && n < max; i++) {
		qmp_client_slot_t *cl = &s->clients[i];

		if (cl->fd < 0)
			continue;
		pfds[n++] = (struct pollfd){
			.fd = cl->fd,
			.events = (short)(POLLIN | (cl->out_len ? POLLOUT : 0)),
		};
	}
	return n;
}

static void server_accept(qmp_server_t *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (qmp_server_add_client(s, fd)) {
		static const char full[] =
			"{\"error\":{\"class\":\"GenericError\",\"desc\":\"too many control clients\"}}\n";

		if (send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* nothing more to tell it */
		}
		close(fd);
	}
}

void qmp_server_handle(qmp_server_t *s, const struct pollfd *pfds, int n)
{
	for (int i = 0; i < n; i++) {
		if (!pfds[i].revents)
			continue;
		if (pfds[i].fd == s->listen_fd && s->listen_fd >= 0) {
			server_accept(s);
			continue;
		}
		for (int j = 0; j < QMP_MAX_CLIENTS; j++) {
			qmp_client_slot_t *cl = &s->clients[j];

			if (cl->fd != pfds[i].fd || cl->fd < 0)
				continue;
			if (pfds[i].revents & POLLOUT)
				client_flush(cl);
			if (cl->fd >= 0 && (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				client_read(s, j);
			break;
		}
	}
}
