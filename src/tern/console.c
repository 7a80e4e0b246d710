// SPDX-License-Identifier: MIT
/*
 * tern console, as xm console: the user's keys go to the guest's serial
 * console and its output comes back; Ctrl-] detaches. On a terminal the
 * terminal is raw (every key goes to the guest, Ctrl-C included) and is
 * restored however tern ends, short of SIGKILL.
 */
#include "tern/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "tern/format.h"
#include "tern/tern.h"
#include "util/err.h"

static const int relay_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define N_SIGNALS (sizeof(relay_signals) / sizeof(relay_signals[0]))

static volatile sig_atomic_t got_signal;
static int sig_pipe[2] = { -1, -1 };	/* wakes poll() when a signal came */
static struct sigaction old_actions[N_SIGNALS];

static struct termios saved_tio;
static volatile sig_atomic_t tio_raw;

static void restore_terminal(void)
{
	if (tio_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		tio_raw = 0;
	}
}

static void on_signal(int sig)
{
	int e = errno;

	got_signal = sig;
	/* Restored here too, in case the main loop is stuck in a write to
	 * a terminal that no longer reads (tcsetattr is async-signal-safe). */
	restore_terminal();
	if (sig_pipe[1] >= 0 && write(sig_pipe[1], "s", 1) < 0) {
		/* full: poll() wakes anyway */
	}
	errno = e;
}

static void signals_install(void)
{
	struct sigaction sa;

	got_signal = 0;
	if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		sig_pipe[0] = sig_pipe[1] = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocked write returns EINTR and we leave. */
	for (size_t i = 0; i < N_SIGNALS; i++)
		sigaction(relay_signals[i], &sa, &old_actions[i]);
}

static void signals_restore(void)
{
	for (size_t i = 0; i < N_SIGNALS; i++)
		sigaction(relay_signals[i], &old_actions[i], NULL);
}

/* Writes all of buf to fd. 1: done; 0: the reader is gone; -1: error. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR) {
			if (got_signal)
				return 0;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			poll(&p, 1, 1000);
			continue;
		}
		if (n < 0 && errno == EPIPE)
			return 0;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 1;
}

int console_relay(int sock, int in_fd, int out_fd, bool *detached, char *err,
		  size_t errlen)
{
	uint8_t out[65536], pend[4096];
	size_t plen = 0, poff = 0;
	bool in_open = in_fd >= 0;
	bool leaving = false;	/* Ctrl-] typed: send what came before it */
	int fl = fcntl(sock, F_GETFL);

	*detached = false;
	if (fl >= 0)
		fcntl(sock, F_SETFL, fl | O_NONBLOCK);
	for (;;) {
		struct pollfd p[3];
		int n = 0, r, i_sock, i_in = -1, i_sig = -1;

		if (got_signal || (leaving && poff == plen)) {
			*detached = true;
			return 0;
		}
		i_sock = n;
		p[n++] = (struct pollfd){ .fd = sock,
			.events = POLLIN | (poff < plen ? POLLOUT : 0) };
		if (in_open && poff == plen && !leaving) {
			i_in = n;
			p[n++] = (struct pollfd){ .fd = in_fd, .events = POLLIN };
		}
		if (sig_pipe[0] >= 0) {
			i_sig = n;
			p[n++] = (struct pollfd){ .fd = sig_pipe[0], .events = POLLIN };
		}
		/* Leaving: the rest of the input gets a second, no more. */
		r = poll(p, (nfds_t)n, leaving ? 1000 : -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_set(err, errlen, "poll: %s", strerror(errno));
		if (r == 0) {
			*detached = true;
			return 0;
		}
		if (i_sig >= 0 && p[i_sig].revents) {
			char drain[16];

			while (read(sig_pipe[0], drain, sizeof(drain)) > 0)
				;
		}
		if (p[i_sock].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t got = read(sock, out, sizeof(out));

			if (got > 0) {
				int w = write_all(out_fd, out, (size_t)got);

				if (w < 0)
					return err_set(err, errlen,
						       "writing the console output: %s",
						       strerror(errno));
				if (w == 0) {	/* nobody reads our output */
					*detached = got_signal != 0;
					return 0;
				}
			} else if (got == 0 ||
				   (errno != EAGAIN && errno != EWOULDBLOCK &&
				    errno != EINTR)) {
				/* The console closed: the domain ended, or
				 * another client took it. */
				return 0;
			}
		}
		if ((p[i_sock].revents & POLLOUT) && poff < plen) {
			ssize_t sent = send(sock, pend + poff, plen - poff,
					    MSG_NOSIGNAL);

			if (sent > 0)
				poff += (size_t)sent;
			else if (sent < 0 && errno != EAGAIN &&
				 errno != EWOULDBLOCK && errno != EINTR)
				return 0;	/* closed under us */
		}
		if (i_in >= 0 && (p[i_in].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t got = read(in_fd, pend, sizeof(pend));

			if (got > 0) {
				uint8_t *esc = memchr(pend, CONSOLE_DETACH,
						      (size_t)got);

				poff = 0;
				plen = esc ? (size_t)(esc - pend) : (size_t)got;
				leaving = esc != NULL;
			} else if (got == 0 ||
				   (errno != EAGAIN && errno != EINTR)) {
				/* End of input (or a hung-up terminal): the
				 * output still goes on. */
				in_open = false;
			}
		}
	}
}

int console_attach_path(const char *path, const char *name)
{
	char err[512];
	bool tty = isatty(STDIN_FILENO), detached = false;
	int fd, rc;

	fd = qmp_unix_connect(path, TERN_TIMEOUT_MS, err, sizeof(err));
	if (fd < 0)
		return tern_error("cannot connect to the console of domain %s at %s: %s",
				  name, path, strerror(errno));
	signals_install();
	if (tty && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;

		fprintf(stderr, "Connected to domain %s (escape character is ^])\n",
			name);
		atexit(restore_terminal);
		cfmakeraw(&raw);
		tio_raw = 1;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	} else {
		tty = false;
	}
	rc = console_relay(fd, STDIN_FILENO, STDOUT_FILENO, &detached, err,
			   sizeof(err));
	restore_terminal();
	signals_restore();
	close(fd);
	if (tty)
		fputc('\n', stderr);	/* the guest's line stays unfinished */
	if (rc < 0)
		return tern_error("%s", err);
	return TERN_EXIT_OK;
}

int tern_attach_console(tern_t *t, const char *dom)
{
	char name[128];
	const char *path;
	json_t *info = tern_call(t, "query-domain", tern_dom_args(dom),
				 TERN_TIMEOUT_MS);
	int rc;

	if (!info)
		return TERN_EXIT_ERROR;
	fmt_clean(json_string_value(json_object_get(info, "name")), name,
		  sizeof(name));
	path = json_string_value(json_object_get(info, "console"));
	if (!path || !*path) {
		json_decref(info);
		return tern_error("domain %s has no console", name);
	}
	/* A console session may last days: it holds no ternd connection. */
	qmp_close(t->q);
	t->q = NULL;
	rc = console_attach_path(path, name);
	json_decref(info);
	return rc;
}
