"""Issue 13: every bad input a clear error naming the argument, eagerly and under jit/vmap.

The fits are discovered by walking the public API (``tests/_battery.py``), so a new fit is
covered the day it lands: its parameters need valid examples in ``_battery.EXAMPLES`` (or a
place in ``_battery.LEFT_AT_DEFAULT``), and every bad value of each parameter's role must be
rejected with a ValueError/TypeError whose message names the argument. Under ``jax.jit``
(numbers and data traced) a bad value raises at run time with the argument's name in the
message, and likewise under ``jax.vmap`` over a numeric hyperparameter. Valid calls, and
NumPy integer sizes (``max_iter=np.int64(20)``), are accepted.

Set ``JAXML_BATTERY_REPORT=1`` to print how many cases ran and how many of each outcome
(clear / unnamed / obscure / silent) the battery saw, and the failing cases by function;
``python tests/_battery.py`` prints the same without pytest.
"""

from __future__ import annotations

import os

import pytest

import _battery as battery

EAGER = battery.eager_cases()
JIT = battery.jit_cases()
VMAP = battery.vmap_cases()


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    if os.environ.get("JAXML_BATTERY_REPORT"):
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print("\n" + battery.summary())
            print("failing cases by function:")
            print(battery.failures(), flush=True)


def test_discovery_finds_the_fits():
    names = {n for n, _ in battery.FITS}
    assert {"jaxml.kmeans.fit", "jaxml.gmm.fit", "jaxml.svm.smo.fit", "jaxml.linear.ridge",
            "jaxml.pca.fit", "jaxml.naive_bayes.fit_gaussian", "jaxml.gaussian.mle",
            "jaxml.vi.sgvi.fit"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize("name", [n for n, _ in battery.FITS])
def test_every_parameter_has_a_valid_example(name):
    _, missing = battery.valid_call(name, battery.FUNCS[name])
    assert not missing, "; ".join(
        f"add a valid example for parameter {p} of {name} (tests/_battery.py EXAMPLES/ROLES)"
        for p in missing)


def _check(case):
    outcome, detail = battery.run(case)
    battery.record(case, outcome, detail)
    want = battery.expected_outcome(case)
    if outcome == want:
        return
    if case.expect == "accept":
        pytest.fail(f"{case.id}: a valid call was rejected: {detail}", pytrace=False)
    kind = "ValueError/TypeError" if case.mode == "eager" else "an error at run time"
    pytest.fail(f"{case.id}: expected {kind} naming {case.param!r}, got {outcome}: {detail}",
                pytrace=False)


@pytest.mark.parametrize("case", EAGER, ids=[c.id for c in EAGER])
def test_eager(case):
    _check(case)


@pytest.mark.parametrize("case", JIT, ids=[c.id for c in JIT])
def test_under_jit(case):
    _check(case)


@pytest.mark.parametrize("case", VMAP, ids=[c.id for c in VMAP])
def test_under_vmap(case):
    _check(case)
