"""Which files `gradcli check` reads: in a folder, `*.gradcli` files and Markdown fences only
(other files only when named), only what git tracks inside a repository, never hidden folders or
virtual environments; a named folder or file without a formula is an error; the pre-commit
hook selects the same files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gradcli.checks import checkfiles
from gradcli.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOOD = "x'@x => ()\n"
BAD = "A@x where A: (m, n), x: (k)\n"  # a shape error, unless it is not read


def run(capsys, *args):
    rc = main(["check", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def make_tree(root: Path) -> None:
    """A project folder: formulas where check looks, and broken "formulas" everywhere else."""
    (root / "docs").mkdir(parents=True)
    (root / "f.gradcli").write_text(GOOD)
    (root / "docs" / "page.md").write_text(f"text\n```gradcli\n{GOOD}```\n")
    (root / "requirements.txt").write_text("numpy>=1.26\n")  # a parse error if it were read
    (root / "notes.formulas").write_text(BAD)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.gradcli").write_text(BAD)
    (root / "env" / "lib").mkdir(parents=True)
    (root / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / "env" / "lib" / "licence.md").write_text(f"```gradcli\n{BAD}```\n")


def test_a_folder_yields_gradcli_and_markdown_files_only(tmp_path, capsys):
    make_tree(tmp_path)
    rc, out, err = run(capsys, str(tmp_path), "--json")
    doc = json.loads(out)
    assert rc == 0, err
    assert sorted(Path(r["file"]).name for r in doc["results"]) == ["f.gradcli", "page.md"]
    assert doc["checked"] == 2 and doc["failed"] == 0


def test_other_files_are_read_when_named(tmp_path, capsys):
    make_tree(tmp_path)
    rc, _, err = run(capsys, str(tmp_path / "requirements.txt"))
    assert rc == 1 and "requirements.txt:1:" in err
    rc, _, err = run(capsys, str(tmp_path / "notes.formulas"))
    assert rc == 1 and "notes.formulas:1:" in err


def test_the_walk_without_git(tmp_path, monkeypatch):
    make_tree(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))  # git cannot be found
    found = checkfiles.folder_files(tmp_path)
    assert [Path(f).relative_to(tmp_path).as_posix() for f in found] == ["docs/page.md", "f.gradcli"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_inside_a_git_repository_only_tracked_files_count(tmp_path, capsys):
    repo = tmp_path / "repo"
    make_tree(repo)
    (repo / "scratch.gradcli").write_text(BAD)  # untracked: not read
    (repo / ".hidden" / "y.md").write_text(f"```gradcli\n{BAD}```\n")
    git = ["git", "-C", str(repo)]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "f.gradcli", "docs/page.md", "requirements.txt", ".hidden/x.gradcli",
                          ".hidden/y.md", "env/lib/licence.md"], check=True)
    rc, out, err = run(capsys, str(repo), "--json")
    assert rc == 0, err  # tracked files in hidden folders and environments are still skipped
    assert sorted(Path(r["file"]).name for r in json.loads(out)["results"]) == ["f.gradcli", "page.md"]
    # a subfolder of the repository: its own tracked files, under the name given
    rc, out, err = run(capsys, str(repo / "docs"), "--json")
    assert rc == 0 and [r["file"] for r in json.loads(out)["results"]] == [str(repo / "docs" / "page.md")]
    # tracking the scratch file makes it count
    subprocess.run(git + ["add", "scratch.gradcli"], check=True)
    rc, _, err = run(capsys, str(repo))
    assert rc == 1 and "scratch.gradcli:1:" in err


@pytest.mark.parametrize("as_json", [False, True])
def test_a_named_folder_or_file_without_formulas_is_an_error(tmp_path, capsys, as_json):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text(GOOD)  # not a formula file in a folder
    prose = tmp_path / "prose.md"
    prose.write_text("# Title\n\n```python\nx = 1\n```\n")
    good = tmp_path / "ok.gradcli"
    good.write_text(GOOD)
    for args in ([str(empty)], [str(prose)], [str(good), str(prose)]):
        flags = ["--json"] if as_json else []
        rc, out, err = run(capsys, *args, *flags)
        name = args[-1]
        assert rc == 1, (args, out, err)
        assert f"{name}: no formulas in this" in err
        if as_json:
            doc = json.loads(out)  # still one document
            assert doc["error"]["kind"] == "data" and name in doc["error"]["message"]
    rc, out, _ = run(capsys, str(good))
    assert rc == 0 and out.startswith("1 formula checked")


def test_standard_input_is_read(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD + BAD))
    rc, out, err = run(capsys, "-")
    assert rc == 1 and "-:2:" in err and out.startswith("2 formulas checked")


def _hook() -> dict:
    """The hook's fields, read from the yaml as plain `key: value` lines (no yaml library)."""
    fields = {}
    for line in (ROOT / ".pre-commit-hooks.yaml").read_text().splitlines():
        m = re.match(r"^[ -]*(\w+): (.*)$", line)
        if m:
            fields[m.group(1)] = m.group(2).strip()
    return fields


def test_the_pre_commit_hook_selects_the_files_a_folder_is_searched_for():
    hook = _hook()
    pattern = re.compile(hook["files"])
    suffixes = checkfiles.FOLDER_SUFFIXES | checkfiles.MARKDOWN_SUFFIXES | {
        ".txt", ".formulas", ".py", ".yaml", ".gradcli.bak", ".mdx", ".rst", ""}
    for suffix in sorted(suffixes):
        for name in (f"f{suffix}", f"docs/f{suffix.upper()}"):
            assert bool(pattern.search(name)) == (Path(name).suffix.lower() in checkfiles.FOLDER_SUFFIXES), name
    # the hook checks the repository as a folder (not each changed file, which may hold no formula)
    assert hook["entry"] == "gradcli check ." and hook["pass_filenames"] == "false"


def test_json_names_product_dimensions(tmp_path, capsys):
    # kron and vec give dimensions that are products of names: --json ended in an internal error
    (tmp_path / "f.gradcli").write_text("kron(A, B) wrt A where A: (p, q), B: (r, s)\n"
                                        "vec(X) where X: (m, n)\n")
    rc, out, err = run(capsys, str(tmp_path / "f.gradcli"), "--json")
    assert rc == 0, err
    shapes = [(r["shape"], r["derivatives"]) for r in json.loads(out)["results"]]
    assert shapes == [(["p*r", "q*s"], {"A": ["p*r", "q*s", "p", "q"]}), (["m*n"], {})]
