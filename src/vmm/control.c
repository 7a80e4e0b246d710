// SPDX-License-Identifier: MIT
/*
 * tern-vmm's control commands. The protocol is util/qmp_server's; the
 * commands follow QEMU's QMP where QMP has them (names, arguments and,
 * where a script may match on them, messages).
 */
#include "vmm/control.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef int (*control_op_t)(void *opaque, char *err, size_t errlen);

/* Runs op: {} or, when it failed, the reason it wrote to r->err. */
static json_t *run_op(control_t *c, qmp_req_t *r, control_op_t op,
		      const char *name)
{
	if (!op) {
		qmp_req_error(r, NULL, "%s is not available", name);
		return NULL;
	}
	return op(c->opaque, r->err, sizeof(r->err)) ? NULL : json_object();
}

static json_t *cmd_query_version(void *opaque, qmp_req_t *r)
{
	return qmp_version_json("tern-vmm");
}

static json_t *cmd_query_status(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;
	const char *st = c->ops->status(c->opaque);

	return json_pack("{s:s,s:b}", "status", st, "running",
			 !strcmp(st, "running"));
}

static json_t *cmd_stop(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;

	return run_op(c, r, c->ops->stop, "stop");
}

static json_t *cmd_cont(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;

	return run_op(c, r, c->ops->cont, "cont");
}

static json_t *cmd_quit(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;

	c->ops->quit(c->opaque);
	return json_object();
}

static json_t *cmd_save(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;
	const char *file = qmp_arg_str(r, "file");
	struct timespec t0, t1;
	uint64_t bytes = 0;
	int64_t ms;

	if (!*file) {
		qmp_req_error(r, NULL, "Parameter 'file' must not be empty");
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (c->ops->save(c->opaque, file, &bytes, r->err, sizeof(r->err)))
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	return json_pack("{s:I,s:I}", "bytes", (json_int_t)bytes, "time-ms",
			 (json_int_t)ms);
}

static control_named_fd_t *named_fd(control_t *c, const char *name)
{
	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		if (c->fds[i].fd >= 0 && !strcmp(c->fds[i].name, name))
			return &c->fds[i];
	return NULL;
}

unsigned control_nfds(const control_t *c)
{
	unsigned n = 0;

	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		n += c->fds[i].fd >= 0;
	return n;
}

static json_t *cmd_migrate(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;
	control_migrate_args_t a = { 0 };
	control_named_fd_t *fd_slot = NULL;
	json_int_t downtime, bandwidth, rounds;
	const char *gu;

	if (!c->ops->migrate) {
		qmp_req_error(r, NULL, "migration is not available");
		return NULL;
	}
	a.uri = qmp_arg_str(r, "uri");
	a.fd = -1;
	if (strncmp(a.uri, "tcp:", 4) && strncmp(a.uri, "file:", 5) &&
	    strncmp(a.uri, "fd:", 3)) {
		qmp_req_error(r, NULL, "Parameter 'uri' expects tcp:HOST:PORT, "
			      "file:PATH or fd:NAME");
		return NULL;
	}
	a.live = qmp_arg_bool(r, "live", true);
	if (!qmp_arg_int(r, "downtime-limit", 0, 2000000, 300, &downtime) ||
	    !qmp_arg_int(r, "bandwidth", 0, 1 << 20, 0, &bandwidth) ||
	    !qmp_arg_int(r, "max-rounds", 1, 1000000, 30, &rounds))
		return NULL;
	a.downtime_limit_ms = (uint64_t)downtime;
	a.bandwidth_mbs = (uint64_t)bandwidth;
	a.max_rounds = (uint64_t)rounds;
	gu = qmp_arg_str(r, "give-up");
	if (gu && strcmp(gu, "abort") && strcmp(gu, "stop-copy")) {
		qmp_req_error(r, NULL, "Parameter 'give-up' expects "
			      "'abort' or 'stop-copy'");
		return NULL;
	}
	a.give_up_abort = gu && !strcmp(gu, "abort");
	if (!strncmp(a.uri, "fd:", 3)) {
		fd_slot = named_fd(c, a.uri + 3);
		if (!fd_slot) {
			qmp_req_error(r, NULL, "File descriptor named '%s' "
				      "has not been found", a.uri + 3);
			return NULL;
		}
		a.fd = fd_slot->fd;
	}
	if (c->ops->migrate(c->opaque, &a, r->err, sizeof(r->err)))
		return NULL;
	if (fd_slot) {
		/* The migration owns it now. */
		fd_slot->fd = -1;
		fd_slot->name[0] = '\0';
	}
	return json_object();
}

static json_t *cmd_migrate_cancel(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;

	if (!c->ops->migrate_cancel)
		return json_object();	/* no migration: nothing to cancel */
	return run_op(c, r, c->ops->migrate_cancel, "migrate-cancel");
}

static json_t *cmd_query_migrate(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;
	json_t *ret = c->ops->query_migrate ?
		      c->ops->query_migrate(c->opaque) : NULL;

	return ret ? ret : json_pack("{s:s}", "status", "none");
}

/* ---- file descriptors passed with SCM_RIGHTS (QEMU's getfd) ---- */

/* A name a later request can give back: printable, not a number. */
static bool fdname_check(const char *name, qmp_req_t *r)
{
	size_t len = strlen(name);

	if (!len || len > CONTROL_FDNAME_MAX) {
		qmp_req_error(r, NULL, "Parameter 'fdname' expects a name "
			      "of 1 to %d bytes", CONTROL_FDNAME_MAX);
		return false;
	}
	if (name[0] >= '0' && name[0] <= '9') {
		qmp_req_error(r, NULL, "Parameter 'fdname' expects a name "
			      "not starting with a digit");
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
			qmp_req_error(r, NULL, "Parameter 'fdname' expects a "
				      "name without control characters");
			return false;
		}
	}
	return true;
}

static json_t *cmd_getfd(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;
	const char *name = qmp_arg_str(r, "fdname");
	control_named_fd_t *slot;

	if (!fdname_check(name, r))
		return NULL;
	if (r->fd < 0) {
		qmp_req_error(r, NULL, "No file descriptor supplied via SCM_RIGHTS");
		return NULL;
	}
	slot = named_fd(c, name);
	for (int i = 0; i < CONTROL_MAX_FDS && !slot; i++)
		if (c->fds[i].fd < 0)
			slot = &c->fds[i];
	if (!slot) {
		qmp_req_error(r, NULL, "too many named file descriptors "
			      "(at most %d; closefd frees one)", CONTROL_MAX_FDS);
		return NULL;
	}
	if (slot->fd >= 0)
		close(slot->fd);	/* the name is reused: QEMU does so too */
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	slot->fd = r->fd;
	r->fd = -1;		/* kept: the server does not close it */
	return json_object();
}

static json_t *cmd_closefd(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;
	const char *name = qmp_arg_str(r, "fdname");
	control_named_fd_t *slot = named_fd(c, name);

	if (!slot) {
		qmp_req_error(r, NULL, "File descriptor named '%s' not found",
			      name);
		return NULL;
	}
	close(slot->fd);
	slot->fd = -1;
	slot->name[0] = '\0';
	return json_object();
}

static json_t *cmd_query_name(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;

	/* As QMP: no "name" member when the VM has none. */
	return c->name ? json_pack("{s:s}", "name", c->name) : json_object();
}

static json_t *cmd_system_powerdown(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;

	return run_op(c, r, c->ops->system_powerdown, "system_powerdown");
}

static json_t *cmd_system_reset(void *opaque, qmp_req_t *r)
{
	control_t *c = opaque;

	return run_op(c, r, c->ops->system_reset, "system_reset");
}

static const qmp_arg_t save_args[] = {
	{ "file", QMP_ARG_STRING, true },
	{ NULL, 0, false },
};

static const qmp_arg_t fdname_args[] = {
	{ "fdname", QMP_ARG_STRING, true },
	{ NULL, 0, false },
};

static const qmp_arg_t migrate_args[] = {
	{ "uri", QMP_ARG_STRING, true },
	{ "live", QMP_ARG_BOOL, false },
	{ "downtime-limit", QMP_ARG_INT, false },
	{ "bandwidth", QMP_ARG_INT, false },
	{ "max-rounds", QMP_ARG_INT, false },
	{ "give-up", QMP_ARG_STRING, false },
	{ NULL, 0, false },
};

/* In this order for query-commands. */
static const qmp_cmd_t commands[] = {
	QMP_CMD_CAPABILITIES,
	{ "query-version", cmd_query_version, NULL },
	{ "query-status", cmd_query_status, NULL },
	QMP_CMD_QUERY_COMMANDS,
	{ "stop", cmd_stop, NULL },
	{ "pause", cmd_stop, NULL },
	{ "cont", cmd_cont, NULL },
	{ "resume", cmd_cont, NULL },
	{ "quit", cmd_quit, NULL },
	{ "save", cmd_save, save_args },
	{ "migrate", cmd_migrate, migrate_args },
	{ "migrate-cancel", cmd_migrate_cancel, NULL },
	{ "query-migrate", cmd_query_migrate, NULL },
	{ "getfd", cmd_getfd, fdname_args },
	{ "closefd", cmd_closefd, fdname_args },
	{ "query-name", cmd_query_name, NULL },
	{ "system_powerdown", cmd_system_powerdown, NULL },
	{ "system_reset", cmd_system_reset, NULL },
};

void control_init(control_t *c, const control_ops_t *ops, void *opaque)
{
	memset(c, 0, sizeof(*c));
	c->ops = ops;
	c->opaque = opaque;
	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		c->fds[i].fd = -1;
	qmp_server_init(&c->srv, commands, sizeof(commands) / sizeof(commands[0]),
			qmp_version_json("tern-vmm"), c);
}

void control_set_name(control_t *c, const char *name)
{
	c->name = name;
}

void control_close(control_t *c)
{
	qmp_server_close(&c->srv);
	for (int i = 0; i < CONTROL_MAX_FDS; i++) {
		if (c->fds[i].fd >= 0)
			close(c->fds[i].fd);
		c->fds[i].fd = -1;
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
