// SPDX-License-Identifier: MIT
/*
 * Live migration inside one process: two machines, each with its hart,
 * over loopback TCP; the policy; refusal before anything moves; a
 * destination that goes away; cancel; migration to a file; migration over
 * given file descriptors (fd:NAME, --incoming fd:N) with the domain config
 * travelling along; the destination's last word before it confirms.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "machine/machine.h"
#include "machine/platform.h"
#include "migration/migrate.h"
#include "migration/savevm.h"
#include "migration/stream.h"
#include "rv_encode.h"

#define RAM_BYTES (8u << 20)
#define CODE (MEM_RAM_BASE + 0x1000)
#define DATA (MEM_RAM_BASE + 0x200000)

static void discard(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	(void)len;
}

static machine_t *build(uint64_t ram)
{
	machine_t *m = calloc(1, sizeof(*m));
	char err[256];

	assert_non_null(m);
	if (machine_init(m, ram, 1, err, sizeof(err)) ||
	    platform_create(m, discard, NULL, err, sizeof(err)))
		fail_msg("building the machine: %s", err);
	return m;
}

static void destroy(machine_t *m)
{
	machine_destroy(m);
	free(m);
}


enum { T0 = 5, A0 = 10, A1 = 11 };

/*
 * A store loop over 256 pages (unprivileged spec 2.4, 2.6):
 * loop: a0 += 1; t0 = (a0 & 0xff) << 12; *(a1 + t0) = a0; jump loop
 * Every page of the buffer is written again and again, with a counter
 * that never repeats, so a stale page shows.
 */
/* Bytes that do not compress (xorshift64), so that sizes stay as large as
 * the RAM they stand for. */
static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
}

static void put_program(machine_t *m)
{
	uint32_t code[6];

	code[0] = i_type(1, A0, 0, A0, 0x13);		/* addi a0,a0,1 */
	code[1] = i_type(56, A0, 1, T0, 0x13);		/* slli t0,a0,56 */
	code[2] = i_type(44, T0, 5, T0, 0x13);		/* srli t0,t0,44 */
	code[3] = r_type(0, A1, T0, 0, T0, 0x33);	/* add t0,t0,a1 */
	code[4] = s_type(0, A0, T0, 3, 0x23);		/* sd a0,0(t0) */
	code[5] = j_type(-20, 0);			/* j loop */
	memcpy(m->ram.host + (CODE - MEM_RAM_BASE), code, sizeof(code));
	ram_mark_dirty(&m->ram, CODE, sizeof(code));
	m->harts[0].s.pc = CODE;
	m->harts[0].s.x[A1] = DATA;
}

/* ---- a main loop for each side ---- */

typedef struct side {
	machine_t *m;
	migrate_t *mg;
	bool run;		/* the hart runs when not paused */
	bool paused, handed_over, done, ok;
	int pauses, resumes;
	char err[256];
	int commits;		/* incoming_commit calls */
	bool refuse_commit;	/* incoming_commit fails */
} side_t;

static void h_pause(void *o)
{
	side_t *s = o;

	s->paused = true;
	s->pauses++;
	vclock_pause(&s->m->clock);
}

static void h_resume(void *o)
{
	side_t *s = o;

	s->paused = false;
	s->resumes++;
	vclock_resume(&s->m->clock);
}

static void h_handed_over(void *o)
{
	((side_t *)o)->handed_over = true;
}

static void h_incoming_done(void *o, bool ok, const char *err)
{
	side_t *s = o;

	s->done = true;
	s->ok = ok;
	snprintf(s->err, sizeof(s->err), "%s", err);
}

static int h_incoming_commit(void *o, char *err, size_t errlen)
{
	side_t *s = o;

	s->commits++;
	if (s->refuse_commit) {
		snprintf(err, errlen, "the parent is gone");
		return -1;
	}
	return 0;
}

static const migrate_hooks_t hooks = {
	.pause = h_pause,
	.resume = h_resume,
	.handed_over = h_handed_over,
	.incoming_done = h_incoming_done,
	.incoming_commit = h_incoming_commit,
};

static void step(side_t *s)
{
	if (s->mg && migrate_pending(s->mg))
		migrate_service(s->mg);
	if (s->run && !s->paused && !s->handed_over)
		hart_run(&s->m->harts[0], 2000);
	else
		usleep(200);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs both sides until the source's migration is over (10 s at most). */
static enum migrate_status run_both(side_t *src, side_t *dst)
{
	uint64_t t0 = now_ms();
	migrate_info_t i;

	while (migrate_running(src->mg) || (dst && dst->mg &&
					    migrate_running(dst->mg))) {
		step(src);
		if (dst)
			step(dst);
		if (now_ms() - t0 > 10000)
			fail_msg("migration did not finish in 10 s");
	}
	/* Last requests (hand-over, incoming done) were served in the loop:
	 * the thread only finishes after they are. */
	migrate_get_info(src->mg, &i);
	return i.status;
}

/* A listening socket on a free loopback port; its uri in uri. */
static int listen_any(char *uri, size_t len)
{
	char err[256];

	for (unsigned i = 0; i < 200; i++) {
		unsigned port = 20000 + (unsigned)(getpid() * 7 + i * 131) % 40000;
		int fd;

		snprintf(uri, len, "tcp:127.0.0.1:%u", port);
		fd = migrate_incoming_listen(uri, err, sizeof(err));
		if (fd >= 0)
			return fd;
	}
	fail_msg("no free port: %s", "");
	return -1;
}

static migrate_params_t params(void)
{
	migrate_params_t p;

	migrate_params_default(&p);
	p.io_timeout_ms = 5000;
	return p;
}

/* ---- tests ---- */

static void test_policy(void **state)
{
	migrate_params_t p;

	(void)state;
	migrate_params_default(&p);
	/* 300 ms at 100 MB/s: 30 MB fits, 31 MB does not. */
	assert_int_equal(migrate_policy(&p, 30000000, 1e8, 1, 10),
			 MIGRATE_STOP_COPY);
	assert_int_equal(migrate_policy(&p, 31000000, 1e8, 1, 10),
			 MIGRATE_CONTINUE);
	assert_int_equal(migrate_policy(&p, 0, 0, 1, 10), MIGRATE_STOP_COPY);
	/* Unknown bandwidth: keep going. */
	assert_int_equal(migrate_policy(&p, 4096, 0, 1, 10), MIGRATE_CONTINUE);
	/* Out of rounds or time: the give-up choice. */
	assert_int_equal(migrate_policy(&p, 1u << 30, 1e8, 30, 10),
			 MIGRATE_STOP_COPY);
	assert_int_equal(migrate_policy(&p, 1u << 30, 1e8, 29, 10),
			 MIGRATE_CONTINUE);
	assert_int_equal(migrate_policy(&p, 1u << 30, 1e8, 2, 60000),
			 MIGRATE_STOP_COPY);
	p.give_up = MIGRATE_GIVE_UP_ABORT;
	assert_int_equal(migrate_policy(&p, 1u << 30, 1e8, 30, 10),
			 MIGRATE_ABORT);
	assert_int_equal(migrate_policy(&p, 1u << 30, 1e8, 2, 60000),
			 MIGRATE_ABORT);
	/* A fitting rest stops and copies even in the last round. */
	assert_int_equal(migrate_policy(&p, 4096, 1e8, 30, 10),
			 MIGRATE_STOP_COPY);
	p.downtime_ms = 0;
	assert_int_equal(migrate_policy(&p, 4096, 1e12, 3, 10),
			 MIGRATE_CONTINUE);
	assert_int_equal(migrate_policy(&p, 4096, 1e12, 30, 10),
			 MIGRATE_ABORT);
}

static void assert_same(machine_t *a, machine_t *b)
{
	assert_memory_equal(a->ram.host, b->ram.host, a->ram.size);
	assert_memory_equal(&a->harts[0].s, &b->harts[0].s,
			    sizeof(a->harts[0].s));
	assert_int_equal(a->clock.s.guest_ns, b->clock.s.guest_ns);
}

/* Live: the hart stores all along; several rounds; the destination's RAM
 * and hart equal the source's at the switch, and it runs on from there. */
static void test_live(void **state)
{
	side_t src = { .m = build(RAM_BYTES), .run = true };
	side_t dst = { .m = build(RAM_BYTES) };
	migrate_params_t p = params();
	char uri[64], err[256];
	migrate_info_t i;
	int lfd = listen_any(uri, sizeof(uri));
	migrate_event_t ev;
	unsigned passes = 0, last = MIGRATE_NONE;
	uint64_t a0;

	(void)state;
	put_program(src.m);
	fill_random(src.m->ram.host + (1u << 20), 2u << 20, 0x1234);
	for (int k = 0; k < 50; k++)
		hart_run(&src.m->harts[0], 10000);
	assert_int_equal(migrate_incoming_start(&dst.mg, dst.m, lfd, 5000,
						&hooks, &dst, err, sizeof(err)), 0);
	/* A zero downtime limit never fits: three rounds, then stop-copy. */
	p.downtime_ms = 0;
	p.max_rounds = 3;
	assert_int_equal(migrate_start(&src.mg, src.m, uri, &p, &hooks, &src,
				       err, sizeof(err)), 0);
	assert_int_equal(run_both(&src, &dst), MIGRATE_COMPLETED);
	assert_true(src.handed_over);
	assert_int_equal(src.pauses, 1);
	assert_int_equal(src.resumes, 0);
	assert_true(dst.done);
	if (!dst.ok)
		fail_msg("destination: %s", dst.err);
	assert_same(src.m, dst.m);
	while (migrate_next_event(src.mg, &ev)) {
		if (ev.kind == MIGRATE_EV_PASS)
			assert_int_equal(ev.value, ++passes);
		else
			last = ev.value;
	}
	assert_int_equal(passes, 3);
	assert_int_equal(last, MIGRATE_COMPLETED);
	migrate_get_info(src.mg, &i);
	assert_int_equal(i.dirty_sync_count, 3);
	assert_int_equal(i.remaining, 0);
	assert_true(i.transferred > 256 * RAM_PAGE_SIZE);
	assert_true(i.normal >= 257);
	/* The destination runs on: its counter moves from the source's. */
	a0 = dst.m->harts[0].s.x[A0];
	vclock_resume(&dst.m->clock);
	hart_run(&dst.m->harts[0], 10000);
	assert_true(dst.m->harts[0].s.x[A0] > a0);
	migrate_free(src.mg);
	migrate_free(dst.mg);
	destroy(src.m);
	destroy(dst.m);
}

/* The destination refuses before the source pauses or sends a page. */
static void test_refused(void **state)
{
	side_t src = { .m = build(RAM_BYTES), .run = true };
	side_t dst = { .m = build(RAM_BYTES * 2) };
	migrate_params_t p = params();
	char uri[64], err[256];
	migrate_info_t i;
	int lfd = listen_any(uri, sizeof(uri));

	(void)state;
	put_program(src.m);
	assert_int_equal(migrate_incoming_start(&dst.mg, dst.m, lfd, 5000,
						&hooks, &dst, err, sizeof(err)), 0);
	assert_int_equal(migrate_start(&src.mg, src.m, uri, &p, &hooks, &src,
				       err, sizeof(err)), 0);
	assert_int_equal(run_both(&src, &dst), MIGRATE_FAILED);
	migrate_get_info(src.mg, &i);
	assert_non_null(strstr(i.error, "RAM size differs"));
	assert_non_null(strstr(i.error, "refused"));
	assert_int_equal(src.pauses, 0);
	assert_false(src.handed_over);
	assert_false(src.m->ram.logging);
	assert_true(dst.done);
	assert_false(dst.ok);
	assert_non_null(strstr(dst.err, "RAM size differs"));
	migrate_free(src.mg);
	migrate_free(dst.mg);
	destroy(src.m);
	destroy(dst.m);
}

/* A fake destination: accepts, says yes, reads `limit` bytes (0: never
 * reads), then closes (or waits until told to). */
typedef struct fake_dst {
	int lfd;
	size_t limit;
	volatile bool quit;
} fake_dst_t;

static void *fake_main(void *arg)
{
	fake_dst_t *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	stream_t s, b;
	stream_rec_t r;
	size_t got = 0;
	char buf[65536];

	if (fd < 0)
		return NULL;
	stream_init(&s, fd);
	stream_init(&b, fd);
	b.back = true;
	if (!stream_read_header(&s) && !stream_read_record(&s, &r))
		stream_write_accept(&b);
	while (f->limit && got < f->limit) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	while (!f->limit && !f->quit)
		usleep(1000);
	close(fd);
	stream_free(&s);
	stream_free(&b);
	return NULL;
}

static void test_destination_gone(void **state)
{
	side_t src = { .m = build(RAM_BYTES), .run = true };
	char uri[64], err[256];
	migrate_params_t p = params();
	fake_dst_t f = { .limit = 64 * 1024 };
	migrate_info_t i;
	pthread_t t;
	uint64_t a0;

	(void)state;
	f.lfd = listen_any(uri, sizeof(uri));
	put_program(src.m);
	/* Make RAM worth sending: 2 MiB of non-zero pages. */
	memset(src.m->ram.host + (4u << 20), 0x5a, 2u << 20);
	pthread_create(&t, NULL, fake_main, &f);
	assert_int_equal(migrate_start(&src.mg, src.m, uri, &p, &hooks, &src,
				       err, sizeof(err)), 0);
	assert_int_equal(run_both(&src, NULL), MIGRATE_FAILED);
	pthread_join(t, NULL);
	migrate_get_info(src.mg, &i);
	assert_true(i.error[0] != '\0');
	assert_false(src.handed_over);
	assert_int_equal(src.pauses, src.resumes);
	assert_false(src.m->ram.logging);
	/* The source runs on. */
	a0 = src.m->harts[0].s.x[A0];
	hart_run(&src.m->harts[0], 1000);
	assert_true(src.m->harts[0].s.x[A0] > a0);
	close(f.lfd);
	migrate_free(src.mg);
	destroy(src.m);
}

/* Cancel while the sender is blocked on a destination that never reads. */
static void test_cancel(void **state)
{
	side_t src = { .m = build(RAM_BYTES), .run = true };
	char uri[64], err[256];
	migrate_params_t p = params();
	fake_dst_t f = { .limit = 0 };
	migrate_info_t i;
	pthread_t t;
	uint64_t t0;

	(void)state;
	p.io_timeout_ms = 20000;	/* cancel, not a timeout, ends it */
	f.lfd = listen_any(uri, sizeof(uri));
	put_program(src.m);
	fill_random(src.m->ram.host + (1u << 20), 6u << 20, 0xa5);
	pthread_create(&t, NULL, fake_main, &f);
	assert_int_equal(migrate_start(&src.mg, src.m, uri, &p, &hooks, &src,
				       err, sizeof(err)), 0);
	/* Let it fill the socket buffers and block. */
	t0 = now_ms();
	while (now_ms() - t0 < 300)
		step(&src);
	migrate_get_info(src.mg, &i);
	assert_int_equal(i.status, MIGRATE_ACTIVE);
	t0 = now_ms();
	migrate_cancel(src.mg);
	assert_int_equal(run_both(&src, NULL), MIGRATE_CANCELLED);
	assert_true(now_ms() - t0 < 1000);
	migrate_get_info(src.mg, &i);
	assert_non_null(strstr(i.error, "cancelled"));
	assert_int_equal(src.pauses, src.resumes);
	assert_false(src.handed_over);
	f.quit = true;
	pthread_join(t, NULL);
	close(f.lfd);
	migrate_free(src.mg);
	destroy(src.m);
}

/* file: offline, atomic; the file restores into an equal machine. */
static void test_file(void **state)
{
	side_t src = { .m = build(RAM_BYTES), .run = true };
	machine_t *b = build(RAM_BYTES);
	migrate_params_t p = params();
	char path[] = "/tmp/tern-migrate-XXXXXX", uri[64], err[256];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	put_program(src.m);
	hart_run(&src.m->harts[0], 100000);
	snprintf(uri, sizeof(uri), "file:%s", path);
	assert_int_equal(migrate_start(&src.mg, src.m, uri, &p, &hooks, &src,
				       err, sizeof(err)), 0);
	assert_int_equal(run_both(&src, NULL), MIGRATE_COMPLETED);
	assert_int_equal(src.pauses, 1);
	assert_true(src.handed_over);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	if (savevm_load(b, fd, NULL, err, sizeof(err)))
		fail_msg("loading the file: %s", err);
	close(fd);
	assert_same(src.m, b);
	unlink(path);
	migrate_free(src.mg);
	destroy(src.m);
	destroy(b);
}

static void test_bad_uri(void **state)
{
	machine_t *m = build(RAM_BYTES);
	migrate_params_t p = params();
	migrate_t *mg = NULL;
	char err[256];

	(void)state;
	assert_int_equal(migrate_start(&mg, m, "udp:1.2.3.4:5", &p, &hooks,
				       NULL, err, sizeof(err)), -1);
	assert_int_equal(migrate_start(&mg, m, "tcp:localhost", &p, &hooks,
				       NULL, err, sizeof(err)), -1);
	assert_int_equal(migrate_start(&mg, m, "tcp:localhost:0", &p, &hooks,
				       NULL, err, sizeof(err)), -1);
	assert_int_equal(migrate_incoming_listen("tcp:127.0.0.1:0", err,
						 sizeof(err)), -1);
	assert_int_equal(migrate_incoming_listen("file:/tmp/x", err,
						 sizeof(err)), -1);
	assert_null(mg);
	destroy(m);
}

/* ---- given file descriptors ---- */

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/*
 * fd:NAME on one end of a connected socket pair, --incoming fd:N on the
 * other: live, with the back channel; the DOMAIN text arrives.
 */
static void test_fd_socket(void **state)
{
	side_t src = { .m = build(RAM_BYTES), .run = true };
	side_t dst = { .m = build(RAM_BYTES) };
	migrate_params_t p = params();
	char err[256], *domain;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	put_program(src.m);
	hart_run(&src.m->harts[0], 10000);
	/* A connected socket: taken as it is, no accept. */
	assert_int_equal(migrate_incoming_start(&dst.mg, dst.m, sv[1], 5000,
						&hooks, &dst, err, sizeof(err)), 0);
	p.domain = "name = \"vm1\"\nmemory = 8\n";
	p.max_rounds = 2;
	p.downtime_ms = 0;
	assert_int_equal(migrate_start_fd(&src.mg, src.m, sv[0], "fd:mig", &p,
					  &hooks, &src, err, sizeof(err)), 0);
	assert_int_equal(run_both(&src, &dst), MIGRATE_COMPLETED);
	assert_true(src.handed_over);
	if (!dst.ok)
		fail_msg("destination: %s", dst.err);
	assert_int_equal(dst.commits, 1);
	assert_same(src.m, dst.m);
	domain = migrate_incoming_domain(dst.mg);
	assert_non_null(domain);
	assert_string_equal(domain, "name = \"vm1\"\nmemory = 8\n");
	free(domain);
	assert_null(migrate_incoming_domain(dst.mg));
	/* The sender had none to give back: a source has no incoming one. */
	assert_null(migrate_incoming_domain(src.mg));
	migrate_free(src.mg);
	migrate_free(dst.mg);
	/* Both ends belonged to the migrations, which closed them. */
	assert_false(fd_open(sv[0]));
	assert_false(fd_open(sv[1]));
	destroy(src.m);
	destroy(dst.m);
}

/* The destination's commit hook says no: the source is told and keeps
 * its VM; nothing is confirmed. */
static void test_commit_refused(void **state)
{
	side_t src = { .m = build(RAM_BYTES), .run = true };
	side_t dst = { .m = build(RAM_BYTES), .refuse_commit = true };
	migrate_params_t p = params();
	char err[256];
	migrate_info_t i;
	uint64_t a0;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	put_program(src.m);
	assert_int_equal(migrate_incoming_start(&dst.mg, dst.m, sv[1], 5000,
						&hooks, &dst, err, sizeof(err)), 0);
	assert_int_equal(migrate_start_fd(&src.mg, src.m, sv[0], "fd:mig", &p,
					  &hooks, &src, err, sizeof(err)), 0);
	assert_int_equal(run_both(&src, &dst), MIGRATE_FAILED);
	migrate_get_info(src.mg, &i);
	assert_non_null(strstr(i.error, "refused: the parent is gone"));
	assert_false(src.handed_over);
	assert_int_equal(src.pauses, src.resumes);
	assert_int_equal(dst.commits, 1);
	assert_true(dst.done);
	assert_false(dst.ok);
	assert_non_null(strstr(dst.err, "the parent is gone"));
	assert_null(migrate_incoming_domain(dst.mg));
	a0 = src.m->harts[0].s.x[A0];
	hart_run(&src.m->harts[0], 1000);
	assert_true(src.m->harts[0].s.x[A0] > a0);
	migrate_free(src.mg);
	migrate_free(dst.mg);
	destroy(src.m);
	destroy(dst.m);
}

/* fd:NAME on a regular file: offline, written where the fd stands, the
 * source hands over; the file loads with its domain config. */
static void test_fd_file(void **state)
{
	side_t src = { .m = build(RAM_BYTES), .run = true };
	machine_t *b = build(RAM_BYTES);
	migrate_params_t p = params();
	char path[] = "/tmp/tern-migrate-fd-XXXXXX", err[256], *domain = NULL;
	int fd = mkstemp(path), rfd;

	(void)state;
	assert_true(fd >= 0);
	put_program(src.m);
	hart_run(&src.m->harts[0], 100000);
	p.domain = "name = 'file'\n";
	assert_int_equal(migrate_start_fd(&src.mg, src.m, fd, "fd:file", &p,
					  &hooks, &src, err, sizeof(err)), 0);
	assert_int_equal(run_both(&src, NULL), MIGRATE_COMPLETED);
	assert_int_equal(src.pauses, 1);
	assert_true(src.handed_over);
	rfd = open(path, O_RDONLY);
	assert_true(rfd >= 0);
	if (savevm_load(b, rfd, &domain, err, sizeof(err)))
		fail_msg("loading the file: %s", err);
	close(rfd);
	assert_string_equal(domain, "name = 'file'\n");
	free(domain);
	assert_same(src.m, b);
	/* ternd reads it back without loading. */
	assert_int_equal(savevm_read_domain_config(path, &domain, err,
						   sizeof(err)), 0);
	assert_string_equal(domain, "name = 'file'\n");
	free(domain);
	unlink(path);
	migrate_free(src.mg);
	assert_false(fd_open(fd));
	destroy(src.m);
	destroy(b);
}

typedef struct pipe_reader {
	int fd;
	int out;		/* memfd the bytes go to */
} pipe_reader_t;

static void *pipe_main(void *arg)
{
	pipe_reader_t *r = arg;
	char buf[65536];
	ssize_t n;

	while ((n = read(r->fd, buf, sizeof(buf))) > 0)
		assert_int_equal(write(r->out, buf, (size_t)n), n);
	close(r->fd);
	return NULL;
}

/* fd:NAME on a pipe: the stream goes through it (a pipe is small: the
 * writer waits for the reader many times). */
static void test_fd_pipe(void **state)
{
	side_t src = { .m = build(RAM_BYTES), .run = true };
	machine_t *b = build(RAM_BYTES);
	migrate_params_t p = params();
	pipe_reader_t r;
	char err[256];
	pthread_t t;
	int pfd[2];

	(void)state;
	assert_int_equal(pipe(pfd), 0);
	r.fd = pfd[0];
	r.out = memfd_create("pipe-out", MFD_CLOEXEC);
	assert_true(r.out >= 0);
	put_program(src.m);
	memset(src.m->ram.host + (4u << 20), 0x77, 1u << 20);
	pthread_create(&t, NULL, pipe_main, &r);
	assert_int_equal(migrate_start_fd(&src.mg, src.m, pfd[1], "fd:pipe", &p,
					  &hooks, &src, err, sizeof(err)), 0);
	assert_int_equal(run_both(&src, NULL), MIGRATE_COMPLETED);
	assert_true(src.handed_over);
	pthread_join(t, NULL);	/* EOF: the migration closed its end */
	assert_int_equal(lseek(r.out, 0, SEEK_SET), 0);
	if (savevm_load(b, r.out, NULL, err, sizeof(err)))
		fail_msg("loading what the pipe carried: %s", err);
	assert_same(src.m, b);
	close(r.out);
	migrate_free(src.mg);
	destroy(src.m);
	destroy(b);
}

/* A pipe nobody reads: the writer waits, and a cancel still ends it at
 * once (a pipe cannot be shut down as a socket can). */
static void test_fd_pipe_cancel(void **state)
{
	side_t src = { .m = build(RAM_BYTES), .run = true };
	migrate_params_t p = params();
	migrate_info_t i;
	char err[256];
	uint64_t t0;
	int pfd[2];

	(void)state;
	p.io_timeout_ms = 20000;
	assert_int_equal(pipe(pfd), 0);
	put_program(src.m);
	fill_random(src.m->ram.host + (1u << 20), 4u << 20, 0xa5);
	assert_int_equal(migrate_start_fd(&src.mg, src.m, pfd[1], "fd:pipe", &p,
					  &hooks, &src, err, sizeof(err)), 0);
	t0 = now_ms();
	while (now_ms() - t0 < 300)
		step(&src);
	migrate_get_info(src.mg, &i);
	assert_true(i.status == MIGRATE_ACTIVE || i.status == MIGRATE_SETUP);
	t0 = now_ms();
	migrate_cancel(src.mg);
	assert_int_equal(run_both(&src, NULL), MIGRATE_CANCELLED);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(src.pauses, src.resumes);
	assert_false(src.handed_over);
	close(pfd[0]);
	migrate_free(src.mg);
	destroy(src.m);
}

/* What is not a socket, a file or a pipe, or cannot be written, is
 * refused before anything starts, and the fd stays the caller's. */
static void test_fd_refused(void **state)
{
	machine_t *m = build(RAM_BYTES);
	migrate_params_t p = params();
	migrate_t *mg = NULL;
	char path[] = "/tmp/tern-migrate-ro-XXXXXX", err[256];
	int fd, dgram[2];

	(void)state;
	fd = open("/dev/null", O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(migrate_start_fd(&mg, m, fd, "fd:null", &p, &hooks,
					  NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "fd:null is neither a socket"));
	assert_true(fd_open(fd));
	close(fd);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	fd = open(path, O_RDONLY);
	assert_int_equal(migrate_start_fd(&mg, m, fd, "fd:ro", &p, &hooks,
					  NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not open for writing"));
	assert_true(fd_open(fd));
	close(fd);
	unlink(path);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram), 0);
	assert_int_equal(migrate_start_fd(&mg, m, dgram[0], "fd:dgram", &p,
					  &hooks, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a stream socket"));
	assert_true(fd_open(dgram[0]));
	assert_null(mg);
	close(dgram[0]);
	close(dgram[1]);
	destroy(m);
}

/* --incoming fd:N: an open stream socket, made close-on-exec. */
static void test_incoming_fd_checks(void **state)
{
	char uri[32], err[256];
	int sv[2], fd, nfd;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_false(fcntl(sv[0], F_GETFD) & FD_CLOEXEC);
	snprintf(uri, sizeof(uri), "fd:%d", sv[0]);
	assert_int_equal(migrate_incoming_listen(uri, err, sizeof(err)), sv[0]);
	assert_true(fcntl(sv[0], F_GETFD) & FD_CLOEXEC);
	close(sv[0]);
	close(sv[1]);
	/* Not open. */
	nfd = open("/dev/null", O_RDONLY);
	assert_true(nfd >= 0);
	close(nfd);
	snprintf(uri, sizeof(uri), "fd:%d", nfd);
	assert_int_equal(migrate_incoming_listen(uri, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not open"));
	/* Not a socket. */
	fd = open("/dev/null", O_RDONLY);
	snprintf(uri, sizeof(uri), "fd:%d", fd);
	assert_int_equal(migrate_incoming_listen(uri, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a socket"));
	close(fd);
	/* Not a number. */
	assert_int_equal(migrate_incoming_listen("fd:", err, sizeof(err)), -1);
	assert_int_equal(migrate_incoming_listen("fd:3x", err, sizeof(err)), -1);
	assert_int_equal(migrate_incoming_listen("fd:-1", err, sizeof(err)), -1);
	assert_int_equal(migrate_incoming_listen("fd:99999999999", err,
						 sizeof(err)), -1);
	assert_non_null(strstr(err, "fd:N"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_live),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_destination_gone),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_bad_uri),
		cmocka_unit_test(test_fd_socket),
		cmocka_unit_test(test_commit_refused),
		cmocka_unit_test(test_fd_file),
		cmocka_unit_test(test_fd_pipe),
		cmocka_unit_test(test_fd_pipe_cancel),
		cmocka_unit_test(test_fd_refused),
		cmocka_unit_test(test_incoming_fd_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
