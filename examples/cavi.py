"""Coordinate-ascent VI on two textbook models, against their exact posteriors.

1. Normal-Gamma (Bishop, PRML §10.1.3): sepal lengths of iris setosa flowers,
   unknown mean μ and precision τ (the first 12 flowers: a small sample makes the exact
   posterior's μ–τ dependence visible). CAVI's factorized q(μ)q(τ) is drawn over the exact
   Normal-Gamma posterior on a grid; its ELBO climbs to just below the exact log evidence.
2. Bayesian mixture of unit-variance Gaussians (Blei, Kucukelbir & McAuliffe 2017), K = 2
   in 1-D: the exact posterior over (μ₁, μ₂) is computed on a grid (it has two modes, one
   per labelling); CAVI's q(μ₁)q(μ₂) sits on one of them. ELBO curves of several random
   starts (one vmapped call) never decrease.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats as st
from scipy.special import logsumexp
from sklearn.datasets import load_iris

from _common import SummaryRow, savefig

from jaxml import vi

PRIOR = dict(mu0=5.0, lambda0=0.1, a0=1.0, b0=0.1)


def _normal_gamma(ax_post, ax_elbo):
    X, y = load_iris(return_X_y=True)
    x = X[y == 0, 0][:12]        # sepal length (cm) of the first 12 setosa flowers
    res = vi.normal_gamma_cavi(x, **PRIOR)
    post = vi.normal_gamma_posterior(x, **PRIOR)
    log_ev = float(vi.normal_gamma_log_evidence(x, **PRIOR))
    q = res.q
    sd_mu = 1 / np.sqrt(float(q.mu_precision))
    mu = np.linspace(float(q.mu) - 4 * sd_mu, float(q.mu) + 4 * sd_mu, 160)
    e_tau, sd_tau = float(q.a / q.b), float(np.sqrt(q.a) / q.b)
    tau = np.linspace(max(e_tau - 3 * sd_tau, 1e-3), e_tau + 4 * sd_tau, 160)
    M, T = np.meshgrid(mu, tau)
    log_post = (st.norm(float(post.mu), 1 / np.sqrt(float(post.lambda_n) * T)).logpdf(M)
                + st.gamma(float(post.a), scale=1 / float(post.b)).logpdf(T))
    log_q = (st.norm(float(q.mu), 1 / np.sqrt(float(q.mu_precision))).logpdf(M)
             + st.gamma(float(q.a), scale=1 / float(q.b)).logpdf(T))
    ax_post.contourf(M, T, np.exp(log_post), levels=12, cmap="Greens")
    ax_post.contour(M, T, np.exp(log_q), levels=6, colors="crimson", linewidths=1.2)
    ax_post.plot([], [], color="crimson", label="CAVI q(μ)q(τ)")
    ax_post.plot(float(post.mu), float(post.a / post.b), "k+", ms=10, label="exact posterior mean")
    ax_post.set(xlabel="μ (cm)", ylabel="τ (1/cm²)",
                title="Normal-Gamma: exact posterior (filled) vs q")
    ax_post.legend(fontsize=8, loc="upper right")
    n = int(res.n_iter)
    ax_elbo.plot(np.arange(1, n + 1), np.asarray(res.trace[:n]), "o-", label="ELBO (CAVI)")
    ax_elbo.axhline(log_ev, color="k", ls="--", label="exact log evidence")
    ax_elbo.set(xlabel="sweep", ylabel="nats", title="Normal-Gamma: ELBO per sweep")
    ax_elbo.legend(fontsize=8)
    return res, post, log_ev


def _mixture(key, ax_post, ax_elbo, quick):
    rng = np.random.default_rng(0)
    sigma2 = 9.0
    true_mu = np.array([-1.5, 2.0])
    n = 60 if quick else 200
    x = true_mu[rng.integers(0, 2, n)] + rng.standard_normal(n)
    n_starts = 4 if quick else 12
    fit = jax.vmap(lambda k: vi.mixture_cavi(k, x, 2, prior_var=sigma2, max_iter=100))
    runs = fit(jax.random.split(key, n_starts))
    best = int(jnp.argmax(runs.elbo))
    # 1-D data are (n, 1): m is (K, 1)
    m, s2 = np.asarray(runs.q.m[best])[:, 0], np.asarray(runs.q.s2[best])
    # exact posterior of (mu1, mu2) on a grid: the c_i summed out exactly
    g = np.linspace(-3.5, 3.5, 200 if not quick else 80)
    M1, M2 = np.meshgrid(g, g)
    lik = np.logaddexp(st.norm(M1[..., None], 1).logpdf(x), st.norm(M2[..., None], 1).logpdf(x))
    logp = lik.sum(-1) - n * np.log(2) + st.norm(0, 3).logpdf(M1) + st.norm(0, 3).logpdf(M2)
    post = np.exp(logp - logp.max())
    log_ev = logsumexp(logp) + 2 * np.log(g[1] - g[0])    # grid estimate of log p(x)
    logq = st.norm(m[0], np.sqrt(s2[0])).logpdf(M1) + st.norm(m[1], np.sqrt(s2[1])).logpdf(M2)
    ax_post.contourf(M1, M2, post, levels=12, cmap="Greens")
    ax_post.contour(M1, M2, np.exp(logq - logq.max()), levels=[0.05, 0.25, 0.5, 0.8],
                    colors="crimson", linewidths=1.2)
    ax_post.plot([], [], color="crimson", label="CAVI q(μ₁)q(μ₂), best start")
    ax_post.plot(*true_mu, "k+", ms=10, label="true (μ₁, μ₂)")
    ax_post.plot(*true_mu[::-1], "k+", ms=10)
    ax_post.set(xlabel="μ₁", ylabel="μ₂", title="Mixture K=2: exact posterior (filled) vs q")
    ax_post.legend(fontsize=8, loc="lower right")
    monotone = True
    for r in range(n_starts):
        k = int(runs.n_iter[r])
        tr = np.asarray(runs.trace[r, :k])
        monotone &= bool(np.all(np.diff(tr) >= -1e-6 * np.abs(tr[1:])))
        ax_elbo.plot(np.arange(1, k + 1), tr, "-", alpha=0.7)
    ax_elbo.axhline(log_ev, color="k", ls="--", label="log evidence (grid)")
    ax_elbo.set(xlabel="sweep", ylabel="nats",
                title=f"Mixture: ELBO of {n_starts} random starts")
    ax_elbo.legend(fontsize=8)
    return runs, best, m, log_ev, monotone, true_mu


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    ng, post, ng_ev = _normal_gamma(axes[0, 0], axes[0, 1])
    runs, best, m, mix_ev, monotone, true_mu = _mixture(jax.random.key(0), axes[1, 0],
                                                         axes[1, 1], quick)
    fig.tight_layout()
    name = savefig(fig, out_dir, "cavi.png")
    return [
        SummaryRow("Normal-Gamma CAVI, iris setosa sepal length (first 12 flowers)",
                   f"E_q[μ]={float(ng.q.mu):.4f}, E_q[τ]={float(ng.q.a / ng.q.b):.3f}, ELBO "
                   f"{float(ng.elbo):.3f} after {int(ng.n_iter)} sweeps",
                   f"exact posterior E[μ]={float(post.mu):.4f}, E[τ]={float(post.a / post.b):.3f}, "
                   f"log evidence {ng_ev:.3f}", name),
        SummaryRow("Bayesian mixture of unit-variance Gaussians, K=2 (Blei et al. 2017)",
                   f"m = [{', '.join(f'{v:.3f}' for v in np.sort(m))}], best ELBO {float(runs.elbo[best]):.3f},"
                   f" monotone in every start: {monotone}",
                   f"true means {true_mu.tolist()}, log evidence (grid) {mix_ev:.3f}", name),
    ]


if __name__ == "__main__":
    run(Path("out"))
