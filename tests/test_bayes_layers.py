"""jaxml.bayes_layers: local reparameterization moments, KL penalties, ARD pruning.

Oracles: Monte Carlo over weight samples (numpy), scipy quadrature of E log|ε| (the exact
log-uniform KL up to its constant), scipy Gaussian log-densities (the ARD KL by Monte Carlo).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from jaxml import bayes_layers as bl
from jaxml.testing import check_mean, check_unbiased


@pytest.fixture(scope="module")
def noisy_layer():
    """A 5 → 3 layer whose weights carry visible noise (log σ² in [−3, 0])."""
    layer = bl.BayesianLinear(5, 3, key=jax.random.key(0))
    rng = np.random.default_rng(0)
    log_s2 = jnp.asarray(rng.uniform(-3, 0, (3, 5)))
    layer = eqx.tree_at(lambda l: l.weight_log_sigma2, layer, log_s2)
    layer = eqx.tree_at(lambda l: l.bias, layer, jnp.asarray(rng.normal(size=3)))
    x = jnp.asarray(rng.normal(size=(4, 5)))
    return layer, x


def test_output_moments_equal_weight_sampling_moments(noisy_layer):
    layer, x = noisy_layer
    mean, var = (np.asarray(a) for a in layer.moments(x))
    theta, s2, b = (np.asarray(a) for a in (layer.weight_mean, jnp.exp(layer.weight_log_sigma2),
                                            layer.bias))
    N = 100_000
    W = theta + np.sqrt(s2) * np.random.default_rng(1).normal(size=(N, 3, 5))
    out = np.einsum("sko,io->sik", W, np.asarray(x)) + b          # (N, batch, out)
    # E out = mean and E (out − mean)² = var, within the draws' own standard errors
    check_mean({"m": out, "v": (out - mean) ** 2}, {"m": mean, "v": var})


def test_local_reparameterized_samples_have_the_same_moments(noisy_layer):
    layer, x = noisy_layer
    mean, var = (np.asarray(a) for a in layer.moments(x))
    N = 20_000
    draws = np.asarray(jax.vmap(lambda k: layer(x, key=k))(jax.random.split(jax.random.key(2), N)))
    check_mean({"m": draws, "v": (draws - mean) ** 2}, {"m": mean, "v": var})
    # rows of a batch get independent noise: sample correlation of two rows ≈ 0
    r = np.corrcoef(draws[:, 0, 0], draws[:, 1, 0])[0, 1]
    assert abs(r) < 4.5 / np.sqrt(N)


def test_deterministic_mode_is_the_mean(noisy_layer):
    layer, x = noisy_layer
    expect = np.asarray(x) @ np.asarray(layer.weight_mean).T + np.asarray(layer.bias)
    np.testing.assert_allclose(layer(x, deterministic=True), expect, rtol=1e-12)
    np.testing.assert_allclose(layer(x), expect, rtol=1e-12)
    np.testing.assert_allclose(layer(x, key=jax.random.key(0), deterministic=True), expect)


def _exact_log_uniform_kl_up_to_const(log_alpha):
    """−½ log α + E log|ε|, ε ~ N(1, α): KL(N(θ, αθ²) ‖ p(w) ∝ 1/|w|) minus a constant."""
    s = np.sqrt(np.exp(log_alpha))
    f = lambda e: np.log(np.abs(e)) * stats.norm.pdf(e, 1.0, s)  # noqa: E731
    e = (integrate.quad(f, 1 - 12 * s, 0, limit=200)[0]
         + integrate.quad(f, 0, 1 + 12 * s, limit=200)[0])
    return -0.5 * log_alpha + e


def test_log_uniform_kl_approximation_matches_quadrature_up_to_a_constant():
    las = np.linspace(-6, 6, 13)
    approx = np.asarray(bl.kl_log_uniform(jnp.asarray(las)))
    diff = approx - np.array([_exact_log_uniform_kl_up_to_const(a) for a in las])
    assert diff.max() - diff.min() < 0.02         # Molchanov et al.: a tight fit
    assert abs(float(bl.kl_log_uniform(jnp.asarray(30.0)))) < 1e-6   # pruned weights are free


def test_ard_kl_is_the_gaussian_kl_at_the_optimal_prior_variance():
    theta, s2 = 0.7, 0.2
    la = np.log(s2 / theta ** 2)
    tau2 = theta ** 2 + s2
    kl = float(bl.kl_ard(jnp.asarray(la)))
    q = stats.norm(theta, np.sqrt(s2))
    w = q.rvs(size=400_000, random_state=3)
    d = q.logpdf(w) - stats.norm(0, np.sqrt(tau2)).logpdf(w)
    check_mean(d, kl, alpha=1e-4)                   # |z| ≤ 3.89

    def gauss_kl(t2):   # closed form KL(N(θ, s²) ‖ N(0, t²))
        return 0.5 * (np.log(t2 / s2) + (s2 + theta ** 2) / t2 - 1)

    np.testing.assert_allclose(kl, gauss_kl(tau2), rtol=1e-12)
    assert all(gauss_kl(tau2 * f) > kl for f in (0.5, 0.9, 1.1, 2.0))


def test_layer_kl_sums_the_elementwise_penalty(noisy_layer):
    layer, _ = noisy_layer
    la = np.asarray(layer.weight_log_sigma2) - np.log(np.asarray(layer.weight_mean) ** 2)
    np.testing.assert_allclose(layer.log_alpha(), la, rtol=1e-10)
    np.testing.assert_allclose(layer.kl(), np.sum(bl.kl_log_uniform(jnp.asarray(la))), rtol=1e-10)
    ard = bl.BayesianLinear(5, 3, key=jax.random.key(0), prior="ard")
    ard = eqx.tree_at(lambda l: l.weight_log_sigma2, ard, layer.weight_log_sigma2)
    la_ard = np.asarray(ard.log_alpha())
    np.testing.assert_allclose(ard.kl(), np.sum(0.5 * np.log1p(np.exp(-la_ard))), rtol=1e-10)
    np.testing.assert_allclose(ard.prior_variance(), np.asarray(ard.weight_mean) ** 2
                               + np.exp(np.asarray(ard.weight_log_sigma2)))
    g = jax.grad(lambda l: l.kl())(layer)
    assert np.all(np.isfinite(np.asarray(g.weight_mean)))


def test_sparsity_report_and_prune(noisy_layer):
    layer, x = noisy_layer
    theta = np.asarray(layer.weight_mean).copy()
    theta[0, :2] = 1e-4           # log α = log σ² − log θ² ≫ 3: noise-dominated
    theta[2, 4] = 1e-3
    layer = eqx.tree_at(lambda l: l.weight_mean, layer, jnp.asarray(theta))
    la = np.asarray(layer.weight_log_sigma2) - np.log(theta ** 2)
    n_expected = int(np.sum(la > 3.0))
    rep = bl.sparsity(layer)
    assert int(rep.n_pruned) == n_expected >= 3
    assert rep.n_total == 15
    np.testing.assert_allclose(rep.fraction, n_expected / 15)
    pruned = bl.prune(layer)
    kept = la <= 3.0
    np.testing.assert_array_equal(np.asarray(pruned.weight_mean) == 0, ~kept)
    np.testing.assert_allclose(pruned(x), np.asarray(x) @ (theta * kept).T + np.asarray(layer.bias))
    assert int(bl.sparsity(pruned).n_pruned) == n_expected
    # pruned weights inject no noise
    _, var = pruned.moments(x)
    np.testing.assert_allclose(var, (np.asarray(x) ** 2) @ (np.exp(np.asarray(
        layer.weight_log_sigma2)) * kept).T, rtol=1e-10, atol=1e-20)


def test_fit_prunes_irrelevant_inputs():
    """Bayesian logistic regression by ``fit``: the loss falls, the KL sends the irrelevant
    weights' log α up. Oracles: the generating weights, the β schedule's closed form, and the
    loss trace's first entry recomputed by hand (same key split as documented)."""
    rng = np.random.default_rng(4)
    n, d = 500, 8
    X = rng.normal(size=(n, d))
    w = np.array([2.0, -2.0, 1.5, 0, 0, 0, 0, 0])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X @ w))).astype(int)
    layer = bl.BayesianLinear(d, 1, key=jax.random.key(1))
    res = bl.fit(jax.random.key(2), layer, X, y, likelihood="bernoulli", n_steps=3000,
                 learning_rate=0.05, warmup_steps=50)
    la = np.asarray(res.params.log_alpha())[0]
    assert np.all(la[:3] < 0), la
    assert np.all(la[3:] > bl.PRUNE_THRESHOLD), la
    assert bool(res.finite) and int(res.n_iter) == 3000
    assert res.trace[-100:].mean() < res.trace[100:200].mean() < res.trace[:10].mean()
    np.testing.assert_allclose(bl.sparsity(res.params).fraction, 5 / 8)
    np.testing.assert_allclose(bl.kl_schedule(3000, warmup_steps=50),
                               np.minimum(1.0, np.arange(1, 3001) / 50))
    # step 0: full-batch Bernoulli NLL with the first key's noise, + β₀ KL of the initial layer
    k0 = jax.random.split(jax.random.key(2), 3000)[0]
    f = np.asarray(layer(jnp.asarray(X), key=k0))[:, 0]
    nll = np.sum(np.logaddexp(0, f) - y * f)
    np.testing.assert_allclose(res.trace[0], nll + 0.02 * float(layer.kl()), rtol=1e-10)


def test_negative_log_likelihoods_against_scipy():
    rng = np.random.default_rng(6)
    f = rng.normal(size=(5, 3))
    yc = np.array([0, 2, 1, 1, 0])
    lse = np.log(np.exp(f).sum(1))
    np.testing.assert_allclose(bl.negative_log_likelihood(jnp.asarray(f), jnp.asarray(yc)),
                               lse - f[np.arange(5), yc], rtol=1e-12)
    yb = np.array([0, 1, 1, 0, 1])
    np.testing.assert_allclose(
        bl.negative_log_likelihood(jnp.asarray(f[:, :1]), jnp.asarray(yb), likelihood="bernoulli"),
        -stats.bernoulli(1 / (1 + np.exp(-f[:, 0]))).logpmf(yb), rtol=1e-10)
    yg = rng.normal(size=(5, 3))
    np.testing.assert_allclose(
        bl.negative_log_likelihood(jnp.asarray(f), jnp.asarray(yg), likelihood="gaussian",
                                   noise_std=0.7),
        -stats.norm(f, 0.7).logpdf(yg).sum(1), rtol=1e-12)


def test_mlp_composition_kl_jit_vmap_float32():
    mlp = bl.BayesianMLP((4, 6, 2), key=jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(5).normal(size=(7, 4)))
    l1, l2 = mlp.layers
    np.testing.assert_allclose(mlp(x), l2(jax.nn.relu(l1(x))), rtol=1e-12)
    np.testing.assert_allclose(bl.kl_divergence(mlp), l1.kl() + l2.kl(), rtol=1e-12)
    assert bl.sparsity(mlp).n_total == 4 * 6 + 6 * 2
    # jit and vmap over examples (one key each)
    f = jax.jit(lambda m, x, k: m(x, key=k))
    out = f(mlp, x, jax.random.key(1))
    assert out.shape == (7, 2)
    keys = jax.random.split(jax.random.key(1), 7)
    per_example = jax.vmap(lambda xi, k: mlp(xi, key=k))(x, keys)
    assert per_example.shape == (7, 2) and np.all(np.isfinite(np.asarray(per_example)))
    # float32 in, float32 out
    m32 = bl.BayesianMLP((4, 6, 2), key=jax.random.key(0), dtype=jnp.float32)
    x32 = x.astype(jnp.float32)
    assert m32(x32, key=jax.random.key(1)).dtype == jnp.float32
    assert bl.kl_divergence(m32).dtype == jnp.float32
    assert bl.prune(m32).layers[0].weight_mean.dtype == jnp.float32
    # fit: under jit, vmapped over the (traced) learning rate, float32 in → float32 out
    y7 = jnp.asarray([0, 1, 1, 0, 1, 0, 0])
    ref = bl.fit(jax.random.key(2), mlp, x, y7, n_steps=5, learning_rate=1e-2)
    jitted = jax.jit(lambda X: bl.fit(jax.random.key(2), mlp, X, y7, n_steps=5,
                                      learning_rate=1e-2))(x)
    np.testing.assert_allclose(jitted.trace, ref.trace, rtol=1e-12)
    lrs = jnp.asarray([1e-3, 1e-2])
    swept = jax.vmap(lambda lr: bl.fit(jax.random.key(2), mlp, x, y7, n_steps=5,
                                       learning_rate=lr))(lrs)
    np.testing.assert_allclose(swept.trace[1], ref.trace, rtol=1e-10)
    np.testing.assert_allclose(swept.params.layers[0].weight_mean[1],
                               ref.params.layers[0].weight_mean, rtol=1e-10)
    f32 = bl.fit(jax.random.key(2), m32, x32, y7, n_steps=5, learning_rate=1e-2)
    assert f32.trace.dtype == jnp.float32
    assert f32.params.layers[0].weight_mean.dtype == jnp.float32


def test_init_and_step_reproduce_fit():
    """fit = init + a scan of step with β_t from kl_schedule: stepping by hand with fit's keys
    and β's gives fit's trace and parameters."""
    import optax
    mlp = bl.BayesianMLP((4, 5, 3), key=jax.random.key(0))
    rng = np.random.default_rng(7)
    X, y = jnp.asarray(rng.normal(size=(20, 4))), jnp.asarray(rng.integers(0, 3, 20))
    opt = optax.adam(1e-2)
    res = bl.fit(jax.random.key(1), mlp, X, y, n_steps=4, batch_size=8, optimizer=opt,
                 warmup_steps=3)
    state = bl.init(mlp, optimizer=opt)
    values = []
    betas = bl.kl_schedule(4, warmup_steps=3)
    for k, beta in zip(jax.random.split(jax.random.key(1), 4), betas):
        state, info = bl.step(k, state, mlp, X, y, optimizer=opt, kl_weight=beta, batch_size=8)
        values.append(info.value)
    np.testing.assert_allclose(np.array(values), res.trace, rtol=1e-12)
    mine = eqx.combine(state.params, mlp)
    np.testing.assert_allclose(mine.layers[0].weight_mean, res.params.layers[0].weight_mean,
                               rtol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="prior"):
        bl.BayesianLinear(3, 2, key=jax.random.key(0), prior="horseshoe")
    with pytest.raises(ValueError, match="in_features"):
        bl.BayesianLinear(0, 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="sizes"):
        bl.BayesianMLP((4,), key=jax.random.key(0))
    with pytest.raises(ValueError, match="BayesianLinear"):
        bl.sparsity({"w": jnp.ones(3)})
    mlp = bl.BayesianMLP((4, 3), key=jax.random.key(0))
    X = np.zeros((6, 4))
    with pytest.raises(ValueError, match="y"):
        bl.fit(jax.random.key(0), mlp, X, np.array([0, 1, 2, 3, 0, 1]))      # class 3 of 3
    with pytest.raises(ValueError, match="same number of rows"):
        bl.fit(jax.random.key(0), mlp, X, np.zeros(5, int))
    with pytest.raises(ValueError, match="bernoulli"):
        bl.fit(jax.random.key(0), mlp, X, np.zeros(6, int), likelihood="bernoulli")
    with pytest.raises(ValueError, match="likelihood"):
        bl.fit(jax.random.key(0), mlp, X, np.zeros(6, int), likelihood="poisson")
    with pytest.raises(ValueError, match="learning_rate"):
        bl.fit(jax.random.key(0), mlp, X, np.zeros(6, int), learning_rate=0.0)


def _one_hot_with_zero_rows():
    rng = np.random.default_rng(8)
    X = np.eye(4)[rng.integers(0, 4, 12)]
    X[::3] = 0.0                                  # all-zero rows: pre-activation variance 0
    return X, rng.integers(0, 3, 12)


def test_zero_rows_and_dead_relus_stay_finite():
    """Issue 13: an all-zero input row (one-hot / sparse data), or a hidden row whose ReLU
    units are all off, has variance exactly 0 under the local-reparameterization square
    root; the fit stays finite (eagerly and under jit), and the zero rows' draws equal the
    mean (bias) exactly."""
    X, y = _one_hot_with_zero_rows()
    mlp = bl.BayesianMLP((4, 6, 3), key=jax.random.key(0))
    for run in (bl.fit, jax.jit(bl.fit, static_argnames=("n_steps",))):
        res = run(jax.random.key(1), mlp, X, y, n_steps=20, learning_rate=1e-2)
        assert bool(res.finite) and int(res.n_iter) == 20
        assert np.all(np.isfinite(np.asarray(res.params.layers[0].weight_log_sigma2)))
    layer = mlp.layers[0]
    g = jax.grad(lambda l: jnp.sum(l(jnp.asarray(X), key=jax.random.key(3))))(layer)
    assert np.all(np.isfinite(np.asarray(g.weight_log_sigma2)))
    np.testing.assert_allclose(layer(jnp.asarray(X), key=jax.random.key(3))[::3],
                               np.broadcast_to(np.asarray(layer.bias), (4, 6)))
    # every ReLU off for every row: the second layer sees zero rows only
    dead = eqx.tree_at(lambda m: m.layers[0].bias, mlp, jnp.full(6, -50.0))
    res = bl.fit(jax.random.key(1), dead, np.abs(X) + 0.1, y, n_steps=5, learning_rate=1e-2)
    assert bool(res.finite) and int(res.n_iter) == 5


def test_diverged_fit_reports_not_finite():
    X, y = _one_hot_with_zero_rows()
    mlp = bl.BayesianMLP((4, 6, 3), key=jax.random.key(0))
    res = bl.fit(jax.random.key(1), mlp, X, y, n_steps=20, learning_rate=1e6)
    assert not bool(res.finite) and int(res.n_iter) < 20
    assert np.all(np.isfinite(np.asarray(res.params.layers[0].weight_mean)))  # last finite


def test_bad_values_rejected_eagerly_and_under_jit():
    X, y = _one_hot_with_zero_rows()
    mlp = bl.BayesianMLP((4, 6, 3), key=jax.random.key(0))
    good = {"learning_rate": 1e-2, "kl_weight": 1.0, "warmup_steps": 0.0}
    jitted = jax.jit(lambda v: bl.fit(jax.random.key(0), mlp, X, y, n_steps=2, **v).trace)
    for name, bad in (("learning_rate", 0.0), ("learning_rate", -1.0),
                      ("learning_rate", np.nan), ("learning_rate", np.inf),
                      ("kl_weight", -1.0), ("kl_weight", np.nan), ("noise_std", 0.0),
                      ("warmup_steps", -2.0)):
        with pytest.raises(ValueError, match=f"{name} must"):
            bl.fit(jax.random.key(0), mlp, X, y, n_steps=2, **{name: bad})
        if name in good:      # traced (one compilation): checked at run time
            with pytest.raises(Exception, match=f"{name} must"):
                jitted({**good, name: bad})
    assert np.all(np.isfinite(np.asarray(jitted(good))))
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        bl.fit(jax.random.key(0), mlp, Xn, y, n_steps=2)
    with pytest.raises(Exception, match="X contains NaN"):
        jax.jit(lambda X: bl.fit(jax.random.key(0), mlp, X, y, n_steps=2).trace)(Xn)
    with pytest.raises(Exception, match="learning_rate must"):
        jax.vmap(lambda lr: bl.fit(jax.random.key(0), mlp, X, y, n_steps=2,
                                   learning_rate=lr).trace)(jnp.array([1e-2, -1.0]))
    with pytest.raises(TypeError, match="X must be real"):
        bl.fit(jax.random.key(0), mlp, X + 1j, y, n_steps=2)
    with pytest.raises(ValueError, match="X must have at least 1 row"):
        bl.fit(jax.random.key(0), mlp, np.zeros((0, 4)), np.zeros(0, int), n_steps=2)
    # parameters of the wrong shape, or NaN, in the model
    wrong = eqx.tree_at(lambda m: m.layers[1].weight_mean, mlp, jnp.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"weight_mean must have shape \(3, 6\)"):
        bl.fit(jax.random.key(0), wrong, X, y, n_steps=2)
    nan_model = eqx.tree_at(lambda m: m.layers[0].bias, mlp, jnp.full(6, jnp.nan))
    with pytest.raises(ValueError, match="model contains NaN"):
        bl.fit(jax.random.key(0), nan_model, X, y, n_steps=2)
    with pytest.raises(ValueError, match="model cannot be applied"):
        bl.fit(jax.random.key(0), mlp, np.zeros((12, 5)), y, n_steps=2)


@pytest.mark.parametrize("batch_size", [None, 5])
def test_minibatch_objective_is_unbiased_for_the_full_data_elbo(batch_size):
    """Issue 19 (SVI, Hoffman et al. 2013): the N/B-scaled minibatch −ELBO, averaged over
    minibatch and noise keys, equals the full-data −ELBO. Oracle: the Gaussian likelihood's
    expectation under local reparameterization in closed form,
    E[−log N(y | m + √v ε, s²)] = ((y − m)² + v)/(2s²) + log s + ½ log 2π."""
    rng = np.random.default_rng(9)
    n, d, s, beta = 23, 3, 0.8, 0.7
    X = rng.normal(size=(n, d))
    X[4] = 0.0
    y = rng.normal(size=n)
    layer = bl.BayesianLinear(d, 1, key=jax.random.key(0))
    layer = eqx.tree_at(lambda l: l.weight_log_sigma2, layer,
                        jnp.asarray(rng.uniform(-2, 0, (1, d))))
    m, v = (np.asarray(a)[:, 0] for a in layer.moments(jnp.asarray(X)))
    exact = (np.sum(((y - m) ** 2 + v) / (2 * s * s) + np.log(s) + 0.5 * np.log(2 * np.pi))
             + beta * float(layer.kl()))
    rep = check_unbiased(jax.random.key(1), lambda k: bl.loss(
        k, layer, X, y, likelihood="gaussian", batch_size=batch_size, kl_weight=beta,
        noise_std=s), exact, n_draws=4000)
    assert rep is not None
    # and the minibatch objective is what fit's trace records (batch_size B, first step)
    res = bl.fit(jax.random.key(2), layer, X, y, likelihood="gaussian", n_steps=1,
                 batch_size=batch_size, kl_weight=beta, noise_std=s)
    k0 = jax.random.split(jax.random.key(2), 1)[0]
    np.testing.assert_allclose(res.trace[0], bl.loss(k0, layer, X, y, likelihood="gaussian",
                                                     batch_size=batch_size, kl_weight=beta,
                                                     noise_std=s), rtol=1e-12)
