"""Shape inference: the shape rule of every operator and function, defaults, unification."""

import numpy as np
import pytest

from gradcli import GradcliError, analyze


def shape_of(text, **kw):
    return analyze(text, **kw).shape


def sym_shapes(text, **kw):
    return {n: (s.shape, s.source) for n, s in analyze(text, **kw).symbols.items()}


def test_issue_example_least_squares():
    p = analyze("||y - X@theta||^2 wrt theta")
    assert sym_shapes("||y - X@theta||^2 wrt theta") == {
        "y": (("m",), "assumed"), "X": (("m", "n"), "assumed"), "theta": (("n",), "assumed")}
    assert p.shape == ()
    (d,) = p.derivative_shapes()
    assert (d.shape, d.layout, d.kind) == (("n",), "gradient", "gradient")


def test_issue_example_theta_has_in_by_out_gradient():
    p = analyze("0.5*sum((y - h(X@Theta))^2) wrt Theta",
                shapes={"X": ("M", "in"), "Theta": ("in", "out"), "y": ("M", "out")})
    (d,) = p.derivative_shapes()
    assert d.shape == ("in", "out")
    assert p.symbols["X"].source == "option"


def test_defaults_by_name_decide_what_use_leaves_open():
    s = sym_shapes("sum(a*x) + sum(alpha*y) + lam*sum(A@z) + sum(B@w)")
    assert s["a"][0] == () and s["alpha"][0] == () and s["lam"][0] == ()
    assert len(s["A"][0]) == 2 and len(s["B"][0]) == 2 and len(s["x"][0]) == 1


def test_where_and_option_priority():
    s = sym_shapes("X@w where X: (N, d)", shapes={"X": (100, 3)})
    assert s["X"] == ((100, 3), "option") and s["w"] == ((3,), "assumed")
    s = sym_shapes("X@w where X: (N, d)", data_shapes={"X": (7, 2)})
    assert s["X"] == ((7, 2), "data")


def test_data_contradicting_where_is_an_error():
    with pytest.raises(GradcliError) as info:
        analyze("X@w where X: (3, 4)", data_shapes={"X": (100, 3)})
    assert "contradicts" in info.value.message


@pytest.mark.parametrize("text, shape", [
    ("x + y", ("m",)),
    ("a + x", ("m",)),
    ("X + v where X: (m, n), v: (n)", ("m", "n")),   # numpy broadcasting along the last axis
    ("X * v' where X: (m, n), v: (n)", ("m", "n")),
    ("X / 2", ("m", "n")),
    ("A@B where A: (m, k), B: (k, n)", ("m", "n")),
    ("A@x where A: (m, n)", ("m",)),
    ("x'@A where A: (m, n)", (1, "n")),
    ("x@A where A: (m, n)", ("n",)),                  # numpy: 1-d @ 2-d is a vector
    ("x'@y", ()),
    ("x@y", ()),
    ("x@y'", ("m", "n")),
    ("x'", (1, "m")),
    ("A'", ("n", "m")),
    ("x^2", ("m",)),
    ("-A", ("m", "n")),
    ("exp(A) + log(A) + sqrt(A) + sin(A) + cos(A) + tan(A) + tanh(A) + sigmoid(A)", ("m", "n")),
    ("relu(x) + softplus(x) + abs(x) + sign(x) + h(x)", ("m",)),
    ("sum(A)", ()),
    ("sum(A, 0)", ("n",)),
    ("sum(A, 1)", ("m",)),
    ("mean(A, 0)", ("n",)),
    ("mean(A, -1)", ("m",)),
    ("sum(x, 0)", ()),
    ("mean(A) + logsumexp(A)", ()),
    ("softmax(x)", ("m",)),
    ("dot(x, y) + norm(x) + norm1(x) + norm2(x) + ||A||_F + ||x||_1", ()),
    ("outer(x, y)", ("m", "n")),
    ("tr(A) + trace(A) + det(A) + logdet(A)", ()),
    ("inv(A)", ("m", "m")),
    ("diag(x)", ("m", "m")),
    ("diag(A)", ("m",)),
    ("eye(3)", (3, 3)),
    ("eye(n) + A", ("n", "n")),
])
def test_shape_rules(text, shape):
    assert shape_of(text) == shape


@pytest.mark.parametrize("text, message, column", [
    ("A@x where A: (m, n), x: (k)", "@: cannot multiply (m, n) by (k,): inner dimensions n and k differ", 2),
    ("x + y' where x: (n)", "+: cannot combine (n,) and (1, m)", 3),
    ("X + Y where X: (m, n), Y: (m, k)", "cannot broadcast", 3),
    ("a@x where a: ()", "@: cannot multiply () by", 2),
    ("A@x' where A: (m, n), x: (n)", "inner dimensions", 2),
    ("x^y where y: (n)", "exponent must be a scalar", 2),
    ("det(A) where A: (m, n)", "det: needs a square matrix, got (m, n)", 1),
    ("inv(x) where x: (n)", "inv: needs a square matrix, got vector", 1),
    ("tr(A) where A: (2, 3)", "tr: needs a square matrix", 1),
    ("softmax(A) where A: (m, n)", "softmax: needs a vector", 1),
    ("sum(A, 2)", "axis 2 is out of range", 8),
    ("mean(A, -3)", "mean: axis -3 is out of range", 9),
    ("sum(A, x)", "axis must be an integer", 8),
    ("dot(A, x) where A: (m, n)", "dot: needs two vectors", 1),
    ("exp(x, y)", "exp takes 1 argument", 1),
    ("X@W + b where X: (B, i), W: (j, o), b: (o)", "inner dimensions i and j differ", 2),
    ("x + y where x: (in), y: (out)", "dimensions in and out differ", 3),
])
def test_shape_errors_name_operator_shapes_and_column(text, message, column):
    with pytest.raises(GradcliError) as info:
        analyze(text)
    assert info.value.kind == "shape"
    assert message in info.value.message
    assert info.value.column == column


def test_the_cookbooks_a_and_b_are_vectors_by_their_use():
    # the Matrix Cookbook's a'Xb: a and b are scalars by name, but @ needs vectors there
    s = sym_shapes("a'@X@b wrt X")
    assert s["a"] == (("m",), "assumed") and s["b"] == (("n",), "assumed")
    (d,) = analyze("a'@X@b wrt X").derivatives()
    assert d.text() == "abᵀ"
    with pytest.raises(GradcliError) as info:  # a declared scalar is the user's choice: no hint
        analyze("a@x where a: ()")
    assert "by its name" not in info.value.message
    with pytest.raises(GradcliError) as info:  # nor where no vector would fit either
        analyze("a@x where x: ()")
    assert "by its name" not in info.value.message


def test_unification_names_dims_in_order_of_appearance():
    s = sym_shapes("x'@A@B@z")
    assert s["x"][0] == ("m",) and s["A"][0] == ("m", "n") and s["B"][0] == ("n", "k")
    assert s["z"][0] == ("k",)
    # a square-matrix function forces both dimensions together
    assert sym_shapes("det(A@B)")["B"][0] == ("n", "m")


def test_rigid_names_bind_to_numbers_from_data():
    s = sym_shapes("X@w where X: (M, d)", data_shapes={"w": (3,)})
    assert s["X"][0] == ("M", 3)


def test_eye_takes_the_size_its_dimension_was_bound_to():
    # eye(n) beside a 3×3 A is eye(3): the identity is built with the bound size, not the name
    p = analyze("x'@(A + eye(n))@x wrt x", shapes={"A": (3, 3)})
    assert p.shape == () and p.symbols["x"].shape == (3,)
    A, x = np.arange(9.0).reshape(3, 3), np.arange(1.0, 4.0)
    f, g = p.compile()(A=A, x=x)
    assert np.isclose(f, x @ (A + np.eye(3)) @ x)
    assert np.allclose(g["x"], (A + A.T + 2 * np.eye(3)) @ x)


@pytest.mark.parametrize("text, layout, wrt_shape", [
    ("x'@x wrt x", None, ("m",)),
    ("x'@x wrt x", "numerator", (1, "m")),
    ("x'@x wrt x", "denominator", ("m",)),
    ("sum(X) wrt X", "numerator", ("n", "m")),
    ("A@x wrt x", None, ("m", "n")),
    ("A@x wrt x", "denominator", ("n", "m")),
    ("A@x wrt A where A: (M, N)", None, ("M", "M", "N")),
    ("R'@R wrt R where R: (M, N)", None, ("N", "N", "M", "N")),
    ("x' wrt x", None, (1, "m", "m")),
    ("a*x wrt a", None, ("m",)),
])
def test_derivative_shapes_and_layouts(text, layout, wrt_shape):
    (d,) = analyze(text, layout=layout).derivative_shapes()
    assert d.shape == wrt_shape
    assert d.kind == ("gradient" if analyze(text).shape == () else "jacobian")
