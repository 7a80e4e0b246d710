// SPDX-License-Identifier: MIT
/*
 * tern-vmm: runs one RISC-V virtual machine in the foreground.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "devices/tap.h"
#include "devices/uart.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "machine/loader.h"
#include "machine/machine.h"
#include "machine/platform.h"
#include "migration/migrate.h"
#include "migration/savevm.h"
#include "migration/stream.h"
#include "util/err.h"
#include "util/log.h"
#include "vmm/console.h"
#include "vmm/control.h"

#define DEFAULT_MEMORY_MIB 256
#define MIN_MEMORY_MIB 16
#define MAX_DISKS 4
#define MAX_NICS 4
#define RUN_BUDGET 20000	/* instructions between timer/I-O checks */
#define POLL_EVERY 16		/* run slices between non-blocking polls */
#define MAX_SLEEP_NS 50000000ull
#define PAUSED_SLEEP_NS 500000000ull	/* a paused VM only waits for I/O */
#define MAX_POLLFDS (4 + 1 + QMP_MAX_CLIENTS + 1 + MAX_NICS)
#define NAME_MAX_LEN 64
#define DOMAIN_CONFIG_MAX STREAM_MAX_DOMAIN	/* it travels in the stream */

/* Long options without a short form. */
enum {
	OPT_NAME = 0x100,
	OPT_DOMAIN_CONFIG,
	OPT_NO_REBOOT,
	OPT_NET,
};

typedef struct disk_opt {
	const char *path;
	bool readonly;
} disk_opt_t;

/* --net bridge=BR[,mac=MAC][,ifname=NAME] | tap=NAME[,mac=MAC] */
typedef struct net_opt {
	const char *bridge;	/* create a TAP on this bridge, or */
	const char *tap;	/* use this existing TAP */
	const char *ifname;	/* name of the TAP to create (bridge= only) */
	uint8_t mac[6];
	bool mac_given;
} net_opt_t;

typedef struct vmm_opts {
	uint64_t memory_mib;
	const char *kernel;
	const char *initrd;
	const char *append;
	const char *console;
	const char *control;
	const char *restore;
	const char *incoming;
	const char *name;
	const char *domain_config;	/* the file */
	bool paused;
	bool no_reboot;
	disk_opt_t disks[MAX_DISKS];
	unsigned ndisks;
	net_opt_t nets[MAX_NICS];
	unsigned nnets;
	char default_kernel[PATH_MAX];
	char default_initrd[PATH_MAX];
} vmm_opts_t;

/* QMP run states the control socket reports (query-status). */
enum run_state {
	RUN_RUNNING,
	RUN_PAUSED,		/* stop command, or --paused after --restore */
	RUN_PRELAUNCH,		/* --paused: not started yet (QEMU -S) */
	RUN_SHUTDOWN,		/* powered off, about to exit */
	RUN_INMIGRATE,		/* --incoming: waiting for the stream */
	RUN_FINISH_MIGRATE,	/* paused by a migration (stop-and-copy) */
	RUN_POSTMIGRATE,	/* handed over to the destination, exiting */
};

static const char *const run_state_names[] = {
	[RUN_RUNNING] = "running",
	[RUN_PAUSED] = "paused",
	[RUN_PRELAUNCH] = "prelaunch",
	[RUN_SHUTDOWN] = "shutdown",
	[RUN_INMIGRATE] = "inmigrate",
	[RUN_FINISH_MIGRATE] = "finish-migrate",
	[RUN_POSTMIGRATE] = "postmigrate",
};

/* A NIC: its TAP lives as long as tern-vmm; the device as long as a boot. */
typedef struct nic {
	struct tap tap;
	struct virtio_net *dev;	/* NULL while no machine is built */
} nic_t;

/* The monitor: options, the current machine, console and control socket. */
typedef struct vmm {
	vmm_opts_t o;
	machine_t *m;
	console_t con;
	control_t ctl;
	enum run_state state;
	bool quit;		/* quit command */
	migrate_t *mig;		/* the current or last migration */
	enum run_state mig_prev;	/* state before a migration paused it */
	bool migrated;		/* the VM lives on the destination now */
	bool incoming_failed;
	int incoming_fd;	/* --incoming: listening socket until taken */
	bool host_reset;	/* the reset came from system_reset */
	char *domain;		/* domain config text saved with the VM */
	pid_t parent;		/* bound to it (parent-death signal), or 0 */
	nic_t nics[MAX_NICS];
	/* Announcing the VM's new location (after an incoming migration). */
	bool announce_pending;	/* when it next starts running */
	bool announce_on;	/* RARPs still to send */
	unsigned announce_sent;
	uint64_t announce_t0;	/* host ns when it started running */
} vmm_t;

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
"      --net bridge=BR[,mac=MAC][,ifname=NAME]\n"
"      --net tap=NAME[,mac=MAC]\n"
"                         a virtio-net NIC (repeatable, up to %d). bridge=BR\n"
"                         creates a TAP (named NAME, or tapN by the kernel),\n"
"                         brings it up and adds it to the existing Linux bridge\n"
"                         BR; the TAP goes away when tern-vmm exits. tap=NAME\n"
"                         attaches to an existing TAP. MAC (unicast) defaults\n"
"                         to 52:54:00:12:34:56 for the first NIC, +1 for each\n"
"                         next one; with --name, to 52:54:00 and the low 24\n"
"                         bits of FNV-1a-32(NAME), + the NIC's index\n"
"  -c, --console SPEC     stdio (default) or unix:PATH\n"
"  -C, --control PATH     serve the JSON control protocol (QMP-like) on a\n"
"                         UNIX socket at PATH\n"
"  -r, --restore FILE     resume the snapshot FILE (written by the control\n"
"                         command save) instead of booting; give the same\n"
"                         memory, disk and kernel options as the saved VM\n"
"  -I, --incoming tcp:ADDR:PORT | fd:N\n"
"                         receive the VM from a migrating tern-vmm instead of\n"
"                         booting; give the same options as the source.\n"
"                         tcp: listens and accepts one connection; fd:N uses\n"
"                         the inherited, already connected stream socket N\n"
"  -p, --paused           start paused; the control command cont runs it\n"
"      --name NAME        the VM's name: query-name, and messages read\n"
"                         tern-vmm[NAME]: (1-64 of A-Z a-z 0-9 _ . -)\n"
"      --domain-config FILE\n"
"                         text (at most 64 KiB) saved with the VM by every\n"
"                         save and migration; a restored or received VM\n"
"                         keeps the one it came with unless this is given\n"
"      --no-reboot        a guest reboot (or system_reset) ends tern-vmm\n"
"                         (status 0) instead of booting the guest again\n"
"  -h, --help             show this help and exit\n"
"  -V, --version          show the version and exit\n"
"\n"
"Without --kernel, tern-vmm boots the default guest from\n"
"${TERN_GUEST_DIR:-$HOME/.cache/tern/guest}/{Image,initrd.img}\n"
"(built by guest/build-guest.sh).\n"
"\n"
"On a terminal the console is raw: type Ctrl-A x to quit, Ctrl-A Ctrl-A to send\n"
"Ctrl-A. A guest poweroff exits with status 0; a guest that reports failure\n"
"through the syscon (0x3333 | code << 16) exits with that code.\n"
"\n"
"When a received (or restored) VM starts running, each NIC announces it: the\n"
"guest is asked to send gratuitous ARPs (VIRTIO_NET_F_GUEST_ANNOUNCE), and\n"
"tern-vmm sends RARP broadcasts from the guest's MAC at once and 50, 150,\n"
"300, 500 and 750 ms later, so that switches learn where the VM is now.\n"
"\n"
"An incoming tern-vmm started with a parent-death signal set stays bound to\n"
"its parent only until the VM is received: it clears the signal before\n"
"confirming, and fails the migration if the parent is already gone.\n",
		DEFAULT_MEMORY_MIB, MAX_DISKS, MAX_NICS);
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

/* Parses one --net option (see usage()). */
static int parse_net(vmm_opts_t *o, const char *arg)
{
	char *copy, *tok, *save = NULL;
	const char *mac = NULL;
	net_opt_t *n;

	if (o->nnets == MAX_NICS) {
		log_error("too many --net options (at most %d)", MAX_NICS);
		return -1;
	}
	n = &o->nets[o->nnets];
	memset(n, 0, sizeof(*n));
	/* Kept for the life of the process: the options point into it. */
	copy = strdup(arg);
	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *val = strchr(tok, '=');
		const char **slot;

		if (!val) {
			log_error("--net: '%s' is not KEY=VALUE (in '%s')", tok,
				  arg);
			goto fail;
		}
		*val++ = '\0';
		if (!strcmp(tok, "bridge"))
			slot = &n->bridge;
		else if (!strcmp(tok, "tap"))
			slot = &n->tap;
		else if (!strcmp(tok, "ifname"))
			slot = &n->ifname;
		else if (!strcmp(tok, "mac"))
			slot = &mac;
		else {
			log_error("--net: unknown key '%s' in '%s' (bridge, tap, "
				  "ifname, mac)", tok, arg);
			goto fail;
		}
		if (*slot) {
			log_error("--net: '%s' given twice in '%s'", tok, arg);
			goto fail;
		}
		*slot = val;
	}
	if (!n->bridge == !n->tap) {
		log_error("--net needs exactly one of bridge=BR and tap=NAME "
			  "(in '%s')", arg);
		goto fail;
	}
	if (n->ifname && !n->bridge) {
		log_error("--net: ifname= goes with bridge= (tap= names the "
			  "interface)");
		goto fail;
	}
	if (n->bridge && !tap_name_ok(n->bridge)) {
		log_error("--net: invalid bridge name '%s'", n->bridge);
		goto fail;
	}
	if (n->tap && !tap_name_ok(n->tap)) {
		log_error("--net: invalid interface name '%s'", n->tap);
		goto fail;
	}
	if (n->ifname && !tap_name_ok(n->ifname)) {
		log_error("--net: invalid interface name '%s'", n->ifname);
		goto fail;
	}
	if (mac) {
		if (virtio_net_parse_mac(mac, n->mac)) {
			log_error("--net: invalid MAC address '%s' "
				  "(aa:bb:cc:dd:ee:ff expected)", mac);
			goto fail;
		}
		if (!virtio_net_mac_ok(n->mac)) {
			log_error("--net: MAC address %s is not a unicast "
				  "address", mac);
			goto fail;
		}
		n->mac_given = true;
	}
	o->nnets++;
	return 0;
fail:
	free(copy);
	return -1;
}

/*
 * MACs not given: 52:54:00:12:34:56 + index, as QEMU numbers them; with
 * --name, 52:54:00 and the low 24 bits of FNV-1a-32(name) + index, so
 * that differently named VMs on one bridge differ and a VM keeps its
 * address wherever it runs. Then: no two NICs share an address or a TAP.
 */
static int net_defaults(vmm_opts_t *o)
{
	uint32_t base = 0x123456;

	if (o->name) {
		base = 2166136261u;
		for (const char *p = o->name; *p; p++)
			base = (base ^ (uint8_t)*p) * 16777619u;
	}
	for (unsigned i = 0; i < o->nnets; i++) {
		net_opt_t *n = &o->nets[i];
		uint32_t low = (base + i) & 0xffffff;

		if (!n->mac_given) {
			n->mac[0] = 0x52;
			n->mac[1] = 0x54;
			n->mac[2] = 0x00;
			n->mac[3] = (uint8_t)(low >> 16);
			n->mac[4] = (uint8_t)(low >> 8);
			n->mac[5] = (uint8_t)low;
		}
	}
	for (unsigned i = 0; i < o->nnets; i++) {
		for (unsigned j = 0; j < i; j++) {
			const net_opt_t *a = &o->nets[i], *b = &o->nets[j];
			const char *na = a->tap ? a->tap : a->ifname;
			const char *nb = b->tap ? b->tap : b->ifname;
			char mac[18];

			if (!memcmp(a->mac, b->mac, 6)) {
				virtio_net_format_mac(a->mac, mac);
				log_error("two NICs with MAC address %s", mac);
				return -1;
			}
			if (na && nb && !strcmp(na, nb)) {
				log_error("two NICs on interface %s", na);
				return -1;
			}
		}
	}
	/* The power button keeps the last virtio-mmio slot. */
	if (o->ndisks + o->nnets > MACHINE_MAX_VIRTIO - 1) {
		log_error("%u disks and %u NICs: at most %d together",
			  o->ndisks, o->nnets, MACHINE_MAX_VIRTIO - 1);
		return -1;
	}
	return 0;
}

/* A name as domain configs allow it: 1-64 of [A-Za-z0-9_.-], no leading . -. */
static bool name_ok(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > NAME_MAX_LEN || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		      ch == '-'))
			return false;
	}
	return true;
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
		{ "control", required_argument, NULL, 'C' },
		{ "restore", required_argument, NULL, 'r' },
		{ "incoming", required_argument, NULL, 'I' },
		{ "paused", no_argument, NULL, 'p' },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "domain-config", required_argument, NULL, OPT_DOMAIN_CONFIG },
		{ "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
		{ "net", required_argument, NULL, OPT_NET },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int opt;

	memset(o, 0, sizeof(*o));
	o->memory_mib = DEFAULT_MEMORY_MIB;
	o->console = "stdio";
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":m:k:i:a:d:c:C:r:I:phV", longopts, NULL)) != -1) {
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
		case 'C':
			o->control = optarg;
			break;
		case 'r':
			o->restore = optarg;
			break;
		case 'I':
			o->incoming = optarg;
			break;
		case 'p':
			o->paused = true;
			break;
		case OPT_NAME:
			if (!name_ok(optarg)) {
				log_error("invalid name '%s' (1 to %d of A-Z a-z "
					  "0-9 _ . -, not starting with . or -)",
					  optarg, NAME_MAX_LEN);
				return -1;
			}
			o->name = optarg;
			break;
		case OPT_DOMAIN_CONFIG:
			o->domain_config = optarg;
			break;
		case OPT_NO_REBOOT:
			o->no_reboot = true;
			break;
		case OPT_NET:
			if (parse_net(o, optarg))
				return -1;
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
	if (o->incoming && o->restore) {
		log_error("--incoming and --restore exclude each other");
		return -1;
	}
	if (net_defaults(o))
		return -1;
	if (o->paused && !o->control) {
		log_error("--paused needs --control: nothing else could continue the VM");
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

/*
 * The domain config a loaded stream carried (taken over; may be NULL)
 * becomes this VM's, so that its own saves and migrations carry it on;
 * --domain-config, when given, stays the one.
 */
static void keep_domain(vmm_t *v, char *domain)
{
	if (!domain || v->o.domain_config) {
		free(domain);
		return;
	}
	free(v->domain);
	v->domain = domain;
}

/* Reads --domain-config FILE: text of at most 64 KiB without NUL bytes. */
static char *read_domain_config(const char *path, char *err, size_t errlen)
{
	struct stat st;
	size_t len = 0;
	char *text;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		err_set(err, errlen, "cannot open domain config %s: %s", path,
			strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		err_set(err, errlen, "domain config %s: not a regular file", path);
		close(fd);
		return NULL;
	}
	text = malloc(DOMAIN_CONFIG_MAX + 2);
	if (!text) {
		err_set(err, errlen, "out of memory");
		close(fd);
		return NULL;
	}
	/* One byte more than allowed tells a file that is too long. */
	while (len < DOMAIN_CONFIG_MAX + 1) {
		ssize_t n = read(fd, text + len, DOMAIN_CONFIG_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_set(err, errlen, "cannot read domain config %s: %s",
				path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	fd = -1;
	if (len > DOMAIN_CONFIG_MAX) {
		err_set(err, errlen, "domain config %s is larger than %u KiB",
			path, DOMAIN_CONFIG_MAX >> 10);
		goto fail;
	}
	if (!len) {
		err_set(err, errlen, "domain config %s is empty", path);
		goto fail;
	}
	if (memchr(text, 0, len)) {
		err_set(err, errlen, "domain config %s contains a NUL byte", path);
		goto fail;
	}
	text[len] = '\0';
	return text;
fail:
	if (fd >= 0)
		close(fd);
	free(text);
	return NULL;
}

/*
 * Creates the board: interrupt controllers, timer, console, disks. Then
 * either boots the kernel, or, with restore_fd >= 0, loads a snapshot: RAM
 * (with the kernel and device tree the guest already has) and every state
 * come from the file; the devices themselves are created from the options
 * exactly as for a boot, which is what the snapshot's description is
 * checked against.
 */
static int build_machine(vmm_t *v, int restore_fd)
{
	machine_t *m = v->m;
	const vmm_opts_t *o = &v->o;
	char err[256], *domain = NULL;
	boot_config_t bc = { o->kernel, o->initrd, o->append };

	if (machine_init(m, o->memory_mib << 20, 1, err, sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	if (platform_create(m, console_tx, &v->con, err, sizeof(err))) {
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
	/* After the disks: they keep slots 0, 1, ... (vda, vdb, ...). */
	for (unsigned i = 0; i < o->nnets; i++) {
		v->nics[i].dev = virtio_net_new(m, &v->nics[i].tap,
						o->nets[i].mac, err, sizeof(err));
		if (!v->nics[i].dev) {
			log_error("%s", err);
			return -1;
		}
	}
	if (restore_fd < 0 && v->incoming_fd < 0) {
		if (loader_boot(m, &bc, err, sizeof(err))) {
			log_error("%s", err);
			return -1;
		}
		return 0;
	}
	/* Firmware configuration, not guest state: as loader_boot sets it. */
	for (unsigned i = 0; i < m->nharts; i++)
		m->harts[i].sbi_builtin = true;
	if (restore_fd < 0)
		return 0;	/* --incoming: the stream fills RAM and state */
	if (savevm_load(m, restore_fd, &domain, err, sizeof(err))) {
		log_error("cannot restore %s: %s", o->restore, err);
		return -1;
	}
	keep_domain(v, domain);
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

/* Migration events go to the control socket as QMP names them. */
static json_t *mig_info_json(vmm_t *v);

/*
 * MIGRATION event data: the status, as QMP has it, and for the last event
 * of a migration its final figures (tern's addition: a source tern-vmm
 * exits right after a completed migration, before a client could ask).
 */
static json_t *mig_event_data(vmm_t *v, unsigned status)
{
	json_t *d = json_pack("{s:s}", "status", migrate_status_name(status));

	if (d && (status == MIGRATE_COMPLETED || status == MIGRATE_FAILED ||
		  status == MIGRATE_CANCELLED))
		json_object_set_new(d, "stats", mig_info_json(v));
	return d;
}

static void mig_events(vmm_t *v)
{
	migrate_event_t ev;

	while (migrate_next_event(v->mig, &ev)) {
		if (ev.kind == MIGRATE_EV_PASS)
			qmp_server_event(&v->ctl.srv, "MIGRATION_PASS",
					 json_pack("{s:i}", "pass", (int)ev.value));
		else
			qmp_server_event(&v->ctl.srv, "MIGRATION",
					 mig_event_data(v, ev.value));
	}
}

/* Does what the migration thread asks; between run slices only. */
static void mig_service(vmm_t *v)
{
	mig_events(v);
	migrate_service(v->mig);
	mig_events(v);
}

/*
 * Announcing a VM that arrived, so that the network learns where it is
 * now. When it starts running on the destination, each NIC whose
 * driver negotiated VIRTIO_NET_F_GUEST_ANNOUNCE asks the guest to send
 * gratuitous ARPs itself (it knows its addresses and VLANs); and, as
 * QEMU's qemu_announce_self() does, tern-vmm sends RARP broadcasts from
 * each guest MAC, which teach every switch on the way the port behind
 * which the MAC lives now, whatever the guest does: one at once (the
 * guest takes a few milliseconds to react, and every one of them loses
 * traffic), then 50, 150, 300, 500 and 750 ms later, in case one is
 * lost. Host time, from the main loop: never a sleep.
 */
#define ANNOUNCE_ROUNDS 6
static const unsigned announce_ms[ANNOUNCE_ROUNDS] = {
	0, 50, 150, 300, 500, 750,
};

/* Sends the RARPs that are due. */
static void announce_service(vmm_t *v)
{
	uint64_t now;

	if (!v->announce_on)
		return;
	now = vclock_host_ns();
	while (v->announce_sent < ANNOUNCE_ROUNDS &&
	       now - v->announce_t0 >=
		       announce_ms[v->announce_sent] * 1000000ull) {
		for (unsigned i = 0; i < v->o.nnets; i++)
			tap_send_rarp(&v->nics[i].tap, v->o.nets[i].mac);
		v->announce_sent++;
	}
	if (v->announce_sent == ANNOUNCE_ROUNDS)
		v->announce_on = false;
}

static void announce_start(vmm_t *v)
{
	v->announce_pending = false;
	if (!v->o.nnets)
		return;
	for (unsigned i = 0; i < v->o.nnets; i++)
		if (v->nics[i].dev)
			virtio_net_announce(v->nics[i].dev);
	v->announce_t0 = vclock_host_ns();
	v->announce_sent = 0;
	v->announce_on = true;
	announce_service(v);	/* the first one now */
}

/* Nanoseconds until the next RARP is due (UINT64_MAX: none). */
static uint64_t announce_wait_ns(const vmm_t *v)
{
	uint64_t due, now;

	if (!v->announce_on)
		return UINT64_MAX;
	due = v->announce_t0 + announce_ms[v->announce_sent] * 1000000ull;
	now = vclock_host_ns();
	return due > now ? due - now : 0;
}

/* The VM runs again after a load: announce now, or once it runs. */
static void announce_after_load(vmm_t *v)
{
	if (v->state == RUN_RUNNING)
		announce_start(v);
	else
		v->announce_pending = true;
}

/*
 * Waits for I/O on the console, the control socket and (while the VM
 * runs) the NICs' TAPs, for at most timeout_ns (0 = just look). Control
 * commands run here, between run slices, so no hart is ever inside
 * hart_run when one changes the VM; so do frames for the guest, which a
 * hart in WFI wakes up for (the device raises its interrupt).
 */
static void poll_io(vmm_t *v, uint64_t timeout_ns)
{
	struct pollfd pfds[MAX_POLLFDS];
	int nc = console_pollfds(&v->con, pfds, 4);
	int n = nc + qmp_server_pollfds(&v->ctl.srv, pfds + nc,
					MAX_POLLFDS - 1 - MAX_NICS - nc);
	struct timespec ts;
	migrate_t *mg = v->mig;
	int nm = n + (mg != NULL), nn = 0;
	unsigned nic_of[MAX_NICS];
	uint64_t wait;

	/* The migration thread wakes a sleeping loop through its eventfd. */
	if (mg)
		pfds[n] = (struct pollfd){ .fd = migrate_wake_fd(mg),
					   .events = POLLIN };
	/* A paused or migrating VM's RAM must not change: no frames then. */
	for (unsigned i = 0; v->state == RUN_RUNNING && i < v->o.nnets; i++) {
		struct virtio_net *dev = v->nics[i].dev;
		int fd = dev ? virtio_net_rx_fd(dev) : -1;

		if (fd < 0)
			continue;
		pfds[nm + nn] = (struct pollfd){ .fd = fd, .events = POLLIN };
		nic_of[nn++] = i;
	}
	announce_service(v);
	wait = announce_wait_ns(v);
	if (wait < timeout_ns)
		timeout_ns = wait;
	ts = (struct timespec){ (time_t)(timeout_ns / 1000000000ull),
				(long)(timeout_ns % 1000000000ull) };
	console_flush(&v->con);
	if (ppoll(pfds, (nfds_t)(nm + nn), &ts, NULL) > 0) {
		console_handle(&v->con, pfds, nc);
		qmp_server_handle(&v->ctl.srv, pfds + nc, n - nc);
		/* A command may have replaced the migration meanwhile. */
		if (mg && mg == v->mig && pfds[n].revents)
			mig_service(v);
		/* ... or stopped the VM. */
		for (int k = 0; k < nn && v->state == RUN_RUNNING; k++)
			if (pfds[nm + k].revents && v->nics[nic_of[k]].dev)
				virtio_net_rx(v->nics[nic_of[k]].dev);
	}
	announce_service(v);
	/* A paused guest takes no input: it waits on the host side. */
	if (v->state == RUN_RUNNING)
		feed_console(v->m, &v->con);
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

static enum power_request run(vmm_t *v)
{
	machine_t *m = v->m;
	hart_t *h = &m->harts[0];
	unsigned slices = 0;
	uint64_t insns = 0, t0 = vclock_host_ns();

	while (m->power == POWER_RUN) {
		if (v->mig && migrate_pending(v->mig))
			mig_service(v);
		if (v->state != RUN_RUNNING) {
			/* Harts and clock stopped: only the host side moves. */
			poll_io(v, PAUSED_SLEEP_NS);
		} else {
			machine_update_timers(m);
			if (h->s.wfi && !(h->s.mip & h->s.mie)) {
				poll_io(v, wfi_sleep_ns(m));
			} else {
				h->stop = false;
				insns += hart_run(h, RUN_BUDGET);
				if (++slices % POLL_EVERY == 0)
					poll_io(v, 0);
			}
		}
		if (v->con.quit || got_signal || v->quit)
			machine_request_stop(m, POWER_QUIT);
	}
	console_flush(&v->con);
	log_debug("%llu instructions in %.2f s",
		  (unsigned long long)insns, (double)(vclock_host_ns() - t0) / 1e9);
	return m->power;
}

/* ---- control socket commands ---- */

static const char *ctl_status(void *opaque)
{
	vmm_t *v = opaque;

	return run_state_names[v->state];
}

static int ctl_stop(void *opaque, char *err, size_t errlen)
{
	vmm_t *v = opaque;

	if (v->state == RUN_INMIGRATE) {
		v->o.paused = true;	/* stay paused once received */
		return 0;
	}
	if (v->state != RUN_RUNNING)
		return 0; /* already stopped: nothing to do, as in QMP */
	vclock_pause(&v->m->clock);
	v->state = RUN_PAUSED;
	qmp_server_event(&v->ctl.srv, "STOP", NULL);
	return 0;
}

static int ctl_cont(void *opaque, char *err, size_t errlen)
{
	vmm_t *v = opaque;

	if (v->state == RUN_RUNNING)
		return 0;
	if (v->state == RUN_SHUTDOWN) {
		snprintf(err, errlen, "the VM has shut down");
		return -1;
	}
	if (v->state == RUN_INMIGRATE) {
		v->o.paused = false;	/* run once received */
		return 0;
	}
	if (v->state == RUN_FINISH_MIGRATE || v->state == RUN_POSTMIGRATE) {
		snprintf(err, errlen, "the VM is being migrated");
		return -1;
	}
	vclock_resume(&v->m->clock);
	v->state = RUN_RUNNING;
	qmp_server_event(&v->ctl.srv, "RESUME", NULL);
	if (v->announce_pending)
		announce_start(v);
	return 0;
}

static void ctl_quit(void *opaque)
{
	vmm_t *v = opaque;

	v->quit = true;
}

static int save_writer(void *opaque, int fd, char *err, size_t errlen)
{
	vmm_t *v = opaque;

	return savevm_save(v->m, v->domain, fd, err, errlen);
}

/* Pauses (if running) for the snapshot and resumes afterwards. */
static int ctl_save(void *opaque, const char *file, uint64_t *bytes, char *err,
		    size_t errlen)
{
	vmm_t *v = opaque;
	bool was_running = v->state == RUN_RUNNING;
	int rc;

	if ((v->mig && migrate_running(v->mig)) || v->state == RUN_INMIGRATE) {
		snprintf(err, errlen, "a migration is in progress");
		return -1;
	}
	if (was_running)
		vclock_pause(&v->m->clock);
	rc = control_write_file(file, save_writer, v, bytes, err, errlen);
	if (was_running)
		vclock_resume(&v->m->clock);
	return rc;
}

/* ---- migration ---- */

static void mig_pause(void *opaque)
{
	vmm_t *v = opaque;

	v->mig_prev = v->state;
	if (v->state == RUN_RUNNING)
		vclock_pause(&v->m->clock);
	v->state = RUN_FINISH_MIGRATE;
}

static void mig_resume(void *opaque)
{
	vmm_t *v = opaque;

	if (v->state != RUN_FINISH_MIGRATE)
		return;
	v->state = v->mig_prev;
	if (v->state == RUN_RUNNING)
		vclock_resume(&v->m->clock);
}

/* The destination confirmed: this copy must never run again. */
static void mig_handed_over(void *opaque)
{
	vmm_t *v = opaque;

	v->state = RUN_POSTMIGRATE;
	v->migrated = true;
	machine_request_stop(v->m, POWER_QUIT);
}

static void mig_incoming_done(void *opaque, bool ok, const char *err)
{
	vmm_t *v = opaque;

	if (!ok) {
		log_error("incoming migration failed: %s", err);
		v->incoming_failed = true;
		machine_request_stop(v->m, POWER_QUIT);
		return;
	}
	keep_domain(v, migrate_incoming_domain(v->mig));
	if (v->o.paused) {
		v->state = RUN_PAUSED;
		announce_after_load(v);
		return;
	}
	v->state = RUN_RUNNING;
	vclock_resume(&v->m->clock);
	qmp_server_event(&v->ctl.srv, "RESUME", NULL);
	announce_after_load(v);
}

/*
 * The VM is loaded; COMMITTED goes out next. A parent that bound us with
 * a parent-death signal (ternd rolls back by dying) lets go of us now: the
 * VM outlives its daemon from here on. A parent that died before the
 * signal was cleared has already killed us; one that died since is seen
 * here, and the source keeps the VM.
 */
static int mig_incoming_commit(void *opaque, char *err, size_t errlen)
{
	vmm_t *v = opaque;

	if (!v->parent)
		return 0;
	if (prctl(PR_SET_PDEATHSIG, 0))
		return err_set(err, errlen, "cannot clear the parent-death "
			       "signal: %s", strerror(errno));
	if (getppid() != v->parent)
		return err_set(err, errlen, "the process that started this "
			       "tern-vmm (pid %d) is gone", (int)v->parent);
	v->parent = 0;
	return 0;
}

static const migrate_hooks_t mig_hooks = {
	.pause = mig_pause,
	.resume = mig_resume,
	.handed_over = mig_handed_over,
	.incoming_done = mig_incoming_done,
	.incoming_commit = mig_incoming_commit,
};

static int ctl_migrate(void *opaque, const control_migrate_args_t *a,
		       char *err, size_t errlen)
{
	vmm_t *v = opaque;
	migrate_params_t p;

	if (v->mig && migrate_running(v->mig)) {
		snprintf(err, errlen, "There's a migration process in progress");
		return -1;
	}
	if (v->state == RUN_INMIGRATE || v->state == RUN_SHUTDOWN ||
	    v->state == RUN_POSTMIGRATE) {
		snprintf(err, errlen, "the VM cannot migrate while %s",
			 run_state_names[v->state]);
		return -1;
	}
	migrate_params_default(&p);
	p.live = a->live;
	p.downtime_ms = a->downtime_limit_ms;
	p.bandwidth = a->bandwidth_mbs << 20;
	p.max_rounds = (unsigned)a->max_rounds;
	p.give_up = a->give_up_abort ? MIGRATE_GIVE_UP_ABORT :
				       MIGRATE_GIVE_UP_STOP_COPY;
	p.domain = v->domain;
	if (v->mig) {
		migrate_free(v->mig);
		v->mig = NULL;
	}
	if (a->fd >= 0)
		return migrate_start_fd(&v->mig, v->m, a->fd, a->uri, &p,
					&mig_hooks, v, err, errlen);
	return migrate_start(&v->mig, v->m, a->uri, &p, &mig_hooks, v, err,
			     errlen);
}

static int ctl_migrate_cancel(void *opaque, char *err, size_t errlen)
{
	vmm_t *v = opaque;

	if (v->mig)
		migrate_cancel(v->mig);
	return 0;
}

/* query-migrate's answer for a running or finished migration. */
static json_t *mig_info_json(vmm_t *v)
{
	migrate_info_t i;
	json_t *r;

	migrate_get_info(v->mig, &i);
	r = json_pack("{s:s,s:I,s:I,s:I}", "status",
		      migrate_status_name(i.status), "total-time",
		      (json_int_t)i.total_time, "setup-time",
		      (json_int_t)i.setup_time, "expected-downtime",
		      (json_int_t)i.expected_downtime);
	if (!r)
		return NULL;
	if (i.status == MIGRATE_COMPLETED && !i.incoming)
		json_object_set_new(r, "downtime",
				    json_integer((json_int_t)i.downtime));
	if (i.status == MIGRATE_FAILED || i.status == MIGRATE_CANCELLED)
		json_object_set_new(r, "error-desc", json_string(i.error));
	json_object_set_new(r, "ram",
		json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I}",
			  "transferred", (json_int_t)i.transferred,
			  "remaining", (json_int_t)i.remaining,
			  "total", (json_int_t)i.total,
			  "duplicate", (json_int_t)i.duplicate,
			  "normal", (json_int_t)i.normal,
			  "normal-bytes", (json_int_t)i.normal_bytes,
			  "dirty-pages-rate", (json_int_t)i.dirty_pages_rate,
			  "mbps", i.mbps,
			  "dirty-sync-count", (json_int_t)i.dirty_sync_count));
	return r;
}

static json_t *ctl_query_migrate(void *opaque)
{
	vmm_t *v = opaque;

	if (!v->mig)
		return json_pack("{s:s}", "status",
				 v->state == RUN_INMIGRATE ? "setup" : "none");
	/* Every status the answer shows has had its event first. */
	mig_events(v);
	return mig_info_json(v);
}

/* A state in which the machine is not the guest's running one. */
static const char *not_running_why(vmm_t *v)
{
	switch (v->state) {
	case RUN_INMIGRATE:
		return "the VM is still being received";
	case RUN_FINISH_MIGRATE:
	case RUN_POSTMIGRATE:
		return "the VM is being migrated";
	case RUN_SHUTDOWN:
		return "the VM has shut down";
	default:
		return NULL;
	}
}

static int ctl_system_powerdown(void *opaque, char *err, size_t errlen)
{
	vmm_t *v = opaque;
	const char *why = not_running_why(v);

	if (why)
		return err_set(err, errlen, "%s", why);
	return platform_powerdown(v->m, err, errlen);
}

/* As a guest-initiated reboot, reported as the host's (QMP's reason). */
static int ctl_system_reset(void *opaque, char *err, size_t errlen)
{
	vmm_t *v = opaque;
	const char *why = not_running_why(v);

	if (why)
		return err_set(err, errlen, "%s", why);
	if (v->mig && migrate_running(v->mig))
		return err_set(err, errlen, "a migration is in progress");
	if (v->m->power != POWER_RUN)
		return 0;	/* already on its way to a reset or an exit */
	v->host_reset = true;
	machine_request_stop(v->m, POWER_RESET);
	return 0;
}

static const control_ops_t ctl_ops = {
	.status = ctl_status,
	.stop = ctl_stop,
	.cont = ctl_cont,
	.quit = ctl_quit,
	.save = ctl_save,
	.migrate = ctl_migrate,
	.migrate_cancel = ctl_migrate_cancel,
	.query_migrate = ctl_query_migrate,
	.system_powerdown = ctl_system_powerdown,
	.system_reset = ctl_system_reset,
};

/*
 * The NICs' TAPs, made or opened once for the life of tern-vmm (guest
 * reboots rebuild the devices, not the interfaces). A TAP made on a
 * bridge disappears when its descriptor closes, at exit at the latest.
 */
static int open_nics(vmm_t *v)
{
	char err[256];

	for (unsigned i = 0; i < v->o.nnets; i++) {
		const net_opt_t *n = &v->o.nets[i];
		int rc = n->bridge ? tap_create(&v->nics[i].tap, n->ifname,
						n->bridge, n->mac, err,
						sizeof(err)) :
				     tap_open(&v->nics[i].tap, n->tap, err,
					      sizeof(err));

		if (rc) {
			log_error("%s", err);
			while (i--)
				tap_close(&v->nics[i].tap);
			return -1;
		}
	}
	return 0;
}

static void close_nics(vmm_t *v)
{
	for (unsigned i = 0; i < v->o.nnets; i++)
		tap_close(&v->nics[i].tap);
}

/* SHUTDOWN / RESET event data, as QMP words them. */
static json_t *power_event_data(bool guest, const char *reason)
{
	return json_pack("{s:b,s:s}", "guest", guest, "reason", reason);
}

/* A reset's event data: the guest's own reboot, or system_reset. */
static json_t *reset_event_data(const vmm_t *v)
{
	return v->host_reset ? power_event_data(false, "host-qmp-system-reset") :
			       power_event_data(true, "guest-reset");
}

int main(int argc, char **argv)
{
	static vmm_t vmm;
	vmm_t *v = &vmm;
	char err[256];
	enum power_request why = POWER_QUIT;
	static char prog[sizeof("tern-vmm[]") + NAME_MAX_LEN];
	int rc = 0, restore_fd = -1, guest_exit = 0, pdeath = 0;

	log_set_prog("tern-vmm");
	if (parse_args(argc, argv, &v->o))
		return 2;
	if (v->o.name) {
		snprintf(prog, sizeof(prog), "tern-vmm[%s]", v->o.name);
		log_set_prog(prog);
	}
	v->incoming_fd = -1;
	if (v->o.incoming && !strncmp(v->o.incoming, "fd:", 3)) {
		/* Before anything is opened: N must be the inherited fd. */
		v->incoming_fd = migrate_incoming_listen(v->o.incoming, err,
							 sizeof(err));
		if (v->incoming_fd < 0) {
			log_error("%s", err);
			return 1;
		}
	}
	/* Started bound to a parent (ternd, for an incoming VM): remember
	 * which, to tell later whether it is still there. */
	if (!prctl(PR_GET_PDEATHSIG, &pdeath) && pdeath)
		v->parent = getppid();
	if (v->o.domain_config) {
		v->domain = read_domain_config(v->o.domain_config, err,
					       sizeof(err));
		if (!v->domain) {
			log_error("%s", err);
			if (v->incoming_fd >= 0)
				close(v->incoming_fd);
			return 1;
		}
	}
	if (open_nics(v)) {
		if (v->incoming_fd >= 0)
			close(v->incoming_fd);
		free(v->domain);
		return 1;
	}
	v->m = calloc(1, sizeof(*v->m));
	if (!v->m) {
		log_error("out of memory");
		close_nics(v);
		return 1;
	}
	if (v->o.restore) {
		restore_fd = open(v->o.restore, O_RDONLY | O_CLOEXEC);
		if (restore_fd < 0) {
			log_error("cannot open snapshot %s: %s", v->o.restore,
				  strerror(errno));
			close_nics(v);
			free(v->m);
			return 1;
		}
	}
	if (v->o.incoming && v->incoming_fd < 0) {
		/* Listening before the control socket exists: whoever sees
		 * the control socket may start the source's migrate. */
		v->incoming_fd = migrate_incoming_listen(v->o.incoming, err,
							 sizeof(err));
		if (v->incoming_fd < 0) {
			log_error("%s", err);
			close_nics(v);
			free(v->m);
			return 1;
		}
	}
	control_init(&v->ctl, &ctl_ops, v);
	control_set_name(&v->ctl, v->o.name);
	if (v->o.control && qmp_server_listen(&v->ctl.srv, v->o.control, err,
					      sizeof(err))) {
		log_error("%s", err);
		close_nics(v);
		free(v->m);
		return 1;
	}
	if (console_open(&v->con, v->o.console, err, sizeof(err))) {
		log_error("%s", err);
		control_close(&v->ctl);
		close_nics(v);
		free(v->m);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	v->state = RUN_RUNNING;
	if (v->o.paused)
		v->state = v->o.restore ? RUN_PAUSED : RUN_PRELAUNCH;
	if (v->o.incoming)
		v->state = RUN_INMIGRATE;
	for (;;) {
		if (build_machine(v, restore_fd)) {
			machine_destroy(v->m);
			rc = 1;
			break;
		}
		if (v->incoming_fd >= 0) {
			if (migrate_incoming_start(&v->mig, v->m, v->incoming_fd,
						   0, &mig_hooks, v, err,
						   sizeof(err))) {
				log_error("incoming migration failed: %s", err);
				close(v->incoming_fd);
				v->incoming_fd = -1;
				machine_destroy(v->m);
				rc = 1;
				break;
			}
			/* Taken over; a later reboot boots the kernel. */
			v->incoming_fd = -1;
			vclock_pause(&v->m->clock);
		} else if (restore_fd >= 0) {
			close(restore_fd);
			restore_fd = -1; /* a later reboot boots the kernel */
			if (v->state == RUN_RUNNING)
				vclock_resume(&v->m->clock);
			/* Restored, maybe on another host: as after a move. */
			announce_after_load(v);
		} else if (v->state != RUN_RUNNING) {
			vclock_pause(&v->m->clock);
		}
		why = run(v);
		guest_exit = why == POWER_OFF ? v->m->exit_code : 0;
		if (v->mig) {
			/* No migration outlives its machine. */
			migrate_stop(v->mig);
			mig_events(v);
		}
		machine_destroy(v->m);
		for (unsigned i = 0; i < v->o.nnets; i++)
			v->nics[i].dev = NULL;
		/* --no-reboot: a reboot ends tern-vmm (SHUTDOWN below). */
		if (why != POWER_RESET || v->o.no_reboot)
			break;
		qmp_server_event(&v->ctl.srv, "RESET", reset_event_data(v));
		v->host_reset = false;
	}
	if (v->incoming_failed)
		rc = 1;
	if (!rc) {
		v->state = RUN_SHUTDOWN;
		if (v->migrated)
			qmp_server_event(&v->ctl.srv, "SHUTDOWN",
					 power_event_data(false, "migrated"));
		else if (why == POWER_OFF)
			qmp_server_event(&v->ctl.srv, "SHUTDOWN",
					 power_event_data(true, "guest-shutdown"));
		else if (why == POWER_RESET)
			qmp_server_event(&v->ctl.srv, "SHUTDOWN",
					 reset_event_data(v));
		else
			qmp_server_event(&v->ctl.srv, "SHUTDOWN",
					 power_event_data(false,
							  v->quit ? "host-qmp-quit" :
							  got_signal ? "host-signal" :
							  "host-ui"));
		/* A guest that powered off reporting failure (syscon FAIL). */
		rc = guest_exit;
	}
	if (restore_fd >= 0)
		close(restore_fd);
	if (v->incoming_fd >= 0)
		close(v->incoming_fd);
	migrate_free(v->mig);
	if (v->migrated)
		qmp_server_linger(&v->ctl.srv, 300);
	control_close(&v->ctl);
	console_close(&v->con);
	close_nics(v);
	free(v->m);
	free(v->domain);
	return rc;
}
