"""kron, vec and unvec beyond their gradients: the index notation of their tensor derivatives
(printed with mod and div, evaluated here from what is printed), the matrix formulas of vectors
linear in x through them, kron of two vectors, product dimensions a user writes (where, -s, the
API), and `--emit` with sizes known only inside a product.  Every value is compared with HIPS
autograd applied to tests/oracle.py's independent translation, or with numpy's own np.kron."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

autograd = pytest.importorskip("autograd")

import gradcli  # noqa: E402
from gradcli.calculus.differentiate import gradients, seed_for  # noqa: E402
from gradcli.calculus.indexform import F_INDEX, X_INDEX, display_terms, evaluate_terms  # noqa: E402
from gradcli.errors import GradcliError  # noqa: E402
from gradcli.numeric.emit import emit_numpy  # noqa: E402
from gradcli.numeric.evaluate import compile_graph  # noqa: E402
from helpers import load_module  # noqa: E402
from oracle import translate  # noqa: E402

EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))


def _values(shapes: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {n: rng.normal(size=s) for n, s in shapes.items()}


def _expected(text: str, values: dict, a: str, b: str | None = None):
    """∂f/∂a (numerator layout: shape(f) + shape(a)), or the Hessian block ∂²f/∂a∂b."""
    f = translate(text)
    if b is None:
        return autograd.jacobian(lambda x: f({**values, a: x}))(values[a])

    def grad_a(vals: dict):
        return autograd.grad(lambda x: f({**vals, a: x}))(vals[a])
    return autograd.jacobian(lambda y: grad_a({**values, b: y}))(values[b])


def _printed(d, values: dict):
    """The derivative's index notation as printed (display terms), evaluated by einsum."""
    v = seed_for(d.of)
    (g,) = gradients(d.of, [d.x], seed=v)
    f_dims = d.f_ty.full_dims if not d.f_ty.row else d.f_ty.dims
    terms = display_terms(g, v, f_dims, d.x_ty.dims)
    assert terms is not None, d.wrt
    factors = list({x[3]: None for t in terms for x in t.factors if x[0] == "t"})
    computed = dict(zip(factors, compile_graph(factors).run(values)))
    return evaluate_terms(terms, F_INDEX[:len(f_dims)], X_INDEX[:len(d.x_ty.dims)],
                          tuple(int(n) for n in d.shape), computed)


def _check_index_notation(text: str, shapes: dict, hessian: bool = False, seed: int = 0) -> list[str]:
    """Each tensor derivative of text: printed, its printed form and the evaluator's value equal
    to autograd's.  Returns the ascii formulas."""
    values = _values(shapes, seed)
    p = gradcli.analyze(text, data_shapes=shapes)
    derivs = p.hessians() if hessian else p.derivatives()
    _, got = p.compile(hessian=hessian).evaluate(values)
    formulas = []
    for d in derivs:
        a, _, b = d.wrt.partition(",")
        expected = _expected(text.split(" wrt ")[0], values, a, (b or a) if hessian else None)
        assert np.allclose(got[d.wrt], expected), (text, d.wrt)
        if d.expr is None:
            formulas.append(d.formula("ascii"))
            assert formulas[-1], (text, d.wrt)
            assert np.allclose(_printed(d, values), expected), (text, d.wrt, formulas[-1])
    return formulas


@pytest.mark.parametrize("text, shapes", [
    ("vec(A@X@B) wrt X", {"A": (2, 3), "X": (3, 4), "B": (4, 2)}),
    ("vec(X) wrt X", {"X": (3, 2)}),
    ("unvec(v, 3) wrt v", {"v": (6,)}),
    ("A@unvec(v, 3)@B wrt v", {"A": (2, 3), "v": (6,), "B": (2, 4)}),
    ("kron(A, B) wrt A, B", {"A": (2, 3), "B": (3, 2)}),
    ("kron(A, X@X) wrt X", {"A": (2, 3), "X": (2, 2)}),
    ("vec(kron(A, B)) wrt B", {"A": (2, 2), "B": (2, 3)}),
    ("unvec(vec(X)*w, 2) wrt X", {"X": (2, 3), "w": (6,)}),
    ("kron(A, B) wrt A", {"A": (1, 3), "B": (2, 1)}),  # sizes of 1: a pair is a plain delta
    ("kron_a(G, B) wrt G", {"G": (4, 6), "B": (2, 3)}),
    ("kron_b(G, A) wrt G", {"G": (4, 6), "A": (2, 3)}),
])
def test_tensor_derivatives_through_kron_and_vec_print_in_index_notation(text, shapes):
    formulas = _check_index_notation(text, shapes)
    assert formulas and all(("%" in f or "//" in f) or "delta" in f for f in formulas), formulas


@pytest.mark.parametrize("text, shapes", [
    ("sum(W*kron(A, B)) + sum(vec(A)^3) wrt A, B", {"W": (6, 6), "A": (2, 3), "B": (3, 2)}),
    ("sum(vec(X@X)^2) wrt X", {"X": (2, 2)}),
])
def test_hessians_through_kron_and_vec_print_in_index_notation(text, shapes):
    assert _check_index_notation(text, shapes, hessian=True)


def test_vec_index_notation_reads_column_major():
    (d,) = gradcli.analyze("vec(X) wrt X", data_shapes={"X": (3, 2)}).derivatives()
    # vec stacks the columns: entry i is X[i mod 3, i div 3]
    assert d.formula("ascii") == "[i,k,l] = delta(i%3,k) delta(i//3,l)"
    assert "mod" in d.formula("unicode") and r"\bmod" in d.formula("latex")


@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES)
@given(st.sampled_from([
    "vec(A@X@B) wrt X", "kron(A, X) wrt X", "kron(X, B') wrt X", "vec(X*C) + vec(S@X@T) wrt X",
    "kron(X, X) wrt X", "unvec(vec(X), m) wrt X", "unvec(vec(X'@A'), n)'@X' wrt X",
]), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 20))
def test_printed_index_notation_on_random_sizes_is_the_derivative(text, m, n, p, q, seed):
    shapes = {"X": (m, n), "A": (p, m), "B": (n, q), "C": (m, n), "S": (m, m), "T": (n, n)}
    text = text.replace("unvec(vec(X), m)", f"unvec(vec(X), {m})").replace("unvec(vec(X'@A'), n)",
                                                                           f"unvec(vec(X'@A'), {n})")
    used = {k: v for k, v in shapes.items() if k in text.split(" wrt ")[0]}
    _check_index_notation(text, used, seed=seed)  # sizes of 1 too: an operand of the sum's own shape


def test_the_json_formula_of_a_tensor_through_vec_is_printed_and_cli_check_passes(capsys):
    from gradcli.cli import app

    with pytest.raises(SystemExit) as done:
        app(["grad", "vec(A@X@B) wrt X", "-s", "A=2,3", "-s", "X=3,4", "-s", "B=4,2", "--random", "--check",
             "--json"], standalone_mode=True)
    doc = json.loads(capsys.readouterr().out)
    assert done.value.code == 0
    (d,) = doc["derivatives"]
    assert d["formula"] == "[i,k,l] = A[i%2,k] B[l,i//2]" and d["check"]["ok"], d


@pytest.mark.parametrize("text, shapes", [
    ("vec(x@y') wrt x, y", {"x": (3,), "y": (2,)}),
    ("vec(A@unvec(x, 3)@B) wrt x", {"A": (2, 3), "x": (12,), "B": (4, 2)}),
    ("kron(u, w) wrt u, w", {"u": (2,), "w": (3,)}),
    ("unvec(x, 3)@y wrt x", {"x": (6,), "y": (2,)}),
    ("unvec(x, 3)'@y wrt x", {"x": (6,), "y": (3,)}),
    ("vec(2*unvec(x, 3) + W*unvec(x, 3)) wrt x", {"x": (6,), "W": (3, 2)}),
    ("kron_a(g, w) + kron_b(h, u) wrt g, w, h, u", {"g": (6,), "w": (3,), "h": (6,), "u": (3,)}),
])
def test_vectors_linear_in_x_through_vec_and_kron_have_matrix_formulas(text, shapes):
    values = _values(shapes, 4)
    p = gradcli.analyze(text, data_shapes=shapes)
    program = compile_graph([d.expr for d in p.derivatives()])
    for d, value in zip(p.derivatives(), program.run(values)):
        assert d.expr is not None, (text, d.wrt)
        assert np.allclose(value, _expected(text.split(" wrt ")[0], values, d.wrt)), (text, d.wrt)


def test_the_vec_trick_is_the_jacobian_written_as_textbooks_do():
    p = gradcli.analyze("vec(A@unvec(x, m)@B) wrt x", shapes={"A": ("p", "m"), "B": ("n", "q")})
    (d,) = p.derivatives()
    assert d.expr.op == "kron" and d.formula("unicode") == "Bᵀ ⊗ A"
    rng = np.random.default_rng(0)
    A, B, x = rng.normal(size=(2, 3)), rng.normal(size=(4, 5)), rng.normal(size=12)
    (d,) = gradcli.analyze("vec(A@unvec(x, 3)@B) wrt x", data_shapes={"A": A.shape, "B": B.shape, "x": x.shape}
                           ).derivatives()
    (value,) = compile_graph([d.expr]).run({"A": A, "B": B, "x": x})
    assert np.allclose(value, np.kron(B.T, A))


def test_kron_of_two_vectors_is_numpys_1d_kron():
    rng = np.random.default_rng(2)
    u, w, W = rng.normal(size=3), rng.normal(size=2), rng.normal(size=6)
    p = gradcli.analyze("W'@kron(u, w) wrt u, w", data_shapes={"u": (3,), "w": (2,), "W": (6,)})
    assert p.shape == ()
    f, d = p.compile()(u=u, w=w, W=W)
    assert np.isclose(f, W @ np.kron(u, w))
    assert np.allclose(d["u"], W.reshape(3, 2) @ w) and np.allclose(d["w"], W.reshape(3, 2).T @ u)
    assert gradcli.analyze("kron(u', w')", data_shapes={"u": (3,), "w": (2,)}).shape == (1, 6)


@pytest.mark.parametrize("text", ["vec(A@X@B) wrt X", "kron(A, B) wrt A, B", "kron(u, w) wrt u, w",
                                  "unvec(v, 3) wrt v", "sum(unvec(v, 3)) wrt v", "unvec(v, 3)@C wrt v"])
def test_emitted_module_with_symbolic_sizes_agrees_with_autograd(text, tmp_path):
    """The index forms are reshapes in the module; v of unvec(v, 3) is (3*m,), m read from v."""
    shapes = {"A": (2, 3), "X": (3, 4), "B": (4, 2), "u": (2,), "w": (3,), "v": (6,), "C": (2, 2)}
    formula = text.split(" wrt ")[0]
    used = {k: s for k, s in shapes.items() if k in formula.replace("unvec", "").replace("vec", "")}
    values = _values(used, 5)
    p = gradcli.analyze(text)  # no sizes: the module reads them from its arguments
    module = load_module(emit_numpy(p, p.derivatives(), {}, False), tmp_path, name="kron_index")
    f, got = module.value_and_grad(**values)
    assert np.allclose(f, translate(formula)(values))
    for d in p.derivatives():
        assert np.allclose(got[d.wrt], _expected(formula, values, d.wrt)), (text, d.wrt)


# ----------------------------------------------------------------- product dimensions users write
def test_where_clause_option_and_api_take_product_dimensions():
    p = gradcli.analyze("x'@vec(X) wrt X where x: (m*n), X: (m, n)")
    assert p.symbols["x"].shape == (gradcli.analyze("vec(X) where X: (m, n)").shape[0],)
    assert str(p.symbols["x"].shape[0]) == "m*n" and p.derivatives()[0].formula("ascii") == "unvec(x, m)"
    assert str(gradcli.analyze("sum(v) where v: (n*3)").symbols["v"].shape[0]) == "3*n"
    assert str(gradcli.analyze("sum(v)", shapes={"v": ("m*n",)}).symbols["v"].shape[0]) == "m*n"
    assert gradcli.parse_dims("m*n, 3") == (gradcli.analyze("vec(X) where X: (m, n)").shape[0], 3)


def test_data_binds_the_unknown_factor_of_a_product():
    p = gradcli.analyze("unvec(x, 3) where x: (3*m)", data_shapes={"x": (12,)})
    assert p.shape == (3, 4)
    p = gradcli.analyze("x'@vec(X) where x: (m*n), X: (m, n)", data_shapes={"X": (2, 5), "x": (10,)})
    assert p.symbols["x"].shape == (10,)


@pytest.mark.parametrize("args, message", [
    (["sum(v) wrt v where v: (m*n)", "-d", "v=DATA"], "does not say what m and n are"),
    (["sum(v) + sum(X) wrt v where v: (m*n), X: (m, n)", "-d", "v=DATA", "-s", "X=2,3"], "contradicts"),
    (["sum(v) wrt v where v: (2*m)", "-d", "v=DATA"], "not a multiple of 2"),
    (["sum(v) wrt v", "-s", "v=m*n", "-d", "v=DATA"], "does not say what m and n are"),
    (["sum(v) + sum(X) wrt v", "-s", "v=m*n", "-s", "X=m,n", "-d", "v=DATA", "-d", "X=DATA2"], "7 is not 6"),
])
def test_data_that_cannot_be_a_product_is_a_clean_error(args, message, tmp_path, capsys):
    from gradcli.cli import app

    np.save(tmp_path / "v.npy", np.arange(7.0))
    np.save(tmp_path / "X.npy", np.ones((2, 3)))
    args = [a.replace("DATA2", str(tmp_path / "X.npy")).replace("DATA", str(tmp_path / "v.npy")) for a in args]
    with pytest.raises(SystemExit) as done:
        app(["grad", *args], standalone_mode=True)
    captured = capsys.readouterr()
    assert done.value.code == 1 and message in captured.err and "Traceback" not in captured.err, captured.err


def test_unvec_with_zero_rows_says_what_its_second_argument_is():
    with pytest.raises(GradcliError) as info:
        gradcli.analyze("sum(unvec(v, 0)) wrt v")
    assert "number of rows" in info.value.message and "unvec(3)" not in info.value.message
