"""jaxml.vi against closed forms, scipy, exact conjugate posteriors and jax.grad.

Oracles: scipy.stats densities/entropies/moments; the exact Gaussian posterior and log
evidence of Bayesian linear regression (scipy multivariate_normal of the marginal); the exact
Normal-Gamma posterior and evidence; jax.grad of analytic ELBOs written here from the model
and the families' closed-form moments; Monte Carlo (numpy + scipy) estimates of CAVI ELBOs.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hst

from jaxml import vi
from jaxml.testing import check_mean, check_monotone, check_variance_reduction

EULER = 0.5772156649015329


# ----------------------------------------------------------------------- model fixture

class BLR:
    """Bayesian linear regression z ~ N(0, I/alpha), y | z ~ N(Xz, noise I)."""

    def __init__(self, seed=0, n=20, d=3, alpha=1.5, noise=0.5):
        rng = np.random.default_rng(seed)
        self.X = rng.standard_normal((n, d))
        self.y = self.X @ rng.standard_normal(d) + math.sqrt(noise) * rng.standard_normal(n)
        self.alpha, self.noise, self.n, self.d = alpha, noise, n, d
        A = self.X.T @ self.X / noise + alpha * np.eye(d)
        self.post_cov = np.linalg.inv(A)
        self.post_mean = self.post_cov @ (self.X.T @ self.y / noise)
        marg_cov = noise * np.eye(n) + self.X @ self.X.T / alpha
        self.log_evidence = st.multivariate_normal(np.zeros(n), marg_cov).logpdf(self.y)

    def log_lik(self, z):
        r = jnp.asarray(self.y) - jnp.asarray(self.X) @ z
        return -0.5 * jnp.sum(r * r) / self.noise - 0.5 * self.n * jnp.log(2 * jnp.pi * self.noise)

    def log_prior(self, z):
        return -0.5 * self.alpha * jnp.sum(z * z) - 0.5 * self.d * jnp.log(2 * jnp.pi / self.alpha)

    def log_joint(self, z):
        return self.log_lik(z) + self.log_prior(z)

    def expected_log_joint(self, m, S):
        """E_{z~N(m,S)}[log p(y, z)] (any q with mean m and covariance S)."""
        X, y = jnp.asarray(self.X), jnp.asarray(self.y)
        r = y - X @ m
        e_lik = (-0.5 * (jnp.sum(r * r) + jnp.trace(X.T @ X @ S)) / self.noise
                 - 0.5 * self.n * jnp.log(2 * jnp.pi * self.noise))
        e_prior = (-0.5 * self.alpha * (jnp.sum(m * m) + jnp.trace(S))
                   - 0.5 * self.d * jnp.log(2 * jnp.pi / self.alpha))
        return e_lik + e_prior


_BLR = BLR()


@pytest.fixture(scope="module")
def blr():
    return _BLR


def _tril(raw):
    return jnp.tril(raw, -1) + jnp.diag(jnp.exp(jnp.diag(raw)))


def analytic_elbo_gaussian_model(model, q):
    """Exact ELBO of q on the BLR model from q's closed-form moments and entropy."""
    if isinstance(q, vi.MeanFieldGaussian):
        m, S = q.loc, jnp.diag(jnp.exp(2 * q.log_scale))
        ent = 0.5 * jnp.linalg.slogdet(2 * jnp.pi * jnp.e * S)[1]
    elif isinstance(q, vi.FullRankGaussian):
        L = _tril(q.raw_scale_tril)
        m, S = q.loc, L @ L.T
        ent = 0.5 * jnp.linalg.slogdet(2 * jnp.pi * jnp.e * S)[1]
    elif isinstance(q, vi.Logistic):
        s = jnp.exp(q.log_scale)
        m, S = q.loc, jnp.diag(s ** 2 * jnp.pi ** 2 / 3)
        ent = jnp.sum(jnp.log(s) + 2.0)
    else:
        raise TypeError(type(q))
    return model.expected_log_joint(m, S) + ent


# a gamma-shaped target for the exponential family (support z > 0)
GAMMA_A = np.array([2.0, 3.5])
GAMMA_B = np.array([1.0, 0.5])


def gamma_log_joint(z):
    return jnp.sum((GAMMA_A - 1) * jnp.log(z) - GAMMA_B * z)


def analytic_elbo_gamma(q):
    lam = jnp.exp(q.log_rate)
    e_log_z = -EULER - jnp.log(lam)
    return jnp.sum((GAMMA_A - 1) * e_log_z - GAMMA_B / lam) + jnp.sum(1.0 - jnp.log(lam))


def _families(d):
    rng = np.random.default_rng(3)
    raw = np.tril(0.3 * rng.standard_normal((d, d)))
    raw[np.diag_indices(d)] = np.log(rng.uniform(0.3, 0.8, d))
    return {
        "meanfield": vi.MeanFieldGaussian(0.5 * rng.standard_normal(d), np.log(rng.uniform(0.2, 0.7, d))),
        "fullrank": vi.FullRankGaussian(0.5 * rng.standard_normal(d), raw),
        "logistic": vi.Logistic(0.5 * rng.standard_normal(d), np.log(rng.uniform(0.1, 0.4, d))),
    }


ESTIMATORS = {
    "reparam": vi.Reparameterization(),
    "entropy": vi.AnalyticEntropy(),
    "stl": vi.StickingTheLanding(),
    "score": vi.ScoreFunction(),
    "score_loo": vi.ScoreFunctionLOO(),
}


_DRAWS = {}


def _elbo_and_grad(key, target, q, estimator, n_samples):
    """The estimators holding the prior read the log-likelihood by its own keyword."""
    if estimator.target == "log_likelihood":
        return vi.elbo_and_grad(key, None, q, estimator=estimator, n_samples=n_samples,
                                log_likelihood=target)
    return vi.elbo_and_grad(key, target, q, estimator=estimator, n_samples=n_samples)


def _draws(key, log_joint, q, estimator, n_samples, m):
    """m independent (elbo, grad) estimates; one compilation per (target, estimator, S)."""
    tag = (log_joint, type(estimator).__name__, n_samples)  # bound methods hash by (self, func)
    if tag not in _DRAWS:
        _DRAWS[tag] = jax.jit(jax.vmap(
            lambda k, q: _elbo_and_grad(k, log_joint, q, estimator, n_samples),
            in_axes=(0, None)))
    return _DRAWS[tag](jax.random.split(key, m), q)


_EXACT = {}


def _exact(model):
    """jit(value_and_grad) of the analytic ELBO, compiled once per family type."""
    if id(model) not in _EXACT:
        _EXACT[id(model)] = jax.jit(jax.value_and_grad(
            lambda p: analytic_elbo_gaussian_model(model, p)))
    return _EXACT[id(model)]


# Unbiasedness below: check_mean((elbo, grad) draws, (exact ELBO, exact gradient)), a z-test
# per coordinate from the draws' own standard errors, Bonferroni at alpha = 1e-3 over at most
# 13 coordinates here, so every |z| ≤ 3.96.


# ------------------------------------------------------------- gradient estimators

@pytest.mark.parametrize("est", list(ESTIMATORS))
@pytest.mark.parametrize("fam", ["meanfield", "fullrank", "logistic"])
def test_estimators_unbiased_conjugate_gaussian(blr, fam, est):
    q = _families(blr.d)[fam]
    exact_val, exact_grad = _exact(blr)(q)
    m = 2000 if est.startswith("score") else 500
    out = _draws(jax.random.key(11), blr.log_joint, q, ESTIMATORS[est], 3, m)
    check_mean((out.elbo, out.grad), (exact_val, exact_grad))
    # the gradient is not trivially zero
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(exact_grad)) > 0.1


@pytest.mark.parametrize("fam", ["meanfield", "fullrank"])
def test_analytic_kl_unbiased(blr, fam):
    q = _families(blr.d)[fam]
    est = vi.AnalyticKL(np.zeros(blr.d), np.eye(blr.d) / blr.alpha)
    exact_val, exact_grad = _exact(blr)(q)
    out = _draws(jax.random.key(12), blr.log_lik, q, est, 3, 500)
    check_mean((out.elbo, out.grad), (exact_val, exact_grad))


def test_analytic_kl_refuses_a_log_density(blr):
    """The prior lives in AnalyticKL: passing the full log joint (which would count the prior
    twice) is an error, and so is a log_likelihood for an estimator that reads the joint."""
    q = _families(blr.d)["meanfield"]
    est = vi.AnalyticKL(np.zeros(blr.d), np.eye(blr.d) / blr.alpha)
    with pytest.raises(TypeError, match="log_likelihood"):
        vi.elbo_and_grad(jax.random.key(0), blr.log_joint, q, estimator=est)
    with pytest.raises(TypeError, match="log_likelihood"):
        vi.fit_sgvi(jax.random.key(0), blr.log_joint, q, estimator=est, n_steps=2)
    with pytest.raises(TypeError, match="log_density"):
        vi.elbo_and_grad(jax.random.key(0), None, q, estimator=vi.Reparameterization(),
                         log_likelihood=blr.log_lik)
    with pytest.raises(TypeError, match="log_likelihood must be callable"):
        vi.elbo_and_grad(jax.random.key(0), None, q, estimator=est)


def test_local_reparameterization_unbiased(blr):
    """The BLR likelihood reads z through u = Xz: local draws of u give the same ELBO and
    gradient, in expectation, as the closed form."""
    X, y = jnp.asarray(blr.X), jnp.asarray(blr.y)

    def log_lik_u(u):
        return (-0.5 * jnp.sum((y - u) ** 2) / blr.noise
                - 0.5 * blr.n * jnp.log(2 * jnp.pi * blr.noise))

    for fam in ("meanfield", "fullrank"):
        q = _families(blr.d)[fam]
        exact_val, exact_grad = _exact(blr)(q)
        est = vi.LocalReparameterization(X, np.zeros(blr.d), np.eye(blr.d) / blr.alpha)
        out = _draws(jax.random.key(14), log_lik_u, q, est, 3, 500)
        check_mean((out.elbo, out.grad), (exact_val, exact_grad))
        # Gauss-Hermite with 3 nodes is exact for this quadratic likelihood
        gh = vi.LocalReparameterization(X, np.zeros(blr.d), np.eye(blr.d) / blr.alpha,
                                        n_nodes=3)
        g = vi.elbo_and_grad(None, None, q, estimator=gh, log_likelihood=log_lik_u)
        np.testing.assert_allclose(g.elbo, exact_val, rtol=1e-10)


@pytest.mark.parametrize("est", list(ESTIMATORS))
def test_estimators_unbiased_exponential_family(est):
    q = vi.Exponential(np.log([0.7, 0.2]))
    exact_val, exact_grad = jax.jit(jax.value_and_grad(analytic_elbo_gamma))(q)
    m = 2000 if est.startswith("score") else 500
    out = _draws(jax.random.key(13), gamma_log_joint, q, ESTIMATORS[est], 3, m)
    check_mean((out.elbo, out.grad), (exact_val, exact_grad))


def test_stl_has_zero_variance_at_the_posterior(blr):
    q = vi.FullRankGaussian.from_mean_cov(blr.post_mean, blr.post_cov)
    out = _draws(jax.random.key(1), blr.log_joint, q, vi.StickingTheLanding(), 3, 500)
    for g in jax.tree_util.tree_leaves(out.grad):
        np.testing.assert_allclose(g, 0.0, atol=1e-9)
    np.testing.assert_allclose(out.elbo, blr.log_evidence, rtol=1e-10)
    rep = _draws(jax.random.key(1), blr.log_joint, q, vi.Reparameterization(), 3, 500)
    assert float(jnp.std(rep.grad.loc, axis=0).max()) > 1e-3


def test_baseline_reduces_score_function_variance(blr):
    q = _families(blr.d)["meanfield"]
    # the one-sided 99.9% upper bound on Var[LOO]/Var[plain] of the loc gradient is below 1/2
    # (paired draws: the same keys for both)
    def loc_grad(estimator):
        return lambda k: _elbo_and_grad(k, blr.log_joint, q, estimator, 3).grad.loc

    check_variance_reduction(jax.random.key(2), loc_grad(vi.ScoreFunctionLOO()),
                             loc_grad(vi.ScoreFunction()), 2000, ratio=0.5)


# ------------------------------------------------------------------------ families

def test_log_prob_and_entropy_vs_scipy():
    rng = np.random.default_rng(0)
    fams = _families(3)
    z = rng.standard_normal((5, 3))
    mf = fams["meanfield"]
    np.testing.assert_allclose(
        mf.log_prob(z), st.norm(mf.loc, np.exp(mf.log_scale)).logpdf(z).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(mf.entropy(), st.norm(mf.loc, np.exp(mf.log_scale)).entropy().sum())
    fr = fams["fullrank"]
    L = np.asarray(_tril(fr.raw_scale_tril))
    mvn = st.multivariate_normal(np.asarray(fr.loc), L @ L.T)
    np.testing.assert_allclose(fr.log_prob(z), mvn.logpdf(z), rtol=1e-12)
    np.testing.assert_allclose(fr.log_prob(z[0]), mvn.logpdf(z[0]), rtol=1e-12)
    np.testing.assert_allclose(fr.entropy(), mvn.entropy(), rtol=1e-12)
    np.testing.assert_allclose(fr.covariance(), L @ L.T, rtol=1e-12)
    lg = fams["logistic"]
    dist = st.logistic(np.asarray(lg.loc), np.exp(np.asarray(lg.log_scale)))
    np.testing.assert_allclose(lg.log_prob(z), dist.logpdf(z).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(lg.entropy(), dist.entropy().sum(), rtol=1e-12)
    ex = vi.Exponential.from_rate([0.5, 2.0, 3.0])
    edist = st.expon(scale=1 / np.array([0.5, 2.0, 3.0]))
    zp = np.abs(z)
    np.testing.assert_allclose(ex.log_prob(zp), edist.logpdf(zp).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(ex.entropy(), edist.entropy().sum(), rtol=1e-12)
    assert np.all(np.isneginf(ex.log_prob(-zp)))


def _moment_check(samples, mean, var):
    """E z = mean and E (z − mean)² = var, each coordinate within the draws' own standard
    errors (Bonferroni at alpha = 1e-3 over ≤ 6 coordinates: |z| ≤ 3.77)."""
    check_mean({"mean": samples, "var": (samples - mean) ** 2}, {"mean": mean, "var": var})


def test_samplers_have_the_right_moments():
    n = 40000
    fams = _families(3)
    for name, q in fams.items():
        z = np.asarray(q.sample(jax.random.key(5), n))
        if name == "logistic":
            dist = st.logistic(np.asarray(q.loc), np.exp(np.asarray(q.log_scale)))
        elif name == "meanfield":
            dist = st.norm(np.asarray(q.loc), np.exp(np.asarray(q.log_scale)))
        else:
            L = np.asarray(_tril(q.raw_scale_tril))
            dist = st.norm(np.asarray(q.loc), np.sqrt(np.diag(L @ L.T)))
        _moment_check(z, dist.mean(), dist.var())
        np.testing.assert_allclose(q.mean(), dist.mean(), rtol=1e-12)
        np.testing.assert_allclose(q.variance(), dist.var(), rtol=1e-12)
    # full-rank: E (z − m)(z − m)ᵀ = S, every entry within the draws' standard errors
    # (9 coordinates at alpha = 1e-3: |z| ≤ 3.86)
    q = fams["fullrank"]
    L = np.asarray(_tril(q.raw_scale_tril))
    S = L @ L.T
    r = np.asarray(q.sample(jax.random.key(6), n)) - np.asarray(q.loc)
    check_mean(r[:, :, None] * r[:, None, :], S)
    ex = vi.Exponential.from_rate([0.5, 4.0])
    dist = st.expon(scale=1 / np.array([0.5, 4.0]))
    z = np.asarray(ex.sample(jax.random.key(7), n))
    assert z.min() >= 0
    _moment_check(z, dist.mean(), dist.var())


def test_constructors_roundtrip():
    rng = np.random.default_rng(1)
    B = rng.standard_normal((3, 3))
    cov = B @ B.T + 0.5 * np.eye(3)
    q = vi.FullRankGaussian.from_mean_cov(np.ones(3), cov)
    np.testing.assert_allclose(q.covariance(), cov, rtol=1e-10)
    np.testing.assert_allclose(q.scale_tril, np.linalg.cholesky(cov), rtol=1e-10)
    mf = vi.MeanFieldGaussian.from_mean_std(np.zeros(3), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(vi.FullRankGaussian.from_mean_field(mf).covariance(),
                               np.diag([1.0, 4.0, 9.0]), rtol=1e-12)
    np.testing.assert_allclose(mf.kl_to_gaussian(),
                               st.norm.logpdf(0) * 0 + 0.5 * (14 - 3 - np.log(36)), rtol=1e-12)


# ------------------------------------------------------------ ELBO vs log evidence

def test_elbo_below_log_evidence_and_equal_at_posterior(blr):
    q_post = vi.FullRankGaussian.from_mean_cov(blr.post_mean, blr.post_cov)
    # log p(y, z) - log q(z) = log p(y) for every z when q is the exact posterior
    val = _draws(jax.random.key(0), blr.log_joint, q_post, vi.Reparameterization(), 3, 500)
    np.testing.assert_allclose(val.elbo, blr.log_evidence, rtol=1e-10)
    np.testing.assert_allclose(_exact(blr)(q_post)[0], blr.log_evidence, rtol=1e-10)
    for q in _families(blr.d).values():
        assert float(_exact(blr)(q)[0]) < blr.log_evidence
        mc = _draws(jax.random.key(1), blr.log_joint, q, vi.Reparameterization(), 3, 500)
        assert float(jnp.mean(mc.elbo)) < blr.log_evidence
    # mean-field at the best diagonal: still strictly below (the posterior is correlated)
    prec = np.linalg.inv(blr.post_cov)
    mf = vi.MeanFieldGaussian.from_mean_std(blr.post_mean, 1 / np.sqrt(np.diag(prec)))
    gap = blr.log_evidence - float(_exact(blr)(mf)[0])
    kl = 0.5 * (np.trace(prec @ np.diag(1 / np.diag(prec))) - blr.d
                + np.linalg.slogdet(blr.post_cov)[1] + np.sum(np.log(np.diag(prec))))
    np.testing.assert_allclose(gap, kl, rtol=1e-8)


# ---------------------------------------------------------------------------- SGVI

@pytest.fixture(scope="module")
def sgvi_fit(blr):
    fit = jax.jit(lambda k, lr: vi.fit_sgvi(k, blr.log_joint, vi.FullRankGaussian.init(blr.d),
                                            n_steps=3000, learning_rate=lr, n_samples=4,
                                            estimator=vi.StickingTheLanding()))
    return fit


def test_sgvi_fullrank_recovers_exact_posterior(blr, sgvi_fit):
    # vmap over the (traced) learning rate: one compiled call, two independent fits
    many = jax.vmap(sgvi_fit, in_axes=(None, 0))(jax.random.key(0), jnp.array([0.02, 0.03]))
    for i in range(2):
        q = jax.tree_util.tree_map(lambda a: a[i], many.params)
        np.testing.assert_allclose(q.loc, blr.post_mean, atol=1e-2)
        np.testing.assert_allclose(q.covariance(), blr.post_cov, atol=1e-2)
        # the trace is the loss, -ELBO
        np.testing.assert_allclose(-many.trace[i, -100:].mean(), blr.log_evidence, atol=1e-3)
    assert many.trace.shape == (2, 3000) and np.all(np.asarray(many.n_iter) == 3000)
    assert np.all(np.asarray(many.finite))
    assert isinstance(many, vi.TrainResult)


def test_sgvi_step_matches_fit(blr):
    q0 = vi.MeanFieldGaussian.init(blr.d)
    opt = optax.adam(0.05)
    res = jax.jit(lambda k: vi.fit_sgvi(k, blr.log_joint, q0, n_steps=5, optimizer=opt))(
        jax.random.key(3))
    state = vi.sgvi.init(q0, optimizer=opt)
    keys = jax.random.split(jax.random.key(3), 5)
    step = jax.jit(lambda k, s: vi.sgvi.step(k, s, blr.log_joint, optimizer=opt))
    losses = []
    for k in keys:
        state, info = step(k, state)
        losses.append(info.value)
    np.testing.assert_allclose(res.params.loc, state.params.loc, rtol=1e-10)
    np.testing.assert_allclose(res.trace, losses, rtol=1e-10)


def test_sgvi_float32_and_score_estimator(blr):
    X32, y32 = jnp.asarray(blr.X, jnp.float32), jnp.asarray(blr.y, jnp.float32)

    def log_joint(z):
        r = y32 - X32 @ z
        return -0.5 * jnp.sum(r * r) / blr.noise - 0.5 * blr.alpha * jnp.sum(z * z)

    q0 = vi.MeanFieldGaussian.init(blr.d, dtype=jnp.float32)
    res = jax.jit(lambda k: vi.fit_sgvi(k, log_joint, q0, n_steps=800, learning_rate=0.05,
                                        n_samples=6, estimator=vi.ScoreFunctionLOO()))(
        jax.random.key(0))
    assert res.params.loc.dtype == jnp.float32 and res.trace.dtype == jnp.float32
    np.testing.assert_allclose(res.params.loc, blr.post_mean, atol=0.1)
    g = vi.elbo_and_grad(jax.random.key(0), log_joint, q0, estimator=vi.AnalyticEntropy(),
                         n_samples=2)
    assert g.elbo.dtype == jnp.float32 and g.grad.loc.dtype == jnp.float32
    for q in (vi.FullRankGaussian.init(2, dtype=jnp.float32),
              vi.Logistic(jnp.zeros(2, jnp.float32), jnp.zeros(2, jnp.float32)),
              vi.Exponential(jnp.zeros(2, jnp.float32))):
        assert q.sample(jax.random.key(0), 3).dtype == jnp.float32
        assert q.log_prob(jnp.ones((3, 2), jnp.float32)).dtype == jnp.float32


# ---------------------------------------------------------------------------- CAVI

NG_PRIOR = dict(mu0=0.5, lambda0=2.0, a0=2.0, b0=1.5)
_ng_fit = jax.jit(vi.normal_gamma_cavi, static_argnames=("max_iter",))


@pytest.fixture(scope="module")
def ng_data():
    return np.random.default_rng(4).normal(1.3, 0.7, 25)


def test_normal_gamma_reaches_bishop_fixed_point(ng_data):
    x, p = ng_data, NG_PRIOR
    assert bool(_ng_fit(x, **p).converged)
    res = _ng_fit(x, **p, tol=0.0)  # tightest tol: the ELBO change reaches roundoff
    n = x.size
    mu_n = (p["lambda0"] * p["mu0"] + x.sum()) / (p["lambda0"] + n)
    a_n = p["a0"] + (n + 1) / 2
    c = p["b0"] + 0.5 * (np.sum((x - mu_n) ** 2) + p["lambda0"] * (mu_n - p["mu0"]) ** 2)
    b_n = c / (1 - 1 / (2 * a_n))          # b = c + b / (2a) at the fixed point
    lam_n = (p["lambda0"] + n) * a_n / b_n
    # the ELBO is flat (quadratic) at its maximum, so an ELBO-change stop at ~1e-15 leaves the
    # parameters within ~sqrt(1e-15) of the fixed point
    np.testing.assert_allclose([res.q.mu, res.q.mu_precision, res.q.a, res.q.b],
                               [mu_n, lam_n, a_n, b_n],
                               rtol=1e-7)
    # the mean of q(mu) is the exact posterior mean of mu (scipy-free closed form)
    post = vi.normal_gamma_posterior(x, **p)
    np.testing.assert_allclose(res.q.mu, post.mu, rtol=1e-12)
    # ELBO: never decreases, and stays below the log evidence
    tr = np.asarray(res.trace)[: int(res.n_iter)]
    check_monotone(tr, rtol=0.0, atol=1e-12)
    assert float(res.elbo) < float(vi.normal_gamma_log_evidence(x, **p))


def test_normal_gamma_evidence_and_posterior_vs_scipy(ng_data):
    x, p = ng_data, NG_PRIOR
    n = x.size
    # marginal of x: multivariate Student-t; check through p(x) = p(x|mu,tau)p(mu,tau)/p(mu,tau|x)
    post = vi.normal_gamma_posterior(x, **p)
    mu, tau = 1.1, 1.7
    log_joint = (st.norm(mu, 1 / np.sqrt(tau)).logpdf(x).sum()
                 + st.norm(p["mu0"], 1 / np.sqrt(p["lambda0"] * tau)).logpdf(mu)
                 + st.gamma(p["a0"], scale=1 / p["b0"]).logpdf(tau))
    log_post = (st.norm(float(post.mu), 1 / np.sqrt(float(post.lambda_n) * tau)).logpdf(mu)
                + st.gamma(float(post.a), scale=1 / float(post.b)).logpdf(tau))
    np.testing.assert_allclose(vi.normal_gamma_log_evidence(x, **p), log_joint - log_post,
                               rtol=1e-10)
    assert n == 25


def test_normal_gamma_elbo_vs_monte_carlo_and_stationarity(ng_data):
    x, p = ng_data, NG_PRIOR
    prior = vi.NormalGammaPrior(*(jnp.asarray(v, jnp.float64) for v in p.values()))
    q = vi.NormalGammaQ(*(jnp.asarray(v) for v in (0.9, 15.0, 9.0, 6.0)))
    rng = np.random.default_rng(0)
    m = 200000
    mu = rng.normal(0.9, 1 / np.sqrt(15.0), m)
    tau = rng.gamma(9.0, 1 / 6.0, m)
    lp = (-0.5 * tau * ((x[None, :] - mu[:, None]) ** 2).sum(1) + 0.5 * x.size * np.log(tau / (2 * np.pi))
          + st.norm(p["mu0"], 1 / np.sqrt(p["lambda0"] * tau)).logpdf(mu)
          + st.gamma(p["a0"], scale=1 / p["b0"]).logpdf(tau))
    lq = st.norm(0.9, 1 / np.sqrt(15.0)).logpdf(mu) + st.gamma(9.0, scale=1 / 6.0).logpdf(tau)
    f = lp - lq
    elbo = float(vi.normal_gamma_elbo(q, jnp.asarray(x), prior))
    check_mean(f, elbo, alpha=1e-4)             # |z| ≤ 3.89
    # each coordinate update is a stationary point of the ELBO in its block (jax.grad)
    xj = jnp.asarray(x)
    grad = jax.jit(jax.grad(vi.normal_gamma_elbo))
    q1 = jax.jit(vi.normal_gamma_update_mu)(q, xj, prior)
    g = grad(q1, xj, prior)
    np.testing.assert_allclose([g.mu, g.mu_precision], 0.0, atol=1e-8)
    q2 = jax.jit(vi.normal_gamma_update_tau)(q1, xj, prior)
    g = grad(q2, xj, prior)
    np.testing.assert_allclose([g.a, g.b], 0.0, atol=1e-8)


def test_normal_gamma_jit_vmap_float32(ng_data):
    b0s = jnp.array([0.5, 1.5, 3.0])
    many = jax.vmap(lambda b0: _ng_fit(ng_data, mu0=0.5, lambda0=2.0, a0=2.0, b0=b0))(b0s)
    for i, b0 in enumerate([0.5, 1.5, 3.0]):
        one = _ng_fit(ng_data, **{**NG_PRIOR, "b0": b0})
        np.testing.assert_allclose(many.q.b[i], one.q.b, rtol=1e-10)
    r32 = _ng_fit(jnp.asarray(ng_data, jnp.float32), **NG_PRIOR)
    assert r32.q.mu.dtype == jnp.float32 and r32.elbo.dtype == jnp.float32
    np.testing.assert_allclose(r32.q.b, _ng_fit(ng_data, **NG_PRIOR).q.b, rtol=1e-4)


_mixture_fit = jax.jit(vi.mixture_cavi, static_argnames=("n_components", "max_iter"))


def _mixture_data(seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (3, 2))
    return (centers[rng.integers(0, 3, 60)] + rng.standard_normal((60, 2)))


@settings(max_examples=8)
@given(hst.integers(0, 10_000))
def test_mixture_elbo_monotone(seed):
    x = _mixture_data(seed)
    res = _mixture_fit(jax.random.key(seed), x, n_components=3, prior_var=10.0, max_iter=60)
    tr = np.asarray(res.trace)[: int(res.n_iter)]
    assert tr.size >= 2 and np.all(np.isfinite(tr))
    check_monotone(tr, rtol=1e-9)
    np.testing.assert_allclose(res.q.phi.sum(1), 1.0, rtol=1e-12)


def test_mixture_elbo_vs_monte_carlo_and_stationarity():
    x = _mixture_data(0)
    res = _mixture_fit(jax.random.key(0), x, n_components=3, prior_var=10.0, max_iter=60)
    q = res.q._replace(phi=0.7 * res.q.phi + 0.1)  # a generic (non-optimal) q
    m, s2, phi = (np.asarray(a) for a in q)
    rng = np.random.default_rng(1)
    S = 4000
    mu = m[None] + np.sqrt(s2)[None, :, None] * rng.standard_normal((S, 3, 2))
    u = rng.random((S, 60, 1))
    c = (u > np.cumsum(phi, 1)[None]).sum(-1)                       # (S, n)
    mu_c = np.take_along_axis(mu, c[..., None], axis=1)             # (S, n, 2)
    lp = (st.norm(0, np.sqrt(10.0)).logpdf(mu).sum((1, 2)) - 60 * np.log(3)
          + st.norm(mu_c, 1.0).logpdf(x[None]).sum((1, 2)))
    lq = (np.log(np.take_along_axis(np.broadcast_to(phi, (S, 60, 3)), c[..., None], 2)).sum((1, 2))
          + st.norm(m[None], np.sqrt(s2)[None, :, None]).logpdf(mu).sum((1, 2)))
    f = lp - lq
    xj = jnp.asarray(x)
    elbo = float(jax.jit(vi.mixture_elbo)(q, xj, 10.0))
    check_mean(f, elbo, alpha=1e-4)             # |z| ≤ 3.89
    # the means update is the argmax in (m, s2): zero gradient there
    grad = jax.jit(jax.grad(vi.mixture_elbo))
    qm = jax.jit(vi.mixture_update_means)(q, xj, 10.0)
    g = grad(qm, xj, 10.0)
    np.testing.assert_allclose(g.m, 0.0, atol=1e-8)
    np.testing.assert_allclose(g.s2, 0.0, atol=1e-6)
    # the assignment update is stationary on the simplex: dL/dphi_ik equal across k
    qa = jax.jit(vi.mixture_update_assignments)(q, xj)
    g = np.asarray(grad(qa, xj, 10.0).phi)
    np.testing.assert_allclose(g - g[:, :1], 0.0, atol=1e-8)


def test_mixture_recovers_clusters_vmap_float32():
    x = _mixture_data(5)
    keys = jax.random.split(jax.random.key(0), 3)
    many = jax.vmap(lambda k: _mixture_fit(k, x, n_components=3, prior_var=10.0,
                                           max_iter=60))(keys)
    best = int(jnp.argmax(many.elbo))
    one = _mixture_fit(keys[best], x, n_components=3, prior_var=10.0, max_iter=60)
    np.testing.assert_allclose(many.q.m[best], one.q.m, rtol=1e-8)
    # each data point's most likely component mean is near the empirical mean of its cluster
    lab = np.asarray(one.q.phi.argmax(1))
    for k in np.unique(lab):
        emp = x[lab == k].mean(0)
        nk = (lab == k).sum()
        np.testing.assert_allclose(one.q.m[k], emp * nk / (nk + 0.1), atol=0.05)
    r32 = _mixture_fit(jax.random.key(0), jnp.asarray(x[:, 0], jnp.float32), n_components=2,
                       max_iter=20)
    assert r32.q.m.dtype == jnp.float32 and r32.q.m.shape == (2, 1)   # 1-D x is (n, 1)
    # with init, no key is needed; the fit continues from init
    again = vi.mixture_cavi(None, x, 3, prior_var=10.0, init=one.q, max_iter=60)
    np.testing.assert_allclose(again.q.m, one.q.m, atol=1e-6)
    with pytest.raises(TypeError, match="key"):
        vi.mixture_cavi(None, x, 3)


# ------------------------------------------------------------------------ bad input

def test_bad_input(blr):
    q = vi.MeanFieldGaussian.init(blr.d)
    with pytest.raises(ValueError, match="n_samples"):
        vi.elbo_and_grad(jax.random.key(0), blr.log_joint, q, estimator=vi.ScoreFunctionLOO(),
                         n_samples=1)
    with pytest.raises(TypeError, match="Gaussian"):
        vi.elbo_and_grad(jax.random.key(0), None, vi.Exponential(jnp.zeros(2)),
                         estimator=vi.AnalyticKL(), log_likelihood=gamma_log_joint)
    with pytest.raises(TypeError, match="estimator"):
        vi.elbo_and_grad(jax.random.key(0), blr.log_joint, q, estimator="reparam")
    with pytest.raises(ValueError, match="log_scale"):
        vi.MeanFieldGaussian(jnp.zeros(3), jnp.zeros(2))
    with pytest.raises(ValueError, match="x"):
        vi.normal_gamma_cavi(np.ones((3, 2)))
    with pytest.raises(ValueError, match="b0"):
        vi.normal_gamma_cavi(np.ones(3), b0=-1.0)
    with pytest.raises(ValueError, match="n_components"):
        vi.mixture_cavi(jax.random.key(0), np.ones(3), 5)
    with pytest.raises(ValueError, match="std"):
        vi.MeanFieldGaussian.from_mean_std(np.zeros(2), [1.0, -1.0])


def test_coordinate_ascent_driver_bivariate_gaussian():
    """Bishop §10.1.2: mean-field q(z1)q(z2) of a correlated Gaussian; CAVI means -> true mean."""
    mu = jnp.array([1.0, -2.0])
    lam = jnp.array([[2.0, 1.2], [1.2, 1.0]])          # precision

    def upd1(m):
        return m.at[0].set(mu[0] - lam[0, 1] / lam[0, 0] * (m[1] - mu[1]))

    def upd2(m):
        return m.at[1].set(mu[1] - lam[1, 0] / lam[1, 1] * (m[0] - mu[0]))

    def elbo(m):  # E_q[log p] + H[q] up to constants (q's variances are fixed at 1/lam_ii)
        r = m - mu
        return -0.5 * r @ lam @ r

    res = jax.jit(lambda m0: vi.coordinate_ascent([upd1, upd2], elbo, m0, tol=1e-14,
                                                  max_iter=500))(jnp.array([5.0, 5.0]))
    assert bool(res.converged) and int(res.n_iter) < 500
    np.testing.assert_allclose(res.q, mu, atol=1e-6)
    tr = np.asarray(res.trace)[: int(res.n_iter)]
    check_monotone(tr, rtol=0.0, atol=1e-12)
    with pytest.raises(TypeError):
        vi.coordinate_ascent([], elbo, jnp.zeros(2))


# ------------------------------------------- issue 13: checks eager and under jit, health

def test_checks_eager_and_traced(blr):
    key = jax.random.key(0)
    x = np.random.default_rng(0).normal(size=10)
    for tol in (-1.0, np.nan):
        with pytest.raises(ValueError, match="tol"):
            vi.normal_gamma_cavi(x, tol=tol)
        with pytest.raises(ValueError, match="tol"):
            vi.mixture_cavi(key, x, 2, tol=tol)
        with pytest.raises(ValueError, match="tol"):
            vi.coordinate_ascent([lambda m: m], jnp.sum, jnp.zeros(2), tol=tol)
    with pytest.raises(ValueError, match="mu0"):
        vi.normal_gamma_cavi(x, mu0=np.inf)
    with pytest.raises(ValueError, match="prior_var"):
        vi.mixture_cavi(key, x, 2, prior_var=np.inf)
    with pytest.raises(ValueError, match="elbo_fn must return"):
        vi.coordinate_ascent([lambda m: m], lambda m: m, jnp.zeros(2))
    with pytest.raises(TypeError, match="elbo_fn must be callable"):
        vi.coordinate_ascent([lambda m: m], 3.0, jnp.zeros(2))
    # traced bad numbers raise at run time, naming the argument (one compile per fit)
    ng = jax.jit(lambda lam, b, tol, x: vi.normal_gamma_cavi(x, lambda0=lam, b0=b, tol=tol).elbo)
    assert np.isfinite(ng(1.0, 1.0, 1e-10, x))
    for args, name in (((1.0, -1.0, 1e-10, x), "b0"), ((np.nan, 1.0, 1e-10, x), "lambda0"),
                       ((1.0, 1.0, -1.0, x), "tol"), ((1.0, 1.0, 1e-10, x * np.nan), "x")):
        with pytest.raises(Exception, match=f"{name} must|{name} contains"):
            ng(*args)
    with pytest.raises(Exception, match="prior_var must"):
        jax.jit(lambda v: vi.mixture_cavi(key, x, 2, prior_var=v).elbo)(0.0)
    # fit_sgvi: the target and the learning rate
    q = vi.MeanFieldGaussian.init(blr.d)
    with pytest.raises(ValueError, match="log_density must return an array of shape"):
        vi.fit_sgvi(key, lambda z: z, q, n_steps=2)
    with pytest.raises(TypeError, match="log_density must be callable"):
        vi.fit_sgvi(key, 3.0, q, n_steps=2)
    with pytest.raises(ValueError, match="log_likelihood must return"):
        vi.fit_sgvi(key, None, q, estimator=vi.AnalyticKL(), log_likelihood=lambda z: z,
                    n_steps=2)
    for lr in (0.0, -1e-2, np.nan, np.inf):
        with pytest.raises(ValueError, match="learning_rate"):
            vi.fit_sgvi(key, blr.log_joint, q, n_steps=2, learning_rate=lr)
    sg = jax.jit(lambda lr: vi.fit_sgvi(key, blr.log_joint, q, n_steps=2,
                                        learning_rate=lr).trace)
    with pytest.raises(Exception, match="learning_rate must"):
        sg(-0.1)


def test_health_flags(blr):
    key = jax.random.key(0)
    q = vi.MeanFieldGaussian.init(blr.d)
    bad = vi.fit_sgvi(key, lambda z: jnp.sum(z) * jnp.nan, q, n_steps=5)
    assert not bool(bad.finite) and int(bad.n_iter) == 0
    diverged = vi.fit_sgvi(key, blr.log_joint, q, n_steps=200, learning_rate=1e6)
    assert not bool(diverged.finite)
    assert all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree_util.tree_leaves(
        diverged.params))                                    # the last finite iterate
    # CAVI: a non-finite ELBO never reports convergence, eagerly and under jit
    for value in (jnp.inf, jnp.nan):
        res = vi.coordinate_ascent([lambda m: m], lambda m: jnp.sum(m) + value, jnp.zeros(2),
                                   max_iter=5)
        assert not bool(res.converged)
    from jaxml.config import runtime_checks
    with runtime_checks(False):                             # NaN data reaches the fit
        ng = jax.jit(lambda x: vi.normal_gamma_cavi(x).converged)
        assert not bool(ng(jnp.array([1.0, np.nan, 2.0])))


# ------------------------------------------- issue 14: grad through the CAVI fits

def test_normal_gamma_cavi_gradients_implicit_unrolled_fd(ng_data):
    """d/d(x, μ₀, λ₀, a₀, b₀) of a function of the converged fit: the implicit adjoint (the
    default) equals the unrolled one and central finite differences; vmap(grad), jit(grad)."""
    from jaxml._core import Unrolled
    from jaxml.testing import check_gradient

    def make(adjoint):
        def f(p):
            mu0, lam0, a0, b0 = p["prior"]
            r = vi.normal_gamma_cavi(p["x"], mu0=mu0, lambda0=lam0, a0=a0, b0=b0, tol=0.0,
                                     max_iter=200, adjoint=adjoint)
            return r.q.mu + r.q.a / r.q.b + jnp.log(r.q.mu_precision) + 0.1 * r.elbo
        return f

    point = {"x": jnp.asarray(ng_data), "prior": jnp.array([0.3, 1.2, 2.0, 1.5])}
    f = make(None)
    # the loop stops on the ELBO change, quadratic in the distance to the fixed point: q is
    # exact to about √ε, so implicit and unrolled agree to ~1e-7 relative
    check_gradient(f, jax.grad(make(Unrolled())), point, rtol=1e-6, fd_rtol=1e-5,
                   max_coordinates=12)
    g = jax.jit(jax.grad(f))(point)
    batch = {"x": jnp.stack([point["x"], 1.5 * point["x"]]),
             "prior": jnp.stack([point["prior"], point["prior"] + 0.5])}
    gb = jax.vmap(jax.grad(f))(batch)
    np.testing.assert_allclose(gb["prior"][0], g["prior"], rtol=1e-10)
    np.testing.assert_allclose(gb["x"][1], jax.grad(f)({"x": batch["x"][1],
                                                        "prior": batch["prior"][1]})["x"],
                               rtol=1e-10)


def test_mixture_cavi_gradients_implicit_unrolled_fd():
    from jaxml._core import Unrolled
    from jaxml.testing import check_gradient

    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(-2.5, 1.0, (15, 2)), rng.normal(2.5, 1.0, (15, 2))])

    def make(adjoint):
        def f(p):
            r = vi.mixture_cavi(jax.random.key(0), p["x"], 2, prior_var=p["prior_var"],
                                tol=0.0, max_iter=300, adjoint=adjoint)
            return jnp.sum(r.q.m[:, 0] ** 2) + jnp.sum(r.q.s2) + 0.01 * r.elbo
        return f

    point = {"x": jnp.asarray(x), "prior_var": jnp.asarray(2.0)}
    check_gradient(make(None), jax.grad(make(Unrolled())), point, rtol=1e-6, fd_rtol=1e-5,
                   max_coordinates=10)


def test_coordinate_ascent_gradient_through_closed_over_inputs():
    """The driver differentiates what its updates close over: q* = μ, so ∂(Σ q*)/∂μ = 1."""
    lam = jnp.array([[2.0, 1.2], [1.2, 1.0]])

    def fit(mu):
        upd1 = lambda m: m.at[0].set(mu[0] - lam[0, 1] / lam[0, 0] * (m[1] - mu[1]))  # noqa: E731
        upd2 = lambda m: m.at[1].set(mu[1] - lam[1, 0] / lam[1, 1] * (m[0] - mu[0]))  # noqa: E731
        elbo = lambda m: -0.5 * (m - mu) @ lam @ (m - mu)  # noqa: E731
        return vi.coordinate_ascent([upd1, upd2], elbo, jnp.zeros(2), tol=0.0, max_iter=500)

    g = jax.jacobian(lambda mu: fit(mu).q)(jnp.array([1.0, -2.0]))
    np.testing.assert_allclose(g, np.eye(2), atol=1e-8)


# ------------------------------------------- issue 16.3: variational EM and minibatch SVI

def _blr_data(seed=0, n=60, d=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ (0.7 * rng.normal(size=d)) + 0.5 * rng.normal(size=n)
    return X, y


def _gauss_log_lik(z, theta, batch):
    """Σ over the batch of log N(yᵢ | xᵢᵀz, 1/α), α = exp(theta["log_alpha"])."""
    X, y = batch
    la = theta["log_alpha"]
    return jnp.sum(0.5 * (la - math.log(2 * math.pi)) - 0.5 * jnp.exp(la) * (y - X @ z) ** 2)


def _gauss_log_prior(z, theta):
    """log N(z | 0, I/λ), λ = exp(theta["log_lambda"])."""
    ll = theta["log_lambda"]
    return jnp.sum(0.5 * (ll - math.log(2 * math.pi)) - 0.5 * jnp.exp(ll) * z ** 2)


def test_variational_em_recovers_type2_ml_of_bayesian_linear_regression():
    """With a full-rank Gaussian q (which holds the exact posterior), maximizing the ELBO over
    (q, θ) maximizes the evidence over θ = (noise precision α, weight precision λ): it must
    reach scikit-learn BayesianRidge's alpha_ and lambda_ (with vanishing Gamma priors)."""
    from sklearn.linear_model import BayesianRidge

    X, y = _blr_data()
    br = BayesianRidge(fit_intercept=False, tol=1e-12, max_iter=10_000, alpha_1=1e-12,
                       alpha_2=1e-12, lambda_1=1e-12, lambda_2=1e-12).fit(X, y)
    theta0 = {"log_alpha": jnp.array(0.0), "log_lambda": jnp.array(0.0)}
    res = vi.fit_sgvi(jax.random.key(0), None, vi.FullRankGaussian.init(3),
                      log_likelihood=_gauss_log_lik, log_prior=_gauss_log_prior, theta0=theta0,
                      data=(jnp.asarray(X), jnp.asarray(y)), n_steps=4000, n_samples=8,
                      optimizer=optax.adam(optax.exponential_decay(0.05, 4000, 0.05)),
                      estimator=vi.StickingTheLanding())
    assert bool(res.finite)
    q, theta = res.params
    assert isinstance(q, vi.FullRankGaussian)
    np.testing.assert_allclose(float(jnp.exp(theta["log_alpha"])), br.alpha_, rtol=0.03)
    np.testing.assert_allclose(float(jnp.exp(theta["log_lambda"])), br.lambda_, rtol=0.03)
    np.testing.assert_allclose(q.mean(), br.coef_, atol=0.02)


def test_minibatch_svi_recovers_the_exact_conjugate_posterior():
    """SVI (Hoffman et al. 2013): B = 10 of N = 60 rows per step, likelihood scaled by N/B;
    the fitted full-rank q matches the exact posterior of Bayesian linear regression with
    known noise (mean within 0.15 posterior sd, covariance within 10%)."""
    X, y = _blr_data(1)
    alpha, lam = 4.0, 1.0
    cov = np.linalg.inv(lam * np.eye(3) + alpha * X.T @ X)
    mean = alpha * cov @ X.T @ y

    def log_lik(z, batch):
        Xb, yb = batch
        return -0.5 * alpha * jnp.sum((yb - Xb @ z) ** 2)

    res = vi.fit_sgvi(jax.random.key(1), None, vi.FullRankGaussian.init(3),
                      log_likelihood=log_lik, log_prior=lambda z: -0.5 * lam * jnp.sum(z ** 2),
                      data=(jnp.asarray(X), jnp.asarray(y)), batch_size=10, n_steps=6000,
                      n_samples=4, estimator=vi.StickingTheLanding(),
                      optimizer=optax.adam(optax.exponential_decay(0.02, 6000, 0.01), b2=0.99))
    assert bool(res.finite)
    q = res.params
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(np.asarray(q.mean()) - mean) < 0.15 * sd)
    err = np.abs(np.asarray(q.covariance()) - cov) / (sd[:, None] * sd[None, :])
    assert np.all(err < 0.1), err


def test_variational_em_bad_input():
    key = jax.random.key(0)
    X, y = _blr_data(n=10)
    data = (jnp.asarray(X), jnp.asarray(y))
    q = vi.FullRankGaussian.init(3)
    theta0 = {"log_alpha": jnp.array(0.0), "log_lambda": jnp.array(0.0)}
    kw = dict(log_likelihood=_gauss_log_lik, log_prior=_gauss_log_prior, n_steps=2)
    with pytest.raises(TypeError, match="ScoreFunction"):
        vi.fit_sgvi(key, None, q, theta0=theta0, data=data, estimator=vi.ScoreFunction(), **kw)
    with pytest.raises(TypeError, match="log_likelihood"):
        vi.fit_sgvi(key, lambda z, th: jnp.sum(z), q, theta0=theta0, data=data, n_steps=2)
    with pytest.raises(TypeError, match="log_prior"):
        vi.fit_sgvi(key, None, q, theta0=theta0, data=data, log_likelihood=_gauss_log_lik,
                    n_steps=2)
    with pytest.raises(TypeError, match="batch_size"):
        vi.fit_sgvi(key, lambda z: jnp.sum(z), q, batch_size=3, n_steps=2)
    with pytest.raises(ValueError, match="batch_size"):
        vi.fit_sgvi(key, None, q, theta0=theta0, data=data, batch_size=11, **kw)
    with pytest.raises(ValueError, match="data"):
        vi.fit_sgvi(key, None, q, theta0=theta0, data=(data[0], data[1][:5]), **kw)
    with pytest.raises(ValueError, match="theta0"):
        vi.fit_sgvi(key, None, q, theta0={"log_alpha": jnp.nan, "log_lambda": 0.0},
                    data=data, **kw)
    with pytest.raises(ValueError, match="log_likelihood must return"):
        vi.fit_sgvi(key, None, q, theta0=theta0, data=data, log_prior=_gauss_log_prior,
                    log_likelihood=lambda z, th, b: b[1] - b[0] @ z, n_steps=2)
    # sgvi.step with θ and minibatches equals the fit
    opt = optax.sgd(1e-3)
    state = vi.sgvi.init(q, optimizer=opt, theta0=theta0)
    res = vi.fit_sgvi(key, None, q, theta0=theta0, data=data, batch_size=4, optimizer=opt,
                      **{**kw, "n_steps": 3})
    for k in jax.random.split(key, 3):
        state, _ = vi.sgvi.step(k, state, None, optimizer=opt, data=data, batch_size=4,
                                log_likelihood=_gauss_log_lik, log_prior=_gauss_log_prior)
    np.testing.assert_allclose(state.params[1]["log_alpha"], res.params[1]["log_alpha"],
                               rtol=1e-12)
