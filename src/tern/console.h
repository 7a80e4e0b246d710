/* SPDX-License-Identifier: MIT */
/*
 * tern console: relays between the user's terminal (or pipes) and a
 * domain's console socket, which tern-vmm serves (it replays the recent
 * output to a client that connects).
 */
#ifndef TERN_CLI_CONSOLE_H
#define TERN_CLI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#define CONSOLE_DETACH 0x1d	/* Ctrl-], as xm console */

/*
 * Relays sock <-> in_fd/out_fd until the console closes (the domain
 * ended), a CONSOLE_DETACH byte arrives on in_fd, or SIGINT, SIGTERM,
 * SIGHUP or SIGQUIT arrives. The end of in_fd only stops the input: the
 * output goes on. Returns 0, or -1 with err set (a failed read or write).
 * *detached tells whether the user detached (escape byte or signal).
 */
int console_relay(int sock, int in_fd, int out_fd, bool *detached, char *err,
		  size_t errlen);

/*
 * Connects to the console socket at path and relays it with stdin and
 * stdout; on a terminal, in raw mode (restored on every way out) after
 * "Connected to domain NAME (escape character is ^])" on stderr.
 * Returns the exit status (an error is printed).
 */
int console_attach_path(const char *path, const char *name);

#endif
