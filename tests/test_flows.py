"""jaxml.flows: invertibility constraint, log-dets against jax.jacobian, inverses, a density that
integrates to one, forward/reverse KL, the Rezende & Mohamed energies, jit/vmap/float32."""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from jaxml import flows
from jaxml.testing import check_gradient, check_unbiased

floats = st.floats(-30.0, 30.0, allow_nan=False, allow_infinity=False)
vec3 = st.lists(floats, min_size=3, max_size=3)


def _jacobian_log_det(fn, z):
    sign, logabs = jnp.linalg.slogdet(jax.jacobian(fn)(z))
    return logabs


def _perturbed_affine(seed, dim, s=0.3):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    return flows.Affine(jax.random.normal(k1, (dim,)), s * jax.random.normal(k2, (dim,)),
                        s * jax.random.normal(k3, (dim, dim)))


# ----------------------------------------------------------------------------- constraint


@given(w=vec3, u=vec3)
def test_planar_constraint_holds_for_any_raw_parameters(w, u):
    layer = flows.Planar(jnp.asarray(w), jnp.asarray(u), jnp.asarray(0.3))
    w, u = np.asarray(w), np.asarray(u)
    wu_hat = float(np.dot(w, np.asarray(layer.u_hat)))
    scale = 1.0 + abs(np.dot(w, u)) + np.linalg.norm(w) * np.linalg.norm(u)
    assert wu_hat >= -1.0 - 1e-12 * scale
    assert float(layer.wu_hat) >= -1.0
    # the projection's w-component is exactly m(wᵀu) = -1 + softplus(wᵀu)
    if np.dot(w, w) > 0:
        m = -1.0 + np.logaddexp(0.0, np.dot(w, u))
        assert wu_hat == pytest.approx(m, abs=1e-12 * scale)
        # û differs from u only along w
        resid = np.asarray(layer.u_hat) - u
        assert (np.linalg.norm(resid - np.dot(resid, w) / np.dot(w, w) * w)
                <= 1e-10 * (scale + np.linalg.norm(resid)))
    else:
        np.testing.assert_array_equal(np.asarray(layer.u_hat), u)
    assert np.all(np.isfinite(np.asarray(layer.u_hat)))


# ----------------------------------------------------------------------------- layers


@functools.partial(jax.jit, static_argnums=0)
def _layer_checks(cls, seed, scale):
    """For a random layer and input: forward, log-det, |det jacobian|, inverse and its log-det
    (one compilation per layer class)."""
    layer = cls.init(jax.random.key(seed), 3, scale=scale)
    z = 2.0 * jax.random.normal(jax.random.key(seed + 1), (3,))
    y, ld = layer.forward_and_log_det(z)
    z_back, ld_inv = layer.inverse_and_log_det(y)
    return dict(z=z, y=y, ld=ld, y2=layer.forward(z), ld2=layer.log_det(z),
                jac_ld=_jacobian_log_det(layer.forward, z), z_back=z_back, ld_inv=ld_inv,
                jac_ld_inv=_jacobian_log_det(layer.inverse, y))


layer_cases = dict(seed=st.integers(0, 2**16), scale=st.sampled_from([0.3, 1.0, 3.0]),
                   cls=st.sampled_from([flows.Planar, flows.Radial]))


@given(**layer_cases)
def test_log_det_matches_jacobian(seed, scale, cls):
    r = _layer_checks(cls, seed, scale)
    np.testing.assert_allclose(r["y2"], r["y"], rtol=1e-12)
    np.testing.assert_allclose(r["ld"], r["jac_ld"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(r["ld2"], r["ld"], rtol=1e-12)


@given(**layer_cases)
def test_inverse_of_forward_is_identity(seed, scale, cls):
    r = _layer_checks(cls, seed, scale)
    np.testing.assert_allclose(r["z_back"], r["z"], atol=1e-9)
    np.testing.assert_allclose(r["ld_inv"], -r["ld"], atol=1e-9)
    np.testing.assert_allclose(r["ld_inv"], r["jac_ld_inv"], atol=1e-8)


def test_planar_inverse_near_the_invertibility_boundary():
    """wᵀû → -1 (raw wᵀu very negative): the map is nearly flat at s = -b, still inverted."""
    w = jnp.array([1.0, -0.5])
    u = -25.0 * w                                # wᵀu = -31.25, wᵀû = -1 + 2.7e-14
    layer = flows.Planar(w, u, jnp.asarray(0.2))
    z = jnp.stack([jnp.linspace(-3, 3, 41), jnp.linspace(2, -1, 41)], axis=1)
    y = jax.vmap(layer.forward)(z)
    z_back = jax.vmap(layer.inverse)(y)
    # on the flat spot the inverse is ill-conditioned; compare through the forward map
    np.testing.assert_allclose(jax.vmap(layer.forward)(z_back), y, atol=1e-9)
    assert np.all(np.isfinite(np.asarray(z_back)))


def test_affine_layer_log_det_and_inverse():
    layer = _perturbed_affine(3, 3)
    z = jnp.array([0.3, -1.0, 2.0])
    y, ld = layer.forward_and_log_det(z)
    np.testing.assert_allclose(ld, _jacobian_log_det(layer.forward, z), rtol=1e-12)
    np.testing.assert_allclose(layer.inverse(y), z, atol=1e-12)


# ----------------------------------------------------------------------------- flows


@pytest.fixture(scope="module")
def flow_pair():
    """A generative and a normalizing 2-D planar flow with non-trivial layers (+ affine)."""
    key = jax.random.key(11)
    planar = flows.stack_layers(key, flows.Planar, 2, 6, scale=0.5)
    radial = flows.stack_layers(jax.random.key(5), flows.Radial, 2, 2, scale=0.5)
    layers = (_perturbed_affine(2, 2), planar, radial)
    return flows.Flow(layers, 2, "generative"), flows.Flow(layers, 2, "normalizing")


def test_sample_and_log_prob_is_change_of_variables(flow_pair):
    gen, nor = flow_pair
    key = jax.random.key(0)
    x, log_q = gen.sample_and_log_prob(key, 8)
    z = jax.random.normal(key, (8, 2))
    ld = jax.jit(jax.vmap(lambda v: _jacobian_log_det(lambda t: gen._to_data(t)[0], v)))(z)
    expected = stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(np.asarray(z)) - ld
    np.testing.assert_allclose(log_q, expected, atol=1e-9)
    # log_prob by the numerical inverse agrees with sample_and_log_prob
    np.testing.assert_allclose(gen.log_prob(x), log_q, atol=1e-8)
    # the normalizing flow samples through its inverse and gets the same numbers
    xn, log_qn = nor.sample_and_log_prob(key, 8)
    np.testing.assert_allclose(nor.log_prob(xn), log_qn, atol=1e-8)


@pytest.mark.parametrize("direction", [0, 1])
def test_density_integrates_to_one(flow_pair, direction):
    flow = flow_pair[direction]
    g = jnp.linspace(-10.0, 10.0, 401)
    xx, yy = jnp.meshgrid(g, g)
    pts = jnp.stack([xx.ravel(), yy.ravel()], axis=1)
    dens = jnp.exp(flow.log_prob(pts)).reshape(xx.shape)
    mass = integrate.trapezoid(integrate.trapezoid(np.asarray(dens), np.asarray(g)), np.asarray(g))
    assert abs(mass - 1.0) < 1e-2


def test_forward_kl_loss_is_negative_mean_log_likelihood(flow_pair):
    _, nor = flow_pair
    x = jax.random.normal(jax.random.key(3), (10, 2)) * 1.5 + 0.5
    z = nor.to_base(x)
    ld = jax.jit(jax.vmap(lambda v: _jacobian_log_det(lambda t: nor._to_base(t)[0], v)))(x)
    ll = stats.norm.logpdf(np.asarray(z)).sum(axis=1) + np.asarray(ld)
    np.testing.assert_allclose(flows.forward_kl_loss(nor, x), -ll.mean(), rtol=1e-10)


def test_reverse_kl_loss_estimates_kl_minus_log_z():
    """With q = N(0, I) (identity flow) and π ∝ N(m, s²I) · c, the loss estimates
    KL(q‖N(m, s²I)) − log(c·Z_N): unbiased for the closed form (check_unbiased at
    alpha = 1e-4: within 3.89 standard errors)."""
    flow = flows.Flow(flows.Affine.init(None, 2), 2)
    m, s, log_c = jnp.array([1.0, -0.5]), 1.5, 0.7

    def log_density(x):
        return jnp.sum(-0.5 * ((x - m) / s) ** 2) + log_c   # Z_N = 2π s²

    kl = 0.5 * (2 / s**2 + float(m @ m) / s**2 - 2 + 2 * 2 * math.log(s))
    exact = kl - log_c - math.log(2 * math.pi * s**2)
    check_unbiased(jax.random.key(0),
                   lambda k: flows.reverse_kl_loss(k, flow, log_density, n_samples=16),
                   exact, 400, alpha=1e-4)


def test_log_prob_gradient_through_numerical_inverse():
    """Implicit-function gradients of a generative flow's log_prob equal finite differences."""
    flow = flows.planar_flow(jax.random.key(2), 2, 3, scale=1.0)
    x = jnp.array([[0.4, -1.2], [2.0, 0.5]])

    def f(b):
        layers = flow.layers.layer                       # the Stack's (L, d) parameters
        return jnp.sum(flows.Flow(flows.Stack(flows.Planar(layers.w, layers.u, b)), 2)
                       .log_prob(x))

    b0 = flow.layers.layer.b
    grad = jax.grad(f)(b0)
    check_gradient(f, lambda b: grad, b0, step=1e-6, fd_rtol=1e-5, atol=1e-7, autodiff=False,
                   richardson=False, batched=False)


# ----------------------------------------------------------------------------- training


def test_reverse_kl_recovers_gaussian_target(capsys):
    mean = jnp.array([1.0, -0.5])
    cov = jnp.array([[1.0, 0.6], [0.6, 0.8]])
    prec = jnp.linalg.inv(cov)

    def log_density(x):
        d = x - mean
        return -0.5 * d @ prec @ d

    flow = flows.planar_flow(jax.random.key(0), 2, 2, affine=True)
    res = flows.fit(jax.random.key(1), flow, log_density=log_density, n_samples=128,
                    n_steps=1000, optimizer=optax.adam(optax.cosine_decay_schedule(3e-2, 1000)),
                    progress=True)
    assert "flow fit" in capsys.readouterr().err          # the optional tqdm bar ran
    assert bool(res.finite) and int(res.n_iter) == 1000
    x = res.params.sample(jax.random.key(2), 40_000)
    np.testing.assert_allclose(x.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(jnp.cov(x.T), cov, atol=0.04)
    # the loss → KL − log Z = −log Z, with Z = 2π |Σ|^{1/2}
    log_z = math.log(2 * math.pi) + 0.5 * math.log(float(jnp.linalg.det(cov)))
    assert abs(float(res.trace[-100:].mean()) + log_z) < 0.02


def test_forward_kl_fit_improves_likelihood_and_matches_sampled_data():
    key = jax.random.key(4)
    z = jax.random.normal(key, (600, 2))
    data = jnp.stack([z[:, 0], 0.5 * z[:, 1] + 0.4 * z[:, 0] ** 2 - 0.4], axis=1)   # a banana
    flow = flows.planar_flow(jax.random.key(5), 2, 4, direction="normalizing", affine=True)
    res = flows.fit(jax.random.key(6), flow, data=data, batch_size=128, n_steps=300,
                    learning_rate=1e-2)
    before = flows.forward_kl_loss(flow, data)
    after = flows.forward_kl_loss(res.params, data)
    assert bool(res.finite)
    # better than the best Gaussian fit (a flow with only the affine layer can do that)
    gauss_nll = -stats.multivariate_normal(np.mean(data, 0), np.cov(data.T, bias=True)).logpdf(
        np.asarray(data)).mean()
    assert float(after) < float(before) and float(after) < gauss_nll - 0.05


def test_training_never_nan_across_seeds_and_energies():
    """Reverse KL at learning rate 1e-2 on U1–U4, two seeds each (one compilation)."""
    flow = flows.planar_flow(jax.random.key(0), 2, 8)
    energies = [flows.U1, flows.U2, flows.U3, flows.U4]

    def run(key, which):
        return flows.fit(key, flow, log_density=lambda x: -jax.lax.switch(which, energies, x),
                         n_samples=64, n_steps=200, learning_rate=1e-2).trace
    keys = jax.random.split(jax.random.key(1), 8)
    which = jnp.repeat(jnp.arange(4), 2)
    losses = np.asarray(jax.jit(jax.vmap(run))(keys, which))
    assert np.all(np.isfinite(losses))
    assert np.all(losses[:, -50:].mean(1) < losses[:, :10].mean(1))     # and it learned


def test_init_and_step_reproduce_fit():
    """fit = init + a scan of step: stepping by hand with fit's keys gives fit's trace and
    parameters (reverse and forward KL)."""
    import equinox as eqx
    flow = flows.planar_flow(jax.random.key(0), 2, 3, affine=True)
    opt = optax.adam(1e-2)
    data = jax.random.normal(jax.random.key(8), (50, 2))
    for kw in (dict(log_density=lambda x: -flows.U2(x), n_samples=32),
               dict(data=data, batch_size=16)):
        res = flows.fit(jax.random.key(1), flow, optimizer=opt, n_steps=4, **kw)
        state = flows.init(flow, optimizer=opt)
        values = []
        for k in jax.random.split(jax.random.key(1), 4):
            state, info = flows.step(k, state, flow, optimizer=opt, **kw)
            values.append(info.value)
            assert float(info.error) == 0.0
        np.testing.assert_allclose(np.array(values), res.trace, rtol=1e-12)
        mine = eqx.combine(state.params, flow)
        np.testing.assert_allclose(mine.layers[1].layer.w, res.params.layers[1].layer.w,
                                   rtol=1e-12)


def test_fit_vmaps_over_learning_rate_and_keeps_float32():
    flow = flows.planar_flow(jax.random.key(0), 2, 2, dtype=jnp.float32)
    target = lambda x: -flows.U2(x)  # noqa: E731

    def run(lr):
        return flows.fit(jax.random.key(1), flow, log_density=target, n_samples=32, n_steps=50,
                         learning_rate=lr)
    lrs = jnp.array([1e-3, 1e-2], jnp.float32)
    res = jax.jit(jax.vmap(run))(lrs)
    assert res.trace.shape == (2, 50) and res.trace.dtype == jnp.float32
    single = run(lrs[1])
    np.testing.assert_allclose(res.trace[1], single.trace, rtol=1e-4, atol=1e-4)
    x, lq = single.params.sample_and_log_prob(jax.random.key(0), 5)
    assert x.dtype == jnp.float32 and lq.dtype == jnp.float32
    assert single.params.log_prob(x).dtype == jnp.float32


class _Scale(flows.Bijection):
    """A user-defined layer: f(z) = eˢ ⊙ z + t (elementwise), log|det J| = Σ s."""

    log_scale: jax.Array
    shift: jax.Array

    @classmethod
    def init(cls, key, dim, *, scale=0.01, dtype=None):
        return cls(scale * jax.random.normal(key, (dim,), dtype or jnp.float64),
                   jnp.zeros((dim,), dtype or jnp.float64))

    def forward_and_log_det(self, z):
        return jnp.exp(self.log_scale) * z + self.shift, jnp.sum(self.log_scale)

    def inverse_and_log_det(self, x):
        return (x - self.shift) * jnp.exp(-self.log_scale), -jnp.sum(self.log_scale)


def test_user_defined_layer_in_a_flow_and_in_fit():
    """A Bijection subclass needs no registration: alone, stacked and next to planar layers
    its log-density is the change of variables, and forward-KL fit of the layer alone reaches
    the closed-form maximum likelihood (the sample mean and standard deviation)."""
    with pytest.raises(TypeError):
        flows.Bijection()                                         # abstract
    with pytest.raises(TypeError, match="Bijection"):
        flows.Flow((flows.Affine.init(None, 2), "planar"), 2)
    layer = _Scale(jnp.array([0.3, -0.2]), jnp.array([0.5, 1.0]))
    stack = flows.stack_layers(jax.random.key(1), _Scale, 2, 3, scale=0.5)
    assert isinstance(stack, flows.Stack) and stack.n_layers == 3
    planar = flows.stack_layers(jax.random.key(2), flows.Planar, 2, 2, scale=0.5)
    flow = flows.Flow((layer, stack, planar), 2, "normalizing")
    assert flow.n_layers == 6
    x = jnp.array([[0.4, -1.2], [2.0, 0.5]])
    ld = jax.vmap(lambda v: _jacobian_log_det(lambda t: flow._to_base(t)[0], v))(x)
    expected = stats.norm.logpdf(np.asarray(flow.to_base(x))).sum(1) + np.asarray(ld)
    np.testing.assert_allclose(flow.log_prob(x), expected, rtol=1e-10)
    np.testing.assert_allclose(flow.to_data(flow.to_base(x)), x, atol=1e-9)

    data = jnp.asarray(np.random.default_rng(0).normal([1.0, -2.0], [0.5, 2.0], (400, 2)))
    res = flows.fit(jax.random.key(3), flows.Flow(layer, 2, "normalizing"), data=data,
                    batch_size=400, n_steps=2000, learning_rate=3e-2)
    assert isinstance(res, flows.TrainResult) and bool(res.finite)
    fitted = res.params.layers
    np.testing.assert_allclose(-fitted.shift / jnp.exp(fitted.log_scale), data.mean(0),
                               atol=1e-3)
    np.testing.assert_allclose(jnp.exp(-fitted.log_scale), data.std(0), rtol=1e-3)


# ----------------------------------------------------------------------------- energies


@pytest.mark.parametrize("name,mass", [
    ("U2", 0.4 * math.sqrt(2 * math.pi)),
    ("U3", 2 * 0.35 * math.sqrt(2 * math.pi)),
    ("U4", (0.4 + 0.35) * math.sqrt(2 * math.pi)),
])
def test_energy_slices_integrate_to_gaussian_masses(name, mass):
    """For fixed z₁, exp(−U) is a sum of Gaussian bumps in z₂: its integral is closed form."""
    z1 = jnp.array([-2.3, 0.0, 0.9, 1.7])
    z2 = jnp.linspace(-15.0, 15.0, 30001)
    z = jnp.stack(jnp.broadcast_arrays(z1[:, None], z2[None, :]), axis=-1)   # (4, m, 2)
    dens = np.asarray(jnp.exp(-flows.ENERGIES[name](z)))
    np.testing.assert_allclose(integrate.simpson(dens, x=np.asarray(z2), axis=1), mass,
                               rtol=1e-8)


def test_u1_matches_table_1():
    z = np.array([[0.5, -1.7], [2.1, 0.3], [0.0, 0.0]])
    r = np.linalg.norm(z, axis=1)
    expected = 0.5 * ((r - 2) / 0.4) ** 2 - np.log(np.exp(-0.5 * ((z[:, 0] - 2) / 0.6) ** 2)
                                                   + np.exp(-0.5 * ((z[:, 0] + 2) / 0.6) ** 2))
    np.testing.assert_allclose(flows.U1(jnp.asarray(z)), expected, rtol=1e-12)
    assert np.all(np.isfinite(np.asarray(jax.grad(lambda v: flows.U1(v))(jnp.zeros(2)))))


# ----------------------------------------------------------------------------- bad input


def test_bad_input():
    flow = flows.planar_flow(jax.random.key(0), 2, 2)
    with pytest.raises(ValueError, match="exactly one"):
        flows.fit(jax.random.key(0), flow)
    with pytest.raises(ValueError, match="columns"):
        flows.fit(jax.random.key(0), flow, data=jnp.ones((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        flows.fit(jax.random.key(0), flow, data=jnp.full((5, 2), jnp.nan))
    with pytest.raises(ValueError, match="direction"):
        flows.Flow(flow.layers, 2, "sideways")
    with pytest.raises(ValueError, match="last dimension"):
        flow.log_prob(jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="learning_rate"):
        flows.fit(jax.random.key(0), flow, log_density=flows.U1, learning_rate=-1.0)



def test_log_density_and_parameter_checks():
    flow = flows.planar_flow(jax.random.key(0), 2, 2)
    opt = optax.adam(1e-2)
    state = flows.init(flow, optimizer=opt)
    for call in (lambda ld: flows.fit(jax.random.key(0), flow, log_density=ld, n_steps=2),
                 lambda ld: flows.step(jax.random.key(0), state, flow, optimizer=opt,
                                       log_density=ld),
                 lambda ld: flows.reverse_kl_loss(jax.random.key(0), flow, ld)):
        with pytest.raises(TypeError, match="log_density must be callable"):
            call("U1")
        with pytest.raises(ValueError, match=r"log_density must return an array of shape \(\)"):
            call(lambda z: z ** 2)                         # a vector per point
    wrong = eqx.tree_at(lambda f: f.layers.layer.w, flow, jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"flow.layers\[0\] \(Stack\) parameters have the wrong"):
        flows.fit(jax.random.key(0), wrong, log_density=lambda z: -flows.U1(z), n_steps=2)
    with pytest.raises(ValueError, match="wrong shape"):
        wrong.log_prob(jnp.zeros(2))
    with pytest.raises(ValueError, match="wrong shape"):
        wrong.sample(jax.random.key(0), 3)
    nan_flow = eqx.tree_at(lambda f: f.layers.layer.b, flow, jnp.full(2, jnp.nan))
    with pytest.raises(ValueError, match="flow contains NaN"):
        flows.fit(jax.random.key(0), nan_flow, log_density=lambda z: -flows.U1(z), n_steps=2)


def test_bad_learning_rates_and_data_eagerly_and_under_jit():
    flow = flows.planar_flow(jax.random.key(0), 2, 2, direction="normalizing")
    data = np.random.default_rng(0).normal(size=(20, 2))
    run = jax.jit(lambda lr, x: flows.fit(jax.random.key(0), flow, data=x, n_steps=2,
                                          learning_rate=lr).trace)
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="learning_rate must"):
            flows.fit(jax.random.key(0), flow, data=data, n_steps=2, learning_rate=bad)
        with pytest.raises(Exception, match="learning_rate must"):
            run(bad, data)
    bad_data = data.copy()
    bad_data[3, 1] = np.inf
    with pytest.raises(Exception, match="data contains NaN or inf"):
        run(1e-2, bad_data)
    with pytest.raises(Exception, match="learning_rate must"):
        jax.vmap(run, (0, None))(jnp.array([1e-2, -1e-2]), data)
    assert np.all(np.isfinite(np.asarray(run(1e-2, data))))


def test_diverged_or_nan_target_fit_reports_not_finite():
    flow = flows.planar_flow(jax.random.key(0), 2, 4)
    res = flows.fit(jax.random.key(1), flow, log_density=lambda z: jnp.nan * z[0], n_steps=10,
                    n_samples=32)
    assert not bool(res.finite) and int(res.n_iter) == 0 and np.all(np.isnan(res.trace))
    flow = flows.planar_flow(jax.random.key(0), 2, 4, affine=True)
    res = flows.fit(jax.random.key(1), flow, log_density=lambda z: -flows.U1(z), n_steps=10,
                    n_samples=32, learning_rate=1e6)
    assert not bool(res.finite) and int(res.n_iter) < 10
    leaves = jax.tree_util.tree_leaves(eqx.filter(res.params, eqx.is_inexact_array))
    assert all(np.all(np.isfinite(np.asarray(a))) for a in leaves)     # the last finite flow
