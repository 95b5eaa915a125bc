"""The one way gradcli rebuilds a graph: every node reachable from some roots, each once, its
arguments before it.

Nodes are the keys of the table of what each became: hash-consed nodes hash and compare by
identity, and a key holds its node alive, so no entry can ever stand for another node (a table
keyed by `id(node)` can, once the node is gone and its address reused).

A node whose visit says nothing is rebuilt over its new arguments: through the simplifying
constructor `make` by default (what a derivative or a substitution wants: the result reads as
a formula), or exactly as written (`rebuild=rebuilt_raw`: what the evaluator's rewrites want,
which change how a value is computed and nothing else).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .expr import Expr, make, make_raw, topological

# (node, its arguments already rewritten) -> what the node becomes, or None for the default
Visit = Callable[[Expr, tuple[Expr, ...]], "Expr | None"]
Rebuild = Callable[[Expr, tuple[Expr, ...]], Expr]


def rebuilt(node: Expr, args: tuple[Expr, ...]) -> Expr:
    """node over new arguments: itself when none changed, else rebuilt through `make` (so
    the operator's simplification hook sees the new arguments)."""
    return node if args == node.args else make(node.op, *args, params=node.params)


def rebuilt_raw(node: Expr, args: tuple[Expr, ...]) -> Expr:
    """node over new arguments exactly as written (`make_raw`: no simplification), itself when
    none changed."""
    return node if args == node.args else make_raw(node.op, args, node.params)


def rewrite(roots: list[Expr], visit: Visit, order: Iterable[Expr] | None = None, *,
            rebuild: Rebuild = rebuilt, done: dict[Expr, Expr] | None = None) -> list[Expr]:
    """The roots rebuilt bottom-up.  `visit(node, args)` returns what the node becomes, given
    its arguments' rewrites, or None for `rebuild(node, args)`.  `order`: every node below the
    roots, arguments before users (default `topological(roots)`), for a caller that knows a
    cheaper walk; a node listed twice is visited once.  `done`: the table of what each node
    became, for a visit that reads below its own arguments (a chain of products) or a caller
    that keeps it; filled as the walk goes (a node already in it is not visited again)."""
    if done is None:
        done = {}
    for node in topological(roots) if order is None else order:
        if node in done:
            continue
        args = tuple([done[a] for a in node.args])
        new = visit(node, args)
        done[node] = rebuild(node, args) if new is None else new
    return [done[r] for r in roots]
