"""Projections onto convex sets in 2-D, and the separating hyperplane of a point and a set.

Every projection is jaxml.convex's exact one; each arrow goes from a point to its projection
(perpendicular to the set's boundary, as the obtuse-angle condition says). The reference is
scipy's SLSQP solving the same projection problems.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, savefig
from matplotlib.patches import Polygon
from scipy.optimize import minimize

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
    return [
        SummaryRow("projections of 2-D points onto 7 convex sets",
                   f"exact projections ({n} points per set)",
                   f"scipy SLSQP max |diff| {worst:.1e}", name),
        SummaryRow("separating hyperplane of y=(1.6, 1.1) and the unit L1 ball",
                   f"pᵀy − a = {margin:.3f} > 0", f"= ‖y − P(y)‖² = {float(p @ p):.3f}", name),
    ]


if __name__ == "__main__":
    run(Path("out"))
