"""Markov chain Monte Carlo: the exact (in the limit) reference for variational inference.

- :mod:`jaxml.mcmc.mh`: random-walk Metropolis–Hastings (``RandomWalkMH``), proposal scale
  tuned by Robbins–Monro in warm-up.
- :mod:`jaxml.mcmc.hmc`: Hamiltonian Monte Carlo (``HMC``): leapfrog, dual-averaging step
  size, diagonal mass matrix over Stan's warm-up windows; divergences counted.
- :mod:`jaxml.mcmc.gibbs`: Gibbs samplers for the Normal–Gamma model and the Bayesian
  Gaussian mixture of :mod:`jaxml.vi.cavi`.
- :mod:`jaxml.mcmc.sampling`: ``sample``, many chains in one ``vmap``, warm-up then draws.
- :mod:`jaxml.mcmc.diagnostics`: rank-normalized split R̂, bulk/tail ESS (in JAX).

Each sampler offers blackjax-style functions, ``init(position, log_density)`` and
``step(key, state, log_density, ...) -> (state, info)`` over NamedTuple states, and a kernel
object (an :class:`MCMCKernel`) for :func:`sample`.
"""

from jaxml.mcmc import diagnostics, gibbs, hmc, mh
from jaxml.mcmc.base import MCMCKernel, NoParams
from jaxml.mcmc.diagnostics import Summary, ess, ess_bulk, ess_tail, rhat, summary
from jaxml.mcmc.gibbs import (
    GibbsInfo,
    MixtureGibbs,
    MixtureState,
    NormalGammaGibbs,
    NormalGammaState,
    mixture_init,
    mixture_step,
    normal_gamma_init,
    normal_gamma_step,
)
from jaxml.mcmc.hmc import HMC, HMCInfo, HMCParams, HMCState
from jaxml.mcmc.mh import RandomWalkMH, RWInfo, RWParams, RWState
from jaxml.mcmc.sampling import SampleResult, sample

hmc_init = hmc.init
hmc_step = hmc.step
rmh_init = mh.init
rmh_step = mh.step

__all__ = [
    "MCMCKernel", "NoParams", "sample", "SampleResult",
    "RandomWalkMH", "RWState", "RWInfo", "RWParams", "rmh_init", "rmh_step",
    "HMC", "HMCState", "HMCInfo", "HMCParams", "hmc_init", "hmc_step",
    "NormalGammaGibbs", "NormalGammaState", "normal_gamma_init", "normal_gamma_step",
    "MixtureGibbs", "MixtureState", "mixture_init", "mixture_step", "GibbsInfo",
    "rhat", "ess", "ess_bulk", "ess_tail", "summary", "Summary",
    "mh", "hmc", "gibbs", "diagnostics",
]
