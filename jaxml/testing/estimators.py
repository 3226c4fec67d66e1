r"""Estimator checks: is a stochastic estimator unbiased, and does it have lower variance than
another?

An *estimator* here is a function of a PRNG key returning an array or pytree (an ELBO
estimate, a gradient estimate, a Monte Carlo integral). Each check draws ``n_draws``
independent values with ``jax.vmap`` over split keys (or ``jax.lax.map`` in batches of
``batch_size``), so the estimator must be traceable; the statistics are computed in float64
NumPy on the host.

**Unbiasedness.** For each of the d scalar coordinates, with draws g₁..gₙ,

    zⱼ = (ḡⱼ − exactⱼ) / SEⱼ,     SEⱼ = sⱼ / √n   (sⱼ the sample standard deviation),

and the check fails when maxⱼ |zⱼ| exceeds Φ⁻¹(1 − α/(2d)) (Bonferroni over the d
coordinates), so an unbiased estimator fails with probability at most α (asymptotically in
n, by the central limit theorem: use n ≥ 100, more for heavy-tailed estimators such as
score-function gradients). SEⱼ is floored at a few ε of the values, so a zero-variance
estimator that equals the exact value up to rounding passes.

**Variance reduction.** With total variances T = E‖g − E g‖² (the trace of the
covariance) of A and B, the check passes when the one-sided (1 − α) upper confidence bound
on T_A / T_B is below ``ratio``. The bound uses the delta method on
log T̂_A − log T̂_B: with qₖ = ‖gₖ − ḡ‖², the per-draw influence
uₖ = q_Aₖ / T̂_A − q_Bₖ / T̂_B gives SE² = Var(u) / n. This uses no normality assumption
(unlike an F-test, whose level is wrong under any excess kurtosis) and stays valid when A and
B are drawn with the same keys (``paired=True``, common random numbers, the default), where
the correlation between the two estimators sharpens the bound.

Reference: A. B. Owen, *Monte Carlo theory, methods and examples* (2013), ch. 2 and 8
(error estimation, common random numbers); D. R. Cox & D. V. Hinkley, *Theoretical
Statistics* (1974), the delta method.
"""

from __future__ import annotations

import math
from functools import partial
from statistics import NormalDist
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from jaxml.testing.coordinates import (
    Coordinates,
    check_callable,
    check_count,
    check_probability,
    flat64,
    fmt,
    same_shapes,
    same_structure,
)

__all__ = ["UnbiasedReport", "VarianceReport", "draw", "check_unbiased", "check_mean",
           "check_variance_reduction"]


class UnbiasedReport(NamedTuple):
    """What a passing :func:`check_unbiased` measured.

    Attributes:
        mean: the mean of the draws, a pytree like ``exact``.
        stderr: the standard error of that mean, a pytree like ``exact``.
        max_abs_z: () the largest |z| over the coordinates.
        threshold: () the Bonferroni z threshold Φ⁻¹(1 − α/(2d)).
        n_draws: the number of draws.
    """

    mean: Any
    stderr: Any
    max_abs_z: float
    threshold: float
    n_draws: int


class VarianceReport(NamedTuple):
    """What a passing :func:`check_variance_reduction` measured.

    Attributes:
        variance_a: () total variance (trace of the covariance) of A's draws.
        variance_b: () total variance of B's draws.
        ratio: () variance_a / variance_b.
        ratio_upper: () the one-sided (1 − α) upper confidence bound on that ratio.
        n_draws: the number of draws of each.
    """

    variance_a: float
    variance_b: float
    ratio: float
    ratio_upper: float
    n_draws: int


@partial(jax.jit, static_argnames=("estimator", "n_draws", "batch_size"))
def _draws_core(key, *, estimator, n_draws, batch_size):
    keys = jax.random.split(key, n_draws)
    if batch_size is None:
        return jax.vmap(estimator)(keys)
    return jax.lax.map(estimator, keys, batch_size=batch_size)


def draw(key: jax.Array, estimator: Callable[[jax.Array], Any], n_draws: int, *,
         batch_size: int | None = None) -> Any:
    """``n_draws`` independent draws of ``estimator`` (one compiled call, cached per
    estimator object and size).

    Args:
        key: PRNG key, split into ``n_draws`` keys.
        estimator: ``key -> pytree``, traceable.
        n_draws: number of draws (static).
        batch_size: evaluate this many draws at a time with ``jax.lax.map`` (bounds memory);
            ``None``: all at once with ``jax.vmap``.

    Returns:
        the estimator's pytree with a leading (n_draws,) axis on every leaf.
    """
    check_callable(estimator, "estimator")
    n_draws = check_count(n_draws, "n_draws", 2)
    if batch_size is not None:
        batch_size = check_count(batch_size, "batch_size")
    return _draws_core(key, estimator=estimator, n_draws=n_draws, batch_size=batch_size)


def _flat_draws(draws, n: int) -> np.ndarray:
    """(n, d) float64: each draw raveled in ``ravel_pytree`` order."""
    leaves = jax.tree_util.tree_leaves(draws)
    return np.concatenate([np.asarray(leaf, np.float64).reshape(n, -1) for leaf in leaves], axis=1)


def _check_finite_draws(flat: np.ndarray, coords: Coordinates, label: str) -> None:
    bad = ~np.isfinite(flat)
    if bad.any():
        k, j = np.argwhere(bad)[0]
        raise AssertionError(f"{label} returned a non-finite value ({flat[k, j]}) at "
                             f"{coords.name(j)} in draw {k} ({int(bad.any(1).sum())} of "
                             f"{flat.shape[0]} draws hold NaN/inf)")


def check_unbiased(key: jax.Array, estimator: Callable[[jax.Array], Any], exact: Any,
                   n_draws: int = 1000, *, alpha: float = 1e-3,
                   batch_size: int | None = None) -> UnbiasedReport:
    r"""Check that the mean of ``estimator``'s draws equals ``exact`` within the draws' own
    standard error (a z-test per coordinate, Bonferroni over coordinates).

    Args:
        key: PRNG key (split into ``n_draws`` keys).
        estimator: ``key -> pytree`` (arrays of any shapes), the stochastic estimator.
        exact: the exact expectation, a pytree like one draw (leaves broadcastable to it).
        n_draws: number of independent draws (≥ 2; ≥ 100 for the normal approximation).
        alpha: the false-alarm rate: an unbiased estimator fails with probability ≤ alpha.
        batch_size: draws evaluated at a time with ``lax.map`` (``None``: all with vmap).

    Returns:
        :class:`UnbiasedReport`.

    Raises:
        AssertionError: naming the coordinate with the largest |z| (pytree path and index),
            the draws' mean, the exact value, the standard error and z; or a non-finite draw.
    """
    alpha = check_probability(alpha, "alpha")
    draws = draw(key, estimator, n_draws, batch_size=batch_size)
    return _mean_test(draws, exact, alpha, "estimator", "check_unbiased")


def check_mean(draws: Any, exact: Any, *, alpha: float = 1e-3,
               label: str = "draws") -> UnbiasedReport:
    r"""Check that the mean of draws you already hold equals ``exact`` within their own
    standard error: the test of :func:`check_unbiased` (a z-test per coordinate, Bonferroni
    over coordinates) on draws from any source (a sampler called once for n values, NumPy,
    a Markov chain thinned to independence, the output of :func:`draw`).

    Args:
        draws: a pytree whose leaves have a leading (n_draws, …) axis of independent draws
            (n_draws ≥ 2, the same on every leaf; ≥ 100 for the normal approximation).
        exact: the exact expectation, a pytree like one draw (leaves broadcastable to it).
        alpha: the false-alarm rate: draws with mean ``exact`` fail with probability ≤ alpha
            (the z threshold is Φ⁻¹(1 − α/(2d)) over d scalar coordinates: 3.29 for one
            coordinate at α = 1e-3, 3.89 at α = 1e-4).
        label: how the report names what produced the draws.

    Returns:
        :class:`UnbiasedReport`.

    Raises:
        AssertionError: naming the coordinate with the largest |z|, the draws' mean, the exact
            value, the standard error and z; or a non-finite draw.
        ValueError: leaves with different leading lengths, fewer than 2 draws, or ``exact``
            of another structure.
    """
    alpha = check_probability(alpha, "alpha")
    return _mean_test(draws, exact, alpha, str(label), "check_mean")


def _mean_test(draws, exact, alpha: float, label: str, what: str) -> UnbiasedReport:
    leaves = jax.tree_util.tree_leaves(draws)
    if not leaves or any(np.ndim(leaf) == 0 for leaf in leaves):
        raise ValueError("draws must be a pytree of arrays with a leading (n_draws,) axis")
    n_draws = int(np.shape(leaves[0])[0])
    if any(int(np.shape(leaf)[0]) != n_draws for leaf in leaves):
        raise ValueError("every leaf of draws must have the same leading length (n_draws), got "
                         f"{sorted({int(np.shape(leaf)[0]) for leaf in leaves})}")
    if n_draws < 2:
        raise ValueError(f"draws must hold at least 2 draws, got {n_draws}")
    one = jax.tree.map(lambda a: a[0], draws)
    if not same_structure(one, exact):
        raise ValueError(f"exact must have the structure of one draw: got "
                         f"{jax.tree_util.tree_structure(exact)}, draws have "
                         f"{jax.tree_util.tree_structure(one)}")
    exact = jax.tree.map(lambda e, a: np.broadcast_to(np.asarray(e, np.float64), np.shape(a)),
                         exact, one)
    coords = Coordinates(one, "estimate")
    flat = _flat_draws(draws, n_draws)
    _check_finite_draws(flat, coords, label)
    ex = flat64(exact)
    if not np.all(np.isfinite(ex)):
        raise ValueError("exact contains NaN or inf")
    mean = flat.mean(0)
    se = flat.std(0, ddof=1) / math.sqrt(n_draws)
    floor = 4 * coords.eps * (np.abs(ex) + np.abs(flat).mean(0))
    se_eff = np.sqrt(se ** 2 + floor ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(mean == ex, 0.0, (mean - ex) / se_eff)
    d = flat.shape[1]
    threshold = -NormalDist().inv_cdf(alpha / (2 * d))
    j = int(np.argmax(np.abs(z)))
    if abs(z[j]) > threshold:
        n_bad = int(np.sum(np.abs(z) > threshold))
        raise AssertionError(
            f"{what}: the mean of the {label} differs from the exact value at "
            f"{coords.name(j)}:\n"
            f"    mean of {n_draws} draws = {fmt(mean[j])}\n"
            f"    exact = {fmt(ex[j])}\n"
            f"    standard error = {se_eff[j]:.4g}, z = {z[j]:.2f}; |z| > {threshold:.2f} "
            f"(Bonferroni over {d} coordinates at alpha = {alpha:g})\n"
            f"  {n_bad} of {d} coordinates fail")
    return UnbiasedReport(coords.unflatten(mean), coords.unflatten(se_eff),
                          float(np.max(np.abs(z), initial=0.0)), float(threshold), n_draws)


def check_variance_reduction(key: jax.Array, estimator_a: Callable[[jax.Array], Any],
                             estimator_b: Callable[[jax.Array], Any],
                             n_draws: int = 1000, *, alpha: float = 1e-3, ratio: float = 1.0,
                             paired: bool = True,
                             batch_size: int | None = None) -> VarianceReport:
    r"""Check that ``estimator_a`` has a lower total variance than ``estimator_b``: the
    (1 − α) upper confidence bound on Var[A] / Var[B] must be below ``ratio``.

    Args:
        key: PRNG key.
        estimator_a: ``key -> pytree``, the estimator claimed better.
        estimator_b: ``key -> pytree`` of the same structure and shapes, the baseline.
        n_draws: draws of each (≥ 2; a few hundred or more for a useful bound).
        alpha: the false-alarm rate: when Var[A] ≥ ratio·Var[B] the check passes with
            probability ≤ alpha.
        ratio: the claimed bound on Var[A]/Var[B] (1: "lower"; 0.5: "at least halves").
        paired: draw A and B with the same keys (common random numbers); ``False``: with
            independent keys.
        batch_size: as in :func:`check_unbiased`.

    Returns:
        :class:`VarianceReport`.

    Raises:
        AssertionError: with both variances, the estimated ratio and its upper bound.
    """
    alpha = check_probability(alpha, "alpha")
    ratio = float(ratio)
    if not (np.isfinite(ratio) and ratio > 0):
        raise ValueError(f"ratio must be a positive finite number, got {ratio!r}")
    check_callable(estimator_b, "estimator_b")
    draws_a = draw(key, estimator_a, n_draws, batch_size=batch_size)
    key_b = key if paired else jax.random.fold_in(key, 1)
    draws_b = draw(key_b, estimator_b, n_draws, batch_size=batch_size)
    one_a = jax.tree.map(lambda a: a[0], draws_a)
    one_b = jax.tree.map(lambda a: a[0], draws_b)
    if not same_shapes(one_a, one_b):
        raise ValueError("estimator_a and estimator_b must return pytrees of the same "
                         "structure and shapes")
    fa, fb = _flat_draws(draws_a, n_draws), _flat_draws(draws_b, n_draws)
    _check_finite_draws(fa, Coordinates(one_a, "estimate"), "estimator_a")
    _check_finite_draws(fb, Coordinates(one_b, "estimate"), "estimator_b")
    qa = np.sum((fa - fa.mean(0)) ** 2, axis=1)
    qb = np.sum((fb - fb.mean(0)) ** 2, axis=1)
    ta, tb = qa.sum() / (n_draws - 1), qb.sum() / (n_draws - 1)
    z = -NormalDist().inv_cdf(alpha)
    if tb == 0.0:
        est, upper = (math.nan if ta == 0 else math.inf), math.inf
    elif ta == 0.0:
        est, upper = 0.0, 0.0
    else:
        u = qa / ta - qb / tb
        se = float(np.std(u, ddof=1)) / math.sqrt(n_draws)
        est = ta / tb
        upper = math.exp(math.log(est) + z * se)
    if not upper < ratio:
        raise AssertionError(
            f"check_variance_reduction: cannot show Var[A] < {ratio:g}·Var[B]:\n"
            f"    Var[A] = {ta:.6g}, Var[B] = {tb:.6g} (total variances over {n_draws} draws)\n"
            f"    Var[A]/Var[B] = {est:.4g}, one-sided {100 * (1 - alpha):g}% upper bound "
            f"{upper:.4g} ≥ {ratio:g}")
    return VarianceReport(float(ta), float(tb), float(est), float(upper), n_draws)
