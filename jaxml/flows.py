r"""Normalizing flows: an abstract layer (bijection), planar, radial and affine layers, and
forward and reverse KL training.

A flow is an invertible map between data x ∈ ℝᵈ and a base variable z ~ p_z = N(0, I_d). By
the change of variables, for f: x ↦ z

    log p_x(x) = log p_z(f(x)) + log |det J_f(x)|,

and for the generative map g = f⁻¹: z ↦ x, log q(g(z)) = log p_z(z) − log |det J_g(z)|. A
stack of layers f = f_L ∘ … ∘ f₁ adds its log-determinants.

**Layers.** Every layer is a :class:`Bijection`: an ``eqx.Module`` with
``forward_and_log_det(z) -> (f(z), log|det J_f(z)|)`` and
``inverse_and_log_det(x) -> (f⁻¹(x), log|det J_{f⁻¹}(x)|)`` on one point (d,), as flowjax's
bijections do. A user-defined layer subclasses :class:`Bijection`, implements the two
methods, and goes into a :class:`Flow` and :func:`fit` as it is (no registry).
:class:`Stack` runs L layers of one type, stored with a leading (L,) axis, by ``lax.scan``.

**Planar layer** (Rezende & Mohamed 2015): f(z) = z + û h(wᵀz + b), h = tanh, with

    log |det J_f(z)| = log |1 + h′(wᵀz + b) ûᵀw|.

It is invertible iff wᵀû ≥ −1, enforced for any raw u by
û = u + (m(wᵀu) − wᵀu) w / ‖w‖², m(a) = −1 + softplus(a) (so wᵀû = m(wᵀu) > −1). There is no
closed-form inverse: writing s = wᵀz, the equation s + wᵀû tanh(s + b) = wᵀy is monotone in
s, with its root in [wᵀy − |wᵀû|, wᵀy + |wᵀû|]; it is solved by safeguarded Newton/bisection
and then z = y − û tanh(s + b).

**Radial layer**: f(z) = z + β (z − z₀)/(α + r), r = ‖z − z₀‖, α > 0, β ≥ −α; its inverse
has a closed form (a quadratic in r).
**Affine layer**: f(z) = L z + m, L lower triangular with a positive diagonal; placed before
planar layers it lets a flow represent any Gaussian exactly.

**Two directions, two losses.** A :class:`Flow` is a base distribution and a stack of layers
with a ``direction``:

- ``"normalizing"``: the layers map data to noise, x → z. ``log_prob`` is exact and cheap (no
  inverse), which is what the *forward KL* needs: given samples of π, minimize
  −E_π[log p_z(f(x)) + log |det J_f(x)|] (:func:`forward_kl_loss`). Sampling uses the
  numerical inverse.
- ``"generative"``: the layers map noise to data, z → x. ``sample`` and
  ``sample_and_log_prob`` are exact and cheap, which is what the *reverse KL* needs: given an
  unnormalized log density log π (``log_density``), minimize
  E_{p_z}[log p_z(z) − log |det J_g(z)| − log π(g(z))] (:func:`reverse_kl_loss`).
  ``log_prob`` of a given point uses the numerical inverse (with implicit-function gradients).

Training (:func:`fit` = :func:`init` + a ``lax.scan`` of :func:`step`) is the shared optax
loop of ``jaxml._core`` and returns its :class:`TrainResult` (``params`` is the trained flow,
``trace`` the loss per step); ``step(key, state, flow, ...) -> (state, info)`` is public for
training loops of one's own.
The energies U1–U4 of the paper are given as energies: their target is
``log_density(z) = −U(z)``.

Reference: D. J. Rezende and S. Mohamed, "Variational Inference with Normalizing Flows",
ICML 2015 (layers, appendix A.1 for û, Table 1 for the energies U1–U4).
"""

from __future__ import annotations

import abc
import math
from functools import partial
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxml._core import (TrainInfo, TrainResult, TrainState, as_float_array, check_callable,
                         check_finite, check_int_in_range, check_nonnegative, check_once, check_positive,
                         check_returns, safe_norm, standard_normal_log_prob, train, train_init,
                         train_step)

__all__ = [
    "Bijection", "Planar", "Radial", "Affine", "Stack", "Flow", "planar_flow", "radial_flow",
    "stack_layers", "TrainResult", "TrainState", "TrainInfo", "forward_kl_loss",
    "reverse_kl_loss", "init", "step", "fit",
    "standard_normal_log_prob", "U1", "U2", "U3", "U4", "ENERGIES",
]

_DIRECTIONS = ("generative", "normalizing")


# ----------------------------------------------------------------------------- layers


class Bijection(eqx.Module):
    r"""Abstract flow layer: an invertible map f of ℝᵈ with its log-Jacobian determinant.

    Subclass it and implement :meth:`forward_and_log_det` and :meth:`inverse_and_log_det`,
    both on one point of shape (d,) (a :class:`Flow` vmaps over rows); ``forward``,
    ``inverse`` and ``log_det`` follow. Parameters are array fields (trained by :func:`fit`);
    anything else (sizes, options) should be ``eqx.field(static=True)``. To stack L copies with
    :func:`stack_layers`, also give a classmethod ``init(key, dim, *, scale, dtype)``.
    """

    @abc.abstractmethod
    def forward_and_log_det(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(f(z), log|det J_f(z)|)``: z (d,) → ((d,), ())."""

    @abc.abstractmethod
    def inverse_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(f⁻¹(x), log|det J_{f⁻¹}(x)|)``: x (d,) → ((d,), ())."""

    def forward(self, z: jax.Array) -> jax.Array:
        """f(z), z: (d,) → (d,)."""
        return self.forward_and_log_det(z)[0]

    def inverse(self, x: jax.Array) -> jax.Array:
        """f⁻¹(x), x: (d,) → (d,)."""
        return self.inverse_and_log_det(x)[0]

    def log_det(self, z: jax.Array) -> jax.Array:
        """log |det J_f(z)|, z: (d,) → ()."""
        return self.forward_and_log_det(z)[1]

    @property
    def n_layers(self) -> int:
        """Number of layers this block holds (1; a :class:`Stack` holds L)."""
        return 1


def _safe_sq_norm_ratio(w: jax.Array) -> jax.Array:
    """w / ‖w‖², 0 (with finite gradients) at w = 0."""
    sq = jnp.sum(w * w)
    nonzero = sq > 0
    return jnp.where(nonzero, w / jnp.where(nonzero, sq, 1.0), 0.0)


class Planar(Bijection):
    r"""Planar layer f(z) = z + û tanh(wᵀz + b) (invertible for any raw u).

    Attributes:
        w: (d,) direction.
        u: (d,) raw (unconstrained) scale; the layer uses :attr:`u_hat`.
        b: () bias.
        inverse_iters: static number of safeguarded Newton/bisection iterations of the
            numerical inverse.

    ``u_hat`` (û, (d,)) and ``wu_hat`` (wᵀû, ()) are both properties: derived values, read
    without a call. Methods act on one point ``z`` of shape (d,); ``jax.vmap`` them for a
    batch.
    """

    w: jax.Array
    u: jax.Array
    b: jax.Array
    inverse_iters: int = eqx.field(static=True, default=40)

    @classmethod
    def init(cls, key: jax.Array, dim: int, *, scale: float = 0.01, dtype=None) -> Planar:
        """A layer close to the identity for small ``scale``: w ~ N(0, I/d), and raw u chosen so
        that û ~ N(0, scale² I) (raw u carries the component along w that the constraint maps
        back; where the draw has wᵀû < −1/2 it is moved along w to −1/2)."""
        dtype = dtype or jnp.result_type(float)
        kw, ku, kb = jax.random.split(key, 3)
        w = jax.random.normal(kw, (dim,), dtype) / math.sqrt(dim)
        u_hat = scale * jax.random.normal(ku, (dim,), dtype)
        # raw u with wᵀu = m⁻¹(a), m⁻¹(y) = softplus⁻¹(y + 1) = log(expm1(y + 1)), so that the
        # constraint maps it to û (moved along w where needed so that a = wᵀû ≥ −1/2).
        a = w @ u_hat
        a_ok = jnp.maximum(a, -0.5)
        u = u_hat + (jnp.log(jnp.expm1(a_ok + 1.0)) - a) * w / jnp.sum(w * w)
        b = scale * jax.random.normal(kb, (), dtype)
        return cls(w, u, b)

    @property
    def dim(self) -> int:
        return self.w.shape[-1]

    @property
    def wu_hat(self) -> jax.Array:
        """wᵀû = m(wᵀu) = −1 + softplus(wᵀu) > −1, computed directly (no rounding from the
        projection); shape ()."""
        return -1.0 + jax.nn.softplus(self.w @ self.u)

    @property
    def u_hat(self) -> jax.Array:
        """û = u + (m(wᵀu) − wᵀu) w / ‖w‖², shape (d,).

        When w = 0 the layer is a translation (invertible for any u) and û = u."""
        wu = self.w @ self.u
        return self.u + (self.wu_hat - wu) * _safe_sq_norm_ratio(self.w)

    def _log_det_at(self, s: jax.Array) -> jax.Array:
        # 1 + h′(s) wᵀû = t² + softplus(wᵀu) (1 − t²), t = tanh(s): positive, no cancellation.
        t = jnp.tanh(s)
        return jnp.log(t * t + jax.nn.softplus(self.w @ self.u) * (1.0 - t * t))

    def forward_and_log_det(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(f(z), log|det J_f(z)|)``: z (d,) → ((d,), ())."""
        s = self.w @ z + self.b
        return z + self.u_hat * jnp.tanh(s), self._log_det_at(s)

    def log_det(self, z: jax.Array) -> jax.Array:
        """log |1 + h′(wᵀz + b) ûᵀw|, z: (d,) → ()."""
        return self._log_det_at(self.w @ z + self.b)

    def _solve_s(self, c: jax.Array) -> jax.Array:
        """Root s of g(s) = s + a tanh(s + b) − c (a = wᵀû)."""
        a = self.wu_hat
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
        # ds/dθ = −(∂g/∂θ)/g′(s).
        d = dg(s)
        return s - g(s) / jnp.where(d > 0, d, 1.0)

    def inverse_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(f⁻¹(x), log|det J_{f⁻¹}(x)|)`` by 1-D root finding along w: x (d,) → ((d,), ())."""
        s_lin = self._solve_s(self.w @ x)            # s = wᵀz
        z = x - self.u_hat * jnp.tanh(s_lin + self.b)
        return z, -self._log_det_at(s_lin + self.b)


class Radial(Bijection):
    r"""Radial layer f(z) = z + β (z − z₀)/(α + r), r = ‖z − z₀‖.

    α = softplus(α_raw) > 0 and β = −α + softplus(β_raw) ≥ −α (invertible), and

        log |det J_f| = (d − 1) log(1 + βh) + log(1 + βh + βh′r),   h = 1/(α + r).

    Attributes: z0 (d,), alpha_raw (), beta_raw (). Methods act on one point (d,).
    """

    z0: jax.Array
    alpha_raw: jax.Array
    beta_raw: jax.Array

    @classmethod
    def init(cls, key: jax.Array, dim: int, *, scale: float = 0.01, dtype=None) -> Radial:
        """A layer close to the identity for small ``scale``: α = 1, β ~ N(0, scale²) clipped at
        −1/2, centre z0 ~ N(0, I)."""
        dtype = dtype or jnp.result_type(float)
        kz, kb = jax.random.split(key)
        z0 = jax.random.normal(kz, (dim,), dtype)
        alpha_raw = jnp.asarray(math.log(math.expm1(1.0)), dtype)       # α = 1
        # β = −α + softplus(β_raw) ≈ scale·ε  →  softplus(β_raw) = 1 + scale·ε
        beta = jnp.maximum(scale * jax.random.normal(kb, (), dtype), -0.5)
        beta_raw = jnp.log(jnp.expm1(1.0 + beta))
        return cls(z0, alpha_raw, beta_raw)

    @property
    def alpha(self) -> jax.Array:
        """α = softplus(α_raw) > 0, ()."""
        return jax.nn.softplus(self.alpha_raw)

    @property
    def beta(self) -> jax.Array:
        """β = −α + softplus(β_raw) ≥ −α, ()."""
        return -self.alpha + jax.nn.softplus(self.beta_raw)

    @property
    def dim(self) -> int:
        return self.z0.shape[-1]

    def _log_det_at(self, r: jax.Array) -> jax.Array:
        alpha, ab = self.alpha, jax.nn.softplus(self.beta_raw)      # ab = α + β ≥ 0
        d = self.dim
        # 1 + βh = (r + α + β)/(α + r);  1 + βh + βh′r = (r² + 2αr + α(α+β))/(α + r)²
        term1 = jnp.log(r + ab) - jnp.log(alpha + r)
        term2 = jnp.log(r * r + 2.0 * alpha * r + alpha * ab) - 2.0 * jnp.log(alpha + r)
        return (d - 1) * term1 + term2

    def forward_and_log_det(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(f(z), log|det J_f(z)|)``: z (d,) → ((d,), ())."""
        diff = z - self.z0
        r = safe_norm(diff)
        y = z + self.beta * diff / (self.alpha + r)
        return y, self._log_det_at(r)

    def log_det(self, z: jax.Array) -> jax.Array:
        return self._log_det_at(safe_norm(z - self.z0))

    def inverse_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Closed-form inverse: r² + (α + β − r_x) r − α r_x = 0, r_x = ‖x − z₀‖."""
        alpha, ab = self.alpha, jax.nn.softplus(self.beta_raw)
        diff = x - self.z0
        ry = safe_norm(diff)
        p = ab - ry
        disc = jnp.sqrt(p * p + 4.0 * alpha * ry)
        # the positive root, in the form without cancellation for either sign of p
        r = jnp.where(p > 0, 2.0 * alpha * ry / jnp.where(p > 0, p + disc, 1.0), 0.5 * (disc - p))
        z = self.z0 + diff * (alpha + r) / (ab + r)
        return z, -self._log_det_at(r)


class Affine(Bijection):
    r"""Affine layer f(z) = L z + m, L lower triangular with diagonal eˢ > 0.

    log |det J_f| = Σⱼ sⱼ; the inverse is a triangular solve. Put in front of planar layers
    it lets a flow represent any Gaussian exactly.

    Attributes: shift m (d,), log_diag s (d,), lower (d, d) (only the strictly lower part is
    used). Methods act on one point (d,).
    """

    shift: jax.Array
    log_diag: jax.Array
    lower: jax.Array

    @classmethod
    def init(cls, key: jax.Array, dim: int, *, scale: float = 0.01, dtype=None) -> Affine:
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

    def forward_and_log_det(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(L z + m, Σ s)``: z (d,) → ((d,), ())."""
        return self.matrix @ z + self.shift, jnp.sum(self.log_diag)

    def log_det(self, z: jax.Array) -> jax.Array:
        return jnp.sum(self.log_diag)

    def inverse_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(L⁻¹(x − m), −Σ s)`` by a triangular solve: x (d,) → ((d,), ())."""
        z = jax.scipy.linalg.solve_triangular(self.matrix, x - self.shift, lower=True)
        return z, -jnp.sum(self.log_diag)


class Stack(Bijection):
    r"""L layers of one type applied in order, f = f_L ∘ … ∘ f₁, by ``lax.scan`` (compile time
    does not grow with L).

    Attributes:
        layer: one :class:`Bijection` whose array leaves carry a leading (L,) axis, e.g.
            ``eqx.filter_vmap(lambda k: Planar.init(k, d))(keys)`` (what
            :func:`stack_layers` builds); ``stack.layer.w`` is then the (L, d) array of the
            L planar directions.

    log |det J_f| sums the layers' log-determinants; the inverse runs the layers' inverses
    from the last to the first.
    """

    layer: Bijection

    def __check_init__(self):
        if not isinstance(self.layer, Bijection):
            raise TypeError("Stack.layer must be a Bijection with a leading layer axis, got "
                            f"{type(self.layer).__name__}")

    def _scan(self, method: str, v: jax.Array, reverse: bool) -> tuple[jax.Array, jax.Array]:
        dynamic, static = eqx.partition(self.layer, eqx.is_array)

        def body(carry, dyn):
            x, total = carry
            x, ld = getattr(eqx.combine(dyn, static), method)(x)
            return (x, total + ld), None

        (v, total), _ = lax.scan(body, (v, jnp.zeros((), v.dtype)), dynamic, reverse=reverse)
        return v, total

    def forward_and_log_det(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(f_L(… f₁(z)), Σₗ log|det J_{fₗ}|)``: z (d,) → ((d,), ())."""
        return self._scan("forward_and_log_det", z, reverse=False)

    def inverse_and_log_det(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(f₁⁻¹(… f_L⁻¹(x)), Σₗ log|det J_{fₗ⁻¹}|)``: x (d,) → ((d,), ())."""
        return self._scan("inverse_and_log_det", x, reverse=True)

    @property
    def n_layers(self) -> int:
        return jax.tree_util.tree_leaves(eqx.filter(self.layer, eqx.is_array))[0].shape[0]


# ----------------------------------------------------------------------------- the flow


def _blocks(layers) -> tuple:
    return tuple(layers) if isinstance(layers, (tuple, list)) else (layers,)


def _run(layers, method: str, v: jax.Array, reverse: bool) -> tuple[jax.Array, jax.Array]:
    """Apply ``<method>`` through the blocks, in order or in reverse, summing
    log-determinants. v: (d,)."""
    blocks = _blocks(layers)
    total = jnp.zeros((), v.dtype)
    for block in (reversed(blocks) if reverse else blocks):
        v, ld = getattr(block, method)(v)
        total = total + ld
    return v, total


class Flow(eqx.Module):
    r"""A standard-normal base distribution on ℝᵈ and a stack of layers.

    Attributes:
        layers: a :class:`Bijection` or a tuple of them, applied in order. A block may be a
            :class:`Stack` (L layers of one type run by ``lax.scan``, as :func:`planar_flow`
            builds) or any user-defined :class:`Bijection`.
        dim: static data dimension d.
        direction: ``"generative"`` (layers map z → x; exact ``sample`` and
            ``sample_and_log_prob``, numerical inverse in ``log_prob``; for reverse KL) or
            ``"normalizing"`` (layers map x → z; exact ``log_prob``, numerical inverse in
            ``sample``; for forward KL / density estimation).

    Layer i is applied i-th in its direction: a generative flow computes x = f_L(… f₁(z)), a
    normalizing flow z = f_L(… f₁(x)).
    """

    layers: object
    dim: int = eqx.field(static=True)
    direction: str = eqx.field(static=True, default="generative")

    def __check_init__(self):
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {self.direction!r}")
        for block in _blocks(self.layers):
            if not isinstance(block, Bijection):
                raise TypeError("flow layers must be jaxml.flows.Bijection instances (subclass "
                                f"Bijection for a new layer), got {type(block).__name__}")

    @property
    def dtype(self):
        return jax.tree_util.tree_leaves(eqx.filter(self.layers, eqx.is_inexact_array))[0].dtype

    @property
    def n_layers(self) -> int:
        """Total number of layers over all blocks."""
        return sum(b.n_layers for b in _blocks(self.layers))

    # -- the two maps (one point) ------------------------------------------------------
    def _to_data(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x = g(z) and log|det J_g(z)| for one point (d,)."""
        if self.direction == "generative":
            return _run(self.layers, "forward_and_log_det", z, reverse=False)
        return _run(self.layers, "inverse_and_log_det", z, reverse=True)

    def _to_base(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """z = f(x) and log|det J_f(x)| for one point (d,)."""
        if self.direction == "normalizing":
            return _run(self.layers, "forward_and_log_det", x, reverse=False)
        return _run(self.layers, "inverse_and_log_det", x, reverse=True)

    def _log_prob(self, x: jax.Array) -> jax.Array:
        z, ld = self._to_base(x)
        return standard_normal_log_prob(z) + ld

    def _sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        z = jax.random.normal(key, (n, self.dim), self.dtype)

        def one(v):
            x, ld = self._to_data(v)
            return x, standard_normal_log_prob(v) - ld
        return jax.vmap(one)(z)

    def _check_params(self) -> None:
        """Every block maps a point (d,) to ((d,), ()) both ways: parameters of the wrong
        shape (e.g. swapped in with ``eqx.tree_at``) are reported here, naming the block
        (abstractly, once per structure and shapes: ``check_once``)."""
        check_once(Flow._check_param_shapes, self)

    def _check_param_shapes(self) -> None:
        point = jax.ShapeDtypeStruct((self.dim,), self.dtype)
        want = ((self.dim,), ())
        for i, block in enumerate(_blocks(self.layers)):
            for method in ("forward_and_log_det", "inverse_and_log_det"):
                name = f"flow.layers[{i}] ({type(block).__name__})"
                try:
                    out = jax.eval_shape(getattr(block, method), point)
                    got = tuple(tuple(o.shape) for o in out)
                except Exception as e:  # noqa: BLE001  shapes that do not chain
                    raise ValueError(f"{name} parameters have the wrong shape for dimension "
                                     f"{self.dim}: {method} fails on a ({self.dim},) point: "
                                     f"{e}") from e
                if got != want:
                    raise ValueError(f"{name}.{method} must map a ({self.dim},) point to "
                                     f"shapes {want}, got {got}: its parameters have the "
                                     "wrong shape")

    def _check(self, x, name: str = "x") -> jax.Array:
        self._check_params()
        x = as_float_array(x, name, ndim=(1, 2), dtype=self.dtype)
        if x.shape[-1] != self.dim:
            raise ValueError(f"{name} must have last dimension {self.dim}, got shape {x.shape}")
        return x

    # -- public, on rows -----------------------------------------------------------------
    def to_base(self, x: jax.Array) -> jax.Array:
        """The data → noise map f: x (d,) or (n, d) → same shape."""
        return _rows_core(*eqx.partition(self, eqx.is_array), self._check(x), what="to_base")

    def to_data(self, z: jax.Array) -> jax.Array:
        """The noise → data map g = f⁻¹: z (d,) or (n, d) → same shape."""
        return _rows_core(*eqx.partition(self, eqx.is_array), self._check(z, "z"),
                          what="to_data")

    def log_prob(self, x: jax.Array) -> jax.Array:
        """log p_x(x) = log p_z(f(x)) + log |det J_f(x)|: x (d,) or (n, d) → () or (n,).

        Exact (no inverse) for a normalizing flow; for a generative flow it inverts each layer
        numerically.
        """
        return _rows_core(*eqx.partition(self, eqx.is_array), self._check(x), what="log_prob")

    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        """n samples x = g(z), z ~ N(0, I), with log q(x) = log p_z(z) − log |det J_g(z)|:
        ((n, d), (n,)).

        Exact (no inverse) for a generative flow: the reverse-KL path.
        """
        n = check_int_in_range(n, "n", 1, 1 << 31)
        self._check_params()
        return _sample_core(key, *eqx.partition(self, eqx.is_array), n=n, log_prob=True)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """n samples of the flow's distribution: (n, d)."""
        n = check_int_in_range(n, "n", 1, 1 << 31)
        self._check_params()
        return _sample_core(key, *eqx.partition(self, eqx.is_array), n=n, log_prob=False)


@partial(jax.jit, static_argnames=("static", "what"))
def _rows_core(dynamic, static, x, *, what: str):
    flow = eqx.combine(dynamic, static)
    fn = {"to_base": lambda v: flow._to_base(v)[0], "to_data": lambda v: flow._to_data(v)[0],
          "log_prob": flow._log_prob}[what]
    return fn(x) if x.ndim == 1 else jax.vmap(fn)(x)


@partial(jax.jit, static_argnames=("static", "n", "log_prob"))
def _sample_core(key, dynamic, static, *, n: int, log_prob: bool):
    x, lq = eqx.combine(dynamic, static)._sample_and_log_prob(key, n)
    return (x, lq) if log_prob else x


def stack_layers(key: jax.Array, layer_cls: type, dim: int, n_layers: int, *,
                 scale: float = 0.01, dtype=None) -> Stack:
    """A :class:`Stack` of ``n_layers`` layers ``layer_cls.init(k, dim, scale=scale,
    dtype=dtype)`` (``Planar``, ``Radial``, ``Affine`` or any :class:`Bijection` with such an
    ``init``), one key each, stacked along a leading axis: one block of a :class:`Flow`."""
    if not (isinstance(layer_cls, type) and issubclass(layer_cls, Bijection)):
        raise TypeError(f"layer_cls must be a Bijection subclass, got {layer_cls!r}")
    dim = check_int_in_range(dim, "dim", 1, 1 << 20)
    n_layers = check_int_in_range(n_layers, "n_layers", 1, 1 << 16)
    scale = check_nonnegative(scale, "scale")
    one = eqx.filter_eval_shape(lambda k: layer_cls.init(k, dim, scale=scale, dtype=dtype), key)
    static = eqx.partition(one, eqx.is_array)[1]
    dynamic = _stack_core(key, scale, layer_cls=layer_cls, dim=dim, n_layers=n_layers,
                          dtype=dtype)
    return Stack(eqx.combine(dynamic, static))


@partial(jax.jit, static_argnames=("layer_cls", "dim", "n_layers", "dtype"))
def _stack_core(key, scale, *, layer_cls, dim, n_layers, dtype):
    keys = jax.random.split(key, n_layers)
    stacked = eqx.filter_vmap(lambda k: layer_cls.init(k, dim, scale=scale, dtype=dtype))(keys)
    return eqx.filter(stacked, eqx.is_array)


def _stacked_flow(layer_cls, key, dim, n_layers, direction, scale, dtype, affine) -> Flow:
    block = stack_layers(key, layer_cls, dim, n_layers, scale=scale, dtype=dtype)
    if affine:
        return Flow((Affine.init(key, dim, dtype=dtype), block), dim, direction)
    return Flow(block, dim, direction)


def planar_flow(key: jax.Array, dim: int, n_layers: int, *, direction: str = "generative",
                affine: bool = False, scale: float = 0.01, dtype=None) -> Flow:
    """A :class:`Flow` of one :class:`Stack` of ``n_layers`` :class:`Planar` layers (scanned),
    each near the identity at initialization; with ``affine=True`` an :class:`Affine` layer
    (initialized to the identity) comes first. ``dtype`` defaults to JAX's default float."""
    return _stacked_flow(Planar, key, dim, n_layers, direction, scale, dtype, affine)


def radial_flow(key: jax.Array, dim: int, n_layers: int, *, direction: str = "generative",
                affine: bool = False, scale: float = 0.01, dtype=None) -> Flow:
    """A :class:`Flow` of one :class:`Stack` of ``n_layers`` :class:`Radial` layers (scanned)."""
    return _stacked_flow(Radial, key, dim, n_layers, direction, scale, dtype, affine)


# ----------------------------------------------------------------------------- losses


def _forward_kl(flow: Flow, data: jax.Array) -> jax.Array:
    return -jnp.mean(jax.vmap(flow._log_prob)(jnp.atleast_2d(data)))


def _reverse_kl(flow: Flow, key: jax.Array, log_density: Callable, n_samples: int) -> jax.Array:
    x, log_q = flow._sample_and_log_prob(key, n_samples)
    return jnp.mean(log_q - jax.vmap(log_density)(x))


def forward_kl_loss(flow: Flow, data: jax.Array) -> jax.Array:
    """Forward KL up to the constant entropy of π: the negative mean log-likelihood

        −(1/n) Σᵢ [log p_z(f(xᵢ)) + log |det J_f(xᵢ)|].

    data: (n, d) samples of the target → (). Use a ``"normalizing"`` flow to never invert.
    """
    _check_flow(flow)
    dynamic, static = eqx.partition(flow, eqx.is_array)
    return _forward_kl_core(dynamic, flow._check(data, "data"), static=static)


def reverse_kl_loss(key: jax.Array, flow: Flow, log_density: Callable[[jax.Array], jax.Array],
                    *, n_samples: int = 256) -> jax.Array:
    """Reverse KL up to log Z: the Monte Carlo estimate with ``n_samples`` draws

        E_{z ~ p_z}[log p_z(z) − log |det J_g(z)| − log π(g(z))] = KL(q ‖ π/Z) − log Z.

    ``log_density``: the unnormalized log density log π of one point, (d,) → () (vmapped
    here), e.g. ``lambda x: -U1(x)``. Returns (). Use a ``"generative"`` flow to never invert.
    """
    _check_flow(flow)
    _check_log_density(flow, log_density)
    n_samples = check_int_in_range(n_samples, "n_samples", 1, 1 << 31)
    dynamic, static = eqx.partition(flow, eqx.is_array)
    return _reverse_kl_core(key, dynamic, static=static, log_density=log_density,
                            n_samples=int(n_samples))


@partial(jax.jit, static_argnames=("static",))
def _forward_kl_core(dynamic, data, *, static):
    return _forward_kl(eqx.combine(dynamic, static), data)


@partial(jax.jit, static_argnames=("static", "log_density", "n_samples"))
def _reverse_kl_core(key, dynamic, *, static, log_density, n_samples):
    return _reverse_kl(eqx.combine(dynamic, static), key, log_density, n_samples)


# ----------------------------------------------------------------------------- fitting


def _kl_loss(data, log_density, n_samples: int, batch_size: int) -> Callable:
    """The training loss ``loss_fn(flow, key)``: forward KL on a minibatch of ``data`` drawn by
    ``key`` (all of it when ``batch_size ≥ n``), or reverse KL against ``log_density``."""
    if data is None:
        return lambda f, k: _reverse_kl(f, k, log_density, n_samples)
    n = data.shape[0]
    if batch_size >= n:
        return lambda f, k: _forward_kl(f, data)
    return lambda f, k: _forward_kl(f, data[jax.random.randint(k, (batch_size,), 0, n)])


def _check_flow(flow) -> None:
    if not isinstance(flow, Flow):
        raise TypeError(f"flow must be a jaxml.flows.Flow, got {type(flow).__name__}")
    flow._check_params()


def _check_log_density(flow: Flow, log_density) -> None:
    """``log_density`` is callable and maps one point (d,) to a scalar (checked abstractly)."""
    check_callable(log_density, "log_density")
    check_returns(log_density, "log_density", jax.ShapeDtypeStruct((flow.dim,), flow.dtype),
                  shape=())


def _check_training(flow, data, log_density, n_samples, batch_size):
    """The checks :func:`fit` and :func:`step` share; returns (data as a float array or None,
    n_samples, batch_size)."""
    if (data is None) == (log_density is None):
        raise ValueError("give exactly one of data (forward KL) or log_density (reverse KL)")
    _check_flow(flow)
    if log_density is not None:
        _check_log_density(flow, log_density)
    n_samples = check_int_in_range(n_samples, "n_samples", 1, 1 << 31)
    batch_size = check_int_in_range(batch_size, "batch_size", 1, 1 << 31)
    if data is None:
        return None, n_samples, batch_size
    data = as_float_array(data, "data", ndim=2, dtype=flow.dtype)
    if data.shape[1] != flow.dim:
        raise ValueError(f"data must have {flow.dim} columns, got shape {data.shape}")
    if data.shape[0] < 1:
        raise ValueError(f"data must have at least 1 row, got shape {data.shape}")
    return data, n_samples, batch_size


def init(flow: Flow, *, optimizer: optax.GradientTransformation) -> TrainState:
    """The training state of ``flow`` for :func:`step`: its trainable (inexact-array) leaves,
    a fresh ``optimizer`` state, and ``finite=True``."""
    _check_flow(flow)
    return train_init(flow, optimizer)[0]


@partial(jax.jit, static_argnames=("static", "optimizer", "log_density", "n_samples",
                                   "batch_size"))
def _step_core(key, state, dynamic, data, *, static, optimizer, log_density, n_samples,
               batch_size):
    fixed = eqx.partition(eqx.combine(dynamic, static), eqx.is_inexact_array)[1]
    return train_step(key, state, _kl_loss(data, log_density, n_samples, batch_size), fixed,
                      optimizer)


def step(key: jax.Array, state: TrainState, flow: Flow, *,
         optimizer: optax.GradientTransformation, data: jax.Array | None = None,
         log_density: Callable[[jax.Array], jax.Array] | None = None, n_samples: int = 256,
         batch_size: int = 256) -> tuple[TrainState, TrainInfo]:
    """One ``optimizer`` step of :func:`fit` (``jaxml._core.train_step`` on the KL loss), for a
    training loop of one's own (``lax.scan``, annealed targets, early stopping).

    ``flow`` gives the structure (layers, sizes); the trained arrays are ``state.params``
    (from :func:`init`), and the current flow is ``eqx.combine(state.params, flow)``. Give
    ``data`` (n, d) (forward KL) or ``log_density`` (reverse KL), as for :func:`fit`; with the
    keys ``jax.random.split(key, n_steps)`` the steps reproduce ``fit(key, ...)``.

    Returns:
        ``(state, info)``: the new :class:`TrainState`; :class:`TrainInfo` with ``value`` ()
        the loss before the update (NaN once a step was not finite) and ``error`` () 0, or
        inf once a loss or gradient was not finite (the parameters then stay put).
    """
    data, n_samples, batch_size = _check_training(flow, data, log_density, n_samples,
                                                  batch_size)
    dynamic, static = eqx.partition(flow, eqx.is_array)
    return _step_core(key, state, dynamic, data, static=static, optimizer=optimizer,
                      log_density=log_density, n_samples=n_samples, batch_size=batch_size)


@partial(jax.jit, static_argnames=("static", "log_density", "n_samples", "batch_size",
                                   "optimizer", "n_steps", "progress"))
def _fit_core(key, dynamic, data, *, learning_rate, static, log_density, n_samples, batch_size,
              optimizer, n_steps, progress):
    if optimizer is None:
        optimizer = optax.adam(learning_rate)
    res = train(key, _kl_loss(data, log_density, n_samples, batch_size),
                eqx.combine(dynamic, static), optimizer=optimizer, n_steps=n_steps,
                progress=progress, desc="flow fit")
    return res._replace(params=eqx.filter(res.params, eqx.is_array))


def fit(key: jax.Array, flow: Flow, *, data: jax.Array | None = None,
        log_density: Callable[[jax.Array], jax.Array] | None = None, n_samples: int = 256,
        batch_size: int = 256, learning_rate: float = 1e-3,
        optimizer: optax.GradientTransformation | None = None, n_steps: int = 1000,
        progress: bool = False) -> TrainResult:
    """Train ``flow`` by Adam (or ``optimizer``) steps in one compiled ``lax.scan``:
    :func:`init`, then ``n_steps`` of :func:`step` (the shared ``jaxml._core.train``).

    Give exactly one of

    - ``data`` (n, d): forward KL, :func:`forward_kl_loss` on minibatches of ``batch_size``
      rows drawn with replacement by ``key`` (the full data when ``batch_size ≥ n``);
    - ``log_density`` ((d,) → ()): reverse KL, :func:`reverse_kl_loss` with ``n_samples``
      fresh draws per step.

    ``learning_rate`` (finite, > 0) is traced (a sweep neither recompiles nor breaks under
    ``vmap``); sizes (``n_samples``, ``batch_size``, ``n_steps``) are static; ``progress=True``
    shows a tqdm bar. ``log_density`` must be callable and return a scalar for one point
    (checked abstractly, nothing runs); ``data`` and the flow's parameters must be finite
    (checked at run time when traced), the parameters of the shapes the layers need.

    Returns:
        :class:`TrainResult`: ``params`` the trained :class:`Flow`, ``trace`` (n_steps,) the
        loss at every step (before its update), ``n_iter`` () the finite steps, ``finite`` ()
        every loss and gradient finite (False e.g. when ``log_density`` returns NaN or the
        steps overflow), ``opt_state`` the optimizer state.
    """
    data, n_samples, batch_size = _check_training(flow, data, log_density, n_samples,
                                                  batch_size)
    n_steps = check_int_in_range(n_steps, "n_steps", 1, 1 << 31)
    learning_rate = jnp.asarray(check_positive(learning_rate, "learning_rate"), flow.dtype)
    dynamic, static = eqx.partition(flow, eqx.is_array)
    dynamic = jax.tree_util.tree_map(
        lambda a: check_finite(a, "flow") if eqx.is_inexact_array(a) else a, dynamic)
    res = _fit_core(key, dynamic, data, learning_rate=learning_rate, static=static,
                    log_density=log_density, n_samples=n_samples, batch_size=batch_size,
                    optimizer=optimizer, n_steps=n_steps, progress=bool(progress))
    return res._replace(params=eqx.combine(res.params, static))


# ----------------------------------------------------------------------------- energies


def _w1(z):
    return jnp.sin(2.0 * jnp.pi * z[..., 0] / 4.0)


def _w2(z):
    return 3.0 * jnp.exp(-0.5 * ((z[..., 0] - 1.0) / 0.6) ** 2)


def _w3(z):
    return 3.0 * jax.nn.sigmoid((z[..., 0] - 1.0) / 0.3)


def U1(z: jax.Array) -> jax.Array:
    """Energy 1 (a ring split in two): ½((‖z‖ − 2)/0.4)² − log(e^{−½((z₁−2)/0.6)²} +
    e^{−½((z₁+2)/0.6)²}). z: (…, 2) → (…); the unnormalized density is e^{−U}, so the
    reverse-KL target is ``log_density = lambda z: -U1(z)``."""
    r = safe_norm(z, axis=-1)
    a = -0.5 * ((z[..., 0] - 2.0) / 0.6) ** 2
    b = -0.5 * ((z[..., 0] + 2.0) / 0.6) ** 2
    return 0.5 * ((r - 2.0) / 0.4) ** 2 - jnp.logaddexp(a, b)


def U2(z: jax.Array) -> jax.Array:
    """Energy 2 (a sine wave): ½((z₂ − w₁(z))/0.4)², w₁ = sin(2πz₁/4). z: (…, 2) → (…)."""
    return 0.5 * ((z[..., 1] - _w1(z)) / 0.4) ** 2


def U3(z: jax.Array) -> jax.Array:
    """Energy 3 (two sine waves split by a bump): −log(e^{−½((z₂−w₁)/0.35)²} +
    e^{−½((z₂−w₁+w₂)/0.35)²}), w₂ = 3e^{−½((z₁−1)/0.6)²}. z: (…, 2) → (…)."""
    a = -0.5 * ((z[..., 1] - _w1(z)) / 0.35) ** 2
    b = -0.5 * ((z[..., 1] - _w1(z) + _w2(z)) / 0.35) ** 2
    return -jnp.logaddexp(a, b)


def U4(z: jax.Array) -> jax.Array:
    """Energy 4 (two sine waves split by a step): −log(e^{−½((z₂−w₁)/0.4)²} +
    e^{−½((z₂−w₁+w₃)/0.35)²}), w₃ = 3σ((z₁−1)/0.3). z: (…, 2) → (…)."""
    a = -0.5 * ((z[..., 1] - _w1(z)) / 0.4) ** 2
    b = -0.5 * ((z[..., 1] - _w1(z) + _w3(z)) / 0.35) ** 2
    return -jnp.logaddexp(a, b)


ENERGIES = {"U1": U1, "U2": U2, "U3": U3, "U4": U4}
