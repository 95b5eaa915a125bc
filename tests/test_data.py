"""Loading arrays safely: pickle refused, headers checked before allocation, dtypes validated."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from gradcli.cli import main
from gradcli.numeric import data
from gradcli.numeric.data import load_npy, load_npz, parse_data_option
from gradcli.errors import GradcliError


def grad_json(capsys, *args):
    rc = main(["grad", *args, "--json"])
    out, err = capsys.readouterr()
    return rc, json.loads(out), err


def test_object_array_is_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(GradcliError) as info:
        load_npy(str(path), "x")
    assert info.value.kind == "data" and "pickle" in info.value.message


def test_a_pickle_disguised_as_npy_is_refused(tmp_path):
    path = tmp_path / "evil.npy"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(GradcliError) as info:
        load_npy(str(path), "x")
    assert info.value.kind == "data"


def test_huge_header_is_refused_before_allocation(tmp_path):
    path = tmp_path / "huge.npy"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += " " * (118 - len(header)) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    with pytest.raises(GradcliError) as info:
        load_npy(str(path), "X")
    assert "8000000000000 bytes" in info.value.message  # refused from the header: nothing allocated


def test_truncated_file(tmp_path):
    path = tmp_path / "t.npy"
    np.save(path, np.ones((10, 10)))
    path.write_bytes(path.read_bytes()[:-80])
    with pytest.raises(GradcliError) as info:
        load_npy(str(path), "X")
    assert "truncated" in info.value.message


@pytest.mark.parametrize("array, ok", [
    (np.arange(6).reshape(2, 3), True),              # int is promoted
    (np.array([True, False]), True),                 # bool is promoted
    (np.asfortranarray(np.ones((3, 2))), True),
    (np.ones(4, dtype=">f8"), True),                 # big-endian
    (np.array(2.5), True),                           # 0-d is a scalar
    (np.ones((2, 2, 2)), False),                     # rank 3
    (np.array(["a", "b"]), False),                   # strings
    (np.ones(2, dtype=complex), False),
])
def test_dtypes_and_layouts(tmp_path, array, ok):
    path = tmp_path / "a.npy"
    np.save(path, array)
    if ok:
        loaded = load_npy(str(path), "a")
        assert loaded.dtype == np.float64 and loaded.shape == array.shape
        assert np.array_equal(loaded, array.astype(float))
    else:
        with pytest.raises(GradcliError):
            load_npy(str(path), "a")


@pytest.mark.parametrize("chunk", [7, 1 << 24])
@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_members_read_directly_equal_numpys_own_load(tmp_path, save, chunk, monkeypatch):
    monkeypatch.setattr(data, "CHUNK", chunk)  # read in chunks: any chunk size gives the same array
    # np.savez stores members uncompressed and gradcli reads them straight from the file;
    # savez_compressed goes through zipfile.  Either way: the arrays np.load gives, as float64.
    rng = np.random.default_rng(0)
    arrays = {"X": rng.normal(size=(7, 3)), "F": np.asfortranarray(rng.normal(size=(4, 5))),
              "big": np.arange(5, dtype=">f8"), "i": np.arange(6).reshape(2, 3), "s": np.array(2.5),
              "e": np.zeros((0, 3)), "b": np.array([True, False])}
    path = tmp_path / "a.npz"
    save(path, **arrays)
    loaded = load_npz(str(path))
    assert set(loaded) == set(arrays)
    for k, v in arrays.items():
        assert loaded[k].dtype == np.float64 and loaded[k].shape == v.shape
        assert np.array_equal(loaded[k], v.astype(float)) and loaded[k].flags.c_contiguous


def test_truncated_npz_member_is_refused(tmp_path):
    path = tmp_path / "t.npz"
    np.savez(path, X=np.ones((10, 10)))
    data = path.read_bytes()
    at = data.index(b"\x93NUMPY")  # lie in the header: more rows than the member holds
    header = data[at:at + 128].replace(b"(10, 10)", b"(90, 10)")
    path.write_bytes(data[:at] + header + data[at + 128:])
    with pytest.raises(GradcliError) as info:
        load_npz(str(path))
    assert info.value.kind == "data" and "truncated" in info.value.message


def test_npz_binds_by_key_and_ignores_extra_keys(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", x=np.ones(3), extra=np.zeros(5))
    rc, doc, _ = grad_json(capsys, "x'@x wrt x", "-d", str(tmp_path / "d.npz"))
    assert rc == 0 and doc["derivatives"][0]["value"] == [2.0, 2.0, 2.0]
    assert "extra" not in doc["symbols"]


def test_npz_missing_key_is_reported(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", x=np.ones(3))
    rc, doc, _ = grad_json(capsys, "x'@A@x wrt x", "-d", str(tmp_path / "d.npz"))
    assert rc == 1 and doc["error"]["kind"] == "data" and "'A'" in doc["error"]["message"]


def test_data_shape_contradicting_formula(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 3)), theta=np.ones(2), y=np.ones(4))
    rc, doc, err = grad_json(capsys, "||y - X@theta||^2 wrt theta", "-d", str(tmp_path / "d.npz"))
    assert rc == 1 and doc["error"]["kind"] == "shape" and "inner dimensions 3 and 2 differ" in err


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_input_is_a_data_error_naming_the_symbol(tmp_path, capsys, bad):
    np.save(tmp_path / "x.npy", np.array([1.0, bad]))
    rc, doc, err = grad_json(capsys, "x'@x wrt x", "-d", f"x={tmp_path / 'x.npy'}")
    assert rc == 1 and doc["error"]["kind"] == "data" and "x (" in err and "--allow-nonfinite" in err


def test_nonfinite_input_with_allow_nonfinite_warns_and_computes(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.array([1.0, np.nan]))
    rc, doc, err = grad_json(capsys, "x'@x wrt x", "-d", f"x={tmp_path / 'x.npy'}", "--allow-nonfinite")
    assert rc == 0 and "NaN or Inf" in err and doc["value"] is None


def test_singular_matrix_is_a_math_error(capsys):
    rc, doc, err = grad_json(capsys, "logdet(A) wrt A", "-d", "A=0", "-s", "A=scalar")
    assert rc == 1  # a scalar A is not a square matrix: a shape error


def test_singular_inverse(tmp_path, capsys):
    np.save(tmp_path / "A.npy", np.ones((2, 2)))
    rc, doc, err = grad_json(capsys, "sum(inv(A)) wrt A", "-d", f"A={tmp_path / 'A.npy'}")
    assert rc == 1 and doc["error"]["kind"] == "math" and "inv(A)" in doc["error"]["message"]


def test_bad_data_specs():
    with pytest.raises(GradcliError) as info:
        parse_data_option("nonsense")
    assert info.value.kind == "usage"
    with pytest.raises(GradcliError) as info:
        load_npz("/no/such.npz")
    assert info.value.kind == "usage"


# ----------------------------------------------------------------------------- what is read
def npy_bytes(header: str, data: bytes = b"") -> bytes:
    header += " " * (118 - len(header)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + data


def lying_npz(path, **good):
    """An .npz with the given arrays and a member 'unused' whose header claims 10¹² entries."""
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for k, v in good.items():
            with zf.open(f"{k}.npy", "w") as fh:
                np.lib.format.write_array(fh, v)
        zf.writestr("unused.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"))


@pytest.mark.parametrize("command", ["grad", "shape"])
def test_npz_members_the_formula_does_not_name_are_not_read(tmp_path, capsys, command):
    lying_npz(tmp_path / "d.npz", x=np.ones(3))
    rc = main([command, "x'@x wrt x", "-d", str(tmp_path / "d.npz")])
    assert rc == 0, capsys.readouterr().err
    with pytest.raises(GradcliError):  # the member is bad: read, it is refused
        load_npz(str(tmp_path / "d.npz"))


def zip_with_entries(path, entries):
    import warnings
    import zipfile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w") as zf:
            for name, array in entries:
                with zf.open(name, "w") as fh:
                    np.lib.format.write_array(fh, array)


@pytest.mark.parametrize("names", [("x.npy", "x.npy"), ("x", "x.npy")])
def test_duplicate_npz_members_are_refused(tmp_path, capsys, names):
    zip_with_entries(tmp_path / "d.npz", [(names[0], np.ones(3)), (names[1], np.zeros(3))])
    rc, doc, err = grad_json(capsys, "x'@x wrt x", "-d", str(tmp_path / "d.npz"))
    assert rc == 1 and doc["error"]["kind"] == "data" and "'x'" in err and "twice" in err


def test_overlapping_npz_members_are_refused(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", x=np.ones(3), y=np.ones(3))
    raw = bytearray((tmp_path / "d.npz").read_bytes())
    second = raw.index(b"PK\x01\x02", raw.index(b"PK\x01\x02") + 4)  # y's central directory entry
    raw[second + 42:second + 46] = (0).to_bytes(4, "little")  # ... now points at x's bytes
    (tmp_path / "d.npz").write_bytes(bytes(raw))
    rc, doc, err = grad_json(capsys, "x'@y wrt x", "-d", str(tmp_path / "d.npz"))
    assert rc == 1 and doc["error"]["kind"] == "data" and "overlap" in err


def test_member_names_are_printed_with_control_characters_escaped(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", **{"\x1b[2Jevil": np.ones(3), "other": np.ones(2)})
    rc, doc, err = grad_json(capsys, "x'@x wrt x", "-d", f"x={tmp_path / 'd.npz'}")
    assert rc == 1 and "\x1b" not in err and "\\x1b[2Jevil" in err


@pytest.mark.parametrize("content", [
    b"root:SECRET-PASSWORD-HASH:19000:0:99999:7:::\n",
    npy_bytes("{'descr': 'SECRET-PASSWORD-HASH', 'fortran_order': False, 'shape': (3,), }"),
    npy_bytes("{'descr': [('SECRET-PASSWORD-HASH', '<f8')], 'fortran_order': False, 'shape': (1,), }", bytes(8)),
])
def test_errors_never_echo_file_contents(tmp_path, capsys, content):
    (tmp_path / "s.npy").write_bytes(content)
    rc, doc, err = grad_json(capsys, "x'@x wrt x", "-d", f"x={tmp_path / 's.npy'}")
    assert rc == 1 and doc["error"]["kind"] == "data"
    assert "SECRET" not in err and "SECRET" not in json.dumps(doc)


def test_an_absurd_header_shape_is_a_data_error(tmp_path, capsys):
    (tmp_path / "z.npy").write_bytes(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 10**30), }"))
    rc, doc, err = grad_json(capsys, "sum(X) wrt X", "-d", f"X={tmp_path / 'z.npy'}")
    assert rc == 1 and doc["error"]["kind"] == "data" and "internal" not in err


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0)])
def test_empty_arrays_with_check(tmp_path, capsys, shape):
    np.save(tmp_path / "e.npy", np.zeros(shape))
    formula = "sum(x^2) wrt x" if len(shape) == 1 else "sum(X*X) wrt X"
    rc, doc, err = grad_json(capsys, formula, "-d", f"{formula[4]}={tmp_path / 'e.npy'}", "--check")
    assert rc == 0, err
    d = doc["derivatives"][0]
    assert np.asarray(d["value"]).size == 0 and d["check"]["ok"] and doc["value"] == 0.0


# ----------------------------------------------------------------------------- -s against data
def test_shape_option_contradicting_data_names_both_shapes(tmp_path, capsys):
    np.save(tmp_path / "X.npy", np.ones((4, 3)))
    rc, doc, err = grad_json(capsys, "sum(X) wrt X", "-d", f"X={tmp_path / 'X.npy'}", "-s", "X=3x4")
    assert rc == 1 and doc["error"]["kind"] == "data" and "(4, 3)" in err and "(3, 4)" in err


def test_a_dimension_name_must_mean_one_number_across_the_data(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 3)), y=np.ones(5), theta=np.ones(3))
    rc, doc, err = grad_json(capsys, "||y - X@theta||^2 wrt theta", "-d", str(tmp_path / "d.npz"),
                             "-s", "X=M,n", "-s", "y=M")
    assert rc == 1 and doc["error"]["kind"] == "data" and "M is 4" in err


def test_shape_option_agreeing_with_data_is_fine(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 3)), y=np.ones(4), theta=np.ones(3))
    rc, doc, err = grad_json(capsys, "||y - X@theta||^2 wrt theta", "-d", str(tmp_path / "d.npz"),
                             "-s", "X=M,3", "-s", "y=M")
    assert rc == 0, err


# ----------------------------------------------------------------------------- memory
def test_random_arrays_beyond_memory_are_refused_before_allocating(capsys):
    rc, doc, err = grad_json(capsys, "sum(X) wrt X", "-s", "X=3000000x3000000", "--random")
    assert rc == 1 and doc["error"]["kind"] == "data" and "72.0 TB" in err and "available" in err


def test_a_jacobian_beyond_memory_is_refused_before_loading(tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "x.npy", np.ones(1000))
    np.save(tmp_path / "A.npy", np.ones((1000, 1000)))
    inputs = 8 * (1000 + 1000 * 1000)
    monkeypatch.setattr(data, "available_memory", lambda: inputs + 8 * 1000 + 8 * 1000 * 1000 // 2)

    def no_load(self, allow_nonfinite=False):
        raise AssertionError("loaded before the memory check")
    monkeypatch.setattr(data.Source, "load", no_load)
    rc, doc, err = grad_json(capsys, "tanh(A@x) wrt x", "-d", f"x={tmp_path / 'x.npy'}",
                             "-d", f"A={tmp_path / 'A.npy'}")
    assert rc == 1 and doc["error"]["kind"] == "data" and "∂f/∂x 8.0 MB" in err


SLOW_LOAD = """
import sys, time
from gradcli import cli
from gradcli.numeric import data
data.CHUNK = 1 << 20
data.MAP_BYTES = 1 << 62  # read in chunks, not memory-mapped: the chunked reader is what is slowed
opened = data._open
class Slow:
    def __init__(self, fh): self.fh = fh
    def __getattr__(self, name): return getattr(self.fh, name)
    def __enter__(self): return self
    def __exit__(self, *exc): self.fh.close()
    def readinto(self, buf):
        time.sleep(0.05)
        return self.fh.readinto(buf)
data._open = lambda path: Slow(opened(path))
print("loading", flush=True)
sys.exit(cli.main(["grad", "sum(x^2) wrt x", "-d", "x=" + sys.argv[1]]))
"""


def test_ctrl_c_during_a_load_is_honoured_at_once(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    np.save(tmp_path / "big.npy", np.ones(8_000_000))  # 64 MB: 64 chunks of 50 ms
    proc = subprocess.Popen([sys.executable, "-c", SLOW_LOAD, str(tmp_path / "big.npy")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "loading"
    time.sleep(0.3)
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    # within a second of the signal (plus the interpreter's exit, on a shared machine)
    assert time.monotonic() - sent < 1.5 and proc.returncode != 0


def test_a_dimension_name_fixed_by_data_holds_for_symbols_without_data(tmp_path, capsys):
    # -s X=M,n -s y=M: X's data makes M = 4, so --random gives y four entries
    np.save(tmp_path / "X.npy", np.ones((4, 3)))
    rc, doc, err = grad_json(capsys, "||y - X@theta||^2 wrt theta", "-d", f"X={tmp_path / 'X.npy'}",
                             "-s", "X=M,n", "-s", "y=M", "--random")
    assert rc == 0, err
    assert doc["symbols"]["y"]["shape"] == [4] and doc["symbols"]["theta"]["shape"] == [3]


def test_a_float32_file_is_converted_chunk_by_chunk(tmp_path, monkeypatch):
    import tracemalloc

    n = 2_000_000
    np.save(tmp_path / "x.npy", np.arange(n, dtype=np.float32))
    monkeypatch.setattr(data, "CHUNK", 1 << 20)
    tracemalloc.start()
    try:
        x = load_npy(str(tmp_path / "x.npy"), "x")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.dtype == np.float64 and np.array_equal(x, np.arange(n, dtype=np.float32))
    assert peak < 8 * n + 3 * (1 << 20)  # the float64 array and one chunk, not the file's copy too


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_data_from_a_fifo_or_pipe_is_refused_without_blocking(tmp_path):
    """Data is read twice (header, then the arrays) and must be seekable: a FIFO with no writer
    would block open() forever, a pipe gives 'illegal seek'.  Both are refused at once."""
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        proc = subprocess.run([sys.executable, "-m", "gradcli", "grad", "sum(x^2) wrt x", "-d", f"x={path}"],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2 and "not a regular file" in proc.stderr and "Traceback" not in proc.stderr
