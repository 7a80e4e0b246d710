// SPDX-License-Identifier: MIT
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *prog = "tern";

void log_set_prog(const char *name)
{
	prog = name;
}

const char *log_prog(void)
{
	return prog;
}

static void vline(const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* \r keeps lines tidy when the terminal is in raw mode. */
	fprintf(stderr, "%s: %s%s\n", prog, buf, isatty(STDERR_FILENO) ? "\r" : "");
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
