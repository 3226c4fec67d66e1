"""The bad-input battery of issue 13: discovered fits, one valid call each, one bad argument at a time.

Used by ``tests/test_bad_input.py``; also runnable on its own to count outcomes::

    python tests/_battery.py            # every case, then a summary (and the failing cases)

Discovery (nothing is a hand list): the public functions of every public ``jaxml`` module
(``__all__`` where a module has one; ``_core`` and private modules skipped, as in
``tests/test_contract.py``) that

* take data: a parameter named one of :data:`DATA_NAMES`, first (after an optional ``key``)
  or in a function named ``fit*``;
* are estimators: named ``fit*``, or iterative (``max_iter``/``n_steps``), or supervised
  (``X, y``), or returning a NamedTuple result;
* are not loop pieces (``step``/``*_step``, ``init*``, or taking a ``state``).

Every parameter of a discovered function needs an entry in :data:`EXAMPLES` (a valid value)
or in :data:`LEFT_AT_DEFAULT` (an option the battery leaves alone); a missing one is reported
as "add a valid example for parameter p of f". The bad values of a parameter follow from its
role (:data:`ROLES`), looked up by (function, name), (module, name), (package, name), name.
"""

from __future__ import annotations

import collections
import importlib
import inspect
import os
import pathlib
import pkgutil
import re
import sys
import traceback
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import jaxml

DATA_NAMES = ("X", "x", "counts", "data")

# ----------------------------------------------------------------------------- discovery


def modules(skip: tuple[str, ...] = ("testing",)):
    """The public chapter modules of jaxml (private modules and ``skip`` left out)."""
    root = pathlib.Path(jaxml.__file__).parent
    out = []
    for info in pkgutil.walk_packages([str(root)], prefix="jaxml."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]) or parts[1] in skip:
            continue
        out.append(importlib.import_module(info.name))
    return out


def public_functions(skip: tuple[str, ...] = ("testing",)):
    """``(qualified name, function)`` for every public function of :func:`modules`."""
    seen = {}
    for mod in modules(skip):
        exported = getattr(mod, "__all__", None)
        for name, obj in vars(mod).items():
            if name.startswith("_") or not inspect.isfunction(obj):
                continue
            if exported is not None and name not in exported:
                continue
            if not obj.__module__.startswith("jaxml") or obj.__module__.startswith("jaxml._core"):
                continue
            seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(seen.items())


def is_namedtuple(t) -> bool:
    return isinstance(t, type) and issubclass(t, tuple) and hasattr(t, "_fields")


def _is_fit(name: str, fn) -> bool:
    short = name.rsplit(".", 1)[-1]
    params = list(inspect.signature(fn).parameters)
    if "state" in params or short.startswith("init") or re.fullmatch(r"(.*_)?step", short):
        return False
    data = [p for p in params if p in DATA_NAMES]
    if not data:
        return False
    lead = params[1:] if params and params[0] == "key" else params
    if not (short.startswith("fit") or lead[0] in DATA_NAMES):
        return False
    if short.startswith("fit") or "max_iter" in params or "n_steps" in params:
        return True
    i = params.index(data[0])
    if i + 1 < len(params) and params[i + 1] == "y":
        return True
    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:  # noqa: BLE001  an unresolvable annotation: not a result type
        ret = None
    return is_namedtuple(ret)


def discover():
    """``[(name, fn)]``: the public fits, e.g. ``("jaxml.kmeans.fit", kmeans.fit)``."""
    return [(n, f) for n, f in public_functions() if _is_fit(n, f)]


# ----------------------------------------------------------------------------- valid examples

RNG = np.random.default_rng(0)
N, D = 12, 3
X = RNG.normal(size=(N, D))
Y_REG = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * RNG.normal(size=N)
Y_PM = np.tile([1, -1], N // 2)                          # labels in {−1, +1}
Y_01 = np.tile([0, 1], N // 2)                           # classes 0..1
Y_012 = np.tile([0, 1, 2], N // 3)                       # classes 0..2
COUNTS = RNG.poisson(2.0, size=(N, 5))
X1 = RNG.normal(size=N)                                  # 1-D data (CAVI)
X2 = X[:, :2].copy()                                     # loss_surface: two features


def _log_density(z):
    return -0.5 * jnp.sum(z ** 2)


class _Lazy:
    """A valid value built on first use (models, flows, families)."""

    def __init__(self, make):
        self.make, self.value, self.done = make, None, False

    def get(self):
        if not self.done:
            self.value, self.done = self.make(), True
        return self.value


def _bayes_mlp():
    from jaxml import bayes_layers
    return bayes_layers.BayesianMLP((D, 4, 2), key=jax.random.key(0))


def _vae_model():
    from jaxml import vae
    return vae.VAE(jax.random.key(0), D, 1, width=4, likelihood="gaussian")


def _flow():
    from jaxml import flows
    return flows.planar_flow(jax.random.key(0), 2, 2)


def _q0():
    from jaxml import vi
    return vi.MeanFieldGaussian.init(D)


def _linear_kernel():
    from jaxml.svm import Linear
    return Linear()


#: Parameters the battery leaves at their defaults (options: strings, flags, initial values,
#: optimizers, adjoints). A parameter that is in neither this set nor EXAMPLES fails the test.
LEFT_AT_DEFAULT = {
    "adjoint", "progress", "optimizer", "init", "init_params", "init_method", "block_size",
    "chunk_size", "warm_start", "warm_block", "w0", "init_topic_word", "covariance_type",
    "solver", "method", "estimator", "covariance", "bias", "likelihood", "theta0",
    "log_likelihood", "log_prior", "n_local_trials",
    ("flows", "data"), ("flows", "batch_size"), ("vi", "data"), ("vi", "batch_size"),
}

#: Valid example values, looked up by (function, name), (module, name), (package, name), name,
#: where function is e.g. "linear.loss_surface", module "svm.smo", package "svm".
EXAMPLES: dict[Any, Any] = {
    "key": _Lazy(lambda: jax.random.key(0)),
    "X": X, "y": Y_REG, "x": X1, "counts": COUNTS,
    ("linear.loss_surface", "X"): X2,
    "w1": np.linspace(-1, 1, 4), "w2": np.linspace(-2, 2, 5),
    "alpha": 0.1, ("naive_bayes", "alpha"): 1.0, ("lda", "alpha"): 0.5,
    "alphas": np.array([0.1, 0.01]), "radius": 1.0,
    "tol": 1e-3, "max_iter": 20, "e_step_tol": 1e-3, "e_step_max_iter": 5,
    ("lda", "max_iter"): 5, ("gmm", "max_iter"): 5, ("kmeans", "max_iter"): 5,
    ("vi", "max_iter"): 5, ("rvm", "max_iter"): 5,
    "learning_rate": 0.01, "n_steps": 3,
    "n_clusters": 2, "n_components": 2, "n_topics": 2, "reg_covar": 1e-6, "eta": 0.5,
    ("naive_bayes", "y"): Y_01, ("naive_bayes", "n_classes"): 2, "var_smoothing": 1e-9,
    ("naive_bayes.fit_multinomial", "X"): COUNTS,
    ("svm", "y"): Y_PM, ("rvm", "y"): Y_PM, ("bayes_layers", "y"): Y_01,
    "labels": Y_012, ("svm", "n_classes"): 3,
    "step_offset": 2.0, "decay": 0.6, "learning_offset": 10.0, "learning_decay": 0.7,
    "C": 1.0, "rho": 0.1, "kernel": _Lazy(_linear_kernel), ("rvm", "kernel"): None, "min_margin": 1e-3,
    ("svm", "max_iter"): 50,
    "prior_var": 1.0, "mu0": 0.0, "lambda0": 1.0, "a0": 1.0, "b0": 1.0,
    "n_inner": 3, "n_samples": 4, "window": 3, "alpha_init": 1.0, "init_scale": 1.0,
    "threshold": 1e-3,
    ("bayes_layers", "model"): _Lazy(_bayes_mlp), ("vae", "model"): _Lazy(_vae_model),
    "batch_size": 4, "kl_weight": 1.0, "warmup_steps": 1, "noise_std": 1.0,
    "flow": _Lazy(_flow), "log_density": _log_density, "q0": _Lazy(_q0),
    ("convex", "x"): np.array([0.3, -1.4, 2.0]), ("convex", "y"): np.array([1.0, -1.0, 1.0]),
    "lower": -1.0, "upper": 1.0, "a": 0.0,
    "doc_topic": np.full((N, 2), 1.5), "topic_word": np.full((2, 5), 1.5),
    # the supervised streamed fits read (X, y) chunk pairs (their bad chunks: tests/test_scale.py)
    ("naive_bayes", "data"): _Lazy(lambda: jaxml.data.chunks(X, 16, y=Y_01)),
    ("naive_bayes.fit_multinomial_streamed", "data"):
        _Lazy(lambda: jaxml.data.chunks(COUNTS, 16, y=Y_01)),
}

#: What each parameter is; its bad values follow (see ``_mutations``).
ROLES: dict[Any, str] = {
    "X": "matrix", "data": "matrix", "counts": "counts", "x": "vector",
    ("naive_bayes.fit_multinomial", "X"): "counts",
    "y": "target", ("naive_bayes", "y"): "labels", ("bayes_layers", "y"): "labels",
    "labels": "labels", ("svm", "y"): "pm_labels", ("rvm", "y"): "pm_labels",
    ("convex", "y"): "finite_vector",
    "w1": "finite_vector", "w2": "finite_vector",
    "alpha": "nonnegative", ("lda", "alpha"): "positive", "alphas": "nonnegative_vector",
    "radius": "nonnegative_or_inf", "tol": "nonnegative", "e_step_tol": "nonnegative",
    "max_iter": "iterations", "e_step_max_iter": "iterations", "n_steps": "iterations",
    "n_inner": "iterations",
    "learning_rate": "positive", "reg_covar": "nonnegative", "var_smoothing": "nonnegative",
    "eta": "positive", "C": "positive_or_inf", "rho": "positive",
    "step_offset": "at_least_one", "decay": "robbins_monro", "learning_offset": "positive",
    "learning_decay": "robbins_monro", "min_margin": "positive",
    "prior_var": "positive", "lambda0": "positive", "a0": "positive", "b0": "positive",
    "mu0": "finite", "a": "finite", "lower": "real", "upper": "real",
    "alpha_init": "positive", "init_scale": "positive", "threshold": "positive",
    "noise_std": "positive", "kl_weight": "nonnegative",
    "n_clusters": "count_le_n", "n_components": "count_le_n",
    "n_topics": "count",                     # K > D documents is a valid LDA
    "n_classes": "count",
    "n_samples": "size", "batch_size": "size", "window": "size", "warmup_steps": "size0",
    "kernel": "kernel", "log_density": "callable", "key": "none", "model": "none",
    "flow": "none", "q0": "none", ("naive_bayes", "data"): "none", "doc_topic": "positive_matrix",
    "topic_word": "positive_matrix",
}

#: Roles whose values are traced under ``jax.jit``/``jax.vmap`` (numbers and data).
SCALAR_ROLES = {"positive", "nonnegative", "positive_or_inf", "nonnegative_or_inf", "finite",
                "real", "at_least_one", "robbins_monro"}
ARRAY_ROLES = {"matrix", "counts", "vector", "target", "labels", "pm_labels", "finite_vector",
               "nonnegative_vector", "positive_matrix"}


def _scopes(fname: str):
    """Lookup keys for a function ``jaxml.svm.smo.fit``: svm.smo.fit, svm.smo, svm."""
    parts = fname.split(".")[1:]
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def lookup(table, fname: str, pname: str, default=KeyError):
    for s in _scopes(fname):
        if (s, pname) in table:
            return table[(s, pname)]
    if pname in table:
        return table[pname]
    if default is KeyError:
        raise KeyError(pname)
    return default


def _left_at_default(fname, pname) -> bool:
    return pname in LEFT_AT_DEFAULT or any((s, pname) in LEFT_AT_DEFAULT for s in _scopes(fname))


def _value(v):
    v = v.get() if isinstance(v, _Lazy) else v
    return v.copy() if isinstance(v, np.ndarray) else v


def valid_call(fname: str, fn) -> tuple[dict, list[str]]:
    """``(kwargs, missing)``: the valid call of ``fn`` by parameter name, and the parameters
    the tables do not cover."""
    kwargs, missing = {}, []
    for p, par in inspect.signature(fn).parameters.items():
        if _left_at_default(fname, p) and par.default is not inspect.Parameter.empty:
            continue
        try:
            kwargs[p] = _value(lookup(EXAMPLES, fname, p))
        except KeyError:
            missing.append(p)
    return kwargs, missing


def call(fn, kwargs: dict):
    """Call ``fn`` with keyword arguments (positional-only ones by position) and wait."""
    sig = inspect.signature(fn)
    args, kw = [], {}
    for p, par in sig.parameters.items():
        if p not in kwargs:
            continue
        if par.kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(kwargs[p])
        else:
            kw[p] = kwargs[p]
    out = fn(*args, **kw)
    jax.block_until_ready([a for a in jax.tree.leaves(out) if isinstance(a, jax.Array)])
    return out


# ----------------------------------------------------------------------------- bad values


def _with(a, index, value):
    a = np.array(a, dtype=np.result_type(a, type(value)))
    a[index] = value
    return a


def _n_rows(kwargs) -> int:
    for p in DATA_NAMES:
        if p in kwargs and hasattr(kwargs[p], "shape"):
            return int(np.shape(kwargs[p])[0])
    return N


def _mutations(role: str, v, kwargs) -> list[tuple[str, Any, str]]:
    """``[(case, value, expect)]`` with expect ``"raise"`` or ``"accept"``."""
    n = _n_rows(kwargs)
    out: list[tuple[str, Any, str]] = []
    if role in ("matrix", "counts", "vector", "positive_matrix", "finite_vector", "target",
                "nonnegative_vector"):
        v = np.asarray(v)
        first = (0,) * v.ndim
        out += [("complex", v + 0.5j, "raise"), ("string", v.astype(str), "raise"),
                ("object", v.astype(object), "raise"), ("nan", _with(v, first, np.nan), "raise"),
                ("inf", _with(v, first, np.inf), "raise")]
    if role in ("matrix", "counts"):
        out += [("n0", v[:0], "raise"), ("d0", v[:, :0], "raise"),
                ("rank1", v.ravel(), "raise")]
    if role == "vector":
        out += [("n0", v[:0], "raise"), ("rank2", v[None, :], "raise")]
    if role in ("counts", "positive_matrix", "nonnegative_vector"):
        out += [("negative", _with(v, (0,) * np.ndim(v), -1), "raise")]
    if role == "nonnegative_vector":
        out += [("empty", v[:0], "raise")]
    if role in ("target", "labels", "pm_labels"):
        v = np.asarray(v)
        out += [("length", v[:-1], "raise")]
    if role == "labels":
        k = int(v.max()) + 1
        out += [("outside", _with(v, 0, k), "raise"), ("negative", _with(v, 0, -1), "raise"),
                ("string", v.astype(str), "raise"),
                ("fractional", _with(v.astype(float), 0, 0.5), "raise")]
    if role == "pm_labels":
        out += [("outside", _with(v, 0, 2), "raise"), ("zero", _with(v, 0, 0), "raise"),
                ("string", v.astype(str), "raise"),
                ("single_class", np.ones_like(v), "raise")]
    bad_scalars = {
        "positive": [np.nan, np.inf, -np.inf, -1.0, 0.0],
        "nonnegative": [np.nan, np.inf, -np.inf, -1.0],
        "positive_or_inf": [np.nan, -np.inf, -1.0, 0.0],
        "nonnegative_or_inf": [np.nan, -np.inf, -1.0],
        "finite": [np.nan, np.inf, -np.inf],
        "real": [np.nan],
        "at_least_one": [np.nan, np.inf, -np.inf, 0.5, -1.0],
        "robbins_monro": [np.nan, np.inf, -np.inf, 0.5, 1.5],     # κ ∈ (0.5, 1]
    }.get(role, [])
    out += [(f"{b}", b, "raise") for b in bad_scalars]
    if role in ("iterations", "size", "size0", "count", "count_le_n"):
        out += [("np.int64", np.int64(v), "accept"), ("2.5", 2.5, "raise"), ("-1", -1, "raise")]
    if role in ("size", "count", "count_le_n"):
        out += [("0", 0, "raise")]
    if role == "count_le_n":
        out += [("n+1", n + 1, "raise")]
    if role == "kernel":
        out += [("string", "rbf", "raise")]
    if role == "callable":
        out += [("not_callable", 3.0, "raise"), ("returns_vector", lambda z: z, "raise")]
    return out


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    fname: str           # e.g. "jaxml.svm.smo.fit"
    param: str           # the mutated argument ("" for the valid call)
    case: str            # what is wrong with it
    mode: str            # "eager", "jit", "vmap"
    expect: str          # "raise" or "accept"
    value: Any = field(default=None, repr=False)

    @property
    def id(self) -> str:
        short = self.fname.removeprefix("jaxml.")
        return f"{self.mode}:{short}:{self.param or 'valid'}:{self.case}"


FITS = discover()
FUNCS = dict(FITS)


def missing_examples() -> dict[str, list[str]]:
    out = {}
    for name, fn in FITS:
        _, missing = valid_call(name, fn)
        if missing:
            out[name] = missing
    return out


def _covered():
    return [(n, f) for n, f in FITS if not valid_call(n, f)[1]]


def traced_params(fname: str, kwargs: dict) -> list[str]:
    """Parameters traced under jit/vmap: numeric hyperparameters and data arrays."""
    out = []
    for p, v in kwargs.items():
        role = lookup(ROLES, fname, p, None)
        if role in SCALAR_ROLES and isinstance(v, (int, float)):
            out.append(p)
        elif role in ARRAY_ROLES and isinstance(v, np.ndarray):
            out.append(p)
    return out


def eager_cases() -> list[Case]:
    cases = []
    for name, fn in _covered():
        kwargs, _ = valid_call(name, fn)
        cases.append(Case(name, "", "valid", "eager", "accept"))
        for p, v in kwargs.items():
            role = lookup(ROLES, name, p, None)
            for case, bad, expect in _mutations(role, v, kwargs) if role else []:
                cases.append(Case(name, p, case, "eager", expect, bad))
    return cases


def _traced_bad(role, v, kwargs):
    """Bad values of the same shape and dtype as the valid one (no recompilation)."""
    out = []
    for case, bad, _ in _mutations(role, v, kwargs):
        if role in SCALAR_ROLES:
            out.append((case, bad))
        elif (isinstance(bad, np.ndarray) and bad.shape == np.shape(v)
              and np.result_type(bad).kind == np.asarray(v).dtype.kind):
            out.append((case, bad))
    if role in ("labels", "pm_labels"):
        out = [(c, b) for c, b in out if c in ("outside", "negative", "zero")]
    return out


def _traceable():
    """The covered fits that can run under ``jit``/``vmap``: not those marked as host
    functions (``jaxml._core.checks.host_function`` sets ``__jaxml_host__``: a Python loop
    over host data, e.g. chunks streamed from a memory map, is not traceable by design)."""
    return [(n, f) for n, f in _covered() if not getattr(f, "__jaxml_host__", False)]


def jit_cases() -> list[Case]:
    cases = []
    for name, fn in _traceable():
        kwargs, _ = valid_call(name, fn)
        cases.append(Case(name, "", "valid", "jit", "accept"))
        for p in traced_params(name, kwargs):
            role = lookup(ROLES, name, p)
            for case, bad in _traced_bad(role, kwargs[p], kwargs):
                cases.append(Case(name, p, case, "jit", "raise", bad))
    return cases


def vmap_cases() -> list[Case]:
    cases = []
    for name, fn in _traceable():
        kwargs, _ = valid_call(name, fn)
        scalars = [p for p in traced_params(name, kwargs)
                   if lookup(ROLES, name, p) in SCALAR_ROLES]
        if not scalars:
            continue
        cases.append(Case(name, "", "valid", "vmap", "accept"))
        for p in scalars:
            for case, bad in _traced_bad(lookup(ROLES, name, p), kwargs[p], kwargs):
                cases.append(Case(name, p, case, "vmap", "raise", bad))
    return cases


# ----------------------------------------------------------------------------- running

_COMPILED: dict[tuple[str, str], Callable] = {}


def _jitted(fname: str, mode: str):
    key = (fname, mode)
    if key not in _COMPILED:
        fn = FUNCS[fname]
        kwargs, _ = valid_call(fname, fn)
        traced = traced_params(fname, kwargs)
        if mode == "vmap":
            traced = [p for p in traced if lookup(ROLES, fname, p) in SCALAR_ROLES]

        if mode == "jit":
            _COMPILED[key] = (jax.jit(lambda values: fn_call(fn, kwargs, values)), traced)
        else:
            _COMPILED[key] = (jax.jit(jax.vmap(lambda values: fn_call(fn, kwargs, values))),
                              traced)
    return _COMPILED[key]


def fn_call(fn, kwargs, values):
    sig = inspect.signature(fn)
    merged = {**kwargs, **values}
    args = [merged.pop(p) for p, par in sig.parameters.items()
            if par.kind is inspect.Parameter.POSITIONAL_ONLY and p in merged]
    out = fn(*args, **merged)
    return [a for a in jax.tree.leaves(out) if isinstance(a, jax.Array)]


def _traced_values(case: Case):
    fn = FUNCS[case.fname]
    kwargs, _ = valid_call(case.fname, fn)
    _, traced = _jitted(case.fname, case.mode)
    values = {}
    for p in traced:
        v = kwargs[p]
        dt = jnp.float64 if isinstance(v, (int, float)) else np.asarray(v).dtype
        good = jnp.asarray(v, dtype=dt)
        if case.mode == "vmap":
            bad = good if p != case.param else jnp.asarray(case.value, dtype=dt)
            values[p] = jnp.stack([good, bad])
        else:
            values[p] = good if p != case.param else jnp.asarray(case.value, dtype=dt)
    return values


def names_argument(message: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message) is not None


def run(case: Case) -> tuple[str, str]:
    """``(outcome, detail)``. Outcomes: valid/accept cases ``ok`` or ``rejected``; bad cases
    ``clear`` (ValueError/TypeError naming the argument; under jit/vmap any error naming it),
    ``unnamed`` (a ValueError/TypeError raised by jaxml's own code, not naming the
    argument), ``obscure`` (any other exception: from inside JAX or NumPy, or of another
    type), ``silent`` (accepted)."""
    fn = FUNCS[case.fname]
    try:
        if case.mode == "eager":
            kwargs, _ = valid_call(case.fname, fn)
            if case.param:
                kwargs[case.param] = case.value
            call(fn, kwargs)
        else:
            compiled, _ = _jitted(case.fname, case.mode)
            jax.block_until_ready(compiled(_traced_values(case)))
    except Exception as e:  # noqa: BLE001  classified below
        msg = f"{type(e).__name__}: {e}"
        short = msg.splitlines()[0][:200] if msg else type(e).__name__
        if case.expect == "accept":
            return "rejected", short
        if case.mode == "eager":
            if isinstance(e, (ValueError, TypeError)) and names_argument(str(e), case.param):
                return "clear", short
            if isinstance(e, (ValueError, TypeError)) and _raised_by_jaxml(e):
                return "unnamed", short
            return "obscure", short
        if names_argument(str(e), case.param):
            return "clear", short
        return "obscure", _traced_summary(e)
    return ("ok", "") if case.expect == "accept" else ("silent", "accepted")


def _raised_by_jaxml(e) -> bool:
    """Whether the innermost frame that raised ``e`` is jaxml's own code (a check that did
    not name the argument) rather than JAX's or NumPy's (an obscure error)."""
    tb = traceback.extract_tb(e.__traceback__)
    return bool(tb) and f"{os.sep}jaxml{os.sep}" in tb[-1].filename


def _traced_summary(e) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {(lines[0] if lines else '')[:200]}"


def expected_outcome(case: Case) -> str:
    return "ok" if case.expect == "accept" else "clear"


def all_cases() -> list[Case]:
    return eager_cases() + jit_cases() + vmap_cases()


# ----------------------------------------------------------------------------- reporting

RESULTS: dict[str, tuple[Case, str, str]] = {}


def record(case: Case, outcome: str, detail: str) -> None:
    RESULTS[case.id] = (case, outcome, detail)


def summary(results=None) -> str:
    results = RESULTS if results is None else results
    lines = []
    by_mode = collections.defaultdict(collections.Counter)
    for case, outcome, _ in results.values():
        kind = "valid/accept" if case.expect == "accept" else "bad"
        by_mode[(case.mode, kind)][outcome] += 1
    total = collections.Counter()
    for (mode, kind), c in sorted(by_mode.items()):
        lines.append(f"  {mode:5s} {kind:12s} {sum(c.values()):4d}: " +
                     ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
        if kind == "bad":
            total.update(c)
    n_bad = sum(total.values())
    head = (f"battery: {len(results)} cases over {len({c.fname for c, _, _ in results.values()})}"
            f" functions; {n_bad} bad-input cases: " +
            ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
    miss = missing_examples()
    tail = [f"  uncovered: {f} (add a valid example for {', '.join(p)})"
            for f, p in sorted(miss.items())]
    return "\n".join([head] + lines + tail)


def failures(results=None) -> str:
    results = RESULTS if results is None else results
    groups = collections.defaultdict(list)
    for case, outcome, detail in results.values():
        if outcome != expected_outcome(case):
            groups[case.fname].append(f"    {case.mode}:{case.param or 'valid'}:{case.case} -> "
                                      f"{outcome}: {detail}")
    out = []
    for f in sorted(groups):
        out.append(f"  {f} ({len(groups[f])})")
        out += groups[f]
    return "\n".join(out)


#: The pre-issue-12 API's names (``JAXML_BATTERY_OLD_API=1``: counting the "before" outcomes
#: on an old checkout): ``unroll=`` flags and the flows' ``log_target``.
OLD_API = {"left_at_default": {"unroll"}, "examples": {"log_target": _log_density},
           "roles": {"log_target": "callable"}}


def main() -> None:
    jax.config.update("jax_enable_x64", True)
    if os.environ.get("JAXML_BATTERY_OLD_API"):
        LEFT_AT_DEFAULT.update(OLD_API["left_at_default"])
        EXAMPLES.update(OLD_API["examples"])
        ROLES.update(OLD_API["roles"])
    # JAXML_BATTERY_FROM=<case id>: start there (resume a run); JAXML_BATTERY_SKIP=<id>,<id>:
    # record those as "hang" without running them (a LAPACK call on inf that never returns)
    start = os.environ.get("JAXML_BATTERY_FROM")
    skip = set(filter(None, os.environ.get("JAXML_BATTERY_SKIP", "").split(",")))
    cases = all_cases()
    if start:
        cases = cases[[c.id for c in cases].index(start):]
    for case in cases:
        if case.id in skip:
            record(case, "hang", "did not return (skipped)")
            print(case.id, "hang", "did not return (skipped)", flush=True)
            continue
        try:
            outcome, detail = run(case)
        except BaseException as e:  # noqa: BLE001
            outcome, detail = "obscure", f"battery crash {type(e).__name__}: {e}"
            traceback.print_exc()
        record(case, outcome, detail)
        if os.environ.get("JAXML_BATTERY_VERBOSE"):
            print(case.id, outcome, detail, flush=True)
    print(summary())
    print("failing cases:")
    print(failures())


if __name__ == "__main__":
    sys.exit(main())
