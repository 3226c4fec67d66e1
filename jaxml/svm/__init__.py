"""Support vector machines: kernels, the dual by SMO and by projected gradient, one-vs-rest.

    from jaxml import svm
    model = svm.fit(X, y, C=1.0, kernel=svm.RBF(gamma=0.5))   # y in {-1, +1}
    svm.predict(model, X_test)

See :mod:`jaxml.svm.dual` for the math (dual, KKT certificate, intercept, hard-margin
separability), :mod:`jaxml.svm.smo` for SMO and one-vs-rest, :mod:`jaxml.kernels`.
"""

from jaxml.svm.dual import (
    DualProblem,
    PGDState,
    SVMModel,
    decision_function,
    dual_gradient,
    dual_objective,
    dual_problem,
    fit_pgd,
    intercept,
    kkt_violation,
    margin_width,
    pgd_init,
    pgd_step,
    predict,
    primal_weights,
)
from jaxml.kernels import RBF, Kernel, Linear, Polynomial, gamma_scale, gram
from jaxml.svm.smo import (
    OneVsRestModel,
    SMOState,
    decision_function_one_vs_rest,
    fit,
    fit_one_vs_rest,
    predict_one_vs_rest,
    smo_init,
    smo_step,
)

__all__ = [
    "Kernel", "Linear", "RBF", "Polynomial", "gram", "gamma_scale",
    "fit", "fit_pgd", "fit_one_vs_rest", "SVMModel", "OneVsRestModel",
    "decision_function", "predict", "primal_weights", "margin_width",
    "decision_function_one_vs_rest", "predict_one_vs_rest",
    "dual_objective", "dual_gradient", "kkt_violation", "intercept",
    "DualProblem", "dual_problem", "SMOState", "smo_init", "smo_step",
    "PGDState", "pgd_init", "pgd_step",
]
