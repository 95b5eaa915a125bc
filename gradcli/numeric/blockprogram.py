"""A block program lowered once to a flat list of numpy calls that write into buffers allocated
once, so that evaluating it on the next block of rows costs a handful of C calls per step.

Why.  Running a per-block program through the evaluator (`Program.run`) walks its graph for
every block: a dictionary of values, a check of each step for in-place reuse, a fresh array for
each temporary.  On a block of a few thousand rows that bookkeeping cost as much as the cache
saved (blocked evaluation measured 0.8–1.5× hand numpy).  Here the walk happens once.

How.  The first call runs the program step by step with each operator's own numpy code (as the
evaluator does) and records what each step produced.  That run fixes the plan: an element-wise
operator (add, multiply, tanh, ...) and a matrix product whose result is a float64 array become
one call of the numpy ufunc or `matmul` with `out=` a buffer of that shape, an operator whose
kernel computes into a given array (sigmoid, softplus, relu: `Helper.into`) one call of it —
the buffer of an argument that dies at the step (written in place) or a free one of the same
shape; a squared norm is a dot product; every other step keeps calling its operator's code.  A
buffer is reused only when nothing can still see it: a value that a view, a transpose or a
deferred factor (`diag(v)`, `c·z`) refers to keeps its buffer for good.  The results are the
same numbers as the evaluator's (the same kernels of `operators/kernels.py`, one numeric
implementation per operator, in the same order; a squared norm's sum is a BLAS dot product,
equal to rounding; x² is x·x, as numpy computes `x ** 2`).

Cost of one implementation per operator.  sigmoid, softplus and relu run their operator's own
kernel into the buffer (`kernels._sigmoid(np, a, out=buf)`) where this module once spelled
them as inline ufunc calls: measured on a 2621-entry block (1 MB of a 50-column X; one process,
interleaved, shared machine) 11.4 against 10.8 µs for sigmoid, 14.4 against 13.6 µs for
softplus (its one temporary), about 1% of a logistic gradient's time per block; end to end
(the bench's logistic gradient, X 200000×50 in blocks, old formulas patched back in, 40
interleaved runs in one process at load 6 on 2 cores) the medians were 1–10% apart, in the
machine's noise.

Contract.  The returned values live in the program's buffers: read them (copy, add into an
accumulator) before the next call.  A failing operator (log, /, sqrt, ...) whose result is not
finite raises `NonFinite` (unless non-finite values are allowed): the caller evaluates whole,
which reports the error exactly as a whole evaluation does.  No text is generated or executed.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import numpy as np

from .evaluate import Program
from ..language.expr import OPS, Expr
from ..language.operators.kernels import Helper, Infix, Kernel, concrete

Step = tuple[Callable[..., Any], tuple[int, ...], int, bool]  # (call, argument slots, result slot, check)


class NonFinite(Exception):
    """A failing operator gave a value that is not finite in this block."""


class BlockProgram:
    """`BlockProgram(program, allow_nonfinite)(values) -> roots` for blocks of one size."""

    def __init__(self, program: Program, allow_nonfinite: bool):
        self.program, self.allow_nonfinite = program, allow_nonfinite
        order = [st.node for st in program.plan.steps]  # the evaluator's schedule (no deferred nodes)
        self.schedule = {st.node: st for st in program.plan.steps}
        self.slot = {n: i for i, n in enumerate(order)}
        self.env: list[Any] = [None] * len(order)
        self.symbols = [(n.params[0], self.slot[n]) for n in order if n.op == "sym"]
        self.roots = [self.slot[r] for r in program.roots]
        self.steps: list[Step] | None = None  # fixed by the first call
        self.transient: list[int] = list(range(len(order)))  # slots that may hold the caller's data

    def release(self) -> None:
        """Drop what the last call left in the slots besides constants and the kernel's own
        buffers: the inputs' blocks (views that keep a whole array or a read buffer alive)."""
        for slot in self.transient:
            self.env[slot] = None

    def __call__(self, values: dict[str, Any]) -> list[Any]:
        env = self.env
        for name, slot in self.symbols:
            env[slot] = values[name]
        if self.steps is None:
            self._first_run(values)
        else:
            for call, args, out, check in self.steps:
                value = call(*[env[a] for a in args])
                env[out] = value
                if check and not _finite(value):
                    raise NonFinite
        return [env[r] for r in self.roots]

    # ------------------------------------------------------------ the first call
    def _first_run(self, values: dict[str, Any]) -> None:
        """Each step by its operator's own code; then the steps as calls into fixed buffers."""
        env, program = self.env, self.program
        traced: list[Step] = []
        for st in program.plan.steps:
            node = st.node
            i = self.slot[node]
            if node.op == "sym":
                continue
            args = tuple(self.slot[a] for a in st.args)  # a deferred argument read through
            call = self._generic(node)
            env[i] = call(*[env[a] for a in args])
            check = bool(OPS[node.op].fails) and not self.allow_nonfinite
            if check and not _finite(env[i]):
                raise NonFinite
            traced.append((call, args, i, check))
        self.steps = self._lower(traced)

    def _generic(self, node: Expr) -> Callable[..., Any]:
        """The step as the evaluator computes it (`Program._one`): the step's kernel."""
        if node.op == "const":
            value = node.value
            return lambda: value
        kernel = self.schedule[node].kernel
        assert kernel is not None
        return lambda *args: kernel.run(np, node, list(args))

    def _lower(self, traced: list[Step]) -> list[Step]:
        env, program = self.env, self.program
        nodes = {self.slot[st.node]: st.node for st in program.plan.steps}
        last_use: dict[int, int] = {}
        for step, (_, args, _, _) in enumerate(traced):
            for a in args:
                last_use[a] = step
        keep = set(self.roots) | {slot for _, slot in self.symbols}
        owner: dict[int, int] = {}  # slot -> buffer index it writes into
        buffers: list[Any] = []
        free: list[int] = []
        pinned: set[int] = set()  # buffers something may still see: never handed out again
        steps: list[Step] = []
        for step, (call, args, out, check) in enumerate(traced):
            node, value = nodes[out], env[out]
            arg_values = [env[a] for a in args]
            if node.op == "const":  # the same value in every block: kept in its slot
                continue
            reduce = _reduction(node, arg_values)
            if reduce is not None:
                steps.append((reduce, args, out, check))
                continue
            fast = _fast(node, self.schedule[node].kernel, arg_values, value)
            if fast is None:
                if node.args and not _fresh(value, arg_values):
                    pinned.update(owner[a] for a in args if a in owner)
                steps.append((call, args, out, check))
                continue
            dying = [a for a in args if last_use.get(a) == step and a not in keep and a in owner
                     and owner[a] not in pinned and args.count(a) == 1]
            buf = None
            if _elementwise(self.schedule[node].kernel):  # in place
                buf = next((owner[a] for a in dying if buffers[owner[a]].shape == value.shape), None)
            if buf is not None:
                dying.remove(next(a for a in dying if owner[a] == buf))
            else:
                buf = next((b for b in free if buffers[b].shape == value.shape), None)
                if buf is None:
                    buffers.append(np.empty(value.shape))
                    buf = len(buffers) - 1
                else:
                    free.remove(buf)
            owner[out] = buf
            steps.append((fast(buffers[buf]), args, out, check))
            free.extend(owner[a] for a in dying)
        kept = set(owner) | {self.slot[st.node] for st in program.plan.steps if st.node.op == "const"}
        self.transient = [i for i in range(len(env)) if i not in kept]
        return _live(steps, set(self.roots))


def _live(steps: list[Step], roots: set[int]) -> list[Step]:
    """The steps whose values a later step or a root reads."""
    needed, kept = set(roots), []
    for step in reversed(steps):
        if step[2] in needed:
            kept.append(step)
            needed.update(step[1])
    return kept[::-1]


def _fresh(value: Any, args: list[Any]) -> bool:
    """Whether a step's result is an array of its own (not a view of, or a wrapper around, an
    argument's array)."""
    return getattr(value, "base", None) is None and not any(value is a for a in args)


def _reduction(node: Expr, args: list[Any]) -> Callable[..., Any] | None:
    """A sum or squared norm of a whole array, called without numpy's Python wrappers."""
    if not (args and isinstance(args[0], np.ndarray) and args[0].ndim >= 1):
        return None
    if node.op == "sqnorm":
        return _sqnorm
    if node.op == "sum" and node.params == (None, False):
        return _sum
    return None


def _sum(a: np.ndarray) -> Any:
    return np.add.reduce(a, axis=None)


def _fast(node: Expr, kernel: Any, args: list[Any], value: Any) -> Callable[[np.ndarray], Callable[..., Any]] | None:
    """How to compute the step into a given buffer (None: keep the operator's own code)."""
    op = node.op
    if not (isinstance(value, np.ndarray) and value.dtype == np.float64 and value.ndim >= 1):
        return None
    if not all(isinstance(a, (np.ndarray, float, int, np.floating)) for a in args):
        return None
    if op == "pow":
        return _pow
    if isinstance(kernel, Helper) and kernel.into and kernel.report is None:  # its own code, into the buffer
        fn, extra = kernel.fn, [concrete(s) for s in kernel.settings(node)] if kernel.settings else []
        if not extra:
            return lambda buf: partial(fn, np, out=buf)
        return lambda buf: lambda *a: fn(np, *a, *extra, out=buf)
    if kernel is not None and kernel.ufunc:  # the operator's own ufunc (kernels.py)
        ufunc = getattr(np, kernel.ufunc)
        return lambda buf: lambda *a: ufunc(*a, out=buf)
    if isinstance(kernel, Infix) and kernel.symbol == "@":
        if not all(isinstance(a, np.ndarray) and a.ndim >= 1 for a in args):
            return None
        return lambda buf: lambda a, b: np.matmul(a, b, out=buf)
    return None


def _elementwise(kernel: Kernel | None) -> bool:
    """Whether a step computes entry by entry, so that its result may go into an argument's buffer."""
    return kernel is not None and kernel.in_place


def _sqnorm(a: np.ndarray) -> Any:
    flat = a.reshape(-1)
    return np.dot(flat, flat)


def _pow(buf: np.ndarray) -> Callable[[Any, Any], Any]:
    """aᵇ into the buffer (the operator's ufunc); a² as a·a, as numpy computes the evaluator's
    `a ** 2`."""

    def call(a: Any, b: Any) -> Any:
        if isinstance(b, float) and b == 2.0:
            return np.multiply(a, a, out=buf)
        return np.power(a, b, out=buf)
    return call


def _finite(value: Any) -> bool:
    """Whether every entry is finite (a finite sum says so in one pass over a cached block)."""
    total = np.sum(value)
    return bool(np.isfinite(total)) or bool(np.all(np.isfinite(value)))
