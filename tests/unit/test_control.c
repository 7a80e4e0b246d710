// SPDX-License-Identifier: MIT
/*
 * Control protocol: greeting, capabilities negotiation, parsing, dispatch,
 * argument checks, events and the socket file's life cycle, on real sockets.
 * File descriptors passed with SCM_RIGHTS (getfd, closefd, migrate fd:NAME),
 * query-name, system_powerdown and system_reset.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "vmm/control.h"

/* A fake VM the commands act on. */
typedef struct fake_vm {
	const char *status;
	int stops, conts, quits, saves;
	char saved_file[256];
	bool fail_save;
	control_t *ctl;
	int migrates, cancels;
	bool migrating;
	control_migrate_args_t mig;
	char mig_uri[256];
	int powerdowns, resets;
	bool fail_power;
} fake_vm_t;

static const char *fake_status(void *opaque)
{
	return ((fake_vm_t *)opaque)->status;
}

static int fake_stop(void *opaque, char *err, size_t errlen)
{
	fake_vm_t *vm = opaque;

	vm->stops++;
	vm->status = "paused";
	qmp_server_event(&vm->ctl->srv, "STOP", NULL);
	return 0;
}

static int fake_cont(void *opaque, char *err, size_t errlen)
{
	fake_vm_t *vm = opaque;

	vm->conts++;
	vm->status = "running";
	qmp_server_event(&vm->ctl->srv, "RESUME", NULL);
	return 0;
}

static void fake_quit(void *opaque)
{
	((fake_vm_t *)opaque)->quits++;
}

static int fake_save(void *opaque, const char *file, uint64_t *bytes, char *err,
		     size_t errlen)
{
	fake_vm_t *vm = opaque;

	vm->saves++;
	snprintf(vm->saved_file, sizeof(vm->saved_file), "%s", file);
	if (vm->fail_save) {
		snprintf(err, errlen, "%s: disk full", file);
		return -1;
	}
	*bytes = 12345;
	return 0;
}

static int fake_migrate(void *opaque, const control_migrate_args_t *a,
			char *err, size_t errlen)
{
	fake_vm_t *vm = opaque;

	if (vm->migrating) {
		snprintf(err, errlen, "There's a migration process in progress");
		return -1;
	}
	vm->migrates++;
	vm->migrating = true;
	vm->mig = *a;
	snprintf(vm->mig_uri, sizeof(vm->mig_uri), "%s", a->uri);
	vm->mig.uri = vm->mig_uri;
	return 0;
}

static int fake_migrate_cancel(void *opaque, char *err, size_t errlen)
{
	fake_vm_t *vm = opaque;

	vm->cancels++;
	vm->migrating = false;
	return 0;
}

static json_t *fake_query_migrate(void *opaque)
{
	fake_vm_t *vm = opaque;

	return json_pack("{s:s}", "status", vm->migrating ? "active" : "none");
}

static int fake_powerdown(void *opaque, char *err, size_t errlen)
{
	fake_vm_t *vm = opaque;

	if (vm->fail_power) {
		snprintf(err, errlen, "this machine has no power button");
		return -1;
	}
	vm->powerdowns++;
	return 0;
}

static int fake_reset(void *opaque, char *err, size_t errlen)
{
	fake_vm_t *vm = opaque;

	if (vm->fail_power) {
		snprintf(err, errlen, "a migration is in progress");
		return -1;
	}
	vm->resets++;
	return 0;
}

static const control_ops_t fake_ops = {
	.status = fake_status, .stop = fake_stop, .cont = fake_cont,
	.quit = fake_quit, .save = fake_save, .migrate = fake_migrate,
	.migrate_cancel = fake_migrate_cancel,
	.query_migrate = fake_query_migrate,
	.system_powerdown = fake_powerdown, .system_reset = fake_reset,
};

/* The commands a monitor without these ops (a minimal one) offers. */
static const control_ops_t bare_ops = {
	.status = fake_status, .stop = fake_stop, .cont = fake_cont,
	.quit = fake_quit, .save = fake_save,
};

typedef struct fixture {
	control_t ctl;
	fake_vm_t vm;
	int fd;			/* the client's end */
} fixture_t;

/* Lets the server handle whatever is ready. */
static void pump(control_t *c)
{
	for (int round = 0; round < 64; round++) {
		struct pollfd pfds[1 + QMP_MAX_CLIENTS];
		int n = qmp_server_pollfds(&c->srv, pfds, 1 + QMP_MAX_CLIENTS);

		if (poll(pfds, (nfds_t)n, 0) <= 0)
			return;
		qmp_server_handle(&c->srv, pfds, n);
	}
}

/* Reads one line from fd (fails the test after 2 s). */
static char *read_line(int fd)
{
	static char line[QMP_LINE_MAX * 2];
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char ch;
		ssize_t r;

		assert_true(poll(&p, 1, 2000) == 1);
		r = read(fd, &ch, 1);
		assert_int_equal(r, 1);
		if (ch == '\n')
			break;
		assert_true(len < sizeof(line) - 1);
		line[len++] = ch;
	}
	line[len] = '\0';
	return line;
}

static json_t *read_json(int fd)
{
	json_error_t e;
	json_t *j = json_loads(read_line(fd), 0, &e);

	assert_non_null(j);
	return j;
}

static bool nothing_to_read(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 50) == 0;
}

static void send_str(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = write(fd, s, len);

		assert_true(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

/* Sends one request line, lets the server run, returns the answer. */
static json_t *request(fixture_t *f, const char *line)
{
	send_str(f->fd, line);
	send_str(f->fd, "\n");
	pump(&f->ctl);
	return read_json(f->fd);
}

static void assert_error(json_t *j, const char *cls, const char *desc_part)
{
	json_t *e = json_object_get(j, "error");

	assert_non_null(e);
	assert_null(json_object_get(j, "return"));
	assert_string_equal(json_string_value(json_object_get(e, "class")), cls);
	if (desc_part)
		assert_non_null(strstr(json_string_value(json_object_get(e, "desc")),
				       desc_part));
	json_decref(j);
}

static json_t *assert_return(json_t *j)
{
	json_t *r = json_object_get(j, "return");

	assert_null(json_object_get(j, "error"));
	assert_non_null(r);
	return r;
}

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_non_null(f);
	f->vm.status = "running";
	f->vm.ctl = &f->ctl;
	control_init(&f->ctl, &fake_ops, &f->vm);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	assert_int_equal(qmp_server_add_client(&f->ctl.srv, sv[0]), 0);
	f->fd = sv[1];
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;

	control_close(&f->ctl);
	close(f->fd);
	free(f);
	return 0;
}

static void negotiate(fixture_t *f)
{
	json_t *g = read_json(f->fd), *j;

	json_decref(g);
	j = request(f, "{\"execute\": \"qmp_capabilities\"}");
	assert_int_equal(json_object_size(assert_return(j)), 0);
	json_decref(j);
}

static void test_greeting(void **state)
{
	fixture_t *f = *state;
	json_t *g = read_json(f->fd);
	json_t *qmp = json_object_get(g, "QMP");
	json_t *ver = json_object_get(qmp, "version");

	assert_non_null(qmp);
	assert_true(json_is_array(json_object_get(qmp, "capabilities")));
	assert_int_equal(json_array_size(json_object_get(qmp, "capabilities")), 0);
	assert_true(json_is_integer(json_object_get(json_object_get(ver, "tern"),
						    "major")));
	assert_true(json_is_integer(json_object_get(json_object_get(ver, "tern"),
						    "micro")));
	assert_non_null(strstr(json_string_value(json_object_get(ver, "package")),
			       "tern-vmm"));
	json_decref(g);
}

static void test_negotiation_required(void **state)
{
	fixture_t *f = *state;
	json_t *j;

	json_decref(read_json(f->fd));
	assert_error(request(f, "{\"execute\": \"query-status\"}"), "CommandNotFound",
		     "qmp_capabilities");
	assert_error(request(f, "{\"execute\": \"stop\"}"), "CommandNotFound",
		     "qmp_capabilities");
	assert_int_equal(f->vm.stops, 0);
	/* An unknown offered capability is refused and negotiation not done. */
	assert_error(request(f, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}"),
		     "GenericError", "oob");
	assert_error(request(f, "{\"execute\": \"query-status\"}"), "CommandNotFound",
		     NULL);
	j = request(f, "{\"execute\": \"qmp_capabilities\", \"arguments\": {}}");
	assert_return(j);
	json_decref(j);
	j = request(f, "{\"execute\": \"query-status\"}");
	assert_string_equal(json_string_value(json_object_get(assert_return(j),
							      "status")), "running");
	json_decref(j);
	assert_error(request(f, "{\"execute\": \"qmp_capabilities\"}"),
		     "CommandNotFound", "already complete");
}

static void test_unknown_command(void **state)
{
	fixture_t *f = *state;

	negotiate(f);
	assert_error(request(f, "{\"execute\": \"frobnicate\"}"), "CommandNotFound",
		     "frobnicate");
}

static void test_bad_json_keeps_connection(void **state)
{
	fixture_t *f = *state;
	json_t *j;

	negotiate(f);
	assert_error(request(f, "{\"execute\": "), "GenericError", "JSON parse error");
	assert_error(request(f, "not json at all"), "GenericError", "JSON parse error");
	assert_error(request(f, "{\"execute\": \"stop\"} {}"), "GenericError",
		     "JSON parse error");
	assert_error(request(f, "[\"execute\", \"stop\"]"), "GenericError",
		     "must be a JSON object");
	assert_error(request(f, "42"), "GenericError", "must be a JSON object");
	assert_error(request(f, "{\"execute\": \"stop\", \"execute\": \"cont\"}"),
		     "GenericError", NULL);
	assert_int_equal(f->vm.stops, 0);
	assert_int_equal(qmp_server_nclients(&f->ctl.srv), 1);
	j = request(f, "{\"execute\": \"query-version\"}");
	assert_non_null(json_object_get(assert_return(j), "tern"));
	json_decref(j);
}

static void test_oversized_line(void **state)
{
	fixture_t *f = *state;
	size_t n = QMP_LINE_MAX + 1000;
	char *big = malloc(n + 1);
	json_t *j;

	negotiate(f);
	assert_non_null(big);
	/* Looks like the start of a valid request, but never ends in time. */
	memset(big, ' ', n);
	memcpy(big, "{\"execute\": \"stop\", \"id\": \"", 27);
	big[n] = '\0';
	for (size_t off = 0; off < n; off += 4096) {
		size_t len = n - off < 4096 ? n - off : 4096;

		assert_int_equal(write(f->fd, big + off, len), (ssize_t)len);
		pump(&f->ctl);
	}
	send_str(f->fd, "\"}\n");
	pump(&f->ctl);
	assert_error(read_json(f->fd), "GenericError", "longer than");
	/* Exactly one answer for the long line: its tail is skipped. */
	assert_true(nothing_to_read(f->fd));
	assert_int_equal(f->vm.stops, 0);
	j = request(f, "{\"execute\": \"query-status\", \"id\": 5}");
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 5);
	json_decref(j);
	/* A line just within the bound is still accepted. */
	memset(big, ' ', QMP_LINE_MAX);
	memcpy(big, "{\"execute\": \"query-status\"}", 27);
	big[QMP_LINE_MAX] = '\0';
	j = request(f, big);
	assert_return(j);
	json_decref(j);
	free(big);
}

static void test_id_echo(void **state)
{
	fixture_t *f = *state;
	json_t *j;

	json_decref(read_json(f->fd));
	j = request(f, "{\"execute\": \"qmp_capabilities\", \"id\": \"neg-1\"}");
	assert_string_equal(json_string_value(json_object_get(j, "id")), "neg-1");
	json_decref(j);
	j = request(f, "{\"id\": {\"seq\": 9, \"tag\": [1, 2]}, \"execute\": \"query-status\"}");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "id"),
							    "seq")), 9);
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "id"),
							 "tag")), 2);
	json_decref(j);
	/* Errors carry the id too. */
	j = request(f, "{\"execute\": \"nope\", \"id\": 77}");
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 77);
	assert_error(j, "CommandNotFound", NULL);
	j = request(f, "{\"execute\": \"query-status\"}");
	assert_null(json_object_get(j, "id"));
	json_decref(j);
}

static void test_request_shape(void **state)
{
	fixture_t *f = *state;

	negotiate(f);
	assert_error(request(f, "{\"arguments\": {}}"), "GenericError",
		     "lacks member 'execute'");
	assert_error(request(f, "{\"execute\": 5}"), "GenericError",
		     "'execute' must be a string");
	assert_error(request(f, "{\"execute\": \"stop\", \"arguments\": [1]}"),
		     "GenericError", "'arguments' must be an object");
	assert_error(request(f, "{\"execute\": \"stop\", \"extra\": 1}"),
		     "GenericError", "'extra' is unexpected");
	assert_int_equal(f->vm.stops, 0);
}

static void test_argument_checks(void **state)
{
	fixture_t *f = *state;
	json_t *j;

	negotiate(f);
	assert_error(request(f, "{\"execute\": \"save\"}"), "GenericError",
		     "Parameter 'file' is missing");
	assert_error(request(f, "{\"execute\": \"save\", \"arguments\": {}}"),
		     "GenericError", "Parameter 'file' is missing");
	assert_error(request(f, "{\"execute\": \"save\", \"arguments\": {\"file\": 3}}"),
		     "GenericError", "Invalid parameter type for 'file', expected: string");
	assert_error(request(f, "{\"execute\": \"save\", \"arguments\": {\"file\": \"\"}}"),
		     "GenericError", "must not be empty");
	assert_error(request(f, "{\"execute\": \"save\", \"arguments\": {\"file\": \"/x\", \"level\": 1}}"),
		     "GenericError", "Parameter 'level' is unexpected");
	assert_error(request(f, "{\"execute\": \"stop\", \"arguments\": {\"now\": true}}"),
		     "GenericError", "Parameter 'now' is unexpected");
	assert_int_equal(f->vm.saves, 0);
	assert_int_equal(f->vm.stops, 0);

	j = request(f, "{\"execute\": \"save\", \"arguments\": {\"file\": \"/tmp/vm.snap\"}, \"id\": 1}");
	assert_int_equal(json_integer_value(json_object_get(assert_return(j), "bytes")),
			 12345);
	assert_true(json_is_integer(json_object_get(assert_return(j), "time-ms")));
	json_decref(j);
	assert_string_equal(f->vm.saved_file, "/tmp/vm.snap");
	f->vm.fail_save = true;
	assert_error(request(f, "{\"execute\": \"save\", \"arguments\": {\"file\": \"/tmp/b\"}}"),
		     "GenericError", "/tmp/b: disk full");
}

static void test_stop_cont_events(void **state)
{
	fixture_t *f = *state;
	int sv[2];
	json_t *j, *ev;

	negotiate(f);
	/* A second client that has not negotiated gets no events. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	assert_int_equal(qmp_server_add_client(&f->ctl.srv, sv[0]), 0);
	json_decref(read_json(sv[1]));

	send_str(f->fd, "{\"execute\": \"stop\", \"id\": 1}\n");
	pump(&f->ctl);
	ev = read_json(f->fd);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "STOP");
	assert_true(json_is_integer(json_object_get(json_object_get(ev, "timestamp"),
						    "seconds")));
	assert_true(json_is_integer(json_object_get(json_object_get(ev, "timestamp"),
						    "microseconds")));
	json_decref(ev);
	j = read_json(f->fd);
	assert_return(j);
	json_decref(j);
	assert_int_equal(f->vm.stops, 1);
	j = request(f, "{\"execute\": \"query-status\"}");
	assert_string_equal(json_string_value(json_object_get(assert_return(j),
							      "status")), "paused");
	assert_false(json_is_true(json_object_get(assert_return(j), "running")));
	json_decref(j);

	/* Aliases. */
	send_str(f->fd, "{\"execute\": \"resume\"}\n");
	pump(&f->ctl);
	ev = read_json(f->fd);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "RESUME");
	json_decref(ev);
	json_decref(read_json(f->fd));
	assert_int_equal(f->vm.conts, 1);
	send_str(f->fd, "{\"execute\": \"pause\"}\n");
	pump(&f->ctl);
	json_decref(read_json(f->fd));
	json_decref(read_json(f->fd));
	assert_int_equal(f->vm.stops, 2);

	/* Events with data. */
	qmp_server_event(&f->ctl.srv, "SHUTDOWN", json_pack("{s:b}", "guest", 1));
	ev = read_json(f->fd);
	assert_true(json_is_true(json_object_get(json_object_get(ev, "data"), "guest")));
	json_decref(ev);
	assert_true(nothing_to_read(sv[1]));
	close(sv[1]);
}

static void test_quit_and_query_commands(void **state)
{
	fixture_t *f = *state;
	json_t *j, *cmd;
	size_t i;
	int seen = 0;

	negotiate(f);
	j = request(f, "{\"execute\": \"query-commands\"}");
	json_array_foreach(assert_return(j), i, cmd) {
		const char *name = json_string_value(json_object_get(cmd, "name"));

		assert_non_null(name);
		seen += !strcmp(name, "stop") + !strcmp(name, "cont") +
			!strcmp(name, "save") + !strcmp(name, "quit") +
			!strcmp(name, "query-status") + !strcmp(name, "qmp_capabilities") +
			!strcmp(name, "getfd") + !strcmp(name, "closefd") +
			!strcmp(name, "query-name") +
			!strcmp(name, "system_powerdown") +
			!strcmp(name, "system_reset");
	}
	assert_int_equal(seen, 11);
	/* The whole list, in its order. */
	{
		char *dump = json_dumps(assert_return(j), JSON_COMPACT);

		assert_string_equal(dump, "[{\"name\":\"qmp_capabilities\"},"
			"{\"name\":\"query-version\"},{\"name\":\"query-status\"},"
			"{\"name\":\"query-commands\"},{\"name\":\"stop\"},"
			"{\"name\":\"pause\"},{\"name\":\"cont\"},"
			"{\"name\":\"resume\"},{\"name\":\"quit\"},"
			"{\"name\":\"save\"},{\"name\":\"migrate\"},"
			"{\"name\":\"migrate-cancel\"},{\"name\":\"query-migrate\"},"
			"{\"name\":\"getfd\"},{\"name\":\"closefd\"},"
			"{\"name\":\"query-name\"},{\"name\":\"system_powerdown\"},"
			"{\"name\":\"system_reset\"}]");
		free(dump);
	}
	json_decref(j);
	j = request(f, "{\"execute\": \"quit\"}");
	assert_return(j);
	json_decref(j);
	assert_int_equal(f->vm.quits, 1);
}

static void test_framing(void **state)
{
	fixture_t *f = *state;
	json_t *j;

	negotiate(f);
	/* Several requests in one write, blank lines, CRLF, a split request. */
	send_str(f->fd, "\n  \r\n{\"execute\": \"query-status\", \"id\": 1}\r\n"
			"{\"execute\": \"query-status\", \"id\": 2}\n{\"execute\": \"query-");
	pump(&f->ctl);
	for (int id = 1; id <= 2; id++) {
		j = read_json(f->fd);
		assert_int_equal(json_integer_value(json_object_get(j, "id")), id);
		json_decref(j);
	}
	assert_true(nothing_to_read(f->fd));
	send_str(f->fd, "status\", \"id\": 3}\n");
	pump(&f->ctl);
	j = read_json(f->fd);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 3);
	json_decref(j);
}

static void test_disconnect_mid_line(void **state)
{
	fixture_t *f = *state;

	negotiate(f);
	send_str(f->fd, "{\"execute\": \"st");
	pump(&f->ctl);
	assert_int_equal(qmp_server_nclients(&f->ctl.srv), 1);
	close(f->fd);
	pump(&f->ctl);
	assert_int_equal(qmp_server_nclients(&f->ctl.srv), 0);
	assert_int_equal(f->vm.stops, 0);
	/* The server keeps working for new clients. */
	f->fd = open("/dev/null", O_RDONLY);
	qmp_server_event(&f->ctl.srv, "STOP", NULL);
}

/* ---- socket file ---- */

static char tmpdir[64];

static void fill_addr(struct sockaddr_un *sa, const char *path)
{
	assert_true(strlen(path) < sizeof(sa->sun_path));
	memcpy(sa->sun_path, path, strlen(path) + 1);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	fill_addr(&sa, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_listen_lifecycle(void **state)
{
	fake_vm_t vm = { .status = "running" };
	control_t a, b;
	char path[128], err[256];
	struct stat st;
	int fds[QMP_MAX_CLIENTS + 1];
	json_t *j;

	strcpy(tmpdir, "/tmp/tern-ctl-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/ctl.sock", tmpdir);
	vm.ctl = &a;
	control_init(&a, &fake_ops, &vm);
	assert_int_equal(qmp_server_listen(&a.srv, path, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));

	/* A live socket is not taken over. */
	control_init(&b, &fake_ops, &vm);
	assert_int_equal(qmp_server_listen(&b.srv, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "in use"));

	/* Up to QMP_MAX_CLIENTS clients, each greeted; one more is refused. */
	for (int i = 0; i <= QMP_MAX_CLIENTS; i++) {
		fds[i] = connect_to(path);
		assert_true(fds[i] >= 0);
		pump(&a);
	}
	for (int i = 0; i < QMP_MAX_CLIENTS; i++) {
		j = read_json(fds[i]);
		assert_non_null(json_object_get(j, "QMP"));
		json_decref(j);
	}
	assert_int_equal(qmp_server_nclients(&a.srv), QMP_MAX_CLIENTS);
	j = read_json(fds[QMP_MAX_CLIENTS]);
	assert_error(j, "GenericError", "too many");
	for (int i = 0; i <= QMP_MAX_CLIENTS; i++)
		close(fds[i]);
	pump(&a);
	assert_int_equal(qmp_server_nclients(&a.srv), 0);

	/* Closing removes the socket file. */
	control_close(&a);
	assert_int_equal(stat(path, &st), -1);

	/* A stale socket (its server gone without cleaning up) is replaced. */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		fill_addr(&sa, path);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(fd);
	}
	assert_int_equal(stat(path, &st), 0);
	control_init(&b, &fake_ops, &vm);
	assert_int_equal(qmp_server_listen(&b.srv, path, err, sizeof(err)), 0);
	fds[0] = connect_to(path);
	assert_true(fds[0] >= 0);
	pump(&b);
	json_decref(read_json(fds[0]));
	close(fds[0]);
	control_close(&b);

	/* A regular file is never replaced. */
	fds[0] = open(path, O_CREAT | O_WRONLY, 0644);
	close(fds[0]);
	control_init(&b, &fake_ops, &vm);
	assert_int_equal(qmp_server_listen(&b.srv, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(stat(path, &st), 0);
	unlink(path);

	/* A directory that does not exist. */
	snprintf(path, sizeof(path), "%s/missing/ctl.sock", tmpdir);
	assert_int_equal(qmp_server_listen(&b.srv, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	rmdir(tmpdir);
}

/* ---- atomic file writes ---- */

static int write_hello(void *opaque, int fd, char *err, size_t errlen)
{
	const char *s = opaque;

	return write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
}

static int write_half_then_fail(void *opaque, int fd, char *err, size_t errlen)
{
	if (write(fd, "partial", 7) != 7)
		return -1;
	snprintf(err, errlen, "stream broke");
	return -1;
}

static size_t count_entries(const char *dir)
{
	char cmd[128];
	FILE *p;
	size_t n = 0;
	char line[256];

	snprintf(cmd, sizeof(cmd), "ls -A %s", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		n++;
	pclose(p);
	return n;
}

static void test_write_file_atomic(void **state)
{
	char dir[] = "/tmp/tern-save-XXXXXX", path[128], buf[64], err[256];
	uint64_t bytes = 0;
	struct stat st;
	int fd;
	ssize_t n;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vm.snap", dir);
	assert_int_equal(control_write_file(path, write_hello, "first version", &bytes,
					    err, sizeof(err)), 0);
	assert_int_equal(bytes, 13);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* A failed write leaves the old file and no temporary behind. */
	assert_int_equal(control_write_file(path, write_half_then_fail, NULL, &bytes,
					    err, sizeof(err)), -1);
	assert_string_equal(err, "stream broke");
	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_int_equal(n, 13);
	buf[n] = '\0';
	assert_string_equal(buf, "first version");
	assert_int_equal(count_entries(dir), 1);

	/* Replacing works. */
	assert_int_equal(control_write_file(path, write_hello, "v2", &bytes, err,
					    sizeof(err)), 0);
	assert_int_equal(bytes, 2);
	assert_int_equal(count_entries(dir), 1);

	/* Errors name the problem. */
	assert_int_equal(control_write_file(dir, write_hello, "x", &bytes, err,
					    sizeof(err)), -1);
	assert_non_null(strstr(err, "directory"));
	snprintf(path, sizeof(path), "%s/nodir/vm.snap", dir);
	assert_int_equal(control_write_file(path, write_hello, "x", &bytes, err,
					    sizeof(err)), -1);
	assert_non_null(strstr(err, "nodir"));
	snprintf(path, sizeof(path), "%s/vm.snap", dir);
	unlink(path);
	rmdir(dir);
}

/* migrate: defaults, every argument, bad values; cancel; query. */
static void test_migrate_commands(void **state)
{
	fixture_t *f = *state;
	json_t *j;

	negotiate(f);
	j = request(f, "{\"execute\": \"query-migrate\"}");
	assert_string_equal(json_string_value(json_object_get(assert_return(j),
							      "status")), "none");
	json_decref(j);
	assert_error(request(f, "{\"execute\": \"migrate\"}"), "GenericError",
		     "Parameter 'uri' is missing");
	assert_error(request(f, "{\"execute\": \"migrate\", \"arguments\": "
			     "{\"uri\": \"udp:x:1\"}}"), "GenericError",
		     "tcp:HOST:PORT");
	assert_error(request(f, "{\"execute\": \"migrate\", \"arguments\": "
			     "{\"uri\": \"tcp:h:1\", \"give-up\": \"never\"}}"),
		     "GenericError", "give-up");
	assert_error(request(f, "{\"execute\": \"migrate\", \"arguments\": "
			     "{\"uri\": \"tcp:h:1\", \"max-rounds\": 0}}"),
		     "GenericError", "max-rounds");
	assert_error(request(f, "{\"execute\": \"migrate\", \"arguments\": "
			     "{\"uri\": \"tcp:h:1\", \"bandwidth\": -1}}"),
		     "GenericError", "bandwidth");
	assert_error(request(f, "{\"execute\": \"migrate\", \"arguments\": "
			     "{\"uri\": \"tcp:h:1\", \"live\": 1}}"),
		     "GenericError", "expected: boolean");
	assert_int_equal(f->vm.migrates, 0);

	j = request(f, "{\"execute\": \"migrate\", \"arguments\": "
		    "{\"uri\": \"tcp:127.0.0.1:4444\"}}");
	assert_int_equal(json_object_size(assert_return(j)), 0);
	json_decref(j);
	assert_int_equal(f->vm.migrates, 1);
	assert_string_equal(f->vm.mig.uri, "tcp:127.0.0.1:4444");
	assert_true(f->vm.mig.live);
	assert_int_equal(f->vm.mig.downtime_limit_ms, 300);
	assert_int_equal(f->vm.mig.bandwidth_mbs, 0);
	assert_int_equal(f->vm.mig.max_rounds, 30);
	assert_false(f->vm.mig.give_up_abort);
	/* Only one at a time. */
	assert_error(request(f, "{\"execute\": \"migrate\", \"arguments\": "
			     "{\"uri\": \"file:/tmp/x\"}}"), "GenericError",
		     "in progress");
	j = request(f, "{\"execute\": \"query-migrate\"}");
	assert_string_equal(json_string_value(json_object_get(assert_return(j),
							      "status")), "active");
	json_decref(j);
	j = request(f, "{\"execute\": \"migrate-cancel\"}");
	assert_int_equal(json_object_size(assert_return(j)), 0);
	json_decref(j);
	assert_int_equal(f->vm.cancels, 1);

	j = request(f, "{\"execute\": \"migrate\", \"arguments\": "
		    "{\"uri\": \"file:/tmp/x\", \"live\": false, "
		    "\"downtime-limit\": 50, \"bandwidth\": 100, "
		    "\"max-rounds\": 4, \"give-up\": \"abort\"}}");
	assert_int_equal(json_object_size(assert_return(j)), 0);
	json_decref(j);
	assert_false(f->vm.mig.live);
	assert_int_equal(f->vm.mig.downtime_limit_ms, 50);
	assert_int_equal(f->vm.mig.bandwidth_mbs, 100);
	assert_int_equal(f->vm.mig.max_rounds, 4);
	assert_true(f->vm.mig.give_up_abort);
}

/* ---- file descriptors with SCM_RIGHTS ---- */

/* Sends s (no newline added) with the given fds in one sendmsg. */
static void send_fds(int fd, const char *str, const int *fds, unsigned n)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { (void *)str, strlen(str) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	assert_true(n <= 8);
	memset(&cbuf, 0, sizeof(cbuf));
	if (n) {
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	assert_int_equal(sendmsg(fd, &mh, 0), (ssize_t)strlen(str));
}

/* One request line carrying fd; the answer. */
static json_t *request_fd(fixture_t *f, const char *line, int fd)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s\n", line);
	send_fds(f->fd, buf, &fd, 1);
	pump(&f->ctl);
	return read_json(f->fd);
}

/*
 * A pipe whose write end is passed: once every copy of the write end is
 * closed, the read end sees end of file. So a test can tell whether the
 * server still holds the fd it was given.
 */
typedef struct probe {
	int r, w;
} probe_t;

static probe_t probe_new(void)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	return (probe_t){ p[0], p[1] };
}

/* Drops the test's own copy of the write end: only the server's remains. */
static void probe_give(probe_t *p)
{
	close(p->w);
	p->w = -1;
}

static bool probe_held(const probe_t *p)
{
	struct pollfd pf = { .fd = p->r, .events = POLLIN };

	return poll(&pf, 1, 0) == 0;
}

static void probe_free(probe_t *p)
{
	if (p->w >= 0)
		close(p->w);
	close(p->r);
}

static int named(control_t *c, const char *name)
{
	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		if (c->fds[i].fd >= 0 && !strcmp(c->fds[i].name, name))
			return c->fds[i].fd;
	return -1;
}

static void test_getfd_closefd(void **state)
{
	fixture_t *f = *state;
	probe_t a = probe_new(), b = probe_new(), c = probe_new();
	json_t *j;
	int fd;

	negotiate(f);
	/* No fd with the request. */
	assert_error(request(f, "{\"execute\": \"getfd\", \"arguments\": "
			     "{\"fdname\": \"mig\"}}"), "GenericError",
		     "No file descriptor supplied via SCM_RIGHTS");
	assert_error(request_fd(f, "{\"execute\": \"getfd\"}", a.w),
		     "GenericError", "Parameter 'fdname' is missing");
	/* Kept under its name, close-on-exec. */
	j = request_fd(f, "{\"execute\": \"getfd\", \"arguments\": "
		       "{\"fdname\": \"mig\"}, \"id\": 7}", a.w);
	assert_int_equal(json_object_size(assert_return(j)), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 7);
	json_decref(j);
	probe_give(&a);
	assert_true(probe_held(&a));
	assert_int_equal(control_nfds(&f->ctl), 1);
	fd = named(&f->ctl, "mig");
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* The same name again: the old fd is closed, the new one kept. */
	j = request_fd(f, "{\"execute\": \"getfd\", \"arguments\": "
		       "{\"fdname\": \"mig\"}}", b.w);
	assert_return(j);
	json_decref(j);
	probe_give(&b);
	assert_false(probe_held(&a));
	assert_true(probe_held(&b));
	assert_int_equal(control_nfds(&f->ctl), 1);
	/* closefd */
	assert_error(request(f, "{\"execute\": \"closefd\", \"arguments\": "
			     "{\"fdname\": \"nope\"}}"), "GenericError",
		     "File descriptor named 'nope' not found");
	j = request(f, "{\"execute\": \"closefd\", \"arguments\": "
		    "{\"fdname\": \"mig\"}}");
	assert_return(j);
	json_decref(j);
	assert_false(probe_held(&b));
	assert_int_equal(control_nfds(&f->ctl), 0);
	assert_error(request(f, "{\"execute\": \"closefd\", \"arguments\": "
			     "{\"fdname\": \"mig\"}}"), "GenericError",
		     "not found");
	/* Bad names: the fd is not kept. */
	assert_error(request_fd(f, "{\"execute\": \"getfd\", \"arguments\": "
				"{\"fdname\": \"3fd\"}}", c.w), "GenericError",
		     "not starting with a digit");
	assert_error(request_fd(f, "{\"execute\": \"getfd\", \"arguments\": "
				"{\"fdname\": \"\"}}", c.w), "GenericError",
		     "fdname");
	assert_error(request_fd(f, "{\"execute\": \"getfd\", \"arguments\": "
				"{\"fdname\": \"a\\nb\"}}", c.w),
		     "GenericError", "control characters");
	probe_give(&c);
	assert_false(probe_held(&c));
	assert_int_equal(control_nfds(&f->ctl), 0);
	probe_free(&a);
	probe_free(&b);
	probe_free(&c);
}

/* An fd with any other command, or with an unparsable line, is closed. */
static void test_fd_with_other_command(void **state)
{
	fixture_t *f = *state;
	probe_t a = probe_new(), b = probe_new(), c = probe_new();
	json_t *g, *j;

	/* Before negotiation: refused, not kept. */
	g = read_json(f->fd);
	json_decref(g);
	assert_error(request_fd(f, "{\"execute\": \"getfd\", \"arguments\": "
				"{\"fdname\": \"x\"}}", a.w), "CommandNotFound",
		     "qmp_capabilities");
	probe_give(&a);
	assert_false(probe_held(&a));
	j = request(f, "{\"execute\": \"qmp_capabilities\"}");
	json_decref(j);
	j = request_fd(f, "{\"execute\": \"query-status\"}", b.w);
	assert_return(j);
	json_decref(j);
	probe_give(&b);
	assert_false(probe_held(&b));
	assert_error(request_fd(f, "{not json", c.w), "GenericError",
		     "JSON parse error");
	probe_give(&c);
	assert_false(probe_held(&c));
	assert_int_equal(control_nfds(&f->ctl), 0);
	probe_free(&a);
	probe_free(&b);
	probe_free(&c);
}

/* The fd belongs to the line it was sent with, however the bytes were
 * split or merged on the way. */
static void test_fd_line_attachment(void **state)
{
	fixture_t *f = *state;
	probe_t a = probe_new(), b = probe_new(), c = probe_new();
	int two[2];
	json_t *j;

	negotiate(f);
	/* A plain line, then getfd with the fd, read by the server at once. */
	send_str(f->fd, "{\"execute\": \"query-status\", \"id\": 1}\n");
	send_fds(f->fd, "{\"execute\": \"getfd\", \"arguments\": "
		 "{\"fdname\": \"one\"}, \"id\": 2}\n", &a.w, 1);
	pump(&f->ctl);
	j = read_json(f->fd);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 1);
	json_decref(j);
	j = read_json(f->fd);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 2);
	assert_return(j);
	json_decref(j);
	probe_give(&a);
	assert_true(probe_held(&a));
	/* The start of a getfd line, then its end with the fd. */
	send_str(f->fd, "{\"execute\": \"getfd\", ");
	pump(&f->ctl);
	assert_true(nothing_to_read(f->fd));
	send_fds(f->fd, "\"arguments\": {\"fdname\": \"two\"}}\n", &b.w, 1);
	pump(&f->ctl);
	j = read_json(f->fd);
	assert_return(j);
	json_decref(j);
	probe_give(&b);
	assert_true(probe_held(&b));
	/* Two fds in one message: the first is kept, the second closed. */
	two[0] = c.w;
	two[1] = a.r;	/* any fd will do */
	send_fds(f->fd, "{\"execute\": \"getfd\", \"arguments\": "
		 "{\"fdname\": \"three\"}}\n", two, 2);
	pump(&f->ctl);
	j = read_json(f->fd);
	assert_return(j);
	json_decref(j);
	probe_give(&c);
	assert_true(probe_held(&c));
	assert_int_equal(control_nfds(&f->ctl), 3);
	/* Everything is closed with the server. */
	control_close(&f->ctl);
	assert_false(probe_held(&a));
	assert_false(probe_held(&b));
	assert_false(probe_held(&c));
	probe_free(&a);
	probe_free(&b);
	probe_free(&c);
}

/* At most CONTROL_MAX_FDS names. */
static void test_fd_limit(void **state)
{
	fixture_t *f = *state;
	probe_t p[CONTROL_MAX_FDS + 1];
	char line[128];
	json_t *j;

	negotiate(f);
	for (int i = 0; i <= CONTROL_MAX_FDS; i++) {
		p[i] = probe_new();
		snprintf(line, sizeof(line), "{\"execute\": \"getfd\", "
			 "\"arguments\": {\"fdname\": \"fd%d\"}}", i);
		j = request_fd(f, line, p[i].w);
		probe_give(&p[i]);
		if (i < CONTROL_MAX_FDS) {
			assert_return(j);
			json_decref(j);
			assert_true(probe_held(&p[i]));
		} else {
			assert_error(j, "GenericError", "at most 8");
			assert_false(probe_held(&p[i]));
		}
	}
	assert_int_equal(control_nfds(&f->ctl), CONTROL_MAX_FDS);
	/* Reusing a name still works when full. */
	{
		probe_t q = probe_new();

		j = request_fd(f, "{\"execute\": \"getfd\", \"arguments\": "
			       "{\"fdname\": \"fd0\"}}", q.w);
		assert_return(j);
		json_decref(j);
		probe_give(&q);
		assert_true(probe_held(&q));
		assert_false(probe_held(&p[0]));
		probe_free(&q);
	}
	for (int i = 0; i <= CONTROL_MAX_FDS; i++)
		probe_free(&p[i]);
}

/* migrate fd:NAME hands the named fd over, once; unknown names fail. */
static void test_migrate_fd(void **state)
{
	fixture_t *f = *state;
	probe_t a = probe_new();
	json_t *j;

	negotiate(f);
	assert_error(request(f, "{\"execute\": \"migrate\", \"arguments\": "
			     "{\"uri\": \"fd:nope\"}}"), "GenericError",
		     "File descriptor named 'nope' has not been found");
	assert_int_equal(f->vm.migrates, 0);
	j = request_fd(f, "{\"execute\": \"getfd\", \"arguments\": "
		       "{\"fdname\": \"mig\"}}", a.w);
	assert_return(j);
	json_decref(j);
	probe_give(&a);
	/* A migrate that fails leaves the fd named. */
	f->vm.migrating = true;
	assert_error(request(f, "{\"execute\": \"migrate\", \"arguments\": "
			     "{\"uri\": \"fd:mig\"}}"), "GenericError",
		     "in progress");
	assert_int_equal(control_nfds(&f->ctl), 1);
	f->vm.migrating = false;
	j = request(f, "{\"execute\": \"migrate\", \"arguments\": "
		    "{\"uri\": \"fd:mig\", \"live\": false}}");
	assert_return(j);
	json_decref(j);
	assert_int_equal(f->vm.migrates, 1);
	assert_string_equal(f->vm.mig.uri, "fd:mig");
	assert_false(f->vm.mig.live);
	/* The migration owns it now: not named, not closed. */
	assert_true(f->vm.mig.fd >= 0);
	assert_int_equal(control_nfds(&f->ctl), 0);
	assert_true(probe_held(&a));
	close(f->vm.mig.fd);
	assert_false(probe_held(&a));
	/* Used up. */
	f->vm.migrating = false;
	assert_error(request(f, "{\"execute\": \"migrate\", \"arguments\": "
			     "{\"uri\": \"fd:mig\"}}"), "GenericError",
		     "has not been found");
	/* tcp: and file: get no fd. */
	j = request(f, "{\"execute\": \"migrate\", \"arguments\": "
		    "{\"uri\": \"tcp:127.0.0.1:4444\"}}");
	assert_return(j);
	json_decref(j);
	assert_int_equal(f->vm.mig.fd, -1);
	probe_free(&a);
}

static void test_name_power_reset(void **state)
{
	fixture_t *f = *state;
	json_t *j;

	negotiate(f);
	j = request(f, "{\"execute\": \"query-name\"}");
	assert_int_equal(json_object_size(assert_return(j)), 0);
	json_decref(j);
	control_set_name(&f->ctl, "vm1");
	j = request(f, "{\"execute\": \"query-name\"}");
	assert_string_equal(json_string_value(json_object_get(assert_return(j),
							      "name")), "vm1");
	json_decref(j);
	j = request(f, "{\"execute\": \"system_powerdown\"}");
	assert_return(j);
	json_decref(j);
	j = request(f, "{\"execute\": \"system_reset\"}");
	assert_return(j);
	json_decref(j);
	assert_int_equal(f->vm.powerdowns, 1);
	assert_int_equal(f->vm.resets, 1);
	f->vm.fail_power = true;
	assert_error(request(f, "{\"execute\": \"system_powerdown\"}"),
		     "GenericError", "no power button");
	assert_error(request(f, "{\"execute\": \"system_reset\"}"),
		     "GenericError", "in progress");
	assert_error(request(f, "{\"execute\": \"system_reset\", "
			     "\"arguments\": {\"x\": 1}}"), "GenericError",
		     "Parameter 'x' is unexpected");
	assert_int_equal(f->vm.powerdowns, 1);
	assert_int_equal(f->vm.resets, 1);
	/* A monitor without them answers, never crashes. */
	f->ctl.ops = &bare_ops;
	assert_error(request(f, "{\"execute\": \"system_powerdown\"}"),
		     "GenericError", "not available");
	assert_error(request(f, "{\"execute\": \"system_reset\"}"),
		     "GenericError", "not available");
	assert_error(request(f, "{\"execute\": \"migrate\", \"arguments\": "
			     "{\"uri\": \"tcp:h:1\"}}"), "GenericError",
		     "not available");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_greeting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negotiation_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_json_keeps_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_argument_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_cont_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quit_and_query_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_mid_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_getfd_closefd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_with_other_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_line_attachment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_power_reset, setup, teardown),
		cmocka_unit_test(test_listen_lifecycle),
		cmocka_unit_test(test_write_file_atomic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
