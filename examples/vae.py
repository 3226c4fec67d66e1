"""Autoencoder vs variational autoencoder on handwritten digits.

Both map 64 pixels (scikit-learn's 8×8 digits, grey levels scaled to [0, 1]) to a 2-D code
and back. The autoencoder minimizes Σ‖x − g(f(x))‖²; the VAE maximizes the ELBO with a
Bernoulli decoder, q(z|x) = N(μ(x), diag σ²(x)) and the KL to N(0, I) in closed form. Drawn:
reconstructions, samples from the prior (the VAE's decoder turns N(0, I) into digits; the
autoencoder's decoder was never asked to), the 2-D codes coloured by class, and the ELBO
curves with the importance-weighted bound (IWAE, K = 100) on held-out digits. On the digits
the two Gaussian decoders are compared too: p(x | z) = N(μ(z), diag σ²) with one learned
scale per pixel, and the heteroscedastic N(μ(z), diag σ²(z)) whose scale the decoder outputs
(held-out ELBO in nats per image, a density on the continuous grey levels; full tour only).

When Debian's Fashion-MNIST is installed (``/usr/share/datasets/fashion-mnist``, IDX files) the
same comparison is run on it too; otherwise that part is skipped.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, savefig
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from jaxml import vae

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion(max_rows: int):
    """(X in [0, 1], labels) from the IDX files under FASHION_DIR, or None if absent."""
    if not FASHION_DIR.is_dir():
        return None
    images = sorted(FASHION_DIR.rglob("*train-images*idx3*"))
    labels = sorted(FASHION_DIR.rglob("*train-labels*idx1*"))
    if not images or not labels:
        return None
    X = _read_idx(images[0]).reshape(-1, 28 * 28)[:max_rows] / 255.0
    return X, _read_idx(labels[0])[:max_rows].astype(int), 28


def _digits():
    d = load_digits()
    return d.data / 16.0, d.target, 8


def _split(X, y, frac=0.8, seed=0):
    idx = np.random.default_rng(seed).permutation(len(X))
    n = int(frac * len(X))
    return X[idx[:n]], y[idx[:n]], X[idx[n:]], y[idx[n:]]


def _smooth(v, w):
    v = np.asarray(v)
    w = max(1, min(w, len(v) // 5))
    return np.convolve(v, np.ones(w) / w, mode="valid")


def _compare(out_dir: Path, quick: bool, X, y, side: int, tag: str) -> list[SummaryRow]:
    Xtr, ytr, Xte, yte = _split(X, y)
    d = X.shape[1]
    width, depth = (32, 1) if quick else (256, 2)
    n_steps = 200 if quick else 12_000
    key = jax.random.key(0)

    # both models' random initializations as one compiled program (eagerly, every layer's
    # draw of another shape compiles on its own); the same draws either way
    model, ae = eqx.filter_jit(lambda k: (
        vae.VAE(k, d, 2, width=width, depth=depth, likelihood="bernoulli"),
        vae.Autoencoder(k, d, 2, width=width, depth=depth)))(key)
    rv = vae.fit(jax.random.key(1), model, Xtr, n_steps=n_steps, batch_size=128,
                 learning_rate=1e-3)
    ra = vae.fit(jax.random.key(1), ae, Xtr, n_steps=n_steps, batch_size=128,
                 learning_rate=1e-3)
    m, a = rv.params, ra.params

    # held-out figures
    test_elbo = float(jnp.mean(vae.elbo(jax.random.key(2), m, Xte, n_samples=10)))
    test_iwae = float(jnp.mean(vae.iwae_bound(jax.random.key(3), m, Xte, n_samples=100)))
    p = np.clip(Xtr.mean(0), 1e-3, 1 - 1e-3)            # independent-pixel Bernoulli baseline
    base_ll = float(np.mean(Xte @ np.log(p) + (1 - Xte) @ np.log(1 - p)))
    ae_err = float(vae.reconstruction_loss(a, Xte))
    pca = PCA(2).fit(Xtr)
    pca_err = float(np.mean(np.sum((Xte - pca.inverse_transform(pca.transform(Xte))) ** 2, 1)))
    vae_rec = np.asarray(vae.reconstruct(m, Xte))
    vae_err = float(np.mean(np.sum((Xte - vae_rec) ** 2, 1)))
    ae_rec = np.asarray(vae.reconstruct(a, Xte))

    def show(ax, img):
        ax.imshow(img.reshape(side, side), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])

    # reconstructions
    n_show = 6 if quick else 10
    fig, axes = plt.subplots(3, n_show, figsize=(n_show * 1.0, 3.3))
    for j in range(n_show):
        show(axes[0, j], Xte[j])
        show(axes[1, j], ae_rec[j])
        show(axes[2, j], vae_rec[j])
    for i, lab in enumerate(["data", "autoencoder", "VAE (mean)"]):
        axes[i, 0].set_ylabel(lab, fontsize=8)
    fig.suptitle(f"{tag}: held-out reconstructions through a 2-D code", fontsize=10)
    f_rec = savefig(fig, out_dir, f"vae_{tag}_reconstructions.png")

    # samples: decode z ~ N(0, I) with both decoders, and the VAE's decoded latent grid
    zs = jax.random.normal(jax.random.key(4), (n_show, 2))
    vae_samples = np.asarray(vae.sample(jax.random.key(4), m, n_show))
    ae_samples = np.asarray(vae.decode(a, zs))
    grid = np.linspace(-2.0, 2.0, 8)
    zz = np.array([[u, v] for v in grid[::-1] for u in grid])
    manifold = np.asarray(jax.nn.sigmoid(vae.decode(m, zz)))
    fig = plt.figure(figsize=(12, 5))
    sub = fig.subfigures(1, 2, width_ratios=[1.0, 1.0])
    ax_s = sub[0].subplots(2, 5)
    for j in range(5):
        show(ax_s[0, j], vae_samples[j])
        show(ax_s[1, j], np.clip(ae_samples[j], 0, 1))
    ax_s[0, 0].set_ylabel("VAE", fontsize=8)
    ax_s[1, 0].set_ylabel("autoencoder", fontsize=8)
    sub[0].suptitle("decoder(z), z ~ N(0, I)", fontsize=9)
    ax_m = sub[1].subplots()        # the 8 × 8 decoded images tiled into one mosaic
    mosaic = np.pad(manifold.reshape(8, 8, side, side), ((0, 0), (0, 0), (1, 1), (1, 1)))
    ax_m.imshow(mosaic.transpose(0, 2, 1, 3).reshape(8 * (side + 2), 8 * (side + 2)),
                cmap="gray_r", vmin=0, vmax=1)
    ax_m.set_xticks([])
    ax_m.set_yticks([])
    sub[1].suptitle("VAE decoder mean on a grid of z ∈ [−2, 2]²", fontsize=9)
    f_samp = savefig(fig, out_dir, f"vae_{tag}_samples.png")

    # latent spaces coloured by class
    mu, _ = vae.encode(m, Xte)
    codes = vae.encode(a, Xte)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, Z, title in ((axes[0], np.asarray(codes), "autoencoder codes f(x)"),
                         (axes[1], np.asarray(mu), "VAE posterior means μ(x)")):
        sc = ax.scatter(Z[:, 0], Z[:, 1], c=yte, cmap="tab10", s=6, vmin=-0.5, vmax=9.5)
        ax.set(title=f"{tag}, held out: {title}", xlabel="z₁", ylabel="z₂")
    fig.colorbar(sc, ax=axes, ticks=range(10), label="class")
    f_lat = savefig(fig, out_dir, f"vae_{tag}_latent.png")

    # training curves
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    w = max(1, n_steps // 100)
    axes[0].plot(_smooth(-np.asarray(rv.trace), w), label="VAE minibatch ELBO (train)")
    axes[0].axhline(test_elbo, ls="--", color="C1", label=f"held-out ELBO {test_elbo:.2f}")
    axes[0].axhline(test_iwae, ls=":", color="C2", label=f"held-out IWAE K=100 {test_iwae:.2f}")
    axes[0].axhline(base_ll, ls="-.", color="gray",
                    label=f"independent pixels {base_ll:.2f}")
    axes[0].set(xlabel="step", ylabel="nats per image", title=f"{tag}: ELBO")
    axes[0].legend(fontsize=8)
    axes[1].plot(_smooth(np.asarray(ra.trace), w), label="autoencoder Σ‖x − g(f(x))‖² (train)")
    axes[1].axhline(ae_err, ls="--", color="C1", label=f"autoencoder held out {ae_err:.2f}")
    axes[1].axhline(vae_err, ls=":", color="C2", label=f"VAE (mean) held out {vae_err:.2f}")
    axes[1].axhline(pca_err, ls="-.", color="gray", label=f"PCA, 2 comp. {pca_err:.2f}")
    axes[1].set(xlabel="step", ylabel="squared error per image",
                title=f"{tag}: reconstruction error")
    axes[1].legend(fontsize=8)
    f_curve = savefig(fig, out_dir, f"vae_{tag}_curves.png")

    return [
        SummaryRow(f"VAE (2-D latent, Bernoulli decoder) on {tag}: held-out ELBO / IWAE K=100 "
                   "(nats per image)", f"{test_elbo:.2f} / {test_iwae:.2f}",
                   f"independent-pixel Bernoulli log-lik {base_ll:.2f}", f_curve),
        SummaryRow(f"autoencoder (2-D code) on {tag}: held-out squared reconstruction error",
                   f"{ae_err:.3f} (VAE mean: {vae_err:.3f})",
                   f"scikit-learn PCA(2) {pca_err:.3f}", f_rec),
        SummaryRow(f"{tag}: 2-D codes coloured by class, samples from the prior",
                   "see figures", "", f_lat),
        SummaryRow(f"{tag}: samples", "see figure", "", f_samp),
    ]


def _gaussian_decoders(quick: bool, X, y) -> SummaryRow:
    """Held-out ELBO of the homoscedastic and the heteroscedastic Gaussian decoder."""
    Xtr, _, Xte, _ = _split(X, y)
    n_steps = 100 if quick else 6_000
    out = {}
    for lik in ("gaussian", "heteroscedastic"):
        model = vae.VAE(jax.random.key(0), X.shape[1], 2, width=32 if quick else 128,
                        likelihood=lik)
        res = vae.fit(jax.random.key(1), model, Xtr, n_steps=n_steps, batch_size=128,
                      learning_rate=1e-3)
        out[lik] = float(jnp.mean(vae.elbo(jax.random.key(2), res.params, Xte, n_samples=10)))
    return SummaryRow("VAE on digits, Gaussian decoders: held-out ELBO, heteroscedastic "
                      "σ(z) vs one σ per pixel (nats per image)",
                      f"{out['heteroscedastic']:.2f}", f"per-pixel σ {out['gaussian']:.2f}")


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    X, y, side = _digits()
    rows = _compare(out_dir, quick, X, y, side, "digits")
    if not quick:                   # two more fits to compile: the full tour only
        rows.append(_gaussian_decoders(quick, X, y))
    fashion = _fashion(2_000 if quick else 20_000)
    if fashion is not None and not quick:
        rows += _compare(out_dir, quick, *fashion, "fashion-mnist")
    elif fashion is None:
        rows.append(SummaryRow("Fashion-MNIST", "skipped", f"{FASHION_DIR} not found"))
    return rows


if __name__ == "__main__":
    run(Path("out"))
