"""`gradcli check`: shape-check every formula in text and Markdown files, for CI.

Text files hold one formula a line (`#` starts a comment); `-` is standard input.  Markdown
files hold formulas in ```` ```gradcli ```` or `~~~gradcli` fences.  A line may say what it
expects after `=>`:

    ||y - X@theta||^2 wrt theta        => (), theta: (n,)
    X@W + b where X: (B, i), W: (i, o)  => (B, o)
    A@x where A: (m, n), x: (k)         => error: shape

`=> SHAPE` is the result's shape, `NAME: SHAPE` the shape of ∂f/∂NAME (default layout),
`NAME: EXPR` a stated derivative, checked on random draws like `grad --claim`, and
`=> error` (or `error: parse` / `error: shape`) marks a formula that must fail.  Expected shapes
match up to a consistent renaming of symbolic dimensions (SPEC §2): `theta: (p,)` matches
gradcli's `(n,)`, as long as p stands for n everywhere on the line and for nothing else.

Files are read line by line and outcomes yielded one at a time, so time and memory stay linear
and flat on a 50 MB file; each distinct formula text is analysed once (`Analyses`).
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..api import analyze, default_layout, derivative_dims, fmt_shape, parse_dims
from ..calculus.columns import is_unit
from ..language.shapes import SCALAR, Dim
from .claims import check_file_claim, is_claim
from ..errors import GradcliError, printable
from ..record import Factory, record

if TYPE_CHECKING:
    from ..api import Problem

MARKDOWN_SUFFIXES = {".md", ".markdown"}  # read for their ```gradcli fences
# What a folder is searched for (any other file is read only when named on the command line,
# as one formula a line); `.pre-commit-hooks.yaml` selects the same files (a test keeps them
# in step).
FOLDER_SUFFIXES = {".gradcli"} | MARKDOWN_SUFFIXES


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
    details: dict[str, Any] = Factory(default_factory=dict)
    warnings: list[str] = Factory(default_factory=list)


STDIN_NAMES = {"-", "/dev/stdin"}


def collect_files(paths: list[str]) -> list[tuple[str, list[str]]]:
    """The files to read, in order, grouped by the path named: a folder's formula files
    (`folder_files`); `-` and /dev/stdin stand for standard input (read once).  A path that is
    neither a file nor a folder is a usage error naming it; a folder with no formula file is an
    error (a CI job must not pass on a mistyped or empty folder)."""
    out: list[tuple[str, list[str]]] = []
    for name in paths:
        if name in STDIN_NAMES:
            if any(named in STDIN_NAMES for named, _ in out):
                raise GradcliError("usage", "standard input can be read only once")
            out.append((name, [name]))
            continue
        p = Path(name)
        if p.is_dir():
            found = folder_files(p)
            if not found:
                raise no_formulas(name)
            out.append((name, found))
        elif p.exists() and not p.is_file() and not _is_stream(p):
            raise GradcliError("usage", f"not a file or directory: {printable(name)}")
        elif not p.exists():
            raise GradcliError("usage", f"no such file or directory: {printable(name)}")
        else:
            out.append((name, [name]))
    for _, files in out:  # unreadable files fail before any output (pipes are not opened twice)
        for name in files:
            if name not in STDIN_NAMES and Path(name).is_file():
                try:
                    open(name, "rb").close()
                except OSError as exc:
                    raise GradcliError("usage", f"cannot read {printable(name)}: {exc.strerror or exc}") from None
    return out


FOLDER_RULE = ("a folder is searched for *.gradcli files and ```gradcli fences in Markdown files, "
               "only those git tracks inside a git repository")


def no_formulas(name: str) -> GradcliError:
    """`0 formulas checked` for a path the user named is a failure, not a pass."""
    what = "folder" if Path(name).is_dir() else "file"
    rule = f" ({FOLDER_RULE})" if what == "folder" else \
        " (a Markdown file is read for ```gradcli fences, any other file as one formula a line)"
    return GradcliError("data", f"{printable(name)}: no formulas in this {what}{rule}")


def folder_files(root: Path) -> list[str]:
    """The formula files of a folder, sorted: `*.gradcli` and Markdown files, never inside a
    hidden folder or a virtual environment; inside a git repository only the files git tracks
    (a build folder, a downloaded package or a scratch file is nobody's formula file)."""
    tracked = _git_tracked(root)
    candidates = _walk(root) if tracked is None else tracked
    return sorted(f for f in candidates if Path(f).suffix.lower() in FOLDER_SUFFIXES
                  and not _excluded(root, f) and os.path.isfile(f))


def _git_tracked(root: Path) -> list[str] | None:
    """The files git tracks below root (paths starting with root), or None when root is not in
    a git work tree or git is not installed (then the folder is walked)."""
    import subprocess

    try:
        # core.fsmonitor off: a repository's own config could name a program for git to run
        proc = subprocess.run(["git", "-C", str(root), "-c", "core.fsmonitor=false", "ls-files", "-z",
                               "--", "."],
                              capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    # paths relative to root (git's working directory here), exactly as stored: -z, no quoting
    return [os.path.join(str(root), os.fsdecode(raw)) for raw in proc.stdout.split(b"\0") if raw]


def _walk(root: Path) -> list[str]:
    """Every file below root outside hidden folders and virtual environments; links to folders
    are not followed, and a folder that cannot be read is a usage error naming it (a CI job must
    not pass because part of its tree went unread)."""
    def unreadable(exc: OSError) -> None:
        raise GradcliError("usage", f"cannot read {printable(str(exc.filename))}: {exc.strerror or exc}")

    found: list[str] = []
    for folder, subfolders, files in os.walk(root, onerror=unreadable):
        subfolders[:] = sorted(d for d in subfolders if not _hidden_or_venv(os.path.join(folder, d)))
        found.extend(os.path.join(folder, f) for f in files)
    return found


def _hidden_or_venv(folder: str) -> bool:
    """A hidden folder (`.git`, `.venv`, `.tox`) or a virtual environment (it has `pyvenv.cfg`)."""
    return os.path.basename(folder).startswith(".") or os.path.exists(os.path.join(folder, "pyvenv.cfg"))


def _excluded(root: Path, path: str) -> bool:
    """Whether a file below root lies in a hidden folder or a virtual environment below root
    (git may track either: a committed `.venv`, a `.github` folder)."""
    parts = Path(os.path.relpath(path, root)).parts[:-1]
    folder = str(root)
    for part in parts:
        folder = os.path.join(folder, part)
        if part != ".." and _hidden_or_venv(folder):
            return True
    return False


def _is_stream(p: Path) -> bool:
    """A pipe or character device (`<(generate)`, /dev/fd/3): read like a file."""
    import stat

    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def read_lines(name: str) -> Iterator[str]:
    """A file's lines (standard input's for `-`), one at a time so that a 50 MB file is never
    held whole: UTF-8 with a leading byte-order mark dropped, bytes that are not UTF-8 as
    U+FFFD (which the parser then points at), lines ending at \\n, \\r\\n or \\r as an editor
    counts them.  A file that cannot be read is a usage error naming it (escaped: a name can
    hold anything)."""
    try:
        if name in STDIN_NAMES:
            yield from _stdin_lines()
        else:
            with open(name, encoding="utf-8-sig", errors="replace", newline=None) as stream:
                yield from _lines(stream)
    except OSError as exc:
        raise GradcliError("usage", f"cannot read {printable(name)}: {exc.strerror or exc}") from None
    except ValueError:  # a closed stream
        raise GradcliError("usage", f"cannot read {printable(name)}: it is closed") from None
    except _LineTooLong as exc:
        raise GradcliError("data", f"{printable(name)}:{exc.lineno}: a line longer than {MAX_LINE:,} "
                                   "characters: not a formula file; the check stops here") from None


def _stdin_lines() -> Iterator[str]:
    raw: Any = getattr(sys.stdin, "buffer", sys.stdin)
    if raw is None:
        raise GradcliError("usage", "standard input is closed: nothing to check")
    if isinstance(raw, io.TextIOBase):  # a text stream in place of standard input
        yield from _lines(raw)
        return
    stream = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline=None)
    try:
        yield from _lines(stream)
    finally:
        stream.detach()  # standard input itself stays open


MAX_LINE = 1 << 20  # characters in one line: more is no formula file (/dev/zero, a binary)


class _LineTooLong(Exception):
    def __init__(self, lineno: int):
        super().__init__(lineno)
        self.lineno = lineno


def _lines(stream: IO[str] | io.TextIOBase) -> Iterator[str]:
    """Lines read at most MAX_LINE characters at a time, so that a file with no newline
    (/dev/zero, 300 MB of one line) never grows memory: such a line ends the run (_LineTooLong)."""
    first = True
    lineno = 0
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        lineno += 1
        if len(line) > MAX_LINE:
            raise _LineTooLong(lineno)
        if first:  # a text stream's own byte-order mark
            line, first = line.removeprefix("\ufeff"), False
        yield line.rstrip("\n")


def _split_expect(raw: str, start_col: int) -> tuple[str, str | None, int]:
    if "=>" not in raw:
        return raw, None, 0
    formula, _, expect = raw.partition("=>")
    return formula, expect.strip(), start_col + len(formula) + 2


_FENCE = re.compile(r"^ *(`{3,}|~{3,})(.*)$")


def _fenced_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, line) of the lines inside ```gradcli or ~~~gradcli fences, as CommonMark
    reads fences: a fence closes only with the same character, at least as many of them, and
    nothing else on the line, so a ```gradcli shown inside a ````markdown example is not read."""
    fence: tuple[str, int, bool] | None = None  # (character, length, is gradcli) of the open fence
    for lineno, line in enumerate(lines, start=1):
        m = _FENCE.match(line.lstrip() if fence is None else line.strip())
        if fence is None:
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                words = m.group(2).split()
                fence = (m.group(1)[0], len(m.group(1)), bool(words) and words[0].lower() == "gradcli")
            continue
        if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1] and not m.group(2).strip():
            fence = None
        elif fence[2]:
            yield lineno, line


def entries(name: str, lines: Iterable[str] | None = None) -> Iterator[Entry]:
    """The formulas of one file, one at a time: every non-comment line of a text file, the
    lines inside gradcli fences of a Markdown file."""
    lines = read_lines(name) if lines is None else lines
    markdown = Path(name).suffix.lower() in MARKDOWN_SUFFIXES
    for lineno, line in (_fenced_lines(lines) if markdown else enumerate(lines, start=1)):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        body = line.split(" #", 1)[0] if " #" in line else line
        col = len(line) - len(line.lstrip()) + 1
        formula, expect, ecol = _split_expect(body.strip(), col)
        yield Entry(name, lineno, col, formula.rstrip(), expect, ecol)


def _norm_shape(spec: str) -> tuple[Dim, ...]:
    return tuple(parse_dims(spec, max_rank=8))


class Renaming:
    """One bijection between gradcli's symbolic dimensions and an expectation's names, built up
    across a line: f's shape and every `NAME: SHAPE` must agree on it.  Numbers match numbers."""

    def __init__(self) -> None:
        self.fwd: dict[str, str] = {}   # gradcli's name -> the expectation's
        self.back: dict[str, str] = {}  # the expectation's name -> gradcli's

    def conflict(self, got: tuple[Dim, ...], want: tuple[Dim, ...]) -> str | None:
        """Why got and want do not match under this renaming ('' for a plain mismatch), or
        None when they do — and then the renaming is extended."""
        gots = tuple(d if isinstance(d, int) else str(d) for d in got)
        wants = tuple(d if isinstance(d, int) else str(d) for d in want)
        if len(gots) != len(wants):
            return ""
        fwd, back = dict(self.fwd), dict(self.back)
        for g, w in zip(gots, wants):
            if isinstance(g, int) or isinstance(w, int):
                if g != w:
                    return ""
                continue
            if fwd.setdefault(g, w) != w:
                return f"{w} and {fwd[g]} both stand for {g}" if g in self.fwd else ""
            if back.setdefault(w, g) != g:
                return f"{w} already stands for {back[w]}" if w in self.back else ""
        self.fwd, self.back = fwd, back
        return None


def _mismatch(what: str, got: tuple[Dim, ...], want: tuple[Dim, ...], why: str) -> str:
    text = f"{what} has shape {fmt_shape(got)}, expected {fmt_shape(want)}"
    return text + (f" (dimension names must correspond one to one across the line: {why})" if why else "")


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


def _shapes(problem: Problem) -> tuple[tuple[Dim, ...], dict[str, tuple[Dim, ...]]]:
    """f's shape and each derivative's (default layout), from the shapes alone: what
    `Problem.derivative_shapes` says, without building the formula's simplified graph, which
    a check never prints (SPEC §1: a 1×1 f is differentiated as the scalar it holds)."""
    f_ty = problem.typed.ty
    target = SCALAR if is_unit(f_ty) else f_ty
    layout = default_layout(target, None)
    return f_ty.full_dims, {name: derivative_dims(target, problem.typed.symbols[name].ty, layout)
                            for name in problem.wrt}


def check_entry(entry: Entry, analyses: Callable[[str], Problem] | None = None) -> Outcome:
    expect = entry.expect
    wants_error = expect is not None and re.match(r"^error\b", expect) is not None
    try:
        problem = (analyses or analyze)(entry.text)
        shape, derivs = _shapes(problem)
    except GradcliError as err:
        col = entry.col + (err.column - 1 if err.column else 0)
        if wants_error:
            kind = (expect or "").partition(":")[2].strip()
            if kind and kind != err.kind:
                return Outcome(entry, False, f"expected a {kind} error, got a {err.kind} error: "
                                             f"{err.message}", col)
            return Outcome(entry, True, err.message, col, expected_failure=True)
        return Outcome(entry, False, err.message, col)
    if wants_error:
        return Outcome(entry, False, "expected an error, but the formula is well-shaped "
                                     f"(result {fmt_shape(shape)})", entry.col)
    def names(dims: tuple[Dim, ...]) -> list[int | str]:  # JSON: a product of names (kron, vec) as "m*n"
        return [d if isinstance(d, int) else str(d) for d in dims]

    details = {"shape": names(shape), "derivatives": {k: names(d) for k, d in derivs.items()}}
    if expect is None:
        return Outcome(entry, True, details=details)
    try:
        items = _split_top(expect)
        renaming = Renaming()
        for item in items:
            name, sep, spec = item.partition(":")
            if sep and name.strip().isidentifier() and name.strip() != "scalar":
                name = name.strip()
                if name not in derivs:
                    return Outcome(entry, False, f"expectation names ∂f/∂{name}, but {name} is not "
                                                 "in the wrt clause", entry.expect_col)
                if is_claim(spec, problem):  # a stated derivative, checked numerically
                    failed = check_file_claim(entry, name, spec, details)
                    if failed:
                        return Outcome(entry, False, failed[0], failed[1], details=details)
                    continue
                what, got, want = f"∂f/∂{name}", derivs[name], _norm_shape(spec)
            else:
                what, got, want = "result", shape, _norm_shape(item)
            why = renaming.conflict(got, want)
            if why is not None:
                return Outcome(entry, False, _mismatch(what, got, want, why), entry.expect_col)
    except GradcliError as err:
        return Outcome(entry, False, f"bad expectation: {err.message}", entry.expect_col)
    return Outcome(entry, True, details=details)


class Analyses:
    """`analyze(text)` for the check loop, each distinct text analysed once per run.

    Safe to share: `check` passes no shapes, data or options, so an analysis is a function of
    the formula's text alone (warnings included, kept to be reported at every line they
    concern).  A failed analysis is raised afresh each time.  Only the most recent `size`
    texts are kept, so a file of a million distinct formulas does not hold a million graphs."""

    def __init__(self, size: int = 4096):
        from collections import OrderedDict

        self._memo: OrderedDict[str, tuple[Problem | GradcliError, list[str]]] = OrderedDict()
        self._size = size
        self.warnings: list[str] = []  # of the text analysed last

    def __call__(self, text: str) -> Problem:
        hit = self._memo.get(text)
        if hit is None:
            import warnings

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result: Problem | GradcliError
                try:
                    result = analyze(text)
                    _shapes(result)  # fails here rather than inside the comparisons
                except GradcliError as err:
                    result = err
            hit = self._memo[text] = (result, [str(w.message) for w in caught])
            if len(self._memo) > self._size:
                self._memo.popitem(last=False)
        else:
            self._memo.move_to_end(text)
        result, self.warnings = hit
        if isinstance(result, GradcliError):
            raise GradcliError(result.kind, result.message, result.column, result.text, result.line)
        return result


def check_paths(paths: list[str]) -> Iterator[Outcome]:
    """Outcomes of every formula in `paths`, one at a time (memory stays flat however long the
    files): every path is checked for existence first, so a mistyped name fails before any
    output.  A bug met on one formula is that formula's failure, not the end of the run."""
    return _outcomes(collect_files(paths))


def _outcomes(groups: list[tuple[str, list[str]]]) -> Iterator[Outcome]:
    analyses = Analyses()
    empty = []  # named paths that held no formula: an error once everything else is reported
    for named, files in groups:
        count = 0
        for entry in (e for name in files for e in entries(name)):
            count += 1
            analyses.warnings = []
            try:
                outcome = check_entry(entry, analyses)
            except RecursionError:
                outcome = Outcome(entry, False, "the formula is nested too deeply", entry.col)
            except Exception as exc:  # a bug in gradcli: reported at its line, the run goes on
                outcome = Outcome(entry, False, f"internal error ({type(exc).__name__}: {exc}); please "
                                                "report this formula", entry.col)
            outcome.warnings = list(analyses.warnings)
            yield outcome
        if not count and named not in STDIN_NAMES:
            empty.append(named)
    if empty:
        raise no_formulas(empty[0])
