"""Names of unknown dimensions: the letters m, n, k, … in order of first appearance, then n1,
n2, … once the letters run out, never a name a declaration already uses.  The expected names
are worked out here from that rule, not read from gradcli."""

import pytest

from gradcli import analyze

LETTERS = ["m", "n", "k", "p", "q", "r", "s", "t", "u", "v", "w", "l", "j"]  # SPEC's order


def chain(k: int) -> str:
    inner = "x"
    for i in range(1, k + 1):
        inner = f"tanh(W{i}@{inner})"
    return f"sum({inner}) wrt W1"


def expected_names(count: int, taken: set[str]) -> list[str]:
    names = [x for x in LETTERS if x not in taken]
    i = 1
    while len(names) < count:
        if f"n{i}" not in taken:
            names.append(f"n{i}")
        i += 1
    return names[:count]


@pytest.mark.parametrize("layers", [12, 13, 20, 64])
def test_a_chain_names_its_dimensions_letters_first_then_numbered(layers):
    # the text reads W_k first, x last: W_i is (d[k-i], d[k-i+1]) and x is (d[k],)
    p = analyze(chain(layers))
    names = expected_names(layers + 1, set())
    assert p.symbols["x"].shape == (names[layers],)
    for i in range(1, layers + 1):
        assert p.symbols[f"W{i}"].shape == (names[layers - i], names[layers - i + 1])
    assert len(set(names)) == layers + 1


def test_numbered_names_skip_those_a_declaration_uses():
    text = chain(20)[: -len(" wrt W1")] + " wrt W1 where W20: (n2, n4)"
    p = analyze(text)
    # W20 is declared (rigid n2, n4) and is read first: the 19 dimensions below it are named
    # around those two, x's last
    names = expected_names(19, {"n2", "n4"})
    assert p.symbols["W20"].shape == ("n2", "n4")
    assert p.symbols["W19"].shape == ("n4", names[0])
    for i in range(1, 19):
        assert p.symbols[f"W{i}"].shape == (names[18 - i], names[19 - i])
    assert p.symbols["x"].shape == (names[18],)
    assert "n2" not in names and "n4" not in names and "n1" in names and "n3" in names and "n5" in names
