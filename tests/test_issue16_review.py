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
