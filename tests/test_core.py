"""jaxml._core.loop: while-loop and unrolled scan agree; grad goes through the unrolled fit."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxml._core import iterate, iterate_unrolled, run_loop


def _newton_sqrt_step(a):
    """Newton for x^2 = a: x <- (x + a/x)/2; error |x^2 - a|, value x."""
    def step(x):
        x_new = 0.5 * (x + a / x)
        return x_new, jnp.abs(x_new * x_new - a), x_new
    return step


def test_iterate_and_unrolled_agree():
    a = jnp.asarray(7.0)
    r1 = iterate(_newton_sqrt_step(a), jnp.asarray(1.0), tol=1e-12, max_iter=50)
    r2 = iterate_unrolled(_newton_sqrt_step(a), jnp.asarray(1.0), tol=1e-12, max_iter=50)
    np.testing.assert_allclose(r1.state, np.sqrt(7.0), rtol=1e-14)
    assert int(r1.n_iter) == int(r2.n_iter) < 50
    assert bool(r1.converged) and bool(r2.converged)
    np.testing.assert_allclose(r1.state, r2.state, rtol=0)
    np.testing.assert_allclose(r1.trace, r2.trace, rtol=0)   # NaN-padded identically
    assert np.isnan(np.asarray(r1.trace)[int(r1.n_iter):]).all()


def test_bounded_and_not_converged():
    step = lambda x: (x + 1.0, jnp.asarray(1.0), x)  # noqa: E731  never converges
    r = run_loop(step, jnp.asarray(0.0), tol=1e-3, max_iter=7)
    assert int(r.n_iter) == 7 and not bool(r.converged) and float(r.state) == 7.0


def test_grad_through_unrolled_loop():
    """d sqrt(a)/da = 1/(2 sqrt(a)) through Newton iterations."""
    g = jax.grad(lambda a: run_loop(_newton_sqrt_step(a), jnp.asarray(1.0), tol=1e-13,
                                    max_iter=40, unroll=True).state)(jnp.asarray(7.0))
    np.testing.assert_allclose(g, 0.5 / np.sqrt(7.0), rtol=1e-10)


def test_vmap_over_loop():
    a = jnp.array([2.0, 9.0, 30.0])
    r = jax.vmap(lambda a: iterate(_newton_sqrt_step(a), jnp.asarray(1.0), tol=1e-12,
                                   max_iter=50))(a)
    np.testing.assert_allclose(r.state, np.sqrt(a), rtol=1e-14)
    assert r.converged.all()


def test_blocked_gram_equals_numpy_scatter():
    from jaxml._core import blocked_gram
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 7)) * 3.0 + 50.0       # far from the origin: centring matters
    c = X.mean(0)
    ref = (X - c).T @ (X - c)
    for block in (64, 300, 1000, 5000):              # remainders, one block, block > n
        G = blocked_gram(jnp.asarray(X), center=jnp.asarray(c), block=block)
        np.testing.assert_allclose(G, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
        np.testing.assert_array_equal(G, np.asarray(G).T)
    np.testing.assert_allclose(blocked_gram(jnp.asarray(X), block=128), X.T @ X, rtol=1e-12)
    # float32 products summed in float64: float32-level error, float64 result
    G32 = blocked_gram(jnp.asarray(X), center=jnp.asarray(c), compute_dtype=jnp.float32)
    assert G32.dtype == jnp.float64
    np.testing.assert_allclose(G32, ref, atol=1e-5 * np.abs(ref).max())
    # vmap over datasets
    Xs = rng.normal(size=(3, 200, 4))
    Gs = jax.vmap(lambda x: blocked_gram(x, center=x.mean(0), block=64))(jnp.asarray(Xs))
    for G, x in zip(Gs, Xs):
        xc = x - x.mean(0)
        np.testing.assert_allclose(G, xc.T @ xc, rtol=1e-12)
