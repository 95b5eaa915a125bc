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
"""

from __future__ import annotations

from ..errors import GradcliError
from ..language import simplify as S
from ..language.expr import OPS, Expr, IllTyped, ShapeMsg, make, topological
from ..language.shapes import Dim, DimMismatch, Ty, product
from .differentiate import depends_on, gradients


class NoKroneckerForm(Exception):
    """A node of F the vec-layout rules do not cover."""


def size(ty: Ty) -> Dim:
    """The number of entries of a value of type ty (1 for a scalar)."""
    return product(*ty.full_dims) if ty.full_dims else 1


def vec_jacobian(f: Expr, x: Expr) -> Expr | None:
    """∂vec(f)/∂vec(x)ᵀ in Kronecker form, a (size(f), size(x)) matrix; None where the rules
    give no form (the values still exist: they are the tensor's, see Derivative.to_layout)."""
    if f.ty.is_scalar or x.ty.is_scalar:
        return None
    try:
        out = _Rules(f, x).of(f)
        if out is None:  # f does not depend on x
            return S.zeros(Ty((size(f.ty), size(x.ty))))
        # a derivative: its terms may be factored and cancelled (f's own nodes stay as written)
        (out,) = S.derivative_form([out], topological([f]))
    except (NoKroneckerForm, ShapeMsg, DimMismatch, GradcliError, IllTyped):
        return None
    if out.ty.is_vector or out.ty.dims != (size(f.ty), size(x.ty)):
        return None
    return out


class _Rules:
    """The recursion over F: `of(e)` is ∂vec(e)/∂vec(x)ᵀ, or None where e does not depend on x."""

    def __init__(self, f: Expr, x: Expr):
        self.x = x
        self.live = depends_on(f, {x.params[0]})
        self.memo: dict[Expr, Expr | None] = {}

    def of(self, e: Expr) -> Expr | None:
        if e not in self.live:
            return None
        if e not in self.memo:
            self.memo[e] = self._rule(e)
        return self.memo[e]

    def _rule(self, e: Expr) -> Expr:
        if e is self.x:
            return S.eye(size(e.ty))
        if e.ty.is_scalar:  # ds = vec(∇s)ᵀ dvec(X): the gradient machinery's answer, as a row
            (g,) = gradients(e, [self.x])
            return S.T(vec_of(g))
        rule = getattr(self, "_" + e.op, None)
        if rule is not None:
            out: Expr = rule(e)
            return out
        if OPS[e.op].entrywise:
            return self._entrywise(e)
        raise NoKroneckerForm(e.op)

    def _need(self, e: Expr) -> Expr:
        j = self.of(e)
        if j is None:
            raise AssertionError("a live node has a live argument")
        return j

    # ------------------------------------------------------------- the rules, one per operator
    def _T(self, e: Expr) -> Expr:
        (a,) = e.args
        if a.ty.is_matrix:
            m, n = a.ty.dims
            return times(make_raw_commutation(m, n), self._need(a))
        return self._need(a)  # a vector's transpose has the same entries in the same order

    def _vec(self, e: Expr) -> Expr:
        return self._need(e.args[0])

    def _unvec(self, e: Expr) -> Expr:
        return self._need(e.args[0])

    def _add(self, e: Expr) -> Expr:
        a, b = e.args
        parts = [self._broadcast(t, e.ty) for t in (a, b) if t in self.live]
        return parts[0] if len(parts) == 1 else plus(parts[0], parts[1])

    def _broadcast(self, t: Expr, ty: Ty) -> Expr:
        """The part of a sum one term gives: its own, or a scalar's spread over every entry."""
        if size(t.ty) == size(ty) and (t.ty.is_vector or t.ty.dims == ty.dims):
            return self._need(t)
        if t.ty.is_scalar:
            return S.matmul(S.fill(S.const(1.0), Ty((size(ty),))), self._need(t))
        raise NoKroneckerForm("broadcast")

    def _mul(self, e: Expr) -> Expr:
        a, b = e.args
        if b.ty.is_scalar and not a.ty.is_scalar:
            a, b = b, a
        if a.ty.is_scalar:  # d(s M) = s dM + vec(M) ds
            parts = []
            if b in self.live:
                parts.append(S.mul(a, self._need(b)))
            if a in self.live:
                parts.append(S.matmul(vec_of(b), self._need(a)))
            return parts[0] if len(parts) == 1 else plus(parts[0], parts[1])
        if a.ty.full_dims != b.ty.full_dims:
            raise NoKroneckerForm("broadcast")
        parts = [times(make("diagm", vec_of(other)), self._need(t))  # d(A ⊙ B) = B ⊙ dA + A ⊙ dB
                 for t, other in ((a, b), (b, a)) if t in self.live]
        return parts[0] if len(parts) == 1 else plus(parts[0], parts[1])

    def _div(self, e: Expr) -> Expr:
        """d(M/s) = dM/s − vec(M/s²) ds for a scalar s; else entry by entry."""
        a, b = e.args
        if not b.ty.is_scalar or a.ty.is_scalar:
            return self._entrywise(e)
        parts = []
        if a in self.live:
            parts.append(S.div(self._need(a), b))
        if b in self.live:
            parts.append(S.neg(S.matmul(vec_of(S.div(a, S.mul(b, b))), self._need(b))))
        return parts[0] if len(parts) == 1 else plus(parts[0], parts[1])

    def _matmul(self, e: Expr) -> Expr:
        """d vec(A B) = (Bᵀ ⊗ I_m) d vec(A) + (I_n ⊗ A) d vec(B), vectors taken as m×1 or 1×n."""
        a, b = e.args
        outer = b.ty.is_row  # a column times a row; else a vector on the left is a row
        am = as_matrix(a, row=not outer and a.ty.is_vector)
        bm = as_matrix(b, row=outer)
        m, n = am.ty.dims[0], bm.ty.dims[1]
        parts = []
        if a in self.live:
            parts.append(times(kron(S.T(bm), S.eye(m)), self._need(a)))
        if b in self.live:
            parts.append(times(kron(S.eye(n), am), self._need(b)))
        return parts[0] if len(parts) == 1 else plus(parts[0], parts[1])

    def _inv(self, e: Expr) -> Expr:
        return S.neg(times(kron(S.T(e), e), self._need(e.args[0])))

    def _kron(self, e: Expr) -> Expr:
        """vec(A ⊗ B) = (I_n ⊗ K_{q,m} ⊗ I_p)(vec A ⊗ vec B) for A (m, n), B (p, q)."""
        a, b = e.args
        (m, n), (p, q) = a.ty.dims, b.ty.dims
        parts = []
        if a in self.live:
            parts.append(times(kron(S.eye(product(m, n)), column(b)), self._need(a)))
        if b in self.live:
            parts.append(times(kron(column(a), S.eye(product(p, q))), self._need(b)))
        inner = parts[0] if len(parts) == 1 else plus(parts[0], parts[1])
        shuffle = kron(kron(S.eye(n), make_raw_commutation(q, m)), S.eye(p))
        return times(shuffle, inner)

    def _fill(self, e: Expr) -> Expr:
        return self._broadcast(e.args[0], e.ty)

    def _entrywise(self, e: Expr) -> Expr:
        """d vec(f(A, B, …)) = Σ diag(vec ∂f/∂A) d vec(A) over the arguments that depend on x,
        each ∂f/∂A read off the operator's own adjoint rule (its adjoint of a ones seed).  An
        argument broadcast against the others (its adjoint would be summed) has no such form."""
        op, ones = OPS[e.op], S.fill(S.const(1.0), e.ty)
        parts = []
        for i, a in enumerate(e.args):
            if a not in self.live:
                continue
            if a.ty.full_dims != e.ty.full_dims or len(op.vjp) <= i:
                raise NoKroneckerForm(e.op)
            slope = op.vjp[i](e, ones)
            if slope.ty.full_dims != a.ty.full_dims:
                raise NoKroneckerForm(e.op)
            parts.append(times(make("diagm", vec_of(slope)), self._need(a)))
        return parts[0] if len(parts) == 1 else plus(parts[0], parts[1])


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
