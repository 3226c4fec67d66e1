"""Convex foundations: hull membership with its weights (against closed forms and scipy's
Delaunay), extreme points (against scipy.spatial.ConvexHull), Fritz John multipliers where
the constraint qualification fails (Kuhn–Tucker's example), the norm axioms (hypothesis),
and bad input named by its argument."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial import ConvexHull, Delaunay

from jaxml import convex, optim

TRIANGLE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])


def test_convex_combination_inside_reconstructs_the_point():
    x = np.array([0.2, 0.3])
    r = convex.convex_combination(TRIANGLE, x)
    assert r.converged and r.inside
    np.testing.assert_allclose(r.weights, [0.5, 0.2, 0.3], atol=1e-6)   # unique (a simplex)
    np.testing.assert_allclose(r.weights @ TRIANGLE, x, atol=1e-7)
    assert np.all(np.asarray(r.weights) >= 0) and abs(float(r.weights.sum()) - 1) < 1e-12
    assert r.trace.shape == (5000,) and int(r.n_iter) > 0


def test_convex_combination_outside_gives_the_distance_and_a_separating_hyperplane():
    x = np.array([1.0, 1.0])
    r = convex.convex_combination(TRIANGLE, x)
    assert r.converged and not r.inside
    np.testing.assert_allclose(r.distance, np.sqrt(0.5), rtol=1e-6)      # to the edge x+y=1
    np.testing.assert_allclose(r.weights, [0.0, 0.5, 0.5], atol=1e-6)
    normal = np.asarray(r.weights @ TRIANGLE) - x                         # separation theorem
    assert np.all(TRIANGLE @ normal >= normal @ (x + normal) - 1e-9) and normal @ x < normal @ (x + normal)
    assert 0.5 * float(r.distance) ** 2 - float(r.gap) <= 0.25 + 1e-12    # gap certificate


def test_membership_matches_delaunay_and_where_mask():
    rng = np.random.default_rng(0)
    P = rng.standard_normal((12, 2))
    tri = Delaunay(P)
    hull = ConvexHull(P)
    for q in rng.uniform(-2.5, 2.5, (12, 2)):
        # keep queries clearly away from the boundary: |signed distance to every facet| > 1e-3
        margins = hull.equations[:, :2] @ q + hull.equations[:, 2]
        if np.min(np.abs(margins)) < 1e-3:
            continue
        r = convex.convex_combination(P, q)
        assert bool(r.inside) == (tri.find_simplex(q) >= 0)
    where = np.zeros(12, bool)
    where[[0, 1]] = True
    r = convex.convex_combination(P, P[2], where=where)
    assert np.all(np.asarray(r.weights)[2:] == 0)
    seg = P[1] - P[0]
    t = np.clip((P[2] - P[0]) @ seg / (seg @ seg), 0, 1)
    np.testing.assert_allclose(r.distance, np.linalg.norm(P[0] + t * seg - P[2]), rtol=1e-6)


@pytest.mark.parametrize("d, m", [(2, 25), (3, 20)])
def test_extreme_points_match_scipy_convex_hull(d, m):
    P = np.random.default_rng(d).standard_normal((m, d))
    e = convex.extreme_points(P)
    expected = np.zeros(m, bool)
    expected[ConvexHull(P).vertices] = True
    np.testing.assert_array_equal(e.mask, expected)
    assert np.all(np.asarray(e.converged))
    assert e.weights.shape == (m, m) and np.all(np.diag(np.asarray(e.weights)) == 0)
    assert e.trace.shape == (m, 5000)


def test_extreme_points_of_a_square_with_interior_and_edge_points():
    P = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5], [0.5, 0.0]], float)
    np.testing.assert_array_equal(convex.extreme_points(P).mask, [1, 1, 1, 1, 0, 0])


# ----------------------------------------------------------------------------- Fritz John
def test_fritz_john_where_the_constraint_qualification_fails():
    """Kuhn & Tucker (1951): min −x₁ s.t. x₂ ≤ (1 − x₁)³, x₂ ≥ 0; minimizer (1, 0), a cusp.
    No KKT multipliers exist (∇f = (−1, 0), ∇h = (0, ±1)); Fritz John holds with λ₀ = 0."""
    def f(x):
        return -x[0]

    def h(x):
        return jnp.stack([x[1] - (1 - x[0]) ** 3, -x[1]])

    x = jnp.array([1.0, 0.0])
    fj = optim.fritz_john_residuals(f, x, ineq=h)
    assert fj.holds and fj.converged
    assert float(fj.stationarity) < 1e-10 and float(fj.lam0) == pytest.approx(0.0, abs=1e-10)
    np.testing.assert_allclose(fj.lam, [0.5, 0.5], atol=1e-8)
    assert float(optim.kkt_residuals(f, x, ineq=h).stationarity) > 0.5   # KKT fails
    # min x s.t. x² ≤ 0 at x = 0: ∇g = 0, so again only λ₀ = 0 works.
    fj = optim.fritz_john_residuals(lambda x: x[0], jnp.array([0.0]), ineq=lambda x: x[0] ** 2)
    assert fj.holds and float(fj.lam0) == pytest.approx(0.0, abs=1e-12)


def test_fritz_john_with_a_qualified_constraint_gives_the_kkt_multipliers():
    def f(x):
        return (x[0] - 2.0) ** 2 + x[1] ** 2

    def h(x):
        return jnp.stack([x[0] - 1.0, x[1] - 5.0])                 # second one inactive

    x = jnp.array([1.0, 0.0])
    fj = optim.fritz_john_residuals(f, x, ineq=h)
    kkt = optim.kkt_residuals(f, x, ineq=h)
    assert fj.holds and float(fj.lam0) > 0 and float(fj.lam[1]) == 0.0
    np.testing.assert_allclose(fj.lam / fj.lam0, kkt.lam, rtol=1e-6)
    # equality: min x₀ + x₁ s.t. x₀² + x₁² = 2 at (−1, −1): μ/λ₀ = 1/2
    fj = optim.fritz_john_residuals(lambda x: x[0] + x[1], jnp.array([-1.0, -1.0]),
                                    eq=lambda x: x[0] ** 2 + x[1] ** 2 - 2)
    assert fj.holds and float(fj.lam0) == pytest.approx(1.0)
    np.testing.assert_allclose(fj.mu / fj.lam0, [0.5], rtol=1e-10)
    # not stationary: min x at x = 1 with x ≥ 0 inactive
    fj = optim.fritz_john_residuals(lambda x: x[0], jnp.array([1.0]), ineq=lambda x: -x[0])
    assert not fj.holds and float(fj.stationarity) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- norm axioms
_vectors = hnp.arrays(np.float64, 5, elements=st.floats(-1e3, 1e3))
_P = [1, 1.5, 2, 3, np.inf]


@given(_vectors, _vectors, st.floats(-1e3, 1e3))
def test_norm_axioms(x, y, a):
    for p in _P:
        nx, ny = float(convex.lp_norm(x, p)), float(convex.lp_norm(y, p))
        assert nx >= 0 and (nx == 0) == (not np.any(x))                  # positivity
        np.testing.assert_allclose(float(convex.lp_norm(a * x, p)), abs(a) * nx,
                                   rtol=1e-12, atol=1e-300)               # homogeneity
        assert float(convex.lp_norm(x + y, p)) <= (nx + ny) * (1 + 1e-12)  # triangle


# ----------------------------------------------------------------------------- bad input
def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="points"):
        convex.convex_combination(np.zeros((0, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="points must all have the same dimension"):
        convex.convex_combination([[0.0, 0.0], [1.0]], np.zeros(2))
    with pytest.raises(ValueError, match="points must all have the same dimension"):
        convex.extreme_points([[0.0, 0.0], [1.0, 0.0, 2.0]])
    with pytest.raises(ValueError, match="x must have the dimension"):
        convex.convex_combination(TRIANGLE, np.zeros(3))
    with pytest.raises(ValueError, match="where"):
        convex.convex_combination(TRIANGLE, np.zeros(2), where=np.zeros(3, bool))
    with pytest.raises(ValueError, match="where"):
        convex.convex_combination(TRIANGLE, np.zeros(2), where=np.ones(2, bool))
    with pytest.raises(ValueError, match="tol"):
        convex.convex_combination(TRIANGLE, np.zeros(2), tol=0.0)
    with pytest.raises(ValueError, match="points must hold at least 2"):
        convex.extreme_points(np.zeros((1, 2)))
    with pytest.raises((TypeError, ValueError), match="points"):
        convex.extreme_points(np.array([[1 + 1j, 0]]))


def test_float32_stays_float32_and_converges():
    P = np.random.default_rng(5).standard_normal((15, 2)).astype(np.float32)
    r = convex.convex_combination(P, np.zeros(2, np.float32))
    assert r.weights.dtype == jnp.float32 and r.converged and r.inside
    e = convex.extreme_points(P)
    expected = np.zeros(15, bool)
    expected[ConvexHull(P).vertices] = True
    np.testing.assert_array_equal(e.mask, expected)
    assert bool(np.all(np.asarray(e.converged)))
