"""`--emit array-api`: the operators' source in the array API standard, for a module that runs on
any conforming array library (numpy, CuPy, torch, jax.numpy, dask through array-api-compat).

The generated function finds the namespace `_xp` of its input arrays
(`array_api_compat.array_namespace`), keeps floating inputs in their dtype and device (an
integer or bool input becomes float64), creates constants (ones, eye, Python numbers passed to
a function) in the inputs' common dtype on the first input's device, and never writes into an
array (jax arrays are immutable).  Everything here is in the standard's core except what
`LINALG` lists, which needs its linalg extension (`xp.linalg`; every library above has it); the
module's docstring says when it uses it.  The one function the standard lacks, cbrt, has a
documented fallback: sign(x)·|x|^(1/3).  An operator with neither is refused when the module
is emitted (`unsupported`), never at run time.
"""

from __future__ import annotations

import math
from typing import Any

from .emit import Codegen
from .errors import GradcliError
from .expr import Expr

NS = "_xp"

# Helpers copied into the module when its code calls them; each takes the namespace first.
HELPERS = '''

def _sigmoid(xp, z):
    return 0.5 * (xp.tanh(0.5 * z) + 1.0)


def _logsumexp(xp, a):
    m = xp.max(a)
    return m + xp.log(xp.sum(xp.exp(a - m)))


def _softmax(xp, v):
    e = xp.exp(v - xp.max(v))
    return e / xp.sum(e)


def _logdet(xp, a):
    sign, value = xp.linalg.slogdet(a)
    return xp.where(sign > 0, value, xp.full_like(value, float("nan")))


def _cbrt(xp, a):
    return xp.sign(a) * xp.abs(a) ** (1.0 / 3.0)


def _diagm(xp, v):
    return xp.reshape(v, (-1, 1)) * xp.eye(v.shape[0], dtype=v.dtype, device=_device_of(v))


def _ismax(xp, a):
    m = xp.max(a)
    mask = xp.astype(xp.abs(a - m) <= 1e-12 * xp.where(m != 0, xp.abs(m), xp.ones_like(m)), a.dtype)
    return mask / xp.sum(mask)


def _ismin(xp, a):
    m = xp.min(a)
    mask = xp.astype(xp.abs(a - m) <= 1e-12 * xp.where(m != 0, xp.abs(m), xp.ones_like(m)), a.dtype)
    return mask / xp.sum(mask)


def _products_of_others(xp, flat):
    one = xp.ones((1,), dtype=flat.dtype, device=_device_of(flat))
    before = xp.concat([one, xp.cumulative_prod(flat)[:-1]])
    after = xp.concat([xp.flip(xp.cumulative_prod(xp.flip(flat)))[1:], one])
    return before * after


def _prod_others(xp, a):
    return xp.reshape(_products_of_others(xp, xp.reshape(a, (-1,))), a.shape)


def _u1v1(xp, a):
    u, s, vt = xp.linalg.svd(a, full_matrices=False)
    return xp.reshape(u[:, 0], (-1, 1)) * xp.reshape(vt[0, :], (1, -1))


def _polar(xp, a):
    u, s, vt = xp.linalg.svd(a, full_matrices=False)
    keep = xp.astype(s > max(a.shape) * xp.finfo(s.dtype).eps * s[0], u.dtype)
    return (u * keep) @ vt


def _adjugate_transpose(xp, a):
    u, s, vt = xp.linalg.svd(a)
    sign = xp.linalg.det(u) * xp.linalg.det(vt)
    return sign * ((u * _products_of_others(xp, s)) @ vt)


def _namespace(*values):
    try:
        return _array_namespace(*values)
    except TypeError:  # Python numbers only: numpy's namespace
        import array_api_compat.numpy as xp

        return xp


def _float(xp, value):
    a = xp.asarray(value)
    return a if xp.isdtype(a.dtype, "real floating") else xp.astype(a, xp.float64)
'''

SAME_NAME = ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "log1p", "expm1", "log2",
             "log10", "abs", "sign", "square", "mean", "max", "min", "prod")
RENAMED = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh", "arctanh": "atanh",
           "abs_slope": "sign"}
LINALG = {"tr": "trace", "det": "det", "inv": "inv", "diagv": "diagonal"}
HELPER_CALLS = {"sigmoid": "_sigmoid", "logsumexp": "_logsumexp", "softmax": "_softmax", "logdet": "_logdet",
                "cbrt": "_cbrt", "diagm": "_diagm", "ismax": "_ismax", "ismin": "_ismin",
                "prod_others": "_prod_others", "u1v1": "_u1v1", "polar": "_polar", "adjT": "_adjugate_transpose"}
NORMS = {"specnorm": "2", "nucnorm": "'nuc'", "opnorm1": "1", "opnorminf": "float('inf')"}


def _templates() -> dict[str, str]:
    t = {"mul": "{0} * {1}", "div": "{0} / {1}", "pow": "{0} ** {1}", "reciprocal": "1.0 / {0}",
         "relu": f"{NS}.maximum({{0}}, {NS}.zeros_like({{0}}))",
         "softplus": f"{NS}.logaddexp({NS}.zeros_like({{0}}), {{0}})",
         "step": f"{NS}.astype({{0}} > 0, {{0}}.dtype)",
         "norm2": f"{NS}.sqrt({NS}.sum({{0}} * {{0}}))", "sqnorm": f"{NS}.sum({{0}} * {{0}})",
         "norm1": f"{NS}.sum({NS}.abs({{0}}))", "norminf": f"{NS}.max({NS}.abs({{0}}))"}
    t.update({op: f"{NS}.{op}({{0}})" for op in SAME_NAME})
    t.update({op: f"{NS}.{name}({{0}})" for op, name in RENAMED.items()})
    t.update({op: f"{NS}.linalg.{name}({{0}})" for op, name in LINALG.items()})
    t.update({op: f"{name}({NS}, {{0}})" for op, name in HELPER_CALLS.items()})
    t.update({op: f"{NS}.linalg.matrix_norm({{0}}, ord={order})" for op, order in NORMS.items()})
    return t


TEMPLATES = _templates()
# The operators whose arguments may be Python numbers without harm (Python's own arithmetic).
ARITHMETIC = frozenset({"add", "mul", "div", "pow", "T", "reciprocal"})


def helper_sources(code: str) -> list[str]:
    """The helpers the code calls, and those they call (to a fixed point)."""
    blocks = [h.strip("\n") for h in HELPERS.split("\n\n\n") if h.strip()]
    names = {b.split("(")[0].split()[1]: b for b in blocks}
    used: list[str] = []
    text = code
    changed = True
    while changed:
        changed = False
        for name, block in names.items():
            if name not in used and name + "(" in text:
                used.append(name)
                text += block
                changed = True
    return [names[n] for n in names if n in used]


def helper_names() -> set[str]:
    return {line.split("(")[0].split()[1] for line in HELPERS.splitlines() if line.startswith("def ")} | {
        "_array_namespace", "_device_of"}


def unsupported(op: str) -> str:
    return (f"--emit array-api: the operator '{op}' has no array API equivalent; use --emit numpy "
            "for this formula")


class XpCodegen(Codegen):
    """The same straight-line code in the array API standard (`--emit array-api`, emit_xp.py):
    the namespace is the local `_xp`, constants it creates take `_dtype` and `_device`, and a
    Python number handed to a function (not to arithmetic) becomes an array first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._python: dict[int, bool] = {}

    @staticmethod
    def literal(value: float) -> str:
        if math.isnan(value):
            return 'float("nan")'
        text = repr(abs(float(value))) if math.isfinite(value) else 'float("inf")'
        return f"(-{text})" if math.copysign(1.0, value) < 0 else text

    def emit(self, roots: list[Expr]) -> list[str]:
        from .expr import topological

        for n in topological(roots):  # which nodes are Python numbers: before any code, in order
            if id(n) not in self._python:
                self._python[id(n)] = n.op in ("const", "numel") or (
                    n.op in ARITHMETIC and all(self._python[id(a)] for a in n.args))
        return super().emit(roots)

    def python_number(self, node: Expr) -> bool:
        """Whether the node's code is a Python number (a literal, or arithmetic on literals)."""
        return self._python[id(node)]

    def source(self, node: Expr, args: list[str]) -> str:
        op = node.op
        if op not in ARITHMETIC:
            args = [f"{NS}.asarray({a}, dtype=_dtype, device=_device)" if self.python_number(x) else a
                    for x, a in zip(node.args, args)]
        if op in ("add", "T", "numel", "matmul", "expand", "apply"):
            return str(super().source(node, args))
        if op == "sum":
            axis, keep = node.params
            return f"{NS}.sum({args[0]})" if axis is None else f"{NS}.sum({args[0]}, axis={axis}, keepdims={keep})"
        if op == "fill":
            return f"{args[0]} * {NS}.ones({self.shape(node.ty)}, dtype=_dtype, device=_device)"
        if op == "eye":
            return f"{NS}.eye({self.dim(node.params[0])}, dtype=_dtype, device=_device)"
        if op not in TEMPLATES:
            raise GradcliError("usage", unsupported(op))
        return TEMPLATES[op].format(*args)

    def matmul(self, node: Expr, a: list[str]) -> str:
        x, y = node.args
        ns = "_xp"
        if id(x) in self.lazy and id(y) in self.lazy:
            return f"_diagm({ns}, {a[0]} * {a[1]})"
        if id(x) in self.lazy:
            return f"{ns}.reshape({a[0]}, (-1, 1)) * {a[1]}" if y.ty.is_matrix else f"{a[0]} * {a[1]}"
        if id(y) in self.lazy:
            return f"{a[0]} * {a[1]}"
        if x.ty.is_col and y.ty.is_row:
            return f"{ns}.reshape({a[0]}, (-1, 1)) * {ns}.reshape({a[1]}, (1, -1))"
        return f"{a[0]} @ {a[1]}"

    def expand(self, node: Expr, a: list[str]) -> str:
        axis, keep, ty = node.params
        g = a[0] if keep else f"_xp.expand_dims({a[0]}, axis={axis})"
        return f"_xp.broadcast_to({g}, {self.shape(ty)})"
