r"""Normalizing flows: planar and radial layers, forward and reverse KL training.

A flow is an invertible map between data :math:`x \in \mathbb R^d` and a base variable
:math:`z \sim p_z = \mathcal N(0, I_d)`. By the change of variables, for :math:`f: x \mapsto z`

.. math::

    \log p_x(x) = \log p_z(f(x)) + \log\lvert\det J_f(x)\rvert,

and for the generative map :math:`g = f^{-1}: z \mapsto x`,
:math:`\log q(g(z)) = \log p_z(z) - \log\lvert\det J_g(z)\rvert`.

A stack of layers :math:`f = f_L \circ \dots \circ f_1` adds its log-determinants.

**Planar layer** (Rezende & Mohamed 2015): :math:`f(z) = z + \hat u\, h(w^\top z + b)`, with
:math:`h = \tanh` and

.. math::

    \log\lvert\det J_f(z)\rvert = \log\lvert 1 + h'(w^\top z + b)\, \hat u^\top w\rvert .

It is invertible iff :math:`w^\top \hat u \ge -1`, enforced for any raw :math:`u` by
:math:`\hat u = u + (m(w^\top u) - w^\top u)\, w / \lVert w\rVert^2`,
:math:`m(x) = -1 + \operatorname{softplus}(x)` (so :math:`w^\top \hat u = m(w^\top u) > -1`).
There is no closed-form inverse: writing :math:`s = w^\top z`, the equation
:math:`s + w^\top \hat u\,\tanh(s + b) = w^\top y` is monotone in :math:`s`, with its root in
:math:`[w^\top y - |w^\top\hat u|,\ w^\top y + |w^\top\hat u|]`; it is solved by safeguarded
Newton/bisection and then :math:`z = y - \hat u \tanh(s + b)`.

**Radial layer**: :math:`f(z) = z + \beta\, (z - z_0) / (\alpha + r)`, :math:`r = \lVert z - z_0\rVert`,
:math:`\alpha > 0`, :math:`\beta \ge -\alpha`; its inverse has a closed form (a quadratic in r).
**Affine layer**: :math:`f(z) = Lz + m`, L lower triangular with a positive diagonal; placed
before planar layers it lets a flow represent any Gaussian exactly.

**Two directions, two losses.** A :class:`Flow` is a base distribution and a stack of layers
with a ``direction``:

- ``"normalizing"``: the layers map data to noise, :math:`x \to z`. ``log_prob`` is exact and
  cheap (no inverse), which is what the *forward KL* needs: given samples of :math:`\pi`,
  minimize :math:`-\mathbb E_\pi[\log p_z(f(x)) + \log\lvert\det J_f(x)\rvert]`
  (:func:`forward_kl_loss`). Sampling uses the numerical inverse.
- ``"generative"``: the layers map noise to data, :math:`z \to x`. ``sample`` and
  ``sample_and_log_prob`` are exact and cheap, which is what the *reverse KL* needs: given an
  unnormalized :math:`\log\pi`, minimize
  :math:`\mathbb E_{p_z}[\log p_z(z) - \log\lvert\det J_g(z)\rvert - \log\pi(g(z))]`
  (:func:`reverse_kl_loss`). ``log_prob`` of a given point uses the numerical inverse (with
  implicit-function gradients).

Reference: D. J. Rezende and S. Mohamed, "Variational Inference with Normalizing Flows",
ICML 2015 (layers, appendix A.1 for :math:`\hat u`, Table 1 for the energies U1–U4).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxml._core.checks import (
    as_float_array, check_int_in_range, check_positive,
)
from jaxml._core.train import train

__all__ = [
    "Planar", "Radial", "Affine", "Flow", "planar_flow", "radial_flow", "stack_layers",
    "FitResult",
    "forward_kl_loss", "reverse_kl_loss", "fit", "standard_normal_log_prob",
    "U1", "U2", "U3", "U4", "ENERGIES",
]

_DIRECTIONS = ("generative", "normalizing")


# ----------------------------------------------------------------------------- helpers


def _safe_sq_norm_ratio(w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(w / ||w||², ||w||² > 0) with finite gradients at w = 0."""
    sq = jnp.sum(w * w)
    nonzero = sq > 0
    return jnp.where(nonzero, w / jnp.where(nonzero, sq, 1.0), 0.0), nonzero


def _safe_norm(v: jax.Array) -> jax.Array:
    """||v|| with a zero (not NaN) gradient at v = 0."""
    sq = jnp.sum(v * v)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    r""":math:`\log \mathcal N(z; 0, I_d)` summed over the last axis; z: (..., d) → (...)."""
    d = z.shape[-1]
    return -0.5 * jnp.sum(z * z, axis=-1) - 0.5 * d * math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------- layers


class Planar(eqx.Module):
    r"""Planar layer :math:`f(z) = z + \hat u \tanh(w^\top z + b)` (invertible for any raw u).

    Attributes:
        w: (d,) direction.
        u: (d,) raw (unconstrained) scale; the layer uses :attr:`u_hat`.
        b: () bias.
        inverse_iters: static number of safeguarded Newton/bisection iterations of the
            numerical inverse.

    Methods act on one point ``z`` of shape (d,); ``jax.vmap`` them for a batch.
    """

    w: jax.Array
    u: jax.Array
    b: jax.Array
    inverse_iters: int = eqx.field(static=True, default=40)

    @classmethod
    def init(cls, key: jax.Array, dim: int, *, scale: float = 0.01, dtype=None) -> "Planar":
        r"""A layer close to the identity for small ``scale``: :math:`w \sim \mathcal N(0, I/d)`,
        and raw u chosen so that :math:`\hat u \sim \mathcal N(0, \text{scale}^2 I)` (raw u
        carries the component along w that the constraint maps back; where the draw has
        :math:`w^\top\hat u < -1/2` it is moved along w to :math:`-1/2`).
        """
        dtype = dtype or jnp.result_type(float)
        kw, ku, kb = jax.random.split(key, 3)
        w = jax.random.normal(kw, (dim,), dtype) / math.sqrt(dim)
        u_hat = scale * jax.random.normal(ku, (dim,), dtype)
        # raw u with wᵀu = m⁻¹(a), m⁻¹(y) = softplus⁻¹(y + 1) = log(expm1(y + 1)), so that the
        # constraint maps it to û (moved along w where needed so that a = wᵀû ≥ -1/2).
        a = w @ u_hat
        a_ok = jnp.maximum(a, -0.5)
        u = u_hat + (jnp.log(jnp.expm1(a_ok + 1.0)) - a) * w / jnp.sum(w * w)
        b = scale * jax.random.normal(kb, (), dtype)
        return cls(w, u, b)

    @property
    def dim(self) -> int:
        return self.w.shape[-1]

    def wu_hat(self) -> jax.Array:
        r""":math:`w^\top \hat u = m(w^\top u) = -1 + \operatorname{softplus}(w^\top u) > -1`,
        computed directly (no rounding from the projection)."""
        return -1.0 + jax.nn.softplus(self.w @ self.u)

    @property
    def u_hat(self) -> jax.Array:
        r""":math:`\hat u = u + (m(w^\top u) - w^\top u)\, w / \lVert w\rVert^2`, shape (d,).

        When :math:`w = 0` the layer is a translation (invertible for any u) and
        :math:`\hat u = u`."""
        wu = self.w @ self.u
        direction, _ = _safe_sq_norm_ratio(self.w)
        return self.u + (self.wu_hat() - wu) * direction

    def _log_det_at(self, s: jax.Array) -> jax.Array:
        # 1 + h'(s) wᵀû = t² + softplus(wᵀu) (1 - t²), t = tanh(s): positive, no cancellation.
        t = jnp.tanh(s)
        return jnp.log(t * t + jax.nn.softplus(self.w @ self.u) * (1.0 - t * t))

    def forward_and_log_det(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        r"""``(f(z), log|det J_f(z)|)``: z (d,) → ((d,), ())."""
        s = self.w @ z + self.b
        return z + self.u_hat * jnp.tanh(s), self._log_det_at(s)

    def forward(self, z: jax.Array) -> jax.Array:
        """f(z), z: (d,) → (d,)."""
        return self.forward_and_log_det(z)[0]

    def log_det(self, z: jax.Array) -> jax.Array:
        r""":math:`\log\lvert 1 + h'(w^\top z + b)\,\hat u^\top w\rvert`, z: (d,) → ()."""
        return self._log_det_at(self.w @ z + self.b)

    def _solve_s(self, c: jax.Array) -> jax.Array:
        r"""Root :math:`s` of :math:`g(s) = s + a\tanh(s + b) - c` (:math:`a = w^\top\hat u`)."""
        a = self.wu_hat()
        b = self.b

        def g(s):
            return s + a * jnp.tanh(s + b) - c

        def dg(s):
            t = jnp.tanh(s + b)
            return 1.0 + a * (1.0 - t * t)

        a0, b0, c0 = (lax.stop_gradient(v) for v in (a, b, c))

        def g0(s):
            return s + a0 * jnp.tanh(s + b0) - c0

        def dg0(s):
            t = jnp.tanh(s + b0)
            return 1.0 + a0 * (1.0 - t * t)

        def body(_, state):
            s, lo, hi = state
            gs = g0(s)
            lo = jnp.where(gs < 0, s, lo)
            hi = jnp.where(gs > 0, s, hi)
            d = dg0(s)
            newton = s - gs / jnp.where(d > 0, d, 1.0)
            ok = (d > 0) & (newton > lo) & (newton < hi)
            return jnp.where(ok, newton, 0.5 * (lo + hi)), lo, hi

        spread = jnp.abs(a0)
        s0 = jnp.clip(c0 - a0 * jnp.tanh(c0 + b0), c0 - spread, c0 + spread)
        s, _, _ = lax.fori_loop(0, self.inverse_iters, body, (s0, c0 - spread, c0 + spread))
        s = lax.stop_gradient(s)
        # One Newton step on the live parameters: exact value, implicit-function gradient
        # ds/dθ = -(∂g/∂θ)/g'(s).
        d = dg(s)
        return s - g(s) / jnp.where(d > 0, d, 1.0)

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        r"""``(f⁻¹(y), log|det J_{f⁻¹}(y)|)`` by 1-D root finding along w: y (d,) → ((d,), ())."""
        s_lin = self._solve_s(self.w @ y)            # s = wᵀz
        z = y - self.u_hat * jnp.tanh(s_lin + self.b)
        return z, -self._log_det_at(s_lin + self.b)

    def inverse(self, y: jax.Array) -> jax.Array:
        """f⁻¹(y), y: (d,) → (d,)."""
        return self.inverse_and_log_det(y)[0]


class Radial(eqx.Module):
    r"""Radial layer :math:`f(z) = z + \beta (z - z_0)/(\alpha + r)`, :math:`r = \lVert z - z_0\rVert`.

    :math:`\alpha = \operatorname{softplus}(\alpha_{raw}) > 0` and
    :math:`\beta = -\alpha + \operatorname{softplus}(\beta_{raw}) \ge -\alpha` (invertible).

    .. math::

        \log\lvert\det J_f\rvert = (d - 1)\log(1 + \beta h) + \log(1 + \beta h + \beta h' r),
        \quad h = 1/(\alpha + r).

    Attributes: z0 (d,), alpha_raw (), beta_raw (). Methods act on one point (d,).
    """

    z0: jax.Array
    alpha_raw: jax.Array
    beta_raw: jax.Array

    @classmethod
    def init(cls, key: jax.Array, dim: int, *, scale: float = 0.01, dtype=None) -> "Radial":
        """A layer close to the identity for small ``scale``: α = 1, β ~ N(0, scale²) clipped at
        -1/2, centre z0 ~ N(0, I)."""
        dtype = dtype or jnp.result_type(float)
        kz, kb = jax.random.split(key)
        z0 = jax.random.normal(kz, (dim,), dtype)
        alpha_raw = jnp.asarray(math.log(math.expm1(1.0)), dtype)       # α = 1
        # β = -α + softplus(β_raw) ≈ scale·ε  →  softplus(β_raw) = 1 + scale·ε
        beta = jnp.maximum(scale * jax.random.normal(kb, (), dtype), -0.5)
        beta_raw = jnp.log(jnp.expm1(1.0 + beta))
        return cls(z0, alpha_raw, beta_raw)

    @property
    def dim(self) -> int:
        return self.z0.shape[-1]

    @property
    def alpha(self) -> jax.Array:
        return jax.nn.softplus(self.alpha_raw)

    @property
    def beta(self) -> jax.Array:
        return -self.alpha + jax.nn.softplus(self.beta_raw)

    def _log_det_at(self, r: jax.Array) -> jax.Array:
        alpha, ab = self.alpha, jax.nn.softplus(self.beta_raw)      # ab = α + β ≥ 0
        d = self.dim
        # 1 + βh = (r + α + β)/(α + r);  1 + βh + βh'r = (r² + 2αr + α(α+β))/(α + r)²
        term1 = jnp.log(r + ab) - jnp.log(alpha + r)
        term2 = jnp.log(r * r + 2.0 * alpha * r + alpha * ab) - 2.0 * jnp.log(alpha + r)
        return (d - 1) * term1 + term2

    def forward_and_log_det(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(f(z), log|det J_f(z)|)``: z (d,) → ((d,), ())."""
        diff = z - self.z0
        r = _safe_norm(diff)
        y = z + self.beta * diff / (self.alpha + r)
        return y, self._log_det_at(r)

    def forward(self, z: jax.Array) -> jax.Array:
        return self.forward_and_log_det(z)[0]

    def log_det(self, z: jax.Array) -> jax.Array:
        return self._log_det_at(_safe_norm(z - self.z0))

    def inverse_and_log_det(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        r"""Closed-form inverse: :math:`r^2 + (\alpha + \beta - r_y) r - \alpha r_y = 0`."""
        alpha, ab = self.alpha, jax.nn.softplus(self.beta_raw)
        diff = y - self.z0
        ry = _safe_norm(diff)
        p = ab - ry
        disc = jnp.sqrt(p * p + 4.0 * alpha * ry)
        # the positive root, in the form without cancellation for either sign of p
        r = jnp.where(p > 0, 2.0 * alpha * ry / jnp.where(p > 0, p + disc, 1.0), 0.5 * (disc - p))
        z = self.z0 + diff * (alpha + r) / (ab + r)
        return z, -self._log_det_at(r)

    def inverse(self, y: jax.Array) -> jax.Array:
        return self.inverse_and_log_det(y)[0]


# ----------------------------------------------------------------------------- the flow


class Affine(eqx.Module):
    r"""Affine layer :math:`f(z) = L z + m`, L lower triangular with diagonal :math:`e^{s}` > 0.

    :math:`\log\lvert\det J_f\rvert = \sum_j s_j`; the inverse is a triangular solve. Put
    in front of planar layers it lets a flow represent any Gaussian exactly.

    Attributes: shift m (d,), log_diag s (d,), lower (d, d) (only the strictly lower part is
    used). Methods act on one point (d,).
    """

    shift: jax.Array
    log_diag: jax.Array
    lower: jax.Array

    @classmethod
    def init(cls, key: jax.Array, dim: int, *, scale: float = 0.01, dtype=None) -> "Affine":
        """The identity map (``key`` and ``scale`` unused, kept for a uniform signature)."""
        dtype = dtype or jnp.result_type(float)
        return cls(jnp.zeros((dim,), dtype), jnp.zeros((dim,), dtype),
                   jnp.zeros((dim, dim), dtype))

    @property
    def dim(self) -> int:
        return self.shift.shape[-1]

    @property
    def matrix(self) -> jax.Array:
        """L, (d, d)."""
        return jnp.tril(self.lower, -1) + jnp.diag(jnp.exp(self.log_diag))

    def forward_and_log_det(self, z):
        return self.matrix @ z + self.shift, jnp.sum(self.log_diag)

    def forward(self, z):
        return self.forward_and_log_det(z)[0]

    def log_det(self, z):
        return jnp.sum(self.log_diag)

    def inverse_and_log_det(self, y):
        z = jax.scipy.linalg.solve_triangular(self.matrix, y - self.shift, lower=True)
        return z, -jnp.sum(self.log_diag)

    def inverse(self, y):
        return self.inverse_and_log_det(y)[0]


_VECTOR_LEAF = {Planar: "w", Radial: "z0", Affine: "shift"}


def _is_stacked(block) -> bool:
    """True for a layer whose array leaves carry a leading (L,) layer axis."""
    for cls, name in _VECTOR_LEAF.items():
        if isinstance(block, cls):
            return getattr(block, name).ndim == 2
    raise TypeError(f"unknown flow layer {type(block).__name__}; expected Planar, Radial or "
                    "Affine")


def _blocks(layers) -> tuple:
    return tuple(layers) if isinstance(layers, (tuple, list)) else (layers,)


def _run_block(block, method: str, z: jax.Array, reverse: bool):
    if not _is_stacked(block):
        return getattr(block, method)(z)
    dynamic, static = eqx.partition(block, eqx.is_array)

    def body(carry, dyn):
        x, total = carry
        x, ld = getattr(eqx.combine(dyn, static), method)(x)
        return (x, total + ld), None

    (z, total), _ = lax.scan(body, (z, jnp.zeros((), z.dtype)), dynamic, reverse=reverse)
    return z, total


def _run_stack(layers, method: str, z: jax.Array, reverse: bool) -> tuple[jax.Array, jax.Array]:
    """Apply ``<method>`` through the blocks (each a layer, or stacked layers run by
    ``lax.scan``), in order or in reverse, summing log-determinants. z: (d,)."""
    blocks = _blocks(layers)
    total = jnp.zeros((), z.dtype)
    for block in (reversed(blocks) if reverse else blocks):
        z, ld = _run_block(block, method, z, reverse)
        total = total + ld
    return z, total


class Flow(eqx.Module):
    r"""A standard-normal base distribution on :math:`\mathbb R^d` and a stack of layers.

    Attributes:
        layers: a block or a tuple of blocks, applied in order. A block is one layer
            (:class:`Planar`, :class:`Radial`, :class:`Affine`) or a stack of L layers of one
            type whose array leaves carry a leading (L,) axis (made by ``eqx.filter_vmap`` of
            a layer constructor, as :func:`planar_flow` does), applied with ``lax.scan`` so
            that compile time does not grow with L.
        dim: static data dimension d.
        direction: ``"generative"`` (layers map z → x; exact ``sample`` and
            ``sample_and_log_prob``, numerical inverse in ``log_prob``; for reverse KL) or
            ``"normalizing"`` (layers map x → z; exact ``log_prob``, numerical inverse in
            ``sample``; for forward KL / density estimation).

    Layer i is applied i-th in its direction: a generative flow computes
    :math:`x = f_L(\dots f_1(z))`, a normalizing flow :math:`z = f_L(\dots f_1(x))`.
    """

    layers: object
    dim: int = eqx.field(static=True)
    direction: str = eqx.field(static=True, default="generative")

    def __check_init__(self):
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {self.direction!r}")

    @property
    def dtype(self):
        return jax.tree_util.tree_leaves(eqx.filter(self.layers, eqx.is_inexact_array))[0].dtype

    # -- the two maps ---------------------------------------------------------------
    def _to_data(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x = g(z) and log|det J_g(z)| for one point (d,)."""
        if self.direction == "generative":
            return _run_stack(self.layers, "forward_and_log_det", z, reverse=False)
        return _run_stack(self.layers, "inverse_and_log_det", z, reverse=True)

    def _to_base(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """z = f(x) and log|det J_f(x)| for one point (d,)."""
        if self.direction == "normalizing":
            return _run_stack(self.layers, "forward_and_log_det", x, reverse=False)
        return _run_stack(self.layers, "inverse_and_log_det", x, reverse=True)

    def _check(self, x, name: str = "x") -> jax.Array:
        x = as_float_array(x, name, ndim=(1, 2), dtype=self.dtype)
        if x.shape[-1] != self.dim:
            raise ValueError(f"{name} must have last dimension {self.dim}, got shape {x.shape}")
        return x

    def to_base(self, x: jax.Array) -> jax.Array:
        """The data → noise map f: x (d,) or (n, d) → same shape."""
        return _to_base_jit(self, self._check(x))

    def to_data(self, z: jax.Array) -> jax.Array:
        """The noise → data map g = f⁻¹: z (d,) or (n, d) → same shape."""
        return _to_data_jit(self, self._check(z, "z"))

    # -- densities and samples ---------------------------------------------------------
    def log_prob(self, x: jax.Array) -> jax.Array:
        r""":math:`\log p_x(x) = \log p_z(f(x)) + \log\lvert\det J_f(x)\rvert`.

        x: (d,) or (n, d) → () or (n,). Exact (no inverse) for a normalizing flow; for a
        generative flow it inverts each layer numerically.
        """
        return _log_prob_jit(self, self._check(x))

    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        r"""n samples :math:`x = g(z)`, :math:`z \sim \mathcal N(0, I)`, with
        :math:`\log q(x) = \log p_z(z) - \log\lvert\det J_g(z)\rvert`: ((n, d), (n,)).

        Exact (no inverse) for a generative flow: the reverse-KL path.
        """
        check_int_in_range(n, "n", 1, 1 << 31)
        return _sample_and_log_prob_jit(self, key, n)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """n samples of the flow's distribution: (n, d)."""
        check_int_in_range(n, "n", 1, 1 << 31)
        return _sample_jit(self, key, n)

    @property
    def n_layers(self) -> int:
        """Total number of layers over all blocks."""
        return sum(jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_array))[0].shape[0]
                   if _is_stacked(b) else 1 for b in _blocks(self.layers))


def _rows(fn, x):
    return fn(x) if x.ndim == 1 else jax.vmap(fn)(x)


@eqx.filter_jit
def _to_base_jit(flow: Flow, x):
    return _rows(lambda v: flow._to_base(v)[0], x)


@eqx.filter_jit
def _to_data_jit(flow: Flow, z):
    return _rows(lambda v: flow._to_data(v)[0], z)


@eqx.filter_jit
def _log_prob_jit(flow: Flow, x):
    def one(v):
        z, ld = flow._to_base(v)
        return standard_normal_log_prob(z) + ld
    return _rows(one, x)


@eqx.filter_jit
def _sample_and_log_prob_jit(flow: Flow, key, n: int):
    z = jax.random.normal(key, (n, flow.dim), flow.dtype)

    def one(v):
        x, ld = flow._to_data(v)
        return x, standard_normal_log_prob(v) - ld
    return jax.vmap(one)(z)


@eqx.filter_jit
def _sample_jit(flow: Flow, key, n: int):
    z = jax.random.normal(key, (n, flow.dim), flow.dtype)
    return jax.vmap(lambda v: flow._to_data(v)[0])(z)


def stack_layers(layer_cls, key: jax.Array, dim: int, n_layers: int, *, scale: float = 0.01,
                 dtype=None):
    """``n_layers`` layers of ``layer_cls`` (``Planar``, ``Radial``, ``Affine``) stacked along a
    leading axis by ``eqx.filter_vmap``: one block of a :class:`Flow`."""
    check_int_in_range(dim, "dim", 1, 1 << 20)
    check_int_in_range(n_layers, "n_layers", 1, 1 << 16)
    return _stack_jit(layer_cls, key, dim, n_layers, scale, dtype)


@functools.partial(jax.jit, static_argnums=(0, 2, 3, 5))
def _stack_jit(layer_cls, key, dim, n_layers, scale, dtype):
    keys = jax.random.split(key, n_layers)
    return eqx.filter_vmap(lambda k: layer_cls.init(k, dim, scale=scale, dtype=dtype))(keys)


def _stacked_flow(layer_cls, key, dim, n_layers, direction, scale, dtype, affine) -> Flow:
    block = stack_layers(layer_cls, key, dim, n_layers, scale=scale, dtype=dtype)
    if affine:
        return Flow((Affine.init(key, dim, dtype=dtype), block), dim, direction)
    return Flow(block, dim, direction)


def planar_flow(key: jax.Array, dim: int, n_layers: int, *, direction: str = "generative",
                affine: bool = False, scale: float = 0.01, dtype=None) -> Flow:
    """A :class:`Flow` of ``n_layers`` stacked :class:`Planar` layers (scanned), each near the
    identity at initialization; with ``affine=True`` an :class:`Affine` layer (initialized to
    the identity) comes first. ``dtype`` defaults to JAX's default float."""
    return _stacked_flow(Planar, key, dim, n_layers, direction, scale, dtype, affine)


def radial_flow(key: jax.Array, dim: int, n_layers: int, *, direction: str = "generative",
                affine: bool = False, scale: float = 0.01, dtype=None) -> Flow:
    """A :class:`Flow` of ``n_layers`` stacked :class:`Radial` layers (scanned)."""
    return _stacked_flow(Radial, key, dim, n_layers, direction, scale, dtype, affine)


# ----------------------------------------------------------------------------- losses


def forward_kl_loss(flow: Flow, x: jax.Array) -> jax.Array:
    r"""Forward KL up to the constant entropy of :math:`\pi`: the negative mean log-likelihood

    .. math::

        -\frac1n \sum_i \big[\log p_z(f(x_i)) + \log\lvert\det J_f(x_i)\rvert\big].

    x: (n, d) samples of the target. Use a ``"normalizing"`` flow to never invert.
    """
    return -jnp.mean(flow.log_prob(x))


def reverse_kl_loss(flow: Flow, key: jax.Array, log_target: Callable[[jax.Array], jax.Array],
                    n_samples: int) -> jax.Array:
    r"""Reverse KL up to :math:`\log Z`: the Monte Carlo estimate with ``n_samples`` draws

    .. math::

        \mathbb E_{z \sim p_z}\big[\log p_z(z) - \log\lvert\det J_g(z)\rvert - \log\pi(g(z))\big]
        = \mathrm{KL}(q\,\Vert\,\pi/Z) - \log Z .

    ``log_target``: unnormalized log density of one point, (d,) → () (vmapped here), e.g.
    ``lambda x: -U1(x)``. Use a ``"generative"`` flow to never invert.
    """
    x, log_q = flow.sample_and_log_prob(key, n_samples)
    return jnp.mean(log_q - jax.vmap(log_target)(x))


# ----------------------------------------------------------------------------- fitting


class FitResult(NamedTuple):
    """Result of :func:`fit`.

    Attributes:
        flow: the trained :class:`Flow`.
        losses: (n_steps,) the minibatch loss at every step (before its update).
        n_iter: () number of steps taken (= n_steps).
        finite: () True when every loss in the trace is finite (training did not diverge).
    """

    flow: Flow
    losses: jax.Array
    n_iter: jax.Array
    finite: jax.Array


@eqx.filter_jit
def _fit(flow, key, data, log_target, n_samples, batch_size, learning_rate, optimizer, n_steps,
         progress):
    if optimizer is None:
        optimizer = optax.adam(learning_rate)
    if data is not None:
        n = data.shape[0]

        def loss_fn(f, k):
            if batch_size >= n:
                return forward_kl_loss(f, data)
            idx = jax.random.randint(k, (batch_size,), 0, n)
            return forward_kl_loss(f, data[idx])
    else:
        def loss_fn(f, k):
            return reverse_kl_loss(f, k, log_target, n_samples)
    res = train(loss_fn, flow, key, optimizer=optimizer, n_steps=n_steps, progress=progress,
                desc="flow fit")
    return FitResult(res.params, res.losses, jnp.asarray(n_steps),
                     jnp.all(jnp.isfinite(res.losses)))


def fit(key: jax.Array, flow: Flow, *, data: jax.Array | None = None,
        log_target: Callable[[jax.Array], jax.Array] | None = None, n_samples: int = 256,
        batch_size: int = 256, learning_rate: float = 1e-3,
        optimizer: optax.GradientTransformation | None = None, n_steps: int = 1000,
        progress: bool = False) -> FitResult:
    r"""Train ``flow`` by Adam (or ``optimizer``) steps in one ``lax.scan``.

    Give exactly one of

    - ``data`` (n, d): forward KL, :func:`forward_kl_loss` on minibatches of ``batch_size``
      rows drawn with replacement by ``key`` (the full data when ``batch_size >= n``);
    - ``log_target`` ((d,) → ()): reverse KL, :func:`reverse_kl_loss` with ``n_samples``
      fresh draws per step.

    ``learning_rate`` is traced (a sweep does not recompile); sizes are static. The whole fit
    is jit-compiled; ``progress=True`` shows a tqdm bar. Returns a :class:`FitResult`.
    """
    if (data is None) == (log_target is None):
        raise ValueError("give exactly one of data (forward KL) or log_target (reverse KL)")
    if not isinstance(flow, Flow):
        raise TypeError(f"flow must be a jaxml.flows.Flow, got {type(flow).__name__}")
    check_int_in_range(n_steps, "n_steps", 1, 1 << 31)
    check_int_in_range(n_samples, "n_samples", 1, 1 << 31)
    check_int_in_range(batch_size, "batch_size", 1, 1 << 31)
    check_positive(learning_rate, "learning_rate")
    if data is not None:
        data = as_float_array(data, "data", ndim=2, dtype=flow.dtype)
        if data.shape[1] != flow.dim:
            raise ValueError(f"data must have {flow.dim} columns, got shape {data.shape}")
    learning_rate = jnp.asarray(learning_rate, flow.dtype)
    return _fit(flow, key, data, log_target, n_samples, batch_size, learning_rate, optimizer,
                n_steps, progress)


# ----------------------------------------------------------------------------- energies


def _w1(z):
    return jnp.sin(2.0 * jnp.pi * z[..., 0] / 4.0)


def _w2(z):
    return 3.0 * jnp.exp(-0.5 * ((z[..., 0] - 1.0) / 0.6) ** 2)


def _w3(z):
    return 3.0 * jax.nn.sigmoid((z[..., 0] - 1.0) / 0.3)


def U1(z: jax.Array) -> jax.Array:
    r"""Energy 1 (a ring split in two): :math:`\tfrac12((\lVert z\rVert - 2)/0.4)^2 -
    \log(e^{-\frac12((z_1-2)/0.6)^2} + e^{-\frac12((z_1+2)/0.6)^2})`. z: (..., 2) → (...);
    the unnormalized density is :math:`e^{-U}`."""
    sq = jnp.sum(z * z, axis=-1)
    r = jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)
    a = -0.5 * ((z[..., 0] - 2.0) / 0.6) ** 2
    b = -0.5 * ((z[..., 0] + 2.0) / 0.6) ** 2
    return 0.5 * ((r - 2.0) / 0.4) ** 2 - jnp.logaddexp(a, b)


def U2(z: jax.Array) -> jax.Array:
    r"""Energy 2 (a sine wave): :math:`\tfrac12((z_2 - w_1(z))/0.4)^2`,
    :math:`w_1 = \sin(2\pi z_1/4)`. z: (..., 2) → (...)."""
    return 0.5 * ((z[..., 1] - _w1(z)) / 0.4) ** 2


def U3(z: jax.Array) -> jax.Array:
    r"""Energy 3 (two sine waves split by a bump): :math:`-\log(e^{-\frac12((z_2-w_1)/0.35)^2}
    + e^{-\frac12((z_2-w_1+w_2)/0.35)^2})`, :math:`w_2 = 3e^{-\frac12((z_1-1)/0.6)^2}`."""
    a = -0.5 * ((z[..., 1] - _w1(z)) / 0.35) ** 2
    b = -0.5 * ((z[..., 1] - _w1(z) + _w2(z)) / 0.35) ** 2
    return -jnp.logaddexp(a, b)


def U4(z: jax.Array) -> jax.Array:
    r"""Energy 4 (two sine waves split by a step): :math:`-\log(e^{-\frac12((z_2-w_1)/0.4)^2}
    + e^{-\frac12((z_2-w_1+w_3)/0.35)^2})`, :math:`w_3 = 3\sigma((z_1-1)/0.3)`."""
    a = -0.5 * ((z[..., 1] - _w1(z)) / 0.4) ** 2
    b = -0.5 * ((z[..., 1] - _w1(z) + _w3(z)) / 0.35) ** 2
    return -jnp.logaddexp(a, b)


ENERGIES = {"U1": U1, "U2": U2, "U3": U3, "U4": U4}
