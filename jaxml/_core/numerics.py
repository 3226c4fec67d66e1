r"""Numerical constants and small numerically careful functions every chapter shares.

* ``HIGHEST``: the matmul precision jaxml asks for (no TF32/bfloat16 passes on accelerators).
* ``LOG_2PI`` = log 2π.
* :func:`safe_norm`: ‖x‖₂ without overflow (scaled by max|xᵢ|) and with a zero, not NaN,
  gradient at x = 0.
* the log-Cholesky parametrization of a lower-triangular factor with positive diagonal,
  L = tril(R, −1) + diag(exp(diag R)) (Pinheiro & Bates 1996), and its inverse.
* log-densities summed over the last axis: the diagonal Gaussian
  log N(x; μ, diag σ²) = −½ Σⱼ [(xⱼ − μⱼ)² / σⱼ² + log σⱼ² + log 2π], the standard normal,
  and the Bernoulli with logits ℓ, log p(x | ℓ) = Σⱼ xⱼ ℓⱼ − softplus(ℓⱼ) (exact for x ∈ [0, 1]
  as the continuous-Bernoulli kernel, without its normalizer).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

HIGHEST = lax.Precision.HIGHEST
LOG_2PI = math.log(2.0 * math.pi)


def safe_norm(x: jax.Array, axis=None, keepdims: bool = False) -> jax.Array:
    """‖x‖₂ over ``axis`` (all axes by default), overflow-safe, with gradient 0 at x = 0.

    Computed as m·‖x/m‖ with m = max|xᵢ|, so ‖x‖ ≈ 1e200 (float64) or 1e30 (float32) does not
    overflow to inf where the norm itself is representable.
    """
    x = jnp.asarray(x)
    m = jnp.max(jnp.abs(x), axis=axis, keepdims=True)
    m = lax.stop_gradient(m)
    pos = m > 0
    scaled = x / jnp.where(pos, m, 1.0)
    sq = jnp.sum(scaled * scaled, axis=axis, keepdims=True)
    nz = sq > 0
    out = jnp.where(nz, m * jnp.sqrt(jnp.where(nz, sq, 1.0)), 0.0)
    if not keepdims:
        out = jnp.squeeze(out, axis=axis) if axis is not None else out.reshape(())
    return out


def tril_from_log_cholesky(raw: jax.Array) -> jax.Array:
    """L = tril(R, −1) + diag(exp(diag R)) over the last two axes: any real R (…, d, d)
    gives a lower-triangular factor with positive diagonal."""
    d = raw.shape[-1]
    diag = jnp.exp(jnp.diagonal(raw, axis1=-2, axis2=-1))
    return jnp.tril(raw, -1) + diag[..., None, :] * jnp.eye(d, dtype=raw.dtype)


def log_cholesky_from_tril(L: jax.Array) -> jax.Array:
    """The inverse of :func:`tril_from_log_cholesky` for L with positive diagonal."""
    d = L.shape[-1]
    logd = jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1))
    return jnp.tril(L, -1) + logd[..., None, :] * jnp.eye(d, dtype=L.dtype)


def diag_gaussian_log_prob(x: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """log N(x; mean, diag exp(log_var)) summed over the last axis: (…, d) → (…)."""
    r2 = (x - mean) ** 2 * jnp.exp(-log_var)
    return -0.5 * jnp.sum(r2 + log_var + LOG_2PI, axis=-1)


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    """log N(z; 0, I_d) summed over the last axis: (…, d) → (…)."""
    return -0.5 * jnp.sum(z * z, axis=-1) - 0.5 * z.shape[-1] * LOG_2PI


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
    """Σⱼ xⱼ ℓⱼ − softplus(ℓⱼ) over the last axis (log σ(ℓ) for x = 1, log σ(−ℓ) for x = 0)."""
    return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)
