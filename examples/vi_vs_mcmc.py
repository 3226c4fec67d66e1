"""VI against its exact reference: HMC and Gibbs beside mean-field / full-rank q and CAVI.

1. Bayesian logistic regression on breast cancer (30 standardized features + intercept,
   prior w ~ N(0, I)). ``jaxml.mcmc.HMC`` (4 chains in one vmap, adapted step size and
   diagonal mass matrix) is the reference posterior; ``jaxml.vi.fit_sgvi`` fits a mean-field
   and (the full tour only) a full-rank Gaussian q; in the full tour ``jaxml.flows.fit``
   fits a planar-flow q by reverse KL, its base the fitted full-rank Gaussian (planar layers on the standard normal,
   then the affine map z ↦ μ + Lz of the full-rank q, all trained). Each q gets its Pareto k̂
   (``vi.psis_diagnostic``: k̂ < 0.7 means importance sampling from q can correct it); each
   is scored on a held-out split through ``vi.posterior_predictive`` (accuracy, log
   loss), with their time to fit (the flow's includes the full-rank fit it starts from). The
   figure overlays the marginals of the weights the mean-field q gets most wrong.
2. The Normal–Gamma model: the Gibbs sampler against CAVI's factorized q(μ)q(τ) against the
   exact posterior (``vi.normal_gamma_posterior``), marginal of μ.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from _common import SummaryRow, savefig

from jaxml import flows, mcmc, vi


def _data():
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    add1 = lambda A: np.hstack([A, np.ones((A.shape[0], 1))])  # noqa: E731
    return (jnp.asarray(add1(scaler.transform(X_tr))), jnp.asarray(add1(scaler.transform(X_te))),
            jnp.asarray(y_tr, float), np.asarray(y_te, float))


def _timed(f):
    t0 = time.perf_counter()
    out = jax.block_until_ready(f())
    return out, time.perf_counter() - t0


def _logreg(out_dir, quick):
    import matplotlib.pyplot as plt

    A_tr, A_te, y, y_te = _data()
    d = A_tr.shape[1]

    def log_density(w):
        logits = A_tr @ w
        return jnp.sum(y * logits - jax.nn.softplus(logits)) - 0.5 * jnp.sum(w * w)

    n_warm, n_draw = (150, 150) if quick else (1000, 1000)
    hmc, t_hmc = _timed(lambda: mcmc.sample(
        jax.random.key(0), mcmc.HMC(log_density, step_size=0.05, n_steps=16), jnp.zeros(d),
        n_samples=n_draw, n_chains=4, n_warmup=n_warm))
    draws = np.asarray(hmc.draws).reshape(-1, d)
    rhat_max = float(jnp.max(mcmc.rhat(hmc.draws)))
    ess_min = float(jnp.min(mcmc.ess_bulk(hmc.draws)))

    n_steps = 300 if quick else 5000
    qs, times = {}, {}
    families = (("mean-field", vi.MeanFieldGaussian), ("full-rank", vi.FullRankGaussian))
    for i, (name, family) in enumerate(families[:1] if quick else families):  # quick: mean-field
        fit, times[name] = _timed(lambda: vi.fit_sgvi(
            jax.random.key(1 + i), log_density, family.init(d, scale=0.1, dtype=A_tr.dtype),
            n_steps=n_steps, learning_rate=0.02, n_samples=4))
        qs[name] = fit.params

    # planar flow on top of the full-rank q: x = μ + L g(z), g = planar layers, z ~ N(0, I)
    # (the full tour only: the quick one shows flows in flows_2d and keeps its compile time)
    n_layers, flow_steps = 16, 3000
    if not quick:
        full = qs["full-rank"]
        base = flows.Affine(full.loc, jnp.log(jnp.diagonal(full.scale_tril)), full.scale_tril)
        planar = flows.stack_layers(jax.random.key(3), flows.Planar, d, n_layers,
                                    dtype=A_tr.dtype)
        flow_fit, t_flow = _timed(lambda: flows.fit(
            jax.random.key(4), flows.Flow((planar, base), d), log_density=log_density,
            n_samples=64, learning_rate=1e-3, n_steps=flow_steps))
        qs["planar flow"] = flow_fit.params
        times["planar flow"] = times["full-rank"] + t_flow

    def predict(key, w, X):
        return jax.nn.sigmoid(X @ w)

    n_pred = 200 if quick else 2000
    scores = {}
    for name, src in [("HMC", hmc.draws)] + list(qs.items()):
        p = np.clip(np.asarray(vi.posterior_predictive(jax.random.key(5), src, predict, A_te,
                                                       n_samples=n_pred).mean), 1e-12, 1 - 1e-12)
        scores[name] = (accuracy_score(y_te, p > 0.5), log_loss(y_te, p))
    diags = {name: vi.psis_diagnostic(jax.random.key(6), q, log_density, n_samples=n_pred * 2)
             for name, q in qs.items()}
    khat = {name: float(diag.khat) for name, diag in diags.items()}

    # the four weights whose mean-field marginal is furthest from HMC's (in HMC sds)
    mu_h, sd_h = draws.mean(0), draws.std(0)
    mf = qs["mean-field"]
    gap = np.abs(np.asarray(mf.mean()) - mu_h) / sd_h + np.abs(np.log(np.sqrt(np.asarray(mf.variance())) / sd_h))
    worst = np.argsort(gap)[-4:][::-1]
    flow_draws = np.asarray(diags["planar flow"].samples) if "planar flow" in diags else None
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, j in zip(axes, worst):
        ax.hist(draws[:, j], bins=40, density=True, color="0.8", label="HMC")
        grid = np.linspace(mu_h[j] - 4 * sd_h[j], mu_h[j] + 4 * sd_h[j], 200)
        for name, q in qs.items():
            if name == "planar flow":               # no closed-form marginal: a KDE of draws
                dens = stats.gaussian_kde(flow_draws[:, j])(grid)
            else:
                dens = stats.norm.pdf(grid, float(q.mean()[j]), float(np.sqrt(q.variance()[j])))
            ax.plot(grid, dens, label=f"{name} (k̂ {khat[name]:.2f})")
        ax.set(title=f"w[{j}]" + (" (intercept)" if j == d - 1 else ""), yticks=[])
    axes[0].legend(fontsize=8)
    fig.suptitle("Bayesian logistic regression, breast cancer: marginals of q against HMC")
    fig.tight_layout()
    fig_name = savefig(fig, out_dir, "vi_vs_mcmc_logreg.png")

    acc, nll = scores["HMC"]
    rows = [SummaryRow(
        "HMC, Bayesian logistic regression, breast cancer (4 chains, test split)",
        f"accuracy {acc:.3f}, log loss {nll:.3f}, max R̂ {rhat_max:.3f}, min bulk ESS "
        f"{ess_min:.0f}, {t_hmc:.1f} s", "the reference posterior", fig_name)]
    for name in qs:
        acc, nll = scores[name]
        rows.append(SummaryRow(
            (f"planar-flow q ({n_layers} layers on the full-rank q, reverse KL) vs HMC, same "
             "model and split") if name == "planar flow" else
            f"SGVI {name} q vs HMC, same model and split",
            f"k̂ {khat[name]:.2f}, accuracy {acc:.3f}, log loss {nll:.3f}, {times[name]:.1f} s",
            f"HMC: accuracy {scores['HMC'][0]:.3f}, log loss {scores['HMC'][1]:.3f}", fig_name))
    return rows


def _normal_gamma(out_dir, quick):
    import matplotlib.pyplot as plt

    x = 1.0 + 0.5 * jax.random.normal(jax.random.key(10), (20,))
    prior = dict(mu0=0.0, lambda0=1.0, a0=2.0, b0=1.0)
    mu_n, lam_n, a_n, b_n = (float(v) for v in vi.normal_gamma_posterior(x, **prior))
    cavi = vi.normal_gamma_cavi(x, **prior)
    q_mu, q_prec = float(cavi.q[0]), float(cavi.q[1])          # q(μ) = N(mu, 1/precision)
    gibbs = mcmc.sample(jax.random.key(11), mcmc.NormalGammaGibbs(x, **prior),
                        jnp.array([0.0, 1.0]), n_samples=500 if quick else 5000, n_chains=4,
                        n_warmup=50)
    mu_draws = np.asarray(gibbs.draws[..., 0]).ravel()
    scale = np.sqrt(b_n / (a_n * lam_n))                       # μ ~ Student-t(2a)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    grid = np.linspace(mu_n - 5 * scale, mu_n + 5 * scale, 300)
    ax.hist(mu_draws, bins=60, density=True, color="0.8", label="Gibbs")
    ax.plot(grid, stats.t.pdf(grid, 2 * a_n, mu_n, scale), "k", label="exact (Student-t)")
    ax.plot(grid, stats.norm.pdf(grid, q_mu, 1 / np.sqrt(q_prec)), "C1--", label="CAVI q(μ)")
    ax.set(xlabel="μ", title="Normal–Gamma: marginal posterior of μ", yticks=[])
    ax.legend(fontsize=8)
    fig_name = savefig(fig, out_dir, "vi_vs_mcmc_normal_gamma.png")
    sd_exact = scale * np.sqrt(2 * a_n / (2 * a_n - 2))
    return [SummaryRow(
        "Normal–Gamma posterior of μ: Gibbs and CAVI (20 points)",
        f"Gibbs mean {mu_draws.mean():.4f} sd {mu_draws.std():.4f}; CAVI mean {q_mu:.4f} "
        f"sd {1 / np.sqrt(q_prec):.4f}",
        f"exact mean {mu_n:.4f} sd {sd_exact:.4f}", fig_name)]


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    return _logreg(out_dir, quick) + _normal_gamma(out_dir, quick)


if __name__ == "__main__":
    for row in run(Path("out")):
        print(row)
