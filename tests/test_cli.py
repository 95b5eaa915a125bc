"""The command line: outputs, JSON schema, exit codes, stdin, and `check` on files."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gradcli.cli import main


def run(capsys, *args, stdin=None, monkeypatch=None):
    if stdin is not None:
        import io

        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_shape_reports_assumed_symbols(capsys):
    rc, out, err = run(capsys, "shape", "||y - X@theta||^2 wrt theta")
    assert rc == 0 and err == ""
    assert "X       (m, n)  assumed" in out and "θ       (n,)    assumed" in out
    assert "∂f/∂θ  gradient  shape (n,)  (gradient layout: the shape of θ)" in out


def test_shape_json_schema(capsys):
    rc, out, _ = run(capsys, "shape", "0.5*sum((y - h(X@Theta))^2) wrt Theta",
                     "-s", "X=M,in", "-s", "Theta=in,out", "-s", "y=M,out", "--json")
    doc = json.loads(out)
    assert rc == 0
    assert doc["shape"] == [] and doc["value"] is None
    assert doc["symbols"]["Theta"] == {"shape": ["in", "out"], "source": "option"}
    (d,) = doc["derivatives"]
    assert d["wrt"] == "Theta" and d["shape"] == ["in", "out"] and d["layout"] == "gradient"
    assert d["kind"] == "gradient"


def test_grad_json_with_values_and_check(capsys, tmp_path):
    rng = np.random.default_rng(1)
    X, y, th = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=3)
    np.savez(tmp_path / "d.npz", X=X, y=y, theta=th, unused=np.zeros(2))
    rc, out, _ = run(capsys, "grad", "||y - X@theta||^2 wrt theta", "-d", str(tmp_path / "d.npz"),
                     "--check", "--json", "-o", str(tmp_path / "out"))
    doc = json.loads(out)
    assert rc == 0
    assert doc["formula"] == "||y - X @ theta||^2"
    assert np.isclose(doc["value"], np.sum((y - X @ th) ** 2))
    (d,) = doc["derivatives"]
    assert d["formula"] == "-2*X' @ (y - X @ theta)" and d["latex"].startswith("-2 X^\\top")
    assert np.allclose(d["value"], -2 * X.T @ (y - X @ th))
    assert d["check"]["ok"] and d["check"]["max_rel_error"] < 1e-6
    assert np.allclose(np.load(tmp_path / "out" / "d_theta.npy"), -2 * X.T @ (y - X @ th))
    assert np.isclose(np.load(tmp_path / "out" / "f.npy"), doc["value"])


def test_check_prints_no_derivation_unless_asked(capsys):
    rc, out, _ = run(capsys, "grad", "x'@x wrt x", "-s", "x=3", "--random", "--check")
    assert rc == 0 and "check: max relative error" in out and "derivation" not in out


def test_grad_numerator_layout_is_row(capsys):
    rc, out, _ = run(capsys, "grad", "x'@A@x wrt x", "-s", "A=3x3", "--random", "--layout", "numerator",
                     "--json")
    d = json.loads(out)["derivatives"][0]
    assert d["shape"] == [1, 3] and np.shape(d["value"]) == (1, 3) and d["layout"] == "numerator"
    assert d["formula"] == "x' @ (A + A')"


def test_grad_with_abstract_function_needs_fn(capsys, tmp_path):
    np.save(tmp_path / "z.npy", np.ones(3))
    rc, _, err = run(capsys, "grad", "sum(h(z)) wrt z", "-d", f"z={tmp_path / 'z.npy'}")
    assert rc == 1 and "--fn h=tanh" in err
    rc, out, _ = run(capsys, "grad", "sum(h(z)) wrt z", "-d", f"z={tmp_path / 'z.npy'}", "--fn", "h=tanh",
                     "--json")
    assert rc == 0 and np.allclose(json.loads(out)["derivatives"][0]["value"], 1 - np.tanh(1.0) ** 2)


def test_scalar_data_and_missing_value(capsys):
    rc, out, _ = run(capsys, "grad", "lam*x'@x wrt x", "-d", "lam=0.5", "-s", "x=2", "--json")
    assert rc == 1 and json.loads(out)["error"]["kind"] == "data"
    rc, out, _ = run(capsys, "grad", "lam*x'@x wrt x, lam", "-d", "lam=0.5", "-s", "x=2", "--random",
                     "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["symbols"]["lam"]["source"] == "data"


def test_stdin_formula(capsys, monkeypatch):
    rc, out, _ = run(capsys, "shape", "-", "--json", stdin="x'@A@x wrt x\n", monkeypatch=monkeypatch)
    assert rc == 0 and json.loads(out)["derivatives"][0]["shape"] == ["m"]


@pytest.mark.parametrize("args, code, kind", [
    (["shape", "x + "], 1, "parse"),
    (["shape", "A@x where A: (m, n), x: (k)"], 1, "shape"),
    (["grad", "x'@x wrt x", "-d", "x=/no/such/file.npy"], 2, "usage"),
    (["grad", "x'@x"], 2, "usage"),
    (["grad", "x'@x wrt x", "--layout", "sideways"], 2, "usage"),
    (["grad", "x'@x wrt x", "-s", "x=3", "--check"], 2, "usage"),
    (["grad", "log(x'@x - 10) wrt x", "-s", "x=3", "--random"], 1, "math"),
    (["grad", "sum(inv(A)) wrt A", "-d", "A=0"], 1, "shape"),
])
def test_errors_exit_codes_and_json(capsys, args, code, kind):
    rc, out, err = run(capsys, *args, "--json")
    assert rc == code
    doc = json.loads(out)
    assert doc["error"]["kind"] == kind and doc["error"]["message"]
    assert "Traceback" not in err and err.strip()


def test_parse_error_shows_caret(capsys):
    rc, _, err = run(capsys, "shape", "A@x where A: (m, n), x: (k)")
    lines = err.splitlines()
    assert lines[0] == "  A@x where A: (m, n), x: (k)"
    assert lines[1] == "   ^"
    assert lines[2] == "error: @: cannot multiply (m, n) by (k,): inner dimensions n and k differ"


def test_unknown_option_exits_2(capsys):
    rc, _, err = run(capsys, "grad", "x'@x wrt x", "--frobnicate")
    assert rc == 2 and "frobnicate" in err


def test_a_formula_starting_with_minus_is_not_read_as_an_option(capsys):
    # -sum(...) would be the option -s with the value 'um(...)'; options may come before or after
    rc, out, err = run(capsys, "grad", "-sum(y*log(p)) wrt p", "-s", "p=3", "-s", "y=3")
    assert rc == 0 and "∂f/∂p = −y ⊘ p" in out
    rc, out, _ = run(capsys, "grad", "-s", "x=2", "-x'@x wrt x", "--json")
    assert rc == 0 and json.loads(out)["derivatives"][0]["formula"] == "-2*x"
    rc, _, err = run(capsys, "grad", "-x")  # unrecognisable: the usage error says what to do
    assert rc == 2 and "after '--'" in err


def test_math_error_names_subexpression(capsys):
    rc, _, err = run(capsys, "grad", "sum(log(x - 2)) wrt x", "-s", "x=3", "--random")
    assert rc == 1 and "log of a value that is not positive in log(x - 2)" in err


def test_check_failures_and_expected_failures(capsys, tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("# comment\n"
                 "x'@A@x wrt x => (), x: (m,)\n"
                 "   A@x where A: (m, n), x: (k)\n"
                 "A@x where A: (m, n), x: (k) => error: shape\n"
                 "x'@x => (m,)\n"
                 "x'@x => error\n")
    rc, out, err = run(capsys, "check", str(f))
    assert rc == 1
    assert f"{f}:3:5: @: cannot multiply (m, n) by (k,)" in err
    assert f"{f}:5:" in err and "result has shape (), expected (m,)" in err
    assert f"{f}:6:1: expected an error" in err
    assert "5 formulas checked: 2 ok (1 expected failures), 3 failed" in out


def test_check_markdown_fences_only(capsys, tmp_path):
    md = tmp_path / "doc.md"
    md.write_text("Text A@x is not checked.\n\n```gradcli\nx'@A@x wrt x => (), x: (m,)\n```\n\n"
                  "```python\nthis is not gradcli\n```\n")
    rc, out, _ = run(capsys, "check", str(md), "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["checked"] == 1 and doc["results"][0]["line"] == 4


def test_check_samples_pass(capsys):
    rc, out, err = run(capsys, "check", "samples/")
    assert rc == 0, err
    assert "0 failed" in out


def test_check_samples_fail_when_a_formula_is_broken(capsys, tmp_path):
    import shutil

    shutil.copytree("samples", tmp_path / "s")
    f = tmp_path / "s" / "formulas.txt"
    f.write_text(f.read_text().replace("||y - X@theta||^2 wrt theta ", "||y - X@theta'||^2 wrt theta", 1))
    rc, _, err = run(capsys, "check", str(tmp_path / "s"))
    assert rc == 1 and "formulas.txt:6:" in err


def test_python_dash_m_and_console_script_agree():
    out = subprocess.run([sys.executable, "-m", "gradcli", "shape", "x'@x", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["shape"] == []


def test_version(capsys):
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.startswith("gradcli ")


def test_human_output_is_plain_text_off_a_terminal_and_styled_on_one(monkeypatch):
    import io

    from gradcli.output import Printer

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, env, styled in [(io.StringIO(), {}, False), (Terminal(), {}, True),
                                (Terminal(), {"NO_COLOR": "1"}, False)]:
        monkeypatch.delenv("NO_COLOR", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setattr(sys, "stdout", stream)
        out = Printer()
        out(("f", "bold"), " = xᵀx")
        out.table(["symbol", "shape"], [["x", "(3,)"]])
        text = stream.getvalue()
        assert ("\x1b[" in text) == styled
        if not styled:  # the same text a pipe, a file and the README show
            assert text == "f = xᵀx\nsymbol  shape\nx       (3,)\n"


def test_a_stream_that_cannot_encode_unicode_gets_escapes_not_a_traceback(monkeypatch):
    import io

    from gradcli.output import Printer

    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii"))
    Printer()("∂f/∂θ = 2θ")
    sys.stdout.flush()
    assert raw.getvalue() == b"\\u2202f/\\u2202\\u03b8 = 2\\u03b8\n"


def test_star_between_a_row_and_a_matrix_warns_but_is_legal(capsys):
    # matrixcalculus.org's x'*A*x: with numpy's * it broadcasts; say so, and still answer
    rc, out, err = run(capsys, "shape", "x'*A*x wrt x")
    assert rc == 0 and "f = xᵀ ⊙ A ⊙ x" in out
    assert "warning: column 3: * is element-wise" in err and "x'@A@x" in err
    rc, _, err = run(capsys, "shape", "x'@A@x wrt x")
    assert rc == 0 and err == ""


def test_a_reader_that_leaves_early_gets_no_error_message():
    # `gradcli grad … | head -1`: the pipe closes under gradcli; it stops quietly, no traceback
    # and no "internal error"
    p = subprocess.Popen([sys.executable, "-m", "gradcli", "grad", "x'@A@x + " +
                          " + ".join(f"u{i}'@x" for i in range(3000)) + " wrt x"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() in (0, 1) and "error" not in err and "Traceback" not in err
