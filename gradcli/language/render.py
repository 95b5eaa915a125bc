"""Expressions → text: unicode matrix notation, parseable ASCII (gradcli syntax), and LaTeX.

Each operator's notation lives in its `ops` entry; this module supplies what they share:
precedence-driven parentheses, Greek letters and subscripts for names, and `let` bindings.
A derivative is a DAG: printed as a tree, a shared subexpression would be repeated (a 32-layer
chain would print quadratically long), so large shared subexpressions get a name (`z₁ = …`)
and are printed once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .expr import OPS, Expr, IllTyped, make_raw, topological

if TYPE_CHECKING:
    from .expr import CustomNotation

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
_NAME_RE = re.compile(r"^([A-Za-z]+?|[\u0391-\u03A9\u03B1-\u03C9])_?([0-9]*)$")
# Every Greek letter a name may hold (the grammar's NAME) spelled for pdflatex, which stops at a
# raw `θ`: its command, or where LaTeX has none the Latin letter it looks like, upright as Greek
# capitals are set (Α → \mathrm{A}, apart from the italic Latin A), and ο → o.
LATEX_GREEK = {**{uni: cmd for uni, cmd in GREEK.values()}, "ς": r"\varsigma", "υ": r"\upsilon",
               "Υ": r"\Upsilon", "ο": "o", **{g: rf"\mathrm{{{a}}}" for g, a in zip("ΑΒΕΖΗΙΚΜΝΟΡΤΧ", "ABEZHIKMNOPTX")}}


def _latex_text(name: str) -> str:
    """A name inside `\\mathrm{…}`: `_` escaped (a bare one is a subscript there), Greek spelled."""
    return "".join(r"\_" if ch == "_" else "{" + LATEX_GREEK[ch] + "}" if ch in LATEX_GREEK else ch
                   for ch in name)


# The functions LaTeX itself typesets upright (with amsmath's spacing): `\log x`, never
# `\operatorname{log}`; any other function name is an \operatorname.
LATEX_FUNCTIONS = frozenset("arccos arcsin arctan arg cos cosh cot coth csc deg det dim exp gcd hom inf "
                            "ker lg lim liminf limsup ln log max min sec sin sinh sup tan tanh".split())


def latex_function(name: str) -> str:
    """The LaTeX for a function's name: `\\log`, `\\exp`, … where LaTeX has one, else
    `\\operatorname{softmax}` (amsmath)."""
    return "\\" + name if name in LATEX_FUNCTIONS else rf"\operatorname{{{name}}}"


def latex_subscript(base: str, indices: Iterable[str]) -> str:
    """`X_{ki}` from X and the indices k, i; a base that already carries a subscript or
    superscript (`W_{1}`, `A^\\top`) or is not a single symbol is braced first: `{W_{1}}_{ki}`,
    never the double subscript `W_{1}_{ki}` that LaTeX rejects.  Indices longer than one
    letter are separated by commas."""
    idx = list(indices)
    sub = ("" if all(len(i) == 1 for i in idx) else ",").join(idx)
    simple = re.fullmatch(r"[A-Za-z]|\\[A-Za-z]+|\\mathrm\{[A-Za-z]+\}", base)
    return f"{base if simple else '{' + base + '}'}_{{{sub}}}"


_PRETTY: dict[tuple[str, str], str] = {}  # (name, style) -> its spelling: a name is spelled in
_PRETTY_LIMIT = 1 << 18  # the formula, the symbol table and the notes (a long formula: 50,000 names)


def pretty_name(name: str, style: str) -> str:
    """theta → θ, W1 → W₁, x_2 → x₂ (unicode); \\theta, W_{1} (LaTeX); unchanged in ASCII."""
    if style == "ascii":
        return name
    key = (name, style)
    found = _PRETTY.get(key)
    if found is None:
        if len(_PRETTY) >= _PRETTY_LIMIT:
            _PRETTY.clear()
        found = _PRETTY[key] = _spelled(name, style)
    return found


def _spelled(name: str, style: str) -> str:
    m = _NAME_RE.match(name)
    base, digits = (m.group(1), m.group(2)) if m else (name, "")
    if style == "unicode":
        return GREEK.get(base, (base, ""))[0] + digits.translate(_SUB)
    core = GREEK.get(base, ("", ""))[1] or LATEX_GREEK.get(base)
    if core is None:
        core = base if len(base) == 1 else rf"\mathrm{{{_latex_text(base if m else name)}}}"
    return core + (f"_{{{digits}}}" if digits else "")


class Verbatim(str):
    """A bound name printed exactly as given in every style (`∂L/∂b` in a derivation), not
    turned into Greek letters or subscripts."""


class Renderer:
    """Renders nodes in one style; `bound` maps nodes to names printed instead of them.

    The memo is keyed by the node itself (hash-consed nodes hash by identity), so a node made
    while rendering (the positive `c·x` of a printed `− c·x`) stays alive as long as its text
    is remembered: a key can never come back for another node.  `bound` is keyed by nodes too."""

    def __init__(self, style: str, bound: dict[Expr, str] | None = None, outside: bool = True):
        self.style = style
        self.bound = bound if bound is not None else {}
        self._memo: dict[Expr, tuple[str, float]] = {}
        self._outside = outside  # may write a transpose outside a product or sum (`OutsideTransposes`)
        self._transposes: OutsideTransposes | None = None

    def name(self, name: str) -> str:
        return pretty_name(name, self.style)

    def bound_name(self, node: Expr) -> str | None:
        if not self.bound:
            return None
        return self.bound.get(node)

    def leaf_name(self, node: Expr) -> str:
        """The raw name of a symbol (for spacing juxtaposed products), '' otherwise."""
        while node.op == "T":
            node = node.args[0]
        return node.params[0] if node.op == "sym" else ""

    def dims_product(self, dims: Iterable[Any]) -> tuple[str, float]:
        if self.style == "ascii" and not all(isinstance(d, int) for d in dims):
            return f"sum({self.ones(dims)})", 6  # a dimension is not a symbol: count the ones
        if self.style == "ascii":
            n = 1
            for d in dims:
                n *= d
            return str(n), 6
        parts = [str(d) for d in dims]
        if not parts:  # a scalar's one entry
            return "1", 6
        if len(parts) == 1:
            return parts[0], 6
        return ("·" if self.style == "unicode" else "*").join(parts), 2

    def ones(self, dims: Iterable[Any], fill: str = "ones") -> str:
        """`ones(m, n)`: the language's array of ones (or zeros) of a shape."""
        return f"{fill}({', '.join(str(d) for d in dims)})"

    def render(self, node: Expr) -> tuple[str, float]:
        """Text and precedence of a node, memoised (each shared node is rendered once)."""
        name = self.bound_name(node)
        if name is not None:
            return (str(name) if isinstance(name, Verbatim) else self.name(name)), 6
        found = self._memo.get(node)
        if found is not None:
            return found
        for n in self._pending(node):  # children first: no deep recursion
            self._memo[n] = self._render_one(n)
        return self._memo[node]

    def _pending(self, node: Expr) -> list[Expr]:
        """The nodes under node that still need text, arguments first.  The walk stops at
        nodes already rendered or bound, so rendering many roots of one DAG stays linear.  The
        inner sums of a chain a + b + c + … are rendered as part of the whole chain, not each on
        its own: memoising every prefix of a 10,000-term sum would take gigabytes."""
        order: list[Expr] = []
        seen: set[Expr] = set()
        stack = [(node, False)]
        while stack:
            n, expanded = stack.pop()
            if expanded:
                order.append(n)
                continue
            if n in seen:
                continue
            seen.add(n)
            stack.append((n, True))
            for a in reversed(n.args):
                if a not in seen and a not in self._memo and self.bound_name(a) is None:
                    stack.append((a, False))
        interior = {n.args[0] for n in order if n.op == "add" and n.args[0].op == "add"}
        return [n for n in order if n is node or n not in interior]

    def _render_one(self, node: Expr) -> tuple[str, float]:
        notation = OPS[node.op].notation
        if "custom" in notation:
            custom: CustomNotation = notation["custom"]  # type: ignore[assignment]
            own = custom(self, node)
        else:
            template, prec = notation[self.style]  # type: ignore[misc]
            own = template.format(*(self.child(a, 0) for a in node.args)), prec
        if self._outside and node.ty.is_matrix and node.op != "T" and OPS[node.op].untransposed is not None:
            if self._transposes is None:
                self._transposes = OutsideTransposes(self)
            flipped = self._transposes.outside(node)
            if flipped is not None:
                return self._transposes.plain.render(flipped)
        return own

    def child(self, node: Expr, min_prec: float) -> str:
        text, prec = self.render(node)
        if prec < min_prec:
            return ("\\left(" + text + "\\right)") if self.style == "latex" else "(" + text + ")"
        return text

    def text(self, node: Expr) -> str:
        return self.render(node)[0]


MAX_LOOK = 48  # nodes of a product or sum looked into for a transpose to write outside


class OutsideTransposes:
    """Where the printer writes a transpose outside a product or sum: `(XB + BX)ᵀ` for
    `BᵀXᵀ + XᵀBᵀ`, `−(X⁻¹BAX⁻¹)ᵀ` for `−X⁻ᵀAᵀBᵀX⁻ᵀ`.  The simplifier pushes transposes onto the
    leaves, its canonical form for finding like terms and symmetry; the printer writes a node N
    as (E)ᵀ, E built by the records' `untransposed` rules, where that is shorter.  The cost is
    counted on the structure, the same for every style: (E)ᵀ takes off the transposes E no longer
    has and adds the ones it puts on, one outside and a pair of parentheses; it is written when
    it saves two transposes or more (on a tie of length, the form with fewer transposes).  E is
    looked for through at most MAX_LOOK new nodes (each node's E is remembered), so printing
    stays linear."""

    def __init__(self, r: Renderer) -> None:
        self._r = r
        self.plain = Renderer(r.style, r.bound, outside=False)  # prints (E)ᵀ as it is built
        self._outside: dict[Expr, Expr | None] = {}  # node -> (E)ᵀ when that is printed instead
        self._untransposed: dict[Expr, tuple[Expr, int]] = {}  # node -> (E, transposes saved)
        self._saved_inside: dict[Expr, int] = {}  # node -> the transposes saved by what is written outside in it

    def outside(self, node: Expr) -> Expr | None:
        """(E)ᵀ where node is printed so, else None: where that saves two transposes or more,
        and more than what is written so inside it already saves (−(ABC)ᵀ, not (−ABC)ᵀ)."""
        if node not in self._outside:
            try:
                e, saved = self._untransposed_of(node, [MAX_LOOK])
            except (_TooLarge, IllTyped):
                self._outside[node] = None
                return None
            inside = max((self._saved_inside.get(a, 0) for a in node.args), default=0)
            flip = saved - 1 >= 2 and saved > inside
            self._outside[node] = make_raw("T", (e,)) if flip else None
            self._saved_inside[node] = saved if flip else inside
        return self._outside[node]

    def _untransposed_of(self, n: Expr, budget: list[int]) -> tuple[Expr, int]:
        """E with Eᵀ = n, by the records' rules, and the transposes written in n but not in E
        less those written in E but not in n; a named node or one without a rule is E = nᵀ."""
        found = self._untransposed.get(n)
        if found is not None:
            return found
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooLarge
        rule = OPS[n.op].untransposed
        saved = [1 if n.op == "T" else 0]

        def untransposed(a: Expr) -> Expr:
            e, s = self._untransposed_of(a, budget)
            saved[0] += s
            return e

        e = None
        if n.ty.is_scalar:
            e = n
        elif rule is not None and self._r.bound_name(n) is None:
            e = rule(n, untransposed)
        if e is None:
            e, saved[0] = make_raw("T", (n,)), -1
        self._untransposed[n] = e, saved[0]
        return e, saved[0]


class _TooLarge(Exception):
    """A product or sum too large to look into for an outside transpose."""


def render(node: Expr, style: str = "unicode") -> str:
    return Renderer(style).text(node)


def binding_prefix(taken: set[str]) -> str:
    """A prefix for binding names z1, z2, … that no symbol (or dimension) of the formula can
    be spelled with: z, else zz, zzz, …"""
    prefix = "z"
    while any(t.startswith(prefix) and t[len(prefix):].isdigit() for t in taken):
        prefix += "z"
    return prefix


def render_with_bindings(roots: list[Expr], style: str, names: list[str] | None = None,
                         min_len: int = 24, prefix: str = "z",
                         bound_nodes: list[Expr] | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """(bindings, texts): bindings [(name, text)] in dependency order, then each root's text
    (bound_nodes, when given, receives the node each binding names).

    A node used more than once whose text (with the names given so far) is at least min_len
    long gets a name, deciding children before their users in one pass: the texts are linear
    in the size of the DAG (a 900-deep chain prints in kilobytes, not gigabytes)."""
    uses: dict[Expr, int] = {}
    order = topological(roots)
    for n in order:
        for a in n.args:
            uses[a] = uses.get(a, 0) + 1
    is_root = set(roots)
    bound: dict[Expr, str] = {}
    probe = Renderer("ascii", bound)  # decides by the ASCII length, whatever the style
    shown = probe if style == "ascii" else Renderer(style, bound)
    out: list[tuple[str, str]] = []
    for n in order:
        # (never a row vector: a symbol declared (1, n) would read back as a matrix)
        if uses.get(n, 0) > 1 and n.args and n.op not in ("T", "fill") and not n.ty.row \
                and n not in is_root and len(probe.text(n)) >= min_len:
            i = len(out)
            label = names[i] if names and i < len(names) else f"{prefix}{i + 1}"
            out.append((pretty_name(label, style), shown.text(n)))
            bound[n] = label
            if bound_nodes is not None:
                bound_nodes.append(n)
    return out, [shown.text(root) for root in roots]


def render_formulas(formulas: list[Expr | None], style: str,
                    bound_nodes: list[Expr] | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """Several formulas (None where a derivative has no matrix formula: its text is ''), with
    large shared subexpressions named once.  The names (z1, z2, …; zz1, … if a formula has a
    symbol or dimension spelled so) never collide with the formulas' own names, so a binding
    can be read back as a symbol of its own shape.  Every style names the same nodes."""
    roots = [e for e in formulas if e is not None]
    taken: set[str] = set()
    for n in topological(roots):
        if n.op == "sym":
            taken.add(n.params[0])
        taken.update(str(d) for d in n.ty.dims)
    bindings, texts = render_with_bindings(roots, style, prefix=binding_prefix(taken), bound_nodes=bound_nodes)
    it = iter(texts)
    return bindings, [next(it) if e is not None else "" for e in formulas]
