"""The `gradcli` process around the command: signals, the standard streams, the exit code.

Why a module of its own: it must run before anything heavy is imported.  A Ctrl-C that lands
while Python is still importing numpy or typer would otherwise end in a KeyboardInterrupt
traceback, so `main` installs its signal handlers first, with nothing but the standard library
loaded, and only then imports the command line (`gradcli.cli`).

What the process guarantees (README, "Guarantees"):
- Ctrl-C (SIGINT) at any moment: one line `interrupted` on stderr, exit code 130; SIGTERM: one
  line `terminated`, exit code 143 (128 + the signal's number, as a shell reports it).  The
  first signal unwinds normally, so clean-up (`finally`, temporary files) runs; a second one
  while unwinding leaves at once, still without a traceback.
- A standard stream that cannot be written (closed, a full disk): one message on the stream
  that still works and exit code 1 (unless the run had already failed: its code is kept).  A
  reader that leaves early (`gradcli … | head -1`) ends the run quietly, exit code 1.
- File descriptors 0–2 that were closed when gradcli started are held open on /dev/null, so
  no file gradcli opens can take their place and receive its output.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from types import FrameType

    from .errors import OutputError

EXIT_FAILURE = 1
_NAMES: dict[int, str] = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


class Terminated(BaseException):
    """SIGTERM, raised where the program is, like KeyboardInterrupt for SIGINT: a BaseException
    so that no `except Exception` turns it into an ordinary error."""


class _Signals:
    """The signal handlers of one run, and the first signal received."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.handled: list[int] = []

    def install(self) -> None:
        """A signal the caller ignores (a background job's SIGINT, `nohup`) stays ignored."""
        for signum in _NAMES:
            try:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    signal.signal(signum, self.on_signal)
                    self.handled.append(signum)
            except (ValueError, OSError):  # not the main thread, or a platform without it
                pass

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # a second signal while unwinding: leave now
            self.leave_now(signum, frame)
        self.received = signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated

    def leave_now(self, signum: int, frame: FrameType | None) -> NoReturn:
        os._exit(128 + (self.received or signum))

    def finish(self) -> None:
        """From here on the run's result is decided: a signal ends the process at once."""
        for signum in self.handled:
            try:
                signal.signal(signum, self.leave_now)
            except (ValueError, OSError):
                pass


class _Guarded:
    """A standard stream whose write failures become `OutputError` (so they can be told apart
    from an error in gradcli itself); everything else is the stream's own."""

    def __init__(self, stream: TextIO, name: str):
        self._stream = stream
        self._name = name

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except UnicodeError:  # a character the stream's encoding lacks: the printer's to handle
            raise
        except (OSError, ValueError) as exc:
            raise _output_error(self._name, exc) from None

    def flush(self) -> None:
        try:
            return self._stream.flush()
        except UnicodeError:
            raise
        except (OSError, ValueError) as exc:
            raise _output_error(self._name, exc) from None

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._stream, attr)


class _Closed:
    """Stands in for a standard stream that was closed when gradcli started."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, name: str):
        self._name = name

    def write(self, text: str) -> int:
        from .errors import OutputError

        raise OutputError(self._name, "it is closed")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "closed")


def _output_error(name: str, exc: Exception) -> OutputError:
    from .errors import OutputError

    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return OutputError(name, reason, broken_pipe=exc.errno == errno.EPIPE)
    return OutputError(name, "it is closed")


def _hold_closed_descriptors() -> set[int]:
    """Reopen closed descriptors 0–2 on /dev/null; returns the ones that were closed."""
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
    for fd in sorted(closed):
        try:
            new = os.open(os.devnull, os.O_RDWR)
            if new != fd:
                os.dup2(new, fd)
                os.close(new)
        except OSError:
            pass
    return closed


def _guard_streams(closed: set[int]) -> None:
    if 0 in closed:
        sys.stdin = None  # `gradcli grad - <&-`: there is nothing to read
    sys.stdout = _Closed("output") if 1 in closed or sys.stdout is None else _Guarded(sys.stdout, "output")
    sys.stderr = _Closed("error") if 2 in closed or sys.stderr is None else _Guarded(sys.stderr, "error")


def _discard(fd: int) -> None:
    """Point a failed stream's descriptor at /dev/null, so the interpreter's own flush at exit
    (of output still buffered) has nowhere to fail."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass


def _say(text: str) -> None:
    """One line on stderr if it can take it; nothing otherwise."""
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except Exception:
        _discard(2)


def _collect_less_often() -> None:
    """The cyclic garbage collector, tuned for one short run: gradcli's expression graphs are
    acyclic and freed by reference counting, but a long formula builds hundreds of thousands of
    nodes, and with Python's default thresholds the collector rescans all of them again and again
    (40% of a 100,000-term sum's run).  Young collections every 100,000 allocations and rarer
    full ones keep cycles bounded without that cost.  Only the `gradcli` process does this: a
    program that imports gradcli keeps its own settings."""
    gc.set_threshold(100_000, 50, 1000)


def main(argv: list[str] | None = None) -> int:
    """The command, inside the process guarantees; returns the exit code (`run` ends the process)."""
    from .errors import OutputError

    signals = _Signals()
    signals.install()
    _collect_less_often()
    rc = EXIT_FAILURE
    detail = ""  # where the signal came: `interrupted while writing to DIR: ...`
    try:
        _guard_streams(_hold_closed_descriptors())
        from .cli import main as command  # numpy, typer, lark as the command needs them

        gc.freeze()  # what the imports made lives as long as the process: never scan it again

        rc = command(argv)
        sys.stdout.flush()
    except KeyboardInterrupt as exc:
        signals.received = signals.received or signal.SIGINT
        detail = getattr(exc, "detail", "")
    except Terminated as exc:
        detail = getattr(exc, "detail", "")
    except OutputError as exc:
        rc = exc.exit_code or rc or EXIT_FAILURE
        _discard(1 if exc.stream == "output" else 2)
        if exc.stream == "output" and not exc.broken_pipe:
            _say(f"error: {exc}")
    except SystemExit as exc:  # a library that exits on its own
        rc = exc.code if isinstance(exc.code, int) else EXIT_FAILURE
    except Exception as exc:  # a bug outside a command's own error handling: still one line
        rc = EXIT_FAILURE
        _say(f"error: internal error ({type(exc).__name__}: {exc}); please report this command line")
    signals.finish()
    if signals.received is not None:
        from .errors import printable

        _say(f"error: {_NAMES[signals.received]}" + (f" {printable(detail)}" if detail else ""))
        _flush_quietly()
        return 128 + signals.received
    _flush_quietly()
    return rc


def run() -> None:
    """The console script and `python -m gradcli`: `main`, then the process ends at once.

    Why not return to the interpreter: its shutdown puts the default action back on every signal
    that has a Python handler before it exits, so a Ctrl-C in that last moment would kill the
    process by the signal, without the promised one-line message, after the run was complete.
    Everything gradcli writes is flushed and closed by the time `main` returns, and nothing is
    left for the interpreter's shutdown to do (no atexit work, no temporary files), so leaving
    with `os._exit` loses nothing and keeps the guarantee to the last instruction."""
    rc = main()
    _flush_quietly()
    os._exit(rc if isinstance(rc, int) and 0 <= rc <= 255 else EXIT_FAILURE)


def _flush_quietly() -> None:
    for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
        try:
            stream.flush()
        except Exception:
            _discard(fd)
