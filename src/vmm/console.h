/* SPDX-License-Identifier: MIT */
/*
 * The VM's console on the host: stdio (raw terminal with an escape key, or
 * plain pipes) or a UNIX socket that one client at a time attaches to.
 */
#ifndef TERN_CONSOLE_H
#define TERN_CONSOLE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_ESCAPE 0x01	/* Ctrl-A, then 'x' quits, Ctrl-A sends Ctrl-A */
#define CONSOLE_HISTORY 65536

typedef struct console {
	int in_fd;		/* -1 once closed */
	int out_fd;
	int listen_fd;		/* unix: socket, -1 for stdio */
	int client_fd;
	bool raw;		/* terminal put into raw mode */
	bool escape_pending;
	bool quit;		/* escape sequence typed */
	uint8_t out[8192];
	size_t out_len;
	uint8_t in[4096];	/* received, not yet taken by the guest */
	size_t in_head, in_len;
	uint8_t history[CONSOLE_HISTORY];	/* replayed to a new client */
	size_t hist_pos;
	bool hist_wrapped;
	char *sock_path;
} console_t;

/* spec: "stdio" or "unix:PATH". Returns 0 or -1 with err set. */
int console_open(console_t *c, const char *spec, char *err, size_t errlen);
void console_close(console_t *c);

/* Guest output (UART transmitter, SBI console). */
void console_tx(void *opaque, const uint8_t *buf, size_t len);
void console_flush(console_t *c);

/* Fills pfds with what to wait for; returns how many. */
int console_pollfds(console_t *c, struct pollfd *pfds, int max);
/* Handles readiness reported for those fds. */
void console_handle(console_t *c, const struct pollfd *pfds, int n);

/* Input waiting for the guest. */
size_t console_pending(const console_t *c, const uint8_t **data);
void console_consume(console_t *c, size_t n);

#endif
