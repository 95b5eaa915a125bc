"""LaTeX that pastes into a paper unchanged: every sample formula's LaTeX compiles with a real
pdflatex (amsmath and amssymb only), `--latex` formula lines are whole ASCII equations, and
`--emit latex` is a standalone document.  Skipped only where pdflatex is not installed."""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import gradcli
from gradcli import latexdoc
from gradcli.checks.checkfiles import entries
from gradcli.cli import main
from gradcli.errors import GradcliError

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE_FILES = sorted(glob.glob(str(SAMPLES / "*.md"))) + [str(SAMPLES / "formulas.gradcli")]
PDFLATEX = shutil.which("pdflatex")
needs_pdflatex = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (CI installs it: .ci/run)")


def sample_problems(path: str):
    """(formula, problem, derivatives) of every formula of a sample file that gradcli accepts
    (the ones marked `=> error` are rejected on purpose), with the Hessians of scalar ones."""
    for entry in entries(path):
        try:
            problem = gradcli.analyze(entry.text)
        except GradcliError:
            continue
        yield entry.text, problem, problem.derivatives()
        if problem.wrt and not problem.shape:
            yield entry.text, problem, problem.hessians()


def compile_latex(tmp_path: Path, source: str, name: str = "doc") -> None:
    tex = tmp_path / f"{name}.tex"
    tex.write_text(source, encoding="ascii")
    done = subprocess.run([PDFLATEX, "-halt-on-error", "-interaction=nonstopmode", "-no-shell-escape", tex.name],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = done.stdout[-3000:]
    assert done.returncode == 0 and (tmp_path / f"{name}.pdf").exists(), log


@needs_pdflatex
@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: Path(p).name)
def test_every_sample_formula_compiles(tmp_path, path):
    parts, count = [], 0
    for text, problem, derivs in sample_problems(path):
        parts += latexdoc.body(problem, derivs, text) + [r"\clearpage"]
        count += 1
    assert count >= 10
    compile_latex(tmp_path, "\n".join([*latexdoc.preamble(), *parts, r"\end{document}", ""]))


def latex_output(capsys, *args) -> list[str]:
    """Every line `gradcli grad … --latex` prints."""
    assert main(["grad", *args, "--latex"]) == 0
    return capsys.readouterr().out.splitlines()


def latex_lines(capsys, *args) -> list[str]:
    """The formula lines of `gradcli grad … --latex`: f's, each derivative's and each binding's."""
    return [line.strip() for line in latex_output(capsys, *args) if line.strip() and not line.startswith("%")]


def as_document(lines: list[str]) -> str:
    """The output pasted as it is: comment lines as they are, each formula line in a display."""
    body = [line if not line.strip() or line.startswith("%") else f"\\[\n{line}\n\\]" for line in lines]
    return "\n".join([*latexdoc.preamble(), *body, r"\end{document}", ""])


@needs_pdflatex
def test_latex_output_compiles_as_it_is_printed(capsys, tmp_path):
    """The whole --latex output of every sample formula (with values and a check, where the
    shapes are numbers): formula lines are whole equations, every other line a comment."""
    lines: list[str] = []
    for path in SAMPLE_FILES:
        for entry in entries(path):
            try:
                problem = gradcli.analyze(entry.text)
            except GradcliError:
                continue
            if problem.wrt:
                lines += latex_output(capsys, entry.text)
    lines += latex_output(capsys, "R'@R wrt R", "-s", "R=2x2", "--random", "--check")
    lines += latex_output(capsys, "||y - X@theta||^2 wrt theta", "-d", str(SAMPLES / "least_squares.npz"), "--check")
    assert any(line.startswith(r"\frac{\partial f_{") for line in lines)  # a tensor among them
    assert all(line.isascii() for line in lines), [line for line in lines if not line.isascii()][:3]
    compile_latex(tmp_path, as_document(lines))


def test_latex_lines_are_whole_ascii_equations(capsys):
    for line in latex_lines(capsys, "x'@A@x + log(sum(exp(x))) wrt x", "--layout", "numerator"):
        assert line.isascii(), line
    (f, d) = latex_lines(capsys, "sum(log(x) + exp(x) + sin(x)) wrt x")
    assert f.startswith("f = ") and d.startswith(r"\frac{\partial f}{\partial x} = ")
    assert r"\log" in f and r"\exp" in f and r"\sin" in f and r"\operatorname{log}" not in f


def test_tensors_have_a_left_hand_side_and_subscripts(capsys):
    (f, d) = latex_lines(capsys, "R'@R wrt R")
    assert d.startswith(r"\frac{\partial f_{ij}}{\partial R_{kl}} = ")
    assert "[" not in d and "R_{k" in d
    (_, d) = latex_lines(capsys, "A@x wrt A where A: (m, n)")
    assert d.startswith(r"\frac{\partial f_{i}}{\partial A_{kl}} = ")
    # a name with a digit takes braces before the indices (W_{1}_{kl} is a LaTeX error)
    (_, d) = latex_lines(capsys, "W1@x wrt W1 where W1: (m, n)")
    assert r"{W_{1}}_{kl}" in d


def test_indicator_is_bold_one_not_blackboard(capsys):
    lines = latex_lines(capsys, "sum(relu(X@w)) wrt w")
    assert any(r"\mathbf{1}\left[" in line for line in lines)
    assert not any("mathbb" in line for line in lines)


def test_hessian_labels(capsys):
    assert main(["hess", "x'@A@y wrt x, y", "--latex"]) == 0
    out = capsys.readouterr().out
    assert r"\frac{\partial^{2} f}{\partial x^{2}} = " in out
    assert r"\frac{\partial^{2} f}{\partial x \, \partial y} = " in out
    assert "∂" not in "".join(line for line in out.splitlines() if line.startswith("\\frac"))


def test_emit_latex_is_a_standalone_document(capsys, tmp_path):
    assert main(["grad", "sum(relu(X@W1)@W2) + 0.5*lam*||W1||^2 wrt W1, W2, X", "--emit", "latex"]) == 0
    doc = capsys.readouterr().out
    assert doc.startswith(r"\documentclass") and r"\usepackage{amsmath,amssymb}" in doc
    assert doc.rstrip().endswith(r"\end{document}") and doc.isascii()
    if PDFLATEX is not None:
        compile_latex(tmp_path, doc)


def corpus_formulas() -> list[str]:
    """The formulas of the rule tables the other tests use (every operator, Jacobians, Hessians,
    claims, derivations): a wider net than the samples."""
    from test_claims import TABLE
    from test_derivatives import RULES
    from test_jacobians import HESSIANS, JACOBIANS
    from test_steps import CASES

    texts = [r[1] for r in RULES] + [j[0] for j in JACOBIANS] + [h[0] for h in HESSIANS]
    texts += [t[0] for t in TABLE] + [c[0] for c in CASES]
    return list(dict.fromkeys(texts))


@needs_pdflatex
def test_every_rule_table_formula_compiles(tmp_path):
    parts, count = [], 0
    for text in corpus_formulas():
        try:
            problem = gradcli.analyze(text)
            if not problem.wrt:  # a rule written without wrt: by every symbol
                problem = gradcli.analyze(text, wrt=list(problem.symbols))
        except GradcliError:
            continue
        for hessian in (False, True) if not problem.shape else (False,):
            try:  # (some second derivatives are not available: a math error, said so)
                derivs = problem.hessians() if hessian else problem.derivatives()
                parts += latexdoc.body(problem, derivs, text) + [r"\clearpage"]
            except GradcliError:
                continue
        count += 1
    assert count >= 50
    compile_latex(tmp_path, "\n".join([*latexdoc.preamble(), *parts, r"\end{document}", ""]))


@pytest.mark.parametrize("command", ["grad", "hess"])
def test_steps_under_latex_are_comments(capsys, tmp_path, command):
    assert main([command, "sum(inv(A)@x) + ||x||^2 wrt x, A" if command == "grad" else "sum(exp(A@x)) wrt x",
                 "--steps", "--latex"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("derivation (--steps)" in line for line in lines)
    assert all(line.isascii() for line in lines), [line for line in lines if not line.isascii()][:3]
    if PDFLATEX is not None:
        compile_latex(tmp_path, as_document(lines))
