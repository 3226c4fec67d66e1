"""jaxml.pca against scikit-learn's PCA (covariance_eigh and full-SVD solvers)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.decomposition import PCA

from jaxml import pca
from jaxml.testing import check_jvp


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


def test_one_pass_covariance_matches_numpy_far_from_the_origin_on_sorted_rows():
    # one pass with a shift (a strided sample mean), not two: on rows sorted by a feature,
    # 10⁴ from the origin with a 10⁻³ spread (XᵀX − n x̄x̄ᵀ would keep no digit of it), and
    # n not a multiple of the 1024-row block (the last block overlaps the one before)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 6)) * np.array([1e-3, 1.0, 10.0, 0.1, 1.0, 5.0]) + 1e4
    X = X[np.argsort(X[:, 2])]
    mean, S = pca.covariance(X)
    ref = np.cov(X, rowvar=False)
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-14)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    np.testing.assert_allclose(np.asarray(S) / scale, ref / scale, atol=1e-11)


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
    check_jvp(f, lambda X, v: jnp.vdot(g, v), X, V, step=1e-6, fd_rtol=1e-6, autodiff=False,
              richardson=False, batched=False)
    np.testing.assert_allclose(jax.jit(jax.grad(f))(X), g, rtol=1e-10, atol=1e-12)


# The mixed-precision path (float32 covariance, float64 refinement of the top k, certified
# by float64 residuals; float64 eigh where the certificate fails). Chosen for large float64
# data; here forced on small data through the private core.

def test_path_choice(monkeypatch):
    big = jax.ShapeDtypeStruct((100_000, 256), jnp.float64)
    assert pca._method(big, 32) == "eigh"             # the refined path is off by default
    monkeypatch.setattr(pca, "_REFINED_MAX_FRACTION", 8)
    assert pca._method(big, 32) == "refined"
    assert pca._method(big, 64) == "eigh"                   # 8k > d: the passes cost too much
    assert pca._method(jax.ShapeDtypeStruct((100_000, 256), jnp.float32), 32) == "eigh"
    assert pca._method(jax.ShapeDtypeStruct((1000, 64), jnp.float64), 4) == "eigh"   # small
    assert pca._method(jax.ShapeDtypeStruct((100, 300), jnp.float64), 4) == "svd"


@pytest.mark.parametrize("data,k", [("digits", 8), ("iris", 1)])
def test_refined_path_matches_sklearn_and_is_certified(data, k, request):
    X = request.getfixturevalue(data)
    *_, certified = jax.jit(pca._refined_spectrum, static_argnums=1)(X, k)
    assert bool(certified)
    _assert_same(pca._fit(X, k, method="refined"), PCA(k, svd_solver="covariance_eigh").fit(X),
                 X)


def _with_spectrum(evals, n=400, seed=0):
    """Data whose sample covariance (ddof = 1) has exactly the eigenvalues ``evals``."""
    rng = np.random.default_rng(seed)
    d = len(evals)
    U, _ = np.linalg.qr(rng.normal(size=(n, d)) - rng.normal(size=(n, d)).mean(0))
    U, _ = np.linalg.qr(U - U.mean(0))                      # orthonormal, centred columns
    B, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return U * np.sqrt((n - 1) * np.asarray(evals)) @ B.T + 3.0


def test_refined_path_falls_back_to_float64_when_the_certificate_fails():
    # λ₃ − λ₄ = 1e-9·λ₃: below float32's resolution of S, so no refinement certifies; and
    # one round only (max_iter=1) never certifies. Both give the float64 eigh answer.
    evals = np.r_[10.0, 5.0, 2.0, 2.0 * (1 - 1e-9), np.geomspace(1.0, 0.01, 12)]
    X = _with_spectrum(evals)
    refined = jax.jit(pca._refined_spectrum, static_argnums=(1, 2))
    assert not bool(refined(X, 3)[-1])
    assert not bool(refined(X, 3, 1)[-1])
    r, exact = pca._fit(X, 3, method="refined"), pca._fit(X, 3, method="eigh")
    for a, b in zip(r, exact):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    sk = PCA(3, svd_solver="covariance_eigh").fit(X)
    np.testing.assert_allclose(r.explained_variance, sk.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(r.explained_variance, evals[:3], rtol=1e-10)
    np.testing.assert_allclose(r.components[:2], sk.components_[:2], atol=1e-10)


def test_refined_path_gradient_and_vmap(iris):
    rng = np.random.default_rng(1)
    W = rng.normal(size=(1, 4))

    def f(X, method):
        r = pca._fit(X, 1, method=method)
        return jnp.sum(r.components * W) + r.explained_variance[0] + r.noise_variance

    g = jax.grad(f)(iris, "refined")
    np.testing.assert_allclose(g, jax.grad(f)(iris, "eigh"), rtol=1e-8, atol=1e-10)
    V = rng.normal(size=iris.shape)
    h = 1e-6
    np.testing.assert_allclose(np.sum(g * V), (f(iris + h * V, "refined")
                                               - f(iris - h * V, "refined")) / (2 * h),
                               rtol=1e-6)
    Xs = np.stack([iris[rng.choice(150, 150)] for _ in range(3)])
    batched = jax.vmap(lambda X: pca._fit(X, 1, method="refined"))(Xs)
    for i in range(3):
        sk = PCA(1, svd_solver="covariance_eigh").fit(Xs[i])
        np.testing.assert_allclose(batched.components[i], sk.components_, atol=1e-10)
        np.testing.assert_allclose(batched.explained_variance[i], sk.explained_variance_,
                                   rtol=1e-10)
