"""The command line: outputs, JSON schema, exit codes, stdin, and `check` on files."""

import json
import os
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
    assert "5 formulas checked: 2 ok (1 expected failure), 3 failed" in out


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
    f = tmp_path / "s" / "formulas.gradcli"
    f.write_text(f.read_text().replace("||y - X@theta||^2 wrt theta ", "||y - X@theta'||^2 wrt theta", 1))
    rc, _, err = run(capsys, "check", str(tmp_path / "s"))
    assert rc == 1 and "formulas.gradcli:6:" in err


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


# ----------------------------------------------------------------------------- option validation
@pytest.mark.parametrize("args, words", [
    (["--seed", "-1", "--random"], ["--seed", "-1"]),
    (["--check", "--random", "--tol", "nan"], ["--tol", "finite"]),
    (["--check", "--random", "--tol", "inf"], ["--tol", "finite"]),
    (["--check", "--random", "--tol", "-1"], ["--tol", "≥ 0"]),
    (["--fn", "=tanh"], ["NAME=BUILTIN"]),
    (["--fn", "h="], ["NAME=BUILTIN"]),
    (["--fn", "exp=log"], ["exp is a builtin function"]),
    (["--fn", "sum=tanh"], ["sum is a builtin function"]),
    (["--fn", "2h=tanh"], ["not a function name"]),
    (["--fn", "wrt=tanh"], ["keyword"]),
    (["--fn", "h=tanhh"], ["did you mean tanh?"]),
    (["--fn", "h=sum"], ["not an element-wise builtin"]),
    (["--fn", "h=tanh", "--fn", "h=exp"], ["already bound to tanh"]),
    (["-s", "A=" + "9" * 5000 + "x3"], ["too large", "5000 characters"]),
    (["-s", "A=99999999999999999999x3"], ["too large"]),
    (["-s", "A=²x3"], ["bad dimension"]),
])
def test_bad_option_values_are_usage_errors(capsys, args, words):
    rc, out, err = run(capsys, "grad", "sum(h(A@x)) wrt x", "-s", "x=3", *args, "--json")
    assert rc == 2, err
    doc = json.loads(out)
    assert doc["error"]["kind"] == "usage"
    for word in words:
        assert word in doc["error"]["message"] and word in err


def test_a_good_fn_binding_still_works_and_an_unused_one_is_warned(capsys):
    rc, out, err = run(capsys, "grad", "sum(h(x)) wrt x", "-s", "x=3", "--random", "--fn", "h = tanh",
                       "--check", "--json")
    assert rc == 0 and json.loads(out)["derivatives"][0]["check"]["ok"]
    rc, _, err = run(capsys, "grad", "sum(h(x)) wrt x", "-s", "x=3", "--random", "--fn", "h=tanh",
                     "--fn", "g=exp")
    assert rc == 0 and "warning: --fn g=exp: the formula does not call g" in err
    assert "--fn h=tanh" not in err


def test_huge_dimensions_and_numbers_in_the_formula_are_parse_errors(capsys):
    rc, out, err = run(capsys, "shape", "A@x where A: (" + "9" * 5000 + ", 3)", "--json")
    doc = json.loads(out)["error"]
    assert rc == 1 and doc["kind"] == "parse" and "too large" in doc["message"] and doc["column"] == 15
    assert len(err) < 1000  # the 5000-digit line is shown as a window around the column
    for literal in ("1e400", "9" * 400, "2.5e308"):
        rc, out, _ = run(capsys, "shape", f"{literal}*x", "--json")
        doc = json.loads(out)["error"]
        assert rc == 1 and doc["kind"] == "parse" and "too large" in doc["message"] and doc["column"] == 1
    rc, out, _ = run(capsys, "shape", "1e308*x", "--json")  # the largest still fits
    assert rc == 0


@pytest.mark.parametrize("formula, value, cause", [
    ("x^1000", "1e300", "overflow"),
    ("exp(x)^1000", "10", "overflow"),
    ("exp(x)", "1000", "overflow"),
    ("1/x", "1e-320", "overflow"),
    ("x^0.5", "-1", "power of a negative number"),
    ("x^-1", "0", "power of a negative number or of zero"),
    ("1/x", "0", "division by zero"),
    ("log(x)", "0", "log of a value that is not positive"),
])
def test_a_math_error_names_what_happened(capsys, formula, value, cause):
    rc, _, err = run(capsys, "grad", f"{formula} wrt x", "-d", f"x={value}")
    assert rc == 1 and f"error: {cause}" in err
    assert ("overflow" in err) == (cause == "overflow")


def test_allow_nonfinite_check_compares_only_finite_entries(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.array([0.0, 1.0, 2.0]))
    # log(x) at 0 is -inf, allowed; the other entries are compared, and agree
    rc, out, err = run(capsys, "grad", "log(x) wrt x", "-d", f"x={tmp_path / 'x.npy'}", "--allow-nonfinite",
                       "--check", "--json")
    check = json.loads(out)["derivatives"][0]["check"]
    assert rc == 0 and check["ok"] and check["max_rel_error"] < 1e-5
    assert "--allow-nonfinite gives" not in err and err.count("log of a value that is not positive") == 1
    # nothing finite to compare: not a failure, and said so
    rc, out, _ = run(capsys, "grad", "log(x) wrt x", "-d", "x=0", "--allow-nonfinite", "--check")
    assert rc == 0 and "nothing to compare" in out


def test_warnings_are_printed_when_the_check_fails(capsys):
    rc, out, err = run(capsys, "grad", "x'*A*x wrt x", "-s", "A=3x3", "--random", "--check", "--tol", "0")
    assert rc == 1 and "FAILED" in out and "warning: column 3: * is element-wise" in err


def test_a_norm_of_a_norm_at_the_start_parses_and_round_trips(capsys):
    rc, out, _ = run(capsys, "grad", "||||x||*y|| wrt x", "-s", "x=3", "-s", "y=3", "--random", "--check",
                     "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["derivatives"][0]["check"]["ok"]
    rc, again, _ = run(capsys, "shape", doc["formula"], "--json")  # gradcli's own output re-parses
    assert rc == 0 and json.loads(again)["shape"] == []
    for text, column in [("||x - ||y|| wrt x", 10), ("||x|||| wrt x", 6)]:
        rc, out, _ = run(capsys, "shape", text, "--json")
        assert rc == 1 and json.loads(out)["error"]["column"] == column


# ----------------------------------------------------------------------------- text from outside
def test_check_escapes_file_names_and_lines(capsys, tmp_path):
    f = tmp_path / "evil\x1b]0;title\x07\u202e.txt"
    f.write_text("x'@x + \x1b[2J y\u202e\n")
    rc, _, err = run(capsys, "check", str(f))
    assert rc == 1
    assert "\x1b" not in err and "\u202e" not in err and "\x07" not in err
    assert "evil\\x1b]0;title\\x07\\u202e.txt:1:" in err and "x'@x + \\x1b[2J y\\u202e" in err
    rc, _, err = run(capsys, "check", str(tmp_path / "gone\x1b[31m.txt"))
    assert rc == 2 and "\x1b" not in err and "gone\\x1b[31m.txt" in err


def test_the_formula_echo_in_an_error_is_escaped(capsys):
    rc, _, err = run(capsys, "shape", "x + \x1b[31m y")
    assert rc == 1 and "\x1b" not in err and "x + \\x1b[31m y" in err


# ----------------------------------------------------------------------------- check: inputs
def test_check_reads_stdin(capsys, monkeypatch):
    for name in ("-", "/dev/stdin"):
        rc, out, err = run(capsys, "check", name, stdin="\ufeffx'@x => ()\nA@x where A: (m, n), x: (k)\n",
                           monkeypatch=monkeypatch)
        assert rc == 1 and f"{name}:2:2: @: cannot multiply" in err
        assert "2 formulas checked: 1 ok" in out
    rc, _, err = run(capsys, "check", "-", "-", stdin="x\n", monkeypatch=monkeypatch)
    assert rc == 2 and "only once" in err


def test_check_markdown_fences_as_commonmark_reads_them(capsys, tmp_path):
    md = tmp_path / "doc.md"
    md.write_text("\ufeffIntro\n"
                  "~~~gradcli\n"            # 2: tilde fence
                  "x'@x => ()\n"            # 3
                  "~~~\n"
                  "````markdown\n"          # 5: an example of a gradcli fence, not one
                  "```gradcli\n"
                  "this is not checked\n"
                  "```\n"
                  "````\n"
                  "  ```` GradCLI  title\n"  # 10: longer fence, info string with more words
                  "A@x => (m,)\n"           # 11
                  "```\n"                   # too short to close it: a line of the block
                  "````\n"
                  "```gradcli-output\n"     # 14: another language
                  "not checked either\n"
                  "```\n")
    rc, out, err = run(capsys, "check", str(md), "--json")
    doc = json.loads(out)
    assert [r["line"] for r in doc["results"]] == [3, 11, 12]
    assert doc["checked"] == 3 and doc["failed"] == 1 and rc == 1  # line 12 is the stray ``` itself


def test_check_reports_a_directory_or_missing_path_as_usage_error(capsys, tmp_path):
    rc, out, err = run(capsys, "check", str(tmp_path / "missing.txt"), "--json")
    assert rc == 2 and json.loads(out)["error"]["kind"] == "usage" and "missing.txt" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads every file")
def test_check_reports_an_unreadable_file_once(capsys, tmp_path):
    f = tmp_path / "secret.txt"
    f.write_text("x'@x\n")
    f.chmod(0)
    rc, out, err = run(capsys, "check", str(f))
    assert rc == 2 and err.count("secret.txt") == 1 and "Permission denied" in err and out == ""


def test_check_analyses_a_repeated_formula_once_and_keeps_its_warnings(capsys, tmp_path, monkeypatch):
    import gradcli.checks.checkfiles as cf

    calls = []
    real = cf.analyze
    monkeypatch.setattr(cf, "analyze", lambda text: calls.append(text) or real(text))
    f = tmp_path / "many.txt"
    f.write_text("x'*A*x wrt x\nA@x where A: (m, n), x: (k)\n" * 500)
    rc, out, err = run(capsys, "check", str(f), "--json")
    doc = json.loads(out)
    assert len(calls) == 2 and doc["checked"] == 1000 and doc["failed"] == 500
    assert all(r["warnings"] for r in doc["results"][::2]) and not any(r["warnings"] for r in doc["results"][1::2])
    # each failure is reported at its own line with its own column
    assert [r["line"] for r in doc["results"] if not r["ok"]][:3] == [2, 4, 6]
    rc, _, err = run(capsys, "check", str(f))
    assert err.count("warning: column 3: * is element-wise") == 500 and f"{f}:999:1: warning" in err


def test_check_json_stays_valid_with_an_internal_error_on_one_line(capsys, tmp_path, monkeypatch):
    import gradcli.checks.checkfiles as cf

    real = cf.analyze

    def flaky(text):
        if "boom" in text:
            raise ZeroDivisionError("a bug")
        return real(text)
    monkeypatch.setattr(cf, "analyze", flaky)
    f = tmp_path / "f.txt"
    f.write_text("x'@x\nboom\nx'@x\n")
    rc, out, _ = run(capsys, "check", str(f), "--json")
    doc = json.loads(out)
    assert rc == 1 and doc["checked"] == 3 and doc["failed"] == 1
    assert "internal error" in doc["results"][1]["message"]


def test_check_echoes_a_window_of_a_long_line(capsys, tmp_path):
    f = tmp_path / "long.txt"
    f.write_text(" + ".join(f"x{i}" for i in range(3000)) + " + Q@x1' wrt x0 where Q: (n, n), x1: (n)\n")
    rc, _, err = run(capsys, "check", str(f))
    assert rc == 1 and len(err) < 1000 and "…" in err and "Q@x1'" in err


def test_check_reports_a_file_it_cannot_read_once_even_as_root(capsys, tmp_path, monkeypatch):
    import builtins

    import gradcli.checks.checkfiles as cf

    ok, bad = tmp_path / "ok.txt", tmp_path / "bad\x1b.txt"
    ok.write_text("x'@x\n")
    bad.write_text("x'@x\n")

    def refusing_open(name, *args, **kw):
        if str(name) == str(bad):
            raise PermissionError(13, "Permission denied")
        return builtins.open(name, *args, **kw)
    monkeypatch.setattr(cf, "open", refusing_open, raising=False)
    rc, out, err = run(capsys, "check", str(ok), str(bad))
    assert rc == 2 and out == "" and err.count("bad\\x1b.txt") == 1 and "Permission denied" in err


def test_check_json_stays_one_document_when_a_file_fails_midway(capsys, tmp_path, monkeypatch):
    import gradcli.checks.checkfiles as cf

    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("x'@x\n")
    second.write_text("x'@x\n")
    real = cf.read_lines

    def vanishing(name):
        if name == str(second):
            raise cf.GradcliError("usage", f"cannot read {name}: No such file or directory")
        return real(name)
    monkeypatch.setattr(cf, "read_lines", vanishing)
    rc, out, err = run(capsys, "check", str(first), str(second), "--json")
    doc = json.loads(out)
    assert rc == 2 and len(doc["results"]) == 1 and doc["error"]["kind"] == "usage"


def test_check_counts_lines_as_an_editor_does(capsys, tmp_path):
    f = tmp_path / "endings.txt"
    # \r\n and \r end lines; a form feed or U+2028 inside a line does not; bad UTF-8 is pointed at
    f.write_bytes("\ufeffx'@x\r\nA@x where A: (m, n), x: (k)\rx\x0c+ y\u2028 z\nq \xff\n".encode("utf-8")
                  .replace(b"\xc3\xbf", b"\xff"))
    rc, out, _ = run(capsys, "check", str(f), "--json")
    results = json.loads(out)["results"]
    assert [r["line"] for r in results] == [1, 2, 3, 4]
    assert [r["ok"] for r in results] == [True, False, False, False]
    assert results[3]["column"] == 3 and "\ufffd" in results[3]["message"]


def test_check_summary_agrees_in_number(capsys, tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("x'@x wrt x\n")
    rc, out, _ = run(capsys, "check", str(one))
    assert rc == 0 and "1 formula checked: 1 ok (0 expected failures), 0 failed" in out


def test_check_stops_at_a_line_too_long_for_a_formula_file(capsys, tmp_path):
    """A line of more than MAX_LINE characters (a binary, /dev/zero) is read in bounded pieces and
    ends the run with an error at file:line, instead of growing memory with the line."""
    from gradcli.checks.checkfiles import MAX_LINE

    big = tmp_path / "big.txt"
    big.write_text("x'@x wrt x\n" + "x" * (2 * MAX_LINE))
    rc, _, err = run(capsys, "check", str(big))
    assert rc == 1 and f"{big}:2: a line longer than" in err
    proc = subprocess.run([sys.executable, "-m", "gradcli", "check", "/dev/zero"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "/dev/zero:1: a line longer than" in proc.stderr
