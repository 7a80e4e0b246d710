// SPDX-License-Identifier: MIT
/*
 * Human output of the tern CLI. The table and the info lines copy xm's
 * layout (Xen's xm list / xm info), so that people and scripts used to xm
 * read tern's the same way.
 */
#include "tern/format.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A bounded string builder: output past the end is cut, never overflows. */
typedef struct sbuf {
	char *buf;
	size_t len, pos;
} sbuf_t;

static void sb_init(sbuf_t *b, char *buf, size_t len)
{
	b->buf = buf;
	b->len = len;
	b->pos = 0;
	if (len)
		buf[0] = '\0';
}

static void sb_printf(sbuf_t *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->pos + 1 >= b->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->buf + b->pos, b->len - b->pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	b->pos += (size_t)n;
	if (b->pos >= b->len)
		b->pos = b->len - 1;
}

void fmt_clean(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	if (!len)
		return;
	if (!s)
		s = "-";
	for (; *s && i + 1 < len; s++)
		buf[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	buf[i] = '\0';
}

/* A JSON number as an unsigned integer; 0 for anything else. */
static uint64_t get_u64(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
	if (json_is_real(v) && json_real_value(v) > 0 &&
	    json_real_value(v) < 1.8e19)
		return (uint64_t)json_real_value(v);
	return 0;
}

static double get_double(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	double d = json_is_number(v) ? json_number_value(v) : 0.0;

	return isfinite(d) && d > 0 ? d : 0.0;
}

/* An integer field as text ("-" when missing or not an integer). */
static void int_text(const json_t *o, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_string(v))
		fmt_clean(json_string_value(v), buf, len);
	else
		snprintf(buf, len, "-");
}

void fmt_list_header(char *buf, size_t len)
{
	snprintf(buf, len, "%-40s %5s %5s %5s %10s %9s", "Name", "ID", "Mem",
		 "VCPUs", "State", "Time(s)");
}

void fmt_list_row(const json_t *dom, char *buf, size_t len)
{
	char name[128], id[32], mem[32], vcpus[32], state[32], tm[32];
	const json_t *t = json_object_get(dom, "time");
	double secs = json_is_number(t) ? json_number_value(t) : 0.0;

	fmt_clean(json_string_value(json_object_get(dom, "name")), name,
		  sizeof(name));
	int_text(dom, "id", id, sizeof(id));
	int_text(dom, "memory", mem, sizeof(mem));
	int_text(dom, "vcpus", vcpus, sizeof(vcpus));
	fmt_clean(json_string_value(json_object_get(dom, "state")), state,
		  sizeof(state));
	if (json_is_number(t) && isfinite(secs) && secs >= 0 && secs < 1e12)
		snprintf(tm, sizeof(tm), "%.1f", secs);
	else
		snprintf(tm, sizeof(tm), "-");
	snprintf(buf, len, "%-40s %5s %5s %5s %10s %9s", name, id, mem, vcpus,
		 state, tm);
}

/* An S-expression atom: bare when it can be, else single-quoted. */
static void sx_atom(sbuf_t *b, const char *s)
{
	bool bare = *s != '\0';

	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("()'\"\\#", *p))
			bare = false;
	if (bare) {
		sb_printf(b, "%s", s);
		return;
	}
	sb_printf(b, "'");
	for (const char *p = s; *p; p++) {
		if (*p == '\'' || *p == '\\')
			sb_printf(b, "\\%c", *p);
		else if (*p == '\n')
			sb_printf(b, "\\n");
		else if (*p == '\t')
			sb_printf(b, "\\t");
		else
			sb_printf(b, "%c", (*p >= 0x20 && *p < 0x7f) ? *p : '?');
	}
	sb_printf(b, "'");
}

static void sx_value(sbuf_t *b, const json_t *v)
{
	if (json_is_string(v))
		sx_atom(b, json_string_value(v));
	else if (json_is_integer(v))
		sb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		sb_printf(b, "%.1f", json_real_value(v));
	else if (json_is_boolean(v))
		sb_printf(b, "%s", json_is_true(v) ? "yes" : "no");
	else
		sb_printf(b, "-");
}

char *fmt_list_long(const json_t *dom, char *buf, size_t len)
{
	/* xm's names for the fields, in xm's order; config is left out:
	 * its text is what the user wrote (tern list --long --json has it). */
	static const char *const keys[][2] = {
		{ "domid", "id" }, { "name", "name" }, { "memory", "memory" },
		{ "vcpus", "vcpus" }, { "state", "state" },
		{ "cpu_time", "time" }, { "pid", "pid" },
		{ "control", "control" }, { "console", "console" },
	};
	sbuf_t b;

	sb_init(&b, buf, len);
	sb_printf(&b, "(domain\n");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const json_t *v = json_object_get(dom, keys[i][1]);

		if (!v)
			continue;
		sb_printf(&b, "    (%s ", keys[i][0]);
		sx_value(&b, v);
		sb_printf(&b, ")\n");
	}
	sb_printf(&b, ")\n");
	return buf;
}

/* A value of info as xm would print it. */
static void info_value(sbuf_t *b, const json_t *v)
{
	char tmp[512];

	if (json_is_string(v)) {
		fmt_clean(json_string_value(v), tmp, sizeof(tmp));
		sb_printf(b, "%s", tmp);
	} else if (json_is_integer(v)) {
		sb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if (json_is_real(v)) {
		sb_printf(b, "%g", json_real_value(v));
	} else if (json_is_boolean(v)) {
		sb_printf(b, "%s", json_is_true(v) ? "yes" : "no");
	} else if (json_is_array(v)) {
		size_t i;
		const json_t *e;

		json_array_foreach(v, i, e) {
			if (i)
				sb_printf(b, " ");
			info_value(b, e);
		}
	} else if (json_is_object(v) && json_object_get(v, "major")) {
		/* A version object as query-version has it. */
		sb_printf(b, "%" PRIu64 ".%" PRIu64 ".%" PRIu64,
			  get_u64(v, "major"), get_u64(v, "minor"),
			  get_u64(v, "micro"));
	}
}

void fmt_info(const json_t *info, char *buf, size_t len)
{
	const json_t *reloc = json_object_get(info, "relocation");
	const json_t *doms = json_object_get(info, "domains");
	const struct {
		const char *key;
		const json_t *v;
	} lines[] = {
		{ "host", json_object_get(info, "host") },
		{ "tern_version", json_object_get(info, "version") },
		{ "machine", json_object_get(info, "machine") },
		{ "isa", json_object_get(info, "isa") },
		{ "total_memory", json_object_get(info, "memory-total") },
		{ "free_memory", json_object_get(info, "memory-free") },
		{ "nr_domains", json_is_array(doms) ? NULL : doms },
		{ "relocation_server", json_object_get(reloc, "server") },
		{ "relocation_address", json_object_get(reloc, "address") },
		{ "relocation_port", json_object_get(reloc, "port") },
		{ "relocation_hosts_allow", json_object_get(reloc, "hosts-allow") },
	};
	sbuf_t b;

	sb_init(&b, buf, len);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		sb_printf(&b, "%-23s: ", lines[i].key);
		if (!strcmp(lines[i].key, "nr_domains") && json_is_array(doms))
			sb_printf(&b, "%zu", json_array_size(doms));
		else
			info_value(&b, lines[i].v);
		sb_printf(&b, "\n");
	}
}

void fmt_mib(uint64_t bytes, char *buf, size_t len)
{
	snprintf(buf, len, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

void mig_status_parse(const json_t *o, mig_status_t *st)
{
	const char *s = json_string_value(json_object_get(o, "status"));
	const char *e = json_string_value(json_object_get(o, "error"));

	memset(st, 0, sizeof(*st));
	fmt_clean(s ? s : "unknown", st->status, sizeof(st->status));
	if (!e)
		e = json_string_value(json_object_get(o, "error-desc"));
	if (e)
		fmt_clean(e, st->error, sizeof(st->error));
	st->live = json_is_true(json_object_get(o, "live"));
	st->has_numbers = json_is_number(json_object_get(o, "transferred")) ||
			  json_is_number(json_object_get(o, "remaining"));
	st->transferred = get_u64(o, "transferred");
	st->remaining = get_u64(o, "remaining");
	st->total = get_u64(o, "total");
	st->mbps = get_double(o, "mbps");
	st->rounds = get_u64(o, "rounds");
	st->total_time_ms = get_u64(o, "total-time");
	st->downtime_ms = get_u64(o, "downtime");
	st->expected_downtime_ms = get_u64(o, "expected-downtime");
}

bool mig_status_final(const mig_status_t *st)
{
	return !strcmp(st->status, "completed") || !strcmp(st->status, "failed") ||
	       !strcmp(st->status, "cancelled");
}

double mig_rate_mibs(const mig_status_t *st)
{
	return st->mbps * 1e6 / 8.0 / (1024.0 * 1024.0);
}

unsigned mig_percent(const mig_status_t *st)
{
	uint64_t sum = st->transferred + st->remaining;
	unsigned p;

	if (!strcmp(st->status, "completed"))
		return 100;
	if (!st->has_numbers || sum < st->transferred /* overflow */ || !sum)
		return 0;
	p = (unsigned)((double)st->transferred * 100.0 / (double)sum);
	return p > 99 ? 99 : p;
}

void fmt_bar(unsigned percent, unsigned width, char *buf, size_t len)
{
	unsigned fill;
	sbuf_t b;

	if (percent > 100)
		percent = 100;
	fill = (percent * width + 50) / 100;
	if (percent < 100 && fill == width && width)
		fill = width - 1;	/* full only when done */
	sb_init(&b, buf, len);
	sb_printf(&b, "[");
	for (unsigned i = 0; i < width; i++)
		sb_printf(&b, "%c", i < fill ? '#' : '-');
	sb_printf(&b, "]");
}

static bool is_copying(const mig_status_t *st)
{
	return !strcmp(st->status, "active") || !strcmp(st->status, "device");
}

/* Appends "  field" when the line stays within width (0: no limit). */
static void add_field(sbuf_t *b, unsigned width, const char *field)
{
	if (width && b->pos + 2 + strlen(field) > width)
		return;
	sb_printf(b, "  %s", field);
}

void fmt_progress_line(const mig_status_t *st, unsigned width, char *buf,
		       size_t len)
{
	unsigned pct = mig_percent(st);
	char bar[64], rem[32], field[64];
	sbuf_t b;

	fmt_bar(pct, 20, bar, sizeof(bar));
	sb_init(&b, buf, len);
	sb_printf(&b, "%-10s %s %3u%%", st->status, bar, pct);
	/* Redrawing with \r only works while the line does not wrap: the
	 * fields that do not fit are left out whole, the least useful last. */
	if (width && b.pos > width)
		buf[b.pos = width] = '\0';
	if (!strcmp(st->status, "completed")) {
		snprintf(field, sizeof(field), "%.1f MiB/s", mig_rate_mibs(st));
		add_field(&b, width, field);
	} else if (is_copying(st) && st->has_numbers) {
		snprintf(field, sizeof(field), "%.1f MiB/s", mig_rate_mibs(st));
		add_field(&b, width, field);
		fmt_mib(st->remaining, rem, sizeof(rem));
		snprintf(field, sizeof(field), "%s left", rem);
		add_field(&b, width, field);
		if (!strcmp(st->status, "active"))
			snprintf(field, sizeof(field), "round %" PRIu64,
				 st->rounds + 1);
		else
			snprintf(field, sizeof(field), "last round");
		add_field(&b, width, field);
		snprintf(field, sizeof(field), "downtime ~%" PRIu64 " ms",
			 st->expected_downtime_ms);
		add_field(&b, width, field);
	}
}

void fmt_phase_line(const char *name, const char *host,
		    const mig_status_t *st, char *buf, size_t len)
{
	const char *s = st->status;

	if (!strcmp(s, "connecting"))
		snprintf(buf, len, "%s: connecting to %s", name, host);
	else if (!strcmp(s, "checking"))
		snprintf(buf, len, "%s: checking (the destination runs its pre-checks)",
			 name);
	else if (!strcmp(s, "active"))
		snprintf(buf, len, "%s: active (copying memory, %s)", name,
			 st->live ? "the guest keeps running" : "the guest is paused");
	else if (!strcmp(s, "device"))
		snprintf(buf, len, "%s: device (the guest is stopped: last pages and device state)",
			 name);
	else
		snprintf(buf, len, "%s: %s", name, s);
}

void fmt_round_line(const char *name, const mig_status_t *st, char *buf,
		    size_t len)
{
	char rem[32];

	fmt_mib(st->remaining, rem, sizeof(rem));
	snprintf(buf, len, "%s: round %" PRIu64 ", %u%%, %s remaining, %.1f MiB/s",
		 name, st->rounds, mig_percent(st), rem, mig_rate_mibs(st));
}

void fmt_summary(const char *name, const char *host, const mig_status_t *st,
		 char *buf, size_t len)
{
	char sent[32];

	fmt_mib(st->transferred, sent, sizeof(sent));
	snprintf(buf, len, "Migrated %s to %s: total %.2f s, downtime %" PRIu64
		 " ms, %s sent", name, host, (double)st->total_time_ms / 1000.0,
		 st->downtime_ms, sent);
}
