// SPDX-License-Identifier: MIT
/*
 * tern: the command line of the toolstack, with xm's verbs (Xen's xm),
 * speaking ternd's control protocol (docs/toolstack.md) on a UNIX socket.
 *
 *   tern [--socket PATH] [--json] VERB ARGS...
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tern/tern.h"
#include "tern/usage.h"
#include "util/err.h"
#include "util/log.h"

static const struct {
	const char *name;
	tern_verb_fn fn;
} verb_table[] = {
	{ "create", verb_create },	{ "list", verb_list },
	{ "console", verb_console },	{ "pause", verb_pause },
	{ "unpause", verb_unpause },	{ "shutdown", verb_shutdown },
	{ "destroy", verb_destroy },	{ "reboot", verb_reboot },
	{ "save", verb_save },		{ "restore", verb_restore },
	{ "info", verb_info },		{ "migrate", verb_migrate },
};

/* One line on stderr, after whatever stdout holds. */
static void __attribute__((format(printf, 1, 0)))
report(const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	fflush(stdout);
	log_error("%s", buf);
}

int tern_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(fmt, ap);
	va_end(ap);
	return TERN_EXIT_ERROR;
}

int tern_usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(fmt, ap);
	va_end(ap);
	usage_hint(stderr, verb);
	return TERN_EXIT_USAGE;
}

qmp_client_t *tern_connect(tern_t *t)
{
	char err[512];
	int fd, e;

	if (t->q)
		return t->q;
	fd = qmp_unix_connect(t->socket, TERN_TIMEOUT_MS, err, sizeof(err));
	if (fd < 0) {
		e = errno;
		tern_error("cannot connect to ternd at %s: %s%s", t->socket,
			   strerror(e),
			   e == ENOENT || e == ECONNREFUSED ?
				   " (is ternd running?)" : "");
		return NULL;
	}
	t->q = qmp_open_fd(fd, t->socket, TERN_TIMEOUT_MS, err, sizeof(err));
	if (!t->q)
		tern_error("ternd at %s: %s", t->socket, err);
	return t->q;
}

json_t *tern_call_quiet(tern_t *t, const char *cmd, json_t *args,
			unsigned timeout_ms, char *err, size_t errlen)
{
	json_t *v;

	if (!tern_connect(t)) {
		json_decref(args);
		err_set(err, errlen, "not connected to ternd");
		return NULL;
	}
	qmp_set_timeout(t->q, timeout_ms);
	v = qmp_call(t->q, cmd, args, err, errlen);
	/* Events are of no use here; do not let them pile up. */
	for (json_t *ev; (ev = qmp_next_event(t->q));)
		json_decref(ev);
	return v;
}

json_t *tern_call(tern_t *t, const char *cmd, json_t *args,
		  unsigned timeout_ms)
{
	char err[1024];
	json_t *v;

	if (!tern_connect(t)) {
		json_decref(args);
		return NULL;
	}
	v = tern_call_quiet(t, cmd, args, timeout_ms, err, sizeof(err));
	if (!v)
		tern_error("%s", err);
	return v;
}

int tern_print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (!s)
		return tern_error("cannot encode ternd's answer as JSON");
	printf("%s\n", s);
	free(s);
	if (fflush(stdout) == EOF && errno != EPIPE)
		return tern_error("writing to standard output: %s", strerror(errno));
	return TERN_EXIT_OK;
}

json_t *tern_dom_args(const char *dom)
{
	return json_pack("{s:s}", "domain", dom);
}

char *tern_abspath(const char *path)
{
	char cwd[PATH_MAX];
	char *out;

	if (!*path) {
		tern_error("empty file name");
		return NULL;
	}
	if (path[0] == '/') {
		out = strdup(path);
	} else {
		if (!getcwd(cwd, sizeof(cwd))) {
			tern_error("cannot get the current directory: %s",
				   strerror(errno));
			return NULL;
		}
		while (path[0] == '.' && path[1] == '/')
			for (path += 2; *path == '/'; path++)
				;
		if (asprintf(&out, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "",
			     path) < 0)
			out = NULL;
	}
	if (!out)
		tern_error("out of memory");
	return out;
}

/* Finds "--name" (lng, with an optional "=value") or "-c" in opts. */
static tern_opt_t *find_long(tern_opt_t *opts, const char *arg, size_t n)
{
	for (tern_opt_t *o = opts; o && o->lng; o++)
		if (strlen(o->lng) == n && !strncmp(o->lng, arg, n))
			return o;
	return NULL;
}

static tern_opt_t *find_short(tern_opt_t *opts, char c)
{
	for (tern_opt_t *o = opts; o && o->lng; o++)
		if (o->shrt && o->shrt == c)
			return o;
	return NULL;
}

int tern_parse(tern_t *t, int argc, char **argv, tern_opt_t *opts,
	       int minpos, int maxpos, int *npos)
{
	const char *verb = argv[0];
	char **pos = argv + 1;	/* pos[n] is never past argv[i] */
	bool only_pos = false;
	int n = 0;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];

		if (only_pos || a[0] != '-' || !a[1]) {
			pos[n++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			tern_opt_t *o = find_long(opts, name, len);

			if (len == 4 && !strncmp(name, "json", 4) && !o && !eq) {
				t->json = true;
				continue;
			}
			if (len == 4 && !strncmp(name, "help", 4) && !o && !eq) {
				usage_print_verb(stdout, usage_find(verb));
				return TERN_EXIT_OK;
			}
			if (!o)
				return tern_usage_error(verb, "%s: unknown option '--%.*s'",
							verb, (int)len, name);
			if (!o->has_arg && eq)
				return tern_usage_error(verb, "%s: option '--%s' takes no value",
							verb, o->lng);
			if (o->has_arg) {
				if (eq)
					o->val = eq + 1;
				else if (i + 1 < argc)
					o->val = argv[++i];
				else
					return tern_usage_error(verb, "%s: option '--%s' needs a value",
								verb, o->lng);
			} else {
				o->val = "";
			}
			continue;
		}
		/* One or more short options: "-c", "-cp", "-p8002", "-p 8002". */
		for (char *c = a + 1; *c; c++) {
			tern_opt_t *o = find_short(opts, *c);

			if (!o && *c == 'h') {
				usage_print_verb(stdout, usage_find(verb));
				return TERN_EXIT_OK;
			}
			if (!o)
				return tern_usage_error(verb, "%s: unknown option '-%c'",
							verb, *c);
			if (!o->has_arg) {
				o->val = "";
				continue;
			}
			if (c[1])
				o->val = c + 1;
			else if (i + 1 < argc)
				o->val = argv[++i];
			else
				return tern_usage_error(verb, "%s: option '-%c' needs a value",
							verb, *c);
			break;
		}
	}
	if (n < minpos)
		return tern_usage_error(verb, "%s: %s", verb,
					n ? "too few arguments" : "missing arguments");
	if (maxpos >= 0 && n > maxpos)
		return tern_usage_error(verb, "%s: unexpected argument '%s'", verb,
					pos[maxpos]);
	*npos = n;
	return -1;
}

static int run_help(int argc, char **argv)
{
	const verb_help_t *h;

	if (argc < 2) {
		usage_print_all(stdout);
		return TERN_EXIT_OK;
	}
	if (argc > 2)
		return tern_usage_error("help", "help: one verb at a time");
	h = usage_find(argv[1]);
	if (!h)
		return tern_usage_error(NULL, "help: unknown verb '%s'", argv[1]);
	usage_print_verb(stdout, h);
	return TERN_EXIT_OK;
}

int main(int argc, char **argv)
{
	tern_t t = { 0 };
	tern_verb_fn fn = NULL;
	int i, rc;

	log_set_prog("tern");
	/* A gone reader is EPIPE from write(), not death by signal. */
	signal(SIGPIPE, SIG_IGN);
	t.socket = getenv("TERN_SOCKET");
	if (!t.socket || !*t.socket)
		t.socket = TERN_DEFAULT_SOCKET;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--json")) {
			t.json = true;
		} else if (!strcmp(a, "--socket") || !strcmp(a, "-s")) {
			if (i + 1 >= argc)
				return tern_usage_error(NULL, "option '%s' needs a value", a);
			t.socket = argv[++i];
		} else if (!strncmp(a, "--socket=", 9)) {
			t.socket = a + 9;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage_print_all(stdout);
			return TERN_EXIT_OK;
		} else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
			printf("tern %s\n", TERN_VERSION);
			return TERN_EXIT_OK;
		} else if (!strcmp(a, "--")) {
			i++;
			break;
		} else {
			return tern_usage_error(NULL, "unknown option '%s'", a);
		}
	}
	if (!*t.socket)
		return tern_usage_error(NULL, "the socket path is empty");
	if (i >= argc)
		return tern_usage_error(NULL, "no verb given");
	if (!strcmp(argv[i], "help"))
		return run_help(argc - i, argv + i);
	for (size_t v = 0; v < sizeof(verb_table) / sizeof(verb_table[0]); v++)
		if (!strcmp(argv[i], verb_table[v].name))
			fn = verb_table[v].fn;
	if (!fn)
		return tern_usage_error(NULL, "unknown verb '%s'", argv[i]);
	rc = fn(&t, argc - i, argv + i);
	qmp_close(t.q);
	if (fflush(stdout) == EOF && errno != EPIPE && rc == TERN_EXIT_OK)
		rc = tern_error("writing to standard output: %s", strerror(errno));
	return rc;
}
