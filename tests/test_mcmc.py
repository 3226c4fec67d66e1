"""jaxml.mcmc: samplers against exact posteriors, diagnostics against ArviZ, bad input."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import mcmc, vi

COV = jnp.array([[1.0, 0.9], [0.9, 2.0]])
MEAN = jnp.array([1.0, -2.0])
PREC = jnp.linalg.inv(COV)


def gauss_2d(z):
    r = z - MEAN
    return -0.5 * r @ PREC @ r


def assert_moments(draws, mean, var, n_se=4.0):
    """Means and variances within n_se Monte Carlo standard errors, from the chains' own ESS."""
    draws = np.asarray(draws)
    flat = draws.reshape(-1, draws.shape[-1])
    m = flat.mean(0)
    ess_m = np.asarray(mcmc.ess(draws))
    se_m = np.sqrt(np.asarray(var) / ess_m)
    np.testing.assert_array_less(np.abs(m - np.asarray(mean)), n_se * se_m)
    sq = (draws - np.asarray(mean)) ** 2
    ess_v = np.asarray(mcmc.ess(sq))
    se_v = np.sqrt(sq.reshape(-1, draws.shape[-1]).var(0) / ess_v)
    np.testing.assert_array_less(np.abs(sq.reshape(-1, draws.shape[-1]).mean(0) - np.asarray(var)),
                                 n_se * se_v)
    assert np.all(np.asarray(mcmc.rhat(draws)) < 1.05)


def test_rwmh_correlated_gaussian():
    res = mcmc.sample(jax.random.key(0), mcmc.RandomWalkMH(gauss_2d),
                      jnp.array([[0.0, 0.0], [3.0, -4.0], [-1.0, 0.0], [2.0, 1.0]]),
                      n_samples=1500, n_chains=4, n_warmup=500)
    assert res.draws.shape == (4, 1500, 2)
    assert_moments(res.draws, MEAN, jnp.diag(COV))
    # Robbins-Monro tuned the scale towards acceptance 0.234
    assert np.all(np.abs(np.asarray(res.acceptance_rate) - 0.234) < 0.06)
    assert res.info.acceptance_rate.shape == (4, 1500)


def test_hmc_correlated_gaussian_and_divergences_counted():
    res = mcmc.sample(jax.random.key(1), mcmc.HMC(gauss_2d, step_size=0.3, n_steps=8),
                      jnp.zeros(2), n_samples=600, n_chains=4, n_warmup=300)
    assert_moments(res.draws, MEAN, jnp.diag(COV))
    assert res.params.step_size.shape == (4,)
    assert res.params.inverse_mass_matrix.shape == (4, 2)
    # the adapted diagonal mass matrix estimates the marginal variances
    np.testing.assert_allclose(np.asarray(res.params.inverse_mass_matrix).mean(0),
                               np.diag(COV), rtol=0.35)
    assert np.all(np.asarray(res.n_divergent) == 0)
    assert np.all(np.asarray(res.acceptance_rate) > 0.6)

    # far too large a step: divergences are flagged and counted, no draw is dropped
    bad = mcmc.sample(jax.random.key(2), mcmc.HMC(gauss_2d, step_size=4.0, n_steps=10,
                                                  adapt_step_size=False,
                                                  adapt_mass_matrix=False),
                      jnp.zeros(2), n_samples=50, n_chains=2, n_warmup=0)
    assert bad.draws.shape == (2, 50, 2)
    np.testing.assert_array_equal(bad.n_divergent, np.sum(bad.info.is_divergent, axis=1))
    assert np.all(np.asarray(bad.n_divergent) > 0)
    assert np.all(np.isfinite(np.asarray(bad.draws)))


def test_hmc_bayesian_linear_regression_exact_posterior():
    key = jax.random.key(3)
    n, d, sigma, alpha = 40, 3, 0.5, 2.0
    X = jax.random.normal(key, (n, d))
    w_true = jnp.array([1.0, -0.5, 0.25])
    y = X @ w_true + sigma * jax.random.normal(jax.random.key(4), (n,))
    cov = jnp.linalg.inv(alpha * jnp.eye(d) + X.T @ X / sigma ** 2)
    mean = cov @ X.T @ y / sigma ** 2

    def log_density(w):
        return -0.5 * jnp.sum((y - X @ w) ** 2) / sigma ** 2 - 0.5 * alpha * w @ w

    res = mcmc.sample(jax.random.key(5), mcmc.HMC(log_density, step_size=0.1, n_steps=10),
                      jnp.zeros(d), n_samples=500, n_chains=4, n_warmup=300)
    assert_moments(res.draws, mean, jnp.diag(cov))


def test_gibbs_normal_gamma_exact_posterior():
    x = 1.0 + 0.5 * jax.random.normal(jax.random.key(6), (25,))
    prior = dict(mu0=0.5, lambda0=2.0, a0=3.0, b0=1.5)
    mu_n, lam_n, a_n, b_n = vi.normal_gamma_posterior(x, **prior)
    # marginals: mu ~ Student-t (mean mu_n, var b/(lambda_n (a-1))), tau ~ Gam(a, b)
    mean = jnp.array([mu_n, a_n / b_n])
    var = jnp.array([b_n / (lam_n * (a_n - 1.0)), a_n / b_n ** 2])
    res = mcmc.sample(jax.random.key(7), mcmc.NormalGammaGibbs(x, **prior), jnp.array([0.0, 1.0]),
                      n_samples=1500, n_chains=4, n_warmup=50)
    assert_moments(res.draws, mean, var)
    assert np.all(np.asarray(res.acceptance_rate) == 1.0)


def test_gibbs_mixture_matches_cavi_on_separated_clusters():
    x = jnp.concatenate([jax.random.normal(jax.random.key(8), (40,)) - 3.0,
                         jax.random.normal(jax.random.key(9), (40,)) + 3.0])
    res = mcmc.sample(jax.random.key(10), mcmc.MixtureGibbs(x, prior_var=10.0),
                      jnp.array([-1.0, 1.0]), n_samples=400, n_chains=2, n_warmup=50)
    assert res.draws.shape == (2, 400, 2)
    gibbs_means = np.sort(np.asarray(res.draws).reshape(-1, 2).mean(0))
    cavi = vi.mixture_cavi(jax.random.key(0), x, 2, prior_var=10.0)
    np.testing.assert_allclose(gibbs_means, np.sort(np.asarray(cavi.q.m).ravel()), atol=0.1)
    assert res.state.assignments.shape == (2, 80)


def test_blackjax_style_steps_in_a_user_scan():
    state = mcmc.hmc_init(jnp.zeros(2), gauss_2d)
    keys = jax.random.split(jax.random.key(11), 5)
    for k in keys:
        state, info = mcmc.hmc_step(k, state, gauss_2d, step_size=0.2, n_steps=5)
    assert isinstance(info, mcmc.HMCInfo) and info.value == state.log_density
    s2 = mcmc.rmh_init(jnp.zeros(2), gauss_2d)
    s2, info2 = mcmc.rmh_step(keys[0], s2, gauss_2d, scale=0.5)
    assert isinstance(info2, mcmc.RWInfo)
    x = jnp.array([0.1, 0.4, -0.3])
    s3 = mcmc.normal_gamma_init(jnp.array([0.0, 1.0]), x)
    s3, info3 = mcmc.normal_gamma_step(keys[1], s3, x, a0=2.0)
    assert s3.position.shape == (2,) and float(s3.position[1]) > 0
    s4 = mcmc.mixture_init(jnp.array([-1.0, 1.0]), x)
    s4, info4 = mcmc.mixture_step(keys[2], s4, x, prior_var=2.0)
    assert s4.assignments.shape == (3,)


def test_diagnostics_match_arviz():
    az = pytest.importorskip("arviz")
    rng = np.random.default_rng(0)
    m, n, d = 4, 203, 3
    x = np.zeros((m, n, d))
    for t in range(1, n):
        x[:, t] = 0.7 * x[:, t - 1] + rng.normal(size=(m, d))
    x[1] += 0.3                                    # a shifted chain
    x[:, :, 2] = np.round(x[:, :, 2], 1)           # ties
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = az.convert_to_dataset(x)
        ref = {"rhat": az.rhat(ds)["x"].values,
               "bulk": az.ess(ds, method="bulk")["x"].values,
               "tail": az.ess(ds, method="tail")["x"].values,
               "mean": az.ess(ds, method="mean")["x"].values}
    got = {"rhat": mcmc.rhat(x), "bulk": mcmc.ess_bulk(x), "tail": mcmc.ess_tail(x),
           "mean": mcmc.ess(x)}
    for name in ref:
        np.testing.assert_allclose(np.asarray(got[name]), ref[name], rtol=1e-6, err_msg=name)


def test_bad_input():
    kernel = mcmc.HMC(gauss_2d)
    with pytest.raises(ValueError, match="n_chains"):
        mcmc.sample(jax.random.key(0), kernel, jnp.zeros(2), n_samples=10, n_chains=0)
    with pytest.raises(ValueError, match="step_size"):
        mcmc.sample(jax.random.key(0), mcmc.HMC(gauss_2d, step_size=0.0), jnp.zeros(2),
                    n_samples=10, n_chains=1)
    with pytest.raises(ValueError, match="step_size"):
        mcmc.hmc_step(jax.random.key(0), mcmc.hmc_init(jnp.zeros(2), gauss_2d), gauss_2d,
                      step_size=-0.1)
    with pytest.raises(ValueError, match="scale"):
        mcmc.sample(jax.random.key(0), mcmc.RandomWalkMH(gauss_2d, scale=-1.0), jnp.zeros(2),
                    n_samples=10, n_chains=1)

    def half_line(z):
        return jnp.where(z[0] > 0, -z[0], -jnp.inf)

    with pytest.raises(ValueError, match="log_density.*initial position"):
        mcmc.sample(jax.random.key(0), mcmc.RandomWalkMH(half_line), jnp.array([-1.0]),
                    n_samples=10, n_chains=1)
    with pytest.raises(ValueError, match="log_density.*initial position"):
        mcmc.hmc_init(jnp.array([-1.0, 0.0]), half_line)
    with pytest.raises(ValueError, match="position"):
        mcmc.sample(jax.random.key(0), kernel, jnp.zeros((3, 2)), n_samples=10, n_chains=2)
    with pytest.raises(TypeError, match="kernel"):
        mcmc.sample(jax.random.key(0), gauss_2d, jnp.zeros(2), n_samples=10)
    with pytest.raises(ValueError, match="draws"):
        mcmc.rhat(jnp.zeros((2, 3)))


def test_hmc_logistic_regression_agrees_with_numpyro_nuts():
    numpyro = pytest.importorskip("numpyro")
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((60, 2)))
    y = jnp.asarray((rng.random(60) < 1 / (1 + np.exp(-(X @ np.array([1.0, -1.0]))))).astype(float))

    def log_density(w):
        logits = X @ w
        return jnp.sum(y * logits - jax.nn.softplus(logits)) - 0.5 * jnp.sum(w * w)

    res = mcmc.sample(jax.random.key(12), mcmc.HMC(log_density, step_size=0.2, n_steps=8),
                      jnp.zeros(2), n_samples=500, n_chains=4, n_warmup=300)

    def model():
        w = numpyro.sample("w", dist.Normal(jnp.zeros(2), 1.0).to_event(1))
        numpyro.sample("y", dist.Bernoulli(logits=X @ w), obs=y)

    ref = MCMC(NUTS(model), num_warmup=300, num_samples=500, num_chains=4,
               chain_method="vectorized", progress_bar=False)
    ref.run(jax.random.key(13))
    w_ref = np.asarray(ref.get_samples(group_by_chain=True)["w"])
    mine = np.asarray(res.draws)
    se = np.sqrt(mine.reshape(-1, 2).var(0) / np.asarray(mcmc.ess(mine))
                 + w_ref.reshape(-1, 2).var(0) / np.asarray(mcmc.ess(w_ref)))
    np.testing.assert_array_less(np.abs(mine.reshape(-1, 2).mean(0) - w_ref.reshape(-1, 2).mean(0)),
                                 4 * se)
    np.testing.assert_allclose(mine.reshape(-1, 2).std(0), w_ref.reshape(-1, 2).std(0), rtol=0.15)


def test_traced_bad_numbers_raise_at_run_time():
    """Issue 13: a bad step size / scale / prior passed as a traced value is caught inside
    the compiled program, naming the argument."""
    key = jax.random.key(0)
    run = jax.jit(lambda s, j: mcmc.sample(key, mcmc.HMC(gauss_2d, step_size=s, jitter=j,
                                                         n_steps=2),
                                           jnp.zeros(2), n_samples=3, n_chains=1,
                                           n_warmup=0).draws)
    assert np.all(np.isfinite(np.asarray(run(0.1, 0.2))))
    with pytest.raises(Exception, match="step_size must"):
        run(-0.1, 0.2)
    with pytest.raises(Exception, match="jitter must"):
        run(0.1, 1.5)
    with pytest.raises(ValueError, match="jitter"):
        mcmc.sample(key, mcmc.HMC(gauss_2d, jitter=1.0), jnp.zeros(2), n_samples=3, n_chains=1)
    with pytest.raises(ValueError, match="target_accept"):
        mcmc.sample(key, mcmc.HMC(gauss_2d, target_accept=1.0), jnp.zeros(2), n_samples=3,
                    n_chains=1)
    with pytest.raises(Exception, match="scale must"):
        jax.jit(lambda s: mcmc.rmh_step(key, mcmc.rmh_init(jnp.zeros(2), gauss_2d), gauss_2d,
                                       scale=s)[0].position)(-1.0)
    with pytest.raises(ValueError, match="log_density must return a scalar"):
        mcmc.hmc_init(jnp.zeros(2), lambda z: z)
    x = jnp.array([0.5, 1.0, 1.5])
    with pytest.raises(Exception, match="b0 must"):
        jax.jit(lambda b: mcmc.normal_gamma_step(key, mcmc.normal_gamma_init(
            jnp.array([0.0, 1.0]), x, b0=1.0), x, b0=b)[0].position)(-1.0)
