"""Out-of-core inputs (sources.py, data.py): a folder of row shards, a memory-mapped .npy read
block by block, and their faults (a missing shard, a shard of the wrong shape or dtype, a file
cut short): a data error, exit 1, nothing written to -o."""

import os
import subprocess
import sys

import numpy as np
import pytest

import gradcli
from gradcli.numeric import blocked

LSQ = "sum((X@w - y)^2) wrt w"


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(3)
    X, y, w = rng.normal(size=(10, 3)), rng.normal(size=10), rng.normal(size=3)
    (tmp_path / "Xs").mkdir()
    for i, (a, b) in enumerate([(0, 4), (4, 7), (7, 10)]):
        np.save(tmp_path / "Xs" / f"X-{i:03d}.npy", X[a:b])
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "w.npy", w)
    return tmp_path, X, y, w


def _run(tmp_path, *extra):
    cmd = [sys.executable, "-m", "gradcli", "grad", LSQ, "-d", f"X={tmp_path / 'Xs'}",
           "-d", f"y={tmp_path / 'y.npy'}", "-d", f"w={tmp_path / 'w.npy'}", "--json", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)


def test_shards_are_one_array(data):
    import json

    tmp_path, X, y, w = data
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    text = json.dumps(out)
    grad = -2 * X.T @ (y - X @ w)
    assert all(f"{g:.6g}"[:6] in text for g in grad), text


@pytest.mark.parametrize("fault, message", [
    ("missing", "X-001.npy is missing"),
    ("columns", "do not match the first shard"),
    ("dtype", "do not match the first shard"),
    ("truncated", "truncated"),
])
def test_shard_faults_are_data_errors(data, fault, message):
    tmp_path, X, y, w = data
    shard = tmp_path / "Xs" / "X-001.npy"
    if fault == "missing":
        shard.unlink()
    elif fault == "columns":
        np.save(shard, np.ones((3, 4)))
    elif fault == "dtype":
        np.save(shard, np.ones((3, 3), dtype=np.float32))
    else:
        os.truncate(shard, os.path.getsize(shard) - 8)
    out = tmp_path / "out"
    proc = _run(tmp_path, "-o", str(out))
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_memory_mapped_npy_is_read_in_blocks(tmp_path):
    rng = np.random.default_rng(4)
    X, y, w = rng.normal(size=(50, 4)), rng.normal(size=50), rng.normal(size=4)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    problem = gradcli.analyze(LSQ, shapes={"X": (50, 4), "y": (50,), "w": (4,)})
    compiled = problem.compile()
    seen = []
    out = blocked.evaluate(compiled.program, {"X": Xm, "y": y, "w": w}, {"w"}, block_rows=7,
                           progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_allclose(out[1], -2 * X.T @ (y - X @ w), rtol=1e-12)
    assert seen[-1] == (50, 50) and len(seen) == 8  # progress: rows done of the total


def test_memory_mapped_file_cut_short_is_a_data_error(tmp_path):
    X = np.ones((40, 4))
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    os.truncate(tmp_path / "X.npy", os.path.getsize(tmp_path / "X.npy") - 8 * 4 * 10)
    problem = gradcli.analyze(LSQ, shapes={"X": (40, 4), "y": (40,), "w": (4,)})
    compiled = problem.compile()
    with pytest.raises(gradcli.GradcliError if hasattr(gradcli, "GradcliError") else Exception) as err:
        blocked.evaluate(compiled.program, {"X": Xm, "y": np.ones(40), "w": np.ones(4)}, {"w"}, block_rows=8)
    assert "truncated" in str(err.value)


def test_zarr_without_the_extra_names_it(tmp_path):
    """zarr hidden (as where the extra is not installed): a usage error naming gradcli[dask]."""
    hide = ("import sys; sys.modules['zarr'] = None; from gradcli.process import main; "
            "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", hide, "grad", LSQ, "-d", "X=data.zarr"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "gradcli[dask]" in proc.stderr, proc.stderr


@pytest.mark.parametrize("formula, note", [
    ("sum((X@w - y)^2) wrt w", "evaluated in blocks of rows (10 samples), the data read once"),
    ("log(sum(exp(X@w))) + sum(y) wrt w", "the data read 2 times"),
    ("sum(exp(X@X'))/100 + sum(y) + w'@w wrt w", "evaluated whole: a 10×10 product pairs samples"),
])
def test_json_says_how_the_data_was_evaluated(data, formula, note):
    import json

    tmp_path, X, y, w = data
    proc = subprocess.run([sys.executable, "-m", "gradcli", "grad", formula, "-d", f"X={tmp_path / 'Xs'}",
                           "-d", f"y={tmp_path / 'y.npy'}", "-d", f"w={tmp_path / 'w.npy'}", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    notes = [n["message"] for n in doc["notes"] if n["kind"] == "evaluation"]
    assert len(notes) == 1 and note in notes[0]
    whole = gradcli.analyze(formula, shapes={"X": X.shape, "y": y.shape, "w": w.shape}).compile()
    _, grads = whole(X=X, y=y, w=w)
    np.testing.assert_allclose(doc["derivatives"][0]["value"], grads["w"], rtol=1e-9)


def test_big_npy_loads_as_a_read_only_map(tmp_path, monkeypatch):
    """Above data.MAP_BYTES a .npy is mapped, not read; below it is read as before."""
    from gradcli.numeric import data

    np.save(tmp_path / "X.npy", np.arange(12.0).reshape(6, 2))
    src = data.open_npy(str(tmp_path / "X.npy"), "X")
    assert not isinstance(src.load(), np.memmap)
    monkeypatch.setattr(data, "MAP_BYTES", 8)
    mapped = src.load()
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, np.arange(12.0).reshape(6, 2))


def test_zarr_array_is_read_in_blocks(tmp_path):
    zarr = pytest.importorskip("zarr")
    import json

    rng = np.random.default_rng(5)
    X, y, w = rng.normal(size=(30, 3)), rng.normal(size=30), rng.normal(size=3)
    z = zarr.open(str(tmp_path / "X.zarr"), mode="w", shape=X.shape, chunks=(7, 3), dtype="f8")
    z[:] = X
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "w.npy", w)
    proc = subprocess.run([sys.executable, "-m", "gradcli", "grad", LSQ, "-d", f"X={tmp_path / 'X.zarr'}",
                           "-d", f"y={tmp_path / 'y.npy'}", "-d", f"w={tmp_path / 'w.npy'}", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    np.testing.assert_allclose(doc["derivatives"][0]["value"], -2 * X.T @ (y - X @ w), rtol=1e-12)
    assert "evaluated in blocks" in doc["notes"][-1]["message"]
    # a chunk gone: a data error, exit 1
    chunk = next(p for p in (tmp_path / "X.zarr").rglob("*") if p.is_file() and "zarr.json" not in p.name
                 and ".z" not in p.name)
    chunk.write_bytes(b"garbage")
    proc = subprocess.run([sys.executable, "-m", "gradcli", "grad", LSQ, "-d", f"X={tmp_path / 'X.zarr'}",
                           "-d", f"y={tmp_path / 'y.npy'}", "-d", f"w={tmp_path / 'w.npy'}"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "cannot read rows" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("view", [slice(5, 45), slice(0, 50), slice(3, 50, 2)])
def test_views_of_a_map_read_their_own_rows(tmp_path, view):
    """A map of the whole file is read with pread; a view of one (rows 5…44, every other row)
    through the map: each gives its own rows."""
    rng = np.random.default_rng(6)
    X, w = rng.normal(size=(50, 4)), rng.normal(size=4)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")[view]
    m = Xm.shape[0]
    y = rng.normal(size=m)
    compiled = gradcli.analyze(LSQ, shapes={"X": (m, 4), "y": (m,), "w": (4,)}).compile()
    out = blocked.evaluate(compiled.program, {"X": Xm, "y": y, "w": w}, {"w"}, block_rows=6)
    Xv = X[view]
    np.testing.assert_allclose(out[1], -2 * Xv.T @ (y - Xv @ w), rtol=1e-12)


def test_a_big_compressed_npz_member_is_read_whole_not_mapped(tmp_path, capsys):
    """Only a stored member lies in the file as it is in memory; a compressed one of memory-map
    size must be decompressed, not mapped (it used to reach the map and fail inside gradcli)."""
    from gradcli.numeric import data
    from gradcli.cli import main

    rng = np.random.default_rng(0)
    X, y, w = rng.normal(size=(5000, 10)), rng.normal(size=5000), rng.normal(size=10)
    np.savez_compressed(tmp_path / "c.npz", X=X, y=y, w=w)
    old = data.MAP_BYTES
    data.MAP_BYTES = 1024  # X (400 kB) is of memory-map size
    try:
        rc = main(["grad", "--json", "||y - X@w||^2 wrt w", "-d", str(tmp_path / "c.npz")])
    finally:
        data.MAP_BYTES = old
    out, err = capsys.readouterr()
    assert rc == 0, err
    import json

    got = np.array(json.loads(out)["derivatives"][0]["value"])
    np.testing.assert_allclose(got, -2 * X.T @ (y - X @ w), rtol=1e-10)
