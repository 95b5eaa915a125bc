"""A derivative as gradcli computes it: ∂f/∂x or a Hessian block, its shape in a layout, its
formula (matrix notation, else index notation), and how a value is laid out.

Why a module of its own: the derivative record is read by every front (printing, JSON, LaTeX,
claims, emitted code) and depends on nothing but expressions and their notation, so it sits
below the problem that makes it (gradcli.api).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .language import operators  # noqa: F401  (fills the operator registry)
from .language import simplify as S
from .calculus.indexform import index_notation
from .calculus.kronform import size, vec_jacobian
from .language.structures import projected_entry, vec_projector
from .language.expr import Expr, make
from .record import record
from .language.render import render
from .language.shapes import Dim, Ty
from .errors import GradcliError

if TYPE_CHECKING:
    from .calculus.higher import Multilinear

LAYOUTS = ("gradient", "numerator", "denominator", "vec")
DIRECTED = ("directional", "hessian-vector")  # --direction: f's derivative along v, and H·v


def derivative_dims(f_ty: Ty, x_ty: Ty, layout: str) -> tuple[Dim, ...]:
    """SPEC §1: gradient = shape of x; Jacobian = shape(f) + shape(x) (numerator).  The vec
    layout: ∂vec(f)/∂vec(x)ᵀ, (size(f), size(x)); a scalar side has no axis (a gradient is vec(∇f))."""
    if layout == "vec":
        return tuple(size(t) for t in (f_ty, x_ty) if not t.is_scalar)
    if f_ty.is_scalar:
        if layout == "numerator":
            if x_ty.is_vector:
                return (1, x_ty.dims[0])
            return tuple(reversed(x_ty.dims))
        return x_ty.dims
    if layout == "denominator":
        return x_ty.dims + f_ty.full_dims
    return f_ty.full_dims + x_ty.dims


def default_layout(f_ty: Ty, layout: str | None) -> str:
    if layout is None or (layout == "gradient" and not f_ty.is_scalar):
        return "gradient" if f_ty.is_scalar else "numerator"
    if layout not in LAYOUTS:
        raise GradcliError("usage", f"unknown layout '{layout}' (gradient, numerator, denominator, vec)")
    return layout


@record
class Derivative:
    """∂f/∂x (or a Hessian block ∂²f/∂x∂y): its expression, shape in the chosen layout, kind.

    `expr` is in the base layout — the shape of x for a gradient, shape(f) + shape(x) for a
    Jacobian or Hessian — or None where no matrix formula exists (tensors): then the value is
    computed numerically from vector-Jacobian products, one per entry of f.
    """

    wrt: str
    kind: str  # gradient | jacobian | hessian
    shape: tuple[Dim, ...]
    layout: str
    expr: Expr | None
    x_ty: Ty
    f_ty: Ty  # the differentiated expression's shape (the gradient's, for a Hessian)
    of: Expr  # the expression differentiated (f, or a gradient for a Hessian)
    x: Expr  # the symbol it is differentiated by
    squeezed: Expr | None = None  # where expr is None: the formula with singleton axes dropped
    _vec_form: tuple[Expr | None] | None = None  # the vec layout's Kronecker form, once found
    order: int = 1  # how many times f is differentiated (a Hessian block: 2; `--order k`: k)
    direction: tuple[tuple[str, str], ...] = ()  # (x, v) of each wrt symbol, for a directional derivative
    tensor: Multilinear | None = None  # a tensor of order ≥ 3 (calculus/higher.py): its index form
    convention: str = ""  # wrt a declared structure: sym | vech | diagonal (language/structures.py)
    # the pairs of axes (first axis in base layout, convention) of structured matrices the value
    # is projected on: S's two for a Jacobian or Hessian block wrt S, each pair of a tensor's
    projected: tuple[tuple[int, str], ...] = ()

    def symbol(self, style: str = "ascii") -> str:
        """∂f/∂x, ∂²f/∂x², ∂³f/∂x³, ∂f/∂x·v … (see `derivative_symbol`)."""
        return derivative_symbol(self, style)

    @property
    def along(self) -> bool:
        """Whether this is a directional derivative or a Hessian-vector product (its value has
        its own shape, f's or x's, in every layout)."""
        return self.kind in DIRECTED

    @property
    def transposes(self) -> bool:
        """Whether the chosen layout is the transpose of the base one."""
        if self.kind == "gradient":
            return self.layout == "numerator" and not self.x_ty.is_scalar
        if self.along or self.tensor is not None:
            return False
        return self.layout == "denominator" and not self.f_ty.is_scalar and not self.x_ty.is_scalar

    def shown(self) -> Expr | None:
        """The expression in the chosen layout (the squeezed one where only that exists)."""
        if self.layout == "vec":
            return self.vec_form()
        expr = self.expr if self.expr is not None else self.squeezed
        if expr is None:
            return None
        return S.T(expr) if self.transposes else expr

    def printed_dims(self) -> tuple[Dim, ...] | None:
        """The shape of the printed formula where it is not the value's: one printed with its
        axes of length 1 dropped (the Jacobian of a 1×n row f wrt x ∈ ℝᵐ, a (1, n, m) tensor, is
        printed as the n×m matrix of its entries).  None where the formula has the value's shape."""
        if self.expr is not None or self.squeezed is None or self.layout == "vec":
            return None
        return tuple(self.squeezed.ty.transposed().full_dims if self.transposes else self.squeezed.ty.full_dims)

    def vec_form(self) -> Expr | None:
        """The vec layout's formula: vec(∇f) for a gradient, ∂vec(f)/∂vec(x)ᵀ in Kronecker form
        for a Jacobian or a Hessian block (calculus.kronform), None where none is found."""
        if self._vec_form is None:
            form: Expr | None
            if self.kind == "gradient" or self.f_ty.is_scalar or self.x_ty.is_scalar:
                base = self.expr if self.expr is not None else None
                form = None if base is None else (S.T(base) if base.ty.is_row else base)
                if form is not None and form.ty.is_matrix:
                    form = make("vec", form)
            elif self.f_ty.rank <= 1 and self.x_ty.rank <= 1 and self.expr is not None:
                form = self.expr  # vectors: the vec layout is the numerator layout
            else:
                form = vec_jacobian(self.of, self.x)
            at = len(self.f_ty.full_dims)  # x's axes: J P projects them (f's, a Hessian's first, are already)
            if form is not None and [a for a, _ in self.projected] == [at]:
                form = S.matmul(form, vec_projector(self.projected[0][1], self.x_ty.dims[0]))
            self._vec_form = (form,)
        return self._vec_form[0]

    def text(self, style: str = "unicode") -> str:
        """The matrix formula in the chosen layout, or '' where there is none."""
        shown = self.shown()
        return "" if shown is None else render(shown, style)

    def index_text(self, style: str = "unicode") -> str | None:
        """The right-hand side of the index notation (indices i, j of f and k, l of x, whatever
        the layout), for tensor derivatives."""
        if self.tensor is not None:
            return self.tensor.text(style)
        return index_notation(self.of, self.x, style)

    def formula(self, style: str = "unicode") -> str | None:
        """What to print: the matrix formula, else `J[i,j,k] = ...` in index notation (in LaTeX
        `\\frac{\\partial f_{i}}{\\partial X_{jk}} = …`, subscripts for indices)."""
        text = self.text(style)
        if text:
            return text
        if self.layout == "vec":  # index notation names the tensor's axes, not the vec layout's
            return None
        index = self.index_text(style)
        if index is None:
            return None
        if self.projected:  # the unstructured T, projected on the axes of structured matrices
            index = self._projected(index, style)
        if style == "latex":  # a whole equation, one entry of the tensor on the left
            from .latexdoc import indexed_label

            return f"{indexed_label(self)} = {index}"
        return f"[{','.join(self.index_names())}] = {index}"

    def _projected(self, index: str, style: str) -> str:
        """`½(T[i,k,l] + T[i,l,k]), T[i,k,l] = …`: the index form of a derivative wrt a
        structured matrix, the unstructured tensor T projected on the matrix's axes k, l (on
        each such pair in turn, where there are several)."""
        names = self.index_names()
        kf = len(self.f_ty.full_dims)
        shown = [a - kf if self.transposes and a >= kf else a + len(self.x_ty.dims) if self.transposes else a
                 for a, _ in self.projected]  # the pairs' places among the printed indices
        at, convention = shown[0], self.projected[0][1]

        def entry(a: str, b: str) -> str:
            idx = names[:at] + [a, b] + names[at + 2:]
            return f"T_{{{''.join(idx)}}}" if style == "latex" else f"T[{','.join(idx)}]"
        k, l = names[at], names[at + 1]
        text = projected_entry(convention, k, l, entry, style)
        if len(shown) > 1:
            pairs = ", ".join(f"({names[a]},{names[a + 1]})" for a in shown)
            words = f"on each pair {pairs} in turn"
            text += rf"\ \text{{{words}}}" if style == "latex" else f" {words}"
        separator = r",\quad " if style == "latex" else ", "
        return f"{text}{separator}{entry(k, l)} = {index}"

    def index_names(self) -> list[str]:
        """The indices of the printed J[…], in the order of the value's axes: f's then x's in
        numerator layout, x's then f's in denominator layout (J[k,l,i,j] = ∂f_ij/∂x_kl).  A row
        vector's leading axis has the one index 0: J[0,i,k] = ∂fᵢ/∂xₖ."""
        from .calculus.indexform import F_INDEX, X_INDEX

        if self.tensor is not None:
            return self.tensor.names()
        f_names = ["0"] * bool(self.f_ty.row) + list(F_INDEX[:len(self.f_ty.dims)])
        x_names = list(X_INDEX[:len(self.x_ty.dims)])
        return x_names + f_names if self.transposes else f_names + x_names

    def __repr__(self) -> str:
        formula = self.formula("ascii")
        return (f"Derivative({self.wrt}: {formula if formula is not None else 'no matrix formula'}; "
                f"{self.kind} {fmt_shape(self.shape)}, {self.layout} layout)")

    def _repr_latex_(self) -> str:
        from .display import derivative_latex

        return derivative_latex(self)

    def base_dims(self) -> tuple[Dim, ...]:
        """The value's shape in the base layout: x's for a gradient, shape(f) + shape(x) else."""
        if self.kind == "gradient":
            return tuple(self.x_ty.dims)
        if self.along or self.tensor is not None:
            return tuple(self.shape)
        return tuple(self.f_ty.full_dims) + tuple(self.x_ty.dims)

    def to_layout(self, value: Any) -> Any:
        """Numeric value, rearranged from the base layout into this derivative's layout."""
        if self.layout == "vec":
            return self._to_vec(value)
        if not self.transposes:
            return value
        if self.kind == "gradient":
            return value.reshape(1, -1) if value.ndim == 1 else value.T
        kf = len(self.f_ty.full_dims)
        return value.transpose(list(range(kf, value.ndim)) + list(range(kf)))


    def _to_vec(self, value: Any) -> Any:
        """The base value (shape(f) + shape(x)) in column-major (vec) order: f's axes reversed
        and flattened give vec(f)'s index (i + m·j), x's likewise; a row-major reshape of the
        axes in reverse order is that."""
        if self.kind == "gradient":
            f_axes: list[int] = []
            x_axes = list(range(value.ndim))
        else:
            kf = len(self.f_ty.full_dims)
            f_axes, x_axes = list(range(kf)), list(range(kf, value.ndim))
        flat = value.transpose(x_axes[::-1] + f_axes[::-1])
        sizes = [_count(value.shape, axes) for axes in (x_axes, f_axes) if axes]
        out = flat.reshape(sizes)
        return out.T if len(sizes) == 2 else out


def _count(shape: tuple[int, ...], axes: list[int]) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def derivative_symbol(d: Derivative, style: str = "ascii") -> str:
    """∂f/∂x, ∂²f/∂x², ∂²f/∂x∂y, ∂³f/∂x³, ∂f/∂x·v, ∂²f/∂x²·v: names as typed, or (unicode) in
    Greek with subscripts."""
    from .language.render import pretty_name

    def name(n: str) -> str:
        return pretty_name(n, style) if style == "unicode" else n
    if d.kind == "directional":
        return " + ".join(f"∂f/∂{name(x)}·{name(v)}" for x, v in d.direction)
    if d.kind == "hessian-vector":
        return " + ".join((f"∂²f/∂{name(d.wrt)}²" if x == d.wrt else f"∂²f/∂{name(d.wrt)}∂{name(x)}") + f"·{name(v)}"
                          for x, v in d.direction)
    if d.kind == "tensor":
        return f"∂{superscript(d.order)}f/∂{name(d.wrt)}{superscript(d.order)}"
    if d.kind == "hessian":
        a, _, b = d.wrt.partition(",")
        return f"∂²f/∂{name(a)}∂{name(b)}" if b and b != a else f"∂²f/∂{name(a)}²"
    return f"∂f/∂{name(d.wrt)}"


def superscript(k: int) -> str:
    """3 → ³ (the order of a derivative, as ∂³f/∂x³ writes it)."""
    return "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(c)] for c in str(k))


def fmt_shape(dims: tuple[Dim, ...]) -> str:
    from .language.shapes import fmt_dims

    return fmt_dims(dims)
