"""jax.grad through the fits of optim, linear and svm (issue 14): implicit differentiation at
the solution (the default adjoint) against central finite differences of converged fits,
against unrolled differentiation where both exist, under jit and vmap, and NaN when the
fit did not converge."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import convex, linear, optim, svm
from jaxml._core import Unrolled
from jaxml.testing import check_gradient, check_jacobian

# central differences of the converged fit with step 1e-5, held to |g − D| ≤ 1e-8 + 1e-5·|D|
# (no Richardson widening: the fits' own noise must stay inside that tolerance)
FD = dict(step=1e-5, fd_rtol=1e-5, atol=1e-8, autodiff=False, richardson=False)


def assert_close(a, b, rtol=1e-5, atol=1e-8):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


RNG = np.random.default_rng(0)
A = jnp.asarray(RNG.normal(size=(30, 5)))
B = A @ jnp.array([1.0, -2.0, 0.0, 0.0, 0.5]) + 0.1 * jnp.asarray(RNG.normal(size=30))


# ----------------------------------------------------------------------------- optim
def _l1_fit(p, adjoint=None, max_iter=5000):
    lam, shift = p[0], p[1]
    f = lambda w: 0.5 * jnp.sum((A @ w - B - shift) ** 2)  # noqa: E731  closes over shift
    res = optim.proximal_gradient(f, lambda v, t: convex.soft_threshold(v, t * lam),
                                  jnp.zeros(5), tol=1e-12, max_iter=max_iter, adjoint=adjoint)
    return jnp.sum(res.x ** 2) + res.value


def test_optim_implicit_equals_fd_unrolled_jit_vmap_and_nan_when_not_converged():
    p = jnp.array([3.0, 0.2])
    g = jax.grad(_l1_fit)(p)
    check_gradient(_l1_fit, lambda _: g, p, **FD)
    assert_close(g, jax.grad(lambda p: _l1_fit(p, Unrolled(), 400))(p), rtol=1e-7)
    assert_close(jax.jit(jax.grad(_l1_fit))(p), g, rtol=1e-10)
    P = jnp.stack([p, p + 0.1])
    assert_close(jax.vmap(jax.grad(_l1_fit))(P)[0], g, rtol=1e-10)
    # gradient descent: the solution's Jacobian w.r.t. a closed-over vector
    def gd(c):
        return optim.gradient_descent(lambda x: jnp.sum((x - c) ** 2) + jnp.sum(x ** 4),
                                      jnp.zeros(3), tol=1e-12).x
    c = jnp.array([1.0, 2.0, 3.0])
    check_jacobian(gd, jax.jacobian(gd), c, **{**FD, "step": 1e-6})
    # not converged (3 steps): the derivative is NaN, never a silent wrong number
    g3 = jax.grad(lambda p: _l1_fit(p, max_iter=3))(p)
    assert np.all(np.isnan(np.asarray(g3)))


# ----------------------------------------------------------------------------- linear
def test_lasso_and_path_gradients():
    def f(p):   # alpha and a shift of y
        return jnp.sum(linear.lasso(A, B + p[1], p[0], tol=1e-14, max_iter=20000).w ** 2)

    p = jnp.array([0.3, 0.1])
    g = jax.grad(f)(p)
    check_gradient(f, lambda _: g, p, **FD)
    gu = jax.grad(lambda p: jnp.sum(linear.lasso(A, B + p[1], p[0], tol=1e-14,
                                                 max_iter=3000, adjoint=Unrolled()).w ** 2))(p)
    assert_close(g, gu, rtol=1e-7)
    # the path's gradient w.r.t. each alpha is that of the single fit
    gp = jax.grad(lambda a: jnp.sum(linear.lasso_path(A, B + 0.1, a, tol=1e-14,
                                                      max_iter=20000).coefs ** 2))(
        jnp.array([0.3, 0.05]))
    assert_close(gp[0], g[0], rtol=1e-7)
    # and w.r.t. the data
    gX = jax.grad(lambda X: jnp.sum(linear.lasso(X, B, 0.3, tol=1e-14, max_iter=20000).w))(A)
    fX = lambda v: jnp.sum(linear.lasso(A.at[0, :2].set(v), B, 0.3, tol=1e-14,  # noqa: E731
                                        max_iter=20000).w)
    check_gradient(fX, lambda _: gX[0, :2], A[0, :2], **FD)


@pytest.mark.parametrize("fit", [linear.ridge_constrained, linear.lasso_constrained])
def test_constrained_gradients(fit):
    def f(p):
        return jnp.sum(fit(A, B * p[1], p[0], tol=1e-13, max_iter=20000).w ** 3)

    p = jnp.array([1.0, 1.2])       # radius active: the constraint binds
    assert bool(fit(A, B * 1.2, 1.0).multiplier > 0)
    g = jax.grad(f)(p)
    check_gradient(f, lambda _: g, p, **FD)
    gu = jax.grad(lambda p: jnp.sum(fit(A, B * p[1], p[0], tol=1e-13, max_iter=3000,
                                        adjoint=Unrolled()).w ** 3))(p)
    assert_close(g, gu, rtol=1e-6)


def test_least_squares_closed_form_gradient():
    f = lambda v: jnp.sum(linear.least_squares(A, B.at[:2].set(v)) ** 2)  # noqa: E731
    check_gradient(f, jax.grad(f), B[:2], **FD)


# ----------------------------------------------------------------------------- svm
XS = jnp.asarray(RNG.normal(size=(40, 2)))
YS = jnp.where(XS[:, 0] + 0.5 * XS[:, 1] + 0.5 * jnp.asarray(RNG.normal(size=40)) > 0, 1, -1)
XT = jnp.asarray(RNG.normal(size=(10, 2)))


def _svm_loss(p, fit=svm.fit, X=XS, **kw):
    C, gamma = jnp.exp(p[0]), jnp.exp(p[1])
    m = fit(X, YS, C=C, kernel=svm.RBF(gamma), tol=1e-12, max_iter=100_000, **kw)
    return jnp.sum(jnp.tanh(svm.decision_function(m, XT)))   # α and b both enter


def test_svm_gradient_in_C_and_gamma_smo_pgd_fd_vmap_jit():
    p = jnp.array([0.0, -1.0])
    g = jax.grad(_svm_loss)(p)
    check_gradient(_svm_loss, lambda _: g, p, **FD)
    assert_close(jax.grad(lambda p: _svm_loss(p, svm.fit_pgd))(p), g, rtol=1e-6)
    G = jax.jit(jax.vmap(jax.grad(_svm_loss)))(jnp.stack([p, p + 0.1]))
    assert_close(G[0], g, rtol=1e-8)
    check_gradient(_svm_loss, lambda _: G[1], p + 0.1, **FD)
    # not converged: NaN
    # (RBF: 3 pair updates; with Linear() max_iter counts shrinking rounds of up to 1000)
    g3 = jax.grad(lambda p: jnp.sum(svm.fit(XS, YS, C=jnp.exp(p[0]), kernel=svm.RBF(0.5),
                                            max_iter=3).alpha))(p)
    assert np.isnan(np.asarray(g3[0]))


def test_svm_gradient_in_X_and_implicit_equals_unrolled():
    m = svm.fit(XS, YS, C=1.0, kernel=svm.Linear(), tol=1e-12)
    a = np.asarray(m.alpha)
    idx = jnp.asarray(np.where((a > 1e-6) & (a < 1 - 1e-6))[0][:3])   # free support vectors
    assert idx.shape[0] == 3

    def f(v):
        m = svm.fit(XS.at[idx, 0].set(v), YS, C=1.0, kernel=svm.Linear(), tol=1e-12)
        return jnp.sum(jnp.tanh(svm.decision_function(m, XT)))

    v = XS[idx, 0]
    g = jax.grad(f)(v)
    check_gradient(f, lambda _: g, v, **FD)
    def fu(v):
        m = svm.fit(XS.at[idx, 0].set(v), YS, C=1.0, kernel=svm.Linear(), tol=1e-12,
                    max_iter=400, adjoint=Unrolled())
        return jnp.sum(jnp.tanh(svm.decision_function(m, XT)))
    assert bool(svm.fit(XS, YS, C=1.0, tol=1e-12, max_iter=400, adjoint=Unrolled()).converged)
    assert_close(jax.grad(fu)(v), g, rtol=1e-6)


def test_one_vs_rest_gradient_in_C():
    labels = jnp.asarray((XS[:, 0] > 0).astype(int) + (XS[:, 1] > 0.5).astype(int))

    def f(p):
        m = svm.fit_one_vs_rest(XS, labels, 3, C=jnp.exp(p[0]), kernel=svm.RBF(0.5), tol=1e-12)
        return jnp.sum(jnp.tanh(svm.decision_function_one_vs_rest(m, XT)))

    p = jnp.array([0.5])
    check_gradient(f, jax.grad(f), p, **FD)
