"""Linear cost in formula size, by structure rather than by the clock (issue 14): the work a long
formula or a long check file causes is counted, not timed, so these tests mean the same on a
busy machine.  Correctness of the faster paths: the rank search over classes decides exactly
as the search over nodes does."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcli.language import infer, ranks
from gradcli.api import analyze
from gradcli.errors import GradcliError
from gradcli.language.expr import OPS
from gradcli.language.parse import parse

EXAMPLES = int(os.environ.get("GRADCLI_EXAMPLES", "200"))


def _counting(monkeypatch, owner, name: str, calls: list | None = None) -> list:
    """Count the calls of owner.name (a function or method) while the test runs (in `calls`)."""
    calls = [] if calls is None else calls
    original = getattr(owner, name)

    def counted(*args, **kw):
        calls.append(1)
        return original(*args, **kw)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_a_long_sum_decides_its_ranks_with_a_handful_of_revisions(monkeypatch):
    """The + of a sum whose terms must have one kind are one class, and its terms `k*x` one
    constraint: deciding 20,000 terms revises a few constraints, not one per node."""
    revisions: list = []
    for solver in (ranks.Uses, getattr(ranks, "Classes", None)):
        if solver is not None:
            _counting(monkeypatch, solver, "revise", revisions)
    n = 20_000
    text = " + ".join(f"{i % 7 + 1}*q" if i % 2 else f"q{i}" for i in range(n))
    p = analyze(text + " wrt q")
    assert p.symbols["q"].shape == p.symbols["q0"].shape == p.shape and len(p.shape) == 1
    assert len(revisions) < 50


def test_repeated_terms_are_shape_checked_once(monkeypatch):
    """Shape inference builds each distinct term once: the 10,000 `2*x` of a sum run the
    product's shape rule once (where they were checked 10,000 times)."""
    op = OPS["mul"]
    rule = op.shape
    calls: list = []

    def counted(ctx, tys, params):
        if ctx.__class__.__name__ == "_Ctx":  # inference, not the checks of built nodes
            calls.append(1)
        return rule(ctx, tys, params)

    monkeypatch.setattr(op, "shape", counted)
    p = analyze(" + ".join(["2*x"] * 10_000) + " + y wrt x")
    assert p.shape == p.symbols["x"].shape
    assert len(calls) <= 2


def test_check_files_never_build_the_simplified_graph(monkeypatch, tmp_path):
    """`gradcli check` needs shapes only: no formula's simplified graph is built (it was 40% of
    a check's time), and the shapes it reports are the graph's."""
    from gradcli.checks.checkfiles import check_paths

    built = _counting(monkeypatch, infer, "resolve_graph")
    lines = ["x'@A@x wrt x => (), x: (n,)", "||y - X@theta||^2 wrt theta => (), theta: (n,)",
             "A@x where A: (m, n), x: (k) => error: shape", "tanh(W@x + b) wrt b => (m,), b: (m, m)",
             "x'@x => ()", "u'@v => error"]
    path = tmp_path / "f.gradcli"
    path.write_text("\n".join(lines * 10) + "\n")
    outcomes = list(check_paths([str(path)]))
    assert [o.ok for o in outcomes] == [True, True, True, True, True, False] * 10
    assert built == []
    for o in outcomes:  # the shapes said without the graph are the graph's
        if o.details:
            p = analyze(o.entry.text)
            assert tuple(o.details["shape"]) == tuple(p.expr.ty.full_dims)
            assert {k: tuple(v) for k, v in o.details["derivatives"].items()} == \
                {d.wrt: tuple(d.shape) for d in p.derivative_shapes()}


def test_check_files_resolve_no_symbol_table_and_no_notes(monkeypatch, tmp_path):
    """A check of formulas without wrt reports f's shape only: the symbol table (every symbol's
    resolved shape) and the broadcast notes are made when first asked for, so a check file
    makes neither; asked for, they are what they always were."""
    from gradcli.checks.checkfiles import check_paths

    notes = _counting(monkeypatch, infer, "_broadcast_notes")
    symbols = _counting(monkeypatch, infer, "Symbol")
    path = tmp_path / "f.gradcli"
    path.write_text("x'@A@x + b => ()\nsum(X*y) => ()\n")
    assert [o.ok for o in check_paths([str(path)])] == [True, True]
    assert notes == [] and symbols == []
    p = analyze("sum(X*y) wrt X")  # y, a vector, spread over X's rows: a note says so
    assert {n: s.shape for n, s in p.symbols.items()} == {"X": ("m", "n"), "y": ("n",)}
    assert [n.symbol for n in p.notes] == ["y"] and len(notes) == 1


def test_a_long_formula_is_walked_once_and_keyed_by_no_skeleton(monkeypatch):
    """Rank decision and shape inference share one post-order of a formula with no call, and a
    formula too long to be one of many alike is decided without its skeleton (a pass over all
    its nodes for a memo it never hits); short ones are still remembered by skeleton."""
    from gradcli.language import syntax

    walks: list[int] = []  # the size of every walk (a stand-in operator's have 5 nodes at most)

    def walk(root, children):
        order = postorder(root, children)
        walks.append(len(order))
        return order

    def formula_walks() -> int:
        return sum(1 for size in walks if size > 7)

    postorder = syntax.postorder
    monkeypatch.setattr(ranks, "postorder", walk)
    monkeypatch.setattr(infer, "postorder", walk)
    skeletons = _counting(monkeypatch, ranks, "skeleton")
    text = " + ".join(f"{i % 7 + 1}*x" if i % 2 else f"x{i}" for i in range(20_000))
    p = analyze(text + " wrt x")
    assert p.shape == p.symbols["x"].shape and len(p.shape) == 1
    assert formula_walks() == 1 and skeletons == []
    walks.clear()
    analyze("x'@A@x + 3*c")
    assert formula_walks() == 1 and len(skeletons) == 1
    walks.clear()
    analyze("sum(A + B + C, 0)@x + y")  # a call: the two walks count operands differently, each walks
    assert formula_walks() == 2


def _renamed(text: str) -> str:
    from test_uses import _renamed as renamed

    return renamed(text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from("svm").flatmap(lambda k: __import__("test_derivatives").formulas(k, 3)),
       st.booleans(), st.sampled_from([{}, {"x": 1}, {"A": 2}, {"a": 0}, {"x": 1, "y": 1}]))
def test_the_search_over_classes_decides_as_the_search_over_nodes(text, rename, declared):
    """Every formula (the derivative tests' random ones, also with names whose defaults are all
    wrong, with and without declared ranks): the ranks decided over classes of nodes are those
    the search over single nodes decides."""
    text = _renamed(text) if rename else text
    try:
        formula = parse(text)
    except GradcliError:
        return
    functions = frozenset()

    def kind_rule(node, stand_ins):
        return infer._kind_rule(node, stand_ins, functions)

    order = ranks._postorder(formula.expr)
    uses = ranks.Uses(formula.expr, declared, infer.default_rank, kind_rule, functions, order)
    try:
        expected = uses.decide() if uses.names else {}
    except ranks.Unsatisfiable:
        expected = {}
    assert ranks._decide(formula.expr, declared, infer.default_rank, kind_rule, functions, order) == expected
