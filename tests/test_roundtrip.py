"""What gradcli prints is gradcli: every matrix-notation derivative, printed in ASCII, re-parses
(with the same symbol shapes) to an expression of the same shape and value as the derivative
itself — for gradients, Jacobians with a matrix formula and Hessians, and for the JSON document,
whose formulas name shared subexpressions in a `bindings` list.  A print that does not re-parse
is a failure, like one that evaluates to something else.

    GRADCLI_EXAMPLES=10000 python -m pytest tests/test_roundtrip.py --hypothesis-show-statistics
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import gradcli
from gradcli.numeric.evaluate import compile_graph
from test_derivatives import _names, formulas

SHAPES = {"a": (), "x": (3,), "y": (3,), "A": (3, 3), "D": (3, 3)}
SYMBOLIC = {"a": (), "x": ("n",), "y": ("n",), "A": ("n", "n"), "D": ("n", "n")}
EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "300"))


def _values(names, seed, shapes):
    rng = np.random.default_rng(seed)
    return {n: 0.5 * rng.normal(size=shapes[n]) for n in names}


def _run(exprs, values):
    program = compile_graph(list(exprs))
    program.allow_nonfinite = True
    return program.run(values)


def _agree(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return False
    finite = np.isfinite(a)
    scale = max(1.0, float(np.max(np.abs(a[finite]), initial=0.0)))
    return bool(np.all(np.abs(a[finite] - b[finite]) <= 1e-9 * scale))


def reparse(text: str, shapes: dict, bindings=()) -> tuple:
    """Parse printed text with the given symbol shapes (bindings first, each a symbol of its own
    shape): (expression, {binding name: expression}) — raises if it does not re-parse."""
    bound = {}
    shapes = dict(shapes)
    for name, formula in bindings:
        e = gradcli.analyze(formula, shapes={k: v for k, v in shapes.items()
                                             if k in _names(formula)}).expr
        bound[name] = e
        shapes[name] = e.ty.full_dims if not e.ty.row else (1,) + e.ty.dims
    p = gradcli.analyze(text, shapes={k: v for k, v in shapes.items() if k in _names(text)})
    return p.expr, bound


def value_of_reparsed(text, shapes, values, bindings=()):
    expr, bound = reparse(text, shapes, bindings)
    values = dict(values)
    for name, e in bound.items():  # in order: each binding may use the ones before it
        values[name] = _run([e], values)[0]
    return expr, _run([expr], values)[0]


def assert_round_trip(expr, text, shapes, values, bindings=()):
    """The printed text re-parses to the shape of expr and evaluates to its value."""
    (own,) = _run([expr], values)
    back, value = value_of_reparsed(text, shapes, values, bindings)
    assert back.ty.full_dims == expr.ty.full_dims and back.ty.row == expr.ty.row, (text, back.ty, expr.ty)
    if np.all(np.isfinite(own)):
        assert _agree(own, value), (text, own, value)


def derivatives_of(text, kind, layout=None, shapes=SHAPES):
    names = sorted(s for s in shapes if s in _names(text))
    p = gradcli.analyze(f"{text} wrt {', '.join(names)}", shapes={n: shapes[n] for n in names},
                        layout=layout)
    return p, (p.hessians() if kind == "hessian" else p.derivatives())


def check_formula(text, kind, seed, layout=None):
    from gradcli.document import document as _document

    names = sorted(s for s in SHAPES if s in _names(text))
    if not names:
        event("no symbol")
        return
    p, derivs = derivatives_of(text, kind, layout)
    values = _values(names, seed, SHAPES)
    printed = [d for d in derivs if d.expr is not None]
    event(f"{kind}: {'matrix formula' if printed else 'index notation'}")
    for d in printed:
        assert_round_trip(d.shown(), d.text("ascii"), SHAPES, values)
    tensors = [d for d in derivs if d.expr is None and d.formula("ascii")]
    if tensors:
        _, shown = p.compile(hessian=kind == "hessian")(**values)
        for d in tensors:
            printed_index = index_value(d, values)
            if np.all(np.isfinite(shown[d.wrt])):
                assert np.allclose(printed_index, shown[d.wrt], rtol=1e-8, atol=1e-8), (text, d.formula())
    q, symbolic = derivatives_of(text, kind, layout, SYMBOLIC)  # the same shapes back (ones(n), …)
    resolved = {n: s.shape for n, s in q.symbols.items()}  # eye(3) makes n = 3
    for d in symbolic:
        if d.expr is not None:
            back, _ = reparse(d.text("ascii"), resolved)
            assert back.ty == d.shown().ty, (d.text("ascii"), back.ty, d.shown().ty)
    doc = _document(p, derivs, None, {}, {})
    bindings = [(b["name"], b["formula"]) for b in doc.get("bindings", [])]
    for d, entry in zip(derivs, doc["derivatives"]):
        if d.expr is not None:
            assert_round_trip(d.shown(), entry["formula"], SHAPES, values, bindings)


def index_value(d, values):
    """The printed index notation J[names] = terms, evaluated by einsum in the printed order."""
    from gradcli.calculus.differentiate import gradients, seed_for
    from gradcli.calculus.indexform import display_terms, evaluate_terms

    printed = d.formula("ascii")
    names = tuple(printed[1:printed.index("]")].split(","))
    v = seed_for(d.of)
    (g,) = gradients(d.of, [d.x], seed=v)
    terms = display_terms(g, v, d.f_ty.full_dims if not d.f_ty.row else d.f_ty.dims, d.x_ty.dims)
    factors = {f[3]: f[3] for t in terms for f in t.factors if f[0] == "t"}
    computed = dict(zip(factors, _run(factors.values(), values)))
    return evaluate_terms(terms, names, (), tuple(d.shape), computed)


SCALAR = st.one_of(formulas("s", 3), st.builds(lambda p: f"sum({p})", formulas("v", 3)),
                   st.builds(lambda p: f"sum({p})", formulas("m", 3)))
CASES = st.one_of(
    st.tuples(SCALAR, st.just("gradient")),
    st.tuples(st.one_of(formulas("v", 3), formulas("m", 2)), st.just("jacobian")),
    st.tuples(st.one_of(formulas("s", 2, twice=True), st.builds(lambda p: f"sum({p})", formulas("v", 2, twice=True))),
              st.just("hessian")),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(CASES, st.integers(0, 10_000), st.sampled_from([None, "numerator", "denominator"]))
def test_printed_derivatives_reparse_to_their_value(case, seed, layout):
    text, kind = case
    check_formula(text, kind, seed, layout)


# ----------------------------------------------------------------------------- the issue's cases
def numeric_round_trip(formula, symbolic, numeric, hessian=False, seed=0):
    """Print each derivative of formula with symbolic shapes and re-parse the ASCII with the
    same shapes (the same shape comes back); print it with numeric shapes, re-parse and compare
    values (a dimension name in ones(m, n) has a size only where a symbol gives it one)."""
    def derivs(shapes):
        p = gradcli.analyze(formula, shapes=shapes)
        return p, (p.hessians() if hessian else p.derivatives())

    _, sym_derivs = derivs(symbolic)
    p, num_derivs = derivs(numeric)
    values = _values(list(p.symbols), seed, {n: s.shape for n, s in p.symbols.items()})
    for ds, dn in zip(sym_derivs, num_derivs):
        text = ds.text("ascii")
        back, _ = reparse(text, symbolic)
        assert back.ty == ds.shown().ty, (text, back.ty, ds.shown().ty)
        assert_round_trip(dn.shown(), dn.text("ascii"), numeric, values)
    return [d.text("ascii") for d in sym_derivs + num_derivs]


def test_a_term_made_while_printing_is_not_mistaken_for_another():
    # the renderer cached text by id() of the c·x it makes to print − c·x; once freed, that id
    # came back for another node and one term was printed twice, another not at all
    formula = "((tanh(y))/(1 + x^2))'@(x/(1 + (x*x)^2)) wrt x"
    numeric_round_trip(formula, {"x": ("n",), "y": ("n",)}, {"x": (4,), "y": (4,)})
    (d,) = gradcli.analyze(formula, shapes={"x": ("n",), "y": ("n",)}).derivatives()
    terms, depth, start, text = [], 0, 0, d.text()
    for i, ch in enumerate(text):  # the top-level terms of the unicode text
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and text[i:i + 3] in (" − ", " + "):
            terms.append(text[start:i])
            start = i + 3
    terms.append(text[start:])
    # two terms over a common denominator, or three: none printed twice (and, above, none lost)
    assert len(terms) == len(set(terms)) >= 2, text


M, V, R = ("m", "n"), ("n",), ("p",)
SIZES = {"m": 4, "n": 3, "p": 2}


@pytest.mark.parametrize("formula, shapes", [
    ("x'@C@(A*B)@y wrt x", {"x": ("m",), "C": M, "A": ("n", "p"), "B": ("n", "p"), "y": R}),
    ("x'@(A*B)@(C*D)@y wrt x, y", {"x": ("m",), "A": M, "B": M, "C": ("n", "p"), "D": ("n", "p"), "y": R}),
    ("sum(3*X) wrt X", {"X": M}),                      # a filled array, not the scalar 3
    ("x'@x wrt x", {"x": V}),                          # its Hessian: 2*eye(n), not 2I
    ("sum(x) + sum(X*0) wrt x, X", {"x": V, "X": M}),  # ones(n) and zeros(m, n)
    ("sum(sum(X, 0)*z) + sum(sum(X, 1)*y) wrt X", {"X": M, "z": V, "y": ("m",)}),  # copies (expand)
    ("sum(X + b) + sum(X + c) wrt b, c", {"X": M, "b": (1, "n"), "c": ("m", 1)}),  # keepdims sums
    ("mean(X) + sum(mean(X, 1)*y) wrt X", {"X": M, "y": ("m",)}),  # counts: sum(ones(m, n))
    ("sum(relu(W@x)) wrt x", {"W": M, "x": V}),       # relu' is sign(relu(·))
    ("sum(x/3 + x^3/7) wrt x", {"x": V}),              # constants print in full
])
def test_issue_examples_print_as_the_language(formula, shapes):
    numeric = {k: tuple(SIZES.get(d, d) for d in v) for k, v in shapes.items()}
    texts = numeric_round_trip(formula, shapes, numeric, seed=3)
    if formula == "x'@x wrt x":
        texts += numeric_round_trip(formula, shapes, numeric, hessian=True)
    for text in texts:
        for internal in ("expand", "elemderiv", "congruence", "step", "keepdims", "I", "𝟙"):
            assert internal not in text, text


def test_an_abstract_functions_derivative_reads_back():
    shapes = {"W": M, "x": V}
    (d,) = gradcli.analyze("sum(h(W@x)) wrt W", shapes=shapes).derivatives()
    back, _ = reparse(d.text("ascii"), shapes)
    assert "h'(" in d.text("ascii") and back.ty == d.shown().ty
    # with h bound to tanh, the re-parsed h' evaluates to tanh's derivative
    values = _values(["W", "x"], 0, {"W": (4, 3), "x": (3,)})
    p = gradcli.analyze("sum(h(W@x)) wrt W", shapes={"W": (4, 3), "x": (3,)})
    own = compile_graph([p.derivatives()[0].expr], {"h": "tanh"}).run(values)[0]
    again = gradcli.analyze(p.derivatives()[0].text("ascii"), shapes={"W": (4, 3), "x": (3,)}).expr
    assert np.allclose(compile_graph([again], {"h": "tanh"}).run(values)[0], own)


def _json_of(args):
    import contextlib
    import io
    import json

    from gradcli.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    assert code == 0, out.getvalue()
    return json.loads(out.getvalue())


def test_the_json_formula_reads_back_with_its_bindings(tmp_path):
    # shared subexpressions are named in `bindings`; formula and bindings re-parse and evaluate
    # to the derivative's value computed by gradcli from the same data
    rng = np.random.default_rng(1)
    data = {"W": rng.normal(size=(4, 3)), "x": rng.normal(size=3), "b": rng.normal(size=4)}
    np.savez(tmp_path / "d.npz", **data)
    doc = _json_of(["grad", "sum(tanh(tanh(tanh(tanh(tanh(W@x + b)))))) wrt W, x, b",
                    "-d", str(tmp_path / "d.npz"), "--json"])
    assert doc["bindings"]
    shapes = {n: tuple(s["shape"]) for n, s in doc["symbols"].items()}
    bindings = [(b["name"], b["formula"]) for b in doc["bindings"]]
    for d in doc["derivatives"]:
        _, value = value_of_reparsed(d["formula"], shapes, data, bindings)
        assert np.allclose(value, d["value"], rtol=1e-10, atol=1e-12)


def test_json_of_a_deep_chain_is_linear_in_its_depth():
    import json

    from gradcli.document import document as _document

    def size(depth):
        text = "x"
        for _ in range(depth):
            text = f"tanh({text})"
        p = gradcli.analyze(f"sum({text}) wrt x", shapes={"x": (3,)})
        doc = _document(p, p.derivatives(), None, {}, {})
        bindings = [(b["name"], b["formula"]) for b in doc["bindings"]]
        values = _values(["x"], 0, {"x": (3,)})
        assert_round_trip(p.derivatives()[0].shown(), doc["derivatives"][0]["formula"], {"x": (3,)},
                          values, bindings)
        return len(json.dumps(doc))

    small, large = size(100), size(200)
    assert large < 2.5 * small, (small, large)


def test_binding_names_never_collide_with_the_formulas_symbols():
    from gradcli.document import document as _document

    p = gradcli.analyze("sum(tanh(tanh(tanh(tanh(tanh(W@z1 + z2)))))) wrt W, z1, z2",
                        shapes={"W": (4, 3), "z1": (3,), "z2": (4,)})
    doc = _document(p, p.derivatives(), None, {}, {})
    names = [b["name"] for b in doc["bindings"]]
    assert names and not set(names) & set(doc["symbols"])
    values = _values(["W", "z1", "z2"], 0, {"W": (4, 3), "z1": (3,), "z2": (4,)})
    shapes = {"W": (4, 3), "z1": (3,), "z2": (4,)}
    bindings = [(b["name"], b["formula"]) for b in doc["bindings"]]
    for d, entry in zip(p.derivatives(), doc["derivatives"]):
        assert_round_trip(d.shown(), entry["formula"], shapes, values, bindings)
