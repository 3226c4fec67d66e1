"""jaxml.svm against scikit-learn's SVC (libsvm), jax.grad and the KKT conditions.

Oracles: sklearn.svm.SVC (dual objective recomputed from ``dual_coef_``/``support_`` with
sklearn's own pairwise kernels, support set, predictions, intercept, ``coef_``),
sklearn.metrics.pairwise kernels, OneVsRestClassifier(SVC), jax.grad, and the KKT
conditions checked directly from the returned α.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.metrics.pairwise import linear_kernel, polynomial_kernel, rbf_kernel
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from jaxml import svm
from jaxml.testing import check_gradient, check_monotone

GAMMA = 0.05
KERNELS = {
    "linear": (svm.Linear(), dict(kernel="linear"), linear_kernel),
    "rbf": (svm.RBF(GAMMA), dict(kernel="rbf", gamma=GAMMA),
            lambda A, B: rbf_kernel(A, B, gamma=GAMMA)),
    "poly": (svm.Polynomial(3, GAMMA, 1.0), dict(kernel="poly", degree=3, gamma=GAMMA, coef0=1.0),
             lambda A, B: polynomial_kernel(A, B, degree=3, gamma=GAMMA, coef0=1.0)),
}
SOLVERS = {"smo": (svm.fit, 1e-7), "pgd": (svm.fit_pgd, 1e-5)}
MAX_ITER = 30_000


# ------------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def cancer():
    """Standardized breast-cancer subset (n=150, d=30), labels ±1: overlapping classes."""
    X, y = load_breast_cancer(return_X_y=True)
    idx = np.random.default_rng(0).choice(len(y), 150, replace=False)
    X = StandardScaler().fit_transform(X)[idx]
    return X, np.where(y[idx] == 1, 1, -1)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def sklearn_dual(clf, X, kfun):
    dc = clf.dual_coef_[0]
    Xs = X[clf.support_]
    return np.abs(dc).sum() - 0.5 * dc @ kfun(Xs, Xs) @ dc


def sklearn_alpha(clf, n):
    a = np.zeros(n)
    a[clf.support_] = np.abs(clf.dual_coef_[0])
    return a


@pytest.fixture(scope="module")
def fits(cancer):
    """(solver, kernel) -> (our model, sklearn SVC), C = 1."""
    X, y = cancer
    out = {}
    for kname, (kern, skw, _) in KERNELS.items():
        clf = SVC(C=1.0, tol=1e-8, **skw).fit(X, y)
        for sname, (fit, tol) in SOLVERS.items():
            out[sname, kname] = (fit(X, y, C=1.0, kernel=kern, tol=tol, max_iter=MAX_ITER), clf)
    return out


CASES = [(s, k) for s in SOLVERS for k in KERNELS]


# ---------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("kname", list(KERNELS))
def test_gram_matches_sklearn_pairwise(kname, cancer):
    kern, _, kfun = KERNELS[kname]
    X = cancer[0]
    np.testing.assert_allclose(svm.gram(kern, X[:20], X[30:45]), kfun(X[:20], X[30:45]),
                               rtol=1e-10, atol=1e-12)
    assert jnp.allclose(kern(X[0], X[1]), kfun(X[:1], X[1:2])[0, 0], rtol=1e-10)
    G32 = svm.gram(kern, X[:10].astype(np.float32))
    assert G32.dtype == jnp.float32


def test_kernel_parameters_are_pytree_leaves(cancer):
    X = cancer[0][:10]
    gammas = jnp.array([0.01, 0.1, 1.0])
    batched = jax.vmap(lambda k: svm.gram(k, X))(svm.RBF(gammas))
    for g, G in zip(gammas, batched):
        np.testing.assert_allclose(G, rbf_kernel(X, X, gamma=float(g)), rtol=1e-10)
    grad = jax.grad(lambda g: svm.gram(svm.RBF(g), X).sum())(0.3)
    sq = ((X[:, None] - X[None]) ** 2).sum(-1)
    np.testing.assert_allclose(grad, -(sq * np.exp(-0.3 * sq)).sum(), rtol=1e-8)
    with pytest.raises(ValueError, match="gamma"):
        svm.RBF(-1.0)
    with pytest.raises(ValueError, match="X and Z"):
        svm.gram(svm.Linear(), X, X[:, :3])


def test_user_kernel_subclass_works_in_fit(cancer):
    """A user subclass of the abstract jaxml.kernels.Kernel is a kernel like the built-ins."""
    from jaxml.kernels import Kernel

    class Laplacian(Kernel):
        gamma: float = 0.05

        def gram(self, X, Z):
            return jnp.exp(-self.gamma * jnp.abs(X[:, None, :] - Z[None, :, :]).sum(-1))

    X, y = cancer
    X, y = X[:60], y[:60]
    ours = svm.fit(X, y, C=1.0, kernel=Laplacian(0.05), tol=1e-7, max_iter=MAX_ITER)
    G = np.exp(-0.05 * np.abs(X[:, None] - X[None]).sum(-1))
    clf = SVC(C=1.0, kernel="precomputed", tol=1e-8).fit(G, y)
    assert bool(ours.converged)
    dc, sv = clf.dual_coef_[0], clf.support_
    d_ref = np.abs(dc).sum() - 0.5 * dc @ G[np.ix_(sv, sv)] @ dc
    np.testing.assert_allclose(float(ours.dual_objective), d_ref, rtol=1e-4)
    with pytest.raises(TypeError):
        Kernel()


# ---------------------------------------------------------- same answer as scikit-learn


@pytest.mark.parametrize("solver,kname", CASES)
def test_matches_sklearn(solver, kname, fits, cancer):
    X, y = cancer
    model, clf = fits[solver, kname]
    kfun = KERNELS[kname][2]
    assert bool(model.converged) and not bool(model.infeasible)
    # dual objective, recomputed independently from sklearn's dual coefficients
    d_ref = sklearn_dual(clf, X, kfun)
    np.testing.assert_allclose(float(model.dual_objective), d_ref, rtol=1e-4)
    np.testing.assert_allclose(svm.dual_objective(model.alpha, kfun(X, X), y), d_ref, rtol=1e-4)
    # same support set up to borderline alpha ~ 0
    a_ref = sklearn_alpha(clf, len(y))
    ours = np.asarray(model.support)
    theirs = a_ref > 0
    differ = ours != theirs
    assert np.all(np.maximum(np.asarray(model.alpha), a_ref)[differ] < 1e-3), differ.sum()
    np.testing.assert_allclose(model.alpha, a_ref, atol=2e-3)
    # same intercept and predictions (up to points on the decision boundary)
    np.testing.assert_allclose(float(model.b), clf.intercept_[0], atol=2e-3)
    f_ref = clf.decision_function(X)
    np.testing.assert_allclose(svm.decision_function(model, X), f_ref, atol=5e-3)
    pred = np.asarray(svm.predict(model, X))
    assert np.all((pred == clf.predict(X)) | (np.abs(f_ref) < 1e-3))


@pytest.mark.parametrize("solver,kname", CASES)
def test_kkt_conditions_at_solution(solver, kname, fits, cancer):
    X, y = cancer
    model, _ = fits[solver, kname]
    tol = SOLVERS[solver][1]
    a = np.asarray(model.alpha)
    C = 1.0
    assert np.all(a >= 0) and np.all(a <= C)
    assert abs(a @ y) < 1e-8
    margin = y * np.asarray(svm.decision_function(model, X))
    at0, atC = a == 0, a == C
    free = ~at0 & ~atC
    assert free.any()
    assert np.all(margin[at0] >= 1 - tol - 1e-9)
    assert np.all(np.abs(margin[free] - 1) <= tol + 1e-9)
    assert np.all(margin[atC] <= 1 + tol + 1e-9)
    K = KERNELS[kname][2](X, X)
    viol = float(svm.kkt_violation(model.alpha, K, y, C))
    assert viol <= tol and abs(viol - float(model.kkt_violation)) < 1e-9
    np.testing.assert_allclose(svm.intercept(model.alpha, K, y, C), model.b, atol=1e-12)


def test_primal_weights_and_margin_match_sklearn(fits):
    model, clf = fits["smo", "linear"]
    w = np.asarray(svm.primal_weights(model))
    np.testing.assert_allclose(w, clf.coef_[0], atol=2e-4 * np.abs(w).max())
    np.testing.assert_allclose(svm.margin_width(model), 2 / np.linalg.norm(clf.coef_[0]), rtol=1e-4)
    with pytest.raises(TypeError, match="Linear"):
        svm.primal_weights(fits["smo", "rbf"][0])


# ------------------------------------------------------------------- steps, gradient


def test_linear_shrinking_matches_sklearn():
    """n = 300 ≥ 4·64: the linear fit shrinks to active sets of 75 points (smo module
    docstring); same dual optimum and decision function as SVC."""
    X, y = load_breast_cancer(return_X_y=True)
    X, y = StandardScaler().fit_transform(X)[:300], np.where(y[:300] == 1, 1, -1)
    clf = SVC(C=1.0, kernel="linear", tol=1e-8).fit(X, y)
    model = svm.fit(X, y, C=1.0, kernel=svm.Linear(), tol=1e-6)
    assert bool(model.converged) and float(model.kkt_violation) <= 1e-6
    ref = sklearn_dual(clf, X, linear_kernel)
    np.testing.assert_allclose(float(model.dual_objective), ref, rtol=1e-7)
    np.testing.assert_allclose(np.asarray(svm.decision_function(model, X)),
                               clf.decision_function(X), atol=1e-4)
    check_monotone(model.trace[:int(model.n_iter)], rtol=1e-12)


def test_dual_gradient_matches_jax_grad(cancer):
    X, y = cancer
    K = rbf_kernel(X, X, gamma=GAMMA)
    alpha = jnp.asarray(np.random.default_rng(1).uniform(0, 1, len(y)))
    # against jax.grad (rtol 1e-12) and central differences of the objective
    check_gradient(lambda a: svm.dual_objective(a, K, y), lambda a: svm.dual_gradient(a, K, y),
                   alpha, rtol=1e-12)


@pytest.mark.parametrize("which", ["smo", "pgd"])
def test_dual_objective_never_decreases(which, cancer):
    X, y = cancer
    K = rbf_kernel(X, X, gamma=GAMMA)
    prob = svm.dual_problem(K, y, 1.0)
    init, step = (svm.smo_init, svm.smo_step) if which == "smo" else (svm.pgd_init, svm.pgd_step)
    step = jax.jit(step)
    state = init(prob)
    values = [float(svm.dual_objective(state.alpha, K, y))]
    for _ in range(150):
        state, info = step(state, prob)
        err, val = info.error, info.value
        values.append(float(svm.dual_objective(state.alpha, K, y)))
        np.testing.assert_allclose(val, values[-1], rtol=1e-10, atol=1e-12)
    check_monotone(np.asarray(values), rtol=1e-10)
    assert values[-1] > values[0]
    a = np.asarray(state.alpha)
    assert np.all(a >= 0) and np.all(a <= 1.0) and abs(a @ y) < 1e-9
    # the incrementally updated gradient equals the exact one
    np.testing.assert_allclose(state.grad, svm.dual_gradient(state.alpha, K, y), atol=1e-9)
    np.testing.assert_allclose(err, svm.kkt_violation(state.alpha, K, y, 1.0), atol=1e-9)


# --------------------------------------------------------------- transformations


def test_jit_and_vmap_over_C(cancer):
    X, y = cancer
    Cs = jnp.array([0.1, 1.0, 10.0])
    fit_c = lambda c: svm.fit(X, y, C=c, tol=1e-7, max_iter=MAX_ITER)  # noqa: E731
    batched = jax.jit(jax.vmap(fit_c))(Cs)
    assert batched.alpha.shape == (3, len(y)) and bool(jnp.all(batched.converged))
    for k, c in enumerate(Cs):
        clf = SVC(kernel="linear", C=float(c), tol=1e-8).fit(X, y)
        np.testing.assert_allclose(batched.dual_objective[k], sklearn_dual(clf, X, linear_kernel),
                                   rtol=1e-4)
        assert float(batched.alpha[k].max()) <= float(c)
    # under vmap the solves share one loop (a custom batching rule): same steps, same result
    single = jax.jit(fit_c)(Cs[1])
    np.testing.assert_allclose(single.alpha, batched.alpha[1], atol=1e-10)
    assert int(single.n_iter) == int(batched.n_iter[1])
    np.testing.assert_allclose(single.trace, batched.trace[1], rtol=1e-12)
    for k in range(3):
        t = np.asarray(batched.trace[k])
        assert np.isnan(t[int(batched.n_iter[k]):]).all() and not np.isnan(t[:int(batched.n_iter[k])]).any()


def test_vmap_over_gamma(cancer):
    X, y = cancer
    gammas = jnp.array([0.01, 0.05, 0.3])
    batched = jax.vmap(lambda g: svm.fit(X, y, kernel=svm.RBF(g), tol=1e-7, max_iter=MAX_ITER))(gammas)
    for k, g in enumerate(gammas):
        clf = SVC(kernel="rbf", gamma=float(g), tol=1e-8).fit(X, y)
        ref = sklearn_dual(clf, X, lambda A, B: rbf_kernel(A, B, gamma=float(g)))
        np.testing.assert_allclose(batched.dual_objective[k], ref, rtol=1e-4)


def test_float32_stays_float32(cancer, fits):
    X, y = cancer
    model64, clf = fits["smo", "rbf"]
    for fit in (svm.fit, svm.fit_pgd):
        m = fit(X.astype(np.float32), y, kernel=svm.RBF(GAMMA), tol=1e-3, max_iter=MAX_ITER)
        assert m.alpha.dtype == m.b.dtype == m.dual_objective.dtype == jnp.float32
        f = svm.decision_function(m, X.astype(np.float32))
        assert f.dtype == jnp.float32
        assert bool(m.converged)
        np.testing.assert_allclose(m.dual_objective, model64.dual_objective, rtol=1e-3)
        f_ref = clf.decision_function(X)
        assert np.all((np.asarray(svm.predict(m, X.astype(np.float32))) == clf.predict(X))
                      | (np.abs(f_ref) < 2e-2))


# ------------------------------------------------------------------ hard margin


@pytest.fixture(scope="module")
def setosa_versicolor(iris):
    """Sepal length/width of setosa vs versicolor: linearly separable."""
    X, y = iris
    m = y < 2
    return X[m][:, :2], np.where(y[m] == 1, 1, -1)


@pytest.mark.parametrize("solver", ["smo", "pgd"])
def test_hard_margin_separable_matches_sklearn(solver, setosa_versicolor):
    X, y = setosa_versicolor
    clf = SVC(kernel="linear", C=1e10, tol=1e-10).fit(X, y)
    fit, tol = (svm.fit, 1e-8) if solver == "smo" else (svm.fit_pgd, 1e-4)
    m = fit(X, y, C=jnp.inf, tol=tol, max_iter=200_000)
    assert bool(m.converged) and not bool(m.infeasible)
    np.testing.assert_allclose(svm.margin_width(m), 2 / np.linalg.norm(clf.coef_[0]), rtol=1e-4)
    margin = y * np.asarray(svm.decision_function(m, X))
    assert np.all(margin >= 1 - 10 * tol)
    # w is unique; α is not when more points than needed sit on the margins (here 4 in 2-D):
    # sklearn's support vectors are ours, and any extra one of ours lies on a margin.
    np.testing.assert_allclose(svm.primal_weights(m), clf.coef_[0], rtol=1e-3)
    ours = set(np.flatnonzero(m.support))
    assert set(clf.support_) <= ours
    assert all(abs(margin[i] - 1) < 1e-3 for i in ours - set(clf.support_))


@pytest.mark.parametrize("solver", ["smo", "pgd"])
@pytest.mark.parametrize("kname", ["linear", "rbf"])
def test_hard_margin_not_separable_is_reported(solver, kname, iris):
    """Versicolor vs virginica on the sepal features: overlapping, with identical points in
    both classes, so no kernel separates them; the hard-margin dual is unbounded."""
    X, y = iris
    m = y > 0
    X, y = X[m][:, :2], np.where(y[m] == 1, 1, -1)
    assert any((X[y == 1] == x).all(1).any() for x in X[y == -1])   # a point in both classes
    kern = svm.Linear() if kname == "linear" else svm.RBF(1.0)
    fit = svm.fit if solver == "smo" else svm.fit_pgd
    model = fit(X, y, C=jnp.inf, kernel=kern, tol=1e-3, max_iter=MAX_ITER)
    assert bool(model.infeasible) and not bool(model.converged)
    assert int(model.n_iter) < MAX_ITER
    # the same data with a soft margin is an ordinary, feasible problem
    soft = fit(X, y, C=1.0, kernel=kern, tol=1e-3, max_iter=MAX_ITER)
    assert bool(soft.converged) and not bool(soft.infeasible)


# ------------------------------------------------------------------- multiclass


def test_one_vs_rest_matches_sklearn(iris):
    X, labels = iris
    X = StandardScaler().fit_transform(X)
    model = svm.fit_one_vs_rest(X, labels, 3, C=1.0, kernel=svm.RBF(0.5), tol=1e-7,
                                max_iter=MAX_ITER)
    assert model.alpha.shape == (3, len(labels)) and bool(jnp.all(model.converged))
    ovr = OneVsRestClassifier(SVC(kernel="rbf", gamma=0.5, C=1.0, tol=1e-8)).fit(X, labels)
    kfun = lambda A, B: rbf_kernel(A, B, gamma=0.5)  # noqa: E731
    for c, clf in enumerate(ovr.estimators_):
        # sklearn's binary estimator has classes [0, 1]; label 1 = "is class c"
        np.testing.assert_allclose(model.dual_objective[c], sklearn_dual(clf, X, kfun), rtol=1e-4)
    scores = np.asarray(svm.decision_function_one_vs_rest(model, X))
    np.testing.assert_allclose(scores, ovr.decision_function(X), atol=5e-3)
    pred = np.asarray(svm.predict_one_vs_rest(model, X))
    assert (pred == ovr.predict(X)).mean() >= 0.99
    # the projected-gradient solver, in float32, solves the same three duals
    pgd = svm.fit_one_vs_rest(X.astype(np.float32), labels, 3, C=1.0, kernel=svm.RBF(0.5),
                              tol=1e-3, max_iter=MAX_ITER, solver="pgd")
    assert pgd.alpha.dtype == jnp.float32 and bool(jnp.all(pgd.converged))
    np.testing.assert_allclose(pgd.dual_objective, model.dual_objective, rtol=1e-3)
    with pytest.raises(ValueError, match="labels"):
        svm.fit_one_vs_rest(X, labels + 1, 3)
    with pytest.raises(ValueError, match="missing"):
        svm.fit_one_vs_rest(X, labels, 4)


# --------------------------------------------------------------------- bad input


def test_bad_input(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match="y must take values"):
        svm.fit(X, (y > 0).astype(int))           # 0/1 labels
    with pytest.raises(ValueError, match="both labels"):
        svm.fit(X, np.ones(len(y)))
    with pytest.raises(ValueError, match="same number of rows"):
        svm.fit(X, y[:-1])
    with pytest.raises(ValueError, match="C must be positive"):
        svm.fit(X, y, C=-1.0)
    with pytest.raises(ValueError, match="X contains NaN"):
        svm.fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(TypeError, match="kernel"):
        svm.fit(X, y, kernel="rbf")
    with pytest.raises(ValueError, match="y must take values"):
        svm.fit_pgd(X, 2 * y)


def test_core_batched_solver_equals_per_problem_solves(cancer):
    """_core.batched: vmap of batched_solver (one shared loop) equals each solve alone."""
    from jaxml._core.batched import batched_solver

    X, y = cancer
    K = linear_kernel(X, X)
    Cs = jnp.array([0.1, 1.0, 10.0])
    solve = batched_solver(svm.smo_init, svm.smo_step, 5000)
    batched = jax.jit(jax.vmap(lambda c: solve(svm.dual_problem(K, y, c), 1e-6)))(Cs)
    for k, c in enumerate(Cs):
        one = jax.jit(lambda c: solve(svm.dual_problem(K, y, c), 1e-6))(c)
        assert int(one.n_iter) == int(batched.n_iter[k])
        assert bool(one.converged) == bool(batched.converged[k])
        np.testing.assert_allclose(one.state.alpha, batched.state.alpha[k], atol=1e-12)
        np.testing.assert_allclose(one.trace, batched.trace[k], rtol=1e-12)


# ----------------------------------------------------------------------------- issue 13
def test_rbf_fit_counts_pair_updates_in_groups_of_four(cancer):
    X, y = cancer
    m = svm.fit(X, y, C=1.0, kernel=svm.RBF(0.05), tol=1e-3, max_iter=10)
    # ⌈10/4⌉ = 3 loop steps of 4 pair updates, one trace entry each; not converged
    assert int(m.n_iter) == 12 and m.trace.shape == (3,) and not bool(m.converged)
    check_monotone(m.trace, increasing=True)


def test_traced_bad_values_raise_at_run_time():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = np.where(X[:, 0] > 0, 1, -1)
    cases = [
        (lambda C: svm.fit(X, y, C=C).alpha, -1.0, "C"),
        (lambda C: svm.fit_pgd(X, y, C=C).alpha, -1.0, "C"),
        (lambda t: svm.fit(X, y, tol=t).alpha, -1.0, "tol"),
        (lambda g: svm.fit(X, y, kernel=svm.RBF(g)).alpha, -1.0, "gamma"),
        (lambda yy: svm.fit(X, yy).alpha, jnp.where(jnp.arange(20) < 10, 1, 2), "y"),
        (lambda lab: svm.fit_one_vs_rest(X, lab, 2).alpha, jnp.arange(20) % 3, "labels"),
    ]
    for f, v, name in cases:
        with pytest.raises(Exception, match=f"{name} must"):
            jax.block_until_ready(jax.jit(f)(v))
    with pytest.raises(Exception, match="C must"):
        jax.block_until_ready(jax.vmap(lambda C: svm.fit(X, y, C=C).alpha)(jnp.array([1.0, -1.0])))
    with pytest.raises(TypeError, match="kernel"):
        svm.fit(X, y, kernel="rbf")
    with pytest.raises(TypeError, match="kernel"):
        svm.gram("rbf", X)
    for fit in (svm.fit, svm.fit_pgd):
        assert fit(X, y, max_iter=np.int64(20)).trace.shape == (20,)
