"""Differential entropy: estimators converging to the closed forms, and the estimation bound.

Left figure: the spacing estimators (Vasicek, van Es, Ebrahimi, Correa), Kozachenko–Leonenko
(k nearest neighbours) and the Monte Carlo estimate −mean ln q(z) against the closed form
h = ½ ln((2πe)ᵈ det Σ), on samples of growing size (mean absolute error over replicates).
The spacing numbers are checked against ``scipy.stats.differential_entropy`` on the same
samples.

Right figure: the estimation bound E(x − x̂)² ≥ e^{2h(x)}/(2πe). Without an observation the
best estimator is the mean and its MSE the variance: equal to the bound for the Gaussian,
above it for the uniform and the Laplace (all of variance 1). With an observation
y = x + noise, the MSE of E[x | y] meets e^{2h(x|y)}/(2πe) for Gaussian x at every noise level.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, main, savefig
from scipy import stats

from jaxml import information, vi


def _convergence(out_dir: Path, quick: bool):
    ns = [400] if quick else [50, 100, 200, 400, 800, 1600, 3200]   # quick: one shape
    reps = 3 if quick else 20
    truth1 = float(information.gaussian_entropy(1.0))
    cov = jnp.array([[1.0, 0.6], [0.6, 2.0]])
    truth2 = float(information.multivariate_gaussian_entropy(cov))
    L = np.linalg.cholesky(np.asarray(cov))
    q = vi.MeanFieldGaussian(jnp.zeros(1), jnp.zeros(1))
    errors = {name: [] for name in ["Vasicek", "van Es", "Ebrahimi", "Correa", "KL k=3 (1-D)",
                                    "KL k=3 (2-D)", "Monte Carlo −ln q"]}
    worst_scipy = 0.0
    key, rng = jax.random.key(0), np.random.default_rng(0)   # samples drawn by NumPy
    for n in ns:
        key, k3 = jax.random.split(key)
        X1 = jnp.asarray(rng.standard_normal((reps, n)))
        X2 = jnp.asarray(rng.standard_normal((reps, n, 2)) @ L.T)
        for label, method in [("Vasicek", "vasicek"), ("van Es", "van es"),
                              ("Ebrahimi", "ebrahimi"), ("Correa", "correa")]:
            est = jax.vmap(functools.partial(information.spacing_entropy, method=method))(X1)
            ref = stats.differential_entropy(np.asarray(X1), axis=1, method=method)
            worst_scipy = max(worst_scipy, float(np.max(np.abs(np.asarray(est) - ref))))
            errors[label].append(float(np.mean(np.abs(np.asarray(est) - truth1))))
        kl1 = jax.vmap(lambda x: information.knn_entropy(x, k=3))(X1)
        kl2 = jax.vmap(lambda x: information.knn_entropy(x, k=3))(X2)
        errors["KL k=3 (1-D)"].append(float(np.mean(np.abs(np.asarray(kl1) - truth1))))
        errors["KL k=3 (2-D)"].append(float(np.mean(np.abs(np.asarray(kl2) - truth2))))
        mc = np.array([float(information.monte_carlo_entropy(k, q, n).entropy)
                       for k in jax.random.split(k3, reps)])
        errors["Monte Carlo −ln q"].append(float(np.mean(np.abs(mc - truth1))))
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for label, err in errors.items():
        ax.loglog(ns, err, "o-", label=label, ms=4)
    ax.loglog(ns, 0.8 / np.sqrt(ns), "k:", label=r"$\propto n^{-1/2}$")
    ax.set(xlabel="sample size n", ylabel="mean |ĥ − h|  (nats)",
           title="entropy estimators vs closed form (Gaussian)")
    ax.legend(fontsize=7)
    name = savefig(fig, out_dir, "entropy_convergence.png")
    return [
        SummaryRow(f"spacing estimators, N(0,1), n={ns[-1]}",
                   "mean |ĥ − h|: " + ", ".join(
                       f"{k} {errors[k][-1]:.3f}"
                       for k in ["Vasicek", "van Es", "Ebrahimi", "Correa"]),
                   "scipy.stats.differential_entropy on the same samples: "
                   f"max diff {worst_scipy:.1e}",
                   name),
        SummaryRow(f"Kozachenko–Leonenko k=3, 2-D Gaussian, n={ns[-1]}",
                   f"mean |ĥ − h| {errors['KL k=3 (2-D)'][-1]:.3f}",
                   f"closed form h = {truth2:.4f}", name),
    ]


def _bound(out_dir: Path, quick: bool):
    n = 4000 if quick else 200_000
    key = jax.random.key(1)
    kg, ku, kl, kn = jax.random.split(key, 4)
    # three laws of variance 1
    laws = {
        "Gaussian": (jax.random.normal(kg, (n,)), information.gaussian_entropy(1.0)),
        "uniform": (jax.random.uniform(ku, (n,), minval=-math.sqrt(3), maxval=math.sqrt(3)),
                    information.uniform_entropy(-math.sqrt(3), math.sqrt(3))),
        "Laplace": (jax.random.laplace(kl, (n,)) / math.sqrt(2), 1 + math.log(2 / math.sqrt(2))),
    }
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    rows = []
    names = list(laws)
    for i, (label, (x, h)) in enumerate(laws.items()):
        mse = float(np.mean((np.asarray(x) - np.mean(np.asarray(x))) ** 2))   # x̂ = mean
        bound = float(information.estimation_bound(h))
        bound_hat = float(information.estimation_bound(information.spacing_entropy(x)))
        first = i == 0
        ax1.bar(i - 0.25, mse, 0.25, color="C0",
                label=r"MSE of $\hat x = \mathrm{E}\,x$" if first else None)
        ax1.bar(i, bound, 0.25, color="C1",
                label=r"$e^{2h}/(2\pi e)$, closed-form $h$" if first else None)
        ax1.bar(i + 0.25, bound_hat, 0.25, color="C2",
                label=r"$e^{2\hat h}/(2\pi e)$, $\hat h$ from samples" if first else None)
        rows.append((label, mse, bound, bound_hat))
    ax1.set_xticks(range(len(names)), names)
    ax1.set(ylabel="mean squared error",
            title=r"$\mathrm{E}(x - \hat x)^2 \geq e^{2h(x)}/(2\pi e)$  (variance 1)")
    ax1.legend(fontsize=8)
    # with an observation y = x + τ ε: E[x | y] = y/(1 + τ²), h(x | y) = ½ ln(2πe τ²/(1 + τ²))
    taus = np.geomspace(0.1, 3.0, 6 if quick else 12)
    x = np.asarray(jax.random.normal(kg, (n,)))
    eps = np.asarray(jax.random.normal(kn, (n,)))
    mses, bounds = [], []
    for tau in taus:
        y = x + tau * eps
        mses.append(float(np.mean((x - y / (1 + tau**2)) ** 2)))
        bounds.append(float(information.estimation_bound(
            information.gaussian_entropy(tau**2 / (1 + tau**2)))))
    ax2.loglog(taus, mses, "o", label=r"MSE of $\mathrm{E}[x \mid y]$ (samples)")
    ax2.loglog(taus, bounds, "-", label=r"$e^{2h(x|y)}/(2\pi e)$")
    ax2.set(xlabel="noise τ", ylabel="mean squared error",
            title="Gaussian x, y = x + τε: the bound is met")
    ax2.legend(fontsize=8)
    name = savefig(fig, out_dir, "entropy_bound.png")
    out = [SummaryRow(f"estimation bound, {label} (variance 1, n={n})",
                      f"MSE {mse:.4f} vs bound {bh:.4f} (ĥ from samples)",
                      f"closed-form bound {b:.4f}", name)
           for label, mse, b, bh in rows]
    rel = max(abs(m - b) / b for m, b in zip(mses, bounds))
    out.append(SummaryRow("estimation bound with an observation, Gaussian",
                          f"max |MSE − bound|/bound {rel:.3f} over τ",
                          "equality (closed form)", name))
    return out


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    out_dir = Path(out_dir)
    return _convergence(out_dir, quick) + _bound(out_dir, quick)


if __name__ == "__main__":
    main(run, __doc__)
