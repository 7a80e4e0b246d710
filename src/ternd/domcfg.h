/* SPDX-License-Identifier: MIT */
/*
 * A domain config in xm's format (docs/toolstack.md, "Domain config"):
 * Python-style assignments of strings, integers and lists of strings.
 */
#ifndef TERN_DOMCFG_H
#define TERN_DOMCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOMCFG_NAME_MAX 64
#define DOMCFG_MAX_DISKS 8
#define DOMCFG_MAX_VIFS 8

enum domcfg_action {
	DOMCFG_DESTROY,
	DOMCFG_RESTART,
	DOMCFG_PRESERVE,
};

typedef struct domcfg_disk {
	char *path;		/* absolute host path */
	char vdev[16];		/* as written: vda, xvda, hda1, ... */
	bool readonly;		/* mode 'r' */
} domcfg_disk_t;

typedef struct domcfg_vif {
	bool has_mac;
	uint8_t mac[6];
	char bridge[16];	/* IFNAMSIZ; "" = none given */
} domcfg_vif_t;

typedef struct domcfg {
	char name[DOMCFG_NAME_MAX + 1];
	uint64_t memory_mib;
	unsigned vcpus;
	char *kernel;		/* NULL: the default guest */
	char *ramdisk;		/* NULL: the default guest's, or none */
	char *root;		/* NULL: none */
	char *extra;		/* NULL: none */
	unsigned n_disks;
	domcfg_disk_t disks[DOMCFG_MAX_DISKS];
	unsigned n_vifs;
	domcfg_vif_t vifs[DOMCFG_MAX_VIFS];
	enum domcfg_action on_poweroff, on_reboot, on_crash;
} domcfg_t;

/*
 * Parses text (file is its name, for messages). Unknown or ignored keys go
 * to warn (may be NULL). Returns 0, or -1 with err "FILE:LINE: key 'K':
 * reason" (or "FILE:LINE: reason" for syntax errors, "FILE: key 'name' is
 * missing" for missing keys). On error d needs no domcfg_free.
 */
int domcfg_parse(domcfg_t *d, const char *file, const char *text,
		 void (*warn)(void *opaque, const char *msg), void *opaque,
		 char *err, size_t errlen);

void domcfg_free(domcfg_t *d);

/* "destroy", "restart", "preserve". */
const char *domcfg_action_name(enum domcfg_action a);

/*
 * The kernel command line: "root=ROOT EXTRA" (either may be absent);
 * malloc'd, "" when both are. NULL when out of memory.
 */
char *domcfg_cmdline(const domcfg_t *d);

#endif
