"""Gauss–Hermite and Smolyak sparse-grid rules against analytic Gaussian moments."""

import itertools
import time

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss

from photonic_sim.training.quadrature import gauss_hermite_1d, smolyak_gauss_hermite


def gaussian_moment(k: np.ndarray) -> np.ndarray:
    """E[Π z_j^{k_j}] for z ~ N(0, I): Π (k_j − 1)!! for all k_j even, else 0."""
    k = np.atleast_2d(k)
    out = np.ones(k.shape[0])
    for j in range(k.shape[1]):
        kj = k[:, j]
        dfact = np.array([np.prod(np.arange(v - 1, 0, -2, dtype=float)) for v in kj])
        out *= np.where(kj % 2 == 0, dfact, 0.0)
    return out


def quad_moment(nodes, weights, k):
    return (weights[None, :] * np.prod(nodes[None, :, :] ** k[:, None, :], axis=2)).sum(1)


def all_exponents(d, max_degree):
    return np.array(
        [e for e in itertools.product(range(max_degree + 1), repeat=d) if sum(e) <= max_degree]
    )


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_gauss_hermite_1d_matches_numpy_and_moments(n):
    x, w = gauss_hermite_1d(n)
    xr, wr = hermegauss(n)  # independent implementation (numpy)
    np.testing.assert_allclose(x, xr, atol=1e-12)
    np.testing.assert_allclose(w, wr / np.sqrt(2 * np.pi), atol=1e-14)
    k = np.arange(2 * n + 1)[:, None]
    err = np.abs(quad_moment(x[:, None], w, k) - gaussian_moment(k))
    assert np.all(err[: 2 * n] < 1e-10 * np.maximum(1, gaussian_moment(k)[: 2 * n]))
    assert err[2 * n] > 1e-3  # degree 2n is not integrated exactly: the rule is sharp


@pytest.mark.parametrize("d,levels", [(1, range(1, 7)), (2, range(1, 6)), (5, range(1, 5))])
def test_sparse_grid_exact_for_total_degree(d, levels):
    for level in levels:
        x, w = smolyak_gauss_hermite(d, level)
        k = all_exponents(d, 2 * level - 1)
        exact = gaussian_moment(k)
        err = np.abs(quad_moment(x, w, k) - exact)
        assert err.max() < 1e-10 * max(1.0, exact.max()), (d, level, err.max())
        # degree 2ℓ: z_1^{2ℓ} is not exact (the stated degree is the true one)
        k_bad = np.zeros((1, d), dtype=int)
        k_bad[0, 0] = 2 * level
        assert abs(quad_moment(x, w, k_bad) - gaussian_moment(k_bad))[0] > 1e-3


def test_sparse_grid_d21_level3_sampled_monomials():
    d, level = 21, 3
    x, w = smolyak_gauss_hermite(d, level)
    rng = np.random.default_rng(0)
    # all monomials of degree ≤ 2 plus 400 random ones of degree 3..5 (with repeated dims)
    k = [np.zeros(d, dtype=int)]
    for i, j in itertools.combinations_with_replacement(range(d), 2):
        e = np.zeros(d, dtype=int)
        e[i] += 1
        e[j] += 1
        k.append(e)
        e1 = np.zeros(d, dtype=int)
        e1[i] = 1
        k.append(e1)
    for _ in range(400):
        deg = rng.integers(3, 6)
        pool = d if rng.random() < 0.5 else 3  # small pools give high powers of one dim
        k.append(np.bincount(rng.integers(0, pool, size=deg), minlength=d))
    k = np.array(k)
    assert (k.sum(1) <= 5).all() and (k.max(1) >= 2).sum() > 100
    err = np.abs(quad_moment(x, w, k) - gaussian_moment(k))
    assert err.max() < 1e-10


@pytest.mark.parametrize("d", [2, 3, 4, 5, 8, 21])
def test_level3_node_count_and_weights(d):
    x, w = smolyak_gauss_hermite(d, 3)
    assert x.shape == (2 * d * d + 2 * d + 1, d) and w.shape == (x.shape[0],)
    assert abs(w.sum() - 1) < 1e-12
    assert np.all(np.abs(w) >= 1e-14)
    # symmetric node set (needed by the antithetic Stein forms) and no duplicates
    keys = {tuple(np.round(r, 10)) for r in x}
    assert len(keys) == len(x)
    assert {tuple(np.round(-r, 10) + 0.0) for r in x} == keys


def test_pinned_counts():
    assert smolyak_gauss_hermite(21, 3)[0].shape[0] == 925
    assert smolyak_gauss_hermite(2, 3)[0].shape[0] == 13


def test_fast_cached_read_only():
    smolyak_gauss_hermite.cache_clear()
    t0 = time.perf_counter()
    x, w = smolyak_gauss_hermite(21, 3)
    assert time.perf_counter() - t0 < 1.0
    assert smolyak_gauss_hermite(21, 3)[0] is x
    assert not x.flags.writeable and not w.flags.writeable
    with pytest.raises(ValueError):
        x[0, 0] = 1.0
    assert not gauss_hermite_1d(3)[0].flags.writeable


@pytest.mark.parametrize("args", [(0, 3), (3, 0), (2.5, 3), (3, -1)])
def test_bad_arguments(args):
    with pytest.raises(ValueError, match="d must|level must"):
        smolyak_gauss_hermite(*args)
    with pytest.raises(ValueError, match="n must"):
        gauss_hermite_1d(0)
