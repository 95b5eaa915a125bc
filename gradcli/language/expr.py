"""The typed expression graph every later stage works on, and the registry of operators.

Expressions are hash-consed: building the same operator on the same arguments twice returns
the same object.  So a formula and its derivative form a DAG in which every common
subexpression exists once — the derivative of a 32-layer chain stays linear in size, the
evaluator computes each shared value once, and equality is identity.

Every node carries its resolved shape (`ty`).  `make` looks the operator up in `OPS`, lets its
`simplify` hook rewrite the node (the algebra that makes output read like a textbook), checks
the shape with the operator's own shape rule, and interns the result.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Callable

from ..record import Factory, record
from .shapes import STRICT, DimMismatch, Ty

if TYPE_CHECKING:  # the types of an operator's parts, for checkers only (nothing imported at run time)
    from collections.abc import Generator
    from typing import Protocol, TypeAlias

    from .operators.kernels import Kernel
    from .render import Renderer
    from .shapes import Dim

    # The array namespace numeric code computes with (`numpy`, or a wrapper of it) and its
    # values (arrays and scalars): gradcli never names numpy's types, xp decides them.
    Namespace: TypeAlias = Any
    Array: TypeAlias = Any
    # An operator's settings (an axis, a norm's order, a constant's value, a symbol's name).
    Params: TypeAlias = tuple[Any, ...]

    class ShapeContext(Protocol):
        """What a shape rule asks of its context: the unifier while shapes are inferred, the
        strict checker afterwards."""

        def same(self, a: Dim, b: Dim) -> None: ...
        def find(self, d: Dim) -> Dim: ...

    ShapeRule: TypeAlias = Callable[[ShapeContext, tuple[Ty, ...], Params], Ty]
    Vjp: TypeAlias = Callable[["Expr", "Expr"], "Expr"]  # (node, its adjoint G) → an argument's
    Impl: TypeAlias = "Kernel | None"  # None: a leaf or a node bound away before evaluation
    CustomNotation: TypeAlias = Callable[[Renderer, "Expr"], tuple[str, float]]  # → (text, precedence)
    Notation: TypeAlias = dict[str, "tuple[str, float] | CustomNotation"]
    Simplify: TypeAlias = Callable[[tuple["Expr", ...], Params], "Expr | None"]
    # (node, U) → an expression E with Eᵀ = node, built as is (make_raw), from U(arg) with U(arg)ᵀ = arg
    Untransposed: TypeAlias = Callable[["Expr", Callable[["Expr"], "Expr"]], "Expr | None"]

    class CallContext(Protocol):
        """What a call rule asks of the shape inferrer: the typed node of an operand, a node
        built and shape-checked at a column, a dimension or an axis written as an argument."""

        def build(self, node: Any) -> Expr: ...
        def raw(self, op: str, args: tuple[Expr, ...], params: Params, col: int) -> Expr: ...
        def dim(self, name: str, arg: Any) -> Dim: ...
        def axis(self, call: Any, a: Expr) -> int | None: ...
        def show(self, ty: Ty) -> str: ...

    # (the inferrer, the syntax.Call) → the typed node, for a call whose arguments are not
    # simply its operands (an axis, dimensions, an operator chosen by the operand's shape)
    CallRule: TypeAlias = Callable[[CallContext, Any], "Expr"]
    # is the node symmetric: yields the subexpressions whose symmetry it needs, returns its own
    SymmetryRule: TypeAlias = Callable[["Expr"], Generator["Expr", bool, bool]]

    class MatrixContext(Protocol):
        """What a matrix-form rule asks of `linearize`: the seed v, whether a node depends on
        it, and the regrouping of a product the simplifier may undo."""

        v: Expr
        def live(self, e: Expr) -> bool: ...
        def regroup(self, e: Expr, regrouped: Expr) -> Generator["Expr | Row", Expr, Expr]: ...

    # (context, node linear in v) → M with node = M v: a generator that yields the nodes (or
    # `Row`s) whose matrices it needs and is sent them; raises NoMatrixForm
    MatrixRule: TypeAlias = Callable[[MatrixContext, "Expr"], Generator["Expr | Row", "Expr", "Expr"]]
    Indices: TypeAlias = tuple[str, ...]

    class IndexContext(Protocol):
        """What an index-notation rule asks of `indexform` (terms are sums of products of
        entries, Kronecker deltas and summed indices)."""

        def of(self, e: Expr, idx: Indices) -> list[Any]: ...  # the terms of e[idx]
        def live(self, e: Expr) -> bool: ...
        def fresh(self, size: Dim) -> str: ...  # a new summation index over size
        def summed(self, terms: list[Any], indices: Indices) -> list[Any]: ...
        def times(self, a: list[Any], b: list[Any]) -> list[Any]: ...
        def opaque(self, e: Expr, idx: Indices) -> list[Any]: ...  # e[idx] as one factor
        def delta(self, i: str, j: str) -> list[Any]: ...
        # δ(whole, hi·lo_size + lo): an index over a product of sizes read as the pair (hi, lo),
        # row-major (kron's rows, vec's entries)
        def composite(self, whole: str, hi: str, lo: str, hi_size: Dim, lo_size: Dim) -> list[Any]: ...
        def align(self, e: Expr, idx: Indices) -> Indices: ...  # a broadcast operand's indices
        def bounded(self, terms: list[Any]) -> list[Any]: ...  # raises TooLarge past a size

    # (context, node depending on the seed, its indices) → its terms; raises NoIndexForm
    IndexRule: TypeAlias = Callable[[IndexContext, "Expr", Indices], list[Any]]

    class KroneckerContext(Protocol):
        """What a Kronecker-form rule asks of `kronform` (`--layout vec`): the vec-Jacobian
        ∂vec(a)/∂vec(X)ᵀ of an argument, whether an argument depends on X, and the Kronecker
        algebra that keeps the result in textbook form (I ⊗ I = I, the mixed-product rule,
        common factors of a sum gathered)."""

        def of(self, e: Expr) -> Expr: ...  # ∂vec(e)/∂vec(X)ᵀ of an argument that depends on X
        def live(self, e: Expr) -> bool: ...
        def total(self, parts: list[Expr]) -> Expr: ...  # the sum of one or more vec-Jacobians
        def times(self, m: Expr, j: Expr) -> Expr: ...  # m @ j, a matrix times a vec-Jacobian
        def kron(self, a: Expr, b: Expr) -> Expr: ...  # a ⊗ b
        def commutation(self, m: Dim, n: Dim) -> Expr: ...  # K_{m,n}, with K vec(A) = vec(Aᵀ)
        def vec(self, e: Expr) -> Expr: ...  # vec(e) as a column
        def column(self, e: Expr) -> Expr: ...  # vec(e) as a (size, 1) matrix
        def as_matrix(self, e: Expr, row: bool) -> Expr: ...  # a vector as a column (or row) matrix
        def spread(self, e: Expr, ty: Ty) -> Expr: ...  # a term of a sum of type ty: a scalar spread
        def entrywise(self, e: Expr) -> Expr: ...  # the rule of an entry-wise operator

    # (context, node depending on X) → ∂vec(node)/∂vec(X)ᵀ; raises NoKroneckerForm
    KroneckerRule: TypeAlias = Callable[[KroneckerContext, "Expr"], "Expr"]


class ShapeMsg(Exception):
    """Raised by a shape rule: the message names the operator and both shapes."""


class NoMatrixForm(Exception):
    """Raised by a matrix-form rule: the node, linear in the seed, has no matrix M with node = M v
    here (a matrix-valued intermediate, a product of two dependent factors)."""


class NoIndexForm(Exception):
    """Raised by an index-notation rule: the node has no index form gradcli writes."""


class NoKroneckerForm(Exception):
    """Raised by a Kronecker-form rule: the node has no vec-layout form here (a broadcast, an
    argument that is not a matrix)."""


class Row:
    """A matrix-form rule's request: the column that this row, linear in the seed, reads as."""

    __slots__ = ("row",)

    def __init__(self, row: Expr):
        self.row = row


@record
class Op:
    """One operator: everything gradcli knows about it, in one place.

    shape(ctx, tys, params) -> Ty      raise ShapeMsg on a mismatch; ctx.same(d1, d2) unifies
    vjp[i](node, G) -> Expr            adjoint of argument i given the adjoint G of the node
    impl: its numbers, a kernel of kernels.py (a namespace function, an infix, or a helper
          function): the evaluator runs it and `--emit` writes it out (`impl(xp, node, *values)`
          computes the node's value from its arguments')
    notation: dict style -> (template, precedence) or callable(renderer, node) -> (text, prec)
    simplify(args, params) -> Expr|None  rewrite applied when the node is built
    fails: what to say when impl gives a non-finite value from finite inputs (math error)
    rule: the differential rule, as `--steps` shows it

    The language (how a formula calls it; no `names`: only derivatives build it):
    names        the function names a formula calls it by (`tr`, `trace`)
    arity        the numbers of arguments a call may have
    call(ctx, syntax_call) -> Expr   builds the node when the arguments are not just operands
    axis         takes an axis as its second argument (`sum(A, 0)`, `mean(A, axis=1)`)
    operands     how many leading arguments are expressions, the rest settings (0 for
                 `eye(n)` and `ones(m, n)`, 1 for `sum(A, axis)` and `unvec(g, m)`); None: all
    hint         said when a call has the wrong number of arguments
    listed       offered when an unknown name is close to it (internal names are not)

    What the later stages read instead of lists of names:
    entrywise    each entry of the value is a function of the same entry of each argument (a
                 scalar broadcast): keeps a matrix symmetric, indifferent to singleton axes;
                 a one-argument entrywise record with `names` is an element-wise builtin
    total        a scalar of all the entries whatever their layout (‖A‖², mean)
    symmetric(node)   generator: symmetric when square? (default: entrywise rule, else no)
    matrix(ctx, node) generator: the matrix M of a node linear in the seed (linearize.py)
    row(ctx, node)    generator: for a row r linear in the seed, the M with rᵀ = M v
    index(ctx, node, idx) → terms: the node's entries in index notation (indexform.py)
    kronecker(ctx, node) → ∂vec(node)/∂vec(X)ᵀ from its arguments', in Kronecker form with the
                 commutation matrix (kronform.py, `--layout vec`); an entrywise record without
                 one gets the generic diag(vec f')(…) rule
    trivial(node) → bool: not worth a name of its own in `--steps` (True: never)
    untransposed(node, U) → E with Eᵀ = node, from U(arg) (U(arg)ᵀ = arg), for the printer: it
                 writes (E)ᵀ instead of node where that is shorter, (XB + BX)ᵀ for BᵀXᵀ + XᵀBᵀ
                 (render.py); None: the node is not a product, sum or transpose to look into
    domain       where the registry's tests draw its argument: "any", "positive", "unit"
                 (|x| < 1), "spd" (symmetric positive definite), "distinct" (no ties, no zeros)
    structures   the declared structures (`where S: (n, n) symmetric`) under which the
                 registry's tests take a square-matrix argument, drawn from `domain` with that
                 structure: the gradient wrt S must be sym(G) of the general G (and G + Gᵀ − G⊙I
                 with --symmetric-gradient vech; tests/test_registry_structured.py); () for
                 none, with the reason beside it
    products     identities f(u) ⊙ g(u) = h(u) of a one-argument entrywise f, true for every u:
                 g's operator name ("" for u itself) → h's ("" for u); derivatives use them
                 (relu(u) ⊙ 𝟙(u > 0) = relu(u), sign(u) ⊙ u = |u|)
    """

    name: str
    shape: ShapeRule
    impl: Impl
    vjp: tuple[Vjp, ...] = ()
    notation: Notation = Factory(default_factory=dict)
    simplify: Simplify | None = None
    fails: str = ""
    rule: str = ""
    names: tuple[str, ...] = ()
    arity: tuple[int, ...] = (1,)
    call: CallRule | None = None
    axis: bool = False
    operands: int | None = None
    hint: str = ""
    listed: bool = True
    entrywise: bool = False
    total: bool | Callable[[Expr], bool] = False
    symmetric: SymmetryRule | None = None
    matrix: MatrixRule | None = None
    row: MatrixRule | None = None
    index: IndexRule | None = None
    kronecker: KroneckerRule | None = None
    trivial: bool | Callable[[Expr], bool] = False
    untransposed: Untransposed | None = None
    domain: str = "any"
    structures: tuple[str, ...] = ("symmetric", "spd")
    products: dict[str, str] = Factory(default_factory=dict)


OPS: dict[str, Op] = {}
CALLS: dict[str, Op] = {}  # a function name a formula may call → its operator


def register(op: Op) -> Op:
    OPS[op.name] = op
    for name in op.names:
        CALLS[name] = op
    return op


class Expr:
    """A node of the typed graph. Never construct directly: use `make` (or ops' helpers)."""

    __slots__ = ("op", "args", "params", "ty", "size", "is_const", "__weakref__")
    size: int  # nodes in the tree below, this one included
    is_const: bool  # a numeric literal (an attribute, not a property: the hooks ask it most)

    def __init__(self, op: str, args: tuple[Expr, ...], params: Params, ty: Ty):
        self.op = op
        self.is_const = op == "const"
        self.args = args
        self.params = params
        self.ty = ty
        size = 1  # tree size, for ordering terms (a loop: a generator per node costs more)
        for a in args:
            size += a.size
        self.size = size

    def __repr__(self) -> str:
        return f"Expr<{outline(self)} : {self.ty.full_dims}>"

    @property
    def value(self) -> float:
        value: float = self.params[0]  # a constant's only setting
        return value


class _InternRef(weakref.ref[Expr]):
    """The table's reference to a node, carrying its key so that the entry goes when the node
    does (a plain subclass: made in C, unlike WeakValueDictionary's KeyedRef, whose Python-level
    constructor cost more than the rest of building a node)."""

    __slots__ = ("key",)
    key: tuple[str, tuple[Expr, ...], Params]


_interned: dict[tuple[str, tuple[Expr, ...], Params], _InternRef] = {}  # key -> the node, weakly


def _forget(ref: _InternRef) -> None:
    if _interned.get(ref.key) is ref:
        del _interned[ref.key]


class NonFiniteConstant(ArithmeticError):
    """A rewrite tried to fold constants into ±inf or nan (`1e200*1e200`).  `make` then keeps the
    node as written: no formula ever holds a constant the language cannot spell, and the
    evaluator reports the overflow where it happens."""


class IllTyped(AssertionError):
    """A node whose operands its shape rule refuses.  Built by a derivative rule, it is a bug in
    gradcli; built inside a simplification hook, it means the rewrite regrouped operands that
    broadcast only as the user grouped them (`(x'/Y)*x` is not `(x'*x)/Y`), and `make` keeps the
    node as written instead."""


def make(op_name: str, *args: Expr, params: Params = ()) -> Expr:
    """Build (or find) a node, after its operator's simplification rules."""
    op = OPS[op_name]
    if op.simplify is not None:
        try:
            rewritten = op.simplify(args, params)
        except (NonFiniteConstant, IllTyped):
            rewritten = None
        if rewritten is not None:
            return rewritten
    return make_raw(op_name, args, params)


def make_raw(op_name: str, args: tuple[Expr, ...], params: Params = ()) -> Expr:
    """Build a node exactly as given (no rewriting); the shape rule still checks it."""
    key = (op_name, args, params)
    ref = _interned.get(key)
    if ref is not None:
        found = ref()
        if found is not None:
            return found
    try:
        ty = OPS[op_name].shape(STRICT, tuple([a.ty for a in args]), params)
    except (ShapeMsg, DimMismatch) as exc:  # a bug in a derivative rule, never user input
        raise IllTyped(f"internal shape error building {op_name}: {exc}") from exc
    node = Expr(op_name, args, params, ty)
    ref = _InternRef(node, _forget)
    ref.key = key
    _interned[key] = ref
    return node


def topological(roots: list[Expr]) -> list[Expr]:
    """Every node reachable from roots, each once, arguments before users (iterative): the
    post-order of a depth-first walk taking arguments left to right.  A node is marked when
    first met and a leaf emitted at once, so each node costs one visit (no tuple per edge)."""
    order: list[Expr] = []
    seen: set[Expr] = set()
    mark, emit = seen.add, order.append
    for root in roots:
        if root in seen:
            continue
        mark(root)
        nodes, places = [root], [0]
        while nodes:
            node = nodes[-1]
            args = node.args
            i = places[-1]
            n = len(args)
            while i < n:
                a = args[i]
                i += 1
                if a not in seen:
                    mark(a)
                    if a.args:
                        places[-1] = i
                        nodes.append(a)
                        places.append(0)
                        break
                    emit(a)
            else:
                emit(node)
                nodes.pop()
                places.pop()
    return order


def symbols_of(root: Expr) -> list[Expr]:
    return [n for n in topological([root]) if n.op == "sym"]


def outline(node: Expr, depth: int = 4) -> str:
    """A node as `op(arguments)`, symbols by name and constants by value, `…` below `depth`:
    the debugging view of a node (`render.py`, above this module, prints formulas)."""
    if node.op == "sym":
        return str(node.params[0])
    if node.op == "const":
        return repr(node.params[0])
    if depth == 0:
        return "…"
    inner = [outline(a, depth - 1) for a in node.args]
    inner += [repr(p) for p in node.params]
    return f"{node.op}({', '.join(inner)})"
