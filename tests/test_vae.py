"""jaxml.vae: decoder likelihoods vs scipy, analytic KL vs Monte Carlo, ELBO ≤ IWAE ≤ log p(x)
(exact by quadrature for a 1-D latent), the linear autoencoder reaches PCA's error, training
without NaN, jit/vmap/float32."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from jaxml import vae
from jaxml.testing import check_mean


@pytest.fixture(scope="module")
def digits():
    X = load_digits().data[:240] / 16.0
    return jnp.asarray(X)


@pytest.fixture(scope="module")
def trained(digits):
    """A small Bernoulli VAE with a 1-D latent, briefly trained (shared by several tests)."""
    model = vae.VAE(jax.random.key(0), 64, 1, width=32)
    return vae.fit(jax.random.key(1), model, digits, n_steps=300, batch_size=64,
                   learning_rate=3e-3)


def test_decoder_log_probs_match_scipy(digits):
    key = jax.random.key(3)
    z = jax.random.normal(key, (5, 2))
    xb = (digits[:5] > 0.5).astype(digits.dtype)
    m = vae.VAE(key, 64, 2, width=16)
    p = jax.nn.sigmoid(vae.decode(m, z))
    expected = stats.bernoulli.logpmf(np.asarray(xb), np.asarray(p)).sum(1)
    np.testing.assert_allclose(vae.decoder_log_prob(m, xb, z), expected, rtol=1e-10)
    g = eqx.tree_at(lambda mod: mod.log_scale_raw,
                    vae.VAE(key, 64, 2, width=16, likelihood="gaussian"),
                    0.3 * jax.random.normal(key, (64,)))         # unequal pixel scales
    scale = g.min_scale + jax.nn.softplus(g.log_scale_raw)
    expected = stats.norm.logpdf(np.asarray(digits[:5]), np.asarray(vae.decode(g, z)),
                                 np.asarray(scale)).sum(1)
    np.testing.assert_allclose(vae.decoder_log_prob(g, digits[:5], z), expected, rtol=1e-10)


def test_analytic_kl_matches_monte_carlo(trained, digits):
    model = trained.params
    x = digits[:4]
    terms = vae.elbo_terms(jax.random.key(0), model, x)
    mean, log_var = vae.encode(model, x)
    sd = np.exp(0.5 * np.asarray(log_var))
    eps = np.random.default_rng(0).standard_normal((20_000,) + mean.shape)
    z = np.asarray(mean) + sd * eps
    log_q = stats.norm.logpdf(z, np.asarray(mean), sd).sum(-1)
    log_p = stats.norm.logpdf(z).sum(-1)
    mc = log_q - log_p                                        # (draws, rows)
    check_mean(mc, np.asarray(terms.kl), alpha=1e-4, label="Monte Carlo KL")
    np.testing.assert_allclose(terms.elbo, terms.reconstruction - terms.kl, rtol=1e-12)


@eqx.filter_jit
def _bound_estimates(model, key, x):
    """One draw of (ELBO, IWAE_1, IWAE_5, IWAE_50), each averaged over the rows of x."""
    ks = jax.random.split(key, 4)
    return jnp.stack([jnp.mean(vae.elbo(ks[0], model, x))] + [
        jnp.mean(vae.iwae_bound(k, model, x, n_samples=K)) for k, K in zip(ks[1:], (1, 5, 50))])


@pytest.mark.parametrize("encoder", ["trained", "mismatched"])
def test_elbo_le_iwae_le_exact_log_likelihood(trained, digits, encoder):
    """1-D latent: log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by quadrature on a fine grid is the
    oracle. E[IWAE_1] = ELBO, and E[ELBO] ≤ E[IWAE_5] ≤ E[IWAE_50] ≤ log p(x) for any encoder;
    with a poor (mismatched) encoder the inequalities are strict and K = 50 closes most of the
    gap."""
    model = trained.params
    if encoder == "mismatched":
        model = eqx.tree_at(lambda m: m.encoder, model,
                            vae.VAE(jax.random.key(9), 64, 1, width=32).encoder)
    x = digits[:6]
    grid = jnp.linspace(-8.0, 8.0, 4001)
    log_lik = jax.vmap(lambda xi: jax.vmap(lambda z: vae.decoder_log_prob(model, xi, z))(
        grid[:, None]))(x)                                                   # (6, 4001)
    log_px = jax.nn.logsumexp(log_lik + stats.norm.logpdf(np.asarray(grid)), axis=1) \
        + math.log(float(grid[1] - grid[0]))
    exact = float(np.mean(log_px))

    keys = jax.random.split(jax.random.key(5), 400)
    est = np.asarray(jax.vmap(_bound_estimates, (None, 0, None))(model, keys, x))
    elbo, iw1, iw5, iw50 = est.T
    # IWAE with K = 1 is the ELBO (Monte Carlo KL instead of the closed form)
    check_mean(iw1 - elbo, 0.0, alpha=1e-4, label="IWAE_1 - ELBO")
    # one-sided: E[hi − lo] ≥ 0 is not rejected (t-test), and with the poor encoder the gap
    # is significantly positive
    for lo, hi in ((elbo, iw5), (iw5, iw50), (iw50, np.full_like(iw50, exact))):
        assert stats.ttest_1samp(hi - lo, 0.0, alternative="less").pvalue > 1e-4
    if encoder == "mismatched":
        for lo, hi in ((elbo, iw5), (iw5, iw50)):
            assert stats.ttest_1samp(hi - lo, 0.0, alternative="greater").pvalue < 1e-4
        assert exact - iw50.mean() < 0.5 * (exact - elbo.mean())


def test_training_improves_elbo_without_nan(trained, digits):
    assert bool(trained.finite) and int(trained.n_iter) == 300
    losses = np.asarray(trained.trace)
    assert np.all(np.isfinite(losses))
    assert losses[-50:].mean() < losses[:10].mean() - 5.0


def test_gaussian_vae_fit_jit_vmap_float32(digits):
    X = digits.astype(jnp.float32)
    model = vae.VAE(jax.random.key(0), 64, 2, width=8, likelihood="gaussian",
                    dtype=jnp.float32)

    def run(lr):
        return vae.fit(jax.random.key(1), model, X, n_steps=30, batch_size=32, learning_rate=lr)
    lrs = jnp.array([1e-3, 1e-2], jnp.float32)
    res = eqx.filter_jit(eqx.filter_vmap(run))(lrs)     # the model holds activation functions
    assert res.trace.shape == (2, 30) and res.trace.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(res.trace)))
    assert float(res.trace[1, -5:].mean()) < float(res.trace[0, -5:].mean())  # lr matters
    one = jax.tree_util.tree_map(lambda a: a[1] if eqx.is_array(a) else a, res.params)
    assert vae.elbo(jax.random.key(0), one, X[:3]).dtype == jnp.float32
    s = vae.sample(jax.random.key(0), one, 5, mean=False)
    assert s.shape == (5, 64) and s.dtype == jnp.float32


def test_sample_and_reconstruct_bernoulli(trained, digits):
    m = trained.params
    probs = vae.sample(jax.random.key(0), m, 7)
    assert probs.shape == (7, 64) and float(probs.min()) >= 0 and float(probs.max()) <= 1
    bits = vae.sample(jax.random.key(0), m, 7, mean=False)
    assert set(np.unique(np.asarray(bits))) <= {0.0, 1.0}
    rec = vae.reconstruct(m, digits[:3])
    mean, _ = vae.encode(m, digits[:3])
    np.testing.assert_allclose(rec, jax.nn.sigmoid(vae.decode(m, mean)), rtol=1e-12)
    # single-row inputs give unbatched outputs
    assert vae.elbo(jax.random.key(0), m, digits[0]).shape == ()


def test_linear_autoencoder_reaches_pca_error(digits):
    """A linear autoencoder's optimum is the PCA subspace: its mean squared reconstruction
    error can't go below PCA's, and training gets close to it."""
    X = digits[:, 16:48]                                       # 32 pixels, 240 rows
    k = 3
    pca = PCA(k).fit(np.asarray(X))
    pca_err = np.mean(np.sum((np.asarray(X) - pca.inverse_transform(pca.transform(
        np.asarray(X)))) ** 2, axis=1))
    ae = vae.Autoencoder(jax.random.key(0), 32, k, width=1, depth=0)   # two affine maps
    res = vae.fit(jax.random.key(1), ae, X, n_steps=2000, batch_size=240, learning_rate=1e-2)
    err = float(vae.reconstruction_loss(res.params, X))
    direct = np.mean(np.sum((np.asarray(X) - np.asarray(jax.vmap(
        lambda v: res.params.decoder(res.params.encoder(v)))(X))) ** 2, axis=1))
    assert err == pytest.approx(direct, rel=1e-10)
    assert err >= pca_err * (1 - 1e-8)
    assert err <= 1.05 * pca_err


def test_init_and_step_reproduce_fit(digits):
    """fit = init + a scan of step: stepping by hand with fit's keys gives fit's trace."""
    import optax
    opt = optax.adam(1e-2)
    for model in (vae.VAE(jax.random.key(0), 64, 2, width=8),
                  vae.Autoencoder(jax.random.key(0), 64, 2, width=8)):
        res = vae.fit(jax.random.key(1), model, digits, n_steps=3, batch_size=16, optimizer=opt)
        state = vae.init(model, optimizer=opt)
        values = []
        for k in jax.random.split(jax.random.key(1), 3):
            state, info = vae.step(k, state, model, digits, optimizer=opt, batch_size=16)
            values.append(info.value)
        np.testing.assert_allclose(np.array(values), res.trace, rtol=1e-12)
        mine = eqx.combine(state.params, model)
        np.testing.assert_allclose(mine.decoder.layers[-1].weight,
                                   res.params.decoder.layers[-1].weight, rtol=1e-12)


def test_bad_input(digits):
    m = vae.VAE(jax.random.key(0), 64, 2, width=8)
    with pytest.raises(ValueError, match="likelihood"):
        vae.VAE(jax.random.key(0), 64, 2, likelihood="poisson")
    with pytest.raises(ValueError, match="last dimension"):
        vae.elbo(jax.random.key(0), m, jnp.ones((3, 10)))
    with pytest.raises(ValueError, match="NaN"):
        vae.fit(jax.random.key(0), m, jnp.full((4, 64), jnp.nan))
    with pytest.raises(TypeError, match="VAE or an Autoencoder"):
        vae.fit(jax.random.key(0), "model", digits)


def _heteroscedastic(key=jax.random.key(4)):
    """A small heteroscedastic VAE with unequal, z-dependent decoder scales."""
    h = vae.VAE(key, 64, 2, width=16, likelihood="heteroscedastic")
    last = h.decoder.layers[-1]
    return eqx.tree_at(lambda m: m.decoder.layers[-1].bias, h,
                       last.bias + 0.5 * jax.random.normal(key, last.bias.shape))


def _by_hand(h, z):
    """μ(z), σ(z) from the raw decoder outputs, in NumPy: σ = min_scale + softplus(r)."""
    out = np.asarray(jax.vmap(h.decoder)(jnp.asarray(z).reshape(-1, h.latent_dim)))
    mu, r = out[:, :h.data_dim], out[:, h.data_dim:]
    return mu, h.min_scale + np.logaddexp(0.0, r)


def test_heteroscedastic_decoder_log_prob_matches_scipy(digits):
    h = _heteroscedastic()
    z = np.asarray(jax.random.normal(jax.random.key(3), (5, 2)))
    mu, sd = _by_hand(h, z)
    assert sd.std() > 0.05 and np.all(sd >= h.min_scale)          # scales vary with z, pixel
    expected = stats.norm.logpdf(np.asarray(digits[:5]), mu, sd).sum(1)
    np.testing.assert_allclose(vae.decoder_log_prob(h, digits[:5], z), expected, rtol=1e-10)
    np.testing.assert_allclose(vae.decoder_log_prob(h, digits[0], z[0]), expected[0],
                               rtol=1e-10)
    np.testing.assert_allclose(vae.decode(h, z), mu, rtol=1e-12)          # decode: the mean
    mean_draws = vae.sample(jax.random.key(0), h, 6)
    assert mean_draws.shape == (6, 64)
    # draws x ~ N(μ(z), σ²(z)): standardized residuals at the same z are N(0, 1)
    zs = jax.random.normal(jax.random.split(jax.random.key(7))[0], (4000, 2))
    x = np.asarray(vae.sample(jax.random.key(7), h, 4000, mean=False))
    mu, sd = _by_hand(h, zs)
    r = ((x - mu) / sd).ravel()
    check_mean(r, 0.0, alpha=1e-5, label="standardized residuals")
    assert abs(r.var() - 1) < 4.5 * math.sqrt(2 / r.size)


def test_heteroscedastic_elbo_terms(digits):
    """Closed-form KL (from the encoder's outputs) and a Monte Carlo reconstruction term that
    agrees with an independent NumPy/scipy Monte Carlo within standard errors."""
    h = _heteroscedastic()
    x = digits[:3]
    n = 4000
    terms = vae.elbo_terms(jax.random.key(0), h, x, n_samples=n)
    mean, log_var = (np.asarray(a) for a in vae.encode(h, x))
    kl = 0.5 * np.sum(mean ** 2 + np.exp(log_var) - 1.0 - log_var, axis=1)
    np.testing.assert_allclose(terms.kl, kl, rtol=1e-10)
    np.testing.assert_allclose(terms.elbo, terms.reconstruction - terms.kl, rtol=1e-12)
    eps = np.random.default_rng(1).standard_normal((n, 3, 2))
    for j in range(3):
        z = mean[j] + np.exp(0.5 * log_var[j]) * eps[:, j]
        mu, sd = _by_hand(h, z)
        rec = stats.norm.logpdf(np.asarray(x[j]), mu, sd).sum(1)        # (n,) draws
        # jaxml's n-draw average has the same per-draw spread: the difference of two
        # independent means, one from scipy's draws (Welch's t on equal spreads)
        se = math.sqrt(2) * rec.std(ddof=1) / math.sqrt(n)
        assert abs(float(terms.reconstruction[j]) - rec.mean()) < 4.5 * se
    res = vae.fit(jax.random.key(1), h, digits, n_steps=40, batch_size=32, learning_rate=1e-2)
    assert bool(res.finite) and res.trace[-5:].mean() < res.trace[:5].mean()


def test_bad_values_and_divergence(digits):
    m = vae.VAE(jax.random.key(0), 64, 2, width=8)
    with pytest.raises(ValueError, match=r"X must be finite and in \[0.0, 1.0\]"):
        vae.fit(jax.random.key(0), m, digits * 16.0, n_steps=2)
    with pytest.raises(ValueError, match="x must be finite and in"):
        vae.elbo(jax.random.key(0), m, digits[:2] - 0.5)
    with pytest.raises(Exception, match="X must be finite and in"):
        jax.jit(lambda X: vae.fit(jax.random.key(0), m, X, n_steps=2, batch_size=8).trace)(
            digits * 16.0)
    g = vae.VAE(jax.random.key(0), 64, 2, width=8, likelihood="gaussian")
    assert np.isfinite(float(vae.loss(jax.random.key(0), g, digits * 16.0)))  # any reals
    run = jax.jit(lambda lr: vae.fit(jax.random.key(0), m, digits, n_steps=2, batch_size=8,
                                     learning_rate=lr).trace)
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="learning_rate must"):
            vae.fit(jax.random.key(0), m, digits, n_steps=2, learning_rate=bad)
        with pytest.raises(Exception, match="learning_rate must"):
            run(bad)
    wrong = eqx.tree_at(lambda mod: mod.decoder.layers[-1].weight, m, jnp.zeros((10, 8)))
    with pytest.raises(ValueError, match="model.decoder"):
        vae.fit(jax.random.key(0), wrong, digits, n_steps=2)
    nan_model = eqx.tree_at(lambda mod: mod.encoder.layers[0].bias, m, jnp.full(8, jnp.nan))
    with pytest.raises(ValueError, match="model contains NaN"):
        vae.fit(jax.random.key(0), nan_model, digits, n_steps=2)
    with pytest.raises(ValueError, match="z must have shape"):
        vae.decoder_log_prob(m, digits[:3], jnp.zeros((2, 2)))
    res = vae.fit(jax.random.key(1), m, digits, n_steps=20, batch_size=16, learning_rate=1e6)
    assert not bool(res.finite) and int(res.n_iter) < 20
