"""Random-walk Metropolis–Hastings with proposal-scale adaptation during warm-up.

From x, propose x' = x + s·ε, ε ~ N(0, I), and accept with probability

    α(x, x') = min{1, π(x') / π(x)},

π the (unnormalized) target, exp(log_density). The proposal is symmetric, so the Hastings
ratio reduces to the target ratio and π is left invariant.

Warm-up tunes s by Robbins–Monro on log s towards a target acceptance rate α*:

    log s ← log s + (i + 1)^(−0.6) · (α_i − α*),

α* = 0.234 in d > 1 dimensions (optimal for product targets as d → ∞) and 0.44 in one
dimension (Roberts, Gelman & Gilks 1997; Roberts & Rosenthal 2001). The adaptation stops
at the end of warm-up, so the sampling phase is a fixed, valid Markov chain.

Cost per step: one log-density evaluation, O(d) memory.

Reference: N. Metropolis et al., "Equation of state calculations by fast computing machines"
(1953); W. K. Hastings (1970); G. O. Roberts & J. S. Rosenthal, "Optimal scaling for various
Metropolis–Hastings algorithms", Statistical Science 16 (2001); C. Andrieu & J. Thoms,
"A tutorial on adaptive MCMC", Statistics and Computing 18 (2008).
"""

from __future__ import annotations

import dataclasses

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxml.mcmc.base import MCMCKernel, check_log_density, check_position, checked_init
from jaxml.mcmc.base import check_target_accept, concrete_positive

__all__ = ["RWState", "RWInfo", "RWParams", "RWAdaptState", "RandomWalkMH", "init", "step"]


class RWState(NamedTuple):
    """State of a random-walk chain: ``position`` (d,), ``log_density`` () at it."""

    position: jax.Array
    log_density: jax.Array


class RWInfo(NamedTuple):
    """Per-step information.

    Attributes:
        acceptance_rate: () the acceptance probability α(x, x') of this proposal.
        is_accepted: () whether the proposal was accepted.
        error: () 0 (an exact kernel has no integration error; kept for the shared info
            contract).
        value: () log density at the new state.
    """

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    error: jax.Array
    value: jax.Array


class RWParams(NamedTuple):
    """The tuned parameter: ``scale`` () the proposal standard deviation s."""

    scale: jax.Array


class RWAdaptState(NamedTuple):
    """Robbins–Monro state: ``log_scale`` ()."""

    log_scale: jax.Array


def _init(position, log_density):
    return RWState(position, jnp.asarray(log_density(position), position.dtype))


def init(position, log_density: Callable[[jax.Array], jax.Array]) -> RWState:
    """The state at ``position`` (d,): the position and ``log_density(position)``.

    Raises ValueError when the log density is not finite there.
    """
    return checked_init(_init_jit, position, log_density)


_init_jit = jax.jit(_init, static_argnames=("log_density",))


def _step(key, state: RWState, log_density, scale) -> tuple[RWState, RWInfo]:
    k_prop, k_acc = jax.random.split(key)
    x = state.position
    proposal = x + scale * jax.random.normal(k_prop, x.shape, x.dtype)
    lp = jnp.asarray(log_density(proposal), x.dtype)
    log_ratio = jnp.where(jnp.isfinite(lp), lp - state.log_density, -jnp.inf)
    alpha = jnp.exp(jnp.minimum(log_ratio, 0.0))
    accept = jnp.log(jax.random.uniform(k_acc, (), x.dtype)) < log_ratio
    new = RWState(jnp.where(accept, proposal, x), jnp.where(accept, lp, state.log_density))
    return new, RWInfo(alpha, accept, jnp.zeros((), x.dtype), new.log_density)


_step_jit = jax.jit(_step, static_argnames=("log_density",))


def step(key: jax.Array, state: RWState, log_density: Callable[[jax.Array], jax.Array], *,
         scale) -> tuple[RWState, RWInfo]:
    """One random-walk Metropolis–Hastings transition.

    Args:
        key: PRNG key.
        state: :class:`RWState` (position (d,)).
        log_density: log π up to a constant, (d,) -> ().
        scale: s > 0, the proposal standard deviation (traced).

    Returns:
        ``(state, info)``: the next :class:`RWState` and :class:`RWInfo`.
    """
    scale = concrete_positive(scale, "scale")
    return _step_jit(key, state, log_density, jnp.asarray(scale, state.position.dtype))


class RandomWalkMH(MCMCKernel):
    """Random-walk Metropolis–Hastings as a kernel for :func:`jaxml.mcmc.sample`.

    Args:
        log_density: log π up to a constant, (d,) -> ().
        scale: initial proposal standard deviation (> 0); default 2.38/√d.
        target_accept: the acceptance rate warm-up aims for; default 0.234 (d > 1) or 0.44
            (d = 1).
        adapt: tune ``scale`` during warm-up (default True).
    """

    log_density: Callable = eqx.field(static=True)
    scale: jax.Array | None = None
    target_accept: jax.Array | None = None
    adapt: bool = eqx.field(static=True, default=True)

    def check(self, position):
        check_position(position)
        check_log_density(self.log_density, position)
        scale, target_accept = self.scale, self.target_accept
        if scale is not None:
            scale = concrete_positive(scale, "scale")
        if target_accept is not None:
            target_accept = check_target_accept(target_accept)
        return dataclasses.replace(self, scale=scale, target_accept=target_accept)

    def init(self, position):
        return _init(position, self.log_density)

    def step(self, key, state, params):
        return _step(key, state, self.log_density, params.scale)

    def init_params(self, state):
        d = state.position.shape[0]
        dt = state.position.dtype
        scale = 2.38 / d ** 0.5 if self.scale is None else self.scale
        return RWParams(jnp.asarray(scale, dt))

    def _target(self, d, dt):
        if self.target_accept is not None:
            return jnp.asarray(self.target_accept, dt)
        return jnp.asarray(0.44 if d == 1 else 0.234, dt)

    def warmup_init(self, state, params, n_warmup):
        return RWAdaptState(jnp.log(params.scale))

    def warmup_update(self, adapt, i, state, info, params, n_warmup):
        if not self.adapt:
            return adapt, params
        dt = state.position.dtype
        gain = (i.astype(dt) + 1.0) ** -0.6
        target = self._target(state.position.shape[0], dt)
        log_scale = adapt.log_scale + gain * (info.acceptance_rate - target)
        return RWAdaptState(log_scale), RWParams(jnp.exp(log_scale))
