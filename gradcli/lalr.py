"""A small LALR(1) runtime for the parse tables Lark builds from `grammar/gradcli.lark`.

Why: importing Lark costs about 20 ms, a fifth of a symbolic one-liner and most of what stood
between `gradcli grad -d data.npz -o DIR` and a plain numpy script.  Lark stays the grammar's
compiler: when the tables are not cached, `build_tables` asks Lark for them (its terminals in
the order its basic lexer tries them, its LALR states, and for every rule what Lark's tree
builder would pass to a transformer) and stores them as JSON in gradcli's private cache folder.
A run with the tables cached never imports Lark; this module then lexes and parses exactly as
Lark would, and `tests/test_parse.py` checks that on thousands of random formulas.

Reductions call the builder's method named by the rule's alias (or its name) with the rule's
children inline, as Lark's `v_args(inline=True)` transformers are called: anonymous tokens
("(", ",") filtered out, `_rules` spliced into their parent, a `?rule` with one child replaced
by that child.
"""

from __future__ import annotations

import re
from typing import Any

FORMAT = 1  # bump when the table layout below changes


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


class UnexpectedToken(Exception):
    def __init__(self, token: Token, expected: set[str]):
        super().__init__(f"unexpected {token.type} {str(token)!r} at column {token.column}")
        self.token, self.expected, self.column = token, expected, token.column


# ----------------------------------------------------------------------------- building (Lark)
def build_tables(grammar: str) -> dict:
    """Everything the runtime needs, from Lark, as plain JSON-able data."""
    from lark import Lark

    lark = Lark(grammar, parser="lalr", lexer="basic")
    lexer = lark.parser.lexer
    table = lark.parser.parser.parser.parse_table
    rules = list(lark.rules)
    index = {id(r): n for n, r in enumerate(rules)}
    states = {}
    for state, actions in table.states.items():
        row = {}
        for term, (action, arg) in actions.items():
            shift = action.name == "Shift"
            row[term] = [0, arg] if shift else [1, index[id(arg)]]
        states[str(state)] = row
    return {
        "format": FORMAT,
        "grammar": grammar,
        # terminals in the order Lark's basic lexer tries them (priority, then length, then name)
        "terminals": [[t.name, t.pattern.to_regexp()] for t in lexer.terminals],
        "ignore": sorted(lexer.ignore_types),
        "states": states,
        "start": table.start_states["start"],
        "end": table.end_states["start"],
        "rules": [{
            "origin": r.origin.name,
            "callback": r.alias or r.options.template_source or r.origin.name,
            "size": len(r.expansion),
            "inline": r.origin.name.startswith("_"),  # spliced into the parent (`_rule`)
            "expand1": bool(r.options.expand1 and not r.alias),  # `?rule` with one child: the child
            "keep": [[i, (not s.is_term) and s.name.startswith("_")] for i, s in enumerate(r.expansion)
                     if r.options.keep_all_tokens or not (s.is_term and s.filter_out)],
        } for r in rules],
    }


# ----------------------------------------------------------------------------- running
class Parser:
    def __init__(self, tables: dict):
        self.states = {int(k): v for k, v in tables["states"].items()}
        self.start, self.end = tables["start"], tables["end"]
        self.rules = tables["rules"]
        self.ignore = set(tables["ignore"])
        # one alternation per chunk, as Lark does (Python's re caps named groups at 100)
        terms = tables["terminals"]
        self.scanners = [re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in terms[i:i + 90]))
                         for i in range(0, len(terms), 90)]

    def check(self, builder: Any) -> None:
        """Raise if the tables are malformed (a damaged cache): every action is [0 or 1, index]
        and a formula using most of the grammar parses."""
        for row in self.states.values():
            for action in row.values():
                if not (isinstance(action, list) and len(action) == 2 and action[0] in (0, 1)
                        and isinstance(action[1], int)):
                    raise ValueError(f"malformed action {action!r}")
        self.parse("-x'@A.T@x + ||y||_F^2 * h'(z)^2 - sum(B, 0)@u wrt x, y where A: (n, n), B: scalar",
                   builder)

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
        states, rules, end = self.states, self.rules, self.end
        state_stack, value_stack = [self.start], []
        for tok in self.tokens(text):
            while True:
                state = state_stack[-1]
                try:
                    action, arg = states[state][tok.type]
                except KeyError:
                    raise UnexpectedToken(tok, {s for s in states[state] if s.isupper()}) from None
                if action == 0:  # shift, then the next token
                    state_stack.append(arg)
                    value_stack.append(tok)
                    break
                rule = rules[arg]  # reduce, then go to the state for the rule's left-hand side
                size = rule["size"]
                children = value_stack[len(value_stack) - size:] if size else []
                if size:
                    del state_stack[-size:]
                    del value_stack[-size:]
                value_stack.append(_reduce(rule, children, builder))
                state_stack.append(states[state_stack[-1]][rule["origin"]][1])
                if tok.type == "$END" and state_stack[-1] == end:
                    return value_stack[-1]
        raise AssertionError("the parser ran past the end of its input")


def _reduce(rule: dict, children: list, builder: Any) -> Any:
    args: list = []
    for i, splice in rule["keep"]:
        if splice:
            args.extend(children[i])
        else:
            args.append(children[i])
    if rule["inline"]:
        return args
    if rule["expand1"] and len(args) == 1:
        return args[0]
    return getattr(builder, rule["callback"])(*args)
