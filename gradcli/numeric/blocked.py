"""Run a `plan.Plan` over row blocks: each pass reads every sliced input once, block by block,
runs the per-block program on the block (compiled once into a `blockprogram.BlockProgram`) and folds its
partial results into the reductions; what has no sample axis is computed once, before the pass
that needs it or after the last one.

When.  `evaluate` blocks when the plan splits and either an input is out of core (a memory-mapped
`.npy`, a folder of shards, a zarr array: those are only ever read block by block) or, in
memory, where blocks measured faster than the whole evaluation (`python -m bench --part blocks`;
`pays_in_memory`): rows are narrow (`NARROW_ROW_BYTES`), the inputs hold at least `MIN_BYTES` (32 MB: beyond a last-level cache, so
that the whole evaluation's second product over X reads memory again), the data is read once,
and every reduction is a scalar or a vector (Xᵀr: memory-bound work; a Hessian's XᵀDX is a
matrix product bound by arithmetic, which smaller blocks only slow down, and a second pass
over the data costs what one saves).  A block holds `block_bytes()` of sliced input: about an
L2 cache, so that the block stays in cache between the products that read it (`Xθ`, then `Xᵀr`).
Errors.  A math error in a block (a log of a negative, an overflow) is reported by evaluating
the program whole, so the message is the one a whole evaluation gives.
"""

from __future__ import annotations

import math

import mmap
import os
from typing import TYPE_CHECKING, Any, Callable

from ..errors import GradcliError
from .evaluate import Program, compile_graph
from ..language.expr import Expr, make_raw, topological
from ..language.rewrite import rebuilt_raw, rewrite
from ..language.operators.base import is_numpy
from .plan import Plan, int_axis, make_plan
from ..language.shapes import Ty

if TYPE_CHECKING:
    from .blockprogram import BlockProgram
    from .plan import Reduction

BlockGraph = tuple[list[tuple[str, Expr]], Callable[[int], list[Expr]]]  # boundary symbols, roots over b rows

BLOCK_BYTES: int | None = None  # sliced input per block (None: from the L2 cache's size, `block_bytes`)
# out-of-core rows read at once, then cut into blocks: the reads of the sequential read gradcli
# is measured against (bench/blocks.py), so the disk sees the same requests
READ_BYTES = 64 << 20
MIN_BYTES: int | None = 32 << 20  # in-memory inputs at least this big are blocked where it pays (None: never)
# In memory, blocks pay only on narrow rows: on a quiet machine (bench --part blocks) X of
# 1000000x50 gave 0.75-0.80x hand numpy in blocks against 1.00-1.22x whole, while 200000x100 and
# 20000x500 were 1.07-1.31x in blocks against 1.03-1.11x whole (BLAS's matrix-vector products
# on wide rows are fast enough that fusing the two passes loses more than it saves).
NARROW_ROW_BYTES = 64 * 8  # sliced bytes per row: 64 float64 columns, between the measured widths


def plan_for(program: Program, wrt: set[str]) -> Plan:
    """The program's plan, made once (kept on the program)."""
    plan = program.__dict__.get("_plan")
    if plan is None:
        plan = program.__dict__["_plan"] = make_plan(program.roots, wrt)
    return plan


def out_of_core(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.memmap) or getattr(value, "streamed", False)


def block_bytes() -> int:
    """Sliced input per block: `BLOCK_BYTES`, or else the size of one core's L2 cache (1 MB when
    the system does not say), so that a block stays in cache between the products that read it.
    Measured here (`python -m bench --part blocks`): 0.5–2 MB blocks were fastest; from about 3.5
    MB OpenBLAS runs each block's matrix-vector product on several threads, a cost per block."""
    if BLOCK_BYTES is not None:
        return BLOCK_BYTES
    try:
        size = os.sysconf("SC_LEVEL2_CACHE_SIZE")
    except (ValueError, OSError, AttributeError):
        size = 0
    return min(max(size, 256 << 10), 2 << 20) if size > 0 else 1 << 20


def pays_in_memory(plan: Plan) -> bool:
    """Whether blocks beat the whole evaluation on in-memory data (the module's docstring)."""
    return plan.passes == 1 and all(sum(d != 1 for d in r.node.ty.dims) <= 1 for r in plan.reductions)


def evaluate(program: Program, values: dict[str, Any], wrt: set[str], xp: Any = None,
             block_rows: int | None = None, progress: Callable[[int, int], None] | None = None) -> list[Any]:
    """The program's roots, in row blocks when that applies (see the module's docstring);
    `block_rows` forces blocking with that many rows (tests)."""
    from .blockprogram import NonFinite

    streamed = any(out_of_core(v) for v in values.values())
    chosen = block_rows is not None or streamed
    big = MIN_BYTES is not None and sum(getattr(v, "nbytes", 0) for v in values.values()) >= MIN_BYTES
    if xp is not None and not is_numpy(xp) or not (chosen or big) or not chosen and (
            plan_for(program, wrt).splits and not pays_in_memory(plan_for(program, wrt))):
        program.__dict__.pop("_block_plan", None)  # not asked: no note
        return program.run(values, xp)
    plan = plan_for(program, wrt)
    row_bytes = sum(8 * math.prod(getattr(values.get(n), "shape", (1, 1))[1:]) for n in plan.sliced)
    if not chosen and plan.splits and row_bytes > NARROW_ROW_BYTES:
        program.__dict__.pop("_block_plan", None)  # wide rows in memory: whole, no note
        return program.run(values, xp)
    program.__dict__["_block_plan"] = plan  # the note of this evaluation (api.Compiled.evaluation_note)
    if not plan.splits:
        return program.run(_whole(values), xp)
    rows = block_rows or max(16, block_bytes() // max(row_bytes, 1))
    chunk = max([getattr(values.get(n), "chunk_rows", 1) for n in plan.sliced], default=1)
    if block_rows is None and chunk > 1:  # whole chunks of a zarr array, each decoded once
        rows = max(1, rows // chunk) * chunk
    read = rows * max(1, READ_BYTES // max(rows * row_bytes, 1)) if streamed else plan.m
    idle: list[Runner] = program.__dict__.setdefault("_block_runners", [])  # compiled block programs kept for the next call
    try:
        runner = idle.pop()
    except IndexError:
        runner = Runner(plan, program.allow_nonfinite)
    try:
        return runner.run(values, rows, progress, read)
    except GradcliError as exc:
        if exc.kind == "data":  # a fault of the data (truncated, NaN): no second try
            raise
        return program.run(_whole(values), xp)
    except (NonFinite, ArithmeticError, ValueError):  # an operator failed in a block (numpy's
        return program.run(_whole(values), xp)  # own error): the whole evaluation says where
    finally:
        for reader in runner.readers.values():
            reader.close()
        runner.readers, runner.values = {}, {}
        for block in runner.block_programs.values():
            block.release()  # the kept runner holds no block of the caller's data
        if runner.allow_nonfinite == program.allow_nonfinite:
            idle.append(runner)


def _whole(values: dict[str, Any]) -> dict[str, Any]:
    """Out-of-core sources as arrays (a memory map is one already)."""
    import numpy as np

    from .data import _check_values

    return {n: (v.read_all() if hasattr(v, "read_all") else
                _check_values(n, v, v.filename or n, True, np) if isinstance(v, np.memmap) else v)
            for n, v in values.items()}


class Runner:
    """Runs a plan; what it compiles (block programs, the programs computed once) is kept for
    the next evaluation of the same program, whose runner it becomes (one evaluation at a time:
    a block program's buffers are its own)."""

    def __init__(self, plan: Plan, allow_nonfinite: bool):
        self.plan, self.allow_nonfinite = plan, allow_nonfinite
        self.reduced = {r.node for r in plan.reductions}
        self.boundary: dict[Expr, Expr] = {}  # node -> the symbol standing for its computed value
        self.values: dict[str, Any] = {}  # those symbols' values
        self.block_graphs: dict[int, BlockGraph] = {}  # pass -> its block program
        self.block_programs: dict[tuple[int, int], BlockProgram] = {}  # (pass, rows) -> that program compiled
        self.once: dict[tuple[Expr, ...], Program] = {}  # targets -> their program
        self.readers: dict[str, Any] = {}  # name -> sources.FileRows of a memory-mapped input

    def run(self, inputs: dict[str, Any], rows: int, progress: Callable[[int, int], None] | None = None,
            read: int | None = None) -> list[Any]:
        """Each pass: `read` rows of every sliced input at a time (all of them when in memory:
        slices are views), cut into blocks of `rows` that the pass's block program runs on."""
        import numpy as np

        plan = self.plan
        m = plan.m
        read = max(rows, read or m)
        roots = plan.roots
        results: dict[Expr, Any] = {}
        fixed = {n: v for n, v in inputs.items() if n not in plan.sliced}
        streamed = [n for n in plan.sliced if out_of_core(inputs[n])]
        with np.errstate(all="ignore"):
            for passno in range(1, plan.passes + 1):
                reds = [r for r in plan.reductions if r.passno == passno]
                row_roots = [r for r in roots if plan.row_roots.get(r) == passno]
                for r in row_roots:
                    results[r] = _empty(r.ty.dims)
                names = self._block_graph(passno, [r.part for r in reds] + row_roots)[0]
                vals = dict(fixed)
                vals.update(self._boundary_values(names, fixed))
                acc: list[Any] = [None] * len(reds)
                folds = list(enumerate(_folder(r.combine) for r in reds))
                for first in range(0, m, read):
                    last = min(m, first + read)
                    chunks = {n: self._block(n, inputs[n], first, last) for n in plan.sliced}
                    for start in range(first, last, rows):
                        stop = min(last, start + rows)
                        for n, c in chunks.items():
                            vals[n] = c[start - first:stop - first]
                        for n in streamed:
                            self._check_finite(n, inputs[n], vals[n], start, stop)
                        out = self._block_program(passno, stop - start)(vals)
                        for k, fold in folds:
                            acc[k] = fold(acc[k], out[k])
                        for root, v in zip(row_roots, out[len(reds):]):
                            index = [slice(None)] * root.ty.rank
                            index[int_axis(plan.rows[root])] = slice(start, stop)
                            results[root][tuple(index)] = v
                        if progress is not None:
                            progress((passno - 1) * m + stop, plan.passes * m)
                for red, a in zip(reds, acc):
                    self.values[self._symbol(red.node).params[0]] = _finish(red, a)
            once = [r for r in roots if r not in results]
            if once:
                program = self._once_program(once)
                for r, v in zip(once, program.run({**fixed, **self.values})):
                    results[r] = v
        out = [results[r] for r in roots]
        if not self.allow_nonfinite and not all(_finite(v) for v in out):
            raise GradcliError("math", "overflow")  # the whole evaluation says where
        return out

    def _block(self, name: str, source: Any, start: int, stop: int) -> Any:
        """Rows start:stop of an input as float64 (out-of-core rows are checked as they are
        computed on, block by block: `_check_finite`)."""
        import numpy as np

        from .sources import FileRows, check_mapped

        if not out_of_core(source):
            return source[start:stop]
        reader = self.readers.get(name)
        if reader is None and isinstance(source, np.memmap) and isinstance(source.base, mmap.mmap) \
                and source.flags.c_contiguous and hasattr(os, "preadv"):  # a whole file's map, not a view
            reader = self.readers[name] = FileRows(source)
        if reader is not None:
            raw = reader.rows(start, stop, ahead=min(stop - start, self.plan.m - stop))
        else:
            if isinstance(source, np.memmap):
                check_mapped(source, slice(start, stop))
            raw = source[start:stop]
        return np.ascontiguousarray(raw, dtype=np.float64)  # the reader's buffer as it is, if float64

    def _check_finite(self, name: str, source: Any, block: Any, start: int, stop: int) -> None:
        """Out-of-core rows: NaN or Inf is the data's fault (in memory, data.py checked it)."""
        if not self.allow_nonfinite and not _finite(block):
            from ..errors import data_error

            raise data_error(f"{name} ({getattr(source, 'filename', None) or getattr(source, 'origin', '')}) "
                             f"contains NaN or Inf (in rows {start}…{stop - 1}); pass --allow-nonfinite to use it")

    # ------------------------------------------------------------ programs
    def _symbol(self, node: Expr) -> Expr:
        if node not in self.boundary:
            name = f"\x00{len(self.boundary)}"
            self.boundary[node] = make_raw("sym", (), (name, node.ty))
        return self.boundary[node]

    def _boundary_values(self, names: list[tuple[str, Expr]], fixed: dict[str, Any]) -> dict[str, Any]:
        """Values with no sample axis a block program needs, computed once per pass."""
        missing = [(n, node) for n, node in names if n not in self.values]
        if missing:
            program = self._once_program([node for _, node in missing])
            for (n, _), v in zip(missing, program.run({**fixed, **self.values})):
                self.values[n] = v
        return {n: self.values[n] for n, _ in names}

    def _once_program(self, targets: list[Expr]) -> Program:
        """Nodes without a sample axis, the reductions they use standing as symbols."""
        key = tuple(targets)
        if key not in self.once:
            self.once[key] = self._compile_once(targets)
        return self.once[key]

    def _compile_once(self, targets: list[Expr]) -> Program:
        reduced = self.reduced
        program = compile_graph(rewrite(targets, lambda n, args: self._symbol(n) if n in reduced else None,
                                        rebuild=rebuilt_raw))
        program.allow_nonfinite = self.allow_nonfinite
        return program

    def _block_graph(self, passno: int, roots: list[Expr]) -> BlockGraph:
        """(boundary symbols the pass needs, a function of b giving its roots over b rows)."""
        if passno not in self.block_graphs:
            plan = self.plan
            needed: dict[str, Expr] = {}
            parts = {r.part for r in plan.reductions if r.passno == passno}
            for n in topological(roots):
                if plan.rows.get(n) is None and n not in parts and n.args and n.op != "sym":
                    needed[self._symbol(n).params[0]] = n

            def over(b: int) -> list[Expr]:
                def cut(n: Expr, args: tuple[Expr, ...]) -> Expr:
                    axis = plan.rows.get(n)
                    if axis is not None or n in parts:
                        return make_raw(n.op, args, _block_params(n, axis, b))
                    return n if not n.args or n.op == "sym" else self._symbol(n)
                return rewrite(roots, cut)
            self.block_graphs[passno] = (list(needed.items()), over)
        return self.block_graphs[passno]

    def _block_program(self, passno: int, b: int) -> BlockProgram:
        """The pass's block program for b rows, compiled once (blockprogram.py)."""
        block = self.block_programs.get((passno, b))
        if block is None:
            from .blockprogram import BlockProgram

            program = compile_graph(self.block_graphs[passno][1](b))
            block = self.block_programs[passno, b] = BlockProgram(program, self.allow_nonfinite)
        return block


def _block_params(n: Expr, axis: object, b: int) -> tuple[Any, ...]:
    """n's settings with the sample axis of a shape it carries cut to b rows."""
    if not isinstance(axis, int):  # no sample axis, or diag(v) over the samples
        return n.params
    if n.op == "sym":
        name, ty = n.params
        return (name, _cut(ty, 0, b))
    if n.op == "fill":
        return (_cut(n.params[0], axis, b),) + n.params[1:]
    if n.op == "expand":
        a, keep, ty = n.params
        return (a, keep, _cut(ty, axis, b))
    return n.params


def _cut(ty: Ty, axis: int, b: int) -> Ty:
    dims = list(ty.dims)
    dims[axis] = b
    return Ty(tuple(dims), ty.row)


def _folder(how: str) -> Callable[[Any, Any], Any]:
    """fold(acc, a block's value) -> acc combined with it: arrays in place, the first value
    copied (it lives in the block program's buffers, which the next block writes over)."""
    import operator

    import numpy as np

    ufunc = {"add": np.add, "max": np.maximum, "min": np.minimum, "logaddexp": np.logaddexp}[how]
    scalar = operator.add if how == "add" else ufunc

    def fold(acc: Any, value: Any) -> Any:
        if acc is None:
            return value.copy() if isinstance(value, np.ndarray) else value
        if isinstance(acc, np.ndarray) and acc.ndim:
            return ufunc(acc, value, out=acc)
        return scalar(acc, value)
    return fold


def _finish(r: Reduction, value: Any) -> Any:
    import numpy as np

    if r.finish == "mean":
        return value / r.count
    if r.finish == "sqrt":
        return np.sqrt(value)
    return value


def _empty(dims: tuple[Any, ...]) -> Any:
    import numpy as np

    return np.empty(dims)


def _finite(v: Any) -> bool:
    """Whether every entry is finite: a finite sum says so in one pass with no temporary (the
    entries are looked at one by one only when the sum is not: a NaN, or finite values whose
    sum overflows)."""
    import numpy as np

    return bool(np.isfinite(np.add.reduce(v, axis=None))) or bool(np.all(np.isfinite(v)))

