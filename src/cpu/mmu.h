/* SPDX-License-Identifier: MIT */
/*
 * Virtual memory (privileged spec chapter 4: Sv39, Sv48) and the software
 * TLBs in front of it.
 *
 * A TLB entry maps one 4 KiB virtual page to host memory (RAM only; MMIO
 * pages never enter a TLB). Its tag is the page's virtual address with a key
 * in bits 3..6: the effective privilege plus SUM and MXR for data, the
 * privilege for code. A lookup builds the tag from the address, keeping the
 * address bits below the access size, so one compare checks page, key and
 * alignment at once; misaligned and page-crossing accesses miss and take the
 * slow path, which handles them.
 */
#ifndef TERN_MMU_H
#define TERN_MMU_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu/hart.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)
#define PAGE_MASK (PAGE_SIZE - 1)

#define TLB_KEY_SHIFT 3
#define TLB_INVALID UINT64_MAX

enum mmu_access {
	MMU_READ = 0,
	MMU_WRITE = 1,
	MMU_EXEC = 2,
};

/* Page-table entry bits (privileged spec 4.3.1) */
#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_G (1ull << 5)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)

/* Privilege used for loads and stores (MPRV, privileged spec 3.1.6.3). */
unsigned mmu_data_priv(const hart_state_t *s);

/*
 * Walks the page table for va. Returns 0 with *pa set, or the exception
 * cause (page fault or access fault of the access type). Sets A, and D for
 * writes, in the leaf PTE as hardware would (Svadu behaviour).
 */
unsigned mmu_translate(hart_t *h, uint64_t va, enum mmu_access acc,
		       uint64_t *pa);

/* Drops every cached translation. */
void mmu_tlb_flush_all(hart_t *h);
void mmu_tlb_flush_write(hart_t *h);

/*
 * Slow paths: TLB refill, misaligned and page-crossing accesses, MMIO.
 * Return false with h->exc_cause/exc_tval set when the access traps.
 */
bool mmu_load_slow(hart_t *h, uint64_t va, unsigned size, uint64_t *val);
bool mmu_store_slow(hart_t *h, uint64_t va, unsigned size, uint64_t val);
/* Host pointer for a naturally aligned AMO (store permission, RAM only). */
uint8_t *mmu_amo_slow(hart_t *h, uint64_t va, unsigned size);
/* Translates the code page of pc; *addend makes host = pc + addend. */
bool mmu_fetch_slow(hart_t *h, uint64_t pc, uintptr_t *addend);
/* The 16-bit parcel at va (second half of a page-crossing instruction). */
bool mmu_fetch16(hart_t *h, uint64_t va, uint32_t *parcel);

static inline uint64_t tlb_tag(uint64_t va, unsigned size, uint64_t key)
{
	return (va & ~(PAGE_MASK & ~(uint64_t)(size - 1))) | key;
}

static inline tlb_entry_t *tlb_slot(tlb_entry_t *t, uint64_t va)
{
	return &t[(va >> PAGE_SHIFT) & (TLB_SIZE - 1)];
}

/* Loads size bytes (1, 2, 4, 8), zero-extended. */
static inline __attribute__((always_inline)) bool
mmu_load(hart_t *h, uint64_t va, unsigned size, uint64_t key, uint64_t *val)
{
	const tlb_entry_t *e = tlb_slot(h->tlb_read, va);

	if (__builtin_expect(e->tag == tlb_tag(va, size, key), 1)) {
		const void *p = (const void *)(uintptr_t)(va + e->addend);

		switch (size) {
		case 1:
			*val = *(const uint8_t *)p;
			break;
		case 2: {
			uint16_t v;

			memcpy(&v, p, 2);
			*val = v;
			break;
		}
		case 4: {
			uint32_t v;

			memcpy(&v, p, 4);
			*val = v;
			break;
		}
		default:
			memcpy(val, p, 8);
			break;
		}
		return true;
	}
	{
		/* Keeps *val out of memory on the fast path. */
		uint64_t tmp = 0;
		bool ok = mmu_load_slow(h, va, size, &tmp);

		*val = tmp;
		return ok;
	}
}

static inline __attribute__((always_inline)) bool
mmu_store(hart_t *h, uint64_t va, unsigned size, uint64_t key, uint64_t val)
{
	const tlb_entry_t *e = tlb_slot(h->tlb_write, va);

	if (__builtin_expect(e->tag == tlb_tag(va, size, key), 1)) {
		void *p = (void *)(uintptr_t)(va + e->addend);

		switch (size) {
		case 1:
			*(uint8_t *)p = (uint8_t)val;
			break;
		case 2: {
			uint16_t v = (uint16_t)val;

			memcpy(p, &v, 2);
			break;
		}
		case 4: {
			uint32_t v = (uint32_t)val;

			memcpy(p, &v, 4);
			break;
		}
		default:
			memcpy(p, &val, 8);
			break;
		}
		return true;
	}
	return mmu_store_slow(h, va, size, val);
}

/* Host pointer for an aligned AMO/SC target, or NULL (exception set). */
static inline uint8_t *mmu_amo_ptr(hart_t *h, uint64_t va, unsigned size,
				   uint64_t key)
{
	const tlb_entry_t *e = tlb_slot(h->tlb_write, va);

	if (__builtin_expect(e->tag == tlb_tag(va, size, key), 1))
		return (uint8_t *)(uintptr_t)(va + e->addend);
	return mmu_amo_slow(h, va, size);
}

#endif
