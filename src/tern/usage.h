/* SPDX-License-Identifier: MIT */
/* The tern CLI's help texts (tern --help, tern help VERB). */
#ifndef TERN_CLI_USAGE_H
#define TERN_CLI_USAGE_H

#include <stdio.h>

typedef struct verb_help {
	const char *name;
	const char *synopsis;	/* after "tern " */
	const char *summary;	/* one line */
	const char *text;	/* the full description */
} verb_help_t;

/* NULL for an unknown verb. */
const verb_help_t *usage_find(const char *verb);

/* tern --help: everything. */
void usage_print_all(FILE *f);

/* tern help VERB. */
void usage_print_verb(FILE *f, const verb_help_t *h);

/* The short hint after a usage error: "usage: tern SYNOPSIS" and where to
 * read more. verb NULL: the global synopsis. */
void usage_hint(FILE *f, const char *verb);

#endif
