"""Tests generated from the operator registry for declared structure and the vec layout (issue 17):

- every operator whose record lists `structures` (symmetric, spd) is differentiated wrt a
  declared-structured square matrix S, on data drawn from its test `domain` with that structure,
  in both conventions (sym(G) = (G + Gᵀ)/2, and `vech`: G + Gᵀ − G⊙I).  The oracle is written
  here: central differences of the independent translation (tests/oracle.py) along the symmetric
  directions eᵢeⱼᵀ + eⱼeᵢᵀ, and HIPS autograd's general gradient G, symmetrized with numpy;
- for spd, `--random` data is symmetric and positive definite (a Cholesky factor exists);
- every operator with a Kronecker-form rule (its record's `kronecker`; an entry-wise operator
  without one takes the generic diag(vec f′) rule) gives `--layout vec` values equal to the
  autograd Jacobian tensor reshaped in column-major (vec) order, and a printed Kronecker form
  whose text, evaluated by the oracle, gives the same matrix.

An operator registered with a name is tested here as soon as it exists; operators written with
syntax (@, +, ', ‖·‖) have a formula each below, and a test fails until each has one.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

autograd = pytest.importorskip("autograd")

import gradcli  # noqa: E402
from gradcli.errors import GradcliError  # noqa: E402
from gradcli.language import operators  # noqa: E402,F401  (fills the registry)
from gradcli.language.expr import CALLS, OPS, topological  # noqa: E402
from gradcli.numeric.draws import random_inputs  # noqa: E402
from oracle import translate  # noqa: E402
from test_registry import INTERNAL, _unavailable, draw  # noqa: E402

N = 3  # the side of S
CONVENTIONS = ("sym", "vech")


# ----------------------------------------------------------------- structured draws
def symmetric_draw(domain: str, rng: np.random.Generator) -> np.ndarray:
    """A symmetric N×N matrix from an operator's domain: the symmetric part of a draw (the
    average of two entries of a domain stays in it); for "distinct", the distinct values of a
    draw on and above the diagonal, mirrored (no tie but the mirrored pairs)."""
    if domain == "distinct":
        upper = draw("distinct", (N * (N + 1) // 2,), rng)
        s = np.zeros((N, N))
        s[np.triu_indices(N)] = upper
        return s + np.triu(s, 1).T
    a = draw(domain, (N, N), rng)
    return (a + a.T) / 2  # exactly symmetric: a + b == b + a in floating point


def spd_draw(domain: str, rng: np.random.Generator) -> np.ndarray:
    """A symmetric positive definite N×N matrix whose entries lie in the operator's domain:
    diagonally dominant with entries of the domain's sign and size."""
    if domain == "positive":  # off-diagonal in [0.1, 0.5], diagonal ≥ 1.6 > (N − 1)·0.5
        off = rng.uniform(0.1, 0.5, size=(N, N))
        return (off + off.T) / 2 + np.diag(rng.uniform(1.1, 1.9, size=N))
    if domain == "unit":  # |entries| < 0.8: off-diagonal within ±0.2, diagonal in [0.5, 0.75]
        off = rng.uniform(-0.2, 0.2, size=(N, N))
        off = (off + off.T) / 2
        return off - np.diag(np.diag(off)) + np.diag(rng.uniform(0.5, 0.75, size=N))
    if domain == "distinct":  # distinct magnitudes, no zeros; the diagonal lifted past the rest
        off = symmetric_draw("distinct", rng)
        return off + np.diag(2.0 * N + np.arange(N))
    b = rng.normal(size=(N, N))
    return b @ b.T + N * np.eye(N)


def structured_draw(domain: str, structure: str, rng: np.random.Generator) -> np.ndarray:
    s = spd_draw(domain, rng) if structure == "spd" else symmetric_draw(domain, rng)
    assert np.array_equal(s, s.T)
    if structure == "spd":
        np.linalg.cholesky(s)  # the draw is what it says
    return s


# ----------------------------------------------------------------- the cases, from the records
# operators written with syntax, not a call: a formula in S that builds each (A, B: general N×N)
SYNTAX = {
    "T": "S' @ A", "add": "S + A'", "mul": "S * A", "div": "A / (S + 4)", "pow": "S^3",
    "matmul": "A @ S @ B", "sqnorm": "||S||^2", "norm1": "||vec(S)||_1", "norminf": "||vec(S)||_inf",
    "specnorm": "||S||_2", "nucnorm": "||S||_*", "opnorm1": "||S||_1", "opnorminf": "||S||_inf",
}
# the quadratic forms and the textbook cases of issue 17 (the Gaussian negative log-likelihood
# last), each with the operator whose test domain its S is drawn from
QUADRATIC = [("matmul", "x' @ S @ x"), ("matmul", "x' @ S @ S @ x"), ("inv", "x' @ inv(S) @ x"),
             ("inv", "tr(inv(S) @ A)"), ("logdet", "0.5*logdet(S) + 0.5*x' @ inv(S) @ x")]
# operators no formula writes: derivatives build them (tests/test_registry.py REACHED_BY)
DERIVATIVE_ONLY = {"const", "sym", "numel", "expand", "step", "abs_slope", "apply", "elemderiv", "prod_others",
                   "diagv", "congruence", "adjT"}
OTHERS = {"A": (N, N), "B": (N, N), "x": (N,), "Y": (2, 3)}


def _structured_calls(name: str, op) -> list[str]:
    """Calls of one function name with the square matrix S as an operand (the others general)."""
    if op.operands == 0:
        return [f"S + {name}({N})", f"S + {name}({N}, {N})"]
    if op.operands is not None:
        return []  # unvec(g, m): its operand is a vector
    calls = [f"{name}(S)"] if 1 in op.arity else []
    if 2 in op.arity:
        calls += [f"{name}(S, A)", f"{name}(A, S)", f"{name}(S, Y)"]
    if op.axis:
        calls += [f"{name}(S, {axis})" for axis in (0, 1)]
    return calls


def _analyzes(text: str) -> bool:
    shapes = {"S": (N, N), **{k: v for k, v in OTHERS.items() if k in _names(text)}}
    try:
        gradcli.analyze(text + " wrt S", data_shapes=shapes)
    except GradcliError:
        return False  # a shape this operator does not take
    return True


def _names(text: str) -> set[str]:
    """The one-letter symbols of a formula (S, A, B, x, Y)."""
    return set(re.findall(r"\b[A-Za-z]\b", text))


def _structured_cases():
    for name, op in sorted(CALLS.items()):
        for call in _structured_calls(name, op):
            if _analyzes(call):
                for structure in op.structures:
                    yield pytest.param(op.name, call, structure, id=f"{call}-{structure}")
    for name, call in SYNTAX.items():
        for structure in OPS[name].structures:
            yield pytest.param(name, call, structure, id=f"{call}-{structure}")
    for name, call in QUADRATIC:
        for structure in OPS[name].structures:
            yield pytest.param(name, call, structure, id=f"{call}-{structure}")


STRUCTURED = list(_structured_cases())


def _values(name: str, text: str, structure: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    domain = OPS[name].domain
    values = {"S": structured_draw(domain, structure, rng)}
    for k in sorted(_names(text) - {"S"}):
        values[k] = rng.normal(size=OTHERS[k])
    return values


def _weighted(call: str, values: dict, rng: np.random.Generator) -> tuple[str, dict]:
    """sum(W ⊙ call) with a general W: every entry weighted differently, so that a gradient right
    only up to a transpose is caught."""
    result = np.asarray(translate(call)(values))
    if result.ndim == 0:
        return call, values
    return f"sum(W * ({call}))", {**values, "W": rng.normal(size=result.shape)}


def symmetric_differences(f, S: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """D[i, j] = the central difference of f along eᵢeⱼᵀ + eⱼeᵢᵀ (eᵢeᵢᵀ on the diagonal): the
    derivative wrt the distinct entry (i, j) of a symmetric S."""
    n = S.shape[0]
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            e = np.zeros((n, n))
            e[i, j] = e[j, i] = 1.0
            d[i, j] = d[j, i] = (f(S + h * e) - f(S - h * e)) / (2 * h)
    return d


def _expected(G: np.ndarray, convention: str) -> np.ndarray:
    return (G + G.T) / 2 if convention == "sym" else G + G.T - G * np.eye(len(G))


@pytest.mark.parametrize("name, call, structure", STRUCTURED)
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_gradient_wrt_a_structured_matrix_is_the_symmetrized_general_one(name, call, structure, convention):
    rng = np.random.default_rng(7)
    values = _values(name, call, structure, 7)
    text, values = _weighted(call, values, rng)
    f = translate(text)
    on_s = lambda s: f({**values, "S": s})  # noqa: E731

    try:
        got = gradcli.grad(f"{text} wrt S", values, shapes={"S": f"{N},{N},{structure}"},
                           symmetric_gradient=convention)["S"]
    except GradcliError as err:
        if _unavailable(err, name, 1):
            return  # the documented limit: u1v1 and polar have no derivative of their own
        raise
    value = np.asarray(got.value, float)
    assert value.shape == (N, N), (text, value)

    # autograd's general gradient G, symmetrized: the convention's closed form
    G = autograd.grad(on_s)(values["S"])
    expected = _expected(np.asarray(G, float), convention)
    scale = max(1.0, float(np.max(np.abs(expected))))
    assert np.max(np.abs(value - expected)) <= 1e-8 * scale, (text, convention, value, expected)

    # the same from finite differences along symmetric directions only (nothing but f)
    d = symmetric_differences(on_s, values["S"])
    per_entry = d if convention == "vech" else np.where(np.eye(N, dtype=bool), d, d / 2)
    assert np.max(np.abs(value - per_entry)) <= 1e-5 * scale, (text, convention, value, per_entry)


SPD = [p for p in STRUCTURED if p.values[2] == "spd"]


@pytest.mark.parametrize("name, call, structure", SPD)
def test_random_data_drawn_for_spd_is_spd(name, call, structure):
    """`--random` for `S: spd` draws a symmetric positive definite S, whatever else the formula
    asks of S's entries (positive inside log, ...); the run's gradient is the one at that S."""
    others = {k: v for k, v in OTHERS.items() if k in _names(call)}
    shapes = {"S": f"{N},{N},spd", **{k: ",".join(map(str, v)) for k, v in others.items()}}
    problem = gradcli.analyze(f"{call} wrt S", shapes={"S": (N, N), **others}, structures={"S": "spd"})
    drawn = random_inputs({"S": (N, N), **others}, 3, problem.typed.expr)  # what --random runs
    s = drawn["S"]
    assert np.array_equal(s, s.T)
    assert np.all(np.linalg.eigvalsh(s) > 0), np.linalg.eigvalsh(s)
    try:
        r = gradcli.grad(f"{call} wrt S", shapes=shapes, random=True, seed=3)["S"]
    except GradcliError as err:
        # an SPD draw has a diagonal ≥ 1: outside (−1, 1), the domain of arcsin and its kin
        assert _unavailable(err, name, 1) or err.kind == "math" and OPS[name].domain == "unit", err
        return
    if r.shape != (N, N):
        return  # a Jacobian (f not scalar): its layout is not the gradient's
    f = translate(call)
    G = autograd.grad(lambda m: f({**drawn, "S": m}))(s)
    expected = (G + G.T) / 2
    assert np.allclose(np.asarray(r.value, float), expected, rtol=1e-8, atol=1e-10), (call, r.value, expected)


def test_every_record_names_structures_these_tests_draw():
    assert {op.name for op in OPS.values() if not set(op.structures) <= {"symmetric", "spd"}} == set()


def test_every_operator_written_with_syntax_has_a_structured_formula():
    """Each operator a formula builds without calling it by name is tested above: the formula
    of SYNTAX builds it; the rest only derivatives build."""
    for name, text in SYNTAX.items():
        p = gradcli.analyze(text + " wrt S", data_shapes={"S": (N, N), **{k: v for k, v in OTHERS.items()
                                                                         if k in _names(text)}})
        assert name in {n.op for n in topological([p.typed.expr])}, (name, text)
    assert DERIVATIVE_ONLY <= set(INTERNAL)
    assert set(INTERNAL) <= set(SYNTAX) | DERIVATIVE_ONLY, sorted(set(INTERNAL) - set(SYNTAX) - DERIVATIVE_ONLY)


def test_every_callable_matrix_operator_is_tested_structured():
    """A named operator that takes a square matrix has structured cases (or says why not)."""
    tested = {p.values[0] for p in STRUCTURED}
    for name, op in CALLS.items():
        takes_square = any(_analyzes(c) for c in _structured_calls(name, op))
        if takes_square and op.structures:
            assert op.name in tested, name


# ----------------------------------------------------------------- the vec layout, per record
# operators with a Kronecker-form rule that a formula writes with syntax (or builds from a
# broadcast), each with calls that reach the rule: shapes of the symbols in each
VEC_SYNTAX = {
    "T": [("X'", {"X": (3, 4)}), ("X' @ Y", {"X": (3, 4), "Y": (3, 2)}), ("x'", {"x": (3,)})],
    "add": [("X + Y", {"X": (3, 4), "Y": (3, 4)}), ("X + sum(X)", {"X": (3, 4)})],
    "mul": [("X * Y", {"X": (3, 4), "Y": (3, 4)}), ("sum(Y) * X", {"X": (3, 4), "Y": (2, 2)}),
            ("X * X", {"X": (3, 4)})],
    "div": [("X / Y", {"X": (3, 4), "Y": (3, 4)}), ("X / sum(X)", {"X": (3, 4)})],
    "matmul": [("X @ Y", {"X": (3, 4), "Y": (4, 2)}), ("X @ x", {"X": (3, 4), "x": (4,)}),
               ("x @ y'", {"x": (3,), "y": (2,)})],
    "fill": [("zeros(3, 4) + sum(X)", {"X": (2, 2)})],
}


def _positive(name: str) -> bool:
    return OPS[name].domain in ("positive", "spd")


def _vec_cases():
    """Every record with a `kronecker` rule, and every entry-wise record (the generic rule), on
    the calls the registry tests it with (test_registry._calls) or written with syntax."""
    from test_registry import _calls

    cases = [(op.name, call, shapes) for name, op in sorted(CALLS.items()) if op.kronecker is not None or op.entrywise
             for call, shapes in _calls(name, op)]
    cases += [(name, call, shapes) for name, calls in VEC_SYNTAX.items() for call, shapes in calls]
    for name, call, shapes in cases:
        yield from _vec_params(name, call, shapes)


def _vec_params(name: str, call: str, shapes: dict):
    try:
        p = gradcli.analyze(f"{call} wrt {', '.join(sorted(shapes))}", data_shapes=shapes)
    except GradcliError:
        return  # a shape this operator does not take
    if p.typed.ty.is_scalar:
        return  # a scalar f: its vec-layout derivative is the gradient's
    if name not in {n.op for n in topological([p.typed.expr])}:
        return  # rewritten into other operators when built (square(X) is X^2, X + zeros(3) is X)
    for x in sorted(shapes):
        if shapes[x]:
            yield pytest.param(name, call, shapes, x, id=f"{call}-wrt-{x}-" + "-".join(
                "x".join(map(str, s)) for s in shapes.values()))


VEC = list(_vec_cases())


@pytest.mark.parametrize("name, call, shapes, wrt", VEC)
def test_vec_layout_equals_the_reshaped_tensor_and_its_printed_form(name, call, shapes, wrt):
    rng = np.random.default_rng(4)
    values = {v: draw(OPS[name].domain, s, rng) for v, s in shapes.items()}
    f = translate(call)
    tensor = autograd.jacobian(lambda x: f({**values, wrt: x}))(values[wrt])
    f_size = int(np.prod(np.shape(f(values))))
    expected = np.reshape(tensor, (f_size, values[wrt].size), order="F")  # column-major: vec
    got = gradcli.grad(f"{call} wrt {wrt}", values, layout="vec")[wrt]
    assert got.layout == "vec"
    np.testing.assert_allclose(np.asarray(got.value, float), expected, rtol=1e-9, atol=1e-11)
    assert got.ascii is not None, (call, wrt, "no Kronecker form")
    printed = np.asarray(translate(got.ascii)({**values}), float)
    np.testing.assert_allclose(printed, expected, rtol=1e-9, atol=1e-11, err_msg=got.ascii)


def test_every_kronecker_rule_is_reached_by_a_vec_layout_case():
    """A record given a `kronecker` rule is tested above as soon as it has one (a named operator
    through its calls; one written with syntax needs a VEC_SYNTAX entry)."""
    reached = {p.values[0] for p in VEC}
    assert {n for n, op in OPS.items() if op.kronecker is not None} <= reached
