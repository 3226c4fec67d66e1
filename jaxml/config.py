"""Library-wide switches.

Run-time input checks: every public function validates its inputs; when a value is traced
(the caller wrapped jaxml in ``jax.jit``, ``jax.vmap`` or ``jax.grad``) the value checks
(finiteness, signs, ranges, label sets) are compiled into the program with
``equinox.error_if`` and raise from it, naming the argument. They cost one reduction and a
branch per checked value; turn them off for speed, before tracing::

    >>> import jaxml.config
    >>> with jaxml.config.runtime_checks(False):
    ...     pass                      # functions traced here carry no run-time checks
    >>> jaxml.config.runtime_checks_enabled()
    True

Checks of concrete values (a plain call) and of shapes and dtypes always run.
"""

from jaxml._core.checks import runtime_checks, runtime_checks_enabled, set_runtime_checks

__all__ = ["runtime_checks", "runtime_checks_enabled", "set_runtime_checks"]
