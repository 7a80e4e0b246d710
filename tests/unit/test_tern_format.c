// SPDX-License-Identifier: MIT
/*
 * The tern CLI's human output: xm's list table and info lines, sizes,
 * migration percent, bar, progress, round and summary lines, and what
 * happens with answers that miss fields or carry the wrong types.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tern/format.h"

static json_t *js(const char *text)
{
	json_t *v = json_loads(text, 0, NULL);

	assert_non_null(v);
	return v;
}

static void test_list_header(void **state)
{
	char buf[256];

	fmt_list_header(buf, sizeof(buf));
	/* Exactly xm list's header. */
	assert_string_equal(buf,
		"Name                                        ID   Mem VCPUs      State   Time(s)");
}

static void test_list_row(void **state)
{
	char buf[256], hdr[256];
	json_t *d = js("{\"name\": \"vm1\", \"id\": 1, \"memory\": 256, \"vcpus\": 1,"
		       " \"state\": \"running\", \"time\": 12.34}");

	fmt_list_row(d, buf, sizeof(buf));
	assert_string_equal(buf,
		"vm1                                          1   256     1    running      12.3");
	/* Columns line up with the header's right edges. */
	fmt_list_header(hdr, sizeof(hdr));
	assert_int_equal(strlen(buf), strlen(hdr));
	json_decref(d);

	d = js("{\"name\": \"incoming-guest\", \"id\": 12345, \"memory\": 65536,"
	       " \"vcpus\": 1, \"state\": \"incoming\", \"time\": 0}");
	fmt_list_row(d, buf, sizeof(buf));
	assert_string_equal(buf,
		"incoming-guest                           12345 65536     1   incoming       0.0");
	json_decref(d);
}

static void test_list_row_hostile(void **state)
{
	char buf[256];
	json_t *d;

	/* Missing and mistyped fields print as "-"; control characters never
	 * reach the terminal. */
	d = js("{\"name\": \"a\\u001b[2Jb\", \"id\": \"7\", \"memory\": null,"
	       " \"state\": 5, \"time\": -3}");
	fmt_list_row(d, buf, sizeof(buf));
	assert_string_equal(buf,
		"a?[2Jb                                       7     -     -          -         -");
	json_decref(d);

	d = js("[]");
	fmt_list_row(d, buf, sizeof(buf));
	assert_non_null(strstr(buf, "-"));
	json_decref(d);

	/* A tiny buffer is cut, not overrun. */
	d = js("{\"name\": \"vm1\"}");
	memset(buf, 'Z', sizeof(buf));
	fmt_list_row(d, buf, 8);
	assert_int_equal(strlen(buf), 7);
	assert_int_equal(buf[8], 'Z');
	json_decref(d);
}

static void test_list_long(void **state)
{
	char buf[2048];
	json_t *d = js("{\"name\": \"vm1\", \"id\": 3, \"memory\": 128, \"vcpus\": 1,"
		       " \"state\": \"paused\", \"time\": 1.5, \"pid\": 99,"
		       " \"control\": \"/var/lib/tern/dom/3/ctl.sock\","
		       " \"console\": \"/tmp/with space/it's.sock\","
		       " \"config\": \"name = 'vm1'\\n\"}");

	fmt_list_long(d, buf, sizeof(buf));
	assert_string_equal(buf,
		"(domain\n"
		"    (domid 3)\n"
		"    (name vm1)\n"
		"    (memory 128)\n"
		"    (vcpus 1)\n"
		"    (state paused)\n"
		"    (cpu_time 1.5)\n"
		"    (pid 99)\n"
		"    (control /var/lib/tern/dom/3/ctl.sock)\n"
		"    (console '/tmp/with space/it\\'s.sock')\n"
		")\n");
	json_decref(d);
}

static void test_info(void **state)
{
	char buf[4096];
	json_t *i = js("{\"version\": \"0.1.0\", \"host\": \"hosta\", \"machine\": \"virt\","
		       " \"isa\": \"rv64imafdc\", \"memory-total\": 7960,"
		       " \"memory-free\": 7704, \"domains\": 2, \"relocation\":"
		       " {\"server\": true, \"address\": \"\", \"port\": 8002,"
		       " \"hosts-allow\": [\"^localhost$\", \"^10\\\\.0\\\\.\"]}}");

	fmt_info(i, buf, sizeof(buf));
	assert_string_equal(buf,
		"host                   : hosta\n"
		"tern_version           : 0.1.0\n"
		"machine                : virt\n"
		"isa                    : rv64imafdc\n"
		"total_memory           : 7960\n"
		"free_memory            : 7704\n"
		"nr_domains             : 2\n"
		"relocation_server      : yes\n"
		"relocation_address     : \n"
		"relocation_port        : 8002\n"
		"relocation_hosts_allow : ^localhost$ ^10\\.0\\.\n");
	json_decref(i);

	/* Domains as a list, a version object, no relocation part. */
	i = js("{\"version\": {\"major\": 1, \"minor\": 2, \"micro\": 3},"
	       " \"domains\": [{}, {}, {}]}");
	fmt_info(i, buf, sizeof(buf));
	assert_non_null(strstr(buf, "tern_version           : 1.2.3\n"));
	assert_non_null(strstr(buf, "nr_domains             : 3\n"));
	assert_non_null(strstr(buf, "relocation_server      : \n"));
	json_decref(i);
}

static void test_sizes(void **state)
{
	char buf[32];

	fmt_mib(57800000, buf, sizeof(buf));
	assert_string_equal(buf, "55.1 MiB");
	fmt_mib(0, buf, sizeof(buf));
	assert_string_equal(buf, "0.0 MiB");
	fmt_mib(12ull << 20, buf, sizeof(buf));
	assert_string_equal(buf, "12.0 MiB");
	fmt_clean(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "-");
	fmt_clean("\tx\xc3\xa9", buf, sizeof(buf));
	assert_string_equal(buf, "?x??");
}

static mig_status_t parse(const char *text)
{
	mig_status_t st;
	json_t *v = js(text);

	mig_status_parse(v, &st);
	json_decref(v);
	return st;
}

static void test_percent(void **state)
{
	mig_status_t st;

	st = parse("{\"status\": \"connecting\"}");
	assert_false(st.has_numbers);
	assert_int_equal(mig_percent(&st), 0);
	st = parse("{\"status\": \"active\", \"transferred\": 45, \"remaining\": 55}");
	assert_int_equal(mig_percent(&st), 45);
	/* Not 100 until completed. */
	st = parse("{\"status\": \"device\", \"transferred\": 1000000, \"remaining\": 0}");
	assert_int_equal(mig_percent(&st), 99);
	st = parse("{\"status\": \"completed\", \"transferred\": 0, \"remaining\": 5}");
	assert_int_equal(mig_percent(&st), 100);
	st = parse("{\"status\": \"active\", \"transferred\": 0, \"remaining\": 0}");
	assert_int_equal(mig_percent(&st), 0);
	/* Hostile numbers: negative, huge, wrong types. */
	st = parse("{\"status\": \"active\", \"transferred\": -5, \"remaining\": 10}");
	assert_int_equal(st.transferred, 0);
	assert_int_equal(mig_percent(&st), 0);
	st = parse("{\"status\": \"active\", \"transferred\": 9223372036854775807,"
		   " \"remaining\": 9223372036854775807}");
	assert_true(mig_percent(&st) <= 99);
	st = parse("{\"status\": \"active\", \"transferred\": 1e300, \"remaining\": \"x\"}");
	assert_true(mig_percent(&st) <= 99);
	st = parse("{\"status\": 3, \"mbps\": -1, \"rounds\": true}");
	assert_string_equal(st.status, "unknown");
	assert_true(st.mbps == 0.0);
	assert_int_equal(st.rounds, 0);
	assert_false(mig_status_final(&st));
}

static void test_bar(void **state)
{
	char buf[64];

	fmt_bar(45, 20, buf, sizeof(buf));
	assert_string_equal(buf, "[#########-----------]");
	fmt_bar(0, 20, buf, sizeof(buf));
	assert_string_equal(buf, "[--------------------]");
	fmt_bar(100, 20, buf, sizeof(buf));
	assert_string_equal(buf, "[####################]");
	fmt_bar(99, 20, buf, sizeof(buf));
	assert_string_equal(buf, "[###################-]");
	fmt_bar(250, 4, buf, sizeof(buf));
	assert_string_equal(buf, "[####]");
}

static void test_progress_line(void **state)
{
	char buf[256];
	mig_status_t st;

	st = parse("{\"status\": \"connecting\"}");
	fmt_progress_line(&st, 0, buf, sizeof(buf));
	assert_string_equal(buf, "connecting [--------------------]   0%");

	/* 2602.1 megabits/s is 310.2 MiB/s. */
	st = parse("{\"status\": \"active\", \"transferred\": 45, \"remaining\": 55,"
		   " \"mbps\": 2602.1, \"rounds\": 1, \"expected-downtime\": 12}");
	assert_true(mig_rate_mibs(&st) > 310.1 && mig_rate_mibs(&st) < 310.3);
	fmt_progress_line(&st, 0, buf, sizeof(buf));
	assert_string_equal(buf,
		"active     [#########-----------]  45%  310.2 MiB/s  0.0 MiB left  round 2  downtime ~12 ms");
	/* Cut to the terminal's width, so that \r redraws the same line. */
	fmt_progress_line(&st, 79, buf, sizeof(buf));
	assert_string_equal(buf,
		"active     [#########-----------]  45%  310.2 MiB/s  0.0 MiB left  round 2");
	fmt_progress_line(&st, 20, buf, sizeof(buf));
	assert_string_equal(buf, "active     [########");

	st = parse("{\"status\": \"completed\", \"transferred\": 100, \"remaining\": 7,"
		   " \"mbps\": 2602.1}");
	fmt_progress_line(&st, 0, buf, sizeof(buf));
	assert_string_equal(buf, "completed  [####################] 100%  310.2 MiB/s");

	st = parse("{\"status\": \"device\", \"transferred\": 100, \"remaining\": 0,"
		   " \"expected-downtime\": 3}");
	fmt_progress_line(&st, 0, buf, sizeof(buf));
	assert_string_equal(buf,
		"device     [###################-]  99%  0.0 MiB/s  0.0 MiB left  last round  downtime ~3 ms");
}

static void test_plain_lines(void **state)
{
	char buf[256];
	mig_status_t st;

	st = parse("{\"status\": \"active\", \"transferred\": 45, \"remaining\": 12582912,"
		   " \"mbps\": 2602.1, \"rounds\": 2}");
	st.transferred = 10485760;	/* 10 of 22 MiB: 45% */
	fmt_round_line("vm1", &st, buf, sizeof(buf));
	assert_string_equal(buf, "vm1: round 2, 45%, 12.0 MiB remaining, 310.2 MiB/s");

	st = parse("{\"status\": \"connecting\"}");
	fmt_phase_line("vm1", "hostb", &st, buf, sizeof(buf));
	assert_string_equal(buf, "vm1: connecting to hostb");
	st = parse("{\"status\": \"active\", \"live\": true}");
	fmt_phase_line("vm1", "hostb", &st, buf, sizeof(buf));
	assert_string_equal(buf, "vm1: active (copying memory, the guest keeps running)");
	st = parse("{\"status\": \"active\", \"live\": false}");
	fmt_phase_line("vm1", "hostb", &st, buf, sizeof(buf));
	assert_string_equal(buf, "vm1: active (copying memory, the guest is paused)");
}

static void test_summary(void **state)
{
	char buf[256];
	mig_status_t st;

	st = parse("{\"status\": \"completed\", \"host\": \"hostb\", \"live\": true,"
		   " \"total-time\": 1520, \"downtime\": 5, \"expected-downtime\": 3,"
		   " \"transferred\": 57800000, \"remaining\": 0, \"total\": 134217728,"
		   " \"mbps\": 300.5, \"rounds\": 3}");
	assert_true(mig_status_final(&st));
	fmt_summary("vm1", "hostb", &st, buf, sizeof(buf));
	assert_string_equal(buf,
		"Migrated vm1 to hostb: total 1.52 s, downtime 5 ms, 55.1 MiB sent");

	st = parse("{\"status\": \"failed\", \"error\": \"the destination refused:\\nno\"}");
	assert_true(mig_status_final(&st));
	assert_string_equal(st.error, "the destination refused:?no");
	st = parse("{\"status\": \"cancelled\", \"error-desc\": \"cancelled by user\"}");
	assert_true(mig_status_final(&st));
	assert_string_equal(st.error, "cancelled by user");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_header),
		cmocka_unit_test(test_list_row),
		cmocka_unit_test(test_list_row_hostile),
		cmocka_unit_test(test_list_long),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_percent),
		cmocka_unit_test(test_bar),
		cmocka_unit_test(test_progress_line),
		cmocka_unit_test(test_plain_lines),
		cmocka_unit_test(test_summary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
