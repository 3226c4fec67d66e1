r"""Pareto-smoothed importance sampling (PSIS): stabilized importance weights and the k̂
diagnostic of how far a variational q is from the target.

With draws zₛ ~ q and log-weights log wₛ = log p̃(zₛ) − log q(zₛ) (p̃ the unnormalized
target, ``log_density``), importance sampling estimates E_p[f] ≈ Σₛ w̃ₛ f(zₛ),
w̃ = w/Σw. Its variance is governed by the right tail of w. PSIS fits a generalized Pareto
distribution (GPD) to the M = ⌈min(S/5, 3√(S/r_eff))⌉ largest weights (shifted by the
(M+1)-th largest), by Zhang & Stephens' (2009) empirical-Bayes estimate with a weakly
informative prior on the shape, k̂ ← (M·k̂ + 10·½)/(M + 10), and replaces those weights by
the GPD's expected order statistics

    w̃₍ₘ₎ = w_cut + F⁻¹((m − ½)/M),  F⁻¹(u) = σ((1 − u)^(−k) − 1)/k,

truncated at the largest raw weight. The shape estimate k̂ is the diagnostic
(Yao et al. 2018; Vehtari et al. 2024): k̂ < 0.5 (or < min(1 − 1/log₁₀S, 0.7)) the
estimate is reliable and q is close to p; 0.5 ≤ k̂ < 0.7 usable; k̂ ≥ 0.7 the importance
weights have (nearly) infinite variance and q should not be trusted.

Numbers follow ArviZ's ``psislw`` (normalized smoothed log-weights and k̂). Cost: one sort,
O(S log S), and an O(M·(30 + √M)) GPD fit.

Reference: A. Vehtari, D. Simpson, A. Gelman, Y. Yao & J. Gabry, "Pareto smoothed importance
sampling", JMLR 25(72) (2024); Y. Yao, A. Vehtari, D. Simpson & A. Gelman, "Yes, but did it
work?: Evaluating variational inference", ICML (2018); J. Zhang & M. A. Stephens, "A new and
efficient estimation method for the generalized Pareto distribution", Technometrics 51 (2009).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from jaxml._core import as_float_array, check_int_in_range, check_returns

__all__ = ["PSISResult", "PSISDiagnostic", "psis", "psis_diagnostic", "psis_expectation"]


class PSISResult(NamedTuple):
    """Result of :func:`psis`: ``log_weights`` (..., S) smoothed and normalized
    (logsumexp = 0 along the last axis); ``khat`` (...) the Pareto shape estimate k̂
    (inf when the tail is too short to fit)."""

    log_weights: jax.Array
    khat: jax.Array


class PSISDiagnostic(NamedTuple):
    """Result of :func:`psis_diagnostic`.

    Attributes:
        khat: () the Pareto k̂ of q against the target.
        log_weights: (S,) smoothed, normalized log-weights of the draws.
        raw_log_weights: (S,) log p̃(zₛ) − log q(zₛ).
        samples: (S, d) the draws zₛ ~ q.
        ess: () importance-sampling effective sample size 1/Σₛ w̃ₛ².
    """

    khat: jax.Array
    log_weights: jax.Array
    raw_log_weights: jax.Array
    samples: jax.Array
    ess: jax.Array


def _gpd_fit(x):
    """Zhang–Stephens GPD fit to sorted exceedances x (M,) > 0: (k, σ) with the shape prior."""
    n = x.shape[0]
    dt = x.dtype
    m_est = 30 + int(n ** 0.5)
    b = 1.0 - jnp.sqrt(m_est / (jnp.arange(1, m_est + 1, dtype=dt) - 0.5))
    b = b / (3.0 * x[int(n / 4 + 0.5) - 1]) + 1.0 / x[-1]
    k = jnp.mean(jnp.log1p(-b[:, None] * x[None, :]), axis=1)
    len_scale = n * (jnp.log(-(b / k)) - k - 1.0)
    weights = 1.0 / jnp.sum(jnp.exp(len_scale[None, :] - len_scale[:, None]), axis=1)
    weights = jnp.where(weights >= 10 * jnp.finfo(dt).eps, weights, 0.0)
    weights = weights / jnp.sum(weights)
    b_post = jnp.sum(b * weights)
    k_post = jnp.mean(jnp.log1p(-b_post * x))
    sigma = -k_post / b_post
    k_post = (n * k_post + 10 * 0.5) / (n + 10)
    return k_post, sigma


def _gpd_inv(p, k, sigma):
    small = jnp.abs(k) < jnp.finfo(p.dtype).eps
    safe_k = jnp.where(small, 1.0, k)
    x = jnp.where(small, -jnp.log1p(-p), jnp.expm1(-safe_k * jnp.log1p(-p)) / safe_k)
    return jnp.where(sigma > 0, sigma * x, jnp.nan)


def _psis_1d(lw, tail_len: int):
    dt = lw.dtype
    s = lw.shape[0]
    max_lw = jnp.max(lw)
    x = lw - max_lw
    order = jnp.argsort(x)
    cutoff = jnp.maximum(x[order[s - tail_len - 1]], jnp.log(jnp.finfo(dt).tiny))
    if tail_len <= 4:
        k = jnp.asarray(jnp.inf, dt)
    else:
        tail_idx = order[s - tail_len:]
        exceed = jnp.exp(x[tail_idx]) - jnp.exp(cutoff)
        k, sigma = _gpd_fit(exceed)
        probs = (jnp.arange(tail_len, dtype=dt) + 0.5) / tail_len
        smoothed = jnp.log(_gpd_inv(probs, k, sigma) + jnp.exp(cutoff))
        # only tail draws strictly above the cutoff are smoothed (ties stay as they are)
        smoothed = jnp.where(x[tail_idx] > cutoff, smoothed, x[tail_idx])
        xs = jnp.minimum(x.at[tail_idx].set(smoothed), 0.0)
        x = jnp.where(jnp.isfinite(k), xs, x)
    return x - logsumexp(x), k


def _tail_len(s: int, r_eff: float) -> int:
    return int(math.ceil(min(s / 5.0, 3.0 * (s / r_eff) ** 0.5)))


def _psis_core(log_weights, tail_len):
    lead = log_weights.shape[:-1]
    flat = log_weights.reshape(-1, log_weights.shape[-1])
    lw, k = jax.vmap(lambda v: _psis_1d(v, tail_len))(flat)
    return PSISResult(lw.reshape(log_weights.shape), k.reshape(lead))


_psis_jit = jax.jit(_psis_core, static_argnames=("tail_len",))


def psis(log_weights, *, r_eff: float = 1.0) -> PSISResult:
    """Pareto-smooth importance log-weights and estimate the tail shape k̂.

    Args:
        log_weights: (..., S) raw log-weights log p̃(zₛ) − log q(zₛ) (S ≥ 2 along the last
            axis; leading axes are independent problems, as ArviZ's ``psislw``).
        r_eff: relative efficiency of the draws, ESS/S (1 for independent draws from q;
            static, it sets the tail length).

    Returns:
        :class:`PSISResult` ``(log_weights, khat)``: the smoothed log-weights normalized to
        logsumexp 0, and k̂ per problem.
    """
    log_weights = as_float_array(log_weights, "log_weights", finite=False)
    if log_weights.ndim < 1 or log_weights.shape[-1] < 2:
        raise ValueError(f"log_weights must have shape (..., S) with S >= 2, got {log_weights.shape}")
    r = float(r_eff)
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"r_eff must be a positive finite number, got {r_eff}")
    return _psis_jit(log_weights, _tail_len(log_weights.shape[-1], r))


def psis_expectation(log_weights, values) -> jax.Array:
    """PSIS estimate Σₛ w̃ₛ f(zₛ) of E_p[f].

    Args:
        log_weights: (S,) smoothed log-weights (from :func:`psis` or :func:`psis_diagnostic`;
            normalized or not).
        values: (S, ...) f(zₛ).

    Returns:
        (...) the self-normalized weighted mean.
    """
    log_weights = as_float_array(log_weights, "log_weights", ndim=1, finite=False)
    values = as_float_array(values, "values", finite=False)
    if values.ndim < 1 or values.shape[0] != log_weights.shape[0]:
        raise ValueError(f"values must have shape ({log_weights.shape[0]}, ...), got {values.shape}")
    w = jax.nn.softmax(log_weights)
    return jnp.tensordot(w, values, axes=(0, 0))


def _diag_core(key, q, log_density, n_samples, tail_len):
    if hasattr(q, "sample_and_log_prob"):      # e.g. a generative flow: exact, no inverse
        z, log_q = q.sample_and_log_prob(key, n_samples)
    else:
        z = q.sample(key, n_samples)
        log_q = q.log_prob(z)
    raw = jax.vmap(log_density)(z) - log_q
    lw, k = _psis_1d(raw, tail_len)
    return PSISDiagnostic(k, lw, raw, z, 1.0 / jnp.sum(jnp.exp(2.0 * lw)))


_diag_jit = jax.jit(_diag_core, static_argnames=("log_density", "n_samples", "tail_len"))


def psis_diagnostic(key: jax.Array, q, log_density: Callable[[jax.Array], jax.Array], *,
                    n_samples: int = 1000) -> PSISDiagnostic:
    """k̂ of a fitted q against an unnormalized target (Yao et al. 2018).

    Draws zₛ ~ q, forms log wₛ = log_density(zₛ) − q.log_prob(zₛ) and smooths them with
    :func:`psis`. Use ``psis_expectation(diag.log_weights, f(diag.samples))`` for
    PSIS-corrected expectations under the target.

    Args:
        key: PRNG key.
        q: any distribution with ``sample(key, n) -> (n, d)`` and ``log_prob(z (n, d)) ->
            (n,)`` (every ``jaxml.vi`` family). Where q also has
            ``sample_and_log_prob(key, n) -> ((n, d), (n,))`` (a ``jaxml.flows.Flow``), that
            is used instead: a generative flow then needs no numerical inverse.
        log_density: log p̃, (d,) -> ().
        n_samples: S, draws from q (static, ≥ 10).

    Returns:
        :class:`PSISDiagnostic`.

    Raises:
        TypeError: ``q`` without ``sample``/``log_prob``; ``log_density`` not callable.
        ValueError: ``log_density`` does not return a scalar for one draw; n_samples < 10.
    """
    if not (hasattr(q, "sample") and hasattr(q, "log_prob")):
        raise TypeError(f"q must have sample(key, n) and log_prob(z), got {type(q).__name__}")
    check_int_in_range(n_samples, "n_samples", 10, 2**31 - 1)
    z = jax.eval_shape(lambda k: q.sample(k, 1), key)
    check_returns(log_density, "log_density", jax.ShapeDtypeStruct(z.shape[1:], z.dtype),
                  shape=())
    return _diag_jit(key, q, log_density, int(n_samples), _tail_len(int(n_samples), 1.0))
