// SPDX-License-Identifier: MIT
/*
 * tern migrate: starts the migration on ternd and follows it with
 * query-migrate every 100 ms. ternd keeps the status of an ended migration
 * for a while, so the final numbers can be read after the domain is gone.
 */
#include "tern/progress.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "tern/format.h"

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	interrupted = sig;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned term_width(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
		return ws.ws_col - 1;	/* the last column would wrap */
	return 79;
}

/* Whether anything that shows progress changed (not the clock). */
static bool moved(const mig_status_t *a, const mig_status_t *b)
{
	return strcmp(a->status, b->status) || a->transferred != b->transferred ||
	       a->remaining != b->remaining || a->rounds != b->rounds;
}

typedef struct follow {
	tern_t *t;
	const char *name, *host;
	bool tty;		/* redraw one line on stdout */
	bool drawn;		/* a progress line is on the screen */
	mig_status_t last;
	bool have_last;
} follow_t;

/* Ends the redrawn line so that what comes next starts on its own. */
static void end_line(follow_t *f)
{
	if (f->drawn) {
		fputc('\n', stdout);
		fflush(stdout);
		f->drawn = false;
	}
}

static void show(follow_t *f, const mig_status_t *st)
{
	char line[512];

	if (f->t->json)
		return;
	if (f->tty) {
		fmt_progress_line(st, term_width(), line, sizeof(line));
		printf("\r%s\033[K", line);
		fflush(stdout);
		f->drawn = true;
		return;
	}
	if (!f->have_last || strcmp(f->last.status, st->status)) {
		if (strcmp(st->status, "completed") && strcmp(st->status, "failed") &&
		    strcmp(st->status, "cancelled")) {
			fmt_phase_line(f->name, f->host, st, line, sizeof(line));
			puts(line);
		}
	}
	if (st->rounds && (!f->have_last || st->rounds != f->last.rounds)) {
		fmt_round_line(f->name, st, line, sizeof(line));
		puts(line);
	}
	fflush(stdout);
}

int progress_follow(tern_t *t, const char *dom, const char *name,
		    const char *host)
{
	follow_t f = { .t = t, .name = name, .host = host,
		       .tty = isatty(STDOUT_FILENO) && !t->json };
	struct sigaction sa, old_int, old_term;
	int64_t last_change = now_ms();
	int rc = TERN_EXIT_ERROR;
	json_t *v = NULL;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	interrupted = 0;

	for (;;) {
		char err[512];
		mig_status_t st;
		struct timespec nap = { 0, PROGRESS_POLL_MS * 1000000L };

		json_decref(v);
		/* Generous: ternd may itself be waiting on the relocation
		 * connection (tern-relocation-timeout, 30 s). */
		v = tern_call_quiet(t, "query-migrate", tern_dom_args(dom),
				    2 * TERN_TIMEOUT_MS, err, sizeof(err));
		if (!v) {
			end_line(&f);
			tern_error("lost track of the migration of %s to %s: %s",
				   name, host, err);
			break;
		}
		mig_status_parse(v, &st);
		/* The last report may come from before the end: keep the
		 * most sent seen. */
		if (f.have_last && f.last.transferred > st.transferred)
			st.transferred = f.last.transferred;
		show(&f, &st);
		if (!strcmp(st.status, "completed")) {
			char line[512];

			end_line(&f);
			if (t->json) {
				rc = tern_print_json(v);
			} else {
				fmt_summary(name, host, &st, line, sizeof(line));
				puts(line);
				rc = TERN_EXIT_OK;
			}
			break;
		}
		if (mig_status_final(&st)) {
			end_line(&f);
			if (t->json)
				tern_print_json(v);
			tern_error("migration of %s to %s failed: %s", name, host,
				   st.error[0] ? st.error : st.status);
			break;
		}
		if (!f.have_last || moved(&f.last, &st))
			last_change = now_ms();
		f.last = st;
		f.have_last = true;
		if (now_ms() - last_change > PROGRESS_STALL_S * 1000) {
			end_line(&f);
			tern_error("the migration of %s to %s made no progress for %d s (status %s); stopped following it",
				   name, host, PROGRESS_STALL_S, st.status);
			break;
		}
		if (!interrupted)
			nanosleep(&nap, NULL);
		if (interrupted) {
			end_line(&f);
			tern_error("interrupted; the migration of %s to %s goes on (see tern list)",
				   name, host);
			break;
		}
	}
	json_decref(v);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return rc;
}

/* A decimal option within [min, max]. */
static int parse_uint(const char *verb, const char *opt, const char *s,
		      long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max)
		return tern_usage_error(verb, "%s: %s must be a number from %ld to %ld, not '%s'",
					verb, opt, min, max, s);
	*out = v;
	return -1;
}

int verb_migrate(tern_t *t, int argc, char **argv)
{
	tern_opt_t opts[] = {
		{ "live", 'l', false, NULL },
		{ "port", 'p', true, NULL },
		{ "downtime", 0, true, NULL },
		{ "bandwidth", 0, true, NULL },
		{ NULL, 0, false, NULL },
	};
	char name[128], id[32], err[512];
	int n, rc = tern_parse(t, argc, argv, opts, 2, 2, &n);
	const char *dom, *host;
	long port = 8002, downtime = -1, bw = -1;
	json_t *args, *info, *ret, *jid;

	if (rc >= 0)
		return rc;
	dom = argv[1];
	host = argv[2];
	if (opts[1].val &&
	    (rc = parse_uint(argv[0], "--port", opts[1].val, 1, 65535, &port)) >= 0)
		return rc;
	if (opts[2].val &&
	    (rc = parse_uint(argv[0], "--downtime", opts[2].val, 0, 2000000,
			     &downtime)) >= 0)
		return rc;
	if (opts[3].val &&
	    (rc = parse_uint(argv[0], "--bandwidth", opts[3].val, 0, 1000000,
			     &bw)) >= 0)
		return rc;
	if (!*host)
		return tern_usage_error(argv[0], "migrate: the host is empty");

	/* The name for messages, and the id to follow: after a migration to
	 * this same host, the name is the arriving domain's too. */
	info = tern_call(t, "query-domain", tern_dom_args(dom), TERN_TIMEOUT_MS);
	if (!info)
		return TERN_EXIT_ERROR;
	fmt_clean(json_string_value(json_object_get(info, "name")), name,
		  sizeof(name));
	jid = json_object_get(info, "id");
	if (json_is_integer(jid))
		snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(jid));
	else
		snprintf(id, sizeof(id), "%s", dom);
	json_decref(info);

	args = json_pack("{s:s, s:s, s:I, s:b}", "domain", dom, "host", host,
			 "port", (json_int_t)port, "live", opts[0].val != NULL);
	if (!args)
		return tern_error("%s: not valid UTF-8", host);
	if (downtime >= 0)
		json_object_set_new(args, "downtime-ms", json_integer(downtime));
	if (bw >= 0)
		json_object_set_new(args, "bandwidth", json_integer(bw));
	/* ternd answers once the migration started; its checks of the
	 * source run first, the connection is bounded by its own timeout. */
	ret = tern_call_quiet(t, "migrate", args, 2 * TERN_TIMEOUT_MS, err,
			      sizeof(err));
	if (!ret)
		return tern_error("migration of %s to %s failed: %s", name, host,
				  err);
	json_decref(ret);
	return progress_follow(t, id, name, host);
}
