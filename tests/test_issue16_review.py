"""Found by an adversarial review of issue 16 (notebook API, LaTeX, shell use, --random): each
test failed before its fix."""

import json

import numpy as np
import pytest

from gradcli.cli import main


def run(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("command", ["grad", "hess"])
@pytest.mark.parametrize("as_json", [False, True])
def test_random_with_a_named_dimension_is_a_data_error_not_internal(capsys, command, as_json):
    """A symbolic problem compiles lazily; --random must still say which shape lacks a size."""
    rc, out, err = run(capsys, command, "x'@A@x wrt x", "--random", "-s", "x=n", *(["--json"] if as_json else []))
    assert rc == 1
    message = json.loads(out)["error"] if as_json else {"kind": "data", "message": err}
    assert message["kind"] == "data" and "internal" not in message["message"]
    assert "--random needs numeric shapes" in message["message"]


# Names the grammar accepts that pdflatex used to stop at: a raw Greek letter (`θ`, `σ1`, `ς`,
# `Α`), and underscores inside `\mathrm{…}` (`x__1`, `x1_`, `A_1_b` gave double subscripts).
ODD_NAMES = ["θ", "σ1", "θ_2", "ς", "Α", "Ο", "υ", "Δx", "thetaθ", "x__1", "x1_", "A_1_b", "x_y", "alpha_beta"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_latex_of_odd_names_is_ascii_and_compiles(tmp_path, name):
    from tests.test_latex import PDFLATEX, compile_latex

    import gradcli
    from gradcli import latexdoc

    text = f"sum(W_in@{name} + {name}*{name}) wrt {name}"
    problem = gradcli.analyze(text)
    lines = latexdoc.body(problem, problem.derivatives(), text)
    math = [line for line in lines if not line.startswith("%")]  # the source comment quotes the formula
    assert all(line.isascii() for line in math), [line for line in math if not line.isascii()]
    if PDFLATEX is None:
        pytest.skip("pdflatex is not installed")
    compile_latex(tmp_path, "\n".join([*latexdoc.preamble(), *lines, r"\end{document}", ""]))


OPTION_NAMES = ["sizes", "shapes", "layout", "fns", "seed"]


@pytest.mark.parametrize("name", OPTION_NAMES)
def test_a_symbol_named_like_an_option(name):
    """An array given as `sizes=`/`seed=`… used to crash numpy's truth test, or (seed) be taken
    as the seed, leaving the symbol without a value; the mapping after the formula binds it."""
    import gradcli
    from gradcli.errors import GradcliError

    v, x = np.array([1.0, -2.0, 3.0]), np.array([0.5, 2.0, -1.0])
    formula = f"sum({name}*{name}*x) wrt {name}"
    with pytest.raises(GradcliError, match=rf"{name}= is an option.*{{'{name}': array}}"):
        gradcli.grad(formula, x=x, **{name: v})
    r = gradcli.grad(formula, {name: v}, x=x)
    np.testing.assert_allclose(r[name].value, 2 * v * x)
    assert float(r.value) == pytest.approx(float(np.sum(v * v * x)))
    assert gradcli.check(formula, {name: v}, x=x).ok


def test_check_options_given_arrays_and_fns_checked():
    import gradcli
    from gradcli.errors import GradcliError

    x = np.ones(3)
    with pytest.raises(GradcliError, match="tol= is an option"):
        gradcli.check("sum(tol*x) wrt x", x=x, tol=x)
    for fns in ({"h": "os.system"}, {"exp": "log"}):  # was a KeyError from the operator table
        with pytest.raises(GradcliError, match="builtin"):
            gradcli.grad("sum(h(x)) wrt x", fns=fns, x=x)
    assert list(gradcli.grad("sum(xy*x) wrt xy", wrt="xy", x=x, xy=x)) == ["xy"]  # not ['x', 'y']


@pytest.mark.parametrize("value, message", [
    (np.ones((2, 2, 2)), "3-d arrays are not supported"),   # was taken as a rank-3 symbol
    (np.array([None, 1.0]), "not numeric"),                  # was NaN, silently
    ("abc", "not numeric"),                                  # was numpy's ValueError
    (np.ones(3) * 1j, "not numeric"),                        # was the real part, with a ComplexWarning
    (np.array([np.nan, 1.0]), "NaN or Inf"),                 # was a NaN gradient; -d refuses it
])
def test_arrays_are_checked_as_data_files_are(value, message):
    import gradcli
    from gradcli.errors import GradcliError

    with pytest.raises(GradcliError, match=message) as caught:
        gradcli.grad("sum(x*x) wrt x", x=value)
    assert caught.value.kind == "data"
    np.testing.assert_allclose(gradcli.grad("sum(x*x) wrt x", x=[1, 2, True])["x"].value, [2.0, 4.0, 2.0])


@pytest.mark.parametrize("separator", ["\x0c", "\x1e", "\x85", "\u2028"])
def test_stdin_lines_end_at_newline_only(capsys, monkeypatch, separator):
    """Line N of `grad -` is line N for wc, sed and editors; str.splitlines also broke lines at
    form feeds and Unicode separators, answering one line twice and shifting later numbers."""
    import io
    import sys

    text = f"x'@x{separator}wrt x\r\n\r\nsum(q wrt q"  # CRLF, a blank line, no final newline
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8"))
    rc, out, _ = run(capsys, "shape", "-", "--json")
    docs = [json.loads(line) for line in out.splitlines()]
    assert rc == 1 and len(docs) == 2
    assert docs[1]["error"]["message"].startswith("standard input line 3:")


def test_json_lines_error_line_is_the_line_of_standard_input(capsys, monkeypatch):
    """The message said "standard input line 4" while the JSON said "line": 1 (the line within
    the formula): a program reading the JSON Lines could not find the line."""
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("sum(x) wrt x\n\n# c\nsum(x wrt x\nx'@A@y wrt q\n"))
    rc, out, err = run(capsys, "grad", "-", "--json")
    errors = [json.loads(line)["error"] for line in out.splitlines()[1:]]
    assert [(e["line"], e["column"]) for e in errors] == [(4, 4), (5, 12)]
    assert all(e["message"].startswith(f"standard input line {e['line']}:") for e in errors)
    assert "  sum(x wrt x\n     ^\n" in err and "  x'@A@y wrt q\n             ^\n" in err  # carets unchanged


def test_greek_capital_without_a_command_is_not_the_latin_letter():
    from gradcli.language.render import pretty_name

    assert pretty_name("Α", "latex") != pretty_name("A", "latex")  # Greek Alpha, Latin A
    assert pretty_name("Α", "latex").isascii()


@pytest.mark.parametrize("command", ["grad", "hess"])
def test_latex_with_json_is_a_conflict_not_silently_ignored(capsys, command):
    """--json printed the same document with or without --latex (README: never an option
    silently ignored)."""
    rc, out, err = run(capsys, command, "x'@A@x wrt x", "--json", "--latex")
    assert rc == 2 and json.loads(out)["error"]["kind"] == "usage"
    assert "--latex and --json cannot be used together" in err


def test_declared_shapes_and_sizes_in_the_notebook_api():
    """shapes= was dropped for a symbol given an array (X declared 3×2, given 2×2: no error),
    took (3, -1) or a 3-d shape as they came, and numpy integers were refused as sizes."""
    import gradcli
    from gradcli.errors import GradcliError

    with pytest.raises(GradcliError, match=r"X: data shape \(2, 2\) contradicts shapes X=\(3, 2\)"):
        gradcli.grad("sum(X) wrt X", shapes={"X": "3x2"}, X=np.ones((2, 2)))
    with pytest.raises(GradcliError, match="M is 4 in the data of X"):
        gradcli.grad("sum(X@y) wrt X", shapes={"X": "M,n", "y": "M"}, X=np.ones((4, 3)), y=np.ones(5))
    for bad in [(3, -1), (3, 2, 1), 3, (True, 2)]:
        with pytest.raises(GradcliError, match="is not a shape"):
            gradcli.grad("sum(X) wrt X", shapes={"X": bad})
    assert gradcli.grad("sum(X) wrt X", shapes={"X": (2, "n")}, X=np.ones((2, 5))).symbols == {"X": (2, 5)}
    assert gradcli.grad("x'@A@x wrt x", sizes={"m": np.int64(4)})["x"].shape == (4,)
    assert gradcli.grad("sum(X) wrt X", shapes={"X": (np.int64(3), "n")}).symbols == {"X": (3, "n")}


@pytest.mark.parametrize("formula", ["sum(log(x - 1)) wrt x", "sum(sqrt(a - b)) wrt a"])
def test_drawn_values_outside_a_domain_say_where_they_came_from(capsys, formula):
    """--random draws positive values inside log/sqrt of a symbol, not inside every difference:
    the math error must say the values were drawn, and how to give others."""
    found = None
    for seed in range(20):  # some seed lands outside the domain; its message is the one tested
        rc, out, err = run(capsys, "grad", formula, "-s", "x=5", "-s", "a=5", "-s", "b=5", "--random",
                           "--seed", str(seed))
        if rc != 0:
            found = (rc, err)
            break
    assert found is not None, "every draw met the domain: the case tests nothing"
    rc, err = found
    assert rc == 1 and f"--random (seed {seed})" in err and "-d" in err


@pytest.mark.parametrize("formula, alike", [("sum(theta*θ) wrt theta", {"theta", "θ"}),
                                            ("W1'@W_1 wrt W1", {"W1", "W_1"})])
def test_names_that_print_alike_get_a_note(formula, alike):
    """`theta` and `θ` are two symbols that both print θ: the output must say so."""
    from gradcli.api import analyze
    from gradcli.language.render import pretty_name

    problem = analyze(formula)
    assert len({pretty_name(n, "unicode") for n in alike}) == 1  # they do print alike
    notes = [n for n in problem.notes if n.kind == "names"]
    assert len(notes) == 1 and all(name in notes[0].message for name in alike)


def test_names_that_print_apart_get_no_note():
    from gradcli.api import analyze

    assert not [n for n in analyze("sum(theta*phi) + W1'@W2 wrt theta").notes if n.kind == "names"]
