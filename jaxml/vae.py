r"""The variational autoencoder and the plain autoencoder it is contrasted with.

**VAE** (Kingma & Welling 2014). Encoder :math:`q_\phi(z\mid x) = \mathcal N(\mu_\phi(x),
\operatorname{diag}\sigma^2_\phi(x))`, prior :math:`p(z) = \mathcal N(0, I_k)`, decoder
:math:`p_\theta(x\mid z)` (Bernoulli with logits, or Gaussian with a learned per-pixel scale).
With :math:`z = \mu + \sigma \odot \varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)`,

.. math::

    \mathrm{ELBO}(x) = \mathbb E_q \log p_\theta(x\mid z)
      - \mathrm{KL}(q_\phi(z\mid x)\,\Vert\,\mathcal N(0, I)),\qquad
    \mathrm{KL} = -\tfrac12 \sum_j (1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2).

**IWAE bound** (Burda, Grosse & Salakhutdinov 2016), for evaluation:

.. math::

    \mathcal L_K(x) = \mathbb E\Big[\log \frac1K \sum_{k=1}^K
      \frac{p_\theta(x, z_k)}{q_\phi(z_k\mid x)}\Big],\quad z_k \sim q_\phi(\cdot\mid x),

with :math:`\mathrm{ELBO} = \mathcal L_1 \le \mathcal L_K \le \mathcal L_{K+1} \le \log p(x)`.

**Autoencoder**: deterministic :math:`f: x \mapsto z`, :math:`g: z \mapsto \hat x`, trained on
:math:`\frac1n\sum_i \lVert x_i - g(f(x_i))\rVert^2`.

The Bernoulli decoder is used for data in [0, 1] (binary or grey levels, as is customary);
its log-likelihood :math:`\sum_j x_j \ell_j - \operatorname{softplus}(\ell_j)` is the negative
binary cross-entropy.

Functions take a model first (the loss convention of :func:`jaxml._core.train`), then a key
where randomness is used; data are (d,) for one point or (n, d) for a batch.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from jaxml._core.checks import (
    as_float_array, check_int_in_range, check_positive,
)
from jaxml._core.train import train
from jaxml.gaussian import kl_diag_standard_normal

__all__ = [
    "VAE", "Autoencoder", "ELBOTerms", "FitResult", "encode", "decode", "elbo", "elbo_terms",
    "iwae_bound", "decoder_log_prob", "reconstruct", "sample", "reconstruction_loss",
    "loss", "fit",
]

_LIKELIHOODS = ("bernoulli", "gaussian")
_LOG_2PI = math.log(2.0 * math.pi)


class VAE(eqx.Module):
    """Variational autoencoder with MLP encoder and decoder.

    Attributes:
        encoder: MLP d → 2k, giving (μ, log σ²) of q(z|x).
        decoder: MLP k → d, giving Bernoulli logits or the Gaussian mean of p(x|z).
        log_scale_raw: (d,) for the Gaussian decoder, σ_x = min_scale + softplus(raw)
            (unused by the Bernoulli decoder).
        likelihood: static, ``"bernoulli"`` or ``"gaussian"``.
        min_scale: static lower bound of the Gaussian decoder's scale (keeps the likelihood
            bounded on pixels that never vary).
    """

    encoder: eqx.nn.MLP
    decoder: eqx.nn.MLP
    log_scale_raw: jax.Array
    latent_dim: int = eqx.field(static=True)
    likelihood: str = eqx.field(static=True)
    min_scale: float = eqx.field(static=True)

    def __init__(self, key: jax.Array, data_dim: int, latent_dim: int, *, width: int = 128,
                 depth: int = 1, likelihood: str = "bernoulli",
                 activation: Callable = jax.nn.gelu, min_scale: float = 0.05, dtype=None):
        if likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {_LIKELIHOODS}, got {likelihood!r}")
        check_int_in_range(data_dim, "data_dim", 1, 1 << 24)
        check_int_in_range(latent_dim, "latent_dim", 1, 1 << 20)
        check_positive(min_scale, "min_scale")
        dtype = dtype or jnp.result_type(float)
        ke, kd = jax.random.split(key)
        self.encoder = eqx.nn.MLP(data_dim, 2 * latent_dim, width, depth, activation=activation,
                                  dtype=dtype, key=ke)
        self.decoder = eqx.nn.MLP(latent_dim, data_dim, width, depth, activation=activation,
                                  dtype=dtype, key=kd)
        # softplus(raw) + min_scale = 1 at start
        self.log_scale_raw = jnp.full((data_dim,), math.log(math.expm1(1.0 - min_scale)), dtype)
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.min_scale = float(min_scale)

    @property
    def data_dim(self) -> int:
        return self.log_scale_raw.shape[0]


class Autoencoder(eqx.Module):
    """Plain autoencoder: MLP encoder f: d → k and decoder g: k → d (linear output)."""

    encoder: eqx.nn.MLP
    decoder: eqx.nn.MLP
    latent_dim: int = eqx.field(static=True)
    data_dim: int = eqx.field(static=True)

    def __init__(self, key: jax.Array, data_dim: int, latent_dim: int, *, width: int = 128,
                 depth: int = 1, activation: Callable = jax.nn.gelu, dtype=None):
        check_int_in_range(data_dim, "data_dim", 1, 1 << 24)
        check_int_in_range(latent_dim, "latent_dim", 1, 1 << 20)
        dtype = dtype or jnp.result_type(float)
        ke, kd = jax.random.split(key)
        self.encoder = eqx.nn.MLP(data_dim, latent_dim, width, depth, activation=activation,
                                  dtype=dtype, key=ke)
        self.decoder = eqx.nn.MLP(latent_dim, data_dim, width, depth, activation=activation,
                                  dtype=dtype, key=kd)
        self.latent_dim = latent_dim
        self.data_dim = data_dim


# ----------------------------------------------------------------------------- plumbing


def _dtype(model) -> jnp.dtype:
    return model.decoder.layers[-1].weight.dtype


def _check_x(model, x, name: str = "x") -> jax.Array:
    x = as_float_array(x, name, ndim=(1, 2), dtype=_dtype(model))
    if x.shape[-1] != model.data_dim:
        raise ValueError(f"{name} must have last dimension {model.data_dim}, got {x.shape}")
    return x


def _map_rows(fn, x, *args):
    """fn on one row (d,); vmapped over the rows of an (n, d) array (args per row too)."""
    return fn(x, *args) if x.ndim == 1 else jax.vmap(fn)(x, *args)


def _row_keys(key, x):
    return key if x.ndim == 1 else jax.random.split(key, x.shape[0])


# ----------------------------------------------------------------------------- pieces


def _split_code(model: VAE, h):
    return h[..., : model.latent_dim], h[..., model.latent_dim:]


@eqx.filter_jit
def _encode(model, x):
    if isinstance(model, VAE):
        return _split_code(model, _map_rows(model.encoder, x))
    return _map_rows(model.encoder, x)


def encode(model: VAE | Autoencoder, x: jax.Array):
    r"""The encoder. VAE: ``(mean, log_var)`` of :math:`q(z\mid x)`, each (k,) or (n, k);
    Autoencoder: the code :math:`f(x)`, (k,) or (n, k). x: (d,) or (n, d)."""
    return _encode(model, _check_x(model, x))


@eqx.filter_jit
def _decode(model, z):
    return _map_rows(model.decoder, z)


def decode(model: VAE | Autoencoder, z: jax.Array) -> jax.Array:
    """The decoder's output for z (k,) or (n, k): Bernoulli logits or Gaussian mean (VAE), or
    the reconstruction g(z) (Autoencoder); (d,) or (n, d)."""
    z = as_float_array(z, "z", ndim=(1, 2), dtype=_dtype(model))
    if z.shape[-1] != model.latent_dim:
        raise ValueError(f"z must have last dimension {model.latent_dim}, got {z.shape}")
    return _decode(model, z)


def _log_lik_one(model: VAE, v, z):
    """log p(v | z) for one row v (d,) and one code z (k,)."""
    out = model.decoder(z)
    if model.likelihood == "bernoulli":
        return jnp.sum(v * out - jax.nn.softplus(out))
    scale = model.min_scale + jax.nn.softplus(model.log_scale_raw)
    r = (v - out) / scale
    return jnp.sum(-0.5 * r * r - jnp.log(scale) - 0.5 * _LOG_2PI)


@eqx.filter_jit
def _decoder_log_prob(model, x, z):
    return _map_rows(lambda v, zz: _log_lik_one(model, v, zz), x, z)


def decoder_log_prob(model: VAE, x: jax.Array, z: jax.Array) -> jax.Array:
    r""":math:`\log p_\theta(x\mid z)`: x (d,), z (k,) → (); or rows (n, d), (n, k) → (n,)."""
    x = _check_x(model, x)
    z = as_float_array(z, "z", ndim=x.ndim, dtype=_dtype(model))
    return _decoder_log_prob(model, x, z)


def _diag_normal_log_prob(z, mean, log_var):
    return jnp.sum(-0.5 * (z - mean) ** 2 * jnp.exp(-log_var) - 0.5 * log_var - 0.5 * _LOG_2PI,
                   axis=-1)


class ELBOTerms(NamedTuple):
    """The ELBO and its two terms, one value per data row: (n,) (or () for one point).

    elbo = reconstruction − kl; reconstruction is the Monte Carlo average of log p(x|z) over
    the draws; kl is the closed-form KL(q(z|x) ‖ N(0, I))."""

    elbo: jax.Array
    reconstruction: jax.Array
    kl: jax.Array


def _posterior_draws(model: VAE, v, k, n_samples: int):
    """(mean, log_var) of q(z|v) and n_samples reparameterized draws z = μ + σ ⊙ ε."""
    mean, log_var = _split_code(model, model.encoder(v))
    eps = jax.random.normal(k, (n_samples, model.latent_dim), v.dtype)
    return mean, log_var, mean + jnp.exp(0.5 * log_var) * eps


@eqx.filter_jit
def _elbo_terms(model, key, x, n_samples):
    def one(v, k):
        mean, log_var, z = _posterior_draws(model, v, k, n_samples)
        rec = jnp.mean(jax.vmap(lambda zz: _log_lik_one(model, v, zz))(z))
        kl = kl_diag_standard_normal(mean, log_var)
        return ELBOTerms(rec - kl, rec, kl)
    return _map_rows(one, x, _row_keys(key, x))


def elbo_terms(model: VAE, key: jax.Array, x: jax.Array, *, n_samples: int = 1) -> ELBOTerms:
    r"""Reparameterized ELBO with ``n_samples`` draws :math:`z = \mu + \sigma\odot\varepsilon`
    per row, and the KL in closed form (:func:`jaxml.gaussian.kl_diag_standard_normal`)."""
    _check_vae(model)
    check_int_in_range(n_samples, "n_samples", 1, 1 << 24)
    return _elbo_terms(model, key, _check_x(model, x), n_samples)


def elbo(model: VAE, key: jax.Array, x: jax.Array, *, n_samples: int = 1) -> jax.Array:
    r""":math:`\mathbb E_q \log p_\theta(x\mid z) - \mathrm{KL}(q\Vert p)`, one Monte Carlo
    estimate per row (``n_samples`` reparameterized draws, closed-form KL).

    x: (d,) → (); (n, d) → (n,). An unbiased estimate of the ELBO of each row.
    """
    return elbo_terms(model, key, x, n_samples=n_samples).elbo


@eqx.filter_jit
def _iwae_bound(model, key, x, n_samples):
    def one(v, k):
        mean, log_var, z = _posterior_draws(model, v, k, n_samples)
        log_px = jax.vmap(lambda zz: _log_lik_one(model, v, zz))(z)
        log_pz = -0.5 * jnp.sum(z * z, axis=-1) - 0.5 * model.latent_dim * _LOG_2PI
        log_q = _diag_normal_log_prob(z, mean, log_var)
        return jax.nn.logsumexp(log_px + log_pz - log_q) - math.log(n_samples)
    return _map_rows(one, x, _row_keys(key, x))


def iwae_bound(model: VAE, key: jax.Array, x: jax.Array, *, n_samples: int = 64) -> jax.Array:
    r"""Importance-weighted estimate of :math:`\log p_\theta(x)` with K = ``n_samples``:
    :math:`\log\frac1K\sum_k \exp(\log p(x\mid z_k) + \log p(z_k) - \log q(z_k\mid x))`
    (a logsumexp), :math:`z_k \sim q(\cdot\mid x)`. Its expectation is the IWAE bound
    :math:`\mathcal L_K`, which increases with K towards log p(x).

    x: (d,) → (); (n, d) → (n,).
    """
    _check_vae(model)
    check_int_in_range(n_samples, "n_samples", 1, 1 << 24)
    return _iwae_bound(model, key, _check_x(model, x), n_samples)


def _mean_output(model: VAE, z):
    out = model.decoder(z)
    return jax.nn.sigmoid(out) if model.likelihood == "bernoulli" else out


@eqx.filter_jit
def _reconstruct(model, x):
    if isinstance(model, Autoencoder):
        return _map_rows(lambda v: model.decoder(model.encoder(v)), x)
    return _map_rows(lambda v: _mean_output(model, _split_code(model, model.encoder(v))[0]), x)


def reconstruct(model: VAE | Autoencoder, x: jax.Array) -> jax.Array:
    r"""Reconstruction of x (d,) or (n, d): :math:`g(f(x))` for the autoencoder; for the VAE the
    decoder's mean at the posterior mean :math:`\mu_\phi(x)` (probabilities for Bernoulli)."""
    return _reconstruct(model, _check_x(model, x))


@eqx.filter_jit
def _sample(key, model, n, mean):
    kz, kx = jax.random.split(key)
    z = jax.random.normal(kz, (n, model.latent_dim), _dtype(model))
    m = jax.vmap(lambda zz: _mean_output(model, zz))(z)
    if mean:
        return m
    if model.likelihood == "bernoulli":
        return jax.random.bernoulli(kx, m).astype(m.dtype)
    scale = model.min_scale + jax.nn.softplus(model.log_scale_raw)
    return m + scale * jax.random.normal(kx, m.shape, m.dtype)


def sample(key: jax.Array, model: VAE, n: int, *, mean: bool = True) -> jax.Array:
    r"""n draws from the generative model: :math:`z \sim \mathcal N(0, I)`, then the decoder's
    mean (``mean=True``) or a draw :math:`x \sim p_\theta(x\mid z)`. Returns (n, d)."""
    _check_vae(model)
    check_int_in_range(n, "n", 1, 1 << 31)
    return _sample(key, model, n, bool(mean))


def _sq_error(model: Autoencoder, x):
    r = x - _map_rows(lambda v: model.decoder(model.encoder(v)), x)
    return jnp.mean(jnp.sum(r * r, axis=-1))


def reconstruction_loss(model: Autoencoder, x: jax.Array) -> jax.Array:
    r""":math:`\frac1n\sum_i \lVert x_i - g(f(x_i))\rVert^2`, x: (n, d) → ()."""
    if not isinstance(model, Autoencoder):
        raise TypeError(f"model must be an Autoencoder, got {type(model).__name__}")
    return eqx.filter_jit(_sq_error)(model, _check_x(model, x))


def _check_vae(model) -> None:
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a VAE, got {type(model).__name__}")


def loss(model: VAE | Autoencoder, key: jax.Array, x: jax.Array) -> jax.Array:
    """The training loss on a batch x (n, d): −mean ELBO (VAE, one draw per row) or the mean
    squared reconstruction error (Autoencoder; ``key`` unused)."""
    if isinstance(model, VAE):
        return -jnp.mean(_elbo_terms(model, key, x, 1).elbo)
    return _sq_error(model, x)


# ----------------------------------------------------------------------------- fitting


class FitResult(NamedTuple):
    """Result of :func:`fit`.

    Attributes:
        model: the trained VAE or Autoencoder.
        losses: (n_steps,) the minibatch loss at every step (−ELBO per row for a VAE, squared
            reconstruction error per row for an autoencoder).
        n_iter: () number of steps taken.
        finite: () True when every loss in the trace is finite.
    """

    model: VAE | Autoencoder
    losses: jax.Array
    n_iter: jax.Array
    finite: jax.Array


@eqx.filter_jit
def _fit(model, key, X, batch_size, learning_rate, optimizer, n_steps, progress):
    if optimizer is None:
        optimizer = optax.adam(learning_rate)
    n = X.shape[0]

    def loss_fn(m, k):
        kb, kl = jax.random.split(k)
        idx = jax.random.randint(kb, (min(batch_size, n),), 0, n)
        return loss(m, kl, X[idx])

    res = train(loss_fn, model, key, optimizer=optimizer, n_steps=n_steps, progress=progress,
                desc="vae fit" if isinstance(model, VAE) else "autoencoder fit")
    return FitResult(res.params, res.losses, jnp.asarray(n_steps),
                     jnp.all(jnp.isfinite(res.losses)))


def fit(key: jax.Array, model: VAE | Autoencoder, X: jax.Array, *, n_steps: int = 1000,
        batch_size: int = 128, learning_rate: float = 1e-3,
        optimizer: optax.GradientTransformation | None = None,
        progress: bool = False) -> FitResult:
    """Train a VAE (maximize the ELBO) or an autoencoder (minimize the squared reconstruction
    error) with Adam (or ``optimizer``), ``n_steps`` steps in one jit-compiled ``lax.scan``,
    each on a minibatch of ``batch_size`` rows of X (n, d) drawn with replacement by ``key``.

    ``learning_rate`` is traced (no recompilation across values); ``progress=True`` shows a
    tqdm bar. Returns a :class:`FitResult`.
    """
    if not isinstance(model, (VAE, Autoencoder)):
        raise TypeError(f"model must be a VAE or an Autoencoder, got {type(model).__name__}")
    X = _check_x(model, X, "X")
    if X.ndim != 2:
        raise ValueError(f"X must have 2 dimensions, got shape {X.shape}")
    check_int_in_range(n_steps, "n_steps", 1, 1 << 31)
    check_int_in_range(batch_size, "batch_size", 1, 1 << 31)
    check_positive(learning_rate, "learning_rate")
    learning_rate = jnp.asarray(learning_rate, _dtype(model))
    return _fit(model, key, X, batch_size, learning_rate, optimizer, n_steps, progress)
