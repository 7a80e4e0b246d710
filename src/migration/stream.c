// SPDX-License-Identifier: MIT
/*
 * The migration stream's record layer (docs/migration-stream.md). Every
 * section number in the comments below refers to that document.
 */
#include "migration/stream.h"

#include <errno.h>
#include <lz4.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

static int __attribute__((format(printf, 2, 3)))
fail(stream_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return -1;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t pad8(uint32_t len)
{
	return (8 - (len & 7)) & 7;
}

void stream_init(stream_t *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->our_version = STREAM_VERSION;
	s->cancel_fd = -1;
	s->compress = true;
}

void stream_free(stream_t *s)
{
	free(s->buf);
	free(s->unpacked);
	s->buf = NULL;
	s->unpacked = NULL;
	s->cap = 0;
}

bool stream_version_readable(uint32_t ours, uint32_t v)
{
	/* Version rules: our own version and the previous one, never 0. */
	return v >= 1 && (v == ours || v + 1 == ours);
}

uint64_t stream_checksum(const void *data, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(data, len, seed);
}

bool stream_page_is_zero(const void *page)
{
	const uint8_t *p = page;

	/* Eight bytes at a time; most non-zero pages fail on the first. */
	for (size_t i = 0; i < STREAM_PAGE_SIZE; i += 32) {
		uint64_t a, b, c, d;

		memcpy(&a, p + i, 8);
		memcpy(&b, p + i + 8, 8);
		memcpy(&c, p + i + 16, 8);
		memcpy(&d, p + i + 24, 8);
		if (a | b | c | d)
			return false;
	}
	return true;
}

/* A record, its padding and checksum, fit in buf when cap >= this. */
static size_t rec_total(uint32_t len)
{
	return STREAM_REC_HEADER_SIZE + (size_t)len + pad8(len) +
	       STREAM_REC_TRAILER_SIZE;
}

static int ensure(stream_t *s, size_t need)
{
	uint8_t *nb;

	if (need <= s->cap)
		return 0;
	nb = realloc(s->buf, need);
	if (!nb)
		return fail(s, "out of memory for a %zu-byte record", need);
	s->buf = nb;
	s->cap = need;
	return 0;
}

/* A non-blocking fd is full: waits until it takes more, bounded. */
static int wait_writable(stream_t *s)
{
	struct pollfd p[2] = {
		{ .fd = s->fd, .events = POLLOUT },
		{ .fd = s->cancel_fd, .events = POLLIN },
	};
	int n;

	do
		n = poll(p, s->cancel_fd >= 0 ? 2 : 1,
			 s->timeout_ms ? (int)s->timeout_ms : -1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(s, "cannot write the stream: %s", strerror(errno));
	if (n == 0)
		return fail(s, "cannot write the stream: nothing read it for "
			    "%u ms", s->timeout_ms);
	if (s->cancel_fd >= 0 && p[1].revents)
		return fail(s, "cannot write the stream: interrupted");
	return 0;
}

static int write_full(stream_t *s, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n;

		if (!s->not_socket) {
			/* A peer that went away is an error, not SIGPIPE. */
			n = send(s->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == ENOTSOCK) {
				s->not_socket = true;
				continue;
			}
		} else {
			n = write(s->fd, p, len);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && s->poll_writes) {
			if (wait_writable(s))
				return -1;
			continue;
		}
		if (n < 0)
			return fail(s, "cannot write the stream: %s",
				    strerror(errno));
		if (n == 0)
			return fail(s, "cannot write the stream: no progress");
		p += n;
		len -= (size_t)n;
		s->bytes += (uint64_t)n;
	}
	return 0;
}

/* Returns the bytes read (< len only at end of file), or -1. */
static ssize_t read_full(stream_t *s, uint8_t *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(s->fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(s, "cannot read the stream: %s",
				    strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
		s->bytes += (uint64_t)n;
	}
	return (ssize_t)got;
}

int stream_write_header(stream_t *s)
{
	uint8_t h[STREAM_HEADER_SIZE];

	memcpy(h + STREAM_HDR_OFF_MAGIC, STREAM_MAGIC, STREAM_MAGIC_LEN);
	put32(h + STREAM_HDR_OFF_VERSION, s->our_version);
	put32(h + STREAM_HDR_OFF_BYTE_ORDER, STREAM_BYTE_ORDER);
	put32(h + STREAM_HDR_OFF_PAGE_SIZE, STREAM_PAGE_SIZE);
	put32(h + STREAM_HDR_OFF_FLAGS, 0);
	put64(h + STREAM_HDR_OFF_CHECKSUM,
	      stream_checksum(h, STREAM_HDR_OFF_CHECKSUM, 0));
	return write_full(s, h, sizeof(h));
}

int stream_read_header(stream_t *s)
{
	uint8_t h[STREAM_HEADER_SIZE];
	uint32_t v, order, page, flags;
	ssize_t n = read_full(s, h, sizeof(h));

	if (n < 0)
		return -1;
	if (n == 0)
		return fail(s, "the stream is empty");
	if ((size_t)n < sizeof(h))
		return fail(s, "stream truncated inside its header (%zd of %u bytes)",
			    n, STREAM_HEADER_SIZE);
	if (memcmp(h + STREAM_HDR_OFF_MAGIC, STREAM_MAGIC, STREAM_MAGIC_LEN))
		return fail(s, "not a tern migration stream (bad magic)");
	order = get32(h + STREAM_HDR_OFF_BYTE_ORDER);
	if (order != STREAM_BYTE_ORDER)
		return fail(s, "stream written with another byte order "
			    "(marker 0x%08x, expected 0x%08x)", order,
			    STREAM_BYTE_ORDER);
	v = get32(h + STREAM_HDR_OFF_VERSION);
	if (!stream_version_readable(s->our_version, v)) {
		if (s->our_version > 1)
			return fail(s, "stream version %u not supported (this "
				    "tern reads %u and %u)", v, s->our_version,
				    s->our_version - 1);
		return fail(s, "stream version %u not supported (this tern "
			    "reads %u)", v, s->our_version);
	}
	if (get64(h + STREAM_HDR_OFF_CHECKSUM) !=
	    stream_checksum(h, STREAM_HDR_OFF_CHECKSUM, 0))
		return fail(s, "stream header checksum mismatch");
	page = get32(h + STREAM_HDR_OFF_PAGE_SIZE);
	if (page != STREAM_PAGE_SIZE)
		return fail(s, "stream page size %u, this machine uses %u", page,
			    STREAM_PAGE_SIZE);
	flags = get32(h + STREAM_HDR_OFF_FLAGS);
	if (flags)
		return fail(s, "stream header has unknown flags 0x%x", flags);
	s->version = v;
	s->seq = 0;
	s->ended = false;
	return 0;
}

/*
 * Sends the record whose body (len bytes) is already at buf + 8: fills the
 * record header, padding and checksum and writes it in one go.
 */
static int rec_send(stream_t *s, uint16_t type, uint16_t flags, uint32_t len)
{
	uint32_t pad = pad8(len);
	size_t sum_at = STREAM_REC_HEADER_SIZE + (size_t)len + pad;

	if (s->ended)
		return fail(s, "record written after END");
	put16(s->buf, type);
	put16(s->buf + 2, flags);
	put32(s->buf + 4, len);
	memset(s->buf + STREAM_REC_HEADER_SIZE + len, 0, pad);
	s->seq++;
	put64(s->buf + sum_at, stream_checksum(s->buf, sum_at, s->seq));
	if (write_full(s, s->buf, sum_at + STREAM_REC_TRAILER_SIZE))
		return -1;
	if (type == STREAM_REC_END)
		s->ended = true;
	return 0;
}

int stream_write_record(stream_t *s, uint16_t type, uint16_t flags,
			const void *body, uint32_t len)
{
	if (len > STREAM_MAX_RECORD)
		return fail(s, "record of %u bytes over the limit %u", len,
			    STREAM_MAX_RECORD);
	if (ensure(s, rec_total(len)))
		return -1;
	if (len)
		memmove(s->buf + STREAM_REC_HEADER_SIZE, body, len);
	return rec_send(s, type, flags, len);
}

static bool rec_back(uint16_t type)
{
	return type >= STREAM_REC_ACCEPT && type <= STREAM_REC_COMMITTED;
}

static const char *rec_name(uint16_t type)
{
	switch (type) {
	case STREAM_REC_MACHINE:
		return "MACHINE";
	case STREAM_REC_PAGES:
		return "PAGES";
	case STREAM_REC_STATE:
		return "STATE";
	case STREAM_REC_END:
		return "END";
	case STREAM_REC_DOMAIN:
		return "DOMAIN";
	case STREAM_REC_ACCEPT:
		return "ACCEPT";
	case STREAM_REC_REFUSE:
		return "REFUSE";
	case STREAM_REC_COMMITTED:
		return "COMMITTED";
	default:
		return NULL;
	}
}

/* Body length limit of a known type (Records, table of types). */
static uint32_t rec_limit(uint16_t type)
{
	switch (type) {
	case STREAM_REC_MACHINE:
		return STREAM_MAX_MACHINE;
	case STREAM_REC_PAGES:
		return STREAM_MAX_PAGES_BODY;
	case STREAM_REC_STATE:
		return STREAM_MAX_STATE;
	case STREAM_REC_END:
	case STREAM_REC_ACCEPT:
	case STREAM_REC_COMMITTED:
		return 0;
	case STREAM_REC_REFUSE:
		return STREAM_MAX_REFUSE;
	case STREAM_REC_DOMAIN:
		return STREAM_MAX_DOMAIN;
	default:
		return STREAM_MAX_RECORD;
	}
}

int stream_read_record(stream_t *s, stream_rec_t *r)
{
	for (;;) {
		uint8_t hdr[STREAM_REC_HEADER_SIZE];
		uint64_t seq = s->seq + 1;
		uint16_t type, flags;
		uint32_t len, pad;
		const char *name;
		size_t rest, sum_at;
		ssize_t n;

		if (s->ended)
			return fail(s, "read past the END record");
		n = read_full(s, hdr, sizeof(hdr));
		if (n < 0)
			return -1;
		if (n == 0)
			return fail(s, "stream truncated: it ends after record "
				    "%llu, before END", (unsigned long long)s->seq);
		if ((size_t)n < sizeof(hdr))
			return fail(s, "stream truncated inside record %llu",
				    (unsigned long long)seq);
		type = get16(hdr);
		flags = get16(hdr + 2);
		len = get32(hdr + 4);
		name = rec_name(type);
		/* Each direction knows only its own record types. */
		if (name && rec_back(type) != s->back)
			name = NULL;
		/* Limits come from the header alone: nothing is allocated or
		 * read for a record that is too long. */
		if (flags & ~STREAM_REC_FLAGS_KNOWN)
			return fail(s, "record %llu (type %u): unknown flags 0x%x",
				    (unsigned long long)seq, type, flags);
		if (len > (name ? rec_limit(type) : STREAM_MAX_RECORD))
			return fail(s, "record %llu: %s length %u over the limit %u",
				    (unsigned long long)seq,
				    name ? name : "record", len,
				    name ? rec_limit(type) : STREAM_MAX_RECORD);
		if (ensure(s, rec_total(len)))
			return -1;
		memcpy(s->buf, hdr, sizeof(hdr));
		pad = pad8(len);
		sum_at = STREAM_REC_HEADER_SIZE + (size_t)len + pad;
		rest = sum_at + STREAM_REC_TRAILER_SIZE - sizeof(hdr);
		n = read_full(s, s->buf + sizeof(hdr), rest);
		if (n < 0)
			return -1;
		if ((size_t)n < rest)
			return fail(s, "stream truncated inside record %llu",
				    (unsigned long long)seq);
		if (get64(s->buf + sum_at) != stream_checksum(s->buf, sum_at, seq))
			return fail(s, "record %llu (type %u): checksum mismatch",
				    (unsigned long long)seq, type);
		for (uint32_t i = 0; i < pad; i++)
			if (s->buf[STREAM_REC_HEADER_SIZE + len + i])
				return fail(s, "record %llu: non-zero padding",
					    (unsigned long long)seq);
		s->seq = seq;
		if (!name) {
			if (flags & STREAM_REC_OPTIONAL)
				continue;	/* a later version's hint */
			return fail(s, "record %llu: unknown mandatory record "
				    "type %u", (unsigned long long)seq, type);
		}
		if (type == STREAM_REC_END)
			s->ended = true;
		r->type = type;
		r->flags = flags;
		r->len = len;
		r->body = s->buf + STREAM_REC_HEADER_SIZE;
		r->seq = seq;
		return 0;
	}
}

/* ---- MACHINE ---------------------------------------------------------- */

/* A bounded writer and reader of record bodies. */
struct wbuf {
	uint8_t *p;
	size_t cap, pos;
	bool over;
};

static uint8_t *wb_take(struct wbuf *w, size_t n)
{
	uint8_t *p;

	if (w->over || n > w->cap - w->pos) {
		w->over = true;
		return NULL;
	}
	p = w->p + w->pos;
	w->pos += n;
	return p;
}

static void wb_u32(struct wbuf *w, uint32_t v)
{
	uint8_t *p = wb_take(w, 4);

	if (p)
		put32(p, v);
}

static void wb_u64(struct wbuf *w, uint64_t v)
{
	uint8_t *p = wb_take(w, 8);

	if (p)
		put64(p, v);
}

static void wb_str(struct wbuf *w, const char *str, size_t len)
{
	uint8_t *p = wb_take(w, 2 + len);

	if (p) {
		put16(p, (uint16_t)len);
		memcpy(p + 2, str, len);
	}
}

struct rbuf {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

static const uint8_t *rb_take(struct rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->len - r->pos) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->pos;
	r->pos += n;
	return p;
}

static uint32_t rb_u32(struct rbuf *r)
{
	const uint8_t *p = rb_take(r, 4);

	return p ? get32(p) : 0;
}

static uint64_t rb_u64(struct rbuf *r)
{
	const uint8_t *p = rb_take(r, 8);

	return p ? get64(p) : 0;
}

static bool str_ok(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

/* Reads a str of at most max bytes without control characters. */
static const char *rb_str(struct rbuf *r, size_t max, uint16_t *len)
{
	const uint8_t *p = rb_take(r, 2);

	if (!p)
		return NULL;
	*len = get16(p);
	if (*len > max || !(p = rb_take(r, *len)) || !str_ok(p, *len)) {
		r->bad = true;
		return NULL;
	}
	return (const char *)p;
}

/* Strings go into one-line messages: control characters become '?'. */
static void sanitize(char *str)
{
	for (; *str; str++)
		if ((uint8_t)*str < 0x20 || *str == 0x7f)
			*str = '?';
}

/* The identity a device reports, sanitised; "" without a describe op. */
static int device_identity(const device_t *d, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!d->ops || !d->ops->describe)
		return 0;
	if (d->ops->describe(d->dev, buf, len)) {
		buf[0] = '\0';
		return -1;
	}
	buf[len - 1] = '\0';
	sanitize(buf);
	return 0;
}

int stream_write_machine(stream_t *s, const machine_t *m)
{
	char ident[STREAM_MAX_STRING + 1];
	size_t isa_len = strnlen(m->isa, sizeof(m->isa));
	struct wbuf w;

	if (ensure(s, rec_total(STREAM_MAX_MACHINE)))
		return -1;
	w = (struct wbuf){ .p = s->buf + STREAM_REC_HEADER_SIZE,
			   .cap = STREAM_MAX_MACHINE };
	if (!str_ok((const uint8_t *)m->isa, isa_len))
		return fail(s, "ISA string has control characters");
	wb_u64(&w, m->ram.base);
	wb_u64(&w, m->ram.size);
	wb_u32(&w, m->nharts);
	wb_u32(&w, m->ndevices);
	wb_str(&w, m->isa, isa_len);
	for (unsigned i = 0; i < m->ndevices; i++) {
		const device_t *d = &m->devices[i];
		size_t nlen = strlen(d->name);

		if (nlen == 0 || nlen > STREAM_MAX_NAME ||
		    !str_ok((const uint8_t *)d->name, nlen))
			return fail(s, "device name \"%.64s\" cannot be sent",
				    d->name);
		if (device_identity(d, ident, sizeof(ident)))
			return fail(s, "device %s: identity too long", d->name);
		wb_str(&w, d->name, nlen);
		wb_u64(&w, d->base);
		wb_u64(&w, d->size);
		wb_u32(&w, d->state ? d->state->version : 0);
		wb_str(&w, ident, strlen(ident));
	}
	if (w.over)
		return fail(s, "machine description over %u bytes",
			    STREAM_MAX_MACHINE);
	return rec_send(s, STREAM_REC_MACHINE, 0, (uint32_t)w.pos);
}

/* Sizes in messages: MiB when whole, else bytes. */
static void fmt_size(char *buf, size_t len, uint64_t v)
{
	if (v && !(v & ((1u << 20) - 1)))
		snprintf(buf, len, "%llu MiB", (unsigned long long)(v >> 20));
	else
		snprintf(buf, len, "%llu bytes", (unsigned long long)v);
}

struct sdev {
	const char *name;
	uint16_t nlen;
	uint64_t base, size;
	uint32_t state_version;
	const char *ident;
	uint16_t ilen;
};

static bool name_is(const char *a, uint16_t alen, const char *b)
{
	return strlen(b) == alen && !memcmp(a, b, alen);
}

static int check_devices(stream_t *s, struct rbuf *rb, uint32_t n,
			 const machine_t *m)
{
	char ident[STREAM_MAX_STRING + 1];
	struct sdev *sd = calloc(n ? n : 1, sizeof(*sd));
	bool *seen = calloc(m->ndevices ? m->ndevices : 1, sizeof(*seen));
	int rc = -1;

	if (!sd || !seen) {
		fail(s, "out of memory for the machine description");
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		sd[i].name = rb_str(rb, STREAM_MAX_NAME, &sd[i].nlen);
		sd[i].base = rb_u64(rb);
		sd[i].size = rb_u64(rb);
		sd[i].state_version = rb_u32(rb);
		sd[i].ident = rb_str(rb, STREAM_MAX_STRING, &sd[i].ilen);
		if (rb->bad || sd[i].nlen == 0) {
			fail(s, "machine description: device %u malformed", i);
			goto out;
		}
		for (uint32_t j = 0; j < i; j++)
			if (sd[j].nlen == sd[i].nlen &&
			    !memcmp(sd[j].name, sd[i].name, sd[i].nlen)) {
				fail(s, "machine description names device "
				     "%.*s twice", sd[i].nlen, sd[i].name);
				goto out;
			}
	}
	if (rb->pos != rb->len) {
		fail(s, "machine description: %zu trailing bytes",
		     rb->len - rb->pos);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct sdev *x = &sd[i];
		const device_t *d = NULL;
		unsigned k;

		for (k = 0; k < m->ndevices; k++)
			if (name_is(x->name, x->nlen, m->devices[k].name)) {
				d = &m->devices[k];
				break;
			}
		if (!d) {
			fail(s, "device %.*s (%.*s) is in the stream but not "
			     "on this machine", x->nlen, x->name,
			     x->ilen > 120 ? 120 : x->ilen, x->ident);
			goto out;
		}
		seen[k] = true;
		if (x->base != d->base || x->size != d->size) {
			fail(s, "device %s: stream has it at 0x%llx+0x%llx, this "
			     "machine at 0x%llx+0x%llx", d->name,
			     (unsigned long long)x->base,
			     (unsigned long long)x->size,
			     (unsigned long long)d->base,
			     (unsigned long long)d->size);
			goto out;
		}
		if ((x->state_version != 0) != (d->state != NULL)) {
			fail(s, "device %s: state section on one side only",
			     d->name);
			goto out;
		}
		if (device_identity(d, ident, sizeof(ident))) {
			fail(s, "device %s: identity too long", d->name);
			goto out;
		}
		if (!name_is(x->ident, x->ilen, ident)) {
			fail(s, "device %s differs: stream \"%.*s\", here \"%.90s\"",
			     d->name, x->ilen > 90 ? 90 : x->ilen, x->ident,
			     ident);
			goto out;
		}
	}
	for (unsigned k = 0; k < m->ndevices; k++)
		if (!seen[k]) {
			fail(s, "device %s of this machine is not in the stream",
			     m->devices[k].name);
			goto out;
		}
	rc = 0;
out:
	free(sd);
	free(seen);
	return rc;
}

int stream_check_machine(stream_t *s, const stream_rec_t *r,
			 const machine_t *m)
{
	struct rbuf rb = { .p = r->body, .len = r->len };
	char a[32], b[32];
	uint64_t base, size;
	uint32_t nharts, ndev;
	const char *isa;
	uint16_t isa_len;

	if (r->type != STREAM_REC_MACHINE)
		return fail(s, "record %llu: expected the machine description",
			    (unsigned long long)r->seq);
	base = rb_u64(&rb);
	size = rb_u64(&rb);
	nharts = rb_u32(&rb);
	ndev = rb_u32(&rb);
	isa = rb_str(&rb, STREAM_MAX_STRING, &isa_len);
	if (rb.bad)
		return fail(s, "machine description truncated or malformed");
	if (base != m->ram.base)
		return fail(s, "RAM base differs: stream 0x%llx, this machine "
			    "0x%llx", (unsigned long long)base,
			    (unsigned long long)m->ram.base);
	if (size != m->ram.size) {
		fmt_size(a, sizeof(a), size);
		fmt_size(b, sizeof(b), m->ram.size);
		return fail(s, "RAM size differs: stream %s, this machine %s", a,
			    b);
	}
	if (nharts == 0 || nharts > STREAM_MAX_HARTS)
		return fail(s, "machine description: %u harts", nharts);
	if (nharts != m->nharts)
		return fail(s, "hart count differs: stream %u, this machine %u",
			    nharts, m->nharts);
	if (!name_is(isa, isa_len, m->isa))
		return fail(s, "ISA differs: stream \"%.*s\", this machine "
			    "\"%.64s\"", isa_len > 64 ? 64 : isa_len, isa,
			    m->isa);
	if (ndev > STREAM_MAX_DEVICES)
		return fail(s, "machine description: %u devices (limit %u)",
			    ndev, STREAM_MAX_DEVICES);
	return check_devices(s, &rb, ndev, m);
}

/* ---- PAGES ------------------------------------------------------------ */

/*
 * Pages the guest never touched are not resident in the host's anonymous
 * mapping: they are zero without reading them (reading would fault in the
 * host's zero page, one fault per page). Without swap, a non-resident
 * anonymous page cannot hold data; with swap it might, so then every page
 * is read.
 */
#define RESIDENT_WINDOW 1024

struct residency {
	bool usable;
	uint64_t base;		/* first page of vec, UINT64_MAX = none */
	unsigned char vec[RESIDENT_WINDOW];
};

static void residency_init(struct residency *res)
{
	struct sysinfo si;

	res->usable = sysinfo(&si) == 0 && si.totalswap == 0;
	res->base = UINT64_MAX;
}

static bool page_untouched(struct residency *res, const ram_t *r, uint64_t p)
{
	uint64_t n;

	if (!res->usable)
		return false;
	if (res->base == UINT64_MAX || p < res->base ||
	    p >= res->base + RESIDENT_WINDOW) {
		res->base = p;
		n = r->npages - p < RESIDENT_WINDOW ? r->npages - p
						     : RESIDENT_WINDOW;
		if (mincore(r->host + (p << RAM_PAGE_SHIFT),
			    n << RAM_PAGE_SHIFT, res->vec)) {
			res->usable = false;
			return false;
		}
		if (n < RESIDENT_WINDOW)
			memset(res->vec + n, 1, RESIDENT_WINDOW - n);
	}
	return !(res->vec[p - res->base] & 1);
}

/*
 * LZ4 acceleration: 1 is LZ4's default. Measured on guest RAM (an idle
 * guest's 54 MiB: 43% of its size with 1, 46% with 4, 52% with 16).
 */
#define LZ4_ACCEL 1

/*
 * Pages that do not compress tend to come in runs (random or already
 * compressed data, a working set rewritten with noise): after a page
 * that did not shrink, the next 1, 2, 4 ... up to LZ4_MAX_BACKOFF pages go
 * raw without a try, so such runs cost little compression time. The first
 * page that shrinks ends the backoff.
 */
#define LZ4_MAX_BACKOFF 64u

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Link bytes a live sender learns on before it decides, and compressed
 * bytes it then tries to learn LZ4's speed and ratio on this RAM. */
#define LINK_PROBE (8u << 20)
#define LZ4_PROBE (1u << 20)

/*
 * Whether the next record is compressed. Compression costs the sender CPU
 * time (LZ4 runs at a few hundred MB/s per core on guest RAM) and saves
 * link time: on a link faster than what it frees it makes a migration
 * slower. A live sender (lz4_when_behind) therefore first sends plainly
 * and times its writes (the link's rate W: writes only wait when the link
 * is behind), then compresses a little to time LZ4 (rate C, ratio r), and
 * from then on compresses while W < C * (1 - r): a page costs 1/C + r/W
 * compressed against 1/W plain.
 */
static bool record_lz4(stream_t *s)
{
	double w, c, r;

	if (!s->compress || s->our_version < 2)
		return false;
	if (!s->lz4_when_behind)
		return true;
	if (s->wire_bytes < LINK_PROBE || !s->wire_ns)
		return false;
	if (s->lz4_in < LZ4_PROBE || !s->lz4_ns)
		return true;
	w = (double)s->wire_bytes / (double)s->wire_ns;
	/* A bandwidth limit paces the sender between writes. */
	if (s->link_limit && w > (double)s->link_limit / 1e9)
		w = (double)s->link_limit / 1e9;
	c = (double)s->lz4_in / (double)s->lz4_ns;
	r = (double)s->lz4_out / (double)s->lz4_in;
	return w < c * (1.0 - r);
}

/*
 * Puts one non-zero page at dst: an LZ4 entry (u16 length, block) when that
 * is smaller than the page, else the page itself. Returns the bytes used
 * and sets *flags.
 */
static size_t put_page(stream_t *s, uint8_t *dst, const uint8_t *src,
		       bool lz4, uint32_t *flags)
{
	int n = 0;

	if (lz4) {
		if (s->lz4_skip) {
			s->lz4_skip--;
		} else {
			uint64_t t0 = s->lz4_when_behind ? mono_ns() : 0;

			n = LZ4_compress_fast((const char *)src,
					      (char *)dst + 2, STREAM_PAGE_SIZE,
					      STREAM_LZ4_MAX, LZ4_ACCEL);
			if (s->lz4_when_behind) {
				s->lz4_ns += mono_ns() - t0;
				s->lz4_in += STREAM_PAGE_SIZE;
				s->lz4_out += n > 0 ? 2 + (uint64_t)n
						    : STREAM_PAGE_SIZE;
			}
			if (n > 0) {
				s->lz4_backoff = 0;
			} else {
				s->lz4_skip = s->lz4_backoff;
				s->lz4_backoff = s->lz4_backoff ?
					2 * s->lz4_backoff : 1;
				if (s->lz4_backoff > LZ4_MAX_BACKOFF)
					s->lz4_backoff = LZ4_MAX_BACKOFF;
			}
		}
	}
	if (n > 0) {
		put16(dst, (uint16_t)n);
		*flags = STREAM_PAGE_LZ4;
		s->lz4_pages++;
		s->saved += STREAM_PAGE_SIZE - 2 - (uint64_t)n;
		return 2 + (size_t)n;
	}
	/* Incompressible (or compression off): the page as it is. */
	memcpy(dst, src, STREAM_PAGE_SIZE);
	*flags = 0;
	return STREAM_PAGE_SIZE;
}

int stream_write_pages_from(stream_t *s, const ram_t *r,
			    const uint64_t *bitmap, uint64_t *next,
			    uint64_t max_pages)
{
	uint64_t p = *next, sent = 0;
	uint8_t *body, *ent, *data;
	struct residency res;

	if (ensure(s, rec_total(STREAM_MAX_PAGES_BODY)))
		return -1;
	residency_init(&res);
	body = s->buf + STREAM_REC_HEADER_SIZE;
	ent = body + 8;
	/* Data is staged after a full entry table, moved down when the
	 * record holds fewer pages. */
	data = ent + 8 * STREAM_MAX_PAGES;
	while (p < r->npages && (!max_pages || sent < max_pages)) {
		uint32_t count = 0;
		size_t len, dlen = 0;
		bool lz4 = record_lz4(s);
		uint64_t t0;

		while (p < r->npages && count < STREAM_MAX_PAGES &&
		       (!max_pages || sent < max_pages)) {
			const uint8_t *src;
			uint32_t fl;

			if (bitmap) {
				uint64_t w = bitmap[p >> 6] >> (p & 63);

				if (!w) {
					p = (p | 63) + 1;
					continue;
				}
				p += (uint64_t)__builtin_ctzll(w);
				if (p >= r->npages)
					break;
			}
			src = r->host + (p << RAM_PAGE_SHIFT);
			if (s->skip_zero && (page_untouched(&res, r, p) ||
					     stream_page_is_zero(src))) {
				/* The reader's page is zero already. */
				s->skipped++;
				sent++;
				p++;
				continue;
			}
			if (stream_page_is_zero(src)) {
				fl = STREAM_PAGE_ZERO;
				s->zero_pages++;
			} else {
				dlen += put_page(s, data + dlen, src, lz4, &fl);
			}
			put64(ent + 8 * count, p << STREAM_PAGE_INDEX_SHIFT | fl);
			count++;
			sent++;
			p++;
		}
		if (!count)
			break;
		put32(body, count);
		put32(body + 4, 0);
		if (count < STREAM_MAX_PAGES && dlen)
			memmove(ent + 8 * count, data, dlen);
		len = 8 + 8 * (size_t)count + dlen;
		t0 = s->lz4_when_behind ? mono_ns() : 0;
		if (rec_send(s, STREAM_REC_PAGES, 0, (uint32_t)len))
			return -1;
		if (s->lz4_when_behind) {
			s->wire_ns += mono_ns() - t0;
			s->wire_bytes += rec_total((uint32_t)len);
		}
		s->pages += count;
	}
	*next = p;
	return 0;
}

int stream_write_pages(stream_t *s, const ram_t *r, const uint64_t *bitmap)
{
	uint64_t next = 0;

	return stream_write_pages_from(s, r, bitmap, &next, 0);
}

static int pages_len_bad(stream_t *s, const stream_rec_t *rec,
			 uint32_t count)
{
	return fail(s, "record %llu: PAGES length %u does not match its %u "
		    "entries", (unsigned long long)rec->seq, rec->len, count);
}

int stream_load_pages(stream_t *s, const stream_rec_t *rec, ram_t *r)
{
	const uint8_t *b = rec->body, *data;
	unsigned long long seq = (unsigned long long)rec->seq;
	uint32_t count, nlz4 = 0, known;
	uint64_t prev = 0, dlen, off = 0;

	if (rec->type != STREAM_REC_PAGES || rec->len < 8)
		return fail(s, "record %llu: PAGES record too short", seq);
	count = get32(b);
	if (count == 0 || count > STREAM_MAX_PAGES)
		return fail(s, "record %llu: PAGES count %u (1 to %u)", seq,
			    count, STREAM_MAX_PAGES);
	if (get32(b + 4))
		return fail(s, "record %llu: PAGES reserved field not zero",
			    seq);
	if (rec->len < 8 + 8 * (uint64_t)count)
		return fail(s, "record %llu: PAGES entries cut short", seq);
	/* LZ4 entries exist from version 2 on (Version rules); a version 1
	 * stream that has one is refused. */
	known = s->version == 1 ? STREAM_PAGE_FLAGS_V1 : STREAM_PAGE_FLAGS_KNOWN;
	data = b + 8 + 8 * (size_t)count;
	dlen = rec->len - 8 - 8 * (uint64_t)count;
	/*
	 * Validate every entry, and decompress every LZ4 page into the
	 * staging buffer, before touching RAM: a bad record changes nothing.
	 */
	for (uint32_t i = 0; i < count; i++) {
		uint64_t e = get64(b + 8 + 8 * (size_t)i);
		uint64_t idx = e >> STREAM_PAGE_INDEX_SHIFT;
		uint32_t fl = (uint32_t)(e & ((1u << STREAM_PAGE_INDEX_SHIFT) - 1));
		uint32_t n;
		int got;

		if (fl & ~known)
			return fail(s, "record %llu: page entry with unknown "
				    "flags 0x%x", seq, fl);
		if (fl == (STREAM_PAGE_ZERO | STREAM_PAGE_LZ4))
			return fail(s, "record %llu: page %llu both zero and "
				    "compressed", seq, (unsigned long long)idx);
		if (idx >= r->npages)
			return fail(s, "record %llu: page %llu outside RAM "
				    "(%llu pages)", seq, (unsigned long long)idx,
				    (unsigned long long)r->npages);
		if (i && idx <= prev)
			return fail(s, "record %llu: page indices not increasing",
				    seq);
		prev = idx;
		if (fl & STREAM_PAGE_ZERO)
			continue;
		if (!(fl & STREAM_PAGE_LZ4)) {
			if (dlen - off < STREAM_PAGE_SIZE)
				return pages_len_bad(s, rec, count);
			off += STREAM_PAGE_SIZE;
			continue;
		}
		if (dlen - off < 2)
			return pages_len_bad(s, rec, count);
		n = get16(data + off);
		if (n == 0 || n > STREAM_LZ4_MAX)
			return fail(s, "record %llu: page %llu: compressed "
				    "length %u (1 to %u)", seq,
				    (unsigned long long)idx, n, STREAM_LZ4_MAX);
		if (dlen - off - 2 < n)
			return pages_len_bad(s, rec, count);
		if (!s->unpacked) {
			s->unpacked = malloc((size_t)STREAM_MAX_PAGES *
					     STREAM_PAGE_SIZE);
			if (!s->unpacked)
				return fail(s, "out of memory for compressed "
					    "pages");
		}
		/*
		 * LZ4_decompress_safe never reads past the n input bytes nor
		 * writes past the page; a block must fill the page exactly.
		 */
		got = LZ4_decompress_safe((const char *)data + off + 2,
					  (char *)s->unpacked +
						  (size_t)nlz4 * STREAM_PAGE_SIZE,
					  (int)n, STREAM_PAGE_SIZE);
		if (got < 0)
			return fail(s, "record %llu: page %llu: corrupt LZ4 "
				    "data (or more than a page)", seq,
				    (unsigned long long)idx);
		if (got != (int)STREAM_PAGE_SIZE)
			return fail(s, "record %llu: page %llu: LZ4 data "
				    "makes %d bytes, not a page", seq,
				    (unsigned long long)idx, got);
		nlz4++;
		off += 2 + (uint64_t)n;
	}
	if (off != dlen)
		return pages_len_bad(s, rec, count);
	nlz4 = 0;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t e = get64(b + 8 + 8 * (size_t)i);
		uint64_t idx = e >> STREAM_PAGE_INDEX_SHIFT;
		uint8_t *dst = r->host + (idx << RAM_PAGE_SHIFT);

		if (e & STREAM_PAGE_ZERO) {
			/* Reading untouched RAM allocates nothing. */
			if (!stream_page_is_zero(dst))
				memset(dst, 0, STREAM_PAGE_SIZE);
			s->zero_pages++;
		} else if (e & STREAM_PAGE_LZ4) {
			memcpy(dst, s->unpacked +
					    (size_t)nlz4++ * STREAM_PAGE_SIZE,
			       STREAM_PAGE_SIZE);
			data += 2 + get16(data);
			s->lz4_pages++;
		} else {
			memcpy(dst, data, STREAM_PAGE_SIZE);
			data += STREAM_PAGE_SIZE;
		}
		/* The one RAM write path: dirty log, decoded code. */
		ram_mark_dirty(r, r->base + (idx << RAM_PAGE_SHIFT),
			       STREAM_PAGE_SIZE);
	}
	s->pages += count;
	return 0;
}

/* ---- STATE, END ------------------------------------------------------- */

int stream_write_state(stream_t *s, uint32_t kind, uint32_t index,
		       const char *name, const state_desc_t *d,
		       const void *obj)
{
	size_t nlen = strlen(name), size = state_size(d, d->version);
	size_t len = STREAM_STATE_HDR_SIZE + nlen + size;
	uint8_t *body;

	if (nlen == 0 || nlen > STREAM_MAX_NAME ||
	    !str_ok((const uint8_t *)name, nlen))
		return fail(s, "state section name \"%.64s\" cannot be sent",
			    name);
	if (len > STREAM_MAX_STATE)
		return fail(s, "state section %s: %zu bytes over the limit %u",
			    name, len, STREAM_MAX_STATE);
	if (ensure(s, rec_total((uint32_t)len)))
		return -1;
	body = s->buf + STREAM_REC_HEADER_SIZE;
	put32(body, kind);
	put32(body + 4, index);
	put32(body + 8, d->version);
	put16(body + 12, (uint16_t)nlen);
	memcpy(body + STREAM_STATE_HDR_SIZE, name, nlen);
	if (state_save(d, obj, body + STREAM_STATE_HDR_SIZE + nlen, size) !=
	    size)
		return fail(s, "state section %s: cannot serialise", name);
	return rec_send(s, STREAM_REC_STATE, 0, (uint32_t)len);
}

int stream_parse_state(stream_t *s, const stream_rec_t *r,
		       stream_state_t *out)
{
	const uint8_t *b = r->body;
	uint16_t nlen;

	if (r->type != STREAM_REC_STATE || r->len < STREAM_STATE_HDR_SIZE)
		return fail(s, "record %llu: STATE record too short",
			    (unsigned long long)r->seq);
	out->kind = get32(b);
	out->index = get32(b + 4);
	out->version = get32(b + 8);
	nlen = get16(b + 12);
	if (out->kind < STREAM_STATE_CLOCK || out->kind > STREAM_STATE_DEVICE)
		return fail(s, "record %llu: unknown state kind %u",
			    (unsigned long long)r->seq, out->kind);
	if (nlen == 0 || nlen > STREAM_MAX_NAME ||
	    nlen > r->len - STREAM_STATE_HDR_SIZE ||
	    !str_ok(b + STREAM_STATE_HDR_SIZE, nlen))
		return fail(s, "record %llu: bad state section name",
			    (unsigned long long)r->seq);
	memcpy(out->name, b + STREAM_STATE_HDR_SIZE, nlen);
	out->name[nlen] = '\0';
	out->data = b + STREAM_STATE_HDR_SIZE + nlen;
	out->len = r->len - STREAM_STATE_HDR_SIZE - nlen;
	return 0;
}

int stream_write_end(stream_t *s)
{
	return stream_write_record(s, STREAM_REC_END, 0, NULL, 0);
}

int stream_write_domain(stream_t *s, const char *text)
{
	size_t len = strlen(text);

	if (len > STREAM_MAX_DOMAIN)
		return fail(s, "domain config of %zu bytes over the limit %u",
			    len, STREAM_MAX_DOMAIN);
	/* Optional: a reader that does not know it skips it. */
	return stream_write_record(s, STREAM_REC_DOMAIN, STREAM_REC_OPTIONAL,
				   text, (uint32_t)len);
}

int stream_parse_domain(stream_t *s, const stream_rec_t *r, char **text)
{
	char *t;

	if (r->type != STREAM_REC_DOMAIN)
		return fail(s, "record %llu: not a DOMAIN record",
			    (unsigned long long)r->seq);
	/* The length was checked against STREAM_MAX_DOMAIN from the header. */
	if (memchr(r->body, 0, r->len))
		return fail(s, "record %llu: the domain config contains a NUL "
			    "byte", (unsigned long long)r->seq);
	t = malloc((size_t)r->len + 1);
	if (!t)
		return fail(s, "out of memory");
	memcpy(t, r->body, r->len);
	t[r->len] = '\0';
	*text = t;
	return 0;
}

/* ---- the back channel ------------------------------------------------- */

int stream_write_accept(stream_t *s)
{
	return stream_write_record(s, STREAM_REC_ACCEPT, 0, NULL, 0);
}

int stream_write_committed(stream_t *s)
{
	return stream_write_record(s, STREAM_REC_COMMITTED, 0, NULL, 0);
}

int stream_write_refuse(stream_t *s, const char *reason)
{
	uint8_t body[STREAM_MAX_REFUSE];
	size_t len = strnlen(reason, STREAM_MAX_STRING);

	put16(body, (uint16_t)len);
	memcpy(body + 2, reason, len);
	for (size_t i = 0; i < len; i++)
		if (body[2 + i] < 0x20 || body[2 + i] == 0x7f)
			body[2 + i] = '?';
	return stream_write_record(s, STREAM_REC_REFUSE, 0, body,
				   (uint32_t)(2 + len));
}

int stream_read_reply(stream_t *s, uint16_t *type, char *reason,
		      size_t reason_len)
{
	stream_rec_t r;
	struct rbuf rb;
	const char *str;
	uint16_t len = 0;

	if (reason_len)
		reason[0] = '\0';
	if (stream_read_record(s, &r))
		return -1;
	*type = r.type;
	if (r.type != STREAM_REC_REFUSE)
		return 0;
	rb = (struct rbuf){ .p = r.body, .len = r.len };
	str = rb_str(&rb, STREAM_MAX_STRING, &len);
	if (rb.bad || rb.pos != rb.len)
		return fail(s, "back record %llu: malformed REFUSE",
			    (unsigned long long)r.seq);
	if (reason_len)
		snprintf(reason, reason_len, "%.*s", (int)len, str);
	return 0;
}
