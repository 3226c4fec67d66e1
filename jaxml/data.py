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
  so one compilation serves all.

The streamed fits are separate host functions (Python loops over host data, outside
``jit``), named after the in-memory fit with ``_streamed`` appended and taking a chunk
source where the in-memory fit takes its data; everything else (sizes, keyword numbers,
the result type) is the in-memory fit's, and the answer equals it to rounding:

* ``kmeans.fit(key, X, k)`` → :func:`jaxml.kmeans.fit_streamed` ``(key, chunks, k)``
* ``gmm.fit(key, X, k)`` → :func:`jaxml.gmm.fit_streamed` ``(key, chunks, k)`` (EM, every
  covariance type)
* ``lda.fit(key, counts, K)`` → :func:`jaxml.lda.fit_streamed` ``(key, chunks, K)`` (batch
  variational EM over chunks of documents)
* ``pca.fit(X, k)`` → :func:`jaxml.pca.fit_streamed` ``(chunks, k)``
* ``gaussian.mle(X)`` → :func:`jaxml.gaussian.mle_streamed` ``(chunks)``
* ``linear.ridge(X, y, alpha)`` → :func:`jaxml.linear.ridge_streamed` ``(chunks, alpha)``
* ``linear.least_squares(X, y)`` → :func:`jaxml.linear.least_squares_streamed`
  ``(chunks)`` (a tall-skinny QR, as on a sharded X)
* ``naive_bayes.fit_gaussian(X, y, C)`` → :func:`jaxml.naive_bayes.fit_gaussian_streamed`
  ``(chunks, C)``, and ``fit_multinomial`` → ``fit_multinomial_streamed``

Supervised fits read (X, y) pairs: ``chunks(X, chunk_size, y=y)`` (two arrays or memory
maps read in step), or chunks that are ``(X_chunk, y_chunk)`` tuples.

Example:
    >>> import numpy as np, jax
    >>> from jaxml import data, kmeans
    >>> X = np.random.default_rng(0).normal(size=(1000, 2))
    >>> res = kmeans.fit_streamed(jax.random.key(0), data.chunks(X, chunk_size=256), 3)
"""

from __future__ import annotations

from jaxml._core.fold import Chunks, auto_axes, shard_rows

__all__ = ["Chunks", "chunks", "shard_rows", "auto_axes"]


def chunks(source, chunk_size: int | None = None, *, y=None) -> Chunks:
    """Rows streamed from the host in chunks of at most ``chunk_size`` rows.

    Args:
        source: an (n, d) NumPy array or memory map (``np.load(path, mmap_mode="r")``),
            a list/tuple of (mᵢ, d) arrays (or of tuples of arrays sharing their rows), or a
            zero-argument callable returning a fresh iterable of them (fits read their data
            once per iteration, so a bare generator is read only once).
        chunk_size: rows per padded chunk (default: the first chunk's length, or 65 536
            rows of an array).
        y: optional targets for the supervised fits, in any form ``source`` may take
            ((n,) array or memory map, list of (mᵢ,) arrays, callable), read in step with
            ``source``: each chunk becomes the pair ``(X_chunk, y_chunk)``; chunks whose
            row counts differ raise ``ValueError`` naming the chunk.

    Returns:
        A :class:`Chunks` source. Chunk widths and dtypes are checked as the chunks are read:
        a chunk that differs from the first raises ``ValueError`` naming its index.
    """
    return Chunks(source, chunk_size, y=y)
