"""The one exception type every stage raises, so the CLI can turn any failure into one message.

A `GradcliError` knows its kind (the JSON `error.kind` of SPEC §2), the column in the formula
(1-based, as editors count) and the formula text, so the caret display is built in one place.
"""

from __future__ import annotations

from typing import Any

# Characters a terminal acts on rather than shows: C0 controls (escape sequences start with ESC),
# DEL, C1 controls (CSI is U+009B), line and paragraph separators, and the bidirectional
# formatting characters that reorder what is shown ("Trojan Source").  Lone surrogates (a file
# name that is not UTF-8) are escaped too: no stream can encode them.
_UNSAFE_RANGES = ((0x00, 0x1F), (0x7F, 0x9F), (0x061C, 0x061C), (0x200E, 0x200F), (0x2028, 0x202E),
                  (0x2066, 0x2069), (0xD800, 0xDFFF))


def _shown(ch: str, keep: str) -> str:
    code = ord(ch)
    if ch in keep or not any(lo <= code <= hi for lo, hi in _UNSAFE_RANGES):
        return ch
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep_lines: bool = False) -> str:
    """`text` from outside gradcli (a file name, a line of a file, an archive member's name, a
    formula) made safe to show on a terminal: every control or bidi-formatting character
    becomes a visible escape (`\\x1b`, `\\u202e`), so what is printed is what is there, on one
    line.  A tab stays (it only moves the cursor).  `keep_lines` also keeps newlines, for text
    that is several lines already (the last line of defence in the printer)."""
    text = str(text)
    if text.isprintable():  # the usual case, and fast: every character escaped is unprintable
        return text
    keep = "\t\n" if keep_lines else "\t"
    return "".join(_shown(ch, keep) for ch in text)


WINDOW = 160  # the most of a formula line an error shows


def excerpt(line: str, column: int, width: int = WINDOW) -> tuple[str, int]:
    """A line as an error shows it, and the column within what is shown: the whole line when
    short, else `width` characters around the column between ellipses (a 50 MB line is not
    echoed whole)."""
    if len(line) <= width:
        return line, column
    start = max(0, min(column - 1 - width // 2, len(line) - width))
    shown = ("…" if start else "") + line[start:start + width] + ("…" if start + width < len(line) else "")
    return shown, column - start + (1 if start else 0)


class OutputError(Exception):
    """Standard output or standard error cannot be written (closed, a full disk, a closed pipe).
    Not a GradcliError: the failure is the stream's, and reporting it on that same stream would
    fail again; the entry point reports it where it still can."""

    def __init__(self, stream: str, reason: str, broken_pipe: bool = False):
        super().__init__(f"cannot write to standard {stream}: {reason}")
        self.stream = stream
        self.broken_pipe = broken_pipe
        self.exit_code: int | None = None  # of a failure being reported when the stream failed


class GradcliError(Exception):
    """A user-facing error: kind is one of parse, shape, data, usage, math."""

    def __init__(self, kind: str, message: str, column: int | None = None,
                 text: str | None = None, line: int = 1):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.column = column
        self.text = text
        self.line = line

    def with_text(self, text: str) -> "GradcliError":
        """Attach the formula text (stages below the parser know columns, not the text)."""
        if self.text is None:
            self.text = text
        return self

    def caret_view(self) -> str:
        """The formula, a caret under the offending column, and the message."""
        if self.text is None or self.column is None:
            return f"error: {printable(self.message)}"
        line = self.text.splitlines()[self.line - 1] if self.text.strip() else self.text
        line, column = excerpt(line, self.column)
        # the caret counts what is shown: an escaped character is several columns wide
        pad = "".join("\t" if ch == "\t" else " " * len(printable(ch)) for ch in line[: column - 1])
        return f"  {printable(line)}\n  {pad}^\nerror: {printable(self.message)}"

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {"error": {"kind": self.kind, "message": self.message,
                          "line": self.line if self.column is not None else None,
                          "column": self.column}}


def parse_error(message: str, column: int | None = None) -> GradcliError:
    return GradcliError("parse", message, column)


def shape_error(message: str, column: int | None = None) -> GradcliError:
    return GradcliError("shape", message, column)


def data_error(message: str) -> GradcliError:
    return GradcliError("data", message)


def math_error(message: str) -> GradcliError:
    return GradcliError("math", message)
