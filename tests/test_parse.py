"""The grammar: precedence as in numpy/Python, and errors that point at the right column."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcli import GradcliError, analyze, parse
from gradcli.language.syntax import Binary, Call, Norm, Num, Transpose, Unary


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
# gradcli parses with its own LALR runtime over the tables Lark builds (gradcli/language/lalr.py), so that a
# one-liner need not import Lark.  Here Lark itself parses the same text with the same builder:
# every formula must give the same tree, or the same error at the same column.
from test_fuzz import TOKENS  # noqa: E402

UNICODE_TOKENS = ["−", "⊙", "·", "⊘", "‖", "ᵀ", "²", "³", "θ", "Θ", "λ", "’", "\t", "\n", "#", "$", "_", "!"]


def _outcome(parse_fn, text):
    from lark.exceptions import UnexpectedCharacters as LarkChars, UnexpectedToken as LarkToken

    from gradcli.language.lalr import UnexpectedCharacters, UnexpectedToken

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

    from gradcli.language.parse import _BUILDER, grammar_path

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
    from gradcli.language.parse import _BUILDER, _parser

    if not _LARK:
        _LARK.append(_lark_parse())
    ours = _outcome(lambda t: _parser().parse(t, _BUILDER), text)
    assert ours == _outcome(_LARK[0], text), text


# ----------------------------------------------------------------------------- the shipped tables
def _shipped_text():
    from gradcli.language.lalr import TABLES_FILE

    with open(TABLES_FILE, encoding="ascii") as fh:
        return fh.read()


def test_shipped_tables_are_what_lark_builds_from_the_grammar():
    from gradcli.language.lalr import REGENERATE
    from gradcli.language.parse import grammar_path
    from gradcli.tablegen import tables_file_text

    fresh = tables_file_text(grammar_path().read_text(encoding="utf-8"))
    assert fresh == _shipped_text(), (
        f"gradcli/language/grammar_tables.jsonl is not what Lark builds from grammar/gradcli.lark: run `{REGENERATE}`")


def test_table_generation_does_not_depend_on_string_hashing():
    """Lark numbers its states in hash order; the generator renumbers them, so the shipped file is
    reproducible (the test above could not hold otherwise)."""
    import subprocess
    import sys

    code = ("from gradcli.tablegen import tables_file_text; from gradcli.language.parse import grammar_path; "
            "import sys; sys.stdout.write(tables_file_text(grammar_path().read_text(encoding='utf-8')))")
    texts = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2, 3)}
    assert len(texts) == 1


def _swap_operands_of_minus(tables: dict) -> dict:
    """Valid tables that parse wrongly: `a - b` builds binary(b, -, a)."""
    for rule in tables["rules"]:
        if rule["origin"] == "sum" and rule["callback"] == "binary":
            rule["keep"] = rule["keep"][::-1]
    return tables


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "valid json, wrong rule", "old format",
                                    "empty", "folder", "endless"])
def test_damaged_shipped_tables_are_refused_not_run(damage, tmp_path):
    import json

    from gradcli.language.lalr import FORMAT, TablesError, load_tables

    head, body, _ = _shipped_text().split("\n")
    path = tmp_path / "grammar_tables.jsonl"
    if damage == "truncated":
        path.write_text(head + "\n" + body[: len(body) // 2])
    elif damage == "flipped byte":
        k = body.index('"size":3')
        path.write_text(head + "\n" + body[:k] + '"size":2' + body[k + 8:] + "\n")
    elif damage == "valid json, wrong rule":  # same header, so the checksum no longer matches
        path.write_text(head + "\n" + json.dumps(_swap_operands_of_minus(json.loads(body))) + "\n")
    elif damage == "old format":
        path.write_text(json.dumps({**json.loads(head), "format": FORMAT - 1}) + "\n" + body + "\n")
    elif damage == "empty":
        path.write_text("")
    elif damage == "endless":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    with pytest.raises(TablesError) as info:
        load_tables(str(path))
    assert "damaged" in str(info.value) and "python -m gradcli.tablegen" in str(info.value)
    assert json.loads(body) == load_tables()  # the real file still loads


def test_damaged_installation_is_one_internal_error_from_the_cli(tmp_path):
    """A copy of the package whose tables lost a byte: exit 1, one message, no traceback."""
    import shutil
    import subprocess
    import sys

    import gradcli

    pkg = tmp_path / "gradcli"
    shutil.copytree(os.path.dirname(gradcli.__file__), pkg, ignore=shutil.ignore_patterns("__pycache__"))
    tables = pkg / "language" / "grammar_tables.jsonl"
    tables.write_bytes(tables.read_bytes()[:-50] + b"\n")
    res = subprocess.run([sys.executable, "-m", "gradcli", "shape", "a - b*c"], capture_output=True,
                         text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert "internal error" in res.stderr and "parser tables" in res.stderr and str(tables) in res.stderr


def _poisoned_cache(home, kind):
    """What an earlier gradcli would have read from ~/.cache/gradcli: valid tables for today's
    grammar that parse `a - b*c` as `b*c - a`, a FIFO (reading blocks forever), or a folder."""
    import json

    from gradcli.language.parse import grammar_path

    folder = home / ".cache" / "gradcli"
    folder.mkdir(parents=True, mode=0o700)
    target = folder / "grammar-tables.json"
    if kind == "wrong tables":
        tables = _swap_operands_of_minus(json.loads(_shipped_text().split("\n")[1]))
        tables.update(format=1, grammar=grammar_path().read_text(encoding="utf-8"),
                      states={str(k): row for k, row in enumerate(tables["states"])})
        target.write_text(json.dumps(tables))
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    return folder


@pytest.mark.parametrize("kind", ["wrong tables", "fifo", "folder"])
def test_no_cache_outside_the_package_is_read_or_written(kind, tmp_path):
    import subprocess
    import sys

    folder = _poisoned_cache(tmp_path, kind)
    before = sorted(p.name for p in folder.iterdir())
    code = "import gradcli; print(repr(gradcli.parse('a - b*c').expr))"
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**env, "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == repr(_lark_parse()("a - b*c")[0])
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written there either
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**env, "XDG_CACHE_HOME": str(tmp_path / ".cache")})
    assert res.stdout.strip() == repr(_lark_parse()("a - b*c")[0])
