"""Data sources for fits that outgrow one device or one machine's memory.

Row-wise statistics in jaxml (Gram matrices, centroid sums, responsibilities, class
moments, topic-word counts) go through one row fold that runs three ways; the fit does not
know which:

* **In memory, in row blocks** on one device: pass an (n, d) array.
* **Row-sharded over a device mesh**: pass ``shard_rows(X, mesh)`` (any mesh, e.g.
  ``jax.make_mesh((n_devices,), ("data",))``; any row count), or a ``jax.Array`` whose rows
  are split over a mesh with ``Auto`` axes, e.g. ``jax.device_put(X, NamedSharding(mesh,
  P("data")))`` with ``mesh = jax.make_mesh((n_devices,), ("data",),
  axis_types=(AxisType.Auto,))`` (``auto_axes`` retypes an array placed on an ``Explicit``
  mesh, ``jax.make_mesh``'s default, without moving it), or call the fit under
  ``jax.set_mesh(mesh)``. Each device folds its shard and the partial sums are
  added with ``psum``; a row count that does not divide the number of devices is padded
  with masked rows that are never counted. Under ``jax.distributed`` (several processes or
  hosts) build the global array with ``jax.make_array_from_process_local_data``.
* **Streamed from the host in chunks** (:func:`chunks`): data larger than device memory; a
  memory-mapped ``.npy`` or any re-iterable of arrays, each chunk zero-padded to one size
  so one compilation serves all. The fits that take a chunk source are named
  ``fit_streamed`` (e.g. :func:`jaxml.kmeans.fit_streamed`).

Example:
    >>> import numpy as np, jax
    >>> from jaxml import data, kmeans
    >>> X = np.random.default_rng(0).normal(size=(1000, 2))
    >>> res = kmeans.fit_streamed(jax.random.key(0), data.chunks(X, chunk_size=256), 3)
"""

from __future__ import annotations

from jaxml._core.fold import Chunks, auto_axes, shard_rows

__all__ = ["Chunks", "chunks", "shard_rows", "auto_axes"]


def chunks(source, chunk_size: int | None = None) -> Chunks:
    """Rows streamed from the host in chunks of at most ``chunk_size`` rows.

    Args:
        source: an (n, d) NumPy array or memory map (``np.load(path, mmap_mode="r")``),
            a list/tuple of (mᵢ, d) arrays (or of tuples of arrays sharing their rows), or a
            zero-argument callable returning a fresh iterable of them (fits read their data
            once per iteration, so a bare generator is read only once).
        chunk_size: rows per padded chunk (default: the first chunk's length, or 65 536
            rows of an array).

    Returns:
        A :class:`Chunks` source. Chunk widths and dtypes are checked as the chunks are read:
        a chunk that differs from the first raises ``ValueError`` naming its index.
    """
    return Chunks(source, chunk_size)
