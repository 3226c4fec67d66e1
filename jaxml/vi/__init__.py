"""Variational inference: families, ELBO estimators, CAVI and stochastic-gradient VI.

- :mod:`jaxml.vi.families`: ``MeanFieldGaussian``, ``FullRankGaussian``, ``Exponential``,
  ``Logistic`` (reparameterized samplers, log densities, entropies).
- :mod:`jaxml.vi.elbo`: the ELBO estimators as typed options and ``elbo_and_grad``.
- :mod:`jaxml.vi.cavi`: the coordinate-ascent driver and two textbook models.
- :mod:`jaxml.vi.sgvi`: ``fit_sgvi``, black-box VI with optax in one ``lax.scan``.
"""

from jaxml.vi.elbo import (
    AnalyticEntropy,
    AnalyticKL,
    ElboEstimator,
    ElboGrad,
    Reparameterization,
    ScoreFunction,
    ScoreFunctionLOO,
    StickingTheLanding,
    elbo_and_grad,
    elbo_surrogate,
    monte_carlo_elbo,
)
from jaxml.vi.families import (
    Exponential,
    FullRankGaussian,
    Logistic,
    MeanFieldGaussian,
    VariationalFamily,
)
from jaxml.vi.sgvi import SGVIResult, SGVIState, fit_sgvi
from jaxml.vi.cavi import (
    CAVIResult,
    MixtureCAVIResult,
    MixtureQ,
    NormalGammaCAVIResult,
    NormalGammaPosterior,
    NormalGammaPrior,
    NormalGammaQ,
    coordinate_ascent,
    mixture_cavi,
    mixture_elbo,
    mixture_update_assignments,
    mixture_update_means,
    normal_gamma_cavi,
    normal_gamma_elbo,
    normal_gamma_log_evidence,
    normal_gamma_posterior,
    normal_gamma_update_mu,
    normal_gamma_update_tau,
)

__all__ = [
    # families
    "VariationalFamily", "MeanFieldGaussian", "FullRankGaussian", "Exponential", "Logistic",
    # ELBO estimators
    "ElboEstimator", "Reparameterization", "AnalyticEntropy", "AnalyticKL",
    "StickingTheLanding", "ScoreFunction", "ScoreFunctionLOO", "ElboGrad", "elbo_and_grad",
    "elbo_surrogate", "monte_carlo_elbo",
    # SGVI
    "SGVIResult", "SGVIState", "fit_sgvi",
    # CAVI
    "CAVIResult", "coordinate_ascent", "NormalGammaPrior", "NormalGammaQ",
    "NormalGammaPosterior", "NormalGammaCAVIResult", "normal_gamma_update_mu",
    "normal_gamma_update_tau", "normal_gamma_elbo", "normal_gamma_cavi",
    "normal_gamma_posterior", "normal_gamma_log_evidence", "MixtureQ", "MixtureCAVIResult",
    "mixture_update_assignments", "mixture_update_means", "mixture_elbo", "mixture_cavi",
]
