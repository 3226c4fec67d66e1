"""Hyperparameters learned by gradient descent through the fit, beside a grid search.

jaxml's fits are differentiable with respect to their hyperparameters: the solution carries
the implicit-function-theorem derivative of its fixed point (the SVM dual's projected
gradient map, the lasso's soft-threshold step), so ``jax.grad`` of a held-out loss with
respect to (log C, log γ) or log α costs about one more linear solve per fit. Here:

- an RBF SVM on breast cancer (standardized, a fixed train/validation split): (log C, log γ)
  by gradient descent on the validation logistic loss mean log(1 + exp(−y f(x))) of the
  decision function f (a smooth surrogate of the error rate), against scikit-learn's
  ``GridSearchCV(SVC)`` on the same split (``PredefinedSplit``);
- a lasso on diabetes: log α by gradient descent on the validation mean squared error,
  against ``GridSearchCV(Lasso)``.

Each panel draws the validation-loss surface (a grid of fits, through the same compiled
program as the descent: the hyperparameters are traced arguments) with the gradient path
on it; the summary gives the number of fits each method needed and the held-out score each
reached.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, main, savefig
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import Lasso
from sklearn.model_selection import GridSearchCV, PredefinedSplit, train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from jaxml import linear, svm

jax.config.update("jax_enable_x64", True)


def _split(X, y, n_train, seed=0):
    Xtr, Xva, ytr, yva = train_test_split(X, y, train_size=n_train, random_state=seed)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xva), ytr, yva


def _descend(value_and_grad, p0, steps, lr):
    """Normalized gradient descent: steps along −∇ (in log space) of length ``lr``, shrinking
    by 10% a step (so the path settles instead of bouncing around the minimum)."""
    p = jnp.asarray(p0, jnp.float64)
    path, losses = [np.asarray(p)], []
    for k in range(steps):
        v, g = value_and_grad(p)
        losses.append(float(v))
        g = np.nan_to_num(np.asarray(g))
        p = p - lr * 0.9 ** k * g / max(float(np.linalg.norm(g)), 1e-12)
        path.append(np.asarray(p))
    return np.array(path), losses


def _predefined(n_train, n_val):
    return PredefinedSplit(np.r_[np.full(n_train, -1), np.zeros(n_val)])


# ----------------------------------------------------------------------------- SVM
def _svm(out_dir: Path, quick: bool) -> list[SummaryRow]:
    X, y = load_breast_cancer(return_X_y=True)
    y = np.where(y == 1, 1.0, -1.0)
    n_train = 120 if quick else 300
    Xtr, Xva, ytr, yva = _split(X, y, n_train)
    if quick:
        Xva, yva = Xva[:150], yva[:150]
    tol = 1e-6

    def val_loss_and_accuracy(p):
        C, gamma = jnp.exp(p[0]), jnp.exp(p[1])
        model = svm.fit(Xtr, ytr, C=C, kernel=svm.RBF(gamma), tol=tol)
        f = svm.decision_function(model, Xva)
        accuracy = jnp.mean(svm.predict(model, Xva) == yva)
        return jnp.mean(jnp.logaddexp(0.0, -yva * f)), accuracy

    # ONE compiled program (the fit, its loss, accuracy and gradient; p a traced argument)
    # serves the descent, the loss surface and the end point
    vga = jax.jit(jax.value_and_grad(val_loss_and_accuracy, has_aux=True))
    steps = 6 if quick else 30
    p0 = (-2.0, -6.0)                          # a poor start: small C, a nearly flat kernel

    def vg(p):
        (loss, _), grad = vga(p)
        return loss, grad

    path, losses = _descend(vg, p0, steps, lr=1.0)
    acc = float(vga(jnp.asarray(path[-1]))[0][1])

    k = 5 if quick else 15
    logC = np.linspace(-3, 4, k)
    logG = np.linspace(-7, 1, k)
    G1, G2 = np.meshgrid(logC, logG)
    surface = np.array([float(vga(jnp.asarray(p))[0][0])
                        for p in np.c_[G1.ravel(), G2.ravel()]]).reshape(G1.shape)

    search = GridSearchCV(SVC(tol=1e-3), {"C": np.exp(logC), "gamma": np.exp(logG)},
                          cv=_predefined(len(ytr), len(yva)), refit=False)
    search.fit(np.r_[Xtr, Xva], np.r_[ytr, yva])
    acc_grid = float(search.best_score_)
    n_grid = len(search.cv_results_["params"])

    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    cs = ax.contourf(G1, G2, surface, levels=20, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="validation logistic loss")
    ax.plot(path[:, 0], path[:, 1], "w.-", lw=1.5, label=f"gradient descent ({steps} fits)")
    ax.plot(*path[-1], "r*", ms=14, label=f"end: accuracy {acc:.3f}")
    bC, bG = np.log(search.best_params_["C"]), np.log(search.best_params_["gamma"])
    ax.plot(bC, bG, "ks", mfc="none", ms=10, label=f"GridSearchCV best ({n_grid} fits): {acc_grid:.3f}")
    ax.set_xlabel("log C")
    ax.set_ylabel("log γ")
    ax.set_title("RBF SVM on breast cancer: (C, γ) by jax.grad through svm.fit", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    name = savefig(fig, out_dir, "hypergrad_svm.png")
    return [SummaryRow(
        "RBF SVM (C, γ) by gradient descent on validation loss, breast cancer: "
        "validation accuracy / fits",
        f"{acc:.3f} / {steps} fits (loss {losses[0]:.3f} → {losses[-1]:.3f})",
        f"GridSearchCV(SVC): {acc_grid:.3f} / {n_grid} fits", name)]


# ----------------------------------------------------------------------------- lasso
def _lasso(out_dir: Path, quick: bool) -> list[SummaryRow]:
    X, y = load_diabetes(return_X_y=True)
    Xtr, Xva, ytr, yva = _split(X, y, 150 if quick else 300)
    mu = ytr.mean()
    ytr, yva = ytr - mu, yva - mu

    def val_mse(p):
        w = linear.lasso(Xtr, ytr, jnp.exp(p[0]), tol=1e-10, max_iter=20_000).w
        return jnp.mean((Xva @ w - yva) ** 2)

    vg = jax.jit(jax.value_and_grad(val_mse))
    steps = 6 if quick else 25
    path, losses = _descend(vg, [np.log(30.0)], steps, lr=0.8)
    alpha = float(np.exp(path[-1, 0]))

    # the grid's curve and the path's losses through the same compiled program
    log_alphas = np.linspace(-3, 4, 12 if quick else 60)
    curve = np.array([float(vg(jnp.asarray([a]))[0]) for a in log_alphas])
    path_losses = losses + [float(vg(jnp.asarray(path[-1]))[0])]
    mse = path_losses[-1]
    search = GridSearchCV(Lasso(fit_intercept=False, tol=1e-8, max_iter=100_000),
                          {"alpha": np.exp(log_alphas)}, cv=_predefined(len(ytr), len(yva)),
                          scoring="neg_mean_squared_error", refit=False)
    search.fit(np.r_[Xtr, Xva], np.r_[ytr, yva])
    mse_grid = -float(search.best_score_)
    n_grid = len(log_alphas)

    fig, ax = plt.subplots(figsize=(5.6, 4))
    ax.plot(log_alphas, curve, "k-", lw=1, label="validation MSE (grid of fits)")
    ax.plot(path[:, 0], path_losses, "o-", c="tab:orange", ms=4,
            label=f"gradient descent ({steps} fits)")
    ax.axvline(np.log(search.best_params_["alpha"]), c="tab:blue", ls=":",
               label=f"GridSearchCV(Lasso) best ({n_grid} fits)")
    ax.set_xlabel("log α")
    ax.set_ylabel("validation MSE")
    ax.set_title(f"lasso on diabetes: α = {alpha:.3g} by jax.grad through linear.lasso",
                 fontsize=9)
    ax.legend(fontsize=7)
    name = savefig(fig, out_dir, "hypergrad_lasso.png")
    return [SummaryRow("lasso α by gradient descent on validation MSE, diabetes: "
                       "validation MSE / fits",
                       f"{mse:.1f} / {steps} fits (α = {alpha:.3g})",
                       f"GridSearchCV(Lasso): {mse_grid:.1f} / {n_grid} fits", name)]


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    out_dir = Path(out_dir)
    return _svm(out_dir, quick) + _lasso(out_dir, quick)


if __name__ == "__main__":
    main(run, __doc__)
