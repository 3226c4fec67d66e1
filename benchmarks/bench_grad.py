"""jax.value_and_grad through the fits, divided by the time of the fit itself (issue 14).

For each fit a scalar loss of the fitted result is differentiated with respect to a
hyperparameter (SVM: log C and log γ; lasso: α; constrained ridge: the radius; k-means,
GMM: the data; LDA: the prior; mixture CAVI: the prior variance; RVM: the initial
precision, unrolled only) by the default implicit adjoint
(the fixed point's implicit derivative, one GMRES solve) and, beside it, by unrolling the
iterations (``adjoint=Unrolled()``, reverse mode through ``max_iter`` steps). Target:
value_and_grad ≤ 3× the fit for the implicit adjoint. Reference: jaxopt's implicit
differentiation of the same solver where jaxopt has one (ProximalGradient for the lasso,
ProjectedGradient for the L2-ball-constrained least squares); benchmark-only, the package
never imports jaxopt. The fit, its value_and_grad and the unrolled one are timed
interleaved in one process.

    python benchmarks/run_all.py --only grad [--quick] --out out/bench
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import BenchRow, time_fn, write_report  # noqa: E402

from jaxml import linear, svm  # noqa: E402
from jaxml._core import Unrolled  # noqa: E402


def _interleaved(fns, arg, repeats):
    """Median seconds of each ``fn(arg)`` (already compiled), calls alternating so that a load
    change on a shared machine hits all alike; and the last outputs."""
    times, outs = [[] for _ in fns], [None] * len(fns)
    for _ in range(max(1, repeats)):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            outs[i] = jax.block_until_ready(fn(arg))
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times], outs


def _ratio_row(name, fit_loss, theta, *, unrolled_loss=None, reference=("", float("nan")),
               repeats=3, note="", implicit=True):
    """Time jit(fit_loss), jit(value_and_grad(fit_loss)) and, if given, the unrolled one,
    interleaved in one process. ``implicit=False``: the fit has no implicit derivative; only
    the unrolled value_and_grad is timed (against the default fit, ``fit_loss``)."""
    f = jax.jit(fit_loss)
    fns = [f]
    t0 = time.perf_counter()
    if implicit:
        vg = jax.jit(jax.value_and_grad(fit_loss))
        jax.block_until_ready(vg(theta))
        fns.append(vg)
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(f(theta))
    if unrolled_loss is not None:
        vgu = jax.jit(jax.value_and_grad(unrolled_loss))
        jax.block_until_ready(vgu(theta))
        fns.append(vgu)
    times, outs = _interleaved(fns, theta, repeats)
    t_fit = times[0]
    quality, g = [], None
    if implicit:
        t_vg, (_, g) = times[1], outs[1]
        quality.append(f"implicit vg/fit = {t_vg / t_fit:.2f}x")
    if unrolled_loss is not None:
        t_u, (_, gu) = times[-1], outs[-1]
        q = f"unrolled vg/fit = {t_u / t_fit:.2f}x"
        if g is not None:
            diff = float(np.max(np.abs(np.asarray(g) - np.asarray(gu))) /
                         max(float(np.max(np.abs(np.asarray(gu)))), 1e-300))
            q += f" (grad rel diff {diff:.1e})"
        quality.append(q)
        if g is None:
            t_vg, g, compile_s = t_u, gu, float("nan")
    finite = bool(np.all(np.isfinite(np.asarray(g))))
    return BenchRow(f"value_and_grad {name}", t_vg, compile_s,
                    reference[0] or f"the fit itself ({t_fit:.4g}s)",
                    reference[1] if reference[0] else t_fit,
                    "; ".join(quality) + ("" if finite else "; NON-FINITE gradient"),
                    "vg <= 3x fit", note)


def _svm(rng, n, repeats):
    X = rng.normal(size=(n, 5))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] ** 2 + 0.3 * rng.normal(size=n) > 0.5, 1.0, -1.0)
    Xv = rng.normal(size=(n // 2, 5))
    yv = np.where(Xv[:, 0] + 0.5 * Xv[:, 1] ** 2 > 0.5, 1.0, -1.0)

    def loss(p, adjoint=None, max_iter=None):
        m = svm.fit(X, y, C=jnp.exp(p[0]), kernel=svm.RBF(jnp.exp(p[1])), tol=1e-6,
                    max_iter=max_iter, adjoint=adjoint)
        return jnp.mean(jnp.logaddexp(0.0, -yv * svm.decision_function(m, Xv)))

    return _ratio_row(f"svm.fit (SMO, RBF) n={n}, grad in (log C, log γ)", loss,
                      jnp.array([0.0, -2.0]),
                      unrolled_loss=lambda p: loss(p, Unrolled(), 20 * n), repeats=repeats,
                      note="jaxopt has no SVM dual solver with an intercept")


def _lasso(rng, n, d, repeats):
    import jaxopt
    X = rng.normal(size=(n, d))
    y = X[:, :5] @ rng.normal(size=5) + 0.5 * rng.normal(size=n)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def loss(a, adjoint=None, max_iter=5000):
        return jnp.sum(linear.lasso(Xj, yj, a, tol=1e-8, max_iter=max_iter, adjoint=adjoint).w ** 2)

    solver = jaxopt.ProximalGradient(
        fun=lambda w, data: 0.5 / n * jnp.sum((data[0] @ w - data[1]) ** 2),
        prox=jaxopt.prox.prox_lasso, implicit_diff=True, tol=1e-8, maxiter=5000)

    def ref_loss(a):
        return jnp.sum(solver.run(jnp.zeros(d), hyperparams_prox=a, data=(Xj, yj)).params ** 2)

    t_ref, _ = time_fn(jax.jit(jax.value_and_grad(ref_loss)), 0.1, repeats=repeats)
    return _ratio_row(f"linear.lasso n={n}, d={d}, grad in α", loss, 0.1,
                      unrolled_loss=lambda a: loss(a, Unrolled(), 2000), repeats=repeats,
                      reference=("jaxopt ProximalGradient(implicit_diff=True) vg",
                                 t_ref.median_s))


def _ridge_constrained(rng, n, d, repeats):
    import jaxopt
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    r0 = 0.5 * float(np.linalg.norm(np.linalg.lstsq(X, y, rcond=None)[0]))

    def loss(r, adjoint=None, max_iter=5000):
        return jnp.sum(linear.ridge_constrained(Xj, yj, r, tol=1e-8, max_iter=max_iter,
                                                adjoint=adjoint).w ** 3)

    solver = jaxopt.ProjectedGradient(fun=lambda w, data: jnp.sum((data[0] @ w - data[1]) ** 2),
                                      projection=jaxopt.projection.projection_l2_ball,
                                      implicit_diff=True, tol=1e-8, maxiter=5000)

    def ref_loss(r):
        return jnp.sum(solver.run(jnp.zeros(d), hyperparams_proj=r, data=(Xj, yj)).params ** 3)

    t_ref, _ = time_fn(jax.jit(jax.value_and_grad(ref_loss)), r0, repeats=repeats)
    return _ratio_row(f"linear.ridge_constrained n={n}, d={d}, grad in radius", loss, r0,
                      unrolled_loss=lambda r: loss(r, Unrolled(), 2000), repeats=repeats,
                      reference=("jaxopt ProjectedGradient(implicit_diff=True) vg",
                                 t_ref.median_s))


def _kmeans(rng, n, repeats):
    from jaxml import kmeans
    X = jnp.asarray(np.r_[rng.normal(size=(n // 2, 2)), 4 + rng.normal(size=(n // 2, 2))])
    init = X[jnp.array([0, n - 1])]

    def loss(s):
        return jnp.sum(kmeans.fit(None, X * s, 2, init=init * s).centroids ** 2)

    return _ratio_row(f"kmeans.fit n={n}, grad in a data scale", loss, 1.0, repeats=repeats)


def _gmm(rng, n, repeats):
    from jaxml import gmm
    X = jnp.asarray(np.r_[rng.normal(size=(n // 2, 2)), 4 + rng.normal(size=(n // 2, 2))])

    def loss(s):
        return jnp.sum(gmm.fit(jax.random.key(0), X * s, 2).means ** 2)

    return _ratio_row(f"gmm.fit n={n}, grad in a data scale", loss, 1.0, repeats=repeats)


def _lda(rng, n_docs, repeats):
    from jaxml import lda
    n_words, k = 40, 3      # a corpus with topics (three blocks of words) for EM to find
    beta = 0.1 / n_words + np.kron(np.eye(k), np.ones(n_words // k + 1))[:, :n_words]
    theta = rng.dirichlet(np.full(k, 0.3), size=n_docs)
    p = theta @ (beta / beta.sum(1, keepdims=True))
    counts = jnp.asarray(np.stack([rng.multinomial(40, q) for q in p]).astype(float))
    W = jnp.asarray(rng.normal(size=(k, n_words)))

    def loss(a):   # (Σ λ itself is constant in alpha: Σ_kv λ_kv = KVη + Σ counts)
        return jnp.sum(jnp.log(lda.fit(jax.random.key(0), counts, k, alpha=a).topic_word) * W)

    return _ratio_row(f"lda.fit {n_docs} docs x {n_words} words, K={k}, grad in alpha", loss,
                      0.5, repeats=repeats, note="implicit at the EM fixed point and at each "
                      "document's E-step fixed point")


def _cavi(rng, n, repeats):
    from jaxml import vi
    x = jnp.asarray(np.r_[rng.normal(-2.0, 1.0, n // 2), rng.normal(2.0, 1.0, n - n // 2)])

    def loss(v, adjoint=None, max_iter=200):
        r = vi.mixture_cavi(jax.random.key(0), x, 2, prior_var=v, tol=1e-10,
                            max_iter=max_iter, adjoint=adjoint)
        return jnp.sum(r.q.m ** 2)

    return _ratio_row(f"vi.mixture_cavi n={n}, K=2, grad in prior_var", loss, 4.0,
                      unrolled_loss=lambda v: loss(v, Unrolled(), 200), repeats=repeats)


def _rvm(rng, n, repeats):
    from jaxml import rvm
    X = rng.normal(size=(n, 5))
    y = np.where(X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)

    def loss(a, adjoint=None):
        r = rvm.fit(jax.random.key(0), X, y, alpha_init=a, max_iter=40, n_inner=20,
                    estimator="gh", tol=0.0, adjoint=adjoint)
        return jnp.sum(r.mean ** 2)

    return _ratio_row(f"rvm.fit n={n}, d=5, 40 outer x 20 Adam steps, grad in alpha_init",
                      loss, 1.0, unrolled_loss=lambda a: loss(a, Unrolled()), repeats=repeats,
                      implicit=False, note="unrolled only: the outer step (Adam on q, "
                      "pruned α growing without bound) has no smooth fixed point")


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    rng = np.random.default_rng(0)
    repeats = 3 if quick else 15
    n = 120 if quick else 600
    rows = [_svm(rng, n, repeats), _lasso(rng, 2 * n, 40, repeats),
            _ridge_constrained(rng, 2 * n, 40, repeats),
            _kmeans(rng, 50 * n, repeats), _gmm(rng, 4 * n, repeats),
            _lda(rng, n, repeats), _cavi(rng, 2 * n, repeats), _rvm(rng, n, repeats)]
    write_report(rows, out_dir, "bench_grad")
    return rows


if __name__ == "__main__":
    import sys
    from _common import format_rows
    print(format_rows(run(Path("out/bench"), quick="--quick" in sys.argv)))
