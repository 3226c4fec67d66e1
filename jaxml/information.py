r"""Differential entropy: closed forms, Monte Carlo, nearest-neighbour and spacing estimators.

The differential entropy of a density p on ℝᵈ is

    h(x) = −∫ p(x) ln p(x) dx = −E[ln p(x)]      (nats).

Closed forms (Cover & Thomas, §8.1, Theorem 8.4.1):

* uniform on [a, b]:                 h = ln(b − a)  (negative when b − a < 1);
* Gaussian N(μ, σ²):                 h = ½ ln(2πe σ²);
* multivariate Gaussian N(μ, Σ):     h = ½ ln((2πe)ᵈ det Σ) = (d/2)(1 + ln 2π) + ½ ln det Σ.

Among densities of a given covariance the Gaussian has the largest entropy, which gives the
estimation bound (Cover & Thomas, Theorem 8.6.6): for any estimator x̂ (a constant, or a
function x̂(y) of an observation, then with h(x | y)),

    E(x − x̂)² ≥ e^{2h(x)} / (2πe),

with equality iff x is Gaussian and x̂ its mean. ``e^{2h}/(2πe)`` is the *entropy power*.

Estimators from samples x₁, …, xₙ:

* Monte Carlo for a family that can sample and evaluate its density:
  ĥ = −(1/n) Σᵢ ln q(zᵢ), zᵢ ~ q, with its standard error. O(n) time.
* Kozachenko–Leonenko (k nearest neighbours), in the form of Kraskov et al. (2004, eq. 20):
  ĥ = ψ(n) − ψ(k) + ln V_d + (d/n) Σᵢ ln εᵢ, with εᵢ the Euclidean distance from xᵢ to its
  k-th nearest neighbour and V_d = π^{d/2}/Γ(1 + d/2) the volume of the unit ball.
  O(n² d) time, O(n · block) memory (the distances are computed one block of rows at a time).
* the 1-D spacing estimators of ``scipy.stats.differential_entropy`` (same names, same
  default window m = ⌊√n + ½⌋, the same numbers): on the order statistics x₍₁₎ ≤ … ≤ x₍ₙ₎,
  with x₍ᵢ₎ = x₍₁₎ for i < 1 and x₍ₙ₎ for i > n,

  - Vasicek (1976):   ĥ = (1/n) Σᵢ ln( n/(2m) · (x₍ᵢ₊ₘ₎ − x₍ᵢ₋ₘ₎) );
  - van Es (1992):
    ĥ = 1/(n−m) Σᵢ₌₁ⁿ⁻ᵐ ln( (n+1)/m · (x₍ᵢ₊ₘ₎ − x₍ᵢ₎) ) + Σₖ₌ₘⁿ 1/k + ln m − ln(n+1);
  - Ebrahimi et al. (1994): Vasicek with the window weights cᵢ = 1 + (i−1)/m (i ≤ m),
    2 (m < i ≤ n − m), 1 + (n−i)/m (i > n − m): ĥ = (1/n) Σᵢ ln( n (x₍ᵢ₊ₘ₎ − x₍ᵢ₋ₘ₎) / (cᵢ m) );
  - Correa (1995), a local linear regression of x₍ⱼ₎ on j over the window |j − i| ≤ m:
    ĥ = −(1/n) Σᵢ ln( Σⱼ (j − i)(x₍ⱼ₎ − x̄ᵢ) / (n Σⱼ (x₍ⱼ₎ − x̄ᵢ)²) ).

  O(n log n) (sort) plus O(n) (O(n m) for Correa) time, O(n) memory.

Ties (repeated sample values) make a spacing or a neighbour distance zero and the estimate
−∞: the data are then not from a density.

References:
    T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed. (2006), ch. 8.
    L. F. Kozachenko and N. N. Leonenko, "Sample estimate of the entropy of a random vector",
    Problems Inform. Transmission 23 (1987) 95–101.
    A. Kraskov, H. Stögbauer and P. Grassberger, "Estimating mutual information",
    Phys. Rev. E 69 (2004) 066138.
    O. Vasicek, "A test for normality based on sample entropy", J. R. Stat. Soc. B 38 (1976).
    B. van Es, Scand. J. Statist. 19 (1992) 61–72. N. Ebrahimi, K. Pflughoeft and E. S. Soofi,
    Statist. Probab. Lett. 20 (1994) 225–234. J. C. Correa, Comm. Statist. Theory Methods 24
    (1995) 2439–2449. H. A. Noughabi, Ann. Data Sci. 2 (2015) 231–241 (the four as scipy has
    them).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import digamma, gammaln

from jaxml import gaussian
from jaxml._core import (
    HIGHEST,
    LOG_2PI,
    as_float_array,
    check_int_in_range,
    check_positive,
    check_value,
    float_dtype,
    is_concrete,
)

__all__ = [
    "uniform_entropy", "gaussian_entropy", "multivariate_gaussian_entropy",
    "monte_carlo_entropy", "MonteCarloEntropy", "knn_entropy", "spacing_entropy",
    "SPACING_METHODS", "estimation_bound",
]

SPACING_METHODS = ("vasicek", "van es", "ebrahimi", "correa", "auto")


# ----------------------------------------------------------------------------- closed forms

def uniform_entropy(low, high) -> jax.Array:
    """h = ln(b − a) of the uniform density on [a, b] (elementwise, broadcasting).

    Args:
        low: (...) a. high: (...) b > a.

    Returns:
        (...) entropy in nats.

    Raises:
        ValueError: ``high <= low`` somewhere, or NaN/inf.
    """
    dt = float_dtype(jnp.asarray(low), jnp.asarray(high))
    low = as_float_array(low, "low", dtype=dt)
    high = as_float_array(high, "high", dtype=dt)
    if is_concrete(low) and is_concrete(high):
        if np.any(np.asarray(high) <= np.asarray(low)):
            raise ValueError(f"high must be greater than low, got low={low}, high={high}")
        return _uniform_entropy(high - low)
    width = check_value(high - low, "high", lambda xp, v: ~(v > 0), "must be greater than low")
    return _uniform_entropy(width)


@jax.jit
def _uniform_entropy(width):
    return jnp.log(width)


def gaussian_entropy(variance) -> jax.Array:
    """h = ½ ln(2πe σ²) of a one-dimensional Gaussian N(μ, σ²) (elementwise).

    Args:
        variance: (...) σ² > 0.

    Returns:
        (...) entropy in nats.

    Raises:
        ValueError: ``variance`` not positive or not finite.
    """
    variance = check_positive(as_float_array(variance, "variance"), "variance")
    return _gaussian_entropy(variance)


@jax.jit
def _gaussian_entropy(variance):
    return 0.5 * (1.0 + LOG_2PI + jnp.log(variance))


def multivariate_gaussian_entropy(cov) -> jax.Array:
    """h = ½ ln((2πe)ᵈ det Σ) of N(μ, Σ) in ℝᵈ.

    Args:
        cov: (d, d) symmetric positive-definite Σ.

    Returns:
        () entropy in nats (:func:`jaxml.gaussian.entropy`).

    Raises:
        ValueError: ``cov`` not square, not symmetric positive definite (checked when
            concrete), or NaN/inf.
    """
    cov = as_float_array(cov, "cov", ndim=2)
    if cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise ValueError(f"cov must be a non-empty square matrix, got shape {cov.shape}")
    if is_concrete(cov):
        c = np.asarray(cov, dtype=np.float64)
        ok = np.allclose(c, c.T, rtol=1e-6, atol=0.0)
        if ok:
            try:
                np.linalg.cholesky(c)
            except np.linalg.LinAlgError:
                ok = False
        if not ok:
            raise ValueError("cov must be symmetric positive definite")
    else:
        cov = check_value(cov, "cov", _not_spd, "must be symmetric positive definite")
    return gaussian.entropy(cov)


def _not_spd(xp, v):
    """Traced check: Σ not symmetric (to 1e-6 relative) or its Cholesky factor not finite."""
    asym = xp.abs(v - v.T) > 1e-6 * xp.abs(v).max()
    return asym | ~xp.isfinite(xp.linalg.cholesky(v))


# ----------------------------------------------------------------------------- estimation bound

def estimation_bound(entropy, *, dim: int = 1) -> jax.Array:
    """The least mean squared error any estimator of x can reach: e^{2h/d}/(2πe).

    E‖x − x̂‖²/d ≥ e^{2h(x)/d}/(2πe) for every estimator x̂ (a constant, or x̂(y) with
    h(x | y) in place of h(x)); equality iff x is Gaussian with covariance σ²I and x̂ its
    (conditional) mean (Cover & Thomas, Theorem 8.6.6, for d = 1; for d > 1 it follows from
    tr Σ/d ≥ (det Σ)^{1/d} ≥ e^{2h/d}/(2πe)). For d = 1 it is the entropy power of x.

    Args:
        entropy: (...) h(x) in nats (or h(x | y)).
        dim: d, the dimension of x (static int ≥ 1).

    Returns:
        (...) the bound on the per-coordinate mean squared error.
    """
    check_int_in_range(dim, "dim", 1, 2**31 - 1)
    entropy = as_float_array(entropy, "entropy")
    return _estimation_bound(entropy, dim=int(dim))


def _estimation_bound_core(entropy, *, dim):
    return jnp.exp(2.0 * entropy / dim - 1.0 - LOG_2PI)


_estimation_bound = jax.jit(_estimation_bound_core, static_argnames=("dim",))


# ----------------------------------------------------------------------------- Monte Carlo

class MonteCarloEntropy(NamedTuple):
    """A Monte Carlo entropy estimate.

    Attributes:
        entropy: () ĥ = −(1/n) Σᵢ ln q(zᵢ).
        stderr: () its standard error, sd(ln q(zᵢ))/√n.
    """

    entropy: jax.Array
    stderr: jax.Array


def _check_key(key) -> jax.Array:
    if not (isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)):
        raise TypeError("key must be a new-style PRNG key from jax.random.key, got "
                        f"{type(key).__name__}")
    return key


def monte_carlo_entropy(key, family, n: int) -> MonteCarloEntropy:
    """h ≈ −(1/n) Σᵢ ln q(zᵢ), zᵢ ~ q, for any family that samples and evaluates its density.

    Unbiased, with standard error sd(ln q(z))/√n; it needs the normalized log-density.

    Args:
        key: a ``jax.random.key``.
        family: an object with ``sample(key, n) -> (n, d)`` and ``log_prob(z) -> (n,)``,
            e.g. :class:`jaxml.vi.MeanFieldGaussian` or any ``jaxml.vi`` family. When it is a
            pytree of arrays (an ``eqx.Module``, a NamedTuple) the estimate runs jitted.
        n: number of draws (static int ≥ 2).

    Returns:
        :class:`MonteCarloEntropy` (``entropy`` (), ``stderr`` ()).

    Raises:
        TypeError: ``family`` lacks ``sample``/``log_prob``; ``key`` not a new-style key.
        ValueError: ``n < 2``; ``log_prob`` does not return shape (n,).
    """
    key = _check_key(key)
    for method in ("sample", "log_prob"):
        if not callable(getattr(family, method, None)):
            raise TypeError(f"family must have a callable {method}() (e.g. a jaxml.vi family), "
                            f"got {type(family).__name__}")
    check_int_in_range(n, "n", 2, 2**31 - 1)
    leaves = jax.tree_util.tree_leaves(family)
    if all(isinstance(v, (jax.Array, np.ndarray, float, int)) for v in leaves):
        return _mc_entropy_jit(key, family, n=int(n))
    return _mc_entropy(key, family, n=int(n))


def _mc_entropy(key, family, *, n):
    z = family.sample(key, n)
    lp = jnp.asarray(family.log_prob(z))
    if lp.shape != (n,):
        raise ValueError(f"family.log_prob must return shape ({n},) for {n} draws, got {lp.shape}")
    h = -jnp.mean(lp)
    return MonteCarloEntropy(h, jnp.std(lp, ddof=1) / math.sqrt(n))


_mc_entropy_jit = jax.jit(_mc_entropy, static_argnames=("n",))


# ----------------------------------------------------------------------------- nearest neighbours

def _as_samples(x, name: str = "x") -> jax.Array:
    """(n,) or (n, d) finite samples as an (n, d) array, n ≥ 1."""
    x = as_float_array(x, name, ndim=(1, 2))
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one sample of dimension ≥ 1, "
                         f"got shape {x.shape}")
    return x


def knn_entropy(x, *, k: int = 1, block_size: int | None = None) -> jax.Array:
    """Kozachenko–Leonenko estimate of h(x) from samples, with k nearest neighbours.

        ĥ = ψ(n) − ψ(k) + ln V_d + (d/n) Σᵢ ln εᵢ,   V_d = π^{d/2} / Γ(1 + d/2),

    εᵢ the Euclidean distance from xᵢ to its k-th nearest neighbour among the other samples.
    Consistent for any density (bias O(n^{−1/d}) roughly, larger k lowers the variance).
    Neighbours are found one block of rows at a time (O(block · n) memory): candidates by
    the Gram expansion, then the k distances recomputed from differences.

    Args:
        x: (n,) or (n, d) samples (n > k).
        k: number of neighbours (static int, 1 ≤ k < n).
        block_size: rows per distance block (static); default max(64, 2¹⁸/n) rows.

    Returns:
        () entropy in nats (−∞ if samples repeat).

    Raises:
        ValueError: ``x`` empty, not 1-/2-D, NaN/inf; ``k`` outside [1, n − 1];
            ``block_size`` < 1.

    Reference: Kozachenko & Leonenko (1987); Kraskov, Stögbauer & Grassberger (2004), eq. 20.
    """
    x = _as_samples(x)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"x must hold at least 2 samples, got {n}")
    check_int_in_range(k, "k", 1, n - 1)
    if block_size is None:
        block_size = min(n, max(64, (1 << 18) // n))
    check_int_in_range(block_size, "block_size", 1, 2**31 - 1)
    return _knn_entropy(x, k=int(k), block=int(min(block_size, n)))


def _k_smallest(d2, k):
    """(b, k) column indices of the k smallest entries of each row of d2 (b, n): k passes of
    argmin for small k (faster than a sort on CPU), ``lax.top_k`` beyond."""
    if k > 8:
        return lax.top_k(-d2, k)[1]
    rows = jnp.arange(d2.shape[0])
    out = []
    for _ in range(k):
        j = jnp.argmin(d2, axis=1)
        out.append(j)
        d2 = d2.at[rows, j].set(jnp.inf)
    return jnp.stack(out, axis=1)


def _kth_neighbour_distance(x, k, block):
    """(n,) distance from each row of x (n, d) to its k-th nearest other row."""
    n, _ = x.shape
    sq = jnp.sum(x * x, axis=1)
    n_blocks = -(-n // block)
    rows = jnp.arange(n_blocks * block).reshape(n_blocks, block)
    cols = jnp.arange(n)

    def one(r):
        r_c = jnp.minimum(r, n - 1)
        xb = x[r_c]
        d2 = sq[r_c][:, None] + sq[None, :] - 2.0 * jnp.matmul(xb, x.T, precision=HIGHEST)
        d2 = jnp.where(r_c[:, None] == cols[None, :], jnp.inf, d2)
        nbr = _k_smallest(d2, k)                             # (block, k) candidates
        diff = xb[:, None, :] - x[nbr]                       # exact distances to them
        return jnp.sqrt(jnp.max(jnp.sum(diff * diff, axis=-1), axis=-1))

    return lax.map(one, rows).reshape(-1)[:n]


def _knn_entropy_core(x, *, k, block):
    n, d = x.shape
    eps = _kth_neighbour_distance(x, k, block)
    log_vd = 0.5 * d * math.log(math.pi) - gammaln(1.0 + 0.5 * d)
    return (digamma(jnp.asarray(n, x.dtype)) - digamma(jnp.asarray(k, x.dtype)) + log_vd
            + d * jnp.mean(jnp.log(eps)))


_knn_entropy = jax.jit(_knn_entropy_core, static_argnames=("k", "block"))


# ----------------------------------------------------------------------------- spacings

def spacing_entropy(x, *, window_length: int | None = None, method: str = "auto") -> jax.Array:
    """A spacing estimate of h(x) from 1-D samples, as ``scipy.stats.differential_entropy``.

    The formulas are in the module docstring; ``method`` and ``window_length`` are scipy's:
    "vasicek", "van es", "ebrahimi", "correa", or "auto" (van Es for n ≤ 10, Ebrahimi for
    n ≤ 1000, Vasicek above). On the same samples and window the numbers equal scipy's.

    Args:
        x: (n,) samples, n ≥ 3.
        window_length: m, static int with 2 ≤ 2m < n; default ⌊√n + ½⌋.
        method: one of :data:`SPACING_METHODS`.

    Returns:
        () entropy in nats (−∞ if a spacing is 0, i.e. samples repeat).

    Raises:
        ValueError: ``x`` empty, not 1-D, NaN/inf; ``window_length`` out of range; unknown
            ``method``.

    Reference: Vasicek (1976); van Es (1992); Ebrahimi et al. (1994); Correa (1995);
    Noughabi (2015).
    """
    x = as_float_array(x, "x", ndim=1)
    n = x.shape[0]
    if n < 3:
        raise ValueError(f"x must hold at least 3 samples, got {n}")
    if not isinstance(method, str) or method.lower() not in SPACING_METHODS:
        raise ValueError(f"method must be one of {SPACING_METHODS}, got {method!r}")
    method = method.lower()
    if window_length is None:
        window_length = math.floor(math.sqrt(n) + 0.5)
    check_int_in_range(window_length, "window_length", 1, 2**31 - 1)
    if not 2 * window_length < n:
        raise ValueError(f"window_length must satisfy 2 ≤ 2·window_length < n = {n}, "
                         f"got {window_length}")
    if method == "auto":
        method = "van es" if n <= 10 else "ebrahimi" if n <= 1000 else "vasicek"
    return _spacing_entropy(x, m=int(window_length), method=method)


def _pad(xs, m):
    return jnp.concatenate([jnp.full(m, xs[0]), xs, jnp.full(m, xs[-1])])


def _spacing_core(x, *, m, method):
    xs = jnp.sort(x)
    n = xs.shape[0]
    dt = xs.dtype
    if method == "van es":
        diff = xs[m:] - xs[:-m]
        harmonic = float(np.sum(1.0 / np.arange(m, n + 1, dtype=np.float64)))
        return (jnp.sum(jnp.log((n + 1) / m * diff)) / (n - m)
                + (harmonic + math.log(m) - math.log(n + 1)))
    xp = _pad(xs, m)
    if method in ("vasicek", "ebrahimi"):
        diff = xp[2 * m:] - xp[:-2 * m]
        if method == "vasicek":
            return jnp.mean(jnp.log(n / (2 * m) * diff))
        i = jnp.arange(1, n + 1, dtype=dt)
        c = jnp.where(i <= m, 1 + (i - 1) / m, 2.0)
        c = jnp.where(i >= n - m + 1, 1 + (n - i) / m, c)
        return jnp.mean(jnp.log(n * diff / (c * m)))
    # correa: window j = i − m … i + m of the padded order statistics, O(n) memory
    window = lambda off: lax.dynamic_slice_in_dim(xp, off, n)  # noqa: E731
    total = lax.fori_loop(0, 2 * m + 1, lambda o, s: s + window(o), jnp.zeros(n, dt))
    mean = total / (2 * m + 1)

    def moments(o, carry):
        num, den = carry
        dev = window(o) - mean
        return num + (o - m) * dev, den + dev * dev

    num, den = lax.fori_loop(0, 2 * m + 1, moments, (jnp.zeros(n, dt), jnp.zeros(n, dt)))
    return -jnp.mean(jnp.log(num / (n * den)))


_spacing_entropy = jax.jit(_spacing_core, static_argnames=("m", "method"))
