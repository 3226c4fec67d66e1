r"""The one row fold: statistics summed over row blocks, and per-row maps in blocks.

Every chapter that streams its data (class moments, centroid sums, responsibilities'
sufficient statistics, Gram matrices, topic-word counts) writes its per-block statistic
once, as a pure function of a block of rows, and lets this module run it:

    fold_rows(stat, rows, block=b)      = Σ_blocks stat(rows[s:s+b], mask)
    map_rows(fn, rows, block=b)         = concat_blocks fn(rows[s:s+b], mask)
    fold_map_rows(fn, rows, block=b)    = both at once (one pass), fn → (stat, per_row)

``rows`` is a pytree of arrays sharing their leading (row) axis: X alone, or X with
responsibilities, labels, weights. Blocks are read with ``lax.dynamic_slice`` inside a
``lax.fori_loop``: nothing is copied or padded. With n rows and b = min(block, n), block
i starts at min(i·b, n − b): the last block is shifted back to end at row n, and
``mask`` (b,) bool marks the rows of the block not already seen in an earlier block.
**A statistic must weight its rows by ``mask``** (``jnp.where(mask, …, 0)``, a zero
weight, or an out-of-range segment id), so that every row is counted exactly once; a
per-row map may ignore it (an overlapping row is simply written again with the same
value). The same contract lets later back-ends run the same ``stat`` over zero-padded
blocks, over the shards of a row-sharded array (``shard_map`` + ``psum``), or over chunks
streamed from the host: the padded rows are the masked ones.

Cost: one pass over the rows; memory O(b · width) for the block's working arrays plus the
accumulator (and the (n, …) output of a map). Works under ``jit``, ``vmap`` and ``grad``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["fold_rows", "map_rows", "fold_map_rows", "n_rows"]


def n_rows(rows: Any) -> int:
    """The common leading size of the arrays of ``rows`` (static)."""
    leaves = jax.tree_util.tree_leaves(rows)
    if not leaves:
        raise ValueError("rows must hold at least one array")
    n = leaves[0].shape[0]
    for leaf in leaves[1:]:
        if leaf.shape[0] != n:
            raise ValueError(f"the arrays of rows must share their first axis, got {n} and "
                             f"{leaf.shape[0]}")
    return n


def _block_size(n: int, block) -> int:
    if block is None:
        return n
    return max(1, min(n, int(block)))


def _slice(rows, start, b):
    return jax.tree_util.tree_map(lambda a: lax.dynamic_slice_in_dim(a, start, b), rows)


def _run(fn, rows, block, with_stat: bool, with_map: bool):
    n = n_rows(rows)
    b = _block_size(n, block)
    n_blocks = -(-n // b)
    if n_blocks == 1:                      # one block: a static all-true mask (folded away)
        return fn(rows, jnp.ones((n,), bool))

    probe_rows = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct((b,) + a.shape[1:],
                                                                       a.dtype), rows)
    shapes = jax.eval_shape(fn, probe_rows, jax.ShapeDtypeStruct((b,), jnp.bool_))
    stat_shape, map_shape = shapes
    stat0 = (jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), stat_shape)
             if with_stat else None)
    out0 = (jax.tree_util.tree_map(lambda s: jnp.zeros((n,) + s.shape[1:], s.dtype), map_shape)
            if with_map else None)

    def body(i, carry):
        acc, out = carry
        start = jnp.minimum(i * b, n - b)
        mask = (start + jnp.arange(b)) >= i * b
        stat, per_row = fn(_slice(rows, start, b), mask)
        if with_stat:
            acc = jax.tree_util.tree_map(jnp.add, acc, stat)
        if with_map:
            out = jax.tree_util.tree_map(
                lambda o, p: lax.dynamic_update_slice_in_dim(o, p, start, 0), out, per_row)
        return acc, out

    return lax.fori_loop(0, n_blocks, body, (stat0, out0))


def fold_rows(stat: Callable[[Any, jax.Array], Any], rows: Any, *, block: int | None) -> Any:
    """Σ over row blocks of ``stat(block_rows, mask)``: a pytree of sums.

    Args:
        stat: pure ``(rows_block, mask) -> pytree``; ``rows_block`` has the structure of
            ``rows`` with b leading rows, ``mask`` (b,) bool marks the rows to count (a
            statistic must give masked rows zero weight).
        rows: pytree of arrays with a common leading axis n (n ≥ 1).
        block: static rows per block b (clipped to n); ``None`` for one block.

    Returns:
        The pytree ``stat`` returns, summed over the blocks (the accumulator has the
        dtypes ``stat`` returns: sum float32 products in float64 by returning float64).
    """
    return _run(lambda r, m: (stat(r, m), None), rows, block, True, False)[0]


def map_rows(fn: Callable[[Any, jax.Array], Any], rows: Any, *, block: int | None) -> Any:
    """Per-row outputs computed in row blocks: ``fn(block_rows, mask)`` returns a pytree of
    (b, …) arrays; the result is the same pytree with (n, …) arrays in row order.
    ``mask`` may be ignored. Memory O(b · width) working space plus the output."""
    return _run(lambda r, m: (None, fn(r, m)), rows, block, False, True)[1]


def fold_map_rows(fn: Callable[[Any, jax.Array], tuple[Any, Any]], rows: Any, *,
                  block: int | None) -> tuple[Any, Any]:
    """One pass doing both: ``fn(block_rows, mask) -> (stat, per_row)``; returns
    ``(Σ stat, per-row outputs (n, …))``. ``stat`` must respect ``mask``."""
    return _run(fn, rows, block, True, True)
