"""Issue 19's comparator: is gradcli's printed derivative the textbook's, up to trivial rewrites?

"Trivial rewrites" are exactly the issue's: the ordering of sums and of scalar factors, `.T`
versus `'`, and parentheses that only group.  Both sides are parsed with gradcli's parser AS
WRITTEN — nothing is simplified — and reduced to a canonical key:

- a sum or difference is the sorted multiset of its signed terms (nested sums flattened, a
  minus distributed over a bracketed sum: `a - (b + c)` is `a - b - c`, which only moves brackets);
- a product term is its sign, the sorted scalar factors of its numerator, the sorted scalar
  factors of its denominator, and what is left: the element-wise (Hadamard) factors as a sorted
  multiset, matrix products as an ordered chain (associativity: `A@(B@C)` is `A@B@C`, as a
  textbook writes ABC); a sign anywhere in a product (`-2*x`, `2*(-x)`, `(-A)@B`) is the term's;
- numbers compare by value (2.0 == 2), a factor 1 is dropped; `'` and `.T` parse to one node;
- `‖x‖` and `‖x‖₂` of a vector, `‖A‖` and `‖A‖_F` of a matrix are one norm (numpy's norm).

Nothing else: no distribution over sums, no merged powers, no cancelled factors, no
`diag(a) − diag(b)` = `diag(a − b)` — those are the canonical forms issue 19 asks gradcli to
print, so the comparator must not grant them.  Which factors are scalar is decided from the
symbols' ranks (as gradcli infers them for the formula), not from any value.

Length ("printed symbols"): the characters, spaces left out, of the ASCII rendering of the
parsed form by `render` below, the same renderer for both sides.  gradcli's length counts the
form it prints: its formula with its shared subexpressions named (z1, z2, …), plus each
binding `z1=…`.  A derivative gradcli prints in index notation has no parsed form: its length
is the printed text without spaces, and it never equals a matrix formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gradcli.language.parse import parse
from gradcli.language.syntax import Binary, Call, Keyword, Node, Norm, Num, Sym, Transpose, Unary

# ------------------------------------------------------------------ kinds: S scalar, C column, R row, M matrix
REDUCTIONS = {"sum", "mean", "logsumexp", "det", "logdet", "tr", "trace", "dot", "norm", "norm1", "norm2",
              "max", "min", "prod"}
VECTOR_VALUED = {"softmax"}


def kind_of(node: Node, ranks: dict[str, int]) -> str:
    """S, C, R or M of a parsed node, from the symbols' ranks (0, 1, 2) — enough to tell the
    scalar factors of a product from the others."""
    if isinstance(node, Num):
        return "S"
    if isinstance(node, Sym):  # a name that is no symbol of the formula is a dimension's size: a scalar
        return "SCM"[ranks.get(node.name, 0)]
    if isinstance(node, Norm):
        return "S"
    if isinstance(node, Unary):
        return kind_of(node.operand, ranks)
    if isinstance(node, Transpose):
        return {"C": "R", "R": "C"}.get(k := kind_of(node.operand, ranks), k)
    if isinstance(node, Keyword):
        return kind_of(node.value, ranks)
    if isinstance(node, Call):
        args = [a for a in node.args if not isinstance(a, Keyword)]
        if node.name in ("sum", "mean") and len(node.args) > 1:
            return "C"
        if node.name in REDUCTIONS:
            return "S"
        if node.name in VECTOR_VALUED:
            return "C"
        if node.name == "diag":
            return "M" if kind_of(args[0], ranks) in "CR" else "C"
        if node.name in ("inv", "outer", "eye"):
            return "M"
        if node.name in ("ones", "zeros"):
            return "C" if len(args) == 1 else "M"
        return kind_of(args[0], ranks)  # element-wise
    assert isinstance(node, Binary)
    a, b = kind_of(node.left, ranks), kind_of(node.right, ranks)
    if node.op == "^":
        return a
    if node.op in "+-*/":
        if a == b or b == "S":
            return a
        if a == "S":
            return b
        return "M"  # broadcasting a column against a row
    table = {("R", "C"): "S", ("C", "C"): "S", ("C", "R"): "M", ("M", "C"): "C", ("R", "M"): "R",
             ("M", "M"): "M", ("C", "M"): "C", ("M", "R"): "M", ("S", "S"): "S"}
    return table.get((a, b), "M")


# ------------------------------------------------------------------ the canonical key
Key = Any


def _num(value: float) -> Key:
    return ("num", float(value))


def canonical(node: Node, ranks: dict[str, int]) -> Key:
    """The key two formulas share exactly when they differ by trivial rewrites only."""
    if isinstance(node, Binary) and node.op in "+-" or isinstance(node, Unary):
        terms = _terms(node, 1, ranks)
        if len(terms) == 1 and terms[0][0] == 1:
            return terms[0][1]
        return ("sum", tuple(sorted(terms, key=repr)))
    if isinstance(node, Binary) and node.op in "*/@" or isinstance(node, Num) and node.value < 0:
        sign, key = _product_key(node, ranks)
        return key if sign == 1 else ("sum", ((sign, key),))
    return _atom(node, ranks)


def _terms(node: Node, sign: int, ranks: dict[str, int]) -> list[tuple[int, Key]]:
    """Signed terms of a sum, nested sums and signs flattened."""
    if isinstance(node, Binary) and node.op in "+-":
        return _terms(node.left, sign, ranks) + _terms(node.right, sign if node.op == "+" else -sign, ranks)
    if isinstance(node, Unary):
        return _terms(node.operand, sign if node.op == "+" else -sign, ranks)
    s, key = _product_key(node, ranks)
    return [(sign * s, key)]


def _product_key(node: Node, ranks: dict[str, int]) -> tuple[int, Key]:
    sign, nums, dens, core = _factors(node, ranks)
    nums = sorted((k for k in nums if k != _num(1)), key=repr)
    dens = sorted((k for k in dens if k != _num(1)), key=repr)
    if not nums and not dens and core is not None:
        return sign, core
    if len(nums) == 1 and not dens and core is None:
        return sign, nums[0]
    return sign, ("prod", tuple(nums), tuple(dens), core)


def _factors(node: Node, ranks: dict[str, int]) -> tuple[int, list[Key], list[Key], Key]:
    """(sign, scalar numerator factors, scalar denominator factors, the non-scalar rest)."""
    if isinstance(node, Num):
        return (-1 if node.value < 0 else 1), [_num(abs(node.value))], [], None
    if isinstance(node, Unary):
        s, n, d, c = _factors(node.operand, ranks)
        return (-s if node.op == "-" else s), n, d, c
    if isinstance(node, Binary) and node.op in "*/@":
        s1, n1, d1, c1 = _factors(node.left, ranks)
        if node.op == "/" and kind_of(node.right, ranks) == "S":
            s2, d2, n2, c2 = _factors(node.right, ranks)  # a scalar divisor: its factors swap sides
            if c2 is not None:
                d2 = d2 + [c2]
                c2 = None
        elif node.op == "/":  # an element-wise quotient by an array
            s2, n2, d2, c2 = 1, [], [], ("hdiv", canonical(node.right, ranks))
        else:
            s2, n2, d2, c2 = _factors(node.right, ranks)
        core = _combine(c1, c2, "@" if node.op == "@" else "*")
        sign, nums, dens = s1 * s2, n1 + n2, d1 + d2
        if core is not None and kind_of(node, ranks) == "S":  # x'@y, a scalar: a scalar factor
            nums, core = nums + [core], None
        return sign, nums, dens, core
    if isinstance(node, Binary) and node.op in "+-":
        terms = _terms(node, 1, ranks)
        if len(terms) == 1:  # `-(x)` wrapped in brackets
            s, key = terms[0]
            return _wrap(s, key, node, ranks)
        return _wrap(1, ("sum", tuple(sorted(terms, key=repr))), node, ranks)
    return _wrap(1, _atom(node, ranks), node, ranks)


def _wrap(sign: int, key: Key, node: Node, ranks: dict[str, int]) -> tuple[int, list[Key], list[Key], Key]:
    if kind_of(node, ranks) == "S":
        return sign, [key], [], None
    return sign, [], [], key


def _combine(a: Key, b: Key, op: str) -> Key:
    if a is None:
        return b
    if b is None:
        return a
    if op == "@":
        return ("mm", _flat(a, "mm") + _flat(b, "mm"))
    return ("had", tuple(sorted(_flat(a, "had") + _flat(b, "had"), key=repr)))


def _flat(key: Key, tag: str) -> tuple[Key, ...]:
    return key[1] if isinstance(key, tuple) and key and key[0] == tag else (key,)


def _atom(node: Node, ranks: dict[str, int]) -> Key:
    if isinstance(node, Num):
        return _num(node.value)
    if isinstance(node, Sym):
        return ("sym", node.name)
    if isinstance(node, Transpose):
        return ("T", canonical(node.operand, ranks))
    if isinstance(node, Norm):
        operand_kind = kind_of(node.operand, ranks)
        kind = node.kind
        if kind in ("", "2") and operand_kind in "CR" or kind in ("", "F", "fro") and operand_kind == "M":
            kind = "euclid"
        return ("norm", kind, canonical(node.operand, ranks))
    if isinstance(node, Binary) and node.op == "^":
        return ("pow", canonical(node.left, ranks), canonical(node.right, ranks))
    if isinstance(node, Keyword):
        return ("kw", node.name, canonical(node.value, ranks))
    if isinstance(node, Call):
        name = "tr" if node.name == "trace" else node.name
        return ("call", name, node.deriv, tuple(canonical(a, ranks) for a in node.args))
    return canonical(node, ranks)


def key_of(text: str, ranks: dict[str, int]) -> Key:
    return canonical(parse(text).expr, ranks)


def same_up_to_trivial_rewrites(a: str, b: str, ranks: dict[str, int]) -> bool:
    return key_of(a, ranks) == key_of(b, ranks)


# ------------------------------------------------------------------ one renderer for both sides
PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "unary": 3, "^": 4, "'": 5}


def render(node: Node) -> str:
    """Compact ASCII of a parsed formula, brackets only where the grammar needs them."""
    return _render(node)[0]


def _render(node: Node) -> tuple[str, int]:
    """(text, precedence of its outermost operator; 9 for an atom)."""
    if isinstance(node, Num):
        text = repr(float(node.value)).removesuffix(".0")
        return text, 9
    if isinstance(node, Sym):
        return node.name, 9
    if isinstance(node, Norm):
        sub = {"": "", "2": "_2", "1": "_1", "inf": "_inf", "F": "_F", "fro": "_F", "*": "_*"}[node.kind]
        return f"||{render(node.operand)}||{sub}", 9
    if isinstance(node, Call):
        args = ",".join(f"{a.name}={render(a.value)}" if isinstance(a, Keyword) else render(a) for a in node.args)
        return f"{node.name}{chr(39) * node.deriv}({args})", 9
    if isinstance(node, Transpose):
        return _group(node.operand, PREC["'"]) + "'", PREC["'"]
    if isinstance(node, Unary):
        return node.op + _group(node.operand, PREC["unary"]), PREC["unary"]
    assert isinstance(node, Binary)
    p = PREC[node.op]
    if node.op == "^":  # right-associative; its right operand may carry a sign
        right = render(node.right) if isinstance(node.right, Unary) else _group(node.right, p)
        return f"{_group(node.left, p + 1)}^{right}", p
    return f"{_group(node.left, p)}{node.op}{_group(node.right, p + 1)}", p


def _group(node: Node, need: int) -> str:
    text, p = _render(node)
    return text if p >= need else f"({text})"


def length(text: str) -> int:
    """Printed symbols of a matrix formula: its rendering's characters (no spaces are rendered)."""
    return len(render(parse(text).expr))


# ------------------------------------------------------------------ one row
@dataclass(frozen=True)
class Comparison:
    label: str
    printed: str  # gradcli's ASCII, shared subexpressions expanded ('' where it prints index notation)
    shown: str  # what gradcli prints: the formula, then its bindings `z1 = …`
    textbook: str  # the textbook form gradcli's print matches, else the row's shortest form
    equal: bool
    length: int  # gradcli's printed symbols
    textbook_length: int

    @property
    def ratio(self) -> float:
        return self.length / self.textbook_length


def compare(row: Any) -> Comparison:
    """gradcli's derivative for a table row, against the row's textbook forms: equal when it is any
    of them up to trivial rewrites; its length against the shortest of them."""
    import gradcli
    from gradcli.api import render_derivatives

    problem = gradcli.analyze(row.formula)
    derivs = problem.hessians() if row.command == "hess" else problem.derivatives()
    (d,) = derivs
    ranks = {name: len(s.shape) for name, s in problem.symbols.items()}
    forms = [form for form, _source in row.forms]
    shortest = min(forms, key=length)  # the first of the shortest: the ratio is against it
    tb_len = length(shortest)
    expanded = d.text("ascii")
    if not expanded:  # no matrix formula: index notation
        index = d.formula("ascii") or ""
        return Comparison(row.label, "", index, shortest, False, len(index.replace(" ", "")), tb_len)
    bindings, (main,) = render_derivatives([d], "ascii")
    printed_len = length(main) + sum(len(name) + 1 + length(body) for name, body in bindings)
    shown = main + "".join(f"  where {name} = {body}" for name, body in bindings)
    matched = [form for form in forms if same_up_to_trivial_rewrites(expanded, form, ranks)]
    return Comparison(row.label, expanded, shown, matched[0] if matched else shortest, bool(matched), printed_len,
                      tb_len)


# ------------------------------------------------------------------ the figures
@dataclass(frozen=True)
class Figures:
    rows: int
    equal: int
    median_ratio: float
    worst_tenth_ratio: float  # the 90th percentile: the ratio the worst tenth reaches or passes
    max_ratio: float

    @property
    def percent_equal(self) -> float:
        return 100.0 * self.equal / self.rows


def figures(results: list[Comparison]) -> Figures:
    ratios = sorted(r.ratio for r in results)
    median = ratios[len(ratios) // 2] if len(ratios) % 2 else (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    tenth = ratios[min(len(ratios) - 1, int(0.9 * len(ratios)))]
    return Figures(len(results), sum(r.equal for r in results), median, tenth, ratios[-1])
