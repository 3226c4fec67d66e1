"""The identities the geometry figures rest on, checked beside the example (which runs in
test_examples at a small size)."""

import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import geometry  # noqa: E402

from jaxml import kernels, svm  # noqa: E402


def test_feature_map_inner_product_is_the_degree_2_kernel():
    rng = np.random.default_rng(0)
    X, Z = rng.standard_normal((7, 2)), rng.standard_normal((5, 2))
    Phi_X, Phi_Z = np.asarray(geometry.feature_map(X)), np.asarray(geometry.feature_map(Z))
    want = (Z @ X.T) ** 2                                          # (xᵀz)², by hand
    np.testing.assert_allclose(Phi_Z @ Phi_X.T, want, rtol=1e-13, atol=1e-14)
    poly = kernels.Polynomial(degree=2, gamma=1.0, coef0=0.0)
    np.testing.assert_allclose(kernels.gram(poly, Z, X), want, rtol=1e-13, atol=1e-14)
    # x₁² + x₂² = r² is the plane φ₁ + φ₃ = r² in feature space
    np.testing.assert_allclose(Phi_X[:, 0] + Phi_X[:, 2], (X**2).sum(1), rtol=1e-14)


def test_canonical_hyperplane_on_the_support_vectors():
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal([-2.0, -1.0], 0.5, (15, 2)), rng.normal([2.0, 1.0], 0.5, (15, 2))]
    y = np.r_[-np.ones(15), np.ones(15)]
    model = svm.fit(X, y, C=jnp.inf, tol=1e-10)
    w, b = np.asarray(svm.primal_weights(model)), float(model.b)
    f = y * (X @ w + b)
    sv = np.asarray(model.support)
    np.testing.assert_allclose(f[sv], 1.0, atol=1e-8)
    assert f.min() > 1.0 - 1e-8
    np.testing.assert_allclose(float(svm.margin_width(model)), 2 / np.linalg.norm(w), rtol=1e-12)
