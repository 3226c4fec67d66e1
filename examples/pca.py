"""PCA as the eigenvectors of the covariance: digits and iris in 2-D, scree plot, reconstructions.

jaxml.pca.fit eigendecomposes the sample covariance; scikit-learn's
PCA(svd_solver="covariance_eigh") is the reference for the variances beside it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, savefig
from sklearn.datasets import load_digits, load_iris
from sklearn.decomposition import PCA

from jaxml import pca


def _scatter_2d(ax, Z, labels, names, title):
    for c, name in enumerate(names):
        m = labels == c
        ax.scatter(Z[m, 0], Z[m, 1], s=6, alpha=0.7, label=str(name))
    ax.set(title=title, xlabel="PC 1", ylabel="PC 2")
    ax.legend(markerscale=2, fontsize=7, ncol=2 if len(names) > 5 else 1)


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    digits, iris = load_digits(), load_iris()
    Xd, Xi = digits.data, iris.data
    rows = []

    # 2-D projections
    rd, ri = pca.fit(Xd, 2), pca.fit(Xi, 2)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    _scatter_2d(axes[0], np.asarray(pca.transform(rd, Xd)), digits.target, range(10),
                "digits (64-D) on its first two principal axes")
    _scatter_2d(axes[1], np.asarray(pca.transform(ri, Xi)), iris.target, iris.target_names,
                "iris (4-D) on its first two principal axes")
    f_proj = savefig(fig, out_dir, "pca_projections.png")
    sk_i = PCA(2, svd_solver="covariance_eigh").fit(Xi)
    rows.append(SummaryRow("PCA iris, 2 components: explained variance ratio",
                           np.array2string(np.asarray(ri.explained_variance_ratio), precision=5),
                           "scikit-learn " + np.array2string(sk_i.explained_variance_ratio_,
                                                             precision=5), f_proj))

    # scree plot: every eigenvalue of the digits covariance, beside scikit-learn's
    full = pca.fit(Xd, Xd.shape[1])
    sk = PCA(Xd.shape[1], svd_solver="covariance_eigh").fit(Xd)
    ratio = np.asarray(full.explained_variance_ratio)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    j = np.arange(1, ratio.size + 1)
    ax.bar(j, ratio, color="tab:blue", alpha=0.6, label="jaxml: λⱼ / Σλ")
    ax.plot(j, np.cumsum(ratio), "-", color="tab:blue", label="jaxml cumulative")
    ax.plot(j, sk.explained_variance_ratio_, "k.", ms=3, label="scikit-learn λⱼ / Σλ")
    ax.plot(j, np.cumsum(sk.explained_variance_ratio_), "k:", label="scikit-learn cumulative")
    ax.set(xlabel="component j", ylabel="fraction of variance", title="digits: scree plot")
    ax.legend(fontsize=8)
    f_scree = savefig(fig, out_dir, "pca_scree.png")
    gap = np.max(np.abs(np.asarray(full.explained_variance) - sk.explained_variance_)
                 / sk.explained_variance_.max())
    top = np.asarray(full.explained_variance[:3])
    rows.append(SummaryRow("PCA digits: top-3 explained variances",
                           np.array2string(top, precision=3),
                           "scikit-learn " + np.array2string(sk.explained_variance_[:3],
                                                             precision=3)
                           + f" (max relative gap {gap:.1e})", f_scree))
    k90 = int(np.searchsorted(np.cumsum(ratio), 0.9) + 1)
    rows.append(SummaryRow("PCA digits: components for 90% of the variance", str(k90),
                           str(int(np.searchsorted(np.cumsum(sk.explained_variance_ratio_),
                                                   0.9) + 1)), f_scree))

    # reconstructions of a few digits from k components
    ks = [2, 10, 64] if quick else [1, 2, 5, 10, 20, 40, 64]
    shown = Xd[:6]
    fig, axes = plt.subplots(len(shown), len(ks) + 1,
                             figsize=(1.3 * (len(ks) + 1), 1.4 * len(shown)))
    errors = []
    for col, k in enumerate(ks):
        r = pca.fit(Xd, k)
        rec = np.asarray(pca.inverse_transform(r, pca.transform(r, Xd)))
        errors.append(np.mean(np.sum((rec - Xd) ** 2, axis=1)))
        for row in range(len(shown)):
            axes[row, col + 1].imshow(rec[row].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        axes[0, col + 1].set_title(f"k={k}", fontsize=8)
    for row in range(len(shown)):
        axes[row, 0].imshow(shown[row].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
    axes[0, 0].set_title("original", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    f_rec = savefig(fig, out_dir, "pca_reconstructions.png")
    # The mean squared reconstruction error with k components is (n−1)/n · Σ_{j>k} λⱼ.
    n = Xd.shape[0]
    closed = [(n - 1) / n * sk.explained_variance_[k:].sum() for k in ks]
    rows.append(SummaryRow("PCA digits: mean squared reconstruction error, k = "
                           + ", ".join(map(str, ks)),
                           ", ".join(f"{e:.2f}" for e in errors),
                           "(n−1)/n·Σ_{j>k} λⱼ from scikit-learn: "
                           + ", ".join(f"{c:.2f}" for c in closed), f_rec))
    return rows


if __name__ == "__main__":
    run(Path("out"))
