"""jaxml.naive_bayes vs scikit-learn GaussianNB on n = 1 000 000, d = 50 (10 classes).

Timed: fit, predict_proba, and fit + predict_proba (the issue's target is on the total),
float64 on both sides. Quality: the largest difference in predicted probabilities and the
fraction of identical predictions.

    python benchmarks/run_all.py --only naive_bayes [--quick] --out out/bench
"""

from __future__ import annotations

from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import BenchRow, time_fn, time_plain_and_jit, write_report  # noqa: E402
from sklearn.naive_bayes import GaussianNB  # noqa: E402

from jaxml import naive_bayes as nb  # noqa: E402

C = 10


def _data(n, d, rng):
    y = rng.integers(0, C, size=n)
    means = rng.normal(scale=1.0, size=(C, d))
    scales = rng.uniform(0.5, 2.0, size=(C, d))
    return means[y] + scales[y] * rng.normal(size=(n, d)), y


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    n, d = (100_000, 50) if quick else (1_000_000, 50)
    repeats = 2 if quick else 3
    X, y = _data(n, d, np.random.default_rng(0))
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    fit = lambda X, y: nb.fit_gaussian(X, y, C)  # noqa: E731  (plain calls, as users write them)
    both = lambda X, y: nb.predict_proba(nb.fit_gaussian(X, y, C), X)  # noqa: E731
    t_fit, model = time_plain_and_jit(fit, Xj, yj, repeats=repeats)
    t_proba, _ = time_plain_and_jit(nb.predict_proba, model, Xj, repeats=repeats)
    t_both, p = time_plain_and_jit(both, Xj, yj, repeats=repeats)

    sk = GaussianNB()
    r_fit, ref = time_fn(lambda: sk.fit(X, y), repeats=repeats)
    r_proba, p_ref = time_fn(lambda: ref.predict_proba(X), repeats=repeats)
    r_both, _ = time_fn(lambda: GaussianNB().fit(X, y).predict_proba(X), repeats=repeats)

    p = np.asarray(p)
    gap = float(np.abs(p - p_ref).max())
    same = float(np.mean(p.argmax(1) == p_ref.argmax(1)))
    quality = f"max |Δp| {gap:.1e}; same predictions {100 * same:.3f}%"
    work = f"Gaussian NB n={n}, d={d}, {C} classes, float64"
    rows = [
        BenchRow(f"{work}: fit + predict_proba", t_both.median_s, t_both.compile_s,
                 "GaussianNB().fit(X, y).predict_proba(X)", r_both.median_s, quality, ">= 2x",
                 jit_s=t_both.jit_s),
        BenchRow(f"{work}: fit", t_fit.median_s, t_fit.compile_s, "GaussianNB.fit",
                 r_fit.median_s, quality, jit_s=t_fit.jit_s),
        BenchRow(f"{work}: predict_proba", t_proba.median_s, t_proba.compile_s,
                 "GaussianNB.predict_proba", r_proba.median_s, quality, jit_s=t_proba.jit_s),
    ]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    sub = slice(0, 20_000)
    axes[0].scatter(p_ref[sub].ravel(), p[sub].ravel(), s=1)
    axes[0].plot([0, 1], [0, 1], "k:", lw=0.8)
    axes[0].set(xlabel="scikit-learn p(c | x)", ylabel="jaxml p(c | x)",
                title=f"same posteriors (max |Δp| {gap:.1e})")
    labels = ["fit", "predict_proba", "fit + predict_proba"]
    pos = np.arange(3)
    axes[1].bar(pos - 0.2, [t_fit.median_s, t_proba.median_s, t_both.median_s], 0.4,
                color="tab:red", label="jaxml")
    axes[1].bar(pos + 0.2, [r_fit.median_s, r_proba.median_s, r_both.median_s], 0.4,
                color="0.5", label="scikit-learn")
    axes[1].set(xticks=pos, xticklabels=labels, ylabel="seconds (median)",
                title=f"n={n}, d={d}: {r_both.median_s / t_both.median_s:.2f}x on the total")
    axes[1].legend()
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "bench_naive_bayes.png", dpi=110)
    plt.close(fig)
    return rows


if __name__ == "__main__":
    out = Path("out/bench")
    write_report(run(out), out, "naive_bayes")
