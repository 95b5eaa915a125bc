"""Inputs read block by block, never whole: a folder of row shards and a zarr array.

(A single `.npy` is a read-only `numpy.memmap`: data.py makes it.)  Each source has `shape`,
`nbytes`, rows by slicing (`src[i:j]`, float64) and `read_all()` for a program that cannot be
cut into blocks.

Shards.  `-d X=folder/` is every `*.npy` in the folder, in name order, stacked along rows.  When
the names are PREFIX + number (X-000.npy, X-001.npy, …) the numbers must run from the first
without a gap: a missing shard is an error, not a silently shorter array.  Every shard must have
the first one's dtype and the same columns.
"""

from __future__ import annotations

import math

import os
import re
from typing import Any

from ..errors import GradcliError, data_error
from .npyfile import open_regular, read_header


class Shards:
    streamed = True

    def __init__(self, folder: str, name: str):
        files = sorted(f for f in os.listdir(folder) if f.endswith(".npy"))
        if not files:
            raise data_error(f"{folder}: no .npy shards in the folder")
        _check_numbering(folder, files)
        self.name, self.origin, self.parts = name, folder, []
        first = None
        for f in files:
            path = os.path.join(folder, f)
            with open_regular(path) as fh:
                shape, fortran, dtype = read_header(fh, path, os.fstat(fh.fileno()).st_size)
                offset = fh.tell()
            if first is None:
                first = (shape[1:], dtype, len(shape))
            elif (shape[1:], dtype, len(shape)) != first:
                raise data_error(f"{path}: shape {shape} and {dtype} do not match the first shard's "
                                 f"(rows × {first[0] or '1'}, {first[1]})")
            if fortran and len(shape) == 2:
                raise data_error(f"{path}: Fortran-order shards are not supported (save in C order)")
            if len(shape) == 0:
                raise data_error(f"{path}: a shard must have rows (a vector or a matrix)")
            self.parts.append((path, offset, shape, dtype))
        assert first is not None  # files is not empty
        self.rows = sum(p[2][0] for p in self.parts)
        self.shape = (self.rows,) + first[0]
        self.nbytes = 8 * self.rows * math.prod(first[0])
        self.ndim = len(self.shape)

    def __getitem__(self, index: slice) -> Any:
        import numpy as np

        start, stop, _ = index.indices(self.rows)
        pieces, base = [], 0
        for path, offset, shape, dtype in self.parts:
            lo, hi = max(start, base), min(stop, base + shape[0])
            if lo < hi:
                mm = _map(path, offset, shape, dtype)
                pieces.append(np.asarray(mm[lo - base:hi - base], dtype=np.float64))
            base += shape[0]
            if base >= stop:
                break
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def read_all(self) -> Any:
        return self[0:self.rows]


def _map(path: str, offset: int, shape: tuple[int, ...], dtype: Any) -> Any:
    """A read-only map of a shard, after checking the file still holds its data (a file cut
    short after it was opened would otherwise kill the process with SIGBUS)."""
    import numpy as np

    need = offset + math.prod(shape) * dtype.itemsize
    size = os.stat(path).st_size
    if size < need:
        raise data_error(f"{path}: truncated: {size - offset} of {need - offset} bytes of data")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


class FileRows:
    """Rows of a memory-mapped C-order .npy read with pread instead of through the map: large
    sequential reads, and a file cut short seen as a short read (touching a map past its end is
    SIGBUS).  The next block is read by a helper thread into a second buffer while the current
    one is computed on (pread and numpy's kernels both release the GIL), so the disk never waits
    for the arithmetic: with the kernel's read-ahead alone (POSIX_FADV_WILLNEED one block ahead)
    a 32 GB least-squares gradient took 1.42× one plain sequential read of the file.

    The caller holds one block at a time: asking for the next block hands back the buffer of
    the one before it to the reader (as with the single reused buffer this replaces)."""

    def __init__(self, arr: Any):
        self.path, self.offset, self.dtype = arr.filename, arr.offset, arr.dtype
        self.shape = arr.shape
        self.row_bytes = arr.itemsize * math.prod(arr.shape[1:])
        self.fd = os.open(self.path, os.O_RDONLY)
        self.buffers: list[bytearray] = [bytearray(0), bytearray(0)]
        self.pending: tuple[int, int, int, Any] | None = None  # (start, stop, buffer index, future) of the read ahead
        self.pool: Any = None

    def close(self) -> None:
        try:
            self._settle()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
            os.close(self.fd)

    def _settle(self) -> None:
        """Wait for the read ahead (its error, if any, is the caller's only if it asks for it)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            try:
                pending[3].result()
            except Exception:
                pass

    def _read(self, which: int, start: int, stop: int) -> None:
        begin, size = self.offset + start * self.row_bytes, (stop - start) * self.row_bytes
        if len(self.buffers[which]) < size:
            self.buffers[which] = bytearray(size)
        view = memoryview(self.buffers[which])[:size]
        done = 0
        while done < size:
            got = os.preadv(self.fd, [view[done:]], begin + done)
            if got <= 0:
                raise data_error(f"{self.path}: truncated: the file ends before row "
                                 f"{start + done // max(self.row_bytes, 1)} of {self.shape[0]}")
            done += got

    def rows(self, start: int, stop: int, ahead: int) -> Any:
        import numpy as np

        pending = self.pending
        if pending is not None and pending[:2] == (start, stop):
            self.pending = None
            which = pending[2]
            pending[3].result()  # the read's own error (a truncated file) is raised here
        else:
            self._settle()
            which = 0
            self._read(which, start, stop)
        if ahead > 0:
            if self.pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradcli-read")
            other = 1 - which
            self.pending = (stop, stop + ahead, other, self.pool.submit(self._read, other, stop, stop + ahead))
        size = (stop - start) * self.row_bytes
        block = np.frombuffer(self.buffers[which], dtype=self.dtype, count=size // self.dtype.itemsize)
        return block.reshape((stop - start,) + tuple(self.shape[1:]))


def check_mapped(arr: Any, rows: slice) -> None:
    """The same check for rows of a memory-mapped .npy before they are touched."""
    path = getattr(arr, "filename", None)
    if path is None:
        return
    row_bytes = arr.itemsize * math.prod(arr.shape[1:])
    need = arr.offset + rows.stop * row_bytes
    size = os.stat(path).st_size
    if size < need:
        raise data_error(f"{path}: truncated: the file ends before row {(size - arr.offset) // max(row_bytes, 1)} "
                         f"of {arr.shape[0]}")


def _check_numbering(folder: str, files: list[str]) -> None:
    matches = [re.fullmatch(r"(.*?)(\d+)\.npy", f) for f in files]
    numbered = [m for m in matches if m is not None]
    if len(numbered) != len(files) or len({m.group(1) for m in numbered}) != 1:
        return  # plain name order
    numbers = sorted(int(m.group(2)) for m in numbered)
    width = len(numbered[0].group(2))
    prefix = numbered[0].group(1)
    for expected, got in zip(range(numbers[0], numbers[0] + len(numbers)), numbers):
        if expected != got:
            raise data_error(f"{folder}: shard {prefix}{expected:0{width}d}.npy is missing "
                             f"(the shards run {numbers[0]}…{numbers[-1]})")


class Zarr:
    """A zarr array, read a block of rows at a time."""

    streamed = True

    def __init__(self, path: str, name: str):
        self.array: Any
        try:
            import zarr
        except ImportError:
            raise GradcliError("usage", f"-d {name}={path}: reading zarr needs the optional extra: "
                                        "pip install 'gradcli[dask]'") from None
        try:
            self.array = zarr.open(path, mode="r")
        except Exception as exc:  # zarr's own errors: a missing or damaged store
            raise data_error(f"{path}: not a readable zarr array ({type(exc).__name__})") from None
        if not hasattr(self.array, "shape") or self.array.dtype.kind not in "biuf" or not 1 <= len(self.array.shape) <= 2:
            raise data_error(f"{path}: not a numeric zarr array of rank 1 or 2")
        self.name, self.origin = name, path
        self.chunk_rows = int(getattr(self.array, "chunks", (1,))[0] or 1)  # blocks are multiples
        self.shape = tuple(self.array.shape)
        self.nbytes = 8 * math.prod(self.shape)
        self.ndim = len(self.shape)

    def __getitem__(self, index: slice) -> Any:
        import numpy as np

        try:
            return np.asarray(self.array[index], dtype=np.float64)
        except Exception as exc:  # a damaged or missing chunk: zarr's or the codec's own error
            raise data_error(f"{self.origin}: cannot read rows {index.start}…{index.stop} "
                             f"({type(exc).__name__})") from None

    def read_all(self) -> Any:
        return self[0:self.shape[0]]

