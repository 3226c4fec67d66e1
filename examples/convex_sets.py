"""Projections onto convex sets in 2-D, and the separating hyperplane of a point and a set.

Every projection is jaxml.convex's exact one; each arrow goes from a point to its projection
(perpendicular to the set's boundary, as the obtuse-angle condition says). The reference is
scipy's SLSQP solving the same projection problems.

A second figure draws why "nonempty, closed and convex" is needed for the projection to exist
and be unique, with the course's counter-examples: the annulus 1 ≤ ‖z‖ ≤ 2 (closed, not
convex) where every point of the inner circle is nearest to the centre, and the open unit
disk (convex, not closed) where the points (1 − 1/k, 0) approach y = (2, 0) ever closer
without any point of the disk being nearest. A third panel finds the extreme points of a
finite set and the convex weights of points in its hull (``convex.extreme_points``,
``convex.convex_combination``), against scipy's ``ConvexHull``.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, savefig
from matplotlib.patches import Circle, Polygon
from scipy.optimize import minimize
from scipy.spatial import ConvexHull

from jaxml import convex

R = 1.0
LOW, UP = np.array([-1.0, -0.5]), np.array([0.8, 1.0])
P, A = np.array([1.0, 2.0]), 1.0

SETS = {
    "L1 ball": (lambda x: convex.project_l1_ball(x, R),
                [{"type": "ineq", "fun": lambda z: R - np.abs(z).sum()}]),
    "L2 ball": (lambda x: convex.project_l2_ball(x, R),
                [{"type": "ineq", "fun": lambda z: R**2 - z @ z}]),
    "L∞ ball": (lambda x: convex.project_linf_ball(x, R),
                [{"type": "ineq", "fun": lambda z: R - np.abs(z).max()}]),
    "box": (lambda x: convex.project_box(x, LOW, UP),
            [{"type": "ineq", "fun": lambda z: np.concatenate([z - LOW, UP - z])}]),
    "simplex": (lambda x: convex.project_simplex(x, 1.0),
                [{"type": "eq", "fun": lambda z: z.sum() - 1.0},
                 {"type": "ineq", "fun": lambda z: z}]),
    "halfspace": (lambda x: convex.project_halfspace(x, P, A),
                  [{"type": "ineq", "fun": lambda z: A - P @ z}]),
    "box ∩ hyperplane": (lambda x: convex.project_box_hyperplane(x, np.array([1.0, -1.0]), 0.0, 1.0, 0.0),
                         [{"type": "eq", "fun": lambda z: z[0] - z[1]},
                          {"type": "ineq", "fun": lambda z: np.concatenate([z, 1 - z])}]),
}


def _outline(name):
    """The boundary of each set, for drawing."""
    t = np.linspace(0, 2 * np.pi, 200)
    if name == "L1 ball":
        return np.array([[R, 0], [0, R], [-R, 0], [0, -R]])
    if name == "L2 ball":
        return R * np.c_[np.cos(t), np.sin(t)]
    if name == "L∞ ball":
        return R * np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    if name == "box":
        return np.array([[LOW[0], LOW[1]], [UP[0], LOW[1]], [UP[0], UP[1]], [LOW[0], UP[1]]])
    if name == "simplex":
        return np.array([[1.0, 0.0], [0.0, 1.0]])
    if name == "halfspace":  # p·z <= a, clipped to the plotting window
        xs = np.array([-3, 3, 3, -3])
        return np.c_[xs[:2], (A - P[0] * xs[:2]) / P[1]].tolist() + [[3, -3], [-3, -3]]
    return np.array([[0.0, 0.0], [1.0, 1.0]])


def _draw(ax, name, pts, proj):
    outline = np.asarray(_outline(name), float)
    if len(outline) == 2:
        ax.plot(outline[:, 0], outline[:, 1], "-", color="C2", lw=3, alpha=0.6)
    else:
        ax.add_patch(Polygon(outline, closed=True, alpha=0.25, color="C2"))
    for x, z in zip(pts, proj):
        if np.linalg.norm(x - z) < 1e-9:   # already in the set
            continue
        ax.annotate("", xy=z, xytext=x, arrowprops=dict(arrowstyle="->", color="0.3", lw=0.7))
    ax.plot(pts[:, 0], pts[:, 1], "o", color="C0", ms=3)
    ax.plot(proj[:, 0], proj[:, 1], "o", color="C3", ms=3)
    ax.set(xlim=(-2.6, 2.6), ylim=(-2.6, 2.6), aspect="equal", title=name)


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    rng = np.random.default_rng(0)
    n = 16 if quick else 40
    pts = rng.uniform(-2.4, 2.4, size=(n, 2))
    fig, axes = plt.subplots(2, 4, figsize=(16, 8))
    worst = 0.0
    for ax, (name, (proj_fn, cons)) in zip(axes.ravel(), SETS.items()):
        proj = np.asarray(jax.vmap(proj_fn)(jnp.asarray(pts)))
        _draw(ax, name, pts, proj)
        for x, z in zip(pts[:6], proj[:6]):   # scipy reference on a few points
            ref = minimize(lambda v: 0.5 * np.sum((v - x) ** 2), np.zeros(2), method="SLSQP",
                           constraints=cons, options={"ftol": 1e-14, "maxiter": 500}).x
            worst = max(worst, float(np.abs(ref - z).max()))

    # separating hyperplane between a point and the L1 ball
    ax = axes.ravel()[-1]
    y = np.array([1.6, 1.1])
    p, a = convex.separating_hyperplane(jnp.asarray(y), lambda z: convex.project_l1_ball(z, R))
    p, a = np.asarray(p), float(a)
    ax.add_patch(Polygon(_outline("L1 ball"), closed=True, alpha=0.25, color="C2"))
    xs = np.linspace(-2.6, 2.6, 2)
    ax.plot(xs, (a - p[0] * xs) / p[1], "k--", label=r"$p^\top x = a$")
    q = np.asarray(convex.project_l1_ball(jnp.asarray(y), R))
    ax.annotate("", xy=q, xytext=y, arrowprops=dict(arrowstyle="->"))
    ax.plot(*y, "o", color="C3", label="y")
    ax.set(xlim=(-2.6, 2.6), ylim=(-2.6, 2.6), aspect="equal", title="separating hyperplane")
    ax.legend(loc="lower left")
    fig.suptitle("Euclidean projections (blue → red) onto convex sets")
    name = savefig(fig, out_dir, "convex_projections.png")
    margin = float(p @ y - a)
    rows = _counter_examples(out_dir, rng, quick)
    return rows + [
        SummaryRow("projections of 2-D points onto 7 convex sets",
                   f"exact projections ({n} points per set)",
                   f"scipy SLSQP max |diff| {worst:.1e}", name),
        SummaryRow("separating hyperplane of y=(1.6, 1.1) and the unit L1 ball",
                   f"pᵀy − a = {margin:.3f} > 0", f"= ‖y − P(y)‖² = {float(p @ p):.3f}", name),
    ]


def _counter_examples(out_dir: Path, rng, quick: bool) -> list[SummaryRow]:
    """The annulus (non-unique projection), the open disk (no nearest point), a hull."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))

    # 1. Annulus {1 ≤ ‖z‖ ≤ 2}: distance from its centre to a fine polar grid of the set.
    ax = axes[0]
    r, t = np.meshgrid(np.linspace(1, 2, 41), np.linspace(0, 2 * np.pi, 721, endpoint=False))
    grid = np.c_[(r * np.cos(t)).ravel(), (r * np.sin(t)).ravel()]
    dist = np.linalg.norm(grid, axis=1)
    nearest = grid[dist <= dist.min() + 1e-12]
    ax.add_patch(Circle((0, 0), 2, color="C2", alpha=0.25))
    ax.add_patch(Circle((0, 0), 1, color="white"))
    ax.plot(nearest[:, 0], nearest[:, 1], ".", color="C3", ms=2, label="nearest points to 0")
    ax.plot(0, 0, "ko")
    # and the projection jumps: ±ε e₁ go to ±e₁ (no longer non-expansive)
    for sign in (1, -1):
        ax.annotate("", xy=(sign, 0), xytext=(sign * 0.05, 0),
                    arrowprops=dict(arrowstyle="->", color="0.3"))
    ax.set(xlim=(-2.2, 2.2), ylim=(-2.2, 2.2), aspect="equal",
           title=f"annulus: {len(nearest)} nearest points to its centre")
    ax.legend(loc="lower left")

    # 2. Open unit disk, y = (2, 0): z_k = (1 − 1/k, 0) in the disk, ‖y − z_k‖ = 1 + 1/k ↓ 1.
    ax = axes[1]
    y = np.array([2.0, 0.0])
    k = np.arange(1, 9 if quick else 31)
    zk = np.c_[1 - 1.0 / (k + 1), np.zeros_like(k, dtype=float)]
    dk = np.linalg.norm(y - zk, axis=1)
    closed = np.asarray(convex.project_l2_ball(jnp.asarray(y), 1.0))   # closed disk: (1, 0)
    ax.add_patch(Circle((0, 0), 1, fill=False, ls="--", color="C2"))
    ax.add_patch(Circle((0, 0), 1, color="C2", alpha=0.25))
    ax.plot(zk[:, 0], zk[:, 1], ".", color="C0", label="(1 − 1/k, 0): inside, ever closer")
    ax.plot(*closed, "x", color="C3", ms=10, label="closed disk's projection (not in the open disk)")
    ax.plot(*y, "ko", label="y = (2, 0)")
    ax.set(xlim=(-1.3, 2.3), ylim=(-1.3, 1.3), aspect="equal",
           title="open disk: inf ‖y − z‖ = 1, never attained")
    ax.legend(loc="lower left", fontsize=8)

    # 3. Extreme points and convex weights of a random 2-D set.
    ax = axes[2]
    pts = rng.standard_normal((12 if quick else 30, 2))
    ext = np.asarray(convex.extreme_points(pts).mask)
    scipy_ext = np.zeros(len(pts), bool)
    scipy_ext[ConvexHull(pts).vertices] = True
    hull = pts[ConvexHull(pts).vertices]
    ax.add_patch(Polygon(hull, closed=True, alpha=0.2, color="C2"))
    ax.plot(pts[~ext, 0], pts[~ext, 1], "o", color="C0", ms=4, label="not extreme")
    ax.plot(pts[ext, 0], pts[ext, 1], "o", color="C3", ms=6, label="extreme (jaxml)")
    q = pts.mean(axis=0)
    combo = convex.convex_combination(pts, q)
    ax.plot(*q, "k*", ms=10, label=f"mean: in hull = {bool(combo.inside)}")
    ax.set(aspect="equal", title="extreme points of a finite set")
    ax.legend(loc="lower left", fontsize=8)
    name = savefig(fig, out_dir, "convex_counter_examples.png")
    return [
        SummaryRow("annulus 1 ≤ ‖z‖ ≤ 2 (not convex): nearest points to its centre",
                   f"{len(nearest)} grid points at distance {dist.min():.3f}",
                   "the whole inner circle (projection not unique)", name),
        SummaryRow("open unit disk (not closed), y = (2, 0)",
                   f"‖y − z_k‖ = {dk[-1]:.4f} at k = {k[-1]}, decreasing",
                   "inf = 1 at (1, 0) ∉ disk (no nearest point)", name),
        SummaryRow(f"extreme points of {len(pts)} random points in 2-D",
                   f"{int(ext.sum())} extreme (convex.extreme_points)",
                   f"scipy ConvexHull: {int(scipy_ext.sum())}, "
                   f"agree: {bool((ext == scipy_ext).all())}", name),
    ]


if __name__ == "__main__":
    run(Path("out"))
