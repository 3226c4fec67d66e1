"""Planar flow by reverse KL vs flowjax; VAE training on digits vs a hand-written equinox loop.

Flows (issue 8): a planar flow of 16 layers on R², reverse KL to exp(−U1) (Rezende & Mohamed
2015), 256 Monte Carlo samples per step, 2 000 Adam steps, learning rates 1e-2 and 1e-3.

- jaxml: ``flows.fit(key, flows.planar_flow(key, 2, 16), log_density=-U1, n_samples=256,
  n_steps=2000, learning_rate=lr)`` — one jit-compiled ``lax.scan`` over the steps, the 16
  layers applied by a ``lax.scan`` too.
- flowjax 19.1.2: ``planar_flow(key, base_dist=StandardNormal((2,)), flow_layers=16,
  invert=False)`` (tanh planar layers have no inverse in flowjax, so the sampling direction
  must be the forward one, as here), ``ElboLoss(target, num_samples=256)``,
  ``fit_to_key_based_loss(..., steps=2000, learning_rate=lr)`` (its Adam, a jitted step
  called from a Python loop).

Both parametrize û so that wᵀû ≥ −1 (flowjax uses m(x) = −1 + log(1 + softplus(x)), jaxml the
paper's m(x) = −1 + softplus(x)); flowjax adds a coordinate flip after every layer. Quality:
the reverse-KL loss (KL(q‖π) − log Z) of every fitted flow re-estimated with 20 000 fresh draws,
beside the exact −log Z by quadrature, across several seeds, and the number of seeds whose
training hit NaN.

VAE on scikit-learn's digits (1 797 × 64, grey levels in [0, 1]): 8-D latent, MLPs of width
256 and depth 2, Bernoulli decoder, batch 128, Adam 1e-3. jaxml ``vae.fit`` vs the same
``jaxml.vae.VAE`` module trained by a textbook equinox/optax loop (an ``eqx.filter_jit`` step
with its own ELBO, called from Python). Quality: the final ELBO (10 draws per image) and the
IWAE bound (K = 100) on all digits, evaluated identically for both.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchRow, time_fn, time_plain_and_jit  # noqa: E402

from jaxml import flows, vae  # noqa: E402

N_LAYERS, N_SAMPLES = 16, 256


def log_density(x):
    return -flows.U1(x)


def _log_z_u1(n=801, lim=4.0):
    g = np.linspace(-lim, lim, n)
    xx, yy = np.meshgrid(g, g)
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], 1), jnp.float32)
    dens = np.exp(-np.asarray(flows.U1(pts), np.float64)).reshape(n, n)
    return float(np.log(np.trapezoid(np.trapezoid(dens, g), g)))


def _jaxml_fit(seed, steps, lr):
    flow = flows.planar_flow(jax.random.key(seed), 2, N_LAYERS, dtype=jnp.float32)
    return _jaxml_fit_flow(jax.random.key(seed + 1000), flow, steps=steps, lr=lr)


def _jaxml_fit_flow(key, flow, *, steps, lr):
    """The plain call, as users write it."""
    return flows.fit(key, flow, log_density=log_density, n_samples=N_SAMPLES, n_steps=steps,
                     learning_rate=lr)


def _flowjax_fit(seed, steps, lr):
    from flowjax.distributions import StandardNormal
    from flowjax.flows import planar_flow
    from flowjax.train import fit_to_key_based_loss
    from flowjax.train.losses import ElboLoss

    flow = planar_flow(jax.random.key(seed), base_dist=StandardNormal((2,)),
                       flow_layers=N_LAYERS, invert=False)
    loss = ElboLoss(log_density, num_samples=N_SAMPLES)
    return fit_to_key_based_loss(jax.random.key(seed + 1000), flow, loss_fn=loss, steps=steps,
                                 learning_rate=lr, show_progress=False)


@eqx.filter_jit
def _fresh_loss(sample_and_log_prob, key):
    x, lq = sample_and_log_prob(key)
    return jnp.mean(lq - jax.vmap(log_density)(x))


def _eval_jaxml(flow):
    return float(_fresh_loss(lambda k: flow.sample_and_log_prob(k, 20_000), jax.random.key(7)))


def _eval_flowjax(dist):
    return float(_fresh_loss(lambda k: dist.sample_and_log_prob(k, (20_000,)), jax.random.key(7)))


def bench_flows(out_dir: Path, quick: bool):
    import matplotlib.pyplot as plt

    steps = 200 if quick else 2000
    seeds = (0, 1) if quick else (0, 1, 2)
    repeats = 1 if quick else 3
    neg_log_z = -_log_z_u1()
    rows = []
    curves = {}
    for lr in (1e-2, 1e-3):
        flow0 = flows.planar_flow(jax.random.key(0), 2, N_LAYERS, dtype=jnp.float32)
        t_j, res = time_plain_and_jit(_jaxml_fit_flow, jax.random.key(1000), flow0,
                                      steps=steps, lr=lr, repeats=repeats)
        t_f, (dist, losses_f) = time_fn(_flowjax_fit, 0, steps, lr, repeats=1)
        curves[lr] = (np.asarray(res.trace), np.asarray(losses_f), res.params, dist)
        fj, ff = [], []
        nan_j = nan_f = 0
        for s in seeds:
            r = res if s == 0 else _jaxml_fit(s, steps, lr)
            d, lf = (dist, losses_f) if s == 0 else _flowjax_fit(s, steps, lr)
            nan_j += int(not np.all(np.isfinite(np.asarray(r.trace))))
            nan_f += int(not np.all(np.isfinite(np.asarray(lf))))
            fj.append(_eval_jaxml(r.params))
            ff.append(_eval_flowjax(d))
        fmt = lambda v: ", ".join(f"{x:.3f}" for x in v)  # noqa: E731
        quality = (f"loss (20k fresh draws) per seed: jaxml [{fmt(fj)}], flowjax [{fmt(ff)}]; "
                   f"−log Z = {neg_log_z:.3f}; NaN runs jaxml {nan_j}/{len(seeds)}, flowjax "
                   f"{nan_f}/{len(seeds)}")
        rows.append(BenchRow(
            f"planar flow K={N_LAYERS}, reverse KL on U1, {N_SAMPLES} samples/step, {steps} Adam "
            f"steps, lr={lr:g}", t_j.median_s, t_j.compile_s, "flowjax planar_flow + ElboLoss",
            t_f.median_s, quality, ">= 3x, same final loss, no NaN",
            "flowjax: Python loop over a jitted step (first call "
            f"{t_f.first_s:.2f} s)", jit_s=t_j.jit_s))

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    k = max(1, steps // 50)
    sm = lambda v: np.convolve(v, np.ones(k) / k, mode="valid")  # noqa: E731
    for lr, ls in ((1e-2, "-"), (1e-3, "--")):
        lj, lf, _, _ = curves[lr]
        axes[0].plot(sm(lj), ls, color="C0", label=f"jaxml lr={lr:g}")
        axes[0].plot(sm(lf), ls, color="C1", label=f"flowjax lr={lr:g}")
    axes[0].axhline(neg_log_z, color="k", lw=0.8, label="−log Z (quadrature)")
    axes[0].set(xlabel="step", ylabel="reverse-KL loss (running mean)", ylim=(neg_log_z - 0.2,
                neg_log_z + 3), title="U1, seed 0")
    axes[0].legend(fontsize=8)
    g = np.linspace(-4, 4, 200)
    xx, yy = np.meshgrid(g, g)
    dens = np.exp(-np.asarray(flows.U1(jnp.asarray(np.stack([xx, yy], -1), jnp.float32))))
    _, _, fj_flow, ff_dist = curves[1e-2]
    xs_j = np.asarray(fj_flow.sample(jax.random.key(3), 3000))
    xs_f = np.asarray(ff_dist.sample(jax.random.key(3), (3000,)))
    for ax, xs, name in ((axes[1], xs_j, "jaxml"), (axes[2], xs_f, "flowjax")):
        ax.contour(xx, yy, dens, levels=8, colors="k", linewidths=0.6)
        ax.scatter(xs[:, 0], xs[:, 1], s=2, alpha=0.4)
        ax.set(xlim=(-4, 4), ylim=(-4, 4), title=f"{name} samples over exp(−U1), lr=1e-2")
    fig.savefig(Path(out_dir) / "bench_flows_u1.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return rows


# ----------------------------------------------------------------------------- VAE


def _reference_elbo(model, key, x):
    """Independent textbook ELBO: Bernoulli decoder, closed-form Gaussian KL, one draw."""
    h = jax.vmap(model.encoder)(x)
    mean, log_var = h[:, : model.latent_dim], h[:, model.latent_dim:]
    z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape, mean.dtype)
    logits = jax.vmap(model.decoder)(z)
    rec = jnp.sum(x * logits - jax.nn.softplus(logits), axis=1)
    kl = 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var, axis=1)
    return jnp.mean(rec - kl)


def _reference_vae_fit(model, key, X, n_steps, batch_size, lr):
    opt = optax.adam(lr)
    opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(model, opt_state, key):
        kb, ke = jax.random.split(key)
        xb = X[jax.random.randint(kb, (batch_size,), 0, X.shape[0])]
        loss, grads = eqx.filter_value_and_grad(lambda m: -_reference_elbo(m, ke, xb))(model)
        updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    losses = []
    for k in jax.random.split(key, n_steps):
        model, opt_state, loss = step(model, opt_state, k)
        losses.append(loss)
    return model, jnp.stack(losses)


def bench_vae(out_dir: Path, quick: bool):
    import matplotlib.pyplot as plt
    from sklearn.datasets import load_digits

    X = jnp.asarray(load_digits().data / 16.0, jnp.float32)
    n_steps = 300 if quick else 5000
    width = 64 if quick else 256
    repeats = 1 if quick else 3
    model0 = vae.VAE(jax.random.key(0), 64, 8, width=width, depth=2, dtype=jnp.float32)

    def jaxml_fit(key, X):   # the plain call, as users write it
        return vae.fit(key, model0, X, n_steps=n_steps, batch_size=128, learning_rate=1e-3)

    def ref_fit():
        return _reference_vae_fit(model0, jax.random.key(1), X, n_steps, 128, 1e-3)

    t_j, res = time_plain_and_jit(jaxml_fit, jax.random.key(1), X, repeats=repeats)
    t_r, (ref_model, ref_losses) = time_fn(ref_fit, repeats=repeats)

    def evaluate(m):
        e = float(jnp.mean(vae.elbo(jax.random.key(5), m, X, n_samples=10)))
        iw = float(jnp.mean(vae.iwae_bound(jax.random.key(6), m, X, n_samples=100)))
        return e, iw

    (ej, ij), (er, ir) = evaluate(res.params), evaluate(ref_model)
    quality = (f"ELBO / IWAE-100 on all digits: jaxml {ej:.2f} / {ij:.2f}, reference {er:.2f} / "
               f"{ir:.2f}; steps/s jaxml {n_steps / t_j.median_s:.0f}, reference "
               f"{n_steps / t_r.median_s:.0f}")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    k = max(1, n_steps // 50)
    sm = lambda v: np.convolve(np.asarray(v), np.ones(k) / k, mode="valid")  # noqa: E731
    ax.plot(sm(-np.asarray(res.trace)), label="jaxml vae.fit")
    ax.plot(sm(-np.asarray(ref_losses)), label="equinox/optax Python loop", alpha=0.8)
    ax.axhline(ej, color="C0", ls="--", lw=0.8, label=f"jaxml final ELBO {ej:.2f}")
    ax.axhline(er, color="C1", ls=":", lw=0.8, label=f"reference final ELBO {er:.2f}")
    ax.set(xlabel="step", ylabel="minibatch ELBO (running mean)",
           title="VAE on digits, 8-D latent, Bernoulli decoder")
    ax.legend(fontsize=8)
    fig.savefig(Path(out_dir) / "bench_vae_digits.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [BenchRow(f"VAE digits (1797×64), latent 8, width {width}, depth 2, batch 128, "
                     f"{n_steps} Adam steps", t_j.median_s, t_j.compile_s,
                     "equinox + optax jitted step in a Python loop", t_r.median_s, quality,
                     "steps/s and final ELBO", jit_s=t_j.jit_s)]


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = bench_flows(out_dir, quick)
    rows += bench_vae(out_dir, quick)
    print(f"bench_flows done in {time.perf_counter() - t0:.0f} s")
    return rows
