"""Support vector machines: kernels, the dual by SMO and by projected gradient, one-vs-rest.

    from jaxml import svm
    model = svm.fit(X, y, C=1.0, kernel=svm.RBF(gamma=0.5))   # y in {-1, +1}
    svm.predict(model, X_test)

Modules: :mod:`jaxml.svm.dual` (the problem and the model: dual, KKT certificate, intercept,
hard-margin separability, decision function), :mod:`jaxml.svm.smo` (SMO),
:mod:`jaxml.svm.pgd` (accelerated projected gradient), :mod:`jaxml.svm.ovr` (one-vs-rest);
the kernels live in :mod:`jaxml.kernels` and are re-exported here.
"""

from jaxml.kernels import RBF, Kernel, Linear, Polynomial, gamma_scale, gram
from jaxml.svm.dual import (DualInfo, DualProblem, SVMModel, decision_function, dual_gradient,
                            dual_objective, dual_problem, intercept, kkt_violation,
                            margin_width, predict, primal_weights)
from jaxml.svm.ovr import (
    OneVsRestModel,
    decision_function_one_vs_rest,
    fit_one_vs_rest,
    predict_one_vs_rest,
)
from jaxml.svm.dcd import DCDState, LinearDualProblem, dcd_init, dcd_step, fit_linear_dcd
from jaxml.svm.pgd import PGDState, fit_pgd, pgd_init, pgd_step
from jaxml.svm.smo import SMOState, fit, smo_init, smo_step

__all__ = [
    "Kernel", "Linear", "RBF", "Polynomial", "gram", "gamma_scale",
    "fit", "fit_pgd", "fit_one_vs_rest", "SVMModel", "OneVsRestModel",
    "decision_function", "predict", "primal_weights", "margin_width",
    "decision_function_one_vs_rest", "predict_one_vs_rest",
    "dual_objective", "dual_gradient", "kkt_violation", "intercept",
    "DualProblem", "DualInfo", "dual_problem", "SMOState", "smo_init", "smo_step",
    "PGDState", "pgd_init", "pgd_step",
    "fit_linear_dcd", "LinearDualProblem", "DCDState", "dcd_init", "dcd_step",
]
