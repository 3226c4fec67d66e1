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

References:
    D. P. Kingma, T. Salimans & M. Welling, "Variational dropout and the local
    reparameterization trick", NeurIPS (2015).
    D. Molchanov, A. Ashukha & D. Vetrov, "Variational dropout sparsifies deep neural
    networks", ICML (2017).
    V. Kharitonov, D. Molchanov & D. Vetrov, "Variational dropout via empirical Bayes",
    arXiv:1811.00596 (2018).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxml._core import check_int_in_range

__all__ = [
    "BayesianLinear", "BayesianMLP", "kl_log_uniform", "kl_ard", "kl_divergence",
    "SparsityReport", "sparsity", "prune", "PRUNE_THRESHOLD",
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
        return mean + jnp.sqrt(var) * jax.random.normal(key, mean.shape, mean.dtype)

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
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            BayesianLinear(a, b, key=k, prior=prior, init_log_sigma2=init_log_sigma2, dtype=dtype)
            for a, b, k in zip(sizes[:-1], sizes[1:], keys))
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


def kl_divergence(model) -> jax.Array:
    """() the sum of :meth:`BayesianLinear.kl` over every Bayesian layer in ``model`` (a pytree)."""
    layers = _layers(model)
    if not layers:
        raise ValueError("model contains no BayesianLinear layer")
    return sum(layer.kl() for layer in layers)


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
    layers = _layers(model)
    if not layers:
        raise ValueError("model contains no BayesianLinear layer")
    pruned = [jnp.sum(~layer.keep_mask(threshold)) for layer in layers]
    sizes = [layer.weight_mean.size for layer in layers]
    n_pruned, n_total = sum(pruned), sum(sizes)
    return SparsityReport(n_pruned, n_total, n_pruned / n_total,
                          tuple(p / s for p, s in zip(pruned, sizes)))


def prune(model, threshold=PRUNE_THRESHOLD):
    """``model`` with every noise-dominated weight (log α > threshold) removed: θ ← 0 and
    σ² ← e⁻⁶⁰ there, so the weight neither contributes to the mean nor injects noise (and it
    still reads as pruned: its log α stays large)."""

    def apply(x):
        if not _is_layer(x):
            return x
        keep = x.keep_mask(threshold)
        x = eqx.tree_at(lambda l: l.weight_mean, x, jnp.where(keep, x.weight_mean, 0.0))
        return eqx.tree_at(lambda l: l.weight_log_sigma2, x,
                           jnp.where(keep, x.weight_log_sigma2, _LOG_SIGMA2_PRUNED))

    return jax.tree_util.tree_map(apply, model, is_leaf=_is_layer)
