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
