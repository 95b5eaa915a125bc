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
from typing import Any

FORMAT = 2  # bump when the table layout below changes
TABLES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grammar_tables.jsonl")
REGENERATE = "python -m gradcli.tablegen"  # the command that rewrites TABLES_FILE from the grammar


class Token(str):
    """A terminal's text with its type and 1-based line and column (the attributes gradcli uses
    of Lark's Token)."""

    __slots__ = ("type", "line", "column", "pos")

    def __new__(cls, type_: str, value: str, pos: int, line: int, column: int):
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
def load_tables(path: str = TABLES_FILE) -> dict:
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
        return json.loads(body)
    except (OSError, ValueError, AttributeError) as exc:  # unreadable, not two JSON lines
        reason = f"{type(exc).__name__}: {exc}"
    except TablesError as exc:
        reason = str(exc)
    raise TablesError(f"gradcli's parser tables {path} are damaged or stale ({reason}); reinstall "
                      f"gradcli, or regenerate them from the grammar with `{REGENERATE}`")


# ----------------------------------------------------------------------------- running
class Parser:
    def __init__(self, tables: dict):
        self.states = tables["states"]
        self.start, self.end = tables["start"], tables["end"]
        self.rules = tables["rules"]
        self.ignore = set(tables["ignore"])
        # one alternation per chunk, as Lark does (Python's re caps named groups at 100)
        terms = tables["terminals"]
        self.scanners = [re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in terms[i:i + 90]))
                         for i in range(0, len(terms), 90)]

    def tokens(self, text: str):
        pos, line, line_start, n = 0, 1, 0, len(text)
        last = Token("$END", "", 0, 1, 1)
        while pos < n:
            for scanner in self.scanners:
                m = scanner.match(text, pos)
                if m:
                    break
            else:
                raise UnexpectedCharacters(pos, line, pos - line_start + 1)
            value, type_ = m.group(0), m.lastgroup
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
        With one scanner (all the terminals in one alternation) the lexer runs inline, each
        match continuing where the last ended; otherwise tokens come from `tokens`."""
        if len(self.scanners) != 1:
            return self._parse_tokens(self.tokens(text), builder)
        return self._parse_tokens(self._inline_tokens(text), builder)

    def _inline_tokens(self, text: str):
        """What `tokens` yields, from one scanner walked by its own position."""
        scan = self.scanners[0].scanner(text).match
        ignore, multiline, n = self.ignore, "\n" in text, len(text)
        pos, line, line_start = 0, 1, 0
        new = str.__new__
        last_pos, last_line, last_col = 0, 1, 1
        while pos < n:
            m = scan()
            if m is None:
                raise UnexpectedCharacters(pos, line, pos - line_start + 1)
            type_ = m.lastgroup
            start, pos = pos, m.end()
            if type_ not in ignore:
                tok = new(Token, m.group())
                tok.type, tok.pos, tok.line, tok.column = type_, start, line, start - line_start + 1
                last_pos, last_line, last_col = start, line, tok.column
                yield tok
            if multiline:
                value = m.group()
                newlines = value.count("\n")
                if newlines:
                    line += newlines
                    line_start = start + value.rindex("\n") + 1
        yield Token("$END", "", last_pos, last_line, last_col)  # where the last token was, as Lark

    def _parse_tokens(self, tokens: Any, builder: Any) -> Any:
        states, end = self.states, self.end
        plan = self.__dict__.get("_plan")
        if plan is None:
            plan = self._plan = [_plan_rule(rule) for rule in self.rules]
        methods: dict = {}
        chains = self.__dict__.setdefault("_chains", {})
        state_stack, value_stack = [self.start], []
        push_state, push_value = state_stack.append, value_stack.append
        for tok in tokens:
            ttype = tok.type
            while True:
                try:
                    action, arg = states[state_stack[-1]][ttype]
                except KeyError:
                    row = states[state_stack[-1]]
                    raise UnexpectedToken(tok, {s for s in row if s.isupper()}) from None
                if action == 0:  # shift, then the next token
                    push_state(arg)
                    push_value(tok)
                    break
                origin, size, unit, keep, splice, inline, expand1, callback = plan[arg]
                if unit:  # the child is the value: only the state changes, maybe many times
                    below = state_stack[-2]
                    key = (below, state_stack[-1], ttype)
                    goto = chains.get(key)
                    if goto is None:
                        goto = chains[key] = self._unit_chain(below, states[below][origin][1], ttype)
                    state_stack[-1] = goto
                else:
                    if size:
                        children = value_stack[-size:]
                        del state_stack[-size:]
                        del value_stack[-size:]
                    else:
                        children = []
                    if splice:
                        args: list = []
                        for i, spliced in keep:
                            if spliced:
                                args.extend(children[i])
                            else:
                                args.append(children[i])
                    elif keep is None:
                        args = children
                    else:
                        args = [children[i] for i in keep]
                    if inline:
                        value = args
                    elif expand1 and len(args) == 1:
                        value = args[0]
                    else:
                        method = methods.get(callback)
                        if method is None:
                            method = methods[callback] = getattr(builder, callback)
                        value = method(*args)
                    push_value(value)
                    goto = states[state_stack[-1]][origin][1]
                    push_state(goto)
                if goto == end and ttype == "$END":
                    return value_stack[-1]
        raise AssertionError("the parser ran past the end of its input")

    def _unit_chain(self, below: int, state: int, ttype: str) -> int:
        """The state a run of unit reductions ends in: `x` in `x + 1` passes up through every
        precedence level, and each step depends only on the state below, the state on top and
        the next token, so `parse` remembers the whole run as one step."""
        states, plan = self.states, self._plan
        while not (state == self.end and ttype == "$END"):
            step = states[state].get(ttype)
            if step is None or step[0] == 0 or not plan[step[1]][2]:
                break  # a shift, a real reduction or an error: the parse loop takes it from here
            state = states[below][plan[step[1]][0]][1]
        return state


def _plan_rule(rule: dict) -> tuple:
    """A rule as the parse loop reads it: (origin, size, unit, keep, splice, inline, expand1,
    callback).  `unit`: a `?rule` that passes its only child up unchanged; `keep`: the indices
    of the children passed on (None: all of them), with `splice` flags where a `_rule` is
    spliced in."""
    keep = [(i, bool(spliced)) for i, spliced in rule["keep"]]
    splice = any(spliced for _, spliced in keep)
    size = rule["size"]
    unit = (size == 1 and rule["expand1"] and not rule["inline"] and keep == [(0, False)])
    indices = None if [i for i, _ in keep] == list(range(size)) else [i for i, _ in keep]
    return (rule["origin"], size, unit, keep if splice else indices, splice, rule["inline"],
            rule["expand1"], rule["callback"])
