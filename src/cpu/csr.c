// SPDX-License-Identifier: MIT
/*
 * CSR access (privileged spec v1.12 chapters 2-4, Zicntr, Sstc). Every CSR
 * not listed here raises an illegal-instruction exception.
 */
#include "cpu/csr.h"

#include "cpu/cpu_internal.h"
#include "cpu/mmu.h"

/* Counter CSR numbers' low 5 bits index mcounteren/scounteren (3.1.11). */
static bool counter_enabled(const hart_t *h, unsigned csr)
{
	unsigned bit = csr & 31;

	if (h->s.priv == PRV_M)
		return true;
	if (!((h->s.mcounteren >> bit) & 1))
		return false;
	return h->s.priv == PRV_S || ((h->s.scounteren >> bit) & 1);
}

static uint64_t mstatus_read(const hart_state_t *s)
{
	uint64_t v = s->mstatus & ~MSTATUS_SD;

	/* SD summarises FS (VS and XS are always off). */
	if ((v & MSTATUS_FS) == MSTATUS_FS)
		v |= MSTATUS_SD;
	return v;
}

static void mstatus_write(hart_t *h, uint64_t mask, uint64_t v)
{
	hart_state_t *s = &h->s;
	uint64_t nv = (s->mstatus & ~mask) | (v & mask);

	/* MPP is WARL: the reserved value 2 keeps the old mode. */
	if (((nv & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) == 2)
		nv = (nv & ~MSTATUS_MPP) | (s->mstatus & MSTATUS_MPP);
	s->mstatus = (nv & ~MSTATUS_SD & ~(MSTATUS_UXL | MSTATUS_SXL)) |
		     MSTATUS_XL64;
	/* MIE/SIE, MPRV/MPP, SUM and MXR feed the interrupt mask and keys. */
	hart_update_derived(h);
}

static void mip_write(hart_t *h, uint64_t writable, uint64_t v)
{
	__atomic_fetch_and(&h->s.mip, ~(writable & ~v), __ATOMIC_RELAXED);
	__atomic_fetch_or(&h->s.mip, writable & v, __ATOMIC_RELAXED);
}

/* Bits of mip M-mode may write: STIP only while Sstc does not own it. */
static uint64_t mip_writable(const hart_state_t *s)
{
	uint64_t w = MIP_SSIP | MIP_SEIP;

	if (!(s->menvcfg & MENVCFG_STCE))
		w |= MIP_STIP;
	return w;
}

/* Gates beyond the privilege encoded in the CSR number. */
static bool csr_allowed(const hart_t *h, unsigned csr)
{
	const hart_state_t *s = &h->s;

	switch (csr) {
	case CSR_FFLAGS:
	case CSR_FRM:
	case CSR_FCSR:
		return (s->mstatus & MSTATUS_FS) != 0;
	case CSR_SATP:
		return !(s->priv == PRV_S && (s->mstatus & MSTATUS_TVM));
	case CSR_STIMECMP:
		/* Sstc: needs menvcfg.STCE and mcounteren.TM below M. */
		return s->priv == PRV_M ||
		       ((s->menvcfg & MENVCFG_STCE) && (s->mcounteren & 2));
	default:
		if (csr >= CSR_CYCLE && csr <= CSR_HPMCOUNTER31)
			return counter_enabled(h, csr);
		return true;
	}
}

static bool csr_get(hart_t *h, unsigned csr, uint64_t *v)
{
	const hart_state_t *s = &h->s;

	switch (csr) {
	case CSR_FFLAGS:
		*v = s->fcsr & 0x1f;
		break;
	case CSR_FRM:
		*v = (s->fcsr >> 5) & 7;
		break;
	case CSR_FCSR:
		*v = s->fcsr & 0xff;
		break;
	case CSR_CYCLE:
	case CSR_MCYCLE:
		*v = s->mcycle + h->insns;
		break;
	case CSR_TIME:
		*v = hart_time(h);
		break;
	case CSR_INSTRET:
	case CSR_MINSTRET:
		*v = s->minstret + h->insns;
		break;
	case CSR_SSTATUS:
		*v = mstatus_read(s) & SSTATUS_RMASK;
		break;
	case CSR_SIE:
		*v = s->mie & s->mideleg;
		break;
	case CSR_STVEC:
		*v = s->stvec;
		break;
	case CSR_SCOUNTEREN:
		*v = s->scounteren;
		break;
	case CSR_SENVCFG:
		*v = s->senvcfg;
		break;
	case CSR_SSCRATCH:
		*v = s->sscratch;
		break;
	case CSR_SEPC:
		*v = s->sepc;
		break;
	case CSR_SCAUSE:
		*v = s->scause;
		break;
	case CSR_STVAL:
		*v = s->stval;
		break;
	case CSR_SIP:
		*v = hart_mip(h) & s->mideleg;
		break;
	case CSR_STIMECMP:
		*v = s->stimecmp;
		break;
	case CSR_SATP:
		*v = s->satp;
		break;
	case CSR_MVENDORID:
	case CSR_MARCHID:
	case CSR_MIMPID:
	case CSR_MCONFIGPTR:
	case CSR_MCOUNTINHIBIT:
		*v = 0;
		break;
	case CSR_MHARTID:
		*v = s->mhartid;
		break;
	case CSR_MSTATUS:
		*v = mstatus_read(s);
		break;
	case CSR_MISA:
		*v = s->misa;
		break;
	case CSR_MEDELEG:
		*v = s->medeleg;
		break;
	case CSR_MIDELEG:
		*v = s->mideleg;
		break;
	case CSR_MIE:
		*v = s->mie;
		break;
	case CSR_MTVEC:
		*v = s->mtvec;
		break;
	case CSR_MCOUNTEREN:
		*v = s->mcounteren;
		break;
	case CSR_MENVCFG:
		*v = s->menvcfg;
		break;
	case CSR_MSCRATCH:
		*v = s->mscratch;
		break;
	case CSR_MEPC:
		*v = s->mepc;
		break;
	case CSR_MCAUSE:
		*v = s->mcause;
		break;
	case CSR_MTVAL:
		*v = s->mtval;
		break;
	case CSR_MIP:
		*v = hart_mip(h);
		break;
	default:
		/*
		 * Counters and events without a source, and PMP (no regions:
		 * read as zero, writes ignored, 3.7).
		 */
		if ((csr >= CSR_HPMCOUNTER3 && csr <= CSR_HPMCOUNTER31) ||
		    (csr >= CSR_MHPMCOUNTER3 && csr <= CSR_MHPMCOUNTER31) ||
		    (csr >= CSR_MHPMEVENT3 && csr <= CSR_MHPMEVENT31) ||
		    (csr >= CSR_PMPCFG0 && csr <= CSR_PMPCFG15) ||
		    (csr >= CSR_PMPADDR0 && csr <= CSR_PMPADDR63)) {
			*v = 0;
			break;
		}
		return false;
	}
	return true;
}

/* Only called for CSRs csr_get() knows and that are writable. */
static void csr_set(hart_t *h, unsigned csr, uint64_t v)
{
	hart_state_t *s = &h->s;

	switch (csr) {
	case CSR_FFLAGS:
		s->fcsr = (s->fcsr & ~0x1fu) | (uint32_t)(v & 0x1f);
		s->mstatus |= MSTATUS_FS;
		break;
	case CSR_FRM:
		s->fcsr = (s->fcsr & 0x1fu) | (uint32_t)((v & 7) << 5);
		s->mstatus |= MSTATUS_FS;
		break;
	case CSR_FCSR:
		s->fcsr = (uint32_t)(v & 0xff);
		s->mstatus |= MSTATUS_FS;
		break;
	case CSR_MCYCLE:
		/* The write wins over this instruction's own increment. */
		s->mcycle = v - h->insns - 1;
		break;
	case CSR_MINSTRET:
		s->minstret = v - h->insns - 1;
		break;
	case CSR_SSTATUS:
		mstatus_write(h, SSTATUS_WMASK, v);
		break;
	case CSR_SIE:
		s->mie = (s->mie & ~s->mideleg) | (v & s->mideleg);
		hart_update_derived(h);
		break;
	case CSR_STVEC:
		s->stvec = v & ~2ull;	/* modes 0 and 1 only */
		break;
	case CSR_SCOUNTEREN:
		s->scounteren = v & 0xffffffffu;
		break;
	case CSR_SENVCFG:
		s->senvcfg = v & SENVCFG_MASK;
		break;
	case CSR_SSCRATCH:
		s->sscratch = v;
		break;
	case CSR_SEPC:
		s->sepc = v & ~1ull;
		break;
	case CSR_SCAUSE:
		s->scause = v;
		break;
	case CSR_STVAL:
		s->stval = v;
		break;
	case CSR_SIP:
		mip_write(h, MIP_SSIP & s->mideleg, v);
		break;
	case CSR_STIMECMP:
		s->stimecmp = v;
		hart_update_stip(h);
		break;
	case CSR_SATP: {
		unsigned mode = v >> SATP_MODE_SHIFT;

		/* Unsupported modes: the whole write has no effect (4.1.11). */
		if (mode == SATP_MODE_BARE)
			s->satp = 0;
		else if (mode == SATP_MODE_SV39 || mode == SATP_MODE_SV48)
			s->satp = ((uint64_t)mode << SATP_MODE_SHIFT) |
				  (v & SATP_PPN_MASK);	/* ASIDLEN = 0 */
		hart_update_derived(h);
		break;
	}
	case CSR_MSTATUS:
		mstatus_write(h, MSTATUS_WMASK, v);
		break;
	case CSR_MEDELEG:
		s->medeleg = v & MEDELEG_MASK;
		break;
	case CSR_MIDELEG:
		s->mideleg = v & MIP_S_MASK;
		hart_update_derived(h);
		break;
	case CSR_MIE:
		s->mie = v & MIP_ALL;
		hart_update_derived(h);
		break;
	case CSR_MTVEC:
		s->mtvec = v & ~2ull;
		break;
	case CSR_MCOUNTEREN:
		s->mcounteren = v & 0xffffffffu;
		break;
	case CSR_MENVCFG:
		s->menvcfg = v & MENVCFG_MASK;
		hart_update_stip(h);
		break;
	case CSR_MSCRATCH:
		s->mscratch = v;
		break;
	case CSR_MEPC:
		s->mepc = v & ~1ull;
		break;
	case CSR_MCAUSE:
		s->mcause = v;
		break;
	case CSR_MTVAL:
		s->mtval = v;
		break;
	case CSR_MIP:
		mip_write(h, mip_writable(s), v);
		break;
	default:
		/* misa, mcountinhibit, HPM, PMP: writes ignored (WARL). */
		break;
	}
}

bool csr_op(hart_t *h, unsigned csr, enum csr_op op, uint64_t src, bool write,
	    uint64_t *old)
{
	uint64_t v;

	csr &= 0xfff;
	/* csr[9:8] is the lowest privilege, csr[11:10] == 3 read-only (2.1) */
	if (h->s.priv < ((csr >> 8) & 3))
		return false;
	if (write && (csr >> 10) == 3)
		return false;
	if (!csr_allowed(h, csr) || !csr_get(h, csr, &v))
		return false;
	*old = v;
	if (write) {
		switch (op) {
		case CSR_OP_RW:
			v = src;
			break;
		case CSR_OP_RS:
			v |= src;
			break;
		case CSR_OP_RC:
			v &= ~src;
			break;
		}
		csr_set(h, csr, v);
	}
	return true;
}

bool csr_read(hart_t *h, unsigned csr, uint64_t *val)
{
	return csr_op(h, csr, CSR_OP_RS, 0, false, val);
}

bool csr_write(hart_t *h, unsigned csr, uint64_t val)
{
	uint64_t old;

	return csr_op(h, csr, CSR_OP_RW, val, true, &old);
}
