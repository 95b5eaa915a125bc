"""The modules listed under [tool.mypy] in pyproject.toml pass `mypy --strict`: what is typed
stays typed.  The list only grows (issue 13 asks for the whole package); the imports of a
listed module are read for their types, and only the listed modules' own errors fail."""

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _checked_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["mypy"]["files"]


# clean when the list was started (issue 13); a module may join, none may leave
CLEAN_SINCE_ISSUE_13 = {f"gradcli/{m}.py" for m in (
    "record", "errors", "language/nondiff", "language/expr", "calculus/columns", "numeric/fdcheck",
    "checks/claimchain", "checks/claims",
    *(f"language/operators/{m}" for m in ("__init__", "base", "structure", "arithmetic", "elementwise",
                                          "reductions", "linalg")),
    "calculus/linearize", "calculus/indexform", "process", "tablegen", "__main__")}


def test_the_checked_modules_exist_and_the_list_only_grows():
    files = _checked_modules()
    for name in files:
        assert (ROOT / name).is_file() and name.startswith("gradcli/"), name
    assert CLEAN_SINCE_ISSUE_13 <= set(files), sorted(CLEAN_SINCE_ISSUE_13 - set(files))


def test_the_checked_modules_pass_mypy_strict(request, tmp_path):
    api = pytest.importorskip("mypy.api")
    # mypy's incremental cache under pytest's: warm after the first run (cold, a few seconds)
    pytest_cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    cache = pytest_cache.mkdir("mypy") if pytest_cache is not None else tmp_path
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--strict",
                                "--cache-dir", str(cache), "--no-error-summary",
                                *(str(ROOT / f) for f in _checked_modules())])
    assert status == 0, f"mypy --strict found errors:\n{out}{err}"


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
    api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "uses_record.py"
    lines = ["from gradcli.record import Factory, record", "", "",
             "@record", "class Point:", "    x: int", "    tags: list[str] = Factory(default_factory=list)",
             "", "", "ok = Point(1), Point(x=2, tags=['a'])",
             "wrong_type = Point('one')  # bad", "missing = Point()  # bad",
             "unknown = Point(1, [], 3)  # bad"]
    snippet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pytest_cache = getattr(request.config, "cache", None)
    cache = pytest_cache.mkdir("mypy") if pytest_cache is not None else tmp_path
    out, err, status = api.run(["--strict", "--python-version", "3.11", "--follow-imports", "silent",
                                "--cache-dir", str(cache), "--no-error-summary", str(snippet)])
    flagged = sorted({int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line})
    bad = [n for n, line in enumerate(lines, 1) if line.endswith("# bad")]
    assert flagged == bad, out + err  # the three bad calls, and nothing else
