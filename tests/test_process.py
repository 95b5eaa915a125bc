"""The process around the command (gradcli/process.py), tested as a user meets it: real
subprocesses with standard streams closed or full, and signals at chosen moments.  Whatever
happens: one message where a stream still works, the documented exit code, never a traceback."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LONG_CHECK = ["grad", "sum(tanh(X@Y)) wrt X", "-s", "X=300x300", "-s", "Y=300x300", "--random", "--check"]
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX streams and signals")


def gradcli(*args, script=None, **kw):
    """`python -m gradcli ARGS`, or a script that patches something and then runs the same
    entry point (gradcli.process.main)."""
    cmd = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "gradcli", *args]
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(cmd, cwd=ROOT, timeout=120, **kw)


def no_traceback(err: bytes) -> str:
    text = err.decode("utf-8", "replace")
    assert "Traceback" not in text and "Exception ignored" not in text, text
    return text


@posix_only
@pytest.mark.parametrize("args", [["shape", "x'@x"], ["shape", "x'@x", "--json"], ["--help"], ["--version"],
                                  ["grad", "x'@A@x wrt x", "-s", "A=3x3", "--random"], ["check", "samples/"]])
def test_a_full_disk_on_stdout_is_one_message_and_exit_1(args):
    with open("/dev/full", "w") as full:
        p = gradcli(*args, stdout=full)
    err = no_traceback(p.stderr)
    assert p.returncode == 1
    assert err.strip().splitlines()[-1] == "error: cannot write to standard output: No space left on device"


@posix_only
def test_a_failed_run_keeps_its_own_message_and_code_when_stdout_is_full():
    with open("/dev/full", "w") as full:
        p = gradcli("grad", "x'@x", "--json", stdout=full)  # no wrt: a usage error, exit 2
    err = no_traceback(p.stderr)
    assert p.returncode == 2 and "nothing to differentiate" in err and "standard output" in err


@posix_only
def test_a_closed_stdout_is_one_message_and_exit_1():
    p = gradcli("shape", "x'@x", stdout=None, preexec_fn=lambda: os.close(1))
    err = no_traceback(p.stderr)
    assert p.returncode == 1 and "cannot write to standard output: it is closed" in err


@posix_only
def test_a_closed_stderr_still_gives_the_exit_code():
    p = gradcli("shape", "x +", stderr=None, preexec_fn=lambda: os.close(2))
    assert p.returncode == 1 and p.stdout == b""
    p = gradcli("shape", "x'@x", stderr=None, preexec_fn=lambda: os.close(2))
    assert p.returncode == 0 and p.stdout.startswith("f = xᵀx".encode())


@posix_only
@pytest.mark.parametrize("args", [["grad", "-"], ["check", "-"]])
def test_a_closed_stdin_is_a_usage_error(args):
    p = gradcli(*args, stdin=None, preexec_fn=lambda: os.close(0))
    err = no_traceback(p.stderr)
    assert p.returncode == 2 and "standard input is closed" in err


def test_stdin_that_is_not_utf8_is_a_parse_error():
    p = gradcli("grad", "-", stdin=None, input=b"x'@x \xff wrt x")
    err = no_traceback(p.stderr)
    assert p.returncode == 1 and "not UTF-8" in err and "0xff" in err


INTERRUPT_AT_IMPORT = """
import builtins, os, signal, sys
target = sys.argv[1]
real_import = builtins.__import__

def interrupting_import(name, *args, **kw):
    if name == target:
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.SIG{sig})
    return real_import(name, *args, **kw)

from gradcli.process import main
builtins.__import__ = interrupting_import
sys.exit(main(sys.argv[2:]))
"""


@posix_only
@pytest.mark.parametrize("module", ["typer", "numpy", "api", "lalr", "json"])  # as import statements name them
@pytest.mark.parametrize("sig, code, word", [("INT", 130, "interrupted"), ("TERM", 143, "terminated")])
def test_a_signal_during_startup_imports(module, sig, code, word):
    # the signal arrives while the named module is being imported (the command has not started)
    p = gradcli(module, "grad", "x'@A@x wrt x", "-s", "A=3x3", "--random", "--json",
                script=INTERRUPT_AT_IMPORT.replace("{sig}", sig))
    err = no_traceback(p.stderr)
    assert p.returncode == code and err.strip() == f"error: {word}"


INTERRUPT_DURING_CHECK = """
import os, signal, sys
import gradcli.numeric.fdcheck as fd
from gradcli.process import main

real = fd.finite_difference
def interrupted_midway(*args, on_step=None, **kw):
    steps = [0]
    def step():
        steps[0] += 1
        if steps[0] == 5:
            os.kill(os.getpid(), signal.SIG{sig})
    return real(*args, on_step=step, **kw)
fd.finite_difference = interrupted_midway
sys.exit(main(sys.argv[1:]))
"""


@posix_only
@pytest.mark.parametrize("sig, code, word", [("INT", 130, "interrupted"), ("TERM", 143, "terminated")])
def test_a_signal_during_a_long_check(sig, code, word):
    p = gradcli("grad", "x'@A@x wrt x", "-s", "A=30x30", "--random", "--check",
                script=INTERRUPT_DURING_CHECK.replace("{sig}", sig))
    err = no_traceback(p.stderr)
    assert p.returncode == code and err.strip() == f"error: {word}"


def _catches(pid: int, signum: int) -> bool:
    """Whether the process has installed a handler for the signal (Linux /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(mask >> (signum - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_real_signal_at_several_moments(delay, signum, code):
    # from the moment gradcli's handlers are installed (Python itself starts first): at once
    # (importing), and later (evaluating, checking)
    p = subprocess.Popen([sys.executable, "-m", "gradcli", *LONG_CHECK], cwd=ROOT, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not _catches(p.pid, signal.SIGTERM) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)
    p.send_signal(signum)
    out, err = p.communicate(timeout=120)
    text = no_traceback(err)
    if p.returncode == 0:  # finished before the signal came: nothing to test at this delay
        pytest.skip("the run ended before the signal")
    assert p.returncode == code and text.strip().splitlines()[-1].startswith("error: ")


@posix_only
def test_a_reader_that_leaves_early_ends_the_run_quietly():
    p = subprocess.Popen([sys.executable, "-m", "gradcli", "check", "-"], cwd=ROOT, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    _, err = p.communicate(b"x'@x\n" * 20000 + b"x +\n" * 20000, timeout=120)
    text = no_traceback(err)
    assert p.returncode in (0, 1) and "internal" not in text


def test_a_bug_outside_a_command_is_one_line_not_a_traceback():
    script = """
import sys
import gradcli.cli as cli
def broken(argv=None):
    raise LookupError("a bug")
cli.main = broken
from gradcli.process import main
sys.exit(main(sys.argv[1:]))
"""
    p = gradcli("shape", "x", script=script)
    err = no_traceback(p.stderr)
    assert p.returncode == 1 and err.startswith("error: internal error (LookupError: a bug)")


def test_a_stream_that_cannot_encode_unicode_is_not_a_write_failure():
    p = gradcli("shape", "x'@x wrt x", env={**os.environ, "PYTHONIOENCODING": "ascii"})
    no_traceback(p.stderr)
    assert p.returncode == 0 and p.stdout.startswith(b"f = x\\u1d40x")


@posix_only
def test_a_signal_the_caller_ignores_stays_ignored():
    # a background job of a non-interactive shell starts with SIGINT ignored
    script = INTERRUPT_DURING_CHECK.replace("{sig}", "INT").replace(
        "from gradcli.process import main", "signal.signal(signal.SIGINT, signal.SIG_IGN)\nfrom gradcli.process import main")
    p = gradcli("grad", "x'@A@x wrt x", "-s", "A=5x5", "--random", "--check", script=script)
    no_traceback(p.stderr)
    assert p.returncode == 0 and b"check:" in p.stdout
