// SPDX-License-Identifier: MIT
/*
 * Domains: one tern-vmm process each, started in a session of its own so
 * that it outlives ternd, described in STATE/dom/ID/ so that a restarted
 * ternd finds it again (docs/toolstack.md, "Domains and their states").
 *
 * A domain's end is read from two places: its process (a pidfd, which
 * works for processes this ternd did not start) and its control socket's
 * SHUTDOWN event, whose reason tells a guest power-off from a reboot, a
 * completed migration or a kill. No SHUTDOWN event before the process
 * ended means it crashed.
 */
#include "ternd/ternd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"

#define SPAWN_TIMEOUT_MS 10000
#define CRASH_LOOP_MS 10000	/* a restart this soon after a start is not retried */

static const char *const state_names[] = {
	[DOM_RUNNING] = "running", [DOM_PAUSED] = "paused",
	[DOM_INCOMING] = "incoming", [DOM_MIGRATING] = "migrating",
	[DOM_SHUTDOWN] = "shutdown", [DOM_CRASHED] = "crashed",
	[DOM_SAVING] = "saving",
};

const char *dom_state_name(enum dom_state s)
{
	return state_names[s];
}

static int state_from_name(const char *s)
{
	for (unsigned i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (s && !strcmp(s, state_names[i]))
			return (int)i;
	return -1;
}

static bool has_process(const domain_t *d)
{
	return d->pid > 0;
}

/* ---- lookup ---- */

domain_t *domain_find_name(ternd_t *t, const char *name, bool incoming)
{
	for (domain_t *d = t->domains; d; d = d->next)
		if (!strcmp(d->name, name) && (d->state == DOM_INCOMING) == incoming)
			return d;
	return NULL;
}

domain_t *domain_find(ternd_t *t, const char *ref)
{
	char *end;
	unsigned long id;
	domain_t *d;

	d = domain_find_name(t, ref, false);
	if (d)
		return d;
	d = domain_find_name(t, ref, true);
	if (d)
		return d;
	errno = 0;
	id = strtoul(ref, &end, 10);
	if (!*ref || *end || errno)
		return NULL;
	for (d = t->domains; d; d = d->next)
		if (d->id == id)
			return d;
	return NULL;
}

uint64_t domain_memory_used(ternd_t *t)
{
	uint64_t sum = 0;

	for (domain_t *d = t->domains; d; d = d->next)
		if (has_process(d) || d->state == DOM_INCOMING)
			sum += d->cfg.memory_mib;
	return sum;
}

/* ---- files ---- */

static int write_file(const char *path, const char *text, char *err,
		      size_t errlen)
{
	char tmp[512];
	size_t len = strlen(text);
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, errlen, "cannot write %s: %s", tmp,
			       strerror(errno));
	if (write(fd, text, len) != (ssize_t)len || fsync(fd)) {
		err_set(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path)) {
		err_set(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static char *read_file(const char *path, size_t max)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	fclose(f);
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

void domain_save_status(ternd_t *t, domain_t *d)
{
	char path[300], err[256];
	json_t *j;
	char *s;

	if (d->gone)
		return;
	j = json_pack("{s:s,s:I,s:I,s:I,s:s,s:s,s:I}", "name", d->name,
		      "id", (json_int_t)d->id, "pid", (json_int_t)d->pid,
		      "pid-start", (json_int_t)d->pid_start,
		      "state", dom_state_name(d->state),
		      "config-path", d->config_path ? d->config_path : "",
		      "restarts", (json_int_t)d->restarts);
	s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!s)
		return;
	snprintf(path, sizeof(path), "%s/domain.json", d->dir);
	if (write_file(path, s, err, sizeof(err)))
		log_error("%s", err);
	free(s);
}

void domain_set_state(ternd_t *t, domain_t *d, enum dom_state s)
{
	if (d->state == s)
		return;
	log_info("domain %s (id %u): %s -> %s", d->name, d->id,
		 dom_state_name(d->state), dom_state_name(s));
	d->state = s;
	domain_save_status(t, d);
	pthread_cond_broadcast(&t->cond);
}

static void save_next_id(ternd_t *t)
{
	char path[300], text[32], err[256];

	snprintf(path, sizeof(path), "%s/next-id", t->state_dir);
	snprintf(text, sizeof(text), "%u\n", t->next_id);
	if (write_file(path, text, err, sizeof(err)))
		log_error("%s", err);
}

static void remove_dir(const char *dir)
{
	static const char *const files[] = {
		"domain.json", "domain.json.tmp", "config", "config.tmp",
		"ctl.sock", "con.sock", "vmm.log",
	};
	char path[300];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	if (rmdir(dir) && errno != ENOENT)
		log_warn("cannot remove %s: %s", dir, strerror(errno));
}

/* ---- processes ---- */

static int pidfd_open_pid(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/*
 * The fields of /proc/PID/stat from field 3 on (after the command name,
 * which may hold spaces and parentheses) into buf; NULL when pid is gone.
 */
static const char *proc_stat_fields(pid_t pid, char *buf, size_t len)
{
	char path[64], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p + 2 : NULL;
}

/* Field number `field` (3 or more) of /proc/PID/stat, or 0. */
static unsigned long long proc_stat_field(pid_t pid, int field)
{
	char buf[1024];
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));

	for (int i = 3; i < field && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

/* Field 22, starttime: tells a pid from a reused one. */
static unsigned long long proc_start_time(pid_t pid)
{
	return proc_stat_field(pid, 22);
}

/* d now runs as pid: watched through a pidfd, known by its start time. */
static void process_adopt(domain_t *d, pid_t pid)
{
	d->pid = pid;
	d->pid_start = proc_start_time(pid);
	d->pidfd = pidfd_open_pid(pid);
}

/* d's process is gone: nothing to watch or signal any more. */
static void process_forget(domain_t *d)
{
	d->pid = 0;
	if (d->pidfd >= 0)
		close(d->pidfd);
	d->pidfd = -1;
}

double domain_cpu_time(pid_t pid)
{
	long hz = sysconf(_SC_CLK_TCK);

	if (pid <= 0 || hz <= 0)
		return 0;
	/* utime and stime are fields 14 and 15 */
	return (double)(proc_stat_field(pid, 14) + proc_stat_field(pid, 15)) /
	       (double)hz;
}

/* The last non-empty line of tern-vmm's log: why it did not start. */
static void last_log_line(const domain_t *d, char *out, size_t len)
{
	char path[300], *text, *line, *end;

	snprintf(out, len, "tern-vmm exited");
	snprintf(path, sizeof(path), "%s/vmm.log", d->dir);
	text = read_file(path, 1 << 20);
	if (!text)
		return;
	end = text + strlen(text);
	while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	line = strrchr(text, '\n');
	line = line ? line + 1 : text;
	if (!strncmp(line, "tern-vmm", 8)) {
		/* "tern-vmm[NAME]: reason" -> "reason" */
		char *colon = strstr(line, ": ");

		if (colon)
			line = colon + 2;
	}
	if (*line)
		snprintf(out, len, "%s", line);
	free(text);
}

const char *domain_vif_bridge(const domain_t *d, unsigned i)
{
	return d->cfg.vifs[i].bridge[0] ? d->cfg.vifs[i].bridge :
					  TERND_DEFAULT_BRIDGE;
}

/*
 * The vif's MAC: the config's, else one derived from the domain's name and
 * the vif's index under Xen's prefix 00:16:3e, so that the domain keeps it
 * on every host and across restarts.
 */
void domain_vif_mac(const domain_t *d, unsigned i, uint8_t mac[6])
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	if (d->cfg.vifs[i].has_mac) {
		memcpy(mac, d->cfg.vifs[i].mac, 6);
		return;
	}
	for (const char *p = d->name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ i) * 16777619u;
	mac[0] = 0x00;
	mac[1] = 0x16;
	mac[2] = 0x3e;
	mac[3] = (h >> 16) & 0x7f;	/* Xen keeps the top bit clear */
	mac[4] = (h >> 8) & 0xff;
	mac[5] = h & 0xff;
}

typedef struct spawn_opts {
	bool paused;
	const char *restore;
	int incoming_fd;
} spawn_opts_t;

static char *command_line(const domain_t *d)
{
	char *cmd = domcfg_cmdline(&d->cfg), *full;

	if (!cmd)
		return NULL;
	if (strstr(cmd, "console=") || (!*cmd && !d->cfg.kernel))
		return cmd;
	if (asprintf(&full, "console=ttyS0%s%s", *cmd ? " " : "", cmd) < 0)
		full = NULL;
	free(cmd);
	return full;
}

/* Runs in the child between fork and exec: async-signal-safe calls only. */
static void child_exec(const domain_t *d, char *const argv[], int log_fd,
		       int incoming_fd, const char *vmm)
{
	int null_fd = open("/dev/null", O_RDONLY);

	if (incoming_fd >= 0) {
		/* Dies with the thread that started it until it has the VM. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(incoming_fd, 3) < 0)
			_exit(127);
	}
	setsid();
	if (null_fd >= 0)
		dup2(null_fd, 0);
	dup2(log_fd, 1);
	dup2(log_fd, 2);
	syscall(SYS_close_range, incoming_fd >= 0 ? 4 : 3, ~0u, 0);
	signal(SIGPIPE, SIG_DFL);
	execv(vmm, argv);
	dprintf(2, "tern-vmm: cannot run %s: %s\n", vmm, strerror(errno));
	_exit(127);
}

/*
 * Starts d's tern-vmm and waits until its control socket answers. Called
 * with t->lock held (a start takes milliseconds).
 */
static int domain_spawn(ternd_t *t, domain_t *d, const spawn_opts_t *o,
			char *err, size_t errlen)
{
	char *argv[64], mem[32], con[320], ctl[300], cfgp[300], logp[300];
	char disks[DOMCFG_MAX_DISKS][4200], nets[DOMCFG_MAX_VIFS][96], *cmdline;
	int argc = 0, log_fd, status;
	uint64_t t0;
	pid_t pid;

	cmdline = command_line(d);
	if (!cmdline)
		return err_set(err, errlen, "out of memory");
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)d->cfg.memory_mib);
	snprintf(con, sizeof(con), "unix:%s/con.sock", d->dir);
	snprintf(ctl, sizeof(ctl), "%s/ctl.sock", d->dir);
	snprintf(cfgp, sizeof(cfgp), "%s/config", d->dir);
	snprintf(logp, sizeof(logp), "%s/vmm.log", d->dir);
	argv[argc++] = "tern-vmm";
	argv[argc++] = "--name";
	argv[argc++] = d->name;
	argv[argc++] = "--memory";
	argv[argc++] = mem;
	if (d->cfg.kernel) {
		argv[argc++] = "--kernel";
		argv[argc++] = d->cfg.kernel;
	}
	if (d->cfg.ramdisk) {
		argv[argc++] = "--initrd";
		argv[argc++] = d->cfg.ramdisk;
	}
	if (*cmdline) {
		argv[argc++] = "--append";
		argv[argc++] = cmdline;
	}
	for (unsigned i = 0; i < d->cfg.n_disks; i++) {
		snprintf(disks[i], sizeof(disks[i]), "%s%s", d->cfg.disks[i].path,
			 d->cfg.disks[i].readonly ? ",ro" : "");
		argv[argc++] = "--disk";
		argv[argc++] = disks[i];
	}
	for (unsigned i = 0; i < d->cfg.n_vifs; i++) {
		uint8_t mac[6];

		domain_vif_mac(d, i, mac);
		snprintf(nets[i], sizeof(nets[i]), "bridge=%s,mac=%02x:%02x:%02x:"
			 "%02x:%02x:%02x,ifname=vif%u.%u", domain_vif_bridge(d, i),
			 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], d->id, i);
		argv[argc++] = "--net";
		argv[argc++] = nets[i];
	}
	argv[argc++] = "--console";
	argv[argc++] = con;
	argv[argc++] = "--control";
	argv[argc++] = ctl;
	argv[argc++] = "--domain-config";
	argv[argc++] = cfgp;
	if (d->cfg.on_reboot != DOMCFG_RESTART)
		argv[argc++] = "--no-reboot";
	if (o->paused)
		argv[argc++] = "--paused";
	if (o->restore) {
		argv[argc++] = "--restore";
		argv[argc++] = (char *)o->restore;
	}
	if (o->incoming_fd >= 0) {
		argv[argc++] = "--incoming";
		argv[argc++] = "fd:3";
	}
	argv[argc] = NULL;

	unlink(ctl);
	log_fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		free(cmdline);
		return err_set(err, errlen, "cannot open %s: %s", logp,
			       strerror(errno));
	}
	pid = fork();
	if (pid == 0)
		child_exec(d, argv, log_fd, o->incoming_fd, t->vmm_path);
	close(log_fd);
	free(cmdline);
	if (pid < 0)
		return err_set(err, errlen, "cannot start tern-vmm: %s",
			       strerror(errno));
	process_adopt(d, pid);
	d->child = true;
	d->end_reason[0] = '\0';
	d->started_ms = ternd_now_ms();

	/* Up when its control socket answers; gone if it exits first. */
	t0 = ternd_now_ms();
	for (;;) {
		char cerr[256];

		if (waitpid(pid, &status, WNOHANG) == pid) {
			process_forget(d);
			last_log_line(d, err, errlen);
			return -1;
		}
		if (!access(ctl, F_OK)) {
			d->ev = qmp_connect(ctl, 5000, cerr, sizeof(cerr));
			if (d->ev)
				break;
		}
		if (ternd_now_ms() - t0 > SPAWN_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			process_forget(d);
			return err_set(err, errlen, "tern-vmm did not start within "
				       "%d s", SPAWN_TIMEOUT_MS / 1000);
		}
		usleep(5000);
	}
	log_info("domain %s (id %u): tern-vmm pid %d", d->name, d->id, (int)pid);
	domain_save_status(t, d);
	return 0;
}

/* ---- life cycle ---- */

static void domain_free(domain_t *d)
{
	if (d->ev)
		qmp_close(d->ev);
	if (d->pidfd >= 0)
		close(d->pidfd);
	domcfg_free(&d->cfg);
	free(d->config);
	free(d->config_path);
	free(d);
}

void domain_put(domain_t *d)
{
	if (--d->refs == 0 && d->gone)
		domain_free(d);
}

void domain_remove(ternd_t *t, domain_t *d)
{
	for (domain_t **p = &t->domains; *p; p = &(*p)->next) {
		if (*p == d) {
			*p = d->next;
			break;
		}
	}
	log_info("domain %s (id %u) removed", d->name, d->id);
	remove_dir(d->dir);
	d->gone = true;
	if (d->ev) {
		qmp_close(d->ev);
		d->ev = NULL;
	}
	if (d->pidfd >= 0) {
		close(d->pidfd);
		d->pidfd = -1;
	}
	pthread_cond_broadcast(&t->cond);
	if (!d->refs)
		domain_free(d);
}

static void reap(domain_t *d)
{
	int status;

	if (d->child && d->pid > 0)
		waitpid(d->pid, &status, 0);
}

void domain_destroy(ternd_t *t, domain_t *d)
{
	d->destroying = true;
	if (has_process(d)) {
		if (d->pidfd >= 0)
			syscall(SYS_pidfd_send_signal, d->pidfd, SIGKILL, NULL, 0);
		else
			kill(d->pid, SIGKILL);
		if (d->child) {
			reap(d);
		} else if (d->pidfd >= 0) {
			struct pollfd p = { .fd = d->pidfd, .events = POLLIN };

			poll(&p, 1, 5000);
		}
		d->pid = 0;
	}
	domain_remove(t, d);
}

static bool valid_name_for_dir(const char *name)
{
	return *name && strlen(name) <= DOMCFG_NAME_MAX;
}

static void warn_config(void *opaque, const char *msg)
{
	log_warn("%s", msg);
}

static domain_t *domain_new(ternd_t *t, const char *config, const char *path,
			    char *err, size_t errlen)
{
	domain_t *d = calloc(1, sizeof(*d));

	if (!d) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	d->pidfd = -1;
	if (domcfg_parse(&d->cfg, path, config, warn_config, NULL, err, errlen)) {
		free(d);
		return NULL;
	}
	d->config = strdup(config);
	d->config_path = strdup(path);
	if (!d->config || !d->config_path || !valid_name_for_dir(d->cfg.name)) {
		err_set(err, errlen, "out of memory");
		domain_free(d);
		return NULL;
	}
	snprintf(d->name, sizeof(d->name), "%s", d->cfg.name);
	return d;
}

domain_t *domain_create(ternd_t *t, const char *config, const char *path,
			bool paused, const char *restore, int incoming_fd,
			bool allow_same_name, char *err, size_t errlen)
{
	spawn_opts_t o = { .paused = paused, .restore = restore,
			   .incoming_fd = incoming_fd };
	uint64_t used, free_mib;
	char cfgp[300];
	domain_t *d, *other;
	struct stat st;

	d = domain_new(t, config, path, err, errlen);
	if (!d)
		return NULL;
	other = domain_find_name(t, d->name, false);
	if (!other)
		other = domain_find_name(t, d->name, true);
	if (other && !(allow_same_name && other->state == DOM_MIGRATING)) {
		err_set(err, errlen, "domain '%s' already exists (id %u)",
			d->name, other->id);
		goto fail;
	}
	used = domain_memory_used(t);
	free_mib = t->memory_total_mib > used ? t->memory_total_mib - used : 0;
	if (d->cfg.memory_mib > free_mib) {
		err_set(err, errlen, "not enough free memory on %s: domain '%s' "
			"needs %llu MiB, %llu MiB free", t->host, d->name,
			(unsigned long long)d->cfg.memory_mib,
			(unsigned long long)free_mib);
		goto fail;
	}
	for (unsigned i = 0; i < d->cfg.n_disks; i++) {
		if (stat(d->cfg.disks[i].path, &st)) {
			err_set(err, errlen, "disk %s: %s", d->cfg.disks[i].path,
				strerror(errno));
			goto fail;
		}
	}
	for (unsigned i = 0; i < d->cfg.n_vifs; i++) {
		char sys[64];

		snprintf(sys, sizeof(sys), "/sys/class/net/%s/bridge",
			 domain_vif_bridge(d, i));
		if (access(sys, F_OK)) {
			err_set(err, errlen, "bridge %s does not exist on %s "
				"(vif %u of domain '%s')", domain_vif_bridge(d, i),
				t->host, i, d->name);
			goto fail;
		}
	}
	if (restore && access(restore, R_OK)) {
		err_set(err, errlen, "cannot read %s: %s", restore, strerror(errno));
		goto fail;
	}
	d->id = t->next_id++;
	save_next_id(t);
	snprintf(d->dir, sizeof(d->dir), "%s/dom/%u", t->state_dir, d->id);
	if (mkdir(d->dir, 0700) && errno != EEXIST) {
		err_set(err, errlen, "cannot create %s: %s", d->dir, strerror(errno));
		goto fail;
	}
	snprintf(cfgp, sizeof(cfgp), "%s/config", d->dir);
	if (write_file(cfgp, d->config, err, errlen))
		goto fail_dir;
	d->state = incoming_fd >= 0 ? DOM_INCOMING :
		   paused ? DOM_PAUSED : DOM_RUNNING;
	if (domain_spawn(t, d, &o, err, errlen))
		goto fail_dir;
	d->next = t->domains;
	t->domains = d;
	log_info("domain %s (id %u) %s", d->name, d->id,
		 incoming_fd >= 0 ? "prepared for an incoming migration" :
		 restore ? "restored" : "created");
	return d;
fail_dir:
	remove_dir(d->dir);
fail:
	domain_free(d);
	return NULL;
}

json_t *domain_call(const char *dir, const char *cmd, json_t *args,
		    unsigned timeout_ms, char *err, size_t errlen)
{
	char path[300];
	qmp_client_t *q;
	json_t *r;

	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	q = qmp_connect(path, timeout_ms, err, errlen);
	if (!q) {
		json_decref(args);
		return NULL;
	}
	r = qmp_call(q, cmd, args, err, errlen);
	qmp_close(q);
	return r;
}

/* ---- supervision ---- */

static void handle_event(ternd_t *t, domain_t *d, json_t *ev)
{
	const char *name = json_string_value(json_object_get(ev, "event"));
	json_t *data = json_object_get(ev, "data");

	if (!name)
		return;
	if (!strcmp(name, "SHUTDOWN")) {
		const char *r = json_string_value(json_object_get(data, "reason"));

		snprintf(d->end_reason, sizeof(d->end_reason), "%s", r ? r : "");
	} else if (!strcmp(name, "RESUME")) {
		if (d->state == DOM_PAUSED)
			domain_set_state(t, d, DOM_RUNNING);
		if (d->state == DOM_INCOMING) {
			d->incoming_done = true;
			domain_set_state(t, d, DOM_RUNNING);
		}
	} else if (!strcmp(name, "STOP")) {
		if (d->state == DOM_RUNNING)
			domain_set_state(t, d, DOM_PAUSED);
	} else if (!strcmp(name, "MIGRATION")) {
		const char *s = json_string_value(json_object_get(data, "status"));

		if (d->state == DOM_INCOMING && s && !strcmp(s, "completed")) {
			d->incoming_done = true;
			domain_set_state(t, d, DOM_RUNNING);
		}
	} else if (!strcmp(name, "RESET")) {
		log_info("domain %s (id %u): guest reset", d->name, d->id);
	}
}

static void drain_events(ternd_t *t, domain_t *d)
{
	json_t *ev;
	int rc;

	if (!d->ev)
		return;
	rc = qmp_pump(d->ev);
	while ((ev = qmp_next_event(d->ev))) {
		handle_event(t, d, ev);
		json_decref(ev);
	}
	if (rc) {
		qmp_close(d->ev);
		d->ev = NULL;
	}
}

static void restart(ternd_t *t, domain_t *d, const char *why)
{
	spawn_opts_t o = { .incoming_fd = -1 };
	char err[512];

	if (ternd_now_ms() - d->started_ms < CRASH_LOOP_MS &&
	    !strcmp(why, "crashed")) {
		log_error("domain %s (id %u) crashed within %d s of its start; "
			  "not restarting it", d->name, d->id, CRASH_LOOP_MS / 1000);
		domain_set_state(t, d, DOM_CRASHED);
		return;
	}
	log_info("domain %s (id %u) %s; restarting it", d->name, d->id, why);
	d->restarts++;
	d->state = DOM_RUNNING;
	if (domain_spawn(t, d, &o, err, sizeof(err))) {
		log_error("domain %s (id %u): restart failed: %s", d->name, d->id,
			  err);
		domain_set_state(t, d, DOM_CRASHED);
	}
}

static void apply(ternd_t *t, domain_t *d, enum domcfg_action a,
		  enum dom_state kept, const char *why)
{
	switch (a) {
	case DOMCFG_DESTROY:
		log_info("domain %s (id %u) %s", d->name, d->id, why);
		domain_remove(t, d);
		break;
	case DOMCFG_RESTART:
		restart(t, d, why);
		break;
	case DOMCFG_PRESERVE:
		log_info("domain %s (id %u) %s; kept as %s", d->name, d->id, why,
			 dom_state_name(kept));
		domain_set_state(t, d, kept);
		break;
	}
}

/* d's tern-vmm is gone: decide what that means (docs/toolstack.md). */
static void domain_ended(ternd_t *t, domain_t *d)
{
	int status = 0;
	bool exited_ok = true, have_status = false;

	drain_events(t, d);
	if (d->child && waitpid(d->pid, &status, WNOHANG) == d->pid) {
		have_status = true;
		exited_ok = WIFEXITED(status) &&
			    (WEXITSTATUS(status) == 0 || *d->end_reason);
	}
	if (d->ev) {
		qmp_close(d->ev);
		d->ev = NULL;
	}
	process_forget(d);
	if (have_status && !exited_ok)
		log_warn("domain %s (id %u): tern-vmm %s %d", d->name, d->id,
			 WIFSIGNALED(status) ? "killed by signal" : "exited with",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	if (d->destroying) {
		domain_remove(t, d);
	} else if (d->state == DOM_INCOMING && !d->incoming_done) {
		log_warn("domain %s (id %u): incoming migration failed; "
			 "discarded", d->name, d->id);
		domain_remove(t, d);
	} else if (!strcmp(d->end_reason, "migrated")) {
		log_info("domain %s (id %u) %s", d->name, d->id,
			 d->state == DOM_SAVING ? "saved" : "migrated away");
		domain_remove(t, d);
	} else if (!strcmp(d->end_reason, "guest-shutdown") && exited_ok) {
		apply(t, d, d->cfg.on_poweroff, DOM_SHUTDOWN, "powered off");
	} else if (!strcmp(d->end_reason, "guest-reset") && exited_ok) {
		apply(t, d, d->cfg.on_reboot, DOM_SHUTDOWN, "rebooted");
	} else if (*d->end_reason && exited_ok && strcmp(d->end_reason, "host-signal")) {
		/* host-qmp-quit and the like: someone stopped it on purpose */
		log_info("domain %s (id %u) stopped (%s)", d->name, d->id,
			 d->end_reason);
		domain_remove(t, d);
	} else {
		apply(t, d, d->cfg.on_crash, DOM_CRASHED, "crashed");
	}
}

int domain_pollfds(ternd_t *t, struct pollfd *pfds, int max)
{
	int n = 0;

	for (domain_t *d = t->domains; d && n + 2 <= max; d = d->next) {
		if (d->pidfd >= 0)
			pfds[n++] = (struct pollfd){ .fd = d->pidfd, .events = POLLIN };
		if (d->ev)
			pfds[n++] = (struct pollfd){ .fd = qmp_fd(d->ev),
						     .events = POLLIN };
	}
	return n;
}

void domain_handle(ternd_t *t, const struct pollfd *pfds, int n)
{
	for (int i = 0; i < n; i++) {
		domain_t *d;

		if (!pfds[i].revents)
			continue;
		for (d = t->domains; d; d = d->next) {
			if (d->ev && qmp_fd(d->ev) == pfds[i].fd) {
				drain_events(t, d);
				break;
			}
			if (d->pidfd == pfds[i].fd) {
				domain_ended(t, d);
				break;
			}
		}
	}
}

/* ---- adoption after a restart of ternd ---- */

static void adopt_one(ternd_t *t, const char *dir_name)
{
	char dir[300], path[320], err[512];
	char *status_text, *config;
	json_t *j = NULL, *st;
	const char *state_s, *cfg_path;
	unsigned long id;
	domain_t *d;
	int state;
	pid_t pid;

	id = strtoul(dir_name, NULL, 10);
	snprintf(dir, sizeof(dir), "%s/dom/%s", t->state_dir, dir_name);
	snprintf(path, sizeof(path), "%s/domain.json", dir);
	status_text = read_file(path, 1 << 16);
	snprintf(path, sizeof(path), "%s/config", dir);
	config = read_file(path, 1 << 20);
	if (status_text)
		j = json_loads(status_text, 0, NULL);
	free(status_text);
	if (!j || !config || !json_is_object(j)) {
		log_warn("%s: unreadable domain state; removed", dir);
		remove_dir(dir);
		goto out;
	}
	cfg_path = json_string_value(json_object_get(j, "config-path"));
	d = domain_new(t, config, cfg_path && *cfg_path ? cfg_path : path, err,
		       sizeof(err));
	if (!d) {
		log_warn("%s: %s; removed", dir, err);
		remove_dir(dir);
		goto out;
	}
	d->id = (unsigned)id;
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	state_s = json_string_value(json_object_get(j, "state"));
	state = state_from_name(state_s);
	pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	d->restarts = (uint64_t)json_integer_value(json_object_get(j, "restarts"));
	if (id >= t->next_id)
		t->next_id = (unsigned)id + 1;
	if (pid > 0 && proc_start_time(pid) ==
	    (unsigned long long)json_integer_value(json_object_get(j, "pid-start")) &&
	    state != DOM_INCOMING) {
		process_adopt(d, pid);
		snprintf(path, sizeof(path), "%s/ctl.sock", dir);
		d->ev = qmp_connect(path, 5000, err, sizeof(err));
		st = d->ev ? qmp_call(d->ev, "query-status", NULL, err,
				      sizeof(err)) : NULL;
		d->state = DOM_RUNNING;
		if (st && !json_is_true(json_object_get(st, "running")))
			d->state = DOM_PAUSED;
		json_decref(st);
		if (!d->ev)
			log_warn("domain %s (id %u): %s", d->name, d->id, err);
		d->started_ms = ternd_now_ms();
		d->next = t->domains;
		t->domains = d;
		log_info("domain %s (id %u) found running (tern-vmm pid %d)",
			 d->name, d->id, (int)pid);
		domain_save_status(t, d);
	} else if (state == DOM_SHUTDOWN || state == DOM_CRASHED ||
		   (state != DOM_INCOMING && d->cfg.on_crash == DOMCFG_PRESERVE)) {
		d->state = state == DOM_SHUTDOWN ? DOM_SHUTDOWN : DOM_CRASHED;
		d->next = t->domains;
		t->domains = d;
		log_info("domain %s (id %u) found %s", d->name, d->id,
			 dom_state_name(d->state));
		domain_save_status(t, d);
	} else {
		log_warn("domain %s (id %u) ended while ternd was down; removed",
			 d->name, d->id);
		remove_dir(dir);
		domain_free(d);
	}
out:
	json_decref(j);
	free(config);
}

void domain_adopt_all(ternd_t *t)
{
	char path[300], *text;
	struct dirent *e;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/next-id", t->state_dir);
	text = read_file(path, 64);
	t->next_id = 1;
	if (text) {
		unsigned long v = strtoul(text, NULL, 10);

		if (v > 0 && v < 1000000000)
			t->next_id = (unsigned)v;
		free(text);
	}
	snprintf(path, sizeof(path), "%s/dom", t->state_dir);
	dir = opendir(path);
	if (!dir)
		return;
	while ((e = readdir(dir))) {
		const char *p = e->d_name;

		if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 9)
			continue;
		adopt_one(t, p);
	}
	closedir(dir);
}
