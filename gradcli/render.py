"""Expressions → text: unicode matrix notation, parseable ASCII (gradcli syntax), and LaTeX.

Each operator's notation lives in its `ops` entry; this module supplies what they share:
precedence-driven parentheses, Greek letters and subscripts for names, and `let` bindings.
A derivative is a DAG: printed as a tree, a shared subexpression would be repeated (a 32-layer
chain would print quadratically long), so large shared subexpressions get a name (`z₁ = …`)
and are printed once.
"""

from __future__ import annotations

import re

from .expr import OPS, Expr, topological

GREEK = {
    "alpha": ("α", r"\alpha"), "beta": ("β", r"\beta"), "gamma": ("γ", r"\gamma"),
    "delta": ("δ", r"\delta"), "eps": ("ε", r"\varepsilon"), "epsilon": ("ε", r"\varepsilon"),
    "zeta": ("ζ", r"\zeta"), "eta": ("η", r"\eta"), "theta": ("θ", r"\theta"),
    "iota": ("ι", r"\iota"), "kappa": ("κ", r"\kappa"), "lam": ("λ", r"\lambda"),
    "lambda": ("λ", r"\lambda"), "mu": ("μ", r"\mu"), "nu": ("ν", r"\nu"), "xi": ("ξ", r"\xi"),
    "pi": ("π", r"\pi"), "rho": ("ρ", r"\rho"), "sigma": ("σ", r"\sigma"), "tau": ("τ", r"\tau"),
    "phi": ("φ", r"\phi"), "chi": ("χ", r"\chi"), "psi": ("ψ", r"\psi"), "omega": ("ω", r"\omega"),
    "Gamma": ("Γ", r"\Gamma"), "Delta": ("Δ", r"\Delta"), "Theta": ("Θ", r"\Theta"),
    "Lambda": ("Λ", r"\Lambda"), "Xi": ("Ξ", r"\Xi"), "Pi": ("Π", r"\Pi"), "Sigma": ("Σ", r"\Sigma"),
    "Phi": ("Φ", r"\Phi"), "Psi": ("Ψ", r"\Psi"), "Omega": ("Ω", r"\Omega"),
}
_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_NAME_RE = re.compile(r"^([A-Za-z]+?)_?([0-9]*)$")


def pretty_name(name: str, style: str) -> str:
    """theta → θ, W1 → W₁, x_2 → x₂ (unicode); \\theta, W_{1} (LaTeX); unchanged in ASCII."""
    if style == "ascii":
        return name
    m = _NAME_RE.match(name)
    base, digits = (m.group(1), m.group(2)) if m else (name, "")
    if style == "unicode":
        core = GREEK.get(base, (base, ""))[0]
        return core + digits.translate(_SUB)
    core = GREEK.get(base, (None, None))[1]
    if core is None:
        core = base if len(base) == 1 else rf"\mathrm{{{base}}}" if m else rf"\mathrm{{{name}}}"
    return core + (f"_{{{digits}}}" if digits else "")


class Renderer:
    """Renders nodes in one style; `bound` maps nodes to names printed instead of them."""

    def __init__(self, style: str, bound: dict[int, str] | None = None):
        self.style = style
        self.bound = bound or {}
        self._memo: dict[int, tuple[str, float]] = {}

    def name(self, name: str) -> str:
        return pretty_name(name, self.style)

    def leaf_name(self, node: Expr) -> str:
        """The raw name of a symbol (for spacing juxtaposed products), '' otherwise."""
        while node.op == "T":
            node = node.args[0]
        return node.params[0] if node.op == "sym" else ""

    def dims_product(self, dims) -> tuple[str, float]:
        parts = [str(d) for d in dims]
        if len(parts) == 1:
            return parts[0], 6
        return ("·" if self.style == "unicode" else "*").join(parts), 2

    def render(self, node: Expr) -> tuple[str, float]:
        """Text and precedence of a node, memoised (each shared node is rendered once)."""
        key = id(node)
        if key in self.bound:
            return self.name(self.bound[key]), 6
        if key in self._memo:
            return self._memo[key]
        order = topological([node])
        # The inner sums of a chain a + b + c + … are rendered as part of the whole chain, not
        # each on its own: memoising every prefix of a 10,000-term sum would take gigabytes.
        interior = {id(n.args[0]) for n in order if n.op == "add" and n.args[0].op == "add"}
        for n in order:  # children first: no deep recursion
            if id(n) not in self._memo and id(n) not in self.bound and (id(n) not in interior or n is node):
                self._memo[id(n)] = self._render_one(n)
        return self._memo[key]

    def _render_one(self, node: Expr) -> tuple[str, float]:
        notation = OPS[node.op].notation
        if "custom" in notation:
            return notation["custom"](self, node)
        template, prec = notation[self.style]
        return template.format(*(self.child(a, 0) for a in node.args)), prec

    def child(self, node: Expr, min_prec: float) -> str:
        text, prec = self.render(node)
        if prec < min_prec:
            return ("\\left(" + text + "\\right)") if self.style == "latex" else "(" + text + ")"
        return text

    def text(self, node: Expr) -> str:
        return self.render(node)[0]


def render(node: Expr, style: str = "unicode") -> str:
    return Renderer(style).text(node)


def shared_bindings(roots: list[Expr], min_len: int = 24) -> list[Expr]:
    """Nodes used more than once across roots whose text is long: worth naming once."""
    uses: dict[int, int] = {}
    for n in topological(roots):
        for a in n.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
    r = Renderer("ascii")
    picked = []
    for n in topological(roots):
        if uses.get(id(n), 0) > 1 and n.args and n.op not in ("T", "fill") and len(r.text(n)) >= min_len:
            picked.append(n)
    return picked


def render_with_bindings(roots: list[Expr], style: str, names: list[str] | None = None,
                         min_len: int = 24) -> tuple[list[tuple[str, str]], list[str]]:
    """(bindings, texts): bindings [(name, text)] in dependency order, then each root's text."""
    shared = [n for n in shared_bindings(roots, min_len) if all(n is not r for r in roots)]
    bound: dict[int, str] = {}
    out: list[tuple[str, str]] = []
    for i, node in enumerate(shared):
        r = Renderer(style, bound)
        label = names[i] if names and i < len(names) else f"z{i + 1}"
        out.append((pretty_name(label, style), r.text(node)))
        bound[id(node)] = label
    r = Renderer(style, bound)
    return out, [r.text(root) for root in roots]
