/* SPDX-License-Identifier: MIT */
/*
 * The host config, xend-config.sxp (docs/toolstack.md, "Host config"):
 * a sequence of S-expressions (KEY VALUE), xend's relocation keys and
 * tern's own. Also the hosts-allow match of a relocation peer.
 */
#ifndef TERN_HOSTCFG_H
#define TERN_HOSTCFG_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HOSTCFG_MAX_ALLOW 64

typedef struct hostcfg {
	bool relocation_server;		/* xend-relocation-server, default no */
	uint16_t relocation_port;	/* xend-relocation-port, default 8002 */
	char relocation_address[256];	/* '' = all interfaces */
	char *hosts_allow_text;		/* as written (malloc'd, may be "") */
	unsigned n_allow;
	regex_t allow[HOSTCFG_MAX_ALLOW];	/* REG_EXTENDED | REG_NOSUB */
	char *allow_src[HOSTCFG_MAX_ALLOW];	/* each pattern's text */
	uint64_t memory_mib;		/* tern-memory; 0 = host's MemTotal */
	char vmm_path[4096];		/* tern-vmm; "" = default */
	unsigned relocation_timeout_s;	/* tern-relocation-timeout, 30 */
} hostcfg_t;

/* Defaults (no file). */
void hostcfg_init(hostcfg_t *c);
void hostcfg_free(hostcfg_t *c);

/*
 * Parses text (name is the file name, for messages) into c, which must be
 * hostcfg_init()ed. Unknown keys are reported through warn(opaque, "FILE:LINE:
 * unknown key 'x' ignored") and skipped. Returns 0, or -1 with err
 * "FILE:LINE: reason" (c then holds defaults again).
 */
int hostcfg_parse(hostcfg_t *c, const char *name, const char *text,
		  void (*warn)(void *opaque, const char *msg), void *opaque,
		  char *err, size_t errlen);

/* Reads and parses path; a missing file is an error here (ternd decides). */
int hostcfg_load(hostcfg_t *c, const char *path,
		 void (*warn)(void *opaque, const char *msg), void *opaque,
		 char *err, size_t errlen);

/*
 * xend-relocation-hosts-allow: true when the list is empty, or the peer's
 * numeric address or one of its names matches one of the patterns.
 * names may be NULL (no reverse DNS name).
 */
bool hostcfg_allow_match(const hostcfg_t *c, const char *addr,
			 const char *const *names, unsigned n_names);

/*
 * The same for a connected peer: formats its numeric address, looks up its
 * name (getnameinfo with NI_NAMEREQD; failures just mean "no name") and
 * matches. addr_out receives the numeric address for messages.
 */
bool hostcfg_allow_peer(const hostcfg_t *c, const struct sockaddr *sa,
			socklen_t salen, char *addr_out, size_t addr_len);

#endif
