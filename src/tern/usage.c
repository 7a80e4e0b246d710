// SPDX-License-Identifier: MIT
/*
 * What `tern --help` and `tern help VERB` print: a small manual page. The
 * verbs are xm's (Xen's xm), speaking to ternd (docs/toolstack.md).
 */
#include "tern/usage.h"

#include <string.h>

#include "tern/tern.h"

static const verb_help_t verbs[] = {
	{ "create", "create CONFIG [-c] [-p]",
	  "start a domain from an xm-format config file",
	  "Reads the domain config CONFIG (xm's format: name = \"vm1\", memory = 256,\n"
	  "kernel, ramdisk, root, extra, disk = [...], on_poweroff, ...; see\n"
	  "docs/toolstack.md) and asks ternd to start it. Prints\n"
	  "\"Started domain NAME (id=N)\" once its tern-vmm runs.\n"
	  "\n"
	  "  -c, --console   attach to the domain's console afterwards (as tern console)\n"
	  "  -p, --paused    start it paused (tern unpause lets it run)\n" },
	{ "list", "list [DOM...] [-l|--long]",
	  "list domains",
	  "Prints xm's table of domains, or of the domains named (a name or a\n"
	  "numeric id; an unknown one is an error):\n"
	  "\n"
	  "  Name                                        ID   Mem VCPUs      State   Time(s)\n"
	  "\n"
	  "Mem is in MiB, Time(s) the CPU time used. State is one of running, paused,\n"
	  "incoming (a migration into this host is being received), migrating\n"
	  "(being sent to another host), saving (being written by tern save),\n"
	  "shutdown (powered off, kept by on_poweroff = \"preserve\") and crashed\n"
	  "(tern-vmm died, kept by on_crash = \"preserve\").\n"
	  "\n"
	  "  -l, --long      one S-expression per domain with its process id and the\n"
	  "                  paths of its control and console sockets\n"
	  "  --json          the JSON array ternd returns (with --long: the\n"
	  "                  domains' query-domain objects, config text included)\n" },
	{ "console", "console DOM",
	  "attach to a domain's console",
	  "Connects the terminal to the domain's serial console; the recent output\n"
	  "is shown first. Ctrl-] detaches (the domain keeps running). On a terminal\n"
	  "the terminal is put into raw mode and restored on exit. Without a terminal,\n"
	  "standard input is sent to the console (a Ctrl-] byte in it detaches) and\n"
	  "the output is printed until the domain ends or tern gets SIGINT/SIGTERM;\n"
	  "the end of standard input does not end the output. Exit status 0 when\n"
	  "detached or when the domain ends.\n" },
	{ "pause", "pause DOM", "pause a domain",
	  "Stops the domain's virtual CPU and clock; the guest sees no time pass.\n"
	  "Console input typed meanwhile reaches the guest after tern unpause.\n" },
	{ "unpause", "unpause DOM", "continue a paused domain",
	  "Lets a paused domain (tern pause, or tern create -p) run again.\n" },
	{ "shutdown", "shutdown DOM [-w]",
	  "ask a domain's guest to power off",
	  "Presses the domain's power button: the guest shuts down cleanly and the\n"
	  "domain goes away (or is kept or restarted, as on_poweroff says).\n"
	  "\n"
	  "  -w, --wait      wait until the domain is gone (at most 120 s)\n" },
	{ "destroy", "destroy DOM", "stop a domain at once",
	  "Kills the domain's tern-vmm at once, as pulling the plug.\n" },
	{ "reboot", "reboot DOM", "reset a domain",
	  "Resets the domain's machine: the guest boots again in the same domain.\n" },
	{ "save", "save DOM FILE",
	  "save a domain's state to a file and remove the domain",
	  "Writes a snapshot of the whole VM (memory, CPU, devices, clock) to FILE\n"
	  "(a relative FILE is taken from the current directory) and, once it is\n"
	  "complete, removes the domain, as xm save does. tern restore continues it.\n"
	  "Disk images are not part of the snapshot: keep them unchanged until the\n"
	  "restore.\n" },
	{ "restore", "restore FILE",
	  "start a domain from a file written by tern save",
	  "Starts the domain saved in FILE where it stopped and prints\n"
	  "\"Restored domain NAME (id=N)\".\n" },
	{ "info", "info", "show information about the host",
	  "Prints xm info's \"key : value\" lines about this host and its ternd: host,\n"
	  "tern_version, machine, isa, total_memory and free_memory (MiB offered to\n"
	  "domains, and what is left of it), nr_domains and the relocation server's\n"
	  "settings (xend-config.sxp).\n" },
	{ "migrate", "migrate [-l] [-p PORT] [--downtime MS] [--bandwidth MIB/S] DOM HOST",
	  "move a domain to another host",
	  "Moves the domain to the ternd on HOST (its relocation server, enabled by\n"
	  "(xend-relocation-server yes) there). HOST checks the move first (version,\n"
	  "machine, memory, the same disks at the same paths); any failure leaves the\n"
	  "domain running here. On a terminal a progress line shows the phase, the\n"
	  "memory copied, the rate, the round and the expected downtime; otherwise a\n"
	  "line per phase and per round. The end is a summary:\n"
	  "\n"
	  "  Migrated NAME to HOST: total 1.52 s, downtime 5 ms, 55.1 MiB sent\n"
	  "\n"
	  "  -l, --live              live migration: the guest runs while its memory\n"
	  "                          is copied and stops only for the last pages;\n"
	  "                          without it the guest is paused for the whole move\n"
	  "  -p, --port PORT         HOST's relocation port (default 8002)\n"
	  "  --downtime MS           the longest stop a live migration aims for\n"
	  "                          (default 300)\n"
	  "  --bandwidth MIB/S       limit the stream to MIB/S MiB per second\n"
	  "                          (default 0: unlimited)\n"
	  "  --json                  print the final query-migrate object\n" },
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

const verb_help_t *usage_find(const char *verb)
{
	for (size_t i = 0; i < N_VERBS; i++)
		if (!strcmp(verbs[i].name, verb))
			return &verbs[i];
	return NULL;
}

void usage_print_all(FILE *f)
{
	fprintf(f,
		"usage: tern [--socket PATH] [--json] VERB [ARGS...]\n"
		"       tern help [VERB] | --help | --version\n"
		"\n"
		"Runs and moves tern domains (virtual machines) through ternd, the daemon\n"
		"of this host, with the verbs of Xen's xm. DOM is a domain's name or id.\n"
		"\n"
		"Verbs:\n");
	for (size_t i = 0; i < N_VERBS; i++)
		fprintf(f, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f, "\n");
	for (size_t i = 0; i < N_VERBS; i++) {
		usage_print_verb(f, &verbs[i]);
		fprintf(f, "\n");
	}
	fprintf(f,
		"Options (before or after the verb):\n"
		"  --socket PATH   ternd's control socket; default $TERN_SOCKET, else\n"
		"                  " TERN_DEFAULT_SOCKET "\n"
		"  --json          print ternd's answer as JSON instead of text\n"
		"  -h, --help      this text (tern help VERB: one verb)\n"
		"  -V, --version   tern's version\n"
		"\n"
		"Exit status: 0 on success, 1 when something failed (one line on stderr\n"
		"saying what), 2 for a usage error.\n");
}

void usage_print_verb(FILE *f, const verb_help_t *h)
{
	fprintf(f, "tern %s\n    %s\n\n", h->synopsis, h->summary);
	/* The text, indented like a manual page's. */
	for (const char *p = h->text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (n)
			fprintf(f, "    %.*s\n", (int)n, p);
		else
			fprintf(f, "\n");
		p += n + (nl ? 1 : 0);
	}
}

void usage_hint(FILE *f, const char *verb)
{
	const verb_help_t *h = verb ? usage_find(verb) : NULL;

	if (h)
		fprintf(f, "usage: tern %s\nTry 'tern help %s' for more.\n",
			h->synopsis, h->name);
	else
		fprintf(f, "usage: tern [--socket PATH] [--json] VERB [ARGS...]\n"
			"Try 'tern --help' for more.\n");
}
