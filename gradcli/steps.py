"""`--steps`: the derivation of a gradient, as a textbook writes it.

Forward: every intermediate of f gets a name (a = XΘ, b = h(a), c = y − b, …) and its shape.
Backward: from ∂L/∂L = 1 down to the wrt symbols, each named intermediate's adjoint G (so that
dL = ⟨G, dN⟩), its shape (always the shape of N — that is why ∂L/∂Θ has Θ's shape), and the
differential rule of the operator that passed it on.  With `--layout numerator`, each step also
states the Jacobian a product-of-Jacobians derivation would need, and where that is a tensor.
"""

from __future__ import annotations

from itertools import chain, count

from .record import record

from . import ops as O
from .differentiate import adjoints, depends_on
from .expr import OPS, Expr, topological
from .render import Renderer, Verbatim, binding_prefix, pretty_name, render_with_bindings
from .shapes import fmt_dims

NAMES = "abcdefghijklmnopqrstuvwxyz"


@record
class Step:
    name: str
    expr: Expr
    shape: tuple
    adjoint: Expr | None  # ∂L/∂node, None where the node does not depend on a wrt symbol
    users: list  # the named nodes whose rules pass the adjoint down to this one


def _trivial(n: Expr) -> bool:
    """Nodes not worth a name of their own: leaves, −x and c·x, transposed leaves, fills."""
    if not n.args or n.op in ("fill", "eye"):
        return True
    if n.op == "mul" and n.args[0].is_const:
        return True
    return n.op == "T" and not n.args[0].args


class Derivation:
    """Names, adjoints and the users of every node of f, for a set of wrt symbols."""

    def __init__(self, f: Expr, wrt: list[Expr], seed: Expr | None = None):
        self.f, self.wrt = f, wrt
        self.order = topological([f])
        taken = {n.params[0] for n in self.order if n.op == "sym"}
        free = (c for c in chain(NAMES, (f"z{i}" for i in count(1))) if c not in taken)
        self.named = {id(n): next(free) for n in self.order if not _trivial(n) or n is f}
        wrt_names = {x.params[0] for x in wrt}
        self.seed = seed if seed is not None else O.const(1.0)
        self.adj = adjoints(f, wrt_names, self.seed)
        self.dep = depends_on(f, wrt_names)
        direct: dict[int, list[Expr]] = {}
        for n in self.order:
            for a in n.args:
                direct.setdefault(id(a), []).append(n)
        self._direct = direct

    def users(self, n: Expr) -> list[Expr]:
        """Named nodes using n, looking through unnamed (trivial) users."""
        out, stack, seen = [], list(self._direct.get(id(n), [])), set()
        while stack:
            u = stack.pop()
            if id(u) in seen:
                continue
            seen.add(id(u))
            if id(u) in self.named:
                out.append(u)
            else:
                stack.extend(self._direct.get(id(u), []))
        return out

    def steps(self) -> list[Step]:
        return [Step(self.named[id(n)], n, n.ty.full_dims, self.adj.get(id(n)) if id(n) in self.dep else None,
                     self.users(n)) for n in self.order if id(n) in self.named]

    def gradient(self, x: Expr) -> Expr:
        return self.adj.get(id(x), O.zeros(x.ty))


def _order_word(order: int) -> str:
    return {0: "a scalar", 1: "a vector", 2: "a matrix"}.get(order, f"a {order}th-order tensor")


def render_steps(f: Expr, wrt: list[Expr], style: str = "unicode",
                 numerator: bool = False) -> tuple[list[str], list[dict]]:
    """Lines for the terminal, and the JSON `steps` list (one record per named intermediate).
    For a non-scalar f the derivation is of L = ⟨V, f⟩ for a seed V of f's shape: ∂L/∂x = JᵀV,
    from which the Jacobian is read off."""
    taken = {n.params[0] for n in topological([f]) if n.op == "sym"}
    seed_name = next(n for n in ("V", "G", "S", "V0", "G0") if n not in taken)
    seed = None if f.ty.is_scalar else O.sym(seed_name, f.ty)
    d = Derivation(f, wrt, seed)
    steps = d.steps()
    bound = dict(d.named)
    backward = AdjointNames(bound, style)

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
        top_note = "    (L = f)" if seed is None else f"    (L = ⟨{seed_name}, f⟩ for a seed {seed_name} of f's shape)"
        lines.append(f"  ∂L/∂{pn(s.name)} = {adjoint_text}    {fmt_dims(s.shape)}"
                     + (top_note if s.expr is f else ""))
        rules = []
        for u in s.users:
            rule = OPS[u.op].rule
            lines.append(f"      from {pn(d.named[id(u)])} = {own_step(u, bound, style)}: {rule}")
            rules.append(rule)
            if numerator:
                dims = u.ty.full_dims + s.expr.ty.full_dims
                lines.append(f"      Jacobian view: ∂{pn(d.named[id(u)])}/∂{pn(s.name)} is "
                             f"{_order_word(len(dims))} {fmt_dims(dims)}")
        records.append({"name": s.name, "expression": own(s, "ascii"),
                        "shape": [x if isinstance(x, int) else str(x) for x in s.shape],
                        "rule": "; ".join(rules) if rules else None,
                        "adjoint": adjoint_ascii})
        backward.name_after_printing(s.adjoint, s.name, adjoint_ascii)
    lines.append("")
    for x in wrt:
        name = x.params[0]
        users = d.users(x)
        gradient_text, gradient_ascii = backward.texts(d.gradient(x))
        lines.append(f"  ∂L/∂{pn(name)} = {gradient_text}    {fmt_dims(x.ty.full_dims)}")
        for u in users:
            lines.append(f"      from {pn(d.named[id(u)])} = {own_step(u, bound, style)}: {OPS[u.op].rule}")
            if numerator:
                dims = u.ty.full_dims + x.ty.full_dims
                lines.append(f"      Jacobian view: ∂{pn(d.named[id(u)])}/∂{pn(name)} is "
                             f"{_order_word(len(dims))} {fmt_dims(dims)}")
        if numerator and x.ty.is_matrix:
            lines.append(f"      a product of Jacobians meets tensors here; contracting the adjoint with them "
                         f"over the intermediate's indices leaves {pn(name)}'s shape {fmt_dims(x.ty.full_dims)}"
                         " (transposed in numerator layout)")
        records.append({"name": name, "expression": name,
                        "shape": [v if isinstance(v, int) else str(v) for v in x.ty.full_dims],
                        "rule": "; ".join(OPS[u.op].rule for u in users) or None,
                        "adjoint": gradient_ascii})
    lines += ["", "result (simplified):"]
    taken = {n.params[0] for n in topological([f]) if n.op == "sym"}
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


class AdjointNames:
    """Renders the adjoints of a derivation, in the chosen style and in ASCII for `--json`.

    Each adjoint is built from the adjoints of its users (∂L/∂b = ∂L/∂c ⊙ (1 − c²)), so
    printing every one in full repeats the whole chain above it: a 1,000-deep chain would print
    megabytes.  Once an adjoint has been printed and is long, later lines refer to it by its
    name (`∂L/∂c`, `dL/dc` in ASCII): the derivation stays linear in the size of f.  Short
    adjoints are repeated, which reads better than a reference."""

    MIN_LEN = 24  # ASCII characters, as for the `z₁ = …` bindings of the main output

    def __init__(self, forward: dict, style: str):
        self.forward = forward
        self.style = style
        # forward names by id, adjoint names by node: one table per spelling
        self.shown_names, self.ascii_names = dict(forward), dict(forward)
        self.shown = Renderer(style, self.shown_names)
        self.ascii = Renderer("ascii", self.ascii_names)

    def texts(self, adjoint: Expr) -> tuple[str, str]:
        return self.shown.text(adjoint), self.ascii.text(adjoint)

    def name_after_printing(self, adjoint: Expr, name: str, ascii_text: str) -> None:
        if len(ascii_text) < self.MIN_LEN or id(adjoint) in self.forward or adjoint in self.shown_names:
            return
        self.shown_names[adjoint] = Verbatim(f"∂L/∂{pretty_name(name, self.style)}")
        self.ascii_names[adjoint] = Verbatim(f"dL/d{name}")


def own_step(node: Expr, bound: dict, style: str) -> str:
    """node's own definition: its operator applied to its arguments' names (node itself
    unnamed).  The name is lifted for the call rather than the table copied, so a derivation
    of 100,000 steps stays linear."""
    name = bound.pop(id(node), None)
    try:
        return Renderer(style, bound).text(node)
    finally:
        if name is not None:
            bound[id(node)] = name
