"""`mypy --strict gradcli` is clean (issue 13), and stays so.  The test checks the whole package,
as `mypy` run at the root does (pyproject: `files = ["gradcli"]`); while the modules in
NOT_YET_CLEAN are being typed their errors are let through, and nobody else's.  That set only
shrinks: a module in it that has become clean fails the test until it is taken out."""

import ast
import os
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Still being typed (issue 13, one helper each); take a module out as soon as it is clean.
NOT_YET_CLEAN: set[str] = set()  # every module is clean


def _cache_dir(request, tmp_path, name):
    pytest_cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    return pytest_cache.mkdir(name) if pytest_cache is not None else tmp_path


def _mypy(request, tmp_path, path):
    """mypy --strict on a path with the project's settings: (stdout, stderr, status).  Every run
    has the same options, so they share one incremental cache kept under pytest's: warm, a run
    takes about a second; cold (a new checkout), the package takes 15 s or so."""
    if os.environ.get("CI"):  # mypy is in the test extra CI installs: never skipped there
        import mypy.api as api
    else:
        api = pytest.importorskip("mypy.api")
    cache = _cache_dir(request, tmp_path, "mypy")
    return api.run(["--config-file", str(ROOT / "pyproject.toml"), "--strict", "--cache-dir", str(cache),
                    "--no-error-summary", str(path)])


def errors_by_module(out, root=ROOT):
    """{path: [error lines]} of mypy's output (notes left out); mypy writes a path relative to
    the working directory when it lies there, and the key is relative to root when it lies there."""
    found = defaultdict(list)
    for line in out.splitlines():
        path, sep, rest = line.partition(":")
        if sep and ": error:" in rest:
            where, root = Path(path).resolve(), Path(root).resolve()
            found[where.relative_to(root).as_posix() if where.is_relative_to(root) else str(where)].append(line)
    return found


def _flagged_lines(request, tmp_path, name, lines):
    """The numbers of the lines mypy flags in a snippet (the package's own errors are the test
    above's).  The snippet's path stays the same from run to run: mypy's cache knows a module by
    its name, and would report a warm module's errors at the path it had before."""
    snippet = _cache_dir(request, tmp_path, "mypy-snippets") / name
    snippet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err, status = _mypy(request, tmp_path, snippet)
    mine = errors_by_module(out, snippet.parent)[snippet.name]
    return sorted({int(line.split(":")[1]) for line in mine}), out + err


def test_mypy_at_the_root_checks_the_whole_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["files"] == ["gradcli"] and config["strict"] is True
    for name in NOT_YET_CLEAN:
        assert name.startswith("gradcli/") and (ROOT / name).is_file(), name


def test_the_package_passes_mypy_strict_but_for_the_modules_not_yet_clean(request, tmp_path):
    out, err, status = _mypy(request, tmp_path, ROOT / "gradcli")
    found = errors_by_module(out)
    assert status in (0, 1) and not err, out + err  # 2: mypy itself failed (a crash, a bad option)
    elsewhere = {m: lines for m, lines in found.items() if m not in NOT_YET_CLEAN}
    assert not elsewhere, "mypy --strict found errors:\n" + "\n".join(
        line for lines in elsewhere.values() for line in lines)
    clean_now = sorted(NOT_YET_CLEAN - set(found))
    assert not clean_now, f"clean now: take {clean_now} out of NOT_YET_CLEAN (tests/test_types.py)"
    assert status == (1 if found else 0), out + err


def test_errors_are_told_apart_by_module():
    """The filter above reads mypy's `path:line: error:` lines, relative or absolute."""
    here = os.path.relpath(ROOT / "gradcli/language/parse.py")  # as mypy writes it from the working directory
    out = "\n".join([f"{ROOT / 'gradcli/api.py'}:3: error: Bad  [misc]", f"{ROOT / 'gradcli/api.py'}:4: note: See",
                     f"{here}:9:5: error: Worse  [arg-type]", "/elsewhere/x.py:1: error: Not ours  [misc]"])
    found = errors_by_module(out)
    assert {m: len(v) for m, v in found.items()} == {"gradcli/api.py": 1, "gradcli/language/parse.py": 1,
                                                     str(Path("/elsewhere/x.py").resolve()): 1}


# ----------------------------------------------------------------------------- gradcli/__init__.py
def _type_checking_imports():
    """{name: module} of the imports under `if TYPE_CHECKING:` in gradcli/__init__.py."""
    tree = ast.parse((ROOT / "gradcli" / "__init__.py").read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom) and imp.level == 1:
                    out.update({alias.asname or alias.name: imp.module for alias in imp.names})
    return out


def test_every_name_loaded_on_first_use_is_typed_for_checkers():
    """`gradcli.grad` is loaded by `__getattr__` at run time; a checker reads its type from the
    import under TYPE_CHECKING, which must name the very module `_HOMES` loads it from."""
    import gradcli

    assert _type_checking_imports() == gradcli._HOMES


def test_a_type_checker_checks_calls_through_the_package(request, tmp_path):
    """Before, `__getattr__` made every `gradcli.X` an Any: a checker accepted any call."""
    lines = ["import gradcli", "", "",
             "ok = gradcli.grad(\"x'@x wrt x\", sizes={\"n\": 3}), gradcli.shape(\"tr(X)\")",
             "wrong_type = gradcli.grad(3)  # bad", "unknown = gradcli.hess(\"x'@x\", {}, 7)  # bad",
             "no_such = gradcli.Results.nonexistent  # bad"]
    flagged, out = _flagged_lines(request, tmp_path, "uses_gradcli.py", lines)
    bad = [n for n, line in enumerate(lines, 1) if line.endswith("# bad")]
    assert flagged == bad, out


# ----------------------------------------------------------------------------- @record
def test_a_factory_default_is_fresh_for_every_instance_in_either_spelling():
    from gradcli.record import Factory, record

    @record
    class Box:
        name: str
        items: list[int] = Factory(default_factory=list)
        seen: dict[str, int] = Factory(dict)

    a, b = Box("a"), Box(name="b")
    a.items.append(1)
    a.seen["x"] = 1
    assert (b.items, b.seen) == ([], {}) and a.items == [1] and Box("c", [2]).items == [2]
    assert Box._record_fields == ("name", "items", "seen")
    with pytest.raises(TypeError):
        Factory()
    with pytest.raises(TypeError):
        Factory(list, default_factory=list)


def test_a_type_checker_reads_record_constructors_as_a_dataclass(request, tmp_path):
    """Before `dataclass_transform`, `@record` hid every constructor: a checker accepted any call."""
    lines = ["from gradcli.record import Factory, record", "", "",
             "@record", "class Point:", "    x: int", "    tags: list[str] = Factory(default_factory=list)",
             "", "", "ok = Point(1), Point(x=2, tags=['a'])",
             "wrong_type = Point('one')  # bad", "missing = Point()  # bad",
             "unknown = Point(1, [], 3)  # bad"]
    flagged, out = _flagged_lines(request, tmp_path, "uses_record.py", lines)
    bad = [n for n, line in enumerate(lines, 1) if line.endswith("# bad")]
    assert flagged == bad, out  # the three bad calls, and nothing else
