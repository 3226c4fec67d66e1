"""jaxml.pca vs scikit-learn PCA(svd_solver="covariance_eigh") on n = 100 000, d = 256.

Both centre the data, form the 256×256 covariance and eigendecompose it; the quality
figure compares the explained variances and the components (same sign convention).
Run in float64 and in float32 (the same dtype on both sides).

    python benchmarks/run_all.py --only pca [--quick] --out out/bench
"""

from __future__ import annotations

from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import BenchRow, time_fn, time_plain_and_jit, write_report  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from jaxml import pca  # noqa: E402

K = 32


def _data(n, d, rng):
    # a decaying spectrum, so the leading components are well separated
    scales = 10.0 ** np.linspace(1, -2, d)
    basis, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (rng.normal(size=(n, d)) * scales) @ basis.T + rng.normal(size=d)


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    n, d = (10_000, 256) if quick else (100_000, 256)
    repeats = 2 if quick else 5
    X64 = _data(n, d, np.random.default_rng(0))
    rows, curves = [], {}
    for dtype in (np.float64, np.float32):
        X = X64.astype(dtype)
        Xj = jnp.asarray(X)
        timing, res = time_plain_and_jit(lambda X: pca.fit(X, K), Xj, repeats=repeats)
        sk = PCA(K, svd_solver="covariance_eigh")
        ref_t, ref = time_fn(lambda: sk.fit(X), repeats=repeats)
        ev_gap = float(np.max(np.abs(np.asarray(res.explained_variance) - ref.explained_variance_)
                              / ref.explained_variance_))
        cos = np.abs(np.sum(np.asarray(res.components, np.float64) * ref.components_, axis=1))
        rows.append(BenchRow(f"PCA n={n}, d={d}, k={K}, {np.dtype(dtype).name}",
                             timing.median_s, timing.compile_s,
                             'PCA(svd_solver="covariance_eigh")', ref_t.median_s,
                             f"max rel variance diff {ev_gap:.1e}; min |cos(component)| "
                             f"{cos.min():.6f}", ">= 1x", jit_s=timing.jit_s))
        curves[np.dtype(dtype).name] = (np.asarray(res.explained_variance_ratio),
                                        ref.explained_variance_ratio_, timing.median_s,
                                        ref_t.median_s)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ours, theirs, _, _ = curves["float64"]
    j = np.arange(1, K + 1)
    axes[0].semilogy(j, theirs, "ko", mfc="none", ms=7, label="scikit-learn")
    axes[0].semilogy(j, ours, "r.", label="jaxml")
    axes[0].set(xlabel="component", ylabel="explained variance ratio",
                title=f"same spectrum (n={n}, d={d}, float64)")
    axes[0].legend()
    names = list(curves)
    pos = np.arange(len(names))
    axes[1].bar(pos - 0.2, [curves[m][2] for m in names], 0.4, color="tab:red", label="jaxml")
    axes[1].bar(pos + 0.2, [curves[m][3] for m in names], 0.4, color="0.5", label="scikit-learn")
    axes[1].set(xticks=pos, xticklabels=names, ylabel="seconds (median)", title="fit time")
    axes[1].legend()
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "bench_pca.png", dpi=110)
    plt.close(fig)
    return rows


if __name__ == "__main__":
    out = Path("out/bench")
    write_report(run(out), out, "pca")
