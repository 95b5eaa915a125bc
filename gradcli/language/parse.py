"""Text → parse tree (Lark's LALR tables) → `syntax` nodes.

The grammar lives in `grammar/gradcli.lark`; Lark turns it into LALR tables that ship in the
package (see `lalr.py`), and this module says how each rule becomes a node.  The builder runs inside the LR
parser (no intermediate tree, no recursion), so a formula with thousands of nested parentheses
parses without a stack overflow.  Errors become one `GradcliError` with the column of the
offending character.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from pathlib import Path

from ..errors import GradcliError, parse_error
from .lalr import Parser, TablesError, Token, UnexpectedCharacters, UnexpectedToken, load_tables
from .shapes import product
from .structures import canonical, known_words
from .syntax import Binary, Call, Decl, Dim, Formula, Keyword, Node, Norm, Num, ShapeSpec, Sym, Transpose, Unary

KEYWORDS = {"wrt", "where", "scalar"}


def grammar_path() -> Path:
    """The grammar file: packaged beside the code in a wheel, at the repo root in a checkout."""
    here = Path(__file__).resolve().parent.parent  # the gradcli package
    for candidate in (here / "grammar" / "gradcli.lark", here.parent / "grammar" / "gradcli.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("gradcli.lark not found next to the gradcli package")


MAX_DIMENSION = 2**63 - 1  # numpy's limit (an intp); beyond it no array can have the shape


def dimension(digits: str, column: int | None = None) -> int:
    """A dimension written in digits (a where clause, -s): an int no larger than an array
    dimension can be; a 5000-digit one is an error, not a 5000-digit int."""
    if len(digits) > 19 or int(digits) > MAX_DIMENSION:
        raise GradcliError("parse" if column else "usage",
                           f"dimension {_abbreviated(digits)} is too large (at most 2^63 − 1)", column)
    return int(digits)


def _abbreviated(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}…{text[-4:]} ({len(text)} characters)"


_OPERATOR_SPELLINGS = {"**": "^", "−": "-", "⊙": "*", "·": "*", "⊘": "/"}  # -> the ASCII operator


class _Builder:
    """One method per grammar alias (children inline, anonymous tokens dropped); each returns a
    `syntax` node."""

    def number(self, tok: Token) -> Num:
        value = float(tok)
        if value == float("inf"):  # 1e400: not silently infinite
            raise parse_error(f"number {_abbreviated(str(tok))} is too large (float64 ends near 1.8e308)",
                              tok.column)
        return Num(tok.column, value, str(tok))

    def symbol(self, tok: Token) -> Sym:
        if tok in ("wrt", "where"):
            raise parse_error(f"'{tok}' must follow a complete formula", tok.column)
        return Sym(tok.column, str(tok))

    def binary(self, left: Node, op: Token, right: Node) -> Binary:
        text = str(op)
        return Binary(op.column, _OPERATOR_SPELLINGS.get(text, text), left, right)

    def superscript(self, base: Node, sup: Token) -> Binary:
        value = 2.0 if sup == "²" else 3.0
        return Binary(sup.column, "^", base, Num(sup.column, value, str(int(value))))

    def unary(self, op: Token, operand: Node) -> Unary:
        return Unary(op.column, "-" if op in ("-", "−") else "+", operand)

    def transpose(self, operand: Node, tok: Token) -> Transpose:
        return Transpose(tok.column, operand)

    def group(self, lpar: Token, expr: Node, rpar: Token) -> Node:
        return expr

    def norm(self, bar: Token, expr: Node, _bar2: Token, sub: Token | None = None) -> Norm:
        kind = "" if sub is None else str(sub).lstrip("_")
        kind = {"fro": "F", "₁": "1", "₂": "2", "∞": "inf"}.get(kind, kind)
        return Norm(bar.column, expr, kind)

    def keyword(self, name: Token, _eq: Token, value: Node) -> Keyword:
        return Keyword(name.column, str(name), value)

    def args(self, *exprs: Node) -> tuple[Node, ...]:
        return tuple(exprs)

    def call(self, name: Token, _lpar: Token, args: tuple[Node, ...], _rpar: Token) -> Call:
        text = str(name)
        base = text.rstrip("'")
        return Call(name.column, base, args, len(text) - len(base))

    def scalar_shape(self, *_: Token) -> ShapeSpec:
        return ()

    def dims_shape(self, *dims: Token) -> ShapeSpec:
        if len(dims) == 1 and dims[0] == "scalar":  # `where a: scalar` (a keyword only here)
            return ()
        return tuple(self._dim(d) for d in dims)

    def dim_product(self, *parts: Token) -> Dim:
        """m*n in a where clause: a product dimension (shapes.product), kron's and vec's sizes."""
        return product(*(self._dim(p) for p in parts if p.type != "STAR"))

    @staticmethod
    def _dim(d: Token | Dim) -> Dim:
        if not isinstance(d, Token):
            return d  # a product, made by dim_product
        return dimension(str(d), d.column) if d.type == "INT" else str(d)

    def structure(self, word: Token) -> tuple[str, int]:
        found = canonical(str(word))
        if found is None:
            raise parse_error(f"unknown structure {str(word)!r}: expected {known_words()}", word.column)
        return (found, word.column)

    def decl(self, name: Token, shape: ShapeSpec, structure: tuple[str, int] = ("", 0)) -> Decl:
        return Decl(str(name), shape, name.column, *structure)

    def wrt_clause(self, _kw: Token, *names: Token) -> tuple[str, tuple[tuple[str, int], ...]]:
        return ("wrt", tuple((str(n), n.column) for n in names))

    def where_clause(self, _kw: Token, *decls: Decl) -> tuple[str, tuple[Decl, ...]]:
        return ("where", tuple(decls))

    def start(self, expr: Node, *clauses: tuple[str, Any]) -> tuple[Node, Any, Any]:
        parts = dict(clauses)
        return (expr, parts.get("wrt", ()), parts.get("where", ()))


_BUILDER = _Builder()


@lru_cache(maxsize=1)
def _parser() -> Parser:
    """The LR parser over the tables shipped in the package (built from the grammar by Lark with
    `python -m gradcli.language.lalr`): nothing outside the package is read."""
    try:
        return Parser(load_tables())
    except TablesError as exc:  # a broken installation: one message, never a wrong parse
        raise GradcliError("internal", f"internal error: {exc}") from None


_TOKEN_WORDS = {
    "RPAR": "')'", "LPAR": "'('", "NORMBAR": "'||'", "PLUS": "'+'", "MINUS": "'-'",
    "STAR": "'*'", "SLASH": "'/'", "AT": "'@'", "POW": "'^'", "TICK": "a transpose", "DOTT": "'.T'",
    "NAME": "a name", "INT": "a number", "FLOAT": "a number", "COMMA": "','", "COLON": "':'",
    "WRT": "'wrt'", "WHERE": "'where'", "NORMSUB": "a norm subscript", "DERIVNAME": "a derivative name",
    "EQ": "'='",
    "$END": "the end of the formula",
}


_BRACKET = re.compile(r"[()]|\|+|‖")


def _check_brackets(text: str) -> None:
    """Unbalanced ( ) and || are the commonest typos: name the column of the culprit.  Norm
    bars are counted as the lexer reads them: a run of k '|' holds k // 2 bars, so
    `||||x||*y||` (gradcli's own output for ‖‖x‖y‖) has four; each '‖' is one."""
    opened: list[int] = []
    last_bar, bars = -1, 0
    for m in _BRACKET.finditer(text):
        ch, i = m.group(), m.start()
        if ch == "(":
            opened.append(i)
        elif ch == ")":
            if not opened:
                raise parse_error("unbalanced parentheses: this ')' has no matching '('", i + 1)
            opened.pop()
        else:
            n = 1 if ch == "‖" else len(ch) // 2
            if n:
                bars += n
                last_bar = i + (0 if ch == "‖" else 2 * (n - 1))
    if opened:
        raise parse_error("unbalanced parentheses: this '(' is never closed", opened[-1] + 1)
    if bars % 2:
        raise parse_error("unbalanced norm bars: this '||' is never closed", last_bar + 1)


# a name as the grammar spells it (NAME in grammar/gradcli.lark): symbols and functions alike
NAME = re.compile(r"[A-Za-z\u0391-\u03A9\u03B1-\u03C9][A-Za-z0-9_\u0391-\u03A9\u03B1-\u03C9]*\Z")


def is_name(text: str) -> bool:
    """Whether `text` is a name the formula language can spell (for -s, -d and --fn)."""
    return bool(NAME.match(text)) and text not in KEYWORDS


def _describe(exc: Exception, text: str) -> GradcliError:
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        if ch == "_" and text[:exc.pos_in_stream].rstrip().endswith(("||", "‖")):
            return parse_error("unknown norm subscript: a norm is written ||a||, ||a||_1, ||a||_2, "
                               "||a||_inf, ||A||_F or ||A||_* (numpy's ord)", exc.column)
        return parse_error(f"unexpected character {ch!r}", exc.column)
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        return parse_error("the formula ends too early: an operand is missing", len(text.rstrip()) + 1)
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type in ("WRT", "WHERE"):
            return parse_error(f"'{tok}' must follow a complete formula", tok.column)
        operators = {"PLUS", "STAR", "AT", "SLASH"}
        operands = {"NAME", "INT", "FLOAT", "LPAR", "NORMBAR"}
        if exc.expected & operators and tok.type in operands:
            return parse_error(f"missing operator before {str(tok)!r} (write * or @ for products)",
                               tok.column)
        if exc.expected & operands:
            return parse_error(f"unexpected {str(tok)!r}: expected a name, a number or '('", tok.column)
        expected = sorted({_TOKEN_WORDS.get(t, t) for t in exc.expected if not t.startswith("__")})
        hint = f"; expected {', '.join(expected[:6])}" if expected else ""
        return parse_error(f"unexpected {str(tok)!r}{hint}", tok.column)
    return parse_error(str(exc).splitlines()[0], getattr(exc, "column", None))


# What people paste from numpy code, and what to write instead (each checked before parsing, so
# the message names the habit rather than the character the parser stumbles on).
_HABITS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"(?<![\w.])(?:np|numpy)\.(?!T\b)(?:linalg\.)?"),
     lambda m: f"drop the '{m.group(0)}' prefix: gradcli's functions are numpy's, written without it"),
    (re.compile(r"\.dot\s*\("), lambda m: "a.dot(b) is not supported: write a @ b (or dot(a, b) for vectors)"),
    (re.compile(r"(\^|\*\*)\s*T(?![\w(])"),
     lambda m: f"'{m.group(0)}' is a power, not a transpose: write x' or x.T (x{m.group(1)}(T) for a power)"),
)


def _check_habits(text: str) -> None:
    for pattern, message in _HABITS:
        m = pattern.search(text)
        if m:
            raise parse_error(message(m), m.start() + 1)


def clean(text: str) -> str:
    """The formula a line holds: a leading byte-order mark and a trailing `# comment` (as in
    formula files) removed; columns of what remains are unchanged."""
    text = text.removeprefix("\ufeff")
    if "#" in text:
        text = text.split("#", 1)[0].rstrip()
    return text


def parse(text: str) -> Formula:
    """Parse one formula line. Raises GradcliError(kind='parse') with a column."""
    text = clean(text)
    if not text.strip():
        raise parse_error("empty formula", 1).with_text(text)
    lead = text.lstrip()
    if lead.split(None, 1)[0] in ("wrt", "where"):
        raise parse_error("the formula is missing before this keyword", len(text) - len(lead) + 1).with_text(text)
    try:
        _check_brackets(text)
        _check_habits(text)
        expr, wrt, where = _parser().parse(text, _BUILDER)
    except GradcliError as err:
        raise err.with_text(text)
    except (UnexpectedCharacters, UnexpectedToken) as exc:
        raise _describe(exc, text).with_text(text) from None
    except RecursionError:
        raise parse_error("formula is nested too deeply", None).with_text(text) from None
    for name, col in wrt:
        if name in KEYWORDS:
            raise parse_error(f"'{name}' is a keyword, not a symbol", col).with_text(text)
    return Formula(text, expr, tuple(wrt), tuple(where))
