"""Property-test helpers: check your own gradients, estimators and solvers the way jaxml's
own test suite does.

- Derivatives (:mod:`jaxml.testing.gradients`): :func:`check_gradient`, :func:`check_jvp`,
  :func:`check_jacobian` — a hand-written derivative against autodiff and against central
  finite differences, on pytrees, with tolerances that follow the dtype and the scale of the
  values, and a report naming the worst coordinate.
- Estimators (:mod:`jaxml.testing.estimators`): :func:`check_unbiased` (a z-test of the
  draws' mean against an exact value, Bonferroni over coordinates, false-alarm rate
  ``alpha``), :func:`check_mean` (the same test on draws you already hold),
  :func:`check_variance_reduction` (an upper confidence bound on a variance
  ratio), :func:`draw`.
- Optimality (:mod:`jaxml.testing.optimality`): :func:`check_kkt` (through
  :func:`jaxml.optim.kkt_residuals`), :func:`check_fixed_point`, :func:`check_monotone`
  (EM, CAVI, Lloyd traces, NaN-padded).
- Inputs: :func:`random_spd` (a fixed SPD matrix of bounded condition number from a key);
  :mod:`jaxml.testing.strategies` (needs ``hypothesis``; imported on first use):
  well-conditioned matrices, SPD matrices, simplex points, labels with every class present,
  data with duplicated or constant columns.

Every check raises ``AssertionError`` with a readable report when it fails (so it reads as
a test failure under pytest) and returns a small NamedTuple of what it measured when it
passes.
"""

import importlib

from jaxml.testing.estimators import (
    UnbiasedReport,
    VarianceReport,
    check_mean,
    check_unbiased,
    check_variance_reduction,
    draw,
)
from jaxml.testing.gradients import GradientReport, check_gradient, check_jacobian, check_jvp
from jaxml.testing.inputs import random_spd
from jaxml.testing.optimality import (
    FixedPointReport,
    MonotoneReport,
    check_fixed_point,
    check_kkt,
    check_monotone,
)

__all__ = [
    # derivatives
    "GradientReport", "check_gradient", "check_jvp", "check_jacobian",
    # estimators
    "UnbiasedReport", "VarianceReport", "draw", "check_unbiased", "check_mean",
    "check_variance_reduction",
    # optimality
    "FixedPointReport", "MonotoneReport", "check_kkt", "check_fixed_point", "check_monotone",
    # inputs
    "random_spd", "strategies",
]


def __getattr__(name):
    if name == "strategies":
        module = importlib.import_module("jaxml.testing.strategies")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'jaxml.testing' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + ["strategies"])
