"""jaxml.kmeans vs scikit-learn KMeans(algorithm="lloyd"): 30 Lloyd steps from the same init.

Workload (issue 4): n = 200 000, d = 16, k = 32, float32 (and float64) on both sides, the
same k-means++ centroids, tol = 0 and max_iter = 30 so both run exactly 30 Lloyd
iterations. Peak memory:
XLA's compiled ``memory_analysis()`` temporary bytes, beside n·k and n·k·d itemsizes, and
how it grows with n and with d.

    python benchmarks/run_all.py --only kmeans [--quick] --out out/bench
"""

from __future__ import annotations

from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import BenchRow, time_fn, time_plain_and_jit, write_report  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402

from jaxml import kmeans  # noqa: E402

N_ITER = 30


def _fit_fn(k):
    return jax.jit(lambda X, init: kmeans.fit(None, X, k, init=init, max_iter=N_ITER, tol=0.0))


def _temp_bytes(n, d, k):
    """Compiled temporary (scratch) bytes of one fit, inputs and outputs excluded."""
    X = jax.ShapeDtypeStruct((n, d), jnp.float32)
    C = jax.ShapeDtypeStruct((k, d), jnp.float32)
    mem = _fit_fn(k).lower(X, C).compile().memory_analysis()
    return None if mem is None else int(mem.temp_size_in_bytes)


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    n, d, k = (20_000, 16, 32) if quick else (200_000, 16, 32)
    repeats = 2 if quick else 5
    X, _ = make_blobs(n, d, centers=k, cluster_std=8.0, random_state=0)   # >30 steps to converge
    X = X.astype(np.float32)
    init = np.asarray(kmeans.plusplus_init(jax.random.key(0), X, k))
    Xj, init_j = jnp.asarray(X), jnp.asarray(init)

    def fit(X, init):    # the plain call, as users write it (jax.jit of it timed beside)
        return kmeans.fit(None, X, k, init=init, max_iter=N_ITER, tol=0.0)
    timing, res = time_plain_and_jit(fit, Xj, init_j, repeats=repeats)
    sk = KMeans(k, init=init, n_init=1, max_iter=N_ITER, tol=0.0, algorithm="lloyd")
    ref_t, ref = time_fn(lambda: sk.fit(X), repeats=repeats)

    same = float(np.mean(np.asarray(res.labels) == ref.labels_))
    rel = abs(float(res.inertia) - ref.inertia_) / ref.inertia_
    cdiff = float(np.abs(np.asarray(res.centroids) - ref.cluster_centers_).max())
    # memory growth: with n (at d = 16) and with d (at n fixed)
    ns, ds = [n // 4, n // 2, n], [4, 16, 64]
    by_n = [_temp_bytes(m, d, k) for m in ns]
    by_d = [_temp_bytes(n, e, k) for e in ds]
    temp, nk = by_n[-1], n * k * 4
    mem_note = ("memory_analysis unavailable" if None in by_n + by_d else
                f"peak temp {temp / 2**20:.1f} MiB = {temp / nk:.2f}·(n·k·4 B); at d=4/16/64: "
                + "/".join(f"{b / 2**20:.1f}" for b in by_d)
                + f" MiB vs n·k·d·4 B = {nk * 64 / 2**20:.0f} MiB at d=64")
    rows = [BenchRow(f"k-means n={n}, d={d}, k={k}, {N_ITER} Lloyd iters, float32",
                     timing.median_s, timing.compile_s, 'KMeans(algorithm="lloyd")',
                     ref_t.median_s,
                     f"iters {int(res.n_iter)}/{ref.n_iter_}; inertia rel diff {rel:.1e}; "
                     f"same labels {100 * same:.3f}%; max |Δcentroid| {cdiff:.1e}",
                     ">= 2x; memory O(n·k)", mem_note, jit_s=timing.jit_s)]

    # the same workload in float64: float32 rounding flips a few near-tie labels over 30
    # steps; in float64 both should agree on every label
    X64, init64 = X.astype(np.float64), init.astype(np.float64)
    t64, r64 = time_plain_and_jit(fit, jnp.asarray(X64), jnp.asarray(init64), repeats=repeats)
    sk64 = KMeans(k, init=init64, n_init=1, max_iter=N_ITER, tol=0.0, algorithm="lloyd")
    ref64_t, ref64 = time_fn(lambda: sk64.fit(X64), repeats=repeats)
    rows.append(BenchRow(
        f"k-means n={n}, d={d}, k={k}, {N_ITER} Lloyd iters, float64", t64.median_s,
        t64.compile_s, 'KMeans(algorithm="lloyd")', ref64_t.median_s,
        f"inertia rel diff {abs(float(r64.inertia) - ref64.inertia_) / ref64.inertia_:.1e}; "
        f"same labels {100 * np.mean(np.asarray(r64.labels) == ref64.labels_):.3f}%; max "
        f"|Δcentroid| {np.abs(np.asarray(r64.centroids) - ref64.cluster_centers_).max():.1e}",
        ">= 2x", jit_s=t64.jit_s))

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    c_j, c_s = np.asarray(res.centroids), ref.cluster_centers_
    sub = X[:: max(1, n // 5000)]
    axes[0].scatter(sub[:, 0], sub[:, 1], s=1, c="0.8")
    axes[0].scatter(c_s[:, 0], c_s[:, 1], s=80, facecolors="none", edgecolors="k",
                    label="scikit-learn centroids")
    axes[0].scatter(c_j[:, 0], c_j[:, 1], s=12, c="tab:red", label="jaxml centroids")
    axes[0].set(title=f"same problem: {N_ITER} Lloyd steps, same init (dims 0, 1)")
    axes[0].legend(fontsize=8)
    axes[1].bar(["jaxml", "scikit-learn"], [timing.median_s, ref_t.median_s],
                color=["tab:red", "0.5"])
    axes[1].set(ylabel="seconds (median)",
                title=f"time: {ref_t.median_s / timing.median_s:.2f}x (compile "
                      f"{timing.compile_s:.2f} s not included)")
    if None not in by_n and None not in by_d:
        axes[2].plot(ns, np.array(by_n) / 2**20, "o-", label=f"vs n (d={d})")
        axes[2].plot(ns, np.array(ns) * k * 4 / 2**20, "k:", label="n·k·4 B")
        axes[2].set(xlabel="n", ylabel="compiled temp MiB", title="peak scratch memory")
        ax2 = axes[2].twiny()
        ax2.plot(ds, np.array(by_d) / 2**20, "s--", color="tab:green", label=f"vs d (n={n})")
        ax2.set_xlabel("d", color="tab:green")
        axes[2].legend(loc="upper left", fontsize=8)
        ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "bench_kmeans.png", dpi=110)
    plt.close(fig)
    return rows


if __name__ == "__main__":
    out = Path("out/bench")
    write_report(run(out), out, "kmeans")
