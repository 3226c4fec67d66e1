"""jaxml.information against scipy (closed forms, spacing estimators), a cKDTree oracle
(Kozachenko–Leonenko) and the closed forms within Monte Carlo error."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

from jaxml import information, vi

METHODS = ["vasicek", "van es", "ebrahimi", "correa", "auto"]


# ----------------------------------------------------------------------------- closed forms

def test_uniform_entropy_matches_scipy():
    low, high = np.array([0.0, -1.0, 2.0]), np.array([0.5, 3.0, 2.25])
    want = stats.uniform(loc=low, scale=high - low).entropy()
    np.testing.assert_allclose(information.uniform_entropy(low, high), want, rtol=1e-14)
    assert float(information.uniform_entropy(0.0, 0.5)) < 0  # negative below unit width


def test_gaussian_entropies_match_scipy():
    var = np.array([0.01, 1.0, 7.5])
    np.testing.assert_allclose(information.gaussian_entropy(var),
                               stats.norm(scale=np.sqrt(var)).entropy(), rtol=1e-14)
    A = np.random.default_rng(0).standard_normal((3, 3))
    cov = A @ A.T + 0.5 * np.eye(3)
    np.testing.assert_allclose(information.multivariate_gaussian_entropy(cov),
                               stats.multivariate_normal(cov=cov).entropy(), rtol=1e-12)


def test_estimation_bound_equality_for_gaussian_strict_otherwise():
    var = np.array([0.3, 1.0, 4.0])
    # Gaussian: the bound is the variance itself (the MSE of the mean)
    np.testing.assert_allclose(information.estimation_bound(information.gaussian_entropy(var)),
                               var, rtol=1e-13)
    cov = 2.5 * np.eye(3)
    np.testing.assert_allclose(
        information.estimation_bound(information.multivariate_gaussian_entropy(cov), dim=3),
        2.5, rtol=1e-13)
    # uniform [a, b]: variance (b − a)²/12 > (b − a)²/(2πe); Laplace(b): 2b² > 2e b²/π
    w = 3.0
    bound_u = information.estimation_bound(information.uniform_entropy(0.0, w))
    np.testing.assert_allclose(bound_u, w**2 / (2 * math.pi * math.e), rtol=1e-13)
    assert w**2 / 12 > float(bound_u)
    lap = stats.laplace(scale=1.5)
    assert lap.var() > float(information.estimation_bound(lap.entropy()))


# ----------------------------------------------------------------------------- spacings

@pytest.mark.parametrize("n", [7, 1200])
def test_spacing_estimators_equal_scipy(n):
    x = np.random.default_rng(n).standard_normal(n)
    for method in METHODS:
        for m in (None, 2):
            want = stats.differential_entropy(x, method=method, window_length=m)
            got = information.spacing_entropy(x, method=method, window_length=m)
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12,
                                       err_msg=f"{method}, m={m}")


def test_spacing_estimators_on_skewed_data_and_transforms():
    x = np.random.default_rng(1).exponential(size=300)
    for method in METHODS[:4]:
        want = stats.differential_entropy(x, method=method, window_length=5)
        f = jax.jit(lambda v, method=method: information.spacing_entropy(
            v, method=method, window_length=5))
        np.testing.assert_allclose(f(x), want, rtol=1e-10)
    # vmap over independent samples; float32 stays float32
    X = np.random.default_rng(2).standard_normal((4, 100))
    got = jax.vmap(lambda v: information.spacing_entropy(v, method="vasicek"))(X)
    np.testing.assert_allclose(got, stats.differential_entropy(X, axis=1, method="vasicek"),
                               rtol=1e-10)
    x32 = X[0, :40].astype(np.float32)
    for method in METHODS[:4]:
        got = information.spacing_entropy(x32, method=method, window_length=3)
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(got, stats.differential_entropy(
            x32.astype(np.float64), method=method, window_length=3), rtol=1e-5)
    assert information.knn_entropy(X[:2].T.astype(np.float32), k=2).dtype == jnp.float32


# ----------------------------------------------------------------------------- nearest neighbours

def _kl_reference(x, k):
    n, d = x.shape
    dist, _ = cKDTree(x).query(x, k + 1)
    return (digamma(n) - digamma(k) + 0.5 * d * np.log(np.pi) - gammaln(1 + 0.5 * d)
            + d * np.mean(np.log(dist[:, k])))


@pytest.mark.parametrize("d,k", [(1, 1), (2, 3), (3, 5), (2, 12)])
def test_knn_entropy_equals_kdtree_oracle(d, k):
    x = np.random.default_rng(10 + d).standard_normal((500, d)) * np.arange(1, d + 1)
    want = _kl_reference(x, k)
    np.testing.assert_allclose(information.knn_entropy(x, k=k), want, rtol=1e-10)
    np.testing.assert_allclose(information.knn_entropy(x, k=k, block_size=37), want, rtol=1e-10)


def test_knn_entropy_converges_to_closed_form():
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    truth = stats.multivariate_normal(cov=cov).entropy()
    L = np.linalg.cholesky(cov)
    R, n = 6, 1500
    X = np.random.default_rng(3).standard_normal((R, n, 2)) @ L.T
    est = np.array(jax.vmap(lambda x: information.knn_entropy(x, k=3))(X))
    # the replicates' spread is the Monte Carlo error; the bias at n = 1500 is far smaller
    se = est.std(ddof=1) / math.sqrt(R)
    assert abs(est.mean() - truth) < 4 * se + 0.01, (est.mean(), truth, se)
    np.testing.assert_allclose(est[0], _kl_reference(X[0], 3), rtol=1e-10)
    # 1-D uniform (−ln of a density with edges): still consistent
    u = np.random.default_rng(4).uniform(0.0, 2.0, 4000)
    assert abs(float(information.knn_entropy(u, k=2)) - math.log(2.0)) < 0.03


# ----------------------------------------------------------------------------- Monte Carlo

def test_monte_carlo_entropy_vi_families_within_error():
    key = jax.random.key(0)
    mf = vi.MeanFieldGaussian(jnp.array([0.0, 1.0, -2.0]), jnp.array([0.3, -0.5, 0.0]))
    res = information.monte_carlo_entropy(key, mf, 20000)
    truth = stats.multivariate_normal(cov=np.diag(np.exp(2 * np.array([0.3, -0.5, 0.0])))).entropy()
    assert abs(float(res.entropy) - truth) < 4 * float(res.stderr)
    assert 0 < float(res.stderr) < 0.05
    ex = vi.Exponential.from_rate(jnp.array([0.5, 3.0]))
    r = information.monte_carlo_entropy(jax.random.key(1), ex, 20000)
    truth = stats.expon(scale=2.0).entropy() + stats.expon(scale=1 / 3).entropy()
    assert abs(float(r.entropy) - truth) < 4 * float(r.stderr)


class _Laplace:
    """A plain Python family (not a pytree): the estimate runs un-jitted."""

    def __init__(self, scale):
        self.scale = scale

    def sample(self, key, n):
        return self.scale * jax.random.laplace(key, (n, 1))

    def log_prob(self, z):
        return -jnp.abs(z[:, 0]) / self.scale - math.log(2 * self.scale)


def test_monte_carlo_entropy_any_family():
    res = information.monte_carlo_entropy(jax.random.key(2), _Laplace(1.5), 20000)
    truth = stats.laplace(scale=1.5).entropy()
    assert abs(float(res.entropy) - truth) < 4 * float(res.stderr)


# ----------------------------------------------------------------------------- bad input

def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="high"):
        information.uniform_entropy(1.0, 1.0)
    with pytest.raises(ValueError, match="high"):
        information.uniform_entropy([0.0, 2.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="low"):
        information.uniform_entropy(np.nan, 1.0)
    with pytest.raises(ValueError, match="variance"):
        information.gaussian_entropy(0.0)
    with pytest.raises(ValueError, match="cov"):
        information.multivariate_gaussian_entropy([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="cov"):
        information.multivariate_gaussian_entropy(np.ones(3))
    for f in (information.spacing_entropy, information.knn_entropy):
        with pytest.raises(ValueError, match="x"):
            f(np.array([]))
        with pytest.raises(ValueError, match="x"):
            f(np.array([0.0, 1.0, np.inf, 2.0, 3.0]))
    with pytest.raises(ValueError, match="window_length"):
        information.spacing_entropy(np.arange(10.0), window_length=5)
    with pytest.raises(ValueError, match="method"):
        information.spacing_entropy(np.arange(10.0), method="kde")
    with pytest.raises(ValueError, match="k"):
        information.knn_entropy(np.arange(10.0), k=10)
    with pytest.raises(ValueError, match="entropy"):
        information.estimation_bound(np.nan)
    mf = vi.MeanFieldGaussian(jnp.zeros(2), jnp.zeros(2))
    with pytest.raises(TypeError, match="family"):
        information.monte_carlo_entropy(jax.random.key(0), object(), 10)
    with pytest.raises(TypeError, match="key"):
        information.monte_carlo_entropy(jax.random.PRNGKey(0), mf, 10)
    with pytest.raises(ValueError, match="n"):
        information.monte_carlo_entropy(jax.random.key(0), mf, 1)


def test_traced_bad_values_raise_at_run_time():
    """Issue 13: the value checks also run inside jit, naming the argument."""
    with pytest.raises(Exception, match="variance must"):
        jax.jit(information.gaussian_entropy)(-1.0)
    with pytest.raises(Exception, match="high must be greater than low"):
        jax.jit(information.uniform_entropy)(1.0, 0.5)
    with pytest.raises(Exception, match="cov must be symmetric positive definite"):
        jax.jit(information.multivariate_gaussian_entropy)(-jnp.eye(2))
    np.testing.assert_allclose(jax.jit(information.uniform_entropy)(0.0, 2.0), math.log(2.0))
    np.testing.assert_allclose(jax.jit(information.multivariate_gaussian_entropy)(jnp.eye(2)),
                               1.0 + math.log(2 * math.pi))
