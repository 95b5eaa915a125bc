"""The notebook-first API (gradcli.grad/hess/shape/check) and its rich display: samples/tour.ipynb
runs in a kernel of this test's own Python (offline) and shows rendered derivatives; the
formulas it shows are evaluated, not string-matched."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradcli

TOUR = Path(__file__).resolve().parent.parent / "samples" / "tour.ipynb"


def evaluate_ascii(formula: str, arrays: dict):
    """The value of a formula gradcli printed in its own language, at the given arrays."""
    problem = gradcli.analyze(formula, data_shapes={n: a.shape for n, a in arrays.items() if n in formula})
    f, _ = problem.compile()(**{n: arrays[n] for n in problem.symbols})
    return f


def least_squares():
    rng = np.random.default_rng(0)  # as the notebook draws them
    X, y, theta = rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=3)
    return {"X": X, "y": y, "theta": theta}, -2 * X.T @ (y - X @ theta)


# ----------------------------------------------------------------------------- the API
def test_grad_is_keyed_by_wrt_name_with_values():
    arrays, expected = least_squares()
    r = gradcli.grad("||y - X@theta||^2 wrt theta", **arrays)
    assert list(r) == ["theta"] and r.shape == () and r.symbols["X"] == (5, 3)
    d = r["theta"]
    assert d.shape == (3,) and d.kind == "gradient"
    np.testing.assert_allclose(d.value, expected)
    np.testing.assert_allclose(evaluate_ascii(d.ascii, arrays), expected)  # the formula, evaluated
    assert float(r.value) == pytest.approx(np.sum((arrays["y"] - arrays["X"] @ arrays["theta"]) ** 2))
    assert d.latex.startswith(r"\frac{\partial f}{\partial \theta} = ")


def test_symbolic_problem_takes_sizes_at_call_time_and_check_draws_values():
    r = gradcli.grad("x'@A@x wrt x", sizes={"m": 4})
    assert r["x"].shape == (4,) and r.symbols["A"] == (4, 4)
    assert r["x"].value is None  # no arrays: no values, but a check all the same
    checks = r.check()
    assert checks.ok and checks["x"].max_rel_error < 1e-6
    with pytest.raises(gradcli.GradcliError, match="sizes="):  # no flag names in the API
        gradcli.grad("x'@A@x wrt x").check()
    with pytest.raises(gradcli.GradcliError, match="not a dimension"):
        gradcli.grad("x'@A@x wrt x", sizes={"q": 4})


def test_check_function_and_a_wrong_derivative_fails():
    assert gradcli.check("sum(tanh(X@W)) wrt W", sizes={"m": 3, "n": 4, "k": 2}).ok
    r = gradcli.grad("sum(exp(x)) wrt x", sizes={"m": 3})
    r["x"].derivative.expr = gradcli.analyze("x wrt x", shapes={"x": (3,)}).expr  # a wrong formula
    r._values = None
    assert not r.check()["x"].ok


def test_compile_of_a_symbolic_problem_binds_sizes_when_called():
    arrays, expected = least_squares()
    compiled = gradcli.analyze("||y - X@theta||^2 wrt theta").compile()
    _, grads = compiled(**arrays)
    np.testing.assert_allclose(grads["theta"], expected)
    with pytest.raises(gradcli.GradcliError) as err:
        compiled(X=arrays["X"])
    assert "-s" not in str(err.value) and "--" not in str(err.value)


def test_a_deferred_compilation_takes_lists_and_new_sizes():
    compiled = gradcli.analyze("sum(x*y) wrt x").compile()
    for x, y in (([1.0, 2.0], [3.0, 4.0]), ([1.0, 2.0, 5.0], [3.0, 4.0, 1.0])):
        f, grads = compiled(x=x, y=y)
        assert float(f) == pytest.approx(float(np.dot(x, y)))
        np.testing.assert_allclose(grads["x"], y)


def test_hess_shape_steps_emit_are_public():
    h = gradcli.hess("x'@A@y wrt x, y", sizes={"m": 2, "n": 3})
    assert set(h) == {"x", "x,y", "y,x", "y"} and h["x,y"].shape == (2, 3)
    s = gradcli.shape("||y - X@theta||^2 wrt theta")
    assert s["theta"].shape == ("n",) and s["theta"].formula is None
    arrays, expected = least_squares()
    r = gradcli.grad("||y - X@theta||^2 wrt theta", **arrays)
    assert "backward" in str(r["theta"].steps) and r["theta"].steps.records
    namespace: dict = {}
    exec(compile(r.emit("numpy"), "<emitted>", "exec"), namespace)  # gradcli's own output, in a test
    _, grads = namespace["value_and_grad"](**arrays)
    np.testing.assert_allclose(grads["theta"], expected)
    assert r.emit("latex").startswith(r"\documentclass")


def test_reprs_are_short_and_readable():
    p = gradcli.analyze("||y - X@theta||^2 wrt theta")
    assert repr(p) == "Problem(||y - X@theta||^2 wrt theta: f (); y (m,), X (m, n), theta (n,))"
    assert "Binary" not in repr(p.derivatives()[0]) and len(repr(p.derivatives()[0])) < 120
    assert r"\frac{\partial f}{\partial \theta}" in p.derivatives()[0]._repr_latex_()
    assert "| symbol |" in p._repr_markdown_()


def test_rich_display_of_a_tensor_and_a_hessian():
    r = gradcli.grad("R'@R wrt R", sizes={"m": 3, "n": 2})
    latex = r._repr_latex_()
    assert r"\frac{\partial f_{ij}}{\partial R_{kl}} &= " in latex and "[i," not in latex
    h = gradcli.hess("x'@A@y wrt x, y", sizes={"m": 2, "n": 3})
    assert r"\frac{\partial^{2} f}{\partial x \, \partial y} &= A" in h._repr_latex_()
    assert "<table>" in h._repr_html_() and "| derivative |" in h._repr_markdown_()


# ----------------------------------------------------------------------------- the notebook
def _kernel_dir(tmp_path: Path) -> Path:
    """A kernelspec that starts this test's own Python (with its gradcli), whatever else is
    installed: the notebook runs offline, in the test venv."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gradcli tests", "language": "python"}))
    return tmp_path / "jupyter"


@pytest.fixture(scope="module")
def executed_tour(tmp_path_factory):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    tmp = tmp_path_factory.mktemp("tour")
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(_kernel_dir(tmp)))
    mp.setenv("JUPYTER_DATA_DIR", str(tmp / "data"))
    mp.setenv("JUPYTER_RUNTIME_DIR", str(tmp / "runtime"))
    mp.setenv("IPYTHONDIR", str(tmp / "ipython"))
    try:
        nb = nbformat.read(TOUR, as_version=4)
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp)}}).execute()
    finally:
        mp.undo()
    return [c for c in nb.cells if c.cell_type == "code"]


def _data(cell, mime: str) -> str:
    return "\n".join(o["data"][mime] for o in cell.outputs if "data" in o and mime in o["data"])


def _cell(cells, source_start: str):
    return next(c for c in cells if c.source.startswith(source_start))


def test_tour_shows_rendered_derivatives(executed_tour):
    cells = executed_tour
    assert not any(o.get("output_type") == "error" for c in cells for o in c.outputs)
    ls = _cell(cells, "r = gradcli.grad")
    latex = _data(ls, "text/latex")
    assert r"\frac{\partial f}{\partial \theta} &= " in latex and r"\begin{array}{lll}" in latex
    assert r"X & 5 \times 3 & \text{data}" in latex
    assert "<table>" in _data(ls, "text/html") and "| symbol |" in _data(ls, "text/markdown")
    # the formula it shows, evaluated: its ASCII line (text/plain) against an independent oracle
    arrays, expected = least_squares()
    plain = _data(ls, "text/plain")
    formula = re.search(r"^df/dtheta = (.*?)    #", plain, re.M).group(1)
    np.testing.assert_allclose(evaluate_ascii(formula, arrays), expected)
    # and the value it shows
    shown = _data(_cell(cells, 'r["theta"].value'), "text/plain")
    np.testing.assert_allclose([float(v) for v in re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", shown)], expected,
                               rtol=1e-6)
    assert "ok" in _data(_cell(cells, "r.check()"), "text/plain")
    assert _data(_cell(cells, "q.check().ok"), "text/plain") == "True"
    assert r"\frac{\partial^{2} f}{\partial x \, \partial y}" in _data(_cell(cells, "gradcli.hess"), "text/latex")
    assert r"\frac{\partial f_{ij}}{\partial R_{kl}}" in _data(_cell(cells, 'gradcli.grad("R'), "text/latex")
    assert "backward" in "".join(o.get("text", "") for o in _cell(cells, "print(r[").outputs)


def test_tour_latex_compiles(executed_tour, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (CI installs it: .ci/run)")
    shown = [_data(c, "text/latex") for c in executed_tour if _data(c, "text/latex")]
    assert len(shown) >= 4
    doc = "\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n" \
          + "\n".join(shown) + "\n\\end{document}\n"
    (tmp_path / "t.tex").write_text(doc)
    done = subprocess.run(["pdflatex", "-halt-on-error", "-interaction=nonstopmode", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
