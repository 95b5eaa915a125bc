"""Long sums (issue 14): the paths that make each term of a long sum cheap give what the general
ones give.  A long sum is compared with the same sum built smaller (grouped in parentheses, so
no prefix is long), its values and its derivatives with numpy closed forms, its printed formula
by parsing the ASCII back and evaluating it, its notes and errors with what each term says."""

from __future__ import annotations

import numpy as np
import pytest

from gradcli.api import analyze
from gradcli.errors import GradcliError
from gradcli.language.render import render

N = 3000  # terms: far past the few a sum is flattened over (simplify.MAX_FLAT_TERMS)


def _terms(n: int) -> list[str]:
    """x0, 2*x, x2, 4*x, …: distinct symbols and multiples of x, as bench/run.py's long sum."""
    return [f"{i % 7 + 1}*x" if i % 2 else f"x{i}" for i in range(n)]


def _joined(terms: list[str], signs: list[str]) -> str:
    return terms[0] + "".join(f" {s} {t}" for s, t in zip(signs, terms[1:]))


def _coefficient(terms: list[str], signs: list[str]) -> float:
    """The coefficient of x in the sum (numpy-free arithmetic on the terms themselves)."""
    total = 0.0
    for s, t in zip(["+", *signs], terms):
        if t.endswith("*x"):
            total += (1 if s == "+" else -1) * float(t.split("*")[0])
    return total


def _values(names: list[str], size: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(size) for name in names}


@pytest.mark.parametrize("minus_every", [0, 3])
def test_a_long_sum_has_the_values_and_gradient_of_the_same_sum_grouped_small(minus_every):
    terms = _terms(N)
    signs = ["-" if minus_every and i % minus_every == 0 else "+" for i in range(1, N)]
    long_text = _joined(terms, signs)
    # the same formula in groups of five: (t0 + … + t4) + (t5 − …) …, no sum longer than five
    groups = [_joined(terms[i:i + 5], signs[i:i + 4]) for i in range(0, N, 5)]
    small_text = "(" + groups[0] + ")" + "".join(
        f" {signs[i - 1]} ({_joined(terms[i:i + 5], signs[i:i + 4]) if signs[i - 1] == '+' else _negated(terms[i:i + 5], signs[i:i + 4])})"
        for i in range(5, N, 5))
    values = _values([f"x{i}" for i in range(0, N, 2)] + ["x"], 3, seed=minus_every)
    c = _coefficient(terms, signs)
    f_numpy = c * values["x"] + sum((1 if s == "+" else -1) * values[t]
                                   for s, t in zip(["+", *signs], terms) if not t.endswith("*x"))
    for text in (long_text, small_text):
        p = analyze(text + " wrt x", shapes={"x": (3,)})
        f, d = p.compile()(**values)
        np.testing.assert_allclose(f, f_numpy, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(d["x"], c * np.eye(3), rtol=1e-12)
    # like terms still collect into one coefficient on x in the gradient (printed c·I), and
    # the printed gradient, parsed back at m = 3, is c·I
    p = analyze(long_text + " wrt x")
    g = p.derivatives()[0].expr
    assert g is not None and g.size <= 4, render(g, "ascii")
    printed = render(g, "ascii")
    assert printed.endswith("eye(m)"), printed
    back, _ = analyze(printed.replace("eye(m)", "eye(3)")).compile()()
    np.testing.assert_allclose(back, c * np.eye(3), rtol=1e-12)


def _negated(terms: list[str], signs: list[str]) -> str:
    """The group t0 ± t1 … written after a minus: each sign after the first flipped, so that
    a − (t0 ∓ t1 …) is a − t0 ± t1 …"""
    flipped = ["-" if s == "+" else "+" for s in signs]
    return _joined(terms, flipped)


def test_the_printed_long_sum_parses_back_to_the_same_values():
    """f as printed (ASCII, like terms of its first few terms collected) evaluates as f."""
    text = _joined(_terms(N), ["+"] * (N - 1))
    p = analyze(text)
    printed = render(p.expr, "ascii")
    assert len(printed) < len(text)  # the first terms' multiples of x were collected
    values = _values([f"x{i}" for i in range(0, N, 2)] + ["x"], 4, seed=1)
    f, _ = p.compile()(**values)
    again, _ = analyze(printed).compile()(**values)
    np.testing.assert_allclose(again, f, rtol=1e-12)
    np.testing.assert_allclose(f, _direct(values), rtol=1e-9)


def _direct(values: dict[str, np.ndarray]) -> np.ndarray:
    """f of `_terms(N)` summed term by term in numpy."""
    out = np.zeros_like(values["x"])
    for t in _terms(N):
        out = out + (float(t.split("*")[0]) * values["x"] if t.endswith("*x") else values[t])
    return out


def test_each_term_a_long_sum_stretches_is_noted_at_its_own_operator():
    """x0*B + x1*B + … with B declared (3, 4): each product stretches its vector over B's rows
    and is noted at its own *, while the 199 + between terms of one shape, which stretch
    nothing, are noted nowhere; in B + x0 + x1 + …, x0 alone is stretched (use makes the other
    terms matrices, SPEC's same-shape rule of +)."""
    n = 200
    text = " + ".join(f"x{i}*B" for i in range(n)) + " where B: (3, 4)"
    p = analyze(text)
    notes = [note for note in p.notes if note.kind == "broadcast"]
    assert [note.symbol for note in notes] == [f"x{i}" for i in range(n)]
    for note in notes:
        star = text.index(f"{note.symbol}*B") + len(note.symbol) + 1  # 1-based column of its *
        assert note.column == star and f"by * (column {star})" in note.message
    text = "B + " + " + ".join(f"x{i}" for i in range(n)) + " where B: (3, 4)"
    p = analyze(text)
    assert [(note.symbol, note.column) for note in p.notes if note.kind == "broadcast"] == [("x0", 3)]
    assert p.symbols["x0"].shape == (4,) and {p.symbols[f"x{i}"].shape for i in range(1, n)} == {(3, 4)}


def test_a_long_sum_of_one_shape_has_no_note():
    p = analyze(" + ".join(f"x{i}" for i in range(N)))
    assert [note for note in p.notes if note.kind == "broadcast"] == []


@pytest.mark.parametrize("text,message,column", [
    # the term that cannot be added, deep in a long sum: its own + and both shapes
    (" + ".join(f"x{i}" for i in range(500)) + " + y + x500 where y: (3), x0: (4)",
     "+: cannot broadcast (4,) with (3,): dimensions 4 and 3 differ", None),
    # SPEC's same-shape rule of + runs before the error: C's unknown columns are already the
    # 1 that G's are (the message says (4, 1), as it always did, not (4, m))
    ("sum(M@G@H) + sum(C - F) + sum(G + C) where M: (3, 3), H: (1, 5), F: (4, 1)",
     "+: cannot broadcast (3, 1) with (4, 1): dimensions 3 and 4 differ", 33),
])
def test_a_shape_error_in_a_sum_names_its_operator_and_shapes(text, message, column):
    with pytest.raises(GradcliError) as err:
        analyze(text)
    assert err.value.message == message
    expected = column if column is not None else text.index(" + y") + 2
    assert err.value.column == expected
