"""Planar flows in 2-D: reverse KL on the four energies of Rezende & Mohamed, forward KL on
Old Faithful.

Reverse KL (z → x, no inverse): a generative planar flow is fitted to exp(−U) for U1–U4 (U2–U4,
bands of infinite mass along z₁, confined smoothly to |z₁| ≲ 4 as in the paper's figures) and
flow lengths K = 2, 8, 32; the learned densities are drawn beside the targets (evaluating them
on a grid uses the layers' numerical inverse). The final loss estimates KL(q‖π) − log Z, so it
can't go below −log Z, computed here by quadrature on a grid.

Forward KL (x → z, no inverse): a normalizing planar flow (an affine layer, then planar layers)
is fitted to the standardized Old Faithful eruptions by maximum likelihood and compared with
scikit-learn's Gaussian mixtures.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from _common import DATA_DIR, SummaryRow, savefig
from sklearn.mixture import GaussianMixture

from jaxml import flows

LIM = 4.0


def _confined(energy):
    """exp(−U2..U4) is a band along z₁ with infinite mass on R²; as in the paper's figures we
    look at it on the box |z₁| ≲ 4, made smooth by adding ½(z₁/3.5)⁸ to U (≈ 0 inside |z₁| < 2.5,
    a steep wall past 4), so that the target is a proper density and KL(q‖π) ≥ 0 is defined."""
    def u(z):
        return energy(z) + 0.5 * (z[..., 0] / 3.5) ** 8
    u.__doc__ = energy.__doc__
    return u


ENERGIES = [flows.U1] + [_confined(e) for e in (flows.U2, flows.U3, flows.U4)]


def _grid(n):
    g = np.linspace(-LIM, LIM, n)
    xx, yy = np.meshgrid(g, g)
    return g, np.stack([xx.ravel(), yy.ravel()], axis=1)


@jax.jit
def _energies(pts):
    """U1..U4 at each row of pts (m, 2) → (4, m): one compiled program for all four."""
    return jnp.stack([energy(pts) for energy in ENERGIES])


def _targets(pts, n=801, lim=6.0):
    """(log Z of each energy, U of each energy at pts): log ∫ exp(−U) over [−6, 6]² by the
    trapezoid rule on an n × n grid (the mass lies inside), both from one evaluation."""
    g = np.linspace(-lim, lim, n)
    xx, yy = np.meshgrid(g, g)
    U = np.asarray(_energies(jnp.asarray(np.r_[np.stack([xx.ravel(), yy.ravel()], 1), pts])))
    dens = np.exp(-U[:, :n * n]).reshape(len(ENERGIES), n, n)
    log_zs = [float(np.log(np.trapezoid(np.trapezoid(d, g), g))) for d in dens]
    return log_zs, U[:, n * n:]


def _fit_all_energies(n_layers, n_steps, key):
    """One planar flow per energy, fitted by reverse KL; vmapped over the four energies
    (lax.switch picks the target), so each flow length compiles once."""
    flow0 = flows.planar_flow(jax.random.key(0), 2, n_layers)
    opt = optax.adam(optax.cosine_decay_schedule(1e-2, n_steps, alpha=0.05))

    def fit_one(k, which):
        target = lambda x: -jax.lax.switch(which, ENERGIES, x)  # noqa: E731
        return flows.fit(k, flow0, log_density=target, n_samples=256, n_steps=n_steps,
                         optimizer=opt)
    return jax.vmap(fit_one)(jax.random.split(key, 4), jnp.arange(4))


def reverse_kl(out_dir: Path, quick: bool) -> list[SummaryRow]:
    lengths = (2,) if quick else (2, 8, 32)
    n_steps = 100 if quick else 4000
    n_grid = 40 if quick else 120
    g, pts = _grid(n_grid)
    log_zs, U_pts = _targets(pts, 201 if quick else 801)

    fig, axes = plt.subplots(4, 1 + len(lengths), figsize=(2.6 * (1 + len(lengths)), 10.4))
    finals = {}
    for j, K in enumerate(lengths):
        res = _fit_all_energies(K, n_steps, jax.random.key(K))
        for i in range(4):
            flow = jax.tree_util.tree_map(lambda a: a[i], res.params)
            dens = np.exp(np.asarray(flow.log_prob(jnp.asarray(pts)))).reshape(n_grid, n_grid)
            axes[i, j + 1].imshow(dens, origin="lower", extent=(-LIM, LIM, -LIM, LIM),
                                  cmap="viridis")
            tail = np.asarray(res.trace[i, -max(n_steps // 10, 10):])
            finals[(i, K)] = float(np.nanmean(tail))
            axes[i, j + 1].set_title(f"K = {K}: loss {finals[(i, K)]:.2f}", fontsize=8)
    for i in range(len(ENERGIES)):
        dens = np.exp(-U_pts[i]).reshape(n_grid, n_grid)
        axes[i, 0].imshow(dens, origin="lower", extent=(-LIM, LIM, -LIM, LIM), cmap="viridis")
        axes[i, 0].set_title(f"target exp(−U{i + 1}), −log Z = {-log_zs[i]:.2f}", fontsize=8)
        axes[i, 0].set_ylabel(f"U{i + 1}")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("reverse KL: planar flows of length K fitted to exp(−U)", fontsize=10)
    name = savefig(fig, out_dir, "flows_energies.png")

    K = lengths[-1]
    rows = []
    for i in range(4):
        rows.append(SummaryRow(
            f"planar flow K={K}, reverse KL on U{i + 1} ({n_steps} steps): final loss "
            "= KL(q‖π) − log Z",
            f"{finals[(i, K)]:.3f} (KL ≈ {finals[(i, K)] + log_zs[i]:.3f})",
            f"−log Z by quadrature {-log_zs[i]:.3f}", name))
    return rows


def _faithful():
    path = DATA_DIR / "faithful.csv"
    X = np.loadtxt(path, delimiter=",", skiprows=1)
    return (X - X.mean(0)) / X.std(0)


def forward_kl(out_dir: Path, quick: bool) -> list[SummaryRow]:
    X = _faithful()
    n_layers, n_steps = (2, 100) if quick else (16, 1500)
    flow0 = flows.planar_flow(jax.random.key(1), 2, n_layers, direction="normalizing",
                              affine=True)
    opt = optax.adam(optax.cosine_decay_schedule(1e-2, n_steps, alpha=0.05))
    res = flows.fit(jax.random.key(2), flow0, data=X, batch_size=X.shape[0], n_steps=n_steps,
                    optimizer=opt)
    ll_flow = float(-flows.forward_kl_loss(res.params, X))
    # one component's fit is unique; the quick tour restarts EM once (the same optimum here)
    ll_gmm = {k: GaussianMixture(k, n_init=1 if quick or k == 1 else 5, random_state=0)
              .fit(X).score(X) for k in (1, 2)}

    n_grid = 40 if quick else 150
    lim = 3.2
    g = np.linspace(-lim, lim, n_grid)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    dens = np.exp(np.asarray(res.params.log_prob(pts))).reshape(n_grid, n_grid)
    samples = np.asarray(res.params.sample(jax.random.key(3), X.shape[0]))   # numerical inverse

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    axes[0].pcolormesh(xx, yy, np.sqrt(dens), cmap="viridis", shading="auto")
    axes[0].scatter(X[:, 0], X[:, 1], s=5, c="w", alpha=0.8)
    axes[0].set(title=f"√density of the flow ({n_layers} planar + affine), data",
                xlabel="eruption time (std.)", ylabel="waiting time (std.)")
    axes[1].scatter(X[:, 0], X[:, 1], s=6, label="data")
    axes[1].scatter(samples[:, 0], samples[:, 1], s=6, alpha=0.7, label="flow samples")
    axes[1].set(title="samples (through the numerical inverse)", xlim=(-lim, lim),
                ylim=(-lim, lim))
    axes[1].legend(fontsize=8)
    axes[2].plot(np.asarray(res.trace), lw=0.8, label="jaxml flow: −mean log-lik")
    for k, ll in ll_gmm.items():
        axes[2].axhline(-ll, ls="--", color=f"C{k}", label=f"scikit-learn GMM, {k} comp.")
    axes[2].set(title="forward KL training", xlabel="step", ylabel="negative log-likelihood",
                ylim=(min(-ll_flow, -ll_gmm[2]) - 0.3, -ll_gmm[1] + 0.8))
    axes[2].legend(fontsize=8)
    name = savefig(fig, out_dir, "flows_faithful.png")
    return [SummaryRow(f"planar flow ({n_layers} layers + affine), forward KL on Old Faithful "
                       "(standardized): mean log-likelihood",
                       f"{ll_flow:.3f}",
                       f"scikit-learn GaussianMixture: 1 comp. {ll_gmm[1]:.3f}, 2 comp. "
                       f"{ll_gmm[2]:.3f}", name)]


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    return reverse_kl(out_dir, quick) + forward_kl(out_dir, quick)


if __name__ == "__main__":
    run(Path("out"))
