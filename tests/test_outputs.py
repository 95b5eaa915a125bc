"""-o DIR: files replaced atomically, links never followed, a run's set whole, failures clean."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from gradcli import outputs
from gradcli.cli import main


def run(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def temp_left(folder) -> list:
    return [n for n in os.listdir(folder) if n.startswith(outputs.TEMP_PREFIX)]


@pytest.fixture
def vec(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.arange(5.0))
    return f"x={path}"


def test_files_hold_f_and_the_gradient(tmp_path, capsys, vec):
    out = tmp_path / "out"
    rc, _, _ = run(capsys, "grad", "sum(x^2) wrt x", "-d", vec, "-o", str(out))
    assert rc == 0 and sorted(os.listdir(out)) == ["d_x.npy", "f.npy"]
    assert np.load(out / "f.npy") == 30.0 and np.array_equal(np.load(out / "d_x.npy"), 2 * np.arange(5.0))


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path, capsys, vec):
    precious = tmp_path / "precious.txt"
    precious.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "d_x.npy").symlink_to(precious)
    rc, _, _ = run(capsys, "grad", "sum(x^2) wrt x", "-d", vec, "-o", str(out))
    assert rc == 0 and precious.read_text() == "precious"
    assert not (out / "d_x.npy").is_symlink() and np.load(out / "d_x.npy").shape == (5,)


def test_a_hardlinks_other_name_keeps_its_contents(tmp_path, capsys, vec):
    precious = tmp_path / "precious.txt"
    precious.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    os.link(precious, out / "f.npy")
    rc, _, _ = run(capsys, "grad", "sum(x^2) wrt x", "-d", vec, "-o", str(out))
    assert rc == 0 and precious.read_text() == "precious" and np.load(out / "f.npy") == 30.0


def test_hessian_block_names_do_not_collide(tmp_path, capsys):
    out = tmp_path / "out"
    rc, doc_text, _ = run(capsys, "hess", "x'@y + sum(x_y^2)*sum(x) wrt x, y, x_y", "-s", "x=3", "-s", "y=3",
                          "-s", "x_y=3", "--random", "-o", str(out), "--json")
    assert rc == 0
    doc = json.loads(doc_text)
    names = sorted(os.listdir(out))
    names.remove("inputs.npz")  # the arrays --random drew
    assert len(names) == 1 + len(doc["derivatives"]) == 10  # f and all nine blocks, none overwritten
    for d in doc["derivatives"]:
        assert np.allclose(np.load(out / f"h_{d['wrt']}.npy"), np.array(d["value"]))
    assert "h_x,y.npy" in names and "h_x_y.npy" in names


@pytest.mark.parametrize("args", [["-o", ""], ["-o", "{tmp}/out"]])
def test_o_without_a_folder_or_without_numbers_is_a_usage_error(tmp_path, capsys, args):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    rc, _, err = run(capsys, "grad", "sum(x^2) wrt x", "-s", "x=3", *args)
    assert rc == 2 and "-o" in err and not (tmp_path / "out").exists()


def test_a_dangling_link_or_a_file_as_o_is_a_usage_error(tmp_path, capsys, vec):
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    (tmp_path / "file").write_text("keep")
    for target in ("dangling", "file", "file/sub"):
        rc, _, err = run(capsys, "grad", "sum(x^2) wrt x", "-d", vec, "-o", str(tmp_path / target))
        assert rc == 2 and f"-o {tmp_path / target}" in err and "internal" not in err
    assert (tmp_path / "file").read_text() == "keep" and not (tmp_path / "missing").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_usage_error(tmp_path, capsys, vec):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        rc, _, err = run(capsys, "grad", "sum(x^2) wrt x", "-d", vec, "-o", str(out))
    finally:
        out.chmod(0o755)
    assert rc == 2 and "not writable" in err


def previous_run(capsys, tmp_path):
    """A first run's files in out/, and their bytes."""
    old = tmp_path / "old.npy"
    np.save(old, np.ones(5))
    out = tmp_path / "out"
    assert run(capsys, "grad", "sum(x^2) wrt x", "-d", f"x={old}", "-o", str(out))[0] == 0
    return out, {n: (out / n).read_bytes() for n in os.listdir(out)}


@pytest.mark.parametrize("errno_", [errno.EROFS, errno.EACCES])
def test_a_folder_that_refuses_files_is_a_usage_error(tmp_path, capsys, vec, monkeypatch, errno_):
    out, before = previous_run(capsys, tmp_path)

    def refuse(target):
        raise OSError(errno_, os.strerror(errno_))
    monkeypatch.setattr(outputs, "_mkdtemp", refuse)
    rc, _, err = run(capsys, "grad", "sum(x^2) wrt x", "-d", vec, "-o", str(out))
    assert rc == 2 and "cannot write into it" in err
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before


def enospc(fh, data):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def dev_full(fh, data):
    """The kernel's own 'no space left' (/dev/full refuses every write)."""
    with open("/dev/full", "wb", buffering=0) as full:
        full.write(data)


@pytest.mark.parametrize("writer", [enospc, dev_full])
def test_a_full_disk_leaves_earlier_files_and_no_temporary_files(tmp_path, capsys, vec, monkeypatch, writer):
    if writer is dev_full and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    out, before = previous_run(capsys, tmp_path)
    monkeypatch.setattr(outputs, "_write_chunk", writer)
    rc, out_text, err = run(capsys, "grad", "sum(x^2) wrt x", "-d", vec, "-o", str(out), "--json")
    assert rc == 1 and "disk is full" in err and "internal" not in err
    assert json.loads(out_text)["error"]["kind"] == "output"
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before  # no temp folder either


def test_a_target_that_is_a_folder_changes_nothing(tmp_path, capsys, vec):
    out, before = previous_run(capsys, tmp_path)
    os.remove(out / "d_x.npy")
    (out / "d_x.npy").mkdir()
    rc, _, err = run(capsys, "grad", "sum(x^2) wrt x", "-d", vec, "-o", str(out))
    assert rc == 2 and "d_x.npy" in err
    assert (out / "f.npy").read_bytes() == before["f.npy"] and not temp_left(out)


# ----------------------------------------------------------------------------- processes
WRITER = textwrap.dedent("""
    import sys
    from gradcli.cli import main
    out, ones, first, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for k in range(first, first + runs):  # f = k·n, ∂f/∂x = k everywhere
        assert main(["grad", "a*sum(x) wrt x", "-d", f"a={k}", "-d", f"x={ones}", "-o", out]) == 0
""")
N = 300_000


def test_two_writers_and_a_reader_never_see_a_torn_file_or_a_mixed_pair(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    np.save(tmp_path / "ones.npy", np.ones(N))
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(out), str(tmp_path / "ones.npy"),
                                 str(first), "12"], stdout=subprocess.DEVNULL)
               for first in (1, 1001)]
    whole_reads = paired_reads = 0
    try:
        while any(w.poll() is None for w in writers):
            if not (out / "d_x.npy").exists():
                continue
            d = np.load(out / "d_x.npy")  # by path, no lock: one whole file
            assert d.shape == (N,) and (d == d[0]).all()
            whole_reads += 1
            pair = outputs.read_outputs(str(out))  # under the shared lock: one run's pair
            assert (pair["d_x"] * N == pair["f"]).all()
            paired_reads += 1
    finally:
        for w in writers:
            w.wait(60)
    assert [w.returncode for w in writers] == [0, 0]
    assert whole_reads > 0 and paired_reads > 0
    final = outputs.read_outputs(str(out))
    assert final["f"] in (12.0 * N, 1012.0 * N) and (final["d_x"] * N == final["f"]).all()
    assert not temp_left(out)


SLOW_RUN = textwrap.dedent("""
    import signal, sys, time
    if len(sys.argv) > 3:
        signal.signal(int(sys.argv[3]), signal.SIG_IGN)  # as nohup or a background job would
    from gradcli import outputs, process
    outputs.CHUNK = 1 << 20
    write = outputs._write_chunk
    def slow(fh, data):
        write(fh, data)
        time.sleep(0.05)
    outputs._write_chunk = slow
    sys.exit(process.main(["grad", "sum(x^2) wrt x", "-d", "x=" + sys.argv[1], "-o", sys.argv[2]]))
""")


def written_to_temp(out) -> bool:
    """Whether a temporary file in out already holds data (the folders come and go meanwhile)."""
    for t in temp_left(out):
        try:
            if any(os.path.getsize(out / t / n) > 0 for n in os.listdir(out / t)):
                return True
        except FileNotFoundError:
            pass
    return False


def start_slow_write(tmp_path, out, *extra):
    """A gradcli process writing an 8 MB gradient into out, slowly; returned once its first
    temporary file has data."""
    big = tmp_path / "big.npy"
    np.save(big, np.ones(1_000_000))  # 8 MB: 8 slow chunks
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(big), str(out), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if written_to_temp(out):
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the writer finished before it could be interrupted"
    return proc


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_write_leaves_the_previous_files(tmp_path, capsys, signum):
    out, before = previous_run(capsys, tmp_path)
    proc = start_slow_write(tmp_path, out)
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 1.5  # one 50 ms chunk, the clean-up and the exit
    what = "interrupted" if signum == signal.SIGINT else "terminated"
    # one message, with the prefix of every error, where it came, and the signal's exit code
    assert err.splitlines() == [f"error: {what} while writing to {out}: no file there was changed"]
    assert proc.returncode == 128 + signum
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before  # no temp folder either


def test_an_ignored_signal_stays_ignored_while_writing(tmp_path, capsys):
    out, _ = previous_run(capsys, tmp_path)
    proc = start_slow_write(tmp_path, out, str(int(signal.SIGTERM)))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert np.load(out / "d_x.npy").shape == (1_000_000,) and not temp_left(out)


def test_an_unwritable_folder_is_refused_before_any_work(tmp_path, capsys, vec, monkeypatch):
    # root may write anywhere, so the permission is faked; the refusal comes before evaluation
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.setattr("gradcli.api.Problem.compile", lambda *a, **k: pytest.fail("evaluated"))
    rc, _, err = run(capsys, "grad", "sum(x^2) wrt x", "-d", vec, "-o", str(out))
    assert rc == 2 and "not writable" in err and os.listdir(out) == []


def test_a_full_disk_while_writing_inputs_npz_changes_nothing(tmp_path, capsys, monkeypatch):
    """inputs.npz (the arrays --random drew) is committed with f and the derivatives: a failure
    while writing it leaves the previous run's files, all of them, and no temporary file."""
    out = tmp_path / "out"
    args = ["grad", "sum(x^2) wrt x", "-s", "x=3", "--random", "-o", str(out)]
    assert run(capsys, *args, "--seed", "1")[0] == 0
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    assert "inputs.npz" in before

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(np.lib.format, "write_array", full)
    rc, _, err = run(capsys, *args, "--seed", "2")
    assert rc == 1 and "disk is full" in err
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before
