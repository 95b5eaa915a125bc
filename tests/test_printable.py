"""Text from outside gradcli (file names, file lines, archive members, formulas) reaches the
terminal with every control and bidi-formatting character made visible."""

import os
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from gradcli.errors import GradcliError, printable

EXAMPLES = settings(max_examples=int(os.environ.get("GRADCLI_EXAMPLES", "300")), deadline=None)


def _acts_on_terminal(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return (cat in ("Cc", "Zl", "Zp", "Cs") and ch != "\t") or unicodedata.bidirectional(ch) in (
        "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI", "LRM", "RLM", "ALM")


@EXAMPLES
@given(st.text())
def test_nothing_a_terminal_acts_on_survives(text):
    shown = printable(text)
    assert not any(_acts_on_terminal(ch) for ch in shown)
    assert "\n" not in shown and "\r" not in shown


@EXAMPLES
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp"))))
def test_ordinary_text_is_unchanged(text):
    assert printable(text) == text


def test_escapes_are_visible_and_distinct():
    assert printable("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable("x\u202ey") == "x\\u202ey"
    assert printable("\x9b2J") == "\\x9b2J"
    assert printable("a\tb") == "a\tb"
    assert printable("a\nb", keep_lines=True) == "a\nb"
    assert printable("bad\udcff") == "bad\\udcff"


def test_caret_view_escapes_the_formula_and_counts_escaped_columns():
    err = GradcliError("parse", "unexpected character", 5, "x\x1b+ y $")
    formula, caret, message = err.caret_view().splitlines()
    assert "\x1b" not in formula and formula == "  x\\x1b+ y $"
    # the caret stands under the 5th character as shown: 'x', the 4-column escape, '+', ' '
    assert caret.index("^") == formula.index("y")
