"""jaxml.gaussian against numpy, scipy and Monte Carlo estimates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats
from sklearn.datasets import load_iris

from jaxml import gaussian
from jaxml.testing import check_gradient, check_jvp, check_mean, random_spd
from jaxml.testing import strategies as jst


@pytest.fixture(scope="module")
def iris():
    return load_iris().data


def test_mle_matches_numpy(iris):
    mean, cov = gaussian.mle(iris)
    np.testing.assert_allclose(mean, iris.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(iris.T, bias=True), rtol=1e-12)


def test_mle_is_the_likelihood_maximizer(iris):
    """Gradient of the mean log-likelihood w.r.t. (mean, cov) vanishes at the MLE."""
    mean, cov = gaussian.mle(iris)
    g_mean, g_cov = jax.grad(lambda m, c: jnp.mean(gaussian.log_pdf(iris, m, c)), (0, 1))(mean, cov)
    np.testing.assert_allclose(g_mean, 0.0, atol=1e-9)
    np.testing.assert_allclose(g_cov, 0.0, atol=1e-8)


def test_log_pdf_matches_scipy():
    rng = np.random.default_rng(0)
    d = 4
    mean, cov = rng.normal(size=d), random_spd(jax.random.key(0), d)
    x = rng.normal(size=(3, 5, d))
    expected = stats.multivariate_normal(mean, cov).logpdf(x.reshape(-1, d)).reshape(3, 5)
    np.testing.assert_allclose(gaussian.log_pdf(x, mean, cov), expected, rtol=1e-10)
    # a single point gives a scalar
    np.testing.assert_allclose(gaussian.log_pdf(x[0, 0], mean, cov), expected[0, 0], rtol=1e-10)
    assert gaussian.log_pdf(x[0, 0], mean, cov).shape == ()


@settings(max_examples=15)
@given(jst.spd_matrices(st.integers(1, 4), max_condition=100.0), st.floats(0.1, 10),
       st.integers(0, 10_000))
def test_log_pdf_and_entropy_match_scipy_property(cov, scale, seed):
    rng = np.random.default_rng(seed)
    d = cov.shape[0]
    mean, cov = rng.normal(size=d), scale * cov
    x = rng.normal(size=(7, d)) * 3
    ref = stats.multivariate_normal(mean, cov)
    np.testing.assert_allclose(gaussian.log_pdf(x, mean, cov), ref.logpdf(x).reshape(7), rtol=1e-9)
    np.testing.assert_allclose(gaussian.entropy(cov), ref.entropy(), rtol=1e-10)


def test_sample_moments_within_standard_errors():
    rng = np.random.default_rng(1)
    d, n = 3, 20_000
    mean, cov = rng.normal(size=d), np.asarray(random_spd(jax.random.key(1), d))
    draws = np.asarray(gaussian.sample(jax.random.key(0), mean, cov, n))
    assert draws.shape == (n, d)
    # E x = mean and E (x − mean)(x − mean)ᵀ = cov, each within the draws' own standard
    # errors (12 coordinates at alpha = 1e-3: |z| ≤ 3.94)
    r = draws - mean
    check_mean({"x": draws, "outer": r[:, :, None] * r[:, None, :]},
               {"x": mean, "outer": cov}, alpha=1e-3)


def test_kl_matches_monte_carlo():
    rng = np.random.default_rng(2)
    d, n = 3, 50_000
    m1, c1 = rng.normal(size=d), random_spd(jax.random.key(2), d)
    m2, c2 = rng.normal(size=d), random_spd(jax.random.key(4), d, scale=2.0)
    x = gaussian.sample(jax.random.key(3), m1, c1, n)
    terms = np.asarray(gaussian.log_pdf(x, m1, c1) - gaussian.log_pdf(x, m2, c2))
    kl = float(gaussian.kl_divergence(m1, c1, m2, c2))
    check_mean(terms, kl, alpha=1e-4)          # |z| ≤ 3.89
    assert kl > 0
    np.testing.assert_allclose(gaussian.kl_divergence(m1, c1, m1, c1), 0.0, atol=1e-12)


def test_kl_matches_scipy_entropy_identity():
    """KL(p||q) = -H(p) - E_p[log q], with E_p[log q] from the Gaussian cross-entropy formula."""
    rng = np.random.default_rng(4)
    d = 4
    m1, c1 = rng.normal(size=d), np.asarray(random_spd(jax.random.key(5), d))
    m2, c2 = rng.normal(size=d), np.asarray(random_spd(jax.random.key(6), d))
    c2inv = np.linalg.inv(c2)
    cross = 0.5 * (d * np.log(2 * np.pi) + np.linalg.slogdet(c2)[1] + np.trace(c2inv @ c1)
                   + (m1 - m2) @ c2inv @ (m1 - m2))
    expected = cross - stats.multivariate_normal(m1, c1).entropy()
    np.testing.assert_allclose(gaussian.kl_divergence(m1, c1, m2, c2), expected, rtol=1e-10)


def test_kl_diag_standard_normal_equals_full_kl():
    rng = np.random.default_rng(5)
    mean, log_var = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    got = gaussian.kl_diag_standard_normal(mean, log_var)
    assert got.shape == (6,)
    full = [gaussian.kl_divergence(m, np.diag(np.exp(lv)), np.zeros(4), np.eye(4))
            for m, lv in zip(mean, log_var)]
    np.testing.assert_allclose(got, full, rtol=1e-10)


def test_jit_vmap_and_float32():
    rng = np.random.default_rng(6)
    Xs = rng.normal(size=(8, 30, 3))
    means, covs = jax.jit(jax.vmap(gaussian.mle))(Xs)
    for X, m, c in zip(Xs, means, covs):
        np.testing.assert_allclose(m, X.mean(0), rtol=1e-12)
        np.testing.assert_allclose(c, np.cov(X.T, bias=True), rtol=1e-10)
    lp = jax.jit(jax.vmap(gaussian.log_pdf))(Xs, means, covs)
    assert lp.shape == (8, 30)
    kl = jax.vmap(gaussian.kl_divergence, (0, 0, None, None))(means, covs, np.zeros(3), np.eye(3))
    assert kl.shape == (8,)

    # concrete arrays closed over by a jitted function are still fine (checked in NumPy)
    eye = jnp.eye(3)
    m = np.array([1.0, -2.0, 0.5])
    kl = jax.jit(lambda mu: gaussian.kl_divergence(mu, eye, jnp.zeros(3), eye))(m)
    np.testing.assert_allclose(kl, 0.5 * np.sum(m**2), rtol=1e-12)  # KL(N(m,I)||N(0,I))

    X32 = Xs[0].astype(np.float32)
    m32, c32 = gaussian.mle(X32)
    assert m32.dtype == c32.dtype == jnp.float32
    assert gaussian.log_pdf(X32, m32, c32).dtype == jnp.float32
    assert gaussian.entropy(c32).dtype == jnp.float32
    assert gaussian.kl_divergence(m32, c32, m32, c32).dtype == jnp.float32
    assert gaussian.sample(jax.random.key(0), m32, c32, 4).dtype == jnp.float32
    assert gaussian.kl_diag_standard_normal(m32, m32).dtype == jnp.float32
    np.testing.assert_allclose(gaussian.log_pdf(X32, m32, c32),
                               stats.multivariate_normal(np.asarray(m32, np.float64),
                                                         np.asarray(c32, np.float64)).logpdf(Xs[0]),
                               rtol=1e-4)


def test_bad_input():
    with pytest.raises(ValueError, match="X"):
        gaussian.mle(np.ones(3))
    with pytest.raises(ValueError, match="X contains NaN"):
        gaussian.mle(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="cov"):
        gaussian.log_pdf(np.zeros(2), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="x"):
        gaussian.log_pdf(np.zeros(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="cov"):
        gaussian.entropy(np.ones((2, 3)))
    with pytest.raises(ValueError, match="mean1 and mean2"):
        gaussian.kl_divergence(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="log_var"):
        gaussian.kl_diag_standard_normal(np.zeros(2), np.zeros(3))
    with pytest.raises(TypeError, match="n"):
        gaussian.sample(jax.random.key(0), np.zeros(2), np.eye(2), 2.5)
    with pytest.raises(TypeError, match="mean"):
        gaussian.log_pdf(np.zeros(2), object(), np.eye(2))


def test_not_positive_definite_cov_is_an_error_naming_it():
    mean = np.zeros(2)
    bad = np.array([[1.0, 2.0], [2.0, 1.0]])            # indefinite
    with pytest.raises(ValueError, match="cov must be symmetric positive definite"):
        gaussian.log_pdf(np.zeros(2), mean, bad)
    with pytest.raises(ValueError, match="cov must"):
        gaussian.entropy(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="cov2 must"):
        gaussian.kl_divergence(mean, np.eye(2), mean, bad)
    with pytest.raises(ValueError, match="cov must"):
        gaussian.sample(jax.random.key(0), mean, bad, 3)
    with pytest.raises(Exception, match="cov must be symmetric positive definite"):
        jax.jit(lambda c: gaussian.log_pdf(np.zeros(2), mean, c))(bad).block_until_ready()
    ok = jax.vmap(lambda c: gaussian.entropy(c))(np.stack([np.eye(2), 2 * np.eye(2)]))
    assert np.all(np.isfinite(ok))
    with pytest.raises(Exception, match="cov must"):
        jax.vmap(lambda c: gaussian.entropy(c))(np.stack([np.eye(2), bad])).block_until_ready()


def test_mle_checks_under_jit_and_gradient(iris):
    with pytest.raises(ValueError, match="X"):
        gaussian.mle(np.zeros((0, 3)))
    bad = iris.copy()
    bad[0, 0] = np.nan
    with pytest.raises(Exception, match="X must|X contains"):
        jax.jit(lambda X: gaussian.mle(X).cov)(bad).block_until_ready()
    f = lambda X: jnp.sum(gaussian.mle(X).cov ** 2)
    V = np.random.default_rng(1).normal(size=iris.shape)
    check_jvp(f, lambda X, v: jnp.vdot(jax.grad(f)(X), v), iris, V, step=1e-5, fd_rtol=1e-6)


def test_interval_probability_against_scipy_and_mpmath():
    import mpmath
    mpmath.mp.dps = 50
    a = np.array([-1.0, 0.5, -3.0, 8.0, -9.0, 2.0, -np.inf, 1.0])
    b = np.array([1.0, 2.5, -2.0, 9.0, -8.0, 2.0, 0.3, np.inf])
    mean, std = 0.4, 1.7
    p = np.asarray(gaussian.interval_probability(a * std + mean, b * std + mean,
                                                 mean=mean, std=std))
    ref = stats.norm.cdf(b) - stats.norm.cdf(a)
    central = np.abs(a) < 5
    np.testing.assert_allclose(p[central], ref[central], rtol=1e-13, atol=1e-16)

    def exact(lo, hi):               # mirrored in the upper tail: 50 digits, no 1 − 1
        cdf = lambda z: mpmath.ncdf(mpmath.mpf(z))
        return cdf(-lo) - cdf(-hi) if lo > 0 else cdf(hi) - cdf(lo)

    for lo, hi in [(8.0, 9.0), (-9.0, -8.0), (5.0, 5.5)]:
        e = exact(lo, hi)
        np.testing.assert_allclose(gaussian.interval_probability(lo, hi), float(e), rtol=1e-13)
        np.testing.assert_allclose(gaussian.log_interval_probability(lo, hi),
                                   float(mpmath.log(e)), rtol=1e-13)
    for lo, hi in [(-40.0, -39.0), (39.0, 40.0), (-300.0, -299.5)]:
        e = exact(lo, hi)
        np.testing.assert_allclose(gaussian.log_interval_probability(lo, hi),
                                   float(mpmath.log(e)), rtol=1e-12)
    lp = np.asarray(gaussian.log_interval_probability(a, b))
    np.testing.assert_allclose(np.exp(lp[central]), ref[central], rtol=1e-12)
    assert np.isneginf(lp[5]) and float(gaussian.interval_probability(2.0, 2.0)) == 0.0
    with pytest.raises(ValueError, match="b must"):
        gaussian.interval_probability(1.0, 0.0)
    with pytest.raises(ValueError, match="std"):
        gaussian.log_interval_probability(0.0, 1.0, std=0.0)
    with pytest.raises(Exception, match="b must"):
        jax.jit(lambda b: gaussian.interval_probability(1.0, b))(0.0).block_until_ready()
    f = lambda m: gaussian.log_interval_probability(-1.0, 2.0, mean=m)
    check_gradient(f, jax.grad(f), jnp.asarray(0.3), step=1e-6, fd_rtol=1e-7)
