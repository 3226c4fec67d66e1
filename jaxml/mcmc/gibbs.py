r"""Gibbs samplers for the conditionally conjugate models of :mod:`jaxml.vi.cavi`.

**Normal–Gamma** (the model of ``jaxml.vi.normal_gamma_posterior``): xₙ ~ N(μ, 1/τ),
μ | τ ~ N(μ₀, 1/(λ₀τ)), τ ~ Gam(a₀, b₀) (shape, rate). The full conditionals are

    μ | τ, x ~ N((λ₀μ₀ + Σₙxₙ)/(λ₀ + N), 1/((λ₀ + N)τ)),
    τ | μ, x ~ Gam(a₀ + (N + 1)/2, b₀ + ½[Σₙ(xₙ − μ)² + λ₀(μ − μ₀)²]),

and a sweep draws τ then μ. The position is (μ, τ), shape (2,).

**Bayesian mixture of unit-variance Gaussians** (the model of ``jaxml.vi.mixture_cavi``):
μₖ ~ N(0, σ² I), cᵢ ~ Uniform{1..K}, xᵢ | cᵢ, μ ~ N(μ_{cᵢ}, I). The full conditionals are

    p(cᵢ = k | μ, x) ∝ exp(−½‖xᵢ − μₖ‖²),
    μₖ | c, x ~ N(sₖ² Σ_{i: cᵢ=k} xᵢ, sₖ² I),  sₖ² = 1/(1/σ² + nₖ),

and a sweep draws every cᵢ then every μₖ. The position is the means, (K, d) ((K,) for
one-dimensional data). The labels are exchangeable: a long chain may switch them.

Every draw is accepted (``info.acceptance_rate`` = 1). Cost per sweep: O(N) for the
Normal–Gamma model, O(n·K·d) for the mixture.

Reference: S. Geman & D. Geman (1984); A. E. Gelfand & A. F. M. Smith, "Sampling-based
approaches to calculating marginal densities", JASA 85 (1990); C. M. Bishop, PRML §2.3.6,
§10.1.3; D. M. Blei, A. Kucukelbir & J. D. McAuliffe, "Variational inference: a review for
statisticians" (2017), §3.
"""

from __future__ import annotations

import dataclasses

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from jaxml._core import (LOG_2PI, as_float_array, check_finite, check_int_in_range, check_ndim,
                         check_value)
from jaxml.mcmc.base import MCMCKernel, concrete_positive

__all__ = ["GibbsInfo", "NormalGammaState", "NormalGammaGibbs", "normal_gamma_init",
           "normal_gamma_step", "MixtureState", "MixtureGibbs", "mixture_init", "mixture_step"]


class GibbsInfo(NamedTuple):
    """Per-sweep information: ``acceptance_rate`` () 1, ``is_accepted`` () True, ``error``
    () 0 (exact conditional draws), ``value`` () the log joint density at the new state."""

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    error: jax.Array
    value: jax.Array


def _info(value):
    return GibbsInfo(jnp.ones_like(value), jnp.asarray(True), jnp.zeros_like(value), value)


# ---------------------------------------------------------------------- Normal–Gamma

class NormalGammaState(NamedTuple):
    """``position`` (2,) = (μ, τ); ``log_density`` () log p(x, μ, τ)."""

    position: jax.Array
    log_density: jax.Array


def _ng_log_joint(position, x, mu0, lambda0, a0, b0):
    mu, tau = position[0], position[1]
    n = x.shape[0]
    log_tau = jnp.log(tau)
    lik = 0.5 * n * (log_tau - LOG_2PI) - 0.5 * tau * jnp.sum((x - mu) ** 2)
    prior_mu = 0.5 * (jnp.log(lambda0) + log_tau - LOG_2PI) - 0.5 * lambda0 * tau * (mu - mu0) ** 2
    prior_tau = a0 * jnp.log(b0) - gammaln(a0) + (a0 - 1.0) * log_tau - b0 * tau
    return lik + prior_mu + prior_tau


def _ng_step(key, state, x, mu0, lambda0, a0, b0):
    k_tau, k_mu = jax.random.split(key)
    dt = x.dtype
    n = x.shape[0]
    mu = state.position[0]
    shape = a0 + 0.5 * (n + 1)
    rate = b0 + 0.5 * (jnp.sum((x - mu) ** 2) + lambda0 * (mu - mu0) ** 2)
    tau = jax.random.gamma(k_tau, shape, (), dt) / rate
    lam_n = lambda0 + n
    mean = (lambda0 * mu0 + jnp.sum(x)) / lam_n
    mu = mean + jax.random.normal(k_mu, (), dt) / jnp.sqrt(lam_n * tau)
    pos = jnp.stack([mu, tau])
    lj = _ng_log_joint(pos, x, mu0, lambda0, a0, b0)
    return NormalGammaState(pos, lj), _info(lj)


_ng_step_jit = jax.jit(_ng_step)


def _observations(x, ndim) -> jax.Array:
    x = as_float_array(x, "x", ndim=ndim)
    if x.shape[0] == 0:
        raise ValueError("x must hold at least one observation")
    return x


def _ng_data(x, mu0, lambda0, a0, b0):
    x = _observations(x, 1)
    check_ndim(mu0, "mu0", 0)
    prior = {"mu0": check_finite(mu0, "mu0"), "lambda0": lambda0, "a0": a0, "b0": b0}
    for name in ("lambda0", "a0", "b0"):
        prior[name] = concrete_positive(prior[name], name)
    return x, tuple(_number(v, x.dtype) for v in prior.values())


def _number(v, dtype):
    """A checked prior number in the data's dtype: a NumPy scalar when given as a Python or
    NumPy number (no eager JAX conversion program), a JAX array otherwise."""
    return jnp.asarray(v, dtype) if isinstance(v, jax.Array) else np.asarray(v, dtype)


def _check_ng_position(position, dtype):
    position = as_float_array(position, "position", ndim=1, dtype=dtype)
    if position.shape != (2,):
        raise ValueError(f"position must be (mu, tau) of shape (2,), got {position.shape}")
    # τ = position[1] > 0 and finite, checked on the whole vector (no eager slicing)
    return check_value(position, "position[1] (tau)",
                       lambda xp, v: ~(xp.isfinite(v[1]) & (v[1] > 0)),
                       "must be finite and positive")


def normal_gamma_init(position, x, *, mu0=0.0, lambda0=1.0, a0=1.0, b0=1.0) -> NormalGammaState:
    """The Gibbs state at ``position`` = (μ, τ) (2,), τ > 0, for data x (N,)."""
    x, prior = _ng_data(x, mu0, lambda0, a0, b0)
    position = _check_ng_position(position, x.dtype)
    return _ng_init_jit(position, x, prior)


@jax.jit
def _ng_init_jit(position, x, prior):
    return NormalGammaState(position, _ng_log_joint(position, x, *prior))


def normal_gamma_step(key: jax.Array, state: NormalGammaState, x: jax.Array, *, mu0=0.0,
                      lambda0=1.0, a0=1.0, b0=1.0) -> tuple[NormalGammaState, GibbsInfo]:
    """One Gibbs sweep (τ | μ, then μ | τ) for the Normal–Gamma model.

    Args:
        key: PRNG key.
        state: :class:`NormalGammaState`.
        x: (N,) observations.
        mu0, lambda0, a0, b0: the prior (lambda0, a0, b0 > 0; traced).

    Returns:
        ``(state, info)``: :class:`NormalGammaState`, :class:`GibbsInfo`.
    """
    x, prior = _ng_data(x, mu0, lambda0, a0, b0)
    return _ng_step_jit(key, state, x, *prior)


class NormalGammaGibbs(MCMCKernel):
    """The Normal–Gamma Gibbs sampler as a kernel for :func:`jaxml.mcmc.sample`.

    Args: x (N,) observations; mu0, lambda0, a0, b0 the prior (as
    ``jaxml.vi.normal_gamma_posterior``).
    """

    x: jax.Array
    mu0: jax.Array = 0.0
    lambda0: jax.Array = 1.0
    a0: jax.Array = 1.0
    b0: jax.Array = 1.0

    def _prior(self):
        dt = self.x.dtype
        return tuple(jnp.asarray(v, dt) for v in (self.mu0, self.lambda0, self.a0, self.b0))

    def check(self, position):
        x, prior = _ng_data(self.x, self.mu0, self.lambda0, self.a0, self.b0)
        _check_ng_position(position, x.dtype)
        return dataclasses.replace(self, x=x, **dict(zip(("mu0", "lambda0", "a0", "b0"), prior)))

    def init(self, position):
        position = jnp.asarray(position, self.x.dtype)
        return NormalGammaState(position, _ng_log_joint(position, self.x, *self._prior()))

    def step(self, key, state, params):
        return _ng_step(key, state, self.x, *self._prior())


# -------------------------------------------------------------------------- mixture

class MixtureState(NamedTuple):
    """``position`` (K, d) the means ((K,) for 1-D data); ``assignments`` (n,) int32 cᵢ;
    ``log_density`` () log p(x, c, μ)."""

    position: jax.Array
    assignments: jax.Array
    log_density: jax.Array


def _mix_log_joint(means, c, x, prior_var):
    n, d = x.shape
    k = means.shape[0]
    lp_mu = jnp.sum(-0.5 * d * (LOG_2PI + jnp.log(prior_var)) - 0.5 * jnp.sum(means ** 2, 1) / prior_var)
    lp_x = jnp.sum(-0.5 * d * LOG_2PI - 0.5 * jnp.sum((x - means[c]) ** 2, axis=1))
    return lp_mu + lp_x - n * jnp.log(jnp.asarray(k, x.dtype))


def _as_2d(x):
    return x[:, None] if x.ndim == 1 else x


def _mix_sweep(key, means, x, prior_var):
    k_c, k_mu = jax.random.split(key)
    k = means.shape[0]
    logits = x @ means.T - 0.5 * jnp.sum(means ** 2, axis=1)
    c = jax.random.categorical(k_c, logits, axis=1).astype(jnp.int32)
    onehot = jax.nn.one_hot(c, k, dtype=x.dtype)
    nk = jnp.sum(onehot, axis=0)
    s2 = 1.0 / (1.0 / prior_var + nk)
    mean = (onehot.T @ x) * s2[:, None]
    means = mean + jnp.sqrt(s2)[:, None] * jax.random.normal(k_mu, means.shape, x.dtype)
    return means, c


def _mix_step(key, state, x, prior_var):
    x2 = _as_2d(x)
    means, c = _mix_sweep(key, _as_2d(state.position), x2, prior_var)
    lj = _mix_log_joint(means, c, x2, prior_var)
    return MixtureState(means.reshape(state.position.shape), c, lj), _info(lj)


_mix_step_jit = jax.jit(_mix_step)


def _mix_data(x, prior_var):
    x = _observations(x, (1, 2))
    prior_var = concrete_positive(prior_var, "prior_var")
    return x, _number(prior_var, x.dtype)


def _check_mix_position(position, x):
    position = as_float_array(position, "position", ndim=x.ndim, dtype=x.dtype)
    if x.ndim == 2 and position.shape[1] != x.shape[1]:
        raise ValueError(f"position must have shape (K, {x.shape[1]}), got {position.shape}")
    check_int_in_range(position.shape[0], "position.shape[0] (K)", 1, x.shape[0])
    return position


def _mix_init(position, x, prior_var):
    x2 = _as_2d(x)
    m2 = _as_2d(position)
    c = jnp.argmin(jnp.sum((x2[:, None, :] - m2[None]) ** 2, axis=2), axis=1).astype(jnp.int32)
    return MixtureState(position, c, _mix_log_joint(m2, c, x2, prior_var))


def mixture_init(position, x, *, prior_var=1.0) -> MixtureState:
    """The Gibbs state at means ``position`` (K, d) (or (K,) for x (n,)); each point is
    first assigned to its nearest mean."""
    x, prior_var = _mix_data(x, prior_var)
    position = _check_mix_position(position, x)
    return _mix_init_jit(position, x, prior_var)


_mix_init_jit = jax.jit(_mix_init)


def mixture_step(key: jax.Array, state: MixtureState, x: jax.Array, *, prior_var=1.0
                 ) -> tuple[MixtureState, GibbsInfo]:
    """One Gibbs sweep (every cᵢ | μ, then every μₖ | c) for the Bayesian mixture.

    Args:
        key: PRNG key.
        state: :class:`MixtureState`.
        x: (n, d) or (n,) observations.
        prior_var: σ² > 0, the prior variance of the means (traced).

    Returns:
        ``(state, info)``: :class:`MixtureState`, :class:`GibbsInfo`.
    """
    x, prior_var = _mix_data(x, prior_var)
    return _mix_step_jit(key, state, x, prior_var)


class MixtureGibbs(MCMCKernel):
    """The Bayesian-mixture Gibbs sampler as a kernel for :func:`jaxml.mcmc.sample`.

    Args: x (n, d) or (n,) observations; prior_var σ² (as ``jaxml.vi.mixture_cavi``). The
    number of components K is the length of the starting position.
    """

    x: jax.Array
    prior_var: jax.Array = 1.0

    @property
    def position_ndim(self) -> int:
        return jnp.ndim(self.x)

    def check(self, position):
        x, prior_var = _mix_data(self.x, self.prior_var)
        _check_mix_position(position, x)
        return dataclasses.replace(self, x=x, prior_var=prior_var)

    def init(self, position):
        return _mix_init(jnp.asarray(position, self.x.dtype), self.x,
                         jnp.asarray(self.prior_var, self.x.dtype))

    def step(self, key, state, params):
        return _mix_step(key, state, self.x, jnp.asarray(self.prior_var, self.x.dtype))
