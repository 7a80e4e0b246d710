// SPDX-License-Identifier: MIT
#include "util/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"

static int listen_one(int family, const struct sockaddr *sa, socklen_t salen,
		      bool dual_stack, int backlog)
{
	int one = 1, zero = 0, e;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (dual_stack)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (!bind(fd, sa, salen) && !listen(fd, backlog))
		return fd;
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int net_listen(const char *host, const char *port, int backlog, char *err,
	       size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE }, *res, *ai;
	bool any = !host || !*host;
	int rc, fd = -1, e = 0;

	if (any)
		hints.ai_family = AF_INET6;	/* dual stack, v4 mapped */
	rc = getaddrinfo(any ? NULL : host, port, &hints, &res);
	if (rc && any) {
		hints.ai_family = AF_UNSPEC;
		rc = getaddrinfo(NULL, port, &hints, &res);
	}
	if (rc)
		return err_set(err, errlen, "cannot resolve %s: %s",
			       any ? "*" : host, gai_strerror(rc));
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = listen_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen,
				any && ai->ai_family == AF_INET6, backlog);
		if (fd < 0)
			e = errno;
	}
	freeaddrinfo(res);
	if (fd < 0 && any && hints.ai_family == AF_INET6) {
		/* No IPv6 here: all IPv4 interfaces. */
		struct sockaddr_in sin = { .sin_family = AF_INET };
		char *end;
		unsigned long v = strtoul(port, &end, 10);

		if (!*end && v <= UINT16_MAX) {
			sin.sin_port = htons((uint16_t)v);
			fd = listen_one(AF_INET, (struct sockaddr *)&sin,
					sizeof(sin), false, backlog);
			if (fd < 0)
				e = errno;
		}
	}
	if (fd < 0)
		return err_set(err, errlen, "cannot listen on %s:%s: %s",
			       any ? "*" : host, port, strerror(e));
	return fd;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for a non-blocking connect(); 0, or -1 with errno. */
static int connect_wait(int fd, unsigned timeout_ms, int cancel_fd)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLOUT },
			       { .fd = cancel_fd, .events = POLLIN } };
	int64_t deadline = now_ms() + timeout_ms;
	socklen_t len = sizeof(int);
	int n, e = 0;

	for (;;) {
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(p, cancel_fd >= 0 ? 2 : 1, (int)left);
		if (n > 0)
			break;
		if (n < 0 && errno != EINTR)
			return -1;
	}
	if (cancel_fd >= 0 && p[1].revents) {
		errno = ECANCELED;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len))
		return -1;
	errno = e;
	return e ? -1 : 0;
}

int net_connect(const char *host, const char *port, unsigned timeout_ms,
		int cancel_fd, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int rc, fd = -1, e = ECONNREFUSED;

	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		err_set(err, errlen, "cannot resolve %s: %s", host,
			gai_strerror(rc));
		errno = 0;
		return -1;
	}
	for (ai = res; ai && e != ECANCELED; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
			    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if ((!connect(fd, ai->ai_addr, ai->ai_addrlen) ||
		     (errno == EINPROGRESS &&
		      !connect_wait(fd, timeout_ms, cancel_fd))) &&
		    !fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK))
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		err_set(err, errlen, "cannot connect to %s:%s: %s", host, port,
			strerror(e));
		errno = e;
	}
	return fd;
}
