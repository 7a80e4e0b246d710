// SPDX-License-Identifier: MIT
/*
 * Live migration: the pre-copy sender, the receiver and the commit
 * handshake (docs/migration-stream.md, "Live migration").
 */
#include "migration/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "migration/savevm.h"
#include "migration/stream.h"
#include "util/err.h"
#include "util/net.h"

#define EVQ_SIZE 256
#define ERR_LEN 256

/* Requests from the migration thread to the main thread. */
enum req {
	REQ_NONE,
	REQ_LOG_START,		/* ram_log_start, harvest (all pages) */
	REQ_HARVEST,		/* harvest the dirty bitmap */
	REQ_PAUSE,		/* pause the VM, harvest */
	REQ_PAUSE_START,	/* pause, ram_log_start, harvest (offline) */
	REQ_ROLLBACK,		/* stop logging, resume if we paused */
	REQ_HANDOVER,		/* source: completed, the VM is gone */
	REQ_INCOMING_COMMIT,	/* destination: loaded, may it confirm? */
	REQ_INCOMING_OK,	/* destination: loaded and confirmed */
	REQ_INCOMING_FAIL,
};

struct migrate {
	machine_t *m;
	migrate_params_t p;
	const migrate_hooks_t *hooks;
	void *opaque;
	bool incoming;
	bool tcp;
	char *target;		/* file path, or host for tcp */
	char *port;
	char *tmp;		/* file migration: the temporary file */
	int listen_fd;
	bool connected;		/* incoming: listen_fd is the connection */
	bool given_fd;		/* fd:NAME: the caller's fd, nothing opened */
	bool pipe;		/* ... and it is a pipe (non-blocking writes) */
	int cancel_fd;		/* eventfd breaking a pipe write or a
				 * connect, or -1 */
	char *domain;		/* sender: the DOMAIN text, or NULL */
	char *domain_in;	/* receiver: the stream's DOMAIN text */
	int commit_rc;		/* REQ_INCOMING_COMMIT's answer */
	char commit_err[ERR_LEN];

	pthread_t thread;
	bool joined;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int wake_fd;		/* eventfd */
	int req;		/* enum req; read without the lock by pending */
	bool abandoned;		/* main thread no longer serves requests */
	bool cancel;
	bool committing;	/* END is out: too late to cancel */
	bool paused;		/* the VM is paused for us */
	bool done;		/* final status reached */
	int fd;			/* data socket or file, -1 */

	uint64_t *bitmap;	/* the sender's harvested dirty bitmap */
	uint64_t dirty;		/* pages set in bitmap */

	/* Progress; written by the thread under lock. */
	migrate_info_t info;
	uint64_t t_start, t_setup, t_pause, t_end;	/* host ns */
	double bw;		/* measured bytes per second */

	migrate_event_t evq[EVQ_SIZE];
	unsigned ev_head, ev_tail;
};

const char *migrate_status_name(enum migrate_status st)
{
	static const char *const names[] = {
		[MIGRATE_NONE] = "none",	  [MIGRATE_SETUP] = "setup",
		[MIGRATE_ACTIVE] = "active",	  [MIGRATE_DEVICE] = "device",
		[MIGRATE_COMPLETED] = "completed",
		[MIGRATE_FAILED] = "failed",	  [MIGRATE_CANCELLED] = "cancelled",
	};

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] :
								 "none";
}

void migrate_params_default(migrate_params_t *p)
{
	memset(p, 0, sizeof(*p));
	p->live = true;
	p->downtime_ms = MIGRATE_DEFAULT_DOWNTIME_MS;
	p->max_rounds = MIGRATE_DEFAULT_MAX_ROUNDS;
	p->max_time_ms = MIGRATE_DEFAULT_MAX_TIME_MS;
	p->give_up = MIGRATE_GIVE_UP_STOP_COPY;
	p->io_timeout_ms = MIGRATE_DEFAULT_IO_TIMEOUT_MS;
}

enum migrate_decision migrate_policy(const migrate_params_t *p,
				     uint64_t remaining, double bytes_per_s,
				     unsigned rounds, uint64_t elapsed_ms)
{
	if (remaining == 0)
		return MIGRATE_STOP_COPY;
	/* The rest goes out with the VM stopped: does it fit the limit? */
	if (bytes_per_s > 0 &&
	    (double)remaining * 1000.0 / bytes_per_s <= (double)p->downtime_ms)
		return MIGRATE_STOP_COPY;
	if (rounds >= p->max_rounds ||
	    (p->max_time_ms && elapsed_ms >= p->max_time_ms))
		return p->give_up == MIGRATE_GIVE_UP_ABORT ? MIGRATE_ABORT :
							      MIGRATE_STOP_COPY;
	return MIGRATE_CONTINUE;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void wake(migrate_t *mg)
{
	uint64_t one = 1;

	if (write(mg->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero: the main thread wakes */
	}
}

/* Queues an event (lock held). A full queue drops it: events are a hint,
 * query-migrate has the truth. */
static void push_event(migrate_t *mg, enum migrate_event_kind kind,
		       unsigned value)
{
	if (mg->ev_tail - mg->ev_head >= EVQ_SIZE)
		return;
	mg->evq[mg->ev_tail++ % EVQ_SIZE] = (migrate_event_t){ kind, value };
}

static void set_status(migrate_t *mg, enum migrate_status st)
{
	pthread_mutex_lock(&mg->lock);
	if (mg->info.status != st) {
		mg->info.status = st;
		push_event(mg, MIGRATE_EV_STATUS, st);
	}
	pthread_mutex_unlock(&mg->lock);
	wake(mg);
}

/* Asks the main thread for r and waits until it is done. -1 when the main
 * thread is gone (leaving). */
static int request(migrate_t *mg, enum req r)
{
	int rc = 0;

	pthread_mutex_lock(&mg->lock);
	if (mg->abandoned) {
		pthread_mutex_unlock(&mg->lock);
		return -1;
	}
	__atomic_store_n(&mg->req, r, __ATOMIC_RELEASE);
	wake(mg);
	while (__atomic_load_n(&mg->req, __ATOMIC_ACQUIRE) != REQ_NONE &&
	       !mg->abandoned)
		pthread_cond_wait(&mg->cond, &mg->lock);
	if (__atomic_load_n(&mg->req, __ATOMIC_ACQUIRE) != REQ_NONE) {
		__atomic_store_n(&mg->req, REQ_NONE, __ATOMIC_RELEASE);
		rc = -1;
	}
	pthread_mutex_unlock(&mg->lock);
	return rc;
}

int migrate_wake_fd(const migrate_t *mg)
{
	return mg->wake_fd;
}

bool migrate_pending(migrate_t *mg)
{
	return __atomic_load_n(&mg->req, __ATOMIC_RELAXED) != REQ_NONE;
}

static uint64_t count_bits(const uint64_t *b, uint64_t npages)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < (npages + 63) / 64; i++)
		n += (uint64_t)__builtin_popcountll(b[i]);
	return n;
}

void migrate_service(migrate_t *mg)
{
	machine_t *m = mg->m;
	uint64_t junk;
	int r;

	if (read(mg->wake_fd, &junk, sizeof(junk)) < 0) {
		/* nothing was signalled (non-blocking eventfd) */
	}
	r = __atomic_load_n(&mg->req, __ATOMIC_ACQUIRE);
	if (r == REQ_NONE)
		return;
	/* The thread waits on the condition variable: we own the machine. */
	switch (r) {
	case REQ_PAUSE_START:
	case REQ_PAUSE:
		mg->hooks->pause(mg->opaque);
		mg->paused = true;
		if (r == REQ_PAUSE_START)
			ram_log_start(&m->ram);
		ram_log_harvest(&m->ram, mg->bitmap);
		break;
	case REQ_LOG_START:
		ram_log_start(&m->ram);
		ram_log_harvest(&m->ram, mg->bitmap);
		break;
	case REQ_HARVEST:
		ram_log_harvest(&m->ram, mg->bitmap);
		break;
	case REQ_ROLLBACK:
		ram_log_stop(&m->ram);
		if (mg->paused)
			mg->hooks->resume(mg->opaque);
		mg->paused = false;
		break;
	case REQ_HANDOVER:
		ram_log_stop(&m->ram);
		mg->hooks->handed_over(mg->opaque);
		break;
	case REQ_INCOMING_COMMIT:
		mg->commit_rc = 0;
		if (mg->hooks->incoming_commit)
			mg->commit_rc = mg->hooks->incoming_commit(mg->opaque,
						mg->commit_err,
						sizeof(mg->commit_err));
		break;
	case REQ_INCOMING_OK:
	case REQ_INCOMING_FAIL:
		mg->hooks->incoming_done(mg->opaque, r == REQ_INCOMING_OK,
					 mg->info.error);
		break;
	}
	if (r == REQ_LOG_START || r == REQ_HARVEST || r == REQ_PAUSE ||
	    r == REQ_PAUSE_START)
		mg->dirty = count_bits(mg->bitmap, m->ram.npages);
	pthread_mutex_lock(&mg->lock);
	__atomic_store_n(&mg->req, REQ_NONE, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&mg->cond);
	pthread_mutex_unlock(&mg->lock);
}

bool migrate_next_event(migrate_t *mg, migrate_event_t *ev)
{
	bool got = false;

	pthread_mutex_lock(&mg->lock);
	if (mg->ev_head != mg->ev_tail) {
		*ev = mg->evq[mg->ev_head++ % EVQ_SIZE];
		got = true;
	}
	pthread_mutex_unlock(&mg->lock);
	return got;
}

static uint64_t ms_between(uint64_t a, uint64_t b)
{
	return b > a ? (b - a) / 1000000ull : 0;
}

void migrate_get_info(migrate_t *mg, migrate_info_t *info)
{
	uint64_t now = now_ns();

	pthread_mutex_lock(&mg->lock);
	*info = mg->info;
	info->incoming = mg->incoming;
	info->total_time = ms_between(mg->t_start, mg->t_end ? mg->t_end : now);
	info->setup_time = mg->t_setup ? ms_between(mg->t_start, mg->t_setup) :
					 0;
	pthread_mutex_unlock(&mg->lock);
}

bool migrate_running(migrate_t *mg)
{
	bool r;

	pthread_mutex_lock(&mg->lock);
	r = !mg->done;
	pthread_mutex_unlock(&mg->lock);
	return r;
}

/* Breaks a blocked socket call, or a pipe write (lock held). */
static void break_io(migrate_t *mg)
{
	uint64_t one = 1;

	if (mg->fd >= 0)
		shutdown(mg->fd, SHUT_RDWR);	/* no effect but on a socket */
	if (mg->cancel_fd >= 0 &&
	    write(mg->cancel_fd, &one, sizeof(one)) < 0) {
		/* already signalled */
	}
}

void migrate_cancel(migrate_t *mg)
{
	pthread_mutex_lock(&mg->lock);
	if (!mg->done && !mg->committing && !mg->incoming) {
		mg->cancel = true;
		break_io(mg);
	}
	pthread_mutex_unlock(&mg->lock);
}

static bool cancelled(migrate_t *mg)
{
	return __atomic_load_n(&mg->cancel, __ATOMIC_RELAXED);
}

void migrate_stop(migrate_t *mg)
{
	if (mg->joined)
		return;
	pthread_mutex_lock(&mg->lock);
	mg->abandoned = true;
	if (!mg->done) {
		__atomic_store_n(&mg->cancel, true, __ATOMIC_RELAXED);
		break_io(mg);
	}
	pthread_cond_broadcast(&mg->cond);
	pthread_mutex_unlock(&mg->lock);
	pthread_join(mg->thread, NULL);
	mg->joined = true;
}

void migrate_free(migrate_t *mg)
{
	if (!mg)
		return;
	migrate_stop(mg);
	if (mg->fd >= 0)
		close(mg->fd);
	if (mg->listen_fd >= 0)
		close(mg->listen_fd);
	if (mg->cancel_fd >= 0)
		close(mg->cancel_fd);
	close(mg->wake_fd);
	free(mg->domain);
	free(mg->domain_in);
	pthread_mutex_destroy(&mg->lock);
	pthread_cond_destroy(&mg->cond);
	free(mg->bitmap);
	free(mg->target);
	free(mg->port);
	free(mg->tmp);
	free(mg);
}

/* ---- setup ---- */

/* Splits "HOST:PORT" or "[V6]:PORT"; port 1..65535. */
static int split_host_port(const char *s, char **host, char **port, char *err,
			   size_t errlen)
{
	const char *colon, *h = s;
	size_t hlen;
	char *end;
	unsigned long v;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return err_set(err, errlen, "bad address '%s' (HOST:PORT "
				     "expected)", s);
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return err_set(err, errlen, "bad address '%s' (HOST:PORT "
				     "expected)", s);
		hlen = (size_t)(colon - s);
	}
	if (!hlen)
		return err_set(err, errlen, "bad address '%s': no host", s);
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || v == 0 || v > 65535)
		return err_set(err, errlen, "bad port '%s' (1 to 65535)",
			     colon + 1);
	*host = strndup(h, hlen);
	*port = strdup(colon + 1);
	if (!*host || !*port) {
		free(*host);
		free(*port);
		return err_set(err, errlen, "out of memory");
	}
	return 0;
}

static migrate_t *mg_new(machine_t *m, const migrate_hooks_t *hooks,
			 void *opaque, char *err, size_t errlen)
{
	migrate_t *mg = calloc(1, sizeof(*mg));

	if (!mg) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	mg->m = m;
	mg->hooks = hooks;
	mg->opaque = opaque;
	mg->fd = -1;
	mg->listen_fd = -1;
	mg->cancel_fd = -1;
	mg->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	mg->bitmap = calloc((m->ram.npages + 63) / 64, sizeof(uint64_t));
	if (mg->wake_fd < 0 || !mg->bitmap) {
		err_set(err, errlen, "cannot set up the migration: %s",
		      strerror(errno ? errno : ENOMEM));
		if (mg->wake_fd >= 0)
			close(mg->wake_fd);
		free(mg->bitmap);
		free(mg);
		return NULL;
	}
	pthread_mutex_init(&mg->lock, NULL);
	pthread_cond_init(&mg->cond, NULL);
	mg->t_start = now_ns();
	mg->info.total = m->ram.size;
	return mg;
}

static void *sender_main(void *arg);
static void *receiver_main(void *arg);

static int spawn(migrate_t *mg, void *(*fn)(void *), char *err, size_t errlen)
{
	int rc = pthread_create(&mg->thread, NULL, fn, mg);

	if (rc) {
		mg->joined = true;
		return err_set(err, errlen, "cannot start the migration thread: %s",
			     strerror(rc));
	}
	return 0;
}

static void set_timeouts(int fd, unsigned ms);

/* Parameters and the DOMAIN text; the status is SETUP before the thread
 * exists: query-migrate right after the command answers must already see
 * the migration. */
static int sender_setup(migrate_t *mg, const migrate_params_t *p, char *err,
			size_t errlen)
{
	mg->p = *p;
	mg->p.domain = NULL;	/* the copy below is what counts */
	if (p->domain) {
		mg->domain = strdup(p->domain);
		if (!mg->domain)
			return err_set(err, errlen, "out of memory");
	}
	if (!mg->tcp)
		mg->p.live = false;	/* a file gets one copy of each page */
	if (!mg->p.max_rounds)
		mg->p.max_rounds = 1;
	if (!mg->p.io_timeout_ms)
		mg->p.io_timeout_ms = MIGRATE_DEFAULT_IO_TIMEOUT_MS;
	set_status(mg, MIGRATE_SETUP);
	return 0;
}

int migrate_start(migrate_t **out, machine_t *m, const char *uri,
		  const migrate_params_t *p, const migrate_hooks_t *hooks,
		  void *opaque, char *err, size_t errlen)
{
	migrate_t *mg;
	char *host = NULL, *port = NULL;

	if (!strncmp(uri, "tcp:", 4)) {
		if (split_host_port(uri + 4, &host, &port, err, errlen))
			return -1;
	} else if (!strncmp(uri, "file:", 5)) {
		if (!uri[5])
			return err_set(err, errlen, "file: needs a path");
		host = strdup(uri + 5);
		if (!host)
			return err_set(err, errlen, "out of memory");
	} else {
		return err_set(err, errlen, "unsupported migration uri '%s' "
			     "(tcp:HOST:PORT or file:PATH)", uri);
	}
	mg = mg_new(m, hooks, opaque, err, errlen);
	if (!mg) {
		free(host);
		free(port);
		return -1;
	}
	mg->tcp = port != NULL;
	mg->target = host;
	mg->port = port;
	if (mg->tcp) {
		/* A cancel must not wait for connect() to time out. */
		mg->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (mg->cancel_fd < 0) {
			err_set(err, errlen, "cannot set up the migration: %s",
				strerror(errno));
			migrate_free(mg);
			return -1;
		}
	}
	if (sender_setup(mg, p, err, errlen) ||
	    spawn(mg, sender_main, err, errlen)) {
		migrate_free(mg);
		return -1;
	}
	*out = mg;
	return 0;
}

/* What a given fd is: a stream socket, a regular file or a pipe. */
static int classify_fd(int fd, const char *what, bool *sock, bool *is_pipe,
		       char *err, size_t errlen)
{
	struct stat st;
	int type = 0, flags;
	socklen_t len = sizeof(type);

	if (fstat(fd, &st))
		return err_set(err, errlen, "%s: %s", what, strerror(errno));
	*sock = S_ISSOCK(st.st_mode);
	*is_pipe = S_ISFIFO(st.st_mode);
	if (*sock) {
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) ||
		    type != SOCK_STREAM)
			return err_set(err, errlen, "%s is not a stream socket",
				       what);
	} else if (!*is_pipe && !S_ISREG(st.st_mode)) {
		return err_set(err, errlen, "%s is neither a socket, a pipe nor "
			       "a regular file", what);
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY)
		return err_set(err, errlen, "%s is not open for writing", what);
	return 0;
}

int migrate_start_fd(migrate_t **out, machine_t *m, int fd, const char *what,
		     const migrate_params_t *p, const migrate_hooks_t *hooks,
		     void *opaque, char *err, size_t errlen)
{
	migrate_t *mg;
	bool sock = false, is_pipe = false;
	int flags;

	if (classify_fd(fd, what, &sock, &is_pipe, err, errlen))
		return -1;
	mg = mg_new(m, hooks, opaque, err, errlen);
	if (!mg)
		return -1;
	mg->tcp = sock;
	mg->given_fd = true;
	mg->pipe = is_pipe;
	mg->target = strdup(what);
	if (!mg->target) {
		err_set(err, errlen, "out of memory");
		goto fail;
	}
	if (is_pipe) {
		/* A reader that stops must not block the thread for ever:
		 * writes wait in poll(), bounded and cancellable. */
		mg->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (mg->cancel_fd < 0) {
			err_set(err, errlen, "cannot set up the migration: %s",
				strerror(errno));
			goto fail;
		}
	}
	if (sender_setup(mg, p, err, errlen))
		goto fail;
	/* A socket blocks, bounded by its timeouts; a pipe does not block. */
	flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, is_pipe ? flags | O_NONBLOCK :
					  flags & ~O_NONBLOCK);
	if (sock)
		set_timeouts(fd, mg->p.io_timeout_ms);
	mg->fd = fd;
	if (spawn(mg, sender_main, err, errlen)) {
		mg->fd = -1;	/* still the caller's */
		goto fail;
	}
	*out = mg;
	return 0;
fail:
	migrate_free(mg);
	return -1;
}

/* ---- sockets and files ---- */

static void set_timeouts(int fd, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000 };
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void fail_thread(migrate_t *mg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records the first failure reason (lock not held). */
static void fail_thread(migrate_t *mg, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&mg->lock);
	if (!mg->info.error[0]) {
		va_start(ap, fmt);
		vsnprintf(mg->info.error, sizeof(mg->info.error), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&mg->lock);
}

/* An I/O failure: a cancel shows as "cancelled", not as its broken socket. */
static int io_fail(migrate_t *mg, const char *what, const char *why)
{
	if (cancelled(mg))
		fail_thread(mg, "migration cancelled");
	else
		fail_thread(mg, "%s: %s", what, why);
	return -1;
}

static int open_tcp(migrate_t *mg)
{
	char reason[ERR_LEN];
	int fd = net_connect(mg->target, mg->port, mg->p.io_timeout_ms,
			     mg->cancel_fd, reason, sizeof(reason));

	if (fd >= 0) {
		set_timeouts(fd, mg->p.io_timeout_ms);
		pthread_mutex_lock(&mg->lock);
		mg->fd = fd;	/* a cancel from now on shuts it down */
		pthread_mutex_unlock(&mg->lock);
	}
	if (cancelled(mg)) {
		fail_thread(mg, "migration cancelled");
		return -1;
	}
	if (fd < 0) {
		fail_thread(mg, "%s", reason);
		return -1;
	}
	return 0;
}

/* A file migration writes a temporary file renamed over the path at the
 * end, so the path is either absent/old or a complete stream. */
static int open_file(migrate_t *mg)
{
	char dcopy[PATH_MAX], bcopy[PATH_MAX], tmp[PATH_MAX];
	const char *dir, *base;
	int fd, n;

	if (strlen(mg->target) >= sizeof(dcopy)) {
		fail_thread(mg, "file name too long");
		return -1;
	}
	strcpy(dcopy, mg->target);
	strcpy(bcopy, mg->target);
	dir = dirname(dcopy);
	base = basename(bcopy);
	n = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		fail_thread(mg, "file name too long");
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		fail_thread(mg, "cannot create a file in %s: %s", dir,
			    strerror(errno));
		return -1;
	}
	mg->tmp = strdup(tmp);
	pthread_mutex_lock(&mg->lock);
	mg->fd = fd;
	pthread_mutex_unlock(&mg->lock);
	if (!mg->tmp) {
		unlink(tmp);
		fail_thread(mg, "out of memory");
		return -1;
	}
	return 0;
}

static int commit_file(migrate_t *mg)
{
	char dcopy[PATH_MAX];
	int dfd;

	if (fsync(mg->fd)) {
		fail_thread(mg, "%s: %s", mg->target, strerror(errno));
		return -1;
	}
	if (rename(mg->tmp, mg->target)) {
		fail_thread(mg, "cannot rename to %s: %s", mg->target,
			    strerror(errno));
		return -1;
	}
	free(mg->tmp);
	mg->tmp = NULL;
	snprintf(dcopy, sizeof(dcopy), "%s", mg->target);
	dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* fd:NAME naming a file or pipe: the caller's file is complete once
 * synced (a pipe has nothing to sync). */
static int sync_given_file(migrate_t *mg)
{
	if (!mg->pipe && fsync(mg->fd) && errno != EINVAL) {
		fail_thread(mg, "%s: %s", mg->target, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the sender ---- */

struct sender {
	migrate_t *mg;
	stream_t s;		/* to the destination */
	stream_t b;		/* its answers */
	uint64_t send_ns;	/* time spent sending pages */
	uint64_t send_bytes;	/* RAM bytes sent meanwhile */
};

static void update_progress(struct sender *x, uint64_t left)
{
	migrate_t *mg = x->mg;
	stream_t *s = &x->s;
	uint64_t el = now_ns() - mg->t_start;

	pthread_mutex_lock(&mg->lock);
	mg->info.transferred = s->bytes;
	mg->info.remaining = left * RAM_PAGE_SIZE;
	mg->info.duplicate = s->zero_pages + s->skipped;
	mg->info.normal = s->pages - s->zero_pages;
	mg->info.normal_bytes = mg->info.normal * RAM_PAGE_SIZE;
	mg->info.mbps = el ? (double)s->bytes * 8.0 * 1000.0 / (double)el : 0;
	if (mg->bw > 0)
		mg->info.expected_downtime =
			(uint64_t)((double)mg->info.remaining * 1000.0 / mg->bw);
	pthread_mutex_unlock(&mg->lock);
}

/* Sleeps so the average rate stays under the bandwidth limit. */
static int pace(struct sender *x)
{
	migrate_t *mg = x->mg;
	uint64_t due, now;

	if (!mg->p.bandwidth)
		return 0;
	due = mg->t_setup + (uint64_t)((double)x->s.bytes * 1e9 /
				       (double)mg->p.bandwidth);
	while ((now = now_ns()) < due) {
		uint64_t ns = due - now;
		struct timespec ts;

		if (cancelled(mg))
			return io_fail(mg, "", "");
		if (ns > 50000000ull)
			ns = 50000000ull;
		ts = (struct timespec){ 0, (long)ns };
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* Sends every page set in mg->bitmap, a batch at a time. */
static int send_round(struct sender *x)
{
	migrate_t *mg = x->mg;
	stream_t *s = &x->s;
	uint64_t next = 0, left = mg->dirty, t0 = now_ns();
	/* Bandwidth in RAM bytes moved: the bytes compression kept off the
	 * wire count, since the downtime estimate is in RAM bytes. */
	uint64_t b0 = s->bytes + s->saved;

	update_progress(x, left);
	while (next < mg->m->ram.npages) {
		uint64_t before = s->pages + s->skipped;

		if (cancelled(mg))
			return io_fail(mg, "", "");
		if (stream_write_pages_from(s, &mg->m->ram, mg->bitmap, &next,
					    STREAM_MAX_PAGES))
			return io_fail(mg, "sending memory", s->err);
		left -= s->pages + s->skipped - before;
		update_progress(x, left);
		if (pace(x))
			return -1;
	}
	x->send_ns += now_ns() - t0;
	x->send_bytes += s->bytes + s->saved - b0;
	/* Bandwidth: this round's when it is big enough to tell, else the
	 * average so far. */
	if (s->bytes + s->saved - b0 >= (1u << 20) && now_ns() > t0)
		mg->bw = (double)(s->bytes + s->saved - b0) * 1e9 /
			 (double)(now_ns() - t0);
	else if (x->send_ns)
		mg->bw = (double)x->send_bytes * 1e9 / (double)x->send_ns;
	if (mg->p.bandwidth && (mg->bw == 0 || mg->bw > (double)mg->p.bandwidth))
		mg->bw = (double)mg->p.bandwidth;
	return 0;
}

static int pause_vm(struct sender *x, enum req r)
{
	migrate_t *mg = x->mg;

	if (request(mg, r))
		return io_fail(mg, "migration", "the VM is shutting down");
	pthread_mutex_lock(&mg->lock);
	mg->t_pause = now_ns();
	pthread_mutex_unlock(&mg->lock);
	return 0;
}

static int sender_run(struct sender *x)
{
	migrate_t *mg = x->mg;
	machine_t *m = mg->m;
	stream_t *s = &x->s, *b = &x->b;
	char reason[STREAM_MAX_STRING + 1];
	unsigned round = 0;
	uint16_t type;

	set_status(mg, MIGRATE_SETUP);
	if (!mg->given_fd && (mg->tcp ? open_tcp(mg) : open_file(mg)))
		return -1;
	stream_init(s, mg->fd);
	stream_init(b, mg->fd);
	b->back = true;
	/* A connection faster than compression gets plain pages (stream.h). */
	s->lz4_when_behind = mg->tcp;
	s->link_limit = mg->p.bandwidth;
	if (mg->pipe) {
		s->poll_writes = true;
		s->timeout_ms = mg->p.io_timeout_ms;
		s->cancel_fd = mg->cancel_fd;
	}
	if (stream_write_header(s) || stream_write_machine(s, m))
		return io_fail(mg, "sending the machine description", s->err);
	if (mg->domain && stream_write_domain(s, mg->domain))
		return io_fail(mg, "sending the domain config", s->err);
	if (mg->tcp) {
		/* Nothing moves before the destination said yes. */
		if (stream_read_reply(b, &type, reason, sizeof(reason)))
			return io_fail(mg, "no answer from the destination",
				       b->err);
		if (type == STREAM_REC_REFUSE) {
			fail_thread(mg, "the destination refused: %s", reason);
			return -1;
		}
		if (type != STREAM_REC_ACCEPT) {
			fail_thread(mg, "the destination answered record type "
				    "%u instead of accepting", type);
			return -1;
		}
	}
	pthread_mutex_lock(&mg->lock);
	mg->t_setup = now_ns();
	pthread_mutex_unlock(&mg->lock);
	if (mg->p.live ? request(mg, REQ_LOG_START) :
			 pause_vm(x, REQ_PAUSE_START))
		return io_fail(mg, "migration", "the VM is shutting down");
	set_status(mg, MIGRATE_ACTIVE);
	/* The destination's RAM is fresh, all zero: the first round leaves
	 * zero pages out. Later rounds send a page that became zero as a
	 * ZERO entry. */
	s->skip_zero = true;
	for (;;) {
		uint64_t t0 = now_ns(), dirty;
		enum migrate_decision d;

		if (send_round(x))
			return -1;
		s->skip_zero = false;
		round++;
		pthread_mutex_lock(&mg->lock);
		mg->info.dirty_sync_count = round;
		push_event(mg, MIGRATE_EV_PASS, round);
		pthread_mutex_unlock(&mg->lock);
		wake(mg);
		if (mg->paused)
			break;	/* offline: everything went with the VM stopped */
		if (request(mg, REQ_HARVEST))
			return io_fail(mg, "migration", "the VM is shutting down");
		dirty = mg->dirty;
		pthread_mutex_lock(&mg->lock);
		mg->info.dirty_pages_rate =
			now_ns() > t0 ? dirty * 1000000000ull / (now_ns() - t0) :
					0;
		pthread_mutex_unlock(&mg->lock);
		update_progress(x, dirty);
		d = migrate_policy(&mg->p, dirty * RAM_PAGE_SIZE, mg->bw, round,
				   ms_between(mg->t_start, now_ns()));
		if (d == MIGRATE_ABORT) {
			fail_thread(mg, "did not converge: %llu MiB still dirty "
				    "after %u rounds",
				    (unsigned long long)(dirty * RAM_PAGE_SIZE >> 20),
				    round);
			return -1;
		}
		if (d == MIGRATE_STOP_COPY) {
			/* Pages harvested now are sent while still running;
			 * the pause harvests what they dirty meanwhile. */
			if (send_round(x))
				return -1;
			if (pause_vm(x, REQ_PAUSE))
				return -1;
			set_status(mg, MIGRATE_DEVICE);
			if (send_round(x))
				return -1;
			break;
		}
	}
	set_status(mg, MIGRATE_DEVICE);
	if (savevm_write_sections(s, m))
		return io_fail(mg, "sending the VM state", s->err);
	pthread_mutex_lock(&mg->lock);
	if (mg->cancel) {
		pthread_mutex_unlock(&mg->lock);
		return io_fail(mg, "", "");
	}
	mg->committing = true;
	pthread_mutex_unlock(&mg->lock);
	if (stream_write_end(s))
		return io_fail(mg, "sending the end of the stream", s->err);
	update_progress(x, 0);
	if (!mg->tcp && mg->given_fd)
		return sync_given_file(mg);
	if (!mg->tcp)
		return commit_file(mg);
	/*
	 * The destination loaded everything and sends COMMITTED before it
	 * resumes the VM. From here on this side never runs the VM again
	 * once it has read COMMITTED.
	 */
	if (stream_read_reply(b, &type, reason, sizeof(reason)))
		return io_fail(mg, "no confirmation from the destination",
			       b->err);
	if (type == STREAM_REC_REFUSE) {
		fail_thread(mg, "the destination refused: %s", reason);
		return -1;
	}
	if (type != STREAM_REC_COMMITTED) {
		fail_thread(mg, "the destination answered record type %u "
			    "instead of confirming", type);
		return -1;
	}
	return 0;
}

static void *sender_main(void *arg)
{
	struct sender x = { .mg = arg };
	migrate_t *mg = x.mg;
	int rc = sender_run(&x);

	stream_free(&x.s);
	stream_free(&x.b);
	pthread_mutex_lock(&mg->lock);
	if (mg->fd >= 0)
		close(mg->fd);
	mg->fd = -1;
	mg->t_end = now_ns();
	if (!rc && mg->t_pause)
		mg->info.downtime = ms_between(mg->t_pause, mg->t_end);
	pthread_mutex_unlock(&mg->lock);
	if (mg->tmp) {
		unlink(mg->tmp);
		free(mg->tmp);
		mg->tmp = NULL;
	}
	if (rc) {
		/* The VM runs here again before anyone hears of the failure. */
		request(mg, REQ_ROLLBACK);
		set_status(mg, cancelled(mg) && !mg->abandoned ?
				       MIGRATE_CANCELLED : MIGRATE_FAILED);
	} else {
		set_status(mg, MIGRATE_COMPLETED);
		request(mg, REQ_HANDOVER);
	}
	pthread_mutex_lock(&mg->lock);
	mg->done = true;
	pthread_mutex_unlock(&mg->lock);
	wake(mg);
	return NULL;
}

/* ---- the receiver ---- */

/*
 * fd:N: a socket inherited from whoever started us, already connected
 * (ternd accepted it on its relocation port). Checked before anything else
 * is opened, so that N cannot be one of our own.
 */
static int incoming_fd(const char *uri, char *err, size_t errlen)
{
	const char *n = uri + 3;
	struct stat st;
	int type = 0;
	socklen_t len = sizeof(type);
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(n, &end, 10);
	if (*n < '0' || *n > '9' || errno || *end || v > INT_MAX)
		return err_set(err, errlen, "bad incoming uri '%s' (fd:N, N a "
			       "file descriptor number)", uri);
	if (fstat((int)v, &st))
		return err_set(err, errlen, "incoming %s: file descriptor %lu "
			       "is not open", uri, v);
	if (!S_ISSOCK(st.st_mode))
		return err_set(err, errlen, "incoming %s: file descriptor %lu "
			       "is not a socket", uri, v);
	if (getsockopt((int)v, SOL_SOCKET, SO_TYPE, &type, &len) ||
	    type != SOCK_STREAM)
		return err_set(err, errlen, "incoming %s: file descriptor %lu "
			       "is not a stream socket", uri, v);
	/* Ours alone: nothing we start inherits it. */
	if (fcntl((int)v, F_SETFD, FD_CLOEXEC))
		return err_set(err, errlen, "incoming %s: %s", uri,
			       strerror(errno));
	return (int)v;
}

int migrate_incoming_listen(const char *uri, char *err, size_t errlen)
{
	char *host = NULL, *port = NULL;
	int fd;

	if (!strncmp(uri, "fd:", 3))
		return incoming_fd(uri, err, errlen);
	if (strncmp(uri, "tcp:", 4))
		return err_set(err, errlen, "unsupported incoming uri '%s' "
			     "(tcp:ADDR:PORT or fd:N; a file is restored with "
			     "--restore)", uri);
	if (split_host_port(uri + 4, &host, &port, err, errlen))
		return -1;
	fd = net_listen(host, port, 1, err, errlen);
	free(host);
	free(port);
	return fd;
}

int migrate_incoming_start(migrate_t **out, machine_t *m, int listen_fd,
			   unsigned io_timeout_ms, const migrate_hooks_t *hooks,
			   void *opaque, char *err, size_t errlen)
{
	migrate_t *mg;
	int acc = 0;
	socklen_t len = sizeof(acc);

	if (getsockopt(listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len))
		return err_set(err, errlen, "incoming socket: %s",
			       strerror(errno));
	mg = mg_new(m, hooks, opaque, err, errlen);
	if (!mg)
		return -1;
	mg->incoming = true;
	mg->tcp = true;
	mg->connected = !acc;
	mg->listen_fd = listen_fd;
	migrate_params_default(&mg->p);
	if (io_timeout_ms)
		mg->p.io_timeout_ms = io_timeout_ms;
	mg->info.status = MIGRATE_SETUP;
	if (spawn(mg, receiver_main, err, errlen)) {
		mg->listen_fd = -1;	/* the caller still owns it */
		migrate_free(mg);
		return -1;
	}
	*out = mg;
	return 0;
}

static bool abandoned(migrate_t *mg)
{
	bool a;

	pthread_mutex_lock(&mg->lock);
	a = mg->abandoned;
	pthread_mutex_unlock(&mg->lock);
	return a;
}

static int receiver_run(migrate_t *mg)
{
	char err[ERR_LEN];
	stream_t s, b;
	int fd = -1, rc = -1;

	if (mg->connected) {
		/* --incoming fd:N: connected by whoever started us. */
		int flags = fcntl(mg->listen_fd, F_GETFL);

		fd = mg->listen_fd;
		mg->listen_fd = -1;
		if (flags >= 0 && (flags & O_NONBLOCK))
			fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	}
	/* One connection; the listening socket closes after it. */
	while (fd < 0) {
		struct pollfd p = { .fd = mg->listen_fd, .events = POLLIN };

		if (abandoned(mg)) {
			fail_thread(mg, "no source connected");
			return -1;
		}
		if (poll(&p, 1, 100) <= 0)
			continue;
		fd = accept4(mg->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	}
	if (mg->listen_fd >= 0)
		close(mg->listen_fd);
	mg->listen_fd = -1;
	set_timeouts(fd, mg->p.io_timeout_ms);
	pthread_mutex_lock(&mg->lock);
	mg->fd = fd;
	if (mg->abandoned)
		break_io(mg);
	pthread_mutex_unlock(&mg->lock);
	stream_init(&s, fd);
	stream_init(&b, fd);
	b.back = true;
	if (savevm_read_begin(mg->m, &s, err, sizeof(err))) {
		/* Tell the source why; it fails before pausing anything. */
		stream_write_refuse(&b, err);
		fail_thread(mg, "%s", err);
		goto out;
	}
	if (stream_write_accept(&b)) {
		fail_thread(mg, "%s", b.err);
		goto out;
	}
	set_status(mg, MIGRATE_ACTIVE);
	if (savevm_read_rest(mg->m, &s, &mg->domain_in, err, sizeof(err))) {
		fail_thread(mg, "%s", err);
		goto out;
	}
	/* The last word before confirming is the main thread's. */
	if (request(mg, REQ_INCOMING_COMMIT)) {
		fail_thread(mg, "the VM is shutting down");
		stream_write_refuse(&b, "the destination is shutting down");
		goto out;
	}
	if (mg->commit_rc) {
		fail_thread(mg, "%s", mg->commit_err);
		stream_write_refuse(&b, mg->commit_err);
		goto out;
	}
	/*
	 * Everything is loaded: confirm, and only once the confirmation is
	 * out resume (the main thread does, on REQ_INCOMING_OK). A source
	 * that never reads it resumes its own copy; see the spec's commit
	 * section for that window.
	 */
	if (stream_write_committed(&b)) {
		fail_thread(mg, "cannot confirm to the source: %s", b.err);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_lock(&mg->lock);
	mg->info.transferred = s.bytes;
	mg->info.normal = s.pages - s.zero_pages;
	mg->info.normal_bytes = mg->info.normal * RAM_PAGE_SIZE;
	mg->info.duplicate = s.zero_pages;
	pthread_mutex_unlock(&mg->lock);
	stream_free(&s);
	stream_free(&b);
	return rc;
}

static void *receiver_main(void *arg)
{
	migrate_t *mg = arg;
	int rc = receiver_run(mg);

	pthread_mutex_lock(&mg->lock);
	if (mg->fd >= 0)
		close(mg->fd);
	mg->fd = -1;
	mg->t_end = now_ns();
	pthread_mutex_unlock(&mg->lock);
	set_status(mg, rc ? MIGRATE_FAILED : MIGRATE_COMPLETED);
	request(mg, rc ? REQ_INCOMING_FAIL : REQ_INCOMING_OK);
	pthread_mutex_lock(&mg->lock);
	mg->done = true;
	pthread_mutex_unlock(&mg->lock);
	wake(mg);
	return NULL;
}

char *migrate_incoming_domain(migrate_t *mg)
{
	char *d;

	pthread_mutex_lock(&mg->lock);
	d = mg->incoming && mg->info.status == MIGRATE_COMPLETED ?
		    mg->domain_in : NULL;
	if (d)
		mg->domain_in = NULL;
	pthread_mutex_unlock(&mg->lock);
	return d;
}
