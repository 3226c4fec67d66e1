"""Testing your own math with ``jaxml.testing``: a hand-derived loss gradient and a home-made
ELBO gradient estimator, checked the way jaxml's own suite checks its chapters.

1. **A loss and its gradient.** L2-regularized logistic regression on the (standardized)
   breast-cancer data, with the gradient derived by hand,

       L(w, b) = (1/n) Σᵢ [log(1 + e^{zᵢ}) − yᵢzᵢ] + (λ/2)‖w‖²,   zᵢ = xᵢᵀw + b,
       ∇_w L = Xᵀ(σ(z) − y)/n + λw,   ∂_b L = mean(σ(z) − y).

   ``check_gradient`` compares it with ``jax.grad`` and with central finite differences in
   float64 and float32; a copy with the 1/n dropped from ∂_b is caught, named by its pytree
   path. The user's own Newton solver is then checked: its loss trace never increases
   (``check_monotone``), its output is a fixed point of its step (``check_fixed_point``)
   and satisfies the optimality conditions (``check_kkt``).
2. **An ELBO gradient estimator.** Bayesian linear regression on the diabetes data (a
   conjugate model, so the ELBO of a mean-field Gaussian q = N(m, diag(e^{2ρ})) and its
   gradient are known in closed form). A reparameterization estimator and a score-function
   estimator of ∇ELBO are checked for bias against the exact gradient (``check_unbiased``:
   a z-test with Bonferroni over the coordinates, false-alarm rate 1e-3), the first is shown
   to have lower variance (``check_variance_reduction``), and a version that forgets the
   entropy's gradient is flagged as biased.
3. **Your own jaxml estimator.** The same test for a subclass of
   :class:`jaxml.vi.ElboEstimator` (antithetic pairs ε, −ε with the closed-form entropy),
   called through ``vi.elbo_and_grad`` as ``vi.fit_sgvi(estimator=...)`` would: its ELBO and
   gradient are unbiased, and its variance is below that of jaxml's own
   ``vi.AnalyticEntropy`` at the same number of draws.

    python examples/property_tests.py --out out
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import SummaryRow, main, savefig
from sklearn.datasets import load_breast_cancer, load_diabetes

from jaxml import testing as jt
from jaxml import vi

LAM = 1e-2                 # ridge penalty of the logistic loss
NOISE, PRIOR = 0.5, 1.0    # Bayesian linear regression: y ~ N(Xw, NOISE), w ~ N(0, I/PRIOR)


# ----------------------------------------------------------------- 1. a loss and its gradient

def _standardize(X):
    X = np.asarray(X, np.float64)
    return (X - X.mean(0)) / X.std(0)


def logistic_loss(params, X, y):
    z = X @ params["w"] + params["b"]
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.5 * LAM * jnp.sum(params["w"] ** 2)


def logistic_grad(params, X, y):
    """The hand-derived gradient."""
    r = jax.nn.sigmoid(X @ params["w"] + params["b"]) - y
    return {"w": X.T @ r / X.shape[0] + LAM * params["w"], "b": jnp.mean(r)}


def logistic_grad_buggy(params, X, y):
    """The same with the 1/n forgotten in ∂_b."""
    g = logistic_grad(params, X, y)
    return {"w": g["w"], "b": jnp.sum(jax.nn.sigmoid(X @ params["w"] + params["b"]) - y)}


def newton_step(params, X, y):
    """The user's solver: one Newton step on (w, b), returning (params, loss before)."""
    n, d = X.shape
    Xb = jnp.concatenate([X, jnp.ones((n, 1), X.dtype)], axis=1)
    theta = jnp.append(params["w"], params["b"])
    p = jax.nn.sigmoid(Xb @ theta)
    g = logistic_grad(params, X, y)
    grad = jnp.append(g["w"], g["b"])
    H = (Xb.T * (p * (1 - p))) @ Xb / n + LAM * jnp.diag(jnp.append(jnp.ones(d), 0.0))
    theta = theta - jnp.linalg.solve(H, grad)
    return {"w": theta[:d], "b": theta[d]}, logistic_loss(params, X, y)


def _loss_story(quick: bool):
    X, y = load_breast_cancer(return_X_y=True)
    X = _standardize(X[:, :8] if quick else X)
    X, y = jnp.asarray(X), jnp.asarray(y, jnp.float64)
    d = X.shape[1]
    key = jax.random.key(0)
    params = {"w": 0.1 * jax.random.normal(key, (d,), jnp.float64), "b": jnp.array(0.2)}
    f = lambda p: logistic_loss(p, X, y)  # noqa: E731

    rep64 = jt.check_gradient(f, lambda p: logistic_grad(p, X, y), params)
    p32 = jax.tree.map(lambda a: a.astype(jnp.float32), params)
    X32, y32 = X.astype(jnp.float32), y.astype(jnp.float32)
    rep32 = jt.check_gradient(lambda p: logistic_loss(p, X32, y32),
                              lambda p: logistic_grad(p, X32, y32), p32)
    try:
        jt.check_gradient(f, lambda p: logistic_grad_buggy(p, X, y), params)
        caught = "NOT caught"
    except AssertionError as e:
        caught = str(e).splitlines()[0].split(" at ")[-1].rstrip(":")

    # finite-difference error against the step size along a random direction v at the start:
    # truncation (∝ h²) meets rounding (∝ ε/h) near the default step ε^⅓
    # (compiled once, the step h a traced argument: not one eager dispatch per operation)
    v = jax.tree.map(lambda a: jax.random.normal(jax.random.key(2), a.shape, a.dtype), params)
    g = jax.jit(logistic_grad)(params, X, y)
    exact_dd = float(jnp.sum(g["w"] * v["w"]) + g["b"] * v["b"])
    steps = np.logspace(-12, -1, 23)
    moved = lambda h: jax.tree.map(lambda a, b: a + h * b, params, v)  # noqa: E731
    difference = jax.jit(lambda h: f(moved(h)) - f(moved(-h)))
    fd_err = [abs(float(difference(h)) / (2 * h) - exact_dd) for h in steps]

    # the user's Newton solver: a trace that never increases, a fixed point, KKT
    step = jax.jit(newton_step)
    trace = []
    for _ in range(12):
        params, value = step(params, X, y)
        trace.append(float(value))
    mono = jt.check_monotone(np.asarray(trace), increasing=False)
    fp = jt.check_fixed_point(lambda p: step(p, X, y), params, rtol=1e-9)
    kkt = jt.check_kkt(f, params, tol=1e-10)

    rows = [
        SummaryRow("hand-written logistic-loss gradient vs jax.grad and finite differences "
                   f"(breast cancer, d = {d})",
                   f"float64: max |Δ| {rep64.autodiff_error:.1e} (autodiff), "
                   f"{rep64.fd_error:.1e} (finite diff.); float32: {rep32.fd_error:.1e}",
                   f"buggy ∂_b (1/n dropped) flagged at {caught}", "property_tests.png"),
        SummaryRow("user's Newton solver on the same loss: trace, fixed point, KKT",
                   f"{int(mono.n_steps)} steps monotone, fixed-point residual "
                   f"{fp.residual:.1e}, stationarity {float(kkt.stationarity):.1e}",
                   f"loss {trace[-1]:.6f}", "property_tests.png"),
    ]
    return rows, (steps, np.asarray(fd_err), np.asarray(trace))


# ----------------------------------------------------------------- 2. an ELBO estimator

class Antithetic(vi.ElboEstimator):
    """A user's estimator in jaxml's own terms: E_q[log p] from S/2 antithetic pairs
    z = μ ± σ⊙ε (the odd part of log p cancels in each pair) plus the closed-form entropy;
    ``vi.elbo_and_grad`` / ``vi.fit_sgvi`` take it like any built-in estimator."""

    min_samples = 2

    def surrogate(self, key, log_density, q, n_samples):
        eps = jax.random.normal(key, (n_samples // 2,) + q.loc.shape, q.loc.dtype)
        eps = jnp.concatenate([eps, -eps])
        z = q.loc + jnp.exp(q.log_scale) * eps
        return jnp.mean(jax.vmap(log_density)(z)) + q.entropy()


def _elbo_story(quick: bool):
    X, y = load_diabetes(return_X_y=True)
    X, y = _standardize(X), (y - y.mean()) / y.std()
    X, y = jnp.asarray(X), jnp.asarray(y)
    d = X.shape[1]

    def log_joint(w):
        r = y - X @ w
        return -0.5 * jnp.sum(r * r) / NOISE - 0.5 * PRIOR * jnp.sum(w * w)

    def exact_elbo(q):
        """E_q[log p(y, w)] + H[q] for q = N(m, diag(e^{2ρ})), up to a constant."""
        m, v = q["m"], jnp.exp(2 * q["rho"])
        r = y - X @ m
        e = -0.5 * (jnp.sum(r * r) + jnp.sum(jnp.sum(X * X, 0) * v)) / NOISE
        return e - 0.5 * PRIOR * (jnp.sum(m * m) + jnp.sum(v)) + jnp.sum(q["rho"])

    # q near the mean-field optimum (m = posterior mean, variances 1/Aᵢᵢ), moved off it a little
    A = X.T @ X / NOISE + PRIOR * jnp.eye(d)
    post_mean = jnp.linalg.solve(A, X.T @ y / NOISE)
    q = {"m": post_mean + 0.05, "rho": -0.5 * jnp.log(jnp.diag(A)) + 0.2}
    exact_value, exact = jax.jit(jax.value_and_grad(exact_elbo))(q)
    S = 4

    def reparam(key):
        """∇ of (1/S) Σ log p(m + e^ρ ε) + Σρ (the entropy, in closed form)."""
        eps = jax.random.normal(key, (S, d))
        surrogate = lambda q: jnp.mean(jax.vmap(  # noqa: E731
            lambda e: log_joint(q["m"] + jnp.exp(q["rho"]) * e))(eps)) + jnp.sum(q["rho"])
        return jax.grad(surrogate)(q)

    def score(key):
        """Score function: E[(log p(w) − b) ∇ log q(w)] with a leave-one-out baseline b."""
        eps = jax.random.normal(key, (S, d))
        w = q["m"] + jnp.exp(q["rho"]) * eps
        f = jax.vmap(log_joint)(w)
        f = f - (jnp.sum(f) - f) / (S - 1)
        dm = eps / jnp.exp(q["rho"])                  # ∇_m log q(w)
        drho = eps ** 2 - 1.0                         # ∇_ρ log q(w)
        return {"m": jnp.mean(f[:, None] * dm, 0), "rho": jnp.mean(f[:, None] * drho, 0) + 1.0}

    def reparam_no_entropy(key):
        g = reparam(key)
        return {"m": g["m"], "rho": g["rho"] - 1.0}

    n = 300 if quick else 2000
    key = jax.random.key(1)
    r_rep = jt.check_unbiased(key, reparam, exact, n)
    r_score = jt.check_unbiased(key, score, exact, 20 * n)
    var = jt.check_variance_reduction(key, reparam, score, n)
    try:
        jt.check_unbiased(key, reparam_no_entropy, exact, n)
        caught = "NOT caught"
    except AssertionError as e:
        caught = str(e).splitlines()[0].split(" at ")[-1].rstrip(":")
    # 3. the same checks for an estimator written as a jaxml.vi.ElboEstimator subclass
    qmf = vi.MeanFieldGaussian(q["m"], q["rho"])
    exact_mf = (exact_value + 0.5 * d * jnp.log(2 * jnp.pi * jnp.e),   # + H's constant
                vi.MeanFieldGaussian(exact["m"], exact["rho"]))

    def as_estimate(estimator):
        def one(key):
            out = vi.elbo_and_grad(key, log_joint, qmf, estimator=estimator, n_samples=S)
            return out.elbo, out.grad
        return one

    anti, plain = as_estimate(Antithetic()), as_estimate(vi.AnalyticEntropy())
    r_anti = jt.check_unbiased(key, anti, exact_mf, n)
    var_anti = jt.check_variance_reduction(key, anti, plain, n)
    rows = [
        SummaryRow(f"home-made ELBO gradient estimators, diabetes (d = {d}, S = {S}): unbiased",
                   f"max |z| reparam {r_rep.max_abs_z:.2f}, score+LOO "
                   f"{r_score.max_abs_z:.2f} (threshold {r_rep.threshold:.2f})",
                   f"exact ∇ELBO (closed form); forgotten entropy flagged at {caught}",
                   "property_tests.png"),
        SummaryRow("reparameterization vs score function: total variance of ∇ELBO",
                   f"ratio {var.ratio:.2e} (99.9% upper bound {var.ratio_upper:.2e})",
                   f"Var reparam {var.variance_a:.3g}, score {var.variance_b:.3g}",
                   "property_tests.png"),
        SummaryRow("your own vi.ElboEstimator (antithetic pairs) via vi.elbo_and_grad",
                   f"ELBO and gradient unbiased: max |z| {r_anti.max_abs_z:.2f} (threshold "
                   f"{r_anti.threshold:.2f}); variance ratio to vi.AnalyticEntropy "
                   f"{var_anti.ratio:.2e} (upper bound {var_anti.ratio_upper:.2e})",
                   "exact ELBO and ∇ELBO (closed form)"),
    ]
    # the z-scores check_unbiased computes, per coordinate, for the picture
    z = {}
    for name, est in [("reparameterization", reparam), ("score + LOO", score),
                      ("no entropy gradient", reparam_no_entropy)]:
        g = jt.draw(key, est, n)
        flat = np.concatenate([np.asarray(g[k]) for k in ("m", "rho")], axis=1)
        ex = np.concatenate([np.asarray(exact[k]) for k in ("m", "rho")])
        z[name] = (flat.mean(0) - ex) / (flat.std(0, ddof=1) / np.sqrt(n))
    return rows, (z, r_rep.threshold)


def run(out_dir: Path, quick: bool = False) -> list[SummaryRow]:
    rows_a, (steps, fd_err, trace) = _loss_story(quick)
    rows_b, (z, threshold) = _elbo_story(quick)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].loglog(steps, fd_err, "o-", ms=3)
    eps = np.finfo(np.float64).eps
    axes[0].axvline(eps ** (1 / 3), color="k", ls=":", label="default step ε^⅓")
    axes[0].set(xlabel="step h", ylabel="|finite difference − ∇L·v|",
                title="central differences: truncation h² vs rounding ε/h")
    axes[0].legend()
    axes[1].semilogy(np.asarray(trace) - trace.min() + 1e-17, "o-")
    axes[1].set(xlabel="Newton step", ylabel="L − min L",
                title="the user's solver: a monotone trace")
    width = 0.27
    for i, (name, zs) in enumerate(z.items()):
        axes[2].bar(np.arange(zs.size) + (i - 1) * width, zs, width, label=name)
    for t in (threshold, -threshold):
        axes[2].axhline(t, color="k", ls=":")
    d = next(iter(z.values())).size // 2
    axes[2].set(xticks=np.arange(2 * d), xlabel="coordinate (m₀…, then ρ₀…)",
                ylabel="z = (mean − exact) / standard error",
                title="ELBO gradient estimators: bias z-scores\n(dotted: Bonferroni threshold)")
    axes[2].set_xticklabels([f"m{j}" for j in range(d)] + [f"ρ{j}" for j in range(d)],
                            fontsize=7)
    axes[2].legend(fontsize=8)
    savefig(fig, out_dir, "property_tests.png")
    return rows_a + rows_b


if __name__ == "__main__":
    main(run, __doc__)
