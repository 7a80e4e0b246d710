/* SPDX-License-Identifier: MIT */
/*
 * Decoded-instruction cache: host-side, never saved.
 *
 * Every guest-physical RAM page the harts execute from gets an array of
 * slots, one per 16-bit parcel, each holding an instruction decoded once:
 * the interpreter handler and pre-extracted operands. The interpreter walks
 * the slots of the current page; an undecoded slot points at the decoder,
 * and two sentinel slots past the end of the page leave the page.
 *
 * Coherence rides on the single RAM write path (machine/ram.h): a page with
 * slots is marked in ram->code, such pages never enter a write TLB, and
 * ram_mark_dirty() -- reached by every CPU slow-path store, AMO, page-table
 * A/D update and device DMA -- calls back into the cache, which resets the
 * slots the written bytes overlap. So a store over an instruction (even the
 * next one in the running page) is seen the next time it executes, which is
 * also all FENCE.I has to guarantee (unprivileged spec chapter 6).
 *
 * Memory is bounded: at most DCACHE_MAX_PAGES pages have slots; when a new
 * page is needed beyond that, every page is dropped and decoding starts
 * over. That only happens at a point where no slot is in use.
 */
#ifndef TERN_DCACHE_H
#define TERN_DCACHE_H

#include <stdint.h>

#include "machine/ram.h"

#define DCACHE_SLOTS 2048		/* parcels per 4 KiB page */
#define DCACHE_MAX_PAGES 1024		/* 1024 * 32 KiB = 32 MiB at most */

/* One decoded instruction; 16 bytes so slot index maps to byte offset. */
typedef struct dslot {
	const void *h;		/* interpreter handler (label address) */
	int32_t imm;		/* immediate, or the raw instruction */
	uint8_t rd, rs1, rs2;
	uint8_t pad;
} dslot_t;

typedef struct dpage {
	/* DCACHE_SLOTS parcels, then two sentinels that leave the page. */
	dslot_t s[DCACHE_SLOTS + 2];
	uint64_t pfn;		/* RAM page index */
} dpage_t;

typedef struct dcache {
	ram_t *ram;
	dpage_t **map;		/* RAM page index -> slots, NULL if none */
	dpage_t **pages;	/* allocated pages; the first nused are mapped */
	unsigned nused, nalloc;
	const void *undecoded;	/* handler of an empty slot */
	const void *page_end;	/* handler of the sentinels */
	uint64_t flushes;	/* times every page was dropped */
} dcache_t;

/*
 * The RAM's cache, created on first use with the interpreter's two special
 * handlers; freed with the RAM. NULL when out of memory.
 */
dcache_t *dcache_get(ram_t *ram, const void *undecoded, const void *page_end);

/*
 * Slots of RAM page pfn, allocating (and marking the page as code) when it
 * has none. May drop every other page first. NULL when out of memory.
 */
dpage_t *dcache_page(dcache_t *dc, uint64_t pfn);

/* Drops every page's slots. */
void dcache_flush(dcache_t *dc);

#endif
