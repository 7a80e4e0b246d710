// SPDX-License-Identifier: MIT
/*
 * ternd: the host daemon (docs/toolstack.md). Parses options and the host
 * config, finds the domains a previous ternd left running, and runs the
 * poll loop.
 */
#include "ternd/ternd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"

#define DEFAULT_SOCKET "/run/tern/ternd.sock"
#define DEFAULT_CONFIG "/etc/tern/xend-config.sxp"
#define DEFAULT_STATE "/var/lib/tern"
#define MAX_POLL 256
/* STATE/dom/ID/con.sock must fit a UNIX socket address. */
#define STATE_DIR_MAX 80

typedef struct opts {
	const char *socket;
	const char *config;
	const char *state_dir;
	const char *log;
	bool daemon;
	bool config_given;
} opts_t;

uint64_t ternd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void ternd_wake(ternd_t *t)
{
	uint64_t one = 1;

	if (write(t->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is full: the loop is awake anyway */
	}
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: ternd [OPTION]...\n"
"The tern host daemon: runs this host's domains (one tern-vmm each) and,\n"
"when the host config enables it, accepts migrations from other hosts.\n"
"\n"
"  -s, --socket PATH      control socket (default " DEFAULT_SOCKET ")\n"
"  -c, --config FILE      host config in xend-config.sxp format\n"
"                         (default " DEFAULT_CONFIG "; a missing\n"
"                         default file means the defaults)\n"
"  -S, --state-dir DIR    domains' state (default " DEFAULT_STATE ")\n"
"  -l, --log FILE         log to FILE instead of stderr\n"
"  -d, --daemon           detach and run in the background (logs to\n"
"                         DIR/ternd.log unless --log is given)\n"
"  -h, --help             show this help and exit\n"
"  -V, --version          show the version and exit\n"
"\n"
"Domains keep running when ternd stops; a new ternd on the same state\n"
"directory finds them again. The tern command talks to ternd; see\n"
"docs/toolstack.md.\n");
}

static int parse_args(int argc, char **argv, opts_t *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "log", required_argument, NULL, 'l' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->socket = DEFAULT_SOCKET;
	o->config = DEFAULT_CONFIG;
	o->state_dir = DEFAULT_STATE;
	while ((c = getopt_long(argc, argv, "s:c:S:l:dfhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket = optarg;
			break;
		case 'c':
			o->config = optarg;
			o->config_given = true;
			break;
		case 'S':
			o->state_dir = optarg;
			break;
		case 'l':
			o->log = optarg;
			break;
		case 'd':
			o->daemon = true;
			break;
		case 'f':
			o->daemon = false;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("ternd %s\n", TERN_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try 'ternd --help' for more information.\n");
			return -1;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (strlen(path) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, mode) && errno != EEXIST ? -1 : 0;
}

static void warn_config(void *opaque, const char *msg)
{
	log_warn("%s", msg);
}

static uint64_t host_memory_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kb = 0;
	char line[256];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb / 1024;
}

/* tern-vmm: the host config's, else next to this binary, else on PATH. */
static int find_vmm(ternd_t *t, char *err, size_t errlen)
{
	char self[PATH_MAX];
	ssize_t n;
	const char *path;

	if (*t->cfg.vmm_path) {
		snprintf(t->vmm_path, sizeof(t->vmm_path), "%s", t->cfg.vmm_path);
		if (access(t->vmm_path, X_OK))
			return err_set(err, errlen, "tern-vmm %s: %s", t->vmm_path,
				       strerror(errno));
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		snprintf(t->vmm_path, sizeof(t->vmm_path), "%s/tern-vmm",
			 dirname(self));
		if (!access(t->vmm_path, X_OK))
			return 0;
	}
	path = getenv("PATH");
	while (path && *path) {
		const char *end = strchr(path, ':');
		size_t len = end ? (size_t)(end - path) : strlen(path);

		snprintf(t->vmm_path, sizeof(t->vmm_path), "%.*s/tern-vmm",
			 (int)len, path);
		if (len && !access(t->vmm_path, X_OK))
			return 0;
		path = end ? end + 1 : NULL;
	}
	return err_set(err, errlen, "cannot find tern-vmm (next to ternd or on "
		       "PATH; or set (tern-vmm PATH) in the host config)");
}

/* Writes our pid into the lock file (again after --daemon forked). */
static void lock_write_pid(const ternd_t *t)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(t->lock_fd, 0) ||
	    pwrite(t->lock_fd, pid, strlen(pid), 0) < 0) {
		/* the lock is what matters */
	}
}

/* One ternd per state directory. */
static int lock_state_dir(ternd_t *t, char *err, size_t errlen)
{
	char path[PATH_MAX], pid[32];
	int fd;

	snprintf(path, sizeof(path), "%s/ternd.lock", t->state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, errlen, "cannot open %s: %s", path,
			       strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		return err_set(err, errlen, "state directory %s is in use by "
			       "another ternd (pid %s)", t->state_dir,
			       *pid ? pid : "?");
	}
	/* The fd stays open: the lock lives as long as ternd. */
	t->lock_fd = fd;
	lock_write_pid(t);
	return 0;
}

static int setup(ternd_t *t, const opts_t *o, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX];
	uint8_t rnd[8];

	hostcfg_init(&t->cfg);
	if (access(o->config, F_OK) == 0 || o->config_given) {
		if (hostcfg_load(&t->cfg, o->config, warn_config, NULL, err, errlen))
			return -1;
	}
	if (!realpath(o->state_dir, dir)) {
		if (mkdir_p(o->state_dir, 0700) || !realpath(o->state_dir, dir))
			return err_set(err, errlen, "state directory %s: %s",
				       o->state_dir, strerror(errno));
	}
	if (strlen(dir) > STATE_DIR_MAX)
		return err_set(err, errlen, "state directory path %s is too long "
			       "(at most %d bytes: domains' UNIX sockets live in "
			       "it)", dir, STATE_DIR_MAX);
	snprintf(t->state_dir, sizeof(t->state_dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/dom", dir);
	if (mkdir_p(path, 0700))
		return err_set(err, errlen, "cannot create %s: %s", path,
			       strerror(errno));
	if (lock_state_dir(t, err, errlen) || find_vmm(t, err, errlen))
		return -1;
	snprintf(t->sock_path, sizeof(t->sock_path), "%s", o->socket);
	snprintf(path, sizeof(path), "%s", o->socket);
	if (mkdir_p(dirname(path), 0755))
		return err_set(err, errlen, "cannot create the directory of %s: %s",
			       o->socket, strerror(errno));
	if (gethostname(t->host, sizeof(t->host) - 1))
		snprintf(t->host, sizeof(t->host), "localhost");
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return err_set(err, errlen, "getrandom: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(t->instance + 2 * i, 3, "%02x", rnd[i]);
	t->memory_total_mib = t->cfg.memory_mib ? t->cfg.memory_mib :
			      host_memory_mib();
	return 0;
}

static int setup_fds(ternd_t *t, char *err, size_t errlen)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return err_set(err, errlen, "sigprocmask: %s", strerror(errno));
	t->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->sig_fd < 0 || t->wake_fd < 0)
		return err_set(err, errlen, "signalfd/eventfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int daemonize(const opts_t *o, const ternd_t *t, char *err,
		     size_t errlen)
{
	pid_t pid = fork();

	if (pid < 0)
		return err_set(err, errlen, "fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	setsid();
	pid = fork();
	if (pid < 0)
		return err_set(err, errlen, "fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	if (chdir("/")) {
		/* not fatal */
	}
	return 0;
}

static int open_log(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(err, errlen, "cannot open log %s: %s", path,
			       strerror(errno));
	dup2(fd, STDERR_FILENO);
	dup2(fd, STDOUT_FILENO);
	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		close(null_fd);
	}
	close(fd);
	return 0;
}

static void handle_signals(ternd_t *t)
{
	struct signalfd_siginfo si;

	while (read(t->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		log_info("signal %u: stopping (domains keep running)", si.ssi_signo);
		t->quit = true;
	}
}

static void loop(ternd_t *t)
{
	struct pollfd pfds[MAX_POLL];

	while (!t->quit) {
		int n = 0, nsrv, ndom, base;
		uint64_t v;

		pthread_mutex_lock(&t->lock);
		pfds[n++] = (struct pollfd){ .fd = t->sig_fd, .events = POLLIN };
		pfds[n++] = (struct pollfd){ .fd = t->wake_fd, .events = POLLIN };
		if (t->reloc_fd >= 0)
			pfds[n++] = (struct pollfd){ .fd = t->reloc_fd,
						     .events = POLLIN };
		base = n;
		nsrv = qmp_server_pollfds(&t->srv, pfds + n, MAX_POLL - n);
		n += nsrv;
		ndom = domain_pollfds(t, pfds + n, MAX_POLL - n);
		n += ndom;
		pthread_mutex_unlock(&t->lock);

		if (poll(pfds, (nfds_t)n, 1000) < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			break;
		}
		pthread_mutex_lock(&t->lock);
		if (pfds[0].revents)
			handle_signals(t);
		if (pfds[1].revents && read(t->wake_fd, &v, sizeof(v)) < 0) {
			/* nothing to read */
		}
		if (t->reloc_fd >= 0 && pfds[2].revents)
			reloc_accept(t);
		/* Domains first: a request may remove one. */
		domain_handle(t, pfds + base + nsrv, ndom);
		qmp_server_handle(&t->srv, pfds + base, nsrv);
		api_finish_jobs(t);
		reloc_expire(t);
		pthread_mutex_unlock(&t->lock);
	}
}

int main(int argc, char **argv)
{
	static ternd_t ternd;
	ternd_t *t = &ternd;
	char err[1024], logpath[PATH_MAX + 16];
	opts_t o = { 0 };

	log_set_prog("ternd");
	if (parse_args(argc, argv, &o))
		return 2;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->reloc_fd = -1;
	if (setup(t, &o, err, sizeof(err))) {
		log_error("%s", err);
		return 1;
	}
	if (o.daemon && !o.log) {
		snprintf(logpath, sizeof(logpath), "%s/ternd.log", t->state_dir);
		o.log = logpath;
	}
	if (o.log && open_log(o.log, err, sizeof(err))) {
		log_error("%s", err);
		return 1;
	}
	log_set_timestamps(1);
	if (setup_fds(t, err, sizeof(err)) || reloc_listen(t, err, sizeof(err))) {
		log_error("%s", err);
		return 1;
	}
	qmp_server_init(&t->srv, api_cmds, api_ncmds, qmp_version_json("ternd"), t);
	if (qmp_server_listen(&t->srv, t->sock_path, err, sizeof(err))) {
		log_error("%s", err);
		return 1;
	}
	if (o.daemon && daemonize(&o, t, err, sizeof(err))) {
		log_error("%s", err);
		return 1;
	}
	if (o.daemon)
		lock_write_pid(t);
	pthread_mutex_lock(&t->lock);
	domain_adopt_all(t);
	pthread_mutex_unlock(&t->lock);
	log_info("ternd %s on %s: control socket %s, state %s, %llu MiB for "
		 "domains, relocation %s", TERN_VERSION, t->host, t->sock_path,
		 t->state_dir, (unsigned long long)t->memory_total_mib,
		 t->cfg.relocation_server ? "on" : "off");
	loop(t);
	pthread_mutex_lock(&t->lock);
	qmp_server_close(&t->srv);
	if (t->reloc_fd >= 0)
		close(t->reloc_fd);
	log_info("ternd stopped");
	/* Threads still migrating end with the process; see docs/toolstack.md. */
	return 0;
}
