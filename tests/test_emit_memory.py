"""The emitted module computes the way the evaluator does (one `Schedule`, one set of kernels):
the same peak memory — temporaries freed after their last use, element-wise results written over
dead temporaries, tensors built from their index form in one array — and the same rank-k update
for XᵀDX.  Peaks are measured with tracemalloc (which sees numpy's allocations), against the
size of the arrays the result needs, so each bound fails on the old generator."""

import tracemalloc

import numpy as np
import pytest

import gradcli
from gradcli.numeric.emit import emit_module
from helpers import load_module


def _emitted(text, values, tmp_path, hessian=False, dialect="numpy"):
    p = gradcli.analyze(text, data_shapes={k: np.shape(v) for k, v in values.items()})
    derivs = p.hessians() if hessian else p.derivatives()
    module = load_module(emit_module(p, derivs, {}, hessian, dialect), tmp_path,
                         f"m_{abs(hash((text, dialect))) % 10 ** 8}")
    fn = module.value_and_hess if hessian else module.value_and_grad
    return lambda: fn(**values)


def _evaluated(text, values, hessian=False):
    p = gradcli.analyze(text, data_shapes={k: np.shape(v) for k, v in values.items()})
    compiled = p.compile(hessian=hessian)
    return lambda: compiled(**values)


def _peak_bytes(fn):
    fn()  # warm (imports, caches)
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


RNG = np.random.default_rng(0)
M_SIZE, RANK = 400, 4
FACTORISATION = ("||M - U@V'||_F^2 wrt U, V",
                 {"M": RNG.normal(size=(M_SIZE, M_SIZE)), "U": RNG.normal(size=(M_SIZE, RANK)),
                  "V": RNG.normal(size=(M_SIZE, RANK))})
R = 60
JACOBIAN_W = ("tanh(W@x + b) wrt W", {"W": RNG.normal(size=(R, R)) / R, "x": RNG.normal(size=R),
                                      "b": RNG.normal(size=R)})


@pytest.mark.parametrize("run", ["emitted", "evaluated"])
def test_the_residual_of_a_factorisation_is_one_matrix(run, tmp_path):
    """M − UVᵀ: UVᵀ is written over by the subtraction, so one m×m matrix is ever live (the old
    module held UVᵀ and M − UVᵀ to the end: twice that)."""
    text, values = FACTORISATION
    fn = _emitted(text, values, tmp_path) if run == "emitted" else _evaluated(text, values)
    f, d = fn()
    M, U, V = values["M"], values["U"], values["V"]
    assert np.isclose(f, np.sum((M - U @ V.T) ** 2)) and np.allclose(d["U"], -2 * (M - U @ V.T) @ V)
    assert _peak_bytes(fn) < 1.3 * M_SIZE ** 2 * 8


def test_a_tensor_jacobian_is_one_array(tmp_path):
    """∂tanh(Wx + b)/∂W is built in one r×r×r array (the old module stacked r VJPs in a list and
    copied them: twice that)."""
    text, values = JACOBIAN_W
    fn = _emitted(text, values, tmp_path)
    f, d = fn()
    W, x, b = values["W"], values["x"], values["b"]
    s = 1 - np.tanh(W @ x + b) ** 2
    assert np.allclose(d["W"], np.einsum("ik,l->ikl", np.diag(s), x))
    assert _peak_bytes(fn) < 1.2 * R ** 3 * 8


def test_a_tensor_without_an_index_form_is_written_in_place(tmp_path, monkeypatch):
    """Where no index form is found (forced here: with concrete sizes one nearly always is), the
    VJP loop writes each row into one preallocated array (the old module stacked a list: twice)."""
    import gradcli.numeric.emit

    monkeypatch.setattr(gradcli.numeric.emit, "_index_form", lambda d: None)
    rng = np.random.default_rng(3)
    values = {"A": rng.normal(size=(30, 30)) + 30 * np.eye(30)}
    fn = _emitted("inv(A) wrt A", values, tmp_path)
    _, d = fn()
    inv = np.linalg.inv(values["A"])
    assert np.allclose(d["A"], -np.einsum("ik,lj->ijkl", inv, inv))
    assert _peak_bytes(fn) < 1.3 * 30 ** 4 * 8


def test_a_tensor_from_its_index_form_is_one_array(tmp_path):
    """−A⁻¹ ⊗ A⁻¹ goes straight into J (einsum's `out`), scaled in place: no temporary of J's size."""
    rng = np.random.default_rng(4)
    values = {"A": rng.normal(size=(30, 30)) + 30 * np.eye(30)}
    for fn in (_emitted("inv(A) wrt A", values, tmp_path), _evaluated("inv(A) wrt A", values)):
        _, d = fn()
        inv = np.linalg.inv(values["A"])
        assert np.allclose(d["A"], -np.einsum("ik,lj->ijkl", inv, inv))
        assert _peak_bytes(fn) < 1.3 * 30 ** 4 * 8


@pytest.mark.parametrize("run", ["emitted", "evaluated"])
def test_the_logistic_hessian_is_a_rank_k_update(run, tmp_path):
    """XᵀDX is computed as BᵀB with B = √D X, a symmetric rank-k update: the Hessian is symmetric
    to the last bit (a general product of Xᵀ and DX is not)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 40))
    values = {"X": X, "y": np.where(rng.normal(size=300) > 0, 1.0, -1.0), "w": 0.1 * rng.normal(size=40)}
    text = "sum(softplus(-y*(X@w))) wrt w"
    fn = _emitted(text, values, tmp_path, hessian=True) if run == "emitted" else _evaluated(text, values, True)
    _, d = fn()
    H = d["w"]
    z = -values["y"] * (X @ values["w"])
    s = 1 / (1 + np.exp(-z))
    assert np.allclose(H, (X.T * (s * (1 - s))) @ X) and np.array_equal(H, H.T)


def test_symbolic_sizes_keep_the_rank_k_update(tmp_path):
    """The module emitted with its sizes symbolic (no data) still finds XᵀDX."""
    p = gradcli.analyze("sum(softplus(-y*(X@w))) wrt w")
    source = emit_module(p, p.hessians(), {}, True, "numpy")
    module = load_module(source, tmp_path, "symbolic_hessian")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 7))
    _, d = module.value_and_hess(X=X, y=np.sign(rng.normal(size=50)), w=rng.normal(size=7))
    assert np.array_equal(d["w"], d["w"].T)


def test_long_index_form_products_are_contracted_pairwise(tmp_path, monkeypatch):
    """A tensor term with many factors (the Hessian of logdet(M Mᵀ + I) through a chain) is
    contracted pairwise (einsum's optimize) in the evaluator and the emitted module: one loop
    nest over all 16 indices took seconds at 3×3."""
    text = "logdet((exp(0.1*D)@inv(A@A' + eye(3)))@(exp(0.1*D)@inv(A@A' + eye(3)))' + eye(3)) wrt A, D"
    rng = np.random.default_rng(5)
    values = {"A": rng.normal(size=(3, 3)), "D": rng.normal(size=(3, 3))}
    calls = []
    einsum = np.einsum

    def spy(*args, **kw):
        calls.append((args[0].count(",") + 1, bool(kw.get("optimize", False))))
        return einsum(*args, **kw)
    emitted = _emitted(text, values, tmp_path, hessian=True)
    evaluated = _evaluated(text, values, hessian=True)
    monkeypatch.setattr(np, "einsum", spy)
    (_, d_emit), (_, d_eval) = emitted(), evaluated()
    assert all(np.allclose(d_emit[k], d_eval[k]) for k in d_eval)
    long = [optimized for count, optimized in calls if count > 2]
    assert long and all(long)


@pytest.mark.parametrize("text", ["sum(W * unvec(x, 3)) wrt x, W", "sum(vec(W) * x) wrt W, x",
                                  "sum(tanh(W' * 2) * unvec(x, 3)') wrt W"])
def test_in_place_writes_never_reach_an_input(text, tmp_path):
    """A view of an input (a transpose, vec, unvec) is never written over, by the evaluator or
    by the emitted module: the inputs are unchanged and the results right."""
    rng = np.random.default_rng(6)
    values = {"W": rng.normal(size=(3, 4)), "x": rng.normal(size=12)}
    p = gradcli.analyze(text, data_shapes={k: v.shape for k, v in values.items()})
    values = {k: v for k, v in values.items() if k in p.symbols}
    before = {k: v.copy() for k, v in values.items()}
    f_emit, d_emit = _emitted(text, values, tmp_path)()
    assert all(np.array_equal(values[k], before[k]) for k in values)
    f_eval, d_eval = _evaluated(text, values)()
    assert all(np.array_equal(values[k], before[k]) for k in values)
    assert np.allclose(f_emit, f_eval) and all(np.allclose(d_emit[k], d_eval[k]) for k in d_eval)
