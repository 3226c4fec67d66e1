"""linear.least_squares on ill-conditioned and rank-deficient designs: correct digits against
an oracle in 50-digit arithmetic (mpmath), as many as a column-pivoted QR (scipy, LAPACK
geqp3) keeps; the minimum-norm solution pinv(X) y on rank-deficient designs; its derivative
against central finite differences and the pseudo-inverse's; vmap over mixed ranks."""

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.linalg as sl

from jaxml import linear as lin
from jaxml.testing import check_gradient


def _oracle(X, y):
    """argmin ‖y − Xw‖ in 50-digit arithmetic (normal equations: κ² ≤ 1e34 leaves ≥ 16)."""
    with mpmath.workdps(50):
        A = mpmath.matrix(X.tolist())
        b = mpmath.matrix(y.tolist())
        w = mpmath.lu_solve(A.T * A, A.T * b)
        return np.array([float(v) for v in w])


def _digits(w, w_true):
    err = np.linalg.norm(np.asarray(w) - w_true) / np.linalg.norm(w_true)
    return -np.log10(max(err, 1e-17))


def _pivoted_qr(X, y):
    """Column-pivoted QR solve without a rank cut-off (scipy, LAPACK geqp3)."""
    Q, R, perm = sl.qr(X, mode="economic", pivoting=True)
    w = np.zeros(X.shape[1])
    w[perm] = sl.solve_triangular(R, Q.T @ y)
    return w


@pytest.mark.parametrize("interval", [(0.0, 20.0), (1.0, 10.0), (5.0, 10.0)])
def test_raw_polynomial_digits_match_pivoted_qr(interval):
    """Degree 10 in raw powers (κ ≈ 1e13–1e17): mean correct digits over noisy targets."""
    t = np.linspace(*interval, 40)
    X = np.vander(t, 11, increasing=True)
    rng = np.random.default_rng(0)
    ours, qr, numpy = [], [], []
    for _ in range(4):
        y = np.sin(3 * t / interval[1]) + 0.1 * rng.standard_normal(t.size)
        w_true = _oracle(X, y)
        ours.append(_digits(lin.least_squares(X, y), w_true))
        qr.append(_digits(_pivoted_qr(X, y), w_true))
        numpy.append(_digits(np.linalg.lstsq(X, y, rcond=None)[0], w_true))
    print(f"κ={np.linalg.cond(X):.1e} digits: jaxml {np.mean(ours):.1f}, pivoted QR "
          f"{np.mean(qr):.1f}, numpy.lstsq {np.mean(numpy):.1f}")
    assert np.mean(ours) >= np.mean(qr) - 1.0
    assert min(ours) >= 4.0


def test_badly_scaled_columns_keep_their_digits():
    """Columns scaled by 1e-8 … 1e8 on a moderately conditioned design: scale-invariant."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((30, 6)) * np.logspace(-8, 8, 6)
    y = rng.standard_normal(30)
    w_true = _oracle(A, y)
    assert _digits(lin.least_squares(A, y), w_true) >= 13
    assert _digits(np.linalg.lstsq(A, y, rcond=None)[0], w_true) < 13   # the cut-off's loss


@pytest.mark.parametrize("n, d, r", [(5, 3, 2), (40, 10, 6), (200, 12, 11), (8, 12, 8)])
def test_rank_deficient_gives_minimum_norm(n, d, r):
    rng = np.random.default_rng(n + d)
    X = rng.standard_normal((n, r)) @ rng.standard_normal((r, d)) * rng.uniform(0.01, 100, d)
    y = rng.standard_normal(n)
    w_pinv = np.linalg.pinv(X) @ y
    np.testing.assert_allclose(lin.least_squares(X, y), w_pinv,
                               atol=1e-10 * np.abs(w_pinv).max())


def test_zero_and_duplicate_columns():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((20, 3))
    for X in (np.c_[A, np.zeros(20)], np.c_[A, 3 * A[:, 1]], np.zeros((20, 3))):
        y = rng.standard_normal(20)
        np.testing.assert_allclose(lin.least_squares(X, y), np.linalg.pinv(X) @ y, atol=1e-12)


def test_gradient_matches_finite_differences_and_pinv():
    """Full rank here; the rank-deficient derivative is checked under vmap below."""
    rng = np.random.default_rng(3)
    X, y, v = rng.standard_normal((9, 4)), rng.standard_normal(9), rng.standard_normal(4)

    def loss(p):
        return jnp.sum(jnp.sin(lin.least_squares(p["X"], p["y"]) * v))

    def via_pinv(p):
        return jnp.sum(jnp.sin(jnp.linalg.pinv(p["X"]) @ p["y"] * v))

    params = {"X": jnp.asarray(X), "y": jnp.asarray(y)}
    check_gradient(loss, jax.grad(loss), params, autodiff=False, fd_rtol=1e-6)
    got, ref = jax.grad(loss)(params), jax.grad(via_pinv)(params)
    for k in params:
        np.testing.assert_allclose(got[k], ref[k], atol=1e-10)


def test_vmap_over_mixed_ranks_and_jit_grad():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((10, 4))
    Xb = np.stack([A, np.c_[A[:, :3], A[:, 0]]])
    yb = rng.standard_normal((2, 10))
    w = jax.vmap(lin.least_squares)(Xb, yb)
    for i in range(2):
        np.testing.assert_allclose(w[i], np.linalg.pinv(Xb[i]) @ yb[i], atol=1e-12)
    g = jax.jit(jax.vmap(jax.grad(lambda X, y: jnp.sum(lin.least_squares(X, y) ** 2))))(Xb, yb)
    g_ref = jax.vmap(jax.grad(lambda X, y: jnp.sum((jnp.linalg.pinv(X) @ y) ** 2)))(Xb, yb)
    np.testing.assert_allclose(g, g_ref, atol=1e-10)


def test_float32_stays_float32():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((20, 3)).astype(np.float32)
    y = rng.standard_normal(20).astype(np.float32)
    w = lin.least_squares(X, y)
    assert w.dtype == jnp.float32
    np.testing.assert_allclose(w, np.linalg.lstsq(X.astype(float), y.astype(float))[0],
                               rtol=1e-4, atol=1e-5)
