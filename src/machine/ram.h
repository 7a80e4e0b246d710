/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM and its dirty log.
 *
 * There is one write path for dirty tracking (ARCHITECTURE.md rule 3): CPU
 * stores reach RAM through the hart's write TLB, which only holds pages that
 * are already marked dirty in the current round while logging is on; any
 * other store takes the slow path, which calls ram_mark_dirty(). Device DMA
 * goes through ram_dma_write(), which marks too.
 *
 * The same path keeps decoded instructions coherent (cpu/dcache.h): pages
 * marked in `code` never enter a write TLB, and ram_mark_dirty() reports
 * writes to them through code_written.
 */
#ifndef TERN_RAM_H
#define TERN_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAM_PAGE_SHIFT 12
#define RAM_PAGE_SIZE (1u << RAM_PAGE_SHIFT)

typedef struct ram {
	uint8_t *host;		/* mmap'd guest memory */
	uint64_t base;		/* guest-physical address of host[0] */
	uint64_t size;		/* bytes, multiple of RAM_PAGE_SIZE */
	uint64_t npages;
	uint64_t *dirty;	/* one bit per page */
	bool logging;		/* dirty logging on */
	uint64_t generation;	/* bumped when harts must drop write TLBs */

	/* Decoded-code tracking, owned by the CPU layer (cpu/dcache.h). */
	uint64_t *code;		/* one bit per page holding decoded code */
	void *code_cache;
	void (*code_written)(void *cache, uint64_t gpa, uint64_t len);
	void (*code_free)(void *cache);
} ram_t;

int ram_init(ram_t *r, uint64_t base, uint64_t size, char *err, size_t errlen);
void ram_free(ram_t *r);

static inline bool ram_contains(const ram_t *r, uint64_t gpa, uint64_t len)
{
	return gpa >= r->base && len <= r->size && gpa - r->base <= r->size - len;
}

/* Host pointer for [gpa, gpa+len) or NULL when not entirely inside RAM. */
static inline uint8_t *ram_ptr(const ram_t *r, uint64_t gpa, uint64_t len)
{
	return ram_contains(r, gpa, len) ? r->host + (gpa - r->base) : NULL;
}

static inline bool ram_page_dirty(const ram_t *r, uint64_t pfn)
{
	return (r->dirty[pfn >> 6] >> (pfn & 63)) & 1;
}

/* True when page pfn holds decoded instructions: stores must not bypass
 * ram_mark_dirty() (no write-TLB entry). */
static inline bool ram_page_code(const ram_t *r, uint64_t pfn)
{
	return r->code && ((r->code[pfn >> 6] >> (pfn & 63)) & 1);
}

/*
 * Marks every page touching [gpa, gpa+len) dirty (while logging), and drops
 * decoded instructions the write overlaps. Every write to RAM other than
 * through a write-TLB entry must call it.
 */
void ram_mark_dirty(ram_t *r, uint64_t gpa, uint64_t len);

/* Device DMA. Return 0, or -1 if the range is not entirely guest RAM. */
int ram_dma_read(const ram_t *r, uint64_t gpa, void *buf, size_t len);
int ram_dma_write(ram_t *r, uint64_t gpa, const void *buf, size_t len);

/* Starts logging with every page dirty (the first pre-copy round sends all). */
void ram_log_start(ram_t *r);
void ram_log_stop(ram_t *r);

/*
 * Copies the dirty bitmap into out (npages bits) and clears it. Bumps
 * the generation so harts drop their write TLBs before their next store.
 */
void ram_log_harvest(ram_t *r, uint64_t *out);

#endif
