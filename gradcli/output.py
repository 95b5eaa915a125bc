"""Human output: plain text lines, given colour by rich only when a terminal will show it.

Why this split: the text is the product and is the same everywhere (a pipe, a file, a CI log, the
tests, the README's checked examples); colour is a terminal nicety.  Importing rich costs about
20 ms, a sixth of a one-liner's whole run, so it is loaded only for a terminal.  Layout (the
symbol table's columns) is computed here once for both, so the two can never disagree.

A line is a sequence of parts: a string, or a (string, rich style) pair.  Every part is passed
through `errors.printable` (newlines kept): text from outside — a file name, a line of a file —
can never move the cursor, recolour the terminal or reorder what is shown, even where a caller
forgot to escape it.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, TextIO

from .errors import printable

if TYPE_CHECKING:
    from rich.console import Console

Part = Any  # str | tuple[str, str]


def wants_style(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (https://no-color.org) or TERM is dumb."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def plain(parts: tuple[Part, ...]) -> str:
    return "".join(p if isinstance(p, str) else p[0] for p in parts)


def _safe(part: Part) -> Part:
    return printable(part, keep_lines=True) if isinstance(part, str) else (printable(part[0], True), part[1])


class Printer:
    """Writes lines to a stream (stdout or stderr, looked up when the printer is made)."""

    def __init__(self, stderr: bool = False):
        self.stream = sys.stderr if stderr else sys.stdout
        self.styled = wants_style(self.stream)
        self._console: Console | None = None

    def __call__(self, *parts: Part) -> None:
        parts = tuple(_safe(p) for p in parts)
        if self.styled:
            from rich.text import Text

            self.console().print(Text.assemble(*parts), soft_wrap=True)
            return
        text = plain(parts) + "\n"
        try:
            self.stream.write(text)
        except UnicodeEncodeError:  # a stream that cannot take ∂ or θ: escapes, never a traceback
            enc = getattr(self.stream, "encoding", None) or "ascii"
            self.stream.write(text.encode(enc, "backslashreplace").decode(enc))

    def console(self) -> Console:
        """rich's console on the same stream (also used by progress bars on a terminal)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False, soft_wrap=True)
        return self._console

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        print_table(self, header, rows)


def print_table(emit: Callable[..., None], header: list[str], rows: list[list[str]]) -> None:
    """Columns left-aligned, two spaces apart, the header in bold."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    emit((line(header), "bold"))
    for r in rows:
        emit(line(r))


class Commented:
    """The annotation lines of `--latex` output: each a LaTeX comment (`% shape (n,)`) in ASCII,
    so that the whole output pastes into a LaTeX source; blank lines stay blank."""

    def __init__(self, printer: Printer):
        self.printer = printer

    def __call__(self, *parts: Part) -> None:
        if not parts:
            self.printer()
            return
        from .latexdoc import ascii_comment

        parts = tuple(ascii_comment(p) if isinstance(p, str) else (ascii_comment(p[0]), p[1]) for p in parts)
        text = plain(parts)
        if not text.strip():
            self.printer()
            return
        if "\n" in text:  # a printed array: every line of it commented
            for line in text.split("\n"):
                self.printer("% " + line)
            return
        self.printer("% ", *parts)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        """Cells made ASCII before the columns are measured, so they stay aligned."""
        from .latexdoc import ascii_comment

        print_table(self, [ascii_comment(h) for h in header], [[ascii_comment(c) for c in r] for r in rows])
