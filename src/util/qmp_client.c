// SPDX-License-Identifier: MIT
/*
 * Blocking client of the QMP-shaped control protocol
 * (docs/control-protocol.md). The server is not trusted: every wait is
 * bounded by poll(), a line may be at most 1 MiB, and anything that is not
 * the expected JSON is a one-line error, never a crash or a hang.
 *
 * Requests carry an increasing "id"; an answer with another id (left over
 * from a call that timed out earlier) is skipped, so a late answer can never
 * be taken for the answer to a later call.
 */
#include "util/qmp_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"

#define QMP_MAX_LINE (1u << 20)		/* longest line accepted */
#define QMP_READ_CHUNK 65536
#define QMP_MAX_EVENTS 1024		/* queued events; the oldest go first */
#define QMP_DEFAULT_TIMEOUT_MS 30000

struct qmp_client {
	int fd;
	char *name;		/* the socket path, for messages */
	unsigned timeout_ms;
	json_t *greeting;	/* the "QMP" object */
	char *buf;		/* bytes read, not yet taken as lines */
	size_t start, len, cap;	/* unread bytes are buf[start..len) */
	size_t scanned;		/* buf[start..scanned) holds no newline */
	size_t line_end;	/* just past the newline of the peeked line */
	json_t *events;		/* queue of event objects, oldest first */
	bool eof;		/* the server closed its end */
	char broken[256];	/* why the connection is unusable, "" if it is not */
	json_int_t next_id;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, for poll(); 0 once it has passed. */
static int left_ms(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

static void timeout_error(const qmp_client_t *q, char *err, size_t errlen)
{
	unsigned ms = q->timeout_ms;

	if (ms % 1000)
		err_set(err, errlen, "no answer from %s within %u ms", q->name, ms);
	else
		err_set(err, errlen, "no answer from %s within %u s", q->name,
			ms / 1000);
}

int qmp_unix_connect(const char *path, unsigned timeout_ms, char *err,
		     size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv;
	int fd, e;

	if (!timeout_ms)
		timeout_ms = QMP_DEFAULT_TIMEOUT_MS;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		err_set(err, errlen, "cannot connect to %s: %s", path,
			strerror(ENAMETOOLONG));
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		err_set(err, errlen, "cannot connect to %s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	/*
	 * A UNIX connect() blocks while the listener's backlog is full; the
	 * send timeout bounds that wait (Linux applies SO_SNDTIMEO to it).
	 */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		/* A full backlog until the timeout: EAGAIN. */
		e = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno;
		close(fd);
		err_set(err, errlen, "cannot connect to %s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	tv.tv_sec = tv.tv_usec = 0;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/*
 * Returns the next whole line (NUL-terminated in place, without its newline
 * or a trailing \r) and its length through *n, or NULL when none is
 * buffered. drop_line() discards it afterwards.
 */
static char *peek_line(qmp_client_t *q, size_t *n)
{
	char *line, *nl;
	size_t l;

	if (q->scanned >= q->len)
		return NULL;
	line = q->buf + q->start;
	nl = memchr(q->buf + q->scanned, '\n', q->len - q->scanned);
	if (!nl) {
		q->scanned = q->len;
		return NULL;
	}
	l = (size_t)(nl - line);
	q->line_end = (size_t)(nl - q->buf) + 1;
	*nl = '\0';
	if (l && line[l - 1] == '\r')
		line[--l] = '\0';
	*n = l;
	return line;
}

static void drop_line(qmp_client_t *q)
{
	q->start = q->scanned = q->line_end;
	if (q->start == q->len)
		q->start = q->scanned = q->len = 0;
}

/*
 * Reads once from the socket (it is readable or at EOF). Returns 0, or -1
 * with q->broken / q->eof set.
 */
static int fill(qmp_client_t *q)
{
	ssize_t r;

	if (q->start) {
		memmove(q->buf, q->buf + q->start, q->len - q->start);
		q->len -= q->start;
		q->scanned -= q->start;
		q->start = 0;
	}
	if (q->cap - q->len < QMP_READ_CHUNK) {
		size_t ncap = q->len + QMP_READ_CHUNK;
		char *nb = realloc(q->buf, ncap + 1);

		if (!nb) {
			snprintf(q->broken, sizeof(q->broken),
				 "out of memory reading from %s", q->name);
			return -1;
		}
		q->buf = nb;
		q->cap = ncap;
	}
	do {
		r = read(q->fd, q->buf + q->len, q->cap - q->len);
	} while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (r < 0) {
		snprintf(q->broken, sizeof(q->broken),
			 "connection to %s failed: %s", q->name, strerror(errno));
		return -1;
	}
	if (r == 0) {
		q->eof = true;
		return -1;
	}
	q->len += (size_t)r;
	return 0;
}

enum msg_result { MSG_OK, MSG_NONE, MSG_GARBAGE, MSG_FAIL };

/*
 * Takes the next complete, non-blank line from the buffer and parses it.
 * MSG_OK: *msg is a JSON object; MSG_GARBAGE: the line was not one (err
 * says why; the line is consumed); MSG_NONE: no whole line is buffered;
 * MSG_FAIL: the connection is unusable (err set).
 */
static enum msg_result take_message(qmp_client_t *q, json_t **msg, char *err,
				    size_t errlen)
{
	for (;;) {
		json_error_t je;
		size_t n;
		char *line = peek_line(q, &n);
		json_t *v;

		if (!line) {
			if (q->len - q->start > QMP_MAX_LINE) {
				snprintf(q->broken, sizeof(q->broken),
					 "protocol error: a line from %s is longer than 1 MiB",
					 q->name);
				err_set(err, errlen, "%s", q->broken);
				return MSG_FAIL;
			}
			return MSG_NONE;
		}
		if (n > QMP_MAX_LINE) {
			snprintf(q->broken, sizeof(q->broken),
				 "protocol error: a line from %s is longer than 1 MiB",
				 q->name);
			err_set(err, errlen, "%s", q->broken);
			return MSG_FAIL;
		}
		if (strspn(line, " \t") == n) {
			drop_line(q);
			continue;
		}
		v = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
		drop_line(q);
		if (!v) {
			err_set(err, errlen, "invalid JSON from %s: %s", q->name,
				je.text);
			return MSG_GARBAGE;
		}
		if (!json_is_object(v)) {
			json_decref(v);
			err_set(err, errlen,
				"protocol error: %s sent a JSON value that is not an object",
				q->name);
			return MSG_GARBAGE;
		}
		*msg = v;
		return MSG_OK;
	}
}

/*
 * Waits until deadline for the next message. MSG_NONE here means the
 * deadline passed; MSG_FAIL covers EOF and errors (err set).
 */
static enum msg_result read_message(qmp_client_t *q, int64_t deadline,
				    json_t **msg, char *err, size_t errlen)
{
	for (;;) {
		enum msg_result r;
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int pr;

		if (q->broken[0]) {
			err_set(err, errlen, "%s", q->broken);
			return MSG_FAIL;
		}
		r = take_message(q, msg, err, errlen);
		if (r != MSG_NONE)
			return r;
		if (q->eof) {
			err_set(err, errlen, "connection closed by %s", q->name);
			return MSG_FAIL;
		}
		pr = poll(&p, 1, left_ms(deadline));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			err_set(err, errlen, "poll: %s", strerror(errno));
			return MSG_FAIL;
		}
		if (pr == 0)
			return MSG_NONE;
		if (fill(q) < 0 && q->broken[0]) {
			err_set(err, errlen, "%s", q->broken);
			return MSG_FAIL;
		}
	}
}

static void queue_event(qmp_client_t *q, json_t *ev)
{
	if (json_array_size(q->events) >= QMP_MAX_EVENTS)
		json_array_remove(q->events, 0);
	json_array_append_new(q->events, ev);
}

static bool is_event(const json_t *msg)
{
	return json_object_get(msg, "event") != NULL;
}

/* Writes all of buf, the first part with fd attached when fd >= 0. */
static int send_all(qmp_client_t *q, const char *buf, size_t len, int fd,
		    int64_t deadline, char *err, size_t errlen)
{
	bool fd_sent = fd < 0;

	while (len) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} ctl;
		struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (!fd_sent) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.b;
			mh.msg_controllen = sizeof(ctl.b);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
		}
		n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = q->fd, .events = POLLOUT };
			int pr = poll(&p, 1, left_ms(deadline));

			if (pr == 0) {
				timeout_error(q, err, errlen);
				return -1;
			}
			continue;
		}
		if (n < 0) {
			if (errno == EPIPE || errno == ECONNRESET)
				return err_set(err, errlen,
					       "connection closed by %s", q->name);
			return err_set(err, errlen, "cannot send to %s: %s",
				       q->name, strerror(errno));
		}
		fd_sent = true;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static json_t *call(qmp_client_t *q, const char *cmd, json_t *args, int fd,
		    char *err, size_t errlen)
{
	int64_t deadline = now_ms() + q->timeout_ms;
	json_int_t id;
	json_t *req;
	char *text;
	size_t tlen;
	int rc;

	if (!cmd || !*cmd) {
		json_decref(args);
		err_set(err, errlen, "no command given");
		return NULL;
	}
	if (q->broken[0]) {
		json_decref(args);
		err_set(err, errlen, "%s", q->broken);
		return NULL;
	}
	id = ++q->next_id;
	req = json_pack("{s:s, s:I}", "execute", cmd, "id", id);
	if (!req) {
		json_decref(args);
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	if (args)
		json_object_set_new(req, "arguments", args);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text) {
		err_set(err, errlen, "cannot encode the %s request", cmd);
		return NULL;
	}
	tlen = strlen(text);
	/* json_dumps never emits a newline in compact mode: one line. */
	{
		char *line = realloc(text, tlen + 2);

		if (!line) {
			free(text);
			err_set(err, errlen, "out of memory");
			return NULL;
		}
		text = line;
		text[tlen++] = '\n';
		text[tlen] = '\0';
	}
	rc = send_all(q, text, tlen, fd, deadline, err, errlen);
	free(text);
	if (rc < 0)
		return NULL;

	for (;;) {
		json_t *msg = NULL, *v, *mid;
		enum msg_result r = read_message(q, deadline, &msg, err, errlen);

		if (r == MSG_NONE) {
			timeout_error(q, err, errlen);
			return NULL;
		}
		if (r != MSG_OK)
			return NULL;
		if (is_event(msg)) {
			queue_event(q, msg);
			continue;
		}
		mid = json_object_get(msg, "id");
		if (mid && !(json_is_integer(mid) &&
			     json_integer_value(mid) == id)) {
			json_decref(msg);	/* a late answer to an earlier call */
			continue;
		}
		v = json_object_get(msg, "return");
		if (v) {
			json_incref(v);
			json_decref(msg);
			return v;
		}
		v = json_object_get(msg, "error");
		if (v) {
			const char *desc = json_string_value(json_object_get(v, "desc"));

			if (desc)
				err_set(err, errlen, "%s", desc);
			else
				err_set(err, errlen, "%s answered %s with an error",
					q->name, cmd);
			json_decref(msg);
			return NULL;
		}
		json_decref(msg);
		err_set(err, errlen, "protocol error: %s sent an answer with neither 'return' nor 'error'",
			q->name);
		return NULL;
	}
}

json_t *qmp_call(qmp_client_t *q, const char *cmd, json_t *args, char *err,
		 size_t errlen)
{
	return call(q, cmd, args, -1, err, errlen);
}

json_t *qmp_call_fd(qmp_client_t *q, const char *cmd, json_t *args, int fd,
		    char *err, size_t errlen)
{
	if (fd < 0) {
		json_decref(args);
		err_set(err, errlen, "no file descriptor to pass");
		return NULL;
	}
	return call(q, cmd, args, fd, err, errlen);
}

qmp_client_t *qmp_open_fd(int fd, const char *name, unsigned timeout_ms,
			  char *err, size_t errlen)
{
	qmp_client_t *q = calloc(1, sizeof(*q));
	json_t *msg = NULL, *greet, *ret;
	int fl;

	if (!q || !(q->name = strdup(name ? name : "the server")) ||
	    !(q->events = json_array())) {
		if (q) {
			free(q->name);
			free(q);
		}
		close(fd);
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	q->fd = fd;
	q->timeout_ms = timeout_ms ? timeout_ms : QMP_DEFAULT_TIMEOUT_MS;
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);

	switch (read_message(q, now_ms() + q->timeout_ms, &msg, err, errlen)) {
	case MSG_OK:
		break;
	case MSG_NONE:
		err_set(err, errlen, "no greeting from %s within %u ms", q->name,
			q->timeout_ms);
		goto fail;
	default:
		goto fail;
	}
	greet = json_object_get(msg, "QMP");
	if (!json_is_object(greet)) {
		const char *desc = json_string_value(
			json_object_get(json_object_get(msg, "error"), "desc"));

		if (desc)
			err_set(err, errlen, "%s: %s", q->name, desc);
		else
			err_set(err, errlen,
				"protocol error: %s did not greet with a QMP object",
				q->name);
		json_decref(msg);
		goto fail;
	}
	q->greeting = json_incref(greet);
	json_decref(msg);

	ret = qmp_call(q, "qmp_capabilities", NULL, err, errlen);
	if (!ret)
		goto fail;
	json_decref(ret);
	return q;
fail:
	qmp_close(q);
	return NULL;
}

qmp_client_t *qmp_connect(const char *path, unsigned timeout_ms, char *err,
			  size_t errlen)
{
	int fd = qmp_unix_connect(path, timeout_ms, err, errlen);

	if (fd < 0)
		return NULL;
	return qmp_open_fd(fd, path, timeout_ms, err, errlen);
}

void qmp_close(qmp_client_t *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	json_decref(q->greeting);
	json_decref(q->events);
	free(q->buf);
	free(q->name);
	free(q);
}

json_t *qmp_greeting(qmp_client_t *q)
{
	return q->greeting;
}

void qmp_set_timeout(qmp_client_t *q, unsigned timeout_ms)
{
	q->timeout_ms = timeout_ms ? timeout_ms : QMP_DEFAULT_TIMEOUT_MS;
}

int qmp_fd(const qmp_client_t *q)
{
	return q->fd;
}

/* Queues the buffered events; other whole lines (stray answers, garbage)
 * are dropped. Returns -1 when the connection is unusable. */
static int drain_buffer(qmp_client_t *q)
{
	for (;;) {
		json_t *msg = NULL;
		enum msg_result r = take_message(q, &msg, NULL, 0);

		if (r == MSG_NONE)
			return 0;
		if (r == MSG_FAIL)
			return -1;
		if (r == MSG_OK) {
			if (is_event(msg))
				queue_event(q, msg);
			else
				json_decref(msg);
		}
	}
}

int qmp_pump(qmp_client_t *q)
{
	/* Bounded, so that a server flooding events cannot hold us here. */
	for (int i = 0; i < 64 && !q->eof && !q->broken[0]; i++) {
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int pr = poll(&p, 1, 0);

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			break;
		if (fill(q) < 0)
			break;
		if (drain_buffer(q) < 0)
			return -1;
	}
	if (drain_buffer(q) < 0)
		return -1;
	return q->eof || q->broken[0] ? -1 : 0;
}

json_t *qmp_next_event(qmp_client_t *q)
{
	json_t *ev;

	if (!json_array_size(q->events))
		return NULL;
	ev = json_incref(json_array_get(q->events, 0));
	json_array_remove(q->events, 0);
	return ev;
}

static bool event_matches(const json_t *ev, const char *name)
{
	const char *n;

	if (!name)
		return true;
	n = json_string_value(json_object_get(ev, "event"));
	return n && !strcmp(n, name);
}

json_t *qmp_wait_event(qmp_client_t *q, const char *name, unsigned timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	json_t *ev;

	while ((ev = qmp_next_event(q))) {
		if (event_matches(ev, name))
			return ev;
		json_decref(ev);
	}
	for (;;) {
		json_t *msg = NULL;
		enum msg_result r = read_message(q, deadline, &msg, NULL, 0);

		if (r == MSG_NONE || r == MSG_FAIL)
			return NULL;
		if (r == MSG_GARBAGE)
			continue;
		if (is_event(msg) && event_matches(msg, name))
			return msg;
		json_decref(msg);
	}
}
