"""`--steps`: the derivation of a gradient, as a textbook writes it.

Forward: every intermediate of f gets a name (a = XΘ, b = h(a), c = y − b, …) and its shape.
Backward: from ∂L/∂L = 1 down to the wrt symbols, each named intermediate's adjoint G (so that
dL = ⟨G, dN⟩), its shape (always the shape of N — that is why ∂L/∂Θ has Θ's shape), and the
differential rule of the operator that passed it on.  With `--layout numerator`, each step also
states the Jacobian a product-of-Jacobians derivation would need, and where that is a tensor.
"""

from __future__ import annotations

from itertools import chain, count
from typing import Any

from ..record import record

from ..language import operators  # noqa: F401  (fills the operator registry)
from ..language import simplify as S
from .differentiate import adjoints, depends_on
from ..language.expr import OPS, Expr, topological
from ..language.render import Renderer, Verbatim, binding_prefix, pretty_name, render_with_bindings
from ..language.shapes import fmt_dims

NAMES = "abcdefghijklmnopqrstuvwxyz"


@record
class Step:
    name: str
    expr: Expr
    shape: tuple[Any, ...]
    adjoint: Expr | None  # ∂L/∂node, None where the node does not depend on a wrt symbol
    users: list[Expr]  # the named nodes whose rules pass the adjoint down to this one


def _trivial(n: Expr) -> bool:
    """Nodes not worth a name of their own: leaves, and what their operator's record says
    (−x and c·x, transposed leaves, fills)."""
    if not n.args:
        return True
    trivial = OPS[n.op].trivial
    return trivial if isinstance(trivial, bool) else trivial(n)


class Derivation:
    """Names, adjoints and the users of every node of f, for a set of wrt symbols."""

    def __init__(self, f: Expr, wrt: list[Expr], seed: Expr | None = None):
        self.f, self.wrt = f, wrt
        self.order = topological([f])
        taken = {n.params[0] for n in self.order if n.op == "sym"}
        free = (c for c in chain(NAMES, (f"z{i}" for i in count(1))) if c not in taken)
        self.named = {n: next(free) for n in self.order if not _trivial(n) or n is f}
        wrt_names = {x.params[0] for x in wrt}
        self.seed = seed if seed is not None else S.const(1.0)
        self.adj = adjoints(f, wrt_names, self.seed)
        self.dep = depends_on(f, wrt_names)
        direct: dict[Expr, list[Expr]] = {}
        for n in self.order:
            for a in n.args:
                direct.setdefault(a, []).append(n)
        self._direct = direct

    def users(self, n: Expr) -> list[Expr]:
        """Named nodes using n, looking through unnamed (trivial) users."""
        out, stack, seen = [], list(self._direct.get(n, [])), set()
        while stack:
            u = stack.pop()
            if u in seen:
                continue
            seen.add(u)
            if u in self.named:
                out.append(u)
            else:
                stack.extend(self._direct.get(u, []))
        return out

    def steps(self) -> list[Step]:
        return [Step(self.named[n], n, n.ty.full_dims, self.adj.get(n) if n in self.dep else None,
                     self.users(n)) for n in self.order if n in self.named]

    def gradient(self, x: Expr) -> Expr:
        return self.adj.get(x, S.zeros(x.ty))


def _order_word(order: int) -> str:
    return {0: "a scalar", 1: "a vector", 2: "a matrix"}.get(order, f"a {order}th-order tensor")


def seed_symbol_name(f: Expr, avoid: frozenset[str] = frozenset()) -> str:
    """The name of the seed V of a non-scalar f's derivation: one f's symbols (and `avoid`,
    such as a direction's name) do not use."""
    taken = {n.params[0] for n in topological([f]) if n.op == "sym"} | avoid
    return next(n for n in chain(("V", "G", "S"), (f"V{i}" for i in count())) if n not in taken)


def render_steps(f: Expr, wrt: list[Expr], style: str = "unicode",
                 numerator: bool = False, avoid: frozenset[str] = frozenset()) -> tuple[list[str], list[dict[str, Any]]]:
    """Lines for the terminal, and the JSON `steps` list (one record per named intermediate).
    For a non-scalar f the derivation is of L = ⟨V, f⟩ for a seed V of f's shape: ∂L/∂x = JᵀV,
    from which the Jacobian is read off (V named as no symbol of f nor `avoid` is)."""
    taken = {n.params[0] for n in topological([f]) if n.op == "sym"}
    seed_name = seed_symbol_name(f, avoid)
    seed = None if f.ty.is_scalar else S.sym(seed_name, f.ty)
    d = Derivation(f, wrt, seed)
    steps = d.steps()
    bound = dict(d.named)
    adjoint_roots = [st.adjoint for st in steps if st.adjoint is not None] + [d.gradient(x) for x in wrt]
    taken = {n.params[0] for n in d.order if n.op == "sym"} | set(d.named.values())
    backward = AdjointNames(bound, style, adjoint_roots, _fresh_prefix("w", taken))

    def own(s: Step, st: str) -> str:
        return own_step(s.expr, bound, st)

    def pn(name: str) -> str:
        return pretty_name(name, style)

    lines = ["forward: name every intermediate"]
    for s in steps:
        lines.append(f"  {pn(s.name)} = {own(s, style)}    {fmt_dims(s.shape)}")
    lines += ["", "backward: dL = ⟨G, dN⟩ for each intermediate N, so G = ∂L/∂N has N's shape"]
    records = []
    for s in reversed(steps):
        if s.adjoint is None:
            continue
        adjoint_text, adjoint_ascii = backward.texts(s.adjoint)
        lines += backward.where_lines()
        top_note = "    (L = f)" if seed is None else f"    (L = ⟨{seed_name}, f⟩ for a seed {seed_name} of f's shape)"
        lines.append(f"  ∂L/∂{pn(s.name)} = {adjoint_text}    {fmt_dims(s.shape)}"
                     + (top_note if s.expr is f else ""))
        rules = []
        for u in s.users:
            rule = OPS[u.op].rule
            lines.append(f"      from {pn(d.named[u])} = {own_step(u, bound, style)}: {rule}")
            rules.append(rule)
            if numerator:
                dims = u.ty.full_dims + s.expr.ty.full_dims
                lines.append(f"      Jacobian view: ∂{pn(d.named[u])}/∂{pn(s.name)} is "
                             f"{_order_word(len(dims))} {fmt_dims(dims)}")
        records.append({"name": s.name, "expression": own(s, "ascii"),
                        "shape": [x if isinstance(x, int) else str(x) for x in s.shape],
                        "rule": "; ".join(rules) if rules else None,
                        "adjoint": adjoint_ascii, **backward.where_record()})
        backward.name_after_printing(s.adjoint, s.name, adjoint_ascii)
    lines.append("")
    for x in wrt:
        name = x.params[0]
        users = d.users(x)
        gradient_text, gradient_ascii = backward.texts(d.gradient(x))
        lines += backward.where_lines()
        lines.append(f"  ∂L/∂{pn(name)} = {gradient_text}    {fmt_dims(x.ty.full_dims)}")
        for u in users:
            lines.append(f"      from {pn(d.named[u])} = {own_step(u, bound, style)}: {OPS[u.op].rule}")
            if numerator:
                dims = u.ty.full_dims + x.ty.full_dims
                lines.append(f"      Jacobian view: ∂{pn(d.named[u])}/∂{pn(name)} is "
                             f"{_order_word(len(dims))} {fmt_dims(dims)}")
        if numerator and x.ty.is_matrix:
            lines.append(f"      a product of Jacobians meets tensors here; contracting the adjoint with them "
                         f"over the intermediate's indices leaves {pn(name)}'s shape {fmt_dims(x.ty.full_dims)}"
                         " (transposed in numerator layout)")
        records.append({"name": name, "expression": name,
                        "shape": [v if isinstance(v, int) else str(v) for v in x.ty.full_dims],
                        "rule": "; ".join(OPS[u.op].rule for u in users) or None,
                        "adjoint": gradient_ascii, **backward.where_record()})
    lines += ["", "result (simplified):"]
    bindings, texts = render_with_bindings([d.gradient(x) for x in wrt], style, prefix=binding_prefix(taken))
    for x, text in zip(wrt, texts):
        lines.append(f"  ∂L/∂{pn(x.params[0])} = {text}")
    if bindings:
        lines.append("  where")
        lines += [f"    {name} = {text}" for name, text in bindings]
    if seed is not None:
        lines.append(f"  which is Jᵀ{seed_name}: the Jacobian ∂f/∂x is the matrix of this linear map in "
                     f"{seed_name} (printed above)")
    return lines, records


def _fresh_prefix(base: str, taken: set[str]) -> str:
    """w, else ww, …: a prefix no name of the derivation followed by digits can be spelled with."""
    prefix = base
    while any(t.startswith(prefix) and t[len(prefix):].isdigit() for t in taken):
        prefix += base
    return prefix


class AdjointNames:
    """Renders the adjoints of a derivation, in the chosen style and in ASCII for `--json`.

    Each adjoint is built from the adjoints of its users (∂L/∂b = ∂L/∂c ⊙ (1 − c²)), so
    printing every one in full repeats the whole chain above it: a 1,000-deep chain would print
    megabytes.  Once an adjoint has been printed and is long, later lines refer to it by its
    name (`∂L/∂c`, `dL/dc` in ASCII).  A long subexpression that several adjoints share without
    being an adjoint itself (the sums a Hessian's derivation builds) is named just before the
    line that first needs it (`w₁ = …`).  So the derivation stays linear in the size of f; short
    adjoints are repeated, which reads better than a reference."""

    MIN_LEN = 24  # ASCII characters, as for the `z₁ = …` bindings of the main output

    def __init__(self, forward: dict[Any, Any], style: str, roots: list[Expr], prefix: str):
        self.forward = forward
        self.style = style
        # forward names by id, adjoint and shared names by node: one table per spelling
        self.shown_names, self.ascii_names = dict(forward), dict(forward)
        self.shown = Renderer(style, self.shown_names)
        self.ascii = Renderer("ascii", self.ascii_names)
        self.uses: dict[Expr, int] = {}
        for n in topological(roots):
            for a in n.args:
                self.uses[a] = self.uses.get(a, 0) + 1
        self.prefix = prefix
        self.decided: set[Expr] = set()
        self.pending: list[tuple[str, str, str, str]] = []  # (shown name, text, ascii name, text)
        self.count = 0

    def texts(self, adjoint: Expr) -> tuple[str, str]:
        self._name_shared(adjoint)
        return self.shown.text(adjoint), self.ascii.text(adjoint)

    def _name_shared(self, root: Expr) -> None:
        """Children first, each node decided once over the whole derivation: linear."""
        stack = [(root, False)]
        while stack:
            n, expanded = stack.pop()
            if n in self.decided or self._bound(n):
                continue
            if not expanded:
                stack.append((n, True))
                stack.extend((a, False) for a in n.args)
                continue
            self.decided.add(n)
            if n is root or self.uses.get(n, 0) < 2 or not n.args or n.op in ("T", "fill") or n.ty.row:
                continue
            ascii_text = self.ascii.text(n)
            if len(ascii_text) < self.MIN_LEN:
                continue
            self.count += 1
            name = f"{self.prefix}{self.count}"
            self.pending.append((pretty_name(name, self.style), self.shown.text(n), name, ascii_text))
            self.shown_names[n] = name
            self.ascii_names[n] = name

    def _bound(self, n: Expr) -> bool:
        return n in self.shown_names or n in self.forward

    def where_lines(self) -> list[str]:
        """The shared subexpressions named for the adjoint just rendered, as lines to print
        before it (the records take them with `where_record`)."""
        return [f"  where {name} = {text}" for name, text, _, _ in self.pending]

    def where_record(self) -> dict[str, Any]:
        found = {"where": [{"name": n, "expression": t} for _, _, n, t in self.pending]} if self.pending else {}
        self.pending = []
        return found

    def name_after_printing(self, adjoint: Expr, name: str, ascii_text: str) -> None:
        if len(ascii_text) < self.MIN_LEN or adjoint in self.forward or adjoint in self.shown_names:
            return
        self.shown_names[adjoint] = Verbatim(f"∂L/∂{pretty_name(name, self.style)}")
        self.ascii_names[adjoint] = Verbatim(f"dL/d{name}")


def own_step(node: Expr, bound: dict[Any, Any], style: str) -> str:
    """node's own definition: its operator applied to its arguments' names (node itself
    unnamed).  The name is lifted for the call rather than the table copied, so a derivation
    of 100,000 steps stays linear."""
    name = bound.pop(node, None)
    try:
        return Renderer(style, bound).text(node)
    finally:
        if name is not None:
            bound[node] = name
