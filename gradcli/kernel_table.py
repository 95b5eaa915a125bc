"""Transitional: the kernel of each operator, until the records in gradcli/operators/ carry it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .kernels import (ADD, Call, Choose, Helper, Infix, Kernel, Shape, Size, add_kernel, matmul_kernel,
                      transpose_kernel, ufunc_call)
from . import kernels as K
from .nondiff import warn_nondifferentiable

if TYPE_CHECKING:
    from .expr import Expr


def _tie(name: str):
    def report(node: "Expr", count: int) -> None:
        warn_nondifferentiable(f"{name}({{0}}) at a tie between {count} entries", node.args[0],
                               "the average over the tied entries (a subgradient)")
    return report


def _sum_keywords(node: "Expr") -> dict:
    axis, keep = node.params
    return {} if axis is None else {"axis": axis, "keepdims": keep}


TABLE: dict[str, Kernel] = {
    "add": Choose(add_kernel), "mul": Infix("*", "multiply"), "div": Infix("/", "divide"),
    "pow": Infix("**", "power"), "matmul": Choose(matmul_kernel), "T": Choose(transpose_kernel),
    "numel": Helper(K._entries, settings=lambda n: (Shape(n.params[0].dims),)),
    **{name: ufunc_call(name) for name in ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sign", "square",
                                            "log1p", "expm1", "log2", "log10", "sinh", "cosh")},
    "abs": ufunc_call("abs"),
    **{name: ufunc_call(name, "a" + name[3:]) for name in ("arcsin", "arccos", "arctan", "arcsinh", "arctanh")},
    "sigmoid": Helper(K._sigmoid), "relu": Helper(K._relu), "softplus": Helper(K._softplus),
    "step": Helper(K._step), "reciprocal": Helper(K._reciprocal, ufunc="reciprocal"), "cbrt": Helper(K._cbrt),
    "abs_slope": Helper(K._sign_slope, report=lambda node: warn_nondifferentiable(
        "abs({0}) at an entry equal to 0", node.args[0], "0 (a subgradient)")),
    "sum": Call("sum", keywords=_sum_keywords),
    "expand": Helper(K._expand, settings=lambda n: (n.params[0], n.params[1], Shape(n.params[2].dims)), view=True),
    "fill": Helper(K._full, settings=lambda n: (Shape(n.ty.dims),)),
    "mean": Call("mean"), "logsumexp": Helper(K._logsumexp), "softmax": Helper(K._softmax),
    "norm2": Helper(K._norm2), "sqnorm": Helper(K._sqnorm), "norm1": Helper(K._norm1),
    "tr": Helper(K._trace), "det": Call("linalg.det"), "logdet": Helper(K._logdet), "inv": Call("linalg.inv"),
    "diagm": Helper(K._diag_matrix), "diagv": Helper(K._diagonal), "congruence": Helper(K._congruence),
    "eye": Call("eye", settings=lambda n: (Size(n.params[0]),), creates=True),
    "ismax": Helper(K._ismax, report=_tie("max")), "ismin": Helper(K._ismin, report=_tie("min")),
    "max": Call("max"), "min": Call("min"), "prod": Call("prod"), "prod_others": Helper(K._prod_others),
    "u1v1": Helper(K._u1v1, report=lambda node: warn_nondifferentiable(
        "||{0}||_2 where the largest singular value is repeated", node.args[0],
        "u1v1 of one top singular pair (a subgradient)")),
    "polar": Helper(K._polar, report=lambda node: warn_nondifferentiable(
        "||{0}||_* where the matrix is rank-deficient", node.args[0],
        "U V' over the nonzero singular values (a subgradient)")),
    "specnorm": Helper(K._specnorm), "nucnorm": Helper(K._nucnorm),
    "opnorm1": Helper(K._column_sums_max), "opnorminf": Helper(K._row_sums_max), "norminf": Helper(K._norminf),
    "adjT": Helper(K._adjugate_transpose),
}
_ = ADD


def kernel_of(name: str) -> Kernel | None:
    from .expr import OPS

    impl = OPS[name].impl
    return impl if isinstance(impl, Kernel) else TABLE.get(name)
