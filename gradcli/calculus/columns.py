"""Column vectors as textbooks write them: `where x: (n, 1)`.

Such an x is what numpy makes of it, an n×1 matrix, everywhere a value is computed: f = xᵀAx is
1×1, ∂f/∂x is n×1, the Hessian is (n, 1, n, 1).  Two things make that read as the textbook does:

- a 1×1 f is the scalar it holds (`as_scalar`): its derivatives are gradients of that scalar,
  and the 1×1 ones-matrices reverse mode then carries (M𝟙₁ₓ₁, Σ𝟙₁ₓ₁) are folded away;
- a derivative with no matrix formula in the declared shapes (the Hessian wrt an n×1 x is a
  4-index tensor; the Jacobian of a 1×n row f = xᵀA wrt x is a (1, n, m) tensor) is also
  derived with every singleton axis dropped (`squeeze`): n×1 symbols become vectors, 1×n rows,
  1×1 scalars, and a row f is the column of its entries (`entries_column`).  Where that gives a
  matrix formula (A + Aᵀ; Aᵀ), it is printed as the matrix of the same entries, with a note;
  values keep the declared shape.

`squeeze` only rewrites operators whose meaning survives dropping the axes, and checks every
node's shape against the declared one with the axes dropped; anything else gives None (no
squeezed formula), never a different function.
"""

from __future__ import annotations

from math import prod

from ..language import operators  # noqa: F401  (fills the operator registry)
from ..language import simplify as S
from ..language.expr import OPS, Expr, ShapeMsg, make
from ..language.rewrite import rewrite
from ..language.shapes import SCALAR, Ty, col



def is_unit(ty: Ty) -> bool:
    """A 1×1 result (or a row of length 1): the scalar of a textbook's xᵀx."""
    return ty.full_dims == (1, 1)


def squeezed_ty(ty: Ty) -> Ty:
    """The shape with a matrix's singleton axes dropped: (n, 1) → (n,), (1, n) → row, (1, 1) → ()."""
    if ty.is_matrix:
        m, n = ty.dims
        if m == 1 and n == 1:
            return SCALAR
        if n == 1:
            return col(m)
        if m == 1:
            return Ty((n,), True)
    if ty.row and ty.dims == (1,):
        return SCALAR
    return ty


def has_singleton(ty: Ty) -> bool:
    return squeezed_ty(ty) != ty


def as_scalar(f: Expr) -> Expr:
    """The scalar a 1×1 f holds (f itself otherwise)."""
    return S.summ(f) if is_unit(f.ty) else f


def fold_units(root: Expr) -> Expr:
    """Fold the 1×1 ones-matrices of a 1×1 f's derivative: M𝟙₁ₓ₁ = M, 𝟙₁ₓ₁M = M, c𝟙₁ₓ₁ ⊙ M = cM,
    and the count of entries of a shape with known sizes is that number."""
    def fold(n: Expr, args: tuple[Expr, ...]) -> Expr | None:
        if n.op == "numel" and all(isinstance(d, int) for d in n.params[0].dims):
            return S.const(float(prod(n.params[0].dims)))
        if n.op in ("matmul", "mul") and len(args) == 2:
            for unit, other in (args, args[::-1]):
                if unit.op == "fill" and all(d == 1 for d in unit.ty.full_dims) and n.ty == other.ty:
                    return S.mul(unit.args[0], other)
        return None

    return rewrite([root], fold)[0]


class _Unsqueezable(Exception):
    pass


def squeeze(root: Expr) -> Expr | None:
    """root with every singleton axis dropped (symbols keep their names), or None where an
    operator's meaning would change."""
    def squeezed(n: Expr, args: tuple[Expr, ...]) -> Expr:
        new = _squeeze_node(n, args)
        if new.ty != squeezed_ty(n.ty):
            raise _Unsqueezable
        return new

    try:
        return rewrite([root], squeezed)[0]
    except (_Unsqueezable, ShapeMsg, AssertionError):
        return None


def squeezed_symbol(x: Expr) -> Expr:
    ty = squeezed_ty(x.ty)
    if ty.row:
        return S.T(S.sym(x.params[0], col(ty.dims[0])))
    return S.sym(x.params[0], ty)


def column_symbol(x: Expr) -> Expr:
    """The symbol a derivative wrt x is taken by once its singleton axes are dropped: a 1×n x
    (the row `squeeze` writes as the transpose of a column) is the column of its n entries."""
    sq = squeezed_symbol(x)
    return sq.args[0] if sq.op == "T" else sq


def entries_column(f: Expr) -> Expr | None:
    """A row vector's entries as a column, fᵀ written on columns (anything else as it is), or
    None where some row has no column form here.

    The Jacobian of a 1×n row f wrt x has the entries of fᵀ's: J[0,i,k] = ∂fᵢ/∂xₖ, so the
    matrix formula of ∂fᵀ/∂x, n × shape(x), is the row's Jacobian with its axis of length 1
    dropped.  fᵀ is written with every row-valued node transposed on the spot — (xᵀA)ᵀ = Aᵀx,
    h(r)ᵀ = h(rᵀ), (r + s)ᵀ = rᵀ + sᵀ — so that the differentiator and `linearize` see columns
    only (tanh(xᵀA) has the Jacobian diag(1 − tanh(Aᵀx)²)Aᵀ)."""
    if not f.ty.is_row:
        return f

    def visit(n: Expr, args: tuple[Expr, ...]) -> Expr:
        # which arguments were rows and are now the columns of their entries
        turned = [a.ty.row and not b.ty.row for a, b in zip(n.args, args)]
        if not n.ty.row:  # a column, scalar or matrix: over its rows as they were
            return n if not any(turned) else make(
                n.op, *(S.T(b) if t else b for b, t in zip(args, turned)), params=n.params)
        new = _column_of_row(n, args, turned)
        if new is None or new.ty != n.ty.transposed():
            raise _Unsqueezable
        return new

    try:
        return rewrite([f], visit)[0]
    except (_Unsqueezable, ShapeMsg, AssertionError):
        return None


def _column_of_row(n: Expr, args: tuple[Expr, ...], turned: list[bool]) -> Expr | None:
    """The column of the entries of the row n, its row arguments already turned to columns."""
    if n.op == "T":  # (cᵀ)ᵀ = c
        return args[0] if not turned[0] else None
    if n.op == "matmul":  # (rM)ᵀ = Mᵀrᵀ; (c·r)ᵀ with a scalar c
        a, b = args
        if turned[0] and b.ty.is_matrix:
            return S.matmul(S.T(b), a)
        if a.ty.is_scalar or b.ty.is_scalar:
            return S.mul(a, b)
        return None
    if n.op == "fill":
        return S.fill(args[0], n.ty.transposed())
    if OPS[n.op].entrywise and all(t or b.ty.is_scalar for b, t in zip(args, turned)):
        return make(n.op, *args, params=n.params)  # entry by entry: rows and scalars only
    return None


def _squeeze_node(n: Expr, args: tuple[Expr, ...]) -> Expr:
    if n.op == "sym":
        return squeezed_symbol(n)
    if n.op == "fill":
        return S.fill(args[0], squeezed_ty(n.ty))
    if args == n.args and not has_singleton(n.ty):
        return n  # nothing below it changed
    op = OPS[n.op]
    if op.entrywise and len(args) == 2:  # +, ⊙, ⊘, ^
        a, b = args
        if a.ty != b.ty and not (a.ty.is_scalar or b.ty.is_scalar):
            raise _Unsqueezable  # a column broadcast across a matrix has no vector form here
        return make(n.op, a, b)
    if n.op == "matmul":
        a, b = args
        if a.ty.is_scalar or b.ty.is_scalar:  # (n, 1) @ (1, 1): a scaling
            return S.mul(a, b)
        return make("matmul", a, b)
    if n.op == "T":
        return S.T(args[0])
    # entry by entry, or a scalar of all the entries: indifferent to singleton axes
    if op.entrywise or (op.total if isinstance(op.total, bool) else op.total(n)):
        return make(n.op, *args, params=n.params)
    raise _Unsqueezable
