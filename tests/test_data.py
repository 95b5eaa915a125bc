"""Loading arrays safely: pickle refused, headers checked before allocation, dtypes validated."""

import json
import pickle

import numpy as np
import pytest

from gradcli.cli import main
from gradcli.data import load_npy, load_npz, parse_data_option
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


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_members_read_directly_equal_numpys_own_load(tmp_path, save):
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


def test_nan_input_warns_and_still_computes(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.array([1.0, np.nan]))
    rc, doc, err = grad_json(capsys, "x'@x wrt x", "-d", f"x={tmp_path / 'x.npy'}")
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
