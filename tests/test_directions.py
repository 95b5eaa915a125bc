"""Directional derivatives, Hessian-vector products and derivatives of order k (README: "Directions
and higher orders"), against the oracle (tests/oracle.py: autograd on an independent translation
of the formula), and the memory promise of the Hessian-vector product: no (n, n) array."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcli

autograd = pytest.importorskip("autograd")
sys.path.insert(0, os.path.dirname(__file__))
from oracle import translate  # noqa: E402

EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))


def _oracle(text: str, values: dict, x: str):
    """f as a function of x alone (the other symbols fixed), in autograd."""
    f = translate(text)
    return lambda z: f({**values, x: z})


def _evaluate_printed(formula: str, values: dict) -> np.ndarray:
    """A printed matrix formula, evaluated by the oracle's own translation (never gradcli's)."""
    return np.asarray(translate(formula)(values), dtype=float)


HVP_CASES = [
    ("sum(log(1 + exp(-y*(X@w)))) wrt w", {"X": (6, 4), "y": (6,), "w": (4,)}),
    ("||A@x - b||^4 wrt x", {"A": (5, 3), "b": (5,), "x": (3,)}),
    ("x'@A@x wrt x", {"A": (4, 4), "x": (4,)}),
    ("logsumexp(A@x) + sum(x^4) wrt x", {"A": (3, 4), "x": (4,)}),
    ("tr(X'@A@X) + sum(exp(X)) wrt X", {"A": (3, 3), "X": (3, 2)}),
]


@pytest.mark.parametrize("text,shapes", HVP_CASES)
def test_hessian_vector_products_equal_the_oracles_hessian_times_v(text, shapes):
    rng = np.random.default_rng(1)
    values = {n: 0.5 * rng.normal(size=s) for n, s in shapes.items()}
    x = text.split(" wrt ")[1]
    v = rng.normal(size=shapes[x])
    r = gradcli.hess(text, {**values, "v": v}, direction={x: "v"})
    d = r[x]
    H = autograd.hessian(_oracle(text, values, x))(values[x])
    n = v.size
    expected = (H.reshape(n, n) @ v.reshape(-1)).reshape(v.shape)
    assert d.kind == "hessian-vector" and d.shape == shapes[x]
    assert np.allclose(d.value, expected, rtol=1e-8, atol=1e-10)
    # the printed formula, evaluated on its own, is H·v too
    assert np.allclose(_evaluate_printed(d.ascii, {**values, "v": v}), expected, rtol=1e-8, atol=1e-10)


def test_the_hessian_vector_products_of_the_issue_print_as_textbooks_write_them():
    # the values are tested above; here the form: a vector formula, with no diag(…) or n×n product
    assert gradcli.hess("x'@A@x wrt x", direction="x=v")["x"].formula == "(A + Aᵀ)v"
    logistic = gradcli.hess("sum(log(1 + exp(-X@w))) wrt w", direction={"w": "v"})["w"].formula
    assert logistic.startswith("Xᵀ(Xv ⊙ ") and "diag" not in logistic and "XᵀX" not in logistic


def test_several_wrt_symbols_take_one_direction_each_and_stack():
    rng = np.random.default_rng(2)
    text = "x'@A@y + sum(exp(x)) * sum(y^2) wrt x, y"
    values = {"A": rng.normal(size=(3, 2)), "x": rng.normal(size=3), "y": rng.normal(size=2)}
    u, w = rng.normal(size=3), rng.normal(size=2)
    r = gradcli.hess(text, {**values, "u": u, "w": w}, direction={"x": "u", "y": "w"})
    f = translate(text)
    H = autograd.hessian(lambda z: f({**values, "x": z[:3], "y": z[3:]}))(np.concatenate([values["x"], values["y"]]))
    full = H @ np.concatenate([u, w])
    assert np.allclose(r["x"].value, full[:3]) and np.allclose(r["y"].value, full[3:])
    directional = gradcli.grad(text, {**values, "u": u, "w": w}, direction={"x": "u", "y": "w"})
    (key,) = directional
    g = autograd.grad(lambda z: f({**values, "x": z[:3], "y": z[3:]}))(np.concatenate([values["x"], values["y"]]))
    assert np.isclose(directional[key].value, g @ np.concatenate([u, w]))
    with pytest.raises(gradcli.GradcliError, match="y has no direction"):
        gradcli.hess(text, direction={"x": "u"})


@pytest.mark.parametrize("text,shapes", [
    ("inv(X) wrt X", {"X": (3, 3)}),
    ("X'@X wrt X", {"X": (4, 3)}),
    ("tanh(W@x + b) wrt W", {"W": (3, 2), "x": (2,), "b": (3,)}),
    ("exp(X)@B wrt X", {"X": (2, 3), "B": (3, 2)}),
    ("softmax(A@x) wrt x", {"A": (3, 4), "x": (4,)}),
])
def test_directional_derivatives_of_matrix_functions_are_jacobian_vector_products(text, shapes):
    rng = np.random.default_rng(3)
    values = {n: 0.5 * rng.normal(size=s) for n, s in shapes.items()}
    if "inv" in text:
        values["X"] += 2 * np.eye(3)
    x = text.split(" wrt ")[1]
    v = rng.normal(size=shapes[x])
    r = gradcli.grad(text, {**values, "V": v}, direction={x: "V"})
    d = r[x]
    J = autograd.jacobian(_oracle(text, values, x))(values[x])
    f_shape = J.shape[:J.ndim - v.ndim]
    expected = J.reshape(*f_shape, v.size) @ v.reshape(-1)
    assert d.kind == "directional" and d.value.shape == f_shape
    assert np.allclose(d.value, expected, rtol=1e-8, atol=1e-10)
    assert np.allclose(_evaluate_printed(d.ascii, {**values, "V": v}), expected, rtol=1e-8, atol=1e-10)


THIRD = [
    ("sum(exp(A@x)) wrt x", {"A": (4, 3), "x": (3,)}),
    ("x'@A@x*x'@x wrt x", {"A": (3, 3), "x": (3,)}),
    ("logsumexp(x) wrt x", {"x": (4,)}),
    ("log(det(X)) wrt X", {"X": (2, 2)}),
    ("sum(tanh(W@x)) wrt W", {"W": (2, 2), "x": (2,)}),
    ("||A@x||^4 wrt x", {"A": (1, 1), "x": (1,)}),  # a chain of 1×1 factors (its ordering once looped)
]


def _oracle_tensor(text, values, x, order):
    g = _oracle(text, values, x)
    for _ in range(order):
        g = autograd.jacobian(g)
    return g(values[x])


def _printed_tensor(d, values):
    """The tensor as printed (index notation), evaluated by einsum from its printed terms."""
    from gradcli.calculus.indexform import evaluate_terms
    from gradcli.numeric.evaluate import compile_graph

    t = d.tensor
    terms = t.display_terms()
    factors = list(dict.fromkeys(f[3] for term in terms for f in term.factors if f[0] == "t"))
    computed = dict(zip(factors, compile_graph(factors).run(values)))
    names = t.names()
    own = len(t.g.ty.dims)
    shape = tuple(int(k) for k in d.shape)
    return evaluate_terms(terms, tuple(names[:-own] if own else names), tuple(names[len(names) - own:]), shape,
                          computed)


@pytest.mark.parametrize("order", [3, 4])
@pytest.mark.parametrize("text,shapes", THIRD)
def test_derivatives_of_order_k_equal_the_oracles(text, shapes, order):
    if order == 4 and "X" in text:
        pytest.skip("a matrix's 4th derivative has 8 indices: autograd takes long")
    rng = np.random.default_rng(4)
    values = {n: 0.5 * rng.normal(size=s) for n, s in shapes.items()}
    if "det" in text:
        values["X"] += 2 * np.eye(2)
    x = text.split(" wrt ")[1]
    r = gradcli.grad(text, values, order=order)
    d = r[x]
    expected = _oracle_tensor(text, values, x, order)
    assert d.kind == "tensor" and d.shape == shapes[x] * order
    assert np.allclose(d.value, expected, rtol=1e-7, atol=1e-9)
    if 1 in shapes[x]:  # singleton axes have no index form (as for Jacobians): values only
        return
    assert d.formula.startswith("[") and "] = " in d.formula  # index notation
    assert np.allclose(_printed_tensor(d.derivative, values), expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("text,shapes", [
    ("tanh(W@x) wrt x", {"W": (2, 3), "x": (3,)}),
    ("softmax(x) wrt x", {"x": (3,)}),
    ("exp(X)@B wrt X", {"X": (2, 2), "B": (2, 2)}),
    ("x*sum(x^2) wrt x", {"x": (3,)}),
])
def test_the_hessian_of_a_vector_or_matrix_f_is_a_tensor(text, shapes):
    rng = np.random.default_rng(5)
    values = {n: 0.5 * rng.normal(size=s) for n, s in shapes.items()}
    x = text.split(" wrt ")[1]
    d = gradcli.hess(text, values)[x]
    expected = _oracle_tensor(text, values, x, 2)
    assert d.kind == "hessian" and d.value.shape == expected.shape
    assert np.allclose(d.value, expected, rtol=1e-8, atol=1e-10)
    assert np.allclose(_printed_tensor(d.derivative, values), expected, rtol=1e-8, atol=1e-10)


SCALARS = ["sum(exp(A@x))", "x'@A@x*x'@x", "logsumexp(x)", "sum(log(1 + exp(A@x)))", "||A@x||^4",
           "sum(sin(x) * cos(A@x))", "x'@A@x / (1 + x'@x)", "sum(sqrt(1 + (A@x)^2))"]


@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES)
@given(st.sampled_from(SCALARS), st.integers(1, 3), st.integers(0, 10_000), st.sampled_from([2, 3]))
def test_random_formulas_directions_and_orders_agree_with_the_oracle(text, n, seed, order):
    rng = np.random.default_rng(seed)
    values = {"A": rng.normal(size=(n, n)) / np.sqrt(n), "x": 0.7 * rng.normal(size=n)}
    values = {k: a for k, a in values.items() if k in text}
    v = rng.normal(size=n)
    H = autograd.hessian(_oracle(text, values, "x"))(values["x"])
    hvp = gradcli.hess(f"{text} wrt x", {**values, "v": v}, direction={"x": "v"})["x"]
    assert np.allclose(hvp.value, H @ v, rtol=1e-7, atol=1e-9), text
    assert np.allclose(_evaluate_printed(hvp.ascii, {**values, "v": v}), H @ v, rtol=1e-7, atol=1e-9), text
    d = gradcli.grad(f"{text} wrt x", values, order=order)["x"]
    expected = H if order == 2 else _oracle_tensor(text, values, "x", 3)
    assert np.allclose(d.value, expected, rtol=1e-7, atol=1e-9), text


def test_the_hessian_vector_product_never_builds_an_n_by_n_array():
    # n = 20000: the Hessian would be 3.2 GB; the evaluation plan holds no array with two axes of n
    n, m = 20_000, 5
    rng = np.random.default_rng(6)
    X, y, w, v = rng.normal(size=(m, n)) / 100, np.sign(rng.normal(size=m)), rng.normal(size=n), rng.normal(size=n)
    r = gradcli.hess("sum(log(1 + exp(-y*(X@w)))) wrt w", X=X, y=y, w=w, v=v, direction={"w": "v"})
    program = r.compiled().program
    shapes = [tuple(step.node.ty.dims) for step in program.plan.steps]
    assert shapes and all(s.count(n) <= 1 for s in shapes), [s for s in shapes if s.count(n) > 1]
    tracemalloc.start()  # numpy reports its buffers to tracemalloc: the evaluation's peak memory
    try:
        value = r["w"].value
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * n * 8, peak  # a few vectors of n, where H alone is n² · 8 bytes = 3.2 GB
    s = 1 / (1 + np.exp(y * (X @ w)))  # σ(−y ⊙ Xw), by hand: H·v = Xᵀ(s(1 − s) ⊙ Xv) as y² = 1
    assert np.allclose(value, X.T @ (s * (1 - s) * (X @ v)))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gradcli", *args], capture_output=True, text=True)


def test_the_command_line_checks_directions_and_orders_against_finite_differences(tmp_path):
    np.save(tmp_path / "v.npy", np.array([1.0, -2.0, 0.5]))
    out = _cli("hess", "sum(exp(A@x)) wrt x", "-s", "A=4x3", "--random", "--check", "--json",
               "--direction", "x=v", "-d", f"v={tmp_path / 'v.npy'}")
    assert out.returncode == 0, out.stderr
    (entry,) = json.loads(out.stdout)["derivatives"]
    assert entry["kind"] == "hessian-vector" and entry["direction"] == {"x": "v"} and entry["check"]["ok"]
    out = _cli("grad", "x'@A@x*x'@x wrt x", "-s", "x=3", "--random", "--check", "--order", "3", "--json")
    assert out.returncode == 0, out.stderr
    (entry,) = json.loads(out.stdout)["derivatives"]
    assert entry["kind"] == "tensor" and entry["order"] == 3 and entry["shape"] == [3, 3, 3] and entry["check"]["ok"]


@pytest.mark.parametrize("args,message,code", [
    (["hess", "x'@A@x wrt x", "--direction", "x"], "expected X=V", 2),
    (["hess", "x'@A@x wrt x", "--direction", "y=v"], "y is not differentiated", 2),
    (["hess", "x'@A@x wrt x", "--direction", "x=A"], "A is a symbol of the formula", 2),
    (["grad", "x'@A@x wrt x", "--order", "9"], "--order 9: expected", 2),
    (["hess", "x'@A@x wrt x", "--order", "3"], "hess is the order 2", 2),
    (["grad", "A@x wrt x", "--order", "3"], "needs a scalar f", 1),
    (["hess", "x'@A@x wrt x", "-s", "A=3x3", "--direction", "x=v", "-d", "v=2", "--random"],
     "a direction has the shape", 1),
    (["hess", "x'@A@x wrt x", "-s", "A=3x3", "--direction", "x=v", "-d", "v=2"], "no value for 'x'", 1),
    (["grad", "x'@x wrt x", "-s", "x=3", "-s", "v=4", "--direction", "x=v", "--random"],
     "a direction has the shape of its symbol: x has shape (3,)", 1),
    (["grad", "x'@A@x wrt x", "--order", "3", "--steps"], "not available for --order 3", 2),
    (["grad", "x'@A@x wrt x", "--order", "3", "--emit", "numpy"], "not available for --order 3", 2),
    (["grad", "x'@A@x wrt x", "--order", "3", "--claim", "A"], "not available for --order 3", 2),
    (["hess", "A@x wrt x", "--steps"], "not available for the Hessian of a vector or matrix f", 2),
])
def test_mistakes_are_one_clear_message(args, message, code):
    out = _cli(*args)
    assert out.returncode == code and message in out.stderr and "Traceback" not in out.stderr, out.stderr
