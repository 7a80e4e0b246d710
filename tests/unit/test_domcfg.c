// SPDX-License-Identifier: MIT
/*
 * xm domain configs (docs/toolstack.md, "Domain config"): the Python subset
 * (quoting, escapes, lists, references, comments), every key's checks,
 * every error with its line and key, warnings, and hostile text that must
 * end in a one-line error, never a crash or a hang.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ternd/domcfg.h"

/* ---- helpers ---- */

#define N_WARN 32

struct warns {
	unsigned n;
	char msg[N_WARN][512];
};

static void collect(void *opaque, const char *msg)
{
	struct warns *w = opaque;

	/* A warning is one line, whatever the text was. */
	assert_null(strchr(msg, '\n'));
	if (w && w->n < N_WARN)
		snprintf(w->msg[w->n++], sizeof(w->msg[0]), "%s", msg);
}

static void parse_ok(domcfg_t *d, const char *text, struct warns *w)
{
	char err[512] = "";
	int ret = domcfg_parse(d, "t.cfg", text, collect, w, err, sizeof(err));

	if (ret)
		print_message("unexpected error: %s\n", err);
	assert_int_equal(ret, 0);
}

static void expect_err(const char *text, const char *want)
{
	domcfg_t d;
	char err[512] = "";
	int ret = domcfg_parse(&d, "t.cfg", text, collect, NULL, err,
			       sizeof(err));

	if (ret != -1 || strcmp(err, want))
		print_message("text: %s\ngot:  %s\nwant: %s\n", text, err,
			      want);
	assert_int_equal(ret, -1);
	assert_string_equal(err, want);
}

/* Any outcome but a crash; an error is one non-empty line. */
static void parse_any(const char *text)
{
	domcfg_t d;
	char err[512] = "";

	if (domcfg_parse(&d, "fuzz.cfg", text, collect, NULL, err,
			 sizeof(err)) == 0) {
		free(domcfg_cmdline(&d));
		domcfg_free(&d);
		return;
	}
	assert_true(err[0] != '\0');
	assert_null(strchr(err, '\n'));
	assert_memory_equal(err, "fuzz.cfg", 8);
}

static char *cat(const char *a, const char *b)
{
	char *s;

	assert_true(asprintf(&s, "%s%s", a, b) >= 0);
	return s;
}

/* Two lines that make a config valid, so a test's line is line 3. */
#define BASE "name = \"vm\"\nmemory = 64\n"

static void expect_base_err(const char *tail, const char *want)
{
	char *text = cat(BASE, tail);

	expect_err(text, want);
	free(text);
}

static void expect_base_ok(const char *tail, domcfg_t *d, struct warns *w)
{
	char *text = cat(BASE, tail);

	parse_ok(d, text, w);
	free(text);
}

/* ---- the configs of the documents ---- */

static const char seed_vm1[] =
	"# -*- mode: python; -*-\n"
	"# configuration name:\n"
	"name = \"vm1\"\n"
	"# usable ram:\n"
	"memory = 256\n"
	"# kernel und initrd:\n"
	"kernel = \"/boot/vmlinuz-xen\"\n"
	"ramdisk = \"/boot/initrd-xen\"\n"
	"# boot device:\n"
	"root = \"/dev/hda1\"\n"
	"# boot to run level:\n"
	"extra = \"3\"\n"
	"# network interface:\n"
	"vif = [ 'mac=aa:cc:00:00:00:01, bridge=xenbr0' ]\n"
	"hostname = name\n"
	"# storage devices:\n"
	"disk = [ 'phy:xen/lv_vm1,hda1,w' ]\n";

static const char doc_example[] =
	"name = \"vm1\"\n"
	"memory = 256\n"
	"vcpus = 1\n"
	"kernel = \"/var/lib/tern/guest/Image\"\n"
	"ramdisk = \"/var/lib/tern/guest/initrd.img\"\n"
	"root = \"/dev/vda\"\n"
	"extra = \"tern.ip=10.0.0.10/24\"\n"
	"disk = [ 'file:/srv/tern/vm1.img,vda,w' ]\n"
	"vif = [ 'mac=aa:cc:00:00:00:01, bridge=ternbr0' ]\n"
	"on_poweroff = \"destroy\"\n"
	"on_reboot = \"restart\"\n"
	"on_crash = \"restart\"\n";

static void test_seed_vm1(void **state)
{
	static const uint8_t mac[6] = { 0xaa, 0xcc, 0, 0, 0, 1 };
	struct warns w = { 0 };
	domcfg_t d;
	char *cmd;

	parse_ok(&d, seed_vm1, &w);
	assert_string_equal(d.name, "vm1");
	assert_int_equal(d.memory_mib, 256);
	assert_int_equal(d.vcpus, 1);
	assert_string_equal(d.kernel, "/boot/vmlinuz-xen");
	assert_string_equal(d.ramdisk, "/boot/initrd-xen");
	assert_string_equal(d.root, "/dev/hda1");
	assert_string_equal(d.extra, "3");
	assert_int_equal(d.n_vifs, 1);
	assert_true(d.vifs[0].has_mac);
	assert_memory_equal(d.vifs[0].mac, mac, 6);
	assert_string_equal(d.vifs[0].bridge, "xenbr0");
	assert_int_equal(d.n_disks, 1);
	assert_string_equal(d.disks[0].path, "/dev/xen/lv_vm1");
	assert_string_equal(d.disks[0].vdev, "hda1");
	assert_false(d.disks[0].readonly);
	assert_int_equal(d.on_poweroff, DOMCFG_DESTROY);
	assert_int_equal(d.on_reboot, DOMCFG_RESTART);
	assert_int_equal(d.on_crash, DOMCFG_RESTART);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.msg[0], "t.cfg:15: key 'hostname' ignored");
	cmd = domcfg_cmdline(&d);
	assert_string_equal(cmd, "root=/dev/hda1 3");
	free(cmd);
	domcfg_free(&d);
	/* Freeing twice is harmless. */
	domcfg_free(&d);
}

static void test_doc_example(void **state)
{
	struct warns w = { 0 };
	domcfg_t d;
	char *cmd;

	parse_ok(&d, doc_example, &w);
	assert_int_equal(w.n, 0);
	assert_string_equal(d.name, "vm1");
	assert_int_equal(d.memory_mib, 256);
	assert_int_equal(d.vcpus, 1);
	assert_string_equal(d.kernel, "/var/lib/tern/guest/Image");
	assert_string_equal(d.ramdisk, "/var/lib/tern/guest/initrd.img");
	assert_int_equal(d.n_disks, 1);
	assert_string_equal(d.disks[0].path, "/srv/tern/vm1.img");
	assert_string_equal(d.disks[0].vdev, "vda");
	assert_false(d.disks[0].readonly);
	assert_int_equal(d.n_vifs, 1);
	assert_string_equal(d.vifs[0].bridge, "ternbr0");
	assert_int_equal(d.on_poweroff, DOMCFG_DESTROY);
	assert_int_equal(d.on_reboot, DOMCFG_RESTART);
	assert_int_equal(d.on_crash, DOMCFG_RESTART);
	cmd = domcfg_cmdline(&d);
	assert_string_equal(cmd, "root=/dev/vda tern.ip=10.0.0.10/24");
	free(cmd);
	domcfg_free(&d);
}

static void test_minimal_defaults(void **state)
{
	domcfg_t d;
	char *cmd;

	parse_ok(&d, "name='a'\nmemory=16", NULL);
	assert_string_equal(d.name, "a");
	assert_int_equal(d.memory_mib, 16);
	assert_int_equal(d.vcpus, 1);
	assert_null(d.kernel);
	assert_null(d.ramdisk);
	assert_null(d.root);
	assert_null(d.extra);
	assert_int_equal(d.n_disks, 0);
	assert_int_equal(d.n_vifs, 0);
	assert_int_equal(d.on_poweroff, DOMCFG_DESTROY);
	assert_int_equal(d.on_reboot, DOMCFG_RESTART);
	assert_int_equal(d.on_crash, DOMCFG_RESTART);
	cmd = domcfg_cmdline(&d);
	assert_string_equal(cmd, "");
	free(cmd);
	domcfg_free(&d);
}

/* ---- the Python subset ---- */

static void test_strings(void **state)
{
	domcfg_t d;

	/* Escapes, as Python reads them (unknown ones keep the backslash). */
	expect_base_ok("extra = 'a\\'b \"c\" \\\\ \\x41\\101 \\d'\n", &d, NULL);
	assert_string_equal(d.extra, "a'b \"c\" \\ AA \\d");
	domcfg_free(&d);
	/* Adjacent literals concatenate; '#' inside a string is no comment. */
	expect_base_ok("extra = \"a#b\" 'c' \"\"\"d\"\"\" # comment 'x'\n", &d,
		       NULL);
	assert_string_equal(d.extra, "a#bcd");
	domcfg_free(&d);
	/* Raw strings keep backslashes; u'' is a plain string. */
	expect_base_ok("root = r'/dev/\\x'\nextra = u'x=1'\n", &d, NULL);
	assert_string_equal(d.root, "/dev/\\x");
	assert_string_equal(d.extra, "x=1");
	domcfg_free(&d);
	/* Backslash-newline inside a literal continues it. */
	expect_base_ok("extra = 'a \\\nb'\nroot = '/r'\n", &d, NULL);
	assert_string_equal(d.extra, "a b");
	domcfg_free(&d);
	/* A string of exactly the limit. */
	{
		char *t = malloc(4096 + 32);

		strcpy(t, "extra = '");
		memset(t + 9, 'x', 4096);
		strcpy(t + 9 + 4096, "'\n");
		expect_base_ok(t, &d, NULL);
		assert_int_equal(strlen(d.extra), 4096);
		domcfg_free(&d);
		free(t);
	}
}

static void test_triple_quotes(void **state)
{
	domcfg_t d;

	/* A triple-quoted string spans lines and may hold single quotes;
	 * line numbers after it still count. */
	expect_err("name = '''vm'''\ndesc = \"\"\"one 'two'\n\"\n\"\"\"\n"
		   "memory = 1\n",
		   "t.cfg:5: key 'memory': 1 MiB is out of range (16 to 65536)");
	expect_base_ok("kernel = '''/k'''\nroot = \"\"\"/dev/vda\"\"\"\n", &d,
		       NULL);
	assert_string_equal(d.kernel, "/k");
	assert_string_equal(d.root, "/dev/vda");
	domcfg_free(&d);
	/* A docstring at the top of the file is a statement with no effect. */
	parse_ok(&d, "\"\"\"A domain.\n\nMore.\n\"\"\"\nname = 'x'\nmemory = 20\n",
		 NULL);
	assert_string_equal(d.name, "x");
	domcfg_free(&d);
}

static void test_numbers(void **state)
{
	domcfg_t d;

	expect_base_ok("memory = 0x100\n", &d, NULL);
	assert_int_equal(d.memory_mib, 256);
	domcfg_free(&d);
	/* xm takes int("512") too. */
	expect_base_ok("memory = \"512\"\nvcpus = '1'\n", &d, NULL);
	assert_int_equal(d.memory_mib, 512);
	domcfg_free(&d);
	expect_base_ok("memory = 65536\nvcpus = True\n", &d, NULL);
	assert_int_equal(d.memory_mib, 65536);
	assert_int_equal(d.vcpus, 1);
	domcfg_free(&d);
}

static void test_lists(void **state)
{
	static const char text[] =
		BASE
		"disk = [\n"
		"    'file:/a.img,xvda,w',   # the root\n"
		"    # a comment line inside\n"
		"    \"tap:aio:/b.img,\" 'vdb,r',\n"
		"\n"
		"    '''tap2:aio:/c.img,sdc,ro''',\n"
		"    'phy:/dev/sdz,ioemu:hdd2,rw',\n"
		"    ' file:/e.img , vdz15 , r ',\n"
		"]\n"
		"vif = [ '', \"bridge=br1\",\n"
		"        '  mac = 02:00:00:00:00:AB ,  bridge = br2  ', ]\n"
		"on_crash = 'preserve'; on_reboot = 'destroy';\n";
	domcfg_t d;

	parse_ok(&d, text, NULL);
	assert_int_equal(d.n_disks, 5);
	assert_string_equal(d.disks[0].path, "/a.img");
	assert_string_equal(d.disks[0].vdev, "xvda");
	assert_false(d.disks[0].readonly);
	assert_string_equal(d.disks[1].path, "/b.img");
	assert_string_equal(d.disks[1].vdev, "vdb");
	assert_true(d.disks[1].readonly);
	assert_string_equal(d.disks[2].path, "/c.img");
	assert_string_equal(d.disks[2].vdev, "sdc");
	assert_true(d.disks[2].readonly);
	assert_string_equal(d.disks[3].path, "/dev/sdz");
	assert_string_equal(d.disks[3].vdev, "hdd2");
	assert_false(d.disks[3].readonly);
	assert_string_equal(d.disks[4].path, "/e.img");
	assert_string_equal(d.disks[4].vdev, "vdz15");
	assert_true(d.disks[4].readonly);
	assert_int_equal(d.n_vifs, 3);
	assert_false(d.vifs[0].has_mac);
	assert_string_equal(d.vifs[0].bridge, "");
	assert_false(d.vifs[1].has_mac);
	assert_string_equal(d.vifs[1].bridge, "br1");
	assert_true(d.vifs[2].has_mac);
	assert_int_equal(d.vifs[2].mac[0], 2);
	assert_int_equal(d.vifs[2].mac[5], 0xab);
	assert_string_equal(d.vifs[2].bridge, "br2");
	assert_int_equal(d.on_crash, DOMCFG_PRESERVE);
	assert_int_equal(d.on_reboot, DOMCFG_DESTROY);
	domcfg_free(&d);
	/* Empty lists. */
	expect_base_ok("disk = []\nvif = [\n]\n", &d, NULL);
	assert_int_equal(d.n_disks, 0);
	assert_int_equal(d.n_vifs, 0);
	domcfg_free(&d);
	/* Up to the limits. */
	expect_base_ok("disk = ['file:/1,vda,w', 'file:/2,vdb,w', "
		       "'file:/3,vdc,w', 'file:/4,vdd,w', 'file:/5,vde,w', "
		       "'file:/6,vdf,w', 'file:/7,vdg,w', 'file:/8,vdh,w']\n"
		       "vif = ['', '', '', '', '', '', '', '']\n",
		       &d, NULL);
	assert_int_equal(d.n_disks, DOMCFG_MAX_DISKS);
	assert_int_equal(d.n_vifs, DOMCFG_MAX_VIFS);
	assert_string_equal(d.disks[7].path, "/8");
	domcfg_free(&d);
}

static void test_references(void **state)
{
	struct warns w = { 0 };
	domcfg_t d;

	/* A name copies the value the key has at that point (Python). */
	parse_ok(&d,
		 "n = 'first'\nname = n\nn = 'second'\n"
		 "mem = 300\nmemory = mem\n"
		 "disks = [ 'file:/x,vda,r' ]\ndisk = disks\n"
		 "hostname = name\n",
		 &w);
	assert_string_equal(d.name, "first");
	assert_int_equal(d.memory_mib, 300);
	assert_int_equal(d.n_disks, 1);
	assert_true(d.disks[0].readonly);
	assert_int_equal(w.n, 4);
	assert_string_equal(w.msg[0], "t.cfg:3: unknown key 'n' ignored");
	assert_string_equal(w.msg[1], "t.cfg:4: unknown key 'mem' ignored");
	assert_string_equal(w.msg[2], "t.cfg:6: unknown key 'disks' ignored");
	assert_string_equal(w.msg[3], "t.cfg:8: key 'hostname' ignored");
	domcfg_free(&d);
	/* None and "" leave optional keys unset. */
	expect_base_ok("kernel = None\nramdisk = ''\nroot = \"\"\nextra = None\n",
		       &d, NULL);
	assert_null(d.kernel);
	assert_null(d.ramdisk);
	assert_null(d.root);
	assert_null(d.extra);
	domcfg_free(&d);
}

static void test_last_wins(void **state)
{
	struct warns w = { 0 };
	domcfg_t d;

	parse_ok(&d,
		 "name = 'a'\nmemory = 8\nextra = 'x'\nmemory = 128\n"
		 "name = 'b'\ndisk = ['file:/a,vda,w']\ndisk = []\n"
		 "foo = 1\nfoo = 2\n",
		 &w);
	assert_string_equal(d.name, "b");
	assert_int_equal(d.memory_mib, 128);
	assert_int_equal(d.n_disks, 0);
	/* One warning per key, naming its last assignment. */
	assert_int_equal(w.n, 1);
	assert_string_equal(w.msg[0], "t.cfg:9: unknown key 'foo' ignored");
	domcfg_free(&d);
}

static void test_layout(void **state)
{
	domcfg_t d;

	/* Semicolons, CRLF, blank lines, indentation, continuation lines,
	 * comments everywhere. */
	parse_ok(&d,
		 "# head\r\n\r\nname='w' ; memory = 32 # c\r\n"
		 "   root = \\\n  '/dev/vda'\r\n"
		 "extra = 'a' \\\n 'b';\n#",
		 NULL);
	assert_string_equal(d.name, "w");
	assert_int_equal(d.memory_mib, 32);
	assert_string_equal(d.root, "/dev/vda");
	assert_string_equal(d.extra, "ab");
	domcfg_free(&d);
}

static void test_names(void **state)
{
	char name64[80], *text;
	domcfg_t d;

	expect_base_ok("name = 'A-z_0.9'\n", &d, NULL);
	assert_string_equal(d.name, "A-z_0.9");
	domcfg_free(&d);
	memset(name64, 'n', 64);
	name64[64] = '\0';
	assert_true(asprintf(&text, "memory = 64\nname = '%s'\n", name64) > 0);
	parse_ok(&d, text, NULL);
	assert_string_equal(d.name, name64);
	domcfg_free(&d);
	free(text);
	assert_true(asprintf(&text, "memory = 64\nname = '%sn'\n", name64) > 0);
	expect_err(text,
		   "t.cfg:2: key 'name': 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...' is not a valid domain name (1 to 64 of A-Z a-z 0-9 _ . -, not starting with . or -)");
	free(text);
}

static void test_actions(void **state)
{
	struct warns w = { 0 };
	domcfg_t d;

	expect_base_ok("on_poweroff = 'coredump-destroy'\n"
		       "on_reboot = 'rename-restart'\n"
		       "on_crash = 'coredump-restart'\n",
		       &d, &w);
	assert_int_equal(d.on_poweroff, DOMCFG_DESTROY);
	assert_int_equal(d.on_reboot, DOMCFG_RESTART);
	assert_int_equal(d.on_crash, DOMCFG_RESTART);
	assert_int_equal(w.n, 3);
	assert_string_equal(w.msg[0],
			    "t.cfg:3: key 'on_poweroff': 'coredump-destroy' taken as 'destroy'");
	assert_string_equal(w.msg[1],
			    "t.cfg:4: key 'on_reboot': 'rename-restart' taken as 'restart'");
	assert_string_equal(w.msg[2],
			    "t.cfg:5: key 'on_crash': 'coredump-restart' taken as 'restart'");
	domcfg_free(&d);
	expect_base_ok("on_poweroff = 'preserve'\n", &d, NULL);
	assert_int_equal(d.on_poweroff, DOMCFG_PRESERVE);
	domcfg_free(&d);
	assert_string_equal(domcfg_action_name(DOMCFG_DESTROY), "destroy");
	assert_string_equal(domcfg_action_name(DOMCFG_RESTART), "restart");
	assert_string_equal(domcfg_action_name(DOMCFG_PRESERVE), "preserve");
}

static void test_warnings(void **state)
{
	struct warns w = { 0 };
	domcfg_t d;

	expect_base_ok("hostname = 'h'\nuuid = '0-1'\nbuilder = 'linux'\n"
		       "bootloader = '/usr/bin/pygrub'\nbootargs = ''\n"
		       "maxmem = 512\ncpus = '0-3'\nvfb = [ 'type=vnc' ]\n"
		       "vnc = 1\nsdl = 0\nserial = 'pty'\nlocaltime = 0\n"
		       "device_model = '/usr/lib/xen/bin/qemu-dm'\n"
		       "pci = [ '01:00.0' ]\non_xend_start = 'ignore'\n"
		       "on_xend_stop = 'ignore'\nfrobnicate = None\n"
		       "vif = [ 'ip=10.0.0.1, script=vif-bridge, vifname=v, "
		       "model=e1000, type=ioemu, rate=10Mb/s' ]\n",
		       &d, &w);
	assert_int_equal(w.n, 23);
	assert_string_equal(w.msg[0], "t.cfg:3: key 'hostname' ignored");
	assert_string_equal(w.msg[1], "t.cfg:4: key 'uuid' ignored");
	assert_string_equal(w.msg[15], "t.cfg:18: key 'on_xend_stop' ignored");
	assert_string_equal(w.msg[16],
			    "t.cfg:19: unknown key 'frobnicate' ignored");
	assert_string_equal(w.msg[17], "t.cfg:20: key 'vif': 'ip' ignored");
	assert_string_equal(w.msg[22], "t.cfg:20: key 'vif': 'rate' ignored");
	assert_int_equal(d.n_vifs, 1);
	domcfg_free(&d);
	/* No callback: warnings are dropped. */
	{
		char err[128];

		assert_int_equal(domcfg_parse(&d, "t.cfg", BASE "foo = 1\n",
					      NULL, NULL, err, sizeof(err)), 0);
		domcfg_free(&d);
	}
}

static void test_cmdline(void **state)
{
	domcfg_t d;
	char *cmd;

	expect_base_ok("root = '/dev/vda'\n", &d, NULL);
	cmd = domcfg_cmdline(&d);
	assert_string_equal(cmd, "root=/dev/vda");
	free(cmd);
	domcfg_free(&d);
	expect_base_ok("extra = '  console=hvc0 quiet '\n", &d, NULL);
	cmd = domcfg_cmdline(&d);
	assert_string_equal(cmd, "console=hvc0 quiet");
	free(cmd);
	domcfg_free(&d);
	expect_base_ok("root = ' /dev/vda1 '\nextra = ' 3'\n", &d, NULL);
	cmd = domcfg_cmdline(&d);
	assert_string_equal(cmd, "root=/dev/vda1 3");
	free(cmd);
	domcfg_free(&d);
	expect_base_ok("root = '  '\nextra = ' '\n", &d, NULL);
	cmd = domcfg_cmdline(&d);
	assert_string_equal(cmd, "");
	free(cmd);
	domcfg_free(&d);
}

/* ---- errors ---- */

#define UNSUP "unsupported value (expected a string, a number or a list of strings)"

static void test_errors_required(void **state)
{
	expect_err("", "t.cfg: key 'name' is missing");
	expect_err("# nothing\n\n", "t.cfg: key 'name' is missing");
	expect_err("memory = 64\n", "t.cfg: key 'name' is missing");
	expect_err("name = 'a'\n", "t.cfg: key 'memory' is missing");
	expect_err("name = None\nmemory = 64\n",
		   "t.cfg:1: key 'name': expected a string");
	expect_err("name = 5\nmemory = 64\n",
		   "t.cfg:1: key 'name': expected a string");
	expect_base_err("name = ''\n",
			"t.cfg:3: key 'name': '' is not a valid domain name (1 to 64 of A-Z a-z 0-9 _ . -, not starting with . or -)");
	expect_base_err("name = 'a b'\n",
			"t.cfg:3: key 'name': 'a b' is not a valid domain name (1 to 64 of A-Z a-z 0-9 _ . -, not starting with . or -)");
	expect_base_err("name = '-a'\n",
			"t.cfg:3: key 'name': '-a' is not a valid domain name (1 to 64 of A-Z a-z 0-9 _ . -, not starting with . or -)");
	expect_base_err("name = '.a'\n",
			"t.cfg:3: key 'name': '.a' is not a valid domain name (1 to 64 of A-Z a-z 0-9 _ . -, not starting with . or -)");
	expect_base_err("name = 'a/b'\n",
			"t.cfg:3: key 'name': 'a/b' is not a valid domain name (1 to 64 of A-Z a-z 0-9 _ . -, not starting with . or -)");
	/* Control characters are not echoed into the message. */
	expect_base_err("name = 'a\\nb\\x1b'\n",
			"t.cfg:3: key 'name': 'a?b?' is not a valid domain name (1 to 64 of A-Z a-z 0-9 _ . -, not starting with . or -)");
}

static void test_errors_memory_vcpus(void **state)
{
	expect_base_err("memory = 8\n",
			"t.cfg:3: key 'memory': 8 MiB is out of range (16 to 65536)");
	expect_base_err("memory = 15\n",
			"t.cfg:3: key 'memory': 15 MiB is out of range (16 to 65536)");
	expect_base_err("memory = 65537\n",
			"t.cfg:3: key 'memory': 65537 MiB is out of range (16 to 65536)");
	expect_base_err("memory = -5\n",
			"t.cfg:3: key 'memory': -5 MiB is out of range (16 to 65536)");
	expect_base_err("memory = '8'\n",
			"t.cfg:3: key 'memory': 8 MiB is out of range (16 to 65536)");
	expect_base_err("memory = 'abc'\n",
			"t.cfg:3: key 'memory': 'abc' is not a number");
	expect_base_err("memory = '256M'\n",
			"t.cfg:3: key 'memory': '256M' is not a number");
	expect_base_err("memory = ''\n",
			"t.cfg:3: key 'memory': '' is not a number");
	expect_base_err("memory = ['256']\n",
			"t.cfg:3: key 'memory': expected a number of MiB");
	expect_base_err("memory = None\n",
			"t.cfg:3: key 'memory': expected a number of MiB");
	expect_base_err("memory = '99999999999999999999999'\n",
			"t.cfg:3: key 'memory': number too large");
	expect_base_err("memory = 99999999999999999999999\n",
			"t.cfg:3: key 'memory': number too large");
	expect_base_err("memory = 0x10000000000000000\n",
			"t.cfg:3: key 'memory': number too large");
	expect_base_err("memory = 18446744073709551615\n",
			"t.cfg:3: key 'memory': 18446744073709551615 MiB is out of range (16 to 65536)");
	expect_base_err("memory = 0256\n",
			"t.cfg:3: key 'memory': a number with leading zeros is ambiguous (octal in Python 2)");
	expect_base_err("memory = 256 * 2\n", "t.cfg:3: key 'memory': " UNSUP);
	expect_base_err("memory = 256L\n", "t.cfg:3: key 'memory': " UNSUP);
	expect_base_err("memory = 1.5\n", "t.cfg:3: key 'memory': " UNSUP);
	expect_base_err("memory = 0x\n", "t.cfg:3: key 'memory': " UNSUP);
	expect_base_err("memory = -\n", "t.cfg:3: key 'memory': " UNSUP);
	expect_base_err("memory =\n", "t.cfg:3: key 'memory': missing value");
	expect_base_err("memory = # none\n",
			"t.cfg:3: key 'memory': missing value");
	expect_base_err("memory = ;\n", "t.cfg:3: key 'memory': missing value");
	expect_base_err("vcpus = 2\n",
			"t.cfg:3: key 'vcpus': tern runs 1 virtual CPU per domain, 2 requested");
	expect_base_err("vcpus = '4'\n",
			"t.cfg:3: key 'vcpus': tern runs 1 virtual CPU per domain, 4 requested");
	expect_base_err("vcpus = 0\n",
			"t.cfg:3: key 'vcpus': tern runs 1 virtual CPU per domain, 0 requested");
	expect_base_err("vcpus = -1\n",
			"t.cfg:3: key 'vcpus': tern runs 1 virtual CPU per domain, -1 requested");
	expect_base_err("vcpus = [1]\n", "t.cfg:3: key 'vcpus': " UNSUP);
	expect_base_err("vcpus = ['1']\n",
			"t.cfg:3: key 'vcpus': expected a number");
}

static void test_errors_strings(void **state)
{
	expect_base_err("kernel = 'vmlinuz'\n",
			"t.cfg:3: key 'kernel': 'vmlinuz' is not an absolute path");
	expect_base_err("ramdisk = 'initrd.img'\n",
			"t.cfg:3: key 'ramdisk': 'initrd.img' is not an absolute path");
	expect_base_err("ramdisk = 3\n",
			"t.cfg:3: key 'ramdisk': expected a string");
	expect_base_err("kernel = ['/k']\n",
			"t.cfg:3: key 'kernel': expected a string");
	expect_base_err("kernel = '/a\\tb'\n",
			"t.cfg:3: key 'kernel': contains a control character");
	expect_base_err("extra = 'a\\nb'\n",
			"t.cfg:3: key 'extra': contains a control character");
	expect_base_err("extra = '''a\nb'''\n",
			"t.cfg:3: key 'extra': contains a control character");
	expect_base_err("root = 'a\\x7f'\n",
			"t.cfg:3: key 'root': contains a control character");
	expect_base_err("extra = 3\n", "t.cfg:3: key 'extra': expected a string");
	expect_base_err("on_crash = 'explode'\n",
			"t.cfg:3: key 'on_crash': 'explode' is not one of destroy, restart, preserve");
	expect_base_err("on_reboot = 1\n",
			"t.cfg:3: key 'on_reboot': expected a string");
	expect_base_err("on_poweroff = 'Destroy'\n",
			"t.cfg:3: key 'on_poweroff': 'Destroy' is not one of destroy, restart, preserve");
	expect_base_err("extra = 'a\\x00'\n",
			"t.cfg:3: key 'extra': string contains a NUL byte");
	expect_base_err("extra = 'a\\0'\n",
			"t.cfg:3: key 'extra': string contains a NUL byte");
	expect_base_err("extra = 'a\\xZZ'\n", "t.cfg:3: invalid \\x escape");
	expect_base_err("extra = 'a\\x4'\n", "t.cfg:3: invalid \\x escape");
	expect_base_err("extra = 'a\\400'\n", "t.cfg:3: invalid octal escape");
}

static void test_errors_disk(void **state)
{
	expect_base_err("disk = 'file:/x,vda,w'\n",
			"t.cfg:3: key 'disk': expected a list of strings");
	expect_base_err("disk = 5\n",
			"t.cfg:3: key 'disk': expected a list of strings");
	expect_base_err("disk = [ 'file:/x,vda' ]\n",
			"t.cfg:3: key 'disk': 'file:/x,vda' is not 'TYPE:PATH,VDEV,MODE'");
	expect_base_err("disk = [ 'file:/x,vda,w,0' ]\n",
			"t.cfg:3: key 'disk': 'file:/x,vda,w,0' is not 'TYPE:PATH,VDEV,MODE'");
	expect_base_err("disk = [ '' ]\n",
			"t.cfg:3: key 'disk': '' is not 'TYPE:PATH,VDEV,MODE'");
	expect_base_err("disk = [ 'tap:qcow:/x.qcow,vda,w' ]\n",
			"t.cfg:3: key 'disk': unsupported disk type in 'tap:qcow:/x.qcow' (file:, tap:aio:, tap2:aio: or phy:)");
	expect_base_err("disk = [ '/x,vda,w' ]\n",
			"t.cfg:3: key 'disk': unsupported disk type in '/x' (file:, tap:aio:, tap2:aio: or phy:)");
	expect_base_err("disk = [ 'file:x.img,vda,w' ]\n",
			"t.cfg:3: key 'disk': disk path 'x.img' is not absolute");
	expect_base_err("disk = [ 'tap:aio:x.img,vda,w' ]\n",
			"t.cfg:3: key 'disk': disk path 'x.img' is not absolute");
	expect_base_err("disk = [ 'file:,vda,w' ]\n",
			"t.cfg:3: key 'disk': 'file:,vda,w' names no path");
	expect_base_err("disk = [ 'phy:,vda,w' ]\n",
			"t.cfg:3: key 'disk': 'phy:,vda,w' names no path");
	expect_base_err("disk = [ 'file:/a\\tb,vda,w' ]\n",
			"t.cfg:3: key 'disk': disk path contains a control character");
	expect_base_err("disk = [ 'file:/x,vdA,w' ]\n",
			"t.cfg:3: key 'disk': 'vdA' is not a virtual device (vda, xvda, hda, sda, ... optionally with a partition number)");
	expect_base_err("disk = [ 'file:/x,xyz,w' ]\n",
			"t.cfg:3: key 'disk': 'xyz' is not a virtual device (vda, xvda, hda, sda, ... optionally with a partition number)");
	expect_base_err("disk = [ 'file:/x,vda0,w' ]\n",
			"t.cfg:3: key 'disk': 'vda0' is not a virtual device (vda, xvda, hda, sda, ... optionally with a partition number)");
	expect_base_err("disk = [ 'file:/x,vda123,w' ]\n",
			"t.cfg:3: key 'disk': 'vda123' is not a virtual device (vda, xvda, hda, sda, ... optionally with a partition number)");
	expect_base_err("disk = [ 'file:/x,hdc:cdrom,r' ]\n",
			"t.cfg:3: key 'disk': 'hdc:cdrom' is not a virtual device (vda, xvda, hda, sda, ... optionally with a partition number)");
	expect_base_err("disk = [ 'file:/x,,w' ]\n",
			"t.cfg:3: key 'disk': '' is not a virtual device (vda, xvda, hda, sda, ... optionally with a partition number)");
	expect_base_err("disk = [ 'file:/x,vda,w!' ]\n",
			"t.cfg:3: key 'disk': mode 'w!' is not w, r, rw or ro");
	expect_base_err("disk = [ 'file:/x,vda,' ]\n",
			"t.cfg:3: key 'disk': mode '' is not w, r, rw or ro");
	/* Errors name the item's own line in a multi-line list. */
	expect_base_err("disk = [\n 'file:/a,vda,w',\n 'file:/b,xvdb,w',\n"
			" 'file:/c,vda,r',\n]\n",
			"t.cfg:6: key 'disk': virtual device 'vda' used twice");
	expect_base_err("disk = [ 'file:/a,ioemu:hda,w', 'file:/b,hda,w' ]\n",
			"t.cfg:3: key 'disk': virtual device 'hda' used twice");
	expect_base_err("disk = ['file:/1,vda,w', 'file:/2,vdb,w', "
			"'file:/3,vdc,w', 'file:/4,vdd,w', 'file:/5,vde,w', "
			"'file:/6,vdf,w', 'file:/7,vdg,w', 'file:/8,vdh,w',\n"
			"'file:/9,vdi,w']\n",
			"t.cfg:4: key 'disk': more than 8 disks");
}

static void test_errors_vif(void **state)
{
	expect_base_err("vif = 'bridge=br0'\n",
			"t.cfg:3: key 'vif': expected a list of strings");
	expect_base_err("vif = [ 'mac=aa:bb' ]\n",
			"t.cfg:3: key 'vif': 'aa:bb' is not a MAC address (aa:bb:cc:dd:ee:ff)");
	expect_base_err("vif = [ 'mac=aa:bb:cc:dd:ee:fg' ]\n",
			"t.cfg:3: key 'vif': 'aa:bb:cc:dd:ee:fg' is not a MAC address (aa:bb:cc:dd:ee:ff)");
	expect_base_err("vif = [ 'mac=aa:bb:cc:dd:ee:ff:00' ]\n",
			"t.cfg:3: key 'vif': 'aa:bb:cc:dd:ee:ff:00' is not a MAC address (aa:bb:cc:dd:ee:ff)");
	expect_base_err("vif = [ 'mac=' ]\n",
			"t.cfg:3: key 'vif': '' is not a MAC address (aa:bb:cc:dd:ee:ff)");
	expect_base_err("vif = [ 'mac=01:00:5e:00:00:01' ]\n",
			"t.cfg:3: key 'vif': MAC 01:00:5e:00:00:01 is a multicast address (the first octet must be even)");
	expect_base_err("vif = [ 'mac=ff:ff:ff:ff:ff:ff' ]\n",
			"t.cfg:3: key 'vif': MAC ff:ff:ff:ff:ff:ff is a multicast address (the first octet must be even)");
	expect_base_err("vif = [ 'mac=00:00:00:00:00:00' ]\n",
			"t.cfg:3: key 'vif': MAC 00:00:00:00:00:00 is not a valid address");
	expect_base_err("vif = [ 'bridge=' ]\n",
			"t.cfg:3: key 'vif': '' is not a bridge name (1 to 15 characters, no '/', ':' or blanks)");
	expect_base_err("vif = [ 'bridge=a/b' ]\n",
			"t.cfg:3: key 'vif': 'a/b' is not a bridge name (1 to 15 characters, no '/', ':' or blanks)");
	expect_base_err("vif = [ 'bridge=a b' ]\n",
			"t.cfg:3: key 'vif': 'a b' is not a bridge name (1 to 15 characters, no '/', ':' or blanks)");
	expect_base_err("vif = [ 'bridge=0123456789abcdef' ]\n",
			"t.cfg:3: key 'vif': '0123456789abcdef' is not a bridge name (1 to 15 characters, no '/', ':' or blanks)");
	expect_base_err("vif = [ 'bridge=..' ]\n",
			"t.cfg:3: key 'vif': '..' is not a bridge name (1 to 15 characters, no '/', ':' or blanks)");
	expect_base_err("vif = [ 'bridge=br\\x01' ]\n",
			"t.cfg:3: key 'vif': 'br?' is not a bridge name (1 to 15 characters, no '/', ':' or blanks)");
	expect_base_err("vif = [ 'frob=1' ]\n",
			"t.cfg:3: key 'vif': unknown parameter 'frob'");
	expect_base_err("vif = [ 'bridge=br0 mac=aa:00:00:00:00:01' ]\n",
			"t.cfg:3: key 'vif': 'br0 mac=aa:00:00:00:00:01' is not a bridge name (1 to 15 characters, no '/', ':' or blanks)");
	expect_base_err("vif = [ 'xenbr0' ]\n",
			"t.cfg:3: key 'vif': 'xenbr0' is not KEY=VALUE");
	expect_base_err("vif = [ 'mac=aa:00:00:00:00:01',\n"
			"        'mac=AA:00:00:00:00:01' ]\n",
			"t.cfg:4: key 'vif': MAC aa:00:00:00:00:01 used twice");
	expect_base_err("vif = ['', '', '', '', '', '', '', '', '']\n",
			"t.cfg:3: key 'vif': more than 8 network interfaces");
}

static void test_errors_syntax(void **state)
{
	expect_base_err("extra = \"abc\n", "t.cfg:3: unterminated string");
	expect_base_err("extra = 'abc\\\n", "t.cfg:3: unterminated string");
	expect_base_err("extra = 'abc\\", "t.cfg:3: unterminated string");
	expect_base_err("extra = '''abc\n\n\n", "t.cfg:3: unterminated string");
	expect_base_err("extra = \"\"\"abc\"\"\n", "t.cfg:3: unterminated string");
	expect_base_err("extra = 'abc\" + \"def'\" + 'x\n",
			"t.cfg:3: unterminated string");
	expect_base_err("disk = [ 'a',\n 'b'\n\n",
			"t.cfg:3: unterminated list");
	expect_base_err("disk = [", "t.cfg:3: unterminated list");
	expect_base_err("\n\ndisk = [ 'unterminated\n]\n",
			"t.cfg:5: unterminated string");
	expect_base_err("disk = [ 'a'\nname = 'x'\n",
			"t.cfg:4: key 'disk': expected ',' or ']' in the list started on line 3");
	expect_base_err("disk = [ 'a' 'b' 5 ]\n",
			"t.cfg:3: key 'disk': expected ',' or ']' in the list started on line 3");
	expect_base_err("disk = [ 'a', ,]\n", "t.cfg:3: key 'disk': " UNSUP);
	expect_base_err("name 'vm'\n", "t.cfg:3: expected '=' after 'name'");
	expect_base_err("name == 'vm'\n", "t.cfg:3: expected '=' after 'name'");
	expect_base_err("import os\n", "t.cfg:3: expected '=' after 'import'");
	expect_base_err("a, b = 1, 2\n", "t.cfg:3: expected '=' after 'a'");
	expect_base_err("x.y = 1\n", "t.cfg:3: expected '=' after 'x'");
	expect_base_err("= 5\n", "t.cfg:3: unexpected '=' (expected KEY = VALUE)");
	expect_base_err(";\n", "t.cfg:3: unexpected ';' (expected KEY = VALUE)");
	expect_base_err("a = 1;; b = 2\n",
			"t.cfg:3: unexpected ';' (expected KEY = VALUE)");
	expect_base_err("\x01\n", "t.cfg:3: unexpected byte 0x01");
	expect_base_err("\xff\xfe\n", "t.cfg:3: unexpected byte 0xff");
	expect_base_err("'doc' x\n", "t.cfg:3: expected KEY = VALUE");
	expect_base_err("x = 1 \\", "t.cfg:3: key 'x': " UNSUP);
	/* Values that need Python to evaluate. */
	expect_base_err("x = foo()\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = name.upper()\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = {'a': 1}\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = ('a',)\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = 'a' + 'b'\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = 'a' % 1\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = name + 'b'\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = [1, 2]\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = [[ 'a' ]]\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = [\n 'a',\n b ]\n", "t.cfg:5: key 'x': " UNSUP);
	expect_base_err("x = f'{name}'\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = 1 2\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = y = 1\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = name = 1\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("x = @\n", "t.cfg:3: key 'x': " UNSUP);
	expect_base_err("hostname = nosuch\n",
			"t.cfg:3: key 'hostname': name 'nosuch' is not defined (a value may only name a key assigned before it)");
	/* Only keys assigned before: no forward references. */
	expect_err("hostname = name\nname = 'a'\nmemory = 64\n",
		   "t.cfg:1: key 'hostname': name 'name' is not defined (a value may only name a key assigned before it)");
	expect_err("name = name\nmemory = 64\n",
		   "t.cfg:1: key 'name': name 'name' is not defined (a value may only name a key assigned before it)");
}

static void test_errors_order(void **state)
{
	/* Syntax errors come before any key check. */
	expect_err("memory = 8\nname = 'a'\nx = (\n",
		   "t.cfg:3: key 'x': " UNSUP);
	/* Key checks in the order keys were first assigned. */
	expect_err("memory = 8\nname = 'a b'\n",
		   "t.cfg:1: key 'memory': 8 MiB is out of range (16 to 65536)");
	/* The error line is that of the assignment that counts. */
	expect_err("memory = 64\nname = 'a'\nmemory = 8\n",
		   "t.cfg:3: key 'memory': 8 MiB is out of range (16 to 65536)");
	/* The file name is the caller's; NULL is tolerated. */
	{
		domcfg_t d;
		char err[128];

		assert_int_equal(domcfg_parse(&d, NULL, "memory = 64\n", NULL,
					      NULL, err, sizeof(err)), -1);
		assert_string_equal(err, "config: key 'name' is missing");
		assert_int_equal(domcfg_parse(&d, "/etc/tern/vm1.cfg",
					      "x = (", NULL, NULL, err,
					      sizeof(err)), -1);
		assert_string_equal(err, "/etc/tern/vm1.cfg:1: key 'x': " UNSUP);
		/* A short buffer is cut, not overrun; NULL err is fine. */
		assert_int_equal(domcfg_parse(&d, "f", "", NULL, NULL, err, 5),
				 -1);
		assert_string_equal(err, "f: k");
		assert_int_equal(domcfg_parse(&d, "f", "", NULL, NULL, NULL, 0),
				 -1);
		assert_int_equal(domcfg_parse(&d, "f", NULL, NULL, NULL, err,
					      sizeof(err)), -1);
	}
}

/* ---- limits and hostile text ---- */

static void test_limits(void **state)
{
	size_t big = 1024 * 1024;
	char *t = malloc(big + 64), *p;
	domcfg_t d;
	char err[256];
	int i;

	/* A string one byte over the limit, and concatenation over it. */
	strcpy(t, BASE "extra = '");
	p = t + strlen(t);
	memset(p, 'x', 4097);
	strcpy(p + 4097, "'\n");
	expect_err(t, "t.cfg:3: key 'extra': string longer than 4096 bytes");
	strcpy(t, BASE "extra = '");
	p = t + strlen(t);
	memset(p, 'x', 4000);
	strcpy(p + 4000, "' \\\n '");
	p += strlen(p);
	memset(p, 'y', 100);
	strcpy(p + 100, "'\n");
	expect_err(t, "t.cfg:3: key 'extra': string longer than 4096 bytes");

	/* The text limit: 1 MiB of config is read, one byte more is not. */
	memset(t, '#', big);
	t[big] = '\0';
	memcpy(t, BASE, strlen(BASE));
	parse_ok(&d, t, NULL);
	domcfg_free(&d);
	t[big] = '#';
	t[big + 1] = '\0';
	expect_err(t, "t.cfg: larger than 1048576 bytes");

	/* A huge line of one name, of one string, of one list. */
	memset(t, 'a', big);
	t[big] = '\0';
	expect_err(t, "t.cfg:1: name longer than 128 characters");
	memcpy(t, "x = ", 4);
	expect_err(t, "t.cfg:1: key 'x': name longer than 128 characters");
	memcpy(t, "x = '", 5);
	expect_err(t, "t.cfg:1: key 'x': string longer than 4096 bytes");
	memset(t, '[', big);
	memcpy(t, "x = ", 4);
	expect_err(t, "t.cfg:1: key 'x': " UNSUP);
	memset(t, '\n', big);
	expect_err(t, "t.cfg: key 'name' is missing");
	memset(t, '\\', big);
	expect_err(t, "t.cfg:1: unexpected '\\' (expected KEY = VALUE)");

	/* 100000 list items. */
	strcpy(t, BASE "vif = [\n");
	p = t + strlen(t);
	for (i = 0; i < 100000; i++)
		p += sprintf(p, "'',\n");
	strcpy(p, "]\n");
	expect_err(t, "t.cfg:68: key 'vif': list longer than 64 items");

	/* Too many keys; many reassignments of a few are fine. */
	p = t;
	for (i = 0; i < 257; i++)
		p += sprintf(p, "k%d = %d\n", i, i);
	expect_err(t, "t.cfg:257: more than 256 keys");
	strcpy(t, BASE);
	p = t + strlen(t);
	for (i = 0; i < 100000; i++)
		p += sprintf(p, "k%d = 1\n", i % 250);
	assert_int_equal(domcfg_parse(&d, "t.cfg", t, NULL, NULL, err,
				      sizeof(err)), 0);
	domcfg_free(&d);
	/* A name of exactly the key limit. */
	memset(t, 'k', 128);
	strcpy(t + 128, " = 1\n" BASE);
	parse_ok(&d, t, NULL);
	domcfg_free(&d);
	free(t);
}

/* Truncating the configs anywhere, and a byte changed anywhere. */
static void test_hostile_mutations(void **state)
{
	static const char subst[] = "'\"[],=#\\\n ;:x0-(\x01\xff";
	const char *srcs[] = { seed_vm1, doc_example };
	char buf[1024];

	for (size_t s = 0; s < 2; s++) {
		size_t len = strlen(srcs[s]);

		assert_true(len < sizeof(buf));
		for (size_t i = 0; i <= len; i++) {
			memcpy(buf, srcs[s], i);
			buf[i] = '\0';
			parse_any(buf);
		}
		for (size_t i = 0; i < len; i++) {
			for (size_t k = 0; k < sizeof(subst) - 1; k++) {
				memcpy(buf, srcs[s], len + 1);
				buf[i] = subst[k];
				parse_any(buf);
			}
		}
	}
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static void test_hostile_junk(void **state)
{
	static const char *const words[] = {
		"name", "memory", "disk", "vif", "=", "'", "\"", "'''", "[",
		"]", ",", "#", "\\", "\n", " ", ";", "r'", "0x", "-", "256",
		"'file:/x,vda,w'", "'mac=aa:00:00:00:00:01'", "None", "\\x",
		"\\0", "(", "hostname", "on_crash", "'destroy'", "\r\n",
	};
	char buf[2048];

	/* Random bytes. */
	for (int n = 0; n < 3000; n++) {
		unsigned len = rnd(600);

		for (unsigned i = 0; i < len; i++)
			buf[i] = (char)(1 + rnd(255));
		buf[len] = '\0';
		parse_any(buf);
	}
	/* Random sequences of the tokens that matter. */
	for (int n = 0; n < 20000; n++) {
		size_t len = 0;
		unsigned count = rnd(40);

		for (unsigned i = 0; i < count; i++) {
			const char *w = words[rnd(sizeof(words) /
						  sizeof(words[0]))];

			if (len + strlen(w) + 1 >= sizeof(buf))
				break;
			memcpy(buf + len, w, strlen(w));
			len += strlen(w);
		}
		buf[len] = '\0';
		parse_any(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_vm1),
		cmocka_unit_test(test_doc_example),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_triple_quotes),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_references),
		cmocka_unit_test(test_last_wins),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_errors_required),
		cmocka_unit_test(test_errors_memory_vcpus),
		cmocka_unit_test(test_errors_strings),
		cmocka_unit_test(test_errors_disk),
		cmocka_unit_test(test_errors_vif),
		cmocka_unit_test(test_errors_syntax),
		cmocka_unit_test(test_errors_order),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_hostile_mutations),
		cmocka_unit_test(test_hostile_junk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
