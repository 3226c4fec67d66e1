"""jaxml.lda vs scikit-learn LatentDirichletAllocation(learning_method="batch") on Reuters.

Workload (issue 7): the ``lda`` package's Reuters counts, 300 training / 95 held-out
articles × 4258 words, K = 10 topics, doc_topic_prior = alpha = 0.1, topic_word_prior =
eta = 0.01, 30 batch EM iterations on both sides (jaxml ``tol=0``; scikit-learn
``evaluate_every=-1``, ``n_jobs=None`` = one process, its default), the same E step
settings (``max_doc_update_iter=100``, ``mean_change_tol=1e-3``), each E step restarted
from random ``γ`` as scikit-learn does. Both start from the same topics: jaxml gets
``init_topic_word = lda.sklearn_initial_topics(K, V, seed)``
(``np.random.RandomState(seed).gamma(100.0, 0.01, (K, V))``), exactly
what scikit-learn's ``_init_latent_vars`` draws first with ``random_state=seed`` (only the
E steps' random starts of ``γ`` then differ, numpy's vs jax's). Reported: seconds per EM iteration (median of
whole fits after compilation, divided by the iterations; scikit-learn's ``fit`` also runs
one extra E step on the training set at the end, so its time is divided by 31) and
held-out perplexity (scikit-learn's definition on both sides) for seed 0, plus the mean ±
sd of held-out perplexity over seeds 0, 1, 2 for both libraries. Rows in float64 and
float32.

    python benchmarks/run_all.py --only lda [--quick] --out out/bench
"""

from __future__ import annotations

from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import lda as lda_data  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import BenchRow, time_fn, time_plain_and_jit  # noqa: E402
from sklearn.decomposition import LatentDirichletAllocation  # noqa: E402

from jaxml import lda  # noqa: E402

ALPHA, ETA = 0.1, 0.01


def _corpus(quick: bool):
    X = lda_data.datasets.load_reuters().astype(np.float64)
    if quick:   # the 1000 most frequent words
        X = X[:, np.sort(np.argsort(-X.sum(0), kind="stable")[:1000])]
    order = np.random.default_rng(0).permutation(len(X))
    n_train = 150 if quick else 300
    return X[order[:n_train]], X[order[n_train:]]


SEEDS = (0, 1, 2)


def _fits(train, k, n_iter, dtype, seed):
    """The two fits of one seed, as zero-argument callables, from the same initial topics."""
    start = lda.sklearn_initial_topics(k, train.shape[1], seed, dtype)
    key = jax.random.key(seed)

    def ours(counts=train):
        return lda.fit(key, counts, k, alpha=ALPHA, eta=ETA, max_iter=n_iter, tol=0.0,
                       init_topic_word=start)

    def theirs():
        return LatentDirichletAllocation(k, learning_method="batch", max_iter=n_iter,
                                         doc_topic_prior=ALPHA, topic_word_prior=ETA,
                                         evaluate_every=-1, random_state=seed).fit(train)

    return ours, theirs


def _one(train, test, k, n_iter, dtype, repeats):
    train, test = train.astype(dtype), test.astype(dtype)
    ours, theirs = _fits(train, k, n_iter, dtype, 0)
    t_j, res = time_plain_and_jit(ours, train, repeats=repeats)
    t_s, sk = time_fn(theirs, repeats=repeats)
    assert int(res.n_iter) == n_iter and sk.n_iter_ == n_iter
    seeds_j, seeds_s = [float(lda.perplexity(res, test))], [float(sk.perplexity(test))]
    for seed in SEEDS[1:]:
        o, t = _fits(train, k, n_iter, dtype, seed)
        seeds_j.append(float(lda.perplexity(o(), test)))
        seeds_s.append(float(t().perplexity(test)))
    return dict(
        seeds_j=np.array(seeds_j), seeds_s=np.array(seeds_s),
        t_j=t_j, t_s=t_s, res=res, sk=sk,
        per_j=t_j.median_s / n_iter, per_s=t_s.median_s / (n_iter + 1),
        perp_j=float(lda.perplexity(res, test)), perp_s=float(sk.perplexity(test)),
        train_j=float(lda.perplexity(res, train)), train_s=float(sk.perplexity(train)),
        bound_s=float(sk.score(train)))


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    train, test = _corpus(quick)
    k, n_iter = (5, 5) if quick else (10, 30)
    repeats = 2 if quick else 3
    rows, runs = [], {}
    for dtype in (np.float64, np.float32):
        r = _one(train, test, k, n_iter, dtype, repeats)
        runs[np.dtype(dtype).name] = r
        rel = r["perp_j"] / r["perp_s"] - 1
        rows.append(BenchRow(
            f"LDA batch VEM, Reuters {train.shape[0]}×{train.shape[1]}, K={k}, {n_iter} iters, "
            f"{np.dtype(dtype).name} (s per EM iteration)",
            r["per_j"], r["t_j"].compile_s, 'LatentDirichletAllocation("batch", n_jobs=None)',
            r["per_s"],
            f"held-out perplexity, same start (seed 0): {r['perp_j']:.0f} vs "
            f"{r['perp_s']:.0f} ({100 * rel:+.1f}%); seeds {SEEDS}: "
            f"{r['seeds_j'].mean():.0f} ± {r['seeds_j'].std(ddof=1):.0f} vs "
            f"{r['seeds_s'].mean():.0f} ± {r['seeds_s'].std(ddof=1):.0f} "
            f"({100 * (r['seeds_j'].mean() / r['seeds_s'].mean() - 1):+.1f}%); "
            f"train {r['train_j']:.0f} vs {r['train_s']:.0f}",
            ">= 5x per iteration; perplexity within 5%",
            f"whole fit {r['t_j'].median_s:.3f} s vs {r['t_s'].median_s:.3f} s; "
            "same initial topics (scikit-learn's draw), E steps' random γ starts differ",
            jit_s=r["t_j"].jit_s / n_iter))

    r = runs["float64"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    names = ["jaxml\nf64", "sklearn\nf64", "jaxml\nf32", "sklearn\nf32"]
    per = [runs[d][s] for d in ("float64", "float32") for s in ("per_j", "per_s")]
    bars = axes[0].bar(names, per, color=["tab:red", "0.5"] * 2)
    axes[0].bar_label(bars, fmt="%.3f", fontsize=8)
    axes[0].set(ylabel="seconds per EM iteration (median)",
                title=f"{runs['float64']['per_s'] / runs['float64']['per_j']:.1f}x (f64), "
                      f"{runs['float32']['per_s'] / runs['float32']['per_j']:.1f}x (f32); "
                      "compile excluded")
    perp = [runs[d][s] for d in ("float64", "float32") for s in ("perp_j", "perp_s")]
    bars = axes[1].bar(names, perp, color=["tab:red", "0.5"] * 2)
    axes[1].bar_label(bars, fmt="%.0f", fontsize=8)
    axes[1].errorbar(range(4), [runs[d][s].mean() for d in ("float64", "float32")
                                for s in ("seeds_j", "seeds_s")],
                     yerr=[runs[d][s].std(ddof=1) for d in ("float64", "float32")
                           for s in ("seeds_j", "seeds_s")],
                     fmt="k_", capsize=6, label=f"mean ± sd over seeds {SEEDS}")
    axes[1].legend(fontsize=8, loc="lower right")
    axes[1].set(ylabel="held-out perplexity",
                title="same problem, same start: held-out perplexity (seed 0)")
    elbo = np.asarray(r["res"].trace)
    axes[2].plot(np.arange(1, n_iter + 1), elbo, "o-", ms=3, color="tab:red",
                 label="jaxml ELBO per iteration")
    axes[2].axhline(r["bound_s"], color="0.3", ls="--",
                    label="scikit-learn final bound (score)")
    axes[2].set(xlabel="EM iteration", ylabel="ELBO on the training set (f64)",
                title="the same objective")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "bench_lda.png", dpi=110)
    plt.close(fig)
    return rows
