// SPDX-License-Identifier: MIT
/*
 * Decoded-instruction cache storage and invalidation (see cpu/dcache.h).
 */
#include "cpu/dcache.h"

#include <stdlib.h>
#include <string.h>

static void dpage_clear(dcache_t *dc, dpage_t *p, unsigned first,
			unsigned last)
{
	for (unsigned i = first; i <= last; i++)
		p->s[i].h = dc->undecoded;
}

/* ram_mark_dirty() hook: [gpa, gpa+len) was written; len > 0, in RAM. */
static void dcache_written(void *cache, uint64_t gpa, uint64_t len)
{
	dcache_t *dc = cache;
	ram_t *r = dc->ram;
	uint64_t off = gpa - r->base, end = off + len;

	for (uint64_t pfn = off >> RAM_PAGE_SHIFT;
	     pfn <= (end - 1) >> RAM_PAGE_SHIFT; pfn++) {
		uint64_t pstart = pfn << RAM_PAGE_SHIFT;
		uint64_t a = off > pstart ? off - pstart : 0;
		uint64_t b = end - pstart < RAM_PAGE_SIZE ? end - pstart
							  : RAM_PAGE_SIZE;
		dpage_t *p = dc->map[pfn];

		if (!p)
			continue;
		/* A 32-bit instruction starting one parcel earlier overlaps
		 * byte a too; one starting in the previous page is never
		 * cached (the interpreter decodes it each time). */
		dpage_clear(dc, p, a >= 2 ? (unsigned)(a - 2) / 2 : 0,
			    (unsigned)(b - 1) / 2);
	}
}

static void dcache_free(void *cache)
{
	dcache_t *dc = cache;

	for (unsigned i = 0; i < dc->nalloc; i++)
		free(dc->pages[i]);
	free(dc->pages);
	free(dc->map);
	free(dc->ram->code);
	dc->ram->code = NULL;
	dc->ram->code_cache = NULL;
	dc->ram->code_written = NULL;
	dc->ram->code_free = NULL;
	free(dc);
}

dcache_t *dcache_get(ram_t *ram, const void *undecoded, const void *page_end)
{
	dcache_t *dc = ram->code_cache;

	if (dc)
		return dc;
	dc = calloc(1, sizeof(*dc));
	if (!dc)
		return NULL;
	dc->ram = ram;
	dc->undecoded = undecoded;
	dc->page_end = page_end;
	dc->map = calloc(ram->npages, sizeof(*dc->map));
	dc->pages = calloc(DCACHE_MAX_PAGES, sizeof(*dc->pages));
	ram->code = calloc((ram->npages + 63) / 64, sizeof(uint64_t));
	if (!dc->map || !dc->pages || !ram->code) {
		free(dc->map);
		free(dc->pages);
		free(ram->code);
		ram->code = NULL;
		free(dc);
		return NULL;
	}
	ram->code_cache = dc;
	ram->code_written = dcache_written;
	ram->code_free = dcache_free;
	return dc;
}

void dcache_flush(dcache_t *dc)
{
	for (unsigned i = 0; i < dc->nused; i++) {
		uint64_t pfn = dc->pages[i]->pfn;

		dc->map[pfn] = NULL;
		dc->ram->code[pfn >> 6] &= ~(1ull << (pfn & 63));
	}
	dc->nused = 0;
	dc->flushes++;
}

dpage_t *dcache_page(dcache_t *dc, uint64_t pfn)
{
	dpage_t *p = dc->map[pfn];

	if (p)
		return p;
	if (dc->nused == DCACHE_MAX_PAGES)
		dcache_flush(dc);
	if (dc->nused == dc->nalloc) {
		void *mem;

		if (posix_memalign(&mem, 64, sizeof(*p)))
			return NULL;
		p = mem;
		dc->pages[dc->nalloc++] = p;
	}
	p = dc->pages[dc->nused++];
	p->pfn = pfn;
	dpage_clear(dc, p, 0, DCACHE_SLOTS - 1);
	p->s[DCACHE_SLOTS].h = dc->page_end;
	p->s[DCACHE_SLOTS + 1].h = dc->page_end;
	dc->map[pfn] = p;
	dc->ram->code[pfn >> 6] |= 1ull << (pfn & 63);
	/* Write-TLB entries for the page must go: stores to it now take the
	 * slow path, which invalidates (ram.h). */
	dc->ram->generation++;
	return p;
}
