"""Writing a run's arrays (`-o DIR`) so that nothing is lost, torn, mixed or followed.

How a run is written:
1. every array goes to a fresh private folder `DIR/.gradcli-XXXXXXXX/` (created by mkdtemp, so
   nothing can be planted in it), each file written in 16 MiB chunks and synced to disk (so that
   after a crash a renamed file is never empty);
2. under an exclusive `flock` on DIR, with SIGINT/SIGTERM held back, each file is renamed over
   its target, then DIR is fsync'ed (the new names are on disk when gradcli exits) and the
   private folder removed.

So a link planted at a target is replaced, never followed (rename replaces the name; the other
names of a hard link keep the old contents); a reader opening a target sees a whole old file
or a whole new one, never a torn one; two runs into one folder commit one after the other, so
the folder always ends with one run's complete set; and a run that fails or is interrupted
before step 2 changes no target and leaves no temporary file.  A reader that holds a shared
`flock` on DIR while it opens its files (`read_outputs` does) sees the files of one run.

File names never collide: `f.npy`, `d_<x>.npy`, `h_<x>.npy` for ∂²f/∂x² and `h_<x>,<y>.npy`
for a mixed block (symbol names cannot contain a comma; the JSON `wrt` of the block is `x,y`),
and `inputs.npz`, the arrays `--random` drew (one member per symbol, so `-d DIR/inputs.npz`
runs the same numbers again), written and committed with the others.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, BinaryIO

from .errors import GradcliError

CHUNK = 16 * 1024 ** 2  # bytes per write: a Ctrl-C lands between two of them (~10 ms)
TEMP_PREFIX = ".gradcli-"


def output_error(message: str) -> GradcliError:
    """A run's results could not be written (disk full, I/O error): exit 1, kind "output"."""
    return GradcliError("output", message)


def _usage(message: str) -> GradcliError:
    return GradcliError("usage", message)


INPUTS_FILE = "inputs.npz"


def run_files(f_value: Any, derivatives: dict[str, Any], hessian: bool,
              inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """{file name: array} for one run: f.npy and d_<x>.npy, or h_<x>.npy / h_<x>,<y>.npy; with
    `inputs` (the arrays --random drew) also inputs.npz, {symbol: array}."""
    prefix = "h_" if hessian else "d_"
    files = {"f.npy": f_value}
    for wrt, value in derivatives.items():
        if "/" in wrt or "\0" in wrt:  # symbol names are identifiers; never a path
            raise ValueError(f"not a symbol name: {wrt!r}")
        files[f"{prefix}{wrt}.npy"] = value
    if inputs is not None:
        files[INPUTS_FILE] = dict(inputs)
    return files


# ----------------------------------------------------------------------------- the -o folder
def check_target(out_dir: str) -> None:
    """Refuse, before any work, a folder that cannot take the results (usage error, exit 2)."""
    if not out_dir:
        raise _usage("-o needs a folder name (got an empty one)")
    path = os.path.abspath(out_dir)
    if os.path.islink(path) and not os.path.exists(path):
        raise _usage(f"-o {out_dir}: a link to a folder that does not exist")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise _usage(f"-o {out_dir}: exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise _usage(f"-o {out_dir}: the folder is not writable")
        return
    parent = os.path.dirname(path)
    while not os.path.exists(parent):  # the folder will be created: its nearest existing parent
        if os.path.islink(parent):
            raise _usage(f"-o {out_dir}: {parent} is a link to a folder that does not exist")
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise _usage(f"-o {out_dir}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _usage(f"-o {out_dir}: cannot create it ({parent} is not writable)")


def _make_folder(out_dir: str) -> str:
    path = os.path.abspath(out_dir)
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise _usage(f"-o {out_dir}: exists and is not a folder (or is a dangling link)") from None
    except OSError as exc:
        raise _path_error(out_dir, exc) from None
    if not os.path.isdir(path):
        raise _usage(f"-o {out_dir}: is not a folder")
    return path


def _path_error(out_dir: str, exc: OSError) -> GradcliError:
    """An error of the folder itself (usage, exit 2) or of writing into it (output, exit 1)."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOENT, errno.ELOOP):
        reason = "read-only file system" if exc.errno == errno.EROFS else os.strerror(exc.errno).lower()
        return _usage(f"-o {out_dir}: cannot write into it ({reason})")
    return _write_error(out_dir, exc)


def _write_error(out_dir: str, exc: OSError) -> GradcliError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "the disk is full" if exc.errno == errno.ENOSPC else "the disk quota is exceeded"
    else:
        what = os.strerror(exc.errno).lower() if exc.errno else "write failed"
    return output_error(f"-o {out_dir}: {what}; nothing was written (files already there are unchanged)")


# ----------------------------------------------------------------------------- writing
def write_outputs(out_dir: str, files: dict[str, Any]) -> list[str]:
    """Write {file name: array} into out_dir as described in the module docstring; returns the
    paths written.  On any failure no target has changed and no temporary file is left."""
    target = _make_folder(out_dir)
    temp = None
    try:
        with _interrupts_raise() as held:
            try:
                temp = _mkdtemp(target)
            except OSError as exc:
                raise _path_error(out_dir, exc) from None
            try:
                for name, value in files.items():
                    if isinstance(value, dict):
                        _write_npz(os.path.join(temp, name), value)
                    else:
                        _write_npy(os.path.join(temp, name), value)
            except OSError as exc:
                raise _write_error(out_dir, exc) from None
            _commit(out_dir, target, temp, list(files), held)
    except _Interrupted as sig:
        _remove(temp)
        handler = signal.getsignal(sig.signum)  # the one that was there before
        try:
            if callable(handler):  # called here, so that what it raises is raised in this block
                handler(sig.signum, None)
            else:
                signal.raise_signal(sig.signum)  # SIG_DFL: the signal's own end
        except BaseException as exc:  # its KeyboardInterrupt: the one final message says where
            exc.detail = f"while writing to {out_dir}: no file there was changed"  # type: ignore[attr-defined]
            raise
        raise output_error(f"-o {out_dir}: interrupted; no file there was changed") from None
    finally:
        _remove(temp)
    return [os.path.join(target, name) for name in files]


def _mkdtemp(target: str) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=target)


def _commit(out_dir: str, target: str, temp: str, names: list[str],
            held: Callable[[], AbstractContextManager[None]]) -> None:
    """Rename every file into place under the folder's lock, with interrupts held back: all of
    them or (a target that is a folder) none."""
    dir_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _lock(dir_fd, exclusive=True)
        for name in names:
            try:
                mode = os.lstat(os.path.join(target, name)).st_mode
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(mode):
                raise _usage(f"-o {out_dir}: {name} there is a folder; nothing was written")
        with held():
            for done, name in enumerate(names):
                try:
                    os.rename(os.path.join(temp, name), os.path.join(target, name))
                except OSError as exc:
                    if not done:
                        raise
                    raise output_error(f"-o {out_dir}: replacing {name} failed "
                                       f"({os.strerror(exc.errno).lower() if exc.errno else exc}) after "
                                       f"{', '.join(names[:done])} had been replaced") from None
            os.rmdir(temp)  # empty now; gone before a held-back SIGTERM can end the process
            try:
                os.fsync(dir_fd)
            except OSError:  # some file systems cannot fsync a folder; the renames are done
                pass
    except OSError as exc:
        raise _write_error(out_dir, exc) from None
    finally:
        os.close(dir_fd)  # closing the descriptor releases the lock


def _write_npy(path: str, value: Any) -> None:
    """A .npy file written in chunks to a new file (O_EXCL | O_NOFOLLOW), then fsync'ed."""
    import numpy as np

    arr = np.asarray(value, dtype=np.float64)
    if not (arr.flags.c_contiguous or arr.flags.f_contiguous):
        arr = np.ascontiguousarray(arr)
    fmt = np.lib.format
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
    with os.fdopen(fd, "wb") as fh:
        fmt.write_array_header_1_0(fh, fmt.header_data_from_array_1_0(arr))
        raw = memoryview(arr if arr.flags.c_contiguous else arr.T).cast("B")  # type: ignore[arg-type]
        for start in range(0, len(raw), CHUNK):
            _write_chunk(fh, raw[start:start + CHUNK])
        fh.flush()
        getattr(os, "fdatasync", os.fsync)(fh.fileno())  # the data is on disk before the rename


def _write_npz(path: str, arrays: dict[str, Any]) -> None:
    """An uncompressed .npz (what np.savez writes: one `<name>.npy` member per array) written to a
    new file like `_write_npy`, then fsync'ed.  Written member by member, not by np.savez, whose
    own keyword arguments (`file`, `allow_pickle`) would clash with symbols of those names."""
    import zipfile

    import numpy as np

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
    with os.fdopen(fd, "wb") as fh:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
            for name, value in arrays.items():
                arr = np.asarray(value, dtype=np.float64)  # a 0-d array stays 0-d
                if not arr.flags.c_contiguous:
                    arr = np.ascontiguousarray(arr)
                with zf.open(name + ".npy", "w", force_zip64=arr.nbytes > 2 ** 30) as member:
                    np.lib.format.write_array(member, arr, allow_pickle=False)
        fh.flush()
        getattr(os, "fdatasync", os.fsync)(fh.fileno())


def _write_chunk(fh: BinaryIO, data: memoryview) -> None:
    fh.write(data)


def _remove(temp: str | None) -> None:
    """Remove the private folder and whatever is left in it (only files gradcli created)."""
    if temp is None:
        return
    try:
        names = os.listdir(temp)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(temp, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(temp)
    except FileNotFoundError:
        pass


def _lock(fd: int, exclusive: bool) -> None:
    """flock on the folder; where the file system has no locks (some network mounts) the files
    are still replaced atomically, one by one."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EBADF, errno.EINVAL):
            raise


# ----------------------------------------------------------------------------- signals
class _Interrupted(BaseException):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _interrupts_raise() -> Iterator[Callable[[], AbstractContextManager[None]]]:
    """While writing, SIGINT and SIGTERM raise _Interrupted (so the temporary files are removed
    before the signal goes on to its usual handler).  Yields `held`, a context manager that
    holds both signals back for the renames; the previous handlers are back in place before
    they are released, so a signal that came during the renames acts after the commit as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield _nothing
        return

    def raise_interrupted(signum: int, frame: Any) -> None:
        raise _Interrupted(signum)

    # a signal the caller ignores (nohup, a background job) stays ignored
    previous = {s: signal.signal(s, raise_interrupted) for s in _SIGNALS
                if signal.getsignal(s) not in (signal.SIG_IGN, None)}
    restored = False

    def restore() -> None:
        nonlocal restored
        if not restored:
            for s, handler in previous.items():
                signal.signal(s, handler)
            restored = True

    @contextmanager
    def held() -> Iterator[None]:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            yield
            restore()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)

    try:
        yield held
    finally:
        restore()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# ----------------------------------------------------------------------------- reading
def read_outputs(out_dir: str) -> dict[str, Any]:
    """{file stem: array} of the gradcli files in out_dir, read under a shared lock on the
    folder, so that all of them come from one run."""
    import numpy as np

    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _lock(fd, exclusive=False)
        out = {}
        for name in sorted(os.listdir(out_dir)):
            if name.endswith(".npy") and (name == "f.npy" or name[:2] in ("d_", "h_")):
                out[name[:-4]] = np.load(os.path.join(out_dir, name), allow_pickle=False)
        return out
    finally:
        os.close(fd)
