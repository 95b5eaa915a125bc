"""Split a compiled program over the sample axis: per-block work, reductions over blocks, and
the rest computed once.

The sample axis.  Among the symbols' leading dimensions, it is the one of the largest symbol
that is not differentiated (the data; when every symbol is differentiated, the largest); every symbol whose leading dimension has that size is
cut into blocks of rows along it (parameters never have it, and when one does by coincidence,
slicing it with the data is still exact: the plan only changes how a value is computed).

Each node gets a tag, checked op by op so that `value[block] == block_program(value)` holds:
  rows=a     the node's value runs over samples along axis a (computed per block),
  DIAG       diag(v) of such a vector (a rows×rows matrix that is only ever a scaling),
  None       no sample axis: a parameter, a reduction's result, or anything computed from them.
A node with no sample axis whose argument has one is a reduction: a sum over the rows (`sum`,
`Xᵀr`, `r'r`, `XᵀDX`), or a max/min/log-sum-exp over them, each combined across blocks.  A
per-block node that needs a reduction's result (the gradient of log-sum-exp, softmax over the
rows) runs in a later pass over the data: the plan counts passes.  What cannot be cut — a
rows×rows product (`X@X'`), an operator that is not separable along rows (inv, det, an SVD norm,
a trace of a rows×rows matrix), a value of length m that is not data — is the plan's `reason`,
and the program runs whole.
"""

from __future__ import annotations



from ..language.expr import Expr, make_raw, topological
from ..language.rewrite import rebuilt_raw, rewrite
from ..record import record
from ..language.shapes import Ty, entries

DIAG = "diag"
Tag = int | str  # a node's sample axis, or DIAG
ELEMENTWISE_BINARY = ("add", "mul", "div", "pow")
# reductions of a whole value to a scalar: (per-block operator, combine, finish)
SCALAR_REDUCTIONS = {"sum": ("sum", "add", None), "sqnorm": ("sqnorm", "add", None),
                     "norm1": ("norm1", "add", None), "mean": ("sum", "add", "mean"),
                     "norm2": ("sqnorm", "add", "sqrt"), "max": ("max", "max", None),
                     "min": ("min", "min", None), "norminf": ("norminf", "max", None),
                     "logsumexp": ("logsumexp", "logaddexp", None)}


class Unsplittable(Exception):
    """Why a program cannot be cut along the sample axis."""


@record
class Reduction:
    node: Expr  # the reduction in the (rewritten) program
    part: Expr  # what each block computes (a sum for a mean, a squared norm for a 2-norm)
    combine: str  # add, max, min, logaddexp
    finish: str | None  # mean, sqrt
    count: int  # entries reduced (for a mean)
    passno: int  # the pass over the data that computes it (1, 2, ...)


@record
class Plan:
    roots: list[Expr]  # the program's roots, softmax over rows rewritten
    rows: dict[Expr, Tag]  # node -> sample axis of a per-block node (an int or DIAG)
    sliced: dict[str, int]  # symbol name -> size of its sample axis (axis 0)
    m: int  # the number of samples
    reductions: list[Reduction]  # in evaluation order
    row_roots: dict[Expr, int]  # root -> pass computing a per-block root (concatenated)
    passes: int
    reason: str = ""  # why not split ("" when it is)

    @property
    def splits(self) -> bool:
        return not self.reason

    def note(self) -> str:
        if self.reason:
            return f"evaluated whole: {self.reason}"
        reads = "once" if self.passes == 1 else f"{self.passes} times"
        return f"evaluated in blocks of rows ({self.m} samples), the data read {reads}"


def sample_axis(roots: list[Expr], wrt: set[str]) -> tuple[int | None, dict[str, int]]:
    """(m, {symbol: m}) for the symbols cut into row blocks, or (None, {})."""
    syms = {n.params[0]: n for n in topological(roots) if n.op == "sym" and n.ty.rank >= 1}
    data = [n for name, n in syms.items() if name not in wrt] or list(syms.values())
    if not data:
        return None, {}
    biggest = max(data, key=lambda n: (entries(n.ty.dims), n.params[0]))
    m = biggest.ty.dims[0]
    if not isinstance(m, int) or m < 2:
        return None, {}
    return m, {name: m for name, n in syms.items() if n.ty.dims[0] == m}


def make_plan(roots: list[Expr], wrt: set[str]) -> Plan:
    m, sliced = sample_axis(roots, wrt)
    if m is None:
        return Plan(roots, {}, {}, 0, [], {}, 0, "no data symbol with a sample axis")
    try:
        return _Planner(m, sliced).plan(roots)
    except Unsplittable as why:
        return Plan(roots, {}, sliced, m, [], {}, 0, str(why))


class _Planner:
    def __init__(self, m: int, sliced: dict[str, int]):
        self.m, self.sliced = m, sliced
        self.rows: dict[Expr, Tag] = {}  # node -> axis or DIAG (absent: no sample axis)
        self.need: dict[Expr, int] = {}  # node -> passes that must finish before it can be computed
        self.reductions: list[Reduction] = []
        self.new: dict[Expr, Expr] = {}  # node -> what it became (softmax over rows rewritten)

    def plan(self, roots: list[Expr]) -> Plan:
        new_roots = rewrite(roots, lambda n, args: self.visit(rebuilt_raw(n, args)), done=self.new)
        row_roots: dict[Expr, int] = {}
        for r in new_roots:
            if r in self.rows:
                if self.rows[r] == DIAG:
                    raise Unsplittable(f"a result is a {self.m}×{self.m} diagonal matrix over the samples")
                row_roots[r] = self.need[r] + 1
        passes = max([red.passno for red in self.reductions] + list(row_roots.values()) + [0])
        if passes == 0:
            raise Unsplittable("nothing in the formula runs over the samples")
        return Plan(new_roots, self.rows, self.sliced, self.m, self.reductions, row_roots, passes)

    # ------------------------------------------------------------------ one node
    def visit(self, n: Expr) -> Expr:
        if n in self.need:  # rebuilt into a node already seen
            return self.new.get(n, n)
        need = max((self.need.get(a, 0) for a in n.args), default=0)
        self.need[n] = need
        if n.op == "sym":
            if n.params[0] in self.sliced:
                self.rows[n] = 0
            return n
        if n.op in ("fill", "expand") and not any(a in self.rows for a in n.args):
            axis = self._uniform_axis(n)
            if axis is not None:
                self.rows[n] = axis
            return n
        if not any(a in self.rows for a in n.args):
            return n
        if n.op == "softmax":  # exp(a − logsumexp(a)): a reduction, then a second pass
            a = n.args[0]
            lse = self.visit_new(make_raw("logsumexp", (a,)))
            neg = self.visit_new(make_raw("mul", (make_raw("const", (), (-1.0,)), lse)))
            shifted = self.visit_new(make_raw("add", (a, neg)))
            out = self.visit_new(make_raw("exp", (shifted,)))
            self.new[n] = out
            return out
        tag = self._rows_of(n)
        if tag is None:
            self._reduction(n)
        else:
            self.rows[n] = tag
        return n

    def visit_new(self, n: Expr) -> Expr:
        return self.visit(n)

    def _uniform_axis(self, n: Expr) -> int | None:
        """A broadcast (c𝟙, 𝟙gᵀ) spanning m along an axis: the same in every block."""
        if n.op == "expand":
            axis: int = n.params[0] % n.ty.rank
            return axis if n.ty.dims[axis] == self.m else None
        for i, d in enumerate(n.ty.dims):
            if d == self.m:
                return i
        return None

    def _reduction(self, n: Expr) -> None:
        a = n.args[0]  # a reduction has an argument over the samples
        passno = self.need[n] + 1
        if n.op in SCALAR_REDUCTIONS and self.rows.get(a) not in (None, DIAG):
            part_op, combine, finish = SCALAR_REDUCTIONS[n.op]
            part = n if part_op == n.op else make_raw(part_op, (a,), (None, False) if part_op == "sum" else ())
        elif n.op == "tr" and self.rows.get(a) == DIAG:
            part, combine, finish = make_raw("sum", (a.args[0],), (None, False)), "add", None
            self.need[part] = self.need[a]
        else:
            part, combine, finish = n, "add", None  # a contraction: checked in _rows_of
        self.reductions.append(Reduction(n, part, combine, finish, entries(a.ty.dims), passno))
        self.need[n] = passno

    def _rows_of(self, n: Expr) -> Tag | None:
        """The sample axis of n's value (None for a sum over it), or Unsplittable."""
        op, args = n.op, n.args
        tags = [self.rows.get(a) for a in args]
        if DIAG in tags and op not in ("matmul", "diagv", "tr", "T"):
            raise Unsplittable(f"diag over the samples used by {op}")
        if op in ELEMENTWISE_BINARY or (len(args) == 1 and op in _UNARY_ELEMENTWISE):
            return self._elementwise(n, tags)
        if op == "T":
            return tags[0] if not isinstance(tags[0], int) or args[0].ty.rank < 2 else 1 - tags[0]
        if op == "diagm":
            return DIAG
        if op == "diagv":
            if tags[0] != DIAG:
                raise Unsplittable("the diagonal of a matrix with one sample axis")
            return 0
        if op == "sum":
            axis, keep = n.params
            a, t = args[0], int_axis(tags[0])
            if axis is None or axis % a.ty.rank == t:
                return None
            axis %= a.ty.rank
            return t - 1 if (not keep and axis < t) else t
        if op == "expand":
            axis, keep, ty = n.params
            axis %= ty.rank
            t = int_axis(tags[0])
            return t + 1 if (not keep and args[0].ty.rank < ty.rank and axis <= t) else t
        if op == "matmul":
            return self._matmul(n, tags)
        if op == "congruence":
            if tags == [0, 0]:
                return None
            raise Unsplittable("a congruence PᵀDP whose factors do not both run over the samples")
        if op in SCALAR_REDUCTIONS or (op == "tr" and tags[0] == DIAG):
            return None
        raise Unsplittable(f"{op} is not separable along the sample axis")

    def _elementwise(self, n: Expr, tags: list[Tag | None]) -> int:
        out_rank = n.ty.rank
        axes = set()
        for a, t in zip(n.args, tags):
            shift = out_rank - a.ty.rank
            if t is not None:
                axes.add(int_axis(t) + shift)
        if len(axes) != 1:
            raise Unsplittable("values running over the samples along different axes are combined")
        axis = axes.pop()
        for a, t in zip(n.args, tags):
            shift = out_rank - a.ty.rank
            if t is None and axis - shift >= 0 and a.ty.dims[axis - shift] != 1:
                raise Unsplittable(f"a value of length {self.m} that is not data meets the samples")
        return axis

    def _matmul(self, n: Expr, tags: list[Tag | None]) -> Tag | None:
        a, b = n.args
        ta, tb = (self._matrix_axis(x, t) for x, t in zip(n.args, tags))
        if ta == DIAG and tb == DIAG:
            return DIAG
        if ta == DIAG or tb == DIAG:
            other, t = (tb, b) if ta == DIAG else (ta, a)
            if other is None:
                raise Unsplittable(f"diag over the samples multiplies a {self.m}-row value that is not data")
            if (ta == DIAG and other != 0) or (tb == DIAG and other != 1):
                raise Unsplittable("a rows×rows product")
            return self._value_axis(n.ty, int_axis(other))
        contracted = ta == 1 and tb == 0
        outer = [x for x, want in ((ta, 0), (tb, 1)) if x == want]
        if (ta == 1) != (tb == 0):
            raise Unsplittable(f"the sample axis is contracted with an axis of length {self.m} that is not data")
        if contracted and outer:
            raise Unsplittable("a product that contracts and keeps the sample axis")
        if len(outer) == 2:
            raise Unsplittable(f"a {self.m}×{self.m} product pairs samples (like X@X')")
        if contracted:
            return None
        return self._value_axis(n.ty, 0 if ta == 0 else 1)

    @staticmethod
    def _matrix_axis(x: Expr, t: Tag | None) -> Tag | None:
        """The operand's sample axis as a matrix axis (a column is m×1, a row 1×m)."""
        if t is None or t == DIAG or x.ty.rank == 2:
            return t
        return 1 if x.ty.row else 0

    @staticmethod
    def _value_axis(ty: Ty, matrix_axis: int) -> int:
        return matrix_axis if ty.rank == 2 else 0


_UNARY_ELEMENTWISE: set[str] = set()


def _init_unary() -> None:
    from ..language.operators import ELEMENTWISE

    _UNARY_ELEMENTWISE.update(ELEMENTWISE, ("abs_slope", "elemderiv"))


def int_axis(tag: Tag | None) -> int:
    """A sample axis that is a number here (diag over the samples was turned away before)."""
    if not isinstance(tag, int):
        raise Unsplittable("diag over the samples where an axis is needed")
    return tag



_init_unary()
