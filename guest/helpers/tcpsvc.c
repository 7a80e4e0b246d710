/*
 * tcpsvc: the guest's TCP service for network tests: echo, stream, discard.
 *
 * One process, one poll loop, non-blocking sockets, so any number of
 * connections (up to MAX_CONNS) are served at once and none can stall the
 * others.  /init starts it with --daemon when eth0 is configured.
 *
 *   port 7  (echo)     everything received is sent back, in order.  Each
 *                      connection has a bounded buffer (ECHO_BUF): when the
 *                      peer does not read, the service stops reading too
 *                      (TCP flow control does the rest).  After the peer's
 *                      FIN the rest is flushed and the connection closed.
 *   port 19 (stream)   on connect, sends consecutive 64-bit little-endian
 *                      counters 0, 1, 2, ... as fast as the connection takes
 *                      them, until the peer closes: byte k of the stream is
 *                      byte (k % 8) of the number k / 8, so a client can check
 *                      that no byte was lost, duplicated or reordered.
 *                      Anything the peer sends is read and ignored; its FIN
 *                      does not stop the stream (a reset or an error does).
 *   port 9  (discard)  reads and counts.  When the peer half-closes
 *                      (shutdown(SHUT_WR)) it answers one line
 *                      "discarded N\n" (N = bytes received) and closes, so a
 *                      client can check that everything arrived.
 *
 * At start it prints, on stdout,
 *
 *     tern-guest: tcp service on ports 7 (echo), 19 (stream), 9 (discard)
 *
 * with the ports actually bound (a port given as 0 is chosen by the
 * kernel), and nothing else unless something fails.  SIGUSR1 prints one
 * statistics line on stderr.  With --daemon it returns (status 0) once the
 * ports listen and the line is out; the service runs on in its own session
 * with stdin and stdout on /dev/null and stderr kept.
 *
 * Peers that vanish cost nothing: SIGPIPE is ignored (writes use
 * MSG_NOSIGNAL too), errors close just that connection, and TCP keepalive
 * reaps connections whose peer disappeared without a FIN or RST.  Idle, it
 * sleeps in poll() indefinitely.
 *
 * Usage: tcpsvc [--daemon] [--bind ADDR] [--echo PORT] [--stream PORT]
 *               [--discard PORT] [--max-conns N]
 */
#define _GNU_SOURCE		/* accept4 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS_DEFAULT	256
#define MAX_CONNS_LIMIT		4096
#define ECHO_BUF		(32 * 1024)	/* per echo connection */
#define IO_CHUNK		(64 * 1024)	/* one read or stream write */
#define ROUNDS			16	/* reads/writes per connection per wakeup */
#define ACCEPTS			64	/* accepts per listener per wakeup */
#define ACCEPT_PAUSE_MS		100	/* after EMFILE and the like */
/* keepalive: a peer that vanished is noticed after ~60 + 8 * 15 s */
#define KA_IDLE			60
#define KA_INTVL		15
#define KA_CNT			8

enum svc { SVC_ECHO, SVC_STREAM, SVC_DISCARD, NSVC };

static const char *const svc_name[NSVC] = { "echo", "stream", "discard" };
static const int svc_default_port[NSVC] = { 7, 19, 9 };

struct conn {
	int fd;
	enum svc svc;
	bool eof;		/* the peer sent its FIN */
	uint64_t bytes;		/* echo: echoed; stream: sent; discard: read */
	unsigned char *ring;	/* echo only: ECHO_BUF bytes */
	size_t head, fill;	/* echo ring: first byte, bytes held */
	char reply[48];		/* discard: the count line */
	size_t reply_len, reply_off;
};

struct stats {
	unsigned long long accepted, refused, closed;
	unsigned long long bytes[NSVC];
};

static struct conn *conns;
static int nconns, max_conns = MAX_CONNS_DEFAULT;
static struct stats stats;
static volatile sig_atomic_t stats_requested;
/* scratch buffers; the stream one holds whole 64-bit words plus slack */
static unsigned char scratch[IO_CHUNK];
#define STREAM_WORDS	(2 * IO_CHUNK / 8 + 1)
static uint64_t stream_words[STREAM_WORDS];

static void on_usr1(int sig)
{
	(void)sig;
	stats_requested = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_uint(const char *s, const char *what, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max) {
		fprintf(stderr, "tcpsvc: %s must be a number from 0 to %ld, not '%s'\n",
			what, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tcpsvc [--daemon] [--bind ADDR] [--echo PORT] [--stream PORT]\n"
		"              [--discard PORT] [--max-conns N]\n"
		"TCP echo (default port 7), counter stream (19) and discard (9) service.\n"
		"A port of 0 lets the kernel choose; the start line shows the ports.\n");
}

static int listen_on(struct in_addr addr, int port, enum svc svc, int *bound)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = addr,
				  .sin_port = htons((uint16_t)port) };
	socklen_t len = sizeof(sa);
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "tcpsvc: socket: %s\n", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		fprintf(stderr, "tcpsvc: %s port %d: %s\n", svc_name[svc], port,
			strerror(errno));
		close(fd);
		return -1;
	}
	*bound = ntohs(sa.sin_port);
	return fd;
}

static void conn_close(int i)
{
	struct conn *c = &conns[i];

	close(c->fd);
	free(c->ring);
	stats.bytes[c->svc] += c->bytes;
	stats.closed++;
	conns[i] = conns[--nconns];
}

/* Options every accepted connection gets; failures are harmless. */
static void conn_tune(int fd, enum svc svc)
{
	int one = 1, idle = KA_IDLE, intvl = KA_INTVL, cnt = KA_CNT;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	/* echo answers small writes at once (request/response latency) */
	if (svc == SVC_ECHO)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Returns false when accepting must pause (out of descriptors or memory). */
static bool accept_all(int lfd, enum svc svc)
{
	for (int n = 0; n < ACCEPTS; n++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNABORTED || errno == EPROTO)
				return true;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				return false;
			/* e.g. ENETDOWN and friends: the next connection may do */
			return true;
		}
		if (nconns >= max_conns) {
			/* full: a closed connection beats one that hangs */
			stats.refused++;
			close(fd);
			continue;
		}
		c = &conns[nconns];
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->svc = svc;
		if (svc == SVC_ECHO) {
			c->ring = malloc(ECHO_BUF);
			if (!c->ring) {
				stats.refused++;
				close(fd);
				return false;
			}
		}
		conn_tune(fd, svc);
		nconns++;
		stats.accepted++;
	}
	return true;
}

/* recv() that folds the "try again" cases into 0 bytes, EOF into -2. */
static ssize_t rd(int fd, void *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

	if (n > 0)
		return n;
	if (n == 0)
		return -2;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	return -1;
}

/* send() without SIGPIPE; "try again" is 0 bytes. */
static ssize_t wr(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	return -1;
}

/* Returns -1 when the connection is done (closed by the caller). */
static int echo_io(struct conn *c)
{
	for (int r = 0; r < ROUNDS; r++) {
		bool progress = false;
		ssize_t n;

		if (!c->eof && c->fill < ECHO_BUF) {
			size_t tail, room;

			if (c->fill == 0)
				c->head = 0;
			tail = (c->head + c->fill) % ECHO_BUF;
			/* the free space up to the end, or up to head */
			room = tail >= c->head ? ECHO_BUF - tail : c->head - tail;
			n = rd(c->fd, c->ring + tail, room);
			if (n == -1)
				return -1;
			if (n == -2)
				c->eof = true;
			else if (n > 0)
				c->fill += (size_t)n, progress = true;
		}
		if (c->fill) {
			size_t run = ECHO_BUF - c->head;

			n = wr(c->fd, c->ring + c->head, c->fill < run ? c->fill : run);
			if (n < 0)
				return -1;
			if (n > 0) {
				c->head = (c->head + (size_t)n) % ECHO_BUF;
				c->fill -= (size_t)n;
				c->bytes += (uint64_t)n;
				progress = true;
			}
		}
		if (c->eof && c->fill == 0) {
			shutdown(c->fd, SHUT_WR);
			return -1;
		}
		if (!progress)
			break;
	}
	return 0;
}

/*
 * IO_CHUNK bytes of the stream from byte offset @off.  One cache of
 * consecutive counters, shared by all stream connections, is regenerated
 * only when @off leaves its first half: a writer that the socket takes a
 * few KiB at a time from does not recompute 64 KiB for each.
 */
static const unsigned char *stream_at(uint64_t off)
{
	static bool valid;
	static uint64_t base;	/* the counter in stream_words[0] */
	uint64_t word = off / 8;

	if (!valid || word < base || word - base > STREAM_WORDS / 2) {
		base = word;
		for (size_t i = 0; i < STREAM_WORDS; i++)
			stream_words[i] = htole64(base + i);
		valid = true;
	}
	return (const unsigned char *)&stream_words[word - base] + off % 8;
}

static int stream_io(struct conn *c, short revents)
{
	if ((revents & POLLIN) && !c->eof) {
		for (int r = 0; r < ROUNDS; r++) {
			ssize_t n = rd(c->fd, scratch, sizeof(scratch));

			if (n == -1)
				return -1;
			/*
			 * A FIN only ends what the peer sends: it may still
			 * read (nc with its stdin at EOF).  A peer that is gone
			 * answers the next data with a reset, and the write
			 * fails.
			 */
			if (n == -2)
				c->eof = true;
			if (n <= 0)
				break;
		}
	}
	for (int r = 0; r < ROUNDS; r++) {
		const unsigned char *p = stream_at(c->bytes);
		ssize_t n = wr(c->fd, p, IO_CHUNK);

		if (n < 0)
			return -1;
		if (n == 0)
			break;
		c->bytes += (uint64_t)n;
	}
	return 0;
}

static int discard_io(struct conn *c)
{
	if (!c->eof) {
		for (int r = 0; r < ROUNDS; r++) {
			ssize_t n = rd(c->fd, scratch, sizeof(scratch));

			if (n == -1)
				return -1;
			if (n == 0)
				break;
			if (n == -2) {
				int len = snprintf(c->reply, sizeof(c->reply),
						   "discarded %llu\n",
						   (unsigned long long)c->bytes);

				c->eof = true;
				c->reply_len = (size_t)len;
				break;
			}
			c->bytes += (uint64_t)n;
		}
	}
	if (c->eof) {
		ssize_t n = wr(c->fd, c->reply + c->reply_off,
			       c->reply_len - c->reply_off);

		if (n < 0)
			return -1;
		c->reply_off += (size_t)n;
		if (c->reply_off == c->reply_len) {
			shutdown(c->fd, SHUT_WR);
			return -1;
		}
	}
	return 0;
}

static short conn_events(const struct conn *c)
{
	switch (c->svc) {
	case SVC_ECHO:
		return (short)((!c->eof && c->fill < ECHO_BUF ? POLLIN : 0) |
			       (c->fill ? POLLOUT : 0));
	case SVC_STREAM:
		return (short)((c->eof ? 0 : POLLIN) | POLLOUT);
	default:
		return c->eof ? POLLOUT : POLLIN;
	}
}

static void print_stats(void)
{
	fprintf(stderr, "tcpsvc: connections open=%d accepted=%llu refused=%llu "
		"closed=%llu bytes echo=%llu stream=%llu discard=%llu "
		"(closed connections)\n", nconns, stats.accepted, stats.refused,
		stats.closed, stats.bytes[SVC_ECHO], stats.bytes[SVC_STREAM],
		stats.bytes[SVC_DISCARD]);
}

static int serve(const int *lfd)
{
	struct pollfd *pfds = calloc((size_t)max_conns + NSVC, sizeof(*pfds));
	int64_t accept_resume = 0;

	if (!pfds) {
		fprintf(stderr, "tcpsvc: out of memory\n");
		return -1;
	}
	for (;;) {
		int64_t now = now_ms();
		bool accepting = now >= accept_resume;
		int n = 0, timeout = -1, snap;

		for (int s = 0; s < NSVC; s++)
			pfds[n++] = (struct pollfd){ .fd = lfd[s],
						     .events = accepting ? POLLIN : 0 };
		for (int i = 0; i < nconns; i++)
			pfds[n++] = (struct pollfd){ .fd = conns[i].fd,
						     .events = conn_events(&conns[i]) };
		if (!accepting)
			timeout = (int)(accept_resume - now) + 1;
		if (poll(pfds, (nfds_t)n, timeout) < 0) {
			if (errno != EINTR) {
				fprintf(stderr, "tcpsvc: poll: %s\n", strerror(errno));
				return -1;
			}
			if (stats_requested) {
				stats_requested = 0;
				print_stats();
			}
			continue;
		}
		/*
		 * Connections first, walking down so that conn_close (which
		 * moves the last entry into the freed slot) never moves an
		 * unvisited one; pfds[NSVC + i] belongs to conns[i] as of the
		 * poll call, and new connections are only added after this.
		 */
		snap = nconns;
		for (int i = snap - 1; i >= 0; i--) {
			short re = pfds[NSVC + i].revents;
			struct conn *c = &conns[i];
			int rc;

			if (!re)
				continue;
			if (re & (POLLERR | POLLNVAL)) {
				conn_close(i);
				continue;
			}
			if (c->svc == SVC_ECHO)
				rc = echo_io(c);
			else if (c->svc == SVC_STREAM)
				rc = stream_io(c, re);
			else
				rc = discard_io(c);
			/* POLLHUP: both directions are shut, nobody to talk to */
			if (rc < 0 || (re & POLLHUP))
				conn_close(i);
		}
		for (int s = 0; s < NSVC; s++) {
			if ((pfds[s].revents & POLLIN) && !accept_all(lfd[s], s))
				accept_resume = now_ms() + ACCEPT_PAUSE_MS;
		}
		if (stats_requested) {
			stats_requested = 0;
			print_stats();
		}
	}
}

static int daemonize(void)
{
	pid_t pid;
	int fd;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "tcpsvc: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0);
	/* own session: a ^C or hangup on the console shell does not reach it */
	setsid();
	if (chdir("/")) {
		/* not fatal */
	}
	/*
	 * stdout had its one line: let it go, so that a caller reading it
	 * (x=$(tcpsvc --daemon)) sees EOF.  stderr stays (the console in the
	 * guest) for errors and the SIGUSR1 statistics.
	 */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "daemon", no_argument, NULL, 'd' },
		{ "bind", required_argument, NULL, 'b' },
		{ "echo", required_argument, NULL, 'e' },
		{ "stream", required_argument, NULL, 's' },
		{ "discard", required_argument, NULL, 'D' },
		{ "max-conns", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int port[NSVC], bound[NSVC], lfd[NSVC];
	struct in_addr addr = { .s_addr = htonl(INADDR_ANY) };
	struct sigaction sa;
	bool daemon = false;
	long v;
	int c;

	for (int s = 0; s < NSVC; s++)
		port[s] = svc_default_port[s];
	while ((c = getopt_long(argc, argv, "db:e:s:D:m:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			daemon = true;
			break;
		case 'b':
			if (inet_pton(AF_INET, optarg, &addr) != 1) {
				fprintf(stderr, "tcpsvc: --bind needs an IPv4 address, not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'e':
		case 's':
		case 'D': {
			enum svc s = c == 'e' ? SVC_ECHO : c == 's' ? SVC_STREAM : SVC_DISCARD;

			if (parse_uint(optarg, svc_name[s], 65535, &v))
				return 2;
			port[s] = (int)v;
			break;
		}
		case 'm':
			if (parse_uint(optarg, "--max-conns", MAX_CONNS_LIMIT, &v))
				return 2;
			if (v < 1) {
				fprintf(stderr, "tcpsvc: --max-conns must be at least 1\n");
				return 2;
			}
			max_conns = (int)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tcpsvc: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_usr1;	/* no SA_RESTART: poll returns EINTR */
	sigaction(SIGUSR1, &sa, NULL);

	conns = calloc((size_t)max_conns, sizeof(*conns));
	if (!conns) {
		fprintf(stderr, "tcpsvc: out of memory\n");
		return 1;
	}
	for (int s = 0; s < NSVC; s++) {
		lfd[s] = listen_on(addr, port[s], s, &bound[s]);
		if (lfd[s] < 0)
			return 1;
	}
	printf("tern-guest: tcp service on ports %d (echo), %d (stream), %d (discard)\n",
	       bound[SVC_ECHO], bound[SVC_STREAM], bound[SVC_DISCARD]);
	fflush(stdout);
	if (daemon && daemonize())
		return 1;
	return serve(lfd) ? 1 : 0;
}
