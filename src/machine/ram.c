// SPDX-License-Identifier: MIT
#include "machine/ram.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int ram_init(ram_t *r, uint64_t base, uint64_t size, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	if (size == 0 || size % RAM_PAGE_SIZE) {
		snprintf(err, errlen, "memory size must be a non-zero multiple of 4 KiB");
		return -1;
	}
	/* MAP_NORESERVE: untouched guest pages cost the host nothing. */
	r->host = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r->host == MAP_FAILED) {
		r->host = NULL;
		snprintf(err, errlen, "cannot allocate %llu MiB of guest memory: %s",
			 (unsigned long long)(size >> 20), strerror(errno));
		return -1;
	}
	r->base = base;
	r->size = size;
	r->npages = size >> RAM_PAGE_SHIFT;
	r->dirty = calloc((r->npages + 63) / 64, sizeof(uint64_t));
	if (!r->dirty) {
		munmap(r->host, size);
		r->host = NULL;
		snprintf(err, errlen, "out of memory for the dirty bitmap");
		return -1;
	}
	return 0;
}

void ram_free(ram_t *r)
{
	if (r->code_free)
		r->code_free(r->code_cache);
	if (r->host)
		munmap(r->host, r->size);
	free(r->dirty);
	memset(r, 0, sizeof(*r));
}

void ram_mark_dirty(ram_t *r, uint64_t gpa, uint64_t len)
{
	uint64_t first, last;

	if (len == 0 || !ram_contains(r, gpa, 1))
		return;
	if (len > r->size - (gpa - r->base))
		len = r->size - (gpa - r->base);
	first = (gpa - r->base) >> RAM_PAGE_SHIFT;
	last = (gpa - r->base + len - 1) >> RAM_PAGE_SHIFT;
	if (r->logging)
		for (uint64_t p = first; p <= last; p++)
			r->dirty[p >> 6] |= 1ull << (p & 63);
	if (r->code) {
		for (uint64_t p = first; p <= last; p++) {
			if (ram_page_code(r, p)) {
				r->code_written(r->code_cache, gpa, len);
				break;
			}
		}
	}
}

int ram_dma_read(const ram_t *r, uint64_t gpa, void *buf, size_t len)
{
	const uint8_t *p = ram_ptr(r, gpa, len);

	if (!p)
		return -1;
	memcpy(buf, p, len);
	return 0;
}

int ram_dma_write(ram_t *r, uint64_t gpa, const void *buf, size_t len)
{
	uint8_t *p = ram_ptr(r, gpa, len);

	if (!p)
		return -1;
	memcpy(p, buf, len);
	ram_mark_dirty(r, gpa, len);
	return 0;
}

void ram_log_start(ram_t *r)
{
	size_t words = (r->npages + 63) / 64;

	for (size_t i = 0; i < words; i++)
		r->dirty[i] = ~0ull;
	if (r->npages % 64)
		r->dirty[words - 1] = (1ull << (r->npages % 64)) - 1;
	r->logging = true;
	r->generation++;
}

void ram_log_stop(ram_t *r)
{
	r->logging = false;
	r->generation++;
}

void ram_log_harvest(ram_t *r, uint64_t *out)
{
	size_t words = (r->npages + 63) / 64;

	memcpy(out, r->dirty, words * sizeof(uint64_t));
	memset(r->dirty, 0, words * sizeof(uint64_t));
	r->generation++;
}
