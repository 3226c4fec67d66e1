"""The API reference and the docstring examples.

- ``mkdocs build --strict`` (what ``make docs`` runs) succeeds: every docstring parses, every
  reference resolves; it runs when mkdocs-material and mkdocstrings are installed (the
  ``test`` and ``docs`` extras have them).
- Every public module of ``jaxml`` has its page in the reference.
- Every ``>>>`` example in a docstring of ``jaxml`` runs as a doctest. Only modules whose
  source holds ``>>>`` are imported, so the scan costs nothing for the others. To add an
  example, write it in a docstring (an ``Example:`` section in Google style) with its
  expected output; it runs in float64 (``tests/conftest.py``).
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import jaxml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(jaxml.__file__).resolve().parent


def _modules_with_examples() -> list[str]:
    """Modules of jaxml whose source holds '>>>' (read from disk: nothing is imported)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, module_name) if t.examples]
    assert tests, f"{module_name} holds '>>>' but no doctest was found"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {module_name} failed"


def _mkdocs_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "material"))


def test_every_public_module_has_a_page():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for name in jaxml.__all__:
        if importlib.util.find_spec(f"jaxml.{name}") is None:
            continue
        page = ROOT / "docs" / "api" / f"{name}.md"
        assert page.exists(), f"jaxml.{name} has no page docs/api/{name}.md"
        assert f"::: jaxml.{name}" in page.read_text(encoding="utf-8")
        assert f"api/{name}.md" in nav, f"docs/api/{name}.md is not in mkdocs.yml's nav"


@pytest.mark.skipif(not _mkdocs_installed(), reason="mkdocs-material / mkdocstrings not installed")
def test_reference_builds_in_strict_mode(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(site)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "Quick start" in home  # the README is the home page
    io_page = (site / "api" / "io.html").read_text(encoding="utf-8")
    assert 'id="jaxml.io.save"' in io_page and 'id="jaxml.io.load"' in io_page


@pytest.mark.skipif(importlib.util.find_spec("griffe") is None, reason="griffe not installed")
def test_griffe_extension_expands_grouped_parameters():
    spec = importlib.util.spec_from_file_location("griffe_extensions",
                                                  ROOT / "docs" / "griffe_extensions.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    text = ("Fit.\n\nArgs:\n    X: (n, d) data.\n    tol, max_iter: the stopping rule,\n"
            "        read at every step.\n\nReturns:\n    a, b: not touched.\n")
    assert ext.expand_grouped_entries(text) == (
        "Fit.\n\nArgs:\n    X: (n, d) data.\n    tol: the stopping rule,\n"
        "        read at every step.\n    max_iter: the stopping rule,\n"
        "        read at every step.\n\nReturns:\n    a, b: not touched.")
