r"""The variational autoencoder and the plain autoencoder it is contrasted with.

**VAE** (Kingma & Welling 2014). Encoder q_φ(z | x) = N(μ_φ(x), diag σ²_φ(x)), prior
p(z) = N(0, I_k), decoder p_θ(x | z), one of (``likelihood=``)

- ``"bernoulli"``: Bernoulli with logits ℓ(z), for data in [0, 1];
- ``"gaussian"``: N(μ(z), diag σ²) with a learned per-pixel scale σ that does not depend on z;
- ``"heteroscedastic"``: N(μ(z), diag σ²(z)), the decoder giving 2d numbers (μ(z), r(z)) and
  σ(z) = min_scale + softplus(r(z)), so the scale varies with z and the likelihood stays
  bounded (σ ≥ min_scale) on pixels that never vary.

With z = μ + σ ⊙ ε, ε ~ N(0, I),

    ELBO(x) = E_q log p_θ(x | z) − KL(q_φ(z | x) ‖ N(0, I)),
    KL = −½ Σⱼ (1 + log σⱼ² − μⱼ² − σⱼ²).

**IWAE bound** (Burda, Grosse & Salakhutdinov 2016), for evaluation:

    L_K(x) = E[log (1/K) Σₖ p_θ(x, z_k) / q_φ(z_k | x)],   z_k ~ q_φ(· | x),

with ELBO = L₁ ≤ L_K ≤ L_{K+1} ≤ log p(x).

**Autoencoder**: deterministic f: x ↦ z, g: z ↦ x̂, trained on (1/n) Σᵢ ‖xᵢ − g(f(xᵢ))‖².

The Bernoulli decoder is for data in [0, 1] (binary or grey levels, as is customary; data
outside [0, 1] is rejected with an error naming it); its log-likelihood Σⱼ xⱼ ℓⱼ − softplus(ℓⱼ) is the negative binary cross-entropy. The
Bernoulli, diagonal-Gaussian and standard-normal log-densities are ``jaxml._core``'s (shared
with ``bayes_layers`` and ``flows``).

Conventions: a random function takes the key first, then the model (:func:`fit`,
:func:`sample`, :func:`elbo`, :func:`elbo_terms`, :func:`iwae_bound`, :func:`loss`); the
deterministic ones take the model first. Data are (d,) for one point or (n, d) for a batch. :func:`fit` returns the shared
:class:`TrainResult` (``params`` is the trained model, ``trace`` the loss per step).

Reference: D. P. Kingma & M. Welling, "Auto-encoding variational Bayes", ICLR (2014);
Y. Burda, R. Grosse & R. Salakhutdinov, "Importance weighted autoencoders", ICLR (2016).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from jaxml._core import (TrainInfo, TrainResult, TrainState, as_float_array, bernoulli_log_prob,
                         check_finite, check_in_range, check_int_in_range, check_positive,
                         diag_gaussian_log_prob, standard_normal_log_prob, train, train_init,
                         train_step)
from jaxml.gaussian import kl_diag_standard_normal

__all__ = [
    "VAE", "Autoencoder", "ELBOTerms", "TrainResult", "encode", "decode", "elbo", "elbo_terms",
    "iwae_bound", "decoder_log_prob", "reconstruct", "sample", "reconstruction_loss",
    "loss", "TrainState", "TrainInfo", "init", "step", "fit",
]

_LIKELIHOODS = ("bernoulli", "gaussian", "heteroscedastic")


@eqx.filter_jit
def _init_mlps(key, sizes, width, depth, activation, dtype, shift, raw):
    """The encoder d → e and decoder k → o (``sizes`` = (d, e, k, o)) drawn from ``key``, the
    decoder's last bias shifted by ``shift`` past its first d entries, and a (d,) array of
    ``raw``: one compiled program per configuration (the sizes, the activation and the
    numbers are static), instead of one eager compile per layer shape."""
    d, e, k, o = sizes
    ke, kd = jax.random.split(key)
    encoder = eqx.nn.MLP(d, e, width, depth, activation=activation, dtype=dtype, key=ke)
    decoder = eqx.nn.MLP(k, o, width, depth, activation=activation, dtype=dtype, key=kd)
    if shift is not None:
        decoder = eqx.tree_at(lambda m: m.layers[-1].bias, decoder,
                              decoder.layers[-1].bias.at[d:].add(shift))
    return encoder, decoder, None if raw is None else jnp.full((d,), raw, dtype)


class VAE(eqx.Module):
    """Variational autoencoder with MLP encoder and decoder.

    Attributes:
        encoder: MLP d → 2k, giving (μ, log σ²) of q(z|x).
        decoder: MLP k → d, giving Bernoulli logits or the Gaussian mean of p(x|z); for
            ``"heteroscedastic"`` k → 2d, giving (μ(z), r(z)), σ_x(z) = min_scale + softplus(r).
        log_scale_raw: (d,) for the ``"gaussian"`` decoder, σ_x = min_scale + softplus(raw)
            (unused by the other decoders).
        likelihood: static, ``"bernoulli"``, ``"gaussian"`` or ``"heteroscedastic"``.
        min_scale: static lower bound of the Gaussian decoders' scales (keeps the likelihood
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
        # softplus(raw) + min_scale = 1 at start
        raw = math.log(math.expm1(1.0 - min_scale)) if min_scale < 1.0 else 0.0
        out_dim = 2 * data_dim if likelihood == "heteroscedastic" else data_dim
        # σ(z) ≈ 1 at start for "heteroscedastic": shift the r(z) half of the last bias
        shift = raw if likelihood == "heteroscedastic" else None
        self.encoder, self.decoder, self.log_scale_raw = _init_mlps(
            key, (data_dim, 2 * latent_dim, latent_dim, out_dim), width, depth, activation,
            jnp.dtype(dtype), shift, raw)
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
        self.encoder, self.decoder, _ = _init_mlps(
            key, (data_dim, latent_dim, latent_dim, data_dim), width, depth, activation,
            jnp.dtype(dtype), None, None)
        self.latent_dim = latent_dim
        self.data_dim = data_dim


# ----------------------------------------------------------------------------- plumbing


def _dtype(model) -> jnp.dtype:
    return model.decoder.layers[-1].weight.dtype


def _check_model(model, kinds=(VAE, Autoencoder)) -> None:
    if not isinstance(model, kinds):
        want = " or ".join(("an " if k.__name__[0] in "AEIOU" else "a ") + k.__name__
                           for k in kinds)
        raise TypeError(f"model must be {want}, got {type(model).__name__}")


def _check_shapes(model) -> None:
    """The encoder and decoder map the sizes the model says (parameters of the wrong shape,
    e.g. swapped in with ``eqx.tree_at``, are reported here rather than deep inside JAX)."""
    d, k, dt = model.data_dim, model.latent_dim, _dtype(model)
    vae_ = isinstance(model, VAE)
    out_dim = 2 * d if vae_ and model.likelihood == "heteroscedastic" else d
    for part, size_in, size_out in (("encoder", d, 2 * k if vae_ else k),
                                    ("decoder", k, out_dim)):
        try:
            out = jax.eval_shape(getattr(model, part), jax.ShapeDtypeStruct((size_in,), dt))
            got = out.shape
        except Exception as e:  # noqa: BLE001  shapes that do not chain
            raise ValueError(f"model.{part} parameters have the wrong shape: it cannot map "
                             f"({size_in},) to ({size_out},): {e}") from e
        if tuple(got) != (size_out,):
            raise ValueError(f"model.{part} must map ({size_in},) to ({size_out},), got {got}: "
                             "its parameters have the wrong shape")


def _check_model_arrays(model) -> None:
    _check_model(model)
    _check_shapes(model)


def _bernoulli_data(model) -> bool:
    return isinstance(model, VAE) and model.likelihood == "bernoulli"


def _check_x(model, x, name: str = "x", ndim=(1, 2), *, likelihood: bool = False) -> jax.Array:
    """x as rows of the model's data; with ``likelihood=True`` (x is scored by the decoder)
    a Bernoulli decoder's data must lie in [0, 1] (at run time when traced)."""
    x = as_float_array(x, name, ndim=ndim, dtype=_dtype(model))
    if x.shape[-1] != model.data_dim:
        raise ValueError(f"{name} must have last dimension {model.data_dim}, got {x.shape}")
    if x.ndim == 2 and x.shape[0] < 1:
        raise ValueError(f"{name} must have at least 1 row, got shape {x.shape}")
    if likelihood and _bernoulli_data(model):
        x = check_in_range(x, name, 0.0, 1.0)
    return x


@partial(jax.jit, static_argnames=("fn", "static", "sizes"))
def _core(dynamic, args, *, fn, static, sizes):
    """The one compiled call behind every public function: ``fn(model, *args, **sizes)`` with
    the model's arrays traced and the rest (activations, sizes, the likelihood) static."""
    return fn(eqx.combine(dynamic, static), *args, **dict(sizes))


def _call(fn, model, *args, **sizes):
    dynamic, static = eqx.partition(model, eqx.is_array)
    return _core(dynamic, args, fn=fn, static=static, sizes=tuple(sorted(sizes.items())))


def _map_rows(fn, x, *args):
    """fn on one row (d,); vmapped over the rows of an (n, d) array (args per row too)."""
    return fn(x, *args) if x.ndim == 1 else jax.vmap(fn)(x, *args)


def _row_keys(key, x):
    return key if x.ndim == 1 else jax.random.split(key, x.shape[0])


# ----------------------------------------------------------------------------- pieces


def _split_code(model: VAE, h):
    return h[..., : model.latent_dim], h[..., model.latent_dim:]


def _encode(model, x):
    if isinstance(model, VAE):
        return _split_code(model, _map_rows(model.encoder, x))
    return _map_rows(model.encoder, x)


def encode(model: VAE | Autoencoder, x: jax.Array):
    """The encoder. VAE: ``(mean, log_var)`` of q(z | x), each (k,) or (n, k); Autoencoder:
    the code f(x), (k,) or (n, k). x: (d,) or (n, d)."""
    _check_model_arrays(model)
    return _call(_encode, model, _check_x(model, x))


def _decode(model, z):
    if isinstance(model, VAE):
        return _map_rows(lambda zz: _decoder_out(model, zz)[0], z)
    return _map_rows(model.decoder, z)


def decode(model: VAE | Autoencoder, z: jax.Array) -> jax.Array:
    """The decoder's output for z (k,) or (n, k): Bernoulli logits or the Gaussian mean μ(z)
    (VAE; for ``"heteroscedastic"`` the mean, the first d of its 2d outputs), or the
    reconstruction g(z) (Autoencoder); (d,) or (n, d)."""
    _check_model_arrays(model)
    z = as_float_array(z, "z", ndim=(1, 2), dtype=_dtype(model))
    if z.shape[-1] != model.latent_dim:
        raise ValueError(f"z must have last dimension {model.latent_dim}, got {z.shape}")
    return _call(_decode, model, z)


def _scale(model: VAE) -> jax.Array:
    """σ_x = min_scale + softplus(raw), (d,): the Gaussian decoder's per-pixel scale."""
    return model.min_scale + jax.nn.softplus(model.log_scale_raw)


def _decoder_out(model: VAE, z):
    """(logits or mean (d,), scale (d,) or None) of p(x | z) for one code z (k,)."""
    out = model.decoder(z)
    if model.likelihood == "bernoulli":
        return out, None
    if model.likelihood == "gaussian":
        return out, _scale(model)
    d = model.data_dim
    return out[:d], model.min_scale + jax.nn.softplus(out[d:])


def _log_lik_one(model: VAE, v, z):
    """log p(v | z) for one row v (d,) and one code z (k,)."""
    out, scale = _decoder_out(model, z)
    if scale is None:
        return bernoulli_log_prob(v, out)
    return diag_gaussian_log_prob(v, out, 2.0 * jnp.log(scale))


def _decoder_log_prob(model, x, z):
    return _map_rows(lambda v, zz: _log_lik_one(model, v, zz), x, z)


def decoder_log_prob(model: VAE, x: jax.Array, z: jax.Array) -> jax.Array:
    """log p_θ(x | z): x (d,), z (k,) → (); or rows (n, d), (n, k) → (n,).

    Bernoulli: Σⱼ xⱼ ℓⱼ − softplus(ℓⱼ) (x in [0, 1]); Gaussian and heteroscedastic:
    Σⱼ log N(xⱼ | μⱼ(z), σⱼ²), σ per pixel or σ(z) = min_scale + softplus(r(z))."""
    _check_model(model, (VAE,))
    _check_shapes(model)
    x = _check_x(model, x, likelihood=True)
    z = as_float_array(z, "z", ndim=x.ndim, dtype=_dtype(model))
    if z.shape[-1] != model.latent_dim or z.shape[:-1] != x.shape[:-1]:
        raise ValueError(f"z must have shape {x.shape[:-1] + (model.latent_dim,)} (one code "
                         f"per row of x), got {z.shape}")
    return _call(_decoder_log_prob, model, x, z)


class ELBOTerms(NamedTuple):
    """The ELBO and its two terms, one value per data row (not a history).

    Attributes:
        elbo: () for one point x (d,), (n,) for rows (n, d): reconstruction − kl.
        reconstruction: () or (n,), the Monte Carlo average of log p(x | z) over the draws.
        kl: () or (n,), the closed-form KL(q(z | x) ‖ N(0, I)).
    """

    elbo: jax.Array
    reconstruction: jax.Array
    kl: jax.Array


def _posterior_draws(model: VAE, v, k, n_samples: int):
    """(mean, log_var) of q(z | v) and n_samples reparameterized draws z = μ + σ ⊙ ε."""
    mean, log_var = _split_code(model, model.encoder(v))
    eps = jax.random.normal(k, (n_samples, model.latent_dim), v.dtype)
    return mean, log_var, mean + jnp.exp(0.5 * log_var) * eps


def _elbo_terms(model, key, x, *, n_samples):
    def one(v, k):
        mean, log_var, z = _posterior_draws(model, v, k, n_samples)
        rec = jnp.mean(jax.vmap(lambda zz: _log_lik_one(model, v, zz))(z))
        kl = kl_diag_standard_normal(mean, log_var)
        return ELBOTerms(rec - kl, rec, kl)
    return _map_rows(one, x, _row_keys(key, x))


def elbo_terms(key: jax.Array, model: VAE, x: jax.Array, *, n_samples: int = 1) -> ELBOTerms:
    """Reparameterized ELBO with ``n_samples`` draws z = μ + σ ⊙ ε per row, and the KL in
    closed form (:func:`jaxml.gaussian.kl_diag_standard_normal`). x: (d,) or (n, d); each
    field () or (n,)."""
    _check_model(model, (VAE,))
    _check_shapes(model)
    n_samples = check_int_in_range(n_samples, "n_samples", 1, 1 << 24)
    return _call(_elbo_terms, model, key, _check_x(model, x, likelihood=True),
                 n_samples=n_samples)


def elbo(key: jax.Array, model: VAE, x: jax.Array, *, n_samples: int = 1) -> jax.Array:
    """E_q log p_θ(x | z) − KL(q ‖ p), one Monte Carlo estimate per row (``n_samples``
    reparameterized draws, closed-form KL).

    x: (d,) → (); (n, d) → (n,). An unbiased estimate of the ELBO of each row.
    """
    return elbo_terms(key, model, x, n_samples=n_samples).elbo


def _iwae_bound(model, key, x, *, n_samples):
    def one(v, k):
        mean, log_var, z = _posterior_draws(model, v, k, n_samples)
        log_px = jax.vmap(lambda zz: _log_lik_one(model, v, zz))(z)
        log_w = log_px + standard_normal_log_prob(z) - diag_gaussian_log_prob(z, mean, log_var)
        return jax.nn.logsumexp(log_w) - math.log(n_samples)
    return _map_rows(one, x, _row_keys(key, x))


def iwae_bound(key: jax.Array, model: VAE, x: jax.Array, *, n_samples: int = 64) -> jax.Array:
    """Importance-weighted estimate of log p_θ(x) with K = ``n_samples``:
    log (1/K) Σₖ exp(log p(x | z_k) + log p(z_k) − log q(z_k | x)) (a logsumexp),
    z_k ~ q(· | x). Its expectation is the IWAE bound L_K, which increases with K towards
    log p(x).

    x: (d,) → (); (n, d) → (n,).
    """
    _check_model(model, (VAE,))
    _check_shapes(model)
    n_samples = check_int_in_range(n_samples, "n_samples", 1, 1 << 24)
    return _call(_iwae_bound, model, key, _check_x(model, x, likelihood=True),
                 n_samples=n_samples)


def _mean_output(model: VAE, z):
    out, _ = _decoder_out(model, z)
    return jax.nn.sigmoid(out) if model.likelihood == "bernoulli" else out


def _reconstruct(model, x):
    if isinstance(model, Autoencoder):
        return _map_rows(lambda v: model.decoder(model.encoder(v)), x)
    return _map_rows(lambda v: _mean_output(model, _split_code(model, model.encoder(v))[0]), x)


def reconstruct(model: VAE | Autoencoder, x: jax.Array) -> jax.Array:
    """Reconstruction of x (d,) or (n, d): g(f(x)) for the autoencoder; for the VAE the
    decoder's mean at the posterior mean μ_φ(x) (probabilities for Bernoulli)."""
    _check_model_arrays(model)
    return _call(_reconstruct, model, _check_x(model, x))


def _sample(model, key, *, n, mean):
    kz, kx = jax.random.split(key)
    z = jax.random.normal(kz, (n, model.latent_dim), _dtype(model))
    m = jax.vmap(lambda zz: _mean_output(model, zz))(z)
    if mean:
        return m
    if model.likelihood == "bernoulli":
        return jax.random.bernoulli(kx, m).astype(m.dtype)
    scale = jax.vmap(lambda zz: _decoder_out(model, zz)[1])(z)
    return m + scale * jax.random.normal(kx, m.shape, m.dtype)


def sample(key: jax.Array, model: VAE, n: int, *, mean: bool = True) -> jax.Array:
    """n draws from the generative model: z ~ N(0, I), then the decoder's mean
    (``mean=True``) or a draw x ~ p_θ(x | z). Returns (n, d)."""
    _check_model(model, (VAE,))
    _check_shapes(model)
    n = check_int_in_range(n, "n", 1, 1 << 31)
    return _call(_sample, model, key, n=n, mean=bool(mean))


def _sq_error(model: Autoencoder, x):
    r = x - _map_rows(lambda v: model.decoder(model.encoder(v)), x)
    return jnp.mean(jnp.sum(r * r, axis=-1))


def reconstruction_loss(model: Autoencoder, x: jax.Array) -> jax.Array:
    """(1/n) Σᵢ ‖xᵢ − g(f(xᵢ))‖², x: (n, d) → ()."""
    _check_model(model, (Autoencoder,))
    _check_shapes(model)
    return _call(_sq_error, model, _check_x(model, x))


def _loss(model, key, x):
    if isinstance(model, VAE):
        return -jnp.mean(_elbo_terms(model, key, x, n_samples=1).elbo)
    return _sq_error(model, x)


def loss(key: jax.Array, model: VAE | Autoencoder, x: jax.Array) -> jax.Array:
    """The training loss on a batch x (n, d) → (): −mean ELBO (VAE, one draw per row) or the
    mean squared reconstruction error (Autoencoder; ``key`` unused). A Bernoulli decoder's
    x must lie in [0, 1]."""
    _check_model_arrays(model)
    return _call(_loss, model, key, _check_x(model, x, ndim=2, likelihood=True))


# ----------------------------------------------------------------------------- fitting


def _batch_loss(X, batch_size: int) -> Callable:
    """``loss_fn(model, key)``: :func:`loss` on ``batch_size`` rows of X drawn by ``key``."""
    n = X.shape[0]

    def loss_fn(m, k):
        kb, kl = jax.random.split(k)
        return _loss(m, kl, X[jax.random.randint(kb, (min(batch_size, n),), 0, n)])
    return loss_fn


def init(model: VAE | Autoencoder, *, optimizer: optax.GradientTransformation) -> TrainState:
    """The training state of ``model`` for :func:`step`: its trainable (inexact-array)
    leaves, a fresh ``optimizer`` state, and ``finite=True``."""
    _check_model(model)
    return train_init(model, optimizer)[0]


@partial(jax.jit, static_argnames=("static", "optimizer", "batch_size"))
def _step_core(key, state, dynamic, X, *, static, optimizer, batch_size):
    model = eqx.combine(dynamic, static)
    return train_step(key, state, _batch_loss(X, batch_size),
                      eqx.filter(model, eqx.is_inexact_array, inverse=True), optimizer)


def step(key: jax.Array, state: TrainState, model: VAE | Autoencoder, X: jax.Array, *,
         optimizer: optax.GradientTransformation,
         batch_size: int = 128) -> tuple[TrainState, TrainInfo]:
    """One ``optimizer`` step of :func:`fit` on a minibatch of ``batch_size`` rows of X (n, d)
    drawn by ``key`` (``jaxml._core.train_step`` on :func:`loss`), for a training loop of
    one's own. ``model`` gives the structure; the trained arrays are ``state.params`` (from
    :func:`init`) and the current model is ``eqx.combine(state.params, model)``. With the keys
    ``jax.random.split(key, n_steps)`` the steps reproduce ``fit(key, ...)``.

    Returns:
        ``(state, info)``: the new :class:`TrainState`; :class:`TrainInfo` with ``value`` ()
        the minibatch loss before the update (NaN once a step was not finite) and ``error``
        () 0, or inf once a loss or gradient was not finite.
    """
    _check_model_arrays(model)
    X = _check_x(model, X, "X", ndim=2, likelihood=True)
    batch_size = check_int_in_range(batch_size, "batch_size", 1, 1 << 31)
    dynamic, static = eqx.partition(model, eqx.is_array)
    return _step_core(key, state, dynamic, X, static=static, optimizer=optimizer,
                      batch_size=batch_size)


@partial(jax.jit, static_argnames=("static", "batch_size", "optimizer", "n_steps", "progress"))
def _fit_core(key, dynamic, X, *, learning_rate, static, batch_size, optimizer, n_steps,
              progress):
    model = eqx.combine(dynamic, static)
    res = train(key, _batch_loss(X, batch_size), model,
                optimizer=optax.adam(learning_rate) if optimizer is None else optimizer,
                n_steps=n_steps, progress=progress,
                desc="vae fit" if isinstance(model, VAE) else "autoencoder fit")
    return res._replace(params=eqx.filter(res.params, eqx.is_array))


def fit(key: jax.Array, model: VAE | Autoencoder, X: jax.Array, *, n_steps: int = 1000,
        batch_size: int = 128, learning_rate: float = 1e-3,
        optimizer: optax.GradientTransformation | None = None,
        progress: bool = False) -> TrainResult:
    """Train a VAE (maximize the ELBO) or an autoencoder (minimize the squared reconstruction
    error) with Adam (or ``optimizer``), ``n_steps`` steps in one compiled ``lax.scan``, each
    on a minibatch of ``batch_size`` rows of X (n, d) drawn with replacement by ``key``:
    :func:`init`, then ``n_steps`` of :func:`step` (the shared ``jaxml._core.train``).

    ``learning_rate`` (finite, > 0) is traced (no recompilation across values, ``vmap``
    works); sizes are static; ``progress=True`` shows a tqdm bar. X must be finite, and in
    [0, 1] for a Bernoulli decoder; the model's parameters must be finite and of the shapes
    its sizes say (checked at run time when traced).

    Returns:
        :class:`TrainResult`: ``params`` the trained model, ``trace`` (n_steps,) the minibatch
        loss at every step (−ELBO per row for a VAE, squared reconstruction error per row for
        an autoencoder), ``n_iter`` () the finite steps, ``finite`` () every loss and gradient
        finite (False for a diverged fit), ``opt_state`` the optimizer state.
    """
    _check_model_arrays(model)
    X = _check_x(model, X, "X", ndim=2, likelihood=True)
    n_steps = check_int_in_range(n_steps, "n_steps", 1, 1 << 31)
    batch_size = check_int_in_range(batch_size, "batch_size", 1, 1 << 31)
    learning_rate = jnp.asarray(check_positive(learning_rate, "learning_rate"), _dtype(model))
    dynamic, static = eqx.partition(model, eqx.is_array)
    dynamic = jax.tree_util.tree_map(
        lambda a: check_finite(a, "model") if eqx.is_inexact_array(a) else a, dynamic)
    res = _fit_core(key, dynamic, X, learning_rate=learning_rate, static=static,
                    batch_size=batch_size, optimizer=optimizer, n_steps=n_steps,
                    progress=bool(progress))
    return res._replace(params=eqx.combine(res.params, static))
