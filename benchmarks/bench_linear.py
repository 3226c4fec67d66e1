"""jaxml.linear vs scikit-learn: ridge (large n), lasso path, and 1000 small ridge fits.

All in float64 so the quality figures compare solutions, not rounding.

    python benchmarks/run_all.py --only linear [--quick] --out out/bench
"""

from __future__ import annotations

import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import BenchRow, time_fn, time_plain_and_jit, write_report  # noqa: E402
from sklearn.linear_model import Ridge, lasso_path  # noqa: E402

from jaxml import linear  # noqa: E402


def _ridge_big(rng, n, d, repeats):
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    fit = linear.ridge   # the plain call, as users write it (one jitted core inside)
    timing, w = time_plain_and_jit(fit, Xj, yj, 1.0, repeats=repeats)
    sk = Ridge(alpha=1.0, fit_intercept=False, solver="cholesky")
    ref_t, _ = time_fn(lambda: sk.fit(X, y).coef_, repeats=repeats)
    err = float(np.abs(np.asarray(w) - sk.coef_).max() / np.abs(sk.coef_).max())
    row = BenchRow(f"ridge n={n}, d={d}", timing.median_s, timing.compile_s,
                   'Ridge(solver="cholesky")', ref_t.median_s, f"max rel coef diff {err:.1e}",
                   ">= 1x", jit_s=timing.jit_s)
    return row, (np.asarray(w), sk.coef_)


def _lasso_path(rng, n, d, k, tol, repeats):
    X = rng.normal(size=(n, d))
    w_true = np.zeros(d)
    w_true[: d // 20] = 2.0 * rng.normal(size=d // 20)
    y = X @ w_true + rng.normal(size=n)
    alphas = np.abs(X.T @ y).max() / n * np.logspace(0, -3, k)   # scikit-learn's default grid
    Xj, yj, aj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(alphas)
    rows, figs = [], {}
    ref_t, (_, ref, _) = time_fn(lambda: lasso_path(X, y, alphas=alphas, tol=tol,
                                                    max_iter=10000), repeats=repeats)
    modes = (("default: warm start, blocks of 16 alphas", True, 16),
             ("warm start one alpha at a time, warm_block=1", True, 1),
             ("all alphas from zero in one vmap, warm_start=False", False, 1))
    for mode, warm, block in modes:
        fit = (lambda X, y, a, warm=warm, block=block: linear.lasso_path(  # plain call
            X, y, a, tol=tol, max_iter=10000, warm_start=warm, warm_block=block))
        timing, res = time_plain_and_jit(fit, Xj, yj, aj, repeats=repeats)
        err = float(np.abs(np.asarray(res.coefs) - ref.T).max())
        rows.append(BenchRow(f"lasso_path n={n}, d={d}, {k} alphas, tol={tol:g} ({mode})",
                             timing.median_s, timing.compile_s, "sklearn lasso_path (Gram CD)",
                             ref_t.median_s,
                             f"max |coef diff| {err:.1e}; all converged: "
                             f"{bool(np.all(res.converged))}", ">= 1x, coefs to 1e-4",
                             jit_s=timing.jit_s))
        figs[mode] = np.asarray(res.coefs)
    return rows, (alphas, figs, ref.T)


def _many_ridge(rng, m, n, d, repeats):
    Xs = rng.normal(size=(m, n, d))
    ys = np.einsum("mnd,md->mn", Xs, rng.normal(size=(m, d))) + rng.normal(size=(m, n))
    alphas = rng.uniform(0.1, 10.0, size=m)
    fit = jax.vmap(linear.ridge)   # the plain vmapped call; jax.jit of it beside
    timing, W = time_plain_and_jit(fit, jnp.asarray(Xs), jnp.asarray(ys), jnp.asarray(alphas),
                                   repeats=repeats)

    def loop():
        return np.stack([Ridge(alpha=a, fit_intercept=False).fit(x, y).coef_
                         for x, y, a in zip(Xs, ys, alphas)])

    ref_t, ref = time_fn(loop, repeats=max(1, repeats // 2))
    err = float(np.max(np.abs(np.asarray(W) - ref)) / np.abs(ref).max())
    row = BenchRow(f"{m} ridge fits n={n}, d={d}, one vmapped call", timing.median_s,
                   timing.compile_s, "Python loop over Ridge", ref_t.median_s,
                   f"max rel coef diff {err:.1e}", ">= 20x", jit_s=timing.jit_s)
    return row, (np.asarray(W), ref)


def _figure(out_dir: Path, ridge_pair, path_data, many_pair):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas, figs, ref = path_data
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    w, wr = ridge_pair
    ax[0].plot(wr, w, ".", ms=3)
    ax[0].plot([wr.min(), wr.max()], [wr.min(), wr.max()], "k-", lw=0.5)
    ax[0].set(title="ridge coefficients", xlabel="scikit-learn", ylabel="jaxml")
    jx = figs["default: warm start, blocks of 16 alphas"]
    for j in range(min(ref.shape[1], 60)):
        ax[1].plot(alphas, ref[:, j], "-", color="0.7", lw=2.5)
        ax[1].plot(alphas, jx[:, j], "--", color="C0", lw=0.8)
    ax[1].set(xscale="log", title="lasso path (grey sklearn, dashed jaxml)", xlabel="alpha",
              ylabel="coefficient")
    W, R = many_pair
    ax[2].plot(R.ravel(), W.ravel(), ".", ms=1)
    ax[2].set(title="1000 small ridge fits", xlabel="scikit-learn", ylabel="jaxml")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "bench_linear.png", dpi=100)
    plt.close(fig)


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    out_dir = Path(out_dir)
    rng = np.random.default_rng(0)
    if quick:
        sizes = dict(ridge=(5000, 100), path=(500, 100, 10), many=(100, 200, 20), repeats=2)
    else:
        sizes = dict(ridge=(100_000, 500), path=(5000, 1000, 50), many=(1000, 200, 20), repeats=5)
    reps = sizes["repeats"]
    t0 = time.perf_counter()
    r1, ridge_pair = _ridge_big(rng, *sizes["ridge"], reps)
    rows2, path_data = _lasso_path(rng, *sizes["path"], tol=1e-10, repeats=reps)
    r3, many_pair = _many_ridge(rng, *sizes["many"], reps)
    rows = [r1, *rows2, r3]
    _figure(out_dir, ridge_pair, path_data, many_pair)
    write_report(rows, out_dir, "bench_linear")
    print(f"bench_linear done in {time.perf_counter() - t0:.1f}s")
    return rows


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import format_rows

    print(format_rows(run(Path("out/bench"), quick="--quick" in sys.argv)))
