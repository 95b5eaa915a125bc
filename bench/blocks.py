"""`--part blocks`: gradcli's blocked evaluation vs hand numpy on tall data; `--part ooc`: the
gradients of an X of N GB on disk (memory-mapped, read block by block) vs one sequential read.

Page cache: after writing X the file is fsync'ed and dropped with posix_fadvise(DONTNEED); the
sequential read and each gradcli run start after another DONTNEED, so each reads from disk
(as far as the kernel honours the advice).  Peak anonymous memory is sampled from the child's
/proc/PID/status RssAnon every 20 ms (maxrss would count the mapped file's pages)."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

LOSSES = {"least squares": ("sum((X@w - y)^2) wrt w",
                            lambda X, y, w: -2 * (X.T @ (y - X @ w))),
          "logistic": ("sum(softplus(X@w) - y*(X@w)) wrt w",
                       lambda X, y, w: X.T @ (0.5 * (np.tanh(0.5 * (X @ w)) + 1.0) - y))}


def hand_blocked(loss: str, X, y, w, block_bytes: int):
    """The ceiling: the same gradient written by hand over row blocks of `block_bytes` of X,
    Xθ and Xᵀr computed while the block is in cache, every temporary preallocated."""
    m, n = X.shape
    rows = max(16, block_bytes // (8 * n))
    g, t, r = np.zeros(n), np.empty(n), np.empty(rows)
    for start in range(0, m, rows):
        stop = min(m, start + rows)
        Xb, rb = X[start:stop], r[:stop - start]
        np.matmul(Xb, w, out=rb)
        if loss == "logistic":  # σ(Xθ) − y
            np.multiply(rb, 0.5, out=rb)
            np.tanh(rb, out=rb)
            np.add(rb, 1.0, out=rb)
            np.multiply(rb, 0.5, out=rb)
        np.subtract(rb, y[start:stop], out=rb)
        np.matmul(Xb.T, rb, out=t)
        g += t
    return 2 * g if loss == "least squares" else g


def blocks_table(quick: bool, repeats: int) -> None:
    """Interleaved runs in one process (hand, hand in blocks, gradcli's default, gradcli whole,
    gradcli in blocks, in a shuffled order each round), medians: fair on a machine other work
    shares."""
    import gradcli
    import gradcli.numeric.blocked as blocked

    sizes = [(20000, 50), (4000, 100), (2000, 50)] if quick else [(1000000, 50), (200000, 100), (20000, 500)]
    default = blocked.MIN_BYTES
    size = blocked.block_bytes()
    print(f"## Blocked evaluation (median ms of {repeats} interleaved runs; × = / hand numpy, same run; "
          f"blocks of {size >> 10} KB of X)\n")
    print("| loss | X | hand numpy | hand numpy in row blocks | × | gradcli (default) | × "
          "| gradcli whole | × | gradcli in row blocks | × |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m, n in sizes:
        rng = np.random.default_rng(0)
        X, y, w = rng.normal(size=(m, n)), (rng.random(m) < 0.5) * 1.0, rng.normal(size=n) / n
        for name, (formula, hand) in LOSSES.items():
            f = gradcli.analyze(formula, shapes={"X": (m, n), "y": (m,), "w": (n,)}).compile()

            def ours(min_bytes):
                blocked.MIN_BYTES = min_bytes
                try:
                    return f(X=X, y=y, w=w)[1]["w"]
                finally:
                    blocked.MIN_BYTES = default

            runs = {"hand": lambda: hand(X, y, w),
                    "hand blocks": lambda: hand_blocked(name, X, y, w, size),
                    "default": lambda: ours(default), "whole": lambda: ours(None),
                    "blocks": lambda: ours(0)}
            for fn in runs.values():
                assert np.allclose(fn(), hand(X, y, w), rtol=1e-10), name
            t: dict = {k: [] for k in runs}
            order = list(runs)
            shuffle = random.Random(0).shuffle
            for _ in range(repeats):
                shuffle(order)  # each run follows each other as often: after a threaded BLAS call
                for k in order:  # OpenBLAS's threads spin a while, slowing whatever comes next
                    fn = runs[k]
                    s = time.perf_counter()
                    fn()
                    t[k].append(time.perf_counter() - s)
            ms = {k: statistics.median(v) * 1000 for k, v in t.items()}
            cells = " | ".join(f"{ms[k]:.1f} | {ms[k] / ms['hand']:.2f}"
                               for k in ("hand blocks", "default", "whole", "blocks"))
            print(f"| {name} | {m}×{n} | {ms['hand']:.1f} | {cells} |", flush=True)
    print()


def _drop(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _write(path: str, m: int, n: int) -> None:
    header = {"descr": "<f8", "fortran_order": False, "shape": (m, n)}
    rng = np.random.default_rng(1)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_2_0(fh, header)
        rows = max(1, (64 << 20) // (8 * n))
        for start in range(0, m, rows):
            fh.write(rng.normal(size=(min(rows, m - start), n)).tobytes())


def _sequential_read(path: str) -> float:
    _drop(path)
    s = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(64 << 20)
        while fh.readinto(buf):
            pass
    return time.perf_counter() - s


def _child(cmd: list[str]) -> tuple[float, int]:
    """(seconds, peak RssAnon in bytes) of a child process."""
    s = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.02)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.read().decode())
    return time.perf_counter() - s, peak


def ooc_table(size_gb: float, n: int = 50, rounds: int = 1) -> None:
    """`rounds` rounds of (sequential read, least squares, logistic), each from a dropped page
    cache: the table gives each run's median and the median of the per-round ratios (on a shared
    disk the read itself varies between rounds)."""
    m = max(2, int(size_gb * (1 << 30) // (8 * n)))
    with tempfile.TemporaryDirectory(dir=os.environ.get("GRADCLI_BENCH_DIR")) as tmp:
        X = os.path.join(tmp, "X.npy")
        _write(X, m, n)
        np.save(os.path.join(tmp, "y.npy"), (np.random.default_rng(2).random(m) < 0.5) * 1.0)
        np.save(os.path.join(tmp, "w.npy"), np.full(n, 0.01))
        secs: dict = {"read": [], **{name: [] for name in LOSSES}}
        peaks: dict = {name: 0 for name in LOSSES}
        for _ in range(rounds):
            secs["read"].append(_sequential_read(X))
            for name, (formula, _) in LOSSES.items():
                _drop(X)
                cmd = [sys.executable, "-m", "gradcli", "grad", formula, "--json", "-d", f"X={X}",
                       "-d", f"y={os.path.join(tmp, 'y.npy')}", "-d", f"w={os.path.join(tmp, 'w.npy')}"]
                t, peak = _child(cmd)
                secs[name].append(t)
                peaks[name] = max(peaks[name], peak)
        print(f"## Out of core: X {m}×{n} float64, {os.path.getsize(X) / 2**30:.2f} GB on disk "
              f"({rounds} round{'s' if rounds > 1 else ''})\n")
        print("| run | seconds | × read | peak RssAnon MB |")
        print("|---|---:|---:|---:|")
        print(f"| one sequential read (64 MB chunks) | {statistics.median(secs['read']):.2f} | 1.00 | – |")
        for name in LOSSES:
            ratio = statistics.median(t / r for t, r in zip(secs[name], secs["read"]))
            print(f"| gradcli {name} gradient | {statistics.median(secs[name]):.2f} | {ratio:.2f} "
                  f"| {peaks[name] / 2**20:.0f} |")
        print(f"\nagreement with an in-memory run on the first rows: {_slice_check(tmp, X, m, n)}")
    print()


def _slice_check(tmp: str, X: str, m: int, n: int) -> str:
    """gradcli on a slice of X (the same code path: the data memory-mapped and blocked) against
    hand numpy on that slice in memory: the largest relative difference of the gradients."""
    import json

    rows = min(m, (64 << 20) // (8 * n))
    part = np.load(X, mmap_mode="r")[:rows]
    y = np.load(os.path.join(tmp, "y.npy"))[:rows]
    w = np.load(os.path.join(tmp, "w.npy"))
    np.save(os.path.join(tmp, "Xs.npy"), part)
    np.save(os.path.join(tmp, "ys.npy"), y)
    worst = 0.0
    for formula, hand in LOSSES.values():
        out = subprocess.run([sys.executable, "-m", "gradcli", "grad", formula, "--json",
                              "-d", f"X={os.path.join(tmp, 'Xs.npy')}", "-d", f"y={os.path.join(tmp, 'ys.npy')}",
                              "-d", f"w={os.path.join(tmp, 'w.npy')}"], capture_output=True, text=True, check=True)
        got = np.array(json.loads(out.stdout)["derivatives"][0]["value"])
        want = hand(np.asarray(part), y, w)
        worst = max(worst, float(np.max(np.abs(got - want)) / np.max(np.abs(want))))
    return f"{rows} rows, max relative difference {worst:.1e}"
