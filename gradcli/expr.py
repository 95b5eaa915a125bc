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

from .record import Factory, record
from .shapes import STRICT, DimMismatch, Ty

if TYPE_CHECKING:  # the types of an operator's parts, for checkers only (nothing imported at run time)
    from typing import Protocol, TypeAlias

    from .emit import Codegen
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
    Impl: TypeAlias = Callable[..., Array]  # (xp, node, *the arguments' values) → the value
    CustomNotation: TypeAlias = Callable[[Renderer, "Expr"], tuple[str, float]]  # → (text, precedence)
    Notation: TypeAlias = dict[str, "tuple[str, float] | CustomNotation"]
    Simplify: TypeAlias = Callable[[tuple["Expr", ...], Params], "Expr | None"]
    Emit: TypeAlias = "str | Callable[[Codegen, Expr, list[str]], str] | None"


class ShapeMsg(Exception):
    """Raised by a shape rule: the message names the operator and both shapes."""


@record
class Op:
    """One operator: everything gradcli knows about it, in one place.

    shape(ctx, tys, params) -> Ty      raise ShapeMsg on a mismatch; ctx.same(d1, d2) unifies
    vjp[i](node, G) -> Expr            adjoint of argument i given the adjoint G of the node
    impl(xp, node, *values) -> array   numeric value, written against the array namespace xp
    notation: dict style -> (template, precedence) or callable(renderer, node) -> (text, prec)
    simplify(args, params) -> Expr|None  rewrite applied when the node is built
    fails: what to say when impl gives a non-finite value from finite inputs (math error)
    emit: numpy source for the node (`--emit numpy`): a template over the arguments' names,
          "np.exp({0})", or callable(codegen, node, args) -> str
    """

    name: str
    shape: ShapeRule
    impl: Impl
    vjp: tuple[Vjp, ...] = ()
    notation: Notation = Factory(default_factory=dict)
    simplify: Simplify | None = None
    fails: str = ""
    emit: Emit = None
    rule: str = ""  # the differential rule, as `--steps` shows it


OPS: dict[str, Op] = {}


def register(op: Op) -> Op:
    OPS[op.name] = op
    return op


class Expr:
    """A node of the typed graph. Never construct directly: use `make` (or ops' helpers)."""

    __slots__ = ("op", "args", "params", "ty", "size", "__weakref__")
    size: int  # nodes in the tree below, this one included

    def __init__(self, op: str, args: tuple[Expr, ...], params: Params, ty: Ty):
        self.op = op
        self.args = args
        self.params = params
        self.ty = ty
        size = 1  # tree size, for ordering terms (a loop: a generator per node costs more)
        for a in args:
            size += a.size
        self.size = size

    def __repr__(self) -> str:
        from .render import render

        return f"Expr<{render(self, 'ascii')} : {self.ty.full_dims}>"

    @property
    def is_const(self) -> bool:
        return self.op == "const"

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
    seen: set[int] = set()
    mark, emit = seen.add, order.append
    for root in roots:
        if id(root) in seen:
            continue
        mark(id(root))
        nodes, places = [root], [0]
        while nodes:
            node = nodes[-1]
            args = node.args
            i = places[-1]
            n = len(args)
            while i < n:
                a = args[i]
                i += 1
                if id(a) not in seen:
                    mark(id(a))
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
