/* SPDX-License-Identifier: MIT */
#ifndef TERN_LOG_H
#define TERN_LOG_H

/* Program name used as the prefix of every message. */
void log_set_prog(const char *name);
const char *log_prog(void);

/* One line on stderr: "<prog>: <message>". */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Informational and warning lines, same format ("warning: " prefixed). */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Daemons: start every line with an ISO 8601 local time stamp. */
void log_set_timestamps(int on);

/* Debug lines, printed only when TERN_DEBUG is set in the environment. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
