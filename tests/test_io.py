"""jaxml.save / jaxml.load: round trips of results and models, and every way a file can be wrong."""

import io
import json
import os
import zipfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxml
from jaxml import io as jio


def _leaves_identical(a, b):
    """Same tree structure, and every array leaf has the same dtype, shape and bytes."""
    la, ta = jax.tree_util.tree_flatten(a, is_leaf=lambda x: x is None)
    lb, tb = jax.tree_util.tree_flatten(b, is_leaf=lambda x: x is None)
    assert ta == tb
    for x, y in zip(la, lb):
        assert type(x) is type(y) or (isinstance(x, jax.Array) and isinstance(y, jax.Array))
        if isinstance(x, (jax.Array, np.ndarray, np.generic)):
            x, y = np.asarray(x), np.asarray(y)
            assert x.dtype == y.dtype and x.shape == y.shape
            assert x.tobytes() == y.tobytes()
        else:
            assert x == y or x is y


def _round_trip(tmp_path, obj, name="obj.npz", **kwargs):
    path = tmp_path / name
    jaxml.save(path, obj)
    out = jaxml.load(path, **kwargs)
    assert type(out) is type(obj)
    _leaves_identical(obj, out)
    return out


@pytest.fixture(scope="module")
def data():
    X = jax.random.normal(jax.random.key(0), (60, 3))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(jnp.int32)
    return X, y


def test_top_level_names():
    assert jaxml.save is jio.save and jaxml.load is jio.load
    assert {"save", "load", "io"} <= set(dir(jaxml))


# ============================================================================ round trips

def test_kmeans_round_trip(tmp_path, data):
    X, _ = data
    res = jaxml.kmeans.fit(jax.random.key(1), X, 3, max_iter=20)
    out = _round_trip(tmp_path, res)
    np.testing.assert_array_equal(jaxml.kmeans.predict(out, X), jaxml.kmeans.predict(res, X))


def test_pca_round_trip(tmp_path, data):
    X, _ = data
    res = jaxml.pca.fit(X, 2)
    out = _round_trip(tmp_path, res)
    np.testing.assert_array_equal(jaxml.pca.transform(out, X), jaxml.pca.transform(res, X))


def test_naive_bayes_round_trip(tmp_path, data):
    X, y = data
    res = jaxml.naive_bayes.fit_gaussian(X, y, 2)
    out = _round_trip(tmp_path, res)
    np.testing.assert_array_equal(jaxml.naive_bayes.predict_proba(out, X),
                                  jaxml.naive_bayes.predict_proba(res, X))
    counts = jnp.abs(jnp.round(3 * X)).astype(jnp.float32)
    mnb = jaxml.naive_bayes.fit_multinomial(counts, y, 2)
    out = _round_trip(tmp_path, mnb, "mnb.npz")
    assert out[0].dtype == jnp.float32


def test_gmm_round_trip_keeps_the_static_covariance_type(tmp_path, data):
    covariance_type = "diag"  # not the default
    X, _ = data
    res = jaxml.gmm.fit(jax.random.key(2), X, 2, covariance_type=covariance_type, max_iter=10)
    out = _round_trip(tmp_path, res, expected_type=type(res))
    assert out.covariance_type == covariance_type
    np.testing.assert_array_equal(jaxml.gmm.predict_proba(out.params, X),
                                  jaxml.gmm.predict_proba(res.params, X))


def test_vi_family_round_trip(tmp_path):
    q = jaxml.vi.MeanFieldGaussian(jnp.array([0.5, -1.0]), jnp.array([-0.2, 0.1]))
    out = _round_trip(tmp_path, q)
    z = jnp.array([[0.1, 0.2], [1.0, -2.0]])
    np.testing.assert_array_equal(out.log_prob(z), q.log_prob(z))
    np.testing.assert_array_equal(out.sample(jax.random.key(3), 4), q.sample(jax.random.key(3), 4))


def test_flow_round_trip(tmp_path):
    flow = jaxml.flows.planar_flow(jax.random.key(4), 2, 3)
    out = _round_trip(tmp_path, flow)
    assert eqx.tree_equal(out, flow)
    x = jnp.array([[0.1, 0.2], [1.0, -2.0]])
    np.testing.assert_array_equal(out.log_prob(x), flow.log_prob(x))


def test_train_result_with_optimizer_state_round_trip(tmp_path):
    """A gradient-trained fit's result: TrainResult holding a Flow and optax's Adam state."""
    import optax

    flow = jaxml.flows.planar_flow(jax.random.key(10), 2, 2)
    opt_state = optax.adam(1e-3).init(eqx.filter(flow, eqx.is_array))
    res = jaxml.flows.TrainResult(params=flow, trace=jnp.array([1.0, 0.5, jnp.nan]),
                                  n_iter=jnp.asarray(2, jnp.int32), finite=jnp.asarray(True),
                                  opt_state=opt_state)
    out = _round_trip(tmp_path, res)
    assert type(out.opt_state[0]) is type(opt_state[0])
    x = jnp.array([[0.1, 0.2], [1.0, -2.0]])
    np.testing.assert_array_equal(out.params.log_prob(x), res.params.log_prob(x))


def test_vae_round_trip_without_a_skeleton(tmp_path):
    """Named activations (jax.nn.gelu) and equinox's MLP are stored by name."""
    model = jaxml.vae.VAE(jax.random.key(5), 4, 2, width=8, likelihood="gaussian")
    out = _round_trip(tmp_path, model)
    assert out.encoder.activation is jax.nn.gelu and out.likelihood == "gaussian"
    x = jnp.linspace(0.0, 1.0, 8).reshape(2, 4)
    np.testing.assert_array_equal(jaxml.vae.reconstruct(out, x), jaxml.vae.reconstruct(model, x))
    header = jio.read_header(tmp_path / "obj.npz")
    assert header["type"] == "jaxml.vae:VAE" and header["format_version"] == jio.FORMAT_VERSION


def test_bayesian_mlp_round_trip(tmp_path):
    model = jaxml.bayes_layers.BayesianMLP((3, 5, 2), key=jax.random.key(6))
    out = _round_trip(tmp_path, model)
    assert out.activation is jax.nn.relu
    x = jnp.ones((2, 3))
    np.testing.assert_array_equal(out(x, deterministic=True), model(x, deterministic=True))


def test_model_with_a_lambda_needs_like(tmp_path):
    def make(key):
        return jaxml.bayes_layers.BayesianMLP((3, 4, 1), key=key, activation=lambda v: v ** 3)

    model = make(jax.random.key(7))
    path = tmp_path / "m.npz"
    jaxml.save(path, model)
    with pytest.raises(ValueError, match="like="):
        jaxml.load(path)
    out = jaxml.load(path, like=make(jax.random.key(8)))
    x = jnp.ones((2, 3))
    np.testing.assert_array_equal(out(x, deterministic=True), model(x, deterministic=True))
    with pytest.raises(ValueError, match="shape"):
        jaxml.load(path, like=jaxml.bayes_layers.BayesianMLP((3, 5, 1), key=jax.random.key(8),
                                                               activation=lambda v: v))
    with pytest.raises(ValueError, match="function"):  # a named function against a lambda
        jaxml.save(path, jaxml.bayes_layers.BayesianMLP((3, 4, 1), key=jax.random.key(7)))
        jaxml.load(path, like=make(jax.random.key(8)))


def test_containers_scalars_keys_and_numpy(tmp_path):
    obj = {"a": [1, 2.5, True, None, "s", float("nan")],
           "t": (np.arange(4, dtype=np.int16), np.float32(1.5), np.dtype("float32")),
           "key": jax.random.key(9), 3: jnp.zeros((0, 2), jnp.float32),
           "bf16": jnp.arange(3, dtype=jnp.bfloat16), "minus_zero": jnp.array([-0.0, np.inf]),
           "text": np.array(["ab", "c"]), "complex": jnp.array([1 + 2j]), "bool": jnp.array(True)}
    path = tmp_path / "c.npz"
    jaxml.save(path, obj)
    out = jaxml.load(path)
    assert list(out) == list(obj)
    assert out["a"][:5] == obj["a"][:5] and np.isnan(out["a"][5])
    assert type(out["t"][0]) is np.ndarray and out["t"][0].dtype == np.int16
    assert type(out["t"][1]) is np.float32 and out["t"][2] == np.dtype("float32")
    assert jax.random.key_impl(out["key"]) == jax.random.key_impl(obj["key"])
    np.testing.assert_array_equal(jax.random.key_data(out["key"]), jax.random.key_data(obj["key"]))
    np.testing.assert_array_equal(jax.random.normal(out["key"], (3,)),
                                  jax.random.normal(obj["key"], (3,)))
    assert out["bf16"].dtype == jnp.bfloat16
    assert np.asarray(out["minus_zero"]).tobytes() == np.asarray(obj["minus_zero"]).tobytes()
    assert out[3].shape == (0, 2) and out[3].dtype == jnp.float32
    assert out["text"].tolist() == ["ab", "c"] and out["complex"].dtype == jnp.complex128
    assert out["bool"].dtype == jnp.bool_ and bool(out["bool"])


def test_file_objects_and_exact_path(tmp_path):
    buf = io.BytesIO()
    jaxml.save(buf, (jnp.arange(3),))
    buf.seek(0)
    np.testing.assert_array_equal(jaxml.load(buf)[0], jnp.arange(3))
    jaxml.save(tmp_path / "model.bin", None)  # the name is used as given
    assert os.listdir(tmp_path) == ["model.bin"]
    assert jaxml.load(tmp_path / "model.bin") is None


def test_unsupported_objects_raise_type_error(tmp_path):
    with pytest.raises(TypeError, match="set"):
        jaxml.save(tmp_path / "x.npz", {1, 2})
    with pytest.raises(TypeError, match="object array"):
        jaxml.save(tmp_path / "x.npz", np.array([None, 1], dtype=object))
    assert not os.listdir(tmp_path)  # nothing left behind


# ============================================================================ bad files

@pytest.fixture
def saved(tmp_path, data):
    X, y = data
    res = jaxml.naive_bayes.fit_gaussian(X, y, 2)
    path = tmp_path / "nb.npz"
    jaxml.save(path, res)
    return path, res


def _rewrite(path, edit_header=None, edit_arrays=None):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays.pop("__jaxml__").tobytes())
    if edit_header:
        edit_header(header)
    if edit_arrays:
        edit_arrays(arrays)
    with open(path, "wb") as f:
        np.savez(f, __jaxml__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)


def test_truncated_file(saved):
    path, _ = saved
    raw = path.read_bytes()
    for cut in (0, 10, len(raw) // 2, len(raw) - 5):
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="not a"):
            jaxml.load(path)


def test_corrupt_bytes(saved):
    path, _ = saved
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("a0.npy")
    # flip a byte inside the first array's data (past its local header and .npy header)
    pos = info.header_offset + 30 + len(info.filename) + info.file_size - 1
    raw[pos] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt|CRC|checksum"):
        jaxml.load(path)


def test_tampered_array_fails_the_checksum(saved):
    path, _ = saved
    _rewrite(path, edit_arrays=lambda a: a.__setitem__("a0", a["a0"] + 1))
    with pytest.raises(ValueError, match="checksum"):
        jaxml.load(path)


def test_not_a_jaxml_file(tmp_path):
    np.savez(tmp_path / "plain.npz", x=np.arange(3))
    with pytest.raises(ValueError, match="not a jaxml"):
        jaxml.load(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a"):
        jaxml.load(tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", np.arange(3))
    with pytest.raises(ValueError, match="not a jaxml"):
        jaxml.load(tmp_path / "one.npy")


def test_pickled_arrays_are_refused(saved):
    path, _ = saved
    _rewrite(path, edit_arrays=lambda a: a.__setitem__("a0", np.array([{"x": 1}], dtype=object)))
    with pytest.raises(ValueError):
        jaxml.load(path)


@pytest.mark.parametrize("version", ["2.0", "1.1", "0.9", "x"])
def test_other_format_version(saved, version):
    path, _ = saved
    _rewrite(path, edit_header=lambda h: h.__setitem__("format_version", version))
    with pytest.raises(ValueError, match="format version"):
        jaxml.load(path)


def test_other_jaxml_version(saved):
    path, res = saved
    _rewrite(path, edit_header=lambda h: h.__setitem__("jaxml_version", "0.0.1"))
    with pytest.raises(ValueError, match="jaxml 0.0.1"):
        jaxml.load(path)
    _leaves_identical(jaxml.load(path, check_version=False), res)


def test_patch_release_loads(saved):
    path, res = saved
    major, minor = jaxml.__version__.split(".")[:2]
    _rewrite(path, edit_header=lambda h: h.__setitem__("jaxml_version", f"{major}.{minor}.99"))
    _leaves_identical(jaxml.load(path), res)


def test_wrong_type(saved, data):
    path, res = saved
    with pytest.raises(ValueError, match="GaussianNaiveBayes"):
        jaxml.load(path, expected_type=jaxml.pca.PCAResult)
    with pytest.raises(ValueError, match="like="):
        jaxml.load(path, like=jaxml.pca.fit(data[0], 2))
    assert isinstance(jaxml.load(path, expected_type=tuple), type(res))  # NamedTuples are tuples


def test_changed_fields_are_refused(saved):
    path, _ = saved

    def rename(h):
        h["tree"]["fields"][0][0] = "renamed"
    _rewrite(path, edit_header=rename)
    with pytest.raises(ValueError, match="fields"):
        jaxml.load(path)


def test_untrusted_names_are_not_imported(saved):
    path, _ = saved
    for name in ("os:system", "subprocess:Popen", "jaxml.kmeans:__class__",
                 "jaxml.kmeans:NoSuchResult"):
        _rewrite(path, edit_header=lambda h: h["tree"].__setitem__("class", name))
        with pytest.raises(ValueError):
            jaxml.load(path)


def test_header_and_arrays_disagree(saved):
    path, _ = saved
    _rewrite(path, edit_arrays=lambda a: a.pop("a1"))
    with pytest.raises(ValueError, match="arrays"):
        jaxml.load(path)
    path2 = path.with_name("extra.npz")
    path2.write_bytes(b"")
    jaxml.save(path2, (jnp.ones(2),))
    _rewrite(path2, edit_arrays=lambda a: a.__setitem__("a0", np.ones(3)))
    with pytest.raises(ValueError, match="checksum|shape"):
        jaxml.load(path2)


def _paths(tree, prefix=()):
    """Every (path, value) position in a JSON tree."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for k, v in items:
        yield prefix + (k,)
        if isinstance(v, (dict, list)):
            yield from _paths(v, prefix + (k,))


def test_malformed_headers_raise_value_error(tmp_path):
    """Any position of the header replaced by junk: a clean ValueError, never another exception."""
    obj = {"p": jaxml.gmm.GMMParams(jnp.ones(2) / 2, jnp.zeros((2, 1)), jnp.ones((2, 1)), "diag"),
           "k": jax.random.key(0), "f": jax.nn.relu, "t": (np.int8(3), [None, 1.5])}
    path = tmp_path / "h.npz"
    jaxml.save(path, obj)
    header = jio.read_header(path)
    for where in _paths(header["tree"]):
        for junk in (None, 7, "x", [], {}, [["a", {}]]):
            jaxml.save(path, obj)

            def edit(h, where=where, junk=junk):
                node = h["tree"]
                for k in where[:-1]:
                    node = node[k]
                node[where[-1]] = junk
            _rewrite(path, edit_header=edit)
            try:
                jaxml.load(path)
            except ValueError:
                pass


def test_float64_file_without_x64(tmp_path):
    path = tmp_path / "f64.npz"
    jaxml.save(path, jnp.ones(2, jnp.float64))
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="x64"):
            jaxml.load(path)
    finally:
        jax.config.update("jax_enable_x64", True)
