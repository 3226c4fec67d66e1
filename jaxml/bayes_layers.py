r"""Sparsifying Bayesian layers: a linear layer with a factorized Gaussian posterior sampled by
local reparameterization, and its KL / ARD penalty (sparse variational dropout).

Each weight has q(wₖⱼ) = N(θₖⱼ, σₖⱼ²) (parameters θ and log σ², "additive reparameterization").
For an input x (…, in) the pre-activation b + W x is Gaussian given x, with independent entries

    mean = x θᵀ + b,            var = x² (σ²)ᵀ,

so the layer samples the pre-activations, mean + √var ⊙ ε with ε ~ N(0, I) of shape (…, out),
rather than the weights: an unbiased draw of the same distribution, independent across the rows
of a batch, with lower-variance gradients and out instead of out·in noise draws (local
reparameterization). ``deterministic=True`` returns the mean (evaluation mode).

Sparsity is read off the dropout rate of each weight, αₖⱼ = σₖⱼ²/θₖⱼ² (log α = log σ² − log θ²):
a weight whose posterior is dominated by its noise (log α > 3, i.e. α > 20, dropout p =
α/(1+α) > 0.95) carries no signal and is pruned (θ ← 0, σ ← 0). Two KL penalties are offered:

``prior="log_uniform"`` (Molchanov et al. 2017): p(|w|) ∝ 1/|w|; the KL has no closed form and
is approximated, up to an additive constant, by

    −KL ≈ k₁ σ(k₂ + k₃ log α) − ½ log(1 + 1/α) − k₁,   k₁ = 0.63576, k₂ = 1.87320, k₃ = 1.48695,

which is 0 as α → ∞ (a pruned weight costs nothing).

``prior="ard"``: a Gaussian prior N(0, τₖⱼ²) per weight with the ELBO-optimal (empirical-Bayes
ARD) variance τ² = θ² + σ², at which the Gaussian KL is in closed form

    KL = ½ log(1 + θ²/σ²) = ½ log(1 + 1/α)

(Kharitonov et al. 2018); it also vanishes as α → ∞.

Training: :func:`fit` maximizes the ELBO Σᵢ E_q log p(yᵢ | f_W(xᵢ)) − β KL of any pytree of
these layers (categorical, Bernoulli or Gaussian likelihood, minibatches, a linear KL warm-up
of β to 1) with the shared optax loop of ``jaxml._core`` in one compiled ``lax.scan``, and
returns its :class:`TrainResult`. The Bernoulli and Gaussian log-likelihoods are
``jaxml._core``'s (shared with ``vae``).

References:
    D. P. Kingma, T. Salimans & M. Welling, "Variational dropout and the local
    reparameterization trick", NeurIPS (2015).
    D. Molchanov, A. Ashukha & D. Vetrov, "Variational dropout sparsifies deep neural
    networks", ICML (2017).
    V. Kharitonov, D. Molchanov & D. Vetrov, "Variational dropout via empirical Bayes",
    arXiv:1811.00596 (2018).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxml._core import (
    TrainInfo, TrainResult, TrainState, as_float_array, bernoulli_log_prob, check_class_labels,
    check_finite, check_int_in_range, check_labels, check_nonnegative, check_positive,
    check_same_length, check_value, diag_gaussian_log_prob, keep_checks, train, train_init, train_step,
)

__all__ = [
    "BayesianLinear", "BayesianMLP", "kl_log_uniform", "kl_ard", "kl_divergence",
    "SparsityReport", "sparsity", "prune", "PRUNE_THRESHOLD", "TrainResult", "TrainState",
    "TrainInfo", "kl_schedule", "negative_log_likelihood", "loss", "init", "step", "fit",
]

_K1, _K2, _K3 = 0.63576, 1.87320, 1.48695
_PRIORS = ("log_uniform", "ard")
PRUNE_THRESHOLD = 3.0
_LOG_SIGMA2_PRUNED = -60.0


def kl_log_uniform(log_alpha: jax.Array) -> jax.Array:
    """Molchanov et al.'s approximation of KL(N(θ, αθ²) ‖ log-uniform), elementwise.

    KL ≈ k₁ − k₁ σ(k₂ + k₃ log α) + ½ log(1 + 1/α); → 0 as log α → ∞.
    """
    return _K1 - _K1 * jax.nn.sigmoid(_K2 + _K3 * log_alpha) + 0.5 * jax.nn.softplus(-log_alpha)


def kl_ard(log_alpha: jax.Array) -> jax.Array:
    """KL(N(θ, σ²) ‖ N(0, θ² + σ²)) = ½ log(1 + 1/α), α = σ²/θ², elementwise (optimal ARD prior)."""
    return 0.5 * jax.nn.softplus(-log_alpha)


def _safe_sqrt(v: jax.Array) -> jax.Array:
    """√v with a zero (not infinite) derivative where v = 0.

    A pre-activation's variance x² (σ²)ᵀ is exactly 0 for an all-zero input row (sparse or
    one-hot data, or a hidden row whose ReLU units are all off); the plain square root's
    derivative is infinite there and 0 · ∞ = NaN reaches every parameter. There the draw
    does not depend on σ at all, so 0 is the exact derivative.
    """
    pos = v > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, v, 1.0)), 0.0)


class BayesianLinear(eqx.Module):
    """A linear layer with q(W) = Πₖⱼ N(θₖⱼ, σₖⱼ²), sampled by local reparameterization.

    Attributes:
        weight_mean: (out, in) θ.
        weight_log_sigma2: (out, in) log σ².
        bias: (out,) point-estimated bias, or ``None``.
        prior: ``"log_uniform"`` or ``"ard"`` (static), which KL :meth:`kl` returns.
    """

    weight_mean: jax.Array
    weight_log_sigma2: jax.Array
    bias: jax.Array | None
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    prior: str = eqx.field(static=True)

    def __init__(self, in_features: int, out_features: int, *, key, use_bias: bool = True,
                 prior: str = "log_uniform", init_log_sigma2: float = -10.0, dtype=None):
        """θ ~ U(−1/√in, 1/√in) (as ``eqx.nn.Linear``), log σ² = ``init_log_sigma2``, b = 0."""
        check_int_in_range(in_features, "in_features", 1, 10 ** 9)
        check_int_in_range(out_features, "out_features", 1, 10 ** 9)
        if prior not in _PRIORS:
            raise ValueError(f"prior must be one of {_PRIORS}, got {prior!r}")
        dtype = dtype or jnp.zeros(()).dtype
        lim = 1.0 / jnp.sqrt(in_features)
        self.weight_mean = jax.random.uniform(key, (out_features, in_features), dtype, -lim, lim)
        self.weight_log_sigma2 = jnp.full((out_features, in_features), init_log_sigma2, dtype)
        self.bias = jnp.zeros((out_features,), dtype) if use_bias else None
        self.in_features, self.out_features, self.prior = in_features, out_features, prior

    def moments(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Mean x θᵀ + b and variance x² (σ²)ᵀ of the pre-activations; x (…, in) → (…, out)."""
        mean = x @ self.weight_mean.T
        if self.bias is not None:
            mean = mean + self.bias
        return mean, (x * x) @ jnp.exp(self.weight_log_sigma2).T

    def __call__(self, x: jax.Array, *, key=None, deterministic: bool = False) -> jax.Array:
        """A local-reparameterized draw mean + √var ⊙ ε, ε (…, out) ~ N(0, I) independent per
        row; the mean when ``deterministic`` (or no ``key`` is given). x: (…, in)."""
        mean, var = self.moments(x)
        if deterministic or key is None:
            return mean
        return mean + _safe_sqrt(var) * jax.random.normal(key, mean.shape, mean.dtype)

    def log_alpha(self) -> jax.Array:
        """(out, in) log α = log σ² − log θ² (the log dropout odds of each weight)."""
        tiny = jnp.finfo(self.weight_mean.dtype).tiny
        return self.weight_log_sigma2 - jnp.log(self.weight_mean ** 2 + tiny)

    def kl(self) -> jax.Array:
        """() Σ over weights of the KL penalty of ``prior`` (see the module docstring)."""
        kl = kl_log_uniform if self.prior == "log_uniform" else kl_ard
        return jnp.sum(kl(self.log_alpha()))

    def prior_variance(self) -> jax.Array:
        """(out, in) the ELBO-optimal ARD prior variance τ² = θ² + σ² (``prior="ard"``)."""
        return self.weight_mean ** 2 + jnp.exp(self.weight_log_sigma2)

    def keep_mask(self, threshold=PRUNE_THRESHOLD) -> jax.Array:
        """(out, in) bool: the weights with log α ≤ ``threshold`` (kept)."""
        return self.log_alpha() <= threshold


@eqx.filter_jit
def _init_layers(key, sizes, prior, init_log_sigma2, dtype):
    """The layers of a :class:`BayesianMLP` as one compiled program per configuration (the
    sizes and numbers static), rather than one eager compile per layer shape."""
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple(BayesianLinear(a, b, key=k, prior=prior, init_log_sigma2=init_log_sigma2,
                                dtype=dtype)
                 for a, b, k in zip(sizes[:-1], sizes[1:], keys))


class BayesianMLP(eqx.Module):
    """A multilayer perceptron of :class:`BayesianLinear` layers.

    ``sizes = (in, h₁, …, out)``; ``activation`` between layers, none after the last.
    """

    layers: tuple
    activation: Callable = eqx.field(static=True)

    def __init__(self, sizes, *, key, activation: Callable = jax.nn.relu,
                 prior: str = "log_uniform", init_log_sigma2: float = -10.0, dtype=None):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output size, got {sizes}")
        for name, size in zip(("in_features",) + ("out_features",) * (len(sizes) - 1), sizes):
            check_int_in_range(size, name, 1, 10 ** 9)
        if prior not in _PRIORS:
            raise ValueError(f"prior must be one of {_PRIORS}, got {prior!r}")
        self.layers = _init_layers(key, sizes, prior, float(init_log_sigma2),
                                   jnp.dtype(dtype or jnp.zeros(()).dtype))
        self.activation = activation

    def __call__(self, x: jax.Array, *, key=None, deterministic: bool = False) -> jax.Array:
        """Forward pass, x (…, in) → (…, out); fresh local noise in every layer from ``key``."""
        keys = [None] * len(self.layers) if key is None else jax.random.split(key, len(self.layers))
        for i, (layer, k) in enumerate(zip(self.layers, keys)):
            x = layer(x, key=k, deterministic=deterministic)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x


def _is_layer(x) -> bool:
    return isinstance(x, BayesianLinear)


def _layers(model) -> list[BayesianLinear]:
    return [x for x in jax.tree_util.tree_leaves(model, is_leaf=_is_layer) if _is_layer(x)]


def _traced_number(x):
    """``x`` as an array the compiled core traces (a Python number would be static: one
    compile per value)."""
    return x if isinstance(x, jax.Array) else np.asarray(x)


def kl_divergence(model) -> jax.Array:
    """() the sum of :meth:`BayesianLinear.kl` over every Bayesian layer in ``model`` (a pytree)."""
    if not _layers(model):
        raise ValueError("model contains no BayesianLinear layer")
    return _kl_core(model)


@eqx.filter_jit
def _kl_core(model):
    return sum(layer.kl() for layer in _layers(model))


class SparsityReport(NamedTuple):
    """How many weights are dominated by noise (log α > threshold).

    Attributes:
        n_pruned: () int, weights with log α > threshold, over all layers.
        n_total: () int, all Bayesian weights.
        fraction: () float, n_pruned / n_total.
        per_layer: tuple of () fractions, one per layer in tree order.
    """

    n_pruned: jax.Array
    n_total: int
    fraction: jax.Array
    per_layer: tuple


def sparsity(model, threshold=PRUNE_THRESHOLD) -> SparsityReport:
    """Report the weights whose posterior is dominated by noise in every Bayesian layer."""
    if not _layers(model):
        raise ValueError("model contains no BayesianLinear layer")
    return _sparsity_core(model, _traced_number(threshold))


@eqx.filter_jit
def _sparsity_core(model, threshold):
    layers = _layers(model)
    pruned = [jnp.sum(~layer.keep_mask(threshold)) for layer in layers]
    sizes = [layer.weight_mean.size for layer in layers]
    n_pruned, n_total = sum(pruned), sum(sizes)
    return SparsityReport(n_pruned, n_total, n_pruned / n_total,
                          tuple(p / s for p, s in zip(pruned, sizes)))


def prune(model, threshold=PRUNE_THRESHOLD):
    """``model`` with every noise-dominated weight (log α > threshold) removed: θ ← 0 and
    σ² ← e⁻⁶⁰ there, so the weight neither contributes to the mean nor injects noise (and it
    still reads as pruned: its log α stays large)."""
    return _prune_core(model, _traced_number(threshold))


@eqx.filter_jit
def _prune_core(model, threshold):
    def apply(x):
        if not _is_layer(x):
            return x
        keep = x.keep_mask(threshold)
        x = eqx.tree_at(lambda l: l.weight_mean, x, jnp.where(keep, x.weight_mean, 0.0))
        return eqx.tree_at(lambda l: l.weight_log_sigma2, x,
                           jnp.where(keep, x.weight_log_sigma2, _LOG_SIGMA2_PRUNED))

    return jax.tree_util.tree_map(apply, model, is_leaf=_is_layer)


# ----------------------------------------------------------------------------- training

_LIKELIHOODS = ("categorical", "bernoulli", "gaussian")


def kl_schedule(n_steps: int, *, kl_weight=1.0, warmup_steps=0, dtype=None) -> jax.Array:
    """(n_steps,) KL weights β_t = kl_weight · min(1, (t + 1) / warmup_steps), t = 0, 1, …
    (a linear warm-up; constant ``kl_weight`` when ``warmup_steps`` is 0). Traced numbers,
    finite and ≥ 0."""
    return _kl_schedule_jit(check_int_in_range(n_steps, "n_steps", 1, 1 << 31),
                            check_nonnegative(kl_weight, "kl_weight"),
                            _check_warmup(warmup_steps),
                            None if dtype is None else jnp.dtype(dtype))


def _check_warmup(warmup_steps):
    """A whole number of steps ≥ 0 (2.0 accepted, 2.5 an error), a traced number: checked
    now when concrete, at run time when traced."""
    warmup_steps = check_nonnegative(warmup_steps, "warmup_steps")
    return check_value(warmup_steps, "warmup_steps", lambda xp, v: v != xp.round(v),
                       "must be a whole number of steps")


def _kl_schedule(n_steps: int, kl_weight, warmup_steps, dtype) -> jax.Array:
    t = jnp.arange(1, n_steps + 1, dtype=dtype or jnp.zeros(()).dtype)
    ramp = jnp.minimum(1.0, t / jnp.maximum(jnp.asarray(warmup_steps, t.dtype), 1.0))
    return jnp.asarray(kl_weight, t.dtype) * ramp


_kl_schedule_jit = jax.jit(_kl_schedule, static_argnames=("n_steps", "dtype"))


def negative_log_likelihood(outputs: jax.Array, y: jax.Array, *, likelihood: str = "categorical",
                            noise_std=1.0) -> jax.Array:
    """Per-row −log p(yᵢ | fᵢ) for network outputs f, shape (batch,).

    ``"categorical"``: f (batch, K) logits, y (batch,) integer classes, −log softmax(f)_y.
    ``"bernoulli"``: f (batch,) or (batch, 1) logits, y (batch,) in {0, 1},
    −[y log σ(f) + (1 − y) log σ(−f)].
    ``"gaussian"``: f and y (batch,) or (batch, out), N(y | f, noise_std²) summed over outputs,
    ½((y − f)/s)² + log s + ½ log 2π.
    """
    if likelihood not in _LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {_LIKELIHOODS}, got {likelihood!r}")
    if likelihood == "gaussian":
        noise_std = check_positive(noise_std, "noise_std")
    return _nll_jit(outputs, y, likelihood, noise_std)


def _nll(outputs, y, likelihood: str, noise_std) -> jax.Array:
    if likelihood == "categorical":
        return optax.softmax_cross_entropy_with_integer_labels(outputs, y)
    if likelihood == "bernoulli":
        f = outputs.reshape(y.shape)
        return -bernoulli_log_prob(y.astype(f.dtype)[..., None], f[..., None])
    f = outputs.reshape(outputs.shape[0], -1)                       # "gaussian"
    log_var = 2.0 * jnp.log(jnp.asarray(noise_std, f.dtype))
    return -diag_gaussian_log_prob(y.reshape(f.shape).astype(f.dtype), f, log_var)


_nll_jit = jax.jit(_nll, static_argnames=("likelihood",))


def _minibatch_neg_elbo(model, key, X, y, beta, *, likelihood, batch_size, noise_std):
    """(n / B) Σ_{i in batch} NLLᵢ + β KL: an unbiased estimate of −ELBO_β (batch of B rows
    drawn uniformly with replacement; the whole data when B ≥ n), with fresh
    local-reparameterization noise."""
    n = X.shape[0]
    if batch_size < n:
        kb, key = jax.random.split(key)
        idx = jax.random.randint(kb, (batch_size,), 0, n)
        X, y = X[idx], y[idx]
    nll = _nll(model(X, key=key), y, likelihood, noise_std)
    return (n / X.shape[0]) * jnp.sum(nll) + beta * kl_divergence(model)


def _neg_elbo_loss(X, y, *, likelihood, batch_size, noise_std) -> Callable:
    """``loss(model, key, beta)``: :func:`_minibatch_neg_elbo` on the data."""
    return partial(_minibatch_neg_elbo, X=X, y=y, likelihood=likelihood, batch_size=batch_size,
                   noise_std=noise_std)


@partial(jax.jit, static_argnames=("static", "likelihood", "n_steps", "batch_size", "optimizer",
                                   "progress"))
def _fit_core(key, dynamic, X, y, *, learning_rate, kl_weight, warmup_steps, noise_std, static,
              likelihood, n_steps, batch_size, optimizer, progress):
    model = eqx.combine(dynamic, static)
    if optimizer is None:
        optimizer = optax.adam(learning_rate)
    betas = _kl_schedule(n_steps, kl_weight, warmup_steps, X.dtype)
    loss = _neg_elbo_loss(X, y, likelihood=likelihood, batch_size=batch_size,
                          noise_std=noise_std)
    res = train(key, lambda m, k, beta: loss(m, k, beta=beta), model, optimizer=optimizer,
                n_steps=n_steps, xs=betas, progress=progress, desc="bayes_layers fit")
    return res._replace(params=eqx.filter(res.params, eqx.is_array))


def _model_dtype(model):
    layers = _layers(model)
    if not layers:
        raise ValueError("model contains no BayesianLinear layer")
    return layers[0].weight_mean.dtype


def _check_model(model):
    """Every Bayesian layer's parameters have the shapes its sizes say; returns the dtype."""
    dtype = _model_dtype(model)
    for i, layer in enumerate(_layers(model)):
        want = (layer.out_features, layer.in_features)
        shapes = [("weight_mean", layer.weight_mean, want),
                  ("weight_log_sigma2", layer.weight_log_sigma2, want)]
        if layer.bias is not None:
            shapes.append(("bias", layer.bias, (layer.out_features,)))
        for field, value, shape in shapes:
            if not hasattr(value, "shape") or tuple(value.shape) != shape:
                got = getattr(value, "shape", type(value).__name__)
                raise ValueError(f"model: BayesianLinear layer {i} {field} must have shape "
                                 f"{shape}, got {got}")
    return dtype


def _checked_params(dynamic):
    """The model's floating leaves checked finite (NaN/inf initial values are an error)."""
    return jax.tree_util.tree_map(
        lambda a: check_finite(a, "model") if eqx.is_inexact_array(a) else a, dynamic)


def _check_training(model, X, y, *, likelihood, batch_size, noise_std, kl_weight):
    """The checks :func:`fit`, :func:`step` and :func:`loss` share. Returns the checked
    (X, y, noise_std, kl_weight) as arrays of the model's dtype, and the batch size."""
    if likelihood not in _LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {_LIKELIHOODS}, got {likelihood!r}")
    dtype = _check_model(model)
    X = as_float_array(X, "X", ndim=2, dtype=dtype)
    if X.shape[0] < 1:
        raise ValueError(f"X must have at least 1 row, got shape {X.shape}")
    batch_size = X.shape[0] if batch_size is None else batch_size
    batch_size = check_int_in_range(batch_size, "batch_size", 1, 1 << 31)
    noise_std = jnp.asarray(check_positive(noise_std, "noise_std"), dtype)
    kl_weight = jnp.asarray(check_nonnegative(kl_weight, "kl_weight"), dtype)
    try:
        out = jax.eval_shape(lambda m, x: m(x), model, X[:1])
    except Exception as e:  # noqa: BLE001  a model that does not take rows of X
        raise ValueError(f"model cannot be applied to rows of X (shape {X.shape}): {e}") from e
    if likelihood == "categorical":
        y = check_class_labels(y, "y", out.shape[-1])
    elif likelihood == "bernoulli":
        if out.shape[-1] != 1:
            raise ValueError("likelihood='bernoulli' needs one output, the model gives "
                             f"{out.shape[-1]}")
        y = check_labels(y, "y", [0, 1])
    else:
        y = as_float_array(y, "y", ndim=(1, 2), dtype=dtype)
        if y.size != y.shape[0] * out.shape[-1]:
            raise ValueError(f"y must have {out.shape[-1]} value(s) per row (the model's "
                             f"outputs), got shape {y.shape}")
    check_same_length(X, "X", y, "y")
    if likelihood != "gaussian":
        X = keep_checks(X, noise_std)     # noise_std unused: its run-time check still runs
    return X, y, noise_std, kl_weight, min(int(batch_size), X.shape[0])


@partial(jax.jit, static_argnames=("static", "likelihood", "batch_size"))
def _loss_core(key, dynamic, X, y, *, kl_weight, noise_std, static, likelihood, batch_size):
    return _minibatch_neg_elbo(eqx.combine(dynamic, static), key, X, y, kl_weight,
                               likelihood=likelihood, batch_size=batch_size, noise_std=noise_std)


def loss(key: jax.Array, model, X: jax.Array, y: jax.Array, *,
         likelihood: str = "categorical", batch_size: int | None = None, kl_weight=1.0,
         noise_std=1.0) -> jax.Array:
    r"""The minibatch estimate of −ELBO_β that :func:`fit` and :func:`step` descend.

    With B = ``batch_size`` rows i₁, …, i_B drawn by ``key`` uniformly with replacement and
    one local-reparameterized forward pass (fresh noise ε in every layer),

        L̂ = (n / B) Σ_b −log p(y_{i_b} | f_{W(ε)}(x_{i_b})) + β · KL(q ‖ p),

    an unbiased estimate of the full-data objective: E[L̂] = Σᵢ E_q[−log p(yᵢ | f_W(xᵢ))]
    + β · KL = −ELBO_β (stochastic variational inference with the N/B likelihood scaling,
    Hoffman et al. 2013). ``batch_size=None`` (or ≥ n) uses every row once (only the noise
    is random).

    Args:
        key: PRNG key (minibatch and noise).
        model: a pytree with :class:`BayesianLinear` layers, as for :func:`fit`.
        X: (n, d) inputs.
        y: (n,) or (n, out) targets for ``likelihood`` (as for :func:`fit`).
        likelihood: ``"categorical"``, ``"bernoulli"`` or ``"gaussian"``.
        batch_size: static B. kl_weight, noise_std: β ≥ 0 and the Gaussian noise > 0 (traced).

    Returns:
        () the estimate L̂.

    Reference: M. D. Hoffman, D. M. Blei, C. Wang & J. Paisley, "Stochastic variational
    inference", JMLR 14 (2013).
    """
    X, y, noise_std, kl_weight, batch_size = _check_training(
        model, X, y, likelihood=likelihood, batch_size=batch_size, noise_std=noise_std,
        kl_weight=kl_weight)
    dynamic, static = eqx.partition(model, eqx.is_array)
    return _loss_core(key, _checked_params(dynamic), X, y, kl_weight=kl_weight,
                      noise_std=noise_std, static=static, likelihood=likelihood,
                      batch_size=batch_size)


def init(model, *, optimizer: optax.GradientTransformation) -> TrainState:
    """The training state of ``model`` (a pytree with :class:`BayesianLinear` layers) for
    :func:`step`: its trainable (inexact-array) leaves, a fresh ``optimizer`` state, and
    ``finite=True``."""
    _check_model(model)
    return train_init(model, optimizer)[0]


@partial(jax.jit, static_argnames=("static", "optimizer", "likelihood", "batch_size"))
def _step_core(key, state, dynamic, X, y, *, kl_weight, noise_std, static, optimizer,
               likelihood, batch_size):
    model = eqx.combine(dynamic, static)
    loss = _neg_elbo_loss(X, y, likelihood=likelihood, batch_size=batch_size,
                          noise_std=noise_std)
    return train_step(key, state, lambda m, k: loss(m, k, beta=kl_weight),
                      eqx.filter(model, eqx.is_inexact_array, inverse=True), optimizer)


def step(key: jax.Array, state: TrainState, model, X: jax.Array, y: jax.Array, *,
         optimizer: optax.GradientTransformation, kl_weight=1.0,
         likelihood: str = "categorical", batch_size: int | None = None,
         noise_std=1.0) -> tuple[TrainState, TrainInfo]:
    """One ``optimizer`` step of :func:`fit` on −ELBO_β with β = ``kl_weight`` (traced): one
    local-reparameterized pass on a minibatch of ``batch_size`` rows drawn by ``key``
    (the unbiased N/B-scaled estimate :func:`loss`, differentiated by
    ``jaxml._core.train_step``), for a loop of one's own (e.g. another KL schedule).

    ``model`` gives the structure; the trained arrays are ``state.params`` (from :func:`init`)
    and the current model is ``eqx.combine(state.params, model)``. X (n, d), y (n,) or
    (n, out) as for :func:`fit`. With the keys ``jax.random.split(key, n_steps)`` and
    β_t = ``kl_schedule(n_steps, ...)[t]`` the steps reproduce ``fit(key, ...)``.

    Returns:
        ``(state, info)``: the new :class:`TrainState`; :class:`TrainInfo` with ``value`` ()
        the minibatch −ELBO_β before the update (NaN once a step was not finite) and
        ``error`` () 0, or inf once a loss or gradient was not finite.
    """
    X, y, noise_std, kl_weight, batch_size = _check_training(
        model, X, y, likelihood=likelihood, batch_size=batch_size, noise_std=noise_std,
        kl_weight=kl_weight)
    dynamic, static = eqx.partition(model, eqx.is_array)
    return _step_core(key, state, dynamic, X, y, kl_weight=kl_weight, noise_std=noise_std,
                      static=static, optimizer=optimizer, likelihood=likelihood,
                      batch_size=batch_size)


def fit(key, model, X, y, *, likelihood: str = "categorical", n_steps: int = 1000,
        batch_size: int | None = None, learning_rate=1e-3,
        optimizer: optax.GradientTransformation | None = None, kl_weight=1.0,
        warmup_steps=0, noise_std=1.0, progress: bool = False) -> TrainResult:
    r"""Train a model with Bayesian layers by maximizing its (KL-weighted) ELBO.

    Minimizes, by Adam (or ``optimizer``) in one jit-compiled ``lax.scan`` of ``n_steps``,

        −ELBO_β(q) = Σᵢ E_q[−log p(yᵢ | f_W(xᵢ))] + β_t · KL(q ‖ p),

    by stochastic variational inference (Hoffman et al. 2013): each step descends the
    minibatch estimate :func:`loss`, one local-reparameterized forward pass (fresh
    pre-activation noise in every :class:`BayesianLinear`) on ``batch_size`` = B rows drawn
    uniformly with replacement, their log-likelihood scaled by n / B, plus β_t · KL. Its
    expectation over the batch and the noise is exactly −ELBO_β of the full data (so its
    gradient is an unbiased gradient of it); all rows are used when ``batch_size`` is
    ``None`` or ≥ n. KL is :func:`kl_divergence` of the model (each layer's ``prior``).
    β_t follows :func:`kl_schedule`: a linear warm-up from kl_weight/warmup_steps to
    ``kl_weight`` over the first ``warmup_steps`` steps (a common way to let the data shape
    the weights before the sparsifying penalty acts), ``kl_weight`` = 1 being the true ELBO.

    All-zero input rows (one-hot or sparse data, or hidden rows whose ReLU units are all off)
    are fine: their pre-activation variance is 0 and its square root has a zero derivative.

    Args:
        key: PRNG key (noise and minibatches).
        model: a pytree (e.g. :class:`BayesianMLP`) containing :class:`BayesianLinear` layers,
            called as ``model(x, key=k)`` on (B, d) inputs; finite parameters.
        X: (n, d) finite inputs, cast to the model's dtype.
        y: (n,) labels / targets for ``likelihood`` (see :func:`negative_log_likelihood`):
            classes 0..K−1 (``"categorical"``), {0, 1} (``"bernoulli"``) or reals
            (``"gaussian"``, (n,) or (n, out), noise standard deviation ``noise_std``).
        n_steps, batch_size: static sizes. learning_rate, kl_weight, warmup_steps, noise_std:
            traced (a sweep does not recompile); learning_rate and noise_std finite and > 0,
            kl_weight finite and ≥ 0, warmup_steps a whole number ≥ 0. progress: show a tqdm bar.

    Returns:
        :class:`TrainResult`: ``params`` the trained model (same structure as given),
        ``trace`` (n_steps,) the minibatch estimate of −ELBO_β at every step, before that
        step's update ((n / B) Σ_batch NLL + β_t · KL with the step's own β_t), ``n_iter`` ()
        the finite steps, ``finite`` () every loss and gradient finite (False for a diverged
        fit, e.g. a far too large learning rate), ``opt_state`` the optimizer state. The β_t
        used at step t is ``kl_schedule(n_steps, kl_weight=kl_weight,
        warmup_steps=warmup_steps)[t]``.

    Raises:
        ValueError: bad shapes, labels or options; a model without Bayesian layers or with
            parameters of the wrong shape; NaN/inf in X or the model (at run time when
            traced).
        TypeError: complex, string or object data.

    Reference: M. D. Hoffman, D. M. Blei, C. Wang & J. Paisley, "Stochastic variational
    inference", JMLR 14 (2013).
    """
    X, y, noise_std, kl_weight, batch_size = _check_training(
        model, X, y, likelihood=likelihood, batch_size=batch_size, noise_std=noise_std,
        kl_weight=kl_weight)
    n_steps = check_int_in_range(n_steps, "n_steps", 1, 1 << 31)
    dtype = X.dtype
    learning_rate = jnp.asarray(check_positive(learning_rate, "learning_rate"), dtype)
    warmup_steps = jnp.asarray(_check_warmup(warmup_steps), dtype)
    if optimizer is not None:
        X = keep_checks(X, learning_rate)     # learning_rate unused: keep its check
    dynamic, static = eqx.partition(model, eqx.is_array)
    res = _fit_core(key, _checked_params(dynamic), X, y, learning_rate=learning_rate,
                    kl_weight=kl_weight, warmup_steps=warmup_steps, noise_std=noise_std,
                    static=static, likelihood=likelihood, n_steps=n_steps,
                    batch_size=batch_size, optimizer=optimizer, progress=bool(progress))
    return res._replace(params=eqx.combine(res.params, static))
