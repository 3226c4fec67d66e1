"""HMC vs numpyro HMC and blackjax HMC: Bayesian logistic regression, effective samples per second.

Workload (issue 16): n = 10 000, d = 50 (float32), prior w ~ N(0, I); 4 chains, fixed step
size ε and path length L·ε (L = 16 leapfrog steps), identity mass matrix, no adaptation in
the timed runs, every chain started at 0 with the same burn-in. ε is the step size jaxml's
dual averaging finds in one adapted run beforehand; all three samplers then use it.

- jaxml: ``mcmc.sample(key, mcmc.HMC(log_density, step_size=ε, n_steps=L, jitter=0,
  adapt_step_size=False, adapt_mass_matrix=False), ...)`` (chains vmapped in one scan);
- numpyro: ``MCMC(HMC(potential_fn=..., step_size=ε, num_steps=L, trajectory_length=None,
  adapt_step_size=False, adapt_mass_matrix=False), chain_method="vectorized")`` (without
  ``trajectory_length=None`` numpyro silently replaces ε by 2π/L);
- blackjax: ``blackjax.hmc(log_density, ε, ones(d), L)``, its ``step`` vmapped over chains in
  a jitted ``lax.scan`` (blackjax's documented pattern).

Figure of merit: bulk ESS of the slowest coordinate (``jaxml.mcmc.ess_bulk``, equal to
ArviZ's) per second of wall time (median after compilation). Quality: the posterior means
of the three samplers against each other, and acceptance rates.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchRow, time_fn  # noqa: E402

from jaxml import mcmc  # noqa: E402


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32) / np.sqrt(d).astype(np.float32)
    w = rng.standard_normal(d).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ w))).astype(np.float32)
    return jnp.asarray(X), jnp.asarray(y)


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    import blackjax
    import matplotlib.pyplot as plt
    from numpyro.infer import HMC, MCMC

    n, d, n_warm, n_draw = (1000, 10, 100, 200) if quick else (10_000, 50, 500, 1000)
    n_chains, L = 4, 16
    repeats = 1 if quick else 3
    X, y = _data(n, d)

    def log_density(w):
        logits = X @ w
        return jnp.sum(y * logits - jax.nn.softplus(logits)) - 0.5 * jnp.dot(w, w)

    w0 = jnp.zeros((n_chains, d), jnp.float32)
    tuned = mcmc.sample(jax.random.key(0), mcmc.HMC(log_density, step_size=0.01, n_steps=L,
                                                    adapt_mass_matrix=False),
                        w0, n_samples=10, n_chains=n_chains, n_warmup=n_warm)
    eps = float(jnp.median(tuned.params.step_size))

    kernel = mcmc.HMC(log_density, step_size=eps, n_steps=L, jitter=0.0,
                      adapt_step_size=False, adapt_mass_matrix=False)

    def jaxml_run(key):
        r = mcmc.sample(key, kernel, w0, n_samples=n_draw, n_chains=n_chains, n_warmup=n_warm)
        return r.draws, r.acceptance_rate

    t_j, (draws_j, acc_j) = time_fn(jaxml_run, jax.random.key(1), repeats=repeats)

    # trajectory_length=None: numpyro otherwise rescales step_size to 2π / num_steps
    sampler = MCMC(HMC(potential_fn=lambda w: -log_density(w), step_size=eps, num_steps=L,
                    trajectory_length=None, adapt_step_size=False, adapt_mass_matrix=False),
                num_warmup=n_warm, num_samples=n_draw, num_chains=n_chains,
                chain_method="vectorized", progress_bar=False)

    def numpyro_run(key):
        sampler.run(key, init_params=w0, extra_fields=("accept_prob",))
        return (jnp.asarray(sampler.get_samples(group_by_chain=True)),
                jnp.mean(sampler.get_extra_fields(group_by_chain=True)["accept_prob"], axis=1))

    t_n, (draws_n, acc_n) = time_fn(numpyro_run, jax.random.key(1), repeats=repeats)

    algo = blackjax.hmc(log_density, eps, jnp.ones(d, jnp.float32), L)

    @jax.jit
    def blackjax_run(key):
        states = jax.vmap(algo.init)(w0)
        step = jax.vmap(algo.step)

        def body(s, k):
            s, info = step(jax.random.split(k, n_chains), s)
            return s, (s.position, info.acceptance_rate)

        keys = jax.random.split(key, n_warm + n_draw)
        states, _ = lax.scan(body, states, keys[:n_warm])
        _, (pos, acc) = lax.scan(body, states, keys[n_warm:])
        return jnp.swapaxes(pos, 0, 1), jnp.mean(acc, axis=0)

    t_b, (draws_b, acc_b) = time_fn(blackjax_run, jax.random.key(1), repeats=repeats)

    ess = {name: float(jnp.min(mcmc.ess_bulk(dr)))
           for name, dr in (("jaxml", draws_j), ("numpyro", draws_n), ("blackjax", draws_b))}
    rate = {"jaxml": ess["jaxml"] / t_j.median_s, "numpyro": ess["numpyro"] / t_n.median_s,
            "blackjax": ess["blackjax"] / t_b.median_s}
    mean_j = np.asarray(draws_j).reshape(-1, d).mean(0)
    mean_n = np.asarray(draws_n).reshape(-1, d).mean(0)
    mean_b = np.asarray(draws_b).reshape(-1, d).mean(0)
    sd = np.asarray(draws_j).reshape(-1, d).std(0)
    quality = (f"min bulk ESS jaxml {ess['jaxml']:.0f} / numpyro {ess['numpyro']:.0f} / "
               f"blackjax {ess['blackjax']:.0f}; acceptance {float(jnp.mean(acc_j)):.2f} / "
               f"{float(jnp.mean(acc_n)):.2f} / {float(jnp.mean(acc_b)):.2f}; max |Δ mean|/sd vs "
               f"numpyro {np.max(np.abs(mean_j - mean_n) / sd):.2f}, vs blackjax "
               f"{np.max(np.abs(mean_j - mean_b) / sd):.2f}")

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot(mean_n, mean_j, "o", ms=4, label="numpyro")
    ax.plot(mean_b, mean_j, "x", ms=4, label="blackjax")
    lim = float(np.max(np.abs(mean_j))) * 1.1
    ax.plot([-lim, lim], [-lim, lim], "k:")
    ax.set(xlabel="reference posterior mean", ylabel="jaxml HMC posterior mean",
           title=f"HMC, logistic regression n={n}, d={d}")
    ax.legend()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(out_dir) / "bench_mcmc.png", dpi=110)
    plt.close(fig)

    workload = (f"HMC logistic regression n={n} d={d}, {n_chains} chains x ({n_warm} burn-in + "
                f"{n_draw}), ε={eps:.3g}, L={L}")
    note = (f"ESS/s jaxml {rate['jaxml']:.1f}, numpyro {rate['numpyro']:.1f}, blackjax "
            f"{rate['blackjax']:.1f}")
    return [
        BenchRow(workload, t_j.median_s, t_j.compile_s, "numpyro HMC (vectorized chains)",
                 t_n.median_s, quality, ">= 1x ESS/s of the faster peer", note),
        BenchRow(workload, t_j.median_s, t_j.compile_s, "blackjax.hmc (vmap + lax.scan)",
                 t_b.median_s, quality, ">= 1x ESS/s of the faster peer", note),
    ]


if __name__ == "__main__":
    from _common import format_rows

    print(format_rows(run(Path("out"), quick="--quick" in sys.argv)))
