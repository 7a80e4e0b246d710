/* SPDX-License-Identifier: MIT */
/*
 * The record layer of the migration stream (docs/migration-stream.md, which
 * this header mirrors): the stream header, checksummed records, the machine
 * description, page records and state records.
 *
 * A stream_t wraps one file descriptor (file, pipe or socket) with blocking,
 * full-length I/O. The same calls serve a snapshot file and the live
 * pre-copy sender, which calls stream_write_pages_from() once per dirty
 * bitmap, a bounded number of pages at a time, between other work.
 *
 * Everything read is hostile input: every call that reads checks lengths,
 * counts and indices first, and fails with a one-line reason in s->err.
 */
#ifndef TERN_STREAM_H
#define TERN_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/machine.h"
#include "machine/state.h"

/* Header (32 bytes) */
#define STREAM_MAGIC "\x7fTERNVM\n"	/* 8 bytes, no NUL */
#define STREAM_MAGIC_LEN 8
#define STREAM_VERSION 2u	/* 2: LZ4 page entries */
#define STREAM_BYTE_ORDER 0x01020304u
#define STREAM_PAGE_SIZE 4096u
#define STREAM_HEADER_SIZE 32u
#define STREAM_HDR_OFF_MAGIC 0
#define STREAM_HDR_OFF_VERSION 8
#define STREAM_HDR_OFF_BYTE_ORDER 12
#define STREAM_HDR_OFF_PAGE_SIZE 16
#define STREAM_HDR_OFF_FLAGS 20
#define STREAM_HDR_OFF_CHECKSUM 24

/* Record framing: u16 type, u16 flags, u32 length, body, pad to 8, u64 sum */
#define STREAM_REC_HEADER_SIZE 8u
#define STREAM_REC_TRAILER_SIZE 8u
#define STREAM_REC_OPTIONAL 0x0001u	/* flags bit 0 */
#define STREAM_REC_FLAGS_KNOWN STREAM_REC_OPTIONAL

enum stream_rec_type {
	STREAM_REC_MACHINE = 1,
	STREAM_REC_PAGES = 2,
	STREAM_REC_STATE = 3,
	STREAM_REC_END = 4,
	STREAM_REC_DOMAIN = 5,	/* optional: the domain config's text */
	/* The back channel, destination to source (live migration only). */
	STREAM_REC_ACCEPT = 16,
	STREAM_REC_REFUSE = 17,
	STREAM_REC_COMMITTED = 18,
};

/* PAGES body: u32 count, u32 reserved, u64 entries[count], data items */
#define STREAM_PAGE_ZERO 0x01u		/* entry flag: all-zero page, no data */
#define STREAM_PAGE_LZ4 0x02u		/* entry flag (version 2): u16 n, then
					 * n bytes, an LZ4 block of the page */
#define STREAM_PAGE_FLAGS_V1 STREAM_PAGE_ZERO
#define STREAM_PAGE_FLAGS_KNOWN (STREAM_PAGE_ZERO | STREAM_PAGE_LZ4)
/* A compressed page is always smaller than the page, length included. */
#define STREAM_LZ4_MAX (STREAM_PAGE_SIZE - 3u)
#define STREAM_PAGE_INDEX_SHIFT 8	/* entry = index << 8 | flags */

/* STATE body: u32 kind, u32 index, u32 version, u16 namelen, name, data */
enum stream_state_kind {
	STREAM_STATE_CLOCK = 1,
	STREAM_STATE_HART = 2,
	STREAM_STATE_DEVICE = 3,
};
#define STREAM_STATE_HDR_SIZE 14u

/* Limits */
#define STREAM_MAX_RECORD (8u << 20)
#define STREAM_MAX_MACHINE (1u << 20)
#define STREAM_MAX_STATE (1u << 20)
#define STREAM_MAX_PAGES 1024u
#define STREAM_MAX_PAGES_BODY                                                  \
	(8u + STREAM_MAX_PAGES * (8u + STREAM_PAGE_SIZE))
#define STREAM_MAX_STRING 4096u
#define STREAM_MAX_NAME 255u
#define STREAM_MAX_HARTS 1024u
#define STREAM_MAX_DEVICES 256u
#define STREAM_MAX_REFUSE (2u + STREAM_MAX_STRING)
#define STREAM_MAX_DOMAIN 65536u

_Static_assert(STREAM_PAGE_SIZE == RAM_PAGE_SIZE, "stream page = RAM page");
_Static_assert(STREAM_MAX_PAGES_BODY <= STREAM_MAX_RECORD, "page limit");

#define STREAM_ERR_LEN 256

typedef struct stream {
	int fd;
	uint32_t our_version;	/* version written; reader accepts it and -1 */
	uint32_t version;	/* version of the stream read (after header) */
	uint64_t seq;		/* records written or read so far */
	uint64_t bytes;		/* bytes written or read so far */
	uint64_t pages;		/* pages written or loaded (with zero pages) */
	uint64_t zero_pages;	/* of which sent as ZERO flags */
	uint64_t skipped;	/* zero pages left out (skip_zero) */
	uint64_t lz4_pages;	/* of which sent or loaded compressed */
	uint64_t saved;		/* bytes compression kept off the wire */
	bool compress;		/* writer: LZ4 pages that shrink (set by
				 * stream_init; only in version 2 streams) */
	bool lz4_when_behind;	/* writer: compress only while the link is
				 * slower than compression frees (a live
				 * connection; see record_lz4) */
	uint64_t wire_ns, wire_bytes;	/* writer: PAGES writes, timed */
	uint64_t link_limit;	/* writer: bytes per second the caller lets
				 * through (a bandwidth limit), 0: none */
	uint64_t lz4_ns, lz4_in, lz4_out;	/* writer: compression, timed */
	uint32_t lz4_skip;	/* writer: pages to send raw untried */
	uint32_t lz4_backoff;	/* writer: the next skip after a miss */
	bool skip_zero;		/* leave zero pages out: the reader's RAM is
				 * known to be zero there (first round) */
	bool back;		/* the back channel: no header, no END, only
				 * ACCEPT / REFUSE / COMMITTED records */
	bool ended;		/* END written or read */
	bool not_socket;	/* send(MSG_NOSIGNAL) failed with ENOTSOCK */
	/*
	 * A non-blocking fd (a pipe, which has no SO_SNDTIMEO): a write that
	 * would block waits with poll() for at most timeout_ms (0: no limit)
	 * and gives up as soon as cancel_fd (>= 0) becomes readable.
	 */
	bool poll_writes;
	unsigned timeout_ms;
	int cancel_fd;		/* -1: none */
	uint8_t *buf;		/* one record: header, body, padding, sum */
	size_t cap;
	uint8_t *unpacked;	/* reader: a PAGES record's decompressed
				 * pages, STREAM_MAX_PAGES of them */
	char err[STREAM_ERR_LEN];
} stream_t;

/* A record just read; body points into the stream's buffer until the next
 * read. */
typedef struct stream_rec {
	uint16_t type;
	uint16_t flags;
	uint32_t len;
	const uint8_t *body;
	uint64_t seq;
} stream_rec_t;

/* A parsed STATE record; name and data point into the record body. */
typedef struct stream_state {
	uint32_t kind;
	uint32_t index;
	uint32_t version;
	char name[STREAM_MAX_NAME + 1];
	const uint8_t *data;
	uint32_t len;
} stream_state_t;

void stream_init(stream_t *s, int fd);
void stream_free(stream_t *s);

/* True when a reader of version `ours` reads streams of version v. */
bool stream_version_readable(uint32_t ours, uint32_t v);

/* XXH3-64 of data with seed (the checksum of the spec). */
uint64_t stream_checksum(const void *data, size_t len, uint64_t seed);

int stream_write_header(stream_t *s);
/* Reads and validates the header; sets s->version. */
int stream_read_header(stream_t *s);

/*
 * Writes one record. type/flags as in the spec; len <= STREAM_MAX_RECORD.
 */
int stream_write_record(stream_t *s, uint16_t type, uint16_t flags,
			const void *body, uint32_t len);

/*
 * Reads the next record the reader knows: verifies length limits (before
 * reading the body), checksum and padding; skips unknown optional records
 * and refuses unknown mandatory ones. Refuses to read past END.
 */
int stream_read_record(stream_t *s, stream_rec_t *r);

/* MACHINE: describe m / check a received description against m. */
int stream_write_machine(stream_t *s, const machine_t *m);
int stream_check_machine(stream_t *s, const stream_rec_t *r,
			 const machine_t *m);

/*
 * PAGES: writes the pages of r whose bit is set in bitmap (r->npages bits;
 * NULL means every page), starting at page *next, at most max_pages of them
 * (0 = no limit), in records of up to STREAM_MAX_PAGES pages. *next is
 * left at the first page not yet considered (r->npages when done), so a
 * sender can interleave other work between calls.
 */
int stream_write_pages_from(stream_t *s, const ram_t *r,
			    const uint64_t *bitmap, uint64_t *next,
			    uint64_t max_pages);
/* Every page set in bitmap (NULL: all pages). */
int stream_write_pages(stream_t *s, const ram_t *r, const uint64_t *bitmap);
/* Applies a PAGES record to RAM after validating all of it. */
int stream_load_pages(stream_t *s, const stream_rec_t *rec, ram_t *r);

/* STATE: one section serialised by the state engine. */
int stream_write_state(stream_t *s, uint32_t kind, uint32_t index,
		       const char *name, const state_desc_t *d,
		       const void *obj);
int stream_parse_state(stream_t *s, const stream_rec_t *r,
		       stream_state_t *out);

int stream_write_end(stream_t *s);

/*
 * DOMAIN (optional): the domain config's text, at most STREAM_MAX_DOMAIN
 * bytes, no NUL byte. stream_parse_domain returns it as a new string
 * (malloc) in *text.
 */
int stream_write_domain(stream_t *s, const char *text);
int stream_parse_domain(stream_t *s, const stream_rec_t *r, char **text);

/*
 * The back channel (s->back set): the destination's answers. A reason is
 * a string (control characters are replaced, at most STREAM_MAX_STRING).
 */
int stream_write_accept(stream_t *s);
int stream_write_refuse(stream_t *s, const char *reason);
int stream_write_committed(stream_t *s);
/*
 * Reads one back-channel record: *type is STREAM_REC_ACCEPT, _REFUSE (the
 * reason, NUL-terminated, in reason) or _COMMITTED.
 */
int stream_read_reply(stream_t *s, uint16_t *type, char *reason,
		      size_t reason_len);

/* True when the page is all zero bytes. */
bool stream_page_is_zero(const void *page);

#endif
