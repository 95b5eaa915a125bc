"""The grammar: precedence as in numpy/Python, and errors that point at the right column."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcli import GradcliError, analyze, parse
from gradcli.syntax import Binary, Call, Norm, Num, Transpose, Unary


def test_precedence_matches_python():
    e = parse("a + b*c").expr
    assert isinstance(e, Binary) and e.op == "+" and e.right.op == "*"
    e = parse("-x^2").expr  # unary minus binds looser than power
    assert isinstance(e, Unary) and isinstance(e.operand, Binary) and e.operand.op == "^"
    e = parse("a^b^c").expr  # power is right-associative
    assert e.op == "^" and e.right.op == "^"
    e = parse("A@B*c/d").expr  # * / @ share a level and associate left
    assert e.op == "/" and e.left.op == "*" and e.left.left.op == "@"
    e = parse("2^-1").expr
    assert e.op == "^" and isinstance(e.right, Unary)


def test_postfix_and_atoms():
    e = parse("x'@A.T@x").expr
    assert isinstance(e.left.left, Transpose) and isinstance(e.left.right, Transpose)
    n = parse("||a||_1").expr
    assert isinstance(n, Norm) and n.kind == "1"
    assert parse("||A||_F").expr.kind == "F"
    sq = parse("||a||^2").expr
    assert sq.op == "^" and isinstance(sq.left, Norm)
    c = parse("h'(z)").expr
    assert isinstance(c, Call) and c.name == "h" and c.deriv == 1
    assert parse("1e-3").expr.value == 1e-3 and parse(".5").expr.value == 0.5
    assert isinstance(parse("sum(A, 0)").expr.args[1], Num)


def test_clauses():
    f = parse("0.5*sum((y - h(X@Theta))^2) wrt Theta where X: (M, in), Theta: (in, out), y: (M, out)")
    assert [w for w, _ in f.wrt] == ["Theta"]
    assert [(d.name, d.shape) for d in f.where] == [("X", ("M", "in")), ("Theta", ("in", "out")),
                                                    ("y", ("M", "out"))]
    f = parse("tanh(W@x + b) wrt W, b where b: scalar, x: 3")
    assert [w for w, _ in f.wrt] == ["W", "b"] and f.where[0].shape == () and f.where[1].shape == (3,)


@pytest.mark.parametrize("text, column, words", [
    ("", 1, "empty"),
    ("   ", 1, "empty"),
    ("x + ", 4, "ends too early"),
    ("(x + y", 1, "never closed"),
    ("x + y)", 6, "no matching"),
    ("||x - y", 1, "norm bars"),
    ("x $ y", 3, "unexpected character"),
    ("x y", 3, "missing operator"),
    ("x + * y", 5, "expected a name"),
    ("wrt x", 1, "missing"),
])
def test_parse_errors_have_columns(text, column, words):
    with pytest.raises(GradcliError) as info:
        parse(text)
    err = info.value
    assert err.kind == "parse" and err.column == column and words in err.message
    view = err.caret_view().splitlines()
    assert view[1].index("^") == column - 1 + 2  # caret under the column (after 2-space indent)


def test_unknown_function_with_two_arguments():
    with pytest.raises(GradcliError) as info:
        analyze("f(x, y) + 1")
    assert info.value.kind == "shape" and "unknown function 'f' with 2 arguments" in info.value.message
    assert info.value.column == 1


def test_wrt_symbol_not_in_formula():
    with pytest.raises(GradcliError) as info:
        analyze("x'@x wrt z")
    assert "'z' does not appear" in info.value.message and info.value.column == 10


def test_deep_nesting_parses_without_recursion_error():
    depth = 3000
    p = analyze("sum(" + "(" * depth + "x" + ")" * depth + ") wrt x")
    assert p.derivatives()[0].text() == "𝟙"


def test_long_sum():
    text = " + ".join(f"x{i}'@x{i}" for i in range(400))
    p = analyze(text + " wrt x7")
    assert p.derivatives()[0].text() == "2x₇"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="xyAB()@+-*/^'|_.,:0123456789 wrtheflogsumdt", max_size=40))
def test_arbitrary_text_gives_a_result_or_a_clean_error(text):
    try:
        p = analyze(text)
        if p.expr.ty.is_scalar and p.wrt:
            p.derivatives()
    except GradcliError as err:
        assert err.kind in ("parse", "shape") and err.message


def test_unicode_operators_and_greek_names():
    p = analyze("‖y − X@θ‖² + λ·sum(A ⊙ B ⊘ C) wrt θ")
    assert p.symbols["λ"].shape == () and p.symbols["θ"].shape == ("n",)
    assert p.derivatives()[0].text() == "−2Xᵀ(y − Xθ)"
    assert analyze("x³").text() == "x³"


# ----------------------------------------------------------------------------- the runtime is Lark's
# gradcli parses with its own LALR runtime over the tables Lark builds (gradcli/lalr.py), so that a
# one-liner need not import Lark.  Here Lark itself parses the same text with the same builder:
# every formula must give the same tree, or the same error at the same column.
from test_fuzz import TOKENS  # noqa: E402

UNICODE_TOKENS = ["−", "⊙", "·", "⊘", "‖", "ᵀ", "²", "³", "θ", "Θ", "λ", "’", "\t", "\n", "#", "$", "_", "!"]


def _outcome(parse_fn, text):
    from lark.exceptions import UnexpectedCharacters as LarkChars, UnexpectedToken as LarkToken

    from gradcli.lalr import UnexpectedCharacters, UnexpectedToken

    try:
        return ("tree", repr(parse_fn(text)))
    except GradcliError as err:
        return ("builder", err.message, err.column)
    except (UnexpectedCharacters, LarkChars) as exc:
        return ("characters", exc.line, exc.column)
    except (UnexpectedToken, LarkToken) as exc:
        return ("token", exc.token.type, str(exc.token), exc.token.column, frozenset(exc.expected))


def _lark_parse():
    from lark import Lark, Transformer, v_args

    from gradcli.parse import _BUILDER, grammar_path

    names = [n for n in dir(_BUILDER) if not n.startswith("_")]
    methods = {n: (lambda self, *a, _n=n: getattr(_BUILDER, _n)(*a)) for n in names}
    reference = v_args(inline=True)(type("Reference", (Transformer,), methods))
    lark = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="basic",
                transformer=reference())
    return lark.parse


_LARK = []


@settings(max_examples=int(os.environ.get("GRADCLI_FUZZ", "500")), deadline=None)
@given(st.one_of(st.lists(st.sampled_from(TOKENS + UNICODE_TOKENS), max_size=30).map("".join),
                 st.text(max_size=40)))
def test_gradcli_parses_exactly_as_lark_does(text):
    from gradcli.parse import _BUILDER, _parser

    if not _LARK:
        _LARK.append(_lark_parse())
    ours = _outcome(lambda t: _parser().parse(t, _BUILDER), text)
    assert ours == _outcome(_LARK[0], text), text


def test_tables_are_rebuilt_when_the_cache_is_stale_or_damaged(tmp_path, monkeypatch):
    import importlib
    import json

    P = importlib.import_module("gradcli.parse")  # the module (gradcli.parse is also a function)

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    grammar = P.grammar_path().read_text(encoding="utf-8")
    cache = tmp_path / "gradcli" / "grammar-tables.json"
    assert P._tables(grammar)["grammar"] == grammar and cache.exists()
    cache.write_text("{not json")
    assert P._tables(grammar)["states"]  # damaged: rebuilt
    doc = json.loads(cache.read_text())
    doc["grammar"] = "start: NAME"  # another grammar's tables are never used
    cache.write_text(json.dumps(doc))
    assert P._tables(grammar)["grammar"] == grammar
    doc["grammar"], doc["states"] = grammar, {"0": "garbage"}  # valid JSON, damaged tables
    cache.write_text(json.dumps(doc))
    P._parser.cache_clear()
    try:
        assert P.parse("x'@A@x wrt x").wrt == (("x", 12),)
    finally:
        P._parser.cache_clear()
    assert json.loads(cache.read_text())["states"] != {"0": "garbage"}  # and the file repaired
    (tmp_path / "gradcli").chmod(0o777)  # a folder others can write is not trusted
    assert P._cache_file() is None
