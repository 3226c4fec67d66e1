"""Sparse variational dropout: a Bayesian MLP on digits prunes most of its weights.

A 64-100-10 ``BayesianMLP`` (every weight q(w) = N(θ, σ²), pre-activations sampled by local
reparameterization, the log-uniform KL of Molchanov et al. 2017) is trained on scikit-learn's
8×8 digits by ``bayes_layers.fit``: full-batch Adam on the negative ELBO Σ NLL + β·KL, the
KL weight β ramping linearly to 1 over the first third of training (a common warm-up).
Weights with log α = log σ²/θ² > 3 are pure noise: we prune them and compare the test
accuracy before and after, next to logistic regression.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, savefig
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from jaxml import bayes_layers as bl


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    n_steps = 80 if quick else 3000

    model = bl.BayesianMLP((64, 100, 10), key=jax.random.key(0), dtype=jnp.float32)
    res = bl.fit(jax.random.key(1), model, Xtr, ytr, likelihood="categorical", n_steps=n_steps,
                 learning_rate=3e-3, warmup_steps=n_steps // 3)
    params, losses = res.params, np.asarray(res.trace)

    def accuracy(m):
        return float(np.mean(np.argmax(np.asarray(m(jnp.asarray(Xte, jnp.float32),
                                                     deterministic=True)), 1) == yte))

    rep = bl.sparsity(params)
    pruned = bl.prune(params)
    acc_before, acc_after = accuracy(params), accuracy(pruned)
    logreg = LogisticRegression(max_iter=2000).fit(Xtr, ytr).score(Xte, yte)

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    la = np.concatenate([np.asarray(l.log_alpha()).ravel() for l in params.layers])
    axes[0].hist(np.clip(la, -12, 20), bins=80, color="steelblue")
    axes[0].set_yscale("log")
    axes[0].axvline(bl.PRUNE_THRESHOLD, color="r", ls="--", label="log α = 3: pruned above")
    axes[0].set_xlabel("log α = log σ² − log θ² (clipped to [−12, 20])")
    axes[0].set_ylabel("weights")
    axes[0].set_title(f"{100 * float(rep.fraction):.1f}% of weights are noise")
    axes[0].legend()
    axes[1].plot(losses, label="−ELBO_β (minibatch = full batch)")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("Adam step")
    axes[1].set_ylabel("−ELBO with KL weight β")
    twin = axes[1].twinx()
    twin.plot(np.asarray(bl.kl_schedule(n_steps, warmup_steps=n_steps // 3)), color="gray",
              ls=":")
    twin.set_ylabel("β (warm-up)", color="gray")
    axes[1].set_title("training")
    keep = np.asarray(params.layers[0].keep_mask()).reshape(100, 8, 8).any(axis=0)
    axes[2].imshow(keep, cmap="gray")
    axes[2].set_title("input pixels still wired to a hidden unit")
    axes[2].axis("off")
    fig_name = savefig(fig, out_dir, "sparse_bnn.png")

    per_layer = ", ".join(f"{100 * float(f):.1f}%" for f in rep.per_layer)
    return [
        SummaryRow(f"Bayesian MLP 64-100-10, sparse VD, digits, {n_steps} steps "
                   f"(finite loss: {bool(res.finite)})",
                   f"test acc {acc_before:.3f} before pruning, {acc_after:.3f} after pruning "
                   f"{100 * float(rep.fraction):.1f}% of weights (per layer {per_layer})",
                   f"LogisticRegression test acc {logreg:.3f}", fig_name),
    ]


if __name__ == "__main__":
    run(Path("out"))
