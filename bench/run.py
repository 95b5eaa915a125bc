"""Benchmarks: gradcli against hand-written numpy (and jax / autograd / torch when installed).

    python -m bench            # full sizes
    python -m bench --quick    # small sizes, under two minutes

Prints markdown tables: medians over interleaved repeats (each contender timed in turn, so load
on the machine hits all alike), the ratio to hand-written numpy measured in the same run, and
peak memory (tracemalloc, which sees numpy's allocations).  Speed lives here, never in tests.
"""

from __future__ import annotations

import argparse
import gc
import os

# Peers' thread pools must not spin between their own calls and steal the cores from the
# contender timed next (seen: hand numpy 20× slower right after torch with the default policy).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import platform
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gradcli  # noqa: E402
from bench.peers import available as _importable  # noqa: E402


def timeit(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def peak_mb(fn) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2 ** 20


def interleaved(contenders: dict, repeats: int) -> dict:
    """{name: [seconds]}: one run of each contender per round, rounds repeated."""
    times: dict = {k: [] for k in contenders}
    for fn in contenders.values():  # warm-up (compilation, caches, BLAS threads)
        fn()
    for _ in range(repeats):
        for name, fn in contenders.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


# ----------------------------------------------------------------------------- workloads
def workloads(quick: bool):
    rng = np.random.default_rng(0)
    s = 0.1 if quick else 1.0

    def n(x):
        return max(4, int(x * s))

    # least squares
    X, y, th = rng.normal(size=(n(20000), n(500))), rng.normal(size=n(20000)), rng.normal(size=n(500))

    def ls_hand():
        r = X @ th - y
        return r @ r, 2.0 * (X.T @ r)

    yield ("least squares ‖y − Xθ‖², X %d×%d" % X.shape, "||y - X@theta||^2 wrt theta",
           dict(X=X, y=y, theta=th), ls_hand, False)

    # logistic + ridge, labels ±1
    yl = np.where(rng.normal(size=X.shape[0]) > 0, 1.0, -1.0)
    w = 0.01 * rng.normal(size=X.shape[1])
    lam = np.array(0.1)

    def logistic_hand():
        z = -yl * (X @ w)
        f = np.sum(np.logaddexp(0.0, z)) + lam * (w @ w)
        s_ = 0.5 * (np.tanh(0.5 * z) + 1.0)
        return f, -(X.T @ (s_ * yl)) + 2.0 * lam * w

    yield ("logistic + ridge, X %d×%d" % X.shape, "sum(softplus(-y*(X@w))) + lam*||w||^2 wrt w",
           dict(X=X, y=yl, w=w, lam=lam), logistic_hand, False)

    # 2-layer tanh net
    B, d_in, h, out = n(512), n(4096) if not quick else 256, 64, 10
    Xn, W1, W2, Y = (rng.normal(size=(B, d_in)), 0.01 * rng.normal(size=(d_in, h)),
                     0.1 * rng.normal(size=(h, out)), rng.normal(size=(B, out)))

    def net_hand():
        H = np.tanh(Xn @ W1)
        R = H @ W2 - Y
        f = 0.5 * np.sum(R * R)
        gW2 = H.T @ R
        gW1 = Xn.T @ ((R @ W2.T) * (1.0 - H * H))
        return f, gW1, gW2

    yield ("2-layer tanh net, X %d×%d, hidden %d" % (B, d_in, h), "0.5*||tanh(X@W1)@W2 - Y||_F^2 wrt W1, W2",
           dict(X=Xn, W1=W1, W2=W2, Y=Y), net_hand, False)

    # matrix factorisation
    m_, r_ = n(3000), 64 if not quick else 16
    M, U, V = rng.normal(size=(m_, m_)), rng.normal(size=(m_, r_)), rng.normal(size=(m_, r_))

    def mf_hand():
        R = M - U @ V.T
        return np.sum(R * R), -2.0 * (R @ V), -2.0 * (R.T @ U)

    yield ("matrix factorisation ‖M − UVᵀ‖², %d×%d rank %d" % (m_, m_, r_), "||M - U@V'||_F^2 wrt U, V",
           dict(M=M, U=U, V=V), mf_hand, False)

    # logdet + trace
    k = n(800)
    A_, B_ = rng.normal(size=(k, k)), rng.normal(size=(k, k))
    Xs = rng.normal(size=(k, k)) + k ** 0.5 * np.eye(k) * 3

    def ld_hand():
        sign, ld = np.linalg.slogdet(Xs)
        return ld + np.trace(A_ @ Xs @ B_), np.linalg.inv(Xs).T + A_.T @ B_.T

    yield ("logdet(X) + tr(AXB), %d×%d" % (k, k), "logdet(X) + tr(A@X@B) wrt X", dict(X=Xs, A=A_, B=B_),
           ld_hand, False)

    # logistic Hessian
    Xh = rng.normal(size=(n(5000), n(300)))
    yh = np.where(rng.normal(size=Xh.shape[0]) > 0, 1.0, -1.0)
    wh = 0.01 * rng.normal(size=Xh.shape[1])

    def hess_hand():
        z = -yh * (Xh @ wh)
        s_ = 0.5 * (np.tanh(0.5 * z) + 1.0)
        return np.sum(np.logaddexp(0.0, z)), (Xh.T * (s_ * (1 - s_))) @ Xh

    yield ("Hessian of logistic loss, X %d×%d" % Xh.shape, "sum(softplus(-y*(X@w))) wrt w",
           dict(X=Xh, y=yh, w=wh), hess_hand, True)

    # Jacobian of tanh(W x + b) wrt x
    q = n(1000)
    Wj, xj, bj = rng.normal(size=(q, q)) / q ** 0.5, rng.normal(size=q), rng.normal(size=q)

    def jac_hand():
        t = np.tanh(Wj @ xj + bj)
        return t, (1.0 - t * t)[:, None] * Wj

    yield ("Jacobian of tanh(Wx + b) wrt x, W %d×%d" % (q, q), "tanh(W@x + b) wrt x where b: (n)",
           dict(W=Wj, x=xj, b=bj), jac_hand, False)

    # wrt W the Jacobian is a q×q×q tensor: 8 GB at q = 1000 (hand numpy and gradcli both hold
    # one, beside the peers), so the largest layer that leaves room: 512 MB at 400
    r = 20 if quick else 400
    Wr, xr, br = rng.normal(size=(r, r)) / r ** 0.5, rng.normal(size=r), rng.normal(size=r)

    def jacw_hand():
        t = np.tanh(Wr @ xr + br)
        J = np.zeros((r, r, r))
        J[np.arange(r), np.arange(r), :] = (1.0 - t * t)[:, None] * xr[None, :]
        return t, J

    yield ("Jacobian of tanh(Wx + b) wrt W, W %d×%d (a %d³ tensor)" % (r, r, r),
           "tanh(W@x + b) wrt W where b: (n)", dict(W=Wr, x=xr, b=br), jacw_hand, False)


def gradcli_fn(formula: str, arrays: dict, hessian: bool):
    p = gradcli.analyze(formula, data_shapes={k: np.shape(v) for k, v in arrays.items()})
    compiled = p.compile(hessian=hessian)
    return lambda: compiled.evaluate(arrays)


def emitted_fn(formula: str, arrays: dict, hessian: bool):
    """The module `--emit numpy` writes for the formula at these shapes, imported as a user would."""
    import importlib.util
    import tempfile

    from gradcli.numeric.emit import emit_module

    p = gradcli.analyze(formula, data_shapes={k: np.shape(v) for k, v in arrays.items()})
    source = emit_module(p, p.hessians() if hessian else p.derivatives(), {}, hessian, "numpy")
    path = Path(tempfile.mkdtemp(prefix="gradcli-emitted-")) / "emitted.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("emitted", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shutil.rmtree(path.parent, ignore_errors=True)
    fn = module.value_and_hess if hessian else module.value_and_grad
    return lambda: fn(**arrays)


def check_same(a, b) -> bool:
    fa, da = a
    fb = b[0]
    rest = list(b[1:])
    return np.allclose(fa, fb) and all(np.allclose(x, y) for x, y in zip(da.values(), rest))


# ----------------------------------------------------------------------------- symbolic scaling
def chain(k: int) -> str:
    inner = "x"
    for i in range(1, k + 1):
        inner = f"tanh(W{i}@{inner})"
    return f"sum({inner}) wrt " + ", ".join(f"W{i}" for i in range(1, k + 1))


def symbolic_rows(ks, repeats):
    from gradcli.language.expr import topological
    from gradcli.language.render import render_with_bindings

    rows = []
    for k in ks:
        text = chain(k)

        def run():
            p = gradcli.analyze(text)
            derivs = p.derivatives()
            return p, derivs

        ts = timeit(run, repeats)
        p, derivs = run()
        nodes = len(topological([d.expr for d in derivs]))
        bindings, texts = render_with_bindings([d.expr for d in derivs], "unicode")
        chars = sum(len(t) for t in texts) + sum(len(b) for _, b in bindings)
        rows.append((k, statistics.median(ts) * 1000, nodes, chars))
    return rows


# ----------------------------------------------------------------------------- cold start
def cold_start(repeats: int):
    exe = shutil.which("gradcli")
    cmds = {"python -c pass": [sys.executable, "-c", "pass"],
            "python -c \"import numpy\"": [sys.executable, "-c", "import numpy"]}
    if exe:
        cmds["gradcli shape \"x'@A@x wrt x\""] = [exe, "shape", "x'@A@x wrt x"]
        cmds["gradcli grad \"||y - X@theta||^2 wrt theta\""] = [exe, "grad", "||y - X@theta||^2 wrt theta"]
    out = {}
    for _ in range(2):  # warm the file cache and the parser cache
        for c in cmds.values():
            subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times: dict = {k: [] for k in cmds}
    for _ in range(repeats):
        for name, c in cmds.items():
            t = time.perf_counter()
            subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t)
    for name, ts in times.items():
        out[name] = statistics.median(ts) * 1000
    return out


WHOLE_NUMPY = """
import sys, numpy as np
d = np.load(sys.argv[1]); X, y, theta = d["X"], d["y"], d["theta"]
r = X @ theta - y
np.save(sys.argv[2] + "/f.npy", r @ r); np.save(sys.argv[2] + "/d_theta.npy", 2.0 * (X.T @ r))
"""
WHOLE_JAX = """
import sys, numpy as np, jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
d = np.load(sys.argv[1]); X, y, theta = (jnp.asarray(d[k]) for k in ("X", "y", "theta"))
f, g = jax.value_and_grad(lambda t: jnp.sum((y - X @ t) ** 2))(theta)
np.save(sys.argv[2] + "/f.npy", np.asarray(f)); np.save(sys.argv[2] + "/d_theta.npy", np.asarray(g))
"""
WHOLE_TORCH = """
import sys, numpy as np, torch
d = np.load(sys.argv[1]); X, y = torch.as_tensor(d["X"]), torch.as_tensor(d["y"])
theta = torch.as_tensor(d["theta"]).requires_grad_(True)
f = torch.sum((y - X @ theta) ** 2); (g,) = torch.autograd.grad(f, theta)
np.save(sys.argv[2] + "/f.npy", f.detach().numpy()); np.save(sys.argv[2] + "/d_theta.npy", g.numpy())
"""


def whole_process(quick: bool, repeats: int) -> dict:
    """Load an .npz, compute the least-squares gradient, save .npy files: whole-process medians."""
    import tempfile

    rng = np.random.default_rng(1)
    m, n = (2000, 50) if quick else (20000, 500)
    tmp = Path(tempfile.mkdtemp(prefix="gradcli-bench-"))
    data = tmp / "ls.npz"
    np.savez(data, X=rng.normal(size=(m, n)), y=rng.normal(size=m), theta=rng.normal(size=n))
    exe = shutil.which("gradcli")
    cmds = {"numpy script": [sys.executable, "-c", WHOLE_NUMPY, str(data), str(tmp)]}
    if exe:
        cmds["gradcli grad -d -o"] = [exe, "grad", "||y - X@theta||^2 wrt theta", "-d", str(data), "-o", str(tmp)]
    if _importable("jax"):
        cmds["jax script"] = [sys.executable, "-c", WHOLE_JAX, str(data), str(tmp)]
    if _importable("torch"):
        cmds["torch script"] = [sys.executable, "-c", WHOLE_TORCH, str(data), str(tmp)]
    times: dict = {k: [] for k in cmds}
    for c in cmds.values():
        subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    for _ in range(repeats):
        for name, c in cmds.items():
            t = time.perf_counter()
            subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - t)
    shutil.rmtree(tmp, ignore_errors=True)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}, (m, n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--only", default="", help="numeric workloads whose name contains this text")
    ap.add_argument("--no-peers", action="store_true", help="numeric: hand numpy, gradcli and the emitted "
                                                              "module only (no jax / autograd / torch)")
    ap.add_argument("--part", choices=["all", "numeric", "symbolic", "process", "sizes", "blocks", "hvp", "ooc",
                                           "textbook"],
                    default="all",
                    help="numeric derivatives, symbolic scaling, whole-process timings, or big formulas "
                         "and check files only")
    ap.add_argument("--size-gb", type=float, default=1.0, help="--part ooc: the size of X on disk")
    args = ap.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 9)
    print(f"gradcli {gradcli.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores"
          f"{' (quick sizes)' if args.quick else ''}\n")
    if args.part in ("all", "numeric"):
        numeric_table(args.quick, repeats, args.only, peers=not args.no_peers)
    if args.part in ("all", "symbolic"):
        symbolic_table(args.quick, repeats)
    if args.part in ("all", "process"):
        process_tables(args.quick)
    if args.part in ("all", "sizes"):
        sizes_table(args.quick)
    if args.part in ("all", "blocks"):
        from bench.blocks import blocks_table

        blocks_table(args.quick, repeats)
    if args.part in ("all", "hvp"):
        from bench.hvp import hvp_table

        hvp_table(args.quick, repeats)
    if args.part in ("all", "textbook"):
        from bench.textbook import textbook_table

        textbook_table()
    if args.part == "ooc":  # never part of "all": it writes N GB to disk
        from bench.blocks import ooc_table

        ooc_table(args.size_gb, rounds=args.repeats or 1)
    return 0


def numeric_table(quick: bool, repeats: int, only: str = "", peers: bool = True) -> None:
    """Each workload: hand numpy, gradcli's evaluator, the module `--emit numpy` writes (imported
    from a file), and the peers installed, timed in interleaved rounds; peak memory of each."""
    from bench.peers import LOSSES, peer_functions

    peer_names = [p for p in ("jax", "autograd", "torch") if peers and _importable(p)]
    print("## Numeric derivatives (median ms; × = ratio to hand-written numpy in the same run)\n")
    print("| workload | hand numpy | gradcli | emitted | " + "".join(p + " | " for p in peer_names) +
          "peak MB numpy | peak MB gradcli | peak MB emitted |")
    print("|---|---:|---:|---:|" + "---:|" * len(peer_names) + "---:|---:|---:|")
    for name, formula, arrays, hand, hessian in workloads(quick):
        if only not in name:
            continue
        g = gradcli_fn(formula, arrays, hessian)
        e = emitted_fn(formula, arrays, hessian)
        assert check_same(g(), hand()), f"gradcli and hand numpy disagree on {name}"
        assert check_same(e(), hand()), f"the emitted module and hand numpy disagree on {name}"
        key = next(k for k in LOSSES if name.startswith(k))
        mode = "hessian" if hessian else ("jacobian" if key.startswith("Jacobian") else "grad")
        contenders = {"hand": hand, "gradcli": g, "emitted": e,
                      **(peer_functions(key, arrays, mode) if peer_names else {})}
        times = interleaved(contenders, repeats)
        th = statistics.median(times["hand"])

        def cell(k):
            if k not in times:
                return "–"
            t = statistics.median(times[k])
            return f"{t * 1000:.2f} ({t / th:.2f}×)"
        mh, mg, me = peak_mb(hand), peak_mb(g), peak_mb(e)
        print(f"| {name} | {th * 1000:.2f} | {cell('gradcli')} | {cell('emitted')} | " +
              "".join(cell(p) + " | " for p in peer_names) +
              f"{mh:.1f} | {mg:.1f} ({mg / mh:.2f}×) | {me:.1f} ({me / mh:.2f}×) |", flush=True)


def symbolic_table(quick: bool, repeats: int) -> None:
    print("\n## Symbolic: `grad` of a k-layer chain sum(tanh(W_k … tanh(W_1 x))) wrt all W (in-process)\n")
    print("| k | median ms | DAG nodes | printed chars |")
    print("|---:|---:|---:|---:|")
    ks = [1, 2, 4, 8, 16, 32] + ([] if quick else [64])
    for k, ms, nodes, chars in symbolic_rows(ks, repeats):
        print(f"| {k} | {ms:.2f} | {nodes} | {chars} |", flush=True)



def process_tables(quick: bool) -> None:
    results, (m, n) = whole_process(quick, 5 if quick else 10)
    print(f"\n## Whole process: load .npz (X {m}×{n}), least-squares gradient, save .npy (median ms)\n")
    print("| command | median ms | ratio to the numpy script |")
    print("|---|---:|---:|")
    base = results["numpy script"]
    for name, ms in results.items():
        print(f"| {name} | {ms:.1f} | {ms / base:.2f}× |")

    print("\n## Cold start (whole process, median ms)\n")
    print("| command | median ms |")
    print("|---|---:|")
    for name, ms in cold_start(10 if quick else 20).items():
        print(f"| `{name}` | {ms:.1f} |")


def _run_measured(cmd: list[str], stdin_text: str | None = None) -> tuple[float, float, int]:
    """Wall seconds, peak resident MB (this child alone, from wait4) and exit status of one command."""
    import tempfile

    with tempfile.TemporaryFile() as inp:
        if stdin_text is not None:
            inp.write(stdin_text.encode())
            inp.seek(0)
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=inp if stdin_text is not None else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def size_cases(quick: bool) -> list[tuple[str, list[str], str | None]]:
    """Big formulas and check files (issue: linear cost in formula size): (label, argv, stdin)."""
    import tempfile

    depth, terms, lines = (200, 10_000, 10_000) if quick else (1000, 100_000, 100_000)
    nested = "x"
    for _ in range(depth):
        nested = f"tanh({nested})"
    long_sum = " + ".join(f"{i % 7 + 1}*x" if i % 2 else f"x{i}" for i in range(terms))
    samples = [ln for ln in (ROOT / "samples" / "formulas.gradcli").read_text().splitlines()
               if ln.strip() and not ln.lstrip().startswith("#")]
    tmp = Path(tempfile.mkdtemp(prefix="gradcli-sizes-"))
    repeated, distinct = tmp / "repeated.txt", tmp / "distinct.txt"
    repeated.write_text("\n".join(samples[i % len(samples)] for i in range(lines)) + "\n")
    bodies = ["x'@A@x", "||y - X@theta||^2", "sum(tanh(W@x + b))", "sum(exp(A@x))", "x'@x", "tr(A@X@B)"]
    distinct.write_text("\n".join(f"{bodies[i % len(bodies)]} + {i}*c" for i in range(lines)) + "\n")
    g = [sys.executable, "-m", "gradcli"]
    markdown = []
    for mb in (0.5, 2) if quick else (1.25, 5):  # the same file at 4× the size: time should be 4×
        path = tmp / f"formulas-{mb}MB.md"
        _markdown_of_formulas(path, int(mb * 1e6), bodies)
        markdown.append((f"check, Markdown file of {mb:g} MB", g + ["check", str(path)], None))
    return [
        (f"grad, sum(tanh(…x…)) {depth} deep", g + ["grad", f"sum({nested}) wrt x"], None),
        (f"grad --json, {depth} deep", g + ["grad", "--json", f"sum({nested}) wrt x"], None),
        (f"hess, {depth} deep", g + ["hess", f"sum({nested}) wrt x"], None),
        (f"grad --steps, {depth} deep", g + ["grad", "--steps", f"sum({nested}) wrt x"], None),
        (f"hess --steps, {depth} deep", g + ["hess", "--steps", f"sum({nested}) wrt x"], None),
        (f"grad, {terms:,}-term sum", g + ["grad", "-", "--wrt", "x"], long_sum),
        (f"check, {lines:,} formulas (samples repeated)", g + ["check", str(repeated)], None),
        (f"check, {lines:,} distinct formulas", g + ["check", str(distinct)], None),
        *markdown,
    ]


def _markdown_of_formulas(path: Path, size: int, bodies: list[str]) -> None:
    """A Markdown file of about `size` bytes: sections of prose, each with a ```gradcli fence of
    five distinct formulas (some with expected shapes), as documentation holds them."""
    prose = ("The least-squares gradient below is checked on every commit; each formula states "
             "its shape where the text relies on it.\n")
    with open(path, "w", encoding="utf-8") as out:
        written, i = 0, 0
        while written < size:
            block = [f"## Section {i // 5}\n\n", prose * 3, "\n```gradcli\n"]
            for _ in range(5):
                expect = "  => ()" if i % 6 in (0, 1, 3, 4) else ""
                block.append(f"{bodies[i % len(bodies)]} + {i}*c{expect}\n")
                i += 1
            block.append("```\n\n")
            text = "".join(block)
            out.write(text)
            written += len(text.encode())


def _size_goal(label: str) -> str:
    """Issue 14's goal for a case: 2 s and 500 MB for big formulas, 10 s for a check file of
    100,000 formulas, time linear in size for Markdown files (compare the two sizes)."""
    if label.startswith("check, Markdown"):
        return "linear"
    if label.startswith("check"):
        return "10 s" if "distinct" in label else "–"
    return "2 s, 500 MB"


def sizes_table(quick: bool) -> None:
    print("\n## Big formulas and check files (one run each, whole process)\n")
    print("| case | seconds | peak RSS MB | exit | goal |")
    print("|---|---:|---:|---:|---|")
    for label, cmd, stdin_text in size_cases(quick):
        wall, mb, rc = _run_measured(cmd, stdin_text)
        print(f"| {label} | {wall:.2f} | {mb:.0f} | {rc} | {_size_goal(label)} |", flush=True)
