"""Each operator's numbers, written once, for the evaluator and for `--emit` alike.

An operator's numeric implementation (its record's `impl`) is a *kernel*, one of:

- `Call`: the namespace function NAME (`exp`, `linalg.inv`, `sum` with keywords): the evaluator
  calls `xp.NAME(...)`, and the emitted module contains the text `np.NAME(...)` or `_xp.NAME(...)`;
- `Infix`: a Python operator (`a + b`, `a @ b`), and `Attr` an attribute (`a.T`);
- `Helper`: a plain Python function of this module (the namespace `xp`, then the arrays, then the
  operator's settings as plain arguments) that the evaluator calls and whose source `--emit`
  copies into the generated module, with the helpers it calls (`inspect.getsource`), so the
  module stays standalone;
- `Choose`: a rule that picks one of the above for a node, given which of its arguments the
  evaluator keeps deferred (`diag(v)` used only by products stays the vector v, `(−1)·z` used
  only by sums stays z): `diag(v) @ B` is then `_scale_rows(xp, v, B)` and `a + (−1)·z` is `a − z`,
  in the evaluator and in the emitted code.

A kernel that is a numpy ufunc names it (`ufunc`), and a helper that can compute into a given
array says so (`into`: sigmoid, softplus, relu): on numpy the result may then be written over
the array of an argument that nothing needs afterwards (`np.tanh(t, out=t)`,
`_sigmoid(np, t, out=t)`); `evaluate.schedule` decides where, once, for the evaluator and the
emitter, and the row-block programs write into their buffers the same way.

The helpers below are written against the array API standard, with a numpy branch where numpy
has a faster spelling or lacks the standard's name (numpy 1.x); a helper never imports anything
and reads no global but other helpers of this module (its source, annotations taken out, is
copied into emitted modules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ...record import record

if TYPE_CHECKING:
    from collections.abc import Set
    from typing import TypeAlias

    from ..expr import Expr
    from ..shapes import Dim

    Deferred: TypeAlias = Set[Expr]  # the nodes the evaluator keeps deferred (evaluate.deferred_nodes)

Namespace = Any  # numpy, an array API namespace, or a backend's wrapper of one
Array = Any  # an array of that namespace, or a Python number


@record
class Size:
    """A setting that is a dimension's size (an int once the sizes are known)."""

    dim: Dim


@record
class Shape:
    """A setting that is a shape (a tuple of ints once the sizes are known)."""

    dims: tuple[Dim, ...]


Setting = Any  # a plain value, a Size or a Shape
Report = Callable[..., None]  # told where a function has no derivative (see Helper)
Settings = Callable[["Expr"], tuple[Setting, ...]]
Keywords = Callable[["Expr"], dict[str, Setting]]


def concrete(value: Setting) -> Any:
    """A setting as the evaluator passes it: sizes as ints."""
    if isinstance(value, Size):
        return value.dim
    if isinstance(value, Shape):
        return tuple(value.dims)
    return value


class Kernel:
    """A numeric implementation of an operator (see the module docstring)."""

    ufunc = ""  # numpy's ufunc computing the same from the same arguments ("" if none)
    view = False  # the result may share memory with an argument (never written over)

    def pick(self, node: Expr, deferred: Deferred) -> tuple[Kernel, tuple[Expr, ...]]:
        """The kernel for this node and the nodes it reads, given the deferred nodes."""
        return self, node.args

    def run(self, xp: Namespace, node: Expr, values: list[Array]) -> Array:
        raise NotImplementedError

    @property
    def in_place(self) -> bool:
        """Whether on numpy the result can be written into a given array (`run_into`), which may
        be an argument's own: a ufunc's `out=`, or a helper that takes `out=` (`Helper.into`)."""
        return bool(self.ufunc)

    def run_into(self, xp: Namespace, node: Expr, values: list[Array], out: Array) -> Array:
        """The node's value written into `out` (numpy, an `in_place` kernel)."""
        return getattr(xp, self.ufunc)(*values, out=out)

    def __call__(self, xp: Namespace, node: Expr, *values: Array) -> Array:
        """The node's value from its arguments' values (none deferred)."""
        kernel, _ = self.pick(node, frozenset())
        return kernel.run(xp, node, list(values))


def namespace_attribute(xp: Namespace, dotted: str) -> Any:
    out = xp
    for part in dotted.split("."):
        out = getattr(out, part)
    return out


@record
class Call(Kernel):
    """xp.NAME(*arrays, *settings, **keywords); `api` the array API standard's spelling where
    numpy's differs (numpy 1.x knows only its own).  `creates`: the array is made from sizes
    alone, so it takes the dtype (and, emitted for the array API, the device)."""

    name: str
    api: str = ""
    ufunc: str = ""
    settings: Settings | None = None
    keywords: Keywords | None = None
    creates: bool = False

    def spelling(self, numpy: bool) -> str:
        return self.name if numpy or not self.api else self.api

    def run(self, xp: Namespace, node: Expr, values: list[Array]) -> Array:
        fn = namespace_attribute(xp, self.spelling(is_numpy(xp)))
        extra = [concrete(s) for s in self.settings(node)] if self.settings else []
        kw = {k: concrete(v) for k, v in self.keywords(node).items()} if self.keywords else {}
        if self.creates and not is_numpy(xp):
            kw["dtype"] = xp.float64
        return fn(*values, *extra, **kw)


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "**": lambda a, b: a ** b, "@": lambda a, b: a @ b}


@record
class Infix(Kernel):
    """a SYMBOL b."""

    symbol: str
    ufunc: str = ""

    def run(self, xp: Namespace, node: Expr, values: list[Array]) -> Array:
        return _OPERATORS[self.symbol](values[0], values[1])


@record
class Attr(Kernel):
    """a.NAME (a view: `a.T`)."""

    name: str
    view: bool = True

    def run(self, xp: Namespace, node: Expr, values: list[Array]) -> Array:
        return getattr(values[0], self.name)


@record
class Same(Kernel):
    """The argument itself (a vector's transpose): no code, no array."""

    view: bool = True

    def run(self, xp: Namespace, node: Expr, values: list[Array]) -> Array:
        return values[0]


@record
class Helper(Kernel):
    """fn(xp, *arrays, *settings) for a function of this module.  `report(node, *info)`: what the
    evaluator says when the helper calls its `report` argument (a point where the function has no
    derivative); the emitted module calls the helper without one."""

    fn: Callable[..., Array]
    settings: Settings | None = None
    ufunc: str = ""
    view: bool = False
    report: Callable[..., None] | None = None
    into: bool = False  # fn takes `out=`: on numpy it writes the result there (it may be an argument's own array)

    def run(self, xp: Namespace, node: Expr, values: list[Array]) -> Array:
        extra = [concrete(s) for s in self.settings(node)] if self.settings else []
        if self.report is not None:
            report = self.report
            return self.fn(xp, *values, *extra, report=lambda *info: report(node, *info))
        return self.fn(xp, *values, *extra)

    @property
    def in_place(self) -> bool:
        return self.into and self.report is None or bool(self.ufunc)

    def run_into(self, xp: Namespace, node: Expr, values: list[Array], out: Array) -> Array:
        if not (self.into and self.report is None):
            return Kernel.run_into(self, xp, node, values, out)
        extra = [concrete(s) for s in self.settings(node)] if self.settings else []
        return self.fn(xp, *values, *extra, out=out)


@record
class Choose(Kernel):
    """A kernel chosen per node: rule(node, deferred) -> (kernel, the nodes it reads)."""

    rule: Callable[[Expr, Deferred], tuple[Kernel, tuple[Expr, ...]]]

    def pick(self, node: Expr, deferred: Deferred) -> tuple[Kernel, tuple[Expr, ...]]:
        return self.rule(node, deferred)

    def run(self, xp: Namespace, node: Expr, values: list[Array]) -> Array:
        kernel, _ = self.rule(node, frozenset())
        return kernel.run(xp, node, values)


def ufunc_call(name: str, api: str = "") -> Call:
    """An element-wise namespace function that numpy has as a ufunc of the same name."""
    return Call(name, api, ufunc=name)


# ----------------------------------------------------------------------------- helpers
# Plain functions, copied into emitted modules (without their annotations): no imports, only `xp`
# and the other helpers of this module.  Their names start with `_`, which no symbol of a formula
# does.

def _is_numpy(xp: Namespace) -> bool:
    """Whether xp is numpy itself (its faster spellings, and its 1.x names, are for numpy only)."""
    return getattr(xp, "__name__", "") == "numpy"


def _device(xp: Namespace, a: Array) -> Array:
    """The device of an array (None where the library has no devices)."""
    return getattr(a, "device", None)


def _sigmoid(xp: Namespace, z: Array, out: Array = None) -> Array:
    """(tanh(z/2) + 1)/2: no overflow for any z.  A numpy array is computed in one array (`out`
    when given, which may be z's own), no temporaries."""
    if not (_is_numpy(xp) and getattr(z, "ndim", 0) > 0):
        return 0.5 * (xp.tanh(0.5 * z) + 1.0)
    out = xp.multiply(z, 0.5, out=out)
    xp.tanh(out, out=out)
    xp.add(out, 1.0, out=out)
    return xp.multiply(out, 0.5, out=out)


def _softplus(xp: Namespace, z: Array, out: Array = None) -> Array:
    """log(1 + eᶻ) = max(z, 0) + log1p(e^−|z|): numpy's own formula for logaddexp(0, z), spelled
    in ufuncs that have vector loops (numpy's logaddexp has none: 2.8× slower at 10⁶ entries).
    A numpy array is computed in one array (`out` when given, which may be z's own) and one
    temporary."""
    if not _is_numpy(xp):
        return xp.logaddexp(xp.zeros_like(z), z)
    if getattr(z, "ndim", 0) == 0:
        return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))
    positive = xp.maximum(z, 0.0)  # before out, which may be z's array, is written
    out = xp.absolute(z, out=out)
    xp.negative(out, out=out)
    xp.exp(out, out=out)
    xp.log1p(out, out=out)
    return xp.add(out, positive, out=out)


def _relu(xp: Namespace, z: Array, out: Array = None) -> Array:
    if _is_numpy(xp):
        return xp.maximum(z, 0.0, out=out)
    return xp.maximum(z, xp.zeros_like(z))


def _step(xp: Namespace, z: Array) -> Array:
    if _is_numpy(xp):
        return (z > 0) * 1.0
    return xp.astype(z > 0, z.dtype)


def _cbrt(xp: Namespace, z: Array) -> Array:
    if hasattr(xp, "cbrt"):
        return xp.cbrt(z)
    return xp.sign(z) * xp.abs(z) ** (1.0 / 3.0)  # the array API standard has no cbrt


def _reciprocal(xp: Namespace, z: Array) -> Array:
    return 1.0 / z


def _sign_slope(xp: Namespace, a: Array, report: Report | None = None) -> Array:
    """sign(a), the derivative of |a|; at an entry a = 0 the subgradient 0, reported."""
    if report is not None and bool(xp.any(a == 0)):
        report()
    return xp.sign(a)


def _logsumexp(xp: Namespace, a: Array) -> Array:
    m = xp.max(a)
    return m + xp.log(xp.sum(xp.exp(a - m)))


def _softmax(xp: Namespace, v: Array) -> Array:
    e = xp.exp(v - xp.max(v))
    return e / xp.sum(e)


def _sqnorm(xp: Namespace, a: Array) -> Array:
    if _is_numpy(xp):
        return xp.vdot(a, a)  # one pass, no temporary
    return xp.sum(a * a)


def _norm2(xp: Namespace, a: Array) -> Array:
    return xp.sqrt(_sqnorm(xp, a))


def _norm1(xp: Namespace, a: Array) -> Array:
    return xp.sum(xp.abs(a))


def _norminf(xp: Namespace, a: Array) -> Array:
    return xp.max(xp.abs(a))


def _column_sums_max(xp: Namespace, a: Array) -> Array:
    return xp.max(xp.sum(xp.abs(a), axis=0))


def _row_sums_max(xp: Namespace, a: Array) -> Array:
    return xp.max(xp.sum(xp.abs(a), axis=1))


def _logdet(xp: Namespace, a: Array) -> Array:
    sign, value = xp.linalg.slogdet(a)
    if _is_numpy(xp):
        return value if sign > 0 else float("nan")
    return xp.where(sign > 0, value, xp.full_like(value, float("nan")))  # no branch: lazy arrays stay lazy


def _trace(xp: Namespace, a: Array) -> Array:
    if _is_numpy(xp):
        return xp.trace(a)
    return xp.linalg.trace(a)


def _diag_matrix(xp: Namespace, v: Array) -> Array:
    """diag(v) as an n×n matrix (the array API standard has no `diag`)."""
    if _is_numpy(xp):
        return xp.diag(v)
    return xp.reshape(v, (-1, 1)) * xp.eye(v.shape[0], dtype=v.dtype, device=_device(xp, v))


def _diagonal(xp: Namespace, a: Array) -> Array:
    if _is_numpy(xp):
        return xp.diagonal(a).copy()  # numpy's is a read-only view
    return xp.linalg.diagonal(a)


def _scale_rows(xp: Namespace, d: Array, b: Array) -> Array:
    """diag(d) @ B without the n×n matrix."""
    return xp.reshape(d, (-1, 1)) * b


def _diag_product(xp: Namespace, d: Array, e: Array) -> Array:
    """diag(d) @ diag(e)."""
    return _diag_matrix(xp, d * e)


def _outer(xp: Namespace, a: Array, b: Array) -> Array:
    if _is_numpy(xp):
        return xp.multiply.outer(a, b)
    return xp.reshape(a, (-1, 1)) * xp.reshape(b, (1, -1))


def _congruence(xp: Namespace, p: Array, w: Array) -> Array:
    """Pᵀ diag(w) P.  With w ≥ 0 it is BᵀB for B = diag(√w) P, a product of a matrix with its
    own transpose, which BLAS computes as a symmetric rank-k update: half the flops of a general
    product, and a result symmetric to the last bit.  Otherwise (Pᵀ w) P as written."""
    if _is_numpy(xp) and bool(xp.all(w >= 0)):  # (a branch on values: numpy only, not lazily)
        b = xp.sqrt(w)[:, None] * p
        return b.T @ b
    return (p.T * w) @ p


def _full(xp: Namespace, v: Array, shape: tuple[int, ...]) -> Array:
    if _is_numpy(xp):  # a writable array: later element-wise steps may write over it
        return xp.full(shape, v, dtype=float)
    return xp.broadcast_to(v, shape)


def _expand(xp: Namespace, g: Array, axis: int, keep: bool, shape: tuple[int, ...]) -> Array:
    """g repeated along `axis` to `shape` (a broadcast view)."""
    g = xp.asarray(g)
    if not keep and g.ndim < len(shape):
        g = xp.expand_dims(g, axis=axis)
    return xp.broadcast_to(g, shape)


def _entries(xp: Namespace, shape: tuple[int, ...]) -> Array:
    n = 1.0
    for d in shape:
        n = n * d
    return n


def _extreme_mask(xp: Namespace, a: Array, top: Array, report: Report | None = None) -> Array:
    """Where a reaches `top`, as weights summing to 1: a tie shares the weight equally (the
    average of the tied entries' one-hot vectors, a subgradient), and is reported."""
    near = xp.abs(a - top) <= 1e-12 * (float(abs(top)) or 1.0)
    mask = near * 1.0 if _is_numpy(xp) else xp.astype(near, a.dtype)
    count = xp.sum(mask)
    if report is not None and count > 1:
        report(int(count))
    return mask / count


def _ismax(xp: Namespace, a: Array, report: Report | None = None) -> Array:
    return _extreme_mask(xp, a, xp.max(a), report)


def _ismin(xp: Namespace, a: Array, report: Report | None = None) -> Array:
    return _extreme_mask(xp, a, xp.min(a), report)


def _products_of_others(xp: Namespace, flat: Array) -> Array:
    """(∏_{j≠i} v_j)ᵢ of a vector v: prefix times suffix products, with no division."""
    ones = xp.ones((1,), dtype=flat.dtype)
    if _is_numpy(xp):  # numpy 1.x has cumprod and concatenate, not the standard's names
        return xp.concatenate([ones, xp.cumprod(flat)[:-1]]) * xp.concatenate([xp.cumprod(flat[::-1])[:-1][::-1], ones])
    ones = xp.ones((1,), dtype=flat.dtype, device=_device(xp, flat))
    before = xp.concat([ones, xp.cumulative_prod(flat)[:-1]])
    after = xp.concat([xp.flip(xp.cumulative_prod(xp.flip(flat)))[1:], ones])
    return before * after


def _prod_others(xp: Namespace, a: Array) -> Array:
    """∏_{j≠i} a_j for every i: exact where some a_j = 0, where prod(a)/a would divide 0 by 0."""
    a = xp.asarray(a)
    return xp.reshape(_products_of_others(xp, xp.reshape(a, (-1,))), a.shape)


def _u1v1(xp: Namespace, a: Array, report: Report | None = None) -> Array:
    """u₁v₁ᵀ of the top singular pair; a repeated top singular value is reported."""
    u, s, vt = xp.linalg.svd(a, full_matrices=False)
    if report is not None and s.shape[0] > 1 and int(xp.count_nonzero(xp.abs(s - s[0]) <= 1e-12 * (float(s[0]) or 1.0))) > 1:
        report()
    return u[:, :1] @ vt[:1, :]


def _polar(xp: Namespace, a: Array, report: Report | None = None) -> Array:
    """UVᵀ of the thin SVD over the nonzero singular values; a rank-deficient a is reported."""
    u, s, vt = xp.linalg.svd(a, full_matrices=False)
    keep = s > max(a.shape) * 2.220446049250313e-16 * (float(s[0]) if s.shape[0] else 0.0)
    if bool(xp.all(keep)):
        return u @ vt
    if report is not None:
        report()
    return (u * xp.astype(keep, u.dtype)) @ vt  # the array API indexes by a mask only alone


def _singular_values(xp: Namespace, a: Array) -> Array:
    if _is_numpy(xp):
        return xp.linalg.svd(a, compute_uv=False)
    return xp.linalg.svdvals(a)


def _specnorm(xp: Namespace, a: Array) -> Array:
    return _singular_values(xp, a)[0]


def _nucnorm(xp: Namespace, a: Array) -> Array:
    return xp.sum(_singular_values(xp, a))


def _transpose(xp: Namespace, a: Array) -> Array:
    if _is_numpy(xp):
        return a.T
    return xp.permute_dims(a, (1, 0))


def _vec(xp: Namespace, a: Array) -> Array:
    """The columns of a stacked into one vector."""
    return xp.reshape(_transpose(xp, a), (-1,))


def _unvec(xp: Namespace, g: Array, columns: int) -> Array:
    """The matrix of `columns` columns whose columns are g's consecutive pieces (vec's inverse)."""
    return _transpose(xp, xp.reshape(g, (columns, -1)))


def _kron(xp: Namespace, a: Array, b: Array) -> Array:
    """The block matrix [a_ij b]."""
    if _is_numpy(xp):
        return xp.kron(a, b)
    if a.ndim == 1:  # two vectors
        return xp.reshape(a[:, None] * b[None, :], (-1,))
    (m, n), (p, q) = a.shape, b.shape
    return xp.reshape(a[:, None, :, None] * b[None, :, None, :], (m * p, n * q))


def _kron_a(xp: Namespace, g: Array, b: Array) -> Array:
    """Σ_kl G_(ik),(jl) b_kl: an (m·p, n·q) matrix G contracted with the second factor."""
    if b.ndim == 1:  # two vectors
        return xp.sum(xp.reshape(g, (-1, b.shape[0])) * b[None, :], axis=1)
    (p, q), (r, c) = b.shape, g.shape
    return xp.sum(xp.reshape(g, (r // p, p, c // q, q)) * b[None, :, None, :], axis=(1, 3))


def _kron_b(xp: Namespace, g: Array, a: Array) -> Array:
    """Σ_ij G_(ik),(jl) a_ij: G contracted with the first factor."""
    if a.ndim == 1:  # two vectors
        return xp.sum(xp.reshape(g, (a.shape[0], -1)) * a[:, None], axis=0)
    (m, n), (r, c) = a.shape, g.shape
    return xp.sum(xp.reshape(g, (m, r // m, n, c // n)) * a[:, None, :, None], axis=(0, 2))


def _commutation(xp: Namespace, m: int, n: int) -> Array:
    """K_{m,n}, the (m·n, m·n) permutation with K vec(X) = vec(Xᵀ) for X (m, n): row j + n·i of
    it picks entry i + m·j of vec(X) (X_ij), the rows of the identity reordered."""
    rows = xp.arange(m * n)
    return xp.take(xp.eye(m * n), (rows // n) + m * (rows % n), axis=0)


def _adjugate_transpose(xp: Namespace, a: Array) -> Array:
    """adj(X)ᵀ = det(X)·X⁻ᵀ from the SVD X = U diag(s) Vᵀ: det(U)det(V)·U diag(∏_{j≠i} s_j) Vᵀ.
    The products leave each singular value out instead of dividing by it, so the result is exact
    at rank n − 1 (and 0 below), where X⁻ᵀ does not exist."""
    u, s, vt = xp.linalg.svd(a)
    sign = xp.linalg.det(u) * xp.linalg.det(vt)
    return sign * ((u * xp.reshape(_products_of_others(xp, s), (1, -1))) @ vt)


def _helpers() -> dict[str, Callable[..., Any]]:
    """The helper functions of this module by name: those taking the namespace `xp` first."""
    out = {}
    for name, fn in globals().items():
        code = getattr(fn, "__code__", None)
        if (name.startswith("_") and code is not None and code.co_argcount and code.co_varnames[0] == "xp"
                and getattr(fn, "__module__", None) == __name__):
            out[name] = fn
    return out


HELPERS: dict[str, Callable[..., Any]] = _helpers()


def is_numpy(xp: Namespace) -> bool:
    """Whether xp is numpy itself (see `_is_numpy`)."""
    result: bool = _is_numpy(xp)
    return result

