"""Tests generated from the operator registry (as JAX's LAX_GRAD_OPS table is): every operator a
formula can call, on every argument shape its shape rule accepts, first and second order, by
the evaluator and by `--emit numpy`, against HIPS autograd applied to the independent
translation of the same formula (tests/oracle.py: nothing of gradcli's operator table).

A new operator is tested here as soon as it is registered with `names`; the completeness tests
fail until it has an oracle entry, a test domain, numpy source for `--emit`, and a notation in
every style, and until each operator only derivatives build is reached by some tested formula.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

autograd = pytest.importorskip("autograd")

import gradcli  # noqa: E402
from gradcli.language import operators  # noqa: E402,F401  (fills the registry)
from gradcli.numeric.emit import emit_numpy  # noqa: E402
from gradcli.errors import GradcliError  # noqa: E402
from gradcli.language.expr import CALLS, OPS, topological  # noqa: E402
from helpers import load_module  # noqa: E402
from oracle import DIMENSION_FUNCTIONS, FUNCTIONS, translate  # noqa: E402
from oracle import ELEMENTWISE as ORACLE_ELEMENTWISE  # noqa: E402

# the argument shapes every operator is tried on; its shape rule decides which it takes
SHAPES = {"scalar": (), "vector": (3,), "matrix": (3, 4), "square": (3, 3)}
STYLES = ("unicode", "ascii", "latex")


def draw(domain: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """A value from an operator's test domain (its record's `domain`)."""
    if domain == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if domain == "unit":
        return rng.uniform(-0.8, 0.8, size=shape)
    if domain == "distinct":  # away from 0 and from each other: no kinks, no ties
        n = int(np.prod(shape)) if shape else 1
        magnitudes = rng.permutation(np.linspace(0.5, 2.0, n))
        return np.reshape(rng.choice([-1.0, 1.0], size=n) * magnitudes, shape)
    if domain == "spd":
        if len(shape) != 2 or shape[0] != shape[1]:
            return rng.uniform(0.5, 2.0, size=shape)
        b = rng.normal(size=shape)
        return b @ b.T + shape[0] * np.eye(shape[0])
    assert domain == "any", domain
    return rng.normal(size=shape)


# functions with an argument that is a setting, not an operand
SETTINGS_CALLS = {"unvec": [("unvec(X, 3)", {"X": (12,)}), ("unvec(X, 1)", {"X": (3,)}), ("unvec(X, 3)", {"X": (3,)})],
                  "commutation": [("X + commutation(2, 3)", {"X": (6, 6)}), ("X @ commutation(3, 1)", {"X": (2, 3)})]}


def _calls(name: str, op) -> list[tuple[str, dict]]:
    """The calls of one function name to test, each with its arguments' shapes."""
    if name in SETTINGS_CALLS:
        return SETTINGS_CALLS[name]
    if op.operands == 0:  # ones(3, 4), eye(3): dimensions, no operand; added to an operand X
        out = []
        for shape in SHAPES.values():
            for dims in {shape, shape[:1]}:
                if dims and len(dims) in op.arity:
                    out.append((f"X + {name}({', '.join(map(str, dims))})", {"X": shape}))
        return out
    if op.arity == (2,):  # pairs of vectors, of matrices, of a matrix and its divisor's shape
        return [(f"{name}(X, Y)", {"X": x, "Y": y})
                for x, y in (((3,), (3,)), ((6,), (2,)), ((3, 4), (2, 3)), ((6, 4), (3, 2)))]
    out = [(f"{name}(X)", {"X": shape}) for shape in SHAPES.values()]
    if op.axis:
        out += [(f"{name}(X, {axis})", {"X": SHAPES["matrix"]}) for axis in (0, 1, -1)]
    return out


def _cases():
    for name, op in CALLS.items():
        for call, shapes in _calls(name, op):
            try:
                gradcli.analyze(call, data_shapes=shapes)
            except GradcliError:
                continue  # a shape this operator does not take
            ident = "-".join("x".join(map(str, s)) or "scalar" for s in shapes.values())
            yield pytest.param(name, call, shapes, id=f"{call}-{ident}")


CASES = list(_cases())


def _problem(name: str, call: str, shapes: dict, seed: int = 0):
    """sum(W ⊙ call): every entry of the result weighted differently, so that a derivative
    right on the diagonal only, or up to a transpose, is caught."""
    rng = np.random.default_rng(seed)
    domain = CALLS[name].domain
    values = {v: draw(domain, s, rng) for v, s in shapes.items()}
    result = np.asarray(translate(call)(values))
    values["W"] = rng.normal(size=result.shape)
    text = f"sum(W * ({call}))"
    wrt = sorted(shapes)
    problem = gradcli.analyze(f"{text} wrt {', '.join(wrt)}",
                              data_shapes={k: np.shape(v) for k, v in values.items()})
    return problem, text, values, wrt


def _expected(text: str, values: dict, a: str, b: str | None):
    f = translate(text)

    def along(name, base):
        return lambda x: f({**base, name: x})
    if b is None:
        return autograd.grad(along(a, values))(values[a])

    def grad_a(vals):
        return autograd.grad(along(a, vals))(vals[a])
    return autograd.jacobian(lambda y: grad_a({**values, b: y}))(values[b])


def _agree(got, expected) -> bool:
    got, expected = np.asarray(got, float), np.asarray(expected, float)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0)))
    return got.shape == expected.shape and float(np.max(np.abs(got - expected), initial=0)) <= 1e-7 * scale


def _unavailable(err: GradcliError, name: str, order: int) -> bool:
    """The documented limit: an SVD-based first derivative (‖A‖₂, ‖A‖_*, written with u1v1 and
    polar) has no derivative of its own."""
    return (err.kind == "math" and "second derivative" in err.message and "not available" in err.message
            and (order == 2 or name in ("u1v1", "polar")))


@pytest.mark.parametrize("name, call, shapes", CASES)
@pytest.mark.parametrize("order", [1, 2])
def test_derivative_matches_autograd(name, call, shapes, order):
    problem, text, values, wrt = _problem(name, call, shapes)
    try:
        compiled = problem.compile(hessian=order == 2)
        f, derivs = compiled(**values)
    except GradcliError as err:
        if _unavailable(err, name, order):
            return
        raise
    assert _agree(f, translate(text)(values)), (text, f)
    assert derivs, text
    for d in compiled.derivs:
        a, _, b = d.wrt.partition(",")
        expected = _expected(text, values, a, (b or a) if order == 2 else None)
        assert _agree(derivs[d.wrt], expected), (text, d.wrt, derivs[d.wrt], expected)


@pytest.mark.parametrize("name, call, shapes", CASES)
@pytest.mark.parametrize("order", [1, 2])
def test_emitted_derivative_matches_autograd(name, call, shapes, order, tmp_path):
    problem, text, values, wrt = _problem(name, call, shapes, seed=1)
    try:
        derivs = problem.hessians() if order == 2 else problem.derivatives()
        source = emit_numpy(problem, derivs, {}, order == 2)
    except GradcliError as err:
        if _unavailable(err, name, order):
            return
        raise
    module = load_module(source, tmp_path, name=f"registry_{order}")
    f, got = (module.value_and_hess if order == 2 else module.value_and_grad)(**values)
    assert _agree(f, translate(text)(values)), (text, f)
    for key, value in got.items():
        a, _, b = key.partition(",")
        expected = _expected(text, values, a, (b or a) if order == 2 else None)
        assert _agree(value, expected), (text, key, value, expected)


# ----------------------------------------------------------------- completeness
def test_every_callable_operator_is_tested_on_some_shape():
    tested = {c.values[0] for c in CASES}
    assert tested == set(CALLS), sorted(set(CALLS) - tested)


def test_every_callable_operator_has_an_oracle_entry():
    known = set(ORACLE_ELEMENTWISE) | set(FUNCTIONS) | set(DIMENSION_FUNCTIONS)
    assert set(CALLS) <= known, sorted(set(CALLS) - known)


def test_every_operator_has_a_known_test_domain():
    domains = {"any", "positive", "unit", "spd", "distinct"}
    assert {op.name for op in OPS.values() if op.domain not in domains} == set()


# operators without a kernel (kernels.py), which the evaluator runs and --emit writes out: `const`
# and `sym` are literals and inputs, `apply` is bound to a builtin by --fn first (or is a callable
# the emitted module takes), `elemderiv` rewrites itself into the builtin's derivative when built
NOT_EVALUATED = {"const", "sym", "apply", "elemderiv"}


def test_every_operator_has_a_kernel_for_the_evaluator_and_emit():
    missing = {name for name, op in OPS.items() if op.impl is None} - NOT_EVALUATED
    assert missing == set(), sorted(missing)


def test_every_operator_has_a_notation_in_every_style():
    for name, op in OPS.items():
        assert "custom" in op.notation or set(STYLES) <= set(op.notation), name


# operators a formula cannot call, and a formula whose derivatives (order 1 or 2) build each one
REACHED_BY = {
    "const": ("sum(W * (X + 1))", 1), "sym": ("sum(W * exp(X))", 1), "numel": ("mean(X)", 1),
    "T": ("sum(W * (X @ X' @ W))", 1), "expand": ("sum(W * sum(A, 1))", 1), "fill": ("sum(X)", 1),
    "add": ("sum(W * (X + 1))", 1), "mul": ("sum(W * X * X)", 1), "div": ("sum(W * log(X))", 1),
    "pow": ("sum(W * X^3)", 1), "matmul": ("sum(W * (X @ X' @ W))", 1), "step": ("sum(W * relu(X))", 1),
    "abs_slope": ("sum(W * abs(X))", 1), "apply": ("sum(W * h(X))", 1),
    "elemderiv": None,  # built by `exp'(x)` and rewritten into the derivative when built
    "sqnorm": ("||X||^2", 1), "norm1": ("||X||_1", 1), "ismax": ("max(X)", 1), "ismin": ("min(X)", 1),
    "prod_others": ("prod(X)", 2), "norminf": ("||X||_inf", 1), "u1v1": ("||A||_2", 1),
    "polar": ("||A||_*", 1), "specnorm": ("||A||_2", 1), "nucnorm": ("||A||_*", 1),
    "opnorm1": ("||A||_1", 1), "opnorminf": ("||A||_inf", 1), "diagv": ("sum(W * diag(diag(X)))", 1),
    "congruence": None,  # the evaluator's rewriting of Pᵀ diag(w) P (tests/test_memory.py)
    "adjT": None,  # the evaluator's rewriting of det(X)·X⁻ᵀ (tests/test_emit.py, det at rank n − 1)
}
INTERNAL = sorted(name for name in OPS if name not in {op.name for op in CALLS.values()})


def test_every_internal_operator_has_a_formula_that_reaches_it():
    assert set(INTERNAL) <= set(REACHED_BY), sorted(set(INTERNAL) - set(REACHED_BY))


@pytest.mark.parametrize("name", [n for n in INTERNAL if REACHED_BY.get(n)])
def test_internal_operator_is_reached_and_right(name):
    text, order = REACHED_BY[name]
    shapes = {"X": (3,), "W": (3,), "A": (3, 4)}
    wrt = [s for s in ("X", "A") if s in text]
    p = gradcli.analyze(f"{text} wrt {', '.join(wrt)}", data_shapes={s: shapes[s] for s in shapes if s in text})
    derivs = p.hessians() if order == 2 else p.derivatives()
    found = {n.op for n in topological([p.typed.expr] + [d.expr for d in derivs if d.expr is not None])}
    assert name in found, (name, text, sorted(found))
    if "h(" in text:
        return  # an abstract function has no numbers
    rng = np.random.default_rng(2)
    values = {s: draw("distinct", shapes[s], rng) for s in shapes if s in text}
    values = {s: np.abs(v) if s == "X" else v for s, v in values.items()}  # log(X): positive, distinct
    compiled = p.compile(hessian=order == 2)
    _, got = compiled(**values)
    for d in compiled.derivs:
        a, _, b = d.wrt.partition(",")
        expected = _expected(text, values, a, (b or a) if order == 2 else None)
        assert _agree(got[d.wrt], expected), (text, d.wrt, got[d.wrt], expected)


def test_derived_name_lists_follow_the_registry():
    """The element-wise builtins (--fn, f'(x)) and the callable names are read off the records:
    no list elsewhere to keep in step."""
    from gradcli.language.infer import BUILTINS
    from gradcli.language.operators import ELEMENTWISE

    assert BUILTINS == set(CALLS)
    assert set(ELEMENTWISE) == {n for n, op in CALLS.items() if op.entrywise and op.arity == (1,)}
    assert all(OPS[n].names == (n,) for n in ELEMENTWISE)


@pytest.mark.parametrize("name", sorted({op.name for op in OPS.values() if op.entrywise and len(op.arity) == 1
                                         and op.arity == (1,) and op.names}))
def test_an_entrywise_function_of_a_symmetric_matrix_is_known_symmetric(name):
    """Read off the record (`entrywise`), not a list of names: f(XᵀX) is symmetric for every
    element-wise f, so its transpose prints as itself."""
    from gradcli.language import simplify as S
    from gradcli.language.shapes import mat

    X = S.sym("X", mat(4, 3))
    gram = S.matmul(S.T(X), X)
    assert S.is_symmetric(S.fn(name, gram))
    assert not S.is_symmetric(S.fn(name, S.sym("Y", mat(3, 3))))


@pytest.mark.parametrize("text", ["u1v1(x)", "polar(x)", "u1v1(a)"])
def test_svd_helpers_take_a_matrix_only(text):
    with pytest.raises(GradcliError) as info:
        gradcli.analyze(text, data_shapes={"x": (3,), "a": ()})
    assert info.value.kind == "shape" and "needs a matrix" in info.value.message


# ----------------------------------------------------------------- Jacobians and index notation
# operators whose index-notation rule must give every tensor derivative of theirs a formula
INDEXED = {"kron", "kron_a", "kron_b", "vec", "unvec"}


@pytest.mark.parametrize("name, call, shapes", CASES)
def test_jacobian_and_its_printed_index_notation_match_autograd(name, call, shapes):
    """The Jacobian of the call itself (a tensor for most), by the evaluator and, where it has no
    matrix formula, by evaluating the index notation gradcli prints (the terms as displayed)."""
    from gradcli.calculus.differentiate import gradients, seed_for
    from gradcli.calculus.indexform import F_INDEX, X_INDEX, display_terms, evaluate_terms
    from gradcli.numeric.evaluate import compile_graph

    rng = np.random.default_rng(2)
    values = {v: draw(CALLS[name].domain, s, rng) for v, s in shapes.items()}
    problem = gradcli.analyze(f"{call} wrt {', '.join(sorted(shapes))}",
                              data_shapes={k: np.shape(v) for k, v in values.items()})
    if problem.typed.ty.is_row:
        return  # (no operator gives a row from columns and matrices)
    try:
        _, derivs = problem.compile()(**values)
    except GradcliError as err:
        if _unavailable(err, name, 1):
            return
        raise
    f = translate(call)
    for d in problem.derivatives():
        expected = autograd.jacobian(lambda x: f({**values, d.wrt: x}))(values[d.wrt])
        assert _agree(derivs[d.wrt], expected), (call, d.wrt)
        if d.expr is not None:
            continue
        v = seed_for(d.of)
        (g,) = gradients(d.of, [d.x], seed=v)
        f_dims, x_dims = d.f_ty.full_dims, d.x_ty.dims
        terms = display_terms(g, v, f_dims, x_dims)
        assert terms is not None or name not in INDEXED, (call, d.wrt)
        if terms is None:
            continue
        assert d.formula("ascii"), (call, d.wrt)
        factors = list({e: None for t in terms for e in [x[3] for x in t.factors if x[0] == "t"]})
        computed = dict(zip(factors, compile_graph(factors).run(values)))
        printed = evaluate_terms(terms, F_INDEX[:len(f_dims)], X_INDEX[:len(x_dims)],
                                 tuple(int(n) for n in d.shape), computed)
        assert _agree(printed, expected), (call, d.wrt, d.formula("ascii"))
