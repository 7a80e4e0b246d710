// SPDX-License-Identifier: MIT
/*
 * Address translation (privileged spec 4.3.2 / 4.4 / 4.5) and the slow paths
 * behind the software TLBs: refills, misaligned and page-crossing accesses,
 * MMIO, and the dirty-logging rule for RAM writes (ram.h).
 */
#include "cpu/mmu.h"

#include <string.h>

#include "cpu/cpu_internal.h"
#include "machine/machine.h"

static const uint8_t page_fault_cause[3] = {
	[MMU_READ] = CAUSE_LOAD_PAGE_FAULT,
	[MMU_WRITE] = CAUSE_STORE_PAGE_FAULT,
	[MMU_EXEC] = CAUSE_FETCH_PAGE_FAULT,
};

static const uint8_t access_fault_cause[3] = {
	[MMU_READ] = CAUSE_LOAD_ACCESS,
	[MMU_WRITE] = CAUSE_STORE_ACCESS,
	[MMU_EXEC] = CAUSE_FETCH_ACCESS,
};

/* PTE bits 63:54 (N, PBMT, reserved): no Svnapot/Svpbmt, so must be zero. */
#define PTE_RESERVED (~0ull << 54)
#define PTE_PPN(pte) (((pte) >> 10) & ((1ull << 44) - 1))

unsigned mmu_data_priv(const hart_state_t *s)
{
	if (s->priv == PRV_M && (s->mstatus & MSTATUS_MPRV))
		return (s->mstatus >> MSTATUS_MPP_SHIFT) & 3;
	return s->priv;
}

unsigned mmu_translate(hart_t *h, uint64_t va, enum mmu_access acc,
		       uint64_t *pa)
{
	const hart_state_t *s = &h->s;
	unsigned priv = acc == MMU_EXEC ? s->priv : mmu_data_priv(s);
	unsigned mode = s->satp >> SATP_MODE_SHIFT;
	unsigned levels, va_bits;
	uint64_t table;

	if (priv == PRV_M || mode == SATP_MODE_BARE) {
		*pa = va;
		return 0;
	}
	levels = mode == SATP_MODE_SV48 ? 4 : 3;
	va_bits = PAGE_SHIFT + 9 * levels;
	/* Bits above the VA width must all equal its top bit (4.3.1, 4.4.1). */
	if ((uint64_t)((int64_t)(va << (64 - va_bits)) >> (64 - va_bits)) != va)
		return page_fault_cause[acc];

	table = (s->satp & SATP_PPN_MASK) << PAGE_SHIFT;
	for (int i = (int)levels - 1; i >= 0; i--) {
		unsigned shift = PAGE_SHIFT + 9 * (unsigned)i;
		uint64_t pte_pa = table + ((va >> shift) & 511) * 8;
		uint8_t *pp = ram_ptr(h->ram, pte_pa, 8);
		uint64_t pte, need, off_mask;

		/* A PTE outside RAM: access fault of the original type. */
		if (!pp)
			return access_fault_cause[acc];
		memcpy(&pte, pp, 8);
		if (!(pte & PTE_V) || ((pte & (PTE_R | PTE_W)) == PTE_W) ||
		    (pte & PTE_RESERVED))
			return page_fault_cause[acc];
		if (!(pte & (PTE_R | PTE_X))) {
			/* Pointer to the next level. */
			if (i == 0)
				return page_fault_cause[acc];
			table = PTE_PPN(pte) << PAGE_SHIFT;
			continue;
		}

		/* Leaf (4.3.2 steps 5-8). */
		if (pte & PTE_U) {
			if (priv == PRV_S &&
			    (acc == MMU_EXEC || !(s->mstatus & MSTATUS_SUM)))
				return page_fault_cause[acc];
		} else if (priv == PRV_U) {
			return page_fault_cause[acc];
		}
		switch (acc) {
		case MMU_READ:
			if (!(pte & PTE_R) &&
			    !((s->mstatus & MSTATUS_MXR) && (pte & PTE_X)))
				return page_fault_cause[acc];
			break;
		case MMU_WRITE:
			if (!(pte & PTE_W))
				return page_fault_cause[acc];
			break;
		case MMU_EXEC:
			if (!(pte & PTE_X))
				return page_fault_cause[acc];
			break;
		}
		off_mask = (1ull << shift) - 1;
		/* Misaligned superpage. */
		if ((PTE_PPN(pte) << PAGE_SHIFT) & off_mask)
			return page_fault_cause[acc];
		/* Hardware A/D update, as with Svadu (4.3.2 step 7). */
		need = PTE_A | (acc == MMU_WRITE ? PTE_D : 0);
		if ((pte & need) != need) {
			pte |= need;
			memcpy(pp, &pte, 8);
			ram_mark_dirty(h->ram, pte_pa, 8);
		}
		*pa = (PTE_PPN(pte) << PAGE_SHIFT) | (va & off_mask);
		return 0;
	}
	return page_fault_cause[acc];
}

void mmu_tlb_flush_all(hart_t *h)
{
	memset(h->tlb_read, 0xff, sizeof(h->tlb_read));
	memset(h->tlb_write, 0xff, sizeof(h->tlb_write));
	memset(h->tlb_code, 0xff, sizeof(h->tlb_code));
	h->tlb_satp = h->s.satp;
}

void mmu_tlb_flush_write(hart_t *h)
{
	memset(h->tlb_write, 0xff, sizeof(h->tlb_write));
	h->ram_generation = h->ram->generation;
}

static void tlb_fill(tlb_entry_t *t, uint64_t va, uint64_t key,
		     uint8_t *host_page)
{
	tlb_entry_t *e = tlb_slot(t, va);
	uint64_t page = va & ~PAGE_MASK;

	e->tag = page | key;
	e->addend = (uintptr_t)host_page - (uintptr_t)page;
}

/*
 * Pages holding decoded instructions never enter the write TLB: every store
 * to them goes through ram_mark_dirty(), which drops what it overwrites.
 */
static void write_tlb_fill(hart_t *h, uint64_t va, uint64_t pa,
			   uint8_t *host_page)
{
	if (!ram_page_code(h->ram, (pa - h->ram->base) >> PAGE_SHIFT))
		tlb_fill(h->tlb_write, va, h->tlb_key_data, host_page);
}

/* Host address of the RAM page holding pa, or NULL (MMIO, unmapped). */
static uint8_t *ram_page(hart_t *h, uint64_t pa)
{
	return ram_ptr(h->ram, pa & ~PAGE_MASK, PAGE_SIZE);
}

static uint64_t size_mask(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

/*
 * An access that crosses a page boundary: both pages are translated and
 * checked before anything is read or written (so a faulting store leaves
 * memory unchanged), and tval names the part that faults.
 */
static bool split_translate(hart_t *h, uint64_t va, unsigned size,
			    enum mmu_access acc, uint8_t *host[2],
			    unsigned len[2])
{
	uint64_t part[2];
	unsigned c;

	len[0] = (unsigned)(PAGE_SIZE - (va & PAGE_MASK));
	len[1] = size - len[0];
	part[0] = va;
	part[1] = va + len[0];
	for (int i = 0; i < 2; i++) {
		uint64_t pa;

		c = mmu_translate(h, part[i], acc, &pa);
		if (c)
			return hart_fault(h, c, part[i]);
		host[i] = ram_ptr(h->ram, pa, len[i]);
		if (!host[i])	/* MMIO does not take split accesses */
			return hart_fault(h, access_fault_cause[acc], part[i]);
		if (acc == MMU_WRITE)
			ram_mark_dirty(h->ram, pa, len[i]);
	}
	return true;
}

bool mmu_load_slow(hart_t *h, uint64_t va, unsigned size, uint64_t *val)
{
	uint64_t pa, v = 0;
	uint8_t *page;
	unsigned c;

	if ((va & PAGE_MASK) + size > PAGE_SIZE) {
		uint8_t *host[2];
		unsigned len[2];

		if (!split_translate(h, va, size, MMU_READ, host, len))
			return false;
		memcpy(&v, host[0], len[0]);
		memcpy((uint8_t *)&v + len[0], host[1], len[1]);
		*val = v;
		return true;
	}
	c = mmu_translate(h, va, MMU_READ, &pa);
	if (c)
		return hart_fault(h, c, va);
	page = ram_page(h, pa);
	if (page) {
		tlb_fill(h->tlb_read, va, h->tlb_key_data, page);
		memcpy(&v, page + (pa & PAGE_MASK), size);
		*val = v;
		return true;
	}
	/* Devices take naturally aligned accesses only (a PMA choice). */
	if ((va & (size - 1)) || !machine_mmio_read(h->m, pa, size, &v))
		return hart_fault(h, CAUSE_LOAD_ACCESS, va);
	*val = v & size_mask(size);
	return true;
}

bool mmu_store_slow(hart_t *h, uint64_t va, unsigned size, uint64_t val)
{
	uint64_t pa;
	uint8_t *page;
	unsigned c;

	if ((va & PAGE_MASK) + size > PAGE_SIZE) {
		uint8_t *host[2];
		unsigned len[2];

		if (!split_translate(h, va, size, MMU_WRITE, host, len))
			return false;
		memcpy(host[0], &val, len[0]);
		memcpy(host[1], (uint8_t *)&val + len[0], len[1]);
		return true;
	}
	c = mmu_translate(h, va, MMU_WRITE, &pa);
	if (c)
		return hart_fault(h, c, va);
	page = ram_page(h, pa);
	if (page) {
		/*
		 * The single dirty-tracking path for CPU stores: mark, then
		 * cache. The write TLB only ever holds pages already dirty
		 * in this logging round (or any page when not logging).
		 */
		ram_mark_dirty(h->ram, pa, size);
		write_tlb_fill(h, va, pa, page);
		tlb_fill(h->tlb_read, va, h->tlb_key_data, page);
		memcpy(page + (pa & PAGE_MASK), &val, size);
		return true;
	}
	if ((va & (size - 1)) ||
	    !machine_mmio_write(h->m, pa, size, val & size_mask(size)))
		return hart_fault(h, CAUSE_STORE_ACCESS, va);
	return true;
}

uint8_t *mmu_amo_slow(hart_t *h, uint64_t va, unsigned size)
{
	uint64_t pa;
	uint8_t *page;
	unsigned c;

	c = mmu_translate(h, va, MMU_WRITE, &pa);
	if (c) {
		hart_fault(h, c, va);
		return NULL;
	}
	page = ram_page(h, pa);
	if (!page) {
		/* Device regions do not support AMOs (a PMA choice). */
		hart_fault(h, CAUSE_STORE_ACCESS, va);
		return NULL;
	}
	ram_mark_dirty(h->ram, pa, size);
	write_tlb_fill(h, va, pa, page);
	tlb_fill(h->tlb_read, va, h->tlb_key_data, page);
	return page + (pa & PAGE_MASK);
}

bool mmu_fetch_slow(hart_t *h, uint64_t pc, uintptr_t *addend)
{
	uint64_t pa;
	uint8_t *page;
	unsigned c;

	c = mmu_translate(h, pc, MMU_EXEC, &pa);
	if (c)
		return hart_fault(h, c, pc);
	page = ram_page(h, pa);
	if (!page)	/* no execution from device regions */
		return hart_fault(h, CAUSE_FETCH_ACCESS, pc);
	tlb_fill(h->tlb_code, pc, h->tlb_key_code, page);
	*addend = tlb_slot(h->tlb_code, pc)->addend;
	return true;
}

bool mmu_fetch16(hart_t *h, uint64_t va, uint32_t *parcel)
{
	const tlb_entry_t *e = tlb_slot(h->tlb_code, va);
	uintptr_t addend;
	uint16_t v;

	if (e->tag == ((va & ~PAGE_MASK) | h->tlb_key_code))
		addend = e->addend;
	else if (!mmu_fetch_slow(h, va, &addend))
		return false;
	memcpy(&v, (const void *)(uintptr_t)(va + addend), 2);
	*parcel = v;
	return true;
}
