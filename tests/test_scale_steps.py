"""`--steps`, `--json`, `--latex`, `shape` and `hess` on formulas nested 1,000 deep: each command
runs in its own process with Python's recursion limit cut to 300 and its address space limited,
so quadratic output (every adjoint printed in full: 15 MB and 4 GB at depth 1,000) or a
recursive walk fails the test.  Not timed.  The named adjoints of `--steps` are checked by
evaluating them: substituting every name by its value gives the adjoint computed directly.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys

import numpy as np
import pytest

from gradcli import api
from gradcli.calculus.steps import Derivation
from gradcli.numeric.evaluate import compile_graph

MEMORY = 1024 ** 3  # bytes of address space for one command


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _gradcli(args: list[str], formula: str) -> subprocess.CompletedProcess:
    """gradcli ARGS with the formula on standard input, recursion limit 300, memory limited."""
    code = ("import sys\nsys.setrecursionlimit(300)\nfrom gradcli.cli import main\n"
            f"sys.exit(main({args!r}))")
    return subprocess.run([sys.executable, "-c", code], input=formula, capture_output=True, text=True,
                          timeout=600, preexec_fn=_limit_memory, env={**os.environ, "PYTHONHASHSEED": "0"})


def _chain(depth: int, fn: str = "tanh(", wrt: str = "x") -> str:
    return "sum(" + fn * depth + "x" + ")" * depth + f") wrt {wrt}"


def test_steps_1000_deep_is_linear_text_and_json():
    proc = _gradcli(["grad", "-", "--steps"], _chain(1000))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(proc.stdout) < 2_000_000  # was 15 MB: each adjoint repeated the chain above it
    assert "∂L/∂a = ∂L/∂b ⊙ (1 − b²)" in proc.stdout  # later adjoints refer to earlier ones
    proc = _gradcli(["grad", "-", "--steps", "--json"], _chain(1000))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(proc.stdout) < 2_000_000
    steps = json.loads(proc.stdout)["steps"]
    assert steps[-1]["name"] == "x" and steps[-1]["adjoint"].startswith("dL/d")


@pytest.mark.parametrize("args", [["shape", "-"], ["grad", "-", "--json"], ["grad", "-", "--latex"],
                                  ["hess", "-", "--json"], ["grad", "-", "--steps", "--latex"]])
def test_every_command_at_depth_1000(args):
    proc = _gradcli(args, _chain(1000))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "internal error" not in proc.stderr and "too deeply" not in proc.stderr
    if "--json" in args:
        json.loads(proc.stdout)


@pytest.mark.parametrize("depth", [3, 30, 1000])
def test_hessian_wrt_a_matrix_of_a_deep_chain(depth):
    """Index notation of sum(tanh(A@tanh(A@…x))) wrt A grows with the square of the depth: past
    a size it gives way to vector-Jacobian products, and the values still pass --check (used to
    be an internal error at depth 30, "nested too deeply" at 1,000)."""
    proc = _gradcli(["hess", "-", "-s", "A=3,3", "-s", "x=3", "--random", "--check"],
                    _chain(depth, "tanh(A@", "A"))
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    assert "internal error" not in proc.stderr
    if depth == 3:
        assert "δ(" in proc.stdout  # small enough for index notation


def test_hessian_steps_1000_deep_stay_linear():
    proc = _gradcli(["hess", "-", "--steps"], _chain(1000))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(proc.stdout) < 5_000_000  # was 35 MB: shared sums of the adjoints repeated
    assert "  where w" in proc.stdout


def test_hessian_steps_evaluate_to_the_hessian_times_the_seed():
    """In `hess --steps`, the block derives L = ⟨V, ∂f/∂x⟩: its last adjoint, evaluated through
    every name and `where` binding it uses, is H V — compared with central differences of the
    gradient of the tanh chain along V, written with numpy."""
    depth = 12
    proc = _gradcli(["hess", "-", "--steps", "--json", "-s", "x=3"], _chain(depth))
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [r for r in json.loads(proc.stdout)["steps"] if r.get("block") == "x"]
    assert any(r.get("where") for r in records)  # the case exercises the shared names
    rng = np.random.default_rng(7)
    x, v = rng.normal(size=3) * 0.5, rng.normal(size=3)
    got = _values(records, {"x": x, "V": v})["x"]

    def gradient(z):
        g = np.ones_like(z)
        for _ in range(depth):
            z = np.tanh(z)
            g = g * (1 - z ** 2)
        return g

    h = 1e-6
    want = (gradient(x + h * v) - gradient(x - h * v)) / (2 * h)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-8)


def _values(records: list[dict], inputs: dict) -> dict:
    """Evaluate the JSON steps of a derivation: forward expressions in order, then each adjoint
    with `dL/dN` read as the value of the adjoint of N printed before it."""
    values = dict(inputs)
    for r in reversed(records):  # the records run backward; the forward pass is their reverse
        if r["name"] not in values:
            values[r["name"]] = _evaluate(r["expression"], values)
    adjoints = {}
    for r in records:
        known = lambda: {**values, **{f"dL_d{k}": v for k, v in adjoints.items()}}  # noqa: E731
        for w in r.get("where", []):  # shared subexpressions named just before this adjoint
            values[w["name"]] = _evaluate(re.sub(r"dL/d(\w+)", r"dL_d\1", w["expression"]), known())
        adjoints[r["name"]] = _evaluate(re.sub(r"dL/d(\w+)", r"dL_d\1", r["adjoint"]), known())
    return adjoints


def _evaluate(text: str, values: dict):
    used = {k: v for k, v in values.items() if re.search(rf"\b{re.escape(k)}\b", text)}
    p = api.analyze(text, data_shapes={k: np.shape(v) for k, v in used.items()})
    return p.compile()(**used)[0]


@pytest.mark.parametrize("fn", ["tanh(", "sin(", "tanh(W@"])
def test_named_adjoints_evaluate_to_the_adjoints(fn):
    """The adjoints printed through names equal the adjoints themselves, numerically."""
    depth = 12
    text = _chain(depth, fn)
    shapes = ["-s", "x=3"] + (["-s", "W=3,3"] if "W" in fn else [])
    proc = _gradcli(["grad", "-", "--steps", "--json"] + shapes, text)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = json.loads(proc.stdout)["steps"]
    assert any("dL/d" in r["adjoint"] for r in records)  # the case exercises named adjoints
    rng = np.random.default_rng(5)
    inputs = {"x": rng.normal(size=3) * 0.5}
    if "W" in fn:
        inputs["W"] = rng.normal(size=(3, 3)) * 0.5
    got = _values(records, inputs)
    p = api.analyze(text, shapes={k: np.shape(v) for k, v in inputs.items()})
    d = Derivation(p.expr, [p.symbol("x")])
    for s in d.steps():
        if s.adjoint is None:
            continue
        (want,) = compile_graph([s.adjoint]).run(inputs)
        assert np.allclose(np.broadcast_to(got[s.name], np.shape(want)), want), s.name
    (want,) = compile_graph([d.gradient(p.symbol("x"))]).run(inputs)
    assert np.allclose(got["x"], want)
