"""Data flows one way through gradcli's modules: no import cycles, and the layers in
pyproject.toml's [tool.importlinter] contracts hold (README, "How the code is organised").

An import written inside a function counts as much as one at the top of a module: Python runs
it all the same, only later, so a cycle closed by a function-level import is still a cycle.
(Function-level imports stay welcome for start-up time, for numpy, lark, rich and the heavy
stages a one-liner does not need; they must follow the layers as any other import.)  Imports
under `if TYPE_CHECKING:` are left out: they never run, they only name a type for a checker.

Run as a script to see the graph: `python tests/test_layers.py` prints every cycle and, with
`--edges`, every module's imports (a function-level import is marked `(f)`).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gradcli"

# Cycles that remain, each as its sorted module names.  This list only shrinks: a test fails
# when a cycle not listed appears, and when a listed one is gone (then delete it here).
KNOWN_CYCLES: list[list[str]] = []


def module_names() -> dict[str, Path]:
    """{dotted module name: file} for every module of the package."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or \
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement that can run, with whether it is inside a function."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for other in node.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]), in_function)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
        yield from _imports(node, in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                   ast.Lambda)))


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> set[str]:
    """The package's modules an import statement loads (the deepest module each name names)."""
    if isinstance(node, ast.Import):
        wanted = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")[:None if is_package else -1]
            base = base[:len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        wanted = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem for alias in node.names]
    found = set()
    for name in wanted:
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known and name != "gradcli":
            found.add(name)
    return found


def import_graph() -> dict[str, dict[str, bool]]:
    """{module: {imported module: whether only from inside functions}}: the imports that run."""
    known = module_names()
    graph: dict[str, dict[str, bool]] = {}
    for module, path in known.items():
        edges = graph.setdefault(module, {})
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, in_function in _imports(tree):
            for target in _targets(module, path.name == "__init__.py", node, known):
                if target != module:
                    edges[target] = edges.get(target, True) and in_function
    return graph


def cycles(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph.get(nxt, {}))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def test_the_graph_sees_imports_inside_functions_and_skips_type_only_ones():
    graph = import_graph()
    # process.py imports the command line only when it runs (start-up time): a real edge
    assert graph["gradcli.process"].get("gradcli.cli") is True
    # errors.py imports nothing of gradcli; display.py names api.Problem for a checker only
    assert graph["gradcli.errors"] == {}
    assert "gradcli.api" not in graph["gradcli.display"]


def test_the_cycle_finder_finds_cycles_closed_inside_functions():
    graph = {"a": {"b": False}, "b": {"c": True}, "c": {"a": True}, "d": {"a": False}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": False}, "b": {}}) == []


def test_no_import_cycles_beyond_the_known_ones():
    found = cycles(import_graph())
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, f"import cycles (counting imports inside functions): {new}"
    gone = [c for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"these cycles are gone: delete them from KNOWN_CYCLES: {gone}"


def test_every_module_has_a_layer():
    """A module outside every layer would escape the contract: each belongs to one."""
    import re
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (pipeline,) = [c for c in config["contracts"] if c["id"] == "pipeline"]
    layers = [name for layer in pipeline["layers"] for name in re.split(r"\s*[:|]\s*", layer.strip())]
    assert len(layers) == len(set(layers)), "a module in two layers"
    placed = {m for m in module_names() if any(m == name or m.startswith(name + ".") for name in layers)}
    assert placed == set(module_names()) - {"gradcli"}, sorted(set(module_names()) - placed - {"gradcli"})


@pytest.mark.parametrize("command", ["shape", "grad", "hess"])
def test_a_one_liner_imports_neither_numpy_nor_lark(command):
    """Start-up time: the layers' lazy imports stay lazy (a package's __init__ imports nothing)."""
    import subprocess

    code = ("import sys\nfrom gradcli.cli import main\n"
            f"rc = main([{command!r}, \"x'@A@x wrt x\"])\n"
            "print(rc, sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'lark'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr


def test_the_import_linter_contracts_hold(capsys):
    cli = pytest.importorskip("importlinter.cli")
    status = cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert status == 0, out


if __name__ == "__main__":
    graph = import_graph()
    for component in cycles(graph):
        print("cycle:", " ".join(component))
    if "--edges" in sys.argv:
        for module, edges in sorted(graph.items()):
            print(module, "->", " ".join(t + ("(f)" if f else "") for t, f in sorted(edges.items())))
