// SPDX-License-Identifier: MIT
/*
 * xm domain configs (docs/toolstack.md, "Domain config"). xm exec()s the
 * file as Python; tern reads the part of Python that configs use:
 * assignments of string literals (Python's quoting and escapes, adjacent
 * literals concatenated), integers, lists of strings and names of keys
 * assigned earlier. Anything else is refused with the line and key rather
 * than guessed at. The file is hostile input: every length is bounded and
 * every value shown in a message is cut short and made printable, so an
 * error is always one line.
 *
 * Parsing runs in two passes: the text becomes a table of keys (Python's
 * namespace: the last assignment wins, references copy the value they name
 * at that point), then the table is checked key by key into a domcfg_t.
 */
#include "ternd/domcfg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/mac.h"

#define TEXT_MAX (1024 * 1024)
#define STR_MAX 4096
#define LIST_MAX 64
#define KEYS_MAX 256
#define KEY_MAX 128
#define MEMORY_MIN 16
#define MEMORY_MAX 65536

#define UNSUPPORTED \
	"unsupported value (expected a string, a number or a list of strings)"

enum vtype { V_NONE, V_NUM, V_STR, V_LIST };

/* A parsed value; immutable once built, shared by the keys that name it. */
struct value {
	unsigned refs;
	enum vtype type;
	bool neg;			/* V_NUM: the number is -num */
	uint64_t num;
	char *str;			/* V_STR */
	unsigned n;			/* V_LIST */
	char *items[LIST_MAX];
	unsigned lines[LIST_MAX];	/* where each item starts */
};

struct entry {
	char key[KEY_MAX + 1];
	unsigned line;			/* of the assignment that counts */
	struct value *v;
};

struct parser {
	const char *file;
	const char *p;
	unsigned line;
	const char *key;		/* the key at hand, for messages */
	char *err;
	size_t errlen;
	void (*warn)(void *opaque, const char *msg);
	void *opaque;
	unsigned n;
	struct entry e[KEYS_MAX];
	size_t blen;
	unsigned str_line;		/* where the string being read starts */
	char buf[STR_MAX + 1];		/* the string being read */
};

/* ---- messages ---- */

/* A value as a message shows it: printable ASCII, cut short. */
struct shown {
	char s[64];
};

static struct shown show(const char *v)
{
	struct shown r;
	size_t i = 0;

	for (; *v && i < 48; v++)
		r.s[i++] = (*v >= 0x20 && *v < 0x7f) ? *v : '?';
	if (*v) {
		memcpy(r.s + i, "...", 3);
		i += 3;
	}
	r.s[i] = '\0';
	return r;
}

/* "FILE:LINE: reason": the text is not Python this parser reads. */
static int __attribute__((format(printf, 3, 4)))
serr(struct parser *ps, unsigned line, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return err_set(ps->err, ps->errlen, "%s:%u: %s", ps->file, line,
		       reason);
}

/* "FILE:LINE: key 'K': reason" (the syntax form outside assignments). */
static int __attribute__((format(printf, 3, 4)))
kerr(struct parser *ps, unsigned line, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (!ps->key)
		return serr(ps, line, "%s", reason);
	return err_set(ps->err, ps->errlen, "%s:%u: key '%s': %s", ps->file,
		       line, ps->key, reason);
}

static void __attribute__((format(printf, 2, 3)))
warnf(struct parser *ps, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (!ps->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ps->warn(ps->opaque, msg);
}

/* ---- values ---- */

static struct value *value_new(enum vtype type)
{
	struct value *v = calloc(1, sizeof(*v));

	if (v) {
		v->refs = 1;
		v->type = type;
	}
	return v;
}

static void value_put(struct value *v)
{
	if (!v || --v->refs)
		return;
	free(v->str);
	for (unsigned i = 0; i < v->n; i++)
		free(v->items[i]);
	free(v);
}

static struct entry *entry_find(struct parser *ps, const char *key)
{
	for (unsigned i = 0; i < ps->n; i++)
		if (!strcmp(ps->e[i].key, key))
			return &ps->e[i];
	return NULL;
}

/* Takes over v. Python's namespace: a new assignment replaces the value. */
static int entry_assign(struct parser *ps, const char *key, unsigned line,
			struct value *v)
{
	struct entry *e = entry_find(ps, key);

	if (!e) {
		if (ps->n == KEYS_MAX) {
			value_put(v);
			return serr(ps, line, "more than %d keys", KEYS_MAX);
		}
		e = &ps->e[ps->n++];
		strcpy(e->key, key);
	} else {
		value_put(e->v);
	}
	e->line = line;
	e->v = v;
	return 0;
}

/* ---- lexical ---- */

static bool is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_prefix(char c)
{
	return c == 'r' || c == 'R' || c == 'u' || c == 'U' || c == 'b' ||
	       c == 'B';
}

/* A string literal starts here: a quote, perhaps after r/u/b prefixes. */
static bool starts_string(const char *p)
{
	if (*p == '\'' || *p == '"')
		return true;
	if (!is_prefix(p[0]))
		return false;
	if (p[1] == '\'' || p[1] == '"')
		return true;
	return is_prefix(p[1]) && (p[2] == '\'' || p[2] == '"');
}

/*
 * Skips blanks, comments and backslash-newline continuations; with nl also
 * newlines, which Python ignores inside brackets.
 */
static void skip_blank(struct parser *ps, bool nl)
{
	for (;;) {
		const char *p = ps->p;

		if (*p == ' ' || *p == '\t' || *p == '\f' || *p == '\r') {
			ps->p++;
		} else if (*p == '#') {
			while (*ps->p && *ps->p != '\n')
				ps->p++;
		} else if (*p == '\\' && p[1] == '\n') {
			ps->p += 2;
			ps->line++;
		} else if (*p == '\\' && p[1] == '\r' && p[2] == '\n') {
			ps->p += 3;
			ps->line++;
		} else if (*p == '\n' && nl) {
			ps->p++;
			ps->line++;
		} else {
			return;
		}
	}
}

static bool at_statement_end(const struct parser *ps)
{
	return !*ps->p || *ps->p == '\n' || *ps->p == ';';
}

static int parse_ident(struct parser *ps, char *out)
{
	size_t n = 0;

	while (is_ident(ps->p[n]))
		n++;
	if (n > KEY_MAX)
		return kerr(ps, ps->line, "name longer than %d characters",
			    KEY_MAX);
	memcpy(out, ps->p, n);
	out[n] = '\0';
	ps->p += n;
	return 0;
}

static int put(struct parser *ps, char c)
{
	if (ps->blen >= STR_MAX)
		return kerr(ps, ps->str_line, "string longer than %d bytes",
			    STR_MAX);
	ps->buf[ps->blen++] = c;
	return 0;
}

/*
 * One escape after a backslash in a non-raw literal (Python's table;
 * unknown escapes keep the backslash, as Python does). Advances *pp.
 */
static int parse_escape(struct parser *ps, const char **pp)
{
	const char *p = *pp;
	unsigned val;
	int c = p[1], d;

	switch (c) {
	case '\n':	/* a continuation line: nothing */
		ps->line++;
		*pp = p + 2;
		return 0;
	case '\r':
		if (p[2] == '\n') {
			ps->line++;
			*pp = p + 3;
			return 0;
		}
		break;
	case '\\': case '\'': case '"':
		val = (unsigned)c;
		goto one;
	case 'n': val = '\n'; goto one;
	case 't': val = '\t'; goto one;
	case 'r': val = '\r'; goto one;
	case 'a': val = '\a'; goto one;
	case 'b': val = '\b'; goto one;
	case 'f': val = '\f'; goto one;
	case 'v': val = '\v'; goto one;
	case 'x':
		if (hex_digit(p[2]) < 0 || hex_digit(p[3]) < 0)
			return serr(ps, ps->line, "invalid \\x escape");
		val = (unsigned)(hex_digit(p[2]) * 16 + hex_digit(p[3]));
		p += 4;
		goto byte;
	default:
		if (c >= '0' && c <= '7') {
			val = 0;
			p++;
			for (d = 0; d < 3 && *p >= '0' && *p <= '7'; d++)
				val = val * 8 + (unsigned)(*p++ - '0');
			if (val > 0xff)
				return serr(ps, ps->line, "invalid octal escape");
			goto byte;
		}
		break;
	}
	/* Not an escape: both characters stay. */
	if (put(ps, '\\') < 0)
		return -1;
	*pp = p + 1;
	return 0;
one:
	p += 2;
byte:
	if (!val)
		return kerr(ps, ps->line, "string contains a NUL byte");
	*pp = p;
	return put(ps, (char)val);
}

/* Appends one string literal (prefix and quotes included) to ps->buf. */
static int parse_literal(struct parser *ps)
{
	const char *p = ps->p;
	unsigned start = ps->line;
	bool raw = false, triple;
	char q;

	while (is_prefix(*p)) {
		if (*p == 'r' || *p == 'R')
			raw = true;
		p++;
	}
	q = *p;
	triple = p[1] == q && p[2] == q;
	p += triple ? 3 : 1;
	for (;;) {
		char c = *p;

		if (!c)
			return serr(ps, start, "unterminated string");
		if (c == q) {
			if (!triple) {
				p++;
				break;
			}
			if (p[1] == q && p[2] == q) {
				p += 3;
				break;
			}
		} else if (c == '\n') {
			if (!triple)
				return serr(ps, start, "unterminated string");
			ps->line++;
		} else if (c == '\r' && p[1] == '\n') {
			/* Python reads CRLF as LF. */
			p++;
			continue;
		} else if (c == '\\') {
			if (!p[1])
				return serr(ps, start, "unterminated string");
			if (!raw) {
				if (parse_escape(ps, &p) < 0)
					return -1;
				continue;
			}
			/* Raw: the backslash stays and the next character
			 * (even a quote or a newline) does not end anything. */
			if (put(ps, '\\') < 0)
				return -1;
			c = *++p;
			if (c == '\n')
				ps->line++;
		}
		if (put(ps, c) < 0)
			return -1;
		p++;
	}
	ps->p = p;
	return 0;
}

/* Adjacent literals make one string ("a" 'b' is "ab"), in ps->buf. */
static int parse_strings(struct parser *ps, bool in_list)
{
	ps->blen = 0;
	ps->str_line = ps->line;
	do {
		if (parse_literal(ps) < 0)
			return -1;
		skip_blank(ps, in_list);
	} while (starts_string(ps->p));
	ps->buf[ps->blen] = '\0';
	return 0;
}

static int parse_number(struct parser *ps, struct value *v)
{
	const char *p = ps->p;
	uint64_t n = 0;
	int d;

	if (*p == '-') {
		v->neg = true;
		for (p++; *p == ' ' || *p == '\t'; p++)
			;
		if (!is_digit(*p))
			return kerr(ps, ps->line, UNSUPPORTED);
	}
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		if (hex_digit(*p) < 0)
			return kerr(ps, ps->line, UNSUPPORTED);
		for (; (d = hex_digit(*p)) >= 0; p++) {
			if (n > UINT64_MAX >> 4)
				return kerr(ps, ps->line, "number too large");
			n = n << 4 | (unsigned)d;
		}
	} else {
		const char *first = p;

		for (; is_digit(*p); p++) {
			d = *p - '0';
			if (n > (UINT64_MAX - (unsigned)d) / 10)
				return kerr(ps, ps->line, "number too large");
			n = n * 10 + (unsigned)d;
		}
		/* 0256 is octal to Python 2 (xm's) and an error to Python 3. */
		if (*first == '0' && p - first > 1 && n)
			return kerr(ps, ps->line,
				    "a number with leading zeros is ambiguous (octal in Python 2)");
	}
	v->num = n;
	ps->p = p;
	return 0;
}

static int parse_list(struct parser *ps, struct value *v)
{
	unsigned start = ps->line;

	ps->p++;
	for (;;) {
		unsigned line;

		skip_blank(ps, true);
		if (*ps->p == ']')
			break;
		if (!*ps->p)
			return serr(ps, start, "unterminated list");
		if (!starts_string(ps->p))
			return kerr(ps, ps->line, UNSUPPORTED);
		if (v->n == LIST_MAX)
			return kerr(ps, ps->line, "list longer than %d items",
				    LIST_MAX);
		line = ps->line;
		if (parse_strings(ps, true) < 0)
			return -1;
		v->items[v->n] = strdup(ps->buf);
		if (!v->items[v->n])
			return kerr(ps, line, "out of memory");
		v->lines[v->n++] = line;
		skip_blank(ps, true);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == ']')
			break;
		if (!*ps->p)
			return serr(ps, start, "unterminated list");
		return kerr(ps, ps->line,
			    "expected ',' or ']' in the list started on line %u",
			    start);
	}
	ps->p++;
	return 0;
}

/* A value name: another key (a copy of its value) or a Python constant. */
static int parse_name(struct parser *ps, struct value **out)
{
	char name[KEY_MAX + 1];
	unsigned line = ps->line;
	struct entry *e;

	if (parse_ident(ps, name) < 0)
		return -1;
	skip_blank(ps, false);
	if (!at_statement_end(ps))	/* a call, an operator, an attribute */
		return kerr(ps, ps->line, UNSUPPORTED);
	if (!strcmp(name, "None") || !strcmp(name, "True") ||
	    !strcmp(name, "False")) {
		*out = value_new(name[0] == 'N' ? V_NONE : V_NUM);
		if (!*out)
			return kerr(ps, line, "out of memory");
		(*out)->num = name[0] == 'T';
		return 0;
	}
	e = entry_find(ps, name);
	if (!e)
		return kerr(ps, line,
			    "name '%s' is not defined (a value may only name a key assigned before it)",
			    name);
	e->v->refs++;
	*out = e->v;
	return 0;
}

/* The value after "KEY =": *out gets a new reference. */
static int parse_value(struct parser *ps, struct value **out)
{
	struct value *v;
	char c = *ps->p;

	if (at_statement_end(ps))
		return kerr(ps, ps->line, "missing value");
	if (!starts_string(ps->p) && is_ident_start(c))
		return parse_name(ps, out);
	if (starts_string(ps->p))
		v = value_new(V_STR);
	else if (is_digit(c) || c == '-')
		v = value_new(V_NUM);
	else if (c == '[')
		v = value_new(V_LIST);
	else
		return kerr(ps, ps->line, UNSUPPORTED);
	if (!v)
		return kerr(ps, ps->line, "out of memory");
	if (v->type == V_STR) {
		if (parse_strings(ps, false) < 0)
			goto fail;
		v->str = strdup(ps->buf);
		if (!v->str) {
			kerr(ps, ps->line, "out of memory");
			goto fail;
		}
	} else if (v->type == V_NUM) {
		if (parse_number(ps, v) < 0)
			goto fail;
	} else if (parse_list(ps, v) < 0) {
		goto fail;
	}
	*out = v;
	return 0;
fail:
	value_put(v);
	return -1;
}

static int parse_statement(struct parser *ps)
{
	char key[KEY_MAX + 1];
	unsigned line = ps->line;
	unsigned char c = (unsigned char)*ps->p;
	struct value *v = NULL;

	ps->key = NULL;
	if (starts_string(ps->p)) {
		/* A bare string is a docstring to Python: no effect. */
		if (parse_strings(ps, false) < 0)
			return -1;
		if (!at_statement_end(ps))
			return serr(ps, ps->line, "expected KEY = VALUE");
		return 0;
	}
	if (!is_ident_start((char)c)) {
		if (c < 0x20 || c >= 0x7f)
			return serr(ps, line, "unexpected byte 0x%02x", c);
		return serr(ps, line, "unexpected '%c' (expected KEY = VALUE)",
			    c);
	}
	if (parse_ident(ps, key) < 0)
		return -1;
	skip_blank(ps, false);
	if (ps->p[0] != '=' || ps->p[1] == '=')
		return serr(ps, line, "expected '=' after '%s'", key);
	ps->p++;
	ps->key = key;
	skip_blank(ps, false);
	if (parse_value(ps, &v) < 0)
		return -1;
	skip_blank(ps, false);
	if (!at_statement_end(ps)) {
		value_put(v);
		return kerr(ps, ps->line, UNSUPPORTED);
	}
	ps->key = NULL;
	return entry_assign(ps, key, line, v);
}

static int parse_text(struct parser *ps, const char *text)
{
	ps->p = text;
	ps->line = 1;
	for (;;) {
		skip_blank(ps, false);
		if (!*ps->p)
			return 0;
		if (*ps->p == '\n') {
			ps->p++;
			ps->line++;
			continue;
		}
		if (parse_statement(ps) < 0)
			return -1;
		/* "a = 1; b = 2" (and a trailing ';') as Python allows. */
		if (*ps->p == ';')
			ps->p++;
	}
}

/* ---- checks ---- */

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * An optional string: None and "" (false to Python, as xm tests them)
 * leave *out NULL.
 */
static int opt_string(struct parser *ps, const struct entry *e, char **out)
{
	const struct value *v = e->v;

	free(*out);
	*out = NULL;
	if (v->type == V_NONE || (v->type == V_STR && !v->str[0]))
		return 0;
	if (v->type != V_STR)
		return kerr(ps, e->line, "expected a string");
	if (has_control(v->str))
		return kerr(ps, e->line, "contains a control character");
	*out = strdup(v->str);
	if (!*out)
		return kerr(ps, e->line, "out of memory");
	return 0;
}

static int opt_path(struct parser *ps, const struct entry *e, char **out)
{
	if (opt_string(ps, e, out) < 0)
		return -1;
	if (*out && (*out)[0] != '/')
		return kerr(ps, e->line, "'%s' is not an absolute path",
			    show(*out).s);
	return 0;
}

static int check_name(struct parser *ps, const struct entry *e, domcfg_t *d)
{
	const char *s = e->v->str;
	size_t len;

	if (e->v->type != V_STR)
		return kerr(ps, e->line, "expected a string");
	len = strlen(s);
	if (len < 1 || len > DOMCFG_NAME_MAX || s[0] == '.' || s[0] == '-' ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789_.-") != len)
		return kerr(ps, e->line,
			    "'%s' is not a valid domain name (1 to %d of A-Z a-z 0-9 _ . -, not starting with . or -)",
			    show(s).s, DOMCFG_NAME_MAX);
	memcpy(d->name, s, len + 1);
	return 0;
}

/* A count: a number, or a string of digits as xm's int() takes. */
static int get_count(struct parser *ps, const struct entry *e, bool *neg,
		     uint64_t *n, const char *what)
{
	const struct value *v = e->v;
	const char *s;

	if (v->type == V_NUM) {
		*neg = v->neg;
		*n = v->num;
		return 0;
	}
	if (v->type != V_STR)
		return kerr(ps, e->line, "expected %s", what);
	s = v->str;
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return kerr(ps, e->line, "'%s' is not a number", show(s).s);
	*neg = false;
	for (*n = 0; *s; s++) {
		if (*n > (UINT64_MAX - 9) / 10)
			return kerr(ps, e->line, "number too large");
		*n = *n * 10 + (uint64_t)(*s - '0');
	}
	return 0;
}

static int check_memory(struct parser *ps, const struct entry *e, domcfg_t *d)
{
	uint64_t n;
	bool neg;

	if (get_count(ps, e, &neg, &n, "a number of MiB") < 0)
		return -1;
	if (neg || n < MEMORY_MIN || n > MEMORY_MAX)
		return kerr(ps, e->line, "%s%llu MiB is out of range (%d to %d)",
			    neg && n ? "-" : "", (unsigned long long)n,
			    MEMORY_MIN, MEMORY_MAX);
	d->memory_mib = n;
	return 0;
}

static int check_vcpus(struct parser *ps, const struct entry *e, domcfg_t *d)
{
	uint64_t n;
	bool neg;

	if (get_count(ps, e, &neg, &n, "a number") < 0)
		return -1;
	/* tern-vmm emulates a single hart. */
	if (neg || n != 1)
		return kerr(ps, e->line,
			    "tern runs 1 virtual CPU per domain, %s%llu requested",
			    neg && n ? "-" : "", (unsigned long long)n);
	d->vcpus = 1;
	return 0;
}

static int check_action(struct parser *ps, const struct entry *e,
			enum domcfg_action *a)
{
	static const struct {
		const char *name;
		enum domcfg_action a;
		bool approx;
	} tab[] = {
		{ "destroy", DOMCFG_DESTROY, false },
		{ "restart", DOMCFG_RESTART, false },
		{ "preserve", DOMCFG_PRESERVE, false },
		/* xend's other actions, as near as tern comes. */
		{ "rename-restart", DOMCFG_RESTART, true },
		{ "coredump-destroy", DOMCFG_DESTROY, true },
		{ "coredump-restart", DOMCFG_RESTART, true },
	};
	const char *s = e->v->str;

	if (e->v->type != V_STR)
		return kerr(ps, e->line, "expected a string");
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (strcmp(s, tab[i].name))
			continue;
		*a = tab[i].a;
		if (tab[i].approx)
			warnf(ps, "%s:%u: key '%s': '%s' taken as '%s'",
			      ps->file, e->line, e->key, s,
			      domcfg_action_name(tab[i].a));
		return 0;
	}
	return kerr(ps, e->line,
		    "'%s' is not one of destroy, restart, preserve", show(s).s);
}

static const struct entry *list_of(struct parser *ps, const struct entry *e)
{
	if (e->v->type == V_LIST || e->v->type == V_NONE)
		return e;
	kerr(ps, e->line, "expected a list of strings");
	return NULL;
}

/* Cuts s at the first sep (or its end) and trims blanks off the piece. */
static char *field(char **s, char sep)
{
	char *start = *s, *end = strchr(start, sep);

	if (end) {
		*end = '\0';
		*s = end + 1;
	} else {
		*s = start + strlen(start);
		end = *s;
	}
	while (*start == ' ' || *start == '\t')
		start++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return start;
}

/* (xv|v|h|s)d[a-z] and an optional partition number 1-99. */
static bool vdev_valid(const char *s)
{
	if (!strncmp(s, "xvd", 3))
		s += 3;
	else if (!strncmp(s, "vd", 2) || !strncmp(s, "hd", 2) ||
		 !strncmp(s, "sd", 2))
		s += 2;
	else
		return false;
	if (*s < 'a' || *s > 'z')
		return false;
	s++;
	if (!*s)
		return true;
	if (*s < '1' || *s > '9')
		return false;
	s++;
	if (is_digit(*s))
		s++;
	return !*s;
}

static int check_disk(struct parser *ps, const char *item, unsigned line,
		      domcfg_t *d)
{
	static const char *const types[] = {
		"file:", "tap:aio:", "tap2:aio:", "phy:",
	};
	domcfg_disk_t *dk = &d->disks[d->n_disks];
	char *rest = ps->buf, *uname, *vdev, *mode, *path = NULL;
	size_t i, len;

	for (i = 0, len = 0; item[i]; i++)
		len += item[i] == ',';
	if (len != 2)
		return kerr(ps, line, "'%s' is not 'TYPE:PATH,VDEV,MODE'",
			    show(item).s);
	/* Made to fit: items are at most STR_MAX bytes, as is buf. */
	snprintf(ps->buf, sizeof(ps->buf), "%s", item);
	uname = field(&rest, ',');
	vdev = field(&rest, ',');
	mode = field(&rest, ',');
	if (d->n_disks == DOMCFG_MAX_DISKS)
		return kerr(ps, line, "more than %d disks", DOMCFG_MAX_DISKS);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		len = strlen(types[i]);
		if (!strncmp(uname, types[i], len)) {
			path = uname + len;
			break;
		}
	}
	if (!path)
		return kerr(ps, line,
			    "unsupported disk type in '%s' (file:, tap:aio:, tap2:aio: or phy:)",
			    show(uname).s);
	if (!*path)
		return kerr(ps, line, "'%s' names no path", show(item).s);
	if (has_control(path))
		return kerr(ps, line, "disk path contains a control character");
	/* xm's blkif: a phy: device not given by its path is under /dev. */
	if (!strcmp(types[i], "phy:") && path[0] != '/') {
		if (asprintf(&dk->path, "/dev/%s", path) < 0)
			dk->path = NULL;
	} else {
		if (path[0] != '/')
			return kerr(ps, line, "disk path '%s' is not absolute",
				    show(path).s);
		dk->path = strdup(path);
	}
	if (!dk->path)
		return kerr(ps, line, "out of memory");
	/* domcfg_free owns the path from here. No length check: an item is
	 * at most STR_MAX bytes, so even "/dev/" + path is below PATH_MAX. */
	d->n_disks++;
	if (!strncmp(vdev, "ioemu:", 6))
		vdev += 6;
	if (!vdev_valid(vdev))
		return kerr(ps, line,
			    "'%s' is not a virtual device (vda, xvda, hda, sda, ... optionally with a partition number)",
			    show(vdev).s);
	snprintf(dk->vdev, sizeof(dk->vdev), "%s", vdev);
	for (unsigned j = 0; j + 1 < d->n_disks; j++)
		if (!strcmp(d->disks[j].vdev, dk->vdev))
			return kerr(ps, line, "virtual device '%s' used twice",
				    dk->vdev);
	if (!strcmp(mode, "w") || !strcmp(mode, "rw"))
		dk->readonly = false;
	else if (!strcmp(mode, "r") || !strcmp(mode, "ro"))
		dk->readonly = true;
	else
		return kerr(ps, line, "mode '%s' is not w, r, rw or ro",
			    show(mode).s);
	return 0;
}

/* Linux's dev_valid_name(), and no control characters. */
static bool bridge_valid(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s == ' ' ||
		    (unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int check_vif(struct parser *ps, const char *item, unsigned line,
		     domcfg_t *d)
{
	/* xm's other vif parameters set up Xen's backend (scripts, qemu's
	 * model, rate limits): nothing tern's network needs. */
	static const char *const ignored[] = {
		"ip", "script", "vifname", "model", "type", "rate", "backend",
		"accel", "policy", "label", "uuid",
	};
	domcfg_vif_t *vf = &d->vifs[d->n_vifs];
	char *rest = ps->buf;

	if (d->n_vifs == DOMCFG_MAX_VIFS)
		return kerr(ps, line, "more than %d network interfaces",
			    DOMCFG_MAX_VIFS);
	memset(vf, 0, sizeof(*vf));
	snprintf(ps->buf, sizeof(ps->buf), "%s", item);
	while (*rest) {
		char *kv = field(&rest, ','), *k, *v;
		size_t i, n = sizeof(ignored) / sizeof(ignored[0]);

		if (!*kv)
			continue;
		if (!strchr(kv, '='))
			return kerr(ps, line, "'%s' is not KEY=VALUE",
				    show(kv).s);
		k = field(&kv, '=');
		v = kv;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!strcmp(k, "mac")) {
			if (mac_parse(v, vf->mac))
				return kerr(ps, line,
					    "'%s' is not a MAC address (aa:bb:cc:dd:ee:ff)",
					    show(v).s);
			if (mac_is_multicast(vf->mac))
				return kerr(ps, line,
					    "MAC %s is a multicast address (the first octet must be even)",
					    v);
			if (!mac_is_valid_unicast(vf->mac))
				return kerr(ps, line,
					    "MAC %s is not a valid address", v);
			vf->has_mac = true;
			continue;
		}
		if (!strcmp(k, "bridge")) {
			if (!bridge_valid(v))
				return kerr(ps, line,
					    "'%s' is not a bridge name (1 to 15 characters, no '/', ':' or blanks)",
					    show(v).s);
			strcpy(vf->bridge, v);
			continue;
		}
		for (i = 0; i < n && strcmp(k, ignored[i]); i++)
			;
		if (i == n)
			return kerr(ps, line, "unknown parameter '%s'",
				    show(k).s);
		warnf(ps, "%s:%u: key 'vif': '%s' ignored", ps->file, line,
		      k);
	}
	for (unsigned j = 0; vf->has_mac && j < d->n_vifs; j++)
		if (d->vifs[j].has_mac &&
		    !memcmp(d->vifs[j].mac, vf->mac, 6)) {
			char mac[MAC_STR_LEN];

			mac_format(vf->mac, mac);
			return kerr(ps, line, "MAC %s used twice", mac);
		}
	d->n_vifs++;
	return 0;
}

/* Known to xm, of no use to tern: accepted with a warning. */
static const char *const ignored_keys[] = {
	"hostname", "uuid", "builder", "bootloader", "bootargs", "maxmem",
	"cpus", "vfb", "vnc", "sdl", "serial", "localtime", "device_model",
	"pci", "on_xend_start", "on_xend_stop",
};

static int check_entry(struct parser *ps, const struct entry *e, domcfg_t *d)
{
	const char *k = e->key;
	const struct value *v = e->v;

	if (!strcmp(k, "name"))
		return check_name(ps, e, d);
	if (!strcmp(k, "memory"))
		return check_memory(ps, e, d);
	if (!strcmp(k, "vcpus"))
		return check_vcpus(ps, e, d);
	if (!strcmp(k, "kernel"))
		return opt_path(ps, e, &d->kernel);
	if (!strcmp(k, "ramdisk"))
		return opt_path(ps, e, &d->ramdisk);
	if (!strcmp(k, "root"))
		return opt_string(ps, e, &d->root);
	if (!strcmp(k, "extra"))
		return opt_string(ps, e, &d->extra);
	if (!strcmp(k, "on_poweroff"))
		return check_action(ps, e, &d->on_poweroff);
	if (!strcmp(k, "on_reboot"))
		return check_action(ps, e, &d->on_reboot);
	if (!strcmp(k, "on_crash"))
		return check_action(ps, e, &d->on_crash);
	if (!strcmp(k, "disk") || !strcmp(k, "vif")) {
		bool disk = k[0] == 'd';

		if (!list_of(ps, e))
			return -1;
		for (unsigned i = 0; v->type == V_LIST && i < v->n; i++)
			if ((disk ? check_disk : check_vif)(ps, v->items[i],
							   v->lines[i], d) < 0)
				return -1;
		return 0;
	}
	for (size_t i = 0; i < sizeof(ignored_keys) / sizeof(ignored_keys[0]);
	     i++)
		if (!strcmp(k, ignored_keys[i])) {
			warnf(ps, "%s:%u: key '%s' ignored", ps->file, e->line,
			      k);
			return 0;
		}
	warnf(ps, "%s:%u: unknown key '%s' ignored", ps->file, e->line, k);
	return 0;
}

static int check_all(struct parser *ps, domcfg_t *d)
{
	bool has_name = false, has_memory = false;

	d->vcpus = 1;
	d->on_poweroff = DOMCFG_DESTROY;
	d->on_reboot = DOMCFG_RESTART;
	d->on_crash = DOMCFG_RESTART;
	for (unsigned i = 0; i < ps->n; i++) {
		ps->key = ps->e[i].key;
		if (check_entry(ps, &ps->e[i], d) < 0)
			return -1;
		has_name |= !strcmp(ps->e[i].key, "name");
		has_memory |= !strcmp(ps->e[i].key, "memory");
	}
	if (!has_name)
		return err_set(ps->err, ps->errlen, "%s: key 'name' is missing",
			       ps->file);
	if (!has_memory)
		return err_set(ps->err, ps->errlen,
			       "%s: key 'memory' is missing", ps->file);
	return 0;
}

/* ---- API ---- */

int domcfg_parse(domcfg_t *d, const char *file, const char *text,
		 void (*warn)(void *opaque, const char *msg), void *opaque,
		 char *err, size_t errlen)
{
	struct parser *ps;
	int ret;

	memset(d, 0, sizeof(*d));
	if (!file)
		file = "config";
	if (!text)
		return err_set(err, errlen, "%s: no config text", file);
	if (strnlen(text, TEXT_MAX + 1) > TEXT_MAX)
		return err_set(err, errlen, "%s: larger than %d bytes", file,
			       TEXT_MAX);
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return err_set(err, errlen, "%s: out of memory", file);
	ps->file = file;
	ps->err = err;
	ps->errlen = errlen;
	ps->warn = warn;
	ps->opaque = opaque;
	ret = parse_text(ps, text);
	if (!ret)
		ret = check_all(ps, d);
	for (unsigned i = 0; i < ps->n; i++)
		value_put(ps->e[i].v);
	free(ps);
	if (ret)
		domcfg_free(d);
	return ret;
}

void domcfg_free(domcfg_t *d)
{
	free(d->kernel);
	free(d->ramdisk);
	free(d->root);
	free(d->extra);
	d->kernel = d->ramdisk = d->root = d->extra = NULL;
	for (unsigned i = 0; i < d->n_disks && i < DOMCFG_MAX_DISKS; i++) {
		free(d->disks[i].path);
		d->disks[i].path = NULL;
	}
	d->n_disks = 0;
}

const char *domcfg_action_name(enum domcfg_action a)
{
	switch (a) {
	case DOMCFG_DESTROY:
		return "destroy";
	case DOMCFG_RESTART:
		return "restart";
	case DOMCFG_PRESERVE:
		return "preserve";
	}
	return "?";
}

/* s without leading and trailing blanks: start and length. */
static const char *trimmed(const char *s, size_t *len)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	*len = n;
	return s;
}

char *domcfg_cmdline(const domcfg_t *d)
{
	size_t rlen = 0, elen = 0;
	const char *r = d->root ? trimmed(d->root, &rlen) : "";
	const char *x = d->extra ? trimmed(d->extra, &elen) : "";
	char *out;

	if (asprintf(&out, "%s%.*s%s%.*s", rlen ? "root=" : "", (int)rlen, r,
		     rlen && elen ? " " : "", (int)elen, x) < 0)
		return NULL;
	return out;
}
