// SPDX-License-Identifier: MIT
/*
 * xm's verbs, each one or a few ternd commands (docs/toolstack.md, "The
 * ternd control protocol"). Domain arguments go to ternd as given: a name
 * or a numeric id, ternd resolves them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tern/format.h"
#include "tern/tern.h"

#define CONFIG_MAX (1u << 20)		/* a domain config is a few lines */
#define SHUTDOWN_WAIT_S 120

/* A domain's id (an integer in ternd's answers) as the string to send. */
static void id_string(const json_t *dom, char *buf, size_t len)
{
	const json_t *id = json_object_get(dom, "id");

	if (json_is_integer(id))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
	else
		fmt_clean(json_string_value(id), buf, len);
}

/* "Started domain NAME (id=N)" and the like. */
static int print_started(tern_t *t, const char *what, const json_t *ret)
{
	char name[128], id[32];

	if (t->json)
		return tern_print_json(ret);
	fmt_clean(json_string_value(json_object_get(ret, "name")), name,
		  sizeof(name));
	id_string(ret, id, sizeof(id));
	printf("%s domain %s (id=%s)\n", what, name, id);
	return TERN_EXIT_OK;
}

/* An answer with nothing to tell but with --json; released. */
static int print_done(tern_t *t, json_t *ret)
{
	int rc = t->json ? tern_print_json(ret) : TERN_EXIT_OK;

	json_decref(ret);
	return rc;
}

/* Reads a whole config file, as text ternd can take in a JSON string. */
static char *read_config(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t len = 0;

	if (fd < 0) {
		tern_error("cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		tern_error("cannot read %s: %s", path, strerror(EISDIR));
		return NULL;
	}
	buf = malloc(CONFIG_MAX + 1);
	if (!buf) {
		close(fd);
		tern_error("out of memory");
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, CONFIG_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tern_error("cannot read %s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_MAX) {
			tern_error("%s: too large for a domain config (more than 1 MiB)",
				   path);
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	if (memchr(buf, '\0', len)) {
		tern_error("%s: not a text file", path);
		free(buf);
		return NULL;
	}
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

int verb_create(tern_t *t, int argc, char **argv)
{
	tern_opt_t opts[] = {
		{ "console", 'c', false, NULL },
		{ "paused", 'p', false, NULL },
		{ NULL, 0, false, NULL },
	};
	char **pos = argv + 1;
	char id[32];
	int n, rc = tern_parse(t, argc, argv, opts, 1, 1, &n);
	char *text;
	json_t *args, *ret;

	if (rc >= 0)
		return rc;
	text = read_config(pos[0]);
	if (!text)
		return TERN_EXIT_ERROR;
	args = json_pack("{s:s, s:s, s:b}", "config", text, "path", pos[0],
			 "paused", opts[1].val != NULL);
	free(text);
	if (!args)
		return tern_error("%s: not valid UTF-8 text", pos[0]);
	ret = tern_call(t, "create", args, TERN_LONG_TIMEOUT_MS);
	if (!ret)
		return TERN_EXIT_ERROR;
	rc = print_started(t, "Started", ret);
	id_string(ret, id, sizeof(id));
	json_decref(ret);
	if (rc || !opts[0].val)
		return rc;
	fflush(stdout);
	return tern_attach_console(t, id);
}

/* The fields of a list entry, picked from a query-domain answer. */
static json_t *list_fields(const json_t *dom)
{
	static const char *const keys[] = { "name", "id", "memory", "vcpus",
					    "state", "time" };
	json_t *o = json_object();

	for (size_t i = 0; o && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(dom, keys[i]);

		if (v)
			json_object_set(o, keys[i], v);
	}
	return o;
}

int verb_list(tern_t *t, int argc, char **argv)
{
	tern_opt_t opts[] = {
		{ "long", 'l', false, NULL },
		{ NULL, 0, false, NULL },
	};
	char **pos = argv + 1;
	bool lng;
	int n, rc = tern_parse(t, argc, argv, opts, 0, -1, &n);
	json_t *doms, *dom;
	size_t i;

	if (rc >= 0)
		return rc;
	lng = opts[0].val != NULL;
	if (n == 0 && !lng) {
		doms = tern_call(t, "list", NULL, TERN_TIMEOUT_MS);
		if (!doms)
			return TERN_EXIT_ERROR;
		if (!json_is_array(doms)) {
			json_decref(doms);
			return tern_error("ternd answered list with something that is not a list");
		}
	} else {
		json_t *ids = NULL;
		size_t count = (size_t)n;
		char idbuf[32];

		/* Named domains (or --long): query-domain each, so that
		 * ternd resolves names and ids and says what is unknown. */
		if (n == 0) {
			ids = tern_call(t, "list", NULL, TERN_TIMEOUT_MS);
			if (!json_is_array(ids)) {
				json_decref(ids);
				return ids ? tern_error("ternd answered list with something that is not a list") :
					     TERN_EXIT_ERROR;
			}
			count = json_array_size(ids);
		}
		doms = json_array();
		for (i = 0; i < count; i++) {
			const char *d = pos[i];

			if (ids) {
				id_string(json_array_get(ids, i), idbuf,
					  sizeof(idbuf));
				d = idbuf;
			}
			if (ids) {
				char err[512];

				/* An error here: it went away meanwhile. */
				dom = tern_call_quiet(t, "query-domain",
						      tern_dom_args(d),
						      TERN_TIMEOUT_MS, err,
						      sizeof(err));
				if (!dom && qmp_pump(t->q) < 0) {
					json_decref(doms);
					json_decref(ids);
					return tern_error("%s", err);
				}
				if (!dom)
					continue;
			} else {
				dom = tern_call(t, "query-domain",
						tern_dom_args(d), TERN_TIMEOUT_MS);
				if (!dom) {
					json_decref(doms);
					return TERN_EXIT_ERROR;
				}
			}
			if (lng) {
				json_array_append_new(doms, dom);
			} else {
				json_array_append_new(doms, list_fields(dom));
				json_decref(dom);
			}
		}
		json_decref(ids);
	}

	if (t->json) {
		rc = tern_print_json(doms);
		json_decref(doms);
		return rc;
	}
	if (lng) {
		char *buf = malloc(65536);

		json_array_foreach(doms, i, dom)
			if (buf)
				fputs(fmt_list_long(dom, buf, 65536), stdout);
		free(buf);
	} else {
		char line[512];

		fmt_list_header(line, sizeof(line));
		puts(line);
		json_array_foreach(doms, i, dom) {
			fmt_list_row(dom, line, sizeof(line));
			puts(line);
		}
	}
	json_decref(doms);
	return TERN_EXIT_OK;
}

int verb_console(tern_t *t, int argc, char **argv)
{
	char **pos = argv + 1;
	int n, rc = tern_parse(t, argc, argv, NULL, 1, 1, &n);

	if (rc >= 0)
		return rc;
	return tern_attach_console(t, pos[0]);
}

/* pause, unpause, destroy, reboot: DOM → {} */
static int simple_verb(tern_t *t, int argc, char **argv, const char *cmd)
{
	char **pos = argv + 1;
	int n, rc = tern_parse(t, argc, argv, NULL, 1, 1, &n);
	json_t *ret;

	if (rc >= 0)
		return rc;
	ret = tern_call(t, cmd, tern_dom_args(pos[0]), TERN_TIMEOUT_MS);
	if (!ret)
		return TERN_EXIT_ERROR;
	return print_done(t, ret);
}

int verb_pause(tern_t *t, int argc, char **argv)
{
	return simple_verb(t, argc, argv, "pause");
}

int verb_unpause(tern_t *t, int argc, char **argv)
{
	return simple_verb(t, argc, argv, "unpause");
}

int verb_destroy(tern_t *t, int argc, char **argv)
{
	return simple_verb(t, argc, argv, "destroy");
}

int verb_reboot(tern_t *t, int argc, char **argv)
{
	return simple_verb(t, argc, argv, "reboot");
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Whether domain id is gone from the list, or powered off and kept. */
static int domain_down(tern_t *t, const char *id)
{
	json_t *doms = tern_call(t, "list", NULL, TERN_TIMEOUT_MS), *dom;
	size_t i;
	int down = 1;

	if (!doms)
		return -1;
	json_array_foreach(doms, i, dom) {
		char did[32];
		const char *st = json_string_value(json_object_get(dom, "state"));

		id_string(dom, did, sizeof(did));
		if (strcmp(did, id))
			continue;
		down = st && (!strcmp(st, "shutdown") || !strcmp(st, "crashed"));
	}
	json_decref(doms);
	return down;
}

int verb_shutdown(tern_t *t, int argc, char **argv)
{
	tern_opt_t opts[] = {
		{ "wait", 'w', false, NULL },
		{ NULL, 0, false, NULL },
	};
	char **pos = argv + 1;
	char id[32], name[128];
	int n, rc = tern_parse(t, argc, argv, opts, 1, 1, &n);
	json_t *ret, *dom;
	struct timespec t0, now;

	if (rc >= 0)
		return rc;
	if (opts[0].val) {
		/* Follow the id: a restarted domain of the same name is
		 * another one. */
		dom = tern_call(t, "query-domain", tern_dom_args(pos[0]),
				TERN_TIMEOUT_MS);
		if (!dom)
			return TERN_EXIT_ERROR;
		id_string(dom, id, sizeof(id));
		fmt_clean(json_string_value(json_object_get(dom, "name")), name,
			  sizeof(name));
		json_decref(dom);
	}
	ret = tern_call(t, "shutdown", tern_dom_args(pos[0]), TERN_TIMEOUT_MS);
	if (!ret)
		return TERN_EXIT_ERROR;
	if (opts[0].val) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			int down = domain_down(t, id);

			if (down < 0) {
				json_decref(ret);
				return TERN_EXIT_ERROR;
			}
			if (down)
				break;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec - t0.tv_sec >= SHUTDOWN_WAIT_S) {
				json_decref(ret);
				return tern_error("domain %s did not shut down within %d s",
						  name, SHUTDOWN_WAIT_S);
			}
			sleep_ms(250);
		}
	}
	return print_done(t, ret);
}

/* save and restore: cmd on path (made absolute: ternd has its own cwd). */
static json_t *call_with_file(tern_t *t, const char *cmd, const char *dom,
			      const char *path)
{
	char *file = tern_abspath(path);
	json_t *args, *ret;

	if (!file)
		return NULL;
	args = dom ? json_pack("{s:s, s:s}", "domain", dom, "file", file) :
		     json_pack("{s:s}", "file", file);
	ret = tern_call(t, cmd, args, TERN_LONG_TIMEOUT_MS);
	free(file);
	return ret;
}

int verb_save(tern_t *t, int argc, char **argv)
{
	char **pos = argv + 1;
	int n, rc = tern_parse(t, argc, argv, NULL, 2, 2, &n);
	json_t *ret;

	if (rc >= 0)
		return rc;
	ret = call_with_file(t, "save", pos[0], pos[1]);
	return ret ? print_done(t, ret) : TERN_EXIT_ERROR;
}

int verb_restore(tern_t *t, int argc, char **argv)
{
	char **pos = argv + 1;
	int n, rc = tern_parse(t, argc, argv, NULL, 1, 1, &n);
	json_t *ret;

	if (rc >= 0)
		return rc;
	ret = call_with_file(t, "restore", NULL, pos[0]);
	if (!ret)
		return TERN_EXIT_ERROR;
	rc = print_started(t, "Restored", ret);
	json_decref(ret);
	return rc;
}

int verb_info(tern_t *t, int argc, char **argv)
{
	char buf[8192];
	int n, rc = tern_parse(t, argc, argv, NULL, 0, 0, &n);
	json_t *ret;

	if (rc >= 0)
		return rc;
	ret = tern_call(t, "info", NULL, TERN_TIMEOUT_MS);
	if (!ret)
		return TERN_EXIT_ERROR;
	if (t->json) {
		rc = tern_print_json(ret);
	} else {
		fmt_info(ret, buf, sizeof(buf));
		fputs(buf, stdout);
		rc = TERN_EXIT_OK;
	}
	json_decref(ret);
	return rc;
}
