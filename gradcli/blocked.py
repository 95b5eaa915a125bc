"""Run a `plan.Plan` over row blocks: each pass reads every sliced input once, block by block,
evaluates the per-block program on the block and folds its partial results into the
reductions; what has no sample axis is computed once, before the pass that needs it or after
the last one.

When.  `evaluate` blocks when the plan splits and either an input is out of core (a memory-mapped
`.npy`, a folder of shards, a zarr array: those are only ever read block by block) or the sliced
inputs hold at least `MIN_BYTES`.  `MIN_BYTES` is None by default: in memory, the program runs
whole, because blocked evaluation measured 0.8–1.5× the whole one here (`python -m bench --part
blocks`): each block runs through the evaluator's loop, and that cost eats what the cache saves.
It stays for out-of-core data, where it is what bounds memory, and for callers that set it.  A block holds about `BLOCK_BYTES` of sliced input: a few MB, so that the block stays
in the L2/L3 cache between the products that read it (`Xθ`, then `Xᵀr`).
Errors.  A math error in a block (a log of a negative, an overflow) is reported by evaluating
the program whole, so the message is the one a whole evaluation gives.
"""

from __future__ import annotations

import mmap
import os
from typing import Any, Callable

from .errors import GradcliError
from .evaluate import Program, compile_graph
from .expr import Expr, make_raw, topological
from .operators.base import is_numpy
from .plan import DIAG, Plan, make_plan
from .shapes import Ty

BLOCK_BYTES = 4 << 20  # sliced input per block
MIN_BYTES: int | None = None  # in-memory inputs at least this big are blocked (None: never)


def plan_for(program: Program, wrt: set[str]) -> Plan:
    """The program's plan, made once (kept on the program)."""
    plan = program.__dict__.get("_block_plan")
    if plan is None:
        plan = make_plan(program.roots, wrt)
        program.__dict__["_block_plan"] = plan
    return plan


def out_of_core(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.memmap) or getattr(value, "streamed", False)


def evaluate(program: Program, values: dict, wrt: set[str], xp=None,
             block_rows: int | None = None, progress: Callable[[int, int], None] | None = None) -> list:
    """The program's roots, in row blocks when that applies (see the module's docstring);
    `block_rows` forces blocking with that many rows (tests)."""
    streamed = any(out_of_core(v) for v in values.values())
    if xp is not None and not is_numpy(xp) or (block_rows is None and not streamed and (
            MIN_BYTES is None or sum(getattr(v, "nbytes", 0) for v in values.values()) < MIN_BYTES)):
        return program.run(values, xp)
    plan = plan_for(program, wrt)
    if not plan.splits:
        return program.run(_whole(values), xp)
    row_bytes = sum(8 * _entries(getattr(values.get(n), "shape", (1, 1))[1:]) for n in plan.sliced)
    rows = block_rows or max(16, BLOCK_BYTES // max(row_bytes, 1))
    chunk = max([getattr(values.get(n), "chunk_rows", 1) for n in plan.sliced], default=1)
    if block_rows is None and chunk > 1:  # whole chunks of a zarr array, each decoded once
        rows = max(1, rows // chunk) * chunk
    runner = Runner(plan, program.allow_nonfinite)
    try:
        return runner.run(values, rows, progress)
    except GradcliError as exc:
        if exc.kind == "data":  # a fault of the data (truncated, NaN): no second try
            raise
        return program.run(_whole(values), xp)
    finally:
        for reader in runner.readers.values():
            reader.close()


def _whole(values: dict) -> dict:
    """Out-of-core sources as arrays (a memory map is one already)."""
    import numpy as np

    from .data import _check_values

    return {n: (v.read_all() if hasattr(v, "read_all") else
                _check_values(n, v, v.filename, True, np) if isinstance(v, np.memmap) else v)
            for n, v in values.items()}


class Runner:
    def __init__(self, plan: Plan, allow_nonfinite: bool):
        self.plan, self.allow_nonfinite = plan, allow_nonfinite
        self.reduced = {id(r.node) for r in plan.reductions}
        self.boundary: dict[int, Expr] = {}  # id -> the symbol standing for a computed value
        self.values: dict[str, Any] = {}  # those symbols' values
        self.block_programs: dict[tuple, tuple] = {}
        self.readers: dict[str, Any] = {}  # name -> sources.FileRows of a memory-mapped input

    def run(self, inputs: dict, rows: int, progress=None) -> list:
        plan = self.plan
        m = plan.m
        roots = plan.roots
        results: dict[int, Any] = {}
        fixed = {n: v for n, v in inputs.items() if n not in plan.sliced}
        for passno in range(1, plan.passes + 1):
            reds = [r for r in plan.reductions if r.passno == passno]
            row_roots = [r for r in roots if plan.row_roots.get(id(r)) == passno]
            acc: dict[int, Any] = {}
            for r in row_roots:
                results[id(r)] = _empty(r.ty.dims)
            for start in range(0, m, rows):
                stop = min(m, start + rows)
                names, program = self._block_program(passno, [r.part for r in reds] + row_roots, stop - start)
                vals = dict(fixed)
                vals.update(self._boundary_values(names, fixed))
                for n in plan.sliced:
                    vals[n] = self._block(n, inputs[n], start, stop)
                out = program.run(vals)
                for r, v in zip(reds, out):
                    acc[id(r.node)] = v if id(r.node) not in acc else _combine(r.combine, acc[id(r.node)], v)
                for r, v in zip(row_roots, out[len(reds):]):
                    index = [slice(None)] * r.ty.rank
                    index[plan.rows[id(r)]] = slice(start, stop)
                    results[id(r)][tuple(index)] = v
                if progress is not None:
                    progress((passno - 1) * m + stop, plan.passes * m)
            for r in reds:
                self.values[self._symbol(r.node).params[0]] = _finish(r, acc[id(r.node)])
        once = [r for r in roots if id(r) not in results]
        if once:
            program = self._once_program(once)
            for r, v in zip(once, program.run({**fixed, **self.values})):
                results[id(r)] = v
        out = [results[id(r)] for r in roots]
        if not self.allow_nonfinite and not all(_finite(v) for v in out):
            raise GradcliError("math", "overflow")  # the whole evaluation says where
        return out

    def _block(self, name: str, source, start: int, stop: int):
        """Rows start:stop of an input as float64; out-of-core rows checked as they are read."""
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
        block = np.ascontiguousarray(raw, dtype=np.float64)  # the reader's buffer as it is, if float64
        if not self.allow_nonfinite and not _finite(block):
            from .errors import data_error

            raise data_error(f"{name} ({getattr(source, 'filename', None) or getattr(source, 'origin', '')}) "
                             f"contains NaN or Inf (in rows {start}…{stop - 1}); pass --allow-nonfinite to use it")
        return block

    # ------------------------------------------------------------ programs
    def _symbol(self, node: Expr) -> Expr:
        if id(node) not in self.boundary:
            name = f"\x00{len(self.boundary)}"
            self.boundary[id(node)] = make_raw("sym", (), (name, node.ty))
        return self.boundary[id(node)]

    def _boundary_values(self, names: list, fixed: dict) -> dict:
        """Values with no sample axis a block program needs, computed once per pass."""
        missing = [(n, node) for n, node in names if n not in self.values]
        if missing:
            program = self._once_program([node for _, node in missing])
            for (n, _), v in zip(missing, program.run({**fixed, **self.values})):
                self.values[n] = v
        return {n: self.values[n] for n, _ in names}

    def _once_program(self, targets: list[Expr]) -> Program:
        """Nodes without a sample axis, the reductions they use standing as symbols."""
        done: dict[int, Expr] = {}
        for n in topological(targets):
            if id(n) in self.reduced:
                done[id(n)] = self._symbol(n)
            elif n.args:
                args = tuple(done[id(a)] for a in n.args)
                done[id(n)] = n if args == n.args else make_raw(n.op, args, n.params)
            else:
                done[id(n)] = n
        program = compile_graph([done[id(t)] for t in targets])
        program.allow_nonfinite = self.allow_nonfinite
        return program

    def _block_program(self, passno: int, roots: list[Expr], b: int):
        key = (passno, b)
        if key not in self.block_programs:
            plan = self.plan
            done: dict[int, Expr] = {}
            needed: dict[str, Expr] = {}
            parts = {id(r.part) for r in plan.reductions if r.passno == passno}
            for n in topological(roots):
                axis = plan.rows.get(id(n))
                if axis is not None or id(n) in parts:
                    args = tuple(done[id(a)] for a in n.args)
                    done[id(n)] = make_raw(n.op, args, _block_params(n, axis, b))
                elif not n.args or n.op == "sym":
                    done[id(n)] = n
                else:
                    s = self._symbol(n)
                    needed[s.params[0]] = n
                    done[id(n)] = s
            program = compile_graph([done[id(r)] for r in roots])
            program.allow_nonfinite = self.allow_nonfinite
            self.block_programs[key] = (list(needed.items()), program)
        return self.block_programs[key]


def _block_params(n: Expr, axis, b: int) -> tuple:
    """n's settings with the sample axis of a shape it carries cut to b rows."""
    if axis is None or axis == DIAG:
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


def _combine(how: str, a, b):
    import numpy as np

    if how == "add":
        return a + b
    return {"max": np.maximum, "min": np.minimum, "logaddexp": np.logaddexp}[how](a, b)


def _finish(r, value):
    import numpy as np

    if r.finish == "mean":
        return value / r.count
    if r.finish == "sqrt":
        return np.sqrt(value)
    return value


def _as_array(block):
    import numpy as np

    return np.asarray(block)


def _empty(dims: tuple):
    import numpy as np

    return np.empty(dims)


def _finite(v) -> bool:
    import numpy as np

    return bool(np.all(np.isfinite(v)))


def _entries(dims: tuple) -> int:
    n = 1
    for d in dims:
        n *= d
    return n
