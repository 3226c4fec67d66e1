"""svm.fit_linear_dcd (dual coordinate descent + method of multipliers for yᵀα = 0) against
scikit-learn's SVC(kernel="linear") on breast cancer (standardized): the same dual optimum,
intercept and decision function; stepping by hand; the contract fields; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from jaxml import svm
from jaxml.svm import dcd

X, Y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
Y = np.where(Y > 0, 1, -1)
C = 0.1


def _dual(alpha):
    w = (alpha * Y) @ X
    return alpha.sum() - 0.5 * w @ w


@pytest.fixture(scope="module")
def fitted():
    return svm.fit_linear_dcd(X, Y, C=C, tol=1e-8, max_iter=3000)


def test_same_dual_optimum_and_decision_function_as_svc(fitted):
    ref = SVC(kernel="linear", C=C, tol=1e-8).fit(X, Y)
    alpha_ref = np.zeros(len(Y))
    alpha_ref[ref.support_] = np.abs(ref.dual_coef_[0])
    assert fitted.converged and not fitted.infeasible
    np.testing.assert_allclose(fitted.dual_objective, _dual(alpha_ref), rtol=1e-6)
    np.testing.assert_allclose(fitted.dual_objective, _dual(np.asarray(fitted.alpha)), rtol=1e-12)
    assert abs(float(jnp.dot(fitted.alpha, fitted.y))) < 1e-6           # yᵀα = 0
    assert float(fitted.alpha.min()) >= 0 and float(fitted.alpha.max()) <= C
    np.testing.assert_allclose(fitted.b, ref.intercept_[0], atol=1e-5)
    np.testing.assert_allclose(svm.decision_function(fitted, X), ref.decision_function(X),
                               atol=1e-4)
    np.testing.assert_array_equal(svm.predict(fitted, X), ref.predict(X))
    np.testing.assert_allclose(svm.primal_weights(fitted), ref.coef_[0], atol=1e-4)


def test_same_optimum_as_smo_and_trace(fitted):
    smo = svm.fit(X, Y, C=C, kernel=svm.Linear(), tol=1e-8)
    np.testing.assert_allclose(fitted.dual_objective, smo.dual_objective, rtol=1e-9)
    n = int(fitted.n_iter)
    trace = np.asarray(fitted.trace)
    assert trace.shape == (3000,) and np.all(np.isfinite(trace[:n])) and np.all(np.isnan(trace[n:]))
    np.testing.assert_allclose(trace[n - 1], fitted.dual_objective, rtol=1e-9)


def test_step_by_hand_matches_the_fit():
    Xj, yj = jnp.asarray(X[:120]), jnp.asarray(Y[:120], float)
    model = svm.fit_linear_dcd(Xj, yj, C=C, tol=1e-12, max_iter=5)
    problem = dcd.linear_dual_problem(Xj, yj, C)
    state = svm.dcd_init(problem)
    step = jax.jit(svm.dcd_step)
    for _ in range(5):
        state, info = step(state, problem)
    np.testing.assert_allclose(state.alpha, model.alpha, atol=1e-14)
    np.testing.assert_allclose(info.value, model.trace[4], rtol=1e-13)
    np.testing.assert_allclose(state.w, (state.alpha * yj) @ Xj, atol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="C must"):
        svm.fit_linear_dcd(X, Y, C=np.inf)
    with pytest.raises(ValueError, match="C must"):
        svm.fit_linear_dcd(X, Y, C=-1.0)
    with pytest.raises(ValueError, match="y must"):
        svm.fit_linear_dcd(X, np.ones(len(Y)))
