"""Support vector machines: kernels, the dual by SMO and by projected gradient, one-vs-rest."""

from jaxml.svm.kernels import RBF, Kernel, Linear, Polynomial, gamma_scale, gram

__all__ = ["Kernel", "Linear", "RBF", "Polynomial", "gram", "gamma_scale"]
