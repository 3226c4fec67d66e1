r"""Hamiltonian Monte Carlo: leapfrog integration, dual-averaging step size, diagonal mass
matrix adapted over Stan's warm-up windows.

With potential U(q) = −log π(q) and kinetic energy K(p) = ½ pᵀ M⁻¹ p (M diagonal), one
transition draws p ~ N(0, M), runs L leapfrog steps of size ε,

    p ← p + ε/2 · ∇log π(q),   q ← q + ε · M⁻¹ p,   p ← p + ε/2 · ∇log π(q),

and accepts the end point with probability min{1, exp(H(q, p) − H(q', p'))},
H = U + K. The leapfrog map is volume preserving and reversible, so π is left invariant.
A transition whose energy error H(q', p') − H(q, p) exceeds 1000 (or is not finite) is
**divergent**: it is rejected and flagged in ``info.is_divergent`` (counted by
:func:`jaxml.mcmc.sample`, never dropped).

Warm-up (Hoffman & Gelman 2014, Alg. 5; Stan's windows):

- step size by dual averaging towards a target acceptance δ (default 0.8):
  h̄ ← (1 − 1/(t + t₀)) h̄ + (δ − α)/(t + t₀),  log ε ← μ − √t/γ · h̄,
  log ε̄ ← t^(−κ) log ε + (1 − t^(−κ)) log ε̄, with μ = log 10ε₀, γ = 0.05, t₀ = 10,
  κ = 0.75; sampling uses ε̄.
- M⁻¹ = the regularized sample variance of the positions in each slow window
  (75-step initial buffer, windows of 25, 50, 100, … steps, 50-step final buffer),
  (n/(n + 5))·var + 10⁻³·5/(n + 5); dual averaging restarts after each window.

Cost per step: L + 1 gradient evaluations, O(d) memory.

Reference: S. Duane et al., "Hybrid Monte Carlo" (1987); R. M. Neal, "MCMC using Hamiltonian
dynamics", Handbook of MCMC (2011); M. D. Hoffman & A. Gelman, "The No-U-Turn sampler",
JMLR 15 (2014); Stan Reference Manual, "HMC algorithm parameters".
"""

from __future__ import annotations

import dataclasses

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxml._core import check_in_range, check_int_in_range
from jaxml.mcmc.base import (MCMCKernel, check_log_density, check_position, check_target_accept,
                              checked_init, concrete_positive)

__all__ = ["HMCState", "HMCInfo", "HMCParams", "HMCAdaptState", "HMC", "init", "step",
           "leapfrog", "warmup_windows"]

DIVERGENCE_THRESHOLD = 1000.0


class HMCState(NamedTuple):
    """State of an HMC chain: ``position`` (d,), ``log_density`` (), ``grad`` (d,) the
    gradient of log π at the position."""

    position: jax.Array
    log_density: jax.Array
    grad: jax.Array


class HMCInfo(NamedTuple):
    """Per-step information.

    Attributes:
        acceptance_rate: () min{1, exp(−ΔH)} (0 for a divergent transition).
        is_accepted: () whether the end point was accepted.
        is_divergent: () ΔH > 1000 or not finite.
        energy: () H at the new state.
        error: () |ΔH|, the leapfrog energy error of this transition (inf if divergent).
        value: () log density at the new state.
    """

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    is_divergent: jax.Array
    energy: jax.Array
    error: jax.Array
    value: jax.Array


class HMCParams(NamedTuple):
    """The tuned parameters: ``step_size`` () ε, ``inverse_mass_matrix`` (d,) diag M⁻¹."""

    step_size: jax.Array
    inverse_mass_matrix: jax.Array


class HMCAdaptState(NamedTuple):
    """Warm-up state: dual averaging (``log_step``, ``log_step_bar``, ``h_bar``, ``mu``,
    ``t``) and Welford moments of the window (``count``, ``mean`` (d,), ``m2`` (d,))."""

    log_step: jax.Array
    log_step_bar: jax.Array
    h_bar: jax.Array
    mu: jax.Array
    t: jax.Array
    count: jax.Array
    mean: jax.Array
    m2: jax.Array


def _value_and_grad(log_density, q):
    lp, g = jax.value_and_grad(lambda z: jnp.asarray(log_density(z), z.dtype))(q)
    return lp, g


def _init(position, log_density):
    lp, g = _value_and_grad(log_density, position)
    return HMCState(position, lp, g)


def init(position, log_density: Callable[[jax.Array], jax.Array]) -> HMCState:
    """The state at ``position`` (d,): position, log density and its gradient.

    Raises ValueError when the log density is not finite there.
    """
    return checked_init(_init_jit, position, log_density)


_init_jit = jax.jit(_init, static_argnames=("log_density",))


def leapfrog(state: HMCState, momentum: jax.Array, log_density, step_size,
             inverse_mass_matrix, n_steps: int) -> tuple[HMCState, jax.Array]:
    """``n_steps`` leapfrog steps of size ε from (q, p); returns the end state and momentum.

    Args: state (position (d,)), momentum (d,), log_density, step_size (), inverse_mass_matrix
    (d,), n_steps (static int).
    """
    n_steps = check_int_in_range(n_steps, "n_steps", 0, 2**31 - 1)
    return _leapfrog_jit(state, momentum, log_density, step_size, inverse_mass_matrix,
                         int(n_steps))


def _leapfrog(state, momentum, log_density, step_size, inverse_mass_matrix, n_steps):
    def one(_, carry):
        s, p = carry
        p = p + 0.5 * step_size * s.grad
        q = s.position + step_size * inverse_mass_matrix * p
        lp, g = _value_and_grad(log_density, q)
        p = p + 0.5 * step_size * g
        return HMCState(q, lp, g), p

    return lax.fori_loop(0, n_steps, one, (state, momentum))


_leapfrog_jit = jax.jit(_leapfrog, static_argnames=("log_density", "n_steps"))


def _step(key, state, log_density, step_size, inverse_mass_matrix, n_steps, jitter):
    k_mom, k_acc, k_jit = jax.random.split(key, 3)
    x = state.position
    dt = x.dtype
    step_size = step_size * (1.0 + jitter * jax.random.uniform(k_jit, (), dt, -1.0, 1.0))
    p0 = jax.random.normal(k_mom, x.shape, dt) / jnp.sqrt(inverse_mass_matrix)
    h0 = -state.log_density + 0.5 * jnp.sum(inverse_mass_matrix * p0 ** 2)
    end, p1 = _leapfrog(state, p0, log_density, step_size, inverse_mass_matrix, n_steps)
    h1 = -end.log_density + 0.5 * jnp.sum(inverse_mass_matrix * p1 ** 2)
    delta = h1 - h0
    finite = jnp.isfinite(delta) & jnp.all(jnp.isfinite(end.position)) & jnp.all(jnp.isfinite(end.grad))
    divergent = ~finite | (delta > DIVERGENCE_THRESHOLD)
    delta = jnp.where(finite, delta, jnp.inf)
    alpha = jnp.where(divergent, 0.0, jnp.exp(jnp.minimum(-delta, 0.0))).astype(dt)
    accept = (jax.random.uniform(k_acc, (), dt) < alpha) & ~divergent
    new = jax.tree_util.tree_map(lambda a, b: jnp.where(accept, a, b), end, state)
    energy = jnp.where(accept, h1, h0)
    info = HMCInfo(alpha, accept, divergent, energy, jnp.abs(delta), new.log_density)
    return new, info


_step_jit = jax.jit(_step, static_argnames=("log_density", "n_steps"))


def step(key: jax.Array, state: HMCState, log_density: Callable[[jax.Array], jax.Array], *,
         step_size, inverse_mass_matrix=None, n_steps: int = 16, jitter=0.0
         ) -> tuple[HMCState, HMCInfo]:
    """One HMC transition (momentum refresh, ``n_steps`` leapfrog steps, Metropolis test).

    Args:
        key: PRNG key.
        state: :class:`HMCState` (position (d,)).
        log_density: log π up to a constant, (d,) -> (), differentiable.
        step_size: ε > 0 (traced).
        inverse_mass_matrix: (d,) diagonal of M⁻¹ (> 0, traced); default ones.
        n_steps: L ≥ 1 leapfrog steps (static); the path length is L·ε.
        jitter: j ∈ [0, 1); each transition uses ε·u, u ~ U(1 − j, 1 + j) drawn afresh
            (breaks the periodicity of a fixed path length; 0 = plain HMC).

    Returns:
        ``(state, info)``: the next :class:`HMCState` and :class:`HMCInfo`.
    """
    step_size = concrete_positive(step_size, "step_size")
    check_int_in_range(n_steps, "n_steps", 1, 2**31 - 1)
    dt = state.position.dtype
    if inverse_mass_matrix is None:
        inverse_mass_matrix = jnp.ones_like(state.position)
    inverse_mass_matrix = concrete_positive(inverse_mass_matrix, "inverse_mass_matrix")
    inverse_mass_matrix = jnp.broadcast_to(jnp.asarray(inverse_mass_matrix, dt), state.position.shape)
    jitter = _check_jitter(jitter)
    return _step_jit(key, state, log_density, jnp.asarray(step_size, dt), inverse_mass_matrix,
                     int(n_steps), jnp.asarray(jitter, dt))


def _check_jitter(jitter):
    if jnp.ndim(jitter) != 0:
        raise ValueError(f"jitter must be a scalar, got shape {jnp.shape(jitter)}")
    return check_in_range(jitter, "jitter", 0.0, 1.0, high_open=True)


def warmup_windows(n_warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Stan's windowed adaptation schedule: ``(slow, window_end)``, boolean (n_warmup,).

    ``slow[i]``: step i feeds the mass-matrix estimate; ``window_end[i]``: M⁻¹ is updated
    after step i. Buffers 75 / 50 and a first window of 25 steps (doubling), rescaled to
    15% / 10% / 75% when n_warmup < 150; no mass adaptation when n_warmup < 20.
    """
    slow = np.zeros(n_warmup, bool)
    end = np.zeros(n_warmup, bool)
    if n_warmup < 20:
        return slow, end
    first, last_buf, base = 75, 50, 25
    if first + last_buf + base > n_warmup:
        first, last_buf = int(0.15 * n_warmup), int(0.1 * n_warmup)
        base = n_warmup - first - last_buf
    start, size, last = first, base, n_warmup - last_buf
    while start < last:
        stop = start + size
        if stop + 2 * size > last:
            stop = last
        slow[start:stop] = True
        end[stop - 1] = True
        start, size = stop, 2 * size
    return slow, end


class HMC(MCMCKernel):
    """Hamiltonian Monte Carlo as a kernel for :func:`jaxml.mcmc.sample`.

    Args:
        log_density: log π up to a constant, (d,) -> (), differentiable.
        step_size: initial ε (> 0); tuned in warm-up when ``adapt_step_size``.
        n_steps: L leapfrog steps per transition (static, ≥ 1).
        inverse_mass_matrix: (d,) initial diag M⁻¹ (default ones); tuned in warm-up when
            ``adapt_mass_matrix``.
        target_accept: δ, the acceptance rate dual averaging aims for (default 0.8).
        jitter: j ∈ [0, 1): each transition scales ε by u ~ U(1 − j, 1 + j) (default 0.2),
            which breaks the near-periodic orbits a fixed path length L·ε can fall into on
            Gaussian-like targets (they bias variances low); 0 = plain HMC.
    """

    log_density: Callable = eqx.field(static=True)
    step_size: jax.Array = 0.1
    n_steps: int = eqx.field(static=True, default=16)
    inverse_mass_matrix: jax.Array | None = None
    target_accept: jax.Array = 0.8
    jitter: jax.Array = 0.2
    adapt_step_size: bool = eqx.field(static=True, default=True)
    adapt_mass_matrix: bool = eqx.field(static=True, default=True)

    def check(self, position):
        check_position(position)
        check_log_density(self.log_density, position)
        step_size = concrete_positive(self.step_size, "step_size")
        check_int_in_range(self.n_steps, "n_steps", 1, 2**31 - 1)
        imm = self.inverse_mass_matrix
        if imm is not None:
            imm = concrete_positive(imm, "inverse_mass_matrix")
            if jnp.shape(imm) not in ((), jnp.shape(position)):
                raise ValueError(f"inverse_mass_matrix must have shape {jnp.shape(position)}, "
                                 f"got {jnp.shape(imm)}")
        return dataclasses.replace(self, step_size=step_size, inverse_mass_matrix=imm,
                                   jitter=_check_jitter(self.jitter),
                                   target_accept=check_target_accept(self.target_accept))

    def init(self, position):
        return _init(position, self.log_density)

    def step(self, key, state, params):
        return _step(key, state, self.log_density, params.step_size,
                     params.inverse_mass_matrix, self.n_steps,
                     jnp.asarray(self.jitter, state.position.dtype))

    def init_params(self, state):
        x = state.position
        imm = jnp.ones_like(x) if self.inverse_mass_matrix is None else self.inverse_mass_matrix
        return HMCParams(jnp.asarray(self.step_size, x.dtype),
                         jnp.broadcast_to(jnp.asarray(imm, x.dtype), x.shape))

    def warmup_init(self, state, params, n_warmup):
        x = state.position
        z = jnp.zeros((), x.dtype)
        log_eps = jnp.log(params.step_size)
        return HMCAdaptState(log_eps, z, z, jnp.log(10.0) + log_eps, z, z,
                             jnp.zeros_like(x), jnp.zeros_like(x))

    def warmup_update(self, adapt, i, state, info, params, n_warmup):
        x = state.position
        dt = x.dtype
        a = adapt
        if self.adapt_step_size:
            t = a.t + 1.0
            eta = 1.0 / (t + 10.0)
            h_bar = (1.0 - eta) * a.h_bar + eta * (jnp.asarray(self.target_accept, dt)
                                                   - info.acceptance_rate)
            log_eps = a.mu - jnp.sqrt(t) / 0.05 * h_bar
            w = t ** -0.75
            log_eps_bar = w * log_eps + (1.0 - w) * a.log_step_bar
            a = a._replace(log_step=log_eps, log_step_bar=log_eps_bar, h_bar=h_bar, t=t)
        imm = params.inverse_mass_matrix
        if self.adapt_mass_matrix and n_warmup >= 20:
            slow_np, end_np = warmup_windows(n_warmup)
            slow, end = jnp.asarray(slow_np)[i], jnp.asarray(end_np)[i]
            count = a.count + 1.0
            delta = x - a.mean
            mean = a.mean + delta / count
            m2 = a.m2 + delta * (x - mean)
            count, mean, m2 = (jnp.where(slow, count, a.count), jnp.where(slow, mean, a.mean),
                               jnp.where(slow, m2, a.m2))
            var = m2 / jnp.maximum(count - 1.0, 1.0)
            new_imm = (count / (count + 5.0)) * var + 1e-3 * 5.0 / (count + 5.0)
            imm = jnp.where(end, new_imm, imm)
            z = jnp.zeros((), dt)
            restart = end & self.adapt_step_size
            a = a._replace(
                count=jnp.where(end, z, count), mean=jnp.where(end, 0.0, mean),
                m2=jnp.where(end, 0.0, m2),
                mu=jnp.where(restart, jnp.log(10.0) + a.log_step, a.mu),
                t=jnp.where(restart, z, a.t), h_bar=jnp.where(restart, z, a.h_bar),
                log_step_bar=jnp.where(restart, z, a.log_step_bar))
        return a, HMCParams(jnp.exp(a.log_step), imm)

    def warmup_final(self, adapt, params, n_warmup):
        if not self.adapt_step_size or n_warmup == 0:
            return params
        return params._replace(step_size=jnp.exp(adapt.log_step_bar))
