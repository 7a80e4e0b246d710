// SPDX-License-Identifier: MIT
/*
 * tern-vmm: runs one RISC-V virtual machine in the foreground.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "devices/uart.h"
#include "devices/virtio_blk.h"
#include "machine/loader.h"
#include "machine/machine.h"
#include "machine/platform.h"
#include "util/log.h"
#include "vmm/console.h"

#define DEFAULT_MEMORY_MIB 256
#define MIN_MEMORY_MIB 16
#define MAX_DISKS 4
#define RUN_BUDGET 20000	/* instructions between timer/I-O checks */
#define POLL_EVERY 16		/* run slices between non-blocking polls */
#define MAX_SLEEP_NS 50000000ull

typedef struct disk_opt {
	const char *path;
	bool readonly;
} disk_opt_t;

typedef struct vmm_opts {
	uint64_t memory_mib;
	const char *kernel;
	const char *initrd;
	const char *append;
	const char *console;
	disk_opt_t disks[MAX_DISKS];
	unsigned ndisks;
	char default_kernel[PATH_MAX];
	char default_initrd[PATH_MAX];
} vmm_opts_t;

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: tern-vmm [OPTION]...\n"
"Run one RISC-V (RV64GC) virtual machine in the foreground.\n"
"\n"
"  -m, --memory MIB       guest memory in MiB (default %d)\n"
"  -k, --kernel FILE      RISC-V Linux Image to boot (default: the default guest)\n"
"  -i, --initrd FILE      initial ramdisk\n"
"  -a, --append ARGS      kernel command line (default \"console=ttyS0\")\n"
"  -d, --disk FILE[,ro]   raw disk image as a virtio-blk device (repeatable, up to %d)\n"
"  -c, --console SPEC     stdio (default) or unix:PATH\n"
"  -h, --help             show this help and exit\n"
"  -V, --version          show the version and exit\n"
"\n"
"Without --kernel, tern-vmm boots the default guest from\n"
"${TERN_GUEST_DIR:-$HOME/.cache/tern/guest}/{Image,initrd.img}\n"
"(built by guest/build-guest.sh).\n"
"\n"
"On a terminal the console is raw: type Ctrl-A x to quit, Ctrl-A Ctrl-A to send\n"
"Ctrl-A. A guest poweroff exits with status 0.\n",
		DEFAULT_MEMORY_MIB, MAX_DISKS);
}

static int parse_memory(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	struct sysinfo si;
	uint64_t host_mib;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0) {
		log_error("invalid memory size '%s' (MiB expected)", s);
		return -1;
	}
	if (v < MIN_MEMORY_MIB) {
		log_error("memory size %llu MiB is too small (at least %d MiB)", v,
			  MIN_MEMORY_MIB);
		return -1;
	}
	if (sysinfo(&si) == 0) {
		host_mib = (uint64_t)si.totalram * si.mem_unit >> 20;
		if (v > host_mib) {
			log_error("memory size %llu MiB is more than this host has (%llu MiB)",
				  v, (unsigned long long)host_mib);
			return -1;
		}
	}
	*out = v;
	return 0;
}

static int parse_disk(vmm_opts_t *o, const char *arg)
{
	char *copy, *comma;
	disk_opt_t *d;

	if (o->ndisks == MAX_DISKS) {
		log_error("too many disks (at most %d)", MAX_DISKS);
		return -1;
	}
	d = &o->disks[o->ndisks];
	copy = strdup(arg);
	if (!copy)
		return -1;
	comma = strchr(copy, ',');
	if (comma) {
		*comma++ = '\0';
		if (!strcmp(comma, "ro") || !strcmp(comma, "readonly")) {
			d->readonly = true;
		} else if (strcmp(comma, "rw")) {
			log_error("unknown disk option '%s' in '%s' (use ro or rw)",
				  comma, arg);
			free(copy);
			return -1;
		}
	}
	if (!*copy) {
		log_error("--disk needs a file name");
		free(copy);
		return -1;
	}
	d->path = copy;
	o->ndisks++;
	return 0;
}

static int parse_args(int argc, char **argv, vmm_opts_t *o)
{
	static const struct option longopts[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "disk", required_argument, NULL, 'd' },
		{ "console", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int opt;

	memset(o, 0, sizeof(*o));
	o->memory_mib = DEFAULT_MEMORY_MIB;
	o->console = "stdio";
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":m:k:i:a:d:c:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (parse_memory(optarg, &o->memory_mib))
				return -1;
			break;
		case 'k':
			o->kernel = optarg;
			break;
		case 'i':
			o->initrd = optarg;
			break;
		case 'a':
			o->append = optarg;
			break;
		case 'd':
			if (parse_disk(o, optarg))
				return -1;
			break;
		case 'c':
			o->console = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("tern-vmm %s\n", TERN_VERSION);
			exit(0);
		case ':':
			log_error("option '%s' needs an argument", argv[optind - 1]);
			return -1;
		default:
			log_error("unknown option '%s' (see --help)", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s' (see --help)", argv[optind]);
		return -1;
	}
	if (!o->kernel) {
		const char *dir = getenv("TERN_GUEST_DIR");
		const char *home = getenv("HOME");
		char base[PATH_MAX - 16];
		int n;

		if (dir && *dir)
			n = snprintf(base, sizeof(base), "%s", dir);
		else
			n = snprintf(base, sizeof(base), "%s/.cache/tern/guest",
				     home ? home : "");
		if (n < 0 || (size_t)n >= sizeof(base)) {
			log_error("default guest directory name too long");
			return -1;
		}
		snprintf(o->default_kernel, sizeof(o->default_kernel), "%s/Image", base);
		snprintf(o->default_initrd, sizeof(o->default_initrd), "%s/initrd.img", base);
		if (access(o->default_kernel, R_OK) || access(o->default_initrd, R_OK)) {
			log_error("no --kernel given and the default guest is not built in %s (run guest/build-guest.sh)",
				  base);
			return -1;
		}
		o->kernel = o->default_kernel;
		if (!o->initrd)
			o->initrd = o->default_initrd;
	}
	if (!o->append)
		o->append = "console=ttyS0";
	return 0;
}

/* Creates the board: interrupt controllers, timer, console, disks. */
static int build_machine(machine_t *m, const vmm_opts_t *o, console_t *con)
{
	char err[256];
	boot_config_t bc = { o->kernel, o->initrd, o->append };

	if (machine_init(m, o->memory_mib << 20, 1, err, sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	if (platform_create(m, console_tx, con, err, sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	for (unsigned i = 0; i < o->ndisks; i++) {
		if (!virtio_blk_new(m, o->disks[i].path, o->disks[i].readonly, err,
				    sizeof(err))) {
			log_error("%s", err);
			return -1;
		}
	}
	if (loader_boot(m, &bc, err, sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

/* Moves typed input into the UART as its FIFO has room. */
static void feed_console(machine_t *m, console_t *con)
{
	const uint8_t *data;
	size_t n = console_pending(con, &data);

	if (n)
		console_consume(con, uart_rx_push(m->uart, data, n));
}

/* Waits for I/O, for at most timeout_ns (0 = just look). */
static void poll_io(machine_t *m, console_t *con, uint64_t timeout_ns)
{
	struct pollfd pfds[4];
	int n = console_pollfds(con, pfds, 4);
	struct timespec ts = { (time_t)(timeout_ns / 1000000000ull),
			       (long)(timeout_ns % 1000000000ull) };

	console_flush(con);
	if (ppoll(pfds, (nfds_t)n, &ts, NULL) > 0)
		console_handle(con, pfds, n);
	feed_console(m, con);
}

static uint64_t wfi_sleep_ns(machine_t *m)
{
	uint64_t now = machine_time(m), next = machine_next_deadline(m);
	uint64_t ns;

	if (next <= now)
		return 0;
	if (next - now > MAX_SLEEP_NS / (1000000000ull / TIMEBASE_HZ))
		return MAX_SLEEP_NS;
	ns = (next - now) * (1000000000ull / TIMEBASE_HZ);
	return ns;
}

static enum power_request run(machine_t *m, console_t *con)
{
	hart_t *h = &m->harts[0];
	unsigned slices = 0;
	uint64_t insns = 0, t0 = vclock_host_ns();

	while (m->power == POWER_RUN) {
		machine_update_timers(m);
		if (h->s.wfi && !(h->s.mip & h->s.mie)) {
			poll_io(m, con, wfi_sleep_ns(m));
		} else {
			h->stop = false;
			insns += hart_run(h, RUN_BUDGET);
			if (++slices % POLL_EVERY == 0)
				poll_io(m, con, 0);
		}
		if (con->quit || got_signal)
			machine_request_stop(m, POWER_QUIT);
	}
	console_flush(con);
	log_debug("%llu instructions in %.2f s",
		  (unsigned long long)insns, (double)(vclock_host_ns() - t0) / 1e9);
	return m->power;
}

int main(int argc, char **argv)
{
	vmm_opts_t o;
	console_t con;
	machine_t *m;
	char err[256];
	enum power_request why;
	int rc = 0;

	log_set_prog("tern-vmm");
	if (parse_args(argc, argv, &o))
		return 2;
	m = calloc(1, sizeof(*m));
	if (!m) {
		log_error("out of memory");
		return 1;
	}
	if (console_open(&con, o.console, err, sizeof(err))) {
		log_error("%s", err);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	for (;;) {
		if (build_machine(m, &o, &con)) {
			machine_destroy(m);
			rc = 1;
			break;
		}
		why = run(m, &con);
		machine_destroy(m);
		if (why != POWER_RESET)
			break;
	}
	console_close(&con);
	free(m);
	return rc;
}
