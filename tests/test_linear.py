"""jaxml.linear against scikit-learn on load_diabetes (float64, 1e-6), closed forms, jax.grad;
penalized vs constrained forms at the matching radius; jit / vmap / float32; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.linear_model import lasso_path as sk_lasso_path

from jaxml import linear as lin
from jaxml._core import Unrolled
from jaxml.testing import check_gradient

X, Y = load_diabetes(return_X_y=True)
N, D = X.shape


def _close(a, b, rtol=1e-6):
    """Equal to rtol relative to the coefficients' scale."""
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, atol=rtol * max(np.abs(b).max(), 1e-12))


def test_squared_loss_grad_equals_jax_grad():
    w = jnp.asarray(np.random.default_rng(0).normal(size=D) * 100)
    # against jax.grad (rtol 1e-12) and central differences of the loss
    check_gradient(lambda v: lin.squared_loss(v, X, Y), lambda v: lin.squared_loss_grad(v, X, Y),
                   w, rtol=1e-12)
    np.testing.assert_allclose(lin.squared_loss(w, X, Y), 0.5 * np.sum((Y - X @ w) ** 2))


def test_least_squares_matches_sklearn_and_min_norm():
    _close(lin.least_squares(X, Y), LinearRegression(fit_intercept=False).fit(X, Y).coef_)
    # singular X^T X: duplicated column and d > n both give the minimum-norm solution
    Xs = np.hstack([X, X[:, :2]])
    _close(lin.least_squares(Xs, Y), np.linalg.pinv(Xs) @ Y, rtol=1e-9)
    Xw = X[:8]
    w = lin.least_squares(Xw, Y[:8])
    _close(w, np.linalg.pinv(Xw) @ Y[:8], rtol=1e-9)
    np.testing.assert_allclose(Xw @ w, Y[:8], rtol=1e-9)


def test_least_squares_accurate_when_ill_conditioned():
    """A Vandermonde design with cond ~ 1e8: an exact polynomial is recovered to ~1e-6,
    where the normal equations (cond^2 ~ 1e16) lose every digit."""
    t = np.linspace(0, 1, 60)
    V = np.vander(t, 12, increasing=True)
    w_true = np.arange(1.0, 13.0)
    assert np.linalg.cond(V) > 1e8
    normal_eq = np.linalg.solve(V.T @ V, V.T @ V @ w_true)
    assert np.abs(normal_eq - w_true).max() > 1e-2 * np.abs(w_true).max()
    _close(lin.least_squares(V, V @ w_true), w_true, rtol=1e-6)


def test_least_squares_gd_reaches_closed_form():
    tol = 1e-6
    r = lin.least_squares_gd(X, Y, tol=tol, max_iter=20000)
    assert bool(r.converged)
    np.testing.assert_allclose(lin.squared_loss_grad(r.x, X, Y), 0, atol=10 * tol)
    np.testing.assert_allclose(r.value, lin.squared_loss(lin.least_squares(X, Y), X, Y), rtol=1e-10)


@pytest.mark.parametrize("alpha", [1e-3, 0.1, 10.0])
def test_ridge_matches_sklearn_primal_and_dual(alpha):
    _close(lin.ridge(X, Y, alpha), Ridge(alpha=alpha, fit_intercept=False).fit(X, Y).coef_)
    Xw, yw = X[:6], Y[:6]  # d > n: dual form
    _close(lin.ridge(Xw, yw, alpha), Ridge(alpha=alpha, fit_intercept=False).fit(Xw, yw).coef_)


def test_ridge_vmap_over_alpha_and_datasets_and_jit():
    alphas = jnp.array([1e-3, 0.1, 1.0, 10.0])
    W = jax.jit(jax.vmap(lin.ridge, (None, None, 0)))(X, Y, alphas)
    for w, a in zip(W, alphas):
        _close(w, Ridge(alpha=float(a), fit_intercept=False).fit(X, Y).coef_)
    rng = np.random.default_rng(1)
    Xs, ys = rng.normal(size=(5, 40, 3)), rng.normal(size=(5, 40))
    W = jax.vmap(lin.ridge, (0, 0, None))(Xs, ys, 0.5)
    for w, x, y in zip(W, Xs, ys):
        _close(w, Ridge(alpha=0.5, fit_intercept=False).fit(x, y).coef_)


def test_ridge_plain_vmap_checks_traced_values():
    # a plain vmap of ridge runs its checks and core as one compiled call: bad values
    # still raise by name
    with pytest.raises(Exception, match="alpha must"):
        jax.block_until_ready(jax.vmap(lin.ridge, (None, None, 0))(X, Y, jnp.array([1.0, -1.0])))


@pytest.fixture
def refine_everything(monkeypatch):
    """Send every float64 n >= d problem down the mixed-precision refined paths."""
    monkeypatch.setattr(lin, "_REFINE_MIN_WORK", 0)


@pytest.mark.parametrize("alpha", [1e-3, 10.0])
def test_ridge_refined_path_matches_sklearn(refine_everything, alpha):
    # diabetes at alpha = 1e-3 has cond(XᵀX + αI) ~ 1e4: still refined to float64
    _close(lin.ridge(X, Y, alpha), Ridge(alpha=alpha, fit_intercept=False).fit(X, Y).coef_,
           rtol=1e-10)


def test_refined_paths_at_the_real_threshold():
    # n·d² = 2^30 exactly: the public functions take the mixed-precision paths unpatched
    rng = np.random.default_rng(3)
    n, d = 2 ** 14, 2 ** 8
    assert n * d * d >= lin._REFINE_MIN_WORK
    Xb = rng.normal(size=(n, d)) * np.linspace(1.0, 0.01, d)
    yb = Xb[:, :8] @ rng.normal(size=8) + 0.1 * rng.normal(size=n)
    _close(lin.ridge(Xb, yb, 2.0), Ridge(alpha=2.0, fit_intercept=False).fit(Xb, yb).coef_,
           rtol=1e-10)
    alphas = np.abs(Xb.T @ yb).max() / n * np.array([0.5, 0.05])
    _, ref, _ = sk_lasso_path(Xb, yb, alphas=alphas, tol=1e-12, max_iter=100000)
    p = lin.lasso_path(Xb, yb, alphas, tol=1e-12)
    assert bool(p.converged.all())
    _close(p.coefs, ref.T, rtol=1e-5)


def test_ridge_refined_falls_back_and_differentiates():
    from jaxml.linear import _ridge_direct, _ridge_refined
    rng = np.random.default_rng(0)
    Xc = rng.normal(size=(300, 12)) * 10.0 ** np.linspace(0, -7, 12)  # cond ~1e14: f32 Gram useless
    yc = rng.normal(size=300)
    for Xt, yt in ((X, Y), (Xc, yc)):
        direct = _ridge_direct(Xt, yt, 1e-9)
        for max_iter in (30, 0):   # 0: no refinement step, the float64 fallback answers
            _close(_ridge_refined(Xt, yt, 1e-9, max_iter=max_iter), direct, rtol=1e-8)
    # grad from the implicit function theorem equals grad through the direct Cholesky solve
    loss = lambda fit: lambda a, Xt: jnp.sum(fit(Xt, Y, a) ** 2)  # noqa: E731
    g_ref = jax.grad(loss(_ridge_direct), (0, 1))(0.3, X)
    g = jax.grad(loss(_ridge_refined), (0, 1))(0.3, X)
    np.testing.assert_allclose(g[0], g_ref[0], rtol=1e-8)
    _close(g[1], g_ref[1], rtol=1e-8)
    alphas = jnp.array([1e-2, 1.0, 100.0])
    _close(jax.vmap(lambda a: _ridge_refined(X, Y, a))(alphas),
           jax.vmap(lambda a: _ridge_direct(X, Y, a))(alphas), rtol=1e-8)


def test_lasso_path_refined_matches_sklearn(refine_everything):
    alphas = np.logspace(0, -3, 6)
    _, ref, _ = sk_lasso_path(X, Y, alphas=alphas, tol=1e-14, max_iter=100000)
    for warm in (True, False):   # warm: two blocks of 3
        p = lin.lasso_path(X, Y, alphas, tol=1e-14, max_iter=50000, warm_start=warm,
                           warm_block=3)
        assert bool(p.converged.all())
        assert float(p.duality_gap.max()) <= 1e-14 * Y @ Y / N   # the exact float64 gap
        _close(p.coefs, ref.T)


@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0])
def test_lasso_matches_sklearn(alpha):
    r = lin.lasso(X, Y, alpha, tol=1e-15, max_iter=50000)
    sk = Lasso(alpha=alpha, fit_intercept=False, tol=1e-15, max_iter=100000).fit(X, Y)
    assert bool(r.converged)
    _close(r.w, sk.coef_)
    np.testing.assert_allclose(r.value, np.sum((Y - X @ sk.coef_) ** 2) / (2 * N)
                               + alpha * np.abs(sk.coef_).sum(), rtol=1e-10)
    assert float(r.duality_gap) <= 1e-15 * Y @ Y / N


def test_lasso_path_matches_sklearn_both_modes():
    alphas = np.logspace(0, -3, 8)
    _, ref, _ = sk_lasso_path(X, Y, alphas=alphas, tol=1e-14, max_iter=100000)
    for warm, block in ((True, 1), (True, 3), (False, 1)):
        p = jax.jit(lambda a, warm=warm, block=block: lin.lasso_path(
            X, Y, a, tol=1e-14, max_iter=50000, warm_start=warm, warm_block=block))(
                alphas[::-1].copy())
        assert bool(p.converged.all())
        _close(p.coefs[::-1], ref.T)


def test_lasso_vmap_over_alpha_and_float32():
    alphas = jnp.array([0.05, 0.5])
    ws = jax.vmap(lambda a: lin.lasso(X, Y, a, tol=1e-14, max_iter=50000).w)(alphas)
    for w, a in zip(ws, alphas):
        _close(w, Lasso(alpha=float(a), fit_intercept=False, tol=1e-14, max_iter=100000)
               .fit(X, Y).coef_)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    r = lin.lasso(X32, Y32, 0.5, tol=1e-5)
    assert r.w.dtype == jnp.float32 and r.value.dtype == jnp.float32
    _close(r.w, ws[1], rtol=5e-3)
    assert lin.ridge(X32, Y32, 0.1).dtype == jnp.float32
    assert lin.least_squares(X32, Y32).dtype == jnp.float32
    assert lin.ridge_constrained(X32, Y32, 100.0, tol=1e-4).w.dtype == jnp.float32
    assert lin.loss_surface(X32[:, :2], Y32, np.zeros(3), np.zeros(4)).dtype == jnp.float32


def test_ridge_penalized_equals_constrained():
    alpha = 0.1
    w = lin.ridge(X, Y, alpha)
    r = lin.ridge_constrained(X, Y, float(np.linalg.norm(w)), tol=1e-11, max_iter=20000)
    assert bool(r.converged)
    _close(r.w, w, rtol=1e-6)
    np.testing.assert_allclose(r.multiplier, alpha, rtol=1e-5)
    # KKT residuals of the constrained problem (stationarity relative to |grad f(0)|)
    grad = 2 * X.T @ (X @ r.w - Y) + 2 * r.multiplier * r.w
    assert np.abs(grad).max() <= 10 * 1e-11 * 2 * np.linalg.norm(X.T @ Y) * 10
    # inactive constraint: the least-squares solution, multiplier 0
    big = lin.ridge_constrained(X, Y, 1e4, tol=1e-10, max_iter=50000)
    _close(big.w, lin.least_squares(X, Y), rtol=1e-5)
    assert float(big.multiplier) == 0.0


def test_lasso_penalized_equals_constrained():
    alpha = 0.1
    pen = lin.lasso(X, Y, alpha, tol=1e-15, max_iter=50000)
    con = lin.lasso_constrained(X, Y, float(np.abs(pen.w).sum()), tol=1e-11, max_iter=20000)
    assert bool(con.converged)
    _close(con.w, pen.w, rtol=1e-6)
    np.testing.assert_allclose(con.multiplier / (2 * N), alpha, rtol=1e-5)
    # subgradient KKT of the constrained form
    g = 2 * X.T @ (X @ con.w - Y)
    on = np.abs(np.asarray(con.w)) > 0
    np.testing.assert_allclose(-g[on] / np.sign(con.w[on]), con.multiplier, rtol=1e-6)
    assert np.all(np.abs(g[~on]) <= con.multiplier * (1 + 1e-6))


def test_loss_surface_matches_direct_evaluation():
    X2 = X[:, [2, 8]]
    w1, w2 = np.linspace(-100, 1000, 7), np.linspace(-200, 900, 5)
    J = lin.loss_surface(X2, Y, w1, w2)
    assert J.shape == (5, 7)
    for i in range(5):
        for j in range(7):
            np.testing.assert_allclose(J[i, j], lin.squared_loss(np.array([w1[j], w2[i]]), X2, Y),
                                       rtol=1e-10)


def test_grad_through_fits():
    """Ridge is differentiable in alpha: dw/dalpha = -(XᵀX + αI)⁻¹ w."""
    alpha = 0.1
    w = lin.ridge(X, Y, alpha)
    dw = jax.jacobian(lin.ridge, argnums=2)(X, Y, alpha)
    np.testing.assert_allclose(dw, -np.linalg.solve(X.T @ X + alpha * np.eye(D), w), rtol=1e-6)
    # lasso: through the unrolled fit, d/dy of the fitted values equals the projection onto the
    # active columns (the lasso fit is locally linear in y with a fixed support).
    Xs, ys = X[:60], Y[:60]
    w = lin.lasso(Xs, ys, 1.0, tol=1e-14, max_iter=20000).w
    S = np.abs(np.asarray(w)) > 0
    g = jax.grad(lambda yy: lin.lasso(Xs, yy, 1.0, tol=1e-14, max_iter=3000, adjoint=Unrolled()).w.sum())(ys)
    XS = Xs[:, S]
    expect = XS @ np.linalg.solve(XS.T @ XS, np.ones(S.sum()))
    np.testing.assert_allclose(g, expect, atol=1e-6 * np.abs(expect).max())


@pytest.mark.parametrize("fn", ["ridge", "lasso", "ridge_constrained", "lasso_constrained"])
def test_bad_input(fn):
    f = getattr(lin, fn)
    with pytest.raises(ValueError, match="same number of rows"):
        f(X, Y[:-1], 1.0)
    with pytest.raises(ValueError, match="X must have 2"):
        f(X[0], Y, 1.0)
    with pytest.raises(ValueError, match="y must have 1"):
        f(X, Y[:, None], 1.0)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        f(Xn, Y, 1.0)
    Yn = Y.copy()
    Yn[0] = np.inf
    with pytest.raises(ValueError, match="y contains NaN"):
        f(X, Yn, 1.0)
    name = "radius" if "constrained" in fn else "alpha"
    with pytest.raises(ValueError, match=name):
        f(X, Y, -1.0)


def test_bad_input_other():
    with pytest.raises(ValueError, match="alphas"):
        lin.lasso_path(X, Y, np.array([0.1, -0.1]))
    with pytest.raises(ValueError, match="warm_block"):
        lin.lasso_path(X, Y, np.array([0.1]), warm_block=0)
    with pytest.raises(ValueError, match="same number of rows"):
        lin.least_squares(X, Y[:3])
    with pytest.raises(ValueError, match="X must have exactly 2 columns"):
        lin.loss_surface(X, Y, np.zeros(3), np.zeros(3))


def test_plain_calls_reuse_one_compiled_core():
    """A public fit checks, then calls one jitted core: new numbers (alpha, tol) reuse it."""
    lin.lasso_path(X, Y, np.array([1.0, 0.1]), tol=1e-6, max_iter=500)
    n_path = lin._lasso_path._cache_size()
    p = lin.lasso_path(X, Y, np.array([2.0, 0.2]), tol=1e-7, max_iter=500)
    assert lin._lasso_path._cache_size() == n_path
    assert p.trace.shape == (2, 500) and p.n_iter.shape == (2,)
    lin.lasso(X, Y, 0.3, max_iter=500)
    n_lasso = lin._lasso._cache_size()
    r = lin.lasso(X, Y, 0.5, tol=1e-5, max_iter=500)
    assert lin._lasso._cache_size() == n_lasso
    assert np.isnan(np.asarray(r.trace)[int(r.n_iter):]).all()


# ----------------------------------------------------------------------------- issue 13
def test_valid_edge_inputs_give_finite_answers():
    # ridge(alpha=0) on a zero design: the docstring's finite answer (w = 0), both forms
    for shape in [(5, 3), (3, 5)]:
        w = lin.ridge(np.zeros(shape), np.ones(shape[0]), 0.0)
        np.testing.assert_array_equal(np.asarray(w), 0.0)
    # y = 0: the constrained fits converge at w = 0 (no error about a learning rate)
    X = np.random.default_rng(0).normal(size=(20, 3))
    for fit in (lin.ridge_constrained, lin.lasso_constrained):
        res = fit(X, np.zeros(20), 1.0)
        assert bool(res.converged)
        np.testing.assert_array_equal(np.asarray(res.w), 0.0)
    # NumPy integers as sizes
    res = lin.lasso(X, X[:, 0], 0.1, max_iter=np.int64(20))
    assert res.trace.shape == (20,)
    assert lin.lasso_path(X, X[:, 0], [0.1], max_iter=np.int64(20)).trace.shape == (1, 20)
    assert lin.ridge_constrained(X, X[:, 0], 1.0, max_iter=np.int64(20)).trace.shape == (20,)


def test_lasso_path_without_alphas_is_a_clear_error():
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="alphas"):
        lin.lasso_path(X, X[:, 0], np.zeros(0))


def test_traced_bad_values_raise_at_run_time():
    X = jnp.asarray(np.random.default_rng(0).normal(size=(12, 3)))
    y = X[:, 0]
    Xnan = X.at[0, 0].set(jnp.nan)
    cases = [
        (lambda X: lin.ridge(X, y, 1.0), Xnan, "X"),
        (lambda X: lin.least_squares(X, y), Xnan, "X"),
        (lambda a: lin.ridge(X, y, a), -1.0, "alpha"),
        (lambda a: lin.lasso(X, y, a), -1.0, "alpha"),
        (lambda a: lin.lasso_path(X, y, a), -jnp.ones(2), "alphas"),
        (lambda r: lin.ridge_constrained(X, y, r), -1.0, "radius"),
        (lambda t: lin.least_squares_gd(X, y, learning_rate=t), -1.0, "learning_rate"),
    ]
    for f, v, name in cases:
        with pytest.raises(Exception, match=f"{name} must|{name} contains"):
            jax.block_until_ready(jax.jit(f)(v))
    # under vmap too: one bad member is an error
    with pytest.raises(Exception, match="alpha must"):
        jax.block_until_ready(jax.vmap(lambda a: lin.ridge(X, y, a))(jnp.array([1.0, -1.0])))
