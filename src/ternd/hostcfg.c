// SPDX-License-Identifier: MIT
/*
 * xend-config.sxp (docs/toolstack.md, "Host config"). The file is read in
 * two steps: a small S-expression reader builds one tree per top-level
 * expression (with the line of every node, for messages), then each
 * (KEY VALUE) is checked and applied. The whole file is hostile input:
 * its size, nesting depth and atom lengths are bounded, every error
 * names the line it happened on, and hosts-allow patterns that would make
 * the C library's regex engine take exponential time or memory are
 * refused (allow_check()).
 */
#include "ternd/hostcfg.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"

#define HOSTCFG_MAX_FILE (1u << 20)	/* bytes */
#define HOSTCFG_MAX_DEPTH 32		/* nested lists */
#define HOSTCFG_MAX_ATOM 65536		/* bytes of one atom */

/*
 * hosts_allow_text is never NULL, so that callers may print it; the
 * default points here and is never freed.
 */
static char hostcfg_no_text[1];

/* One node of the tree: an atom or a list. */
typedef struct sx {
	bool list;
	unsigned line;
	char *atom;		/* NUL-terminated; atoms hold no NUL */
	size_t len;
	struct sx **kid;
	size_t n, cap;
} sx_t;

typedef struct reader {
	const char *name;
	const char *p, *end;
	unsigned line;
	char *err;
	size_t errlen;
} reader_t;

void hostcfg_init(hostcfg_t *c)
{
	memset(c, 0, sizeof(*c));
	c->relocation_server = false;
	c->relocation_port = 8002;
	c->hosts_allow_text = hostcfg_no_text;
	c->memory_mib = 0;
	c->relocation_timeout_s = 30;
}

static void allow_clear(hostcfg_t *c)
{
	for (unsigned i = 0; i < c->n_allow; i++) {
		regfree(&c->allow[i]);
		free(c->allow_src[i]);
		c->allow_src[i] = NULL;
	}
	c->n_allow = 0;
	if (c->hosts_allow_text != hostcfg_no_text)
		free(c->hosts_allow_text);
	c->hosts_allow_text = hostcfg_no_text;
}

void hostcfg_free(hostcfg_t *c)
{
	allow_clear(c);
	hostcfg_init(c);
}

static void sx_free(sx_t *s)
{
	if (!s)
		return;
	/* Depth is bounded by HOSTCFG_MAX_DEPTH, so recursion is fine. */
	for (size_t i = 0; i < s->n; i++)
		sx_free(s->kid[i]);
	free(s->kid);
	free(s->atom);
	free(s);
}

/*
 * Copies an atom for a message: printable, short, never a way to smuggle
 * control characters into a log line.
 */
static const char *shown(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	for (; *s && o + 8 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	if (*s)
		o += (size_t)snprintf(buf + o, size - o, "...");
	buf[o] = '\0';
	return buf;
}

/* An error at a line: "FILE:LINE: reason". */
static int __attribute__((format(printf, 3, 4)))
rd_err(reader_t *r, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(r->err, r->errlen, "%s:%u: %s", r->name, line, msg);
}

static bool is_space(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
	       ch == '\f' || ch == '\v';
}

static bool is_bare(unsigned char ch)
{
	return !is_space(ch) && ch != '(' && ch != ')' && ch != '\'' &&
	       ch != '"' && ch != '#' && ch >= 0x20 && ch != 0x7f;
}

/* Skips white space and comments, counting lines. */
static void rd_skip(reader_t *r)
{
	while (r->p < r->end) {
		if (*r->p == '\n') {
			r->line++;
			r->p++;
		} else if (is_space((unsigned char)*r->p)) {
			r->p++;
		} else if (*r->p == '#') {
			while (r->p < r->end && *r->p != '\n')
				r->p++;
		} else {
			break;
		}
	}
}

static sx_t *sx_new(reader_t *r, bool list, unsigned line)
{
	sx_t *s = calloc(1, sizeof(*s));

	if (!s) {
		rd_err(r, line, "out of memory");
		return NULL;
	}
	s->list = list;
	s->line = line;
	return s;
}

static int sx_append(reader_t *r, sx_t *list, sx_t *kid)
{
	if (list->n == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 4;
		sx_t **k = realloc(list->kid, cap * sizeof(*k));

		if (!k)
			return rd_err(r, kid->line, "out of memory");
		list->kid = k;
		list->cap = cap;
	}
	list->kid[list->n++] = kid;
	return 0;
}

/* Appends one byte to an atom under construction. */
static int buf_put(reader_t *r, char **buf, size_t *len, size_t *cap,
		   char ch, unsigned line)
{
	if (*len >= HOSTCFG_MAX_ATOM)
		return rd_err(r, line, "atom longer than %u bytes",
			      HOSTCFG_MAX_ATOM);
	if (*len + 1 >= *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		char *b = realloc(*buf, ncap);

		if (!b)
			return rd_err(r, line, "out of memory");
		*buf = b;
		*cap = ncap;
	}
	(*buf)[(*len)++] = ch;
	(*buf)[*len] = '\0';
	return 0;
}

/* A quoted string: r->p is at the opening quote. */
static int rd_string(reader_t *r, char **buf, size_t *len, size_t *cap)
{
	char q = *r->p++;
	unsigned start = r->line;

	for (;;) {
		unsigned char ch;

		if (r->p >= r->end)
			return rd_err(r, start, "unterminated string "
				      "(the %c opened here is never closed)", q);
		ch = (unsigned char)*r->p++;
		if (ch == (unsigned char)q)
			return 0;
		if (ch == '\\') {
			if (r->p >= r->end)
				return rd_err(r, start, "unterminated string "
					      "(the %c opened here is never "
					      "closed)", q);
			ch = (unsigned char)*r->p++;
			switch (ch) {
			case '\\': case '\'': case '"':
				break;
			case 'n':
				ch = '\n';
				break;
			case 't':
				ch = '\t';
				break;
			case 'r':
				ch = '\r';
				break;
			default:
				if (ch == '\n')
					r->line++;
				if (ch < 0x20 || ch >= 0x7f)
					return rd_err(r, r->line, "unknown "
						      "escape '\\' + 0x%02x in "
						      "string", ch);
				return rd_err(r, r->line, "unknown escape "
					      "'\\%c' in string (a backslash "
					      "is written '\\\\')", ch);
			}
		} else if (ch == '\n') {
			r->line++;
		} else if (ch == '\0') {
			return rd_err(r, r->line, "NUL byte in string");
		} else if ((ch < 0x20 && ch != '\t' && ch != '\r') ||
			   ch == 0x7f) {
			return rd_err(r, r->line, "invalid character 0x%02x "
				      "in string", ch);
		}
		if (buf_put(r, buf, len, cap, (char)ch, r->line))
			return -1;
	}
}

/* An atom: a bare word or a quoted string. r->p is at its first byte. */
static sx_t *rd_atom(reader_t *r)
{
	unsigned line = r->line;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	unsigned char ch = (unsigned char)*r->p;
	sx_t *s;

	if (ch == '\'' || ch == '"') {
		if (rd_string(r, &buf, &len, &cap))
			goto fail;
	} else if (!is_bare(ch)) {
		if (ch == '\0')
			rd_err(r, line, "NUL byte in file");
		else
			rd_err(r, line, "invalid character 0x%02x", ch);
		goto fail;
	} else {
		while (r->p < r->end && is_bare((unsigned char)*r->p))
			if (buf_put(r, &buf, &len, &cap, *r->p++, line))
				goto fail;
	}
	if (!buf) {
		/* '' and "": an empty atom. */
		buf = strdup("");
		if (!buf) {
			rd_err(r, line, "out of memory");
			goto fail;
		}
	}
	s = sx_new(r, false, line);
	if (!s)
		goto fail;
	s->atom = buf;
	s->len = len;
	return s;
fail:
	free(buf);
	return NULL;
}

/*
 * One expression at r->p (after white space): a list or an atom. depth is
 * the number of lists already open around it.
 */
static sx_t *rd_expr(reader_t *r, unsigned depth)
{
	unsigned open;
	sx_t *s;

	if (*r->p != '(')
		return rd_atom(r);
	open = r->line;
	if (depth >= HOSTCFG_MAX_DEPTH) {
		rd_err(r, open, "lists nested deeper than %u",
		       HOSTCFG_MAX_DEPTH);
		return NULL;
	}
	r->p++;
	s = sx_new(r, true, open);
	if (!s)
		return NULL;
	for (;;) {
		sx_t *kid;

		rd_skip(r);
		if (r->p >= r->end) {
			rd_err(r, open, "unbalanced parenthesis: the '(' "
			       "opened here is never closed");
			goto fail;
		}
		if (*r->p == ')') {
			r->p++;
			return s;
		}
		kid = rd_expr(r, depth + 1);
		if (!kid)
			goto fail;
		if (sx_append(r, s, kid)) {
			sx_free(kid);
			goto fail;
		}
	}
fail:
	sx_free(s);
	return NULL;
}

/* ---- values ---------------------------------------------------------- */

/* A decimal integer in [min, max]: digits only, no sign, no spaces. */
static bool parse_uint(const char *s, uint64_t min, uint64_t max,
		       uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

typedef int (*setter_t)(hostcfg_t *c, reader_t *r, const char *key,
			const sx_t *v);

static int set_server(hostcfg_t *c, reader_t *r, const char *key,
		      const sx_t *v)
{
	static const char *const yes[] = { "yes", "true", "1" };
	static const char *const no[] = { "no", "false", "0" };
	char b[80];

	for (size_t i = 0; i < 3; i++) {
		if (!strcasecmp(v->atom, yes[i])) {
			c->relocation_server = true;
			return 0;
		}
		if (!strcasecmp(v->atom, no[i])) {
			c->relocation_server = false;
			return 0;
		}
	}
	return rd_err(r, v->line, "%s must be yes or no, not '%s'", key,
		      shown(v->atom, b, sizeof(b)));
}

static int set_port(hostcfg_t *c, reader_t *r, const char *key,
		    const sx_t *v)
{
	uint64_t n;
	char b[80];

	if (!parse_uint(v->atom, 1, 65535, &n))
		return rd_err(r, v->line, "%s must be a port number from 1 "
			      "to 65535, not '%s'", key,
			      shown(v->atom, b, sizeof(b)));
	c->relocation_port = (uint16_t)n;
	return 0;
}

static int set_address(hostcfg_t *c, reader_t *r, const char *key,
		       const sx_t *v)
{
	char b[80];

	if (v->len >= sizeof(c->relocation_address))
		return rd_err(r, v->line, "%s is longer than %zu bytes", key,
			      sizeof(c->relocation_address) - 1);
	for (size_t i = 0; i < v->len; i++)
		if (is_space((unsigned char)v->atom[i]) ||
		    (unsigned char)v->atom[i] < 0x20)
			return rd_err(r, v->line, "%s '%s' is not an address",
				      key, shown(v->atom, b, sizeof(b)));
	memcpy(c->relocation_address, v->atom, v->len + 1);
	return 0;
}

#define ALLOW_MAX_PATTERN 1024	/* bytes of one pattern */
#define ALLOW_MAX_COST 2048	/* estimated regex nodes after expansion */
#define ALLOW_MAX_GROUPS 32	/* nested groups */

static uint64_t cost_add(uint64_t a, uint64_t b)
{
	return a + b > ALLOW_MAX_COST ? ALLOW_MAX_COST + 1 : a + b;
}

static uint64_t cost_mul(uint64_t a, uint64_t f)
{
	if (a && f > (ALLOW_MAX_COST + 1) / a)
		return ALLOW_MAX_COST + 1;
	return a * f;
}

/* One level of groups while a pattern is checked. */
typedef struct re_level {
	uint64_t alts;		/* cost of the finished branches */
	uint64_t cur;		/* cost of the current branch */
	uint64_t last;		/* cost of its last piece */
	bool has_last;		/* the branch has a piece yet */
	bool prefix_null;	/* the pieces before the last match "" */
	bool last_null;		/* the last piece matches "" */
	bool alt_null;		/* a finished branch matches "" */
	bool repeated;		/* the last thing read was a repetition */
} re_level_t;

static void re_level_init(re_level_t *l)
{
	memset(l, 0, sizeof(*l));
	l->prefix_null = true;
	l->last_null = true;
}

/* A new piece of the given cost and nullability ends the branch. */
static void re_piece(re_level_t *l, uint64_t cost, bool null)
{
	l->prefix_null = l->prefix_null && l->last_null;
	l->last = cost;
	l->last_null = null;
	l->has_last = true;
	l->repeated = false;
	l->cur = cost_add(l->cur, cost);
}

static bool re_level_null(const re_level_t *l)
{
	return l->alt_null || (l->prefix_null && l->last_null);
}

/*
 * Patterns that glibc's regex engine handles in exponential time or
 * memory are refused before regcomp() sees them:
 * - regcomp() copies a repeated piece once per repetition ("a+" is "aa*",
 *   "a{5}" five a's), so stacked or nested repetitions take memory
 *   exponential in the pattern's length; the cost below estimates those
 *   copies (an atom 1, a group the sum of its branches, a repetition
 *   multiplies the piece before it) and is bounded;
 * - '+' or an interval applied to something that matches the empty
 *   string ("(a*)+", "(a?){0,9}") sends regexec() into exponential time
 *   even on a short name; such a piece means the same with '*';
 * - adjacent repetitions ("a**", "a+?", undefined in POSIX ERE) are
 *   polynomial of a high degree in their number;
 * - back-references (a glibc extension, not POSIX ERE) are exponential in
 *   the length of the subject, a peer's reverse-DNS name.
 * Returns NULL, or why the pattern is refused.
 */
static const char *allow_check(const char *pat)
{
	re_level_t st[ALLOW_MAX_GROUPS + 1];
	unsigned sp = 0;
	const char *p = pat;

	if (strlen(pat) > ALLOW_MAX_PATTERN)
		return "is longer than 1024 bytes";
	re_level_init(&st[0]);
	while (*p) {
		re_level_t *l = &st[sp];
		uint64_t f, n = 0, m = 0;
		bool bounded = true;
		const char *q;

		switch (*p) {
		case '\\':
			if (p[1] >= '1' && p[1] <= '9')
				return "uses a back-reference (not part of "
				       "POSIX extended regular expressions)";
			p += p[1] ? 2 : 1;
			re_piece(l, 1, false);
			break;
		case '^':
		case '$':
			/* Anchors match the empty string. */
			p++;
			re_piece(l, 1, true);
			break;
		case '[':
			/* One atom; ']' first is a literal; [: :], [= =] and
			 * [. .] hold a ']' of their own. */
			q = p + 1;
			if (*q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q && *q != ']') {
				if (*q == '[' && (q[1] == ':' || q[1] == '=' ||
						  q[1] == '.')) {
					char end = q[1];

					for (q += 2; *q && !(*q == end &&
							     q[1] == ']'); q++)
						;
					if (*q)
						q += 2;
				} else {
					q++;
				}
			}
			/* Unterminated: regcomp() reports it. */
			p = *q ? q + 1 : q;
			re_piece(l, 1, false);
			break;
		case '(':
			if (sp == ALLOW_MAX_GROUPS)
				return "nests groups too deeply";
			re_level_init(&st[++sp]);
			p++;
			break;
		case ')':
			p++;
			if (!sp) {
				/* A lone ')' is an ordinary character. */
				re_piece(l, 1, false);
				break;
			}
			sp--;
			re_piece(&st[sp], cost_add(cost_add(l->alts, l->cur), 1),
				 re_level_null(l));
			break;
		case '|':
			l->alt_null = re_level_null(l);
			l->alts = cost_add(l->alts, l->cur);
			l->cur = l->last = 0;
			l->has_last = l->repeated = false;
			l->prefix_null = l->last_null = true;
			p++;
			break;
		case '*':
		case '?':
			p++;
			if (!l->has_last)
				break;	/* nothing to repeat: regcomp() judges */
			if (l->repeated)
				return "has adjacent repetition operators "
				       "(undefined in POSIX)";
			/* No copies, and no trouble on an empty match. */
			l->last_null = true;
			l->repeated = true;
			break;
		case '+':
		case '{':
			if (*p == '+') {
				n = 1;
				bounded = false;
				q = p + 1;
			} else {
				q = p + 1;
				while (*q >= '0' && *q <= '9' && n <= 100000)
					n = n * 10 + (uint64_t)(*q++ - '0');
				m = n;
				if (*q == ',') {
					q++;
					bounded = *q >= '0' && *q <= '9';
					for (m = 0; *q >= '0' && *q <= '9' &&
						    m <= 100000; q++)
						m = m * 10 + (uint64_t)(*q - '0');
				}
				if (*q != '}') {
					/* Not an interval: regcomp() judges. */
					p++;
					re_piece(l, 1, false);
					break;
				}
				q++;
			}
			p = q;
			if (!l->has_last)
				break;	/* nothing to repeat: regcomp() judges */
			if (l->repeated)
				return "has adjacent repetition operators "
				       "(undefined in POSIX)";
			l->repeated = true;
			if (l->last_null)
				return "repeats with '+' or '{}' something that "
				       "matches the empty string (use '*')";
			/* glibc copies the piece max(n, m) times, and once
			 * more for an unbounded tail. */
			f = (n > m ? n : m) + (bounded ? 0 : 1);
			if (f < 1)
				f = 1;
			l->cur = cost_add(l->cur, cost_mul(l->last, f - 1));
			l->last = cost_mul(l->last, f);
			if (n == 0)
				l->last_null = true;
			break;
		default:
			p++;
			re_piece(l, 1, false);
			break;
		}
		if (st[sp].cur > ALLOW_MAX_COST || st[sp].alts > ALLOW_MAX_COST)
			return "is too complex";
	}
	/* Unclosed groups: regcomp() refuses them. */
	if (cost_add(st[0].alts, st[0].cur) > ALLOW_MAX_COST)
		return "is too complex";
	return NULL;
}

static int set_allow(hostcfg_t *c, reader_t *r, const char *key,
		     const sx_t *v)
{
	const char *p = v->atom;
	char *text;

	/* The last occurrence of the key wins, as in xend. */
	allow_clear(c);
	text = strdup(v->atom);
	if (!text)
		return rd_err(r, v->line, "out of memory");
	c->hosts_allow_text = text;
	for (;;) {
		const char *e, *why;
		char *pat, *anchored, b[80], msg[160];
		int rc;

		while (*p && is_space((unsigned char)*p))
			p++;
		if (!*p)
			return 0;
		for (e = p; *e && !is_space((unsigned char)*e); e++)
			;
		if (c->n_allow == HOSTCFG_MAX_ALLOW)
			return rd_err(r, v->line, "%s has more than %u "
				      "patterns", key, HOSTCFG_MAX_ALLOW);
		pat = strndup(p, (size_t)(e - p));
		if (!pat)
			return rd_err(r, v->line, "out of memory");
		why = allow_check(pat);
		if (why) {
			rd_err(r, v->line, "regular expression '%s' in %s %s",
			       shown(pat, b, sizeof(b)), key, why);
			free(pat);
			return -1;
		}
		/*
		 * Anchored at the start, as xend's re.match() is: '10\.0\.'
		 * must not accept 110.0.0.1.
		 */
		if (asprintf(&anchored, "^(%s)", pat) < 0) {
			free(pat);
			return rd_err(r, v->line, "out of memory");
		}
		rc = regcomp(&c->allow[c->n_allow], anchored,
			     REG_EXTENDED | REG_NOSUB);
		free(anchored);
		if (rc) {
			regerror(rc, &c->allow[c->n_allow], msg, sizeof(msg));
			rd_err(r, v->line, "invalid regular expression '%s' "
			       "in %s: %s", shown(pat, b, sizeof(b)), key, msg);
			free(pat);
			return -1;
		}
		c->allow_src[c->n_allow++] = pat;
		p = e;
	}
}

static int set_memory(hostcfg_t *c, reader_t *r, const char *key,
		      const sx_t *v)
{
	uint64_t n;
	char b[80];

	/* Bounded so that callers may convert to bytes without overflow. */
	if (!parse_uint(v->atom, 1, UINT64_MAX >> 20, &n))
		return rd_err(r, v->line, "%s must be a positive number of "
			      "MiB, not '%s'", key,
			      shown(v->atom, b, sizeof(b)));
	c->memory_mib = n;
	return 0;
}

static int set_vmm(hostcfg_t *c, reader_t *r, const char *key,
		   const sx_t *v)
{
	if (v->len >= sizeof(c->vmm_path))
		return rd_err(r, v->line, "%s is longer than %zu bytes", key,
			      sizeof(c->vmm_path) - 1);
	memcpy(c->vmm_path, v->atom, v->len + 1);
	return 0;
}

static int set_timeout(hostcfg_t *c, reader_t *r, const char *key,
		       const sx_t *v)
{
	uint64_t n;
	char b[80];

	if (!parse_uint(v->atom, 1, 3600, &n))
		return rd_err(r, v->line, "%s must be a number of seconds "
			      "from 1 to 3600, not '%s'", key,
			      shown(v->atom, b, sizeof(b)));
	c->relocation_timeout_s = (unsigned)n;
	return 0;
}

static const struct {
	const char *key;
	setter_t set;
} hostcfg_keys[] = {
	{ "xend-relocation-server", set_server },
	{ "xend-relocation-port", set_port },
	{ "xend-relocation-address", set_address },
	{ "xend-relocation-hosts-allow", set_allow },
	{ "tern-memory", set_memory },
	{ "tern-vmm", set_vmm },
	{ "tern-relocation-timeout", set_timeout },
};

/* xend's keys tern has no use for: accepted silently, whatever the value. */
static const char *const hostcfg_xend_keys[] = {
	"xend-port", "xend-http-server", "xend-unix-server", "network-script",
	"vif-script", "dom0-min-mem", "dom0-cpus", "enable-dom0-ballooning",
	"xend-tcp-xmlrpc-server", "xend-unix-xmlrpc-server",
	"xend-relocation-ssl-server", "vnc-listen", "vncpasswd", "logfile",
	"loglevel", "total_available_memory", "xen-api-server", "keymap",
	"xend-address", "xend-relocation-ssl", "xend-relocation-ssl-port",
	"xend-relocation-server-ssl-key-file",
	"xend-relocation-server-ssl-cert-file", "xend-unix-path",
	"xend-domains-path", "console-limit", "enable-dump",
	"xend-relocation-ssl-key-file", "xend-relocation-ssl-cert-file",
};

static void warnf(void (*warn)(void *, const char *), void *opaque,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void warnf(void (*warn)(void *, const char *), void *opaque,
		  const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (warn)
		warn(opaque, msg);
	else
		log_error("%s", msg);
}

/* Applies one top-level expression. */
static int apply(hostcfg_t *c, reader_t *r, const sx_t *s,
		 void (*warn)(void *, const char *), void *opaque)
{
	const char *key;
	char b[80];

	if (!s->list)
		return rd_err(r, s->line, "'%s' is not in a list "
			      "(settings are written (KEY VALUE))",
			      shown(s->atom, b, sizeof(b)));
	if (!s->n)
		return rd_err(r, s->line, "empty expression '()' "
			      "(settings are written (KEY VALUE))");
	if (s->kid[0]->list)
		return rd_err(r, s->kid[0]->line, "expected a key, found a "
			      "list (settings are written (KEY VALUE))");
	key = s->kid[0]->atom;
	for (size_t i = 0; i < sizeof(hostcfg_keys) / sizeof(hostcfg_keys[0]);
	     i++) {
		if (strcmp(key, hostcfg_keys[i].key))
			continue;
		if (s->n < 2)
			return rd_err(r, s->kid[0]->line, "(%s) has no value",
				      key);
		if (s->n > 2)
			return rd_err(r, s->kid[2]->line, "%s takes one "
				      "value, found %zu", key, s->n - 1);
		if (s->kid[1]->list)
			return rd_err(r, s->kid[1]->line, "the value of %s "
				      "must be an atom, not a list", key);
		return hostcfg_keys[i].set(c, r, key, s->kid[1]);
	}
	for (size_t i = 0;
	     i < sizeof(hostcfg_xend_keys) / sizeof(hostcfg_xend_keys[0]); i++)
		if (!strcmp(key, hostcfg_xend_keys[i]))
			return 0;
	warnf(warn, opaque, "%s:%u: unknown key '%s' ignored", r->name,
	      s->kid[0]->line, shown(key, b, sizeof(b)));
	return 0;
}

/* The parser proper, on a buffer that may hold NUL bytes (refused). */
static int parse_buf(hostcfg_t *c, const char *name, const char *text,
		     size_t len, void (*warn)(void *, const char *),
		     void *opaque, char *err, size_t errlen)
{
	reader_t r = {
		.name = name ? name : "(config)", .p = text, .end = text + len,
		.line = 1, .err = err, .errlen = errlen,
	};

	hostcfg_free(c);
	if (len > HOSTCFG_MAX_FILE)
		return err_set(err, errlen, "%s: too large (%zu bytes; the "
			       "limit is %u)", r.name, len, HOSTCFG_MAX_FILE);
	/* A UTF-8 byte order mark is harmless; skip it. */
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		r.p += 3;
	for (;;) {
		sx_t *s;
		int rc;

		rd_skip(&r);
		if (r.p >= r.end)
			return 0;
		if (*r.p == ')') {
			rd_err(&r, r.line, "unbalanced parenthesis: ')' "
			       "without a matching '('");
			goto fail;
		}
		s = rd_expr(&r, 0);
		if (!s)
			goto fail;
		rc = apply(c, &r, s, warn, opaque);
		sx_free(s);
		if (rc)
			goto fail;
	}
fail:
	hostcfg_free(c);
	return -1;
}

int hostcfg_parse(hostcfg_t *c, const char *name, const char *text,
		  void (*warn)(void *opaque, const char *msg), void *opaque,
		  char *err, size_t errlen)
{
	/* strnlen: never walk far past the limit on a huge string. */
	size_t len = text ? strnlen(text, HOSTCFG_MAX_FILE + 1) : 0;

	return parse_buf(c, name, text, len, warn, opaque, err, errlen);
}

int hostcfg_load(hostcfg_t *c, const char *path,
		 void (*warn)(void *opaque, const char *msg), void *opaque,
		 char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	int fd, rc, e;

	hostcfg_free(c);
	/* O_NONBLOCK: a FIFO in the config's place must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		e = errno;
		err_set(err, errlen, "cannot open %s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	if (fstat(fd, &st)) {
		e = errno;
		err_set(err, errlen, "cannot read %s: %s", path, strerror(e));
		goto fail_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		e = EINVAL;
		err_set(err, errlen, "%s: not a regular file", path);
		goto fail_fd;
	}
	if (st.st_size > HOSTCFG_MAX_FILE) {
		e = EFBIG;
		err_set(err, errlen, "%s: too large (%lld bytes; the limit "
			"is %u)", path, (long long)st.st_size,
			HOSTCFG_MAX_FILE);
		goto fail_fd;
	}
	/* One byte more than the limit: notices a file that grew meanwhile. */
	buf = malloc(HOSTCFG_MAX_FILE + 2);
	if (!buf) {
		e = ENOMEM;
		err_set(err, errlen, "%s: out of memory", path);
		goto fail_fd;
	}
	while (len <= HOSTCFG_MAX_FILE) {
		ssize_t n = read(fd, buf + len, HOSTCFG_MAX_FILE + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			err_set(err, errlen, "cannot read %s: %s", path,
				strerror(e));
			free(buf);
			goto fail_fd;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	rc = parse_buf(c, path, buf, len, warn, opaque, err, errlen);
	free(buf);
	if (rc)
		errno = EINVAL;
	return rc;
fail_fd:
	close(fd);
	errno = e;
	return -1;
}

/* ---- hosts-allow ------------------------------------------------------ */

bool hostcfg_allow_match(const hostcfg_t *c, const char *addr,
			 const char *const *names, unsigned n_names)
{
	if (!c->n_allow)
		return true;
	for (unsigned i = 0; i < c->n_allow; i++) {
		if (addr && !regexec(&c->allow[i], addr, 0, NULL, 0))
			return true;
		for (unsigned j = 0; names && j < n_names; j++)
			if (names[j] &&
			    !regexec(&c->allow[i], names[j], 0, NULL, 0))
				return true;
	}
	return false;
}

/*
 * Whether name resolves back to the peer's address. A reverse DNS record
 * is written by whoever owns the address, so a peer could otherwise call
 * itself "localhost" (or "10.0.0.1") and pass a hosts-allow pattern.
 */
static bool name_confirmed(const char *name, const struct sockaddr *sa)
{
	struct addrinfo hints = { .ai_family = sa->sa_family,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	bool ok = false;

	if (getaddrinfo(name, NULL, &hints, &res))
		return false;
	for (ai = res; ai && !ok; ai = ai->ai_next) {
		if (ai->ai_family != sa->sa_family)
			continue;
		if (sa->sa_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)sa;
			const struct sockaddr_in *b = (const void *)ai->ai_addr;

			ok = a->sin_addr.s_addr == b->sin_addr.s_addr;
		} else if (sa->sa_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const void *)sa;
			const struct sockaddr_in6 *b =
				(const void *)ai->ai_addr;

			ok = !memcmp(&a->sin6_addr, &b->sin6_addr,
				     sizeof(a->sin6_addr));
		}
	}
	freeaddrinfo(res);
	return ok;
}

bool hostcfg_allow_peer(const hostcfg_t *c, const struct sockaddr *sa,
			socklen_t salen, char *addr_out, size_t addr_len)
{
	struct sockaddr_storage ss;
	char host[NI_MAXHOST], name[NI_MAXHOST];
	const char *names[1];
	unsigned n_names = 0;

	if (addr_out && addr_len)
		snprintf(addr_out, addr_len, "unknown");
	if (!sa || salen > sizeof(ss) || salen < sizeof(sa_family_t))
		return !c->n_allow;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, salen);
	/* ::ffff:a.b.c.d is an IPv4 peer: patterns are written for a.b.c.d. */
	if (ss.ss_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 s6;
		struct sockaddr_in s4 = { .sin_family = AF_INET };

		memcpy(&s6, &ss, sizeof(s6));
		if (IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr)) {
			memcpy(&s4.sin_addr, &s6.sin6_addr.s6_addr[12], 4);
			s4.sin_port = s6.sin6_port;
			memset(&ss, 0, sizeof(ss));
			memcpy(&ss, &s4, sizeof(s4));
			salen = sizeof(s4);
		}
	}
	if (getnameinfo((struct sockaddr *)&ss, salen, host, sizeof(host),
			NULL, 0, NI_NUMERICHOST))
		return !c->n_allow;
	if (addr_out && addr_len)
		snprintf(addr_out, addr_len, "%s", host);
	if (!c->n_allow)
		return true;
	/* The address alone may do; that spares a DNS round trip. */
	if (hostcfg_allow_match(c, host, NULL, 0))
		return true;
	if (!getnameinfo((struct sockaddr *)&ss, salen, name, sizeof(name),
			 NULL, 0, NI_NAMEREQD) &&
	    name_confirmed(name, (struct sockaddr *)&ss))
		names[n_names++] = name;
	return hostcfg_allow_match(c, host, names, n_names);
}
