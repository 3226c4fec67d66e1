"""Variational inference: families, ELBO estimators, CAVI and stochastic-gradient VI.

- :mod:`jaxml.vi.families`: ``MeanFieldGaussian``, ``FullRankGaussian``, ``Exponential``,
  ``Logistic`` (reparameterized samplers, log densities, entropies).
- :mod:`jaxml.vi.elbo`: the ELBO estimators as typed options and ``elbo_and_grad``. The
  target is ``log_density`` (log p(x, z), prior included), or ``log_likelihood=`` for the
  estimators that hold a Gaussian prior themselves (``AnalyticKL``,
  ``LocalReparameterization``); the wrong one raises ``TypeError``.
- :mod:`jaxml.vi.cavi`: the coordinate-ascent driver and two textbook models.
- :mod:`jaxml.vi.sgvi`: ``fit_sgvi``, black-box VI with optax in one ``lax.scan``; it
  returns the shared ``TrainResult`` (``params`` = the fitted q, ``trace`` = −ELBO).
"""

from jaxml.vi.elbo import (
    AnalyticEntropy,
    AnalyticKL,
    ElboEstimator,
    ElboGrad,
    LocalReparameterization,
    Reparameterization,
    ScoreFunction,
    ScoreFunctionLOO,
    StickingTheLanding,
    check_target,
    elbo_and_grad,
    elbo_surrogate,
    gauss_hermite_nodes,
    monte_carlo_elbo,
)
from jaxml.vi.families import (
    Exponential,
    FullRankGaussian,
    Logistic,
    MeanFieldGaussian,
    VariationalFamily,
)
from jaxml.vi.sgvi import TrainResult, fit_sgvi
from jaxml.vi.cavi import (
    CAVIInfo,
    CAVIResult,
    CAVIState,
    MixtureCAVIResult,
    MixtureQ,
    NormalGammaCAVIResult,
    NormalGammaPosterior,
    NormalGammaPrior,
    NormalGammaQ,
    coordinate_ascent,
    mixture_cavi,
    mixture_elbo,
    mixture_step,
    mixture_update_assignments,
    mixture_update_means,
    normal_gamma_cavi,
    normal_gamma_elbo,
    normal_gamma_log_evidence,
    normal_gamma_posterior,
    normal_gamma_step,
    normal_gamma_update_mu,
    normal_gamma_update_tau,
)
from jaxml.vi.predictive import PosteriorPredictive, posterior_predictive
from jaxml.vi.psis import PSISDiagnostic, PSISResult, psis, psis_diagnostic, psis_expectation

__all__ = [
    # families
    "VariationalFamily", "MeanFieldGaussian", "FullRankGaussian", "Exponential", "Logistic",
    # ELBO estimators
    "ElboEstimator", "Reparameterization", "AnalyticEntropy", "AnalyticKL",
    "LocalReparameterization", "StickingTheLanding", "ScoreFunction", "ScoreFunctionLOO",
    "ElboGrad", "check_target", "elbo_and_grad", "elbo_surrogate", "gauss_hermite_nodes",
    "monte_carlo_elbo",
    # SGVI
    "TrainResult", "fit_sgvi",
    # CAVI
    "CAVIState", "CAVIInfo", "CAVIResult", "coordinate_ascent", "normal_gamma_step",
    "mixture_step", "NormalGammaPrior", "NormalGammaQ",
    "NormalGammaPosterior", "NormalGammaCAVIResult", "normal_gamma_update_mu",
    "normal_gamma_update_tau", "normal_gamma_elbo", "normal_gamma_cavi",
    "normal_gamma_posterior", "normal_gamma_log_evidence", "MixtureQ", "MixtureCAVIResult",
    "mixture_update_assignments", "mixture_update_means", "mixture_elbo", "mixture_cavi",
    # diagnostics and predictive
    "PSISResult", "PSISDiagnostic", "psis", "psis_diagnostic", "psis_expectation",
    "PosteriorPredictive", "posterior_predictive",
]
