"""Shared test set-up: float64 by default (oracle comparisons at 1e-6 need it), Agg plots.

Tests of float32 behaviour pass float32 arrays explicitly.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from hypothesis import settings  # noqa: E402

settings.register_profile("jaxml", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("jaxml")


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module: a module's programs are rarely
    reused by the next, and a worker that keeps thousands of them grows without bound."""
    yield
    jax.clear_caches()

