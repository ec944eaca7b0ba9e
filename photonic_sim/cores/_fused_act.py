"""Fused CPU kernel: a layer's electronic bias and sine activation in one vectorised pass.

Why. After a layer's last core ``PhotonicNetwork`` adds the layer's bias and applies its
activation, electronically. For the sine networks of the PINN scenarios that was two torch
passes (``add_``, ``sin_``) over every node value of every setting, and torch's float64
``sin`` (a correctly rounded-grade vector sine, ≈ 3 ns a value on one AVX-512 core) was a
quarter of an HJB-20 ZO step (issue 24). This pass computes h ← sin(h + b) in place with a
sine built for throughput (≈ 0.5 ns a value there).

The sine (float64). x = q·π + r with q = round(x/π) (the 1.5·2^52 shifter), r by a
three-part Cody–Waite reduction (π as three doubles, fused multiply-adds; exact for the
first part), r ∈ [−π/2, π/2]; sin r = r + r·r²·P(r²) with P a degree-7 near-minimax
polynomial in r² (Chebyshev fit in 150-bit arithmetic of (sin √z − √z)/z^{3/2} on
[0, (π/2)²]; truncation error < 1e-18); the sign is flipped for odd q (the shifter's
last bit). Error against the exact sine (tests/test_fused_act.py, mpmath reference):
≤ 2 ulp for |x| ≤ 2^20 (measured max 1.8 ulp, mean 0.34 ulp; torch's: max 0.5, mean 0.25),
exact at 0 and signed zeros; |x| > 2^20, infinities and NaN go to the C library's ``sin``.
So the fused path's sine readings differ from torch's in the last bit or two for about a
quarter of the values; every other operation (h + b rounded once, then the sine) is torch's.

How it is built. Through ``photonic_sim.circuits._fused.compile_and_load`` (the shared
machinery: compiled on first use, cached, ctypes, GIL released), float64 only; ``usable``
says when a tensor can take this path (CPU float64, no autograd, innermost stride 1, kernel
loaded). ``PHOTONIC_SIM_NO_FUSED=1`` turns it off (torch's ``add_``/``sin_`` then).
"""

from __future__ import annotations

import ctypes

import torch

from photonic_sim.circuits import _fused

Tensor = torch.Tensor

# Coefficients of P(z), highest first: a Chebyshev fit (mpmath, 150 bits) of
# (sin √z − √z) / z^{3/2} on [0, (π/2)²], rounded to double (module docstring).
_POLY = ("0x1.89a4866f527ebp-49", "-0x1.ae5138c1216b3p-41", "0x1.6124015b5ee3ap-33",
         "-0x1.ae6455a1d7087p-26", "0x1.71de3a5456716p-19", "-0x1.a01a01a018aadp-13",
         "0x1.1111111111107p-7", "-0x1.5555555555555p-3")
LIMIT = 2.0 ** 20  # |x| above it (and inf/NaN) take the C library's sin

SOURCE = r"""
#include <stdint.h>
#include <string.h>
#include <math.h>
#define SHIFT 0x1.8p52
#define LIMIT LIMIT_VALUE
#define SEGMENT 256

/* sin x for |x| <= LIMIT: q = round(x / pi) by the shifter, r = x - q pi (three-part pi),
   sin r = r + r^3 P(r^2), sign flipped for odd q (the shifter's last bit). */
static inline double fast_sin(double x)
{
    const double t = fma(x, 0x1.45f306dc9c883p-2, SHIFT);
    const double q = t - SHIFT;
    double r = fma(-q, 0x1.921fb54442d18p+1, x);
    r = fma(-q, 0x1.1a62633145c07p-53, r);
    r = fma(-q, -0x1.f1976b7ed8fbcp-109, r);
    const double z = r * r;
HORNER
    double y = x == 0 ? x : fma(r * z, p, r); /* sin(+-0) = +-0 (the reduction loses the sign) */
    uint64_t tb, yb;
    memcpy(&tb, &t, 8);
    memcpy(&yb, &y, 8);
    yb ^= tb << 63;
    memcpy(&y, &yb, 8);
    return y;
}

/* h[i][j][:f] = sin(h[i][j][:f] + b[i][:f]) in place (b NULL: no bias); h strides s0, s1
   (innermost 1), b row stride bs. Segments of a row are first biased (and checked against
   LIMIT), then sined: vectorised unless a value is out of range (then the C library's sin). */
void bias_sin_f64(int64_t p, int64_t n, int64_t f, double *h, int64_t s0, int64_t s1,
                  const double *b, int64_t bs)
{
    for (int64_t i = 0; i < p; ++i)
        for (int64_t j = 0; j < n; ++j)
            for (int64_t a = 0; a < f; a += SEGMENT) {
                const int64_t m = f - a < SEGMENT ? f - a : SEGMENT;
                double *restrict row = h + i * s0 + j * s1 + a;
                int bad = 0;
                if (b) {
                    const double *restrict br = b + i * bs + a;
                    for (int64_t k = 0; k < m; ++k) {
                        const double v = row[k] + br[k];
                        row[k] = v;
                        bad |= !(fabs(v) <= LIMIT);
                    }
                } else {
                    for (int64_t k = 0; k < m; ++k)
                        bad |= !(fabs(row[k]) <= LIMIT);
                }
                if (!bad) {
                    for (int64_t k = 0; k < m; ++k)
                        row[k] = fast_sin(row[k]);
                } else {
                    for (int64_t k = 0; k < m; ++k)
                        row[k] = fabs(row[k]) <= LIMIT ? fast_sin(row[k]) : sin(row[k]);
                }
            }
}
"""
SOURCE = SOURCE.replace("HORNER", "\n".join([f"    double p = {_POLY[0]};"] + [f"    p = fma(p, z, {c});" for c in _POLY[1:]]))
SOURCE = SOURCE.replace("LIMIT_VALUE", float(LIMIT).hex())
FLAGS = ("-fno-math-errno", "-fno-trapping-math")  # never -ffast-math: the shifter needs IEEE rounding

_LIB = _fused.LazyLibrary(lambda: _load())


def kernel() -> ctypes.CDLL | None:
    """The compiled library (built on first call), or None (reason in ``unavailable_reason()``)."""
    return _LIB.get()


def unavailable_reason() -> str | None:
    """Why ``kernel()`` is None (None when loaded or not tried yet)."""
    return _LIB.reason()


def usable(h: Tensor) -> bool:
    """True when ``bias_sin_`` can take ``h``: a 3-D CPU float64 tensor, innermost stride 1,
    needing no autograd, and the kernel loaded."""
    if h.device.type != "cpu" or h.dtype != torch.float64 or h.ndim != 3 or h.stride(2) != 1:
        return False
    if torch.is_grad_enabled() and h.requires_grad:
        return False
    return kernel() is not None


def bias_sin_(h: Tensor, bias: Tensor | None = None) -> Tensor:
    """h ← sin(h + bias) in place and return h (module docstring). ``h`` [P, N, F] (``usable``),
    ``bias`` None or [P, F] (float64; rows may be strided), broadcast over N."""
    p, n, f = h.shape
    ptr, bs = None, 0
    if bias is not None:
        if bias.shape != (p, f) or bias.dtype != torch.float64 or bias.device.type != "cpu":
            raise ValueError(f"bias: expected float64 CPU [{p}, {f}], got {bias.dtype} {tuple(bias.shape)}")
        if bias.stride(1) != 1:
            bias = bias.contiguous()
        ptr, bs = bias.data_ptr(), bias.stride(0)
    kernel().bias_sin_f64(p, n, f, h.data_ptr(), h.stride(0), h.stride(1), ptr, bs)
    return h


def _load() -> tuple[ctypes.CDLL | None, str | None]:
    lib, why = _fused.compile_and_load(SOURCE, "act_kernel", "fused activation kernel", FLAGS)
    if lib is not None:
        lib.bias_sin_f64.restype = None
        lib.bias_sin_f64.argtypes = [ctypes.c_int64] * 3 + [ctypes.c_void_p] + [ctypes.c_int64] * 2 \
            + [ctypes.c_void_p, ctypes.c_int64]
    return lib, why
