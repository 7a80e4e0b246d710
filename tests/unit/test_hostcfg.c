// SPDX-License-Identifier: MIT
/*
 * The host config reader (xend-config.sxp) and the hosts-allow match:
 * values and defaults, xend's own examples, every error with its line,
 * warnings for unknown keys, hostile input, and peers given as sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ternd/hostcfg.h"

#define MAX_WARN 32

typedef struct warns {
	unsigned n;
	char msg[MAX_WARN][300];
} warns_t;

static void on_warn(void *opaque, const char *msg)
{
	warns_t *w = opaque;

	assert_true(w->n < MAX_WARN);
	snprintf(w->msg[w->n++], sizeof(w->msg[0]), "%s", msg);
}

static void assert_defaults(const hostcfg_t *c)
{
	assert_false(c->relocation_server);
	assert_int_equal(c->relocation_port, 8002);
	assert_string_equal(c->relocation_address, "");
	assert_non_null(c->hosts_allow_text);
	assert_string_equal(c->hosts_allow_text, "");
	assert_int_equal(c->n_allow, 0);
	assert_int_equal(c->memory_mib, 0);
	assert_string_equal(c->vmm_path, "");
	assert_int_equal(c->relocation_timeout_s, 30);
}

/* Parses text that must be accepted; warnings go to w (may be NULL). */
static void parse_ok(hostcfg_t *c, const char *text, warns_t *w)
{
	warns_t local = { 0 };
	char err[512] = "";
	int rc;

	rc = hostcfg_parse(c, "xc.sxp", text, on_warn, w ? w : &local, err,
			   sizeof(err));
	if (rc)
		fail_msg("unexpected error: %s", err);
	if (!w && local.n)
		fail_msg("unexpected warning: %s", local.msg[0]);
}

/* Parses text that must be refused with exactly the error want. */
static void parse_err(const char *text, const char *want)
{
	warns_t w = { 0 };
	hostcfg_t c;
	char err[512] = "";

	hostcfg_init(&c);
	assert_int_equal(hostcfg_parse(&c, "xc.sxp", text, on_warn, &w, err,
				       sizeof(err)), -1);
	if (want && strcmp(err, want))
		fail_msg("error '%s', expected '%s'", err, want);
	assert_true(err[0] != '\0');
	assert_defaults(&c);
	hostcfg_free(&c);
}

static bool match1(const hostcfg_t *c, const char *s)
{
	return hostcfg_allow_match(c, s, NULL, 0);
}

static void test_defaults(void **state)
{
	hostcfg_t c;

	hostcfg_init(&c);
	assert_defaults(&c);
	/* No patterns: everyone. */
	assert_true(match1(&c, "10.1.2.3"));
	assert_true(hostcfg_allow_match(&c, NULL, NULL, 0));
	hostcfg_free(&c);
	assert_defaults(&c);
	/* Free twice, and an empty file, are harmless. */
	hostcfg_free(&c);
	parse_ok(&c, "", NULL);
	assert_defaults(&c);
	parse_ok(&c, "# only a comment\n\n   \t\n", NULL);
	assert_defaults(&c);
	hostcfg_free(&c);
}

/* The example of docs/toolstack.md, verbatim. */
static void test_docs_example(void **state)
{
	hostcfg_t c;

	hostcfg_init(&c);
	parse_ok(&c,
		 "# comments run from '#' to the end of the line\n"
		 "(xend-relocation-server yes)\n"
		 "(xend-relocation-port 8002)\n"
		 "(xend-relocation-address '')\n"
		 "(xend-relocation-hosts-allow '^localhost$ ^localhost\\\\.localdomain$')\n",
		 NULL);
	assert_true(c.relocation_server);
	assert_int_equal(c.relocation_port, 8002);
	assert_string_equal(c.relocation_address, "");
	assert_string_equal(c.hosts_allow_text,
			    "^localhost$ ^localhost\\.localdomain$");
	assert_int_equal(c.n_allow, 2);
	assert_string_equal(c.allow_src[0], "^localhost$");
	assert_string_equal(c.allow_src[1], "^localhost\\.localdomain$");
	hostcfg_free(&c);
	assert_defaults(&c);
}

/* The lines of xend's stock xend-config.sxp. */
static void test_xend_seeds(void **state)
{
	hostcfg_t c;

	hostcfg_init(&c);
	parse_ok(&c, "(xend-relocation-server yes)", NULL);
	assert_true(c.relocation_server);

	parse_ok(&c, "(xend-relocation-hosts-allow '')", NULL);
	assert_string_equal(c.hosts_allow_text, "");
	assert_int_equal(c.n_allow, 0);
	assert_true(match1(&c, "203.0.113.9"));

	parse_ok(&c, "#(xend-relocation-port 8002)\n", NULL);
	assert_defaults(&c);
	parse_ok(&c, "#(xend-relocation-port 9999)\n", NULL);
	assert_int_equal(c.relocation_port, 8002);

	parse_ok(&c, "(xend-relocation-hosts-allow "
		 "'^localhost$ ^localhost\\\\.localdomain$')", NULL);
	assert_int_equal(c.n_allow, 2);
	assert_true(match1(&c, "localhost"));
	assert_true(match1(&c, "localhost.localdomain"));
	assert_false(match1(&c, "localhostx"));
	assert_false(match1(&c, "evil.localhost"));
	assert_false(match1(&c, "localhost.localdomain.evil.org"));
	/* The escaped dot is a literal dot. */
	assert_false(match1(&c, "localhostXlocaldomain"));
	assert_false(match1(&c, "127.0.0.1"));
	hostcfg_free(&c);
}

static void test_allow_patterns(void **state)
{
	const char *names[3] = { NULL, "host.example.org", "alias.other" };
	hostcfg_t c;

	hostcfg_init(&c);
	parse_ok(&c, "(xend-relocation-hosts-allow '^10\\\\.0\\\\.0\\\\.[0-9]+$')",
		 NULL);
	assert_int_equal(c.n_allow, 1);
	assert_string_equal(c.allow_src[0], "^10\\.0\\.0\\.[0-9]+$");
	assert_true(match1(&c, "10.0.0.1"));
	assert_true(match1(&c, "10.0.0.254"));
	assert_false(match1(&c, "10.0.0."));
	assert_false(match1(&c, "10.0.0.1x"));
	assert_false(match1(&c, "110.0.0.1"));
	assert_false(match1(&c, "10.0.1.1"));
	assert_false(match1(&c, "10a0b0c1"));
	assert_false(hostcfg_allow_match(&c, NULL, NULL, 0));

	/* Names: any of them may match; NULL entries are skipped. */
	parse_ok(&c, "(xend-relocation-hosts-allow "
		 "\"^.*\\\\.example\\\\.org$ ^192\\\\.168\\\\.\")", NULL);
	assert_int_equal(c.n_allow, 2);
	assert_true(hostcfg_allow_match(&c, "10.9.9.9", names, 3));
	assert_false(hostcfg_allow_match(&c, "10.9.9.9", names + 2, 1));
	assert_true(hostcfg_allow_match(&c, "192.168.4.4", NULL, 0));
	assert_true(hostcfg_allow_match(&c, NULL, names + 1, 1));
	assert_false(hostcfg_allow_match(&c, "example.org", NULL, 0));

	/* Any white space separates patterns; only white space = all. */
	parse_ok(&c, "(xend-relocation-hosts-allow \"  ^a$\\t^b$\\n ^c$  \")",
		 NULL);
	assert_int_equal(c.n_allow, 3);
	assert_string_equal(c.allow_src[1], "^b$");
	assert_true(match1(&c, "c"));
	assert_false(match1(&c, "d"));
	parse_ok(&c, "(xend-relocation-hosts-allow '  \\t ')", NULL);
	assert_int_equal(c.n_allow, 0);
	assert_true(match1(&c, "anything"));

	/* Extended syntax: alternation and intervals. */
	parse_ok(&c, "(xend-relocation-hosts-allow '^(node[0-9]{1,2}|gw)$')",
		 NULL);
	assert_true(match1(&c, "node7"));
	assert_true(match1(&c, "node42"));
	assert_true(match1(&c, "gw"));
	assert_false(match1(&c, "node123"));

	/* Exactly HOSTCFG_MAX_ALLOW patterns is fine. */
	{
		char text[2048] = "(xend-relocation-hosts-allow '";

		for (int i = 0; i < HOSTCFG_MAX_ALLOW; i++)
			sprintf(text + strlen(text), "^h%d$ ", i);
		strcat(text, "')");
		parse_ok(&c, text, NULL);
		assert_int_equal(c.n_allow, HOSTCFG_MAX_ALLOW);
		assert_true(match1(&c, "h63"));
		assert_false(match1(&c, "h64"));
	}
	hostcfg_free(&c);
}

static void test_values(void **state)
{
	static const char *const yes[] = { "yes", "YES", "Yes", "true",
					   "TRUE", "1", "'yes'", "\"True\"" };
	static const char *const no[] = { "no", "NO", "false", "False", "0",
					  "'no'" };
	char text[8192];
	hostcfg_t c;

	hostcfg_init(&c);
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), "(xend-relocation-server %s)",
			 yes[i]);
		parse_ok(&c, text, NULL);
		assert_true(c.relocation_server);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		snprintf(text, sizeof(text), "(xend-relocation-server yes)\n"
			 "(xend-relocation-server %s)", no[i]);
		parse_ok(&c, text, NULL);
		assert_false(c.relocation_server);
	}

	parse_ok(&c, "(xend-relocation-port 1)", NULL);
	assert_int_equal(c.relocation_port, 1);
	parse_ok(&c, "(xend-relocation-port 65535)", NULL);
	assert_int_equal(c.relocation_port, 65535);
	parse_ok(&c, "(xend-relocation-port '8003')", NULL);
	assert_int_equal(c.relocation_port, 8003);

	parse_ok(&c, "(xend-relocation-address 10.0.0.2)", NULL);
	assert_string_equal(c.relocation_address, "10.0.0.2");
	parse_ok(&c, "(xend-relocation-address 'fe80::1%eth0')", NULL);
	assert_string_equal(c.relocation_address, "fe80::1%eth0");
	memset(text, 0, sizeof(text));
	strcpy(text, "(xend-relocation-address '");
	memset(text + strlen(text), 'a', 255);
	strcat(text, "')");
	parse_ok(&c, text, NULL);
	assert_int_equal(strlen(c.relocation_address), 255);

	parse_ok(&c, "(tern-memory 1)", NULL);
	assert_int_equal(c.memory_mib, 1);
	parse_ok(&c, "(tern-memory 65536)", NULL);
	assert_int_equal(c.memory_mib, 65536);
	parse_ok(&c, "(tern-memory 17592186044415)", NULL);
	assert_true(c.memory_mib == 17592186044415ull);

	parse_ok(&c, "(tern-vmm /opt/tern/bin/tern-vmm)", NULL);
	assert_string_equal(c.vmm_path, "/opt/tern/bin/tern-vmm");
	parse_ok(&c, "(tern-vmm \"/path with space/tern-vmm\")", NULL);
	assert_string_equal(c.vmm_path, "/path with space/tern-vmm");
	memset(text, 0, sizeof(text));
	strcpy(text, "(tern-vmm /");
	memset(text + strlen(text), 'v', 4094);
	strcat(text, ")");
	parse_ok(&c, text, NULL);
	assert_int_equal(strlen(c.vmm_path), 4095);

	parse_ok(&c, "(tern-relocation-timeout 1)", NULL);
	assert_int_equal(c.relocation_timeout_s, 1);
	parse_ok(&c, "(tern-relocation-timeout 3600)", NULL);
	assert_int_equal(c.relocation_timeout_s, 3600);

	/* Every key at once; a later parse starts from the defaults again. */
	parse_ok(&c, "(xend-relocation-server yes)(xend-relocation-port 9000)"
		 "(tern-memory 2048)(tern-relocation-timeout 5)", NULL);
	assert_true(c.relocation_server);
	assert_int_equal(c.relocation_port, 9000);
	assert_int_equal(c.memory_mib, 2048);
	assert_int_equal(c.relocation_timeout_s, 5);
	parse_ok(&c, "(tern-memory 4)", NULL);
	assert_false(c.relocation_server);
	assert_int_equal(c.relocation_port, 8002);
	assert_int_equal(c.relocation_timeout_s, 30);
	hostcfg_free(&c);
}

static void test_strings_and_comments(void **state)
{
	hostcfg_t c;

	hostcfg_init(&c);
	parse_ok(&c, "(tern-vmm 'a\\\\b\\'c\\\"d\\ne\\tf')", NULL);
	assert_string_equal(c.vmm_path, "a\\b'c\"d\ne\tf");
	parse_ok(&c, "(tern-vmm \"it's\")", NULL);
	assert_string_equal(c.vmm_path, "it's");
	parse_ok(&c, "(tern-vmm 'say \"hi\"')", NULL);
	assert_string_equal(c.vmm_path, "say \"hi\"");
	/* '#' inside a string is no comment; after a value it is. */
	parse_ok(&c, "(tern-vmm '/x#y') # (tern-memory 5\n", NULL);
	assert_string_equal(c.vmm_path, "/x#y");
	assert_int_equal(c.memory_mib, 0);
	parse_ok(&c, "(tern-memory # the size\n 12) ", NULL);
	assert_int_equal(c.memory_mib, 12);
	/* Several per line, none per line, spread over lines. */
	parse_ok(&c, "(tern-memory 1)(xend-relocation-port 2)", NULL);
	assert_int_equal(c.memory_mib, 1);
	assert_int_equal(c.relocation_port, 2);
	parse_ok(&c, "(\n  xend-relocation-port\n\n  8005\n)\n", NULL);
	assert_int_equal(c.relocation_port, 8005);
	/* CRLF and a UTF-8 byte order mark. */
	parse_ok(&c, "\xef\xbb\xbf(xend-relocation-server yes)\r\n"
		 "(xend-relocation-port 8010)\r\n", NULL);
	assert_true(c.relocation_server);
	assert_int_equal(c.relocation_port, 8010);
	/* A string over two lines keeps its newline. */
	parse_ok(&c, "(tern-vmm 'a\nb')", NULL);
	assert_string_equal(c.vmm_path, "a\nb");
	/* A quoted key is a key. */
	parse_ok(&c, "('tern-memory' \"7\")", NULL);
	assert_int_equal(c.memory_mib, 7);
	/* UTF-8 in bare words and strings is kept. */
	parse_ok(&c, "(tern-vmm /opt/t\xc3\xa9rn/vmm)", NULL);
	assert_string_equal(c.vmm_path, "/opt/t\xc3\xa9rn/vmm");
	hostcfg_free(&c);
}

static void test_duplicates(void **state)
{
	hostcfg_t c;

	hostcfg_init(&c);
	parse_ok(&c, "(xend-relocation-port 8002)\n(xend-relocation-port 8004)\n"
		 "(xend-relocation-hosts-allow '^a$ ^b$ ^c$')\n"
		 "(xend-relocation-hosts-allow '^d$')\n", NULL);
	assert_int_equal(c.relocation_port, 8004);
	assert_int_equal(c.n_allow, 1);
	assert_string_equal(c.hosts_allow_text, "^d$");
	assert_false(match1(&c, "a"));
	assert_true(match1(&c, "d"));
	/* Back to "all" by a later empty value. */
	parse_ok(&c, "(xend-relocation-hosts-allow '^d$')\n"
		 "(xend-relocation-hosts-allow '')\n", NULL);
	assert_int_equal(c.n_allow, 0);
	assert_true(match1(&c, "a"));
	hostcfg_free(&c);
}

static void test_unknown_keys(void **state)
{
	warns_t w = { 0 };
	hostcfg_t c;

	hostcfg_init(&c);
	parse_ok(&c, "(xend-relocation-port 8006)\n"
		 "\n"
		 "(frobnicate yes)\n"
		 "(xen-api-server ((9363 pam '^localhost$ example\\\\.com$')\n"
		 "                 (unix none)))\n"
		 "(  \n bare-key)\n"
		 "(xend-relocation-ssl (a (b (c d))) e)\n"
		 "(tern-memory 64)\n", &w);
	/* xen-api-server and xend-relocation-ssl are xend's: silent. */
	assert_int_equal(w.n, 2);
	assert_string_equal(w.msg[0], "xc.sxp:3: unknown key 'frobnicate' ignored");
	assert_string_equal(w.msg[1], "xc.sxp:7: unknown key 'bare-key' ignored");
	/* What came before and after is applied. */
	assert_int_equal(c.relocation_port, 8006);
	assert_int_equal(c.memory_mib, 64);

	/* A key with control characters is shown escaped. */
	memset(&w, 0, sizeof(w));
	parse_ok(&c, "('bad\\nkey' 1)", &w);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.msg[0], "xc.sxp:1: unknown key 'bad\\x0akey' ignored");
	hostcfg_free(&c);
}

/* xend's keys tern has no use for: silent, whatever their shape. */
static void test_xend_keys_silent(void **state)
{
	static const char *const keys[] = {
		"xend-port", "xend-http-server", "xend-unix-server",
		"network-script", "vif-script", "dom0-min-mem", "dom0-cpus",
		"enable-dom0-ballooning", "xend-tcp-xmlrpc-server",
		"xend-unix-xmlrpc-server", "xend-relocation-ssl-server",
		"vnc-listen", "vncpasswd", "logfile", "loglevel",
		"total_available_memory",
	};
	char text[256];
	hostcfg_t c;

	hostcfg_init(&c);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(text, sizeof(text), "(%s value)\n(%s)\n(%s (a (b)) c)",
			 keys[i], keys[i], keys[i]);
		parse_ok(&c, text, NULL);	/* fails on any warning */
		assert_defaults(&c);
	}
	hostcfg_free(&c);
}

static void test_big_real_file(void **state)
{
	static const char text[] =
		"# -*- sh -*-\n"
		"\n"
		"#\n"
		"# Xend configuration file.\n"
		"#\n"
		"\n"
		"# This example configuration is appropriate for an installation that\n"
		"# utilizes a bridged network configuration. Access to xend via http\n"
		"# is disabled.\n"
		"\n"
		"# Commented out entries show the default for that entry, unless otherwise\n"
		"# specified.\n"
		"\n"
		"(logfile /var/log/xen/xend.log)\n"
		"(loglevel DEBUG)\n"
		"\n"
		"# The Xen-API server configuration.\n"
		"#\n"
		"#   (xen-api-server ((9363 pam '^localhost$ example\\\\.com$')\n"
		"#                    (unix none)))\n"
		"\n"
		"(xen-api-server ((unix)))\n"
		"\n"
		"#(xend-http-server no)\n"
		"(xend-http-server no)\n"
		"(xend-unix-server yes)\n"
		"(xend-tcp-xmlrpc-server no)\n"
		"(xend-unix-xmlrpc-server yes)\n"
		"#(xend-relocation-server no)\n"
		"(xend-relocation-server yes)\n"
		"(xend-relocation-ssl-server no)\n"
		"\n"
		"#(xend-unix-path /var/lib/xend/xend-socket)\n"
		"\n"
		"# Port xend should use for the HTTP interface, if xend-http-server is set.\n"
		"(xend-port            8000)\n"
		"\n"
		"# Port xend should use for the relocation interface, if xend-relocation-server\n"
		"# is set.\n"
		"#(xend-relocation-port 8002)\n"
		"(xend-relocation-port 8012)\n"
		"\n"
		"# Address xend should listen on for relocation-socket connections, if\n"
		"# xend-relocation-server is set.\n"
		"#(xend-relocation-address '')\n"
		"(xend-relocation-address 192.168.122.10)\n"
		"\n"
		"# The hosts allowed to talk to the relocation port.  If this is empty (the\n"
		"# default), then all connections are allowed.  Otherwise, this\n"
		"# should be a space-separated sequence of regular expressions.\n"
		"#\n"
		"# For example:\n"
		"#  (xend-relocation-hosts-allow '^localhost$ ^.*\\\\.example\\\\.org$')\n"
		"#\n"
		"#(xend-relocation-hosts-allow '')\n"
		"(xend-relocation-hosts-allow '^localhost$ ^localhost\\\\.localdomain$ ^192\\\\.168\\\\.122\\\\.[0-9]+$ ^.*\\\\.lab\\\\.example\\\\.org$')\n"
		"\n"
		"# The limit (in kilobytes) on the size of the console buffer\n"
		"#(console-limit 1024)\n"
		"\n"
		"##\n"
		"# To bridge network traffic, like this:\n"
		"#\n"
		"# dom0: ----------------- bridge -> real eth0 -> the network\n"
		"#                            |\n"
		"# domU: fake eth0 -> vifN.0 -+\n"
		"#\n"
		"# (network-script 'network-bridge netdev=eth1')\n"
		"(network-script 'network-bridge bridge=xenbr0 netdev=eth0')\n"
		"\n"
		"# The script used to control virtual interfaces.\n"
		"(vif-script vif-bridge)\n"
		"\n"
		"# dom0-min-mem is the lowest permissible memory level (in MB) for dom0.\n"
		"(dom0-min-mem 196)\n"
		"\n"
		"# Whether to enable auto-ballooning of dom0 to allow domUs to be created.\n"
		"(enable-dom0-ballooning yes)\n"
		"\n"
		"(total_available_memory 0) \n"
		"\n"
		"# In SMP system, dom0 will use dom0-cpus # of CPUS\n"
		"(dom0-cpus 0)\n"
		"\n"
		"#(enable-dump no)\n"
		"#(vnc-listen '127.0.0.1')\n"
		"(vnc-listen '0.0.0.0')\n"
		"(vncpasswd '')\n"
		"\n"
		"# (keymap 'en-us')\n"
		"(keymap 'en-us')\n"
		"\n"
		"# tern's own settings\n"
		"(tern-memory 6144)        # MiB offered to domains\n"
		"(tern-vmm '/usr/local/libexec/tern/tern-vmm')\n"
		"(tern-relocation-timeout 45)\n";
	warns_t w = { 0 };
	hostcfg_t c;

	hostcfg_init(&c);
	parse_ok(&c, text, &w);
	assert_int_equal(w.n, 0);	/* every key is xend's or tern's */
	assert_true(c.relocation_server);
	assert_int_equal(c.relocation_port, 8012);
	assert_string_equal(c.relocation_address, "192.168.122.10");
	assert_int_equal(c.n_allow, 4);
	assert_int_equal(c.memory_mib, 6144);
	assert_string_equal(c.vmm_path, "/usr/local/libexec/tern/tern-vmm");
	assert_int_equal(c.relocation_timeout_s, 45);
	assert_true(match1(&c, "localhost"));
	assert_true(match1(&c, "192.168.122.77"));
	assert_false(match1(&c, "192.168.123.77"));
	assert_true(match1(&c, "b7.lab.example.org"));
	assert_false(match1(&c, "lab.example.org.evil.net"));
	hostcfg_free(&c);
}

static void test_syntax_errors(void **state)
{
	parse_err("(xend-relocation-server yes)\n"
		  "\n"
		  "(xend-relocation-port 8002\n"
		  "(tern-memory 5)\n",
		  "xc.sxp:3: unbalanced parenthesis: the '(' opened here is "
		  "never closed");
	parse_err("(a (b (c d)\n",
		  "xc.sxp:1: unbalanced parenthesis: the '(' opened here is "
		  "never closed");
	parse_err("(xend-relocation-server yes)\n"
		  "(xend-relocation-port 8002))\n",
		  "xc.sxp:2: unbalanced parenthesis: ')' without a matching "
		  "'('");
	parse_err(")", "xc.sxp:1: unbalanced parenthesis: ')' without a "
		  "matching '('");
	parse_err("(tern-memory 1)\n"
		  "(tern-vmm '/usr/bin/x)\n"
		  "(tern-memory 2)\n"
		  "\n",
		  "xc.sxp:2: unterminated string (the ' opened here is never "
		  "closed)");
	parse_err("\n(tern-vmm \"abc\\\"",
		  "xc.sxp:2: unterminated string (the \" opened here is never "
		  "closed)");
	parse_err("(tern-vmm 'abc\\",
		  "xc.sxp:1: unterminated string (the ' opened here is never "
		  "closed)");
	parse_err("(tern-memory 1)\n\n\nxend-relocation-server yes\n",
		  "xc.sxp:4: 'xend-relocation-server' is not in a list "
		  "(settings are written (KEY VALUE))");
	parse_err("'quoted'", "xc.sxp:1: 'quoted' is not in a list "
		  "(settings are written (KEY VALUE))");
	parse_err("\n()", "xc.sxp:2: empty expression '()' (settings are "
		  "written (KEY VALUE))");
	parse_err("((a) b)", "xc.sxp:1: expected a key, found a list "
		  "(settings are written (KEY VALUE))");
	parse_err("(tern-vmm '\\.')", "xc.sxp:1: unknown escape '\\.' in "
		  "string (a backslash is written '\\\\')");
	parse_err("(xend-relocation-hosts-allow '^localhost\\.localdomain$')",
		  "xc.sxp:1: unknown escape '\\.' in string (a backslash is "
		  "written '\\\\')");
	parse_err("(tern-vmm x)\n(tern-memory \x01)",
		  "xc.sxp:2: invalid character 0x01");
	parse_err("(tern-vmm 'a\x1b b')",
		  "xc.sxp:1: invalid character 0x1b in string");
}

static void test_value_errors(void **state)
{
	parse_err("\n\n(xend-relocation-port)",
		  "xc.sxp:3: (xend-relocation-port) has no value");
	parse_err("(tern-memory\n)", "xc.sxp:1: (tern-memory) has no value");
	parse_err("(xend-relocation-port 8002\n 8003)",
		  "xc.sxp:2: xend-relocation-port takes one value, found 2");
	parse_err("(xend-relocation-port (8002))",
		  "xc.sxp:1: the value of xend-relocation-port must be an "
		  "atom, not a list");
	parse_err("(xend-relocation-server maybe)",
		  "xc.sxp:1: xend-relocation-server must be yes or no, not "
		  "'maybe'");
	parse_err("(xend-relocation-server '')",
		  "xc.sxp:1: xend-relocation-server must be yes or no, not "
		  "''");
	/* A value on another line than its key is reported at its line. */
	parse_err("(xend-relocation-server yes)\n(xend-relocation-port\n"
		  "   0)",
		  "xc.sxp:3: xend-relocation-port must be a port number from "
		  "1 to 65535, not '0'");
	parse_err("(xend-relocation-port 65536)",
		  "xc.sxp:1: xend-relocation-port must be a port number from "
		  "1 to 65535, not '65536'");
	parse_err("(xend-relocation-port -1)", NULL);
	parse_err("(xend-relocation-port +80)", NULL);
	parse_err("(xend-relocation-port 80a)", NULL);
	parse_err("(xend-relocation-port ' 80')", NULL);
	parse_err("(xend-relocation-port 0x50)", NULL);
	parse_err("(xend-relocation-port '')", NULL);
	parse_err("(xend-relocation-port 99999999999999999999999999)",
		  "xc.sxp:1: xend-relocation-port must be a port number from "
		  "1 to 65535, not '99999999999999999999999999'");
	parse_err("(tern-memory 0)",
		  "xc.sxp:1: tern-memory must be a positive number of MiB, "
		  "not '0'");
	parse_err("(tern-memory 17592186044416)", NULL);
	parse_err("(tern-memory 1.5)", NULL);
	parse_err("(tern-memory 2G)", NULL);
	parse_err("(tern-relocation-timeout 0)",
		  "xc.sxp:1: tern-relocation-timeout must be a number of "
		  "seconds from 1 to 3600, not '0'");
	parse_err("(tern-relocation-timeout 3601)", NULL);
	parse_err("(xend-relocation-address 'a b')",
		  "xc.sxp:1: xend-relocation-address 'a b' is not an address");
	{
		char text[8192] = "(xend-relocation-address ";

		memset(text + strlen(text), 'a', 256);
		strcat(text, ")");
		parse_err(text, "xc.sxp:1: xend-relocation-address is longer "
			  "than 255 bytes");
		strcpy(text, "\n(tern-vmm ");
		memset(text + strlen(text), 'a', 4096);
		strcat(text, ")");
		parse_err(text, "xc.sxp:2: tern-vmm is longer than 4095 bytes");
	}
	/* The whole file fails, even when the bad line comes last. */
	parse_err("(xend-relocation-server yes)\n(xend-relocation-port 9)\n"
		  "(xend-relocation-hosts-allow '^a$')\n(tern-memory no)",
		  "xc.sxp:4: tern-memory must be a positive number of MiB, "
		  "not 'no'");
}

static void test_regex_errors(void **state)
{
	char want[512], msg[200];
	regex_t re;
	int rc;

	rc = regcomp(&re, "ab(c", REG_EXTENDED | REG_NOSUB);
	assert_int_not_equal(rc, 0);
	regerror(rc, &re, msg, sizeof(msg));
	snprintf(want, sizeof(want), "xc.sxp:2: invalid regular expression "
		 "'ab(c' in xend-relocation-hosts-allow: %s", msg);
	parse_err("(xend-relocation-server yes)\n"
		  "(xend-relocation-hosts-allow '^ok$ ab(c ^fine$')", want);

	rc = regcomp(&re, "[z-a]", REG_EXTENDED | REG_NOSUB);
	assert_int_not_equal(rc, 0);
	regerror(rc, &re, msg, sizeof(msg));
	snprintf(want, sizeof(want), "xc.sxp:1: invalid regular expression "
		 "'[z-a]' in xend-relocation-hosts-allow: %s", msg);
	parse_err("(xend-relocation-hosts-allow '[z-a]')", want);

	parse_err("(xend-relocation-hosts-allow '*a')", NULL);
	parse_err("(xend-relocation-hosts-allow '^[a-z')", NULL);

	/*
	 * Patterns that would make regcomp() take gigabytes or regexec()
	 * take minutes on a peer's name are refused up front.
	 */
	parse_err("(xend-relocation-hosts-allow 'W++++++++++++++++++++++')",
		  "xc.sxp:1: regular expression 'W++++++++++++++++++++++' in "
		  "xend-relocation-hosts-allow has adjacent repetition "
		  "operators (undefined in POSIX)");
	parse_err("(xend-relocation-hosts-allow '^o**$')", NULL);
	parse_err("(xend-relocation-hosts-allow '^o{2}?$')", NULL);
	parse_err("(xend-relocation-hosts-allow '^()*****$')", NULL);
	/* The same nested in groups: 2^12 copies. */
	parse_err("(xend-relocation-hosts-allow "
		  "'^((((((((((((o)+)+)+)+)+)+)+)+)+)+)+)+$')",
		  "xc.sxp:1: regular expression "
		  "'^((((((((((((o)+)+)+)+)+)+)+)+)+)+)+)+$' in "
		  "xend-relocation-hosts-allow is too complex");
	parse_err("(xend-relocation-hosts-allow '((W{30}){30}){30}')",
		  "xc.sxp:1: regular expression '((W{30}){30}){30}' in "
		  "xend-relocation-hosts-allow is too complex");
	parse_err("(xend-relocation-hosts-allow '(W{200}){200}')", NULL);
	parse_err("(xend-relocation-hosts-allow '^(o*)+$')",
		  "xc.sxp:1: regular expression '^(o*)+$' in "
		  "xend-relocation-hosts-allow repeats with '+' or '{}' "
		  "something that matches the empty string (use '*')");
	parse_err("(xend-relocation-hosts-allow '^(((((o?)+)+)+)+)+$')", NULL);
	parse_err("(xend-relocation-hosts-allow '^((o*){0,9}){0,9}$')", NULL);
	parse_err("(xend-relocation-hosts-allow '^(o|p*)+$')", NULL);
	parse_err("(xend-relocation-hosts-allow '^(o|)+$')", NULL);
	parse_err("(xend-relocation-hosts-allow '^(a?b?){2,}$')", NULL);
	parse_err("(xend-relocation-hosts-allow '^(a|(b|c{99}){99})$')", NULL);
	parse_err("(xend-relocation-hosts-allow '^ok$\n ^((a*)*(a*)*)*\\\\1$')",
		  "xc.sxp:1: regular expression '^((a*)*(a*)*)*\\1$' in "
		  "xend-relocation-hosts-allow uses a back-reference (not "
		  "part of POSIX extended regular expressions)");
	{
		char text[2048] = "(xend-relocation-hosts-allow ";

		memset(text + strlen(text), 'a', 1025);
		strcat(text, ")");
		parse_err(text, NULL);
	}
}

/* Ordinary patterns pass the complexity check. */
static void test_regex_ordinary(void **state)
{
	hostcfg_t c;

	hostcfg_init(&c);
	parse_ok(&c, "(xend-relocation-hosts-allow "
		 "'^([0-9]{1,3}\\\\.){3}[0-9]{1,3}$ ^[]a-z.]+$ "
		 "^[[:alnum:]-]+(\\\\.[[:alnum:]-]+)*\\\\.example\\\\.org$ "
		 "^(W{30}){30}$ a{3,} \\\\( ^[^{]+\\\\{$ ^x[[:digit:]]{2}$')",
		 NULL);
	assert_int_equal(c.n_allow, 8);
	assert_true(match1(&c, "192.168.0.1"));
	assert_true(match1(&c, "a.b]"));
	assert_true(match1(&c, "node-1.rack2.example.org"));
	assert_false(match1(&c, "node_1.example.org"));
	/* Anchored at the start, as xend's re.match(). */
	assert_true(match1(&c, "aaay"));
	assert_false(match1(&c, "Xaaay"));
	assert_true(match1(&c, "(x)"));
	assert_false(match1(&c, "f(x)"));
	assert_true(match1(&c, "ab{"));
	assert_true(match1(&c, "x42"));
	assert_false(match1(&c, "x4"));
	/* Stacking on what never matches "" is fine; so is '*' on it. */
	parse_ok(&c, "(xend-relocation-hosts-allow "
		 "'^(((((o)+)+)+)+)+$ ^((o*)*)*$ ^(o|p*)*$ ^(a?b)+$')",
		 NULL);
	assert_int_equal(c.n_allow, 4);
	assert_true(match1(&c, "abbab"));
	{
		char text[2048] = "(xend-relocation-hosts-allow ";

		memset(text + strlen(text), 'a', 1024);
		strcat(text, ")");
		parse_ok(&c, text, NULL);
		assert_int_equal(c.n_allow, 1);
	}
	hostcfg_free(&c);

	/* One pattern more than the limit. */
	{
		char text[2048] = "\n\n(xend-relocation-hosts-allow '";

		for (int i = 0; i <= HOSTCFG_MAX_ALLOW; i++)
			sprintf(text + strlen(text), "^h%d$ ", i);
		strcat(text, "')");
		parse_err(text, "xc.sxp:3: xend-relocation-hosts-allow has "
			  "more than 64 patterns");
	}
}

/* A parse that fails leaves the defaults, even over a loaded config. */
static void test_error_resets(void **state)
{
	hostcfg_t c;
	char err[256];

	hostcfg_init(&c);
	parse_ok(&c, "(xend-relocation-server yes)(tern-memory 9)"
		 "(xend-relocation-hosts-allow '^a$ ^b$')", NULL);
	assert_int_equal(c.n_allow, 2);
	assert_int_equal(hostcfg_parse(&c, "f", "(xend-relocation-hosts-allow "
				       "'^x$ ^y$')\n(xend-relocation-port 0)",
				       on_warn, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "f:2: xend-relocation-port must be a port "
			    "number from 1 to 65535, not '0'");
	assert_defaults(&c);
	/* No err buffer at all is allowed too. */
	assert_int_equal(hostcfg_parse(&c, "f", "(", on_warn, NULL, NULL, 0),
			 -1);
	assert_defaults(&c);
	hostcfg_free(&c);
}

static void test_nesting_limits(void **state)
{
	size_t n = 10000;
	char *text = malloc(2 * n + 16);
	warns_t w = { 0 };
	hostcfg_t c;

	assert_non_null(text);
	/* 10000 open parentheses, closed or not. */
	memset(text, '(', n);
	text[n] = '\0';
	parse_err(text, "xc.sxp:1: lists nested deeper than 32");
	memset(text + n, ')', n);
	text[2 * n] = '\0';
	parse_err(text, "xc.sxp:1: lists nested deeper than 32");
	/* Spread over lines: the line of the 33rd '('. */
	for (size_t i = 0; i < 40; i++) {
		text[2 * i] = '(';
		text[2 * i + 1] = '\n';
	}
	text[80] = '\0';
	parse_err(text, "xc.sxp:33: lists nested deeper than 32");

	/* 32 levels are fine (an unknown key's value). */
	strcpy(text, "(k ");
	for (int i = 0; i < 31; i++)
		strcat(text, "(");
	for (int i = 0; i < 32; i++)
		strcat(text, ")");
	hostcfg_init(&c);
	parse_ok(&c, text, &w);
	assert_int_equal(w.n, 1);
	/* 33 are not. */
	strcpy(text, "(k ");
	for (int i = 0; i < 32; i++)
		strcat(text, "(");
	for (int i = 0; i < 33; i++)
		strcat(text, ")");
	parse_err(text, "xc.sxp:1: lists nested deeper than 32");
	hostcfg_free(&c);
	free(text);
}

static void test_size_limits(void **state)
{
	size_t big = 2u << 20;
	char *text = malloc(big + 64);
	warns_t w = { 0 };
	hostcfg_t c;

	assert_non_null(text);
	if (!text)
		return;
	hostcfg_init(&c);

	/* An atom of 65536 bytes is the longest. */
	strcpy(text, "(k ");
	memset(text + 3, 'x', 65536);
	strcpy(text + 3 + 65536, ")");
	parse_ok(&c, text, &w);
	assert_int_equal(w.n, 1);
	strcpy(text, "(k '");
	memset(text + 4, 'x', 65537);
	strcpy(text + 4 + 65537, "')");
	parse_err(text, "xc.sxp:1: atom longer than 65536 bytes");
	/* A huge bare atom at the top level. */
	memset(text, 'A', 1000000);
	text[1000000] = '\0';
	parse_err(text, "xc.sxp:1: atom longer than 65536 bytes");
	/* A huge hosts-allow value. */
	strcpy(text, "(xend-relocation-hosts-allow '");
	memset(text + strlen(text), 'h', 200000);
	strcpy(text + 30 + 200000, "')");
	assert_int_equal(strlen("(xend-relocation-hosts-allow '"), 30);
	parse_err(text, "xc.sxp:1: atom longer than 65536 bytes");

	/* 1 MiB of comments is the most; one byte more is refused. */
	memset(text, '\n', 1u << 20);
	text[0] = '#';
	text[1u << 20] = '\0';
	parse_ok(&c, text, NULL);
	memset(text, ' ', big);
	text[big] = '\0';
	parse_err(text, "xc.sxp: too large (1048577 bytes; the limit is "
		  "1048576)");
	hostcfg_free(&c);
	free(text);
}

static void test_garbage(void **state)
{
	static const char bin[] = "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
	char buf[4097];
	hostcfg_t c;
	char err[512];

	hostcfg_init(&c);
	/* Binary: refused with a reason, never a crash. */
	parse_err(bin, "xc.sxp:1: invalid character 0x7f");
	parse_err("(xend-relocation-server yes)\n\xff\xfe\x00", NULL);
	parse_err("(\"\x01\x02\")", NULL);
	parse_err("(tern-vmm \xc3\x28 \x80\x81\x05)", NULL);
	srand(1234);
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(rand() % 4096);
		int rc;

		for (size_t i = 0; i < len; i++) {
			buf[i] = (char)(rand() % 255 + 1);
			/* Sometimes mostly syntax, to reach deeper. */
			if (round & 1)
				buf[i] = "()'\"\\#\n ab1yes"[rand() % 15];
		}
		buf[len] = '\0';
		err[0] = '\0';
		rc = hostcfg_parse(&c, "g", buf, on_warn, &(warns_t){ 0 }, err,
				   sizeof(err));
		if (rc) {
			assert_int_equal(strncmp(err, "g:", 2), 0);
			assert_defaults(&c);
		}
		hostcfg_free(&c);
	}
	/*
	 * Random bytes not starting with a comment or a list are refused
	 * (with '#' and no newline, the whole of it is one comment).
	 */
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < 512; i++)
			buf[i] = (char)(rand() % 255 + 1);
		buf[0] = 'x';
		buf[512] = '\0';
		assert_int_equal(hostcfg_parse(&c, "g", buf, on_warn,
					       &(warns_t){ 0 }, err,
					       sizeof(err)), -1);
	}
	hostcfg_free(&c);
}

/* len 0: data is a C string. */
static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (!len)
		len = strlen(data);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_load(void **state)
{
	char dir[] = "/tmp/test_hostcfg.XXXXXX";
	char path[256], want[512], err[512];
	warns_t w = { 0 };
	hostcfg_t c;
	char *big;

	assert_non_null(mkdtemp(dir));
	hostcfg_init(&c);

	snprintf(path, sizeof(path), "%s/missing.sxp", dir);
	errno = 0;
	assert_int_equal(hostcfg_load(&c, path, on_warn, &w, err,
				      sizeof(err)), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(want, sizeof(want), "cannot open %s: %s", path,
		 strerror(ENOENT));
	assert_string_equal(err, want);
	assert_defaults(&c);

	/* A directory is not a config. */
	assert_int_equal(hostcfg_load(&c, dir, on_warn, &w, err, sizeof(err)),
			 -1);
	snprintf(want, sizeof(want), "%s: not a regular file", dir);
	assert_string_equal(err, want);

	snprintf(path, sizeof(path), "%s/xend-config.sxp", dir);
	write_file(path, "(xend-relocation-server yes)\n(what ever)\n"
		   "(xend-relocation-hosts-allow '^10\\\\.')\n", 0);
	assert_int_equal(hostcfg_load(&c, path, on_warn, &w, err,
				      sizeof(err)), 0);
	assert_true(c.relocation_server);
	assert_int_equal(c.n_allow, 1);
	assert_int_equal(w.n, 1);
	snprintf(want, sizeof(want), "%s:2: unknown key 'what' ignored", path);
	assert_string_equal(w.msg[0], want);

	/* Errors name the file and line. */
	write_file(path, "(xend-relocation-server yes)\n(tern-memory x)\n", 0);
	assert_int_equal(hostcfg_load(&c, path, on_warn, &w, err,
				      sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: tern-memory must be a positive "
		 "number of MiB, not 'x'", path);
	assert_string_equal(err, want);
	assert_defaults(&c);

	/* A NUL byte is refused (a parse of the C string would stop there). */
	write_file(path, "(tern-memory 5)\n\0(tern-memory 6)\n", 33);
	assert_int_equal(hostcfg_load(&c, path, on_warn, &w, err,
				      sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: NUL byte in file", path);
	assert_string_equal(err, want);
	write_file(path, "(tern-vmm 'a\0b')", 16);
	assert_int_equal(hostcfg_load(&c, path, on_warn, &w, err,
				      sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: NUL byte in string", path);
	assert_string_equal(err, want);

	/* Too large. */
	big = malloc((1u << 20) + 1);
	assert_non_null(big);
	memset(big, '\n', (1u << 20) + 1);
	write_file(path, big, (1u << 20) + 1);
	assert_int_equal(hostcfg_load(&c, path, on_warn, &w, err,
				      sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: too large (1048577 bytes; the "
		 "limit is 1048576)", path);
	assert_string_equal(err, want);
	write_file(path, big, 1u << 20);
	assert_int_equal(hostcfg_load(&c, path, on_warn, &w, err,
				      sizeof(err)), 0);
	free(big);

	/* An empty file is the defaults. */
	write_file(path, "", 0);
	assert_int_equal(hostcfg_load(&c, path, on_warn, &w, err,
				      sizeof(err)), 0);
	assert_defaults(&c);

	unlink(path);
	rmdir(dir);
	hostcfg_free(&c);
}

static bool peer4(const hostcfg_t *c, const char *ip, char *out, size_t len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(40000) };

	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return hostcfg_allow_peer(c, (struct sockaddr *)&sin, sizeof(sin),
				  out, len);
}

static bool peer6(const hostcfg_t *c, const char *ip, char *out, size_t len)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_port = htons(40000) };

	assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	return hostcfg_allow_peer(c, (struct sockaddr *)&sin6, sizeof(sin6),
				  out, len);
}

/* What reverse DNS says about ip here; "" when nothing. */
static void reverse_name(const char *ip, char *name, size_t len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	inet_pton(AF_INET, ip, &sin.sin_addr);
	if (getnameinfo((struct sockaddr *)&sin, sizeof(sin), name,
			(socklen_t)len, NULL, 0, NI_NAMEREQD))
		name[0] = '\0';
}

static void test_allow_peer(void **state)
{
	char addr[INET6_ADDRSTRLEN + 8], name[NI_MAXHOST];
	hostcfg_t c;

	hostcfg_init(&c);
	/* No patterns: every peer, and the address is still given. */
	assert_true(peer4(&c, "127.0.0.1", addr, sizeof(addr)));
	assert_string_equal(addr, "127.0.0.1");

	parse_ok(&c, "(xend-relocation-hosts-allow '^127\\\\.0\\\\.0\\\\.1$')",
		 NULL);
	assert_true(peer4(&c, "127.0.0.1", addr, sizeof(addr)));
	assert_false(peer4(&c, "127.0.0.2", addr, sizeof(addr)));
	assert_string_equal(addr, "127.0.0.2");
	/* An IPv4-mapped IPv6 peer is shown and matched as IPv4. */
	assert_true(peer6(&c, "::ffff:127.0.0.1", addr, sizeof(addr)));
	assert_string_equal(addr, "127.0.0.1");
	assert_false(peer6(&c, "::ffff:127.0.0.2", addr, sizeof(addr)));
	assert_string_equal(addr, "127.0.0.2");
	/* A plain IPv6 peer. */
	assert_false(peer6(&c, "::1", addr, sizeof(addr)));
	assert_string_equal(addr, "::1");
	parse_ok(&c, "(xend-relocation-hosts-allow '^::1$ ^fd00:')", NULL);
	assert_true(peer6(&c, "::1", addr, sizeof(addr)));
	assert_true(peer6(&c, "fd00::17", NULL, 0));
	assert_false(peer4(&c, "10.0.0.1", addr, sizeof(addr)));

	/* A tiny or missing buffer for the address is fine. */
	parse_ok(&c, "(xend-relocation-hosts-allow '^10\\\\.')", NULL);
	assert_true(peer4(&c, "10.200.0.1", addr, 4));
	assert_string_equal(addr, "10.");
	assert_true(peer4(&c, "10.200.0.1", NULL, 0));

	/* A bad socket address: nobody, unless everybody. */
	{
		struct sockaddr_in sin = { .sin_family = AF_INET };

		assert_false(hostcfg_allow_peer(&c, (struct sockaddr *)&sin, 2,
						addr, sizeof(addr)));
		assert_string_equal(addr, "unknown");
		assert_false(hostcfg_allow_peer(&c, NULL, 0, addr,
						sizeof(addr)));
		hostcfg_free(&c);
		assert_true(hostcfg_allow_peer(&c, (struct sockaddr *)&sin, 2,
					       addr, sizeof(addr)));
	}

	/*
	 * By name: only when this host's resolver names 127.0.0.1 (usually
	 * "localhost" from /etc/hosts); nothing is invented otherwise.
	 */
	reverse_name("127.0.0.1", name, sizeof(name));
	parse_ok(&c, "(xend-relocation-hosts-allow '^localhost$')", NULL);
	if (!strcmp(name, "localhost"))
		assert_true(peer4(&c, "127.0.0.1", addr, sizeof(addr)));
	else
		assert_false(peer4(&c, "127.0.0.1", addr, sizeof(addr)));
	/* A name that is only a pattern for names never matches an address. */
	parse_ok(&c, "(xend-relocation-hosts-allow '^no-such-host\\\\.invalid$')",
		 NULL);
	assert_false(peer4(&c, "127.0.0.1", addr, sizeof(addr)));
	assert_string_equal(addr, "127.0.0.1");
	hostcfg_free(&c);
}

static void test_null_warn(void **state)
{
	hostcfg_t c;
	char err[128];

	/* Without a callback the warning goes to the log, not nowhere. */
	hostcfg_init(&c);
	assert_int_equal(hostcfg_parse(&c, "n", "(unknown-to-tern 1)", NULL,
				       NULL, err, sizeof(err)), 0);
	assert_int_equal(hostcfg_parse(&c, NULL, "(tern-memory 0)", NULL,
				       NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "(config):1: tern-memory must be a positive "
			    "number of MiB, not '0'");
	hostcfg_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_docs_example),
		cmocka_unit_test(test_xend_seeds),
		cmocka_unit_test(test_allow_patterns),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_strings_and_comments),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_xend_keys_silent),
		cmocka_unit_test(test_big_real_file),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_regex_errors),
		cmocka_unit_test(test_regex_ordinary),
		cmocka_unit_test(test_error_resets),
		cmocka_unit_test(test_nesting_limits),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_allow_peer),
		cmocka_unit_test(test_null_warn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
