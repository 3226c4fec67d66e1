"""jaxml.testing: the checks catch what they claim and pass correct inputs at the stated
false-alarm rate; the strategies keep their promises."""

import importlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given
from hypothesis import strategies as hst

import jaxml
from jaxml import testing as jt
from jaxml.testing import strategies as jst

N_SEEDS = 40


def _binomial_bound(n, p, level=1e-3):
    """The largest false-alarm count that a rate ≤ p reaches with probability ≥ level."""
    return int(st.binom.isf(level, n, p))


# ------------------------------------------------------------------------ derivatives

def loss(p):
    """A pytree loss with a matrix leaf, a vector leaf and coupling between them."""
    w, b = p["w"], p["b"]
    return (jnp.sum(jnp.tanh(w) ** 2) * b[0] + jnp.sum(jnp.sin(b) * jnp.arange(1.0, 3.0))
            + w[0, 1] * b[1])


def loss_grad(p):
    w, b = p["w"], p["b"]
    th = jnp.tanh(w)
    gw = 2 * th * (1 - th ** 2) * b[0]
    gw = gw.at[0, 1].add(b[1])
    gb = jnp.cos(b) * jnp.arange(1.0, 3.0)
    gb = gb.at[0].add(jnp.sum(th ** 2)).at[1].add(w[0, 1])
    return {"w": gw, "b": gb}


def _point(dtype):
    return {"w": jnp.asarray([[0.3, -0.7, 1.1], [0.05, 0.9, -1.4]], dtype),
            "b": jnp.asarray([1.3, -0.4], dtype)}


BUGS = {
    "dropped_factor": lambda g: {"w": g["w"].at[1, 2].divide(2.0), "b": g["b"]},
    "sign": lambda g: {"w": g["w"], "b": g["b"].at[0].multiply(-1.0)},
    "wrong_coordinate": lambda g: {"w": g["w"].at[0, 1].set(g["w"][1, 0]), "b": g["b"]},
}
WHERE = {"dropped_factor": "x['w'][1, 2]", "sign": "x['b'][0]", "wrong_coordinate": "x['w'][0, 1]"}


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_correct_gradient_passes(dtype):
    rep = jt.check_gradient(loss, loss_grad, _point(dtype))
    assert rep.autodiff_ratio <= 1 and rep.fd_ratio <= 1 and rep.n_checked == 8
    # the float32 check really is at float32 tolerance, the float64 one much tighter
    assert rep.fd_error < (1e-2 if dtype == jnp.float32 else 1e-8)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@pytest.mark.parametrize("bug", list(BUGS))
def test_wrong_gradient_is_flagged(bug, dtype):
    wrong = lambda p: BUGS[bug](loss_grad(p))  # noqa: E731
    x = _point(dtype)
    with pytest.raises(AssertionError, match="jax.grad") as e:
        jt.check_gradient(loss, wrong, x)
    assert WHERE[bug] in str(e.value)
    # finite differences alone catch it too (for f that JAX cannot differentiate)
    with pytest.raises(AssertionError, match="finite differences") as e:
        jt.check_gradient(loss, wrong, x, autodiff=False)
    assert WHERE[bug] in str(e.value)


def test_small_coordinate_error_flagged_next_to_large_ones():
    """Per-entry tolerances: a 1e-4 relative error on a coordinate 1e6 times smaller than
    its neighbour is still caught in float64."""
    f = lambda x: 1e6 * x[0] ** 2 + x[1] ** 2  # noqa: E731
    g = lambda x: jnp.stack([2e6 * x[0], 2 * x[1] * (1 + 1e-4)])  # noqa: E731
    with pytest.raises(AssertionError, match=r"x\[1\]"):
        jt.check_gradient(f, g, jnp.array([1.0, 1.0]))


def test_finite_differences_catch_a_wrong_custom_jvp():
    """When f's own autodiff rule is wrong, hand == autodiff but finite differences disagree,
    and the report shows all three values."""

    @jax.custom_jvp
    def f(x):
        return jnp.sum(jnp.exp(x))

    @f.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), jnp.sum(2 * jnp.exp(x) * t)       # a factor 2 too many

    with pytest.raises(AssertionError, match="finite differences") as e:
        jt.check_gradient(f, jax.grad(f), jnp.array([0.1, -0.3]))
    assert "jax.grad =" in str(e.value)


def test_gradient_structure_mismatch_and_bad_arguments():
    x = _point(jnp.float64)
    with pytest.raises(AssertionError, match="structure"):
        jt.check_gradient(loss, lambda p: p["w"], x)
    with pytest.raises(TypeError, match="scalar"):
        jt.check_gradient(lambda p: p["b"], loss_grad, x)
    with pytest.raises(TypeError, match="grad_f"):
        jt.check_gradient(loss, None, x)
    with pytest.raises(TypeError, match="floating"):
        jt.check_gradient(loss, loss_grad, {"w": jnp.ones((2, 3), int), "b": x["b"]})
    with pytest.raises(ValueError, match="rtol"):
        jt.check_gradient(loss, loss_grad, x, rtol=-1.0)


def test_gradient_subset_of_coordinates():
    x = jnp.linspace(-1.0, 1.0, 300)
    f = lambda v: jnp.sum(jnp.cos(v) * v)  # noqa: E731
    g = lambda v: jnp.cos(v) - v * jnp.sin(v)  # noqa: E731
    rep = jt.check_gradient(f, g, x, max_coordinates=40,
                            subset_key=jax.random.key(3))
    assert rep.n_checked == 40
    with pytest.raises(AssertionError, match=r"x\[7\]"):       # autodiff still sees all
        jt.check_gradient(f, lambda v: g(v).at[7].add(1.0), x, max_coordinates=40)



def test_richardson_term_can_be_dropped():
    """Central differences of Σx³ with step h are 3x² + h² exactly: the Richardson estimate
    |Dₕ − D₂ₕ| = 3h² covers that truncation error by default; richardson=False holds the
    difference to fd_rtol alone, so the same step then fails (and a tight enough step passes)."""
    x = jnp.array([1.0, -0.5])
    f = lambda v: jnp.sum(v ** 3)  # noqa: E731
    g = lambda v: 3 * v ** 2  # noqa: E731
    jt.check_gradient(f, g, x, step=0.1, autodiff=False)
    with pytest.raises(AssertionError, match="finite differences"):
        jt.check_gradient(f, g, x, step=0.1, autodiff=False, richardson=False)
    jt.check_gradient(f, g, x, step=1e-3, autodiff=False, fd_rtol=1e-5, richardson=False)
    J = lambda v: jnp.diag(3 * v ** 2)  # noqa: E731
    jt.check_jacobian(lambda v: v ** 3, J, x, step=0.1, autodiff=False)
    with pytest.raises(AssertionError, match="finite differences"):
        jt.check_jacobian(lambda v: v ** 3, J, x, step=0.1, autodiff=False, richardson=False)
    jvp = lambda v, t: 3 * v ** 2 * t  # noqa: E731
    jt.check_jvp(lambda v: v ** 3, jvp, x, jnp.ones(2), step=0.1, autodiff=False)
    with pytest.raises(AssertionError, match="finite differences"):
        jt.check_jvp(lambda v: v ** 3, jvp, x, jnp.ones(2), step=0.1, autodiff=False,
                     richardson=False)


def test_unbatched_finite_differences():
    """batched=False calls f once per point: an f that cannot be vmapped (NumPy inside) is
    checked, with the same differences as the vmapped evaluation of a traceable f."""
    x = jnp.array([0.3, -1.1, 2.0])
    host = lambda v: jnp.asarray(np.sum(np.sin(np.asarray(v)) * np.arange(1, 4)))  # noqa: E731
    grad = lambda v: jnp.cos(v) * jnp.arange(1, 4)  # noqa: E731
    with pytest.raises(Exception):
        jt.check_gradient(host, grad, x, autodiff=False)
    rep = jt.check_gradient(host, grad, x, autodiff=False, batched=False)
    traced = lambda v: jnp.sum(jnp.sin(v) * jnp.arange(1, 4))  # noqa: E731
    ref = jt.check_gradient(traced, grad, x, autodiff=False)
    assert rep.n_checked == ref.n_checked == 3 and max(rep.fd_error, ref.fd_error) < 1e-9
    with pytest.raises(AssertionError, match=r"x\[2\]"):
        jt.check_gradient(host, lambda v: grad(v).at[2].multiply(2.0), x, autodiff=False,
                          batched=False)
    jt.check_jvp(host, lambda v, t: jnp.vdot(grad(v), t), x, autodiff=False, batched=False)
    jt.check_jacobian(lambda v: jnp.asarray(np.sin(np.asarray(v))), lambda v: jnp.diag(jnp.cos(v)),
                      x, autodiff=False, batched=False)

def vec_fn(p):
    return {"a": jnp.stack([jnp.sum(p["u"] ** 2), p["u"][0] * p["v"]]), "s": jnp.sin(p["v"])}


def vec_jac(p):
    u, v = p["u"], p["v"]
    a_u = jnp.stack([2 * u, jnp.zeros_like(u).at[0].set(v)])
    a_v = jnp.stack([0.0, u[0]])
    return {"a": {"u": a_u, "v": a_v}, "s": {"u": jnp.zeros_like(u), "v": jnp.cos(v)}}


def test_jacobian_and_jvp():
    x = {"u": jnp.array([0.4, -1.2, 2.0]), "v": jnp.array(0.7)}
    assert jt.check_jacobian(vec_fn, vec_jac, x).autodiff_error < 1e-12

    def bad(p):
        return {**vec_jac(p), "s": {"u": vec_jac(p)["s"]["u"], "v": -jnp.cos(p["v"])}}

    with pytest.raises(AssertionError, match=r"∂f\(x\)\['s'\]/∂x\['v'\]"):
        jt.check_jacobian(vec_fn, bad, x)

    def jvp(p, t):
        J = vec_jac(p)
        return {"a": J["a"]["u"] @ t["u"] + J["a"]["v"] * t["v"], "s": J["s"]["v"] * t["v"]}

    rep = jt.check_jvp(vec_fn, jvp, x, n_directions=4)
    assert rep.n_checked == 4 * 3
    wrong = lambda p, t: {**jvp(p, t), "a": jvp(p, t)["a"] * jnp.array([1.0, 0.5])}  # noqa: E731
    with pytest.raises(AssertionError, match=r"f\(x\)\['a'\]\[1\] along direction"):
        jt.check_jvp(vec_fn, wrong, x, v={"u": jnp.ones(3), "v": jnp.array(1.0)})
    jt.check_jacobian(vec_fn, vec_jac, jax.tree.map(lambda a: a.astype(jnp.float32), x))


# ------------------------------------------------------------------------ estimators

MU = jnp.array([0.5, -1.0, 2.0])


def square_estimator(key):
    """Unbiased for E(μ + ε)² = μ² + 1 (a pytree: the vector and its sum)."""
    z = MU + jax.random.normal(key, (3,))
    return {"sq": z ** 2, "total": jnp.sum(z ** 2)}


EXACT = {"sq": MU ** 2 + 1, "total": jnp.sum(MU ** 2 + 1)}


def shifted_estimator(key):
    out = square_estimator(key)
    return {"sq": out["sq"].at[1].add(0.3), "total": out["total"]}


def exponential_estimator(key):
    """A skewed, unbiased estimator of 1/λ = (1, 0.5)."""
    return jax.random.exponential(key, (2,)) / jnp.array([1.0, 2.0])


def test_biased_estimator_is_flagged():
    with pytest.raises(AssertionError, match=r"estimate\['sq'\]\[1\]") as e:
        jt.check_unbiased(jax.random.key(0), shifted_estimator, EXACT, 2000)
    assert "z =" in str(e.value)


def test_unbiased_estimators_pass_at_the_stated_rate():
    alpha = 0.05
    fails = {"normal": 0, "exponential": 0}
    for seed in range(N_SEEDS):
        for name, est, exact in [("normal", square_estimator, EXACT),
                                 ("exponential", exponential_estimator, jnp.array([1.0, 0.5]))]:
            try:
                rep = jt.check_unbiased(jax.random.key(seed), est, exact, 400, alpha=alpha)
                assert rep.max_abs_z <= rep.threshold
            except AssertionError:
                fails[name] += 1
    bound = _binomial_bound(N_SEEDS, alpha)
    assert max(fails.values()) <= bound, (fails, bound)
    # and the biased one is caught at every seed at this size
    for seed in range(5):
        with pytest.raises(AssertionError):
            jt.check_unbiased(jax.random.key(seed), shifted_estimator, EXACT, 2000,
                              alpha=alpha)


def test_unbiased_report_and_edge_cases():
    rep = jt.check_unbiased(jax.random.key(1), square_estimator, EXACT, 500, batch_size=100)
    assert rep.n_draws == 500 and set(rep.mean) == {"sq", "total"}
    np.testing.assert_allclose(rep.mean["sq"], EXACT["sq"], atol=5 * rep.stderr["sq"].max())
    # a zero-variance estimator that equals the exact value passes
    exact = jnp.array([0.1, 1e8])
    jt.check_unbiased(jax.random.key(0), lambda k: exact * (1 + 0 * jax.random.normal(k)),
                      exact, 10)
    with pytest.raises(AssertionError, match="non-finite"):
        jt.check_unbiased(jax.random.key(0), lambda k: jnp.log(jax.random.normal(k, (2,))),
                          jnp.zeros(2), 50)
    with pytest.raises(ValueError, match="alpha"):
        jt.check_unbiased(jax.random.key(0), square_estimator, EXACT, 100, alpha=1.5)
    with pytest.raises(ValueError, match="structure"):
        jt.check_unbiased(jax.random.key(0), square_estimator, EXACT["sq"], 400)  # cached



def test_check_mean_on_draws_held():
    """check_mean is check_unbiased's test on draws from any source: the same draws give the
    same report; a shifted mean, ragged leaves and too few draws are flagged."""
    key = jax.random.key(3)
    draws = jt.draw(key, square_estimator, 600)
    rep = jt.check_mean(draws, EXACT)
    ref = jt.check_unbiased(key, square_estimator, EXACT, 600)
    assert rep.max_abs_z == ref.max_abs_z and rep.threshold == ref.threshold
    assert rep.n_draws == 600
    # NumPy draws of a scalar: the threshold follows alpha (one coordinate)
    x = np.random.default_rng(0).exponential(2.0, 1000)
    rep = jt.check_mean(x, 2.0, alpha=1e-4)
    assert rep.threshold == pytest.approx(3.8906, abs=1e-3)
    with pytest.raises(AssertionError, match=r"(?s)check_mean: the mean of the draws.*z ="):
        jt.check_mean(x + 0.5, 2.0)
    with pytest.raises(AssertionError, match=r"(?s)samples.*estimate\['sq'\]\[1\]"):
        jt.check_mean(jt.draw(key, shifted_estimator, 2000), EXACT, label="samples")
    with pytest.raises(ValueError, match="same leading length"):
        jt.check_mean({"a": np.zeros(5), "b": np.zeros(6)}, {"a": 0.0, "b": 0.0})
    with pytest.raises(ValueError, match="at least 2"):
        jt.check_mean(np.zeros((1, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="leading"):
        jt.check_mean(np.float64(1.0), 1.0)
    with pytest.raises(ValueError, match="alpha"):
        jt.check_mean(x, 2.0, alpha=0.0)

def antithetic_estimator(key):
    e = jax.random.normal(key, (3,))
    return 0.5 * ((MU + e) ** 2 + (MU - e) ** 2)


def plain_estimator(key):
    return (MU + jax.random.normal(key, (3,))) ** 2


def plain_copy(key):          # the same distribution, another function object
    return (MU + jax.random.normal(key, (3,))) ** 2


def test_variance_reduction():
    key = jax.random.key(0)
    rep = jt.check_variance_reduction(key, antithetic_estimator, plain_estimator, 500)
    assert rep.ratio < rep.ratio_upper < 1
    # antithetic pairs remove the odd part of the noise: var ratio Σ2 / Σ(4μ² + 2) ≈ 0.2
    assert 0.1 < rep.ratio < 0.35
    jt.check_variance_reduction(key, antithetic_estimator, plain_estimator, 500, ratio=0.5)
    with pytest.raises(AssertionError, match="cannot show"):
        jt.check_variance_reduction(key, plain_estimator, antithetic_estimator, 500)
    with pytest.raises(AssertionError, match="cannot show"):   # identical draws: no reduction
        jt.check_variance_reduction(key, plain_estimator, plain_copy, 500)


def test_variance_reduction_false_alarm_rate():
    """Equal variances, independent draws: the claim 'A has lower variance' passes at most
    at rate alpha."""
    alpha = 0.05
    passes = 0
    for seed in range(N_SEEDS):
        try:
            jt.check_variance_reduction(jax.random.key(seed), plain_estimator, plain_copy, 300,
                                        alpha=alpha, paired=False)
            passes += 1
        except AssertionError:
            pass
    assert passes <= _binomial_bound(N_SEEDS, alpha)


# ------------------------------------------------------------------------ optimality

def _box_qp():
    """min ½‖x − c‖² s.t. x ≤ 1: x* = min(c, 1), multipliers (c − 1)₊."""
    c = jnp.array([2.0, 0.5, 1.5])
    f = lambda x: 0.5 * jnp.sum((x - c) ** 2)  # noqa: E731
    return f, (lambda x: x - 1.0), jnp.minimum(c, 1.0), jnp.maximum(c - 1.0, 0.0)


def test_check_kkt():
    f, ineq, x_star, lam = _box_qp()
    res = jt.check_kkt(f, x_star, ineq=ineq)
    np.testing.assert_allclose(res.lam, lam, atol=1e-12)
    jt.check_kkt(f, x_star, ineq=ineq, lam=lam)
    with pytest.raises(AssertionError, match="stationarity"):
        jt.check_kkt(f, x_star.at[1].add(0.1), ineq=ineq)
    with pytest.raises(AssertionError, match="primal"):
        jt.check_kkt(f, x_star + 0.01, ineq=ineq, lam=lam, tol=1e-3)
    with pytest.raises(AssertionError, match="dual"):
        jt.check_kkt(lambda x: -f(x), x_star, ineq=ineq, lam=-lam, tol=1e-6)
    # equality-constrained: min ‖x‖² s.t. Σx = 1 at x = 1/n
    jt.check_kkt(lambda x: jnp.sum(x ** 2), jnp.full(4, 0.25), eq=lambda x: jnp.sum(x) - 1.0)


def newton_sqrt_step(state, a):
    """Newton's step for √a as a jaxml-style step: (state, info)."""
    new = 0.5 * (state + a / state)
    return new, jaxml._core.StepInfo(error=jnp.abs(new - state), value=new)


def test_check_fixed_point():
    a = jnp.array([2.0, 9.0])
    rep = jt.check_fixed_point(newton_sqrt_step, jnp.sqrt(a), a)
    assert rep.residual <= rep.tol
    with pytest.raises(AssertionError, match=r"state\[0\]"):
        jt.check_fixed_point(newton_sqrt_step, jnp.array([1.4, 3.0]), a)
    # a plain map, a pytree state, and a counter excluded with select
    step = lambda s: {"x": jnp.cos(s["x"]), "n": s["n"] + 1}  # noqa: E731
    x = jnp.array(0.7390851332151607)
    with pytest.raises(AssertionError, match=r"\['n'\]"):
        jt.check_fixed_point(step, {"x": x, "n": jnp.array(3)})
    jt.check_fixed_point(step, {"x": x, "n": jnp.array(3)}, select=lambda s: s["x"])
    x32 = jnp.float32(0.7390851)
    jt.check_fixed_point(lambda s: jnp.cos(s), x32)                 # float32 tolerance


def test_check_monotone():
    tr = jnp.array([-5.0, -3.0, -2.5, -2.5, -2.4, jnp.nan, jnp.nan])
    rep = jt.check_monotone(tr)
    assert int(rep.n_steps) == 5 and float(rep.change) == pytest.approx(2.6)
    with pytest.raises(AssertionError, match="decreases at step 2"):
        jt.check_monotone(tr.at[3].set(-2.6))
    # rounding-level wobble passes, a real drop does not
    jt.check_monotone(tr.at[3].set(-2.5 - 1e-13))
    with pytest.raises(AssertionError, match="increases"):
        jt.check_monotone(tr, increasing=False)
    jt.check_monotone(-tr, increasing=False)
    with pytest.raises(AssertionError, match="after a NaN"):
        jt.check_monotone(tr.at[6].set(0.0))
    with pytest.raises(AssertionError, match="infinite"):
        jt.check_monotone(tr.at[0].set(-jnp.inf))
    # a batch of traces (vmapped fits), each with its own NaN tail, and n_iter
    batch = jnp.stack([tr, jnp.array([1.0, 2.0, 1.5, jnp.nan, jnp.nan, jnp.nan, jnp.nan])])
    with pytest.raises(AssertionError, match=r"trace\[1\] decreases at step 1"):
        jt.check_monotone(batch)
    rep = jt.check_monotone(batch, n_iter=jnp.array([5, 2]))
    assert rep.n_steps.tolist() == [5, 2]
    # float32 traces get float32 tolerance
    jt.check_monotone(jnp.array([1.0, 1.0 - 1e-7, 1.5], jnp.float32))


# ------------------------------------------------------------------------ strategies

@given(jst.matrices((hst.integers(1, 3), hst.integers(1, 6), hst.integers(1, 6)),
                    max_condition=1e3, scale=2.0),
       hst.sampled_from([np.float32, np.float64]))
def test_matrices_condition_number(A, dtype):
    assert A.ndim == 3 and A.dtype == np.float64
    assert np.all(np.linalg.cond(A) <= 1e3)
    np.testing.assert_allclose(np.linalg.norm(A, 2, axis=(-2, -1)), 2.0, rtol=1e-12)


@given(hst.data())
def test_matrices_float32(data):
    A = data.draw(jst.matrices((5, 3), dtype=np.float32, max_condition=100.0))
    assert A.dtype == np.float32 and A.shape == (5, 3)
    assert np.linalg.cond(A.astype(np.float64)) <= 100.0


@given(jst.spd_matrices(hst.integers(1, 6), batch_shape=(2,), max_condition=1e4),
       jst.spd_matrices(4, dtype=np.float32, max_condition=1e3, scale=3.0))
def test_spd_matrices(S, S32):
    for M, kappa in [(S[0], 1e4), (S[1], 1e4), (S32, 1e3)]:
        assert np.array_equal(M, M.T)
        w = np.linalg.eigvalsh(M.astype(np.float64))
        assert w[0] > 0 and w[-1] <= kappa * w[0]
        np.linalg.cholesky(M)                       # positive definite in its own dtype
    assert S32.dtype == np.float32


@given(jst.simplex_points(hst.integers(1, 8), batch_shape=(3,)),
       jst.simplex_points(5, dtype=np.float32, interior=True))
def test_simplex_points(P, p32):
    assert np.all(P >= 0)
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=8 * np.finfo(np.float64).eps)
    assert p32.dtype == np.float32 and np.all(p32 > 0)
    assert abs(p32.astype(np.float64).sum() - 1.0) <= 5 * np.finfo(np.float32).eps


@given(hst.integers(1, 5).flatmap(lambda k: hst.tuples(
    hst.just(k), jst.labels(hst.integers(k, 3 * k + 2), k))))
def test_labels_every_class_present(k_y):
    k, y = k_y
    assert y.dtype == np.int32 and y.ndim == 1 and y.size >= k
    assert set(y.tolist()) == set(range(k))


@given(jst.degenerate_data(hst.integers(2, 10), hst.integers(4, 7), n_constant=hst.integers(0, 2),
                           n_duplicated=hst.integers(0, 1)))
def test_degenerate_data(D):
    X = D.X
    for c in D.constant:
        assert np.all(X[:, c] == X[0, c])
    for c, src in D.duplicates:
        assert c != src and src not in D.constant and np.array_equal(X[:, c], X[:, src])
    if D.duplicates or D.constant:                   # centred data lose rank
        Xc = X - X.mean(0)
        assert np.linalg.matrix_rank(Xc) < X.shape[1]



def test_random_spd():
    """random_spd: exactly symmetric, eigenvalues in [scale/κ, scale], batched, dtype kept,
    a function of the key alone; bad arguments named."""
    S = jt.random_spd(jax.random.key(0), 5, batch_shape=(3,), max_condition=50.0, scale=2.0)
    assert S.shape == (3, 5, 5) and S.dtype == jnp.float64
    S = np.asarray(S)
    np.testing.assert_array_equal(S, np.swapaxes(S, -1, -2))
    w = np.linalg.eigvalsh(S)
    assert np.all(w[:, 0] >= 2.0 / 50.0 * (1 - 1e-12)) and np.all(w[:, -1] <= 2.0 * (1 + 1e-12))
    assert np.all(np.linalg.cond(S) <= 50.0 * (1 + 1e-10))
    assert len({round(float(c), 6) for c in np.linalg.cond(S)}) == 3     # independent draws
    np.testing.assert_array_equal(jt.random_spd(jax.random.key(0), 5, batch_shape=(3,),
                                                max_condition=50.0, scale=2.0), S)
    S32 = jt.random_spd(jax.random.key(1), 4, dtype=jnp.float32, max_condition=10.0)
    assert S32.dtype == jnp.float32
    np.linalg.cholesky(np.asarray(S32))
    assert np.linalg.cond(np.asarray(S32, np.float64)) <= 10.0 * (1 + 1e-5)
    np.testing.assert_allclose(jt.random_spd(jax.random.key(2), 3, max_condition=1.0,
                                             scale=3.0), 3.0 * np.eye(3), atol=1e-12)
    for kw, match in [({"n": 0}, "n must"), ({"max_condition": 0.5}, "max_condition"),
                      ({"scale": -1.0}, "scale"), ({"dtype": jnp.int32}, "dtype")]:
        args = {"n": 3, **kw}
        with pytest.raises((ValueError, TypeError), match=match):
            jt.random_spd(jax.random.key(0), **args)

def test_import_without_hypothesis(monkeypatch):
    for name in [m for m in sys.modules if m == "jaxml.testing" or m.startswith("jaxml.testing.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    monkeypatch.delattr(jaxml, "testing", raising=False)
    mod = importlib.import_module("jaxml.testing")
    assert callable(mod.check_gradient) and callable(mod.check_unbiased)
    with pytest.raises(ImportError, match="pip install hypothesis"):
        mod.strategies  # noqa: B018
    assert "testing" in jaxml.__all__
