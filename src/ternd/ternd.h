/* SPDX-License-Identifier: MIT */
/*
 * ternd: the host daemon (docs/toolstack.md). One main thread runs the
 * poll loop (control clients, the relocation listener, every domain's
 * process and event connection); each migration, outgoing or incoming,
 * runs in a thread of its own. The domain table is shared under t->lock.
 */
#ifndef TERN_TERND_H
#define TERN_TERND_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ternd/domcfg.h"
#include "ternd/hostcfg.h"
#include "util/qmp_client.h"
#include "util/qmp_server.h"

#define TERND_MACHINE "tern-virt"
#define TERND_ISA "rv64imafdc_zicntr_zicsr_zifencei_zihintpause_sstc"
/* A vif without bridge= attaches here (Xen's was xenbr0). */
#define TERND_DEFAULT_BRIDGE "ternbr0"

enum dom_state {
	DOM_RUNNING,
	DOM_PAUSED,
	DOM_INCOMING,
	DOM_MIGRATING,
	DOM_SHUTDOWN,
	DOM_CRASHED,
	DOM_SAVING,		/* being written to a file by tern save */
};

const char *dom_state_name(enum dom_state s);

/* An outgoing migration's progress (query-migrate). */
typedef struct mig_out {
	char name[DOMCFG_NAME_MAX + 1];
	unsigned id;		/* the domain's id on this host */
	char host[256];
	unsigned port;
	bool live;
	uint64_t downtime_ms, bandwidth_mbs;
	char status[16];	/* connecting, checking, active, device, completed, failed */
	char error[512];
	json_t *progress;	/* last query-migrate from tern-vmm (owned) */
	uint64_t started_ms, ended_ms;	/* monotonic; ended 0 while running */
	struct mig_out *next;
} mig_out_t;

typedef struct domain {
	unsigned id;
	char name[DOMCFG_NAME_MAX + 1];
	char *config;		/* xm text */
	char *config_path;	/* where it came from, for messages */
	domcfg_t cfg;
	char dir[256];		/* STATE/dom/ID */
	pid_t pid;		/* 0: no process */
	unsigned long long pid_start;	/* /proc/PID/stat starttime */
	int pidfd;		/* -1: none */
	bool child;		/* started by this ternd: reap it */
	enum dom_state state;
	enum dom_state state_before;	/* before migrating */
	qmp_client_t *ev;	/* event connection to tern-vmm */
	char end_reason[32];	/* SHUTDOWN event's reason */
	bool destroying;	/* destroy/save asked it to go */
	bool incoming_done;	/* incoming: loaded and running */
	bool gone;		/* removed from the table; freed by the last user */
	unsigned refs;		/* threads using it */
	uint64_t started_ms;
	uint64_t restarts;
	struct domain *next;
} domain_t;

/* A finished background job whose request waits for its answer. */
typedef struct job_done {
	qmp_ticket_t ticket;
	json_t *ret;		/* the answer, or NULL: error */
	char error[768];
	domain_t *d;		/* referenced; the domain the job was about */
	enum dom_state restore_state;	/* on failure, if still saving */
	struct job_done *next;
} job_done_t;

typedef struct ternd {
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* a domain's state changed */
	hostcfg_t cfg;
	char state_dir[200];
	char sock_path[256];
	char vmm_path[4096];
	char host[256];		/* hostname */
	char instance[40];	/* random, per ternd process */
	qmp_server_t srv;
	int reloc_fd;		/* relocation listener, -1 when off */
	int wake_fd;		/* eventfd: a thread changed something */
	int sig_fd;		/* signalfd: SIGTERM, SIGINT, SIGHUP */
	int lock_fd;		/* STATE/ternd.lock, flock()ed */
	unsigned next_id;
	domain_t *domains;
	mig_out_t *migs;
	job_done_t *done;	/* answered by the main loop */
	uint64_t memory_total_mib;
	bool quit;
} ternd_t;

/* Monotonic milliseconds. */
uint64_t ternd_now_ms(void);
/* Wakes the main loop (from a thread). */
void ternd_wake(ternd_t *t);

/* ---- domains (domain.c); callers hold t->lock unless said otherwise ---- */

/* By name (the non-incoming one first) or by id given as a string. */
domain_t *domain_find(ternd_t *t, const char *ref);
domain_t *domain_find_name(ternd_t *t, const char *name, bool incoming);
/* MiB used by domains with a process. */
uint64_t domain_memory_used(ternd_t *t);

/*
 * Creates a domain from an xm config and starts its tern-vmm. restore:
 * snapshot file to resume instead of booting (NULL: boot). incoming_fd >= 0:
 * receive a migration on that connected socket (the domain is incoming, and
 * its tern-vmm dies with the calling thread until it has the VM).
 * Returns the domain or NULL with err set.
 */
domain_t *domain_create(ternd_t *t, const char *config, const char *path,
			bool paused, const char *restore, int incoming_fd,
			bool allow_same_name, char *err, size_t errlen);

/* A vif's bridge, and its MAC (the config's, or derived from the name). */
const char *domain_vif_bridge(const domain_t *d, unsigned i);
void domain_vif_mac(const domain_t *d, unsigned i, uint8_t mac[6]);

/* Writes STATE/dom/ID/domain.json. */
void domain_save_status(ternd_t *t, domain_t *d);
void domain_set_state(ternd_t *t, domain_t *d, enum dom_state s);

/* Removes d from the table and its state directory (kills nothing). */
void domain_remove(ternd_t *t, domain_t *d);
void domain_put(domain_t *d);	/* drops a thread's reference */

/* Kills its tern-vmm (SIGKILL) and removes it. */
void domain_destroy(ternd_t *t, domain_t *d);

/* A short command to d's tern-vmm (connect, run, close); t->lock NOT held. */
json_t *domain_call(const char *dir, const char *cmd, json_t *args,
		    unsigned timeout_ms, char *err, size_t errlen);

/* Finds the domains a previous ternd left running (startup). */
void domain_adopt_all(ternd_t *t);

/* Main loop: fds to watch for domains, and handling of their readiness. */
int domain_pollfds(ternd_t *t, struct pollfd *pfds, int max);
void domain_handle(ternd_t *t, const struct pollfd *pfds, int n);

/* CPU seconds used by pid. */
double domain_cpu_time(pid_t pid);

/* ---- relocation (reloc.c) ---- */

/* Opens the relocation listener when the host config enables it. */
int reloc_listen(ternd_t *t, char *err, size_t errlen);
/* Accepts one connection and handles it in a thread. */
void reloc_accept(ternd_t *t);
/*
 * Starts migrating d (t->lock held): checks, then a thread does the rest.
 * Returns 0 or -1 with err set.
 */
int reloc_migrate(ternd_t *t, domain_t *d, const char *host, unsigned port,
		  bool live, uint64_t downtime_ms, uint64_t bandwidth_mbs,
		  char *err, size_t errlen);
/* query-migrate for a domain name or id (t->lock held); NULL if none known. */
json_t *reloc_query(ternd_t *t, const char *ref);
/* Drops finished migrations older than 5 minutes (t->lock held). */
void reloc_expire(ternd_t *t);

/* ---- control API (api.c) ---- */

extern const qmp_cmd_t api_cmds[];
extern const size_t api_ncmds;

/* Main loop, t->lock held: answers the requests of finished jobs. */
void api_finish_jobs(ternd_t *t);

#endif
