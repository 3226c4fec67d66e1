"""jaxml._core.loop: the three adjoints agree with each other and with closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml._core import Direct, Implicit, StepInfo, Unrolled, fixed_point


def _newton_sqrt(x, a):
    """Newton for x² = a: x ← (x + a/x)/2; error |x² − a|, value x."""
    x_new = 0.5 * (x + a / x)
    return x_new, StepInfo(jnp.abs(x_new * x_new - a), x_new)


def _sqrt(a, adjoint, max_iter=50):
    return fixed_point(_newton_sqrt, jnp.asarray(1.0), a, tol=1e-13, max_iter=max_iter,
                       adjoint=adjoint)


def test_direct_and_unrolled_agree():
    r1, r2 = _sqrt(7.0, Direct()), _sqrt(7.0, Unrolled())
    np.testing.assert_allclose(r1.state, np.sqrt(7.0), rtol=1e-14)
    assert int(r1.n_iter) == int(r2.n_iter) < 50
    assert bool(r1.converged) and bool(r2.converged)
    np.testing.assert_allclose(r1.trace, r2.trace, rtol=0)    # NaN-padded identically
    assert np.isnan(np.asarray(r1.trace)[int(r1.n_iter):]).all()


def test_bounded_and_not_converged():
    step = lambda x, _: (x + 1.0, StepInfo(jnp.asarray(1.0), x))  # noqa: E731  never converges
    r = fixed_point(step, jnp.asarray(0.0), tol=1e-3, max_iter=7)
    assert int(r.n_iter) == 7 and not bool(r.converged) and float(r.state) == 7.0


def test_step_must_return_info():
    with pytest.raises(TypeError, match="info.error"):
        fixed_point(lambda x, _: (x, 0.0), jnp.asarray(0.0), tol=0.0, max_iter=3)


@pytest.mark.parametrize("adjoint", [Unrolled(), Implicit()], ids=repr)
def test_grad_equals_closed_form(adjoint):
    """d√a/da = 1/(2√a)."""
    g = jax.grad(lambda a: _sqrt(a, adjoint).state)(7.0)
    np.testing.assert_allclose(g, 0.5 / np.sqrt(7.0), rtol=1e-10)


def test_implicit_jvp_vmap_jit_and_closure():
    _, t = jax.jvp(lambda a: _sqrt(a, Implicit()).state, (7.0,), (1.0,))
    np.testing.assert_allclose(t, 0.5 / np.sqrt(7.0), rtol=1e-10)
    a = jnp.array([2.0, 9.0, 30.0])
    g = jax.vmap(jax.grad(lambda a: _sqrt(a, Implicit()).state))(a)
    np.testing.assert_allclose(g, 0.5 / np.sqrt(a), rtol=1e-10)
    g = jax.jit(jax.grad(lambda a: _sqrt(a, Implicit()).state))(7.0)
    np.testing.assert_allclose(g, 0.5 / np.sqrt(7.0), rtol=1e-10)

    def closed_over(a):          # the data reaches the step through a closure, not ``args``
        step = lambda x, _: _newton_sqrt(x, a)  # noqa: E731
        return fixed_point(step, jnp.asarray(1.0), tol=1e-13, max_iter=50,
                           adjoint=Implicit()).state
    np.testing.assert_allclose(jax.grad(closed_over)(7.0), 0.5 / np.sqrt(7.0), rtol=1e-10)


def test_implicit_linear_fixed_point_with_integer_state():
    """x = Ax + b: ∂(1ᵀx*)/∂b = (I − A)⁻ᵀ1; an integer counter in the state is left alone."""
    A = jnp.array([[0.2, 0.1, 0.0], [0.05, 0.3, 0.1], [0.0, 0.2, 0.4]])

    def step(s, b):
        x, k = s
        x_new = A @ x + b
        return (x_new, k + 1), StepInfo(jnp.max(jnp.abs(x_new - x)), jnp.sum(x_new))

    def total(b, adjoint):
        return fixed_point(step, (jnp.zeros(3), jnp.int32(0)), b, tol=1e-14, max_iter=300,
                           adjoint=adjoint).state[0].sum()

    want = np.linalg.solve((np.eye(3) - np.asarray(A)).T, np.ones(3))
    b = jnp.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(jax.grad(total)(b, Implicit()), want, rtol=1e-10)
    np.testing.assert_allclose(jax.grad(total)(b, Unrolled()), want, rtol=1e-10)


def test_implicit_gradient_is_nan_when_not_converged():
    g = jax.grad(lambda a: _sqrt(a, Implicit(), max_iter=2).state)(7.0)
    assert np.isnan(g)
    _, t = jax.jvp(lambda a: _sqrt(a, Implicit(), max_iter=2).state, (7.0,), (1.0,))
    assert np.isnan(t)


def test_implicit_memory_does_not_grow_with_max_iter():
    """Compiled temporaries of grad: flat in max_iter for Implicit, growing for Unrolled."""
    x0 = jnp.zeros(64)
    b = jnp.linspace(0.0, 1.0, 64)

    def step(x, b):
        x_new = 0.5 * jnp.tanh(x) + b
        return x_new, StepInfo(jnp.max(jnp.abs(x_new - x)), jnp.sum(x_new))

    def temp_bytes(adjoint, max_iter):
        f = jax.grad(lambda b: fixed_point(step, x0, b, tol=1e-12, max_iter=max_iter,
                                           adjoint=adjoint).state.sum())
        mem = jax.jit(f).lower(b).compile().memory_analysis()
        return mem.temp_size_in_bytes

    imp = [temp_bytes(Implicit(), m) for m in (100, 1000)]
    unr = [temp_bytes(Unrolled(), m) for m in (100, 1000)]
    assert imp[1] <= imp[0] + 4096
    assert unr[1] > unr[0] + 100 * 64 * 8


def test_implicit_leaves_without_tangent():
    """A state leaf that does not depend on the differentiated input (its tangent is a
    symbolic zero) must not break the transpose: grad w.r.t. b only, a fixed by a0 only."""
    def step(s, theta):
        a0, b0 = theta
        a, b = s
        return (0.5 * a + a0, 0.5 * b + b0 * a), StepInfo(jnp.abs(0.5 * a + a0 - a), a)

    def out(b0):
        res = fixed_point(step, (jnp.asarray(0.0), jnp.asarray(0.0)), (2.0, b0), tol=1e-14,
                          max_iter=200, adjoint=Implicit())
        return res.state[1]

    # fixed point: a = 2 a0 = 4, b = 2 b0 a = 8 b0
    np.testing.assert_allclose(jax.grad(out)(1.5), 8.0, rtol=1e-10)


def test_implicit_derivative_is_zero_not_nan_where_the_fit_ignores_theta():
    """A fitted part that does not depend on θ has derivative 0 (the adjoint system's
    right-hand side is 0, which GMRES alone would turn into NaN)."""
    def step(s, a):
        x, y = s
        x_new, y_new = 0.5 * (x + a / x), 0.5 * y + 1.0     # y* = 2 whatever a is
        return (x_new, y_new), StepInfo(jnp.abs(x_new * x_new - a) + jnp.abs(y_new - y), x_new)

    def f(a, pick):
        r = fixed_point(step, (jnp.asarray(1.0), jnp.asarray(0.0)), a, tol=1e-13,
                        max_iter=80, adjoint=Implicit())
        return r.state[pick]

    assert float(jax.grad(f)(7.0, 1)) == 0.0
    np.testing.assert_allclose(jax.grad(f)(7.0, 0), 0.5 / np.sqrt(7.0), rtol=1e-10)


_A = np.array([[0.3, -0.2, 0.1], [0.0, 0.4, -0.3], [0.2, 0.1, -0.1]])


def _softmax_fixed_point(theta, dtype=jnp.float64, adjoint=Implicit()):
    """x = softmax(A x + θ) (a contraction: ‖A‖ small); Σx = 1 whatever θ is."""
    A = jnp.asarray(_A, dtype)

    def step(x, th):
        x_new = jax.nn.softmax(A @ x + th)
        return x_new, StepInfo(jnp.max(jnp.abs(x_new - x)), x_new[0])

    return fixed_point(step, jnp.full(3, 1 / 3, dtype), theta, max_iter=200,
                       tol=1e-14 if dtype == jnp.float64 else 1e-6, adjoint=adjoint).state


def _softmax_fixed_point_jacobian(theta):
    """dx*/dθ = (I − S A)⁻¹ S, S = diag(x*) − x*x*ᵀ the softmax Jacobian at x*."""
    x = np.full(3, 1 / 3)
    for _ in range(200):
        z = _A @ x + np.asarray(theta, float)
        x = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    S = np.diag(x) - np.outer(x, x)
    return np.linalg.solve(np.eye(3) - S @ _A, S)


def test_implicit_gradient_is_scale_free_and_zero_where_the_quantity_is_normalised():
    """The adjoint solve is linear in its right-hand side: a cotangent of size 1e-30 gives
    1e-30 times the derivative (JAX's GMRES alone takes any residual under machine ε, in
    absolute terms, for zero and returned x = 0: NaN after the residual check), and the
    derivative of Σx of a normalised x (true derivative 0, a right-hand side of rounding
    noise) is 0, not NaN."""
    theta = jnp.array([0.5, -1.0, 0.2])
    ref = _softmax_fixed_point_jacobian(theta)[0]
    g1 = jax.grad(lambda t: _softmax_fixed_point(t)[0])(theta)
    np.testing.assert_allclose(g1, ref, rtol=1e-9)
    g_tiny = jax.grad(lambda t: 1e-30 * _softmax_fixed_point(t)[0])(theta)
    np.testing.assert_allclose(g_tiny, 1e-30 * np.asarray(ref), rtol=1e-9)
    g_sum = jax.grad(lambda t: jnp.sum(_softmax_fixed_point(t)))(theta)
    np.testing.assert_allclose(g_sum, 0.0, atol=1e-14)


def test_implicit_gradient_in_float32():
    """float32 fits get a finite derivative: the adjoint tolerance is floored at what a
    float32 solve can reach (it was NaN for every float32 fit at the 1e-10 default)."""
    theta = jnp.array([0.5, -1.0, 0.2], jnp.float32)
    g = jax.grad(lambda t: _softmax_fixed_point(t, jnp.float32)[0])(theta)
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(g, _softmax_fixed_point_jacobian(theta)[0], rtol=1e-4,
                               atol=1e-6)


def test_implicit_gradient_is_nan_when_the_adjoint_solve_does_not_converge():
    """One GMRES restart of one vector cannot solve a 3×3 system to 1e-10: NaN, not a
    silently inexact derivative; the default options solve it."""
    theta = jnp.array([0.5, -1.0, 0.2])

    def f(t, adjoint):
        return _softmax_fixed_point(t, adjoint=adjoint)[0]

    assert np.isnan(jax.grad(f)(theta, Implicit(max_iter=1, restart=1))).all()
    np.testing.assert_allclose(jax.grad(f)(theta, Implicit()),
                               _softmax_fixed_point_jacobian(theta)[0], rtol=1e-9)
