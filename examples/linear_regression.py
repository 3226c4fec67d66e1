"""Linear regression on scikit-learn's diabetes data: closed form vs gradient descent vs
scikit-learn; ridge and lasso paths in penalized and constrained form; the J(w) surface.

The targets are centered and the features are already centered by scikit-learn, so the
model has no intercept (jaxml never adds a hidden one).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, savefig
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Lasso, LinearRegression, Ridge

from jaxml import linear, optim


def _fits(X, y):
    w_cf = np.asarray(linear.least_squares(X, y))
    gd = linear.least_squares_gd(X, y, tol=1e-3, max_iter=20000)
    gd_x = np.asarray(gd.x)
    w_sk = LinearRegression(fit_intercept=False).fit(X, y).coef_
    fig, ax = plt.subplots(figsize=(7, 4))
    k = np.arange(X.shape[1])
    ax.bar(k - 0.25, w_cf, 0.25, label="jaxml least_squares (SVD)")
    ax.bar(k, gd_x, 0.25, label=f"jaxml gradient descent ({int(gd.n_iter)} it.)")
    ax.bar(k + 0.25, w_sk, 0.25, label="scikit-learn LinearRegression")
    ax.set_xticks(k, load_diabetes().feature_names)
    ax.set(ylabel="coefficient", title="diabetes: least-squares coefficients")
    ax.legend(fontsize=8)
    name = savefig(fig, OUT, "linreg_coefficients.png")
    scale = np.abs(w_sk).max()
    return [
        SummaryRow("least squares, diabetes (442×10)",
                   f"closed form: max rel diff {np.abs(w_cf - w_sk).max() / scale:.1e}",
                   "scikit-learn LinearRegression(fit_intercept=False)", name),
        SummaryRow("least squares by gradient descent (Armijo)",
                   f"{int(gd.n_iter)} iterations, max rel diff {np.abs(gd_x - w_sk).max() / scale:.1e}",
                   "scikit-learn LinearRegression", name),
    ]


def _paths(X, y, quick):
    n = X.shape[0]
    k = 8 if quick else 30

    def constrained(fit, radii):
        """fit(X, y, r) at each radius: one vmapped call, or (quick) one call per radius of one
        compiled fit (r is traced; a vmapped while loop compiles several times slower)."""
        solve = lambda r: fit(X, y, r, tol=1e-8, max_iter=20000)  # noqa: E731
        if not quick:
            return jax.tree.map(np.asarray, jax.vmap(solve)(jnp.asarray(radii)))
        fits = [solve(r) for r in radii]
        return jax.tree.map(lambda *leaves: np.stack([np.asarray(a) for a in leaves]), *fits)

    # ridge: penalized (vmap over alpha) and constrained at the matching radius
    r_alphas = np.logspace(-4, 1, k)
    W_r = np.asarray(jax.vmap(linear.ridge, (None, None, 0))(X, y, r_alphas))
    radii_r = np.linalg.norm(W_r, axis=1)
    con_r = constrained(linear.ridge_constrained, radii_r)
    # lasso: one lasso_path call, and the constrained form at the matching L1 radius
    l_alphas = np.logspace(0.5, -3, k)
    path = linear.lasso_path(X, y, l_alphas, tol=1e-10, max_iter=20000)
    coefs = np.asarray(path.coefs)
    radii_l = np.abs(coefs).sum(1)
    con_l = constrained(linear.lasso_constrained, radii_l)

    fig, ax = plt.subplots(1, 2, figsize=(13, 4.5))
    for j in range(X.shape[1]):
        ax[0].plot(radii_r, W_r[:, j], "-", color=f"C{j}")
        ax[0].plot(radii_r, con_r.w[:, j], "o", color=f"C{j}", mfc="none", ms=5)
        ax[1].plot(radii_l, coefs[:, j], "-", color=f"C{j}")
        ax[1].plot(radii_l, con_l.w[:, j], "o", color=f"C{j}", mfc="none", ms=5)
    ax[0].set(xlabel=r"$\|w\|_2$", ylabel="coefficient",
              title="ridge: penalized (lines, vmap over α) vs constrained ‖w‖₂ ≤ r (circles)")
    ax[1].set(xlabel=r"$\|w\|_1$", ylabel="coefficient",
              title="lasso: lasso_path (lines) vs constrained ‖w‖₁ ≤ r (circles)")
    name = savefig(fig, OUT, "linreg_paths.png")

    a_r, a_l = float(r_alphas[k // 2]), float(l_alphas[k // 2])
    sk_r = Ridge(alpha=a_r, fit_intercept=False).fit(X, y).coef_
    sk_l = Lasso(alpha=a_l, fit_intercept=False, tol=1e-12, max_iter=100000).fit(X, y).coef_
    gap_r = float(np.abs(con_r.w - W_r).max() / np.abs(W_r).max())
    gap_l = float(np.abs(con_l.w - coefs).max() / np.abs(coefs).max())
    # where w ≠ 0 (α below α_max) the constraint's multiplier λ gives back α = λ/(2n)
    active = radii_l > 0
    mult = float(np.max(np.where(active, np.abs(con_l.multiplier / (2 * n) / l_alphas - 1), 0.0)))
    return [
        SummaryRow(f"ridge at alpha={a_r:.3g}",
                   f"max rel diff {np.abs(W_r[k // 2] - sk_r).max() / np.abs(sk_r).max():.1e}",
                   "scikit-learn Ridge(fit_intercept=False)", name),
        SummaryRow(f"lasso at alpha={a_l:.3g}",
                   f"max rel diff {np.abs(coefs[k // 2] - sk_l).max() / np.abs(sk_l).max():.1e}",
                   "scikit-learn Lasso(fit_intercept=False)", name),
        SummaryRow("ridge / lasso: penalized vs constrained at the matching radius",
                   f"max rel coef diff ridge {gap_r:.1e}, lasso {gap_l:.1e}",
                   f"KKT multiplier λ/(2n) recovers lasso α where w ≠ 0 (max rel err {mult:.1e})", name),
    ]


def _surface(X, y, quick):
    X2 = X[:, [2, 8]]                     # bmi and s5, the two strongest predictors
    # the minimizer from scikit-learn (least_squares on the full X is checked above)
    w_star = LinearRegression(fit_intercept=False).fit(np.asarray(X2), np.asarray(y)).coef_
    lr = 1.0 / np.linalg.eigvalsh(X2.T @ X2).max()
    f = lambda w: linear.squared_loss(w, X2, y)  # noqa: E731

    def one_step(w, _):          # one gradient-descent step through the public solver
        w_new = optim.gradient_descent(f, w, learning_rate=lr, tol=1e-30, max_iter=1).x
        return w_new, w

    n_steps = 25 if quick else 60
    _, iterates = jax.lax.scan(one_step, jnp.array([-200.0, 1200.0]), None, length=n_steps)
    iterates = np.asarray(iterates)
    g = 40 if quick else 120
    w1 = np.linspace(w_star[0] - 1200, w_star[0] + 1200, g)
    w2 = np.linspace(w_star[1] - 1200, w_star[1] + 1200, g)
    J = np.asarray(linear.loss_surface(X2, y, w1, w2))
    A, B = np.meshgrid(w1, w2)

    fig = plt.figure(figsize=(13, 5.5))
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    ax3.plot_surface(A, B, J, cmap="viridis", alpha=0.85, linewidth=0)
    ax3.set(xlabel="w_bmi", ylabel="w_s5", zlabel="J(w)", title=r"$J(w)=\frac{1}{2}\|y-Xw\|^2$")
    ax = fig.add_subplot(1, 2, 2)
    cs = ax.contour(A, B, J, levels=np.quantile(J, np.linspace(0.002, 0.6, 14)), cmap="viridis")
    ax.clabel(cs, fontsize=6, fmt="%.2g")
    ax.plot(iterates[:, 0], iterates[:, 1], "o-", color="C3", ms=3, lw=1, label="gradient descent")
    ax.plot(*w_star, "k*", ms=12, label="minimizer (scikit-learn)")
    ax.set(xlabel="w_bmi", ylabel="w_s5", title="contours of J with the GD iterates", aspect="equal")
    ax.legend()
    name = savefig(fig, OUT, "linreg_loss_surface.png")
    return [SummaryRow("J(w) for (bmi, s5) and gradient-descent iterates",
                       f"GD after {n_steps} steps: |w − w*| = {np.linalg.norm(iterates[-1] - w_star):.3g}",
                       f"w* = ({w_star[0]:.1f}, {w_star[1]:.1f}) from scikit-learn", name)]


OUT = Path("out")


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    global OUT
    OUT = Path(out_dir)
    jax.config.update("jax_enable_x64", True)   # compare with scikit-learn in float64
    X, y = load_diabetes(return_X_y=True)
    y = y - y.mean()
    X, y = jnp.asarray(X), jnp.asarray(y)
    return _fits(X, y) + _paths(X, y, quick) + _surface(X, y, quick)


if __name__ == "__main__":
    run(Path("out"))
