"""Run many chains of any :class:`~jaxml.mcmc.MCMCKernel` at once: warm-up, then sampling.

Chains are vectorized with ``vmap`` inside one ``lax.scan`` over steps (so a progress bar
follows the steps, not the chains), all in one jitted core cached per (kernel type,
log_density, n_samples, n_chains, n_warmup). Warm-up tunes the kernel's parameters per
chain (the proposal scale of random-walk MH, the step size and diagonal mass matrix of HMC);
the sampling phase then runs a fixed kernel, so its draws are a valid Markov chain.

Divergent transitions are counted (``n_divergent``) and kept in ``info``; no draw is
dropped.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxml._core import check_int_in_range, scan_with_progress
from jaxml.mcmc.base import MCMCKernel

__all__ = ["SampleResult", "sample"]


class SampleResult(NamedTuple):
    """Result of :func:`sample`.

    Attributes:
        draws: (n_chains, n_samples, *position.shape) the sampled positions.
        info: the kernel's per-draw info, every field (n_chains, n_samples).
        params: the adapted parameters, every field with a leading (n_chains,) axis.
        state: the last state of each chain (leading (n_chains,) axis).
        acceptance_rate: (n_chains,) mean acceptance probability over the draws.
        n_divergent: (n_chains,) divergent transitions during sampling (0 for kernels
            without divergences).
    """

    draws: jax.Array
    info: Any
    params: Any
    state: Any
    acceptance_rate: jax.Array
    n_divergent: jax.Array


def _sample_core(key, kernel, positions, n_samples, n_chains, n_warmup, progress):
    k_warm, k_samp = jax.random.split(key)
    states = jax.vmap(kernel.init)(positions)
    params = jax.vmap(kernel.init_params)(states)
    step = jax.vmap(kernel.step)

    if n_warmup > 0:
        adapt = jax.vmap(lambda s, p: kernel.warmup_init(s, p, n_warmup))(states, params)
        update = jax.vmap(lambda a, i, s, inf, p: kernel.warmup_update(a, i, s, inf, p, n_warmup),
                          in_axes=(0, None, 0, 0, 0))

        def warm(carry, xs):
            states, adapt, params = carry
            keys, i = xs
            states, info = step(keys, states, params)
            adapt, params = update(adapt, i, states, info, params)
            return (states, adapt, params), None

        xs = (jax.random.split(k_warm, (n_warmup, n_chains)), jnp.arange(n_warmup))
        (states, adapt, params), _ = scan_with_progress(
            warm, (states, adapt, params), xs, progress=progress, desc="warm-up")
        params = jax.vmap(lambda a, p, _: kernel.warmup_final(a, p, n_warmup))(adapt, params, states)

    def body(states, keys):
        states, info = step(keys, states, params)
        return states, (states.position, info)

    states, (draws, info) = scan_with_progress(
        body, states, jax.random.split(k_samp, (n_samples, n_chains)), progress=progress,
        desc="sampling")
    swap = lambda a: jnp.swapaxes(a, 0, 1)  # noqa: E731  (steps, chains) -> (chains, steps)
    draws, info = swap(draws), jax.tree_util.tree_map(swap, info)
    acc = getattr(info, "acceptance_rate", None)
    acc = jnp.mean(acc, axis=1) if acc is not None else jnp.full((n_chains,), jnp.nan)
    div = getattr(info, "is_divergent", None)
    div = (jnp.sum(div, axis=1) if div is not None else jnp.zeros((n_chains,))).astype(jnp.int32)
    return SampleResult(draws, info, params, states, acc, div)


_sample_jit = jax.jit(_sample_core, static_argnames=("n_samples", "n_chains", "n_warmup",
                                                     "progress"))


def sample(key: jax.Array, kernel: MCMCKernel, position, *, n_samples: int, n_chains: int = 4,
           n_warmup: int = 1000, progress: bool = False) -> SampleResult:
    """Run ``n_chains`` chains of ``kernel``: ``n_warmup`` tuning steps, then ``n_samples`` draws.

    Args:
        key: PRNG key.
        kernel: an :class:`~jaxml.mcmc.MCMCKernel` (``RandomWalkMH``, ``HMC``,
            ``NormalGammaGibbs``, ``MixtureGibbs`` or your own).
        position: the starting position, one for all chains (shape of a position, e.g.
            (d,)) or one per chain ((n_chains, d)); overdispersed starts make R̂ meaningful.
        n_samples: draws kept per chain (static, ≥ 1).
        n_chains: chains run in parallel with ``vmap`` (static, ≥ 1).
        n_warmup: adaptation steps discarded before sampling (static, ≥ 0).
        progress: show a tqdm bar over the steps.

    Returns:
        :class:`SampleResult` with ``draws`` (n_chains, n_samples, *position.shape).

    Raises:
        ValueError: n_chains < 1, n_samples < 1, n_warmup < 0, a position of the wrong
            shape, a non-finite log density at a starting position, a non-positive step
            size or scale.
    """
    if not isinstance(kernel, MCMCKernel):
        raise TypeError(f"kernel must be an MCMCKernel, got {type(kernel).__name__}")
    check_int_in_range(n_chains, "n_chains", 1, 2**31 - 1)
    check_int_in_range(n_samples, "n_samples", 1, 2**31 - 1)
    check_int_in_range(n_warmup, "n_warmup", 0, 2**31 - 1)
    position = jnp.asarray(position)
    if not jnp.issubdtype(position.dtype, jnp.floating):
        position = position.astype(jnp.result_type(float))
    nd = kernel.position_ndim
    if position.ndim == nd:
        positions = jnp.broadcast_to(position, (n_chains,) + position.shape)
    elif position.ndim == nd + 1 and position.shape[0] == n_chains:
        positions = position
    else:
        raise ValueError(f"position must have {nd} dimension(s) (one start for all chains) or "
                         f"{nd + 1} with n_chains={n_chains} rows, got shape {position.shape}")
    for c in range(n_chains if position.ndim == nd + 1 else 1):
        checked = kernel.check(positions[c])
        kernel = kernel if checked is None else checked
    return _sample_jit(key, kernel, positions, int(n_samples), int(n_chains), int(n_warmup),
                       bool(progress))
