"""The contract every chapter keeps (DESIGN.md), checked by walking the public API.

Nothing here is a hand-kept list: chapters are discovered with ``pkgutil``, fits and steps
by their names and signatures, and their result types by their annotations.

* The public API is a module's ``__all__`` where it has one, else its non-underscore
  functions.
* A public function with a ``max_iter`` parameter is an iterative fit: it returns a
  NamedTuple with ``n_iter``, ``converged`` and ``trace``. One with ``n_steps`` is
  gradient-trained when its name starts with ``fit``: it returns ``jaxml._core.TrainResult`` itself.
* A field named after a quantity (``elbo``, ``inertia``, ``lower_bound``, ``loss``,
  ``log_likelihood``) is documented as a scalar ``()``: the history lives in ``trace``.
* A public ``step``/``*_step`` is ``step(state, ...)`` or ``step(key, state, ...)`` and
  returns ``(state, info)`` with ``info.error`` and ``info.value``.
* A ``key`` parameter comes first; no public function takes ``unroll`` (it is
  ``adjoint=``).
* Layering: ``_core`` imports no chapter (import-linter), no module imports another
  module's private names.
"""

from __future__ import annotations

import ast
import configparser
import inspect
import pathlib
import pkgutil
import re
import typing

import pytest

import jaxml
from jaxml._core import TrainResult

from _battery import is_namedtuple, modules, public_functions

ROOT = pathlib.Path(jaxml.__file__).parent
QUANTITIES = ("elbo", "inertia", "lower_bound", "loss", "log_likelihood")


MODULES = modules(skip=())
FUNCTIONS = public_functions(skip=())


def _hints(fn):
    return typing.get_type_hints(fn)


def _iterative_fits():
    return [(n, f) for n, f in FUNCTIONS if "max_iter" in inspect.signature(f).parameters
            and not n.rsplit(".", 1)[-1].endswith("_step")]


def _trained_fits():
    return [(n, f) for n, f in FUNCTIONS if "n_steps" in inspect.signature(f).parameters
            and n.rsplit(".", 1)[-1].startswith("fit")]


def _steps():
    """Loop steps: ``step`` and ``*_step``, except EM's halves ``e_step``/``m_step``."""
    return [(n, f) for n, f in FUNCTIONS if re.fullmatch(r"(.*_)?step", n.rsplit(".", 1)[-1])
            and n.rsplit(".", 1)[-1] not in ("e_step", "m_step")]


def test_discovery_finds_the_chapters():
    names = {m.__name__ for m in MODULES}
    assert {"jaxml.kmeans", "jaxml.gmm", "jaxml.svm", "jaxml.vi", "jaxml.flows"} <= names
    assert len(_iterative_fits()) >= 10 and len(_trained_fits()) >= 3 and len(_steps()) >= 8


@pytest.mark.parametrize("name,fn", _iterative_fits(), ids=[n for n, _ in _iterative_fits()])
def test_iterative_fit_vocabulary(name, fn):
    ret = _hints(fn).get("return")
    assert is_namedtuple(ret), f"{name} must be annotated with its NamedTuple result, got {ret}"
    missing = {"n_iter", "converged", "trace"} - set(ret._fields)
    assert not missing, f"{name} -> {ret.__name__} lacks {sorted(missing)}"


@pytest.mark.parametrize("name,fn", _trained_fits(), ids=[n for n, _ in _trained_fits()])
def test_trained_fit_returns_the_shared_result(name, fn):
    assert _hints(fn).get("return") is TrainResult, f"{name} must return jaxml._core.TrainResult"


def _result_types():
    out = {}
    for name, fn in FUNCTIONS:
        ret = _hints(fn).get("return")
        for t in typing.get_args(ret) or (ret,):
            if is_namedtuple(t) and t.__module__.startswith("jaxml"):
                out[f"{t.__module__}.{t.__qualname__}"] = t
    return sorted(out.items())


@pytest.mark.parametrize("name,cls", _result_types(), ids=[n for n, _ in _result_types()])
def test_quantity_fields_are_documented_scalars(name, cls):
    doc = inspect.getdoc(cls) or ""
    for field in set(cls._fields) & set(QUANTITIES):
        m = re.search(rf"^\s*{field}:\s*(\S+)", doc, re.M)
        assert m, f"{name}.{field} is not documented in the class docstring"
        assert m.group(1).startswith("()"), (
            f"{name}.{field} must hold the final scalar, documented '{field}: () ...'; "
            f"got '{m.group(0).strip()}' (the history belongs in 'trace')")


@pytest.mark.parametrize("name,fn", _steps(), ids=[n for n, _ in _steps()])
def test_step_convention(name, fn):
    params = list(inspect.signature(fn).parameters)
    first = params[1] if params and params[0] == "key" else params[0]
    assert first == "state", f"{name}{tuple(params)}: step(state, ...) or step(key, state, ...)"
    ret = _hints(fn).get("return")
    args = typing.get_args(ret)
    assert typing.get_origin(ret) is tuple and len(args) == 2, f"{name} must return (state, info)"
    info = args[1]
    assert is_namedtuple(info) and {"error", "value"} <= set(info._fields), (
        f"{name}'s info {info} must be a NamedTuple with 'error' and 'value'")


@pytest.mark.parametrize("name,fn", FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_key_first_and_no_unroll(name, fn):
    params = list(inspect.signature(fn).parameters)
    assert "unroll" not in params, f"{name} takes unroll=: use adjoint=Unrolled()"
    if "key" in params:
        assert params[0] == "key", f"{name}: the random key comes first, got {params}"


def test_import_linter_contracts_pass_and_list_every_chapter():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT.parent / ".importlinter")
    listed = set(cfg["importlinter:contract:core-is-private-plumbing"]["forbidden_modules"].split())
    chapters = {f"jaxml.{m.name}" for m in pkgutil.iter_modules([str(ROOT)])
                if not m.name.startswith("_")}
    assert listed == chapters, f"update .importlinter: {sorted(chapters ^ listed)}"
    from importlinter.cli import lint_imports
    assert lint_imports(config_filename=str(ROOT.parent / ".importlinter"), no_cache=True) == 0


def test_no_private_cross_imports():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        mod = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level or not (node.module or "").startswith("jaxml"):
                continue
            target = node.module
            if target.startswith("jaxml._core") or target.startswith(mod + ".") or target == mod:
                continue
            bad += [f"{path.name}:{node.lineno} {target}.{a.name}" for a in node.names
                    if a.name.startswith("_")]
            if any(p.startswith("_") for p in target.split(".")[1:]):
                bad.append(f"{path.name}:{node.lineno} private module {target}")
    assert not bad, "private cross-imports:\n" + "\n".join(bad)
