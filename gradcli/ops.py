"""The operator table: for each operator, its shape rule, derivative rule, numpy
implementation, numpy source, notation and differential rule — in one entry, so adding an
operator is one `register` call.

Derivatives are vector-Jacobian products in the language of matrix differentials: if the
adjoint of a node N is G (so that dL = ⟨G, dN⟩), `vjp[i](N, G)` is the adjoint of argument i.
The rules build their results with the smart constructors of `simplify.py` (re-exported here,
so `ops.add`, `ops.mul`, ... are the one way to build nodes), whose hooks keep results readable.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Callable

from .expr import OPS as OPS, Expr, Op, ShapeMsg, make as make, make_raw, register
from .render import latex_function
from .shaperules import (broadcast_shape, matmul_shape, pow_shape, same_shape, square_to, sum_shape,
                         to_scalar, vector_only)
from .shapes import SCALAR, STRICT, DimMismatch, col, mat
from .simplify import (_fold, _simplify_add, _simplify_det, _simplify_div, _simplify_fill, _simplify_inv,
                       _simplify_log, _simplify_logdet, _simplify_matmul, _simplify_mul, _simplify_pow,
                       _simplify_sqrt, _simplify_sum, _simplify_T, _simplify_tr)
# the smart constructors, re-exported: `ops.add`, `ops.mul`, ... are the one way to build nodes
from .simplify import (IN_DERIVATIVE as IN_DERIVATIVE, T as T, add as add, const as const,  # noqa: F401
                       div as div, eye as eye, fill as fill, fn as fn, is_one as is_one,
                       is_zero as is_zero, like as like, matmul as matmul, mm as mm, mul as mul,
                       neg as neg, power as power, scale as scale, split_coef as split_coef,
                       sub as sub, summ as summ, sym as sym, unbroadcast as unbroadcast,
                       zeros as zeros)

if TYPE_CHECKING:
    from .expr import Array, Emit, Impl, Namespace, Notation, Params, ShapeContext, Simplify
    from .render import Renderer
    from .shapes import Ty

# ----------------------------------------------------------------- precedence of notation
ADD, MUL, JUXT, NEG, POW, POST, ATOM = 1, 2, 3, 2, 4, 5, 6


# ----------------------------------------------------------------- notation helpers
def func(uni: str, asc: str | None = None, latex: str | None = None) -> Notation:
    asc = asc or uni
    latex = (latex or latex_function(asc)).replace("{", "{{").replace("}", "}}")
    return {"unicode": (uni + "({0})", ATOM), "ascii": (asc + "({0})", ATOM),
            "latex": (latex + r"\left({0}\right)", ATOM)}


# ----------------------------------------------------------------- numeric helpers
class Deferred:
    """A value the evaluator keeps in a cheaper form for the only operators that consume it."""

    __slots__ = ()


class Diag(Deferred):
    """diag(d) kept as its vector d: the evaluator hands this to matmul instead of an n×n matrix
    when every user of a diag(·) node is a matrix product (a 2000×2000 Jacobian of tanh(Wx + b)
    is then d[:, None] * W, never diag(d) @ W)."""

    __slots__ = ("d",)

    def __init__(self, d: Array):
        self.d = d


class Scaled(Deferred):
    """c·z kept unmultiplied when only sums use it: a + (−1)·z is computed as a − z, one pass
    over the data instead of two (M − UVᵀ on a 3000×3000 M)."""

    __slots__ = ("c", "z")

    def __init__(self, c: Array, z: Array):
        self.c, self.z = c, z


def is_numpy(xp: Namespace) -> bool:
    """Whether xp is numpy itself: its fast paths (ufunc.outer, in-place writes, `np.diag`, the
    numpy-1 names) are for numpy only; any other namespace gets the array API standard's spelling
    (through array-api-compat for libraries that need a wrapper)."""
    return getattr(xp, "__name__", "") == "numpy"


def named(np_name: str, api_name: str) -> Impl:
    """An element-wise function numpy spells `np_name` and the array API standard `api_name`
    (numpy 1.x has only the first, array-api-strict only the second)."""
    def impl(xp: Namespace, node: Expr, a: Array) -> Array:
        return getattr(xp, np_name if is_numpy(xp) else api_name)(a)
    return impl


def diag_matrix(xp: Namespace, v: Array) -> Array:
    """diag(v) as an n×n matrix (the array API standard has no `diag`)."""
    if is_numpy(xp):
        return xp.diag(v)
    return v[:, None] * xp.eye(v.shape[0], dtype=v.dtype)


def _np_add(xp: Namespace, node: Expr, a: Array, b: Array) -> Array:
    if isinstance(a, Scaled):
        a, b = b, a
    if isinstance(b, Scaled):
        if isinstance(a, Scaled):
            a = a.c * a.z
        return a - b.z if b.c == -1.0 else a + b.c * b.z
    return a + b


def _np_matmul(xp: Namespace, node: Expr, a: Array, b: Array) -> Array:
    x, y = node.args
    if isinstance(a, Diag):
        if isinstance(b, Diag):
            return diag_matrix(xp, a.d * b.d)
        return a.d[:, None] * b if b.ndim == 2 else a.d * b
    if isinstance(b, Diag):
        return a * b.d  # broadcasting along the last axis scales the columns (or a row)
    if x.ty.is_col and y.ty.is_row:
        return xp.multiply.outer(a, b) if is_numpy(xp) else a[:, None] * b[None, :]
    return a @ b


def _np_T(xp: Namespace, node: Expr, a: Array) -> Array:
    return a.T if a.ndim == 2 else a


def _np_sum(xp: Namespace, node: Expr, a: Array) -> Array:
    axis, keep = node.params
    return xp.sum(a, axis=axis, keepdims=keep)


def _np_logdet(xp: Namespace, node: Expr, a: Array) -> Array:
    sign, value = xp.linalg.slogdet(a)
    if not is_numpy(xp):  # no branch on a value: a lazy array stays lazy
        return xp.where(sign > 0, value, xp.full_like(value, float("nan")))
    if sign <= 0:
        return float("nan")
    return value


def _np_softmax(xp: Namespace, node: Expr, a: Array) -> Array:
    e = xp.exp(a - xp.max(a))
    return e / xp.sum(e)


def _np_logsumexp(xp: Namespace, node: Expr, a: Array) -> Array:
    m = xp.max(a)
    return m + xp.log(xp.sum(xp.exp(a - m)))


def _np_sigmoid(xp: Namespace, node: Expr, a: Array) -> Array:
    return 0.5 * (xp.tanh(0.5 * a) + 1.0)


def _np_softplus(xp: Namespace, node: Expr, a: Array) -> Array:
    return xp.logaddexp(0.0, a) if is_numpy(xp) else xp.logaddexp(xp.zeros_like(a), a)


def _np_fill(xp: Namespace, node: Expr, v: Array) -> Array:
    if is_numpy(xp):  # a writable array: later element-wise steps may write over it
        return xp.full(node.ty.dims, v, dtype=float)
    return xp.broadcast_to(xp.asarray(v, dtype=xp.float64), node.ty.dims)


def _np_eye(xp: Namespace, node: Expr) -> Array:
    return xp.eye(node.ty.dims[0])


def _np_dim(xp: Namespace, node: Expr) -> Array:
    return float(node.params[0])


def _np_numel(xp: Namespace, node: Expr) -> Array:
    n = 1
    for d in node.params[0].dims:
        n *= d
    return float(n)


def _np_diagm(xp: Namespace, node: Expr, v: Array) -> Array:
    return diag_matrix(xp, v)


def _np_diagv(xp: Namespace, node: Expr, a: Array) -> Array:
    return xp.diagonal(a).copy() if is_numpy(xp) else xp.linalg.diagonal(a)


def _np_relu(xp: Namespace, node: Expr, a: Array) -> Array:
    return xp.maximum(a, 0.0) if is_numpy(xp) else xp.maximum(a, xp.zeros_like(a))


def _np_step(xp: Namespace, node: Expr, a: Array) -> Array:
    return (a > 0) * 1.0 if is_numpy(xp) else xp.astype(a > 0, a.dtype)


def _np_cbrt(xp: Namespace, node: Expr, a: Array) -> Array:
    if hasattr(xp, "cbrt"):
        return xp.cbrt(a)
    return xp.sign(a) * xp.abs(a) ** (1.0 / 3.0)  # not in the array API standard


def _np_trace(xp: Namespace, node: Expr, a: Array) -> Array:
    return xp.trace(a) if is_numpy(xp) else xp.linalg.trace(a)


# ----------------------------------------------------------------- the table
def _sym_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    ty: Ty = params[1]  # a symbol's (name, shape)
    return ty


def _const_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    v = node.value
    text = f"{v:g}" if not float(v).is_integer() or abs(v) >= 1e16 else str(int(v))
    if r.style == "ascii" and float(text) != v:
        text = repr(v)  # the shortest text that reads back as exactly this number
    if r.style == "latex" and "e" in text:
        m, e = text.split("e")
        text = rf"{m}\cdot 10^{{{int(e)}}}"
    if r.style == "unicode":
        text = text.replace("-", "−")
    return text, (NEG if v < 0 else ATOM)


register(Op("const", to_scalar, lambda xp, node: node.value,
            notation={"custom": _const_notation},
            emit=lambda c, n, a: c.literal(n.value)))
register(Op("sym", _sym_shape, lambda xp, node: None,
            notation={"custom": lambda r, node: (r.name(node.params[0]), ATOM)},
            emit=lambda c, n, a: c.symbol(n.params[0])))
register(Op("numel", to_scalar, _np_numel,
            notation={"custom": lambda r, node: r.dims_product(node.params[0].dims)},
            emit=lambda c, n, a: "float(" + " * ".join(c.dim(d) for d in n.params[0].dims) + ")"))


def _vjp_add_a(node: Expr, G: Expr) -> Expr:
    return unbroadcast(G, node.args[0].ty)


def _vjp_add_b(node: Expr, G: Expr) -> Expr:
    return unbroadcast(G, node.args[1].ty)


def _add_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    """A chain a + b − c + … is written in one pass down its left spine (joined once)."""
    terms = []
    n = node
    while n.op == "add" and (n is node or r.bound_name(n) is None):
        terms.append(n.args[1])
        n = n.args[0]
    parts = [r.child(n, ADD)]
    minus = " − " if r.style == "unicode" else " - "
    for b in reversed(terms):
        c, x = split_coef(b)
        if b.is_const and b.value < 0:
            c, x = b.value, const(1.0)
        if c < 0:
            parts.append(minus + r.child(scale(-c, x), ADD + 0.5))
        else:
            parts.append(" + " + r.child(b, ADD))  # a + (b + c) = a + b + c
    return "".join(parts), ADD


register(Op("add", broadcast_shape("+"), _np_add,
            vjp=(_vjp_add_a, _vjp_add_b), notation={"custom": _add_notation},
            simplify=_simplify_add,
            emit=lambda c, n, a: c.add(n, a),
            rule='d(A + B) = dA + dB (a broadcast operand gets the adjoint summed over the broadcast axes)'))


def _mul_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a, b = node.args
    if a.ty.is_scalar or b.ty.is_scalar:  # scaling: 2x, a·x, −x
        if a.is_const and a.value == -1.0:  # -(AB) = (-A)B: no parentheses needed for products
            minus = "−" if r.style == "unicode" else "-"
            return minus + r.child(b, NEG), NEG
        sep = {"unicode": "·", "ascii": "*", "latex": r" \cdot "}[r.style]
        if a.is_const and r.style != "ascii":
            left = r.child(a, MUL)
            right = r.child(b, MUL)  # c(XY) = (cX)Y: scaling needs no parentheses
            sep = "" if (right[:1].isalpha() or right[:1] in "(‖\\") and not a.value < 0 or (
                a.value < 0 and (right[:1].isalpha() or right[:1] in "(‖\\")) else sep
            if r.style == "latex" and sep == "":
                sep = " "
            return left + sep + right, MUL
        right = r.child(b, MUL if a.is_const else MUL + 0.5)  # c*(A@B) = (c*A)@B
        return r.child(a, MUL) + sep + right, MUL
    sep = {"unicode": " ⊙ ", "ascii": " * ", "latex": r" \odot "}[r.style]
    return r.child(a, MUL) + sep + r.child(b, MUL + 0.5), MUL


def _vjp_mul_a(node: Expr, G: Expr) -> Expr:
    return unbroadcast(mul(G, node.args[1]), node.args[0].ty)


def _vjp_mul_b(node: Expr, G: Expr) -> Expr:
    return unbroadcast(mul(G, node.args[0]), node.args[1].ty)


register(Op("mul", broadcast_shape("*"), lambda xp, node, a, b: a * b,
            vjp=(_vjp_mul_a, _vjp_mul_b), notation={"custom": _mul_notation},
            simplify=_simplify_mul,
            emit="{0} * {1}",
            rule='d(A ⊙ B) = dA ⊙ B + A ⊙ dB'))


def _div_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a, b = node.args
    if r.style == "latex" and b.ty.is_scalar:
        return rf"\frac{{{r.child(a, 0)}}}{{{r.child(b, 0)}}}", ATOM
    # by an array: element-wise, A ⊘ B as in unicode (a fraction bar under a matrix reads as A B⁻¹)
    sep = " / " if (b.ty.is_scalar or r.style == "ascii") else r" \oslash " if r.style == "latex" else " ⊘ "
    # a juxtaposed product in a denominator is parenthesised: x / (xᵀAx), not x / xᵀAx
    return r.child(a, MUL) + sep + r.child(b, MUL + 0.5 if r.style == "ascii" else POW), MUL


register(Op("div", broadcast_shape("/"), lambda xp, node, a, b: a / b,
            vjp=(lambda node, G: unbroadcast(div(G, node.args[1]), node.args[0].ty),
                 lambda node, G: unbroadcast(neg(div(mul(G, node), node.args[1])), node.args[1].ty)),
            notation={"custom": _div_notation}, simplify=_simplify_div,
            fails="division by zero",
            emit="{0} / {1}",
            rule='d(A ⊘ B) = dA ⊘ B − A ⊙ dB ⊘ B²'))


def _pow_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a, b = node.args
    base = r.child(a, POW + 0.5)
    # A matrix's power is element-wise (numpy); plain X² / X⁻¹ would read as X·X / inv(X), so
    # unicode and LaTeX write the Hadamard power X∘² / X^{\circ 2}.  ASCII is the language (X^2).
    hadamard = a.ty.is_matrix
    if r.style == "unicode" and b.is_const and float(b.value).is_integer() and -9 <= b.value <= 9:
        sup = str(int(b.value)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
        return base + ("∘" if hadamard else "") + sup, POW
    if r.style == "latex":
        return base + "^{" + (r"\circ " if hadamard else "") + r.child(b, 0) + "}", POW
    if r.style == "unicode" and hadamard:
        return base + "^∘" + r.child(b, POW), POW
    return base + "^" + r.child(b, POW), POW


def _vjp_pow_base(node: Expr, G: Expr) -> Expr:
    a, b = node.args
    if b.is_const:
        return mul(G, mul(b, power(a, const(b.value - 1.0))))
    return mul(G, mul(b, power(a, sub(b, const(1.0)))))


def _vjp_pow_exp(node: Expr, G: Expr) -> Expr:
    a, _ = node.args
    return unbroadcast(mul(G, mul(node, fn("log", a))), SCALAR)


register(Op("pow", pow_shape, lambda xp, node, a, b: a ** b,
            vjp=(_vjp_pow_base, _vjp_pow_exp), notation={"custom": _pow_notation},
            simplify=_simplify_pow, fails="power of a negative number or of zero",
            emit="{0} ** {1}",
            rule='d(Aᵖ) = p·Aᵖ⁻¹ ⊙ dA (element-wise chain rule)'))


def _vjp_matmul_a(node: Expr, G: Expr) -> Expr:
    a, b = node.args
    return like(mm(G, T(b)), a.ty)


def _vjp_matmul_b(node: Expr, G: Expr) -> Expr:
    a, b = node.args
    return like(mm(T(a), G), b.ty)


_FUNC_WORD = re.compile(r"[A-Za-z]{2,}\(")


def _rightmost(e: Expr) -> Expr:
    while e.op == "matmul":
        e = e.args[1]
    return e


def _ascii_chain(node: Expr) -> list[Expr] | None:
    """The factors of a product chain F₁ @ F₂ @ … @ F_k, when writing it ungrouped means the same:
    the language groups from the left, so no partial product F₁…F_j (j < k) may be a scalar
    (xᵀy inside a chain is a scalar factor, which @ does not take)."""
    factors = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.op == "matmul":
            stack.extend(reversed(n.args))
        else:
            factors.append(n)
    ty = factors[0].ty
    for f in factors[1:-1]:
        try:
            ty = OPS["matmul"].shape(STRICT, (ty, f.ty), ())
        except (ShapeMsg, DimMismatch):
            return None
        if ty.is_scalar:
            return None
    return factors


def _matmul_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    a, b = node.args
    if r.style == "ascii":  # as the grammar reads it: *, / and @ are one left-associative level
        factors = _ascii_chain(node) if b.op == "matmul" else None
        if factors is None:
            return r.child(a, MUL) + " @ " + r.child(b, MUL + 0.5), MUL
        return " @ ".join([r.child(factors[0], MUL)] + [r.child(f, MUL + 0.5) for f in factors[1:]]), MUL
    left, right = r.child(a, JUXT), r.child(b, JUXT)
    sep = "" if r.style == "unicode" else " "
    if r.style == "unicode" and (left[-1:].isalnum() or left[-1:] in "ᵀ¹)") and right[:1].isalnum() and (
            len(r.name(r.leaf_name(a)).rstrip("₀₁₂₃₄₅₆₇₈₉")) > 1 or
            len(r.name(r.leaf_name(b)).rstrip("₀₁₂₃₄₅₆₇₈₉")) > 1 or _FUNC_WORD.match(right)
            or (left.endswith(")") and _rightmost(a).op not in ("add", "mul", "div", "sym", "T"))):
        sep = " "  # Xᵀ diag(…), W x_in: separate words, keep single letters together (XΘ)
    return left + sep + right, JUXT


register(Op("matmul", matmul_shape, _np_matmul, vjp=(_vjp_matmul_a, _vjp_matmul_b),
            notation={"custom": _matmul_notation}, simplify=_simplify_matmul,
            emit=lambda c, n, a: c.matmul(n, a),
            rule='d(AB) = dA·B + A·dB and ⟨G, dA·B⟩ = ⟨GBᵀ, dA⟩, ⟨G, A·dB⟩ = ⟨AᵀG, dB⟩'))


def _T_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    (a,) = node.args
    if a.op == "inv":
        inner = r.child(a.args[0], POST + 0.5)
        return inner + {"unicode": "⁻ᵀ", "ascii": "'", "latex": "^{-\\top}"}[r.style] if r.style != "ascii" \
            else "inv(" + r.child(a.args[0], 0) + ")'", POST
    mark = {"unicode": "ᵀ", "ascii": "'", "latex": "^\\top"}[r.style]
    return r.child(a, POST + 0.5) + mark, POST


register(Op("T", lambda ctx, tys, p: tys[0].transposed(), _np_T,
            vjp=(lambda node, G: T(G),), notation={"custom": _T_notation},
            simplify=_simplify_T,
            emit=lambda c, n, a: f"{a[0]}.T" if n.ty.is_matrix else a[0],
            rule='d(Aᵀ) = (dA)ᵀ and ⟨G, dAᵀ⟩ = ⟨Gᵀ, dA⟩'))


# element-wise functions: name, numpy, derivative f'(x) (as an expression in x and f(x)), notation
def _elementwise(name: str, impl: Impl, deriv: Callable[[Expr, Expr], Expr], notation: Notation | None = None,
                 simplify: Simplify | None = None, fails: str = "", emit: Emit = None) -> None:
    def vjp(node: Expr, G: Expr) -> Expr:
        return mul(G, deriv(node.args[0], node))
    register(Op(name, same_shape, impl, vjp=(vjp,), notation=notation or func(name),
                simplify=simplify, fails=fails, emit=emit or f"np.{name}({{0}})",
                rule=f"d {name}(A) = {name}'(A) ⊙ dA (element-wise chain rule)"))


def one() -> Expr:
    return const(1.0)


_elementwise("exp", lambda xp, n, a: xp.exp(a), lambda x, y: y, simplify=_fold(math.exp),
             fails="overflow in exp")
_elementwise("log", lambda xp, n, a: xp.log(a), lambda x, y: div(one(), x),
             simplify=_simplify_log, fails="log of a value that is not positive")
_elementwise("sqrt", lambda xp, n, a: xp.sqrt(a), lambda x, y: div(const(0.5), y), simplify=_simplify_sqrt,
             notation={"unicode": ("√({0})", ATOM), "ascii": ("sqrt({0})", ATOM),
                       "latex": (r"\sqrt{{{0}}}", ATOM)},
             fails="sqrt of a negative value")
_elementwise("sin", lambda xp, n, a: xp.sin(a), lambda x, y: fn("cos", x), func("sin", latex=r"\sin"))
_elementwise("cos", lambda xp, n, a: xp.cos(a), lambda x, y: neg(fn("sin", x)), func("cos", latex=r"\cos"))
_elementwise("tan", lambda xp, n, a: xp.tan(a), lambda x, y: add(one(), power(y, const(2.0))),
             func("tan", latex=r"\tan"))
_elementwise("tanh", lambda xp, n, a: xp.tanh(a), lambda x, y: sub(one(), power(y, const(2.0))),
             func("tanh", latex=r"\tanh"))
_elementwise("sigmoid", _np_sigmoid, lambda x, y: mul(y, sub(one(), y)),
             func("σ", "sigmoid", r"\sigma"), emit="_sigmoid({0})")
_elementwise("relu", _np_relu, lambda x, y: fn("step", x), emit="np.maximum({0}, 0.0)")
_elementwise("softplus", _np_softplus, lambda x, y: fn("sigmoid", x), emit="np.logaddexp(0.0, {0})")
_elementwise("abs", lambda xp, n, a: xp.abs(a), lambda x, y: make("abs_slope", x),
             {"unicode": ("|{0}|", ATOM), "ascii": ("abs({0})", ATOM),
              "latex": (r"\left|{0}\right|", ATOM)})
_elementwise("sign", lambda xp, n, a: xp.sign(a), lambda x, y: zeros(x.ty) if not x.ty.is_scalar else const(0.0))
_elementwise("step", _np_step, lambda x, y: zeros(x.ty) if not x.ty.is_scalar else const(0.0),
             {"unicode": ("𝟙({0} > 0)", ATOM), "ascii": ("sign(relu({0}))", ATOM),
              "latex": (r"\mathbf{{1}}\left[{0} > 0\right]", ATOM)}, emit="({0} > 0) * 1.0")



# numpy's other smooth element-wise functions.  square and reciprocal are spelled x² and 1/x as
# soon as they are built, so they print, simplify and differentiate as powers and quotients.
def _as_power(p: float) -> Simplify:
    return lambda args, params: power(args[0], const(p)) if p != -1.0 else div(one(), args[0])


def _ln(base: float) -> Expr:
    """log(base) kept as written (not folded to 0.693147…), so a printed derivative of log2 or
    log10 re-parses to exactly its value."""
    return make_raw("log", (const(base),))


_elementwise("square", lambda xp, n, a: a * a, lambda x, y: mul(const(2.0), x), simplify=_as_power(2.0),
             emit="np.square({0})")
_elementwise("reciprocal", lambda xp, n, a: 1.0 / a, lambda x, y: neg(power(x, const(-2.0))),
             simplify=_as_power(-1.0), fails="division by zero", emit="1.0 / {0}")
_elementwise("log1p", lambda xp, n, a: xp.log1p(a), lambda x, y: div(one(), add(one(), x)),
             fails="log1p of a value ≤ −1")
_elementwise("expm1", lambda xp, n, a: xp.expm1(a), lambda x, y: fn("exp", x), fails="overflow in expm1")
_elementwise("log2", lambda xp, n, a: xp.log2(a), lambda x, y: div(one(), mul(_ln(2.0), x)),
             func("log2", latex=r"\log_2"), fails="log2 of a value that is not positive")
_elementwise("log10", lambda xp, n, a: xp.log10(a), lambda x, y: div(one(), mul(_ln(10.0), x)),
             func("log10", latex=r"\log_{10}"), fails="log10 of a value that is not positive")
_elementwise("sinh", lambda xp, n, a: xp.sinh(a), lambda x, y: fn("cosh", x),
             func("sinh", latex=r"\sinh"), fails="overflow in sinh")
_elementwise("cosh", lambda xp, n, a: xp.cosh(a), lambda x, y: fn("sinh", x),
             func("cosh", latex=r"\cosh"), fails="overflow in cosh")
_elementwise("arcsin", named("arcsin", "asin"),
             lambda x, y: div(one(), fn("sqrt", sub(one(), power(x, const(2.0))))),
             func("arcsin", latex=r"\arcsin"), fails="arcsin of a value outside [−1, 1]")
_elementwise("arccos", named("arccos", "acos"),
             lambda x, y: neg(div(one(), fn("sqrt", sub(one(), power(x, const(2.0)))))),
             func("arccos", latex=r"\arccos"), fails="arccos of a value outside [−1, 1]")
_elementwise("arctan", named("arctan", "atan"), lambda x, y: div(one(), add(one(), power(x, const(2.0)))),
             func("arctan", latex=r"\arctan"))
_elementwise("arcsinh", named("arcsinh", "asinh"),
             lambda x, y: div(one(), fn("sqrt", add(power(x, const(2.0)), one()))))
_elementwise("arctanh", named("arctanh", "atanh"), lambda x, y: div(one(), sub(one(), power(x, const(2.0)))),
             fails="arctanh of a value outside (−1, 1)")
_elementwise("cbrt", _np_cbrt, lambda x, y: div(one(), mul(const(3.0), power(y, const(2.0)))),
             fails="division by zero")


def _np_abs_slope(xp: Namespace, node: Expr, a: Array) -> Array:
    """sign(a): the derivative of |a|, and at a = 0 the subgradient 0 — with a warning, because
    |a| has no derivative there."""
    if bool(xp.any(a == 0)):
        from .nondiff import warn_nondifferentiable

        warn_nondifferentiable("abs({0}) at an entry equal to 0", node.args[0], "0 (a subgradient)")
    return xp.sign(a)


# The derivative of abs: sign(x), printed so.  Its own operator only so that evaluating it at a
# zero entry warns (see "Decisions" in the README); sign(x) typed by a user stays quiet.
register(Op("abs_slope", same_shape, _np_abs_slope,
            vjp=(lambda node, G: zeros(node.ty) if not node.ty.is_scalar else const(0.0),),
            notation=func("sign"), emit="np.sign({0})",
            rule="d sign(A) = 0"))

def _apply_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    name, order = node.params
    prime = "'" * order
    return r.name(name) + prime + "(" + r.child(node.args[0], 0) + ")", ATOM


register(Op("apply", same_shape, lambda xp, node, a: None,
            vjp=(lambda node, G: mul(G, make("apply", node.args[0],
                                             params=(node.params[0], node.params[1] + 1))),),
            notation={"custom": _apply_notation},
            rule="d h(A) = h'(A) ⊙ dA (element-wise chain rule)"))


def _vjp_sum(node: Expr, G: Expr) -> Expr:
    a = node.args[0]
    axis, keep = node.params
    if axis is None:
        return fill(G, a.ty)
    return make("expand", G, params=(axis % a.ty.rank, keep, a.ty))


def _sum_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    axis, keep = node.params
    inner = r.child(node.args[0], 0)
    if r.style == "latex":
        return (r"\sum " if axis is None else rf"\sum_{{\mathrm{{axis}}={axis}}} ") + r.child(node.args[0], MUL + 0.5), MUL
    if axis is None:
        return f"sum({inner})", ATOM
    if not keep:
        return f"sum({inner}, {axis})", ATOM
    a = node.args[0]
    if r.style == "ascii":  # numpy's keepdims as a product with ones: 𝟙ᵀA, A𝟙
        if a.ty.is_vector:
            return f"{r.ones((1, a.ty.dims[0]))} @ {r.child(a, MUL + 0.5)}", MUL
        if axis % 2 == 0:
            return f"{r.ones((1, a.ty.dims[0]))} @ {r.child(a, MUL + 0.5)}", MUL
        return f"{r.child(a, MUL)} @ {r.ones((a.ty.dims[1], 1))}", MUL
    return f"sum({inner}, {axis}, keepdims)", ATOM


register(Op("sum", sum_shape, _np_sum, vjp=(_vjp_sum,), notation={"custom": _sum_notation},
            simplify=_simplify_sum,
            emit=lambda c, n, a: f"np.sum({a[0]}, axis={n.params[0]}, keepdims={n.params[1]})" if n.params[0] is not None else f"np.sum({a[0]})",
            rule='d sum(A) = ⟨𝟙, dA⟩'))


def _expand_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    ty: Ty = params[2]  # (axis, keepdims, the shape expanded to)
    return ty


def _np_expand_full(xp: Namespace, node: Expr, g: Array) -> Array:
    axis, keep, ty = node.params
    g = xp.asarray(g)  # the adjoint of a scalar may be a Python number (sum(x, 0) of a vector)
    if not keep and g.ndim < len(ty.dims):
        g = xp.expand_dims(g, axis)
    return xp.broadcast_to(g, ty.dims)


def _expand_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    axis, keep, ty = node.params
    g = node.args[0]
    if r.style == "ascii":  # copies of g along the axis: a product with ones, as numpy broadcasts
        dims = ty.dims
        if len(dims) == 2 and axis % 2 == 1 and not keep:  # g as a column: g𝟙ᵀ
            column = r.child(g, MUL) if not g.ty.row else r.child(g, POST + 0.5) + "'"
            return f"{column} @ {r.ones((dims[1],))}'", MUL
        if len(dims) == 2 and axis % 2 == 0 and not keep:  # g as a row: 𝟙gᵀ
            row = r.child(g, MUL + 0.5) if g.ty.row else r.child(g, POST + 0.5) + "'"
            return f"{r.ones((dims[0],))} @ {row}", MUL
        if len(dims) == 2 and axis % 2 == 1:  # g is (m, 1)
            return f"{r.child(g, MUL)} @ {r.ones((1, dims[1]))}", MUL
        if len(dims) == 2:  # g is (1, n)
            return f"{r.ones((dims[0], 1))} @ {r.child(g, MUL + 0.5)}", MUL
        return f"{r.child(g, MUL)}*{r.ones(dims)}", MUL  # a vector from a scalar (or (1,))
    ones = "𝟙" if r.style == "unicode" else r"\mathbf{1}"
    if axis == 0 and not keep:  # each row is Gᵀ: 𝟙Gᵀ
        return ones + r.child(T(g), JUXT), JUXT
    return r.child(g, JUXT) + ones + ("ᵀ" if r.style == "unicode" else r"^\top"), JUXT


register(Op("expand", _expand_shape, _np_expand_full,
            vjp=(lambda node, G: summ(G, node.params[0], node.params[1]),),
            notation={"custom": _expand_notation},
            emit=lambda c, n, a: c.expand(n, a),
            rule='d expand(g) = expand(dg)'))


def _fill_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    v = node.args[0]
    if r.style == "ascii":  # ones(m, n) and zeros(m, n) carry the shape; a row is ones(n)'
        ty = node.ty
        word = "zeros" if is_zero(v) else "ones"
        text = r.ones(ty.dims, word) + ("'" if ty.row else "")
        if is_zero(v) or is_one(v):
            return text, (POST if ty.row else ATOM)
        return r.child(v, MUL) + "*" + text, MUL
    ones = {"unicode": "𝟙", "latex": r"\mathbf{1}"}[r.style]
    if node.ty.row:  # a row of ones is 𝟙ᵀ
        ones += "ᵀ" if r.style == "unicode" else r"^\top"
    if is_zero(v):
        return "0", ATOM
    if is_one(v):
        return ones, ATOM
    return r.child(v, MUL) + ("·" if r.style == "unicode" else r" \cdot ") + ones, MUL


register(Op("fill", lambda ctx, tys, p: p[0], _np_fill,
            vjp=(lambda node, G: summ(G),), notation={"custom": _fill_notation},
            simplify=_simplify_fill,
            emit=lambda c, n, a: f"np.full({c.shape(n.ty)}, {a[0]})",
            rule='d(c𝟙) = dc·𝟙'))

register(Op("mean", to_scalar, lambda xp, node, a: xp.mean(a),
            vjp=(lambda node, G: fill(div(G, make_raw("numel", (), (node.args[0].ty,))), node.args[0].ty),),
            notation=func("mean"),
            emit="np.mean({0})",
            rule='d mean(A) = ⟨𝟙/N, dA⟩'))
register(Op("logsumexp", to_scalar, _np_logsumexp,
            vjp=(lambda node, G: mul(G, fn("exp", sub(node.args[0], node)))
                 if not node.args[0].ty.is_vector else mul(G, fn("softmax", node.args[0])),),
            notation=func("logsumexp"),
            emit="_logsumexp({0})",
            rule='d logsumexp(a) = ⟨softmax(a), da⟩'))


def _vjp_softmax(node: Expr, G: Expr) -> Expr:
    s = node  # d softmax: s ⊙ (G − sᵀG)
    return sub(mul(s, G), mul(matmul(T(like(s, col(s.ty.dims[0]))), like(G, col(s.ty.dims[0]))), s))


register(Op("softmax", vector_only("softmax", lambda ty: ty), _np_softmax,
            vjp=(_vjp_softmax,), notation=func("softmax"),
            emit="_softmax({0})",
            rule='d softmax(v) = (diag(s) − ssᵀ) dv with s = softmax(v)'))


def _norm_notation(sub_u: str, sub_l: str, sq: bool = False) -> Notation:
    def render(r: Renderer, node: Expr) -> tuple[str, float]:
        inner = r.child(node.args[0], 0)
        if r.style == "unicode":
            return "‖" + inner + "‖" + sub_u + ("²" if sq else ""), ATOM if not sq else POW
        if r.style == "latex":
            return r"\left\|" + inner + r"\right\|" + sub_l + ("^2" if sq else ""), ATOM if not sq else POW
        if sub_u == "₁" and node.args[0].ty.is_matrix:  # entry-wise: not the induced ||A||_1
            return "sum(abs(" + inner + "))", ATOM
        return "||" + inner + "||" + ("_1" if sub_u == "₁" else "") + ("^2" if sq else ""), ATOM if not sq else POW
    return {"custom": render}


register(Op("norm2", to_scalar, lambda xp, node, a: xp.sqrt(xp.sum(a * a)),
            vjp=(lambda node, G: mul(div(G, node), node.args[0]),),
            notation=_norm_notation("", ""),
            emit="np.sqrt(np.vdot({0}, {0}))",
            rule='d‖A‖ = ⟨A/‖A‖, dA⟩'))
register(Op("sqnorm", to_scalar, lambda xp, node, a: xp.sum(a * a),
            vjp=(lambda node, G: mul(mul(const(2.0), G), node.args[0]),),
            notation=_norm_notation("", "", sq=True),
            emit="np.vdot({0}, {0})",
            rule='d‖A‖² = ⟨2A, dA⟩'))
register(Op("norm1", to_scalar, lambda xp, node, a: xp.sum(xp.abs(a)),
            vjp=(lambda node, G: mul(G, make("abs_slope", node.args[0])),),
            notation=_norm_notation("₁", "_1"),
            emit="np.sum(np.abs({0}))",
            rule='d‖A‖₁ = ⟨sign(A), dA⟩'))


def _inv_T(a: Expr) -> Expr:
    return T(make("inv", a))


register(Op("tr", square_to("tr", lambda ty: SCALAR), _np_trace,
            vjp=(lambda node, G: mul(G, eye(node.args[0].ty.dims[0])),),
            notation=func("tr", latex=r"\operatorname{tr}"), simplify=_simplify_tr,
            emit="np.trace({0})",
            rule='d tr(A) = ⟨I, dA⟩'))
register(Op("det", square_to("det", lambda ty: SCALAR), lambda xp, node, a: xp.linalg.det(a),
            vjp=(lambda node, G: mul(mul(G, node), _inv_T(node.args[0])),),
            notation=func("det", latex=r"\det"), simplify=_simplify_det,
            emit="np.linalg.det({0})",
            rule='d det(A) = det(A)·⟨A⁻ᵀ, dA⟩'))
register(Op("logdet", square_to("logdet", lambda ty: SCALAR), _np_logdet,
            vjp=(lambda node, G: mul(G, _inv_T(node.args[0])),),
            notation=func("logdet", latex=r"\log\det"), simplify=_simplify_logdet,
            fails="logdet of a matrix whose determinant is not positive",
            emit="_logdet({0})",
            rule='d log det(A) = ⟨A⁻ᵀ, dA⟩'))


def _inv_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    if r.style == "ascii":
        return "inv(" + r.child(node.args[0], 0) + ")", ATOM
    return r.child(node.args[0], POST + 0.5) + ("⁻¹" if r.style == "unicode" else "^{-1}"), POST


def _np_inv(xp: Namespace, node: Expr, a: Array) -> Array:
    return xp.linalg.inv(a)


register(Op("inv", square_to("inv", lambda ty: ty), _np_inv,
            vjp=(lambda node, G: neg(matmul(matmul(T(node), G), T(node))),),
            notation={"custom": _inv_notation}, simplify=_simplify_inv,
            fails="inverse of a singular matrix",
            emit="np.linalg.inv({0})",
            rule='d(A⁻¹) = −A⁻¹ dA A⁻¹ and ⟨G, −A⁻¹dA A⁻¹⟩ = ⟨−A⁻ᵀGA⁻ᵀ, dA⟩'))
register(Op("diagm", vector_only("diag", lambda ty: mat(ty.dims[0], ty.dims[0])), _np_diagm,
            vjp=(lambda node, G: like(make("diagv", G), node.args[0].ty),),
            notation=func("diag", latex=r"\operatorname{diag}"),
            emit="np.diag({0})",
            rule='d diag(v) = diag(dv) and ⟨G, diag(dv)⟩ = ⟨diag(G), dv⟩'))
register(Op("diagv", square_to("diag", lambda ty: col(ty.dims[0])), _np_diagv,
            vjp=(lambda node, G: make("diagm", G),),
            notation=func("diag", latex=r"\operatorname{diag}"),
            emit="np.diagonal({0}).copy()",
            rule='d diag(A) = diag(dA)'))
def _np_congruence(xp: Namespace, node: Expr, p: Array, w: Array) -> Array:
    """Pᵀ diag(w) P.  With w ≥ 0 it is BᵀB for B = diag(√w) P, and a product of a matrix with
    its own transpose is a symmetric rank-k update in BLAS: half the flops of a general product,
    and a result that is symmetric to the last bit.  Otherwise (Pᵀ w) P as written."""
    if is_numpy(xp) and bool(xp.all(w >= 0)):  # (a branch on values: numpy only, not lazily)
        b = xp.sqrt(w)[:, None] * p
        return b.T @ b
    return (p.T * w) @ p


def _congruence_shape(ctx: ShapeContext, tys: tuple[Ty, ...], params: Params) -> Ty:
    p, w = tys
    ctx.same(p.dims[0], w.dims[0])
    return mat(p.dims[1], p.dims[1])


def _congruence_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    p, w = r.child(node.args[0], JUXT), r.child(node.args[1], ADD)
    pt = r.child(T(node.args[0]), JUXT)
    if r.style == "ascii":
        return f"{pt} @ diag({w}) @ {p}", MUL
    diag = r"\operatorname{diag}\left(" + w + r"\right)" if r.style == "latex" else f"diag({w})"
    return f"{pt} {diag} {p}", JUXT


# Evaluation only: the evaluator rewrites a product Pᵀ diag(w) P (the Hessian of every
# generalised linear model, XᵀDX) into this node; formulas never contain it, and `--emit numpy`
# writes the DAG as built, so it has no derivative rule and no numpy source.
register(Op("congruence", _congruence_shape, _np_congruence,
            notation={"custom": _congruence_notation}))
register(Op("eye", lambda ctx, tys, p: mat(p[0], p[0]), _np_eye,
            notation={"custom": lambda r, node: (f"eye({node.params[0]})" if r.style == "ascii" else "I", ATOM)},
            emit=lambda c, n, a: f"np.eye({c.dim(n.params[0])})"))


def derivative_of_elementwise(name: str, x: Expr) -> Expr:
    """f'(x) for an element-wise builtin f, from its own derivative rule (used to evaluate h')."""
    node = fn(name, x)
    ones = fill(const(1.0), x.ty) if not x.ty.is_scalar else const(1.0)
    return OPS[name].vjp[0](node, ones)

ELEMENTWISE = ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "softplus",
               "abs", "sign", "square", "reciprocal", "log1p", "expm1", "log2", "log10", "sinh", "cosh",
               "arcsin", "arccos", "arctan", "arcsinh", "arctanh", "cbrt")


def _simplify_elemderiv(args: tuple[Expr, ...], params: Params) -> Expr | None:
    from .differentiate import elementwise_derivative

    name, order = params
    return elementwise_derivative(name, order, args[0])


register(Op("elemderiv", same_shape, lambda xp, node, a: None,
            notation=func("elemderiv"), simplify=_simplify_elemderiv))


from . import linalg_ops  # noqa: E402,F401  (registers norms, max/min/prod, adjugate)
