"""Relevance vector machine: a sparse Bayesian kernel classifier beside SVC and logistic regression.

1. Breast cancer (scikit-learn bundled, standardized): the kernel RVM (RBF basis on every
   training point, ARD prior variances α, variational posterior fitted with the local
   reparameterization trick) keeps a handful of relevance vectors; SVC keeps ~100 support
   vectors for the same accuracy.
2. Two moons in 2-D: the predictive probability p(y = +1 | x), the decision boundary, the
   relevance vectors circled, next to SVC's support vectors; the ELBO trace.
"""

from __future__ import annotations

from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, savefig
from sklearn.datasets import load_breast_cancer, make_moons
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from jaxml import rvm
from jaxml.kernels import RBF


def _breast_cancer(quick: bool):
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    if quick:
        Xtr, ytr = Xtr[:150], ytr[:150]
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte), 2 * ytr - 1, 2 * yte - 1


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    # full mode: the library defaults (≤ 200 outer iterations, stopping rule of rvm.fit)
    sizes = dict(max_iter=20, n_inner=20) if quick else {}
    # the predictions, compiled once per call shape (rvm.predict / predict_proba run eagerly,
    # one dispatch per operation)
    predict, predict_proba = jax.jit(rvm.predict), jax.jit(rvm.predict_proba)
    rows = []

    # ---- breast cancer
    Xtr, Xte, ytr, yte = _breast_cancer(quick)
    gamma = 1.0 / Xtr.shape[1]
    model = rvm.fit(jax.random.key(0), Xtr, ytr, kernel=RBF(gamma), **sizes)
    acc = float(np.mean(np.asarray(predict(model, Xte)) == yte))
    n_rv = int(model.relevant[1:].sum())   # relevant[0] is the bias
    lr = LogisticRegression(max_iter=1000).fit(Xtr, ytr)
    svc = SVC(kernel="rbf", gamma=gamma).fit(Xtr, ytr)
    p = np.asarray(predict_proba(model, Xte))
    brier = float(np.mean((p - (yte == 1)) ** 2))
    brier_lr = float(np.mean((lr.predict_proba(Xte)[:, 1] - (yte == 1)) ** 2))
    rows.append(SummaryRow(
        f"kernel RVM (RBF γ=1/d), breast cancer, n_train={len(ytr)}",
        f"test acc {acc:.3f}, {n_rv} relevance vectors, Brier {brier:.3f}; "
        f"{int(model.n_iter)} outer iterations, converged={bool(model.converged)}",
        f"LogisticRegression acc {lr.score(Xte, yte):.3f} (Brier {brier_lr:.3f}); "
        f"SVC acc {svc.score(Xte, yte):.3f} with {svc.n_support_.sum()} support vectors"))

    # ---- 2-D picture
    # quick: as many moons as breast-cancer training rows, the 2-D points padded with zero
    # features to the same width (an RBF kernel sees the same distances), so both fits run
    # one compiled program
    X2, y01 = make_moons(n_samples=len(ytr) if quick else 200, noise=0.25, random_state=0)
    y2 = 2 * y01 - 1
    pad = (lambda A: np.pad(A, ((0, 0), (0, Xtr.shape[1] - 2)))) if quick else (lambda A: A)
    m2 = rvm.fit(jax.random.key(1), pad(X2), y2, kernel=RBF(2.0), **sizes)
    svc2 = SVC(kernel="rbf", gamma=2.0).fit(X2, y2)
    g0, g1 = np.meshgrid(np.linspace(-1.8, 2.8, 120), np.linspace(-1.3, 1.8, 100))
    grid = np.c_[g0.ravel(), g1.ravel()]
    prob = np.asarray(predict_proba(m2, pad(grid))).reshape(g0.shape)
    rv = np.asarray(m2.relevant[1:])            # the bias comes first

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    cs = ax.contourf(g0, g1, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.7)
    ax.contour(g0, g1, prob, levels=[0.5], colors="k", linewidths=2)
    ax.scatter(*X2.T, c=y2, cmap="bwr", s=14, edgecolors="none")
    ax.scatter(*X2[rv].T, s=140, facecolors="none", edgecolors="k", linewidths=1.6,
               label=f"{rv.sum()} relevance vectors")
    ax.set_title("kernel RVM: p(y=+1|x), boundary p=½")
    ax.legend(loc="lower left")
    fig.colorbar(cs, ax=ax)

    ax = axes[1]
    dec = svc2.decision_function(grid).reshape(g0.shape)
    ax.contour(g0, g1, dec, levels=[-1, 0, 1], colors="k", linestyles=["--", "-", "--"])
    ax.scatter(*X2.T, c=y2, cmap="bwr", s=14, edgecolors="none")
    sv = svc2.support_
    ax.scatter(*X2[sv].T, s=140, facecolors="none", edgecolors="g", linewidths=1.4,
               label=f"{len(sv)} support vectors")
    ax.set_title("scikit-learn SVC (same RBF kernel): margins")
    ax.legend(loc="lower left")

    ax = axes[2]
    tr = np.asarray(model.trace)[: int(model.n_iter)]
    ax.plot(np.arange(1, len(tr) + 1), tr, label="breast cancer")
    tr2 = np.asarray(m2.trace)[: int(m2.n_iter)]
    ax.plot(np.arange(1, len(tr2) + 1), tr2, label="moons")
    ax.set_xlabel("outer iteration (Adam steps on q, then 1/α = μ² + diag Σ)")
    ax.set_ylabel("ELBO")
    ax.set_title("ELBO trace")
    ax.legend()
    fig_name = savefig(fig, out_dir, "rvm.png")

    acc2 = float(np.mean(np.asarray(predict(m2, pad(X2))) == y2))
    rows.append(SummaryRow(
        "kernel RVM (RBF γ=2), two moons 2-D",
        f"train acc {acc2:.3f}, {rv.sum()} relevance vectors; {int(m2.n_iter)} outer "
        f"iterations, converged={bool(m2.converged)}",
        f"SVC train acc {svc2.score(X2, y2):.3f}, {len(sv)} support vectors", fig_name))

    # ---- the α spectrum on breast cancer
    fig, ax = plt.subplots(figsize=(6, 3.8))
    a = np.sort(1.0 / np.asarray(model.alpha))[::-1]   # prior variances 1/α (α: precisions)
    ax.semilogy(a, ".-")
    ax.axhline(1e-3 * a[0], color="r", ls="--", label="pruning threshold (10⁻³ · max 1/α)")
    ax.set_xlabel("basis function (sorted)")
    ax.set_ylabel("prior variance 1/α")
    ax.set_title("ARD: most prior variances collapse to 0 (α → ∞)")
    ax.legend()
    rows.append(SummaryRow("RVM prior variances, breast cancer",
                           f"{n_rv} of {len(a) - 1} basis functions kept",
                           f"SVC: {svc.n_support_.sum()} support vectors",
                           savefig(fig, out_dir, "rvm_alpha.png")))
    rows[0] = rows[0]._replace(figure="rvm_alpha.png")
    return rows


if __name__ == "__main__":
    run(Path("out"))
