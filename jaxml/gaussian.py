"""The multivariate Gaussian: maximum-likelihood fit, density, sampling, entropy, KL.

For x ∈ ℝᵈ,

    log N(x | μ, Σ) = −½ (x − μ)ᵀ Σ⁻¹ (x − μ) − ½ log det Σ − (d/2) log 2π.

Everything goes through the lower Cholesky factor Σ = L Lᵀ: the Mahalanobis term is
‖L⁻¹(x − μ)‖² (a triangular solve, never an inverse) and log det Σ = 2 Σᵢ log Lᵢᵢ.

The maximum-likelihood estimate from rows x₁..xₙ is the sample mean and the *biased*
(1/n) sample covariance (its scatter summed over row blocks by ``_core.blocked_gram``).
The KL divergence between two Gaussians and the entropy have closed forms (below);
``kl_diag_standard_normal`` is the VAE's KL term.

Reference: C. M. Bishop, *Pattern Recognition and Machine Learning* (2006), §2.3 and
§2.3.4 (MLE), eq. (1.104) and exercise 2.15 (entropy); K. P. Murphy, *Machine Learning: a
Probabilistic Perspective* (2012), §4.1 and §2.8.2 (KL of Gaussians); D. P. Kingma and M.
Welling, "Auto-Encoding Variational Bayes" (2014), appendix B.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

import numpy as np

from jax.scipy.special import log_ndtr, ndtr

from jaxml._core import (LOG_2PI, as_float_array, blocked_gram, check_int_in_range, check_matrix,
                         check_positive, check_value, checks_on_outputs, float_dtype,
                         host_function, logdet_from_cholesky, safe_cholesky, whiten)
from jaxml._core.fold import Chunks, chunk_moments, first_chunk

__all__ = ["GaussianMLE", "mle", "mle_streamed", "log_pdf", "sample", "entropy", "kl_divergence",
           "kl_diag_standard_normal", "interval_probability", "log_interval_probability"]


class GaussianMLE(NamedTuple):
    """The maximum-likelihood Gaussian of a sample (unpacks as ``mean, cov = mle(X)``).

    Attributes:
        mean: (d,) the sample mean μ̂.
        cov: (d, d) the biased (1/n) sample covariance Σ̂.
    """

    mean: jax.Array
    cov: jax.Array


# ----------------------------------------------------------------------------- checks

def _common_dtype(**named):
    """The floating dtype shared by the named array-likes (lists and scalars allowed)."""
    arrays = []
    for name, value in named.items():
        try:
            arrays.append(jnp.asarray(value))
        except TypeError as e:
            raise TypeError(f"{name} must be array-like, got {type(value).__name__}") from e
    return float_dtype(*arrays)


def _not_positive_definite(xp, v):
    """True when the symmetrized ``v`` has no Cholesky factor (written for NumPy and jnp)."""
    sym = 0.5 * (v + xp.swapaxes(v, -1, -2))
    if xp is np:
        try:
            np.linalg.cholesky(sym)
        except np.linalg.LinAlgError:
            return np.asarray(True)
        return np.asarray(False)
    return ~jnp.all(jnp.isfinite(jnp.linalg.cholesky(sym)))


def _check_positive_definite(cov, name):
    """``cov`` unchanged; not symmetric positive definite is an error naming ``name``:
    now when concrete, at run time (an extra Cholesky) when traced."""
    return check_value(cov, name, _not_positive_definite,
                       "must be symmetric positive definite (its Cholesky factorization failed)")


def _check_mean_cov(mean, cov, dtype, mean_name="mean", cov_name="cov"):
    mean = as_float_array(mean, mean_name, ndim=1, dtype=dtype)
    cov = as_float_array(cov, cov_name, ndim=2, dtype=dtype)
    d = mean.shape[0]
    if cov.shape != (d, d):
        raise ValueError(f"{cov_name} must have shape ({d}, {d}) to match {mean_name}, "
                         f"got {cov.shape}")
    return mean, _check_positive_definite(cov, cov_name)


def _check_cov(cov, name="cov", dtype=None):
    cov = as_float_array(cov, name, ndim=2, dtype=dtype)
    if cov.shape[0] != cov.shape[1]:
        raise ValueError(f"{name} must be square, got shape {cov.shape}")
    return _check_positive_definite(cov, name)


# ----------------------------------------------------------------------------- MLE

@checks_on_outputs
def mle(X) -> GaussianMLE:
    """Maximum-likelihood mean and covariance of the rows of ``X``.

        μ̂ = (1/n) Σᵢ xᵢ,    Σ̂ = (1/n) Σᵢ (xᵢ − μ̂)(xᵢ − μ̂)ᵀ

    (the biased 1/n estimate, ``np.cov(X.T, bias=True)``).

    Args:
        X: (n, d) data, one observation per row.

    Returns:
        :class:`GaussianMLE` ``(mean, cov)`` with shapes (d,) and (d, d).
    """
    X = check_matrix(X, "X")
    return _mle(X)


@jax.jit
def _mle(X):
    mean = jnp.mean(X, axis=0)
    return GaussianMLE(mean, blocked_gram(X, center=mean) / X.shape[0])


@host_function
def mle_streamed(X) -> GaussianMLE:
    """:func:`mle` over rows streamed from the host in chunks.

    Two passes of the ``_core`` chunk fold (device memory: one chunk and the (d, d)
    scatter): μ̂ = Σ xᵢ / n, then Σ̂ = Σ (xᵢ − μ̂)(xᵢ − μ̂)ᵀ / n from the centred rows
    (no cancellation). Equals :func:`mle` on the concatenated rows to rounding. A host
    function (a Python loop over host data): no ``jit``/``vmap``/``grad``.

    Args:
        X: the rows, as :func:`jaxml.data.chunks` of (m, d) arrays (or anything it accepts:
            a list of arrays, a memory-mapped ``.npy``, a callable returning an iterable).

    Returns:
        :class:`GaussianMLE` ``(mean, cov)`` with shapes (d,) and (d, d).
    """
    source = X if isinstance(X, Chunks) else Chunks(X)
    check_matrix(first_chunk(source), "X (first chunk)")
    n, mean, S = chunk_moments(source)
    if not bool(jnp.all(jnp.isfinite(S))):
        raise ValueError("X must be finite (some chunk holds NaN or inf)")
    return GaussianMLE(mean, S / n)


# ----------------------------------------------------------------------------- density

@jax.jit
def _log_pdf(x: jax.Array, mean: jax.Array, cov: jax.Array) -> jax.Array:
    return _log_pdf_chol(x, mean, safe_cholesky(cov))


def _log_pdf_chol(x: jax.Array, mean: jax.Array, L: jax.Array) -> jax.Array:
    """log N(x | mean, L Lᵀ) for x (..., d), given the lower factor L (d, d)."""
    d = mean.shape[-1]
    diff = (x - mean).reshape(-1, d)                      # (m, d)
    z = whiten(L, diff.T)                                  # (d, m)
    maha = jnp.sum(z * z, axis=0).reshape(x.shape[:-1])    # (...)
    return -0.5 * (maha + logdet_from_cholesky(L) + d * LOG_2PI)


def log_pdf(x, mean, cov) -> jax.Array:
    """Log density of N(μ, Σ) at ``x``, batched over leading axes.

        log N(x | μ, Σ) = −½ (‖L⁻¹(x − μ)‖² + 2 Σᵢ log Lᵢᵢ + d log 2π),   Σ = LLᵀ.

    Args:
        x: (..., d) points (a single point (d,) gives a scalar).
        mean: (d,) mean.
        cov: (d, d) symmetric positive-definite covariance. A singular or indefinite
            ``cov`` is a ``ValueError`` naming it (a run-time error when traced; no jitter
            is added silently: regularize it yourself).

    Returns:
        (...) log densities, one per point.
    """
    dtype = _common_dtype(x=x, mean=mean, cov=cov)
    mean, cov = _check_mean_cov(mean, cov, dtype)
    x = as_float_array(x, "x", dtype=dtype)
    if x.ndim < 1 or x.shape[-1] != mean.shape[0]:
        raise ValueError(f"x must have shape (..., {mean.shape[0]}) to match mean, got {x.shape}")
    return _log_pdf(x, mean, cov)


def sample(key, mean, cov, n: int) -> jax.Array:
    """``n`` draws from N(μ, Σ) by the reparameterization x = μ + Lε, ε ~ N(0, I), Σ = LLᵀ.

    Args:
        key: a ``jax.random`` key.
        mean: (d,) mean.
        cov: (d, d) positive-definite covariance.
        n: static number of draws.

    Returns:
        (n, d) samples, in the dtype of ``mean``/``cov``.
    """
    check_int_in_range(n, "n", 0, 2**31 - 1)
    dtype = _common_dtype(mean=mean, cov=cov)
    mean, cov = _check_mean_cov(mean, cov, dtype)
    return _sample(key, mean, cov, n)


@partial(jax.jit, static_argnames="n")
def _sample(key, mean, cov, n):
    eps = jax.random.normal(key, (n, mean.shape[0]), dtype=mean.dtype)
    return mean + eps @ safe_cholesky(cov).T


# ----------------------------------------------------------------------------- entropy, KL

def entropy(cov) -> jax.Array:
    """Differential entropy of N(μ, Σ) (independent of the mean).

        H = (d/2)(1 + log 2π) + ½ log det Σ.

    Args:
        cov: (d, d) positive-definite covariance.

    Returns:
        () entropy in nats.
    """
    return _entropy(_check_cov(cov))


@jax.jit
def _entropy(cov):
    return 0.5 * cov.shape[0] * (1.0 + LOG_2PI) + 0.5 * logdet_from_cholesky(safe_cholesky(cov))


def kl_divergence(mean1, cov1, mean2, cov2) -> jax.Array:
    """Closed-form KL(N(μ₁, Σ₁) ‖ N(μ₂, Σ₂)).

        ½ [tr(Σ₂⁻¹Σ₁) + (μ₂ − μ₁)ᵀ Σ₂⁻¹ (μ₂ − μ₁) − d + log det Σ₂ − log det Σ₁].

    With Σ₂ = L₂L₂ᵀ, the trace is ‖L₂⁻¹L₁‖²_F and the quadratic term ‖L₂⁻¹(μ₂ − μ₁)‖².

    Args:
        mean1, cov1: (d,), (d, d) the first Gaussian (the one the expectation is under).
        mean2, cov2: (d,), (d, d) the second.

    Returns:
        () KL divergence in nats (>= 0).
    """
    dtype = _common_dtype(mean1=mean1, cov1=cov1, mean2=mean2, cov2=cov2)
    mean1, cov1 = _check_mean_cov(mean1, cov1, dtype, "mean1", "cov1")
    mean2, cov2 = _check_mean_cov(mean2, cov2, dtype, "mean2", "cov2")
    if mean1.shape != mean2.shape:
        raise ValueError(f"mean1 and mean2 must have the same shape, got {mean1.shape} and "
                         f"{mean2.shape}")
    return _kl(mean1, cov1, mean2, cov2)


@jax.jit
def _kl(mean1, cov1, mean2, cov2):
    d = mean1.shape[0]
    L1, L2 = safe_cholesky(cov1), safe_cholesky(cov2)
    M = whiten(L2, L1)
    z = whiten(L2, mean2 - mean1)
    return 0.5 * (jnp.sum(M * M) + jnp.sum(z * z) - d
                  + logdet_from_cholesky(L2) - logdet_from_cholesky(L1))


def kl_diag_standard_normal(mean, log_var) -> jax.Array:
    """KL(N(μ, diag σ²) ‖ N(0, I)), the VAE's regularizer, summed over the last axis:

        −½ Σⱼ (1 + log σⱼ² − μⱼ² − σⱼ²).

    Args:
        mean: (..., d) means.
        log_var: (..., d) log variances log σ² (same shape as ``mean``).

    Returns:
        (...) one KL per leading index.
    """
    dtype = _common_dtype(mean=mean, log_var=log_var)
    mean = as_float_array(mean, "mean", dtype=dtype)
    log_var = as_float_array(log_var, "log_var", dtype=dtype)
    if mean.shape != log_var.shape:
        raise ValueError(f"mean and log_var must have the same shape, got {mean.shape} and "
                         f"{log_var.shape}")
    if mean.ndim < 1:
        raise ValueError("mean and log_var must have at least one dimension (..., d)")
    return _kl_diag_standard_normal(mean, log_var)


@jax.jit
def _kl_diag_standard_normal(mean, log_var):
    return -0.5 * jnp.sum(1.0 + log_var - mean**2 - jnp.exp(log_var), axis=-1)


# ----------------------------------------------------------------------------- intervals

def _check_interval(a, b, mean, std):
    dtype = _common_dtype(a=a, b=b, mean=mean, std=std)
    a = as_float_array(a, "a", dtype=dtype, finite=False)     # ±inf: half-lines allowed
    b = as_float_array(b, "b", dtype=dtype, finite=False)
    mean = as_float_array(mean, "mean", dtype=dtype)
    std = check_positive(as_float_array(std, "std", dtype=dtype, finite=False), "std")
    try:
        a, b, mean, std = jnp.broadcast_arrays(a, b, mean, std)
    except ValueError as e:
        raise ValueError(f"a, b, mean and std must broadcast together, got shapes "
                         f"{a.shape}, {b.shape}, {mean.shape}, {std.shape}") from e
    a = check_value(a, "a", lambda xp, v: xp.isnan(v), "contains NaN")
    pair = check_value(jnp.stack([a, b]), "b", lambda xp, v: ~(v[1] >= v[0]),
                       "must be ≥ a (the interval [a, b]) and not NaN")
    return pair[0], pair[1], mean, std


def _log1mexp(x):
    """log(1 − eˣ) for x ≤ 0, accurate on both sides of −log 2 (Mächler 2012)."""
    return jnp.where(x > -0.6931471805599453, jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


@jax.jit
def _interval_probability(a, b, mean, std):
    alpha, beta = (a - mean) / std, (b - mean) / std
    upper = alpha > 0                      # both ends above the mean: use the upper tail
    return jnp.where(upper, ndtr(-alpha) - ndtr(-beta), ndtr(beta) - ndtr(alpha))


@jax.jit
def _log_interval_probability(a, b, mean, std):
    alpha, beta = (a - mean) / std, (b - mean) / std
    upper = alpha > 0
    hi = jnp.where(upper, log_ndtr(-alpha), log_ndtr(beta))     # log of the larger Φ
    lo = jnp.where(upper, log_ndtr(-beta), log_ndtr(alpha))
    return hi + _log1mexp(jnp.minimum(lo - hi, 0.0))


def interval_probability(a, b, *, mean=0.0, std=1.0) -> jax.Array:
    """P(a ≤ x ≤ b) for x ~ N(mean, std²), without cancellation in the tails.

        P = Φ(β) − Φ(α),   α = (a − μ)/σ,  β = (b − μ)/σ,

    evaluated as Φ(−α) − Φ(−β) when α > 0 (both ends in the upper tail), so that an
    interval such as [8, 9] keeps its relative accuracy (Φ(9) − Φ(8) would cancel to 0 or
    to a rounding error of 1). In the far tails the probability underflows; use
    :func:`log_interval_probability` there. A very narrow interval (b − a ≪ σ) is still a
    difference of two close CDF values: its relative accuracy is about ε·Φ/P.

    Args:
        a: (...) lower ends (−inf allowed), broadcast with the others.
        b: (...) upper ends ≥ a (+inf allowed).
        mean: (...) μ, finite (may be traced).
        std: (...) σ > 0 (may be traced).

    Returns:
        (...) probabilities in [0, 1].

    Raises:
        ValueError: ``b < a`` (naming ``b``), NaN ends, ``std ≤ 0``, non-finite ``mean``.

    Reference: W. J. Cody, "Rational Chebyshev approximations for the error function",
    Math. Comp. 23 (1969) (the Φ of ``jax.scipy.special.ndtr``).
    """
    return _interval_probability(*_check_interval(a, b, mean, std))


def log_interval_probability(a, b, *, mean=0.0, std=1.0) -> jax.Array:
    """log P(a ≤ x ≤ b) for x ~ N(mean, std²), accurate in the far tails.

        log P = log Φ(β) + log(1 − exp(log Φ(α) − log Φ(β)))

    with log Φ from ``jax.scipy.special.log_ndtr`` (accurate to β ≈ −10¹⁵⁴) and
    log(1 − eˣ) evaluated stably (``expm1``/``log1p`` on either side of −log 2); when
    α > 0 the mirrored form log Φ(−α) + log(1 − exp(log Φ(−β) − log Φ(−α))) is used.
    An interval [−40, −39] (P ≈ 1e−333, below the smallest float64) gets its logarithm
    to full precision. ``a == b`` gives −inf.

    Args:
        a, b, mean, std: (...) as in :func:`interval_probability` (broadcast together).

    Returns:
        (...) log probabilities (≤ 0).

    Raises:
        ValueError: as :func:`interval_probability`.

    Reference: M. Mächler, "Accurately computing log(1 − exp(−|a|))", Rmpfr vignette
    (2012).
    """
    return _log_interval_probability(*_check_interval(a, b, mean, std))
