"""Fused CPU kernel: blocked matrix–vector products with the O/E readout of every block output.

Why. ``PhotonicNetwork._matvec`` multiplies every k×k block matrix with every input vector
and hands each block output field to the chip's ``detect`` (noise, TIA, ADC), then scales
and sums the block columns. In torch that is a complex bmm plus ~15 elementwise passes
over a [P, rows, bc, N, k] tensor; one C call per chunk of block rows does the same
arithmetic in cache, with no intermediate tensors.

What it computes. For every setting p, block row r of the chunk and vector n:

    out[p, n, r·k + j] = Σ_c s[r, c] · read(y_j),   y = B[p, r, c] · x[p, n, c-th k entries]

(c in order, partial sums rounded as torch's ``(readings * scales).sum(2)``), where ``read``
is the chain described by a :class:`Readout` (plain numbers handed over by the chip; SI
units; y dimensionless, the normalized amplitude):

* coherent (balanced homodyne, ``Photodetector.homodyne_read``): I = a·Re y (A);
  noise σ = √(s·|y|² + f), I += σ·z; V = G·I; bipolar ADC; reading = V·back;
* intensity (``Photodetector.read``): I = R·(a·|y|²) + I_d; noise σ = √(q2·|I|·B + f),
  I += σ·z; V = G·I; unipolar ADC; reading = (V/G − I_d)/back;
* ADC (``Photodetector.adc``): code = round-half-even(V/lsb), clamped to [kmin, kmax]
  (a changed code counts as clipped), V = code·lsb.

The operations, their order and their constants (rounded to the signal precision first, as
torch does with Python scalars) follow the torch path, so the readings equal it to float
rounding: only the matvec's summation order differs from the BLAS bmm (~1 ulp in y), which
can move a value across an ADC code boundary (one LSB, rare) — the equivalence contract
tested in tests/test_fused_read.py. The standard normals z are drawn with torch by
``Photodetector.standard_normal`` (the generator, shape [P, rows, bc, N, k] per chunk and dtype
of the torch path), so the generator state after a call and a seed's readings are those of the
torch path.
Noise off (``noisy=False``) and no ADC (``quantize=False``) give the exact readout (the
chip's ``exact_readout``/``ideal``: a = G = back = 1, R = 1, I_d = 0).

Loop order. For each setting p and tile of 16 vectors (their inputs transposed once, so the
matvec vectorises over the vectors): for each block row r of the chunk, for c, the k×k
complex matvec of block (r, c), then the readout of those k·16 outputs (their normals are
contiguous in z), accumulated into the output; k = 4, 8, 16 are compiled with a constant k.

How it is built. ``photonic_sim.circuits._fused.compile_and_load`` (compile on first use,
cache, ctypes, GIL released during the call; ``PHOTONIC_SIM_NO_FUSED=1`` turns it off),
float (complex64) and double (complex128) variants, no torch headers. ``kernel()`` is None
when it cannot be built; callers then keep their torch path. CPU only; no autograd (the
caller checks: see ``usable``).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import torch

from photonic_sim.circuits import _fused
from photonic_sim.devices.detector import Photodetector

Tensor = torch.Tensor

_TEMPLATE = r"""
/* One chunk of block rows [r0, r0 + nr) of a blocked complex matvec with readout, k = KDIM.
   b: block matrices [P][br][bc][k][k] (y_j = sum_i b[j][i] x_i); x: fields [P][N][cols],
   cols <= bc k (the rest zero padding);
   complex values interleaved (re, im). z: standard normals [P][nr][bc][N][k] or NULL (no
   noise); s: block gains [br][bc]; out: readings [P][N][br k], columns r0 k .. (r0 + nr) k - 1
   written. q (doubles): coherent?, quantize?, a, R, I_d, s|q2, B, f, G, lsb, kmin, kmax, back.
   work: 2 bc k TILE REALs. Returns the number of clipped ADC samples. */
static int64_t read_KNAME_SUFFIX(int64_t P, int64_t N, int64_t cols, const int64_t k, int64_t br, int64_t bc,
                                 int64_t r0, int64_t nr, const REAL *b, const REAL *x, const REAL *z, const REAL *s,
                                 REAL *out, const double *q, void *work)
{
    const int coherent = q[0] != 0, quantize = q[1] != 0;
    const REAL a = (REAL)q[2], resp = (REAL)q[3], dark = (REAL)q[4], shot = (REAL)q[5], bw = (REAL)q[6];
    const REAL floor_ = (REAL)q[7], g = (REAL)q[8], lsb = (REAL)q[9], kmin = (REAL)q[10], kmax = (REAL)q[11];
    const REAL back = (REAL)q[12];
    REAL *restrict xs = (REAL *)work; /* a tile of inputs as [c][i][re TILE | im TILE] */
    REAL yr[TILE * KDIM], yi[TILE * KDIM], rd[TILE * KDIM], acc[TILE * KDIM], sr[TILE], si[TILE];
    int64_t clipped = 0;
    for (int64_t p = 0; p < P; ++p) {
        for (int64_t n0 = 0; n0 < N; n0 += TILE) { /* a tile of vectors: their outputs are contiguous in z */
            const int64_t nt = N - n0 < TILE ? N - n0 : TILE, m = nt * KDIM;
            for (int64_t ci = 0; ci < bc * KDIM; ++ci)
                for (int64_t t = 0; t < TILE; ++t) { /* entries past cols: padding, no light */
                    const REAL *xv = x + 2 * ((p * N + n0 + (t < nt ? t : 0)) * cols + ci);
                    xs[2 * ci * TILE + t] = ci < cols ? xv[0] : 0;
                    xs[(2 * ci + 1) * TILE + t] = ci < cols ? xv[1] : 0;
                }
            for (int64_t rr = 0; rr < nr; ++rr) {
                const int64_t r = r0 + rr;
                for (int64_t e = 0; e < m; ++e) acc[e] = 0;
                for (int64_t c = 0; c < bc; ++c) {
                    const REAL *bp = b + 2 * ((p * br + r) * bc + c) * KDIM * KDIM;
                    for (int64_t j = 0; j < KDIM; ++j) { /* y_j of every vector of the tile */
                        for (int64_t t = 0; t < TILE; ++t) sr[t] = si[t] = 0;
                        for (int64_t i = 0; i < KDIM; ++i) {
                            const REAL cr = bp[2 * (j * KDIM + i)], cim = bp[2 * (j * KDIM + i) + 1];
                            const REAL *restrict xr = xs + 2 * (c * KDIM + i) * TILE, *restrict xi = xr + TILE;
                            for (int64_t t = 0; t < TILE; ++t) {
                                sr[t] += cr * xr[t] - cim * xi[t];
                                si[t] += cr * xi[t] + cim * xr[t];
                            }
                        }
                        for (int64_t t = 0; t < nt; ++t) { yr[t * KDIM + j] = sr[t]; yi[t * KDIM + j] = si[t]; }
                    }
                    const REAL *restrict zc = z ? z + (((p * nr + rr) * bc + c) * N + n0) * KDIM : 0;
                    if (coherent && zc)
                        for (int64_t e = 0; e < m; ++e) {
                            const REAL sd = SQRT((yr[e] * yr[e] + yi[e] * yi[e]) * shot + floor_);
                            rd[e] = (yr[e] * a + sd * zc[e]) * g;
                        }
                    else if (coherent)
                        for (int64_t e = 0; e < m; ++e) rd[e] = yr[e] * a * g;
                    else if (zc)
                        for (int64_t e = 0; e < m; ++e) {
                            const REAL cur = resp * (a * (yr[e] * yr[e] + yi[e] * yi[e])) + dark;
                            rd[e] = g * (cur + SQRT(shot * (cur < 0 ? -cur : cur) * bw + floor_) * zc[e]);
                        }
                    else
                        for (int64_t e = 0; e < m; ++e) rd[e] = g * (resp * (a * (yr[e] * yr[e] + yi[e] * yi[e])) + dark);
                    if (quantize) {
                        int64_t clip = 0;
                        for (int64_t e = 0; e < m; ++e) {
                            const REAL code = RINT(rd[e] / lsb);
                            const REAL kept = code < kmin ? kmin : (code > kmax ? kmax : code);
                            clip += kept != code;
                            rd[e] = kept * lsb;
                        }
                        clipped += clip;
                    }
                    const REAL sc = s[r * bc + c];
                    if (coherent)
                        for (int64_t e = 0; e < m; ++e) acc[e] = acc[e] + rd[e] * back * sc;
                    else
                        for (int64_t e = 0; e < m; ++e) acc[e] = acc[e] + (rd[e] / g - dark) / back * sc;
                }
                for (int64_t t = 0; t < nt; ++t)
                    for (int64_t j = 0; j < KDIM; ++j) out[(p * N + n0 + t) * br * KDIM + r * KDIM + j] = acc[t * KDIM + j];
            }
        }
    }
    return clipped;
}
"""
_ENTRY = r"""
int64_t read_matvec_SUFFIX(int64_t P, int64_t N, int64_t cols, int64_t k, int64_t br, int64_t bc, int64_t r0, int64_t nr,
                           const REAL *b, const REAL *x, const REAL *z, const REAL *s, REAL *out,
                           const double *q, void *work)
{   /* k = 4, 8, 16 compiled with a constant k (unrolled, vectorised); other k generic */
    if (k == 4) return read_k4_SUFFIX(P, N, cols, k, br, bc, r0, nr, b, x, z, s, out, q, work);
    if (k == 8) return read_k8_SUFFIX(P, N, cols, k, br, bc, r0, nr, b, x, z, s, out, q, work);
    if (k == 16) return read_k16_SUFFIX(P, N, cols, k, br, bc, r0, nr, b, x, z, s, out, q, work);
    return read_kn_SUFFIX(P, N, cols, k, br, bc, r0, nr, b, x, z, s, out, q, work);
}
"""
_TILE = 16  # vectors per tile (the matvec vectorises over them)
_VARIANTS = (("k4", "4"), ("k8", "8"), ("k16", "16"), ("kn", "k"))
SOURCE = "#include <stdint.h>\n#include <math.h>\n#define TILE %d\n" % _TILE + "".join(
    (("".join(_TEMPLATE.replace("KNAME", name).replace("KDIM", dim) for name, dim in _VARIANTS) + _ENTRY)
     .replace("SUFFIX", suffix).replace("RINT", f"rint{f}").replace("SQRT", f"sqrt{f}").replace("REAL", real))
    for suffix, real, f in (("c128", "double", ""), ("c64", "float", "f"))
)
# Added after the shared -O3 flags: -O2 wins (GCC 12 at -O3 fully unrolls the k-loops into
# spilling shuffles: 50 vs 17 ms on the MNIST workload); errno is never set here (sqrt of a
# positive variance), and without it sqrt vectorises.
FLAGS = ("-O2", "-fno-math-errno")
_PARAMS = 13

_LIB = _fused.LazyLibrary(lambda: _load())


@dataclass(frozen=True)
class Readout:
    """The O/E chain of one optical pass as plain numbers (SI units; module docstring).

    ``coherent``: balanced homodyne (True) or intensity (False) readout; ``noisy``: add
    σ·z with z ~ N(0, 1) from ``generator``; ``quantize``: apply the ADC. ``amp`` a: A per
    unit Re y (coherent: 2R·P_ch) or W per unit |y|² (intensity: P_ch); ``responsivity``
    R (A/W, intensity); ``dark_current`` I_d (A, intensity); ``shot``: coherent s (A² per
    unit |y|²), intensity 2q (C); ``bandwidth`` B (Hz, intensity); ``floor`` f (A²: noise
    variance not proportional to the signal); ``tia_gain`` G (V/A); ``lsb`` (V), ``kmin``,
    ``kmax`` (ADC code range); ``back``: coherent reading = V·back, intensity reading =
    (V/G − I_d)/back.
    """

    coherent: bool
    noisy: bool
    quantize: bool
    amp: float
    responsivity: float
    dark_current: float
    shot: float
    bandwidth: float
    floor: float
    tia_gain: float
    lsb: float
    kmin: float
    kmax: float
    back: float
    generator: torch.Generator | None = None

    def params(self) -> tuple[float, ...]:
        return (float(self.coherent), float(self.quantize), self.amp, self.responsivity, self.dark_current,
                self.shot, self.bandwidth, self.floor, self.tia_gain, self.lsb, self.kmin, self.kmax, self.back)


def kernel() -> ctypes.CDLL | None:
    """The compiled library (built on first call), or None (reason in ``unavailable_reason()``)."""
    return _LIB.get()


def unavailable_reason() -> str | None:
    """Why ``kernel()`` is None (None when loaded or not tried yet)."""
    return _LIB.reason()


def usable(*tensors: Tensor) -> bool:
    """True when the kernel is loaded and ``tensors`` are CPU tensors needing no autograd."""
    if any(t.device.type != "cpu" for t in tensors):
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    return kernel() is not None


def matvec_read(mat: Tensor, field: Tensor, scales: Tensor, readout: Readout, step: int) -> tuple[Tensor, int]:
    """Readings out [P, N, br·k] and the clipped count (module docstring).

    ``mat`` [P, br, bc, k, k] block matrices (y = B x), ``field`` [P, N, C] encoded inputs,
    C ≤ bc·k (the kernel zero pads; complex64 or complex128, same dtype), ``scales`` [br, bc] block
    gains (real dtype of the signals). Block rows are processed ``step`` at a time, one
    kernel call and one normal draw ``[P, rows, bc, N, k]`` per chunk (as the torch path).
    ``usable(mat, field)`` must hold."""
    p, br, bc, k = mat.shape[:4]
    n, cols = field.shape[1:]
    if field.shape[0] != p or cols > bc * k or mat.dtype != field.dtype or scales.shape != (br, bc):
        raise ValueError(f"mat/field/scales: shapes {tuple(mat.shape)}, {tuple(field.shape)}, {tuple(scales.shape)} "
                         "or dtypes do not match")
    real = torch.float64 if field.dtype == torch.complex128 else torch.float32
    mat, field = mat.resolve_conj().contiguous(), field.resolve_conj().contiguous()
    scales = scales.to(real).contiguous()
    lib = kernel()
    fn = lib.read_matvec_c128 if real == torch.float64 else lib.read_matvec_c64
    out = torch.empty(p, n, br * k, dtype=real)
    params = (ctypes.c_double * _PARAMS)(*readout.params())
    work = _fused._work(2 * bc * k * _TILE * out.element_size())
    clipped = 0
    for r in range(0, br, step):
        rows = min(step, br - r)
        z = None
        if readout.noisy:
            z = Photodetector.standard_normal((p, rows, bc, n, k), readout.generator, real)
        clipped += fn(p, n, cols, k, br, bc, r, rows, mat.data_ptr(), field.data_ptr(), None if z is None else z.data_ptr(),
                      scales.data_ptr(), out.data_ptr(), params, work)
    return out, clipped


def _load() -> tuple[ctypes.CDLL | None, str | None]:
    lib, why = _fused.compile_and_load(SOURCE, "read_kernel", "fused readout kernel", FLAGS)
    if lib is not None:
        for fn in (lib.read_matvec_c128, lib.read_matvec_c64):
            fn.restype = ctypes.c_int64
            fn.argtypes = [ctypes.c_int64] * 8 + [ctypes.c_void_p] * 5 + [ctypes.POINTER(ctypes.c_double),
                                                                           ctypes.c_void_p]
    return lib, why
