// SPDX-License-Identifier: MIT
/*
 * Relocation (docs/toolstack.md, "Relocation"): the server that accepts
 * incoming migrations on xend-relocation-port, and the source side that
 * drives `tern migrate`. The two daemons agree over JSON lines, then hand
 * the same TCP connection to their tern-vmm processes, which stream the VM.
 *
 * Every migration runs in a thread of its own, without t->lock while it
 * waits on the network. The handshake is read one byte at a time, so that
 * no byte of the migration stream that follows is ever consumed here.
 */
#include "ternd/ternd.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/err.h"
#include "util/log.h"
#include "util/net.h"

#define HANDSHAKE_LINE_MAX (1u << 20)
#define IMAGE_ID_SPAN 65536
#define MIG_KEEP_MS (5 * 60 * 1000)
#define POLL_MS 100

/* ---- shared helpers ---- */

static void set_timeouts(int fd, unsigned seconds)
{
	struct timeval tv = { .tv_sec = seconds };
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int send_json(int fd, json_t *msg, char *err, size_t errlen)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	size_t len, done = 0;

	json_decref(msg);
	if (!s)
		return err_set(err, errlen, "out of memory");
	len = strlen(s);
	s[len++] = '\n';	/* json_dumps leaves room: we replace the NUL */
	while (done < len) {
		ssize_t n = send(fd, s + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(s);
			return err_set(err, errlen, "%s", n < 0 &&
				       (errno == EAGAIN || errno == EWOULDBLOCK) ?
				       "timed out" : strerror(errno));
		}
		done += (size_t)n;
	}
	free(s);
	return 0;
}

/* One line, byte by byte (see the top of the file). */
static json_t *recv_json(int fd, char *err, size_t errlen)
{
	size_t len = 0, cap = 256;
	char *buf = malloc(cap);
	json_error_t jerr;
	json_t *j;

	if (!buf) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	for (;;) {
		char c;
		ssize_t n = recv(fd, &c, 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			err_set(err, errlen, "timed out");
			goto fail;
		}
		if (n <= 0) {
			err_set(err, errlen, "%s", n ? strerror(errno) :
				"connection closed");
			goto fail;
		}
		if (c == '\n')
			break;
		if (len + 1 >= cap) {
			char *p;

			if (cap >= HANDSHAKE_LINE_MAX) {
				err_set(err, errlen, "handshake line too long");
				goto fail;
			}
			cap *= 2;
			p = realloc(buf, cap);
			if (!p) {
				err_set(err, errlen, "out of memory");
				goto fail;
			}
			buf = p;
		}
		buf[len++] = c;
	}
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		err_set(err, errlen, "malformed handshake message");
		return NULL;
	}
	return j;
fail:
	free(buf);
	return NULL;
}

static json_t *error_msg(const char *desc)
{
	return json_pack("{s:{s:s,s:s}}", "error", "class", "GenericError",
			 "desc", desc);
}

/*
 * Identifies a disk image: shared storage shows the same file at the same
 * path on both hosts; a copy or another file would not match.
 */
static int image_id(const char *path, uint64_t *size, char out[17], char *err,
		    size_t errlen)
{
	uint8_t *buf = malloc(2 * IMAGE_ID_SPAN);
	struct stat st;
	ssize_t a = 0, b = 0;
	uint64_t h;
	int fd;

	if (!buf)
		return err_set(err, errlen, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		err_set(err, errlen, "disk %s: %s", path, strerror(errno));
		goto fail;
	}
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(fd, 0, SEEK_END);

		st.st_size = end < 0 ? 0 : end;
	}
	a = pread(fd, buf, IMAGE_ID_SPAN, 0);
	if (st.st_size > 2 * IMAGE_ID_SPAN)
		b = pread(fd, buf + IMAGE_ID_SPAN, IMAGE_ID_SPAN,
			  st.st_size - IMAGE_ID_SPAN);
	if (a < 0 || b < 0) {
		err_set(err, errlen, "disk %s: %s", path, strerror(errno));
		goto fail;
	}
	h = XXH3_64bits_withSeed(buf, (size_t)(a + b), (uint64_t)st.st_size);
	snprintf(out, 17, "%016llx", (unsigned long long)h);
	*size = (uint64_t)st.st_size;
	close(fd);
	free(buf);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return -1;
}

/* "X.Y.Z" as a number that orders versions. */
static uint64_t version_value(const char *v)
{
	unsigned a = 0, b = 0, c = 0;

	if (!v || sscanf(v, "%u.%u.%u", &a, &b, &c) < 2)
		return 0;
	return ((uint64_t)a << 40) | ((uint64_t)b << 20) | c;
}

/* Is every extension of isa (rv64 letters, then _named ones) in ours? */
static bool isa_supported(const char *isa, char *missing, size_t len)
{
	const char *ours = TERND_ISA, *p, *u;

	if (strncmp(isa, "rv64", 4)) {
		snprintf(missing, len, "base %.8s", isa);
		return false;
	}
	u = strchr(ours, '_');
	for (p = isa + 4; *p && *p != '_'; p++) {
		const char *q = memchr(ours + 4, *p, (size_t)(u - ours - 4));

		if (!q) {
			snprintf(missing, len, "%c", *p);
			return false;
		}
	}
	while (*p == '_') {
		const char *end = strchr(p + 1, '_');
		size_t n = end ? (size_t)(end - p - 1) : strlen(p + 1);
		bool found = false;

		for (const char *q = strchr(ours, '_'); q && !found;
		     q = strchr(q + 1, '_')) {
			const char *qe = strchr(q + 1, '_');
			size_t qn = qe ? (size_t)(qe - q - 1) : strlen(q + 1);

			found = qn == n && !strncmp(q + 1, p + 1, n);
		}
		if (!found) {
			snprintf(missing, len, "%.*s", (int)n, p + 1);
			return false;
		}
		p += n + 1;
	}
	return true;
}

/* ---- the relocation server (destination) ---- */

int reloc_listen(ternd_t *t, char *err, size_t errlen)
{
	const char *addr = t->cfg.relocation_address;
	char port[8], why[512];
	int fd;

	t->reloc_fd = -1;
	if (!t->cfg.relocation_server)
		return 0;
	snprintf(port, sizeof(port), "%u", t->cfg.relocation_port);
	fd = net_listen(addr, port, 16, why, sizeof(why));
	if (fd < 0)
		return err_set(err, errlen, "relocation server: %s", why);
	t->reloc_fd = fd;
	log_info("relocation server listening on %s:%s", *addr ? addr : "*", port);
	return 0;
}

typedef struct incoming {
	ternd_t *t;
	int fd;
	struct sockaddr_storage sa;
	socklen_t salen;
} incoming_t;

/*
 * The destination's checks before any memory moves (the nova flow's
 * check_can_live_migrate_on_dest). Returns 0 or -1 with the reason.
 */
static int check_prepare(ternd_t *t, json_t *args, char *err, size_t errlen)
{
	const char *version = json_string_value(json_object_get(args, "version"));
	const char *machine = json_string_value(json_object_get(args, "machine"));
	const char *isa = json_string_value(json_object_get(args, "isa"));
	json_t *disks = json_object_get(args, "disks"), *dk;
	char missing[64];
	size_t i;

	if (!version || !machine || !isa ||
	    !json_is_string(json_object_get(args, "config")) ||
	    !json_is_array(disks))
		return err_set(err, errlen, "malformed migrate-prepare request");
	if (version_value(version) == 0)
		return err_set(err, errlen, "malformed source version '%.32s'",
			       version);
	if (version_value(version) > version_value(TERN_VERSION))
		return err_set(err, errlen, "%s runs tern %s, older than the "
			       "source's %.32s (the destination must be the same "
			       "or newer)", t->host, TERN_VERSION, version);
	if (strcmp(machine, TERND_MACHINE))
		return err_set(err, errlen, "machine type '%.64s' is not supported "
			       "on %s (it runs %s)", machine, t->host, TERND_MACHINE);
	if (!isa_supported(isa, missing, sizeof(missing)))
		return err_set(err, errlen, "%s lacks the ISA extension '%s' the "
			       "domain uses", t->host, missing);
	json_array_foreach(disks, i, dk) {
		const char *path = json_string_value(json_object_get(dk, "path"));
		const char *id = json_string_value(json_object_get(dk, "id"));
		json_t *size = json_object_get(dk, "size");
		char our_id[17], why[512];
		uint64_t our_size;

		if (!path || !id || !json_is_integer(size) || path[0] != '/')
			return err_set(err, errlen, "malformed disk in "
				       "migrate-prepare request");
		if (image_id(path, &our_size, our_id, why, sizeof(why)))
			return err_set(err, errlen, "%s on %s (disks must be "
				       "shared storage at the same path)", why,
				       t->host);
		if (our_size != (uint64_t)json_integer_value(size) ||
		    strcmp(our_id, id))
			return err_set(err, errlen, "disk %.256s on %s is not the "
				       "source's image (size %llu vs %llu, or "
				       "different contents): it must be shared "
				       "storage", path, t->host,
				       (unsigned long long)our_size,
				       (unsigned long long)json_integer_value(size));
	}
	return 0;
}

static void incoming_run(incoming_t *in)
{
	ternd_t *t = in->t;
	char addr[128], err[768], desc[1024];
	const char *exec, *instance;
	json_t *req = NULL, *args;
	domain_t *d;
	bool same;

	set_timeouts(in->fd, t->cfg.relocation_timeout_s);
	if (!hostcfg_allow_peer(&t->cfg, (struct sockaddr *)&in->sa, in->salen,
				addr, sizeof(addr))) {
		snprintf(desc, sizeof(desc), "relocation from %s is not allowed "
			 "(xend-relocation-hosts-allow)", addr);
		log_warn("refused relocation connection from %s "
			 "(xend-relocation-hosts-allow)", addr);
		send_json(in->fd, error_msg(desc), err, sizeof(err));
		return;
	}
	if (send_json(in->fd, json_pack("{s:{s:s,s:s,s:s}}", "tern-relocation",
					"version", TERN_VERSION, "host", t->host,
					"instance", t->instance), err, sizeof(err))) {
		log_warn("relocation connection from %s: %s", addr, err);
		return;
	}
	req = recv_json(in->fd, err, sizeof(err));
	if (!req) {
		log_warn("relocation connection from %s: %s", addr, err);
		return;
	}
	exec = json_string_value(json_object_get(req, "execute"));
	args = json_object_get(req, "arguments");
	if (!exec || strcmp(exec, "migrate-prepare") || !json_is_object(args)) {
		send_json(in->fd, error_msg("expected migrate-prepare"), err,
			  sizeof(err));
		goto out;
	}
	if (check_prepare(t, args, err, sizeof(err))) {
		log_warn("refused migration from %s: %s", addr, err);
		send_json(in->fd, error_msg(err), err, sizeof(err));
		goto out;
	}
	instance = json_string_value(json_object_get(args, "instance"));
	same = instance && !strcmp(instance, t->instance);
	pthread_mutex_lock(&t->lock);
	d = domain_create(t, json_string_value(json_object_get(args, "config")),
			  "migrated config", false, NULL, in->fd, same, err,
			  sizeof(err));
	if (d)
		d->refs++;
	pthread_mutex_unlock(&t->lock);
	if (!d) {
		log_warn("refused migration from %s: %s", addr, err);
		send_json(in->fd, error_msg(err), err, sizeof(err));
		goto out;
	}
	log_info("domain %s (id %u): receiving from %s", d->name, d->id, addr);
	if (send_json(in->fd, json_pack("{s:{s:I}}", "return", "id",
					(json_int_t)d->id), err, sizeof(err)))
		log_warn("relocation connection from %s: %s", addr, err);
	close(in->fd);
	in->fd = -1;
	ternd_wake(t);
	/*
	 * The incoming tern-vmm dies with this thread (PR_SET_PDEATHSIG) until
	 * it has loaded the VM: stay until then.
	 */
	pthread_mutex_lock(&t->lock);
	while (!d->gone && !d->incoming_done && d->state == DOM_INCOMING) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	if (!d->gone && d->state != DOM_INCOMING)
		log_info("domain %s (id %u): migration from %s completed",
			 d->name, d->id, addr);
	domain_put(d);
	pthread_mutex_unlock(&t->lock);
out:
	json_decref(req);
}

static void *incoming_main(void *arg)
{
	incoming_t *in = arg;

	incoming_run(in);
	if (in->fd >= 0)
		close(in->fd);
	free(in);
	return NULL;
}

void reloc_accept(ternd_t *t)
{
	incoming_t *in = calloc(1, sizeof(*in));
	pthread_attr_t attr;
	pthread_t th;

	if (!in)
		return;
	in->t = t;
	in->salen = sizeof(in->sa);
	in->fd = accept4(t->reloc_fd, (struct sockaddr *)&in->sa, &in->salen,
			 SOCK_CLOEXEC);
	if (in->fd < 0) {
		free(in);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, incoming_main, in)) {
		close(in->fd);
		free(in);
	}
	pthread_attr_destroy(&attr);
}

/* ---- the source side ---- */

typedef struct outgoing {
	ternd_t *t;
	domain_t *d;
	mig_out_t *m;
} outgoing_t;

static void mig_set(ternd_t *t, mig_out_t *m, const char *status,
		    const char *error)
{
	pthread_mutex_lock(&t->lock);
	snprintf(m->status, sizeof(m->status), "%s", status);
	if (error)
		snprintf(m->error, sizeof(m->error), "%s", error);
	if (!strcmp(status, "completed") || !strcmp(status, "failed"))
		m->ended_ms = ternd_now_ms();
	pthread_mutex_unlock(&t->lock);
}

static int connect_host(const char *host, unsigned port, unsigned timeout_s,
			char *err, size_t errlen)
{
	char ports[8];
	size_t n;
	int fd;

	snprintf(ports, sizeof(ports), "%u", port);
	fd = net_connect(host, ports, timeout_s * 1000, -1, err, errlen);
	if (fd < 0 && errno == ECONNREFUSED && err && errlen) {
		n = strlen(err);
		snprintf(err + n, errlen - n, " (is the relocation server "
			 "enabled there?)");
	}
	return fd;
}

static json_t *prepare_request(ternd_t *t, domain_t *d, bool live, char *err,
			       size_t errlen)
{
	json_t *disks = json_array(), *req;

	for (unsigned i = 0; disks && i < d->cfg.n_disks; i++) {
		char id[17];
		uint64_t size;

		if (image_id(d->cfg.disks[i].path, &size, id, err, errlen)) {
			json_decref(disks);
			return NULL;
		}
		json_array_append_new(disks, json_pack("{s:s,s:I,s:s}", "path",
						       d->cfg.disks[i].path, "size",
						       (json_int_t)size, "id", id));
	}
	req = json_pack("{s:s,s:{s:s,s:s,s:I,s:s,s:s,s:s,s:b,s:o,s:s}}",
			"execute", "migrate-prepare", "arguments", "name",
			d->name, "config", d->config, "memory",
			(json_int_t)d->cfg.memory_mib, "version", TERN_VERSION,
			"machine", TERND_MACHINE, "isa", TERND_ISA, "live", live,
			"disks", disks, "instance", t->instance);
	if (!req)
		err_set(err, errlen, "out of memory");
	return req;
}

/* Status word of a tern-vmm query-migrate answer in tern's words. */
static const char *vmm_status(json_t *qm)
{
	const char *s = json_string_value(json_object_get(qm, "status"));

	if (!s)
		return "active";
	if (!strcmp(s, "setup") || !strcmp(s, "none"))
		return "active";
	if (!strcmp(s, "cancelled"))
		return "failed";
	return s;
}

/* After the hand-over the source tern-vmm exits: did it migrate? */
static bool migrated_away(ternd_t *t, domain_t *d)
{
	bool yes = false;

	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < 50 && !yes; i++) {
		struct timespec ts;

		yes = !strcmp(d->end_reason, "migrated");
		if (yes || (d->gone && d->pid == 0 && !d->ev))
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	yes = yes || !strcmp(d->end_reason, "migrated");
	pthread_mutex_unlock(&t->lock);
	return yes;
}

/*
 * Takes the events tern-vmm sent: the final figures (MIGRATION's "stats")
 * and whether the VM is gone to the destination. True once it is.
 */
static bool take_events(ternd_t *t, mig_out_t *m, qmp_client_t *q)
{
	bool done = false;
	json_t *ev;

	while ((ev = qmp_next_event(q))) {
		const char *name = json_string_value(json_object_get(ev, "event"));
		json_t *data = json_object_get(ev, "data");
		const char *s = json_string_value(json_object_get(data, "status"));
		const char *r = json_string_value(json_object_get(data, "reason"));
		json_t *stats = json_object_get(data, "stats");

		if (!name)
			name = "";
		if ((!strcmp(name, "MIGRATION") && s && !strcmp(s, "completed")) ||
		    (!strcmp(name, "SHUTDOWN") && r && !strcmp(r, "migrated")))
			done = true;
		if (json_is_object(stats)) {
			pthread_mutex_lock(&t->lock);
			json_decref(m->progress);
			m->progress = json_incref(stats);
			pthread_mutex_unlock(&t->lock);
		}
		json_decref(ev);
	}
	return done;
}

/* Follows the source tern-vmm until the migration ends. */
static int follow(ternd_t *t, domain_t *d, mig_out_t *m, qmp_client_t *q,
		  char *err, size_t errlen)
{
	for (;;) {
		json_t *qm;
		const char *st;

		if (take_events(t, m, q))
			return 0;
		qm = qmp_call(q, "query-migrate", NULL, err, errlen);
		if (!qm) {
			/* Gone: after a hand-over its last events say so. */
			qmp_pump(q);
			if (take_events(t, m, q))
				return 0;
			return migrated_away(t, d) ? 0 : -1;
		}
		st = vmm_status(qm);
		pthread_mutex_lock(&t->lock);
		json_decref(m->progress);
		m->progress = json_incref(qm);
		if (strcmp(st, "completed") && strcmp(st, "failed"))
			snprintf(m->status, sizeof(m->status), "%s", st);
		pthread_mutex_unlock(&t->lock);
		if (!strcmp(st, "completed")) {
			json_decref(qm);
			return 0;
		}
		if (!strcmp(st, "failed")) {
			const char *e = json_string_value(json_object_get(qm,
								"error-desc"));

			err_set(err, errlen, "%s", e ? e : "migration failed");
			json_decref(qm);
			return -1;
		}
		json_decref(qm);
		usleep(POLL_MS * 1000);
	}
}

static int outgoing_run(outgoing_t *o, char *err, size_t errlen)
{
	ternd_t *t = o->t;
	domain_t *d = o->d;
	mig_out_t *m = o->m;
	json_t *msg, *ret, *args;
	qmp_client_t *q = NULL;
	char ctl[300], desc[768];
	int fd, rc = -1;

	fd = connect_host(m->host, m->port, t->cfg.relocation_timeout_s, err,
			  errlen);
	if (fd < 0)
		return -1;
	set_timeouts(fd, t->cfg.relocation_timeout_s);
	msg = recv_json(fd, desc, sizeof(desc));
	if (!msg) {
		err_set(err, errlen, "%s:%u: %s", m->host, m->port, desc);
		goto out;
	}
	if (json_object_get(msg, "error")) {
		const char *e = json_string_value(json_object_get(
				json_object_get(msg, "error"), "desc"));

		err_set(err, errlen, "%s refused: %s", m->host, e ? e : "?");
		json_decref(msg);
		goto out;
	}
	if (!json_is_object(json_object_get(msg, "tern-relocation"))) {
		err_set(err, errlen, "%s:%u is not a tern relocation server",
			m->host, m->port);
		json_decref(msg);
		goto out;
	}
	json_decref(msg);
	mig_set(t, m, "checking", NULL);
	msg = prepare_request(t, d, m->live, err, errlen);
	if (!msg || send_json(fd, msg, desc, sizeof(desc))) {
		if (msg)
			err_set(err, errlen, "%s: %s", m->host, desc);
		goto out;
	}
	msg = recv_json(fd, desc, sizeof(desc));
	if (!msg) {
		err_set(err, errlen, "%s: %s", m->host, desc);
		goto out;
	}
	if (!json_object_get(msg, "return")) {
		const char *e = json_string_value(json_object_get(
				json_object_get(msg, "error"), "desc"));

		err_set(err, errlen, "%s", e ? e : "refused by the destination");
		json_decref(msg);
		goto out;
	}
	json_decref(msg);

	/* Agreed: the connection now belongs to the two tern-vmm. */
	mig_set(t, m, "active", NULL);
	snprintf(ctl, sizeof(ctl), "%s/ctl.sock", d->dir);
	q = qmp_connect(ctl, 10000, err, errlen);
	if (!q)
		goto out;
	ret = qmp_call_fd(q, "getfd", json_pack("{s:s}", "fdname", "reloc"), fd,
			  err, errlen);
	if (!ret)
		goto out;
	json_decref(ret);
	close(fd);
	fd = -1;
	args = json_pack("{s:s,s:b,s:I,s:I}", "uri", "fd:reloc", "live", m->live,
			 "downtime-limit", (json_int_t)m->downtime_ms,
			 "bandwidth", (json_int_t)m->bandwidth_mbs);
	ret = qmp_call(q, "migrate", args, err, errlen);
	if (!ret)
		goto out;
	json_decref(ret);
	rc = follow(t, d, m, q, err, errlen);
out:
	if (q)
		qmp_close(q);
	if (fd >= 0)
		close(fd);
	return rc;
}

static void *outgoing_main(void *arg)
{
	outgoing_t *o = arg;
	ternd_t *t = o->t;
	char err[768];

	if (outgoing_run(o, err, sizeof(err))) {
		log_warn("migration of %s to %s failed: %s", o->m->name,
			 o->m->host, err);
		mig_set(t, o->m, "failed", err);
		pthread_mutex_lock(&t->lock);
		if (!o->d->gone && o->d->state == DOM_MIGRATING)
			domain_set_state(t, o->d, o->d->state_before);
		pthread_mutex_unlock(&t->lock);
	} else {
		log_info("migration of %s to %s completed", o->m->name,
			 o->m->host);
		mig_set(t, o->m, "completed", NULL);
	}
	pthread_mutex_lock(&t->lock);
	domain_put(o->d);
	pthread_mutex_unlock(&t->lock);
	ternd_wake(t);
	free(o);
	return NULL;
}

int reloc_migrate(ternd_t *t, domain_t *d, const char *host, unsigned port,
		  bool live, uint64_t downtime_ms, uint64_t bandwidth_mbs,
		  char *err, size_t errlen)
{
	outgoing_t *o;
	mig_out_t *m;
	pthread_attr_t attr;
	pthread_t th;

	if (d->state != DOM_RUNNING && d->state != DOM_PAUSED)
		return err_set(err, errlen, "domain '%s' is %s, not running",
			       d->name, dom_state_name(d->state));
	if (!*host || strlen(host) >= sizeof(m->host))
		return err_set(err, errlen, "invalid host name");
	o = calloc(1, sizeof(*o));
	m = calloc(1, sizeof(*m));
	if (!o || !m) {
		free(o);
		free(m);
		return err_set(err, errlen, "out of memory");
	}
	snprintf(m->name, sizeof(m->name), "%s", d->name);
	m->id = d->id;
	snprintf(m->host, sizeof(m->host), "%s", host);
	m->port = port;
	m->live = live;
	m->downtime_ms = downtime_ms;
	m->bandwidth_mbs = bandwidth_mbs;
	snprintf(m->status, sizeof(m->status), "connecting");
	m->started_ms = ternd_now_ms();
	o->t = t;
	o->d = d;
	o->m = m;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, outgoing_main, o)) {
		pthread_attr_destroy(&attr);
		free(o);
		free(m);
		return err_set(err, errlen, "cannot start a thread");
	}
	pthread_attr_destroy(&attr);
	/* Only now: the thread is certain to run and to drop the reference. */
	for (mig_out_t **p = &t->migs; *p; p = &(*p)->next) {
		if (!strcmp((*p)->name, m->name)) {
			mig_out_t *old = *p;

			*p = old->next;
			json_decref(old->progress);
			free(old);
			break;
		}
	}
	m->next = t->migs;
	t->migs = m;
	d->refs++;
	d->state_before = d->state;
	domain_set_state(t, d, DOM_MIGRATING);
	log_info("migrating %s to %s:%u (%s)", d->name, host, port,
		 live ? "live" : "offline");
	return 0;
}

json_t *reloc_query(ternd_t *t, const char *ref)
{
	json_t *r, *p, *ram;
	char id[16];
	mig_out_t *m;
	uint64_t end;

	for (m = t->migs; m; m = m->next)
		if (!strcmp(m->name, ref))
			break;
	for (mig_out_t *k = m ? NULL : t->migs; k; k = k->next) {
		snprintf(id, sizeof(id), "%u", k->id);
		if (!strcmp(id, ref)) {
			m = k;
			break;
		}
	}
	if (!m)
		return NULL;
	end = m->ended_ms ? m->ended_ms : ternd_now_ms();
	r = json_pack("{s:s,s:I,s:s,s:s,s:I,s:b,s:I}", "domain", m->name,
		      "id", (json_int_t)m->id, "status",
		      m->status, "host", m->host, "port", (json_int_t)m->port,
		      "live", m->live, "total-time",
		      (json_int_t)(end - m->started_ms));
	if (!r)
		return NULL;
	if (*m->error)
		json_object_set_new(r, "error", json_string(m->error));
	p = m->progress;
	ram = json_object_get(p, "ram");
	if (ram) {
		static const char *const keys[] = { "transferred", "remaining",
						    "total", "mbps" };

		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			json_t *v = json_object_get(ram, keys[i]);

			if (v)
				json_object_set(r, keys[i], v);
		}
		if (json_object_get(ram, "dirty-sync-count"))
			json_object_set(r, "rounds",
					json_object_get(ram, "dirty-sync-count"));
	}
	if (json_object_get(p, "expected-downtime"))
		json_object_set(r, "expected-downtime",
				json_object_get(p, "expected-downtime"));
	if (json_object_get(p, "downtime"))
		json_object_set(r, "downtime", json_object_get(p, "downtime"));
	return r;
}

void reloc_expire(ternd_t *t)
{
	uint64_t now = ternd_now_ms();

	for (mig_out_t **p = &t->migs; *p;) {
		mig_out_t *m = *p;

		if (m->ended_ms && now - m->ended_ms > MIG_KEEP_MS) {
			*p = m->next;
			json_decref(m->progress);
			free(m);
		} else {
			p = &m->next;
		}
	}
}
