/* SPDX-License-Identifier: MIT */
/*
 * F and D extensions (RISC-V unprivileged ISA, chapters "F" and "D").
 *
 * Results and accrued flags must be exactly those of IEEE 754-2008 as RISC-V
 * profiles it: canonical NaNs, tininess detected after rounding, saturating
 * float-to-integer conversions and the round-to-nearest-max-magnitude mode.
 *
 * Two engines:
 *   - the host's SSE unit (and FMA3 when present) for arithmetic in RNE, RTZ,
 *     RDN and RUP. MXCSR holds the rounding mode and its sticky exception
 *     bits give the IEEE flags. SSE detects tininess after rounding, like
 *     RISC-V, so its underflow bit maps to UF unchanged. What x86 does
 *     differently is patched around the host operation: NaN results become
 *     the canonical NaN, and a fused multiply-add of 0 x inf with a quiet NaN
 *     addend raises NV (RISC-V requires it, x86 does not);
 *   - an exact integer path ("soft_*") that rounds any value in any mode.
 *     It handles RMM, which x86 lacks, and fused multiply-add on hosts
 *     without FMA3. Integer conversions always use it: they are simple on the
 *     bit patterns and x86 has neither saturation nor unsigned 64-bit forms.
 * Sign injection, min/max, compares, classify, moves and the (exact)
 * FCVT.D.S work on the bits.
 *
 * MXCSR is used lazily: its flag bits are only cleared when one of them is
 * not already set in the guest's fflags (if it is, the host raising it
 * again changes nothing), so in the common case an operation costs one
 * STMXCSR before and one after. Control bits are kept at the host default
 * (all exceptions masked, RNE, no FTZ/DAZ) between instructions.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu/fpu.h"

#if !defined(__x86_64__)
#error "fpu.c uses the x86-64 SSE unit"
#endif

/* fcsr.fflags bits (unprivileged spec, F extension, "fcsr") */
#define FFLAG_NX 0x01u
#define FFLAG_UF 0x02u
#define FFLAG_OF 0x04u
#define FFLAG_DZ 0x08u
#define FFLAG_NV 0x10u

#define FPU_MSTATUS_FS (3ull << 13)
#define FPU_MSTATUS_SD (1ull << 63)

/* Rounding modes as encoded in rm / frm. */
enum {
	RM_RNE = 0,
	RM_RTZ = 1,
	RM_RDN = 2,
	RM_RUP = 3,
	RM_RMM = 4,
	RM_DYN = 7,
};

/* Major opcodes. */
enum {
	OPC_MADD = 0x43,
	OPC_MSUB = 0x47,
	OPC_NMSUB = 0x4b,
	OPC_NMADD = 0x4f,
	OPC_OP_FP = 0x53,
};

/* OP-FP funct5 values (bits 31:27). */
enum {
	F5_ADD = 0x00,
	F5_SUB = 0x01,
	F5_MUL = 0x02,
	F5_DIV = 0x03,
	F5_SGNJ = 0x04,
	F5_MINMAX = 0x05,
	F5_CVT_FF = 0x08,
	F5_SQRT = 0x0b,
	F5_CMP = 0x14,
	F5_CVT_IF = 0x18,	/* float -> integer */
	F5_CVT_FI = 0x1a,	/* integer -> float */
	F5_MV_X_CLASS = 0x1c,
	F5_MV_F = 0x1e,
};

typedef unsigned __int128 u128;

/* Keeps the rarely used paths out of the hot instructions' frames. */
#define FPU_COLD __attribute__((noinline, cold))

/*
 * Format parameters. `d` is 0 for single, 1 for double; every helper is
 * inlined with a constant `d`, so these fold away.
 */
static inline int fp_prec(int d)
{
	return d ? 53 : 24;
}

static inline int fp_bias(int d)
{
	return d ? 1023 : 127;
}

static inline int fp_emax_biased(int d)
{
	return d ? 2047 : 255;
}

static inline uint64_t fp_sign(int d)
{
	return d ? 1ull << 63 : 1ull << 31;
}

static inline uint64_t fp_inf(int d)
{
	return d ? 0x7ff0000000000000ull : 0x7f800000ull;
}

/* The canonical NaN (spec: "NaN Generation and Propagation"). */
static inline uint64_t fp_qnan(int d)
{
	return d ? 0x7ff8000000000000ull : 0x7fc00000ull;
}

static inline uint64_t fp_quiet_bit(int d)
{
	return d ? 1ull << 51 : 1ull << 22;
}

static inline uint64_t fp_frac_mask(int d)
{
	return (1ull << (fp_prec(d) - 1)) - 1;
}

static inline uint64_t fp_abs(int d, uint64_t v)
{
	return v & (fp_sign(d) - 1);
}

static inline bool fp_isnan(int d, uint64_t v)
{
	return fp_abs(d, v) > fp_inf(d);
}

static inline bool fp_issnan(int d, uint64_t v)
{
	return fp_isnan(d, v) && !(v & fp_quiet_bit(d));
}

static inline bool fp_isinf(int d, uint64_t v)
{
	return fp_abs(d, v) == fp_inf(d);
}

static inline bool fp_iszero(int d, uint64_t v)
{
	return fp_abs(d, v) == 0;
}

static inline unsigned fp_signbit(int d, uint64_t v)
{
	return (v & fp_sign(d)) != 0;
}

/*
 * NaN-boxing (spec: "NaN Boxing of Narrower Values"): a single value lives
 * in the low half of an f register whose upper 32 bits are all ones; any
 * other pattern reads as the canonical NaN.
 */
static inline uint64_t fpu_unbox_s(uint64_t v)
{
	return (v >> 32) == 0xffffffffu ? (uint32_t)v : 0x7fc00000u;
}

static inline uint64_t fpu_box_s(uint64_t v)
{
	return 0xffffffff00000000ull | (uint32_t)v;
}

static inline uint64_t freg_read(const hart_t *h, int d, unsigned r)
{
	return d ? h->s.f[r] : fpu_unbox_s(h->s.f[r]);
}

static inline void freg_write(hart_t *h, int d, unsigned r, uint64_t v)
{
	h->s.f[r] = d ? v : fpu_box_s(v);
}

static inline void xreg_write(hart_t *h, unsigned r, uint64_t v)
{
	if (r)
		h->s.x[r] = v;
}

/* Accrues flags; the FP state became dirty if a register or a flag changed. */
static inline void fpu_finish(hart_t *h, unsigned fl, bool wrote_f)
{
	h->s.fcsr |= fl;
	if (wrote_f || fl)
		h->s.mstatus |= FPU_MSTATUS_FS | FPU_MSTATUS_SD;
}

/* Resolves the rm field; -1 for the reserved values (and DYN with a bad frm). */
static inline int fpu_rm(const hart_t *h, unsigned rm)
{
	if (rm == RM_DYN)
		rm = (h->s.fcsr >> 5) & 7;
	return rm <= RM_RMM ? (int)rm : -1;
}

/* ------------------------------------------------------------------------
 * Exact integer path: rounds sign x sig x 2^exp to a format in any mode.
 */

/* Shifts right, OR-ing all bits shifted out into bit 0 (the sticky bit). */
static inline uint64_t shr_jam64(uint64_t x, unsigned n)
{
	if (n == 0)
		return x;
	if (n >= 64)
		return x != 0;
	return x >> n | ((x << (64 - n)) != 0);
}

static inline u128 shr_jam128(u128 x, unsigned n)
{
	if (n == 0)
		return x;
	if (n >= 128)
		return x != 0;
	return x >> n | (u128)((x << (128 - n)) != 0);
}

static inline int clz128(u128 x)
{
	uint64_t hi = (uint64_t)(x >> 64);

	if (hi)
		return __builtin_clzll(hi);
	return 64 + __builtin_clzll((uint64_t)x);
}

/* Result of an overflow: infinity or the largest finite value. */
static uint64_t soft_overflow(int d, unsigned sign, unsigned rm)
{
	bool to_inf = rm == RM_RNE || rm == RM_RMM ||
		      (rm == RM_RDN && sign) || (rm == RM_RUP && !sign);

	return (to_inf ? fp_inf(d) : fp_inf(d) - 1) | (sign ? fp_sign(d) : 0);
}

/*
 * Rounds sign x sig x 2^exp (sig != 0; bit 0 may be a sticky bit standing
 * for nonzero bits below it, as long as sig keeps at least prec + 2
 * significant bits) to format d with rounding mode rm.
 *
 * Underflow: "tininess is detected after rounding" (unprivileged spec, F
 * extension, "Subnormal Arithmetic"): the value is tiny if rounding it to
 * prec bits with an unbounded exponent gives a magnitude below the smallest
 * normal. UF is raised when the result is tiny and inexact.
 */
static uint64_t soft_round_pack(int d, unsigned sign, int exp, uint64_t sig,
				unsigned rm, unsigned *fl)
{
	const int prec = fp_prec(d);
	const int rbits = 63 - prec;	/* bits below the LSB, sig at bit 62 */
	const uint64_t half = 1ull << (rbits - 1);
	const uint64_t mask = (1ull << rbits) - 1;
	uint64_t inc, rb, bits;
	bool tiny = false;
	int be;

	if (sig >> 63) {
		sig = shr_jam64(sig, 1);
		exp++;
	} else {
		int lz = __builtin_clzll(sig) - 1;

		sig <<= lz;
		exp -= lz;
	}
	/* sig is in [2^62, 2^63): the value is 1.f x 2^(exp + 62). */
	be = exp + 62 + fp_bias(d);

	switch (rm) {
	case RM_RNE:
	case RM_RMM:
		inc = half;
		break;
	case RM_RDN:
		inc = sign ? mask : 0;
		break;
	case RM_RUP:
		inc = sign ? 0 : mask;
		break;
	default:
		inc = 0;
		break;
	}

	if (be >= fp_emax_biased(d)) {
		*fl |= FFLAG_OF | FFLAG_NX;
		return soft_overflow(d, sign, rm);
	}
	if (be <= 0) {
		/* Just below the normal range rounding may carry into it. */
		tiny = be < 0 || sig + inc < (1ull << 63);
		sig = shr_jam64(sig, (unsigned)(1 - be));
		be = 0;
	}

	rb = sig & mask;
	if (rb) {
		*fl |= FFLAG_NX;
		if (tiny)
			*fl |= FFLAG_UF;
	}
	sig = (sig + inc) >> rbits;
	if (rm == RM_RNE && rb == half)
		sig &= ~1ull;	/* tie: to even */

	/*
	 * sig includes the hidden bit, so adding it to (be - 1) << (prec - 1)
	 * also handles a carry out of the significand. A subnormal that
	 * rounds up to 2^(prec-1) becomes the smallest normal by itself.
	 */
	if (be == 0)
		bits = sig;
	else
		bits = ((uint64_t)(be - 1) << (prec - 1)) + sig;
	if (bits >= fp_inf(d)) {
		*fl |= FFLAG_OF | FFLAG_NX;
		return soft_overflow(d, sign, rm);
	}
	return bits | (sign ? fp_sign(d) : 0);
}

/* Same for a 128-bit significand: narrowed with a sticky bit first. */
static uint64_t soft_round_pack128(int d, unsigned sign, int exp, u128 sig,
				   unsigned rm, unsigned *fl)
{
	int len = 128 - clz128(sig);

	if (len > 63) {
		sig = shr_jam128(sig, (unsigned)(len - 63));
		exp += len - 63;
	}
	return soft_round_pack(d, sign, exp, (uint64_t)sig, rm, fl);
}

/* Finite nonzero value -> sign, integer significand and exponent. */
static inline void soft_unpack(int d, uint64_t v, unsigned *sign, int *exp,
			       uint64_t *sig)
{
	const int prec = fp_prec(d);
	int be = (int)(fp_abs(d, v) >> (prec - 1));

	*sign = fp_signbit(d, v);
	*sig = v & fp_frac_mask(d);
	if (be) {
		*sig |= 1ull << (prec - 1);
		*exp = be - fp_bias(d) - (prec - 1);
	} else {
		*exp = 1 - fp_bias(d) - (prec - 1);
	}
}

/* Zero result of an exact cancellation: +0, or -0 when rounding down. */
static inline uint64_t soft_cancel_zero(int d, unsigned rm)
{
	return rm == RM_RDN ? fp_sign(d) : 0;
}

static uint64_t soft_nan(int d, uint64_t a, uint64_t b, unsigned *fl)
{
	if (fp_issnan(d, a) || fp_issnan(d, b))
		*fl |= FFLAG_NV;
	return fp_qnan(d);
}

static FPU_COLD uint64_t soft_add(int d, uint64_t a, uint64_t b, unsigned rm,
			 unsigned *fl)
{
	const unsigned sh = (unsigned)(62 - fp_prec(d));
	unsigned sa, sb, sign;
	uint64_t ma, mb, sig;
	int ea, eb, exp;

	if (fp_isnan(d, a) || fp_isnan(d, b))
		return soft_nan(d, a, b, fl);
	sa = fp_signbit(d, a);
	sb = fp_signbit(d, b);
	if (fp_isinf(d, a)) {
		if (fp_isinf(d, b) && sa != sb) {
			*fl |= FFLAG_NV;
			return fp_qnan(d);
		}
		return a;
	}
	if (fp_isinf(d, b))
		return b;
	if (fp_iszero(d, a) && fp_iszero(d, b))
		return sa == sb ? a : soft_cancel_zero(d, rm);
	if (fp_iszero(d, a))
		return b;
	if (fp_iszero(d, b))
		return a;

	soft_unpack(d, a, &sa, &ea, &ma);
	soft_unpack(d, b, &sb, &eb, &mb);
	/* Headroom for the carry, room below for guard and sticky bits. */
	ma <<= sh;
	mb <<= sh;
	ea -= (int)sh;
	eb -= (int)sh;
	if (ea >= eb) {
		mb = shr_jam64(mb, (unsigned)(ea - eb));
		exp = ea;
	} else {
		ma = shr_jam64(ma, (unsigned)(eb - ea));
		exp = eb;
	}
	if (sa == sb) {
		sig = ma + mb;
		sign = sa;
	} else if (ma >= mb) {
		sig = ma - mb;
		sign = sa;
	} else {
		sig = mb - ma;
		sign = sb;
	}
	if (!sig)
		return soft_cancel_zero(d, rm);
	return soft_round_pack(d, sign, exp, sig, rm, fl);
}

static FPU_COLD uint64_t soft_mul(int d, uint64_t a, uint64_t b, unsigned rm,
			 unsigned *fl)
{
	unsigned sa, sb, sign;
	uint64_t ma, mb;
	int ea, eb;

	if (fp_isnan(d, a) || fp_isnan(d, b))
		return soft_nan(d, a, b, fl);
	sign = fp_signbit(d, a) ^ fp_signbit(d, b);
	if (fp_isinf(d, a) || fp_isinf(d, b)) {
		if (fp_iszero(d, a) || fp_iszero(d, b)) {
			*fl |= FFLAG_NV;
			return fp_qnan(d);
		}
		return fp_inf(d) | (sign ? fp_sign(d) : 0);
	}
	if (fp_iszero(d, a) || fp_iszero(d, b))
		return sign ? fp_sign(d) : 0;
	soft_unpack(d, a, &sa, &ea, &ma);
	soft_unpack(d, b, &sb, &eb, &mb);
	return soft_round_pack128(d, sign, ea + eb, (u128)ma * mb, rm, fl);
}

static FPU_COLD uint64_t soft_div(int d, uint64_t a, uint64_t b, unsigned rm,
			 unsigned *fl)
{
	unsigned sa, sb, sign;
	uint64_t ma, mb, q;
	int ea, eb, la, lb;
	u128 n;

	if (fp_isnan(d, a) || fp_isnan(d, b))
		return soft_nan(d, a, b, fl);
	sign = fp_signbit(d, a) ^ fp_signbit(d, b);
	if (fp_isinf(d, a)) {
		if (fp_isinf(d, b)) {
			*fl |= FFLAG_NV;
			return fp_qnan(d);
		}
		return fp_inf(d) | (sign ? fp_sign(d) : 0);
	}
	if (fp_isinf(d, b))
		return sign ? fp_sign(d) : 0;
	if (fp_iszero(d, b)) {
		if (fp_iszero(d, a)) {
			*fl |= FFLAG_NV;
			return fp_qnan(d);
		}
		*fl |= FFLAG_DZ;
		return fp_inf(d) | (sign ? fp_sign(d) : 0);
	}
	if (fp_iszero(d, a))
		return sign ? fp_sign(d) : 0;

	soft_unpack(d, a, &sa, &ea, &ma);
	soft_unpack(d, b, &sb, &eb, &mb);
	/* ma at bit 62, mb at bit 63: the quotient lies in (2^62, 2^64). */
	la = __builtin_clzll(ma) - 1;
	lb = __builtin_clzll(mb);
	ma <<= la;
	mb <<= lb;
	n = (u128)ma << 64;
	q = (uint64_t)(n / mb);
	q |= (n % mb) != 0;
	return soft_round_pack(d, sign, (ea - la) - (eb - lb) - 64, q, rm, fl);
}

/* a x b + c with a single rounding (operands already negated as needed). */
static FPU_COLD uint64_t soft_fma(int d, uint64_t a, uint64_t b, uint64_t c,
			 unsigned rm, unsigned *fl)
{
	unsigned sa, sb, sc, ps, sign;
	uint64_t ma, mb, mc;
	int ea, eb, ec, pe, ce, exp, lz;
	bool inf_x_zero;
	u128 p, q, r;

	inf_x_zero = (fp_isinf(d, a) && fp_iszero(d, b)) ||
		     (fp_iszero(d, a) && fp_isinf(d, b));
	if (fp_isnan(d, a) || fp_isnan(d, b) || fp_isnan(d, c)) {
		/* 0 x inf raises NV even with a quiet NaN addend (F extension). */
		if (fp_issnan(d, a) || fp_issnan(d, b) || fp_issnan(d, c) ||
		    inf_x_zero)
			*fl |= FFLAG_NV;
		return fp_qnan(d);
	}
	if (inf_x_zero) {
		*fl |= FFLAG_NV;
		return fp_qnan(d);
	}
	ps = fp_signbit(d, a) ^ fp_signbit(d, b);
	sc = fp_signbit(d, c);
	if (fp_isinf(d, a) || fp_isinf(d, b)) {
		if (fp_isinf(d, c) && sc != ps) {
			*fl |= FFLAG_NV;
			return fp_qnan(d);
		}
		return fp_inf(d) | (ps ? fp_sign(d) : 0);
	}
	if (fp_isinf(d, c))
		return c;
	if (fp_iszero(d, a) || fp_iszero(d, b)) {
		if (fp_iszero(d, c))
			return ps == sc ? c : soft_cancel_zero(d, rm);
		return c;
	}

	soft_unpack(d, a, &sa, &ea, &ma);
	soft_unpack(d, b, &sb, &eb, &mb);
	p = (u128)ma * mb;
	pe = ea + eb;
	if (fp_iszero(d, c))
		return soft_round_pack128(d, ps, pe, p, rm, fl);
	soft_unpack(d, c, &sc, &ec, &mc);
	q = mc;
	ce = ec;

	/* Both at bit 125: two bits of headroom for the carry. */
	lz = clz128(p) - 2;
	p <<= lz;
	pe -= lz;
	lz = clz128(q) - 2;
	q <<= lz;
	ce -= lz;
	if (pe >= ce) {
		q = shr_jam128(q, (unsigned)(pe - ce));
		exp = pe;
	} else {
		p = shr_jam128(p, (unsigned)(ce - pe));
		exp = ce;
	}
	if (ps == sc) {
		r = p + q;
		sign = ps;
	} else if (p >= q) {
		r = p - q;
		sign = ps;
	} else {
		r = q - p;
		sign = sc;
	}
	if (!r)
		return soft_cancel_zero(d, rm);
	return soft_round_pack128(d, sign, exp, r, rm, fl);
}

/* FCVT.S.D */
static FPU_COLD uint64_t soft_cvt_s_d(uint64_t v, unsigned rm, unsigned *fl)
{
	unsigned sign;
	uint64_t sig;
	int exp;

	if (fp_isnan(1, v)) {
		if (fp_issnan(1, v))
			*fl |= FFLAG_NV;
		return fp_qnan(0);
	}
	sign = fp_signbit(1, v);
	if (fp_isinf(1, v))
		return fp_inf(0) | (sign ? fp_sign(0) : 0);
	if (fp_iszero(1, v))
		return sign ? fp_sign(0) : 0;
	soft_unpack(1, v, &sign, &exp, &sig);
	return soft_round_pack(0, sign, exp, sig, rm, fl);
}

/* FCVT.D.S: exact. */
static uint64_t cvt_d_s(uint64_t v, unsigned *fl)
{
	uint64_t sign = (v & 0x80000000u) ? 1ull << 63 : 0;
	uint64_t frac = v & 0x7fffffu;
	int be = (int)((v >> 23) & 0xff);

	if (fp_isnan(0, v)) {
		if (fp_issnan(0, v))
			*fl |= FFLAG_NV;
		return fp_qnan(1);
	}
	if (be == 0xff)
		return sign | fp_inf(1);
	if (be == 0) {
		int sh;

		if (!frac)
			return sign;
		/* Subnormal single: normal as a double. */
		sh = __builtin_clzll(frac) - 40;
		frac = (frac << sh) & 0x7fffffu;
		be = 1 - sh;
	}
	return sign | (uint64_t)(be + 1023 - 127) << 52 | frac << 29;
}

/* Integer -> float, any mode. */
static uint64_t soft_from_int(int d, unsigned sign, uint64_t mag, unsigned rm,
			      unsigned *fl)
{
	if (!mag)
		return 0;
	return soft_round_pack(d, sign, 0, mag, rm, fl);
}

/*
 * Float -> integer (spec: "Floating-Point Conversion and Move
 * Instructions"): rounds with rm, then saturates. NaN gives the largest
 * value, out-of-range values the nearest limit; both raise NV and no NX.
 * 32-bit results come back sign-extended to 64 bits, as RV64 writes them.
 */
static uint64_t soft_to_int(int d, uint64_t v, unsigned rm, bool is_signed,
			    bool is64, unsigned *fl)
{
	const uint64_t umax = is64 ? ~0ull : 0xffffffffull;
	const uint64_t smax = is64 ? (1ull << 63) - 1 : 0x7fffffffull;
	uint64_t sig, ip, frac, half, mag;
	bool up, inexact = false;
	unsigned sign;
	int exp;

	if (fp_isnan(d, v)) {
		*fl |= FFLAG_NV;
		mag = is_signed ? smax : umax;
		goto out;
	}
	sign = fp_signbit(d, v);
	if (fp_isinf(d, v)) {
		*fl |= FFLAG_NV;
		if (is_signed)
			mag = sign ? smax + 1 : smax;
		else
			mag = sign ? 0 : umax;
		goto out;
	}
	if (fp_iszero(d, v)) {
		mag = 0;
		goto out;
	}

	soft_unpack(d, v, &sign, &exp, &sig);
	if (exp >= 0) {
		/* Integral; anything shifted to bit 64 or beyond is too big. */
		if (exp >= 64 || (sig << exp) >> exp != sig)
			goto range;
		mag = sig << exp;
	} else {
		unsigned sh = (unsigned)-exp;

		if (sh >= 64) {
			ip = 0;
			frac = sig;
			half = ~0ull;	/* sig < 2^53: always below one half */
		} else {
			ip = sig >> sh;
			frac = sig & ((1ull << sh) - 1);
			half = 1ull << (sh - 1);
		}
		switch (rm) {
		case RM_RNE:
			up = frac > half || (frac == half && (ip & 1));
			break;
		case RM_RMM:
			up = frac >= half;
			break;
		case RM_RDN:
			up = sign && frac;
			break;
		case RM_RUP:
			up = !sign && frac;
			break;
		default:
			up = false;
			break;
		}
		mag = ip + up;
		inexact = frac != 0;
	}
	if (is_signed ? mag > smax + sign : (sign && mag) || mag > umax)
		goto range;
	if (inexact)
		*fl |= FFLAG_NX;
	if (sign)
		mag = -mag;
	goto out;
range:
	*fl |= FFLAG_NV;
	if (is_signed)
		mag = sign ? smax + 1 : smax;
	else
		mag = sign ? 0 : umax;
	if (sign && is_signed)
		mag = -mag;
out:
	if (!is64)
		mag = (uint64_t)(int64_t)(int32_t)(uint32_t)mag;
	return mag;
}

/* ------------------------------------------------------------------------
 * Host SSE path.
 */

#define MXCSR_BASE 0x1f80u	/* all exceptions masked, RNE, no FTZ/DAZ */
#define MXCSR_FLAGS 0x3fu	/* IE DE ZE OE UE PE */

/* MXCSR.RC for RNE, RTZ, RDN, RUP. */
static const uint8_t mxcsr_rc[4] = { 0, 3, 1, 2 };

/* MXCSR flag bits -> fflags (the denormal-operand flag has no equivalent). */
#define MXF(x)                                                                 \
	((((x) & 0x01) ? FFLAG_NV : 0) | (((x) & 0x04) ? FFLAG_DZ : 0) |       \
	 (((x) & 0x08) ? FFLAG_OF : 0) | (((x) & 0x10) ? FFLAG_UF : 0) |       \
	 (((x) & 0x20) ? FFLAG_NX : 0))
#define MXF4(x) MXF(x), MXF((x) + 1), MXF((x) + 2), MXF((x) + 3)
#define MXF16(x) MXF4(x), MXF4((x) + 4), MXF4((x) + 8), MXF4((x) + 12)
static const uint8_t mxcsr_fflags[64] = {
	MXF16(0), MXF16(16), MXF16(32), MXF16(48),
};

static inline uint32_t mxcsr_read(void)
{
	uint32_t v;

	asm volatile("stmxcsr %0" : "=m"(v) : : "memory");
	return v;
}

static inline void mxcsr_write(uint32_t v)
{
	asm volatile("ldmxcsr %0" : : "m"(v) : "memory");
}

/*
 * Sets the rounding mode and makes sure every flag MXCSR holds is already
 * accrued in fflags, so whatever it holds after the operation can be ORed in.
 */
static inline void hw_begin(const hart_t *h, unsigned rm)
{
	uint32_t want = MXCSR_BASE | (uint32_t)mxcsr_rc[rm] << 13;
	uint32_t cur = mxcsr_read();

	if ((cur & ~MXCSR_FLAGS) != want ||
	    (mxcsr_fflags[cur & MXCSR_FLAGS] & ~h->s.fcsr))
		mxcsr_write(want);
}

static inline unsigned hw_end(unsigned rm)
{
	uint32_t cur = mxcsr_read();

	if (rm != RM_RNE)
		mxcsr_write(MXCSR_BASE | (cur & MXCSR_FLAGS));
	return mxcsr_fflags[cur & MXCSR_FLAGS];
}

/*
 * The operations themselves are asm volatile so that the compiler neither
 * folds them nor moves them across the MXCSR accesses (gcc does not honour
 * FENV_ACCESS).
 */
#define HW_BINOP(name, insn, T)                                                \
	static inline T name(T a, T b)                                         \
	{                                                                      \
		asm volatile(insn " %1, %0" : "+x"(a) : "x"(b));               \
		return a;                                                      \
	}
HW_BINOP(hw_add_s, "addss", float)
HW_BINOP(hw_sub_s, "subss", float)
HW_BINOP(hw_mul_s, "mulss", float)
HW_BINOP(hw_div_s, "divss", float)
HW_BINOP(hw_add_d, "addsd", double)
HW_BINOP(hw_sub_d, "subsd", double)
HW_BINOP(hw_mul_d, "mulsd", double)
HW_BINOP(hw_div_d, "divsd", double)

static inline float hw_sqrt_s(float a)
{
	asm volatile("sqrtss %0, %0" : "+x"(a));
	return a;
}

static inline double hw_sqrt_d(double a)
{
	asm volatile("sqrtsd %0, %0" : "+x"(a));
	return a;
}

static inline float hw_cvt_s_d(double a)
{
	float r;

	asm volatile("cvtsd2ss %1, %0" : "=x"(r) : "x"(a));
	return r;
}

/* FMA3 (VEX encoded; only run when the CPU reports it). */
static inline float hw_fma_s(float a, float b, float c)
{
	asm volatile("vfmadd231ss %2, %1, %0" : "+x"(c) : "x"(a), "x"(b));
	return c;
}

static inline double hw_fma_d(double a, double b, double c)
{
	asm volatile("vfmadd231sd %2, %1, %0" : "+x"(c) : "x"(a), "x"(b));
	return c;
}

static inline float bits_to_s(uint64_t v)
{
	uint32_t u = (uint32_t)v;
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static inline uint64_t s_to_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline double bits_to_d(uint64_t v)
{
	double f;

	memcpy(&f, &v, sizeof(f));
	return f;
}

static inline uint64_t d_to_bits(double f)
{
	uint64_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline bool host_has_fma(void)
{
	return __builtin_cpu_supports("fma");
}

/* ------------------------------------------------------------------------
 * Instructions.
 */

/* FADD, FSUB, FMUL, FDIV, FSQRT */
static inline __attribute__((always_inline)) uint64_t
fpu_arith(hart_t *h, int d, unsigned f5, uint64_t a, uint64_t b, unsigned rm,
	  unsigned *fl)
{
	uint64_t r;

	/*
	 * x86 has no RMM: those go to the exact path. A square root is never
	 * exactly halfway between two floats (its square would need more than
	 * prec bits), so there RMM gives the RNE result and flags.
	 */
	if (rm == RM_RMM && f5 != F5_SQRT) {
		switch (f5) {
		case F5_ADD:
			return soft_add(d, a, b, rm, fl);
		case F5_SUB:
			return soft_add(d, a, b ^ fp_sign(d), rm, fl);
		case F5_MUL:
			return soft_mul(d, a, b, rm, fl);
		default:
			return soft_div(d, a, b, rm, fl);
		}
	}
	if (rm == RM_RMM)
		rm = RM_RNE;

	hw_begin(h, rm);
	if (d) {
		double x = bits_to_d(a), y = bits_to_d(b), z;

		switch (f5) {
		case F5_ADD:
			z = hw_add_d(x, y);
			break;
		case F5_SUB:
			z = hw_sub_d(x, y);
			break;
		case F5_MUL:
			z = hw_mul_d(x, y);
			break;
		case F5_DIV:
			z = hw_div_d(x, y);
			break;
		default:
			z = hw_sqrt_d(x);
			break;
		}
		r = d_to_bits(z);
	} else {
		float x = bits_to_s(a), y = bits_to_s(b), z;

		switch (f5) {
		case F5_ADD:
			z = hw_add_s(x, y);
			break;
		case F5_SUB:
			z = hw_sub_s(x, y);
			break;
		case F5_MUL:
			z = hw_mul_s(x, y);
			break;
		case F5_DIV:
			z = hw_div_s(x, y);
			break;
		default:
			z = hw_sqrt_s(x);
			break;
		}
		r = s_to_bits(z);
	}
	*fl |= hw_end(rm);
	if (fp_isnan(d, r))
		r = fp_qnan(d);
	return r;
}

/* FMADD, FMSUB, FNMSUB, FNMADD */
static __attribute__((noinline)) int fpu_fma(hart_t *h, uint32_t insn)
{
	unsigned opc = insn & 0x7f;
	unsigned rd = (insn >> 7) & 31, rs1 = (insn >> 15) & 31;
	unsigned rs2 = (insn >> 20) & 31, rs3 = insn >> 27;
	unsigned fmt = (insn >> 25) & 3, fl = 0;
	int d = fmt == 1, rm;
	uint64_t a, b, c, r;

	if (fmt > 1)
		return -1;	/* H and Q are not implemented */
	rm = fpu_rm(h, (insn >> 12) & 7);
	if (rm < 0)
		return -1;
	a = freg_read(h, d, rs1);
	b = freg_read(h, d, rs2);
	c = freg_read(h, d, rs3);
	/*
	 * FMSUB: a*b - c; FNMSUB: -(a*b) + c; FNMADD: -(a*b) - c. Negating an
	 * operand is exact and keeps a NaN a NaN of the same kind.
	 */
	if (opc == OPC_NMSUB || opc == OPC_NMADD)
		a ^= fp_sign(d);
	if (opc == OPC_MSUB || opc == OPC_NMADD)
		c ^= fp_sign(d);

	if (rm == RM_RMM || !host_has_fma()) {
		r = soft_fma(d, a, b, c, (unsigned)rm, &fl);
	} else {
		hw_begin(h, (unsigned)rm);
		if (d)
			r = d_to_bits(hw_fma_d(bits_to_d(a), bits_to_d(b),
					       bits_to_d(c)));
		else
			r = s_to_bits(hw_fma_s(bits_to_s(a), bits_to_s(b),
					       bits_to_s(c)));
		fl |= hw_end((unsigned)rm);
		if (fp_isnan(d, r)) {
			/* x86 does not flag 0 x inf + qNaN; RISC-V does. */
			if ((fp_isinf(d, a) && fp_iszero(d, b)) ||
			    (fp_iszero(d, a) && fp_isinf(d, b)))
				fl |= FFLAG_NV;
			r = fp_qnan(d);
		}
	}
	freg_write(h, d, rd, r);
	fpu_finish(h, fl, true);
	return 0;
}

/*
 * FMIN/FMAX: IEEE 754-2019 minimumNumber/maximumNumber as the spec has
 * required since version 2.2: -0 < +0, a NaN operand yields the other
 * operand, two NaNs yield the canonical NaN, a signalling NaN raises NV.
 */
static uint64_t fpu_minmax(int d, uint64_t a, uint64_t b, bool max,
			   unsigned *fl)
{
	bool an = fp_isnan(d, a), bn = fp_isnan(d, b), a_lt_b;

	if (fp_issnan(d, a) || fp_issnan(d, b))
		*fl |= FFLAG_NV;
	if (an && bn)
		return fp_qnan(d);
	if (an)
		return b;
	if (bn)
		return a;
	if (fp_signbit(d, a) != fp_signbit(d, b))
		a_lt_b = fp_signbit(d, a);
	else if (fp_signbit(d, a))
		a_lt_b = fp_abs(d, a) > fp_abs(d, b);
	else
		a_lt_b = fp_abs(d, a) < fp_abs(d, b);
	return a_lt_b != max ? a : b;
}

/* FEQ (quiet), FLT and FLE (signalling). f3: 2 = EQ, 1 = LT, 0 = LE. */
static uint64_t fpu_compare(int d, uint64_t a, uint64_t b, unsigned f3,
			    unsigned *fl)
{
	unsigned sa, sb;

	if (fp_isnan(d, a) || fp_isnan(d, b)) {
		if (f3 != 2 || fp_issnan(d, a) || fp_issnan(d, b))
			*fl |= FFLAG_NV;
		return 0;
	}
	if (fp_iszero(d, a) && fp_iszero(d, b))
		return f3 != 1;	/* +0 == -0 */
	if (a == b)
		return f3 != 1;
	sa = fp_signbit(d, a);
	sb = fp_signbit(d, b);
	if (f3 == 2)
		return 0;
	if (sa != sb)
		return sa;
	return sa ? fp_abs(d, a) > fp_abs(d, b) : fp_abs(d, a) < fp_abs(d, b);
}

/* FCLASS: one-hot class mask (spec table "Format of result of FCLASS"). */
static uint64_t fpu_class(int d, uint64_t v)
{
	unsigned sign = fp_signbit(d, v);
	uint64_t abs = fp_abs(d, v);

	if (fp_isnan(d, v))
		return fp_issnan(d, v) ? 1u << 8 : 1u << 9;
	if (abs == fp_inf(d))
		return sign ? 1u << 0 : 1u << 7;
	if (abs == 0)
		return sign ? 1u << 3 : 1u << 4;
	if (abs < (1ull << (fp_prec(d) - 1)))
		return sign ? 1u << 2 : 1u << 5;
	return sign ? 1u << 1 : 1u << 6;
}

/* FADD, FSUB, FMUL, FDIV: the hot path, kept small. */
static inline int fpu_op_arith(hart_t *h, uint32_t insn)
{
	unsigned rd = (insn >> 7) & 31, rs1 = (insn >> 15) & 31;
	unsigned rs2 = (insn >> 20) & 31, fmt = (insn >> 25) & 3, fl = 0;
	int d = fmt == 1, rm = fpu_rm(h, (insn >> 12) & 7);
	uint64_t r;

	if (fmt > 1 || rm < 0)
		return -1;
	r = fpu_arith(h, d, insn >> 27, freg_read(h, d, rs1),
		      freg_read(h, d, rs2), (unsigned)rm, &fl);
	freg_write(h, d, rd, r);
	fpu_finish(h, fl, true);
	return 0;
}

/* The rest of OP-FP. */
static __attribute__((noinline)) int fpu_op_misc(hart_t *h, uint32_t insn)
{
	unsigned rd = (insn >> 7) & 31, f3 = (insn >> 12) & 7;
	unsigned rs1 = (insn >> 15) & 31, rs2 = (insn >> 20) & 31;
	unsigned fmt = (insn >> 25) & 3, f5 = insn >> 27, fl = 0;
	int d = fmt == 1, rm;
	uint64_t a, b, r;

	if (fmt > 1)
		return -1;	/* H and Q are not implemented */

	switch (f5) {
	case F5_SQRT:
		if (rs2 != 0)
			return -1;
		rm = fpu_rm(h, f3);
		if (rm < 0)
			return -1;
		r = fpu_arith(h, d, f5, freg_read(h, d, rs1), 0, (unsigned)rm,
			      &fl);
		break;

	case F5_SGNJ:
		if (f3 > 2)
			return -1;
		a = freg_read(h, d, rs1);
		b = freg_read(h, d, rs2);
		if (f3 == 1)
			b = ~b;
		else if (f3 == 2)
			b ^= a;
		r = (a & ~fp_sign(d)) | (b & fp_sign(d));
		break;

	case F5_MINMAX:
		if (f3 > 1)
			return -1;
		a = freg_read(h, d, rs1);
		b = freg_read(h, d, rs2);
		r = fpu_minmax(d, a, b, f3 == 1, &fl);
		break;

	case F5_CVT_FF:
		/* fmt is the destination, rs2 the source format. */
		if (rs2 != (d ? 0u : 1u))
			return -1;
		rm = fpu_rm(h, f3);
		if (rm < 0)
			return -1;
		if (d) {
			r = cvt_d_s(freg_read(h, 0, rs1), &fl);
		} else if (rm == RM_RMM) {
			r = soft_cvt_s_d(h->s.f[rs1], (unsigned)rm, &fl);
		} else {
			hw_begin(h, (unsigned)rm);
			r = s_to_bits(hw_cvt_s_d(bits_to_d(h->s.f[rs1])));
			fl |= hw_end((unsigned)rm);
			if (fp_isnan(0, r))
				r = fp_qnan(0);
		}
		break;

	case F5_CMP:
		if (f3 > 2)
			return -1;
		a = freg_read(h, d, rs1);
		b = freg_read(h, d, rs2);
		r = fpu_compare(d, a, b, f3, &fl);
		xreg_write(h, rd, r);
		fpu_finish(h, fl, false);
		return 0;

	case F5_CVT_IF:
		if (rs2 > 3)
			return -1;
		rm = fpu_rm(h, f3);
		if (rm < 0)
			return -1;
		r = soft_to_int(d, freg_read(h, d, rs1), (unsigned)rm,
				!(rs2 & 1), rs2 & 2, &fl);
		xreg_write(h, rd, r);
		fpu_finish(h, fl, false);
		return 0;

	case F5_CVT_FI: {
		uint64_t x = h->s.x[rs1], mag;
		unsigned sign = 0;

		if (rs2 > 3)
			return -1;
		rm = fpu_rm(h, f3);
		if (rm < 0)
			return -1;
		switch (rs2) {
		case 0:		/* W */
			x = (uint64_t)(int64_t)(int32_t)(uint32_t)x;
			/* fall through */
		case 2:		/* L */
			sign = (unsigned)(x >> 63);
			mag = sign ? -x : x;
			break;
		case 1:		/* WU */
			mag = (uint32_t)x;
			break;
		default:	/* LU */
			mag = x;
			break;
		}
		r = soft_from_int(d, sign, mag, (unsigned)rm, &fl);
		break;
	}

	case F5_MV_X_CLASS:
		if (rs2 != 0 || f3 > 1)
			return -1;
		if (f3 == 1) {
			r = fpu_class(d, freg_read(h, d, rs1));
		} else {
			/* FMV.X.W moves the raw bits, boxed or not. */
			r = h->s.f[rs1];
			if (!d)
				r = (uint64_t)(int64_t)(int32_t)(uint32_t)r;
		}
		xreg_write(h, rd, r);
		return 0;

	case F5_MV_F:
		if (rs2 != 0 || f3 != 0)
			return -1;
		r = h->s.x[rs1];
		break;

	default:
		return -1;
	}

	freg_write(h, d, rd, r);
	fpu_finish(h, fl, true);
	return 0;
}

int fpu_exec(hart_t *h, uint32_t insn)
{
	unsigned opc = insn & 0x7f;

	/* mstatus.FS = Off: every FP instruction is illegal (priv. spec 3.1.6.6). */
	if (!(h->s.mstatus & FPU_MSTATUS_FS))
		return -1;
	if (opc == OPC_OP_FP) {
		if ((insn >> 27) <= F5_DIV)
			return fpu_op_arith(h, insn);
		return fpu_op_misc(h, insn);
	}
	/* MADD, MSUB, NMSUB, NMADD differ only in bits 3:2. */
	if ((opc & ~0x0cu) == OPC_MADD)
		return fpu_fma(h, insn);
	return -1;
}
