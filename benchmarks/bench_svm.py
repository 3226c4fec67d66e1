"""jaxml.svm (SMO, second-order working set) vs scikit-learn's SVC (libsvm).

Same data, same C, kernel and stopping tolerance (the maximal KKT violation, libsvm's
``tol``). jaxml runs in float32 (its intended precision on CPU and accelerators: the whole
Gram matrix is computed once and every SMO step is an O(n) pass over it); libsvm works in
float64 with its kernel cache and shrinking. Quality: the dual objective of both solutions
(sklearn's recomputed from ``dual_coef_``/``support_`` in float64), the support-vector
counts, and the agreement of predictions on held-out points.

    python benchmarks/run_all.py --only svm [--quick] --out out/bench
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import BenchRow, time_fn, time_plain_and_jit, write_report
from sklearn.datasets import make_classification
from sklearn.metrics.pairwise import linear_kernel, rbf_kernel
from sklearn.svm import SVC

from jaxml import svm


def _data(n, d, seed=0, n_test=2000):
    """make_classification: 2 informative clusters per class, 5% flipped labels (so not
    separable, and a real share of bounded support vectors)."""
    X, y = make_classification(n_samples=n + n_test, n_features=d, n_informative=min(10, d),
                               n_redundant=min(5, d - min(10, d)), flip_y=0.05, class_sep=1.0,
                               random_state=seed)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    y = np.where(y == 1, 1, -1)
    return X[:n], y[:n], X[n:], y[n:]


def _sk_dual(clf, X, kfun):
    dc = clf.dual_coef_[0]
    Xs = X[clf.support_].astype(np.float64)
    return np.abs(dc).sum() - 0.5 * dc @ kfun(Xs, Xs) @ dc


def _one(name, X, y, Xt, yt, kern, sk_kw, kfun, C, tol, repeats):
    fit = lambda X, y: svm.fit(X, y, C=C, kernel=kern, tol=tol)  # noqa: E731  (plain call)
    timing, model = time_plain_and_jit(fit, jnp.asarray(X), jnp.asarray(y), repeats=repeats)
    ref_t, clf = time_fn(lambda: SVC(C=C, tol=tol, **sk_kw).fit(X, y), repeats=repeats)
    d_ours, d_ref = float(model.dual_objective), _sk_dual(clf, X, kfun)
    agree = float((np.asarray(svm.predict(model, Xt)) == clf.predict(Xt)).mean())
    quality = (f"dual {d_ours:.6g} vs {d_ref:.6g} (rel {abs(d_ours - d_ref) / abs(d_ref):.1e}); "
               f"SVs {int(model.support.sum())} vs {len(clf.support_)}; test predictions agree "
               f"{100 * agree:.2f}%; converged {bool(model.converged)}, "
               f"{int(model.n_iter)} SMO steps vs libsvm {int(clf.n_iter_[0])}")
    note = "jaxml float32, full Gram matrix once; libsvm float64, kernel cache + shrinking"
    if isinstance(kern, svm.Linear):
        note += "; jaxml's linear fit shrinks as libsvm does (same dual, same stopping rule)"
    if jax.default_backend() == "cpu":
        note += "; CPU only (no GPU lent: the n=50 000 GPU run was not made)"
    row = BenchRow(name, timing.median_s, timing.compile_s, "SVC (libsvm, float64)",
                   ref_t.median_s, quality, ">= 1x", note, jit_s=timing.jit_s)
    return row, (np.asarray(svm.decision_function(model, Xt)), clf.decision_function(Xt))


def _sweep(X, y, Cs, gamma, tol, repeats):
    # the plain vmapped call, as users write it; jax.jit of it beside
    fit = jax.vmap(lambda c, X, y: svm.fit(X, y, C=c, kernel=svm.RBF(gamma), tol=tol),
                   in_axes=(0, None, None))
    timing, models = time_plain_and_jit(fit, jnp.asarray(Cs, jnp.float32), jnp.asarray(X),
                                        jnp.asarray(y), repeats=repeats)

    def loop():
        return [SVC(C=float(c), gamma=gamma, tol=tol).fit(X, y) for c in Cs]

    ref_t, clfs = time_fn(loop, repeats=max(1, repeats // 2))
    kfun = lambda A, B: rbf_kernel(A, B, gamma=gamma)  # noqa: E731
    d_ref = np.array([_sk_dual(c, X, kfun) for c in clfs])
    d_ours = np.asarray(models.dual_objective, np.float64)
    rel = float(np.max(np.abs(d_ours - d_ref) / np.abs(d_ref)))
    row = BenchRow(f"RBF n={len(y)}, d={X.shape[1]}, {len(Cs)} values of C in one vmapped call",
                   timing.median_s, timing.compile_s, f"{len(Cs)} SVC fits", ref_t.median_s,
                   f"max rel dual diff {rel:.1e}; all converged {bool(np.all(models.converged))}",
                   ">= 1x", "jaxml float32, 4 SMO steps per loop step; libsvm float64",
                   jit_s=timing.jit_s)
    return row, (d_ours, d_ref)


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    repeats = 2 if quick else 3
    n_rbf, n_lin, n_sweep, d = (1000, 500, 500, 20) if quick else (5000, 2000, 2000, 20)
    tol, C = 1e-3, 1.0
    rows = []

    X, y, Xt, yt = _data(n_rbf, d)
    gamma = float(1.0 / (d * X.var()))                 # SVC's gamma="scale"
    row, rbf_pts = _one(f"RBF n={n_rbf}, d={d}, C={C}, tol={tol}", X, y, Xt, yt, svm.RBF(gamma),
                        dict(kernel="rbf", gamma=gamma), lambda A, B: rbf_kernel(A, B, gamma=gamma),
                        C, tol, repeats)
    rows.append(row)

    X, y, Xt, yt = _data(n_lin, d, seed=1)
    row, lin_pts = _one(f"linear n={n_lin}, d={d}, C={C}, tol={tol}", X, y, Xt, yt, svm.Linear(),
                        dict(kernel="linear"), linear_kernel, C, tol, repeats)
    rows.append(row)

    X, y, _, _ = _data(n_sweep, d, seed=2)
    Cs = np.logspace(-1, 2, 8)
    row, (d_ours, d_ref) = _sweep(X, y, Cs, float(1.0 / (d * X.var())), tol, repeats)
    rows.append(row)

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.3))
    for ax, (ours, ref), title in zip(axes[:2], [rbf_pts, lin_pts],
                                      [rows[0].workload, rows[1].workload]):
        ax.scatter(ref, ours, s=4, alpha=0.5)
        lim = [min(ref.min(), ours.min()), max(ref.max(), ours.max())]
        ax.plot(lim, lim, "k:", lw=1)
        ax.set_xlabel("SVC decision function (held-out points)")
        ax.set_ylabel("jaxml.svm decision function")
        ax.set_title(title, fontsize=9)
    axes[2].loglog(Cs, d_ref, "o-", label="SVC (8 fits)")
    axes[2].loglog(Cs, d_ours, "x--", label="jaxml (one vmapped call)")
    axes[2].set_xlabel("C")
    axes[2].set_ylabel("dual objective D(α)")
    axes[2].legend()
    axes[2].set_title(rows[2].workload, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "bench_svm.png", dpi=110)
    plt.close(fig)
    write_report(rows, out_dir, "bench_svm")
    return rows
