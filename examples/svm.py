"""Support vector machines: the hyperplane, its margins and its support vectors.

Pictures on 2-D data (iris sepal/petal features, scikit-learn's two moons):
- hard margin on separable classes: the hyperplane wᵀx + b = 0, both margins wᵀx + b = ±1,
  the support vectors circled (the points with αᵢ > 0; w = Σ αᵢ yᵢ xᵢ);
- soft margin at several C, solved in ONE vmapped call (the quick tour: one compiled fit
  called per C): small C buys a wide margin with many support vectors inside it, large C a
  narrow one;
- an RBF kernel on data no hyperplane separates.
Then real data beside scikit-learn's SVC (libsvm): breast cancer (standardized) accuracy,
support-vector count and fit time, and digits one-vs-rest accuracy.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, savefig
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, make_moons
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from jaxml import svm


def _standardize(X):
    return (X - X.mean(0)) / X.std(0)


def _draw(ax, model, X, y, title, grid=200):
    """Decision regions, f = 0 (solid) and f = ±1 (dashed), support vectors circled."""
    pad = 0.5
    x0, x1 = X[:, 0].min() - pad, X[:, 0].max() + pad
    y0, y1 = X[:, 1].min() - pad, X[:, 1].max() + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))
    f = np.asarray(svm.decision_function(model, np.c_[gx.ravel(), gy.ravel()])).reshape(gx.shape)
    ax.contourf(gx, gy, f, levels=[-1e9, 0, 1e9], colors=["#fbd5d5", "#d5e3fb"], alpha=0.6)
    ax.contour(gx, gy, f, levels=[-1, 0, 1], colors="k", linestyles=["--", "-", "--"],
               linewidths=[1, 1.6, 1])
    ax.scatter(*X[y < 0].T, c="tab:red", s=14, label="y = −1")
    ax.scatter(*X[y > 0].T, c="tab:blue", s=14, label="y = +1")
    sv = np.asarray(model.support)
    ax.scatter(*X[sv].T, s=90, facecolors="none", edgecolors="k", linewidths=1.2,
               label="support vectors")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(title, fontsize=9)


def _pictures(out_dir: Path, quick: bool) -> list[SummaryRow]:
    X, labels = load_iris(return_X_y=True)
    # hard margin: setosa vs versicolor on the sepal features (separable)
    m = labels < 2
    Xh = _standardize(X[m][:, :2])
    yh = np.where(labels[m] == 1, 1, -1)
    # soft margin: versicolor vs virginica on the petal features (overlapping)
    m = labels > 0
    Xs = _standardize(X[m][:, 2:])
    ys = np.where(labels[m] == 2, 1, -1)
    # the five linear problems (hard margin + four C), all of one shape: in ONE vmapped call
    # over (X, y, C); the quick tour calls the fit five times instead (C is traced, so the five
    # calls share one compiled program, which compiles several times faster than the vmapped one)
    Cs = [0.01, 0.1, 1.0, 100.0]
    Xb = jnp.stack([Xh] + [Xs] * len(Cs))
    yb = jnp.stack([yh] + [ys] * len(Cs))
    Cb = jnp.array([jnp.inf] + Cs)
    if quick:
        models = [svm.fit(X_, y_, C=c, tol=1e-6) for X_, y_, c in zip(Xb, yb, Cb)]
    else:
        batch = jax.vmap(lambda X_, y_, c: svm.fit(X_, y_, C=c, tol=1e-6))(Xb, yb, Cb)
        models = [jax.tree_util.tree_map(lambda a: a[k], batch) for k in range(len(Cb))]
    how = "five calls of one compiled fit" if quick else "one vmapped call"
    hard, soft = models[0], models[1:]
    # libsvm at tol=1e-8 takes seconds on this problem; at 1e-6 its width agrees to ~1e-9
    ref = SVC(kernel="linear", C=1e10, tol=1e-6 if quick else 1e-8).fit(Xh, yh)
    width, width_ref = float(svm.margin_width(hard)), 2 / np.linalg.norm(ref.coef_[0])

    # RBF kernel on two moons
    Xm, ym = make_moons(120 if quick else 300, noise=0.2, random_state=0)
    ym = np.where(ym == 1, 1, -1)
    rbf = svm.fit(Xm, ym, C=10.0, kernel=svm.RBF(1.0), tol=1e-4)
    rbf_ref = SVC(C=10.0, gamma=1.0, tol=1e-4).fit(Xm, ym)

    grid = 80 if quick else 250
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.4))
    _draw(axes[0, 0], hard, Xh, yh, f"hard margin (C = ∞), sepal features\nwidth 2/‖w‖ = "
          f"{width:.3f} (SVC, C=1e10: {width_ref:.3f}), {int(hard.support.sum())} SVs", grid)
    for c, model_k, ax in zip(Cs, soft, axes.ravel()[1:5]):
        _draw(ax, model_k, Xs, ys, f"soft margin, C = {c:g}, petal features\nwidth "
              f"{float(svm.margin_width(model_k)):.3f}, {int(model_k.support.sum())} SVs", grid)
    _draw(axes[1, 2], rbf, Xm, ym, f"RBF kernel (γ = 1, C = 10), two moons\n"
          f"{int(rbf.support.sum())} SVs (SVC: {len(rbf_ref.support_)})", grid)
    axes[0, 0].legend(loc="lower right", fontsize=7)
    fig.suptitle("SVM: hyperplane wᵀx + b = 0 (solid), margins wᵀx + b = ±1 (dashed), "
                 f"support vectors circled; the five linear fits are {how}")
    fig.tight_layout()
    name = savefig(fig, out_dir, "svm_margins.png")

    sv_soft = [int(m.support.sum()) for m in soft]
    sv_ref = [len(SVC(kernel="linear", C=float(c), tol=1e-6).fit(Xs, ys).support_) for c in Cs]
    acc_rbf = float((np.asarray(svm.predict(rbf, Xm)) == ym).mean())
    return [
        SummaryRow("hard-margin SVM, iris setosa vs versicolor (sepal), margin width 2/‖w‖",
                   f"{width:.4f}", f"SVC C=1e10: {width_ref:.4f}", name),
        SummaryRow(f"soft-margin SVM, iris versicolor vs virginica, C = {Cs} "
                   f"({how}), support vectors", f"{sv_soft}", f"SVC: {sv_ref}", name),
        SummaryRow("RBF SVM on two moons (γ=1, C=10), training accuracy",
                   f"{acc_rbf:.3f}", f"SVC: {rbf_ref.score(Xm, ym):.3f}", name),
    ]


def _timed(fn):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t0


def _breast_cancer(out_dir: Path, quick: bool) -> list[SummaryRow]:
    X, y = load_breast_cancer(return_X_y=True)
    y = np.where(y == 1, 1, -1)
    if quick:
        X, y = X[:240], y[:240]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    Xtr, Xte = sc.transform(Xtr).astype(np.float32), sc.transform(Xte).astype(np.float32)
    gamma = 1.0 / Xtr.shape[1]          # = SVC's gamma="scale" on standardized data
    fit = lambda: svm.fit(Xtr, ytr, C=1.0, kernel=svm.RBF(gamma), tol=1e-3)  # noqa: E731
    _, first = _timed(fit)
    model, t_ours = _timed(fit)
    ref, t_ref = _timed(lambda: SVC(C=1.0, gamma=gamma, tol=1e-3).fit(Xtr, ytr))
    acc = float((np.asarray(svm.predict(model, Xte)) == yte).mean())
    acc_ref = ref.score(Xte, yte)

    f = np.asarray(svm.decision_function(model, Xte))
    fig, ax = plt.subplots(figsize=(5, 4.6))
    ax.scatter(ref.decision_function(Xte), f, s=12, c=np.where(yte > 0, "tab:blue", "tab:red"))
    lim = [min(f.min(), -2), max(f.max(), 2)]
    ax.plot(lim, lim, "k:", lw=1)
    ax.axhline(0, c="grey", lw=0.5)
    ax.axvline(0, c="grey", lw=0.5)
    ax.set_xlabel("scikit-learn SVC decision function")
    ax.set_ylabel("jaxml.svm decision function")
    ax.set_title(f"breast cancer (test set), RBF γ=1/d, C=1\naccuracy {acc:.3f} (SVC {acc_ref:.3f}), "
                 f"{int(model.support.sum())} SVs (SVC {len(ref.support_)})", fontsize=9)
    name = savefig(fig, out_dir, "svm_breast_cancer.png")
    return [SummaryRow(
        "RBF SVM, breast cancer standardized (float32): test accuracy / #SV / fit s",
        f"{acc:.3f} / {int(model.support.sum())} / {t_ours:.3f}s (+{max(first - t_ours, 0):.2f}s compile)",
        f"SVC: {acc_ref:.3f} / {len(ref.support_)} / {t_ref:.3f}s", name)]


def _digits(out_dir: Path, quick: bool) -> list[SummaryRow]:
    X, labels = load_digits(return_X_y=True)
    if quick:
        X, labels = X[:400], labels[:400]
    Xtr, Xte, ltr, lte = train_test_split(X / 16.0, labels, test_size=0.3, random_state=0,
                                          stratify=labels)
    Xtr, Xte = Xtr.astype(np.float32), Xte.astype(np.float32)
    gamma = 1.0 / (Xtr.shape[1] * Xtr.var())
    model = svm.fit_one_vs_rest(Xtr, ltr, 10, C=1.0, kernel=svm.RBF(gamma), tol=1e-3)
    pred = np.asarray(svm.predict_one_vs_rest(model, Xte))
    ref = OneVsRestClassifier(SVC(C=1.0, gamma=gamma, tol=1e-3)).fit(Xtr, ltr)
    acc, acc_ref = float((pred == lte).mean()), ref.score(Xte, lte)

    conf = np.zeros((10, 10), int)
    np.add.at(conf, (lte, pred), 1)
    fig, ax = plt.subplots(figsize=(5, 4.6))
    ax.imshow(conf, cmap="Blues")
    for i in range(10):
        for j in range(10):
            if conf[i, j]:
                ax.text(j, i, conf[i, j], ha="center", va="center", fontsize=7,
                        color="w" if conf[i, j] > conf.max() / 2 else "k")
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_title(f"digits, one-vs-rest RBF SVM (10 problems, one vmapped solve)\n"
                 f"test accuracy {acc:.3f} (sklearn OvR SVC {acc_ref:.3f})", fontsize=9)
    name = savefig(fig, out_dir, "svm_digits_ovr.png")
    return [SummaryRow("one-vs-rest RBF SVM on digits, test accuracy", f"{acc:.3f}",
                       f"OneVsRestClassifier(SVC): {acc_ref:.3f}", name)]


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    out_dir = Path(out_dir)
    return _pictures(out_dir, quick) + _breast_cancer(out_dir, quick) + _digits(out_dir, quick)


if __name__ == "__main__":
    run(Path("out"))
