/* SPDX-License-Identifier: MIT */
/*
 * The tern CLI's human output, as pure functions of ternd's answers
 * (docs/toolstack.md, "The ternd control protocol"): xm's list table and
 * info lines, sizes, and the migration progress and summary lines. The
 * answers are not trusted: a missing or mistyped field prints as "-" or 0,
 * and control characters never reach the terminal.
 */
#ifndef TERN_CLI_FORMAT_H
#define TERN_CLI_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* xm list's header and one row: name 40 (left), ID 5, Mem 5, VCPUs 5,
 * State 10, Time(s) 9 (one decimal), single spaces between. */
void fmt_list_header(char *buf, size_t len);
void fmt_list_row(const json_t *dom, char *buf, size_t len);

/* One domain as xm list --long's S-expression (several lines, ending in a
 * newline). Returns buf. */
char *fmt_list_long(const json_t *dom, char *buf, size_t len);

/* xm info's "key                    : value" lines, one per field, each
 * ending in a newline. */
void fmt_info(const json_t *info, char *buf, size_t len);

/* Copies s, replacing control and non-ASCII bytes with '?'; NULL → "-". */
void fmt_clean(const char *s, char *buf, size_t len);

/* "55.1 MiB": bytes in MiB with one decimal. */
void fmt_mib(uint64_t bytes, char *buf, size_t len);

/* A query-migrate answer, decoded. */
typedef struct mig_status {
	char status[16];	/* connecting, checking, active, device, completed, failed, ... */
	char error[256];
	bool live;
	bool has_numbers;	/* transferred/remaining reported */
	uint64_t transferred, remaining, total;	/* bytes */
	double mbps;		/* megabits (10^6 bits) per second */
	uint64_t rounds;	/* pre-copy rounds done */
	uint64_t total_time_ms, downtime_ms, expected_downtime_ms;
} mig_status_t;

void mig_status_parse(const json_t *o, mig_status_t *st);

/* true for completed, failed and cancelled. */
bool mig_status_final(const mig_status_t *st);

/* MiB/s (2^20 bytes) from the megabits per second ternd reports. */
double mig_rate_mibs(const mig_status_t *st);

/*
 * transferred / (transferred + remaining) in percent, 0..100; 0 before the
 * numbers exist; 100 only once completed (a last page may still be dirty).
 */
unsigned mig_percent(const mig_status_t *st);

/* "[#########-----------]" for percent, width characters between the
 * brackets. */
void fmt_bar(unsigned percent, unsigned width, char *buf, size_t len);

/* The line redrawn on a terminal, cut to width columns (0: no limit). */
void fmt_progress_line(const mig_status_t *st, unsigned width, char *buf,
		       size_t len);

/* Plain lines without a terminal: a phase change ("NAME: active ...") and
 * a finished round ("NAME: round 2, 45%, 12.0 MiB remaining, 310.2
 * MiB/s"). */
void fmt_phase_line(const char *name, const char *host,
		    const mig_status_t *st, char *buf, size_t len);
void fmt_round_line(const char *name, const mig_status_t *st, char *buf,
		    size_t len);

/* "Migrated NAME to HOST: total 1.52 s, downtime 5 ms, 55.1 MiB sent". */
void fmt_summary(const char *name, const char *host, const mig_status_t *st,
		 char *buf, size_t len);

#endif
