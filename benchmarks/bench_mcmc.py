"""HMC vs numpyro HMC/NUTS and blackjax HMC: Bayesian logistic regression, effective samples
per second.

Workload (issue 16): n = 10 000, d = 50 (float32), prior w ~ N(0, I); every chain started at
0 with the same burn-in; fixed step size ε and, for the HMC samplers, path length L·ε
(L = 16 leapfrog steps), identity mass matrix, no adaptation in the timed runs. ε is the step
size jaxml's dual averaging finds in one adapted run beforehand; every sampler then uses it.

- jaxml: ``mcmc.sample(key, mcmc.HMC(log_density, step_size=ε, n_steps=L, jitter=0,
  adapt_step_size=False, adapt_mass_matrix=False), ...)`` (chains vmapped in one scan);
- numpyro: ``MCMC(HMC(potential_fn=..., step_size=ε, num_steps=L, trajectory_length=None,
  adapt_step_size=False, adapt_mass_matrix=False), chain_method="vectorized")`` (without
  ``trajectory_length=None`` numpyro silently replaces ε by 2π/L), and ``NUTS`` with the same
  ε (it picks its own path length, tree depth ≤ 10);
- blackjax: ``blackjax.hmc(log_density, ε, ones(d), L)``, its ``step`` vmapped over chains in
  a jitted ``lax.scan`` (blackjax's documented pattern); numpyro's HMC kernel
  (``numpyro.infer.hmc.hmc``) run the same way, since ``MCMC.run`` recompiles its loop on
  every call.

Figure of merit: bulk ESS of the slowest coordinate (``jaxml.mcmc.ess_bulk``, equal to
ArviZ's) per second of wall time (median after compilation; the samplers are timed in turn,
interleaved, so a load change on a shared machine hits all alike). The table's times are
seconds per effective sample (wall / min bulk ESS), so its ``speedup`` is jaxml's ESS/s over
the reference's. Two workloads: 4 chains (the usual run), and many chains (32) in one program:
jaxml's ``vmap`` against numpyro's ``chain_method="vectorized"`` and blackjax's vmapped step
(numpyro's ``"parallel"`` needs one device per chain; ``"sequential"`` runs the chains one after
another in Python, measured in the 4-chain workload). Quality: the posterior means of the
samplers against each other, and acceptance rates. jaxml's time is the plain call, as users
write it; the plain/jit column is the ratio of the plain call to the same call under
``jax.jit``, the two alternated in ≥ 7 rounds of their own.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchRow, block  # noqa: E402

from jaxml import mcmc  # noqa: E402


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32) / np.sqrt(d).astype(np.float32)
    w = rng.standard_normal(d).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ w))).astype(np.float32)
    return jnp.asarray(X), jnp.asarray(y)


def _time_interleaved(runs: dict, key, repeats: int) -> tuple[dict, dict, dict]:
    """Compile every run (first call, timed apart), then time them in turn ``repeats`` times.
    Returns ({name: median s}, {name: first-call s}, {name: output})."""
    first, out, times = {}, {}, {name: [] for name in runs}
    for name, fn in runs.items():
        t0 = time.perf_counter()
        out[name] = block(fn(key))
        first[name] = time.perf_counter() - t0
    for _ in range(max(1, repeats)):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            out[name] = block(fn(key))
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, first, out


def _samplers(log_density, eps, L, d, n_chains, n_warm, n_draw, numpyro_methods):
    """{name: run(key) -> (draws (n_chains, n_draw, d), acceptance (n_chains,))}."""
    import blackjax
    from numpyro.infer import HMC, MCMC, NUTS
    from numpyro.infer.hmc import hmc as numpyro_hmc

    w0 = jnp.zeros((n_chains, d), jnp.float32)
    kernel = mcmc.HMC(log_density, step_size=eps, n_steps=L, jitter=0.0,
                      adapt_step_size=False, adapt_mass_matrix=False)

    def jaxml_run(key):
        r = mcmc.sample(key, kernel, w0, n_samples=n_draw, n_chains=n_chains, n_warmup=n_warm)
        return r.draws, r.acceptance_rate

    runs = {"jaxml": jaxml_run}

    def numpyro(sampler_kernel, method):
        sampler = MCMC(sampler_kernel, num_warmup=n_warm, num_samples=n_draw,
                       num_chains=n_chains, chain_method=method, progress_bar=False)

        def run(key):
            sampler.run(key, init_params=w0, extra_fields=("accept_prob",))
            return (jnp.asarray(sampler.get_samples(group_by_chain=True)),
                    jnp.mean(sampler.get_extra_fields(group_by_chain=True)["accept_prob"],
                             axis=1))
        return run

    potential = lambda w: -log_density(w)  # noqa: E731
    for method in numpyro_methods:
        # trajectory_length=None: numpyro otherwise rescales step_size to 2π / num_steps
        runs[f"numpyro HMC ({method})"] = numpyro(
            HMC(potential_fn=potential, step_size=eps, num_steps=L, trajectory_length=None,
                adapt_step_size=False, adapt_mass_matrix=False), method)

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

    runs["blackjax HMC (vmap)"] = blackjax_run

    # numpyro's HMC kernel without MCMC: its chain driver jits a fresh loop body on every
    # run() (its time includes that compile, as a user's run does); here the kernel is run in
    # one jitted vmap + lax.scan, as blackjax's is, for compute against compute.
    init_k, sample_k = numpyro_hmc(potential_fn=potential, algo="HMC")

    @jax.jit
    def numpyro_kernel_run(key):
        states = jax.vmap(lambda w, k: init_k(
            w, n_warm, step_size=eps, adapt_step_size=False, adapt_mass_matrix=False,
            num_steps=L, trajectory_length=None, rng_key=k))(w0, jax.random.split(key, n_chains))
        step = jax.vmap(sample_k)

        def body(s, _):
            s = step(s)
            return s, (s.z, s.accept_prob)

        states, _ = lax.scan(body, states, None, length=n_warm)
        _, (pos, acc) = lax.scan(body, states, None, length=n_draw)
        return jnp.swapaxes(pos, 0, 1), jnp.mean(acc, axis=0)

    runs["numpyro HMC kernel (vmap + scan)"] = numpyro_kernel_run
    if "vectorized" in numpyro_methods:
        runs["numpyro NUTS (vectorized)"] = numpyro(
            NUTS(potential_fn=potential, step_size=eps, adapt_step_size=False,
                 adapt_mass_matrix=False), "vectorized")
    return runs


def _compare(log_density, eps, L, d, n_chains, n_warm, n_draw, repeats, numpyro_methods):
    """Run and time every sampler on one workload; returns ([(reference, jaxml s per ESS,
    jaxml compile s, reference s per ESS, quality, note)], {name: posterior mean (d,)})."""
    runs = _samplers(log_density, eps, L, d, n_chains, n_warm, n_draw, numpyro_methods)
    med, first, out = _time_interleaved(runs, jax.random.key(1), repeats)
    # the plain call beside the same call under jax.jit, alternated in rounds of their own
    # (cheap, so more of them than the peers get): the table's plain/jit column
    pair, _, _ = _time_interleaved({"plain": runs["jaxml"], "jit": jax.jit(runs["jaxml"])},
                                   jax.random.key(1), max(7, repeats))
    ess = {name: float(jnp.min(mcmc.ess_bulk(dr))) for name, (dr, _) in out.items()}
    acc = {name: float(jnp.mean(a)) for name, (_, a) in out.items()}
    means = {name: np.asarray(dr).reshape(-1, d).mean(0) for name, (dr, _) in out.items()}
    sd = np.asarray(out["jaxml"][0]).reshape(-1, d).std(0)
    rate = {name: ess[name] / med[name] for name in runs}
    compile_j = max(first["jaxml"] - med["jaxml"], 0.0)
    jit_s = med["jaxml"] / ess["jaxml"] * pair["jit"] / pair["plain"]   # same draws
    rows = []
    for name in runs:
        if name.startswith("jaxml"):
            continue
        quality = (f"min bulk ESS {ess['jaxml']:.0f} / {ess[name]:.0f}, acceptance "
                   f"{acc['jaxml']:.2f} / {acc[name]:.2f}, max abs Δ mean / sd "
                   f"{np.max(np.abs(means['jaxml'] - means[name]) / sd):.2f}")
        note = (f"ESS/s {rate['jaxml']:.1f} vs {rate[name]:.1f} "
                f"(x{rate['jaxml'] / rate[name]:.2f}); wall {med['jaxml']:.2f} s vs "
                f"{med[name]:.2f} s")
        rows.append((name, 1.0 / rate["jaxml"], compile_j, 1.0 / rate[name], quality, note,
                     jit_s))
    return rows, means


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    # a float32 workload: ``make bench`` runs every module in one process, and the modules
    # before this one turn 64-bit types on, under which numpyro's HMC promotes its state to
    # float64 inside its float32 loop carry and fails (a TypeError from ``lax.fori_loop``)
    with jax.enable_x64(False):
        return _run(out_dir, quick)


def _run(out_dir: Path, quick: bool) -> list[BenchRow]:
    import matplotlib.pyplot as plt

    n, d = (1000, 10) if quick else (10_000, 50)
    L = 16
    X, y = _data(n, d)

    def log_density(w):
        logits = X @ w
        return jnp.sum(y * logits - jax.nn.softplus(logits)) - 0.5 * jnp.dot(w, w)

    n_warm_tune = 100 if quick else 500
    tuned = mcmc.sample(jax.random.key(0), mcmc.HMC(log_density, step_size=0.01, n_steps=L,
                                                    adapt_mass_matrix=False),
                        jnp.zeros((4, d), jnp.float32), n_samples=10, n_chains=4,
                        n_warmup=n_warm_tune)
    eps = float(jnp.median(tuned.params.step_size))

    configs = [
        # (chains, burn-in, draws, repeats, numpyro chain methods)
        (4, 100, 200, 1, ("vectorized", "sequential")) if quick else
        (4, 500, 1000, 2, ("vectorized", "sequential")),
        (16, 50, 100, 1, ("vectorized",)) if quick else (32, 100, 100, 1, ("vectorized",)),
    ]
    rows, fig_means = [], None
    for n_chains, n_warm, n_draw, repeats, methods in configs:
        label = (f"HMC logistic regression n={n} d={d}, {n_chains} chains x ({n_warm} burn-in + "
                 f"{n_draw}), ε={eps:.3g}, L={L}; s per effective sample")
        got, means = _compare(log_density, eps, L, d, n_chains, n_warm, n_draw, repeats,
                              methods)
        fig_means = means if fig_means is None else fig_means
        for name, j_s, j_compile, ref_s, quality, note, jit_s in got:
            target = ("(NUTS: its own path length)" if "NUTS" in name
                      else ">= 1x ESS/s of the faster peer")
            rows.append(BenchRow(label, j_s, j_compile, name, ref_s, quality, target, note,
                                 jit_s=jit_s))

    fig, ax = plt.subplots(figsize=(5, 4.5))
    for (name, m), marker in zip(((k, v) for k, v in fig_means.items()
                                  if not k.startswith("jaxml")),
                                 "ox+^s"):
        ax.plot(m, fig_means["jaxml"], marker, ms=4, label=name)
    lim = float(np.max(np.abs(fig_means["jaxml"]))) * 1.1
    ax.plot([-lim, lim], [-lim, lim], "k:")
    ax.set(xlabel="reference posterior mean", ylabel="jaxml HMC posterior mean",
           title=f"HMC, logistic regression n={n}, d={d}")
    ax.legend(fontsize=7)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(out_dir) / "bench_mcmc.png", dpi=110)
    plt.close(fig)
    return rows


if __name__ == "__main__":
    from _common import format_rows

    print(format_rows(run(Path("out"), quick="--quick" in sys.argv)))
