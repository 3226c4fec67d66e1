r"""Save and load results and models: a pickle-free ``.npz`` with a JSON header.

``jaxml.save(path, obj)`` writes any pytree that jaxml produces (result ``NamedTuple`` types,
``eqx.Module`` models such as a :class:`jaxml.flows.Flow`, a :class:`jaxml.vae.VAE` or a
:class:`jaxml.bayes_layers.BayesianMLP`, and tuples, lists, dicts, ``None`` and Python
scalars around them); ``jaxml.load(path)`` gives back an object of the same classes with
bit-identical arrays, so its predictions are the same.

The format (version 1.0) is a NumPy ``.npz`` archive (a zip of ``.npy`` files) with:

- ``__jaxml__``: the header, UTF-8 JSON stored as a ``uint8`` array, with the keys
  ``format`` (``"jaxml"``), ``format_version`` (``"1.0"``), ``jaxml_version``, ``type``
  (the saved object's class as ``"module:QualName"``) and ``tree``, the object's structure;
- ``a0``, ``a1``, …: one array per leaf, in the order of the tree, stored as plain NumPy
  arrays (no object arrays: the file is read with ``allow_pickle=False``).

Every node of ``tree`` is a JSON object whose ``kind`` is one of ``py`` (``None``, a
bool, int, float or string, in ``value``), ``array`` (``key`` of its entry, ``lib``
``"jax"`` / ``"numpy"`` / ``"numpy_scalar"``, ``dtype``, ``shape``, ``sha256`` of its bytes,
and ``prng_impl`` for a typed PRNG key), ``tuple`` / ``list`` (``items``), ``dict``
(``items``: ``[key, value]`` pairs, the key a ``py`` node), ``namedtuple`` / ``module``
(``class`` and ``fields``: ``[name, value]`` pairs in declaration order), ``function`` (a
named function, in ``name``), ``callable`` (any other callable, not stored), ``dtype``
(``value``) or ``class`` (a class held as a value, in ``name``).

Loading imports classes and functions only from the packages ``jaxml``, ``equinox``,
``optax`` and ``jax``, and only builds objects of those classes (a ``NamedTuple`` through
``_make``, an ``eqx.Module`` by setting its fields, as equinox's own unflattening does);
nothing in the file is executed. Two things cannot be stored by name and need a skeleton
``like=`` of the same type, e.g. a freshly built model with the same sizes:

- a callable that is not a named function of those packages (a ``lambda``, a
  ``functools.partial``, a function of your script), e.g. a model's activation;
- a class from another package, e.g. your own :class:`jaxml.flows.Bijection` subclass.

With ``like=``, the file must match the skeleton's structure (classes, field names,
container lengths, array shapes and dtypes) and the unstored callables are taken from it.

Compatibility rule: a file loads when its ``format_version`` has the reader's major.minor
(``1.0``) and its ``jaxml_version`` has the installed jaxml's major.minor (the API of a 0.x
release may change; ``check_version=False`` lifts this second check, the structural checks
remain). A file of another format or version, of another type than ``expected_type`` or
``like``, or a corrupt or truncated one raises a ``ValueError``, never a wrong model.

Example:
    >>> import os, tempfile
    >>> import jax.numpy as jnp
    >>> import jaxml
    >>> from jaxml.kernels import RBF
    >>> path = os.path.join(tempfile.mkdtemp(), "kernel.npz")
    >>> jaxml.save(path, {"kernel": RBF(gamma=jnp.asarray(0.5)), "note": "fitted on run 3"})
    >>> restored = jaxml.load(path)
    >>> restored["note"], float(restored["kernel"].gamma)
    ('fitted on run 3', 0.5)
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io as _pyio
import json
import os
import zipfile
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["save", "load", "read_header", "FORMAT_VERSION"]

FORMAT_VERSION = "1.0"
"""The version of the file format this module writes and reads (major.minor)."""

_FORMAT = "jaxml"
_HEADER_KEY = "__jaxml__"
# Packages whose classes and functions a file may name without a ``like=`` skeleton.
_TRUSTED = ("jaxml", "equinox", "optax", "jax")
# Public namespaces tried first for a function's name (stable across jax releases).
_FUNCTION_NAMESPACES = ("jax.nn", "jax.numpy", "jax.lax", "jax.scipy.special", "jax.random")
_BUILTINS = {"tuple": tuple, "list": list, "dict": dict, "NoneType": type(None), "bool": bool,
             "int": int, "float": float, "str": str}


# ============================================================================ names

def _jaxml_version() -> str:
    import jaxml

    return jaxml.__version__


def _resolve(path: str, *, allowed: tuple[str, ...] = _TRUSTED):
    """The object named ``"module:qual.name"``, imported only from ``allowed`` packages."""
    module_name, sep, qualname = path.partition(":")
    parts = module_name.split(".") + qualname.split(".")
    if (not sep or not qualname or module_name.split(".")[0] not in allowed
            or any(not p.isidentifier() or p.startswith("__") for p in parts)):
        raise ValueError(f"the file names {path!r}, which jaxml.load does not import (only "
                         f"names from the packages {', '.join(_TRUSTED)}; pass like= for others)")
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"the file names {path!r}, which does not exist in the installed "
                         f"packages ({err})") from None
    return obj


def _shortest_name(obj, module_name: str, qualname: str) -> str:
    """``"module:qualname"`` under the shortest parent package that exports the same object."""
    parts = module_name.split(".")
    for i in range(1, len(parts) + 1):
        candidate = ".".join(parts[:i])
        try:
            found = importlib.import_module(candidate)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            continue
        if found is obj:
            return f"{candidate}:{qualname}"
    return f"{module_name}:{qualname}"


def _class_name(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    if "<locals>" in cls.__qualname__:
        return f"{cls.__module__}:{cls.__qualname__}"
    return _shortest_name(cls, cls.__module__, cls.__qualname__)


def _function_name(fn) -> str | None:
    """A name under which ``fn`` itself can be imported from a trusted package, or None."""
    name = getattr(fn, "__name__", None)
    if isinstance(name, str) and name.isidentifier():
        for namespace in _FUNCTION_NAMESPACES:
            try:
                if getattr(importlib.import_module(namespace), name, None) is fn:
                    return f"{namespace}:{name}"
            except ImportError:
                continue
    module_name = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if (not isinstance(module_name, str) or not isinstance(qualname, str)
            or module_name.split(".")[0] not in _TRUSTED):
        return None
    if "<" in qualname:  # a lambda bound to a module-level name (equinox's _identity)
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return None
        qualname = next((k for k, v in vars(module).items() if v is fn and k.isidentifier()
                         and not k.startswith("__")), None)
        if qualname is None:
            return None
    path = _shortest_name(fn, module_name, qualname)
    try:
        return path if _resolve(path) is fn else None
    except ValueError:
        return None


# ============================================================================ save

def _is_namedtuple(obj) -> bool:
    return isinstance(obj, tuple) and hasattr(type(obj), "_fields")


def _module_fields(module: eqx.Module) -> list[str]:
    names = [f.name for f in dataclasses.fields(module)]
    extra = set(vars(module)) - set(names)
    if extra:
        raise TypeError(f"cannot save {type(module).__qualname__}: it holds attributes that are "
                        f"not dataclass fields ({sorted(extra)})")
    return names


class _Writer:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, x, lib: str) -> dict:
        node: dict[str, Any] = {"kind": "array", "lib": lib}
        if lib == "jax" and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            node["prng_impl"] = str(jax.random.key_impl(x))
            x = jax.random.key_data(x)
        data = np.asarray(x, order="C")
        if data.dtype.kind == "O":
            raise TypeError("cannot save an object array (the format holds no pickles)")
        node["dtype"] = str(data.dtype)
        node["shape"] = list(data.shape)
        if data.dtype.kind not in "biufcSU":  # bfloat16, float8, …: stored as raw bits
            data = data.view(np.dtype(f"u{data.dtype.itemsize}"))
        node["sha256"] = hashlib.sha256(data.tobytes()).hexdigest()
        node["key"] = key = f"a{len(self.arrays)}"
        self.arrays[key] = data
        return node

    def node(self, obj, where: str) -> dict:
        if obj is None or isinstance(obj, (bool, int, float, str)):
            if type(obj) not in (type(None), bool, int, float, str):  # e.g. an IntEnum
                raise TypeError(f"cannot save {where}: {type(obj).__qualname__} is a subclass of "
                                "a Python scalar type")
            return {"kind": "py", "value": obj}
        if isinstance(obj, jax.Array):
            return self.array(obj, "jax")
        if isinstance(obj, np.ndarray):
            return self.array(obj, "numpy")
        if isinstance(obj, np.generic):
            return self.array(np.asarray(obj), "numpy_scalar")
        if isinstance(obj, np.dtype):
            return {"kind": "dtype", "value": str(obj)}
        if _is_namedtuple(obj):
            return {"kind": "namedtuple", "class": _class_name(type(obj)),
                    "fields": [[name, self.node(value, f"{where}.{name}")]
                               for name, value in zip(type(obj)._fields, obj)]}
        if isinstance(obj, eqx.Module):
            return {"kind": "module", "class": _class_name(type(obj)),
                    "fields": [[name, self.node(getattr(obj, name), f"{where}.{name}")]
                               for name in _module_fields(obj)]}
        if type(obj) in (tuple, list):
            return {"kind": type(obj).__name__,
                    "items": [self.node(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if type(obj) is dict:
            items = []
            for k, v in obj.items():
                if k is not None and type(k) not in (bool, int, float, str):
                    raise TypeError(f"cannot save {where}: dict keys must be None, bool, int, "
                                    f"float or str, got {type(k).__qualname__}")
                items.append([{"kind": "py", "value": k}, self.node(v, f"{where}[{k!r}]")])
            return {"kind": "dict", "items": items}
        if isinstance(obj, type):
            return {"kind": "class", "name": _class_name(obj)}
        if callable(obj):
            name = _function_name(obj)
            if name is not None:
                return {"kind": "function", "name": name}
            return {"kind": "callable", "repr": repr(obj)[:200]}
        raise TypeError(f"cannot save {where}: objects of type {type(obj).__qualname__} are not "
                        "supported (NamedTuples, eqx.Modules, tuples, lists, dicts, arrays, "
                        "None, Python scalars and strings, dtypes and named functions are)")


def save(path, obj) -> None:
    """Write a result or model to ``path`` (a file name, used as given, or a binary file).

    Args:
        path: a ``str`` / ``os.PathLike`` (the file is replaced atomically; no suffix is
            added, ``.npz`` is the customary one) or a writable binary file object.
        obj: a pytree of ``NamedTuple`` and ``eqx.Module`` objects, tuples, lists, dicts (keys:
            ``None``, bool, int, float or str), JAX and NumPy arrays (typed PRNG keys
            included), NumPy scalars and dtypes, ``None``, Python scalars and strings, and
            callables (named ones by name; others are not stored, see :func:`load`'s
            ``like``).

    Raises:
        TypeError: an object that the format cannot hold (named in the message).

    Example:
        >>> import os, tempfile
        >>> import jax.numpy as jnp, jaxml
        >>> path = os.path.join(tempfile.mkdtemp(), "arrays.npz")
        >>> jaxml.save(path, (jnp.arange(3.0), None, "note"))
        >>> a, nothing, note = jaxml.load(path)
        >>> a.tolist(), nothing, note
        ([0.0, 1.0, 2.0], None, 'note')
    """
    __version__ = _jaxml_version()
    writer = _Writer()
    tree = writer.node(obj, "obj")
    header = {"format": _FORMAT, "format_version": FORMAT_VERSION, "jaxml_version": __version__,
              "type": _class_name(type(obj)), "n_arrays": len(writer.arrays), "tree": tree}
    payload = {_HEADER_KEY: np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
               **writer.arrays}
    if hasattr(path, "write"):
        np.savez(path, **payload)
        return
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **payload)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ============================================================================ load

def _version(text, what: str) -> tuple[int, int]:
    try:
        major, minor = str(text).split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        raise ValueError(f"the file's {what} {text!r} is not a version number") from None


def _open(path) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and the arrays of a file, or a ValueError saying why it cannot be read."""
    name = getattr(path, "name", path) if hasattr(path, "read") else os.fspath(path)
    try:
        if hasattr(path, "read"):
            path = _pyio.BytesIO(path.read())
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{name!s} is not a jaxml save file (not an .npz archive)")
        with archive:
            if _HEADER_KEY not in archive.files:
                raise ValueError(f"{name!s} is not a jaxml save file (no {_HEADER_KEY} header)")
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as err:
        if "jaxml" in str(err):
            raise
        raise ValueError(f"{name!s} is not a readable jaxml save file: {err}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, zipfile.LargeZipFile) as err:
        raise ValueError(f"{name!s} is not a readable jaxml save file (corrupt or truncated: "
                         f"{type(err).__name__}: {err})") from None
    raw = arrays.pop(_HEADER_KEY)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise TypeError
        header = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise TypeError
    except (TypeError, UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{name!s} is not a jaxml save file (unreadable header)") from None
    return header, arrays


def read_header(path) -> dict:
    """The JSON header of a file written by :func:`save` (format, versions, type, tree).

    Args:
        path: a file name or a readable binary file object.

    Returns:
        The header as a dict, after the same integrity checks as :func:`load` reads the
        file with (a corrupt file raises ``ValueError``); the versions are not checked.
    """
    return _open(path)[0]


class _Reader:
    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.used: set[str] = set()

    def fail(self, where: str, message: str):
        raise ValueError(f"cannot load {where}: {message}")

    def array(self, node: dict, like, where: str):  # like: the skeleton's leaf or _NO_LIKE
        key = node.get("key")
        if not isinstance(key, str) or key not in self.arrays or key in self.used:
            self.fail(where, f"array {key!r} is missing from the file")
        self.used.add(key)
        data = self.arrays[key]
        try:
            dtype = jnp.dtype(node["dtype"])
            shape = tuple(int(s) for s in node["shape"])
        except (KeyError, TypeError, ValueError):
            self.fail(where, f"the header holds a bad dtype/shape {node!r}")
        if hashlib.sha256(np.asarray(data, order="C").tobytes()).hexdigest() != node.get("sha256"):
            self.fail(where, f"array {key!r} is corrupt (its checksum does not match the header)")
        if data.dtype != dtype:
            if data.dtype.itemsize != dtype.itemsize or data.dtype.kind != "u":
                self.fail(where, f"array {key!r} is {data.dtype}, the header says {dtype}")
            data = data.view(dtype)
        if data.shape != shape:
            self.fail(where, f"array {key!r} has shape {data.shape}, the header says {shape}")
        lib = node.get("lib")
        if like is not _NO_LIKE:
            if not hasattr(like, "shape") or not hasattr(like, "dtype"):
                self.fail(where, f"the file holds an array, like= holds {type(like).__qualname__}")
            bits = like
            if isinstance(like, jax.Array) and jax.dtypes.issubdtype(like.dtype,
                                                                     jax.dtypes.prng_key):
                bits = jax.random.key_data(like)
            if tuple(bits.shape) != shape or bits.dtype != dtype:
                self.fail(where, f"the file holds a {dtype} array of shape {shape}, like= a "
                                 f"{like.dtype} array of shape {tuple(like.shape)}")
        if lib == "numpy":
            return data
        if lib == "numpy_scalar":
            return data[()]
        if lib != "jax":
            self.fail(where, f"unknown array library {lib!r}")
        out = jnp.asarray(data)
        if out.dtype != dtype:
            self.fail(where, f"the file holds {dtype}, which this JAX turns into {out.dtype} "
                             '(enable it with jax.config.update("jax_enable_x64", True))')
        if "prng_impl" in node:
            try:
                out = jax.random.wrap_key_data(out, impl=str(node["prng_impl"]))
            except (TypeError, ValueError) as err:
                self.fail(where, f"bad PRNG key ({err})")
        return out

    def cls(self, name, like, where: str, kind: str) -> type:
        if not isinstance(name, str):
            self.fail(where, "the header's tree is malformed")
        if like is not None:
            if _class_name(type(like)) != name:
                self.fail(where, f"the file holds {name}, like= holds {_class_name(type(like))}")
            return type(like)
        cls = _resolve(name)
        ok = (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")
              if kind == "namedtuple" else isinstance(cls, type) and issubclass(cls, eqx.Module))
        if not ok:
            self.fail(where, f"{name} is not a {kind} class")
        return cls

    def fields(self, node: dict, expected: list[str], where: str, name: str) -> list:
        fields = node.get("fields")
        if not isinstance(fields, list) or any(not isinstance(f, list) or len(f) != 2
                                               for f in fields):
            self.fail(where, "the header's tree is malformed")
        saved = [f[0] for f in fields]
        if saved != expected:
            self.fail(where, f"{name} has the fields {expected} in the installed jaxml, the file "
                             f"holds {saved} (saved by another version?)")
        return [f[1] for f in fields]

    def node(self, node, like, where: str):
        if not isinstance(node, dict):
            self.fail(where, "the header's tree is malformed")
        kind = node.get("kind")
        has_like = like is not _NO_LIKE
        if kind == "py":
            value = node.get("value")
            if value is not None and type(value) not in (bool, int, float, str):
                self.fail(where, "the header's tree is malformed")
            return value
        if kind == "array":
            return self.array(node, like, where)
        if kind in ("tuple", "list"):
            items = node.get("items")
            if not isinstance(items, list):
                self.fail(where, "the header's tree is malformed")
            if has_like and (type(like).__name__ != kind or len(like) != len(items)):
                self.fail(where, f"the file holds a {kind} of length {len(items)}, like= holds "
                                 f"{type(like).__qualname__}")
            values = [self.node(v, like[i] if has_like else _NO_LIKE, f"{where}[{i}]")
                      for i, v in enumerate(items)]
            return tuple(values) if kind == "tuple" else values
        if kind == "dict":
            items = node.get("items")
            if not isinstance(items, list) or any(not isinstance(i, list) or len(i) != 2
                                                  for i in items):
                self.fail(where, "the header's tree is malformed")
            keys = [self.node(k, _NO_LIKE, where) for k, _ in items]
            if has_like and (type(like) is not dict or list(like) != keys):
                self.fail(where, f"the file holds a dict with keys {keys}, like= holds "
                                 f"{list(like) if isinstance(like, dict) else type(like).__name__}")
            return {k: self.node(v, like[k] if has_like else _NO_LIKE, f"{where}[{k!r}]")
                    for k, (_, v) in zip(keys, items)}
        if kind == "namedtuple":
            cls = self.cls(node.get("class"), like if has_like else None, where, kind)
            values = self.fields(node, list(cls._fields), where, cls.__qualname__)
            return cls._make(self.node(v, getattr(like, f) if has_like else _NO_LIKE,
                                       f"{where}.{f}") for f, v in zip(cls._fields, values))
        if kind == "module":
            cls = self.cls(node.get("class"), like if has_like else None, where, kind)
            names = [f.name for f in dataclasses.fields(cls)]
            values = self.fields(node, names, where, cls.__qualname__)
            module = object.__new__(cls)
            for f, v in zip(names, values):
                object.__setattr__(module, f, self.node(
                    v, getattr(like, f) if has_like else _NO_LIKE, f"{where}.{f}"))
            return module
        if kind == "dtype":
            try:
                return np.dtype(jnp.dtype(node.get("value")))
            except TypeError:
                self.fail(where, f"unknown dtype {node.get('value')!r}")
        if kind == "class":
            if has_like:
                if not isinstance(like, type) or _class_name(like) != node.get("name"):
                    self.fail(where, f"the file holds the class {node.get('name')}, like= holds "
                                     f"{like!r}")
                return like
            cls = _resolve(str(node.get("name")))
            if not isinstance(cls, type):
                self.fail(where, f"{node.get('name')} is not a class")
            return cls
        if kind == "function":
            fn = _resolve(str(node.get("name")))
            if not callable(fn):
                self.fail(where, f"{node.get('name')} is not callable")
            if has_like and like is not fn:
                self.fail(where, f"the file holds the function {node.get('name')}, like= holds "
                                 f"{like!r}")
            return fn
        if kind == "callable":
            if not has_like:
                self.fail(where, f"the file holds a callable that cannot be stored by name "
                                 f"({node.get('repr')}); pass like=<an object of the same "
                                 "type> to take it from there")
            if not callable(like):
                self.fail(where, f"the file holds a callable, like= holds {like!r}")
            return like
        self.fail(where, f"unknown node kind {kind!r} in the header")


_NO_LIKE = object()


def load(path, *, like=None, expected_type: type | None = None, check_version: bool = True):
    """Read a result or model written by :func:`save`.

    Args:
        path: a file name or a readable binary file object.
        like: optional skeleton of the same type (e.g. a model freshly built with the same
            sizes and activation). Required when the file holds a callable that is not a
            named function of ``jax``/``jaxml``/``equinox``/``optax`` (a lambda, a
            ``functools.partial``, your own function) or a class from another package; the
            file must then match its structure, and those callables and classes come from it.
        expected_type: optional class the saved object must be (or subclass).
        check_version: require the file's ``jaxml_version`` to have the installed jaxml's
            major.minor (default). The format version must always have this reader's
            major.minor (:data:`FORMAT_VERSION`).

    Returns:
        The object, of the saved classes, with bit-identical arrays (JAX arrays come back as
        JAX arrays on the default device, NumPy arrays as NumPy arrays).

    Raises:
        ValueError: the file is corrupt, truncated or not a jaxml file; its format or jaxml
            version does not match; it holds another type than ``expected_type`` or
            ``like``; or it names a class or function that is not installed.

    Example:
        A model whose activation is a lambda needs a skeleton to come back:

        >>> import os, tempfile
        >>> import jax, equinox as eqx, jaxml
        >>> make = lambda key: eqx.nn.MLP(2, 1, 8, 1, activation=lambda x: x ** 2, key=key)
        >>> model = make(jax.random.key(0))
        >>> path = os.path.join(tempfile.mkdtemp(), "mlp.npz")
        >>> jaxml.save(path, model)
        >>> restored = jaxml.load(path, like=make(jax.random.key(1)))
        >>> bool((restored(jax.numpy.ones(2)) == model(jax.numpy.ones(2))).all())
        True
    """
    __version__ = _jaxml_version()
    header, arrays = _open(path)
    file_format = _version(header.get("format_version"), "format version")
    if file_format != _version(FORMAT_VERSION, "format version"):
        raise ValueError(f"the file has format version {header.get('format_version')}, this "
                         f"jaxml reads format version {FORMAT_VERSION} (same major.minor)")
    if check_version and (_version(header.get("jaxml_version"), "jaxml version")
                          != _version(__version__, "jaxml version")):
        raise ValueError(f"the file was written by jaxml {header.get('jaxml_version')}, this is "
                         f"jaxml {__version__} (pass check_version=False to load it anyway; "
                         "the structure is still checked)")
    saved_type = header.get("type")
    if expected_type is not None:
        if not isinstance(expected_type, type):
            raise TypeError(f"expected_type must be a class, got {expected_type!r}")
        actual = _BUILTINS.get(saved_type) if saved_type in _BUILTINS else None
        if actual is None:
            try:
                actual = _resolve(str(saved_type))
            except ValueError:
                actual = None
            if like is not None and _class_name(type(like)) == saved_type:
                actual = type(like)
        if not (isinstance(actual, type) and issubclass(actual, expected_type)):
            raise ValueError(f"the file holds a {saved_type}, not a "
                             f"{_class_name(expected_type)}")
    if like is not None and _class_name(type(like)) != saved_type:
        raise ValueError(f"the file holds a {saved_type}, like= is a {_class_name(type(like))}")
    if header.get("n_arrays") != len(arrays):
        raise ValueError(f"the file holds {len(arrays)} arrays, its header says "
                         f"{header.get('n_arrays')} (corrupt file)")
    reader = _Reader(arrays)
    obj = reader.node(header.get("tree"), _NO_LIKE if like is None else like, "obj")
    if reader.used != set(arrays):
        raise ValueError(f"the file holds arrays its header does not use "
                         f"({sorted(set(arrays) - reader.used)}); corrupt file")
    return obj
