/* SPDX-License-Identifier: MIT */
/*
 * TCP sockets, as tern-vmm's migration and ternd's relocation open them:
 * close-on-exec, every address a name resolves to tried in turn.
 */
#ifndef TERN_NET_H
#define TERN_NET_H

#include <stddef.h>

/*
 * Listens on host:port with SO_REUSEADDR. host NULL or "": every interface
 * (IPv6 with IPv4 mapped where the host has IPv6, else IPv4). Returns the
 * fd, or -1 with "cannot resolve HOST: ..." or "cannot listen on
 * HOST:PORT: ..." in err.
 */
int net_listen(const char *host, const char *port, int backlog, char *err,
	       size_t errlen);

/*
 * Connects to host:port, each attempt bounded by timeout_ms; the socket
 * comes back blocking. cancel_fd (>= 0) readable gives up at once.
 * Returns the fd, or -1 with "cannot resolve HOST: ..." or "cannot connect
 * to HOST:PORT: ..." in err and errno telling why (ECONNREFUSED,
 * ETIMEDOUT, ECANCELED, ...; 0 when the name did not resolve), so that
 * the caller can add what a refusal means to it.
 */
int net_connect(const char *host, const char *port, unsigned timeout_ms,
		int cancel_fd, char *err, size_t errlen);

#endif
