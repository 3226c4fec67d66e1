"""jaxml.vi.psis and jaxml.vi.predictive: PSIS against ArviZ's psislw, k̂ as a diagnostic,
posterior-predictive draws."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import vi
from jaxml.vi.predictive import posterior_predictive
from jaxml.vi.psis import psis, psis_diagnostic, psis_expectation


@pytest.mark.parametrize("size,df", [(1000, 3.0), (400, 1.0)])
def test_psis_matches_arviz_psislw(size, df):
    az = pytest.importorskip("arviz")
    rng = np.random.default_rng(0)
    lw = np.log(np.abs(rng.standard_t(df, size=(3, size))))   # heavy right tails
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_lw, ref_k = az.psislw(lw.copy())
    got = psis(lw)
    np.testing.assert_allclose(np.asarray(got.khat), ref_k, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(got.log_weights), ref_lw, rtol=1e-6, atol=1e-9)
    # normalized along the sample axis
    np.testing.assert_allclose(jax.scipy.special.logsumexp(got.log_weights, axis=-1), 0.0,
                               atol=1e-12)


def test_khat_separates_good_and_bad_q_and_corrects_expectations():
    var = jnp.array([4.0, 0.25])

    def log_density(z):
        return -0.5 * jnp.sum(z ** 2 / var)

    exact = vi.MeanFieldGaussian(jnp.zeros(2), 0.5 * jnp.log(var))
    wide = vi.MeanFieldGaussian(jnp.zeros(2), 0.5 * jnp.log(1.5 * var))
    narrow = vi.MeanFieldGaussian(jnp.zeros(2), jnp.zeros(2))
    key = jax.random.key(0)
    d_exact = psis_diagnostic(key, exact, log_density, n_samples=2000)
    d_wide = psis_diagnostic(key, wide, log_density, n_samples=2000)
    d_narrow = psis_diagnostic(key, narrow, log_density, n_samples=2000)
    assert float(d_exact.khat) < 0.5 and float(d_wide.khat) < 0.5
    assert float(d_narrow.khat) > 0.7
    assert d_wide.samples.shape == (2000, 2) and d_wide.log_weights.shape == (2000,)
    # PSIS-corrected second moments under the target from the over-dispersed q
    m2 = psis_expectation(d_wide.log_weights, d_wide.samples ** 2)
    np.testing.assert_allclose(np.asarray(m2), np.asarray(var), rtol=0.15)


def test_posterior_predictive_from_q_and_from_draws():
    X = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])

    def predict(key, z, X):
        return X @ z + 0.1 * jax.random.normal(key, (X.shape[0],))

    q = vi.MeanFieldGaussian(jnp.array([1.0, -1.0]), jnp.log(jnp.array([0.5, 0.5])))
    pp = posterior_predictive(jax.random.key(1), q, predict, X, n_samples=4000)
    assert pp.draws.shape == (4000, 3)
    np.testing.assert_allclose(np.asarray(pp.mean), np.asarray(X @ q.loc), atol=0.06)
    # predictive variance = X diag(s²) Xᵀ + noise
    np.testing.assert_allclose(np.asarray(jnp.var(pp.draws, axis=0)),
                               np.asarray((X ** 2) @ (0.25 * jnp.ones(2)) + 0.01), rtol=0.1)
    draws = jnp.broadcast_to(jnp.array([1.0, 2.0]), (2, 5, 2))   # (n_chains, n_samples, d)
    pp2 = posterior_predictive(jax.random.key(2), draws, lambda k, z, X: X @ z, X)
    assert pp2.draws.shape == (10, 3)
    np.testing.assert_allclose(np.asarray(pp2.mean), np.asarray(X @ jnp.array([1.0, 2.0])))


def test_bad_input():
    with pytest.raises(ValueError, match="log_weights"):
        psis(jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="r_eff"):
        psis(jnp.zeros(100), r_eff=0.0)
    with pytest.raises(TypeError, match="q"):
        psis_diagnostic(jax.random.key(0), object(), lambda z: 0.0, n_samples=100)
    with pytest.raises(ValueError, match="n_samples"):
        psis_diagnostic(jax.random.key(0), vi.MeanFieldGaussian.init(2), lambda z: 0.0,
                        n_samples=0)
    with pytest.raises(TypeError, match="predict"):
        posterior_predictive(jax.random.key(0), jnp.zeros((4, 2)), None, jnp.zeros((1, 2)))


def test_callables_checked_by_name():
    """Issue 13: a log density returning a vector, a predict that fails on one draw, NaN
    inputs: clear errors naming the argument."""
    q = vi.MeanFieldGaussian.init(2)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="log_density must return an array of shape"):
        vi.psis_diagnostic(key, q, lambda z: z, n_samples=20)
    with pytest.raises(TypeError, match="log_density must be callable"):
        vi.psis_diagnostic(key, q, "normal", n_samples=20)
    X = jnp.ones((4, 2))
    with pytest.raises(TypeError, match="predict must be callable"):
        vi.posterior_predictive(key, q, None, X)
    with pytest.raises(TypeError, match="predict failed"):
        vi.posterior_predictive(key, q, lambda k, z, X: X @ jnp.ones(3), X)
    with pytest.raises(ValueError, match="X"):
        vi.posterior_predictive(key, q, lambda k, z, X: X @ z, X.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="q_or_samples"):
        vi.posterior_predictive(key, jnp.full((5, 2), jnp.nan), lambda k, z, X: X @ z, X)
    out = vi.posterior_predictive(key, q, lambda k, z, X: X @ z, X, n_samples=8)
    assert out.draws.shape == (8, 4)


def test_psis_diagnostic_of_a_flow_uses_its_exact_log_prob():
    """A generative flow as q: its draws and log q come from ``sample_and_log_prob`` (no
    numerical inverse). An affine-only flow is a Gaussian: its raw log-weights equal
    log p̃ − log N(z | m, LLᵀ) (the closed form of ``FullRankGaussian``); with planar layers in
    front they equal log p̃ − ``flow.log_prob`` (the numerical inverse) on the same draws."""
    from jaxml import flows

    d = 3
    m = jnp.array([0.5, -1.0, 2.0])
    L = jnp.array([[1.0, 0.0, 0.0], [0.3, 0.8, 0.0], [-0.2, 0.4, 1.5]])
    affine = flows.Affine(m, jnp.log(jnp.diagonal(L)), L)

    def log_density(z):
        return -0.5 * jnp.sum(z ** 2) + jnp.sum(jnp.sin(z))

    key = jax.random.key(3)
    diag = psis_diagnostic(key, flows.Flow(affine, d), log_density, n_samples=50)
    gauss = vi.FullRankGaussian.from_loc_scale_tril(m, L)
    np.testing.assert_allclose(
        np.asarray(diag.raw_log_weights),
        np.asarray(jax.vmap(log_density)(diag.samples) - gauss.log_prob(diag.samples)),
        rtol=1e-10, atol=1e-10)

    planar = flows.stack_layers(jax.random.key(4), flows.Planar, d, 3, scale=0.5)
    flow = flows.Flow((planar, affine), d)
    diag = psis_diagnostic(key, flow, log_density, n_samples=50)
    np.testing.assert_allclose(
        np.asarray(diag.raw_log_weights),
        np.asarray(jax.vmap(log_density)(diag.samples) - flow.log_prob(diag.samples)),
        rtol=1e-8, atol=1e-8)
    assert np.isfinite(float(diag.khat))
