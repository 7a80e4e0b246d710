// SPDX-License-Identifier: MIT
/*
 * Hart reset, the state table, and the trap machinery of the privileged
 * architecture (privileged spec v1.12 chapter 3): trap entry with
 * delegation, interrupt selection and priority, MRET/SRET.
 */
#include "cpu/hart.h"

#include <stdio.h>
#include <string.h>

#include "cpu/cpu_internal.h"
#include "cpu/mmu.h"
#include "machine/machine.h"

#define S(f) STATE_U64(hart_state_t, f)

static const state_field_t hart_fields[] = {
	STATE_U64_ARRAY(hart_state_t, x),
	STATE_U64_ARRAY(hart_state_t, f),
	S(pc),
	S(mstatus),
	S(misa),
	S(medeleg),
	S(mideleg),
	S(mie),
	S(mip),
	S(mtvec),
	S(mscratch),
	S(mepc),
	S(mcause),
	S(mtval),
	S(mcounteren),
	S(menvcfg),
	S(stvec),
	S(sscratch),
	S(sepc),
	S(scause),
	S(stval),
	S(satp),
	S(scounteren),
	S(senvcfg),
	S(stimecmp),
	S(mcycle),
	S(minstret),
	S(mhartid),
	S(reservation),
	STATE_U32(hart_state_t, fcsr),
	STATE_U8(hart_state_t, priv),
	STATE_U8(hart_state_t, wfi),
	STATE_U8_ARRAY(hart_state_t, pad),
};

#undef S

/* Every value here is one the core itself can produce. */
static int hart_state_check(const void *obj, char *err, size_t errlen)
{
	const hart_state_t *s = obj;
	unsigned mode = s->satp >> SATP_MODE_SHIFT;
	const char *why = NULL;

	if (s->priv != PRV_U && s->priv != PRV_S && s->priv != PRV_M)
		why = "invalid privilege level";
	else if (s->x[0] != 0)
		why = "x0 is not zero";
	else if (s->pc & 1)
		why = "misaligned pc";
	else if (s->wfi > 1)
		why = "invalid wfi flag";
	else if (s->misa != MISA_VALUE)
		why = "unsupported misa";
	else if ((s->mstatus & ~(MSTATUS_WMASK | MSTATUS_SD)) != MSTATUS_XL64)
		why = "invalid mstatus";
	else if (((s->mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) == 2)
		why = "invalid mstatus.MPP";
	else if (s->medeleg & ~MEDELEG_MASK)
		why = "invalid medeleg";
	else if (s->mideleg & ~MIP_S_MASK)
		why = "invalid mideleg";
	else if ((s->mie | s->mip) & ~MIP_ALL)
		why = "invalid mie/mip";
	else if ((s->mtvec & 2) || (s->stvec & 2))
		why = "invalid trap vector mode";
	else if ((s->mepc | s->sepc) & 1)
		why = "misaligned mepc/sepc";
	else if (mode != SATP_MODE_BARE && mode != SATP_MODE_SV39 &&
		 mode != SATP_MODE_SV48)
		why = "unsupported satp mode";
	else if (mode == SATP_MODE_BARE && s->satp)
		why = "bare satp with non-zero fields";
	else if (s->satp & ~((0xfull << SATP_MODE_SHIFT) | SATP_PPN_MASK))
		why = "unsupported satp ASID";
	else if (s->menvcfg & ~MENVCFG_MASK)
		why = "invalid menvcfg";
	else if (s->senvcfg & ~SENVCFG_MASK)
		why = "invalid senvcfg";
	else if ((s->mcounteren | s->scounteren) >> 32)
		why = "invalid counter enables";
	else if (s->fcsr & ~0xffu)
		why = "invalid fcsr";
	else if (s->pad[0] || s->pad[1])
		why = "non-zero padding";
	if (why) {
		snprintf(err, errlen, "hart state: %s", why);
		return -1;
	}
	return 0;
}

const state_desc_t hart_state_desc = {
	.name = "hart",
	.version = 1,
	.min_version = 1,
	.size = sizeof(hart_state_t),
	.fields = hart_fields,
	.nfields = STATE_NFIELDS(hart_fields),
	.check = hart_state_check,
};

void hart_init(hart_t *h, struct machine *m, struct ram *ram, uint64_t hartid)
{
	memset(h, 0, sizeof(*h));
	h->m = m;
	h->ram = ram;
	h->s.pc = MEM_RAM_BASE;
	h->s.priv = PRV_M;
	h->s.misa = MISA_VALUE;
	h->s.mstatus = MSTATUS_XL64;
	h->s.mhartid = hartid;
	h->s.stimecmp = UINT64_MAX;
	h->s.reservation = UINT64_MAX;
	h->ram_generation = ram->generation;
	hart_tlb_flush(h);
}

uint64_t hart_time(const hart_t *h)
{
	return machine_time(h->m);
}

void hart_set_mip(hart_t *h, uint64_t mask, bool level)
{
	if (level)
		__atomic_fetch_or(&h->s.mip, mask, __ATOMIC_RELAXED);
	else
		__atomic_fetch_and(&h->s.mip, ~mask, __ATOMIC_RELAXED);
}

uint64_t hart_irq_enabled(const hart_state_t *s)
{
	uint64_t m_en = 0, s_en = 0;

	/*
	 * 3.1.6.1 / 3.1.9: interrupts for a more privileged mode are always
	 * enabled, for the current mode only with its xIE bit, for a less
	 * privileged mode never. Delegated interrupts target S-mode.
	 */
	if (s->priv < PRV_M || (s->mstatus & MSTATUS_MIE))
		m_en = ~s->mideleg;
	if (s->priv < PRV_S ||
	    (s->priv == PRV_S && (s->mstatus & MSTATUS_SIE)))
		s_en = s->mideleg;
	return s->mie & (m_en | s_en);
}

bool hart_irq_pending(const hart_t *h)
{
	return (hart_mip(h) & hart_irq_enabled(&h->s)) != 0;
}

void hart_update_derived(hart_t *h)
{
	const hart_state_t *s = &h->s;
	unsigned dpriv = mmu_data_priv(s);
	uint64_t dkey = dpriv;

	if (dpriv != PRV_M) {
		if (s->mstatus & MSTATUS_SUM)
			dkey |= 1u << 2;
		if (s->mstatus & MSTATUS_MXR)
			dkey |= 1u << 3;
	}
	h->tlb_key_data = dkey << TLB_KEY_SHIFT;
	h->tlb_key_code = (uint64_t)s->priv << TLB_KEY_SHIFT;
	h->irq_mask = hart_irq_enabled(s);
	if (h->tlb_satp != s->satp)
		mmu_tlb_flush_all(h);
}

void hart_tlb_flush(hart_t *h)
{
	mmu_tlb_flush_all(h);
	h->ram_generation = h->ram->generation;
	hart_update_derived(h);
}

void hart_set_priv(hart_t *h, unsigned priv)
{
	h->s.priv = (uint8_t)priv;
	hart_update_derived(h);
}

void hart_update_stip(hart_t *h)
{
	if (h->s.menvcfg & MENVCFG_STCE)
		hart_set_mip(h, MIP_STIP, hart_time(h) >= h->s.stimecmp);
}

void hart_trap(hart_t *h, uint64_t cause, uint64_t tval)
{
	hart_state_t *s = &h->s;
	bool irq = (cause & CAUSE_INTERRUPT) != 0;
	unsigned code = cause & 63;
	uint64_t deleg = irq ? s->mideleg : s->medeleg;
	uint64_t st = s->mstatus;
	uint64_t tvec;

	s->wfi = 0;
	if (s->priv <= PRV_S && ((deleg >> code) & 1)) {
		s->scause = cause;
		s->sepc = s->pc;
		s->stval = tval;
		st &= ~(MSTATUS_SPIE | MSTATUS_SPP);
		if (st & MSTATUS_SIE)
			st |= MSTATUS_SPIE;
		if (s->priv == PRV_S)
			st |= MSTATUS_SPP;
		st &= ~MSTATUS_SIE;
		tvec = s->stvec;
		s->mstatus = st;
		s->pc = (tvec & ~3ull) + ((tvec & 1) && irq ? 4ull * code : 0);
		hart_set_priv(h, PRV_S);
	} else {
		s->mcause = cause;
		s->mepc = s->pc;
		s->mtval = tval;
		st &= ~(MSTATUS_MPIE | MSTATUS_MPP);
		if (st & MSTATUS_MIE)
			st |= MSTATUS_MPIE;
		st |= (uint64_t)s->priv << MSTATUS_MPP_SHIFT;
		st &= ~MSTATUS_MIE;
		tvec = s->mtvec;
		s->mstatus = st;
		s->pc = (tvec & ~3ull) + ((tvec & 1) && irq ? 4ull * code : 0);
		hart_set_priv(h, PRV_M);
	}
}

bool hart_take_interrupt(hart_t *h)
{
	/* 3.1.9: MEI, MSI, MTI, SEI, SSI, STI; M-mode targets first. */
	static const uint8_t order[] = {
		IRQ_M_EXT, IRQ_M_SOFT, IRQ_M_TIMER,
		IRQ_S_EXT, IRQ_S_SOFT, IRQ_S_TIMER,
	};
	hart_state_t *s = &h->s;
	uint64_t pend = hart_mip(h) & hart_irq_enabled(s);

	if (!pend)
		return false;
	if (pend & ~s->mideleg)
		pend &= ~s->mideleg;
	for (unsigned i = 0; i < sizeof(order); i++) {
		if ((pend >> order[i]) & 1) {
			hart_trap(h, CAUSE_INTERRUPT | order[i], 0);
			return true;
		}
	}
	return false;
}

bool hart_mret(hart_t *h)
{
	hart_state_t *s = &h->s;
	uint64_t st = s->mstatus;
	unsigned mpp = (st >> MSTATUS_MPP_SHIFT) & 3;

	if (s->priv != PRV_M)
		return false;
	st &= ~(MSTATUS_MIE | MSTATUS_MPP);
	if (st & MSTATUS_MPIE)
		st |= MSTATUS_MIE;
	st |= MSTATUS_MPIE;
	if (mpp != PRV_M)
		st &= ~MSTATUS_MPRV;
	s->mstatus = st;
	s->pc = s->mepc;
	hart_set_priv(h, mpp);
	return true;
}

bool hart_sret(hart_t *h)
{
	hart_state_t *s = &h->s;
	uint64_t st = s->mstatus;
	unsigned spp = (st & MSTATUS_SPP) ? PRV_S : PRV_U;

	if (s->priv == PRV_U || (s->priv == PRV_S && (st & MSTATUS_TSR)))
		return false;
	st &= ~(MSTATUS_SIE | MSTATUS_SPP | MSTATUS_MPRV);
	if (st & MSTATUS_SPIE)
		st |= MSTATUS_SIE;
	st |= MSTATUS_SPIE;
	s->mstatus = st;
	s->pc = s->sepc;
	hart_set_priv(h, spp);
	return true;
}
