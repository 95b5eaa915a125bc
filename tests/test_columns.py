"""Column vectors as textbooks write them (SPEC §1): `where x: (n, 1)`.  A 1×1 f is a scalar for
grad, hess and --check; ∂f/∂x has shape (n, 1); a Hessian (or Jacobian) with no matrix formula in
the declared shapes is printed with singleton axes dropped — the printed formula is evaluated
here — while its values keep the declared shape.  Numbers are checked against HIPS autograd on an
independent translation of the formula (tests/oracle.py)."""

import json
import re

import numpy as np
import pytest

autograd = pytest.importorskip("autograd")
import autograd.numpy as anp  # noqa: E402

from gradcli import analyze  # noqa: E402
from gradcli.cli import main  # noqa: E402
from oracle import translate  # noqa: E402

CASES = [  # formula, wrt, numeric shapes
    ("x'@A@x", ["x"], {"x": (3, 1), "A": (3, 3)}),
    ("x'@x", ["x"], {"x": (4, 1)}),
    ("(y - X@w)'@(y - X@w)", ["w"], {"y": (5, 1), "X": (5, 3), "w": (3, 1)}),
    ("sum(exp(x)) + x'@x", ["x"], {"x": (3, 1)}),
    ("x'@A@y", ["x", "y"], {"x": (3, 1), "A": (3, 2), "y": (2, 1)}),
    ("log(1 + exp(x'@A@x)) + c*x'@x", ["x"], {"x": (3, 1), "A": (3, 3), "c": ()}),
    ("sqrt(1 + x'@x)", ["x"], {"x": (3, 1)}),
    ("sum(log(1 + exp(-y*(X@w))))", ["w"], {"y": (5, 1), "X": (5, 3), "w": (3, 1)}),
]


def declared(text, wrt, sizes):
    where = ", ".join(f"{n}: ({', '.join(map(str, s))})" for n, s in sizes.items() if s)
    return f"{text} wrt {', '.join(wrt)} where {where}"


def values(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return {n: 0.5 * rng.normal(size=s) for n, s in sizes.items()}


def oracle_scalar(text, vals):
    f = translate(text)
    return lambda name: (lambda v: anp.sum(f({**vals, name: v})))


@pytest.mark.parametrize("text, wrt, sizes", CASES)
def test_a_one_by_one_f_is_a_scalar_and_the_gradient_has_xs_shape(text, wrt, sizes):
    p = analyze(declared(text, wrt, sizes))
    assert p.shape == (1, 1) or p.shape == ()
    vals = values(sizes)
    f, grads = p.compile()(**vals)
    assert np.ndim(f) == 0
    assert np.isclose(f, float(np.sum(translate(text)(vals))))
    for d in p.derivatives():
        assert d.kind == "gradient" and d.shape == sizes[d.wrt]
        expected = autograd.grad(oracle_scalar(text, vals)(d.wrt))(vals[d.wrt])
        assert np.allclose(grads[d.wrt], expected, rtol=1e-9, atol=1e-12)
        # the printed formula, parsed again and evaluated with the declared shapes
        again = analyze(d.text("ascii"), data_shapes={n: v.shape for n, v in vals.items()})
        assert again.shape == sizes[d.wrt]
        (value, _) = again.compile()(**{n: vals[n] for n in again.symbols})
        assert np.allclose(value, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("text, wrt, sizes", CASES)
def test_hessians_wrt_column_vectors_print_the_matrix_and_keep_the_declared_shape(text, wrt, sizes):
    p = analyze(declared(text, wrt, sizes))
    vals = values(sizes, seed=1)
    f, hess = p.compile(hessian=True)(**vals)
    squeezed_vals = {n: v.reshape(-1) if v.ndim == 2 and v.shape[1] == 1 else v for n, v in vals.items()}
    for d in p.hessians():
        a, _, b = d.wrt.partition(",")
        b = b or a
        assert d.kind == "hessian" and d.shape == sizes[a] + sizes[b]
        def grad_a(vb, a=a, b=b):
            point = {**vals, b: vb}
            return autograd.grad(oracle_scalar(text, point)(a))(point[a])

        expected = autograd.jacobian(grad_a)(vals[b])
        assert hess[d.wrt].shape == sizes[a] + sizes[b]
        assert np.allclose(hess[d.wrt], expected, rtol=1e-8, atol=1e-10)
        # what is printed is the matrix of the same entries, in the vectors the note describes
        text_printed = d.formula("ascii")
        assert text_printed and "[" not in text_printed
        n, k = sizes[a][0], sizes[b][0]
        # (the identity may print as a bare I; SPEC wants eye(n), which is what it means here)
        text_printed = re.sub(r"\bI\b", f"eye({n})", text_printed)
        again = analyze(text_printed, data_shapes={s: v.shape for s, v in squeezed_vals.items()})
        (value, _) = again.compile()(**{s: squeezed_vals[s] for s in again.symbols})
        assert np.allclose(np.broadcast_to(value, (n, k)), expected.reshape(n, k), rtol=1e-8, atol=1e-10)
    assert any(note.kind == "squeezed" for note in p.notes)


def test_hess_and_check_on_the_command_line(capsys):
    rc = main(["hess", "x'@A@x wrt x where x: (3, 1)", "--random", "--check", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert doc["shape"] == [1, 1] and isinstance(doc["value"], float)
    (d,) = doc["derivatives"]
    assert d["kind"] == "hessian" and d["shape"] == [3, 1, 3, 1] and d["check"]["ok"]
    assert d["formula"] == "A + A'"
    assert np.asarray(d["value"]).shape == (3, 1, 3, 1)
    assert [n["kind"] for n in doc["notes"]] == ["scalar", "squeezed"]
    rc = main(["grad", "x'@A@x wrt x where x: (3, 1)", "--random", "--check"])
    out = capsys.readouterr().out
    assert rc == 0 and "∂f/∂x = (A + Aᵀ)x" in out and "shape (3, 1)" in out and "(ok)" in out
    assert main(["hess", "x'@A@x wrt x where x: (n, 1)"]) == 0
    out = capsys.readouterr().out
    assert "∂²f/∂x² = A + Aᵀ" in out and "shape (n, 1, n, 1)" in out and "singleton axes dropped" in out


def test_a_jacobian_wrt_a_column_is_printed_as_its_matrix():
    p = analyze("A@x wrt x where A: (2, 3), x: (3, 1)")
    (d,) = p.derivatives()
    assert d.kind == "jacobian" and d.shape == (2, 1, 3, 1) and d.text() == "A"
    vals = values({"A": (2, 3), "x": (3, 1)})
    _, J = p.compile()(**vals)
    assert np.allclose(J["x"].reshape(2, 3), vals["A"])


def test_textbook_columns_need_no_declaration_for_the_rest():
    # with x a column, b follows A@x: the residual's shape, (m, 1)
    p = analyze("||A@x - b||^2 wrt x where x: (n, 1)")
    assert p.symbols["b"].shape == ("m", 1) and p.derivatives()[0].shape == ("n", 1)
