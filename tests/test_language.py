"""What gradcli reads is what the user meant: norms as numpy's `norm`, numpy's function names,
unknown names as errors, det's gradient at a singular matrix, and the numpy habits people type."""

import warnings

import numpy as np
import pytest

import gradcli
from gradcli import GradcliError
from gradcli.cli import main
from helpers import fd_errors

rng = np.random.default_rng(11)


def evaluate(text, fns=None, functions=(), **values):
    """(f, {wrt: derivative}) of a formula at the given arrays."""
    p = gradcli.analyze(text, data_shapes={k: np.shape(v) for k, v in values.items()}, functions=functions)
    return p.compile(fns)(**values)


def caught_warnings(text, **values):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f, d = evaluate(text, **values)
    return f, d, [str(w.message) for w in caught]


# ----------------------------------------------------------------------------- norms
V = rng.normal(size=5)
M = rng.normal(size=(4, 3))


@pytest.mark.parametrize("text, ord_", [
    ("||a||", None), ("||a||_2", 2), ("||a||_1", 1), ("||a||_inf", np.inf), ("norm(a)", None),
    ("norm1(a)", 1), ("norm2(a)", 2),
])
def test_vector_norms_are_numpys(text, ord_):
    f, _ = evaluate(text, a=V)
    assert np.isclose(f, np.linalg.norm(V, ord_))


@pytest.mark.parametrize("text, ord_", [
    ("||A||", None), ("||A||_F", "fro"), ("||A||_fro", "fro"), ("||A||_2", 2), ("||A||_*", "nuc"),
    ("||A||_1", 1), ("||A||_inf", np.inf), ("norm(A)", None), ("norm1(A)", 1), ("norm2(A)", 2),
    ("‖A‖₂", 2), ("‖A‖₁", 1), ("‖A‖_∞", np.inf), ("sum(abs(A))", "entries"),
])
def test_matrix_norms_are_numpys(text, ord_):
    f, _ = evaluate(text, A=M)
    expected = np.sum(np.abs(M)) if ord_ == "entries" else np.linalg.norm(M, ord_)
    assert np.isclose(f, expected)


@pytest.mark.parametrize("text", [
    "||A||_2 wrt A", "||A||_* wrt A", "||A||_1 wrt A", "||A||_inf wrt A", "||x||_inf wrt x",
    "||x||_1 wrt x", "max(x) + min(A) wrt x, A", "prod(x) wrt x", "||A@x||_inf + ||A'||_2 wrt A, x",
])
def test_norm_and_reduction_gradients_match_finite_differences(text):
    errors = fd_errors(text, shapes={"A": (4, 3), "x": (3,)}, seed=3)
    assert errors and all(e < 1e-6 for e in errors.values()), errors


def test_spectral_and_nuclear_gradients_are_the_svd_formulas():
    u, s, vt = np.linalg.svd(M, full_matrices=False)
    _, d = evaluate("||A||_2 + 2*||A||_* wrt A", A=M)
    assert np.allclose(d["A"], np.outer(u[:, 0], vt[0]) + 2 * u @ vt)


def test_spectral_norm_has_no_second_derivative_but_a_clear_error(capsys):
    rc = main(["hess", "||A||_2 wrt A", "-s", "A=3x3", "--random"])
    err = capsys.readouterr().err
    assert rc == 1 and "second derivative of ||A||_2 is not available" in err and "Traceback" not in err


# ------------------------------------------------- points without a derivative: subgradient + warning
def _is_dual_unit(G, A, value):
    """G is a subgradient of a norm at A: ⟨G, A⟩ = ‖A‖ and G lies in the dual unit ball."""
    return np.isclose(np.sum(G * A), value)


def test_spectral_norm_at_a_repeated_top_singular_value_warns_and_gives_a_subgradient():
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # every singular value is 1
    f, d, msgs = caught_warnings("||A||_2 wrt A", A=Q)
    assert np.isclose(f, 1.0)
    assert any("largest singular value is repeated" in m and "not differentiable" in m for m in msgs)
    assert np.isclose(np.sum(d["A"] * Q), 1.0)  # ⟨G, A⟩ = ‖A‖₂
    assert np.isclose(np.linalg.norm(d["A"], "nuc"), 1.0)  # in the nuclear-norm unit ball


def test_nuclear_norm_at_a_rank_deficient_matrix_warns_and_gives_a_subgradient():
    A = np.outer(rng.normal(size=4), rng.normal(size=3))  # rank 1
    f, d, msgs = caught_warnings("||A||_* wrt A", A=A)
    assert any("rank-deficient" in m for m in msgs)
    assert np.isclose(np.sum(d["A"] * A), f)
    assert np.linalg.norm(d["A"], 2) <= 1 + 1e-9


def test_induced_norm_at_a_tie_between_columns_warns_and_averages():
    A = np.array([[1.0, -2.0], [2.0, 1.0]])  # both columns sum to 3
    f, d, msgs = caught_warnings("||A||_1 wrt A", A=A)
    assert f == 3.0 and any("tie between 2 entries" in m for m in msgs)
    assert np.allclose(d["A"], 0.5 * np.sign(A))
    assert np.isclose(np.sum(d["A"] * A), f)


def test_abs_at_zero_warns_and_gives_zero():
    x = np.array([1.0, 0.0, -2.0])
    f, d, msgs = caught_warnings("||x||_1 wrt x", x=x)
    assert any("abs(x) at an entry equal to 0" in m for m in msgs)
    assert np.array_equal(d["x"], [1.0, 0.0, -1.0])


def test_max_at_a_tie_shares_the_derivative():
    x = np.array([3.0, 1.0, 3.0])
    _, d, msgs = caught_warnings("max(x) wrt x", x=x)
    assert any("max(x) at a tie" in m for m in msgs)
    assert np.allclose(d["x"], [0.5, 0.0, 0.5])
    _, d, msgs = caught_warnings("min(x) wrt x", x=np.array([1.0, 2.0, 3.0]))
    assert msgs == [] and np.allclose(d["x"], [1.0, 0.0, 0.0])


def test_two_norm_at_zero_is_a_math_error(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(3))
    rc = main(["grad", "||x|| wrt x", "-d", f"x={tmp_path / 'x.npy'}"])
    err = capsys.readouterr().err
    assert rc == 1 and "division by zero" in err and "Traceback" not in err


def test_prod_gradient_is_exact_where_an_entry_is_zero():
    x = np.array([2.0, 0.0, 5.0, 3.0])
    f, d = evaluate("prod(x) wrt x", x=x)
    assert f == 0.0 and np.allclose(d["x"], [0.0, 30.0, 0.0, 0.0])


# ----------------------------------------------------------------------------- printed = parsed
@pytest.mark.parametrize("text", [
    "||A||_2 wrt A", "||A||_* wrt A", "||A||_1 wrt A", "||A||_inf wrt A", "||x||_inf wrt x",
    "max(x) + min(A) wrt x, A", "prod(x) wrt x", "norm1(x) wrt x",
    "sum(square(x) + reciprocal(x) + log1p(x) + expm1(x) + log2(x) + log10(x)) wrt x",
    "sum(sinh(x) + cosh(x) + arcsin(x/2) + arccos(x/2) + arctan(x) + arcsinh(x) + arctanh(x/2) + cbrt(x)) wrt x",
])
def test_ascii_formulas_reparse_to_the_same_values(text):
    values = {"x": rng.uniform(0.5, 1.5, size=3), "A": rng.normal(size=(3, 3)) + 3 * np.eye(3)}
    p = gradcli.analyze(text, data_shapes={k: v.shape for k, v in values.items()})
    used = {k: v for k, v in values.items() if k in p.symbols}
    f, derivs = p.compile()(**used)
    reparsed, _ = evaluate(p.text("ascii"), **used)
    assert np.isclose(reparsed, f)
    for d in p.derivatives():
        value, _ = evaluate(d.text("ascii"), **{k: v for k, v in used.items() if k in d.text("ascii")})
        assert np.allclose(value, derivs[d.wrt], rtol=1e-5), (d.text("ascii"), value, derivs[d.wrt])


# ----------------------------------------------------------------------------- function names
NUMPY_FUNCTIONS = {
    "square": np.square, "reciprocal": np.reciprocal, "log1p": np.log1p, "expm1": np.expm1,
    "log2": np.log2, "log10": np.log10, "sinh": np.sinh, "cosh": np.cosh, "arcsin": np.arcsin,
    "arccos": np.arccos, "arctan": np.arctan, "arcsinh": np.arcsinh, "arctanh": np.arctanh, "cbrt": np.cbrt,
    "max": np.max, "min": np.min, "prod": np.prod,
}


@pytest.mark.parametrize("name", sorted(NUMPY_FUNCTIONS))
def test_numpy_functions_have_numpys_values(name):
    x = rng.uniform(0.1, 0.9, size=4)
    f, _ = evaluate(f"{name}(x)", x=x)
    assert np.allclose(f, NUMPY_FUNCTIONS[name](x))


@pytest.mark.parametrize("name", ["square", "log1p", "log10", "arcsin", "arctanh", "cbrt", "sinh"])
def test_an_abstract_function_binds_to_the_new_builtins(name):
    x = rng.uniform(0.1, 0.9, size=3)
    _, d = evaluate("sum(h(x)) wrt x", fns={"h": name}, x=x)
    _, expected = evaluate(f"sum({name}(x)) wrt x", x=x)
    assert np.allclose(d["x"], expected["x"])


@pytest.mark.parametrize("text, column, hint", [
    ("sqaure(x)", 1, "did you mean square"),
    ("sum(exp(x)) + sofmax(x)'@y", 15, "did you mean softmax"),
    ("transpose(x)@y", 1, "write x' or x.T"),
    ("reshape(X)", 1, "not supported"),
    ("logg(x)", 1, "did you mean log"),
    ("activation(x)", 1, "--fn activation=tanh"),
])
def test_an_unknown_function_is_an_error_with_a_suggestion(text, column, hint):
    with pytest.raises(GradcliError) as info:
        gradcli.analyze(text)
    assert info.value.kind == "parse" and info.value.column == column and hint in info.value.message


@pytest.mark.parametrize("text", ["h(x)", "f(x) + g'(x)", "σ(x)", "φ(A@x)"])
def test_one_letter_functions_are_abstract(text):
    gradcli.analyze(text)


def test_a_name_bound_with_fn_is_an_abstract_function(capsys):
    p = gradcli.analyze("sum(act(x)) wrt x", functions={"act"}, shapes={"x": (3,)})
    assert p.derivatives()[0].text() == "act'(x)"
    rc = main(["grad", "sum(act(x)) wrt x", "--fn", "act=tanh", "-s", "x=3", "--random"])
    out = capsys.readouterr().out
    assert rc == 0 and "act'(x)" in out
    assert main(["grad", "sum(act(x)) wrt x", "-s", "x=3"]) == 1
    assert "unknown function 'act'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- det at a singular X
@pytest.mark.parametrize("text", ["det(X) wrt X", "det(X)^3 + 2*det(X)*sum(X) wrt X", "det(X@Y) wrt X"])
@pytest.mark.parametrize("rank", [2, 1])
def test_det_gradient_at_a_singular_matrix_matches_finite_differences(text, rank):
    from gradcli.numeric.fdcheck import check_derivative

    X = rng.normal(size=(3, rank)) @ rng.normal(size=(rank, 3))
    values = {"X": X, "Y": rng.normal(size=(3, 3))}
    p = gradcli.analyze(text, data_shapes={"X": (3, 3), "Y": (3, 3)})
    used = {k: v for k, v in values.items() if k in p.symbols}
    _, d = p.compile()(**used)
    assert np.all(np.isfinite(d["X"]))
    if rank == 2 and text == "det(X) wrt X":  # the adjugate: cofactors of X, transposed
        cof = np.array([[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(X, i, 0), j, 1))
                         for j in range(3)] for i in range(3)])
        assert np.allclose(d["X"], cof)
    assert check_derivative(lambda v: p.compile()(**v)[0], used, "X", d["X"]) < 1e-6


def test_det_gradient_still_prints_as_the_textbook():
    (d,) = gradcli.analyze("det(X) wrt X").derivatives()
    assert d.text() == "det(X)·X⁻ᵀ"


# ----------------------------------------------------------------------------- numpy habits
def test_axis_keyword():
    X = rng.normal(size=(4, 3))
    assert np.allclose(evaluate("sum(X, axis=0)", X=X)[0], X.sum(axis=0))
    assert np.allclose(evaluate("mean(X, axis=1)", X=X)[0], X.mean(axis=1))
    assert np.allclose(evaluate("sum(X, axis=-1)", X=X)[0], X.sum(axis=-1))
    with pytest.raises(GradcliError, match="unexpected keyword argument 'keepdims'") as info:
        gradcli.analyze("sum(X, keepdims=1)")
    assert info.value.column == 8


@pytest.mark.parametrize("text, column, hint", [
    ("x^T@A@x", 2, "write x' or x.T"),
    ("x**T @ y", 2, "write x' or x.T"),
    ("np.sum(x)", 1, "drop the 'np.' prefix"),
    ("1 + np.linalg.norm(x)", 5, "drop the 'np.linalg.' prefix"),
    ("A.dot(x)", 2, "write a @ b"),
])
def test_numpy_habits_get_a_hint_and_a_column(text, column, hint):
    with pytest.raises(GradcliError) as info:
        gradcli.analyze(text)
    assert info.value.kind == "parse" and info.value.column == column and hint in info.value.message


def test_max_with_two_arguments_explains_itself():
    with pytest.raises(GradcliError, match="write relu") as info:
        gradcli.analyze("sum(max(x, 0))")
    assert info.value.column == 5


def test_a_power_by_a_symbol_named_T_is_still_possible():
    gradcli.analyze("x^(T) where T: ()")


def test_byte_order_mark_and_trailing_comment_are_ignored(capsys):
    assert gradcli.analyze("\ufeffsum(x) # the total").text("ascii") == "sum(x)"
    assert main(["shape", "x'@A@x wrt x  # a quadratic form"]) == 0
    assert "∂f/∂x" in capsys.readouterr().out


def test_a_matrix_power_is_printed_as_the_element_wise_power_it_is():
    # X^-1 (numpy: 1/X entry-wise) must not print like inv(X), nor X^2 like X@X
    import gradcli
    p = gradcli.analyze("X^-1 + inv(X) + X^2 + X@X")
    unicode, latex = p.text("unicode"), p.text("latex")
    assert unicode.count("X⁻¹") == 1 and "X∘⁻¹" in unicode and "X∘²" in unicode
    assert latex.count("X^{-1}") == 1 and r"X^{\circ -1}" in latex and r"X^{\circ 2}" in latex
    v = gradcli.analyze("x^2 wrt x")
    assert "∘" not in v.text("unicode")  # a vector's square stays x²


@pytest.mark.parametrize("text, says", [
    ("min(x, 0)", "-relu(-x)"),   # not the hint for max
    ("max(x, 0)", "relu(x)"),
    ("max(X, axis=1)", "max takes no axis"),
])
def test_reductions_given_an_axis_say_what_to_write(text, says):
    import gradcli
    with pytest.raises(gradcli.GradcliError) as err:
        gradcli.analyze(text)
    assert says in str(err.value) and "'axis='" not in str(err.value)
    if text.startswith("min"):
        assert "relu(x)" not in str(err.value).replace("-relu(-x)", "")


def test_latex_writes_division_by_an_array_as_the_element_wise_quotient():
    # \frac{a}{A} under a matrix reads as a A⁻¹; unicode already writes A ⊘ B
    import gradcli
    latex = gradcli.analyze("A/B + x/y*x").text("latex")
    assert r"A \oslash B" in latex and r"\frac" not in latex
    assert r"\frac" in gradcli.analyze("A/a").text("latex")  # a scalar denominator stays a fraction
