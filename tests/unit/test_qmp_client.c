// SPDX-License-Identifier: MIT
/*
 * The QMP client against a real server thread on a socketpair or a UNIX
 * socket: greeting and negotiation, answers, errors, events interleaved
 * with answers, garbage, disconnects, timeouts, over-long lines and file
 * descriptor passing.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/qmp_client.h"

#define GREETING "{\"QMP\": {\"version\": {\"tern\": {\"major\": 0, \"minor\": 1, " \
	"\"micro\": 0}, \"package\": \"test 0.1.0\"}, \"capabilities\": []}}\n"

typedef struct server {
	int fd;
	void (*script)(struct server *s);
	int sync[2];		/* the test writes a byte to let the script go on */
	pthread_t thread;
	int received_fd;
} server_t;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void msleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void srv_send(server_t *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void srv_send(server_t *s, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	size_t len, off = 0;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	len = strlen(buf);
	while (off < len) {
		ssize_t n = send(s->fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

/* Reads one request line; returns its id (or -1) and checks its command. */
static long srv_expect(server_t *s, const char *cmd)
{
	char line[8192];
	size_t n = 0;
	json_t *req, *id;
	long v;

	while (n < sizeof(line) - 1) {
		ssize_t r = read(s->fd, line + n, 1);

		if (r <= 0)
			return -1;
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	req = json_loads(line, 0, NULL);
	if (!req)
		return -1;
	if (cmd && strcmp(json_string_value(json_object_get(req, "execute")) ?: "",
			  cmd)) {
		json_decref(req);
		return -1;
	}
	id = json_object_get(req, "id");
	v = json_is_integer(id) ? (long)json_integer_value(id) : -1;
	json_decref(req);
	return v;
}

static void srv_handshake(server_t *s)
{
	long id;

	srv_send(s, GREETING);
	id = srv_expect(s, "qmp_capabilities");
	srv_send(s, "{\"return\": {}, \"id\": %ld}\n", id);
}

static void srv_wait_go(server_t *s)
{
	char c;

	if (read(s->sync[0], &c, 1) != 1)
		return;
}

static void *srv_main(void *opaque)
{
	server_t *s = opaque;

	s->script(s);
	close(s->fd);
	s->fd = -1;
	return NULL;
}

/* Starts script on one end of a socketpair; returns the client's end. */
static int server_start(server_t *s, void (*script)(server_t *))
{
	int sv[2];

	memset(s, 0, sizeof(*s));
	s->received_fd = -1;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe(s->sync), 0);
	s->fd = sv[1];
	s->script = script;
	assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
	return sv[0];
}

static void server_go(server_t *s)
{
	assert_int_equal(write(s->sync[1], "g", 1), 1);
}

static void server_join(server_t *s)
{
	close(s->sync[1]);	/* a script waiting for "go" ends */
	pthread_join(s->thread, NULL);
	close(s->sync[0]);
	if (s->received_fd >= 0)
		close(s->received_fd);
}

/* ---- answers, errors and events ---- */

static void script_basic(server_t *s)
{
	long id;

	srv_handshake(s);
	id = srv_expect(s, "query-status");
	/* Two events before the answer, the second split across writes
	 * and ended by \r\n; a blank line in between. */
	srv_send(s, "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}\n\n");
	srv_send(s, "{\"event\": \"RES");
	msleep(20);
	srv_send(s, "UME\"}\r\n");
	srv_send(s, "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": %ld}\n",
		 id);
	id = srv_expect(s, "no-such-command");
	srv_send(s, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command no-such-command has not been found\"}, \"id\": %ld}\n",
		 id);
	id = srv_expect(s, "echo");
	srv_send(s, "{\"return\": [1, \"two\"], \"id\": %ld}\n", id);
}

static void test_call_answers_and_events(void **state)
{
	server_t s;
	char err[256] = "";
	qmp_client_t *q = qmp_open_fd(server_start(&s, script_basic), "test.sock",
				      2000, err, sizeof(err));
	json_t *v, *ev;

	assert_non_null(q);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    qmp_greeting(q), "version"), "package")),
			    "test 0.1.0");

	v = qmp_call(q, "query-status", NULL, err, sizeof(err));
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "status")),
			    "running");
	json_decref(v);

	ev = qmp_next_event(q);
	assert_non_null(ev);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "STOP");
	json_decref(ev);
	ev = qmp_next_event(q);
	assert_non_null(ev);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "RESUME");
	json_decref(ev);
	assert_null(qmp_next_event(q));

	v = qmp_call(q, "no-such-command", json_pack("{s:i}", "x", 1), err,
		     sizeof(err));
	assert_null(v);
	assert_string_equal(err, "The command no-such-command has not been found");

	v = qmp_call(q, "echo", NULL, err, sizeof(err));
	assert_true(json_is_array(v));
	assert_int_equal(json_array_size(v), 2);
	json_decref(v);

	qmp_close(q);
	server_join(&s);
}

/* The request on the wire: one line, execute + arguments + id. */
static void script_check_request(server_t *s)
{
	char line[4096];
	size_t n = 0;
	json_t *req;
	const char *ok = "bad";

	srv_handshake(s);
	while (n < sizeof(line) - 1 && read(s->fd, line + n, 1) == 1)
		if (line[n++] == '\n')
			break;
	line[n] = '\0';
	req = json_loads(line, 0, NULL);
	if (req && !strcmp(json_string_value(json_object_get(req, "execute")) ?: "",
			   "save") &&
	    !strcmp(json_string_value(json_object_get(json_object_get(req,
			"arguments"), "file")) ?: "", "/tmp/x y\"z") &&
	    json_is_integer(json_object_get(req, "id")) &&
	    json_object_size(req) == 3 && line[n - 1] == '\n' &&
	    !memchr(line, '\n', n - 1))
		ok = "ok";
	srv_send(s, "{\"return\": \"%s\", \"id\": %lld}\n", ok,
		 req ? (long long)json_integer_value(json_object_get(req, "id")) : 0);
	json_decref(req);
}

static void test_request_format(void **state)
{
	server_t s;
	char err[256] = "";
	qmp_client_t *q = qmp_open_fd(server_start(&s, script_check_request), "t",
				      2000, err, sizeof(err));
	json_t *v;

	assert_non_null(q);
	v = qmp_call(q, "save", json_pack("{s:s}", "file", "/tmp/x y\"z"), err,
		     sizeof(err));
	assert_non_null(v);
	assert_string_equal(json_string_value(v), "ok");
	json_decref(v);
	qmp_close(q);
	server_join(&s);
}

/* ---- garbage and stale answers ---- */

static void script_garbage(server_t *s)
{
	long id1, id2, id3;

	srv_handshake(s);
	id1 = srv_expect(s, "a");
	srv_send(s, "this is { not json\n");
	id2 = srv_expect(s, "b");
	srv_send(s, "[1, 2, 3]\n");
	id3 = srv_expect(s, "c");
	/* Late answers to a and b come first: they must be skipped. */
	srv_send(s, "{\"return\": \"for a\", \"id\": %ld}\n", id1);
	srv_send(s, "{\"error\": {\"desc\": \"for b\"}, \"id\": %ld}\n", id2);
	srv_send(s, "{\"return\": \"for c\", \"id\": %ld}\n", id3);
	srv_expect(s, "d");
	srv_send(s, "{\"neither\": 1}\n");
}

static void test_garbage(void **state)
{
	server_t s;
	char err[256] = "";
	qmp_client_t *q = qmp_open_fd(server_start(&s, script_garbage), "g.sock",
				      2000, err, sizeof(err));
	json_t *v;

	assert_non_null(q);
	assert_null(qmp_call(q, "a", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "invalid JSON from g.sock"));
	assert_null(qmp_call(q, "b", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not an object"));
	v = qmp_call(q, "c", NULL, err, sizeof(err));
	assert_non_null(v);
	assert_string_equal(json_string_value(v), "for c");
	json_decref(v);
	assert_null(qmp_call(q, "d", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "neither 'return' nor 'error'"));
	qmp_close(q);
	server_join(&s);
}

/* ---- disconnects ---- */

static void script_eof_mid_answer(server_t *s)
{
	srv_handshake(s);
	srv_expect(s, "query-status");
	srv_send(s, "{\"return\": {\"sta");
}

static void test_eof_mid_call(void **state)
{
	server_t s;
	char err[256] = "";
	qmp_client_t *q = qmp_open_fd(server_start(&s, script_eof_mid_answer),
				      "/run/x.sock", 5000, err, sizeof(err));
	int64_t t0;

	assert_non_null(q);
	t0 = now_ms();
	assert_null(qmp_call(q, "query-status", NULL, err, sizeof(err)));
	assert_string_equal(err, "connection closed by /run/x.sock");
	assert_true(now_ms() - t0 < 2000);
	/* Later calls fail at once, too. */
	assert_null(qmp_call(q, "query-status", NULL, err, sizeof(err)));
	assert_true(err[0]);
	assert_int_equal(qmp_pump(q), -1);
	qmp_close(q);
	server_join(&s);
}

static void script_close_at_once(server_t *s)
{
}

static void script_bad_greeting(server_t *s)
{
	srv_send(s, "hello there\n");
}

static void script_error_greeting(server_t *s)
{
	srv_send(s, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"too many clients\"}}\n");
}

static void script_no_greeting(server_t *s)
{
	srv_wait_go(s);
}

static void script_caps_refused(server_t *s)
{
	long id;

	srv_send(s, GREETING);
	id = srv_expect(s, "qmp_capabilities");
	srv_send(s, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}, \"id\": %ld}\n",
		 id);
}

static void test_bad_greetings(void **state)
{
	server_t s;
	char err[256];
	int64_t t0;

	assert_null(qmp_open_fd(server_start(&s, script_close_at_once), "c.sock",
				2000, err, sizeof(err)));
	assert_string_equal(err, "connection closed by c.sock");
	server_join(&s);

	assert_null(qmp_open_fd(server_start(&s, script_bad_greeting), "c.sock",
				2000, err, sizeof(err)));
	assert_non_null(strstr(err, "invalid JSON from c.sock"));
	server_join(&s);

	assert_null(qmp_open_fd(server_start(&s, script_error_greeting), "c.sock",
				2000, err, sizeof(err)));
	assert_string_equal(err, "c.sock: too many clients");
	server_join(&s);

	assert_null(qmp_open_fd(server_start(&s, script_caps_refused), "c.sock",
				2000, err, sizeof(err)));
	assert_string_equal(err, "nope");
	server_join(&s);

	t0 = now_ms();
	assert_null(qmp_open_fd(server_start(&s, script_no_greeting), "c.sock",
				200, err, sizeof(err)));
	assert_non_null(strstr(err, "no greeting from c.sock"));
	assert_true(now_ms() - t0 >= 150 && now_ms() - t0 < 1500);
	server_go(&s);
	server_join(&s);
}

/* ---- timeouts ---- */

static void script_slow(server_t *s)
{
	long id1, id2;

	srv_handshake(s);
	id1 = srv_expect(s, "slow");
	srv_wait_go(s);		/* until the client has given up */
	srv_send(s, "{\"return\": \"late\", \"id\": %ld}\n", id1);
	id2 = srv_expect(s, "fast");
	srv_send(s, "{\"return\": \"fast\", \"id\": %ld}\n", id2);
}

static void test_timeout(void **state)
{
	server_t s;
	char err[256] = "";
	qmp_client_t *q = qmp_open_fd(server_start(&s, script_slow), "s.sock", 300,
				      err, sizeof(err));
	int64_t t0, dt;
	json_t *v;

	assert_non_null(q);
	t0 = now_ms();
	assert_null(qmp_call(q, "slow", NULL, err, sizeof(err)));
	dt = now_ms() - t0;
	assert_string_equal(err, "no answer from s.sock within 300 ms");
	assert_true(dt >= 250 && dt < 1500);
	server_go(&s);
	/* The late answer to "slow" arrives first and is not taken. */
	qmp_set_timeout(q, 3000);
	v = qmp_call(q, "fast", NULL, err, sizeof(err));
	assert_non_null(v);
	assert_string_equal(json_string_value(v), "fast");
	json_decref(v);
	qmp_close(q);
	server_join(&s);
}

/* A server that keeps a call waiting by sending events forever (as a
 * trickle) still cannot hold the client beyond its timeout. */
static void script_trickle(server_t *s)
{
	srv_handshake(s);
	srv_expect(s, "x");
	for (int i = 0; i < 200; i++) {
		srv_send(s, "{\"event\": \"TICK\"}\n");
		msleep(10);
	}
}

static void test_timeout_despite_events(void **state)
{
	server_t s;
	char err[256] = "";
	qmp_client_t *q = qmp_open_fd(server_start(&s, script_trickle), "t.sock",
				      300, err, sizeof(err));
	int64_t t0, dt;

	assert_non_null(q);
	t0 = now_ms();
	assert_null(qmp_call(q, "x", NULL, err, sizeof(err)));
	dt = now_ms() - t0;
	assert_true(dt >= 250 && dt < 1000);
	assert_non_null(strstr(err, "no answer from t.sock"));
	qmp_close(q);
	server_join(&s);
}

/* ---- over-long lines ---- */

static void script_long_line(server_t *s)
{
	static char chunk[65536];

	memset(chunk, 'x', sizeof(chunk));
	srv_handshake(s);
	srv_expect(s, "big");
	srv_send(s, "{\"return\": \"");
	/* 2 MiB without a newline; ends when the client hangs up. */
	for (int i = 0; i < 32; i++)
		if (send(s->fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0)
			return;
	srv_send(s, "\"}\n");
}

static void test_long_line(void **state)
{
	server_t s;
	char err[256] = "";
	qmp_client_t *q = qmp_open_fd(server_start(&s, script_long_line), "l.sock",
				      5000, err, sizeof(err));

	assert_non_null(q);
	assert_null(qmp_call(q, "big", NULL, err, sizeof(err)));
	assert_string_equal(err,
			    "protocol error: a line from l.sock is longer than 1 MiB");
	qmp_close(q);
	server_join(&s);
}

/* Just under the limit is fine. */
static void script_big_answer(server_t *s)
{
	static char chunk[65536];
	long id;

	memset(chunk, 'y', sizeof(chunk));
	srv_handshake(s);
	id = srv_expect(s, "big");
	srv_send(s, "{\"id\": %ld, \"return\": \"", id);
	for (int i = 0; i < 15; i++)
		if (send(s->fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0)
			return;
	srv_send(s, "\"}\n");
}

static void test_big_answer(void **state)
{
	server_t s;
	char err[256] = "";
	qmp_client_t *q = qmp_open_fd(server_start(&s, script_big_answer), "b.sock",
				      5000, err, sizeof(err));
	json_t *v;

	assert_non_null(q);
	v = qmp_call(q, "big", NULL, err, sizeof(err));
	assert_non_null(v);
	assert_int_equal(json_string_length(v), 15 * 65536);
	json_decref(v);
	qmp_close(q);
	server_join(&s);
}

/* ---- file descriptor passing ---- */

static void script_getfd(server_t *s)
{
	char buf[4096];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { buf, sizeof(buf) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
	struct cmsghdr *c;
	struct stat st;
	ssize_t n;
	size_t len;
	json_t *req;
	char data[16] = "";

	srv_handshake(s);
	n = recvmsg(s->fd, &mh, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return;
	len = (size_t)n;
	/* The rest of the line, if it came in pieces. */
	while (!memchr(buf, '\n', len) && len < sizeof(buf) - 1 &&
	       read(s->fd, buf + len, 1) == 1)
		len++;
	buf[len] = '\0';
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&s->received_fd, CMSG_DATA(c), sizeof(int));
	req = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
	if (s->received_fd < 0 || fstat(s->received_fd, &st) ||
	    pread(s->received_fd, data, sizeof(data) - 1, 0) < 0) {
		srv_send(s, "{\"error\": {\"desc\": \"no fd\"}, \"id\": %lld}\n",
			 (long long)json_integer_value(json_object_get(req, "id")));
	} else {
		srv_send(s, "{\"return\": {\"ino\": %llu, \"dev\": %llu, \"data\": \"%s\", \"name\": \"%s\"}, \"id\": %lld}\n",
			 (unsigned long long)st.st_ino,
			 (unsigned long long)st.st_dev, data,
			 json_string_value(json_object_get(json_object_get(req,
				"arguments"), "fdname")) ?: "",
			 (long long)json_integer_value(json_object_get(req, "id")));
	}
	json_decref(req);
}

static void test_call_fd(void **state)
{
	server_t s;
	char err[256] = "";
	char path[] = "/tmp/test_qmp_fd_XXXXXX";
	int fd = mkstemp(path);
	struct stat st;
	qmp_client_t *q;
	json_t *v;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "hello", 5), 5);
	assert_int_equal(fstat(fd, &st), 0);
	q = qmp_open_fd(server_start(&s, script_getfd), "f.sock", 2000, err,
			sizeof(err));
	assert_non_null(q);
	v = qmp_call_fd(q, "getfd", json_pack("{s:s}", "fdname", "mig"), fd, err,
			sizeof(err));
	assert_non_null(v);
	assert_int_equal(json_integer_value(json_object_get(v, "ino")), st.st_ino);
	assert_int_equal(json_integer_value(json_object_get(v, "dev")), st.st_dev);
	assert_string_equal(json_string_value(json_object_get(v, "data")), "hello");
	assert_string_equal(json_string_value(json_object_get(v, "name")), "mig");
	json_decref(v);
	/* Our copy stays ours. */
	assert_int_equal(fcntl(fd, F_GETFD) >= 0, 1);
	close(fd);

	assert_null(qmp_call_fd(q, "getfd", NULL, -1, err, sizeof(err)));
	qmp_close(q);
	server_join(&s);
}

/* ---- events outside calls: pump, next_event, wait_event ---- */

static void script_events(server_t *s)
{
	srv_handshake(s);
	srv_wait_go(s);
	srv_send(s, "{\"event\": \"A\"}\n{\"event\": \"B\", \"data\": {\"n\": 2}}\n");
	srv_send(s, "{\"return\": \"stray\"}\ngarbage\n{\"event\": \"C\"}\n");
	srv_wait_go(s);
	srv_send(s, "{\"event\": \"D\"}\n{\"event\": \"E\"}\n{\"event\": \"F\"}\n");
	srv_wait_go(s);
}

static const char *ev_name(json_t *ev)
{
	static char name[32];

	snprintf(name, sizeof(name), "%s",
		 ev ? json_string_value(json_object_get(ev, "event")) ?: "?" : "(none)");
	json_decref(ev);
	return name;
}

static void test_pump_and_wait(void **state)
{
	server_t s;
	char err[256] = "";
	qmp_client_t *q = qmp_open_fd(server_start(&s, script_events), "e.sock",
				      2000, err, sizeof(err));
	struct pollfd p;
	int64_t t0;

	assert_non_null(q);
	assert_int_equal(qmp_pump(q), 0);
	assert_null(qmp_next_event(q));
	server_go(&s);
	p = (struct pollfd){ .fd = qmp_fd(q), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 2000), 1);
	msleep(50);	/* let the rest arrive */
	assert_int_equal(qmp_pump(q), 0);
	assert_string_equal(ev_name(qmp_next_event(q)), "A");
	assert_string_equal(ev_name(qmp_next_event(q)), "B");
	assert_string_equal(ev_name(qmp_next_event(q)), "C");
	assert_null(qmp_next_event(q));

	/* Waiting for nothing in particular times out. */
	t0 = now_ms();
	assert_null(qmp_wait_event(q, NULL, 200));
	assert_true(now_ms() - t0 >= 150);

	server_go(&s);
	assert_string_equal(ev_name(qmp_wait_event(q, "E", 2000)), "E");
	assert_string_equal(ev_name(qmp_wait_event(q, NULL, 2000)), "F");
	server_go(&s);	/* the server hangs up */
	t0 = now_ms();
	assert_null(qmp_wait_event(q, "NEVER", 5000));
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(qmp_pump(q), -1);
	qmp_close(q);
	server_join(&s);
}

/* A flood of events while waiting: the queue keeps the newest 1024. */
static void script_flood(server_t *s)
{
	long id;

	srv_handshake(s);
	id = srv_expect(s, "x");
	for (int i = 0; i < 3000; i++)
		srv_send(s, "{\"event\": \"N\", \"data\": {\"i\": %d}}\n", i);
	srv_send(s, "{\"return\": {}, \"id\": %ld}\n", id);
}

static void test_event_flood(void **state)
{
	server_t s;
	char err[256] = "";
	qmp_client_t *q = qmp_open_fd(server_start(&s, script_flood), "f.sock",
				      5000, err, sizeof(err));
	json_t *v, *ev;
	int n = 0, first = -1;

	assert_non_null(q);
	v = qmp_call(q, "x", NULL, err, sizeof(err));
	assert_non_null(v);
	json_decref(v);
	while ((ev = qmp_next_event(q))) {
		int i = (int)json_integer_value(json_object_get(json_object_get(ev,
								"data"), "i"));

		if (first < 0)
			first = i;
		n++;
		json_decref(ev);
	}
	assert_int_equal(n, 1024);
	assert_int_equal(first, 3000 - 1024);
	qmp_close(q);
	server_join(&s);
}

/* ---- qmp_connect on a real socket path ---- */

typedef struct listener {
	int lfd;
	server_t srv;
} listener_t;

static void *accept_main(void *opaque)
{
	listener_t *l = opaque;

	l->srv.fd = accept(l->lfd, NULL, NULL);
	if (l->srv.fd >= 0) {
		script_basic(&l->srv);
		close(l->srv.fd);
	}
	return NULL;
}

static void test_connect_path(void **state)
{
	char dir[] = "/tmp/test_qmp_XXXXXX";
	char path[100], err[256] = "";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	listener_t l = { 0 };
	pthread_t t;
	qmp_client_t *q;
	json_t *v;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing.sock", dir);
	assert_null(qmp_connect(path, 1000, err, sizeof(err)));
	{
		char want[256];

		snprintf(want, sizeof(want),
			 "cannot connect to %s: No such file or directory", path);
		assert_string_equal(err, want);
	}
	fd = qmp_unix_connect(path, 1000, err, sizeof(err));
	assert_int_equal(fd, -1);
	assert_int_equal(errno, ENOENT);

	/* A socket file nobody listens on. */
	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	l.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(l.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(l.lfd);
	assert_int_equal(qmp_unix_connect(path, 1000, err, sizeof(err)), -1);
	assert_int_equal(errno, ECONNREFUSED);
	unlink(path);

	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	l.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(l.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l.lfd, 1), 0);
	assert_int_equal(pthread_create(&t, NULL, accept_main, &l), 0);
	q = qmp_connect(path, 2000, err, sizeof(err));
	assert_non_null(q);
	v = qmp_call(q, "query-status", NULL, err, sizeof(err));
	assert_non_null(v);
	json_decref(v);
	qmp_close(q);
	pthread_join(t, NULL);
	close(l.lfd);
	unlink(path);

	/* A path longer than sun_path. */
	{
		char longp[200];

		memset(longp, 'a', sizeof(longp) - 1);
		longp[0] = '/';
		longp[sizeof(longp) - 1] = '\0';
		assert_null(qmp_connect(longp, 1000, err, sizeof(err)));
		assert_non_null(strstr(err, "File name too long"));
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_answers_and_events),
		cmocka_unit_test(test_request_format),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_eof_mid_call),
		cmocka_unit_test(test_bad_greetings),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_timeout_despite_events),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_big_answer),
		cmocka_unit_test(test_call_fd),
		cmocka_unit_test(test_pump_and_wait),
		cmocka_unit_test(test_event_flood),
		cmocka_unit_test(test_connect_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
