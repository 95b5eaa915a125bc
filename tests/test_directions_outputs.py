"""`--direction` with `--emit`, `--steps` and `--claim` (issue 17), the one place a direction's
shape is checked, and the arrays of `gradcli.hess(..., direction=...)` used without a copy.

Every expectation is computed here with numpy from closed forms (H·v of the logistic loss is
Xᵀ(σ(1 − σ) ⊙ Xv), of ‖Ax − b‖⁴ it is 4(rᵀr)AᵀAv + 8Aᵀr(rᵀAv)), or by evaluating a printed
formula with the independent translation of tests/oracle.py.  A tensor of order ≥ 3 has no
formula to emit, derive or claim: that is a usage error (tests/test_directions.py).
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import gradcli
from gradcli.errors import GradcliError
from helpers import load_module
from oracle import translate

LOGISTIC = "sum(softplus(X@w) - y*(X@w)) wrt w"
QUARTIC = "||A@w - b||^4 wrt w"


def sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


def logistic_hv(X, y, w, v):
    s = sigmoid(X @ w)
    return X.T @ (s * (1 - s) * (X @ v))


def quartic_hv(A, b, w, v):
    r = A @ w - b
    return 4 * (r @ r) * (A.T @ (A @ v)) + 8 * (A.T @ r) * (r @ (A @ v))


def problems(m, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n)) / np.sqrt(n)
    y = (rng.random(m) < 0.5).astype(float)
    w, v, b = rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(m)
    return [(LOGISTIC, dict(X=X, y=y, w=w, v=v), logistic_hv(X, y, w, v)),
            (QUARTIC, dict(A=X, b=b, w=w, v=v), quartic_hv(X, b, w, v))]


@pytest.mark.parametrize("case", [0, 1])
def test_emitted_hessian_vector_product_equals_h_v_and_never_allocates_an_n_by_n_array(tmp_path, case):
    m, n = 40, 3000  # H would be n² · 8 bytes = 72 MB; X is 1 MB
    text, arrays, expected = problems(m, n)[case]
    source = gradcli.hess(text, direction={"w": "v"}, sizes={"m": m, "n": n}).emit("numpy")
    module = load_module(source, tmp_path, f"hvp{case}")
    assert module.INPUTS[-1] == "v"  # the direction is an input like the others
    module.value_and_hess(**arrays)  # warm (imports, first calls)
    tracemalloc.start()
    try:
        _, out = module.value_and_hess(**arrays)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.allclose(out["w"], expected, rtol=1e-10, atol=1e-12)
    assert peak < n * n * 8 / 20, f"peak {peak / 1e6:.1f} MB: an n×n array was formed"


def test_emitted_directional_derivatives_and_the_array_api_module(tmp_path):
    pytest.importorskip("array_api_compat")
    rng = np.random.default_rng(1)
    X, V = rng.standard_normal((3, 3)) + 3 * np.eye(3), rng.standard_normal((3, 3))
    r = gradcli.grad("inv(X) wrt X", direction={"X": "V"}, sizes={"m": 3})
    Xi = np.linalg.inv(X)
    for target in ("numpy", "array-api"):
        module = load_module(r.emit(target), tmp_path, f"jvp_{target.replace('-', '_')}")
        _, out = module.value_and_grad(X=X, V=V)
        assert np.allclose(out["X"], -Xi @ V @ Xi)
    text, arrays, expected = problems(30, 5, seed=2)[0]
    module = load_module(gradcli.hess(text, direction={"w": "v"}).emit("array-api"), tmp_path, "hvp_xp")
    assert np.allclose(module.value_and_hess(**arrays)[1]["w"], expected)


def test_steps_of_a_directional_derivative_derive_the_gradient_then_take_the_inner_product():
    r = gradcli.grad("x'@A@x wrt x", direction={"x": "v"})
    text = str(r.steps)
    assert "∂L/∂x = (A + Aᵀ)x" in text and "∂f/∂x·v = ⟨∂f/∂x, v⟩" in text
    (last,) = [rec for rec in r.steps.records if rec["name"] == "∂f/∂x·v"]
    rng = np.random.default_rng(3)
    vals = dict(x=rng.standard_normal(4), A=rng.standard_normal((4, 4)), v=rng.standard_normal(4))
    assert np.isclose(float(translate(last["expression"])(vals)), vals["x"] @ (vals["A"] + vals["A"].T) @ vals["v"])


def test_steps_of_a_hessian_vector_product_differentiate_the_inner_product_again():
    text, arrays, expected = problems(20, 6, seed=4)[0]
    r = gradcli.hess(text, direction={"w": "v"})
    lines = str(r.steps)
    assert "H·v: the gradient of ⟨∂f/∂w, v⟩ (forward over reverse" in lines
    assert lines.count("forward: name every intermediate") == 2  # the gradient, then ⟨∇f, v⟩'s gradient
    assert any(rec.get("block") == "H·v" for rec in r.steps.records)
    (last,) = [rec for rec in r.steps.records if rec["name"] == "∂²f/∂w²·v"]
    assert np.allclose(np.asarray(translate(last["expression"])(arrays), float), expected)


def test_steps_of_a_jacobian_vector_product_name_a_seed_apart_from_the_direction():
    lines = str(gradcli.grad("inv(X) wrt X", direction={"X": "V"}).steps)
    assert "in G (printed above)" in lines  # V is the direction: the seed is G
    assert "∂f/∂X·V = J·V: the derivative wrt G of ⟨∂⟨G, f⟩/∂X, V⟩" in lines


@pytest.mark.parametrize("case", [0, 1])
def test_claimed_hessian_vector_products_are_judged_at_random_draws(case):
    text = [LOGISTIC, QUARTIC][case]
    right = ["X'@(sigmoid(X@w)*(1 - sigmoid(X@w))*(X@v))",
             "4*||A@w - b||^2*A'@A@v + 8*A'@(A@w - b)*((A@w - b)'@A@v)"][case]
    wrong = ["X'@(sigmoid(X@w)*(X@v))", "4*||A@w - b||^2*A'@A@v"][case]
    r = gradcli.hess(text, direction={"w": "v"}, claims=right)
    assert r.claims[0].verdict == "correct", r.claims[0].message
    r = gradcli.hess(text, direction={"w": "v"}, claims=wrong)
    assert r.claims[0].verdict != "correct"
    if case == 1:  # one term missing: said so
        assert r.claims[0].verdict == "term" and "missing" in r.claims[0].message


def test_claimed_directional_derivatives_and_what_a_claim_may_use():
    r = gradcli.grad("inv(X) wrt X", direction={"X": "V"}, claims="-inv(X)@V@inv(X)")
    assert r.claims[0].verdict == "correct"
    r = gradcli.grad("inv(X) wrt X", direction={"X": "V"}, claims="-inv(X)@V'@inv(X)")
    assert r.claims[0].verdict != "correct"
    r = gradcli.grad("exp(x)'@y wrt x, y", direction={"x": "u", "y": "w"}, claims="(exp(x)*u)'@y + exp(x)'@w")
    assert r.claims[0].verdict == "correct", r.claims[0].message
    with pytest.raises(GradcliError, match="'q', which is not a symbol"):
        gradcli.grad("inv(X) wrt X", direction={"X": "V"}, claims="q*V")


def test_the_command_line_takes_emit_steps_and_claim_with_a_direction(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "gradcli", *args], capture_output=True, text=True)
    out = cli("hess", "x'@A@x wrt x", "--direction", "x=v", "--claim", "(A + A')@v", "--steps")
    assert out.returncode == 0 and "claim ∂²f/∂x²·v: correct" in out.stdout and "H·v: the gradient" in out.stdout
    out = cli("hess", "x'@A@x wrt x", "--direction", "x=v", "--claim", "2*A@v")
    assert out.returncode == 1 and "claim ∂²f/∂x²·v: one term is wrong" in out.stdout, out.stdout + out.stderr
    out = cli("hess", "x'@A@x wrt x", "--direction", "x=v", "--emit", "numpy")
    assert out.returncode == 0 and "INPUTS = ('x', 'A', 'v')" in out.stdout


def test_a_direction_is_checked_against_its_symbol_once_whatever_the_path():
    x = np.ones(3)
    with pytest.raises(GradcliError, match="a direction has the shape of its symbol"):  # lazily, from Python
        gradcli.grad("x'@x wrt x", x=x, v=np.ones(4), direction={"x": "v"})["x"].value
    with pytest.raises(GradcliError, match="v is declared with shape \\(4,\\)") as err:
        gradcli.grad("x'@x wrt x", x=x, shapes={"v": (4,)}, direction={"x": "v"}, random=True)
    assert err.value.kind == "shape"
    with pytest.raises(GradcliError, match="v is declared with shape \\(4,\\)"):  # and by check()
        gradcli.grad("x'@x wrt x", x=x, shapes={"v": (4,)}, direction={"x": "v"}).check()


def test_given_arrays_are_used_as_they_are_neither_copied_nor_changed():
    m, n = 1000, 1000
    text, arrays, expected = problems(m, n, seed=5)[0]
    before = {k: a.copy() for k, a in arrays.items()}
    gradcli.hess(text, **arrays, direction={"w": "v"})["w"].value  # warm
    tracemalloc.start()
    try:
        got = gradcli.hess(text, **arrays, direction={"w": "v"})["w"].value
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.allclose(got, expected)
    assert peak < arrays["X"].nbytes / 2, f"peak {peak / 1e6:.1f} MB for an X of {arrays['X'].nbytes / 1e6:.0f} MB"
    assert all(np.array_equal(before[k], arrays[k]) for k in arrays)
