"""jaxml.convex: norms, projections (feasible, idempotent, obtuse angle, non-expansive,
equal to scipy's SLSQP on small cases), soft threshold, separating hyperplane."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

from jaxml import convex as cx

D = 5
P_VEC = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
Y_PM = np.array([1.0, -1.0, 1.0, 1.0, -1.0])
LOW = np.array([-1.0, 0.0, -0.5, -2.0, 0.0])
UP = np.array([1.0, 2.0, 0.5, 0.0, 1.5])

# name -> (projection, feasibility residual (<= 0 means feasible), scipy constraints, bounds)
SETS = {
    "halfspace": (lambda x: cx.project_halfspace(x, P_VEC, 0.7),
                  lambda z: z @ P_VEC - 0.7,
                  [{"type": "ineq", "fun": lambda z: 0.7 - z @ P_VEC}], None),
    "hyperplane": (lambda x: cx.project_hyperplane(x, P_VEC, 0.7),
                   lambda z: abs(z @ P_VEC - 0.7),
                   [{"type": "eq", "fun": lambda z: z @ P_VEC - 0.7}], None),
    "l1_ball": (lambda x: cx.project_l1_ball(x, 1.3),
                lambda z: np.abs(z).sum() - 1.3,
                # |z|_1 <= r as 2^d linear constraints is too many; use the split z = u - v.
                None, None),
    "l2_ball": (lambda x: cx.project_l2_ball(x, 1.3),
                lambda z: np.linalg.norm(z) - 1.3,
                [{"type": "ineq", "fun": lambda z: 1.3**2 - z @ z}], None),
    "linf_ball": (lambda x: cx.project_linf_ball(x, 0.4),
                  lambda z: np.abs(z).max() - 0.4, [], [(-0.4, 0.4)] * D),
    "box": (lambda x: cx.project_box(x, LOW, UP),
            lambda z: max(np.max(LOW - z), np.max(z - UP)), [], list(zip(LOW, UP))),
    "simplex": (lambda x: cx.project_simplex(x, 2.0),
                lambda z: max(abs(z.sum() - 2.0), -z.min()),
                [{"type": "eq", "fun": lambda z: z.sum() - 2.0}], [(0, None)] * D),
    "box_hyperplane": (lambda x: cx.project_box_hyperplane(x, Y_PM, 0.0, 1.0, 0.5),
                       lambda z: max(abs(z @ Y_PM - 0.5), -z.min(), z.max() - 1.0),
                       [{"type": "eq", "fun": lambda z: z @ Y_PM - 0.5}], [(0, 1)] * D),
    "box_hyperplane_inf": (lambda x: cx.project_box_hyperplane(x, Y_PM, LOW, jnp.inf, 0.3),
                           lambda z: max(abs(z @ Y_PM - 0.3), np.max(LOW - z)),
                           [{"type": "eq", "fun": lambda z: z @ Y_PM - 0.3}],
                           [(lo, None) for lo in LOW]),
}
NAMES = sorted(SETS)
PROJ = {k: jax.jit(v[0]) for k, v in SETS.items()}

vectors = st.lists(st.floats(-5, 5, allow_nan=False), min_size=D, max_size=D).map(np.array)


def _brute(name, x):
    _, _, cons, bounds = SETS[name]
    if name == "l1_ball":  # z = u - v, u, v >= 0, sum(u + v) <= r
        obj = lambda uv: 0.5 * np.sum((uv[:D] - uv[D:] - x) ** 2)  # noqa: E731
        res = minimize(obj, np.zeros(2 * D), method="SLSQP", bounds=[(0, None)] * (2 * D),
                       constraints=[{"type": "ineq", "fun": lambda uv: 1.3 - uv.sum()}],
                       options={"ftol": 1e-15, "maxiter": 1000})
        return res.x[:D] - res.x[D:]
    start = np.zeros(D) if bounds is None else np.array(
        [np.clip(0.0, lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
         for lo, hi in bounds])
    res = minimize(lambda z: 0.5 * np.sum((z - x) ** 2), start, jac=lambda z: z - x,
                   method="SLSQP", bounds=bounds, constraints=cons,
                   options={"ftol": 1e-15, "maxiter": 1000})
    return res.x


@pytest.mark.parametrize("name", NAMES)
@given(x=vectors, x2=vectors)
def test_projection_properties(name, x, x2):
    proj, feas, _, _ = SETS[name]
    px, px2 = np.asarray(PROJ[name](x)), np.asarray(PROJ[name](x2))
    assert feas(px) <= 1e-9                                              # feasible
    np.testing.assert_allclose(PROJ[name](px), px, atol=1e-9)            # idempotent
    assert np.dot(x - px, px2 - px) <= 1e-9 * (1 + np.abs(x).sum())     # obtuse angle
    assert np.linalg.norm(px - px2) <= np.linalg.norm(x - x2) + 1e-9     # non-expansive


@pytest.mark.parametrize("name", NAMES)
def test_projection_equals_scipy(name):
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = 2.0 * rng.normal(size=D)
        np.testing.assert_allclose(PROJ[name](x), _brute(name, x), atol=1e-6)


def test_box_hyperplane_exact_on_svm_sizes():
    """Large d: equality to machine precision; vmap; float32 stays float32; grad finite."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, 300)) * 3
    y = rng.choice([-1.0, 1.0], size=300)
    Z = jax.vmap(cx.project_box_hyperplane, (0, None, None, None))(X, y, 0.0, 2.0)
    assert np.abs(Z @ y).max() < 1e-12
    assert Z.min() >= 0 and Z.max() <= 2
    # obtuse angle against random feasible points of the same set
    W = jax.vmap(cx.project_box_hyperplane, (0, None, None, None))(rng.normal(size=(3, 300)), y, 0.0, 2.0)
    assert np.all(np.einsum("ij,ij->i", X - Z, W - Z) <= 1e-9)
    z32 = cx.project_box_hyperplane(X[0].astype(np.float32), y, 0.0, 2.0)
    assert z32.dtype == jnp.float32 and abs(float(z32 @ y)) < 1e-3


def test_box_hyperplane_jacobian_matches_closed_form():
    """On a piece with free set F the projection is affine: dz_F/dx_F = I - y_F y_Fᵀ/|y_F|²."""
    x = jnp.array([0.3, 0.6, 5.0, -4.0, 0.2])
    y = jnp.array([1.0, -1.0, 1.0, 1.0, -1.0])
    z = cx.project_box_hyperplane(x, y, 0.0, 1.0, 0.0)
    J = jax.jacobian(cx.project_box_hyperplane)(x, y, 0.0, 1.0, 0.0)
    free = (z > 0) & (z < 1)
    yf = jnp.where(free, y, 0.0)
    expect = jnp.diag(free.astype(float)) - jnp.outer(yf, yf) / (yf @ yf)
    np.testing.assert_allclose(J, expect, atol=1e-12)


def test_box_hyperplane_reduces_to_hyperplane_and_infeasible_is_closest():
    x = np.array([3.0, -1.0, 0.5])
    y = np.array([1.0, 2.0, -1.0])
    np.testing.assert_allclose(cx.project_box_hyperplane(x, y, -np.inf, np.inf, 1.0),
                               cx.project_hyperplane(x, y, 1.0), atol=1e-12)
    # max of yᵀz over [0,1]^3 is 3 < 10: the answer is the maximizing vertex
    np.testing.assert_allclose(cx.project_box_hyperplane(x, y, 0.0, 1.0, 10.0), [1, 1, 0])


@pytest.mark.parametrize("p", [1, 2, np.inf, 1.5, 3.0, 7.0])
def test_lp_norm_matches_numpy(p):
    x = np.random.default_rng(2).normal(size=(4, 6))
    np.testing.assert_allclose(cx.lp_norm(x, p), np.linalg.norm(x, ord=p, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(jax.jit(cx.lp_norm)(x, p), np.linalg.norm(x, ord=p, axis=-1), rtol=1e-12)
    assert cx.lp_norm(x.astype(np.float32), p).dtype == jnp.float32


def test_lp_norm_large_p_and_grad_at_zero():
    x = np.array([1e200, 1e200])
    np.testing.assert_allclose(cx.lp_norm(x, 4.0), 1e200 * 2 ** 0.25, rtol=1e-12)
    g = jax.grad(lambda v: cx.lp_norm(v, 2))(jnp.zeros(3))
    assert np.all(np.isfinite(g))
    v = jnp.array([0.5, -2.0, 1.0])
    np.testing.assert_allclose(jax.grad(lambda v: cx.lp_norm(v, 3.0))(v),
                               np.sign(v) * np.abs(v) ** 2 / np.sum(np.abs(v) ** 3) ** (2 / 3))


def test_soft_threshold_is_prox_of_l1():
    rng = np.random.default_rng(3)
    x, t = rng.normal(size=D), 0.4
    res = minimize(lambda z: 0.5 * np.sum((z - x) ** 2) + t * np.abs(z).sum(), np.zeros(D),
                   method="Powell", options={"xtol": 1e-10, "ftol": 1e-14})
    np.testing.assert_allclose(cx.soft_threshold(x, t), res.x, atol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda v: cx.soft_threshold(v, t).sum())(x), np.abs(x) > t)


def test_separating_hyperplane():
    rng = np.random.default_rng(4)
    sets = [lambda z: cx.project_l1_ball(z, 1.0), lambda z: cx.project_simplex(z, 1.0),
            lambda z: cx.project_box(z, LOW, UP)]
    for proj in sets:
        y = 3.0 * rng.normal(size=D)
        p, a = cx.separating_hyperplane(y, proj)
        assert float(p @ y) > float(a)
        members = jax.vmap(proj)(5.0 * rng.normal(size=(200, D)))
        assert float(jnp.max(members @ p)) <= float(a) + 1e-12


def test_vmap_batches_and_dtypes():
    X = np.random.default_rng(5).normal(size=(7, D)).astype(np.float32)
    for name in NAMES:
        Z = jax.vmap(SETS[name][0])(X)
        assert Z.shape == X.shape and Z.dtype == jnp.float32, name
    # radius traced and vmapped: a sweep of L1 balls does not recompile
    radii = jnp.linspace(0.0, 3.0, 6)
    Z = jax.vmap(cx.project_l1_ball, (None, 0))(X[0].astype(np.float64), radii)
    np.testing.assert_allclose(np.abs(Z).sum(1), np.minimum(radii, np.abs(X[0]).sum()), rtol=1e-5)


def test_bad_input_names_argument():
    with pytest.raises(ValueError, match="radius"):
        cx.project_l2_ball(np.ones(3), -1.0)
    with pytest.raises(ValueError, match="radius"):
        cx.project_l1_ball(np.ones(3), -0.5)
    with pytest.raises(ValueError, match="lower"):
        cx.project_box(np.ones(3), 1.0, 0.0)
    with pytest.raises(ValueError, match="y"):
        cx.project_box_hyperplane(np.ones(3), np.ones(4), 0.0, 1.0)
    with pytest.raises(ValueError, match="p"):
        cx.lp_norm(np.ones(3), 0.5)
    with pytest.raises(TypeError, match="x"):
        cx.project_simplex("abc")


# ----------------------------------------------------------------------------- issue 13
def test_l2_ball_does_not_overflow():
    for dt, big in [(np.float64, 3e160), (np.float32, 3e20)]:
        out = np.asarray(cx.project_l2_ball(np.full(3, big, dt), 1.0))
        assert out.dtype == dt
        np.testing.assert_allclose(out, np.full(3, 1 / np.sqrt(3)), rtol=1e-6)


def test_plane_with_zero_normal_is_rejected_by_name():
    for proj in (cx.project_halfspace, cx.project_hyperplane):
        with pytest.raises(ValueError, match="p must be a nonzero"):
            proj(np.ones(3), np.zeros(3), 1.0)
        with pytest.raises(Exception, match="p must be a nonzero"):
            jax.block_until_ready(jax.jit(lambda p: proj(jnp.ones(3), p, 1.0))(jnp.zeros(3)))


def test_traced_radius_checked_at_run_time():
    with pytest.raises(Exception, match="radius must"):
        jax.block_until_ready(jax.jit(lambda r: cx.project_l2_ball(jnp.ones(3), r))(-1.0))
