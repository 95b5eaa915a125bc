"""The derivative in the vec layout: ∂vec(F)/∂vec(X)ᵀ, the (size(F), size(X)) matrix of the
Magnus–Neudecker textbooks, written with Kronecker products and the commutation matrix K.

Why a rule over the matrix differential and not a table of answers: every vec-layout result is
the chain of a few identities applied to the expression tree of F,

    d vec(X) = I dvec(X)                         d vec(Aᵀ) = K_{m,n} d vec(A)       (A m×n)
    d vec(F G) = (Gᵀ ⊗ I) d vec(F) + (I ⊗ F) d vec(G)
    d vec(A⁻¹) = −(A⁻ᵀ ⊗ A⁻¹) d vec(A)           d vec(f(A)) = diag(vec f'(A)) d vec(A)
    d vec(A ⊗ B) = (I_n ⊗ K_{q,m} ⊗ I_p) ((I ⊗ vec B) d vec(A) + (vec A ⊗ I) d vec(B))
    d vec(s M) = s d vec(M) + vec(M) ds          ds = vec(∇s)ᵀ d vec(X)  (s scalar)

so `A@X@B` gives Bᵀ ⊗ A, `X'@X` gives (I ⊗ Xᵀ) + (Xᵀ ⊗ I)K, `inv(X)` gives −X⁻ᵀ ⊗ X⁻¹, and a
chain of them the products (with the mixed-product rule (A ⊗ B)(C ⊗ D) = AC ⊗ BD folding them
back into one Kronecker product where the sizes allow).  A node none of these covers (a
broadcast, a reduction to a vector, a function with no entrywise derivative) has no form here:
`vec_jacobian` returns None and the caller says so; it never guesses.

Each identity belongs to its operator: it is the `kronecker` rule of the operator's record
(language/operators: transpose, vec, unvec and fill in structure.py, + ⊙ ÷ @ in arithmetic.py,
inv and kron in linalg.py).  This module is the driver those rules call back into (the
recursion, the generic cases, and the Kronecker algebra that keeps results in textbook form).
"""

from __future__ import annotations

from ..errors import GradcliError
from ..language import simplify as S
from ..language.expr import OPS, Expr, IllTyped, NoKroneckerForm, ShapeMsg, make, topological
from ..language.shapes import Dim, DimMismatch, Ty, product
from .differentiate import depends_on, gradients


def size(ty: Ty) -> Dim:
    """The number of entries of a value of type ty (1 for a scalar)."""
    return product(*ty.full_dims) if ty.full_dims else 1


def vec_jacobian(f: Expr, x: Expr) -> Expr | None:
    """∂vec(f)/∂vec(x)ᵀ in Kronecker form, a (size(f), size(x)) matrix; None where the rules
    give no form (the values still exist: they are the tensor's, see Derivative.to_layout)."""
    if f.ty.is_scalar or x.ty.is_scalar:
        return None
    try:
        rules = _Rules(f, x)
        if not rules.live(f):
            return S.zeros(Ty((size(f.ty), size(x.ty))))
        out = rules.of(f)
        # a derivative: its terms may be factored and cancelled (f's own nodes stay as written)
        (out,) = S.derivative_form([out], topological([f]))
    except (NoKroneckerForm, ShapeMsg, DimMismatch, GradcliError, IllTyped):
        return None
    if out.ty.is_vector or out.ty.dims != (size(f.ty), size(x.ty)):
        return None
    return out


class _Rules:
    """The recursion over F: `of(e)` is ∂vec(e)/∂vec(x)ᵀ.  Each operator's own step is its
    record's `kronecker` rule (the operator families in language/operators); this class is what
    those rules ask of their context (`expr.KroneckerContext`), and the generic cases: x itself,
    a scalar node (its gradient, as a row) and an entry-wise operator with no rule of its own."""

    def __init__(self, f: Expr, x: Expr):
        self.x = x
        self.depends = depends_on(f, {x.params[0]})
        self.memo: dict[Expr, Expr] = {}

    def live(self, e: Expr) -> bool:
        return e in self.depends

    def of(self, e: Expr) -> Expr:
        if e not in self.depends:
            raise AssertionError("a Kronecker rule asked for an argument that does not depend on x")
        if e not in self.memo:
            self.memo[e] = self._rule(e)
        return self.memo[e]

    def _rule(self, e: Expr) -> Expr:
        if e is self.x:
            return S.eye(size(e.ty))
        if e.ty.is_scalar:  # ds = vec(∇s)ᵀ dvec(X): the gradient machinery's answer, as a row
            (g,) = gradients(e, [self.x])
            return S.T(vec_of(g))
        op = OPS[e.op]
        if op.kronecker is not None:
            return op.kronecker(self, e)
        if op.entrywise:
            return self.entrywise(e)
        raise NoKroneckerForm(e.op)

    # ------------------------------------------------- the algebra the records' rules build with
    def total(self, parts: list[Expr]) -> Expr:
        out = parts[0]
        for p in parts[1:]:
            out = plus(out, p)
        return out

    @staticmethod
    def times(m: Expr, j: Expr) -> Expr:
        return times(m, j)

    @staticmethod
    def kron(a: Expr, b: Expr) -> Expr:
        return kron(a, b)

    @staticmethod
    def commutation(m: Dim, n: Dim) -> Expr:
        return make_raw_commutation(m, n)

    @staticmethod
    def vec(e: Expr) -> Expr:
        return vec_of(e)

    @staticmethod
    def column(e: Expr) -> Expr:
        return column(e)

    @staticmethod
    def as_matrix(e: Expr, row: bool) -> Expr:
        return as_matrix(e, row)

    def spread(self, t: Expr, ty: Ty) -> Expr:
        """The part of a sum of type ty one term gives: its own, or a scalar's spread over every
        entry."""
        if size(t.ty) == size(ty) and (t.ty.is_vector or t.ty.dims == ty.dims):
            return self.of(t)
        if t.ty.is_scalar:
            return S.matmul(S.fill(S.const(1.0), Ty((size(ty),))), self.of(t))
        raise NoKroneckerForm("broadcast")

    def entrywise(self, e: Expr) -> Expr:
        """d vec(f(A, B, …)) = Σ diag(vec ∂f/∂A) d vec(A) over the arguments that depend on x,
        each ∂f/∂A read off the operator's own adjoint rule (its adjoint of a ones seed).  An
        argument broadcast against the others (its adjoint would be summed) has no such form."""
        op, ones = OPS[e.op], S.fill(S.const(1.0), e.ty)
        parts = []
        for i, a in enumerate(e.args):
            if not self.live(a):
                continue
            if a.ty.full_dims != e.ty.full_dims or len(op.vjp) <= i:
                raise NoKroneckerForm(e.op)
            slope = op.vjp[i](e, ones)
            if slope.ty.full_dims != a.ty.full_dims:
                raise NoKroneckerForm(e.op)
            parts.append(times(make("diagm", vec_of(slope)), self.of(a)))
        return self.total(parts)


# ----------------------------------------------------------------- building blocks, simplified
def make_raw_commutation(m: Dim, n: Dim) -> Expr:
    """K_{m,n}; K_{1,n} and K_{m,1} are the identity."""
    if m == 1 or n == 1:
        return S.eye(product(m, n))
    return make("commutation", params=(m, n))


def vec_of(e: Expr) -> Expr:
    """vec(e) as a column: a matrix's columns stacked, a vector as a column."""
    if e.ty.is_matrix:
        return make("vec", e)
    return S.T(e) if e.ty.is_row else e


def column(e: Expr) -> Expr:
    """vec(e) as a (size, 1) matrix, a factor of a Kronecker product."""
    v = vec_of(e)
    return make("unvec", v, params=(v.ty.dims[0],))


def as_matrix(e: Expr, row: bool) -> Expr:
    """A factor of a product as a matrix: a vector as the m×1 column or (row) the 1×n row the
    product reads it as."""
    if e.ty.is_matrix:
        return e
    column = S.T(e) if e.ty.is_row else e
    return make("unvec", column, params=(1,) if row else (column.ty.dims[0],))


def _is_eye(e: Expr) -> bool:
    return e.op == "eye"


def kron(a: Expr, b: Expr) -> Expr:
    """a ⊗ b, with I ⊗ I = I and 1×1 identities dropped."""
    if _is_eye(a) and _is_eye(b):
        return S.eye(product(a.params[0], b.params[0]))
    if _is_eye(a) and a.params[0] == 1:
        return b
    if _is_eye(b) and b.params[0] == 1:
        return a
    return make("kron", a, b)


def _coef(e: Expr) -> tuple[Expr | None, Expr]:
    """c·M → (c, M) for a numeric c; else (None, e)."""
    c, rest = S.split_coef(e)
    return (S.const(c) if c != 1.0 else None), rest


def times(m: Expr, j: Expr) -> Expr:
    """m @ j, where j is a vec-Jacobian: I @ j = j, and the mixed-product rule
    (A ⊗ B)(C ⊗ D) = (AC) ⊗ (BD) where both products exist (same sizes by structure)."""
    if _is_eye(j):
        return m
    if _is_eye(m):
        return j
    cm, bare_m = _coef(m)
    cj, bare_j = _coef(j)
    if bare_m.op == "kron" and bare_j.op == "kron":
        (a, b), (c, d) = bare_m.args, bare_j.args
        if a.ty.dims[1] == c.ty.dims[0] and b.ty.dims[1] == d.ty.dims[0]:
            out = kron(_product(a, c), _product(b, d))
            for coef in (cm, cj):
                if coef is not None:
                    out = S.mul(coef, out)
            return out
    if bare_j.op == "add" and _is_kron(bare_m) and all(_is_kron(_coef(t)[1]) for t in bare_j.args):
        out = plus(times(bare_m, bare_j.args[0]), times(bare_m, bare_j.args[1]))
        return S.mul(cj, out) if cj is not None else out
    return S.matmul(m, j)


def _is_kron(e: Expr) -> bool:
    return e.op == "kron"


def _product(a: Expr, b: Expr) -> Expr:
    if _is_eye(a):
        return b
    if _is_eye(b):
        return a
    return S.matmul(a, b)


def plus(a: Expr, b: Expr) -> Expr:
    """a + b, Kronecker terms with a common factor gathered: (A ⊗ B) + (A ⊗ C) = A ⊗ (B + C)
    and (A ⊗ C) + (B ⊗ C) = (A + B) ⊗ C, over all the terms of both sides."""
    merged: list[Expr] = []
    for t in _terms(a) + _terms(b):
        for i, u in enumerate(merged):
            both = _gathered(u, t)
            if both is not None:
                merged[i] = both
                break
        else:
            merged.append(t)
    out = merged[0]
    for t in merged[1:]:
        out = S.add(out, t)
    return out


def _terms(e: Expr) -> list[Expr]:
    return _terms(e.args[0]) + _terms(e.args[1]) if e.op == "add" else [e]


def _gathered(u: Expr, t: Expr) -> Expr | None:
    if not (_is_kron(u) and _is_kron(t)):
        return None
    (p, q), (r, s) = u.args, t.args
    if p is r and q.ty == s.ty:
        return kron(p, S.add(q, s))
    if q is s and p.ty == r.ty:
        return kron(S.add(p, r), q)
    return None
