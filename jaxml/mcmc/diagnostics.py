r"""Convergence diagnostics in JAX: rank-normalized split R̂ and bulk / tail effective
sample size (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021).

Draws are (M chains, N draws, ...), ArviZ's (chain, draw) convention; every function
returns one number per coordinate, shape (...).

Each chain is split in halves (the first ⌊N/2⌋ and the last ⌊N/2⌋ draws), giving 2M
chains of n = ⌊N/2⌋ draws. Rank normalization replaces every draw by
z = Φ⁻¹((r − 3/8)/(S + 1/4)), r its average rank among all S = 2Mn draws.

- **R̂** on z: with W the mean within-chain variance and B/n the variance of the chain
  means, R̂ = √(((n − 1)/n·W + B/n)/W). Rank-normalized split R̂ is the larger of R̂ on z
  and on the ranks of the folded draws |x − median(x)| (which sees a difference in scale).
- **ESS** of a chain set: ESS = S/τ̂, τ̂ = −1 + 2Σₜ ρ̂ₜ, with the autocorrelations
  ρ̂ₜ = 1 − (W − mean_m ĉₜ,m)/var⁺ (ĉ the FFT autocovariances, var⁺ = (n − 1)/n·W + B/n)
  summed over Geyer's initial positive sequence of pair sums, made monotone; τ̂ ≥ 1/log₁₀ S.
  Bulk ESS: ESS of z. Tail ESS: the smaller ESS of the indicators I(x ≤ q₀.₀₅) and
  I(x ≤ q₀.₉₅). ``ess`` (ArviZ's ``method="mean"``): ESS of the split draws themselves.

These follow ArviZ's ``rhat(method="rank")`` and ``ess(method="bulk" | "tail" | "mean")``
number for number. Cost: O(S log S) per coordinate (sorting, FFT).

Reference: A. Vehtari et al., "Rank-normalization, folding, and localization: an improved
R̂ for assessing convergence of MCMC", Bayesian Analysis 16(2) (2021); C. J. Geyer,
"Practical Markov chain Monte Carlo", Statistical Science 7 (1992).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri

from jaxml._core import as_float_array

__all__ = ["rhat", "ess", "ess_bulk", "ess_tail", "summary", "Summary"]


def _split(x):
    """(M, N) -> (2M, ⌊N/2⌋)."""
    half = x.shape[1] // 2
    return jnp.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def _z_scale(x):
    """Rank-normalize (average ranks of ties), same shape."""
    flat = x.ravel()
    s = jnp.sort(flat)
    lo = jnp.searchsorted(s, flat, side="left")
    hi = jnp.searchsorted(s, flat, side="right")
    rank = 0.5 * (lo + hi + 1).astype(x.dtype)
    size = flat.shape[0]
    return ndtri((rank - 0.375) / (size + 0.25)).reshape(x.shape)


def _rhat_basic(x):
    n = x.shape[1]
    chain_mean = jnp.mean(x, axis=1)
    w = jnp.mean(jnp.var(x, axis=1, ddof=1))
    b = n * jnp.var(chain_mean, ddof=1)
    return jnp.sqrt((b / w + n - 1) / n)


def _autocov(x):
    """(M, n) biased autocovariances by FFT, lags 0..n−1."""
    n = x.shape[1]
    m = 2 * n
    xc = x - jnp.mean(x, axis=1, keepdims=True)
    f = jnp.fft.rfft(xc, n=m, axis=1)
    return jnp.fft.irfft(f * jnp.conj(f), n=m, axis=1)[:, :n] / n


def _ess_basic(x):
    """ESS of an (M, n) chain set (Geyer's initial monotone sequence, as ArviZ's ``_ess``)."""
    m_chains, n = x.shape
    dt = x.dtype
    acov = _autocov(x)
    mean_var = jnp.mean(acov[:, 0]) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m_chains > 1:
        var_plus = var_plus + jnp.var(jnp.mean(x, axis=1), ddof=1)
    rho = 1.0 - (mean_var - jnp.mean(acov, axis=0)) / var_plus          # (n,)
    rho = rho.at[0].set(1.0)
    n_pairs = n // 2
    pairs = rho[0:2 * n_pairs:2] + rho[1:2 * n_pairs:2]                # P_j, j = 0..n_pairs-1
    j = jnp.arange(n_pairs)
    # pair j >= 1 is visited while every earlier pair sum is > 0 and 2j - 1 < n - 3
    prefix_pos = jnp.concatenate([jnp.ones((1,), bool), jnp.cumprod(pairs > 0)[:-1].astype(bool)])
    visited = (j >= 1) & prefix_pos & (2 * j - 1 < n - 3)
    jmax = jnp.sum(visited)
    # Geyer's monotone sequence over the kept pairs 0..jmax-1 (all > 0 but pair 0)
    mono = jax.lax.cummin(pairs)
    kept = jnp.sum(jnp.where(j < jmax, mono, 0.0))
    even = jnp.where(jmax > 0, rho[2 * jmax], 1.0)
    last_pair = pairs[jnp.minimum(jmax, n_pairs - 1)]
    include = (jmax == 0) | (last_pair >= 0) | (even > 0)
    tail = jnp.where(include, even, 0.0)
    size = m_chains * n
    tau = -1.0 + 2.0 * kept + tail
    tau = jnp.maximum(tau, 1.0 / jnp.log10(jnp.asarray(size, dt)))
    ess = size / tau
    const = (jnp.max(x) - jnp.min(x)) < jnp.finfo(dt).resolution
    return jnp.where(const, jnp.asarray(size, dt), ess)


def _per_coordinate(fn, draws):
    m, n = draws.shape[:2]
    rest = draws.shape[2:]
    flat = draws.reshape(m, n, -1)
    out = jax.vmap(fn, in_axes=2)(flat)
    return out.reshape(rest)


def _rhat_rank(x):
    s = _split(x)
    bulk = _rhat_basic(_z_scale(s))
    tail = _rhat_basic(_z_scale(jnp.abs(s - jnp.median(s))))
    return jnp.maximum(bulk, tail)


def _ess_bulk(x):
    return _ess_basic(_z_scale(_split(x)))


def _ess_tail(x):
    q = jnp.quantile(x, jnp.asarray([0.05, 0.95], x.dtype))
    lo = _ess_basic(_split((x <= q[0]).astype(x.dtype)))
    hi = _ess_basic(_split((x <= q[1]).astype(x.dtype)))
    return jnp.minimum(lo, hi)


def _ess_mean(x):
    return _ess_basic(_split(x))


_DIAGNOSTICS = {"rhat": _rhat_rank, "bulk": _ess_bulk, "tail": _ess_tail, "mean": _ess_mean}


def _diagnostic(draws, kind):
    return _per_coordinate(_DIAGNOSTICS[kind], draws)


_diagnostic_jit = jax.jit(_diagnostic, static_argnames=("kind",))


def _check_draws(draws, min_chains=1):
    draws = as_float_array(draws, "draws", finite=False)
    if draws.ndim < 2:
        raise ValueError(f"draws must have shape (n_chains, n_samples, ...), got {draws.shape}")
    if draws.shape[0] < min_chains:
        raise ValueError(f"draws must hold at least {min_chains} chain(s), got {draws.shape[0]}")
    if draws.shape[1] < 4:
        raise ValueError(f"draws must hold at least 4 samples per chain, got {draws.shape[1]}")
    return draws


def rhat(draws) -> jax.Array:
    """Rank-normalized split R̂ (Vehtari et al. 2021), per coordinate.

    Args:
        draws: (n_chains, n_samples, ...) with n_samples ≥ 4.

    Returns:
        (...) R̂; values above 1.01 signal chains that have not mixed.
    """
    return _diagnostic_jit(_check_draws(draws), "rhat")


def ess_bulk(draws) -> jax.Array:
    """Bulk effective sample size (ESS of the rank-normalized split chains), per coordinate.

    Args: draws (n_chains, n_samples, ...), n_samples ≥ 4. Returns: (...).
    """
    return _diagnostic_jit(_check_draws(draws), "bulk")


def ess_tail(draws) -> jax.Array:
    """Tail effective sample size (min ESS of I(x ≤ q₀.₀₅), I(x ≤ q₀.₉₅)), per coordinate.

    Args: draws (n_chains, n_samples, ...), n_samples ≥ 4. Returns: (...).
    """
    return _diagnostic_jit(_check_draws(draws), "tail")


def ess(draws) -> jax.Array:
    """Effective sample size for the mean (ESS of the split chains, no rank normalization).

    Args: draws (n_chains, n_samples, ...), n_samples ≥ 4. Returns: (...).
    """
    return _diagnostic_jit(_check_draws(draws), "mean")


class Summary(NamedTuple):
    """Per-coordinate posterior summary, every field (...): ``mean``, ``sd``, ``mcse_mean``
    (sd/√ess), ``ess_bulk``, ``ess_tail``, ``rhat``."""

    mean: jax.Array
    sd: jax.Array
    mcse_mean: jax.Array
    ess_bulk: jax.Array
    ess_tail: jax.Array
    rhat: jax.Array


@jax.jit
def _summary_jit(draws):
    mean = jnp.mean(draws, axis=(0, 1))
    sd = jnp.std(draws, axis=(0, 1), ddof=1)
    e = _per_coordinate(_ess_mean, draws)
    return Summary(mean, sd, sd / jnp.sqrt(e), _per_coordinate(_ess_bulk, draws),
                   _per_coordinate(_ess_tail, draws), _per_coordinate(_rhat_rank, draws))


def summary(draws) -> Summary:
    """Mean, sd, Monte Carlo standard error of the mean, bulk/tail ESS and R̂, per coordinate.

    Args: draws (n_chains, n_samples, ...), n_samples ≥ 4. Returns: :class:`Summary`.
    """
    return _summary_jit(_check_draws(draws))
