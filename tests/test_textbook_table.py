"""Issue 19's table of textbook derivatives (tests/textbook_table.py), checked three ways against
central finite differences of each row's own numpy implementation of f — the oracle, which
shares nothing with gradcli: the differences are written here, not taken from gradcli's fdcheck.

For every row: (a) the textbook derivative, evaluated by tests/oracle.py's independent
translation of the parse tree into numpy, (b) gradcli's derivative values, and (c) gradcli's
printed ASCII formula, evaluated by the same independent translation, all agree with the
differences.  Then the comparator (tests/textbook_compare.py) is held to the issue's trivial
rewrites, and the figures (`python -m bench --part textbook`) to floors that only rise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradcli
import textbook_compare as C
import textbook_table as T
from oracle import translate

ROOT = Path(__file__).resolve().parent.parent


def central_jacobian(f, values: dict, name: str, h: float = 1e-6) -> np.ndarray:
    """∂f/∂x by central differences, shape f.shape + x.shape (a step relative to |xᵢ|)."""
    x = values[name]
    f0 = np.asarray(f(values))
    out = np.zeros(f0.shape + x.shape)
    for idx in np.ndindex(*x.shape):
        step = h * max(1.0, abs(x[idx]))
        plus, minus = x.copy(), x.copy()
        plus[idx] += step
        minus[idx] -= step
        out[(...,) + idx] = (np.asarray(f({**values, name: plus})) - np.asarray(f({**values, name: minus}))) / (2 * step)
    return out


def second_differences(f, values: dict, name: str, h: float = 1e-4) -> np.ndarray:
    """∂²f/∂xᵢ∂xⱼ of a scalar f of a vector x, from f alone (four evaluations per entry)."""
    x = values[name]
    n = x.size
    out = np.zeros((n, n))

    def at(i, si, j, sj):
        y = x.copy()
        y[i] += si * h
        y[j] += sj * h
        return float(f({**values, name: y}))

    for i in range(n):
        for j in range(n):
            out[i, j] = (at(i, 1, j, 1) - at(i, 1, j, -1) - at(i, -1, j, 1) + at(i, -1, j, -1)) / (4 * h * h)
    return out


def oracle_derivative(row: T.Row, values: dict) -> np.ndarray:
    name = T.wrt(row)

    def f(vals):
        return T.call(row.f, vals)

    if row.command == "hess":
        return second_differences(f, values, name)
    return central_jacobian(f, values, name)


def assert_close(value, expected, what: str, tol: float) -> None:
    value, expected = np.squeeze(np.asarray(value, dtype=float)), np.squeeze(np.asarray(expected, dtype=float))
    assert value.shape == expected.shape, f"{what}: shape {value.shape}, differences give {expected.shape}"
    scale = max(float(np.max(np.abs(expected))), 1e-3)
    error = float(np.max(np.abs(value - expected))) / scale
    assert error < tol, f"{what}: relative error {error:.2e}\n{value}\nvs differences\n{expected}"


TOL = {"grad": 1e-6, "hess": 1e-4}  # second differences of f carry ~1e-8·|f|/h² of rounding


@pytest.mark.parametrize("row", T.ROWS, ids=[r.label for r in T.ROWS])
def test_textbook_form_and_gradcli_agree_with_finite_differences(row):
    for seed in (0, 1):
        values, sizes = T.arrays(row, seed)
        expected = oracle_derivative(row, values)
        env = {**values, **sizes}
        tol = TOL[row.command]
        for form, source in row.forms:  # the row's own form and every alternative, each on its own
            assert_close(translate(form)(env), expected, f"textbook {form!r} ({source})", tol)

        problem = gradcli.analyze(row.formula, data_shapes={k: v.shape for k, v in values.items()})
        _, derivs = problem.compile(hessian=row.command == "hess")(**values)
        assert_close(derivs[T.wrt(row)], expected, "gradcli's value", tol)

        symbolic = gradcli.analyze(row.formula)
        (d,) = symbolic.hessians() if row.command == "hess" else symbolic.derivatives()
        printed = d.text("ascii")
        if printed:  # a matrix formula: evaluate what is printed, as it is printed
            assert_close(translate(printed)(env), expected, f"gradcli's print {printed!r}", tol)


def test_the_table_spans_the_issue():
    assert len(T.ROWS) >= 180
    counts = {g: sum(r.group == g for r in T.ROWS) for g in T.GROUPS}
    assert all(c >= 20 for c in counts.values()), counts
    assert sum(r.command == "hess" for r in T.ROWS) >= 20
    labels = [r.label for r in T.ROWS]
    assert len(set(labels)) == len(labels)
    # every example of issue 19's text is a row
    issue = ["grad log(abs(det(X))) wrt X", "grad det(A@X@B) wrt X where A: (n, n), X: (n, n), B: (n, n)",
             "grad det(X@X@X) wrt X", "grad 1/||x|| wrt x", "hess sum(sqrt(1 + (X@w - y)^2)) wrt w",
             "hess exp(-gamma*||x - y||^2) wrt x", "grad sum(relu(1 - y*(X@w))^2) wrt w", "grad x'@A wrt x",
             "hess dot(x, y)/(norm2(x)*norm2(y)) wrt x"]
    assert not [e for e in issue if e not in labels]
    for r in T.ROWS:
        assert r.command in ("grad", "hess") and r.source and set(r.domain.values()) <= set(T.DOMAINS)
        forms = [form for form, _ in r.forms]
        assert all(source for _, source in r.forms) and len(set(forms)) == len(forms), r.label


def test_a_row_is_equal_when_gradcli_prints_any_of_its_forms_and_measured_against_the_shortest():
    """Alternatives only add forms: the comparator's verdict on each form is its own (strict), the
    row takes the first that matches, and the ratio is against the shortest form."""
    through_an_alternative = 0
    for row in [r for r in T.ROWS if r.alternatives]:
        c = C.compare(row)
        problem = gradcli.analyze(row.formula)
        ranks = {name: len(s.shape) for name, s in problem.symbols.items()}
        each = [C.same_up_to_trivial_rewrites(c.printed, form, ranks) if c.printed else False
                for form, _ in row.forms]
        assert c.equal == any(each), row.label
        assert c.textbook_length == min(C.length(form) for form, _ in row.forms), row.label
        if c.equal:
            assert c.textbook == row.forms[each.index(True)][0]
        through_an_alternative += c.equal and not each[0]
    assert through_an_alternative > 0  # the rule is exercised: some row matches another textbook's form only


# ------------------------------------------------------------------ the comparator
VEC = {"x": 1, "y": 1, "u": 1, "a": 0, "b": 0, "A": 2, "B": 2, "X": 2}


@pytest.mark.parametrize("a, b", [
    ("x + 2*y", "2*y + x"),  # order of a sum
    ("a*b*x", "x*b*a"),  # order of scalar factors
    ("a*x@y'", "x@y'*a"),
    ("2*A'@x", "2*(A.T@x)"),  # .T vs ', brackets that only group
    ("(A@x - y)", "A@x - y"),  # outer parentheses
    ("2.0*x", "2*x"),  # constants by value
    ("-2*A'@(y - A@x)", "-(2*A')@(y - A@x)"),  # a sign anywhere in a product
    ("x - (y + u)", "x - y - u"),
    ("A@(B@x)", "(A@B)@x"),  # a matrix chain as a textbook writes ABx
    ("(x'@y)*x", "x*(x'@y)"),  # a scalar subexpression is a scalar factor
    ("x/||x||_2", "x/||x||"),
    ("x*y", "y*x"),  # the element-wise product commutes
])
def test_trivial_rewrites_compare_equal(a, b):
    assert C.same_up_to_trivial_rewrites(a, b, VEC)


@pytest.mark.parametrize("a, b", [
    ("A@B@x", "B@A@x"),  # matrix products do not commute
    ("x - y", "y - x"),
    ("a*(x + y)", "a*x + a*y"),  # no distribution
    ("diag(x) - diag(y)", "diag(x - y)"),  # issue 19's canonical forms are not granted
    ("x/||x||^2/||x||", "x/||x||^3"),
    ("-x/||x||^2/||x||", "-x*||x||^-3"),
    ("2*3*x", "6*x"),  # no arithmetic
    ("A'@B'", "(B@A)'"),
    ("x*y/a", "x*y*a"),
    ("x/y", "x*y"),
    ("A", "A'"),
    ("relu(x)*sign(relu(x))", "relu(x)"),
    ("x + x", "2*x"),
])
def test_other_rewrites_compare_different(a, b):
    assert not C.same_up_to_trivial_rewrites(a, b, VEC)


def tree(node):
    """A parse tree without its columns."""
    if isinstance(node, (list, tuple)):
        return tuple(tree(n) for n in node)
    if not hasattr(node, "col"):
        return node
    fields = {k: tree(v) for k, v in vars(node).items() if k not in ("col", "text")}
    return (type(node).__name__, tuple(sorted(fields.items())))


@pytest.mark.parametrize("text", ["-2*X' @ (y - X @ theta)", "(A + A') @ x / (x' @ x) - 2*x' @ A @ x*x / (x' @ x)^2",
                                  "diag((1 + (X@w - y)^2)^-1.5)", "x @ ones(m)' / sum(x)^2", "-(a + b)^2",
                                  "(-x)^2", "2^-1", "a^b^2", "(a^b)^2", "h'(X @ W)", "sum(A, axis=0)'"])
def test_the_renderer_prints_what_parses_back_to_the_same_tree(text):
    """The length measure renders the parsed form; that rendering must be the same formula."""
    rendered = C.render(C.parse(text).expr)
    assert tree(C.parse(rendered).expr) == tree(C.parse(text).expr)
    assert " " not in rendered


# ------------------------------------------------------------------ the figures, as floors
def test_figures_only_improve():
    """Measured on main on 2026-12-02, before issue 19's rules: 121 of 164 rows equal (73.8%),
    median ratio 1.00, p90 1.62, max 14.0 (index notation for the Jacobian of (Ax)ᵀ, a row
    vector).  With other textbooks' forms as alternatives and 18 more rows (Cookbook inverses and
    determinants, residual norms, Gaussian likelihoods, Mahalanobis distance, attention weights,
    centering): 139 of 182 (76.4%), median 1.00, p90 1.60, max 14.0.  With the power, factor,
    denominator and row-Jacobian rules 146 (80.2%), p90 1.10, max 7.22; with the diagonal,
    determinant and piecewise-product forms too 155 (85.2%), p90 1.00, max 2.00; with a common
    scalar denominator's lower power pulled out and the constants of a quotient met 164 (90.1%),
    p90 1.00, max 1.44.  Floors: the rate rounded down, the ratios rounded up; raise them as
    rules land.
    Issue 19's goal: at least 95% equal, and no printed form longer than 1.5× the textbook's."""
    f = C.figures([C.compare(r) for r in T.ROWS])
    assert f.rows == len(T.ROWS)
    assert f.percent_equal >= 90  # goal: 95
    assert f.median_ratio <= 1.0
    assert f.worst_tenth_ratio <= 1.0
    assert f.max_ratio <= 1.5  # goal: 1.5


def test_bench_part_prints_the_figures_and_every_differing_row():
    out = subprocess.run([sys.executable, "-m", "bench", "--part", "textbook"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    results = [C.compare(r) for r in T.ROWS]
    f = C.figures(results)
    assert f"| {f.rows} | all | {f.equal} ({f.percent_equal:.1f}%) | {f.median_ratio:.2f} |" in out
    differing = [r for r in results if not r.equal]
    assert f"{len(differing)} rows differ" in out
    rows = [line for line in out.splitlines() if line.startswith(("| grad |", "| hess |"))]
    assert len(rows) == len(differing)
