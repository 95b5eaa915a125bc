"""Typed graph → numbers, against an array namespace `xp`: numpy, or any array API library.

`compile_graph` fixes an evaluation order once; running it evaluates each node of the DAG once,
frees each intermediate after its last use (so a scalar gradient needs memory of a small
multiple of the inputs, never a Jacobian), and turns a non-finite result of a partial operator
(log, sqrt, /, inv, ...) computed from finite inputs into a `math` error naming the
subexpression.  numpy keeps its fast paths (results written over dead temporaries); any other
namespace runs the same operators in the array API standard's spelling, and a lazy one (dask)
builds one graph whose checks are computed with f and the derivatives in one pass (`_run_api`).
Abstract functions are bound to builtins here (`--fn h=tanh`): `h'(z)` becomes
tanh's own derivative expression, derived by the same rules as everything else.
"""

from __future__ import annotations

import math

from typing import TYPE_CHECKING, Any

from ..language import simplify as S
from ..record import record
from ..language.operators.kernels import Kernel, is_numpy
from ..language.operators import ELEMENTWISE
from ..calculus.differentiate import elementwise_derivative
from ..errors import GradcliError, data_error, math_error
from ..language.expr import OPS, Expr, Op, make_raw, topological
from ..language.rewrite import rebuilt_raw, rewrite
from ..language.render import render
from ..language.shapes import entries
from ..language.simplify import is_transpose_pair

if TYPE_CHECKING:
    from ..language.shapes import Ty


def bind_functions(roots: list[Expr], fns: dict[str, str], keep_unbound: bool = False) -> list[Expr]:
    """Replace abstract h, h', h'' by the bound builtin and its derivatives.  An abstract
    function with no binding is a data error, or stays as it is with `keep_unbound` (`--emit`:
    the module takes a callable for it)."""

    def bind(node: Expr, args: tuple[Expr, ...]) -> Expr | None:
        if node.op != "apply":
            return None
        name, order = node.params
        if name not in fns:
            if keep_unbound:
                return None
            raise data_error(f"'{name}' is an abstract function: bind it for numbers with "
                             f"--fn {name}=tanh (any element-wise builtin)")
        builtin = fns[name]
        return S.fn(builtin, args[0]) if order == 0 else elementwise_derivative(builtin, order, args[0])

    return rewrite(roots, bind)


@record
class Step:
    """One node's evaluation: its kernel (None for a symbol or a constant), the nodes whose
    values the kernel reads (a deferred argument is read through: diag(v) as v, (−1)·z as z),
    and, on numpy, which of them the result is written over (an index into `args`, or None)."""

    node: Expr
    kernel: Kernel | None
    args: tuple[Expr, ...]
    overwrite: int | None = None


@record
class Schedule:
    """A fixed evaluation order for some roots — the one plan the evaluator runs and `--emit`
    writes out: each value is computed once, freed after its last use (`last_use`: node →
    the step that reads it last), and element-wise results are written over temporaries nothing
    needs afterwards, so the emitted module allocates what the evaluator allocates."""

    roots: list[Expr]
    steps: list[Step]
    last_use: dict[Expr, int]
    deferred: set[Expr]


def kernel_for(node: Expr) -> Kernel:
    kernel = OPS[node.op].impl
    if kernel is None:
        raise RuntimeError(f"the operator {node.op} has no numeric implementation")
    return kernel


def schedule(roots: list[Expr]) -> Schedule:
    """The steps that compute roots (see `Schedule`); the graph is taken as it is (`prepare`
    regroups it first)."""
    order = topological(roots)
    deferred = deferred_nodes(order, roots)
    steps: list[Step] = []
    for node in order:
        if node in deferred:
            continue
        if node.op in ("sym", "const") or node.op == "apply":
            steps.append(Step(node, None, node.args))
            continue
        kernel, args = kernel_for(node).pick(node, deferred)
        steps.append(Step(node, kernel, args))
    last_use: dict[Expr, int] = {}
    for i, st in enumerate(steps):
        for a in st.args:
            last_use[a] = i
    _plan_overwrites(steps, last_use, set(roots))
    return Schedule(roots, steps, last_use, deferred)


def _plan_overwrites(steps: list[Step], last_use: dict[Expr, int], roots: set[Expr]) -> None:
    """Mark the element-wise steps whose result can go into an argument's array: a temporary
    this schedule made (not an input, a constant, a view or an array a view shares), of the
    result's shape, read by nothing later and not a root.  Operators that can fail are left
    out: their check reads the arguments after the result is computed."""
    owned: set[Expr] = set()  # nodes holding an array of their own that no view shares
    for i, st in enumerate(steps):
        node, kernel = st.node, st.kernel
        if kernel is None:
            continue
        if kernel.view:
            owned.difference_update(st.args)  # shared from now on: never written over
            continue
        if kernel.in_place and not OPS[node.op].fails and node.ty.dims:
            for k, a in enumerate(st.args):
                if (a in owned and last_use.get(a) == i and a not in roots
                        and st.args.count(a) == 1 and a.ty.dims == node.ty.dims):
                    st.overwrite = k
                    owned.discard(a)
                    break
        if node.ty.dims:
            owned.add(node)


@record
class Program:
    """A schedule the evaluator runs (`run`).  (blocked.py caches its row-block plan in the
    instance's `__dict__`.)"""

    roots: list[Expr]
    plan: Schedule
    allow_nonfinite: bool = False  # IEEE results (with a warning) instead of a math error

    @property
    def order(self) -> list[Expr]:
        """Every node of the evaluated graph, arguments first (deferred ones included)."""
        return topological(self.roots)

    @property
    def deferred(self) -> set[Expr]:
        return self.plan.deferred

    def run(self, values: dict[str, Any], xp: Any = None) -> list[Any]:
        """The roots' values.  xp: numpy (the default), an array API namespace, or a backend of
        `backends.py` (dask); with a lazy namespace the values come back computed (numpy)."""
        if xp is None:
            import numpy as xp  # the default array namespace
        elif not is_numpy(xp):
            return self._run_api(values, xp)
        env: dict[Expr, Any] = {}
        keep = set(self.roots)
        last_use = self.plan.last_use
        with _quiet(xp):
            for i, st in enumerate(self.plan.steps):
                out = None
                if st.overwrite is not None:
                    args = [env[a] for a in st.args]
                    target = args[st.overwrite]
                    if (getattr(target, "base", 0) is None  # (never a view, whatever the plan says)
                            and getattr(getattr(target, "flags", None), "writeable", False)
                            and getattr(target, "dtype", None) == xp.float64
                            and tuple(target.shape) == tuple(st.node.ty.dims)):
                        out = st.kernel.run_into(xp, st.node, args, target)  # type: ignore[union-attr]
                    args = target = None  # type: ignore[assignment]
                if out is None:
                    out = self._one(xp, st, env, values)
                env[st.node] = out
                out = None  # hold no reference past the step: memory follows last use
                for a in st.args:  # free what no later step reads
                    if last_use.get(a) == i and a not in keep:
                        env.pop(a, None)
            if not self.allow_nonfinite:
                self._check_overflow(xp, env, values)
        return [env[r] for r in self.roots]

    def _run_api(self, values: dict[str, Any], xp: Any) -> list[Any]:
        """Any array API namespace: no in-place writes, Python numbers made arrays where a
        function needs one.  A lazy namespace (`xp.lazy`) records each check instead of asking
        for a value (which would compute the graph up to there, once per check): `xp.compute`
        evaluates the roots with one flag per check ("some entry is not finite") in one pass.
        Only when a flag is up does a second pass look closer (were the arguments finite, NaN
        or a pole?), so the failed checks raise in evaluation order with numpy's messages."""
        lazy = getattr(xp, "lazy", False)
        env: dict[Expr, Any] = {}
        keep = set(self.roots)
        last_use = self.plan.last_use
        checks: list[Any] | None = [] if lazy else None
        with _quiet(xp):
            for i, st in enumerate(self.plan.steps):
                env[st.node] = self._one(xp, st, env, values, checks, api=True)
                for a in st.args:
                    if last_use.get(a) == i and a not in keep:
                        env.pop(a, None)
            roots = [env[r] for r in self.roots]
            if not lazy:
                if not self.allow_nonfinite:
                    self._check_overflow(xp, env, values)
                return roots
            assert checks is not None
            watched = [] if self.allow_nonfinite else list(self.roots)
            flags = [_finite_flag(xp, c[2]) for c in checks] + [_finite_flag(xp, env[r]) for r in watched]
            computed, flags = xp.compute(roots, flags)
            roots = list(computed)
            if all(flags):
                return roots
            failed = [c for c, ok in zip(checks, flags) if not ok]
            details = [(_finite_flag(xp, c[2]), [_finite_flag(xp, a) for a in c[3]], xp.any(xp.isnan(c[2])),
                        _any_pole(xp, c[2], c[3])) for c in failed]
            inputs = [_finite_flag(xp, v) for v in values.values()]
            _, (details, inputs) = xp.compute([], (details, inputs))
        for (node, op, _, _), (finite, args_finite, nan, pole) in zip(failed, details):
            if not finite and all(args_finite):
                cause = op.fails if (nan or pole or (node.op not in _POINTWISE_BINARY
                                                      and node.op not in ELEMENTWISE)) \
                    else "overflow (a value beyond float64's range)"
                self._fail_or_warn(cause, node)
        bad_roots = [r for r, ok in zip(watched, flags[len(checks):]) if not ok]
        if bad_roots and all(inputs):
            raise math_error(f"overflow (a value beyond float64's range) in {_short(bad_roots[0])} "
                             "(--allow-nonfinite gives IEEE results)")
        return roots

    def _fail_or_warn(self, cause: str, node: Expr) -> None:
        if not self.allow_nonfinite:
            raise math_error(f"{cause} in {_short(node)} (--allow-nonfinite gives IEEE results)")
        import warnings

        warnings.warn(f"{cause} in {_short(node)}: the result has NaN or Inf", RuntimeWarning, stacklevel=3)

    def _check_overflow(self, xp: Any, env: dict[Expr, Any], values: dict[str, Any]) -> None:
        """Operators that can fail check themselves (`_one`); a sum or product of finite values
        that overflows (`x*1e200*1e200`) shows only in the result.  With finite inputs a
        non-finite root is an overflow.  The roots are checked first: the inputs (a data matrix
        can be most of the memory traffic of a run) are read only when a root is not finite."""
        for root in self.roots:
            value = env[root]
            if (not _all_finite(xp, value)
                    and all(_all_finite(xp, v) for v in values.values())):
                raise math_error(f"overflow (a value beyond float64's range) in {_short(root)} "
                                 "(--allow-nonfinite gives IEEE results)")

    def _one(self, xp: Any, st: Step, env: dict[Expr, Any], values: dict[str, Any],
             checks: list[Any] | None = None, api: bool = False) -> Any:
        node = st.node
        if node.op == "sym":
            name = node.params[0]
            if name not in values:
                raise data_error(f"no value for '{name}': give it with -d {name}=FILE.npy, "
                                 f"-d {name}=NUMBER, or --random")
            return values[name]
        if node.op == "const":
            return node.value
        if st.kernel is None:
            raise RuntimeError(f"{node.op} is not evaluated (bind abstract functions first)")
        args = [env[a] for a in st.args]
        op = OPS[node.op]
        if api:  # the standard's functions take arrays, not Python numbers
            args = [xp.asarray(a, dtype=xp.float64) if isinstance(a, (int, float)) else a for a in args]
            if getattr(xp, "lazy", False) and node.op in xp.WHOLE:
                return xp.whole(node, op, args, self.allow_nonfinite)
        try:
            out = st.kernel.run(xp, node, args)
        except (ArithmeticError, ValueError) as exc:  # LinAlgError is a ValueError
            if self.allow_nonfinite and op.fails:
                import warnings

                warnings.warn(f"{_what(op, exc)} in {_short(node)}: the result is NaN", RuntimeWarning,
                              stacklevel=2)
                return xp.full(node.ty.dims, float("nan"))
            raise math_error(f"{_what(op, exc)} in {_short(node)}") from None
        if op.fails and checks is not None:  # lazy: a flag computed with the results
            checks.append((node, op, out, args))
            return out
        if op.fails and not _all_finite(xp, out) and all(_all_finite(xp, a) for a in args):
            cause = _cause(xp, op, node, out, args)
            if not self.allow_nonfinite:
                raise math_error(f"{cause} in {_short(node)} (--allow-nonfinite gives IEEE results)")
            import warnings

            warnings.warn(f"{cause} in {_short(node)}: the result has NaN or Inf", RuntimeWarning,
                          stacklevel=2)
        return out


def peak_entries(program: Program) -> int | None:
    """The most float64 entries the evaluation holds at once besides its inputs, following the
    schedule `Program.run` keeps: each node's result is allocated at its step (views, and
    element-wise results written over a dead temporary, allocate nothing) and freed after its
    last use unless it is a root.  An estimate: an operator's own workspace (LAPACK's,
    einsum's) is not counted.  None while a dimension is still symbolic."""
    plan = program.plan
    roots = set(plan.roots)
    owned: dict[Expr, int] = {}  # entries each live node holds
    live = peak = 0
    for step, st in enumerate(plan.steps):
        node = st.node
        if not all(isinstance(d, int) for d in node.ty.dims):
            return None
        size = entries(node.ty.dims)
        dying = [a for a in dict.fromkeys(st.args) if plan.last_use.get(a) == step and a not in roots]
        if st.kernel is None:
            size = 0
        elif st.kernel.view or node.op == "fill":  # (a fill counts as the copy a product makes of it)
            size = sum(owned.pop(a, 0) for a in dying)  # keeps its arguments' arrays alive
            live -= size
        elif st.overwrite is not None:
            live -= owned.pop(st.args[st.overwrite], 0)  # written over that argument's array
        owned[node] = size
        live += size
        # a product copies a broadcast argument into a contiguous array for BLAS while it runs
        copies = sum(entries(a.ty.dims) for a in st.args if a.op in ("fill", "expand")) \
            if node.op == "matmul" else 0
        peak = max(peak, live + copies)
        for a in dying:
            live -= owned.pop(a, 0)
    return peak



_POINTWISE_BINARY = ("add", "mul", "div", "pow")


def _cause(xp: Any, op: Op, node: Expr, out: Any, args: list[Any]) -> str:
    """How a partial operator failed on finite arguments.  For an element-wise one: a NaN is
    an argument outside its domain, an infinity where an argument is 0 is a pole (log 0, 1/0,
    0⁻¹) — both `op.fails` — and any other infinity a result beyond float64's range, an
    overflow (exp(1000), (10¹⁰⁰)⁴).  Matrix operators (inv, logdet) fail only by singularity."""
    if node.op not in _POINTWISE_BINARY and node.op not in ELEMENTWISE:
        return op.fails
    if bool(xp.any(xp.isnan(out))):
        return op.fails
    infinite = xp.isinf(out)
    if any(bool(xp.any(infinite & (a == 0))) for a in args):
        return op.fails
    return "overflow (a value beyond float64's range)"


def _what(op: Op, exc: Exception) -> str:
    return op.fails or str(exc)


def _short(node: Expr) -> str:
    text = render(node, "ascii")
    return text if len(text) <= 60 else text[:57] + "..."


def _finite_flag(xp: Any, value: Any) -> Any:
    """Whether every entry is finite, as a (lazy) 0-d array."""
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    return xp.all(xp.isfinite(value))


def _any_pole(xp: Any, out: Any, args: list[Any]) -> Any:
    """Whether out is infinite where some argument is 0 (a pole, as `_cause` decides), lazily."""
    infinite = xp.isinf(out)
    flag = xp.any(infinite & (args[0] == 0)) if args else xp.any(infinite & False)
    for a in args[1:]:
        flag = flag | xp.any(infinite & (a == 0))
    return flag


def _all_finite(xp: Any, value: Any) -> bool:
    """Whether every entry is finite.  A sum is finite exactly when no entry is inf or nan (or
    when the entries' sum overflows: then the entries are looked at one by one), and it needs no
    temporary array: on a large Jacobian the check costs one read instead of a read, a boolean
    array and a second read."""
    if isinstance(value, (int, float)):  # a constant root (an array API namespace takes no numbers)
        return math.isfinite(value)
    if bool(xp.isfinite(xp.sum(value))):
        return True
    return bool(xp.all(xp.isfinite(value)))


class _quiet:
    """numpy's warnings would duplicate our own messages; silence them while evaluating."""

    def __init__(self, xp: Any) -> None:
        if not hasattr(xp, "errstate"):  # array-api-strict, dask, ... compute with numpy underneath
            import numpy as xp
        self.ctx = xp.errstate(all="ignore")

    def __enter__(self) -> None:
        if self.ctx:
            self.ctx.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self.ctx:
            self.ctx.__exit__(*exc)


def _chain_cost(shapes: list[tuple[int, int]], diag: list[bool]) -> tuple[list[list[float]], list[list[int]]]:
    """Matrix-chain ordering by dynamic programming: (cost, split) tables for the cheapest
    parenthesisation.  A diag(v) factor costs rows·cols (a broadcast), and no split may leave a
    1×1 product in the middle of a chain (a scalar cannot be matrix-multiplied)."""
    n = len(shapes)
    inf = float("inf")
    cost = [[0.0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            cost[i][j] = inf
            for k in range(i, j):
                rows, inner, cols = shapes[i][0], shapes[k][1], shapes[j][1]
                if (rows == 1 and inner == 1 and k > i) or (inner == 1 and cols == 1 and k + 1 < j):
                    continue  # a scalar intermediate
                single_diag = (k == i and diag[i]) or (k + 1 == j and diag[j])
                c = cost[i][k] + cost[k + 1][j] + (rows * cols if single_diag else rows * inner * cols)
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return cost, split


def _as_matrix(ty: Ty) -> tuple[int, int]:
    """A factor's (rows, columns); the sizes are numbers here (`reassociate` checks)."""
    dims = [int(d) for d in ty.dims]  # type: ignore[arg-type]
    if ty.is_matrix:
        return dims[0], dims[1]
    return (1, dims[0]) if ty.row else (dims[0], 1)


def reassociate(roots: list[Expr]) -> list[Expr]:
    """Evaluate products of three or more factors in the cheapest order for the actual sizes:
    A@B@x as A(Bx), never (AB)x.  Only chains whose inner products are used nowhere else are
    regrouped, so no shared value is computed twice."""
    order = topological(roots)
    uses: dict[Expr, int] = {}
    for n in order:
        for a in n.args:
            uses[a] = uses.get(a, 0) + 1
    keep = set(roots)
    # inner products of a chain, regrouped with the whole chain rather than on their own
    interior = {a for n in order if n.op == "matmul" for a in n.args
                if a.op == "matmul" and uses.get(a) == 1 and a not in keep}
    done: dict[Expr, Expr] = {}  # what each node became (the chain's factors are read from it)

    def factors(n: Expr) -> list[Expr]:  # the chain's factors, left to right (iterative)
        out, stack = [], list(reversed(n.args))
        while stack:
            a = stack.pop()
            if a in interior:
                stack.extend(reversed(a.args))
            else:
                out.append(done[a])
        return out

    def regroup(n: Expr, args: tuple[Expr, ...]) -> Expr | None:  # None: as written
        if n.op == "tr":
            return _trace_of_product(n, args[0], uses)
        if n.op != "matmul" or n in interior:  # (an inner product: its chain's top regroups it)
            return None
        fs = factors(n)
        if (len(fs) == 3 and fs[1].op == "diagm" and fs[2].ty.is_matrix
                and is_transpose_pair(fs[0], fs[2])):  # Pᵀ diag(w) P: a symmetric update (any sizes)
            return make_raw("congruence", (fs[2], fs[1].args[0]))
        if len(fs) < 3 or any(f.ty.is_scalar or not all(isinstance(d, int) for d in f.ty.dims) for f in fs):
            return None
        if len(fs) > MAX_CHAIN_ORDERED:  # the cubic ordering search is not worth it: fold
            return _folded(fs)  # from the narrow end (A(A(…(Ax))) for a vector x)
        cost, split = _chain_cost([_as_matrix(f.ty) for f in fs], [f.op == "diagm" for f in fs])
        if cost[0][-1] == float("inf"):  # every grouping leaves a 1×1 product inside: as written
            return None
        return _grouped(fs, split)

    return rewrite(roots, regroup, order, rebuild=rebuilt_raw, done=done)


def _trace_of_product(n: Expr, product: Expr, uses: dict[Expr, int]) -> Expr | None:
    """tr(PQ) as the sum of P ⊙ Qᵀ: an m·k product of entries instead of the m·k·m of forming
    PQ (tr(AXB) takes one matrix product, not two).  Only where the product PQ is used by
    nothing else (else it is computed anyway) and both factors are matrices."""
    original = n.args[0]
    if (product.op != "matmul" or uses.get(original) != 1
            or not all(f.ty.is_matrix for f in product.args)):
        return None
    p, q = product.args
    return make_raw("sum", (make_raw("mul", (p, make_raw("T", (q,)))),), (None, False))


MAX_CHAIN_ORDERED = 48  # longer products are multiplied from their narrower end


def _grouped(fs: list[Expr], split: list[list[int]]) -> Expr:
    """The product of fs grouped as the split table says (iterative: children, then parents)."""
    built: dict[tuple[int, int], Expr] = {}
    stack = [(0, len(fs) - 1, False)]
    while stack:
        i, j, ready = stack.pop()
        if i == j:
            built[i, j] = fs[i]
        elif ready:
            k = split[i][j]
            built[i, j] = make_raw("matmul", (built[i, k], built[k + 1, j]))
        else:
            k = split[i][j]
            stack += [(i, j, True), (k + 1, j, False), (i, k, False)]
    return built[0, len(fs) - 1]


def _folded(fs: list[Expr]) -> Expr | None:
    """F₁…F_k multiplied one factor at a time from the end whose outer dimension is smaller:
    right to left for a chain that ends in a vector, left to right for one that starts with a
    row.  None where that would form a 1×1 partial product inside the chain (a scalar cannot be
    matrix-multiplied on)."""
    shapes = [_as_matrix(f.ty) for f in fs]
    rows, cols = shapes[0][0], shapes[-1][1]
    if cols <= rows and not (cols == 1 and any(r == 1 for r, _ in shapes[1:])):
        out = fs[-1]
        for f in reversed(fs[:-1]):
            out = make_raw("matmul", (f, out))
        return out
    if not (rows == 1 and any(c == 1 for _, c in shapes[:-1])):
        out = fs[0]
        for f in fs[1:]:
            out = make_raw("matmul", (out, f))
        return out
    return None


def deferred_nodes(order: list[Expr], roots: list[Expr]) -> set[Expr]:
    """Nodes worth keeping unevaluated for their only consumers (the evaluator and `--emit`
    both read this through `schedule`): diag(v) used only by products (applied as a broadcast),
    and (−1)·z used only by sums, each of which has one such term (a + (−1)·z computed as a − z).
    Roots are always evaluated."""
    users: dict[Expr, list[Expr]] = {}
    for node in order:
        for a in node.args:
            users.setdefault(a, []).append(node)
    root_set = set(roots)

    def negation(n: Expr) -> bool:
        return n.op == "mul" and n.args[0].is_const and n.args[0].value == -1.0 and n not in root_set

    out: set[Expr] = set()
    for n in order:
        uses = users.get(n, [])
        if n in root_set or not uses:
            continue
        if n.op == "diagm" and all(u.op == "matmul" for u in uses):
            out.add(n)
        elif negation(n) and all(u.op == "add" and not (negation(u.args[0]) and negation(u.args[1]))
                                 for u in uses):
            out.add(n)
    return out


def _det_power(e: Expr, x: Expr) -> float:
    """p when e is det(x)ᵖ (det(x) is p = 1), else 0."""
    if e.op == "det" and e.args[0] is x:
        return 1.0
    if e.op == "pow" and e.args[0].op == "det" and e.args[0].args[0] is x and e.args[1].is_const:
        return e.args[1].value
    return 0.0


def _det_of_product(e: Expr, x: Expr) -> tuple[float, Expr | None]:
    """(p, det(R)) when e is det(M)ᵖ and M a product of square factors one of which is x or xᵀ,
    R the product of the others (None: no others): det(M) = det(x)·det(R).  The derivative of
    det(AXB) prints det(AXB)·X⁻ᵀ, evaluated as det(AB… the rest)·adj(X)ᵀ (X may be singular)."""
    p = 1.0
    if e.op == "pow" and e.args[1].is_const:
        e, p = e.args[0], e.args[1].value
    if e.op != "det" or e.args[0].op != "matmul":
        return 0.0, None
    factors = S.matmul_factors(e.args[0], [])
    if factors is None or not all(f.ty.is_matrix and f.ty.dims[0] == f.ty.dims[1] for f in factors):
        return 0.0, None
    for i, f in enumerate(factors):
        if f is x or (f.op == "T" and f.args[0] is x):
            others = factors[:i] + factors[i + 1:]
            if not others:
                return p, None
            product = others[0]
            for g in others[1:]:
                product = make_raw("matmul", (product, g))
            return p, make_raw("det", (product,))
    return 0.0, None


def _take_det(s: Expr, x: Expr) -> Expr | None:
    """s (a scalar product) with one factor det(x) taken out — det(x)ᵖ becomes det(x)ᵖ⁻¹, and
    det(M)ᵖ of a product M = x·R of square factors det(M)ᵖ⁻¹·det(R) — or None when s has no
    such factor with p ≥ 1."""
    p = _det_power(s, x)
    if p >= 1.0:
        return S.const(1.0) if p == 1.0 else S.power(s.args[0], S.const(p - 1.0))
    p, det_rest = _det_of_product(s, x)
    if p >= 1.0:
        det_m = s.args[0] if s.op == "pow" else s
        lower = None if p == 1.0 else (det_m if p == 2.0 else make_raw("pow", (det_m, S.const(p - 1.0))))
        parts = [f for f in (lower, det_rest) if f is not None]
        if not parts:
            return S.const(1.0)
        return parts[0] if len(parts) == 1 else make_raw("mul", (parts[0], parts[1]))
    if s.op == "mul" and s.args[0].ty.is_scalar and s.args[1].ty.is_scalar:
        for i in (0, 1):
            rest = _take_det(s.args[i], x)
            if rest is not None:
                return make_raw("mul", (rest, s.args[1 - i]) if i == 0 else (s.args[0], rest))
    return None


def _inverses(m: Expr) -> list[Expr]:
    """The matrices X whose X⁻ᵀ or X⁻¹ is a factor of the product m."""
    if m.op == "matmul":
        return _inverses(m.args[0]) + _inverses(m.args[1])
    if m.op == "T" and m.args[0].op == "inv":
        return [m.args[0].args[0]]
    return [m.args[0]] if m.op == "inv" else []


def _swap_inverse(m: Expr, x: Expr) -> Expr:
    """m with its factor X⁻ᵀ replaced by adj(X)ᵀ (X⁻¹ by adj(X))."""
    if m.op == "matmul":
        left = _swap_inverse(m.args[0], x)
        right = m.args[1] if left is not m.args[0] else _swap_inverse(m.args[1], x)
        return m if (left, right) == m.args else make_raw("matmul", (left, right))
    if m.op == "T" and m.args[0].op == "inv" and m.args[0].args[0] is x:
        return make_raw("adjT", (x,))
    if m.op == "inv" and m.args[0] is x:
        return make_raw("T", (make_raw("adjT", (x,)),))
    return m


def adjugates(roots: list[Expr]) -> list[Expr]:
    """det(X)ᵖ·(… X⁻ᵀ …) with p ≥ 1 (the gradient of det(X)ᵖ, also through a product such as
    det(XY)) → det(X)ᵖ⁻¹·(… adj(X)ᵀ …): equal where X is invertible, and still right where it
    is singular, where X⁻ᵀ does not exist but the adjugate does.  Printed formulas keep the
    textbook det(X) X⁻ᵀ; only evaluation changes."""

    def swap(n: Expr, args: tuple[Expr, ...]) -> Expr:
        return _through_adjugate(rebuilt_raw(n, args))

    return rewrite(roots, swap, rebuild=rebuilt_raw)


def _through_adjugate(new: Expr) -> Expr:
    """One product det(X)ᵖ·(… X⁻ᵀ …) through the adjugate (`adjugates`); a common factor
    det(X)ᵖ·(P + s·X⁻ᵀ) (the derivative form pulls det(X) out of det(X)Aᵀ + tr(AX)det(X)X⁻ᵀ)
    is distributed first, over the terms that hold the inverse: det(X)ᵖ·P + s·det(X)ᵖ⁻¹adj(X)ᵀ."""
    if new.op == "mul" and new.args[0].ty.is_scalar and not new.args[1].ty.is_scalar:
        s, m = new.args
        if m.op == "add" and m.args[0].ty == m.args[1].ty == m.ty and any(
                _take_det(s, x) is not None for x in _summed_inverses(m)):
            return make_raw("add", tuple(_through_adjugate(_times(s, t)) for t in m.args))
        for x in _inverses(m):
            rest = _take_det(s, x)
            if rest is not None:
                swapped = _swap_inverse(m, x)
                return swapped if rest.is_const and rest.value == 1.0 else make_raw("mul", (rest, swapped))
    return new


def _summed_inverses(m: Expr) -> list[Expr]:
    """The matrices X whose inverse is a factor of a term of the sum m (or of its scalar
    multiples)."""
    if m.op == "add" and m.args[0].ty == m.args[1].ty == m.ty:
        return _summed_inverses(m.args[0]) + _summed_inverses(m.args[1])
    if m.op == "mul" and m.args[0].ty.is_scalar and not m.args[1].ty.is_scalar:
        return _summed_inverses(m.args[1])
    return _inverses(m)


def _times(s: Expr, t: Expr) -> Expr:
    """s·t with the scalar factors together: s·(r·M) = (s·r)·M, as `_take_det` reads them."""
    if t.op == "mul" and t.args[0].ty.is_scalar and not t.args[1].ty.is_scalar:
        return make_raw("mul", (make_raw("mul", (s, t.args[0])), t.args[1]))
    return make_raw("mul", (s, t))


def prepare(roots: list[Expr]) -> list[Expr]:
    """The graph as it is evaluated (and emitted): det(X)ᵖ·X⁻ᵀ through the adjugate, products
    regrouped for the sizes, Pᵀ diag(w) P as a rank-k update (after `bind_functions`)."""
    return reassociate(adjugates(roots))


def compile_graph(roots: list[Expr], fns: dict[str, str] | None = None) -> Program:
    roots = prepare(bind_functions(roots, fns or {}))
    plan = schedule(roots)
    for st in plan.steps:
        for d in st.node.ty.dims:
            if not isinstance(d, int):
                raise GradcliError("data", f"dimension '{d}' has no size: give data, -s, or a "
                                           "numeric where clause")
    return Program(roots, plan)
