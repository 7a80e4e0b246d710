// SPDX-License-Identifier: MIT
/*
 * SBI firmware services (RISC-V Supervisor Binary Interface spec v2.0),
 * answered by tern directly instead of by M-mode firmware in the guest.
 */
#include "cpu/sbi.h"

#include "machine/machine.h"

#define SBI_SUCCESS 0
#define SBI_ERR_FAILED -1
#define SBI_ERR_NOT_SUPPORTED -2
#define SBI_ERR_INVALID_PARAM -3
#define SBI_ERR_INVALID_ADDRESS -5
#define SBI_ERR_ALREADY_AVAILABLE -6

#define EXT_LEGACY_SET_TIMER 0x00
#define EXT_LEGACY_PUTCHAR 0x01
#define EXT_LEGACY_GETCHAR 0x02
#define EXT_LEGACY_SHUTDOWN 0x08
#define EXT_BASE 0x10
#define EXT_TIME 0x54494d45
#define EXT_IPI 0x735049
#define EXT_RFENCE 0x52464e43
#define EXT_HSM 0x48534d
#define EXT_SRST 0x53525354
#define EXT_DBCN 0x4442434e

#define SBI_SPEC_VERSION (2u << 24)	/* v2.0 */
#define SBI_IMPL_ID 0x7465726eu		/* "tern"; not in the SBI registry */
#define SBI_IMPL_VERSION 1

typedef struct sbi_ret {
	int64_t error;
	int64_t value;
} sbi_ret_t;

static bool extension_present(uint64_t eid)
{
	switch (eid) {
	case EXT_LEGACY_SET_TIMER:
	case EXT_LEGACY_PUTCHAR:
	case EXT_LEGACY_GETCHAR:
	case EXT_LEGACY_SHUTDOWN:
	case EXT_BASE:
	case EXT_TIME:
	case EXT_IPI:
	case EXT_RFENCE:
	case EXT_HSM:
	case EXT_SRST:
	case EXT_DBCN:
		return true;
	default:
		return false;
	}
}

static void set_timer(hart_t *h, uint64_t when)
{
	h->s.stimecmp = when;
	hart_set_mip(h, MIP_STIP, hart_time(h) >= when);
}

static void console_out(machine_t *m, const uint8_t *buf, size_t len)
{
	if (m->console_tx && len)
		m->console_tx(m->console_opaque, buf, len);
}

/* Harts selected by an SBI hart mask (hart_mask_base = -1: all harts). */
static bool hart_selected(uint64_t mask, uint64_t base, unsigned id)
{
	if (base == UINT64_MAX)
		return true;
	return id >= base && id - base < 64 && ((mask >> (id - base)) & 1);
}

static sbi_ret_t sbi_base(hart_t *h, uint64_t fid)
{
	switch (fid) {
	case 0:
		return (sbi_ret_t){ 0, SBI_SPEC_VERSION };
	case 1:
		return (sbi_ret_t){ 0, SBI_IMPL_ID };
	case 2:
		return (sbi_ret_t){ 0, SBI_IMPL_VERSION };
	case 3:
		return (sbi_ret_t){ 0, extension_present(h->s.x[10]) };
	case 4: /* mvendorid, marchid, mimpid */
	case 5:
	case 6:
		return (sbi_ret_t){ 0, 0 };
	default:
		return (sbi_ret_t){ SBI_ERR_NOT_SUPPORTED, 0 };
	}
}

static sbi_ret_t sbi_ipi(hart_t *h, uint64_t mask, uint64_t base)
{
	machine_t *m = h->m;

	for (unsigned i = 0; i < m->nharts; i++)
		if (hart_selected(mask, base, i))
			hart_set_mip(&m->harts[i], MIP_SSIP, true);
	return (sbi_ret_t){ 0, 0 };
}

static sbi_ret_t sbi_rfence(hart_t *h, uint64_t fid, uint64_t mask,
			    uint64_t base)
{
	machine_t *m = h->m;

	if (fid > 6)
		return (sbi_ret_t){ SBI_ERR_NOT_SUPPORTED, 0 };
	if (fid >= 3) /* hypervisor fences: no H extension */
		return (sbi_ret_t){ SBI_ERR_NOT_SUPPORTED, 0 };
	/* fence.i needs nothing: no decoded code survives a store. */
	for (unsigned i = 0; i < m->nharts; i++)
		if (fid != 0 && hart_selected(mask, base, i))
			hart_tlb_flush(&m->harts[i]);
	return (sbi_ret_t){ 0, 0 };
}

static sbi_ret_t sbi_hsm(hart_t *h, uint64_t fid)
{
	machine_t *m = h->m;
	uint64_t id = h->s.x[10];

	switch (fid) {
	case 0: /* hart_start */
		if (id >= m->nharts)
			return (sbi_ret_t){ SBI_ERR_INVALID_PARAM, 0 };
		return (sbi_ret_t){ SBI_ERR_ALREADY_AVAILABLE, 0 };
	case 1: /* hart_stop: the last hart never stops */
		return (sbi_ret_t){ SBI_ERR_FAILED, 0 };
	case 2: /* hart_get_status */
		if (id >= m->nharts)
			return (sbi_ret_t){ SBI_ERR_INVALID_PARAM, 0 };
		return (sbi_ret_t){ 0, 0 /* STARTED */ };
	case 3: /* hart_suspend: default retentive suspend is a WFI */
		if (h->s.x[10] != 0)
			return (sbi_ret_t){ SBI_ERR_NOT_SUPPORTED, 0 };
		h->s.wfi = !hart_irq_pending(h);
		if (h->s.wfi)
			h->stop = true;
		return (sbi_ret_t){ 0, 0 };
	default:
		return (sbi_ret_t){ SBI_ERR_NOT_SUPPORTED, 0 };
	}
}

static sbi_ret_t sbi_srst(hart_t *h, uint64_t type)
{
	switch (type) {
	case 0:
		machine_request_stop(h->m, POWER_OFF);
		return (sbi_ret_t){ 0, 0 };
	case 1:
	case 2:
		machine_request_stop(h->m, POWER_RESET);
		return (sbi_ret_t){ 0, 0 };
	default:
		return (sbi_ret_t){ SBI_ERR_INVALID_PARAM, 0 };
	}
}

static sbi_ret_t sbi_dbcn(hart_t *h, uint64_t fid)
{
	uint64_t len = h->s.x[10], addr = h->s.x[11];
	machine_t *m = h->m;
	uint8_t c;

	switch (fid) {
	case 0: { /* write: physical address a2:a1 */
		const uint8_t *p;

		if (h->s.x[12])
			return (sbi_ret_t){ SBI_ERR_INVALID_PARAM, 0 };
		p = ram_ptr(&m->ram, addr, len);
		if (!p)
			return (sbi_ret_t){ SBI_ERR_INVALID_PARAM, 0 };
		console_out(m, p, len);
		return (sbi_ret_t){ 0, (int64_t)len };
	}
	case 1: /* read: input belongs to the UART */
		return (sbi_ret_t){ 0, 0 };
	case 2:
		c = (uint8_t)h->s.x[10];
		console_out(m, &c, 1);
		return (sbi_ret_t){ 0, 0 };
	default:
		return (sbi_ret_t){ SBI_ERR_NOT_SUPPORTED, 0 };
	}
}

void sbi_ecall(hart_t *h)
{
	uint64_t eid = h->s.x[17], fid = h->s.x[16];
	uint64_t a0 = h->s.x[10], a1 = h->s.x[11];
	sbi_ret_t r = { SBI_ERR_NOT_SUPPORTED, 0 };
	uint8_t c;

	switch (eid) {
	case EXT_LEGACY_SET_TIMER:
		set_timer(h, a0);
		h->s.x[10] = 0;
		return;
	case EXT_LEGACY_PUTCHAR:
		c = (uint8_t)a0;
		console_out(h->m, &c, 1);
		h->s.x[10] = 0;
		return;
	case EXT_LEGACY_GETCHAR:
		h->s.x[10] = (uint64_t)-1;
		return;
	case EXT_LEGACY_SHUTDOWN:
		machine_request_stop(h->m, POWER_OFF);
		return;
	case EXT_BASE:
		r = sbi_base(h, fid);
		break;
	case EXT_TIME:
		if (fid == 0) {
			set_timer(h, a0);
			r = (sbi_ret_t){ 0, 0 };
		}
		break;
	case EXT_IPI:
		if (fid == 0)
			r = sbi_ipi(h, a0, a1);
		break;
	case EXT_RFENCE:
		r = sbi_rfence(h, fid, a0, a1);
		break;
	case EXT_HSM:
		r = sbi_hsm(h, fid);
		break;
	case EXT_SRST:
		if (fid == 0)
			r = sbi_srst(h, a0);
		break;
	case EXT_DBCN:
		r = sbi_dbcn(h, fid);
		break;
	default:
		break;
	}
	h->s.x[10] = (uint64_t)r.error;
	h->s.x[11] = (uint64_t)r.value;
}
