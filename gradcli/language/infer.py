"""Shape inference: `syntax` nodes → typed expression graph, with every symbol's shape.

Pass 0 (ranks.py) decides the rank of every undeclared symbol from its use, the operators' own
shape rules deciding what fits, and the defaults by name only what use leaves open.  Pass 1
walks the parse tree, gives each symbol a shape (data > --shape > where > the rank from pass 0
with unknown dimensions), and runs every operator's shape rule with a unifier, so `X@theta`
makes X's columns and theta's length one dimension.  A rule that cannot be satisfied becomes a
shape error at the operator's column.  Pass 2 rebuilds the graph with the resolved dimensions
through the smart constructors, which is where simplification happens.
"""

from __future__ import annotations

import itertools
from itertools import repeat
import math
import sys
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..record import record

from .operators import ELEMENTWISE
from .operators.reductions import norm_operator
from . import simplify as S
from ..errors import GradcliError, parse_error, shape_error
from .expr import CALLS, OPS, Expr, ShapeMsg, make, make_raw
from .ranks import decide_ranks, is_fixed
from .rewrite import rewrite
from .shaperules import aligned
from .shapes import SCALAR, Dim, DimMismatch, DimProduct, DimVar, Ty, Unifier, fmt, fmt_dims, product
from .structures import check_square, declared_structures
from .syntax import Binary, Call, Formula, Keyword, Node, Norm, Num, Sym, Transpose, Unary, postorder

if TYPE_CHECKING:
    from .expr import Params

SCALAR_NAMES = set("abcdefg") | {"alpha", "beta", "gamma", "delta", "eps", "lam", "lambda", "mu",
                                 "nu", "rho", "sigma", "tau", "eta"}
DIM_LETTERS = ["m", "n", "k", "p", "q", "r", "s", "t", "u", "v", "w", "l", "j"]
SOURCES = ("data", "option", "where", "assumed")  # priority order

BUILTINS = set(CALLS)  # every function name a formula may call (the registry's `names`)
# numpy names with no function here, and what to write instead
INSTEAD = {"transpose": "x' or x.T", "matmul": "a @ b", "power": "a^p", "pow": "a^p",
           "ln": "log(x)", "norm_fro": "||A||_F", "inverse": "inv(A)", "trans": "x' or x.T",
           "reshape": "a matrix reshaped is not supported beyond vec(X) and its inverse unvec"}


def _is_abstract_name(name: str) -> bool:
    """One letter, Latin or Greek (h, g, σ, φ): an unknown element-wise function by convention."""
    return len(name) == 1 and name.isalpha()


def unknown_function(name: str, col: int) -> GradcliError:
    """An unknown name: the closest builtins (case-insensitively: EXP → exp), or what to write
    instead, and how an abstract function is made — one message, one parenthesis."""
    import difflib

    abstract = f"an abstract function is one letter, h(x), or a name bound with --fn {name}=tanh"
    if name in INSTEAD:
        instead = INSTEAD[name]
        if instead.startswith("a matrix"):  # no equivalent: say so, and no --fn suggestion
            return parse_error(f"unknown function '{name}': {instead}", col)
        return parse_error(f"unknown function '{name}'; write {instead} ({abstract})", col)
    known = sorted(c for c, op in CALLS.items() if op.listed)
    lowered = {k.lower(): k for k in known}
    close = [lowered[name.lower()]] if name.lower() in lowered else difflib.get_close_matches(
        name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return parse_error(f"unknown function '{name}'{hint} ({abstract})", col)


GREEK_SCALARS = set("αβγδεελμνρστη")


def default_rank(name: str) -> int:
    """SPEC §1: scalars by name, matrices by an upper-case initial, vectors otherwise
    (a Greek letter counts as its name: λ is lambda, a scalar; θ a vector; Θ a matrix)."""
    if name in SCALAR_NAMES or name in GREEK_SCALARS:
        return 0
    return 2 if name[0].isupper() else 1


@record
class Symbol:
    name: str
    ty: Ty
    source: str  # data | option | where | assumed


@record
class Note:
    """Something the output must say so that what it prints is read right (JSON `notes`):
    kind `broadcast` (an undeclared symbol stretched by an operator), `scalar` (a 1×1 f taken
    as a scalar), `squeezed` (a formula written with singleton axes dropped)."""

    kind: str
    message: str
    symbol: str | None = None
    column: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "symbol": self.symbol, "column": self.column}


class Typed:
    """A shape-checked formula: its graph, symbols, and the wrt list.

    `ty` (f's shape) is known once shapes are checked; `expr`, the simplified graph (pass 2), is
    built when first asked for, and so are `symbols` (each one's resolved shape) and `notes`:
    `gradcli check` needs f's shape only, and building every formula's graph was 40% of its
    time.  Nothing unifies after pass 1, so what is built later is what pass 1 would have said."""

    def __init__(self, formula: Formula, ty: Ty, wrt: list[str], builder: _Builder, root: Expr):
        self.formula = formula
        self.ty = ty
        self.wrt = wrt
        self.columns = builder.columns  # first column of each symbol
        self._builder: _Builder | None = builder  # until symbols and notes are made
        self._pending: tuple[Expr, _Ctx] | None = (root, builder.ctx)  # pass 1's graph and its unifier
        self.structures: dict[str, str] = {}  # declared structure of each symbol that has one
        self._expr: Expr | None = None
        self._symbols: dict[str, Symbol] | None = None
        self._notes: list[Note] | None = None

    @property
    def symbols(self) -> dict[str, Symbol]:
        if self._symbols is None:
            b = self._builder
            assert b is not None
            resolve = b.ctx.resolve
            self._symbols = {name: Symbol(name, resolve(ty), source) for name, (ty, source) in b.symbols.items()}
            self._release()
        return self._symbols

    @property
    def notes(self) -> list[Note]:
        if self._notes is None:
            assert self._builder is not None
            self._notes = _broadcast_notes(self._builder)
            self._release()
        return self._notes

    def _release(self) -> None:
        """Let pass 1's builder go once everything made from it is made."""
        if self._symbols is not None and self._notes is not None:
            self._builder = None

    @property
    def expr(self) -> Expr:
        if self._expr is None:
            assert self._pending is not None
            limit = sys.getrecursionlimit()
            try:
                sys.setrecursionlimit(max(limit, 20000))
                self._expr = resolve_graph(*self._pending)
            except RecursionError:
                raise parse_error("the formula is nested too deeply") from None
            finally:
                sys.setrecursionlimit(limit)
            self._pending = None
        return self._expr

    def __repr__(self) -> str:
        return f"Typed({self.formula.text!r}: {fmt(self.ty)})"


_BINARY_OPS = {"+": "add", "*": "mul", "/": "div", "@": "matmul", "^": "pow"}  # "-" is built as + (−1)·


def _warn_star(col: int) -> None:
    """matrixcalculus.org and most papers write x'*A*x for a quadratic form; with numpy's `*` that
    broadcasts a row over a matrix and is almost never what was meant.  Legal, so a warning."""
    import warnings

    warnings.warn(f"column {col}: * is element-wise (numpy semantics) and spreads a row vector over a "
                  "matrix here; for the matrix product write @ (x'@A@x)", UserWarning, stacklevel=2)


class _Ctx:
    """The unifier as shape rules see it, plus names for unknown dimensions in messages."""

    def __init__(self) -> None:
        self.unifier = Unifier()
        self.order: list[Dim] = []  # dims in order of first appearance, for naming
        self.rigid: set[str] = set()
        self._names: dict[Dim, str] | None = None
        self._names_len = 0
        self._resolved: dict[Ty, Ty] = {}  # Ty -> resolved Ty, valid while `_resolved_for` is the names
        self._resolved_for: dict[Dim, str] | None = None
        self._canonical: dict[Ty, Ty] = {}  # each resolved shape, as one object (any names)

    def same(self, a: Dim, b: Dim) -> None:
        self._names = None
        self.unifier.same(a, b)

    def find(self, d: Dim) -> Dim:
        return self.unifier.find(d)

    def fresh_dim(self) -> DimVar:
        """A new unknown dimension a shape rule needs (the other factor of a product)."""
        d = DimVar()
        self.order.append(d)
        return d

    def names(self) -> dict[Dim, str]:
        """Names for the unknown dimensions (cached until the next unification)."""
        if self._names is None or self._names_len != len(self.order):
            self._names, self._names_len = self._compute_names(), len(self.order)
        return self._names

    def _compute_names(self) -> dict[Dim, str]:
        taken = self.rigid
        out: dict[Dim, str] = {}
        letters = (x for x in DIM_LETTERS if x not in taken)
        # n1, n2, …, the names not taken, once the letters run out (made when needed, each once:
        # a 64-layer formula has 65 unknown dimensions)
        spare = (f"n{i}" for i in itertools.count(1) if f"n{i}" not in taken)
        find = self.unifier.find
        for d in self.order:
            root = find(d)
            if isinstance(root, DimVar) and root not in out:
                out[root] = next(letters, None) or next(spare)
        return out

    def show_dim(self, d: Dim) -> str:
        root = self.find(d)
        if isinstance(root, DimVar):
            return self.names().get(root, "?")
        if isinstance(root, DimProduct):  # kron's m*p
            return "*".join(self.show_dim(f) for f in root.factors)
        return str(root)

    def show(self, ty: Ty) -> str:
        dims = tuple(self.show_dim(d) for d in ty.full_dims) if not ty.row else \
            (1,) + tuple(self.show_dim(d) for d in ty.dims)
        return fmt_dims(dims)

    def resolve(self, ty: Ty) -> Ty:
        """ty with every dimension resolved and named; remembered per type until the names
        change (any unification or new dimension makes new names), since a long formula asks
        for the same few types again and again."""
        if self._names is not None and self._names_len == len(self.order) and self._resolved_for is self._names:
            out = self._resolved.get(ty)  # the names are current (as `names()` would find)
            if out is not None:
                return out
        names = self.names()
        if self._resolved_for is not names:
            self._resolved, self._resolved_for = {}, names
        out = self._resolved.get(ty)
        if out is None:
            find = self.unifier.find
            dims = []
            for d in ty.dims:
                root = find(d)
                if isinstance(root, DimProduct):  # kron's m*p: each factor named
                    root = product(*(names.get(f, f) for f in root.factors))
                dims.append(names.get(root, root))
            out = Ty(tuple(dims), ty.row)
            # one object per resolved shape: the 50,000 symbols of a long sum, each with its
            # own pass-1 shape, share the one they resolve to, and every later test of two
            # shapes (`is`, then by value) stops at the first
            out = self._resolved[ty] = self._canonical.setdefault(out, out)
        return out


class _Builder:
    def __init__(self, declared: dict[str, tuple[tuple[Dim, ...], str]], functions: frozenset[str] = frozenset(),
                 ranks: dict[str, int] | None = None):
        self.ctx = _Ctx()
        self.functions = functions  # names bound with --fn: abstract functions of any length
        self.declared = declared
        self.ranks = ranks or {}  # undeclared symbols' ranks, decided by their use
        self.symbols: dict[str, tuple[Ty, str]] = {}
        self.structures: dict[str, str] = {}  # declared structure (symmetric, spd, diagonal)
        self.columns: dict[str, int] = {}
        self.stretched: list[tuple[str, int, tuple[Expr, Expr], Ty]] = []  # (operator, column, operand, result type): for notes
        self._built: dict[Node, Expr] = {}  # syntax node (records compare by identity) -> its typed node
        # pass 1 builds each distinct node once: an operator on the same operands (identity)
        # with the same settings is the same node, every occurrence of a symbol or a number is
        # one node.  A shape rule applied again to operands it accepted before can only unify
        # what is unified already, so a repeated term (the 50,000 `2*x` of a long sum) costs a
        # look-up instead of a shape rule, and pass 2 rebuilds it once.
        self._made: dict[tuple[str, tuple[Expr, ...], Params], Expr] = {}
        self._consts: dict[tuple[float, float], Expr] = {}
        self._syms: dict[str, Expr] = {}
        self._stretched_seen: set[tuple[str, Expr, Expr]] = set()

    # -- nodes with unresolved dims (pass 1)
    def raw(self, op: str, args: tuple[Expr, ...], params: Params, col: int) -> Expr:
        key = (op, args, params)
        try:
            found = self._made.get(key)
            hashable = True
        except TypeError:  # a setting that cannot be a key: build it afresh
            found, hashable = None, False
        if found is not None:
            return found
        try:
            ty = OPS[op].shape(self.ctx, tuple([a.ty for a in args]), params)
        except ShapeMsg as exc:
            hint = self._default_scalar_hint(op, args, params) if "()" in str(exc) else ""
            raise shape_error(str(exc) + hint, col) from None
        out = Expr(op, args, params, ty)
        if hashable:
            self._made[key] = out
        return out

    def const(self, value: float) -> Expr:
        """The one pass-1 node of a number (0.0 and -0.0 are two)."""
        key = (value, math.copysign(1.0, value))
        out = self._consts.get(key)
        if out is None:
            out = self._consts[key] = Expr("const", (), (value,), SCALAR)
        return out

    def _default_scalar_hint(self, op: str, args: tuple[Expr, ...], params: Params) -> str:
        """The Matrix Cookbook writes a, b, c, d for vectors; SPEC's defaults make them scalars.
        Use usually decides them (ranks.py), but where it could not and such a default is what
        breaks the operator — a vector there would fit — say so and how to declare it."""
        for i, a in enumerate(args):
            if a.op == "T":
                a = a.args[0]
            if a.op == "sym" and a.ty.is_scalar and self.symbols.get(a.params[0], (None, ""))[1] == "assumed":
                vector = Ty((DimVar(),), args[i].op == "T")
                tys = tuple(vector if j == i else b.ty for j, b in enumerate(args))
                try:
                    OPS[op].shape(_Ctx(), tys, params)
                except (ShapeMsg, DimMismatch):
                    continue
                name = a.params[0]
                return f"; '{name}' is a scalar by its name (see the defaults): for a vector, add where {name}: (n)"
        return ""

    def _same_shape(self, a: Ty, b: Ty) -> None:
        """SPEC: the operands of + and - have the same shape (unless one is a literal or declared):
        where broadcasting would stretch a 1 against an unknown dimension, the unknown is 1 too
        (b in A@x - b with x: (n, 1) is (m, 1), not (m, k))."""
        if a is b or len(a.dims) != len(b.dims) or a.row != b.row:
            return
        for x, y in zip(a.dims, b.dims):
            x, y = self.ctx.find(x), self.ctx.find(y)
            if (x == 1 and isinstance(y, DimVar)) or (y == 1 and isinstance(x, DimVar)):
                self.ctx.same(x, y)

    def symbol(self, node: Sym) -> Expr:
        name = node.name
        found = self._syms.get(name)
        if found is not None:
            return found
        if name not in self.symbols:
            self.columns[name] = node.col
            if name in self.declared:
                dims, source = self.declared[name]
                for d in dims:  # the names among the declared sizes are rigid
                    for f in d.factors if isinstance(d, DimProduct) else (d,):  # where v: (m*n)
                        if isinstance(f, str):
                            self.ctx.rigid.add(f)
                            self.ctx._names = None
            else:
                rank = self.ranks.get(name)
                if rank is None:
                    rank = default_rank(name)
                dims, source = tuple([DimVar() for _ in range(rank)]), "assumed"
            self.ctx.order.extend(dims)
            ty = Ty(tuple(dims))
            if self.structures.get(name) and len(dims) == 2:  # a structured matrix is square
                try:
                    self.ctx.same(dims[0], dims[1])
                except DimMismatch:
                    pass  # (n, m) declared: check_square says so, at the declaration
            self.symbols[name] = (ty, source)
            structure = self.structures.get(name)
            self._syms[name] = Expr("sym", (), (name, ty, structure) if structure else (name, ty), ty)
        return self._syms[name]

    def _stretch(self, op: str, col: int, a: Expr, b: Expr, out: Expr) -> None:
        """Remember an element-wise operator for the broadcast notes: the first of each (its
        operands are shared nodes, so a repeated term would only repeat what its first place
        says, at a later column that no note would name)."""
        key = (op, a, b)
        if key not in self._stretched_seen:
            self._stretched_seen.add(key)
            self.stretched.append((op, col, (a, b), out.ty))

    def build(self, node: Node, order: list[Node] | None = None) -> Expr:
        """The typed node of a syntax node.  Its subtrees are built first, children before
        parents in an explicit post-order (`_built` remembers them; `order`: node's, when the
        caller has it), so a formula nested thousands deep or a sum of 100,000 terms never
        meets Python's recursion limit."""
        built = self._built
        found = built.get(node)
        if found is not None:
            return found
        build_one = self._build_one
        for sub in _postorder(node) if order is None else order:
            built[sub] = build_one(sub)
        return built[node]

    def _build_one(self, node: Node) -> Expr:
        if isinstance(node, Sym):
            return self.symbol(node)
        if isinstance(node, Num):
            return self.const(node.value)
        if isinstance(node, Binary):
            built = self._built  # the operands were built just before (post-order)
            a = built.get(node.left) or self.build(node.left)
            b = built.get(node.right) or self.build(node.right)
            # operands of one rank and no axis written 1 (the terms of a long sum): an
            # element-wise operator unifies their dimensions pair by pair, so nothing is
            # stretched (no broadcast note) and the same-shape rule of + and - adds nothing
            # (it runs only before an error, so that the message shows what it always showed)
            plain = aligned(a.ty, b.ty)
            if not plain:
                self._same_shape_rule(node, a, b)
                return self._binary(node, a, b, plain)
            try:
                return self._binary(node, a, b, plain)
            except GradcliError:
                self._same_shape_rule(node, a, b)
                return self._binary(node, a, b, plain)  # the same error, after the rule
        if isinstance(node, Unary):
            a = self.build(node.operand)
            if node.op == "+":
                return a
            return self.raw("mul", (self.const(-1.0), a), (), node.col)
        if isinstance(node, Transpose):
            return self.raw("T", (self.build(node.operand),), (), node.col)
        if isinstance(node, Norm):
            a = self.build(node.operand)
            return self.raw(norm_operator(node.kind, a.ty), (a,), (), node.col)
        if isinstance(node, Call):
            return self.call(node)
        raise AssertionError(f"unknown syntax node {node!r}")

    def _same_shape_rule(self, node: Binary, a: Expr, b: Expr) -> None:
        """SPEC: the operands of + and - have one shape, unless one is a literal or declared."""
        if node.op in "+-" and not (is_fixed(node.left, self.declared) or is_fixed(node.right, self.declared)):
            self._same_shape(a.ty, b.ty)

    def _binary(self, node: Binary, a: Expr, b: Expr, plain: bool) -> Expr:
        """The typed node of a binary operator on its built operands (`plain`: operands that
        no element-wise operator stretches, see `_build_one`)."""
        if node.op == "-":
            negated = self.raw("mul", (self.const(-1.0), b), (), node.col)
            try:
                out = self.raw("add", (a, negated), (), node.col)
            except GradcliError as err:  # name the operator the user wrote
                err.message = "-" + err.message[1:] if err.message.startswith("+:") else err.message
                err.args = (err.message,)
                raise
            if not plain:
                self._stretch("-", node.col, a, b, out)
            return out
        op = _BINARY_OPS[node.op]
        if op == "mul" and ((a.ty.row and b.ty.is_matrix) or (b.ty.row and a.ty.is_matrix)):
            _warn_star(node.col)
        out = self.raw(op, (a, b), (), node.col)
        if op in ("add", "mul", "div") and not plain:
            self._stretch(node.op, node.col, a, b, out)
        return out

    def call(self, node: Call) -> Expr:
        """A function call, dispatched from the registry: the operator a formula calls by this
        name (its arity, its axis and its own call rule are in its record), else an abstract
        function h(x)."""
        name, n = node.name, len(node.args)
        op = CALLS.get(name)
        if op is None and not _is_abstract_name(name) and name not in self.functions:
            raise unknown_function(name, node.col)
        keywords = [a for a in node.args if isinstance(a, Keyword)]
        if keywords and (op is None or not op.axis or keywords[0].name != "axis"
                         or node.args.index(keywords[0]) != 1):
            k = keywords[0]
            takers = " and ".join(c for c, o in CALLS.items() if o.axis)
            what = f"'{k.name}'" + ("" if op is None else f" ({takers} take axis=)" if op.axis else
                                    f" ({name} takes no axis)")
            raise parse_error(f"{name}: unexpected keyword argument {what}", k.col)
        if node.deriv and op is not None and op.name not in ELEMENTWISE:
            raise parse_error(f"{name}' is not defined: only element-wise functions have a derivative "
                              "written f'(x)", node.col)
        allowed = op.arity if op is not None else (1,)
        if n not in allowed and (op is not None or node.deriv):
            want = " or ".join(str(k) for k in allowed)
            hint = f": {op.hint}" if op is not None and op.hint else ""
            raise shape_error(f"{name} takes {want} argument{'s' if allowed != (1,) else ''}, got {n}{hint}",
                              node.col)
        if op is not None and op.call is not None:
            return op.call(self, node)
        args = tuple(self.build(a) for a in node.args)
        if op is not None:
            if node.deriv:
                return self.raw("elemderiv", args, (op.name, node.deriv), node.col)
            return self.raw(op.name, args, (), node.col)
        if n != 1:
            raise shape_error(f"unknown function '{name}' with {n} arguments: abstract functions "
                              "take exactly one argument", node.col)
        return self.raw("apply", args, (name, node.deriv), node.col)

    # -- what a call rule asks (expr.CallContext)
    def show(self, ty: Ty) -> str:
        return self.ctx.show(ty)

    def axis(self, node: Call, a: Expr) -> int | None:
        """The axis written as a call's second argument (`sum(A, 0)`, `mean(A, axis=-1)`)."""
        if len(node.args) < 2:
            return None
        ax = node.args[1]
        ax = ax.value if isinstance(ax, Keyword) else ax
        neg = isinstance(ax, Unary) and ax.op == "-" and isinstance(ax.operand, Num)
        num = ax.operand if isinstance(ax, Unary) and neg else ax
        if not isinstance(num, Num) or not num.value.is_integer():
            raise shape_error(f"{node.name}: the axis must be an integer (0 or 1)", ax.col)
        axis = int(num.value) * (-1 if neg else 1)
        if not -a.ty.rank <= axis < a.ty.rank:
            raise shape_error(f"{node.name}: axis {axis} is out of range for {a.ty.kind()} "
                              f"{self.ctx.show(a.ty)}", node.args[1].col)
        return axis

    def dim(self, name: str, arg: Node) -> Dim:
        """A dimension argument: a positive integer or a dimension name (eye(n), ones(m, n))."""
        if isinstance(arg, Num) and arg.value.is_integer() and arg.value > 0:
            return int(arg.value)
        if isinstance(arg, Sym):
            self.ctx.rigid.add(arg.name)
            self.ctx._names = None
            return arg.name
        raise shape_error(f"{name} takes dimensions: {name}(3), {name}(m, n)", arg.col)


def _built_children(node: Node) -> tuple[Node, ...]:
    """The subtrees `_Builder` builds as expressions, left to right (not the dimensions of eye(n)
    and ones(m, n), nor the axis of sum(A, 0): the operator's record says)."""
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, (Unary, Transpose, Norm)):
        return (node.operand,)
    if isinstance(node, Call):
        op = CALLS.get(node.name)
        if op is not None and op.operands is not None:  # then settings: an axis, dimensions
            return node.args[:op.operands]
        return tuple(a for a in node.args if not isinstance(a, Keyword))
    return ()


def _postorder(root: Node) -> list[Node]:
    """Every subtree of root that is built, children (left to right) before parents."""
    return postorder(root, _built_children)


def resolve_graph(root: Expr, ctx: _Ctx) -> Expr:
    """Pass 2: rebuild with resolved dimensions through the simplifying constructors.

    Pass 1 builds each distinct node once, so its graph is a DAG: `rewrite` rebuilds each node
    once, operands before users; the leaves and the nodes whose settings hold dimensions take
    their resolved types here, every other node is `make` over its rebuilt operands."""
    resolve = ctx.resolve

    def visit(n: Expr, args: tuple[Expr, ...]) -> Expr:
        op = n.op
        if op == "sym":
            return S.sym(n.params[0], resolve(n.params[1]), *n.params[2:])
        if op == "const":
            return S.const(n.params[0])
        if op == "numel":
            return make_raw("numel", (), (resolve(n.params[0]),))
        if op == "eye":  # eye(n) takes the size n was unified with (A + eye(n), A: 3×3)
            return S.eye(resolve(n.ty).dims[0])
        if op == "fill":  # ones(m, n) likewise
            return S.fill(args[0], resolve(n.ty))
        return make(op, *args, params=n.params)

    return rewrite([root], visit)[0]


def _kind_rule(node: Node, ranks: dict[str, int], functions: frozenset[str]) -> str | None:
    """The kind (S, C, R, M) of one operator on stand-in operands of the given ranks, by the
    shape checker's own rules; None when it refuses them (ranks.py asks, and remembers)."""
    b = _Builder({name: (tuple(DimVar() for _ in range(r)), "where") for name, r in ranks.items()}, functions)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ty = b.build(node).ty
    except (GradcliError, RecursionError):
        return None
    return "R" if ty.row else "SCM"[ty.rank] if ty.rank <= 2 else None


def _broadcast_notes(b: _Builder) -> list[Note]:
    """SPEC §1: note every undeclared symbol that an element-wise operator stretches to a larger
    shape.  Scaling by a scalar (`c*x`, `x/c`) is not a broadcast; adding one is."""
    notes: list[Note] = []
    seen: set[str] = set()
    resolve = b.ctx.resolve
    for op, col, operands, result in b.stretched:
        target = resolve(result).full_dims
        for arg in operands:
            if arg.ty is result:  # the operand's own shape: nothing stretched (the terms of a sum)
                continue
            shape = resolve(arg.ty).full_dims
            if shape == target or (op in "*/" and arg.ty.is_scalar):
                continue
            for name in _carried(arg, b):
                if name in seen:
                    continue
                seen.add(name)
                sym_shape = fmt_dims(b.ctx.resolve(b.symbols[name][0]).full_dims)
                what = "a scalar" if sym_shape == "()" else sym_shape
                notes.append(Note("broadcast", f"{name} is assumed {what} and is broadcast to "
                                               f"{fmt_dims(target)} by {op} (column {col}); if it has "
                                               f"that shape, declare it: where {name}: {fmt_dims(target)}",
                                  name, col))
    return notes


def _carried(arg: Expr, b: _Builder) -> list[str]:
    """The undeclared symbols whose values an operand spreads: the operand itself, or those
    inside it that have its shape (x in 2*x or tanh(x), not y in sum(y))."""
    want = b.ctx.resolve(arg.ty)
    out, stack = [], [arg]
    while stack:
        e = stack.pop()
        if b.ctx.resolve(e.ty) != want:
            continue
        if e.op == "sym":
            name = e.params[0]
            if b.symbols.get(name, (None, ""))[1] == "assumed" and name not in out:
                out.append(name)
        stack.extend(reversed(e.args))
    return out


def _has_product(dims: tuple[object, ...]) -> bool:
    """Products last: m*n against a number needs m or n known first (where v: (m*n), A: (m, n))."""
    return any(isinstance(d, DimProduct) for d in dims)


def infer(formula: Formula, shapes: dict[str, tuple[tuple[Dim, ...], str]] | None = None,
          extra_wrt: list[str] | None = None, functions: Iterable[str] = (),
          structures: dict[str, str] | None = None) -> Typed:
    """Shape-check a parsed formula. `shapes` maps names to (dims, source) from data/options;
    `functions`: names bound with --fn, abstract functions however long their names."""
    declared: dict[str, tuple[tuple[Dim, ...], str]] = {}
    for decl in formula.where:
        declared[decl.name] = (decl.shape, "where")
    for name, (dims, source) in (shapes or {}).items():
        if name in declared and declared[name][1] == "where" and len(declared[name][0]) != len(dims):
            raise shape_error(f"{name}: {source} shape {fmt_dims(dims)} contradicts the where clause "
                              f"{fmt_dims(declared[name][0])}")
        lower = declared.get(name)
        declared[name] = (tuple(dims), source)
        if lower is not None:
            declared[name + "\0lower"] = lower
    given = {k: v for k, v in declared.items() if "\0" not in k}
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(limit, 20000))
        functions = frozenset(functions)
        order = _postorder(formula.expr)
        # with no call, the operands ranks.py counts are the subtrees built here: one walk
        shared = None if any(map(isinstance, order, repeat(Call))) else order
        ranks = decide_ranks(formula.expr, {k: len(dims) for k, (dims, _) in given.items()}, default_rank,
                             lambda node, stand_ins: _kind_rule(node, stand_ins, functions), functions,
                             shared)
        b = _Builder(given, functions, ranks)
        b.structures = declared_structures(formula, structures)
        root = b.build(formula.expr, order)
        # a lower-priority declaration must agree with the higher one (M may become 100)
        for key, (dims, source) in sorted(declared.items(), key=lambda kv: _has_product(kv[1][0])):
            if "\0" not in key:
                continue
            name = key.split("\0")[0]
            if name in b.symbols:
                hi = b.symbols[name][0]
                try:
                    for x, y in zip(hi.dims, dims):
                        b.ctx.same(x, y)
                except DimMismatch as err:
                    raise shape_error(f"{name}: shape {b.ctx.show(hi)} from {b.symbols[name][1]} "
                                      f"contradicts {fmt_dims(dims)} from the {source} clause"
                                      + (f" ({err.why})" if err.why else ""),
                                      b.columns.get(name)) from None
    except RecursionError:
        raise parse_error("the formula is nested too deeply") from None
    finally:
        sys.setrecursionlimit(limit)
    except_text = formula.text
    # each name once, in first-mention order (`wrt x, x` and `--wrt x` twice are one derivative)
    wrt = list(dict.fromkeys([name for name, _ in formula.wrt] + list(extra_wrt or [])))
    cols = dict(reversed(formula.wrt))  # a repeated name: the column of its first mention
    for name in wrt:
        if name not in b.symbols:
            raise GradcliError("shape", f"wrt: '{name}' does not appear in the formula",
                               cols.get(name), except_text)
    typed = Typed(formula, b.ctx.resolve(root.ty), wrt, b, root)
    if b.structures:
        check_square(formula, b.structures, typed.symbols)
        typed.structures = {name: s for name, s in b.structures.items() if name in typed.symbols}
    return typed
