/* SPDX-License-Identifier: MIT */
/*
 * One-line error reasons: functions that can fail take (char *err, size_t
 * errlen) and fill it through err_set().
 */
#ifndef TERN_ERR_H
#define TERN_ERR_H

#include <stddef.h>

/* Formats the reason into err (when err/errlen allow) and returns -1. */
int err_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
