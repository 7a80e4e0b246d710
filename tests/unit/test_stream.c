// SPDX-License-Identifier: MIT
/*
 * The migration stream's record layer (docs/migration-stream.md): framing,
 * checksums, limits, version rules, page records, and refusal of every
 * corrupted or truncated stream with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <lz4.h>

#include "migration/stream.h"

/* ---- helpers ---- */

static int mem_fd(const void *buf, size_t len)
{
	int fd = memfd_create("stream", MFD_CLOEXEC);

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Reads all of fd from offset 0 into a malloc'd buffer. */
static uint8_t *slurp(int fd, size_t *len)
{
	off_t end = lseek(fd, 0, SEEK_END);
	uint8_t *buf = malloc((size_t)end + 1);

	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)end, 0), end);
	*len = (size_t)end;
	return buf;
}

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Reads a whole stream: header, records up to END. Returns 0, or -1 with
 * the reason in err. Counts the records returned.
 */
static int read_all(const uint8_t *buf, size_t len, uint32_t our_version,
		    char *err, unsigned *nrec)
{
	stream_t s;
	stream_rec_t r;
	int fd = mem_fd(buf, len), rc = 0;
	unsigned n = 0;

	stream_init(&s, fd);
	s.our_version = our_version;
	if (stream_read_header(&s)) {
		rc = -1;
	} else {
		do {
			if (stream_read_record(&s, &r)) {
				rc = -1;
				break;
			}
			n++;
		} while (r.type != STREAM_REC_END);
	}
	snprintf(err, STREAM_ERR_LEN, "%s", s.err);
	if (nrec)
		*nrec = n;
	stream_free(&s);
	close(fd);
	return rc;
}

/* header + one STATE-typed record with a 5-byte body (3 bytes padding) +
 * END: every position class in 72 bytes. */
static uint8_t *small_stream(size_t *len)
{
	static const uint8_t body[5] = { 1, 2, 3, 4, 5 };
	stream_t s;
	int fd = mem_fd(NULL, 0);
	uint8_t *buf;

	stream_init(&s, fd);
	assert_int_equal(stream_write_header(&s), 0);
	assert_int_equal(stream_write_record(&s, STREAM_REC_STATE, 0, body, 5),
			 0);
	assert_int_equal(stream_write_end(&s), 0);
	stream_free(&s);
	buf = slurp(fd, len);
	close(fd);
	assert_int_equal(*len, 32 + 8 + 8 + 8 + 16);
	return buf;
}

/* ---- framing ---- */

static void test_record_round_trip(void **state)
{
	static const uint32_t lens[] = { 0, 1, 7, 8, 9, 100, 4097 };
	uint8_t body[4097];
	stream_t w, r;
	stream_rec_t rec;
	int fd = mem_fd(NULL, 0);

	(void)state;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7 + 3);
	stream_init(&w, fd);
	assert_int_equal(stream_write_header(&w), 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		assert_int_equal(stream_write_record(&w, STREAM_REC_STATE, 0,
						     body, lens[i]), 0);
	assert_int_equal(stream_write_end(&w), 0);
	/* Writing after END is refused. */
	assert_int_equal(stream_write_end(&w), -1);
	assert_non_null(strstr(w.err, "after END"));
	assert_int_equal(w.bytes % 8, 0);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)w.bytes);
	stream_free(&w);

	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	stream_init(&r, fd);
	assert_int_equal(stream_read_header(&r), 0);
	assert_int_equal(r.version, STREAM_VERSION);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		assert_int_equal(stream_read_record(&r, &rec), 0);
		assert_int_equal(rec.type, STREAM_REC_STATE);
		assert_int_equal(rec.flags, 0);
		assert_int_equal(rec.len, lens[i]);
		assert_int_equal(rec.seq, i + 1);
		if (lens[i])
			assert_memory_equal(rec.body, body, lens[i]);
	}
	assert_int_equal(stream_read_record(&r, &rec), 0);
	assert_int_equal(rec.type, STREAM_REC_END);
	assert_int_equal(rec.len, 0);
	assert_true(r.ended);
	/* Never past END. */
	assert_int_equal(stream_read_record(&r, &rec), -1);
	assert_non_null(strstr(r.err, "past the END"));
	stream_free(&r);
	close(fd);
}

/* Every single-bit flip anywhere in a small stream is refused. */
static void test_checksum_catches_every_bit(void **state)
{
	char err[STREAM_ERR_LEN];
	size_t len;
	uint8_t *buf = small_stream(&len);

	(void)state;
	assert_int_equal(read_all(buf, len, STREAM_VERSION, err, NULL), 0);
	for (size_t off = 0; off < len; off++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[off] ^= (uint8_t)(1u << bit);
			if (read_all(buf, len, STREAM_VERSION, err, NULL) == 0)
				fail_msg("flip of byte %zu bit %d accepted", off,
					 bit);
			assert_true(err[0] != '\0');
			assert_null(strchr(err, '\n'));
			/* Body, padding and checksum flips are checksum
			 * failures (record 1: body 40..44, pad 45..47,
			 * sum 48..55). */
			if (off >= 40 && off < 56)
				assert_non_null(strstr(err, "checksum"));
			buf[off] ^= (uint8_t)(1u << bit);
		}
	}
	free(buf);
}

static void test_truncated_everywhere(void **state)
{
	char err[STREAM_ERR_LEN];
	size_t len;
	uint8_t *buf = small_stream(&len);

	(void)state;
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(read_all(buf, cut, STREAM_VERSION, err, NULL),
				 -1);
		if (cut == 0)
			assert_non_null(strstr(err, "empty"));
		else
			assert_non_null(strstr(err, "truncated"));
	}
	free(buf);
}

/* A record whose checksum is right but whose padding is not zero. */
static void test_nonzero_padding(void **state)
{
	char err[STREAM_ERR_LEN];
	size_t len;
	uint8_t *buf = small_stream(&len);

	(void)state;
	buf[46] = 0xaa;
	le64(buf + 48, stream_checksum(buf + 32, 16, 1));
	assert_int_equal(read_all(buf, len, STREAM_VERSION, err, NULL), -1);
	assert_non_null(strstr(err, "padding"));
	free(buf);
}

/* Appends a raw record (valid checksum for seq) at buf + *pos. */
static void raw_record(uint8_t *buf, size_t *pos, uint16_t type,
		       uint16_t flags, const void *body, uint32_t len,
		       uint64_t seq)
{
	uint8_t *p = buf + *pos;
	uint32_t pad = (8 - len % 8) % 8;

	p[0] = (uint8_t)type;
	p[1] = (uint8_t)(type >> 8);
	p[2] = (uint8_t)flags;
	p[3] = (uint8_t)(flags >> 8);
	le32(p + 4, len);
	memcpy(p + 8, body, len);
	memset(p + 8 + len, 0, pad);
	le64(p + 8 + len + pad, stream_checksum(p, 8 + len + pad, seq));
	*pos += 16 + len + pad;
}

static size_t header_bytes(uint8_t *buf, uint32_t version)
{
	stream_t s;
	int fd = mem_fd(NULL, 0);

	stream_init(&s, fd);
	s.our_version = version;
	assert_int_equal(stream_write_header(&s), 0);
	assert_int_equal(pread(fd, buf, 32, 0), 32);
	close(fd);
	return 32;
}

static void test_unknown_records(void **state)
{
	char err[STREAM_ERR_LEN];
	uint8_t buf[512];
	size_t pos = header_bytes(buf, STREAM_VERSION);
	unsigned n;

	(void)state;
	raw_record(buf, &pos, 200, STREAM_REC_OPTIONAL, "hint", 4, 1);
	raw_record(buf, &pos, STREAM_REC_STATE, 0, "x", 1, 2);
	raw_record(buf, &pos, 0x7fff, STREAM_REC_OPTIONAL, "", 0, 3);
	raw_record(buf, &pos, STREAM_REC_END, 0, "", 0, 4);
	/* The optional ones are skipped: STATE and END are returned. */
	assert_int_equal(read_all(buf, pos, STREAM_VERSION, err, &n), 0);
	assert_int_equal(n, 2);

	pos = 32;
	raw_record(buf, &pos, 200, 0, "must", 4, 1);
	raw_record(buf, &pos, STREAM_REC_END, 0, "", 0, 2);
	assert_int_equal(read_all(buf, pos, STREAM_VERSION, err, NULL), -1);
	assert_non_null(strstr(err, "unknown mandatory record type 200"));

	/* Type 0 is never valid. */
	pos = 32;
	raw_record(buf, &pos, 0, 0, "", 0, 1);
	assert_int_equal(read_all(buf, pos, STREAM_VERSION, err, NULL), -1);
	assert_non_null(strstr(err, "unknown mandatory"));

	/* Reserved flag bits are refused. */
	pos = 32;
	raw_record(buf, &pos, STREAM_REC_STATE, 0x8000, "x", 1, 1);
	assert_int_equal(read_all(buf, pos, STREAM_VERSION, err, NULL), -1);
	assert_non_null(strstr(err, "unknown flags"));

	/* A record carrying another sequence number (replayed or reordered)
	 * fails its checksum. */
	pos = 32;
	raw_record(buf, &pos, STREAM_REC_STATE, 0, "x", 1, 2);
	assert_int_equal(read_all(buf, pos, STREAM_VERSION, err, NULL), -1);
	assert_non_null(strstr(err, "checksum"));

	/* END has no body. */
	pos = 32;
	raw_record(buf, &pos, STREAM_REC_END, 0, "x", 1, 1);
	assert_int_equal(read_all(buf, pos, STREAM_VERSION, err, NULL), -1);
	assert_non_null(strstr(err, "over the limit"));
}

/* Over-long records are refused from the record header alone. */
static void test_oversized_refused_before_alloc(void **state)
{
	static const struct {
		uint16_t type, flags;
		uint32_t len;
	} cases[] = {
		{ STREAM_REC_STATE, 0, 0xffffffffu },
		{ 999, STREAM_REC_OPTIONAL, STREAM_MAX_RECORD + 1 },
		{ STREAM_REC_PAGES, 0, STREAM_MAX_PAGES_BODY + 1 },
		{ STREAM_REC_MACHINE, 0, STREAM_MAX_MACHINE + 1 },
		{ STREAM_REC_STATE, 0, STREAM_MAX_STATE + 1 },
	};
	uint8_t buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t pos = header_bytes(buf, STREAM_VERSION);
		stream_rec_t r;
		stream_t s;
		int fd;

		buf[pos] = (uint8_t)cases[i].type;
		buf[pos + 1] = (uint8_t)(cases[i].type >> 8);
		buf[pos + 2] = (uint8_t)cases[i].flags;
		buf[pos + 3] = 0;
		le32(buf + pos + 4, cases[i].len);
		fd = mem_fd(buf, pos + 8);
		stream_init(&s, fd);
		assert_int_equal(stream_read_header(&s), 0);
		assert_int_equal(stream_read_record(&s, &r), -1);
		assert_non_null(strstr(s.err, "over the limit"));
		assert_int_equal(s.cap, 0);	/* nothing allocated */
		stream_free(&s);
		close(fd);
	}
}

/* ---- header ---- */

static void refuse_header(uint8_t *h, bool fix_sum, const char *want)
{
	char err[STREAM_ERR_LEN];

	if (fix_sum)
		le64(h + 24, stream_checksum(h, 24, 0));
	assert_int_equal(read_all(h, 32, STREAM_VERSION, err, NULL), -1);
	if (!strstr(err, want))
		fail_msg("expected \"%s\" in \"%s\"", want, err);
}

static void test_bad_headers(void **state)
{
	uint8_t h[32];

	(void)state;
	header_bytes(h, STREAM_VERSION);
	h[1] = 'X';
	refuse_header(h, true, "bad magic");

	header_bytes(h, STREAM_VERSION);
	le32(h + 12, 0x04030201u);	/* a big-endian writer */
	refuse_header(h, true, "byte order");

	header_bytes(h, STREAM_VERSION);
	le32(h + 8, STREAM_VERSION + 1);
	refuse_header(h, true, "version 3 not supported");

	header_bytes(h, STREAM_VERSION);
	le32(h + 8, 0);
	refuse_header(h, true, "version 0 not supported");

	header_bytes(h, STREAM_VERSION);
	le32(h + 16, 65536);
	refuse_header(h, true, "page size 65536");

	header_bytes(h, STREAM_VERSION);
	le32(h + 20, 1);
	refuse_header(h, true, "unknown flags");

	header_bytes(h, STREAM_VERSION);
	h[16] ^= 1;
	refuse_header(h, false, "header checksum");
}

static void test_version_rules(void **state)
{
	char err[STREAM_ERR_LEN], want[64];
	uint8_t buf[128];
	size_t pos;

	(void)state;
	assert_true(stream_version_readable(1, 1));
	assert_false(stream_version_readable(1, 0));
	assert_false(stream_version_readable(1, 2));
	assert_true(stream_version_readable(5, 5));
	assert_true(stream_version_readable(5, 4));
	assert_false(stream_version_readable(5, 3));
	assert_false(stream_version_readable(5, 6));

	/* A reader one version newer reads our stream (the previous one)... */
	pos = header_bytes(buf, STREAM_VERSION);
	raw_record(buf, &pos, STREAM_REC_END, 0, "", 0, 1);
	assert_int_equal(read_all(buf, pos, STREAM_VERSION + 1, err, NULL), 0);
	/* ... one two versions newer does not, */
	assert_int_equal(read_all(buf, pos, STREAM_VERSION + 2, err, NULL), -1);
	assert_non_null(strstr(err, "not supported"));
	/* and we do not read a newer stream. */
	pos = header_bytes(buf, STREAM_VERSION + 1);
	raw_record(buf, &pos, STREAM_REC_END, 0, "", 0, 1);
	assert_int_equal(read_all(buf, pos, STREAM_VERSION, err, NULL), -1);
	snprintf(want, sizeof(want), "version %u not supported",
		 STREAM_VERSION + 1);
	assert_non_null(strstr(err, want));
}

/* A peer that went away is an error, not SIGPIPE. */
static void test_write_to_closed_socket(void **state)
{
	uint8_t body[4096] = { 0 };
	stream_t s;
	int sv[2], rc = 0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	stream_init(&s, sv[0]);
	for (int i = 0; i < 4 && !rc; i++)
		rc = stream_write_record(&s, STREAM_REC_STATE, 0, body,
					 sizeof(body));
	assert_int_equal(rc, -1);
	assert_non_null(strstr(s.err, "cannot write"));
	stream_free(&s);
	close(sv[0]);
}

/* ---- pages ---- */

static void fill_ram(ram_t *r)
{
	for (uint64_t p = 0; p < r->npages; p++) {
		uint8_t *pg = r->host + p * RAM_PAGE_SIZE;

		switch (p % 5) {
		case 0:
			break;	/* zero */
		case 1:
			memset(pg, (int)(p & 0xff) | 1, RAM_PAGE_SIZE);
			break;
		case 2:
			pg[RAM_PAGE_SIZE - 1] = 1;	/* last byte only */
			break;
		default:
			for (unsigned i = 0; i < RAM_PAGE_SIZE; i += 8)
				le64(pg + i, p * 0x9e3779b97f4a7c15ull + i);
		}
	}
}

/* Moves pages from a to b through a stream; returns records written. */
static uint64_t pages_through(ram_t *a, ram_t *b, const uint64_t *bitmap,
			      uint64_t batch)
{
	char err[STREAM_ERR_LEN];
	stream_t w, r;
	stream_rec_t rec;
	uint64_t next = 0, calls = 0, records;
	int fd = mem_fd(NULL, 0);

	stream_init(&w, fd);
	assert_int_equal(stream_write_header(&w), 0);
	while (next < a->npages) {
		assert_int_equal(stream_write_pages_from(&w, a, bitmap, &next,
							 batch), 0);
		calls++;
		assert_true(calls <= a->npages + 1);
	}
	assert_int_equal(stream_write_end(&w), 0);
	records = w.seq - 1;
	stream_free(&w);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	stream_init(&r, fd);
	assert_int_equal(stream_read_header(&r), 0);
	for (;;) {
		if (stream_read_record(&r, &rec))
			fail_msg("%s", r.err);
		if (rec.type == STREAM_REC_END)
			break;
		assert_int_equal(rec.type, STREAM_REC_PAGES);
		assert_true(rec.len <= STREAM_MAX_PAGES_BODY);
		if (stream_load_pages(&r, &rec, b)) {
			snprintf(err, sizeof(err), "%s", r.err);
			fail_msg("%s", err);
		}
	}
	stream_free(&r);
	close(fd);
	return records;
}

static void test_pages_round_trip(void **state)
{
	char err[256];
	ram_t a, b;
	uint64_t *bm;
	size_t words;
	uint64_t recs;

	(void)state;
	/* 2500 pages: three records of at most 1024 pages. */
	assert_int_equal(ram_init(&a, 0x80000000ull, 2500 * 4096ull, err,
				  sizeof(err)), 0);
	assert_int_equal(ram_init(&b, 0x80000000ull, 2500 * 4096ull, err,
				  sizeof(err)), 0);
	fill_ram(&a);
	/* b starts with garbage where a has zero pages: ZERO must clear. */
	memset(b.host, 0x5a, b.size);
	recs = pages_through(&a, &b, NULL, 0);
	assert_int_equal(recs, 3);
	assert_memory_equal(a.host, b.host, a.size);

	/* Only the pages of a bitmap, in batches of 7 pages per call. */
	words = (a.npages + 63) / 64;
	bm = calloc(words, sizeof(*bm));
	assert_non_null(bm);
	for (uint64_t p = 0; p < a.npages; p += 3)
		bm[p >> 6] |= 1ull << (p & 63);
	bm[words - 1] |= ~0ull << (a.npages % 64);	/* bits past the end */
	memset(a.host, 0x11, 4096 * 12);
	memset(b.host, 0, b.size);
	pages_through(&a, &b, bm, 7);
	for (uint64_t p = 0; p < a.npages; p++) {
		const uint8_t *pa = a.host + p * 4096, *pb = b.host + p * 4096;

		if (p % 3 == 0)
			assert_memory_equal(pa, pb, 4096);
		else
			assert_true(stream_page_is_zero(pb));
	}
	free(bm);
	ram_free(&a);
	ram_free(&b);
}

/* Hostile PAGES bodies are refused before RAM is touched. */
static void test_pages_hostile(void **state)
{
	char err[256];
	uint8_t body[8 + 3 * 8 + 4096];
	stream_rec_t rec = { .type = STREAM_REC_PAGES, .body = body, .seq = 1 };
	stream_t s;
	ram_t r;

	(void)state;
	assert_int_equal(ram_init(&r, 0x80000000ull, 16 * 4096ull, err,
				  sizeof(err)), 0);
	stream_init(&s, -1);
	memset(body, 0x77, sizeof(body));

#define ENTRY(i, v) le64(body + 8 + 8 * (i), (v))
#define REFUSE(n, len_, what)                                                  \
	do {                                                                   \
		le32(body, (n));                                               \
		le32(body + 4, 0);                                             \
		rec.len = (len_);                                              \
		assert_int_equal(stream_load_pages(&s, &rec, &r), -1);        \
		if (!strstr(s.err, what))                                      \
			fail_msg("expected \"%s\" in \"%s\"", what, s.err);   \
		assert_true(stream_page_is_zero(r.host));                      \
	} while (0)

	ENTRY(0, 0ull << 8);
	ENTRY(1, 16ull << 8 | 1);	/* page 16 of 16: outside */
	REFUSE(2, 8 + 16 + 4096, "outside RAM");
	ENTRY(1, 0ull << 8 | 1);	/* page 0 twice */
	REFUSE(2, 8 + 16 + 4096, "not increasing");
	ENTRY(1, 3ull << 8 | 4);	/* unknown flag */
	REFUSE(2, 8 + 16 + 4096, "unknown flags");
	ENTRY(1, 3ull << 8 | 1);
	REFUSE(2, 8 + 16, "does not match");	/* data missing */
	REFUSE(2, 8 + 16 + 4096 + 8, "does not match");
	REFUSE(0, 8, "count 0");
	REFUSE(STREAM_MAX_PAGES + 1, 8, "count");
	REFUSE(3, 8 + 16, "cut short");
	REFUSE(1, 4, "too short");
	le32(body, 2);
	le32(body + 4, 5);
	rec.len = 8 + 16 + 4096;
	assert_int_equal(stream_load_pages(&s, &rec, &r), -1);
	assert_non_null(strstr(s.err, "reserved"));
	/* Index bits beyond 2^56 are not truncated into range. */
	ENTRY(1, (1ull << 63) | 1);
	REFUSE(2, 8 + 16 + 4096, "outside RAM");

	/* And the valid form loads. */
	ENTRY(0, 2ull << 8);
	ENTRY(1, 3ull << 8 | 1);
	le32(body, 2);
	rec.len = 8 + 16 + 4096;
	assert_int_equal(stream_load_pages(&s, &rec, &r), 0);
	assert_int_equal(r.host[2 * 4096], 0x77);
#undef ENTRY
#undef REFUSE
	stream_free(&s);
	ram_free(&r);
}

static void test_state_record_parse(void **state)
{
	uint8_t body[64];
	stream_rec_t rec = { .type = STREAM_REC_STATE, .body = body, .seq = 1 };
	stream_state_t st;
	stream_t s;

	(void)state;
	stream_init(&s, -1);
	le32(body, STREAM_STATE_DEVICE);
	le32(body + 4, 0);
	le32(body + 8, 3);
	body[12] = 4;
	body[13] = 0;
	memcpy(body + 14, "uartDATA", 8);
	rec.len = 22;
	assert_int_equal(stream_parse_state(&s, &rec, &st), 0);
	assert_string_equal(st.name, "uart");
	assert_int_equal(st.version, 3);
	assert_int_equal(st.len, 4);
	assert_memory_equal(st.data, "DATA", 4);

	body[12] = 9;	/* name longer than the body */
	assert_int_equal(stream_parse_state(&s, &rec, &st), -1);
	body[12] = 0;	/* empty name */
	assert_int_equal(stream_parse_state(&s, &rec, &st), -1);
	body[12] = 4;
	body[14] = '\n';	/* control character */
	assert_int_equal(stream_parse_state(&s, &rec, &st), -1);
	body[14] = 'u';
	le32(body, 9);	/* unknown kind */
	assert_int_equal(stream_parse_state(&s, &rec, &st), -1);
	assert_non_null(strstr(s.err, "kind"));
	rec.len = 13;
	assert_int_equal(stream_parse_state(&s, &rec, &st), -1);
	stream_free(&s);
}

/* ---- the back channel ---- */

/* ACCEPT, REFUSE with a reason (control characters made safe), COMMITTED;
 * forward records are unknown on the back channel and vice versa. */
static void test_back_channel(void **state)
{
	stream_t w, r;
	char reason[STREAM_MAX_STRING + 1];
	uint16_t type;
	int fd = mem_fd(NULL, 0);
	stream_rec_t rec;

	(void)state;
	stream_init(&w, fd);
	w.back = true;
	assert_int_equal(stream_write_accept(&w), 0);
	assert_int_equal(stream_write_refuse(&w, "RAM size differs:\n 1 MiB"),
			 0);
	assert_int_equal(stream_write_committed(&w), 0);
	assert_int_equal(stream_write_end(&w), 0);	/* END: not back */
	stream_free(&w);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	stream_init(&r, fd);
	r.back = true;
	assert_int_equal(stream_read_reply(&r, &type, reason, sizeof(reason)), 0);
	assert_int_equal(type, STREAM_REC_ACCEPT);
	assert_string_equal(reason, "");
	assert_int_equal(stream_read_reply(&r, &type, reason, sizeof(reason)), 0);
	assert_int_equal(type, STREAM_REC_REFUSE);
	assert_string_equal(reason, "RAM size differs:? 1 MiB");
	assert_int_equal(stream_read_reply(&r, &type, reason, sizeof(reason)), 0);
	assert_int_equal(type, STREAM_REC_COMMITTED);
	assert_int_equal(stream_read_reply(&r, &type, reason, sizeof(reason)),
			 -1);
	assert_non_null(strstr(r.err, "unknown mandatory record type 4"));
	stream_free(&r);

	/* A back-channel record in the forward stream is refused. */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	stream_init(&r, fd);
	assert_int_equal(stream_read_record(&r, &rec), -1);
	assert_non_null(strstr(r.err, "unknown mandatory record type 16"));
	stream_free(&r);
	close(fd);
}

/* A REFUSE whose string overruns its body is refused, not read past. */
static void test_back_channel_hostile(void **state)
{
	uint8_t body[8] = { 200, 0, 'a', 'b' };
	char reason[64];
	uint16_t type;
	stream_t w, r;
	int fd = mem_fd(NULL, 0);

	(void)state;
	stream_init(&w, fd);
	w.back = true;
	assert_int_equal(stream_write_record(&w, STREAM_REC_REFUSE, 0, body, 4),
			 0);
	stream_free(&w);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	stream_init(&r, fd);
	r.back = true;
	assert_int_equal(stream_read_reply(&r, &type, reason, sizeof(reason)),
			 -1);
	assert_non_null(strstr(r.err, "malformed REFUSE"));
	stream_free(&r);
	close(fd);
}

/* skip_zero leaves zero pages out entirely (the first pre-copy round). */
static void test_pages_skip_zero(void **state)
{
	char err[256];
	ram_t a, b;
	stream_t s;
	stream_rec_t rec;
	int fd = mem_fd(NULL, 0);

	(void)state;
	assert_int_equal(ram_init(&a, 0x80000000ull, 100 * 4096ull, err,
				  sizeof(err)), 0);
	assert_int_equal(ram_init(&b, 0x80000000ull, 100 * 4096ull, err,
				  sizeof(err)), 0);
	a.host[5 * 4096 + 7] = 1;
	a.host[70 * 4096] = 2;
	stream_init(&s, fd);
	s.skip_zero = true;
	s.compress = false;	/* the raw layout */
	assert_int_equal(stream_write_pages(&s, &a, NULL), 0);
	assert_int_equal(s.pages, 2);
	assert_int_equal(s.skipped, 98);
	assert_int_equal(s.zero_pages, 0);
	assert_int_equal(s.seq, 1);
	stream_free(&s);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	stream_init(&s, fd);
	assert_int_equal(stream_read_record(&s, &rec), 0);
	assert_int_equal(rec.len, 8 + 2 * 8 + 2 * 4096);
	assert_int_equal(stream_load_pages(&s, &rec, &b), 0);
	assert_memory_equal(a.host, b.host, a.size);
	stream_free(&s);
	close(fd);
	ram_free(&a);
	ram_free(&b);
}

/* Bytes LZ4 cannot shrink (xorshift64). */
static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
}

/* Compressible pages go as LZ4, the others raw; all arrive intact. */
static void test_pages_lz4_round_trip(void **state)
{
	char err[STREAM_ERR_LEN];
	ram_t a, b;
	stream_t s;
	stream_rec_t rec;
	int fd = mem_fd(NULL, 0);
	size_t raw;

	(void)state;
	assert_int_equal(ram_init(&a, 0x80000000ull, 64 * 4096ull, err,
				  sizeof(err)), 0);
	assert_int_equal(ram_init(&b, 0x80000000ull, 64 * 4096ull, err,
				  sizeof(err)), 0);
	for (unsigned p = 0; p < 64; p++) {
		uint8_t *pg = a.host + p * 4096;

		if (p % 4 == 0)		/* text-like: compresses */
			for (unsigned i = 0; i < 4096; i++)
				pg[i] = (uint8_t)("tern page "[i % 10] + p);
		else if (p % 4 == 1)	/* incompressible */
			fill_random(pg, 4096, p + 1);
		else if (p % 4 == 2)	/* one byte */
			pg[4095] = (uint8_t)p;
		/* p % 4 == 3: zero */
	}
	stream_init(&s, fd);
	assert_true(s.compress);
	assert_int_equal(stream_write_header(&s), 0);
	assert_int_equal(stream_write_pages(&s, &a, NULL), 0);
	assert_int_equal(stream_write_end(&s), 0);
	assert_int_equal(s.pages, 64);
	assert_int_equal(s.zero_pages, 16);
	assert_int_equal(s.lz4_pages, 32);	/* text and one-byte pages */
	raw = 8 + 64 * 8 + 48 * 4096;
	assert_true(s.saved > 30 * 4000);
	stream_free(&s);

	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	stream_init(&s, fd);
	assert_int_equal(stream_read_header(&s), 0);
	assert_int_equal(s.version, STREAM_VERSION);
	assert_int_equal(stream_read_record(&s, &rec), 0);
	assert_int_equal(rec.type, STREAM_REC_PAGES);
	assert_true(rec.len < raw - 30 * 4000);
	assert_true(rec.len > 16 * 4096);	/* the random pages, raw */
	assert_int_equal(stream_load_pages(&s, &rec, &b), 0);
	assert_int_equal(s.lz4_pages, 32);
	assert_memory_equal(a.host, b.host, a.size);
	assert_int_equal(stream_read_record(&s, &rec), 0);
	assert_int_equal(rec.type, STREAM_REC_END);
	stream_free(&s);

	/* A writer of version 1, or with compression off, sends raw pages. */
	for (int k = 0; k < 2; k++) {
		assert_int_equal(ftruncate(fd, 0), 0);
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		stream_init(&s, fd);
		if (k)
			s.compress = false;
		else
			s.our_version = 1;
		assert_int_equal(stream_write_pages(&s, &a, NULL), 0);
		assert_int_equal(s.lz4_pages, 0);
		assert_int_equal(s.saved, 0);
		stream_free(&s);
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		stream_init(&s, fd);
		s.version = 1;	/* read as version 1: raw pages only */
		assert_int_equal(stream_read_record(&s, &rec), 0);
		assert_int_equal(rec.len, raw);
		memset(b.host, 0, b.size);
		assert_int_equal(stream_load_pages(&s, &rec, &b), 0);
		assert_memory_equal(a.host, b.host, a.size);
		stream_free(&s);
	}
	close(fd);
	ram_free(&a);
	ram_free(&b);
}

/*
 * Hostile LZ4 entries: cut short, empty, too long, garbage, more or less
 * than a page, in a version 1 stream, with the ZERO flag. Each is refused
 * with a reason, and RAM is untouched even when an earlier page of the same
 * record was valid.
 */
static void test_pages_lz4_hostile(void **state)
{
	static uint8_t body[8 + 16 + 2 * 4096 + 64];
	static uint8_t page[8192], blk[9000];
	stream_rec_t rec = { .type = STREAM_REC_PAGES, .body = body, .seq = 1 };
	char err[STREAM_ERR_LEN];
	stream_t s;
	ram_t r;
	int good, n;
	size_t at;

	(void)state;
	assert_int_equal(ram_init(&r, 0x80000000ull, 16 * 4096ull, err,
				  sizeof(err)), 0);
	stream_init(&s, -1);
	s.version = STREAM_VERSION;
	for (unsigned i = 0; i < sizeof(page); i++)
		page[i] = (uint8_t)("hostile "[i % 8]);
	good = LZ4_compress_default((const char *)page, (char *)blk, 4096,
				    sizeof(blk));
	assert_true(good > 0 && good < 200);

#define REFUSE(len_, what)                                                     \
	do {                                                                   \
		rec.len = (len_);                                              \
		assert_int_equal(stream_load_pages(&s, &rec, &r), -1);        \
		if (!strstr(s.err, what))                                      \
			fail_msg("expected \"%s\" in \"%s\"", what, s.err);   \
		for (unsigned p_ = 0; p_ < 16; p_++)                           \
			assert_true(stream_page_is_zero(r.host + p_ * 4096)); \
	} while (0)

	/* One page: entry 5 | LZ4, then u16 n and the block. */
	le32(body, 1);
	le32(body + 4, 0);
	le64(body + 8, 5ull << 8 | STREAM_PAGE_LZ4);
	at = 16;
	le16(body + at, (uint16_t)good);
	memcpy(body + at + 2, blk, (size_t)good);
	REFUSE(16 + 2 + (uint32_t)good - 1, "does not match");	/* cut short */
	REFUSE(16 + 1, "does not match");		/* length cut */
	REFUSE(16 + 2 + (uint32_t)good + 1, "does not match"); /* trailing */
	le16(body + at, 0);
	REFUSE(16 + 2, "compressed length 0");
	le16(body + at, 4094);
	REFUSE(16 + 2 + 4094, "compressed length 4094");
	/* The block cut short inside (length consistent): corrupt. */
	le16(body + at, (uint16_t)(good - 3));
	REFUSE(16 + 2 + (uint32_t)good - 3, "LZ4");
	/* Garbage. */
	memset(body + at + 2, 0xff, 100);
	le16(body + at, 100);
	REFUSE(16 + 2 + 100, "corrupt LZ4");
	/* Decompresses to more than a page (8 KiB): refused, and nothing is
	 * written past the staging page (the sanitizers would see it). */
	n = LZ4_compress_default((const char *)page, (char *)blk, 8192,
				 sizeof(blk));
	assert_true(n > 0 && n < 4000);
	le16(body + at, (uint16_t)n);
	memcpy(body + at + 2, blk, (size_t)n);
	REFUSE(16 + 2 + (uint32_t)n, "more than a page");
	/* To less than a page. */
	n = LZ4_compress_default((const char *)page, (char *)blk, 2048,
				 sizeof(blk));
	le16(body + at, (uint16_t)n);
	memcpy(body + at + 2, blk, (size_t)n);
	REFUSE(16 + 2 + (uint32_t)n, "2048 bytes, not a page");

	/* A valid page, then a corrupt one: neither is written. */
	good = LZ4_compress_default((const char *)page, (char *)blk, 4096,
				    sizeof(blk));
	le32(body, 2);
	le64(body + 8, 5ull << 8 | STREAM_PAGE_LZ4);
	le64(body + 16, 6ull << 8 | STREAM_PAGE_LZ4);
	at = 24;
	le16(body + at, (uint16_t)good);
	memcpy(body + at + 2, blk, (size_t)good);
	at += 2 + (size_t)good;
	le16(body + at, 50);
	memset(body + at + 2, 0xee, 50);
	REFUSE((uint32_t)(at + 2 + 50), "page 6: corrupt LZ4");

	/* ZERO and LZ4 together. */
	le32(body, 1);
	le64(body + 8, 5ull << 8 | STREAM_PAGE_LZ4 | STREAM_PAGE_ZERO);
	REFUSE(16, "both zero and compressed");

	/* A version 1 stream knows no LZ4 entries. */
	le64(body + 8, 5ull << 8 | STREAM_PAGE_LZ4);
	le16(body + 16, (uint16_t)good);
	memcpy(body + 18, blk, (size_t)good);
	s.version = 1;
	REFUSE(16 + 2 + (uint32_t)good, "unknown flags 0x2");

	/* And the valid form loads, into page 5 only. */
	s.version = STREAM_VERSION;
	rec.len = 16 + 2 + (uint32_t)good;
	assert_int_equal(stream_load_pages(&s, &rec, &r), 0);
	assert_memory_equal(r.host + 5 * 4096, page, 4096);
	assert_true(stream_page_is_zero(r.host + 4 * 4096));
	assert_true(stream_page_is_zero(r.host + 6 * 4096));

	/*
	 * Random damage to the block (its length consistent): each result is
	 * a load or a refusal with a reason, never a read or write out of
	 * bounds (run under the sanitizers to see those).
	 */
	for (uint64_t k = 0, x = 88172645463325252ull; k < 3000; k++) {
		memcpy(body + 18, blk, (size_t)good);
		for (int j = 0; j < 1 + (int)(k % 4); j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			body[18 + x % (uint64_t)good] ^= (uint8_t)(x >> 32 | 1);
		}
		s.err[0] = '\0';
		if (stream_load_pages(&s, &rec, &r))
			assert_true(strlen(s.err) > 0);
	}
#undef REFUSE
	stream_free(&s);
	ram_free(&r);
}

/*
 * A live sender compresses only where it pays: not before it knows the
 * link, and then only on a link slower than what compression frees.
 */
static void test_pages_lz4_when_behind(void **state)
{
	char err[STREAM_ERR_LEN];
	ram_t a;
	stream_t s;
	int fd = mem_fd(NULL, 0);

	(void)state;
	assert_int_equal(ram_init(&a, 0x80000000ull, 64 * 4096ull, err,
				  sizeof(err)), 0);
	for (unsigned i = 0; i < a.size; i++)
		a.host[i] = (uint8_t)("tern page "[i % 10]);
	for (int k = 0; k < 3; k++) {
		stream_init(&s, fd);
		s.lz4_when_behind = true;
		if (k) {
			/* LZ4 measured at 200 MB/s, to half the size. */
			s.lz4_in = 2u << 20;
			s.lz4_ns = 10000000;
			s.lz4_out = 1u << 20;
			/* A link of 16 MB/s (k 1) or 16 GB/s (k 2). */
			s.wire_bytes = 16u << 20;
			s.wire_ns = k == 1 ? 1000000000 : 1000000;
		}
		assert_int_equal(stream_write_pages(&s, &a, NULL), 0);
		assert_int_equal(s.pages, 64);
		if (k == 1)
			assert_int_equal(s.lz4_pages, 64);
		else
			assert_int_equal(s.lz4_pages, 0);
		assert_true(s.wire_bytes > (k ? 16u << 20 : 0));
		stream_free(&s);
	}
	close(fd);
	ram_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_checksum_catches_every_bit),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_nonzero_padding),
		cmocka_unit_test(test_unknown_records),
		cmocka_unit_test(test_oversized_refused_before_alloc),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_version_rules),
		cmocka_unit_test(test_write_to_closed_socket),
		cmocka_unit_test(test_pages_round_trip),
		cmocka_unit_test(test_pages_hostile),
		cmocka_unit_test(test_state_record_parse),
		cmocka_unit_test(test_back_channel),
		cmocka_unit_test(test_back_channel_hostile),
		cmocka_unit_test(test_pages_skip_zero),
		cmocka_unit_test(test_pages_lz4_round_trip),
		cmocka_unit_test(test_pages_lz4_hostile),
		cmocka_unit_test(test_pages_lz4_when_behind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
