"""Fused CPU kernel for the mesh transfer matrix: one C call sweeps every MZI into U.

Why. Building a 64-mode unitary from its 2016 MZIs with whole-tensor torch ops costs ~60
small ops (each a few µs of dispatch) on top of the arithmetic; one compiled call does the
same arithmetic without the dispatch. This is a fused kernel: the loop over the MZIs of a
column (and over the columns) runs inside C, not in Python.

What it computes. For every setting p of a batch: U_p = diag(e^{iα_p}) · T_{M−1} ··· T_0,
each T_k the n×n identity with the 2×2 (T00, T01; T10, T11) of MZI k on rows/columns
(top_k, top_k + 1), applied in MZI index order (light order, ``Mesh`` docstring). The rows of
U start as the identity; applying MZI k mixes rows top_k and top_k + 1 over the union of
their nonzero column ranges (tracked per row: after s columns a row spans at most 2s + 1
entries), so the work is ∝ n²·depth only where the rows are actually nonzero. The 2×2s of
a setting are first gathered (or, for ideal couplers, computed from e^{iθ}, e^{iφ} with the
``devices.mzi`` closed form) into one table; each row of U is held as [re n | im n] (the
inner loop vectorises), then written interleaved with the output screen applied.
complex128 accumulates in double, complex64 in float: the same operations as the column
sweep of ``Mesh._sweep``. The work buffer (2×2 table, U, row ranges) is kept per thread.

How it is built. The C source below is compiled on first use with the system C compiler
(``$CC``, else ``cc``/``gcc``/``clang``; ``-O3 -shared -fPIC``, plus ``-march=native`` when the
compiler takes it; no torch headers, < 1 s) into ``$PHOTONIC_SIM_CACHE`` (default
``$XDG_CACHE_HOME/photonic_sim`` or ``~/.cache/photonic_sim``), named by a hash of the source,
compiler, flags and CPU (model and feature flags), written atomically (concurrent processes
are safe), and loaded with ctypes (which releases the GIL during the call). If no compiler
is found or the compile fails, ``kernel()`` returns None and the mesh uses its pure-torch
build. ``PHOTONIC_SIM_NO_FUSED=1`` turns the kernel off. CPU only; inputs must not need
autograd (the caller checks). ``compile_and_load(source, name, what)`` is this machinery for
any C source: other fused kernels (``photonic_sim.cores._fused_read``) build through it too,
and the per-thread work buffer (``_work``) is shared by them (calls in one thread never overlap).

Phase kernels. A second small library (``realise_kernel()``) holds two per-setting passes that
replace chains of elementwise torch ops with the same operations in the same order (same
bits, tests/test_chip.py and tests/test_circuits.py): ``realise`` (a chip's phase
realisation: quantization, drive law, sparse crosstalk, bias, and, when the chip has no
drift or thermal settling, its dynamic noise and the controls past the blocks, so the whole
control vector is written in one pass; used by ``Chip._realise``) and ``wrap`` (an
estimator's rows modulo their periods; used by ``training.strategies.estimators.wrap``).
``realise`` computes ``torch.remainder`` (``fmod``) only for values outside [0, 2π), ``wrap``
in closed form for −p < v < 2p (v + p, v − p or v: a loop that vectorises) and through
``fmod`` beyond.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch

Tensor = torch.Tensor

_TEMPLATE = r"""
/* t00..t11: MZI entries [batch][m] (batch strides tstride), or, when t01 is NULL, t00 holds
   the phasors e^{i theta} [batch][m] and e^{i phi} right after them (ideal couplers);
   mesh_build_amp_SUFFIX (lines marked AMP): t10 then holds the real amplitudes 10^(-IL/20)
   [batch][m] (batch stride tstride[2] REALs) every entry of MZI k is multiplied by, as
   torch's t * amp does (complex x real), with no basic-block SLP vectorisation (GCC turned
   the entries' complex products into fused multiply-adds there: not torch's roundings);
   alpha: e^{i alpha} [batch][n] (batch stride astride); out: U [batch][n][n]. Complex values
   are interleaved (re, im). work: 8m + 2n^2 REALs then 2n int64s, kept by the caller. */
ATTR void mesh_buildVARIANT_SUFFIX(int64_t n, int64_t batch, int64_t m, const int64_t *top,
                       const REAL *t00, const REAL *t01, const REAL *t10, const REAL *t11,
                       const int64_t *tstride, const REAL *alpha, int64_t astride, REAL *out, void *work)
{
    REAL *cf = (REAL *)work, *u = cf + 8 * m; /* entries of every MZI; U rows as [re n | im n] */
    int64_t *lo = (int64_t *)(u + 2 * n * n), *hi = lo + n;
    for (int64_t p = 0; p < batch; ++p) {
        const REAL *c00 = t00 + 2 * p * tstride[0];
AMP     const REAL *amp = !t01 && t10 ? t10 + p * tstride[2] : 0;
        for (int64_t k = 0; k < m; ++k) {
            REAL *c = cf + 8 * k;
            if (t01) {
                const REAL *c01 = t01 + 2 * p * tstride[1], *c10 = t10 + 2 * p * tstride[2];
                const REAL *c11 = t11 + 2 * p * tstride[3];
                c[0] = c00[2 * k]; c[1] = c00[2 * k + 1]; c[2] = c01[2 * k]; c[3] = c01[2 * k + 1];
                c[4] = c10[2 * k]; c[5] = c10[2 * k + 1]; c[6] = c11[2 * k]; c[7] = c11[2 * k + 1];
            } else { /* T11 = (1 - e^{i theta})/2, T01 = i (1 + e^{i theta})/2,
                        T00 = -e^{i phi} T11, T10 = e^{i phi} T01 */
                const REAL tr = c00[2 * k], ti = c00[2 * k + 1], fr = c00[2 * (m + k)], fi = c00[2 * (m + k) + 1];
                const REAL dr = (1 - tr) * (REAL)0.5, di = -ti * (REAL)0.5;
                const REAL br = -ti * (REAL)0.5, bi = (1 + tr) * (REAL)0.5;
                c[0] = -(fr * dr - fi * di); c[1] = -(fr * di + fi * dr); c[2] = br; c[3] = bi;
                c[4] = fr * br - fi * bi; c[5] = fr * bi + fi * br; c[6] = dr; c[7] = di;
AMP             if (amp)
AMP                 for (int q = 0; q < 8; ++q) c[q] *= amp[k];
            }
        }
        memset(u, 0, 2 * n * n * sizeof(REAL));
        for (int64_t i = 0; i < n; ++i) { u[2 * n * i + i] = 1; lo[i] = hi[i] = i; }
        for (int64_t k = 0; k < m; ++k) {
            const int64_t a = top[k], b = a + 1;
            const int64_t l = lo[a] < lo[b] ? lo[a] : lo[b], h = hi[a] > hi[b] ? hi[a] : hi[b];
            lo[a] = lo[b] = l;
            hi[a] = hi[b] = h;
            const REAL *c = cf + 8 * k;
            const REAL ar = c[0], ai = c[1], br = c[2], bi = c[3], cr = c[4], ci = c[5], dr = c[6], di = c[7];
            REAL *restrict xr = u + 2 * n * a, *restrict xi = xr + n;
            REAL *restrict yr = u + 2 * n * b, *restrict yi = yr + n;
            for (int64_t j = l; j <= h; ++j) {
                const REAL pr = xr[j], pi = xi[j], qr = yr[j], qi = yi[j];
                xr[j] = ar * pr - ai * pi + br * qr - bi * qi;
                xi[j] = ar * pi + ai * pr + br * qi + bi * qr;
                yr[j] = cr * pr - ci * pi + dr * qr - di * qi;
                yi[j] = cr * pi + ci * pr + dr * qi + di * qr;
            }
        }
        const REAL *e = alpha + 2 * p * astride;
        REAL *restrict o = out + 2 * p * n * n;
        for (int64_t i = 0; i < n; ++i) { /* output screen: row i times e^{i alpha_i}, interleaved */
            const REAL er = e[2 * i], ei = e[2 * i + 1];
            const REAL *restrict xr = u + 2 * n * i, *restrict xi = xr + n;
            for (int64_t j = 0; j < n; ++j) {
                o[2 * (i * n + j)] = er * xr[j] - ei * xi[j];
                o[2 * (i * n + j) + 1] = er * xi[j] + ei * xr[j];
            }
        }
    }
}
"""


def _variant(amp: bool) -> str:
    """The template as mesh_build_* (the AMP lines dropped: the function as it was before them,
    so it compiles to the same code and bits) or as mesh_build_amp_* (with them)."""
    lines = [line[3:] if line.startswith("AMP") else line for line in _TEMPLATE.split("\n")
             if amp or not line.startswith("AMP")]
    attr = '__attribute__((optimize("no-tree-slp-vectorize")))' if amp else ""
    return "\n".join(lines).replace("ATTR ", attr + " " if attr else "").replace("VARIANT", "_amp" if amp else "")


SOURCE = "#include <stdint.h>\n#include <string.h>\n" + "".join(
    _variant(amp).replace("SUFFIX", suffix).replace("REAL", real)
    for amp in (False, True) for suffix, real in (("c128", "double"), ("c64", "float"))
)
FLAGS = ("-O3", "-shared", "-fPIC", "-std=c99")
NATIVE = "-march=native"  # tried first (AVX2/FMA: 0.076 vs 0.135 ms at n = 64 here); dropped if refused

class LazyLibrary:
    """A compiled library loaded on first use, once per process (thread-safe): ``get()`` is
    the library or None, ``reason()`` why it is None. ``reset()`` forgets it (tests)."""

    def __init__(self, load) -> None:
        self._load, self._lock, self._state = load, threading.Lock(), {}

    def get(self) -> ctypes.CDLL | None:
        if "lib" not in self._state:
            with self._lock:
                if "lib" not in self._state:
                    self._state["lib"], self._state["why"] = self._load()
        return self._state["lib"]

    def reason(self) -> str | None:
        return self._state.get("why")

    def reset(self) -> None:
        with self._lock:
            self._state.clear()


_local = threading.local()  # per-thread work buffer of the kernel
_LIB = LazyLibrary(lambda: _load())


def kernel() -> ctypes.CDLL | None:
    """The compiled kernel library (compiled and loaded on first call), or None when it is
    turned off or cannot be built (reason in ``unavailable_reason()``)."""
    return _LIB.get()


def unavailable_reason() -> str | None:
    """Why ``kernel()`` is None (None when the kernel is loaded or not tried yet)."""
    return _LIB.reason()


def build(tops: Tensor, coefs: tuple[Tensor, ...], alpha: Tensor, n: int) -> Tensor:
    """U [batch, n, n] from the MZI entries ``coefs`` (T00, T01, T10, T11), each [batch, M]
    complex (any batch stride, incl. 0), the screen e^{iα} ``alpha`` [batch, n] and the top
    modes ``tops`` (int64 [M], light order). CPU tensors of one complex dtype, no autograd;
    ``kernel()`` must not be None."""
    coefs = tuple(t if t.stride(-1) == 1 else t.contiguous() for t in coefs)
    alpha = alpha if alpha.stride(-1) == 1 else alpha.contiguous()
    return _call(tops, n, alpha.dtype, coefs[0].shape[0], [t.data_ptr() for t in coefs], [t.stride(0) for t in coefs],
                 alpha.data_ptr(), alpha.stride(0))


def build_ideal(tops: Tensor, phasors: Tensor, n: int, amp: Tensor | None = None) -> Tensor:
    """U [batch, n, n] of a mesh with ideal 50:50 couplers from e^{i·phases} ``phasors``
    [batch, 2M + n] (θ, φ, α as in the mesh phase vector): the kernel takes the 2×2 entries
    in closed form (``devices.mzi`` formulas) itself. ``amp``: None (no loss) or the real
    amplitudes 10^(−IL/20) of every MZI [batch or 1, M] (the real dtype of ``phasors``), each
    MZI's entries multiplied by its own, as ``mzi_coefficients_from_phasors`` does with a
    loss. Same conditions as ``build``."""
    phasors = phasors if phasors.stride(-1) == 1 else phasors.contiguous()
    m, stride = tops.numel(), phasors.stride(0)
    ptrs, strides = [phasors.data_ptr(), None, None, None], [stride, 0, 0, 0]
    if amp is not None:
        amp = amp if amp.stride(-1) == 1 else amp.contiguous()
        ptrs[2], strides[2] = amp.data_ptr(), amp.stride(0) if amp.shape[0] > 1 else 0
    return _call(tops, n, phasors.dtype, phasors.shape[0], ptrs, strides,
                 phasors.data_ptr() + 2 * m * phasors.element_size(), stride)


def _call(tops: Tensor, n: int, dtype: torch.dtype, batch: int, ptrs: list, strides: list, alpha_ptr: int,
          alpha_stride: int) -> Tensor:
    lib, m = kernel(), tops.numel()
    out = torch.empty(batch, n, n, dtype=dtype)
    name = "mesh_build_amp" if ptrs[1] is None and ptrs[2] is not None else "mesh_build"  # amplitudes given
    fn = getattr(lib, f"{name}_c128" if dtype == torch.complex128 else f"{name}_c64")
    strides = (ctypes.c_int64 * 4)(*(st if batch > 1 else 0 for st in strides))
    fn(n, batch, m, tops.data_ptr(), *ptrs, strides, alpha_ptr, alpha_stride if batch > 1 else 0, out.data_ptr(),
       _work((8 * m + 2 * n * n) * out.element_size() // 2 + 2 * n * 8))
    return out


def _work(nbytes: int) -> int:
    """Address of this thread's kernel work buffer of at least ``nbytes`` (kept between calls:
    a fresh one costs page faults on every call)."""
    held = getattr(_local, "work", None)
    if held is None or held.numel() < nbytes:
        _local.work = held = torch.empty(max(nbytes, 2 * (0 if held is None else held.numel())), dtype=torch.uint8)
    return held.data_ptr()


def _load() -> tuple[ctypes.CDLL | None, str | None]:
    lib, why = compile_and_load(SOURCE, "mesh_kernel", "fused mesh kernel")
    if lib is not None:
        for fn in (lib.mesh_build_c128, lib.mesh_build_c64, lib.mesh_build_amp_c128, lib.mesh_build_amp_c64):
            fn.restype = None
            fn.argtypes = ([ctypes.c_int64] * 3 + [ctypes.c_void_p] * 5 + [ctypes.POINTER(ctypes.c_int64)]
                           + [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p])
    return lib, why


def compile_and_load(source: str, name: str, what: str,
                     flags: tuple[str, ...] = ()) -> tuple[ctypes.CDLL | None, str | None]:
    """Compile C99 ``source`` with ``FLAGS`` + ``flags`` (once per source, compiler, flags and
    CPU; cached as ``<cache>/<name>_<hash>.so``, written atomically) and load it with ctypes → (library,
    None), or (None, reason) when ``PHOTONIC_SIM_NO_FUSED`` is set, no compiler is found or
    the compile/load fails (``what`` names the kernel in the reason). Shared by every fused
    kernel of the package (module docstring, "How it is built"); the caller sets the
    functions' ctypes signatures."""
    if os.environ.get("PHOTONIC_SIM_NO_FUSED", "") not in ("", "0"):
        return None, "turned off by PHOTONIC_SIM_NO_FUSED"
    compiler = _compiler()
    if compiler is None:
        return None, "no C compiler found ($CC, cc, gcc, clang)"
    # The name pins source, compiler, flags and this CPU (-march=native code must not run elsewhere).
    tag = hashlib.sha256("\0".join((source, compiler, NATIVE, *FLAGS, *flags, _cpu_id())).encode())
    path = _cache_dir() / f"{name}_{tag.hexdigest()[:16]}.so"
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
                src, obj = Path(tmp) / f"{name}.c", Path(tmp) / f"{name}.so"
                src.write_text(source)
                for extra in ([NATIVE], []):
                    done = subprocess.run([compiler, *FLAGS, *flags, *extra, str(src), "-o", str(obj)],
                                          capture_output=True, timeout=120)
                    if done.returncode == 0:
                        break
                else:
                    return None, f"{what}: {compiler} failed: {done.stderr.decode(errors='replace')[-500:]}"
                os.replace(obj, path)  # atomic: a concurrent process sees no file or the whole file
        return ctypes.CDLL(str(path)), None
    except (OSError, subprocess.SubprocessError) as err:
        return None, f"{what} could not be built or loaded: {err}"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_id() -> str:
    """Machine, OS and CPU model/feature flags (Linux: /proc/cpuinfo), for the cache name."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = "".join(line for line in f if line.startswith(("model name", "flags", "Features")))
    except OSError:
        pass
    return "\0".join((platform.machine(), sys.platform, cpu))


def _cache_dir() -> Path:
    if os.environ.get("PHOTONIC_SIM_CACHE"):
        return Path(os.environ["PHOTONIC_SIM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "photonic_sim"


# ---------------------------------------------------------------------- phase realisation
_REALISE_SOURCE = r"""
#include <stdint.h>
#include <math.h>
#include <float.h>
/* Realised heater phases of a chip's blocks (``photonic_sim.chip.Chip._realise`` without the
   dynamic noise), the same operations in the same order as its torch ops, so the same bits:
   t: targets [P][nb][bp] (row stride ts); sigma[bp]: 1 for a Sigma attenuator; g[nb bp]:
   gamma scale; bias[nb bp]; xr, xc, xv: the block-local crosstalk K in COO order (nnz
   entries: Dphi_xr += K phi_xc, applied in entry order as torch's index_add); q: 2 pi,
   pi, mesh levels 2^b, 2 pi / 2^b, pi / (2^b - 1), gamma, V_max. out [P][nb][bp] at row
   stride os; z (or NULL): float32 normals [P][nb][bp], zstd * (double) z added last (the
   dynamic noise); work: 2 bp doubles. */
static double rem_2pi(double x, double p) /* torch.remainder(x, p), p > 0: fmod, then + p if negative (any p) */
{
    if (x >= 0 && x < p) return x; /* fmod(x, p) == x exactly */
    double m = fmod(x, p);
    if (m != 0 && m < 0) m += p;
    return m;
}

/* estimators.wrap: x [R][d] (row stride xs) modulo periods [d] into [0, p) where p is finite
   and > 0 (torch.remainder, then r >= p -> r - p), else x as it is; out [R][d]. */
void wrap_c128(int64_t R, int64_t d, const double *x, int64_t xs, const double *periods, double *out)
{
    /* Branch-free for -p < v < 2p, where torch.remainder(v, p) is v + p (v < 0), v - p (v >= p:
       exact, Sterbenz) or v; the rare other values (and NaN) are redone through fmod after the
       row. The loop over a row vectorises. */
    for (int64_t i = 0; i < R; ++i) {
        const double *xv = x + i * xs;
        double *o = out + i * d;
        int slow = 0;
        for (int64_t j = 0; j < d; ++j) {
            const double v = xv[j], p = periods[j];
            const int ok = (p > 0) & (p <= DBL_MAX); /* finite and > 0 (NaN: no) */
            double r = v < 0 ? v + p : (v >= p ? v - p : v);
            r = r >= p ? r - p : r;
            o[j] = ok ? r : v;
            slow |= ok & !((v > -p) & (v < 2 * p));
        }
        if (slow)
            for (int64_t j = 0; j < d; ++j) {
                const double v = xv[j], p = periods[j];
                if (!(isfinite(p) && p > 0) || ((v > -p) & (v < 2 * p))) continue;
                const double r = rem_2pi(v, p);
                o[j] = r >= p ? r - p : r;
            }
    }
}

void realise_c128(int64_t P, int64_t nb, int64_t bp, const double *t, int64_t ts, const uint8_t *sigma,
                  const double *g, const double *bias, int64_t nnz, const int64_t *xr, const int64_t *xc,
                  const double *xv, const double *q, double *out, double *work, int64_t os, const float *z,
                  double zstd)
{
    const double two_pi = q[0], pi = q[1], levels = q[2], step_u = q[3], step_s = q[4], gamma = q[5], vmax = q[6];
    double *h = work, *smask = work + bp; /* smask: 1 on a Sigma attenuator (a double: the loop vectorises) */
    for (int64_t j = 0; j < bp; ++j) smask[j] = sigma[j] ? 1 : 0;
    for (int64_t p = 0; p < P; ++p)
        for (int64_t b = 0; b < nb; ++b) {
            const double *tb = t + p * ts + b * bp;
            const double *gb = g + b * bp, *bb = bias + b * bp;
            double *o = out + p * os + b * bp;
            int slow = 0; /* any target outside [0, 2 pi): those go through rem_2pi (fmod) */
            for (int64_t j = 0; j < bp; ++j) {
                const double x = tb[j];
                h[j] = x;
                slow |= !((x >= 0) & (x < two_pi)); /* no &&: no branch */
            }
            if (slow)
                for (int64_t j = 0; j < bp; ++j) h[j] = rem_2pi(h[j], two_pi);
            for (int64_t j = 0; j < bp; ++j) { /* both quantizer rules, then a select: no branch, vectorises */
                const double r = h[j];
                const double f = r > pi ? two_pi - r : r;
                const double qs = rint(f / step_s) * step_s;
                double k = rint(r / step_u);
                k = k >= levels ? k - levels : k;
                const double quant = smask[j] != 0 ? qs : k * step_u;
                double v = sqrt((quant < 0 ? 0 : quant) / gamma); /* clamp_min(0) / gamma, sqrt */
                v = v > vmax ? vmax : v;                            /* clamp_max(V_max) */
                h[j] = gamma * gb[j] * (v * v);
            }
            for (int64_t j = 0; j < bp; ++j) o[j] = h[j];
            for (int64_t e = 0; e < nnz; ++e) o[xr[e]] += h[xc[e]] * xv[e];
            for (int64_t j = 0; j < bp; ++j) o[j] = o[j] + bb[j];
            if (z) { /* + the dynamic noise: std * z with z widened to double (torch's ops), added */
                const float *zb = z + (p * nb + b) * bp;
                for (int64_t j = 0; j < bp; ++j) o[j] = o[j] + zstd * (double)zb[j];
            }
        }
}
"""
_REALISE_LIB = LazyLibrary(lambda: _load_realise())


def realise_kernel() -> ctypes.CDLL | None:
    """The phase-realisation library (``realise``), or None when it cannot be built."""
    return _REALISE_LIB.get()


def realise(target: Tensor, sigma: Tensor, gamma_scale: Tensor, bias: Tensor, xtalk: Tensor,
            consts: tuple[float, ...], noise: Tensor | None = None, std: float = 0.0,
            tail: Tensor | None = None) -> Tensor:
    """Heater phases with crosstalk and bias [P, nb·bp] (float64) of block targets ``target``
    [P, nb·bp] (rows may be strided), as ``Chip._realise``'s torch ops compute them, bit for bit
    (tests/test_chip.py): ``PhaseShifter.quantize_mixed`` with the bool pattern ``sigma`` [bp]
    of one block, ``voltage``, ``phase`` with ``gamma_scale`` [nb·bp], ``apply_crosstalk``
    with the sparse COO K [bp, bp] ``xtalk``, + ``bias`` [nb·bp]. ``consts``: 2π, π, 2^b,
    2π/2^b, π/(2^b − 1), γ, V_max. ``noise`` (float32 [P, nb·bp] or None): + ``std · noise``
    as torch computes ``out + std * noise.to(float64)`` (in float64); ``tail``
    ([P, T] float64 or None): appended as the last T columns (``torch.cat``), so the result is
    the chip's whole control vector in one allocation. CPU float64, no autograd;
    ``realise_kernel()`` not None."""
    lib = realise_kernel()
    p, span = target.shape
    bp = sigma.numel()
    if target.stride(1) != 1:
        target = target.contiguous()
    k = xtalk.coalesce()
    rows, cols = (i.contiguous() for i in k.indices())
    vals = k.values().to(torch.float64).contiguous()
    sig = sigma.to(torch.uint8).contiguous()
    width = span + (0 if tail is None else tail.shape[1])
    out = torch.empty(p, width, dtype=torch.float64)
    if tail is not None and tail.shape[1]:
        out[:, span:] = tail
    z = None if noise is None else noise.contiguous()
    q = (ctypes.c_double * 7)(*consts)
    lib.realise_c128(p, span // bp, bp, target.data_ptr(), target.stride(0), sig.data_ptr(),
                     gamma_scale.contiguous().data_ptr(), bias.contiguous().data_ptr(), vals.numel(),
                     rows.data_ptr(), cols.data_ptr(), vals.data_ptr(), q, out.data_ptr(), _work(16 * bp),
                     width, None if z is None else z.data_ptr(), float(std))
    return out


def wrap(x: Tensor, periods: Tensor) -> Tensor:
    """``photonic_sim.training.strategies.estimators.wrap`` of a float64 CPU ``x`` [R, d]
    (rows may be strided) with float64 ``periods`` [d], in one C pass, bit for bit
    (tests/test_circuits.py). ``realise_kernel()`` must not be None."""
    if x.stride(1) != 1:
        x = x.contiguous()
    periods = periods.contiguous()
    out = torch.empty(x.shape, dtype=torch.float64)
    realise_kernel().wrap_c128(x.shape[0], x.shape[1], x.data_ptr(), x.stride(0), periods.data_ptr(), out.data_ptr())
    return out


def _load_realise() -> tuple[ctypes.CDLL | None, str | None]:
    lib, why = compile_and_load(_REALISE_SOURCE, "realise_kernel", "phase realisation kernel",
                                ("-O2", "-fno-math-errno", "-fno-trapping-math", "-fvect-cost-model=dynamic"))
    if lib is not None:
        lib.realise_c128.restype = None
        lib.realise_c128.argtypes = ([ctypes.c_int64] * 3 + [ctypes.c_void_p, ctypes.c_int64] + [ctypes.c_void_p] * 3
                                     + [ctypes.c_int64] + [ctypes.c_void_p] * 3 + [ctypes.POINTER(ctypes.c_double)]
                                     + [ctypes.c_void_p] * 2 + [ctypes.c_int64, ctypes.c_void_p, ctypes.c_double])
        lib.wrap_c128.restype = None
        lib.wrap_c128.argtypes = [ctypes.c_int64] * 2 + [ctypes.c_void_p, ctypes.c_int64] + [ctypes.c_void_p] * 2
    return lib, why
