"""The README's quick start runs as written, and its numbers are the ones it claims."""

import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.svm import SVC

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs_and_matches_sklearn():
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    X, y = np.asarray(ns["X"]), np.asarray(ns["y"])
    ref = Ridge(alpha=1.0, fit_intercept=False).fit(X, y).coef_
    np.testing.assert_allclose(ns["w"], ref, rtol=1e-6)
    assert ns["W"].shape == (50, X.shape[1])
    assert ns["path"].coefs.shape == (20, X.shape[1])
    model, svm = ns["model"], ns["svm"]
    assert bool(model.converged)
    labels = np.sign(y - y.mean())
    svc = SVC(C=1.0, kernel="rbf", gamma=0.5, tol=1e-3).fit(X[:, :2], labels)
    agree = np.mean(np.asarray(svm.predict(model, X[:, :2])) == svc.predict(X[:, :2]))
    assert agree > 0.99
    assert abs(int(jnp.sum(model.support)) - len(svc.support_)) <= 3


def test_gradient_snippet_equals_finite_differences():
    """The README's gradient-through-a-fit snippet runs, and its gradient is the derivative
    of the converged fit (central differences)."""
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[1]
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    f, g = ns["val_loss"], ns["g"]
    h = 1e-4
    fd = [(float(f(h, -3.0)) - float(f(-h, -3.0))) / (2 * h),
          (float(f(0.0, -3.0 + h)) - float(f(0.0, -3.0 - h))) / (2 * h)]
    np.testing.assert_allclose(np.asarray(g, float), fd, rtol=1e-4, atol=1e-8)
