/* SPDX-License-Identifier: MIT */
/*
 * The tern command line (xm's verbs over ternd's control socket): what the
 * verbs share. Every error is one line "tern: REASON" on stderr and exit
 * status 1; usage errors exit 2.
 */
#ifndef TERN_CLI_H
#define TERN_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "util/qmp_client.h"

#define TERN_DEFAULT_SOCKET "/run/tern/ternd.sock"

/* Bounds of the waits for ternd's answers. */
#define TERN_TIMEOUT_MS 30000		/* ordinary commands */
#define TERN_LONG_TIMEOUT_MS 600000	/* create, save, restore: VM-sized work */

enum { TERN_EXIT_OK = 0, TERN_EXIT_ERROR = 1, TERN_EXIT_USAGE = 2 };

typedef struct tern {
	const char *socket;	/* ternd's control socket */
	bool json;		/* --json: print ternd's answers as JSON */
	qmp_client_t *q;	/* connected on first use */
} tern_t;

/* "tern: REASON" on stderr; returns TERN_EXIT_ERROR. */
int tern_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "tern: REASON" and a usage hint for verb (NULL: the global one);
 * returns TERN_EXIT_USAGE. */
int tern_usage_error(const char *verb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Connects to ternd unless connected; NULL after printing the error. */
qmp_client_t *tern_connect(tern_t *t);

/* Runs cmd (args stolen) on ternd, waiting up to timeout_ms; the answer,
 * or NULL after printing "tern: REASON". */
json_t *tern_call(tern_t *t, const char *cmd, json_t *args,
		  unsigned timeout_ms);

/* As tern_call, without printing: err gets the reason. */
json_t *tern_call_quiet(tern_t *t, const char *cmd, json_t *args,
			unsigned timeout_ms, char *err, size_t errlen);

/* ternd's answer, pretty-printed (2-space indent) on stdout. */
int tern_print_json(const json_t *v);

/* {"domain": dom} */
json_t *tern_dom_args(const char *dom);

/* path made absolute against the current directory (malloc'd), or NULL
 * after printing the error. */
char *tern_abspath(const char *path);

/* A verb's option: filled in by tern_parse. */
typedef struct tern_opt {
	const char *lng;	/* long name without "--"; NULL ends a list */
	char shrt;		/* short letter, 0 for none */
	bool has_arg;
	const char *val;	/* NULL: not given; "" for a given flag; the argument */
} tern_opt_t;

/*
 * Parses a verb's arguments (argv[0] is the verb): options anywhere, "--"
 * ends them; --json and -h/--help are known to every verb. The other
 * arguments are moved, in order, to argv[1..*npos] (as GNU getopt permutes
 * argv); there must be between minpos and maxpos of them (maxpos < 0: no
 * limit). Returns -1 to go on, else the exit status (after a usage error or
 * the verb's help).
 */
int tern_parse(tern_t *t, int argc, char **argv, tern_opt_t *opts,
	       int minpos, int maxpos, int *npos);

/* Verbs: each gets its arguments after the verb (argv[0] is the verb) and
 * returns the exit status. */
typedef int (*tern_verb_fn)(tern_t *t, int argc, char **argv);

int verb_create(tern_t *t, int argc, char **argv);
int verb_list(tern_t *t, int argc, char **argv);
int verb_console(tern_t *t, int argc, char **argv);
int verb_pause(tern_t *t, int argc, char **argv);
int verb_unpause(tern_t *t, int argc, char **argv);
int verb_shutdown(tern_t *t, int argc, char **argv);
int verb_destroy(tern_t *t, int argc, char **argv);
int verb_reboot(tern_t *t, int argc, char **argv);
int verb_save(tern_t *t, int argc, char **argv);
int verb_restore(tern_t *t, int argc, char **argv);
int verb_info(tern_t *t, int argc, char **argv);
int verb_migrate(tern_t *t, int argc, char **argv);

/* Attaches to domain dom's console (query-domain → "console"). */
int tern_attach_console(tern_t *t, const char *dom);

#endif
