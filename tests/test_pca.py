"""jaxml.pca against scikit-learn's PCA (covariance_eigh and full-SVD solvers)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.decomposition import PCA

from jaxml import pca


@pytest.fixture(scope="module")
def digits():
    return load_digits().data


@pytest.fixture(scope="module")
def iris():
    return load_iris().data


def _assert_same(r, sk, X):
    # components equal up to sign, and with the same sign convention exactly
    dots = np.abs(np.sum(np.asarray(r.components) * sk.components_, axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-10)
    np.testing.assert_allclose(r.components, sk.components_, atol=1e-10)
    np.testing.assert_allclose(r.mean, sk.mean_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.explained_variance, sk.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(r.explained_variance_ratio, sk.explained_variance_ratio_,
                               rtol=1e-10)
    np.testing.assert_allclose(r.singular_values, sk.singular_values_, rtol=1e-10)
    np.testing.assert_allclose(r.noise_variance, sk.noise_variance_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pca.transform(r, X), sk.transform(X), rtol=1e-9, atol=1e-9)
    Z = sk.transform(X)
    np.testing.assert_allclose(pca.inverse_transform(r, Z), sk.inverse_transform(Z),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("data,k", [("digits", 10), ("iris", 4), ("iris", 2)])
def test_covariance_path_matches_sklearn(data, k, request):
    X = request.getfixturevalue(data)
    _assert_same(pca.fit(X, k), PCA(k, svd_solver="covariance_eigh").fit(X), X)


@pytest.mark.parametrize("k", [5, 29])   # rank of the centred data is n − 1 = 29
def test_svd_path_when_d_exceeds_n(digits, k):
    X = digits[:30]                                      # n = 30 < d = 64
    _assert_same(pca.fit(X, k), PCA(k, svd_solver="full").fit(X), X)


def test_components_are_orthonormal_eigenvectors(digits):
    r = pca.fit(digits, 10)
    V = np.asarray(r.components)
    np.testing.assert_allclose(V @ V.T, np.eye(10), atol=1e-12)
    S = np.cov(digits, rowvar=False)                     # numpy oracle, ddof = 1
    np.testing.assert_allclose(S @ V.T, V.T * np.asarray(r.explained_variance), atol=1e-8)
    assert np.all(np.diff(np.asarray(r.explained_variance)) <= 0)


def test_full_rank_reconstruction_is_exact(iris):
    r = pca.fit(iris, 4)
    np.testing.assert_allclose(pca.inverse_transform(r, pca.transform(r, iris)), iris,
                               atol=1e-12)
    np.testing.assert_allclose(np.sum(r.explained_variance_ratio), 1.0, rtol=1e-12)


def test_jit_and_vmap_over_datasets(iris):
    rng = np.random.default_rng(0)
    Xs = np.stack([iris[rng.choice(150, 150)] for _ in range(5)])     # bootstrap resamples
    batched = jax.jit(jax.vmap(lambda X: pca.fit(X, 2)))(Xs)
    for i in range(5):
        sk = PCA(2, svd_solver="covariance_eigh").fit(Xs[i])
        np.testing.assert_allclose(batched.components[i], sk.components_, atol=1e-10)
        np.testing.assert_allclose(batched.explained_variance[i], sk.explained_variance_,
                                   rtol=1e-10)


def test_float32_stays_float32(digits):
    X32 = digits.astype(np.float32)
    r = pca.fit(X32, 5)
    assert all(a.dtype == jnp.float32 for a in r)
    assert pca.transform(r, X32).dtype == jnp.float32
    sk = PCA(5, svd_solver="covariance_eigh").fit(digits)
    np.testing.assert_allclose(r.explained_variance, sk.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(np.abs(np.sum(np.asarray(r.components) * sk.components_, 1)),
                               1.0, atol=1e-3)


def test_bad_input(iris):
    with pytest.raises(ValueError, match="n_components"):
        pca.fit(iris, 5)
    with pytest.raises(ValueError, match="n_components"):
        pca.fit(iris[:3], 4)
    with pytest.raises(ValueError, match="rows"):
        pca.fit(iris[:1], 1)
    with pytest.raises(ValueError, match="X"):
        pca.fit(iris[:, 0], 1)
    bad = iris.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="X"):
        pca.fit(bad, 2)
    r = pca.fit(iris, 2)
    with pytest.raises(ValueError, match="X"):
        pca.transform(r, iris[:, :3])
    with pytest.raises(ValueError, match="Z"):
        pca.inverse_transform(r, np.zeros((3, 3)))
    with pytest.raises(TypeError, match="model"):
        pca.transform((r.mean, r.components), iris)


def test_constant_data_has_defined_ratio_and_checks_fire(iris):
    r = pca.fit(np.ones((5, 3)), 2)
    np.testing.assert_array_equal(r.explained_variance_ratio, 0.0)
    assert all(np.all(np.isfinite(np.asarray(a))) for a in r)
    with pytest.raises(ValueError, match="X"):
        pca.fit(np.zeros((0, 3)), 1)
    bad = iris.copy()
    bad[2, 2] = np.inf
    with pytest.raises(Exception, match="X must|X contains"):
        jax.jit(lambda X: pca.fit(X, 2).components)(bad).block_until_ready()
    with pytest.raises(Exception, match="X must|X contains"):
        jax.vmap(lambda X: pca.fit(X, 2).components)(np.stack([iris, bad])).block_until_ready()


@pytest.mark.parametrize("shape,k", [((40, 5), 3), ((6, 9), 3)])   # eigh path, SVD path
def test_gradient_of_sign_fixed_components_matches_finite_differences(shape, k):
    rng = np.random.default_rng(0)
    X = rng.normal(size=shape) * np.linspace(1.0, 3.0, shape[1])
    W = rng.normal(size=(k, shape[1]))

    def f(X):
        r = pca.fit(X, k)
        return jnp.sum(r.components * W) + jnp.sum(r.explained_variance) \
            + r.explained_variance_ratio[0]

    g = jax.grad(f)(X)
    V = rng.normal(size=X.shape)
    h = 1e-6
    np.testing.assert_allclose(np.sum(g * V), (f(X + h * V) - f(X - h * V)) / (2 * h),
                               rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.grad(f))(X), g, rtol=1e-10, atol=1e-12)
