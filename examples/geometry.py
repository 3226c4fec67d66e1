"""The geometry pictures of the course: constrained ridge and lasso, a degree-2 feature map,
the canonical SVM hyperplane.

1. Ridge and lasso as constrained problems, min J(w) = ½‖y − Xw‖² s.t. ‖w‖₂ ≤ r or ‖w‖₁ ≤ r:
   the solution is where the smallest contour of J meets the disk or the diamond. The
   diamond's corners stick out, so for small radii the contour touches a corner first and the
   lasso solution has an exact zero (it is sparse); the disk has no corner and ridge's
   solution has none. Checked against scikit-learn's penalized Ridge / Lasso at the KKT
   multiplier (α = λ for ridge, α = λ/(2n) for lasso).
2. The degree-2 feature map φ: ℝ² → ℝ³, φ(x) = (x₁², √2 x₁x₂, x₂²), whose inner product is
   the polynomial kernel ⟨φ(x), φ(z)⟩ = (xᵀz)² (``jaxml.kernels.Polynomial(degree=2,
   gamma=1, coef0=0)``). Two concentric rings are not linearly separable in ℝ² but are in
   ℝ³ (x₁² + x₂² = r² is the plane φ₁ + φ₃ = r²): a linear SVM on φ(x) and a polynomial-kernel
   SVM on x give the same decision function.
3. The canonical hyperplane of an SVM: (w, b) and (cw, cb) are the same hyperplane; the SVM
   fixes the scale by yᵢ(wᵀxᵢ + b) = 1 on the support vectors (≥ 1 everywhere), so the
   margin is 1/‖w‖ on each side.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, main, savefig
from sklearn.linear_model import Lasso, Ridge

from jaxml import kernels, linear, svm


# ----------------------------------------------------------------------------- 1. ridge / lasso

def _problem():
    """A two-feature regression whose least-squares solution is far from the axes."""
    rng = np.random.default_rng(0)
    n = 60
    X = rng.standard_normal((n, 2)) @ np.array([[1.0, 0.0], [0.5, 0.8]])
    y = X @ np.array([2.0, 0.7]) + 0.3 * rng.standard_normal(n)
    return X, y


def _constrained(out_dir: Path, quick: bool):
    X, y = _problem()
    n = X.shape[0]
    w_ls = np.linalg.lstsq(X, y, rcond=None)[0]      # the unconstrained minimizer (a marker)
    radii = jnp.linspace(0.3, 2.4, 5 if quick else 8)
    # one fit per radius, the radius a traced argument: one compiled program per problem (a
    # vmapped while loop compiles several times slower than the plain one it batches)
    def sweep(fit):
        fits = [fit(X, y, r, tol=1e-10, max_iter=20000) for r in radii]
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *fits)

    ridge, lasso = sweep(linear.ridge_constrained), sweep(linear.lasso_constrained)
    W_r, W_l = np.asarray(ridge.w), np.asarray(lasso.w)

    g = np.linspace(-0.6, 3.0, 80 if quick else 200)
    J = np.asarray(linear.loss_surface(X, y, g, g))
    J_of = lambda w: 0.5 * np.sum((y - X @ w) ** 2)  # noqa: E731
    t = np.linspace(0, 2 * np.pi, 200)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    for ax, W, title, shape in [
        (axes[0], W_r, "ridge: min J(w) s.t. ‖w‖₂ ≤ r", "disk"),
        (axes[1], W_l, "lasso: min J(w) s.t. ‖w‖₁ ≤ r", "diamond"),
    ]:
        ax.contour(g, g, J, levels=np.quantile(J, np.linspace(0.002, 0.5, 12)), colors="0.75",
                   linewidths=0.7)
        for k, (r, w) in enumerate(zip(np.asarray(radii), W)):
            c = plt.cm.viridis(k / max(len(W) - 1, 1))
            if shape == "disk":
                ax.plot(r * np.cos(t), r * np.sin(t), color=c, lw=1)
            else:
                ax.plot([r, 0, -r, 0, r], [0, r, 0, -r, 0], color=c, lw=1)
            # the contour of J through the solution: tangent to the constraint set
            ax.contour(g, g, J, levels=[J_of(w)], colors=[c], linewidths=0.8, linestyles="--")
            ax.plot(*w, "o", color=c, ms=6, mec="k")
        ax.plot(*w_ls, "k*", ms=12, label="least squares")
        ax.plot(W[:, 0], W[:, 1], "k-", lw=0.8, alpha=0.6, label="solution path over r")
        ax.axhline(0, color="k", lw=0.4)
        ax.axvline(0, color="k", lw=0.4)
        ax.set(xlim=(g[0], g[-1]), ylim=(g[0], g[-1]), aspect="equal", xlabel="w₁", ylabel="w₂",
               title=title)
        ax.legend(fontsize=8, loc="lower right")
    sparse = int(np.sum(np.abs(W_l[:, 1]) == 0.0))
    axes[1].annotate(f"on a corner (w₂ = 0 exactly)\nfor {sparse} of {len(W_l)} radii",
                     xy=(W_l[0, 0], 0.0), xytext=(-0.5, 2.6), fontsize=8,
                     arrowprops=dict(arrowstyle="->", lw=0.7))
    fig.suptitle("the smallest contour of J(w) = ½‖y − Xw‖² meeting the L2 disk and the L1 "
                 "diamond, for a sweep of radii")
    fig.tight_layout()
    name = savefig(fig, out_dir, "geometry_ridge_lasso.png")

    # the penalized twins at the KKT multipliers (scikit-learn as the oracle)
    lam_r, lam_l = np.asarray(ridge.multiplier), np.asarray(lasso.multiplier)
    active = lam_l > 0
    err_r = max(np.abs(Ridge(alpha=lr, fit_intercept=False, tol=1e-12).fit(X, y).coef_ - w).max()
                for lr, w in zip(lam_r, W_r) if lr > 0)
    err_l = max(np.abs(Lasso(alpha=ll / (2 * n), fit_intercept=False, tol=1e-12,
                             max_iter=100000).fit(X, y).coef_ - w).max()
                for ll, w in zip(lam_l[active], W_l[active]))
    return [
        SummaryRow(f"constrained ridge, {len(radii)} radii (2 features)",
                   f"max |w − Ridge(α=λ)| {err_r:.1e}; zeros in w: "
                   f"{int(np.sum(W_r == 0))}", "scikit-learn Ridge at the KKT multiplier", name),
        SummaryRow(f"constrained lasso, {len(radii)} radii (2 features)",
                   f"max |w − Lasso(α=λ/2n)| {err_l:.1e}; exact zero (corner) for {sparse} radii",
                   "scikit-learn Lasso at the KKT multiplier", name),
    ]


# ----------------------------------------------------------------------------- 2. feature map

def feature_map(X) -> jax.Array:
    """φ(x) = (x₁², √2 x₁x₂, x₂²) for each row of X (n, 2) → (n, 3)."""
    X = jnp.asarray(X)
    return jnp.stack([X[:, 0] ** 2, math.sqrt(2.0) * X[:, 0] * X[:, 1], X[:, 1] ** 2], axis=1)


def _rings(n, key):
    k1, k2, k3 = jax.random.split(key, 3)
    angle = jax.random.uniform(k1, (n,), maxval=2 * math.pi)
    inner = jnp.arange(n) < n // 2
    radius = jnp.where(inner, jax.random.uniform(k2, (n,), minval=0.2, maxval=1.0),
                       jax.random.uniform(k3, (n,), minval=1.5, maxval=2.2))
    X = radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    return X, jnp.where(inner, 1, -1).astype(int)   # not weakly typed: as _canonical's labels


def _feature_map(out_dir: Path, quick: bool):
    n = 60 if quick else 200
    X, y = jax.jit(_rings, static_argnums=0)(n, jax.random.key(0))
    poly = kernels.Polynomial(degree=2, gamma=1.0, coef0=0.0)   # (γ xᵀz + c₀)^d = (xᵀz)²
    phi = jax.jit(feature_map)                  # compiled once per shape, not op by op
    Phi = phi(X)
    Z = jax.random.normal(jax.random.key(1), (25, 2))
    kernel_err = float(jnp.max(jnp.abs(phi(Z) @ Phi.T - kernels.gram(poly, Z, X))))

    lin = svm.fit(Phi, y, C=jnp.inf, tol=1e-8)                      # linear SVM in ℝ³
    ker = svm.fit(X, y, C=jnp.inf, kernel=poly, tol=1e-8)            # kernel SVM in ℝ²
    w, b = np.asarray(svm.primal_weights(lin)), float(lin.b)
    grid = jax.random.uniform(jax.random.key(2), (200, 2), minval=-2.2, maxval=2.2)
    dec_err = float(jnp.max(jnp.abs(svm.decision_function(lin, phi(grid))
                                    - svm.decision_function(ker, grid))))
    acc = float(jnp.mean(svm.predict(lin, Phi) == y))

    fig = plt.figure(figsize=(11, 4.8))
    ax1 = fig.add_subplot(1, 2, 1)
    Xn, yn = np.asarray(X), np.asarray(y)
    ax1.scatter(*Xn[yn > 0].T, s=12, c="C0", label="y = +1")
    ax1.scatter(*Xn[yn < 0].T, s=12, c="C3", label="y = −1")
    u = np.linspace(-2.4, 2.4, 200)
    U, V = np.meshgrid(u, u)
    F = np.asarray(svm.decision_function(ker, np.c_[U.ravel(), V.ravel()])).reshape(U.shape)
    ax1.contour(U, V, F, levels=[0.0], colors="k")
    ax1.set(aspect="equal", title="ℝ²: not linearly separable;\nthe polynomial-kernel SVM "
            "boundary (an ellipse)")
    ax1.legend(fontsize=8)
    ax2 = fig.add_subplot(1, 2, 2, projection="3d")
    P = np.asarray(Phi)
    ax2.scatter(*P[yn > 0].T, s=10, c="C0")
    ax2.scatter(*P[yn < 0].T, s=10, c="C3")
    # the plane w₁φ₁ + w₂φ₂ + w₃φ₃ + b = 0, solved for its coordinate of largest |wᵢ|
    j = int(np.argmax(np.abs(w)))
    o = [i for i in range(3) if i != j]
    A, B = np.meshgrid(np.linspace(P[:, o[0]].min(), P[:, o[0]].max(), 10),
                       np.linspace(P[:, o[1]].min(), P[:, o[1]].max(), 10))
    coords = [None] * 3
    coords[o[0]], coords[o[1]] = A, B
    coords[j] = -(w[o[0]] * A + w[o[1]] * B + b) / w[j]
    ax2.plot_surface(*coords, alpha=0.3, color="0.5")
    ax2.set(xlabel="x₁²", ylabel="√2 x₁x₂", zlabel="x₂²",
            title="ℝ³: φ(x) = (x₁², √2x₁x₂, x₂²),\nseparated by the plane wᵀφ + b = 0")
    fig.tight_layout()
    name = savefig(fig, out_dir, "geometry_feature_map.png")
    return [
        SummaryRow("degree-2 feature map ℝ² → ℝ³, ⟨φ(x), φ(z)⟩ vs Polynomial(2, γ=1, c₀=0)",
                   f"max |⟨φ(x), φ(z)⟩ − (xᵀz)²| {kernel_err:.1e}", "kernels.gram (closed form)",
                   name),
        SummaryRow("concentric rings: linear SVM on φ(x) vs polynomial-kernel SVM on x",
                   f"training accuracy {acc:.3f}; max decision-function diff {dec_err:.1e}",
                   "the same dual problem (equal Gram matrices)", name),
    ]


# ----------------------------------------------------------------------------- 3. canonical

def _canonical(out_dir: Path, quick: bool):
    rng = np.random.default_rng(3)
    n = 60
    X = np.r_[rng.normal([-1.5, -1.0], 0.6, (n // 2, 2)),
              rng.normal([1.5, 1.0], 0.6, (n - n // 2, 2))]
    y = np.r_[-np.ones(n // 2, int), np.ones(n - n // 2, int)]
    # quick: the points get a zero third coordinate (w₃ = 0, the same hyperplane), so this fit
    # reuses the compiled linear SVM of the feature-map section (60 points in ℝ³)
    model = svm.fit(np.c_[X, np.zeros(n)] if quick else X, y, C=jnp.inf, tol=1e-10)
    w, b = np.asarray(svm.primal_weights(model))[:2], float(model.b)
    functional = y * (X @ w + b)
    sv = np.asarray(model.support)
    sv_err = float(np.abs(functional[sv] - 1.0).max())
    width = float(svm.margin_width(model))
    for i in np.flatnonzero(sv):
        print(f"   support vector {i}: y(wᵀx + b) = {functional[i]:.12f}")
    print(f"   min over all points {functional.min():.12f}; 1/‖w‖ = {1 / np.linalg.norm(w):.6f}, "
          f"margin_width/2 = {width / 2:.6f}")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    u = np.linspace(X[:, 0].min() - 0.5, X[:, 0].max() + 0.5, 100)
    for ax, scale, title in [(axes[0], 3.0, "(3w, 3b): same hyperplane, |wᵀx + b| = 3 on the SVs"),
                             (axes[1], 1.0, "canonical (w, b): yᵢ(wᵀxᵢ + b) = 1 on the SVs")]:
        ws, bs = scale * w, scale * b
        ax.scatter(*X[y > 0].T, c="C0", s=14)
        ax.scatter(*X[y < 0].T, c="C3", s=14)
        ax.scatter(*X[sv].T, s=90, facecolors="none", edgecolors="k", label="support vectors")
        for level, style in [(0, "-"), (scale, "--"), (-scale, "--")]:
            ax.plot(u, (level - bs - ws[0] * u) / ws[1], "k" + style, lw=1)
        for i in np.flatnonzero(sv):
            ax.annotate(f"{y[i] * (X[i] @ ws + bs):.3f}", X[i], xytext=(5, 5),
                        textcoords="offset points", fontsize=8)
        ax.set(aspect="equal", ylim=(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5), title=title)
        ax.legend(fontsize=8, loc="lower right")
    axes[1].text(0.02, 0.96, f"margin 1/‖w‖ = {1 / np.linalg.norm(w):.4f}",
                 transform=axes[1].transAxes,
                 fontsize=9, va="top")
    name = savefig(fig, out_dir, "geometry_canonical_svm.png")
    return [SummaryRow(f"canonical hard-margin SVM, {int(sv.sum())} support vectors",
                       f"max |yᵢ(wᵀxᵢ + b) − 1| on SVs {sv_err:.1e}, min over all "
                       f"{functional.min():.6f}", "1 by construction (canonical scale)", name)]


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    out_dir = Path(out_dir)
    return _constrained(out_dir, quick) + _feature_map(out_dir, quick) + _canonical(out_dir, quick)


if __name__ == "__main__":
    main(run, __doc__)
