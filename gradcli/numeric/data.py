"""Loading values safely: `.npy`/`.npz` without pickle, numbers, and seeded random arrays.

Loading is in two steps so that nothing is allocated before it is known to fit:
1. `open_sources` reads headers only (of an `.npz`, only the members the formula names): each
   header must be a numeric dtype of rank ≤ 2 whose data fits in the file;
2. after the formula is shape-checked, `ensure_memory` compares what the run will allocate
   (inputs, random arrays, f and every derivative) with the memory available, and only then
   `load_values` reads the arrays, in 16 MiB chunks into a preallocated float64 array (so
   Ctrl-C lands at once, and an int or float32 file is converted chunk by chunk).

Error messages name files, members and shapes but never echo a file's bytes; member names (file
content) are shown with control characters escaped.
"""

from __future__ import annotations

import os
import struct
import warnings
import zipfile
from typing import TYPE_CHECKING, Any, cast

from ..errors import data_error, printable
# the safe reading of a .npy file's header, shared with sources.py (row shards): old names kept here
from .npyfile import UsageError, open_regular as _open, os_reason as _reason, read_header as _npy_header

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Mapping
    from io import BufferedIOBase
    from types import ModuleType
    from typing import TypeAlias

    import numpy as np
    from numpy.typing import NDArray

    from ..language.expr import Array, Expr
    from ..language.shapes import Dim
    from .sources import Shards, Zarr

    Floats: TypeAlias = "NDArray[np.float64]"  # values read and checked: float64, in memory
    # what a source loads as: its values, or (read block by block, checked as they are read) a
    # read-only memory map in the file's dtype or a streamed source
    Loaded: TypeAlias = "NDArray[Any] | Shards | Zarr"

CHUNK = 16 * 1024 ** 2  # bytes per read
MAP_BYTES = 32 * 1024 ** 2  # a .npy vector or matrix this big is memory-mapped, not read (blocked.py)


# ----------------------------------------------------------------------------- headers
class Source:
    """An array known by its header; `load()` reads it.  `value` is set for -d NAME=NUMBER."""

    def __init__(self, name: str, origin: str, shape: tuple[int, ...], dtype: np.dtype[Any] | None = None,
                 fortran: bool = False, read: Callable[[], Floats] | None = None, value: Floats | None = None,
                 mapped: Callable[[], Loaded] | None = None):
        self.name, self.origin, self.shape = name, origin, tuple(shape)
        self.dtype, self.fortran, self._read, self.value = dtype, fortran, read, value
        self._mapped = mapped  # () -> a read-only memory map or a streamed source (sources.py)

    @property
    def streams(self) -> bool:
        """Whether load() gives a memory map or a streamed source (read block by block)."""
        return self._mapped is not None and (self._read is None or 8 * self.entries >= MAP_BYTES)

    @property
    def entries(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def load(self, allow_nonfinite: bool = False) -> Loaded:
        import numpy as np

        if self._mapped is not None and self.streams:  # values are checked block by block as they are read (blocked.py)
            return self._mapped()
        if self.value is not None:
            arr = self.value
        else:
            assert self._read is not None, "a source has a value, a reader or a stream"
            try:
                flat = self._read()
            except MemoryError:
                raise data_error(f"{self.name} ({self.origin}): not enough memory for its "
                                 f"{human_bytes(8 * self.entries)}") from None
            except OSError as exc:
                raise data_error(f"{self.origin}: cannot read ({_reason(exc)})") from None
            arr = flat.reshape(self.shape[::-1]).T if self.fortran else flat.reshape(self.shape)
        try:
            return _check_values(self.name, arr, self.origin, allow_nonfinite, np)
        except MemoryError:
            raise data_error(f"{self.name} ({self.origin}): not enough memory to convert it to "
                             f"float64 ({human_bytes(8 * self.entries)})") from None


def _check_values(name: str, arr: NDArray[Any], origin: str, allow_nonfinite: bool, np: ModuleType) -> Floats:
    # float64 in native byte order and C order; a copy only when the file's array is not already
    out: Floats = np.ascontiguousarray(arr, dtype=np.float64) if arr.ndim else np.asarray(arr, dtype=np.float64)
    with np.errstate(all="ignore"):
        finite = np.isfinite(out.sum()) or np.all(np.isfinite(out))  # the sum is a fast first look
    if not finite:
        if not allow_nonfinite:
            raise data_error(f"{name} ({origin}) contains NaN or Inf; pass --allow-nonfinite to use it")
        warnings.warn(f"{name} ({origin}) contains NaN or Inf", RuntimeWarning, stacklevel=2)
    return out


def _read_into(fh: BufferedIOBase, shape: tuple[int, ...], dtype: np.dtype[Any], where: str) -> Floats:
    """The data of an array as a flat float64 array, read in chunks straight into it: a file
    of float64 is read into place; any other dtype chunk by chunk through a small buffer and
    converted, so a float32 or int file never needs its own size in memory on top."""
    import numpy as np

    count = 1
    for d in shape:
        count *= d
    out = np.empty(count, dtype=np.float64)
    if dtype == out.dtype:
        _fill(fh, out.view(np.uint8).data, 0, count * 8, where)
        return out
    per = max(1, CHUNK // dtype.itemsize)
    buf = np.empty(min(per, count), dtype=dtype)
    for start in range(0, count, per):
        n = min(per, count - start)
        _fill(fh, buf[:n].view(np.uint8).data, start * dtype.itemsize, count * dtype.itemsize, where)
        out[start:start + n] = buf[:n]
    return out


def _fill(fh: BufferedIOBase, raw: memoryview, done: int, total: int, where: str) -> None:
    """Fill the buffer `raw` from fh, CHUNK bytes a read (Ctrl-C is honoured between reads)."""
    pos = 0
    while pos < len(raw):
        got = fh.readinto(raw[pos:pos + CHUNK])
        if not got:
            raise data_error(f"{where}: truncated: {done + pos} of {total} bytes of data")
        pos += got


def open_npy(path: str, name: str) -> Source:
    with _open(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        shape, fortran, dtype = _npy_header(fh, path, size)
        offset = fh.tell()

    def read() -> Floats:
        with _open(path) as fh:
            fh.seek(offset)
            return _read_into(fh, shape, dtype, path)

    return Source(name, path, shape, dtype, fortran, read, mapped=_mapper(path, offset, shape, dtype, fortran, read))


def _mapper(path: str, offset: int, shape: tuple[int, ...], dtype: np.dtype[Any], fortran: bool,
            read: Callable[[], Floats]) -> Callable[[], Loaded]:
    """How a stored array (a .npy, or an uncompressed .npz member at its offset) is opened as a
    read-only memory map; a 0-d array is simply read."""

    def mapped() -> Loaded:
        import numpy as np

        if not shape:
            return read()
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                            order="F" if fortran else "C")

    return mapped


def open_stream(path: str, name: str) -> Source:
    """-d NAME=folder/ (row shards) or -d NAME=data.zarr: a source read block by block."""
    from .sources import Shards, Zarr

    src = Zarr(path, name) if path.rstrip("/").endswith(".zarr") else Shards(path, name)
    return Source(name, path, src.shape, mapped=lambda: src)


# ----------------------------------------------------------------------------- .npz
def npz_members(path: str) -> dict[str, zipfile.ZipInfo]:
    """{key: ZipInfo} of an .npz, after checking its directory: no two entries with one key
    (`x` and `x.npy` included) and no two entries sharing bytes (a zip bomb's trick; numpy's
    zipfile refuses those too)."""
    with _open(path) as raw:
        size = os.fstat(raw.fileno()).st_size
        try:
            with zipfile.ZipFile(raw) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
            raise data_error(f"{path}: not a valid .npz (zip) file") from None
        members: dict[str, zipfile.ZipInfo] = {}
        spans: list[tuple[int, int, str]] = []
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key in members:
                raise data_error(f"{path}: the member '{printable(key)}' is there twice")
            members[key] = info
            raw.seek(info.header_offset)
            local = raw.read(30)
            if len(local) != 30 or local[:4] != b"PK\x03\x04":
                raise data_error(f"{path}: damaged zip entry '{printable(info.filename)}'")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            end = info.header_offset + 30 + name_len + extra_len + info.compress_size
            if end > size:
                raise data_error(f"{path}: the member '{printable(key)}' runs past the end of the file")
            spans.append((info.header_offset, end, key))
        spans.sort()
        for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
            if start < end:
                raise data_error(f"{path}: the members '{printable(a)}' and '{printable(b)}' overlap "
                                 "(refused, as numpy does)")
    return members


def _npz_source(path: str, key: str, info: zipfile.ZipInfo, name: str) -> Source:
    """A member's header now, its data on load().  A stored (uncompressed) member, which is
    what np.savez writes, is read straight from the file into the array (no copy through
    zipfile's buffers; its CRC is not recomputed, a .npy has none either).  Compressed members
    (np.savez_compressed) are read through zipfile, which checks theirs."""
    where = f"{path}:{printable(info.filename)}"
    stored = info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1
    if stored:
        with _open(path) as raw:
            raw.seek(info.header_offset + 26)
            name_len, extra_len = struct.unpack("<HH", raw.read(4))
            start = info.header_offset + 30 + name_len + extra_len
            raw.seek(start)
            shape, fortran, dtype = _npy_header(raw, where, info.file_size)
            offset = raw.tell()

        def read() -> Floats:
            with _open(path) as raw:
                raw.seek(offset)
                return _read_into(raw, shape, dtype, where)
    else:
        try:
            with _open(path) as raw, zipfile.ZipFile(raw) as zf, zf.open(info) as fh:
                shape, fortran, dtype = _npy_header(fh, where, info.file_size)
        except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError, RuntimeError):
            raise data_error(f"{where}: cannot read this zip entry") from None

        def read() -> Floats:
            try:  # (zipfile opens a member for reading as a ZipExtFile, a BufferedIOBase)
                with _open(path) as raw, zipfile.ZipFile(raw) as zf, \
                        cast("zipfile.ZipExtFile", zf.open(info)) as fh:
                    _npy_header(fh, where, info.file_size)
                    return _read_into(fh, shape, dtype, where)
            except (zipfile.BadZipFile, ValueError, EOFError, RuntimeError):
                raise data_error(f"{where}: damaged zip entry (bad CRC or data)") from None

    # only a stored member lies in the file as it is in memory: a compressed one is read whole
    mapped = _mapper(path, offset, shape, dtype, fortran, read) if stored else None
    return Source(name, path, shape, dtype, fortran, read, mapped=mapped)


def open_npz(path: str, wanted: Container[str] | None = None) -> dict[str, Source]:
    """{key: Source} for the members named in `wanted` (all of them when None)."""
    members = npz_members(path)
    return {key: _npz_source(path, key, info, key) for key, info in members.items()
            if wanted is None or key in wanted}


# ----------------------------------------------------------------------------- -d options
def open_sources(specs: list[str], wanted: Container[str] | None = None) -> dict[str, Source]:
    """Headers of every -d option (a later option overrides an earlier one for the same name):
    -d NAME=FILE.npy | -d FILE.npz | -d NAME=FILE.npz | -d NAME=NUMBER → {name: Source}.
    Of an .npz bound as a whole only the members in `wanted` (the formula's symbols) are read."""
    out: dict[str, Source] = {}
    for spec in specs:
        try:
            out.update(_open_spec(spec, wanted))
        except OSError as exc:  # an I/O error while reading a header or a zip directory
            raise data_error(f"-d {spec}: cannot read ({_reason(exc)})") from None
    return out


def _open_spec(spec: str, wanted: Container[str] | None) -> dict[str, Source]:
    import numpy as np

    if "=" not in spec:
        if spec.endswith(".npz"):
            return open_npz(spec, wanted)
        raise UsageError(f"-d {spec}: expected NAME=FILE.npy, NAME=NUMBER or FILE.npz")
    name, _, value = spec.partition("=")
    name = name.strip()
    from ..language.parse import is_name

    if not is_name(name):
        raise UsageError(f"-d {printable(spec)}: '{printable(name)}' is not a symbol name")
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return {name: Source(name, "option", (), value=np.array(number))}
    if value.endswith(".npz"):
        members = npz_members(value)
        if name not in members:
            if len(members) != 1:
                names = sorted(members)
                shown = ", ".join(f"'{printable(k)}'" for k in names[:20]) + (" …" if len(names) > 20 else "")
                raise data_error(f"{value} has no array named '{name}' (it has {shown or 'none'})")
            key = next(iter(members))
        else:
            key = name
        return {name: _npz_source(value, key, members[key], name)}
    if value.rstrip("/").endswith(".zarr") or os.path.isdir(value):
        return {name: open_stream(value, name)}
    return {name: open_npy(value, name)}


def load_values(sources: Mapping[str, Source], allow_nonfinite: bool = False) -> dict[str, Loaded]:
    """{name: float64 array} of the given sources (headers already checked)."""
    return {name: src.load(allow_nonfinite) for name, src in sources.items()}


# The whole-file loaders of the Python API (every member of an .npz).
def load_npy(path: str, name: str, allow_nonfinite: bool = True) -> Loaded:
    return open_npy(path, name).load(allow_nonfinite)


def load_npz(path: str, allow_nonfinite: bool = True) -> dict[str, Loaded]:
    return load_values(open_npz(path), allow_nonfinite)


def parse_data_option(spec: str, allow_nonfinite: bool = True) -> dict[str, Loaded]:
    return load_values(_open_spec(spec, None), allow_nonfinite)


# ----------------------------------------------------------------------------- shapes
def check_declared_shapes(options: Mapping[str, tuple[Dim, ...]],
                          data: Mapping[str, tuple[Dim, ...]]) -> dict[Dim, Dim]:
    """-s shapes must agree with the data's: numbers equal, and a dimension name the same
    number wherever it occurs (-s X=M,n -s y=M with X 4×3 and y of 5 entries is refused).
    Returns {dimension name: number} of the names the data fixes."""
    import math

    from ..language.shapes import DimProduct, fmt_dim, fmt_dims, product

    bound: dict[Dim, tuple[Dim, str]] = {}  # dimension name → (value, symbol that fixed it)
    # products last: m*n against a length needs m or n known first (-s v=m*n -s A=m,n)
    for name, dims in sorted(options.items(), key=lambda kv: any(isinstance(d, DimProduct) for d in kv[1])):
        if name not in data:
            continue
        got = tuple(data[name])
        mine = f"{name}: data shape {fmt_dims(got)} contradicts -s {name}={fmt_dims(tuple(dims))}"
        if len(dims) != len(got):
            raise data_error(mine)
        for want, have in zip(dims, got):
            if isinstance(want, DimProduct) and isinstance(have, int):  # -s v=m*n
                known = [bound[f][0] if f in bound else f for f in want.factors]
                unknown = [f for f in known if not isinstance(f, int)]
                size = math.prod(f for f in known if isinstance(f, int))
                if have % size or not unknown and size != have:  # a multiple of what is known
                    raise data_error(f"{mine} ({have} is not {fmt_dim(product(*known))})")
                if len(unknown) > 1:
                    raise data_error(f"{mine} ({have} does not say what {' and '.join(map(fmt_dim, unknown))} "
                                     "are: give all but one of them)")
                if unknown:
                    bound[unknown[0]] = (have // size, name)
            elif isinstance(want, int):
                if want != have:
                    raise data_error(mine)
            elif want in bound and bound[want][0] != have:
                value, other = bound[want]
                raise data_error(f"{mine} ({want} is {value} in the data of {other})")
            else:
                bound[want] = (have, name)
    return {dim: value for dim, (value, _) in bound.items()}


# ----------------------------------------------------------------------------- memory
def available_memory() -> int | None:
    """Bytes this process can still allocate without swapping: MemAvailable (Linux), lowered to
    what a cgroup limit leaves; the free physical pages elsewhere; None if unknown."""
    found: int | None = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    for limit, current in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                           ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                            "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit) as a, open(current) as b:
                left = int(a.read().strip()) - int(b.read().strip())
            found = min(found, max(left, 0))
            break
        except (OSError, ValueError):  # no cgroup, or "max" (no limit)
            continue
    return found


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} EB"


def ensure_memory(parts: list[tuple[str, int]], available: int | None = None,
                  estimate: bool = False) -> None:
    """Refuse a run whose arrays (label, entries of 8 bytes) need more than the memory
    available, before any of them is allocated.  With the evaluation's intermediates among the
    parts (`estimate`) the total is an estimate of the peak; without, a lower bound."""
    need = sum(8 * n for _, n in parts)
    if available is None:
        available = available_memory()
    if available is None or need <= available:
        return
    big = sorted(parts, key=lambda p: -p[1])[:3]
    detail = ", ".join(f"{label} {human_bytes(8 * n)}" for label, n in big if n)
    amount = f"an estimated {human_bytes(need)}" if estimate else f"at least {human_bytes(need)}"
    raise data_error(f"this run needs {amount} of memory at its peak ({detail}); "
                     f"{human_bytes(available)} is available")


# ----------------------------------------------------------------------------- --random
def random_shapes(symbols: Mapping[str, tuple[Dim, ...]]) -> dict[str, tuple[int, ...]]:
    """--random needs a number for every dimension: the shapes, all numbers."""
    for name in sorted(symbols):
        dims = symbols[name]
        if not all(isinstance(d, int) for d in dims):
            raise data_error(f"--random needs numeric shapes: '{name}' has shape "
                             f"({', '.join(str(d) for d in dims)}); give -s {name}=... or data")
    return {name: tuple(d for d in dims if isinstance(d, int)) for name, dims in symbols.items()}


def random_values(symbols: Mapping[str, tuple[Dim, ...]], seed: int, expr: Expr | None = None) -> dict[str, Array]:
    """Seeded values for symbols without data, drawn for the formula `expr` (standard normal
    scaled by 1/√fan-in, positive or positive definite where the formula needs it: see
    draws.py and the README's `--random`)."""
    from .draws import random_inputs

    return random_inputs(random_shapes(symbols), seed, expr)
