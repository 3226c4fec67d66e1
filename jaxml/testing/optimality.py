r"""Optimality checks for a solver's output: KKT residuals, the fixed-point residual of a step,
and the monotonicity of an objective trace (EM, CAVI, Lloyd, gradient descent).

- :func:`check_kkt`: at x, the KKT conditions of  min f(x)  s.t.  h(x) ≤ 0,  e(x) = 0,

      ∇f(x) + J_hᵀλ + J_eᵀμ = 0,   h(x) ≤ 0,   e(x) = 0,   λ ≥ 0,   λᵢhᵢ(x) = 0,

  measured by :func:`jaxml.optim.kkt_residuals` (multipliers estimated by least squares
  when not given), each residual at most ``tol``.
- :func:`check_fixed_point`: ‖T(x) − x‖∞ ≤ atol + rtol·‖x‖∞ for the step map T (a solver's
  output is a fixed point of the step that produced it).
- :func:`check_monotone`: tₖ₊₁ ≥ tₖ − (atol + rtol·max(|tₖ|, |tₖ₊₁|)) for every k (or ≤ when
  decreasing), on a trace padded with NaN past its last step, as every jaxml fit returns.

Reference: J. Nocedal & S. J. Wright, *Numerical Optimization*, 2nd ed., §12.3 (KKT);
A. P. Dempster, N. M. Laird & D. B. Rubin (1977) (EM never decreases the likelihood).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxml import optim
from jaxml.testing.coordinates import (
    Coordinates,
    check_callable,
    check_tolerance,
    flat64,
    fmt,
    same_structure,
)

__all__ = ["FixedPointReport", "MonotoneReport", "check_kkt", "check_fixed_point",
           "check_monotone"]


class FixedPointReport(NamedTuple):
    """What a passing :func:`check_fixed_point` measured.

    Attributes:
        residual: ‖T(x) − x‖∞ over the compared leaves.
        tol: the tolerance it was held to (atol + rtol·‖x‖∞).
        worst: the name of the coordinate where the residual is largest.
    """

    residual: float
    tol: float
    worst: str


class MonotoneReport(NamedTuple):
    """What a passing :func:`check_monotone` measured.

    Attributes:
        n_steps: (batch...) int, the number of finite entries of each trace.
        max_violation: the largest step against the claimed direction, over all traces
            (< 0 when strictly monotone, 0 when no trace has two steps; within tolerance
            on a pass).
        change: (batch...) last finite entry − first entry of each trace.
    """

    n_steps: np.ndarray
    max_violation: float
    change: np.ndarray


def _eps(x) -> float:
    leaves = [jnp.asarray(leaf) for leaf in jax.tree_util.tree_leaves(x)]
    eps = [float(jnp.finfo(leaf.dtype).eps) for leaf in leaves
           if jnp.issubdtype(leaf.dtype, jnp.floating)]
    return max(eps) if eps else float(np.finfo(np.float64).eps)


def check_kkt(f: Callable[[Any], jax.Array], x, *, ineq: Callable | None = None,
              eq: Callable | None = None, lam=None, mu=None,
              tol: float | None = None) -> optim.KKTResiduals:
    r"""Check that ``x`` satisfies the KKT conditions of min f(x) s.t. ineq(x) ≤ 0, eq(x) = 0.

    Args:
        f: pytree -> () the objective.
        x: the candidate point (pytree of floating arrays), e.g. a solver's output.
        ineq: pytree -> (m,) inequality constraint values, feasible when ≤ 0.
        eq: pytree -> (p,) equality constraint values.
        lam: (m,) inequality multipliers (e.g. a dual solver's); ``None``: estimated.
        mu: (p,) equality multipliers; ``None``: estimated.
        tol: the largest residual allowed (default √ε·max(1, ‖∇f(x)‖∞); pass the solver's
            own tolerance scale, e.g. 1e-6 for a solver run to ``tol=1e-8`` on a
            gradient-mapping norm).

    Returns:
        :class:`jaxml.optim.KKTResiduals` (stationarity, primal, dual, complementary, and
        the multipliers used).

    Raises:
        AssertionError: listing every residual and the multipliers when one exceeds ``tol``.
    """
    check_callable(f, "f")
    tol = check_tolerance(tol, "tol")
    kw = {}
    if lam is not None:
        kw["lam"] = lam
    if mu is not None:
        kw["mu"] = mu
    res = optim.kkt_residuals(f, x, ineq=ineq, eq=eq, **kw)
    if tol is None:
        flat, unravel = ravel_pytree(x)
        g = jax.grad(lambda v: f(unravel(v)))(flat)
        tol = float(np.sqrt(_eps(x)) * max(1.0, float(jnp.max(jnp.abs(g), initial=0.0))))
    scalars = {k: float(v) for k, v in res._asdict().items() if jnp.ndim(v) == 0}
    bad = {k: v for k, v in scalars.items() if not v <= tol}
    if bad:
        worst = max(bad, key=lambda k: bad[k] if np.isfinite(bad[k]) else np.inf)
        listing = ", ".join(f"{k} {v:.3g}" for k, v in scalars.items())
        extra = "".join(f"\n    {k} = {np.asarray(v)}" for k, v in res._asdict().items()
                        if jnp.ndim(v) > 0 and np.size(v) <= 20)
        raise AssertionError(f"check_kkt: the {worst} residual {bad[worst]:.4g} exceeds "
                             f"tol {tol:.3g}\n    residuals: {listing}{extra}")
    return res


def check_fixed_point(step: Callable, state, *args, rtol: float | None = None,
                      atol: float = 0.0, has_aux: bool | None = None,
                      select: Callable[[Any], Any] | None = None) -> FixedPointReport:
    r"""Check that ``state`` is a fixed point of ``step``: ‖T(x) − x‖∞ ≤ atol + rtol·‖x‖∞.

    Args:
        step: the step map, called as ``step(state, *args)``; it returns the new state, or
            ``(state, info)`` as every jaxml ``step`` does (bind keyword hyperparameters
            and a random step's key with ``functools.partial`` or a lambda).
        state: the candidate fixed point, e.g. a fit's final state (pytree).
        *args: the step's other positional inputs (data).
        rtol: relative tolerance (default √ε of the state's dtype).
        atol: absolute tolerance (default 0).
        has_aux: whether ``step`` returns ``(state, info)``; ``None``: detected from the
            structure of what it returns.
        select: ``state -> pytree`` picking the part to compare (e.g. drop a step counter);
            default: the whole state.

    Returns:
        :class:`FixedPointReport`.

    Raises:
        AssertionError: naming the coordinate with the largest residual and both values.
    """
    check_callable(step, "step")
    rtol = check_tolerance(rtol, "rtol")
    atol = check_tolerance(atol, "atol") or 0.0
    out = step(state, *args)
    if has_aux is None:
        has_aux = (not same_structure(out, state) and isinstance(out, tuple) and len(out) == 2
                   and same_structure(out[0], state))
    new = out[0] if has_aux else out
    if not same_structure(new, state):
        raise AssertionError("step returned a state of structure "
                             f"{jax.tree_util.tree_structure(new)}, expected "
                             f"{jax.tree_util.tree_structure(state)} (pass has_aux=True when it "
                             "returns (state, info))")
    pick = select if select is not None else (lambda s: s)
    old_p, new_p = pick(state), pick(new)
    a, b = flat64(old_p), flat64(new_p)
    if a.shape != b.shape:
        raise AssertionError(f"step changed the state's shapes: {a.size} -> {b.size} values")
    coords = Coordinates(old_p, "state")
    if rtol is None:
        rtol = float(np.sqrt(_eps(old_p)))
    tol = atol + rtol * float(np.max(np.abs(a), initial=0.0))
    r = np.abs(b - a)
    r = np.where(np.isfinite(r), r, np.inf)
    j = int(np.argmax(r)) if r.size else 0
    res = float(r[j]) if r.size else 0.0
    if res > tol:
        n_bad = int(np.sum(r > tol))
        raise AssertionError(
            f"check_fixed_point: step moves the state at {coords.name(j)}:\n"
            f"    state = {fmt(a[j])}\n    step(state) = {fmt(b[j])}\n"
            f"    |difference| = {res:.4g} > tolerance {tol:.3g} "
            f"({n_bad} of {r.size} coordinates move)")
    return FixedPointReport(res, float(tol), coords.name(j) if r.size else "")


def check_monotone(trace, *, increasing: bool = True, rtol: float | None = None,
                   atol: float = 0.0, n_iter=None) -> MonotoneReport:
    r"""Check that an objective trace never moves the wrong way (beyond rounding).

    Args:
        trace: (..., T) traces along the last axis (a batch of vmapped fits is fine); the
            entries past the last step are NaN and ignored. A NaN followed by a finite
            value, or an inf, fails.
        increasing: ``True`` for an objective that must not decrease (EM log-likelihood,
            ELBO under CAVI); ``False`` for one that must not increase (k-means inertia,
            a loss under gradient descent with line search).
        rtol: relative tolerance per step (default √ε/10: 1.5e-9 in float64, 3.5e-5 in
            float32).
        atol: absolute tolerance per step (default 0).
        n_iter: (...) int, optional: only the first ``n_iter`` entries of each trace count.

    Returns:
        :class:`MonotoneReport`.

    Raises:
        AssertionError: naming the trace (batch index) and the step, with both values.
    """
    t = np.asarray(trace)
    if t.ndim == 0:
        raise ValueError(f"trace must have at least 1 dimension, got shape {t.shape}")
    if not np.issubdtype(t.dtype, np.floating):
        t = t.astype(np.float64)
    rtol = check_tolerance(rtol, "rtol")
    atol = check_tolerance(atol, "atol") or 0.0
    if rtol is None:
        rtol = float(np.sqrt(np.finfo(t.dtype).eps)) / 10
    batch, T = t.shape[:-1], t.shape[-1]
    rows = t.reshape(-1, T).astype(np.float64)
    lim = (np.full(rows.shape[0], T) if n_iter is None
           else np.broadcast_to(np.asarray(n_iter), batch).reshape(-1).astype(int))
    sign = 1.0 if increasing else -1.0
    n_steps = np.zeros(rows.shape[0], int)
    change = np.zeros(rows.shape[0])
    worst = -np.inf

    def label(i):
        return f"trace[{', '.join(map(str, np.unravel_index(i, batch)))}]" if batch else "trace"

    for i, row in enumerate(rows):
        row = row[: max(0, min(int(lim[i]), T))]
        nan = np.isnan(row)
        n = int(np.argmax(nan)) if nan.any() else row.size
        if np.any(~nan[n:]):
            k = n + int(np.argmax(~nan[n:]))
            raise AssertionError(f"check_monotone: {label(i)} has a finite value "
                                 f"({fmt(row[k])}) at step {k} after a NaN at step {n}")
        v = row[:n]
        if np.any(np.isinf(v)):
            k = int(np.argmax(np.isinf(v)))
            raise AssertionError(f"check_monotone: {label(i)} is infinite at step {k}")
        n_steps[i] = n
        if n < 2:
            continue
        change[i] = v[-1] - v[0]
        drop = sign * (v[:-1] - v[1:])          # > 0: a step the wrong way
        tol = atol + rtol * np.maximum(np.abs(v[:-1]), np.abs(v[1:]))
        k = int(np.argmax(drop - tol))
        worst = max(worst, float(drop.max()))
        if drop[k] > tol[k]:
            way = "decreases" if increasing else "increases"
            n_bad = int(np.sum(drop > tol))
            raise AssertionError(
                f"check_monotone: {label(i)} {way} at step {k} → {k + 1}: "
                f"{fmt(v[k])} → {fmt(v[k + 1])} (by {drop[k]:.4g} > tolerance {tol[k]:.3g}; "
                f"{n_bad} of {n - 1} steps go the wrong way)")
    worst = float(worst) if np.isfinite(worst) else 0.0     # no pair of steps to compare
    return MonotoneReport(n_steps.reshape(batch), worst, change.reshape(batch))
