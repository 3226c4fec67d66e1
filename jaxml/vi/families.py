"""Variational families: pytrees of unconstrained parameters with a reparameterized sampler.

Each family q_λ(z) over z ∈ ℝᵈ is an ``eqx.Module`` whose array fields are *unconstrained*
parameters λ (so any optax optimizer can step them) and which offers

- ``noise(key, n)``: base draws ε that do not depend on λ;
- ``transform(eps)``: the differentiable map z = g_λ(ε);
- ``sample(key, n) = transform(noise(key, n))``: the reparameterized sampler, so
  ∇_λ E_q[f(z)] = E_ε[∇_λ f(g_λ(ε))];
- ``log_prob(z)``, ``entropy()`` (closed form), ``mean()``, ``variance()``.

Families:

- :class:`MeanFieldGaussian` — z = μ + σ ⊙ ε, ε ~ N(0, I), parameters (μ, log σ).
- :class:`FullRankGaussian` — z = μ + Lε, Σ = LLᵀ, with the Cholesky factor built from an
  unconstrained lower-triangular ``raw_scale_tril``: strict lower part as is, diagonal
  Lᵢᵢ = exp(rawᵢᵢ) > 0 (the log-Cholesky parametrization of ``jaxml._core``).
- :class:`Exponential` and :class:`Logistic` — factorized one-dimensional families sampled by
  the inverse CDF, z = F_λ⁻¹(u), u ~ U(0, 1): F⁻¹(u) = −log(1 − u)/rate and
  F⁻¹(u) = μ + s log(u/(1 − u)).

Gaussian families also give the closed-form KL to a Gaussian prior (through
:mod:`jaxml.gaussian`), used by the analytic-KL ELBO estimators. A new family subclasses
:class:`VariationalFamily` and implements its abstract methods.

Reference: D. M. Blei, A. Kucukelbir, J. D. McAuliffe, "Variational Inference: A Review for
Statisticians", JASA (2017); D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes"
(2014), §2.4 (reparameterization, Cholesky and inverse-CDF cases); J. C. Pinheiro and D. M.
Bates, "Unconstrained parametrizations for variance-covariance matrices" (1996).
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from jaxml import gaussian
from jaxml._core.checks import as_float_array, check_int_in_range, check_positive, float_dtype, is_concrete
from jaxml._core.numerics import (
    LOG_2PI,
    diag_gaussian_log_prob,
    log_cholesky_from_tril,
    tril_from_log_cholesky,
)

__all__ = [
    "VariationalFamily", "MeanFieldGaussian", "FullRankGaussian", "Exponential", "Logistic",
]

def _open_uniform(key, shape, dtype):
    """u ~ U(0, 1) strictly inside the interval, so log u and log(1 - u) are finite."""
    tiny = jnp.finfo(dtype).tiny
    return jax.random.uniform(key, shape, dtype, minval=tiny, maxval=1.0)


def _check_n(n) -> int:
    check_int_in_range(n, "n", 1, 2**31 - 1)
    return int(n)


def _check_z(z, dim: int, dtype) -> jax.Array:
    z = jnp.asarray(z, dtype=dtype)
    if z.ndim < 1 or z.shape[-1] != dim:
        raise ValueError(f"z must have shape (..., {dim}), got {z.shape}")
    return z


def _loc_log_scale(loc, log_scale) -> tuple[jax.Array, jax.Array]:
    """(d,) location and (d,) log-scale as arrays of one floating dtype and matching shape."""
    dt = float_dtype(jnp.asarray(loc), jnp.asarray(log_scale))
    loc = as_float_array(loc, "loc", ndim=1, dtype=dt)
    log_scale = as_float_array(log_scale, "log_scale", ndim=1, dtype=dt)
    if loc.shape != log_scale.shape:
        raise ValueError(f"loc and log_scale must have the same shape, got "
                         f"{loc.shape} and {log_scale.shape}")
    return loc, log_scale


class VariationalFamily(eqx.Module):
    """Interface every family implements (see the module docstring)."""

    @property
    def _first_param(self) -> jax.Array:
        # every family's first field is a (d,) parameter (its location or log-rate)
        return jax.tree_util.tree_leaves(self)[0]

    @property
    def dim(self) -> int:
        """d, the dimension of z."""
        return self._first_param.shape[-1]

    @property
    def dtype(self):
        """The floating dtype of the parameters (and of the samples)."""
        return self._first_param.dtype

    @abc.abstractmethod
    def noise(self, key: jax.Array, n: int) -> jax.Array:
        """(n, d) base draws, independent of the parameters."""

    @abc.abstractmethod
    def transform(self, eps: jax.Array) -> jax.Array:
        """(..., d) -> (..., d): the reparameterization z = g_λ(ε)."""

    @abc.abstractmethod
    def log_prob(self, z: jax.Array) -> jax.Array:
        """(..., d) -> (...): log q(z)."""

    @abc.abstractmethod
    def entropy(self) -> jax.Array:
        """() closed-form entropy −E_q[log q(z)]."""

    @abc.abstractmethod
    def mean(self) -> jax.Array:
        """(d,) E_q[z]."""

    @abc.abstractmethod
    def variance(self) -> jax.Array:
        """(d,) Var_q[z_j] (the diagonal of the covariance)."""

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """(n, d) reparameterized draws z = g_λ(ε): gradients flow to the parameters."""
        return self.transform(self.noise(key, _check_n(n)))


class _LocationScale(VariationalFamily):
    """Families reparameterized from standard normal draws ε ~ N(0, I)."""

    def noise(self, key, n):
        return jax.random.normal(key, (n, self.dim), self.dtype)


class _InverseCDF(VariationalFamily):
    """Families sampled by inverse CDF from u ~ U(0, 1) (open interval)."""

    def noise(self, key, n):
        return _open_uniform(key, (n, self.dim), self.dtype)


# --------------------------------------------------------------------------- Gaussians

class MeanFieldGaussian(_LocationScale):
    """Fully factorized Gaussian q(z) = Πⱼ N(zⱼ | μⱼ, σⱼ²).

    Attributes:
        loc: (d,) means μ.
        log_scale: (d,) log σ (unconstrained).

    Sampler z = μ + σ ⊙ ε; entropy Σⱼ log σⱼ + (d/2)(1 + log 2π).
    """

    loc: jax.Array
    log_scale: jax.Array

    def __init__(self, loc, log_scale):
        self.loc, self.log_scale = _loc_log_scale(loc, log_scale)

    @classmethod
    def init(cls, dim: int, *, scale=1.0, dtype=None) -> "MeanFieldGaussian":
        """N(0, scale² I) in ``dim`` dimensions (``dtype`` defaults to the default float)."""
        check_int_in_range(dim, "dim", 1, 2**31 - 1)
        dtype = dtype or jnp.result_type(float)
        check_positive(scale, "scale")
        return cls(jnp.zeros(dim, dtype), jnp.full(dim, jnp.log(scale), dtype))

    @classmethod
    def from_mean_std(cls, mean, std) -> "MeanFieldGaussian":
        """From (d,) means and (d,) positive standard deviations."""
        check_positive(std, "std")
        dt = float_dtype(jnp.asarray(mean), jnp.asarray(std))
        return cls(mean, jnp.log(jnp.asarray(std, dt)))

    @property
    def scale(self) -> jax.Array:
        """(d,) σ."""
        return jnp.exp(self.log_scale)

    def transform(self, eps):
        return self.loc + self.scale * eps

    def log_prob(self, z):
        z = _check_z(z, self.dim, self.dtype)
        return diag_gaussian_log_prob(z, self.loc, 2.0 * self.log_scale)

    def entropy(self):
        return jnp.sum(self.log_scale) + 0.5 * self.dim * (1.0 + LOG_2PI)

    def mean(self):
        return self.loc

    def variance(self):
        return jnp.exp(2.0 * self.log_scale)

    def covariance(self) -> jax.Array:
        """(d, d) diag(σ²)."""
        return jnp.diag(self.variance())

    def kl_to_gaussian(self, prior_mean=None, prior_cov=None) -> jax.Array:
        """KL(q ‖ N(prior_mean, prior_cov)) in closed form; N(0, I) when both are None."""
        if prior_mean is None and prior_cov is None:
            return gaussian.kl_diag_standard_normal(self.loc, 2.0 * self.log_scale)
        return gaussian.kl_divergence(self.loc, self.covariance(),
                                      jnp.asarray(prior_mean, self.dtype),
                                      jnp.asarray(prior_cov, self.dtype))


class FullRankGaussian(_LocationScale):
    """Full-covariance Gaussian q(z) = N(μ, LLᵀ).

    Attributes:
        loc: (d,) mean μ.
        raw_scale_tril: (d, d) unconstrained; its strict lower triangle is that of L, its
            diagonal is log Lᵢᵢ, its upper triangle is ignored.

    Sampler z = μ + Lε; entropy Σᵢ log Lᵢᵢ + (d/2)(1 + log 2π).
    """

    loc: jax.Array
    raw_scale_tril: jax.Array

    def __init__(self, loc, raw_scale_tril):
        dt = float_dtype(jnp.asarray(loc), jnp.asarray(raw_scale_tril))
        self.loc = as_float_array(loc, "loc", ndim=1, dtype=dt)
        self.raw_scale_tril = as_float_array(raw_scale_tril, "raw_scale_tril", ndim=2, dtype=dt)
        d = self.loc.shape[0]
        if self.raw_scale_tril.shape != (d, d):
            raise ValueError(f"raw_scale_tril must have shape ({d}, {d}) to match loc, got "
                             f"{self.raw_scale_tril.shape}")

    @classmethod
    def init(cls, dim: int, *, scale=1.0, dtype=None) -> "FullRankGaussian":
        """N(0, scale² I) in ``dim`` dimensions."""
        check_int_in_range(dim, "dim", 1, 2**31 - 1)
        dtype = dtype or jnp.result_type(float)
        check_positive(scale, "scale")
        return cls(jnp.zeros(dim, dtype), jnp.diag(jnp.full(dim, jnp.log(scale), dtype)))

    @classmethod
    def from_loc_scale_tril(cls, loc, scale_tril) -> "FullRankGaussian":
        """From a mean (d,) and a lower Cholesky factor (d, d) with a positive diagonal."""
        L = jnp.tril(as_float_array(scale_tril, "scale_tril", ndim=2))
        check_positive(jnp.diagonal(L), "diagonal of scale_tril")
        return cls(loc, log_cholesky_from_tril(L))

    @classmethod
    def from_mean_cov(cls, mean, cov) -> "FullRankGaussian":
        """From a mean (d,) and a positive-definite covariance (d, d)."""
        cov = as_float_array(cov, "cov", ndim=2)
        L = jnp.linalg.cholesky(0.5 * (cov + cov.T))
        if is_concrete(L) and not bool(jnp.all(jnp.isfinite(L))):
            raise ValueError("cov must be symmetric positive definite")
        return cls.from_loc_scale_tril(mean, L)

    @classmethod
    def from_mean_field(cls, q: MeanFieldGaussian) -> "FullRankGaussian":
        """The same distribution as a mean-field Gaussian, as a full-rank one."""
        return cls(q.loc, jnp.diag(q.log_scale))

    @property
    def scale_tril(self) -> jax.Array:
        """(d, d) lower Cholesky factor L with a positive diagonal."""
        return tril_from_log_cholesky(self.raw_scale_tril)

    def transform(self, eps):
        return self.loc + eps @ self.scale_tril.T

    def log_prob(self, z):
        z = _check_z(z, self.dim, self.dtype)
        L = self.scale_tril
        batch = z.shape[:-1]
        r = (z - self.loc).reshape(-1, self.dim)
        w = solve_triangular(L, r.T, lower=True)                    # (d, m)
        half_logdet = jnp.sum(jnp.diagonal(self.raw_scale_tril))
        lp = -0.5 * jnp.sum(w * w, axis=0) - half_logdet - 0.5 * self.dim * LOG_2PI
        return lp.reshape(batch)

    def entropy(self):
        return jnp.sum(jnp.diagonal(self.raw_scale_tril)) + 0.5 * self.dim * (1.0 + LOG_2PI)

    def mean(self):
        return self.loc

    def covariance(self) -> jax.Array:
        """(d, d) Σ = L Lᵀ."""
        L = self.scale_tril
        return L @ L.T

    def variance(self):
        return jnp.sum(self.scale_tril ** 2, axis=1)

    def kl_to_gaussian(self, prior_mean=None, prior_cov=None) -> jax.Array:
        """KL(q ‖ N(prior_mean, prior_cov)) in closed form; N(0, I) when both are None."""
        if prior_mean is None and prior_cov is None:
            prior_mean = jnp.zeros(self.dim, self.dtype)
            prior_cov = jnp.eye(self.dim, dtype=self.dtype)
        return gaussian.kl_divergence(self.loc, self.covariance(),
                                      jnp.asarray(prior_mean, self.dtype),
                                      jnp.asarray(prior_cov, self.dtype))


# --------------------------------------------------------------- inverse-CDF families

class Exponential(_InverseCDF):
    """Factorized exponential q(z) = Πⱼ λⱼ exp(−λⱼ zⱼ), zⱼ ≥ 0.

    Attributes:
        log_rate: (d,) log λ (unconstrained).

    Inverse-CDF sampler z = −log(1 − u)/λ, u ~ U(0, 1); mean 1/λ, variance 1/λ², entropy
    Σⱼ (1 − log λⱼ). ``log_prob`` is −∞ for zⱼ < 0.
    """

    log_rate: jax.Array

    def __init__(self, log_rate):
        self.log_rate = as_float_array(log_rate, "log_rate", ndim=1)

    @classmethod
    def from_rate(cls, rate) -> "Exponential":
        """From (d,) positive rates."""
        check_positive(rate, "rate")
        return cls(jnp.log(as_float_array(rate, "rate", ndim=1)))

    @property
    def rate(self) -> jax.Array:
        return jnp.exp(self.log_rate)

    def transform(self, u):
        return -jnp.log1p(-u) * jnp.exp(-self.log_rate)

    def log_prob(self, z):
        z = _check_z(z, self.dim, self.dtype)
        lp = self.log_rate - self.rate * z
        return jnp.sum(jnp.where(z >= 0, lp, -jnp.inf), axis=-1)

    def entropy(self):
        return jnp.sum(1.0 - self.log_rate)

    def mean(self):
        return jnp.exp(-self.log_rate)

    def variance(self):
        return jnp.exp(-2.0 * self.log_rate)


class Logistic(_InverseCDF):
    """Factorized logistic distribution with location μ and scale s:

        log q(z) = Σⱼ −xⱼ − log sⱼ − 2 log(1 + e^(−xⱼ)),  xⱼ = (zⱼ − μⱼ)/sⱼ.

    Attributes:
        loc: (d,) μ.
        log_scale: (d,) log s (unconstrained).

    Inverse-CDF sampler z = μ + s log(u/(1 − u)); mean μ, variance s²π²/3, entropy
    Σⱼ (log sⱼ + 2).
    """

    loc: jax.Array
    log_scale: jax.Array

    def __init__(self, loc, log_scale):
        self.loc, self.log_scale = _loc_log_scale(loc, log_scale)

    @property
    def scale(self) -> jax.Array:
        return jnp.exp(self.log_scale)

    def transform(self, u):
        return self.loc + self.scale * (jnp.log(u) - jnp.log1p(-u))

    def log_prob(self, z):
        z = _check_z(z, self.dim, self.dtype)
        x = (z - self.loc) * jnp.exp(-self.log_scale)
        return jnp.sum(-x - self.log_scale - 2.0 * jax.nn.softplus(-x), axis=-1)

    def entropy(self):
        return jnp.sum(self.log_scale + 2.0)

    def mean(self):
        return self.loc

    def variance(self):
        return jnp.exp(2.0 * self.log_scale) * (math.pi ** 2 / 3.0)
