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
