r"""One-vs-rest multiclass SVM: k binary duals solved in one vmapped call.

For classes c = 0..k−1 the binary problem is yᶜᵢ = +1 if labelᵢ = c else −1; all k share one
Gram matrix K and run in one loop (the batched rule of :mod:`jaxml._core.batched`), by SMO
(:mod:`jaxml.svm.smo`) or projected gradient (:mod:`jaxml.svm.pgd`). A point's class is
argmax_c fᶜ(x), fᶜ(x) = Σᵢ αᶜᵢ yᶜᵢ k(xᵢ, x) + bᶜ (scikit-learn's ``OneVsRestClassifier(SVC)``).
Cost: one O(n² d) Gram matrix, then k solves in lockstep.

Reference: R. Rifkin & A. Klautau, "In defense of one-vs-all classification", JMLR 5 (2004).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxml._core.checks import (check_class_labels, check_int_in_range, check_matrix,
                                check_same_length, checks_on_outputs, is_concrete)
from jaxml._core.loop import Adjoint
from jaxml.kernels import Kernel, Linear, gram
from jaxml.svm.dual import (
    SVMModel,
    check_binary,
    default_max_iter,
    dual_problem,
    kernel_expansion,
    model_from_alpha,
    query_points,
    solve_dual,
)
from jaxml.svm.pgd import pgd_init, pgd_step
from jaxml.svm.smo import smo_init, smo_step

__all__ = ["OneVsRestModel", "fit_one_vs_rest", "decision_function_one_vs_rest",
           "predict_one_vs_rest"]

_SOLVERS = {"smo": (smo_init, smo_step), "pgd": (pgd_init, pgd_step)}


class OneVsRestModel(NamedTuple):
    """k binary SVMs (class c against the rest), fitted in one vmapped solve.

    Attributes:
        alpha: (k, n). b: (k,). support: (k, n) bool. Y: (k, n) the ±1 labels of each
        problem. X: (n, d) shared training points. kernel: the shared kernel. C: ().
        dual_objective, kkt_violation: (k,). n_iter: (k,). converged, infeasible: (k,) bool.
        trace: (k, max_iter) the dual objective of each problem per step (NaN past n_iter).
    """

    alpha: jax.Array
    b: jax.Array
    support: jax.Array
    Y: jax.Array
    X: jax.Array
    kernel: Kernel
    C: jax.Array
    dual_objective: jax.Array
    kkt_violation: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    infeasible: jax.Array
    trace: jax.Array


@checks_on_outputs
def fit_one_vs_rest(X, labels, n_classes: int, *, C=1.0, kernel: Kernel = Linear(), tol=1e-3,
                    max_iter: int | None = None, solver: str = "smo",
                    adjoint: Adjoint | None = None) -> OneVsRestModel:
    """One-vs-rest multiclass SVM: for each class c the binary problem yᵢ = +1 if
    labelsᵢ = c else −1, all solved in one ``vmap``ped call sharing one Gram matrix.

    Args:
        X: (n, d). labels: (n,) ints in 0..n_classes−1, every class present.
        n_classes: static k ≥ 2. C, kernel, tol, max_iter: as :func:`jaxml.svm.fit`.
        solver: "smo" (default) or "pgd".
        adjoint: ``None``/``Implicit()`` (default), ``Direct()`` or ``Unrolled()``, as in
            :func:`jaxml.svm.fit` (each binary problem's implicit derivative).

    Returns:
        :class:`OneVsRestModel`; predict with :func:`predict_one_vs_rest`.
    """
    n_classes = check_int_in_range(n_classes, "n_classes", 2, 1_000_000)
    labels = check_class_labels(labels, "labels", n_classes)
    if is_concrete(labels):
        missing = np.setdiff1d(np.arange(n_classes), np.asarray(labels))
        if missing.size:
            raise ValueError(f"labels must contain every class 0..{n_classes - 1}; "
                             f"missing {missing.tolist()[:5]}")
    X = check_matrix(X, "X")
    check_same_length(X, "X", labels, "labels")
    Y = jnp.where(labels[None, :] == jnp.arange(n_classes)[:, None], 1, -1)
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be 'smo' or 'pgd', got {solver!r}")
    _, _, C, tol = check_binary(X, Y[0], C, tol, kernel)
    max_iter = default_max_iter(X.shape[0], max_iter)
    init, step = _SOLVERS[solver]
    return _fit_ovr(X, Y, C, tol, kernel, init=init, step=step,
                    max_iter=max_iter, adjoint=adjoint)


@partial(jax.jit, static_argnames=("init", "step", "max_iter", "adjoint"))
def _fit_ovr(X, Y, C, tol, kernel, *, init: Callable, step: Callable,
             max_iter: int, adjoint: Adjoint | None) -> OneVsRestModel:
    Y, C, tol = Y.astype(X.dtype), jnp.asarray(C, X.dtype), jnp.asarray(tol, X.dtype)
    K = gram(kernel, X)

    def one(y):
        problem = dual_problem(K, y, C)
        loop = solve_dual(problem, tol, init=init, step=step, max_iter=max_iter,
                          adjoint=adjoint)
        return model_from_alpha(loop.state.alpha, problem, X, kernel, loop, loop.state.infeasible)

    m = jax.vmap(one, out_axes=SVMModel(0, 0, 0, None, 0, None, None, 0, 0, 0, 0, 0, 0))(Y)
    return OneVsRestModel(m.alpha, m.b, m.support, Y, X, kernel, C, m.dual_objective,
                          m.kkt_violation, m.n_iter, m.converged, m.infeasible, m.trace)


def decision_function_one_vs_rest(model: OneVsRestModel, X) -> jax.Array:
    """(m, k) scores fᶜ(x) = Σᵢ αᶜᵢ yᶜᵢ k(xᵢ, x) + bᶜ for X (m, d)."""
    X = query_points(X, model.X)
    return kernel_expansion(model.kernel, X, model.X, (model.alpha * model.Y).T, model.b)


def predict_one_vs_rest(model: OneVsRestModel, X) -> jax.Array:
    """(m,) int32 class labels: argmax_c of :func:`decision_function_one_vs_rest`."""
    return jnp.argmax(decision_function_one_vs_rest(model, X), axis=1).astype(jnp.int32)
