"""LDA topics on the Reuters news corpus by batch variational EM, beside scikit-learn.

The ``lda`` package ships 395 Reuters articles as a (documents × 4258 words) count
matrix with its vocabulary and titles. We hold out a quarter of the articles, fit
K topics on the rest with ``jaxml.lda.fit`` (the ELBO written out term by term, recorded
every EM iteration), print and draw each topic's most probable words, show the topic
mixture of a few held-out articles, and compare held-out perplexity with
``sklearn.decomposition.LatentDirichletAllocation(learning_method="batch")`` run with the
same priors and number of iterations.
"""

from __future__ import annotations

from pathlib import Path

import jax
import lda as lda_data
import numpy as np

from _common import SummaryRow, plt, savefig

from jaxml import lda

jax.config.update("jax_enable_x64", True)


def load_reuters(n_words: int | None = None):
    """Counts (D, V), vocabulary, titles; optionally only the ``n_words`` most frequent words."""
    X = lda_data.datasets.load_reuters().astype(np.float64)
    vocab = np.array(lda_data.datasets.load_reuters_vocab())
    titles = [t.split(" ", 1)[-1] for t in lda_data.datasets.load_reuters_titles()]
    if n_words is not None:
        keep = np.sort(np.argsort(-X.sum(0), kind="stable")[:n_words])
        X, vocab = X[:, keep], vocab[keep]
    return X, list(vocab), titles


def draw_topics(words, weights, out_dir):
    k = len(words)
    cols = 5
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.6 * rows), squeeze=False)
    for t, ax in enumerate(axes.flat):
        if t >= k:
            ax.axis("off")
            continue
        ax.barh(range(len(words[t]))[::-1], weights[t], color=plt.cm.tab10(t % 10))
        ax.set_yticks(range(len(words[t]))[::-1], words[t], fontsize=8)
        ax.set_title(f"topic {t}", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle("Reuters: most probable words per topic, E_q[β_k] (jaxml.lda)")
    fig.tight_layout()
    return savefig(fig, out_dir, "lda_topics.png")


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    from sklearn.decomposition import LatentDirichletAllocation

    X, vocab, titles = load_reuters(n_words=1000 if quick else None)
    n_topics, max_iter = (5, 8) if quick else (10, 40)
    alpha, eta = 0.1, 0.01
    order = np.random.default_rng(0).permutation(len(X))
    # quick: train and held-out sets of one size, so every compiled function is reused
    n_train, n_test = (120, 120) if quick else (300, len(X) - 300)
    train, test = X[order[:n_train]], X[order[n_train:n_train + n_test]]
    test_titles = [titles[i] for i in order[n_train:n_train + n_test]]

    # start from scikit-learn's own initial topics (its batch fit with random_state=0 draws
    # them first), so both libraries fit the same problem from the same point
    start = lda.sklearn_initial_topics(n_topics, X.shape[1], 0)
    fit = lda.fit(jax.random.key(0), train, n_topics, alpha=alpha, eta=eta, max_iter=max_iter,
                  tol=0.0, init_topic_word=start)
    sk = LatentDirichletAllocation(n_topics, learning_method="batch", max_iter=max_iter,
                                   doc_topic_prior=alpha, topic_word_prior=eta,
                                   evaluate_every=-1, random_state=0).fit(train)
    # one E step (from γ = 1, document by document) on held-out and training articles
    # together, split for the two perplexities: one compiled E step instead of two layouts
    gamma = lda.transform(fit, np.concatenate([test, train]))
    gamma_test, gamma_train = gamma[:len(test)], gamma[len(test):]
    perp = float(lda.perplexity(fit, test, doc_topic=gamma_test))
    perp_train = float(lda.perplexity(fit, train, doc_topic=gamma_train))
    perp_sk, perp_train_sk = sk.perplexity(test), sk.perplexity(train)

    n_show = 8
    words = lda.top_words(fit, vocab, n_show)
    mean = np.asarray(lda.topic_word_mean(fit))
    weights = np.sort(mean, axis=1)[:, ::-1][:, :n_show]
    print(f"{n_topics} topics on {n_train} Reuters articles ({X.shape[1]} words):")
    for t, w in enumerate(words):
        print(f"  topic {t}: {' '.join(w)}")
    print(f"held-out perplexity: jaxml {perp:.0f}, scikit-learn {perp_sk:.0f}")
    fig_topics = draw_topics(words, weights, out_dir)

    # ELBO per EM iteration, and held-out documents' topic mixtures
    elbo = np.asarray(fit.trace)[: int(fit.n_iter)]
    theta = np.asarray(gamma_test / gamma_test.sum(1, keepdims=True))   # transform(normalize=True)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [1, 0.8, 1.4]})
    axes[0].plot(np.arange(1, len(elbo) + 1), elbo, "o-", ms=3)
    axes[0].set(xlabel="EM iteration", ylabel="ELBO (nats)",
                title="ELBO after each EM iteration (E step + M step)")
    bars = axes[1].bar(["jaxml\ntest", "sklearn\ntest", "jaxml\ntrain", "sklearn\ntrain"],
                       [perp, perp_sk, perp_train, perp_train_sk],
                       color=["tab:red", "0.5", "tab:red", "0.5"])
    axes[1].bar_label(bars, fmt="%.0f", fontsize=8)
    axes[1].set(ylabel="perplexity exp(-ELBO / #words)",
                title=f"same priors and start, {max_iter} batch iterations")
    show = np.argsort(-theta.max(1))[:8]
    axes[2].imshow(theta[show], aspect="auto", cmap="Blues", vmin=0, vmax=1)
    axes[2].set_yticks(range(len(show)), [test_titles[i][:45] for i in show], fontsize=7)
    axes[2].set_xticks(range(n_topics))
    axes[2].set(xlabel="topic", title="held-out articles: E_q[θ_d] (transform)")
    fig.tight_layout()
    fig_curve = savefig(fig, out_dir, "lda_elbo_perplexity.png")

    return [
        SummaryRow(f"LDA, K={n_topics}, Reuters {n_train} train / {len(test)} held-out articles",
                   f"held-out perplexity {perp:.0f} (train {perp_train:.0f})",
                   f"sklearn batch LDA {perp_sk:.0f} (train {perp_train_sk:.0f})", fig_curve),
        SummaryRow("LDA topics: top words", "; ".join(" ".join(w[:3]) for w in words),
                   "", fig_topics),
    ]


if __name__ == "__main__":
    run(Path("out"))
