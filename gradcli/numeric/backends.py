"""Where the numbers are computed: numpy (the default, in this process) or dask (`--backend dask`).

The evaluator (`evaluate.Program.run`) takes any array API namespace; this module adds what a
lazy one needs.  `DaskBackend` is array-api-compat's dask namespace plus:

- `lazy`: the evaluator records its checks (a log of a negative value, an overflow) as lazy flags,
  and `compute` evaluates f, every derivative and every flag in one `dask.compute`, so work the
  results share is done once and no check computes part of the graph on its own;
- `whole`: the matrix functions dask has no kernel for (det, log det, inverse, adjugate) run as
  one numpy task on their whole (small, square) argument, with numpy's messages;
- the inputs chunked along their rows (`to_dask`): the first axis of the largest input is the
  sample axis, and every input with that many rows is split into chunks of `chunk_rows` rows
  (default: about 64 MiB of float64 per chunk); the others are one chunk each.

`--scheduler ADDRESS` runs the graph on a dask.distributed cluster (`connect`); without it, on
dask's local threaded scheduler.  dask, distributed and zarr are the optional extra `gradcli[dask]`.
"""

from __future__ import annotations

from typing import Any

from ..errors import GradcliError

INSTALL = "pip install 'gradcli[dask]'"
CHUNK_BYTES = 64 * 2**20  # the default chunk: about this many bytes of float64 rows
CONNECT_TIMEOUT = 5  # seconds: an unreachable scheduler is an error within 10 s


class TaskError(Exception):
    """A user-facing error raised inside a dask task: picklable (kind, message), so that it
    crosses from a worker process and becomes the same GradcliError numpy's run raises."""

    def __init__(self, kind: str, message: str):
        super().__init__(kind, message)
        self.kind, self.message = kind, message


def require_dask(option: str = "--backend dask") -> None:
    """A usage error (exit 2) naming the extra to install when dask is not importable."""
    try:
        import dask.array  # noqa: F401
    except ImportError:
        raise GradcliError("usage", f"{option} needs dask, distributed and zarr: {INSTALL}") from None


def check_backend(backend: str, scheduler: str | None, chunk_rows: int | None) -> None:
    """The command line's backend options, before anything is read."""
    if backend not in ("numpy", "dask"):
        raise GradcliError("usage", f"--backend {backend}: expected numpy or dask")
    if backend != "dask":
        for name, given in (("--scheduler", scheduler is not None), ("--chunk-rows", chunk_rows is not None)):
            if given:
                raise GradcliError("usage", f"{name} does nothing without --backend dask")
        return
    if chunk_rows is not None and chunk_rows < 1:
        raise GradcliError("usage", f"--chunk-rows {chunk_rows}: expected a positive number of rows")
    require_dask()
    if scheduler is not None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise GradcliError("usage", f"--scheduler needs dask.distributed: {INSTALL}") from None


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """A distributed Client, or a data error (exit 1) when no scheduler answers in time."""
    import logging

    from distributed import Client as _Client

    Client: Any = _Client  # dask's functions carry no annotations

    # our one-line messages, not their logs (asyncio's: the client's pending futures at Ctrl-C)
    for name in ("distributed", "distributed.client", "distributed.comm", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise GradcliError("data", f"--scheduler {address}: no dask scheduler answered within {timeout:g} s "
                                   "(is `dask scheduler` running there?)") from None
    except (ValueError, TypeError) as exc:  # not an address at all
        raise GradcliError("usage", f"--scheduler {address}: {exc} (expected tcp://HOST:PORT)") from None


def sample_rows(values: dict[str, Any]) -> int | None:
    """The number of rows of the sample axis: the first axis of the largest input (None when
    every input is a number)."""
    arrays = [v for v in values.values() if getattr(v, "ndim", 0) >= 1]
    if not arrays:
        return None
    return int(max(arrays, key=lambda a: a.size).shape[0])


def default_chunk_rows(values: dict[str, Any], rows: int) -> int:
    """Rows per chunk so that the widest row-sharing input's chunk is about CHUNK_BYTES."""
    width = max((int(v.size // max(rows, 1)) for v in values.values()
                 if getattr(v, "ndim", 0) >= 1 and v.shape[0] == rows), default=1)
    return max(1, CHUNK_BYTES // (8 * max(width, 1)))


def to_dask(values: dict[str, Any], chunk_rows: int | None = None) -> dict[str, Any]:
    """The inputs as dask arrays: chunked along the sample axis where they have it, whole
    otherwise (numbers stay numbers)."""
    import dask.array as _da

    da: Any = _da  # untyped

    rows = sample_rows(values)
    if rows is None:
        return dict(values)
    step = chunk_rows or default_chunk_rows(values, rows)
    out = {}
    for name, v in values.items():
        if getattr(v, "ndim", 0) == 0:
            out[name] = v
        elif v.shape[0] == rows:
            out[name] = da.from_array(v, chunks=(step,) + tuple(v.shape[1:]), name=False)
        else:
            out[name] = da.from_array(v, chunks=tuple(v.shape), name=False)
    return out


class DaskBackend:
    """array-api-compat's dask namespace, lazy: see the module docstring."""

    lazy = True
    WHOLE = frozenset({"inv", "det", "logdet", "adjT", "u1v1", "polar", "specnorm", "nucnorm"})

    def __init__(self, client: Any = None):
        import array_api_compat.dask.array as xp

        self._xp = xp
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)

    def whole(self, node: Any, op: Any, args: list[Any], allow_nonfinite: bool) -> Any:
        """node's value computed by numpy in one task on its whole arguments."""
        import dask as _dask
        import dask.array as _da

        from .evaluate import _short

        dask: Any = _dask  # untyped
        da: Any = _da
        from ..language.render import render

        dims = tuple(node.ty.dims)
        names = tuple(render(a, "ascii") for a in node.args)  # for a warning's text
        task = dask.delayed(_whole_task, pure=True)
        value = task(node.op, node.params, dims, op.fails, _short(node), names, allow_nonfinite, *args)
        return da.from_delayed(value, shape=dims, dtype=float)

    def compute(self, roots: list[Any], flags: list[Any]) -> tuple[list[Any], Any]:
        """Roots and check flags in one pass; the flags as Python booleans."""
        import warnings

        import dask as _dask
        import numpy as np

        dask: Any = _dask  # untyped

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # numpy's own warnings, raised in dask's threads (where np.errstate does not reach)
            warnings.filterwarnings("ignore", message=".*encountered in", category=RuntimeWarning)
            try:
                if self.client is not None:
                    roots, flags = dask.compute(roots, flags, scheduler=self.client)
                else:
                    roots, flags = dask.compute(roots, flags, scheduler="threads")
            except TaskError as exc:
                raise GradcliError(exc.kind, exc.message) from None
        return list(roots), _booleans(flags)


def _booleans(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_booleans(v) for v in value]
    return bool(value)


def _whole_task(op_name: str, params: tuple[Any, ...], dims: tuple[int, ...], fails: str, where: str, names: tuple[str, ...],
                allow_nonfinite: bool, *arrays: Any) -> Any:
    """One matrix function on numpy arrays, checked as the evaluator checks it (module level and
    free of formula objects, so that it pickles to a distributed worker)."""
    from types import SimpleNamespace

    import numpy as np

    from ..language.expr import OPS

    stub = SimpleNamespace(op=op_name, params=params, ty=SimpleNamespace(dims=dims), args=names)
    hint = " (--allow-nonfinite gives IEEE results)"
    with np.errstate(all="ignore"):
        try:
            impl = OPS[op_name].impl
            assert impl is not None  # (a WHOLE operator has a kernel)
            out = impl(np, stub, *arrays)  # type: ignore[arg-type]  # the stub has what kernels read
        except (ArithmeticError, ValueError) as exc:  # LinAlgError is a ValueError
            if not (allow_nonfinite and fails):
                raise TaskError("math", f"{fails or exc} in {where}") from None
            return np.full(dims, np.nan)
        out = np.asarray(out, dtype=float)
        if (fails and not allow_nonfinite and not np.all(np.isfinite(out))
                and all(np.all(np.isfinite(a)) for a in arrays)):
            raise TaskError("math", f"{fails} in {where}{hint}")
    return out
