"""Element-wise functions (exp, log, the trigonometric and hyperbolic functions, sigmoid, relu,
...): each is one `_elementwise` call with its numpy value, its derivative f'(x) as an expression
in x and f(x), and its notation.  Also the nodes the chain rule through them builds: the
derivative of abs, a user's function h and its derivatives.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from ..expr import OPS, Op, make, make_raw, register
from ..shaperules import same_shape
from ..simplify import (_fold, _simplify_log, _simplify_sqrt, add, const, div, fill, fn, mul, neg, power,
                        sub, zeros)
from . import kernels as K
from .kernels import Helper, Kernel, ufunc_call
from .base import ATOM, func

if TYPE_CHECKING:
    from ..expr import Expr, Notation, Params, Simplify
    from ..render import Renderer


# element-wise functions: name, numpy, derivative f'(x) (as an expression in x and f(x)), notation;
# `domain` where the registry's tests draw the argument, `by_name` False for a function only
# derivatives build (a formula cannot call it by name)
def _elementwise(name: str, impl: Kernel, deriv: Callable[[Expr, Expr], Expr], notation: Notation | None = None,
                 simplify: Simplify | None = None, fails: str = "", domain: str = "any",
                 by_name: bool = True, products: dict[str, str] | None = None) -> None:
    def vjp(node: Expr, G: Expr) -> Expr:
        return mul(G, deriv(node.args[0], node))
    register(Op(name, same_shape, impl, vjp=(vjp,), notation=notation or func(name),
                simplify=simplify, fails=fails,
                rule=f"d {name}(A) = {name}'(A) ⊙ dA (element-wise chain rule)",
                names=(name,) if by_name else (), entrywise=True, domain=domain,
                products=products or {}))


def one() -> Expr:
    return const(1.0)


_elementwise("exp", ufunc_call("exp"), lambda x, y: y, simplify=_fold(math.exp),
             fails="overflow in exp")
_elementwise("log", ufunc_call("log"), lambda x, y: div(one(), x),
             simplify=_simplify_log, fails="log of a value that is not positive", domain="positive")
_elementwise("sqrt", ufunc_call("sqrt"), lambda x, y: div(const(0.5), y), simplify=_simplify_sqrt,
             notation={"unicode": ("√({0})", ATOM), "ascii": ("sqrt({0})", ATOM),
                       "latex": (r"\sqrt{{{0}}}", ATOM)},
             fails="sqrt of a negative value", domain="positive")
_elementwise("sin", ufunc_call("sin"), lambda x, y: fn("cos", x), func("sin", latex=r"\sin"))
_elementwise("cos", ufunc_call("cos"), lambda x, y: neg(fn("sin", x)), func("cos", latex=r"\cos"))
_elementwise("tan", ufunc_call("tan"), lambda x, y: add(one(), power(y, const(2.0))),
             func("tan", latex=r"\tan"))
_elementwise("tanh", ufunc_call("tanh"), lambda x, y: sub(one(), power(y, const(2.0))),
             func("tanh", latex=r"\tanh"))
_elementwise("sigmoid", Helper(K._sigmoid, into=True), lambda x, y: mul(y, sub(one(), y)),
             func("σ", "sigmoid", r"\sigma"))
# The products of the piecewise functions that hold for every u (a rectifier's slope is 1
# wherever it is not 0, a step is 0 or 1): the squared hinge's gradient relu(u) ⊙ 𝟙(u > 0)
# prints relu(u), d|x|²/dx = 2|x| ⊙ sign(x) prints 2x, d log|det X| = sign(d)·d/|d|·X⁻ᵀ = X⁻ᵀ.
_ONE_WHERE_POSITIVE = ("step", "sign", "abs_slope")  # 1 at every u > 0
_SIGN_PRODUCTS = {"": "abs", "abs": ""}  # sign(u) ⊙ u = |u|, sign(u) ⊙ |u| = u
_elementwise("relu", Helper(K._relu, into=True), lambda x, y: fn("step", x),
             products={g: "relu" for g in _ONE_WHERE_POSITIVE})  # 0 where u ≤ 0
_elementwise("softplus", Helper(K._softplus, into=True), lambda x, y: fn("sigmoid", x))
_elementwise("abs", ufunc_call("abs"), lambda x, y: make("abs_slope", x),
             {"unicode": ("|{0}|", ATOM), "ascii": ("abs({0})", ATOM),
              "latex": (r"\left|{0}\right|", ATOM)})
_elementwise("sign", ufunc_call("sign"), lambda x, y: zeros(x.ty) if not x.ty.is_scalar else const(0.0),
             products=_SIGN_PRODUCTS)
_elementwise("step", Helper(K._step), lambda x, y: zeros(x.ty) if not x.ty.is_scalar else const(0.0),
             {"unicode": ("𝟙({0} > 0)", ATOM), "ascii": ("sign(relu({0}))", ATOM),
              "latex": (r"\mathbf{{1}}\left[{0} > 0\right]", ATOM)}, by_name=False,
             products={**{g: "step" for g in _ONE_WHERE_POSITIVE}, "": "relu", "abs": "relu"})  # u ⊙ 𝟙(u > 0) = relu(u)


# numpy's other smooth element-wise functions.  square and reciprocal are spelled x² and 1/x as
# soon as they are built, so they print, simplify and differentiate as powers and quotients.
def _as_power(p: float) -> Simplify:
    return lambda args, params: power(args[0], const(p)) if p != -1.0 else div(one(), args[0])


def _ln(base: float) -> Expr:
    """log(base) kept as written (not folded to 0.693147…), so a printed derivative of log2 or
    log10 re-parses to exactly its value."""
    return make_raw("log", (const(base),))


_elementwise("square", ufunc_call("square"), lambda x, y: mul(const(2.0), x), simplify=_as_power(2.0))
_elementwise("reciprocal", Helper(K._reciprocal, ufunc="reciprocal"), lambda x, y: neg(power(x, const(-2.0))),
             simplify=_as_power(-1.0), fails="division by zero", domain="distinct")
_elementwise("log1p", ufunc_call("log1p"), lambda x, y: div(one(), add(one(), x)),
             fails="log1p of a value ≤ −1", domain="positive")
_elementwise("expm1", ufunc_call("expm1"), lambda x, y: fn("exp", x), fails="overflow in expm1")
_elementwise("log2", ufunc_call("log2"), lambda x, y: div(one(), mul(_ln(2.0), x)),
             func("log2", latex=r"\log_2"), fails="log2 of a value that is not positive", domain="positive")
_elementwise("log10", ufunc_call("log10"), lambda x, y: div(one(), mul(_ln(10.0), x)),
             func("log10", latex=r"\log_{10}"), fails="log10 of a value that is not positive", domain="positive")
_elementwise("sinh", ufunc_call("sinh"), lambda x, y: fn("cosh", x),
             func("sinh", latex=r"\sinh"), fails="overflow in sinh")
_elementwise("cosh", ufunc_call("cosh"), lambda x, y: fn("sinh", x),
             func("cosh", latex=r"\cosh"), fails="overflow in cosh")
_elementwise("arcsin", ufunc_call("arcsin", "asin"),
             lambda x, y: div(one(), fn("sqrt", sub(one(), power(x, const(2.0))))),
             func("arcsin", latex=r"\arcsin"), fails="arcsin of a value outside [−1, 1]", domain="unit")
_elementwise("arccos", ufunc_call("arccos", "acos"),
             lambda x, y: neg(div(one(), fn("sqrt", sub(one(), power(x, const(2.0)))))),
             func("arccos", latex=r"\arccos"), fails="arccos of a value outside [−1, 1]", domain="unit")
_elementwise("arctan", ufunc_call("arctan", "atan"), lambda x, y: div(one(), add(one(), power(x, const(2.0)))),
             func("arctan", latex=r"\arctan"))
_elementwise("arcsinh", ufunc_call("arcsinh", "asinh"),
             lambda x, y: div(one(), fn("sqrt", add(power(x, const(2.0)), one()))))
_elementwise("arctanh", ufunc_call("arctanh", "atanh"), lambda x, y: div(one(), sub(one(), power(x, const(2.0)))),
             fails="arctanh of a value outside (−1, 1)", domain="unit")
_elementwise("cbrt", Helper(K._cbrt), lambda x, y: div(one(), mul(const(3.0), power(y, const(2.0)))),
             fails="division by zero", domain="distinct")


def _report_zero_slope(node: Expr) -> None:
    """|a| has no derivative where a = 0: the subgradient 0 is given, with a warning."""
    from ..nondiff import warn_nondifferentiable

    warn_nondifferentiable("abs({0}) at an entry equal to 0", node.args[0], "0 (a subgradient)")


# The derivative of abs: sign(x), printed so.  Its own operator only so that evaluating it at a
# zero entry warns (see "Decisions" in the README); sign(x) typed by a user stays quiet.
register(Op("abs_slope", same_shape, Helper(K._sign_slope, report=_report_zero_slope),
            vjp=(lambda node, G: zeros(node.ty) if not node.ty.is_scalar else const(0.0),),
            notation=func("sign"),
            rule="d sign(A) = 0", entrywise=True, products=_SIGN_PRODUCTS))

def _apply_notation(r: Renderer, node: Expr) -> tuple[str, float]:
    name, order = node.params
    prime = "'" * order
    return r.name(name) + prime + "(" + r.child(node.args[0], 0) + ")", ATOM


register(Op("apply", same_shape, None,  # (bound to a builtin before evaluation, or a callable in --emit)
            vjp=(lambda node, G: mul(G, make("apply", node.args[0],
                                             params=(node.params[0], node.params[1] + 1))),),
            notation={"custom": _apply_notation},
            rule="d h(A) = h'(A) ⊙ dA (element-wise chain rule)", entrywise=True))




register(Op("elemderiv", same_shape, None,  # (written out by differentiate.expand_derivatives)
            notation=func("elemderiv"), entrywise=True))
