"""The one exception type every stage raises, so the CLI can turn any failure into one message.

A `GradcliError` knows its kind (the JSON `error.kind` of SPEC §2), the column in the formula
(1-based, as editors count) and the formula text, so the caret display is built in one place.
"""

from __future__ import annotations


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
            return f"error: {self.message}"
        line = self.text.splitlines()[self.line - 1] if self.text.strip() else self.text
        pad = "".join("\t" if ch == "\t" else " " for ch in line[: self.column - 1])
        return f"  {line}\n  {pad}^\nerror: {self.message}"

    def to_json(self) -> dict:
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
