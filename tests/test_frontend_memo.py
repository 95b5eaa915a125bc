"""The per-formula front end remembers what does not depend on a formula's numbers: ranks are
decided once per skeleton (issue 14: a check file of 100,000 formulas), and never reused where
a declaration or a different operator changes the answer."""

import gradcli.language.ranks as ranks
from gradcli import analyze


def shapes(text):
    return {name: s.shape for name, s in analyze(text).symbols.items()}


def _counting(monkeypatch):
    """Count the rank decisions made (by whichever search: over classes or over nodes)."""
    built = []
    real = ranks._decide

    def counted(*args, **kw):
        built.append(args[0])
        return real(*args, **kw)

    monkeypatch.setattr(ranks, "_decide", counted)
    monkeypatch.setattr(ranks, "_DECIDED", {})
    return built


def test_formulas_that_differ_only_in_numbers_decide_ranks_once(monkeypatch):
    built = _counting(monkeypatch)
    first = shapes("x'@A@x + 3*c + b wrt x")
    assert shapes("x'@A@x + 17.5*c + b wrt x") == first
    assert len(built) == 1


def _skeleton(text, declared=None):
    from gradcli.language.parse import parse
    return ranks.skeleton(ranks._postorder(parse(text).expr), declared or {})


def test_a_declaration_an_operator_or_a_name_is_another_skeleton():
    base = _skeleton("x'@A@x + 3*c")
    assert _skeleton("x'@A@x + 4.5*c") == base  # numbers and columns do not matter
    assert _skeleton("x'@A@x  +  3*c") == base
    assert _skeleton("x'@A@x + 3*c", {"A": 1}) != base
    assert _skeleton("x'@A@x + 3*c", {"A": 1}) != _skeleton("x'@A@x + 3*c", {"A": 2})
    assert _skeleton("x'@A@x - 3*c") != base
    assert _skeleton("x'@A@x + 3*d") != base
    assert _skeleton("x'@A@x + 3@c") != base
    assert _skeleton("sum(A, 0)") != _skeleton("sum(A, 1)")  # a setting is part of the operator
    assert _skeleton("f(x)") != _skeleton("g(x)")


def test_the_memo_gives_what_a_fresh_decision_gives(monkeypatch):
    texts = ["a'@X@b + 2 wrt X", "sum(tanh(W@x + b)) * 3 wrt W", "norm(A@x - b)^2 + 4 wrt x",
             "c*x + y wrt x", "trace(X'@X) * 5 wrt X", "u@v' + M wrt M"]
    fresh = []
    for t in texts:
        monkeypatch.setattr(ranks, "_DECIDED", {})
        fresh.append(shapes(t))
    monkeypatch.setattr(ranks, "_DECIDED", {})
    for _ in range(2):  # the second round comes from the memo
        assert [shapes(t) for t in texts] == fresh
