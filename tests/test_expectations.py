"""`gradcli check` expectations match shapes up to one consistent renaming of symbolic dimensions
across the whole line (SPEC §2): f's shape and every `NAME: SHAPE`."""

import pytest

from gradcli.checks.checkfiles import Entry, check_entry


def outcome(line):
    formula, _, expect = line.partition("=>")
    return check_entry(Entry("t.txt", 1, 1, formula.strip(), expect.strip(), len(formula) + 3))


@pytest.mark.parametrize("line", [
    "||y - X@theta||^2 wrt theta => (), theta: (p,)",          # gradcli says (n,)
    "||y - X@theta||^2 wrt theta => (), theta: (n,)",
    "X@W wrt W where X: (B, i), W: (i, o) => (b, c), W: (b, c, d, c)",
    "X@W wrt W where X: (B, i), W: (i, o) => (B, o), W: (B, o, i, o)",
    "A@x wrt x, A where A: (3, N) => (3,), x: (3, k), A: (3, 3, k)",
    "0.5*sum((y - h(X@Theta))^2) wrt Theta => (), Theta: (d, k)",
])
def test_consistent_renamings_pass(line):
    o = outcome(line)
    assert o.ok, o.message


@pytest.mark.parametrize("line, words", [
    ("X@W wrt W where X: (B, i), W: (i, o) => (b, c), W: (b, c, b, c)", "b already stands for B"),
    ("X@W wrt W where X: (B, i), W: (i, o) => (b, c), W: (b, d, e, c)", "d and c both stand for o"),
    ("X@W wrt W where X: (B, i), W: (i, o) => (b, b)", "expected (b, b)"),     # two dims, one name
    ("A@x wrt x where A: (3, N) => (n,)", "expected (n,)"),                   # a number is not a name
    ("||y - X@theta||^2 wrt theta => (), theta: (p, q)", "expected (p, q)"),  # the rank still counts
])
def test_inconsistent_renamings_fail_and_say_why(line, words):
    o = outcome(line)
    assert not o.ok and words in o.message, o.message
