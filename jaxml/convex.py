r"""Norms, Euclidean projections onto convex sets, the prox of the L1 norm, separation.

For a nonempty closed convex set C ⊂ ℝᵈ the projection

    P_C(x) = argmin_{z ∈ C} ½ ‖z - x‖₂²

exists and is unique, and is characterized by the obtuse-angle condition
⟨x − P_C(x), z − P_C(x)⟩ ≤ 0 for every z ∈ C. It is
non-expansive, ‖P_C(x) - P_C(x')‖ ≤ ‖x - x'‖. The separation theorem follows:
for y ∉ C, p = y - P_C(y) and a = pᵀ P_C(y) give a hyperplane
with pᵀ x ≤ a on C and pᵀ y = a + ‖p‖² > a.

Every projection here is exact (closed form, or a sort / finite breakpoint search with a
fixed, static number of steps), acts on the last axis of ``x`` (shape ``(..., d)``; batch by
``jax.vmap``), keeps the floating dtype of ``x``, and works under ``jit``, ``vmap`` and
``grad``. Sizes (``radius``, ``lower``, ...) are traced, so sweeps over them do not recompile.

References:
    Boyd & Vandenberghe, *Convex Optimization* (2004), §2.5 (separation), §8.1 (projection).
    Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient projections onto the l1-ball for
    learning in high dimensions", ICML 2008 (sort-based simplex / L1-ball projection).
    Parikh & Boyd, "Proximal Algorithms" (2014), §6.5 (soft thresholding).
    Helgason, Kennington & Lall, "A polynomially bounded algorithm for a singly constrained
    quadratic program", Math. Programming 18 (1980) (box ∩ hyperplane by breakpoint search).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxml._core import as_float_array, check_nonnegative, check_value, is_concrete, safe_norm
from jaxml._core import (check_loop_options, check_matrix, check_vector, fixed_point,
                         prox_gradient_step, prox_init)

__all__ = [
    "lp_norm", "project_halfspace", "project_hyperplane", "project_l1_ball", "project_l2_ball",
    "project_linf_ball", "project_box", "project_simplex", "project_box_hyperplane",
    "separating_hyperplane", "soft_threshold",
    "convex_combination", "extreme_points", "ConvexCombination", "ExtremePoints",
]


# ----------------------------------------------------------------------------- helpers
def _vec(x, name: str) -> jax.Array:
    """``x`` as a floating array of rank >= 1 (NaN allowed: projections propagate it)."""
    x = as_float_array(x, name, finite=False)
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least 1 dimension, got a scalar")
    return x


def _scalar_like(v, name: str, dtype, *, nonnegative: bool = False) -> jax.Array:
    v = as_float_array(v, name, dtype=dtype, finite=False)
    if nonnegative:
        v = check_nonnegative(v, name, finite=False)   # radius = inf is the whole space
    return v


# ----------------------------------------------------------------------------- norms
def lp_norm(x, p) -> jax.Array:
    r"""The ℓ_p norm over the last axis, ‖x‖_p = (Σᵢ |xᵢ|ᵖ)^(1/p).

    ``p = 1`` (sum of magnitudes), ``2`` (Euclidean), ``inf`` (max magnitude), or any
    ``p >= 1``. The general case is evaluated as m (Σᵢ (|xᵢ|/m)ᵖ)^(1/p) with
    m = maxᵢ |xᵢ|, so large ``p`` neither overflows nor underflows. The gradient at
    ``x = 0`` is 0 (a subgradient) rather than NaN.

    Args:
        x: (..., d) array.
        p: a number ``>= 1`` or ``inf`` (a Python number selects the special cases at trace
            time; a traced ``p`` uses the general formula, with ``inf`` handled).

    Returns:
        (...,) the norms, in the floating dtype of ``x``.
    """
    x = _vec(x, "x")
    kind = "general"
    if isinstance(p, (int, float)) and not isinstance(p, bool):
        if not p >= 1:
            raise ValueError(f"p must be >= 1 (or inf), got {p}")
        kind = {1: "l1", 2: "l2"}.get(p, "linf" if math.isinf(p) else "general")
    else:
        p_arr = jnp.asarray(p)
        if is_concrete(p_arr) and not bool(jnp.all(p_arr >= 1)):
            raise ValueError(f"p must be >= 1 (or inf), got {p}")
    return _lp_norm(x, jnp.asarray(p, x.dtype), kind=kind)


@partial(jax.jit, static_argnames=("kind",))
def _lp_norm(x, p, *, kind: str):
    if kind == "l1":
        return jnp.sum(jnp.abs(x), axis=-1)
    if kind == "l2":
        return safe_norm(x, axis=-1)
    if kind == "linf":
        return jnp.max(jnp.abs(x), axis=-1)
    ax = jnp.abs(x)
    m = jnp.max(ax, axis=-1, keepdims=True)
    safe_m = jnp.where(m > 0, m, 1.0)
    p_fin = jnp.where(jnp.isinf(p), 1.0, p)
    s = jnp.sum((ax / safe_m) ** p_fin, axis=-1) ** (1.0 / p_fin)
    general = jnp.where(m[..., 0] > 0, m[..., 0] * s, 0.0)
    return jnp.where(jnp.isinf(p), m[..., 0], general)


def soft_threshold(x, t) -> jax.Array:
    r"""Soft thresholding, the prox of t‖·‖₁: sign(x)max(|x|-t, 0).

        prox_{t‖·‖₁}(x) = argmin_z ½‖z-x‖² + t‖z‖₁.

    Args:
        x: (...) array.
        t: threshold ``>= 0``, a scalar or broadcastable to ``x``.
    """
    x = as_float_array(x, "x", finite=False)
    t = _scalar_like(t, "t", x.dtype, nonnegative=True)
    return _soft_threshold(x, t)


@jax.jit
def _soft_threshold(x, t):
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0.0)


# ----------------------------------------------------------------------------- sets
def project_halfspace(x, p, a) -> jax.Array:
    r"""Projection onto the halfspace {z : pᵀ z ≤ a}.

        P(x) = x - (max(pᵀ x - a, 0))/(‖p‖²)  p.

    Args:
        x: (..., d) point(s). p: (d,) normal vector, nonzero. a: scalar offset.
    """
    return _project_plane(*_plane_args(x, p, a), halfspace=True)


def project_hyperplane(x, p, a) -> jax.Array:
    r"""Projection onto the hyperplane {z : pᵀ z = a}:
    P(x) = x - (pᵀ x - a)/(‖p‖²) p.

    Args:
        x: (..., d) point(s). p: (d,) normal vector, nonzero. a: scalar offset.
    """
    return _project_plane(*_plane_args(x, p, a), halfspace=False)


def _ball_args(x, radius):
    x = _vec(x, "x")
    return x, _scalar_like(radius, "radius", x.dtype, nonnegative=True)


def _plane_args(x, p, a):
    x = _vec(x, "x")
    p = as_float_array(p, "p", ndim=1, dtype=x.dtype)
    if p.shape[0] != x.shape[-1]:
        raise ValueError(f"p must have shape ({x.shape[-1]},), got {p.shape}")
    # p = 0 defines no plane ({z : 0 ≤ a} is everything or nothing): rejected by name
    p = check_value(p, "p", lambda xp, v: xp.all(v == 0), "must be a nonzero normal vector")
    return x, p, as_float_array(a, "a", ndim=0, dtype=x.dtype)


@partial(jax.jit, static_argnames=("halfspace",))
def _project_plane(x, p, a, *, halfspace: bool):
    """x − (pᵀx − a)/‖p‖² · p, the excess clipped at 0 for the halfspace."""
    excess = x @ p - a
    if halfspace:
        excess = jnp.maximum(excess, 0.0)
    return x - (excess / jnp.dot(p, p))[..., None] * p


def project_l2_ball(x, radius) -> jax.Array:
    r"""Projection onto {z : ‖z‖₂ ≤ r}: x min(1, r/‖x‖₂).

    Args:
        x: (..., d) point(s). radius: scalar ``r >= 0``.
    """
    return _project_l2_ball(*_ball_args(x, radius))


@jax.jit
def _project_l2_ball(x, r):
    nrm = safe_norm(x, axis=-1, keepdims=True)
    scale = jnp.where(nrm > r, r / jnp.where(nrm > r, nrm, 1.0), 1.0)
    return x * scale


def project_linf_ball(x, radius) -> jax.Array:
    r"""Projection onto {z : ‖z‖_∞ ≤ r}: clip every coordinate to ``[-r, r]``.

    Args:
        x: (..., d) point(s). radius: scalar ``r >= 0``.
    """
    x, r = _ball_args(x, radius)
    return _clip(x, -r, r)


def project_box(x, lower, upper) -> jax.Array:
    r"""Projection onto the box {z : l ≤ z ≤ u}: coordinate-wise clipping.

    Args:
        x: (..., d) point(s).
        lower: scalar or (d,) array, ``lower <= upper`` (entries may be -inf).
        upper: scalar or (d,) array (entries may be inf).
    """
    x = _vec(x, "x")
    lo = _scalar_like(lower, "lower", x.dtype)
    hi = _scalar_like(upper, "upper", x.dtype)
    _check_box(lo, hi)
    return _clip(x, lo, hi)


@jax.jit
def _clip(x, lo, hi):
    return jnp.clip(x, lo, hi)


def _check_box(lo, hi) -> None:
    if is_concrete(lo) and is_concrete(hi) and bool(jnp.any(lo > hi)):
        raise ValueError("lower must be <= upper everywhere")


def _sorted_threshold(u: jax.Array, total) -> jax.Array:
    """θ with Σ max(u_i - θ, 0) = total, by the sort-and-cumsum rule (Duchi et al. 2008).

    ``u``: (..., d); ``total``: (...) or scalar, > 0 for a meaningful result.
    """
    d = u.shape[-1]
    s = -jnp.sort(-u, axis=-1)                                   # descending
    css = jnp.cumsum(s, axis=-1) - jnp.asarray(total, u.dtype)[..., None]
    k = jnp.arange(1, d + 1, dtype=u.dtype)
    cond = s - css / k > 0
    rho = jnp.maximum(jnp.sum(cond, axis=-1) - 1, 0)            # last index where cond holds
    return jnp.take_along_axis(css, rho[..., None], axis=-1)[..., 0] / (rho + 1).astype(u.dtype)


def project_simplex(x, total=1.0) -> jax.Array:
    r"""Projection onto the scaled simplex {z : z ≥ 0, Σᵢ zᵢ = s}.

    Exact, O(d log d): with θ chosen by sorting so that
    Σᵢ max(xᵢ - θ, 0) = s, P(x) = max(x - θ, 0)
    (Duchi et al. 2008, Fig. 1).

    Args:
        x: (..., d) point(s). total: scalar ``s > 0`` (the simplex's sum).
    """
    x = _vec(x, "x")
    s = _scalar_like(total, "total", x.dtype, nonnegative=True)
    return _project_simplex(x, s)


@jax.jit
def _project_simplex(x, s):
    theta = _sorted_threshold(x, s)
    return jnp.maximum(x - theta[..., None], 0.0)


def project_l1_ball(x, radius) -> jax.Array:
    r"""Projection onto the L1 ball {z : ‖z‖₁ ≤ r}.

    Exact, by sorting: if ‖x‖₁ ≤ r then P(x) = x, otherwise
    P(x) = soft_threshold(x, θ) with θ > 0 the threshold
    of the simplex projection of |x| onto {Σᵢ zᵢ = r}
    (Duchi et al. 2008, §4).

    Args:
        x: (..., d) point(s). radius: scalar ``r >= 0``.
    """
    return _project_l1_ball(*_ball_args(x, radius))


@jax.jit
def _project_l1_ball(x, r):
    ax = jnp.abs(x)
    inside = jnp.sum(ax, axis=-1) <= r
    theta = jnp.maximum(_sorted_threshold(ax, r), 0.0)
    theta = jnp.where(inside, 0.0, theta)
    return jnp.sign(x) * jnp.maximum(ax - theta[..., None], 0.0)


def project_box_hyperplane(x, y, lower, upper, a=0.0) -> jax.Array:
    r"""Projection onto {z : l ≤ z ≤ u, yᵀ z = a} (the SVM dual's feasible set).

    The KKT conditions give z(ν) = clip(x - ν y, l, u) for the multiplier
    ν of the equality constraint, and g(ν) = yᵀ z(ν) - a is
    nonincreasing and piecewise linear with breakpoints (xᵢ - lᵢ)/yᵢ,
    (xᵢ - uᵢ)/yᵢ. The root is found exactly: a binary search over the sorted
    finite breakpoints (a fixed ⌈log₂(2d+1)⌉ evaluations of g)
    finds the linear piece holding the root; on it the free set F is fixed and

        ν* = (Σ_{i∈F} yᵢ xᵢ + Σ_{i∉F} yᵢ zᵢ − a) / Σ_{i∈F} yᵢ².

    So the result satisfies yᵀ z = a to rounding error, and its derivative (by
    ``jax.grad``) is that of the exact projection on the piece. Infinite bounds are allowed
    (e.g. ``upper=inf`` for the hard-margin SVM dual). If the set is empty
    (a outside [min_{l≤ z≤ u} yᵀ z, max_{l≤ z≤ u} yᵀ z]),
    the box point with yᵀ z closest to a is returned.

    Args:
        x: (d,) point to project (batch with ``jax.vmap``).
        y: (d,) constraint vector (for the SVM: labels ±1).
        lower, upper: scalars or (d,) bounds, ``lower <= upper`` (may be ±inf).
        a: scalar right-hand side.

    Returns:
        (d,) the projection, dtype of ``x``.
    """
    x = as_float_array(x, "x", ndim=1)
    dt = x.dtype
    y = as_float_array(y, "y", ndim=1, dtype=dt)
    if y.shape != x.shape:
        raise ValueError(f"y must have the shape of x {x.shape}, got {y.shape}")
    lo = jnp.broadcast_to(_not_nan(_scalar_like(lower, "lower", dt), "lower"), x.shape)
    hi = jnp.broadcast_to(_not_nan(_scalar_like(upper, "upper", dt), "upper"), x.shape)
    _check_box(lo, hi)
    a = as_float_array(a, "a", dtype=dt)
    return _project_box_hyperplane(x, y, lo, hi, a)


def _not_nan(v, name: str):
    """``v`` checked for NaN (±inf bounds are allowed)."""
    return check_value(v, name, lambda xp, u: xp.isnan(u), "must not be NaN (±inf is allowed)")


@jax.jit
def _project_box_hyperplane(x, y, lo, hi, a):
    d = x.shape[0]
    nz = y != 0
    ysafe = jnp.where(nz, y, 1.0)

    def g(nu):
        return jnp.dot(y, jnp.clip(x - nu * y, lo, hi)) - a

    # Breakpoints; zero y_i and infinite bounds give no breakpoint (stand-in: a finite one).
    xs, ys = lax.stop_gradient(x), lax.stop_gradient(ysafe)
    b = jnp.concatenate([(xs - lo) / ys, (xs - hi) / ys])
    ok = jnp.concatenate([nz, nz]) & jnp.isfinite(b)
    fill = jnp.where(jnp.any(ok), jnp.max(jnp.where(ok, b, -jnp.inf)), 0.0)
    b = jnp.sort(jnp.where(ok, b, fill))
    m = 2 * d
    g_stop = lambda nu: g(lax.stop_gradient(nu))  # noqa: E731

    # Binary search: invariant g(b[lo_i]) >= 0 > g(b[hi_i]), with b[-1] = -inf, b[m] = +inf.
    def body(_, carry):
        i, j = carry
        mid = (i + j) // 2
        pos = lax.stop_gradient(g_stop(b[jnp.clip(mid, 0, m - 1)])) >= 0
        return jnp.where(pos, mid, i), jnp.where(pos, j, mid)

    n_steps = max(1, math.ceil(math.log2(m + 1)))
    i, j = lax.fori_loop(0, n_steps, body, (jnp.int32(-1), jnp.int32(m)))
    left = jnp.where(i >= 0, b[jnp.clip(i, 0, m - 1)], -jnp.inf)
    right = jnp.where(j < m, b[jnp.clip(j, 0, m - 1)], jnp.inf)
    # A point strictly inside the piece [left, right] fixes the free set there.
    inner = jnp.where(jnp.isfinite(left) & jnp.isfinite(right), 0.5 * (left + right),
                      jnp.where(jnp.isfinite(left), left + 1.0, right - 1.0))
    inner = lax.stop_gradient(inner)
    t = xs - inner * lax.stop_gradient(y)
    at_lo = t <= lo
    at_hi = t >= hi
    free = nz & ~at_lo & ~at_hi
    bound = jnp.where(at_lo, lo, jnp.where(at_hi, hi, 0.0))      # finite where selected
    s = jnp.sum(jnp.where(free, y * y, 0.0))
    num = jnp.sum(jnp.where(free, y * x, 0.0)) + jnp.sum(jnp.where(free, 0.0, y * bound)) - a
    s_safe = jnp.where(s > 0, s, 1.0)
    anchor = jnp.where(jnp.isfinite(left), left, jnp.where(jnp.isfinite(right), right, 0.0))
    nu = jnp.where(s > 0, num / s_safe, lax.stop_gradient(anchor))
    nu = jnp.clip(nu, left, right)
    return jnp.clip(x - nu * y, lo, hi)


def separating_hyperplane(y, project: Callable[[jax.Array], jax.Array]):
    r"""A hyperplane separating the point ``y`` from a closed convex set ``C``.

    With q = P_C(y) (``project(y)``), p = y - q and a = pᵀ q:
    the obtuse-angle condition gives pᵀ x ≤ a for all x ∈ C, and
    pᵀ y = a + ‖p‖² > a whenever y ∉ C (the separation theorem).
    If y ∈ C then p = 0: no strict separation exists.

    Args:
        y: (d,) the point.
        project: the Euclidean projection onto ``C``, ``(d,) -> (d,)``, e.g.
            ``lambda z: project_l1_ball(z, 1.0)``.

    Returns:
        ``(p, a)``: (d,) normal and scalar offset.
    """
    y = _vec(y, "y")
    q = project(y)
    p = y - q
    return p, jnp.sum(p * q, axis=-1)


# ----------------------------------------------------------------------------- convex hulls
class ConvexCombination(NamedTuple):
    """The nearest point of the convex hull of given points, as a convex combination.

    Attributes:
        weights: (m,) λ ≥ 0 with Σ λᵢ = 1 (0 for points left out).
        distance: () ‖Σᵢ λᵢ pᵢ − x‖₂, an upper bound on the distance of x to the hull.
        inside: () bool, ``distance <= tol * scale`` (x in the hull up to ``tol``).
        gap: () the Frank–Wolfe duality gap: ½ distance² − ½ dist(x, hull)² ≤ gap.
        scale: () maxᵢ ‖pᵢ − x‖₂ (the unit of ``tol``).
        n_iter: () int32 FISTA steps taken (the last axis for ``extreme_points``).
        converged: () bool, gap ≤ (tol scale)²/8.
        trace: (max_iter,) ½‖Σᵢ λᵢ pᵢ − x‖² per step, NaN past ``n_iter``.
    """

    weights: jax.Array
    distance: jax.Array
    inside: jax.Array
    gap: jax.Array
    scale: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    trace: jax.Array


class ExtremePoints(NamedTuple):
    """Which points of a finite set are extreme (vertices of its convex hull).

    Attributes:
        mask: (m,) bool, point i is extreme (distance to the hull of the others > tol scale).
        distance: (m,) the distance of each point to the convex hull of the others.
        weights: (m, m) row i: the convex combination of the others nearest to point i.
        n_iter: (m,) int32 FISTA steps per point.
        converged: (m,) bool.
        trace: (m, max_iter) objective per step, NaN past ``n_iter``.
    """

    mask: jax.Array
    distance: jax.Array
    weights: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    trace: jax.Array


def _points(points) -> jax.Array:
    """A finite (m, d) point set, m, d ≥ 1; ragged rows named as such."""
    if isinstance(points, (list, tuple)):
        dims = {len(p) if hasattr(p, "__len__") else 0 for p in points}
        if len(dims) > 1:
            raise ValueError(f"points must all have the same dimension, got dimensions "
                             f"{sorted(dims)}")
    return check_matrix(points, "points")


def _hull_tol(tol, dtype):
    """The default relative tolerance: the duality gap (tol s)²/8 must be reachable, ≳ 10 ε s²."""
    return max(1e-6, math.sqrt(80 * float(jnp.finfo(dtype).eps))) if tol is None else tol


def _masked_simplex(v, allowed):
    """Projection onto {λ ≥ 0, Σλ = 1, λᵢ = 0 where not ``allowed``}: excluded coordinates
    are pushed below the threshold (θ ≥ max v − 1), then zeroed."""
    low = jnp.min(v) - 2.0
    return jnp.where(allowed, _project_simplex(jnp.where(allowed, v, low), 1.0), 0.0)


def _nearest_combination(points, x, allowed, tol, *, max_iter: int) -> ConvexCombination:
    """FISTA (fixed step 1/‖B‖_F², adaptive restart) on ½‖Bᵀλ‖², B = points − x."""
    B = points - x
    dt = B.dtype
    Bm = jnp.where(allowed[:, None], B, 0.0)
    lipschitz = jnp.sum(Bm * Bm)            # ≥ λ_max(B Bᵀ) = ‖B‖₂²
    scale2 = jnp.max(jnp.sum(Bm * Bm, axis=1))
    lam0 = allowed.astype(dt) / jnp.sum(allowed)

    def value_and_grad(lam, _):
        r = lam @ B
        return 0.5 * jnp.dot(r, r), B @ r

    def gap(lam):
        g = B @ (lam @ B)
        return jnp.dot(g, lam) - jnp.min(jnp.where(allowed, g, jnp.inf))

    def error(lam, y, gy, t, _):
        return jnp.where(scale2 > 0, gap(lam) / jnp.where(scale2 > 0, scale2, 1.0), 0.0)

    def step(state, _):
        return prox_gradient_step(state, (), value_and_grad=value_and_grad,
                                  prox=lambda v, t, _: _masked_simplex(v, allowed),
                                  accelerated=True, line_search=False, restart=True,
                                  error_fn=error)

    step0 = 1.0 / jnp.where(lipschitz > 0, lipschitz, 1.0)
    res = fixed_point(step, prox_init(lam0, step0), (), tol=tol * tol / 8, max_iter=max_iter)
    lam = res.state.x
    scale = jnp.sqrt(scale2)
    distance = safe_norm(lam @ B)
    return ConvexCombination(lam, distance, distance <= tol * scale, gap(lam), scale,
                             res.n_iter, res.converged, res.trace)


def convex_combination(points, x, *, where=None, tol=None,
                       max_iter: int = 5000) -> ConvexCombination:
    r"""Is x in the convex hull of the points? The nearest convex combination, with weights.

        min_λ ½‖Σᵢ λᵢ pᵢ − x‖₂²   s.t. λ ≥ 0, Σᵢ λᵢ = 1      (λ in the simplex Δₘ)

    is solved by FISTA with adaptive restart and the exact simplex projection
    (:func:`project_simplex`), on B = P − 1xᵀ (so Σᵢ λᵢ pᵢ − x = Bᵀλ). x lies in
    conv{p₁, …, pₘ} iff the minimum is 0. The Frank–Wolfe gap

        gap(λ) = ∇f(λ)ᵀλ − minⱼ ∇f(λ)ⱼ ≥ f(λ) − f*,   ∇f(λ) = B Bᵀλ,

    certifies the answer: the loop stops when gap ≤ (tol s)²/8 with s = maxᵢ ‖pᵢ − x‖, so
    at convergence ``distance`` ≤ dist(x, hull) + tol s / 2. Hence ``inside``
    (distance ≤ tol s) is True for every x in the hull and False for every x farther
    than tol s from it. Outside, r = Σᵢ λᵢ pᵢ − x is the normal of a separating hyperplane
    (the separation theorem). Cost O(m d) per step.

    Args:
        points: (m, d) the points pᵢ as rows.
        x: (d,) the query point.
        where: (m,) bool, the points that may take part (default all; the others get
            λᵢ = 0 by a masked simplex projection), at least one True.
        tol: relative tolerance (of the scale s), ``> 0``; default max(1e-6, √(80 ε)) (1e-6
            in float64, 3e-3 in float32, where the gap cannot get below ~ε s²).
        max_iter: static bound on FISTA steps.

    Returns:
        :class:`ConvexCombination`.

    References:
        Boyd & Vandenberghe, *Convex Optimization* (2004), §2.1.4 (convex hull).
        Beck & Teboulle (2009) (FISTA); Jaggi, "Revisiting Frank–Wolfe", ICML 2013 (gap).
    """
    points = _points(points)
    x = check_vector(x, "x", dtype=points.dtype)
    if x.shape[0] != points.shape[1]:
        raise ValueError(f"x must have the dimension of the points ({points.shape[1]}), "
                         f"got {x.shape[0]}")
    max_iter, tol = check_loop_options(max_iter, _hull_tol(tol, points.dtype),
                                       allow_zero_tol=False)
    if where is None:
        allowed = jnp.ones(points.shape[0], bool)
    else:
        allowed = jnp.asarray(where)
        if allowed.dtype != jnp.bool_ or allowed.shape != points.shape[:1]:
            raise ValueError(f"where must be a boolean array of shape ({points.shape[0]},), "
                             f"got {allowed.dtype} {allowed.shape}")
        allowed = check_value(allowed, "where", lambda xp, v: ~xp.any(v),
                              "must select at least one point")
    return _convex_combination(points, x, allowed, jnp.asarray(tol, points.dtype),
                               max_iter=max_iter)


@partial(jax.jit, static_argnames=("max_iter",))
def _convex_combination(points, x, allowed, tol, *, max_iter):
    return _nearest_combination(points, x, allowed, tol, max_iter=max_iter)


def extreme_points(points, *, tol=None, max_iter: int = 5000) -> ExtremePoints:
    r"""The extreme points (hull vertices) of a finite set, by one hull problem per point.

    Point i is extreme iff it is not a convex combination of the others, i.e. iff its
    distance to conv{pⱼ : j ≠ i} is positive. For each i (``vmap``) the problem of
    :func:`convex_combination` is solved with λᵢ forced to 0 (a masked simplex
    projection), and i is reported extreme when that distance exceeds tol sᵢ,
    sᵢ = max_j ‖pⱼ − pᵢ‖ (see :func:`convex_combination` for the certificate). Repeated
    points are in each other's hull, so none of the copies is reported (scipy's
    ``ConvexHull`` keeps one). Cost O(m² d) per step.

    Args:
        points: (m, d) the points as rows, m ≥ 2.
        tol: relative tolerance, ``> 0``: points within tol sᵢ of the hull of the others
            are not extreme (default as :func:`convex_combination`).
        max_iter: static bound on FISTA steps per point.

    Returns:
        :class:`ExtremePoints`.

    References:
        Rockafellar, *Convex Analysis* (1970), §18 (extreme points); Boyd & Vandenberghe
        (2004), §2.1.4.
    """
    points = _points(points)
    if points.shape[0] < 2:
        raise ValueError(f"points must hold at least 2 points, got {points.shape[0]}")
    max_iter, tol = check_loop_options(max_iter, _hull_tol(tol, points.dtype),
                                       allow_zero_tol=False)
    return _extreme_points(points, jnp.asarray(tol, points.dtype), max_iter=max_iter)


@partial(jax.jit, static_argnames=("max_iter",))
def _extreme_points(points, tol, *, max_iter):
    m = points.shape[0]

    def one(i):
        allowed = jnp.arange(m) != i
        return _nearest_combination(points, points[i], allowed, tol, max_iter=max_iter)

    res = jax.vmap(one)(jnp.arange(m))
    return ExtremePoints(~res.inside, res.distance, res.weights, res.n_iter, res.converged,
                         res.trace)
