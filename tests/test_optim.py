"""jaxml.optim: solvers reach KKT residuals <= 10·tol against scipy / closed forms; jit,
vmap, float32, pytrees, grad through an unrolled fit; kkt_residuals against hand KKT."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from jaxml import convex as cx
from jaxml import optim
from jaxml._core import Unrolled
from jaxml.testing import check_kkt, check_monotone

RNG = np.random.default_rng(0)
A = RNG.normal(size=(30, 5))
B = RNG.normal(size=30)
L = float(np.linalg.eigvalsh(A.T @ A).max())
W_LS = np.linalg.lstsq(A, B, rcond=None)[0]


def f(w):
    return 0.5 * jnp.sum((A @ w - B) ** 2)


def rosen(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


@pytest.mark.parametrize("lr", [None, 1.0 / L])
def test_gradient_descent_least_squares(lr):
    tol = 1e-8
    r = optim.gradient_descent(f, jnp.zeros(5), learning_rate=lr, tol=tol, max_iter=2000)
    assert bool(r.converged) and int(r.n_iter) < 2000
    np.testing.assert_allclose(r.x, W_LS, atol=1e-8)
    check_kkt(f, r.x, tol=10 * tol)
    np.testing.assert_allclose(r.value, f(W_LS), rtol=1e-12)
    tr = np.asarray(r.trace)[: int(r.n_iter)]
    check_monotone(tr, increasing=False, rtol=0.0, atol=1e-12 * tr[0])  # Armijo / 1/L step
    assert np.all(np.isnan(np.asarray(r.trace)[int(r.n_iter):]))


def test_gradient_descent_nonconvex_rosenbrock_matches_scipy():
    r = optim.gradient_descent(rosen, jnp.array([-1.2, 1.0, 0.5]), tol=1e-6, max_iter=60000)
    ref = minimize(lambda x: float(rosen(jnp.asarray(x))), [-1.2, 1.0, 0.5],
                   jac=lambda x: np.asarray(jax.grad(rosen)(jnp.asarray(x))), method="BFGS",
                   options={"gtol": 1e-10})
    assert bool(r.converged)
    np.testing.assert_allclose(r.x, ref.x, atol=1e-5)


def test_max_iter_reports_not_converged():
    r = optim.gradient_descent(rosen, jnp.array([-1.2, 1.0]), tol=1e-12, max_iter=5)
    assert not bool(r.converged) and int(r.n_iter) == 5 and float(r.error) > 1e-12


def test_projected_gradient_box_and_kkt():
    lo, hi = -0.1 * np.ones(5), 0.1 * np.ones(5)
    tol = 1e-9
    r = optim.projected_gradient_descent(f, jnp.zeros(5), lambda w: cx.project_box(w, lo, hi),
                                         tol=tol, max_iter=5000)
    ref = minimize(lambda w: float(f(w)), np.zeros(5), jac=lambda w: np.asarray(jax.grad(f)(w)),
                   bounds=list(zip(lo, hi)), method="L-BFGS-B",
                   options={"ftol": 1e-15, "gtol": 1e-12})
    assert bool(r.converged)
    np.testing.assert_allclose(r.x, ref.x, atol=1e-7)
    check_kkt(f, r.x, ineq=lambda w: jnp.concatenate([lo - w, w - hi]), tol=10 * tol)


def test_projected_gradient_simplex_kkt_with_given_multipliers():
    """min f on the simplex; the hand KKT multipliers: mu = -min(grad) on the support."""
    tol = 1e-9
    r = optim.projected_gradient_descent(f, jnp.ones(5) / 5, cx.project_simplex, tol=tol,
                                         max_iter=5000)
    g = np.asarray(jax.grad(f)(r.x))
    x = np.asarray(r.x)
    mu = -g[x > 1e-8].mean()
    lam = g + mu                                   # multipliers of -x <= 0
    lam[x > 1e-8] = 0.0
    check_kkt(f, r.x, ineq=lambda w: -w, eq=lambda w: jnp.sum(w) - 1.0, lam=lam,
              mu=np.array([mu]), tol=10 * tol * 10)  # stationarity error of the support mean
    check_kkt(f, r.x, ineq=lambda w: -w, eq=lambda w: jnp.sum(w) - 1.0, tol=1e-7)


@pytest.mark.parametrize("accelerated", [True, False])
def test_proximal_gradient_lasso_equals_scipy(accelerated):
    lam = 3.0
    tol = 1e-9
    r = optim.proximal_gradient(f, lambda v, t: cx.soft_threshold(v, t * lam), jnp.zeros(5),
                                accelerated=accelerated, tol=tol, max_iter=5000)
    # reference: the smooth split w = u - v, u, v >= 0 solved by L-BFGS-B
    obj = lambda uv: float(f(uv[:5] - uv[5:]) + lam * uv.sum())  # noqa: E731
    jac = lambda uv: np.concatenate([np.asarray(jax.grad(f)(uv[:5] - uv[5:])) + lam,  # noqa: E731
                                     -np.asarray(jax.grad(f)(uv[:5] - uv[5:])) + lam])
    ref = minimize(obj, np.zeros(10), jac=jac, bounds=[(0, None)] * 10, method="L-BFGS-B",
                   options={"ftol": 1e-15, "gtol": 1e-12})
    assert bool(r.converged)
    np.testing.assert_allclose(r.x, ref.x[:5] - ref.x[5:], atol=1e-7)
    # subgradient optimality: |grad_j| <= lam off the support, = -lam sign on it
    g = np.asarray(jax.grad(f)(r.x))
    x = np.asarray(r.x)
    on = np.abs(x) > 0
    assert np.all(np.abs(g[~on]) <= lam + 10 * tol)
    np.testing.assert_allclose(g[on], -lam * np.sign(x[on]), atol=10 * tol)


def test_fista_faster_than_ista():
    prox = lambda v, t: cx.soft_threshold(v, t * 0.5)  # noqa: E731
    M = RNG.normal(size=(40, 20)) @ np.diag(np.logspace(0, -2, 20))
    t = RNG.normal(size=40)
    g = lambda w: 0.5 * jnp.sum((M @ w - t) ** 2)  # noqa: E731
    fast = optim.proximal_gradient(g, prox, jnp.zeros(20), tol=1e-7, max_iter=20000)
    slow = optim.proximal_gradient(g, prox, jnp.zeros(20), tol=1e-7, max_iter=20000,
                                   accelerated=False)
    assert bool(fast.converged) and bool(slow.converged)
    assert int(fast.n_iter) < int(slow.n_iter)
    np.testing.assert_allclose(fast.x, slow.x, atol=1e-5)


def test_jit_vmap_float32_pytree():
    def solve(b):
        return optim.gradient_descent(lambda w: 0.5 * jnp.sum((A @ w - b) ** 2), jnp.zeros(5),
                                      learning_rate=1.0 / L, tol=1e-8, max_iter=2000).x

    Bs = RNG.normal(size=(3, 30))
    W = jax.jit(jax.vmap(solve))(Bs)
    np.testing.assert_allclose(W, np.linalg.lstsq(A, Bs.T, rcond=None)[0].T, atol=1e-7)

    x0 = {"a": jnp.zeros(2, jnp.float32), "b": jnp.ones(3, jnp.float32)}
    r = optim.gradient_descent(lambda p: jnp.sum((p["a"] - 1) ** 2) + jnp.sum(p["b"] ** 2), x0,
                               tol=1e-4)
    assert r.x["a"].dtype == jnp.float32 and r.value.dtype == jnp.float32
    np.testing.assert_allclose(r.x["a"], 1.0, atol=1e-4)
    np.testing.assert_allclose(r.x["b"], 0.0, atol=1e-4)


@pytest.mark.parametrize("lr", [None, 1.0 / L])
def test_grad_through_unrolled_fit(lr):
    """d/db sum(argmin_w f) = sum of rows of pinv(A) — the implicit-function answer."""
    def fit_sum(b):
        r = optim.gradient_descent(lambda w: 0.5 * jnp.sum((A @ w - b) ** 2), jnp.zeros(5),
                                   learning_rate=lr, tol=1e-10, max_iter=600,
                                   adjoint=Unrolled())
        return r.x.sum()

    g = jax.grad(fit_sum)(jnp.asarray(B))
    np.testing.assert_allclose(g, np.linalg.pinv(A).sum(0), atol=1e-6)


def test_kkt_residuals_closed_form():
    """min x1 + x2 s.t. x1^2 + x2^2 <= 2: x* = (-1, -1), lambda* = 1/2."""
    obj = lambda x: x[0] + x[1]  # noqa: E731
    ineq = lambda x: x @ x - 2.0  # noqa: E731
    k = optim.kkt_residuals(obj, jnp.array([-1.0, -1.0]), ineq=ineq)
    np.testing.assert_allclose(k.lam, [0.5], atol=1e-12)
    assert float(k.max) < 1e-12
    bad = optim.kkt_residuals(obj, jnp.array([-0.5, -1.0]), ineq=ineq)
    assert float(bad.stationarity) > 0.1
    wrong_sign = optim.kkt_residuals(obj, jnp.array([-1.0, -1.0]), ineq=ineq, lam=[-0.5])
    assert float(wrong_sign.dual) == pytest.approx(0.5)
    eqk = optim.kkt_residuals(obj, jnp.array([0.5, 0.5]), eq=lambda x: x[0] + x[1] - 1.0)
    np.testing.assert_allclose(eqk.mu, [-1.0])
    assert float(eqk.max) < 1e-12


def test_bad_arguments():
    with pytest.raises(ValueError, match="tol"):
        optim.gradient_descent(f, jnp.zeros(5), tol=-1.0)
    with pytest.raises(ValueError, match="max_iter"):
        optim.gradient_descent(f, jnp.zeros(5), max_iter=0)
    with pytest.raises(ValueError, match="learning_rate"):
        optim.projected_gradient_descent(f, jnp.zeros(5), cx.project_simplex, learning_rate=-1.0)


def test_core_prox_momentum_and_step():
    """_core.prox: FISTA momentum sequence, linear extrapolation of pytrees, and one step of
    prox_gradient_step equals the textbook formula."""
    from jaxml._core.prox import extrapolate, momentum, prox_gradient_step, prox_init

    th, beta = momentum(jnp.asarray(1.0))
    np.testing.assert_allclose([th, beta], [(1 + np.sqrt(5)) / 2, 0.0])
    th2, beta2 = momentum(th)
    np.testing.assert_allclose(beta2, (th - 1) / th2)
    y = extrapolate((jnp.ones(2), 2 * jnp.ones(2)), (jnp.zeros(2), jnp.zeros(2)), 0.5)
    np.testing.assert_allclose(y[0], 1.5) and np.testing.assert_allclose(y[1], 3.0)
    t = 1.0 / L
    vg = lambda x, _: jax.value_and_grad(f)(x)  # noqa: E731
    prox = lambda v, s, _: cx.soft_threshold(v, s * 0.1)  # noqa: E731
    x0 = jnp.asarray(np.linspace(-1, 1, 5))
    state, info = prox_gradient_step(prox_init(x0, t), (), value_and_grad=vg, prox=prox)
    expect = cx.soft_threshold(x0 - t * jax.grad(f)(x0), t * 0.1)
    np.testing.assert_allclose(state.x, expect, rtol=1e-12)
    np.testing.assert_allclose(info.error, np.linalg.norm(x0 - expect) / t, rtol=1e-12)
    np.testing.assert_allclose(info.value, f(x0), rtol=1e-12)


# ----------------------------------------------------------------------------- issue 13
def test_traced_learning_rate_checked_and_numpy_max_iter():
    f = lambda w: jnp.sum(w ** 2)  # noqa: E731
    with pytest.raises(Exception, match="learning_rate must"):
        jax.block_until_ready(jax.jit(
            lambda t: optim.gradient_descent(f, jnp.ones(2), learning_rate=t).x)(-1.0))
    res = optim.gradient_descent(f, jnp.ones(2), max_iter=np.int64(20))
    assert res.trace.shape == (20,) and bool(res.converged)
