"""A small LALR(1) runtime for the parse tables Lark builds from `grammar/gradcli.lark`.

Why: importing Lark and building the tables costs about 70 ms, most of a symbolic one-liner.
Lark stays the grammar's compiler, but at build time: `python -m gradcli.tablegen` asks Lark for
the tables (its terminals in the order its basic lexer tries them, its LALR states, and for every
rule what Lark's tree builder would pass to a transformer) and writes them into the package as
`grammar_tables.jsonl`, which ships in the wheel.  A run reads that file and nothing else: no
cache a user or another program could write to sits on the path of any run.  This module then
lexes and parses exactly as Lark would; `tests/test_parse.py` checks that on thousands of random
formulas, and that the shipped tables are the ones Lark builds from the grammar today.

The file is two JSON lines: a header (format, CRC-32 of the second line, digest of the grammar)
and the tables.  Lark numbers its states in an order that changes with Python's string hashing,
so the generator renumbers them breadth-first from the start state: the same grammar always
gives the same bytes (see `tablegen.py`).  A damaged file (bad checksum, wrong format) is refused with a message
saying how to regenerate it, never run.

Reductions call the builder's method named by the rule's alias (or its name) with the rule's
children inline, as Lark's `v_args(inline=True)` transformers are called: anonymous tokens
("(", ",") filtered out, `_rules` spliced into their parent, a `?rule` with one child replaced
by that child.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator
from typing import Any

FORMAT = 2  # bump when the table layout below changes
TABLES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grammar_tables.jsonl")
REGENERATE = "python -m gradcli.tablegen"  # the command that rewrites TABLES_FILE from the grammar


class Token(str):
    """A terminal's text with its type and 1-based line and column (the attributes gradcli uses
    of Lark's Token)."""

    __slots__ = ("type", "line", "column", "pos")
    type: str
    line: int
    column: int
    pos: int

    def __new__(cls, type_: str, value: str, pos: int, line: int, column: int) -> Token:
        tok = super().__new__(cls, value)
        tok.type, tok.pos, tok.line, tok.column = type_, pos, line, column
        return tok


class UnexpectedCharacters(Exception):
    def __init__(self, pos: int, line: int, column: int):
        super().__init__(f"no terminal matches at line {line}, column {column}")
        self.pos_in_stream, self.line, self.column = pos, line, column


class TablesError(Exception):
    """The shipped tables cannot be used: a damaged or stale installation, not a user error."""


class UnexpectedToken(Exception):
    def __init__(self, token: Token, expected: set[str]):
        super().__init__(f"unexpected {token.type} {str(token)!r} at column {token.column}")
        self.token, self.expected, self.column = token, expected, token.column


# ----------------------------------------------------------------------------- loading
def load_tables(path: str = TABLES_FILE) -> dict[str, Any]:
    """The shipped tables, after checking their format and checksum."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(1 << 22)  # 4 MB, 250× the real size: a link to /dev/zero ends here
        head, body, *rest = data.split(b"\n")
        header = json.loads(head)
        if header.get("format") != FORMAT:
            raise TablesError(f"they have format {header.get('format')!r}, this gradcli reads {FORMAT}")
        if zlib.crc32(body) != header.get("crc32") or rest != [b""]:
            raise TablesError("their checksum does not match")
        tables: dict[str, Any] = json.loads(body)
        return tables
    except (OSError, ValueError, AttributeError) as exc:  # unreadable, not two JSON lines
        reason = f"{type(exc).__name__}: {exc}"
    except TablesError as exc:
        reason = str(exc)
    raise TablesError(f"gradcli's parser tables {path} are damaged or stale ({reason}); reinstall "
                      f"gradcli, or regenerate them from the grammar with `{REGENERATE}`")


# ----------------------------------------------------------------------------- running
class Parser:
    def __init__(self, tables: dict[str, Any]):
        self.states = tables["states"]
        self.start, self.end = tables["start"], tables["end"]
        self.rules = tables["rules"]
        self.ignore = set(tables["ignore"])
        # one alternation per chunk, as Lark does (Python's re caps named groups at 100)
        terms = tables["terminals"]
        self.scanners = [re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in terms[i:i + 90]))
                         for i in range(0, len(terms), 90)]
        # the same terminals after any run of ignored ones, all optional: one match per token
        # kept, the whitespace before it skipped inside the regex (a match of no terminal is
        # the end of the text or a character no terminal matches)
        ignored = "|".join(rx for name, rx in terms if name in self.ignore)
        kept = "|".join(f"(?P<{name}>{rx})" for name, rx in terms if name not in self.ignore)
        self.skipping = re.compile(f"(?:{ignored})*(?:{kept})?" if ignored else f"(?:{kept})?")
        self._tables: tuple[list[dict[str, int]], list[dict[str, int]], list[Plan]] | None = None
        self._methods: tuple[Any, list[Any]] = (None, [])
        # (state below, state on top, next terminal) -> where a run of unit reductions ends
        self._chains: dict[tuple[int, int, str], int] = {}

    def tokens(self, text: str) -> Iterator[Token]:
        pos, line, line_start, n = 0, 1, 0, len(text)
        last = Token("$END", "", 0, 1, 1)
        while pos < n:
            for scanner in self.scanners:
                m = scanner.match(text, pos)
                if m:
                    break
            else:
                raise UnexpectedCharacters(pos, line, pos - line_start + 1)
            value, type_ = m.group(0), m.lastgroup or ""
            if type_ not in self.ignore:
                last = Token(type_, value, pos, line, pos - line_start + 1)
                yield last
            newlines = value.count("\n")
            if newlines:
                line += newlines
                line_start = pos + value.rindex("\n") + 1
            pos = m.end()
        yield Token("$END", "", last.pos, last.line, last.column)  # where the last token was, as Lark

    def parse(self, text: str, builder: Any) -> Any:
        """Shift-reduce over the tokens with explicit stacks: no recursion, so nesting depth and
        formula length are bounded by memory only, and each token costs a few table look-ups.
        A unit reduction (`?rule` with one child) only changes the state on top of the stack.
        With one scanner (all the terminals in one alternation) the lexer runs inside the parse
        loop, each match continuing where the last ended; otherwise tokens come from `tokens`."""
        if len(self.scanners) != 1:
            return self._parse(self.tokens(text), builder, None)
        return self._parse(iter(()), builder, text)

    def _compiled(self) -> tuple[list[dict[str, int]], list[dict[str, int]], list[Plan]]:
        """The tables as the parse loop reads them, made once: per state, each terminal's action
        as one int (a shift to state s is s, a reduction by rule r is ~r) and each rule's goto
        state; per rule, its plan (`_plan_rule`)."""
        found = self._tables
        if found is None:
            actions: list[dict[str, int]] = []
            gotos: list[dict[str, int]] = []
            for row in self.states:
                actions.append({t: (arg if action == 0 else ~arg) for t, (action, arg) in row.items()})
                gotos.append({t: arg for t, (action, arg) in row.items() if action == 0})
            found = self._tables = (actions, gotos, [_plan_rule(rule) for rule in self.rules])
        return found

    def _parse(self, tokens: Iterator[Token], builder: Any, text: str | None) -> Any:
        """The parse loop, over `tokens` or, when text is given, over the tokens of text lexed
        in place (no generator between lexer and parser)."""
        actions, gotos, plan = self._compiled()
        end = self.end
        if self._methods[0] is not builder:  # the builder's bound methods, per rule, kept for the next parse
            self._methods = (builder, [None] * len(plan))
        methods = self._methods[1]
        chains = self._chains
        state_stack: list[int] = [self.start]
        value_stack: list[Any] = []
        push_state, push_value = state_stack.append, value_stack.append
        lexing = text is not None
        source = text or ""
        scan = self.skipping.match
        n = len(source)
        # the next newline at or after pos (n: none): lines are counted only when one is passed,
        # not per token (a formula read from a file or a pipe ends with one)
        newline = source.find("\n")
        newline = n if newline < 0 else newline
        pos, line, line_start = 0, 1, 0
        new = str.__new__
        last_pos, last_line, last_col = 0, 1, 1
        while True:
            if not lexing:
                tok = next(tokens)
                ttype = tok.type
            else:
                m = scan(source, pos)
                assert m is not None  # the pattern matches the empty string
                kind = m.lastgroup
                if kind is None:  # only ignored text, up to the end or to a stray character
                    start = m.end()
                else:
                    start = m.start(kind)
                if start > newline:  # newlines in the ignored text before the token
                    line += source.count("\n", pos, start)
                    line_start = source.rindex("\n", pos, start) + 1
                    newline = source.find("\n", start)
                    newline = n if newline < 0 else newline
                if kind is None:
                    if start < n:
                        raise UnexpectedCharacters(start, line, start - line_start + 1)
                    ttype = "$END"  # where the last token was, as Lark
                    tok = Token(ttype, "", last_pos, last_line, last_col)
                    lexing = False
                    tokens = iter(())
                else:
                    ttype = kind
                    pos = m.end()
                    tok = new(Token, m.group(kind))
                    last_pos, last_line, last_col = start, line, start - line_start + 1
                    tok.type, tok.pos, tok.line, tok.column = ttype, start, line, last_col
                    if pos > newline:  # newlines inside the token
                        line += tok.count("\n")
                        line_start = start + tok.rindex("\n") + 1
                        newline = source.find("\n", pos)
                        newline = n if newline < 0 else newline
            while True:
                row = actions[state_stack[-1]]
                action = row.get(ttype)
                if action is None:
                    raise UnexpectedToken(tok, {s for s in row if s.isupper()})
                if action >= 0:  # shift, then the next token
                    push_state(action)
                    push_value(tok)
                    break
                rule = ~action
                origin, size, unit, keep, splice, inline, expand1, callback, simple = plan[rule]
                if simple:  # the builder's method on the children as they are
                    method = methods[rule]
                    if method is None:
                        method = methods[rule] = getattr(builder, callback)
                    if size == 1:  # in place: `x` becomes a symbol, `2` a number
                        below = state_stack[-2]
                        value_stack[-1] = method(value_stack[-1])
                    else:
                        children = value_stack[-size:]
                        del state_stack[-size:]
                        del value_stack[-size:]
                        push_value(method(*children))
                        below = state_stack[-1]
                        push_state(0)
                    # with the unit reductions that follow at once (`x` passing up to a sum)
                    key = (below, gotos[below][origin], ttype)
                    chained = chains.get(key)
                    if chained is None:
                        chained = chains[key] = self._unit_chain(*key)
                    goto = state_stack[-1] = chained
                elif unit:  # the child is the value: only the state changes, maybe many times
                    below = state_stack[-2]
                    key = (below, state_stack[-1], ttype)
                    chained = chains.get(key)
                    if chained is None:
                        chained = chains[key] = self._unit_chain(*key)
                    goto = state_stack[-1] = chained
                else:
                    if size:
                        children = value_stack[-size:]
                        del state_stack[-size:]
                        del value_stack[-size:]
                    else:
                        children = []
                    if splice:
                        args: list[Any] = []
                        for i, spliced in keep or ():
                            if spliced:
                                args.extend(children[i])
                            else:
                                args.append(children[i])
                    elif keep is None:
                        args = children
                    else:
                        args = [children[i] for i, _ in keep]
                    if inline:
                        value = args
                    elif expand1 and len(args) == 1:
                        value = args[0]
                    else:
                        method = methods[rule]
                        if method is None:
                            method = methods[rule] = getattr(builder, callback)
                        value = method(*args)
                    push_value(value)
                    goto = gotos[state_stack[-1]][origin]
                    push_state(goto)
                if goto == end and ttype == "$END":
                    return value_stack[-1]

    def _unit_chain(self, below: int, state: int, ttype: str) -> int:
        """The state a run of unit reductions ends in (state itself when none is next): `x`
        in `x + 1` passes up through every precedence level, and each step depends only on the
        state below, the state on top and the next token, so `parse` remembers the whole run as
        one step."""
        actions, gotos, plan = self._compiled()
        while not (state == self.end and ttype == "$END"):
            step = actions[state].get(ttype)
            if step is None or step >= 0 or not plan[~step][2]:
                break  # a shift, a real reduction or an error: the parse loop takes it from here
            state = gotos[below][plan[~step][0]]
        return state


# (origin, size, unit, keep, splice, inline, expand1, callback, simple): see `_plan_rule`
Plan = tuple[str, int, bool, "list[tuple[int, bool]] | None", bool, bool, bool, str, bool]


def _plan_rule(rule: dict[str, Any]) -> Plan:
    """A rule as the parse loop reads it: (origin, size, unit, keep, splice, inline, expand1,
    callback, simple).  `unit`: a `?rule` that passes its only child up unchanged; `keep`: the
    children passed on, as (index, spliced) (None: all of them, none spliced); `splice`: whether
    a `_rule` is spliced in; `simple`: the callback takes every child as it is (most rules)."""
    keep = [(int(i), bool(spliced)) for i, spliced in rule["keep"]]
    splice = any(spliced for _, spliced in keep)
    size = int(rule["size"])
    unit = (size == 1 and bool(rule["expand1"]) and not rule["inline"] and keep == [(0, False)])
    every = [i for i, _ in keep] == list(range(size))
    inline, expand1 = bool(rule["inline"]), bool(rule["expand1"])
    simple = every and size > 0 and not (unit or splice or inline or expand1)
    return (str(rule["origin"]), size, unit, None if every and not splice else keep, splice,
            inline, expand1, str(rule["callback"]), simple)
