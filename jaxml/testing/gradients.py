r"""Derivative checks: a hand-written gradient, JVP or Jacobian against autodiff and against
central finite differences, on pytrees.

Each check compares the hand-written derivative H with two references:

- **autodiff** (``jax.grad`` / ``jax.jvp`` / ``jax.jacobian`` of ``f``): exact up to rounding,
  so the tolerance is tight,

      |H − J| ≤ atol + rtol·(|J| + ε^¼·sᵣ) + 100·ε·|f(x)ᵣ| / max(‖x‖∞, 1),

  with ε the machine epsilon of the less precise of the input and output dtypes (float32 or
  float64), rtol = √ε by default, and sᵣ = maxⱼ |Jᵣⱼ| the scale of output r's row (so a
  coordinate of a row whose other entries are large is judged against that row's rounding,
  and an exactly-zero row against f's own size);
- **central finite differences** Dₕ = (f(x + h·e) − f(x − h·e)) / 2h with h = ε^⅓·max(|xⱼ|, 1)
  (rounded to a representable step), tolerance

      |H − Dₕ| ≤ atol + fd_rtol·(|Dₕ| + ε^¼·sᵣ) + 2·|Dₕ − D₂ₕ| + 10·ε·max|f|/h + (f term above),

  fd_rtol = 10·√ε: the Richardson difference |Dₕ − D₂ₕ| estimates the truncation error
  from the data and 10·ε·max|f|/h the rounding noise of the difference quotient, so a smooth
  f passes in float32 and float64 alike, while a dropped factor, a sign error or a
  coordinate mixed up with another is off by O(|J|) and fails.

A failure raises ``AssertionError`` naming the worst coordinate (pytree path and index, e.g.
``x['w'][2, 1]``), the hand-written value, the reference (and the other reference), the
difference and the tolerance, and the next worst coordinates. A pass returns a
:class:`GradientReport`.

Cost: the autodiff reference is one ``jax.jacrev`` (or ``jacfwd`` when there are more
outputs than inputs) of f; finite differences take 4 evaluations of f per checked input
coordinate (at most ``max_coordinates`` coordinates, a random subset drawn with ``subset_key``
beyond that), batched with ``jax.vmap``, so f must be vmappable (or pass ``batched=False``).

Reference: J. Nocedal & S. J. Wright, *Numerical Optimization*, 2nd ed., §8.1 (finite-
difference derivative approximations and their error); L. F. Richardson (1911).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxml.testing.coordinates import (
    Coordinates,
    check_callable,
    check_count,
    check_floating_tree,
    check_tolerance,
    flat64,
    fmt,
    same_shapes,
)

__all__ = ["GradientReport", "check_gradient", "check_jvp", "check_jacobian"]


class GradientReport(NamedTuple):
    """What a passing derivative check measured.

    Attributes:
        autodiff_error: largest |hand-written − autodiff| over the compared entries
            (NaN when ``autodiff=False``).
        fd_error: largest |hand-written − finite differences| (NaN when
            ``finite_differences=False``).
        autodiff_ratio: largest |difference| / tolerance against autodiff (≤ 1 on a pass).
        fd_ratio: the same against finite differences.
        n_checked: how many entries were compared with finite differences.
    """

    autodiff_error: float
    fd_error: float
    autodiff_ratio: float
    fd_ratio: float
    n_checked: int


# --------------------------------------------------------------------------- plumbing

def _compare(test, ref, tol, name_of, what: str, test_label: str, ref_label: str,
             other=None, other_label: str = ""):
    """Raise AssertionError when some |test − ref| > tol; else (max |diff|, max ratio)."""
    test = np.asarray(test, np.float64)
    ref = np.asarray(ref, np.float64)
    diff = np.abs(test - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / tol)
    ratio = np.where(np.isfinite(test) & np.isfinite(ref), ratio, np.inf)
    if ratio.size == 0:
        return 0.0, 0.0
    order = np.argsort(-ratio, axis=None, kind="stable")
    worst = np.unravel_index(order[0], ratio.shape)
    if ratio[worst] <= 1.0:
        return float(diff.max()), float(ratio.max())
    n_bad = int(np.sum(ratio > 1.0))
    lines = [f"{what}: {test_label} disagrees with {ref_label} at {name_of(*worst)}:",
             f"    {test_label} = {fmt(test[worst])}",
             f"    {ref_label} = {fmt(ref[worst])}"]
    if other is not None:
        lines.append(f"    {other_label} = {fmt(np.asarray(other)[worst])}")
    if not np.isfinite(ref[worst]):
        lines.append(f"    ({ref_label} is not finite here: check f, or the finite-difference "
                     f"step)")
    lines.append(f"    |difference| = {fmt(diff[worst])} > tolerance {float(tol[worst]):.3g}")
    lines.append(f"  {n_bad} of {ratio.size} compared entries fail")
    more = []
    for k in order[1:5]:
        idx = np.unravel_index(k, ratio.shape)
        if ratio[idx] <= 1.0:
            break
        more.append(f"{name_of(*idx)} ({fmt(test[idx])} vs {fmt(ref[idx])})")
    if more:
        lines.append("  next worst: " + "; ".join(more))
    raise AssertionError("\n".join(lines))


def _flatten_layout(jac, y, x, label: str) -> np.ndarray:
    """(m, n) float64 matrix from a derivative in ``jax.jacobian(f)(x)``'s layout: the
    structure of f(x) with each leaf replaced by the structure of x, leaf (i, j) of shape
    ``out_shape_i + in_shape_j`` (for a scalar f: a pytree like x)."""
    expected = jax.tree_util.tree_structure(jax.tree.map(lambda _: x, y))
    got = jax.tree_util.tree_structure(jac)
    if got != expected:
        raise AssertionError(f"{label} returned a pytree of structure {got}, expected {expected} "
                             f"(jax.jacobian's layout: f(x)'s structure of x's structure)")
    out_leaves = jax.tree_util.tree_leaves(y)
    in_leaves = jax.tree_util.tree_leaves(x)
    leaves = jax.tree_util.tree_leaves(jac)
    rows = []
    for i, yo in enumerate(out_leaves):
        blocks = []
        for j, xi in enumerate(in_leaves):
            leaf = np.asarray(leaves[i * len(in_leaves) + j])
            want = tuple(np.shape(yo)) + tuple(np.shape(xi))
            if leaf.shape != want:
                raise AssertionError(f"{label} returned a block of shape {leaf.shape} for output "
                                     f"leaf {i}, input leaf {j}; expected {want}")
            blocks.append(leaf.astype(np.float64).reshape(int(np.size(yo)), int(np.size(xi))))
        rows.append(np.concatenate(blocks, axis=1))
    return np.concatenate(rows, axis=0)


def _flat_fn(f, unravel):
    return lambda v: ravel_pytree(f(unravel(v)))[0]


def _round_to(values: np.ndarray, dtypes: list, cols: np.ndarray) -> np.ndarray:
    """``values`` (…, k) rounded to the dtype of each input coordinate in ``cols``."""
    out = np.array(values, np.float64)
    for dt in set(dtypes[c] for c in cols):
        sel = np.array([dtypes[c] == dt for c in cols])
        out[..., sel] = np.asarray(out[..., sel]).astype(dt).astype(np.float64)
    return out


def _coordinate_dtypes(x) -> list:
    dts = []
    for leaf in jax.tree_util.tree_leaves(x):
        dts += [np.dtype(jnp.asarray(leaf).dtype)] * int(np.size(leaf))
    return dts


def _evaluate(fflat, pts, dtype, batched: bool) -> np.ndarray:
    """f at each row of ``pts`` (k, n): one jitted vmap, or one plain call per row."""
    pts = jnp.asarray(pts, dtype)
    if batched:
        return np.asarray(jax.jit(jax.vmap(fflat))(pts), np.float64)
    return np.stack([np.asarray(fflat(p), np.float64) for p in pts])


def _finite_differences(fflat, flat_x, cols, dtypes, eps_in, step, batched=True,
                        richardson=True):
    """Central differences along the coordinates ``cols``: (D_h, |D_h − D_2h|, max|f|/h),
    each (m, k); without ``richardson`` the ±2h points are not evaluated (|D_h − D_2h| = 0)."""
    x64 = np.asarray(flat_x, np.float64)
    xc = x64[cols]
    if step is None:
        h = eps_in[cols] ** (1.0 / 3.0) * np.maximum(np.abs(xc), 1.0)
    else:
        h = np.broadcast_to(np.asarray(step, np.float64), xc.shape)
    offsets = np.stack([h, -h, 2 * h, -2 * h] if richardson else [h, -h])    # (4 or 2, k)
    moved = _round_to(xc[None, :] + offsets, dtypes, cols)         # representable points
    k, p = len(cols), len(offsets)
    pts = np.repeat(x64[None, :], p * k, axis=0)
    rows = np.arange(p * k)
    pts[rows, np.tile(cols, p)] = moved.reshape(-1)
    vals = _evaluate(fflat, pts, flat_x.dtype, batched).reshape(p, k, -1)  # (p, k, m)
    d1 = (moved[0] - moved[1])[:, None]
    D1 = (vals[0] - vals[1]) / d1
    F = np.max(np.abs(vals), axis=0) / d1
    if not richardson:
        return D1.T, np.zeros_like(D1.T), F.T
    d2 = (moved[2] - moved[3])[:, None]
    D2 = (vals[2] - vals[3]) / d2
    return D1.T, np.abs(D1 - D2).T, F.T


def _choose_columns(n: int, max_coordinates: int | None, key) -> np.ndarray:
    if max_coordinates is None or n <= max_coordinates:
        return np.arange(n)
    key = jax.random.key(0) if key is None else key
    return np.sort(np.asarray(jax.random.choice(key, n, (max_coordinates,), replace=False)))


def _defaults(eps, rtol, fd_rtol):
    rtol = np.sqrt(eps) if rtol is None else np.full_like(eps, rtol)
    fd_rtol = 10 * np.sqrt(eps) if fd_rtol is None else np.full_like(eps, fd_rtol)
    return rtol, fd_rtol


def _check_options(rtol, atol, fd_rtol, step, max_coordinates):
    rtol = check_tolerance(rtol, "rtol")
    atol = check_tolerance(atol, "atol") or 0.0
    fd_rtol = check_tolerance(fd_rtol, "fd_rtol")
    if step is not None:
        s = np.asarray(step, np.float64)
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(f"step must be positive and finite, got {step!r}")
    if max_coordinates is not None:
        max_coordinates = check_count(max_coordinates, "max_coordinates")
    return rtol, atol, fd_rtol, max_coordinates


def _start(f, df, df_name: str, x, rtol, atol, fd_rtol, step, max_coordinates):
    """Check the common arguments; return f(x) and the checked options."""
    check_callable(f, "f")
    check_callable(df, df_name)
    check_floating_tree(x, "x")
    return f(x), _check_options(rtol, atol, fd_rtol, step, max_coordinates)


def _check_matrix(what, label, ref_label, f, x, y, hand, *, rtol, atol, fd_rtol, step,
                  autodiff, finite_differences, max_coordinates, subset_key, name_of,
                  richardson=True, batched=True):
    """Compare the (m, n) hand-written Jacobian ``hand`` with autodiff and finite differences."""
    flat_x, unravel = ravel_pytree(x)
    fflat = _flat_fn(f, unravel)
    cin, cout = Coordinates(x, "x"), Coordinates(y, "f(x)")
    m, n = hand.shape
    eps = np.maximum(cout.eps[:, None], cin.eps[None, :])
    rtol, fd_rtol = _defaults(eps, rtol, fd_rtol)
    quarter = eps ** 0.25
    x64 = np.asarray(flat_x, np.float64)
    xscale = max(float(np.max(np.abs(x64), initial=0.0)), 1.0)
    fterm = 100 * eps * np.abs(flat64(y))[:, None] / xscale
    nan = float("nan")
    ad_err = ad_ratio = fd_err = fd_ratio = nan
    J = None
    if autodiff:
        jac = jax.jacrev(fflat) if m <= n else jax.jacfwd(fflat)
        J = np.asarray(jax.jit(jac)(flat_x), np.float64).reshape(m, n)
        s = np.max(np.abs(J), axis=1, initial=0.0)[:, None]
        tol = atol + rtol * (np.abs(J) + quarter * s) + fterm
        ad_err, ad_ratio = _compare(hand, J, tol, name_of, what, label, ref_label)
    n_checked = 0
    if finite_differences:
        cols = _choose_columns(n, max_coordinates, subset_key)
        D, rich, noise = _finite_differences(fflat, flat_x, cols, _coordinate_dtypes(x),
                                             cin.eps, step, batched, richardson)
        ref_rows = J if J is not None else D
        s = np.max(np.abs(ref_rows), axis=1, initial=0.0)[:, None]
        e = eps[:, cols]
        tol = (atol + fd_rtol[:, cols] * (np.abs(D) + quarter[:, cols] * s)
               + (2 * rich if richardson else 0.0)
               + 10 * e * noise + fterm[:, cols])
        fd_err, fd_ratio = _compare(
            hand[:, cols], D, tol, lambda r, c: name_of(r, cols[c]), what, label,
            "finite differences", other=None if J is None else J[:, cols],
            other_label=ref_label)
        n_checked = int(m * len(cols))
    return GradientReport(ad_err, fd_err, ad_ratio, fd_ratio, n_checked)


# --------------------------------------------------------------------------- public

def check_gradient(f: Callable[[Any], jax.Array], grad_f: Callable[[Any], Any], x, *,
                   rtol: float | None = None, atol: float = 0.0, fd_rtol: float | None = None,
                   step=None, autodiff: bool = True, finite_differences: bool = True,
                   max_coordinates: int | None = 100, subset_key=None,
                   richardson: bool = True, batched: bool = True) -> GradientReport:
    r"""Check a hand-written gradient ``grad_f`` of a scalar ``f`` against ``jax.grad`` and
    central finite differences at ``x``.

    Args:
        f: pytree -> () the function (differentiable by JAX for the autodiff check,
            vmappable for the finite-difference check).
        grad_f: pytree -> pytree like ``x``, the hand-written ∇f.
        x: the point, a pytree of floating arrays (any shapes).
        rtol: relative tolerance against autodiff (default √ε of the dtype: 1.5e-8 in
            float64, 3.5e-4 in float32).
        atol: absolute tolerance added to both comparisons (default 0).
        fd_rtol: relative tolerance against finite differences (default 10·√ε).
        step: finite-difference step, a number or an (n,) array over the raveled ``x``
            (default ε^⅓·max(|xⱼ|, 1)); pass a smaller one where f is only defined near x.
        autodiff: compare with ``jax.grad`` (turn off when f is not JAX-differentiable).
        finite_differences: compare with central differences.
        max_coordinates: at most this many coordinates are differenced (a random subset
            drawn with ``subset_key`` beyond that; ``None``: all). Autodiff covers every
            coordinate.
        subset_key: PRNG key for that subset (default ``jax.random.key(0)``).
        richardson: add the truncation estimate 2·|Dₕ − D₂ₕ| to the finite-difference
            tolerance (default); ``False``: hold |H − Dₕ| to the fd_rtol and atol terms
            alone, e.g. with a ``step`` chosen for an iterative f (a converged fit) whose
            noise should not widen the tolerance (f is then evaluated at x ± h only: 2
            points per coordinate instead of 4).
        batched: evaluate the finite-difference points in one jitted ``jax.vmap`` of f
            (default); ``False``: one plain call of f per point, for an f that cannot be
            vmapped or is cheaper called as it is (a jaxml fit, whose compiled core is
            cached per shape, where a vmapped copy would compile anew).

    Returns:
        :class:`GradientReport` when every compared coordinate is within tolerance.

    Raises:
        AssertionError: naming the worst coordinate (e.g. ``x['w'][2, 1]``), both values,
            the difference and the tolerance.
    """
    y, (rtol, atol, fd_rtol, max_coordinates) = _start(f, grad_f, "grad_f", x, rtol, atol,
                                                        fd_rtol, step, max_coordinates)
    if len(jax.tree_util.tree_leaves(y)) != 1 or jnp.shape(jax.tree_util.tree_leaves(y)[0]) != ():
        raise TypeError("f must return a scalar; use check_jacobian or check_jvp for a "
                        f"vector-valued f (got {jax.tree.map(jnp.shape, y)})")
    y = jax.tree_util.tree_leaves(y)[0]
    hand = _flatten_layout(grad_f(x), y, x, "grad_f")
    cin = Coordinates(x, "x")
    return _check_matrix("check_gradient", "grad_f", "jax.grad", f, x, y, hand, rtol=rtol,
                         atol=atol, fd_rtol=fd_rtol, step=step, autodiff=autodiff,
                         finite_differences=finite_differences,
                         max_coordinates=max_coordinates, subset_key=subset_key,
                         name_of=lambda r, c: cin.name(c), richardson=richardson,
                         batched=batched)


def check_jacobian(f: Callable[[Any], Any], jac_f: Callable[[Any], Any], x, *,
                   rtol: float | None = None, atol: float = 0.0, fd_rtol: float | None = None,
                   step=None, autodiff: bool = True, finite_differences: bool = True,
                   max_coordinates: int | None = 100, subset_key=None,
                   richardson: bool = True, batched: bool = True) -> GradientReport:
    r"""Check a hand-written Jacobian ``jac_f`` of a vector (pytree) function ``f`` against
    ``jax.jacobian`` and central finite differences at ``x``.

    Args:
        f: pytree -> pytree (leaves of any shapes).
        jac_f: pytree -> the Jacobian in ``jax.jacobian(f)(x)``'s layout: for f: (n,) → (m,),
            an (m, n) array; in general f(x)'s structure with each leaf replaced by x's
            structure, leaf (i, j) of shape ``out_shape_i + in_shape_j``.
        x, rtol, atol, fd_rtol, step, autodiff, finite_differences, subset_key: as in :func:`check_gradient`.
        richardson, batched: as in :func:`check_gradient`.
        max_coordinates: as in :func:`check_gradient`, counting input coordinates.

    Returns:
        :class:`GradientReport`.

    Raises:
        AssertionError: naming the worst entry as ``∂f(x)[i]/∂x[j]`` with both values.
    """
    y, (rtol, atol, fd_rtol, max_coordinates) = _start(f, jac_f, "jac_f", x, rtol, atol,
                                                        fd_rtol, step, max_coordinates)
    check_floating_tree(y, "f(x)")
    hand = _flatten_layout(jac_f(x), y, x, "jac_f")
    cin, cout = Coordinates(x, "x"), Coordinates(y, "f(x)")
    return _check_matrix("check_jacobian", "jac_f", "jax.jacobian", f, x, y, hand, rtol=rtol,
                         atol=atol, fd_rtol=fd_rtol, step=step, autodiff=autodiff,
                         finite_differences=finite_differences,
                         max_coordinates=max_coordinates, subset_key=subset_key,
                         name_of=lambda r, c: f"∂{cout.name(r)}/∂{cin.name(c)}",
                         richardson=richardson, batched=batched)


def check_jvp(f: Callable[[Any], Any], jvp_f: Callable[[Any, Any], Any], x, v=None, *,
              n_directions: int = 3, directions_key=None, rtol: float | None = None,
              atol: float = 0.0,
              fd_rtol: float | None = None, step: float | None = None, autodiff: bool = True,
              finite_differences: bool = True, richardson: bool = True,
              batched: bool = True) -> GradientReport:
    r"""Check a hand-written Jacobian-vector product ``jvp_f(x, v) = J(x)·v`` against
    ``jax.jvp`` and central finite differences (f(x + hv) − f(x − hv)) / 2h.

    Args:
        f: pytree -> pytree.
        jvp_f: ``(x, v) -> J(x)·v``, a pytree like ``f(x)`` (the tangent only).
        x: the point (pytree of floating arrays).
        v: one direction, a pytree like ``x``; ``None``: ``n_directions`` standard-normal
            directions drawn with ``directions_key`` (default ``jax.random.key(0)``).
        step: finite-difference step along v (default ε^⅓·max(‖x‖∞, 1)/‖v‖∞).
        rtol, atol, fd_rtol, autodiff, finite_differences, richardson, batched: as in
            :func:`check_gradient`;
            the row scale sᵣ is the largest |J·v| entry of each direction.

    Returns:
        :class:`GradientReport`.

    Raises:
        AssertionError: naming the worst output entry and direction, with both values.
    """
    y, (rtol, atol, fd_rtol, _) = _start(f, jvp_f, "jvp_f", x, rtol, atol, fd_rtol, step, None)
    check_floating_tree(y, "f(x)")
    if v is None:
        n_directions = check_count(n_directions, "n_directions")
        key = jax.random.key(0) if directions_key is None else directions_key
        leaves, tdef = jax.tree_util.tree_flatten(x)
        dirs = []
        for kk in jax.random.split(key, n_directions):
            ks = jax.random.split(kk, len(leaves))
            dirs.append(jax.tree_util.tree_unflatten(tdef, [
                jax.random.normal(k_, jnp.shape(leaf), jnp.asarray(leaf).dtype)
                for k_, leaf in zip(ks, leaves)]))
    else:
        if not same_shapes(v, x):
            raise ValueError("v must be a pytree with the structure and shapes of x")
        dirs = [jax.tree.map(lambda a, b: jnp.asarray(a, jnp.asarray(b).dtype), v, x)]
    flat_x, unravel = ravel_pytree(x)
    fflat = _flat_fn(f, unravel)
    cin, cout = Coordinates(x, "x"), Coordinates(y, "f(x)")
    k, m = len(dirs), cout.size
    hand = np.empty((k, m))
    for i, d in enumerate(dirs):
        t = jvp_f(x, d)
        if not same_shapes(t, y):
            raise AssertionError("jvp_f(x, v) must return a pytree with the structure and "
                                 "shapes of f(x) (the tangent J·v only)")
        hand[i] = flat64(t)
    eps_in = float(np.max(cin.eps))
    eps = np.maximum(cout.eps[None, :], eps_in)                   # (1, m)
    rtol, fd_rtol = _defaults(np.broadcast_to(eps, (k, m)).copy(), rtol, fd_rtol)
    quarter = eps ** 0.25
    x64 = np.asarray(flat_x, np.float64)
    xscale = max(float(np.max(np.abs(x64), initial=0.0)), 1.0)
    V = np.stack([flat64(d) for d in dirs])   # (k, n)
    vnorm = np.maximum(np.max(np.abs(V), axis=1), np.finfo(np.float64).tiny)[:, None]
    fterm = 100 * eps * np.abs(flat64(y))[None, :] * vnorm / xscale

    def name_of(r, c):
        return f"{cout.name(c)} along direction {r}"

    nan = float("nan")
    ad_err = ad_ratio = fd_err = fd_ratio = nan
    ref = None
    if autodiff:
        jvp = jax.jit(lambda x_, v_: ravel_pytree(jax.jvp(f, (x_,), (v_,))[1])[0])
        ref = np.stack([np.asarray(jvp(x, d), np.float64) for d in dirs])
        s = np.max(np.abs(ref), axis=1, initial=0.0)[:, None]
        tol = atol + rtol * (np.abs(ref) + quarter * s) + fterm
        ad_err, ad_ratio = _compare(hand, ref, tol, name_of, "check_jvp", "jvp_f", "jax.jvp")
    if finite_differences:
        h = (eps_in ** (1 / 3) * xscale / vnorm[:, 0]) if step is None else np.full(k, float(step))
        signs = (1, -1, 2, -2) if richardson else (1, -1)      # no ±2h points without it
        pts = np.concatenate([x64 + s_ * h[:, None] * V for s_ in signs])
        vals = _evaluate(fflat, pts, flat_x.dtype, batched).reshape(len(signs), k, m)
        D1 = (vals[0] - vals[1]) / (2 * h[:, None])
        D2 = (vals[2] - vals[3]) / (4 * h[:, None]) if richardson else D1
        noise = np.max(np.abs(vals), axis=0) / (2 * h[:, None])
        s = np.max(np.abs(ref if ref is not None else D1), axis=1, initial=0.0)[:, None]
        tol = (atol + fd_rtol * (np.abs(D1) + quarter * s)
               + (2 * np.abs(D1 - D2) if richardson else 0.0)
               + 10 * eps * noise + fterm)
        fd_err, fd_ratio = _compare(hand, D1, tol, name_of, "check_jvp", "jvp_f",
                                    "finite differences", other=ref, other_label="jax.jvp")
    n_checked = int(k * m) if finite_differences else 0
    return GradientReport(ad_err, fd_err, ad_ratio, fd_ratio, n_checked)

