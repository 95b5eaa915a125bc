"""`gradcli check`: shape-check every formula in text and Markdown files, for CI.

Text files hold one formula a line (`#` starts a comment).  Markdown files hold formulas in
```` ```gradcli ```` fences.  A line may say what it expects after `=>`:

    ||y - X@theta||^2 wrt theta        => (), theta: (n,)
    X@W + b where X: (B, i), W: (i, o)  => (B, o)
    A@x where A: (m, n), x: (k)         => error: shape

`=> SHAPE` is the result's shape, `NAME: SHAPE` the shape of ∂f/∂NAME (default layout), and
`=> error` (or `error: parse` / `error: shape`) marks a formula that must fail.
"""

from __future__ import annotations

import re
from .record import Factory, record
from pathlib import Path

from .api import analyze, fmt_shape, parse_dims
from .errors import GradcliError

TEXT_SUFFIXES = {".txt", ".gradcli", ".formulas"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}


@record
class Entry:
    path: str
    line: int
    col: int  # column of the formula's first character in the file line
    text: str
    expect: str | None
    expect_col: int


@record
class Outcome:
    entry: Entry
    ok: bool
    message: str = ""
    column: int | None = None
    expected_failure: bool = False
    details: dict = Factory(dict)


def collect_files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and
                              f.suffix.lower() in TEXT_SUFFIXES | MARKDOWN_SUFFIXES))
        else:
            out.append(p)
    return out


def _split_expect(raw: str, start_col: int) -> tuple[str, str | None, int]:
    if "=>" not in raw:
        return raw, None, 0
    formula, _, expect = raw.partition("=>")
    return formula, expect.strip(), start_col + len(formula) + 2


def entries(path: Path) -> list[Entry]:
    text = path.read_text(encoding="utf-8", errors="replace")
    markdown = path.suffix.lower() in MARKDOWN_SUFFIXES
    out = []
    in_fence = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if markdown:
            if stripped.startswith("```"):
                in_fence = (not in_fence) and stripped[3:].strip().lower().startswith("gradcli")
                continue
            if not in_fence:
                continue
        if not stripped or stripped.startswith("#"):
            continue
        body = line.split(" #", 1)[0] if " #" in line else line
        col = len(line) - len(line.lstrip()) + 1
        formula, expect, ecol = _split_expect(body.strip(), col)
        out.append(Entry(str(path), lineno, col, formula.rstrip(), expect, ecol))
    return out


def _norm_shape(spec: str) -> tuple:
    return tuple(str(d) for d in parse_dims(spec, max_rank=8))


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def check_entry(entry: Entry) -> Outcome:
    expect = entry.expect
    wants_error = expect is not None and re.match(r"^error\b", expect) is not None
    try:
        problem = analyze(entry.text)
        derivs = {d.wrt: d for d in problem.derivative_shapes()}
    except GradcliError as err:
        col = entry.col + (err.column - 1 if err.column else 0)
        if wants_error:
            kind = expect.partition(":")[2].strip()
            if kind and kind != err.kind:
                return Outcome(entry, False, f"expected a {kind} error, got a {err.kind} error: "
                                             f"{err.message}", col)
            return Outcome(entry, True, err.message, col, expected_failure=True)
        return Outcome(entry, False, err.message, col)
    if wants_error:
        return Outcome(entry, False, "expected an error, but the formula is well-shaped "
                                     f"(result {fmt_shape(problem.shape)})", entry.col)
    details = {"shape": list(problem.shape), "derivatives": {k: list(d.shape) for k, d in derivs.items()}}
    if expect is None:
        return Outcome(entry, True, details=details)
    try:
        items = _split_top(expect)
        for item in items:
            name, sep, spec = item.partition(":")
            if sep and name.strip().isidentifier() and name.strip() != "scalar":
                name = name.strip()
                if name not in derivs:
                    return Outcome(entry, False, f"expectation names ∂f/∂{name}, but {name} is not "
                                                 "in the wrt clause", entry.expect_col)
                got = tuple(str(d) for d in derivs[name].shape)
                if got != _norm_shape(spec):
                    return Outcome(entry, False, f"∂f/∂{name} has shape {fmt_shape(derivs[name].shape)}, "
                                                 f"expected {fmt_shape(_norm_shape(spec))}", entry.expect_col)
            else:
                got = tuple(str(d) for d in problem.shape)
                if got != _norm_shape(item):
                    return Outcome(entry, False, f"result has shape {fmt_shape(problem.shape)}, "
                                                 f"expected {fmt_shape(_norm_shape(item))}", entry.expect_col)
    except GradcliError as err:
        return Outcome(entry, False, f"bad expectation: {err.message}", entry.expect_col)
    return Outcome(entry, True, details=details)


def check_paths(paths: list[str]) -> list[Outcome]:
    files = collect_files(paths)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise GradcliError("usage", f"no such file: {missing[0]}")
    return [check_entry(e) for f in files for e in entries(f)]
