"""`--backend dask` from the command line, on dask's local scheduler and on a dask.distributed
cluster of two workers on loopback that the test starts itself (`dask scheduler`, `dask worker`,
as the README shows): the numbers equal the numpy backend's to 1e-10 relative, a worker killed
mid-run is survived with identical numbers, an unreachable scheduler is an error within 10 s,
data errors read as with numpy, and Ctrl-C during a compute ends with exit 130 and one line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("dask.array", reason="dask is the optional extra gradcli[dask]")

LOSSES = {"least squares": "||y - X@theta||^2 wrt theta",
          "logistic": "sum(log(1 + exp(-y*(X@theta)))) wrt theta"}


def gradcli(*args, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "gradcli", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def numbers(result) -> tuple:
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    return np.asarray(doc["value"]), {d["wrt"]: np.asarray(d["value"]) for d in doc["derivatives"]}


def relative_gap(a, b) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(3)
    m, n = 600, 5
    X = rng.normal(size=(m, n))
    theta = 0.3 * rng.normal(size=n)
    y = X @ theta + rng.normal(size=m)
    path = tmp_path_factory.mktemp("data") / "d.npz"
    np.savez(path, X=X, y=np.sign(y), theta=theta)
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask_cli(*args):
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.fixture(scope="module")
def cluster():
    """(address, [worker processes]): a scheduler and two single-threaded workers on loopback."""
    pytest.importorskip("distributed", reason="distributed is the optional extra gradcli[dask]")
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_dask_cli("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")]
    try:
        workers = [_dask_cli("worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                             "--host", "127.0.0.1") for _ in range(2)]
        procs += workers
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_local_dask_equals_numpy(loss, data):
    f0, d0 = numbers(gradcli("grad", LOSSES[loss], "-d", data, "--json"))
    f1, d1 = numbers(gradcli("grad", LOSSES[loss], "-d", data, "--json", "--backend", "dask", "--chunk-rows", "50"))
    assert relative_gap(f1, f0) <= 1e-10 and relative_gap(d1["theta"], d0["theta"]) <= 1e-10


def test_cluster_equals_numpy_and_survives_a_killed_worker(data, cluster):
    from distributed import Client

    address, workers = cluster
    runs = {}
    for (loss, text), chunk in zip(LOSSES.items(), ("40", "4")):
        f0, d0 = numbers(gradcli("grad", text, "-d", data, "--json"))
        runs[loss] = numbers(gradcli("grad", text, "-d", data, "--json", "--backend", "dask", "--scheduler", address,
                                     "--chunk-rows", chunk))
        f1, d1 = runs[loss]
        assert relative_gap(f1, f0) <= 1e-10 and relative_gap(d1["theta"], d0["theta"]) <= 1e-10, loss
    # the logistic loss again, in its 150 chunks, and a worker killed once both hold results
    args = ["grad", LOSSES["logistic"], "-d", data, "--json", "--backend", "dask", "--scheduler", address,
            "--chunk-rows", "4"]
    whole = runs["logistic"]
    run = subprocess.Popen([sys.executable, "-m", "gradcli", *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    with Client(address, timeout=30) as client:
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline and run.poll() is None:
            held = client.run_on_scheduler(lambda dask_scheduler: {
                w: len(ws.has_what) for w, ws in dask_scheduler.workers.items()})
            busy = [w for w, n in held.items() if n > 0]
            if len(busy) == 2 or (busy and sum(held.values()) > 20):
                victim = busy[0]
            time.sleep(0.02)
        assert victim is not None, "the run ended before a worker held any result"
        pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert run.poll() is not None
    f, d = numbers(subprocess.CompletedProcess(args, run.returncode, out, err))
    # the same numbers as the run no worker died in: to rounding, not to the bit — numpy's SIMD sums
    # depend on where an array sits in memory, so even two undisturbed cluster runs may differ there
    assert relative_gap(f, whole[0]) <= 1e-13 and relative_gap(d["theta"], whole[1]["theta"]) <= 1e-13
    assert any(w.poll() is not None for w in workers)


def test_an_unreachable_scheduler_is_an_error_within_10_s(data):
    start = time.monotonic()
    r = gradcli("grad", LOSSES["least squares"], "-d", data, "--backend", "dask", "--scheduler",
                f"tcp://127.0.0.1:{_free_port()}")
    assert r.returncode == 1 and time.monotonic() - start < 12
    assert r.stderr.count("\n") == 1 and "no dask scheduler answered" in r.stderr and "Traceback" not in r.stderr


def test_data_errors_read_as_with_numpy(tmp_path, data):
    """A wrong shape and non-finite values: the numpy backend's message and exit code."""
    X = np.ones((6, 3))
    X[2, 1] = np.nan
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.ones(5))
    np.save(tmp_path / "theta.npy", np.ones(3))
    for args in (["-d", f"X={tmp_path / 'X.npy'}", "-d", f"y={tmp_path / 'y.npy'}", "-d", f"theta={tmp_path / 'theta.npy'}"],
                 ["-d", f"X={tmp_path / 'X.npy'}", "-d", f"y={tmp_path / 'y.npy'}", "-d", "theta=2"]):
        base = gradcli("grad", LOSSES["least squares"], *args)
        dask = gradcli("grad", LOSSES["least squares"], *args, "--backend", "dask")
        assert base.returncode in (1, 2) and (dask.returncode, dask.stderr) == (base.returncode, base.stderr)
    np.save(tmp_path / "y.npy", np.ones(6))
    base = gradcli("grad", "sum(log(X@theta)) wrt theta", "-d", f"X={tmp_path / 'X.npy'}", "-d", "theta=1", "--random")
    dask = gradcli("grad", "sum(log(X@theta)) wrt theta", "-d", f"X={tmp_path / 'X.npy'}", "-d", "theta=1", "--random",
                   "--backend", "dask")
    assert base.returncode == 1 and (dask.returncode, dask.stderr) == (base.returncode, base.stderr)


def test_math_errors_read_as_with_numpy(data):
    text = "sum(log(X@theta)) wrt theta"
    base = gradcli("grad", text, "-d", data)
    dask = gradcli("grad", text, "-d", data, "--backend", "dask", "--chunk-rows", "7")
    assert base.returncode == 1 and "log of a value that is not positive" in base.stderr
    assert (dask.returncode, dask.stderr) == (base.returncode, base.stderr)


def test_without_dask_the_option_names_the_extra(data, tmp_path):
    """dask made unimportable: --backend dask is a usage error (exit 2) naming gradcli[dask]."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['dask'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = gradcli("grad", LOSSES["least squares"], "-d", data, "--backend", "dask", env=env)
    assert r.returncode == 2 and "pip install 'gradcli[dask]'" in r.stderr and "Traceback" not in r.stderr
    assert gradcli("grad", LOSSES["least squares"], "-d", data, env=env).returncode == 0


@pytest.mark.parametrize("where", ["local", "cluster"])
def test_ctrl_c_during_a_dask_compute_exits_130_with_one_line(where, tmp_path, request):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "big.npz", X=rng.normal(size=(4000, 3)), y=np.ones(4000), theta=np.zeros(3))
    scheduler = ["--scheduler", request.getfixturevalue("cluster")[0]] if where == "cluster" else []
    run = subprocess.Popen([sys.executable, "-m", "gradcli", "hess", LOSSES["logistic"], "-d", str(tmp_path / "big.npz"),
                            "--backend", "dask", "--chunk-rows", "1", *scheduler], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)  # imports done, the graph computing (it takes far longer than this)
    assert run.poll() is None
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130 and err == "error: interrupted\n", err
