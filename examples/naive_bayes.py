"""Naive Bayes on real data: Gaussian on iris, wine, breast cancer; multinomial on digits.

Each model is fitted on a stratified 70 % split and scored on the rest, beside scikit-learn's
GaussianNB / MultinomialNB on the same split. jaxml runs in float32 here (JAX's default), so
the probabilities agree to ~1e-5; the tests check 1e-8 in float64.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, savefig
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB, MultinomialNB

from jaxml import naive_bayes as nb

GAUSSIAN_DATA = {"iris": load_iris, "wine": load_wine, "breast cancer": load_breast_cancer}


def _evaluate(fit, reference, X, y):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    model = fit(Xtr, ytr, int(y.max()) + 1)
    ref = reference.fit(Xtr, ytr)
    ours = np.mean(np.asarray(nb.predict(model, Xte)) == yte)
    theirs = np.mean(ref.predict(Xte) == yte)
    gap = np.max(np.abs(np.asarray(nb.predict_proba(model, Xte)) - ref.predict_proba(Xte)))
    return model, ours, theirs, gap


def _iris_regions(ax):
    """Gaussian NB on iris petal length/width: posterior class regions and the data."""
    iris = load_iris()
    X, y = iris.data[:, 2:], iris.target
    model = nb.fit_gaussian(X, y, 3)
    g0, g1 = np.meshgrid(np.linspace(0.5, 7.5, 300), np.linspace(-0.2, 2.8, 200))
    grid = np.c_[g0.ravel(), g1.ravel()]
    proba = np.asarray(nb.predict_proba(model, grid))
    ax.contourf(g0, g1, proba.argmax(1).reshape(g0.shape), levels=[-0.5, 0.5, 1.5, 2.5],
                colors=["tab:blue", "tab:orange", "tab:green"], alpha=0.15)
    ax.contour(g0, g1, proba.max(1).reshape(g0.shape), levels=[0.6, 0.9, 0.99],
               colors="k", linewidths=0.6)
    for c, name in enumerate(iris.target_names):
        ax.scatter(*X[y == c].T, s=10, label=name)
    ax.set(xlabel="petal length (cm)", ylabel="petal width (cm)",
           title="Gaussian NB on iris petals\n(regions; contours: max posterior 0.6/0.9/0.99)")
    ax.legend(fontsize=8)


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    rows, names, accs = [], [], []
    for name, load in GAUSSIAN_DATA.items():
        X, y = load(return_X_y=True)
        _, ours, theirs, gap = _evaluate(nb.fit_gaussian, GaussianNB(), X, y)
        names.append(f"{name}\n(Gaussian)")
        accs.append((ours, theirs))
        rows.append(SummaryRow(f"Gaussian NB, {name}: test accuracy", f"{ours:.4f}",
                               f"scikit-learn {theirs:.4f} (max |Δp| {gap:.1e})",
                               "naive_bayes_accuracy.png"))

    X, y = load_digits(return_X_y=True)
    model, ours, theirs, gap = _evaluate(nb.fit_multinomial, MultinomialNB(), X, y)
    names.append("digits\n(multinomial)")
    accs.append((ours, theirs))
    rows.append(SummaryRow("Multinomial NB (alpha=1), digits: test accuracy", f"{ours:.4f}",
                           f"scikit-learn {theirs:.4f} (max |Δp| {gap:.1e})",
                           "naive_bayes_accuracy.png"))

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    pos = np.arange(len(names))
    accs = np.array(accs)
    axes[0].bar(pos - 0.2, accs[:, 0], 0.4, label="jaxml")
    axes[0].bar(pos + 0.2, accs[:, 1], 0.4, label="scikit-learn")
    for p, (a, b) in zip(pos, accs):
        axes[0].text(p, max(a, b) + 0.01, f"{a:.3f}", ha="center", fontsize=8)
    axes[0].set(xticks=pos, xticklabels=names, ylim=(0.5, 1.05), ylabel="test accuracy",
                title="naive Bayes: held-out accuracy")
    axes[0].legend(loc="lower right")
    _iris_regions(axes[1])
    savefig(fig, out_dir, "naive_bayes_accuracy.png")

    # What the multinomial model learned: p(pixel | class) for each digit.
    fig, axes = plt.subplots(1, 10, figsize=(12, 1.6))
    probs = np.exp(np.asarray(model.feature_log_prob))
    for c, ax in enumerate(axes):
        ax.imshow(probs[c].reshape(8, 8), cmap="gray_r")
        ax.set_title(str(c), fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("multinomial NB on digits: p(pixel | class)", y=1.08, fontsize=10)
    f_pix = savefig(fig, out_dir, "naive_bayes_digit_pixels.png")
    rows.append(SummaryRow("Multinomial NB, digits: per-class pixel distributions",
                           "10 × 64 feature probabilities", "", f_pix))
    return rows


if __name__ == "__main__":
    run(Path("out"))
