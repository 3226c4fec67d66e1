"""jaxml: classic and probabilistic machine learning as pure, jit-compiled JAX functions.

Each chapter is a module of pure functions: ``jaxml.convex``, ``jaxml.optim``,
``jaxml.linear``, ``jaxml.svm``, ``jaxml.naive_bayes``, ``jaxml.pca``, ``jaxml.kmeans``,
``jaxml.gaussian``, ``jaxml.gmm``, ``jaxml.lda``, ``jaxml.vi``, ``jaxml.mcmc``, ``jaxml.rvm``,
``jaxml.bayes_layers``, ``jaxml.flows``, ``jaxml.vae``, ``jaxml.information``, and
``jaxml.kernels`` (shared by the kernel methods). They are imported on first use.
"""

import importlib

__version__ = "0.1.0"

__all__ = [
    "convex", "optim", "linear", "svm", "naive_bayes", "pca", "kmeans", "gaussian", "gmm",
    "lda", "vi", "mcmc", "rvm", "bayes_layers", "flows", "vae", "kernels", "sklearn",
    "information", "io", "testing", "config", "data",
]


# Functions exported at the top level, imported from their module on first use.
_FUNCTIONS = {"save": "io", "load": "io"}


def __getattr__(name):
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module(f"jaxml.{_FUNCTIONS[name]}"), name)
        globals()[name] = value
        return value
    if name in __all__:
        module = importlib.import_module(f"jaxml.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'jaxml' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_FUNCTIONS))
