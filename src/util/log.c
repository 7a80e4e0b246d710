// SPDX-License-Identifier: MIT
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "tern";
static int timestamps;

void log_set_timestamps(int on)
{
	timestamps = on;
}

void log_set_prog(const char *name)
{
	prog = name;
}

const char *log_prog(void)
{
	return prog;
}

static void vline_level(const char *level, const char *fmt, va_list ap)
{
	char buf[1024], stamp[48] = "";

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (timestamps) {
		struct timeval tv;
		struct tm tm;
		size_t n;

		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		n = strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(stamp + n, sizeof(stamp) - n, ".%03d ",
			 (int)(tv.tv_usec / 1000));
	}
	/* \r keeps lines tidy when the terminal is in raw mode. */
	fprintf(stderr, "%s%s: %s%s%s\n", stamp, prog, level, buf,
		isatty(STDERR_FILENO) ? "\r" : "");
}

static void vline(const char *fmt, va_list ap)
{
	vline_level("", fmt, ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline_level("warning: ", fmt, ap);
	va_end(ap);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!getenv("TERN_DEBUG"))
		return;
	va_start(ap, fmt);
	vline(fmt, ap);
	va_end(ap);
}
