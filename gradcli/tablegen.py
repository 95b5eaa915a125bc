"""Build time: the LALR tables that `lalr.py` runs, from `grammar/gradcli.lark`, by Lark.

`python -m gradcli.tablegen` rewrites `gradcli/language/grammar_tables.jsonl`; run it after every change to
the grammar (`tests/test_parse.py` fails until the shipped tables equal what Lark builds).  Only
this module imports Lark; gradcli itself never does.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from .language.lalr import FORMAT, REGENERATE, TABLES_FILE


def build_tables(grammar: str) -> dict[str, Any]:
    """Everything the runtime needs, from Lark, as plain JSON-able data."""
    from lark import Lark
    from lark.grammar import Terminal

    lark = Lark(grammar, parser="lalr", lexer="basic")
    lexer = lark.parser.lexer
    table = lark.parser.parser.parser.parse_table
    rules = list(lark.rules)
    index = {id(r): n for n, r in enumerate(rules)}
    number = _canonical_numbering(table.states, table.start_states["start"])
    states: dict[int, dict[str, list[int]]] = {}
    for state, actions in table.states.items():
        row: dict[str, list[int]] = {}
        for term, (action, arg) in sorted(actions.items()):
            shift = action.name == "Shift"
            row[term] = [0, number[arg]] if shift else [1, index[id(arg)]]
        states[number[state]] = row
    return {
        # terminals in the order Lark's basic lexer tries them (priority, then length, then name)
        "terminals": [[t.name, t.pattern.to_regexp()] for t in lexer.terminals],
        "ignore": sorted(lexer.ignore_types),
        "states": [states[n] for n in range(len(states))],
        "start": number[table.start_states["start"]],
        "end": number[table.end_states["start"]],
        "rules": [{
            "origin": r.origin.name,
            "callback": r.alias or r.options.template_source or r.origin.name,
            "size": len(r.expansion),
            "inline": r.origin.name.startswith("_"),  # spliced into the parent (`_rule`)
            "expand1": bool(r.options.expand1 and not r.alias),  # `?rule` with one child: the child
            "keep": [[i, (not s.is_term) and s.name.startswith("_")] for i, s in enumerate(r.expansion)
                     if r.options.keep_all_tokens or not (isinstance(s, Terminal) and s.filter_out)],
        } for r in rules],
    }


def _canonical_numbering(states: dict[Any, dict[str, tuple[Any, Any]]],
                         start: Any) -> dict[Any, int]:
    """State → number, breadth-first from the start state, successors by symbol name: the
    numbering depends on the automaton only, not on the order Lark happened to build it in."""
    number = {start: 0}
    queue = [start]
    for state in queue:
        for _, (action, arg) in sorted(states[state].items()):
            if action.name == "Shift" and arg not in number:
                number[arg] = len(number)
                queue.append(arg)
    if len(number) != len(states):
        raise AssertionError("Lark's parse table has states unreachable from the start state")
    return number


def tables_file_text(grammar: str) -> str:
    """The exact contents of `grammar_tables.jsonl` for this grammar (needs Lark)."""
    import hashlib

    body = json.dumps(build_tables(grammar), separators=(",", ":"), ensure_ascii=True)
    header = {"format": FORMAT, "crc32": zlib.crc32(body.encode("ascii")),
              "grammar_sha256": hashlib.sha256(grammar.encode("utf-8")).hexdigest(),
              "generated_by": REGENERATE}
    return json.dumps(header) + "\n" + body + "\n"


def main() -> None:
    """`python -m gradcli.tablegen`: rebuild the shipped tables from the grammar with Lark."""
    from .language.parse import grammar_path

    grammar = grammar_path()
    text = tables_file_text(grammar.read_text(encoding="utf-8"))
    with open(TABLES_FILE, "w", encoding="ascii", newline="\n") as fh:
        fh.write(text)
    print(f"wrote {TABLES_FILE} from {grammar}")


if __name__ == "__main__":
    main()
