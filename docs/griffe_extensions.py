"""Griffe extension for the API reference: jaxml's docstrings group parameters.

jaxml documents parameters that share a description on one line of a Google-style section,
``tol, max_iter: the stopping rule``; griffe's parser reads one name per entry. This
extension rewrites such an entry into one entry per name (each with the shared description)
before the docstring is parsed, so the reference lists every parameter and a stale name
still fails the strict build. Sphinx roles (``:func:`fit```, ``:class:`~jaxml.flows.Flow```)
render as inline code.

It also reads the ``Args:`` section of a class without an ``__init__`` of its own (an
``eqx.Module`` whose ``__init__`` the dataclass machinery generates from its fields, which
griffe cannot see) as its ``Attributes:``, the fields that are also the constructor's
arguments.
"""

from __future__ import annotations

import re

import griffe

_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|"
                      r"Other Parameters|Attributes):\s*$")
_GROUPED = re.compile(r"^(?P<names>\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)+)"
                      r"(?P<type>\s*\([^)]*\))?:(?P<rest>(\s.*)?)$")


_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|obj|exc|const|math):`~?([^`]+)`")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def expand_grouped_entries(text: str) -> str:
    """``a, b: text`` entries of the parameter/attribute sections as one entry per name."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        section = _SECTION.match(line)
        if not section:
            continue
        base = len(section.group(1))
        entry_indent = None
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
            line = lines[i]
            if not line.strip():
                out.append(line)
                i += 1
                continue
            if entry_indent is None:
                entry_indent = _indent(line)
            grouped = _GROUPED.match(line.strip()) if _indent(line) == entry_indent else None
            if not grouped:
                out.append(line)
                i += 1
                continue
            j = i + 1
            while j < len(lines) and lines[j].strip() and _indent(lines[j]) > entry_indent:
                j += 1
            continuation = lines[i + 1:j]
            for name in re.split(r"\s*,\s*", grouped.group("names")):
                out.append(" " * entry_indent + name + (grouped.group("type") or "") + ":"
                           + grouped.group("rest"))
                out.extend(continuation)
            i = j
    return "\n".join(out)


class GroupedParameters(griffe.Extension):
    """Expand grouped ``a, b: …`` entries before griffe parses a docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            text = _ROLE.sub(lambda m: f"``{m.group(1)}``", obj.docstring.value)
            obj.docstring.value = expand_grouped_entries(text)

    def on_class_members(self, *, cls: griffe.Class, **kwargs) -> None:
        if cls.docstring is not None and "__init__" not in cls.members:
            cls.docstring.value = re.sub(r"^(\s*)(Args|Arguments):\s*$", r"\1Attributes:",
                                         cls.docstring.value, flags=re.MULTILINE)
