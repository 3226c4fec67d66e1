"""Kernel RVM fit time and accuracy vs scikit-learn SVC and LogisticRegression.

Workloads (standardized features, 75/25 stratified split, RBF kernel γ = 1/d for RVM and SVC):
breast cancer (n_train = 426, d = 30) and digits 3 vs 8 (n_train ≈ 268, d = 64). The RVM runs
with ``rvm.fit``'s defaults: at most 200 outer iterations × 50 Adam steps (local
reparameterization, 4 draws per point), stopping on its windowed ELBO rule; its fit time is
the median of 3 calls after compilation, reported beside the compile time, with the number
of outer iterations taken and the ``converged`` flag.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchRow, time_fn, time_plain_and_jit, write_report  # noqa: E402

from jaxml import rvm  # noqa: E402
from jaxml.kernels import RBF  # noqa: E402


def _datasets():
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast cancer", X, y
    X, y = load_digits(return_X_y=True)
    keep = (y == 3) | (y == 8)
    yield "digits 3 vs 8", X[keep], (y[keep] == 8).astype(int)


def _split(X, y):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte), 2 * ytr - 1, 2 * yte - 1


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    import matplotlib.pyplot as plt

    sizes = dict(max_iter=20, n_inner=20) if quick else dict(max_iter=200, n_inner=50)
    repeats = 1 if quick else 3
    rows, summary = [], []
    for name, X, y in _datasets():
        Xtr, Xte, ytr, yte = _split(X, y)
        gamma = 1.0 / Xtr.shape[1]
        key = jax.random.key(0)
        kern = RBF(gamma)
        t_rvm, model = time_plain_and_jit(   # the plain call, as users write it
            lambda k, X, y: rvm.fit(k, X, y, kernel=kern, **sizes), key, Xtr, ytr,
            repeats=repeats)
        acc = float(np.mean(np.asarray(rvm.predict(model, Xte)) == yte))
        n_rv = int(model.relevant[1:].sum())   # relevant[0] is the bias
        t_svc, svc = time_fn(lambda: SVC(kernel="rbf", gamma=gamma).fit(Xtr, ytr), repeats=repeats)
        t_lr, lr = time_fn(lambda: LogisticRegression(max_iter=1000).fit(Xtr, ytr),
                           repeats=repeats)
        acc_svc, acc_lr = svc.score(Xte, yte), lr.score(Xte, yte)
        n_sv = int(svc.n_support_.sum())
        note = (f"RVM ≤ {sizes['max_iter']} outer iterations × {sizes['n_inner']} Adam steps, "
                f"stopped after {int(model.n_iter)}, converged={bool(model.converged)}")
        rows.append(BenchRow(
            f"kernel RVM, {name} (n_train={len(ytr)}, d={Xtr.shape[1]})", t_rvm.median_s,
            t_rvm.compile_s, "sklearn SVC (rbf, same γ)", t_svc.median_s,
            f"test acc RVM {acc:.3f} with {n_rv} RVs vs SVC {acc_svc:.3f} with {n_sv} SVs",
            note=note, jit_s=t_rvm.jit_s))
        rows.append(BenchRow(
            f"kernel RVM, {name}", t_rvm.median_s, t_rvm.compile_s,
            "sklearn LogisticRegression (linear)", t_lr.median_s,
            f"test acc RVM {acc:.3f} vs LR {acc_lr:.3f}", note=note, jit_s=t_rvm.jit_s))
        summary.append((name, acc, acc_svc, acc_lr, n_rv, n_sv, t_rvm.median_s, t_svc.median_s,
                        t_lr.median_s))

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    idx = np.arange(len(summary))
    w = 0.27
    for j, (lab, col) in enumerate([("RVM", 1), ("SVC", 2), ("LogReg", 3)]):
        axes[0].bar(idx + (j - 1) * w, [s[col] for s in summary], w, label=lab)
    axes[0].set_ylim(0.85, 1.0)
    axes[0].set_ylabel("test accuracy")
    axes[0].set_title("same problem, same accuracy")
    for j, (lab, col) in enumerate([("relevance vectors", 4), ("support vectors", 5)]):
        axes[1].bar(idx + (j - 0.5) * w, [s[col] for s in summary], w, label=lab)
    axes[1].set_ylabel("basis functions kept")
    axes[1].set_title("sparsity")
    for j, (lab, col) in enumerate([("RVM (jaxml)", 6), ("SVC", 7), ("LogReg", 8)]):
        axes[2].bar(idx + (j - 1) * w, [s[col] for s in summary], w, label=lab)
    axes[2].set_yscale("log")
    axes[2].set_ylabel("fit time (s, median)")
    axes[2].set_title("fit time")
    for ax in axes:
        ax.set_xticks(idx, [s[0] for s in summary])
        ax.legend()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "bench_rvm.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_report(rows, out_dir, "bench_rvm")
    return rows


if __name__ == "__main__":
    from _common import format_rows

    print(format_rows(run(Path("out/bench"), quick="--quick" in sys.argv)))
