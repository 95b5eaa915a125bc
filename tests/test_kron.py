"""kron(A, B) and vec(X), each one record (operators/linalg.py, operators/structure.py) with a
product of dimensions in the shape system (shapes.DimProduct).  Their derivatives on every shape
are in the registry's tests (tests/test_registry.py); here: the shapes a user reads, the
textbook identities, the errors, and the emitted module with symbolic sizes."""

import numpy as np
import pytest

import gradcli
from gradcli.errors import GradcliError
from gradcli.language.shapes import DimProduct, DimVar, Unifier, product, quotient
from helpers import load_module


def test_a_product_of_known_sizes_is_the_number_and_divides_back():
    assert product(2, 3) == 6 and product("m", 1) == "m"
    assert product("m", "p") == DimProduct(("m", "p")) and str(product(2, "m", 3)) == "6*m"
    assert quotient(product("m", "p"), "p") == "m" and quotient(12, 3) == 4 and quotient(7, 2) is None
    assert quotient(product(6, "m"), 3) == product(2, "m") and quotient("m", "p") is None


def test_the_unifier_reads_a_product_once_its_factors_are_known():
    u, a, b, c = Unifier(), DimVar(), DimVar(), DimVar()
    u.same(c, product(a, b))
    u.same(a, 2)
    u.same(b, 3)
    assert u.find(c) == 6


def test_kron_has_product_dimensions_symbolic_and_numeric():
    p = gradcli.analyze("kron(A, B) + C", shapes={"A": (2, 3), "B": ("m", "n")})
    assert p.symbols["C"].shape == (product(2, "m"), product(3, "n"))
    p = gradcli.analyze("kron(A, B)", data_shapes={"A": (2, 3), "B": (4, 5)})
    assert p.typed.expr.ty.dims == (8, 15)


@pytest.mark.parametrize("text, message", [
    ("kron(x, A)", "kron: of a vector and a matrix is ambiguous"),  # numpy reads 1-D as a row, gradcli as a column
    ("kron(x, y')", "kron: needs two vectors of one orientation"),
    ("unvec(x, 0)", "unvec: the number of rows is a positive integer or a size name"),
    ("vec(x)", "vec: needs a matrix"),
    ("unvec(x, 4)", "a multiple of 4"),
    ("kron(A, B) + C", "differ"),
])
def test_shape_errors(text, message):
    shapes = {"x": (6,), "y": (3,), "A": (2, 2), "B": (2, 2), "C": (3, 4)}
    with pytest.raises(GradcliError) as info:
        gradcli.analyze(text, shapes={k: v for k, v in shapes.items() if k in text})
    assert info.value.kind == "shape" and message in info.value.message, info.value.message


def _grads(text, **arrays):
    problem = gradcli.analyze(text, data_shapes={k: v.shape for k, v in arrays.items()})
    return problem, problem.compile()(**arrays)[1]


def test_textbook_identities_evaluate_to_their_numpy_values():
    rng = np.random.default_rng(0)
    A, B, x = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=8)
    # ∂ xᵀvec(AB)/∂A = unvec(x, m) Bᵀ, with vec stacking columns
    _, d = _grads("x' @ vec(A @ B) wrt A, B", A=A, B=B, x=x)
    X = x.reshape(4, 2).T
    assert np.allclose(d["A"], X @ B.T) and np.allclose(d["B"], A.T @ X)
    # ∂ sum(A ⊗ B)/∂A = sum(B)·𝟙
    p, d = _grads("sum(kron(A, B)) wrt A", A=A, B=B)
    assert p.derivatives()[0].expr.op == "fill" and np.allclose(d["A"], B.sum())


def test_kron_gradient_and_hessian_in_the_cli_pass_the_check(capsys):
    from gradcli.cli import app

    for command in ("grad", "hess"):
        with pytest.raises(SystemExit) as done:
            app([command, "sum(W * kron(A, B)) + sum(vec(A)^3) wrt A, B", "-s", "A=2,3", "-s", "B=3,2",
                 "-s", "W=6,6", "--random", "--check"], standalone_mode=True)
        out = capsys.readouterr().out
        assert done.value.code == 0 and out.count("(ok)") >= 2 and "fail" not in out, out


def test_emitted_module_computes_product_sizes_from_its_inputs(tmp_path):
    from gradcli.numeric.emit import emit_numpy

    p = gradcli.analyze("sum(W * kron(A, B)) + x' @ vec(A) wrt A, B")
    module = load_module(emit_numpy(p, p.derivatives(), {}, False), tmp_path, name="kron_symbolic")
    rng = np.random.default_rng(1)
    for (m, n), (k, q) in (((2, 3), (4, 1)), ((3, 3), (2, 2))):
        A, B = rng.normal(size=(m, n)), rng.normal(size=(k, q))
        W, x = rng.normal(size=(m * k, n * q)), rng.normal(size=m * n)
        f, d = module.value_and_grad(A=A, B=B, W=W, x=x)
        assert np.isclose(f, np.sum(W * np.kron(A, B)) + x @ A.T.reshape(-1))
        W4 = W.reshape(m, k, n, q)
        assert np.allclose(d["A"], np.einsum("ikjl,kl->ij", W4, B) + x.reshape(n, m).T)
        assert np.allclose(d["B"], np.einsum("ikjl,ij->kl", W4, A))


def test_an_unknown_length_becomes_the_product_a_division_needs():
    """unvec(x, m) and kron_a(W, B) read back from printed derivatives: the unknown sizes are
    inferred as products, and the dimension argument m is no symbol."""
    p = gradcli.analyze("unvec(x, m)' @ y")
    assert set(p.symbols) == {"x", "y"}
    assert p.symbols["x"].shape == (product("m", p.typed.expr.ty.dims[0]),)
    p = gradcli.analyze("kron_a(W, B) + A")
    (r, c), (b0, b1), (a0, a1) = (p.symbols[s].shape for s in "WBA")
    assert (r, c) == (product(b0, a0), product(b1, a1))


@pytest.mark.parametrize("text", [
    "kron(B', A) @ vec(X) - vec(A @ X @ B)",  # the vec trick, sizes named: inner p·n against n·p
    "kron(A, B) - kron(B, A)",  # (m·p, n·q) against (p·m, q·n)
])
def test_named_product_sizes_are_equal_in_any_order_and_the_identity_holds(text):
    shapes = {"A": ("m", "n"), "X": ("n", "p"), "B": ("p", "q")}
    p = gradcli.analyze(text, shapes={k: v for k, v in shapes.items() if k in text})
    assert p.typed.ty.rank in (1, 2)  # shape-checks (it raised 'inner dimensions ... differ')
    rng = np.random.default_rng(1)
    A, X, B = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    value = gradcli.analyze(text, data_shapes={"A": A.shape, "X": X.shape, "B": B.shape}
                            ).compile()(A=A, X=X, B=B)[0]
    if "X" in text:  # vec(AXB) = (Bᵀ ⊗ A) vec(X) with numpy's column-major vec
        assert np.allclose(value, 0)
    else:
        assert np.allclose(value, np.kron(A, B) - np.kron(B, A))
