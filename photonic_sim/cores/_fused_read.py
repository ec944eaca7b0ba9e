"""Fused CPU kernel: blocked matrix–vector products with the O/E readout of every block output.

Why. ``PhotonicNetwork._matvec`` multiplies every k×k block matrix with every input vector
and hands each block output field to the readout chain's ``detect`` (noise, TIA, ADC), then scales
and sums the block columns. In torch that is a complex bmm plus ~15 elementwise passes
over a [P, rows, bc, N, k] tensor; one C call per matrix does the same arithmetic in cache,
with no intermediate tensors.

What it computes. For every setting p, block row r and vector n:

    out[p, n, r·k + j] = Σ_c s[r, c] · read(y_j),   y = B[p, r, c] · x[p, n, c-th k entries]

(c in order, partial sums rounded as torch's ``(readings * scales).sum(2)``), where ``read``
is the chain described by a :class:`Readout` (plain numbers from the chip's readout chain,
``photonic_sim.devices.readout.ReadoutChain.kernel_readout``; SI
units; y dimensionless, the normalized amplitude):

* coherent (balanced homodyne, ``Photodetector.homodyne_read``): I = a·Re y (A);
  noise σ = √(s·|y|² + f), I += σ·z; V = G·I; bipolar ADC; reading = V·back;
* intensity (``Photodetector.read``): I = R·(a·|y|²) + I_d; noise σ = √(q2·|I|·B + f),
  I += σ·z; V = G·I; unipolar ADC; reading = (V/G − I_d)/back;
* ADC (``Photodetector.adc``): code = round-half-even(V/lsb), clamped to [kmin, kmax]
  (a changed code counts as clipped), V = code·lsb.

The operations, their order and their constants (rounded to the signal precision first, as
torch does with Python scalars) follow the torch path, except that the divisions by lsb, G
and back are multiplications by their reciprocals (~1 ulp). So without noise the readings
equal it to float rounding: the matvec's summation order also differs from the BLAS bmm
(~1 ulp in y), which can move a value across an ADC code boundary (one LSB, rare). The
standard normals z are NOT torch's: drawing them with torch cost as much as the rest of the
kernel and runs on one thread, so the kernel draws its own from a counter-based generator
(Philox4x32-10, Box–Muller; ``normals``), keyed by ONE 62-bit draw from the chain's generator
per call (``draw_key``) and one stream per (setting, block, tile of 16 vectors). So the noisy
readings have the torch path's distribution but not its realisation; a seed still reproduces
them bit for bit, whatever the thread count — the contract tested in tests/test_fused_read.py.
Noise off (``noisy=False``) and no ADC (``quantize=False``) give the exact readout (the
chip's ``exact_readout``/``ideal``: a = G = back = 1, R = 1, I_d = 0).

Loop order. For each setting p and tile of 16 vectors: the tile's real inputs, read in place
through their strides (no copy of a transposed TT state or of an input expanded over the
settings), stored transposed, [column][vector], then their E/O step (block floating point,
DAC) vectorised over the vectors, as the matvec is; then for each block row r, for
c, the k×k matvec (complex block, real inputs) of block (r, c), four output rows at a time
for one lane group of the tile (one native vector register: 32 bytes with AVX2, 64 with
AVX-512) at a time, with
their sums in registers (GCC vector extensions: storing the partial sums to memory after
every term made the matvec latency-bound, ~5× slower; GCC did so for vectors wider than the
registers, hence the lane groups; a noise-free coherent readout
reads Re y only, so its matvec skips Im y), then the readout of those
k·16 outputs, laid out [row][vector] (their normals are z[j·16 + t]; a tile's padding
vectors are computed and dropped), accumulated into the output; k = 4, 8, 16 are compiled
with a constant k. The exact readout (coherent, no noise, no ADC) at k = 8 without block
floating point or DAC, in float64 where 8 doubles are one register (AVX-512), runs by
columns instead: for 8 vectors of the tile at a time, y = Σ_i Re b[:, i]·x_i with one
register per vector (Re b transposed once per setting into the work buffer), the inputs read
in place (no transposed copy), the block columns summed in registers and each vector's 8
readings stored as one vector where the rows are contiguous; the same products and sums in
the same order as the row path, so the same bits (tests/test_fused_read.py compares both,
``_BY_COLUMNS``), in about two thirds of its time on the HJB-20 calls. The direct paths compute only the
groups of four rows that reach ``rows``; gains of 1 skip their products (x·1 = x). The (setting, tile) pairs are shared out among ``torch.get_num_threads()``
POSIX threads; each output is computed by one thread in the same order, so readings do not
depend on the thread count.

How it is built. ``photonic_sim.circuits._fused.compile_and_load`` (compile on first use,
cache, ctypes, GIL released during the call; ``PHOTONIC_SIM_NO_FUSED=1`` turns it off),
float (complex64) and double (complex128) variants, no torch headers. ``kernel()`` is None
when it cannot be built; callers then keep their torch path. CPU only; no autograd (the
caller checks: see ``usable``).
"""

from __future__ import annotations

import ctypes

import torch

from photonic_sim.circuits import _fused
from photonic_sim.devices.readout import Readout  # the chain as plain numbers; re-exported here

Tensor = torch.Tensor

_TEMPLATE = r"""
/* A blocked complex matvec with readout, k = KDIM. dims: P, N1, N2, cols, k, br, bc, rows, p0 (the
   index of setting 0 among the settings of one logical call, for the noise streams).
   b: block matrices [P][br][bc][k][k] (y_j = sum_i b[j][i] x_i), complex values interleaved
   (re, im); v: real inputs [P][N1][N2][cols] at element strides vs (vector n = n1 N2 + n2),
   cols <= bc k (the rest zero padding), encoded here (q[13], q[14]: block floating point
   power, DAC half levels); seed: Philox key of the detector noise (drawn when q[15] != 0);
   s: block gains [br][bc]; out: readings [P][N1][N2][rows] at element strides os (rows <= br k;
   the rest dropped). q (doubles): coherent?, quantize?, a, R, I_d, s|q2, B, f, G, lsb, kmin,
   kmax, back, power, dac, noisy?, by columns allowed?. work: bc k TILE + br bc k k REALs. Runs the items [i0, i1) of the
   P ceil(N / TILE) (setting, tile of vectors) pairs. Returns the number of clipped ADC
   samples (real vectors only). */
static int64_t read_KNAME_SUFFIX(const int64_t *dims, const REAL *b, const REAL *v, const int64_t *vs,
                                 uint64_t seed, const REAL *s, REAL *out, const int64_t *os, const double *q,
                                 void *work, int64_t i0, int64_t i1)
{
    const int64_t N1 = dims[1], N2 = dims[2], N = N1 * N2, cols = dims[3], k = dims[4], br = dims[5], bc = dims[6];
    const int64_t rows = dims[7], p0 = dims[8];
    (void)k; /* KDIM is k only in the generic variant */
    const int coherent = q[0] != 0, quantize = q[1] != 0, power = (int)q[13], noisy = q[15] != 0;
    const REAL a = (REAL)q[2], resp = (REAL)q[3], dark = (REAL)q[4], shot = (REAL)q[5], bw = (REAL)q[6];
    const REAL floor_ = (REAL)q[7], g = (REAL)q[8], lsb = (REAL)q[9], kmin = (REAL)q[10], kmax = (REAL)q[11];
    const REAL back = (REAL)q[12], dac = (REAL)q[14];
    const int need_im = !coherent || noisy; /* |y|^2 is read (intensity, or the shot noise) */
    /* A noise- and ADC-free coherent readout (the exact readout) reads a g Re y: its matvec adds
       each output straight into acc from registers, ((y a) g) w as the readout loops below round
       it, so yr and rd are never stored and reloaded (the same bits) */
    const int direct = coherent && !noisy && !quantize && KDIM % 4 == 0;
    const int unit = a == 1 && g == 1; /* x * 1 == x: the direct path skips those two products (same bits) */
    const int columns = COLUMNS_OK && direct && !power && dac == 0 && q[16] != 0; /* the direct path by columns (below) */
    REAL *restrict xs = (REAL *)work; /* a tile of encoded inputs as [c][i][TILE] */
    REAL *restrict bt = xs + bc * KDIM * TILE; /* COLUMNS: Re b of the setting's blocks as [r][c][i][j] */
    int64_t bt_p = -1; /* the setting bt holds */
#define ACCUM(jj, hh, v) do { VEC t_ = unit ? (v) : ((v) * a) * g; t_ = t_ * wd; VEC o_; \
        memcpy(&o_, acc + (jj) * TILE + (hh), sizeof o_); o_ += t_; memcpy(acc + (jj) * TILE + (hh), &o_, sizeof o_); } while (0)
    const int64_t M = TILE * KDIM; /* outputs of one block for a tile, as [j][t] */
    REAL yr[TILE * KDIM], yi[TILE * KDIM], rd[TILE * KDIM], acc[TILE * KDIM], ampt[TILE];
    float zc[TILE * KDIM + 64]; /* this block's normals */
    const REAL inv_lsb = 1 / lsb, inv_g = 1 / g, inv_back = 1 / back;
    int64_t clipped = 0;
    const int64_t ntiles = (N + TILE - 1) / TILE;
    for (int64_t item = i0; item < i1; ++item) { /* items (p, tile) = p ntiles + tile, this thread's share */
        const int64_t p = item / ntiles, n0 = item % ntiles * TILE;
        const int64_t nt = N - n0 < TILE ? N - n0 : TILE;
        /* E/O of the tile's vectors (padding vectors t >= nt repeat vector n0, their outputs are
           dropped): xs[ci][t] = v / amp, amp = max |v| (block floating point; NaN propagates, at
           least the smallest normal), then the DAC; rows ci >= cols carry no light */
        int64_t voff[TILE], ooff[TILE]; /* element offsets of the tile's vectors in v and out, */
        {                               /* counted up (no integer division per vector) */
            int64_t n1 = n0 / N2, n2 = n0 % N2;
            for (int64_t t = 0; t < nt; ++t) {
                voff[t] = p * vs[0] + n1 * vs[1] + n2 * vs[2];
                ooff[t] = p * os[0] + n1 * os[1] + n2 * os[2];
                if (++n2 == N2) { n2 = 0; ++n1; }
            }
            for (int64_t t = nt; t < TILE; ++t) { voff[t] = voff[0]; ooff[t] = ooff[0]; }
        }
COLUMNS
        for (int64_t t = 0; t < TILE; ++t) {
            const REAL *xv = v + voff[t];
            for (int64_t ci = 0; ci < cols; ++ci) xs[ci * TILE + t] = xv[ci * vs[3]];
        }
        for (int64_t e = cols * TILE; e < bc * KDIM * TILE; ++e) xs[e] = 0;
        for (int64_t t = 0; t < TILE; ++t) ampt[t] = power ? 0 : 1;
        if (power) { /* the running max over columns, vectorised over the tile's vectors */
            for (int64_t ci = 0; ci < cols; ++ci)
                for (int64_t t = 0; t < TILE; ++t) {
                    const REAL x = xs[ci * TILE + t], e = x < 0 ? -x : x;
                    ampt[t] = (e > ampt[t] || e != e) ? e : ampt[t];
                }
            for (int64_t t = 0; t < TILE; ++t) ampt[t] = ampt[t] < TINY ? TINY : ampt[t];
            for (int64_t ci = 0; ci < cols; ++ci)
                for (int64_t t = 0; t < TILE; ++t) xs[ci * TILE + t] = xs[ci * TILE + t] / ampt[t];
        }
        if (dac != 0)
            for (int64_t e = 0; e < cols * TILE; ++e) { /* clamp to [-1, 1] (NaN stays), one select each: vectorises */
                REAL u = xs[e];
                u = u < -1 ? -1 : u;
                u = u > 1 ? 1 : u;
                xs[e] = RINT(u * dac) / dac;
            }
        for (int64_t r = 0; r < br; ++r) {
            for (int64_t e = 0; e < M; ++e) acc[e] = 0;
            for (int64_t c = 0; c < bc; ++c) {
                const REAL *bp = b + 2 * ((p * br + r) * bc + c) * KDIM * KDIM;
                const REAL wd = back * s[r * bc + c]; /* the direct path's w (below) */
                int64_t j = 0;
                /* The direct path computes only the groups of four rows that reach `rows` (the rest
                   are dropped; no noise or ADC clip count depends on them there) */
                const int64_t jend = direct && rows - r * KDIM < KDIM ? (rows - r * KDIM + 3) / 4 * 4 : KDIM;
                /* Each VEC holds LANES of the tile's TILE vectors (one 64-byte register): GCC keeps
                   native-width vector sums in registers, but spilled 128-byte ones (16 doubles) to
                   the stack after every term. h: the first vector of the lane group. */
                /* A noise-free coherent readout reads Re y only: skip Im y (half the work). Two lane
                   groups at once, so eight independent sums hide the FMA latency (with four, one HJB
                   read of 65 settings x 925 inputs took 1.22x longer: 164 vs 134 ms of CPU, AVX2);
                   a tile narrower than two registers (float with AVX-512) takes one group. */
                if (!need_im && 2 * LANES <= TILE)
                    for (; j + 4 <= jend; j += 4)
                        for (int64_t h = 0; h < TILE; h += 2 * LANES) {
                            VEC re0 = {0}, re1 = {0}, re2 = {0}, re3 = {0}, rf0 = {0}, rf1 = {0}, rf2 = {0}, rf3 = {0};
                            for (int64_t i = 0; i < KDIM; ++i) {
                                const REAL *bj = bp + 2 * (j * KDIM + i);
                                const REAL b0 = bj[0], b1 = bj[2 * KDIM], b2 = bj[4 * KDIM], b3 = bj[6 * KDIM];
                                VEC x, u;
                                memcpy(&x, xs + (c * KDIM + i) * TILE + h, sizeof x);
                                memcpy(&u, xs + (c * KDIM + i) * TILE + h + LANES, sizeof u);
                                re0 += b0 * x; re1 += b1 * x; re2 += b2 * x; re3 += b3 * x;
                                rf0 += b0 * u; rf1 += b1 * u; rf2 += b2 * u; rf3 += b3 * u;
                            }
                            if (direct) {
                                ACCUM(j, h, re0); ACCUM(j + 1, h, re1); ACCUM(j + 2, h, re2); ACCUM(j + 3, h, re3);
                                ACCUM(j, h + LANES, rf0); ACCUM(j + 1, h + LANES, rf1);
                                ACCUM(j + 2, h + LANES, rf2); ACCUM(j + 3, h + LANES, rf3);
                                continue;
                            }
                            memcpy(yr + j * TILE + h, &re0, sizeof re0); memcpy(yr + (j + 1) * TILE + h, &re1, sizeof re1);
                            memcpy(yr + (j + 2) * TILE + h, &re2, sizeof re2); memcpy(yr + (j + 3) * TILE + h, &re3, sizeof re3);
                            memcpy(yr + j * TILE + h + LANES, &rf0, sizeof rf0);
                            memcpy(yr + (j + 1) * TILE + h + LANES, &rf1, sizeof rf1);
                            memcpy(yr + (j + 2) * TILE + h + LANES, &rf2, sizeof rf2);
                            memcpy(yr + (j + 3) * TILE + h + LANES, &rf3, sizeof rf3);
                        }
                if (!need_im)
                    for (; j + 4 <= jend; j += 4)
                        for (int64_t h = 0; h < TILE; h += LANES) {
                            VEC re0 = {0}, re1 = {0}, re2 = {0}, re3 = {0};
                            for (int64_t i = 0; i < KDIM; ++i) {
                                const REAL *bj = bp + 2 * (j * KDIM + i);
                                VEC x;
                                memcpy(&x, xs + (c * KDIM + i) * TILE + h, sizeof x);
                                re0 += bj[0] * x; re1 += bj[2 * KDIM] * x; re2 += bj[4 * KDIM] * x; re3 += bj[6 * KDIM] * x;
                            }
                            if (direct) {
                                ACCUM(j, h, re0); ACCUM(j + 1, h, re1); ACCUM(j + 2, h, re2); ACCUM(j + 3, h, re3);
                                continue;
                            }
                            memcpy(yr + j * TILE + h, &re0, sizeof re0); memcpy(yr + (j + 1) * TILE + h, &re1, sizeof re1);
                            memcpy(yr + (j + 2) * TILE + h, &re2, sizeof re2); memcpy(yr + (j + 3) * TILE + h, &re3, sizeof re3);
                        }
                if (direct) continue; /* every output it keeps is in acc */
                for (; j + 4 <= KDIM; j += 4) /* y_j .. y_j+3 of every vector of the tile, in registers */
                    for (int64_t h = 0; h < TILE; h += LANES) {
                        VEC re0 = {0}, re1 = {0}, re2 = {0}, re3 = {0}, im0 = {0}, im1 = {0}, im2 = {0}, im3 = {0};
                        for (int64_t i = 0; i < KDIM; ++i) { /* real inputs: y += b x */
                            const REAL *bj = bp + 2 * (j * KDIM + i); /* b[j][i]; rows j+1.. at 2k apart */
                            VEC x;
                            memcpy(&x, xs + (c * KDIM + i) * TILE + h, sizeof x);
                            re0 += bj[0] * x; im0 += bj[1] * x;
                            re1 += bj[2 * KDIM] * x; im1 += bj[2 * KDIM + 1] * x;
                            re2 += bj[4 * KDIM] * x; im2 += bj[4 * KDIM + 1] * x;
                            re3 += bj[6 * KDIM] * x; im3 += bj[6 * KDIM + 1] * x;
                        }
                        memcpy(yr + j * TILE + h, &re0, sizeof re0); memcpy(yi + j * TILE + h, &im0, sizeof im0);
                        memcpy(yr + (j + 1) * TILE + h, &re1, sizeof re1); memcpy(yi + (j + 1) * TILE + h, &im1, sizeof im1);
                        memcpy(yr + (j + 2) * TILE + h, &re2, sizeof re2); memcpy(yi + (j + 2) * TILE + h, &im2, sizeof im2);
                        memcpy(yr + (j + 3) * TILE + h, &re3, sizeof re3); memcpy(yi + (j + 3) * TILE + h, &im3, sizeof im3);
                    }
                for (; j < KDIM; ++j) /* k not a multiple of 4: the last rows one at a time */
                    for (int64_t h = 0; h < TILE; h += LANES) {
                        VEC re0 = {0}, im0 = {0};
                        for (int64_t i = 0; i < KDIM; ++i) {
                            VEC x;
                            memcpy(&x, xs + (c * KDIM + i) * TILE + h, sizeof x);
                            re0 += bp[2 * (j * KDIM + i)] * x; im0 += bp[2 * (j * KDIM + i) + 1] * x;
                        }
                        memcpy(yr + j * TILE + h, &re0, sizeof re0); memcpy(yi + j * TILE + h, &im0, sizeof im0);
                    }
                if (noisy) /* one Philox stream per (setting, block, tile of vectors) */
                    normals(seed, ((uint64_t)((p0 + p) * br + r) * bc + c) * ntiles + n0 / TILE, M, zc);
                if (coherent && noisy)
                    for (int64_t e = 0; e < M; ++e) {
                        const REAL sd = SQRT((yr[e] * yr[e] + yi[e] * yi[e]) * shot + floor_);
                        rd[e] = (yr[e] * a + sd * zc[e]) * g;
                    }
                else if (coherent)
                    for (int64_t e = 0; e < M; ++e) rd[e] = yr[e] * a * g;
                else if (noisy)
                    for (int64_t e = 0; e < M; ++e) {
                        const REAL cur = resp * (a * (yr[e] * yr[e] + yi[e] * yi[e])) + dark;
                        rd[e] = g * (cur + SQRT(shot * (cur < 0 ? -cur : cur) * bw + floor_) * zc[e]);
                    }
                else
                    for (int64_t e = 0; e < M; ++e) rd[e] = g * (resp * (a * (yr[e] * yr[e] + yi[e] * yi[e])) + dark);
                if (quantize) {
                    int64_t clip = 0;
                    for (int64_t e = 0; e < M; ++e) {
                        const REAL code = RINT(rd[e] * inv_lsb);
                        const REAL kept = code < kmin ? kmin : (code > kmax ? kmax : code);
                        clip += (kept != code) & ((e & (TILE - 1)) < nt); /* padding vectors not counted */
                        rd[e] = kept * lsb;
                    }
                    clipped += clip;
                }
                const REAL sc = s[r * bc + c];
                if (coherent) {
                    const REAL w = back * sc;
                    for (int64_t e = 0; e < M; ++e) acc[e] += rd[e] * w;
                } else {
                    const REAL w = inv_back * sc;
                    for (int64_t e = 0; e < M; ++e) acc[e] += (rd[e] * inv_g - dark) * w;
                }
            }
            /* undo the block floating point (ampt is 1 without it: x * 1 == x); rows >= `rows` dropped */
            const int64_t jn = rows - r * KDIM < KDIM ? rows - r * KDIM : KDIM;
            for (int64_t t = 0; t < nt; ++t) {
                REAL *o = out + ooff[t] + r * KDIM * os[3];
                const REAL sc = power == 2 ? ampt[t] * ampt[t] : ampt[t];
                for (int64_t j = 0; j < jn; ++j) o[j * os[3]] = acc[j * TILE + t] * sc;
            }
        }
    }
    return clipped;
#undef ACCUM
}
"""
_COLUMNS = r'''
        /* The direct path by columns (k = 8, an 8-lane vector of the signal's type is one native
           register, no block floating point, no DAC): y = sum_i Re b[:, i] x_i, one vector per input
           vector, the same products and sums in the same order as the row path (so the same
           bits), but the inputs are read in place (no transposed copy of the tile) and each input
           vector's k readings are one vector store when the rows are contiguous. */
        if (columns) {
            if (p != bt_p) { /* Re b transposed, [r][c][i][j], once per setting */
                const REAL *bp = b + 2 * p * br * bc * 64;
                for (int64_t e = 0; e < br * bc; ++e)
                    for (int64_t i = 0; i < 8; ++i)
                        for (int64_t j = 0; j < 8; ++j) bt[(e * 8 + i) * 8 + j] = bp[2 * (e * 64 + j * 8 + i)];
                bt_p = p;
            }
            for (int64_t r = 0; r < br; ++r) {
                const int64_t jn = rows - r * 8 < 8 ? rows - r * 8 : 8;
                for (int64_t t0 = 0; t0 < nt; t0 += 8) {
                    COL acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0}, acc4 = {0}, acc5 = {0}, acc6 = {0}, acc7 = {0};
                    const REAL *v0 = v + voff[t0], *v1 = v + voff[t0 + 1], *v2 = v + voff[t0 + 2], *v3 = v + voff[t0 + 3];
                    const REAL *v4 = v + voff[t0 + 4], *v5 = v + voff[t0 + 5], *v6 = v + voff[t0 + 6], *v7 = v + voff[t0 + 7];
                    for (int64_t c = 0; c < bc; ++c) {
                        COL y0 = {0}, y1 = {0}, y2 = {0}, y3 = {0}, y4 = {0}, y5 = {0}, y6 = {0}, y7 = {0};
                        const REAL *bq = bt + (r * bc + c) * 64;
                        for (int64_t i = 0; i < 8; ++i) {
                            const int64_t ci = c * 8 + i;
                            COL bcol;
                            memcpy(&bcol, bq + i * 8, sizeof bcol);
                            if (ci < cols) {
                                const int64_t o = ci * vs[3];
                                y0 += bcol * v0[o]; y1 += bcol * v1[o]; y2 += bcol * v2[o]; y3 += bcol * v3[o];
                                y4 += bcol * v4[o]; y5 += bcol * v5[o]; y6 += bcol * v6[o]; y7 += bcol * v7[o];
                            } else { /* padding modes: x = 0, added as the row path adds it */
                                const COL zb = bcol * (REAL)0;
                                y0 += zb; y1 += zb; y2 += zb; y3 += zb; y4 += zb; y5 += zb; y6 += zb; y7 += zb;
                            }
                        }
                        const REAL wd = back * s[r * bc + c];
                        if (!unit) {
                            y0 = (y0 * a) * g; y1 = (y1 * a) * g; y2 = (y2 * a) * g; y3 = (y3 * a) * g;
                            y4 = (y4 * a) * g; y5 = (y5 * a) * g; y6 = (y6 * a) * g; y7 = (y7 * a) * g;
                        }
                        acc0 += y0 * wd; acc1 += y1 * wd; acc2 += y2 * wd; acc3 += y3 * wd;
                        acc4 += y4 * wd; acc5 += y5 * wd; acc6 += y6 * wd; acc7 += y7 * wd;
                    }
                    COL res[8] = {acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7};
                    const int64_t tn = nt - t0 < 8 ? nt - t0 : 8;
                    for (int64_t t = 0; t < tn; ++t) {
                        REAL *o = out + ooff[t0 + t] + r * 8 * os[3];
                        if (jn == 8 && os[3] == 1) memcpy(o, res + t, sizeof res[t]);
                        else for (int64_t j = 0; j < jn; ++j) o[j * os[3]] = res[t][j];
                    }
                }
            }
            continue;
        }
'''
_ENTRY = r"""
typedef int64_t (*read_fn_SUFFIX)(const int64_t *, const REAL *, const REAL *, const int64_t *, uint64_t,
                                  const REAL *, REAL *, const int64_t *, const double *, void *, int64_t, int64_t);
typedef struct {
    read_fn_SUFFIX fn;
    const int64_t *dims, *vs, *os;
    int64_t i0, i1, clipped;
    const REAL *b, *v, *s;
    uint64_t seed;
    REAL *out;
    const double *q;
    void *work;
} job_SUFFIX;

static void *run_job_SUFFIX(void *arg)
{
    job_SUFFIX *j = (job_SUFFIX *)arg;
    j->clipped = j->fn(j->dims, j->b, j->v, j->vs, j->seed, j->s, j->out, j->os, j->q, j->work, j->i0, j->i1);
    return 0;
}

/* k = 4, 8, 16 compiled with a constant k (unrolled, vectorised); other k generic. The
   (setting, tile) items are split into `threads` contiguous shares (at most MAX_THREADS), one
   POSIX thread each (the caller's thread runs the first), each with its own `work_bytes` of
   work; every output element is written by one thread, so results do not depend on threads. */
int64_t read_matvec_SUFFIX(const int64_t *dims, const REAL *b, const REAL *v, const int64_t *vs, uint64_t seed,
                           const REAL *s, REAL *out, const int64_t *os, const double *q, void *work,
                           int64_t work_bytes, int64_t threads)
{
    const int64_t k = dims[4];
    const read_fn_SUFFIX fn = k == 4 ? read_k4_SUFFIX : k == 8 ? read_k8_SUFFIX : k == 16 ? read_k16_SUFFIX
                                                                                         : read_kn_SUFFIX;
    const int64_t items = dims[0] * ((dims[1] * dims[2] + TILE - 1) / TILE);
    if (threads > items) threads = items;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads < 1) threads = 1;
    job_SUFFIX jobs[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS];
    for (int64_t t = 0; t < threads; ++t) {
        job_SUFFIX j = {fn, dims, vs, os, items * t / threads, items * (t + 1) / threads, 0,
                        b, v, s, seed, out, q, (char *)work + t * work_bytes};
        jobs[t] = j;
        started[t] = t > 0 && pthread_create(&ids[t], 0, run_job_SUFFIX, &jobs[t]) == 0;
    }
    int64_t clipped = 0;
    for (int64_t t = 0; t < threads; ++t) { /* a share whose thread could not start runs here */
        if (started[t]) pthread_join(ids[t], 0);
        else run_job_SUFFIX(&jobs[t]);
        clipped += jobs[t].clipped;
    }
    return clipped;
}
"""
_TILE = 16  # vectors per tile (the matvec vectorises over them)
_VARIANTS = (("k4", "4"), ("k8", "8"), ("k16", "16"), ("kn", "k"))
_RNG = r"""
/* Standard normals from Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
   1, 2, 3", SC 2011), counter-based: normals(key, stream, n, out) depends only on its
   arguments, so any thread may draw any stream. Counter (group, 0, stream lo, stream hi),
   key (key lo, key hi); each counter gives 4 uint32, i.e. two Box-Muller pairs from 24-bit
   uniforms u in (0, 1] (radius) and v in [0, 1) (angle); ln and sin/cos are polynomials
   (|error| < 2e-7) so the loops vectorise. out: n rounded up to a multiple of 64 floats,
   blocks of 16 counters laid out as [cos | sin | cos | sin] planes of 16. Tails are cut at sqrt(-2 ln 2^-24) =
   5.77 (probability 2e-8). */
static inline float ln_unit(float u) /* ln u, u in (0, 1] */
{
    int32_t bits, mb;
    float m;
    memcpy(&bits, &u, 4);
    int32_t e = ((bits >> 23) & 0xff) - 126; /* u = 2^e m, m in [1/2, 1) */
    mb = (bits & 0x007fffff) | 0x3f000000;
    memcpy(&m, &mb, 4);
    const int32_t low = m < 0.70710678f; /* m into [sqrt(1/2), sqrt(2)) (arithmetic, no branch: vectorises) */
    m = m + (float)low * m;
    e = e - low;
    const float f = (m - 1.0f) / (m + 1.0f), f2 = f * f; /* ln m = 2 atanh f */
    return (float)e * 0.693147181f
           + f * (2.0f + f2 * (0.666666667f + f2 * (0.4f + f2 * (0.285714286f + f2 * 0.222222222f))));
}

static inline void sincos_turn(float v, float *c, float *s) /* cos, sin of 2 pi v, v in [0, 1) */
{
    const float w = v * 4.0f;
    const int32_t quad = (int32_t)w;
    const float t = (w - (float)quad) * 1.57079633f - 0.785398163f, t2 = t * t; /* angle t + pi/4 + quad pi/2 */
    const float st = t * (1.0f + t2 * (-0.166666667f + t2 * (0.00833333333f + t2 * (-0.000198412698f + t2 * 2.75573192e-6f))));
    const float ct = 1.0f + t2 * (-0.5f + t2 * (0.0416666667f + t2 * (-0.00138888889f + t2 * (2.48015873e-5f - t2 * 2.75573192e-7f))));
    const float h = 0.707106781f, cc = h * (ct - st), ss = h * (ct + st); /* at t + pi/4 */
    /* quadrant by bit masks, not branches (so the caller's loop vectorises): odd quad gives
       (-ss, cc), quad & 2 flips both signs */
    int32_t ci, si;
    const float nss = -ss;
    int32_t ccb, ssb, nssb;
    memcpy(&ccb, &cc, 4); memcpy(&ssb, &ss, 4); memcpy(&nssb, &nss, 4);
    const int32_t odd = -(quad & 1), flip = (quad & 2) << 30; /* all ones if odd; the sign bit if quad & 2 */
    ci = ((nssb & odd) | (ccb & ~odd)) ^ flip;
    si = ((ccb & odd) | (ssb & ~odd)) ^ flip;
    memcpy(c, &ci, 4); memcpy(s, &si, 4);
}

void normals(uint64_t key, uint64_t stream, int64_t n, float *out)
{
    const uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32), s0 = (uint32_t)stream, s1 = (uint32_t)(stream >> 32);
    uint32_t a[16], b[16], c[16], d[16];
    for (int64_t g0 = 0; 4 * g0 < n; g0 += 16) { /* 16 counters (64 normals) at a time: fixed trip counts vectorise */
        for (int i = 0; i < 16; ++i) { a[i] = (uint32_t)(g0 + i); b[i] = 0; c[i] = s0; d[i] = s1; }
        uint32_t y0 = k0, y1 = k1;
        for (int r = 0; r < 10; ++r) { /* rounds outside, the 16 counters inside: the inner loop vectorises */
            for (int i = 0; i < 16; ++i) {
                const uint64_t p0 = (uint64_t)0xD2511F53u * a[i], p1 = (uint64_t)0xCD9E8D57u * c[i];
                const uint32_t n0 = (uint32_t)(p1 >> 32) ^ b[i] ^ y0, n2 = (uint32_t)(p0 >> 32) ^ d[i] ^ y1;
                b[i] = (uint32_t)p1;
                d[i] = (uint32_t)p0;
                a[i] = n0;
                c[i] = n2;
            }
            y0 += 0x9E3779B9u;
            y1 += 0xBB67AE85u;
        }
        float *o = out + 4 * g0;
        for (int i = 0; i < 16; ++i) {
            const float scale = 1.0f / 16777216.0f;
            const float r1 = __builtin_sqrtf(-2.0f * ln_unit((float)((a[i] >> 8) + 1) * scale));
            const float r2 = __builtin_sqrtf(-2.0f * ln_unit((float)((c[i] >> 8) + 1) * scale));
            float c1, n1, c2, n2;
            sincos_turn((float)(b[i] >> 8) * scale, &c1, &n1);
            sincos_turn((float)(d[i] >> 8) * scale, &c2, &n2);
            o[i] = r1 * c1; o[16 + i] = r1 * n1; o[32 + i] = r2 * c2; o[48 + i] = r2 * n2;
        }
    }
}
"""
# One lane group = one native vector register: 64 bytes with AVX-512, else 32 (AVX2: eight
# 64-byte sums would need 16 ymm registers plus the input and the broadcast, and spilled).
_VECTORS = """#if defined(__AVX512F__)
#define VBYTES 64
#else
#define VBYTES 32
#endif
typedef float vec_c64 __attribute__((vector_size(VBYTES)));
#define LANES_c64 (VBYTES / 4)
typedef double vec_c128 __attribute__((vector_size(VBYTES)));
#define LANES_c128 (VBYTES / 8)
/* an 8-lane vector (a block's k = 8 rows): the direct path by columns runs where it is one
   native register (double with AVX-512) */
typedef float col_c64 __attribute__((vector_size(32)));
typedef double col_c128 __attribute__((vector_size(64)));
#define COLUMNS_OK_c64 0
#define COLUMNS_OK_c128 (VBYTES == 64)
"""
SOURCE = ("#include <stdint.h>\n#include <string.h>\n#include <math.h>\n#include <float.h>\n#include <pthread.h>\n"
          "#define TILE %d\n#define MAX_THREADS 64\n" % _TILE
          + _VECTORS) + _RNG + "".join(
    (("".join(_TEMPLATE.replace("COLUMNS_OK", "COLUMNS_OK" if name == "k8" else "0")
               .replace("\nCOLUMNS\n", ("\n" + _COLUMNS) if name == "k8" else "\n")
               .replace("KNAME", name).replace("KDIM", dim) for name, dim in _VARIANTS) + _ENTRY)
     .replace("VEC", "vec_SUFFIX").replace("COLUMNS_OK", "COLUMNS_OK_SUFFIX").replace("COL ", "col_SUFFIX ").replace("LANES", "LANES_SUFFIX").replace("SUFFIX", suffix).replace("RINT", f"rint{f}").replace("SQRT", f"sqrt{f}").replace("TINY", tiny)
     .replace("REAL", real))
    for suffix, real, f, tiny in (("c128", "double", "", "DBL_MIN"), ("c64", "float", "f", "FLT_MIN"))
)
# Added after the shared -O3 flags: -O2 wins (GCC 12 at -O3 fully unrolls the k-loops into
# spilling shuffles: 50 vs 17 ms on the MNIST workload); errno is never set here (sqrt of a
# positive variance), and without it sqrt vectorises; no FP traps are read, and without them the
# DAC's clamp-and-round loop vectorises (its compares may then run on every lane: same values).
FLAGS = ("-O2", "-fno-math-errno", "-fno-trapping-math", "-pthread")
_PARAMS = 17
# The noise- and ADC-free coherent path by columns where it is compiled (k = 8, float64, AVX-512);
# False takes the row path for every call (the same readings: tests/test_fused_read.py).
_BY_COLUMNS = True

_LIB = _fused.LazyLibrary(lambda: _load())


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


def matvec_read(mat: Tensor, v: Tensor, scales: Tensor, readout: Readout, dac: int = 0,
                power: int = 0, rows: int | None = None, *, key: int | None = None,
                p0: int = 0, threads: int | None = None) -> tuple[Tensor, int]:
    """Readings out [P, *lead, rows] and the clipped count (module docstring).

    ``mat`` [P, br, bc, k, k] block matrices (y = B x; complex64 or complex128), ``v``
    [P, *lead, C] real inputs (float32 or float64 to match; any strides: the kernel reads
    them in place), C ≤ bc·k (the kernel zero pads), ``scales`` [br, bc] block gains (real
    dtype of the signals), ``rows`` ≤ br·k output rows kept (default br·k). With two or more
    lead dims the output's last lead dim is laid out after the rows in memory (out
    [P, ..., I, rows] is a transposed view of [P, ..., rows, I]), so the TT contraction's
    next reshape (``tt.contract``) is a view, not a copy. E/O conversion in the kernel, as
    ``PhotonicNetwork.forward``'s torch path with the readout chain's ``encode``: ``power`` > 0 divides
    each vector by its largest magnitude and multiplies its readings by that to the
    ``power`` (block floating point); ``dac`` > 0 quantizes to ``dac`` half levels
    (``Modulator.quantize``). One kernel call; a noisy ``readout`` takes one key from its
    generator (``draw_key``) unless ``key`` is given. Split calls: settings ``p0 ..
    p0 + P − 1`` of a larger call, given that call's ``key``, read exactly what the one call
    would have read for them (the noise streams are numbered by ``p0 + p``). ``threads``:
    POSIX threads of the call (default ``torch.get_num_threads()``; the readings do not
    depend on it). ``usable(mat, v)`` must hold."""
    p, br, bc, k = mat.shape[:4]
    lead, cols = v.shape[1:-1], v.shape[-1]
    rows = br * k if rows is None else rows
    real = torch.float64 if mat.dtype == torch.complex128 else torch.float32
    if (v.shape[0] != p or cols > bc * k or v.dtype != real or scales.shape != (br, bc) or power not in (0, 1, 2)
            or not 0 < rows <= br * k or p0 < 0):
        raise ValueError(f"mat/v/scales: shapes {tuple(mat.shape)}, {tuple(v.shape)}, {tuple(scales.shape)}, "
                         f"dtypes, rows {rows}, power {power} or p0 {p0} do not match")
    v4 = v.flatten(1, -3) if len(lead) >= 2 else v.reshape(p, -1, 1, cols)  # [P, N1, N2, C], a view where possible
    n1, n2 = v4.shape[1:3]
    mat = mat.resolve_conj().contiguous()
    scales = scales.to(real).contiguous()
    lib = kernel()
    fn = lib.read_matvec_c128 if real == torch.float64 else lib.read_matvec_c64
    out = torch.empty(p, n1, rows, n2, dtype=real).transpose(2, 3)  # [P, N1, N2, rows], rows before N2
    dims = (ctypes.c_int64 * 9)(p, n1, n2, cols, k, br, bc, rows, p0)
    vs, os_ = (ctypes.c_int64 * 4)(*v4.stride()), (ctypes.c_int64 * 4)(*out.stride())
    params = (ctypes.c_double * _PARAMS)(*readout.params(), float(power), float(dac), float(readout.noisy),
                                            float(_BY_COLUMNS))
    if key is None:
        key = draw_key(readout.generator) if readout.noisy else 0
    threads = max(1, torch.get_num_threads() if threads is None else int(threads))
    share = (bc * k * _TILE + br * bc * k * k) * out.element_size()  # the tile, and Re b by columns (k = 8)
    work = _fused._work(threads * share)
    clipped = fn(dims, mat.data_ptr(), v4.data_ptr(), vs, key, scales.data_ptr(), out.data_ptr(), os_, params,
                 work, share, threads)
    return out.reshape(p, *lead, rows), clipped


def draw_key(generator: torch.Generator | None) -> int:
    """A 62-bit Philox key from ``generator`` (one draw: the generator moves on)."""
    if generator is None:
        raise ValueError("generator: a noisy Readout needs a torch.Generator")
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def readout_normals(key: int, stream: int, n: int) -> Tensor:
    """The standard normals the fused readout kernel adds as detector noise, for one Philox key.

    A noisy reading's noise is σ·z with z from a counter-based generator (Philox4x32-10 and
    Box–Muller, keyed by one 62-bit draw from the readout chain's ``torch.Generator`` per call,
    one ``stream`` per setting, block and tile of 16 vectors), not from ``torch.randn``: the draws
    are reproducible bit for bit for any thread count. This returns the first ``n`` of them
    (float32, CPU) for ``key`` and ``stream``; a benchmark uses it to time the kernel's own draws,
    a test to check the noise statistics. Raises ``RuntimeError`` (with the reason) when the kernel
    could not be built on this machine."""
    if kernel() is None:
        raise RuntimeError(f"readout_normals: the fused readout kernel is not available ({unavailable_reason()})")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"readout_normals: n must be an integer >= 0, got {n!r}")
    return normals(key, stream, n)


def normals(key: int, stream: int, n: int) -> Tensor:
    """The kernel's standard normals for ``key`` and ``stream`` (n floats; module docstring)."""
    out = torch.empty(64 * ((n + 63) // 64), dtype=torch.float32)
    kernel().normals(ctypes.c_uint64(key), ctypes.c_uint64(stream), n, out.data_ptr())
    return out[:n]


def _load() -> tuple[ctypes.CDLL | None, str | None]:
    lib, why = _fused.compile_and_load(SOURCE, "read_kernel", "fused readout kernel", FLAGS)
    if lib is not None:
        for fn in (lib.read_matvec_c128, lib.read_matvec_c64):
            fn.restype = ctypes.c_int64
            fn.argtypes = ([ctypes.c_void_p] * 4 + [ctypes.c_uint64] + [ctypes.c_void_p] * 3
                           + [ctypes.POINTER(ctypes.c_double), ctypes.c_void_p] + [ctypes.c_int64] * 2)
        lib.normals.restype = None
        lib.normals.argtypes = [ctypes.c_uint64, ctypes.c_uint64, ctypes.c_int64, ctypes.c_void_p]
    return lib, why
