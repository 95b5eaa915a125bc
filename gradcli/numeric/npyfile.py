"""Reading a .npy file's header safely: a regular file only (never a FIFO or device), a
NumPy header whose dtype is numeric (no object arrays, so no pickle), rank ≤ 2, and data that
fits in the file.  `data.py` (the -d option) and `sources.py` (row shards) both read headers
so; a module of its own so that neither imports the other.
"""

from __future__ import annotations

import os
from io import BufferedReader
from typing import Any

from ..errors import GradcliError, data_error

MAX_ENTRIES = 2 ** 62 // 8  # no array dimension product beyond what numpy can index


class UsageError(GradcliError):
    def __init__(self, message: str):
        super().__init__("usage", message)


def os_reason(exc: OSError) -> str:
    return os.strerror(exc.errno).lower() if exc.errno else type(exc).__name__


def describe_dtype(dtype: Any) -> str:
    if dtype.names is not None or dtype.subdtype is not None:
        return "a structured dtype"
    return f"dtype {dtype.name}"


def read_header(fh: Any, where: str, available: int) -> tuple[tuple[int, ...], bool, Any]:
    """Read and check a .npy header (the file positioned at it); returns (shape, fortran,
    dtype); the file is left at the data.  `available`: bytes from the header's start to the end
    of the file or member."""
    import numpy as np

    fmt = np.lib.format
    start = fh.tell()
    magic = fh.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
        raise data_error(f"{where}: not a .npy array (no NumPy header)")
    try:
        version = (magic[6], magic[7])
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise ValueError
    except (ValueError, SyntaxError, TypeError, EOFError, UnicodeDecodeError, OverflowError):
        raise data_error(f"{where}: damaged .npy header") from None
    if dtype.hasobject:
        raise data_error(f"{where}: object arrays are refused (they need pickle)")
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in "biuf":
        raise data_error(f"{where}: {describe_dtype(dtype)} is not numeric (need float, int or bool)")
    if len(shape) > 2:
        raise data_error(f"{where}: {len(shape)}-d arrays are not supported (scalars, vectors and "
                         "matrices only)")
    nonzero = 1
    for d in shape:
        nonzero *= max(d, 1)
    if nonzero > MAX_ENTRIES:
        raise data_error(f"{where}: header shape {shape} is larger than any array can be")
    count = 0 if 0 in shape else nonzero
    need = count * dtype.itemsize
    used = fh.tell() - start
    if used + need > available:
        raise data_error(f"{where}: truncated: header promises {need} bytes of data, the file has "
                         f"{max(available - used, 0)}")
    return shape, fortran, dtype


def open_regular(path: str) -> BufferedReader:
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder, not a .npy or .npz file")
    import stat

    try:  # a FIFO would block open() until a writer comes, and a pipe cannot be read twice
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({os_reason(exc)})") from None
    if not regular:
        raise UsageError(f"{path} is not a regular file: data must be a seekable .npy or .npz "
                         "file (a pipe, FIFO or device is refused; save it to a file first)")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({os_reason(exc)})") from None
