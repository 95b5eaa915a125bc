"""The one way gradcli rebuilds a graph: every node reachable from some roots, each once, its
arguments before it, through the simplifying constructors.

Nodes are the keys of the table of what each became: hash-consed nodes hash and compare by
identity, and a key holds its node alive, so no entry can ever stand for another node (a table
keyed by `id(node)` can, once the node is gone and its address reused).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .expr import Expr, make, topological

# (node, its arguments already rewritten) -> what the node becomes, or None for the default
Visit = Callable[[Expr, tuple[Expr, ...]], "Expr | None"]


def rebuilt(node: Expr, args: tuple[Expr, ...]) -> Expr:
    """node over new arguments: itself when none changed, else rebuilt through `make` (so
    the operator's simplification hook sees the new arguments)."""
    return node if args == node.args else make(node.op, *args, params=node.params)


def rewrite(roots: list[Expr], visit: Visit, order: Iterable[Expr] | None = None) -> list[Expr]:
    """The roots rebuilt bottom-up.  `visit(node, args)` returns what the node becomes, given
    its arguments' rewrites, or None for `rebuilt(node, args)`.  `order`: every node below the
    roots, arguments before users (default `topological(roots)`), for a caller that knows a
    cheaper walk; a node listed twice is visited once."""
    done: dict[Expr, Expr] = {}
    for node in topological(roots) if order is None else order:
        if node in done:
            continue
        args = tuple([done[a] for a in node.args])
        new = visit(node, args)
        done[node] = rebuilt(node, args) if new is None else new
    return [done[r] for r in roots]
