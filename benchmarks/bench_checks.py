"""The cost of run-time input checks (issue 13): the same traced call with
``jaxml.config.runtime_checks`` on and off.

A plain call checks concrete inputs in Python (always); when the caller traces jaxml (here
``jax.jit`` over the data and the hyperparameters, as users do when they wrap a training
loop), the value checks compile into the program (``equinox.error_if``: a reduction over
each checked array and a host callback). "reference" is the same jitted call traced with
the checks switched off; the speed-up column is off/on, so 0.95x means the checks cost 5%.
Both return the same numbers (max |difference| in the quality column).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from _common import BenchRow, time_fn, time_plain_and_jit

jax.config.update("jax_enable_x64", True)

import jaxml.config  # noqa: E402
from jaxml import gmm, kmeans, linear, svm  # noqa: E402
from jaxml.kernels import RBF  # noqa: E402


def _workloads(quick: bool):
    rng = np.random.default_rng(0)
    n, d = (2000, 20) if quick else (100_000, 50)
    X = jnp.asarray(rng.normal(size=(n, d)))
    y = jnp.asarray(X @ rng.normal(size=d) + rng.normal(size=n))
    ns = 300 if quick else 2000
    Xs = X[:ns, :5]
    ys = jnp.sign(Xs[:, 0] + 0.3 * jnp.asarray(rng.normal(size=ns)))
    key = jax.random.key(0)
    return [
        (f"ridge {n}x{d}", lambda X, y, a: linear.ridge(X, y, a), (X, y, 1.0)),
        (f"kmeans {n}x{d}, k=8, 30 Lloyd steps",
         lambda X, tol: kmeans.fit(key, X, 8, max_iter=30, tol=tol).centroids, (X, 0.0)),
        (f"gmm diag {n}x{d}, k=4, 30 EM steps",
         lambda X, r: gmm.fit(key, X, 4, covariance_type="diag", max_iter=30, tol=0.0,
                              reg_covar=r).means, (X, 1e-6)),
        (f"svm RBF n={ns}", lambda X, y, C: svm.fit(X, y, C=C, kernel=RBF(gamma=0.5)).alpha,
         (Xs, ys, 1.0)),
    ]


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    import matplotlib.pyplot as plt

    rows, names, ratios = [], [], []
    for name, fn, args in _workloads(quick):
        t_plain, r_on = time_plain_and_jit(fn, *args, repeats=3 if quick else 5)
        t_on = t_plain._replace(median_s=t_plain.jit_s)   # jitted, checks compiled in
        with jaxml.config.runtime_checks(False):
            off = jax.jit(fn)
            t_off, r_off = time_fn(off, *args, repeats=3 if quick else 5)
        diff = float(np.max(np.abs(np.asarray(r_on) - np.asarray(r_off))))
        rows.append(BenchRow(f"{name}, jitted, checks on", t_on.median_s, t_on.compile_s,
                             "same, checks off", t_off.median_s, f"max |diff| {diff:.1e}",
                             "close to 1x",
                             f"off/on; the plain call (checks eager, in Python): "
                             f"{t_plain.median_s:.4g} s"))
        names.append(name.split(" ")[0])
        ratios.append(t_on.median_s / t_off.median_s)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(names, ratios)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_ylabel("time with checks / without")
    ax.set_title("cost of run-time input checks (jitted calls)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "bench_checks.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return rows
