// SPDX-License-Identifier: MIT
#include "vmm/console.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved_tio;
static bool tio_saved;

static void restore_terminal(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int open_stdio(console_t *c)
{
	c->in_fd = STDIN_FILENO;
	c->out_fd = STDOUT_FILENO;
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;

		tio_saved = true;
		atexit(restore_terminal);
		cfmakeraw(&raw);
		/* Keep output post-processing off too: the guest sends \r\n. */
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		c->raw = true;
	}
	set_nonblock(STDIN_FILENO);
	return 0;
}

static int open_unix(console_t *c, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "console socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0) {
		snprintf(err, errlen, "console socket: %s", strerror(errno));
		return -1;
	}
	unlink(path);
	if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(c->listen_fd, 4)) {
		snprintf(err, errlen, "console socket %s: %s", path, strerror(errno));
		close(c->listen_fd);
		c->listen_fd = -1;
		return -1;
	}
	c->sock_path = strdup(path);
	return 0;
}

int console_open(console_t *c, const char *spec, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->in_fd = c->out_fd = c->listen_fd = c->client_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(spec, "stdio"))
		return open_stdio(c);
	if (!strncmp(spec, "unix:", 5) && spec[5])
		return open_unix(c, spec + 5, err, errlen);
	snprintf(err, errlen, "unknown console '%s' (use stdio or unix:PATH)", spec);
	return -1;
}

void console_close(console_t *c)
{
	console_flush(c);
	if (c->client_fd >= 0)
		close(c->client_fd);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->sock_path) {
		unlink(c->sock_path);
		free(c->sock_path);
	}
	restore_terminal();
	tio_saved = false;
	c->client_fd = c->listen_fd = -1;
	c->sock_path = NULL;
}

static void remember(console_t *c, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		c->history[c->hist_pos++] = buf[i];
		if (c->hist_pos == CONSOLE_HISTORY) {
			c->hist_pos = 0;
			c->hist_wrapped = true;
		}
	}
}

/* Writes all of buf to fd unless it fails; a gone peer is not an error. */
static bool write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (poll(&p, 1, 1000) <= 0)
				return false;
			continue;
		}
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

void console_flush(console_t *c)
{
	int fd = c->listen_fd >= 0 ? c->client_fd : c->out_fd;

	if (!c->out_len)
		return;
	if (c->listen_fd >= 0)
		remember(c, c->out, c->out_len);
	if (fd >= 0 && !write_all(fd, c->out, c->out_len) && fd == c->client_fd) {
		close(c->client_fd);
		c->client_fd = -1;
	}
	c->out_len = 0;
}

void console_tx(void *opaque, const uint8_t *buf, size_t len)
{
	console_t *c = opaque;

	while (len) {
		size_t n = sizeof(c->out) - c->out_len;

		if (n > len)
			n = len;
		memcpy(c->out + c->out_len, buf, n);
		c->out_len += n;
		buf += n;
		len -= n;
		if (c->out_len == sizeof(c->out))
			console_flush(c);
	}
}

int console_pollfds(console_t *c, struct pollfd *pfds, int max)
{
	int n = 0;
	bool want_in = c->in_len < sizeof(c->in) / 2;

	if (c->listen_fd >= 0 && n < max)
		pfds[n++] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
	if (want_in && c->listen_fd >= 0 && c->client_fd >= 0 && n < max)
		pfds[n++] = (struct pollfd){ .fd = c->client_fd, .events = POLLIN };
	if (want_in && c->listen_fd < 0 && c->in_fd >= 0 && n < max)
		pfds[n++] = (struct pollfd){ .fd = c->in_fd, .events = POLLIN };
	return n;
}

static void replay_history(console_t *c)
{
	if (c->hist_wrapped)
		write_all(c->client_fd, c->history + c->hist_pos,
			  CONSOLE_HISTORY - c->hist_pos);
	write_all(c->client_fd, c->history, c->hist_pos);
}

/* Appends typed input, interpreting the escape key on a raw terminal. */
static void take_input(console_t *c, const uint8_t *buf, size_t len)
{
	if (c->in_head && c->in_head + c->in_len + len > sizeof(c->in)) {
		memmove(c->in, c->in + c->in_head, c->in_len);
		c->in_head = 0;
	}
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = buf[i];

		if (c->raw) {
			if (c->escape_pending) {
				c->escape_pending = false;
				if (ch == 'x' || ch == 'X') {
					c->quit = true;
					return;
				}
				if (ch != CONSOLE_ESCAPE)
					continue;
			} else if (ch == CONSOLE_ESCAPE) {
				c->escape_pending = true;
				continue;
			}
		}
		if (c->in_head + c->in_len < sizeof(c->in))
			c->in[c->in_head + c->in_len++] = ch;
	}
}

void console_handle(console_t *c, const struct pollfd *pfds, int n)
{
	uint8_t buf[1024];

	for (int i = 0; i < n; i++) {
		if (!pfds[i].revents)
			continue;
		if (pfds[i].fd == c->listen_fd) {
			int fd = accept4(c->listen_fd, NULL, NULL,
					 SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (fd < 0)
				continue;
			if (c->client_fd >= 0)
				close(c->client_fd); /* newest client wins */
			c->client_fd = fd;
			console_flush(c);
			replay_history(c);
			continue;
		}
		{
			size_t room = sizeof(c->in) - c->in_len;
			ssize_t r = read(pfds[i].fd, buf,
					 room < sizeof(buf) ? room : sizeof(buf));

			if (r > 0) {
				take_input(c, buf, (size_t)r);
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				if (pfds[i].fd == c->client_fd) {
					close(c->client_fd);
					c->client_fd = -1;
				} else {
					c->in_fd = -1; /* stdin closed: keep running */
				}
			}
		}
	}
}

size_t console_pending(const console_t *c, const uint8_t **data)
{
	*data = c->in + c->in_head;
	return c->in_len;
}

void console_consume(console_t *c, size_t n)
{
	c->in_head += n;
	c->in_len -= n;
	if (!c->in_len)
		c->in_head = 0;
}
